/*
 * Tests of tsdb/guard.c: the config parser, reject and fold for both kinds
 * of limit, a metric's own rule against the default, counts read again
 * from the index at open, the refusal message, sums kept across the
 * overflow series, and the counters.  Every test that writes ends with
 * tsdb_guard_check, which recounts from the index.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <inttypes.h>
#include <pthread.h>

#include "testutil.h"
#include "tsdb/guard.h"

#define ERRLEN 512

static struct tsdb *open_db(const char *dir, const char *guard_file)
{
    struct tsdb_options o;
    struct tsdb *db;

    tsdb_options_init(&o);
    o.dir = dir;
    o.guard_file = guard_file;
    assert_int_equal(tsdb_open(&o, &db), TSDB_OK);
    return db;
}

/* Writes text to DIR/name; returns the path (caller frees). */
static char *write_config(const char *dir, const char *name, const char *text)
{
    char *path;
    FILE *f;

    assert_true(asprintf(&path, "%s/%s", dir, name) > 0);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

/* Creates metric{k1=v1[,k2=v2]}; v is left as the guard left it. */
static int series(struct tsdb_appender *a, const char *metric, const char *k1,
                  const char *v1, const char *k2, const char *v2, uint64_t *ref,
                  char *err)
{
    struct tsdb_label v[3] = {{"__name__", metric}, {k1, v1}, {k2, v2}};
    size_t n = k2 ? 3 : k1 ? 2 : 1;

    err[0] = '\0';
    return tsdb_appender_series(a, v, n, ref, err, ERRLEN);
}

static void assert_check(struct tsdb *db)
{
    char err[ERRLEN] = "";
    int rc = tsdb_guard_check(db, err, sizeof(err));

    if (rc != TSDB_OK)
        print_error("guard check: %s\n", err);
    assert_int_equal(rc, TSDB_OK);
}

/* Commits one sample per ref so that the series reach the index. */
static void commit_refs(struct tsdb_appender *a, const uint64_t *refs, size_t n,
                        int64_t t)
{
    for (size_t i = 0; i < n; i++)
        assert_int_equal(tsdb_appender_add(a, refs[i], t, 1.0), TSDB_OK);
    assert_int_equal(tsdb_appender_commit(a, NULL), TSDB_OK);
}

static uint64_t used_of(struct tsdb *db, const char *metric, const char *label)
{
    struct tsdb_guard_stats st;
    uint64_t used = UINT64_MAX;

    assert_int_equal(tsdb_guard_stats_get(db, &st), TSDB_OK);
    for (size_t i = 0; i < st.nrules; i++) {
        const struct tsdb_guard_usage *u = &st.rules[i];
        if ((u->metric == metric ||
             (u->metric && metric && strcmp(u->metric, metric) == 0)) &&
            (u->label == label ||
             (u->label && label && strcmp(u->label, label) == 0)))
            used = u->used;
    }
    tsdb_guard_stats_release(&st);
    assert_true(used != UINT64_MAX);
    return used;
}

static void test_guard_parse_config(void **state)
{
    static const char good[] =
        "# cardinality rules\n"
        "series * 100 reject\n"
        "\n"
        "series http_requests_total 500 fold   # its own\n"
        "values user_id * 1000 fold\r\n"
        "\tvalues tenant api:calls_total 20 reject\n"
        "values user_id * 2000 reject\n"; /* replaces the line above */
    static const struct {
        const char *text;
        const char *want; /* in err */
    } bad[] = {
        {"series * 10 reject\nlimit * 10 reject\n", "line 2: unknown rule"},
        {"series * 10\n",
         "line 1: wrong field count for \"series\"; want: series"},
        {"values user * 10\n", "want: values LABEL METRIC|* LIMIT POLICY"},
        {"values user * 10 reject extra\n", "line 1: too many fields"},
        {"values a b c d e f g\n", "line 1: too many fields"},
        {"series * -1 reject\n", "bad limit \"-1\""},
        {"series * 12x reject\n", "bad limit"},
        {"series * 99999999999999999999999 reject\n", "bad limit"},
        {"series * 10 drop\n", "unknown policy \"drop\""},
        {"values 9lives * 10 fold\n", "bad label name"},
        {"series bad-metric 10 fold\n", "bad metric name"},
        {"values __name__ m 10 fold\n", "cannot name a metric"},
    };
    struct tsdb_guard_config c;
    char err[ERRLEN];
    (void)state;

    assert_int_equal(tsdb_guard_parse(good, strlen(good), &c, err, ERRLEN),
                     TSDB_OK);
    assert_int_equal(c.n, 4);
    assert_null(c.v[0].metric);
    assert_null(c.v[0].label);
    assert_int_equal(c.v[0].limit, 100);
    assert_int_equal(c.v[0].policy, TSDB_GUARD_REJECT);
    assert_string_equal(c.v[1].metric, "http_requests_total");
    assert_int_equal(c.v[1].policy, TSDB_GUARD_FOLD);
    assert_string_equal(c.v[2].label, "user_id");
    assert_null(c.v[2].metric);
    assert_int_equal(c.v[2].limit, 2000);
    assert_int_equal(c.v[2].policy, TSDB_GUARD_REJECT);
    assert_string_equal(c.v[3].metric, "api:calls_total");
    assert_string_equal(c.v[3].label, "tenant");
    tsdb_guard_config_release(&c);

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        assert_int_equal(
            tsdb_guard_parse(bad[i].text, strlen(bad[i].text), &c, err, ERRLEN),
            TSDB_EINVAL);
        if (!strstr(err, bad[i].want))
            print_error("case %zu: \"%s\" lacks \"%s\"\n", i, err, bad[i].want);
        assert_non_null(strstr(err, bad[i].want));
        assert_int_equal(c.n, 0);
    }
    tsdb_guard_config_release(&c);
}

