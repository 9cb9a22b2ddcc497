/*
 * The StatsD service: durable ingest of StatsD bodies, aggregation, and
 * flushes into the storage engine through a sink.  HTTP handlers and the
 * UDP reader call statsd_ingest; a timer thread calls statsd_flush every
 * flush interval.  This header is the module's entry point; parse.h and
 * aggregate.h are its parts.
 *
 * Durability (storage-format.md section 13):
 * statsd_ingest appends the body's parsed lines with their arrival time to
 * a journal in DIR/statsd/journal with one write(2), applies them, and
 * only then returns TSDB_OK: an acknowledged body survives kill -9 (and,
 * with sync_ms == 0, power loss).  A flush writes a flush marker to the
 * journal, emits, has the sink commit, and only after the commit writes a
 * snapshot of the state to DIR/statsd/snapshot and drops the journal
 * segments the snapshot covers.  Recovery at open loads the newest whole
 * snapshot and replays the journal after its marker; a flush whose marker
 * is replayed is emitted again at its own time with the same values,
 * which the storage counts as duplicates: nothing is lost and nothing
 * counted twice.
 *
 * LIMIT: a body is not idempotent.  Why: StatsD lines carry no id.
 * Matters when a client retries a body whose acknowledgement was lost
 * (the process died after the journal write): it counts twice.
 *
 * LIMIT: after a failed commit no snapshot is taken until restart, so the
 * journal grows by a segment per flush.  Why: a snapshot must not cover a
 * flush the storage lacks.  Matters if the storage fails for long;
 * behaviour: the next open emits every flush since the last snapshot.
 *
 * Threads: statsd_ingest from any number of threads; statsd_flush from one
 * thread at a time (others wait); statsd_stats_get from anywhere.  One
 * mutex guards the state and the journal and is held for a journal
 * write(2) and the in-memory apply per body, and for the rotation and
 * the marker (two fdatasyncs) and the capture per flush; emission, commit
 * and snapshot run outside it.  statsd_open and statsd_close run alone.
 *
 * LIMIT: bodies wait for those two fdatasyncs once per flush.  Why: the
 * marker must start a segment and be on disk before the flush's snapshot
 * is (storage-format.md section 13.4).  Matters on disks with slow
 * syncs; behaviour: ingest latency spikes by the sync time every flush.
 */
#ifndef STATSD_STATSD_H
#define STATSD_STATSD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "statsd/aggregate.h"
#include "statsd/parse.h"
#include "tsdb/error.h"

/* Largest body statsd_ingest takes.  Why: the whole body's journal
 * record is built in memory before its one write(2). */
#define STATSD_MAX_BODY ((size_t)8 << 20)
/* Rejection reasons kept per body; further rejections are only counted. */
#define STATSD_MAX_REJECTS 64
/* Journal segment size before a new segment starts. */
#define STATSD_JOURNAL_SEGMENT ((size_t)64 << 20)

struct statsd_options {
    const char *dir;           /* data folder; files go to DIR/statsd/ */
    int64_t flush_interval_ms; /* default 10000 */
    int sync_ms; /* journal: 0 fdatasync per body, else period (1000) */
    struct statsd_agg_options agg; /* idle TTL, buckets, limits */
};

/* Fills o with the defaults (dir "data"; aggregate.h for agg). */
void statsd_options_init(struct statsd_options *o);

/*
 * Where flushes go.  emit receives each sample (aggregate.h); it should
 * return TSDB_OK for a sample the storage refuses on its own merits (say,
 * a label set over a limit: log or count it), and an error only when
 * nothing more can be stored, which aborts the flush.  commit makes every
 * sample emitted since the last commit durable and returns TSDB_OK once it
 * is.  statsd/sink.h has one for a struct tsdb.
 */
struct statsd_sink {
    statsd_emit_fn emit;
    int (*commit)(void *ctx);
    void *ctx;
};

