/*
 * Tests of the storage engine's public API (tsdb/db.c, appender.c,
 * query.c, store.c, retention.c working together): appends read back
 * bit-exactly from head, pending and stored chunks, across reopen; the
 * ordering rules; retention; limits; read-only readers; corruption.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <lmdb.h>
#include <math.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"
#include "tsdb/bytes.h"
#include "tsdb/check.h"
#include "tsdb/db.h"

#define NSERIES 16

struct model {
    int64_t *ts[NSERIES];
    double *vs[NSERIES];
    size_t n[NSERIES];
    uint64_t ref[NSERIES];
};

static struct tsdb *open_db(const char *dir,
                            void (*tweak)(struct tsdb_options *))
{
    struct tsdb_options o;
    struct tsdb *db = NULL;

    tsdb_options_init(&o);
    o.dir = dir;
    o.chunk_samples = 50; /* several seals and merges in a small test */
    if (tweak)
        tweak(&o);
    assert_int_equal(tsdb_open(&o, &db), TSDB_OK);
    return db;
}

static void assert_clean(struct tsdb *db)
{
    struct tsdb_check_report r;

    assert_int_equal(tsdb_check(db, &r), TSDB_OK);
    for (uint64_t i = 0; i < r.problems && i < TSDB_CHECK_MAX_PROBLEMS; i++)
        print_error("check: %s\n", r.text[i]);
    assert_int_equal(r.problems, 0);
}

static void make_series(struct tsdb_appender *a, struct model *m)
{
    char err[256];

    for (int s = 0; s < NSERIES; s++) {
        char inst[24];
        snprintf(inst, sizeof(inst), "host-%d", s);
        struct tsdb_label l[3] = {{"__name__", s % 2 ? "up" : "cpu"},
                                  {"instance", inst},
                                  {"region", s % 3 ? "eu" : "us"}};
        assert_int_equal(
            tsdb_appender_series(a, l, 3, &m->ref[s], err, sizeof(err)),
            TSDB_OK);
    }
}

/* Values that stress the codecs: decimals, counters, specials. */
static double pick_value(struct test_rng *r, int s, size_t i)
{
    switch (test_rng_below(r, 12)) {
    case 0:
        return bits_double(UINT64_C(0x7ff0000000000002)); /* stale */
    case 1:
        return -0.0;
    case 2:
        return INFINITY;
    case 3:
        return bits_double(test_rng_next(r));
    case 4:
        return 5e-324;
    default:
        return s % 2 ? (double)(i * 7) : (double)(i % 97) / 10.0;
    }
}

static void fill(struct tsdb *db, struct tsdb_appender *a, struct model *m,
                 struct test_rng *r, size_t per_series)
{
    int64_t t = 1700000000000;

    for (size_t i = 0; i < per_series; i++) {
        t += 1000 + (int64_t)test_rng_below(r, 20000);
        for (int s = 0; s < NSERIES; s++) {
            size_t k = m->n[s];
            if (test_rng_below(r, 10) == 0)
                continue; /* a missed scrape */
            m->ts[s] = realloc(m->ts[s], (k + 1) * sizeof(int64_t));
            m->vs[s] = realloc(m->vs[s], (k + 1) * sizeof(double));
            m->ts[s][k] = t + s;
            m->vs[s][k] = pick_value(r, s, k);
            m->n[s]++;
            assert_int_equal(
                tsdb_appender_add(a, m->ref[s], t + s, m->vs[s][k]), TSDB_OK);
        }
        if (test_rng_below(r, 7) == 0) {
            struct tsdb_commit_result res;
            assert_int_equal(tsdb_appender_commit(a, &res), TSDB_OK);
            assert_int_equal(res.out_of_order + res.conflicts, 0);
        }
        if (test_rng_below(r, 60) == 0)
            assert_int_equal(tsdb_flush(db), TSDB_OK);
    }
    assert_int_equal(tsdb_appender_commit(a, NULL), TSDB_OK);
}

static int series_index(const struct tsdb_labels *ls)
{
    const char *inst = tsdb_labels_get(ls, "instance");
    return inst ? atoi(inst + 5) : -1;
}

