/*
 * Chunk storage in LMDB: the flusher that writes sealed head chunks, the
 * checkpoint that lets the WAL be truncated, and retention.  Layer: below
 * db.c's API, above chunk.c and index.c.  Layouts: storage-format.md
 * sections "chunks" and "head".
 *
 * Invariants:
 * 1. Chunks of one series never overlap in time, and a chunk's key holds
 *    its first timestamp (so a series' chunks sort by time).
 * 2. A stored chunk value fits on a leaf page (TSDB_CHUNK_VALUE_MAX) unless
 *    one head chunk alone was bigger (large chunk_samples settings).
 * 3. When a checkpoint removes WAL segments up to N, every sample logged in
 *    them is in LMDB (in a chunk or a head snapshot) and LMDB is synced.
 *
 * LIMIT: one flusher thread.  It packs sealed chunks (pack.c prices every
 * candidate encoding) at about 8.5 M samples/s on one core, below the
 * append rate.  Matters when writes outrun it for long: sealed chunks wait
 * in memory (pending lists grow) until it catches up; nothing is lost,
 * the WAL holds them.  Fix: pack on several threads, each taking a slice
 * of the dirty list, with one write transaction at the end.
 */
#define LOG_MODULE "store"
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tsdb/bytes.h"
#include "tsdb/chunk.h"
#include "tsdb/db_internal.h"
#include "tsdb/format.h"
#include "tsdb/log.h"

/* Decode room for merging two chunks; freed by the caller. */
struct merge_buf {
    int64_t *ts;
    double *vs;
    uint8_t *val;
};

static int merge_buf_init(struct merge_buf *m)
{
    m->ts = malloc(2 * GORILLA_MAX_SAMPLES * sizeof(*m->ts));
    m->vs = malloc(2 * GORILLA_MAX_SAMPLES * sizeof(*m->vs));
    m->val = malloc(TSDB_CHUNK_ENTRY_MAX);
    return m->ts && m->vs && m->val ? TSDB_OK : TSDB_ENOMEM;
}

static void merge_buf_release(struct merge_buf *m)
{
    free(m->ts);
    free(m->vs);
    free(m->val);
}

/* Positions cur on the newest stored entry of sid; TSDB_ENOTFOUND. */
static int seek_last_chunk(MDB_cursor *cur, uint64_t sid, MDB_val *k,
                           MDB_val *v)
{
    uint8_t key[TSDB_CHUNK_KEY_LEN];
    int rc;

    if (sid == UINT64_MAX)
        return TSDB_ENOTFOUND;
    tsdb_chunk_key(key, sid + 1, INT64_MIN);
    *k = (MDB_val){sizeof(key), key};
    rc = mdb_cursor_get(cur, k, v, MDB_SET_RANGE);
    if (rc == MDB_NOTFOUND)
        rc = mdb_cursor_get(cur, k, v, MDB_LAST);
    else if (rc == MDB_SUCCESS)
        rc = mdb_cursor_get(cur, k, v, MDB_PREV);
    if (rc != MDB_SUCCESS)
        return rc == MDB_NOTFOUND ? TSDB_ENOTFOUND : tsdb_mdb_error(rc);
    if (k->mv_size != TSDB_CHUNK_KEY_LEN || get_be64(k->mv_data) != sid)
        return TSDB_ENOTFOUND;
    return TSDB_OK;
}

int store_newest_time(struct tsdb *db, MDB_txn *txn, uint64_t sid,
                      int64_t *maxt)
{
    MDB_cursor *cur;
    MDB_val k, v;
    struct tsdb_chunk c;
    int rc;

    *maxt = INT64_MIN;
    if (mdb_cursor_open(txn, db->chunks, &cur) != MDB_SUCCESS)
        return TSDB_EIO;
    rc = seek_last_chunk(cur, sid, &k, &v);
    if (rc == TSDB_OK) {
        rc = tsdb_chunk_parse(sid, v.mv_data, v.mv_size, &c);
        if (rc == TSDB_OK)
            *maxt = c.maxt;
        else
            log_error("corrupt chunk of series %" PRIu64 " (newest)", sid);
    } else if (rc == TSDB_ENOTFOUND) {
        rc = TSDB_OK;
    }
    mdb_cursor_close(cur);
    return rc;
}

