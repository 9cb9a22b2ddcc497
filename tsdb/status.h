/*
 * The figures behind Prometheus's GET /api/v1/status/tsdb: which metrics
 * have the most series, which labels the most values, which label pairs
 * the most series, plus head figures.  The HTTP layer renders them as
 * seriesCountByMetricName, labelValueCountByLabelName,
 * seriesCountByLabelValuePair, memoryInBytesByLabelName and headStats.
 *
 * Source: the index postings (storage-format.md section 6.6), not the
 * series.  One pass over every postings key in one LMDB read snapshot:
 * keys are sorted by label name then value, so per-name figures need no
 * table, and each key's series count is one O(1) mdb_cursor_count.  No
 * series is decoded.
 *
 * Cost: O(P log N) time for P distinct label pairs (every key read once)
 * and top N; O(N) memory.  A million pairs take well under a second.
 * Head figures walk the in-memory series under the head lock: O(head
 * series) pointer reads, during which appends wait.
 *
 * Differences from Prometheus, which reads its head block only: the
 * index counts every stored series, including series whose samples are
 * all older than the head (until retention drops them).
 *
 * Thread rules: any thread; the snapshot does not block writers.
 */
#ifndef TSDB_STATUS_H
#define TSDB_STATUS_H

#include <stddef.h>
#include <stdint.h>

#include "tsdb/db.h"

/* Prometheus's default for the limit parameter. */
#define TSDB_STATUS_DEFAULT_TOP 10
/* A bigger top N is cut to this. */
#define TSDB_STATUS_MAX_TOP 10000

struct tsdb_status_entry {
    char *name;     /* metric name, or label name */
    char *value;    /* label value for the pair lists; else NULL */
    uint64_t count; /* series, distinct values, or bytes (see below) */
};

/* A top-N list, largest count first; ties by name, then value, bytewise
 * ascending, so the answer is the same for the same data. */
struct tsdb_status_list {
    struct tsdb_status_entry *v;
    size_t n;
};

struct tsdb_status_head {
    uint64_t series;  /* series in memory (tsdb_stats.series) */
    uint64_t chunks;  /* open chunks with samples plus sealed unflushed */
    int64_t min_time; /* oldest sample in memory; INT64_MAX if none */
    int64_t max_time; /* newest sample accepted; INT64_MIN if none */
};

/* Caller-owned; release with tsdb_status_release. */
struct tsdb_status {
    uint64_t series;      /* every series in the index */
    uint64_t label_pairs; /* distinct name=value pairs (numLabelPairs) */
    uint64_t label_names; /* distinct label names, __name__ included */
    struct tsdb_status_list series_by_metric; /* series per __name__ value */
    struct tsdb_status_list values_by_name;   /* distinct values per name */
    struct tsdb_status_list series_by_pair;   /* series per name=value */
    /* Per label name, the sum over its values of value bytes x series:
     * what Prometheus reports as memoryInBytesByLabelName. */
    struct tsdb_status_list bytes_by_name;
    struct tsdb_status_head head;
};

/*
 * Fills *out with the top `top` entries of each list (0 means
 * TSDB_STATUS_DEFAULT_TOP; more than TSDB_STATUS_MAX_TOP is cut to it).
 * Every string is copied: nothing is borrowed from LMDB.  Returns TSDB_OK,
 * TSDB_ENOMEM, TSDB_ECORRUPT (a postings key without its separator), or
 * TSDB_EIO; on error *out is empty.
 */
int tsdb_status_get(struct tsdb *db, size_t top, struct tsdb_status *out);

/* Frees what tsdb_status_get allocated; safe on a zeroed struct. */
void tsdb_status_release(struct tsdb_status *st);

#endif
