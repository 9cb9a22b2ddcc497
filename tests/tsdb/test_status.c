/*
 * Tests of tsdb/status.c: every top-N list against a brute-force count of
 * the series written (seeded, with many ties so that the tie order is
 * checked too), the empty database, and the head figures.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <limits.h>

#include "testutil.h"
#include "tsdb/status.h"

#define ERRLEN 256
#define NAMES  4
#define MAXP   512

static struct tsdb *open_db(const char *dir, uint32_t chunk_samples)
{
    struct tsdb_options o;
    struct tsdb *db;

    tsdb_options_init(&o);
    o.dir = dir;
    o.chunk_samples = chunk_samples;
    /* No background flush: head figures stay put during a test. */
    o.flush_interval_ms = INT_MAX / 2;
    o.checkpoint_interval_ms = INT_MAX / 2;
    assert_int_equal(tsdb_open(&o, &db), TSDB_OK);
    return db;
}

/* ---- the brute force ---- */

struct bpair {
    char name[16];
    char value[16];
    uint64_t series;
};

struct brute {
    struct bpair p[MAXP];
    size_t n;
    uint64_t series;
};

static void brute_add(struct brute *b, const char *name, const char *value)
{
    for (size_t i = 0; i < b->n; i++) {
        if (strcmp(b->p[i].name, name) == 0 &&
            strcmp(b->p[i].value, value) == 0) {
            b->p[i].series++;
            return;
        }
    }
    assert_true(b->n < MAXP);
    snprintf(b->p[b->n].name, sizeof(b->p[b->n].name), "%s", name);
    snprintf(b->p[b->n].value, sizeof(b->p[b->n].value), "%s", value);
    b->p[b->n++].series = 1;
}

/* What a list should hold, built naively; entries borrow from b. */
struct want {
    const char *name;
    const char *value;
    uint64_t count;
};

static int want_cmp(const void *x, const void *y)
{
    const struct want *a = x, *b = y;
    int c;

    if (a->count != b->count)
        return a->count > b->count ? -1 : 1;
    c = strcmp(a->name, b->name);
    if (c != 0)
        return c;
    return strcmp(a->value ? a->value : "", b->value ? b->value : "");
}

/* Adds count to the entry for name (per-name lists). */
static void want_add(struct want *w, size_t *n, const char *name,
                     uint64_t count)
{
    for (size_t i = 0; i < *n; i++) {
        if (strcmp(w[i].name, name) == 0) {
            w[i].count += count;
            return;
        }
    }
    w[(*n)++] = (struct want){name, NULL, count};
}

static void assert_list(const struct tsdb_status_list *got, struct want *w,
                        size_t n, size_t top)
{
    qsort(w, n, sizeof(*w), want_cmp);
    assert_int_equal(got->n, n < top ? n : top);
    for (size_t i = 0; i < got->n; i++) {
        assert_string_equal(got->v[i].name, w[i].name);
        if (w[i].value)
            assert_string_equal(got->v[i].value, w[i].value);
        else
            assert_null(got->v[i].value);
        assert_int_equal(got->v[i].count, w[i].count);
    }
}

static void check_against(struct tsdb *db, const struct brute *b, size_t top)
{
    struct want w[MAXP];
    struct tsdb_status st;
    size_t n = 0, names = 0;

    assert_int_equal(tsdb_status_get(db, top, &st), TSDB_OK);
    assert_int_equal(st.series, b->series);
    assert_int_equal(st.label_pairs, b->n);

    for (size_t i = 0; i < b->n; i++) {
        if (strcmp(b->p[i].name, "__name__") == 0)
            w[n++] = (struct want){b->p[i].value, NULL, b->p[i].series};
    }
    assert_list(&st.series_by_metric, w, n, top);

    n = 0;
    for (size_t i = 0; i < b->n; i++)
        want_add(w, &n, b->p[i].name, 1);
    names = n;
    assert_list(&st.values_by_name, w, n, top);
    assert_int_equal(st.label_names, names);

    n = 0;
    for (size_t i = 0; i < b->n; i++)
        want_add(w, &n, b->p[i].name, strlen(b->p[i].value) * b->p[i].series);
    assert_list(&st.bytes_by_name, w, n, top);

    for (size_t i = 0; i < b->n; i++)
        w[i] = (struct want){b->p[i].name, b->p[i].value, b->p[i].series};
    assert_list(&st.series_by_pair, w, b->n, top);
    tsdb_status_release(&st);
}

