/*
 * The three models on synthetic series with known injected anomalies: a
 * daily season (a peak in the afternoon) plus bounded noise, every 5
 * minutes, with a spike, a level shift, a missing daily peak or a slow
 * drift on day 6.  Each model must flag what it is meant to catch and
 * stay quiet on the clean series; exclusion windows, min_deviation, NaN
 * input and state copies are checked for every model.
 *
 * "Flags" means the step is anomalous (outside the band); "scores" means
 * its score reaches 0.5.  The noise is uniform, so that a clean series
 * never leaves a 3-deviation band by chance and "quiet" can be exact.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anomaly/model.h"
#include "anomaly/season.h"
#include "testutil.h"
#include "tsdb/error.h"

#define STEP_MS   300000LL
#define DAY_STEPS 288
#define DAYS      10
#define N         (DAYS * DAY_STEPS)
/* 2024-01-15 00:00:00 UTC. */
#define T0 1705276800000LL
/* Day 6, where the injected anomalies start; days 0..5 are history. */
#define INJECT (6 * DAY_STEPS)
/* Results before this are warm-up, for every model with a daily season. */
#define QUIET_FROM (2 * DAY_STEPS)

enum kind { CLEAN, SPIKE, SHIFT, NO_PEAK, DRIFT };

struct run {
    struct anomaly_config cfg;
    const struct anomaly_model *m;
    void *state;
    double v[N];
    struct anomaly_result r[N];
};

/* The daily shape: 100, and a peak of +peak around 14:00. */
static double shape(int i, double peak)
{
    double h = (double)(i % DAY_STEPS) * 24 / DAY_STEPS - 14;

    return 100 + peak * exp(-h * h / 4);
}

/* ewma has no season: a daily swing of 60 sets its band to +-60 or so,
 * and a shift of 40 is then within it.  So its injected anomalies ride
 * on the series without the peak; on the seasonal series it is asserted
 * quiet, not sharp. */
static double peak_for(const char *model)
{
    return strcmp(model, "ewma") == 0 ? 0 : 60;
}

static void make_series(double *v, enum kind k, uint64_t seed, double peak)
{
    struct test_rng rng;

    test_rng_init(&rng, "series", seed);
    for (int i = 0; i < N; i++) {
        double noise = (double)test_rng_below(&rng, 4001) / 1000 - 2;

        v[i] = shape(i, peak) + noise;
        if (k == SPIKE && i == INJECT + 36)
            v[i] += 150; /* 03:00, a quiet hour */
        if (k == SHIFT && i >= INJECT + 120)
            v[i] += 40; /* 10:00 on, for good */
        if (k == NO_PEAK && i >= INJECT && i < INJECT + DAY_STEPS)
            v[i] = 100 + noise;
        if (k == DRIFT && i >= INJECT)
            v[i] += 0.25 * (i - INJECT); /* +72 a day */
    }
}

static int setup_model(struct run *r, const char *name, const char *season,
                       double min_dev)
{
    const char *names[1], *values[1];
    char err[256];
    int64_t ms = 0;
    int rc;

    memset(&r->cfg, 0, sizeof(r->cfg));
    r->m = anomaly_model_find(name);
    assert_non_null(r->m);
    r->cfg.interval_ms = STEP_MS;
    if (season)
        r->cfg.season_ms =
            strcmp(season, "1w") == 0 ? 7 * 86400000LL : 86400000LL;
    (void)ms;
    r->cfg.sensitivity = 3;
    r->cfg.min_deviation = min_dev;
    rc = r->m->configure(&r->cfg, names, values, 0, err, sizeof(err));
    if (rc != TSDB_OK)
        return rc;
    r->state = malloc(r->m->state_size(&r->cfg));
    assert_non_null(r->state);
    r->m->init(r->state, &r->cfg);
    return TSDB_OK;
}

static void step_one(struct run *r, int i, double v, bool learn)
{
    struct anomaly_step in;

    in.t = T0 + i * STEP_MS;
    in.v = v;
    in.phase = anomaly_phase(NULL, &r->cfg, in.t);
    in.learn = learn;
    r->m->step(r->state, &r->cfg, &in, &r->r[i]);
}

/* Runs model name over a series of kind k with a daily peak of peak;
 * the caller frees r. */
