/*
 * Aggregations: sum, avg, count, min, max, group, stddev and stdvar fold
 * each series into its group's per-step accumulators as it arrives and
 * then forget it; topk, bottomk, quantile and count_values need every
 * series of a step at once and hold their input.  The update formulas and
 * their order are Prometheus 2.42's (avg and stddev are running means),
 * as are topk's heap and its choice among equal values.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/eval_internal.h"
#include "query/funcs.h"
#include "query/strconv.h"
#include "tsdb/error.h"

static bool in_list(const struct query_labels *l, const char *name)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->names[i].p, name) == 0)
            return true;
    return false;
}

/* The labels of ls that identify its group under by/without. */
static int group_labels(struct qctx *c, const struct query_node *n,
                        const struct tsdb_labels *ls, struct tsdb_labels *out)
{
    const struct query_labels *l = &n->u.agg.grouping;
    struct tsdb_label *v = malloc((ls->n + 1) * sizeof(*v));
    size_t k = 0;
    int rc;

    if (v == NULL)
        return ev_nomem(c);
    for (size_t i = 0; i < ls->n; i++) {
        const char *name = ls->v[i].name;
        bool listed = in_list(l, name);

        if (n->u.agg.without ? (!listed && strcmp(name, "__name__") != 0)
                             : listed)
            v[k++] = ls->v[i];
    }
    rc = tsdb_labels_copy(v, k, out);
    free(v);
    return rc == TSDB_OK ? TSDB_OK : ev_nomem(c);
}

/* ---- the folding aggregations ---- */

struct fold {
    struct qctx *c;
    const struct query_node *n;
    enum query_agg op;
    struct qmap groups; /* per group: value and presence per step */
    double **mean;      /* per group, per step */
    double **count;
    size_t cap;
};

static int fold_aux(struct fold *f, size_t gi, size_t nsteps)
{
    if (gi < f->cap && f->mean[gi] != NULL)
        return TSDB_OK;
    if (gi >= f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 16;
        double **m, **k;

        while (cap <= gi)
            cap *= 2;
        m = realloc(f->mean, cap * sizeof(*m));
        if (m == NULL)
            return ev_nomem(f->c);
        f->mean = m;
        k = realloc(f->count, cap * sizeof(*k));
        if (k == NULL)
            return ev_nomem(f->c);
        f->count = k;
        for (size_t i = f->cap; i < cap; i++)
            f->mean[i] = f->count[i] = NULL;
        f->cap = cap;
    }
    f->mean[gi] = calloc(nsteps, sizeof(double));
    f->count[gi] = calloc(nsteps, sizeof(double));
    if (f->mean[gi] == NULL || f->count[gi] == NULL)
        return ev_nomem(f->c);
    return ev_hold(f->c, 2 * (int64_t)nsteps);
}

static void fold_first(enum query_agg op, double v, double *val, double *mean,
                       double *cnt)
{
    *val = v;
    *mean = v;
    *cnt = 1;
    if (op == QUERY_AGG_STDDEV || op == QUERY_AGG_STDVAR)
        *val = 0;
    else if (op == QUERY_AGG_GROUP)
        *val = 1;
}

static void fold_next(enum query_agg op, double v, double *val, double *mean,
                      double *cnt)
{
    double delta;

    switch (op) {
    case QUERY_AGG_SUM:
        *val += v;
        break;
    case QUERY_AGG_AVG:
        *cnt += 1;
        if (isinf(*mean)) {
            /* An infinite mean stays as it is, unless the opposite
             * infinity or a NaN arrives: the update below would turn it
             * into NaN by subtracting infinity from itself. */
            if (isinf(v) && (*mean > 0) == (v > 0))
                break;
            if (!isinf(v) && !isnan(v))
                break;
        }
        *mean += v / *cnt - *mean / *cnt;
        break;
    case QUERY_AGG_COUNT:
        *cnt += 1;
        break;
    case QUERY_AGG_MIN:
        if (*val > v || isnan(*val))
            *val = v;
        break;
    case QUERY_AGG_MAX:
        if (*val < v || isnan(*val))
            *val = v;
        break;
    case QUERY_AGG_STDDEV:
    case QUERY_AGG_STDVAR:
        *cnt += 1;
        delta = v - *mean;
        *mean += delta / *cnt;
        *val += delta * (v - *mean);
        break;
    default:
        break;
    }
}

