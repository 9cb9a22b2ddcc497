/*
 * Tier reads (tsdb_tier_query_* in db.h): per series, in ascending label
 * order, the stored buckets with end <= the horizon H read in the same
 * LMDB snapshot as H, followed by buckets summarised on the fly from the
 * raw samples past H (tier_summarize, the function the downsampler uses),
 * so that an answer is right at once after a write.
 *
 * Two sorted streams are merged by label set: the series the index
 * selects (with stored buckets) and the raw query over (H, maxt].  A
 * series created after the snapshot shows up in the raw stream only.
 */
#include <stdlib.h>
#include <string.h>

#include "tsdb/db_internal.h"
#include "tsdb/tier.h"

struct tq_series {
    uint64_t id;
    struct tsdb_labels labels;
};

struct tsdb_tier_query {
    struct tsdb *db;
    int64_t w;
    int64_t mint, maxt;
    int64_t h; /* horizon as of txn */
    MDB_txn *txn;
    MDB_cursor *cur;
    struct tq_series *series; /* sorted by labels */
    size_t n, pos;
    struct tsdb_query *raw; /* samples past h; NULL if none wanted */
    const struct tsdb_labels *raw_ls;
    uint64_t raw_id;
    bool raw_have; /* raw_ls is the raw stream's next series */
    struct tier_buckets out;
};

static int cmp_series(const void *a, const void *b)
{
    const struct tq_series *x = a, *y = b;

    return tsdb_labels_cmp(&x->labels, &y->labels);
}

static int load_series(struct tsdb_tier_query *q, struct tsdb_matcher *ms,
                       size_t n)
{
    struct tsdb_ids ids = {0};
    int rc = tsdb_index_select(&q->db->index, q->txn, ms, n, &ids);

    if (rc == TSDB_OK) {
        q->series = calloc(ids.n ? ids.n : 1, sizeof(*q->series));
        rc = q->series ? TSDB_OK : TSDB_ENOMEM;
    }
    for (size_t i = 0; i < ids.n && rc == TSDB_OK; i++) {
        const uint8_t *enc;
        size_t len;

        rc = tsdb_index_labels(&q->db->index, q->txn, ids.v[i], &enc, &len);
        if (rc == TSDB_OK)
            rc = tsdb_labels_decode(enc, len, &q->series[q->n].labels);
        if (rc == TSDB_OK)
            q->series[q->n++].id = ids.v[i];
    }
    tsdb_ids_release(&ids);
    if (rc == TSDB_OK && q->n > 1)
        qsort(q->series, q->n, sizeof(*q->series), cmp_series);
    return rc;
}

int tsdb_tier_query_open(struct tsdb *db, size_t i, struct tsdb_matcher *ms,
                         size_t n, int64_t mint, int64_t maxt,
                         struct tsdb_tier_query **out)
{
    struct tsdb_tier_query *q;
    int rc;

    if (n == 0 || mint > maxt || i >= tier_count(db))
        return TSDB_EINVAL;
    q = calloc(1, sizeof(*q));
    if (q == NULL)
        return TSDB_ENOMEM;
    q->db = db;
    q->w = tier_width(db, i);
    q->mint = mint;
    q->maxt = maxt;
    rc = tsdb_mdb_error(mdb_txn_begin(db->env, NULL, MDB_RDONLY, &q->txn));
    if (rc == TSDB_OK)
        rc = tier_horizon_get(db, q->txn, q->w, &q->h);
    if (rc == TSDB_OK)
        rc = tsdb_mdb_error(mdb_cursor_open(q->txn, db->tiers, &q->cur));
    if (rc == TSDB_OK)
        rc = load_series(q, ms, n);

