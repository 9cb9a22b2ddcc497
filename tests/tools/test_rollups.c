/*
 * Rollup rules on the real server: rules set over HTTP, StatsD and
 * imported samples for three regions, and every output compared with the
 * same aggregation written in PromQL over the raw samples; the rule
 * endpoints' errors; rules and results across a restart, and a rules
 * file read at start-up.
 */
#include <ctype.h>
#include <jansson.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tools/server.h"

#define IMPORT "/api/v1/import/prometheus"
#define T0     1700000040LL /* seconds; a whole minute */
#define STEPS  42           /* 10 s apart: seven minutes */

static const char *const regions[] = {"eu", "us", "ap"};

static int put_rule(int port, const char *name, const char *json,
                    struct reply *r)
{
    char path[256];

    snprintf(path, sizeof(path), "/api/v1/rollups/%s", name);
    return request(port, "PUT", path, NULL, json, strlen(json), SEND_PLAIN, r);
}

static void put_ok(int port, const char *name, const char *json)
{
    struct reply r;

    if (put_rule(port, name, json, &r) != 200)
        fail_msg("PUT %s: %d %s", name, r.status, r.body);
    reply_free(&r);
}

/* StatsD lines with their own timestamps (one sample each) and imported
 * counters and gauges, all at step i, for every region. */
static void write_step(int port, int i)
{
    char statsd[2048], om[4096];
    size_t ns = 0, no = 0;
    long long t = T0 + i * 10;
    struct reply r;

    for (int k = 0; k < 3; k++) {
        const char *g = regions[k];

        ns +=
            (size_t)snprintf(statsd + ns, sizeof(statsd) - ns,
                             "llm.tokens:%d|c|#region:%s,model:m%d|T%lld\n"
                             "llm.tokens:%d|c|#region:%s,model:n%d|T%lld\n"
                             "llm.inflight:%d|g|#region:%s|T%lld\n",
                             (i * 31 + k * 7) % 97, g, k, t, (i * 17 + k) % 53,
                             g, k, t, (i * 5 + k) % 11, g, t);
        for (int h = 0; h < 2; h++) {
            /* Host 1 of eu restarts at step 20: its counter resets. */
            int c = k == 0 && h == 1 && i >= 20 ? 2 * (i - 20)
                                                : (k + 2) * i + h * i * i % 7;

            no += (size_t)snprintf(
                om + no, sizeof(om) - no,
                "llm_requests_total{region=\"%s\",host=\"h%d\"} %d %lld000\n"
                "llm_latency_seconds{region=\"%s\",host=\"h%d\"} %.3f "
                "%lld000\n",
                g, h, c, t, g, h, 0.2 + 0.05 * ((i * 13 + h * 3 + k) % 19), t);
        }
    }
    assert_int_equal(post(port, "/api/v1/statsd", "text/plain", statsd, ns, &r),
                     200);
    reply_free(&r);
    assert_int_equal(post(port, IMPORT, "text/plain", om, no, &r), 200);
    reply_free(&r);
}

static void url_encode(const char *s, char *out, size_t cap)
{
    size_t n = 0;

    for (; *s && n + 4 < cap; s++) {
        if (isalnum((unsigned char)*s) || strchr("-_.~", *s))
            out[n++] = *s;
        else
            n +=
                (size_t)snprintf(out + n, cap - n, "%%%02X", (unsigned char)*s);
    }
    out[n] = '\0';
}

/* The result vector of an instant query at t (seconds). */
static json_t *query(int port, const char *q, long long t)
{
    char path[4096], enc[3072];
    struct reply r;
    json_t *root, *res;

    url_encode(q, enc, sizeof(enc));
    snprintf(path, sizeof(path), "/api/v1/query?query=%s&time=%lld", enc, t);
    if (get(port, path, &r) != 200)
        fail_msg("%s: %d %s", q, r.status, r.body);
    root = json_loads(r.body, 0, NULL);
    reply_free(&r);
    assert_non_null(root);
    res = json_object_get(json_object_get(root, "data"), "result");
    json_incref(res);
    json_decref(root);
    return res;
}

static double value_of(json_t *e)
{
    return strtod(
        json_string_value(json_array_get(json_object_get(e, "value"), 1)),
        NULL);
}

/* The values of the comma-separated labels in keys, joined. */
static const char *label_of(json_t *e, const char *keys)
{
    static char out[256];
    char names[128], *save, *k;
    size_t n = 0;

    snprintf(names, sizeof(names), "%s", keys);
    out[0] = '\0';
    for (k = strtok_r(names, ",", &save); k; k = strtok_r(NULL, ",", &save)) {
        const char *v =
            json_string_value(json_object_get(json_object_get(e, "metric"), k));

        n += (size_t)snprintf(out + n, sizeof(out) - n, "%s/", v ? v : "");
    }
    return out;
}

