/*
 * Tier buckets: summarising samples into buckets, and the block codec
 * (storage-format.md section "tiers").  Pure code: no LMDB, no logging.
 *
 * A bucket keeps what the range functions need to answer from it exactly
 * as from its samples: count, compensated sum, min and max with
 * Prometheus's NaN rule (which makes them associative across buckets),
 * first and last sample, and the counter resets inside it.
 */
#include "tsdb/tier.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tsdb/bitio.h"
#include "tsdb/bytes.h"
#include "tsdb/error.h"

#define STALE_BITS 0x7ff0000000000002ULL

/* Flag bits of a bucket with count > 1. */
#define F_MIN_IS_FIRST 0x01
#define F_MAX_IS_LAST  0x02
#define F_RESETS       0x04

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;

    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

int64_t tier_bucket_end(int64_t t, int64_t w)
{
    /* (end - w, end]: a time on a multiple of w closes its bucket. */
    return -floor_div(-t, w) * w;
}

int64_t tier_block_start(int64_t end, int64_t w)
{
    return floor_div(end / w, TIER_BLOCK_BUCKETS) * TIER_BLOCK_BUCKETS * w;
}

void tier_bucket_add(struct tsdb_bucket *b, int64_t t, double v)
{
    if (b->count == 0) {
        b->min = b->max = b->first_v = v;
        b->first_t = t;
        b->sum = 0.0 + v; /* as a sum from zero gives it: -0 becomes 0 */
        b->sum_comp = 0;
        b->resets = 0;
    } else {
        /* Neumaier's step, as the raw sum_over_time takes it. */
        double s = b->sum + v;

        if (fabs(b->sum) >= fabs(v))
            b->sum_comp += (b->sum - s) + v;
        else
            b->sum_comp += (v - s) + b->sum;
        b->sum = s;
        if (v > b->max || isnan(b->max))
            b->max = v;
        if (v < b->min || isnan(b->min))
            b->min = v;
        if (v < b->last_v)
            b->resets += b->last_v;
    }
    b->last_t = t;
    b->last_v = v;
    b->count++;
}

void tier_bucket_finish(struct tsdb_bucket *b)
{
    /* An infinite sum stays as it is, as in sum_over_time. */
    if (!isinf(b->sum))
        b->sum += b->sum_comp;
    b->sum_comp = 0;
}

void tier_buckets_release(struct tier_buckets *l)
{
    free(l->v);
    memset(l, 0, sizeof(*l));
}

static int buckets_push(struct tier_buckets *l, int64_t end)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        struct tsdb_bucket *v = realloc(l->v, cap * sizeof(*v));

        if (v == NULL)
            return TSDB_ENOMEM;
        l->v = v;
        l->cap = cap;
    }
    memset(&l->v[l->n], 0, sizeof(l->v[0]));
    l->v[l->n++].end = end;
    return TSDB_OK;
}

int tier_summarize(int64_t w, const int64_t *t, const double *v, size_t n,
                   struct tier_buckets *out)
{
    for (size_t i = 0; i < n; i++) {
        int64_t end;

        if (double_bits(v[i]) == STALE_BITS)
            continue;
        end = tier_bucket_end(t[i], w);
        if (out->n == 0 || out->v[out->n - 1].end != end) {
            int rc = buckets_push(out, end);
            if (rc != TSDB_OK)
                return rc;
        }
        tier_bucket_add(&out->v[out->n - 1], t[i], v[i]);
    }
    return TSDB_OK;
}

void tier_key(uint8_t *key, int64_t w, uint64_t sid, int64_t block_start)
{
    put_be64(key, (uint64_t)w);
    put_be64(key + 8, sid);
    put_be64_signed(key + 16, block_start);
}

/* ---- values: XOR against the column's previous value ---- */

/* A header byte, the count of leading zero bytes of x in the high
 * nibble and the count of bytes stored in the low one, then those bytes,
 * most significant first; the rest of x is trailing zero bytes.  x = 0
 * is the byte 00. */