static int fold_series(void *ctx, struct qser *s)
{
    struct fold *f = ctx;
    struct tsdb_labels key;
    struct qser *grp;
    size_t gi;
    int rc;

    rc = group_labels(f->c, f->n, &s->ls, &key);
    if (rc == TSDB_OK)
        rc = qmap_get(f->c, &f->groups, &key, &grp, &gi);
    tsdb_labels_release(&key);
    if (rc == TSDB_OK)
        rc = fold_aux(f, gi, s->n);
    for (size_t k = 0; rc == TSDB_OK && k < s->n; k++) {
        if (!s->has[k])
            continue;
        if (!grp->has[k]) {
            grp->has[k] = 1;
            fold_first(f->op, s->v[k], &grp->v[k], &f->mean[gi][k],
                       &f->count[gi][k]);
        } else {
            fold_next(f->op, s->v[k], &grp->v[k], &f->mean[gi][k],
                      &f->count[gi][k]);
        }
    }
    qser_free(f->c, s);
    return rc;
}

static int aggregate_fold(struct qctx *c, const struct query_node *n,
                          const struct qgrid *g, qemit_fn emit, void *ectx)
{
    struct fold f;
    int rc;

    memset(&f, 0, sizeof(f));
    f.c = c;
    f.n = n;
    f.op = n->u.agg.op;
    qmap_init(&f.groups, g->n);
    rc = ev_vector(c, n->u.agg.expr, g, fold_series, &f);
    for (size_t gi = 0; rc == TSDB_OK && gi < f.groups.set.n; gi++) {
        struct qser *s = f.groups.set.v[gi];

        for (size_t k = 0; k < g->n; k++) {
            double cnt = f.count[gi][k];

            if (!s->has[k])
                continue;
            switch (f.op) {
            case QUERY_AGG_AVG:
                s->v[k] = f.mean[gi][k];
                break;
            case QUERY_AGG_COUNT:
                s->v[k] = cnt;
                break;
            case QUERY_AGG_STDVAR:
                s->v[k] /= cnt;
                break;
            case QUERY_AGG_STDDEV:
                s->v[k] = sqrt(s->v[k] / cnt);
                break;
            default:
                break;
            }
        }
    }
    if (rc == TSDB_OK)
        rc = qset_emit(c, &f.groups.set, emit, ectx);
    for (size_t i = 0; i < f.cap; i++) {
        if (f.mean[i] != NULL)
            ev_hold(c, -2 * (int64_t)g->n);
        free(f.mean[i]);
        free(f.count[i]);
    }
    free(f.mean);
    free(f.count);
    qmap_release(c, &f.groups);
    return rc;
}

/* ---- aggregations over whole steps ---- */

/* Input series grouped: members[first[g] .. first[g + 1]) in input order. */
struct groups {
    struct qmap keys;
    size_t *of;    /* group of each input series */
    size_t *first; /* ngroups + 1 */
    size_t *members;
};

static int group_inputs(struct qctx *c, const struct query_node *n,
                        const struct qset *in, size_t nsteps, struct groups *gr)
{
    size_t ng;
    int rc = TSDB_OK;

    qmap_init(&gr->keys, nsteps);
    gr->of = malloc((in->n + 1) * sizeof(size_t));
    gr->members = malloc((in->n + 1) * sizeof(size_t));
    gr->first = NULL;
    if (gr->of == NULL || gr->members == NULL)
        return ev_nomem(c);
    for (size_t i = 0; rc == TSDB_OK && i < in->n; i++) {
        struct tsdb_labels key;
        struct qser *s;

        rc = group_labels(c, n, &in->v[i]->ls, &key);
        if (rc == TSDB_OK)
            rc = qmap_get(c, &gr->keys, &key, &s, &gr->of[i]);
        tsdb_labels_release(&key);
    }
    if (rc != TSDB_OK)
        return rc;
    ng = gr->keys.set.n;
    gr->first = calloc(ng + 2, sizeof(size_t));
    if (gr->first == NULL)
        return ev_nomem(c);
    for (size_t i = 0; i < in->n; i++)
        gr->first[gr->of[i] + 2]++;
    for (size_t gi = 2; gi < ng + 2; gi++)
        gr->first[gi] += gr->first[gi - 1];
    for (size_t i = 0; i < in->n; i++)
        gr->members[gr->first[gr->of[i] + 1]++] = i;
    return TSDB_OK;
}

