/*
 * Retention: deletes stored chunks whose newest sample is older than the
 * cutoff, then drops from the index the series left with no data.  Runs in
 * the background thread; each write txn deletes a bounded number of chunks
 * so that a writer (flusher, series creation) waits for at most one small
 * transaction, never for the whole pass.
 *
 * The cutoff is measured in data time (newest sample - retention), not the
 * wall clock, as Prometheus does: importing last year's data into a folder
 * with a 30-day retention keeps its newest 30 days.
 */
#define LOG_MODULE "retention"
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "tsdb/bytes.h"
#include "tsdb/chunk.h"
#include "tsdb/db_internal.h"
#include "tsdb/format.h"
#include "tsdb/log.h"
#include "tsdb/tier.h"

#define DELETES_PER_TXN 1000
#define SCANS_PER_TXN   20000

/* Where a pass resumes: the next entry at or after (sid, mint). */
struct resume {
    uint64_t sid;
    int64_t mint;
};

/* Positions cur on the first chunk at or after r; false at the end. */
static bool seek_from(MDB_cursor *cur, const struct resume *r, MDB_val *k,
                      MDB_val *v)
{
    uint8_t key[TSDB_CHUNK_KEY_LEN];

    tsdb_chunk_key(key, r->sid, r->mint);
    *k = (MDB_val){sizeof(key), key};
    return mdb_cursor_get(cur, k, v, MDB_SET_RANGE) == MDB_SUCCESS;
}

/*
 * One bounded slice of the pass, from r.  Entries of a series are in time
 * order, so the first one kept ends that series' scan.  Sets *done at the
 * end of the database, else leaves r where the next slice starts.
 */
static int delete_slice(struct tsdb *db, int64_t cutoff, struct resume *r,
                        bool *done, size_t *deleted)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    size_t steps = 0, dels = 0, bytes = 0;
    bool more;
    int rc;

    rc = tsdb_mdb_error(mdb_txn_begin(db->env, NULL, 0, &txn));
    if (rc != TSDB_OK)
        return rc;
    rc = tsdb_mdb_error(mdb_cursor_open(txn, db->chunks, &cur));
    if (rc != TSDB_OK) {
        mdb_txn_abort(txn);
        return rc;
    }
    *done = false;
    for (more = seek_from(cur, r, &k, &v); more && rc == TSDB_OK;) {
        struct tsdb_chunk c;

        if (k.mv_size != TSDB_CHUNK_KEY_LEN) {
            more = mdb_cursor_get(cur, &k, &v, MDB_NEXT) == MDB_SUCCESS;
            continue;
        }
        r->sid = get_be64(k.mv_data);
        r->mint = get_be64_signed((const uint8_t *)k.mv_data + 8);
        if (steps++ >= SCANS_PER_TXN || dels >= DELETES_PER_TXN)
            break;
        if (tsdb_chunk_parse(r->sid, v.mv_data, v.mv_size, &c) != TSDB_OK) {
            log_warn("corrupt chunk of series %" PRIu64 " skipped by retention",
                     r->sid);
            more = mdb_cursor_get(cur, &k, &v, MDB_NEXT) == MDB_SUCCESS;
            continue;
        }
        if (c.maxt >= cutoff) {
            /* This and every later chunk of the series stay. */
            if (r->sid == UINT64_MAX) {
                more = false;
                break;
            }
            r->sid++;
            r->mint = INT64_MIN;
            more = seek_from(cur, r, &k, &v);
            continue;
        }
        bytes += v.mv_size;
        rc = tsdb_mdb_error(mdb_cursor_del(cur, 0));
        dels++;
        more = rc == TSDB_OK && seek_from(cur, r, &k, &v);
    }
    if (!more)
        *done = true;
    mdb_cursor_close(cur);
    if (rc == TSDB_OK)
        rc = tsdb_mdb_error(mdb_txn_commit(txn));
    else
        mdb_txn_abort(txn);
    if (rc == TSDB_OK) {
        *deleted += dels;
        atomic_fetch_sub(&db->chunk_bytes, (int64_t)bytes);
    }
    return rc;
}

