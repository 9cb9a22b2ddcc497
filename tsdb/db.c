/*
 * The database: opening a data folder (format check, head snapshot, WAL
 * replay), the background thread (flush, checkpoint, retention) and
 * figures.  Layer: public API (db.h) over head.c, wal.c, store.c,
 * retention.c and index.c; the append path is in appender.c.
 *
 * Recovery replays the WAL on top of the last checkpoint.  Since the WAL
 * holds each series' samples in the order the head accepted them, a sample
 * at or before the series' newest stored timestamp is already in LMDB and
 * is skipped: every acknowledged sample ends up stored exactly once.
 */
#define LOG_MODULE "tsdb"
#include "tsdb/db.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tsdb/bytes.h"
#include "tsdb/compact.h"
#include "tsdb/db_internal.h"
#include "tsdb/format.h"
#include "tsdb/log.h"
#include "tsdb/tier.h"

#define WAL_SEGMENT_MAX (128u << 20)

void tsdb_options_init(struct tsdb_options *o)
{
    memset(o, 0, sizeof(*o));
    o->dir = "data";
    o->map_size = (size_t)64 << 30;
    o->wal_sync_ms = 1000;
    o->chunk_samples = 120;
    o->chunk_span_ms = 2 * 3600 * 1000;
    o->flush_interval_ms = 1000;
    o->checkpoint_interval_ms = 300000;
    o->max_series = 5000000;
    o->ntiers = 2;
    o->tiers[0] = (struct tsdb_tier_spec){5 * 60 * 1000, 0};
    o->tiers[1] = (struct tsdb_tier_spec){3600 * 1000, 0};
    /* Longer than common scrape intervals, so that a series is rarely
     * behind the horizon (which costs it a raw re-read at every pass). */
    o->tier_settle_ms = 5 * 60 * 1000;
    o->tier_interval_ms = 10 * 1000;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- replay ---- */

struct replay {
    struct tsdb *db;
    MDB_txn *txn; /* read snapshot for index and chunk lookups */
    uint64_t samples;
    uint64_t skipped; /* already stored before the crash */
    uint64_t orphans; /* samples of a series nobody recorded */
    uint64_t series;
};

/* Loads series id from the index into the head; NULL if unknown. */
static struct head_series *load_from_index(struct tsdb *db, MDB_txn *txn,
                                           uint64_t id)
{
    struct head_series *s;
    const uint8_t *enc;
    size_t len;
    int64_t maxt;

    if (tsdb_index_labels(&db->index, txn, id, &enc, &len) != TSDB_OK ||
        store_newest_time(db, txn, id, &maxt) != TSDB_OK ||
        head_add(&db->head, id, tsdb_labels_hash(enc, len), enc, len, maxt,
                 &s) != TSDB_OK)
        return NULL;
    return s;
}

static int replay_series(struct replay *r, const uint8_t *p, size_t len)
{
    const uint8_t *end = p + len;
    struct head_series *s;
    struct tsdb_labels ls;
    uint64_t id, n;
    int64_t maxt;

    while (p < end) {
        if (varint_get(&p, end, &id) || varint_get(&p, end, &n) ||
            n > (size_t)(end - p) || id == 0)
            return TSDB_ECORRUPT;
        if (!head_get(&r->db->head, id)) {
            if (tsdb_labels_decode(p, n, &ls) != TSDB_OK)
                return TSDB_ECORRUPT;
            tsdb_labels_release(&ls);
            if (store_newest_time(r->db, r->txn, id, &maxt) != TSDB_OK ||
                head_add(&r->db->head, id, tsdb_labels_hash(p, n), p, n, maxt,
                         &s) != TSDB_OK)
                return TSDB_ENOMEM;
            r->series++;
        }
        p += n;
    }
    return TSDB_OK;
}

static int replay_samples(struct replay *r, const uint8_t *p, size_t len)
{
    const uint8_t *end = p + len;
    uint64_t id = 0, d;
    int64_t t = 0;

    while (p < end) {
        struct head_series *s;
        double v;

        if (varint_get(&p, end, &d))
            return TSDB_ECORRUPT;
        id += (uint64_t)zigzag_dec(d);
        if (varint_get(&p, end, &d) || end - p < 8)
            return TSDB_ECORRUPT;
        t += zigzag_dec(d);
        v = bits_double(get_be64(p));
        p += 8;

        s = head_get(&r->db->head, id);
        if (!s)
            s = load_from_index(r->db, r->txn, id);
        if (!s) {
            r->orphans++;
            continue;
        }
        if (t <= s->maxt) {
            r->skipped++;
            continue;
        }
        if (head_append(&r->db->head, s, t, v) != TSDB_OK)
            return TSDB_ENOMEM;
        s->logged = true;
        if (t > r->db->max_time)
            r->db->max_time = t;
        r->samples++;
    }
    return TSDB_OK;
}

static int replay_record(void *ctx, uint8_t type, const uint8_t *p, size_t len)
{
    if (type == TSDB_WAL_REC_SERIES)
        return replay_series(ctx, p, len);
    if (type == TSDB_WAL_REC_SAMPLES)
        return replay_samples(ctx, p, len);
    log_warn("unknown WAL record type %u skipped", type);
    return TSDB_OK;
}

/* Adds every head series to the index (replayed ones may be missing). */
static int index_head(struct tsdb *db)
{
    MDB_txn *txn;
    int rc = tsdb_mdb_error(mdb_txn_begin(db->env, NULL, 0, &txn));

    for (size_t id = 0; id < db->head.by_id_cap && rc == TSDB_OK; id++) {
        struct head_series *s = db->head.by_id[id];
        if (s && !s->indexed)
            rc = tsdb_index_add(&db->index, txn, s->id, s->labels,
                                s->labels_len);
    }
    if (rc == TSDB_OK)
        rc = tsdb_mdb_error(mdb_txn_commit(txn));
    else if (txn)
        mdb_txn_abort(txn);
    for (size_t id = 0; id < db->head.by_id_cap && rc == TSDB_OK; id++)
        if (db->head.by_id[id])
            db->head.by_id[id]->indexed = true;
    return rc;
}

static int recover(struct tsdb *db, uint64_t *last_seq)
{
    struct replay r = {.db = db};
    struct tsdb_wal_replay_stats st;
    int64_t start = now_ms();
    int rc;

    rc = store_load_head(db);
    if (rc != TSDB_OK)
        return rc;
    rc = tsdb_mdb_error(mdb_txn_begin(db->env, NULL, MDB_RDONLY, &r.txn));
    if (rc != TSDB_OK)
        return rc;
    rc = tsdb_wal_replay(db->wal_dir, replay_record, &r, &st);
    mdb_txn_abort(r.txn);
    if (rc != TSDB_OK) {
        log_error("WAL replay failed in '%s': %s", db->wal_dir,
                  tsdb_strerror(rc));
        return rc;
    }
    *last_seq = st.last_seq;
    if (st.segments > 0)
        log_info("replayed WAL: %" PRIu64 " segments, %" PRIu64
                 " records, %" PRIu64 " samples restored, %" PRIu64
                 " already stored, %" PRIu64 " series, %" PRIu64
                 " torn bytes cut, %" PRId64 " ms",
                 st.segments, st.records, r.samples, r.skipped, r.series,
                 st.torn_bytes, now_ms() - start);
    if (r.orphans > 0)
        log_error("%" PRIu64 " WAL samples name a series that is in no "
                  "series record nor the index; skipped",
                  r.orphans);
    return index_head(db);
}

/* ---- open and close ---- */

static int open_env(struct tsdb *db)
{
    char *path;
    unsigned flags = MDB_NOSUBDIR | MDB_NOSYNC | MDB_NOTLS;
    int rc;

    if (asprintf(&path, "%s/data.mdb", db->dir) < 0)
        return TSDB_ENOMEM;
    if (db->opt.read_only)
        flags |= MDB_RDONLY;
    rc = mdb_env_create(&db->env);
    if (rc == MDB_SUCCESS)
        rc = mdb_env_set_maxdbs(db->env, 16);
    if (rc == MDB_SUCCESS)
        rc = mdb_env_set_mapsize(db->env, db->opt.map_size);
    if (rc == MDB_SUCCESS)
        rc = mdb_env_set_maxreaders(db->env, 512);
    if (rc == MDB_SUCCESS)
        rc = mdb_env_open(db->env, path, flags, 0644);
    if (rc != MDB_SUCCESS)
        log_error("cannot open '%s': %s", path, mdb_strerror(rc));
    free(path);
    if (rc == ENOENT)
        return TSDB_ENOTFOUND;
    return tsdb_mdb_error(rc);
}

static int open_dbs(struct tsdb *db)
{
    unsigned create = db->opt.read_only ? 0 : MDB_CREATE;
    uint8_t ver[4];
    MDB_val k = {strlen(TSDB_META_VERSION), TSDB_META_VERSION}, v;
    MDB_txn *txn;
    int rc;

    rc = mdb_txn_begin(db->env, NULL, db->opt.read_only ? MDB_RDONLY : 0, &txn);
    if (rc != MDB_SUCCESS)
        return tsdb_mdb_error(rc);
    rc = mdb_dbi_open(txn, TSDB_DB_META, create, &db->meta);
    if (rc == MDB_SUCCESS)
        rc = mdb_dbi_open(txn, TSDB_DB_CHUNKS, create, &db->chunks);
    if (rc == MDB_SUCCESS)
        rc = mdb_dbi_open(txn, TSDB_DB_HEAD, create, &db->headdb);
    /* Folders from before the tiers get an empty one; read-only handles
     * of such a folder go without. */
    if (rc == MDB_SUCCESS) {
        rc = mdb_dbi_open(txn, TSDB_DB_TIERS, create, &db->tiers);
        if (rc == MDB_NOTFOUND && db->opt.read_only) {
            db->opt.ntiers = 0;
            rc = MDB_SUCCESS;
        }
    }
    rc = tsdb_mdb_error(rc);
    if (rc == TSDB_OK)
        rc = tsdb_index_open(&db->index, txn);
    if (rc == TSDB_OK && mdb_get(txn, db->meta, &k, &v) == MDB_SUCCESS) {
        if (v.mv_size != 4 || get_be32(v.mv_data) != TSDB_FORMAT_VERSION) {
            log_error("'%s' holds format version %u; this build reads %d",
                      db->dir, v.mv_size == 4 ? get_be32(v.mv_data) : 0,
                      TSDB_FORMAT_VERSION);
            rc = TSDB_EVERSION;
        }
    } else if (rc == TSDB_OK && !db->opt.read_only) {
        put_be32(ver, TSDB_FORMAT_VERSION);
        v.mv_data = ver;
        v.mv_size = sizeof(ver);
        rc = tsdb_mdb_error(mdb_put(txn, db->meta, &k, &v, 0));
    }
    if (rc == TSDB_OK)
        rc = tsdb_mdb_error(mdb_txn_commit(txn));
    else
        mdb_txn_abort(txn);
    return rc;
}

static int lock_dir(struct tsdb *db)
{
    char *path;

    if (asprintf(&path, "%s/LOCK", db->dir) < 0)
        return TSDB_ENOMEM;
    db->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    free(path);
    if (db->lock_fd < 0)
        return TSDB_EIO;
    if (flock(db->lock_fd, LOCK_EX | LOCK_NB) < 0) {
        log_error("data folder '%s' is in use by another writer", db->dir);
        return TSDB_ELOCKED;
    }
    return TSDB_OK;
}

static void *maint_main(void *arg);
static uint64_t stored_chunk_bytes(struct tsdb *db);

static int start(struct tsdb *db)
{
    uint64_t last_seq = 0;
    int rc;

    rc = recover(db, &last_seq);
    if (rc == TSDB_OK)
        rc = tsdb_wal_open(db->wal_dir, last_seq + 1, db->opt.wal_sync_ms,
                           WAL_SEGMENT_MAX, &db->wal);
    /* Replayed samples go to LMDB now, so the old segments can go. */
    if (rc == TSDB_OK)
        rc = tsdb_checkpoint(db);
    if (rc == TSDB_OK) {
        if (pthread_create(&db->maint, NULL, maint_main, db) != 0)
            return TSDB_ENOMEM;
        db->maint_running = true;
    }
    return rc;
}

int tsdb_open(const struct tsdb_options *o, struct tsdb **out)
{
    struct tsdb *db = calloc(1, sizeof(*db));
    int rc;

    if (!db)
        return TSDB_ENOMEM;
    db->opt = *o;
    db->lock_fd = -1;
    db->max_time = INT64_MIN;
    pthread_mutex_init(&db->head_lock, NULL);
    pthread_mutex_init(&db->flush_lock, NULL);
    pthread_mutex_init(&db->maint_lock, NULL);
    pthread_mutex_init(&db->observe_lock, NULL);
    pthread_cond_init(&db->maint_wake, NULL);
    db->dir = strdup(o->dir);
    db->opt.compact_on_close = false; /* until the open succeeds */
    if (!db->dir || asprintf(&db->wal_dir, "%s/wal", o->dir) < 0) {
        rc = TSDB_ENOMEM;
        goto fail;
    }
    db->opt.dir = db->dir;
    if (o->chunk_samples == 0 || o->chunk_samples > GORILLA_MAX_SAMPLES ||
        o->chunk_span_ms <= 0 || o->flush_interval_ms <= 0) {
        rc = TSDB_EINVAL;
        goto fail;
    }
    if (!o->read_only && mkdir(o->dir, 0755) < 0 && errno != EEXIST) {
        log_error("cannot create data folder '%s': %s", o->dir,
                  strerror(errno));
        rc = TSDB_EIO;
        goto fail;
    }
    rc = o->read_only ? TSDB_OK : lock_dir(db);
    if (rc == TSDB_OK)
        rc = open_env(db);
    if (rc == TSDB_OK)
        rc = open_dbs(db);
    if (rc == TSDB_OK)
        rc = head_init(&db->head, o->chunk_samples, o->chunk_span_ms);
    if (rc == TSDB_OK)
        rc = o->read_only ? store_load_head(db) : start(db);
    /* After replay, so that the index holds every series to count. */
    if (rc == TSDB_OK)
        rc = tsdb_guard_open(db);
    if (rc == TSDB_OK)
        rc = tier_open(db);
    if (rc == TSDB_OK)
        rc = tier_start(db);
    if (rc != TSDB_OK)
        goto fail;
    atomic_store(&db->chunk_bytes, (int64_t)stored_chunk_bytes(db));
    db->opt.compact_on_close = o->compact_on_close;
    log_info("opened '%s': %zu active series, retention %" PRId64
             " ms, WAL fsync every %d ms%s",
             db->dir, db->head.count, o->retention_ms, o->wal_sync_ms,
             o->read_only ? ", read-only" : "");
    *out = db;
    return TSDB_OK;

fail:
    db->opt.read_only = true; /* nothing to flush on the way out */
    tsdb_close(db);
    return rc;
}

/* Compacts the closed folder, logging what it gained. */
static void compact_closed(const char *dir)
{
    uint64_t before = 0, after = 0;
    int rc = tsdb_compact(dir, &before, &after);

    if (rc == TSDB_OK && after < before)
        log_info("compacted '%s/data.mdb': %" PRIu64 " -> %" PRIu64 " bytes",
                 dir, before, after);
    else if (rc == TSDB_OK)
        log_info("'%s/data.mdb' is already compact (%" PRIu64 " bytes)", dir,
                 before);
    else
        log_warn("compaction of '%s' skipped: %s", dir, tsdb_strerror(rc));
}

int tsdb_close(struct tsdb *db)
{
    bool compact = db && db->opt.compact_on_close && !db->opt.read_only;
    int rc = TSDB_OK;

    if (!db)
        return TSDB_OK;
    tier_close(db);
    if (db->maint_running) {
        pthread_mutex_lock(&db->maint_lock);
        db->stopping = true;
        pthread_cond_signal(&db->maint_wake);
        pthread_mutex_unlock(&db->maint_lock);
        pthread_join(db->maint, NULL);
    }
    pthread_mutex_lock(&db->head_lock);
    db->stopping = true;
    pthread_mutex_unlock(&db->head_lock);
    if (db->wal && !db->opt.read_only)
        rc = tsdb_checkpoint(db);
    tsdb_wal_close(db->wal);
    if (db->env)
        mdb_env_close(db->env);
    head_release(&db->head);
    tsdb_guard_free(db->guard);
    /* Compaction takes the writer lock itself, so ours goes first. */
    if (db->lock_fd >= 0)
        close(db->lock_fd);
    if (compact && rc == TSDB_OK)
        compact_closed(db->dir);
    pthread_mutex_destroy(&db->head_lock);
    pthread_mutex_destroy(&db->flush_lock);
    pthread_mutex_destroy(&db->maint_lock);
    pthread_mutex_destroy(&db->observe_lock);
    pthread_cond_destroy(&db->maint_wake);
    free(db->dir);
    free(db->wal_dir);
    free(db);
    return rc;
}

/* ---- background work ---- */

static void *maint_main(void *arg)
{
    struct tsdb *db = arg;
    int64_t last_checkpoint = now_ms(), last_retention = now_ms();
    struct timespec until;

    pthread_mutex_lock(&db->maint_lock);
    while (!db->stopping) {
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += db->opt.flush_interval_ms / 1000;
        until.tv_nsec += (long)(db->opt.flush_interval_ms % 1000) * 1000000;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&db->maint_wake, &db->maint_lock, &until);
        if (db->stopping)
            break;
        pthread_mutex_unlock(&db->maint_lock);

        tsdb_flush(db);
        if (now_ms() - last_checkpoint >= db->opt.checkpoint_interval_ms) {
            tsdb_checkpoint(db);
            last_checkpoint = now_ms();
        }
        if (db->opt.retention_ms > 0 && now_ms() - last_retention >= 60000) {
            int64_t newest;
            pthread_mutex_lock(&db->head_lock);
            newest = db->max_time;
            pthread_mutex_unlock(&db->head_lock);
            if (newest != INT64_MIN)
                tsdb_retention_run(db, newest - db->opt.retention_ms, NULL);
            last_retention = now_ms();
        }
        pthread_mutex_lock(&db->maint_lock);
    }
    pthread_mutex_unlock(&db->maint_lock);
    return NULL;
}

