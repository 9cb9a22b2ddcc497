/*
 * Range functions answered from downsampled tiers (query/tier.c) against
 * the same queries over raw samples (no_tiers): irregular scrapes,
 * counter resets, stale markers, NaN and negative values, gaps of hours,
 * a series that arrives late below the horizon, and samples past the
 * horizon that the reader summarises on the fly.  For every combination
 * of function, range, offset, start and step the answers must be equal
 * (1e-9 relative, NaN equal to NaN), and the tier must have served the
 * query whenever the plan allows it.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "query/eval.h"
#include "testutil.h"
#include "tsdb/db.h"

#define MIN_MS  60000LL
#define HOUR_MS 3600000LL
#define T0      1700000123456LL /* not aligned to any tier */
#define SPAN_MS (30 * HOUR_MS)
#define STALE   0x7ff0000000000002ULL

struct fixture {
    char *dir;
    struct tsdb *db;
    struct query_opts tier, raw;
};

static void append(struct tsdb *db, const char *name, const char *job,
                   const int64_t *t, const double *v, size_t n)
{
    struct tsdb_appender *a = tsdb_appender_new(db);
    struct tsdb_label ls[2] = {{"__name__", name}, {"job", job}};
    struct tsdb_commit_result res;
    char err[256];
    uint64_t ref;

    assert_non_null(a);
    assert_int_equal(tsdb_appender_series(a, ls, 2, &ref, err, sizeof(err)),
                     TSDB_OK);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(tsdb_appender_add(a, ref, t[i], v[i]), TSDB_OK);
    assert_int_equal(tsdb_appender_commit(a, &res), TSDB_OK);
    assert_int_equal(res.accepted, n);
    tsdb_appender_free(a);
}

static double stale(void)
{
    uint64_t b = STALE;
    double d;

    memcpy(&d, &b, sizeof(d));
    return d;
}

/*
 * One series from `from` to `to`: scrapes every 5 to 64 s, a gap of
 * three hours in the middle, a counter (resets now and then) or a gauge
 * (negative values, a NaN now and then), a stale marker now and then.
 * Returns the number of samples written to t/v.
 */
static size_t gen(struct test_rng *r, bool counter, int64_t from, int64_t to,
                  int64_t *t, double *v)
{
    double c = (double)(test_rng_next(r) % 1000);
    size_t n = 0;

    for (int64_t x = from; x <= to;
         x += 5000 + (int64_t)(test_rng_next(r) % 59000)) {
        uint64_t dice = test_rng_next(r) % 1000;

        if (x > from + 10 * HOUR_MS && x < from + 13 * HOUR_MS)
            continue;
        t[n] = x;
        if (dice < 4) {
            v[n] = stale();
        } else if (counter) {
            c = dice < 12 ? (double)(test_rng_next(r) % 50)
                          : c + (double)(test_rng_next(r) % 100);
            v[n] = c;
        } else {
            v[n] = dice < 14 ? NAN : (double)(int64_t)(dice % 200) - 70.5;
        }
        n++;
    }
    return n;
}

/* A counter scraped every 30 s on the minute's grid, so that samples sit
 * exactly on bucket ends and window starts; it resets every 7 hours. */
static size_t gen_aligned(int64_t from, int64_t to, int64_t *t, double *v)
{
    size_t n = 0;

    for (int64_t x = (from / 30000 + 1) * 30000; x <= to; x += 30000) {
        t[n] = x;
        v[n] = (double)((x / 30000) % 840) * 3;
        n++;
    }
    return n;
}

