/*
 * Tests of query/parse.c and the printer in query/ast.c: a table of
 * expressions with their canonical printed form (precedence, every
 * modifier, every aggregation form, matching clauses), a table of invalid
 * expressions with their exact messages and positions, the depth and
 * length limits, tree contents for a few shapes, and a fixed-seed random
 * expression generator whose printed output must re-parse to the same
 * print.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/parse.h"
#include "tsdb/error.h"

#define PRINT_CAP 65536

/* Parses in and returns its printed form in a static buffer. */
static const char *roundtrip(const char *in)
{
    static char buf[PRINT_CAP];
    struct query_node *n;
    struct query_parse_err err;
    int rc = query_parse(in, strlen(in), &n, &err);

    if (rc != TSDB_OK) {
        snprintf(buf, sizeof(buf), "ERROR %s", err.msg);
        return buf;
    }
    assert_int_equal(query_print(n, buf, sizeof(buf), NULL), TSDB_OK);
    query_node_free(n);
    return buf;
}

static void check_table(const char *const (*cases)[2], size_t n)
{
    const char *got;

    for (size_t i = 0; i < n; i++) {
        got = roundtrip(cases[i][0]);
        if (strcmp(got, cases[i][1]) != 0)
            print_error("input:    %s\nexpected: %s\ngot:      %s\n",
                        cases[i][0], cases[i][1], got);
        assert_string_equal(got, cases[i][1]);

        /* The canonical form is a fixed point of parse and print. */
        if (strncmp(cases[i][1], "ERROR", 5) != 0)
            assert_string_equal(roundtrip(cases[i][1]), cases[i][1]);
    }
}

#define TABLE(t) check_table(t, sizeof(t) / sizeof(t[0]))

static void test_query_parse_literals(void **state)
{
    static const char *const cases[][2] = {
        {"1", "1"},
        {"1.5", "1.5"},
        {".5", "0.5"},
        {"1e3", "1000"},
        {"1E-3", "0.001"},
        {"2.5e-7", "0.00000025"},
        {"0x1F", "31"},
        {"0XfF", "255"},
        {"Inf", "+Inf"},
        {"-inf", "-Inf"},
        {"+Inf", "+Inf"},
        {"NaN", "NaN"},
        {"-1", "-1"},
        {"- -1", "1"},
        {"+5", "5"},
        {"123456789012", "123456789012"},
        {"0.1", "0.1"},
        {"\"a\"", "\"a\""},
        {"'a\"b'", "\"a\\\"b\""},
        {"`a\\b`", "\"a\\\\b\""},
        {"\"\\t\\x01\\u00e9\"", "\"\\t\\x01\xc3\xa9\""},
        {"'\\''", "\"'\""},
    };

    (void)state;
    TABLE(cases);
}

static void test_query_parse_selectors(void **state)
{
    static const char *const cases[][2] = {
        {"foo", "foo"},
        {"foo:bar:rate5m", "foo:bar:rate5m"},
        {"foo{}", "foo"},
        {"foo{a=\"b\"}", "foo{a=\"b\"}"},
        {"foo{a='b',c!=\"d\",e=~\"f.*\",g!~`h`}",
         "foo{a=\"b\", c!=\"d\", e=~\"f.*\", g!~\"h\"}"},
        {"{a=\"b\"}", "{a=\"b\"}"},
        {"{__name__=\"foo\",a=\"\"}", "{__name__=\"foo\", a=\"\"}"},
        {"{__name__=~\"foo|bar\"}", "{__name__=~\"foo|bar\"}"},
        {"{a=~\".+\"}", "{a=~\".+\"}"},
        {"{a!=\"\"}", "{a!=\"\"}"},
        {"{a!~\"\"}", "{a!~\"\"}"},
        {"foo{a=\"1\",}", "foo{a=\"1\"}"},
        {"foo{on=\"1\",by=\"2\",sum=\"3\"}",
         "foo{on=\"1\", by=\"2\", sum=\"3\"}"},
        {"time", "time"},
        {"foo # comment\n", "foo"},
        {"foo[5m]", "foo[5m]"},
        {"foo[90m]", "foo[1h30m]"},
        {"foo[1h30m]", "foo[1h30m]"},
        {"foo[100ms]", "foo[100ms]"},
        {"foo[1500ms]", "foo[1s500ms]"},
        {"foo[7d]", "foo[1w]"},
        {"foo[8d]", "foo[8d]"},
        {"foo[365d]", "foo[1y]"},
        {"foo[1y2w]", "foo[379d]"},
        {"foo[2w]", "foo[2w]"},
        {"foo[0s]", "foo[0s]"},
        {"foo{a=\"b\"}[5m]", "foo{a=\"b\"}[5m]"},
    };

    (void)state;
    TABLE(cases);
}

