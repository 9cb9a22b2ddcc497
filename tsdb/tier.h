/*
 * Downsampled tiers, internal to tsdb/: the bucket maths and the block
 * codec (tier.c, pure), the `tiers` database (tier_store.c), the
 * downsampler that keeps each tier's horizon (tier_build.c), its handling
 * of samples written at or before a horizon (tier_late.c) and the reader
 * behind tsdb_tier_query_* (tier_query.c).  The public side is the
 * "downsampled tiers" section of db.h; the bytes are storage-format.md
 * section "tiers".
 *
 * Invariants:
 * 1. A bucket of width w holds the samples with time in (end - w, end],
 *    end a multiple of w; stale markers are never counted.
 * 2. For every series and tier, the stored buckets with end <= the
 *    tier's horizon H equal what tier_summarize gives on the series' raw
 *    samples, except for samples written with a time <= H after the pass
 *    that covered them, until the next pass re-summarises those buckets.
 * 3. Only buckets with count > 0 are stored; blocks with none are deleted.
 */
#ifndef TSDB_TIER_H
#define TSDB_TIER_H

#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tsdb/db.h"

/* Buckets per block: 64 buckets of a counter encode to 1 to 2 KB, so
 * a block stays inside one LMDB leaf node (see TSDB_CHUNK_ENTRY_MAX). */
#define TIER_BLOCK_BUCKETS 64
/* Key: width (u64 BE), series id (u64 BE), block start (i64 key). */
#define TIER_KEY_LEN 24
/* The largest block: 64 buckets of three varints, a flag byte and six
 * values of at most nine bytes. */
#define TIER_BLOCK_MAX (2 + TIER_BLOCK_BUCKETS * (30 + 1 + 6 * 9))

/* ---- tier.c: pure ---- */

/* The end of the bucket of width w that holds time t. */
int64_t tier_bucket_end(int64_t t, int64_t w);

/* The start (first bucket end) of the block holding bucket end. */
int64_t tier_block_start(int64_t end, int64_t w);

/* Adds sample (t, v) to b, which is empty (count 0, end set) or holds
 * older samples of the same bucket.  v is not a stale marker. */
void tier_bucket_add(struct tsdb_bucket *b, int64_t t, double v);

/* Folds b's sum compensation into its sum, as stored and read back. */
void tier_bucket_finish(struct tsdb_bucket *b);

/* A growable list of buckets, ascending by end. */
struct tier_buckets {
    struct tsdb_bucket *v;
    size_t n, cap;
};

void tier_buckets_release(struct tier_buckets *l);

/*
 * Summarises the ascending samples t/v[0..n) into buckets of width w,
 * appended to out (the first sample's bucket is merged into out's last
 * bucket when they share an end, so batches of one series may be fed in
 * turn).  Stale markers are skipped.  The buckets are not finished
 * (tier_bucket_finish).  TSDB_OK or TSDB_ENOMEM.
 */
int tier_summarize(int64_t w, const int64_t *t, const double *v, size_t n,
                   struct tier_buckets *out);

/* Writes the `tiers` key of a block. */
void tier_key(uint8_t *key, int64_t w, uint64_t sid, int64_t block_start);

/*
 * Encodes b[0..n) (1 <= n, ends ascending, all in the block starting at
 * block_start) into out[0..TIER_BLOCK_MAX).  Returns the length.
 */
size_t tier_block_encode(const struct tsdb_bucket *b, size_t n,
                         int64_t block_start, int64_t w, uint8_t *out);

/*
 * Decodes a block into out (room for TIER_BLOCK_BUCKETS).  Returns
 * TSDB_OK with *n, or TSDB_ECORRUPT for any malformed byte.
 */
int tier_block_decode(const uint8_t *p, size_t len, int64_t block_start,
                      int64_t w, struct tsdb_bucket *out, size_t *n);

/* ---- tier_store.c: the `tiers` database and horizons in `meta` ----
 *
 * Each returns TSDB_OK or the mapped LMDB error (TSDB_EIO, TSDB_EMAPFULL,
 * TSDB_ECORRUPT for a malformed horizon or block, logged), and
 * tier_store_read also TSDB_ENOMEM.  Writes go into the caller's write
 * txn, which commits or aborts them.
 */