static void same(int port, const char *got_q, const char *want_q, long long t,
                 const char *key)
{
    json_t *got = query(port, got_q, t), *want = query(port, want_q, t);
    size_t i, j;
    json_t *g, *w;

    if (json_array_size(got) != json_array_size(want) ||
        json_array_size(got) == 0)
        fail_msg("at %lld: %s has %zu series, %s has %zu", t, got_q,
                 json_array_size(got), want_q, json_array_size(want));
    json_array_foreach(got, i, g)
    {
        double a = value_of(g), b = NAN;

        char gk[256];

        snprintf(gk, sizeof(gk), "%s", label_of(g, key));
        json_array_foreach(want, j, w)
        {
            if (strcmp(gk, label_of(w, key)) == 0)
                b = value_of(w);
        }
        if (!(fabs(a - b) <= 1e-9 * fmax(fabs(b), 1e-300)))
            fail_msg("at %lld, %s=%s: %s = %.17g but %s = %.17g", t, key,
                     label_of(g, key), got_q, a, want_q, b);
    }
    json_decref(got);
    json_decref(want);
}

#define R "[59999ms] offset 1ms"

static const char *const rules[][2] = {
    {"tokens", "{\"match\": \"llm_tokens\", \"by\": [\"region\"], "
               "\"interval\": \"1m\", \"grace\": \"0s\", \"outputs\": "
               "[\"sum\", \"count\"]}"},
    {"inflight", "{\"match\": \"llm_inflight\", \"by\": [\"region\"], "
                 "\"interval\": \"1m\", \"grace\": \"0s\", \"outputs\": "
                 "[\"last\", \"min\", \"max\", \"avg\"]}"},
    {"requests", "{\"match\": \"llm_requests_total\", \"without\": "
                 "[\"host\"], \"interval\": \"1m\", \"grace\": \"0s\", "
                 "\"outputs\": [\"increase\", \"rate\"]}"},
    {"latency", "{\"match\": \"llm_latency_seconds{region=~\\\"eu|us\\\"}\", "
                "\"without\": [], \"interval\": \"1m\", \"grace\": \"0s\", "
                "\"outputs\": [\"quantiles(0.5, 0.99)\", \"max\"]}"},
};

/* Interval k's outputs (stamped at its end) against PromQL. */
static void check_interval(int port, int k)
{
    long long e = T0 + (k + 1) * 60;

    same(port, "sum by (region) (llm_tokens:1m_sum)",
         "sum by (region) (sum_over_time(llm_tokens" R "))", e, "region");
    same(port, "sum by (region) (llm_tokens:1m_count)",
         "sum by (region) (count_over_time(llm_tokens" R "))", e, "region");
    same(port, "sum by (region) (llm_inflight:1m_last)",
         "sum by (region) (last_over_time(llm_inflight" R "))", e, "region");
    same(port, "sum by (region) (llm_inflight:1m_min)",
         "min by (region) (min_over_time(llm_inflight" R "))", e, "region");
    same(port, "sum by (region) (llm_inflight:1m_max)",
         "max by (region) (max_over_time(llm_inflight" R "))", e, "region");
    same(port, "sum by (region) (llm_inflight:1m_avg)",
         "avg by (region) (avg_over_time(llm_inflight" R "))", e, "region");
    same(port,
         "sum by (host, region) (llm_latency_seconds:1m_quantile"
         "{quantile=\"0.99\"})",
         "sum by (host, region) (quantile_over_time(0.99, "
         "llm_latency_seconds{region=~\"eu|us\"}" R "))",
         e, "host,region");
    same(port, "sum by (host, region) (llm_latency_seconds:1m_max)",
         "max_over_time(llm_latency_seconds{region=~\"eu|us\"}" R ")", e,
         "host,region");
    if (k == 0)
        return; /* increase() extrapolates where there is no earlier sample */
    same(port, "sum by (region) (llm_requests_total:1m_increase)",
         "sum by (region) (increase(llm_requests_total[1m] offset 10s))", e,
         "region");
    same(port, "sum by (region) (llm_requests_total:1m_rate)",
         "sum by (region) (increase(llm_requests_total[1m] offset 10s)) / 60",
         e, "region");
}

/* Waits for the writer thread: until the last closed interval's result
 * can be read. */
static void wait_for(int port, const char *q, long long t)
{
    for (int i = 0; i < 100; i++) {
        json_t *res = query(port, q, t);
        size_t n = json_array_size(res);

        json_decref(res);
        if (n > 0)
            return;
        nap_ms(50);
    }
    fail_msg("%s never appeared", q);
}

