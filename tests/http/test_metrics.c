/*
 * Tests for http/metrics.c: requests counted by endpoint and code, the
 * latency histogram cumulative and consistent with its count and sum,
 * write counts by reason, the storage figures and the cardinality rules
 * with their counters on the page.  Threads record concurrently to check
 * that no count is lost without a lock.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <pthread.h>
#include <string.h>

#include "http/metrics.h"
#include "testutil.h"
#include "tsdb/guard.h"

static void has(const char *page, const char *line)
{
    if (!strstr(page, line)) {
        print_error("missing: %s\n", line);
        fail();
    }
}

static void *hammer(void *arg)
{
    struct http_metrics *m = arg;

    for (int i = 0; i < 10000; i++)
        http_metrics_request(m, HTTP_EP_EXPORT, 200, 2000);
    return NULL;
}

static void test_metrics_page(void **state)
{
    char *dir = test_tmpdir("metrics");
    struct http_ingest_counts c = {0};
    struct tsdb_options o;
    struct http_metrics m;
    struct http_buf page;
    pthread_t th[4];
    struct tsdb *db;
    (void)state;

    tsdb_options_init(&o);
    o.dir = dir;
    assert_int_equal(tsdb_open(&o, &db), TSDB_OK);
    http_metrics_init(&m);
    http_metrics_request(&m, HTTP_EP_IMPORT, 200, 500);     /* .001 */
    http_metrics_request(&m, HTTP_EP_IMPORT, 400, 1000);    /* .001 edge */
    http_metrics_request(&m, HTTP_EP_IMPORT, 200, 3000000); /* 5 */
    http_metrics_request(&m, HTTP_EP_OTHER, 404, 20000000); /* +Inf */
    http_metrics_request(&m, HTTP_EP_OTHER, 418, 10);
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, hammer, &m);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    c.lines = 10;
    c.written = 6;
    c.duplicates = 1;
    c.lines_rejected[HTTP_REJ_PARSE] = 2;
    c.samples_rejected[HTTP_REJ_OUT_OF_ORDER] = 1;
    http_metrics_ingest(&m, HTTP_EP_IMPORT, &c);
    http_metrics_export(&m, 3, 300, 2);

    http_buf_init(&page, 1 << 20);
    assert_int_equal(http_metrics_render(&m, db, &page), TSDB_OK);
    has(page.p, "# TYPE tsdb_http_requests_total counter\n");
    has(page.p, "tsdb_http_requests_total{endpoint=\"import\",code=\"200\"} "
                "2\n");
    has(page.p, "tsdb_http_requests_total{endpoint=\"import\",code=\"400\"} "
                "1\n");
    has(page.p, "tsdb_http_requests_total{endpoint=\"other\",code=\"other\"} "
                "1\n");
    has(page.p, "tsdb_http_requests_total{endpoint=\"export\",code=\"200\"} "
                "40000\n");
    has(page.p, "# TYPE tsdb_http_request_duration_seconds histogram\n");
    has(page.p, "tsdb_http_request_duration_seconds_bucket{endpoint="
                "\"import\",le=\"0.001\"} 2\n");
    has(page.p, "tsdb_http_request_duration_seconds_bucket{endpoint="
                "\"import\",le=\"1\"} 2\n");
    has(page.p, "tsdb_http_request_duration_seconds_bucket{endpoint="
                "\"import\",le=\"5\"} 3\n");
    has(page.p, "tsdb_http_request_duration_seconds_bucket{endpoint="
                "\"import\",le=\"+Inf\"} 3\n");
    has(page.p, "tsdb_http_request_duration_seconds_sum{endpoint="
                "\"import\"} 3.0015\n");
    has(page.p, "tsdb_http_request_duration_seconds_count{endpoint="
                "\"import\"} 3\n");
    has(page.p, "tsdb_http_request_duration_seconds_bucket{endpoint="
                "\"other\",le=\"10\"} 1\n");
    has(page.p, "tsdb_http_request_duration_seconds_bucket{endpoint="
                "\"other\",le=\"+Inf\"} 2\n");
    has(page.p, "tsdb_http_request_duration_seconds_bucket{endpoint="
                "\"export\",le=\"0.005\"} 40000\n");
    has(page.p, "tsdb_ingest_lines_total{endpoint=\"import\"} 10\n");
    assert_null(strstr(page.p, "tsdb_ingest_lines_total{endpoint=\"statsd\"}"));
    has(page.p, "tsdb_ingest_lines_rejected_total{endpoint=\"import\","
                "reason=\"parse_error\"} 2\n");
    has(page.p, "tsdb_ingest_samples_written_total{endpoint=\"import\"} 6\n");
    has(page.p, "tsdb_ingest_samples_duplicate_total{endpoint=\"import\"} "
                "1\n");
    has(page.p, "tsdb_ingest_samples_rejected_total{endpoint=\"import\","
                "reason=\"out_of_order\"} 1\n");
    has(page.p, "tsdb_export_samples_total 300\n");
    has(page.p, "tsdb_export_stale_markers_skipped_total 2\n");
    has(page.p, "# TYPE tsdb_head_series gauge\ntsdb_head_series 0\n");
    has(page.p, "tsdb_wal_bytes ");
    has(page.p, "tsdb_lmdb_file_bytes ");
    has(page.p, "tsdb_lmdb_free_bytes ");
    has(page.p, "tsdb_chunks_sealed_total 0\n");
    has(page.p, "tsdb_http_requests_in_flight 0\n");
    assert_null(strstr(page.p, "reason=\"parse_error\"} 0\ntsdb_ingest_"
                               "samples_rejected"));

    /* A page that does not fit its buffer is an error, not a cut page. */
    http_buf_release(&page);
    http_buf_init(&page, 512);
    assert_int_equal(http_metrics_render(&m, db, &page), TSDB_EFULL);
    http_buf_release(&page);
    assert_int_equal(tsdb_close(db), TSDB_OK);
    test_rmdir(dir);
}

