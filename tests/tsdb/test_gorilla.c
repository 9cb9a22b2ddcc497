/*
 * Tests for tsdb/gorilla.c: the worked example of storage-format.md as
 * golden bytes, seeded random round trips over a few million samples of
 * every shape we store (regular and jittered cadence, gaps, equal and
 * extreme timestamps, counters, decimals, random bit patterns, special
 * floats), the encoder's limits and failure behaviour, and decoding of
 * truncated and bit-flipped streams.
 */
#include <dlfcn.h>
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

#define SEED 20261203

/*
 * realloc is interposed so that a test can make the next call fail; every
 * other call goes to the real one (ASan's when sanitised).
 */
static bool fail_realloc;

void *realloc(void *p, size_t n)
{
    static void *(*real)(void *, size_t);

    if (fail_realloc)
        return NULL;
    if (real == NULL)
        *(void **)&real = dlsym(RTLD_NEXT, "realloc");
    return real(p, n);
}

/* The doc's worked example (storage-format.md, "Gorilla worked
 * example"). */
static const int64_t golden_ts[] = {
    1700000000000, 1700000010000, 1700000020000, 1700000030003, 1700000040000,
};
static const double golden_vs[] = {12.5, 12.5, 12.75, 13.0, -0.0};
static const uint8_t golden_bytes[] = {
    0x80, 0xa0, 0xab, 0xfe, 0xf9, 0x62, 0x40, 0x29, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0xe0, 0x27, 0x10, 0x38,
    0x03, 0x83, 0xdc, 0x1f, 0xba, 0xc0, 0x7e, 0x01, 0x50,
};

/* ---- helpers ------------------------------------------------------------ */

static void encode(struct gorilla_enc *e, const int64_t *ts, const double *vs,
                   uint32_t n)
{
    gorilla_enc_init(e);
    for (uint32_t i = 0; i < n; i++)
        assert_int_equal(gorilla_enc_append(e, ts[i], vs[i]), TSDB_OK);
    assert_int_equal(e->count, n);
}

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

static void roundtrip(const int64_t *ts, const double *vs, uint32_t n)
{
    struct gorilla_enc e;
    int64_t *ts2 = calloc(n, sizeof(*ts2));
    double *vs2 = calloc(n, sizeof(*vs2));

    assert_non_null(ts2);
    assert_non_null(vs2);
    encode(&e, ts, vs, n);
    assert_int_equal(gorilla_decode(e.buf, gorilla_enc_len(&e), n, ts2, vs2),
                     TSDB_OK);
    assert_same(ts, vs, ts2, vs2, n);
    gorilla_enc_release(&e);
    free(ts2);
    free(vs2);
}

/* ---- tests -------------------------------------------------------------- */

static void test_gorilla_golden_bytes(void **state)
{
    struct gorilla_enc e;
    int64_t ts[5];
    double vs[5];

    (void)state;
    encode(&e, golden_ts, golden_vs, 5);
    assert_int_equal(gorilla_enc_len(&e), sizeof(golden_bytes));
    assert_memory_equal(e.buf, golden_bytes, sizeof(golden_bytes));
    gorilla_enc_release(&e);

    assert_int_equal(
        gorilla_decode(golden_bytes, sizeof(golden_bytes), 5, ts, vs), TSDB_OK);
    assert_same(golden_ts, golden_vs, ts, vs, 5);
}

static void test_gorilla_roundtrip_random(void **state)
{
    enum { MAXN = 1100 };
    int64_t ts[MAXN];
    double vs[MAXN];
    uint64_t total = 0;

    (void)state;
    test_rng_init(&rng, "test_gorilla_roundtrip_random", SEED);
    while (total < 6000000) {
        uint32_t n = below(4) == 0 ? 1 + (uint32_t)below(20)
                                   : 100 + (uint32_t)below(MAXN - 100);

        gen_ts(ts, n, (unsigned)below(8));
        gen_values(vs, n, (unsigned)below(8));
        roundtrip(ts, vs, n);
        total += n;
    }
}

