/*
 * Tests for tsdb/pack.c: the worked example of storage-format.md as
 * golden bytes, seeded random round trips over a few million samples of
 * every shape we store, the choice of sub-encodings on typical series
 * (sizes guard against regressions), decimal edge cases, exceptions, the
 * encoder's bounds, and decoding of truncated, bit-flipped and hand-made
 * impossible streams.
 */
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "samples.h"
#include "testutil.h"
#include "tsdb/bytes.h"
#include "tsdb/error.h"
#include "tsdb/gorilla.h"
#include "tsdb/pack.h"

#define SEED 20261203

/* Room for any chunk: header, exceptions and 64-bit slots at worst. */
#define OUT_CAP(n) (64 + (size_t)(n)*24)

/* Mode byte fields (storage-format.md, "Packed chunk" header). */
#define MODE_TS(b)  ((b)&3)
#define MODE_VAL(b) ((b) >> 2 & 7)
#define MODE_EXC    0x20
#define TS_GRID     0
#define VAL_XOR     3

/* The doc's worked example (storage-format.md, "Packed worked
 * example"): a 10 s grid with one late sample, a gauge with one decimal
 * and a stale marker. */
static const int64_t golden_ts[] = {
    1700000000000, 1700000010000, 1700000020000,
    1700000030004, 1700000040000, 1700000050000,
};
static const double golden_vs[] = {
    0.5, 0.7, 1.0, 1.1, 0.0 /* stale marker, set by the test */, 1.3,
};
#define GOLDEN_STALE 4
static const uint8_t golden_bytes[] = {
    0x24, 0x80, 0xa0, 0xab, 0xfe, 0xf9, 0x62, 0x90, 0x4e, 0x01, 0x0a,
    0x01, 0x04, 0x01, 0x06, 0x00, 0x04, 0x00, 0x10, 0x28, 0xc0, 0x00,
};

/* ---- helpers ------------------------------------------------------------ */

static void assert_same(const int64_t *ts, const double *vs, const int64_t *ts2,
                        const double *vs2, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        if (ts[i] != ts2[i] || double_bits(vs[i]) != double_bits(vs2[i]))
            fail_msg("sample %u: %lld %016llx vs %lld %016llx", i,
                     (long long)ts[i], (unsigned long long)double_bits(vs[i]),
                     (long long)ts2[i],
                     (unsigned long long)double_bits(vs2[i]));
    }
}

/* Encodes into a fresh buffer of exactly the encoded size (so that ASan
 * catches an over-read by the decoder); caller frees. */
static uint8_t *encode(const int64_t *ts, const double *vs, uint32_t n,
                       size_t *len)
{
    uint8_t *out = malloc(OUT_CAP(n)), *exact;

    assert_non_null(out);
    assert_int_equal(pack_encode(ts, vs, n, out, OUT_CAP(n), len), TSDB_OK);
    exact = malloc(*len);
    assert_non_null(exact);
    memcpy(exact, out, *len);
    free(out);
    return exact;
}

/* Round-trips n samples; returns the encoded size. */
static size_t roundtrip(const int64_t *ts, const double *vs, uint32_t n)
{
    int64_t *ts2 = calloc(n, sizeof(*ts2));
    double *vs2 = calloc(n, sizeof(*vs2));
    size_t len;
    uint8_t *p = encode(ts, vs, n, &len);

    assert_int_equal(pack_decode(p, len, n, ts2, vs2), TSDB_OK);
    assert_same(ts, vs, ts2, vs2, n);
    free(p);
    free(ts2);
    free(vs2);
    return len;
}

/* ---- tests -------------------------------------------------------------- */

static void test_pack_golden_bytes(void **state)
{
    int64_t ts[6];
    double vs[6], vs2[6];
    uint8_t out[128];
    size_t len;

    (void)state;
    memcpy(vs, golden_vs, sizeof(vs));
    vs[GOLDEN_STALE] = bits_double(UINT64_C(0x7ff0000000000002));
    assert_int_equal(pack_encode(golden_ts, vs, 6, out, sizeof(out), &len),
                     TSDB_OK);
    assert_int_equal(len, sizeof(golden_bytes));
    assert_memory_equal(out, golden_bytes, sizeof(golden_bytes));

    assert_int_equal(
        pack_decode(golden_bytes, sizeof(golden_bytes), 6, ts, vs2), TSDB_OK);
    assert_same(golden_ts, vs, ts, vs2, 6);
}