/* Reads [lo, hi] of every series and compares with the model bitwise. */
static void compare(struct tsdb *db, struct model *m, int64_t lo, int64_t hi)
{
    struct tsdb_matcher match;
    struct tsdb_query *q;
    const struct tsdb_labels *ls;
    char err[128];
    int seen = 0;

    assert_int_equal(tsdb_matcher_init(&match, TSDB_MATCH_RE, "instance",
                                       "host-.*", err, sizeof(err)),
                     TSDB_OK);
    assert_int_equal(tsdb_query_open(db, &match, 1, lo, hi, &q), TSDB_OK);
    while (tsdb_query_next_series(q, &ls, NULL) == TSDB_OK) {
        int s = series_index(ls);
        size_t k = 0, n;
        const int64_t *ts;
        const double *vs;

        assert_in_range(s, 0, NSERIES - 1);
        while (k < m->n[s] && m->ts[s][k] < lo)
            k++;
        while (tsdb_query_next_batch(q, &ts, &vs, &n) == TSDB_OK && n > 0) {
            for (size_t i = 0; i < n; i++, k++) {
                assert_true(k < m->n[s]);
                assert_int_equal(ts[i], m->ts[s][k]);
                assert_int_equal(double_bits(vs[i]), double_bits(m->vs[s][k]));
            }
        }
        assert_true(k == m->n[s] || m->ts[s][k] > hi);
        seen++;
    }
    tsdb_query_close(q);
    tsdb_matcher_release(&match);
    assert_true(seen > 0);
}

static void model_free(struct model *m)
{
    for (int s = 0; s < NSERIES; s++) {
        free(m->ts[s]);
        free(m->vs[s]);
    }
}

static void test_db_reads_back_bit_exact_across_reopen(void **state)
{
    char *dir = test_tmpdir("db");
    struct model m = {0};
    struct test_rng r;
    struct tsdb *db;
    struct tsdb_appender *a;
    (void)state;

    test_rng_init(&r, "reads_back", 20261203);
    db = open_db(dir, NULL);
    a = tsdb_appender_new(db);
    make_series(a, &m);
    fill(db, a, &m, &r, 3000);

    /* Whole range and random windows, before and after reopening. */
    for (int round = 0; round < 2; round++) {
        compare(db, &m, INT64_MIN, INT64_MAX);
        for (int i = 0; i < 20; i++) {
            int64_t lo = m.ts[0][test_rng_below(&r, m.n[0])];
            int64_t hi = lo + (int64_t)test_rng_below(&r, 4000000);
            compare(db, &m, lo, hi);
        }
        assert_clean(db);
        tsdb_appender_free(a);
        assert_int_equal(tsdb_close(db), TSDB_OK);
        db = open_db(dir, NULL);
        a = tsdb_appender_new(db);
    }
    tsdb_appender_free(a);
    tsdb_close(db);
    model_free(&m);
    test_rmdir(dir);
}