static size_t put_xor(uint8_t *p, uint64_t x)
{
    int lead, len;

    if (x == 0) {
        p[0] = 0;
        return 1;
    }
    lead = __builtin_clzll(x) / 8;
    len = 8 - lead - __builtin_ctzll(x) / 8;
    p[0] = (uint8_t)(lead << 4 | len);
    for (int i = 0; i < len; i++)
        p[1 + i] = (uint8_t)(x >> (56 - 8 * (lead + i)));
    return 1 + (size_t)len;
}

static int get_xor(const uint8_t **p, const uint8_t *end, uint64_t *x)
{
    const uint8_t *q = *p;
    int lead, len, trail;
    uint64_t m = 0;

    if (q >= end)
        return -1;
    lead = q[0] >> 4;
    len = q[0] & 15;
    trail = 8 - lead - len;
    if (trail < 0 || end - q - 1 < len)
        return -1;
    if (len == 0) {
        *x = 0;
        *p = q + 1;
        return 0;
    }
    /* One 8-byte read and two shifts when the block has room for it. */
    if (end - q - 1 >= 8) {
        m = bitio_load_be64(q + 1) >> (64 - 8 * len);
    } else {
        for (int i = 0; i < len; i++)
            m = m << 8 | q[1 + i];
    }
    *x = trail == 8 ? 0 : m << (8 * trail);
    *p = q + 1 + len;
    return 0;
}

/* Value columns of a bucket (first_v has none of its own, see below). */
enum { C_LAST, C_SUM, C_MIN, C_MAX, C_RESETS, C_N };

/* What each field is coded against: the same field of the bucket before
 * it in the block, 0 for the first bucket; first_v against that bucket's
 * last_v (a counter goes on from there), last_v against its own first_v. */
struct colstate {
    uint64_t prev[C_N];
    int64_t first_off, last_off;
};

static size_t put_col(uint8_t *p, struct colstate *st, int col, double v)
{
    uint64_t bits = double_bits(v);
    size_t n = put_xor(p, bits ^ st->prev[col]);

    st->prev[col] = bits;
    return n;
}

static int get_col(const uint8_t **p, const uint8_t *end, struct colstate *st,
                   int col, double *v)
{
    uint64_t x;

    if (get_xor(p, end, &x) != 0)
        return -1;
    st->prev[col] ^= x;
    *v = bits_double(st->prev[col]);
    return 0;
}

/* An offset as the zigzag of its difference from the one before. */
static size_t put_off(uint8_t *p, int64_t *prev, int64_t off)
{
    size_t n = varint_put(p, zigzag_enc(off - *prev));

    *prev = off;
    return n;
}

static int get_off(const uint8_t **p, const uint8_t *end, int64_t *prev,
                   int64_t w, int64_t *off)
{
    uint64_t z;

    if (varint_get(p, end, &z))
        return -1;
    /* Wrapping arithmetic: corrupt input must not overflow. */
    *off = (int64_t)((uint64_t)*prev + (uint64_t)zigzag_dec(z));
    if (*off < 0 || *off >= w)
        return -1;
    *prev = *off;
    return 0;
}

static size_t encode_one(const struct tsdb_bucket *b, int64_t w,
                         struct colstate *st, uint8_t *p)
{
    uint64_t first = double_bits(b->first_v);
    size_t n = varint_put(p, b->count);
    uint8_t flags = 0;

    n += put_off(p + n, &st->first_off, b->first_t - (b->end - w) - 1);
    n += put_xor(p + n, first ^ st->prev[C_LAST]);
    st->prev[C_LAST] = first;
    if (b->count == 1)
        return n;
    n += put_off(p + n, &st->last_off, b->end - b->last_t);
    if (double_bits(b->min) == first)
        flags |= F_MIN_IS_FIRST;
    if (double_bits(b->max) == double_bits(b->last_v))
        flags |= F_MAX_IS_LAST;
    if (double_bits(b->resets) != 0)
        flags |= F_RESETS;
    p[n++] = flags;
    n += put_col(p + n, st, C_LAST, b->last_v);
    n += put_col(p + n, st, C_SUM, b->sum);
    if (!(flags & F_MIN_IS_FIRST))
        n += put_col(p + n, st, C_MIN, b->min);
    if (!(flags & F_MAX_IS_LAST))
        n += put_col(p + n, st, C_MAX, b->max);
    if (flags & F_RESETS)
        n += put_col(p + n, st, C_RESETS, b->resets);
    return n;
}

