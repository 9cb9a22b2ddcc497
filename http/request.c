/*
 * Answers and request inputs over libmicrohttpd; see request.h.
 */
#include "http/request.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/json.h"
#include "query/duration.h"

/* Queues resp, and notes the status for the metrics and the log. */
static int queue(struct http_req *r, unsigned status, struct MHD_Response *resp,
                 const char *type)
{
    enum MHD_Result ok;

    if (!resp)
        return TSDB_ENOMEM;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (r->allow[0])
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->allow);
    ok = MHD_queue_response(r->conn, status, resp);
    MHD_destroy_response(resp);
    if (ok != MHD_YES)
        return TSDB_EIO;
    r->status = status;
    return TSDB_OK;
}

int http_reply(struct http_req *r, unsigned status, const char *type,
               const char *body, size_t len)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        len, (void *)body, MHD_RESPMEM_MUST_COPY);

    return queue(r, status, resp, type);
}

int http_reply_json(struct http_req *r, unsigned status, struct http_buf *b)
{
    struct MHD_Response *resp;
    size_t len;
    char *p;

    if (b->err != TSDB_OK)
        return b->err;
    p = http_buf_detach(b, &len);
    resp = MHD_create_response_from_buffer(
        len, p ? p : "", p ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!resp)
        free(p);
    return queue(r, status, resp, "application/json");
}

int http_reply_data(struct http_req *r, char *data)
{
    struct http_buf b;
    int rc;

    if (data == NULL)
        return http_reply_error(r, 500, "internal", "out of memory");
    http_buf_init(&b, strlen(data) + 64);
    http_buf_puts(&b, "{\"status\":\"success\",\"data\":");
    http_buf_puts(&b, data);
    http_buf_puts(&b, "}\n");
    free(data);
    if (b.err != TSDB_OK) {
        http_buf_release(&b);
        return http_reply_error(r, 500, "internal", "out of memory");
    }
    rc = http_reply_json(r, 200, &b);
    http_buf_release(&b);
    return rc;
}

int http_reply_error(struct http_req *r, unsigned status, const char *type,
                     const char *fmt, ...)
{
    struct http_buf b;
    char msg[1024];
    va_list ap;
    int rc;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    /* The message is also what the log line says, unless a handler
     * already put counts there. */
    if (!r->note[0])
        snprintf(r->note, sizeof(r->note), "%.*s", (int)sizeof(r->note) - 1,
                 msg);
    http_buf_init(&b, sizeof(msg) * 6 + 128);
    http_json_error(&b, type, msg);
    rc = http_reply_json(r, status, &b);
    http_buf_release(&b);
    return rc;
}

int http_reply_stream(struct http_req *r, unsigned status, const char *type,
                      MHD_ContentReaderCallback reader, void *cls)
{
    struct MHD_Response *resp = MHD_create_response_from_callback(
        MHD_SIZE_UNKNOWN, HTTP_EXPORT_CHUNK, reader, cls, NULL);

    return queue(r, status, resp, type);
}

const char *http_req_header(const struct http_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

/* Carries the first failure out of libmicrohttpd's iteration. */
struct arg_ctx {
    struct http_params *ps;
    int rc;
};

static enum MHD_Result add_arg(void *cls, enum MHD_ValueKind kind,
                               const char *key, size_t key_size,
                               const char *value, size_t value_size)
{
    struct arg_ctx *ctx = cls;

    (void)kind;
    ctx->rc = http_params_add(ctx->ps, key, key_size, value ? value : "",
                              value ? value_size : 0);
    return ctx->rc == TSDB_OK ? MHD_YES : MHD_NO;
}

int http_req_params(struct http_req *r, struct http_params *ps)
{
    const char *type = http_req_header(r, MHD_HTTP_HEADER_CONTENT_TYPE);
    struct arg_ctx ctx = {ps, TSDB_OK};

    if (r->body.len > 0 && type &&
        strncasecmp(type, "application/x-www-form-urlencoded", 33) == 0)
        ctx.rc = http_params_parse_form(ps, r->body.p, r->body.len);
    if (ctx.rc == TSDB_OK)
        MHD_get_connection_values_n(r->conn, MHD_GET_ARGUMENT_KIND, add_arg,
                                    &ctx);
    return ctx.rc;
}

int http_req_time_param(struct http_req *r, const struct http_params *ps,
                        const char *name, bool prometheus_text, int64_t *ms,
                        bool *answered)
{
    const char *v = http_params_get(ps, name);

    if (!v || !*v || query_parse_time(v, ms) == TSDB_OK)
        return TSDB_OK;
    *answered = true;
    if (prometheus_text)
        return http_reply_error(r, 400, "bad_data",
                                "invalid parameter \"%s\": Invalid time "
                                "value for '%s': cannot parse \"%s\" to a "
                                "valid timestamp",
                                name, name, v);
    return http_reply_error(r, 400, "bad_data",
                            "invalid parameter \"%s\": cannot parse \"%s\" "
                            "to a valid timestamp",
                            name, v);
}

int http_req_selectors(struct http_req *r, const struct http_params *ps,
                       bool required, bool prefixed, struct http_selector **out,
                       size_t *n, bool *answered)
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
    if (rc == TSDB_OK && *n == 0 && required) {
        *answered = true;
        rc = http_reply_error(r, 400, "bad_data",
                              "no match[] parameter provided");
    } else if (rc == TSDB_EINVAL || rc == TSDB_ELIMIT) {
        *answered = true;
        if (strstr(err, "at least one non-empty matcher"))
            snprintf(err, sizeof(err),
                     "match[] must contain at least one non-empty matcher");
        rc = http_reply_error(r, 400, "bad_data", "%s%s",
                              prefixed ? "invalid parameter \"match[]\": " : "",
                              err);
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
