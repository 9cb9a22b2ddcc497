/*
 * Tests for http/expfmt.c.  Every run goes through record(), which turns
 * the callbacks into one text log ("S", "M" and "E" lines), so that a test
 * states the whole outcome of an input as one string and the split tests
 * can compare logs byte for byte.  Random splits and random numbers use
 * fixed, printed seeds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#include <cmocka.h>

#include "http/expfmt.h"

/* The log of one run; tests never need more. */
#define LOG_MAX (4u << 20)

struct recorder {
    char *log;
    size_t len;
    int stop_at_sample; /* 1-based sample that gets stop_rc; 0: never */
    int stop_rc;
    size_t seen;
};

static void logf_(struct recorder *r, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(r->log + r->len, LOG_MAX - r->len, fmt, ap);
    va_end(ap);
    assert_true(n >= 0 && (size_t)n < LOG_MAX - r->len);
    r->len += (size_t)n;
}

static int on_sample(void *ctx, struct expfmt_sample *s)
{
    struct recorder *r = ctx;
    size_t i;

    assert_string_equal(s->labels[0].name, "__name__");
    assert_ptr_equal(s->name, s->labels[0].value);
    logf_(r, "S %llu %s{", (unsigned long long)s->line, s->name);
    for (i = 1; i < s->nlabels; i++) {
        logf_(r, "%s%s=\"%s\"", i > 1 ? "," : "", s->labels[i].name,
              s->labels[i].value);
    }
    logf_(r, "} %.17g", s->value);
    if (s->has_timestamp)
        logf_(r, " @%lld", (long long)s->timestamp_ms);
    logf_(r, "\n");
    if (++r->seen == (size_t)r->stop_at_sample)
        return r->stop_rc;
    return TSDB_OK;
}

static int on_meta(void *ctx, const struct expfmt_meta *m)
{
    static const char *const kind[] = {"HELP", "TYPE", "UNIT"};
    struct recorder *r = ctx;

    logf_(r, "M %llu %s %s [%s]\n", (unsigned long long)m->line, kind[m->kind],
          m->name, m->text);
    if (m->kind == EXPFMT_META_TYPE)
        assert_string_equal(expfmt_type_name(m->type), m->text);
    return TSDB_OK;
}

static int on_error(void *ctx, const struct expfmt_error *e)
{
    struct recorder *r = ctx;

    logf_(r, "E %llu:%u %s\n", (unsigned long long)e->line, e->column, e->msg);
    return TSDB_OK;
}

static const struct expfmt_callbacks callbacks = {on_sample, on_meta, on_error};

/* Logs of the last two runs: tests compare at most two. */
static char log_a[LOG_MAX], log_b[LOG_MAX];

/*
 * Parses in[0..n) fed in pieces into log (log_a or log_b): step 0 feeds it
 * whole, step k > 0 in pieces of k bytes, step < 0 in random pieces of 0 to
 * 96 bytes from seed -step.  Returns what finish returned; counts, if not
 * NULL, receives the parser counters as "lines/samples/metas/errors".
 */
static int record(enum expfmt_format fmt, const char *in, size_t n, long step,
                  char *log, char *counts)
{
    struct recorder r = {0};
    struct expfmt_parser p;
    size_t off = 0, k;
    unsigned seed = (unsigned)-step;
    int rc;

    r.log = log;
    log[0] = '\0';
    assert_int_equal(expfmt_parser_init(&p, fmt, &callbacks, &r), TSDB_OK);
    while (off < n) {
        if (step == 0)
            k = n - off;
        else if (step > 0)
            k = (size_t)step;
        else
            k = (size_t)(rand_r(&seed) % 97);
        if (k > n - off)
            k = n - off;
        rc = expfmt_parser_feed(&p, in + off, k);
        if (rc != TSDB_OK)
            expfmt_parser_release(&p);
        assert_int_equal(rc, TSDB_OK);
        off += k;
    }
    rc = expfmt_parser_finish(&p);
    if (counts != NULL) {
        sprintf(counts, "%llu/%llu/%llu/%llu", (unsigned long long)p.lines,
                (unsigned long long)p.samples, (unsigned long long)p.metas,
                (unsigned long long)p.errors);
    }
    expfmt_parser_release(&p);
    return rc;
}

/* Parses a NUL-terminated input whole and checks the log and the result
 * of finish. */
static void expect(enum expfmt_format fmt, const char *in, const char *log,
                   int rc)
{
    int got_rc = record(fmt, in, strlen(in), 0, log_a, NULL);

    if (strcmp(log_a, log) != 0)
        fprintf(stderr, "input:\n%s\nlog:\n%s\nwanted:\n%s\n", in, log_a, log);
    assert_string_equal(log_a, log);
    assert_int_equal(got_rc, rc);
}