/* Counts a stored entry of len bytes that replaced one of old bytes. */
static void account(struct tsdb *db, size_t len, size_t old)
{
    atomic_fetch_add(&db->chunks_written, 1);
    atomic_fetch_add(&db->chunk_bytes, (int64_t)len - (int64_t)old);
}

/*
 * Stores ts/vs[0..n) of sid as new packed entries, halving the range until
 * each entry fits TSDB_CHUNK_ENTRY_MAX (a single sample always does).
 */
static int put_packed(struct tsdb *db, MDB_cursor *cur, uint64_t sid,
                      const int64_t *ts, const double *vs, uint32_t n,
                      uint8_t *buf)
{
    uint8_t key[TSDB_CHUNK_KEY_LEN];
    MDB_val k = {sizeof(key), key}, v;
    size_t len;
    int rc;

    rc = tsdb_chunk_build(sid, ts, vs, n, buf, TSDB_CHUNK_ENTRY_MAX, &len);
    if (rc == TSDB_EFULL && n > 1) {
        rc = put_packed(db, cur, sid, ts, vs, n / 2, buf);
        if (rc == TSDB_OK)
            rc = put_packed(db, cur, sid, ts + n / 2, vs + n / 2, n - n / 2,
                            buf);
        return rc;
    }
    if (rc != TSDB_OK)
        return rc;
    tsdb_chunk_key(key, sid, ts[0]);
    v = (MDB_val){len, buf};
    rc = mdb_cursor_put(cur, &k, &v, MDB_NOOVERWRITE);
    if (rc == MDB_KEYEXIST) {
        /* Invariant 1 would break: refuse rather than overwrite. */
        log_error("chunk of series %" PRIu64 " at %" PRId64
                  " is already stored",
                  sid, ts[0]);
        return TSDB_ECORRUPT;
    }
    if (rc == MDB_SUCCESS)
        account(db, len, 0);
    return tsdb_mdb_error(rc);
}

/*
 * Decodes the newest stored entry of sid into m->ts/vs if c may join it:
 * same aligned window of chunk_span_ms (which bounds what retention keeps
 * past its cutoff and what a short range read decodes), older than c, and
 * room for the count.  Returns its sample count, 0 if c goes alone; *old
 * gets the entry's size.
 */
static uint32_t load_tail(struct tsdb *db, MDB_cursor *cur, uint64_t sid,
                          const struct tsdb_chunk *c, struct merge_buf *m,
                          size_t *old)
{
    struct tsdb_chunk last;
    MDB_val k, v;

    if (seek_last_chunk(cur, sid, &k, &v) != TSDB_OK ||
        v.mv_size >= TSDB_CHUNK_ENTRY_MAX ||
        tsdb_chunk_parse(sid, v.mv_data, v.mv_size, &last) != TSDB_OK ||
        last.maxt >= c->mint || last.count + c->count > GORILLA_MAX_SAMPLES ||
        head_window(last.mint, db->opt.chunk_span_ms) !=
            head_window(c->mint, db->opt.chunk_span_ms) ||
        tsdb_chunk_decode(&last, m->ts, m->vs) != TSDB_OK)
        return 0;
    *old = v.mv_size;
    return last.count;
}

/*
 * Decodes chunks[i..) of one window after the tail already in m->ts/vs
 * (cnt samples), as far as they share c's window and fit the count limit.
 * Returns the index after the last one taken; *cnt grows.
 */
static uint32_t gather(struct tsdb *db, uint64_t sid,
                       struct head_chunk *const *chunks, uint32_t i, uint32_t n,
                       struct merge_buf *m, uint32_t *cnt, int *rc)
{
    int64_t window = head_window(chunks[i]->mint, db->opt.chunk_span_ms);
    struct tsdb_chunk c;

