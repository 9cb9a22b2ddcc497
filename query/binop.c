/*
 * Binary operators: between scalars, between a vector and a scalar, and
 * between two vectors with Prometheus 2.42's vector matching (on,
 * ignoring, group_left, group_right; and, or, unless many-to-many).
 *
 * Matching is decided per step, as Prometheus does, but computed per
 * series: each series' match signature (the values of the labels that
 * must agree) is hashed once, the "one" side is sorted by signature, and
 * every series of the other side walks its steps against the few series
 * that share its signature.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "query/eval_internal.h"
#include "tsdb/error.h"

static bool is_comparison(enum query_op op)
{
    return op == QUERY_OP_EQ || op == QUERY_OP_NE || op == QUERY_OP_LT ||
           op == QUERY_OP_LE || op == QUERY_OP_GT || op == QUERY_OP_GE;
}

bool ev_binop_apply(enum query_op op, double l, double r, double *out)
{
    *out = l;
    switch (op) {
    case QUERY_OP_ADD:
        *out = l + r;
        return true;
    case QUERY_OP_SUB:
        *out = l - r;
        return true;
    case QUERY_OP_MUL:
        *out = l * r;
        return true;
    case QUERY_OP_DIV:
        *out = l / r;
        return true;
    case QUERY_OP_MOD:
        *out = fmod(l, r);
        return true;
    case QUERY_OP_POW:
        *out = pow(l, r);
        return true;
    case QUERY_OP_ATAN2:
        *out = atan2(l, r);
        return true;
    case QUERY_OP_EQ:
        return l == r;
    case QUERY_OP_NE:
        return l != r;
    case QUERY_OP_LT:
        return l < r;
    case QUERY_OP_LE:
        return l <= r;
    case QUERY_OP_GT:
        return l > r;
    case QUERY_OP_GE:
        return l >= r;
    default:
        return false;
    }
}

/* Operators after which a series loses its metric name: arithmetic
 * except atan2 (2.42 keeps the name there), and bool comparisons. */
static bool drops_name(const struct query_node *n)
{
    if (n->u.binary.op == QUERY_OP_ATAN2)
        return false;
    return !is_comparison(n->u.binary.op) || n->u.binary.return_bool;
}

int ev_binary_scalar(struct qctx *c, const struct query_node *n,
                     const struct qgrid *g, double *out)
{
    double *r = malloc(g->n * sizeof(double));
    int rc;

    if (r == NULL)
        return ev_nomem(c);
    rc = ev_scalar(c, n->u.binary.lhs, g, out);
    if (rc == TSDB_OK)
        rc = ev_scalar(c, n->u.binary.rhs, g, r);
    for (size_t k = 0; rc == TSDB_OK && k < g->n; k++) {
        bool keep = ev_binop_apply(n->u.binary.op, out[k], r[k], &out[k]);

        /* Between scalars a comparison needs bool (the parser sees to
         * it) and gives 1 or 0. */
        if (is_comparison(n->u.binary.op))
            out[k] = keep ? 1 : 0;
    }
    free(r);
    return rc;
}

/* ---- vector and scalar ---- */

struct with_scalar {
    struct qctx *c;
    const struct query_node *n;
    const double *scalar;
    bool scalar_left;
    struct qmap *merge;
    qemit_fn emit;
    void *ectx;
};

static int with_scalar_series(void *ctx, struct qser *s)
{
    struct with_scalar *x = ctx;
    enum query_op op = x->n->u.binary.op;
    bool cmp = is_comparison(op), rb = x->n->u.binary.return_bool;

    for (size_t k = 0; k < s->n; k++) {
        double l = s->v[k], r = x->scalar[k], out;
        bool keep;

        if (!s->has[k])
            continue;
        if (x->scalar_left) {
            l = x->scalar[k];
            r = s->v[k];
        }
        keep = ev_binop_apply(op, l, r, &out);
        if (cmp && rb)
            out = keep ? 1 : 0;
        else if (cmp && !keep)
            s->has[k] = 0;
        else if (cmp)
            out = s->v[k]; /* a filter keeps the vector's own value */
        s->v[k] = out;
    }
    return ev_pass_on(x->c, s, drops_name(x->n), x->merge, x->emit, x->ectx);
}

