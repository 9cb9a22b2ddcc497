/*
 * Tests of statsd/parse.c: each line field right and wrong in turn (name,
 * value, type, rate, tags, timestamp), the multi-value and multi-typed
 * forms, name and tag sanitising, events and service checks, the limits,
 * and line numbering in bodies that mix good and bad lines.
 *
 * Each parsed part is printed to one line of text ("1 c name{k=v} r=0.5
 * 1 2"), and each rejection to "line N: reason", so that the expectations
 * read like the input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "statsd/parse.h"

struct out {
    char text[16384];
    size_t len;
    int stop_after; /* parts to accept before stopping; 0 = never */
    int parts;
};

static void out_printf(struct out *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void out_printf(struct out *o, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    o->len +=
        (size_t)vsnprintf(o->text + o->len, sizeof(o->text) - o->len, fmt, ap);
    va_end(ap);
    assert_true(o->len < sizeof(o->text));
}

static int on_line(void *ctx, const struct statsd_line *l)
{
    struct out *o = ctx;

    if (o->stop_after && o->parts == o->stop_after)
        return TSDB_ENOMEM;
    o->parts++;
    out_printf(o, "%llu %s %.*s{", (unsigned long long)l->lineno,
               statsd_type_name(l->type), (int)l->name_len, l->name);
    for (size_t i = 0; i < l->ntags; i++)
        out_printf(o, "%s%.*s=%.*s", i ? "," : "", (int)l->tags[i].key_len,
                   l->tags[i].key, (int)l->tags[i].value_len, l->tags[i].value);
    out_printf(o, "} r=%g", l->rate);
    if (l->has_time)
        out_printf(o, " t=%lld", (long long)l->time_ms);
    if (l->type == STATSD_SET)
        out_printf(o, " m=%.*s", (int)l->member_len, l->member);
    for (size_t i = 0; i < l->nvalues; i++)
        out_printf(o, l->values[i].delta ? " %+g" : " %g", l->values[i].v);
    out_printf(o, "\n");
    return TSDB_OK;
}

static int on_reject(void *ctx, uint64_t lineno, const char *reason)
{
    struct out *o = ctx;
    char prefix[32];

    /* Every reason starts with its own line number. */
    snprintf(prefix, sizeof(prefix), "line %llu: ", (unsigned long long)lineno);
    assert_memory_equal(reason, prefix, strlen(prefix));
    out_printf(o, "%s\n", reason);
    return TSDB_OK;
}

static const struct statsd_parse_cb cb = {on_line, on_reject};

/* Parses body and returns the printed result (static buffer). */
static const char *parse_n(const char *body, size_t len, int *rc)
{
    static struct out o;
    static struct statsd_parser p;

    memset(&o, 0, sizeof(o));
    statsd_parser_init(&p);
    *rc = statsd_parse(&p, body, len, &cb, &o);
    assert_int_equal(p.lines, p.accepted + p.rejected);
    return o.text;
}

static const char *parse(const char *body)
{
    int rc;
    const char *s = parse_n(body, strlen(body), &rc);

    assert_int_equal(rc, TSDB_OK);
    return s;
}

#define EXPECT(body, want) assert_string_equal(parse(body), want)

static void test_statsd_parse_types(void **state)
{
    (void)state;
    EXPECT("a:1|c", "1 c a{} r=1 1\n");
    EXPECT("a:2.5|g", "1 g a{} r=1 2.5\n");
    EXPECT("a:250|ms", "1 ms a{} r=1 250\n");
    EXPECT("a:0.3|h", "1 h a{} r=1 0.3\n");
    EXPECT("a:7|d", "1 d a{} r=1 7\n");
    EXPECT("a:user42|s", "1 s a{} r=1 m=user42\n");
    EXPECT("a:1e3|c", "1 c a{} r=1 1000\n");
    EXPECT("a:.5|ms", "1 ms a{} r=1 0.5\n");
    EXPECT("a:5.|c", "1 c a{} r=1 5\n");
    EXPECT("a:+5|c", "1 c a{} r=1 5\n");
    EXPECT("a:-0|c", "1 c a{} r=1 0\n");
}

static void test_statsd_parse_gauge_deltas(void **state)
{
    (void)state;
    EXPECT("g:+4|g", "1 g g{} r=1 +4\n");
    EXPECT("g:-4|g", "1 g g{} r=1 -4\n");
    EXPECT("g:4|g", "1 g g{} r=1 4\n");
    EXPECT("g:-1.5e1|g", "1 g g{} r=1 -15\n");
    EXPECT("g:1:+2:-3|g", "1 g g{} r=1 1 +2 -3\n");
}

static void test_statsd_parse_rate_tags_time(void **state)
{
    (void)state;
    EXPECT("a:1|c|@0.1", "1 c a{} r=0.1 1\n");
    EXPECT("a:1|c|@1", "1 c a{} r=1 1\n");
    EXPECT("a:1|c|#env:prod,az:eu-1", "1 c a{az=eu-1,env=prod} r=1 1\n");
    EXPECT("a:1|c|#env:prod|@0.5", "1 c a{env=prod} r=0.5 1\n");
    EXPECT("a:1|c|@0.5|#env:prod", "1 c a{env=prod} r=0.5 1\n");
    EXPECT("a:5|c|T1700000000", "1 c a{} r=1 t=1700000000000 5\n");
    EXPECT("a:5|g|#x:y|T0", "1 g a{x=y} r=1 t=0 5\n");
    EXPECT("a:5|c|T253402300799", "1 c a{} r=1 t=253402300799000 5\n");

    /* Container, external data and cardinality fields are ignored. */
    EXPECT("a:1|c|c:abc123|e:it-false,cn-x|card:high|#k:v",
           "1 c a{k=v} r=1 1\n");
}

static void test_statsd_parse_multi_value(void **state)
{
    (void)state;
    EXPECT("t:1:2:3|ms|@0.5|#a:b", "1 ms t{a=b} r=0.5 1 2 3\n");
    EXPECT("t:1:2:3|d", "1 d t{} r=1 1 2 3\n");

    /* A set's text up to '|' is one member, colons and all. */
    EXPECT("ip:fe80::1|s", "1 s ip{} r=1 m=fe80::1\n");
}

static void test_statsd_parse_multi_typed(void **state)
{
    (void)state;
    EXPECT("k:1|c:2|ms", "1 c k{} r=1 1\n1 ms k{} r=1 2\n");
    EXPECT("k:1|c|@0.1:2|ms|@0.5", "1 c k{} r=0.1 1\n1 ms k{} r=0.5 2\n");
    EXPECT("k:3|g:x|s:4|c", "1 g k{} r=1 3\n1 s k{} r=1 m=x\n1 c k{} r=1 4\n");
    EXPECT("k:1|c:2|ms|#a:b",
           "line 1: tags and timestamps are ambiguous with several types "
           "(v1|t1:v2|t2) in one line\n");
    EXPECT("k:1|c|#a:2|ms",
           "line 1: unknown field '|ms'; expected @rate, #tags, T<seconds>, "
           "c:, e: or card:\n");
    EXPECT("k:1:2|c:3|ms",
           "line 1: several values (v1:v2|t) cannot be mixed with several "
           "types (v1|t1:v2|t2) in one line\n");
    EXPECT("k:1|c:2", "line 1: no '|type' after value '2'\n");
    EXPECT("k:1|c:2|x", "line 1: type 'x' is not one of c, g, ms, h, d, s\n");

    /* One bad part rejects the whole line: nothing of it is delivered. */
    EXPECT("k:1|c:-2|ms",
           "line 1: value '-2' is negative; |ms values are >= 0\n");
}

static void test_statsd_parse_names(void **state)
{
    char body[600];

    (void)state;
    EXPECT("my.metric-name/x y:1|c", "1 c my_metric_name_x_y{} r=1 1\n");
    EXPECT("9lives:1|c", "1 c _9lives{} r=1 1\n");
    EXPECT("_ok:1|c", "1 c _ok{} r=1 1\n");
    EXPECT("h\xc3\xa9llo:1|c", "1 c h_llo{} r=1 1\n"); /* one char, one _ */
    EXPECT("a\xff\x80z:1|c", "1 c a__z{} r=1 1\n");    /* bad UTF-8: each */
    EXPECT("x\xe2\x82\xac:1|c", "1 c x_{} r=1 1\n");   /* euro sign */
    EXPECT("__x:1|c",
           "line 1: metric name '__x' is reserved (starts with __)\n");
    EXPECT("..x:1|c",
           "line 1: metric name '__x' is reserved (starts with __)\n");
    EXPECT(":1|c", "line 1: metric name is empty\n");
    EXPECT("foo", "line 1: no ':' after the metric name\n");

    memset(body, 'n', 256);
    strcpy(body + 256, ":1|c");
    assert_int_equal(strncmp(parse(body), "1 c nnn", 7), 0);
    memset(body, 'n', 257);
    strcpy(body + 257, ":1|c");
    EXPECT(body, "line 1: metric name is longer than 256 bytes\n");

    /* A leading digit takes one byte more: 256 digits are too long. */
    memset(body, '7', 256);
    strcpy(body + 256, ":1|c");
    EXPECT(body, "line 1: metric name is longer than 256 bytes\n");
}

static void test_statsd_parse_name_with_nul(void **state)
{
    static const char body[] = "a\0b:1|c";
    int rc;

    (void)state;
    assert_string_equal(parse_n(body, sizeof(body) - 1, &rc),
                        "1 c a_b{} r=1 1\n");
}

static void test_statsd_parse_tags(void **state)
{
    (void)state;
    EXPECT("a:1|c|#env:prod,Host.Name:web-1,canary",
           "1 c a{Host_Name=web-1,canary=true,env=prod} r=1 1\n");
    EXPECT("a:1|c|#url:http://x:80/y", "1 c a{url=http://x:80/y} r=1 1\n");
    EXPECT("a:1|c|#1st:x", "1 c a{_1st=x} r=1 1\n");
    EXPECT("a:1|c|#empty:,k:v", "1 c a{k=v} r=1 1\n");
    EXPECT("a:1|c|#,,k:v,", "1 c a{k=v} r=1 1\n");
    EXPECT("a:1|c|#", "1 c a{} r=1 1\n");
    EXPECT("a:1|c|#le:0.5", "1 c a{le=0.5} r=1 1\n");
    EXPECT("a:1|c|#k:caf\xc3\xa9", "1 c a{k=caf\xc3\xa9} r=1 1\n");

    EXPECT("a:1|ms|#le:0.5",
           "line 1: tag 'le' is reserved for histogram buckets\n");
    EXPECT("a:1|c|#:v", "line 1: tag ':v' has an empty name\n");
    EXPECT("a:1|c|#__name__:x",
           "line 1: tag '__name__:x' is reserved (starts with __)\n");
    EXPECT("a:1|c|#a.b:1,a_b:2", "line 1: two tags become label 'a_b'\n");
    EXPECT("a:1|c|#k:1,k:2", "line 1: two tags become label 'k'\n");
    EXPECT("a:1|c|#k:\xff", "line 1: tag 'k:?' has a value that is not "
                            "UTF-8 text\n");
    EXPECT("a:1|c|#k:v|#j:w", "line 1: tags (|#) given twice\n");
}

static void test_statsd_parse_tag_limits(void **state)
{
    char body[16384];
    size_t n;

    (void)state;

    /* 32 tags pass, 33 do not. */
    n = (size_t)sprintf(body, "a:1|c|#");
    for (int i = 0; i < 32; i++)
        n += (size_t)sprintf(body + n, "%st%02d:v", i ? "," : "", i);
    assert_int_equal(strncmp(parse(body), "1 c a{t00=v,t01=v", 17), 0);
    sprintf(body + n, ",t99:v");
    EXPECT(body, "line 1: more than 32 tags\n");

    /* Label name 128 bytes, value 380 bytes. */
    n = (size_t)sprintf(body, "a:1|c|#");
    memset(body + n, 'k', 129);
    strcpy(body + n + 129, ":v");
    assert_non_null(strstr(parse(body), "has a name longer than 128"));
    n = (size_t)sprintf(body, "a:1|c|#k:");
    memset(body + n, 'v', 381);
    body[n + 381] = '\0';
    assert_non_null(strstr(parse(body), "has a value longer than 380"));
    body[n + 380] = '\0';
    assert_int_equal(strncmp(parse(body), "1 c a{k=vvv", 11), 0);
}

static void test_statsd_parse_bad_values(void **state)
{
    (void)state;
    EXPECT("a:abc|c", "line 1: value 'abc' is not a number\n");
    EXPECT("a:|c", "line 1: value is empty\n");
    EXPECT("a:1::2|ms", "line 1: value is empty\n");
    EXPECT("a:1e|c", "line 1: value '1e' is not a number\n");
    EXPECT("a:nan|g", "line 1: value 'nan' is not a number\n");
    EXPECT("a:inf|g", "line 1: value 'inf' is not a number\n");
    EXPECT("a:0x10|c", "line 1: value '0x10' is not a number\n");
    EXPECT("a: 1|c", "line 1: value ' 1' is not a number\n");
    EXPECT("a:1e999|c", "line 1: value '1e999' is not a number\n");
    EXPECT("a:-1|c", "line 1: value '-1' is negative; |c values are >= 0\n");
    EXPECT("a:-5|ms", "line 1: value '-5' is negative; |ms values are >= 0\n");
    EXPECT("a:-5|h", "line 1: value '-5' is negative; |h values are >= 0\n");
    EXPECT("a:-5|d", "line 1: value '-5' is negative; |d values are >= 0\n");
    EXPECT("a:|s", "line 1: set member is empty\n");
}

static void test_statsd_parse_bad_types(void **state)
{
    (void)state;
    EXPECT("a:1|x", "line 1: type 'x' is not one of c, g, ms, h, d, s\n");
    EXPECT("a:1|m", "line 1: type 'm' is not one of c, g, ms, h, d, s\n");
    EXPECT("a:1|C", "line 1: type 'C' is not one of c, g, ms, h, d, s\n");
    EXPECT("a:1|", "line 1: type is empty; expected one of c, g, ms, h, d, "
                   "s\n");
    EXPECT("a:1", "line 1: no '|type' after value '1'\n");
    EXPECT("a:1|c|", "line 1: empty field after '|'\n");
    EXPECT("a:1|c||@0.5", "line 1: empty field after '|'\n");
    EXPECT("a:1|c|x", "line 1: unknown field '|x'; expected @rate, #tags, "
                      "T<seconds>, c:, e: or card:\n");
}

static void test_statsd_parse_bad_rates(void **state)
{
    (void)state;
    EXPECT("a:1|c|@2", "line 1: sample rate '@2' is not in (0, 1]\n");
    EXPECT("a:1|c|@0", "line 1: sample rate '@0' is not in (0, 1]\n");
    EXPECT("a:1|c|@-0.5", "line 1: sample rate '@-0.5' is not in (0, 1]\n");
    EXPECT("a:1|c|@1.0000001",
           "line 1: sample rate '@1.0000001' is not in (0, 1]\n");
    EXPECT("a:1|c|@x", "line 1: sample rate '@x' is not a number\n");
    EXPECT("a:1|c|@", "line 1: sample rate '@' is not a number\n");
    EXPECT("a:1|c|@0.5|@0.5", "line 1: sample rate '@0.5' given twice\n");
}

static void test_statsd_parse_bad_timestamps(void **state)
{
    (void)state;
    EXPECT("a:1|c|T12a", "line 1: timestamp 'T12a' is not unix seconds\n");
    EXPECT("a:1|c|T", "line 1: timestamp 'T' is not unix seconds\n");
    EXPECT("a:1|c|T-5", "line 1: timestamp 'T-5' is not unix seconds\n");
    EXPECT("a:1|c|T1234567890123",
           "line 1: timestamp 'T1234567890123' is not unix seconds\n");
    EXPECT("a:1|c|T253402300800",
           "line 1: timestamp 'T253402300800' is past the year 9999\n");
    EXPECT("a:1|c|T1|T2", "line 1: timestamp (|T) given twice\n");
    EXPECT("a:1|ms|T1", "line 1: timestamp (|T) is allowed on c and g lines "
                        "only, not on |ms\n");
    EXPECT("a:x|s|T1", "line 1: timestamp (|T) is allowed on c and g lines "
                       "only, not on |s\n");
    EXPECT("a:1:2|c|T1", "line 1: timestamp (|T) needs exactly one value\n");
    EXPECT("a:+1|g|T1",
           "line 1: a gauge delta (+/-) cannot carry a timestamp\n");
}

static void test_statsd_parse_events_and_checks(void **state)
{
    (void)state;
    EXPECT("_e{5,4}:title|text|#a:b",
           "line 1: events (_e{...}) are not supported\n");
    EXPECT("_sc|db.up|0|#env:prod",
           "line 1: service checks (_sc|...) are not supported\n");
}

static void test_statsd_parse_body_line_numbers(void **state)
{
    (void)state;

    /* Blank lines count; CR before LF is dropped; bad lines do not stop
     * the good ones around them; a last line may lack its newline. */
    EXPECT("a:1|c\r\n\nbad\nb:2|g\r\n\r\n_e{1,1}:t|x\nc:3|c|@7\nd:4|s",
           "1 c a{} r=1 1\n"
           "line 3: no ':' after the metric name\n"
           "4 g b{} r=1 2\n"
           "line 6: events (_e{...}) are not supported\n"
           "line 7: sample rate '@7' is not in (0, 1]\n"
           "8 s d{} r=1 m=4\n");
    EXPECT("", "");
    EXPECT("\n\n\r\n", "");
}

static void test_statsd_parse_line_limits(void **state)
{
    static char body[STATSD_MAX_LINE + 64];
    size_t n;

    (void)state;

    /* 8192 bytes pass, 8193 do not. */
    n = (size_t)sprintf(body, "a:1|c|#k:");
    memset(body + n, 'v', STATSD_MAX_LINE - n);
    body[STATSD_MAX_LINE] = '\0';
    assert_non_null(strstr(parse(body), "has a value longer than 380"));
    body[STATSD_MAX_LINE] = 'v';
    body[STATSD_MAX_LINE + 1] = '\0';
    EXPECT(body, "line 1: line is longer than 8192 bytes\n");

    /* 1024 values pass, 1025 do not. */
    n = (size_t)sprintf(body, "t:");
    for (int i = 0; i < 1025; i++)
        n += (size_t)sprintf(body + n, "%s1", i ? ":" : "");
    strcpy(body + n, "|ms");
    EXPECT(body, "line 1: more than 1024 values in one line\n");
    strcpy(body + n - 2, "|ms");
    assert_int_equal(strncmp(parse(body), "1 ms t{} r=1 1 1", 16), 0);

    /* 16 typed parts pass, 17 do not. */
    n = (size_t)sprintf(body, "k:1|c");
    for (int i = 1; i < 17; i++)
        n += (size_t)sprintf(body + n, ":1|c");
    EXPECT(body, "line 1: more than 16 typed parts (v|t:v|t...)\n");
}

struct tally {
    uint64_t parts, last_line, rejects;
    char reason[STATSD_MAX_REASON];
};

static int tally_line(void *ctx, const struct statsd_line *l)
{
    struct tally *t = ctx;

    t->parts++;
    t->last_line = l->lineno;
    return TSDB_OK;
}

static int tally_reject(void *ctx, uint64_t lineno, const char *reason)
{
    struct tally *t = ctx;

    (void)lineno;
    t->rejects++;
    snprintf(t->reason, sizeof(t->reason), "%s", reason);
    return TSDB_OK;
}

static void test_statsd_parse_too_many_lines(void **state)
{
    static const struct statsd_parse_cb tcb = {tally_line, tally_reject};
    size_t n = (size_t)STATSD_MAX_LINES + 2, len = 0;
    char *body = malloc(n * 6);
    struct statsd_parser p;
    struct tally t = {0};

    (void)state;
    for (size_t i = 0; i < n; i++, len += 6)
        memcpy(body + len, "a:1|c\n", 6);
    statsd_parser_init(&p);
    assert_int_equal(statsd_parse(&p, body, len, &tcb, &t), TSDB_ELIMIT);
    assert_int_equal(t.parts, STATSD_MAX_LINES);
    assert_int_equal(t.last_line, STATSD_MAX_LINES);
    assert_int_equal(t.rejects, 1);
    assert_string_equal(t.reason, "line 100001: more than 100000 lines in "
                                  "one body; this line and the rest are "
                                  "ignored");
    free(body);
}

static void test_statsd_parse_callback_stops(void **state)
{
    struct out o = {.stop_after = 1};
    struct statsd_parser p;
    int rc;

    (void)state;
    statsd_parser_init(&p);
    rc = statsd_parse(&p, "a:1|c\nb:2|c\nc:3|c", 17, &cb, &o);
    assert_int_equal(rc, TSDB_ENOMEM);
    assert_int_equal(o.parts, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_statsd_parse_types),
        cmocka_unit_test(test_statsd_parse_gauge_deltas),
        cmocka_unit_test(test_statsd_parse_rate_tags_time),
        cmocka_unit_test(test_statsd_parse_multi_value),
        cmocka_unit_test(test_statsd_parse_multi_typed),
        cmocka_unit_test(test_statsd_parse_names),
        cmocka_unit_test(test_statsd_parse_name_with_nul),
        cmocka_unit_test(test_statsd_parse_tags),
        cmocka_unit_test(test_statsd_parse_tag_limits),
        cmocka_unit_test(test_statsd_parse_bad_values),
        cmocka_unit_test(test_statsd_parse_bad_types),
        cmocka_unit_test(test_statsd_parse_bad_rates),
        cmocka_unit_test(test_statsd_parse_bad_timestamps),
        cmocka_unit_test(test_statsd_parse_events_and_checks),
        cmocka_unit_test(test_statsd_parse_body_line_numbers),
        cmocka_unit_test(test_statsd_parse_line_limits),
        cmocka_unit_test(test_statsd_parse_too_many_lines),
        cmocka_unit_test(test_statsd_parse_callback_stops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