static void test_guard_reject_series_per_metric(void **state)
{
    char *dir = test_tmpdir("guard-series");
    struct tsdb *db = open_db(dir, NULL);
    struct tsdb_appender *a = tsdb_appender_new(db);
    struct tsdb_guard_rule r = {NULL, NULL, 3, TSDB_GUARD_REJECT};
    uint64_t refs[4], ref;
    char err[ERRLEN], v[16];
    (void)state;

    assert_int_equal(tsdb_guard_set(db, &r), TSDB_OK);
    for (int i = 0; i < 3; i++) {
        snprintf(v, sizeof(v), "%d", i);
        assert_int_equal(series(a, "m", "i", v, NULL, NULL, &refs[i], err),
                         TSDB_OK);
    }
    assert_int_equal(series(a, "m", "i", "3", NULL, NULL, &ref, err),
                     TSDB_ELIMIT);
    assert_non_null(strstr(err, "metric \"m\""));
    assert_non_null(strstr(err, "default limit of 3 series"));
    assert_non_null(strstr(err, "m{i=\"3\"}"));

    /* Existing series keep working; other metrics have their own count. */
    assert_int_equal(series(a, "m", "i", "1", NULL, NULL, &ref, err), TSDB_OK);
    assert_int_equal(ref, refs[1]);
    assert_int_equal(series(a, "other", "i", "3", NULL, NULL, &refs[3], err),
                     TSDB_OK);
    commit_refs(a, refs, 4, 1000);
    assert_int_equal(used_of(db, NULL, NULL), 3);
    assert_check(db);
    tsdb_appender_free(a);
    tsdb_close(db);
    test_rmdir(dir);
}

static void test_guard_reject_label_values(void **state)
{
    char *dir = test_tmpdir("guard-values");
    struct tsdb *db = open_db(dir, NULL);
    struct tsdb_appender *a = tsdb_appender_new(db);
    struct tsdb_guard_rule r = {NULL, "user", 2, TSDB_GUARD_REJECT};
    uint64_t refs[4], ref;
    char err[ERRLEN];
    (void)state;

    assert_int_equal(tsdb_guard_set(db, &r), TSDB_OK);
    assert_int_equal(series(a, "m", "user", "a", NULL, NULL, &refs[0], err),
                     TSDB_OK);
    assert_int_equal(series(a, "m", "user", "b", NULL, NULL, &refs[1], err),
                     TSDB_OK);
    assert_int_equal(series(a, "m", "user", "c", "zone", "eu", &ref, err),
                     TSDB_ELIMIT);
    assert_string_equal(
        err, "label \"user\" is at its limit of 2 distinct values over all "
             "metrics; not creating series m{user=\"c\",zone=\"eu\"} of "
             "metric \"m\"");

    /* A known value makes no new value: a new series with it is fine,
     * in any metric, since the rule covers every metric. */
    assert_int_equal(series(a, "m", "user", "a", "zone", "eu", &refs[2], err),
                     TSDB_OK);
    assert_int_equal(series(a, "m2", "user", "b", NULL, NULL, &refs[3], err),
                     TSDB_OK);
    assert_int_equal(series(a, "m2", "user", "d", NULL, NULL, &ref, err),
                     TSDB_ELIMIT);
    assert_non_null(strstr(err, "of metric \"m2\""));
    commit_refs(a, refs, 4, 1000);
    assert_int_equal(used_of(db, NULL, "user"), 2);
    assert_check(db);
    tsdb_appender_free(a);
    tsdb_close(db);
    test_rmdir(dir);
}

