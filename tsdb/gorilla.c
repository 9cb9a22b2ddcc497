/*
 * The Gorilla codec for open (head) chunks: one sample appended at a time,
 * timestamps as delta-of-delta in prefix classes, values XORed against the
 * previous value.  The bitstream is specified in storage-format.md
 * section "Gorilla bitstream"; this file does not restate it.
 *
 * Sits below chunk.c and the head; pure code (no LMDB, logging, globals).
 *
 * Invariants of struct gorilla_enc between calls:
 * 1. Every bit of buf from bit nbits up to byte cap is zero, so a field is
 *    written by ORing it in (bitio_or_put) without masking.
 * 2. An append makes sure of APPEND_ROOM bytes past byte nbits / 8 before
 *    it writes anything, so a failed append (TSDB_EFULL, TSDB_ENOMEM)
 *    leaves the struct and the buffer as they were.
 * 3. lead + trail < 64 and lead <= 31: the current XOR window holds at
 *    least one bit.
 * 4. Arithmetic on timestamps wraps modulo 2^64 in both directions, so any
 *    int64 sequence round-trips, even one the caller failed to keep sorted.
 */
#include "tsdb/gorilla.h"

#include "tsdb/bitio.h"
#include "tsdb/bytes.h"
#include "tsdb/error.h"

#include <stdlib.h>

/*
 * Bytes that one append may touch past the byte holding bit nbits: the
 * widest sample is a 68-bit timestamp escape plus a 77-bit new XOR window
 * (145 bits, at most 19 bytes from a partial byte), and bitio_or_put()
 * reads and writes 8 bytes at its last field's first byte.  The first
 * sample needs 10 (varint) + 8 (value) + 8.
 */
#define APPEND_ROOM 28

/* Smallest buffer: one first sample plus room for a few more. */
#define MIN_CAP 32

/* Timestamp classes: '0', '10', '110', '1110' prefix a signed payload of
 * the width below; '1111' escapes to 64 raw bits. */
#define TS_W1 6
#define TS_W2 10
#define TS_W3 20

void gorilla_enc_init(struct gorilla_enc *e)
{
    memset(e, 0, sizeof(*e));
}

void gorilla_enc_release(struct gorilla_enc *e)
{
    free(e->buf);
    memset(e, 0, sizeof(*e));
}

size_t gorilla_enc_len(const struct gorilla_enc *e)
{
    return ((size_t)e->nbits + 7) / 8;
}

/*
 * Rounds n up to a jemalloc size class (16-byte steps to 128, then four
 * classes per doubling), so that realloc hands back no hidden slack.
 */
static uint32_t size_class(uint32_t n)
{
    uint32_t step = 16;

    if (n > 128) {
        unsigned k = 31 - (unsigned)__builtin_clz(n - 1);
        step = (uint32_t)1 << (k - 2);
    }
    return (n + step - 1) & ~(step - 1);
}

/* Grows buf to at least need bytes, by 25% or more; zeroes the new tail. */
static int grow(struct gorilla_enc *e, uint32_t need)
{
    uint32_t cap = e->cap + e->cap / 4;
    uint8_t *p;

    if (cap < need)
        cap = need;
    if (cap < MIN_CAP)
        cap = MIN_CAP;
    cap = size_class(cap);
    p = realloc(e->buf, cap);
    if (p == NULL)
        return TSDB_ENOMEM;
    memset(p + e->cap, 0, cap - e->cap);
    e->buf = p;
    e->cap = cap;
    return TSDB_OK;
}

static void put_first(struct gorilla_enc *e, int64_t t, uint64_t bits)
{
    size_t n = varint_put(e->buf, zigzag_enc(t));

    bitio_or_put(e->buf, n * 8, bits, 64);
    e->nbits = (uint32_t)(n * 8 + 64);
    e->t_prev = t;
    e->dt_prev = 0;
    e->v_prev = bits;
    e->lead = 0;
    e->trail = 0;
}

/* Fits in a signed field of w bits. */
static bool fits(int64_t v, unsigned w)
{
    int64_t lim = (int64_t)1 << (w - 1);

    return v >= -lim && v < lim;
}