/* Creates m{k="v"} through a, returning tsdb_appender_series's code. */
static int create(struct tsdb_appender *a, const char *m, const char *k,
                  const char *v)
{
    struct tsdb_label l[2] = {{"__name__", m}, {k, v}};
    char err[512];
    uint64_t ref;
    int rc = tsdb_appender_series(a, l, 2, &ref, err, sizeof(err));

    if (rc == TSDB_OK)
        assert_int_equal(tsdb_appender_add(a, ref, 1000, 1), TSDB_OK);
    return rc;
}

static void test_metrics_guard_families(void **state)
{
    const struct tsdb_guard_rule rules[] = {
        {NULL, "user", 2, TSDB_GUARD_FOLD},
        {"api", NULL, 1, TSDB_GUARD_REJECT},
    };
    char *dir = test_tmpdir("metrics-guard");
    struct tsdb_options o;
    struct tsdb_appender *a;
    struct http_metrics m;
    struct http_buf page;
    struct tsdb *db;
    char user[16];
    (void)state;

    tsdb_options_init(&o);
    o.dir = dir;
    assert_int_equal(tsdb_open(&o, &db), TSDB_OK);
    assert_int_equal(tsdb_guard_replace(db, rules, 2), TSDB_OK);
    a = tsdb_appender_new(db);
    for (int i = 0; i < 5; i++) {
        snprintf(user, sizeof(user), "u%d", i);
        assert_int_equal(create(a, "req", "user", user), TSDB_OK);
    }
    assert_int_equal(create(a, "api", "path", "/a"), TSDB_OK);
    assert_int_equal(create(a, "api", "path", "/b"), TSDB_ELIMIT);
    assert_int_equal(create(a, "api", "path", "/c"), TSDB_ELIMIT);
    assert_int_equal(tsdb_appender_commit(a, NULL), TSDB_OK);
    tsdb_appender_free(a);

    http_metrics_init(&m);
    http_buf_init(&page, 1 << 20);
    assert_int_equal(http_metrics_render(&m, db, &page), TSDB_OK);
    has(page.p, "# TYPE tsdb_guard_limit gauge\n");
    has(page.p, "tsdb_guard_limit{metric=\"*\",label=\"user\","
                "policy=\"fold\"} 2\n");
    has(page.p, "tsdb_guard_limit{metric=\"api\",label=\"\","
                "policy=\"reject\"} 1\n");
    has(page.p, "tsdb_guard_used{metric=\"*\",label=\"user\"} 2\n");
    has(page.p, "tsdb_guard_used{metric=\"api\",label=\"\"} 1\n");
    has(page.p, "# TYPE tsdb_guard_series_refused_total counter\n");
    has(page.p, "tsdb_guard_series_refused_total{metric=\"api\",label=\"\"} "
                "2\n");
    has(page.p, "tsdb_guard_values_folded_total{metric=\"req\","
                "label=\"user\"} 3\n");
    http_buf_release(&page);
    assert_int_equal(tsdb_close(db), TSDB_OK);
    test_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metrics_page),
        cmocka_unit_test(test_metrics_guard_families),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
