/*
 * The query API of the real server on loopback: every endpoint Grafana
 * calls, GET and POST alike, Prometheus 2.42's error texts, and promtool
 * as a second real client.  Values are checked against the imported
 * samples; conformance with Prometheus itself is test_conformance's job.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tools/server.h"

#define IMPORT "/api/v1/import/prometheus"
#define FORM   "application/x-www-form-urlencoded"

/* Two counters, +3 every 15 s from T0 = 1700000000 s, and a gauge. */
static char *fixture(size_t *len)
{
    size_t cap = 1 << 16, n = 0;
    char *p = malloc(cap);

    n += (size_t)snprintf(p + n, cap - n, "# TYPE req_total counter\n");
    for (int i = 0; i <= 20; i++) {
        long long t = 1700000000000LL + i * 15000LL;

        n += (size_t)snprintf(p + n, cap - n,
                              "req_total{job=\"a\",code=\"200\"} %d %lld\n"
                              "req_total{job=\"a\",code=\"500\"} %d %lld\n",
                              3 + 3 * i, t, i, t);
    }
    n += (size_t)snprintf(p + n, cap - n,
                          "temp{job=\"b\"} 21.5 1700000000000\n");
    *len = n;
    return p;
}

struct server {
    char *dir;
    int port;
    pid_t pid;
};

static int setup(void **state)
{
    struct server *s = calloc(1, sizeof(*s));
    struct reply r;
    size_t len;
    char *body = fixture(&len);

    s->pid = serve(&s->dir, &s->port, NULL);
    assert_int_equal(post(s->port, IMPORT, "text/plain", body, len, &r), 200);
    reply_free(&r);
    free(body);
    *state = s;
    return 0;
}

static int teardown(void **state)
{
    struct server *s = *state;

    stop(s->pid);
    test_rmdir(s->dir);
    free(s);
    return 0;
}

/* GET path and expect status with want in the body. */
static void expect_get(struct server *s, const char *path, int status,
                       const char *want)
{
    struct reply r;

    assert_int_equal(get(s->port, path, &r), status);
    contains(r.body, want);
    reply_free(&r);
}

static void expect_post(struct server *s, const char *path, const char *form,
                        int status, const char *want)
{
    struct reply r;

    assert_int_equal(post(s->port, path, FORM, form, strlen(form), &r), status);
    contains(r.body, want);
    reply_free(&r);
}

static void test_instant_and_range_queries(void **state)
{
    struct server *s = *state;
    struct reply g, p;
    static const char form[] = "query=sum+by+(job)+(req_total)&time=1700000100";

    expect_get(s,
               "/api/v1/query?query=sum+by+(job)+(req_total)"
               "&time=1700000100",
               200,
               "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\","
               "\"result\":[{\"metric\":{\"job\":\"a\"},\"value\":"
               "[1700000100,\"27\"]}]}}");
    /* Grafana posts a form; the answer must be the same. */
    assert_int_equal(get(s->port,
                         "/api/v1/query?query=sum+by+(job)+(req_total)"
                         "&time=1700000100",
                         &g),
                     200);
    assert_int_equal(
        post(s->port, "/api/v1/query", FORM, form, strlen(form), &p), 200);
    assert_string_equal(g.body, p.body);
    reply_free(&g);
    reply_free(&p);

    expect_post(s, "/api/v1/query_range",
                "query=req_total%7Bcode%3D%22500%22%7D&start=1700000000"
                "&end=1700000030&step=15s",
                200,
                "\"values\":[[1700000000,\"0\"],[1700000015,\"1\"],"
                "[1700000030,\"2\"]]");
    expect_get(s,
               "/api/v1/query?query=rate(req_total%7Bcode%3D%22200%22%7D"
               "%5B1m%5D)&time=1700000100",
               200, "\"value\":[1700000100,\"0.19999999999999998\"]");
    expect_get(s, "/api/v1/query?query=req_total%5B30s%5D&time=1700000030.5",
               200, "\"resultType\":\"matrix\"");
    expect_get(s, "/api/v1/query?query=1%2B1&time=4", 200,
               "{\"resultType\":\"scalar\",\"result\":[4,\"2\"]}");
    expect_get(s, "/api/v1/query?query=%22foo%22&time=4", 200,
               "{\"resultType\":\"string\",\"result\":[4,\"foo\"]}");
}

/* The body of a reply to GET path, with its X-Tsdb-Resolution header. */
static char *resolution_of(struct server *s, const char *path, const char *want)
{
    struct reply r;
    char header[64], *body;

    assert_int_equal(get(s->port, path, &r), 200);
    snprintf(header, sizeof(header), "X-Tsdb-Resolution: %s\r\n", want);
    contains(r.text, header);
    body = strdup(r.body);
    reply_free(&r);
    return body;
}

/* A range function on a 5-minute grid is read from the 5m tier (here
 * summarised on the fly: no pass has run yet); tiers=false reads raw
 * chunks, by GET and by POST form, with the same answer. */
