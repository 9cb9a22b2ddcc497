/*
 * Tests for http/import.c against a real database in a scratch folder:
 * bodies cut at random places (fixed, printed seed), bad lines kept out
 * with their line and column while the valid ones are stored, commits
 * every batch, arrival time for samples without one, OpenMetrics' EOF
 * rules, series limits named in the errors, the cap on error details, and
 * re-imports counted as duplicates.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "http/import.h"
#include "testutil.h"

struct fixture {
    char *dir;
    struct tsdb *db;
};

static int setup_limited(void **state, size_t max_series)
{
    struct fixture *f = calloc(1, sizeof(*f));
    struct tsdb_options o;

    f->dir = test_tmpdir("import");
    tsdb_options_init(&o);
    o.dir = f->dir;
    o.max_series = max_series;
    assert_int_equal(tsdb_open(&o, &f->db), TSDB_OK);
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return setup_limited(state, 1000);
}

static int setup_two_series(void **state)
{
    return setup_limited(state, 2);
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(tsdb_close(f->db), TSDB_OK);
    test_rmdir(f->dir);
    free(f);
    return 0;
}

/* Feeds body in pieces of random size (1..max_piece). */
static void feed_cut(struct http_import *im, const char *body,
                     struct test_rng *rng, size_t max_piece)
{
    size_t len = strlen(body), off = 0;

    while (off < len) {
        size_t n = 1 + (size_t)test_rng_below(rng, max_piece);
        if (n > len - off)
            n = len - off;
        assert_int_equal(http_import_feed(im, body + off, n), TSDB_OK);
        off += n;
    }
}

/* Runs a whole import; returns it for inspection (free it). */
static struct http_import *import(struct tsdb *db, enum expfmt_format fmt,
                                  const char *body, size_t batch)
{
    struct http_import *im = http_import_new(db, fmt, 777000, batch);

    assert_non_null(im);
    assert_int_equal(http_import_feed(im, body, strlen(body)), TSDB_OK);
    assert_int_equal(http_import_finish(im), TSDB_OK);
    return im;
}

static char *json(const struct http_import *im)
{
    static char text[64 * 1024];
    struct http_buf b;

    http_buf_init(&b, sizeof(text) - 1);
    http_import_json(im, &b);
    assert_int_equal(b.err, TSDB_OK);
    memcpy(text, b.p, b.len + 1);
    http_buf_release(&b);
    return text;
}

/* Reads every stored sample of the series selector name=value as
 * "t:v," text. */
static void stored(struct tsdb *db, const char *name, const char *value,
                   char *out, size_t cap)
{
    struct tsdb_matcher m;
    struct tsdb_query *q;
    const struct tsdb_labels *ls;
    char err[128];
    size_t len = 0;

    out[0] = '\0';
    assert_int_equal(
        tsdb_matcher_init(&m, TSDB_MATCH_EQ, name, value, err, sizeof(err)),
        TSDB_OK);
    assert_int_equal(tsdb_query_open(db, &m, 1, INT64_MIN, INT64_MAX, &q),
                     TSDB_OK);
    while (tsdb_query_next_series(q, &ls, NULL) == TSDB_OK) {
        const int64_t *ts;
        const double *vs;
        size_t n;

        while (tsdb_query_next_batch(q, &ts, &vs, &n) == TSDB_OK && n > 0)
            for (size_t i = 0; i < n; i++)
                len += (size_t)snprintf(out + len, cap - len, "%lld:%.17g,",
                                        (long long)ts[i], vs[i]);
    }
    tsdb_query_close(q);
    tsdb_matcher_release(&m);
}

static void test_import_text_cut_anywhere(void **state)
{
    struct fixture *f = *state;
    const char *body = "# HELP req Requests.\n"
                       "# TYPE req counter\n"
                       "req{code=\"200\",path=\"/a\"} 1 1000\n"
                       "req{code=\"200\",path=\"/a\"} 2.5 2000\n"
                       "req{code=\"500\",path=\"/a\"} -Inf 1000\n"
                       "\n"
                       "temp 21.5\n";
    struct test_rng rng;
    struct http_import *im;
    char got[512];

    test_rng_init(&rng, "test_import_text_cut_anywhere", 7);
    im = http_import_new(f->db, EXPFMT_TEXT, 777000, 2);
    feed_cut(im, body, &rng, 9);
    assert_int_equal(http_import_finish(im), TSDB_OK);
    assert_int_equal(http_import_counts(im)->written, 4);
    assert_int_equal(http_import_rejected(im), 0);
    assert_string_equal(json(im),
                        "{\"format\":\"prometheus\",\"lines\":7,\"samples\":4,"
                        "\"accepted\":4,\"duplicates\":0,\"rejected\":0,"
                        "\"rejectedByReason\":{\"parse_error\":0,"
                        "\"invalid_series\":0,\"limit\":0,\"out_of_order\":0,"
                        "\"duplicate_conflict\":0,\"out_of_bounds\":0},"
                        "\"errors\":[],\"errorsNotShown\":0}");
    http_import_free(im);

    stored(f->db, "code", "200", got, sizeof(got));
    assert_string_equal(got, "1000:1,2000:2.5,");
    stored(f->db, "code", "500", got, sizeof(got));
    assert_string_equal(got, "1000:-inf,");

    /* No timestamp: the request's arrival time. */
    stored(f->db, "__name__", "temp", got, sizeof(got));
    assert_string_equal(got, "777000:21.5,");
}