static int64_t *g_t;
static double *g_v;

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    struct tsdb_options o;
    struct test_rng r;
    size_t n;

    f->dir = test_tmpdir("qtier");
    tsdb_options_init(&o);
    o.dir = f->dir;
    o.map_size = 256u << 20;
    o.tier_settle_ms = 0;
    o.tier_interval_ms = 3600 * 1000; /* passes only when the test asks */
    assert_int_equal(tsdb_open(&o, &f->db), TSDB_OK);
    g_t = malloc(80000 * sizeof(*g_t));
    g_v = malloc(80000 * sizeof(*g_v));
    test_rng_init(&r, "test_query_tier", 20261204);

    /* Two counters and a gauge over the first 20 h, then the tiers. */
    n = gen(&r, true, T0, T0 + 20 * HOUR_MS, g_t, g_v);
    append(f->db, "req_total", "a", g_t, g_v, n);
    n = gen(&r, true, T0 + 7, T0 + 20 * HOUR_MS, g_t, g_v);
    append(f->db, "req_total", "b", g_t, g_v, n);
    n = gen(&r, false, T0, T0 + 20 * HOUR_MS, g_t, g_v);
    append(f->db, "temp", "a", g_t, g_v, n);
    n = gen_aligned(T0, T0 + SPAN_MS, g_t, g_v);
    append(f->db, "req_total", "grid", g_t, g_v, n);
    assert_int_equal(tsdb_tiers_build(f->db), TSDB_OK);

    /* A lagging series writes below the horizon; the next pass must
     * summarise it again.  The rest go on past it. */
    n = gen(&r, true, T0 + 1000, T0 + 18 * HOUR_MS, g_t, g_v);
    append(f->db, "req_total", "late", g_t, g_v, n);
    assert_int_equal(tsdb_tiers_build(f->db), TSDB_OK);
    n = gen(&r, true, T0 + 18 * HOUR_MS + 1, T0 + 19 * HOUR_MS, g_t, g_v);
    append(f->db, "req_total", "late", g_t, g_v, n);
    assert_int_equal(tsdb_tiers_build(f->db), TSDB_OK);
    n = gen(&r, true, T0 + 20 * HOUR_MS + 1, T0 + SPAN_MS, g_t, g_v);
    append(f->db, "req_total", "a", g_t, g_v, n);
    n = gen(&r, false, T0 + 20 * HOUR_MS + 1, T0 + SPAN_MS, g_t, g_v);
    append(f->db, "temp", "a", g_t, g_v, n);
    assert_int_equal(tsdb_tiers_build(f->db), TSDB_OK);

    /* And past the new horizon, read on the fly only. */
    n = gen(&r, true, T0 + SPAN_MS + 1, T0 + SPAN_MS + 2 * HOUR_MS, g_t, g_v);
    append(f->db, "req_total", "a", g_t, g_v, n);

    query_opts_init(&f->tier);
    f->raw = f->tier;
    f->raw.no_tiers = true;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    tsdb_close(f->db);
    test_rmdir(f->dir);
    free(g_t);
    free(g_v);
    free(f);
    return 0;
}

static bool close_enough(double a, double b)
{
    double scale = fmax(fabs(a), fabs(b));

    if (isnan(a) || isnan(b))
        return isnan(a) && isnan(b);
    if (isinf(a) || isinf(b))
        return a == b;
    return fabs(a - b) <= 1e-9 * scale || fabs(a - b) < 1e-12;
}

static void same_result(const char *q, const struct query_result *a,
                        const struct query_result *b)
{
    if (a->nseries != b->nseries)
        fail_msg("%s: %zu series from the tier, %zu raw", q, a->nseries,
                 b->nseries);
    for (size_t i = 0; i < a->nseries; i++) {
        const struct query_series *x = &a->series[i], *y = &b->series[i];

        assert_int_equal(tsdb_labels_cmp(&x->labels, &y->labels), 0);
        if (x->n != y->n)
            fail_msg("%s: series %zu has %zu points from the tier, %zu raw", q,
                     i, x->n, y->n);
        for (size_t k = 0; k < x->n; k++) {
            if (x->t[k] != y->t[k] || !close_enough(x->v[k], y->v[k]))
                fail_msg("%s: series %zu at %lld: tier %.17g at %lld, raw "
                         "%.17g",
                         q, i, (long long)y->t[k], x->v[k], (long long)x->t[k],
                         y->v[k]);
        }
    }
}

