/*
 * The detector models' common interface.  A model turns a series of
 * values, one per evaluation step, into an expected value, a band and a
 * score, learning as it goes.  The live scheduler (anomaly/engine.c)
 * and tsdb-replay drive the same models through this interface, so that
 * replay and live give the same results.
 *
 * State: a model's whole state is one flat block of state_size() bytes,
 * without pointers, so that it can be persisted, copied and handed from
 * tsdb-replay to a live detector as it is.  A block written by one build
 * is read back by a build with the same ANOMALY_STATE_VERSION only.
 *
 * Pure code: no I/O, no clocks, no allocation in step().
 */
#ifndef ANOMALY_MODEL_H
#define ANOMALY_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ANOMALY_STATE_VERSION 1
#define ANOMALY_MAX_PARAMS    8
/* The longest season a model keeps per phase: a week at one minute. */
#define ANOMALY_MAX_SEASON_STEPS (7 * 24 * 60)

/* What a detector fixes for all its series; filled by the caller (the
 * first four) and by the model's configure (the rest). */
struct anomaly_config {
    int64_t interval_ms;   /* evaluation step, > 0 */
    int64_t season_ms;     /* 0: no season; else a multiple of interval */
    double sensitivity;    /* band half-width in deviations; default 3 */
    double min_deviation;  /* |observed - expected| below this is never
                              anomalous, whatever the band; default 0 */
    uint32_t season_steps; /* season_ms / interval_ms (configure sets it) */
    double p[ANOMALY_MAX_PARAMS]; /* the model's own parameters */
};

/* One evaluation step of one series. */
struct anomaly_step {
    int64_t t;      /* ms since the epoch */
    double v;       /* NaN: the expression had no value at this step */
    uint32_t phase; /* step within the season in the detector's time zone,
                       0 .. season_steps - 1 (0 without a season) */
    bool learn;     /* false inside an exclusion window: the model neither
                       learns from v nor reports it as anomalous */
};

struct anomaly_result {
    double expected; /* NaN while the model is warming up */
    double lower, upper;
    double score;   /* 0 to 1: how sure the model is that an event is
                       under way (0.5 at alert level); for a given state
                       it never falls as the deviation grows; 0 while
                       warming up, excluded, or without a value */
    bool anomalous; /* v outside [lower, upper], |v - expected| >=
                       min_deviation, learn set, and warmed up */
};

struct anomaly_model {
    const char *name; /* "ewma", "holt_winters", "seasonal_robust" */
    /*
     * Reads the model's parameters, names[i] = values[i] as text (a JSON
     * number or string, or a --param k=v of tsdb-replay), into cfg->p and
     * checks cfg as a whole (e.g. a season shorter than the interval, a
     * season the model needs but was not given).  Unknown names and
     * values out of range are refused: TSDB_EINVAL with err naming the
     * parameter and its valid range.  "season" is read by the caller into
     * cfg->season_ms before this is called.
     */
    int (*configure)(struct anomaly_config *cfg, const char *const *names,
                     const char *const *values, size_t n, char *err,
                     size_t errlen);
    size_t (*state_size)(const struct anomaly_config *cfg);
    void (*init)(void *state, const struct anomaly_config *cfg);
    void (*step)(void *state, const struct anomaly_config *cfg,
                 const struct anomaly_step *in, struct anomaly_result *out);
};

/* The model called name, or NULL. */
const struct anomaly_model *anomaly_model_find(const char *name);

/* Every model, for listings and error messages; *n receives the count. */
const struct anomaly_model *const *anomaly_models(size_t *n);

#endif
