/*
 * The query API's pure parts: steps and timeouts, Go's number formats,
 * the JSON of each result type, and the status of each error kind.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/queryapi.h"
#include "query/strconv.h"
#include "tsdb/error.h"

static void test_durations_take_seconds_or_promql_units(void **state)
{
    static const struct {
        const char *in;
        int64_t ms;
    } good[] = {
        {"15", 15000},    {"0.5", 500},          {"1e1", 10000},
        {"1m", 60000},    {"1h30m", 5400000},    {"250ms", 250},
        {"1d", 86400000}, {"2w", 1209600000},    {"0.0001", 0},
        {"1m30s", 90000}, {"1y", 31536000000LL}, {"-1", -1000},
    };
    static const char *const bad[] = {"",     "abc", "1x",  "m",    "1m1h",
                                      "1.5m", " 1",  "1mm", "5s5s", "inf"};
    int64_t ms;
    (void)state;

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        assert_int_equal(http_parse_duration(good[i].in, &ms), TSDB_OK);
        assert_int_equal(ms, good[i].ms);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (http_parse_duration(bad[i], &ms) == TSDB_OK)
            fail_msg("\"%s\" parsed as %lld ms", bad[i], (long long)ms);
}

static void test_floats_print_as_go_does(void **state)
{
    static const struct {
        double v;
        const char *json, *plain;
    } cases[] = {
        {0.1 + 0.2, "0.30000000000000004", "0.30000000000000004"},
        {123456789012345678.0, "123456789012345680", "123456789012345680"},
        {1e21, "1e+21", "1000000000000000000000"},
        {1e-7, "1e-07", "0.0000001"},
        {0.000001, "0.000001", "0.000001"},
        {-2.5, "-2.5", "-2.5"},
        {100, "100", "100"},
        {-0.0, "-0", "-0"},
        {1.5e300, "1.5e+300", NULL},
        {5e-324, "5e-324", NULL},
        {2.5e-310, "2.5e-310", NULL},
    };
    char out[QUERY_FLOAT_MAX];
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        query_format_float(out, cases[i].v, QUERY_FLOAT_JSON);
        assert_string_equal(out, cases[i].json);
        if (cases[i].plain) {
            query_format_float(out, cases[i].v, QUERY_FLOAT_PLAIN);
            assert_string_equal(out, cases[i].plain);
        }
    }
    query_format_float(out, NAN, QUERY_FLOAT_JSON);
    assert_string_equal(out, "NaN");
    query_format_float(out, -INFINITY, QUERY_FLOAT_JSON);
    assert_string_equal(out, "-Inf");
    query_format_float(out, INFINITY, QUERY_FLOAT_PLAIN);
    assert_string_equal(out, "+Inf");
}

/* The shortest form, found the slow way: fewest %e digits that read back. */
static int shortest_len(double v)
{
    char e[40];

    for (int prec = 1; prec <= 17; prec++) {
        snprintf(e, sizeof(e), "%.*e", prec - 1, v);
        if (strtod(e, NULL) == v)
            return prec;
    }
    return 17;
}

static void test_floats_are_shortest_and_exact(void **state)
{
    uint64_t x = 0x9E3779B97F4A7C15ULL;
    char out[QUERY_FLOAT_MAX];
    (void)state;

    for (int i = 0; i < 20000; i++) {
        double v;
        int digits = 0;

        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        /* Every fourth value a short decimal, the others any bits. */
        if (i % 4 == 0)
            v = (double)(int64_t)(x % 100000) / 1000.0;
        else
            memcpy(&v, &x, sizeof(v));
        if (!isfinite(v) || v == 0)
            continue;
        query_format_float(out, v, QUERY_FLOAT_JSON);
        assert_true(strtod(out, NULL) == v);
        for (const char *p = out; *p && *p != 'e'; p++)
            digits += *p >= '0' && *p <= '9';
        /* Leading zeros of 0.00x and trailing zeros of 1200 are layout. */
        if (strchr(out, 'e') && digits > shortest_len(v))
            fail_msg("%s has %d digits, %.17g needs %d", out, digits, v,
                     shortest_len(v));
    }
}

