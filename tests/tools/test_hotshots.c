/*
 * A real StatsD client against the real server: starts build/asan/tsdbd
 * with --statsd-udp on a free loopback port and a short flush interval,
 * runs tests/clients/hotshots.js (the npm package hot-shots, pinned in
 * tests/clients/package-lock.json) to send tagged counters, gauges,
 * timers, histograms, distributions and a set over UDP, then reads the
 * stored series back with GET /api/v1/export until a flush after the
 * client's last datagram shows every value, or a deadline passes.
 *
 * What is checked, series by series, against figures written out here
 * (hotshots.js holds the same list): counters scaled back by their sample
 * rate, gauges with deltas, timers as histograms in seconds, histogram
 * and distribution buckets, the set's distinct count in the flush that
 * got its members, dots in names and tag keys turned into underscores,
 * bare tags as "true", no series beyond these, and in /metrics every
 * line accepted.
 *
 * Node.js or the installed package missing is a failure that says to run
 * `make deps`, never a silent pass.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <math.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "http/expfmt.h"
#include "server.h"
#include "testutil.h"

#define TSDBD       "build/asan/tsdbd"
#define CLIENT      "tests/clients/hotshots.js"
#define CLIENT_PKG  "tests/clients/node_modules/hot-shots/package.json"
#define FLUSH       "200ms"
#define DEADLINE_MS 20000
/* Every series whose name starts with hs_, URL-encoded. */
#define EXPORT_PATH "/api/v1/export?match[]=%7B__name__%3D~%22hs_.%2B%22%7D"

/* ---- expected series ---- */

enum check {
    CHECK_LAST, /* the newest sample equals the value */
    CHECK_SET,  /* samples add up to the value, one of them holds it all */
};

struct want {
    char key[160]; /* name{sorted labels}, as key_of() writes it */
    double value;
    enum check check;
    /* What the export showed on the last read. */
    size_t samples;
    int64_t last_t;
    double last, sum, max;
};

struct wants {
    struct want v[64];
    size_t n;
    size_t unknown; /* samples of series not in v */
    char first_unknown[160];
};

static void want(struct wants *w, const char *key, double value,
                 enum check check)
{
    struct want *e = &w->v[w->n++];

    assert_true(w->n <= sizeof(w->v) / sizeof(w->v[0]));
    memset(e, 0, sizeof(*e));
    snprintf(e->key, sizeof(e->key), "%s", key);
    e->value = value;
    e->check = check;
}

/* The default bucket bounds of docs-draft/statsd.md, as `le` prints. */
static const char *const le_text[] = {"0.005", "0.01", "0.025", "0.05",
                                      "0.1",   "0.25", "0.5",   "1",
                                      "2.5",   "5",    "10",    "+Inf"};
static const double le_bound[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                  0.5,   1,    2.5,   5,    10,  INFINITY};

/*
 * A histogram of the values, each divided by scale: NAME_bucket per bound
 * with the cumulative count of values <= bound, NAME_sum, NAME_count.
 * pre and post are the labels sorting before and after le.
 */
static void want_histogram(struct wants *w, const char *name, const char *pre,
                           const char *post, const double *v, size_t n,
                           double scale)
{
    char key[160];
    double sum = 0;

    for (size_t b = 0; b < sizeof(le_bound) / sizeof(le_bound[0]); b++) {
        size_t count = 0;
        for (size_t i = 0; i < n; i++)
            count += v[i] / scale <= le_bound[b];
        snprintf(key, sizeof(key), "%s_bucket{%s,le=\"%s\"%s%s}", name, pre,
                 le_text[b], post[0] ? "," : "", post);
        want(w, key, (double)count, CHECK_LAST);
    }
    for (size_t i = 0; i < n; i++)
        sum += v[i] / scale;
    snprintf(key, sizeof(key), "%s_sum{%s%s%s}", name, pre, post[0] ? "," : "",
             post);
    want(w, key, sum, CHECK_LAST);
    snprintf(key, sizeof(key), "%s_count{%s%s%s}", name, pre,
             post[0] ? "," : "", post);
    want(w, key, (double)n, CHECK_LAST);
}