size_t tier_block_encode(const struct tsdb_bucket *b, size_t n,
                         int64_t block_start, int64_t w, uint8_t *out)
{
    struct colstate st = {{0}, 0, 0};
    int64_t next_slot = 0;
    size_t len = 0;

    out[len++] = 1; /* block encoding */
    len += varint_put(out + len, n);
    for (size_t i = 0; i < n; i++) {
        int64_t slot = (b[i].end - block_start) / w;

        len += varint_put(out + len, (uint64_t)(slot - next_slot));
        next_slot = slot + 1;
        len += encode_one(&b[i], w, &st, out + len);
    }
    return len;
}

/* count, first_t and first_v of one bucket; its end is already set. */
static int decode_first(const uint8_t **p, const uint8_t *end, int64_t w,
                        struct colstate *st, struct tsdb_bucket *b)
{
    uint64_t count, x;
    int64_t off;

    if (varint_get(p, end, &count) || count == 0 ||
        get_off(p, end, &st->first_off, w, &off) || get_xor(p, end, &x))
        return -1;
    b->count = count;
    b->first_t = b->end - w + 1 + off;
    st->prev[C_LAST] ^= x;
    b->first_v = bits_double(st->prev[C_LAST]);
    return 0;
}

static int decode_one(const uint8_t **p, const uint8_t *end, int64_t w,
                      struct colstate *st, struct tsdb_bucket *b)
{
    int64_t last;
    uint8_t flags;

    if (decode_first(p, end, w, st, b))
        return -1;
    if (b->count == 1) {
        /* Every other field follows from the one sample. */
        b->count = 0;
        tier_bucket_add(b, b->first_t, b->first_v);
        return 0;
    }
    b->sum_comp = 0;
    if (get_off(p, end, &st->last_off, w, &last) || *p >= end)
        return -1;
    b->last_t = b->end - last;
    flags = *(*p)++;
    if ((flags & ~(F_MIN_IS_FIRST | F_MAX_IS_LAST | F_RESETS)) ||
        b->last_t < b->first_t || get_col(p, end, st, C_LAST, &b->last_v) ||
        get_col(p, end, st, C_SUM, &b->sum))
        return -1;
    b->min = b->first_v;
    b->max = b->last_v;
    b->resets = 0;
    if ((!(flags & F_MIN_IS_FIRST) && get_col(p, end, st, C_MIN, &b->min)) ||
        (!(flags & F_MAX_IS_LAST) && get_col(p, end, st, C_MAX, &b->max)) ||
        ((flags & F_RESETS) && get_col(p, end, st, C_RESETS, &b->resets)))
        return -1;
    return 0;
}

int tier_block_decode(const uint8_t *p, size_t len, int64_t block_start,
                      int64_t w, struct tsdb_bucket *out, size_t *n)
{
    const uint8_t *end = p + len;
    struct colstate st = {{0}, 0, 0};
    uint64_t count, gap, slot = 0;

    if (len < 2 || *p++ != 1 || varint_get(&p, end, &count) || count == 0 ||
        count > TIER_BLOCK_BUCKETS)
        return TSDB_ECORRUPT;
    for (size_t i = 0; i < count; i++) {
        struct tsdb_bucket *b = &out[i];

        if (varint_get(&p, end, &gap) || gap >= TIER_BLOCK_BUCKETS - slot)
            return TSDB_ECORRUPT;
        slot += gap;
        b->end = block_start + (int64_t)slot * w;
        slot++;
        if (decode_one(&p, end, w, &st, b) != 0)
            return TSDB_ECORRUPT;
    }
    if (p != end)
        return TSDB_ECORRUPT;
    *n = count;
    return TSDB_OK;
}
