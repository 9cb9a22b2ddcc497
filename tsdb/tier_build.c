/*
 * The downsampler: keeps every tier's horizon H (storage-format.md
 * "tiers") close behind the newest sample, in its own thread so that a
 * long backlog never delays the flusher.
 *
 * A pass, under the tier lock (one pass at a time):
 * 1. Late samples (tier_late.c): series that may have brought samples
 *    at or before a horizon are summarised again from raw.
 * 2. Each tier's H moves to floor((newest - settle) / w) * w, one block
 *    span of buckets per step: a step reads raw samples in (H, H'] for
 *    every series through tsdb_query (bounded memory: one series at a
 *    time), writes their buckets in write txns of a few hundred series,
 *    and commits H' with the last of them.  Writers wait for one such
 *    txn at most.
 * 3. Tier retention: blocks whose buckets all end before
 *    (newest - retention) are deleted, in small txns.
 *
 */
#define LOG_MODULE "tier"
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tsdb/bytes.h"
#include "tsdb/chunk.h"
#include "tsdb/db_internal.h"
#include "tsdb/log.h"
#include "tsdb/tier.h"

/* Series whose buckets one write txn of a pass carries. */
#define SERIES_PER_TXN 256
/* How often tier retention runs, ms. */
#define EXPIRE_EVERY_MS 60000

static int64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- figures ---- */

size_t tier_count(struct tsdb *db)
{
    return db->tier ? db->tier->n : 0;
}

int64_t tier_width(struct tsdb *db, size_t i)
{
    return db->tier->spec[i].width_ms;
}

void tier_count_read(struct tsdb *db, size_t i)
{
    if (db->tier && i < db->tier->n)
        atomic_fetch_add(&db->tier->reads[i], 1);
}

void tier_count_bytes(struct tsdb *db, int64_t w, int64_t delta)
{
    for (size_t i = 0; db->tier && i < db->tier->n; i++)
        if (db->tier->spec[i].width_ms == w)
            atomic_fetch_add(&db->tier->bytes[i], delta);
}

void tsdb_tiers_get(struct tsdb *db, struct tsdb_tier_spec *specs, size_t *n)
{
    *n = db->tier ? db->tier->n : 0;
    for (size_t i = 0; i < *n; i++)
        specs[i] = db->tier->spec[i];
}

int64_t tsdb_tier_oldest(struct tsdb *db, size_t i)
{
    int64_t newest, r;

    if (!db->tier || i >= db->tier->n || db->tier->spec[i].retention_ms == 0)
        return INT64_MIN;
    r = db->tier->spec[i].retention_ms;
    pthread_mutex_lock(&db->head_lock);
    newest = db->max_time;
    pthread_mutex_unlock(&db->head_lock);
    return newest == INT64_MIN ? INT64_MIN : newest - r;
}

void tsdb_tier_stats_get(struct tsdb *db, struct tsdb_tier_stats *st, size_t *n)
{
    struct tier_state *ts = db->tier;

    *n = ts ? ts->n : 0;
    for (size_t i = 0; i < *n; i++) {
        int64_t b = atomic_load(&ts->bytes[i]);

        st[i].width_ms = ts->spec[i].width_ms;
        st[i].horizon = atomic_load(&ts->horizon[i]);
        st[i].bytes = b > 0 ? (uint64_t)b : 0;
        st[i].buckets_written = atomic_load(&ts->written[i]);
        st[i].reads = atomic_load(&ts->reads[i]);
    }
}

/* ---- reading raw samples ---- */

/* A matcher that every series passes: __name__ =~ ".*" matches the
 * empty value too, so series without a name are included. */
static int match_all(struct tsdb_matcher *m)
{
    char err[64];

    return tsdb_matcher_init(m, TSDB_MATCH_RE, "__name__", ".*", err,
                             sizeof(err));
}

/* Summarises the current series of q into out (emptied first). */
int tier_summarize_query(struct tsdb_query *q, int64_t w,
                         struct tier_buckets *out)
{
    const int64_t *ts;
    const double *vs;
    size_t n;
    int rc;

    out->n = 0;
    for (;;) {
        rc = tsdb_query_next_batch(q, &ts, &vs, &n);
        if (rc != TSDB_OK || n == 0)
            break;
        rc = tier_summarize(w, ts, vs, n, out);
        if (rc != TSDB_OK)
            break;
    }
    for (size_t i = 0; i < out->n; i++)
        tier_bucket_finish(&out->v[i]);
    return rc;
}

