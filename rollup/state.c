/*
 * The state file and recovery (rollup.h).  DATA/rollups.json holds
 *
 *   {"version": 1, "rules": [{"name": "...", "rule": {...rule.h JSON...},
 *     "durable_until": MS or null, "late": N, "results": N}, ...]}
 *
 * durable_until is the end of the last interval whose results are
 * committed; recovery recomputes every interval from there.  The file is
 * replaced whole (written beside, synced, renamed over), so a crash
 * leaves the old or the new one.
 */
#define LOG_MODULE "rollup"
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rollup/engine_internal.h"
#include "tsdb/error.h"
#include "tsdb/log.h"

/* How far before the recovery point a counter's previous sample is looked
 * for, to measure the first recovered sample's increase from it.  A series
 * silent for longer starts again from its first recovered sample. */
#define RECOVER_BASE_MS (3600 * 1000)

static int add_rule(struct rollup_engine *e, const char *where,
                    const char *name, json_t *def,
                    struct rollup_rulestate **out, char *err, size_t errlen)
{
    struct rollup_rule rule;
    char why[512];
    char *text = json_dumps(def, JSON_COMPACT);
    int rc;

    if (text == NULL)
        return TSDB_ENOMEM;
    rc = rollup_rule_parse(name, text, strlen(text), &rule, why, sizeof(why));
    free(text);
    if (rc == TSDB_EINVAL)
        snprintf(err, errlen, "%s: rule %s: %s", where, name, why);
    if (rc != TSDB_OK)
        return rc;
    *out = rollup_rulestate_new(&rule);
    if (*out == NULL) {
        rollup_rule_release(&rule);
        return TSDB_ENOMEM;
    }
    rc = rollup_insert_rule(e, *out);
    if (rc != TSDB_OK)
        rollup_rulestate_free(*out);
    return rc;
}

static json_t *load_file(const char *path, bool *missing, char *err,
                         size_t errlen)
{
    json_error_t je;
    json_t *root;

    *missing = false;
    if (access(path, F_OK) != 0 && errno == ENOENT) {
        *missing = true;
        return NULL;
    }
    root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (root == NULL)
        snprintf(err, errlen, "%s: line %d, column %d: %s", path, je.line,
                 je.column, je.text);
    return root;
}

int rollup_state_load(struct rollup_engine *e, char *err, size_t errlen)
{
    bool missing;
    json_t *root = load_file(e->state_path, &missing, err, errlen), *rules, *x;
    size_t i;
    int rc = TSDB_OK;

    if (missing)
        return TSDB_OK;
    if (root == NULL)
        return TSDB_EINVAL;
    rules = json_object_get(root, "rules");
    if (json_integer_value(json_object_get(root, "version")) != 1 ||
        !json_is_array(rules)) {
        snprintf(err, errlen, "%s: not a version 1 rollup state file",
                 e->state_path);
        json_decref(root);
        return TSDB_EINVAL;
    }
    json_array_foreach(rules, i, x)
    {
        struct rollup_rulestate *r;
        const char *name = json_string_value(json_object_get(x, "name"));
        json_t *until = json_object_get(x, "durable_until");

        rc = add_rule(e, e->state_path, name ? name : "",
                      json_object_get(x, "rule"), &r, err, errlen);
        if (rc != TSDB_OK)
            break;
        if (json_is_integer(until))
            r->closed_until = r->durable_until = json_integer_value(until);
        r->late = r->late_logged =
            (uint64_t)json_integer_value(json_object_get(x, "late"));
        r->written =
            (uint64_t)json_integer_value(json_object_get(x, "results"));
    }
    json_decref(root);
    return rc;
}

int rollup_rules_file_load(struct rollup_engine *e, const char *path, char *err,
                           size_t errlen)
{
    bool missing;
    json_t *root = load_file(path, &missing, err, errlen), *def;
    const char *name;
    int rc = TSDB_OK;

    if (missing) {
        snprintf(err, errlen, "%s: no such file", path);
        return TSDB_EINVAL;
    }
    if (root == NULL)
        return TSDB_EINVAL;
    if (!json_is_object(root)) {
        snprintf(err, errlen,
                 "%s: an object of rules by name is required, e.g. "
                 "{\"tokens\": {\"match\": ..., \"interval\": \"1m\", ...}}",
                 path);
        json_decref(root);
        return TSDB_EINVAL;
    }
    json_object_foreach(root, name, def)
    {
        struct rollup_rulestate *r;
        char *text = json_dumps(def, JSON_COMPACT);
        bool same = false;

        /* An unchanged rule keeps its recovery point. */
        for (size_t i = 0; text != NULL && i < e->nrules; i++) {
            struct rollup_rule probe;
            char why[16];

            if (strcmp(e->rules[i]->def.name, name) != 0)
                continue;
            if (rollup_rule_parse(name, text, strlen(text), &probe, why,
                                  sizeof(why)) == TSDB_OK) {
                char *canon = rollup_rule_json(&probe);

                same = canon && strcmp(canon, e->rules[i]->def_json) == 0;
                free(canon);
                rollup_rule_release(&probe);
            }
        }
        free(text);
        if (same)
            continue;
        rc = add_rule(e, path, name, def, &r, err, errlen);
        if (rc != TSDB_OK)
            break;
    }
    json_decref(root);
    return rc;
}

