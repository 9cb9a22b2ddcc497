/*
 * ewma: exponentially weighted mean and variance, a band of z-scores.
 *
 *   d_t   = x_t - m_{t-1}
 *   m_t   = m_{t-1} + a d_t
 *   s2_t  = s2_{t-1} + b (d_t^2 - s2_{t-1})
 *   band  = m_{t-1} +- sensitivity * F * sqrt(s2_{t-1})
 *
 * F >= 1 and the score are model.c's calibration.  No trend and no
 * season: a daily peak looks like a spike to it, and a missing peak is
 * not its job, but with a slower variance than mean (b < a) its band
 * spans a regular daily swing, so that a seasonal series does not alert
 * every day.  A value learned from moves the mean by at most
 * a * clip * sqrt(s2) (a Huber-style update, d_t clipped), so one spike
 * does not drag the mean, while a lasting shift is followed within a
 * few 1/a steps as s2 grows with it.  The deviation has a floor of 0.1%
 * of |m| so that a flat series does not divide by zero.
 *
 * Parameters (cfg->p):
 *   alpha   0.04   (0.0001 .. 1]  weight of the newest value
 *   warmup  30     1 .. 100000    steps learned before it reports
 *   clip    4      0.5 .. 1000    largest step of the mean, in deviations
 *   var_alpha 0.001 (0.0001 .. 1] b, weight of the newest squared
 *                                 deviation
 * While fewer than 1/a (1/b) values were learned, a (b) is 1/n: the
 * estimates start as plain averages.
 */
#include <math.h>

#include "anomaly/model_internal.h"
#include "tsdb/error.h"

enum { P_ALPHA, P_WARMUP, P_CLIP, P_VAR_ALPHA, P_COUNT };

static const struct anomaly_param_spec ewma_params[P_COUNT] = {
    [P_ALPHA] = {"alpha", ANOMALY_PARAM_NUMBER, 0.04, 0.0001, 1},
    [P_WARMUP] = {"warmup", ANOMALY_PARAM_STEPS, 30, 1, 100000},
    [P_CLIP] = {"clip", ANOMALY_PARAM_NUMBER, 4, 0.5, 1000},
    [P_VAR_ALPHA] = {"var_alpha", ANOMALY_PARAM_NUMBER, 0.001, 0.0001, 1},
};

struct ewma_state {
    uint32_t n; /* values learned, saturating */
    double mean, var;
    struct anomaly_calib calib;
};

static int ewma_configure(struct anomaly_config *cfg, const char *const *names,
                          const char *const *values, size_t n, char *err,
                          size_t errlen)
{
    int rc = anomaly_params_read(ewma_params, P_COUNT, cfg, names, values, n,
                                 err, errlen);

    if (rc != TSDB_OK)
        return rc;
    return anomaly_season_check(cfg, false, err, errlen);
}

static size_t ewma_state_size(const struct anomaly_config *cfg)
{
    (void)cfg;
    return sizeof(struct ewma_state);
}

static void ewma_init(void *state, const struct anomaly_config *cfg)
{
    struct ewma_state *st = state;

    (void)cfg;
    st->n = 0;
    st->mean = 0;
    st->var = 0;
    anomaly_calib_init(&st->calib);
}

/* The weight of the newest value: w, or 1/n while fewer than 1/w values
 * were learned, so that the first ones make a plain average rather than
 * a mean pulled towards the initial zero. */
static double weight(double w, uint32_t n)
{
    return n * w < 1 ? 1.0 / n : w;
}

static void ewma_learn(struct ewma_state *st, const struct anomaly_config *cfg,
                       double x, double sd)
{
    double d = x - st->mean;
    double lim = cfg->p[P_CLIP] * sd;

    if (st->n == 0) {
        st->mean = x;
        st->n = 1;
        return;
    }
    if (st->n >= (uint32_t)cfg->p[P_WARMUP] && fabs(d) > lim)
        d = d > 0 ? lim : -lim;
    if (st->n < UINT32_MAX)
        st->n++;
    st->mean += weight(cfg->p[P_ALPHA], st->n) * d;
    st->var += weight(cfg->p[P_VAR_ALPHA], st->n) * (d * d - st->var);
}

static void ewma_step(void *state, const struct anomaly_config *cfg,
                      const struct anomaly_step *in, struct anomaly_result *out)
{
    struct ewma_state *st = state;
    bool warm = st->n >= (uint32_t)cfg->p[P_WARMUP];
    double sd = sqrt(st->var);
    double floor = 1e-3 * fabs(st->mean) + 1e-9;
    struct anomaly_expect x;

    if (sd < floor)
        sd = floor;
    x.e = x.lo = x.hi = st->mean;
    x.s = sd;
    anomaly_result_fill(cfg, &st->calib, in, &x, warm, out);
    if (!in->learn || isnan(in->v) || isinf(in->v))
        return;
    ewma_learn(st, cfg, in->v, sd);
}

const struct anomaly_model anomaly_ewma = {
    .name = "ewma",
    .configure = ewma_configure,
    .state_size = ewma_state_size,
    .init = ewma_init,
    .step = ewma_step,
};