static void test_query_parse_modifiers(void **state)
{
    static const char *const cases[][2] = {
        {"foo offset 5m", "foo offset 5m"},
        {"foo OFFSET 5m", "foo offset 5m"},
        {"foo offset -5m", "foo offset -5m"},
        {"foo offset 0s", "foo"},
        {"foo @ 123", "foo @ 123.000"},
        {"foo @ 123.4567", "foo @ 123.457"},
        {"foo @ -5", "foo @ -5.000"},
        {"foo @ +5", "foo @ 5.000"},
        {"foo @ 1e3", "foo @ 1000.000"},
        {"foo @ start()", "foo @ start()"},
        {"foo @ end()", "foo @ end()"},
        {"foo offset 5m @ 10", "foo @ 10.000 offset 5m"},
        {"foo @ 10 offset 5m", "foo @ 10.000 offset 5m"},
        {"foo[5m] offset 1h", "foo[5m] offset 1h"},
        {"foo[5m] @ end() offset -1h", "foo[5m] @ end() offset -1h"},
        {"foo{a=\"b\"}[5m] @ 1 offset 1d",
         "foo{a=\"b\"}[5m] @ 1.000 offset 1d"},
        {"foo[1h:5m]", "foo[1h:5m]"},
        {"foo[1h:]", "foo[1h:]"},
        {"rate(foo[5m])[1h:1m]", "rate(foo[5m])[1h:1m]"},
        {"foo offset 5m[1h:1m]", "foo offset 5m[1h:1m]"},
        {"foo[1h:1m] offset 5m @ start()", "foo[1h:1m] @ start() offset 5m"},
        {"(a + b)[1h:]", "(a + b)[1h:]"},
        {"min_over_time(sum(x)[5m:])[10m:]",
         "min_over_time(sum(x)[5m:])[10m:]"},
        {"Inf ^ 2", "Inf ^ 2"},
        {"Inf + 2", "+Inf + 2"},
        {"max_over_time(rate(x[1m])[5m:1m])",
         "max_over_time(rate(x[1m])[5m:1m])"},
        {"-foo offset 5m", "-foo offset 5m"},
        {"a + b offset 5m", "a + b offset 5m"},
        {"start", "start"},
        {"offset_total offset 1m", "offset_total offset 1m"},
    };

    (void)state;
    TABLE(cases);
}

static void test_query_parse_precedence(void **state)
{
    static const char *const cases[][2] = {
        {"1+2*3", "1 + 2 * 3"},
        {"a-b-c", "a - b - c"},
        {"a/b*c%d", "a / b * c % d"},
        {"a atan2 b * c", "a atan2 b * c"},
        {"a ATAN2 b", "a atan2 b"},
        {"2^3^2", "2 ^ 3 ^ 2"},
        {"-2^2", "-2 ^ 2"},
        {"-a*b", "-a * b"},
        {"-a^b", "-a ^ b"},
        {"a^-b", "a ^ -b"},
        {"a*-b+c", "a * -b + c"},
        {"+a", "+a"},
        {"-(a)", "-(a)"},
        {"--a", "--a"},
        {"a == b", "a == b"},
        {"a != b", "a != b"},
        {"a<=b", "a <= b"},
        {"a<b", "a < b"},
        {"a>=b", "a >= b"},
        {"a>b", "a > b"},
        {"a > bool b", "a > bool b"},
        {"1 == bool 1", "1 == bool 1"},
        {"1 < bool 2 + 3", "1 < bool 2 + 3"},
        {"a > 1", "a > 1"},
        {"a or b and c unless d", "a or b and c unless d"},
        {"a AND b OR c", "a and b or c"},
        {"a + b > c and d", "a + b > c and d"},
        {"(a + b) * c", "(a + b) * c"},
        {"((a))", "((a))"},
        {"1 + -2", "1 + -2"},
        {"1 - - 2", "1 - -2"},
        {"(1)", "(1)"},
    };

    (void)state;
    TABLE(cases);
}

static void test_query_parse_matching(void **state)
{
    static const char *const cases[][2] = {
        {"a * on(x,y) b", "a * on (x, y) b"},
        {"a * on() b", "a * on () b"},
        {"a * ignoring(x) b", "a * ignoring (x) b"},
        {"a * ignoring() b", "a * b"},
        {"a * on(x) group_left b", "a * on (x) group_left () b"},
        {"a * on(x) group_left(y,z) b", "a * on (x) group_left (y, z) b"},
        {"a * on(x) group_right(y) b", "a * on (x) group_right (y) b"},
        {"a * ignoring(x) group_left() b", "a * ignoring (x) group_left () b"},
        {"a * ignoring() group_left() b", "a * ignoring () group_left () b"},
        {"a > bool on(x) b", "a > bool on (x) b"},
        {"a and on(x) b", "a and on (x) b"},
        {"a unless ignoring(x) b", "a unless ignoring (x) b"},
        {"a or on() b", "a or on () b"},
        {"a + ON(x) GROUP_LEFT(y) b", "a + on (x) group_left (y) b"},
        {"a + on(x,) b", "a + on (x) b"},
    };

    (void)state;
    TABLE(cases);
}

