/*
 * A ready-made statsd_sink that stores flushes in a struct tsdb through
 * one appender: emit looks up or creates each sample's series and buffers
 * the sample, commit commits.  tsdbd's flush thread and the tests use it.
 *
 * What the storage refuses is counted, not fatal: a label set it rejects
 * (TSDB_EINVAL, TSDB_ELIMIT: the series is skipped, its message kept in
 * last_error) and samples its write rules reject (duplicates, out of
 * order, conflicts: summed in total).  Any other error is returned, and
 * what the appender holds of that flush is dropped (recovery emits the
 * flush again).
 *
 * LIMIT: each emitted sample costs a series lookup in the storage (label
 * normalisation, hash, head lookup), about a microsecond; a flush of a
 * million samples spends about a second there.  Why: caching series ids
 * across flushes would go stale when retention removes a series, and a
 * stale id fails a whole commit.  Matters past a few hundred thousand
 * histogram series per flush interval.
 *
 * Threads: one flush at a time, as statsd_flush guarantees.
 */
#ifndef STATSD_SINK_H
#define STATSD_SINK_H

#include <stdint.h>

#include "statsd/statsd.h"
#include "tsdb/db.h"

struct statsd_tsdb_sink {
    struct tsdb_appender *app;
    struct tsdb_commit_result total; /* summed over every commit */
    uint64_t series_refused;         /* label sets the storage refused */
    char last_error[256];            /* why, for the last one */
};

/*
 * Prepares t for db and fills *sink with callbacks whose ctx is t (t
 * must outlive every use of *sink).  Returns TSDB_OK or TSDB_ENOMEM.
 * Release with statsd_tsdb_sink_release.
 */
int statsd_tsdb_sink_init(struct statsd_tsdb_sink *t, struct tsdb *db,
                          struct statsd_sink *sink);

/* Drops anything not committed and frees the appender; safe on a zeroed
 * struct. */
void statsd_tsdb_sink_release(struct statsd_tsdb_sink *t);

#endif
