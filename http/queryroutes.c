/*
 * The Prometheus query API's handlers (see queryroutes.h): parameters in,
 * query/eval.h or the index in between, Prometheus's JSON out.
 */
#include "http/queryroutes.h"

#include <inttypes.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "http/json.h"
#include "http/queryapi.h"
#include "http/request.h"
#include "query/duration.h"
#include "query/ast.h"
#include "query/parse.h"
#include "tsdb/labels.h"

#define APPLICATION_JSON "application/json"

/* Label names and values answers, and the series answer: at most this
 * many bytes (a million series of a few labels each). */
#define METADATA_ANSWER_MAX (256u << 20)

/* Reads the request's parameters; a bad form body is answered. */
static int read_params(struct http_req *r, struct http_params *ps,
                       bool *answered)
{
    int rc = http_req_params(r, ps);

    if (rc == TSDB_OK)
        return TSDB_OK;
    *answered = true;
    return http_reply_error(r, 400, "bad_data",
                            "cannot read the parameters: %s",
                            tsdb_strerror(rc));
}

/* Queues a built answer, or the error that stopped building it. */
static int reply_built(struct http_req *r, struct http_buf *b, size_t max)
{
    if (b->err == TSDB_EFULL)
        return http_reply_error(r, 422, "execution",
                                "the answer exceeds %zu MiB; ask for fewer "
                                "series, a shorter range or a coarser step",
                                max >> 20);
    if (b->err != TSDB_OK)
        return http_reply_error(r, 500, "internal", "building the answer: %s",
                                tsdb_strerror(b->err));
    return http_reply_json(r, 200, b);
}

/* tiers=false reads raw chunks only, so that answers can be compared.
 * A bad value is answered (*answered) with 400. */
static int tiers_option(struct http_req *r, const struct http_params *ps,
                        struct query_opts *o, bool *answered)
{
    const char *v = http_params_get(ps, "tiers");

    if (v == NULL || *v == '\0' || strcmp(v, "true") == 0 ||
        strcmp(v, "1") == 0)
        return TSDB_OK;
    if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0) {
        o->no_tiers = true;
        return TSDB_OK;
    }
    *answered = true;
    return http_reply_error(r, 400, "bad_data",
                            "invalid parameter \"tiers\": \"%s\" is not "
                            "true or false",
                            v);
}

/* The query's options: the server's, with a lower timeout if asked. */
static int query_options(struct http_req *r, const struct http_params *ps,
                         struct query_opts *o, bool *answered)
{
    const char *v = http_params_get(ps, "timeout");
    int64_t ms;
    int rc;

    *o = r->env->query;
    rc = tiers_option(r, ps, o, answered);
    if (rc != TSDB_OK || *answered)
        return rc;
    if (v == NULL || *v == '\0')
        return TSDB_OK;
    if (http_parse_duration(v, &ms) != TSDB_OK || ms < 0) {
        *answered = true;
        return http_reply_error(r, 400, "bad_data",
                                "invalid parameter \"timeout\": cannot parse "
                                "\"%s\" to a valid duration",
                                v);
    }
    if (ms > 0 && (o->timeout_ms == 0 || ms < o->timeout_ms))
        o->timeout_ms = ms;
    return TSDB_OK;
}

/* Notes the query for the request log line (slow or refused queries). */
static void note_query(struct http_req *r, const char *q,
                       const struct query_result *res)
{
    snprintf(r->note, sizeof(r->note),
             "query \"%.300s\"%s, %" PRIu64 " samples read", q,
             strlen(q) > 300 ? "..." : "", res ? res->samples : 0);
}

static int eval_error(struct http_req *r, const struct query_err *err,
                      bool prefix_parse)
{
    const char *type;
    unsigned status = http_query_err_status(err, &type);

    r->rejected = true;
    if (err->parse && prefix_parse)
        return http_reply_error(r, status, type,
                                "invalid parameter \"query\": %s", err->msg);
    return http_reply_error(r, status, type, "%s", err->msg);
}

/* Queues b as the 200 answer with the X-Tsdb-Resolution header (built
 * here, as request.c's replies take no extra header). */