static void test_resolution_header_and_tiers_param(void **state)
{
    struct server *s = *state;
    static const char q[] =
        "/api/v1/query_range?query=sum_over_time(req_total%5B5m%5D)"
        "&start=1700000100&end=1700000400&step=300";
    static const char form[] = "query=sum_over_time(req_total%5B5m%5D)"
                               "&start=1700000100&end=1700000400&step=300"
                               "&tiers=false";
    char path[256], *tier, *raw;
    struct reply r;

    tier = resolution_of(s, q, "5m");
    snprintf(path, sizeof(path), "%s&tiers=false", q);
    raw = resolution_of(s, path, "raw");
    assert_string_equal(tier, raw);
    contains(tier, "[1700000100,\"84\"]");
    assert_int_equal(
        post(s->port, "/api/v1/query_range", FORM, form, strlen(form), &r),
        200);
    contains(r.text, "X-Tsdb-Resolution: raw\r\n");
    assert_string_equal(r.body, raw);
    reply_free(&r);
    free(tier);
    free(raw);

    /* Not on the grid: raw. */
    free(resolution_of(s,
                       "/api/v1/query?query=rate(req_total%5B5m%5D)"
                       "&time=1700000101",
                       "raw"));
    expect_get(s, "/api/v1/query?query=1&tiers=maybe", 400,
               "invalid parameter \\\"tiers\\\"");
}

static void test_parameter_errors_use_prometheus_texts(void **state)
{
    struct server *s = *state;

    expect_get(s, "/api/v1/query?query=sum(", 400,
               "\"errorType\":\"bad_data\",\"error\":\"invalid parameter "
               "\\\"query\\\": 1:5: parse error: unclosed left "
               "parenthesis\"");
    expect_get(s, "/api/v1/query", 400,
               "invalid parameter \\\"query\\\": 1:1: parse error: no "
               "expression found in input");
    expect_get(s, "/api/v1/query?query=up&time=abc", 400,
               "invalid parameter \\\"time\\\": Invalid time value for "
               "'time': cannot parse \\\"abc\\\" to a valid timestamp");
    expect_get(s, "/api/v1/query_range?query=up&end=1&step=1", 400,
               "invalid parameter \\\"start\\\": cannot parse \\\"\\\" to "
               "a valid timestamp");
    expect_get(s, "/api/v1/query_range?query=up&start=2&end=1&step=1", 400,
               "invalid parameter \\\"end\\\": end timestamp must not be "
               "before start time");
    expect_get(s, "/api/v1/query_range?query=up&start=1&end=2&step=0", 400,
               "zero or negative query resolution step widths are not "
               "accepted. Try a positive integer");
    expect_get(s, "/api/v1/query_range?query=up&start=0&end=20000&step=1", 400,
               "exceeded maximum resolution of 11,000 points per "
               "timeseries. Try decreasing the query resolution (?step=XX)");
    expect_get(s, "/api/v1/query_range?query=up%5B5m%5D&start=0&end=1&step=1",
               400,
               "invalid expression type \\\"range vector\\\" for range "
               "query, must be Scalar or instant Vector");
    expect_get(s, "/api/v1/query_range?query=sum(&start=0&end=1&step=1", 400,
               "\"error\":\"1:5: parse error:");
    expect_get(s, "/api/v1/query?query=up&timeout=soon", 400,
               "invalid parameter \\\"timeout\\\"");
    expect_get(s,
               "/api/v1/query?query=req_total+%2B+on(job)+req_total"
               "&time=1700000100",
               422,
               "\"errorType\":\"execution\",\"error\":\"found duplicate "
               "series for the match group {job=\\\"a\\\"} on the right "
               "hand-side of the operation");
}