/* ---- a step of the horizon ---- */

int tier_txn_commit(MDB_txn **txn)
{
    int rc = TSDB_OK;

    if (*txn)
        rc = tsdb_mdb_error(mdb_txn_commit(*txn));
    *txn = NULL;
    return rc;
}

int tier_txn_begin(struct tsdb *db, MDB_txn **txn)
{
    if (*txn)
        return TSDB_OK;
    return tsdb_mdb_error(mdb_txn_begin(db->env, NULL, 0, txn));
}

/* Stores every series' buckets with end in (h, h2] of tier i, then h2. */
static int advance(struct tsdb *db, size_t i, int64_t h, int64_t h2)
{
    int64_t w = db->tier->spec[i].width_ms;
    struct tier_buckets b = {0};
    struct tsdb_matcher all;
    struct tsdb_query *q = NULL;
    MDB_txn *txn = NULL;
    size_t in_txn = 0;
    int rc;

    rc = match_all(&all);
    if (rc != TSDB_OK)
        return rc;
    rc = tsdb_query_open(db, &all, 1, h == INT64_MIN ? INT64_MIN : h + 1, h2,
                         &q);
    while (rc == TSDB_OK) {
        const struct tsdb_labels *ls;
        uint64_t id;

        rc = tsdb_query_next_series(q, &ls, &id);
        if (rc != TSDB_OK)
            break;
        rc = tier_summarize_query(q, w, &b);
        if (rc == TSDB_OK && b.n > 0)
            rc = tier_txn_begin(db, &txn);
        if (rc == TSDB_OK && b.n > 0)
            rc = tier_store_replace(db, txn, w, id, h, h2, b.v, b.n);
        atomic_fetch_add(&db->tier->written[i], b.n);
        if (rc == TSDB_OK && ++in_txn % SERIES_PER_TXN == 0)
            rc = tier_txn_commit(&txn);
    }
    if (rc == TSDB_ENOTFOUND)
        rc = tier_txn_begin(db, &txn);
    if (rc == TSDB_OK)
        rc = tier_horizon_put(db, txn, w, h2);
    if (rc == TSDB_OK)
        rc = tier_txn_commit(&txn);
    if (txn)
        mdb_txn_abort(txn);
    if (rc == TSDB_OK)
        atomic_store(&db->tier->horizon[i], h2);
    tsdb_query_close(q);
    tsdb_matcher_release(&all);
    tier_buckets_release(&b);
    return rc;
}

/* The oldest sample time of the database (stored or in the head), or
 * INT64_MAX when it is empty: where a tier that has nothing starts. */
static int64_t oldest_time(struct tsdb *db)
{
    uint8_t key[TSDB_CHUNK_KEY_LEN];
    MDB_val k, v;
    MDB_txn *txn;
    MDB_cursor *cur;
    int64_t oldest = INT64_MAX;

    if (mdb_txn_begin(db->env, NULL, MDB_RDONLY, &txn) != MDB_SUCCESS)
        return oldest;
    if (mdb_cursor_open(txn, db->chunks, &cur) == MDB_SUCCESS) {
        /* One seek per series: its first chunk starts its data. */
        int mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);

        while (mrc == MDB_SUCCESS && k.mv_size == TSDB_CHUNK_KEY_LEN) {
            uint64_t sid = get_be64(k.mv_data);
            int64_t t = get_be64_signed((const uint8_t *)k.mv_data + 8);

            oldest = t < oldest ? t : oldest;
            if (sid == UINT64_MAX)
                break;
            tsdb_chunk_key(key, sid + 1, INT64_MIN);
            k = (MDB_val){sizeof(key), key};
            mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        }
        mdb_cursor_close(cur);
    }
    mdb_txn_abort(txn);
    pthread_mutex_lock(&db->head_lock);
    for (size_t id = 0; id < db->head.by_id_cap; id++) {
        struct head_series *s = db->head.by_id[id];
        int64_t t = INT64_MAX;

        if (s && s->npending > 0)
            t = s->pending[0]->mint;
        else if (s && s->open.count > 0)
            t = s->open_mint;
        oldest = t < oldest ? t : oldest;
    }
    pthread_mutex_unlock(&db->head_lock);
    return oldest;
}