static void test_db_counts_ordering_rejections(void **state)
{
    char *dir = test_tmpdir("order");
    struct tsdb *db = open_db(dir, NULL);
    struct tsdb_appender *a = tsdb_appender_new(db);
    struct tsdb_commit_result res;
    struct tsdb_label l[1] = {{"__name__", "m"}};
    struct tsdb_stats st;
    uint64_t ref;
    char err[128];
    (void)state;

    assert_int_equal(tsdb_appender_series(a, l, 1, &ref, err, sizeof(err)),
                     TSDB_OK);
    tsdb_appender_add(a, ref, 1000, 1.0);
    tsdb_appender_add(a, ref, 2000, 2.0);
    tsdb_appender_add(a, ref, 2000, 2.0); /* duplicate: no-op */
    tsdb_appender_add(a, ref, 2000, 3.0); /* conflict */
    tsdb_appender_add(a, ref, 1500, 1.5); /* out of order */
    tsdb_appender_add(a, ref, 3000, 3.0);
    assert_int_equal(tsdb_appender_commit(a, &res), TSDB_OK);
    assert_int_equal(res.accepted, 3);
    assert_int_equal(res.duplicates, 1);
    assert_int_equal(res.conflicts, 1);
    assert_int_equal(res.out_of_order, 1);

    /* Across commits the same rules hold. */
    tsdb_appender_add(a, ref, 2500, 1.0);
    assert_int_equal(tsdb_appender_commit(a, &res), TSDB_OK);
    assert_int_equal(res.out_of_order, 1);
    tsdb_stats_get(db, &st);
    assert_int_equal(st.samples_appended, 3);
    assert_int_equal(st.rejected_out_of_order, 2);
    assert_int_equal(st.rejected_duplicate_conflict, 1);

    /* An unknown ref fails the whole batch and stores nothing. */
    tsdb_appender_add(a, ref, 4000, 4.0);
    tsdb_appender_add(a, 999999, 4000, 4.0);
    assert_int_equal(tsdb_appender_commit(a, &res), TSDB_ENOTFOUND);
    tsdb_appender_rollback(a);
    tsdb_appender_add(a, ref, 4000, 4.0);
    assert_int_equal(tsdb_appender_commit(a, &res), TSDB_OK);
    assert_int_equal(res.accepted, 1);

    tsdb_appender_free(a);
    tsdb_close(db);
    test_rmdir(dir);
}

/* A writer that exits without closing (no checkpoint, no flush) loses
 * nothing that commit acknowledged. */
static void test_db_recovers_after_exit_without_close(void **state)
{
    char *dir = test_tmpdir("exit");
    struct model m = {0};
    struct test_rng r;
    struct tsdb *db;
    pid_t pid;
    int status;
    (void)state;

    test_rng_init(&r, "exit_without_close", 7);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        db = open_db(dir, NULL);
        struct tsdb_appender *a = tsdb_appender_new(db);
        make_series(a, &m);
        fill(db, a, &m, &r, 500);
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    /* Same seed: the parent rebuilds the model the child wrote. */
    test_rng_init(&r, "exit_without_close", 7);
    char *dir2 = test_tmpdir("exit-model");
    db = open_db(dir2, NULL);
    struct tsdb_appender *a = tsdb_appender_new(db);
    make_series(a, &m);
    fill(db, a, &m, &r, 500);
    tsdb_appender_free(a);
    tsdb_close(db);
    test_rmdir(dir2);

    db = open_db(dir, NULL);
    compare(db, &m, INT64_MIN, INT64_MAX);
    assert_clean(db);
    tsdb_close(db);
    model_free(&m);
    test_rmdir(dir);
}

static void with_retention(struct tsdb_options *o)
{
    o->retention_ms = 24 * 3600 * 1000;
    o->chunk_span_ms = 3600 * 1000;
}

static int collect_value(void *ctx, const char *s, size_t len)
{
    char *out = ctx;
    strncat(out, s, len);
    strcat(out, ",");
    return 0;
}