static void test_expfmt_text_basic(void **state)
{
    (void)state;
    expect(EXPFMT_TEXT,
           "# HELP http_requests_total Requests served.\n"
           "# TYPE http_requests_total counter\n"
           "http_requests_total{method=\"post\",code=\"200\"} 1027 "
           "1395066363000\n"
           "\n"
           "# a comment\n"
           "#\n"
           "  \t\n"
           "http_requests_total{method=\"post\",code=\"400\",} 3\n"
           "up 1\n"
           "up{} 0.5\n"
           "  spaced\t{ a = \"1\" , b=\"2\" , }\t 7 \t -12 \t\n"
           "ns:rule_total 2\n"
           "last 1 5",
           "M 1 HELP http_requests_total [Requests served.]\n"
           "M 2 TYPE http_requests_total [counter]\n"
           "S 3 http_requests_total{method=\"post\",code=\"200\"} 1027"
           " @1395066363000\n"
           "S 8 http_requests_total{method=\"post\",code=\"400\"} 3\n"
           "S 9 up{} 1\n"
           "S 10 up{} 0.5\n"
           "S 11 spaced{a=\"1\",b=\"2\"} 7 @-12\n"
           "S 12 ns:rule_total{} 2\n"
           "S 13 last{} 1 @5\n",
           TSDB_OK);
}

static void test_expfmt_counts(void **state)
{
    const char *in = "# TYPE a gauge\na 1\n\nbad\n# c\nb 2\n";
    char counts[128];

    (void)state;
    record(EXPFMT_TEXT, in, strlen(in), 0, log_a, counts);
    assert_string_equal(counts, "6/2/1/1");
}

static void test_expfmt_label_escapes(void **state)
{
    (void)state;
    expect(
        EXPFMT_TEXT,
        "m{a=\"x\\\\y\",b=\"q\\\"q\",c=\"l1\\nl2\",d=\"\\t\\\\\",e=\"\"} 1\n",
        "S 1 m{a=\"x\\y\",b=\"q\"q\",c=\"l1\nl2\",d=\"\\t\\\",e=\"\"}"
        " 1\n",
        TSDB_OK);
    expect(EXPFMT_OPENMETRICS, "m{a=\"\\\"\\\\\\n\"} 1\n# EOF\n",
           "S 1 m{a=\"\"\\\n\"} 1\n", TSDB_OK);
}

static void test_expfmt_help_escapes(void **state)
{
    (void)state;
    /* Text HELP keeps \" as written; OpenMetrics unescapes it. */
    expect(EXPFMT_TEXT,
           "# HELP m a\\\\b \\n c \\\"q\\\" \"x\" \\t\n"
           "# HELP e\n",
           "M 1 HELP m [a\\b \n c \\\"q\\\" \"x\" \\t]\n"
           "M 2 HELP e []\n",
           TSDB_OK);
    expect(EXPFMT_OPENMETRICS, "# HELP m a\\\\b \\n \\\"q\\\"\n# EOF\n",
           "M 1 HELP m [a\\b \n \"q\"]\n", TSDB_OK);
}

/* One bad line between two good ones: the error names the line, the
 * column and the field, and both neighbours are still delivered. */
struct bad_case {
    const char *line;
    unsigned column;
    const char *msg;
};

static void check_bad_lines(enum expfmt_format fmt, const struct bad_case *bc,
                            size_t n)
{
    char in[1024], log[1024];
    const char *eof = fmt == EXPFMT_OPENMETRICS ? "# EOF\n" : "";
    size_t i;

    for (i = 0; i < n; i++) {
        snprintf(in, sizeof(in), "ok{a=\"1\"} 1\n%s\nok{a=\"2\"} 2\n%s",
                 bc[i].line, eof);
        snprintf(log, sizeof(log),
                 "S 1 ok{a=\"1\"} 1\n"
                 "E 2:%u %s\n"
                 "S 3 ok{a=\"2\"} 2\n",
                 bc[i].column, bc[i].msg);
        expect(fmt, in, log, TSDB_OK);
    }
}

