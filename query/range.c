/*
 * Range vectors: range selectors and subqueries, the functions over them
 * (rate(x[5m]), max_over_time(e[1h:1m]), ...) and a range vector at the
 * top of an instant query.
 *
 * A range argument is read one series at a time, with every sample any
 * step's window needs; each step then takes its window, [ref - range, ref]
 * with both ends included as in Prometheus 2.42, by two indexes that only
 * move forward.  A subquery's series are its inner expression's results
 * on its own grid of steps, aligned to multiples of its step.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "query/eval_internal.h"
#include "query/funcs.h"
#include "tsdb/error.h"

/* Called per series of a range argument, samples ascending, no stale
 * markers; arrays borrowed for the call. */
typedef int (*range_fn)(void *ctx, const struct tsdb_labels *ls,
                        const int64_t *t, const double *v, size_t n);

/* Where a range argument's windows are: its range and modifiers. */
static void range_shape(const struct query_node *m, int64_t *range,
                        const struct query_mods **mods)
{
    if (m->kind == QUERY_NODE_MATRIX) {
        *range = m->u.matrix.range_ms;
        *mods = &m->u.matrix.sel->u.sel.mods;
    } else {
        *range = m->u.subquery.range_ms;
        *mods = &m->u.subquery.mods;
    }
}

/* The subquery's inner results, turned into samples for a range_fn. */
struct subq {
    struct qctx *c;
    const struct qgrid *inner;
    range_fn fn;
    void *ctx;
    int64_t *t;
    double *v;
};

static int subq_series(void *ctx, struct qser *s)
{
    struct subq *q = ctx;
    size_t n = 0;
    int rc;

    for (size_t k = 0; k < s->n; k++) {
        if (!s->has[k])
            continue;
        q->t[n] = qgrid_at(q->inner, k);
        q->v[n] = s->v[k];
        n++;
    }
    rc = q->fn(q->ctx, &s->ls, q->t, q->v, n);
    qser_free(q->c, s);
    return rc;
}

/*
 * The inner grid of subquery m for outer steps lo..hi (reference times
 * before the offset is taken): steps at multiples of the subquery's step,
 * from the first at or after lo - offset - range to hi - offset.
 */
static void subquery_grid(const struct qctx *c, const struct query_node *m,
                          int64_t lo, int64_t hi, struct qgrid *g)
{
    int64_t step =
        m->u.subquery.step_ms ? m->u.subquery.step_ms : c->o->subquery_step_ms;
    int64_t from = lo - m->u.subquery.range_ms;
    int64_t start = step * (from / step);

    if (start < from)
        start += step;
    g->start = start;
    g->step = step;
    if (hi < start) {
        g->n = 0;
        g->end = start;
        return;
    }
    g->n = (size_t)((hi - start) / step) + 1;
    g->end = qgrid_at(g, g->n - 1);
}

/* Calls fn for each series of range argument m (a range selector or a
 * subquery) over the windows of reference times lo..hi. */
static int range_source(struct qctx *c, const struct query_node *m, int64_t lo,
                        int64_t hi, range_fn fn, void *ctx)
{
    struct qgrid inner;
    struct subq q = {c, &inner, fn, ctx, NULL, NULL};
    struct sel_reader r;
    int rc;

    if (m->kind == QUERY_NODE_MATRIX) {
        c->resolutions |= 1;
        rc = sel_open(c, m->u.matrix.sel, lo - m->u.matrix.range_ms, hi, true,
                      &r);
        while (rc == TSDB_OK) {
            const struct tsdb_labels *ls;

            rc = sel_next(c, &r, &ls);
            if (rc == TSDB_OK)
                rc = fn(ctx, ls, r.buf.t, r.buf.v, r.buf.n);
        }
        sel_close(c, &r);
        return rc == TSDB_ENOTFOUND ? TSDB_OK : rc;
    }
    subquery_grid(c, m, lo, hi, &inner);
    if (inner.n == 0)
        return TSDB_OK;
    rc = ev_hold(c, (int64_t)inner.n);
    if (rc != TSDB_OK)
        return rc;
    q.t = malloc(inner.n * sizeof(*q.t));
    q.v = malloc(inner.n * sizeof(*q.v));
    if (q.t == NULL || q.v == NULL)
        rc = ev_nomem(c);
    else
        rc = ev_vector(c, m->u.subquery.expr, &inner, subq_series, &q);
    free(q.t);
    free(q.v);
    ev_hold(c, -(int64_t)inner.n);
    return rc;
}

