/* Detector definitions: JSON in, validated, canonical JSON out
 * (detector.h). */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anomaly/detector.h"
#include "query/duration.h"
#include "query/jsondef.h"
#include "query/parse.h"
#include "tsdb/error.h"

static int parse_query(struct detector_def *d, json_t *v, char *err,
                       size_t errlen)
{
    struct query_parse_err pe;
    const char *s = json_string_value(v);
    enum query_type t;
    int rc;

    if (s == NULL || *s == '\0')
        return jsondef_fail(err, errlen,
                            "field \"query\": a PromQL expression is required");
    rc = query_parse(s, strlen(s), &d->expr, &pe);
    if (rc == TSDB_ENOMEM)
        return rc;
    if (rc != TSDB_OK)
        return jsondef_fail(err, errlen, "field \"query\": %s", pe.msg);
    t = query_node_type(d->expr);
    if (t != QUERY_TYPE_VECTOR && t != QUERY_TYPE_SCALAR)
        return jsondef_fail(
            err, errlen,
            "field \"query\": the expression gives a %s; a detector "
            "needs an instant vector or a scalar",
            query_type_name(t));
    d->query = strdup(s);
    return d->query ? TSDB_OK : TSDB_ENOMEM;
}

static int parse_number(json_t *root, const char *field, double lo, double hi,
                        double dflt, double *out, char *err, size_t errlen)
{
    json_t *v = json_object_get(root, field);

    if (v == NULL) {
        *out = dflt;
        return TSDB_OK;
    }
    if (!json_is_number(v) || !(json_number_value(v) > lo) ||
        json_number_value(v) > hi)
        return jsondef_fail(err, errlen,
                            "field \"%s\": a number in (%g, %g] is "
                            "required",
                            field, lo, hi);
    *out = json_number_value(v);
    return TSDB_OK;
}

/* params: "season" is the detector's; the rest goes to the model as text. */
static int parse_params(struct detector_def *d, json_t *params, char *err,
                        size_t errlen)
{
    const char *names[ANOMALY_MAX_PARAMS], *values[ANOMALY_MAX_PARAMS];
    char bufs[ANOMALY_MAX_PARAMS][64], why[384];
    size_t n = 0;
    const char *key;
    json_t *v;
    int rc;

    if (params != NULL && !json_is_object(params))
        return jsondef_fail(err, errlen,
                            "field \"params\": an object is required");
    json_object_foreach(params, key, v)
    {
        if (strcmp(key, "season") == 0) {
            const char *s = json_string_value(v);

            if (s == NULL ||
                query_parse_duration(s, &d->cfg.season_ms) != TSDB_OK ||
                d->cfg.season_ms <= 0)
                return jsondef_fail(
                    err, errlen,
                    "field \"params.season\": a duration such as "
                    "\"1d\" or \"1w\" is required");
            if (d->cfg.season_ms < d->cfg.interval_ms)
                return jsondef_fail(
                    err, errlen,
                    "field \"params.season\": %s is shorter than the "
                    "interval",
                    s);
            if (d->cfg.season_ms % d->cfg.interval_ms != 0 ||
                d->cfg.season_ms / d->cfg.interval_ms >
                    ANOMALY_MAX_SEASON_STEPS)
                return jsondef_fail(
                    err, errlen,
                    "field \"params.season\": %s must be a whole "
                    "number of intervals, at most %d of them",
                    s, ANOMALY_MAX_SEASON_STEPS);
            continue;
        }
        if (n == ANOMALY_MAX_PARAMS)
            return jsondef_fail(err, errlen,
                                "field \"params\": too many parameters");
        if (json_is_string(v))
            snprintf(bufs[n], sizeof(bufs[n]), "%s", json_string_value(v));
        else if (json_is_number(v))
            snprintf(bufs[n], sizeof(bufs[n]), "%.17g", json_number_value(v));
        else
            return jsondef_fail(err, errlen,
                                "field \"params.%s\": a number or a string is "
                                "required",
                                key);
        names[n] = key;
        values[n] = bufs[n];
        n++;
    }
    rc = d->model->configure(&d->cfg, names, values, n, why, sizeof(why));
    if (rc == TSDB_EINVAL)
        return jsondef_fail(err, errlen, "field \"params\": %s", why);
    return rc;
}

static int parse_exclusions(struct detector_def *d, json_t *v, char *err,
                            size_t errlen)
{
    size_t i;
    json_t *w;

    if (v == NULL)
        return TSDB_OK;
    if (!json_is_array(v) || json_array_size(v) > DETECTOR_MAX_EXCLUSIONS)
        return jsondef_fail(err, errlen,
                            "field \"exclusions\": an array of at most %d "
                            "{\"start\", \"end\"} windows is required",
                            DETECTOR_MAX_EXCLUSIONS);
    json_array_foreach(v, i, w)
    {
        const char *s = json_string_value(json_object_get(w, "start"));
        const char *e = json_string_value(json_object_get(w, "end"));
        struct detector_window *x = &d->excl[d->nexcl];

        if (s == NULL || e == NULL || query_parse_time(s, &x->start) ||
            query_parse_time(e, &x->end) || x->end <= x->start)
            return jsondef_fail(
                err, errlen,
                "field \"exclusions\": entry %zu needs \"start\" "
                "before \"end\", RFC 3339 or Unix seconds as "
                "strings",
                i + 1);
        d->nexcl++;
    }
    return TSDB_OK;
}

