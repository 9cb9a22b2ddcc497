/*
 * Route handlers: each turns a request into one answer.  Layer: http/,
 * between the request cycle (server.c) and the endpoint logic (import.c,
 * export.c, metrics.c), which know nothing of libmicrohttpd.
 *
 * Answers, by endpoint:
 * - import: 200 {"status":"success","data":RESULT} when every line was
 *   stored (duplicates of stored samples count as stored); 400 bad_data
 *   with the same data when some lines or samples were refused, the
 *   others having been stored; 415 for a compressed body; 500 internal or
 *   503 unavailable when a commit failed (data says what was stored
 *   before).  RESULT is described in import.h.
 * - export: 200 and the stream; 400 bad_data for a missing or bad
 *   match[], start or end; 422 execution past HTTP_EXPORT_MAX_NAMES.
 */
#include "http/routes.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/json.h"
#include "http/request.h"
#include "http/selector.h"

/* The /metrics page is built whole, in at most this many bytes. */
#define METRICS_PAGE_MAX (1u << 20)
/* An import answer: the counts and at most 100 error details of about
 * 320 bytes each, which JSON escaping may grow up to six times. */
#define IMPORT_ANSWER_MAX (512u << 10)

#define TEXT_FORMAT "text/plain; version=0.0.4; charset=utf-8"
#define OM_FORMAT   "application/openmetrics-text; version=1.0.0; charset=utf-8"

/* ---- /metrics, /-/healthy, /-/ready ---- */

static int metrics_end(struct http_req *r)
{
    struct http_buf b;
    int rc;

    http_buf_init(&b, METRICS_PAGE_MAX);
    rc = http_metrics_render(&r->env->metrics, r->env->db, &b);
    if (rc == TSDB_OK)
        rc = http_reply(r, 200, TEXT_FORMAT, b.p, b.len);
    http_buf_release(&b);
    return rc;
}

static int health_end(struct http_req *r)
{
    return http_reply(r, 200, "text/plain; charset=utf-8", "OK\n", 3);
}

/* ---- POST /api/v1/import/prometheus ---- */

static int import_begin(struct http_req *r)
{
    const char *enc = http_req_header(r, MHD_HTTP_HEADER_CONTENT_ENCODING);
    const char *type = http_req_header(r, MHD_HTTP_HEADER_CONTENT_TYPE);
    enum expfmt_format f = EXPFMT_TEXT;

    if (enc && strcasecmp(enc, "identity") != 0)
        return http_reply_error(r, 415, "unsupported_media_type",
                                "Content-Encoding '%s' is not supported; "
                                "send the body uncompressed",
                                enc);
    if (type && strncasecmp(type, "application/openmetrics-text", 28) == 0)
        f = EXPFMT_OPENMETRICS;
    r->import =
        http_import_new(r->env->db, f, r->arrival_ms, r->env->import_batch);
    return r->import ? TSDB_OK : TSDB_ENOMEM;
}

static int import_data(struct http_req *r, const char *p, size_t n)
{
    return http_import_feed(r->import, p, n);
}

/* The message of a failed import, with what to do about it. */
static const char *import_failure(int rc)
{
    switch (rc) {
    case TSDB_ECLOSED:
        return "the server is shutting down; send the body again after "
               "restart";
    case TSDB_EMAPFULL:
        return "the LMDB map is full; restart with a larger --map-size";
    case TSDB_ENOMEM:
        return "out of memory; send smaller bodies or lower "
               "--import-batch";
    default:
        return "writing the write-ahead log failed; see the server log";
    }
}

static int import_end(struct http_req *r)
{
    struct http_import *im = r->import;
    int rc = r->failed ? r->failed : http_import_finish(im);
    uint64_t rejected = http_import_rejected(im);
    struct http_buf b;
    char msg[600];

    http_import_summary(im, r->note, sizeof(r->note));
    http_buf_init(&b, IMPORT_ANSWER_MAX);
    if (rc != TSDB_OK) {
        snprintf(msg, sizeof(msg),
                 "import stopped: %s (samples committed before this are "
                 "kept, see data.accepted)",
                 import_failure(rc));
        http_json_error_open(
            &b, rc == TSDB_ECLOSED ? "unavailable" : "internal", msg);
    } else if (rejected > 0) {
        snprintf(msg, sizeof(msg),
                 "%" PRIu64 " lines or samples were rejected, see "
                 "data.errors; the %" PRIu64 " others were stored",
                 rejected, http_import_counts(im)->written);
        http_json_error_open(&b, "bad_data", msg);
    } else {
        http_buf_puts(&b, "{\"status\":\"success\"");
    }
    http_buf_puts(&b, ",\"data\":");
    http_import_json(im, &b);
    http_buf_puts(&b, "}\n");
    r->rejected = rc != TSDB_OK || rejected > 0;
    rc = http_reply_json(r,
                         rc == TSDB_ECLOSED ? 503
                         : rc != TSDB_OK    ? 500
                         : rejected > 0     ? 400
                                            : 200,
                         &b);
    http_buf_release(&b);
    return rc;
}

/* ---- GET/POST /api/v1/export ---- */

