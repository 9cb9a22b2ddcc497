/*
 * The HTTP server on libmicrohttpd: listens on one address (loopback by
 * default), routes requests, answers errors as Prometheus-style JSON.
 * Routes so far: GET /metrics (the server's own figures, Prometheus text
 * format), GET /-/healthy and /-/ready.  Every other path is 404 and a
 * known path with another method is 405, both with a JSON body naming
 * what to fix.
 *
 * Threads: libmicrohttpd's internal thread pool serves requests; the
 * database handle is shared by them (see tsdb/db.h).
 */
#ifndef HTTP_SERVER_H
#define HTTP_SERVER_H

#include "tsdb/db.h"

struct http_server_options {
    const char *listen; /* "HOST:PORT", IPv4 literal */
    unsigned threads;   /* request threads */
};

struct http_server;

/*
 * Starts serving db.  Returns TSDB_OK with *out (stop with
 * http_server_stop), TSDB_EINVAL for a listen address that does not parse
 * (err says why), TSDB_EIO if the socket cannot be bound.
 */
int http_server_start(struct tsdb *db, const struct http_server_options *o,
                      struct http_server **out, char *err, size_t errlen);

/* Stops accepting, waits for requests in progress, frees s. */
void http_server_stop(struct http_server *s);

#endif