static void test_guard_metric_rule_overrides_default(void **state)
{
    char *dir = test_tmpdir("guard-override");
    struct tsdb *db = open_db(dir, NULL);
    struct tsdb_appender *a = tsdb_appender_new(db);
    struct tsdb_guard_rule rules[] = {
        {NULL, "user", 2, TSDB_GUARD_REJECT},
        {"big", "user", 4, TSDB_GUARD_REJECT},
        {NULL, NULL, 10, TSDB_GUARD_REJECT},
        {"wide", NULL, 12, TSDB_GUARD_REJECT},
    };
    static const char *users[] = {"u0", "u1", "u2", "u3", "u4"};
    uint64_t ref;
    char err[ERRLEN], v[16];
    (void)state;

    assert_int_equal(tsdb_guard_replace(db, rules, 4), TSDB_OK);
    for (int i = 0; i < 4; i++)
        assert_int_equal(
            series(a, "big", "user", users[i], NULL, NULL, &ref, err), TSDB_OK);
    assert_int_equal(series(a, "big", "user", "u4", NULL, NULL, &ref, err),
                     TSDB_ELIMIT);
    assert_non_null(strstr(err, "limit of 4 distinct values for metric "
                                "\"big\""));

    /* big's values count toward the global figure (4 > 2): other metrics
     * may use those values, not new ones. */
    assert_int_equal(used_of(db, NULL, "user"), 4);
    assert_int_equal(used_of(db, "big", "user"), 4);
    assert_int_equal(series(a, "small", "user", "u3", NULL, NULL, &ref, err),
                     TSDB_OK);
    assert_int_equal(series(a, "small", "user", "u4", NULL, NULL, &ref, err),
                     TSDB_ELIMIT);
    assert_non_null(strstr(err, "limit of 2 distinct values over all"));

    /* Series per metric: wide has 12, the others the default 10. */
    for (int i = 0; i < 12; i++) {
        snprintf(v, sizeof(v), "%d", i);
        assert_int_equal(series(a, "wide", "i", v, NULL, NULL, &ref, err),
                         TSDB_OK);
        assert_int_equal(series(a, "narrow", "i", v, NULL, NULL, &ref, err),
                         i < 10 ? TSDB_OK : TSDB_ELIMIT);
    }
    assert_non_null(strstr(err, "metric \"narrow\" is at its default limit"));
    assert_int_equal(series(a, "wide", "i", "12", NULL, NULL, &ref, err),
                     TSDB_ELIMIT);
    assert_non_null(strstr(err, "metric \"wide\" is at its limit of 12"));
    assert_int_equal(used_of(db, "wide", NULL), 12);
    assert_int_equal(used_of(db, NULL, NULL), 10);
    tsdb_appender_free(a);
    tsdb_close(db);
    test_rmdir(dir);
}

