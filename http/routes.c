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
 * - statsd: 200 {"status":"success","data":RESULT} when every line was
 *   accepted; 400 bad_data with the same data when some were rejected
 *   (the others are kept); 413 past the body limit (server.c); 503
 *   unavailable when the journal cannot be written (nothing was kept).
 *   Every 2xx and 400 comes after the journal write: what it counts as
 *   accepted survives kill -9.  RESULT is described in statsd.h.
 * - status/tsdb: Prometheus 2.42's answer; 400 bad_data for a limit that
 *   is not a positive integer.
 */
#include "http/routes.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/json.h"
#include "http/queryroutes.h"
#include "http/request.h"
#include "http/selector.h"
#include "http/detectors.h"
#include "http/rollups.h"
#include "http/statsd.h"
#include "tsdb/status.h"

/*
 * The /metrics page is built whole, in at most this many bytes.
 *
 * LIMIT: the guard's counters add a line per metric and label that saw a
 * refusal or a fold, without bound in the number of metrics.  Why: they
 * are what tells which metric hit a limit.  Matters past about 100,000
 * such pairs.  Behaviour: the page no longer fits and /metrics answers
 * 500 naming TSDB_EFULL; a `values __name__ * N` rule bounds it.
 */
#define METRICS_PAGE_MAX (16u << 20)
/* An import answer: the counts and at most 100 error details of about
 * 320 bytes each, which JSON escaping may grow up to six times. */
#define IMPORT_ANSWER_MAX (512u << 10)
/* A StatsD answer: the counts and STATSD_MAX_REJECTS reasons of at most
 * STATSD_MAX_REASON bytes, which JSON escaping may grow six times. */
#define STATSD_ANSWER_MAX (STATSD_MAX_REJECTS * STATSD_MAX_REASON * 6 + 4096)
/* A status answer: four lists of at most TSDB_STATUS_MAX_TOP entries,
 * each a label pair of at most 508 bytes, escaped up to six times. */
#define STATUS_ANSWER_MAX ((size_t)4 * TSDB_STATUS_MAX_TOP * (508 * 6 + 64))

#define TEXT_FORMAT "text/plain; version=0.0.4; charset=utf-8"
#define OM_FORMAT   "application/openmetrics-text; version=1.0.0; charset=utf-8"

/* ---- /metrics, /-/healthy, /-/ready ---- */

static int metrics_end(struct http_req *r)
{
    struct http_buf b;
    int rc;

    http_buf_init(&b, METRICS_PAGE_MAX);
    rc = http_metrics_render(&r->env->metrics, r->env->db, &b);
    if (rc == TSDB_OK && r->env->statsd)
        rc = http_statsd_render(r->env->statsd, &b);
    if (rc == TSDB_OK && r->env->rollups)
        rc = http_rollups_render(r->env->rollups, &b);
    if (rc == TSDB_OK && r->env->detectors)
        rc = http_detectors_render(r->env->detectors, &b);
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
    rc = http_req_time_param(r, &ps, "start", false, &mint, &answered);
    if (rc == TSDB_OK && !answered)
        rc = http_req_time_param(r, &ps, "end", false, &maxt, &answered);
    if (rc == TSDB_OK && !answered && maxt < mint) {
        answered = true;
        rc = http_reply_error(r, 400, "bad_data",
                              "invalid parameter \"end\": end timestamp "
                              "must not be before start time");
    }
    if (rc == TSDB_OK && !answered)
        rc = http_req_selectors(r, &ps, true, true, &sels, &n, &answered);
    if (rc == TSDB_OK && !answered)
        rc = export_open(r, sels, n, mint, maxt);
out_params:
    http_params_release(&ps);
    return rc;
}

/* ---- POST /api/v1/statsd ---- */

/* The error envelope of a StatsD answer that is not a success. */
static unsigned statsd_error(int rc, const struct statsd_result *res,
                             struct http_buf *b)
{
    char msg[400];

    if (rc == TSDB_ELIMIT) {
        snprintf(msg, sizeof(msg),
                 "request body exceeds the StatsD limit of %zu bytes; "
                 "send it in smaller bodies",
                 STATSD_MAX_BODY);
        http_json_error_open(b, "too_large", msg);
        return 413;
    }
    if (rc != TSDB_OK) {
        snprintf(msg, sizeof(msg),
                 "nothing of this body was kept: %s; see the server log",
                 rc == TSDB_ENOMEM ? "out of memory"
                                   : "the StatsD journal cannot be written");
        http_json_error_open(b, rc == TSDB_ENOMEM ? "internal" : "unavailable",
                             msg);
        return rc == TSDB_ENOMEM ? 500 : 503;
    }
    snprintf(msg, sizeof(msg),
             "%" PRIu64 " of %" PRIu64 " lines were rejected, see "
             "data.errors; the %" PRIu64 " others were accepted",
             res->rejected, res->lines, res->accepted);
    http_json_error_open(b, "bad_data", msg);
    return 400;
}