static void test_query_parse_aggregations(void **state)
{
    static const char *const cases[][2] = {
        {"sum(x)", "sum(x)"},
        {"SUM(x)", "sum(x)"},
        {"avg(x)", "avg(x)"},
        {"count(x)", "count(x)"},
        {"min(x)", "min(x)"},
        {"max(x)", "max(x)"},
        {"group(x)", "group(x)"},
        {"stddev(x)", "stddev(x)"},
        {"stdvar(x)", "stdvar(x)"},
        {"sum by (a) (x)", "sum by (a) (x)"},
        {"sum(x) by (a)", "sum by (a) (x)"},
        {"sum by(a,b)(x)", "sum by (a, b) (x)"},
        {"sum by () (x)", "sum(x)"},
        {"sum without (a) (x)", "sum without (a) (x)"},
        {"sum(x) without (a,b)", "sum without (a, b) (x)"},
        {"sum without () (x)", "sum without () (x)"},
        {"sum by (sum, on) (x)", "sum by (sum, on) (x)"},
        {"topk(5, x)", "topk(5, x)"},
        {"bottomk by (a) (3, x)", "bottomk by (a) (3, x)"},
        {"topk(2 * 3, x) by (a)", "topk by (a) (2 * 3, x)"},
        {"topk(scalar(y), x)", "topk(scalar(y), x)"},
        {"quantile(0.9, x)", "quantile(0.9, x)"},
        {"quantile without (a) (0.5, x)", "quantile without (a) (0.5, x)"},
        {"count_values(\"v\", x)", "count_values(\"v\", x)"},
        {"count_values without (a) ('v', x)",
         "count_values without (a) (\"v\", x)"},
        {"sum(rate(x[5m])) by (job) / 2", "sum by (job) (rate(x[5m])) / 2"},
        {"sum(sum(x) by (a)) by (b)", "sum by (b) (sum by (a) (x))"},
        {"sum(x,)", "sum(x)"},
    };

    (void)state;
    TABLE(cases);
}

static void test_query_parse_calls(void **state)
{
    static const char *const cases[][2] = {
        {"rate(x[5m])", "rate(x[5m])"},
        {"irate(x[1m])", "irate(x[1m])"},
        {"time()", "time()"},
        {"pi()", "pi()"},
        {"vector(1)", "vector(1)"},
        {"scalar(x)", "scalar(x)"},
        {"abs(-x)", "abs(-x)"},
        {"round(x)", "round(x)"},
        {"round(x, 0.5)", "round(x, 0.5)"},
        {"hour()", "hour()"},
        {"hour(x)", "hour(x)"},
        {"clamp(x, 0, 1)", "clamp(x, 0, 1)"},
        {"histogram_quantile(0.9, sum by (le) (rate(x[5m])))",
         "histogram_quantile(0.9, sum by (le) (rate(x[5m])))"},
        {"label_replace(x, \"a\", \"$1\", \"b\", \"(.*)\")",
         "label_replace(x, \"a\", \"$1\", \"b\", \"(.*)\")"},
        {"label_join(x, 'a', ',')", "label_join(x, \"a\", \",\")"},
        {"label_join(x, 'a', ',', 'b', 'c', 'd')",
         "label_join(x, \"a\", \",\", \"b\", \"c\", \"d\")"},
        {"quantile_over_time(0.5, x[5m])", "quantile_over_time(0.5, x[5m])"},
        {"predict_linear(x[5m], 3600)", "predict_linear(x[5m], 3600)"},
        {"holt_winters(x[5m], 0.5, 0.5)", "holt_winters(x[5m], 0.5, 0.5)"},
        {"absent_over_time(x[5m])", "absent_over_time(x[5m])"},
        {"rate(x[5m],)", "rate(x[5m])"},
        {"sort_desc(sum by (a) (x))", "sort_desc(sum by (a) (x))"},
    };

    (void)state;
    TABLE(cases);
}