static int binary_with_scalar(struct qctx *c, const struct query_node *n,
                              const struct qgrid *g, qemit_fn emit, void *ectx)
{
    bool left = query_node_type(n->u.binary.lhs) == QUERY_TYPE_SCALAR;
    const struct query_node *vec = left ? n->u.binary.rhs : n->u.binary.lhs;
    double *sc = malloc(g->n * sizeof(double));
    struct with_scalar x = {c, n, sc, left, NULL, emit, ectx};
    struct qmap m;
    int rc;

    if (sc == NULL)
        return ev_nomem(c);
    qmap_init(&m, g->n);
    if (drops_name(n) && ev_names_vary(vec))
        x.merge = &m;
    rc = ev_scalar(c, left ? n->u.binary.lhs : n->u.binary.rhs, g, sc);
    if (rc == TSDB_OK)
        rc = ev_vector(c, vec, g, with_scalar_series, &x);
    if (rc == TSDB_OK && x.merge != NULL)
        rc = qset_emit(c, &m.set, emit, ectx);
    qmap_release(c, &m);
    free(sc);
    return rc;
}

/* ---- vector and vector ---- */

static bool listed(const struct query_labels *l, const char *name)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->names[i].p, name) == 0)
            return true;
    return false;
}

/* Is label name part of the match signature? */
static bool in_signature(const struct query_node *n, const char *name)
{
    if (n->u.binary.on)
        return listed(&n->u.binary.matching, name);
    return strcmp(name, "__name__") != 0 &&
           !listed(&n->u.binary.matching, name);
}

static uint64_t signature(const struct query_node *n,
                          const struct tsdb_labels *ls)
{
    uint64_t h = 0;

    for (size_t i = 0; i < ls->n; i++) {
        if (!in_signature(n, ls->v[i].name))
            continue;
        h = XXH3_64bits_withSeed(ls->v[i].name, strlen(ls->v[i].name) + 1, h);
        h = XXH3_64bits_withSeed(ls->v[i].value, strlen(ls->v[i].value) + 1, h);
    }
    return h;
}

/* The labels of a series that take part in matching, for errors. */
static void signature_str(const struct query_node *n,
                          const struct tsdb_labels *ls, char *out, size_t cap)
{
    struct tsdb_label v[TSDB_MAX_LABELS];
    struct tsdb_labels sub = {v, 0, NULL};

    for (size_t i = 0; i < ls->n && sub.n < TSDB_MAX_LABELS; i++)
        if (in_signature(n, ls->v[i].name))
            v[sub.n++] = ls->v[i];
    labels_str(&sub, out, cap);
}

/* One side's series sorted by signature, for lookups by binary search. */
struct side {
    struct qset set;
    uint64_t *sig; /* per series, in set order */
    size_t *order; /* series indexes by ascending signature */
};

static int cmp_by_sig(const void *a, const void *b, void *sigs)
{
    uint64_t x = ((uint64_t *)sigs)[*(const size_t *)a];
    uint64_t y = ((uint64_t *)sigs)[*(const size_t *)b];

    if (x != y)
        return x < y ? -1 : 1;
    /* Keep input order among equals: errors name the earlier series. */
    return (*(const size_t *)a > *(const size_t *)b) -
           (*(const size_t *)a < *(const size_t *)b);
}

