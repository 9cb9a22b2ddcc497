/*
 * What the models share and nobody else needs: a table-driven reader of
 * their parameters, and the one place that turns an expected value and a
 * deviation scale into a band, a score and a verdict, so that the three
 * models mean the same thing by "score 0.9".  Pure code.
 */
#ifndef ANOMALY_MODEL_INTERNAL_H
#define ANOMALY_MODEL_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "anomaly/model.h"

extern const struct anomaly_model anomaly_ewma;
extern const struct anomaly_model anomaly_holt_winters;
extern const struct anomaly_model anomaly_seasonal_robust;

enum anomaly_param_kind {
    ANOMALY_PARAM_NUMBER,   /* a decimal number within [lo, hi] */
    ANOMALY_PARAM_STEPS,    /* a whole count of steps within [lo, hi], or a
                               duration ("6h") turned into steps of
                               cfg->interval_ms */
    ANOMALY_PARAM_DURATION, /* "1d", or 0; kept in ms within [lo, hi] */
};

/* One parameter of a model; its value lands in cfg->p[i] for the i-th
 * entry of the model's table. */
struct anomaly_param_spec {
    const char *name;
    enum anomaly_param_kind kind;
    double def, lo, hi;
};

/*
 * Sets cfg->p[i] to spec[i].def, then reads names[k] = values[k] by the
 * table.  TSDB_OK, or TSDB_EINVAL with err naming the parameter and its
 * range (an unknown name lists the known ones).  nspec is at most
 * ANOMALY_MAX_PARAMS.
 */
int anomaly_params_read(const struct anomaly_param_spec *spec, size_t nspec,
                        struct anomaly_config *cfg, const char *const *names,
                        const char *const *values, size_t n, char *err,
                        size_t errlen);

/*
 * Checks the season against the interval and sets cfg->season_steps.
 * need: the model cannot work without a season.  TSDB_OK or TSDB_EINVAL
 * with err.
 */
int anomaly_season_check(struct anomaly_config *cfg, bool need, char *err,
                         size_t errlen);

/* Deviations remembered for the confirmation channel. */
#define ANOMALY_RECENT 5
/* Values that enter the running range this many steps late, so that a
 * drift is measured from where the range was, not step by step. */
#define ANOMALY_DELAY 48

/* One channel of the score: a deviation measure, rescaled by its own
 * long-run typical size and by the decaying peak of its recent values. */
struct anomaly_chan {
    double typical; /* running mean of the measure, capped */
    double peak;    /* decaying peak of the rescaled measure */
    uint32_t n;     /* values seen, saturating at the horizon */
};

/*
 * The calibration every model carries in its state, so that one score
 * threshold means the same on every series (see model.c for the maths).
 */
struct anomaly_calib {
    struct anomaly_chan point;   /* |z| of this step: sets the band */
    struct anomaly_chan confirm; /* 2nd largest |z| of the last few */
    struct anomaly_chan fresh;   /* v beyond the values' recent range */
    double recent[ANOMALY_RECENT];
    uint32_t pos;
    double mean, spread, hi, lo; /* the values' running range, of the
                                    values older than ANOMALY_DELAY */
    double delayed[ANOMALY_DELAY];
    uint32_t seen; /* values learned, saturating */
};

void anomaly_calib_init(struct anomaly_calib *c);

/*
 * What a model expects of the next value: e, and a range [lo, hi]
 * around it that is normal in itself (lo = hi = e for a model that
 * expects one value), and the model's deviation scale s > 0 in which
 * distances beyond the range are measured.
 */
struct anomaly_expect {
    double e, lo, hi, s;
};

/*
 * Fills out for in->v against x and learns into c (unless in->learn is
 * false or v is NaN): band [lo - h, hi + h] with h = sensitivity * s *
 * the point channel's calibration; verdict as model.h defines it; the
 * score from the three channels.  warm false gives the warm-up answer
 * (NaN expected, score 0) and learns only the values' range.
 */
void anomaly_result_fill(const struct anomaly_config *cfg,
                         struct anomaly_calib *c, const struct anomaly_step *in,
                         const struct anomaly_expect *x, bool warm,
                         struct anomaly_result *out);

#endif