static void test_gorilla_special_values_exact(void **state)
{
    int64_t ts[NSPECIALS * NSPECIALS * 2];
    double vs[NSPECIALS * NSPECIALS * 2];
    uint32_t n = 0;

    (void)state;

    /* Every special after every other, so each XOR case meets each. */
    n = gen_special_pairs(ts, vs);
    roundtrip(ts, vs, n);
}

static void test_gorilla_single_sample(void **state)
{
    struct gorilla_enc e;
    int64_t t;
    double v;

    (void)state;
    for (size_t s = 0; s < NSPECIALS; s++) {
        int64_t t0 = s % 2 ? INT64_MIN : INT64_MAX - (int64_t)s;

        encode(&e, &t0, &(double){bits_double(specials[s])}, 1);
        assert_int_equal(gorilla_decode(e.buf, gorilla_enc_len(&e), 1, &t, &v),
                         TSDB_OK);
        assert_int_equal(t, t0);
        assert_int_equal(double_bits(v), specials[s]);
        gorilla_enc_release(&e);
    }
}

static void test_gorilla_max_samples_then_full(void **state)
{
    struct gorilla_enc e, copy;
    int64_t *ts = calloc(GORILLA_MAX_SAMPLES, sizeof(*ts));
    double *vs = calloc(GORILLA_MAX_SAMPLES, sizeof(*vs));
    int64_t *ts2 = calloc(GORILLA_MAX_SAMPLES, sizeof(*ts2));
    double *vs2 = calloc(GORILLA_MAX_SAMPLES, sizeof(*vs2));

    (void)state;
    test_rng_init(&rng, "test_gorilla_max_samples_then_full", SEED + 1);
    gen_ts(ts, GORILLA_MAX_SAMPLES, 3);
    gen_values(vs, GORILLA_MAX_SAMPLES, 8);
    encode(&e, ts, vs, GORILLA_MAX_SAMPLES);

    copy = e;
    assert_int_equal(gorilla_enc_append(&e, ts[0], 1.0), TSDB_EFULL);
    assert_memory_equal(&copy, &e, sizeof(e));

    assert_int_equal(gorilla_decode(e.buf, gorilla_enc_len(&e),
                                    GORILLA_MAX_SAMPLES, ts2, vs2),
                     TSDB_OK);
    assert_same(ts, vs, ts2, vs2, GORILLA_MAX_SAMPLES);
    assert_int_equal(gorilla_decode(e.buf, gorilla_enc_len(&e),
                                    GORILLA_MAX_SAMPLES + 1, ts2, vs2),
                     TSDB_ECORRUPT);
    gorilla_enc_release(&e);
    free(ts);
    free(vs);
    free(ts2);
    free(vs2);
}

static void test_gorilla_enomem_leaves_encoder_unchanged(void **state)
{
    struct gorilla_enc e, copy;
    int64_t ts[2000], ts2[2000];
    double vs[2000], vs2[2000];
    uint32_t n = 0, failures = 0;

    (void)state;
    test_rng_init(&rng, "test_gorilla_enomem_leaves_encoder_unchanged",
                  SEED + 2);
    gen_ts(ts, 2000, 1);
    gen_values(vs, 2000, 7);
    gorilla_enc_init(&e);

    /* Each append is tried once with realloc failing, then for real; a
     * failed one must change nothing. */
    while (n < 2000) {
        int rc;

        copy = e;
        fail_realloc = true;
        rc = gorilla_enc_append(&e, ts[n], vs[n]);
        fail_realloc = false;
        if (rc == TSDB_ENOMEM) {
            assert_memory_equal(&copy, &e, sizeof(e));
            failures++;
            rc = gorilla_enc_append(&e, ts[n], vs[n]);
        }
        assert_int_equal(rc, TSDB_OK);
        n++;
    }
    assert_true(failures > 5);
    assert_int_equal(gorilla_decode(e.buf, gorilla_enc_len(&e), n, ts2, vs2),
                     TSDB_OK);
    assert_same(ts, vs, ts2, vs2, n);
    gorilla_enc_release(&e);
}

