/*
 * What the evaluator's files share (eval.c, series.c, aggregate.c,
 * binop.c, calls.c); not an API for anything outside query/.
 *
 * Every expression is evaluated over a grid of steps.  An instant vector
 * is a sequence of series, each with one slot per step (a value and a
 * presence flag), handed one at a time to an emit callback that takes
 * ownership: this is what lets a selector feed an aggregation without the
 * whole vector existing at once.  A scalar is a plain array of one double
 * per step.
 */
#ifndef QUERY_EVAL_INTERNAL_H
#define QUERY_EVAL_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "query/ast.h"
#include "query/eval.h"
#include "tsdb/labels.h"
#include "tsdb/matcher.h"

/* Steps start + k * step for k < n; end is the last one. */
struct qgrid {
    int64_t start, end, step;
    size_t n;
};

/* One series over a grid: v[k] is meaningful only where has[k]. */
struct qser {
    struct tsdb_labels ls;
    size_t n;
    double *v;
    uint8_t *has;
};

/* A materialized vector: series in the order they were emitted. */
struct qset {
    struct qser **v;
    size_t n, cap;
};

struct qctx {
    struct tsdb *db;
    const struct query_opts *o;
    struct query_err *err;
    int64_t qstart, qend; /* the query's own range, for @ start()/end() */
    uint64_t held;        /* steps and raw samples held now */
    uint64_t samples;     /* samples read from storage */
    int64_t deadline_ns;  /* CLOCK_MONOTONIC; 0: none */
    int rc;               /* the code of the error in err, once one happened */
    uint32_t resolutions; /* as in struct query_result */
};

/* Receives one series and owns it from then on, also on error. */
typedef int (*qemit_fn)(void *ctx, struct qser *s);

/* ---- series.c: series, sets, label sets ---- */

/* A new series of n steps, none present, owning a copy of labels v.
 * NULL on failure, with the error in c (c->rc is its code). */
struct qser *qser_new(struct qctx *c, const struct tsdb_label *v, size_t nl,
                      size_t n);
/* A new series of n steps with labels ls taken over (ls zeroed). */
struct qser *qser_new_take(struct qctx *c, struct tsdb_labels *ls, size_t n);
void qser_free(struct qctx *c, struct qser *s);
/* Replaces s's labels with a copy of v[0..nl). */
int qser_set_labels(struct qctx *c, struct qser *s, const struct tsdb_label *v,
                    size_t nl);
/* Copies v[0..n), sorting it by name first (v is reordered). */
int qlabels_sorted(struct qctx *c, struct tsdb_label *v, size_t n,
                   struct tsdb_labels *out);
/* Removes __name__ from s's labels, if there. */
int qser_drop_name(struct qctx *c, struct qser *s);
bool qser_empty(const struct qser *s);

bool labels_equal(const struct tsdb_labels *a, const struct tsdb_labels *b);
uint64_t labels_hash(const struct tsdb_labels *ls);
/* Formats as Prometheus prints a label set in errors: {a="b", c="d"}. */
void labels_str(const struct tsdb_labels *ls, char *out, size_t cap);

void qset_init(struct qset *s);
void qset_release(struct qctx *c, struct qset *s);
int qset_push(struct qctx *c, struct qset *s, struct qser *x);
/* An emit callback that appends to the set of a struct qcollect. */
struct qcollect {
    struct qctx *c;
    struct qset *set;
};
int qset_collect(void *ctx, struct qser *s);
/* Emits every series of s in order, leaving s empty. */
int qset_emit(struct qctx *c, struct qset *s, qemit_fn emit, void *ectx);

/*
 * Series keyed by label set, for results whose series arrive in pieces
 * (binary operators, dropped names): a value put at a step that is
 * already taken is an error "vector cannot contain metrics with the same
 * labelset".
 */
struct qmap {
    struct qset set;
    uint32_t *slots; /* index + 1 into set.v, 0 empty */
    uint64_t *hashes;
    size_t nslots;
    size_t nsteps;
};
void qmap_init(struct qmap *m, size_t nsteps);
void qmap_release(struct qctx *c, struct qmap *m);
/* The series with labels ls (a copy is taken if it is new), and its
 * index in m->set if idx is not NULL. */
int qmap_get(struct qctx *c, struct qmap *m, const struct tsdb_labels *ls,
             struct qser **out, size_t *idx);
/* Puts every present step of s into the map's series of the same labels,
 * failing on a step taken twice; frees s. */
int qmap_merge(struct qctx *c, struct qmap *m, struct qser *s);

/* ---- select.c: reading one selector's series from storage ---- */

/* One series' samples, ascending; grown as needed, reused per series. */
struct sel_samples {
    int64_t *t;
    double *v;
    size_t n, cap;
};

struct sel_reader {
    struct tsdb_matcher *ms;
    size_t nms;
    struct tsdb_query *q;
    struct sel_samples buf;
    bool drop_stale; /* range selections leave stale markers out */
};