static int reply_resolution(struct http_req *r, struct http_buf *b,
                            const char *resolution)
{
    struct MHD_Response *resp;
    enum MHD_Result ok;
    size_t len;
    char *p;

    if (b->err != TSDB_OK)
        return reply_built(r, b, HTTP_QUERY_ANSWER_MAX);
    p = http_buf_detach(b, &len);
    resp = MHD_create_response_from_buffer(
        len, p ? p : "", p ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (resp == NULL) {
        free(p);
        return TSDB_ENOMEM;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            APPLICATION_JSON);
    MHD_add_response_header(resp, "X-Tsdb-Resolution", resolution);
    ok = MHD_queue_response(r->conn, 200, resp);
    MHD_destroy_response(resp);
    if (ok != MHD_YES)
        return TSDB_EIO;
    r->status = 200;
    return TSDB_OK;
}

static int reply_result(struct http_req *r, const struct query_result *res)
{
    struct tsdb_tier_spec specs[TSDB_TIERS_MAX];
    int64_t widths[TSDB_TIERS_MAX];
    char resolution[128];
    struct http_buf b;
    size_t n;
    int rc;

    tsdb_tiers_get(r->env->db, specs, &n);
    for (size_t i = 0; i < n; i++)
        widths[i] = specs[i].width_ms;
    http_query_resolution(res->resolutions, widths, n, resolution,
                          sizeof(resolution));
    http_buf_init(&b, HTTP_QUERY_ANSWER_MAX);
    http_buf_puts(&b, "{\"status\":\"success\",\"data\":");
    http_query_result_json(&b, res);
    http_buf_puts(&b, "}\n");
    rc = reply_resolution(r, &b, resolution);
    http_buf_release(&b);
    return rc;
}

/* Answers an evaluation that returned rc: its result, or its error
 * (parse errors prefixed with the parameter's name if asked). */
static int answer(struct http_req *r, const char *q, int rc,
                  struct query_result *res, const struct query_err *err,
                  bool prefix_parse)
{
    note_query(r, q, rc == TSDB_OK ? res : NULL);
    if (rc != TSDB_OK)
        return eval_error(r, err, prefix_parse);
    rc = reply_result(r, res);
    query_result_release(res);
    return rc;
}

int http_query_end(struct http_req *r)
{
    struct http_params ps;
    struct query_opts o;
    struct query_result res;
    struct query_err err;
    const char *q, *tv;
    int64_t t = r->arrival_ms;
    bool answered = false;
    int rc;

    http_params_init(&ps);
    rc = read_params(r, &ps, &answered);
    if (rc != TSDB_OK || answered)
        goto out;
    q = http_params_get(&ps, "query");
    q = q ? q : "";
    tv = http_params_get(&ps, "time");
    if (tv && *tv && query_parse_time(tv, &t) != TSDB_OK) {
        rc = http_reply_error(r, 400, "bad_data",
                              "invalid parameter \"time\": Invalid time value "
                              "for 'time': cannot parse \"%s\" to a valid "
                              "timestamp",
                              tv);
        goto out;
    }
    rc = query_options(r, &ps, &o, &answered);
    if (rc != TSDB_OK || answered)
        goto out;
    rc = query_eval_instant(r->env->db, &o, q, strlen(q), t, &res, &err);
    rc = answer(r, q, rc, &res, &err, true);
out:
    http_params_release(&ps);
    return rc;
}

/* Reads a required time parameter, answering as Prometheus does. */
static bool required_time(struct http_req *r, const struct http_params *ps,
                          const char *name, int64_t *ms, int *rc)
{
    const char *v = http_params_get(ps, name);

    if (v != NULL && query_parse_time(v, ms) == TSDB_OK)
        return true;
    *rc = http_reply_error(r, 400, "bad_data",
                           "invalid parameter \"%s\": cannot parse \"%s\" to "
                           "a valid timestamp",
                           name, v ? v : "");
    return false;
}

/* Reads start, end and step of a range query; false once answered. */
static bool range_params(struct http_req *r, const struct http_params *ps,
                         int64_t *start, int64_t *end, int64_t *step, int *rc)
{
    const char *v;

    if (!required_time(r, ps, "start", start, rc) ||
        !required_time(r, ps, "end", end, rc))
        return false;
    if (*end < *start) {
        *rc = http_reply_error(r, 400, "bad_data",
                               "invalid parameter \"end\": end timestamp must "
                               "not be before start time");
        return false;
    }
    v = http_params_get(ps, "step");
    if (v == NULL || http_parse_duration(v, step) != TSDB_OK) {
        *rc = http_reply_error(r, 400, "bad_data",
                               "invalid parameter \"step\": cannot parse "
                               "\"%s\" to a valid duration",
                               v ? v : "");
        return false;
    }
    if (*step <= 0) {
        *rc = http_reply_error(r, 400, "bad_data",
                               "invalid parameter \"step\": zero or negative "
                               "query resolution step widths are not "
                               "accepted. Try a positive integer");
        return false;
    }
    if ((*end - *start) / *step > HTTP_QUERY_MAX_POINTS) {
        *rc = http_reply_error(r, 400, "bad_data",
                               "exceeded maximum resolution of 11,000 points "
                               "per timeseries. Try decreasing the query "
                               "resolution (?step=XX)");
        return false;
    }
    return true;
}

int http_query_range_end(struct http_req *r)
{
    struct http_params ps;
    struct query_opts o;
    struct query_result res;
    struct query_err err;
    const char *q;
    int64_t start, end, step;
    bool answered = false;
    int rc;

    http_params_init(&ps);
    rc = read_params(r, &ps, &answered);
    if (rc != TSDB_OK || answered)
        goto out;
    if (!range_params(r, &ps, &start, &end, &step, &rc))
        goto out;
    rc = query_options(r, &ps, &o, &answered);
    if (rc != TSDB_OK || answered)
        goto out;
    q = http_params_get(&ps, "query");
    q = q ? q : "";
    rc = query_eval_range(r->env->db, &o, q, strlen(q), start, end, step, &res,
                          &err);
    rc = answer(r, q, rc, &res, &err, false);
out:
    http_params_release(&ps);
    return rc;
}

/* ---- series, label names, label values ---- */

/* start and end of a metadata request; both optional. */
static bool optional_range(struct http_req *r, const struct http_params *ps,
                           int64_t *mint, int64_t *maxt, int *rc)
{
    bool answered = false;

    *mint = INT64_MIN;
    *maxt = INT64_MAX;
    *rc = http_req_time_param(r, ps, "start", true, mint, &answered);
    if (*rc == TSDB_OK && !answered)
        *rc = http_req_time_param(r, ps, "end", true, maxt, &answered);
    return *rc == TSDB_OK && !answered;
}

static void release_selectors(struct http_selector *sels, size_t n)
{
    for (size_t i = 0; i < n; i++)
        http_selector_release(&sels[i]);
    free(sels);
}

/* A growing list of label sets, sorted and made unique at the end. */
struct labelsets {
    struct tsdb_labels *v;
    size_t n, cap;
};

static int labelsets_add(struct labelsets *l, const struct tsdb_labels *ls)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        struct tsdb_labels *v = realloc(l->v, cap * sizeof(*v));

        if (v == NULL)
            return TSDB_ENOMEM;
        l->v = v;
        l->cap = cap;
    }
    if (tsdb_labels_copy(ls->v, ls->n, &l->v[l->n]) != TSDB_OK)
        return TSDB_ENOMEM;
    l->n++;
    return TSDB_OK;
}