static int side_index(struct qctx *c, const struct query_node *n,
                      struct side *s)
{
    s->sig = malloc((s->set.n + 1) * sizeof(*s->sig));
    s->order = malloc((s->set.n + 1) * sizeof(*s->order));
    if (s->sig == NULL || s->order == NULL)
        return ev_nomem(c);
    for (size_t i = 0; i < s->set.n; i++) {
        s->sig[i] = signature(n, &s->set.v[i]->ls);
        s->order[i] = i;
    }
    qsort_r(s->order, s->set.n, sizeof(*s->order), cmp_by_sig, s->sig);
    return TSDB_OK;
}

/* The range [*lo, *hi) of s->order whose signature is sig. */
static void side_find(const struct side *s, uint64_t sig, size_t *lo,
                      size_t *hi)
{
    size_t a = 0, b = s->set.n;

    while (a < b) {
        size_t m = a + (b - a) / 2;

        if (s->sig[s->order[m]] < sig)
            a = m + 1;
        else
            b = m;
    }
    *lo = a;
    while (b < s->set.n && s->sig[s->order[b]] == sig)
        b++;
    *hi = b > a ? b : a;
}

static void side_release(struct qctx *c, struct side *s)
{
    qset_release(c, &s->set);
    free(s->sig);
    free(s->order);
}

/* Any series of s with signature sig present at step k? */
static bool side_present(const struct side *s, size_t lo, size_t hi, size_t k)
{
    for (size_t j = lo; j < hi; j++)
        if (s->set.v[s->order[j]]->has[k])
            return true;
    return false;
}

static int set_operator(struct qctx *c, const struct query_node *n,
                        struct side *l, struct side *r, size_t nsteps,
                        qemit_fn emit, void *ectx)
{
    enum query_op op = n->u.binary.op;
    struct qmap out;
    int rc = TSDB_OK;

    if (op == QUERY_OP_AND || op == QUERY_OP_UNLESS) {
        for (size_t i = 0; i < l->set.n && rc == TSDB_OK; i++) {
            struct qser *s = l->set.v[i];
            size_t lo, hi;

            side_find(r, signature(n, &s->ls), &lo, &hi);
            for (size_t k = 0; k < s->n; k++)
                if (s->has[k] &&
                    side_present(r, lo, hi, k) != (op == QUERY_OP_AND))
                    s->has[k] = 0;
            l->set.v[i] = NULL;
            if (qser_empty(s))
                qser_free(c, s);
            else
                rc = emit(ectx, s);
        }
        return rc;
    }
    /* or: every left series, and right ones where no left series of the
     * same signature is present; equal label sets join into one. */
    qmap_init(&out, nsteps);
    for (size_t i = 0; i < r->set.n; i++) {
        struct qser *s = r->set.v[i];
        size_t lo, hi;

        side_find(l, r->sig[i], &lo, &hi);
        for (size_t k = 0; k < s->n; k++)
            if (s->has[k] && side_present(l, lo, hi, k))
                s->has[k] = 0;
    }
    for (size_t i = 0; i < l->set.n && rc == TSDB_OK; i++) {
        rc = qmap_merge(c, &out, l->set.v[i]);
        l->set.v[i] = NULL;
    }
    for (size_t i = 0; i < r->set.n && rc == TSDB_OK; i++) {
        rc = qmap_merge(c, &out, r->set.v[i]);
        r->set.v[i] = NULL;
    }
    if (rc == TSDB_OK)
        rc = qset_emit(c, &out.set, emit, ectx);
    qmap_release(c, &out);
    return rc;
}

