/*
 * Sample generators shared by the codec tests (test_gorilla.c,
 * test_pack.c): timestamp and value shapes that stress each part of the
 * bitstreams, from one seeded generator (see testutil.h).
 */
#ifndef TESTS_TSDB_SAMPLES_H
#define TESTS_TSDB_SAMPLES_H

#include <math.h>

#include "testutil.h"
#include "tsdb/bytes.h"

static struct test_rng rng;

static uint64_t rnd(void)
{
    return test_rng_next(&rng);
}

static uint64_t below(uint64_t n)
{
    return test_rng_below(&rng, n);
}

/* Special doubles every codec must carry bit-exactly. */
static const uint64_t specials[] = {
    UINT64_C(0x7ff0000000000002), /* Prometheus stale marker */
    UINT64_C(0x7ff8000000000000), /* default quiet NaN */
    UINT64_C(0xfff8000000000001), /* negative NaN with payload */
    UINT64_C(0x7ff4000000000000), /* signalling NaN */
    UINT64_C(0x7fffffffffffffff), /* NaN, all payload bits */
    UINT64_C(0x7ff0000000000000), /* +Inf */
    UINT64_C(0xfff0000000000000), /* -Inf */
    UINT64_C(0x8000000000000000), /* -0.0 */
    UINT64_C(0x0000000000000000), /* +0.0 */
    UINT64_C(0x0000000000000001), /* smallest subnormal */
    UINT64_C(0x800fffffffffffff), /* largest negative subnormal */
    UINT64_C(0x0010000000000000), /* DBL_MIN */
    UINT64_C(0x7fefffffffffffff), /* DBL_MAX */
    UINT64_C(0xffefffffffffffff), /* -DBL_MAX */
};
#define NSPECIALS (sizeof(specials) / sizeof(specials[0]))

/* ---- sample generators ------------------------------------------------ */

static void gen_ts(int64_t *ts, uint32_t n, unsigned kind)
{
    static const int64_t steps[] = {1000, 10000, 15000, 60000};
    int64_t step = steps[below(4)], t = 1704067200000 + (int64_t)below(1000);

    for (uint32_t i = 0; i < n; i++) {
        switch (kind) {
        case 0: /* exact grid */
            ts[i] = t + (int64_t)i * step;
            break;
        case 1: /* grid, a tenth of the samples a few ms off */
            ts[i] = t + (int64_t)i * step +
                    (below(10) == 0 ? (int64_t)below(61) - 30 : 0);
            break;
        case 2: /* grid, every sample jittered */
            ts[i] = t + (int64_t)i * step + (int64_t)below(9) - 4;
            break;
        case 3: /* missed scrapes and long gaps */
            t += step * (below(50) == 0 ? 1 + (int64_t)below(400) : 1);
            ts[i] = t;
            break;
        case 4: /* runs of equal timestamps */
            t += below(3) == 0 ? 0 : step;
            ts[i] = t;
            break;
        case 5: /* irregular events */
            t += (int64_t)(rnd() >> (40 + below(24)));
            ts[i] = t;
            break;
        case 6: /* negative, around the epoch */
            ts[i] = -500000 + (int64_t)i * step;
            break;
        default: /* any int64 at all, even unsorted: arithmetic wraps */
            ts[i] = (int64_t)rnd();
            break;
        }
    }
}

static double gen_value(unsigned kind, uint32_t i, double prev)
{
    switch (kind) {
    case 0: /* counter with rare resets */
        return below(500) == 0 ? 0 : prev + (double)below(3000);
    case 1: /* gauge with one or two decimals */
        return (double)(int64_t)(below(20001) - 10000) / (below(2) ? 10 : 100);
    case 2: /* constant */
        return 42.0;
    case 3: /* random bit patterns */
        return bits_double(rnd());
    case 4: /* specials */
        return bits_double(specials[below(NSPECIALS)]);
    case 5: /* sticky small integers */
        return below(20) == 0 ? (double)below(8) : prev;
    case 6: /* smooth float (XOR's favourite) */
        return sin((double)i / 50.0) * 1000.0;
    case 7: /* a decimal counter with a rare special value */
        return below(100) == 0 ? bits_double(specials[below(NSPECIALS)])
                               : (double)(i * 37 + below(5)) / 100;
    default: /* a mix of everything per sample */
        return gen_value((unsigned)below(8), i, prev);
    }
}

static void gen_values(double *vs, uint32_t n, unsigned kind)
{
    double prev = 0;

    for (uint32_t i = 0; i < n; i++)
        prev = vs[i] = gen_value(kind, i, prev);
}

/* Fills ts/vs with every special value after every other (room for
 * 2 * NSPECIALS^2 samples, a second apart), so that each XOR case meets
 * each; returns the count. */
static inline uint32_t gen_special_pairs(int64_t *ts, double *vs)
{
    uint32_t n = 0;

    for (size_t a = 0; a < NSPECIALS; a++) {
        for (size_t b = 0; b < NSPECIALS; b++) {
            ts[n] = (int64_t)n * 1000;
            vs[n++] = bits_double(specials[a]);
            ts[n] = (int64_t)n * 1000;
            vs[n++] = bits_double(specials[b]);
        }
    }
    return n;
}

#endif