static int cmp_labelsets(const void *a, const void *b)
{
    return tsdb_labels_cmp(a, b);
}

static void labelsets_release(struct labelsets *l)
{
    for (size_t i = 0; i < l->n; i++)
        tsdb_labels_release(&l->v[i]);
    free(l->v);
}

static int collect_series(struct tsdb *db, struct http_selector *sel,
                          int64_t mint, int64_t maxt, struct labelsets *out)
{
    struct tsdb_query *q;
    const struct tsdb_labels *ls;
    int rc = tsdb_query_open(db, sel->m, sel->n, mint, maxt, &q);

    if (rc != TSDB_OK)
        return rc;
    while ((rc = tsdb_query_next_series(q, &ls, NULL)) == TSDB_OK) {
        rc = labelsets_add(out, ls);
        if (rc != TSDB_OK)
            break;
    }
    tsdb_query_close(q);
    return rc == TSDB_ENOTFOUND ? TSDB_OK : rc;
}

int http_series_end(struct http_req *r)
{
    struct http_params ps;
    struct http_selector *sels = NULL;
    struct labelsets all = {NULL, 0, 0};
    struct http_buf b;
    int64_t mint, maxt;
    bool answered = false;
    size_t n = 0;
    int rc;

    http_params_init(&ps);
    rc = read_params(r, &ps, &answered);
    if (rc != TSDB_OK || answered || !optional_range(r, &ps, &mint, &maxt, &rc))
        goto out;
    rc = http_req_selectors(r, &ps, true, true, &sels, &n, &answered);
    if (rc != TSDB_OK || answered)
        goto out;
    for (size_t i = 0; i < n && rc == TSDB_OK; i++)
        rc = collect_series(r->env->db, &sels[i], mint, maxt, &all);
    if (rc != TSDB_OK) {
        rc = http_reply_error(r, 500, "internal", "reading the index: %s",
                              tsdb_strerror(rc));
        goto out;
    }
    /* Several match[] may select a series twice: sort, then skip repeats. */
    if (all.n > 1)
        qsort(all.v, all.n, sizeof(*all.v), cmp_labelsets);
    http_buf_init(&b, METADATA_ANSWER_MAX);
    http_buf_puts(&b, "{\"status\":\"success\",\"data\":[");
    for (size_t i = 0; i < all.n; i++) {
        if (i > 0 && tsdb_labels_cmp(&all.v[i - 1], &all.v[i]) == 0)
            continue;
        if (i > 0)
            http_buf_puts(&b, ",");
        http_labels_json(&b, &all.v[i]);
    }
    http_buf_puts(&b, "]}\n");
    snprintf(r->note, sizeof(r->note), "%zu series", all.n);
    rc = reply_built(r, &b, METADATA_ANSWER_MAX);
    http_buf_release(&b);
out:
    labelsets_release(&all);
    release_selectors(sels, n);
    http_params_release(&ps);
    return rc;
}

