/*
 * One HTTP request in progress, as the server and the route handlers share
 * it, and the ways to answer it.  Internal to http/: server.c creates a
 * request at its first callback and frees it when libmicrohttpd reports it
 * complete; handlers (routes.c) read it and queue one answer.
 *
 * Every error answer is Prometheus's JSON envelope (json.h) with a message
 * that says what to fix.
 */
#ifndef HTTP_REQUEST_H
#define HTTP_REQUEST_H

#include <microhttpd.h>
#include <stdbool.h>
#include <stdint.h>

#include "http/buf.h"
#include "http/export.h"
#include "http/import.h"
#include "http/metrics.h"
#include "http/params.h"
#include "http/router.h"
#include "http/selector.h"
#include "anomaly/engine.h"
#include "rollup/rollup.h"
#include "http/statsd.h"
#include "query/eval.h"
#include "tsdb/db.h"

/* What every request may use: shared by all threads, read-only but for
 * the atomic metrics. */
struct http_env {
    struct tsdb *db;
    struct http_statsd *statsd;    /* NULL: POST /api/v1/statsd answers 503 */
    struct rollup_engine *rollups; /* NULL: /api/v1/rollups answers 503 */
    struct anomaly_engine *detectors; /* NULL: detector endpoints 503 */
    struct http_metrics metrics;
    size_t max_body;          /* BUFFER routes, bytes */
    uint64_t max_import_body; /* STREAM routes, bytes; 0: no limit */
    size_t import_batch;      /* samples per import commit */
    uint64_t slow_us;         /* log requests slower than this */
    struct query_opts query;  /* lookback, timeout, sample limit */
};

struct http_req {
    struct http_env *env;
    struct MHD_Connection *conn;
    const struct http_route *route; /* NULL for 404 and 405 */
    enum http_endpoint endpoint;
    unsigned method;     /* HTTP_GET ... */
    char method_name[8]; /* for the log, cut */
    char path[128];      /* for the log, cut, unprintable bytes as '?' */
    char *url;           /* the whole path, as libmicrohttpd decoded it */
    uint64_t start_us;   /* monotonic */
    int64_t arrival_ms;  /* wall clock, for samples without timestamps */

    unsigned status;      /* answer queued, 0 before */
    uint64_t body_bytes;  /* received so far */
    bool too_large;       /* over the limit: the rest is dropped */
    int failed;           /* a data handler's error, dropped the rest */
    struct http_buf body; /* BUFFER routes */
    struct http_import *import;
    struct http_export *export;
    struct http_ingest_counts ingest; /* a write endpoint's counts, */
    bool ingested;                    /* recorded at completion if set */
    bool rejected;  /* the answer refused some of the content */
    char note[512]; /* counts for the log line */
    char allow[64]; /* an Allow header for the answer, if not empty */
};

/* Queues status with a copy of body[0..len).  TSDB_OK, or TSDB_ENOMEM /
 * TSDB_EIO when libmicrohttpd refused (the server then drops the
 * connection). */
int http_reply(struct http_req *r, unsigned status, const char *type,
               const char *body, size_t len);

/* Queues b's bytes as a JSON answer, taking them (b is left empty). */
int http_reply_json(struct http_req *r, unsigned status, struct http_buf *b);

/* Queues 200 {"status":"success","data":DATA}, data being JSON text
 * (malloc'd; taken and freed), or 500 when data is NULL: the listings that
 * build it return NULL only when out of memory. */
int http_reply_data(struct http_req *r, char *data);

/* Queues the JSON error envelope; msg is printf-formatted. */
int http_reply_error(struct http_req *r, unsigned status, const char *type,
                     const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Queues an answer whose body comes from reader as the client takes it;
 * see MHD_create_response_from_callback.  cls is borrowed until the
 * request completes. */
int http_reply_stream(struct http_req *r, unsigned status, const char *type,
                      MHD_ContentReaderCallback reader, void *cls);

/* A request header, or NULL. */
const char *http_req_header(const struct http_req *r, const char *name);

/*
 * Fills ps with the request's parameters: a form body first (for BUFFER
 * routes with Content-Type application/x-www-form-urlencoded), then the
 * URL query string, so that for single values the body wins.  Returns
 * TSDB_OK, TSDB_EINVAL (bad form encoding), TSDB_ELIMIT or TSDB_ENOMEM.
 */
int http_req_params(struct http_req *r, struct http_params *ps);

/*
 * Reads time parameter name (start, end, time) into *ms if it is given and
 * not empty.  A bad value is answered with 400 bad_data naming it (with
 * prometheus_text, in the words of Prometheus's metadata endpoints), and
 * *answered set.  Returns TSDB_OK or the answer's queueing error.
 */
int http_req_time_param(struct http_req *r, const struct http_params *ps,
                        const char *name, bool prometheus_text, int64_t *ms,
                        bool *answered);

/*
 * Parses every match[] into *out (count *n; release each with
 * http_selector_release, then free *out).  A bad selector, or none when
 * required, is answered with 400 bad_data and *answered set; prefixed
 * puts "invalid parameter \"match[]\": " first, as Prometheus's series
 * endpoint does and its label endpoints do not.
 */
int http_req_selectors(struct http_req *r, const struct http_params *ps,
                       bool required, bool prefixed, struct http_selector **out,
                       size_t *n, bool *answered);

#endif
