/*
 * PromQL evaluation: the entry points, the dispatch over node kinds, and
 * instant-vector selectors with lookback and staleness (protocols.md
 * section 3).  Range functions live in range.c, other functions in
 * calls.c, aggregations in aggregate.c, operators in binop.c.
 */
#include "query/eval.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "query/eval_internal.h"
#include "query/parse.h"
#include "tsdb/error.h"

void query_opts_init(struct query_opts *o)
{
    o->lookback_ms = 5 * 60 * 1000;
    o->timeout_ms = 2 * 60 * 1000;
    o->max_samples = 50000000;
    o->subquery_step_ms = 60 * 1000;
    o->no_tiers = false;
}

/* ---- errors and limits ---- */

int ev_fail(struct qctx *c, enum query_err_kind kind, const char *fmt, ...)
{
    va_list ap;

    /* The first error wins: later ones are consequences of it. */
    if (c->rc != TSDB_OK)
        return c->rc;
    c->err->kind = kind;
    va_start(ap, fmt);
    vsnprintf(c->err->msg, sizeof(c->err->msg), fmt, ap);
    va_end(ap);
    switch (kind) {
    case QUERY_ERR_BAD_DATA:
        c->rc = TSDB_EINVAL;
        break;
    case QUERY_ERR_EXECUTION:
    case QUERY_ERR_TIMEOUT:
        c->rc = TSDB_ELIMIT;
        break;
    case QUERY_ERR_INTERNAL:
        c->rc = TSDB_EIO;
        break;
    }
    return c->rc;
}

int ev_nomem(struct qctx *c)
{
    ev_fail(c, QUERY_ERR_INTERNAL, "out of memory");
    if (c->rc == TSDB_EIO)
        c->rc = TSDB_ENOMEM;
    return c->rc;
}

int ev_hold(struct qctx *c, int64_t n)
{
    if (n < 0) {
        c->held -= (uint64_t)-n;
        return TSDB_OK;
    }
    c->held += (uint64_t)n;
    if (c->o->max_samples && c->held > c->o->max_samples)
        return ev_fail(c, QUERY_ERR_EXECUTION,
                       "query processing would load too many samples into "
                       "memory in query execution (limit %llu, "
                       "--query-max-samples)",
                       (unsigned long long)c->o->max_samples);
    return TSDB_OK;
}

static int64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int ev_check(struct qctx *c)
{
    if (c->rc != TSDB_OK)
        return c->rc;
    /* Callers check per series or per 256 steps, so reading the clock
     * (a vDSO call) each time costs nothing that shows. */
    if (c->deadline_ns == 0)
        return TSDB_OK;
    if (now_ns() > c->deadline_ns)
        return ev_fail(c, QUERY_ERR_TIMEOUT,
                       "query timed out in expression evaluation (limit "
                       "%lld ms)",
                       (long long)c->o->timeout_ms);
    return TSDB_OK;
}

/* ---- small helpers over the tree ---- */

const struct query_node *ev_unparen(const struct query_node *n)
{
    while (n->kind == QUERY_NODE_PAREN)
        n = n->u.paren;
    return n;
}

const struct query_str *ev_string(const struct query_node *n)
{
    n = ev_unparen(n);
    return n->kind == QUERY_NODE_STRING ? &n->u.string : NULL;
}

static bool selector_one_name(const struct query_node *sel)
{
    if (sel->u.sel.name.p != NULL)
        return true;
    for (size_t i = 0; i < sel->u.sel.nmatchers; i++) {
        const struct query_matcher *m = &sel->u.sel.matchers[i];

        if (m->op == QUERY_MATCH_EQ && strcmp(m->name.p, "__name__") == 0)
            return true;
    }
    return false;
}

/* Functions that keep the metric name of their input. */
static bool keeps_name(const char *fn)
{
    return strcmp(fn, "last_over_time") == 0 || strcmp(fn, "sort") == 0 ||
           strcmp(fn, "sort_desc") == 0 || strcmp(fn, "label_replace") == 0 ||
           strcmp(fn, "label_join") == 0;
}