/* The horizon of the tier of width w as of txn; INT64_MIN if none. */
int tier_horizon_get(struct tsdb *db, MDB_txn *txn, int64_t w, int64_t *h);
int tier_horizon_put(struct tsdb *db, MDB_txn *txn, int64_t w, int64_t h);

/* Appends series sid's stored buckets with end in [mint, maxt] to out
 * (copies: nothing points into LMDB afterwards). */
int tier_store_read(struct tsdb *db, MDB_cursor *cur, int64_t w, uint64_t sid,
                    int64_t mint, int64_t maxt, struct tier_buckets *out);

/*
 * Replaces series sid's stored buckets with end in (from, to] by
 * b[0..n) (ends ascending, all in that range), block by block.  from
 * INT64_MIN starts at the series' first stored block.  A block that does
 * not decode is rebuilt from b alone.
 */
int tier_store_replace(struct tsdb *db, MDB_txn *txn, int64_t w, uint64_t sid,
                       int64_t from, int64_t to, const struct tsdb_bucket *b,
                       size_t n);

/* Does series sid have a block in any configured tier? */
bool tier_has_data(struct tsdb *db, MDB_txn *txn, uint64_t sid);

/* Deletes the blocks of tier w whose every bucket ends before cutoff, a
 * bounded number per write txn.  *deleted counts blocks. */
int tier_store_expire(struct tsdb *db, int64_t w, int64_t cutoff,
                      size_t *deleted);

/* ---- tier_build.c: the downsampler ---- */

/* Per-database tier state; created by tier_open after recovery. */
struct tier_state {
    size_t n; /* tiers; spec and n are fixed after tier_open */
    struct tsdb_tier_spec spec[TSDB_TIERS_MAX];
    pthread_mutex_t lock; /* one pass at a time; guards the next three */
    int64_t *seen;        /* by series id; INT64_MIN: never observed */
    size_t seen_cap;
    int64_t last_expire; /* monotonic ms of the last tier retention */

    /* The background thread; stopping is under wake_lock. */
    pthread_t thread;
    bool running;
    bool stopping;
    pthread_mutex_t wake_lock;
    pthread_cond_t wake;

    /* Figures, also read outside the lock. */
    atomic_int_fast64_t horizon[TSDB_TIERS_MAX];
    atomic_int_fast64_t bytes[TSDB_TIERS_MAX];
    atomic_uint_fast64_t written[TSDB_TIERS_MAX];
    atomic_uint_fast64_t reads[TSDB_TIERS_MAX];
};

/* Helpers of a pass, shared by tier_build.c and tier_late.c. */
int tier_summarize_query(struct tsdb_query *q, int64_t w,
                         struct tier_buckets *out);
int tier_txn_begin(struct tsdb *db, MDB_txn **txn); /* no-op if open */
int tier_txn_commit(MDB_txn **txn);                 /* no-op if NULL */
bool tier_stopping(struct tsdb *db);

/* ---- tier_late.c: samples written at or before a horizon ---- */

/* Grows seen[] to want ids, new entries INT64_MIN.  TSDB_ENOMEM. */
int tier_seen_grow(struct tier_state *ts, size_t want);
/* Summarises again the series that wrote at or before a horizon since
 * the last pass.  TSDB_OK or a storage error (retried next pass). */
int tier_redo_late(struct tsdb *db);

/* Checks the tier options (TSDB_EINVAL, logged), loads horizons and
 * sizes, and notes what the head holds.  TSDB_OK with tiers off too. */
int tier_open(struct tsdb *db);
/* Starts the background downsampler (not for read-only handles). */
int tier_start(struct tsdb *db);
/* Stops the downsampler and frees the state; NULL state is fine. */
void tier_close(struct tsdb *db);

/* Tiers configured (0 when off), and the width of tier i < that. */
size_t tier_count(struct tsdb *db);
int64_t tier_width(struct tsdb *db, size_t i);

/* Counters shared with tier_query.c and tier_store.c. */
void tier_count_read(struct tsdb *db, size_t i);
void tier_count_bytes(struct tsdb *db, int64_t w, int64_t delta);

#endif
