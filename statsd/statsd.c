/*
 * The StatsD service (statsd.h): journal, aggregation, flush, checkpoint
 * and recovery.  It sits under http/ (and the UDP reader) and above
 * parse.c, aggregate.c, journal.c and tsdb/wal.c; it reaches the storage
 * only through the sink.
 *
 * Invariants:
 * 1. The journal holds, in the order they were applied, every batch of
 *    lines applied since the newest whole snapshot's flush marker, and
 *    that marker: batches and markers are written and applied under
 *    s->lock, each write before its apply.
 * 2. A flush marker is the first record of its journal segment (the
 *    rotation just before it leaves an empty segment), so dropping the
 *    segments closed by that rotation never drops the marker.
 * 3. The snapshot of flush k is the state right after flush k, so the
 *    state is always snapshot k plus the journal after marker k, replayed
 *    in order; replay applies the same bytes through the same code as the
 *    live path (both decode the journal record), which is what makes a
 *    replayed flush emit the same values at the same time.
 * 4. Snapshot k is written only after flush k's commit succeeded and
 *    marker k is synced, and journal segments are dropped only after
 *    snapshot k is whole and synced (its end record written last).
 */
#define LOG_MODULE "statsd"
#include "statsd/statsd.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "statsd/journal.h"
#include "tsdb/format.h"
#include "tsdb/log.h"
#include "tsdb/wal.h"

/* Payload bytes after which a body's batch record is closed and another
 * begun: keeps records far below the WAL's 16 MiB record limit. */
#define BATCH_RECORD_MAX ((size_t)1 << 20)
/* Largest journal write of one body (lines re-encoded, values as f64,
 * so at most about 5x the body). */
#define BATCH_BYTES_MAX (STATSD_MAX_BODY * 6)
/* Bytes per snapshot write(2). */
#define SNAP_CHUNK ((size_t)4 << 20)

void (*statsd_fault_hook)(const char *point);

struct statsd {
    char *dir;  /* DIR/statsd */
    char *jdir; /* DIR/statsd/journal */
    char *sdir; /* DIR/statsd/snapshot */
    int64_t interval;
    pthread_mutex_t lock;       /* agg, journal, failed, counters */
    pthread_mutex_t flush_lock; /* one flush at a time */
    struct statsd_agg *agg;
    struct tsdb_wal *journal;
    bool failed; /* a journal write failed: refuse bodies and flushes */
    bool stuck;  /* a commit failed: no checkpoints until restart */
    struct statsd_journal_line jl; /* decode scratch, under lock */
    struct statsd_stats st;
};

static void fault(const char *point)
{
    if (statsd_fault_hook)
        statsd_fault_hook(point);
}

void statsd_options_init(struct statsd_options *o)
{
    o->dir = "data";
    o->flush_interval_ms = 10000;
    o->sync_ms = 1000;
    statsd_agg_options_init(&o->agg);
}

/* ---- results ---- */

static void result_reject(struct statsd_result *res, uint64_t line,
                          const char *reason)
{
    struct statsd_reject *r;

    if (!res)
        return;
    res->rejected++;
    if (res->nreasons == STATSD_MAX_REJECTS)
        return;
    r = &res->reasons[res->nreasons++];
    r->line = line;
    snprintf(r->reason, sizeof(r->reason), "%s", reason);
}

/* Puts reasons in line order (parse rejections come before the ones the
 * state finds); insertion sort over at most STATSD_MAX_REJECTS. */
static void result_sort(struct statsd_result *res)
{
    for (size_t i = 1; i < res->nreasons; i++) {
        struct statsd_reject r = res->reasons[i];
        size_t j = i;
        for (; j > 0 && res->reasons[j - 1].line > r.line; j--)
            res->reasons[j] = res->reasons[j - 1];
        res->reasons[j] = r;
    }
}

/* ---- applying journal records (live and replay) ---- */

/* Lines the state refused while applying journal records. */
struct refusals {
    struct statsd_result *res; /* NULL during replay */
    uint64_t lines;            /* distinct lines refused */
    uint64_t last;             /* the last one, so that parts count once */
};

/*
 * Applies one batch record's payload to the state; refused lines go to
 * *rf.  Returns TSDB_OK or TSDB_ECORRUPT for a payload that does not
 * decode.
 */
