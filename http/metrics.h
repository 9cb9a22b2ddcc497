/*
 * The server's own metrics, served at GET /metrics in the Prometheus text
 * format 0.0.4.  Request threads record into plain atomic counters with
 * relaxed ordering: no lock on the hot path, and a scrape may see one
 * counter a little ahead of another, which Prometheus counters allow.
 *
 * Families (every name starts tsdb_; see http_metrics_render):
 *   http_requests_total{endpoint,code}      requests answered
 *   http_request_duration_seconds{endpoint} histogram, buckets
 *                                           .001 .005 .01 .05 .1 .5 1 5 10
 *   http_requests_in_flight                 gauge
 *   ingest_lines_total{endpoint}            lines read by write endpoints
 *   ingest_lines_rejected_total{endpoint,reason}
 *   ingest_samples_written_total{endpoint}  samples stored
 *   ingest_samples_duplicate_total{endpoint} repeats of a stored sample
 *   ingest_samples_rejected_total{endpoint,reason}
 *   export_series_total, export_samples_total,
 *   export_stale_markers_skipped_total
 * plus the storage figures of tsdb_stats (head series, samples, chunks,
 * WAL and LMDB sizes) and the cardinality rules of tsdb/guard.h:
 *   guard_limit{metric,label,policy}        each rule's limit
 *   guard_used{metric,label}                what it counts now
 *   guard_series_refused_total{metric,label} series refused
 *   guard_values_folded_total{metric,label} values folded into
 *                                           __overflow__
 * (metric="*" for a rule over every metric, label="" for a series rule).
 *
 * The ingest_* families count the import only.  StatsD has its own
 * (http/statsd.h): its lines arrive by HTTP and UDP, and its samples are
 * written later, by the flush.
 */
#ifndef HTTP_METRICS_H
#define HTTP_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

#include "http/buf.h"
#include "tsdb/db.h"

/* Endpoints as counted; each route names one.  OTHER counts requests for
 * unknown paths. */
enum http_endpoint {
    HTTP_EP_METRICS,
    HTTP_EP_HEALTHY,
    HTTP_EP_READY,
    HTTP_EP_IMPORT,
    HTTP_EP_EXPORT,
    HTTP_EP_STATSD,
    HTTP_EP_STATUS,
    HTTP_EP_QUERY,
    HTTP_EP_QUERY_RANGE,
    HTTP_EP_SERIES,
    HTTP_EP_LABELS,
    HTTP_EP_LABEL_VALUES,
    HTTP_EP_API_META, /* metadata, buildinfo and the empty answers */
    HTTP_EP_ROLLUPS,
    HTTP_EP_DETECTORS,
    HTTP_EP_OTHER,
    HTTP_EP_COUNT
};

/* Why a line or sample was not stored. */
enum http_reject {
    HTTP_REJ_PARSE,          /* line does not parse (lines only) */
    HTTP_REJ_INVALID_SERIES, /* label set refused by the storage */
    HTTP_REJ_LIMIT,          /* a series or label limit, named in the error */
    HTTP_REJ_OUT_OF_ORDER,   /* older than the series' newest sample */
    HTTP_REJ_CONFLICT,       /* same timestamp, different value */
    HTTP_REJ_OUT_OF_BOUNDS,  /* older than the retention window */
    HTTP_REJ_COUNT
};

/* Status codes counted one by one; others go to the last slot. */
#define HTTP_METRICS_CODES                                                     \
    {                                                                          \
        200, 204, 400, 404, 405, 413, 415, 422, 500, 503                       \
    }
#define HTTP_METRICS_NCODES   11
#define HTTP_METRICS_NBUCKETS 10 /* nine bounds plus +Inf */

/* What one write request did, by endpoint; filled by the endpoint. */
struct http_ingest_counts {
    uint64_t lines;
    uint64_t lines_rejected[HTTP_REJ_COUNT];
    uint64_t written;
    uint64_t duplicates;
    uint64_t samples_rejected[HTTP_REJ_COUNT];
};

struct http_metrics {
    atomic_uint_fast64_t requests[HTTP_EP_COUNT][HTTP_METRICS_NCODES];
    atomic_uint_fast64_t buckets[HTTP_EP_COUNT][HTTP_METRICS_NBUCKETS];
    atomic_uint_fast64_t duration_us[HTTP_EP_COUNT];
    atomic_int_fast64_t in_flight;
    atomic_uint_fast64_t lines[HTTP_EP_COUNT];
    atomic_uint_fast64_t lines_rejected[HTTP_EP_COUNT][HTTP_REJ_COUNT];
    atomic_uint_fast64_t written[HTTP_EP_COUNT];
    atomic_uint_fast64_t duplicates[HTTP_EP_COUNT];
    atomic_uint_fast64_t samples_rejected[HTTP_EP_COUNT][HTTP_REJ_COUNT];
    atomic_uint_fast64_t export_series;
    atomic_uint_fast64_t export_samples;
    atomic_uint_fast64_t export_stale;
};

/* Zeroes m (caller-owned; nothing to release). */
void http_metrics_init(struct http_metrics *m);

/* The endpoint's label value ("import", ...). */
const char *http_endpoint_name(enum http_endpoint ep);

/* The reason's label value ("parse_error", ...). */
const char *http_reject_name(enum http_reject r);

/* Counts one answered request and its duration.  Any thread. */
void http_metrics_request(struct http_metrics *m, enum http_endpoint ep,
                          unsigned code, uint64_t duration_us);

/* Adds a write request's counts.  Any thread. */
void http_metrics_ingest(struct http_metrics *m, enum http_endpoint ep,
                         const struct http_ingest_counts *c);

/* Adds an export's counts.  Any thread. */
void http_metrics_export(struct http_metrics *m, uint64_t series,
                         uint64_t samples, uint64_t stale);

/*
 * Appends the whole page to out: these counters, then the storage figures
 * of db.  Returns TSDB_OK, or out's sticky error (TSDB_EFULL if out's
 * maximum is too small for the page, TSDB_ENOMEM).
 */
int http_metrics_render(struct http_metrics *m, struct tsdb *db,
                        struct http_buf *out);

/* Writes the HELP and TYPE lines of one family to b (for every page part
 * rendered beside this one, such as http/statsd.c's). */
void http_metrics_family(struct http_buf *b, const char *name, const char *type,
                         const char *help);

/* Writes one family with a single unlabelled sample v. */
void http_metrics_single(struct http_buf *b, const char *name, const char *type,
                         const char *help, uint64_t v);

#endif