static void test_pack_roundtrip_random(void **state)
{
    enum { MAXN = 1100 };
    int64_t ts[MAXN];
    double vs[MAXN];
    uint64_t total = 0, bytes = 0;

    (void)state;
    test_rng_init(&rng, "test_pack_roundtrip_random", SEED);
    while (total < 4000000) {
        uint32_t n = below(4) == 0 ? 1 + (uint32_t)below(20)
                                   : 100 + (uint32_t)below(MAXN - 100);

        gen_ts(ts, n, (unsigned)below(8));
        gen_values(vs, n, (unsigned)below(9));
        bytes += roundtrip(ts, vs, n);
        total += n;
    }
    print_message("%llu samples, %.2f bytes/sample\n",
                  (unsigned long long)total, (double)bytes / (double)total);
}

static void test_pack_special_values_exact(void **state)
{
    int64_t ts[NSPECIALS * NSPECIALS * 2 + 100];
    double vs[NSPECIALS * NSPECIALS * 2 + 100];
    uint32_t n = 0;

    (void)state;

    /* Every special after every other: an all-XOR chunk. */
    n = gen_special_pairs(ts, vs);
    roundtrip(ts, vs, n);

    /* Each special alone in a decimal chunk: one exception. */
    for (size_t s = 0; s < NSPECIALS; s++) {
        for (uint32_t i = 0; i < 100; i++) {
            ts[i] = (int64_t)i * 15000;
            vs[i] = (double)(i * 3) / 10;
        }
        vs[s * 7] = bits_double(specials[s]);
        roundtrip(ts, vs, 100);
    }
}

static void test_pack_one_nan_keeps_decimal(void **state)
{
    int64_t ts[120];
    double vs[120];
    uint8_t out[OUT_CAP(120)];
    size_t len, clean;

    (void)state;
    for (uint32_t i = 0; i < 120; i++) {
        ts[i] = 1704067200000 + (int64_t)i * 10000;
        vs[i] = 123456.0 + (double)i * 1500 + (double)(i % 7);
    }
    assert_int_equal(pack_encode(ts, vs, 120, out, sizeof(out), &clean),
                     TSDB_OK);
    assert_int_equal(MODE_VAL(out[0]), 1); /* deltas of m */

    /* One stale marker costs its position and a tag byte, not the chunk. */
    vs[60] = bits_double(UINT64_C(0x7ff0000000000002));
    assert_int_equal(pack_encode(ts, vs, 120, out, sizeof(out), &len), TSDB_OK);
    assert_int_not_equal(MODE_VAL(out[0]), VAL_XOR);
    assert_true(out[0] & MODE_EXC);
    assert_true(len <= clean + 3);
    roundtrip(ts, vs, 120);

    /* So do an infinity and an arbitrary NaN payload (8 bytes). */
    vs[10] = INFINITY;
    vs[90] = bits_double(UINT64_C(0x7ff80000deadbeef));
    assert_int_equal(pack_encode(ts, vs, 120, out, sizeof(out), &len), TSDB_OK);
    assert_int_not_equal(MODE_VAL(out[0]), VAL_XOR);
    assert_true(len <= clean + 16);
    roundtrip(ts, vs, 120);
}

static void test_pack_typical_sizes(void **state)
{
    int64_t ts[1024];
    double vs[1024];
    size_t len;

    (void)state;
    test_rng_init(&rng, "test_pack_typical_sizes", SEED + 1);

    /* Exact 10 s grid, constant value: almost only the header. */
    for (uint32_t i = 0; i < 120; i++) {
        ts[i] = 1704067200000 + (int64_t)i * 10000;
        vs[i] = 1;
    }
    len = roundtrip(ts, vs, 120);
    assert_true(len <= 16);

    /* Sparse jitter, counter growing by about 1000 +- 100. */
    for (uint32_t i = 0; i < 1024; i++) {
        ts[i] = 1704067200000 + (int64_t)i * 10000 +
                (below(20) == 0 ? (int64_t)below(41) - 20 : 0);
        vs[i] = i ? vs[i - 1] + 900 + (double)below(200) : 5e7;
    }
    len = roundtrip(ts, vs, 1024);
    print_message("counter: %.3f bytes/sample\n", (double)len / 1024);
    assert_true(len <= 1024 * 11 / 8);

    /* Percent gauge with one decimal. */
    for (uint32_t i = 0; i < 1024; i++)
        vs[i] = (double)(400 + (int64_t)below(200)) / 10;
    len = roundtrip(ts, vs, 1024);
    print_message("gauge: %.3f bytes/sample\n", (double)len / 1024);
    assert_true(len <= 1024 * 10 / 8);
}

