/*
 * Tests of statsd/statsd.c (and statsd/sink.c): ingest results, flush
 * alignment, restarts, and durability against the storage engine.
 *
 * The crash tests run a writer in a child process over a real data folder
 * (tsdb and statsd side by side, as tsdbd has them):
 * - at every named crash point (statsd_fault_hook), the child ends itself
 *   there, and the parent recovers and checks that the counter equals
 *   the acknowledged increments exactly, that every flush time is stored,
 *   and that the re-emitted flush met only duplicates, never conflicts;
 * - at random moments, the parent kills the child with SIGKILL while it
 *   ingests and flushes, then checks the same after recovery, round after
 *   round on the same folder.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "statsd/sink.h"
#include "statsd/statsd.h"
#include "testutil.h"
#include "tsdb/bytes.h"

/* ---- a data folder with both engines ---- */

struct env {
    const char *dir;
    struct tsdb *db;
    struct statsd_tsdb_sink ts;
    struct statsd_sink sink;
    struct statsd *s;
};

static void env_options(struct statsd_options *o, const char *dir)
{
    statsd_options_init(o);
    o->dir = dir;
    o->agg.idle_ttl_ms = 0;
}

/* Opens tsdb then statsd (recovery emits into tsdb); returns statsd's. */
static int env_open(struct env *e, const char *dir)
{
    struct tsdb_options to;
    struct statsd_options so;
    int rc;

    memset(e, 0, sizeof(*e));
    e->dir = dir;
    tsdb_options_init(&to);
    to.dir = dir;
    rc = tsdb_open(&to, &e->db);
    if (rc != TSDB_OK)
        return rc;
    rc = statsd_tsdb_sink_init(&e->ts, e->db, &e->sink);
    if (rc != TSDB_OK)
        return rc;
    env_options(&so, dir);
    return statsd_open(&so, &e->sink, &e->s);
}

static void env_close(struct env *e)
{
    statsd_close(e->s);
    statsd_tsdb_sink_release(&e->ts);
    assert_int_equal(tsdb_close(e->db), TSDB_OK);
}

struct points {
    int64_t t[4096];
    double v[4096];
    size_t n;
};

/* Every sample of the series named name (one series expected). */
static void read_series(struct tsdb *db, const char *name, struct points *p)
{
    struct tsdb_matcher m;
    struct tsdb_query *q;
    const struct tsdb_labels *ls;
    char err[64];
    int series = 0;

    p->n = 0;
    assert_int_equal(tsdb_matcher_init(&m, TSDB_MATCH_EQ, "__name__", name, err,
                                       sizeof(err)),
                     TSDB_OK);
    assert_int_equal(tsdb_query_open(db, &m, 1, INT64_MIN, INT64_MAX, &q),
                     TSDB_OK);
    while (tsdb_query_next_series(q, &ls, NULL) == TSDB_OK) {
        const int64_t *ts;
        const double *vs;
        size_t n;

        series++;
        while (tsdb_query_next_batch(q, &ts, &vs, &n) == TSDB_OK && n > 0)
            for (size_t i = 0; i < n; i++) {
                assert_true(p->n < 4096);
                p->t[p->n] = ts[i];
                p->v[p->n++] = vs[i];
            }
    }
    assert_true(series <= 1);
    tsdb_query_close(q);
    tsdb_matcher_release(&m);
}

/* A counter's stored samples never go down. */
static void assert_monotonic(const struct points *p, const char *name)
{
    for (size_t i = 1; i < p->n; i++)
        if (p->v[i] < p->v[i - 1])
            fail_msg("%s went down at %lld: %g after %g", name,
                     (long long)p->t[i], p->v[i], p->v[i - 1]);
}

static bool has_time(const struct points *p, int64_t t)
{
    for (size_t i = 0; i < p->n; i++)
        if (p->t[i] == t)
            return true;
    return false;
}

/* ---- a sink that keeps the last value per series name ---- */

struct last {
    char name[16][64];
    double v[16];
    int64_t t[16];
    size_t n;
    uint64_t samples, commits;
    int fail_commit_at; /* commit number that fails; 0 = none */
};

