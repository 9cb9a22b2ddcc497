/*
 * The model registry and what the models share: reading their parameter
 * tables, checking the season, and turning an expectation and a
 * deviation scale into a band, a score and a verdict.
 *
 * Invariants:
 *  1. Every model reports through anomaly_result_fill, so that a band,
 *     a score and a verdict mean the same on every model (the maths is
 *     above CALIB_CAP below).
 *  2. A step that is not learned from (NaN, exclusion window) scores 0,
 *     is not anomalous and changes no state, the calibration's included.
 *  3. Below min_deviation from the expected value the score stays under
 *     0.5 and the step is not anomalous.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anomaly/model_internal.h"
#include "query/duration.h"
#include "tsdb/error.h"

static const struct anomaly_model *const models[] = {
    &anomaly_ewma,
    &anomaly_holt_winters,
    &anomaly_seasonal_robust,
};

const struct anomaly_model *anomaly_model_find(const char *name)
{
    for (size_t i = 0; i < sizeof(models) / sizeof(models[0]); i++)
        if (strcmp(models[i]->name, name) == 0)
            return models[i];
    return NULL;
}

const struct anomaly_model *const *anomaly_models(size_t *n)
{
    *n = sizeof(models) / sizeof(models[0]);
    return models;
}

static int param_range_err(const struct anomaly_param_spec *sp, char *err,
                           size_t errlen)
{
    if (sp->kind == ANOMALY_PARAM_DURATION)
        snprintf(err, errlen,
                 "parameter \"%s\" must be 0 or a duration such as 1d, at "
                 "most %gs",
                 sp->name, sp->hi / 1000);
    else if (sp->kind == ANOMALY_PARAM_STEPS)
        snprintf(err, errlen,
                 "parameter \"%s\" must be a whole number of steps in "
                 "[%g, %g] or a duration of as many intervals",
                 sp->name, sp->lo, sp->hi);
    else
        snprintf(err, errlen, "parameter \"%s\" must be a number in [%g, %g]",
                 sp->name, sp->lo, sp->hi);
    return TSDB_EINVAL;
}

/* A STEPS value: a plain count, or a duration in whole intervals. */
static bool parse_steps(const char *text, int64_t interval_ms, double *out)
{
    char *end;
    int64_t ms;
    long long k = strtoll(text, &end, 10);

    if (end != text && *end == '\0') {
        *out = (double)k;
        return true;
    }
    if (query_parse_duration(text, &ms) != TSDB_OK || interval_ms <= 0 ||
        ms % interval_ms != 0)
        return false;
    *out = (double)(ms / interval_ms);
    return true;
}

static int param_parse(const struct anomaly_param_spec *sp, const char *text,
                       int64_t interval_ms, double *out, char *err,
                       size_t errlen)
{
    char *end;
    double x;

    if (sp->kind == ANOMALY_PARAM_DURATION) {
        int64_t ms = 0;

        if (strcmp(text, "0") != 0 &&
            query_parse_duration(text, &ms) != TSDB_OK)
            return param_range_err(sp, err, errlen);
        x = (double)ms;
    } else if (sp->kind == ANOMALY_PARAM_STEPS) {
        if (!parse_steps(text, interval_ms, &x))
            return param_range_err(sp, err, errlen);
    } else {
        x = strtod(text, &end);
        if (end == text || *end != '\0')
            return param_range_err(sp, err, errlen);
    }
    if (!(x >= sp->lo && x <= sp->hi))
        return param_range_err(sp, err, errlen);
    *out = x;
    return TSDB_OK;
}

static int param_unknown(const struct anomaly_param_spec *spec, size_t nspec,
                         const char *name, char *err, size_t errlen)
{
    size_t used;

    used =
        (size_t)snprintf(err, errlen, "unknown parameter \"%s\" (known:", name);
    for (size_t i = 0; i < nspec && used < errlen; i++)
        used +=
            (size_t)snprintf(err + used, errlen - used, " %s", spec[i].name);
    if (used < errlen)
        snprintf(err + used, errlen - used, ")");
    return TSDB_EINVAL;
}

