/*
 * Rollup rules over a real database folder: every output of a rule
 * checked against the same aggregation written as a PromQL query over the
 * raw samples; late samples counted; open intervals recovered after a
 * restart; an interval recomputed after a crash written once.
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
#include "rollup/rollup.h"
#include "rollup/rule.h"
#include "testutil.h"
#include "tsdb/db.h"

/* A multiple of one minute, so that intervals start on the grid. */
#define T0     1700000040000LL
#define STEP   10000
#define NSTEPS 42 /* seven minutes */

struct fixture {
    char *dir;
    char state[512];
    struct tsdb *db;
    struct rollup_engine *e;
    struct query_opts o;
};

static void open_engine(struct fixture *f)
{
    char err[512];

    err[0] = '\0';
    assert_int_equal(
        rollup_open(f->db, f->state, NULL, &f->e, err, sizeof(err)), TSDB_OK);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    struct tsdb_options o;

    f->dir = test_tmpdir("rollup");
    snprintf(f->state, sizeof(f->state), "%s/rollups.json", f->dir);
    tsdb_options_init(&o);
    o.dir = f->dir;
    o.map_size = 64u << 20;
    assert_int_equal(tsdb_open(&o, &f->db), TSDB_OK);
    open_engine(f);
    query_opts_init(&f->o);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    rollup_close(f->e);
    tsdb_close(f->db);
    test_rmdir(f->dir);
    free(f);
    return 0;
}

static void put(struct fixture *f, const char *name, const char *json)
{
    char err[512] = "";
    int rc = rollup_put(f->e, name, json, strlen(json), err, sizeof(err));

    if (rc != TSDB_OK)
        fail_msg("rollup_put %s: %s", name, err);
}

static void append(struct tsdb *db, const char *name, const char *k1,
                   const char *v1, const char *k2, const char *v2, int64_t t,
                   double v)
{
    struct tsdb_appender *a = tsdb_appender_new(db);
    struct tsdb_label ls[3] = {{"__name__", name}, {k1, v1}, {k2, v2}};
    char err[256];
    uint64_t ref;

    assert_int_equal(
        tsdb_appender_series(a, ls, k2 ? 3 : 2, &ref, err, sizeof(err)),
        TSDB_OK);
    assert_int_equal(tsdb_appender_add(a, ref, t, v), TSDB_OK);
    assert_int_equal(tsdb_appender_commit(a, NULL), TSDB_OK);
    tsdb_appender_free(a);
}

/* One scrape at step i: counters per region and host (one resets at step
 * 20), and a latency gauge per host. */
static void scrape(struct fixture *f, int i)
{
    static const char *regions[] = {"eu", "us"}, *hosts[] = {"a", "b"};
    int64_t t = T0 + (int64_t)i * STEP;

    for (int r = 0; r < 2; r++) {
        for (int h = 0; h < 2; h++) {
            double v = (double)((r + 1) * 7 * i + h * i * i % 13);

            if (r == 0 && h == 1 && i >= 20)
                v = (double)(3 * (i - 20));
            append(f->db, "tok_total", "region", regions[r], "host", hosts[h],
                   t, v);
        }
    }
    for (int h = 0; h < 2; h++)
        append(f->db, "lat", "host", hosts[h], NULL, NULL, t,
               0.05 + 0.01 * ((i * 37 + h * 11) % 17));
}

struct answer {
    size_t n;
    char key[8][64];
    double v[8];
};

/* An instant query at t, keyed by the value of label key. */
static void ask(struct fixture *f, const char *q, int64_t t, const char *key,
                struct answer *out)
{
    struct query_result r;
    struct query_err err;