static const struct bad_case text_bad[] = {
    {"9m 1", 1, "metric name must start with a letter, '_' or ':'"},
    {"{a=\"b\"} 1", 1, "metric name must start with a letter, '_' or ':'"},
    {"m-x 1", 2, "metric name has an invalid character"},
    {"m", 2, "sample value is missing"},
    {"m{a=\"b\"}", 9, "sample value is missing"},
    {"m{a=\"b\"}1", 9, "expected a space after the label set"},
    {"m{1a=\"b\"} 1", 3, "label name must start with a letter or '_'"},
    {"m{a:b=\"c\"} 1", 4, "label name has an invalid character"},
    {"m{a b=\"c\"} 1", 5, "expected '=' after the label name"},
    {"m{a=b} 1", 5, "label value is not a quoted string"},
    {"m{a=} 1", 5, "label value is not a quoted string"},
    {"m{a=\"b} 1", 5, "label value has no closing quote"},
    {"m{a=\"b\\\"} 1", 5, "label value has no closing quote"},
    {"m{a=\"b\" c=\"d\"} 1", 9, "expected ',' or '}' after the label value"},
    {"m{a=\"b\",,} 1", 9, "label name must start with a letter or '_'"},
    {"m{a=\"b\"", 8, "label set has no closing '}'"},
    {"m{a=\"b\",", 9, "label set has no closing '}'"},
    {"m{a", 4, "expected '=' after the label name"},
    {"m{a=\"\xc3\x28\"} 1", 6, "label value is not valid UTF-8"},
    {"m{a=\"ok\xe2\x82\"} 1", 8, "label value is not valid UTF-8"},
    {"m{a=\"\xed\xa0\x80\"} 1", 6, "label value is not valid UTF-8"},
    {"m{a=\"\xc0\xaf\"} 1", 6, "label value is not valid UTF-8"},
    {"m{a=\"\xf5\x80\x80\x80\"} 1", 6, "label value is not valid UTF-8"},
    {"m{a=\"\xff\"} 1", 6, "label value is not valid UTF-8"},
    {"m one", 3, "sample value is not a number"},
    {"m 1.2.3", 3, "sample value is not a number"},
    {"m 0x10", 3, "sample value is not a number"},
    {"m 1_000", 3, "sample value is not a number"},
    {"m 1e", 3, "sample value is not a number"},
    {"m +nan", 3, "sample value is not a number"},
    {"m infin", 3, "sample value is not a number"},
    {"m 1e400", 3, "sample value is out of range"},
    {"m 1 12.5", 5, "timestamp is not an integer"},
    {"m 1 1e3", 5, "timestamp is not an integer"},
    {"m 1 -", 5, "timestamp is not an integer"},
    {"m 1 9223372036854775808", 5, "timestamp is out of range"},
    {"m 1 2 3", 7, "unexpected text after the timestamp"},
    {"# HELP 1m x", 8, "HELP metric name must start with a letter, '_' or ':'"},
    {"# HELP", 7, "HELP metric name must start with a letter, '_' or ':'"},
    {"# TYPE m-x gauge", 9, "TYPE metric name has an invalid character"},
    {"# TYPE m", 9, "TYPE value is missing"},
    {"# TYPE m  ", 11, "TYPE value is missing"},
    {"# TYPE m gaugex", 10, "TYPE value is not a known metric type"},
    {"# TYPE m unknown", 10, "TYPE value is not a known metric type"},
    {"# TYPE m Counter", 10, "TYPE value is not a known metric type"},
    {"# HELP m bad \xc3", 14, "HELP text is not valid UTF-8"},
};

static const struct bad_case om_bad[] = {
    {"", 1, "blank line in OpenMetrics input"},
    {"# random comment", 1, "comment is not HELP, TYPE, UNIT or EOF"},
    {"#HELP m x", 1, "comment is not HELP, TYPE, UNIT or EOF"},
    {"# EOF ", 1, "comment is not HELP, TYPE, UNIT or EOF"},
    {" m 1", 1, "metric name must start with a letter, '_' or ':'"},
    {"m  1", 3, "sample value is missing"},
    {"m\t1", 2, "metric name has an invalid character"},
    {"m {a=\"b\"} 1", 3, "sample value is not a number"},
    {"m{ a=\"b\"} 1", 3, "label name must start with a letter or '_'"},
    {"m{a =\"b\"} 1", 4, "expected '=' after the label name"},
    {"m{a=\"b\" } 1", 8, "expected ',' or '}' after the label value"},
    {"m 1 ", 4, "unexpected space at the end of the line"},
    {"m 1 1.5 ", 8, "unexpected space at the end of the line"},
    {"m 1 abc", 5, "timestamp is not a number of seconds"},
    {"m 1 NaN", 5, "timestamp is not a number of seconds"},
    {"m 1 +Inf", 5, "timestamp is not a number of seconds"},
    {"m 1 1e30", 5, "timestamp is out of range"},
    {"m 1  2", 5, "timestamp is not a number of seconds"},
    {"m 1 2 3", 7, "unexpected text after the timestamp"},
    {"m 1 #", 5, "expected ' # ' before the exemplar"},
    {"m 1 #{a=\"b\"} 1", 5, "expected ' # ' before the exemplar"},
    {"m 1 # a=\"b\" 1", 7, "exemplar label set must start with '{'"},
    {"m 1 # {a=b} 1", 10, "label value is not a quoted string"},
    {"m 1 # {a=\"b\"}", 14, "exemplar value is missing"},
    {"m 1 # {a=\"b\"} x", 15, "exemplar value is not a number"},
    {"m 1 # {a=\"b\"} 1 t", 17,
     "exemplar timestamp is not a number of seconds"},
    {"m 1 # {a=\"b\"} 1 2 3", 19, "unexpected text after the exemplar"},
    {"m 1 2 # {} 1 ", 13, "unexpected space at the end of the line"},
    {"# TYPE m untyped", 10, "TYPE value is not a known metric type"},
    {"# TYPE m gauge ", 10, "TYPE value is not a known metric type"},
    {"# TYPE  m gauge", 8,
     "TYPE metric name must start with a letter, '_' or ':'"},
    {"# UNIT m sec/s", 13, "UNIT value has an invalid character"},
    {"# HELP m\tx", 9, "HELP metric name has an invalid character"},
};