int anomaly_params_read(const struct anomaly_param_spec *spec, size_t nspec,
                        struct anomaly_config *cfg, const char *const *names,
                        const char *const *values, size_t n, char *err,
                        size_t errlen)
{
    for (size_t i = 0; i < nspec; i++)
        cfg->p[i] = spec[i].def;
    for (size_t k = 0; k < n; k++) {
        size_t i = 0;
        int rc;

        while (i < nspec && strcmp(spec[i].name, names[k]) != 0)
            i++;
        if (i == nspec)
            return param_unknown(spec, nspec, names[k], err, errlen);
        rc = param_parse(&spec[i], values[k], cfg->interval_ms, &cfg->p[i], err,
                         errlen);
        if (rc != TSDB_OK)
            return rc;
    }
    return TSDB_OK;
}

int anomaly_season_check(struct anomaly_config *cfg, bool need, char *err,
                         size_t errlen)
{
    int64_t steps;

    cfg->season_steps = 0;
    if (cfg->interval_ms <= 0) {
        snprintf(err, errlen, "the interval must be positive");
        return TSDB_EINVAL;
    }
    if (cfg->season_ms == 0) {
        if (!need)
            return TSDB_OK;
        snprintf(err, errlen, "this model needs a season, e.g. season=1d");
        return TSDB_EINVAL;
    }
    steps = cfg->season_ms / cfg->interval_ms;
    if (cfg->season_ms < 0 || cfg->season_ms % cfg->interval_ms != 0 ||
        steps < 2 || steps > ANOMALY_MAX_SEASON_STEPS) {
        snprintf(err, errlen,
                 "the season must be a multiple of the interval, from 2 to "
                 "%d intervals",
                 ANOMALY_MAX_SEASON_STEPS);
        return TSDB_EINVAL;
    }
    cfg->season_steps = (uint32_t)steps;
    return TSDB_OK;
}

/*
 * The band and the score.  z is the step's distance beyond the model's
 * normal range in the model's deviations, v the value.  Three measures:
 *   point    |z|; only its F (below) is used, for the band
 *   confirm  the 2nd largest |z| of the last ANOMALY_RECENT steps: a
 *            deviation seen twice is far likelier an event than a blip
 *   fresh    how far v lies beyond the range [lo, hi] the values kept
 *            (an envelope of the values older than ANOMALY_DELAY
 *            steps, relaxing towards their mean over CALIB_RANGE_STEPS,
 *            so that a drift is measured from where the range was, not
 *            step by step), CALIB_FRESH_GAIN per mean absolute
 *            deviation of the values
 * Each measure m has a long-run factor F = max(1, typical / CALIB_NORMAL),
 * typical being m's running mean (m capped at CALIB_CAP, over about
 * CALIB_HORIZON steps): where a model is often surprised, its surprises
 * count for less.  This is what makes one threshold fit every series.
 *   band     expected +- sensitivity * s * F_point; anomalous is v
 *            outside it (and |v - expected| >= min_deviation)
 *   score    D / (1 + D), D = max(d_confirm, d_fresh), where
 *            d = m / (sensitivity * F * max(1, peak / CALIB_RHO))
 * peak being the decaying maximum of the values of m / F that reached
 * sensitivity, halved every CALIB_HALF steps: right after an alert-level
 * surprise the next one must be larger to score as high, so that one
 * event scores high once, at its start, which is when an alert is useful
 * (and what NAB rewards); a measure that grows slowly below the band
 * does not raise its own bar.  The score is monotone in
 * the current deviation for a given state.  A lone value outside the
 * band but within the series' recent range scores low: it is flagged
 * anomalous, but nothing confirms it yet.
 */
#define CALIB_CAP 6.0
/* The mean of |z| for a standard normal z: what a model whose deviation
 * is honest would see. */
#define CALIB_NORMAL      0.7979
#define CALIB_HORIZON     2000
#define CALIB_HALF        200.0
#define CALIB_RHO         2.0
#define CALIB_RANGE_STEPS 6000
#define CALIB_FRESH_GAIN  3.0
#define CALIB_WARMUP      100

static void chan_init(struct anomaly_chan *ch)
{
    ch->typical = 0;
    ch->peak = 0;
    ch->n = 0;
}

void anomaly_calib_init(struct anomaly_calib *c)
{
    memset(c, 0, sizeof(*c));
    chan_init(&c->point);
    chan_init(&c->confirm);
    chan_init(&c->fresh);
}

static double chan_long(const struct anomaly_chan *ch)
{
    double f = ch->typical / CALIB_NORMAL;

    return f > 1 ? f : 1;
}

static double chan_factor(const struct anomaly_chan *ch)
{
    double burst = ch->peak / CALIB_RHO;

    return chan_long(ch) * (burst > 1 ? burst : 1);
}