/* ---- figures ---- */

/* Sum of stored chunk value sizes, read once at open. */
static uint64_t stored_chunk_bytes(struct tsdb *db)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    uint64_t total = 0;

    if (mdb_txn_begin(db->env, NULL, MDB_RDONLY, &txn) != MDB_SUCCESS)
        return 0;
    if (mdb_cursor_open(txn, db->chunks, &cur) == MDB_SUCCESS) {
        for (int op = MDB_FIRST; mdb_cursor_get(cur, &k, &v, op) == 0;
             op = MDB_NEXT)
            total += v.mv_size;
        mdb_cursor_close(cur);
    }
    mdb_txn_abort(txn);
    return total;
}

/* Pages on LMDB's free list, counted from the free database (dbi 0). */
static uint64_t free_pages(MDB_txn *txn)
{
    MDB_cursor *cur;
    MDB_val k, v;
    uint64_t n = 0;

    if (mdb_cursor_open(txn, 0, &cur) != MDB_SUCCESS)
        return 0;
    for (int op = MDB_FIRST; mdb_cursor_get(cur, &k, &v, op) == 0;
         op = MDB_NEXT)
        if (v.mv_size >= sizeof(size_t))
            n += *(const size_t *)v.mv_data;
    mdb_cursor_close(cur);
    return n;
}