static struct run *run_peaked(const char *name, enum kind k, double min_dev,
                              double peak)
{
    struct run *r = calloc(1, sizeof(*r));
    bool seasonal = strcmp(name, "ewma") != 0;

    assert_non_null(r);
    assert_int_equal(setup_model(r, name, seasonal ? "1d" : NULL, min_dev),
                     TSDB_OK);
    make_series(r->v, k, 42, peak);
    for (int i = 0; i < N; i++)
        step_one(r, i, r->v[i], true);
    return r;
}

static struct run *run_series(const char *name, enum kind k, double min_dev)
{
    return run_peaked(name, k, min_dev, peak_for(name));
}

static void run_free(struct run *r)
{
    free(r->state);
    free(r);
}

/* The first anomalous step in [from, to), or -1. */
static int first_flagged(const struct run *r, int from, int to)
{
    for (int i = from; i < to; i++)
        if (r->r[i].anomalous)
            return i;
    return -1;
}

/* Anomalous steps in [from, to). */
static int flagged(const struct run *r, int from, int to)
{
    int k = 0;

    for (int i = from; i < to; i++)
        k += r->r[i].anomalous;
    return k;
}

static double max_score(const struct run *r, int from, int to)
{
    double m = 0;

    for (int i = from; i < to; i++)
        if (r->r[i].score > m)
            m = r->r[i].score;
    return m;
}

static const char *const all_models[] = {"ewma", "holt_winters",
                                         "seasonal_robust"};

static void test_models_registry(void **state)
{
    size_t n;
    const struct anomaly_model *const *all = anomaly_models(&n);

    (void)state;
    assert_int_equal(n, 3);
    for (size_t i = 0; i < n; i++)
        assert_ptr_equal(anomaly_model_find(all[i]->name), all[i]);
    assert_null(anomaly_model_find("prophet"));
}

/* ewma has no season, but its slow variance learns the daily swing, so
 * it is held to the same: quiet on the seasonal series. */
static void test_models_quiet_on_clean_series(void **state)
{
    (void)state;
    for (size_t i = 0; i < 3; i++) {
        struct run *r = run_peaked(all_models[i], CLEAN, 0, 60);

        printf("%s: clean: %d anomalous (first: step %d), max score %.3f\n",
               all_models[i], flagged(r, QUIET_FROM, N),
               first_flagged(r, QUIET_FROM, N), max_score(r, QUIET_FROM, N));
        assert_int_equal(flagged(r, QUIET_FROM, N), 0);
        assert_true(max_score(r, QUIET_FROM, N) < 0.5);
        assert_false(isnan(r->r[N - 1].expected));
        run_free(r);
    }
}

static void test_models_flag_spike(void **state)
{
    (void)state;
    for (size_t i = 0; i < 3; i++) {
        struct run *r = run_series(all_models[i], SPIKE, 0);
        struct anomaly_result *at = &r->r[INJECT + 36];

        printf("%s: spike: score %.3f\n", all_models[i], at->score);
        assert_true(at->anomalous);
        /* Beyond everything seen for days: it scores on its own. */
        assert_true(at->score >= 0.5);
        /* Learned from as a clipped value: the next day is quiet. */
        assert_int_equal(flagged(r, INJECT + 37, INJECT + DAY_STEPS), 0);
        run_free(r);
    }
}

static void test_models_flag_level_shift(void **state)
{
    (void)state;
    for (size_t i = 0; i < 3; i++) {
        struct run *r = run_series(all_models[i], SHIFT, 0);
        int at = INJECT + 120;

        printf("%s: shift: %d anomalous in the first hour, max score %.3f\n",
               all_models[i], flagged(r, at, at + 12),
               max_score(r, at, at + 12));
        assert_true(r->r[at].anomalous);
        assert_true(max_score(r, at, at + 12) >= 0.5);
        /* Nothing before it. */
        assert_int_equal(flagged(r, QUIET_FROM, at), 0);
        run_free(r);
    }
}

/*
 * The missing peak is a seasonal model's job: a value of 100 at 14:00
 * is only odd to a model that knows 14:00 peaks.  ewma has no season:
 * to it the missing peak is a day quieter than usual, and it is asserted
 * to stay quiet rather than to catch it.
 */
