/*
 * Detectors on the real server: definitions refused with the field named
 * over HTTP, a detector that warms up on imported history and then opens
 * an event on a live jump, its result series readable through the query
 * API, its events listed with their explanation, and all of it still
 * there after a restart.
 */
#include <jansson.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <time.h>

#include "tools/server.h"

#define IMPORT "/api/v1/import/prometheus"

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int put_detector(int port, const char *name, const char *json,
                        struct reply *r)
{
    char path[256];

    snprintf(path, sizeof(path), "/api/v1/detectors/%s", name);
    return request(port, "PUT", path, NULL, json, strlen(json), SEND_PLAIN, r);
}

static void import_samples(int port, long long from, long long to, double base,
                           double jump)
{
    size_t cap = 1 << 16, n = 0;
    char *body = malloc(cap);
    struct reply r;
    int i = 0;

    for (long long t = from; t <= to; t += 1000, i++)
        n += (size_t)snprintf(body + n, cap - n,
                              "load{region=\"eu\"} %.2f %lld\n",
                              base + (i * 37 % 11) * 0.5 + jump, t);
    assert_int_equal(post(port, IMPORT, "text/plain", body, n, &r), 200);
    reply_free(&r);
    free(body);
}

/* Polls path until its body holds want; fails after about 15 s. */
static void wait_for(int port, const char *path, const char *want)
{
    struct reply r;

    for (int i = 0; i < 150; i++) {
        int status = get(port, path, &r);
        bool ok = status == 200 && strstr(r.body, want) != NULL;

        if (i == 149)
            fail_msg("%s never held %s: %s", path, want, r.body);
        reply_free(&r);
        if (ok)
            return;
        nap_ms(100);
    }
}

static void test_bad_definitions(void **state)
{
    char *dir;
    int port;
    pid_t pid = serve(&dir, &port, NULL);
    struct reply r;

    (void)state;
    assert_int_equal(put_detector(port, "d",
                                  "{\"query\": \"rate(x)\", "
                                  "\"interval\": \"1m\", "
                                  "\"model\": \"ewma\"}",
                                  &r),
                     400);
    contains(r.text, "\"errorType\":\"bad_data\"");
    contains(r.text, "field \\\"query\\\"");
    reply_free(&r);
    assert_int_equal(put_detector(port, "d",
                                  "{\"query\": \"x\", "
                                  "\"interval\": \"1m\", "
                                  "\"model\": \"arima\"}",
                                  &r),
                     400);
    contains(r.text, "field \\\"model\\\"");
    reply_free(&r);
    assert_int_equal(put_detector(port, "d",
                                  "{\"query\": \"x\", "
                                  "\"interval\": \"1h\", "
                                  "\"model\": \"holt_winters\", "
                                  "\"params\": {\"season\": "
                                  "\"10m\"}}",
                                  &r),
                     400);
    contains(r.text, "shorter than the interval");
    reply_free(&r);
    assert_int_equal(request(port, "DELETE", "/api/v1/detectors/none", NULL,
                             NULL, 0, SEND_PLAIN, &r),
                     404);
    reply_free(&r);
    assert_int_equal(get(port, "/api/v1/anomalies?detector=none", &r), 404);
    reply_free(&r);
    assert_int_equal(get(port, "/api/v1/anomalies?start=yesterday", &r), 400);
    reply_free(&r);
    stop(pid);
    test_rmdir(dir);
}

static void test_live_event_and_restart(void **state)
{
    const char *def = "{\"query\": \"load\", \"interval\": \"1s\", "
                      "\"model\": \"ewma\", \"history\": \"10m\", "
                      "\"min_deviation\": 20}";
    char *dir;
    int port;
    pid_t pid = serve(&dir, &port, NULL);
    long long now = now_ms() / 1000 * 1000;
    struct reply r;
    json_t *root, *ev;

    (void)state;
    import_samples(port, now - 600000, now, 100, 0);
    assert_int_equal(put_detector(port, "load", def, &r), 200);
    reply_free(&r);
    wait_for(port, "/api/v1/detectors", "\"status\":\"ok\"");
    /* A jump that lasts: the live steps see it through the lookback. */
    import_samples(port, now + 1000, now_ms() + 20000, 100, 900);
    wait_for(port, "/api/v1/anomalies?detector=load", "\"peak_score\"");
    assert_int_equal(get(port, "/api/v1/anomalies?detector=load", &r), 200);
    root = json_loads(r.body, 0, NULL);
    reply_free(&r);
    ev = json_array_get(json_object_get(root, "data"), 0);
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(ev, "labels"), "region")),
                        "eu");
    assert_true(json_number_value(json_object_get(ev, "observed")) > 900);
    assert_true(json_number_value(json_object_get(ev, "expected")) < 110);
    assert_true(json_number_value(json_object_get(ev, "upper")) < 900);
    json_decref(root);
    assert_int_equal(get(port, "/api/v1/query?query=anomaly_active", &r), 200);
    contains(r.body, "\"detector\":\"load\"");
    reply_free(&r);
    assert_int_equal(get(port, "/metrics", &r), 200);
    contains(r.body, "tsdb_detectors 1\n");
    reply_free(&r);
    stop(pid);
    pid = start(dir, port, NULL);
    assert_int_equal(wait_ready(port), 0);
    assert_int_equal(get(port, "/api/v1/anomalies?detector=load", &r), 200);
    contains(r.body, "\"peak_score\"");
    reply_free(&r);
    assert_int_equal(get(port, "/api/v1/detectors", &r), 200);
    contains(r.body, "\"name\":\"load\"");
    reply_free(&r);
    stop(pid);
    test_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_definitions),
        cmocka_unit_test(test_live_event_and_restart),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