static void test_pack_decimal_edges(void **state)
{
    static const double vals[] = {
        0.1,
        0.2,
        0.1 + 0.2,
        1e-18,
        -1e-18,
        123456789.123,
        1e15,
        9.007199254740993e15,
        4611686018427387904.0,
        -4611686018427387904.0,
        9.2e18,
        -9.2e18,
        1e300,
        5e-324,
        0.3,
        33.33,
        -7.25,
        1e-5,
        0.0,
    };
    const uint32_t nv = sizeof(vals) / sizeof(vals[0]);
    int64_t ts[64];
    double vs[64];

    (void)state;

    /* Each edge value in a chunk of its neighbours, and all together. */
    for (uint32_t a = 0; a < nv; a++) {
        for (uint32_t i = 0; i < 64; i++) {
            ts[i] = (int64_t)i * 1000;
            vs[i] = i % 3 ? vals[a] : vals[(a + i) % nv];
        }
        roundtrip(ts, vs, 64);
    }
    for (uint32_t i = 0; i < nv; i++)
        vs[i] = vals[i];
    roundtrip(ts, vs, nv);

    /* Every scale: m / 10^k for k = 0..20, m small and large. */
    for (unsigned k = 0; k <= 20; k++) {
        for (uint32_t i = 0; i < 64; i++)
            vs[i] = (double)(int64_t)(i * 1234567 + k) / pow(10, k);
        roundtrip(ts, vs, 64);
    }
}

static void test_pack_single_and_pairs(void **state)
{
    int64_t ts[3], ts2[3];
    double vs[3], vs2[3];

    (void)state;
    test_rng_init(&rng, "test_pack_single_and_pairs", SEED + 2);
    for (unsigned round = 0; round < 3000; round++) {
        uint32_t n = 1 + round % 3;

        gen_ts(ts, n, (unsigned)below(8));
        gen_values(vs, n, (unsigned)below(9));
        roundtrip(ts, vs, n);
    }

    /* A count the stream was not written for is corrupt. */
    {
        size_t len;
        uint8_t *p;

        ts[0] = 5;
        ts[1] = 10;
        vs[0] = 1.5;
        vs[1] = 2.5;
        p = encode(ts, vs, 2, &len);
        assert_int_equal(pack_decode(p, len, 1, ts2, vs2), TSDB_ECORRUPT);
        assert_int_equal(pack_decode(p, len, 3, ts2, vs2), TSDB_ECORRUPT);
        free(p);
    }
}

static void test_pack_max_samples(void **state)
{
    const uint32_t n = GORILLA_MAX_SAMPLES;
    int64_t *ts = calloc(n + 1, sizeof(*ts));
    double *vs = calloc(n + 1, sizeof(*vs));
    size_t len;

    (void)state;
    test_rng_init(&rng, "test_pack_max_samples", SEED + 3);
    gen_ts(ts, n, 1);
    gen_values(vs, n, 7);
    len = roundtrip(ts, vs, n);
    print_message("%u samples: %zu bytes\n", n, len);
    gen_values(vs, n, 8);
    roundtrip(ts, vs, n);
    assert_int_equal(pack_encode(ts, vs, n + 1, NULL, 0, &len), TSDB_EINVAL);
    assert_int_equal(pack_encode(ts, vs, 0, NULL, 0, &len), TSDB_EINVAL);
    assert_int_equal(pack_decode((const uint8_t *)"", 0, 0, ts, vs),
                     TSDB_ECORRUPT);
    assert_int_equal(pack_decode((const uint8_t *)"", 0, n + 1, ts, vs),
                     TSDB_ECORRUPT);
    free(ts);
    free(vs);
}