    for (*rc = TSDB_OK; i < n; i++) {
        if (head_window(chunks[i]->mint, db->opt.chunk_span_ms) != window ||
            *cnt + chunks[i]->count > GORILLA_MAX_SAMPLES)
            break;
        *rc = tsdb_chunk_parse(sid, chunks[i]->val, chunks[i]->len, &c);
        if (*rc == TSDB_OK)
            *rc = tsdb_chunk_decode(&c, m->ts + *cnt, m->vs + *cnt);
        if (*rc != TSDB_OK)
            break;
        *cnt += c.count;
    }
    return i;
}

/*
 * Stores the sealed chunks[0..n) of series sid, packed.  The chunks of one
 * window are packed together, merged into the newest stored entry when it
 * is of the same window and the result fits one entry, so entries grow
 * towards the size limit and the per-entry overhead (node, key, header)
 * stays small; whatever does not fit goes into new entries.  Each sample
 * is packed once per flush, plus the tail it joins.
 */
static int write_series(struct tsdb *db, MDB_cursor *cur, uint64_t sid,
                        struct head_chunk *const *chunks, uint32_t n,
                        struct merge_buf *m)
{
    uint8_t key[TSDB_CHUNK_KEY_LEN];
    MDB_val k = {sizeof(key), key}, v;
    struct tsdb_chunk first;
    uint32_t i = 0, tail, cnt;
    size_t old = 0, len;
    int rc = TSDB_OK;

    while (i < n && rc == TSDB_OK) {
        rc = tsdb_chunk_parse(sid, chunks[i]->val, chunks[i]->len, &first);
        if (rc != TSDB_OK)
            break;
        tail = cnt = load_tail(db, cur, sid, &first, m, &old);
        i = gather(db, sid, chunks, i, n, m, &cnt, &rc);
        if (rc != TSDB_OK)
            break;
        if (tail > 0 &&
            tsdb_chunk_build(sid, m->ts, m->vs, cnt, m->val,
                             TSDB_CHUNK_ENTRY_MAX, &len) == TSDB_OK) {
            tsdb_chunk_key(key, sid, m->ts[0]);
            v = (MDB_val){len, m->val};
            rc = tsdb_mdb_error(mdb_cursor_put(cur, &k, &v, 0));
            if (rc == TSDB_OK)
                account(db, len, old);
            continue;
        }
        rc = put_packed(db, cur, sid, m->ts + tail, m->vs + tail, cnt - tail,
                        m->val);
    }
    return rc;
}

/* What one flush took from one series: pending[0..n) at the time. */
struct flush_item {
    struct head_series *s;
    struct head_chunk **chunks; /* copy of the pointers */
    uint32_t n;
};

static void flush_items_free(struct flush_item *items, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(items[i].chunks);
    free(items);
}

/* Detaches the dirty list, marking its pending chunks in flight. */
static int take_dirty(struct tsdb *db, struct flush_item **out, size_t *n)
{
    struct head_series *s;
    struct flush_item *items;
    size_t count = 0, i = 0;

    pthread_mutex_lock(&db->head_lock);
    for (s = db->head.dirty; s; s = s->dirty_next)
        count++;
    items = calloc(count ? count : 1, sizeof(*items));
    if (!items) {
        pthread_mutex_unlock(&db->head_lock);
        return TSDB_ENOMEM;
    }
    for (s = db->head.dirty; s; s = s->dirty_next, i++) {
        items[i].s = s;
        items[i].n = s->npending;
        items[i].chunks = malloc((s->npending + 1) * sizeof(void *));
        if (!items[i].chunks) {
            items[i].n = 0;
            continue; /* stays pending; the next flush takes it */
        }
        memcpy(items[i].chunks, s->pending, s->npending * sizeof(void *));
        for (uint32_t j = 0; j < s->npending; j++)
            s->pending[j]->in_flight = true;
    }
    for (s = db->head.dirty; s; s = s->dirty_next)
        s->in_dirty = false;
    db->head.dirty = NULL;
    pthread_mutex_unlock(&db->head_lock);
    *out = items;
    *n = count;
    return TSDB_OK;
}