static int apply_batch(struct statsd *s, const uint8_t *p, size_t len,
                       struct refusals *rf)
{
    const uint8_t *end = p + len;
    char reason[STATSD_MAX_REASON];
    int64_t arrival;
    int rc;

    if (statsd_journal_get_batch(&p, end, &arrival) != TSDB_OK)
        return TSDB_ECORRUPT;
    while (p < end) {
        if (statsd_journal_get_line(&p, end, &s->jl) != TSDB_OK)
            return TSDB_ECORRUPT;
        rc = statsd_agg_apply(s->agg, &s->jl.line, arrival, reason,
                              sizeof(reason));
        if (rc == TSDB_OK)
            continue;
        if (rc == TSDB_ENOMEM)
            snprintf(reason, sizeof(reason), "line %" PRIu64 ": out of memory",
                     s->jl.line.lineno);

        /* The parts of a multi-typed line are applied one by one: a line
         * with a refused part counts once, under its first reason. */
        if (s->jl.line.lineno == rf->last)
            continue;
        rf->last = s->jl.line.lineno;
        rf->lines++;
        result_reject(rf->res, s->jl.line.lineno, reason);
    }
    return TSDB_OK;
}

/* Walks the records of a buffer built for one write and applies them. */
static void apply_buffer(struct statsd *s, const struct tsdb_wal_buf *b,
                         struct refusals *rf)
{
    size_t off = 0;

    while (off < b->len) {
        const uint8_t *h = b->p + off;
        size_t plen = (size_t)h[1] << 16 | (size_t)h[2] << 8 | h[3];

        /* Our own bytes, just encoded: they decode. */
        apply_batch(s, h + TSDB_WAL_RECORD_HEADER_LEN, plen, rf);
        off += TSDB_WAL_RECORD_HEADER_LEN + plen;
    }
}

/* ---- ingest ---- */

struct ingest {
    struct statsd_parser p;
    struct tsdb_wal_buf b;
    int64_t arrival;
    struct statsd_result *res;
    bool open;    /* a batch record is being built */
    bool too_big; /* the journal record passed BATCH_BYTES_MAX */
};

static int on_line(void *ctx, const struct statsd_line *l)
{
    struct ingest *in = ctx;
    int rc;

    if (in->open && tsdb_wal_buf_payload(&in->b) >= BATCH_RECORD_MAX) {
        tsdb_wal_buf_end(&in->b);
        in->open = false;
    }
    if (in->b.len > BATCH_BYTES_MAX) {
        in->too_big = true;
        return TSDB_ELIMIT;
    }
    if (!in->open) {
        rc = statsd_journal_begin_batch(&in->b, in->arrival);
        if (rc != TSDB_OK)
            return rc;
        in->open = true;
    }
    return statsd_journal_put_line(&in->b, l);
}

static int on_reject(void *ctx, uint64_t line, const char *reason)
{
    struct ingest *in = ctx;

    result_reject(in->res, line, reason);
    return TSDB_OK;
}

/* Parses the body into in->b (closed records, ready for one write). */
static int encode_body(struct ingest *in, const char *body, size_t len)
{
    static const struct statsd_parse_cb cb = {on_line, on_reject};
    int rc;

    statsd_parser_init(&in->p);
    rc = statsd_parse(&in->p, body, len, &cb, in);
    if (rc == TSDB_ELIMIT && !in->too_big)
        rc = TSDB_OK; /* too many lines: the rest is reported, not fatal */
    if (rc == TSDB_OK && in->open)
        tsdb_wal_buf_end(&in->b);
    return rc;
}

/* Journals and applies in->b under the lock. */
static int commit_body(struct statsd *s, struct ingest *in, struct refusals *rf)
{
    int rc;

    pthread_mutex_lock(&s->lock);
    rc = s->failed ? TSDB_EIO : tsdb_wal_write(s->journal, in->b.p, in->b.len);
    if (rc != TSDB_OK) {
        if (!s->failed)
            log_error("journal write failed in '%s': %s; refusing "
                      "further bodies",
                      s->jdir, tsdb_strerror(rc));
        s->failed = true;
        pthread_mutex_unlock(&s->lock);
        return rc;
    }
    fault("ingest-written");
    apply_buffer(s, &in->b, rf);
    s->st.bodies++;
    pthread_mutex_unlock(&s->lock);
    return TSDB_OK;
}