static int statsd_end(struct http_req *r)
{
    struct http_statsd *svc = r->env->statsd;
    struct statsd_result *res;
    unsigned status = 200;
    struct http_buf b;
    int rc;

    if (!svc)
        return http_reply_error(r, 503, "unavailable",
                                "StatsD ingest is not enabled on this server");
    res = malloc(sizeof(*res));
    if (!res)
        return TSDB_ENOMEM;
    rc = statsd_ingest(http_statsd_handle(svc), r->body.p ? r->body.p : "",
                       r->body.len, r->arrival_ms, res);
    http_statsd_record(svc, HTTP_STATSD_HTTP, rc, res);
    snprintf(r->note, sizeof(r->note),
             "%" PRIu64 " StatsD lines, %" PRIu64 " accepted, %" PRIu64
             " rejected%s%s",
             res->lines, rc == TSDB_OK ? res->accepted : 0,
             rc == TSDB_OK ? res->rejected : res->lines,
             rc == TSDB_OK ? "" : ": ", rc == TSDB_OK ? "" : tsdb_strerror(rc));

    http_buf_init(&b, STATSD_ANSWER_MAX);
    if (rc != TSDB_OK || res->rejected > 0)
        status = statsd_error(rc, res, &b);
    else
        http_buf_puts(&b, "{\"status\":\"success\"");
    http_buf_puts(&b, ",\"data\":");
    http_statsd_json(rc, res, &b);
    http_buf_puts(&b, "}\n");
    r->rejected = status != 200;
    rc = http_reply_json(r, status, &b);
    http_buf_release(&b);
    free(res);
    return rc;
}

/* ---- GET /api/v1/status/tsdb ---- */

static void status_list(struct http_buf *b, const char *key,
                        const struct tsdb_status_list *l)
{
    http_buf_printf(b, ",\"%s\":[", key);
    for (size_t i = 0; i < l->n; i++) {
        const struct tsdb_status_entry *e = &l->v[i];

        http_buf_puts(b, i ? ",{\"name\":" : "{\"name\":");
        if (e->value) {
            size_t nl = strlen(e->name), vl = strlen(e->value);
            char *pair = malloc(nl + vl + 2);

            if (!pair) {
                b->err = b->err ? b->err : TSDB_ENOMEM;
                return;
            }
            memcpy(pair, e->name, nl);
            pair[nl] = '=';
            memcpy(pair + nl + 1, e->value, vl + 1);
            http_json_string(b, pair, nl + vl + 1);
            free(pair);
        } else {
            http_json_str(b, e->name);
        }
        http_buf_printf(b, ",\"value\":%" PRIu64 "}", e->count);
    }
    http_buf_puts(b, "]");
}

/* Prometheus's TSDBStatus: headStats, then the four lists in its order. */
static void status_json(struct http_buf *b, const struct tsdb_status *st)
{
    http_buf_printf(b,
                    "{\"status\":\"success\",\"data\":{\"headStats\":{"
                    "\"numSeries\":%" PRIu64 ",\"numLabelPairs\":%" PRIu64
                    ",\"chunkCount\":%" PRIu64 ",\"minTime\":%" PRId64
                    ",\"maxTime\":%" PRId64 "}",
                    st->head.series, st->label_pairs, st->head.chunks,
                    st->head.min_time, st->head.max_time);
    status_list(b, "seriesCountByMetricName", &st->series_by_metric);
    status_list(b, "labelValueCountByLabelName", &st->values_by_name);
    status_list(b, "memoryInBytesByLabelName", &st->bytes_by_name);
    status_list(b, "seriesCountByLabelValuePair", &st->series_by_pair);
    http_buf_puts(b, "}}\n");
}

/* Reads limit as Prometheus does (a positive decimal integer, default
 * 10); false if it is not one. */
static bool status_limit(const char *v, size_t *top)
{
    char *end;
    unsigned long long n;

    *top = TSDB_STATUS_DEFAULT_TOP;
    if (!v || !*v)
        return true;
    if (*v == '+')
        v++;
    if (*v < '0' || *v > '9')
        return false;
    errno = 0;
    n = strtoull(v, &end, 10);
    if (*end || n < 1 || errno == ERANGE)
        return false;
    *top = n > TSDB_STATUS_MAX_TOP ? TSDB_STATUS_MAX_TOP : (size_t)n;
    return true;
}

