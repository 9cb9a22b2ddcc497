/*
 * A selector's series, read from storage one at a time, each whole into a
 * reused buffer: the evaluator then walks it once per step.  The buffer's
 * samples count against the query's sample limit while they are held.
 */
#include <stdlib.h>
#include <string.h>

#include "query/eval_internal.h"
#include "query/matchers.h"
#include "tsdb/db.h"
#include "tsdb/error.h"

bool sel_is_stale(double v)
{
    uint64_t bits;

    memcpy(&bits, &v, sizeof(bits));
    return bits == 0x7ff0000000000002ULL;
}

int sel_open(struct qctx *c, const struct query_node *sel, int64_t mint,
             int64_t maxt, bool drop_stale, struct sel_reader *r)
{
    char err[256];
    int rc;

    memset(r, 0, sizeof(*r));
    r->drop_stale = drop_stale;
    rc = query_matchers(sel, &r->ms, &r->nms, err, sizeof(err));
    if (rc == TSDB_ENOMEM)
        return ev_nomem(c);
    if (rc != TSDB_OK)
        return ev_fail(c, QUERY_ERR_BAD_DATA, "%s", err);
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
    if (r->ms != NULL)
        query_matchers_free(r->ms, r->nms);
    ev_hold(c, -(int64_t)r->buf.cap);
    free(r->buf.t);
    free(r->buf.v);
    memset(r, 0, sizeof(*r));
}
