/*
 * The storage engine's public API: open a data folder, append samples,
 * read them back by label matchers and time range.  Everything above tsdb/
 * (HTTP writes, PromQL, rollups, detectors, tools) goes through this header.
 *
 * Write path: an appender collects samples; tsdb_appender_commit() writes
 * them to the write-ahead log with one write(2), then adds them to the
 * in-memory open chunk of each series.  When commit returns TSDB_OK the
 * samples survive kill -9 of the process (they are in the kernel's page
 * cache); with wal_sync_ms == 0 they also survive power loss, otherwise
 * power loss may drop the last wal_sync_ms of acknowledged writes.
 * Full open chunks are sealed (re-encoded with pack.c) and written to LMDB
 * by a background thread in batched write transactions.
 *
 * Read path: a query selects series by matchers, then yields each series'
 * samples in [mint, maxt] as batches, merging stored chunks and the head,
 * decoding only chunks that overlap the range.
 *
 * Threads: a struct tsdb is shared by any number of threads.  An appender
 * or a query belongs to one thread at a time.
 */
#ifndef TSDB_DB_H
#define TSDB_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tsdb/error.h"
#include "tsdb/labels.h"
#include "tsdb/matcher.h"

struct tsdb;

/* At most this many downsampled tiers (see "downsampled tiers" below). */
#define TSDB_TIERS_MAX 4

/* One downsampled tier: bucket width and how long its buckets are kept. */
struct tsdb_tier_spec {
    int64_t width_ms;     /* > 0; buckets (end - width, end], end % width 0 */
    int64_t retention_ms; /* 0 keeps every bucket */
};

struct tsdb_options {
    const char *dir;            /* data folder; created if missing */
    size_t map_size;            /* LMDB map size, bytes (default 64 GiB) */
    int64_t retention_ms;       /* drop chunks older than this; 0 = keep */
    int wal_sync_ms;            /* 0: fsync per commit; else fsync period */
    uint32_t chunk_samples;     /* cut an open chunk at this many samples */
    int64_t chunk_span_ms;      /* ... or when it would span this window */
    int flush_interval_ms;      /* how often sealed chunks go to LMDB */
    int checkpoint_interval_ms; /* how often the WAL is truncated */
    size_t max_series;          /* refuse to create more (TSDB_ELIMIT) */
    bool read_only;             /* readers beside a running writer */
    bool compact_on_close;      /* rewrite the LMDB file compactly at close */
    const char *guard_file;     /* cardinality rules (guard.h); read at open */
    /* Downsampled tiers: widths ascending, each coarser than the last;
     * ntiers 0 disables them.  Default 5m and 1h, kept forever. */
    size_t ntiers;
    struct tsdb_tier_spec tiers[TSDB_TIERS_MAX];
    int64_t tier_settle_ms; /* horizon trails the newest sample by this */
    int tier_interval_ms;   /* how often the downsampler runs */
};

/* Fills o with the defaults documented in storage-format.md "Limits". */
void tsdb_options_init(struct tsdb_options *o);

/*
 * Opens or creates the database in o->dir, replaying the write-ahead log
 * (logged at info: segments, records, samples recovered, torn tail cut).
 * Returns TSDB_OK with *out (free with tsdb_close), TSDB_EVERSION for a
 * folder of an unknown format version, TSDB_ELOCKED if another process
 * writes to it, TSDB_ECORRUPT, TSDB_EIO or TSDB_ENOMEM.
 */
int tsdb_open(const struct tsdb_options *o, struct tsdb **out);

/*
 * Stops background threads, writes every sealed chunk and a head
 * checkpoint, syncs, and frees db.  With compact_on_close it then rewrites
 * the LMDB file with full pages (tsdb_compact in compact.h), which takes
 * time in proportion to the file.  NULL is a no-op.  Returns the first
 * error met while flushing (the database is closed either way; a failed
 * compaction is logged and leaves the file as it was).
 */
