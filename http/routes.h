/*
 * The server's routes and their handlers (the table is in routes.c):
 *
 *   GET  /metrics                   the server's own metrics (metrics.h)
 *   GET  /-/healthy, /-/ready       "OK"
 *   POST /api/v1/import/prometheus  bulk import, streamed (import.h)
 *   GET, POST /api/v1/export        OpenMetrics export (export.h); POST
 *                                   takes a form body, as the query API
 *   POST /api/v1/statsd             StatsD lines, the body read whole (at
 *                                   most --max-body and STATSD_MAX_BODY)
 *                                   and handed to statsd_ingest
 *   GET  /api/v1/status/tsdb        cardinality figures (tsdb/status.h)
 *                                   in Prometheus's shape; ?limit=N
 *   GET, POST /api/v1/query, /api/v1/query_range, /api/v1/series,
 *             /api/v1/labels, /api/v1/query_exemplars,
 *             /api/v1/format_query  the Prometheus query API
 *                                   (queryroutes.h)
 *   GET  /api/v1/label/NAME/values, /api/v1/metadata,
 *        /api/v1/status/buildinfo, /api/v1/rules, /api/v1/alerts
 *   GET  /api/v1/rollups, PUT and DELETE /api/v1/rollups/NAME
 *                                   rollup rules (rollups.h)
 *   GET  /api/v1/detectors, PUT and DELETE /api/v1/detectors/NAME,
 *   GET  /api/v1/anomalies          detectors and events (detectors.h)
 */
#ifndef HTTP_ROUTES_H
#define HTTP_ROUTES_H

#include <stddef.h>

#include "http/router.h"

/* The table; borrowed, static. */
const struct http_route *http_routes(size_t *n);

#endif