static void test_query_parse_errors(void **state)
{
    static const char *const cases[][2] = {
        {"", "ERROR 1:1: parse error: no expression found in input"},
        {"foo * *", "ERROR 1:7: parse error: unexpected <op:*>"},
        {"foo +\n  *", "ERROR 2:3: parse error: unexpected <op:*>"},
        {"1 +", "ERROR 1:4: parse error: unexpected end of input"},
        {")", "ERROR 1:1: parse error: unexpected \")\""},
        /* An open bracket at the end is the lexer's error in 2.42. */
        {"(1", "ERROR 1:3: parse error: unclosed left parenthesis"},
        {"sum(rate(x[5m])", "ERROR 1:16: parse error: unclosed left "
                            "parenthesis"},
        {"foo bar", "ERROR 1:5: parse error: unexpected identifier \"bar\""},
        {"1h", "ERROR 1:1: parse error: unexpected duration \"1h\""},
        {"foo $", "ERROR 1:5: parse error: unexpected character: '$'"},
        {"\"abc", "ERROR 1:1: parse error: unterminated quoted string"},
        {"\"a\\qb\"", "ERROR 1:3: parse error: unknown escape sequence 'q'"},
        {"5mx", "ERROR 1:1: parse error: bad number or duration syntax: "
                "\"5mx\""},
        {"sum", "ERROR 1:1: parse error: unexpected <aggr:sum>"},
        {"by", "ERROR 1:1: parse error: unexpected <by>"},
        {"and", "ERROR 1:1: parse error: unexpected <op:and>"},
        {"foo{a}", "ERROR 1:6: parse error: unexpected \"}\" in label "
                   "matching, expected label matching operator"},
        {"foo{a=}", "ERROR 1:7: parse error: unexpected \"}\" in label "
                    "matching, expected string"},
        {"foo{a=1}", "ERROR 1:7: parse error: unexpected number \"1\" in "
                     "label matching, expected string"},
        {"foo{a:b=\"c\"}", "ERROR 1:5: parse error: unexpected identifier "
                           "\"a:b\" in label matching, expected identifier "
                           "or \"}\""},
        {"foo{a=\"b\" c=\"d\"}", "ERROR 1:11: parse error: unexpected "
                                 "identifier \"c\" in label matching, "
                                 "expected \",\" or \"}\""},
        {"{}", "ERROR 1:1: parse error: vector selector must contain at "
               "least one non-empty matcher"},
        {"{a=\"\"}", "ERROR 1:1: parse error: vector selector must contain "
                     "at least one non-empty matcher"},
        {"{a=~\".*\"}", "ERROR 1:1: parse error: vector selector must "
                        "contain at least one non-empty matcher"},
        {"{a!~\".+\"}", "ERROR 1:1: parse error: vector selector must "
                        "contain at least one non-empty matcher"},
        {"{a=~\"(\"}", "ERROR 1:1: parse error: invalid regular expression: "
                       "missing closing parenthesis"},
        {"foo{__name__=\"bar\"}", "ERROR 1:1: parse error: metric name must "
                                  "not be set twice: \"foo\" or \"bar\""},
        {"nosuch(x)", "ERROR 1:1: parse error: unknown function with name "
                      "\"nosuch\""},
        {"rate(x)", "ERROR 1:6: parse error: expected type range vector in "
                    "call to function \"rate\", got instant vector"},
        {"abs(x[5m])", "ERROR 1:5: parse error: expected type instant vector "
                       "in call to function \"abs\", got range vector"},
        {"rate(x[5m], 1)", "ERROR 1:1: parse error: expected 1 argument(s) "
                           "in call to \"rate\", got 2"},
        {"time(1)", "ERROR 1:1: parse error: expected 0 argument(s) in call "
                    "to \"time\", got 1"},
        {"round(x, 1, 2)", "ERROR 1:1: parse error: expected at most 2 "
                           "argument(s) in call to \"round\", got 3"},
        {"label_join(x, 'a')", "ERROR 1:1: parse error: expected at least 3 "
                               "argument(s) in call to \"label_join\", got 2"},
        {"label_join(x, 'a', ',', 1)", "ERROR 1:25: parse error: expected "
                                       "type string in call to function "
                                       "\"label_join\", got scalar"},
        {"vector(x)", "ERROR 1:8: parse error: expected type scalar in call "
                      "to function \"vector\", got instant vector"},
        {"rate(x[5m] 1)", "ERROR 1:12: parse error: unexpected number \"1\" "
                          "in function call, expected \",\" or \")\""},
        {"sum()", "ERROR 1:1: parse error: no arguments for aggregate "
                  "expression provided"},
        {"sum(x, y)", "ERROR 1:1: parse error: wrong number of arguments for "
                      "aggregate expression provided, expected 1, got 2"},
        {"topk(x)", "ERROR 1:1: parse error: wrong number of arguments for "
                    "aggregate expression provided, expected 2, got 1"},
        {"topk(x, x)", "ERROR 1:6: parse error: expected type scalar in "
                       "aggregation parameter, got instant vector"},
        {"count_values(1, x)", "ERROR 1:14: parse error: expected type "
                               "string in aggregation parameter, got scalar"},
        {"sum(1)", "ERROR 1:5: parse error: expected type instant vector in "
                   "aggregation expression, got scalar"},
        {"sum(x[5m])", "ERROR 1:5: parse error: expected type instant vector "
                       "in aggregation expression, got range vector"},
        {"sum by (a) (x) by (b)", "ERROR 1:16: parse error: unexpected <by>"},
        {"sum by (a:b) (x)", "ERROR 1:9: parse error: unexpected identifier "
                             "\"a:b\" in grouping opts, expected label"},
        {"sum by a (x)", "ERROR 1:8: parse error: unexpected identifier "
                         "\"a\" in grouping opts, expected \"(\""},
        {"sum x", "ERROR 1:5: parse error: unexpected identifier \"x\" in "
                  "aggregation, expected \"(\""},
        {"1 == 1", "ERROR 1:1: parse error: comparisons between scalars must "
                   "use BOOL modifier"},
        {"1 and x", "ERROR 1:1: parse error: set operator \"and\" not allowed "
                    "in binary scalar expression"},
        {"x or 1", "ERROR 1:1: parse error: set operator \"or\" not allowed "
                   "in binary scalar expression"},
        {"x + bool y", "ERROR 1:1: parse error: bool modifier can only be "
                       "used on comparison operators"},
        {"x and on(a) group_left y", "ERROR 1:1: parse error: no grouping "
                                     "allowed for \"and\" operation"},
        {"x * on(a) 2", "ERROR 1:1: parse error: vector matching only "
                        "allowed between instant vectors"},
        {"x[5m] + 1", "ERROR 1:1: parse error: binary expression must "
                      "contain only scalar and instant vector types"},
        {"\"a\" + 1", "ERROR 1:1: parse error: binary expression must "
                      "contain only scalar and instant vector types"},
        {"a * on(c) group_left(c) b", "ERROR 1:1: parse error: label \"c\" "
                                      "must not occur in ON and GROUP "
                                      "clause at once"},
        {"-x[5m]", "ERROR 1:1: parse error: unary expression only allowed "
                   "on expressions of type scalar or instant vector, got "
                   "\"range vector\""},
        {"sum(x) offset 5m", "ERROR 1:8: parse error: offset modifier must "
                             "be preceded by an instant vector selector or "
                             "range vector selector or a subquery"},
        {"1 @ 5", "ERROR 1:3: parse error: @ modifier must be preceded by an "
                  "instant vector selector or range vector selector or a "
                  "subquery"},
        {"x offset 5m offset 1m", "ERROR 1:13: parse error: offset may not "
                                  "be set multiple times"},
        {"x @ 1 @ 2", "ERROR 1:7: parse error: @ <timestamp> may not be set "
                      "multiple times"},
        {"x @ Inf", "ERROR 1:5: parse error: timestamp out of bounds for @ "
                    "modifier: +Inf"},
        {"x @ -NaN", "ERROR 1:6: parse error: timestamp out of bounds for @ "
                     "modifier: NaN"},
        {"x @ 1e20", "ERROR 1:5: parse error: timestamp out of bounds for "
                     "@ modifier: 100000000000000000000.000000"},
        {"x @ foo", "ERROR 1:5: parse error: unexpected identifier \"foo\" "
                    "in @, expected number or \"start()\" or \"end()\""},
        {"x offset 5", "ERROR 1:10: parse error: unexpected number \"5\" in "
                       "offset, expected duration"},
        {"x offset 5m [5m]", "ERROR 1:1: parse error: no offset modifiers "
                             "allowed before range"},
        {"x @ 1 [5m]", "ERROR 1:1: parse error: no @ modifiers allowed "
                       "before range"},
        {"(x)[5m]", "ERROR 1:1: parse error: ranges only allowed for vector "
                    "selectors"},
        {"x[5m][1h:]", "ERROR 1:1: parse error: subquery is only allowed on "
                       "instant vector, got range vector instead"},
        {"x[5]", "ERROR 1:3: parse error: unexpected number \"5\" in "
                 "subquery or range, expected duration"},
        {"x[5m", "ERROR 1:5: parse error: unclosed left bracket"},
        {"x[5m:1m", "ERROR 1:8: parse error: unclosed left bracket"},
        {"x[1m1h]", "ERROR 1:3: parse error: not a valid duration string: "
                    "\"1m1h\""},
        {"x[1h1h]", "ERROR 1:3: parse error: not a valid duration string: "
                    "\"1h1h\""},
        {"sum(x) x", "ERROR 1:8: parse error: unexpected identifier \"x\""},
    };

    (void)state;
    TABLE(cases);
}