bool ev_names_vary(const struct query_node *n)
{
    n = ev_unparen(n);
    switch (n->kind) {
    case QUERY_NODE_SELECTOR:
        return !selector_one_name(n);
    case QUERY_NODE_MATRIX:
        return !selector_one_name(n->u.matrix.sel);
    case QUERY_NODE_SUBQUERY:
        return ev_names_vary(n->u.subquery.expr);
    case QUERY_NODE_UNARY:
        return !n->u.unary.neg && ev_names_vary(n->u.unary.expr);
    case QUERY_NODE_CALL: {
        const char *fn = n->u.call.fn->name;

        if (!keeps_name(fn) || n->u.call.nargs == 0)
            return false;
        if (strncmp(fn, "label_", 6) == 0) {
            const struct query_str *dst = ev_string(n->u.call.args[1]);

            if (dst != NULL && strcmp(dst->p, "__name__") == 0)
                return true;
        }
        return ev_names_vary(n->u.call.args[0]);
    }
    case QUERY_NODE_AGG:
        if (n->u.agg.op == QUERY_AGG_TOPK || n->u.agg.op == QUERY_AGG_BOTTOMK)
            return ev_names_vary(n->u.agg.expr);
        if (n->u.agg.op == QUERY_AGG_COUNT_VALUES)
            return false;
        /* by (__name__) keeps it: then it varies like the input's. */
        for (size_t i = 0; i < n->u.agg.grouping.n; i++)
            if (strcmp(n->u.agg.grouping.names[i].p, "__name__") == 0)
                return !n->u.agg.without && ev_names_vary(n->u.agg.expr);
        return false;
    case QUERY_NODE_BINARY:
        switch (n->u.binary.op) {
        case QUERY_OP_EQ:
        case QUERY_OP_NE:
        case QUERY_OP_LT:
        case QUERY_OP_LE:
        case QUERY_OP_GT:
        case QUERY_OP_GE:
        case QUERY_OP_ATAN2: /* keeps the name in 2.42 */
            if (n->u.binary.return_bool)
                return false;
            return query_node_type(n->u.binary.lhs) == QUERY_TYPE_VECTOR
                       ? ev_names_vary(n->u.binary.lhs)
                       : ev_names_vary(n->u.binary.rhs);
        case QUERY_OP_AND:
        case QUERY_OP_UNLESS:
            return ev_names_vary(n->u.binary.lhs);
        case QUERY_OP_OR:
            return true;
        default:
            return false;
        }
    default:
        return false;
    }
}

/* ---- instant-vector selectors ---- */

/* Time a step looks at: the step, or the @ time, less the offset. */
int64_t ev_ref_time(const struct qctx *c, const struct query_mods *m, int64_t t)
{
    switch (m->at) {
    case QUERY_AT_TIME:
        t = m->at_ms;
        break;
    case QUERY_AT_START:
        t = c->qstart;
        break;
    case QUERY_AT_END:
        t = c->qend;
        break;
    case QUERY_AT_NONE:
        break;
    }
    return t - m->offset_ms;
}

/*
 * Fills s->v from one series' samples: at each step the newest sample no
 * later than the step's reference time and no older than the lookback,
 * unless that sample is a stale marker.  With want_ts the value is the
 * sample's own time in seconds (timestamp() over a selector).
 */
static void lookback_fill(const struct qctx *c, const struct query_node *sel,
                          const struct qgrid *g, const struct sel_samples *b,
                          bool want_ts, struct qser *s)
{
    size_t i = 0; /* samples before i are at or before the reference */

    for (size_t k = 0; k < g->n; k++) {
        int64_t ref = ev_ref_time(c, &sel->u.sel.mods, qgrid_at(g, k));
        size_t j;

        /* Reference times never go back: steps ascend, or @ pins them. */
        while (i < b->n && b->t[i] <= ref)
            i++;
        if (i == 0)
            continue;
        j = i - 1;
        if (b->t[j] < ref - c->o->lookback_ms || sel_is_stale(b->v[j]))
            continue;
        s->has[k] = 1;
        s->v[k] = want_ts ? (double)b->t[j] / 1000.0 : b->v[j];
    }
}

