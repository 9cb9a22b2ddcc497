/*
 * Tests for http/statsd.c: the reason of every rejection message that
 * statsd_ingest really gives (so that a change of wording in statsd/
 * fails here), the answer's JSON, the line counts by source, and the
 * flush thread storing into a real database, counting refused series,
 * and stopping with a last flush.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <string.h>
#include <time.h>

#include "http/statsd.h"
#include "testutil.h"
#include "tsdb/guard.h"

static void has(const char *page, const char *line)
{
    if (!strstr(page, line)) {
        print_error("missing: %s\nin:\n%s\n", line, page);
        fail();
    }
}

static int64_t wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};

    nanosleep(&ts, NULL);
}

/* The reason of rejection i of res, as http_statsd_reason_of reads it. */
static enum http_statsd_reason reason(const struct statsd_result *res, size_t i)
{
    assert_true(i < res->nreasons);
    return http_statsd_reason_of(res->reasons[i].reason);
}

static void test_http_statsd_reasons_of_real_messages(void **state)
{
    char *dir = test_tmpdir("http-statsd-reasons");
    struct statsd_result *res = calloc(1, sizeof(*res));
    struct statsd_options o;
    struct statsd *s;
    const char body[] = "a:1|c\n"       /* 1 ok */
                        "a:1|g\n"       /* 2 type conflict */
                        "b:1|c\n"       /* 3 ok (second series) */
                        "c:1|c\n"       /* 4 series limit */
                        "x:1|q\n"       /* 5 parse */
                        "a:1|c|T100\n"  /* 6 ok: raw */
                        "a:2|c|T101\n"  /* 7 raw bytes limit */
                        "a:1:2|ms:3|c"; /* 8 parse */
    size_t len = 100001 * 6;
    char *many = malloc(len);
    (void)state;

    statsd_options_init(&o);
    o.dir = dir;
    o.agg.max_series = 2;
    o.agg.max_raw_bytes = 30;
    assert_int_equal(statsd_open(&o, NULL, &s), TSDB_OK);
    assert_int_equal(statsd_ingest(s, body, sizeof(body) - 1, 1000, res),
                     TSDB_OK);
    assert_int_equal(res->accepted, 3);
    assert_int_equal(res->rejected, 5);
    assert_int_equal(reason(res, 0), HTTP_STATSD_TYPE_CONFLICT);
    assert_int_equal(reason(res, 1), HTTP_STATSD_LIMIT);
    assert_int_equal(reason(res, 2), HTTP_STATSD_PARSE);
    assert_int_equal(reason(res, 3), HTTP_STATSD_LIMIT);
    assert_int_equal(reason(res, 4), HTTP_STATSD_PARSE);

    /* A set at its member limit, and a body past the lines limit. */
    statsd_close(s);
    test_rmdir(dir);
    dir = test_tmpdir("http-statsd-reasons");
    o.dir = dir;
    o.agg.max_set_members = 1;
    assert_int_equal(statsd_open(&o, NULL, &s), TSDB_OK);
    assert_int_equal(statsd_ingest(s, "s:a|s\ns:b|s\n", 12, 1000, res),
                     TSDB_OK);
    assert_int_equal(res->rejected, 1);
    assert_int_equal(reason(res, 0), HTTP_STATSD_LIMIT);
    for (size_t i = 0; i < 100001; i++)
        memcpy(many + i * 6, "k:1|c\n", 6);
    assert_int_equal(statsd_ingest(s, many, len, 1000, res), TSDB_OK);
    assert_int_equal(res->rejected, 1);
    assert_int_equal(reason(res, 0), HTTP_STATSD_LIMIT);
    statsd_close(s);

    assert_int_equal(http_statsd_reason_of("line 3: out of memory"),
                     HTTP_STATSD_OTHER);
    assert_string_equal(http_statsd_reason_name(HTTP_STATSD_TYPE_CONFLICT),
                        "type_conflict");
    free(many);
    free(res);
    test_rmdir(dir);
}