int statsd_ingest(struct statsd *s, const char *body, size_t len,
                  int64_t now_ms, struct statsd_result *res)
{
    struct refusals rf = {.res = res};
    struct ingest *in;
    int rc;

    if (res)
        memset(res, 0, sizeof(*res));
    if (len > STATSD_MAX_BODY)
        return TSDB_ELIMIT;
    in = calloc(1, sizeof(*in));
    if (!in)
        return TSDB_ENOMEM;
    in->arrival = now_ms;
    in->res = res;
    rc = encode_body(in, body, len);
    if (rc == TSDB_OK && in->b.len > 0)
        rc = commit_body(s, in, &rf);
    if (res) {
        res->lines = in->p.lines;
        if (rc != TSDB_OK)
            res->rejected = res->lines;
        res->accepted = res->lines - res->rejected;
        result_sort(res);
    }
    if (rc == TSDB_OK) {
        pthread_mutex_lock(&s->lock);
        s->st.lines_accepted += in->p.accepted - rf.lines;
        s->st.lines_rejected += in->p.rejected + rf.lines;
        pthread_mutex_unlock(&s->lock);
    }
    tsdb_wal_buf_release(&in->b);
    free(in);
    return rc;
}

/* ---- flush ---- */

static int64_t align_down(int64_t t, int64_t step)
{
    int64_t r = t % step;
    return r < 0 ? t - r - step : t - r;
}

/*
 * Under s->lock: starts a journal segment with the flush marker and takes
 * the capture.  *c stays NULL when no flush is due.
 */
static int capture(struct statsd *s, int64_t t, struct statsd_capture **c,
                   uint64_t *closed)
{
    struct tsdb_wal_buf b = {0};
    int rc;

    if (s->failed)
        return TSDB_EIO;
    if (t <= statsd_agg_last_flush(s->agg))
        return TSDB_OK;
    rc = statsd_journal_put_flush(&b, statsd_agg_seq(s->agg) + 1, t);
    if (rc == TSDB_OK)
        rc = tsdb_wal_rotate(s->journal, closed);
    if (rc == TSDB_OK)
        rc = tsdb_wal_write(s->journal, b.p, b.len);

    /* Synced now, whatever sync_ms says: the snapshot of this flush will
     * be synced, and after a power loss it must not outlive its marker
     * (recovery would refuse the folder).  The segment holds only it. */
    if (rc == TSDB_OK)
        rc = tsdb_wal_sync(s->journal);
    tsdb_wal_buf_release(&b);
    if (rc == TSDB_EIO) {
        log_error("cannot write a flush marker to '%s'; refusing further "
                  "bodies and flushes",
                  s->jdir);
        s->failed = true;
    }
    if (rc != TSDB_OK)
        return rc;
    fault("flush-marker");

    /* The marker is journalled: if the capture cannot be taken, memory no
     * longer matches the journal, and only a restart (replay) does. */
    rc = statsd_agg_flush(s->agg, t, c);
    if (rc != TSDB_OK) {
        log_error("flush at %" PRId64 " failed: %s; refusing further "
                  "bodies until restart",
                  t, tsdb_strerror(rc));
        s->failed = true;
    }
    return rc;
}