static void test_outputs_equal_promql(void **state)
{
    const char *extra[] = {"--flush-interval", "100ms", NULL};
    char *dir;
    int port;
    pid_t pid = serve(&dir, &port, extra);
    int last = STEPS * 10 / 60 - 2; /* the last closed interval */

    (void)state;
    for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
        put_ok(port, rules[i][0], rules[i][1]);
    for (int i = 0; i < STEPS; i++) {
        write_step(port, i);
        /* StatsD's |T lines wait for a flush: keep the two sources in
         * step, so neither closes an interval on the other. */
        nap_ms(150);
    }
    wait_for(port, "llm_tokens:1m_sum{region=\"ap\"}", T0 + (last + 1) * 60);
    wait_for(port, "llm_requests_total:1m_rate{region=\"ap\"}",
             T0 + (last + 1) * 60);
    for (int k = 0; k <= last; k++)
        check_interval(port, k);
    stop(pid);
    test_rmdir(dir);
}

static void test_rule_endpoint_errors(void **state)
{
    char *dir;
    int port;
    pid_t pid = serve(&dir, &port, NULL);
    struct reply r;

    (void)state;
    assert_int_equal(put_rule(port, "x",
                              "{\"match\": \"m{\", \"interval\": "
                              "\"1m\", \"outputs\": [\"sum\"]}",
                              &r),
                     400);
    contains(r.text, "\"errorType\":\"bad_data\"");
    contains(r.text, "field \\\"match\\\"");
    reply_free(&r);
    assert_int_equal(put_rule(port, "x",
                              "{\"match\": \"m\", \"interval\": "
                              "\"0s\", \"outputs\": [\"sum\"]}",
                              &r),
                     400);
    contains(r.text, "field \\\"interval\\\"");
    reply_free(&r);
    assert_int_equal(put_rule(port, "x",
                              "{\"match\": \"m\", \"interval\": "
                              "\"1m\", \"outputs\": [\"p99\"]}",
                              &r),
                     400);
    contains(r.text, "unknown output \\\"p99\\\"");
    reply_free(&r);
    assert_int_equal(put_rule(port, "bad/name", "{}", &r), 404);
    reply_free(&r);
    assert_int_equal(request(port, "DELETE", "/api/v1/rollups/none", NULL, NULL,
                             0, SEND_PLAIN, &r),
                     404);
    contains(r.text, "no rollup rule named none");
    reply_free(&r);
    put_ok(port, "ok", rules[0][1]);
    assert_int_equal(get(port, "/metrics", &r), 200);
    contains(r.text, "tsdb_rollup_rules 1\n");
    reply_free(&r);
    assert_int_equal(get(port, "/api/v1/rollups", &r), 200);
    contains(r.text, "\"name\":\"ok\"");
    contains(r.text, "\"late_samples\":0");
    reply_free(&r);
    assert_int_equal(request(port, "DELETE", "/api/v1/rollups/ok", NULL, NULL,
                             0, SEND_PLAIN, &r),
                     200);
    assert_string_equal(r.body, "{\"status\":\"success\",\"data\":[]}\n");
    reply_free(&r);
    stop(pid);
    test_rmdir(dir);
}

/* Rules survive a restart, a rules file adds to them, and intervals open
 * at the stop are completed after it. */
static void test_restart_and_rules_file(void **state)
{
    char *dir, path[512], extra_file[600];
    int port;
    pid_t pid = serve(&dir, &port, NULL);
    const char *file = "{\"latency\": {\"match\": \"llm_latency_seconds\", "
                       "\"by\": [\"region\"], \"interval\": \"1m\", "
                       "\"grace\": \"0s\", \"outputs\": [\"max\"]}}";
    struct reply r;

    (void)state;
    put_ok(port, rules[2][0], rules[2][1]);
    for (int i = 0; i < 15; i++)
        write_step(port, i);
    stop(pid);
    snprintf(path, sizeof(path), "%s/rules.json", dir);
    write_file(path, file, strlen(file));
    snprintf(extra_file, sizeof(extra_file), "%s", path);
    {
        const char *extra[] = {"--rollups", extra_file, NULL};

        pid = start(dir, port, extra);
        assert_int_equal(wait_ready(port), 0);
    }
    assert_int_equal(get(port, "/api/v1/rollups", &r), 200);
    contains(r.text, "\"name\":\"latency\"");
    contains(r.text, "\"name\":\"requests\"");
    reply_free(&r);
    for (int i = 15; i < STEPS; i++)
        write_step(port, i);
    wait_for(port, "llm_requests_total:1m_increase{region=\"ap\"}",
             T0 + 5 * 60);
    for (int k = 1; k <= 4; k++)
        same(port, "sum by (region) (llm_requests_total:1m_increase)",
             "sum by (region) (increase(llm_requests_total[1m] offset 10s))",
             T0 + (k + 1) * 60, "region");
    stop(pid);
    test_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rule_endpoint_errors),
        cmocka_unit_test(test_outputs_equal_promql),
        cmocka_unit_test(test_restart_and_rules_file),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