/* ---- functions over range vectors ---- */

typedef bool (*window_kernel)(const struct query_window *w, double *out);

static const struct {
    const char *name;
    window_kernel fn;
} kernels[] = {
    {"rate", query_rate},
    {"increase", query_increase},
    {"delta", query_delta},
    {"irate", query_irate},
    {"idelta", query_idelta},
    {"resets", query_resets},
    {"changes", query_changes},
    {"deriv", query_deriv},
    {"avg_over_time", query_avg_over_time},
    {"min_over_time", query_min_over_time},
    {"max_over_time", query_max_over_time},
    {"sum_over_time", query_sum_over_time},
    {"count_over_time", query_count_over_time},
    {"stddev_over_time", query_stddev_over_time},
    {"stdvar_over_time", query_stdvar_over_time},
    {"last_over_time", query_last_over_time},
    {"present_over_time", query_present_over_time},
};

struct rangecall {
    struct qctx *c;
    const struct query_node *call;
    const struct query_node *arg; /* the range argument */
    const struct qgrid *g;
    window_kernel kernel; /* or NULL for the special ones below */
    const char *name;
    double *p1, *p2; /* scalar arguments per step, or NULL */
    double *scratch; /* quantile_over_time */
    size_t scratch_n;
    size_t *queue; /* max and min_over_time */
    size_t queue_n;
    uint8_t *any; /* absent_over_time: a step saw a sample */
    bool keep_name;
    struct qmap *merge;
    qemit_fn emit;
    void *ectx;
};

static int holt_winters_args(struct rangecall *x, size_t k)
{
    if (!(x->p1[k] > 0 && x->p1[k] < 1))
        return ev_fail(x->c, QUERY_ERR_EXECUTION,
                       "invalid smoothing factor. Expected: 0 < sf < 1, "
                       "got: %f",
                       x->p1[k]);
    if (!(x->p2[k] > 0 && x->p2[k] < 1))
        return ev_fail(x->c, QUERY_ERR_EXECUTION,
                       "invalid trend factor. Expected: 0 < tf < 1, got: %f",
                       x->p2[k]);
    return TSDB_OK;
}

/* One window of one series: false for "no output at this step". */
static int apply_window(struct rangecall *x, size_t k,
                        const struct query_window *w, double *out, bool *has)
{
    const char *fn = x->name;
    int rc;

    *has = false;
    if (x->kernel != NULL) {
        *has = x->kernel(w, out);
        return TSDB_OK;
    }
    if (strcmp(fn, "predict_linear") == 0) {
        *has = query_predict_linear(w, qgrid_at(x->g, k), x->p1[k], out);
        return TSDB_OK;
    }
    if (strcmp(fn, "quantile_over_time") == 0) {
        if (w->n > x->scratch_n) {
            double *s = realloc(x->scratch, w->n * sizeof(*s));

            if (s == NULL)
                return ev_nomem(x->c);
            x->scratch = s;
            x->scratch_n = w->n;
        }
        *has = query_quantile_over_time(w, x->p1[k], x->scratch, out);
        return TSDB_OK;
    }
    if (strcmp(fn, "holt_winters") == 0) {
        if (w->n == 0)
            return TSDB_OK;
        rc = holt_winters_args(x, k);
        if (rc == TSDB_OK)
            query_holt_winters(w, x->p1[k], x->p2[k], out, has);
        return rc;
    }
    if (strcmp(fn, "absent_over_time") == 0) {
        if (w->n > 0)
            x->any[k] = 1;
        return TSDB_OK;
    }
    /* Native-histogram functions: no float sample is a histogram, so
     * float data gives them nothing, as in Prometheus. */
    return TSDB_OK;
}

/*
 * max_over_time and min_over_time by a sliding window: a queue of the
 * window's candidates (indexes of non-NaN values, each better than every
 * later one), so each sample is looked at a constant number of times
 * instead of once per window it falls in.  Same answers as the kernels:
 * NaN only when every value of the window is NaN.
 */