/* After the txn: drop what was written, or put it back on failure. */
static void finish_items(struct tsdb *db, struct flush_item *items, size_t n,
                         bool written)
{
    pthread_mutex_lock(&db->head_lock);
    for (size_t i = 0; i < n; i++) {
        struct head_series *s = items[i].s;
        if (written) {
            head_drop_pending(s, items[i].n);
            continue;
        }
        for (uint32_t j = 0; j < items[i].n; j++)
            items[i].chunks[j]->in_flight = false;
        if (s->npending > 0 && !s->in_dirty) {
            s->in_dirty = true;
            s->dirty_next = db->head.dirty;
            db->head.dirty = s;
        }
    }
    pthread_mutex_unlock(&db->head_lock);
}

const double tsdb_flush_bounds[TSDB_FLUSH_NBUCKETS - 1] = {
    0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1};

/* Adds one flush that took us microseconds to the figures. */
static void record_flush(struct tsdb *db, uint64_t us)
{
    int b = 0;

    while (b < TSDB_FLUSH_NBUCKETS - 1 &&
           (double)us / 1e6 > tsdb_flush_bounds[b])
        b++;
    atomic_fetch_add(&db->flush_buckets[b], 1);
    atomic_fetch_add(&db->flushes, 1);
    atomic_fetch_add(&db->flush_us, us);
}

static uint64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* Writes every sealed chunk; the caller holds flush_lock. */
static int flush_locked(struct tsdb *db)
{
    struct flush_item *items;
    struct merge_buf m = {0};
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    uint64_t start = mono_us();
    size_t n;
    int rc;

    rc = take_dirty(db, &items, &n);
    if (rc != TSDB_OK || n == 0) {
        if (rc == TSDB_OK)
            free(items);
        return rc;
    }
    rc = merge_buf_init(&m);
    if (rc == TSDB_OK)
        rc = tsdb_mdb_error(mdb_txn_begin(db->env, NULL, 0, &txn));
    if (rc == TSDB_OK)
        rc = tsdb_mdb_error(mdb_cursor_open(txn, db->chunks, &cur));
    for (size_t i = 0; i < n && rc == TSDB_OK; i++)
        rc = write_series(db, cur, items[i].s->id, items[i].chunks, items[i].n,
                          &m);
    if (cur)
        mdb_cursor_close(cur);
    if (rc == TSDB_OK)
        rc = tsdb_mdb_error(mdb_txn_commit(txn));
    else if (txn)
        mdb_txn_abort(txn);
    if (rc != TSDB_OK)
        log_error("writing %zu series' chunks failed, kept in memory: %s", n,
                  tsdb_strerror(rc));
    finish_items(db, items, n, rc == TSDB_OK);
    flush_items_free(items, n);
    merge_buf_release(&m);
    if (rc == TSDB_OK)
        record_flush(db, mono_us() - start);
    return rc;
}

int tsdb_flush(struct tsdb *db)
{
    int rc;

    if (db->opt.read_only)
        return TSDB_OK;
    pthread_mutex_lock(&db->flush_lock);
    rc = flush_locked(db);
    pthread_mutex_unlock(&db->flush_lock);
    return rc;
}

/* ---- checkpoint ---- */

/*
 * Writes s's open chunk as its head snapshot (or deletes the snapshot when
 * the open chunk is empty), under head_lock inside the checkpoint txn.
 */
static int snapshot_series(struct tsdb *db, MDB_txn *txn, struct head_series *s,
                           uint8_t *buf, size_t cap)
{
    uint8_t key[8];
    MDB_val k = {sizeof(key), key}, v;
    size_t len;
    int rc;

    put_be64(key, s->id);
    if (s->open.count == 0) {
        rc = mdb_del(txn, db->headdb, &k, NULL);
        return rc == MDB_NOTFOUND ? TSDB_OK : tsdb_mdb_error(rc);
    }
    rc = tsdb_chunk_build_raw(s->id, TSDB_CHUNK_ENC_GORILLA, s->open_mint,
                              s->maxt, s->open.count, s->open.buf,
                              gorilla_enc_len(&s->open), buf, cap, &len);
    if (rc != TSDB_OK)
        return rc;
    v.mv_data = buf;
    v.mv_size = len;
    return tsdb_mdb_error(mdb_put(txn, db->headdb, &k, &v, 0));
}