/* A growing set of strings for label names and values: a list, and a
 * hash table of its indexes so that each string is kept once. */
struct strings {
    char **v;
    size_t n, cap;
    uint32_t *slots; /* index + 1, 0 empty; nslots a power of two */
    size_t nslots;
};

/* Is s (len bytes) in l already?  Makes room for one more if not. */
static int strings_seen(struct strings *l, const char *s, size_t len,
                        bool *seen, size_t *slot)
{
    size_t j;

    if ((l->n + 1) * 2 > l->nslots) {
        size_t ns = l->nslots ? l->nslots * 2 : 256;
        uint32_t *slots = calloc(ns, sizeof(*slots));

        if (slots == NULL)
            return TSDB_ENOMEM;
        for (size_t i = 0; i < l->n; i++) {
            const char *x = l->v[i];

            for (j = XXH3_64bits(x, strlen(x)) & (ns - 1); slots[j];
                 j = (j + 1) & (ns - 1))
                ;
            slots[j] = (uint32_t)i + 1;
        }
        free(l->slots);
        l->slots = slots;
        l->nslots = ns;
    }
    for (j = XXH3_64bits(s, len) & (l->nslots - 1); l->slots[j];
         j = (j + 1) & (l->nslots - 1)) {
        const char *x = l->v[l->slots[j] - 1];

        if (strncmp(x, s, len) == 0 && x[len] == '\0') {
            *seen = true;
            return TSDB_OK;
        }
    }
    *seen = false;
    *slot = j;
    return TSDB_OK;
}

static int strings_add(void *ctx, const char *s, size_t len)
{
    struct strings *l = ctx;
    size_t slot;
    bool seen;
    int rc = strings_seen(l, s, len, &seen, &slot);

    if (rc != TSDB_OK || seen)
        return rc;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        char **v = realloc(l->v, cap * sizeof(*v));

        if (v == NULL)
            return TSDB_ENOMEM;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n] = strndup(s, len);
    if (l->v[l->n] == NULL)
        return TSDB_ENOMEM;
    l->slots[slot] = (uint32_t)l->n + 1;
    l->n++;
    return TSDB_OK;
}

