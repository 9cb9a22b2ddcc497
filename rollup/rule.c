/* Rollup rules: JSON in, validated, JSON out (rule.h). */
#include "rollup/rule.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/duration.h"
#include "query/jsondef.h"
#include "query/matchers.h"
#include "query/parse.h"
#include "query/strconv.h"
#include "tsdb/error.h"
#include "tsdb/labels.h"

static const char *const output_names[ROLLUP_NOUTPUTS] = {
    [ROLLUP_SUM] = "sum",           [ROLLUP_COUNT] = "count",
    [ROLLUP_MIN] = "min",           [ROLLUP_MAX] = "max",
    [ROLLUP_AVG] = "avg",           [ROLLUP_LAST] = "last",
    [ROLLUP_INCREASE] = "increase", [ROLLUP_RATE] = "rate",
    [ROLLUP_QUANTILE] = "quantile",
};

const char *rollup_output_name(enum rollup_output o)
{
    return output_names[o];
}

static int parse_match(struct rollup_rule *r, json_t *v, char *err,
                       size_t errlen)
{
    struct query_parse_err pe;
    struct query_node *n = NULL;
    const char *s = json_string_value(v);
    int rc;

    if (s == NULL)
        return jsondef_fail(
            err, errlen,
            "field \"match\": a series selector string is required, "
            "e.g. \"llm_tokens_total{region=\\\"eu\\\"}\"");
    rc = query_parse(s, strlen(s), &n, &pe);
    if (rc == TSDB_ENOMEM)
        return rc;
    if (rc != TSDB_OK)
        return jsondef_fail(err, errlen, "field \"match\": %s", pe.msg);
    if (n->kind != QUERY_NODE_SELECTOR || n->u.sel.mods.offset_ms != 0 ||
        n->u.sel.mods.at != QUERY_AT_NONE) {
        query_node_free(n);
        return jsondef_fail(
            err, errlen,
            "field \"match\": \"%s\" is not a plain series selector "
            "(no functions, ranges, offset or @)",
            s);
    }
    rc = query_matchers(n, &r->ms, &r->nms, err, errlen);
    query_node_free(n);
    if (rc == TSDB_EINVAL) {
        char why[256];

        snprintf(why, sizeof(why), "%s", err);
        return jsondef_fail(err, errlen, "field \"match\": %s", why);
    }
    if (rc != TSDB_OK)
        return rc;
    r->match = strdup(s);
    return r->match ? TSDB_OK : TSDB_ENOMEM;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int parse_labels(struct rollup_rule *r, const char *field, json_t *v,
                        char *err, size_t errlen)
{
    size_t i;
    json_t *e;

    if (!json_is_array(v))
        return jsondef_fail(err, errlen,
                            "field \"%s\": an array of label names is required",
                            field);
    if (json_array_size(v) > ROLLUP_MAX_LABELS)
        return jsondef_fail(err, errlen, "field \"%s\": at most %d labels",
                            field, ROLLUP_MAX_LABELS);
    json_array_foreach(v, i, e)
    {
        const char *s = json_string_value(e);

        if (s == NULL || !tsdb_label_name_valid(s, strlen(s)) ||
            strcmp(s, "__name__") == 0)
            return jsondef_fail(
                err, errlen,
                "field \"%s\": entry %zu is not a label name "
                "([a-zA-Z_][a-zA-Z0-9_]*, not __name__: outputs are "
                "always per metric)",
                field, i + 1);
        r->labels[r->nlabels] = strdup(s);
        if (r->labels[r->nlabels] == NULL)
            return TSDB_ENOMEM;
        r->nlabels++;
    }
    qsort(r->labels, r->nlabels, sizeof(r->labels[0]), cmp_str);
    for (i = 1; i < r->nlabels; i++)
        if (strcmp(r->labels[i - 1], r->labels[i]) == 0)
            return jsondef_fail(err, errlen,
                                "field \"%s\": label \"%s\" is repeated", field,
                                r->labels[i]);
    return TSDB_OK;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

/* "quantiles(0.5, 0.99)": the numbers between the parentheses. */
static int parse_quantiles(struct rollup_rule *r, const char *s, size_t at,
                           char *err, size_t errlen)
{
    const char *p = s + strlen("quantiles(");

    for (;;) {
        char *end;
        double q = strtod(p, &end);

        if (end == p || !(q >= 0 && q <= 1))
            return jsondef_fail(
                err, errlen,
                "field \"outputs\": entry %zu: \"%s\" needs numbers "
                "from 0 to 1, e.g. quantiles(0.5, 0.99)",
                at, s);
        if (r->nquantiles == ROLLUP_MAX_QUANTILES)
            return jsondef_fail(
                err, errlen,
                "field \"outputs\": entry %zu: at most %d quantiles", at,
                ROLLUP_MAX_QUANTILES);
        r->quantiles[r->nquantiles++] = q;
        p = end + strspn(end, " ");
        if (*p == ')' && p[1] == '\0')
            break;
        if (*p != ',')
            return jsondef_fail(err, errlen,
                                "field \"outputs\": entry %zu: \"%s\" is not "
                                "quantiles(q, ...)",
                                at, s);
        p++;
    }
    qsort(r->quantiles, r->nquantiles, sizeof(double), cmp_double);
    for (size_t i = 1; i < r->nquantiles; i++)
        if (r->quantiles[i] == r->quantiles[i - 1])
            return jsondef_fail(err, errlen,
                                "field \"outputs\": entry %zu: quantile %g is "
                                "repeated",
                                at, r->quantiles[i]);
    r->outputs |= 1u << ROLLUP_QUANTILE;
    return TSDB_OK;
}

static int parse_outputs(struct rollup_rule *r, json_t *v, char *err,
                         size_t errlen)
{
    size_t i;
    json_t *e;

    if (!json_is_array(v) || json_array_size(v) == 0)
        return jsondef_fail(
            err, errlen,
            "field \"outputs\": a non-empty array is required, e.g. "
            "[\"sum\", \"increase\", \"quantiles(0.5, 0.99)\"]");
    json_array_foreach(v, i, e)
    {
        const char *s = json_string_value(e);
        int o;
        int rc;

        if (s != NULL && strncmp(s, "quantiles(", 10) == 0) {
            if (r->outputs & (1u << ROLLUP_QUANTILE))
                return jsondef_fail(
                    err, errlen,
                    "field \"outputs\": entry %zu: quantiles(...) "
                    "is given twice",
                    i + 1);
            rc = parse_quantiles(r, s, i + 1, err, errlen);
            if (rc != TSDB_OK)
                return rc;
            continue;
        }
        for (o = 0; o < ROLLUP_QUANTILE; o++)
            if (s != NULL && strcmp(s, output_names[o]) == 0)
                break;
        if (o == ROLLUP_QUANTILE)
            return jsondef_fail(
                err, errlen,
                "field \"outputs\": entry %zu: unknown output \"%s\" "
                "(sum, count, min, max, avg, last, increase, rate, "
                "quantiles(...))",
                i + 1, s ? s : "(not a string)");
        if (r->outputs & (1u << o))
            return jsondef_fail(
                err, errlen,
                "field \"outputs\": entry %zu: \"%s\" is given twice", i + 1,
                s);
        r->outputs |= 1u << o;
    }
    return TSDB_OK;
}

static int parse_fields(struct rollup_rule *r, json_t *root, char *err,
                        size_t errlen)
{
    const char *key;
    json_t *v;
    int rc;

    json_object_foreach(root, key, v)
    {
        if (strcmp(key, "match") && strcmp(key, "by") &&
            strcmp(key, "without") && strcmp(key, "interval") &&
            strcmp(key, "grace") && strcmp(key, "outputs"))
            return jsondef_fail(
                err, errlen,
                "field \"%s\": not a rollup rule field (match, by, "
                "without, interval, grace, outputs)",
                key);
    }
    if (json_object_get(root, "by") && json_object_get(root, "without"))
        return jsondef_fail(
            err, errlen,
            "field \"without\": give \"by\" or \"without\", not both");
    rc = parse_match(r, json_object_get(root, "match"), err, errlen);
    if (rc == TSDB_OK && (v = json_object_get(root, "by")) != NULL)
        rc = parse_labels(r, "by", v, err, errlen);
    if (rc == TSDB_OK && (v = json_object_get(root, "without")) != NULL) {
        r->without = true;
        rc = parse_labels(r, "without", v, err, errlen);
    }
    if (rc == TSDB_OK)
        rc = jsondef_duration(root, "interval", ROLLUP_MIN_INTERVAL_MS,
                              ROLLUP_MAX_INTERVAL_MS, -1, &r->interval_ms, err,
                              errlen);
    if (rc == TSDB_OK && r->interval_ms % 1000 != 0)
        rc =
            jsondef_fail(err, errlen,
                         "field \"interval\": whole seconds only (it names the "
                         "output series)");
    if (rc == TSDB_OK)
        rc = jsondef_duration(root, "grace", 0, ROLLUP_MAX_INTERVAL_MS,
                              ROLLUP_DEFAULT_GRACE_MS, &r->grace_ms, err,
                              errlen);
    if (rc == TSDB_OK)
        rc = parse_outputs(r, json_object_get(root, "outputs"), err, errlen);
    return rc;
}

int rollup_rule_parse(const char *name, const char *json, size_t len,
                      struct rollup_rule *r, char *err, size_t errlen)
{
    json_error_t je;
    json_t *root;
    int rc;

    memset(r, 0, sizeof(*r));
    if (!jsondef_name_valid(name, ROLLUP_NAME_MAX))
        return jsondef_fail(
            err, errlen,
            "rule name \"%.*s\": 1 to %d of [A-Za-z0-9_.-] required",
            ROLLUP_NAME_MAX, name, ROLLUP_NAME_MAX);
    strcpy(r->name, name);
    root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
    if (root == NULL)
        return jsondef_fail(err, errlen,
                            "rule \"%s\": invalid JSON at line %d, "
                            "column %d: %s",
                            name, je.line, je.column, je.text);
    if (!json_is_object(root))
        rc = jsondef_fail(err, errlen, "rule \"%s\": a JSON object is required",
                          name);
    else
        rc = parse_fields(r, root, err, errlen);
    json_decref(root);
    if (rc != TSDB_OK)
        rollup_rule_release(r);
    return rc;
}

/* The JSON object of r without its state: what PUT takes back. */
static json_t *rule_object(const struct rollup_rule *r)
{
    char iv[QUERY_DURATION_MAX], grace[QUERY_DURATION_MAX];
    json_t *o = json_object(), *labels = json_array(), *outs = json_array();

    query_format_duration(iv, r->interval_ms);
    query_format_duration(grace, r->grace_ms);
    for (size_t i = 0; i < r->nlabels; i++)
        json_array_append_new(labels, json_string(r->labels[i]));
    for (int k = 0; k < ROLLUP_QUANTILE; k++)
        if (r->outputs & (1u << k))
            json_array_append_new(outs, json_string(output_names[k]));
    if (r->nquantiles > 0) {
        char q[(QUERY_FLOAT_MAX + 2) * ROLLUP_MAX_QUANTILES + 16];
        size_t n = (size_t)snprintf(q, sizeof(q), "quantiles(");

        for (size_t i = 0; i < r->nquantiles; i++) {
            if (i > 0)
                n += (size_t)snprintf(q + n, sizeof(q) - n, ", ");
            n += query_format_float(q + n, r->quantiles[i], QUERY_FLOAT_PLAIN);
        }
        snprintf(q + n, sizeof(q) - n, ")");
        json_array_append_new(outs, json_string(q));
    }
    json_object_set_new(o, "match", json_string(r->match));
    json_object_set_new(o, r->without ? "without" : "by", labels);
    json_object_set_new(o, "interval", json_string(iv));
    json_object_set_new(o, "grace", json_string(grace));
    json_object_set_new(o, "outputs", outs);
    return o;
}

char *rollup_rule_json(const struct rollup_rule *r)
{
    json_t *o = rule_object(r);
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;

    json_decref(o);
    return s;
}

void rollup_rule_release(struct rollup_rule *r)
{
    if (r->ms != NULL)
        query_matchers_free(r->ms, r->nms);
    for (size_t i = 0; i < r->nlabels; i++)
        free(r->labels[i]);
    free(r->match);
    memset(r, 0, sizeof(*r));
}