static ssize_t export_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct http_req *r = cls;
    size_t n;
    int rc = http_export_read(r->export, buf, max, &n);

    (void)pos;
    if (rc != TSDB_OK) {
        r->failed = rc;
        snprintf(r->note, sizeof(r->note), "export cut short: %s",
                 tsdb_strerror(rc));
        return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    return n > 0 ? (ssize_t)n : MHD_CONTENT_READER_END_OF_STREAM;
}

/* Reads start or end into *ms if given; answers 400 if it is bad. */
static int time_param(struct http_req *r, const struct http_params *ps,
                      const char *name, int64_t *ms, bool *answered)
{
    const char *v = http_params_get(ps, name);

    if (!v || !*v || http_parse_time(v, ms) == TSDB_OK)
        return TSDB_OK;
    *answered = true;
    return http_reply_error(r, 400, "bad_data",
                            "invalid parameter \"%s\": cannot parse \"%s\" "
                            "to a valid timestamp",
                            name, v);
}

/* Parses every match[] into *out (count *n).  Answers 400 if bad. */
static int selectors(struct http_req *r, const struct http_params *ps,
                     struct http_selector **out, size_t *n, bool *answered)
{
    struct http_selector *sels = calloc(ps->n ? ps->n : 1, sizeof(*sels));
    char err[512];
    int rc = sels ? TSDB_OK : TSDB_ENOMEM;

    *n = 0;
    for (size_t i = 0; i < ps->n && rc == TSDB_OK; i++) {
        if (strcmp(ps->v[i].name, "match[]") != 0)
            continue;
        rc = http_selector_parse(ps->v[i].value, &sels[*n], err, sizeof(err));
        if (rc == TSDB_OK)
            (*n)++;
        else
            http_selector_release(&sels[*n]);
    }
    if (rc == TSDB_OK && *n == 0) {
        *answered = true;
        rc = http_reply_error(r, 400, "bad_data",
                              "no match[] parameter provided");
    } else if (rc == TSDB_EINVAL || rc == TSDB_ELIMIT) {
        *answered = true;
        rc = http_reply_error(r, 400, "bad_data",
                              "invalid parameter \"match[]\": %s", err);
    }
    if (rc == TSDB_OK && !*answered) {
        *out = sels;
        return TSDB_OK;
    }
    for (size_t i = 0; sels && i < *n; i++)
        http_selector_release(&sels[i]);
    free(sels);
    *n = 0;
    return rc;
}

/* Opens the export or answers why not. */
static int export_open(struct http_req *r, struct http_selector *sels, size_t n,
                       int64_t mint, int64_t maxt)
{
    int rc = http_export_new(r->env->db, sels, n, mint, maxt, &r->export);

    if (rc == TSDB_ELIMIT)
        return http_reply_error(r, 422, "execution",
                                "the selectors match more than %d metric "
                                "names; export with narrower match[]",
                                HTTP_EXPORT_MAX_NAMES);
    if (rc != TSDB_OK)
        return http_reply_error(r, 500, "internal",
                                "cannot start the export: %s",
                                tsdb_strerror(rc));
    return http_reply_stream(r, 200, OM_FORMAT, export_reader, r);
}

static int export_end(struct http_req *r)
{
    struct http_params ps;
    struct http_selector *sels = NULL;
    int64_t mint = INT64_MIN, maxt = INT64_MAX;
    bool answered = false;
    size_t n = 0;
    int rc;

    http_params_init(&ps);
    rc = http_req_params(r, &ps);
    if (rc != TSDB_OK) {
        rc = http_reply_error(r, 400, "bad_data",
                              "cannot read the parameters: %s",
                              tsdb_strerror(rc));
        goto out_params;
    }
    rc = time_param(r, &ps, "start", &mint, &answered);
    if (rc == TSDB_OK && !answered)
        rc = time_param(r, &ps, "end", &maxt, &answered);
    if (rc == TSDB_OK && !answered && maxt < mint) {
        answered = true;
        rc = http_reply_error(r, 400, "bad_data",
                              "invalid parameter \"end\": end timestamp "
                              "must not be before start time");
    }
    if (rc == TSDB_OK && !answered)
        rc = selectors(r, &ps, &sels, &n, &answered);
    if (rc == TSDB_OK && !answered)
        rc = export_open(r, sels, n, mint, maxt);
out_params:
    http_params_release(&ps);
    return rc;
}

/* ---- the table ---- */

static const struct http_route routes[] = {
    {"/metrics", HTTP_GET, HTTP_EP_METRICS, HTTP_BODY_NONE, NULL, NULL,
     metrics_end},
    {"/-/healthy", HTTP_GET, HTTP_EP_HEALTHY, HTTP_BODY_NONE, NULL, NULL,
     health_end},
    {"/-/ready", HTTP_GET, HTTP_EP_READY, HTTP_BODY_NONE, NULL, NULL,
     health_end},
    {"/api/v1/import/prometheus", HTTP_POST, HTTP_EP_IMPORT, HTTP_BODY_STREAM,
     import_begin, import_data, import_end},
    {"/api/v1/export", HTTP_GET | HTTP_POST, HTTP_EP_EXPORT, HTTP_BODY_BUFFER,
     NULL, NULL, export_end},
};

const struct http_route *http_routes(size_t *n)
{
    *n = sizeof(routes) / sizeof(routes[0]);
    return routes;
}
