/*
 * libFuzzer target for http/expfmt.c (bench/run-fuzz builds it with
 * -fsanitize=fuzzer,address,undefined).  The first input byte picks the
 * format and a split size; the rest is the exposition text.  The text is
 * parsed twice, whole and in pieces, and the two runs must see the same
 * events: a hash over every sample, metadata line and error, plus the
 * counters and the result of finish.  Any difference, or an error outside
 * the line it claims, aborts.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/expfmt.h"

struct digest {
    uint64_t h;
    const struct expfmt_parser *p;
};

/* FNV-1a: order-sensitive and cheap; any change in any event moves it. */
static void mix(struct digest *d, const void *buf, size_t n)
{
    const unsigned char *b = buf;
    size_t i;

    for (i = 0; i < n; i++) {
        d->h ^= b[i];
        d->h *= UINT64_C(0x100000001b3);
    }
}

static void mix_str(struct digest *d, const char *s)
{
    mix(d, s, strlen(s) + 1);
}

static int on_sample(void *ctx, struct expfmt_sample *s)
{
    struct digest *d = ctx;
    size_t i;

    if (s->nlabels < 1 || s->nlabels > EXPFMT_MAX_LABELS ||
        s->line != d->p->lines)
        abort();
    mix(d, "S", 1);
    for (i = 0; i < s->nlabels; i++) {
        mix_str(d, s->labels[i].name);
        mix_str(d, s->labels[i].value);
    }
    mix(d, &s->value, sizeof(s->value));
    mix(d, &s->has_timestamp, sizeof(s->has_timestamp));
    if (s->has_timestamp)
        mix(d, &s->timestamp_ms, sizeof(s->timestamp_ms));
    mix(d, &s->line, sizeof(s->line));
    return TSDB_OK;
}

static int on_meta(void *ctx, const struct expfmt_meta *m)
{
    struct digest *d = ctx;

    mix(d, "M", 1);
    mix(d, &m->kind, sizeof(m->kind));
    mix_str(d, m->name);
    mix_str(d, m->text);
    mix(d, &m->line, sizeof(m->line));
    return TSDB_OK;
}

static int on_error(void *ctx, const struct expfmt_error *e)
{
    struct digest *d = ctx;

    if (e->column < 1 || e->column > EXPFMT_MAX_LINE + 1 || e->line < 1 ||
        e->line > d->p->lines + 1)
        abort();
    mix(d, "E", 1);
    mix(d, &e->line, sizeof(e->line));
    mix(d, &e->column, sizeof(e->column));
    mix_str(d, e->msg);
    return TSDB_OK;
}

/* Parses in[0..n) fed step bytes at a time (0: whole) and returns the
 * digest of everything seen. */
static uint64_t run(enum expfmt_format fmt, const uint8_t *in, size_t n,
                    size_t step)
{
    static const struct expfmt_callbacks cb = {on_sample, on_meta, on_error};
    struct expfmt_parser p;
    struct digest d = {UINT64_C(0xcbf29ce484222325), &p};
    size_t off, k;
    int rc;

    if (expfmt_parser_init(&p, fmt, &cb, &d) != TSDB_OK)
        abort();
    for (off = 0; off < n; off += k) {
        k = step == 0 || step > n - off ? n - off : step;
        if (expfmt_parser_feed(&p, in + off, k) != TSDB_OK)
            abort();
    }
    rc = expfmt_parser_finish(&p);
    mix(&d, &rc, sizeof(rc));
    mix(&d, &p.lines, sizeof(p.lines));
    mix(&d, &p.samples, sizeof(p.samples));
    mix(&d, &p.metas, sizeof(p.metas));
    mix(&d, &p.errors, sizeof(p.errors));
    expfmt_parser_release(&p);
    return d.h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    enum expfmt_format fmt;
    size_t step;

    if (size < 1)
        return 0;
    fmt = (data[0] & 1) ? EXPFMT_OPENMETRICS : EXPFMT_TEXT;
    step = 1 + (data[0] >> 1);
    if (run(fmt, data + 1, size - 1, 0) != run(fmt, data + 1, size - 1, step))
        abort();
    return 0;
}
