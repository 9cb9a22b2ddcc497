/*
 * libmicrohttpd glue: address parsing, the request cycle, body limits,
 * and the per-request metrics and log line.  Layer: http/ over routes.c.
 *
 * Request cycle (libmicrohttpd calls on_request several times):
 * 1. Headers in (*state == NULL): a struct http_req is made, the route
 *    found (404, 405 answered at once), a Content-Length over the route's
 *    limit refused (413), the route's begin handler run.
 * 2. Each piece of body: counted against the limit, then collected
 *    (BUFFER), handed to the route (STREAM) or dropped (NONE).
 * 3. Body complete (a call with no data): 413 if the limit was passed,
 *    else the route's end handler answers.
 * 4. on_completed: metrics, the log line, the request freed.
 *
 * Invariants:
 * 1. Exactly one answer is queued per request, in step 1 or 3.
 * 2. After too_large or failed is set, no more body reaches a handler.
 */
#define LOG_MODULE "http"
#include "http/server.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http/request.h"
#include "http/routes.h"
#include "tsdb/addr.h"
#include "tsdb/log.h"

struct http_server {
    struct MHD_Daemon *mhd;
    struct http_env env;
    const struct http_route *routes;
    size_t nroutes;
};

void http_server_options_init(struct http_server_options *o)
{
    memset(o, 0, sizeof(*o));
    o->listen = "127.0.0.1:9201";
    o->threads = 4;
    o->max_body = 64u << 20;
    o->max_import_body = 0;
    o->import_batch = 50000;
    o->slow_ms = 1000;
    o->query_timeout_ms = 2 * 60 * 1000;
    o->query_max_samples = 50000000;
}