struct statsd_reject {
    uint64_t line;                  /* 1-based line number in the body */
    char reason[STATSD_MAX_REASON]; /* "line N: <field and problem>" */
};

/* What became of one body (about 13 KiB).  lines == accepted +
 * rejected. */
struct statsd_result {
    uint64_t lines;    /* non-blank lines */
    uint64_t accepted; /* lines applied, durable when ingest returned OK */
    uint64_t rejected; /* lines refused, each for a reason */
    size_t nreasons;   /* reasons[] filled, the first found, by line */
    struct statsd_reject reasons[STATSD_MAX_REJECTS];
};

struct statsd;

/*
 * Opens DIR/statsd (created if missing) and recovers: loads the newest
 * whole snapshot, replays the journal after it, and emits through sink
 * (which may be NULL: then nothing is emitted) every flush that the
 * journal shows after the snapshot, committing after each.  Logs at info
 * what was recovered.  Returns TSDB_OK with *out (close with
 * statsd_close); TSDB_EINVAL for bad options; TSDB_ECORRUPT when a
 * journal or snapshot segment other than the last is damaged, or the
 * journal lacks the snapshot's flush marker (both logged with the file);
 * TSDB_EIO; TSDB_ENOMEM; or the sink's error.
 */
int statsd_open(const struct statsd_options *o, const struct statsd_sink *sink,
                struct statsd **out);

/*
 * Parses body[0..len), journals its valid lines with arrival time now_ms
 * in one write, and applies them.  res (may be NULL) receives the counts
 * and the reasons for rejected lines: bad syntax, and lines the state
 * refuses (a series sent as another type, a limit).  Returns TSDB_OK once
 * the accepted lines are durable (also when some or all lines were
 * rejected); TSDB_ELIMIT for a body over STATSD_MAX_BODY (nothing read);
 * TSDB_EIO when the journal cannot be written (nothing acknowledged; the
 * journal then refuses every later body until restart); TSDB_ENOMEM.
 */
int statsd_ingest(struct statsd *s, const char *body, size_t len,
                  int64_t now_ms, struct statsd_result *res);

/*
 * Flushes if a flush is due: the flush time is now_ms rounded down to a
 * multiple of the flush interval, and is due when after the last flush.
 * Emits every sample through sink, commits, then checkpoints.  *flushed
 * (may be NULL) tells whether a flush was emitted and committed.  Returns
 * TSDB_OK (also when none was due); TSDB_EIO when the journal failed; the
 * sink's error (the flush is then emitted again at recovery, and no
 * checkpoint is taken until restart); or the checkpoint's error, logged
 * (the flush itself stands; the next checkpoint covers it).
 */
int statsd_flush(struct statsd *s, int64_t now_ms,
                 const struct statsd_sink *sink, bool *flushed);

/* Syncs and closes the journal and frees s, without flushing (what was not
 * flushed is recovered at the next open).  NULL is a no-op. */
void statsd_close(struct statsd *s);

struct statsd_stats {
    uint64_t bodies;          /* bodies journalled */
    uint64_t lines_accepted;  /* since open */
    uint64_t lines_rejected;  /* since open */
    uint64_t flushes;         /* emitted and committed */
    uint64_t flush_errors;    /* failed emissions or commits */
    uint64_t samples_emitted; /* since open, stale markers included */
    uint64_t checkpoints;     /* snapshots written */
    uint64_t series;          /* aggregated series now */
    uint64_t journal_bytes;   /* journal segments on disk */
    bool stuck;               /* a commit failed: no checkpoint until
                                 restart */
};

void statsd_stats_get(struct statsd *s, struct statsd_stats *st);

/*
 * Test hook, NULL in production: called with the name of each crash point
 * as it is passed ("ingest-written", "flush-marker", "flush-emitted",
 * "flush-committed", "snapshot-partial", "snapshot-written").  The crash
 * tests set it to end the process there.
 */
extern void (*statsd_fault_hook)(const char *point);

#endif
