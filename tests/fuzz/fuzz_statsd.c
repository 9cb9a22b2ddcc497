/*
 * libFuzzer target for the StatsD parser (statsd/parse.c), with the
 * journal encoding and the aggregation behind it (bench/run-fuzz builds it
 * with -fsanitize=fuzzer,address,undefined).  The input is one body.
 * Checked, aborting on any failure:
 * - every delivered line keeps parse.h's promises: a valid, unreserved
 *   name; sorted, unique, valid tags; finite values in range; a rate in
 *   (0, 1]; line numbers that grow and stay within the body;
 * - lines delivered + lines rejected == non-blank lines;
 * - each line survives the journal encoding bit for bit;
 * - every sample the aggregation emits has a label set the storage
 *   accepts (tsdb_labels_normalize), so that what is accepted is storable;
 * - a snapshot of the state loads back with the same series count.
 *
 * The statsd sources are compiled into this file (not linked from the
 * library) because the checks reuse parse.c's static helpers
 * (utf8_valid_no_nul, tag_cmp); bench/run-fuzz links the library too, and
 * its copies of these objects are then not pulled in.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "statsd/aggregate.c"
#include "statsd/journal.c"
#include "statsd/parse.c"
#include "tsdb/format.h"

struct run {
    const char *body;
    size_t len;
    uint64_t last_line;
    uint64_t delivered_lines;
    struct statsd_agg *agg;
    struct tsdb_wal_buf enc;
    struct statsd_journal_line back;
};

static void check_tags(const struct statsd_line *l, bool hist)
{
    for (size_t i = 0; i < l->ntags; i++) {
        const struct statsd_tag *t = &l->tags[i];
        if (!tsdb_label_name_valid(t->key, t->key_len) ||
            t->key_len > TSDB_MAX_LABEL_NAME || t->value_len == 0 ||
            t->value_len > TSDB_MAX_LABEL_VALUE ||
            (t->key_len >= 2 && t->key[0] == '_' && t->key[1] == '_') ||
            (hist && t->key_len == 2 && memcmp(t->key, "le", 2) == 0) ||
            !utf8_valid_no_nul(t->value, t->value_len))
            abort();
        if (i > 0 && tag_cmp(&l->tags[i - 1], t) >= 0)
            abort();
    }
}

static void check_delivered(struct run *r, const struct statsd_line *l)
{
    bool hist = l->type == STATSD_TIMER || l->type == STATSD_HISTOGRAM ||
                l->type == STATSD_DISTRIBUTION;

    if (l->lineno < r->last_line || l->lineno > r->len + 1)
        abort();
    if (l->lineno != r->last_line)
        r->delivered_lines++;
    r->last_line = l->lineno;
    if (!tsdb_metric_name_valid(l->name, l->name_len) ||
        l->name_len > STATSD_MAX_NAME || memchr(l->name, ':', l->name_len) ||
        (l->name_len >= 2 && l->name[0] == '_' && l->name[1] == '_'))
        abort();
    if (!(l->rate > 0 && l->rate <= 1) || l->ntags > STATSD_MAX_TAGS)
        abort();
    check_tags(l, hist);
    if (l->type == STATSD_SET) {
        if (l->nvalues != 0 || l->member_len == 0 || l->has_time)
            abort();
        return;
    }
    if (l->nvalues == 0 || l->nvalues > STATSD_MAX_VALUES)
        abort();
    for (size_t i = 0; i < l->nvalues; i++)
        if (!isfinite(l->values[i].v) ||
            (l->type != STATSD_GAUGE &&
             (l->values[i].v < 0 || l->values[i].delta)))
            abort();
    if (l->has_time && (l->nvalues != 1 || l->values[0].delta ||
                        (l->type != STATSD_COUNTER && l->type != STATSD_GAUGE)))
        abort();
}

/* The journal gives back the same line, bit for bit. */
static void check_round_trip(struct run *r, const struct statsd_line *l)
{
    const struct statsd_line *b = &r->back.line;
    const uint8_t *p;

    tsdb_wal_buf_reset(&r->enc);
    if (statsd_journal_put_line(&r->enc, l) != TSDB_OK)
        abort();
    p = r->enc.p;
    if (statsd_journal_get_line(&p, r->enc.p + r->enc.len, &r->back) !=
            TSDB_OK ||
        p != r->enc.p + r->enc.len)
        abort();
    if (b->lineno != l->lineno || b->type != l->type ||
        b->name_len != l->name_len ||
        memcmp(b->name, l->name, l->name_len) != 0 || b->ntags != l->ntags ||
        b->nvalues != l->nvalues ||
        double_bits(b->rate) != double_bits(l->rate) ||
        b->has_time != l->has_time || b->time_ms != l->time_ms ||
        b->member_len != l->member_len ||
        (l->member_len && memcmp(b->member, l->member, l->member_len)))
        abort();
    for (size_t i = 0; i < l->ntags; i++)
        if (b->tags[i].key_len != l->tags[i].key_len ||
            b->tags[i].value_len != l->tags[i].value_len ||
            memcmp(b->tags[i].key, l->tags[i].key, l->tags[i].key_len) ||
            memcmp(b->tags[i].value, l->tags[i].value, l->tags[i].value_len))
            abort();
    for (size_t i = 0; i < l->nvalues; i++)
        if (double_bits(b->values[i].v) != double_bits(l->values[i].v) ||
            b->values[i].delta != l->values[i].delta)
            abort();
}

