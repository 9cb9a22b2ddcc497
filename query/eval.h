/*
 * PromQL evaluation over the storage engine, with Prometheus 2.42's
 * semantics (protocols.md section 3).  The HTTP query API, the rollups and
 * the detectors all call these two entry points.
 *
 * An instant query is a range query of one step.  Evaluation is series at
 * a time: a selector decodes one series' chunks in the query's time range,
 * turns them into a value per step, and hands that series on before it
 * reads the next.  An aggregation folds each series into its group's
 * per-step accumulators as it arrives, so `sum by (region) (rate(x[5m]))`
 * holds one input series plus one row of steps per region, whatever the
 * number of series matched.  Binary operators between two vectors,
 * topk/bottomk, quantile, count_values and sort hold their inputs whole.
 *
 * Threads: any number of evaluations may run at once on one struct tsdb;
 * one evaluation belongs to one thread.
 *
 * LIMIT: when a function drops the metric name of series that may differ
 * only in their name ({__name__=~"a|b"}), Prometheus 2.42 refuses a range
 * function's result with two such series even when they never share a
 * step; we refuse only when they share one (where 2.42's instant-vector
 * functions also refuse).  Matters only to such selectors; the answer
 * where both succeed is the same.
 *
 * LIMIT: native histograms do not exist in storage, so histogram_count,
 * histogram_sum and histogram_fraction select nothing, as 2.42 does for
 * float series.
 */
#ifndef QUERY_EVAL_H
#define QUERY_EVAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "query/ast.h"
#include "tsdb/db.h"
#include "tsdb/labels.h"

struct query_opts {
    int64_t lookback_ms;      /* instant selectors look back this far; 5m */
    int64_t timeout_ms;       /* 0: none; default 2m */
    uint64_t max_samples;     /* samples held at once; default 50,000,000 */
    int64_t subquery_step_ms; /* subquery step when none is written; 1m */
    bool no_tiers;            /* read raw chunks only (query/tier.c) */
};

/* Prometheus 2.42's defaults, as above. */
void query_opts_init(struct query_opts *o);

/* The errorType of the Prometheus API that an evaluation error maps to. */
enum query_err_kind {
    QUERY_ERR_BAD_DATA,  /* 400: parse error, bad argument, no such function */
    QUERY_ERR_EXECUTION, /* 422: duplicate series, limits of the data */
    QUERY_ERR_TIMEOUT,   /* 503: timeout_ms passed */
    QUERY_ERR_INTERNAL,  /* 500: storage failure, out of memory */
};

struct query_err {
    enum query_err_kind kind;
    bool parse; /* a parse error: msg is "L:C: parse error: ..." */
    char msg[512];
};

/*
 * One series of a result.  For a vector result each series has one point
 * (t is the evaluation time); for a matrix, its points in time order.
 * Labels are owned by the result.
 */
struct query_series {
    struct tsdb_labels labels;
    size_t n;
    int64_t *t; /* ms */
    double *v;
};

struct query_result {
    enum query_type type; /* SCALAR, VECTOR, MATRIX or STRING */
    /* SCALAR and STRING: the value at time t. */
    int64_t t;
    double scalar;
    char *string;
    /* VECTOR and MATRIX.  A range query's matrix is sorted by labels; an
     * instant vector keeps the order the expression gave (sort and
     * sort_desc order it). */
    size_t nseries;
    struct query_series *series;
    uint64_t samples; /* samples read from storage, for the slow log */
    /* What served the reads: bit 0 raw chunks, bit 1 + i downsampled
     * tier i (tsdb_tiers_get).  0 when nothing was read. */
    uint32_t resolutions;
};

/*
 * Evaluates text (len bytes) at time t (ms).  The result is of the
 * expression's type; a range selector or subquery at the top gives a
 * matrix of raw samples, as Prometheus's instant query does.
 * Returns TSDB_OK with *out filled (release with query_result_release),
 * or a negative TSDB_E* code with err filled; err->kind, not the code,
 * says which API error it is (a timeout is TSDB_ELIMIT with kind
 * QUERY_ERR_TIMEOUT, the sample limit TSDB_ELIMIT with QUERY_ERR_EXECUTION).
 */
int query_eval_instant(struct tsdb *db, const struct query_opts *o,
                       const char *text, size_t len, int64_t t,
                       struct query_result *out, struct query_err *err);

/*
 * Evaluates text at start, start + step, ... up to end (ms, step > 0).
 * The expression must be a scalar or an instant vector (a range vector is
 * bad_data: "invalid expression type \"range vector\" for range query,
 * must be Scalar or instant Vector").  The result is always a matrix, one
 * series per label set with its points at the steps where it had a value;
 * a scalar expression gives one series with no labels.
 */
int query_eval_range(struct tsdb *db, const struct query_opts *o,
                     const char *text, size_t len, int64_t start, int64_t end,
                     int64_t step, struct query_result *out,
                     struct query_err *err);

/* Same, over a tree already parsed (not consumed; not modified). */
int query_eval_range_node(struct tsdb *db, const struct query_opts *o,
                          const struct query_node *expr, int64_t start,
                          int64_t end, int64_t step, struct query_result *out,
                          struct query_err *err);

/* Frees what a successful evaluation filled; safe on a zeroed struct. */
void query_result_release(struct query_result *r);

#endif