static void groups_release(struct qctx *c, struct groups *gr)
{
    qmap_release(c, &gr->keys);
    free(gr->of);
    free(gr->first);
    free(gr->members);
}

/*
 * topk keeps the k largest in a heap whose top is the smallest kept;
 * bottomk the reverse.  Which of several equal values stay, and what
 * happens to NaN, follow Prometheus 2.42's container/heap use exactly: a
 * NaN sorts below everything (even another NaN), a NaN on top is always
 * replaced, and a replacement pops the top and pushes the newcomer.
 */
struct heap {
    const struct qset *in;
    size_t k; /* the step */
    bool bottom;
    size_t *h;
    size_t n;
};

static double hv(const struct heap *h, size_t i)
{
    return h->in->v[h->h[i]]->v[h->k];
}

static bool heap_less(const struct heap *h, size_t i, size_t j)
{
    double a = hv(h, i), b = hv(h, j);

    if (isnan(a))
        return true;
    return h->bottom ? a > b : a < b;
}

static void heap_swap(struct heap *h, size_t i, size_t j)
{
    size_t t = h->h[i];

    h->h[i] = h->h[j];
    h->h[j] = t;
}

static void heap_up(struct heap *h, size_t j)
{
    while (j > 0) {
        size_t i = (j - 1) / 2;

        if (!heap_less(h, j, i))
            break;
        heap_swap(h, i, j);
        j = i;
    }
}

static void heap_down(struct heap *h, size_t i, size_t n)
{
    for (;;) {
        size_t j = 2 * i + 1;

        if (j >= n)
            break;
        if (j + 1 < n && heap_less(h, j + 1, j))
            j++;
        if (!heap_less(h, j, i))
            break;
        heap_swap(h, i, j);
        i = j;
    }
}

/* Offers series idx to the heap of at most k entries. */
static void heap_offer(struct heap *h, size_t idx, size_t k)
{
    double v = h->in->v[idx]->v[h->k], top;

    if (h->n > 0 && h->n >= k) {
        top = hv(h, 0);
        if (!(isnan(top) || (h->bottom ? top > v : top < v)))
            return;
        if (k == 1) {
            h->h[0] = idx;
            return;
        }
        /* Pop: the last entry to the top, sifted down, then dropped. */
        heap_swap(h, 0, h->n - 1);
        heap_down(h, 0, h->n - 1);
        h->n--;
    }
    h->h[h->n++] = idx;
    heap_up(h, h->n - 1);
}

/* Order of an instant topk's output: by group, then best first. */
struct ranked {
    size_t group;
    double v;
    struct qser *s;
};

static int cmp_ranked(const void *a, const void *b, void *bottom)
{
    const struct ranked *x = a, *y = b;

    if (x->group != y->group)
        return x->group < y->group ? -1 : 1;
    if (isnan(x->v) || isnan(y->v))
        return isnan(x->v) - isnan(y->v);
    if (x->v == y->v)
        return 0;
    return ((x->v > y->v) != *(bool *)bottom) ? -1 : 1;
}

static int emit_instant_ranked(struct qctx *c, struct qset *in,
                               const struct groups *gr, bool bottom,
                               qemit_fn emit, void *ectx)
{
    struct ranked *r = malloc((in->n + 1) * sizeof(*r));
    size_t n = 0;
    int rc = TSDB_OK;

    if (r == NULL)
        return ev_nomem(c);
    for (size_t i = 0; i < in->n; i++) {
        if (!in->v[i]->has[0])
            continue;
        r[n++] = (struct ranked){gr->of[i], in->v[i]->v[0], in->v[i]};
        in->v[i] = NULL;
    }
    qsort_r(r, n, sizeof(*r), cmp_ranked, &bottom);
    for (size_t i = 0; i < n; i++) {
        if (rc == TSDB_OK)
            rc = emit(ectx, r[i].s);
        else
            qser_free(c, r[i].s);
    }
    free(r);
    return rc;
}

