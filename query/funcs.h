/*
 * The numeric kernels of PromQL's functions, with Prometheus 2.42's
 * semantics (protocols.md section 3): pure code, no allocation, no
 * logging.  The evaluator selects samples, parses arguments, drops labels
 * and reports errors; these functions only turn numbers into a number.
 *
 * Range-vector kernels take one series' samples in one window.  In 2.42 a
 * range selector x[d] evaluated at t with offset o keeps the samples with
 * timestamp in [t - o - d, t - o]: both ends are inclusive (3.x made the
 * start exclusive; we follow 2.42).  Stale markers are already removed.
 * The kernels trust that the samples lie in the window and ascend; they do
 * not check it.
 *
 * A kernel that returns bool returns false for "no output sample" (as when
 * Prometheus leaves the series out of the result) and then leaves *out
 * untouched.  Every range-vector kernel gives no output for an empty
 * window, except query_absent_over_time.
 *
 * Floating point order follows Prometheus's so that results agree to the
 * bit on x86-64; this needs the default -ffp-contract=off of -std=c11 and
 * no -ffast-math.
 */
#ifndef QUERY_FUNCS_H
#define QUERY_FUNCS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * One series' samples in one range window.  Arrays are borrowed from the
 * caller and only read.  t ascends (ms since the epoch); start and end are
 * the window's bounds in ms, both inclusive, and end - start is the
 * selector's range.
 */
struct query_window {
    const int64_t *t; /* n timestamps, ascending */
    const double *v;  /* n values */
    size_t n;
    int64_t start; /* eval time - offset - range */
    int64_t end;   /* eval time - offset */
};

/*
 * rate, increase and delta: last minus first (for rate and increase, plus
 * the value before each counter reset), extrapolated towards the window's
 * edges.  An edge closer than 1.1 average sample intervals is reached; a
 * farther one gets half an interval.  For counters the start is not
 * extrapolated past the point where the counter would have been zero.
 * rate divides by the range in seconds.  Fewer than two samples: false.
 */
bool query_rate(const struct query_window *w, double *out);

/*
 * The extrapolation step of rate, increase and delta, from what a window
 * gives it: n >= 2 samples, the first (t0, v0), the last's time tn, and
 * delta (last - first, plus for counters the value before each reset,
 * added in time order).  For readers that keep summaries, not samples
 * (query/tier.c).  Always true.
 */
struct query_extrap {
    size_t n;
    int64_t t0, tn;
    double v0;
    double delta;
    int64_t start, end; /* the window, as in struct query_window */
};
bool query_extrapolate(const struct query_extrap *e, bool counter,
                       bool per_second, double *out);
bool query_increase(const struct query_window *w, double *out);
bool query_delta(const struct query_window *w, double *out);

/*
 * irate and idelta from the last two samples: irate treats a drop as a
 * counter reset (the delta is then the last value) and divides by their
 * gap in seconds.  False with fewer than two samples, or when the two
 * share a timestamp.
 */
bool query_irate(const struct query_window *w, double *out);
bool query_idelta(const struct query_window *w, double *out);

/*
 * resets: how many times a value is below the one before it.  changes:
 * how many times a value differs from the one before it, where NaN after
 * NaN is no change.
 */
bool query_resets(const struct query_window *w, double *out);
bool query_changes(const struct query_window *w, double *out);

/*
 * deriv: least-squares slope in units per second, with x measured from
 * the first sample's time so large timestamps keep their precision.
 * predict_linear: the fitted line's value ahead seconds after eval_ms,
 * the evaluation time (x is measured from it).  A constant series has
 * slope 0, or NaN when the constant is infinite.  Fewer than two samples:
 * false.
 */
bool query_deriv(const struct query_window *w, double *out);
bool query_predict_linear(const struct query_window *w, int64_t eval_ms,
                          double ahead, double *out);

/*
 * The *_over_time family; every sample weighs the same.
 * - avg: a running mean, so sums that would overflow still average;
 *   an infinite mean stays infinite until the opposite infinity or NaN.
 * - min, max: NaN only if every value is NaN.
 * - sum: compensated summation; an infinite sum is returned as is.
 * - stddev, stdvar: population statistics.
 * - present: 1.  last: the newest value.
 */
bool query_avg_over_time(const struct query_window *w, double *out);
bool query_min_over_time(const struct query_window *w, double *out);
bool query_max_over_time(const struct query_window *w, double *out);
bool query_sum_over_time(const struct query_window *w, double *out);
bool query_count_over_time(const struct query_window *w, double *out);
bool query_stddev_over_time(const struct query_window *w, double *out);
bool query_stdvar_over_time(const struct query_window *w, double *out);
bool query_last_over_time(const struct query_window *w, double *out);
bool query_present_over_time(const struct query_window *w, double *out);

/*
 * quantile_over_time: query_quantile over the window's values.  scratch
 * holds w->n doubles, is borrowed for the call and is overwritten.
 */
bool query_quantile_over_time(const struct query_window *w, double q,
                              double *scratch, double *out);

/*
 * absent_over_time for one selection: true with *out = 1 when the window
 * is empty.  The evaluator answers 1 only if every series' window is
 * empty (and builds the labels); this kernel is the per-series test.
 */
bool query_absent_over_time(const struct query_window *w, double *out);

/*
 * holt_winters (double exponential smoothing) with smoothing factor sf and
 * trend factor tf.  Returns TSDB_EINVAL unless 0 < sf < 1 and 0 < tf < 1,
 * checked before the samples, as Prometheus fails the query even for
 * series that would give no output.  Otherwise TSDB_OK, with *has false
 * for fewer than two samples, else true and the smoothed value in *out.
 */
int query_holt_winters(const struct query_window *w, double sf, double tf,
                       double *out, bool *has);

/*
 * round(x, to_nearest): multiplies by 1/to_nearest, rounds halves up
 * (floor(y + 0.5)) and divides back, so -2.5 rounds to -2.
 */
double query_round(double x, double to_nearest);

/*
 * clamp_min, clamp_max and clamp with Go's max/min rules, which differ
 * from C's fmax/fmin: NaN wins over any number except the infinity that
 * bounds the result (max(+Inf, NaN) = +Inf), and +0 is above -0.
 * query_clamp returns false (no output) when hi < lo.
 */
double query_clamp_min(double x, double lo);
double query_clamp_max(double x, double hi);
bool query_clamp(double x, double lo, double hi, double *out);

/*
 * The quantile aggregation and quantile_over_time: NaN for no values or a
 * NaN q, -Inf for q < 0, +Inf for q > 1, else linear interpolation between
 * the two closest ranks (rank q * (n - 1)).  NaN values sort first.  vals
 * is borrowed and left sorted.
 */
double query_quantile(double q, double *vals, size_t n);

/* One classic histogram bucket: upper bound (le) and cumulative count. */
struct query_bucket {
    double le;
    double count;
};

/*
 * histogram_quantile over one series group's classic buckets.  q NaN gives
 * NaN, q < 0 -Inf, q > 1 +Inf.  Then the buckets are sorted by le, equal
 * bounds merged by adding their counts and counts forced to not decrease.
 * NaN unless the top bucket is +Inf, there are at least two buckets and
 * the +Inf count is above 0.  A rank in the +Inf bucket gives the second
 * highest bound; in the lowest bucket with le <= 0, that bound; otherwise
 * the value interpolates linearly inside the bucket, the lowest one
 * starting at 0.  b is borrowed; on return its first entries hold the
 * merged buckets and the rest is unspecified.
 */
double query_histogram_quantile(double q, struct query_bucket *b, size_t n);

#endif