static int fill_extremum(struct rangecall *x, struct qser *s, const int64_t *t,
                         const double *v, size_t n, bool max)
{
    const struct query_mods *mods;
    int64_t range;
    size_t lo = 0, hi = 0, qh = 0, qt = 0; /* queue is q[qh .. qt) */
    size_t *q;

    if (n > x->queue_n) {
        size_t *nq = realloc(x->queue, n * sizeof(*nq));

        if (nq == NULL)
            return ev_nomem(x->c);
        x->queue = nq;
        x->queue_n = n;
    }
    q = x->queue;
    range_shape(x->arg, &range, &mods);
    for (size_t k = 0; k < x->g->n; k++) {
        int64_t ref = ev_ref_time(x->c, mods, qgrid_at(x->g, k));

        for (; hi < n && t[hi] <= ref; hi++) {
            if (isnan(v[hi]))
                continue;
            while (qt > qh &&
                   (max ? v[q[qt - 1]] <= v[hi] : v[q[qt - 1]] >= v[hi]))
                qt--;
            q[qt++] = hi;
        }
        while (lo < hi && t[lo] < ref - range)
            lo++;
        while (qh < qt && q[qh] < lo)
            qh++;
        if (hi == lo)
            continue;
        s->has[k] = 1;
        s->v[k] = qh < qt ? v[q[qh]] : NAN;
    }
    return TSDB_OK;
}

/* Every step's window of one series through the function. */
static int fill_windows(struct rangecall *x, struct qser *s, const int64_t *t,
                        const double *v, size_t n)
{
    const struct query_mods *mods;
    int64_t range;
    size_t lo = 0, hi = 0; /* window is [lo, hi) */
    int rc = TSDB_OK;

    range_shape(x->arg, &range, &mods);
    for (size_t k = 0; k < x->g->n && rc == TSDB_OK; k++) {
        int64_t ref = ev_ref_time(x->c, mods, qgrid_at(x->g, k));
        struct query_window w;
        double out;
        bool has;

        /* A long series over many steps is the slow case: look at the
         * clock on the way. */
        if ((k & 255) == 255) {
            rc = ev_check(x->c);
            if (rc != TSDB_OK)
                break;
        }
        while (hi < n && t[hi] <= ref)
            hi++;
        while (lo < hi && t[lo] < ref - range)
            lo++;
        w.t = t + lo;
        w.v = v + lo;
        w.n = hi - lo;
        w.start = ref - range;
        w.end = ref;
        rc = apply_window(x, k, &w, &out, &has);
        if (has && s != NULL) {
            s->has[k] = 1;
            s->v[k] = out;
        }
    }
    return rc;
}

static int range_series(void *ctx, const struct tsdb_labels *ls,
                        const int64_t *t, const double *v, size_t n)
{
    struct rangecall *x = ctx;
    struct qctx *c = x->c;
    struct qser *s = NULL;
    bool absent = x->any != NULL;
    int rc;

    if (!absent) {
        s = qser_new(c, ls->v, ls->n, x->g->n);
        if (s == NULL)
            return c->rc;
    }
    if (x->kernel == query_max_over_time || x->kernel == query_min_over_time)
        rc = fill_extremum(x, s, t, v, n, x->kernel == query_max_over_time);
    else
        rc = fill_windows(x, s, t, v, n);
    if (absent)
        return rc;
    if (rc != TSDB_OK) {
        qser_free(c, s);
        return rc;
    }
    return ev_pass_on(c, s, !x->keep_name, x->merge, x->emit, x->ectx);
}

/* Evaluates the scalar argument i of call into a new array, or NULL. */
static int scalar_arg(struct qctx *c, const struct query_node *call, size_t i,
                      const struct qgrid *g, double **out)
{
    *out = NULL;
    if (i >= call->u.call.nargs)
        return TSDB_OK;
    *out = malloc(g->n * sizeof(double));
    if (*out == NULL)
        return ev_nomem(c);
    return ev_scalar(c, call->u.call.args[i], g, *out);
}

static int emit_absent(struct rangecall *x)
{
    struct qctx *c = x->c;
    struct tsdb_labels ls;
    struct qser *s;
    int rc;

    rc = ev_absent_labels(c, x->arg, &ls);
    if (rc != TSDB_OK)
        return rc;
    s = qser_new_take(c, &ls, x->g->n);
    if (s == NULL)
        return c->rc;
    for (size_t k = 0; k < x->g->n; k++) {
        s->has[k] = !x->any[k];
        s->v[k] = 1;
    }
    if (qser_empty(s)) {
        qser_free(c, s);
        return TSDB_OK;
    }
    return x->emit(x->ectx, s);
}

