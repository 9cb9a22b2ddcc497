/*
 * Tests of statsd/udp.c: datagrams sent on loopback become StatsD lines
 * aggregated and flushed as over HTTP (one datagram one body, line numbers
 * per datagram), a datagram near the 64 KiB maximum is read whole, bad
 * lines reach the on_body hook, bad addresses and a port in use are
 * refused with a message, and stop returns at once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "statsd/udp.h"
#include "testutil.h"

/* ---- what a flush emits, and what the hook saw ---- */

struct seen {
    pthread_mutex_t lock; /* the hook runs on the reader thread */
    uint64_t bodies, accepted, rejected;
    char first_reason[STATSD_MAX_REASON];
    char names[64][64];
    double values[64];
    size_t n;
};

static void on_body(void *ctx, int rc, const struct statsd_result *res)
{
    struct seen *w = ctx;

    pthread_mutex_lock(&w->lock);
    w->bodies++;
    if (rc == TSDB_OK) {
        w->accepted += res->accepted;
        w->rejected += res->rejected;
        if (res->nreasons > 0 && !w->first_reason[0])
            snprintf(w->first_reason, sizeof(w->first_reason), "%s",
                     res->reasons[0].reason);
    }
    pthread_mutex_unlock(&w->lock);
}

/* Keeps name{first label value} -> value of each emitted sample. */
static int emit(void *ctx, const struct statsd_sample *x)
{
    struct seen *w = ctx;

    if (w->n == 64)
        return TSDB_OK;
    snprintf(w->names[w->n], sizeof(w->names[0]), "%s%s%s", x->labels[0].value,
             x->nlabels > 1 ? "/" : "",
             x->nlabels > 1 ? x->labels[1].value : "");
    w->values[w->n++] = x->v;
    return TSDB_OK;
}

static double value_of(const struct seen *w, const char *name)
{
    for (size_t i = 0; i < w->n; i++)
        if (strcmp(w->names[i], name) == 0)
            return w->values[i];
    fail_msg("no sample for %s", name);
    return -1;
}

/* ---- helpers ---- */

static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};

    nanosleep(&ts, NULL);
}

static int64_t wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void send_to(int port, const char *p, size_t n)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    int fd = socket(AF_INET, SOCK_DGRAM, 0);

    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(sendto(fd, p, n, 0, (struct sockaddr *)&sa, sizeof(sa)),
                     (ssize_t)n);
    close(fd);
}

/* Waits (up to 5 s) until u has read n datagrams. */
static void wait_datagrams(struct statsd_udp *u, uint64_t n)
{
    struct statsd_udp_stats st;

    for (int i = 0; i < 500; i++) {
        statsd_udp_stats_get(u, &st);
        if (st.datagrams >= n)
            return;
        nap_ms(10);
    }
    fail_msg("only %llu of %llu datagrams read after 5 s",
             (unsigned long long)st.datagrams, (unsigned long long)n);
}

static struct statsd *open_statsd(const char *dir)
{
    struct statsd_options o;
    struct statsd *s;

    statsd_options_init(&o);
    o.dir = dir;
    o.flush_interval_ms = 1000;
    assert_int_equal(statsd_open(&o, NULL, &s), TSDB_OK);
    return s;
}

static struct statsd_udp *start_udp(struct statsd *s, struct seen *w)
{
    struct statsd_udp_options o = {"127.0.0.1:0", on_body, w};
    struct statsd_udp *u;
    char err[256];

    assert_int_equal(statsd_udp_start(s, &o, &u, err, sizeof(err)), TSDB_OK);
    assert_true(statsd_udp_port(u) > 0);
    return u;
}

/* ---- tests ---- */

