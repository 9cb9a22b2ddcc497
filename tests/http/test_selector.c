/*
 * Tests for http/selector.c: the grammar, string escapes, Prometheus's
 * whole-selector rules, error positions, and matching against label sets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "http/selector.h"

/* Parses s and renders the matchers as "name OP value;..." in order. */
static int render(const char *s, char *out, size_t cap)
{
    static const char *ops[] = {"=", "!=", "=~", "!~"};
    struct http_selector sel;
    char err[256];
    size_t len = 0;
    int rc = http_selector_parse(s, &sel, err, sizeof(err));

    out[0] = '\0';
    if (rc != TSDB_OK) {
        snprintf(out, cap, "ERR %s", err);
        http_selector_release(&sel);
        return rc;
    }
    for (size_t i = 0; i < sel.n; i++)
        len += (size_t)snprintf(out + len, cap - len, "%s%s%s;", sel.m[i].name,
                                ops[sel.m[i].type], sel.m[i].value);
    http_selector_release(&sel);
    return rc;
}

static void expect(const char *s, const char *want)
{
    char got[1024];

    render(s, got, sizeof(got));
    if (strcmp(got, want) != 0)
        print_error("selector %s\n  got  %s\n  want %s\n", s, got, want);
    assert_string_equal(got, want);
}

static void test_selector_forms(void **state)
{
    (void)state;
    expect("up", "__name__=up;");
    expect("  job:rate5m  ", "__name__=job:rate5m;");
    expect("up{}", "__name__=up;");
    expect("up{job=\"a\"}", "__name__=up;job=a;");
    expect("{job=\"a\"}", "job=a;");
    expect("http_requests_total{code!=\"500\", path=~\"/api.*\" , "
           "host!~'db-\\\\d+',}",
           "__name__=http_requests_total;code!=500;path=~/api.*;"
           "host!~db-\\d+;");
    expect("{ __name__ =~ \"up|down\" }", "__name__=~up|down;");
    expect("x{a=`raw\\n\"`}", "__name__=x;a=raw\\n\";");
}

static void test_selector_escapes(void **state)
{
    (void)state;
    expect("x{a=\"q\\\"b\\\\c\"}", "__name__=x;a=q\"b\\c;");
    expect("x{a='it\\'s'}", "__name__=x;a=it's;");
    expect("x{a=\"\\x41\\101\\u00e9\\U0001F600\"}",
           "__name__=x;a=AA\xc3\xa9\xf0\x9f\x98\x80;");
    expect("x{a=\"tab\\tnl\\n\"}", "__name__=x;a=tab\tnl\n;");
    /* As in Go, only the string's own quote may be escaped. */
    expect("x{a=\"\\'\"}",
           "ERR 1:6: parse error: invalid escape sequence starting '\\''");
    expect("x{a=\"\\q\"}",
           "ERR 1:6: parse error: invalid escape sequence starting '\\q'");
    expect("x{a=\"\\400\"}", "ERR 1:6: parse error: octal escape above \\377");
    expect("x{a=\"\\uD800\"}",
           "ERR 1:6: parse error: escape is not a Unicode code point");
    expect("x{a=\"\\x00\"}", "ERR 1:5: parse error: string holds a NUL byte");
}

static void test_selector_errors_name_the_column(void **state)
{
    char got[512];
    (void)state;

    expect("", "ERR 1:1: parse error: no selector found in input");
    expect("  ", "ERR 1:3: parse error: no selector found in input");
    expect("{}", "ERR 1:1: parse error: vector selector must contain at "
                 "least one non-empty matcher");
    expect("{a=~\".*\",b!=\"x\"}",
           "ERR 1:1: parse error: vector selector must contain at least "
           "one non-empty matcher");
    expect("up{job=\"a\"", "ERR 1:11: parse error: expected , or } after a "
                           "label matcher");
    expect("up{job=\"a}", "ERR 1:8: parse error: unterminated quoted string");
    expect("up{job}", "ERR 1:7: parse error: expected =, !=, =~ or !~ after "
                      "label name \"job\"");
    expect("up{job=a}",
           "ERR 1:8: parse error: expected a quoted string after =");
    expect("up{1a=\"x\"}", "ERR 1:4: parse error: expected a label name");
    expect("up[5m]", "ERR 1:3: parse error: unexpected '[' after the "
                     "selector (match[] takes a plain series selector)");
    expect("up offset 5m", "ERR 1:4: parse error: unexpected 'o' after the "
                           "selector (match[] takes a plain series "
                           "selector)");
    expect("up{__name__=\"x\"}", "ERR 1:1: parse error: metric name must "
                                 "not be set twice: \"up\" or \"x\"");
    expect("\n up{a=\"b\"} x",
           "ERR 2:12: parse error: unexpected 'x' after the selector "
           "(match[] takes a plain series selector)");

    /* The regex message is tsdb_matcher_init's; only its place is ours. */
    assert_int_equal(render("{a=~\"(\"}", got, sizeof(got)), TSDB_EINVAL);
    assert_memory_equal(got, "ERR 1:2: parse error: ", 22);
    assert_non_null(strstr(got, "missing closing parenthesis"));
}

static void test_selector_limits_matchers(void **state)
{
    char s[4096], got[8192];
    size_t len = (size_t)snprintf(s, sizeof(s), "x{");
    (void)state;

    for (int i = 0; i < HTTP_SELECTOR_MAX_MATCHERS; i++)
        len += (size_t)snprintf(s + len, sizeof(s) - len, "l%d=\"v\",", i);
    snprintf(s + len, sizeof(s) - len, "}");
    assert_int_equal(render(s, got, sizeof(got)), TSDB_ELIMIT);
    assert_non_null(strstr(got, "more than 64 matchers"));
}

static void test_selector_matches_label_sets(void **state)
{
    struct tsdb_label v[3] = {
        {"__name__", "up"}, {"job", "api"}, {"instance", "h1"}};
    struct tsdb_labels ls = {v, 3, NULL};
    struct http_selector sel;
    char err[256];
    (void)state;

    /* Labels sorted by name, as the storage hands them out. */
    v[0] = (struct tsdb_label){"__name__", "up"};
    v[1] = (struct tsdb_label){"instance", "h1"};
    v[2] = (struct tsdb_label){"job", "api"};
    assert_int_equal(http_selector_parse("up{job=~\"a.*\",zone=\"\"}", &sel,
                                         err, sizeof(err)),
                     TSDB_OK);
    assert_true(http_selector_matches(&sel, &ls));
    http_selector_release(&sel);
    assert_int_equal(
        http_selector_parse("up{zone!=\"\"}", &sel, err, sizeof(err)), TSDB_OK);
    assert_false(http_selector_matches(&sel, &ls));
    http_selector_release(&sel);
    assert_int_equal(
        http_selector_parse("up{job!~\"api\"}", &sel, err, sizeof(err)),
        TSDB_OK);
    assert_false(http_selector_matches(&sel, &ls));
    http_selector_release(&sel);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_selector_forms),
        cmocka_unit_test(test_selector_escapes),
        cmocka_unit_test(test_selector_errors_name_the_column),
        cmocka_unit_test(test_selector_limits_matchers),
        cmocka_unit_test(test_selector_matches_label_sets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