static void test_db_retention_deletes_old_chunks_and_series(void **state)
{
    char *dir = test_tmpdir("retention");
    struct tsdb *db = open_db(dir, with_retention);
    struct tsdb_appender *a = tsdb_appender_new(db);
    struct tsdb_label old[2] = {{"__name__", "m"}, {"job", "gone"}};
    struct tsdb_label live[2] = {{"__name__", "m"}, {"job", "live"}};
    struct tsdb_commit_result res;
    uint64_t r_old, r_live;
    int64_t hour = 3600 * 1000, t0 = 1700000000000;
    char err[128], values[256] = "";
    size_t deleted;
    (void)state;

    assert_int_equal(tsdb_appender_series(a, old, 2, &r_old, err, 128), 0);
    assert_int_equal(tsdb_appender_series(a, live, 2, &r_live, err, 128), 0);
    for (int64_t t = t0; t < t0 + 3 * hour; t += 60000)
        tsdb_appender_add(a, r_old, t, 1.0);
    for (int64_t t = t0; t < t0 + 72 * hour; t += 60000)
        tsdb_appender_add(a, r_live, t, 2.0);
    assert_int_equal(tsdb_appender_commit(a, &res), TSDB_OK);
    assert_int_equal(res.accepted, 180 + 72 * 60);

    /* Older than newest - retention: rejected as out of bounds. */
    tsdb_appender_add(a, r_old, t0 + 10 * hour, 1.0);
    assert_int_equal(tsdb_appender_commit(a, &res), TSDB_OK);
    assert_int_equal(res.out_of_bounds, 1);

    assert_int_equal(tsdb_seal_all(db), TSDB_OK);
    tsdb_appender_free(a);
    assert_int_equal(tsdb_close(db), TSDB_OK);

    /* Reopened, the head holds nothing of "gone": retention drops it. */
    db = open_db(dir, with_retention);
    assert_int_equal(tsdb_retention_run(db, t0 + 48 * hour, &deleted), 0);
    assert_true(deleted > 0);
    assert_int_equal(
        tsdb_label_values(db, "job", NULL, 0, collect_value, values), TSDB_OK);
    assert_string_equal(values, "live,");

    struct tsdb_matcher mt;
    struct tsdb_query *q;
    const struct tsdb_labels *ls;
    const int64_t *ts;
    const double *vs;
    size_t n;
    assert_int_equal(
        tsdb_matcher_init(&mt, TSDB_MATCH_EQ, "job", "live", err, sizeof(err)),
        0);
    assert_int_equal(tsdb_query_open(db, &mt, 1, INT64_MIN, INT64_MAX, &q), 0);
    assert_int_equal(tsdb_query_next_series(q, &ls, NULL), TSDB_OK);
    assert_int_equal(tsdb_query_next_batch(q, &ts, &vs, &n), TSDB_OK);
    assert_true(n > 0);
    /* Whole chunks go: the first kept sample is in the window of the
     * cutoff or after it, never before the cutoff's chunk. */
    assert_true(ts[0] >= t0 + 47 * hour);
    tsdb_query_close(q);
    tsdb_matcher_release(&mt);
    assert_clean(db);
    tsdb_close(db);
    test_rmdir(dir);
}

static void test_db_label_names_and_values(void **state)
{
    char *dir = test_tmpdir("labels");
    struct tsdb *db = open_db(dir, NULL);
    struct tsdb_appender *a = tsdb_appender_new(db);
    struct model m = {0};
    struct tsdb_matcher mt;
    char names[256] = "", values[256] = "", err[128];
    (void)state;

    make_series(a, &m);
    for (int s = 0; s < NSERIES; s++)
        tsdb_appender_add(a, m.ref[s], 1000, 1.0);
    assert_int_equal(tsdb_appender_commit(a, NULL), TSDB_OK);
    assert_int_equal(tsdb_label_names(db, NULL, 0, collect_value, names), 0);
    assert_string_equal(names, "__name__,instance,region,");
    assert_int_equal(tsdb_matcher_init(&mt, TSDB_MATCH_EQ, "__name__", "up",
                                       err, sizeof(err)),
                     0);
    assert_int_equal(
        tsdb_label_values(db, "region", &mt, 1, collect_value, values), 0);
    assert_string_equal(values, "eu,us,");
    tsdb_matcher_release(&mt);
    tsdb_appender_free(a);
    tsdb_close(db);
    test_rmdir(dir);
}

static void three_series(struct tsdb_options *o)
{
    o->max_series = 3;
}

static void test_db_refuses_series_over_limit_and_bad_labels(void **state)
{
    char *dir = test_tmpdir("limit");
    struct tsdb *db = open_db(dir, three_series);
    struct tsdb_appender *a = tsdb_appender_new(db);
    char err[256], inst[16];
    uint64_t ref;
    (void)state;

    for (int i = 0; i < 4; i++) {
        snprintf(inst, sizeof(inst), "%d", i);
        struct tsdb_label l[2] = {{"__name__", "m"}, {"i", inst}};
        int rc = tsdb_appender_series(a, l, 2, &ref, err, sizeof(err));
        assert_int_equal(rc, i < 3 ? TSDB_OK : TSDB_ELIMIT);
    }
    assert_non_null(strstr(err, "series limit of 3"));
    assert_non_null(strstr(err, "m{i=\"3\"}"));

    struct tsdb_label bad[2] = {{"__name__", "m"}, {"1bad", "x"}};
    assert_int_equal(tsdb_appender_series(a, bad, 2, &ref, err, sizeof(err)),
                     TSDB_EINVAL);
    assert_non_null(strstr(err, "1bad"));
    tsdb_appender_free(a);
    tsdb_close(db);
    test_rmdir(dir);
}

