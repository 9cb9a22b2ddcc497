/*
 * tsdb-replay over a data folder against the live scheduler on the same
 * data: a detector runs live on tsdbd over samples imported ahead of
 * time, then tsdb-replay replays the same steps from the folder, and the
 * events, with their peaks, must be the same.  Also the replay's
 * errors (missing folder, bad definition) and its SVG plots, of stored
 * series and of CSV files.
 */
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <time.h>

#include "tools/server.h"

#define REPLAY "build/asan/tsdb-replay"
#define IMPORT "/api/v1/import/prometheus"
#define DEF_BODY                                                               \
    "{\"query\": \"load\", \"interval\": \"1s\", \"model\": \"ewma\", "        \
    "\"history\": \"5m\", \"min_deviation\": 20}"
#define DEF "{\"load\": " DEF_BODY "}"

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Two regions a second apart from..to; eu jumps by 900 in [j0, j1). */
static void import_range(int port, long long from, long long to, long long j0,
                         long long j1)
{
    size_t cap = 1 << 20, n = 0;
    char *body = malloc(cap);
    struct reply r;
    int i = 0;

    for (long long t = from; t <= to; t += 1000, i++) {
        double base = 100 + (i * 37 % 11) * 0.5;

        n += (size_t)snprintf(body + n, cap - n,
                              "load{region=\"eu\"} %.2f %lld\n"
                              "load{region=\"us\"} %.2f %lld\n",
                              base + (t >= j0 && t < j1 ? 900 : 0), t, base + 3,
                              t);
    }
    assert_int_equal(post(port, IMPORT, "text/plain", body, n, &r), 200);
    reply_free(&r);
    free(body);
}

/* The first and last timestamps of the live anomaly_score samples. */
static void live_span(int port, long long *first, long long *last)
{
    struct reply r;
    char *p;

    assert_int_equal(get(port, "/api/v1/export?match[]=anomaly_score", &r),
                     200);
    *first = -1;
    *last = -1;
    for (p = strtok(r.body, "\n"); p; p = strtok(NULL, "\n")) {
        const char *sp = strrchr(p, ' ');
        long long t;

        if (p[0] == '#' || sp == NULL)
            continue;
        t = (long long)(strtod(sp + 1, NULL) * 1000 + 0.5);
        if (*first < 0 || t < *first)
            *first = t;
        if (t > *last)
            *last = t;
    }
    reply_free(&r);
    assert_true(*first > 0);
}

static char *run_cmd(const char *cmd, int *status)
{
    FILE *f = popen(cmd, "r");
    size_t cap = 1 << 20, n = 0;
    char *out = malloc(cap);

    assert_non_null(f);
    while (n + 1 < cap && fgets(out + n, (int)(cap - n), f) != NULL)
        n += strlen(out + n);
    out[n] = '\0';
    *status = pclose(f);
    return out;
}

static json_t *events_of(json_t *arr)
{
    json_t *out = json_array(), *e;
    size_t i;

    json_array_foreach(arr, i, e)
    {
        json_t *k = json_object();

        json_object_set(k, "labels", json_object_get(e, "labels"));
        json_object_set(k, "start", json_object_get(e, "start"));
        json_object_set(k, "end", json_object_get(e, "end"));
        json_object_set(k, "peak_score", json_object_get(e, "peak_score"));
        json_object_set(k, "observed", json_object_get(e, "observed"));
        json_object_set(k, "expected", json_object_get(e, "expected"));
        json_array_append_new(out, k);
    }
    return out;
}

