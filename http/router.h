/*
 * The route table: which handler answers a (path, method) pair.  Paths
 * match exactly, except that a segment written as a lone '*' in a route's
 * path matches any one non-empty segment (the label name of the label
 * values route).  A path that no route has is 404; a
 * path that routes have, with a method none of them takes, is 405 with an
 * Allow header listing the methods they do take.  GET always allows HEAD.
 *
 * A route also says what to do with a request body:
 *   HTTP_BODY_NONE    drop it (GET routes)
 *   HTTP_BODY_BUFFER  collect it whole, up to --max-body, then answer
 *   HTTP_BODY_STREAM  hand each piece to the route as it arrives, with no
 *                     size limit but --max-import-body (bounded memory)
 * Pure code: the handlers run in server.c's request cycle.
 */
#ifndef HTTP_ROUTER_H
#define HTTP_ROUTER_H

#include <stddef.h>

#include "http/metrics.h"
#include "tsdb/error.h"

enum http_method {
    HTTP_GET = 1 << 0,
    HTTP_HEAD = 1 << 1,
    HTTP_POST = 1 << 2,
    HTTP_PUT = 1 << 3,
    HTTP_DELETE = 1 << 4,
    HTTP_OTHER = 1 << 5, /* any method we do not name */
};

enum http_body_mode {
    HTTP_BODY_NONE,
    HTTP_BODY_BUFFER,
    HTTP_BODY_STREAM,
};

struct http_req; /* one request in progress, see request.h */

/*
 * Handlers return TSDB_OK once they queued an answer (end) or have
 * nothing to say yet (begin, data); begin may also queue an answer, which
 * ends the request.  Any other code is a failure the server answers with
 * 500 (begin, end) or remembers for end (data).
 */
struct http_route {
    const char *path;
    unsigned methods; /* HTTP_GET | HTTP_POST ... */
    enum http_endpoint endpoint;
    enum http_body_mode body;
    int (*begin)(struct http_req *r); /* optional: headers are in */
    int (*data)(struct http_req *r, const char *p, size_t n); /* STREAM */
    int (*end)(struct http_req *r); /* the body is in: answer */
};

/* The bit of a method name ("GET" -> HTTP_GET), HTTP_OTHER if unknown. */
unsigned http_method_bit(const char *method);

/*
 * Finds the route for path and method in t[0..n).  Returns TSDB_OK with
 * *out, TSDB_ENOTFOUND when no route has the path (404), TSDB_EINVAL when
 * routes have it but not for this method (405).
 */
int http_router_find(const struct http_route *t, size_t n, const char *path,
                     unsigned method, const struct http_route **out);

/* Writes the Allow header value for path ("GET, HEAD, POST") into out. */
void http_router_allow(const struct http_route *t, size_t n, const char *path,
                       char *out, size_t cap);

#endif