static void test_guard_fold_label_values(void **state)
{
    char *dir = test_tmpdir("guard-fold");
    struct tsdb *db = open_db(dir, NULL);
    struct tsdb_appender *a = tsdb_appender_new(db);
    struct tsdb_guard_rule r = {"m", "user", 2, TSDB_GUARD_FOLD};
    struct tsdb_label v[3] = {{"__name__", "m"}, {"user", "c"}, {"zone", "eu"}};
    struct tsdb_guard_stats gs;
    struct tsdb_stats st;
    uint64_t refs[4];
    char err[ERRLEN];
    (void)state;

    assert_int_equal(tsdb_guard_set(db, &r), TSDB_OK);
    assert_int_equal(series(a, "m", "user", "a", "zone", "eu", &refs[0], err),
                     TSDB_OK);
    assert_int_equal(series(a, "m", "user", "b", "zone", "eu", &refs[1], err),
                     TSDB_OK);
    assert_int_equal(tsdb_appender_series(a, v, 3, &refs[2], err, ERRLEN),
                     TSDB_OK);
    /* The caller sees what it got: the folded labels. */
    assert_string_equal(v[1].name, "user");
    assert_string_equal(v[1].value, TSDB_GUARD_OVERFLOW);
    assert_string_equal(v[2].value, "eu");
    assert_int_equal(series(a, "m", "user", "d", "zone", "eu", &refs[3], err),
                     TSDB_OK);
    assert_int_equal(refs[3], refs[2]);
    assert_true(refs[2] != refs[0] && refs[2] != refs[1]);
    /* The overflow value is not a value that counts. */
    assert_int_equal(used_of(db, "m", "user"), 2);

    assert_int_equal(tsdb_guard_stats_get(db, &gs), TSDB_OK);
    assert_int_equal(gs.folded, 2);
    assert_int_equal(gs.refused, 0);
    assert_int_equal(gs.ncounters, 1);
    assert_string_equal(gs.counters[0].metric, "m");
    assert_string_equal(gs.counters[0].label, "user");
    assert_int_equal(gs.counters[0].folded, 2);
    tsdb_guard_stats_release(&gs);
    tsdb_stats_get(db, &st);
    assert_int_equal(st.guard_folded, 2);
    assert_int_equal(st.guard_refused, 0);
    commit_refs(a, refs, 3, 1000);
    assert_check(db);
    tsdb_appender_free(a);
    tsdb_close(db);
    test_rmdir(dir);
}

static void test_guard_fold_series_per_metric(void **state)
{
    char *dir = test_tmpdir("guard-fold-series");
    struct tsdb *db = open_db(dir, NULL);
    struct tsdb_appender *a = tsdb_appender_new(db);
    struct tsdb_guard_rule r = {"m", NULL, 2, TSDB_GUARD_FOLD};
    struct tsdb_label v[3] = {{"__name__", "m"}, {"a", "3"}, {"b", "1"}};
    uint64_t refs[3], ref;
    char err[ERRLEN];
    (void)state;

    assert_int_equal(tsdb_guard_set(db, &r), TSDB_OK);
    assert_int_equal(series(a, "m", "a", "1", "b", "1", &refs[0], err), 0);
    assert_int_equal(series(a, "m", "a", "2", "b", "1", &refs[1], err), 0);
    assert_int_equal(tsdb_appender_series(a, v, 3, &refs[2], err, ERRLEN), 0);
    assert_string_equal(v[0].value, "m");
    assert_string_equal(v[1].value, TSDB_GUARD_OVERFLOW);
    assert_string_equal(v[2].value, TSDB_GUARD_OVERFLOW);
    /* The overflow series is over the limit, and exempt from it. */
    assert_int_equal(used_of(db, "m", NULL), 3);
    assert_int_equal(series(a, "m", "a", "4", "b", "2", &ref, err), 0);
    assert_int_equal(ref, refs[2]);
    /* Nothing to fold in a series of the metric name alone. */
    assert_int_equal(series(a, "m", NULL, NULL, NULL, NULL, &ref, err),
                     TSDB_ELIMIT);
    assert_non_null(strstr(err, "metric \"m\" is at its limit of 2 series"));
    commit_refs(a, refs, 3, 1000);
    assert_check(db);
    tsdb_appender_free(a);
    tsdb_close(db);
    test_rmdir(dir);
}

/* Sums every sample of metric m, counting its series into *nseries. */
static double sum_metric(struct tsdb *db, const char *metric, size_t *nseries)
{
    const struct tsdb_labels *ls;
    struct tsdb_matcher mt;
    struct tsdb_query *q;
    const int64_t *ts;
    const double *vs;
    double sum = 0;
    char err[ERRLEN];
    size_t n;

    assert_int_equal(tsdb_matcher_init(&mt, TSDB_MATCH_EQ, "__name__", metric,
                                       err, sizeof(err)),
                     0);
    assert_int_equal(tsdb_query_open(db, &mt, 1, INT64_MIN, INT64_MAX, &q), 0);
    *nseries = 0;
    while (tsdb_query_next_series(q, &ls, NULL) == TSDB_OK) {
        (*nseries)++;
        while (tsdb_query_next_batch(q, &ts, &vs, &n) == TSDB_OK && n > 0) {
            for (size_t i = 0; i < n; i++)
                sum += vs[i];
        }
    }
    tsdb_query_close(q);
    tsdb_matcher_release(&mt);
    return sum;
}

