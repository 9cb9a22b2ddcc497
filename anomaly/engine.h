/*
 * The detector scheduler: runs every detector (detector.h) at each of its
 * evaluation steps, writes the results back as series and keeps anomaly
 * events.  One thread evaluates the detectors one after the other; the
 * API calls below only change the list and read published figures.
 *
 * For each result series of a detector's expression, at each step:
 *   anomaly_score{detector="NAME", <the series' labels>}    0 to 1
 *   anomaly_expected, anomaly_lower, anomaly_upper          the band
 *   anomaly_active                                          1 during an event
 * (the series' __name__ is dropped: the detector names its results).
 *
 * A new detector learns from stored history first (its warmup, quietly:
 * no results written for the past), then runs live.  Its models' states
 * are saved in DATA/detectors/NAME.state every minute and at shutdown; a
 * restart loads them and evaluates the steps it missed, writing their
 * results, as if it had not stopped.  Closed events are appended to
 * DATA/detectors/NAME.events (JSON lines).
 */
#ifndef ANOMALY_ENGINE_H
#define ANOMALY_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "query/eval.h"
#include "tsdb/db.h"

struct anomaly_engine;

/*
 * Loads the detectors of DATA/detectors.json, then those of file (NULL:
 * none; they replace stored ones of the same name, which keep their
 * state when unchanged), and starts the scheduler.  qo: the query limits
 * the detectors' expressions run with.  TSDB_OK with *out, TSDB_EINVAL
 * with err naming the file, detector and field, TSDB_EIO, TSDB_ENOMEM.
 */
int anomaly_open(struct tsdb *db, const struct query_opts *qo,
                 const char *data_dir, const char *file,
                 struct anomaly_engine **out, char *err, size_t errlen);

/* Stops the scheduler after its current evaluation, saves every state,
 * frees e.  NULL is a no-op. */
void anomaly_close(struct anomaly_engine *e);

/* Creates or replaces detector name from JSON.  The same definition
 * again changes nothing; a changed one starts afresh (warm-up included).
 * TSDB_OK, TSDB_EINVAL with err naming the field, TSDB_EIO (the detector
 * runs but DATA/detectors.json could not be written), TSDB_ENOMEM. */
int anomaly_put(struct anomaly_engine *e, const char *name, const char *json,
                size_t len, char *err, size_t errlen);

/* TSDB_OK, TSDB_ENOTFOUND, TSDB_EIO. */
int anomaly_delete(struct anomaly_engine *e, const char *name);

/* Every detector with its definition and state, a JSON array in name
 * order (malloc'd); NULL on OOM. */
char *anomaly_list_json(struct anomaly_engine *e);

/* Events of detector (NULL: all) overlapping [start, end] (ms), a JSON
 * array (malloc'd); NULL on OOM.  *found is false for an unknown name. */
char *anomaly_events_json(struct anomaly_engine *e, const char *detector,
                          int64_t start, int64_t end, bool *found);

/* Waits until every detector has warmed up and evaluated the step at or
 * before the wall-clock time of the call.  For tests and tools. */
void anomaly_sync(struct anomaly_engine *e);

struct anomaly_stats {
    uint64_t detectors;
    uint64_t series;      /* followed, all detectors */
    uint64_t evaluations; /* steps evaluated live */
    uint64_t events;      /* opened */
    uint64_t failures;    /* evaluations whose query failed */
    double seconds;       /* spent evaluating */
};

void anomaly_stats_get(struct anomaly_engine *e, struct anomaly_stats *st);

#endif