static int last_emit(void *ctx, const struct statsd_sample *s)
{
    struct last *l = ctx;
    size_t i;

    l->samples++;
    for (i = 0; i < l->n; i++)
        if (strcmp(l->name[i], s->labels[0].value) == 0)
            break;
    if (i == l->n) {
        if (l->n == 16)
            return TSDB_OK;
        snprintf(l->name[l->n++], sizeof(l->name[0]), "%s", s->labels[0].value);
    }
    l->v[i] = s->v;
    l->t[i] = s->t;
    return TSDB_OK;
}

static int last_commit(void *ctx)
{
    struct last *l = ctx;

    l->commits++;
    return (int)l->commits == l->fail_commit_at ? TSDB_EIO : TSDB_OK;
}

static double last_value(const struct last *l, const char *name)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->name[i], name) == 0)
            return l->v[i];
    fail_msg("no sample for %s", name);
    return NAN;
}

static struct statsd *open_plain(const char *dir, struct last *l)
{
    struct statsd_options o;
    struct statsd_sink sink = {last_emit, last_commit, l};
    struct statsd *s;

    env_options(&o, dir);
    assert_int_equal(statsd_open(&o, &sink, &s), TSDB_OK);
    return s;
}

static void ingest_ok(struct statsd *s, const char *body, int64_t now)
{
    struct statsd_result r;

    assert_int_equal(statsd_ingest(s, body, strlen(body), now, &r), TSDB_OK);
    assert_int_equal(r.rejected, 0);
}

static bool flush_at(struct statsd *s, int64_t now, struct last *l)
{
    struct statsd_sink sink = {last_emit, last_commit, l};
    bool flushed;

    assert_int_equal(statsd_flush(s, now, &sink, &flushed), TSDB_OK);
    return flushed;
}

static size_t count_files(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t n = 0;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL)
        n += strstr(e->d_name, ".wal") != NULL;
    closedir(d);
    return n;
}

/* ---- ingest results, flush timing, restarts ---- */

static void test_statsd_ingest_result(void **state)
{
    char *dir = test_tmpdir("statsd-result");
    struct last l = {0};
    struct statsd *s = open_plain(dir, &l);
    struct statsd_result *r = calloc(1, sizeof(*r));
    const char body[] = "a:1|c\nbad\nb:1|g\n\na:1|g\n_e{1,1}:a|b\nk:1|c:2|c";
    char *big;

    (void)state;
    assert_int_equal(statsd_ingest(s, body, sizeof(body) - 1, 0, r), TSDB_OK);
    assert_int_equal(r->lines, 6);
    assert_int_equal(r->accepted, 3); /* lines 1, 3, 7 */
    assert_int_equal(r->rejected, 3);
    assert_int_equal(r->nreasons, 3);
    assert_int_equal(r->reasons[0].line, 2);
    assert_string_equal(r->reasons[0].reason,
                        "line 2: no ':' after the metric name");
    assert_int_equal(r->reasons[1].line, 5);
    assert_string_equal(r->reasons[1].reason,
                        "line 5: 'a' is a counter (c); this line sends it as "
                        "|g");
    assert_int_equal(r->reasons[2].line, 6);

    /* A multi-typed line with refused parts counts once.  (One name keeps
     * one type, so in this form only repeated types can all pass.) */
    assert_int_equal(statsd_ingest(s, "k:1|c:2|g:3|g", 13, 0, r), TSDB_OK);
    assert_int_equal(r->lines, 1);
    assert_int_equal(r->rejected, 1);
    assert_int_equal(r->nreasons, 1);

    /* Reasons are capped, counts are not. */
    big = malloc(100 * 4 + 1);
    for (int i = 0; i < 100; i++)
        memcpy(big + i * 4, "xx\n\n", 4);
    assert_int_equal(statsd_ingest(s, big, 400, 0, r), TSDB_OK);
    assert_int_equal(r->lines, 100);
    assert_int_equal(r->rejected, 100);
    assert_int_equal(r->nreasons, STATSD_MAX_REJECTS);
    assert_int_equal(r->reasons[63].line, 127);
    free(big);

    /* A body over the limit is refused whole. */
    big = calloc(STATSD_MAX_BODY + 1, 1);
    assert_int_equal(statsd_ingest(s, big, STATSD_MAX_BODY + 1, 0, r),
                     TSDB_ELIMIT);
    assert_int_equal(r->lines, 0);
    free(big);

    assert_true(flush_at(s, 10000, &l));
    assert_true(last_value(&l, "a") == 1);
    statsd_close(s);
    free(r);
    test_rmdir(dir);
}