static void test_gorilla_extreme_timestamps(void **state)
{
    static const int64_t ts[] = {
        INT64_MIN, INT64_MIN + 1,  INT64_MIN + 1, -1,        0,
        1,         INT64_MAX - 1,  INT64_MAX,     INT64_MAX, INT64_MIN,
        0,         -1700000000000, 1700000000000, INT64_MAX, INT64_MIN,
        INT64_MAX,
    };
    double vs[sizeof(ts) / sizeof(ts[0])];

    (void)state;
    for (size_t i = 0; i < sizeof(ts) / sizeof(ts[0]); i++)
        vs[i] = (double)i;
    roundtrip(ts, vs, sizeof(ts) / sizeof(ts[0]));
}

static void test_gorilla_truncated_is_corrupt(void **state)
{
    int64_t ts[300], ts2[300];
    double vs[300], vs2[300];

    (void)state;
    test_rng_init(&rng, "test_gorilla_truncated_is_corrupt", SEED + 3);
    for (unsigned round = 0; round < 40; round++) {
        struct gorilla_enc e;
        uint32_t n = 1 + (uint32_t)below(300);
        size_t len;

        gen_ts(ts, n, round % 8);
        gen_values(vs, n, round % 8);
        encode(&e, ts, vs, n);
        len = gorilla_enc_len(&e);

        /* A copy of exactly cut bytes, so ASan sees any over-read. */
        for (size_t cut = 0; cut < len; cut++) {
            uint8_t *p = malloc(cut ? cut : 1);

            memcpy(p, e.buf, cut);
            assert_int_equal(gorilla_decode(p, cut, n, ts2, vs2),
                             TSDB_ECORRUPT);
            free(p);
        }
        gorilla_enc_release(&e);
    }
}

static void test_gorilla_bit_flips_never_crash(void **state)
{
    int64_t ts[500], ts2[500];
    double vs[500], vs2[500];
    unsigned ok = 0, bad = 0;

    (void)state;
    test_rng_init(&rng, "test_gorilla_bit_flips_never_crash", SEED + 4);
    for (unsigned round = 0; round < 4000; round++) {
        struct gorilla_enc e;
        uint32_t n = 1 + (uint32_t)below(500);
        size_t len;
        uint8_t *p;
        int rc;

        gen_ts(ts, n, round % 8);
        gen_values(vs, n, (round / 8) % 8);
        encode(&e, ts, vs, n);
        len = gorilla_enc_len(&e);
        p = malloc(len);
        memcpy(p, e.buf, len);
        for (unsigned f = 0, nf = 1 + (unsigned)below(4); f < nf; f++)
            p[below(len)] ^= (uint8_t)(1u << below(8));
        rc = gorilla_decode(p, len, n, ts2, vs2);
        assert_true(rc == TSDB_OK || rc == TSDB_ECORRUPT);
        rc == TSDB_OK ? ok++ : bad++;

        /* Random bytes as a stream, with a count that may not match. */
        for (size_t i = 0; i < len; i++)
            p[i] = (uint8_t)rnd();
        rc = gorilla_decode(p, len, 1 + (uint32_t)below(500), ts2, vs2);
        assert_true(rc == TSDB_OK || rc == TSDB_ECORRUPT);
        free(p);
        gorilla_enc_release(&e);
    }
    print_message("bit flips: %u decoded, %u corrupt\n", ok, bad);
}

static void test_gorilla_impossible_window_is_corrupt(void **state)
{
    /* t0 = 0, v0 = 0.0, dod 0, then '11' lead 31 length 40: 71 > 64. */
    uint8_t buf[16] = {0x00};
    uint64_t code = UINT64_C(3) << 11 | 31u << 6 | 40u;
    int64_t ts[2];
    double vs[2];

    (void)state;

    /* Byte 0 is the varint; the bit stream starts at bit 8. */
    buf[9] = (uint8_t)(code >> 6);         /* '0' then 7 code bits */
    buf[10] = (uint8_t)((code & 63) << 2); /* last 6 code bits */
    assert_int_equal(gorilla_decode(buf, sizeof(buf), 2, ts, vs),
                     TSDB_ECORRUPT);

    /* The same code with a legal length decodes. */
    code = UINT64_C(3) << 11 | 31u << 6 | 33u;
    buf[9] = (uint8_t)(code >> 6);
    buf[10] = (uint8_t)((code & 63) << 2);
    assert_int_equal(gorilla_decode(buf, sizeof(buf), 2, ts, vs), TSDB_OK);
}

