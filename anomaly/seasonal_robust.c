/*
 * seasonal_robust: median and MAD per phase of the season over the last
 * N seasons, around a robust running level.
 *
 *   H[p]  = the last N values of x - L seen at phase p
 *   P     = H[p-w .. p+w] pooled (w neighbour phases on each side)
 *   e_t   = L + med(P)
 *   range = L + [P's (trim+1)-th smallest, (trim+1)-th largest]
 *   s_t   = 1.4826 * MAD(P), at least the running mean residual
 *   band  = range widened by sensitivity * F * s_t on each side
 *   L'    = L + a * clip(x - e_t, +-clip * s_t)
 *   H[p] <- x - L, clipped to med(P) +- clip * s_t
 *
 * F >= 1 and the score are model.c's calibration.  The range is what
 * lets a recurring shape in, such as a job that spikes every night:
 * once it was seen at that time in trim + 1 seasons it is normal.
 * Storing the clipped deviation keeps one anomaly from widening the
 * band: it enters the history at the band's edge, and neither the
 * median, nor the MAD, nor (with trim >= 1) the range moves.  The level
 * follows a lasting shift (AWS series do that) within about 1/a steps,
 * so the seasonal profile stays valid after it.
 *
 * A weekly season needs weeks of history; until a phase has two seasons
 * of it, P is taken from the same time of the last N cycles instead
 * (cycle 1d: the same time on the last N days), so that a weekly model
 * reports after a day and learns the weekday/weekend difference as weeks
 * come.  The newest value at phase p - k * cycle is the one from k
 * cycles ago, so this needs no storage of its own.
 *
 * Parameters (cfg->p), a season is required:
 *   seasons  4      1 .. 16      N, seasons (and cycles) of history
 *   width    1      0 .. 8       w, neighbour phases pooled on each side
 *   alpha    0.05   (0 .. 1]     level
 *   clip     4      0.5 .. 1000  largest deviation learned, in scales
 *   trim     1      0 .. 8       pool extremes left out of the range
 *   cycle    1d     0 .. 1w      used when it divides the season in 2 or
 *                                more; 0: never
 *   warmup   30     0 .. 100000  steps after the first cycle or season
 *
 * LIMIT: the history costs N doubles per phase, 320 KiB per series for
 * a weekly season at one minute with N = 4.  It matters for thousands of
 * such series; the state size is state_size(), checked by the caller.
 */
#include <math.h>
#include <string.h>

#include "anomaly/model_internal.h"
#include "tsdb/error.h"

enum {
    P_SEASONS,
    P_WIDTH,
    P_ALPHA,
    P_CLIP,
    P_TRIM,
    P_CYCLE, /* after configure: the cycle in steps, 0 when unused */
    P_WARMUP,
    P_COUNT
};

#define SR_MAX_SEASONS 16
#define SR_MAX_WIDTH   8
#define SR_MAX_POOL    (SR_MAX_SEASONS * (2 * SR_MAX_WIDTH + 1))
/* MAD to standard deviation, for normal data. */
#define SR_MAD_SD 1.4826
/* Weight of the newest residual in the running mean residual. */
#define SR_RESID_RATE 0.01
#define SR_WEEK_MS    (7 * 86400000.0)

static const struct anomaly_param_spec sr_params[P_COUNT] = {
    [P_SEASONS] = {"seasons", ANOMALY_PARAM_NUMBER, 4, 1, SR_MAX_SEASONS},
    [P_WIDTH] = {"width", ANOMALY_PARAM_NUMBER, 1, 0, SR_MAX_WIDTH},
    [P_ALPHA] = {"alpha", ANOMALY_PARAM_NUMBER, 0.05, 1e-6, 1},
    [P_CLIP] = {"clip", ANOMALY_PARAM_NUMBER, 4, 0.5, 1000},
    [P_TRIM] = {"trim", ANOMALY_PARAM_NUMBER, 1, 0, 8},
    [P_CYCLE] = {"cycle", ANOMALY_PARAM_DURATION, 86400000, 0, SR_WEEK_MS},
    [P_WARMUP] = {"warmup", ANOMALY_PARAM_STEPS, 30, 0, 100000},
};

