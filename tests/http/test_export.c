/*
 * Tests for http/export.c against a real database: the stream parses back
 * (through expfmt.h, as the import reads it) to exactly the stored samples
 * whatever the read size, special values and label escapes included;
 * stale markers are left out and counted; families are grouped by name;
 * several selectors give each series once; the time range is honoured.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "http/expfmt.h"
#include "http/export.h"
#include "testutil.h"

#define STALE  UINT64_C(0x7ff0000000000002)
#define NSAMP  2000
#define OUTMAX (4u << 20)

struct fixture {
    char *dir;
    struct tsdb *db;
};

static double from_bits(uint64_t b)
{
    double v;

    memcpy(&v, &b, sizeof(v));
    return v;
}

static uint64_t to_bits(double v)
{
    uint64_t b;

    memcpy(&b, &v, sizeof(b));
    return b;
}

/* The value of series s at sample i; a mix that stresses the format. */
static double value_at(int s, int i)
{
    static const uint64_t specials[] = {
        UINT64_C(0x8000000000000000), /* -0 */
        UINT64_C(0x7ff0000000000000), /* +Inf */
        UINT64_C(0xfff0000000000000), /* -Inf */
        UINT64_C(0x7ff8000000000000), /* NaN */
        UINT64_C(0x7ff8000000000123), /* NaN with a payload */
        STALE,
        UINT64_C(0x0000000000000001), /* smallest denormal */
        UINT64_C(0x7fefffffffffffff), /* largest finite */
    };

    if (i % 97 == 5)
        return from_bits(specials[(i / 97 + s) % 8]);
    return (double)i * 0.1 + s;
}