static void test_statsd_flush_alignment(void **state)
{
    char *dir = test_tmpdir("statsd-align");
    struct last l = {0};
    struct statsd *s = open_plain(dir, &l);

    (void)state;
    ingest_ok(s, "a:1|c", 12000);
    assert_true(flush_at(s, 12345, &l));
    assert_int_equal(l.t[0], 10000);
    assert_false(flush_at(s, 19999, &l)); /* same slot: not due */
    assert_true(flush_at(s, 20001, &l));
    assert_int_equal(l.t[0], 20000);
    assert_true(flush_at(s, 95000, &l)); /* a skipped slot: one flush */
    assert_int_equal(l.t[0], 90000);
    assert_int_equal(l.commits, 3);
    statsd_close(s);
    test_rmdir(dir);
}

static void test_statsd_restart_recovers_state(void **state)
{
    char *dir = test_tmpdir("statsd-restart");
    char jdir[512];
    struct last l = {0};
    struct statsd *s = open_plain(dir, &l);
    struct statsd_stats st;

    (void)state;
    snprintf(jdir, sizeof(jdir), "%s/statsd/journal", dir);

    /* Not flushed at all: the journal alone brings it back. */
    ingest_ok(s, "c:1|c|@0.5\nt:20|ms\ng:5|g\nu:a|s\nu:b|s", 1000);
    statsd_close(s);
    s = open_plain(dir, &l);
    assert_int_equal(l.samples, 0); /* nothing was due to re-emit */
    assert_true(flush_at(s, 10000, &l));
    assert_true(last_value(&l, "c") == 2);
    assert_true(last_value(&l, "t_count") == 1);
    assert_true(last_value(&l, "u") == 2);

    /* Flushed and checkpointed, then more: snapshot plus journal. */
    ingest_ok(s, "c:3|c\ng:+1|g\nu:c|s", 11000);
    for (int i = 0; i < 5; i++)
        assert_true(flush_at(s, 20000 + i * 10000, &l));
    statsd_stats_get(s, &st);
    assert_int_equal(st.checkpoints, 6);
    assert_int_equal(st.series, 4);
    assert_true(count_files(jdir) <= 2); /* old segments dropped */
    ingest_ok(s, "c:10|c\nu:z|s", 61000);
    statsd_close(s);

    memset(&l, 0, sizeof(l));
    s = open_plain(dir, &l);
    assert_true(flush_at(s, 70000, &l));
    assert_true(last_value(&l, "c") == 15);
    assert_true(last_value(&l, "g") == 6);
    assert_true(last_value(&l, "u") == 1); /* this interval's members */
    assert_true(last_value(&l, "t_sum") == 0.02);
    statsd_close(s);
    test_rmdir(dir);
}

static void test_statsd_commit_failure_recovered(void **state)
{
    char *dir = test_tmpdir("statsd-stuck");
    struct last l = {.fail_commit_at = 2};
    struct statsd_sink sink = {last_emit, last_commit, &l};
    struct statsd *s = open_plain(dir, &l);
    struct statsd_stats st;
    bool flushed;

    (void)state;
    ingest_ok(s, "c:1|c", 1000);
    assert_true(flush_at(s, 10000, &l));
    ingest_ok(s, "c:1|c", 11000);
    assert_int_equal(statsd_flush(s, 20000, &sink, &flushed), TSDB_EIO);
    assert_false(flushed);
    ingest_ok(s, "c:1|c", 21000);
    assert_true(flush_at(s, 30000, &l));
    statsd_stats_get(s, &st);
    assert_true(st.stuck);
    assert_int_equal(st.checkpoints, 1); /* none after the failure */
    assert_int_equal(st.flush_errors, 1);
    statsd_close(s);

    /* Recovery emits flushes 2 and 3 again, at their own times. */
    memset(&l, 0, sizeof(l));
    s = open_plain(dir, &l);
    assert_int_equal(l.commits, 2);
    assert_true(last_value(&l, "c") == 3);
    assert_int_equal(l.t[0], 30000);
    assert_false(flush_at(s, 30000, &l));
    assert_true(flush_at(s, 40000, &l));
    statsd_stats_get(s, &st);
    assert_false(st.stuck);
    assert_int_equal(st.checkpoints, 1);
    statsd_close(s);
    test_rmdir(dir);
}