static void test_status_top_matches_brute_force(void **state)
{
    static const char *names[NAMES] = {"job", "instance", "user", "zone"};
    static const unsigned spread[NAMES] = {3, 12, 40, 2};
    static const size_t tops[] = {1, 3, 10, 25, 10000};
    char *dir = test_tmpdir("status-brute");
    struct tsdb *db = open_db(dir, 120);
    struct tsdb_appender *a = tsdb_appender_new(db);
    struct brute *b = calloc(1, sizeof(*b));
    bool *seen = calloc(2048, sizeof(*seen));
    struct tsdb_label v[1 + NAMES];
    char vals[1 + NAMES][16], err[ERRLEN];
    struct test_rng rng;
    uint64_t ref;
    size_t n;
    (void)state;

    test_rng_init(&rng, "test_status_top_matches_brute_force", 4242);
    for (int i = 0; i < 1500; i++) {
        /* Skewed metric choice: m0 gets the most series. */
        unsigned m =
            (unsigned)test_rng_below(&rng, 1 + test_rng_below(&rng, 8));
        snprintf(vals[0], sizeof(vals[0]), "m%u", m);
        v[0] = (struct tsdb_label){"__name__", vals[0]};
        n = 1;
        for (int k = 0; k < NAMES; k++) {
            if (test_rng_below(&rng, 3) == 0)
                continue;
            snprintf(vals[n], sizeof(vals[n]), "%c%u", 'a' + k,
                     (unsigned)test_rng_below(&rng, spread[k]));
            v[n] = (struct tsdb_label){names[k], vals[n]};
            n++;
        }
        assert_int_equal(tsdb_appender_series(a, v, n, &ref, err, ERRLEN), 0);
        assert_true(ref < 2048);
        assert_int_equal(tsdb_appender_add(a, ref, 1000 + i, 1.0), 0);
        if (seen[ref])
            continue;
        seen[ref] = true;
        b->series++;
        for (size_t k = 0; k < n; k++)
            brute_add(b, v[k].name, v[k].value);
    }
    assert_int_equal(tsdb_appender_commit(a, NULL), TSDB_OK);

    for (size_t i = 0; i < sizeof(tops) / sizeof(tops[0]); i++)
        check_against(db, b, tops[i]);
    tsdb_appender_free(a);
    tsdb_close(db);

    /* The same from the stored index after a reopen. */
    db = open_db(dir, 120);
    check_against(db, b, 7);
    tsdb_close(db);
    free(seen);
    free(b);
    test_rmdir(dir);
}

static void test_status_empty_database(void **state)
{
    char *dir = test_tmpdir("status-empty");
    struct tsdb *db = open_db(dir, 120);
    struct tsdb_status st;
    (void)state;

    assert_int_equal(tsdb_status_get(db, 0, &st), TSDB_OK);
    assert_int_equal(st.series, 0);
    assert_int_equal(st.label_pairs, 0);
    assert_int_equal(st.label_names, 0);
    assert_int_equal(st.series_by_metric.n, 0);
    assert_int_equal(st.values_by_name.n, 0);
    assert_int_equal(st.series_by_pair.n, 0);
    assert_int_equal(st.bytes_by_name.n, 0);
    assert_int_equal(st.head.series, 0);
    assert_int_equal(st.head.chunks, 0);
    assert_true(st.head.min_time == INT64_MAX);
    assert_true(st.head.max_time == INT64_MIN);
    tsdb_status_release(&st);
    tsdb_status_release(&st); /* released twice: a no-op */
    tsdb_close(db);
    test_rmdir(dir);
}

static void test_status_head_figures(void **state)
{
    char *dir = test_tmpdir("status-head");
    struct tsdb *db = open_db(dir, 4);
    struct tsdb_appender *a = tsdb_appender_new(db);
    struct tsdb_label x[1] = {{"__name__", "x"}};
    struct tsdb_label y[1] = {{"__name__", "y"}};
    struct tsdb_status st;
    uint64_t rx, ry;
    char err[ERRLEN];
    (void)state;

    assert_int_equal(tsdb_appender_series(a, x, 1, &rx, err, ERRLEN), 0);
    assert_int_equal(tsdb_appender_series(a, y, 1, &ry, err, ERRLEN), 0);
    /* x: 10 samples = two sealed chunks of 4 and an open one of 2. */
    for (int i = 0; i < 10; i++)
        assert_int_equal(tsdb_appender_add(a, rx, 5000 + 10 * i, i), 0);
    assert_int_equal(tsdb_appender_add(a, ry, 4000, 1), 0);
    assert_int_equal(tsdb_appender_add(a, ry, 9000, 2), 0);
    assert_int_equal(tsdb_appender_commit(a, NULL), TSDB_OK);

    assert_int_equal(tsdb_status_get(db, 0, &st), TSDB_OK);
    assert_int_equal(st.series, 2);
    assert_int_equal(st.head.series, 2);
    assert_int_equal(st.head.chunks, 4);
    assert_true(st.head.min_time == 4000);
    assert_true(st.head.max_time == 9000);
    /* The default top N is Prometheus's 10. */
    assert_int_equal(st.series_by_metric.n, 2);
    assert_string_equal(st.series_by_metric.v[0].name, "x");
    tsdb_status_release(&st);

    /* Once everything is in LMDB the head holds no samples. */
    assert_int_equal(tsdb_seal_all(db), TSDB_OK);
    assert_int_equal(tsdb_status_get(db, 0, &st), TSDB_OK);
    assert_int_equal(st.head.chunks, 0);
    assert_true(st.head.min_time == INT64_MAX);
    assert_true(st.head.max_time == 9000);
    tsdb_status_release(&st);
    tsdb_appender_free(a);
    tsdb_close(db);
    test_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_top_matches_brute_force),
        cmocka_unit_test(test_status_empty_database),
        cmocka_unit_test(test_status_head_figures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
