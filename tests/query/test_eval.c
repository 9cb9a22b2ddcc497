/*
 * PromQL evaluation over a real database folder: the worked examples of
 * protocols.md section 3 (rate, increase and irate around a counter reset,
 * the 5-minute lookback), and each operator family on small series whose
 * answers are computed by hand.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "query/eval.h"
#include "testutil.h"
#include "tsdb/db.h"

#define T0 1700000000000LL /* ms */

struct fixture {
    char *dir;
    struct tsdb *db;
    struct query_opts o;
};

static void add_series(struct tsdb *db, const char *name, const char *k1,
                       const char *v1, const char *k2, const char *v2,
                       const int64_t *t, const double *v, size_t n)
{
    struct tsdb_appender *a = tsdb_appender_new(db);
    struct tsdb_label ls[3] = {{"__name__", name}, {k1, v1}, {k2, v2}};
    size_t nl = k2 ? 3 : (k1 ? 2 : 1);
    char err[256];
    uint64_t ref;

    assert_non_null(a);
    assert_int_equal(tsdb_appender_series(a, ls, nl, &ref, err, sizeof(err)),
                     TSDB_OK);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(tsdb_appender_add(a, ref, t[i], v[i]), TSDB_OK);
    assert_int_equal(tsdb_appender_commit(a, NULL), TSDB_OK);
    tsdb_appender_free(a);
}

/*
 * req_total{job="a"}: +3 every 15 s from 3 at T0, reset to 1 at +300.
 * temp{job="a"}: a gauge sampled every 60 s up to +600.
 * cpu{host=h1..h4, dc=x|y}: constant 1, 2, 3, 4.
 * lat_bucket{le=...}: a histogram with buckets 0.1, 0.5, +Inf.
 */
static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    struct tsdb_options o;
    int64_t t[64];
    double v[64];
    static const char *hosts[] = {"h1", "h2", "h3", "h4"};
    static const char *les[] = {"0.1", "0.5", "+Inf"};
    static const double counts[] = {10, 30, 40};

    f->dir = test_tmpdir("eval");
    tsdb_options_init(&o);
    o.dir = f->dir;
    o.map_size = 64u << 20;
    assert_int_equal(tsdb_open(&o, &f->db), TSDB_OK);
    for (int i = 0; i <= 30; i++) {
        t[i] = T0 + i * 15000;
        v[i] = i < 20 ? 3 + 3 * i : 1 + 3 * (i - 20);
    }
    add_series(f->db, "req_total", "job", "a", NULL, NULL, t, v, 31);
    for (int i = 0; i <= 10; i++) {
        t[i] = T0 + i * 60000;
        v[i] = 20 + i;
    }
    add_series(f->db, "temp", "job", "a", NULL, NULL, t, v, 11);
    for (int h = 0; h < 4; h++) {
        for (int i = 0; i <= 10; i++) {
            t[i] = T0 + i * 60000;
            v[i] = h + 1;
        }
        add_series(f->db, "cpu", "host", hosts[h], "dc", h < 2 ? "x" : "y", t,
                   v, 11);
    }
    for (int b = 0; b < 3; b++) {
        for (int i = 0; i <= 10; i++) {
            t[i] = T0 + i * 60000;
            v[i] = counts[b] * i;
        }
        add_series(f->db, "lat_bucket", "le", les[b], "job", "a", t, v, 11);
    }
    query_opts_init(&f->o);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    tsdb_close(f->db);
    test_rmdir(f->dir);
    free(f);
    return 0;
}

/* The value of the only series of an instant query at T0 + at_s. */
static double only(struct fixture *f, const char *q, int at_s)
{
    struct query_result r;
    struct query_err err;
    double v;

    assert_int_equal(query_eval_instant(f->db, &f->o, q, strlen(q),
                                        T0 + at_s * 1000LL, &r, &err),
                     TSDB_OK);
    if (r.type == QUERY_TYPE_SCALAR) {
        v = r.scalar;
    } else {
        assert_int_equal(r.type, QUERY_TYPE_VECTOR);
        if (r.nseries != 1)
            fail_msg("%s: %zu series, want 1", q, r.nseries);
        assert_int_equal(r.series[0].n, 1);
        v = r.series[0].v[0];
    }
    query_result_release(&r);
    return v;
}

static size_t count(struct fixture *f, const char *q, int at_s)
{
    struct query_result r;
    struct query_err err;
    size_t n;

    assert_int_equal(query_eval_instant(f->db, &f->o, q, strlen(q),
                                        T0 + at_s * 1000LL, &r, &err),
                     TSDB_OK);
    n = r.nseries;
    query_result_release(&r);
    return n;
}

