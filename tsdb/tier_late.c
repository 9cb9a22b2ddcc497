/*
 * Late samples: buckets at or before a horizon that a write made stale.
 * Part of each downsampler pass (tier_build.c), under the tier lock.
 *
 * Appends to a series are strictly ascending, so a sample with time <= H
 * can only come from a series whose newest sample was below H when the
 * pass that set H read it.  seen[] keeps, per series id, the newest time
 * the last pass had observed before it read; a series now newer than
 * that, and whose seen time is below a tier's H, gets its buckets from
 * the seen time up to H summarised again from raw.  A series first
 * observed after start-up counts as seen at the beginning of time, and
 * buckets before its first raw sample are kept (raw retention may have
 * taken what a longer-lived tier still holds).
 *
 * LIMIT: the scan walks every head series under the head lock at each
 * pass, a load and a compare per series, while commits wait.  It matters
 * from millions of active series (a few ms per pass); walking the id
 * range in slices, releasing the lock between them, would fix it.
 *
 * LIMIT: seen[] lives in memory only, so late samples accepted since the
 * last pass before a crash or restart are never summarised again
 * (storage-format.md section 3.4 says how to rebuild a tier).
 */
#define LOG_MODULE "tier"
#include <stdlib.h>

#include "tsdb/db_internal.h"
#include "tsdb/log.h"
#include "tsdb/tier.h"

struct dirty {
    uint64_t id;
    int64_t seen; /* newest time observed before; INT64_MIN: none */
};

int tier_seen_grow(struct tier_state *ts, size_t want)
{
    size_t cap = ts->seen_cap ? ts->seen_cap : 1024;
    int64_t *v;

    while (cap < want)
        cap *= 2;
    if (cap == ts->seen_cap)
        return TSDB_OK;
    v = realloc(ts->seen, cap * sizeof(*v));
    if (v == NULL)
        return TSDB_ENOMEM;
    for (size_t i = ts->seen_cap; i < cap; i++)
        v[i] = INT64_MIN;
    ts->seen = v;
    ts->seen_cap = cap;
    return TSDB_OK;
}

/*
 * Notes every head series' newest time in seen[] and lists those that
 * moved from below max_h (the highest horizon): they may have brought
 * samples a pass has already summarised.
 */
static int scan_late(struct tsdb *db, int64_t max_h, struct dirty **out,
                     size_t *nout)
{
    struct tier_state *ts = db->tier;
    size_t cap = 0;
    int rc;

    *out = NULL;
    *nout = 0;
    pthread_mutex_lock(&db->head_lock);
    rc = tier_seen_grow(ts, db->head.by_id_cap);
    for (size_t id = 0; id < db->head.by_id_cap && rc == TSDB_OK; id++) {
        struct head_series *s = db->head.by_id[id];

        if (s == NULL || s->maxt <= ts->seen[id])
            continue;
        if (ts->seen[id] < max_h) {
            if (*nout == cap) {
                struct dirty *d;

                cap = cap ? cap * 2 : 64;
                d = realloc(*out, cap * sizeof(*d));
                if (d == NULL) {
                    rc = TSDB_ENOMEM;
                    break;
                }
                *out = d;
            }
            (*out)[(*nout)++] = (struct dirty){id, ts->seen[id]};
        }
        ts->seen[id] = s->maxt;
    }
    pthread_mutex_unlock(&db->head_lock);
    return rc;
}

/* Matchers equal to every label of series id (they may select series
 * with more labels too; the caller checks the id). */
static int series_matchers(struct tsdb *db, uint64_t id,
                           struct tsdb_matcher **ms, size_t *n)
{
    struct tsdb_labels ls;
    struct head_series *s;
    char err[64];
    int rc;

    *ms = NULL;
    *n = 0;
    pthread_mutex_lock(&db->head_lock);
    s = head_get(&db->head, id);
    rc = s ? tsdb_labels_decode(s->labels, s->labels_len, &ls) : TSDB_ENOTFOUND;
    pthread_mutex_unlock(&db->head_lock);
    if (rc != TSDB_OK)
        return rc;
    *ms = calloc(ls.n ? ls.n : 1, sizeof(**ms));
    rc = *ms ? TSDB_OK : TSDB_ENOMEM;
    for (size_t i = 0; i < ls.n && rc == TSDB_OK; i++) {
        rc = tsdb_matcher_init(&(*ms)[i], TSDB_MATCH_EQ, ls.v[i].name,
                               ls.v[i].value, err, sizeof(err));
        if (rc == TSDB_OK)
            (*n)++;
    }
    tsdb_labels_release(&ls);
    return rc;
}