static void read_only(struct tsdb_options *o)
{
    o->read_only = true;
}

static void test_db_second_writer_locked_reader_sees_checkpoint(void **state)
{
    char *dir = test_tmpdir("ro");
    struct tsdb *db = open_db(dir, NULL), *other = NULL, *ro;
    struct tsdb_appender *a = tsdb_appender_new(db);
    struct tsdb_options o;
    struct model m = {0};
    struct tsdb_matcher mt;
    struct tsdb_query *q;
    const struct tsdb_labels *ls;
    char err[64];
    int n = 0;
    (void)state;

    tsdb_options_init(&o);
    o.dir = dir;
    assert_int_equal(tsdb_open(&o, &other), TSDB_ELOCKED);

    make_series(a, &m);
    for (int s = 0; s < NSERIES; s++)
        tsdb_appender_add(a, m.ref[s], 1000, 1.0);
    assert_int_equal(tsdb_appender_commit(a, NULL), TSDB_OK);
    assert_int_equal(tsdb_checkpoint(db), TSDB_OK);

    ro = open_db(dir, read_only);
    assert_int_equal(tsdb_matcher_init(&mt, TSDB_MATCH_NEQ, "instance", "", err,
                                       sizeof(err)),
                     0);
    assert_int_equal(tsdb_query_open(ro, &mt, 1, 0, 5000, &q), 0);
    while (tsdb_query_next_series(q, &ls, NULL) == TSDB_OK)
        n++;
    assert_int_equal(n, NSERIES);
    tsdb_query_close(q);
    tsdb_matcher_release(&mt);
    tsdb_close(ro);
    tsdb_appender_free(a);
    tsdb_close(db);
    test_rmdir(dir);
}

/* Writes raw bytes into the LMDB file behind the engine's back. */
static void poke(const char *dir, const char *dbname,
                 void (*edit)(MDB_txn *, MDB_dbi))
{
    char path[512];
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;

    snprintf(path, sizeof(path), "%s/data.mdb", dir);
    assert_int_equal(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 8);
    mdb_env_set_mapsize(env, (size_t)64 << 30);
    assert_int_equal(mdb_env_open(env, path, MDB_NOSUBDIR, 0644), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, dbname, 0, &dbi), 0);
    edit(txn, dbi);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

static void set_version_99(MDB_txn *txn, MDB_dbi dbi)
{
    uint8_t v[4] = {0, 0, 0, 99};
    MDB_val k = {14, "format_version"}, val = {4, v};
    assert_int_equal(mdb_put(txn, dbi, &k, &val, 0), 0);
}

static void flip_chunk_byte(MDB_txn *txn, MDB_dbi dbi)
{
    MDB_cursor *cur;
    MDB_val k, v;
    uint8_t copy[4096], key[16];

    assert_int_equal(mdb_cursor_open(txn, dbi, &cur), 0);
    assert_int_equal(mdb_cursor_get(cur, &k, &v, MDB_FIRST), 0);
    memcpy(key, k.mv_data, sizeof(key));
    memcpy(copy, v.mv_data, v.mv_size);
    copy[v.mv_size / 2] ^= 0x10;
    k.mv_data = key;
    v.mv_data = copy;
    assert_int_equal(mdb_cursor_del(cur, 0), 0);
    assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
    mdb_cursor_close(cur);
}

static void test_db_refuses_unknown_version(void **state)
{
    char *dir = test_tmpdir("version");
    struct tsdb_options o;
    struct tsdb *db = open_db(dir, NULL);
    (void)state;

    tsdb_close(db);
    poke(dir, "meta", set_version_99);
    tsdb_options_init(&o);
    o.dir = dir;
    assert_int_equal(tsdb_open(&o, &db), TSDB_EVERSION);
    test_rmdir(dir);
}