/* Runs q over [start, end] at step both ways; returns the tier bits. */
static uint32_t compare_range(struct fixture *f, const char *q, int64_t start,
                              int64_t end, int64_t step)
{
    struct query_result a, b;
    struct query_err err;
    uint32_t res;

    if (query_eval_range(f->db, &f->tier, q, strlen(q), start, end, step, &a,
                         &err) != TSDB_OK)
        fail_msg("%s: %s", q, err.msg);
    assert_int_equal(query_eval_range(f->db, &f->raw, q, strlen(q), start, end,
                                      step, &b, &err),
                     TSDB_OK);
    assert_int_equal(b.resolutions, 1);
    same_result(q, &a, &b);
    res = a.resolutions;
    query_result_release(&a);
    query_result_release(&b);
    return res;
}

static const char *const funcs[] = {
    "rate",
    "increase",
    "delta",
    "sum_over_time",
    "count_over_time",
    "avg_over_time",
    "min_over_time",
    "max_over_time",
    "last_over_time",
    "present_over_time",
};

static void test_query_tier_range_equals_raw(void **state)
{
    struct fixture *f = *state;
    static const char *const ranges[] = {"5m", "10m", "1h", "3h"};
    static const int64_t range_ms[] = {5 * MIN_MS, 10 * MIN_MS, HOUR_MS,
                                       3 * HOUR_MS};
    static const char *const offsets[] = {"", " offset 5m", " offset 1h"};
    static const int64_t off_ms[] = {0, 5 * MIN_MS, HOUR_MS};
    static const int64_t steps[] = {5 * MIN_MS, 15 * MIN_MS, HOUR_MS,
                                    2 * HOUR_MS};
    int64_t base = (T0 / HOUR_MS) * HOUR_MS;
    size_t used = 0, runs = 0;
    char q[256];

    for (size_t fi = 0; fi < sizeof(funcs) / sizeof(funcs[0]); fi++)
        for (size_t ri = 0; ri < 4; ri++)
            for (size_t oi = 0; oi < 3; oi++)
                for (size_t si = 0; si < 4; si++) {
                    int64_t start = base + off_ms[oi] + 2 * HOUR_MS -
                                    (si == 1 ? 10 * MIN_MS : 0);
                    uint32_t res;

                    snprintf(q, sizeof(q), "%s(req_total[%s]%s)", funcs[fi],
                             ranges[ri], offsets[oi]);
                    res = compare_range(f, q, start, T0 + SPAN_MS + HOUR_MS,
                                        steps[si]);
                    runs++;
                    /* 5m tier: bit 1; 1h tier: bit 2. */
                    if (range_ms[ri] % HOUR_MS == 0 && steps[si] % HOUR_MS == 0)
                        assert_int_equal(res, 1u << 2);
                    else
                        assert_int_equal(res, 1u << 1);
                    used++;
                    snprintf(q, sizeof(q), "%s(temp[%s]%s)", funcs[fi],
                             ranges[ri], offsets[oi]);
                    compare_range(f, q, start, T0 + SPAN_MS + HOUR_MS,
                                  steps[si]);
                }
    printf("%zu range queries compared, %zu served by a tier\n", runs, used);
}

static void test_query_tier_in_expressions(void **state)
{
    struct fixture *f = *state;
    int64_t start = (T0 / HOUR_MS + 1) * HOUR_MS;
    int64_t end = T0 + SPAN_MS;
    static const char *const qs[] = {
        "sum by (job) (rate(req_total[1h]))",
        "sum(increase(req_total[2h])) / count(count_over_time(req_total[1h]))",
        "max_over_time(temp[1h]) - min_over_time(temp[1h])",
        "last_over_time({__name__=~\"req_total|temp\"}[1h])",
        "max_over_time(rate(req_total[5m])[1h:5m])",
    };

    for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++)
        assert_true(compare_range(f, qs[i], start, end, HOUR_MS) > 1);
}

