/*
 * Encoding and decoding of the StatsD journal's records (journal.h; the
 * bytes are defined in storage-format.md section 13.2).  statsd.c builds a
 * batch per request body and replays the same bytes at open, and the live
 * path applies lines from these decoded bytes too, so that what is applied
 * is always exactly what replay will apply.
 *
 * Invariants:
 * 1. Decoding never reads past the end it is given, and every count or
 *    length is checked against its STATSD_MAX_* bound before use.
 * 2. Whatever statsd_journal_put_line writes, statsd_journal_get_line
 *    reads back to an equal line (same bits for every double).
 */
#include "statsd/journal.h"

#include <string.h>

#include "tsdb/bytes.h"
#include "tsdb/error.h"

static const uint8_t type_code[] = {
    [STATSD_COUNTER] = STATSD_JT_COUNTER,
    [STATSD_GAUGE] = STATSD_JT_GAUGE,
    [STATSD_TIMER] = STATSD_JT_TIMER,
    [STATSD_HISTOGRAM] = STATSD_JT_HISTOGRAM,
    [STATSD_DISTRIBUTION] = STATSD_JT_DISTRIBUTION,
    [STATSD_SET] = STATSD_JT_SET,
};

static bool type_from_code(uint8_t c, enum statsd_type *t)
{
    for (int i = STATSD_COUNTER; i <= STATSD_SET; i++)
        if (type_code[i] == c) {
            *t = (enum statsd_type)i;
            return true;
        }
    return false;
}

/* ---- encoding ---- */

static void put_u8(struct tsdb_wal_buf *b, uint8_t v)
{
    b->p[b->len++] = v;
}

static void put_uvarint(struct tsdb_wal_buf *b, uint64_t v)
{
    b->len += varint_put(b->p + b->len, v);
}

static void put_f64(struct tsdb_wal_buf *b, double v)
{
    put_be64(b->p + b->len, double_bits(v));
    b->len += 8;
}