static void test_gorilla_count_zero_and_empty_input(void **state)
{
    int64_t t;
    double v;

    (void)state;
    assert_int_equal(gorilla_decode(NULL, 0, 0, &t, &v), TSDB_OK);
    assert_int_equal(gorilla_decode((const uint8_t *)"", 0, 1, &t, &v),
                     TSDB_ECORRUPT);
}

static void test_gorilla_prefix_decodes(void **state)
{
    int64_t ts[200], ts2[200];
    double vs[200], vs2[200];
    struct gorilla_enc e;

    (void)state;
    test_rng_init(&rng, "test_gorilla_prefix_decodes", SEED + 5);
    gen_ts(ts, 200, 2);
    gen_values(vs, 200, 7);
    encode(&e, ts, vs, 200);

    /* A reader may snapshot the count while the writer appends on. */
    for (uint32_t n = 1; n <= 200; n++) {
        assert_int_equal(
            gorilla_decode(e.buf, gorilla_enc_len(&e), n, ts2, vs2), TSDB_OK);
        assert_same(ts, vs, ts2, vs2, n);
    }
    gorilla_enc_release(&e);
}

static void test_gorilla_buffer_growth_is_small(void **state)
{
    struct gorilla_enc e;
    int64_t ts[1024];
    double vs[1024];
    uint32_t last_cap = 0, grows = 0;

    (void)state;
    test_rng_init(&rng, "test_gorilla_buffer_growth_is_small", SEED + 6);
    gen_ts(ts, 1024, 1);
    gen_values(vs, 1024, 1);
    gorilla_enc_init(&e);
    assert_null(e.buf);
    assert_int_equal(gorilla_enc_len(&e), 0);
    for (uint32_t i = 0; i < 1024; i++) {
        assert_int_equal(gorilla_enc_append(&e, ts[i], vs[i]), TSDB_OK);
        assert_int_equal(gorilla_enc_len(&e), (e.nbits + 7) / 8);
        if (e.cap != last_cap) {
            /* Steps of 25% to 60%: no doubling of a large buffer. */
            if (last_cap >= 64)
                assert_true(e.cap <= last_cap + last_cap * 6 / 10);
            last_cap = e.cap;
            grows++;
        }
        /* Never more than the room one append needs plus one step. */
        assert_true(e.cap <= (gorilla_enc_len(&e) + 28) * 8 / 5 + 16);
    }
    print_message("1024 samples: %zu bytes, cap %u after %u reallocs\n",
                  gorilla_enc_len(&e), e.cap, grows);
    gorilla_enc_release(&e);
    assert_null(e.buf);
    assert_int_equal(e.count, 0);

    /* A released encoder is ready for reuse. */
    assert_int_equal(gorilla_enc_append(&e, 5, 1.0), TSDB_OK);
    gorilla_enc_release(&e);
    gorilla_enc_release(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gorilla_golden_bytes),
        cmocka_unit_test(test_gorilla_roundtrip_random),
        cmocka_unit_test(test_gorilla_special_values_exact),
        cmocka_unit_test(test_gorilla_single_sample),
        cmocka_unit_test(test_gorilla_max_samples_then_full),
        cmocka_unit_test(test_gorilla_enomem_leaves_encoder_unchanged),
        cmocka_unit_test(test_gorilla_extreme_timestamps),
        cmocka_unit_test(test_gorilla_truncated_is_corrupt),
        cmocka_unit_test(test_gorilla_bit_flips_never_crash),
        cmocka_unit_test(test_gorilla_impossible_window_is_corrupt),
        cmocka_unit_test(test_gorilla_count_zero_and_empty_input),
        cmocka_unit_test(test_gorilla_prefix_decodes),
        cmocka_unit_test(test_gorilla_buffer_growth_is_small),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
