/*
 * StatsD aggregation state in the cumulative model (protocols.md section
 * 11; README.md "StatsD" is the full statement).  Lines
 * from statsd/parse.h go in; each flush turns the state into samples at
 * the flush time, handed to a callback as label sets, so that this module
 * knows nothing of HTTP or of the appender.
 *
 * Per series (metric name plus tags), by type:
 *   c       a cumulative counter named as sent: each value adds
 *           value / rate.  Emitted every flush as the running total.
 *   g       the last value; +N/-N add to it (a new gauge starts at 0);
 *           rate ignored.
 *   ms      a cumulative histogram of seconds (value / 1000): series
 *           <name>_bucket{le="..."}, <name>_sum, <name>_count; each value
 *           counts 1 / rate in its bucket and in _count, and value / rate
 *           in _sum.
 *   h, d    the same histogram, values taken as they are.
 *   s       a gauge: distinct members seen in the interval, then reset.
 * A series keeps one kind: a line of another kind for it is rejected.
 * Lines with a timestamp skip all this: c (value / rate) and g become one
 * raw sample each at their own time, emitted at the next flush.
 *
 * Idle series: one whose last line arrived idle_ttl_ms or more before a
 * flush, and that has been emitted at least once, is dropped at that
 * flush and emits one stale marker (STATSD_STALE_BITS) per series instead.
 *
 * LIMIT: a histogram x emits x_bucket, x_sum and x_count, and nothing
 * stops a counter or gauge of the same tags from being named x_count.
 * Why: the storage, not this module, owns series identity, and checking
 * would mean a second index.  Behaviour: both land in one stored series
 * and the storage rejects the conflicting samples (counted there).
 *
 * Determinism: given the same options, lines and arrival times, in the
 * same order, with the same flush times, the state and every emitted
 * value are bit-identical.  Recovery (statsd.c) depends on this.
 *
 * Threads: none inside.  The caller serialises every call on one
 * aggregation, except statsd_capture_emit and statsd_capture_snapshot,
 * which read only the capture and may run beside statsd_agg_apply (but not
 * beside another statsd_agg_flush or statsd_agg_free).
 */
#ifndef STATSD_AGGREGATE_H
#define STATSD_AGGREGATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "statsd/parse.h"
#include "tsdb/labels.h"
#include "tsdb/wal.h"

/* Bucket bounds per histogram, +Inf not counted. */
#define STATSD_MAX_BUCKETS 64
/* Prometheus's stale marker: a NaN with this exact bit pattern. */
#define STATSD_STALE_BITS UINT64_C(0x7ff0000000000002)
/* Labels of one emitted sample: __name__, tags, le. */
#define STATSD_MAX_SAMPLE_LABELS (STATSD_MAX_TAGS + 2)

struct statsd_agg_options {
    int64_t idle_ttl_ms;    /* 0: series never expire */
    const double *buckets;  /* ascending, finite upper bounds; copied */
    size_t nbuckets;        /* 0..STATSD_MAX_BUCKETS */
    size_t max_series;      /* aggregated series; new ones beyond: refused */
    size_t max_set_members; /* distinct members per set per interval */
    size_t max_raw_bytes;   /* timestamped lines waiting for a flush */
};

/* The defaults: buckets .005 .01 .025 .05 .1 .25 .5 1 2.5 5 10 (+Inf),
 * idle_ttl 5 min, 1,000,000 series, 100,000 members, 64 MiB raw. */
void statsd_agg_options_init(struct statsd_agg_options *o);

/*
 * One emitted sample.  labels[0] is __name__; the array is scratch space
 * that the callback may reorder (tsdb_appender_series does); the array and
 * strings are borrowed until the callback returns.
 */
struct statsd_sample {
    struct tsdb_label *labels;
    size_t nlabels;
    int64_t t; /* ms */
    double v;
};

/* Returns TSDB_OK to go on, or a TSDB_E* code that stops the emission. */
typedef int (*statsd_emit_fn)(void *ctx, const struct statsd_sample *s);

struct statsd_agg;
struct statsd_capture;

/*
 * Creates an empty aggregation.  Returns TSDB_OK with *out (free with
 * statsd_agg_free), TSDB_EINVAL (bounds not ascending or not finite, too
 * many, a zero limit, a negative idle_ttl) or TSDB_ENOMEM.
 */
int statsd_agg_new(const struct statsd_agg_options *o, struct statsd_agg **out);

/* Frees a and every series; NULL is a no-op.  Captures taken from a must
 * be freed first. */
void statsd_agg_free(struct statsd_agg *a);