static void test_rate_family_matches_worked_examples(void **state)
{
    struct fixture *f = *state;

    /* Bit-exact: Prometheus prints 0.19999999999999998 here. */
    assert_true(only(f, "rate(req_total[1m])", 100) == 0.19999999999999998);
    assert_true(only(f, "increase(req_total[1m])", 100) == 12);
    assert_true(only(f, "increase(req_total[1m])", 310) == 9.333333333333332);
    assert_true(only(f, "irate(req_total[1m])", 310) == 0.06666666666666667);
    assert_true(only(f, "resets(req_total[1m])", 310) == 1);
    assert_int_equal(count(f, "rate(req_total[10s])", 100), 0);
}

static void test_lookback_is_five_minutes_inclusive(void **state)
{
    struct fixture *f = *state;

    assert_true(only(f, "temp", 600) == 30);
    assert_true(only(f, "temp", 900) == 30);
    assert_int_equal(count(f, "temp", 930), 0);
    assert_true(only(f, "temp offset 5m", 310) == 20);
    assert_true(only(f, "temp @ 1700000060", 900) == 21); /* Unix seconds */
    assert_true(only(f, "timestamp(temp)", 630) == (T0 + 600000) / 1000.0);
}

static void test_range_query_steps_and_sorting(void **state)
{
    struct fixture *f = *state;
    struct query_result r;
    struct query_err err;
    const char *q = "cpu";

    assert_int_equal(query_eval_range(f->db, &f->o, q, strlen(q), T0,
                                      T0 + 600000, 70000, &r, &err),
                     TSDB_OK);
    assert_int_equal(r.type, QUERY_TYPE_MATRIX);
    assert_int_equal(r.nseries, 4);
    assert_string_equal(r.series[0].labels.v[2].value, "h1");
    assert_string_equal(r.series[3].labels.v[2].value, "h4");
    /* start + k * step while <= end: 0, 70, ..., 560 s. */
    assert_int_equal(r.series[0].n, 9);
    assert_int_equal(r.series[0].t[8], T0 + 560000);
    query_result_release(&r);

    q = "cpu[5m]";
    assert_int_equal(
        query_eval_range(f->db, &f->o, q, strlen(q), T0, T0, 1000, &r, &err),
        TSDB_EINVAL);
    assert_int_equal(err.kind, QUERY_ERR_BAD_DATA);
    assert_non_null(strstr(err.msg, "range vector"));
}

static void test_aggregations(void **state)
{
    struct fixture *f = *state;

    assert_true(only(f, "sum(cpu)", 60) == 10);
    assert_true(only(f, "avg(cpu)", 60) == 2.5);
    assert_true(only(f, "count(cpu)", 60) == 4);
    assert_true(only(f, "min(cpu)", 60) == 1);
    assert_true(only(f, "max by (dc) (cpu{dc=\"y\"})", 60) == 4);
    assert_true(only(f, "stdvar(cpu)", 60) == 1.25);
    assert_true(only(f, "quantile(0.5, cpu)", 60) == 2.5);
    assert_true(only(f, "group(cpu)", 60) == 1);
    assert_int_equal(count(f, "sum by (dc) (cpu)", 60), 2);
    assert_int_equal(count(f, "sum without (host) (cpu)", 60), 2);
    assert_int_equal(count(f, "topk(3, cpu)", 60), 3);
    assert_true(only(f, "bottomk(1, cpu)", 60) == 1);
    assert_int_equal(count(f, "count_values(\"v\", cpu)", 60), 4);
    assert_true(only(f, "count_values(\"v\", cpu > bool 0)", 60) == 4);
}

static void test_binary_operators_and_matching(void **state)
{
    struct fixture *f = *state;
    struct query_result r;
    struct query_err err;
    const char *q;

    assert_true(only(f, "1 + 2 * 3 ^ 2", 0) == 19);
    assert_true(only(f, "2 ^ 3 ^ 2", 0) == 512);
    assert_true(only(f, "-2 ^ 2", 0) == -4);
    assert_true(only(f, "cpu{host=\"h2\"} * 10", 60) == 20);
    assert_int_equal(count(f, "cpu > 2", 60), 2);
    assert_int_equal(count(f, "cpu > bool 2", 60), 4);
    assert_true(only(f, "sum(cpu) / count(cpu)", 60) == 2.5);
    assert_true(only(f,
                     "cpu{host=\"h3\"} - on(dc) group_left "
                     "sum by (dc) (cpu)",
                     60) == -4);
    assert_int_equal(count(f, "cpu and cpu{dc=\"x\"}", 60), 2);
    assert_int_equal(count(f, "cpu unless cpu{dc=\"x\"}", 60), 2);
    assert_int_equal(count(f, "cpu{dc=\"x\"} or temp", 60), 3);

    q = "cpu + on(dc) cpu";
    assert_int_equal(
        query_eval_instant(f->db, &f->o, q, strlen(q), T0 + 60000, &r, &err),
        TSDB_ELIMIT);
    assert_int_equal(err.kind, QUERY_ERR_EXECUTION);
    assert_non_null(strstr(err.msg, "many-to-many matching not allowed"));
}