static void test_expfmt_text_field_errors(void **state)
{
    (void)state;
    check_bad_lines(EXPFMT_TEXT, text_bad,
                    sizeof(text_bad) / sizeof(text_bad[0]));
}

static void test_expfmt_om_field_errors(void **state)
{
    (void)state;
    check_bad_lines(EXPFMT_OPENMETRICS, om_bad,
                    sizeof(om_bad) / sizeof(om_bad[0]));
}

static void test_expfmt_nul_bytes(void **state)
{
    static const char in[] = "a{x=\"1\0\"} 1\n# HELP h a\0b\nb 2\n";

    (void)state;
    assert_int_equal(record(EXPFMT_TEXT, in, sizeof(in) - 1, 0, log_a, NULL),
                     TSDB_OK);
    assert_string_equal(log_a, "E 1:7 label value contains a NUL byte\n"
                               "E 2:11 HELP text contains a NUL byte\n"
                               "S 3 b{} 2\n");
}

static void test_expfmt_too_many_labels(void **state)
{
    char in[2048], log[2048], *lp = log;
    size_t i, len = 0, col = 0;

    (void)state;
    /* The name plus 63 labels fits EXPFMT_MAX_LABELS exactly. */
    len += (size_t)sprintf(in + len, "m{");
    lp += sprintf(lp, "S 1 m{");
    for (i = 1; i < EXPFMT_MAX_LABELS; i++) {
        len += (size_t)sprintf(in + len, "l%02zu=\"v\",", i);
        lp += sprintf(lp, "%sl%02zu=\"v\"", i > 1 ? "," : "", i);
    }
    strcpy(in + len, "} 1\n");
    strcpy(lp, "} 1\n");
    expect(EXPFMT_TEXT, in, log, TSDB_OK);

    /* One more is refused at the first label that does not fit. */
    col = len + 1;
    strcpy(in + len, "zz=\"v\"} 1\nok 1\n");
    snprintf(log, sizeof(log),
             "E 1:%zu label set has more than %d labels\n"
             "S 2 ok{} 1\n",
             col, EXPFMT_MAX_LABELS);
    expect(EXPFMT_TEXT, in, log, TSDB_OK);
}

static void test_expfmt_utf8_values(void **state)
{
    (void)state;
    expect(EXPFMT_OPENMETRICS,
           "m{a=\"h\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xef\xbf\xbf\"} 1\n"
           "# EOF\n",
           "S 1 m{a=\"h\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 "
           "\xef\xbf\xbf\"} 1\n",
           TSDB_OK);
}

static void test_expfmt_om_timestamps(void **state)
{
    (void)state;
    /* Seconds become ms by decimal arithmetic: no double rounding. */
    expect(EXPFMT_OPENMETRICS,
           "a 1 1704067200.123\n"
           "a 1 1704067200\n"
           "a 1 1704067200.1\n"
           "a 1 1704067200.1239\n"
           "a 1 1704067200.000999\n"
           "a 1 0.001\n"
           "a 1 0.0009\n"
           "a 1 -1.5\n"
           "a 1 -0.0005\n"
           "a 1 1.7040672001e9\n"
           "a 1 17040672001234E-4\n"
           "a 1 +12.\n"
           "a 1 .5\n"
           "a 1 9223372036854775.807\n"
           "a 1 -9223372036854775.807\n"
           "a 1 0.000000000000000000000000001234e27\n"
           "a 1 1.2345678901234567890123e3\n"
           "a 1 9223372036854775.808\n"
           "# EOF\n",
           "S 1 a{} 1 @1704067200123\n"
           "S 2 a{} 1 @1704067200000\n"
           "S 3 a{} 1 @1704067200100\n"
           "S 4 a{} 1 @1704067200123\n"
           "S 5 a{} 1 @1704067200000\n"
           "S 6 a{} 1 @1\n"
           "S 7 a{} 1 @0\n"
           "S 8 a{} 1 @-1500\n"
           "S 9 a{} 1 @0\n"
           "S 10 a{} 1 @1704067200100\n"
           "S 11 a{} 1 @1704067200123\n"
           "S 12 a{} 1 @12000\n"
           "S 13 a{} 1 @500\n"
           "S 14 a{} 1 @9223372036854775807\n"
           "S 15 a{} 1 @-9223372036854775807\n"
           "S 16 a{} 1 @1234\n"
           "S 17 a{} 1 @1234567\n"
           "E 18:5 timestamp is out of range\n",
           TSDB_OK);
}

