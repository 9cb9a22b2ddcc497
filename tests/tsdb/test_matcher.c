/*
 * Tests for tsdb/matcher.c: the four operators, full anchoring, '.' and
 * newlines as Prometheus 2.42 has them, alternations, bad patterns and
 * matches_empty.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "tsdb/error.h"
#include "tsdb/matcher.h"

/* Does a matcher of this type and pattern accept s? */
static bool check(enum tsdb_match_type type, const char *pattern, const char *s)
{
    struct tsdb_matcher m;
    char err[256];
    bool ok;

    assert_int_equal(
        tsdb_matcher_init(&m, type, "l", pattern, err, sizeof(err)), TSDB_OK);
    ok = tsdb_matcher_matches(&m, s, strlen(s));
    assert_int_equal(m.matches_empty, tsdb_matcher_matches(&m, "", 0));
    tsdb_matcher_release(&m);
    return ok;
}

static bool re(const char *pattern, const char *s)
{
    return check(TSDB_MATCH_RE, pattern, s);
}

static void test_matcher_eq_and_neq(void **state)
{
    (void)state;
    assert_true(check(TSDB_MATCH_EQ, "api", "api"));
    assert_false(check(TSDB_MATCH_EQ, "api", "ap"));
    assert_false(check(TSDB_MATCH_EQ, "api", "apix"));
    assert_false(check(TSDB_MATCH_EQ, "a.i", "api"));
    assert_true(check(TSDB_MATCH_NEQ, "api", "web"));
    assert_false(check(TSDB_MATCH_NEQ, "api", "api"));
    assert_true(check(TSDB_MATCH_NEQ, "api", ""));
}

static void test_matcher_value_needs_no_nul(void **state)
{
    struct tsdb_matcher m;
    const char buf[] = {'a', 'p', 'i', 'x'};

    (void)state;
    assert_int_equal(
        tsdb_matcher_init(&m, TSDB_MATCH_EQ, "job", "api", NULL, 0), TSDB_OK);
    assert_true(tsdb_matcher_matches(&m, buf, 3));
    assert_false(tsdb_matcher_matches(&m, buf, 4));
    tsdb_matcher_release(&m);
    assert_int_equal(
        tsdb_matcher_init(&m, TSDB_MATCH_RE, "job", "a.i", NULL, 0), TSDB_OK);
    assert_true(tsdb_matcher_matches(&m, buf, 3));
    assert_false(tsdb_matcher_matches(&m, buf, 4));
    tsdb_matcher_release(&m);
}

static void test_matcher_regex_is_anchored(void **state)
{
    (void)state;
    assert_true(re("foo", "foo"));
    assert_false(re("foo", "xfoo"));
    assert_false(re("foo", "foox"));
    assert_false(re("fo", "foo"));
    assert_true(re("fo+", "foooo"));
    assert_true(re(".*foo", "xfoo"));
    assert_true(re("foo.*", "foox"));
    /* A leftmost alternative that matches a prefix must not win. */
    assert_true(re("a|ab", "ab"));
    assert_true(re("(a|ab)(c|bcd)", "abcd"));
    assert_false(re("b", "abc"));
    assert_true(re("", ""));
    assert_false(re("", "a"));
}

static void test_matcher_dot_does_not_match_newline(void **state)
{
    (void)state;
    assert_false(re(".*", "a\nb"));
    assert_false(re(".+", "\n"));
    assert_true(re("a\\nb", "a\nb"));
    assert_true(re("a\nb", "a\nb"));
    assert_true(re("(?s).*", "a\nb"));
    assert_true(re("[^x]*", "a\nb"));
    assert_true(re("\\s", "\n"));
    /* '$' is the end of the value, not "before a final newline". */
    assert_false(re("a$", "a\n"));
    assert_false(re("a", "a\n"));
    assert_false(re(".", "\r\n"));
    assert_true(re("..", "\r\r"));
    assert_false(check(TSDB_MATCH_NRE, ".*", "ab"));
    assert_true(check(TSDB_MATCH_NRE, ".*", "a\nb"));
}

static void test_matcher_alternations(void **state)
{
    (void)state;
    assert_true(re("GET|POST|PUT", "POST"));
    assert_false(re("GET|POST|PUT", "POS"));
    assert_false(re("GET|POST|PUT", "GETPOST"));
    assert_true(re("api-(eu|us)-[0-9]+", "api-us-12"));
    assert_false(re("api-(eu|us)-[0-9]+", "api-asia-12"));
    assert_true(re("a\\.b|c", "a.b"));
    assert_false(re("a\\.b|c", "axb"));
    assert_true(re("x|", ""));
    assert_true(check(TSDB_MATCH_NRE, "GET|POST", "PUT"));
    assert_false(check(TSDB_MATCH_NRE, "GET|POST", "GET"));
}

