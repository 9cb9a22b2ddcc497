/*
 * Tests of tsdb/chunk.c: a chunk entry round-trips, its header lets a
 * reader skip it without decoding, and any single bit flip or truncation,
 * or reading it as another series', is reported as TSDB_ECORRUPT.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "testutil.h"
#include "tsdb/bytes.h"
#include "tsdb/chunk.h"
#include "tsdb/error.h"
#include "tsdb/format.h"
#include "tsdb/gorilla.h"

#define N 200
/* Big enough for N samples however they encode (tests only). */
#define CAP 8192

static void sample_data(int64_t *ts, double *vs)
{
    for (int i = 0; i < N; i++) {
        ts[i] = 1700000000000 + i * 15000 + (i % 3);
        vs[i] =
            i % 50 == 0 ? bits_double(UINT64_C(0x7ff0000000000002)) : i * 0.25;
    }
}

static void test_chunk_record_round_trips(void **state)
{
    int64_t ts[N], out_ts[N];
    double vs[N], out_vs[N];
    uint8_t val[CAP];
    struct tsdb_chunk c;
    size_t len;
    (void)state;

    sample_data(ts, vs);
    assert_int_equal(tsdb_chunk_build(42, ts, vs, N, val, sizeof(val), &len),
                     TSDB_OK);
    assert_int_equal(tsdb_chunk_entry_mint(val), ts[0]);
    assert_int_equal(tsdb_chunk_parse(42, val, len, &c), 0);
    assert_int_equal(c.sid, 42);
    assert_int_equal(c.mint, ts[0]);
    assert_int_equal(c.maxt, ts[N - 1]);
    assert_int_equal(c.count, N);
    assert_int_equal(c.enc, TSDB_CHUNK_ENC_PACK);
    assert_int_equal(tsdb_chunk_decode(&c, out_ts, out_vs), TSDB_OK);
    for (int i = 0; i < N; i++) {
        assert_int_equal(out_ts[i], ts[i]);
        assert_int_equal(double_bits(out_vs[i]), double_bits(vs[i]));
    }
}

static void test_chunk_gorilla_payload_round_trips(void **state)
{
    int64_t ts[N], out_ts[N];
    double vs[N], out_vs[N];
    uint8_t val[CAP];
    struct gorilla_enc e;
    struct tsdb_chunk c;
    size_t len;
    (void)state;

    sample_data(ts, vs);
    gorilla_enc_init(&e);
    for (int i = 0; i < N; i++)
        assert_int_equal(gorilla_enc_append(&e, ts[i], vs[i]), TSDB_OK);
    assert_int_equal(tsdb_chunk_build_raw(
                         7, TSDB_CHUNK_ENC_GORILLA, ts[0], ts[N - 1], N, e.buf,
                         gorilla_enc_len(&e), val, sizeof(val), &len),
                     TSDB_OK);
    gorilla_enc_release(&e);
    assert_int_equal(tsdb_chunk_parse(7, val, len, &c), 0);
    assert_int_equal(c.enc, TSDB_CHUNK_ENC_GORILLA);
    assert_int_equal(tsdb_chunk_decode(&c, out_ts, out_vs), TSDB_OK);
    for (int i = 0; i < N; i++)
        assert_int_equal(out_ts[i], ts[i]);
}

/* Every single-bit flip, every truncation, every other series id bit. */
static void test_chunk_damage_is_reported(void **state)
{
    int64_t ts[N];
    double vs[N];
    uint8_t val[CAP];
    struct tsdb_chunk c;
    size_t len;
    (void)state;

    sample_data(ts, vs);
    assert_int_equal(tsdb_chunk_build(9, ts, vs, N, val, sizeof(val), &len),
                     TSDB_OK);
    for (size_t bit = 0; bit < len * 8; bit++) {
        val[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        assert_int_equal(tsdb_chunk_parse(9, val, len, &c), TSDB_ECORRUPT);
        val[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    for (int bit = 0; bit < 64; bit++)
        assert_int_equal(
            tsdb_chunk_parse(9 ^ (UINT64_C(1) << bit), val, len, &c),
            TSDB_ECORRUPT);
    for (size_t cut = 0; cut < len; cut++)
        assert_int_equal(tsdb_chunk_parse(9, val, cut, &c), TSDB_ECORRUPT);
}

/* storage-format.md section 4.1, byte for byte. */
static void test_chunk_golden_entry(void **state)
{
    static const uint8_t want_key[] = {0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                                       0x00, 0x2a, 0x80, 0x00, 0x01, 0x8b,
                                       0xcf, 0xe5, 0x68, 0x00};
    static const uint8_t want[] = {
        0x80, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00, 0x02, 0x52, 0xc8, 0xf4,
        0xb8, 0x03, 0xb0, 0xea, 0x01, 0x25, 0x80, 0xa0, 0xab, 0xfe, 0xf9, 0x62,
        0x01, 0x1e, 0x01, 0x02, 0x01, 0x00, 0x3f, 0xa9, 0x80, 0x00, 0x5a, 0x00};
    int64_t ts[3] = {1700000000000, 1700000015000, 1700000030000};
    double vs[3] = {1.5, 2.5, bits_double(UINT64_C(0x7ff0000000000002))};
    uint8_t key[TSDB_CHUNK_KEY_LEN], entry[256];
    size_t len;
    (void)state;

    tsdb_chunk_key(key, 42, ts[0]);
    assert_memory_equal(key, want_key, sizeof(want_key));
    assert_int_equal(
        tsdb_chunk_build(42, ts, vs, 3, entry, sizeof(entry), &len), TSDB_OK);
    assert_int_equal(len, sizeof(want));
    assert_memory_equal(entry, want, sizeof(want));
}

static void test_chunk_build_refuses_bad_input(void **state)
{
    int64_t ts[2] = {INT64_MIN, INT64_MAX};
    double vs[2] = {1, 2};
    uint8_t val[256];
    size_t len;
    (void)state;

    assert_int_equal(tsdb_chunk_build(1, ts, vs, 0, val, sizeof(val), &len),
                     TSDB_EINVAL);
    /* A span that does not fit in int64. */
    assert_int_equal(tsdb_chunk_build(1, ts, vs, 2, val, sizeof(val), &len),
                     TSDB_EINVAL);
    ts[0] = 0;
    assert_int_equal(tsdb_chunk_build(1, ts, vs, 2, val, 20, &len), TSDB_EFULL);
}

/* Keys sort by series, then by first timestamp, negative ones first. */
static void test_chunk_keys_sort_by_series_then_time(void **state)
{
    int64_t t[4] = {INT64_MIN, -5, 3, INT64_MAX};
    uint8_t a[TSDB_CHUNK_KEY_LEN], b[TSDB_CHUNK_KEY_LEN];
    (void)state;

    for (int i = 0; i < 3; i++) {
        tsdb_chunk_key(a, 1, t[i]);
        tsdb_chunk_key(b, 1, t[i + 1]);
        assert_true(memcmp(a, b, sizeof(a)) < 0);
    }
    tsdb_chunk_key(a, 1, INT64_MAX);
    tsdb_chunk_key(b, 2, INT64_MIN);
    assert_true(memcmp(a, b, sizeof(a)) < 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chunk_record_round_trips),
        cmocka_unit_test(test_chunk_gorilla_payload_round_trips),
        cmocka_unit_test(test_chunk_damage_is_reported),
        cmocka_unit_test(test_chunk_golden_entry),
        cmocka_unit_test(test_chunk_build_refuses_bad_input),
        cmocka_unit_test(test_chunk_keys_sort_by_series_then_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