static void test_http_statsd_json(void **state)
{
    struct statsd_result *res = calloc(1, sizeof(*res));
    struct http_buf b;
    (void)state;

    res->lines = 80;
    res->accepted = 10;
    res->rejected = 70;
    res->nreasons = STATSD_MAX_REJECTS;
    for (size_t i = 0; i < STATSD_MAX_REJECTS; i++) {
        res->reasons[i].line = i + 2;
        snprintf(res->reasons[i].reason, STATSD_MAX_REASON,
                 "line %zu: value '\"' is not a number", i + 2);
    }
    snprintf(res->reasons[1].reason, STATSD_MAX_REASON,
             "line 3: 'a' is a counter (c); this line sends it as |g");
    http_buf_init(&b, 1 << 20);
    http_statsd_json(TSDB_OK, res, &b);
    assert_int_equal(b.err, TSDB_OK);
    has(b.p, "{\"lines\":80,\"accepted\":10,\"rejected\":70,"
             "\"rejectedByReason\":{\"parse_error\":63,\"type_conflict\":1,"
             "\"limit\":0,\"unavailable\":0,\"other\":6},\"errors\":["
             "{\"line\":2,\"reason\":\"parse_error\",\"error\":\"line 2: "
             "value '\\\"' is not a number\"},{\"line\":3,\"reason\":"
             "\"type_conflict\",\"error\":\"line 3: 'a' is a counter (c); "
             "this line sends it as |g\"},");
    has(b.p, "],\"errorsNotShown\":6}");

    /* A refused body: every line is rejected, none itemised. */
    http_buf_reset(&b);
    http_statsd_json(TSDB_EIO, res, &b);
    assert_string_equal(b.p, "{\"lines\":80,\"accepted\":0,\"rejected\":80,"
                             "\"rejectedByReason\":{\"parse_error\":0,"
                             "\"type_conflict\":0,\"limit\":0,"
                             "\"unavailable\":80,\"other\":0},\"errors\":[],"
                             "\"errorsNotShown\":80}");
    http_buf_release(&b);
    free(res);
}

/* A database, StatsD over it, and the service with a short interval. */
struct env {
    char *dir;
    struct tsdb *db;
    struct statsd_tsdb_sink ts;
    struct statsd_sink sink;
    struct statsd *s;
    struct http_statsd *svc;
};

static void env_open(struct env *e, int64_t interval_ms)
{
    struct http_statsd_options ho;
    struct tsdb_options o;
    struct statsd_options so;

    memset(e, 0, sizeof(*e));
    e->dir = test_tmpdir("http-statsd");
    tsdb_options_init(&o);
    o.dir = e->dir;
    assert_int_equal(tsdb_open(&o, &e->db), TSDB_OK);
    assert_int_equal(statsd_tsdb_sink_init(&e->ts, e->db, &e->sink), TSDB_OK);
    statsd_options_init(&so);
    so.dir = e->dir;
    so.flush_interval_ms = interval_ms;
    assert_int_equal(statsd_open(&so, &e->sink, &e->s), TSDB_OK);
    http_statsd_options_init(&ho);
    ho.flush_interval_ms = interval_ms;
    ho.tick_ms = 50;
    assert_int_equal(http_statsd_start(e->s, &e->sink, &e->ts, &ho, &e->svc),
                     TSDB_OK);
}

static void env_close(struct env *e)
{
    http_statsd_free(e->svc);
    statsd_close(e->s);
    statsd_tsdb_sink_release(&e->ts);
    assert_int_equal(tsdb_close(e->db), TSDB_OK);
    test_rmdir(e->dir);
}

/* Waits (up to 5 s) until the service has flushed at least n times. */
static void wait_flushes(struct env *e, uint64_t n)
{
    struct statsd_stats st;

    for (int i = 0; i < 500; i++) {
        statsd_stats_get(e->s, &st);
        if (st.flushes >= n)
            return;
        nap_ms(10);
    }
    fail_msg("no flush after 5 s");
}