static int aggregate_topk(struct qctx *c, const struct query_node *n,
                          const struct qgrid *g, struct qset *in,
                          const struct groups *gr, const double *param,
                          qemit_fn emit, void *ectx)
{
    struct heap h = {in, 0, n->u.agg.op == QUERY_AGG_BOTTOMK, NULL, 0};
    uint8_t *keep = calloc(in->n * g->n + 1, 1);
    size_t ng = gr->keys.set.n;
    int rc = TSDB_OK;

    h.h = malloc((in->n + 1) * sizeof(size_t));
    if (keep == NULL || h.h == NULL) {
        free(keep);
        free(h.h);
        return ev_nomem(c);
    }
    for (size_t k = 0; k < g->n; k++) {
        double p = param[k];
        size_t kk;

        if (!(p >= -9223372036854774784.0 && p <= 9223372036854774784.0)) {
            rc = ev_fail(c, QUERY_ERR_EXECUTION,
                         "Scalar value %g overflows int64", p);
            break;
        }
        if (p < 1)
            continue;
        kk = p > (double)in->n ? in->n : (size_t)p;
        h.k = k;
        for (size_t gi = 0; gi < ng; gi++) {
            h.n = 0;
            for (size_t m = gr->first[gi]; m < gr->first[gi + 1]; m++)
                if (in->v[gr->members[m]]->has[k])
                    heap_offer(&h, gr->members[m], kk);
            for (size_t i = 0; i < h.n; i++)
                keep[h.h[i] * g->n + k] = 1;
        }
    }
    for (size_t i = 0; rc == TSDB_OK && i < in->n; i++)
        for (size_t k = 0; k < g->n; k++)
            in->v[i]->has[k] &= keep[i * g->n + k];
    free(keep);
    free(h.h);
    if (rc != TSDB_OK)
        return rc;
    if (g->n == 1)
        return emit_instant_ranked(c, in, gr, h.bottom, emit, ectx);
    for (size_t i = 0; i < in->n; i++) {
        struct qser *s = in->v[i];

        in->v[i] = NULL;
        if (qser_empty(s)) {
            qser_free(c, s);
            continue;
        }
        rc = emit(ectx, s);
        if (rc != TSDB_OK)
            return rc;
    }
    return TSDB_OK;
}

static int aggregate_quantile(struct qctx *c, const struct query_node *n,
                              const struct qgrid *g, struct qset *in,
                              struct groups *gr, const double *param,
                              qemit_fn emit, void *ectx)
{
    double *vals = malloc((in->n + 1) * sizeof(double));
    int rc = TSDB_OK;

    (void)n;
    if (vals == NULL)
        return ev_nomem(c);
    for (size_t gi = 0; gi < gr->keys.set.n; gi++) {
        struct qser *s = gr->keys.set.v[gi];

        for (size_t k = 0; k < g->n; k++) {
            size_t nv = 0;

            for (size_t m = gr->first[gi]; m < gr->first[gi + 1]; m++) {
                struct qser *x = in->v[gr->members[m]];

                if (x->has[k])
                    vals[nv++] = x->v[k];
            }
            if (nv == 0)
                continue;
            s->has[k] = 1;
            s->v[k] = query_quantile(param[k], vals, nv);
        }
    }
    free(vals);
    if (rc == TSDB_OK)
        rc = qset_emit(c, &gr->keys.set, emit, ectx);
    return rc;
}

struct countvals {
    struct qctx *c;
    const struct query_node *n;
    const char *label;
    struct qmap out;
};

