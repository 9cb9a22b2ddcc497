/*
 * Tests of tsdb/compact.c: a rebuilt file is smaller, holds exactly the
 * same samples and checks clean; an open folder is refused; a copy that
 * would not be smaller is dropped.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"
#include "tsdb/bytes.h"
#include "tsdb/check.h"
#include "tsdb/compact.h"
#include "tsdb/db.h"

#define NSERIES 300
#define STEPS   2000

static struct tsdb *open_db(const char *dir)
{
    struct tsdb_options o;
    struct tsdb *db;

    tsdb_options_init(&o);
    o.dir = dir;
    o.chunk_span_ms = 600000; /* many windows in a short test */
    assert_int_equal(tsdb_open(&o, &db), TSDB_OK);
    return db;
}

/* Interleaved series, flushed often: the mid-page inserts that leave
 * LMDB pages half full. */
static void fill(const char *dir)
{
    struct tsdb *db = open_db(dir);
    struct tsdb_appender *a = tsdb_appender_new(db);
    uint64_t ref[NSERIES];
    char err[64], inst[16];

    for (int s = 0; s < NSERIES; s++) {
        snprintf(inst, sizeof(inst), "%d", s);
        struct tsdb_label l[2] = {{"__name__", "m"}, {"i", inst}};
        assert_int_equal(tsdb_appender_series(a, l, 2, &ref[s], err, 64), 0);
    }
    for (int i = 0; i < STEPS; i++) {
        for (int s = 0; s < NSERIES; s++)
            tsdb_appender_add(a, ref[s], 1000 * (int64_t)i, s + i * 0.25);
        assert_int_equal(tsdb_appender_commit(a, NULL), TSDB_OK);
        if (i % 100 == 99)
            assert_int_equal(tsdb_flush(db), TSDB_OK);
    }
    tsdb_appender_free(a);
    assert_int_equal(tsdb_close(db), TSDB_OK);
}

/* A checksum of every (series, timestamp, value) in the folder. */
static uint64_t digest(const char *dir, size_t *count)
{
    struct tsdb *db = open_db(dir);
    struct tsdb_matcher m;
    struct tsdb_query *q;
    struct tsdb_check_report r;
    const struct tsdb_labels *ls;
    uint64_t sum = 0, id;
    char err[64];

    *count = 0;
    assert_int_equal(
        tsdb_matcher_init(&m, TSDB_MATCH_EQ, "__name__", "m", err, 64), 0);
    assert_int_equal(tsdb_query_open(db, &m, 1, INT64_MIN, INT64_MAX, &q), 0);
    while (tsdb_query_next_series(q, &ls, &id) == TSDB_OK) {
        const int64_t *ts;
        const double *vs;
        size_t n;
        while (tsdb_query_next_batch(q, &ts, &vs, &n) == 0 && n > 0)
            for (size_t i = 0; i < n; i++, (*count)++)
                sum = sum * 31 + id + (uint64_t)ts[i] + double_bits(vs[i]);
    }
    tsdb_query_close(q);
    tsdb_matcher_release(&m);
    assert_int_equal(tsdb_check(db, &r), TSDB_OK);
    assert_int_equal(r.problems, 0);
    tsdb_close(db);
    return sum;
}

static void test_compact_shrinks_and_keeps_every_sample(void **state)
{
    char *dir = test_tmpdir("compact");
    uint64_t before, after, d1, d2;
    size_t n1, n2;
    (void)state;

    fill(dir);
    d1 = digest(dir, &n1);
    assert_int_equal(n1, (size_t)NSERIES * STEPS);
    assert_int_equal(tsdb_compact(dir, &before, &after), TSDB_OK);
    print_message("compact: %llu -> %llu bytes\n", (unsigned long long)before,
                  (unsigned long long)after);
    assert_true(after < before * 3 / 4);
    d2 = digest(dir, &n2);
    assert_int_equal(n2, n1);
    assert_int_equal(d2, d1);
    test_rmdir(dir);
}

static void test_compact_refuses_open_folder(void **state)
{
    char *dir = test_tmpdir("compact-open");
    struct tsdb *db = open_db(dir);
    (void)state;

    assert_int_equal(tsdb_compact(dir, NULL, NULL), TSDB_ELOCKED);
    tsdb_close(db);
    assert_int_equal(tsdb_compact(dir, NULL, NULL), TSDB_OK);
    test_rmdir(dir);
}

static void test_compact_keeps_original_when_not_smaller(void **state)
{
    char *dir = test_tmpdir("compact-small");
    char path[512];
    struct stat sb;
    uint64_t before, after;
    (void)state;

    tsdb_close(open_db(dir));
    assert_int_equal(tsdb_compact(dir, &before, &after), TSDB_OK);
    assert_true(after <= before);
    snprintf(path, sizeof(path), "%s/data.mdb.compact", dir);
    assert_int_not_equal(stat(path, &sb), 0);
    test_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compact_shrinks_and_keeps_every_sample),
        cmocka_unit_test(test_compact_refuses_open_folder),
        cmocka_unit_test(test_compact_keeps_original_when_not_smaller),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
