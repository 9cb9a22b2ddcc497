/*
 * PromQL's numeric kernels (see funcs.h).  Formulas and the order of the
 * floating point operations follow Prometheus 2.42's behaviour, so that a
 * result can be compared with Prometheus's to the bit: do not "simplify"
 * an expression such as x / n - m / n, it changes the last digit.
 */
#include "query/funcs.h"

#include <math.h>
#include <stdlib.h>

#include "tsdb/error.h"

/*
 * One step of Neumaier's compensated sum: returns the new sum and adds the
 * rounding error of this step to *c.  The caller adds *c at the end.
 */
static double kahan_add(double inc, double sum, double *c)
{
    double t = sum + inc;

    if (fabs(sum) >= fabs(inc))
        *c += (sum - t) + inc;
    else
        *c += (inc - t) + sum;
    return t;
}

/* Go's time.Duration.Seconds() for a whole number of milliseconds. */
static double range_seconds(int64_t ms)
{
    int64_t whole = ms / 1000;
    int64_t rest_ns = (ms % 1000) * 1000000;

    return (double)whole + (double)rest_ns / 1e9;
}

bool query_extrapolate(const struct query_extrap *e, bool counter,
                       bool per_second, double *out)
{
    double delta = e->delta;
    double to_start, to_end, sampled, avg, threshold, span, factor;

    to_start = (double)(e->t0 - e->start) / 1000;
    to_end = (double)(e->end - e->tn) / 1000;
    sampled = (double)(e->tn - e->t0) / 1000;
    avg = sampled / (double)(e->n - 1);

    /* A counter cannot have been below zero before its first sample. */
    if (counter && delta > 0 && e->v0 >= 0) {
        double to_zero = sampled * (e->v0 / delta);

        if (to_zero < to_start)
            to_start = to_zero;
    }

    /*
     * Near an edge, assume samples continue up to it; far from it, assume
     * the series began or ended about half an interval beyond the sample.
     */
    threshold = avg * 1.1;
    span = sampled;
    span += to_start < threshold ? to_start : avg / 2;
    span += to_end < threshold ? to_end : avg / 2;

    factor = span / sampled;
    if (per_second)
        factor /= range_seconds(e->end - e->start);
    *out = delta * factor;
    return true;
}

/* The shared body of rate, increase and delta. */
static bool extrapolated(const struct query_window *w, bool counter,
                         bool per_second, double *out)
{
    size_t n = w->n;
    struct query_extrap e;

    if (n < 2)
        return false;
    e.delta = w->v[n - 1] - w->v[0];

    /* A drop means the counter restarted from 0: add what it had reached. */
    if (counter) {
        double prev = 0;

        for (size_t i = 0; i < n; i++) {
            if (w->v[i] < prev)
                e.delta += prev;
            prev = w->v[i];
        }
    }
    e.n = n;
    e.t0 = w->t[0];
    e.tn = w->t[n - 1];
    e.v0 = w->v[0];
    e.start = w->start;
    e.end = w->end;
    return query_extrapolate(&e, counter, per_second, out);
}

bool query_rate(const struct query_window *w, double *out)
{
    return extrapolated(w, true, true, out);
}

bool query_increase(const struct query_window *w, double *out)
{
    return extrapolated(w, true, false, out);
}

bool query_delta(const struct query_window *w, double *out)
{
    return extrapolated(w, false, false, out);
}

static bool instant(const struct query_window *w, bool is_rate, double *out)
{
    double last, prev, d;
    int64_t gap;

    if (w->n < 2)
        return false;
    last = w->v[w->n - 1];
    prev = w->v[w->n - 2];
    d = is_rate && last < prev ? last : last - prev;

    /* Both functions drop the sample, though only irate divides. */
    gap = w->t[w->n - 1] - w->t[w->n - 2];
    if (gap == 0)
        return false;
    if (is_rate)
        d /= (double)gap / 1000;
    *out = d;
    return true;
}