int tsdb_close(struct tsdb *db);

/* ---- writes ---- */

struct tsdb_appender;

/* Result of one commit: every sample is counted in exactly one field. */
struct tsdb_commit_result {
    size_t accepted;
    size_t duplicates;    /* same timestamp and same value: a no-op */
    size_t out_of_order;  /* older than the series' newest sample */
    size_t conflicts;     /* same timestamp, different value */
    size_t out_of_bounds; /* older than the retention window */
};

/* Returns a new appender (free with tsdb_appender_free) or NULL on OOM. */
struct tsdb_appender *tsdb_appender_new(struct tsdb *db);

/*
 * Gets or creates the series v[0..n) (normalized in place, see
 * tsdb_labels_normalize) and returns its id in *ref, stable for the life of
 * the database.  A new series becomes durable with the next commit.
 * Returns TSDB_OK, TSDB_EINVAL or TSDB_ELIMIT (err says which label, limit
 * and series), TSDB_ENOMEM, TSDB_EMAPFULL.
 * A new series is judged by the cardinality rules (guard.h): it may be
 * refused (TSDB_ELIMIT) or folded, in which case values in v are replaced
 * by TSDB_GUARD_OVERFLOW and *ref is the overflow series.
 */
int tsdb_appender_series(struct tsdb_appender *a, struct tsdb_label *v,
                         size_t n, uint64_t *ref, char *err, size_t errlen);

/* Buffers one sample for series ref.  TSDB_OK, TSDB_ENOMEM, or TSDB_EFULL
 * past 16 Mi buffered samples (commit first); ref is checked at commit (an
 * unknown ref makes the commit fail with TSDB_ENOTFOUND). */
int tsdb_appender_add(struct tsdb_appender *a, uint64_t ref, int64_t t,
                      double v);

/*
 * Writes the buffered samples to the WAL and the head, then empties the
 * appender.  Samples that break ordering are rejected, counted in *res
 * (may be NULL) and not stored; the others are stored.  Returns TSDB_OK
 * once the accepted samples are durable (see top), or TSDB_EIO, TSDB_ENOMEM,
 * TSDB_ENOTFOUND, TSDB_ECLOSED; on error nothing of the batch is stored.
 */
int tsdb_appender_commit(struct tsdb_appender *a,
                         struct tsdb_commit_result *res);

/* Drops buffered samples. */
void tsdb_appender_rollback(struct tsdb_appender *a);

void tsdb_appender_free(struct tsdb_appender *a);

/*
 * The commit observer sees every sample that a commit accepted, once the
 * samples are durable and in the head: s[0..n), in the order the head
 * took them.  Commits reach it one at a time and in the order they took
 * the head, so a series' samples arrive in ascending time.  It runs on the
 * committing thread, which waits for it: keep it short.  It may call
 * tsdb_series_labels but must not commit (the rollup engine writes its
 * results from its own thread, with an unobserved appender).  One
 * observer per database; fn NULL removes it.  Set it while no commit
 * runs (before writers start, after they stop).
 */
struct tsdb_observed {
    uint64_t ref;
    int64_t t;
    double v;
};
typedef void (*tsdb_commit_observer)(void *ctx, const struct tsdb_observed *s,
                                     size_t n);
void tsdb_set_commit_observer(struct tsdb *db, tsdb_commit_observer fn,
                              void *ctx);

/* Commits of a are not shown to the observer (for the observer's own
 * writes, which would otherwise feed back into it). */
void tsdb_appender_unobserved(struct tsdb_appender *a);

/* The labels of series ref (free with tsdb_labels_release).  TSDB_OK,
 * TSDB_ENOTFOUND for a series not in the head, TSDB_ENOMEM. */
int tsdb_series_labels(struct tsdb *db, uint64_t ref, struct tsdb_labels *out);

/* ---- reads ---- */

struct tsdb_query;

