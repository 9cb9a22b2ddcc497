/*
 * Format compatibility: tests/fixtures/format-vN/ holds a data folder
 * written by format version N (stored chunks, head snapshots and WAL
 * records not yet checkpointed).  The current code must open a copy of
 * each, replay it, and read back exactly the samples that wrote it.
 *
 * TSDB_WRITE_FIXTURE=DIR makes this binary write a new fixture into DIR
 * instead (for a new format version) and exit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <unistd.h>

#include "testutil.h"
#include "tsdb/bytes.h"
#include "tsdb/check.h"
#include "tsdb/db.h"

#define NSERIES 3
#define STORED  300 /* samples per series in LMDB at the checkpoint */
#define LOGGED  10  /* samples per series only in the WAL */

static double value_of(int s, int i)
{
    uint64_t x = (uint64_t)(s * 1000 + i) * UINT64_C(0x9E3779B97F4A7C15);

    if (s == 2)
        return bits_double(x ^ (x >> 29)); /* no decimal form: Gorilla */
    if (i == 7)
        return bits_double(UINT64_C(0x7ff0000000000002)); /* stale */
    return s * 100 + i * 0.5;
}

static int64_t time_of(int i)
{
    return 1700000000000 + (int64_t)i * 10000;
}

static void write_fixture(const char *dir)
{
    struct tsdb_options o;
    struct tsdb *db;
    struct tsdb_appender *a;
    uint64_t ref[NSERIES];
    char err[64], val[NSERIES][16];

    tsdb_options_init(&o);
    o.dir = dir;
    if (tsdb_open(&o, &db) != TSDB_OK)
        exit(1);
    a = tsdb_appender_new(db);
    for (int s = 0; s < NSERIES; s++) {
        snprintf(val[s], sizeof(val[s]), "%d", s);
        struct tsdb_label l[2] = {{"__name__", "fixture"}, {"s", val[s]}};
        if (tsdb_appender_series(a, l, 2, &ref[s], err, sizeof(err)))
            exit(1);
    }
    for (int i = 0; i < STORED + LOGGED; i++) {
        for (int s = 0; s < NSERIES; s++)
            tsdb_appender_add(a, ref[s], time_of(i), value_of(s, i));
        if (tsdb_appender_commit(a, NULL) != TSDB_OK)
            exit(1);
        if (i == STORED - 1 && tsdb_checkpoint(db) != TSDB_OK)
            exit(1);
    }
    /* No close: the last samples stay in the WAL only, as after a crash. */
    _exit(0);
}

static void test_format_reads_every_fixture_version(void **state)
{
    char cmd[512];
    (void)state;

    for (int version = 1; version <= 1; version++) {
        char *dir = test_tmpdir("format");
        struct tsdb_options o;
        struct tsdb *db;
        struct tsdb_matcher m;
        struct tsdb_query *q;
        struct tsdb_check_report r;
        const struct tsdb_labels *ls;
        char err[64];
        int series = 0;

        snprintf(cmd, sizeof(cmd), "cp -r tests/fixtures/format-v%d/. %s",
                 version, dir);
        assert_int_equal(system(cmd), 0);
        tsdb_options_init(&o);
        o.dir = dir;
        assert_int_equal(tsdb_open(&o, &db), TSDB_OK);
        assert_int_equal(tsdb_matcher_init(&m, TSDB_MATCH_EQ, "__name__",
                                           "fixture", err, sizeof(err)),
                         0);
        assert_int_equal(tsdb_query_open(db, &m, 1, INT64_MIN, INT64_MAX, &q),
                         0);
        while (tsdb_query_next_series(q, &ls, NULL) == TSDB_OK) {
            int s = atoi(tsdb_labels_get(ls, "s")), i = 0;
            const int64_t *ts;
            const double *vs;
            size_t n;
            while (tsdb_query_next_batch(q, &ts, &vs, &n) == 0 && n > 0)
                for (size_t k = 0; k < n; k++, i++) {
                    assert_int_equal(ts[k], time_of(i));
                    assert_int_equal(double_bits(vs[k]),
                                     double_bits(value_of(s, i)));
                }
            assert_int_equal(i, STORED + LOGGED);
            series++;
        }
        assert_int_equal(series, NSERIES);
        tsdb_query_close(q);
        tsdb_matcher_release(&m);
        assert_int_equal(tsdb_check(db, &r), TSDB_OK);
        assert_int_equal(r.problems, 0);
        tsdb_close(db);
        test_rmdir(dir);
    }
}

int main(void)
{
    const char *out = getenv("TSDB_WRITE_FIXTURE");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_reads_every_fixture_version),
    };

    if (out)
        write_fixture(out);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