static void test_db_reports_corrupt_chunk(void **state)
{
    char *dir = test_tmpdir("corrupt");
    struct tsdb *db = open_db(dir, NULL);
    struct tsdb_appender *a = tsdb_appender_new(db);
    struct tsdb_check_report r;
    struct model m = {0};
    struct tsdb_matcher mt;
    struct tsdb_query *q;
    const struct tsdb_labels *ls;
    const int64_t *ts;
    const double *vs;
    size_t n;
    char err[64];
    int rc = TSDB_OK;
    (void)state;

    make_series(a, &m);
    for (int64_t t = 1; t <= 200; t++)
        tsdb_appender_add(a, m.ref[0], t * 1000, (double)t);
    assert_int_equal(tsdb_appender_commit(a, NULL), TSDB_OK);
    assert_int_equal(tsdb_seal_all(db), TSDB_OK);
    tsdb_appender_free(a);
    tsdb_close(db);
    poke(dir, "chunks", flip_chunk_byte);

    db = open_db(dir, NULL);
    assert_int_equal(tsdb_check(db, &r), TSDB_OK);
    assert_true(r.problems > 0);
    assert_int_equal(tsdb_matcher_init(&mt, TSDB_MATCH_EQ, "instance", "host-0",
                                       err, sizeof(err)),
                     0);
    assert_int_equal(tsdb_query_open(db, &mt, 1, 0, INT64_MAX, &q), 0);
    rc = tsdb_query_next_series(q, &ls, NULL);
    if (rc == TSDB_OK)
        rc = tsdb_query_next_batch(q, &ts, &vs, &n);
    assert_int_equal(rc, TSDB_ECORRUPT);
    tsdb_query_close(q);
    tsdb_matcher_release(&mt);
    tsdb_close(db);
    test_rmdir(dir);
}

static void tiny_map(struct tsdb_options *o)
{
    o->map_size = 256 * 1024;
    o->chunk_samples = 10;
}

static void test_db_map_full_keeps_data_in_memory(void **state)
{
    char *dir = test_tmpdir("mapfull");
    struct tsdb *db = open_db(dir, tiny_map);
    struct tsdb_appender *a = tsdb_appender_new(db);
    struct test_rng r;
    char err[64], inst[24];
    uint64_t ref;
    int rc = TSDB_OK;
    (void)state;

    test_rng_init(&r, "map_full", 3);
    for (int s = 0; s < 200 && rc == TSDB_OK; s++) {
        snprintf(inst, sizeof(inst), "%d", s);
        struct tsdb_label l[2] = {{"__name__", "m"}, {"i", inst}};
        rc = tsdb_appender_series(a, l, 2, &ref, err, sizeof(err));
        for (int t = 0; t < 100 && rc == TSDB_OK; t++)
            rc = tsdb_appender_add(a, ref, t * 1000,
                                   bits_double(test_rng_next(&r)));
        if (rc == TSDB_OK)
            rc = tsdb_appender_commit(a, NULL);
        if (rc == TSDB_OK)
            rc = tsdb_flush(db);
    }
    assert_int_equal(rc, TSDB_EMAPFULL);
    tsdb_appender_free(a);
    tsdb_close(db);
    test_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_db_reads_back_bit_exact_across_reopen),
        cmocka_unit_test(test_db_counts_ordering_rejections),
        cmocka_unit_test(test_db_recovers_after_exit_without_close),
        cmocka_unit_test(test_db_retention_deletes_old_chunks_and_series),
        cmocka_unit_test(test_db_label_names_and_values),
        cmocka_unit_test(test_db_refuses_series_over_limit_and_bad_labels),
        cmocka_unit_test(test_db_second_writer_locked_reader_sees_checkpoint),
        cmocka_unit_test(test_db_refuses_unknown_version),
        cmocka_unit_test(test_db_reports_corrupt_chunk),
        cmocka_unit_test(test_db_map_full_keeps_data_in_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
