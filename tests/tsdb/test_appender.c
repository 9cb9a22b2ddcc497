/*
 * Tests of tsdb/appender.c: the WAL bytes of a commit (storage-format.md
 * section 7.1, byte for byte), label normalization on series creation,
 * and that a rolled-back batch leaves nothing behind.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dirent.h>

#include "testutil.h"
#include "tsdb/db.h"

static struct tsdb *open_db(const char *dir)
{
    struct tsdb_options o;
    struct tsdb *db;

    tsdb_options_init(&o);
    o.dir = dir;
    assert_int_equal(tsdb_open(&o, &db), TSDB_OK);
    return db;
}

/* Reads the one WAL segment of dir into buf; returns its length. */
static size_t read_segment(const char *dir, uint8_t *buf, size_t cap)
{
    char path[1024], wal[512];
    struct dirent *e;
    DIR *d;
    FILE *f;
    size_t n;

    snprintf(wal, sizeof(wal), "%s/wal", dir);
    d = opendir(wal);
    assert_non_null(d);
    path[0] = '\0';
    while ((e = readdir(d)) != NULL)
        if (strstr(e->d_name, ".wal"))
            snprintf(path, sizeof(path), "%s/%s", wal, e->d_name);
    closedir(d);
    f = fopen(path, "rb");
    assert_non_null(f);
    n = fread(buf, 1, cap, f);
    fclose(f);
    return n;
}

static void test_appender_golden_wal_bytes(void **state)
{
    static const uint8_t want[] = {
        /* segment header: magic, seq 2 (open checkpointed segment 1) */
        0x54, 0x53, 0x44, 0x42, 0x57, 0x41, 0x4c, 0x31, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x02,
        /* series record */
        0x01, 0x00, 0x00, 0x22, 0x72, 0x92, 0xeb, 0xc2, 0x01, 0x0c, 0x08, 0x5f,
        0x5f, 0x6e, 0x61, 0x6d, 0x65, 0x5f, 0x5f, 0x02, 0x75, 0x70, 0x02, 0x12,
        0x08, 0x5f, 0x5f, 0x6e, 0x61, 0x6d, 0x65, 0x5f, 0x5f, 0x02, 0x75, 0x70,
        0x03, 0x6a, 0x6f, 0x62, 0x01, 0x61,
        /* samples record */
        0x02, 0x00, 0x00, 0x19, 0x35, 0xe2, 0x79, 0xd6, 0x02, 0x80, 0xa0, 0xab,
        0xfe, 0xf9, 0x62, 0x3f, 0xf8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02,
        0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
    char *dir = test_tmpdir("appender");
    struct tsdb *db = open_db(dir);
    struct tsdb_appender *a = tsdb_appender_new(db);
    /* Given out of order: the appender sorts labels. */
    struct tsdb_label l1[1] = {{"__name__", "up"}};
    struct tsdb_label l2[2] = {{"job", "a"}, {"__name__", "up"}};
    uint8_t buf[4096];
    uint64_t r1, r2;
    char err[64];
    (void)state;

    assert_int_equal(tsdb_appender_series(a, l1, 1, &r1, err, 64), 0);
    assert_int_equal(tsdb_appender_series(a, l2, 2, &r2, err, 64), 0);
    assert_int_equal(r1, 1);
    assert_int_equal(r2, 2);
    tsdb_appender_add(a, r1, 1700000000000, 1.5);
    tsdb_appender_add(a, r2, 1700000000000, -0.0);
    assert_int_equal(tsdb_appender_commit(a, NULL), TSDB_OK);
    assert_int_equal(read_segment(dir, buf, sizeof(buf)), sizeof(want));
    assert_memory_equal(buf, want, sizeof(want));
    tsdb_appender_free(a);
    tsdb_close(db);
    test_rmdir(dir);
}

static void test_appender_same_series_same_ref(void **state)
{
    char *dir = test_tmpdir("appender-ref");
    struct tsdb *db = open_db(dir);
    struct tsdb_appender *a = tsdb_appender_new(db), *b;
    struct tsdb_label x[3] = {{"b", "2"}, {"__name__", "m"}, {"a", "1"}};
    struct tsdb_label y[4] = {
        {"a", "1"}, {"empty", ""}, {"__name__", "m"}, {"b", "2"}};
    uint64_t r1, r2, r3;
    char err[64];
    (void)state;

    assert_int_equal(tsdb_appender_series(a, x, 3, &r1, err, 64), 0);
    /* An empty value means "no such label": the same series. */
    assert_int_equal(tsdb_appender_series(a, y, 4, &r2, err, 64), 0);
    assert_int_equal(r1, r2);
    b = tsdb_appender_new(db);
    struct tsdb_label z[3] = {{"a", "1"}, {"b", "2"}, {"__name__", "m"}};
    assert_int_equal(tsdb_appender_series(b, z, 3, &r3, err, 64), 0);
    assert_int_equal(r1, r3);
    tsdb_appender_free(b);
    tsdb_appender_free(a);
    tsdb_close(db);
    test_rmdir(dir);
}

static int count(void *ctx, const char *s, size_t len)
{
    (void)s;
    (void)len;
    ++*(int *)ctx;
    return 0;
}

static void test_appender_rollback_stores_nothing(void **state)
{
    char *dir = test_tmpdir("appender-rb");
    struct tsdb *db = open_db(dir);
    struct tsdb_appender *a = tsdb_appender_new(db);
    struct tsdb_label l[1] = {{"__name__", "m"}};
    struct tsdb_commit_result res;
    struct tsdb_stats st;
    uint64_t ref;
    char err[64];
    int names = 0;
    (void)state;

    assert_int_equal(tsdb_appender_series(a, l, 1, &ref, err, 64), 0);
    tsdb_appender_add(a, ref, 1000, 1.0);
    tsdb_appender_rollback(a);
    assert_int_equal(tsdb_appender_commit(a, &res), TSDB_OK);
    assert_int_equal(res.accepted, 0);
    tsdb_stats_get(db, &st);
    assert_int_equal(st.samples_appended, 0);
    /* Never committed, so never indexed. */
    assert_int_equal(tsdb_label_names(db, NULL, 0, count, &names), 0);
    assert_int_equal(names, 0);
    tsdb_appender_free(a);
    tsdb_close(db);
    test_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_appender_golden_wal_bytes),
        cmocka_unit_test(test_appender_same_series_same_ref),
        cmocka_unit_test(test_appender_rollback_stores_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
