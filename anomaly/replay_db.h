/*
 * tsdb-replay's stored-history mode: runs detector definitions over the
 * samples of a data folder, step by step, exactly as the live scheduler
 * would have from --start on (after learning, quietly, from the history
 * before it), and reports the events it would have raised with a summary
 * per series.  The folder is opened read-only, so tsdbd may keep running
 * on it; what the server has not yet checkpointed is not seen.
 */
#ifndef ANOMALY_REPLAY_DB_H
#define ANOMALY_REPLAY_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct replay_db_opts {
    const char *data;      /* the data folder */
    const char *detectors; /* a JSON file: {"NAME": {definition}, ...} */
    int64_t start, end;    /* ms; steps in [start, end] */
    bool json;             /* machine-readable report */
    const char *plot;      /* NULL, or an SVG file to draw */
    bool save_state;       /* hand the learned states to the live detector */
    bool progress;         /* progress line on stderr */
};

/*
 * Runs every detector of o->detectors and writes the report to out.
 * TSDB_OK; TSDB_ENOTFOUND for a missing folder or file; TSDB_EINVAL for a
 * bad definition or range, with err naming the file, detector and field;
 * TSDB_EIO; TSDB_ENOMEM.
 */
int replay_db_run(const struct replay_db_opts *o, FILE *out, char *err,
                  size_t errlen);

#endif
