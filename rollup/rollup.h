/*
 * The rollup engine: streaming aggregation rules (rule.h) computed in the
 * write path.  Every commit's accepted samples reach the engine through
 * the storage's commit observer (tsdb/db.h); each sample of a series that
 * a rule selects is added to its group's figures for the interval that
 * holds it.  Nothing is read back from storage while the server runs.
 *
 * Intervals are [start, start + interval), start a multiple of the
 * interval since the Unix epoch; results are stamped at the end.  A rule's
 * interval closes once the rule has seen a sample at or past
 * end + grace (event time, so that a bulk import of last month closes
 * last month's intervals), or once the rule has seen no sample for
 * interval + grace of wall-clock time (so that the last interval of a
 * stream that stops is written too).  Samples for a closed interval are
 * late: counted per rule (GET /api/v1/rollups) and logged once per close,
 * not added.  A late counter sample's growth is not lost: the series'
 * next sample measures its increase from the last sample that was added.
 *
 * Results are written by the engine's own thread with an unobserved
 * appender, as ordinary series.  The state file (DATA/rollups.json)
 * keeps the rules and, per rule, the end of the last interval whose
 * results are durable.  At start-up the intervals after it are
 * recomputed from the raw samples, which the write-ahead log has kept:
 * state that was open at a stop or a crash is recovered, and an interval
 * written before the crash but not yet recorded comes out identical, so
 * the storage takes it as a duplicate: no interval is written twice.
 *
 * Threads: the observer runs on committing threads (one at a time); the
 * API calls on HTTP threads; the writer on its own.  One mutex guards
 * the engine; file writes and commits happen outside it.
 */
#ifndef ROLLUP_ROLLUP_H
#define ROLLUP_ROLLUP_H

#include <stddef.h>
#include <stdint.h>

#include "tsdb/db.h"

struct rollup_engine;

/*
 * Loads the rules of state_path (if it exists), then those of rules_file
 * (NULL: none; a rule there replaces the stored one of the same name, and
 * keeps its state when its definition is unchanged), recomputes the open
 * intervals from stored samples, attaches to db's commit observer and
 * starts the writer.  Call before anything writes to db.  Returns TSDB_OK
 * with *out, TSDB_EINVAL with err naming the file, rule and field,
 * TSDB_EIO, TSDB_ENOMEM.
 */
int rollup_open(struct tsdb *db, const char *state_path, const char *rules_file,
                struct rollup_engine **out, char *err, size_t errlen);

/* Detaches from db, writes the results of closed intervals, saves the
 * state, frees e.  Open intervals are left to the next start's recovery.
 * Call after writers have stopped.  NULL is a no-op. */
void rollup_close(struct rollup_engine *e);

/*
 * Creates or replaces rule name from JSON (rule.h).  A replaced rule
 * starts afresh: its open intervals are dropped; the same definition
 * again changes nothing.  TSDB_OK, TSDB_EINVAL
 * with err naming the field, TSDB_EIO when the state file cannot be
 * written (the rule is not kept), TSDB_ENOMEM.
 */
int rollup_put(struct rollup_engine *e, const char *name, const char *json,
               size_t len, char *err, size_t errlen);

/* Removes rule name.  TSDB_OK, TSDB_ENOTFOUND, TSDB_EIO. */
int rollup_delete(struct rollup_engine *e, const char *name);

/* Every rule with its state, as a JSON array (malloc'd, NUL-ended), in
 * name order; NULL on OOM. */
char *rollup_list_json(struct rollup_engine *e);

/* Waits until the results of every interval closed so far are committed.
 * TSDB_OK, or the error of the failed commit. */
int rollup_sync(struct rollup_engine *e);

struct rollup_stats {
    uint64_t rules;
    uint64_t samples; /* added to an interval */
    uint64_t late;    /* for an interval already closed */
    uint64_t dropped; /* past a rule's group limit */
    uint64_t written; /* result samples committed */
    double observe_seconds; /* spent in the write path, in commits */
};

void rollup_stats_get(struct rollup_engine *e, struct rollup_stats *st);

#endif