static void test_replay_equals_live(void **state)
{
    char *dir, path[512], cmd[2048], *out, *a, *b;
    int port, status;
    pid_t pid = serve(&dir, &port, NULL);
    long long now = now_ms() / 1000 * 1000, first, last;
    struct reply r;
    json_t *live, *rep, *le, *re;

    (void)state;
    /* Imported ahead of time: every live step finds its sample there. */
    import_range(port, now - 400000, now + 9000, now + 3000, now + 6000);
    snprintf(path, sizeof(path), "%s/load.json", dir);
    write_file(path, DEF, strlen(DEF));
    assert_int_equal(request(port, "PUT", "/api/v1/detectors/load", NULL,
                             DEF_BODY, strlen(DEF_BODY), SEND_PLAIN, &r),
                     200);
    reply_free(&r);
    while (now_ms() < now + 10500)
        nap_ms(100);
    assert_int_equal(get(port, "/api/v1/anomalies?detector=load", &r), 200);
    live = json_loads(r.body, 0, NULL);
    reply_free(&r);
    live_span(port, &first, &last);
    stop(pid);
    snprintf(cmd, sizeof(cmd),
             REPLAY " --data %s --detector %s --start %.3f --end %.3f --json "
                    "--plot %s/load.svg 2>&1",
             dir, path, first / 1000.0, last / 1000.0, dir);
    out = run_cmd(cmd, &status);
    if (status != 0)
        fail_msg("%s: %s", cmd, out);
    rep = json_loads(out, 0, NULL);
    if (rep == NULL)
        fail_msg("not JSON: %s", out);
    le = events_of(json_object_get(live, "data"));
    re = events_of(json_object_get(
        json_array_get(json_object_get(rep, "detectors"), 0), "events"));
    a = json_dumps(le, JSON_SORT_KEYS | JSON_COMPACT);
    b = json_dumps(re, JSON_SORT_KEYS | JSON_COMPACT);
    assert_true(json_array_size(le) >= 1);
    if (strcmp(a, b) != 0)
        fail_msg("live events %s\nreplayed %s", a, b);
    free(a);
    free(b);
    json_decref(le);
    json_decref(re);
    json_decref(live);
    json_decref(rep);
    free(out);
    snprintf(path, sizeof(path), "%s/load.svg", dir);
    {
        size_t len;
        char *svg = read_file(path, &len);

        contains(svg, "<svg");
        contains(svg, "region=&quot;eu&quot;");
        contains(svg, "expected");
        free(svg);
    }
    test_rmdir(dir);
}

static void test_replay_errors(void **state)
{
    char cmd[1024], *out, *dir = test_tmpdir("replay"), path[512];
    int status;

    (void)state;
    snprintf(cmd, sizeof(cmd),
             REPLAY " --data /nonexistent --detector x.json --start 0 --end 1"
                    " 2>&1");
    out = run_cmd(cmd, &status);
    assert_int_not_equal(status, 0);
    contains(out, "/nonexistent");
    free(out);
    snprintf(path, sizeof(path), "%s/bad.json", dir);
    write_file(path,
               "{\"d\": {\"query\": \"x\", \"interval\": \"1m\", "
               "\"model\": \"nope\"}}",
               strlen("{\"d\": {\"query\": \"x\", \"interval\": \"1m\", "
                      "\"model\": \"nope\"}}"));
    snprintf(cmd, sizeof(cmd),
             REPLAY " --data %s --detector %s --start 0 --end 1 2>&1", dir,
             path);
    out = run_cmd(cmd, &status);
    assert_int_not_equal(status, 0);
    contains(out, "field \"model\"");
    free(out);
    test_rmdir(dir);
}

/* --plot in the CSV mode: one panel per file. */
static void test_csv_plot(void **state)
{
    char *dir = test_tmpdir("replay"), path[512], cmd[2048], *out, *svg;
    size_t cap = 1 << 16, n = 0, len;
    char *csv = malloc(cap);
    int status;

    (void)state;
    n += (size_t)snprintf(csv + n, cap - n, "timestamp,value\n");
    for (int i = 0; i < 300; i++)
        n += (size_t)snprintf(csv + n, cap - n, "2024-01-01 %02d:%02d:00,%d\n",
                              i / 60, i % 60, i == 250 ? 500 : 100 + i % 7);
    snprintf(path, sizeof(path), "%s/cpu.csv", dir);
    write_file(path, csv, n);
    free(csv);
    snprintf(cmd, sizeof(cmd),
             REPLAY " --csv %s --model ewma --out %s/out --plot %s/p.svg 2>&1",
             path, dir, dir);
    out = run_cmd(cmd, &status);
    if (status != 0)
        fail_msg("%s: %s", cmd, out);
    free(out);
    snprintf(path, sizeof(path), "%s/p.svg", dir);
    svg = read_file(path, &len);
    contains(svg, "<svg");
    contains(svg, "ewma cpu.csv");
    contains(svg, "fill=\"#e33\""); /* the spike's window */
    free(svg);
    test_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replay_errors),
        cmocka_unit_test(test_csv_plot),
        cmocka_unit_test(test_replay_equals_live),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
