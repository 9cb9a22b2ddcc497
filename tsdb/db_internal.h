/*
 * The database handle, shared by db.c (open, close, appends, recovery),
 * store.c (chunk writes, checkpoints, retention) and query.c (reads).
 * Not a public header: code outside tsdb/ uses db.h.
 *
 * Lock order, to rule out deadlock: flush_lock, then an LMDB write txn,
 * then head_lock.  Nobody begins an LMDB write txn while holding head_lock.
 */
#ifndef TSDB_DB_INTERNAL_H
#define TSDB_DB_INTERNAL_H

#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>

#include "tsdb/db.h"
#include "tsdb/guard.h"
#include "tsdb/head.h"
#include "tsdb/index.h"
#include "tsdb/wal.h"

struct tsdb {
    struct tsdb_options opt;
    char *dir;
    char *wal_dir;
    int lock_fd; /* flock on DIR/LOCK held by the one writer */

    MDB_env *env;
    MDB_dbi meta;
    MDB_dbi chunks; /* storage-format.md "chunks" */
    MDB_dbi headdb; /* storage-format.md "head" */
    MDB_dbi tiers;  /* storage-format.md "tiers" */
    struct tsdb_index index;

    struct head head;
    pthread_mutex_t head_lock;  /* head, wal writes, stats below */
    pthread_mutex_t flush_lock; /* one flusher or checkpointer at a time */
    struct tsdb_wal *wal;       /* NULL when read_only */
    uint64_t commit_gen;

    pthread_t maint;
    bool maint_running;
    bool stopping;
    pthread_mutex_t maint_lock;
    pthread_cond_t maint_wake;

    /* Figures for tsdb_stats_get, written under head_lock. */
    int64_t max_time;
    uint64_t samples_appended;
    uint64_t rejected_ooo;
    uint64_t rejected_conflict;
    uint64_t rejected_bounds;
    atomic_uint_fast64_t chunks_written;
    atomic_int_fast64_t chunk_bytes; /* net: added minus replaced */
    atomic_uint_fast64_t chunks_deleted;
    atomic_uint_fast64_t flushes;
    atomic_uint_fast64_t flush_us; /* total flush time, microseconds */
    atomic_uint_fast64_t flush_buckets[TSDB_FLUSH_NBUCKETS];

    struct tsdb_guard *guard; /* cardinality rules and counts (guard.c) */
    struct tier_state *tier;  /* downsampled tiers (tier_build.c); NULL off */

    /* The commit observer (tsdb_set_commit_observer).  observe_lock is
     * taken before head_lock by an observed commit and held until the
     * observer returns, so the observer sees commits in head order. */
    pthread_mutex_t observe_lock;
    tsdb_commit_observer observer;
    void *observer_ctx;
};

/* store.c */
int store_newest_time(struct tsdb *db, MDB_txn *txn, uint64_t sid,
                      int64_t *maxt);
int store_load_head(struct tsdb *db);

#endif