static void test_expfmt_text_timestamps(void **state)
{
    (void)state;
    expect(EXPFMT_TEXT,
           "a 1 9223372036854775807\n"
           "a 1 -9223372036854775808\n"
           "a 1 +7\n"
           "a 1 0\n"
           "a 1 -9223372036854775809\n",
           "S 1 a{} 1 @9223372036854775807\n"
           "S 2 a{} 1 @-9223372036854775808\n"
           "S 3 a{} 1 @7\n"
           "S 4 a{} 1 @0\n"
           "E 5:5 timestamp is out of range\n",
           TSDB_OK);
}

static void test_expfmt_special_values(void **state)
{
    (void)state;
    expect(EXPFMT_TEXT,
           "a NaN\na nan\na NAN\na +Inf\na -Inf\na Inf\na inf\n"
           "a +infinity\na -Infinity\na -0\na 0\na 1e3\na 1E-3\na -2.5e+2\n"
           "a 4.9e-324\na 1.7976931348623157e308\na 123456789012345678901\n"
           "a 0.1\na 000123.4500\n",
           "S 1 a{} nan\nS 2 a{} nan\nS 3 a{} nan\nS 4 a{} inf\n"
           "S 5 a{} -inf\nS 6 a{} inf\nS 7 a{} inf\nS 8 a{} inf\n"
           "S 9 a{} -inf\nS 10 a{} -0\nS 11 a{} 0\nS 12 a{} 1000\n"
           "S 13 a{} 0.001\nS 14 a{} -250\n"
           "S 15 a{} 4.9406564584124654e-324\n"
           "S 16 a{} 1.7976931348623157e+308\n"
           "S 17 a{} 1.2345678901234568e+20\n"
           "S 18 a{} 0.10000000000000001\nS 19 a{} 123.45\n",
           TSDB_OK);
}

/* A value from the parser is the same double strtod gives, bit for bit,
 * over random decimals of every length and exponent. */
static void test_expfmt_values_match_strtod(void **state)
{
    const unsigned seed0 = 20240101;
    unsigned seed = seed0;
    char text[64], line[96];
    struct recorder r = {0};
    struct expfmt_parser p;
    int i, j, nd, pos;
    double want, got;

    (void)state;
    printf("values_match_strtod: seed %u\n", seed0);
    r.log = log_a;
    assert_int_equal(expfmt_parser_init(&p, EXPFMT_TEXT, &callbacks, &r),
                     TSDB_OK);
    for (i = 0; i < 20000; i++) {
        nd = 1 + (int)(rand_r(&seed) % 24);
        pos = (int)(rand_r(&seed) % (unsigned)(nd + 1));
        j = 0;
        if (rand_r(&seed) % 2)
            text[j++] = '-';
        for (int k = 0; k < nd; k++) {
            if (k == pos && k > 0)
                text[j++] = '.';
            text[j++] = (char)('0' + rand_r(&seed) % 10);
        }
        if (rand_r(&seed) % 3 == 0)
            j += sprintf(text + j, "e%d", (int)(rand_r(&seed) % 80) - 40);
        text[j] = '\0';
        want = strtod(text, NULL);

        r.len = 0;
        snprintf(line, sizeof(line), "v %s\n", text);
        assert_int_equal(expfmt_parser_feed(&p, line, strlen(line)), TSDB_OK);
        assert_int_equal(sscanf(log_a, "S %*d v{} %lg", &got), 1);
        if (memcmp(&got, &want, sizeof(got)) != 0)
            fprintf(stderr, "%s: got %a want %a\n", text, got, want);
        assert_memory_equal(&got, &want, sizeof(got));
    }
    assert_int_equal(p.errors, 0);
    expfmt_parser_release(&p);
}

