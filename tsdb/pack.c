/*
 * The sealed-chunk codec.  A sealed chunk is written once and decoded by
 * every query, so the encoder may look at the whole chunk several times
 * to pick the smallest of a few sub-encodings, and the decoder works a
 * block of values at a time.  The stream is specified in storage-format.md
 * section "Packed chunk"; this file does not restate it.
 *
 * Timestamps become one integer sequence (grid residuals, deltas or
 * delta-of-deltas); values become another (scaled decimals m, their deltas
 * or delta-of-deltas) or fall back to Gorilla XOR.  Integer sequences are
 * cut into blocks of PACK_BLOCK, each frame-of-reference bit-packed with
 * patched exceptions (blk_plan below).
 *
 * Sits below chunk.c; pure code (no LMDB, logging, globals or heap: the
 * encoder uses about 12 KB of stack, the decoder about 2 KB).
 *
 * Invariants:
 * 1. The encoder computes the exact size of every candidate before it
 *    writes a byte, so what it writes is exactly what it planned.
 * 2. All integer arithmetic on timestamps and scaled values wraps modulo
 *    2^64 in the encoder and the decoder alike, so any int64 input
 *    round-trips whatever its range.
 * 3. A decimal value is stored as m only if (double)m / 10^k gives back its
 *    exact bits under IEEE round-to-nearest double arithmetic; the decoder
 *    evaluates the same expression.
 * 4. The decoder checks every count, width and position read from the
 *    input before using it, and reads through bitio_r, which never touches
 *    memory past the input.
 */
#include "tsdb/pack.h"

#include "tsdb/bitio.h"
#include "tsdb/bytes.h"
#include "tsdb/error.h"
#include "tsdb/gorilla.h"

#include <float.h>
#include <math.h>
#include <stdbool.h>

/* Invariant 3 needs each double operation rounded once, to double: true
 * on x86-64 and arm64, false with x87 math or -ffast-math. */
#if !defined(FLT_EVAL_METHOD) || FLT_EVAL_METHOD != 0 || defined(__FAST_MATH__)
#error "pack.c needs FLT_EVAL_METHOD == 0 (IEEE double evaluation)"
#endif

/* Values per frame-of-reference block; positions inside take 7 bits. */
#define PACK_BLOCK 128

/* Largest decimal scale k (10^18 and below are exact doubles). */
#define PACK_KMAX 18

/* Mode byte (storage-format.md "Packed chunk", header). */
#define TS_GRID  0
#define TS_DELTA 1
#define TS_DOD   2
#define VAL_DEC0 0
#define VAL_DEC1 1
#define VAL_DEC2 2
#define VAL_XOR  3
#define MODE_EXC 0x20

/* Exception value tags: common special values take no payload. */
#define EXC_RAW   0
#define EXC_STALE 1
#define EXC_PINF  2
#define EXC_NINF  3
#define EXC_NAN   4
#define EXC_NZERO 5
#define EXC_NTAGS 6

static const uint64_t exc_bits[EXC_NTAGS] = {
    0,
    UINT64_C(0x7ff0000000000002),
    UINT64_C(0x7ff0000000000000),
    UINT64_C(0xfff0000000000000),
    UINT64_C(0x7ff8000000000000),
    UINT64_C(0x8000000000000000),
};

static const double p10[PACK_KMAX + 1] = {
    1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,
    1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18,
};

/* ---- shared helpers ---------------------------------------------------- */