static void test_udp_datagrams_become_lines(void **state)
{
    char *dir = test_tmpdir("udp");
    struct statsd *s = open_statsd(dir);
    struct seen w = {.lock = PTHREAD_MUTEX_INITIALIZER};
    struct statsd_sink sink = {emit, NULL, &w};
    struct statsd_udp *u = start_udp(s, &w);
    struct statsd_udp_stats st;
    const char *d1 = "hits:1|c|#route:/a\nhits:2|c|#route:/a\n";
    const char *d2 = "temp:20|g\nbad line\ntemp:+2|g";
    const char *d3 = "hits:5|c|@0.5|#route:/a";
    bool flushed;
    (void)state;

    send_to(statsd_udp_port(u), d1, strlen(d1));
    send_to(statsd_udp_port(u), d2, strlen(d2));
    send_to(statsd_udp_port(u), d3, strlen(d3));
    wait_datagrams(u, 3);
    statsd_udp_stats_get(u, &st);
    assert_int_equal(st.bytes, strlen(d1) + strlen(d2) + strlen(d3));
    assert_int_equal(st.refused, 0);
    assert_int_equal(st.receive_errors, 0);

    pthread_mutex_lock(&w.lock);
    assert_int_equal(w.bodies, 3);
    assert_int_equal(w.accepted, 5);
    assert_int_equal(w.rejected, 1);
    assert_string_equal(w.first_reason, "line 2: no ':' after the metric name");
    pthread_mutex_unlock(&w.lock);

    /* The same aggregation as HTTP: a flush emits the totals. */
    assert_int_equal(statsd_flush(s, wall_ms() + 1000, &sink, &flushed),
                     TSDB_OK);
    assert_true(flushed);
    assert_true(value_of(&w, "hits//a") == 13.0);
    assert_true(value_of(&w, "temp") == 22.0);
    statsd_udp_stop(u);
    statsd_close(s);
    test_rmdir(dir);
}

static void test_udp_reads_a_datagram_whole(void **state)
{
    char *dir = test_tmpdir("udp-big");
    struct statsd *s = open_statsd(dir);
    struct seen w = {.lock = PTHREAD_MUTEX_INITIALIZER};
    struct statsd_udp *u = start_udp(s, &w);
    size_t n = 0;
    char *big = malloc(65507);
    (void)state;

    /* 65507 bytes, the largest IPv4 UDP payload: 10-byte lines. */
    while (n + 10 <= 65507) {
        memcpy(big + n, "big:1|c\n\n\n", 10);
        n += 10;
    }
    memset(big + n, '\n', 65507 - n);
    send_to(statsd_udp_port(u), big, 65507);
    wait_datagrams(u, 1);
    pthread_mutex_lock(&w.lock);
    assert_int_equal(w.accepted, 6550);
    assert_int_equal(w.rejected, 0);
    pthread_mutex_unlock(&w.lock);
    statsd_udp_stop(u);
    statsd_close(s);
    free(big);
    test_rmdir(dir);
}

static void test_udp_refuses_bad_addresses(void **state)
{
    static const char *const bad[] = {"8125", "localhost:8125",
                                      "127.0.0.1:70000", "127.0.0.1:"};
    char *dir = test_tmpdir("udp-bad");
    struct statsd *s = open_statsd(dir);
    struct seen w = {.lock = PTHREAD_MUTEX_INITIALIZER};
    struct statsd_udp_options o = {NULL, on_body, &w};
    struct statsd_udp *u = start_udp(s, &w), *v;
    char err[256], busy[32];
    (void)state;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        o.listen = bad[i];
        assert_int_equal(statsd_udp_start(s, &o, &v, err, sizeof(err)),
                         TSDB_EINVAL);
        assert_non_null(strstr(err, bad[i]));
    }

    /* The port of the running reader is in use. */
    snprintf(busy, sizeof(busy), "127.0.0.1:%d", statsd_udp_port(u));
    o.listen = busy;
    assert_int_equal(statsd_udp_start(s, &o, &v, err, sizeof(err)), TSDB_EIO);
    assert_non_null(strstr(err, "cannot listen for StatsD on udp"));
    statsd_udp_stop(u);
    statsd_udp_stop(NULL);
    statsd_close(s);
    test_rmdir(dir);
}

static void test_udp_stop_is_prompt(void **state)
{
    char *dir = test_tmpdir("udp-stop");
    struct statsd *s = open_statsd(dir);
    struct seen w = {.lock = PTHREAD_MUTEX_INITIALIZER};
    struct statsd_udp *u = start_udp(s, &w);
    struct timespec a, b;
    (void)state;

    nap_ms(20);
    clock_gettime(CLOCK_MONOTONIC, &a);
    statsd_udp_stop(u);
    clock_gettime(CLOCK_MONOTONIC, &b);
    assert_true(
        (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000 < 200);
    statsd_close(s);
    test_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_udp_datagrams_become_lines),
        cmocka_unit_test(test_udp_reads_a_datagram_whole),
        cmocka_unit_test(test_udp_refuses_bad_addresses),
        cmocka_unit_test(test_udp_stop_is_prompt),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