struct sr_state {
    uint64_t n; /* values learned */
    double level;
    double resid; /* running mean of |x - e|, the scale's floor */
    struct anomaly_calib calib;
    /* Then hist[season_steps][N] doubles (NaN: empty), then the next
     * slot of each phase's ring, one byte per phase. */
    double hist[];
};

/* What the history around a phase says, relative to the level. */
struct sr_profile {
    double med, mad; /* median and MAD of the pool */
    double lo, hi;   /* the pool's range less its `trim` extremes */
};

static uint32_t sr_n(const struct anomaly_config *cfg)
{
    return (uint32_t)cfg->p[P_SEASONS];
}

static uint8_t *sr_next(struct sr_state *st, const struct anomaly_config *cfg)
{
    return (uint8_t *)(st->hist + (size_t)cfg->season_steps * sr_n(cfg));
}

static const uint8_t *sr_next_c(const struct sr_state *st,
                                const struct anomaly_config *cfg)
{
    return (const uint8_t *)(st->hist + (size_t)cfg->season_steps * sr_n(cfg));
}

/* The cycle in steps when it divides the season in two or more, else 0. */
static double cycle_steps(const struct anomaly_config *cfg, double cycle_ms)
{
    int64_t c = (int64_t)cycle_ms;

    if (c <= 0 || c % cfg->interval_ms != 0 || c >= cfg->season_ms ||
        cfg->season_ms % c != 0)
        return 0;
    return (double)(c / cfg->interval_ms);
}

static int sr_configure(struct anomaly_config *cfg, const char *const *names,
                        const char *const *values, size_t n, char *err,
                        size_t errlen)
{
    int rc = anomaly_params_read(sr_params, P_COUNT, cfg, names, values, n, err,
                                 errlen);

    if (rc != TSDB_OK)
        return rc;
    rc = anomaly_season_check(cfg, true, err, errlen);
    if (rc != TSDB_OK)
        return rc;
    cfg->p[P_SEASONS] = floor(cfg->p[P_SEASONS]);
    cfg->p[P_WIDTH] = floor(cfg->p[P_WIDTH]);
    cfg->p[P_TRIM] = floor(cfg->p[P_TRIM]);
    cfg->p[P_CYCLE] = cycle_steps(cfg, cfg->p[P_CYCLE]);
    return TSDB_OK;
}

static size_t sr_state_size(const struct anomaly_config *cfg)
{
    return sizeof(struct sr_state) +
           (size_t)cfg->season_steps * sr_n(cfg) * sizeof(double) +
           cfg->season_steps;
}

static void sr_init(void *state, const struct anomaly_config *cfg)
{
    struct sr_state *st = state;
    size_t nh = (size_t)cfg->season_steps * sr_n(cfg);

    memset(st, 0, sr_state_size(cfg));
    anomaly_calib_init(&st->calib);
    for (size_t i = 0; i < nh; i++)
        st->hist[i] = NAN;
}

/* The median of v[0..n), n > 0, sorting v: the pools are a few dozen
 * values, where insertion sort beats anything cleverer. */
static double median(double *v, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        double x = v[i];
        size_t j = i;

        for (; j > 0 && v[j - 1] > x; j--)
            v[j] = v[j - 1];
        v[j] = x;
    }
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static uint32_t phase_add(const struct anomaly_config *cfg, uint32_t phase,
                          int64_t d)
{
    int64_t steps = cfg->season_steps;

    return (uint32_t)((((int64_t)phase + d) % steps + steps) % steps);
}

static uint32_t seasons_seen(const struct sr_state *st,
                             const struct anomaly_config *cfg, uint32_t phase)
{
    const double *h = st->hist + (size_t)phase * sr_n(cfg);
    uint32_t k = 0;

    for (uint32_t i = 0; i < sr_n(cfg); i++)
        k += !isnan(h[i]);
    return k;
}

/* Pools phase +- w over the last seasons, or over the last cycles while
 * the phase has fewer than two seasons; returns the pool's size. */