static void test_query_parse_tree(void **state)
{
    const char *q = "sum by (a) (rate(x{b=~\"c\"}[5m] offset -1m)) > bool 2";
    struct query_node *n, *agg, *call, *m;

    (void)state;
    assert_int_equal(query_parse(q, strlen(q), &n, NULL), TSDB_OK);
    assert_int_equal(n->kind, QUERY_NODE_BINARY);
    assert_int_equal(n->u.binary.op, QUERY_OP_GT);
    assert_true(n->u.binary.return_bool);
    assert_int_equal(query_node_type(n), QUERY_TYPE_VECTOR);
    agg = n->u.binary.lhs;
    assert_int_equal(agg->kind, QUERY_NODE_AGG);
    assert_int_equal(agg->u.agg.op, QUERY_AGG_SUM);
    assert_int_equal(agg->u.agg.grouping.n, 1);
    assert_string_equal(agg->u.agg.grouping.names[0].p, "a");
    call = agg->u.agg.expr;
    assert_int_equal(call->kind, QUERY_NODE_CALL);
    assert_string_equal(call->u.call.fn->name, "rate");
    assert_int_equal(call->pos, 12);
    m = call->u.call.args[0];
    assert_int_equal(m->kind, QUERY_NODE_MATRIX);
    assert_int_equal(m->u.matrix.range_ms, 300000);
    assert_int_equal(m->u.matrix.sel->u.sel.mods.offset_ms, -60000);
    assert_string_equal(m->u.matrix.sel->u.sel.name.p, "x");
    assert_int_equal(m->u.matrix.sel->u.sel.matchers[0].op, QUERY_MATCH_RE);
    assert_int_equal(n->u.binary.rhs->u.number, 2);
    assert_int_equal(n->height, 5);
    query_node_free(n);

    /* Scalar arithmetic is a scalar; set operators are many-to-many. */
    assert_int_equal(query_parse("1 + time()", 10, &n, NULL), TSDB_OK);
    assert_int_equal(query_node_type(n), QUERY_TYPE_SCALAR);
    query_node_free(n);
    assert_int_equal(query_parse("a or b", 6, &n, NULL), TSDB_OK);
    assert_int_equal(n->u.binary.card, QUERY_CARD_MANY_TO_MANY);
    query_node_free(n);

    /* The text need not be NUL-terminated. */
    assert_int_equal(query_parse("foo+bar", 3, &n, NULL), TSDB_OK);
    assert_int_equal(n->kind, QUERY_NODE_SELECTOR);
    query_node_free(n);
    query_node_free(NULL);
}

/* Builds "<open>x<close>" with the open and close parts repeated k times. */
static char *nest(const char *open, const char *mid, const char *close, int k)
{
    size_t lo = strlen(open), lc = strlen(close), lm = strlen(mid);
    char *s = malloc((lo + lc) * (size_t)k + lm + 1), *w = s;

    assert_non_null(s);
    for (int i = 0; i < k; i++, w += lo)
        memcpy(w, open, lo);
    memcpy(w, mid, lm);
    w += lm;
    for (int i = 0; i < k; i++, w += lc)
        memcpy(w, close, lc);
    *w = '\0';
    return s;
}