static int deliver(struct statsd *s, const struct statsd_capture *c,
                   const struct statsd_sink *sink)
{
    uint64_t n = 0;
    int rc = TSDB_OK;

    if (sink && sink->emit)
        rc = statsd_capture_emit(c, sink->emit, sink->ctx, &n);
    fault("flush-emitted");
    if (rc == TSDB_OK && sink && sink->commit)
        rc = sink->commit(sink->ctx);
    if (rc == TSDB_OK)
        fault("flush-committed");
    pthread_mutex_lock(&s->lock);
    s->st.samples_emitted += n;
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* Writes the snapshot of capture c as snapshot segment seq. */
static int write_snapshot(struct statsd *s, const struct statsd_capture *c)
{
    uint64_t seq = statsd_capture_seq(c);
    struct statsd_snap_cursor cur = {0};
    struct tsdb_wal_buf b = {0};
    struct tsdb_wal *w;
    bool first = true;
    int rc;

    /* sync_ms 0: each chunk is synced, the end record after all others;
     * one segment of unbounded size, since a snapshot must not split. */
    rc = tsdb_wal_open(s->sdir, seq, 0, SIZE_MAX, &w);
    if (rc != TSDB_OK)
        return rc;
    while (rc == TSDB_OK && !cur.done) {
        tsdb_wal_buf_reset(&b);
        rc = statsd_capture_snapshot(c, &cur, &b, SNAP_CHUNK);
        if (rc == TSDB_OK)
            rc = tsdb_wal_write(w, b.p, b.len);
        if (rc == TSDB_OK && first)
            fault("snapshot-partial");
        first = false;
    }
    if (rc == TSDB_OK && tsdb_wal_remove_upto(w, seq - 1) != TSDB_OK)
        log_warn("cannot remove snapshots older than %" PRIu64 " in '%s'", seq,
                 s->sdir);
    tsdb_wal_close(w);
    tsdb_wal_buf_release(&b);
    return rc;
}

static int checkpoint(struct statsd *s, const struct statsd_capture *c,
                      uint64_t closed)
{
    int rc = write_snapshot(s, c);

    if (rc != TSDB_OK) {
        log_warn("snapshot %" PRIu64 " not written to '%s': %s; the journal "
                 "is kept",
                 statsd_capture_seq(c), s->sdir, tsdb_strerror(rc));
        return rc;
    }
    fault("snapshot-written");
    pthread_mutex_lock(&s->lock);
    if (tsdb_wal_remove_upto(s->journal, closed) != TSDB_OK)
        log_warn("cannot remove journal segments up to %" PRIu64 " in '%s'",
                 closed, s->jdir);
    s->st.checkpoints++;
    pthread_mutex_unlock(&s->lock);
    return TSDB_OK;
}

int statsd_flush(struct statsd *s, int64_t now_ms,
                 const struct statsd_sink *sink, bool *flushed)
{
    int64_t t = align_down(now_ms, s->interval);
    struct statsd_capture *c = NULL;
    uint64_t closed = 0;
    int rc;

    if (flushed)
        *flushed = false;
    pthread_mutex_lock(&s->flush_lock);
    pthread_mutex_lock(&s->lock);
    rc = capture(s, t, &c, &closed);
    pthread_mutex_unlock(&s->lock);
    if (rc != TSDB_OK || !c)
        goto out;

    rc = deliver(s, c, sink);
    if (rc != TSDB_OK) {
        if (!s->stuck)
            log_error("flush at %" PRId64 " not stored: %s; no checkpoint "
                      "until restart, which emits it again",
                      t, tsdb_strerror(rc));
        pthread_mutex_lock(&s->lock);
        s->stuck = true;
        s->st.flush_errors++;
        pthread_mutex_unlock(&s->lock);
        goto out;
    }
    pthread_mutex_lock(&s->lock);
    s->st.flushes++;
    pthread_mutex_unlock(&s->lock);
    if (flushed)
        *flushed = true;
    if (!s->stuck)
        rc = checkpoint(s, c, closed);
out:
    statsd_capture_free(c);
    pthread_mutex_unlock(&s->flush_lock);
    return rc;
}

/* ---- recovery ---- */

struct recovery {
    struct statsd *s;
    const struct statsd_sink *sink;
    bool loading;                 /* pass 2: load the chosen snapshot */
    bool in_snap;                 /* between a head and its end */
    struct statsd_snap_info cur;  /* the snapshot being read */
    uint64_t count;               /* its entries read so far */
    bool found;                   /* pass 1: a whole snapshot exists */
    struct statsd_snap_info best; /* pass 1: the newest whole one */
    bool loaded;   /* pass 2: snapshot best was read whole again */
    bool skipping; /* journal: before the snapshot's marker */
    struct refusals rf;
    uint64_t batches, flushes;
};

static int on_snapshot(void *ctx, uint8_t type, const uint8_t *p, size_t len)
{
    struct recovery *r = ctx;
    uint64_t seq, n;
    bool load;
    int rc;

    if (type == STATSD_REC_SNAP_HEAD) {
        r->in_snap =
            statsd_agg_load_head(r->s->agg, p, len, &r->cur) == TSDB_OK;
        r->count = 0;
        return 0;
    }
    if (!r->in_snap)
        return 0;
    load = r->loading && r->cur.seq == r->best.seq;
    if (type == STATSD_REC_SNAP_ENTRIES) {
        rc = statsd_agg_load_entries(r->s->agg, &r->cur, p, len, load,
                                     &r->count);
        if (rc == TSDB_ENOMEM || (rc != TSDB_OK && load))
            return rc;
        r->in_snap = rc == TSDB_OK;
        return 0;
    }
    if (type != STATSD_REC_SNAP_END)
        return 0;
    r->in_snap = false;
    if (statsd_agg_load_end(p, len, &seq, &n) != TSDB_OK || seq != r->cur.seq ||
        n != r->count || n != r->cur.entries)
        return 0;
    if (load)
        r->loaded = true;
    if (!r->loading && (!r->found || seq > r->best.seq)) {
        r->found = true;
        r->best = r->cur;
    }
    return 0;
}

/*
 * tsdb_wal_replay, except that a folder without segments is an empty log
 * without calling it.  Why: tsdb/wal.c hands qsort a NULL array for an
 * empty folder, which UBSan reports.
 */
static int replay(const char *dir, tsdb_wal_record_fn fn, void *ctx,
                  struct tsdb_wal_replay_stats *st)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    bool any = false;

    memset(st, 0, sizeof(*st));
    if (!d)
        return TSDB_EIO;
    while (!any && (e = readdir(d)) != NULL)
        any = strlen(e->d_name) == 20 && strcmp(e->d_name + 16, ".wal") == 0;
    closedir(d);
    return any ? tsdb_wal_replay(dir, fn, ctx, st) : TSDB_OK;
}