/* The newest file with the given suffix in dir, into path. */
static void newest(const char *dir, char *path, size_t cap, int back)
{
    char names[64][256];
    size_t n = 0;
    DIR *d = opendir(dir);
    struct dirent *e;

    while ((e = readdir(d)) != NULL)
        if (strstr(e->d_name, ".wal") && n < 64)
            snprintf(names[n++], sizeof(names[0]), "%s", e->d_name);
    closedir(d);
    assert_true(n > (size_t)back);
    qsort(names, n, sizeof(names[0]),
          (int (*)(const void *, const void *))strcmp);
    snprintf(path, cap, "%s/%s", dir, names[n - 1 - back]);
}

static void test_statsd_damaged_files(void **state)
{
    char *dir = test_tmpdir("statsd-damaged");
    char jdir[512], path[1024];
    struct last l = {0};
    struct statsd *s = open_plain(dir, &l);
    struct statsd_options o;
    int fd;

    (void)state;
    snprintf(jdir, sizeof(jdir), "%s/statsd/journal", dir);
    ingest_ok(s, "c:1|c", 1000);
    assert_true(flush_at(s, 10000, &l));
    ingest_ok(s, "c:2|c", 11000);
    statsd_close(s);

    /* A torn tail on the last segment is cut: opens, nothing lost.  The
     * flush leaves its marker first in a segment; the next open starts
     * another, where "c:4" goes. */
    newest(jdir, path, sizeof(path), 0);
    fd = open(path, O_WRONLY | O_APPEND);
    assert_int_equal(write(fd, "\x10\x00\x00\x30garbage", 11), 11);
    close(fd);
    memset(&l, 0, sizeof(l));
    s = open_plain(dir, &l);
    assert_true(flush_at(s, 20000, &l));
    assert_true(last_value(&l, "c") == 3);
    statsd_close(s);
    s = open_plain(dir, &l);
    ingest_ok(s, "c:4|c", 21000);
    statsd_close(s);

    /* A flipped byte in a segment that is not the last: refused. */
    newest(jdir, path, sizeof(path), 1);
    fd = open(path, O_RDWR);
    assert_int_equal(pwrite(fd, "\xff", 1, 30), 1);
    close(fd);
    env_options(&o, dir);
    assert_int_equal(statsd_open(&o, NULL, &s), TSDB_ECORRUPT);

    /* A snapshot whose flush marker is gone: refused, not half-loaded. */
    unlink(path);
    assert_int_equal(statsd_open(&o, NULL, &s), TSDB_ECORRUPT);
    test_rmdir(dir);
}

/* ---- concurrency ---- */

struct shared {
    struct statsd *s;
    struct last l;
    volatile bool stop;
    int64_t clock;
    pthread_mutex_t clock_lock;
};

static int64_t tick(struct shared *sh, int64_t step)
{
    int64_t t;

    pthread_mutex_lock(&sh->clock_lock);
    sh->clock += step;
    t = sh->clock;
    pthread_mutex_unlock(&sh->clock_lock);
    return t;
}

static void *ingester(void *arg)
{
    struct shared *sh = arg;

    for (int i = 0; i < 300; i++)
        ingest_ok(sh->s, "cc:1|c\nhh:5|ms|@0.5\nss:x|s", tick(sh, 1));
    return NULL;
}

static void *flusher(void *arg)
{
    struct shared *sh = arg;
    struct statsd_sink sink = {last_emit, last_commit, &sh->l};

    while (!sh->stop) {
        assert_int_equal(statsd_flush(sh->s, tick(sh, 0), &sink, NULL),
                         TSDB_OK);
        usleep(200);
    }
    return NULL;
}

