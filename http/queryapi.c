/*
 * Parameters and answers of the Prometheus query API (see queryapi.h).
 */
#include "http/queryapi.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/json.h"
#include "http/numfmt.h"
#include "query/duration.h"
#include "query/strconv.h"
#include "tsdb/error.h"

int http_parse_duration(const char *s, int64_t *ms)
{
    char *end;
    double secs;

    if (s == NULL || *s == '\0')
        return TSDB_EINVAL;
    errno = 0;
    secs = strtod(s, &end);
    if (*end == '\0' && end != s && !isspace((unsigned char)*s)) {
        double ns = secs * 1e9;

        if (!isfinite(secs) || ns >= 9.2e18 || ns <= -9.2e18)
            return TSDB_EINVAL;
        /* Go keeps nanoseconds and the API takes whole milliseconds of
         * them: both steps truncate. */
        *ms = (int64_t)ns / 1000000;
        return TSDB_OK;
    }
    return query_parse_duration(s, ms);
}

void http_labels_json(struct http_buf *b, const struct tsdb_labels *ls)
{
    http_buf_puts(b, "{");
    for (size_t i = 0; i < ls->n; i++) {
        if (i > 0)
            http_buf_puts(b, ",");
        http_json_str(b, ls->v[i].name);
        http_buf_puts(b, ":");
        http_json_str(b, ls->v[i].value);
    }
    http_buf_puts(b, "}");
}

/* [t,"v"] with t in seconds, three decimals when not whole. */
static void point_json(struct http_buf *b, int64_t t, double v)
{
    char ts[HTTP_NUM_MAX], val[QUERY_FLOAT_MAX];
    size_t tn = http_fmt_seconds(ts, t);
    size_t vn = query_format_float(val, v, QUERY_FLOAT_JSON);

    http_buf_puts(b, "[");
    http_buf_add(b, ts, tn);
    http_buf_puts(b, ",\"");
    http_buf_add(b, val, vn);
    http_buf_puts(b, "\"]");
}

/* A scalar's or string's time: seconds in shortest float form. */
static void scalar_time(struct http_buf *b, int64_t t)
{
    char ts[QUERY_FLOAT_MAX];

    http_buf_add(b, ts,
                 query_format_float(ts, (double)t / 1000.0, QUERY_FLOAT_JSON));
}

void http_query_result_json(struct http_buf *b, const struct query_result *r)
{
    char val[QUERY_FLOAT_MAX];

    switch (r->type) {
    case QUERY_TYPE_SCALAR:
        http_buf_puts(b, "{\"resultType\":\"scalar\",\"result\":[");
        scalar_time(b, r->t);
        http_buf_puts(b, ",\"");
        http_buf_add(b, val,
                     query_format_float(val, r->scalar, QUERY_FLOAT_JSON));
        http_buf_puts(b, "\"]}");
        return;
    case QUERY_TYPE_STRING:
        http_buf_puts(b, "{\"resultType\":\"string\",\"result\":[");
        scalar_time(b, r->t);
        http_buf_puts(b, ",");
        http_json_str(b, r->string ? r->string : "");
        http_buf_puts(b, "]}");
        return;
    case QUERY_TYPE_VECTOR:
        http_buf_puts(b, "{\"resultType\":\"vector\",\"result\":[");
        for (size_t i = 0; i < r->nseries; i++) {
            const struct query_series *s = &r->series[i];

            http_buf_puts(b, i ? ",{\"metric\":" : "{\"metric\":");
            http_labels_json(b, &s->labels);
            http_buf_puts(b, ",\"value\":");
            point_json(b, s->t[0], s->v[0]);
            http_buf_puts(b, "}");
        }
        http_buf_puts(b, "]}");
        return;
    default:
        http_buf_puts(b, "{\"resultType\":\"matrix\",\"result\":[");
        for (size_t i = 0; i < r->nseries; i++) {
            const struct query_series *s = &r->series[i];

            http_buf_puts(b, i ? ",{\"metric\":" : "{\"metric\":");
            http_labels_json(b, &s->labels);
            http_buf_puts(b, ",\"values\":[");
            for (size_t k = 0; k < s->n && b->err == TSDB_OK; k++) {
                if (k > 0)
                    http_buf_puts(b, ",");
                point_json(b, s->t[k], s->v[k]);
            }
            http_buf_puts(b, "]}");
        }
        http_buf_puts(b, "]}");
        return;
    }
}

unsigned http_query_err_status(const struct query_err *e, const char **type)
{
    switch (e->kind) {
    case QUERY_ERR_BAD_DATA:
        *type = "bad_data";
        return 400;
    case QUERY_ERR_EXECUTION:
        *type = "execution";
        return 422;
    case QUERY_ERR_TIMEOUT:
        *type = "timeout";
        return 503;
    default:
        *type = "internal";
        return 500;
    }
}

/* A width as the largest whole unit that writes it: 5m, 1h, 90s, 1d. */
static void width_str(int64_t ms, char *out, size_t cap)
{
    static const struct {
        const char *unit;
        int64_t ms;
    } units[] = {
        {"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}, {"ms", 1}};

    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (ms % units[i].ms == 0) {
            snprintf(out, cap, "%lld%s", (long long)(ms / units[i].ms),
                     units[i].unit);
            return;
        }
    }
}

void http_query_resolution(uint32_t bits, const int64_t *widths, size_t n,
                           char *out, size_t cap)
{
    size_t len = 0;

    out[0] = '\0';
    if (bits & 1 || bits == 0)
        len += (size_t)snprintf(out, cap, "raw");
    for (size_t i = 0; i < n && len < cap; i++) {
        char w[32];

        if (!(bits & (1u << (1 + i))))
            continue;
        width_str(widths[i], w, sizeof(w));
        len +=
            (size_t)snprintf(out + len, cap - len, "%s%s", len ? ", " : "", w);
    }
}