/* Summarises series id again over (from, to] of tier i; seen is the
 * newest time of it that the last pass had observed. */
static int redo_series(struct tsdb *db, size_t i, uint64_t id, int64_t seen,
                       int64_t from, int64_t to)
{
    int64_t w = db->tier->spec[i].width_ms;
    struct tier_buckets b = {0};
    struct tsdb_matcher *ms;
    struct tsdb_query *q = NULL;
    const struct tsdb_labels *ls;
    MDB_txn *txn = NULL;
    uint64_t got;
    size_t n;
    int rc = series_matchers(db, id, &ms, &n);

    if (rc == TSDB_OK && n > 0)
        rc = tsdb_query_open(db, ms, n,
                             from == INT64_MIN ? INT64_MIN : from + 1, to, &q);
    while (rc == TSDB_OK && n > 0) {
        rc = tsdb_query_next_series(q, &ls, &got);
        if (rc == TSDB_OK && got == id)
            break;
    }
    if (rc == TSDB_OK && n > 0)
        rc = tier_summarize_query(q, w, &b);
    if (rc == TSDB_ENOTFOUND)
        rc = TSDB_OK;

    /* Nothing arrived at or before `to` since the last look: the stored
     * buckets stand (a series that lags by more than the settle time
     * comes here at every pass).  And buckets before the first raw
     * sample are never replaced: raw retention may have taken the
     * samples that a longer-lived tier still summarises. */
    if (rc == TSDB_OK &&
        (b.n == 0 || (seen != INT64_MIN && b.v[b.n - 1].last_t <= seen)))
        goto release;
    if (rc == TSDB_OK && b.v[0].end - w > from)
        from = b.v[0].end - w;
    if (rc == TSDB_OK)
        rc = tier_txn_begin(db, &txn);
    if (rc == TSDB_OK)
        rc = tier_store_replace(db, txn, w, id, from, to, b.v, b.n);
    if (rc == TSDB_OK)
        rc = tier_txn_commit(&txn);
    if (txn)
        mdb_txn_abort(txn);
release:
    tsdb_query_close(q);
    for (size_t k = 0; k < n; k++)
        tsdb_matcher_release(&ms[k]);
    free(ms);
    tier_buckets_release(&b);
    return rc;
}

/* Summarises series d again in every tier whose horizon it lagged. */
static int redo_one(struct tsdb *db, const struct dirty *d)
{
    struct tier_state *ts = db->tier;
    int rc = TSDB_OK;

    for (size_t i = 0; i < ts->n && rc == TSDB_OK; i++) {
        int64_t w = ts->spec[i].width_ms;
        int64_t h = atomic_load(&ts->horizon[i]);
        int64_t from =
            d->seen == INT64_MIN ? INT64_MIN : tier_bucket_end(d->seen, w) - w;

        if (d->seen < h)
            rc = redo_series(db, i, d->id, d->seen, from, h);
    }
    return rc;
}

int tier_redo_late(struct tsdb *db)
{
    struct tier_state *ts = db->tier;
    int64_t max_h = INT64_MIN;
    struct dirty *d;
    size_t nd, k = 0;
    int rc;

    for (size_t i = 0; i < ts->n; i++) {
        int64_t h = atomic_load(&ts->horizon[i]);
        max_h = h > max_h ? h : max_h;
    }
    rc = scan_late(db, max_h, &d, &nd);
    for (; k < nd && rc == TSDB_OK && !tier_stopping(db); k++)
        rc = redo_one(db, &d[k]);

    /* What failed or was cut short is tried again at the next pass. */
    if (rc != TSDB_OK && k > 0)
        k--;
    for (; k < nd; k++)
        ts->seen[d[k].id] = d[k].seen;
    if (nd > 0)
        log_debug("%zu series summarised again for late samples", nd);
    free(d);
    return rc;
}