static void test_result_json_of_each_type(void **state)
{
    struct tsdb_label lv[2] = {{"__name__", "up"}, {"job", "a\"b"}};
    int64_t t[2] = {1500, 3000};
    double v[2] = {1, NAN};
    struct query_series s = {{lv, 2, NULL}, 2, t, v};
    struct query_result r;
    struct http_buf b;
    (void)state;

    memset(&r, 0, sizeof(r));
    http_buf_init(&b, 1 << 20);
    r.type = QUERY_TYPE_MATRIX;
    r.nseries = 1;
    r.series = &s;
    http_query_result_json(&b, &r);
    assert_string_equal(b.p, "{\"resultType\":\"matrix\",\"result\":[{"
                             "\"metric\":{\"__name__\":\"up\",\"job\":"
                             "\"a\\\"b\"},\"values\":[[1.500,\"1\"],"
                             "[3,\"NaN\"]]}]}");

    http_buf_reset(&b);
    r.type = QUERY_TYPE_VECTOR;
    http_query_result_json(&b, &r);
    assert_string_equal(b.p, "{\"resultType\":\"vector\",\"result\":[{"
                             "\"metric\":{\"__name__\":\"up\",\"job\":"
                             "\"a\\\"b\"},\"value\":[1.500,\"1\"]}]}");

    http_buf_reset(&b);
    memset(&r, 0, sizeof(r));
    r.type = QUERY_TYPE_SCALAR;
    r.t = 1500;
    r.scalar = 2;
    http_query_result_json(&b, &r);
    assert_string_equal(b.p,
                        "{\"resultType\":\"scalar\",\"result\":[1.5,\"2\"]}");

    http_buf_reset(&b);
    r.type = QUERY_TYPE_STRING;
    r.t = 4000;
    r.string = "foo";
    http_query_result_json(&b, &r);
    assert_string_equal(b.p,
                        "{\"resultType\":\"string\",\"result\":[4,\"foo\"]}");

    http_buf_reset(&b);
    memset(&r, 0, sizeof(r));
    r.type = QUERY_TYPE_VECTOR;
    http_query_result_json(&b, &r);
    assert_string_equal(b.p, "{\"resultType\":\"vector\",\"result\":[]}");
    http_buf_release(&b);
}

static void test_error_kinds_map_to_prometheus_codes(void **state)
{
    struct query_err e;
    const char *type;
    (void)state;

    memset(&e, 0, sizeof(e));
    e.kind = QUERY_ERR_BAD_DATA;
    assert_int_equal(http_query_err_status(&e, &type), 400);
    assert_string_equal(type, "bad_data");
    e.kind = QUERY_ERR_EXECUTION;
    assert_int_equal(http_query_err_status(&e, &type), 422);
    assert_string_equal(type, "execution");
    e.kind = QUERY_ERR_TIMEOUT;
    assert_int_equal(http_query_err_status(&e, &type), 503);
    assert_string_equal(type, "timeout");
    e.kind = QUERY_ERR_INTERNAL;
    assert_int_equal(http_query_err_status(&e, &type), 500);
    assert_string_equal(type, "internal");
}

/* X-Tsdb-Resolution: raw, a tier's width, or the list of both. */
static void test_resolution_names_each_source(void **state)
{
    static const int64_t widths[] = {300000, 3600000, 86400000, 90000};
    char out[64];

    (void)state;
    http_query_resolution(0, widths, 4, out, sizeof(out));
    assert_string_equal(out, "raw");
    http_query_resolution(1, widths, 4, out, sizeof(out));
    assert_string_equal(out, "raw");
    http_query_resolution(1u << 2, widths, 4, out, sizeof(out));
    assert_string_equal(out, "1h");
    http_query_resolution(1 | 1u << 1 | 1u << 3 | 1u << 4, widths, 4, out,
                          sizeof(out));
    assert_string_equal(out, "raw, 5m, 1d, 90s");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_durations_take_seconds_or_promql_units),
        cmocka_unit_test(test_floats_print_as_go_does),
        cmocka_unit_test(test_floats_are_shortest_and_exact),
        cmocka_unit_test(test_result_json_of_each_type),
        cmocka_unit_test(test_error_kinds_map_to_prometheus_codes),
        cmocka_unit_test(test_resolution_names_each_source),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