    memset(out, 0, sizeof(*out));
    if (query_eval_instant(f->db, &f->o, q, strlen(q), t, &r, &err) != TSDB_OK)
        fail_msg("%s: %s", q, err.msg);
    assert_int_equal(r.type, QUERY_TYPE_VECTOR);
    assert_true(r.nseries <= 8);
    for (size_t i = 0; i < r.nseries; i++) {
        const char *k = tsdb_labels_get(&r.series[i].labels, key);

        snprintf(out->key[i], sizeof(out->key[i]), "%s", k ? k : "");
        out->v[i] = r.series[i].v[0];
    }
    out->n = r.nseries;
    query_result_release(&r);
}

static void same(struct fixture *f, const char *got_q, const char *want_q,
                 int64_t t, const char *key)
{
    struct answer got, want;

    ask(f, got_q, t, key, &got);
    ask(f, want_q, t, key, &want);
    if (got.n != want.n || got.n == 0)
        fail_msg("at %lld: %s has %zu series, %s has %zu", (long long)t, got_q,
                 got.n, want_q, want.n);
    for (size_t i = 0; i < got.n; i++) {
        size_t j;

        for (j = 0; j < want.n && strcmp(got.key[i], want.key[j]); j++)
            ;
        assert_true(j < want.n);
        if (!(fabs(got.v[i] - want.v[j]) <=
              1e-9 * fmax(fabs(want.v[j]), 1e-300)))
            fail_msg("at %lld, %s=%s: %s = %.17g, %s = %.17g", (long long)t,
                     key, got.key[i], got_q, got.v[i], want_q, want.v[j]);
    }
}

#define RANGE "[59999ms] offset 1ms"

static const char *const tok_rule =
    "{\"match\": \"tok_total\", \"by\": [\"region\"], \"interval\": \"1m\", "
    "\"grace\": \"0s\", \"outputs\": [\"sum\", \"count\", \"min\", \"max\", "
    "\"avg\", \"last\", \"increase\", \"rate\"]}";
static const char *const lat_rule =
    "{\"match\": \"lat\", \"without\": [], \"interval\": \"1m\", \"grace\": "
    "\"0s\", \"outputs\": [\"quantiles(0.5, 0.9)\"]}";

/* Interval k (from 0) of the data ends here; its results are stamped so. */
static int64_t end_of(int k)
{
    return T0 + (int64_t)(k + 1) * 60000;
}

static void check_interval(struct fixture *f, int k)
{
    int64_t e = end_of(k);

    same(f, "sum by (region) (tok_total:1m_sum)",
         "sum by (region) (sum_over_time(tok_total" RANGE "))", e, "region");
    same(f, "sum by (region) (tok_total:1m_count)",
         "sum by (region) (count_over_time(tok_total" RANGE "))", e, "region");
    same(f, "sum by (region) (tok_total:1m_min)",
         "min by (region) (min_over_time(tok_total" RANGE "))", e, "region");
    same(f, "sum by (region) (tok_total:1m_max)",
         "max by (region) (max_over_time(tok_total" RANGE "))", e, "region");
    same(f, "sum by (region) (tok_total:1m_avg)",
         "sum by (region) (sum_over_time(tok_total" RANGE "))"
         " / sum by (region) (count_over_time(tok_total" RANGE "))",
         e, "region");
    same(f, "sum by (region) (tok_total:1m_last)",
         "sum by (region) (last_over_time(tok_total" RANGE "))", e, "region");
    same(f, "sum by (host) (lat:1m_quantile{quantile=\"0.5\"})",
         "quantile_over_time(0.5, lat" RANGE ")", e, "host");
    same(f, "sum by (host) (lat:1m_quantile{quantile=\"0.9\"})",
         "quantile_over_time(0.9, lat" RANGE ")", e, "host");
    if (k == 0)
        return; /* PromQL extrapolates where a counter has no earlier
                   sample; the rollup measures from the first one */
    /* On a 10 s grid the window [e - 70s, e - 10s] holds the sample before
     * the interval and its last one, so increase() does not extrapolate. */
    same(f, "sum by (region) (tok_total:1m_increase)",
         "sum by (region) (increase(tok_total[1m] offset 10s))", e, "region");
    same(f, "sum by (region) (tok_total:1m_rate)",
         "sum by (region) (increase(tok_total[1m] offset 10s)) / 60", e,
         "region");
}