int ev_selector(struct qctx *c, const struct query_node *sel,
                const struct qgrid *g, bool want_ts, qemit_fn emit, void *ectx)
{
    struct sel_reader r;
    int64_t lo = ev_ref_time(c, &sel->u.sel.mods, g->start);
    int64_t hi = ev_ref_time(c, &sel->u.sel.mods, g->end);
    int rc;

    c->resolutions |= 1;
    rc = sel_open(c, sel, lo - c->o->lookback_ms, hi, false, &r);
    while (rc == TSDB_OK) {
        const struct tsdb_labels *ls;
        struct qser *s;

        rc = sel_next(c, &r, &ls);
        if (rc != TSDB_OK)
            break;
        s = qser_new(c, ls->v, ls->n, g->n);
        if (s == NULL) {
            rc = c->rc;
            break;
        }
        lookback_fill(c, sel, g, &r.buf, want_ts, s);
        if (qser_empty(s)) {
            qser_free(c, s);
            continue;
        }
        rc = emit(ectx, s);
    }
    sel_close(c, &r);
    return rc == TSDB_ENOTFOUND ? TSDB_OK : rc;
}

int ev_pass_on(struct qctx *c, struct qser *s, bool drop_name,
               struct qmap *merge, qemit_fn emit, void *ectx)
{
    int rc = drop_name ? qser_drop_name(c, s) : TSDB_OK;

    if (rc != TSDB_OK || qser_empty(s)) {
        qser_free(c, s);
        return rc;
    }
    if (merge != NULL)
        return qmap_merge(c, merge, s);
    return emit(ectx, s);
}

/* ---- dispatch ---- */

/* The unary minus over a vector: negated values, names dropped. */
struct negate {
    struct qctx *c;
    qemit_fn emit;
    void *ectx;
    struct qmap *merge; /* when names vary: duplicates to detect */
};

static int negate_one(void *ctx, struct qser *s)
{
    struct negate *x = ctx;

    for (size_t k = 0; k < s->n; k++)
        s->v[k] = -s->v[k];
    return ev_pass_on(x->c, s, true, x->merge, x->emit, x->ectx);
}

static int ev_negate(struct qctx *c, const struct query_node *e,
                     const struct qgrid *g, qemit_fn emit, void *ectx)
{
    struct negate x = {c, emit, ectx, NULL};
    struct qmap m;
    int rc;

    if (!ev_names_vary(e))
        return ev_vector(c, e, g, negate_one, &x);
    qmap_init(&m, g->n);
    x.merge = &m;
    rc = ev_vector(c, e, g, negate_one, &x);
    if (rc == TSDB_OK)
        rc = qset_emit(c, &m.set, emit, ectx);
    qmap_release(c, &m);
    return rc;
}

int ev_vector(struct qctx *c, const struct query_node *n, const struct qgrid *g,
              qemit_fn emit, void *ectx)
{
    int rc = ev_check(c);

    if (rc != TSDB_OK)
        return rc;
    switch (n->kind) {
    case QUERY_NODE_SELECTOR:
        return ev_selector(c, n, g, false, emit, ectx);
    case QUERY_NODE_PAREN:
        return ev_vector(c, n->u.paren, g, emit, ectx);
    case QUERY_NODE_UNARY:
        if (n->u.unary.neg)
            return ev_negate(c, n->u.unary.expr, g, emit, ectx);
        return ev_vector(c, n->u.unary.expr, g, emit, ectx);
    case QUERY_NODE_BINARY:
        return ev_binary(c, n, g, emit, ectx);
    case QUERY_NODE_CALL:
        for (size_t i = 0; i < n->u.call.nargs; i++)
            if (query_node_type(n->u.call.args[i]) == QUERY_TYPE_MATRIX)
                return ev_call_range(c, n, g, emit, ectx);
        return ev_call(c, n, g, emit, ectx);
    case QUERY_NODE_AGG:
        return ev_aggregate(c, n, g, emit, ectx);
    default:
        return ev_fail(c, QUERY_ERR_BAD_DATA,
                       "expected an instant vector, got %s",
                       query_type_name(query_node_type(n)));
    }
}

int ev_scalar(struct qctx *c, const struct query_node *n, const struct qgrid *g,
              double *out)
{
    int rc = ev_check(c);

    if (rc != TSDB_OK)
        return rc;
    switch (n->kind) {
    case QUERY_NODE_NUMBER:
        for (size_t k = 0; k < g->n; k++)
            out[k] = n->u.number;
        return TSDB_OK;
    case QUERY_NODE_PAREN:
        return ev_scalar(c, n->u.paren, g, out);
    case QUERY_NODE_UNARY:
        rc = ev_scalar(c, n->u.unary.expr, g, out);
        if (rc == TSDB_OK && n->u.unary.neg)
            for (size_t k = 0; k < g->n; k++)
                out[k] = -out[k];
        return rc;
    case QUERY_NODE_BINARY:
        return ev_binary_scalar(c, n, g, out);
    case QUERY_NODE_CALL:
        return ev_call_scalar(c, n, g, out);
    default:
        return ev_fail(c, QUERY_ERR_BAD_DATA, "expected a scalar, got %s",
                       query_type_name(query_node_type(n)));
    }
}