/* One pass over the head inside txn: snapshots plus chunks sealed since the
 * flush.  Holds head_lock for a slice of series at a time. */
static int checkpoint_head(struct tsdb *db, MDB_txn *txn, struct merge_buf *m)
{
    size_t cap = GORILLA_MAX_SAMPLES * 20 + TSDB_CHUNK_HEADER_MAX, id = 0;
    size_t end;
    uint8_t *buf = malloc(cap);
    MDB_cursor *cur;
    int rc = TSDB_OK;

    if (!buf)
        return TSDB_ENOMEM;
    if (mdb_cursor_open(txn, db->chunks, &cur) != MDB_SUCCESS) {
        free(buf);
        return TSDB_EIO;
    }
    for (;;) {
        pthread_mutex_lock(&db->head_lock);
        end = db->head.by_id_cap;
        for (size_t stop = id + 4096; id < end && id < stop && rc == 0; id++) {
            struct head_series *s = db->head.by_id[id];
            uint32_t j;
            if (!s)
                continue;
            rc = write_series(db, cur, s->id, s->pending, s->npending, m);
            if (rc == TSDB_OK)
                rc = snapshot_series(db, txn, s, buf, cap);
            /* Pending chunks were all written above (the flusher is
             * excluded by flush_lock), so they can go once the txn
             * commits; until then readers still need them: mark only. */
            for (j = 0; j < s->npending && rc == TSDB_OK; j++)
                s->pending[j]->in_flight = true;
        }
        pthread_mutex_unlock(&db->head_lock);
        if (id >= end || rc != TSDB_OK)
            break;
    }
    mdb_cursor_close(cur);
    free(buf);
    return rc;
}

/* After the checkpoint txn: drop written chunks, or unmark them. */
static void checkpoint_finish(struct tsdb *db, bool written)
{
    pthread_mutex_lock(&db->head_lock);
    for (size_t id = 0; id < db->head.by_id_cap; id++) {
        struct head_series *s = db->head.by_id[id];
        uint32_t n = 0;
        if (!s)
            continue;
        while (n < s->npending && s->pending[n]->in_flight)
            n++;
        if (written) {
            head_drop_pending(s, n);
        } else {
            for (uint32_t j = 0; j < n; j++)
                s->pending[j]->in_flight = false;
        }
    }
    pthread_mutex_unlock(&db->head_lock);
}

int tsdb_checkpoint(struct tsdb *db)
{
    struct merge_buf m = {0};
    MDB_txn *txn = NULL;
    uint64_t closed = 0;
    int rc;

    if (db->opt.read_only)
        return TSDB_EINVAL;
    pthread_mutex_lock(&db->flush_lock);

    /* Everything logged before this rotation must reach LMDB below. */
    pthread_mutex_lock(&db->head_lock);
    rc = tsdb_wal_rotate(db->wal, &closed);
    pthread_mutex_unlock(&db->head_lock);
    if (rc == TSDB_OK)
        rc = flush_locked(db);
    if (rc == TSDB_OK)
        rc = merge_buf_init(&m);
    if (rc == TSDB_OK)
        rc = tsdb_mdb_error(mdb_txn_begin(db->env, NULL, 0, &txn));
    if (rc == TSDB_OK) {
        rc = checkpoint_head(db, txn, &m);
        if (rc == TSDB_OK)
            rc = tsdb_mdb_error(mdb_txn_commit(txn));
        else
            mdb_txn_abort(txn);
        checkpoint_finish(db, rc == TSDB_OK);
    }
    if (rc == TSDB_OK)
        rc = tsdb_mdb_error(mdb_env_sync(db->env, 1));
    if (rc == TSDB_OK)
        rc = tsdb_wal_remove_upto(db->wal, closed);
    if (rc != TSDB_OK)
        log_error("checkpoint failed, WAL kept: %s", tsdb_strerror(rc));
    merge_buf_release(&m);
    pthread_mutex_unlock(&db->flush_lock);
    return rc;
}