static int status_end(struct http_req *r)
{
    struct tsdb_status st = {0};
    struct http_params ps;
    struct http_buf b;
    size_t top;
    int rc;

    http_params_init(&ps);
    rc = http_req_params(r, &ps);
    if (rc != TSDB_OK) {
        rc = http_reply_error(r, 400, "bad_data",
                              "cannot read the parameters: %s",
                              tsdb_strerror(rc));
        goto out_params;
    }
    if (!status_limit(http_params_get(&ps, "limit"), &top)) {
        rc = http_reply_error(r, 400, "bad_data",
                              "limit must be a positive number");
        goto out_params;
    }
    rc = tsdb_status_get(r->env->db, top, &st);
    if (rc != TSDB_OK) {
        rc = http_reply_error(r, 500, "internal",
                              "cannot read the index figures: %s",
                              tsdb_strerror(rc));
        goto out_params;
    }
    http_buf_init(&b, STATUS_ANSWER_MAX);
    status_json(&b, &st);
    rc = http_reply_json(r, 200, &b);
    http_buf_release(&b);
    tsdb_status_release(&st);
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
    {"/api/v1/statsd", HTTP_POST, HTTP_EP_STATSD, HTTP_BODY_BUFFER, NULL, NULL,
     statsd_end},
    {"/api/v1/status/tsdb", HTTP_GET, HTTP_EP_STATUS, HTTP_BODY_NONE, NULL,
     NULL, status_end},
    {"/api/v1/query", HTTP_GET | HTTP_POST, HTTP_EP_QUERY, HTTP_BODY_BUFFER,
     NULL, NULL, http_query_end},
    {"/api/v1/query_range", HTTP_GET | HTTP_POST, HTTP_EP_QUERY_RANGE,
     HTTP_BODY_BUFFER, NULL, NULL, http_query_range_end},
    {"/api/v1/series", HTTP_GET | HTTP_POST, HTTP_EP_SERIES, HTTP_BODY_BUFFER,
     NULL, NULL, http_series_end},
    {"/api/v1/labels", HTTP_GET | HTTP_POST, HTTP_EP_LABELS, HTTP_BODY_BUFFER,
     NULL, NULL, http_labels_end},
    {"/api/v1/label/*/values", HTTP_GET, HTTP_EP_LABEL_VALUES, HTTP_BODY_NONE,
     NULL, NULL, http_label_values_end},
    {"/api/v1/metadata", HTTP_GET, HTTP_EP_API_META, HTTP_BODY_NONE, NULL, NULL,
     http_metadata_end},
    {"/api/v1/status/buildinfo", HTTP_GET, HTTP_EP_API_META, HTTP_BODY_NONE,
     NULL, NULL, http_buildinfo_end},
    {"/api/v1/query_exemplars", HTTP_GET | HTTP_POST, HTTP_EP_API_META,
     HTTP_BODY_BUFFER, NULL, NULL, http_exemplars_end},
    {"/api/v1/rules", HTTP_GET, HTTP_EP_API_META, HTTP_BODY_NONE, NULL, NULL,
     http_rules_end},
    {"/api/v1/alerts", HTTP_GET, HTTP_EP_API_META, HTTP_BODY_NONE, NULL, NULL,
     http_alerts_end},
    {"/api/v1/format_query", HTTP_GET | HTTP_POST, HTTP_EP_API_META,
     HTTP_BODY_BUFFER, NULL, NULL, http_format_query_end},
    {"/api/v1/rollups", HTTP_GET, HTTP_EP_ROLLUPS, HTTP_BODY_NONE, NULL, NULL,
     http_rollups_list_end},
    {"/api/v1/rollups/*", HTTP_PUT, HTTP_EP_ROLLUPS, HTTP_BODY_BUFFER, NULL,
     NULL, http_rollups_put_end},
    {"/api/v1/rollups/*", HTTP_DELETE, HTTP_EP_ROLLUPS, HTTP_BODY_NONE, NULL,
     NULL, http_rollups_delete_end},
    {"/api/v1/detectors", HTTP_GET, HTTP_EP_DETECTORS, HTTP_BODY_NONE, NULL,
     NULL, http_detectors_list_end},
    {"/api/v1/detectors/*", HTTP_PUT, HTTP_EP_DETECTORS, HTTP_BODY_BUFFER, NULL,
     NULL, http_detectors_put_end},
    {"/api/v1/detectors/*", HTTP_DELETE, HTTP_EP_DETECTORS, HTTP_BODY_NONE,
     NULL, NULL, http_detectors_delete_end},
    {"/api/v1/anomalies", HTTP_GET, HTTP_EP_DETECTORS, HTTP_BODY_NONE, NULL,
     NULL, http_anomalies_end},
};

const struct http_route *http_routes(size_t *n)
{
    *n = sizeof(routes) / sizeof(routes[0]);
    return routes;
}