static void test_guard_fold_keeps_totals(void **state)
{
    enum { USERS = 200, LIMIT = 10, SAMPLES = 5000, BATCH = 250 };
    char *dir = test_tmpdir("guard-totals");
    struct tsdb *db = open_db(dir, NULL);
    struct tsdb_appender *a = tsdb_appender_new(db);
    struct tsdb_guard_rule r = {NULL, "user", LIMIT, TSDB_GUARD_FOLD};
    struct tsdb_commit_result res;
    struct test_rng rng;
    double written = 0;
    size_t accepted = 0, nseries;
    bool seen[USERS] = {false};
    size_t distinct = 0;
    char err[ERRLEN], user[16];
    uint64_t ref;
    (void)state;

    test_rng_init(&rng, "test_guard_fold_keeps_totals", 20260518);
    assert_int_equal(tsdb_guard_set(db, &r), TSDB_OK);
    for (int i = 0; i < SAMPLES; i++) {
        unsigned u = (unsigned)test_rng_below(&rng, USERS);
        /* Small integers: the sum is exact whatever the order. */
        double v = (double)test_rng_below(&rng, 1000);

        snprintf(user, sizeof(user), "u%u", u);
        distinct += !seen[u];
        seen[u] = true;
        assert_int_equal(
            series(a, "tokens", "user", user, "kind", "in", &ref, err),
            TSDB_OK);
        /* One clock for all: the overflow series gets rising times. */
        assert_int_equal(tsdb_appender_add(a, ref, 1000 + i, v), TSDB_OK);
        written += v;
        if ((i + 1) % BATCH == 0) {
            assert_int_equal(tsdb_appender_commit(a, &res), TSDB_OK);
            assert_int_equal(res.conflicts + res.out_of_order, 0);
            accepted += res.accepted;
        }
    }
    assert_int_equal(accepted, SAMPLES);
    assert_true(distinct > LIMIT);
    assert_true(sum_metric(db, "tokens", &nseries) == written);
    assert_int_equal(nseries, LIMIT + 1);
    assert_int_equal(used_of(db, NULL, "user"), LIMIT);
    assert_check(db);
    tsdb_appender_free(a);
    tsdb_close(db);

    /* And after a reopen, from the stored chunks. */
    db = open_db(dir, NULL);
    assert_true(sum_metric(db, "tokens", &nseries) == written);
    assert_int_equal(nseries, LIMIT + 1);
    tsdb_close(db);
    test_rmdir(dir);
}

static void test_guard_counts_survive_reopen(void **state)
{
    char *dir = test_tmpdir("guard-reopen");
    char *conf = write_config(dir, "guard.conf",
                              "series m 3 reject\n"
                              "values user * 3 fold\n"
                              "values tenant m 2 reject\n");
    struct tsdb *db = open_db(dir, conf);
    struct tsdb_appender *a = tsdb_appender_new(db);
    uint64_t refs[4], ref;
    char err[ERRLEN];
    (void)state;

    assert_int_equal(series(a, "m", "tenant", "t1", NULL, NULL, &refs[0], err),
                     0);
    assert_int_equal(series(a, "m", "tenant", "t2", NULL, NULL, &refs[1], err),
                     0);
    assert_int_equal(series(a, "n", "user", "a", NULL, NULL, &refs[2], err), 0);
    assert_int_equal(series(a, "n", "user", "b", NULL, NULL, &refs[3], err), 0);
    commit_refs(a, refs, 4, 1000);
    /* A series created and never committed is not in the index. */
    assert_int_equal(series(a, "n", "user", "c", NULL, NULL, &ref, err), 0);
    tsdb_appender_rollback(a);
    tsdb_appender_free(a);
    tsdb_close(db);

    db = open_db(dir, conf);
    a = tsdb_appender_new(db);
    assert_check(db);
    assert_int_equal(used_of(db, "m", NULL), 2);
    assert_int_equal(used_of(db, "m", "tenant"), 2);
    assert_int_equal(used_of(db, NULL, "user"), 2);
    /* Counted from the index: the limits bite without a warm-up. */
    assert_int_equal(series(a, "m", "tenant", "t3", NULL, NULL, &ref, err),
                     TSDB_ELIMIT);
    assert_non_null(strstr(err, "label \"tenant\""));
    assert_int_equal(series(a, "m", "tenant", "t1", "x", "1", &ref, err), 0);
    assert_int_equal(series(a, "m", "tenant", "t2", "x", "1", &ref, err),
                     TSDB_ELIMIT);
    assert_non_null(strstr(err, "metric \"m\" is at its limit of 3 series"));
    assert_int_equal(series(a, "n", "user", "c", NULL, NULL, &refs[0], err), 0);
    assert_int_equal(series(a, "n", "user", "d", NULL, NULL, &refs[1], err), 0);
    assert_true(refs[0] != refs[1]);
    commit_refs(a, refs, 2, 2000);
    tsdb_appender_free(a);
    tsdb_close(db);

    /* The overflow series is stored but its value is not counted. */
    db = open_db(dir, conf);
    assert_check(db);
    assert_int_equal(used_of(db, NULL, "user"), 3);
    tsdb_close(db);
    free(conf);
    test_rmdir(dir);
}