/* ---- loading the head at open ---- */

/*
 * Rebuilds one series from its head snapshot record.  A snapshot can be
 * stale: after the checkpoint that wrote it, its open chunk may have been
 * sealed and flushed before a crash.  Samples at or before the series'
 * newest stored timestamp are therefore skipped, never stored twice.
 */
static int load_snapshot(struct tsdb *db, MDB_txn *txn, const MDB_val *k,
                         const MDB_val *v, int64_t *ts, double *vs)
{
    const uint8_t *enc;
    struct tsdb_chunk c;
    struct head_series *s;
    int64_t stored;
    uint64_t sid;
    size_t len;
    int rc;

    if (k->mv_size != 8)
        return TSDB_ECORRUPT;
    sid = get_be64(k->mv_data);
    rc = tsdb_chunk_parse(sid, v->mv_data, v->mv_size, &c);
    if (rc == TSDB_OK)
        rc = tsdb_chunk_decode(&c, ts, vs);
    if (rc == TSDB_OK)
        rc = tsdb_index_labels(&db->index, txn, sid, &enc, &len);
    if (rc == TSDB_OK)
        rc = store_newest_time(db, txn, sid, &stored);
    if (rc != TSDB_OK)
        return rc;
    rc = head_add(&db->head, sid, tsdb_labels_hash(enc, len), enc, len, stored,
                  &s);
    for (uint32_t i = 0; i < c.count && rc == TSDB_OK; i++)
        if (ts[i] > stored)
            rc = head_append(&db->head, s, ts[i], vs[i]);
    if (rc == TSDB_OK) {
        s->logged = true;
        s->indexed = true;
        if (s->maxt > db->max_time)
            db->max_time = s->maxt;
    }
    return rc;
}

int store_load_head(struct tsdb *db)
{
    int64_t *ts = malloc(GORILLA_MAX_SAMPLES * sizeof(*ts));
    double *vs = malloc(GORILLA_MAX_SAMPLES * sizeof(*vs));
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    uint64_t loaded = 0, bad = 0;
    int rc;

    if (!ts || !vs) {
        rc = TSDB_ENOMEM;
        goto out;
    }
    rc = tsdb_mdb_error(mdb_txn_begin(db->env, NULL, MDB_RDONLY, &txn));
    if (rc == TSDB_OK)
        rc = tsdb_mdb_error(mdb_cursor_open(txn, db->headdb, &cur));
    if (rc != TSDB_OK)
        goto out;
    for (int op = MDB_FIRST; mdb_cursor_get(cur, &k, &v, op) == 0;
         op = MDB_NEXT) {
        int lrc = load_snapshot(db, txn, &k, &v, ts, vs);
        if (lrc == TSDB_ENOMEM) {
            rc = lrc;
            break;
        }
        if (lrc != TSDB_OK)
            bad++;
        else
            loaded++;
    }
    if (bad)
        log_error("%" PRIu64 " head snapshots are corrupt and were skipped",
                  bad);
    log_info("loaded %" PRIu64 " open chunks from the last checkpoint", loaded);
out:
    if (cur)
        mdb_cursor_close(cur);
    if (txn)
        mdb_txn_abort(txn);
    free(ts);
    free(vs);
    return rc;
}

int tsdb_seal_all(struct tsdb *db)
{
    int rc = TSDB_OK;

    if (db->opt.read_only)
        return TSDB_EINVAL;
    pthread_mutex_lock(&db->head_lock);
    for (size_t id = 0; id < db->head.by_id_cap && rc == TSDB_OK; id++)
        if (db->head.by_id[id])
            rc = head_seal(&db->head, db->head.by_id[id]);
    pthread_mutex_unlock(&db->head_lock);
    return rc == TSDB_OK ? tsdb_flush(db) : rc;
}
