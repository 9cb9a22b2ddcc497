/*
 * The server's routes and their handlers (the table is in routes.c):
 *
 *   GET  /metrics                   the server's own metrics (metrics.h)
 *   GET  /-/healthy, /-/ready       "OK"
 *   POST /api/v1/import/prometheus  bulk import, streamed (import.h)
 *   GET, POST /api/v1/export        OpenMetrics export (export.h); POST
 *                                   takes a form body, as the query API
 *
 * POST /api/v1/statsd is not routed yet.  To add it: an entry with
 * HTTP_EP_STATSD and HTTP_BODY_BUFFER (the body, at most --max-body, is
 * then in r->body when end runs); the end handler fills r->ingest and sets
 * r->ingested, and the server adds those counts to /metrics and the log.
 */
#ifndef HTTP_ROUTES_H
#define HTTP_ROUTES_H

#include <stddef.h>

#include "http/router.h"

/* The table; borrowed, static. */
const struct http_route *http_routes(size_t *n);

#endif