static void test_import_keeps_valid_lines_around_bad_ones(void **state)
{
    struct fixture *f = *state;
    const char *body = "a{x=\"1\"} 1 1000\n"
                       "a{x=\"1\" 2 2000\n"
                       "a{x=\"1\"} 3 3000\n"
                       "b{x=\"1\",x=\"2\"} 1 1000\n"
                       "a{x=\"1\"} 4 2500\n"
                       "a{x=\"1\"} notanumber 4000\n"
                       "a{x=\"1\"} 5 5000\n";
    struct http_import *im = import(f->db, EXPFMT_TEXT, body, 1000);
    const struct http_ingest_counts *c = http_import_counts(im);
    char got[512], summary[512];

    assert_int_equal(c->written, 3);
    assert_int_equal(c->lines, 7);
    assert_int_equal(c->lines_rejected[HTTP_REJ_PARSE], 2);
    assert_int_equal(c->lines_rejected[HTTP_REJ_INVALID_SERIES], 1);
    assert_int_equal(c->samples_rejected[HTTP_REJ_INVALID_SERIES], 1);
    assert_int_equal(c->samples_rejected[HTTP_REJ_OUT_OF_ORDER], 1);
    assert_int_equal(http_import_rejected(im), 4);
    assert_non_null(strstr(json(im), "\"errors\":[{\"line\":2,\"column\":9,"
                                     "\"reason\":\"parse_error\",\"error\":"));
    assert_non_null(strstr(json(im), "{\"line\":4,\"column\":0,\"reason\":"
                                     "\"invalid_series\",\"error\":"
                                     "\"duplicate label name \\\"x\\\""));
    assert_non_null(strstr(json(im), "{\"line\":6,\"column\":10,"
                                     "\"reason\":\"parse_error\""));
    assert_non_null(strstr(json(im), "{\"line\":1,\"column\":0,\"reason\":"
                                     "\"out_of_order\",\"error\":\"1 samples "
                                     "in lines 1-7 are older than the "
                                     "newest sample of their series\"}"));
    http_import_summary(im, summary, sizeof(summary));
    assert_non_null(strstr(summary, "3 samples accepted"));
    assert_non_null(strstr(summary, "parse_error=2"));
    http_import_free(im);

    stored(f->db, "x", "1", got, sizeof(got));
    assert_string_equal(got, "1000:1,3000:3,5000:5,");
}

static void test_import_commits_every_batch(void **state)
{
    struct fixture *f = *state;
    struct http_import *im = http_import_new(f->db, EXPFMT_TEXT, 0, 3);
    const char *part1 = "c 1 1\nc 2 2\nc 3 3\nc 4 4\n";
    char got[256];

    assert_int_equal(http_import_feed(im, part1, strlen(part1)), TSDB_OK);

    /* Three samples are committed, the fourth is still pending. */
    stored(f->db, "__name__", "c", got, sizeof(got));
    assert_string_equal(got, "1:1,2:2,3:3,");
    assert_int_equal(http_import_counts(im)->written, 3);

    /* Dropping the body part way keeps what was committed. */
    http_import_abort(im);
    http_import_free(im);
    stored(f->db, "__name__", "c", got, sizeof(got));
    assert_string_equal(got, "1:1,2:2,3:3,");
}