static void test_guard_rule_counts_existing_data(void **state)
{
    char *dir = test_tmpdir("guard-late");
    struct tsdb *db = open_db(dir, NULL);
    struct tsdb_appender *a = tsdb_appender_new(db);
    struct tsdb_guard_rule r = {"m", "user", 5, TSDB_GUARD_REJECT};
    uint64_t refs[8], ref;
    char err[ERRLEN], v[16];
    (void)state;

    /* Written before any rule: 8 users in m, 3 in other. */
    for (int i = 0; i < 8; i++) {
        snprintf(v, sizeof(v), "u%d", i);
        assert_int_equal(series(a, "m", "user", v, NULL, NULL, &refs[i], err),
                         0);
    }
    commit_refs(a, refs, 8, 1000);
    for (int i = 10; i < 13; i++) {
        snprintf(v, sizeof(v), "u%d", i);
        assert_int_equal(
            series(a, "other", "user", v, NULL, NULL, &refs[0], err), 0);
        commit_refs(a, refs, 1, 1000);
    }

    assert_int_equal(tsdb_guard_set(db, &r), TSDB_OK);
    assert_int_equal(used_of(db, "m", "user"), 8);
    assert_check(db);
    /* Over the limit already: old values work, new ones do not. */
    assert_int_equal(series(a, "m", "user", "u7", "x", "1", &ref, err), 0);
    assert_int_equal(series(a, "m", "user", "u10", NULL, NULL, &ref, err),
                     TSDB_ELIMIT);
    /* Changing a rule keeps its count. */
    r.limit = 100;
    assert_int_equal(tsdb_guard_set(db, &r), TSDB_OK);
    assert_int_equal(used_of(db, "m", "user"), 8);
    assert_int_equal(series(a, "m", "user", "u10", NULL, NULL, &ref, err), 0);
    assert_int_equal(used_of(db, "m", "user"), 9);
    /* Bad rules are refused. */
    r.label = "__name__";
    assert_int_equal(tsdb_guard_set(db, &r), TSDB_EINVAL);
    r.label = "bad-name";
    assert_int_equal(tsdb_guard_set(db, &r), TSDB_EINVAL);
    tsdb_appender_free(a);
    tsdb_close(db);
    test_rmdir(dir);
}

static void test_guard_bad_file_keeps_rules(void **state)
{
    char *dir = test_tmpdir("guard-badfile");
    char *bad = write_config(dir, "bad.conf", "values user * ten fold\n");
    char *good = write_config(dir, "good.conf", "values user * 1 reject\n");
    struct tsdb_options o;
    struct tsdb *db;
    struct tsdb_appender *a;
    char err[ERRLEN], *missing;
    uint64_t ref;
    (void)state;

    /* A broken config stops the open: limits silently off are worse. */
    tsdb_options_init(&o);
    o.dir = dir;
    o.guard_file = bad;
    assert_int_equal(tsdb_open(&o, &db), TSDB_EINVAL);

    db = open_db(dir, good);
    a = tsdb_appender_new(db);
    assert_int_equal(tsdb_guard_load(db, bad, err, sizeof(err)), TSDB_EINVAL);
    assert_non_null(strstr(err, "bad.conf"));
    assert_non_null(strstr(err, "line 1: bad limit \"ten\""));
    assert_true(asprintf(&missing, "%s/none.conf", dir) > 0);
    assert_int_equal(tsdb_guard_load(db, missing, err, sizeof(err)),
                     TSDB_ENOTFOUND);
    assert_int_equal(series(a, "m", "user", "a", NULL, NULL, &ref, err), 0);
    assert_int_equal(series(a, "m", "user", "b", NULL, NULL, &ref, err),
                     TSDB_ELIMIT);
    /* An empty config removes every rule. */
    assert_int_equal(tsdb_guard_replace(db, NULL, 0), TSDB_OK);
    assert_int_equal(series(a, "m", "user", "b", NULL, NULL, &ref, err), 0);
    tsdb_appender_free(a);
    tsdb_close(db);
    free(missing);
    free(bad);
    free(good);
    test_rmdir(dir);
}