int ev_collect(struct qctx *c, const struct query_node *n,
               const struct qgrid *g, struct qset *out)
{
    struct qcollect k = {c, out};

    return ev_vector(c, n, g, qset_collect, &k);
}

/* ---- results ---- */

static int cmp_series(const void *a, const void *b)
{
    const struct query_series *x = a, *y = b;

    return tsdb_labels_cmp(&x->labels, &y->labels);
}

/* Moves the present steps of s into r's next series; frees s. */
static int take_series(struct qctx *c, struct query_result *r,
                       const struct qgrid *g, struct qser *s)
{
    struct query_series *o = &r->series[r->nseries];
    size_t n = 0;

    for (size_t k = 0; k < s->n; k++)
        n += s->has[k];
    if (n == 0) {
        qser_free(c, s);
        return TSDB_OK;
    }
    o->t = malloc(n * sizeof(*o->t));
    o->v = malloc(n * sizeof(*o->v));
    if (o->t == NULL || o->v == NULL) {
        free(o->t);
        free(o->v);
        o->t = NULL;
        o->v = NULL;
        qser_free(c, s);
        return ev_nomem(c);
    }
    for (size_t k = 0; k < s->n; k++) {
        if (!s->has[k])
            continue;
        o->t[o->n] = qgrid_at(g, k);
        o->v[o->n] = s->v[k];
        o->n++;
    }
    o->labels = s->ls;
    memset(&s->ls, 0, sizeof(s->ls));
    qser_free(c, s);
    r->nseries++;
    return TSDB_OK;
}

static int set_to_result(struct qctx *c, struct qset *set,
                         const struct qgrid *g, bool sorted,
                         struct query_result *r)
{
    int rc = TSDB_OK;
    size_t i;

    r->series = calloc(set->n ? set->n : 1, sizeof(*r->series));
    if (r->series == NULL)
        return ev_nomem(c);
    for (i = 0; i < set->n && rc == TSDB_OK; i++) {
        rc = take_series(c, r, g, set->v[i]);
        set->v[i] = NULL;
    }
    for (; i < set->n; i++) {
        qser_free(c, set->v[i]);
        set->v[i] = NULL;
    }
    set->n = 0;
    if (rc == TSDB_OK && sorted)
        qsort(r->series, r->nseries, sizeof(*r->series), cmp_series);
    return rc;
}

static int scalar_result(struct qctx *c, const struct query_node *e,
                         const struct qgrid *g, struct query_result *r)
{
    struct qser *s = qser_new(c, NULL, 0, g->n);
    struct qset set;
    int rc;

    if (s == NULL)
        return c->rc;
    rc = ev_scalar(c, e, g, s->v);
    memset(s->has, 1, g->n);
    qset_init(&set);
    if (rc == TSDB_OK)
        rc = qset_push(c, &set, s);
    else
        qser_free(c, s);
    if (rc == TSDB_OK)
        rc = set_to_result(c, &set, g, false, r);
    qset_release(c, &set);
    return rc;
}

static void ctx_init(struct qctx *c, struct tsdb *db,
                     const struct query_opts *o, struct query_err *err,
                     int64_t start, int64_t end)
{
    memset(c, 0, sizeof(*c));
    memset(err, 0, sizeof(*err));
    c->db = db;
    c->o = o;
    c->err = err;
    c->qstart = start;
    c->qend = end;
    if (o->timeout_ms > 0)
        c->deadline_ns = now_ns() + o->timeout_ms * 1000000;
}

int query_eval_range_node(struct tsdb *db, const struct query_opts *o,
                          const struct query_node *expr, int64_t start,
                          int64_t end, int64_t step, struct query_result *out,
                          struct query_err *err)
{
    struct qctx c;
    struct qgrid g;
    struct qset set;
    enum query_type t = query_node_type(expr);
    int rc;

