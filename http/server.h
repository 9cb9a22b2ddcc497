/*
 * The HTTP server on libmicrohttpd: listens on one address (loopback by
 * default) and answers the routes of routes.h.  Unknown paths get 404, a
 * known path with another method 405 with an Allow header; every error is
 * Prometheus's JSON envelope {"status":"error","errorType":...,"error":...}
 * whose message says what to fix.
 *
 * Request bodies: a route either collects its body whole, refused with 413
 * past max_body, or streams it (the import) in bounded memory, refused
 * with 413 only past max_import_body when that is set.  A Content-Length
 * over the limit is refused before the body is read; a chunked body is
 * read and dropped from the point it passes the limit, then refused.
 *
 * Logging: one line per request that was slow, refused, or refused part
 * of its content (method, path, status, duration, counts); nothing per
 * line or sample.
 *
 * LIMIT: a chunked body that passes its limit is still read to its end
 * (and dropped) before the 413 goes out, because libmicrohttpd cannot
 * answer while a body is arriving.  Memory stays bounded, but a client
 * that keeps sending holds its connection for as long as it sends.
 * Clients that send Content-Length are refused at once.
 *
 * LIMIT: concurrent imports are not capped.  Each holds about 3 MB at
 * the default --import-batch (parser line buffers, series cache, one
 * batch in the appender and its WAL record), so the connection limit of
 * libmicrohttpd (about a thousand) bounds the total near 3 GB.  Lower
 * --import-batch, or put a proxy in front, where many writers import at
 * once.
 *
 * Threads: libmicrohttpd's thread pool (threads workers, each polling its
 * own connections with epoll).  Handlers only do bounded work per call
 * (one piece of a body, one commit, one piece of an export), so a slow
 * client or a large import delays the other connections of its worker by
 * at most one such step.  The database handle is shared by all of them
 * (see tsdb/db.h).
 */
#ifndef HTTP_SERVER_H
#define HTTP_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "http/statsd.h"
#include "anomaly/engine.h"
#include "rollup/rollup.h"
#include "tsdb/db.h"

struct http_server_options {
    const char *listen;         /* "HOST:PORT", IPv4 literal */
    unsigned threads;           /* request threads */
    size_t max_body;            /* collected bodies, bytes */
    uint64_t max_import_body;   /* streamed import bodies, bytes; 0: none */
    size_t import_batch;        /* samples per import commit */
    unsigned slow_ms;           /* log requests that take longer */
    int64_t query_timeout_ms;   /* a query's time limit; 0: none */
    uint64_t query_max_samples; /* samples a query may hold at once */
    /* StatsD, borrowed until http_server_stop; NULL: POST /api/v1/statsd
     * answers 503. */
    struct http_statsd *statsd;
    /* Rollup rules, borrowed until http_server_stop; NULL: the
     * /api/v1/rollups endpoints answer 503. */
    struct rollup_engine *rollups;
    /* Detectors, borrowed likewise; NULL: their endpoints answer 503. */
    struct anomaly_engine *detectors;
};

/* Defaults: 127.0.0.1:9201, 4 threads, max_body 64 MiB, no import body
 * limit, import_batch 50000, slow_ms 1000, no StatsD, queries limited to
 * 2 minutes and 50,000,000 samples (Prometheus's defaults). */
void http_server_options_init(struct http_server_options *o);

struct http_server;

/*
 * Starts serving db.  Returns TSDB_OK with *out (stop with
 * http_server_stop), TSDB_EINVAL for a listen address that does not parse
 * or an option out of range (err says why), TSDB_ENOMEM, or TSDB_EIO if
 * the socket cannot be bound.
 */
int http_server_start(struct tsdb *db, const struct http_server_options *o,
                      struct http_server **out, char *err, size_t errlen);

/* Stops accepting, ends the connections (an import in progress keeps what
 * it committed and is not acknowledged), frees s.  NULL is a no-op. */
void http_server_stop(struct http_server *s);

#endif