static void test_query_tier_not_when_unaligned(void **state)
{
    struct fixture *f = *state;
    int64_t start = (T0 / HOUR_MS + 1) * HOUR_MS;

    /* A step that is no multiple of a tier, a start off the grid, a range
     * that is not whole buckets, @: all raw. */
    assert_int_equal(compare_range(f, "rate(req_total[1h])", start,
                                   start + 10 * HOUR_MS, 7 * MIN_MS),
                     1);
    assert_int_equal(compare_range(f, "rate(req_total[1h])", start + 1000,
                                   start + 10 * HOUR_MS, HOUR_MS),
                     1);
    assert_int_equal(compare_range(f, "rate(req_total[7m])", start,
                                   start + 10 * HOUR_MS, HOUR_MS),
                     1);
    assert_int_equal(compare_range(f, "rate(req_total[1h] @ 1700010000)", start,
                                   start + 10 * HOUR_MS, HOUR_MS),
                     1);
    assert_int_equal(compare_range(f, "irate(req_total[1h])", start,
                                   start + 10 * HOUR_MS, HOUR_MS),
                     1);
}

static void test_query_tier_instant(void **state)
{
    struct fixture *f = *state;
    struct query_result a, b;
    struct query_err err;
    int64_t t = (T0 / HOUR_MS + 5) * HOUR_MS;
    const char *q = "increase(req_total[1h])";

    for (int i = 0; i < 24; i++, t += HOUR_MS) {
        assert_int_equal(
            query_eval_instant(f->db, &f->tier, q, strlen(q), t, &a, &err),
            TSDB_OK);
        assert_int_equal(
            query_eval_instant(f->db, &f->raw, q, strlen(q), t, &b, &err),
            TSDB_OK);
        assert_int_equal(a.resolutions, 1u << 2);
        same_result(q, &a, &b);
        query_result_release(&a);
        query_result_release(&b);
    }
}

/* A tier whose retention has passed a window's start is not used for
 * it: the next finer tier that still holds it is, or raw data. */
static void test_query_tier_respects_tier_retention(void **state)
{
    struct fixture f = {0};
    struct tsdb_options o;
    int64_t start = (T0 / HOUR_MS + 1) * HOUR_MS, newest;
    size_t n;

    (void)state;
    f.dir = test_tmpdir("qtier-ret");
    tsdb_options_init(&o);
    o.dir = f.dir;
    o.map_size = 64u << 20;
    o.tier_settle_ms = 0;
    o.tier_interval_ms = 3600 * 1000;
    o.tiers[1].retention_ms = 3 * HOUR_MS; /* 1h kept 3 h, 5m forever */
    assert_int_equal(tsdb_open(&o, &f.db), TSDB_OK);
    n = gen_aligned(T0, T0 + 10 * HOUR_MS, g_t, g_v);
    append(f.db, "req_total", "grid", g_t, g_v, n);
    newest = g_t[n - 1];
    assert_int_equal(tsdb_tiers_build(f.db), TSDB_OK);
    query_opts_init(&f.tier);
    f.raw = f.tier;
    f.raw.no_tiers = true;

    assert_int_equal(
        compare_range(&f, "rate(req_total[1h])", start, newest, HOUR_MS),
        1u << 1);
    start = ((newest - 2 * HOUR_MS) / HOUR_MS + 1) * HOUR_MS;
    assert_int_equal(
        compare_range(&f, "rate(req_total[1h])", start, newest, HOUR_MS),
        1u << 2);
    tsdb_close(f.db);
    test_rmdir(f.dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_query_tier_range_equals_raw),
        cmocka_unit_test(test_query_tier_in_expressions),
        cmocka_unit_test(test_query_tier_not_when_unaligned),
        cmocka_unit_test(test_query_tier_instant),
        cmocka_unit_test(test_query_tier_respects_tier_retention),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