/*
 * Adds line l, which arrived at arrival_ms, to the current interval.
 * Returns TSDB_OK; TSDB_EINVAL when the series exists with another kind
 * (or a gauge delta carries a timestamp); TSDB_ELIMIT when max_series,
 * max_set_members or max_raw_bytes would be passed; TSDB_ENOMEM.  On an
 * error nothing changes and reason (always NUL-terminated) says why,
 * starting "line N: ".
 */
int statsd_agg_apply(struct statsd_agg *a, const struct statsd_line *l,
                     int64_t arrival_ms, char *reason, size_t reason_len);

/*
 * Ends the interval at flush time t (ms; must be after the previous
 * flush): captures every series' value at t, resets sets, drops idle
 * series, moves the raw samples out, and advances the flush sequence.
 * Returns TSDB_OK with *out (free with statsd_capture_free), TSDB_EINVAL
 * if t is not after the previous flush, or TSDB_ENOMEM (nothing changed).
 */
int statsd_agg_flush(struct statsd_agg *a, int64_t t,
                     struct statsd_capture **out);

/* Sequence number and time of the capture (its flush). */
uint64_t statsd_capture_seq(const struct statsd_capture *c);
int64_t statsd_capture_time(const struct statsd_capture *c);

/*
 * Calls fn once per sample of the capture: each live series at the flush
 * time, stale markers for the dropped ones, then raw samples at their own
 * times.  *emitted, if not NULL, receives the count.  Returns TSDB_OK or
 * the first non-OK result of fn (the rest is then not emitted).
 */
int statsd_capture_emit(const struct statsd_capture *c, statsd_emit_fn fn,
                        void *ctx, uint64_t *emitted);

/* Frees c and the series dropped at its flush; NULL is a no-op. */
void statsd_capture_free(struct statsd_capture *c);

/* Where a streamed snapshot encoding stands; zero it to start. */
struct statsd_snap_cursor {
    size_t next;    /* next captured series to encode */
    size_t entries; /* series encoded so far */
    bool head_done;
    bool done; /* the end record has been written */
};

/*
 * Appends the next snapshot records of c (storage-format.md section 13
 * "Snapshot": head, entries, end) to b: records until at least chunk
 * bytes were added, or, once every entry is out, the end record alone
 * (then cur->done is set).  So a snapshot takes at least two calls, and
 * the end record is never in the same write as an entry.  The snapshot is
 * the state right after c's flush.  Returns TSDB_OK or TSDB_ENOMEM.
 */
int statsd_capture_snapshot(const struct statsd_capture *c,
                            struct statsd_snap_cursor *cur,
                            struct tsdb_wal_buf *b, size_t chunk);

/* ---- loading a snapshot (into a new, empty aggregation) ---- */

/* What a snapshot's head record says. */
struct statsd_snap_info {
    uint64_t seq;      /* the flush it follows */
    int64_t t;         /* that flush's time */
    uint64_t entries;  /* series it holds */
    uint32_t nbuckets; /* bucket bounds of its histograms */
    bool same_bounds;  /* ... equal to the aggregation's */
};

/*
 * Reads a head record into *info.  When its bucket bounds differ from a's,
 * histograms load empty (a counter reset).  Returns TSDB_OK or
 * TSDB_ECORRUPT.
 */
int statsd_agg_load_head(const struct statsd_agg *a, const uint8_t *p,
                         size_t len, struct statsd_snap_info *info);

/* Reads an end record.  TSDB_OK or TSDB_ECORRUPT. */
int statsd_agg_load_end(const uint8_t *p, size_t len, uint64_t *seq,
                        uint64_t *entries);

/*
 * Adds the series of one entries record of the snapshot described by info
 * to a (*count += how many).  With load false it only checks and counts.
 * Returns TSDB_OK, TSDB_ECORRUPT (bad bytes, a series twice) or
 * TSDB_ENOMEM.
 */
int statsd_agg_load_entries(struct statsd_agg *a,
                            const struct statsd_snap_info *info,
                            const uint8_t *p, size_t len, bool load,
                            uint64_t *count);

/* Sets the flush sequence and time reached, after loading a snapshot. */
void statsd_agg_set_position(struct statsd_agg *a, uint64_t seq, int64_t t);

/* ---- figures and checks ---- */

uint64_t statsd_agg_seq(const struct statsd_agg *a);
int64_t statsd_agg_last_flush(const struct statsd_agg *a); /* INT64_MIN */
size_t statsd_agg_series(const struct statsd_agg *a);

/*
 * Verifies the invariants listed in aggregate.c (hash chains, counts,
 * limits).  TSDB_OK or TSDB_ECORRUPT.  For tests and debug builds.
 */
int statsd_agg_check(const struct statsd_agg *a);

#endif