static int cmp_strings(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Answers the sorted, unique strings as a JSON array. */
static int reply_strings(struct http_req *r, struct strings *l)
{
    struct http_buf b;
    size_t out = 0;
    int rc;

    if (l->n > 1)
        qsort(l->v, l->n, sizeof(*l->v), cmp_strings);
    http_buf_init(&b, METADATA_ANSWER_MAX);
    http_buf_puts(&b, "{\"status\":\"success\",\"data\":[");
    for (size_t i = 0; i < l->n; i++) {
        if (i > 0 && strcmp(l->v[i - 1], l->v[i]) == 0)
            continue;
        if (out++ > 0)
            http_buf_puts(&b, ",");
        http_json_str(&b, l->v[i]);
    }
    http_buf_puts(&b, "]}\n");
    snprintf(r->note, sizeof(r->note), "%zu values", out);
    rc = reply_built(r, &b, METADATA_ANSWER_MAX);
    http_buf_release(&b);
    return rc;
}

static void strings_release(struct strings *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    free(l->slots);
}

/*
 * Label names (name NULL) or values of name among the series with
 * samples in [mint, maxt] that ms selects, read from their label sets.
 * Slower than the index listings, which know no time: used only when the
 * request gives start or end.
 */
static int label_listing_range(struct tsdb *db, struct tsdb_matcher *ms,
                               size_t nm, const char *name, int64_t mint,
                               int64_t maxt, struct strings *l)
{
    struct tsdb_matcher all;
    struct tsdb_query *q = NULL;
    const struct tsdb_labels *ls;
    char err[128];
    int rc;

    if (nm == 0) {
        rc = tsdb_matcher_init(&all, TSDB_MATCH_RE, "__name__", ".+", err,
                               sizeof(err));
        if (rc != TSDB_OK)
            return rc;
        ms = &all;
    }
    rc = tsdb_query_open(db, ms, nm ? nm : 1, mint, maxt, &q);
    if (rc != TSDB_OK)
        q = NULL;
    while (rc == TSDB_OK &&
           (rc = tsdb_query_next_series(q, &ls, NULL)) == TSDB_OK) {
        for (size_t i = 0; i < ls->n && rc == TSDB_OK; i++) {
            if (name == NULL)
                rc = strings_add(l, ls->v[i].name, strlen(ls->v[i].name));
            else if (strcmp(ls->v[i].name, name) == 0)
                rc = strings_add(l, ls->v[i].value, strlen(ls->v[i].value));
        }
    }
    if (q != NULL)
        tsdb_query_close(q);
    if (nm == 0)
        tsdb_matcher_release(&all);
    return rc == TSDB_ENOTFOUND ? TSDB_OK : rc;
}

/*
 * Label names or, with name, the values of that label: of every series,
 * or of the series that any match[] selects.
 */
static int label_listing(struct http_req *r, const char *name)
{
    struct http_params ps;
    struct http_selector *sels = NULL;
    struct strings l = {NULL, 0, 0, NULL, 0};
    int64_t mint, maxt;
    bool answered = false;
    size_t n = 0;
    int rc;

    http_params_init(&ps);
    rc = read_params(r, &ps, &answered);
    if (rc != TSDB_OK || answered || !optional_range(r, &ps, &mint, &maxt, &rc))
        goto out;
    rc = http_req_selectors(r, &ps, false, false, &sels, &n, &answered);
    if (rc != TSDB_OK || answered)
        goto out;
    for (size_t i = 0; i < (n ? n : 1) && rc == TSDB_OK; i++) {
        struct tsdb_matcher *ms = n ? sels[i].m : NULL;
        size_t nm = n ? sels[i].n : 0;

        if (mint != INT64_MIN || maxt != INT64_MAX)
            rc = label_listing_range(r->env->db, ms, nm, name, mint, maxt, &l);
        else if (name != NULL)
            rc = tsdb_label_values(r->env->db, name, ms, nm, strings_add, &l);
        else
            rc = tsdb_label_names(r->env->db, ms, nm, strings_add, &l);
    }
    if (rc != TSDB_OK)
        rc = http_reply_error(r, 500, "internal", "reading the index: %s",
                              tsdb_strerror(rc));
    else
        rc = reply_strings(r, &l);
out:
    strings_release(&l);
    release_selectors(sels, n);
    http_params_release(&ps);
    return rc;
}

int http_labels_end(struct http_req *r)
{
    return label_listing(r, NULL);
}

int http_label_values_end(struct http_req *r)
{
    static const char prefix[] = "/api/v1/label/";
    const char *name = r->url + sizeof(prefix) - 1;
    const char *slash = strchr(name, '/');
    char *label = strndup(name, slash ? (size_t)(slash - name) : strlen(name));
    int rc;

    if (label == NULL)
        return TSDB_ENOMEM;
    if (!tsdb_label_name_valid(label, strlen(label)))
        rc = http_reply_error(r, 400, "bad_data", "invalid label name: \"%s\"",
                              label);
    else
        rc = label_listing(r, label);
    free(label);
    return rc;
}

/* ---- the endpoints Grafana probes ---- */

static int reply_const(struct http_req *r, const char *body)
{
    return http_reply(r, 200, APPLICATION_JSON, body, strlen(body));
}

int http_metadata_end(struct http_req *r)
{
    struct http_params ps;
    const char *limit;
    bool answered = false;
    char *end;
    int rc;

    http_params_init(&ps);
    rc = read_params(r, &ps, &answered);
    if (rc != TSDB_OK || answered)
        goto out;
    /* No metric metadata is kept (imports and StatsD carry none worth
     * serving), so the answer is the empty object Prometheus gives for
     * remote-written data; limit is still checked. */
    limit = http_params_get(&ps, "limit");
    if (limit && *limit && (strtoll(limit, &end, 10), *end != '\0')) {
        rc = http_reply_error(r, 400, "bad_data", "limit must be a number");
        goto out;
    }
    rc = reply_const(r, "{\"status\":\"success\",\"data\":{}}\n");
out:
    http_params_release(&ps);
    return rc;
}

int http_buildinfo_end(struct http_req *r)
{
    /* version is the Prometheus API level we follow: Grafana reads it as
     * semver to pick features.  No "features" member: Grafana would take
     * the server for Mimir with a ruler. */
    return reply_const(r, "{\"status\":\"success\",\"data\":{"
                          "\"version\":\"2.42.0\",\"revision\":\"tsdbd\","
                          "\"branch\":\"main\",\"buildUser\":\"tsdbd\","
                          "\"buildDate\":\"unknown\","
                          "\"goVersion\":\"none (C11)\"}}\n");
}

int http_exemplars_end(struct http_req *r)
{
    /* Exemplars are not stored; an empty success lets Grafana enable the
     * feature without errors. */
    return reply_const(r, "{\"status\":\"success\",\"data\":[]}\n");
}

int http_rules_end(struct http_req *r)
{
    return reply_const(r,
                       "{\"status\":\"success\",\"data\":{\"groups\":[]}}\n");
}

int http_alerts_end(struct http_req *r)
{
    return reply_const(r,
                       "{\"status\":\"success\",\"data\":{\"alerts\":[]}}\n");
}

int http_format_query_end(struct http_req *r)
{
    struct http_params ps;
    struct query_node *expr = NULL;
    struct query_parse_err pe;
    struct http_buf b;
    bool answered = false;
    const char *q;
    char *text = NULL;
    int rc;

    http_params_init(&ps);
    rc = read_params(r, &ps, &answered);
    if (rc != TSDB_OK || answered)
        goto out;
    q = http_params_get(&ps, "query");
    q = q ? q : "";
    rc = query_parse(q, strlen(q), &expr, &pe);
    if (rc != TSDB_OK) {
        rc = http_reply_error(r, 400, "bad_data",
                              "invalid parameter \"query\": %s", pe.msg);
        goto out;
    }
    /* Printing never grows a query by more than its parentheses and
     * spaces; eight times the text and a margin is room enough. */
    text = malloc(strlen(q) * 8 + 256);
    if (text == NULL ||
        query_print(expr, text, strlen(q) * 8 + 256, NULL) != TSDB_OK) {
        rc = http_reply_error(r, 500, "internal", "cannot print the query");
        goto out;
    }
    http_buf_init(&b, strlen(text) * 6 + 64);
    http_buf_puts(&b, "{\"status\":\"success\",\"data\":");
    http_json_str(&b, text);
    http_buf_puts(&b, "}\n");
    rc = reply_built(r, &b, b.max);
    http_buf_release(&b);
out:
    free(text);
    query_node_free(expr);
    http_params_release(&ps);
    return rc;
}