static void test_series_labels_and_values(void **state)
{
    struct server *s = *state;

    expect_get(s,
               "/api/v1/series?match%5B%5D=req_total&start=1700000000"
               "&end=1700000300",
               200,
               "{\"status\":\"success\",\"data\":[{\"__name__\":"
               "\"req_total\",\"code\":\"200\",\"job\":\"a\"},{\"__name__\":"
               "\"req_total\",\"code\":\"500\",\"job\":\"a\"}]}");
    /* Two match[] that select the same series list it once. */
    expect_post(s, "/api/v1/series",
                "match%5B%5D=temp&match%5B%5D=%7Bjob%3D%22b%22%7D", 200,
                "{\"status\":\"success\",\"data\":[{\"__name__\":\"temp\","
                "\"job\":\"b\"}]}");
    expect_get(s, "/api/v1/series", 400, "no match[] parameter provided");
    expect_get(s, "/api/v1/labels", 200,
               "{\"status\":\"success\",\"data\":[\"__name__\",\"code\","
               "\"job\"]}");
    expect_get(s, "/api/v1/labels?match%5B%5D=temp", 200,
               "{\"status\":\"success\",\"data\":[\"__name__\",\"job\"]}");
    expect_get(s, "/api/v1/label/job/values", 200,
               "{\"status\":\"success\",\"data\":[\"a\",\"b\"]}");
    expect_get(s,
               "/api/v1/label/__name__/values?match%5B%5D=%7Bjob%3D%22b"
               "%22%7D",
               200, "{\"status\":\"success\",\"data\":[\"temp\"]}");
    expect_get(s, "/api/v1/label/nothing/values", 200,
               "{\"status\":\"success\",\"data\":[]}");
    expect_get(s, "/api/v1/label/1bad/values", 400,
               "invalid label name: \\\"1bad\\\"");
    /* start and end narrow the listings to series with samples there:
     * temp has one sample, at 1700000000. */
    expect_get(s, "/api/v1/label/job/values?start=1700000100&end=1700000300",
               200, "{\"status\":\"success\",\"data\":[\"a\"]}");
    expect_get(s, "/api/v1/labels?start=1700000100&end=1700000300", 200,
               "{\"status\":\"success\",\"data\":[\"__name__\",\"code\","
               "\"job\"]}");
    expect_get(s, "/api/v1/labels?start=1800000000", 200,
               "{\"status\":\"success\",\"data\":[]}");
    expect_get(s, "/api/v1/series?match%5B%5D=%7Bjob%3D~%22.*%22%7D", 400,
               "\"error\":\"invalid parameter \\\"match[]\\\": match[] must "
               "contain at least one non-empty matcher\"");
    expect_get(s, "/api/v1/labels?match%5B%5D=%7Bjob%3D~%22.*%22%7D", 400,
               "\"error\":\"match[] must contain at least one non-empty "
               "matcher\"");
    expect_get(s, "/api/v1/labels?start=abc", 400,
               "invalid parameter \\\"start\\\": Invalid time value for "
               "'start': cannot parse \\\"abc\\\" to a valid timestamp");
}

static void test_probes_grafana_makes(void **state)
{
    struct server *s = *state;

    expect_get(s, "/api/v1/status/buildinfo", 200, "\"version\":\"2.42.0\"");
    expect_get(s, "/api/v1/metadata", 200,
               "{\"status\":\"success\",\"data\":{}}");
    expect_get(s, "/api/v1/metadata?limit=abc", 400, "limit must be a number");
    expect_get(s, "/api/v1/query_exemplars?query=test&start=1&end=2", 200,
               "{\"status\":\"success\",\"data\":[]}");
    expect_get(s, "/api/v1/rules", 200, "\"groups\":[]");
    expect_get(s, "/api/v1/format_query?query=sum(rate(x%5B5m%5D))by(job)/2",
               200, "\"data\":\"sum by (job) (rate(x[5m])) / 2\"");
}

/* Runs cmd and returns its output (free it); fails if it fails. */
static char *run(const char *cmd)
{
    FILE *f = popen(cmd, "r");
    char *out = calloc(1, 1 << 16);
    size_t n;

    assert_non_null(f);
    n = fread(out, 1, (1 << 16) - 1, f);
    out[n] = '\0';
    if (pclose(f) != 0)
        fail_msg("%s failed:\n%s", cmd, out);
    return out;
}

static void test_promtool_as_a_client(void **state)
{
    struct server *s = *state;
    char cmd[512], *out;

    if (system("command -v promtool >/dev/null 2>&1") != 0)
        fail_msg("promtool is not installed: run make deps (Debian package "
                 "prometheus)");
    snprintf(cmd, sizeof(cmd),
             "promtool query instant --time=1700000100 "
             "http://127.0.0.1:%d 'sum(req_total)' 2>&1",
             s->port);
    out = run(cmd);
    contains(out, "{} => 27 @[1700000100]");
    free(out);
    snprintf(cmd, sizeof(cmd),
             "promtool query range --start=1700000000 --end=1700000030 "
             "--step=15s http://127.0.0.1:%d 'req_total{code=\"500\"}' 2>&1",
             s->port);
    out = run(cmd);
    contains(out, "2 @[1700000030]");
    free(out);
    snprintf(cmd, sizeof(cmd),
             "promtool query series --match=temp --start=1700000000 "
             "--end=1700000300 http://127.0.0.1:%d 2>&1",
             s->port);
    out = run(cmd);
    contains(out, "{__name__=\"temp\", job=\"b\"}");
    free(out);
    snprintf(cmd, sizeof(cmd),
             "promtool query labels --start=1700000000 --end=1700000300 "
             "http://127.0.0.1:%d code 2>&1",
             s->port);
    out = run(cmd);
    contains(out, "200\n500");
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_instant_and_range_queries),
        cmocka_unit_test(test_resolution_header_and_tiers_param),
        cmocka_unit_test(test_parameter_errors_use_prometheus_texts),
        cmocka_unit_test(test_series_labels_and_values),
        cmocka_unit_test(test_probes_grafana_makes),
        cmocka_unit_test(test_promtool_as_a_client),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
