/*
 * Tests for query/funcs.c.  Expected values are worked by hand from
 * Prometheus 2.42's formulas (protocols.md section 3); the ones marked
 * [LAB] are the exact strings Prometheus 2.42 answered and must match to
 * the bit.  Values whose last digit depends on operation order are
 * compared with a relative tolerance of 1e-12.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "query/funcs.h"
#include "tsdb/error.h"

#define MAXN 16

/* A window built from seconds, the way the examples are written. */
struct win {
    int64_t t[MAXN];
    double v[MAXN];
    struct query_window w;
};

static void win_set(struct win *x, double start_s, double end_s,
                    const double *ts, const double *vs, size_t n)
{
    assert_true(n <= MAXN);
    for (size_t i = 0; i < n; i++) {
        x->t[i] = (int64_t)llround(ts[i] * 1000);
        x->v[i] = vs[i];
    }
    x->w.t = x->t;
    x->w.v = x->v;
    x->w.n = n;
    x->w.start = (int64_t)llround(start_s * 1000);
    x->w.end = (int64_t)llround(end_s * 1000);
}

#define WIN(x, s, e, ts, vs)                                                   \
    win_set(&(x), (s), (e), (ts), (vs), sizeof(ts) / sizeof((ts)[0]))

static void near(double got, double want)
{
    double tol = 1e-12 * fabs(want);

    if (!(fabs(got - want) <= tol)) {
        fail_msg("got %.17g, want %.17g", got, want);
    }
}

static void same(double got, double want)
{
    if (isnan(want) && isnan(got))
        return;
    if (memcmp(&got, &want, sizeof(got)) != 0)
        fail_msg("got %.17g, want %.17g (bit for bit)", got, want);
}

typedef bool (*range_fn)(const struct query_window *, double *);

static double must(range_fn fn, const struct query_window *w)
{
    double out = -12345;

    assert_true(fn(w, &out));
    return out;
}

/* Counter +3 every 15 s from 3 at t0, as in protocols.md's lab run. */
static void test_query_funcs_rate_lab_example(void **state)
{
    static const double ts[] = {45, 60, 75, 90};
    static const double vs[] = {12, 15, 18, 21};
    struct win x;
    (void)state;

    WIN(x, 40, 100, ts, vs);
    same(must(query_rate, &x.w), 0.19999999999999998); /* [LAB] */
    same(must(query_increase, &x.w), 12);              /* [LAB] */
    same(must(query_delta, &x.w), 12);
}

static void test_query_funcs_increase_lab_reset(void **state)
{
    static const double ts[] = {255, 270, 285, 300};
    static const double vs[] = {54, 57, 60, 1};
    struct win x;
    (void)state;

    /* 1 - 54 + 60 = 7 over 45 s, extrapolated to 60 s. */
    WIN(x, 250, 310, ts, vs);
    same(must(query_increase, &x.w), 9.333333333333332); /* [LAB] */
    same(must(query_irate, &x.w), 0.06666666666666667);  /* [LAB] */
    same(must(query_idelta, &x.w), -59);
    same(must(query_resets, &x.w), 1);
}

static void test_query_funcs_rate_far_edges(void **state)
{
    static const double ts[] = {100, 110, 120};
    static const double vs[] = {10, 20, 30};
    struct win x;
    (void)state;

    /*
     * Edges 100 s and 80 s away, interval 10 s.  delta: 20 + 5 + 5 = 30 s.
     * Counter: zero would be 10 s before the first sample, closer than
     * 1.1 intervals, so 20 + 10 + 5 = 35 s.
     */
    WIN(x, 0, 200, ts, vs);
    same(must(query_delta, &x.w), 30);
    same(must(query_increase, &x.w), 35);
    near(must(query_rate, &x.w), 35.0 / 200);
}

static void test_query_funcs_rate_zero_point(void **state)
{
    static const double ts[] = {10, 20, 30};
    static const double vs[] = {1, 11, 21};
    static const double neg[] = {-5, 5, 15};
    struct win x;
    (void)state;

    /* Zero is 1 s before the first sample: 20 + 1 + 10 = 31 s, not 40. */
    WIN(x, 0, 40, ts, vs);
    same(must(query_increase, &x.w), 31);
    same(must(query_delta, &x.w), 40);

    /* A negative first value disables the zero limit. */
    WIN(x, 0, 40, ts, neg);
    same(must(query_increase, &x.w), 40);
}