/* Does sid still have a stored chunk or a head snapshot? */
static bool has_data(struct tsdb *db, MDB_txn *txn, MDB_cursor *cur,
                     uint64_t sid)
{
    uint8_t key[TSDB_CHUNK_KEY_LEN];
    MDB_val k = {sizeof(key), key}, v;

    tsdb_chunk_key(key, sid, INT64_MIN);
    if (mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE) == MDB_SUCCESS &&
        k.mv_size == TSDB_CHUNK_KEY_LEN && get_be64(k.mv_data) == sid)
        return true;
    k = (MDB_val){8, key};
    put_be64(key, sid);
    if (mdb_get(txn, db->headdb, &k, &v) == MDB_SUCCESS)
        return true;
    /* A tier kept longer than raw data still answers for the series. */
    return tier_has_data(db, txn, sid);
}

/*
 * Removes from the index every series with no stored data that the head
 * does not hold either.  Lock order: write txn, then head_lock.
 */
static int drop_empty_series(struct tsdb *db, size_t *dropped)
{
    struct tsdb_ids gone = {0};
    MDB_txn *txn;
    MDB_cursor *series, *chunks;
    MDB_val k, v;
    int rc;

    rc = tsdb_mdb_error(mdb_txn_begin(db->env, NULL, 0, &txn));
    if (rc != TSDB_OK)
        return rc;
    if (mdb_cursor_open(txn, db->index.series, &series) != MDB_SUCCESS ||
        mdb_cursor_open(txn, db->chunks, &chunks) != MDB_SUCCESS) {
        mdb_txn_abort(txn);
        return TSDB_EIO;
    }
    pthread_mutex_lock(&db->head_lock);
    for (int op = MDB_FIRST; mdb_cursor_get(series, &k, &v, op) == 0;
         op = MDB_NEXT) {
        uint64_t sid = k.mv_size == 8 ? get_be64(k.mv_data) : 0;
        if (sid == 0 || head_get(&db->head, sid) ||
            has_data(db, txn, chunks, sid))
            continue;
        if (tsdb_ids_push(&gone, sid) != TSDB_OK) {
            rc = TSDB_ENOMEM;
            break;
        }
    }
    mdb_cursor_close(series);
    mdb_cursor_close(chunks);
    for (size_t i = 0; i < gone.n && rc == TSDB_OK; i++)
        rc = tsdb_index_remove(&db->index, txn, gone.v[i]);
    pthread_mutex_unlock(&db->head_lock);
    if (rc == TSDB_OK)
        rc = tsdb_mdb_error(mdb_txn_commit(txn));
    else
        mdb_txn_abort(txn);
    if (rc == TSDB_OK)
        *dropped = gone.n;
    tsdb_ids_release(&gone);
    return rc;
}

int tsdb_retention_run(struct tsdb *db, int64_t cutoff, size_t *deleted)
{
    struct resume r = {0, INT64_MIN};
    bool done = false;
    size_t count = 0, dropped = 0;
    int rc = TSDB_OK;

    if (db->opt.read_only)
        return TSDB_EINVAL;
    while (!done && rc == TSDB_OK)
        rc = delete_slice(db, cutoff, &r, &done, &count);
    if (rc == TSDB_OK && count > 0)
        rc = drop_empty_series(db, &dropped);
    atomic_fetch_add(&db->chunks_deleted, count);
    if (rc != TSDB_OK)
        log_warn("retention pass stopped: %s", tsdb_strerror(rc));
    else if (count > 0)
        log_info("retention deleted %zu chunks ending before %" PRId64
                 " and %zu series left without data",
                 count, cutoff, dropped);
    if (deleted)
        *deleted = count;
    return rc;
}