bool query_irate(const struct query_window *w, double *out)
{
    return instant(w, true, out);
}

bool query_idelta(const struct query_window *w, double *out)
{
    return instant(w, false, out);
}

bool query_resets(const struct query_window *w, double *out)
{
    size_t count = 0;

    if (w->n == 0)
        return false;
    for (size_t i = 1; i < w->n; i++)
        if (w->v[i] < w->v[i - 1])
            count++;
    *out = (double)count;
    return true;
}

bool query_changes(const struct query_window *w, double *out)
{
    size_t count = 0;

    if (w->n == 0)
        return false;
    for (size_t i = 1; i < w->n; i++) {
        double a = w->v[i - 1], b = w->v[i];

        if (a != b && !(isnan(a) && isnan(b)))
            count++;
    }
    *out = (double)count;
    return true;
}

/*
 * Least-squares fit of v against (t - origin) in seconds.  Moving the
 * origin near the samples keeps x small, so x * x does not swamp the
 * differences between samples.
 */
static void regression(const struct query_window *w, int64_t origin,
                       double *slope, double *intercept)
{
    double n = 0, sx = 0, cx = 0, sy = 0, cy = 0;
    double sxy = 0, cxy = 0, sx2 = 0, cx2 = 0;
    bool constant = true;

    for (size_t i = 0; i < w->n; i++) {
        double x = (double)(w->t[i] - origin) / 1e3, y = w->v[i];

        if (i > 0 && y != w->v[0])
            constant = false;
        n += 1.0;
        sx = kahan_add(x, sx, &cx);
        sy = kahan_add(y, sy, &cy);
        sxy = kahan_add(x * y, sxy, &cxy);
        sx2 = kahan_add(x * x, sx2, &cx2);
    }

    /* Rounding must not turn a flat line into a tiny slope. */
    if (constant) {
        bool inf = isinf(w->v[0]);

        *slope = inf ? NAN : 0;
        *intercept = inf ? NAN : w->v[0];
        return;
    }
    sx += cx;
    sy += cy;
    sxy += cxy;
    sx2 += cx2;
    *slope = (sxy - sx * sy / n) / (sx2 - sx * sx / n);
    *intercept = sy / n - *slope * sx / n;
}

bool query_deriv(const struct query_window *w, double *out)
{
    double slope, intercept;

    if (w->n < 2)
        return false;
    regression(w, w->t[0], &slope, &intercept);
    *out = slope;
    return true;
}

bool query_predict_linear(const struct query_window *w, int64_t eval_ms,
                          double ahead, double *out)
{
    double slope, intercept;

    if (w->n < 2)
        return false;
    regression(w, eval_ms, &slope, &intercept);
    *out = slope * ahead + intercept;
    return true;
}

bool query_avg_over_time(const struct query_window *w, double *out)
{
    double mean = 0, count = 0, c = 0;

    if (w->n == 0)
        return false;
    for (size_t i = 0; i < w->n; i++) {
        double v = w->v[i];

        count++;

        /*
         * Once the mean is infinite, the update below would compute
         * Inf - Inf.  Only the other infinity or NaN may change it.
         */
        if (isinf(mean)) {
            if (isinf(v) && (mean > 0) == (v > 0))
                continue;
            if (!isinf(v) && !isnan(v))
                continue;
        }
        mean = kahan_add(v / count - mean / count, mean, &c);
    }
    *out = isinf(mean) ? mean : mean + c;
    return true;
}

bool query_min_over_time(const struct query_window *w, double *out)
{
    double m;

    if (w->n == 0)
        return false;
    m = w->v[0];
    for (size_t i = 0; i < w->n; i++)
        if (w->v[i] < m || isnan(m))
            m = w->v[i];
    *out = m;
    return true;
}

bool query_max_over_time(const struct query_window *w, double *out)
{
    double m;

    if (w->n == 0)
        return false;
    m = w->v[0];
    for (size_t i = 0; i < w->n; i++)
        if (w->v[i] > m || isnan(m))
            m = w->v[i];
    *out = m;
    return true;
}