static void test_expfmt_om_eof_rules(void **state)
{
    (void)state;
    /* A final newline after # EOF is optional. */
    expect(EXPFMT_OPENMETRICS, "a 1\n# EOF", "S 1 a{} 1\n", TSDB_OK);
    expect(EXPFMT_OPENMETRICS, "# EOF\n", "", TSDB_OK);

    /* Missing: every sample is still delivered, finish says corrupt. */
    expect(EXPFMT_OPENMETRICS, "a 1\nb 2\n",
           "S 1 a{} 1\nS 2 b{} 2\n"
           "E 3:1 missing # EOF at the end of input\n",
           TSDB_ECORRUPT);
    expect(EXPFMT_OPENMETRICS, "", "E 1:1 missing # EOF at the end of input\n",
           TSDB_ECORRUPT);

    /* Anything after it is one error, and the rest is not parsed. */
    expect(EXPFMT_OPENMETRICS, "a 1\n# EOF\nb 2\nbad\n# EOF\n",
           "S 1 a{} 1\nE 3:1 data after # EOF\n", TSDB_OK);
    expect(EXPFMT_OPENMETRICS, "# EOF\n\n", "E 2:1 data after # EOF\n",
           TSDB_OK);
    expect(EXPFMT_OPENMETRICS, "# EOF\nx", "E 2:1 data after # EOF\n", TSDB_OK);

    /* In the text format it is an ordinary comment. */
    expect(EXPFMT_TEXT, "# EOF\na 1\n", "S 2 a{} 1\n", TSDB_OK);
}

static void test_expfmt_om_exemplars(void **state)
{
    (void)state;
    expect(EXPFMT_OPENMETRICS,
           "foo_bucket{le=\"0.5\"} 3 # {trace_id=\"KOO5S4vxi0o\"} 0.67\n"
           "foo_bucket{le=\"1\"} 4 1520879607.789 # {a=\"b\",c=\"\xc3\xa9\"} "
           "0.9 1520879607.7\n"
           "foo_bucket{le=\"+Inf\"} 5 # {} 2 1\n"
           "foo_total 7 # {id=\"x\\\"y\"} NaN\n"
           "# EOF\n",
           "S 1 foo_bucket{le=\"0.5\"} 3\n"
           "S 2 foo_bucket{le=\"1\"} 4 @1520879607789\n"
           "S 3 foo_bucket{le=\"+Inf\"} 5\n"
           "S 4 foo_total{} 7\n",
           TSDB_OK);
    /* Exemplars do not exist in the text format. */
    expect(EXPFMT_TEXT, "a 1 # {a=\"b\"} 1\n",
           "E 1:5 timestamp is not an integer\n", TSDB_OK);
}

static void test_expfmt_om_metadata(void **state)
{
    (void)state;
    expect(EXPFMT_OPENMETRICS,
           "# TYPE a counter\n# TYPE b gauge\n# TYPE c histogram\n"
           "# TYPE d gaugehistogram\n# TYPE e stateset\n# TYPE f info\n"
           "# TYPE g summary\n# TYPE h unknown\n"
           "# UNIT h_seconds seconds\n# UNIT i\n# HELP j\n# HELP k \n"
           "# EOF\n",
           "M 1 TYPE a [counter]\nM 2 TYPE b [gauge]\n"
           "M 3 TYPE c [histogram]\nM 4 TYPE d [gaugehistogram]\n"
           "M 5 TYPE e [stateset]\nM 6 TYPE f [info]\nM 7 TYPE g [summary]\n"
           "M 8 TYPE h [unknown]\nM 9 UNIT h_seconds [seconds]\n"
           "M 10 UNIT i []\nM 11 HELP j []\nM 12 HELP k []\n",
           TSDB_OK);
    /* Text: five types; UNIT and unknown words are comments. */
    expect(EXPFMT_TEXT,
           "# TYPE a counter\n# TYPE b gauge \n#TYPE c histogram\n"
           "#  TYPE d summary\n# TYPE e untyped\n# UNIT e seconds\n"
           "# HELPER x\n# TYPE\tf\tgauge\n",
           "M 1 TYPE a [counter]\nM 2 TYPE b [gauge]\n"
           "M 3 TYPE c [histogram]\nM 4 TYPE d [summary]\n"
           "M 5 TYPE e [untyped]\nM 8 TYPE f [gauge]\n",
           TSDB_OK);
}