static void expect_depth(const char *open, const char *mid, const char *close,
                         int k, int want)
{
    char *s = nest(open, mid, close, k);
    struct query_node *n = NULL;
    struct query_parse_err err;
    int rc = query_parse(s, strlen(s), &n, &err);

    assert_int_equal(rc, want);
    if (rc == TSDB_ELIMIT) {
        assert_null(n);
        assert_non_null(strstr(err.msg, "parse error: expression nesting "
                                        "exceeds 256 levels"));
    }
    query_node_free(n);
    free(s);
}

static void test_query_parse_depth_limit(void **state)
{
    int ok = QUERY_PARSE_MAX_DEPTH / 2, over = QUERY_PARSE_MAX_DEPTH + 1;

    (void)state;
    expect_depth("(", "x", ")", ok, TSDB_OK);
    expect_depth("(", "x", ")", over, TSDB_ELIMIT);
    expect_depth("(", "x", ")", 100000, TSDB_ELIMIT);
    expect_depth("-", "x", "", ok, TSDB_OK);
    expect_depth("-", "x", "", 100000, TSDB_ELIMIT);
    expect_depth("abs(", "x", ")", ok, TSDB_OK);
    expect_depth("abs(", "x", ")", over, TSDB_ELIMIT);
    expect_depth("sum(", "x", ")", over, TSDB_ELIMIT);
    expect_depth("2^", "2", "", over, TSDB_ELIMIT);

    /* Left-associative chains loop rather than recurse, but the tree
     * height they build is bounded all the same. */
    expect_depth("", "x", "+x", ok, TSDB_OK);
    expect_depth("", "x", "+x", 100000, TSDB_ELIMIT);
    expect_depth("max_over_time(", "x", "[1m:])", over / 4, TSDB_OK);
    expect_depth("max_over_time(", "x", "[1m:])", over, TSDB_ELIMIT);
}

static void test_query_parse_length_limit(void **state)
{
    size_t len = QUERY_PARSE_MAX_LEN + 1;
    char *s = malloc(len);
    struct query_node *n;
    struct query_parse_err err;

    (void)state;
    assert_non_null(s);
    memset(s, 'x', len);
    assert_int_equal(query_parse(s, len, &n, &err), TSDB_ELIMIT);
    assert_string_equal(err.msg,
                        "1:1: parse error: query longer than 1048576 bytes");
    assert_int_equal(query_parse(s, len - 1, &n, &err), TSDB_OK);
    query_node_free(n);
    free(s);
}

static void test_query_print_full(void **state)
{
    const char *q = "sum by (job) (rate(x[5m]))";
    struct query_node *n;
    char buf[64];
    size_t len;

    (void)state;
    assert_int_equal(query_parse(q, strlen(q), &n, NULL), TSDB_OK);
    assert_int_equal(query_print(n, buf, 10, &len), TSDB_EFULL);
    assert_true(strlen(buf) < 10);
    assert_int_equal(query_print(n, buf, strlen(q), &len), TSDB_EFULL);
    assert_int_equal(query_print(n, buf, strlen(q) + 1, &len), TSDB_OK);
    assert_int_equal(len, strlen(q));
    assert_string_equal(buf, q);
    assert_int_equal(query_print(n, buf, 0, &len), TSDB_EFULL);
    query_node_free(n);
}

/*
 * Random expression generator: typed, so that nearly every output parses.
 * Text is built into a bounded buffer; the seed is fixed and printed.
 */
struct gen {
    uint64_t s;
    char buf[8192];
    size_t len;
};

static uint32_t rnd(struct gen *g, uint32_t n)
{
    g->s ^= g->s << 13;
    g->s ^= g->s >> 7;
    g->s ^= g->s << 17;
    return (uint32_t)(g->s % n);
}