bool query_sum_over_time(const struct query_window *w, double *out)
{
    double sum = 0, c = 0;

    if (w->n == 0)
        return false;
    for (size_t i = 0; i < w->n; i++)
        sum = kahan_add(w->v[i], sum, &c);

    /* The compensation of an infinite sum is NaN (Inf - Inf). */
    *out = isinf(sum) ? sum : sum + c;
    return true;
}

bool query_count_over_time(const struct query_window *w, double *out)
{
    if (w->n == 0)
        return false;
    *out = (double)w->n;
    return true;
}

/* Welford's running variance, with both running sums compensated. */
static bool variance(const struct query_window *w, double *out)
{
    double count = 0, mean = 0, cmean = 0, aux = 0, caux = 0;

    if (w->n == 0)
        return false;
    for (size_t i = 0; i < w->n; i++) {
        double v = w->v[i], d;

        count++;
        d = v - (mean + cmean);
        mean = kahan_add(d / count, mean, &cmean);
        aux = kahan_add(d * (v - (mean + cmean)), aux, &caux);
    }
    *out = (aux + caux) / count;
    return true;
}

bool query_stdvar_over_time(const struct query_window *w, double *out)
{
    return variance(w, out);
}

bool query_stddev_over_time(const struct query_window *w, double *out)
{
    double var;

    if (!variance(w, &var))
        return false;
    *out = sqrt(var);
    return true;
}

bool query_last_over_time(const struct query_window *w, double *out)
{
    if (w->n == 0)
        return false;
    *out = w->v[w->n - 1];
    return true;
}

bool query_present_over_time(const struct query_window *w, double *out)
{
    if (w->n == 0)
        return false;
    *out = 1;
    return true;
}

bool query_quantile_over_time(const struct query_window *w, double q,
                              double *scratch, double *out)
{
    if (w->n == 0)
        return false;
    for (size_t i = 0; i < w->n; i++)
        scratch[i] = w->v[i];
    *out = query_quantile(q, scratch, w->n);
    return true;
}

bool query_absent_over_time(const struct query_window *w, double *out)
{
    if (w->n > 0)
        return false;
    *out = 1;
    return true;
}

int query_holt_winters(const struct query_window *w, double sf, double tf,
                       double *out, bool *has)
{
    double s0 = 0, s1, b;

    /* Written so that NaN factors fail too. */
    if (!(sf > 0 && sf < 1) || !(tf > 0 && tf < 1))
        return TSDB_EINVAL;
    *has = false;
    if (w->n < 2)
        return TSDB_OK;

    /* Level starts at the first value, trend at the first difference. */
    s1 = w->v[0];
    b = w->v[1] - w->v[0];
    for (size_t i = 1; i < w->n; i++) {
        double level;

        if (i > 1)
            b = tf * (s1 - s0) + (1 - tf) * b;
        level = sf * w->v[i] + (1 - sf) * (s1 + b);
        s0 = s1;
        s1 = level;
    }
    *out = s1;
    *has = true;
    return TSDB_OK;
}

double query_round(double x, double to_nearest)
{
    /* Multiplying by the inverse errs less than dividing, as in 2.42. */
    double inv = 1.0 / to_nearest;

    return floor(x * inv + 0.5) / inv;
}

/* Go's math.Max: +Inf first, then NaN, then +0 over -0. */
static double go_max(double a, double b)
{
    if (isinf(a) && a > 0)
        return a;
    if (isinf(b) && b > 0)
        return b;
    if (isnan(a) || isnan(b))
        return NAN;
    if (a == 0 && a == b)
        return signbit(a) ? b : a;
    return a > b ? a : b;
}

/* Go's math.Min: -Inf first, then NaN, then -0 under +0. */
static double go_min(double a, double b)
{
    if (isinf(a) && a < 0)
        return a;
    if (isinf(b) && b < 0)
        return b;
    if (isnan(a) || isnan(b))
        return NAN;
    if (a == 0 && a == b)
        return signbit(a) ? a : b;
    return a < b ? a : b;
}