/* Fails if two series of the "one" side share a signature at a step. */
static int check_one_side(struct qctx *c, const struct query_node *n,
                          const struct side *one, bool one_is_left)
{
    size_t i = 0;

    while (i < one->set.n) {
        size_t j = i + 1;

        while (j < one->set.n &&
               one->sig[one->order[j]] == one->sig[one->order[i]])
            j++;
        for (size_t a = i; j - i > 1 && a < j; a++)
            for (size_t b = a + 1; b < j; b++) {
                const struct qser *x = one->set.v[one->order[a]];
                const struct qser *y = one->set.v[one->order[b]];

                for (size_t k = 0; k < x->n; k++) {
                    char grp[256], sx[512], sy[512];

                    if (!x->has[k] || !y->has[k])
                        continue;
                    signature_str(n, &y->ls, grp, sizeof(grp));
                    labels_str(&y->ls, sy, sizeof(sy));
                    labels_str(&x->ls, sx, sizeof(sx));
                    return ev_fail(c, QUERY_ERR_EXECUTION,
                                   "found duplicate series for the match "
                                   "group %s on the %s hand-side of the "
                                   "operation: [%s, %s];many-to-many "
                                   "matching not allowed: matching labels "
                                   "must be unique on one side",
                                   grp, one_is_left ? "left" : "right", sy, sx);
                }
            }
        i = j;
    }
    return TSDB_OK;
}

/* The result's labels for a "many" series and its "one" partner. */
static int result_labels(struct qctx *c, const struct query_node *n,
                         const struct tsdb_labels *many,
                         const struct tsdb_labels *one, struct tsdb_labels *out)
{
    const struct query_labels *inc = &n->u.binary.include;
    struct tsdb_label *v = malloc((many->n + inc->n + 1) * sizeof(*v));
    bool drop = drops_name(n);
    size_t k = 0;
    int rc;

    if (v == NULL)
        return ev_nomem(c);
    for (size_t i = 0; i < many->n; i++) {
        const char *name = many->v[i].name;

        if (drop && strcmp(name, "__name__") == 0)
            continue;
        if (listed(inc, name))
            continue;
        if (n->u.binary.card == QUERY_CARD_ONE_TO_ONE &&
            listed(&n->u.binary.matching, name) != n->u.binary.on)
            continue;
        v[k++] = many->v[i];
    }
    /* group_x(labels) copies those labels from the "one" side. */
    for (size_t i = 0; i < inc->n; i++) {
        const char *val = tsdb_labels_get(one, inc->names[i].p);

        if (val != NULL && val[0] != '\0')
            v[k++] = (struct tsdb_label){inc->names[i].p, val};
    }
    rc = qlabels_sorted(c, v, k, out);
    free(v);
    return rc;
}

/* Steps at which a one-to-one signature already produced a result. */
struct claims {
    uint64_t *sig;
    uint8_t **row;
    size_t n, cap;
};

static uint8_t *claim_row(struct qctx *c, struct claims *cl, uint64_t sig,
                          size_t nsteps)
{
    for (size_t i = 0; i < cl->n; i++)
        if (cl->sig[i] == sig)
            return cl->row[i];
    if (cl->n == cl->cap) {
        size_t cap = cl->cap ? cl->cap * 2 : 16;
        uint64_t *s = realloc(cl->sig, cap * sizeof(*s));
        uint8_t **r;

        if (s == NULL)
            return NULL;
        cl->sig = s;
        r = realloc(cl->row, cap * sizeof(*r));
        if (r == NULL)
            return NULL;
        cl->row = r;
        cl->cap = cap;
    }
    cl->row[cl->n] = calloc(nsteps, 1);
    if (cl->row[cl->n] == NULL)
        return NULL;
    (void)c;
    cl->sig[cl->n] = sig;
    return cl->row[cl->n++];
}

