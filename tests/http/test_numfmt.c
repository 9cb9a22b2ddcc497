/*
 * Tests for http/numfmt.c: values read back bit-exactly in the shortest
 * of 15/16/17 digits, with OpenMetrics' spellings for the specials, and
 * timestamps as exact decimal seconds.  The random sweep has a fixed,
 * printed seed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "http/numfmt.h"
#include "testutil.h"

static void want_value(double v, const char *want)
{
    char out[HTTP_NUM_MAX];
    size_t n = http_fmt_value(out, v);

    assert_int_equal(n, strlen(out));
    assert_string_equal(out, want);
}

static void test_numfmt_values(void **state)
{
    (void)state;
    want_value(0, "0");
    want_value(-0.0, "-0");
    want_value(1, "1");
    want_value(0.1, "0.1");
    want_value(0.1 + 0.2, "0.30000000000000004");
    want_value(47939976, "47939976");
    want_value(1704067200.123, "1704067200.123");
    want_value(1e21, "1e+21");
    want_value(1e-7, "1e-07");
    want_value(123456789012345680.0, "1.2345678901234568e+17");
    want_value(1.7976931348623157e308, "1.7976931348623157e+308");
    want_value(-4.9406564584124654e-324, "-4.94065645841247e-324");
    want_value(INFINITY, "+Inf");
    want_value(-INFINITY, "-Inf");
    want_value(NAN, "NaN");
}

static void test_numfmt_values_round_trip(void **state)
{
    struct test_rng rng;
    char out[HTTP_NUM_MAX];
    (void)state;

    test_rng_init(&rng, "test_numfmt_values_round_trip", 42);
    for (int i = 0; i < 200000; i++) {
        uint64_t bits = test_rng_next(&rng);
        double v, back;

        memcpy(&v, &bits, sizeof(v));
        if (isnan(v) || isinf(v))
            continue;
        http_fmt_value(out, v);
        back = strtod(out, NULL);
        assert_memory_equal(&back, &v, sizeof(v));
    }
}

static void want_seconds(int64_t ms, const char *want)
{
    char out[HTTP_NUM_MAX];
    size_t n = http_fmt_seconds(out, ms);

    assert_int_equal(n, strlen(out));
    assert_string_equal(out, want);
}

static void test_numfmt_seconds(void **state)
{
    (void)state;
    want_seconds(0, "0");
    want_seconds(5000, "5");
    want_seconds(1704067200123, "1704067200.123");
    want_seconds(1704067200050, "1704067200.050");
    want_seconds(1, "0.001");
    want_seconds(-1, "-0.001");
    want_seconds(-1500, "-1.500");
    want_seconds(INT64_MAX, "9223372036854775.807");
    want_seconds(INT64_MIN, "-9223372036854775.808");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_numfmt_values),
        cmocka_unit_test(test_numfmt_values_round_trip),
        cmocka_unit_test(test_numfmt_seconds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