static int parse_fields(struct detector_def *d, json_t *root, char *err,
                        size_t errlen)
{
    static const char *const known[] = {
        "query",        "interval", "model",   "params",        "sensitivity",
        "min_duration", "timezone", "history", "min_deviation", "exclusions"};
    const char *key, *model, *tz;
    json_t *v;
    int rc;

    json_object_foreach(root, key, v)
    {
        size_t k;

        for (k = 0; k < sizeof(known) / sizeof(known[0]); k++)
            if (strcmp(key, known[k]) == 0)
                break;
        if (k == sizeof(known) / sizeof(known[0]))
            return jsondef_fail(err, errlen,
                                "field \"%s\": not a detector field", key);
    }
    rc = parse_query(d, json_object_get(root, "query"), err, errlen);
    if (rc == TSDB_OK)
        rc = jsondef_duration(root, "interval", DETECTOR_MIN_INTERVAL_MS,
                              DETECTOR_MAX_INTERVAL_MS, -1, &d->cfg.interval_ms,
                              err, errlen);
    if (rc != TSDB_OK)
        return rc;
    model = json_string_value(json_object_get(root, "model"));
    d->model = model ? anomaly_model_find(model) : NULL;
    if (d->model == NULL)
        return jsondef_fail(err, errlen,
                            "field \"model\": %s%s%s is not a model (ewma, "
                            "holt_winters, seasonal_robust)",
                            model ? "\"" : "", model ? model : "(missing)",
                            model ? "\"" : "");
    rc = parse_number(root, "sensitivity", 0, 100, 3, &d->cfg.sensitivity, err,
                      errlen);
    if (rc == TSDB_OK)
        rc = parse_number(root, "min_deviation", -1e-300, INFINITY, 0,
                          &d->cfg.min_deviation, err, errlen);
    if (rc == TSDB_OK)
        rc = jsondef_duration(root, "min_duration", 0, 7 * 86400000LL, 0,
                              &d->min_duration_ms, err, errlen);
    if (rc == TSDB_OK)
        rc = parse_params(d, json_object_get(root, "params"), err, errlen);
    if (rc == TSDB_OK)
        rc = jsondef_duration(root, "history", 0, 90 * 86400000LL,
                              d->cfg.season_ms > 0 ? 3 * d->cfg.season_ms
                                                   : 86400000,
                              &d->history_ms, err, errlen);
    if (rc == TSDB_OK)
        rc = parse_exclusions(d, json_object_get(root, "exclusions"), err,
                              errlen);
    tz = json_string_value(json_object_get(root, "timezone"));
    if (rc == TSDB_OK && json_object_get(root, "timezone") && tz == NULL)
        rc = jsondef_fail(err, errlen,
                          "field \"timezone\": a zone name such as "
                          "\"Europe/Paris\" is required");
    if (rc == TSDB_OK && tz != NULL) {
        char why[384];

        rc = anomaly_tz_load(tz, &d->tz, why, sizeof(why));
        if (rc == TSDB_EINVAL)
            return jsondef_fail(err, errlen, "field \"timezone\": %s", why);
        if (rc == TSDB_OK && (d->timezone = strdup(tz)) == NULL)
            rc = TSDB_ENOMEM;
    }
    return rc;
}

int detector_def_parse(const char *name, const char *json, size_t len,
                       struct detector_def *d, char *err, size_t errlen)
{
    json_error_t je;
    json_t *root;
    int rc;

    memset(d, 0, sizeof(*d));
    if (!jsondef_name_valid(name, DETECTOR_NAME_MAX))
        return jsondef_fail(err, errlen,
                            "detector name \"%.*s\": 1 to %d of [A-Za-z0-9_.-] "
                            "required",
                            DETECTOR_NAME_MAX, name, DETECTOR_NAME_MAX);
    strcpy(d->name, name);
    root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
    if (root == NULL)
        return jsondef_fail(
            err, errlen,
            "detector \"%s\": invalid JSON at line %d, column %d: %s", name,
            je.line, je.column, je.text);
    if (!json_is_object(root)) {
        rc = jsondef_fail(err, errlen,
                          "detector \"%s\": a JSON object is required", name);
    } else {
        rc = parse_fields(d, root, err, errlen);
        if (rc == TSDB_OK) {
            d->json = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
            if (d->json == NULL)
                rc = TSDB_ENOMEM;
        }
    }
    json_decref(root);
    if (rc != TSDB_OK)
        detector_def_release(d);
    return rc;
}

void detector_def_release(struct detector_def *d)
{
    if (d->expr != NULL)
        query_node_free(d->expr);
    anomaly_tz_free(d->tz);
    free(d->query);
    free(d->timezone);
    free(d->json);
    memset(d, 0, sizeof(*d));
}

bool detector_excluded(const struct detector_def *d, int64_t t)
{
    for (size_t i = 0; i < d->nexcl; i++)
        if (t >= d->excl[i].start && t < d->excl[i].end)
            return true;
    return false;
}