/*
 * Selects the series matching every matcher (n >= 1) that have samples in
 * [mint, maxt] (inclusive, ms).  The query holds an LMDB read snapshot plus
 * a copy of the matching head chunks: later writes are not seen.
 * Returns TSDB_OK with *out (free with tsdb_query_close), TSDB_EINVAL, or
 * TSDB_ENOMEM/TSDB_EIO.
 */
int tsdb_query_open(struct tsdb *db, struct tsdb_matcher *ms, size_t n,
                    int64_t mint, int64_t maxt, struct tsdb_query **out);

/*
 * Moves to the next series, in ascending label-set order.  Returns TSDB_OK
 * with *labels (borrowed until the next call or close), or TSDB_ENOTFOUND
 * when there are no more.  *id, if not NULL, receives the series id.
 */
int tsdb_query_next_series(struct tsdb_query *q,
                           const struct tsdb_labels **labels, uint64_t *id);

/*
 * The next batch of the current series' samples, ascending, all within
 * [mint, maxt]; *n == 0 once the series is done.  Arrays are borrowed until
 * the next call.  Returns TSDB_OK, or TSDB_ECORRUPT for a chunk that fails
 * its checksum (the error names series and chunk in the log).
 */
int tsdb_query_next_batch(struct tsdb_query *q, const int64_t **ts,
                          const double **vs, size_t *n);

void tsdb_query_close(struct tsdb_query *q);

/* Label names (all, or of the series matching ms[0..n) when n > 0). */
int tsdb_label_names(struct tsdb *db, struct tsdb_matcher *ms, size_t n,
                     int (*fn)(void *ctx, const char *s, size_t len),
                     void *ctx);

/* Values of label name (all, or among series matching ms[0..n)). */
int tsdb_label_values(struct tsdb *db, const char *name,
                      struct tsdb_matcher *ms, size_t n,
                      int (*fn)(void *ctx, const char *s, size_t len),
                      void *ctx);

/* ---- downsampled tiers ----
 *
 * Every series is also summarised per tier into buckets of width w:
 * bucket (end - w, end], end a multiple of w since the epoch, stamped at
 * end.  A background downsampler stores the buckets of every series up to
 * a per-tier horizon H; a tier read gives the stored buckets with end <= H
 * and summarises raw samples on the fly past H, so a read is right at once
 * after a write.  Layout and semantics: storage-format.md "tiers".
 */

/*
 * The summary of one series' samples in one bucket.  Stale markers are
 * not counted.  min and max are those of the non-NaN values, NaN if every
 * value was NaN (Prometheus's max_over_time rule).  resets is the sum of
 * the previous value at every decrease between consecutive samples of the
 * bucket (what rate() adds back for counter resets).
 */
struct tsdb_bucket {
    int64_t end;
    uint64_t count;
    double sum;      /* compensated (Neumaier) sum of the values */
    double sum_comp; /* its compensation still to add; 0 when read back */
    double min, max;
    int64_t first_t, last_t;
    double first_v, last_v;
    double resets;
};

/* The tier table as configured: *n tiers into specs (room for
 * TSDB_TIERS_MAX), widths ascending. */
void tsdb_tiers_get(struct tsdb *db, struct tsdb_tier_spec *specs, size_t *n);

/*
 * The earliest bucket end that tier i still holds for certain: buckets
 * ending before it may have gone to the tier's retention.  INT64_MIN when
 * the tier keeps everything.
 */
int64_t tsdb_tier_oldest(struct tsdb *db, size_t i);

/*
 * Brings every tier's horizon up to date now, in the calling thread:
 * for tests and tools; the server's downsampler does the same in the
 * background.  TSDB_OK, TSDB_ENOMEM, TSDB_EIO, TSDB_EMAPFULL.
 */
int tsdb_tiers_build(struct tsdb *db);

struct tsdb_tier_query;