static void test_pack_efull_below_exact_size(void **state)
{
    int64_t ts[300];
    double vs[300];

    (void)state;
    test_rng_init(&rng, "test_pack_efull_below_exact_size", SEED + 4);
    for (unsigned round = 0; round < 30; round++) {
        uint32_t n = 1 + (uint32_t)below(300);
        size_t len, len2;
        uint8_t *want;

        gen_ts(ts, n, round % 8);
        gen_values(vs, n, round % 9);
        want = encode(ts, vs, n, &len);

        /* Each smaller buffer is refused, and never written past. */
        for (size_t cap = 0; cap < len; cap++) {
            uint8_t *out = malloc(cap ? cap : 1);

            assert_int_equal(pack_encode(ts, vs, n, out, cap, &len2),
                             TSDB_EFULL);
            free(out);
        }
        {
            uint8_t *out = malloc(len);

            assert_int_equal(pack_encode(ts, vs, n, out, len, &len2), TSDB_OK);
            assert_int_equal(len2, len);
            assert_memory_equal(out, want, len);
            free(out);
        }
        free(want);
    }
}

static void test_pack_extreme_timestamps(void **state)
{
    static const int64_t ts[] = {
        INT64_MIN, INT64_MIN + 1,  INT64_MIN + 1, -1,        0,
        1,         INT64_MAX - 1,  INT64_MAX,     INT64_MAX, INT64_MIN,
        0,         -1700000000000, 1700000000000, INT64_MAX, INT64_MIN,
        INT64_MAX,
    };
    const uint32_t n = sizeof(ts) / sizeof(ts[0]);
    int64_t t2[200];
    double vs[200];

    (void)state;
    for (uint32_t i = 0; i < n; i++)
        vs[i] = (double)i;
    roundtrip(ts, vs, n);

    /* Grids that reach the ends of the range. */
    for (uint32_t i = 0; i < 200; i++) {
        t2[i] = INT64_MAX - (int64_t)(199 - i) * 1000;
        vs[i] = (double)i / 4;
    }
    roundtrip(t2, vs, 200);
    for (uint32_t i = 0; i < 200; i++)
        t2[i] = (int64_t)((uint64_t)INT64_MIN + i * (UINT64_MAX / 199));
    roundtrip(t2, vs, 200);
}

static void test_pack_truncated_is_corrupt(void **state)
{
    int64_t ts[300], ts2[300];
    double vs[300], vs2[300];

    (void)state;
    test_rng_init(&rng, "test_pack_truncated_is_corrupt", SEED + 5);
    for (unsigned round = 0; round < 60; round++) {
        uint32_t n = 1 + (uint32_t)below(300);
        size_t len;
        uint8_t *p, *q;

        gen_ts(ts, n, round % 8);
        gen_values(vs, n, round % 9);
        p = encode(ts, vs, n, &len);
        for (size_t cut = 0; cut < len; cut++) {
            q = malloc(cut ? cut : 1);
            memcpy(q, p, cut);
            assert_int_equal(pack_decode(q, cut, n, ts2, vs2), TSDB_ECORRUPT);
            free(q);
        }

        /* A stray byte after the stream is corrupt too. */
        q = malloc(len + 1);
        memcpy(q, p, len);
        q[len] = 0;
        assert_int_equal(pack_decode(q, len + 1, n, ts2, vs2), TSDB_ECORRUPT);
        free(q);
        free(p);
    }
}