static int on_line(void *ctx, const struct statsd_line *l)
{
    struct run *r = ctx;
    char reason[STATSD_MAX_REASON];
    int rc;

    check_delivered(r, l);
    check_round_trip(r, l);
    rc = statsd_agg_apply(r->agg, l, 0, reason, sizeof(reason));
    if (rc != TSDB_OK && rc != TSDB_EINVAL && rc != TSDB_ELIMIT)
        abort();
    return TSDB_OK;
}

static int on_reject(void *ctx, uint64_t lineno, const char *reason)
{
    (void)ctx;
    if (lineno == 0 || strncmp(reason, "line ", 5) != 0)
        abort();
    return TSDB_OK;
}

static int on_sample(void *ctx, const struct statsd_sample *s)
{
    char err[256];
    size_t n = s->nlabels;

    (void)ctx;
    if (tsdb_labels_normalize(s->labels, &n, err, sizeof(err)) != TSDB_OK ||
        n != s->nlabels)
        abort();
    return TSDB_OK;
}

/* Snapshot of c, loaded into a new aggregation: same series count. */
static void check_snapshot(const struct statsd_capture *c, size_t series,
                           const struct statsd_agg_options *o)
{
    struct statsd_snap_cursor cur = {0};
    struct tsdb_wal_buf b = {0};
    struct statsd_snap_info info = {0};
    struct statsd_agg *a;
    uint64_t count = 0;
    size_t off = 0;

    if (statsd_agg_new(o, &a) != TSDB_OK)
        abort();
    while (!cur.done)
        if (statsd_capture_snapshot(c, &cur, &b, 4096) != TSDB_OK)
            abort();
    while (off < b.len) {
        const uint8_t *h = b.p + off, *p = h + TSDB_WAL_RECORD_HEADER_LEN;
        size_t len = (size_t)h[1] << 16 | (size_t)h[2] << 8 | h[3];

        if (h[0] == STATSD_REC_SNAP_HEAD &&
            statsd_agg_load_head(a, p, len, &info) != TSDB_OK)
            abort();
        if (h[0] == STATSD_REC_SNAP_ENTRIES &&
            statsd_agg_load_entries(a, &info, p, len, true, &count) != TSDB_OK)
            abort();
        off += TSDB_WAL_RECORD_HEADER_LEN + len;
    }
    if (count != series || statsd_agg_series(a) != series ||
        statsd_agg_check(a) != TSDB_OK)
        abort();
    tsdb_wal_buf_release(&b);
    statsd_agg_free(a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct statsd_parse_cb cb = {on_line, on_reject};
    static struct statsd_parser p;
    struct statsd_agg_options o;
    struct statsd_capture *c;
    struct run *r = calloc(1, sizeof(*r));
    int rc;

    if (!r)
        return 0;
    r->body = (const char *)data;
    r->len = size;
    statsd_agg_options_init(&o);
    o.max_series = 64;
    o.max_set_members = 16;
    o.max_raw_bytes = 4096;
    if (statsd_agg_new(&o, &r->agg) != TSDB_OK)
        abort();
    statsd_parser_init(&p);
    rc = statsd_parse(&p, (const char *)data, size, &cb, r);
    if ((rc != TSDB_OK && rc != TSDB_ELIMIT) ||
        p.lines != p.accepted + p.rejected ||
        p.accepted != r->delivered_lines || statsd_agg_check(r->agg) != TSDB_OK)
        abort();
    if (statsd_agg_flush(r->agg, 10000, &c) != TSDB_OK ||
        statsd_capture_emit(c, on_sample, NULL, NULL) != TSDB_OK)
        abort();
    check_snapshot(c, statsd_agg_series(r->agg), &o);
    statsd_capture_free(c);
    statsd_agg_free(r->agg);
    tsdb_wal_buf_release(&r->enc);
    free(r);
    return 0;
}
