/*
 * Export (GET /api/v1/export): stored samples of the series matching any
 * of several selectors, within [mint, maxt], streamed as OpenMetrics text
 * that this server's import and `promtool tsdb create-blocks-from
 * openmetrics` both read back exactly:
 *
 *   # TYPE http_requests_total unknown
 *   http_requests_total{code="200",job="api"} 1027 1704067200.123
 *   ...
 *   # EOF
 *
 * 1. Families are grouped by metric name, names in byte order, with one
 *    "# TYPE <name> unknown" line each (the type is not stored).  Within a
 *    family, series come in label-set order per selector, each series
 *    once even when several selectors match it.
 * 2. Values use http_fmt_value (shortest form that reads back bit-exact,
 *    NaN, +Inf, -Inf); timestamps are seconds with three decimals
 *    (http_fmt_seconds), so no millisecond is lost.
 * 3. Stale markers (the NaN with bits 0x7ff0000000000002) are left out and
 *    counted: OpenMetrics has one NaN spelling, and a stale marker written
 *    as NaN would come back as an ordinary NaN sample, which PromQL shows
 *    where the series should be absent.  A re-imported series therefore
 *    fades after the 5 m lookback instead of at the marker, as backfilled
 *    data does in Prometheus.  Other NaN payloads come back as the
 *    parser's NaN.
 * 4. Memory is bounded: one query (one metric name, one selector) is open
 *    at a time, series are written one at a time batch by batch, and the
 *    output buffer holds at most HTTP_EXPORT_CHUNK bytes plus one line.
 *
 * LIMIT: series without a __name__ label are not exported.  Why: an
 * OpenMetrics line must start with a metric name.  Every write path here
 * requires one, so such series only come from the C API.  Behaviour: they
 * are skipped silently.
 *
 * LIMIT: the names of the matching metrics are collected before the first
 * byte is sent, up to HTTP_EXPORT_MAX_NAMES.  Why: families must not
 * interleave, so output goes name by name.  Behaviour past it: TSDB_ELIMIT
 * from http_export_new (the server answers 422 asking for narrower
 * match[]).
 *
 * LIMIT: an export holds an LMDB read snapshot for as long as one metric
 * name's query stays open, and the storage copies the head chunks of that
 * name's matching series when the query opens.  A slow client on a name
 * with very many series therefore keeps old pages from being reused and
 * holds those copies until it reads on.
 *
 * Threads: an export belongs to one thread at a time.
 */
#ifndef HTTP_EXPORT_H
#define HTTP_EXPORT_H

#include <stddef.h>
#include <stdint.h>

#include "http/selector.h"
#include "tsdb/db.h"

/* Output is produced in pieces of about this size. */
#define HTTP_EXPORT_CHUNK (64 * 1024)
/* Metric names one export may span. */
#define HTTP_EXPORT_MAX_NAMES 1000000

struct http_export;

/*
 * Prepares an export of the series matching any of sels[0..nsel) (nsel
 * >= 1) with samples in [mint, maxt] (ms, inclusive).  Takes ownership of
 * sels (an array from malloc of initialised selectors): it is released
 * and freed with the export, also when this call fails.
 * Returns TSDB_OK with *out (free with http_export_free), TSDB_EINVAL
 * (nsel == 0 or mint > maxt), TSDB_ELIMIT (too many metric names),
 * TSDB_ENOMEM or TSDB_EIO.
 */
int http_export_new(struct tsdb *db, struct http_selector *sels, size_t nsel,
                    int64_t mint, int64_t maxt, struct http_export **out);

/*
 * Writes the next at most cap bytes of the stream into buf.  Returns
 * TSDB_OK with *n > 0, or with *n == 0 once "# EOF" has been delivered;
 * or TSDB_ECORRUPT, TSDB_ENOMEM, TSDB_EIO when reading the store failed
 * (the stream is then cut short, without "# EOF", so a reader sees it is
 * incomplete).
 */
int http_export_read(struct http_export *e, char *buf, size_t cap, size_t *n);

/* Series and samples written so far, stale markers left out. */
void http_export_counts(const struct http_export *e, uint64_t *series,
                        uint64_t *samples, uint64_t *stale);

/* Closes the query and frees e.  NULL is a no-op. */
void http_export_free(struct http_export *e);

#endif
