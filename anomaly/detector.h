/*
 * Detectors: a PromQL expression evaluated every interval, each of its
 * result series fed to its own model (model.h), the results written back
 * as series and anomaly events kept.
 *
 * A detector is JSON, from PUT /api/v1/detectors/<name> or the
 * --detectors file:
 *
 *   {"query": "sum by (region) (rate(llm_tokens_total[5m]))",
 *    "interval": "1m", "model": "holt_winters", "params": {"season": "1d"},
 *    "sensitivity": 3, "min_duration": "5m", "min_deviation": 10,
 *    "timezone": "Europe/Paris", "history": "3d",
 *    "exclusions": [{"start": "2026-12-24T00:00:00Z",
 *                    "end": "2026-12-27T00:00:00Z"}]}
 *
 * Evaluation steps are the multiples of the interval since the epoch.
 * Step t evaluates the expression at t, exactly as a range query whose
 * steps include t (query_eval_range), which is how a stretch of steps is
 * evaluated at once when a detector warms up from stored history, catches
 * up after a restart, or is replayed by tsdb-replay: the same code path
 * and the same numbers.
 */
#ifndef ANOMALY_DETECTOR_H
#define ANOMALY_DETECTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "anomaly/model.h"
#include "anomaly/season.h"
#include "query/ast.h"
#include "tsdb/db.h"

#define DETECTOR_NAME_MAX        128
#define DETECTOR_MAX_EXCLUSIONS  64
#define DETECTOR_MIN_INTERVAL_MS 1000
#define DETECTOR_MAX_INTERVAL_MS 86400000
/* Result series per detector.  Why: each holds a model state (up to a
 * season of phases); past it new series are not followed, and the
 * detector's state says so. */
#define DETECTOR_MAX_SERIES 100000

struct detector_window {
    int64_t start, end; /* ms, [start, end) */
};

struct detector_def {
    char name[DETECTOR_NAME_MAX + 1];
    char *query;             /* as written */
    struct query_node *expr; /* parsed */
    const struct anomaly_model *model;
    struct anomaly_config cfg; /* interval, season, sensitivity, ... */
    int64_t min_duration_ms;
    int64_t history_ms; /* stored history learned from when set */
    char *timezone;     /* NULL: UTC */
    struct anomaly_tz *tz;
    size_t nexcl;
    struct detector_window excl[DETECTOR_MAX_EXCLUSIONS];
    char *json; /* canonical definition */
};

/*
 * Reads a detector from JSON (len bytes) into d (caller-owned; release
 * with detector_def_release).  TSDB_OK, or TSDB_EINVAL with err naming
 * the field ("field \"params.season\": ..."), TSDB_ENOMEM.
 */
int detector_def_parse(const char *name, const char *json, size_t len,
                       struct detector_def *d, char *err, size_t errlen);

void detector_def_release(struct detector_def *d);

/* Is t inside an exclusion window of d? */
bool detector_excluded(const struct detector_def *d, int64_t t);

#endif