static void put_bytes(struct tsdb_wal_buf *b, const char *s, size_t n)
{
    put_uvarint(b, n);
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

int statsd_journal_begin_batch(struct tsdb_wal_buf *b, int64_t arrival_ms)
{
    int rc = tsdb_wal_buf_begin(b, STATSD_REC_BATCH);

    if (rc == TSDB_OK)
        rc = tsdb_wal_buf_reserve(b, STATSD_BATCH_HEADER_LEN);
    if (rc != TSDB_OK)
        return rc;
    put_be64(b->p + b->len, (uint64_t)arrival_ms);
    b->len += STATSD_BATCH_HEADER_LEN;
    return TSDB_OK;
}

/* Upper bound of the bytes put_line writes for l. */
static size_t line_bound(const struct statsd_line *l)
{
    size_t n = 2 + 10 + 10 + l->name_len + 10 + 8 + 10 + 10;

    for (size_t i = 0; i < l->ntags; i++)
        n += 20 + l->tags[i].key_len + l->tags[i].value_len;
    return n + l->nvalues * 9 + 10 + l->member_len;
}

int statsd_journal_put_line(struct tsdb_wal_buf *b, const struct statsd_line *l)
{
    int rc = tsdb_wal_buf_reserve(b, line_bound(l));

    if (rc != TSDB_OK)
        return rc;
    put_u8(b, type_code[l->type]);
    put_u8(b, l->has_time ? STATSD_JF_TIME : 0);
    put_uvarint(b, l->lineno);
    put_bytes(b, l->name, l->name_len);
    put_uvarint(b, l->ntags);
    for (size_t i = 0; i < l->ntags; i++) {
        put_bytes(b, l->tags[i].key, l->tags[i].key_len);
        put_bytes(b, l->tags[i].value, l->tags[i].value_len);
    }
    put_f64(b, l->rate);
    if (l->has_time)
        put_uvarint(b, zigzag_enc(l->time_ms));
    if (l->type == STATSD_SET) {
        put_bytes(b, l->member, l->member_len);
        return TSDB_OK;
    }
    put_uvarint(b, l->nvalues);
    for (size_t i = 0; i < l->nvalues; i++) {
        if (l->type == STATSD_GAUGE)
            put_u8(b, l->values[i].delta ? 1 : 0);
        put_f64(b, l->values[i].v);
    }
    return TSDB_OK;
}

int statsd_journal_put_flush(struct tsdb_wal_buf *b, uint64_t seq, int64_t t)
{
    int rc = tsdb_wal_buf_begin(b, STATSD_REC_FLUSH);

    if (rc == TSDB_OK)
        rc = tsdb_wal_buf_reserve(b, STATSD_FLUSH_LEN);
    if (rc != TSDB_OK)
        return rc;
    put_be64(b->p + b->len, seq);
    put_be64(b->p + b->len + 8, (uint64_t)t);
    b->len += STATSD_FLUSH_LEN;
    tsdb_wal_buf_end(b);
    return TSDB_OK;
}

/* ---- decoding ---- */

int statsd_journal_get_flush(const uint8_t *p, size_t len, uint64_t *seq,
                             int64_t *t)
{
    if (len != STATSD_FLUSH_LEN)
        return TSDB_ECORRUPT;
    *seq = get_be64(p);
    *t = (int64_t)get_be64(p + 8);
    return TSDB_OK;
}

int statsd_journal_get_batch(const uint8_t **p, const uint8_t *end,
                             int64_t *arrival_ms)
{
    if (end - *p < STATSD_BATCH_HEADER_LEN)
        return TSDB_ECORRUPT;
    *arrival_ms = (int64_t)get_be64(*p);
    *p += STATSD_BATCH_HEADER_LEN;
    return TSDB_OK;
}

static int get_u8(const uint8_t **p, const uint8_t *end, uint8_t *v)
{
    if (*p >= end)
        return -1;
    *v = *(*p)++;
    return 0;
}

static int get_f64(const uint8_t **p, const uint8_t *end, double *v)
{
    if (end - *p < 8)
        return -1;
    *v = bits_double(get_be64(*p));
    *p += 8;
    return 0;
}

/* A length-prefixed string of at most max bytes, pointing into *p. */
static int get_bytes(const uint8_t **p, const uint8_t *end, size_t max,
                     const char **s, size_t *n)
{
    uint64_t len;

    if (varint_get(p, end, &len) < 0 || len > max || len > (uint64_t)(end - *p))
        return -1;
    *s = (const char *)*p;
    *n = (size_t)len;
    *p += len;
    return 0;
}

static int get_values(const uint8_t **p, const uint8_t *end,
                      struct statsd_journal_line *out)
{
    struct statsd_line *l = &out->line;
    uint64_t n;

    if (varint_get(p, end, &n) < 0 || n == 0 || n > STATSD_MAX_VALUES)
        return -1;
    for (size_t i = 0; i < n; i++) {
        uint8_t op = 0;
        if (l->type == STATSD_GAUGE && (get_u8(p, end, &op) < 0 || op > 1))
            return -1;
        out->values[i].delta = op == 1;
        if (get_f64(p, end, &out->values[i].v) < 0)
            return -1;
    }
    l->values = out->values;
    l->nvalues = (size_t)n;
    return 0;
}

static int get_line(const uint8_t **p, const uint8_t *end,
                    struct statsd_journal_line *out)
{
    struct statsd_line *l = &out->line;
    uint8_t code, flags;
    uint64_t u;

    memset(l, 0, sizeof(*l));
    if (get_u8(p, end, &code) < 0 || !type_from_code(code, &l->type) ||
        get_u8(p, end, &flags) < 0 || (flags & ~STATSD_JF_TIME) != 0 ||
        varint_get(p, end, &l->lineno) < 0 ||
        get_bytes(p, end, STATSD_MAX_NAME, &l->name, &l->name_len) < 0 ||
        l->name_len == 0 || varint_get(p, end, &u) < 0 || u > STATSD_MAX_TAGS)
        return -1;
    for (size_t i = 0; i < u; i++) {
        struct statsd_tag *t = &out->tags[i];
        if (get_bytes(p, end, TSDB_MAX_LABEL_NAME, &t->key, &t->key_len) < 0 ||
            get_bytes(p, end, TSDB_MAX_LABEL_VALUE, &t->value, &t->value_len) <
                0 ||
            t->key_len == 0 || t->value_len == 0)
            return -1;
    }
    l->tags = out->tags;
    l->ntags = (size_t)u;
    if (get_f64(p, end, &l->rate) < 0 || !(l->rate > 0 && l->rate <= 1))
        return -1;
    if (flags & STATSD_JF_TIME) {
        if (varint_get(p, end, &u) < 0)
            return -1;
        l->has_time = true;
        l->time_ms = zigzag_dec(u);
    }
    if (l->type != STATSD_SET)
        return get_values(p, end, out);
    if (get_bytes(p, end, STATSD_MAX_LINE, &l->member, &l->member_len) < 0 ||
        l->member_len == 0)
        return -1;
    return 0;
}

int statsd_journal_get_line(const uint8_t **p, const uint8_t *end,
                            struct statsd_journal_line *out)
{
    return get_line(p, end, out) < 0 ? TSDB_ECORRUPT : TSDB_OK;
}