int ev_call_range(struct qctx *c, const struct query_node *n,
                  const struct qgrid *g, qemit_fn emit, void *ectx)
{
    struct rangecall x;
    struct qmap m;
    const struct query_mods *mods;
    int64_t range;
    size_t ai = 0, tier;
    int rc = TSDB_OK;

    memset(&x, 0, sizeof(x));
    x.c = c;
    x.call = n;
    x.g = g;
    x.name = n->u.call.fn->name;
    x.emit = emit;
    x.ectx = ectx;
    x.keep_name = strcmp(x.name, "last_over_time") == 0;
    for (size_t i = 0; i < sizeof(kernels) / sizeof(kernels[0]); i++)
        if (strcmp(kernels[i].name, x.name) == 0)
            x.kernel = kernels[i].fn;
    if (strcmp(x.name, "quantile_over_time") == 0) {
        ai = 1;
        rc = scalar_arg(c, n, 0, g, &x.p1);
    } else if (n->u.call.nargs > 1) {
        rc = scalar_arg(c, n, 1, g, &x.p1);
        if (rc == TSDB_OK)
            rc = scalar_arg(c, n, 2, g, &x.p2);
    }
    x.arg = ev_unparen(n->u.call.args[ai]);
    if (rc == TSDB_OK && strcmp(x.name, "absent_over_time") == 0) {
        x.any = calloc(g->n, 1);
        if (x.any == NULL)
            rc = ev_nomem(c);
    }
    qmap_init(&m, g->n);
    if (!x.keep_name && x.any == NULL && ev_names_vary(x.arg))
        x.merge = &m;
    range_shape(x.arg, &range, &mods);
    if (rc == TSDB_OK && qtier_pick(c, x.name, x.arg, g, &tier))
        rc = qtier_call(c, x.name, x.arg, g, tier, x.keep_name, x.merge, emit,
                        ectx);
    else if (rc == TSDB_OK)
        rc = range_source(c, x.arg, ev_ref_time(c, mods, g->start),
                          ev_ref_time(c, mods, g->end), range_series, &x);
    if (rc == TSDB_OK && x.any != NULL)
        rc = emit_absent(&x);
    if (rc == TSDB_OK && x.merge != NULL)
        rc = qset_emit(c, &m.set, emit, ectx);
    qmap_release(c, &m);
    free(x.p1);
    free(x.p2);
    free(x.scratch);
    free(x.queue);
    free(x.any);
    return rc;
}

/* ---- a range vector at the top of an instant query ---- */

struct rawctx {
    struct qctx *c;
    struct query_result *out;
    size_t cap;
    int64_t from, to; /* the window */
};

static int raw_series(void *ctx, const struct tsdb_labels *ls, const int64_t *t,
                      const double *v, size_t n)
{
    struct rawctx *x = ctx;
    struct query_result *r = x->out;
    struct query_series *o;
    size_t lo = 0, hi = n;

    while (lo < n && t[lo] < x->from)
        lo++;
    while (hi > lo && t[hi - 1] > x->to)
        hi--;
    if (hi == lo)
        return TSDB_OK;
    if (r->nseries == x->cap) {
        size_t cap = x->cap ? x->cap * 2 : 16;
        struct query_series *s = realloc(r->series, cap * sizeof(*s));

        if (s == NULL)
            return ev_nomem(x->c);
        r->series = s;
        x->cap = cap;
    }
    o = &r->series[r->nseries];
    memset(o, 0, sizeof(*o));
    o->t = malloc((hi - lo) * sizeof(*o->t));
    o->v = malloc((hi - lo) * sizeof(*o->v));
    if (o->t == NULL || o->v == NULL ||
        tsdb_labels_copy(ls->v, ls->n, &o->labels) != TSDB_OK) {
        free(o->t);
        free(o->v);
        return ev_nomem(x->c);
    }
    memcpy(o->t, t + lo, (hi - lo) * sizeof(*o->t));
    memcpy(o->v, v + lo, (hi - lo) * sizeof(*o->v));
    o->n = hi - lo;
    r->nseries++;
    return TSDB_OK;
}

static int cmp_result_series(const void *a, const void *b)
{
    const struct query_series *x = a, *y = b;

    return tsdb_labels_cmp(&x->labels, &y->labels);
}

int ev_raw_matrix(struct qctx *c, const struct query_node *n, int64_t t,
                  struct query_result *out)
{
    struct rawctx x = {c, out, 0, 0, 0};
    const struct query_mods *mods;
    int64_t range, ref;
    int rc;

    range_shape(n, &range, &mods);
    ref = ev_ref_time(c, mods, t);
    x.from = ref - range;
    x.to = ref;
    rc = range_source(c, n, ref, ref, raw_series, &x);
    if (rc == TSDB_OK && out->nseries > 1)
        qsort(out->series, out->nseries, sizeof(*out->series),
              cmp_result_series);
    return rc;
}