static void test_query_funcs_rate_threshold(void **state)
{
    static const double ts[] = {11, 21, 31};
    static const double near_ts[] = {10.9, 20.9, 30.9};
    static const double vs[] = {0, 10, 20};
    struct win x;
    (void)state;

    /*
     * 10 * 1.1 rounds to exactly 11 and the test is "closer than", so an
     * 11 s gap is far: half an interval, 20 + 5 + 0 = 25 s.
     */
    WIN(x, 0, 31, ts, vs);
    same(must(query_delta, &x.w), 25);

    /* 10.9 s is near: extrapolated in full, 20 + 10.9 + 0 s. */
    WIN(x, 0, 30.9, near_ts, vs);
    near(must(query_delta, &x.w), 30.9);
}

static void test_query_funcs_rate_resets(void **state)
{
    static const double ts[] = {10, 20, 30, 40, 50, 60};
    static const double vs[] = {5, 10, 2, 8, 1, 4};
    struct win x;
    (void)state;

    /* 4 - 5 + 10 + 8 = 17; edges on the samples, so no extrapolation. */
    WIN(x, 10, 60, ts, vs);
    same(must(query_increase, &x.w), 17);
    near(must(query_rate, &x.w), 17.0 / 50);
    same(must(query_delta, &x.w), -1);
    same(must(query_resets, &x.w), 2);
    same(must(query_changes, &x.w), 5);
    same(must(query_irate, &x.w), 0.3);
    same(must(query_idelta, &x.w), 3);
}

static void test_query_funcs_too_few_samples(void **state)
{
    static const double ts[] = {10};
    static const double vs[] = {1};
    range_fn two[] = {query_rate,  query_increase, query_delta,
                      query_irate, query_idelta,   query_deriv};
    struct win x;
    double out = 7;
    bool has = true;
    (void)state;

    WIN(x, 0, 60, ts, vs);
    for (size_t i = 0; i < sizeof(two) / sizeof(two[0]); i++)
        assert_false(two[i](&x.w, &out));
    assert_false(query_predict_linear(&x.w, 60000, 10, &out));
    assert_int_equal(query_holt_winters(&x.w, 0.5, 0.5, &out, &has), TSDB_OK);
    assert_false(has);
    assert_true(out == 7);

    /* One sample is enough for the rest. */
    same(must(query_resets, &x.w), 0);
    same(must(query_changes, &x.w), 0);
    same(must(query_last_over_time, &x.w), 1);

    /* An empty window: only absent_over_time answers. */
    x.w.n = 0;
    assert_false(query_resets(&x.w, &out));
    assert_false(query_sum_over_time(&x.w, &out));
    assert_false(query_count_over_time(&x.w, &out));
    assert_false(query_present_over_time(&x.w, &out));
    assert_false(query_quantile_over_time(&x.w, 0.5, NULL, &out));
    same(must(query_absent_over_time, &x.w), 1);
}

static void test_query_funcs_irate_same_timestamp(void **state)
{
    struct query_window w;
    const int64_t t[] = {1000, 2000, 2000};
    const double v[] = {1, 2, 3};
    double out;
    (void)state;

    w.t = t;
    w.v = v;
    w.n = 3;
    w.start = 0;
    w.end = 3000;
    assert_false(query_irate(&w, &out));
    assert_false(query_idelta(&w, &out));
}

static void test_query_funcs_changes_nan(void **state)
{
    static const double ts[] = {1, 2, 3, 4, 5, 6};
    static const double vs[] = {1, NAN, NAN, 2, 2, NAN};
    struct win x;
    (void)state;

    /* 1->NaN, NaN->2 and 2->NaN change; NaN->NaN does not. */
    WIN(x, 0, 6, ts, vs);
    same(must(query_changes, &x.w), 3);
    same(must(query_resets, &x.w), 0);
}