static void test_guard_counters_per_metric_and_label(void **state)
{
    char *dir = test_tmpdir("guard-counters");
    struct tsdb *db = open_db(dir, NULL);
    struct tsdb_appender *a = tsdb_appender_new(db);
    struct tsdb_guard_rule rules[] = {
        {NULL, "user", 1, TSDB_GUARD_REJECT},
        {NULL, "path", 1, TSDB_GUARD_FOLD},
        {"b", NULL, 1, TSDB_GUARD_REJECT},
    };
    struct tsdb_guard_stats gs;
    struct tsdb_stats st;
    uint64_t ref;
    char err[ERRLEN];
    (void)state;

    assert_int_equal(tsdb_guard_replace(db, rules, 3), TSDB_OK);
    assert_int_equal(series(a, "a", "user", "x", NULL, NULL, &ref, err), 0);
    assert_int_equal(series(a, "a", "user", "y", NULL, NULL, &ref, err),
                     TSDB_ELIMIT);
    assert_int_equal(series(a, "a", "user", "z", NULL, NULL, &ref, err),
                     TSDB_ELIMIT);
    assert_int_equal(series(a, "b", "path", "/1", NULL, NULL, &ref, err), 0);
    /* Folded; the overflow series is exempt from b's series limit. */
    assert_int_equal(series(a, "b", "path", "/2", NULL, NULL, &ref, err), 0);
    assert_int_equal(series(a, "b", "q", "1", NULL, NULL, &ref, err),
                     TSDB_ELIMIT);
    assert_int_equal(series(a, "c", "path", "/3", NULL, NULL, &ref, err), 0);

    assert_int_equal(tsdb_guard_stats_get(db, &gs), TSDB_OK);
    assert_int_equal(gs.refused, 3);
    assert_int_equal(gs.folded, 2);
    assert_int_equal(gs.ncounters, 4);
    assert_string_equal(gs.counters[0].metric, "a");
    assert_string_equal(gs.counters[0].label, "user");
    assert_int_equal(gs.counters[0].refused, 2);
    assert_string_equal(gs.counters[1].metric, "b");
    assert_null(gs.counters[1].label);
    assert_int_equal(gs.counters[1].refused, 1);
    assert_string_equal(gs.counters[2].metric, "b");
    assert_string_equal(gs.counters[2].label, "path");
    assert_int_equal(gs.counters[2].folded, 1);
    assert_string_equal(gs.counters[3].metric, "c");
    assert_int_equal(gs.counters[3].folded, 1);
    assert_int_equal(gs.nrules, 3);
    assert_int_equal(gs.rules[2].used, 2);
    tsdb_guard_stats_release(&gs);
    tsdb_stats_get(db, &st);
    assert_int_equal(st.guard_refused, 3);
    assert_int_equal(st.guard_folded, 2);
    tsdb_appender_free(a);
    tsdb_close(db);
    test_rmdir(dir);
}

/* Random series under several rules; the counts must equal the index's,
 * before and after a reopen. */