static void test_matcher_utf8_and_classes(void **state)
{
    (void)state;
    /* UTF mode: '.' is one code point, not one byte. */
    assert_true(re(".", "\xc3\xa9"));
    assert_true(re("\xc3\xa9+", "\xc3\xa9\xc3\xa9"));
    assert_true(re("\\x{e9}", "\xc3\xa9"));
    /* \d is ASCII only, as in RE2. */
    assert_true(re("\\d+", "123"));
    assert_false(re("\\d", "\xd9\xa3"));
    assert_true(re("\\pL+", "\xc3\xa9t\xc3\xa9"));
    assert_true(re("(?i)get", "GET"));
    assert_true(re("[[:alpha:]]+", "abc"));
    /* A value that is not UTF-8 matches no regex. */
    assert_false(re(".*", "\xff"));
    assert_true(check(TSDB_MATCH_NRE, "x", "\xff"));
}

static void test_matcher_bad_pattern(void **state)
{
    struct tsdb_matcher m;
    char err[256];

    (void)state;
    assert_int_equal(
        tsdb_matcher_init(&m, TSDB_MATCH_RE, "path", "a(b", err, sizeof(err)),
        TSDB_EINVAL);
    assert_string_equal(err, "invalid regular expression for label \"path\" "
                             "at offset 3: missing closing parenthesis");
    assert_null(m.name);
    assert_null(m.re);

    assert_int_equal(
        tsdb_matcher_init(&m, TSDB_MATCH_NRE, "job", "x[", err, sizeof(err)),
        TSDB_EINVAL);
    assert_non_null(strstr(err, "label \"job\" at offset 2: "));

    assert_int_equal(
        tsdb_matcher_init(&m, TSDB_MATCH_RE, "job", "*a", err, sizeof(err)),
        TSDB_EINVAL);
    assert_non_null(strstr(err, "at offset 0: quantifier does not follow"));

    /* A pattern that is not UTF-8. */
    assert_int_equal(
        tsdb_matcher_init(&m, TSDB_MATCH_RE, "job", "a\xff", err, sizeof(err)),
        TSDB_EINVAL);
    assert_non_null(strstr(err, "at offset 1: UTF-8 error"));

    assert_int_equal(
        tsdb_matcher_init(&m, TSDB_MATCH_RE, "job", NULL, err, sizeof(err)),
        TSDB_EINVAL);
    assert_int_equal(tsdb_matcher_init(&m, (enum tsdb_match_type)9, "job", "x",
                                       err, sizeof(err)),
                     TSDB_EINVAL);
    /* Plain equality never parses the value as a pattern. */
    assert_int_equal(
        tsdb_matcher_init(&m, TSDB_MATCH_EQ, "job", "a(b", err, sizeof(err)),
        TSDB_OK);
    tsdb_matcher_release(&m);
}

static void test_matcher_matches_empty(void **state)
{
    static const struct {
        enum tsdb_match_type type;
        const char *value;
        bool empty;
    } cases[] = {
        {TSDB_MATCH_EQ, "", true},     {TSDB_MATCH_EQ, "a", false},
        {TSDB_MATCH_NEQ, "", false},   {TSDB_MATCH_NEQ, "a", true},
        {TSDB_MATCH_RE, "", true},     {TSDB_MATCH_RE, ".*", true},
        {TSDB_MATCH_RE, ".+", false},  {TSDB_MATCH_RE, "a|", true},
        {TSDB_MATCH_RE, "a?", true},   {TSDB_MATCH_RE, "a", false},
        {TSDB_MATCH_NRE, ".*", false}, {TSDB_MATCH_NRE, "a", true},
        {TSDB_MATCH_NRE, ".+", true},  {TSDB_MATCH_NRE, "", false},
    };
    struct tsdb_matcher m;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(
            tsdb_matcher_init(&m, cases[i].type, "l", cases[i].value, NULL, 0),
            TSDB_OK);
        assert_int_equal(m.matches_empty, cases[i].empty);
        tsdb_matcher_release(&m);
    }
}

static void test_matcher_release_is_idempotent(void **state)
{
    struct tsdb_matcher m;

    (void)state;
    memset(&m, 0, sizeof(m));
    tsdb_matcher_release(&m);
    assert_int_equal(tsdb_matcher_init(&m, TSDB_MATCH_RE, "l", "x+", NULL, 0),
                     TSDB_OK);
    tsdb_matcher_release(&m);
    tsdb_matcher_release(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matcher_eq_and_neq),
        cmocka_unit_test(test_matcher_value_needs_no_nul),
        cmocka_unit_test(test_matcher_regex_is_anchored),
        cmocka_unit_test(test_matcher_dot_does_not_match_newline),
        cmocka_unit_test(test_matcher_alternations),
        cmocka_unit_test(test_matcher_utf8_and_classes),
        cmocka_unit_test(test_matcher_bad_pattern),
        cmocka_unit_test(test_matcher_matches_empty),
        cmocka_unit_test(test_matcher_release_is_idempotent),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