static int matched_operator(struct qctx *c, const struct query_node *n,
                            struct side *l, struct side *r, size_t nsteps,
                            qemit_fn emit, void *ectx)
{
    bool swap = n->u.binary.card == QUERY_CARD_ONE_TO_MANY;
    struct side *many = swap ? r : l, *one = swap ? l : r;
    bool cmp = is_comparison(n->u.binary.op), rb = n->u.binary.return_bool;
    struct claims cl = {NULL, NULL, 0, 0};
    struct qmap out;
    int rc;

    rc = check_one_side(c, n, one, swap);
    qmap_init(&out, nsteps);
    for (size_t i = 0; i < many->set.n && rc == TSDB_OK; i++) {
        const struct qser *s = many->set.v[i];
        uint8_t *claimed = NULL;
        const struct qser *partner = NULL;
        size_t lo, hi;
        struct qser *dst = NULL;

        side_find(one, many->sig[i], &lo, &hi);
        if (lo == hi)
            continue;
        for (size_t k = 0; k < nsteps && rc == TSDB_OK; k++) {
            const struct qser *o = NULL;
            double vl, vr, val;
            bool keep;

            if (!s->has[k])
                continue;
            for (size_t j = lo; j < hi && o == NULL; j++)
                if (one->set.v[one->order[j]]->has[k])
                    o = one->set.v[one->order[j]];
            if (o == NULL)
                continue;
            vl = swap ? o->v[k] : s->v[k];
            vr = swap ? s->v[k] : o->v[k];
            keep = ev_binop_apply(n->u.binary.op, vl, vr, &val);
            if (cmp && rb)
                val = keep ? 1 : 0;
            else if (cmp && !keep)
                continue;
            if (n->u.binary.card == QUERY_CARD_ONE_TO_ONE) {
                if (claimed == NULL)
                    claimed = claim_row(c, &cl, many->sig[i], nsteps);
                if (claimed == NULL) {
                    rc = ev_nomem(c);
                    break;
                }
                if (claimed[k]) {
                    rc = ev_fail(c, QUERY_ERR_EXECUTION,
                                 "multiple matches for labels: many-to-one "
                                 "matching must be explicit "
                                 "(group_left/group_right)");
                    break;
                }
                claimed[k] = 1;
            }
            if (dst == NULL || partner != o) {
                struct tsdb_labels ls;

                rc = result_labels(c, n, &s->ls, &o->ls, &ls);
                if (rc == TSDB_OK)
                    rc = qmap_get(c, &out, &ls, &dst, NULL);
                tsdb_labels_release(&ls);
                if (rc != TSDB_OK)
                    break;
                partner = o;
            }
            if (dst->has[k]) {
                rc = ev_fail(c, QUERY_ERR_EXECUTION,
                             "multiple matches for labels: grouping labels "
                             "must ensure unique matches");
                break;
            }
            dst->has[k] = 1;
            dst->v[k] = val;
        }
    }
    for (size_t i = 0; i < cl.n; i++)
        free(cl.row[i]);
    free(cl.sig);
    free(cl.row);
    if (rc == TSDB_OK)
        rc = qset_emit(c, &out.set, emit, ectx);
    qmap_release(c, &out);
    return rc;
}

int ev_binary(struct qctx *c, const struct query_node *n, const struct qgrid *g,
              qemit_fn emit, void *ectx)
{
    struct side l, r;
    int rc;

    if (query_node_type(n->u.binary.lhs) == QUERY_TYPE_SCALAR ||
        query_node_type(n->u.binary.rhs) == QUERY_TYPE_SCALAR)
        return binary_with_scalar(c, n, g, emit, ectx);
    memset(&l, 0, sizeof(l));
    memset(&r, 0, sizeof(r));
    rc = ev_collect(c, n->u.binary.lhs, g, &l.set);
    if (rc == TSDB_OK)
        rc = ev_collect(c, n->u.binary.rhs, g, &r.set);
    if (rc == TSDB_OK)
        rc = side_index(c, n, &l);
    if (rc == TSDB_OK)
        rc = side_index(c, n, &r);
    if (rc == TSDB_OK) {
        if (n->u.binary.card == QUERY_CARD_MANY_TO_MANY)
            rc = set_operator(c, n, &l, &r, g->n, emit, ectx);
        else
            rc = matched_operator(c, n, &l, &r, g->n, emit, ectx);
    }
    side_release(c, &l);
    side_release(c, &r);
    return rc;
}
