/*
 * holt_winters: additive level, trend and season, with a band from the
 * running variance of the one-step forecast error.
 *
 *   e_t  = L + T + S[p]                 forecast for phase p
 *   r_t  = x_t - e_t                    clipped to +-clip * sd for learning
 *   L'   = L + T + a r_t
 *   T'   = T + a b r_t                  (error-correction form)
 *   S[p] = S[p] + g (1 - a) r_t
 *   v    = (1 - d) v + d min(r_t, 2 sd)^2   running error variance, sd = sqrt v
 *   band = e_t +- sensitivity * F * sd
 *
 * F >= 1 and the score are model.c's calibration.  The first season seeds
 * L (its mean) and S (each phase's value less that mean); the model
 * reports from the end of the first season plus `warmup` steps.  The
 * clipped update keeps one spike out of L and S, while a lasting shift
 * is taken into L within a few 1/a steps.
 *
 * Parameters (cfg->p), a season is required:
 *   alpha   0.1    (0 .. 1]      level
 *   beta    0.01   [0 .. 1]      trend, relative to alpha
 *   gamma   0.3    [0 .. 1]      season
 *   delta   0.02   (0 .. 1]      error variance
 *   clip    4      0.5 .. 1000   largest error learned, in deviations
 *   warmup  30     0 .. 100000   steps after the first season
 */
#include <math.h>
#include <string.h>

#include "anomaly/model_internal.h"
#include "tsdb/error.h"

enum { P_ALPHA, P_BETA, P_GAMMA, P_DELTA, P_CLIP, P_WARMUP, P_COUNT };

/* The largest error the variance learns, in deviations (see hw_learn). */
#define HW_VAR_CLIP 2.0

static const struct anomaly_param_spec hw_params[P_COUNT] = {
    [P_ALPHA] = {"alpha", ANOMALY_PARAM_NUMBER, 0.1, 1e-6, 1},
    [P_BETA] = {"beta", ANOMALY_PARAM_NUMBER, 0.01, 0, 1},
    [P_GAMMA] = {"gamma", ANOMALY_PARAM_NUMBER, 0.3, 0, 1},
    [P_DELTA] = {"delta", ANOMALY_PARAM_NUMBER, 0.02, 1e-6, 1},
    [P_CLIP] = {"clip", ANOMALY_PARAM_NUMBER, 4, 0.5, 1000},
    [P_WARMUP] = {"warmup", ANOMALY_PARAM_STEPS, 30, 0, 100000},
};

struct hw_state {
    uint64_t n; /* values learned */
    double level, trend, var;
    double sum;      /* of the first season's values, to seed the level */
    uint32_t seeded; /* first-season values seen */
    struct anomaly_calib calib;
    double season[]; /* season_steps; NaN until seen in the first season */
};

static int hw_configure(struct anomaly_config *cfg, const char *const *names,
                        const char *const *values, size_t n, char *err,
                        size_t errlen)
{
    int rc = anomaly_params_read(hw_params, P_COUNT, cfg, names, values, n, err,
                                 errlen);

    if (rc != TSDB_OK)
        return rc;
    return anomaly_season_check(cfg, true, err, errlen);
}

static size_t hw_state_size(const struct anomaly_config *cfg)
{
    return sizeof(struct hw_state) + cfg->season_steps * sizeof(double);
}

static void hw_init(void *state, const struct anomaly_config *cfg)
{
    struct hw_state *st = state;

    memset(st, 0, sizeof(*st));
    anomaly_calib_init(&st->calib);
    for (uint32_t p = 0; p < cfg->season_steps; p++)
        st->season[p] = NAN;
}

/* The first season: remember values; at its end, seed L and S. */
static void hw_seed(struct hw_state *st, const struct anomaly_config *cfg,
                    uint32_t phase, double x)
{
    if (isnan(st->season[phase])) {
        st->season[phase] = x;
        st->sum += x;
        st->seeded++;
    }
    if (++st->n < cfg->season_steps)
        return;
    st->level = st->seeded ? st->sum / st->seeded : x;
    for (uint32_t p = 0; p < cfg->season_steps; p++)
        st->season[p] = isnan(st->season[p]) ? 0 : st->season[p] - st->level;
}

static void hw_learn(struct hw_state *st, const struct anomaly_config *cfg,
                     uint32_t phase, double r, double sd)
{
    double a = cfg->p[P_ALPHA], lim = cfg->p[P_CLIP] * sd;
    double rc = r > lim ? lim : r < -lim ? -lim : r;

    st->level += st->trend + a * rc;
    st->trend += a * cfg->p[P_BETA] * rc;
    st->season[phase] += cfg->p[P_GAMMA] * (1 - a) * rc;
    /* The variance learns at most HW_VAR_CLIP deviations a step, so
     * that an anomaly widens the band by a few percent a step and not
     * by a third (which would hide it within a few steps). */
    if (isfinite(sd))
        rc = r > HW_VAR_CLIP * sd    ? HW_VAR_CLIP * sd
             : r < -HW_VAR_CLIP * sd ? -HW_VAR_CLIP * sd
                                     : r;
    st->var += cfg->p[P_DELTA] * (rc * rc - st->var);
    st->n++;
}

static void hw_step(void *state, const struct anomaly_config *cfg,
                    const struct anomaly_step *in, struct anomaly_result *out)
{
    struct hw_state *st = state;
    uint32_t phase = in->phase < cfg->season_steps ? in->phase : 0;
    bool seeded = st->n >= cfg->season_steps;
    bool warm = st->n >= cfg->season_steps + (uint64_t)cfg->p[P_WARMUP];
    double e = st->level + st->trend + st->season[phase];
    double sd = sqrt(st->var), floor = 1e-3 * fabs(st->level) + 1e-9;
    bool use = in->learn && isfinite(in->v);
    struct anomaly_expect x;

    if (sd < floor)
        sd = floor;
    x.e = x.lo = x.hi = seeded ? e : NAN;
    x.s = sd;
    anomaly_result_fill(cfg, &st->calib, in, &x, warm, out);
    if (!use)
        return;
    if (!seeded) {
        hw_seed(st, cfg, phase, in->v);
        return;
    }
    /* Until the variance has settled, learn errors as they come. */
    hw_learn(st, cfg, phase, in->v - e, warm ? sd : INFINITY);
}

const struct anomaly_model anomaly_holt_winters = {
    .name = "holt_winters",
    .configure = hw_configure,
    .state_size = hw_state_size,
    .init = hw_init,
    .step = hw_step,
};
