/*
 * Range functions answered from downsampled tiers (tsdb/db.h, section
 * "downsampled tiers") instead of raw samples, when the answer is the
 * same.
 *
 * A window of Prometheus 2.42 is [ref - R, ref], both ends included.
 * With ref and R multiples of the tier width w, it holds exactly the
 * buckets with end in (ref - R, ref], plus the one sample at ref - R,
 * which exists iff the bucket ending at ref - R has its last sample
 * there.  From those, count, sum, min, max, avg, last and present are
 * exact, and rate, increase and delta take Prometheus's extrapolation
 * from the first and last sample, the count and the counter resets
 * (inside buckets, and between a bucket's first value and the previous
 * bucket's last).  Sums are added in another order than raw, so results
 * agree within rounding (1e-9 relative is what the tests ask).
 *
 * Planning: a call qualifies when its argument is a plain range selector
 * (offset allowed, no @), every evaluation time less the offset is a
 * multiple of w (for a grid: start - offset and step), R is a multiple of
 * w, and the tier still holds the bucket ending at the first window's
 * start.  The coarsest such tier wins.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "query/eval_internal.h"
#include "query/funcs.h"
#include "query/matchers.h"
#include "tsdb/error.h"

enum tfn {
    T_RATE,
    T_INCREASE,
    T_DELTA,
    T_SUM,
    T_COUNT,
    T_AVG,
    T_MIN,
    T_MAX,
    T_LAST,
    T_PRESENT,
    T_NONE
};

static const char *const tfn_names[] = {
    [T_RATE] = "rate",
    [T_INCREASE] = "increase",
    [T_DELTA] = "delta",
    [T_SUM] = "sum_over_time",
    [T_COUNT] = "count_over_time",
    [T_AVG] = "avg_over_time",
    [T_MIN] = "min_over_time",
    [T_MAX] = "max_over_time",
    [T_LAST] = "last_over_time",
    [T_PRESENT] = "present_over_time",
};

static enum tfn tfn_of(const char *name)
{
    for (int i = 0; i < T_NONE; i++)
        if (strcmp(tfn_names[i], name) == 0)
            return (enum tfn)i;
    return T_NONE;
}

static int64_t mod_floor(int64_t a, int64_t b)
{
    int64_t r = a % b;

    return r < 0 ? r + b : r;
}

bool qtier_pick(struct qctx *c, const char *fn, const struct query_node *m,
                const struct qgrid *g, size_t *tier)
{
    struct tsdb_tier_spec specs[TSDB_TIERS_MAX];
    const struct query_mods *mods;
    int64_t range, ref0;
    size_t n;

    if (c->o->no_tiers || m->kind != QUERY_NODE_MATRIX || tfn_of(fn) == T_NONE)
        return false;
    mods = &m->u.matrix.sel->u.sel.mods;
    if (mods->at != QUERY_AT_NONE)
        return false;
    range = m->u.matrix.range_ms;
    ref0 = g->start - mods->offset_ms;
    tsdb_tiers_get(c->db, specs, &n);
    for (size_t i = n; i-- > 0;) {
        int64_t w = specs[i].width_ms;

        if (range % w != 0 || mod_floor(ref0, w) != 0 ||
            (g->n > 1 && g->step % w != 0))
            continue;
        if (tsdb_tier_oldest(c->db, i) > ref0 - range)
            continue;
        *tier = i;
        return true;
    }
    return false;
}

/* ---- one window ---- */

/* A window's buckets: b[0..n) end in (start, end]; edge, if not NULL,
 * holds the sample at exactly start as its last. */
struct twin {
    const struct tsdb_bucket *edge;
    const struct tsdb_bucket *b;
    size_t n;
    int64_t start, end;
};

static double kahan_add(double inc, double sum, double *comp)
{
    double t = sum + inc;

    if (fabs(sum) >= fabs(inc))
        *comp += (sum - t) + inc;
    else
        *comp += (inc - t) + sum;
    return t;
}

static uint64_t win_count(const struct twin *x)
{
    uint64_t n = x->edge != NULL;

    for (size_t i = 0; i < x->n; i++)
        n += x->b[i].count;
    return n;
}

static double win_sum(const struct twin *x)
{
    double sum = 0, comp = 0;

    if (x->edge)
        sum = kahan_add(x->edge->last_v, sum, &comp);
    for (size_t i = 0; i < x->n; i++)
        sum = kahan_add(x->b[i].sum, sum, &comp);
    return isinf(sum) ? sum : sum + comp;
}

/* min or max in time order, with Prometheus's rule that a NaN gives way
 * to any later value. */
static double win_extremum(const struct twin *x, bool max)
{
    bool have = false;
    double r = NAN;

    if (x->edge) {
        r = x->edge->last_v;
        have = true;
    }
    for (size_t i = 0; i < x->n; i++) {
        double v = max ? x->b[i].max : x->b[i].min;

        if (!have || (max ? v > r : v < r) || isnan(r))
            r = v;
        have = true;
    }
    return r;
}

static bool win_extrapolate(const struct twin *x, enum tfn f, double *out)
{
    bool counter = f != T_DELTA;
    struct query_extrap e;
    double prev = 0;

    e.n = (size_t)win_count(x);
    if (e.n < 2 || x->n == 0)
        return false;
    e.t0 = x->edge ? x->edge->last_t : x->b[0].first_t;
    e.v0 = x->edge ? x->edge->last_v : x->b[0].first_v;
    e.tn = x->b[x->n - 1].last_t;
    e.delta = x->b[x->n - 1].last_v - e.v0;
    e.start = x->start;
    e.end = x->end;

    /* Resets in time order, as the raw loop meets them. */
    if (counter && x->edge) {
        if (x->edge->last_v < prev)
            e.delta += prev;
        prev = x->edge->last_v;
    }
    for (size_t i = 0; counter && i < x->n; i++) {
        if (x->b[i].first_v < prev)
            e.delta += prev;
        if (x->b[i].resets != 0)
            e.delta += x->b[i].resets;
        prev = x->b[i].last_v;
    }
    return query_extrapolate(&e, counter, f == T_RATE, out);
}