static void test_guard_random_counts_match_index(void **state)
{
    static const char *labels[] = {"user", "tenant", "zone"};
    char *dir = test_tmpdir("guard-random");
    char *conf = write_config(dir, "g.conf",
                              "series * 40 fold\n"
                              "series m0 25 reject\n"
                              "values user * 30 fold\n"
                              "values tenant m1 5 reject\n"
                              "values zone * 4 reject\n");
    struct tsdb *db = open_db(dir, conf);
    struct tsdb_appender *a = tsdb_appender_new(db);
    struct test_rng rng;
    char err[ERRLEN], metric[16], v1[16], v2[16];
    uint64_t ref;
    int rc;
    (void)state;

    test_rng_init(&rng, "test_guard_random_counts_match_index", 77);
    for (int i = 0; i < 600; i++) {
        size_t l1 = test_rng_below(&rng, 3), l2 = (l1 + 1) % 3;
        snprintf(metric, sizeof(metric), "m%u",
                 (unsigned)test_rng_below(&rng, 4));
        snprintf(v1, sizeof(v1), "v%u", (unsigned)test_rng_below(&rng, 60));
        snprintf(v2, sizeof(v2), "w%u", (unsigned)test_rng_below(&rng, 6));
        rc = series(a, metric, labels[l1], v1, labels[l2], v2, &ref, err);
        assert_true(rc == TSDB_OK || rc == TSDB_ELIMIT);
        if (rc == TSDB_OK)
            assert_int_equal(tsdb_appender_add(a, ref, 1000 + i, 1), 0);
        if (i % 50 == 49)
            assert_int_equal(tsdb_appender_commit(a, NULL), TSDB_OK);
    }
    assert_int_equal(tsdb_appender_commit(a, NULL), TSDB_OK);
    assert_check(db);
    assert_true(used_of(db, NULL, "zone") <= 4);
    assert_true(used_of(db, "m1", "tenant") <= 5);
    assert_true(used_of(db, "m0", NULL) <= 25);
    tsdb_appender_free(a);
    tsdb_close(db);
    db = open_db(dir, conf);
    assert_check(db);
    tsdb_close(db);
    free(conf);
    test_rmdir(dir);
}

enum { WRITERS = 4, PER_WRITER = 100, SHARED_LIMIT = 50 };

struct writer {
    struct tsdb *db;
    int id;
    size_t created;
};

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    struct tsdb_appender *a = tsdb_appender_new(w->db);
    char err[ERRLEN], user[32];
    uint64_t ref;
    int rc;

    for (int i = 0; i < PER_WRITER; i++) {
        snprintf(user, sizeof(user), "w%d-%d", w->id, i);
        rc = series(a, "m", "user", user, NULL, NULL, &ref, err);
        if (rc == TSDB_OK) {
            w->created++;
            tsdb_appender_add(a, ref, 1000, 1.0);
        } else if (rc != TSDB_ELIMIT) {
            break;
        }
    }
    tsdb_appender_commit(a, NULL);
    tsdb_appender_free(a);
    return NULL;
}

/* Check and count are one step under the head lock: racing creators
 * never take a limit past its value. */
static void test_guard_concurrent_creators_never_overshoot(void **state)
{
    char *dir = test_tmpdir("guard-race");
    struct tsdb *db = open_db(dir, NULL);
    struct tsdb_guard_rule r = {NULL, "user", SHARED_LIMIT, TSDB_GUARD_REJECT};
    struct writer w[WRITERS];
    pthread_t t[WRITERS];
    struct tsdb_stats st;
    size_t created = 0;
    (void)state;

    assert_int_equal(tsdb_guard_set(db, &r), TSDB_OK);
    for (int i = 0; i < WRITERS; i++) {
        w[i] = (struct writer){db, i, 0};
        assert_int_equal(pthread_create(&t[i], NULL, writer_main, &w[i]), 0);
    }
    for (int i = 0; i < WRITERS; i++) {
        pthread_join(t[i], NULL);
        created += w[i].created;
    }
    assert_int_equal(created, SHARED_LIMIT);
    tsdb_stats_get(db, &st);
    assert_int_equal(st.guard_refused, WRITERS * PER_WRITER - SHARED_LIMIT);
    assert_int_equal(used_of(db, NULL, "user"), SHARED_LIMIT);
    assert_check(db);
    tsdb_close(db);
    test_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_guard_parse_config),
        cmocka_unit_test(test_guard_reject_series_per_metric),
        cmocka_unit_test(test_guard_reject_label_values),
        cmocka_unit_test(test_guard_metric_rule_overrides_default),
        cmocka_unit_test(test_guard_fold_label_values),
        cmocka_unit_test(test_guard_fold_series_per_metric),
        cmocka_unit_test(test_guard_fold_keeps_totals),
        cmocka_unit_test(test_guard_counts_survive_reopen),
        cmocka_unit_test(test_guard_rule_counts_existing_data),
        cmocka_unit_test(test_guard_bad_file_keeps_rules),
        cmocka_unit_test(test_guard_counters_per_metric_and_label),
        cmocka_unit_test(test_guard_random_counts_match_index),
        cmocka_unit_test(test_guard_concurrent_creators_never_overshoot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