static void test_pack_bit_flips_never_crash(void **state)
{
    int64_t ts[400], ts2[400];
    double vs[400], vs2[400];
    unsigned ok = 0, bad = 0;

    (void)state;
    test_rng_init(&rng, "test_pack_bit_flips_never_crash", SEED + 6);
    for (unsigned round = 0; round < 4000; round++) {
        uint32_t n = 1 + (uint32_t)below(400);
        size_t len;
        uint8_t *p;
        int rc;

        gen_ts(ts, n, round % 8);
        gen_values(vs, n, (round / 8) % 9);
        p = encode(ts, vs, n, &len);
        for (unsigned f = 0, nf = 1 + (unsigned)below(4); f < nf; f++)
            p[below(len)] ^= (uint8_t)(1u << below(8));
        rc = pack_decode(p, len, n, ts2, vs2);
        assert_true(rc == TSDB_OK || rc == TSDB_ECORRUPT);
        rc == TSDB_OK ? ok++ : bad++;

        /* Random bytes behind a valid mode byte. */
        for (size_t i = 1; i < len; i++)
            p[i] = (uint8_t)rnd();
        rc = pack_decode(p, len, n, ts2, vs2);
        assert_true(rc == TSDB_OK || rc == TSDB_ECORRUPT);
        free(p);
    }
    print_message("bit flips: %u decoded, %u corrupt\n", ok, bad);
}

static void test_pack_impossible_fields_are_corrupt(void **state)
{
    /* Two samples, exact grid, decimal deltas: a valid base to break. */
    int64_t ts[2] = {0, 10}, ts2[2];
    double vs[2] = {1, 2}, vs2[2];
    uint8_t buf[64];
    size_t len;

    (void)state;
    assert_int_equal(pack_encode(ts, vs, 2, buf, sizeof(buf), &len), TSDB_OK);
    assert_int_equal(pack_decode(buf, len, 2, ts2, vs2), TSDB_OK);

    /* Reserved mode bits, timestamp mode 3, value modes 4..7. */
    for (unsigned bad = 0; bad < 256; bad++) {
        uint8_t save = buf[0];

        if ((bad & 0xc0) == 0 && MODE_TS(bad) != 3 && MODE_VAL(bad) < 4 &&
            !(MODE_VAL(bad) == VAL_XOR && bad & MODE_EXC))
            continue;
        buf[0] = (uint8_t)bad;
        assert_int_equal(pack_decode(buf, len, 2, ts2, vs2), TSDB_ECORRUPT);
        buf[0] = save;
    }

    /* Hand-made: grid, decimal o=1, scale 19 (above the maximum 18). */
    {
        const uint8_t s[] = {0x04, 0x00, 0x0a, 19, 0x02, 0x00, 0x00, 0x00};

        assert_int_equal(pack_decode(s, sizeof(s), 2, ts2, vs2), TSDB_ECORRUPT);
    }

    /* Exception list: count above n, position past n, unknown tag. */
    {
        const uint8_t many[] = {0x24, 0x00, 0x0a, 0, 0x02, 3, 0, 1, 0, 1, 0, 1};
        const uint8_t far[] = {0x24, 0x00, 0x0a, 0, 0x02, 1, 2, 1};
        const uint8_t tag[] = {0x24, 0x00, 0x0a, 0, 0x02, 1, 0, 6};

        assert_int_equal(pack_decode(many, sizeof(many), 2, ts2, vs2),
                         TSDB_ECORRUPT);
        assert_int_equal(pack_decode(far, sizeof(far), 2, ts2, vs2),
                         TSDB_ECORRUPT);
        assert_int_equal(pack_decode(tag, sizeof(tag), 2, ts2, vs2),
                         TSDB_ECORRUPT);
    }

    /* Block slot width 65 (7 bits 1000001), delta-mode timestamps. */
    {
        const uint8_t s[] = {0x0d, 0x00, 0x82, 0x00, 0x00, 0x00};

        assert_int_equal(pack_decode(s, sizeof(s), 2, ts2, vs2), TSDB_ECORRUPT);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pack_golden_bytes),
        cmocka_unit_test(test_pack_roundtrip_random),
        cmocka_unit_test(test_pack_special_values_exact),
        cmocka_unit_test(test_pack_one_nan_keeps_decimal),
        cmocka_unit_test(test_pack_typical_sizes),
        cmocka_unit_test(test_pack_decimal_edges),
        cmocka_unit_test(test_pack_single_and_pairs),
        cmocka_unit_test(test_pack_max_samples),
        cmocka_unit_test(test_pack_efull_below_exact_size),
        cmocka_unit_test(test_pack_extreme_timestamps),
        cmocka_unit_test(test_pack_truncated_is_corrupt),
        cmocka_unit_test(test_pack_bit_flips_never_crash),
        cmocka_unit_test(test_pack_impossible_fields_are_corrupt),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