static void add_series(struct tsdb_appender *a, struct tsdb_label *l, size_t n,
                       int s)
{
    uint64_t ref;
    char err[256];

    assert_int_equal(tsdb_appender_series(a, l, n, &ref, err, sizeof(err)),
                     TSDB_OK);
    for (int i = 0; i < NSAMP; i++)
        assert_int_equal(
            tsdb_appender_add(a, ref, 1704067200000 + i * 1001, value_at(s, i)),
            TSDB_OK);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    struct tsdb_options o;
    struct tsdb_appender *a;
    struct tsdb_label s0[] = {{"__name__", "m1"}, {"a", "x\\y"}};
    struct tsdb_label s1[] = {
        {"__name__", "m1"}, {"a", "q\"uote\nnl"}, {"b", "\xc3\xa9"}};
    struct tsdb_label s2[] = {{"__name__", "m0"}};
    struct tsdb_label s3[] = {{"__name__", "z"}, {"k", "v"}};

    f->dir = test_tmpdir("export");
    tsdb_options_init(&o);
    o.dir = f->dir;
    o.chunk_samples = 120; /* stored chunks and head chunks both read */
    assert_int_equal(tsdb_open(&o, &f->db), TSDB_OK);
    a = tsdb_appender_new(f->db);
    add_series(a, s0, 2, 0);
    add_series(a, s1, 3, 1);
    add_series(a, s2, 1, 2);
    add_series(a, s3, 2, 3);
    assert_int_equal(tsdb_appender_commit(a, NULL), TSDB_OK);
    tsdb_appender_free(a);
    assert_int_equal(tsdb_flush(f->db), TSDB_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(tsdb_close(f->db), TSDB_OK);
    test_rmdir(f->dir);
    free(f);
    return 0;
}

/* Runs an export of the given selectors, reading cap bytes at a time. */
static int run(struct tsdb *db, const char **sel, size_t nsel, int64_t mint,
               int64_t maxt, size_t cap, char *out, size_t *len,
               uint64_t counts[3])
{
    struct http_selector *sels = calloc(nsel, sizeof(*sels));
    struct http_export *e;
    char err[256], *piece = malloc(cap);
    size_t n;
    int rc;

    for (size_t i = 0; i < nsel; i++)
        assert_int_equal(
            http_selector_parse(sel[i], &sels[i], err, sizeof(err)), TSDB_OK);
    rc = http_export_new(db, sels, nsel, mint, maxt, &e);
    if (rc != TSDB_OK) {
        free(piece);
        return rc;
    }
    *len = 0;
    do {
        assert_int_equal(http_export_read(e, piece, cap, &n), TSDB_OK);
        assert_true(n <= cap);
        assert_true(*len + n < OUTMAX);
        memcpy(out + *len, piece, n);
        *len += n;
    } while (n > 0);
    out[*len] = '\0';
    http_export_counts(e, &counts[0], &counts[1], &counts[2]);
    http_export_free(e);
    free(piece);
    return TSDB_OK;
}

/* Parsed samples of an export, checked against value_at as they come. */
struct check {
    size_t seen;
    int64_t mint, maxt;
    int errors;
};

static int series_index(const struct expfmt_sample *s)
{
    if (strcmp(s->name, "m0") == 0)
        return 2;
    if (strcmp(s->name, "z") == 0)
        return 3;
    for (size_t i = 1; i < s->nlabels; i++)
        if (strcmp(s->labels[i].name, "a") == 0)
            return strcmp(s->labels[i].value, "x\\y") == 0 ? 0 : 1;
    return -1;
}

static int on_sample(void *ctx, struct expfmt_sample *s)
{
    struct check *c = ctx;
    int series = series_index(s);
    int64_t i = (s->timestamp_ms - 1704067200000) / 1001;
    double want = value_at(series, (int)i);

    assert_true(series >= 0);
    assert_true(s->has_timestamp);
    assert_int_equal((s->timestamp_ms - 1704067200000) % 1001, 0);
    assert_true(s->timestamp_ms >= c->mint && s->timestamp_ms <= c->maxt);
    assert_int_not_equal(to_bits(want), STALE);
    if (isnan(want))
        assert_true(isnan(s->value));
    else
        assert_int_equal(to_bits(s->value), to_bits(want));
    if (series == 1) {
        assert_string_equal(s->labels[1].value, "q\"uote\nnl");
        assert_string_equal(s->labels[2].value, "\xc3\xa9");
    }
    c->seen++;
    return TSDB_OK;
}

static int on_error(void *ctx, const struct expfmt_error *e)
{
    struct check *c = ctx;

    print_error("line %llu col %u: %s\n", (unsigned long long)e->line,
                e->column, e->msg);
    c->errors++;
    return TSDB_OK;
}

static size_t parse_back(const char *text, size_t len, int64_t mint,
                         int64_t maxt)
{
    struct expfmt_callbacks cb = {on_sample, NULL, on_error};
    struct expfmt_parser p;
    struct check c = {0, mint, maxt, 0};

    assert_int_equal(expfmt_parser_init(&p, EXPFMT_OPENMETRICS, &cb, &c),
                     TSDB_OK);
    assert_int_equal(expfmt_parser_feed(&p, text, len), TSDB_OK);
    assert_int_equal(expfmt_parser_finish(&p), TSDB_OK);
    expfmt_parser_release(&p);
    assert_int_equal(c.errors, 0);
    return c.seen;
}

/* Samples of one series that are not stale markers, in [lo, hi] of i. */
static size_t expected(int series, int lo, int hi)
{
    size_t n = 0;

    for (int i = lo; i <= hi; i++)
        n += to_bits(value_at(series, i)) != STALE;
    return n;
}

static void test_export_round_trips_exactly(void **state)
{
    struct fixture *f = *state;
    const char *all[] = {"{__name__=~\".+\"}"};
    char *big = malloc(OUTMAX), *small = malloc(OUTMAX);
    uint64_t counts[3];
    size_t blen, slen, want = 0;

    for (int s = 0; s < 4; s++)
        want += expected(s, 0, NSAMP - 1);
    assert_int_equal(
        run(f->db, all, 1, INT64_MIN, INT64_MAX, 1 << 20, big, &blen, counts),
        TSDB_OK);
    assert_int_equal(counts[0], 4);
    assert_int_equal(counts[1], want);
    assert_int_equal(counts[2], 4 * NSAMP - want);
    assert_int_equal(parse_back(big, blen, INT64_MIN, INT64_MAX), want);

    /* Families grouped by name, in byte order, each typed once. */
    assert_memory_equal(big, "# TYPE m0 unknown\nm0 2 1704067200\n", 34);
    assert_non_null(strstr(big, "\n# TYPE m1 unknown\nm1{a=\"q\\\"uote\\nnl\","
                                "b=\"\xc3\xa9\"} 1 1704067200\n"));
    assert_non_null(strstr(big, "\nm1{a=\"x\\\\y\"} 0.1 1704067201.001\n"));
    assert_non_null(strstr(big, "} -0 "));
    assert_non_null(strstr(big, "} +Inf "));
    assert_non_null(strstr(big, "} NaN "));
    assert_non_null(strstr(big, "\n# TYPE z unknown\nz{k=\"v\"} 3 "));
    assert_string_equal(big + blen - 6, "# EOF\n");

    /* The same bytes whatever the reader's piece size. */
    assert_int_equal(
        run(f->db, all, 1, INT64_MIN, INT64_MAX, 7, small, &slen, counts),
        TSDB_OK);
    assert_int_equal(slen, blen);
    assert_memory_equal(small, big, blen);
    free(big);
    free(small);
}

static void test_export_union_and_range(void **state)
{
    struct fixture *f = *state;
    const char *sel[] = {"m1{a=\"x\\\\y\"}", "{__name__=~\"m1|z\"}", "m1",
                         "nothing_here"};
    char *out = malloc(OUTMAX);
    int64_t lo = 1704067200000 + 100 * 1001, hi = 1704067200000 + 299 * 1001;
    uint64_t counts[3];
    size_t len, want;

    want =
        expected(0, 100, 299) + expected(1, 100, 299) + expected(3, 100, 299);
    assert_int_equal(run(f->db, sel, 4, lo, hi, 4096, out, &len, counts),
                     TSDB_OK);
    assert_int_equal(counts[0], 3);
    assert_int_equal(counts[1], want);
    assert_int_equal(parse_back(out, len, lo, hi), want);
    assert_null(strstr(out, "m0"));

    /* Nothing matches: an empty exposition. */
    assert_int_equal(
        run(f->db, sel + 3, 1, INT64_MIN, INT64_MAX, 4096, out, &len, counts),
        TSDB_OK);
    assert_string_equal(out, "# EOF\n");

    /* A range after every sample: names exist, no samples, no families. */
    assert_int_equal(
        run(f->db, sel + 2, 1, hi * 2, hi * 2, 4096, out, &len, counts),
        TSDB_OK);
    assert_string_equal(out, "# EOF\n");
    assert_int_equal(run(f->db, sel, 1, 2, 1, 4096, out, &len, counts),
                     TSDB_EINVAL);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_export_round_trips_exactly, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_export_union_and_range, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