/* What hotshots.js sends, as the server must store it. */
static void wants_init(struct wants *w)
{
    static const double ms[] = {3, 20, 120, 700, 4000};
    static const double bytes[] = {0.5, 100, 2000};
    static const double batch[] = {1, 1, 3, 8};

    memset(w, 0, sizeof(*w));

    /* 20 of 40 calls sent @0.5, 3 of 12 calls of 250 sent @0.25. */
    want(w, "hs_requests{env=\"ci\",route=\"home\"}", 40, CHECK_LAST);
    want(w, "hs_bytes_sent{env=\"ci\",region=\"eu-west\"}", 3000, CHECK_LAST);
    want(w, "hs_logins{canary=\"true\",env=\"ci\"}", 3, CHECK_LAST);
    want(w, "hs_queue_depth{env=\"ci\",queue=\"jobs\"}", 42, CHECK_LAST);
    want(w, "hs_pool_size{env=\"ci\"}", 10 + 5 - 3, CHECK_LAST);
    want_histogram(w, "hs_db_query", "db=\"main\",env=\"ci\"", "", ms, 5, 1000);
    want_histogram(w, "hs_payload_bytes", "env=\"ci\",kind=\"upload\"", "",
                   bytes, 3, 1);
    want_histogram(w, "hs_batch_size", "env=\"ci\"", "team_name=\"core\"",
                   batch, 4, 1);
    want(w, "hs_users{env=\"ci\",page=\"checkout\"}", 3, CHECK_SET);
}

static int label_cmp(const void *a, const void *b)
{
    return strcmp(((const struct tsdb_label *)a)->name,
                  ((const struct tsdb_label *)b)->name);
}

static void key_of(struct expfmt_sample *s, char *key, size_t size)
{
    size_t len;

    qsort(s->labels + 1, s->nlabels - 1, sizeof(*s->labels), label_cmp);
    len = (size_t)snprintf(key, size, "%s{", s->name);
    for (size_t i = 1; i < s->nlabels && len < size; i++)
        len += (size_t)snprintf(key + len, size - len, "%s%s=\"%s\"",
                                i > 1 ? "," : "", s->labels[i].name,
                                s->labels[i].value);
    if (len < size)
        snprintf(key + len, size - len, "}");
}

static int collect(void *ctx, struct expfmt_sample *s)
{
    struct wants *w = ctx;
    char key[160];

    key_of(s, key, sizeof(key));
    for (size_t i = 0; i < w->n; i++) {
        struct want *e = &w->v[i];
        if (strcmp(e->key, key) != 0)
            continue;
        if (e->samples == 0 || s->timestamp_ms >= e->last_t) {
            e->last_t = s->timestamp_ms;
            e->last = s->value;
        }
        if (e->samples == 0 || s->value > e->max)
            e->max = s->value;
        e->sum += s->value;
        e->samples++;
        return TSDB_OK;
    }
    if (w->unknown++ == 0)
        snprintf(w->first_unknown, sizeof(w->first_unknown), "%s", key);
    return TSDB_OK;
}

static int parse_error(void *ctx, const struct expfmt_error *e)
{
    (void)ctx;
    print_error("export line %llu col %u: %s\n", (unsigned long long)e->line,
                e->column, e->msg);
    fail();
    return TSDB_OK;
}

static bool close_to(double got, double want)
{
    return fabs(got - want) <= 1e-9 * fmax(1, fabs(want));
}

static bool want_met(const struct want *e)
{
    if (e->samples == 0)
        return false;
    if (e->check == CHECK_SET)
        return close_to(e->sum, e->value) && close_to(e->max, e->value);
    return close_to(e->last, e->value);
}

/* Reads an export into w; true when every expected value is there. */
static bool wants_read(struct wants *w, const char *body, size_t len)
{
    struct expfmt_callbacks cb = {collect, NULL, parse_error};
    struct expfmt_parser p;
    bool met = true;

    for (size_t i = 0; i < w->n; i++) {
        struct want *e = &w->v[i];
        e->samples = 0;
        e->sum = e->max = e->last = 0;
    }
    w->unknown = 0;
    assert_int_equal(expfmt_parser_init(&p, EXPFMT_OPENMETRICS, &cb, w),
                     TSDB_OK);
    expfmt_parser_feed(&p, body, len);
    expfmt_parser_finish(&p);
    expfmt_parser_release(&p);
    for (size_t i = 0; i < w->n; i++)
        met = met && want_met(&w->v[i]);
    return met;
}

static void wants_report(const struct wants *w)
{
    for (size_t i = 0; i < w->n; i++) {
        const struct want *e = &w->v[i];
        if (want_met(e))
            continue;
        if (e->samples == 0)
            print_error("missing: %s (want %.17g)\n", e->key, e->value);
        else if (e->check == CHECK_SET)
            print_error("wrong: %s samples add up to %.17g, largest %.17g; "
                        "want %.17g in one flush\n",
                        e->key, e->sum, e->max, e->value);
        else
            print_error("wrong: %s = %.17g at %lld; want %.17g\n", e->key,
                        e->last, (long long)e->last_t, e->value);
    }
}