bool tier_stopping(struct tsdb *db)
{
    bool s;

    pthread_mutex_lock(&db->tier->wake_lock);
    s = db->tier->stopping;
    pthread_mutex_unlock(&db->tier->wake_lock);
    return s;
}

/* Moves tier i's horizon to target, a block span at a time. */
static int catch_up(struct tsdb *db, size_t i, int64_t target)
{
    int64_t w = db->tier->spec[i].width_ms;
    int64_t h = atomic_load(&db->tier->horizon[i]);
    int rc = TSDB_OK;

    if (h == INT64_MIN) {
        int64_t oldest = oldest_time(db);

        if (oldest == INT64_MAX)
            return TSDB_OK;
        h = tier_bucket_end(oldest, w) - w;
        if (h >= target)
            return TSDB_OK;
    }
    while (h < target && rc == TSDB_OK && !tier_stopping(db)) {
        int64_t h2 = tier_block_start(h + w, w) + TIER_BLOCK_BUCKETS * w - w;

        h2 = h2 < target ? h2 : target;
        rc = advance(db, i, h, h2);
        h = h2;
    }
    return rc;
}

/* ---- passes ---- */

static void expire(struct tsdb *db, int64_t newest)
{
    struct tier_state *ts = db->tier;

    if (mono_ms() - ts->last_expire < EXPIRE_EVERY_MS)
        return;
    ts->last_expire = mono_ms();
    for (size_t i = 0; i < ts->n; i++) {
        size_t deleted = 0;
        int rc;

        if (ts->spec[i].retention_ms == 0)
            continue;
        rc = tier_store_expire(db, ts->spec[i].width_ms,
                               newest - ts->spec[i].retention_ms, &deleted);
        if (rc != TSDB_OK)
            log_warn("tier retention of %" PRId64 " ms failed: %s",
                     ts->spec[i].width_ms, tsdb_strerror(rc));
    }
}

static int pass(struct tsdb *db)
{
    struct tier_state *ts = db->tier;
    int64_t newest;
    int rc;

    pthread_mutex_lock(&db->head_lock);
    newest = db->max_time;
    pthread_mutex_unlock(&db->head_lock);
    if (newest == INT64_MIN)
        return TSDB_OK;
    rc = tier_redo_late(db);
    for (size_t i = 0; i < ts->n && rc == TSDB_OK; i++) {
        int64_t w = ts->spec[i].width_ms;
        int64_t target = tier_bucket_end(newest - db->opt.tier_settle_ms, w);

        /* The bucket holding the settled time is not complete yet. */
        if (target > newest - db->opt.tier_settle_ms)
            target -= w;
        rc = catch_up(db, i, target);
    }
    if (rc == TSDB_OK)
        expire(db, newest);
    return rc;
}

int tsdb_tiers_build(struct tsdb *db)
{
    int rc;

    if (!db->tier || db->opt.read_only)
        return TSDB_OK;
    pthread_mutex_lock(&db->tier->lock);
    rc = pass(db);
    pthread_mutex_unlock(&db->tier->lock);
    return rc;
}

static void *tier_main(void *arg)
{
    struct tsdb *db = arg;
    struct tier_state *ts = db->tier;
    struct timespec until;
    int rc;

    pthread_mutex_lock(&ts->wake_lock);
    while (!ts->stopping) {
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += db->opt.tier_interval_ms / 1000;
        until.tv_nsec += (long)(db->opt.tier_interval_ms % 1000) * 1000000;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&ts->wake, &ts->wake_lock, &until);
        if (ts->stopping)
            break;
        pthread_mutex_unlock(&ts->wake_lock);
        rc = tsdb_tiers_build(db);
        if (rc != TSDB_OK)
            log_warn("downsampling pass failed: %s", tsdb_strerror(rc));
        pthread_mutex_lock(&ts->wake_lock);
    }
    pthread_mutex_unlock(&ts->wake_lock);
    return NULL;
}

/* ---- lifecycle ---- */