    /* Past the horizon, buckets come from raw samples: those of the
     * bucket ending first after both mint - w and h, up to maxt. */
    if (rc == TSDB_OK && maxt > q->h) {
        int64_t from = mint > INT64_MIN + q->w ? mint - q->w + 1 : INT64_MIN;

        if (q->h != INT64_MIN && q->h + 1 > from)
            from = q->h + 1;
        rc = tsdb_query_open(db, ms, n, from, maxt, &q->raw);
    }
    if (rc != TSDB_OK) {
        tsdb_tier_query_close(q);
        return rc;
    }
    tier_count_read(db, i);
    *out = q;
    return TSDB_OK;
}

/* Appends the current raw series' buckets with end in [mint, maxt]. */
static int raw_buckets(struct tsdb_tier_query *q)
{
    struct tier_buckets *o = &q->out;
    size_t keep = o->n, base = o->n;
    const int64_t *ts;
    const double *vs;
    size_t n;
    int rc;

    for (;;) {
        rc = tsdb_query_next_batch(q->raw, &ts, &vs, &n);
        if (rc != TSDB_OK || n == 0)
            break;
        /* Raw buckets end past h, stored ones at or before it: the first
         * raw sample never lands in the last stored bucket. */
        rc = tier_summarize(q->w, ts, vs, n, o);
        if (rc != TSDB_OK)
            break;
    }
    for (size_t i = base; i < o->n; i++) {
        if (o->v[i].end < q->mint || o->v[i].end > q->maxt)
            continue;
        tier_bucket_finish(&o->v[i]);
        o->v[keep++] = o->v[i];
    }
    o->n = keep;
    q->raw_have = false;
    return rc;
}

static int peek_raw(struct tsdb_tier_query *q)
{
    int rc;

    if (q->raw == NULL || q->raw_have)
        return TSDB_OK;
    rc = tsdb_query_next_series(q->raw, &q->raw_ls, &q->raw_id);
    if (rc == TSDB_OK)
        q->raw_have = true;
    return rc == TSDB_ENOTFOUND ? TSDB_OK : rc;
}

/* Fills q->out for the next series in label order; *ls says which. */
static int next_candidate(struct tsdb_tier_query *q,
                          const struct tsdb_labels **ls, bool *end)
{
    struct tq_series *s = q->pos < q->n ? &q->series[q->pos] : NULL;
    int64_t smax = q->maxt < q->h ? q->maxt : q->h;
    int c, rc = peek_raw(q);

    *end = false;
    q->out.n = 0;
    if (rc != TSDB_OK)
        return rc;
    if (s == NULL && !q->raw_have) {
        *end = true;
        return TSDB_OK;
    }
    c = s == NULL      ? 1
        : !q->raw_have ? -1
                       : tsdb_labels_cmp(&s->labels, q->raw_ls);
    if (c <= 0) {
        *ls = &s->labels;
        q->pos++;
        if (q->mint <= smax)
            rc = tier_store_read(q->db, q->cur, q->w, s->id, q->mint, smax,
                                 &q->out);
    } else {
        *ls = q->raw_ls;
    }
    if (rc == TSDB_OK && c >= 0)
        rc = raw_buckets(q);
    return rc;
}

int tsdb_tier_query_next(struct tsdb_tier_query *q,
                         const struct tsdb_labels **labels,
                         const struct tsdb_bucket **b, size_t *n)
{
    for (;;) {
        bool end;
        int rc = next_candidate(q, labels, &end);

        if (rc != TSDB_OK)
            return rc;
        if (end)
            return TSDB_ENOTFOUND;
        if (q->out.n > 0) {
            *b = q->out.v;
            *n = q->out.n;
            return TSDB_OK;
        }
    }
}

void tsdb_tier_query_close(struct tsdb_tier_query *q)
{
    if (q == NULL)
        return;
    tsdb_query_close(q->raw);
    for (size_t i = 0; i < q->n; i++)
        tsdb_labels_release(&q->series[i].labels);
    free(q->series);
    if (q->cur)
        mdb_cursor_close(q->cur);
    if (q->txn)
        mdb_txn_abort(q->txn);
    tier_buckets_release(&q->out);
    free(q);
}