static void test_statsd_concurrent_ingest_and_flush(void **state)
{
    char *dir = test_tmpdir("statsd-threads");
    struct shared sh = {.clock = 0};
    pthread_t in[4], fl;
    struct statsd_options o;

    (void)state;
    pthread_mutex_init(&sh.clock_lock, NULL);
    env_options(&o, dir);
    o.flush_interval_ms = 50;
    assert_int_equal(statsd_open(&o, NULL, &sh.s), TSDB_OK);
    pthread_create(&fl, NULL, flusher, &sh);
    for (int i = 0; i < 4; i++)
        pthread_create(&in[i], NULL, ingester, &sh);
    for (int i = 0; i < 4; i++)
        pthread_join(in[i], NULL);
    sh.stop = true;
    pthread_join(fl, NULL);
    assert_true(flush_at(sh.s, tick(&sh, 1000), &sh.l));
    assert_true(last_value(&sh.l, "cc") == 1200);
    assert_true(last_value(&sh.l, "hh_count") == 2400);
    statsd_close(sh.s);

    /* And the same after a restart. */
    memset(&sh.l, 0, sizeof(sh.l));
    assert_int_equal(statsd_open(&o, NULL, &sh.s), TSDB_OK);
    assert_true(flush_at(sh.s, tick(&sh, 1000), &sh.l));
    assert_true(last_value(&sh.l, "cc") == 1200);
    statsd_close(sh.s);
    pthread_mutex_destroy(&sh.clock_lock);
    test_rmdir(dir);
}

/* ---- crash points ---- */

static const char *crash_point;
static int crash_after; /* occurrences of crash_point to let pass */

static void crash_hook(const char *point)
{
    if (strcmp(point, crash_point) == 0 && crash_after-- == 0)
        _exit(0); /* as abrupt as SIGKILL: no flush, no close */
}

/* Child: three rounds of three increments, each round then a flush. */
static void crash_child(const char *dir, int fd)
{
    struct env e;
    int64_t acked = 0;

    if (env_open(&e, dir) != TSDB_OK)
        _exit(2);
    statsd_fault_hook = crash_hook;
    for (int round = 1; round <= 3; round++) {
        for (int i = 0; i < 3; i++) {
            if (statsd_ingest(e.s, "ctr:1|c\nlat:3|ms", 16,
                              round * 10000 - 5000 + i, NULL) != TSDB_OK)
                _exit(3);
            acked++;
            if (write(fd, &acked, sizeof(acked)) != sizeof(acked))
                _exit(4);
        }
        if (statsd_flush(e.s, round * 10000, &e.sink, NULL) != TSDB_OK)
            _exit(5);
    }
    _exit(1); /* the crash point was never reached */
}

static void crash_at(const char *point, int after)
{
    char *dir = test_tmpdir("statsd-crashpt");
    int fds[2], status, flushes;
    int64_t acked = 0, v;
    static struct points p;
    struct env e;
    pid_t pid;

    assert_int_equal(pipe(fds), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        crash_point = point;
        crash_after = after;
        crash_child(dir, fds[1]);
    }
    close(fds[1]);
    while (read(fds[0], &v, sizeof(v)) == sizeof(v))
        acked = v;
    close(fds[0]);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) != 0)
        fail_msg("%s #%d: child exit %d", point, after, WEXITSTATUS(status));

    /* What the child got through before the crash point. */
    if (strcmp(point, "ingest-written") == 0) {
        assert_int_equal(acked, after);
        acked++; /* journalled, though not acknowledged */
        flushes = after / 3;
    } else {
        assert_int_equal(acked, 3 * (after + 1));
        flushes = after + 1; /* the last one at least has its marker */
    }

    /* Recovery, then a flush much later: the counter holds exactly the
     * journalled increments; a flush emitted again met duplicates only. */
    assert_int_equal(env_open(&e, dir), TSDB_OK);
    assert_int_equal(e.ts.total.conflicts, 0);
    assert_int_equal(e.ts.total.out_of_order, 0);
    if (strcmp(point, "flush-committed") == 0 ||
        strcmp(point, "snapshot-partial") == 0)
        assert_true(e.ts.total.duplicates > 0);
    if (strcmp(point, "flush-marker") == 0 ||
        strcmp(point, "flush-emitted") == 0)
        assert_true(e.ts.total.accepted > 0);
    assert_int_equal(statsd_flush(e.s, 100000, &e.sink, NULL), TSDB_OK);
    read_series(e.db, "ctr", &p);
    assert_monotonic(&p, "ctr");
    assert_int_equal(p.n, flushes + 1);
    if (p.v[p.n - 1] != (double)acked)
        fail_msg("%s #%d: counter %g, journalled %lld", point, after,
                 p.v[p.n - 1], (long long)acked);

    /* Every flush that wrote its marker is stored, at its own time. */
    for (int k = 1; k <= flushes; k++)
        if (!has_time(&p, k * 10000))
            fail_msg("%s #%d: no sample at %d", point, after, k * 10000);
    read_series(e.db, "lat_count", &p);
    assert_true(p.v[p.n - 1] == (double)acked);
    env_close(&e);
    test_rmdir(dir);
}