static size_t sr_pool(const struct sr_state *st,
                      const struct anomaly_config *cfg, uint32_t phase,
                      double pool[SR_MAX_POOL])
{
    uint32_t n = sr_n(cfg), w = (uint32_t)cfg->p[P_WIDTH];
    int64_t cycle = (int64_t)cfg->p[P_CYCLE];
    bool by_cycle = cycle > 0 && seasons_seen(st, cfg, phase) < n;
    size_t k = 0;

    for (int64_t d = -(int64_t)w; d <= (int64_t)w; d++) {
        for (uint32_t i = 0; i < n; i++) {
            int64_t back = by_cycle ? (int64_t)(i + 1) * cycle : 0;
            uint32_t q, slot;
            double x;

            if (back >= cfg->season_steps)
                break;
            q = phase_add(cfg, phase, d - back);
            slot = by_cycle ? (sr_next_c(st, cfg)[q] + n - 1) % n : i;
            x = st->hist[(size_t)q * n + slot];
            if (!isnan(x))
                pool[k++] = x;
        }
    }
    return k;
}

/* Fills pr from the pool around phase; false if the pool is empty. */
static bool sr_profile(const struct sr_state *st,
                       const struct anomaly_config *cfg, uint32_t phase,
                       struct sr_profile *pr)
{
    double pool[SR_MAX_POOL];
    size_t k = sr_pool(st, cfg, phase, pool), trim = (size_t)cfg->p[P_TRIM];

    if (k == 0)
        return false;
    pr->med = median(pool, k);
    pr->lo = pr->hi = pr->med;
    if (2 * trim < k) {
        if (pool[trim] < pr->med)
            pr->lo = pool[trim];
        if (pool[k - 1 - trim] > pr->med)
            pr->hi = pool[k - 1 - trim];
    }
    for (size_t i = 0; i < k; i++)
        pool[i] = fabs(pool[i] - pr->med);
    pr->mad = median(pool, k);
    return true;
}

static void sr_learn(struct sr_state *st, const struct anomaly_config *cfg,
                     uint32_t phase, double x, double med, double s, bool warm)
{
    uint32_t n = sr_n(cfg);
    uint8_t *next = sr_next(st, cfg) + phase;
    double lim = cfg->p[P_CLIP] * s, dev = x - st->level;
    double r = dev - med;

    /* Until warm, s is no measure yet: take values as they come. */
    if (warm) {
        r = r > lim ? lim : r < -lim ? -lim : r;
        dev = med + r;
        st->resid += SR_RESID_RATE * (fabs(r) - st->resid);
    }
    st->hist[(size_t)phase * n + *next] = dev;
    *next = (uint8_t)((*next + 1) % n);
    st->level += cfg->p[P_ALPHA] * r;
    st->n++;
}

/* The scale: the pool's MAD as a deviation, at least the running mean
 * residual (a flat pool has MAD 0) and a sliver of the level. */
static double sr_scale(const struct sr_state *st, const struct sr_profile *pr)
{
    double s = SR_MAD_SD * pr->mad;
    double floor = 1e-3 * fabs(st->level + pr->med) + 1e-9;

    if (s < st->resid)
        s = st->resid;
    return s > floor ? s : floor;
}

static void sr_step(void *state, const struct anomaly_config *cfg,
                    const struct anomaly_step *in, struct anomaly_result *out)
{
    struct sr_state *st = state;
    uint32_t phase = in->phase < cfg->season_steps ? in->phase : 0;
    uint64_t first =
        cfg->p[P_CYCLE] > 0 ? (uint64_t)cfg->p[P_CYCLE] : cfg->season_steps;
    bool warm = st->n >= first + (uint64_t)cfg->p[P_WARMUP];
    struct sr_profile pr = {0};
    bool have = sr_profile(st, cfg, phase, &pr);
    struct anomaly_expect x;
    double v = in->v;

    x.s = sr_scale(st, &pr);
    x.e = have ? st->level + pr.med : NAN;
    x.lo = st->level + pr.lo;
    x.hi = st->level + pr.hi;
    anomaly_result_fill(cfg, &st->calib, in, &x, warm && have, out);
    if (!in->learn || !isfinite(v))
        return;
    if (st->n == 0)
        st->level = v;
    sr_learn(st, cfg, phase, v, have ? pr.med : v - st->level, x.s,
             have && st->n > first);
}

const struct anomaly_model anomaly_seasonal_robust = {
    .name = "seasonal_robust",
    .configure = sr_configure,
    .state_size = sr_state_size,
    .init = sr_init,
    .step = sr_step,
};