static void test_models_flag_missing_peak(void **state)
{
    (void)state;
    for (size_t i = 0; i < 3; i++) {
        struct run *r = run_peaked(all_models[i], NO_PEAK, 0, 60);
        int peak = INJECT + 168; /* 14:00 */
        int k = flagged(r, peak - 12, peak + 12);

        printf("%s: missing peak: %d anomalous around 14:00, max score "
               "%.3f\n",
               all_models[i], k, max_score(r, peak - 12, peak + 12));
        if (strcmp(all_models[i], "ewma") == 0) {
            assert_int_equal(flagged(r, INJECT, INJECT + DAY_STEPS), 0);
        } else {
            assert_true(k >= 6);
        }
        /* A dip this gradual is partly taken into the level, so its
         * deviation grows slowly and stays a few bands wide: flagged,
         * and for seasonal_robust scored above anything before it, but
         * under 0.5 (about 0.4). */
        if (strcmp(all_models[i], "seasonal_robust") == 0)
            assert_true(max_score(r, peak - 24, peak + 12) >
                        max_score(r, QUIET_FROM, INJECT));
        run_free(r);
    }
}

/*
 * A slow drift (+0.25 a step, +72 a day) is followed by every model's
 * level (holt_winters' trend term takes it in: that is what it is for),
 * so the band alone lets it pass; the score sees the values leave the
 * range they kept for days, once the drift has carried them past it
 * (for the seasonal series, at the first peak after the drift began).
 */
static void test_models_score_slow_drift(void **state)
{
    (void)state;
    for (size_t i = 0; i < 3; i++) {
        struct run *r = run_series(all_models[i], DRIFT, 0);
        int first = -1, end = INJECT + DAY_STEPS - 1;

        for (int k = INJECT; k < INJECT + DAY_STEPS && first < 0; k++)
            if (r->r[k].score >= 0.5)
                first = k - INJECT;
        printf("%s: drift: first scored %d steps in, off by %.1f at the "
               "end\n",
               all_models[i], first, r->v[end] - r->r[end].expected);
        assert_true(max_score(r, QUIET_FROM, INJECT) < 0.5);
        assert_true(first >= 0);
        run_free(r);
    }
}

static void test_models_min_deviation_silences(void **state)
{
    (void)state;
    for (size_t i = 0; i < 3; i++) {
        struct run *loud = run_series(all_models[i], SPIKE, 0);
        struct run *quiet = run_series(all_models[i], SPIKE, 1000);

        assert_true(loud->r[INJECT + 36].anomalous);
        assert_int_equal(flagged(quiet, 0, N), 0);
        assert_true(max_score(quiet, 0, N) < 0.5);
        run_free(loud);
        run_free(quiet);
    }
}

/* An excluded step leaves the state as it was, byte for byte, and is
 * neither flagged nor scored, however wild its value. */
static void test_models_exclusion_not_learned(void **state)
{
    (void)state;
    for (size_t i = 0; i < 3; i++) {
        struct run *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
        size_t size;

        assert_int_equal(setup_model(a, all_models[i], "1d", 0), TSDB_OK);
        assert_int_equal(setup_model(b, all_models[i], "1d", 0), TSDB_OK);
        size = a->m->state_size(&a->cfg);
        make_series(a->v, CLEAN, 7, 60);
        for (int k = 0; k < N; k++) {
            bool excluded = k >= INJECT && k < INJECT + 36;

            step_one(a, k, excluded ? a->v[k] + 5000 : a->v[k], !excluded);
            if (!excluded)
                step_one(b, k, a->v[k], true);
            if (excluded) {
                assert_false(a->r[k].anomalous);
                assert_true(a->r[k].score == 0);
                assert_memory_equal(a->state, b->state, size);
            }
        }
        /* After the window, the same answers as if it never was. */
        assert_memory_equal(&a->r[INJECT + 36], &b->r[INJECT + 36],
                            (N - INJECT - 36) * sizeof(a->r[0]));
        run_free(a);
        run_free(b);
    }
}

static void test_models_nan_is_harmless(void **state)
{
    (void)state;
    for (size_t i = 0; i < 3; i++) {
        struct run *r = run_series(all_models[i], CLEAN, 0);
        size_t size = r->m->state_size(&r->cfg);
        void *before = malloc(size);

        memcpy(before, r->state, size);
        step_one(r, N - 1, NAN, true);
        assert_memory_equal(before, r->state, size);
        assert_false(r->r[N - 1].anomalous);
        assert_true(r->r[N - 1].score == 0);
        assert_false(isnan(r->r[N - 1].expected)); /* still an answer */
        assert_true(r->r[N - 1].lower < r->r[N - 1].upper);
        free(before);
        run_free(r);
    }
}