/* Learns measure m; only a measure that reached the band (sens long-run
 * deviations) raises the peak: activity below it is no event to hold
 * the bar up for, and a measure that grows step by step must not keep
 * raising its own bar. */
static void chan_learn(struct anomaly_chan *ch, double m, double sens)
{
    double u = m / chan_long(ch);

    ch->peak *= exp2(-1 / CALIB_HALF);
    if (u > ch->peak && u >= sens)
        ch->peak = u;
    if (m > CALIB_CAP)
        m = CALIB_CAP;
    if (ch->n < CALIB_HORIZON)
        ch->n++;
    ch->typical += (m - ch->typical) / ch->n;
}

/* The 2nd largest of the recent |z|, this step's included. */
static double confirm_measure(struct anomaly_calib *c, double a)
{
    double m1 = 0, m2 = 0;

    c->recent[c->pos] = a;
    c->pos = (c->pos + 1) % ANOMALY_RECENT;
    for (int i = 0; i < ANOMALY_RECENT; i++) {
        double r = c->recent[i];

        if (r > m1) {
            m2 = m1;
            m1 = r;
        } else if (r > m2) {
            m2 = r;
        }
    }
    return m2;
}

static double fresh_measure(const struct anomaly_calib *c, double v)
{
    double floor = 1e-3 * fabs(c->mean) + 1e-9;
    double sc = c->spread > floor ? c->spread : floor;
    double beyond = v > c->hi ? v - c->hi : v < c->lo ? c->lo - v : 0;

    return c->seen >= CALIB_WARMUP ? CALIB_FRESH_GAIN * beyond / sc : 0;
}

static void range_learn(struct anomaly_calib *c, double v)
{
    double a, old, steps = CALIB_RANGE_STEPS;
    uint32_t slot = c->seen % ANOMALY_DELAY;

    if (c->seen == 0)
        c->mean = c->hi = c->lo = v;
    old = c->seen >= ANOMALY_DELAY ? c->delayed[slot] : v;
    c->delayed[slot] = v;
    if (c->seen < UINT32_MAX)
        c->seen++;
    a = 1.0 / (c->seen < steps ? c->seen : steps);
    c->mean += a * (v - c->mean);
    c->spread += a * (fabs(v - c->mean) - c->spread);
    c->hi -= (c->hi - c->mean) / steps;
    c->lo += (c->mean - c->lo) / steps;
    if (old > c->hi)
        c->hi = old;
    if (old < c->lo)
        c->lo = old;
}

static double score_of(double d)
{
    return isinf(d) ? 1 : d / (1 + d);
}

/* The score's three measures, learned in; returns D (see top). */
static double calib_step(const struct anomaly_config *cfg,
                         struct anomaly_calib *c, double a, double v)
{
    double sens = cfg->sensitivity;
    double mc = confirm_measure(c, a), mf = fresh_measure(c, v);
    double dc = mc / (sens * chan_factor(&c->confirm));
    double df = mf / (sens * chan_factor(&c->fresh));

    chan_learn(&c->point, a, sens);
    chan_learn(&c->confirm, mc, sens);
    chan_learn(&c->fresh, mf, sens);
    return dc > df ? dc : df;
}

void anomaly_result_fill(const struct anomaly_config *cfg,
                         struct anomaly_calib *c, const struct anomaly_step *in,
                         const struct anomaly_expect *x, bool warm,
                         struct anomaly_result *out)
{
    double half = cfg->sensitivity * x->s * chan_long(&c->point);
    double v = in->v, beyond, dev, d, dp;

    out->score = 0;
    out->anomalous = false;
    out->expected = warm ? x->e : NAN;
    out->lower = warm ? x->lo - half : NAN;
    out->upper = warm ? x->hi + half : NAN;
    if (!in->learn || !isfinite(v))
        return;
    if (!warm || isnan(x->e)) {
        range_learn(c, v);
        return;
    }
    beyond = v > x->hi ? v - x->hi : v < x->lo ? x->lo - v : 0;
    dev = fabs(v - x->e);
    dp = beyond / half;
    d = calib_step(cfg, c, beyond / x->s, v);
    range_learn(c, v);

    /* Below min_deviation the score stays under the band's edge. */
    if (cfg->min_deviation > 0 && d > dev / cfg->min_deviation)
        d = dev / cfg->min_deviation;
    out->score = score_of(d);
    out->anomalous = dp > 1 && dev >= cfg->min_deviation;
}