static void outputs_equal_promql(void **state)
{
    struct fixture *f = *state;

    put(f, "tok", tok_rule);
    put(f, "lat", lat_rule);
    for (int i = 0; i < NSTEPS; i++)
        scrape(f, i);
    assert_int_equal(rollup_sync(f->e), TSDB_OK);
    /* The last interval is still open: nothing reached its end. */
    for (int k = 0; k < NSTEPS * STEP / 60000 - 1; k++)
        check_interval(f, k);
}

static uint64_t late_of(struct fixture *f)
{
    char *list = rollup_list_json(f->e), *p;
    unsigned long long n = 0;

    assert_non_null(list);
    p = strstr(list, "\"late_samples\":");
    assert_non_null(p);
    sscanf(p + strlen("\"late_samples\":"), "%llu", &n);
    free(list);
    return n;
}

static void late_samples_counted(void **state)
{
    struct fixture *f = *state;

    put(f, "tok", tok_rule);
    append(f->db, "tok_total", "region", "eu", "host", "a", T0 + 130000, 5);
    assert_int_equal(late_of(f), 0);
    /* Another series, lagging: its interval [T0, T0+60s) closed. */
    append(f->db, "tok_total", "region", "eu", "host", "b", T0 + 10000, 1);
    assert_int_equal(late_of(f), 1);
    /* Still in [T0+60s, T0+120s)?  That one closed too (grace 0). */
    append(f->db, "tok_total", "region", "eu", "host", "b", T0 + 125000, 2);
    assert_int_equal(late_of(f), 1);
    /* The same rule again keeps its state; a changed one starts afresh. */
    put(f, "tok", tok_rule);
    assert_int_equal(late_of(f), 1);
    put(f, "tok",
        "{\"match\": \"tok_total\", \"interval\": \"1m\", "
        "\"outputs\": [\"sum\"]}");
    assert_int_equal(late_of(f), 0);
}

static void restart(struct fixture *f)
{
    rollup_close(f->e);
    f->e = NULL;
    open_engine(f);
}

/* State open at a stop comes back from the raw samples; the results are
 * those of a run that never stopped. */
static void open_intervals_recovered(void **state)
{
    struct fixture *f = *state;

    put(f, "tok", tok_rule);
    put(f, "lat", lat_rule);
    for (int i = 0; i < NSTEPS; i++) {
        if (i == 9 || i == 27)
            restart(f);
        scrape(f, i);
    }
    assert_int_equal(rollup_sync(f->e), TSDB_OK);
    for (int k = 0; k < NSTEPS * STEP / 60000 - 1; k++)
        check_interval(f, k);
}

/* Results committed, then a crash before the state file said so: the
 * intervals are computed again and come out identical, so each holds one
 * sample. */