static void put_dod(struct gorilla_enc *e, int64_t dod)
{
    uint64_t u = (uint64_t)dod;
    uint32_t pos = e->nbits;

    if (dod == 0) {
        e->nbits = pos + 1;
        return;
    }
    if (fits(dod, TS_W1)) {
        u = (2u << TS_W1) | (u & ((1u << TS_W1) - 1));
        bitio_or_put57(e->buf, pos, u, 2 + TS_W1);
        e->nbits = pos + 2 + TS_W1;
    } else if (fits(dod, TS_W2)) {
        u = (6u << TS_W2) | (u & ((1u << TS_W2) - 1));
        bitio_or_put57(e->buf, pos, u, 3 + TS_W2);
        e->nbits = pos + 3 + TS_W2;
    } else if (fits(dod, TS_W3)) {
        u = (14u << TS_W3) | (u & ((1u << TS_W3) - 1));
        bitio_or_put57(e->buf, pos, u, 4 + TS_W3);
        e->nbits = pos + 4 + TS_W3;
    } else {
        bitio_or_put57(e->buf, pos, 15, 4);
        bitio_or_put(e->buf, pos + 4, u, 64);
        e->nbits = pos + 4 + 64;
    }
}

static void put_value(struct gorilla_enc *e, uint64_t bits)
{
    uint64_t x = bits ^ e->v_prev;
    uint32_t pos = e->nbits;
    unsigned lead, trail, len, win;

    e->v_prev = bits;
    if (x == 0) {
        e->nbits = pos + 1;
        return;
    }
    if (bitio_xor_reuse(x, e->lead, e->trail, &lead, &trail)) {
        win = 64 - e->lead - e->trail;
        bitio_or_put57(e->buf, pos, 2, 2);
        bitio_or_put(e->buf, pos + 2, x >> e->trail, win);
        e->nbits = pos + 2 + win;
        return;
    }
    len = 64 - lead - trail;
    bitio_or_put57(e->buf, pos, 3u << 11 | lead << 6 | (len & 63), 13);
    bitio_or_put(e->buf, pos + 13, x >> trail, len);
    e->nbits = pos + 13 + len;
    e->lead = (uint8_t)lead;
    e->trail = (uint8_t)trail;
}

int gorilla_enc_append(struct gorilla_enc *e, int64_t t, double v)
{
    uint32_t need = e->nbits / 8 + APPEND_ROOM;
    uint64_t delta;

    if (e->count == GORILLA_MAX_SAMPLES)
        return TSDB_EFULL;
    if (need > e->cap && grow(e, need) != TSDB_OK)
        return TSDB_ENOMEM;

    if (e->count == 0) {
        put_first(e, t, double_bits(v));
    } else {
        delta = (uint64_t)t - (uint64_t)e->t_prev;
        put_dod(e, (int64_t)(delta - (uint64_t)e->dt_prev));
        put_value(e, double_bits(v));
        e->t_prev = t;
        e->dt_prev = (int64_t)delta;
    }
    e->count++;
    return TSDB_OK;
}

/* Sign-extends the low w bits of u. */
static int64_t sext(uint64_t u, unsigned w)
{
    uint64_t sign = (uint64_t)1 << (w - 1);

    return (int64_t)((u ^ sign) - sign);
}

/* Reads one delta-of-delta; the class is the run of leading ones. */
static int64_t get_dod(struct bitio_r *r)
{
    uint64_t w = bitio_r_peek(r);
    unsigned ones = (unsigned)__builtin_clzll(~w | 1);

    switch (ones) {
    case 0:
        r->pos += 1;
        return 0;
    case 1:
        r->pos += 2 + TS_W1;
        return sext(w << 2 >> (64 - TS_W1), TS_W1);
    case 2:
        r->pos += 3 + TS_W2;
        return sext(w << 3 >> (64 - TS_W2), TS_W2);
    case 3:
        r->pos += 4 + TS_W3;
        return sext(w << 4 >> (64 - TS_W3), TS_W3);
    default:
        r->pos += 4;
        return (int64_t)bitio_r_get(r, 64);
    }
}

int gorilla_decode(const uint8_t *buf, size_t len, uint32_t count, int64_t *ts,
                   double *vs)
{
    const uint8_t *p = buf;
    struct bitio_r r;
    uint64_t t0, t, v, dt = 0;
    unsigned lead = 0, trail = 0;

    if (count == 0)
        return TSDB_OK;
    if (count > GORILLA_MAX_SAMPLES || varint_get(&p, buf + len, &t0) != 0)
        return TSDB_ECORRUPT;
    bitio_r_init(&r, buf, len, (uint64_t)(p - buf) * 8);
    t = (uint64_t)zigzag_dec(t0);
    v = bitio_r_get(&r, 64);
    ts[0] = (int64_t)t;
    vs[0] = bits_double(v);

    for (uint32_t i = 1; i < count; i++) {
        dt += (uint64_t)get_dod(&r);
        t += dt;
        if (!bitio_xor_get(&r, &v, &lead, &trail))
            return TSDB_ECORRUPT;
        ts[i] = (int64_t)t;
        vs[i] = bits_double(v);
    }

    /* Reads past the end returned zeros; only now is that an error. */
    if (bitio_r_over(&r))
        return TSDB_ECORRUPT;
    return TSDB_OK;
}
