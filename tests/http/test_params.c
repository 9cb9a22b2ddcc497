/*
 * Tests for http/params.c: form decoding, first-value lookup, the
 * parameter limit, and time parsing in both of Prometheus's forms.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "http/params.h"
#include "query/duration.h"

static void test_params_form_decoding(void **state)
{
    struct http_params ps;
    const char *body = "match%5B%5D=up%7Bjob%3D%22a%22%7D&start=1&&x"
                       "&match[]=a+b&q=%e2%82%ac";
    (void)state;

    http_params_init(&ps);
    assert_int_equal(http_params_parse_form(&ps, body, strlen(body)), TSDB_OK);
    assert_int_equal(ps.n, 5);
    assert_string_equal(ps.v[0].name, "match[]");
    assert_string_equal(ps.v[0].value, "up{job=\"a\"}");
    assert_string_equal(ps.v[2].name, "x");
    assert_string_equal(ps.v[2].value, "");
    assert_string_equal(ps.v[3].value, "a b");
    assert_string_equal(http_params_get(&ps, "match[]"), "up{job=\"a\"}");
    assert_string_equal(http_params_get(&ps, "q"), "\xe2\x82\xac");
    assert_null(http_params_get(&ps, "end"));
    http_params_release(&ps);
}

static void test_params_refuses_bad_escapes_and_nul(void **state)
{
    struct http_params ps;
    (void)state;

    http_params_init(&ps);
    assert_int_equal(http_params_parse_form(&ps, "a=1&b=%4", 8), TSDB_EINVAL);
    assert_int_equal(ps.n, 1); /* pairs before the bad one are kept */
    assert_int_equal(http_params_parse_form(&ps, "c=%zz", 5), TSDB_EINVAL);
    assert_int_equal(http_params_parse_form(&ps, "d=%00", 5), TSDB_EINVAL);
    assert_int_equal(ps.n, 1);
    http_params_release(&ps);
}

static void test_params_limit(void **state)
{
    struct http_params ps;
    (void)state;

    http_params_init(&ps);
    for (int i = 0; i < HTTP_PARAMS_MAX; i++)
        assert_int_equal(http_params_add(&ps, "a", 1, "b", 1), TSDB_OK);
    assert_int_equal(http_params_add(&ps, "a", 1, "b", 1), TSDB_ELIMIT);
    http_params_release(&ps);
}

static int64_t t(const char *s)
{
    int64_t ms = 0;

    if (query_parse_time(s, &ms) != TSDB_OK) {
        print_error("time '%s' refused\n", s);
        fail();
    }
    return ms;
}

static void test_params_unix_seconds(void **state)
{
    int64_t ms;
    (void)state;

    assert_int_equal(t("1704067200"), 1704067200000);
    assert_int_equal(t("1704067200.123"), 1704067200123);
    assert_int_equal(t("1700000300.1239"), 1700000300124);
    assert_int_equal(t("1700000300.1234"), 1700000300123);
    assert_int_equal(t("-1.5"), -1500);
    assert_int_equal(t("-0.0005"), -1);
    assert_int_equal(t("+2"), 2000);
    assert_int_equal(t("1e9"), 1000000000000);
    assert_int_equal(t("1.5E3"), 1500000);
    assert_int_equal(t(".5"), 500);
    assert_int_equal(t("5."), 5000);
    assert_int_equal(query_parse_time("", &ms), TSDB_EINVAL);
    assert_int_equal(query_parse_time("abc", &ms), TSDB_EINVAL);
    assert_int_equal(query_parse_time("NaN", &ms), TSDB_EINVAL);
    assert_int_equal(query_parse_time("Inf", &ms), TSDB_EINVAL);
    assert_int_equal(query_parse_time("0x10", &ms), TSDB_EINVAL);
    assert_int_equal(query_parse_time(" 1", &ms), TSDB_EINVAL);
    assert_int_equal(query_parse_time("1e300", &ms), TSDB_EINVAL);
    assert_int_equal(query_parse_time("99999999999999999999", &ms),
                     TSDB_EINVAL);
}

static void test_params_rfc3339(void **state)
{
    int64_t ms;
    (void)state;

    assert_int_equal(t("2024-01-01T00:00:00Z"), 1704067200000);
    assert_int_equal(t("2024-01-01T00:00:00.123Z"), 1704067200123);
    assert_int_equal(t("2024-01-01T00:00:00.1239999Z"), 1704067200123);
    assert_int_equal(t("2023-11-14T22:13:20+01:00"), 1699996400000);
    assert_int_equal(t("2024-02-29T12:00:00-05:30"), 1709227800000);
    assert_int_equal(t("1969-12-31T23:59:59Z"), -1000);
    assert_int_equal(t("0001-01-01T00:00:00Z"), -62135596800000);
    assert_int_equal(query_parse_time("2023-02-29T00:00:00Z", &ms),
                     TSDB_EINVAL);
    assert_int_equal(query_parse_time("2024-01-01T24:00:00Z", &ms),
                     TSDB_EINVAL);
    assert_int_equal(query_parse_time("2024-01-01T00:00:00", &ms), TSDB_EINVAL);
    assert_int_equal(query_parse_time("2024-01-01T00:00:00.Z", &ms),
                     TSDB_EINVAL);
    assert_int_equal(query_parse_time("2024-01-01 00:00:00Z", &ms),
                     TSDB_EINVAL);
    assert_int_equal(query_parse_time("2024-01-01T00:00:00+1:00", &ms),
                     TSDB_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_params_form_decoding),
        cmocka_unit_test(test_params_refuses_bad_escapes_and_nul),
        cmocka_unit_test(test_params_limit),
        cmocka_unit_test(test_params_unix_seconds),
        cmocka_unit_test(test_params_rfc3339),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