void tsdb_stats_get(struct tsdb *db, struct tsdb_stats *st)
{
    MDB_envinfo info;
    MDB_stat mst;
    MDB_txn *txn;
    struct stat sb;
    char *path;

    memset(st, 0, sizeof(*st));
    pthread_mutex_lock(&db->head_lock);
    st->series = db->head.count;
    st->samples_appended = db->samples_appended;
    st->rejected_out_of_order = db->rejected_ooo;
    st->rejected_duplicate_conflict = db->rejected_conflict;
    st->rejected_out_of_bounds = db->rejected_bounds;
    st->chunks_sealed = db->head.chunks_sealed;
    st->max_time = db->max_time;
    st->wal_bytes = db->wal ? tsdb_wal_size(db->wal) : 0;
    pthread_mutex_unlock(&db->head_lock);
    st->chunks_written = atomic_load(&db->chunks_written);
    st->chunk_bytes = (uint64_t)atomic_load(&db->chunk_bytes);
    st->chunks_deleted = atomic_load(&db->chunks_deleted);
    st->flushes = atomic_load(&db->flushes);
    st->flush_seconds = (double)atomic_load(&db->flush_us) / 1e6;
    for (int i = 0; i < TSDB_FLUSH_NBUCKETS; i++)
        st->flush_buckets[i] = atomic_load(&db->flush_buckets[i]);
    tsdb_guard_totals(db->guard, &st->guard_refused, &st->guard_folded);

    if (asprintf(&path, "%s/data.mdb", db->dir) >= 0) {
        if (stat(path, &sb) == 0)
            st->lmdb_file_bytes = (uint64_t)sb.st_size;
        free(path);
    }
    if (mdb_env_info(db->env, &info) == MDB_SUCCESS &&
        mdb_env_stat(db->env, &mst) == MDB_SUCCESS &&
        mdb_txn_begin(db->env, NULL, MDB_RDONLY, &txn) == MDB_SUCCESS) {
        uint64_t pages = info.me_last_pgno + 1, fp = free_pages(txn);
        MDB_stat sst;
        st->lmdb_used_bytes = (pages > fp ? pages - fp : 0) * mst.ms_psize;
        if (mdb_stat(txn, db->index.series, &sst) == MDB_SUCCESS)
            st->series_total = sst.ms_entries;
        mdb_txn_abort(txn);
    }
}