static uint64_t now_us(clockid_t clock)
{
    struct timespec ts;

    clock_gettime(clock, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Copies s for the log and error messages, cut to cap, with '?' for
 * bytes that could forge a log line and for any non-ASCII byte. */
static void log_safe(char *out, size_t cap, const char *s)
{
    size_t i;

    for (i = 0; s[i] && i + 1 < cap; i++) {
        unsigned char ch = (unsigned char)s[i];
        out[i] = ch < 0x20 || ch >= 0x7f ? '?' : (char)ch;
    }
    out[i] = '\0';
}

/* The limit on a route's body, and what sets it; 0 is none.  A StatsD
 * body is also held to STATSD_MAX_BODY, which statsd_ingest enforces. */
static uint64_t body_limit(const struct http_req *r, const char **flag)
{
    if (r->route && r->route->body == HTTP_BODY_STREAM) {
        *flag = "--max-import-body";
        return r->env->max_import_body;
    }
    if (r->endpoint == HTTP_EP_STATSD && r->env->max_body > STATSD_MAX_BODY) {
        *flag = "StatsD body";
        return STATSD_MAX_BODY;
    }
    *flag = "--max-body";
    return r->env->max_body;
}

static enum MHD_Result result(int rc)
{
    return rc == TSDB_OK ? MHD_YES : MHD_NO;
}

/* 413; size is the Content-Length, or every byte read of a chunked body
 * (the part past the limit was dropped). */
static int reply_too_large(struct http_req *r, uint64_t size)
{
    const char *flag;
    uint64_t limit = body_limit(r, &flag);

    r->rejected = true;
    if (r->import) {
        http_import_abort(r->import);
        http_import_summary(r->import, r->note, sizeof(r->note));
        return http_reply_error(
            r, 413, "too_large",
            "request body passed the %s limit of %" PRIu64 " bytes; "
            "samples committed before that point are kept (%" PRIu64
            " accepted): send the rest in a smaller body",
            flag, limit, http_import_counts(r->import)->written);
    }
    return http_reply_error(r, 413, "too_large",
                            "request body of %" PRIu64 " bytes exceeds the "
                            "%s limit of %" PRIu64 " bytes",
                            size, flag, limit);
}

/* Step 1: route, refuse early what can be refused, begin. */
static enum MHD_Result first_call(struct http_server *s, struct http_req *r,
                                  const char *url)
{
    const char *cl = http_req_header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);
    const char *flag;
    uint64_t limit;
    int rc;

    rc = http_router_find(s->routes, s->nroutes, url, r->method, &r->route);
    if (rc == TSDB_ENOTFOUND)
        return result(http_reply_error(r, 404, "not_found",
                                       "no route for path '%s'; see the "
                                       "README for the API",
                                       r->path));
    if (rc != TSDB_OK) {
        http_router_allow(s->routes, s->nroutes, url, r->allow,
                          sizeof(r->allow));
        return result(http_reply_error(r, 405, "method_not_allowed",
                                       "method %s is not allowed on %s; use "
                                       "%s",
                                       r->method_name, r->path, r->allow));
    }
    r->endpoint = r->route->endpoint;
    limit = body_limit(r, &flag);
    if (cl && limit > 0 && strtoull(cl, NULL, 10) > limit)
        return result(reply_too_large(r, strtoull(cl, NULL, 10)));
    if (r->route->body == HTTP_BODY_BUFFER)
        http_buf_init(&r->body, r->env->max_body);
    rc = r->route->begin ? r->route->begin(r) : TSDB_OK;
    if (rc != TSDB_OK && r->status == 0)
        rc = http_reply_error(r, 500, "internal", "cannot start: %s",
                              tsdb_strerror(rc));
    return result(rc);
}

/* Step 2: one piece of body. */
static void on_body(struct http_req *r, const char *p, size_t n)
{
    const char *flag;
    uint64_t limit = body_limit(r, &flag);

    r->body_bytes += n;
    if (r->too_large || r->failed)
        return;
    if (limit > 0 && r->body_bytes > limit) {
        r->too_large = true;
        http_buf_release(&r->body);
        return;
    }
    switch (r->route->body) {
    case HTTP_BODY_BUFFER:
        if (http_buf_add(&r->body, p, n) != TSDB_OK)
            r->failed = r->body.err;
        break;
    case HTTP_BODY_STREAM:
        r->failed = r->route->data(r, p, n);
        break;
    case HTTP_BODY_NONE:
        break;
    }
}

/* Step 3: the body is in. */
static enum MHD_Result last_call(struct http_req *r)
{
    int rc;

    if (r->too_large)
        return result(reply_too_large(r, r->body_bytes));
    if (r->failed && r->route->body == HTTP_BODY_BUFFER)
        return result(http_reply_error(r, 500, "internal",
                                       "cannot hold the request body: %s",
                                       tsdb_strerror(r->failed)));
    rc = r->route->end(r);
    if (rc != TSDB_OK && r->status == 0)
        rc = http_reply_error(r, 500, "internal", "%s", tsdb_strerror(rc));
    return result(rc);
}

static struct http_req *req_new(struct http_server *s, struct MHD_Connection *c,
                                const char *url, const char *method)
{
    struct http_req *r = calloc(1, sizeof(*r));

    if (!r)
        return NULL;
    r->env = &s->env;
    r->conn = c;
    r->endpoint = HTTP_EP_OTHER;
    r->method = http_method_bit(method);
    r->start_us = now_us(CLOCK_MONOTONIC);
    r->arrival_ms = (int64_t)(now_us(CLOCK_REALTIME) / 1000u);
    log_safe(r->method_name, sizeof(r->method_name), method);
    log_safe(r->path, sizeof(r->path), url);
    r->url = strdup(url);
    if (!r->url) {
        free(r);
        return NULL;
    }
    atomic_fetch_add_explicit(&s->env.metrics.in_flight, 1,
                              memory_order_relaxed);
    return r;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
                                  const char *url, const char *method,
                                  const char *version, const char *upload,
                                  size_t *upload_size, void **state)
{
    struct http_server *s = cls;
    struct http_req *r = *state;

    (void)version;
    if (!r) {
        r = req_new(s, c, url, method);
        if (!r)
            return MHD_NO;
        *state = r;
        return first_call(s, r, url);
    }
    if (r->status != 0) {
        *upload_size = 0;
        return MHD_YES;
    }
    if (*upload_size > 0) {
        on_body(r, upload, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    return last_call(r);
}

/* The log line of a request that deserves one. */
static void log_request(const struct http_req *r, uint64_t us,
                        enum MHD_RequestTerminationCode toe)
{
    bool cut = toe != MHD_REQUEST_TERMINATED_COMPLETED_OK;
    const char *sep = r->note[0] ? ": " : "";
    double secs = (double)us / 1e6;

    if (r->status >= 500 || (cut && r->status < 400))
        log_warn("%s %s %u in %.3f s%s%s%s", r->method_name, r->path, r->status,
                 secs, cut ? " (connection ended early)" : "", sep, r->note);
    else if (r->status >= 400 || r->rejected)
        log_warn("%s %s %u in %.3f s%s%s", r->method_name, r->path, r->status,
                 secs, sep, r->note);
    else if (us >= r->env->slow_us)
        log_info("slow request: %s %s %u in %.3f s%s%s", r->method_name,
                 r->path, r->status, secs, sep, r->note);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **state,
                         enum MHD_RequestTerminationCode toe)
{
    struct http_server *s = cls;
    struct http_req *r = *state;
    uint64_t us, series, samples, stale;

    (void)c;
    if (!r)
        return;
    *state = NULL;
    us = now_us(CLOCK_MONOTONIC) - r->start_us;
    if (r->import) {
        if (!r->note[0])
            http_import_summary(r->import, r->note, sizeof(r->note));
        r->ingest = *http_import_counts(r->import);
        r->ingested = true;
    }
    if (r->ingested)
        http_metrics_ingest(&s->env.metrics, r->endpoint, &r->ingest);
    if (r->export) {
        http_export_counts(r->export, &series, &samples, &stale);
        http_metrics_export(&s->env.metrics, series, samples, stale);
        if (!r->note[0])
            snprintf(r->note, sizeof(r->note),
                     "%" PRIu64 " series, %" PRIu64 " samples, %" PRIu64
                     " stale markers left out",
                     series, samples, stale);
    }
    http_metrics_request(&s->env.metrics, r->endpoint, r->status, us);
    log_request(r, us, toe);
    http_import_free(r->import);
    http_export_free(r->export);
    http_buf_release(&r->body);
    free(r->url);
    free(r);
    atomic_fetch_sub_explicit(&s->env.metrics.in_flight, 1,
                              memory_order_relaxed);
}

int http_server_start(struct tsdb *db, const struct http_server_options *o,
                      struct http_server **out, char *err, size_t errlen)
{
    struct http_server *s;
    struct sockaddr_in sa;
    unsigned threads = o->threads ? o->threads : 4;
    int rc = tsdb_addr_parse(o->listen, "--listen", &sa, err, errlen);

    if (rc != TSDB_OK)
        return rc;
    if (o->max_body == 0 || o->import_batch == 0 ||
        o->import_batch > HTTP_IMPORT_MAX_BATCH) {
        snprintf(err, errlen,
                 "--max-body must be > 0 and --import-batch 1 to %d",
                 HTTP_IMPORT_MAX_BATCH);
        return TSDB_EINVAL;
    }
    s = calloc(1, sizeof(*s));
    if (!s)
        return TSDB_ENOMEM;
    http_metrics_init(&s->env.metrics);
    s->env.db = db;
    s->env.statsd = o->statsd;
    s->env.rollups = o->rollups;
    s->env.detectors = o->detectors;
    s->env.max_body = o->max_body;
    s->env.max_import_body = o->max_import_body;
    s->env.import_batch = o->import_batch;
    s->env.slow_us = (uint64_t)o->slow_ms * 1000u;
    query_opts_init(&s->env.query);
    s->env.query.timeout_ms = o->query_timeout_ms;
    s->env.query.max_samples = o->query_max_samples;
    s->routes = http_routes(&s->nroutes);
    s->mhd = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, 0, NULL, NULL,
        on_request, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
        MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, s, MHD_OPTION_CONNECTION_TIMEOUT, 60u, MHD_OPTION_END);
    if (!s->mhd) {
        snprintf(err, errlen,
                 "cannot listen on %s (in use, or not an "
                 "address of this machine)",
                 o->listen);
        free(s);
        return TSDB_EIO;
    }
    log_info("listening on %s with %u threads", o->listen, threads);
    *out = s;
    return TSDB_OK;
}

void http_server_stop(struct http_server *s)
{
    if (!s)
        return;
    MHD_stop_daemon(s->mhd);
    free(s);
}