static void test_expfmt_om_suffix_names(void **state)
{
    (void)state;
    /* OpenMetrics sample names keep their suffix: they are the series. */
    expect(EXPFMT_OPENMETRICS,
           "# TYPE req counter\nreq_total 5 10\nreq_created 1.5 10\n"
           "# TYPE lat histogram\nlat_bucket{le=\"+Inf\"} 2 10\n"
           "lat_count 2 10\nlat_sum 0.25 10\n# EOF\n",
           "M 1 TYPE req [counter]\nS 2 req_total{} 5 @10000\n"
           "S 3 req_created{} 1.5 @10000\nM 4 TYPE lat [histogram]\n"
           "S 5 lat_bucket{le=\"+Inf\"} 2 @10000\nS 6 lat_count{} 2 @10000\n"
           "S 7 lat_sum{} 0.25 @10000\n",
           TSDB_OK);
}

/* Builds a mixed input of good, bad, escaped, multi-byte and long lines. */
static size_t split_corpus(char *out, size_t cap, enum expfmt_format fmt)
{
    size_t n = 0;
    int i;

    for (i = 0; i < 400; i++) {
        n += (size_t)snprintf(
            out + n, cap - n,
            "# HELP m%d help \\\\ \\n x\n# TYPE m%d gauge\n"
            "m%d{a=\"v\\\\%d\",b=\"\\\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"
            "\\n\",c=\"%0*d\"} %d.%d %s\n"
            "bad%d{a=\"x} 1\n",
            i, i, i, i, i % 300, i, i, i, fmt == EXPFMT_TEXT ? "1000" : "1.5",
            i);
        assert_true(n < cap);
    }
    if (fmt == EXPFMT_OPENMETRICS)
        n += (size_t)snprintf(out + n, cap - n, "# EOF\n");
    return n;
}

/* Any split of the input gives the same log as one feed. */
static void test_expfmt_splits_identical(void **state)
{
    static char in[1 << 20];
    const long seeds[] = {-1, -42, -20240101};
    enum expfmt_format fmt;
    char counts_a[128], counts_b[128];
    size_t n, i;
    int rc_a, rc_b;

    (void)state;
    for (fmt = EXPFMT_TEXT; fmt <= EXPFMT_OPENMETRICS; fmt++) {
        n = split_corpus(in, sizeof(in), fmt);
        rc_a = record(fmt, in, n, 0, log_a, counts_a);
        assert_int_equal(rc_a, TSDB_OK);
        assert_string_equal(counts_a, fmt == EXPFMT_TEXT ? "1600/400/800/400"
                                                         : "1601/400/800/400");
        rc_b = record(fmt, in, n, 1, log_b, counts_b);
        assert_int_equal(rc_b, rc_a);
        assert_string_equal(counts_b, counts_a);
        assert_string_equal(log_b, log_a);
        for (i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
            printf("splits_identical: format %d seed %ld\n", (int)fmt,
                   -seeds[i]);
            rc_b = record(fmt, in, n, seeds[i], log_b, counts_b);
            assert_int_equal(rc_b, rc_a);
            assert_string_equal(counts_b, counts_a);
            assert_string_equal(log_b, log_a);
        }
    }
}

/* Lines up to EXPFMT_MAX_LINE are parsed, longer ones are one error each
 * and skipped, however the input is split. */
static void test_expfmt_long_lines(void **state)
{
    static char in[5 * EXPFMT_MAX_LINE];
    static char want[3 * EXPFMT_MAX_LINE];
    const long steps[] = {0, 1, 7, 4096, EXPFMT_MAX_LINE, -5};
    size_t n = 0, fill, i;
    int rc;

    (void)state;
    /* Exactly the limit: "m{a=\"" + fill + "\"} 1" is EXPFMT_MAX_LINE. */
    fill = EXPFMT_MAX_LINE - strlen("m{a=\"\"} 1");
    n += (size_t)sprintf(in + n, "m{a=\"");
    memset(in + n, 'x', fill);
    n += fill;
    n += (size_t)sprintf(in + n, "\"} 1\nok 1\n");
    /* One byte over, then far over and unterminated at the end. */
    n += (size_t)sprintf(in + n, "m{a=\"");
    memset(in + n, 'y', fill + 1);
    n += fill + 1;
    n += (size_t)sprintf(in + n, "\"} 1\nok 2\n");
    memset(in + n, 'z', 2 * EXPFMT_MAX_LINE);
    n += 2 * EXPFMT_MAX_LINE;

    i = (size_t)sprintf(want, "S 1 m{a=\"");
    memset(want + i, 'x', fill);
    i += fill;
    sprintf(want + i,
            "\"} 1\nS 2 ok{} 1\n"
            "E 3:%d line is longer than %d bytes\n"
            "S 4 ok{} 2\n"
            "E 5:%d line is longer than %d bytes\n",
            EXPFMT_MAX_LINE + 1, EXPFMT_MAX_LINE, EXPFMT_MAX_LINE + 1,
            EXPFMT_MAX_LINE);
    for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        rc = record(EXPFMT_TEXT, in, n, steps[i], log_a, NULL);
        assert_int_equal(rc, TSDB_OK);
        assert_string_equal(log_a, want);
    }
}