static void test_import_openmetrics_eof_rules(void **state)
{
    struct fixture *f = *state;
    struct http_import *im;
    char got[256];

    /* Seconds with a fraction; a clean end. */
    im = import(f->db, EXPFMT_OPENMETRICS,
                "# TYPE om gauge\nom 1.5 1704067200.123\n# EOF\n", 10);
    assert_int_equal(http_import_rejected(im), 0);
    http_import_free(im);
    stored(f->db, "__name__", "om", got, sizeof(got));
    assert_string_equal(got, "1704067200123:1.5,");

    /* No "# EOF": an error after the last line, the samples kept. */
    im = import(f->db, EXPFMT_OPENMETRICS, "om 2 1704067201\n", 10);
    assert_int_equal(http_import_counts(im)->written, 1);
    assert_int_equal(http_import_counts(im)->lines_rejected[HTTP_REJ_PARSE], 1);
    assert_non_null(strstr(json(im), "{\"line\":2,\"column\":1,\"reason\":"
                                     "\"parse_error\",\"error\":\"missing # "
                                     "EOF at the end of input\"}"));
    http_import_free(im);

    /* Data after "# EOF" is refused. */
    im = import(f->db, EXPFMT_OPENMETRICS,
                "om 3 1704067202\n# EOF\nom 4 1704067203\n", 10);
    assert_int_equal(http_import_counts(im)->written, 1);
    assert_non_null(strstr(json(im), "{\"line\":3,\"column\":1,\"reason\":"
                                     "\"parse_error\",\"error\":\"data after "
                                     "# EOF\"}"));
    http_import_free(im);
    stored(f->db, "__name__", "om", got, sizeof(got));
    assert_string_equal(got,
                        "1704067200123:1.5,1704067201000:2,1704067202000:3,");
}

static void test_import_reimport_is_duplicates(void **state)
{
    struct fixture *f = *state;
    const char *body = "d{k=\"v\"} 1 1000\nd{k=\"v\"} NaN 2000\n"
                       "e 5 3000\n";
    struct http_import *im = import(f->db, EXPFMT_TEXT, body, 1);

    http_import_free(im);

    /* The storage knows each series' newest sample: sending it again is
     * a counted no-op, an older one is out of order (README, "Limits"). */
    im = import(f->db, EXPFMT_TEXT, body, 1);
    assert_int_equal(http_import_counts(im)->written, 0);
    assert_int_equal(http_import_counts(im)->duplicates, 2);
    assert_int_equal(
        http_import_counts(im)->samples_rejected[HTTP_REJ_OUT_OF_ORDER], 1);
    http_import_free(im);

    im = import(f->db, EXPFMT_TEXT, "d{k=\"v\"} 7 2000\n", 1);
    assert_int_equal(
        http_import_counts(im)->samples_rejected[HTTP_REJ_CONFLICT], 1);
    assert_non_null(strstr(json(im), "at a stored timestamp with a "
                                     "different value"));
    http_import_free(im);
}

static void test_import_names_the_series_past_a_limit(void **state)
{
    struct fixture *f = *state;
    const char *body = "s{n=\"1\"} 1 1\n"
                       "s{n=\"2\"} 1 1\n"
                       "s{n=\"3\"} 1 1\n"
                       "s{n=\"3\"} 2 2\n"
                       "s{n=\"1\"} 2 2\n";
    struct http_import *im = import(f->db, EXPFMT_TEXT, body, 100);
    const struct http_ingest_counts *c = http_import_counts(im);

    assert_int_equal(c->written, 3);
    assert_int_equal(c->samples_rejected[HTTP_REJ_LIMIT], 2);
    assert_int_equal(c->lines_rejected[HTTP_REJ_LIMIT], 2);
    assert_non_null(strstr(json(im), "{\"line\":3,\"column\":0,\"reason\":"
                                     "\"limit\",\"error\":\"series limit of "
                                     "2 reached"));
    assert_non_null(strstr(json(im), "s{n=\\\"3\\\"}"));
    assert_non_null(strstr(json(im), "{\"line\":4,"));
    http_import_free(im);
}

static void test_import_caps_error_details(void **state)
{
    struct fixture *f = *state;
    struct http_buf body;
    struct http_import *im;

    http_buf_init(&body, 1 << 20);
    for (int i = 0; i < 250; i++)
        http_buf_printf(&body, "bad{ %d\ngood %d %d\n", i, i, i + 1);
    im = import(f->db, EXPFMT_TEXT, body.p, 64);
    assert_int_equal(http_import_counts(im)->written, 250);
    assert_int_equal(http_import_rejected(im), 250);
    assert_non_null(strstr(json(im), "\"errorsNotShown\":150}"));
    assert_non_null(strstr(json(im), "{\"line\":199,"));
    assert_null(strstr(json(im), "{\"line\":201,"));
    http_import_free(im);
    http_buf_release(&body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_import_text_cut_anywhere, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_import_keeps_valid_lines_around_bad_ones, setup, teardown),
        cmocka_unit_test_setup_teardown(test_import_commits_every_batch, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_import_openmetrics_eof_rules,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_import_reimport_is_duplicates,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_import_names_the_series_past_a_limit, setup_two_series,
            teardown),
        cmocka_unit_test_setup_teardown(test_import_caps_error_details, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