    memset(out, 0, sizeof(*out));
    ctx_init(&c, db, o, err, start, end);
    if (t != QUERY_TYPE_SCALAR && t != QUERY_TYPE_VECTOR)
        return ev_fail(&c, QUERY_ERR_BAD_DATA,
                       "invalid expression type \"%s\" for range query, "
                       "must be Scalar or instant Vector",
                       query_type_name(t));
    if (step <= 0 || end < start)
        return ev_fail(&c, QUERY_ERR_BAD_DATA,
                       "bad range: start %lld, end %lld, step %lld",
                       (long long)start, (long long)end, (long long)step);
    g.start = start;
    g.step = step;
    g.n = (size_t)((end - start) / step) + 1;
    g.end = qgrid_at(&g, g.n - 1);
    out->type = QUERY_TYPE_MATRIX;
    if (t == QUERY_TYPE_SCALAR) {
        rc = scalar_result(&c, expr, &g, out);
    } else {
        qset_init(&set);
        rc = ev_collect(&c, expr, &g, &set);
        if (rc == TSDB_OK)
            rc = set_to_result(&c, &set, &g, true, out);
        qset_release(&c, &set);
    }
    out->samples = c.samples;
    out->resolutions = c.resolutions;
    if (rc != TSDB_OK)
        query_result_release(out);
    return rc;
}

/* Parses text, filling err the way the API reports a parse error. */
static int parse(struct qctx *c, const char *text, size_t len,
                 struct query_node **expr)
{
    struct query_parse_err pe;
    int rc = query_parse(text, len, expr, &pe);

    if (rc == TSDB_ENOMEM)
        return ev_nomem(c);
    if (rc != TSDB_OK) {
        ev_fail(c, QUERY_ERR_BAD_DATA, "%s", pe.msg);
        c->err->parse = true;
    }
    return rc;
}

int query_eval_range(struct tsdb *db, const struct query_opts *o,
                     const char *text, size_t len, int64_t start, int64_t end,
                     int64_t step, struct query_result *out,
                     struct query_err *err)
{
    struct query_node *expr;
    struct qctx c;
    int rc;

    memset(out, 0, sizeof(*out));
    ctx_init(&c, db, o, err, start, end);
    rc = parse(&c, text, len, &expr);
    if (rc != TSDB_OK)
        return rc;
    rc = query_eval_range_node(db, o, expr, start, end, step, out, err);
    query_node_free(expr);
    return rc;
}

int query_eval_instant(struct tsdb *db, const struct query_opts *o,
                       const char *text, size_t len, int64_t t,
                       struct query_result *out, struct query_err *err)
{
    struct query_node *expr;
    struct qctx c;
    struct qgrid g = {t, t, 1, 1};
    struct qset set;
    int rc;

    memset(out, 0, sizeof(*out));
    ctx_init(&c, db, o, err, t, t);
    rc = parse(&c, text, len, &expr);
    if (rc != TSDB_OK)
        return rc;
    out->type = query_node_type(expr);
    out->t = t;
    qset_init(&set);
    switch (out->type) {
    case QUERY_TYPE_STRING:
        out->string = strdup(ev_string(expr)->p);
        rc = out->string ? TSDB_OK : ev_nomem(&c);
        break;
    case QUERY_TYPE_SCALAR:
        rc = ev_scalar(&c, expr, &g, &out->scalar);
        break;
    case QUERY_TYPE_VECTOR:
        rc = ev_collect(&c, expr, &g, &set);
        if (rc == TSDB_OK)
            rc = set_to_result(&c, &set, &g, false, out);
        break;
    case QUERY_TYPE_MATRIX:
        rc = ev_raw_matrix(&c, ev_unparen(expr), t, out);
        break;
    default:
        rc = ev_fail(&c, QUERY_ERR_BAD_DATA, "unexpected expression type");
        break;
    }
    qset_release(&c, &set);
    out->samples = c.samples;
    out->resolutions = c.resolutions;
    query_node_free(expr);
    if (rc != TSDB_OK)
        query_result_release(out);
    return rc;
}

void query_result_release(struct query_result *r)
{
    for (size_t i = 0; i < r->nseries; i++) {
        tsdb_labels_release(&r->series[i].labels);
        free(r->series[i].t);
        free(r->series[i].v);
    }
    free(r->series);
    free(r->string);
    memset(r, 0, sizeof(*r));
}