static int load_snapshot(struct statsd *s, struct recovery *r)
{
    struct tsdb_wal_replay_stats st;
    int rc;

    rc = replay(s->sdir, on_snapshot, r, &st);
    if (rc != TSDB_OK || !r->found)
        return rc;
    r->loading = true;
    r->in_snap = false;
    rc = replay(s->sdir, on_snapshot, r, &st);
    if (rc != TSDB_OK)
        return rc;
    if (!r->loaded) /* it was whole a moment ago */
        return TSDB_ECORRUPT;
    if (!r->best.same_bounds)
        log_warn("snapshot %" PRIu64 " has other histogram buckets; "
                 "histograms restart from zero",
                 r->best.seq);
    statsd_agg_set_position(s->agg, r->best.seq, r->best.t);
    return TSDB_OK;
}

static int replay_flush(struct recovery *r, uint64_t seq, int64_t t)
{
    struct statsd *s = r->s;
    struct statsd_capture *c = NULL;
    int rc;

    if (seq != statsd_agg_seq(s->agg) + 1) {
        log_error("journal '%s' has flush marker %" PRIu64 " where %" PRIu64
                  " was due",
                  s->jdir, seq, statsd_agg_seq(s->agg) + 1);
        return TSDB_ECORRUPT;
    }
    rc = statsd_agg_flush(s->agg, t, &c);
    if (rc == TSDB_EINVAL) {
        log_error("journal '%s' has flush %" PRIu64 " at %" PRId64
                  ", not after the previous flush",
                  s->jdir, seq, t);
        rc = TSDB_ECORRUPT;
    }
    if (rc == TSDB_OK)
        rc = deliver(s, c, r->sink);
    statsd_capture_free(c);
    r->flushes++;
    return rc;
}

static int on_journal(void *ctx, uint8_t type, const uint8_t *p, size_t len)
{
    struct recovery *r = ctx;
    uint64_t seq;
    int64_t t;

    if (type == STATSD_REC_FLUSH) {
        if (statsd_journal_get_flush(p, len, &seq, &t) != TSDB_OK)
            return TSDB_ECORRUPT;
        if (!r->skipping)
            return replay_flush(r, seq, t);

        /* Before the snapshot's own marker everything is in the snapshot;
         * a later marker first means the records between are gone. */
        if (seq > r->best.seq) {
            log_error("journal '%s' has flush marker %" PRIu64
                      " before the marker of snapshot %" PRIu64,
                      r->s->jdir, seq, r->best.seq);
            return TSDB_ECORRUPT;
        }
        r->skipping = seq < r->best.seq;
        return 0;
    }
    if (type != STATSD_REC_BATCH || r->skipping)
        return 0;
    r->batches++;
    return apply_batch(r->s, p, len, &r->rf);
}