/* A copied state goes on exactly as the original: it is one flat block. */
static void test_models_state_copy_round_trip(void **state)
{
    (void)state;
    for (size_t i = 0; i < 3; i++) {
        struct run *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
        size_t size;

        assert_int_equal(setup_model(a, all_models[i], "1d", 0), TSDB_OK);
        assert_int_equal(setup_model(b, all_models[i], "1d", 0), TSDB_OK);
        size = a->m->state_size(&a->cfg);
        make_series(a->v, SHIFT, 9, 60);
        for (int k = 0; k < N; k++) {
            if (k == INJECT)
                memcpy(b->state, a->state, size);
            step_one(a, k, a->v[k], true);
            if (k >= INJECT)
                step_one(b, k, a->v[k], true);
        }
        assert_memory_equal(&a->r[INJECT], &b->r[INJECT],
                            (N - INJECT) * sizeof(a->r[0]));
        assert_memory_equal(a->state, b->state, size);
        run_free(a);
        run_free(b);
    }
}

static int configure_with(const char *model, int64_t season_ms,
                          const char *name, const char *value, char *err,
                          size_t errlen)
{
    struct anomaly_config cfg = {
        .interval_ms = STEP_MS, .season_ms = season_ms, .sensitivity = 3};
    const char *names[1] = {name}, *values[1] = {value};

    return anomaly_model_find(model)->configure(&cfg, names, values,
                                                name ? 1 : 0, err, errlen);
}

static void test_models_parameters_checked(void **state)
{
    char err[256];

    (void)state;
    assert_int_equal(configure_with("ewma", 0, "gamma", "1", err, sizeof(err)),
                     TSDB_EINVAL);
    assert_non_null(strstr(err, "unknown parameter \"gamma\""));
    assert_non_null(strstr(err, "alpha"));
    assert_int_equal(configure_with("ewma", 0, "alpha", "2", err, sizeof(err)),
                     TSDB_EINVAL);
    assert_non_null(strstr(err, "\"alpha\""));
    assert_int_equal(
        configure_with("ewma", 0, "alpha", "0.1x", err, sizeof(err)),
        TSDB_EINVAL);
    assert_int_equal(
        configure_with("ewma", 0, "warmup", "2h", err, sizeof(err)), TSDB_OK);
    assert_int_equal(
        configure_with("ewma", 0, "warmup", "7m", err, sizeof(err)),
        TSDB_EINVAL);
    assert_int_equal(
        configure_with("holt_winters", 0, NULL, NULL, err, sizeof(err)),
        TSDB_EINVAL);
    assert_non_null(strstr(err, "season"));
    assert_int_equal(configure_with("seasonal_robust", 86400000LL + 1000, NULL,
                                    NULL, err, sizeof(err)),
                     TSDB_EINVAL);
    assert_int_equal(configure_with("seasonal_robust", 86400000LL, "cycle",
                                    "1x", err, sizeof(err)),
                     TSDB_EINVAL);
    assert_int_equal(configure_with("seasonal_robust", 86400000LL, "cycle", "0",
                                    err, sizeof(err)),
                     TSDB_OK);
}

/* A weekly season reports after a day, from the same time on the last
 * days, and still catches the missing peak in its first week. */
static void test_models_weekly_season_starts_daily(void **state)
{
    struct run *r = calloc(1, sizeof(*r));

    (void)state;
    assert_int_equal(setup_model(r, "seasonal_robust", "1w", 0), TSDB_OK);
    make_series(r->v, NO_PEAK, 42, 60);
    for (int i = 0; i < N; i++)
        step_one(r, i, r->v[i], true);
    assert_false(isnan(r->r[DAY_STEPS + 40].expected));
    assert_int_equal(flagged(r, QUIET_FROM, INJECT), 0);
    assert_true(flagged(r, INJECT + 156, INJECT + 180) >= 6);
    run_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_models_registry),
        cmocka_unit_test(test_models_quiet_on_clean_series),
        cmocka_unit_test(test_models_flag_spike),
        cmocka_unit_test(test_models_flag_level_shift),
        cmocka_unit_test(test_models_flag_missing_peak),
        cmocka_unit_test(test_models_score_slow_drift),
        cmocka_unit_test(test_models_min_deviation_silences),
        cmocka_unit_test(test_models_exclusion_not_learned),
        cmocka_unit_test(test_models_nan_is_harmless),
        cmocka_unit_test(test_models_state_copy_round_trip),
        cmocka_unit_test(test_models_parameters_checked),
        cmocka_unit_test(test_models_weekly_season_starts_daily),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
