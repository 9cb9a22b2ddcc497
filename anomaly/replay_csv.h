/*
 * tsdb-replay's CSV mode: runs one model over CSV files of
 * "timestamp,value" rows (the Numenta Anomaly Benchmark layout) and
 * writes, per input, "timestamp,value,anomaly_score" under the same
 * relative path in an output folder, one row per valid input row, in
 * input order, whatever the timestamps do (NAB files repeat or step back
 * at a daylight-saving change).  The phase is counted in UTC.
 */
#ifndef ANOMALY_REPLAY_CSV_H
#define ANOMALY_REPLAY_CSV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "anomaly/model.h"
#include "anomaly/plot.h"

struct anomaly_replay_opts {
    const struct anomaly_model *model;
    const char *const *names; /* --param names[i]=values[i]; borrowed */
    const char *const *values;
    size_t nparams;
    int64_t interval_ms;  /* 0: each file's most common spacing */
    int64_t season_ms;    /* 0: none */
    double sensitivity;   /* band half-width in deviations */
    double min_deviation; /* see struct anomaly_config */
    bool strict;          /* a bad row fails the run */
    bool progress;        /* progress line on stderr */
    unsigned time_passes; /* extra passes over each file, timed only */
    FILE *log;            /* bad rows are reported here, one a line */
    struct plot *plot;    /* NULL, or panels for the first files; the
                             windows drawn are the anomalous steps */
};

struct anomaly_replay_stats {
    uint64_t files, rows, bad_rows;
    uint64_t steps_timed; /* model steps inside the timed loops */
    double step_cpu_s;    /* CPU seconds spent in them */
};

void anomaly_replay_opts_init(struct anomaly_replay_opts *o);

/*
 * Checks o's model parameters as the first file would see them (an
 * interval of a minute when none is given).  TSDB_OK or TSDB_EINVAL with
 * err naming the parameter.
 */
int anomaly_replay_check(const struct anomaly_replay_opts *o, char *err,
                         size_t errlen);

/*
 * Replays inputs[0..n) (files, or folders walked for *.csv, keeping the
 * sub-folders below the folder given) into out_dir, created as needed.
 * TSDB_OK with *st; TSDB_ENOTFOUND for a missing input, TSDB_EINVAL for
 * bad parameters, a file without rows, or (strict) a bad row,
 * TSDB_EIO, TSDB_ENOMEM; err says which file and why.  Without strict, a
 * bad row is reported on o->log as "FILE:LINE: what" and skipped.
 */
int anomaly_replay_csv(const struct anomaly_replay_opts *o,
                       const char *const *inputs, size_t n, const char *out_dir,
                       struct anomaly_replay_stats *st, char *err,
                       size_t errlen);

/* Reads "YYYY-MM-DD HH:MM:SS[.fff]" (or with a T, optional Z) as UTC
 * into *ms.  False for anything else. */
bool anomaly_replay_parse_time(const char *s, size_t len, int64_t *ms);

#endif