/* The newest stored value of the series m (no labels but the name). */
static double newest(struct tsdb *db, const char *m)
{
    const struct tsdb_labels *labels;
    struct tsdb_matcher mt;
    struct tsdb_query *q;
    const int64_t *ts;
    const double *vs;
    double v = -1;
    size_t n;

    assert_int_equal(
        tsdb_matcher_init(&mt, TSDB_MATCH_EQ, "__name__", m, NULL, 0), TSDB_OK);
    assert_int_equal(tsdb_query_open(db, &mt, 1, INT64_MIN, INT64_MAX, &q),
                     TSDB_OK);
    while (tsdb_query_next_series(q, &labels, NULL) == TSDB_OK)
        while (tsdb_query_next_batch(q, &ts, &vs, &n) == TSDB_OK && n > 0)
            v = vs[n - 1];
    tsdb_query_close(q);
    tsdb_matcher_release(&mt);
    return v;
}

static void test_http_statsd_flusher_stores_and_counts(void **state)
{
    const struct tsdb_guard_rule none = {"refused", NULL, 0, TSDB_GUARD_REJECT};
    struct statsd_result *res = calloc(1, sizeof(*res));
    struct http_buf page;
    struct env e;
    int rc;
    (void)state;

    env_open(&e, 100);
    assert_int_equal(tsdb_guard_set(e.db, &none), TSDB_OK);
    rc = statsd_ingest(e.s, "c:2|c\nc:3|c\nrefused:1|g\nbad\n", 28, wall_ms(),
                       res);
    assert_int_equal(rc, TSDB_OK);
    http_statsd_record(e.svc, HTTP_STATSD_HTTP, rc, res);
    http_statsd_on_udp(e.svc, TSDB_EIO, res);
    wait_flushes(&e, 2);
    assert_true(newest(e.db, "c") == 5.0);

    http_buf_init(&page, 1 << 20);
    assert_int_equal(http_statsd_render(e.svc, &page), TSDB_OK);
    has(page.p, "tsdb_statsd_bodies_total{endpoint=\"http\"} 1\n");
    has(page.p, "tsdb_statsd_bodies_total{endpoint=\"udp\"} 1\n");
    has(page.p, "tsdb_statsd_lines_accepted_total{endpoint=\"http\"} 3\n");
    has(page.p, "tsdb_statsd_lines_accepted_total{endpoint=\"udp\"} 0\n");
    has(page.p, "tsdb_statsd_lines_rejected_total{endpoint=\"http\","
                "reason=\"parse_error\"} 1\n");
    has(page.p, "tsdb_statsd_lines_rejected_total{endpoint=\"udp\","
                "reason=\"unavailable\"} 4\n");
    has(page.p, "# TYPE tsdb_statsd_flush_duration_seconds histogram\n");
    has(page.p, "tsdb_statsd_flush_duration_seconds_bucket{le=\"+Inf\"} ");
    has(page.p, "tsdb_statsd_series 2\n");
    has(page.p, "tsdb_statsd_stuck 0\n");
    assert_null(strstr(page.p, "tsdb_statsd_series_refused_total 0\n"));
    assert_null(strstr(page.p, "tsdb_statsd_samples_emitted_total 0\n"));
    http_buf_release(&page);

    /* Lines after the thread stopped wait in the journal; stop's own
     * flush stores what is due. */
    assert_int_equal(http_statsd_stop(e.svc), TSDB_OK);
    free(res);
    env_close(&e);
}

static void test_http_statsd_stop_is_prompt(void **state)
{
    struct timespec a, b;
    struct env e;
    (void)state;

    /* A 1 h interval: the thread sleeps a tick at a time and must still
     * stop at once. */
    env_open(&e, 3600000);
    nap_ms(20);
    clock_gettime(CLOCK_MONOTONIC, &a);
    assert_int_equal(http_statsd_stop(e.svc), TSDB_OK);
    clock_gettime(CLOCK_MONOTONIC, &b);
    assert_true(
        (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000 < 500);
    env_close(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http_statsd_reasons_of_real_messages),
        cmocka_unit_test(test_http_statsd_json),
        cmocka_unit_test(test_http_statsd_flusher_stores_and_counts),
        cmocka_unit_test(test_http_statsd_stop_is_prompt),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