/* ---- the server and an HTTP GET ---- */

static int64_t now_ms(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* tsdbd with the UDP reader on udp_port and a short flush interval. */
static pid_t start_udp(const char *dir, int port, int udp_port)
{
    static char udp[32];
    const char *extra[] = {"--statsd-udp", udp, "--flush-interval", FLUSH,
                           NULL};

    snprintf(udp, sizeof(udp), "127.0.0.1:%d", udp_port);
    return start(dir, port, extra);
}

/* Waits for /-/ready; fails if the server exits first (a refused flag),
 * then with *pid set to 0 since it was reaped. */
static void wait_ready_or_exit(pid_t *pid, int port)
{
    struct reply r;
    int status;

    for (int i = 0; i < 200; i++) {
        int code = get(port, "/-/ready", &r);
        reply_free(&r);
        if (code == 200)
            return;
        if (waitpid(*pid, &status, WNOHANG) == *pid) {
            *pid = 0;
            fail_msg(TSDBD " exited with status %d before it was ready "
                           "(are --statsd-udp and --flush-interval there?)",
                     WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        }
        nap_ms(50);
    }
    fail_msg(TSDBD " not ready after 10 s");
}

/* ---- the test ---- */

/* Fails, saying what to do, when node or the package is not installed. */
static void need_client(void)
{
    if (system("command -v node >/dev/null 2>&1") != 0)
        fail_msg("node not found: run `make deps` (installs Node.js from "
                 "Debian and the npm packages of tests/clients)");
    if (access(CLIENT_PKG, R_OK) != 0)
        fail_msg(CLIENT_PKG " not found: run `make deps` (npm ci --prefix "
                            "tests/clients)");
}

/* Runs hotshots.js against udp_port; fails unless it exits 0. */
static void run_client(int udp_port)
{
    char cmd[256], line[512];
    FILE *out;
    int status;

    snprintf(cmd, sizeof(cmd), "timeout 30 node %s %d 2>&1", CLIENT, udp_port);
    out = popen(cmd, "r");
    assert_non_null(out);
    while (fgets(line, sizeof(line), out))
        printf("%s", line);
    status = pclose(out);
    if (status != 0)
        fail_msg("`%s` exited with status %d", cmd,
                 WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

/* What a run holds; teardown releases it whether the test passed or not. */
struct fixture {
    char *dir;
    pid_t pid; /* 0 once stopped */
    struct wants w;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    if (!f)
        return -1;
    f->dir = test_tmpdir("hotshots");
    *state = f;
    return f->dir ? 0 : -1;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    int status;

    if (f->pid > 0) {
        kill(f->pid, SIGKILL);
        waitpid(f->pid, &status, 0);
    }
    test_rmdir(f->dir);
    free(f);
    return 0;
}

static void test_hotshots_values_stored(void **state)
{
    struct fixture *f = *state;
    int port = free_port(), udp_port = free_udp_port();
    struct wants *w = &f->w;
    struct reply r;
    bool met = false;
    int64_t until;

    need_client();
    wants_init(w);
    f->pid = start_udp(f->dir, port, udp_port);
    wait_ready_or_exit(&f->pid, port);
    run_client(udp_port);

    /* Counters, gauges and histograms are cumulative: a flush after the
     * last datagram shows the final values, and later flushes repeat
     * them.  Poll for it within a bound. */
    for (until = now_ms() + DEADLINE_MS; !met && now_ms() < until;) {
        nap_ms(200);
        assert_int_equal(get(port, EXPORT_PATH, &r), 200);
        met = wants_read(w, r.body, r.len);
        reply_free(&r);
    }
    if (!met) {
        wants_report(w);
        fail_msg("the stored values did not all arrive within %d ms",
                 DEADLINE_MS);
    }
    if (w->unknown > 0)
        fail_msg("%zu samples of series hotshots.js did not send, the "
                 "first %s",
                 w->unknown, w->first_unknown);

    /* Every line of the client was taken: 20 + 3 + 3 counter lines, 5
     * gauge, 5 timer, 3 histogram, 4 distribution and 4 set lines. */
    assert_int_equal(get(port, "/metrics", &r), 200);
    if (!strstr(r.body, "tsdb_statsd_lines_accepted_total{endpoint=\"udp\"} "
                        "47\n"))
        fail_msg("want 47 UDP lines accepted in /metrics:\n%.3000s", r.body);
    reply_free(&r);
    stop(f->pid);
    f->pid = 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_hotshots_values_stored, setup,
                                        teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