static void recomputed_interval_written_once(void **state)
{
    struct fixture *f = *state;
    struct answer a;
    char buf[8192];
    FILE *fp;
    size_t n;
    char *p;

    put(f, "tok", tok_rule);
    put(f, "lat", lat_rule);
    for (int i = 0; i < NSTEPS; i++)
        scrape(f, i);
    assert_int_equal(rollup_sync(f->e), TSDB_OK);
    rollup_close(f->e);
    f->e = NULL;
    fp = fopen(f->state, "r");
    assert_non_null(fp);
    n = fread(buf, 1, sizeof(buf) - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    p = strstr(buf, "\"durable_until\": ");
    assert_non_null(p);
    p += strlen("\"durable_until\": ");
    /* Back to the first interval's start: everything is recomputed. */
    memcpy(p, "1700000040000", 13);
    fp = fopen(f->state, "w");
    fputs(buf, fp);
    fclose(fp);
    open_engine(f);
    assert_int_equal(rollup_sync(f->e), TSDB_OK);
    ask(f, "count_over_time(tok_total:1m_sum[10m])", end_of(5), "region", &a);
    assert_int_equal(a.n, 2);
    assert_true(a.v[0] == 6 && a.v[1] == 6);
    check_interval(f, 2);
}

static void expect_bad(const char *json, const char *field)
{
    struct rollup_rule r;
    char err[512] = "";

    if (rollup_rule_parse("r", json, strlen(json), &r, err, sizeof(err)) !=
        TSDB_EINVAL)
        fail_msg("accepted: %s", json);
    if (strstr(err, field) == NULL)
        fail_msg("%s: error \"%s\" does not name %s", json, err, field);
}

static void bad_rules_name_the_field(void **state)
{
    struct rollup_rule r;
    char err[512];
    const char *ok = "{\"match\": \"m{a=\\\"b\\\"}\", \"interval\": \"90s\","
                     " \"outputs\": [\"quantiles(0.99,0.5)\", \"sum\"]}";
    char *canon;

    (void)state;
    expect_bad("{\"match\": \"m{\", \"interval\": \"1m\", \"outputs\": "
               "[\"sum\"]}",
               "field \"match\"");
    expect_bad("{\"match\": \"rate(m[5m])\", \"interval\": \"1m\", "
               "\"outputs\": [\"sum\"]}",
               "field \"match\"");
    expect_bad("{\"match\": \"m\", \"interval\": \"0s\", \"outputs\": "
               "[\"sum\"]}",
               "field \"interval\"");
    expect_bad("{\"match\": \"m\", \"outputs\": [\"sum\"]}",
               "field \"interval\"");
    expect_bad("{\"match\": \"m\", \"interval\": \"1m\", \"outputs\": "
               "[\"median\"]}",
               "unknown output \"median\"");
    expect_bad("{\"match\": \"m\", \"interval\": \"1m\", \"outputs\": "
               "[\"quantiles(1.5)\"]}",
               "field \"outputs\"");
    expect_bad("{\"match\": \"m\", \"interval\": \"1m\", \"outputs\": []}",
               "field \"outputs\"");
    expect_bad("{\"match\": \"m\", \"by\": [\"a\"], \"without\": [\"b\"], "
               "\"interval\": \"1m\", \"outputs\": [\"sum\"]}",
               "field \"without\"");
    expect_bad("{\"match\": \"m\", \"by\": [\"a-b\"], \"interval\": \"1m\", "
               "\"outputs\": [\"sum\"]}",
               "field \"by\"");
    expect_bad("{\"match\": \"m\", \"interval\": \"1m\", \"outputs\": "
               "[\"sum\"], \"intervl\": 1}",
               "field \"intervl\"");
    expect_bad("{\"match\": \"m\", \"interval\": \"1m\", \"grace\": \"-1s\", "
               "\"outputs\": [\"sum\"]}",
               "field \"grace\"");
    expect_bad("{\"match\": \"m\"", "invalid JSON at line 1");
    assert_int_equal(
        rollup_rule_parse("r", ok, strlen(ok), &r, err, sizeof(err)), TSDB_OK);
    canon = rollup_rule_json(&r);
    assert_string_equal(canon,
                        "{\"by\":[],\"grace\":\"10s\",\"interval\":\"1m30s\","
                        "\"match\":\"m{a=\\\"b\\\"}\",\"outputs\":[\"sum\","
                        "\"quantiles(0.5, 0.99)\"]}");
    free(canon);
    rollup_rule_release(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bad_rules_name_the_field),
        cmocka_unit_test_setup_teardown(outputs_equal_promql, setup, teardown),
        cmocka_unit_test_setup_teardown(late_samples_counted, setup, teardown),
        cmocka_unit_test_setup_teardown(open_intervals_recovered, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(recomputed_interval_written_once, setup,
                                        teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