static unsigned varint_len(uint64_t v)
{
    unsigned n = 1;

    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static double dec_value(int64_t m, unsigned k)
{
    return k ? (double)m / p10[k] : (double)m;
}

/* The m with dec_value(m, k) bit-identical to v, if there is one. */
static bool dec_scale(double v, unsigned k, int64_t *m)
{
    double s = v * p10[k];
    int64_t q;

    if (!(s > -9.2e18 && s < 9.2e18))
        return false;
    q = llrint(s);
    if (double_bits(dec_value(q, k)) != double_bits(v))
        return false;
    *m = q;
    return true;
}

/* The tag of an exception's value: EXC_RAW unless a common special. */
static unsigned exc_tag(uint64_t bits)
{
    for (unsigned t = 1; t < EXC_NTAGS; t++)
        if (exc_bits[t] == bits)
            return t;
    return EXC_RAW;
}

/* ---- the decimal view of a value column ------------------------------- */

/*
 * A value column as scaled decimals m = v * 10^k.  Values that are not
 * exactly m / 10^k are exceptions: their bits travel in the header and the
 * m sequence carries a stand-in (a linear extrapolation of the two m before
 * it), so that they do not disturb the deltas around them.  Lives on the
 * encoder's stack: about 8 KB for the exception bitmap.
 */
struct dec {
    const double *vs;
    uint32_t n;
    unsigned k;
    uint32_t nexc;
    uint64_t exc_bytes; /* the exception list, its count included */
    uint64_t fill0;     /* stand-in for sample 0: the first m there is */
    uint64_t excmap[(GORILLA_MAX_SAMPLES + 63) / 64];
};

/*
 * The decimal scale: the k that minimises an estimate of exceptions (about
 * 72 bits each) plus the cost of larger integers (log2(10) bits per sample
 * per digit).  Values with no k up to PACK_KMAX count as exceptions.
 */
static unsigned choose_k(const double *vs, uint32_t n)
{
    uint32_t hist[PACK_KMAX + 2] = {0}, above;
    uint64_t best_cost = UINT64_MAX;
    unsigned best = 0;
    int64_t m;

    for (uint32_t i = 0; i < n; i++) {
        unsigned k = 0;

        while (k <= PACK_KMAX && !dec_scale(vs[i], k, &m)) {
            if (!(fabs(vs[i]) * p10[k] < 9.2e18))
                k = PACK_KMAX;
            k++;
        }
        hist[k]++;
    }
    above = n - hist[0];
    for (unsigned k = 0; k <= PACK_KMAX; k++) {
        uint64_t cost = (uint64_t)above * 72 * 100 + (uint64_t)n * k * 332;

        if (cost < best_cost) {
            best_cost = cost;
            best = k;
        }
        above -= hist[k + 1];
    }
    return best;
}

static bool dec_is_exc(const struct dec *d, uint32_t i)
{
    return d->excmap[i / 64] >> (i % 64) & 1;
}

static void dec_init(struct dec *d, const double *vs, uint32_t n)
{
    uint32_t last = 0;
    bool have_fill = false;
    int64_t m;

    d->vs = vs;
    d->n = n;
    d->k = choose_k(vs, n);
    d->nexc = 0;
    d->exc_bytes = 0;
    d->fill0 = 0;
    memset(d->excmap, 0, (n + 63) / 64 * sizeof(d->excmap[0]));
    for (uint32_t i = 0; i < n; i++) {
        if (dec_scale(vs[i], d->k, &m)) {
            if (!have_fill)
                d->fill0 = (uint64_t)m;
            have_fill = true;
            continue;
        }
        d->excmap[i / 64] |= UINT64_C(1) << (i % 64);
        d->exc_bytes += varint_len(i - last) + 1;
        if (exc_tag(double_bits(vs[i])) == EXC_RAW)
            d->exc_bytes += 8;
        last = i + 1;
        d->nexc++;
    }
    if (d->nexc)
        d->exc_bytes += varint_len(d->nexc);
}

/* m of sample i; m1 and m2 are the m of the two samples before it. */
static uint64_t dec_m(const struct dec *d, uint32_t i, uint64_t m1, uint64_t m2)
{
    if (!dec_is_exc(d, i))
        return (uint64_t)llrint(d->vs[i] * p10[d->k]);
    if (i == 0)
        return d->fill0;
    return i == 1 ? m1 : 2 * m1 - m2;
}

/* Header bytes of a decimal column: scale, m0, d1, exceptions. */
static uint64_t dec_hdr_bytes(const struct dec *d, unsigned order)
{
    uint64_t m0 = dec_m(d, 0, 0, 0), bytes;

    bytes = 1 + varint_len(zigzag_enc((int64_t)m0)) + d->exc_bytes;
    if (order == 2 && d->n >= 2)
        bytes += varint_len(zigzag_enc((int64_t)(dec_m(d, 1, m0, 0) - m0)));
    return bytes;
}

/* ---- integer sequences: what the blocks pack --------------------------- */

enum seq_kind { SEQ_GRID, SEQ_DELTA, SEQ_DOD, SEQ_DEC };

/* A source of the integer sequence x[first..n) that one column becomes. */
struct seq {
    enum seq_kind kind;
    const int64_t *ts;
    const struct dec *dec;
    uint32_t n;
    uint32_t i;      /* next sample */
    uint64_t step;   /* grid interval */
    unsigned order;  /* SEQ_DEC: 0 raw m, 1 deltas, 2 delta-of-deltas */
    uint64_t m1, m2; /* SEQ_DEC: m of the two samples before i */
};

static void seq_start(struct seq *s)
{
    bool two = s->kind == SEQ_DOD || (s->kind == SEQ_DEC && s->order == 2);

    s->i = two && s->n >= 2 ? 2 : 1;
    if (s->kind != SEQ_DEC)
        return;
    s->m1 = dec_m(s->dec, 0, 0, 0);
    s->m2 = 0;
    if (s->i == 2) {
        s->m2 = s->m1;
        s->m1 = dec_m(s->dec, 1, s->m1, 0);
    }
}

static uint64_t seq_next_dec(struct seq *s)
{
    uint64_t m = dec_m(s->dec, s->i, s->m1, s->m2), x;

    if (s->order == 0)
        x = m;
    else if (s->order == 1)
        x = m - s->m1;
    else
        x = m - 2 * s->m1 + s->m2;
    s->m2 = s->m1;
    s->m1 = m;
    return x;
}

/* Fills x[0..cnt) with the next cnt sequence values. */
static void seq_fill(struct seq *s, uint64_t *x, unsigned cnt)
{
    const int64_t *t = s->ts;

    for (unsigned j = 0; j < cnt; j++, s->i++) {
        uint32_t i = s->i;

        switch (s->kind) {
        case SEQ_GRID:
            x[j] = (uint64_t)t[i] - (uint64_t)t[0] - (uint64_t)i * s->step;
            break;
        case SEQ_DELTA:
            x[j] = (uint64_t)t[i] - (uint64_t)t[i - 1];
            break;
        case SEQ_DOD:
            x[j] = (uint64_t)t[i] - 2 * (uint64_t)t[i - 1] + (uint64_t)t[i - 2];
            break;
        case SEQ_DEC:
            x[j] = seq_next_dec(s);
            break;
        }
    }
}

/* ---- one frame-of-reference block -------------------------------------- */

/* The choice for one block: slots of b bits hold x - ref; the rest are
 * exceptions of we bits each. */
struct blk {
    unsigned b;
    unsigned we;
    unsigned nexc;
    uint64_t ref;
    uint64_t bits; /* exact size of the block in the stream */
};

static bool in_window(uint64_t x, uint64_t ref, unsigned b)
{
    return b == 64 || x - ref < (UINT64_C(1) << b);
}

/* Shell sort of a block as signed values (gaps from Ciura). */
static void sort_i64(int64_t *a, unsigned n)
{
    static const unsigned gaps[] = {57, 23, 10, 4, 1};

    for (unsigned g = 0; g < sizeof(gaps) / sizeof(gaps[0]); g++) {
        unsigned h = gaps[g];

        for (unsigned i = h; i < n; i++) {
            int64_t v = a[i];
            unsigned j = i;

            for (; j >= h && a[j - h] > v; j -= h)
                a[j] = a[j - h];
            a[j] = v;
        }
    }
}

/*
 * Sorts x[0..n) into s as signed values.  Blocks spanning up to 24 bits
 * (nearly all) take a branch-free radix sort of x - min, 6 bits a pass.
 */
static void sort_block(const uint64_t *x, unsigned n, int64_t min,
                       uint64_t span, int64_t *s)
{
    uint64_t a[PACK_BLOCK], b[PACK_BLOCK], *src = a, *dst = b, *t;
    unsigned w = bitio_width(span);

    if (w > 24) {
        for (unsigned i = 0; i < n; i++)
            s[i] = (int64_t)x[i];
        sort_i64(s, n);
        return;
    }
    for (unsigned i = 0; i < n; i++)
        a[i] = x[i] - (uint64_t)min;
    for (unsigned shift = 0; shift < w; shift += 6) {
        unsigned count[65] = {0};

        for (unsigned i = 0; i < n; i++)
            count[(src[i] >> shift & 63) + 1]++;
        for (unsigned d = 1; d < 64; d++)
            count[d] += count[d - 1];
        for (unsigned i = 0; i < n; i++)
            dst[count[src[i] >> shift & 63]++] = src[i];
        t = src;
        src = dst;
        dst = t;
    }
    for (unsigned i = 0; i < n; i++)
        s[i] = (int64_t)(src[i] + (uint64_t)min);
}

/* Exact bits of a block with window (ref, b), setting we and nexc. */
static uint64_t blk_cost(const uint64_t *x, unsigned cnt, uint64_t prev_ref,
                         struct blk *p)
{
    uint64_t bits, zmax = 0;

    p->nexc = 0;
    for (unsigned i = 0; i < cnt; i++) {
        uint64_t z = zigzag_enc((int64_t)(x[i] - p->ref));

        if (!in_window(x[i], p->ref, p->b)) {
            p->nexc++;
            zmax |= z;
        }
    }
    p->we = bitio_width(zmax);
    bits = 7 + 7 + bitio_width(zigzag_enc((int64_t)(p->ref - prev_ref))) + 1 +
           (uint64_t)cnt * p->b;
    if (p->nexc)
        bits += 14 + (uint64_t)p->nexc * (bitio_width(cnt - 1) + p->we);
    p->bits = bits;
    return bits;
}

/* Exception counts tried by blk_plan: every count to 16, then sparser. */
static const unsigned exc_try[] = {0,  1,  2,  3,  4,  5,  6,  7,  8,
                                   9,  10, 11, 12, 13, 14, 15, 16, 20,
                                   24, 28, 32, 40, 48, 56, 64, 80, 96};

/*
 * Picks the slot width and reference for a block.  With e values left out
 * as exceptions, the narrowest window holds n - e consecutive values of
 * the sorted block; each such window is priced (exception width estimated
 * from the extremes) and the cheapest kept.  Pricing every width b
 * instead gave the same sizes on our data, more slowly.
 */
static void blk_plan(const uint64_t *x, unsigned n, uint64_t prev_ref,
                     struct blk *best)
{
    int64_t s[PACK_BLOCK], lo = (int64_t)x[0], hi = lo;
    unsigned pb = bitio_width(n - 1);
    uint64_t best_est = UINT64_MAX;

    for (unsigned i = 1; i < n; i++) {
        lo = (int64_t)x[i] < lo ? (int64_t)x[i] : lo;
        hi = (int64_t)x[i] > hi ? (int64_t)x[i] : hi;
    }

    /* A constant block (a perfect grid, a flat gauge) needs no sort. */
    if (lo == hi) {
        best->b = 0;
        best->ref = x[0];
        blk_cost(x, n, prev_ref, best);
        return;
    }
    sort_block(x, n, lo, (uint64_t)hi - (uint64_t)lo, s);

    for (unsigned t = 0; t < sizeof(exc_try) / sizeof(exc_try[0]); t++) {
        unsigned e = exc_try[t], in = n - e, i0 = 0, b, we = 0;
        uint64_t span = UINT64_MAX, est, ref;

        if (e >= n)
            break;
        for (unsigned i = 0; i <= e; i++) {
            uint64_t d = (uint64_t)s[i + in - 1] - (uint64_t)s[i];

            if (d < span) {
                span = d;
                i0 = i;
            }
        }
        b = bitio_width(span);
        ref = (uint64_t)s[i0];
        if (i0 > 0)
            we = bitio_width(zigzag_enc((int64_t)((uint64_t)s[0] - ref)));
        if (i0 < e) {
            unsigned w2 =
                bitio_width(zigzag_enc((int64_t)((uint64_t)s[n - 1] - ref)));
            we = w2 > we ? w2 : we;
        }
        est = (uint64_t)n * b + (e ? 14 + (uint64_t)e * (pb + we) : 0) +
              bitio_width(zigzag_enc((int64_t)(ref - prev_ref)));
        if (est < best_est) {
            best_est = est;
            best->b = b;
            best->ref = ref;
        }
    }
    blk_cost(x, n, prev_ref, best);
}

static void blk_write(struct bitio_w *w, const uint64_t *x, unsigned cnt,
                      uint64_t prev_ref, const struct blk *p)
{
    uint64_t zr = zigzag_enc((int64_t)(p->ref - prev_ref));
    unsigned wr = bitio_width(zr), pb = bitio_width(cnt - 1);

    bitio_w_put32(w, p->b, 7);
    bitio_w_put32(w, wr, 7);
    bitio_w_put(w, zr, wr);
    bitio_w_put32(w, p->nexc > 0, 1);
    if (p->nexc) {
        bitio_w_put32(w, p->nexc - 1, 7);
        bitio_w_put32(w, p->we, 7);
    }
    for (unsigned i = 0; i < cnt; i++) {
        bool in = in_window(x[i], p->ref, p->b);

        bitio_w_put(w, in ? x[i] - p->ref : 0, p->b);
    }
    for (unsigned i = 0; p->nexc && i < cnt; i++) {
        if (in_window(x[i], p->ref, p->b))
            continue;
        bitio_w_put32(w, i, pb);
        bitio_w_put(w, zigzag_enc((int64_t)(x[i] - p->ref)), p->we);
    }
}

/* Plans (w == NULL) or writes a whole sequence; returns its exact bits. */
static uint64_t seq_pack(struct seq *s, struct bitio_w *w)
{
    uint64_t x[PACK_BLOCK], bits = 0, prev_ref = 0;
    struct blk p;

    seq_start(s);
    while (s->i < s->n) {
        uint32_t left = s->n - s->i;
        unsigned cnt = left < PACK_BLOCK ? left : PACK_BLOCK;

        seq_fill(s, x, cnt);
        blk_plan(x, cnt, prev_ref, &p);
        if (w)
            blk_write(w, x, cnt, prev_ref, &p);
        bits += p.bits;
        prev_ref = p.ref;
    }
    return bits;
}

/* ---- encoder: choosing the sub-encodings ------------------------------- */

/* The plan for a whole chunk: modes and exact sizes. */
struct plan {
    unsigned ts_mode;
    uint64_t step;   /* TS_GRID: interval */
    uint64_t ts_hdr; /* header bytes after t0 that the mode needs */
    uint64_t ts_bits;
    unsigned val_mode;
    uint64_t val_hdr; /* header bytes of the value column */
    uint64_t val_bits;
};

static enum seq_kind ts_kind(unsigned mode)
{
    return mode == TS_GRID ? SEQ_GRID : mode == TS_DELTA ? SEQ_DELTA : SEQ_DOD;
}

/* Prices the timestamps in one mode; keeps it in pl if it is cheaper. */
static void ts_try(const int64_t *ts, uint32_t n, unsigned mode, uint64_t step,
                   struct plan *pl)
{
    struct seq s = {.kind = ts_kind(mode), .ts = ts, .n = n, .step = step};
    uint64_t hdr = 1 + varint_len(zigzag_enc(ts[0])), bits;

    if (n >= 2 && mode == TS_GRID)
        hdr += varint_len(step);
    if (n >= 2 && mode == TS_DOD)
        hdr += varint_len((uint64_t)ts[1] - (uint64_t)ts[0]);
    bits = seq_pack(&s, NULL);
    if (pl->ts_bits != UINT64_MAX &&
        hdr * 8 + bits >= pl->ts_hdr * 8 + pl->ts_bits)
        return;
    pl->ts_mode = mode;
    pl->step = step;
    pl->ts_hdr = hdr;
    pl->ts_bits = bits;
}

/* The delta held by more than half the pairs (majority vote); when none
 * is, an arbitrary delta, which is then simply priced like the others. */
static uint64_t majority_delta(const int64_t *ts, uint32_t n)
{
    uint64_t cand = 0, d;
    uint32_t votes = 0;

    for (uint32_t i = 1; i < n; i++) {
        d = (uint64_t)ts[i] - (uint64_t)ts[i - 1];
        if (votes == 0)
            cand = d;
        votes += cand == d ? 1 : (uint32_t)-1;
    }
    return cand;
}

/*
 * Grid intervals tried: the delta most pairs share (exact cadence with
 * sparse jitter) and the mean delta, rounded (jitter on every sample).
 * Then the delta and delta-of-delta modes for irregular series.
 */
static void plan_ts(const int64_t *ts, uint32_t n, struct plan *pl)
{
    uint64_t major = majority_delta(ts, n), mean = 0;
    int64_t span = (int64_t)((uint64_t)ts[n - 1] - (uint64_t)ts[0]);

    if (n > 1 && span > 0)
        mean = (uint64_t)(span / (n - 1) + (span % (n - 1) * 2 >= n - 1));
    pl->ts_bits = UINT64_MAX;
    ts_try(ts, n, TS_GRID, major, pl);
    if (mean != major)
        ts_try(ts, n, TS_GRID, mean, pl);
    ts_try(ts, n, TS_DELTA, 0, pl);
    ts_try(ts, n, TS_DOD, 0, pl);
}

/* Exact bits of the values under Gorilla XOR (the codes gorilla.c writes),
 * or, with w set, writes them. */
static uint64_t xor_pack(const double *vs, uint32_t n, struct bitio_w *w)
{
    uint64_t prev = double_bits(vs[0]), bits = 64;
    unsigned wl = 0, wt = 0, lead, trail, len;

    if (w)
        bitio_w_put(w, prev, 64);
    for (uint32_t i = 1; i < n; i++) {
        uint64_t cur = double_bits(vs[i]), x = cur ^ prev;

        prev = cur;
        if (x == 0) {
            bits += 1;
            if (w)
                bitio_w_put32(w, 0, 1);
        } else if (bitio_xor_reuse(x, wl, wt, &lead, &trail)) {
            bits += 2 + 64 - wl - wt;
            if (w) {
                bitio_w_put32(w, 2, 2);
                bitio_w_put(w, x >> wt, 64 - wl - wt);
            }
        } else {
            len = 64 - lead - trail;
            bits += 13 + len;
            if (w) {
                bitio_w_put32(w, 3u << 11 | lead << 6 | (len & 63), 13);
                bitio_w_put(w, x >> trail, len);
            }
            wl = lead;
            wt = trail;
        }
    }
    return bits;
}

/* Prices XOR and the three decimal orders; keeps the cheapest in pl. */
static void plan_values(const struct dec *d, struct plan *pl)
{
    struct seq s = {.kind = SEQ_DEC, .dec = d, .n = d->n};
    uint64_t best, cost, bits;

    pl->val_mode = VAL_XOR;
    pl->val_bits = xor_pack(d->vs, d->n, NULL);
    pl->val_hdr = 0;
    best = pl->val_bits;
    if (d->nexc == d->n)
        return;
    for (unsigned order = 0; order <= 2; order++) {
        s.order = order;
        bits = seq_pack(&s, NULL);
        cost = dec_hdr_bytes(d, order) * 8 + bits;
        if (cost < best) {
            best = cost;
            pl->val_mode = VAL_DEC0 + order;
            pl->val_bits = bits;
            pl->val_hdr = dec_hdr_bytes(d, order);
        }
    }
}

/* ---- encoder: writing -------------------------------------------------- */

static uint8_t *put_exceptions(uint8_t *p, const struct dec *d)
{
    uint32_t last = 0;

    p += varint_put(p, d->nexc);
    for (uint32_t i = 0; i < d->n; i++) {
        uint64_t bits = double_bits(d->vs[i]);
        unsigned tag;

        if (!dec_is_exc(d, i))
            continue;
        p += varint_put(p, i - last);
        last = i + 1;
        tag = exc_tag(bits);
        *p++ = (uint8_t)tag;
        if (tag == EXC_RAW) {
            put_be64(p, bits);
            p += 8;
        }
    }
    return p;
}

static uint8_t *put_header(uint8_t *p, const int64_t *ts, uint32_t n,
                           const struct dec *d, const struct plan *pl)
{
    bool dec = pl->val_mode != VAL_XOR;
    uint64_t m0;

    *p++ = (uint8_t)(pl->ts_mode | pl->val_mode << 2 |
                     (dec && d->nexc ? MODE_EXC : 0));
    p += varint_put(p, zigzag_enc(ts[0]));
    if (n >= 2 && pl->ts_mode == TS_GRID)
        p += varint_put(p, pl->step);
    if (n >= 2 && pl->ts_mode == TS_DOD)
        p += varint_put(p, (uint64_t)ts[1] - (uint64_t)ts[0]);
    if (!dec)
        return p;

    m0 = dec_m(d, 0, 0, 0);
    *p++ = (uint8_t)d->k;
    p += varint_put(p, zigzag_enc((int64_t)m0));
    if (n >= 2 && pl->val_mode == VAL_DEC2)
        p += varint_put(p, zigzag_enc((int64_t)(dec_m(d, 1, m0, 0) - m0)));
    if (d->nexc)
        p = put_exceptions(p, d);
    return p;
}

int pack_encode(const int64_t *ts, const double *vs, uint32_t n, uint8_t *out,
                size_t cap, size_t *len)
{
    struct plan pl;
    struct dec d;
    struct bitio_w w;
    struct seq s = {.ts = ts, .dec = &d, .n = n};
    uint64_t total;
    uint8_t *p;

    if (n == 0 || n > GORILLA_MAX_SAMPLES)
        return TSDB_EINVAL;
    dec_init(&d, vs, n);
    plan_ts(ts, n, &pl);
    plan_values(&d, &pl);

    /* Size everything first: nothing is written unless it fits. */
    total = pl.ts_hdr + pl.val_hdr + (pl.ts_bits + pl.val_bits + 7) / 8;
    if (total > cap)
        return TSDB_EFULL;

    p = put_header(out, ts, n, &d, &pl);
    bitio_w_init(&w, p, out + total);
    s.kind = ts_kind(pl.ts_mode);
    s.step = pl.step;
    seq_pack(&s, &w);
    if (pl.val_mode == VAL_XOR) {
        xor_pack(vs, n, &w);
    } else {
        s.kind = SEQ_DEC;
        s.order = pl.val_mode - VAL_DEC0;
        seq_pack(&s, &w);
    }
    p = bitio_w_flush(&w);

    /* Invariant 1 makes this unreachable; a plan that missed is refused
     * rather than stored. */
    if (w.full || (uint64_t)(p - out) != total)
        return TSDB_EFULL;
    *len = (size_t)total;
    return TSDB_OK;
}

/* ---- decoder ----------------------------------------------------------- */

/* Unpacks cnt slots of b bits at r's position into x, adding ref. */
static void unpack(struct bitio_r *r, unsigned b, unsigned cnt, uint64_t ref,
                   uint64_t *x)
{
    uint64_t pos = r->pos;

    if (b == 0) {
        for (unsigned i = 0; i < cnt; i++)
            x[i] = ref;
    } else if (b > 57) {
        for (unsigned i = 0; i < cnt; i++)
            x[i] = ref + bitio_r_get(r, b);
        return;
    } else if ((pos + (uint64_t)cnt * b) / 8 + 8 <= r->len) {
        /* Every 8-byte load below stays inside the input. */
        const uint8_t *buf = r->buf;
        unsigned shift = 64 - b;

        for (unsigned i = 0; i < cnt; i++, pos += b)
            x[i] =
                ref + (bitio_load_be64(buf + (pos >> 3)) << (pos & 7) >> shift);
    } else {
        for (unsigned i = 0; i < cnt; i++, pos += b)
            x[i] =
                ref + (bitio_load_safe(r->buf, r->len, pos >> 3) << (pos & 7) >>
                       (64 - b));
    }
    r->pos += (uint64_t)cnt * b;
}

/* Reads one block of cnt values into x; *prev_ref is the last block's. */
static int blk_read(struct bitio_r *r, unsigned cnt, uint64_t *prev_ref,
                    uint64_t *x)
{
    unsigned b, wr, we = 0, nexc = 0, pb = bitio_width(cnt - 1);
    uint64_t ref;

    b = (unsigned)bitio_r_get57(r, 7);
    wr = (unsigned)bitio_r_get57(r, 7);
    if (b > 64 || wr > 64)
        return TSDB_ECORRUPT;
    ref = *prev_ref + (uint64_t)zigzag_dec(bitio_r_get(r, wr));
    if (bitio_r_get57(r, 1)) {
        nexc = (unsigned)bitio_r_get57(r, 7) + 1;
        we = (unsigned)bitio_r_get57(r, 7);
        if (nexc > cnt || we > 64)
            return TSDB_ECORRUPT;
    }
    if (r->pos + (uint64_t)cnt * b > (uint64_t)r->len * 8)
        return TSDB_ECORRUPT;
    unpack(r, b, cnt, ref, x);
    for (unsigned e = 0; e < nexc; e++) {
        unsigned i = (unsigned)bitio_r_get(r, pb);

        if (i >= cnt)
            return TSDB_ECORRUPT;
        x[i] = ref + (uint64_t)zigzag_dec(bitio_r_get(r, we));
    }
    if (bitio_r_over(r))
        return TSDB_ECORRUPT;
    *prev_ref = ref;
    return TSDB_OK;
}

/* The parsed byte header of a packed chunk. */
struct hdr {
    unsigned ts_mode;
    unsigned val_mode;
    unsigned k;
    uint64_t t0;
    uint64_t tparam; /* grid interval or first delta */
    uint64_t m0;
    uint64_t d1;        /* VAL_DEC2: first delta of m */
    const uint8_t *exc; /* exception list, NULL if none */
    uint32_t nexc;
};

/* Walks the exception list, checking it; with vs set, patches vs. */
static int get_exceptions(const uint8_t **pp, const uint8_t *end, uint32_t n,
                          uint32_t nexc, double *vs)
{
    const uint8_t *p = *pp;
    uint64_t gap, pos = 0;

    for (uint32_t e = 0; e < nexc; e++) {
        uint64_t bits;
        unsigned tag;

        if (varint_get(&p, end, &gap) != 0 || gap >= n - pos || p >= end)
            return TSDB_ECORRUPT;
        pos += gap;
        tag = *p++;
        if (tag >= EXC_NTAGS)
            return TSDB_ECORRUPT;
        bits = exc_bits[tag];
        if (tag == EXC_RAW) {
            if (end - p < 8)
                return TSDB_ECORRUPT;
            bits = get_be64(p);
            p += 8;
        }
        if (vs)
            vs[pos] = bits_double(bits);
        pos++;
    }
    *pp = p;
    return TSDB_OK;
}

static int get_header(const uint8_t **pp, const uint8_t *end, uint32_t n,
                      struct hdr *h)
{
    const uint8_t *p = *pp;
    unsigned mode;
    uint64_t cnt;

    if (p >= end)
        return TSDB_ECORRUPT;
    mode = *p++;
    h->ts_mode = mode & 3;
    h->val_mode = mode >> 2 & 7;
    if (h->ts_mode > TS_DOD || h->val_mode > VAL_XOR || mode & 0xc0 ||
        (h->val_mode == VAL_XOR && mode & MODE_EXC))
        return TSDB_ECORRUPT;
    if (varint_get(&p, end, &h->t0) != 0)
        return TSDB_ECORRUPT;
    h->t0 = (uint64_t)zigzag_dec(h->t0);
    h->tparam = 0;
    if (n >= 2 && h->ts_mode != TS_DELTA &&
        varint_get(&p, end, &h->tparam) != 0)
        return TSDB_ECORRUPT;
    h->exc = NULL;
    h->nexc = 0;
    if (h->val_mode == VAL_XOR) {
        *pp = p;
        return TSDB_OK;
    }

    if (p >= end || *p > PACK_KMAX)
        return TSDB_ECORRUPT;
    h->k = *p++;
    if (varint_get(&p, end, &h->m0) != 0)
        return TSDB_ECORRUPT;
    h->m0 = (uint64_t)zigzag_dec(h->m0);
    h->d1 = 0;
    if (n >= 2 && h->val_mode == VAL_DEC2) {
        if (varint_get(&p, end, &h->d1) != 0)
            return TSDB_ECORRUPT;
        h->d1 = (uint64_t)zigzag_dec(h->d1);
    }
    if (mode & MODE_EXC) {
        if (varint_get(&p, end, &cnt) != 0 || cnt == 0 || cnt > n)
            return TSDB_ECORRUPT;
        h->exc = p;
        h->nexc = (uint32_t)cnt;
        if (get_exceptions(&p, end, n, h->nexc, NULL) != TSDB_OK)
            return TSDB_ECORRUPT;
    }
    *pp = p;
    return TSDB_OK;
}

static int get_timestamps(struct bitio_r *r, const struct hdr *h, uint32_t n,
                          int64_t *ts)
{
    uint64_t x[PACK_BLOCK], ref = 0, t = h->t0, d = 0;
    uint32_t i = 1;

    ts[0] = (int64_t)t;
    if (h->ts_mode == TS_DOD && n >= 2) {
        d = h->tparam;
        t += d;
        ts[1] = (int64_t)t;
        i = 2;
    }
    while (i < n) {
        unsigned cnt = n - i < PACK_BLOCK ? n - i : PACK_BLOCK;

        if (blk_read(r, cnt, &ref, x) != TSDB_OK)
            return TSDB_ECORRUPT;
        if (h->ts_mode == TS_GRID) {
            uint64_t base = h->t0 + (uint64_t)i * h->tparam;

            for (unsigned j = 0; j < cnt; j++, base += h->tparam)
                ts[i + j] = (int64_t)(base + x[j]);
        } else if (h->ts_mode == TS_DELTA) {
            for (unsigned j = 0; j < cnt; j++)
                ts[i + j] = (int64_t)(t += x[j]);
        } else {
            for (unsigned j = 0; j < cnt; j++)
                ts[i + j] = (int64_t)(t += d += x[j]);
        }
        i += cnt;
    }
    return TSDB_OK;
}

/* Converts m[0..cnt) to doubles at scale k. */
static void dec_convert(const uint64_t *m, unsigned cnt, unsigned k, double *vs)
{
    if (k == 0) {
        for (unsigned j = 0; j < cnt; j++)
            vs[j] = (double)(int64_t)m[j];
        return;
    }
    for (unsigned j = 0; j < cnt; j++)
        vs[j] = (double)(int64_t)m[j] / p10[k];
}

static int get_decimals(struct bitio_r *r, const struct hdr *h, uint32_t n,
                        double *vs)
{
    uint64_t x[PACK_BLOCK], ref = 0, m = h->m0, d = 0;
    uint32_t i = 1;

    dec_convert(&m, 1, h->k, vs);
    if (h->val_mode == VAL_DEC2 && n >= 2) {
        d = h->d1;
        m += d;
        dec_convert(&m, 1, h->k, vs + 1);
        i = 2;
    }
    while (i < n) {
        unsigned cnt = n - i < PACK_BLOCK ? n - i : PACK_BLOCK;

        if (blk_read(r, cnt, &ref, x) != TSDB_OK)
            return TSDB_ECORRUPT;
        if (h->val_mode == VAL_DEC1) {
            for (unsigned j = 0; j < cnt; j++)
                x[j] = m += x[j];
        } else if (h->val_mode == VAL_DEC2) {
            for (unsigned j = 0; j < cnt; j++)
                x[j] = m += d += x[j];
        }
        dec_convert(x, cnt, h->k, vs + i);
        i += cnt;
    }
    return TSDB_OK;
}

static int get_xor(struct bitio_r *r, uint32_t n, double *vs)
{
    uint64_t v = bitio_r_get(r, 64);
    unsigned lead = 0, trail = 0;

    vs[0] = bits_double(v);
    for (uint32_t i = 1; i < n; i++) {
        if (!bitio_xor_get(r, &v, &lead, &trail))
            return TSDB_ECORRUPT;
        vs[i] = bits_double(v);
    }
    return bitio_r_over(r) ? TSDB_ECORRUPT : TSDB_OK;
}

int pack_decode(const uint8_t *in, size_t len, uint32_t n, int64_t *ts,
                double *vs)
{
    const uint8_t *p = in, *end = in + len;
    struct bitio_r r;
    struct hdr h;
    int rc;

    if (n == 0 || n > GORILLA_MAX_SAMPLES)
        return TSDB_ECORRUPT;
    if (get_header(&p, end, n, &h) != TSDB_OK)
        return TSDB_ECORRUPT;
    bitio_r_init(&r, in, len, (uint64_t)(p - in) * 8);
    if (get_timestamps(&r, &h, n, ts) != TSDB_OK)
        return TSDB_ECORRUPT;
    if (h.val_mode == VAL_XOR)
        rc = get_xor(&r, n, vs);
    else
        rc = get_decimals(&r, &h, n, vs);
    if (rc != TSDB_OK)
        return TSDB_ECORRUPT;
    if (h.exc)
        get_exceptions(&h.exc, end, n, h.nexc, vs);

    /* The stream ends in the last byte, padded with zero bits. */
    if ((r.pos + 7) / 8 != len)
        return TSDB_ECORRUPT;
    if (r.pos % 8 && in[len - 1] & (0xffu >> (r.pos % 8)))
        return TSDB_ECORRUPT;
    return TSDB_OK;
}