/* Horizons and stored bytes of each tier, read once at open. */
static int load_figures(struct tsdb *db)
{
    struct tier_state *ts = db->tier;
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    int rc = tsdb_mdb_error(mdb_txn_begin(db->env, NULL, MDB_RDONLY, &txn));

    for (size_t i = 0; i < ts->n && rc == TSDB_OK; i++) {
        int64_t h;

        rc = tier_horizon_get(db, txn, ts->spec[i].width_ms, &h);
        atomic_store(&ts->horizon[i], h);
    }
    if (rc == TSDB_OK && mdb_cursor_open(txn, db->tiers, &cur) == MDB_SUCCESS) {
        for (int op = MDB_FIRST; mdb_cursor_get(cur, &k, &v, op) == 0;
             op = MDB_NEXT)
            if (k.mv_size == TIER_KEY_LEN)
                tier_count_bytes(db, (int64_t)get_be64(k.mv_data),
                                 (int64_t)v.mv_size);
        mdb_cursor_close(cur);
    }
    if (txn)
        mdb_txn_abort(txn);
    return rc;
}

static int check_specs(const struct tsdb_options *o)
{
    if (o->ntiers > TSDB_TIERS_MAX || o->tier_settle_ms < 0 ||
        (o->ntiers > 0 && o->tier_interval_ms <= 0))
        return TSDB_EINVAL;
    for (size_t i = 0; i < o->ntiers; i++) {
        if (o->tiers[i].width_ms <= 0 || o->tiers[i].retention_ms < 0 ||
            (i > 0 && o->tiers[i].width_ms <= o->tiers[i - 1].width_ms)) {
            log_error("tier %zu: width %" PRId64 " ms must be > 0 and above "
                      "the tier before it",
                      i, o->tiers[i].width_ms);
            return TSDB_EINVAL;
        }
    }
    return TSDB_OK;
}

static void log_tiers(const struct tier_state *ts)
{
    for (size_t i = 0; i < ts->n; i++) {
        int64_t h = atomic_load(&ts->horizon[i]);

        if (h == INT64_MIN)
            log_info("tier %zu: width %" PRId64 " ms, retention %" PRId64
                     " ms (0 keeps all), nothing stored yet",
                     i, ts->spec[i].width_ms, ts->spec[i].retention_ms);
        else
            log_info("tier %zu: width %" PRId64 " ms, retention %" PRId64
                     " ms (0 keeps all), stored up to %" PRId64,
                     i, ts->spec[i].width_ms, ts->spec[i].retention_ms, h);
    }
}

int tier_open(struct tsdb *db)
{
    struct tier_state *ts;
    int rc = check_specs(&db->opt);

    if (rc != TSDB_OK || db->opt.ntiers == 0)
        return rc;
    ts = calloc(1, sizeof(*ts));
    if (ts == NULL)
        return TSDB_ENOMEM;
    ts->n = db->opt.ntiers;
    memcpy(ts->spec, db->opt.tiers, ts->n * sizeof(ts->spec[0]));
    pthread_mutex_init(&ts->lock, NULL);
    pthread_mutex_init(&ts->wake_lock, NULL);
    pthread_cond_init(&ts->wake, NULL);
    ts->last_expire = mono_ms() - EXPIRE_EVERY_MS;
    db->tier = ts;
    rc = load_figures(db);
    if (rc == TSDB_OK)
        log_tiers(ts);

    /* What the head holds at open was read by earlier passes, as far as
     * their horizons go (storage-format.md section 3.4, late samples). */
    pthread_mutex_lock(&db->head_lock);
    if (rc == TSDB_OK)
        rc = tier_seen_grow(ts, db->head.by_id_cap);
    for (size_t id = 0; id < db->head.by_id_cap && rc == TSDB_OK; id++)
        if (db->head.by_id[id])
            ts->seen[id] = db->head.by_id[id]->maxt;
    pthread_mutex_unlock(&db->head_lock);
    return rc;
}

int tier_start(struct tsdb *db)
{
    if (!db->tier || db->opt.read_only)
        return TSDB_OK;
    if (pthread_create(&db->tier->thread, NULL, tier_main, db) != 0)
        return TSDB_ENOMEM;
    db->tier->running = true;
    return TSDB_OK;
}

void tier_close(struct tsdb *db)
{
    struct tier_state *ts = db->tier;

    if (!ts)
        return;
    if (ts->running) {
        pthread_mutex_lock(&ts->wake_lock);
        ts->stopping = true;
        pthread_cond_signal(&ts->wake);
        pthread_mutex_unlock(&ts->wake_lock);
        pthread_join(ts->thread, NULL);
    }
    pthread_mutex_destroy(&ts->lock);
    pthread_mutex_destroy(&ts->wake_lock);
    pthread_cond_destroy(&ts->wake);
    free(ts->seen);
    free(ts);
    db->tier = NULL;
}