static int recover(struct statsd *s, const struct statsd_sink *sink,
                   uint64_t *last_seq)
{
    struct recovery r = {.s = s, .sink = sink};
    struct tsdb_wal_replay_stats st;
    int rc;

    rc = load_snapshot(s, &r);
    if (rc != TSDB_OK) {
        log_error("cannot load a snapshot from '%s': %s", s->sdir,
                  tsdb_strerror(rc));
        return rc;
    }
    r.skipping = r.found;
    rc = replay(s->jdir, on_journal, &r, &st);
    if (rc != TSDB_OK) {
        log_error("cannot replay journal '%s': %s", s->jdir, tsdb_strerror(rc));
        return rc;
    }
    if (r.skipping) {
        log_error("journal '%s' lacks the flush marker of snapshot %" PRIu64,
                  s->jdir, r.best.seq);
        return TSDB_ECORRUPT;
    }
    *last_seq = st.last_seq;
    log_info("recovered %zu series: snapshot %" PRIu64 ", %" PRIu64
             " batches (%" PRIu64 " lines refused again), %" PRIu64
             " flushes emitted again, %" PRIu64 " torn bytes cut",
             statsd_agg_series(s->agg), r.found ? r.best.seq : 0, r.batches,
             r.rf.lines, r.flushes, st.torn_bytes);
    return TSDB_OK;
}

/* ---- open and close ---- */

static int make_dir(const char *path)
{
    if (mkdir(path, 0755) == 0 || errno == EEXIST)
        return TSDB_OK;
    log_error("cannot create folder '%s': %s", path, strerror(errno));
    return TSDB_EIO;
}

static int make_paths(struct statsd *s, const char *dir)
{
    if (asprintf(&s->dir, "%s/statsd", dir) < 0) {
        s->dir = NULL;
        return TSDB_ENOMEM;
    }
    if (asprintf(&s->jdir, "%s/journal", s->dir) < 0) {
        s->jdir = NULL;
        return TSDB_ENOMEM;
    }
    if (asprintf(&s->sdir, "%s/snapshot", s->dir) < 0) {
        s->sdir = NULL;
        return TSDB_ENOMEM;
    }
    if (make_dir(dir) != TSDB_OK || make_dir(s->dir) != TSDB_OK ||
        make_dir(s->jdir) != TSDB_OK || make_dir(s->sdir) != TSDB_OK)
        return TSDB_EIO;
    return TSDB_OK;
}

int statsd_open(const struct statsd_options *o, const struct statsd_sink *sink,
                struct statsd **out)
{
    struct statsd *s;
    uint64_t last_seq = 0;
    int rc;

    if (!o->dir || o->flush_interval_ms <= 0 || o->sync_ms < 0)
        return TSDB_EINVAL;
    s = calloc(1, sizeof(*s));
    if (!s)
        return TSDB_ENOMEM;
    pthread_mutex_init(&s->lock, NULL);
    pthread_mutex_init(&s->flush_lock, NULL);
    s->interval = o->flush_interval_ms;
    rc = statsd_agg_new(&o->agg, &s->agg);
    if (rc == TSDB_OK)
        rc = make_paths(s, o->dir);
    if (rc == TSDB_OK)
        rc = recover(s, sink, &last_seq);
    if (rc == TSDB_OK)
        rc = tsdb_wal_open(s->jdir, last_seq + 1, o->sync_ms,
                           STATSD_JOURNAL_SEGMENT, &s->journal);
    if (rc != TSDB_OK) {
        statsd_close(s);
        return rc;
    }
    *out = s;
    return TSDB_OK;
}

void statsd_close(struct statsd *s)
{
    if (!s)
        return;
    tsdb_wal_close(s->journal);
    statsd_agg_free(s->agg);
    pthread_mutex_destroy(&s->lock);
    pthread_mutex_destroy(&s->flush_lock);
    free(s->dir);
    free(s->jdir);
    free(s->sdir);
    free(s);
}

void statsd_stats_get(struct statsd *s, struct statsd_stats *st)
{
    pthread_mutex_lock(&s->lock);
    *st = s->st;
    st->series = statsd_agg_series(s->agg);
    st->journal_bytes = s->journal ? tsdb_wal_size(s->journal) : 0;
    st->stuck = s->stuck;
    pthread_mutex_unlock(&s->lock);
}