static int stop_cb(void *ctx, struct expfmt_sample *s)
{
    int *count = ctx;

    (void)s;
    return ++*count == 2 ? TSDB_ENOMEM : TSDB_OK;
}

/* A callback's error stops the parser for good. */
static void test_expfmt_callback_stop(void **state)
{
    const struct expfmt_callbacks cb = {stop_cb, NULL, NULL};
    const char *in = "a 1\nb 2\nc 3\n";
    struct expfmt_parser p;
    int count = 0;

    (void)state;
    assert_int_equal(expfmt_parser_init(&p, EXPFMT_TEXT, &cb, &count), TSDB_OK);
    assert_int_equal(expfmt_parser_feed(&p, in, strlen(in)), TSDB_ENOMEM);
    assert_int_equal(count, 2);
    assert_int_equal(expfmt_parser_feed(&p, "d 4\n", 4), TSDB_ENOMEM);
    assert_int_equal(expfmt_parser_finish(&p), TSDB_ENOMEM);
    assert_int_equal(count, 2);
    expfmt_parser_release(&p);
}

static void test_expfmt_lifecycle(void **state)
{
    struct expfmt_parser p;

    (void)state;
    assert_int_equal(expfmt_parser_init(&p, (enum expfmt_format)7, NULL, NULL),
                     TSDB_EINVAL);
    expfmt_parser_release(&p);
    /* No callbacks at all: only the counters move. */
    assert_int_equal(expfmt_parser_init(&p, EXPFMT_TEXT, NULL, NULL), TSDB_OK);
    assert_int_equal(expfmt_parser_feed(&p, "a 1\nb\nc 2", 9), TSDB_OK);
    assert_int_equal(expfmt_parser_finish(&p), TSDB_OK);
    assert_int_equal(p.samples, 2);
    assert_int_equal(p.errors, 1);
    assert_int_equal(expfmt_parser_feed(&p, "a 1\n", 4), TSDB_EINVAL);
    assert_int_equal(expfmt_parser_finish(&p), TSDB_EINVAL);
    expfmt_parser_release(&p);
    expfmt_parser_release(&p);
}

/* Names cached from earlier lines never leak into a line that differs:
 * longer, shorter, swapped, or a prefix of the cached one. */
static void test_expfmt_name_cache(void **state)
{
    (void)state;
    expect(EXPFMT_TEXT,
           "up{a=\"1\",b=\"2\"} 1\n"
           "up{b=\"1\",a=\"2\"} 1\n"
           "up{ab=\"1\",b_=\"2\"} 1\n"
           "up{a=\"1\"} 1\n"
           "upx{a=\"1\"} 1\n"
           "u{a1=\"1\"} 1\n"
           "up:x 1\n"
           "up 1\n",
           "S 1 up{a=\"1\",b=\"2\"} 1\n"
           "S 2 up{b=\"1\",a=\"2\"} 1\n"
           "S 3 up{ab=\"1\",b_=\"2\"} 1\n"
           "S 4 up{a=\"1\"} 1\n"
           "S 5 upx{a=\"1\"} 1\n"
           "S 6 u{a1=\"1\"} 1\n"
           "S 7 up:x{} 1\n"
           "S 8 up{} 1\n",
           TSDB_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_expfmt_text_basic),
        cmocka_unit_test(test_expfmt_counts),
        cmocka_unit_test(test_expfmt_label_escapes),
        cmocka_unit_test(test_expfmt_help_escapes),
        cmocka_unit_test(test_expfmt_text_field_errors),
        cmocka_unit_test(test_expfmt_om_field_errors),
        cmocka_unit_test(test_expfmt_nul_bytes),
        cmocka_unit_test(test_expfmt_too_many_labels),
        cmocka_unit_test(test_expfmt_utf8_values),
        cmocka_unit_test(test_expfmt_om_timestamps),
        cmocka_unit_test(test_expfmt_text_timestamps),
        cmocka_unit_test(test_expfmt_special_values),
        cmocka_unit_test(test_expfmt_values_match_strtod),
        cmocka_unit_test(test_expfmt_om_eof_rules),
        cmocka_unit_test(test_expfmt_om_exemplars),
        cmocka_unit_test(test_expfmt_om_metadata),
        cmocka_unit_test(test_expfmt_om_suffix_names),
        cmocka_unit_test(test_expfmt_splits_identical),
        cmocka_unit_test(test_expfmt_long_lines),
        cmocka_unit_test(test_expfmt_callback_stop),
        cmocka_unit_test(test_expfmt_lifecycle),
        cmocka_unit_test(test_expfmt_name_cache),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