/*
 * Selects the series matching ms[0..n) (n >= 1) with buckets of tier i
 * whose end lies in [mint, maxt].  Like tsdb_query_open, it holds an LMDB
 * snapshot and a copy of the head.  Returns TSDB_OK with *out (free with
 * tsdb_tier_query_close), TSDB_EINVAL (bad tier or n == 0), TSDB_ENOMEM
 * or TSDB_EIO.
 */
int tsdb_tier_query_open(struct tsdb *db, size_t i, struct tsdb_matcher *ms,
                         size_t n, int64_t mint, int64_t maxt,
                         struct tsdb_tier_query **out);

/*
 * The next series, ascending by label set, with its buckets in ascending
 * end order (only buckets with count > 0).  *labels and *b are borrowed
 * until the next call or close.  Returns TSDB_OK, TSDB_ENOTFOUND past the
 * last, TSDB_ECORRUPT (logged with series and block), TSDB_ENOMEM.
 */
int tsdb_tier_query_next(struct tsdb_tier_query *q,
                         const struct tsdb_labels **labels,
                         const struct tsdb_bucket **b, size_t *n);

void tsdb_tier_query_close(struct tsdb_tier_query *q);

/* Per-tier figures for /metrics. */
struct tsdb_tier_stats {
    int64_t width_ms;
    int64_t horizon; /* stored buckets end at or before this; INT64_MIN */
    uint64_t bytes;  /* block values stored now */
    uint64_t buckets_written;
    uint64_t reads; /* tier queries opened */
};

/* Fills st[0..*n) for the configured tiers. */
void tsdb_tier_stats_get(struct tsdb *db, struct tsdb_tier_stats *st,
                         size_t *n);

/* ---- maintenance and figures ---- */

/* Writes every sealed chunk to LMDB now. */
int tsdb_flush(struct tsdb *db);

/* Seals every open chunk, however short, then flushes. */
int tsdb_seal_all(struct tsdb *db);

/* Snapshots open chunks to LMDB, syncs, and deletes WAL segments that
 * hold nothing newer. */
int tsdb_checkpoint(struct tsdb *db);

/*
 * Deletes stored chunks whose newest sample is older than cutoff (ms),
 * in small write transactions so that writers wait at most one of them.
 * The background thread calls it with (newest sample - retention).
 * *deleted, if not NULL, receives the chunk count.
 */
int tsdb_retention_run(struct tsdb *db, int64_t cutoff, size_t *deleted);

/* Flusher duration histogram: bucket i counts flushes that took at most
 * tsdb_flush_bounds[i] seconds and more than the bound before it; the last
 * bucket is everything longer (+Inf).  Counts are not cumulative. */
#define TSDB_FLUSH_NBUCKETS 8
extern const double tsdb_flush_bounds[TSDB_FLUSH_NBUCKETS - 1];

struct tsdb_stats {
    uint64_t series;       /* series in the head */
    uint64_t series_total; /* series in the index (stored) */
    uint64_t samples_appended;
    uint64_t rejected_out_of_order;
    uint64_t rejected_duplicate_conflict;
    uint64_t rejected_out_of_bounds;
    uint64_t chunks_sealed;
    uint64_t chunks_written;  /* to LMDB, merges into a tail included */
    uint64_t chunk_bytes;     /* chunk values stored now, bytes */
    uint64_t chunks_deleted;  /* by retention */
    uint64_t wal_bytes;       /* current size of the WAL folder */
    uint64_t lmdb_file_bytes; /* size of the LMDB data file */
    uint64_t lmdb_used_bytes; /* pages in use x page size */
    int64_t max_time;         /* newest sample timestamp, ms */
    uint64_t flushes;         /* flusher transactions that wrote */
    double flush_seconds;     /* their total duration */
    uint64_t flush_buckets[TSDB_FLUSH_NBUCKETS];
    uint64_t guard_refused; /* new series refused by guard.h rules */
    uint64_t guard_folded;  /* label values folded into the overflow */
};

void tsdb_stats_get(struct tsdb *db, struct tsdb_stats *st);

#endif