/* Opens the series of selector node sel with samples in [mint, maxt]. */
int sel_open(struct qctx *c, const struct query_node *sel, int64_t mint,
             int64_t maxt, bool drop_stale, struct sel_reader *r);
/* Reads the next series whole into r->buf; TSDB_ENOTFOUND past the last.
 * *ls is borrowed until the next call. */
int sel_next(struct qctx *c, struct sel_reader *r,
             const struct tsdb_labels **ls);
void sel_close(struct qctx *c, struct sel_reader *r);
/* Prometheus's stale marker: one NaN bit pattern, not any NaN. */
bool sel_is_stale(double v);

/* ---- eval.c ---- */

/* Fills c->err and returns the code for it. */
int ev_fail(struct qctx *c, enum query_err_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int ev_nomem(struct qctx *c);
/* Counts n more held samples against the limit; negative n releases. */
int ev_hold(struct qctx *c, int64_t n);
/* Fails with a timeout once the deadline has passed; cheap to call. */
int ev_check(struct qctx *c);

/* The time a step of a selector or subquery looks at: the step's time,
 * or its @ time, less its offset. */
int64_t ev_ref_time(const struct qctx *c, const struct query_mods *m,
                    int64_t t);
/* An instant-vector selector; with want_ts each value is its sample's
 * timestamp in seconds, for timestamp(). */
int ev_selector(struct qctx *c, const struct query_node *sel,
                const struct qgrid *g, bool want_ts, qemit_fn emit, void *ectx);
/* A range selector or subquery at the top of an instant query: the raw
 * samples of its window at t. */
int ev_raw_matrix(struct qctx *c, const struct query_node *n, int64_t t,
                  struct query_result *out);

/* Hands a computed series on: freed if it has no step left, else its
 * name dropped if asked, then merged into merge (when names may collide)
 * or emitted. */
int ev_pass_on(struct qctx *c, struct qser *s, bool drop_name,
               struct qmap *merge, qemit_fn emit, void *ectx);

/* Evaluates an instant-vector expression, emitting its series. */
int ev_vector(struct qctx *c, const struct query_node *n, const struct qgrid *g,
              qemit_fn emit, void *ectx);
/* Evaluates a scalar expression into out[0..g->n). */
int ev_scalar(struct qctx *c, const struct query_node *n, const struct qgrid *g,
              double *out);
/* Evaluates an instant-vector expression into a set. */
int ev_collect(struct qctx *c, const struct query_node *n,
               const struct qgrid *g, struct qset *out);
/* The value of a string expression (a literal, maybe in parentheses). */
const struct query_str *ev_string(const struct query_node *n);
/* n without the parentheses around it. */
const struct query_node *ev_unparen(const struct query_node *n);
/* Can the series of n differ only in their metric name?  Then dropping
 * the name may make two of them equal, and the caller must merge. */
bool ev_names_vary(const struct query_node *n);

/* ---- aggregate.c, binop.c, calls.c ---- */

int ev_aggregate(struct qctx *c, const struct query_node *n,
                 const struct qgrid *g, qemit_fn emit, void *ectx);
int ev_binary(struct qctx *c, const struct query_node *n, const struct qgrid *g,
              qemit_fn emit, void *ectx);
int ev_binary_scalar(struct qctx *c, const struct query_node *n,
                     const struct qgrid *g, double *out);
/* Element-wise operator; false when a comparison does not hold. */
bool ev_binop_apply(enum query_op op, double l, double r, double *out);
/* Instant-vector functions (everything whose argument is not a range). */
int ev_call(struct qctx *c, const struct query_node *n, const struct qgrid *g,
            qemit_fn emit, void *ectx);
/* The labels absent() and absent_over_time() give their one series:
 * those of the argument selector's equality matchers. */
int ev_absent_labels(struct qctx *c, const struct query_node *arg,
                     struct tsdb_labels *out);
/* Scalar-valued functions: time(), pi(), scalar(v). */
int ev_call_scalar(struct qctx *c, const struct query_node *n,
                   const struct qgrid *g, double *out);
/* Range-vector functions (rate(x[5m]), max_over_time(e[1h:1m]), ...). */
int ev_call_range(struct qctx *c, const struct query_node *n,
                  const struct qgrid *g, qemit_fn emit, void *ectx);

/* ---- tier.c: range functions answered from downsampled tiers ---- */

/* The coarsest tier that can answer call fn over range argument m on grid
 * g exactly (see tier.c); false: read raw samples. */
bool qtier_pick(struct qctx *c, const char *fn, const struct query_node *m,
                const struct qgrid *g, size_t *tier);
/* Evaluates fn over m from tier's buckets, handing each series on as
 * ev_call_range does. */
int qtier_call(struct qctx *c, const char *fn, const struct query_node *m,
               const struct qgrid *g, size_t tier, bool keep_name,
               struct qmap *merge, qemit_fn emit, void *ectx);

/* Time of step k of g. */
static inline int64_t qgrid_at(const struct qgrid *g, size_t k)
{
    return g->start + (int64_t)k * g->step;
}

#endif