double query_clamp_min(double x, double lo)
{
    return go_max(lo, x);
}

double query_clamp_max(double x, double hi)
{
    return go_min(hi, x);
}

bool query_clamp(double x, double lo, double hi, double *out)
{
    if (hi < lo)
        return false;
    *out = go_max(lo, go_min(hi, x));
    return true;
}

/* Ascending, with every NaN before every number. */
static int cmp_nan_first(const void *pa, const void *pb)
{
    double a = *(const double *)pa, b = *(const double *)pb;

    if (isnan(a) || isnan(b))
        return isnan(b) - isnan(a);
    return (a > b) - (a < b);
}

double query_quantile(double q, double *vals, size_t n)
{
    double rank, lo, hi, weight;

    if (n == 0 || isnan(q))
        return NAN;
    if (q < 0)
        return -INFINITY;
    if (q > 1)
        return INFINITY;
    qsort(vals, n, sizeof(*vals), cmp_nan_first);

    rank = q * (double)(n - 1);
    lo = fmax(0, floor(rank));
    hi = fmin((double)(n - 1), lo + 1);
    weight = rank - floor(rank);
    return vals[(size_t)lo] * (1 - weight) + vals[(size_t)hi] * weight;
}

static int cmp_bucket(const void *pa, const void *pb)
{
    double a = ((const struct query_bucket *)pa)->le;
    double b = ((const struct query_bucket *)pb)->le;

    return (a > b) - (a < b);
}

/*
 * Sorted buckets with equal bounds become one holding the sum of their
 * counts; returns the new length.
 */
static size_t merge_equal_bounds(struct query_bucket *b, size_t n)
{
    size_t k = 0;

    for (size_t i = 1; i < n; i++) {
        if (b[i].le == b[k].le) {
            b[k].count += b[i].count;
        } else {
            k++;
            b[k] = b[i];
        }
    }
    return k + 1;
}

/*
 * Cumulative counts cannot fall; when they do (buckets scraped at
 * slightly different moments, or rate() of them), raise each to the
 * highest count below it.
 */
static void force_monotonic(struct query_bucket *b, size_t n)
{
    double top = -INFINITY;

    for (size_t i = 0; i < n; i++) {
        if (b[i].count > top)
            top = b[i].count;
        else if (b[i].count < top)
            b[i].count = top;
    }
}

/* The lowest i < n with b[i].count >= rank, or n, by bisection. */
static size_t bucket_holding(const struct query_bucket *b, size_t n,
                             double rank)
{
    size_t lo = 0, hi = n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (b[mid].count >= rank)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

double query_histogram_quantile(double q, struct query_bucket *b, size_t n)
{
    double total, rank, start = 0, count;
    size_t i;

    if (isnan(q))
        return NAN;
    if (q < 0)
        return -INFINITY;
    if (q > 1)
        return INFINITY;
    if (n == 0)
        return NAN;
    qsort(b, n, sizeof(*b), cmp_bucket);
    if (!(isinf(b[n - 1].le) && b[n - 1].le > 0))
        return NAN;
    n = merge_equal_bounds(b, n);
    force_monotonic(b, n);
    if (n < 2)
        return NAN;
    total = b[n - 1].count;
    if (total == 0)
        return NAN;

    /*
     * Bisect for the first bucket below +Inf that holds the rank (else the
     * +Inf one).  Bisection, not a scan, so that NaN counts pick the same
     * bucket as in Prometheus.
     */
    rank = q * total;
    i = bucket_holding(b, n - 1, rank);
    if (i == n - 1)
        return b[n - 2].le;
    if (i == 0 && b[0].le <= 0)
        return b[0].le;

    count = b[i].count;
    if (i > 0) {
        start = b[i - 1].le;
        count -= b[i - 1].count;
        rank -= b[i - 1].count;
    }
    return start + (b[i].le - start) * (rank / count);
}
