/*
 * libmicrohttpd glue: address parsing, the route table, JSON errors, and
 * the /metrics page.  Layer: http/ over tsdb/db.h.
 */
#define LOG_MODULE "http"
#include "http/server.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tsdb/log.h"

/* The /metrics page is built in one buffer of at most this size. */
#define METRICS_MAX 16384

struct http_server {
    struct MHD_Daemon *mhd;
    struct tsdb *db;
    atomic_uint_fast64_t requests;
    atomic_uint_fast64_t not_found;
};

static int parse_listen(const char *listen, struct sockaddr_in *sa, char *err,
                        size_t errlen)
{
    const char *colon = strrchr(listen, ':');
    char host[64];
    char *end;
    long port;

    memset(sa, 0, sizeof(*sa));
    sa->sin_family = AF_INET;
    if (!colon || (size_t)(colon - listen) >= sizeof(host)) {
        snprintf(err, errlen, "--listen '%s' is not HOST:PORT", listen);
        return TSDB_EINVAL;
    }
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = '\0';
    port = strtol(colon + 1, &end, 10);
    if (*end || end == colon + 1 || port < 0 || port > 65535) {
        snprintf(err, errlen, "--listen '%s': port must be 0 to 65535", listen);
        return TSDB_EINVAL;
    }
    if (inet_pton(AF_INET, host, &sa->sin_addr) != 1) {
        snprintf(err, errlen, "--listen '%s': '%s' is not an IPv4 address",
                 listen, host);
        return TSDB_EINVAL;
    }
    sa->sin_port = htons((uint16_t)port);
    return TSDB_OK;
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status,
                             const char *type, char *body, size_t len)
{
    struct MHD_Response *r;
    enum MHD_Result ret;

    r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* Prometheus's error envelope; msg must not need JSON escaping. */
static enum MHD_Result reply_error(struct MHD_Connection *c, unsigned status,
                                   const char *type, const char *msg)
{
    char body[512];
    int n = snprintf(body, sizeof(body),
                     "{\"status\":\"error\",\"errorType\":\"%s\","
                     "\"error\":\"%s\"}\n",
                     type, msg);
    return reply(c, status, "application/json", body,
                 (size_t)(n < (int)sizeof(body) ? n : (int)sizeof(body) - 1));
}

/* Appends one metric line (with HELP and TYPE) to the page. */
static void metric(char *buf, size_t *len, const char *name, const char *type,
                   const char *help, const char *labels, double v)
{
    int n = snprintf(buf + *len, METRICS_MAX - *len,
                     "# HELP %s %s\n# TYPE %s %s\n%s%s %.17g\n", name, help,
                     name, type, name, labels, v);
    if (n > 0 && *len + (size_t)n < METRICS_MAX)
        *len += (size_t)n;
}

static enum MHD_Result serve_metrics(struct http_server *s,
                                     struct MHD_Connection *c)
{
    struct tsdb_stats st;
    char *buf = malloc(METRICS_MAX);
    size_t len = 0;
    enum MHD_Result ret;

    if (!buf)
        return reply_error(c, 500, "internal", "out of memory");
    tsdb_stats_get(s->db, &st);
    metric(buf, &len, "tsdb_head_series", "gauge", "Series held in memory.", "",
           (double)st.series);
    metric(buf, &len, "tsdb_samples_appended_total", "counter",
           "Samples accepted by commits.", "", (double)st.samples_appended);
    metric(buf, &len, "tsdb_samples_rejected_total", "counter",
           "Samples refused by commits, by reason.",
           "{reason=\"out_of_order\"}", (double)st.rejected_out_of_order);
    len += (size_t)snprintf(buf + len, METRICS_MAX - len,
                            "tsdb_samples_rejected_total{reason="
                            "\"duplicate_conflict\"} %" PRIu64 "\n"
                            "tsdb_samples_rejected_total{reason="
                            "\"out_of_bounds\"} %" PRIu64 "\n",
                            st.rejected_duplicate_conflict,
                            st.rejected_out_of_bounds);
    metric(buf, &len, "tsdb_chunks_sealed_total", "counter",
           "Open chunks sealed.", "", (double)st.chunks_sealed);
    metric(buf, &len, "tsdb_chunks_written_total", "counter",
           "Chunk writes to LMDB, merges included.", "",
           (double)st.chunks_written);
    metric(buf, &len, "tsdb_chunks_deleted_total", "counter",
           "Chunks deleted by retention.", "", (double)st.chunks_deleted);
    metric(buf, &len, "tsdb_chunk_bytes", "gauge",
           "Bytes of stored chunk values.", "", (double)st.chunk_bytes);
    metric(buf, &len, "tsdb_wal_bytes", "gauge",
           "Bytes in write-ahead log segments.", "", (double)st.wal_bytes);
    metric(buf, &len, "tsdb_lmdb_file_bytes", "gauge",
           "Size of the LMDB data file.", "", (double)st.lmdb_file_bytes);
    metric(buf, &len, "tsdb_lmdb_used_bytes", "gauge",
           "LMDB pages in use times the page size.", "",
           (double)st.lmdb_used_bytes);
    metric(buf, &len, "tsdb_http_requests_total", "counter",
           "HTTP requests served.", "", (double)atomic_load(&s->requests));
    ret = reply(c, 200, "text/plain; version=0.0.4; charset=utf-8", buf, len);
    free(buf);
    return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c,
                              const char *url, const char *method,
                              const char *version, const char *upload,
                              size_t *upload_size, void **state)
{
    struct http_server *s = cls;
    bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    bool known = !strcmp(url, "/metrics") || !strcmp(url, "/-/healthy") ||
                 !strcmp(url, "/-/ready");
    (void)version;
    (void)upload;
    (void)state;

    /* Bodies are not read by any route yet: drop them. */
    if (*upload_size > 0) {
        *upload_size = 0;
        return MHD_YES;
    }
    atomic_fetch_add(&s->requests, 1);
    if (!known) {
        atomic_fetch_add(&s->not_found, 1);
        return reply_error(c, 404, "not_found",
                           "no such path; see the README for the API");
    }
    if (!get)
        return reply_error(c, 405, "method_not_allowed",
                           "this path answers GET only");
    if (!strcmp(url, "/metrics"))
        return serve_metrics(s, c);
    return reply(c, 200, "text/plain", "OK\n", 3);
}

int http_server_start(struct tsdb *db, const struct http_server_options *o,
                      struct http_server **out, char *err, size_t errlen)
{
    struct http_server *s;
    struct sockaddr_in sa;
    int rc = parse_listen(o->listen, &sa, err, errlen);

    if (rc != TSDB_OK)
        return rc;
    s = calloc(1, sizeof(*s));
    if (!s)
        return TSDB_ENOMEM;
    s->db = db;
    s->mhd = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, 0, NULL, NULL, handle,
        s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
        MHD_OPTION_THREAD_POOL_SIZE, o->threads ? o->threads : 4,
        MHD_OPTION_CONNECTION_TIMEOUT, 60u, MHD_OPTION_END);
    if (!s->mhd) {
        snprintf(err, errlen,
                 "cannot listen on %s (in use, or not an "
                 "address of this machine)",
                 o->listen);
        free(s);
        return TSDB_EIO;
    }
    log_info("listening on %s with %u threads", o->listen,
             o->threads ? o->threads : 4);
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
