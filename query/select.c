/*
 * A selector's series, read from storage one at a time, each whole into a
 * reused buffer: the evaluator then walks it once per step.  The buffer's
 * samples count against the query's sample limit while they are held.
 */
#include <stdlib.h>
#include <string.h>

#include "query/eval_internal.h"
#include "tsdb/db.h"
#include "tsdb/error.h"

bool sel_is_stale(double v)
{
    uint64_t bits;

    memcpy(&bits, &v, sizeof(bits));
    return bits == 0x7ff0000000000002ULL;
}

static const enum tsdb_match_type match_types[] = {
    [QUERY_MATCH_EQ] = TSDB_MATCH_EQ,
    [QUERY_MATCH_NE] = TSDB_MATCH_NEQ,
    [QUERY_MATCH_RE] = TSDB_MATCH_RE,
    [QUERY_MATCH_NRE] = TSDB_MATCH_NRE,
};

int sel_open(struct qctx *c, const struct query_node *sel, int64_t mint,
             int64_t maxt, bool drop_stale, struct sel_reader *r)
{
    size_t n = sel->u.sel.nmatchers + (sel->u.sel.name.p != NULL);
    char err[256];
    int rc;

    memset(r, 0, sizeof(*r));
    r->drop_stale = drop_stale;
    r->ms = calloc(n, sizeof(*r->ms));
    if (r->ms == NULL)
        return ev_nomem(c);
    if (sel->u.sel.name.p != NULL) {
        rc = tsdb_matcher_init(&r->ms[0], TSDB_MATCH_EQ, "__name__",
                               sel->u.sel.name.p, err, sizeof(err));
        if (rc != TSDB_OK)
            return rc == TSDB_ENOMEM
                       ? ev_nomem(c)
                       : ev_fail(c, QUERY_ERR_BAD_DATA, "%s", err);
        r->nms++;
    }
    for (size_t i = 0; i < sel->u.sel.nmatchers; i++) {
        const struct query_matcher *m = &sel->u.sel.matchers[i];

        rc = tsdb_matcher_init(&r->ms[r->nms], match_types[m->op], m->name.p,
                               m->value.p, err, sizeof(err));
        if (rc != TSDB_OK)
            return rc == TSDB_ENOMEM
                       ? ev_nomem(c)
                       : ev_fail(c, QUERY_ERR_BAD_DATA, "%s", err);
        r->nms++;
    }
    rc = tsdb_query_open(c->db, r->ms, r->nms, mint, maxt, &r->q);
    if (rc == TSDB_ENOMEM)
        return ev_nomem(c);
    if (rc != TSDB_OK)
        return ev_fail(c, QUERY_ERR_INTERNAL, "storage: %s", tsdb_strerror(rc));
    return TSDB_OK;
}

static int buf_grow(struct qctx *c, struct sel_samples *b, size_t want)
{
    size_t cap = b->cap ? b->cap : 256;
    int64_t *t;
    double *v;
    int rc;

    while (cap < want)
        cap *= 2;
    rc = ev_hold(c, (int64_t)(cap - b->cap));
    if (rc != TSDB_OK)
        return rc;
    t = realloc(b->t, cap * sizeof(*t));
    if (t == NULL)
        return ev_nomem(c);
    b->t = t;
    v = realloc(b->v, cap * sizeof(*v));
    if (v == NULL)
        return ev_nomem(c);
    b->v = v;
    b->cap = cap;
    return TSDB_OK;
}

int sel_next(struct qctx *c, struct sel_reader *r,
             const struct tsdb_labels **ls)
{
    struct sel_samples *b = &r->buf;
    int rc = ev_check(c);

    if (rc != TSDB_OK)
        return rc;
    rc = tsdb_query_next_series(r->q, ls, NULL);
    if (rc == TSDB_ENOTFOUND)
        return rc;
    if (rc != TSDB_OK)
        return ev_fail(c, QUERY_ERR_INTERNAL, "storage: %s", tsdb_strerror(rc));
    b->n = 0;
    for (;;) {
        const int64_t *ts;
        const double *vs;
        size_t n;

        rc = tsdb_query_next_batch(r->q, &ts, &vs, &n);
        if (rc != TSDB_OK)
            return ev_fail(c, QUERY_ERR_INTERNAL, "storage: %s",
                           tsdb_strerror(rc));
        if (n == 0)
            break;
        c->samples += n;
        if (b->n + n > b->cap) {
            rc = buf_grow(c, b, b->n + n);
            if (rc != TSDB_OK)
                return rc;
        }
        if (!r->drop_stale) {
            memcpy(b->t + b->n, ts, n * sizeof(*ts));
            memcpy(b->v + b->n, vs, n * sizeof(*vs));
            b->n += n;
            continue;
        }
        for (size_t i = 0; i < n; i++) {
            if (sel_is_stale(vs[i]))
                continue;
            b->t[b->n] = ts[i];
            b->v[b->n] = vs[i];
            b->n++;
        }
    }
    return TSDB_OK;
}

void sel_close(struct qctx *c, struct sel_reader *r)
{
    if (r->q != NULL)
        tsdb_query_close(r->q);
    for (size_t i = 0; i < r->nms; i++)
        tsdb_matcher_release(&r->ms[i]);
    free(r->ms);
    ev_hold(c, -(int64_t)r->buf.cap);
    free(r->buf.t);
    free(r->buf.v);
    memset(r, 0, sizeof(*r));
}
