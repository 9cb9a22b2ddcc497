/*
 * Crash safety of the write path (wal.c, appender.c, store.c and recovery
 * in db.c together): a child process appends and reports each
 * acknowledged batch through a pipe; the parent kills it with SIGKILL at a
 * random moment (during appends, flushes, checkpoints, or its own
 * recovery), reopens the folder, and checks that every acknowledged sample
 * is there exactly once with its value, that nothing else is garbage, and
 * that the database checks clean.  Then the next round writes on top.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"
#include "tsdb/check.h"
#include "tsdb/db.h"

#define NSERIES 40
#define ROUNDS  12
#define STEP_MS 1000

static double value_of(int s, int64_t t)
{
    return (double)((int64_t)s * 1000003 + t) / 8.0;
}

static void options(struct tsdb_options *o, const char *dir)
{
    tsdb_options_init(o);
    o->dir = dir;
    o->chunk_samples = 30;     /* seal and merge often */
    o->flush_interval_ms = 20; /* flush often */
    o->checkpoint_interval_ms = 100;
}

static void series_labels(int s, char *buf, size_t len, struct tsdb_label *l)
{
    snprintf(buf, len, "%d", s);
    l[0] = (struct tsdb_label){"__name__", "crash_test"};
    l[1] = (struct tsdb_label){"s", buf};
}

/* The writer: never returns; reports each acknowledged timestamp. */
static void writer(const char *dir, int64_t t, int fd)
{
    struct tsdb_options o;
    struct tsdb *db;
    struct tsdb_appender *a;
    uint64_t refs[NSERIES];
    char err[128], buf[NSERIES][16];

    options(&o, dir);
    if (tsdb_open(&o, &db) != TSDB_OK)
        _exit(2);
    a = tsdb_appender_new(db);
    for (int s = 0; s < NSERIES; s++) {
        struct tsdb_label l[2];
        series_labels(s, buf[s], sizeof(buf[s]), l);
        if (tsdb_appender_series(a, l, 2, &refs[s], err, sizeof(err)))
            _exit(3);
    }
    for (;; t += STEP_MS) {
        for (int s = 0; s < NSERIES; s++)
            tsdb_appender_add(a, refs[s], t, value_of(s, t));
        if (tsdb_appender_commit(a, NULL) != TSDB_OK)
            _exit(4);
        if (write(fd, &t, sizeof(t)) != sizeof(t))
            _exit(5);
        /* A short pause keeps each round's data small enough to verify
         * quickly, while kills still land anywhere in the write path. */
        usleep(100);
    }
}

struct acked {
    int64_t *t;
    size_t n;
    size_t cap;
};

static void push_ack(struct acked *ack, int64_t t)
{
    if (ack->n == ack->cap) {
        ack->cap = ack->cap ? ack->cap * 2 : 1024;
        ack->t = realloc(ack->t, ack->cap * sizeof(*ack->t));
        assert_non_null(ack->t);
    }
    ack->t[ack->n++] = t;
}

static void read_acks(int fd, struct acked *ack)
{
    int64_t t;
    ssize_t got;

    while ((got = read(fd, &t, sizeof(t))) == sizeof(t))
        push_ack(ack, t);
}

/* Reads acknowledgements until the delay d has passed, so that the
 * writer never blocks on a full pipe. */
static void drain_for(int fd, const struct timespec *d, struct acked *ack)
{
    struct timespec start, now;
    int64_t t;

    clock_gettime(CLOCK_MONOTONIC, &start);
    fcntl(fd, F_SETFL, O_NONBLOCK);
    for (;;) {
        struct timespec nap = {0, 2000000};
        clock_gettime(CLOCK_MONOTONIC, &now);
        if ((now.tv_sec - start.tv_sec) * 1000000000L +
                (now.tv_nsec - start.tv_nsec) >=
            d->tv_sec * 1000000000L + d->tv_nsec)
            break;
        while (read(fd, &t, sizeof(t)) == sizeof(t))
            push_ack(ack, t);
        nanosleep(&nap, NULL);
    }
    fcntl(fd, F_SETFL, 0);
}

/* Every acknowledged timestamp once per series, values exact, ascending. */
static void verify(const char *dir, const struct acked *ack)
{
    struct tsdb_options o;
    struct tsdb *db;
    struct tsdb_matcher m;
    struct tsdb_query *q;
    struct tsdb_check_report r;
    const struct tsdb_labels *ls;
    char err[64];
    int series = 0;

    options(&o, dir);
    assert_int_equal(tsdb_open(&o, &db), TSDB_OK);
    assert_int_equal(tsdb_matcher_init(&m, TSDB_MATCH_EQ, "__name__",
                                       "crash_test", err, sizeof(err)),
                     TSDB_OK);
    assert_int_equal(tsdb_query_open(db, &m, 1, INT64_MIN, INT64_MAX, &q),
                     TSDB_OK);
    while (tsdb_query_next_series(q, &ls, NULL) == TSDB_OK) {
        int s = atoi(tsdb_labels_get(ls, "s"));
        int64_t prev = INT64_MIN;
        const int64_t *ts;
        const double *vs;
        size_t n, k = 0;

        while (tsdb_query_next_batch(q, &ts, &vs, &n) == TSDB_OK && n > 0) {
            for (size_t i = 0; i < n; i++) {
                if (ts[i] <= prev)
                    fail_msg("series %d: %lld after %lld", s, (long long)ts[i],
                             (long long)prev);
                assert_true(vs[i] == value_of(s, ts[i]));
                while (k < ack->n && ack->t[k] < ts[i])
                    fail_msg("series %d lost acknowledged sample at %lld", s,
                             (long long)ack->t[k]);
                if (k < ack->n && ack->t[k] == ts[i])
                    k++;
                prev = ts[i];
            }
        }
        if (k < ack->n)
            fail_msg("series %d lost acknowledged sample at %lld", s,
                     (long long)ack->t[k]);
        series++;
    }
    assert_true(ack->n == 0 || series == NSERIES);
    tsdb_query_close(q);
    tsdb_matcher_release(&m);
    assert_int_equal(tsdb_check(db, &r), TSDB_OK);
    for (uint64_t i = 0; i < r.problems && i < TSDB_CHECK_MAX_PROBLEMS; i++)
        print_error("check: %s\n", r.text[i]);
    assert_int_equal(r.problems, 0);
    assert_int_equal(tsdb_close(db), TSDB_OK);
}

static void test_crash_kill9_loses_no_acknowledged_sample(void **state)
{
    char *dir = test_tmpdir("crash");
    struct acked ack = {0};
    struct test_rng rng;
    (void)state;

    test_rng_init(&rng, "kill9", 424242);
    for (int round = 0; round < ROUNDS; round++) {
        int64_t base = INT64_C(1000000000000) + round * INT64_C(100000000);
        long delay_ms = 30 + (long)test_rng_below(&rng, 700);
        struct timespec d = {delay_ms / 1000, (delay_ms % 1000) * 1000000};
        size_t before = ack.n;
        int fds[2], status;
        pid_t pid;

        assert_int_equal(pipe(fds), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            writer(dir, base, fds[1]);
        }
        close(fds[1]);
        drain_for(fds[0], &d, &ack);
        kill(pid, SIGKILL);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        read_acks(fds[0], &ack);
        close(fds[0]);
        printf("round %d: killed after %ld ms, %zu batches acknowledged\n",
               round, delay_ms, ack.n - before);
        verify(dir, &ack);
    }
    assert_true(ack.n > 0);
    free(ack.t);
    test_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crash_kill9_loses_no_acknowledged_sample),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