static void test_query_funcs_deriv(void **state)
{
    static const double ts[] = {1.7e9, 1.7e9 + 10, 1.7e9 + 20};
    static const double vs[] = {1, 3, 5};
    static const double flat[] = {5, 5, 5};
    static const double inf[] = {INFINITY, INFINITY, INFINITY};
    struct win x;
    double out;
    (void)state;

    /* 2 per 10 s, at timestamps where x*x in ms would lose precision. */
    WIN(x, 1.7e9 - 5, 1.7e9 + 25, ts, vs);
    same(must(query_deriv, &x.w), 0.2);

    /* The line through 7 at 30 s after the first sample, 60 s ahead. */
    assert_true(query_predict_linear(&x.w, x.t[0] + 30000, 60, &out));
    near(out, 19);

    WIN(x, 1.7e9 - 5, 1.7e9 + 25, ts, flat);
    same(must(query_deriv, &x.w), 0);
    assert_true(query_predict_linear(&x.w, x.t[0] + 30000, 600, &out));
    same(out, 5);

    WIN(x, 1.7e9 - 5, 1.7e9 + 25, ts, inf);
    same(must(query_deriv, &x.w), NAN);
}

static void test_query_funcs_avg_over_time(void **state)
{
    static const double ts[] = {1, 2, 3, 4};
    static const double vs[] = {1, 2, 3, 4};
    static const double big[] = {1e308, 1e308, 1e308, 1e308};
    static const double inf[] = {1, INFINITY, 3, 4};
    static const double opp[] = {1, INFINITY, -INFINITY, 4};
    static const double nan[] = {1, NAN, 3, 4};
    struct win x;
    (void)state;

    WIN(x, 0, 4, ts, vs);
    same(must(query_avg_over_time, &x.w), 2.5);
    WIN(x, 0, 4, ts, big); /* the sum would overflow */
    same(must(query_avg_over_time, &x.w), 1e308);
    WIN(x, 0, 4, ts, inf);
    same(must(query_avg_over_time, &x.w), INFINITY);
    WIN(x, 0, 4, ts, opp);
    same(must(query_avg_over_time, &x.w), NAN);
    WIN(x, 0, 4, ts, nan);
    same(must(query_avg_over_time, &x.w), NAN);
}

static void test_query_funcs_sum_over_time(void **state)
{
    static const double ts[] = {1, 2, 3, 4};
    static const double vs[] = {1, 1e100, 1, -1e100};
    static const double inf[] = {1, INFINITY, 3, 4};
    static const double opp[] = {1, INFINITY, -INFINITY, 4};
    struct win x;
    (void)state;

    /* Compensated: a naive sum gives 0. */
    WIN(x, 0, 4, ts, vs);
    same(must(query_sum_over_time, &x.w), 2);
    same(must(query_count_over_time, &x.w), 4);
    same(must(query_present_over_time, &x.w), 1);
    WIN(x, 0, 4, ts, inf);
    same(must(query_sum_over_time, &x.w), INFINITY);
    WIN(x, 0, 4, ts, opp);
    same(must(query_sum_over_time, &x.w), NAN);
}

static void test_query_funcs_min_max_over_time(void **state)
{
    static const double ts[] = {1, 2, 3, 4};
    static const double vs[] = {NAN, 3, 1, NAN};
    static const double all_nan[] = {NAN, NAN, NAN, NAN};
    static const double inf[] = {2, -INFINITY, INFINITY, 0};
    struct win x;
    (void)state;

    WIN(x, 0, 4, ts, vs);
    same(must(query_min_over_time, &x.w), 1);
    same(must(query_max_over_time, &x.w), 3);
    same(must(query_last_over_time, &x.w), NAN);
    WIN(x, 0, 4, ts, all_nan);
    same(must(query_min_over_time, &x.w), NAN);
    same(must(query_max_over_time, &x.w), NAN);
    WIN(x, 0, 4, ts, inf);
    same(must(query_min_over_time, &x.w), -INFINITY);
    same(must(query_max_over_time, &x.w), INFINITY);
    same(must(query_last_over_time, &x.w), 0);
}

static void test_query_funcs_stddev_over_time(void **state)
{
    static const double ts[] = {1, 2, 3, 4, 5, 6, 7, 8};
    static const double vs[] = {2, 4, 4, 4, 5, 5, 7, 9};
    static const double t3[] = {1, 2, 3};
    static const double flat[] = {1.5990505637277868, 1.5990505637277868,
                                  1.5990505637277868};
    struct win x;
    (void)state;

    /* Population statistics: mean 5, squared deviations sum to 32. */
    WIN(x, 0, 8, ts, vs);
    near(must(query_stdvar_over_time, &x.w), 4);
    near(must(query_stddev_over_time, &x.w), 2);

    /* A constant must give exactly 0, not a rounding residue. */
    WIN(x, 0, 3, t3, flat);
    same(must(query_stdvar_over_time, &x.w), 0);
    same(must(query_stddev_over_time, &x.w), 0);
}