static void test_statsd_crash_points(void **state)
{
    static const char *const points[] = {
        "ingest-written",  "flush-marker",     "flush-emitted",
        "flush-committed", "snapshot-partial", "snapshot-written",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(points) / sizeof(points[0]); i++)
        for (int after = 0; after < (i == 0 ? 9 : 3); after++)
            crash_at(points[i], after);
}

/* ---- SIGKILL at random moments ---- */

#define KILL_ROUNDS 30

/* What the child reports around each body (the attempt, then the ack)
 * and around each flush (where the kill landed, for the log). */
enum { MSG_TRY, MSG_ACK, MSG_FLUSH, MSG_FLUSHED };

struct msg {
    int32_t kind;
    int32_t pad;
    double ctr;   /* counter increment of the body */
    double cnt;   /* histogram count increment */
    double gauge; /* the gauge value it sets */
};

static void report(int fd, const struct msg *m)
{
    if (write(fd, m, sizeof(*m)) != (ssize_t)sizeof(*m))
        _exit(5);
}

/* The writer: never returns.  Times run from t0 in 1-2 s steps, with a
 * flush attempt every fourth body (due about every seventh). */
static void kill_child(const char *dir, int64_t t0, uint64_t seed, int fd)
{
    struct test_rng rng = {seed ? seed : 1};
    struct env e;
    char body[128];
    int64_t t = t0;

    if (env_open(&e, dir) != TSDB_OK)
        _exit(2);
    for (int64_t i = 0;; i++) {
        int d = 1 + (int)test_rng_below(&rng, 9);
        bool half = test_rng_below(&rng, 2) == 0;
        struct msg m = {MSG_TRY, 0, half ? d * 2.0 : d, 4.0, (double)i};
        struct msg f = {MSG_FLUSH, 0, 0, 0, 0};
        int len =
            snprintf(body, sizeof(body),
                     "ctr:%d|c%s\nlat:%d|ms|@0.25\ngg:%lld|g\nu:%lld|s", d,
                     half ? "|@0.5" : "", d, (long long)i, (long long)i);

        report(fd, &m);
        if (statsd_ingest(e.s, body, (size_t)len, t, NULL) != TSDB_OK)
            _exit(3);
        m.kind = MSG_ACK;
        report(fd, &m);
        t += 1000 + (int64_t)test_rng_below(&rng, 1000);
        if (i % 4 != 3)
            continue;
        report(fd, &f);
        if (statsd_flush(e.s, t, &e.sink, NULL) != TSDB_OK)
            _exit(4);
        f.kind = MSG_FLUSHED;
        report(fd, &f);
    }
}

struct tally {
    double ctr, cnt, gauge; /* acknowledged: sums, last gauge */
    struct msg pending;     /* attempted, not acknowledged */
    bool has_pending;
    bool in_flush; /* a flush had begun and not returned */
};

static void take(struct tally *t, const struct msg *m)
{
    if (m->kind == MSG_FLUSH || m->kind == MSG_FLUSHED) {
        t->in_flush = m->kind == MSG_FLUSH;
        return;
    }
    if (m->kind == MSG_TRY) {
        t->pending = *m;
        t->has_pending = true;
        return;
    }
    t->ctr += m->ctr;
    t->cnt += m->cnt;
    t->gauge = m->gauge;
    t->has_pending = false;
}

/* Reads reports for delay_ms, so that the child never blocks on a full
 * pipe, then kills it and reads the rest. */