static int count_values_series(void *ctx, struct qser *s)
{
    struct countvals *x = ctx;
    struct tsdb_label *v = malloc((s->ls.n + 1) * sizeof(*v));
    int rc = v ? TSDB_OK : ev_nomem(x->c);

    for (size_t k = 0; rc == TSDB_OK && k < s->n; k++) {
        char text[QUERY_FLOAT_MAX];
        struct tsdb_labels with, key;
        struct qser *grp;
        size_t nl = 0;
        bool placed = false;

        if (!s->has[k])
            continue;
        query_format_float(text, s->v[k], QUERY_FLOAT_PLAIN);
        for (size_t i = 0; i < s->ls.n; i++) {
            int d = strcmp(s->ls.v[i].name, x->label);

            if (d > 0 && !placed) {
                v[nl++] = (struct tsdb_label){x->label, text};
                placed = true;
            }
            if (d != 0)
                v[nl++] = s->ls.v[i];
        }
        if (!placed)
            v[nl++] = (struct tsdb_label){x->label, text};
        if (tsdb_labels_copy(v, nl, &with) != TSDB_OK) {
            rc = ev_nomem(x->c);
            break;
        }
        rc = group_labels(x->c, x->n, &with, &key);
        tsdb_labels_release(&with);
        if (rc == TSDB_OK)
            rc = qmap_get(x->c, &x->out, &key, &grp, NULL);
        tsdb_labels_release(&key);
        if (rc != TSDB_OK)
            break;
        grp->v[k] = grp->has[k] ? grp->v[k] + 1 : 1;
        grp->has[k] = 1;
    }
    free(v);
    qser_free(x->c, s);
    return rc;
}

static int aggregate_count_values(struct qctx *c, const struct query_node *n,
                                  const struct qgrid *g, qemit_fn emit,
                                  void *ectx)
{
    const struct query_str *label = ev_string(n->u.agg.param);
    struct countvals x;
    struct query_labels grouping = n->u.agg.grouping;
    struct query_node copy = *n;
    struct query_str *names = NULL;
    int rc;

    if (!tsdb_label_name_valid(label->p, label->len))
        return ev_fail(c, QUERY_ERR_EXECUTION, "invalid label name \"%s\"",
                       label->p);
    /* With by, the value's label joins the grouping labels. */
    if (!n->u.agg.without) {
        names = malloc((grouping.n + 1) * sizeof(*names));
        if (names == NULL)
            return ev_nomem(c);
        if (grouping.n > 0)
            memcpy(names, grouping.names, grouping.n * sizeof(*names));
        names[grouping.n] = *label;
        copy.u.agg.grouping.names = names;
        copy.u.agg.grouping.n = grouping.n + 1;
    }
    x.c = c;
    x.n = &copy;
    x.label = label->p;
    qmap_init(&x.out, g->n);
    rc = ev_vector(c, n->u.agg.expr, g, count_values_series, &x);
    if (rc == TSDB_OK)
        rc = qset_emit(c, &x.out.set, emit, ectx);
    qmap_release(c, &x.out);
    free(names);
    return rc;
}

static int cmp_series_labels(const void *a, const void *b)
{
    return tsdb_labels_cmp(&(*(struct qser *const *)a)->ls,
                           &(*(struct qser *const *)b)->ls);
}

int ev_aggregate(struct qctx *c, const struct query_node *n,
                 const struct qgrid *g, qemit_fn emit, void *ectx)
{
    enum query_agg op = n->u.agg.op;
    struct qset in;
    struct groups gr;
    double *param = NULL;
    int rc;

    switch (op) {
    case QUERY_AGG_TOPK:
    case QUERY_AGG_BOTTOMK:
    case QUERY_AGG_QUANTILE:
        break;
    case QUERY_AGG_COUNT_VALUES:
        return aggregate_count_values(c, n, g, emit, ectx);
    default:
        return aggregate_fold(c, n, g, emit, ectx);
    }
    memset(&gr, 0, sizeof(gr));
    qset_init(&in);
    param = malloc(g->n * sizeof(double));
    rc = param ? ev_scalar(c, n->u.agg.param, g, param) : ev_nomem(c);
    if (rc == TSDB_OK)
        rc = ev_collect(c, n->u.agg.expr, g, &in);
    /* Prometheus offers series to topk in label order: equal values then
     * resolve the same way. */
    if (rc == TSDB_OK && op != QUERY_AGG_QUANTILE && in.n > 1)
        qsort(in.v, in.n, sizeof(*in.v), cmp_series_labels);
    if (rc == TSDB_OK)
        rc = group_inputs(c, n, &in, g->n, &gr);
    if (rc == TSDB_OK && op == QUERY_AGG_QUANTILE)
        rc = aggregate_quantile(c, n, g, &in, &gr, param, emit, ectx);
    else if (rc == TSDB_OK)
        rc = aggregate_topk(c, n, g, &in, &gr, param, emit, ectx);
    groups_release(c, &gr);
    qset_release(c, &in);
    free(param);
    return rc;
}