static void test_query_funcs_quantile(void **state)
{
    double v[4];
    double nan_first[3] = {2, NAN, 1};
    (void)state;

#define Q(q, want)                                                             \
    do {                                                                       \
        memcpy(v, (double[]){4, 1, 3, 2}, sizeof(v));                          \
        same(query_quantile((q), v, 4), (want));                               \
    } while (0)
    Q(0, 1);
    Q(0.5, 2.5);
    Q(0.75, 3.25);
    Q(1, 4);
    Q(-0.1, -INFINITY);
    Q(1.1, INFINITY);
    Q(NAN, NAN);
#undef Q
    same(query_quantile(0.5, v, 0), NAN);

    /* NaN sorts below every number. */
    same(query_quantile(0, nan_first, 3), NAN);
    same(query_quantile(1, nan_first, 3), 2);
}

static void test_query_funcs_quantile_over_time(void **state)
{
    static const double ts[] = {1, 2, 3, 4};
    static const double vs[] = {4, 1, 3, 2};
    double scratch[4], out;
    struct win x;
    (void)state;

    WIN(x, 0, 4, ts, vs);
    assert_true(query_quantile_over_time(&x.w, 0.75, scratch, &out));
    same(out, 3.25);
    assert_true(query_quantile_over_time(&x.w, 2, scratch, &out));
    same(out, INFINITY);

    /* The window itself is not reordered. */
    same(x.v[0], 4);
}

static void test_query_funcs_holt_winters(void **state)
{
    static const double ts[] = {1, 2, 3};
    static const double vs[] = {1, 2, 4};
    double out = 0;
    bool has = false;
    struct win x;
    (void)state;

    /* Level 1, trend 1; then level 2, trend 1; then level 3.5. */
    WIN(x, 0, 3, ts, vs);
    assert_int_equal(query_holt_winters(&x.w, 0.5, 0.5, &out, &has), TSDB_OK);
    assert_true(has);
    same(out, 3.5);

    assert_int_equal(query_holt_winters(&x.w, 0, 0.5, &out, &has), TSDB_EINVAL);
    assert_int_equal(query_holt_winters(&x.w, 0.5, 1, &out, &has), TSDB_EINVAL);
    assert_int_equal(query_holt_winters(&x.w, NAN, 0.5, &out, &has),
                     TSDB_EINVAL);
}

static void test_query_funcs_round(void **state)
{
    (void)state;
    same(query_round(2.5, 1), 3);
    same(query_round(-2.5, 1), -2);
    same(query_round(-2.6, 1), -3);
    same(query_round(1.234, 0.1), 1.2);
    same(query_round(5, 10), 10);
    same(query_round(14, 10), 10);
    same(query_round(NAN, 1), NAN);
    same(query_round(INFINITY, 1), INFINITY);
}

static void test_query_funcs_clamp(void **state)
{
    double out = 0;
    (void)state;

    assert_true(query_clamp(5, 0, 3, &out));
    same(out, 3);
    assert_true(query_clamp(-1, 0, 3, &out));
    same(out, 0);
    assert_true(query_clamp(NAN, 0, 3, &out));
    same(out, NAN);
    assert_true(query_clamp(2, 2, 2, &out));
    same(out, 2);
    out = 9;
    assert_false(query_clamp(1, 3, 0, &out));
    same(out, 9);

    /* Go's rules, not C's fmax/fmin. */
    same(query_clamp_min(NAN, 0), NAN);
    same(query_clamp_min(NAN, INFINITY), INFINITY);
    same(query_clamp_max(NAN, -INFINITY), -INFINITY);
    same(query_clamp_min(-0.0, 0.0), 0.0);
    same(query_clamp_max(0.0, -0.0), -0.0);
    same(query_clamp_max(7, 5), 5);
    same(query_clamp_min(7, 5), 7);
}

