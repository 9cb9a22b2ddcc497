/*
 * Running a detector over evaluation steps: the one code path behind the
 * live scheduler, warm-up from stored history, catch-up after a restart
 * and tsdb-replay.  A stretch of steps is evaluated as one range query
 * (at most RUN_PIECE_STEPS at a time, to bound memory); each result
 * series is fed, step by step, to its own model state, and what comes out
 * goes to a sink: result points and anomaly events.
 *
 * Events: a series whose steps stay anomalous for min_duration opens an
 * event, which starts at its first anomalous step; the first step that is
 * not anomalous (or has no value) ends it.  The event remembers its
 * peak: the step with the highest score, with the observed and expected
 * values and the band there.
 *
 * Not thread-safe: a run belongs to one thread.
 */
#ifndef ANOMALY_RUN_H
#define ANOMALY_RUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "anomaly/detector.h"
#include "query/eval.h"
#include "tsdb/labels.h"

#define RUN_PIECE_STEPS 720

struct anomaly_event {
    uint64_t id; /* unique within the detector's run */
    struct tsdb_labels labels;
    int64_t start;
    int64_t end; /* 0 while open */
    double peak_score;
    int64_t peak_t;
    double observed, expected, lower, upper; /* at the peak */
};

/* One followed result series. */
struct run_series {
    struct tsdb_labels labels; /* the result's labels, __name__ dropped */
    uint64_t hash;
    int64_t anomalous_since; /* INT64_MIN: the last step was not */
    struct anomaly_event ev; /* ev.id != 0: an event is open (or pending,
                                until min_duration has passed) */
    bool ev_open;
    uint64_t piece; /* the last piece that had a result for it */
    uint8_t *state; /* the model's block */
};

struct run_sink {
    void *ctx;
    /* A step's result for a series with a value (not called for steps
     * without one).  active: an event is open. */
    int (*point)(void *ctx, const struct run_series *s, int64_t t, double v,
                 const struct anomaly_result *r, bool active);
    /* An event opened, or ended (ev->end set). */
    int (*event)(void *ctx, const struct anomaly_event *ev);
    /* After each piece: a place to commit what point() buffered. */
    int (*flush)(void *ctx);
};

struct run {
    const struct detector_def *def;
    size_t state_size;
    struct run_series *series;
    size_t nseries, cap;
    uint32_t *slots; /* open addressing by hash: index + 1, 0 empty */
    size_t nslots;
    uint64_t next_event_id;
    uint64_t piece;      /* pieces evaluated */
    int64_t last_step;   /* INT64_MIN: nothing evaluated yet */
    uint64_t refused;    /* result series past DETECTOR_MAX_SERIES */
    size_t last_results; /* series in the last evaluated step */
};

void run_init(struct run *r, const struct detector_def *def);
void run_release(struct run *r);

/*
 * Evaluates the steps of def in [from, to] (both rounded to the step
 * grid; from > last_step is not required, but steps must ascend across
 * calls), feeding sink (NULL: learn only).  TSDB_OK; TSDB_EINVAL with
 * err for a query failure (the message of the query engine); TSDB_ENOMEM;
 * a sink's error.
 */
int run_steps(struct run *r, struct tsdb *db, const struct query_opts *qo,
              int64_t from, int64_t to, const struct run_sink *sink, char *err,
              size_t errlen);

/* The step at or before t. */
int64_t run_step_floor(const struct detector_def *def, int64_t t);

/* Finds or adds the series with labels ls (copied; __name__ dropped).
 * NULL past DETECTOR_MAX_SERIES (counted in refused) or on OOM. */
struct run_series *run_series_get(struct run *r, const struct tsdb_labels *ls);

#endif