static void test_functions(void **state)
{
    struct fixture *f = *state;
    struct query_result r;
    struct query_err err;
    const char *q;

    /* 0.1 + (0.5 - 0.1) * 50 / 100, in Prometheus's operation order. */
    assert_true(only(f, "histogram_quantile(0.5, lat_bucket)", 300) ==
                0.30000000000000004);
    assert_true(only(f, "abs(-cpu{host=\"h1\"})", 60) == 1);
    assert_true(only(f, "clamp(cpu{host=\"h4\"}, 0, 2.5)", 60) == 2.5);
    assert_true(only(f, "round(temp / 7, 0.5)", 60) == 3);
    assert_true(only(f, "scalar(cpu{host=\"h2\"}) + 1", 60) == 3);
    assert_true(isnan(only(f, "scalar(cpu)", 60)));
    assert_true(only(f, "vector(time())", 60) == (T0 + 60000) / 1000.0);
    /* Inner steps sit at multiples of 1m since the epoch; T0 is not one,
     * so the last is at +580 s and sees the sample of +540. */
    assert_true(only(f, "max_over_time(temp[5m:1m])", 600) == 29);
    assert_true(only(f, "count_over_time(temp[5m])", 600) == 6);
    assert_true(only(f, "absent(nothing{job=\"x\"})", 60) == 1);
    assert_int_equal(count(f, "absent(temp)", 60), 0);
    assert_true(only(f, "day_of_week(vector(0))", 60) == 4); /* Thursday */

    q = "label_replace(temp, \"dst\", \"$1-x\", \"job\", \"(.*)\")";
    assert_int_equal(
        query_eval_instant(f->db, &f->o, q, strlen(q), T0 + 60000, &r, &err),
        TSDB_OK);
    assert_int_equal(r.nseries, 1);
    assert_string_equal(r.series[0].labels.v[1].name, "dst");
    assert_string_equal(r.series[0].labels.v[1].value, "a-x");
    query_result_release(&r);

    q = "absent(nothing{job=\"x\",a=~\"b\"})";
    assert_int_equal(
        query_eval_instant(f->db, &f->o, q, strlen(q), T0 + 60000, &r, &err),
        TSDB_OK);
    assert_int_equal(r.series[0].labels.n, 1);
    assert_string_equal(r.series[0].labels.v[0].value, "x");
    query_result_release(&r);
}

static void test_raw_matrix_and_errors(void **state)
{
    struct fixture *f = *state;
    struct query_result r;
    struct query_err err;
    const char *q = "temp[2m]";

    assert_int_equal(
        query_eval_instant(f->db, &f->o, q, strlen(q), T0 + 600000, &r, &err),
        TSDB_OK);
    assert_int_equal(r.type, QUERY_TYPE_MATRIX);
    assert_int_equal(r.series[0].n, 3); /* 480, 540, 600: both ends in */
    query_result_release(&r);

    q = "sum(rate(x[5m])";
    assert_int_equal(
        query_eval_instant(f->db, &f->o, q, strlen(q), T0, &r, &err),
        TSDB_EINVAL);
    assert_true(err.parse);
    assert_int_equal(err.kind, QUERY_ERR_BAD_DATA);

    /* 3,601 sorts of 3,600 values take far more than 1 ms. */
    f->o.timeout_ms = 1;
    q = "quantile_over_time(0.5, req_total[1h:1s])";
    assert_int_equal(query_eval_range(f->db, &f->o, q, strlen(q), T0,
                                      T0 + 3600000, 1000, &r, &err),
                     TSDB_ELIMIT);
    assert_int_equal(err.kind, QUERY_ERR_TIMEOUT);
    assert_non_null(strstr(err.msg, "timed out"));
    query_opts_init(&f->o);

    f->o.max_samples = 10;
    q = "req_total";
    assert_int_equal(query_eval_range(f->db, &f->o, q, strlen(q), T0,
                                      T0 + 600000, 1000, &r, &err),
                     TSDB_ELIMIT);
    assert_int_equal(err.kind, QUERY_ERR_EXECUTION);
    assert_non_null(strstr(err.msg, "too many samples"));
    query_opts_init(&f->o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rate_family_matches_worked_examples),
        cmocka_unit_test(test_lookback_is_five_minutes_inclusive),
        cmocka_unit_test(test_range_query_steps_and_sorting),
        cmocka_unit_test(test_aggregations),
        cmocka_unit_test(test_binary_operators_and_matching),
        cmocka_unit_test(test_functions),
        cmocka_unit_test(test_raw_matrix_and_errors),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