static double hq(double q, const struct query_bucket *in, size_t n)
{
    struct query_bucket b[MAXN];

    assert_true(n <= MAXN);
    memcpy(b, in, n * sizeof(*b));
    return query_histogram_quantile(q, b, n);
}

#define HQ(q, arr) hq((q), (arr), sizeof(arr) / sizeof((arr)[0]))

static void test_query_funcs_histogram_quantile(void **state)
{
    static const struct query_bucket b[] = {
        {0.1, 10}, {0.2, 30}, {0.5, 40}, {INFINITY, 40}};
    static const struct query_bucket shuffled[] = {
        {INFINITY, 40}, {0.2, 30}, {0.1, 4}, {0.5, 40}, {0.1, 6}};
    (void)state;

    /* Rank 20 is 10 into the (0.1, 0.2] bucket of 20. */
    near(HQ(0.5, b), 0.15);
    near(HQ(0.25, b), 0.1);
    near(HQ(0.1, b), 0.04);
    near(HQ(0.99, b), 0.488);
    near(HQ(1, b), 0.5);

    /* Order does not matter and equal bounds add up. */
    near(HQ(0.5, shuffled), 0.15);

    same(HQ(-0.5, b), -INFINITY);
    same(HQ(1.5, b), INFINITY);
    same(HQ(NAN, b), NAN);
}

static void test_query_funcs_histogram_quantile_edges(void **state)
{
    static const struct query_bucket top[] = {{1, 5}, {2, 8}, {INFINITY, 10}};
    static const struct query_bucket negative[] = {
        {-1, 5}, {0, 8}, {INFINITY, 10}};
    static const struct query_bucket no_inf[] = {{1, 5}, {2, 8}};
    static const struct query_bucket empty[] = {{1, 0}, {INFINITY, 0}};
    static const struct query_bucket only_inf[] = {{INFINITY, 10}};
    static const struct query_bucket dip[] = {
        {0.1, 10}, {0.2, 5}, {0.4, 20}, {INFINITY, 20}};
    static const struct query_bucket zero_first[] = {
        {0.1, 0}, {0.2, 0}, {INFINITY, 5}};
    (void)state;

    /* A rank in the +Inf bucket answers the highest finite bound. */
    same(HQ(0.9, top), 2);
    /* The lowest bucket starts at 0 only if its bound is positive. */
    same(HQ(0.2, negative), -1);
    near(HQ(0.6, negative), -1 + 1 * (1.0 / 3));

    same(HQ(0.5, no_inf), NAN);
    same(HQ(-1, no_inf), -INFINITY); /* q is checked first */
    same(HQ(0.5, empty), NAN);
    same(HQ(0.5, only_inf), NAN);

    /* 0.2's count 5 is raised to 10: rank 12 is 2 into (0.2, 0.4]. */
    near(HQ(0.6, dip), 0.24);

    /* Rank 0 in a bucket of count 0 divides 0 by 0, as in 2.42. */
    same(HQ(0, zero_first), NAN);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_query_funcs_rate_lab_example),
        cmocka_unit_test(test_query_funcs_increase_lab_reset),
        cmocka_unit_test(test_query_funcs_rate_far_edges),
        cmocka_unit_test(test_query_funcs_rate_zero_point),
        cmocka_unit_test(test_query_funcs_rate_threshold),
        cmocka_unit_test(test_query_funcs_rate_resets),
        cmocka_unit_test(test_query_funcs_too_few_samples),
        cmocka_unit_test(test_query_funcs_irate_same_timestamp),
        cmocka_unit_test(test_query_funcs_changes_nan),
        cmocka_unit_test(test_query_funcs_deriv),
        cmocka_unit_test(test_query_funcs_avg_over_time),
        cmocka_unit_test(test_query_funcs_sum_over_time),
        cmocka_unit_test(test_query_funcs_min_max_over_time),
        cmocka_unit_test(test_query_funcs_stddev_over_time),
        cmocka_unit_test(test_query_funcs_quantile),
        cmocka_unit_test(test_query_funcs_quantile_over_time),
        cmocka_unit_test(test_query_funcs_holt_winters),
        cmocka_unit_test(test_query_funcs_round),
        cmocka_unit_test(test_query_funcs_clamp),
        cmocka_unit_test(test_query_funcs_histogram_quantile),
        cmocka_unit_test(test_query_funcs_histogram_quantile_edges),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