static bool win_value(const struct twin *x, enum tfn f, double *out)
{
    uint64_t n = win_count(x);

    if (n == 0)
        return false;
    switch (f) {
    case T_RATE:
    case T_INCREASE:
    case T_DELTA:
        return win_extrapolate(x, f, out);
    case T_SUM:
        *out = win_sum(x);
        return true;
    case T_COUNT:
        *out = (double)n;
        return true;
    case T_AVG:
        *out = win_sum(x) / (double)n;
        return true;
    case T_MIN:
    case T_MAX:
        *out = win_extremum(x, f == T_MAX);
        return true;
    case T_LAST:
        *out = x->n ? x->b[x->n - 1].last_v : x->edge->last_v;
        return true;
    case T_PRESENT:
        *out = 1;
        return true;
    default:
        return false;
    }
}

/* ---- one series ---- */

struct tcall {
    struct qctx *c;
    enum tfn f;
    const struct qgrid *g;
    int64_t range, offset;
    bool keep_name;
    struct qmap *merge;
    qemit_fn emit;
    void *ectx;
};

static void fill(const struct tcall *t, const struct tsdb_bucket *b, size_t n,
                 struct qser *s)
{
    size_t lo = 0, hi = 0; /* window buckets are b[lo, hi) */

    for (size_t k = 0; k < t->g->n; k++) {
        int64_t ref = qgrid_at(t->g, k) - t->offset;
        struct twin x = {NULL, NULL, 0, ref - t->range, ref};
        double v;

        while (hi < n && b[hi].end <= ref)
            hi++;
        while (lo < hi && b[lo].end <= x.start)
            lo++;
        if (lo > 0 && b[lo - 1].end == x.start && b[lo - 1].last_t == x.start)
            x.edge = &b[lo - 1];
        x.b = b + lo;
        x.n = hi - lo;
        if (win_value(&x, t->f, &v)) {
            s->has[k] = 1;
            s->v[k] = v;
        }
    }
}

static int tier_series(struct tcall *t, const struct tsdb_labels *ls,
                       const struct tsdb_bucket *b, size_t n)
{
    struct qctx *c = t->c;
    struct qser *s = qser_new(c, ls->v, ls->n, t->g->n);

    if (s == NULL)
        return c->rc;
    c->samples += n;
    fill(t, b, n, s);
    return ev_pass_on(c, s, !t->keep_name, t->merge, t->emit, t->ectx);
}

/* Opens tier's buckets of selector m's series over [mint, maxt]; *ms
 * and *nms are the matchers, for the caller to free. */
static int open_tier(struct qctx *c, const struct query_node *m, size_t tier,
                     int64_t mint, int64_t maxt, struct tsdb_matcher **ms,
                     size_t *nms, struct tsdb_tier_query **q)
{
    char err[256];
    int rc = query_matchers(m->u.matrix.sel, ms, nms, err, sizeof(err));

    if (rc == TSDB_ENOMEM)
        return ev_nomem(c);
    if (rc != TSDB_OK)
        return ev_fail(c, QUERY_ERR_BAD_DATA, "%s", err);
    rc = tsdb_tier_query_open(c->db, tier, *ms, *nms, mint, maxt, q);
    if (rc == TSDB_ENOMEM)
        return ev_nomem(c);
    if (rc != TSDB_OK)
        return ev_fail(c, QUERY_ERR_INTERNAL, "storage: %s", tsdb_strerror(rc));
    return TSDB_OK;
}

int qtier_call(struct qctx *c, const char *fn, const struct query_node *m,
               const struct qgrid *g, size_t tier, bool keep_name,
               struct qmap *merge, qemit_fn emit, void *ectx)
{
    const struct query_mods *mods = &m->u.matrix.sel->u.sel.mods;
    struct tcall t = {c,
                      tfn_of(fn),
                      g,
                      m->u.matrix.range_ms,
                      mods->offset_ms,
                      keep_name,
                      merge,
                      emit,
                      ectx};
    struct tsdb_tier_query *q = NULL;
    struct tsdb_matcher *ms = NULL;
    size_t nms = 0;
    int64_t first = g->start - t.offset - t.range;
    int rc;

    c->resolutions |= 1u << (1 + tier);
    rc = open_tier(c, m, tier, first, g->end - t.offset, &ms, &nms, &q);
    while (rc == TSDB_OK) {
        const struct tsdb_labels *ls;
        const struct tsdb_bucket *b;
        size_t n;

        rc = ev_check(c);
        if (rc == TSDB_OK)
            rc = tsdb_tier_query_next(q, &ls, &b, &n);
        if (rc == TSDB_ENOTFOUND)
            break;
        if (rc != TSDB_OK && c->rc == TSDB_OK)
            rc = ev_fail(c, QUERY_ERR_INTERNAL, "storage: %s",
                         tsdb_strerror(rc));
        if (rc == TSDB_OK)
            rc = tier_series(&t, ls, b, n);
    }
    tsdb_tier_query_close(q);
    if (ms != NULL)
        query_matchers_free(ms, nms);
    return rc == TSDB_ENOTFOUND ? TSDB_OK : rc;
}