char *rollup_state_text(struct rollup_engine *e)
{
    json_t *root = json_object(), *rules = json_array();
    char *s = NULL;

    if (root == NULL || rules == NULL) {
        json_decref(root);
        json_decref(rules);
        return NULL;
    }
    json_object_set_new(root, "version", json_integer(1));
    json_object_set_new(root, "rules", rules);
    for (size_t i = 0; i < e->nrules; i++) {
        struct rollup_rulestate *r = e->rules[i];
        json_t *x = json_object();

        if (x == NULL || json_array_append_new(rules, x) != 0)
            goto out;
        json_object_set_new(x, "name", json_string(r->def.name));
        json_object_set_new(x, "rule", json_loads(r->def_json, 0, NULL));
        json_object_set_new(x, "durable_until",
                            r->durable_until == INT64_MIN
                                ? json_null()
                                : json_integer(r->durable_until));
        json_object_set_new(x, "late", json_integer((json_int_t)r->late));
        json_object_set_new(x, "results", json_integer((json_int_t)r->written));
    }
    s = json_dumps(root, JSON_INDENT(1));
out:
    json_decref(root);
    return s;
}

int rollup_state_write(struct rollup_engine *e, const char *text)
{
    char tmp[4096];
    size_t len = strlen(text);
    int fd;
    bool ok;

    snprintf(tmp, sizeof(tmp), "%s.tmp", e->state_path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return TSDB_EIO;
    ok = write(fd, text, len) == (ssize_t)len && write(fd, "\n", 1) == 1 &&
         fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    if (!ok || rename(tmp, e->state_path) != 0) {
        unlink(tmp);
        return TSDB_EIO;
    }
    return TSDB_OK;
}

/* Feeds one stored series to r: samples before the recovery point only
 * set the increase base. */
static int recover_series(struct rollup_rulestate *r, struct tsdb_query *q,
                          uint32_t slot, size_t *fed)
{
    const int64_t *ts;
    const double *vs;
    size_t n;
    int rc;

    while ((rc = tsdb_query_next_batch(q, &ts, &vs, &n)) == TSDB_OK && n > 0) {
        for (size_t i = 0; i < n; i++) {
            struct rollup_series *s = &r->series[slot];
            uint64_t bits;

            memcpy(&bits, &vs[i], sizeof(bits));
            if (ts[i] >= r->closed_until) {
                rollup_feed(r, slot, ts[i], vs[i]);
                (*fed)++;
            } else if (bits != 0x7ff0000000000002ULL) { /* not stale */
                s->has_base = true;
                s->last_t = ts[i];
                s->last_v = vs[i];
            }
        }
    }
    return rc;
}

int rollup_recover(struct rollup_engine *e, struct rollup_rulestate *r)
{
    struct tsdb_query *q;
    const struct tsdb_labels *ls;
    uint64_t id;
    size_t nseries = 0, fed = 0;
    int rc;

    if (r->closed_until == INT64_MIN)
        return TSDB_OK;
    rc = tsdb_query_open(e->db, r->def.ms, r->def.nms,
                         r->closed_until - RECOVER_BASE_MS, INT64_MAX, &q);
    if (rc != TSDB_OK)
        return rc;
    r->recovering = true;
    while (rc == TSDB_OK &&
           (rc = tsdb_query_next_series(q, &ls, &id)) == TSDB_OK) {
        uint32_t slot;

        rc = rollup_series_slot(r, id, ls, &slot);
        if (rc == TSDB_OK)
            rc = recover_series(r, q, slot, &fed);
        nseries++;
    }
    tsdb_query_close(q);
    r->recovering = false;
    if (rc != TSDB_ENOTFOUND)
        return rc;
    if (r->max_t != INT64_MIN)
        rollup_close_due(
            e, r, rollup_floor(r->max_t - r->def.grace_ms, r->def.interval_ms));
    log_info("rule %s: recovered %zu samples of %zu series from %lld ms on",
             r->def.name, fed, nseries, (long long)r->durable_until);
    return TSDB_OK;
}
