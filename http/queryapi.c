/*
 * Parameters and answers of the Prometheus query API (see queryapi.h).
 */
#include "http/queryapi.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "http/json.h"
#include "http/numfmt.h"
#include "query/strconv.h"
#include "tsdb/error.h"

/* A PromQL duration: units from years down to milliseconds, each at most
 * once and in that order ("1h30m", "5m", "250ms"). */
static int promql_duration(const char *s, int64_t *ms)
{
    static const struct {
        const char *unit;
        int64_t ms;
    } units[] = {{"y", 365LL * 86400000},
                 {"w", 7LL * 86400000},
                 {"d", 86400000},
                 {"h", 3600000},
                 {"m", 60000},
                 {"s", 1000},
                 {"ms", 1}};
    size_t next = 0;
    int64_t total = 0;

    if (*s == '\0')
        return TSDB_EINVAL;
    while (*s != '\0') {
        int64_t n = 0;
        size_t u;

        if (!isdigit((unsigned char)*s))
            return TSDB_EINVAL;
        for (; isdigit((unsigned char)*s); s++) {
            if (n > (INT64_MAX - 9) / 10)
                return TSDB_EINVAL;
            n = n * 10 + (*s - '0');
        }
        /* "ms" before "m": the longest unit that matches. */
        for (u = next; u < sizeof(units) / sizeof(units[0]); u++) {
            size_t len = strlen(units[u].unit);

            if (strncmp(s, units[u].unit, len) == 0 &&
                !(units[u].unit[0] == 'm' && len == 1 && s[1] == 's'))
                break;
        }
        if (u == sizeof(units) / sizeof(units[0]))
            return TSDB_EINVAL;
        if (n > INT64_MAX / units[u].ms || total > INT64_MAX - n * units[u].ms)
            return TSDB_EINVAL;
        total += n * units[u].ms;
        s += strlen(units[u].unit);
        next = u + 1;
    }
    *ms = total;
    return TSDB_OK;
}

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
    return promql_duration(s, ms);
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