static void run_and_kill(int fd, pid_t pid, long delay_ms, struct tally *t)
{
    struct timespec start, now, nap = {0, 1000000};
    struct msg m;
    int status;

    clock_gettime(CLOCK_MONOTONIC, &start);
    fcntl(fd, F_SETFL, O_NONBLOCK);
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        if ((now.tv_sec - start.tv_sec) * 1000 +
                (now.tv_nsec - start.tv_nsec) / 1000000 >=
            delay_ms)
            break;
        while (read(fd, &m, sizeof(m)) == (ssize_t)sizeof(m))
            take(t, &m);
        nanosleep(&nap, NULL);
    }
    kill(pid, SIGKILL);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFSIGNALED(status))
        fail_msg("writer ended by itself, exit %d", WEXITSTATUS(status));
    fcntl(fd, F_SETFL, 0);
    while (read(fd, &m, sizeof(m)) == (ssize_t)sizeof(m))
        take(t, &m);
}

static double last_of(struct tsdb *db, const char *name, bool counter)
{
    static struct points p;

    read_series(db, name, &p);
    if (p.n == 0)
        return 0;
    if (counter)
        assert_monotonic(&p, name);
    return p.v[p.n - 1];
}

static void
test_statsd_kill9_counts_each_acknowledged_increment_once(void **state)
{
    char *dir = test_tmpdir("statsd-kill9");
    double base_ctr = 0, base_cnt = 0;
    struct test_rng rng;
    struct env e;
    int flushes_hit = 0;

    (void)state;
    test_rng_init(&rng, "statsd_kill9", 8125);
    for (int round = 0; round < KILL_ROUNDS; round++) {
        int64_t t0 = INT64_C(1000000000000) + round * INT64_C(1000000000);
        /* One round in four kills early, during the writer's recovery. */
        long delay_ms = test_rng_below(&rng, 4) == 0
                            ? (long)test_rng_below(&rng, 4)
                            : 5 + (long)test_rng_below(&rng, 120);
        uint64_t seed = test_rng_next(&rng);
        struct tally t = {0};
        double ctr, cnt, gauge;
        bool with_pending;
        int fds[2];
        pid_t pid;

        assert_int_equal(pipe(fds), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            kill_child(dir, t0, seed, fds[1]);
        }
        close(fds[1]);
        run_and_kill(fds[0], pid, delay_ms, &t);
        close(fds[0]);

        /* Recover into the storage: a flush emitted again may only meet
         * its own duplicates.  Then a final flush past the child's time. */
        assert_int_equal(env_open(&e, dir), TSDB_OK);
        assert_int_equal(e.ts.total.conflicts, 0);
        assert_int_equal(
            statsd_flush(e.s, t0 + INT64_C(999000000), &e.sink, NULL), TSDB_OK);
        ctr = last_of(e.db, "ctr", true);
        cnt = last_of(e.db, "lat_count", true);
        gauge = last_of(e.db, "gg", false);

        /* Exactly the acknowledged increments, or those plus the body in
         * flight at the kill (journalled, not yet acknowledged): both
         * series agree on which. */
        with_pending = t.has_pending && ctr == base_ctr + t.ctr + t.pending.ctr;
        printf("round %2d: killed after %3ld ms %s; acked +%g, in flight "
               "%s\n",
               round, delay_ms, t.in_flush ? "in a flush" : "between flushes",
               t.ctr,
               !t.has_pending ? "none"
               : with_pending ? "stored"
                              : "lost");
        flushes_hit += t.in_flush;
        if (!with_pending && ctr != base_ctr + t.ctr)
            fail_msg("round %d: counter %g, acknowledged %g (+%g pending)",
                     round, ctr, base_ctr + t.ctr,
                     t.has_pending ? t.pending.ctr : 0);
        assert_true(cnt ==
                    base_cnt + t.cnt + (with_pending ? t.pending.cnt : 0));
        if (with_pending)
            assert_true(gauge == t.pending.gauge);
        else if (t.ctr > 0)
            assert_true(gauge == t.gauge);
        base_ctr = ctr;
        base_cnt = cnt;
        env_close(&e);
    }
    printf("%d of %d kills landed inside a flush\n", flushes_hit, KILL_ROUNDS);
    test_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_statsd_ingest_result),
        cmocka_unit_test(test_statsd_flush_alignment),
        cmocka_unit_test(test_statsd_restart_recovers_state),
        cmocka_unit_test(test_statsd_commit_failure_recovered),
        cmocka_unit_test(test_statsd_damaged_files),
        cmocka_unit_test(test_statsd_concurrent_ingest_and_flush),
        cmocka_unit_test(test_statsd_crash_points),
        cmocka_unit_test(
            test_statsd_kill9_counts_each_acknowledged_increment_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