static void emit(struct gen *g, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void emit(struct gen *g, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(g->buf + g->len, sizeof(g->buf) - g->len, fmt, ap);
    va_end(ap);
    assert_true(n >= 0 && (size_t)n < sizeof(g->buf) - g->len);
    g->len += (size_t)n;
}

static const char *pick(struct gen *g, const char *const *v, size_t n)
{
    return v[rnd(g, (uint32_t)n)];
}

#define PICK(g, v) pick(g, v, sizeof(v) / sizeof(v[0]))

static void gen_vector(struct gen *g, int depth);
static void gen_scalar(struct gen *g, int depth);

static const char *const durs[] = {"5m", "1h30m", "90s", "1d",
                                   "2w", "100ms", "1y",  "15s"};
static const char *const labels[] = {"a", "job", "le", "on", "instance"};

static void gen_mods(struct gen *g)
{
    static const char *const ats[] = {" @ 100", " @ start()", " @ end()",
                                      " @ -1.5", " @ 1e3"};

    if (rnd(g, 3) == 0)
        emit(g, "%s", PICK(g, ats));
    if (rnd(g, 3) == 0)
        emit(g, " offset %s%s", rnd(g, 2) ? "-" : "", PICK(g, durs));
}

static void gen_selector(struct gen *g)
{
    static const char *const names[] = {"x", "up", "http_requests_total",
                                        "ns:metric:rate5m", "bool_x"};
    static const char *const ops[] = {"=", "!=", "=~", "!~"};
    static const char *const vals[] = {"\"v\"", "'q\\'t'", "`r.*`",
                                       "\"\\n\\u00e9\"", "\"a|b\""};
    uint32_t k = rnd(g, 3);

    emit(g, "%s", PICK(g, names));
    if (rnd(g, 2) == 0)
        return;
    emit(g, "{");
    for (uint32_t i = 0; i < k; i++)
        emit(g, "%s%s%s%s", i ? "," : "", PICK(g, labels), PICK(g, ops),
             PICK(g, vals));
    emit(g, "}");
}

static void gen_matrix(struct gen *g, int depth)
{
    if (depth <= 0 || rnd(g, 3) != 0) {
        gen_selector(g);
        emit(g, "[%s]", PICK(g, durs));
    } else {
        emit(g, "(");
        gen_vector(g, depth - 1);
        emit(g, ")[%s:%s]", PICK(g, durs), rnd(g, 2) ? PICK(g, durs) : "");
    }
    gen_mods(g);
}

static void gen_grouping(struct gen *g)
{
    uint32_t k = rnd(g, 3);

    emit(g, " %s (", rnd(g, 2) ? "by" : "without");
    for (uint32_t i = 0; i < k; i++)
        emit(g, "%s%s", i ? ", " : "", PICK(g, labels));
    emit(g, ") ");
}

static void gen_agg(struct gen *g, int depth)
{
    static const char *const plain[] = {"sum", "avg",   "count",  "min",
                                        "max", "group", "stddev", "stdvar"};
    static const char *const param[] = {"topk", "bottomk", "quantile",
                                        "count_values"};
    bool p = rnd(g, 3) == 0, before = rnd(g, 2);
    const char *op = p ? PICK(g, param) : PICK(g, plain);

    emit(g, "%s", op);
    if (before)
        gen_grouping(g);
    emit(g, "(");
    if (p && strcmp(op, "count_values") == 0)
        emit(g, "\"value\", ");
    else if (p)
        gen_scalar(g, depth - 1), emit(g, ", ");
    gen_vector(g, depth - 1);
    emit(g, ")");
    if (!before && rnd(g, 2))
        gen_grouping(g);
}

static void gen_call(struct gen *g, int depth)
{
    static const char *const vfn[] = {"abs",       "ceil",   "sort",
                                      "timestamp", "absent", "hour"};
    static const char *const mfn[] = {"rate", "increase", "delta",
                                      "max_over_time", "changes"};

    switch (rnd(g, 5)) {
    case 0:
        emit(g, "%s(", PICK(g, vfn));
        gen_vector(g, depth - 1);
        emit(g, ")");
        break;
    case 1:
        emit(g, "%s(", PICK(g, mfn));
        gen_matrix(g, depth - 1);
        emit(g, ")");
        break;
    case 2:
        emit(g, "clamp_min(");
        gen_vector(g, depth - 1);
        emit(g, ", ");
        gen_scalar(g, depth - 1);
        emit(g, ")");
        break;
    case 3:
        emit(g, "histogram_quantile(0.9, ");
        gen_vector(g, depth - 1);
        emit(g, ")");
        break;
    default:
        emit(g, "label_replace(");
        gen_vector(g, depth - 1);
        emit(g, ", \"dst\", \"$1\", \"src\", \"(.*)\")");
        break;
    }
}

static void gen_binop(struct gen *g, bool vectors)
{
    static const char *const arith[] = {"+", "-", "*", "/", "%", "^", "atan2"};
    static const char *const cmp[] = {"==", "!=", "<=", "<", ">=", ">"};
    static const char *const set[] = {"and", "or", "unless"};
    uint32_t kind = rnd(g, vectors ? 3 : 2);

    if (kind == 0)
        emit(g, " %s ", PICK(g, arith));
    else if (kind == 1)
        emit(g, " %s%s ", PICK(g, cmp), vectors && rnd(g, 2) ? "" : " bool");
    else
        emit(g, " %s ", PICK(g, set));
    if (!vectors || rnd(g, 2))
        return;
    emit(g, "%s(%s) ", rnd(g, 2) ? "on" : "ignoring", PICK(g, labels));
    if (kind < 2 && rnd(g, 2))
        emit(g, "%s(extra) ", rnd(g, 2) ? "group_left" : "group_right");
}

static void gen_scalar(struct gen *g, int depth)
{
    static const char *const nums[] = {"1",   "0.5", "1e3",    "0x1F",
                                       "Inf", "NaN", "2.5e-7", "123456789"};

    switch (depth <= 0 ? 0 : rnd(g, 6)) {
    case 0:
        emit(g, "%s", PICK(g, nums));
        break;
    case 1:
        emit(g, "scalar(");
        gen_vector(g, depth - 1);
        emit(g, ")");
        break;
    case 2:
        emit(g, "time()");
        break;
    case 3:
        emit(g, "(");
        gen_scalar(g, depth - 1);
        gen_binop(g, false);
        gen_scalar(g, depth - 1);
        emit(g, ")");
        break;
    case 4:
        emit(g, "-");
        gen_scalar(g, depth - 1);
        break;
    default:
        gen_scalar(g, depth - 1);
        emit(g, " %s ", rnd(g, 2) ? "+" : "*");
        gen_scalar(g, depth - 1);
        break;
    }
}

static void gen_vector(struct gen *g, int depth)
{
    switch (depth <= 0 ? 0 : rnd(g, 8)) {
    case 0:
        gen_selector(g);
        gen_mods(g);
        break;
    case 1:
        gen_agg(g, depth);
        break;
    case 2:
        gen_call(g, depth);
        break;
    case 3:
        emit(g, "(");
        gen_vector(g, depth - 1);
        gen_binop(g, true);
        gen_vector(g, depth - 1);
        emit(g, ")");
        break;
    case 4:
        emit(g, "(");
        gen_vector(g, depth - 1);
        emit(g, " %s ", rnd(g, 2) ? "+" : "/");
        gen_scalar(g, depth - 1);
        emit(g, ")");
        break;
    case 5:
        emit(g, "-");
        gen_vector(g, depth - 1);
        break;
    case 6:
        emit(g, "(");
        gen_vector(g, depth - 1);
        emit(g, ")");
        break;
    default:
        emit(g, "max_over_time(");
        gen_matrix(g, depth - 1);
        emit(g, ")");
        break;
    }
}

static void test_query_parse_random_roundtrip(void **state)
{
    static char p1[PRINT_CAP], p2[PRINT_CAP];
    struct gen g = {.s = 0x5eed2042u};
    struct query_node *n;
    struct query_parse_err err;
    int parsed = 0;

    (void)state;
    printf("seed 0x%llx\n", (unsigned long long)g.s);
    for (int i = 0; i < 20000; i++) {
        g.len = 0;
        if (rnd(&g, 2))
            gen_vector(&g, 1 + (int)rnd(&g, 5));
        else
            gen_scalar(&g, 1 + (int)rnd(&g, 4));
        if (query_parse(g.buf, g.len, &n, &err) != TSDB_OK) {
            print_error("case %d: %s\n%s\n", i, g.buf, err.msg);
            fail();
        }
        parsed++;
        assert_int_equal(query_print(n, p1, sizeof(p1), NULL), TSDB_OK);
        query_node_free(n);
        if (query_parse(p1, strlen(p1), &n, &err) != TSDB_OK) {
            print_error("case %d: %s\nprinted %s\n%s\n", i, g.buf, p1, err.msg);
            fail();
        }
        assert_int_equal(query_print(n, p2, sizeof(p2), NULL), TSDB_OK);
        query_node_free(n);
        if (strcmp(p1, p2) != 0)
            print_error("case %d: %s\n", i, g.buf);
        assert_string_equal(p1, p2);
    }
    assert_int_equal(parsed, 20000);
}

/*
 * Generated expressions cut short or with one byte replaced: whatever the
 * outcome, no crash or leak (ASan checks), an error names a position
 * inside the text, and a success still prints to a fixed point.
 */
static void test_query_parse_mutations(void **state)
{
    static const char junk[] = "(){}[],:@=!~+-*/%^<>\"'`#\n 0aZ.";
    static char p1[PRINT_CAP], p2[PRINT_CAP];
    struct gen g = {.s = 0xbadc0ffeeu};
    struct query_node *n;
    struct query_parse_err err;
    int ok = 0, bad = 0;

    (void)state;
    printf("seed 0x%llx\n", (unsigned long long)g.s);
    for (int i = 0; i < 20000; i++) {
        g.len = 0;
        gen_vector(&g, 1 + (int)rnd(&g, 4));
        if (rnd(&g, 2))
            g.len = rnd(&g, (uint32_t)g.len);
        else
            g.buf[rnd(&g, (uint32_t)g.len)] = junk[rnd(&g, sizeof(junk) - 1)];
        if (query_parse(g.buf, g.len, &n, &err) != TSDB_OK) {
            assert_true(err.pos <= g.len);
            assert_non_null(strstr(err.msg, ": parse error: "));
            bad++;
            continue;
        }
        ok++;
        assert_int_equal(query_print(n, p1, sizeof(p1), NULL), TSDB_OK);
        query_node_free(n);
        assert_int_equal(query_parse(p1, strlen(p1), &n, &err), TSDB_OK);
        assert_int_equal(query_print(n, p2, sizeof(p2), NULL), TSDB_OK);
        query_node_free(n);
        assert_string_equal(p1, p2);
    }
    printf("mutations: %d parsed, %d rejected\n", ok, bad);
    assert_true(ok > 0 && bad > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_query_parse_literals),
        cmocka_unit_test(test_query_parse_selectors),
        cmocka_unit_test(test_query_parse_modifiers),
        cmocka_unit_test(test_query_parse_precedence),
        cmocka_unit_test(test_query_parse_matching),
        cmocka_unit_test(test_query_parse_aggregations),
        cmocka_unit_test(test_query_parse_calls),
        cmocka_unit_test(test_query_parse_errors),
        cmocka_unit_test(test_query_parse_tree),
        cmocka_unit_test(test_query_parse_depth_limit),
        cmocka_unit_test(test_query_parse_length_limit),
        cmocka_unit_test(test_query_print_full),
        cmocka_unit_test(test_query_parse_random_roundtrip),
        cmocka_unit_test(test_query_parse_mutations),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
