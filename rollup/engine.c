/*
 * The rollup engine's life cycle, its commit observer, its writer thread
 * and the rule API (rollup.h).
 */
#define LOG_MODULE "rollup"
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "query/duration.h"
#include "rollup/engine_internal.h"
#include "tsdb/error.h"
#include "tsdb/log.h"

static uint64_t mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int64_t wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct rollup_rulestate *rollup_rulestate_new(const struct rollup_rule *def)
{
    struct rollup_rulestate *r = calloc(1, sizeof(*r));

    if (r == NULL)
        return NULL;
    r->def = *def;
    r->def_json = rollup_rule_json(def);
    if (r->def_json == NULL) {
        memset(&r->def, 0, sizeof(r->def));
        free(r);
        return NULL;
    }
    r->closed_until = INT64_MIN;
    r->durable_until = INT64_MIN;
    r->max_t = INT64_MIN;
    r->last_wall_ms = wall_ms();
    return r;
}

static size_t rule_index(const struct rollup_engine *e, const char *name,
                         bool *found)
{
    size_t lo = 0, hi = e->nrules;

    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(e->rules[mid]->def.name, name);

        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

/* Adds r in name order, replacing (and freeing) a rule of that name.
 * Series entries are matched again: rule indexes moved. */
int rollup_insert_rule(struct rollup_engine *e, struct rollup_rulestate *r)
{
    bool found;
    size_t at = rule_index(e, r->def.name, &found);

    if (found) {
        rollup_rulestate_free(e->rules[at]);
    } else {
        struct rollup_rulestate **p =
            realloc(e->rules, (e->nrules + 1) * sizeof(*p));
        if (p == NULL)
            return TSDB_ENOMEM;
        e->rules = p;
        memmove(&e->rules[at + 1], &e->rules[at],
                (e->nrules - at) * sizeof(*p));
        e->nrules++;
    }
    e->rules[at] = r;
    e->gen++;
    return TSDB_OK;
}

/* ---- the observer ---- */

/* Which rules select series ref, and its slot in each. */
static struct rollup_ref *match_ref(struct rollup_engine *e, uint64_t ref)
{
    struct rollup_ref *x;
    struct tsdb_labels ls;

    if (ref >= e->refs_cap) {
        size_t cap = e->refs_cap ? e->refs_cap : 1024;
        struct rollup_ref *p;

        while (cap <= ref)
            cap *= 2;
        p = realloc(e->refs, cap * sizeof(*p));
        if (p == NULL)
            return NULL;
        memset(p + e->refs_cap, 0, (cap - e->refs_cap) * sizeof(*p));
        e->refs = p;
        e->refs_cap = cap;
    }
    x = &e->refs[ref];
    if (x->gen == e->gen)
        return x;
    if (tsdb_series_labels(e->db, ref, &ls) != TSDB_OK)
        return NULL;
    x->n = 0;
    free(x->pairs);
    x->pairs = NULL;
    for (size_t i = 0; i < e->nrules; i++) {
        struct rollup_rulestate *r = e->rules[i];
        uint32_t slot, *p;
        size_t m;

        for (m = 0; m < r->def.nms; m++) {
            const char *v = tsdb_labels_get(&ls, r->def.ms[m].name);

            if (!tsdb_matcher_matches(&r->def.ms[m], v ? v : "",
                                      v ? strlen(v) : 0))
                break;
        }
        if (m < r->def.nms || rollup_series_slot(r, ref, &ls, &slot) != TSDB_OK)
            continue;
        p = realloc(x->pairs, (x->n + 1) * 2 * sizeof(*p));
        if (p == NULL)
            break;
        x->pairs = p;
        x->pairs[x->n * 2] = (uint32_t)i;
        x->pairs[x->n * 2 + 1] = slot;
        x->n++;
    }
    tsdb_labels_release(&ls);
    x->gen = e->gen;
    return x;
}

static void observe(void *ctx, const struct tsdb_observed *s, size_t n)
{
    struct rollup_engine *e = ctx;
    uint64_t before, start = mono_ns();
    int64_t now;

    pthread_mutex_lock(&e->lock);
    if (e->nrules == 0) {
        pthread_mutex_unlock(&e->lock);
        return;
    }
    before = e->queued_batches;
    for (size_t i = 0; i < n; i++) {
        struct rollup_ref *x = match_ref(e, s[i].ref);

        for (uint32_t k = 0; x != NULL && k < x->n; k++)
            rollup_feed(e->rules[x->pairs[k * 2]], x->pairs[k * 2 + 1], s[i].t,
                        s[i].v);
    }
    now = wall_ms();
    for (size_t i = 0; i < e->nrules; i++) {
        struct rollup_rulestate *r = e->rules[i];

        if (!r->touched)
            continue;
        r->touched = false;
        r->last_wall_ms = now;
        if (r->max_t != INT64_MIN)
            rollup_close_due(
                e, r,
                rollup_floor(r->max_t - r->def.grace_ms, r->def.interval_ms));
    }
    if (e->queued_batches != before)
        pthread_cond_signal(&e->wake);
    e->observe_ns += mono_ns() - start;
    pthread_mutex_unlock(&e->lock);
}

/* ---- the writer ---- */

/* Closes the intervals of rules whose samples stopped coming. */
static void close_idle(struct rollup_engine *e, int64_t now)
{
    for (size_t i = 0; i < e->nrules; i++) {
        struct rollup_rulestate *r = e->rules[i];

        if (r->nivs > 0 &&
            now - r->last_wall_ms > r->def.interval_ms + r->def.grace_ms)
            rollup_close_due(e, r,
                             r->ivs[r->nivs - 1].start + r->def.interval_ms);
    }
}

static int commit_outs(struct rollup_engine *e, struct rollup_out *o, size_t n)
{
    char err[256];
    int rc = TSDB_OK;

    for (size_t i = 0; i < n && rc == TSDB_OK; i++) {
        uint64_t ref;

        rc = tsdb_appender_series(e->app, o[i].labels.v, o[i].labels.n, &ref,
                                  err, sizeof(err));
        if (rc == TSDB_OK)
            rc = tsdb_appender_add(e->app, ref, o[i].t, o[i].v);
        else
            log_warn("result series refused: %s", err);
    }
    if (rc == TSDB_OK)
        rc = tsdb_appender_commit(e->app, NULL);
    else
        tsdb_appender_rollback(e->app);
    for (size_t i = 0; i < n; i++)
        tsdb_labels_release(&o[i].labels);
    free(o);
    return rc;
}

/* Under e->lock, after a batch: what the state file should now say. */
static bool mark_durable(struct rollup_engine *e, uint64_t batch)
{
    bool changed = false;

    for (size_t i = 0; i < e->nrules; i++) {
        struct rollup_rulestate *r = e->rules[i];
        int64_t until = r->snap_batch == batch ? r->snap_until : INT64_MIN;

        if (until > r->durable_until) {
            r->durable_until = until;
            changed = true;
        }
    }
    return changed;
}

static void save_state(struct rollup_engine *e)
{
    char *text = rollup_state_text(e);

    pthread_mutex_unlock(&e->lock);
    pthread_mutex_lock(&e->save_lock);
    if (text == NULL || rollup_state_write(e, text) != TSDB_OK)
        log_error("cannot write %s; rules and recovery points are "
                  "those of the last good write",
                  e->state_path);
    pthread_mutex_unlock(&e->save_lock);
    free(text);
    pthread_mutex_lock(&e->lock);
}

static void *writer_main(void *arg)
{
    struct rollup_engine *e = arg;

    pthread_mutex_lock(&e->lock);
    for (;;) {
        struct rollup_out *outs;
        size_t nouts;
        uint64_t batch;
        int rc;

        if (!e->stop && e->nouts == 0) {
            struct timespec ts;

            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += 1;
            pthread_cond_timedwait(&e->wake, &e->lock, &ts);
        }
        close_idle(e, wall_ms());
        batch = e->queued_batches;
        for (size_t i = 0; i < e->nrules; i++) {
            e->rules[i]->snap_batch = batch;
            e->rules[i]->snap_until = e->rules[i]->closed_until;
        }
        outs = e->outs;
        nouts = e->nouts;
        e->outs = NULL;
        e->nouts = e->outs_cap = 0;
        pthread_mutex_unlock(&e->lock);
        rc = nouts > 0 ? commit_outs(e, outs, nouts) : TSDB_OK;
        pthread_mutex_lock(&e->lock);
        if (rc != TSDB_OK) {
            e->commit_rc = rc;
            log_error("cannot write %zu results: %s; the intervals "
                      "are recomputed at the next start",
                      nouts, tsdb_strerror(rc));
        } else if (mark_durable(e, batch)) {
            save_state(e);
        }
        e->committed_batches = batch;
        pthread_cond_broadcast(&e->done);
        if (e->stop && e->nouts == 0)
            break;
    }
    pthread_mutex_unlock(&e->lock);
    return NULL;
}

/* ---- life cycle and API ---- */

static void engine_free(struct rollup_engine *e)
{
    for (size_t i = 0; i < e->nrules; i++)
        rollup_rulestate_free(e->rules[i]);
    free(e->rules);
    for (size_t i = 0; i < e->refs_cap; i++)
        free(e->refs[i].pairs);
    free(e->refs);
    for (size_t i = 0; i < e->nouts; i++)
        tsdb_labels_release(&e->outs[i].labels);
    free(e->outs);
    tsdb_appender_free(e->app);
    pthread_mutex_destroy(&e->lock);
    pthread_mutex_destroy(&e->save_lock);
    pthread_cond_destroy(&e->wake);
    pthread_cond_destroy(&e->done);
    free(e->state_path);
    free(e);
}

int rollup_open(struct tsdb *db, const char *state_path, const char *rules_file,
                struct rollup_engine **out, char *err, size_t errlen)
{
    struct rollup_engine *e = calloc(1, sizeof(*e));
    int rc;

    if (e == NULL)
        return TSDB_ENOMEM;
    e->db = db;
    e->gen = 1;
    pthread_mutex_init(&e->lock, NULL);
    pthread_mutex_init(&e->save_lock, NULL);
    pthread_cond_init(&e->wake, NULL);
    pthread_cond_init(&e->done, NULL);
    e->state_path = strdup(state_path);
    e->app = tsdb_appender_new(db);
    if (e->state_path == NULL || e->app == NULL) {
        engine_free(e);
        return TSDB_ENOMEM;
    }
    tsdb_appender_unobserved(e->app);
    rc = rollup_state_load(e, err, errlen);
    if (rc == TSDB_OK && rules_file != NULL)
        rc = rollup_rules_file_load(e, rules_file, err, errlen);
    for (size_t i = 0; i < e->nrules && rc == TSDB_OK; i++)
        rc = rollup_recover(e, e->rules[i]);
    if (rc == TSDB_OK) {
        char *text = rollup_state_text(e);

        rc = text ? rollup_state_write(e, text) : TSDB_ENOMEM;
        free(text);
        if (rc == TSDB_EIO)
            snprintf(err, errlen, "cannot write %s", state_path);
    }
    if (rc == TSDB_OK && pthread_create(&e->writer, NULL, writer_main, e) != 0)
        rc = TSDB_ENOMEM;
    if (rc != TSDB_OK) {
        engine_free(e);
        return rc;
    }
    e->writer_running = true;
    tsdb_set_commit_observer(db, observe, e);
    log_info("%zu rules from %s%s%s", e->nrules, state_path,
             rules_file ? " and " : "", rules_file ? rules_file : "");
    *out = e;
    return TSDB_OK;
}

void rollup_close(struct rollup_engine *e)
{
    if (e == NULL)
        return;
    tsdb_set_commit_observer(e->db, NULL, NULL);
    pthread_mutex_lock(&e->lock);
    e->stop = true;
    pthread_cond_signal(&e->wake);
    pthread_mutex_unlock(&e->lock);
    if (e->writer_running)
        pthread_join(e->writer, NULL);
    pthread_mutex_lock(&e->lock);
    save_state(e);
    pthread_mutex_unlock(&e->lock);
    engine_free(e);
}

/* Is there a rule of r's name with r's definition? */
static bool unchanged(struct rollup_engine *e, const struct rollup_rulestate *r)
{
    bool found;
    size_t at = rule_index(e, r->def.name, &found);

    return found && strcmp(e->rules[at]->def_json, r->def_json) == 0;
}

int rollup_put(struct rollup_engine *e, const char *name, const char *json,
               size_t len, char *err, size_t errlen)
{
    struct rollup_rule def;
    struct rollup_rulestate *r;
    char *text;
    int rc = rollup_rule_parse(name, json, len, &def, err, errlen);

    if (rc != TSDB_OK)
        return rc;
    r = rollup_rulestate_new(&def);
    if (r == NULL) {
        rollup_rule_release(&def);
        return TSDB_ENOMEM;
    }
    pthread_mutex_lock(&e->lock);
    if (unchanged(e, r)) {
        /* Provisioning tools send the same rule again and again: it keeps
         * its open intervals. */
        pthread_mutex_unlock(&e->lock);
        rollup_rulestate_free(r);
        return TSDB_OK;
    }
    rc = rollup_insert_rule(e, r);
    text = rc == TSDB_OK ? rollup_state_text(e) : NULL;
    pthread_mutex_unlock(&e->lock);
    if (rc != TSDB_OK) {
        rollup_rulestate_free(r);
        return rc;
    }
    log_info("rule %s set: %s", name, r->def_json);
    pthread_mutex_lock(&e->save_lock);
    rc = text ? rollup_state_write(e, text) : TSDB_ENOMEM;
    pthread_mutex_unlock(&e->save_lock);
    free(text);
    if (rc != TSDB_OK)
        snprintf(err, errlen,
                 "rule %s is in effect but %s could not be written: it "
                 "will be missing after a restart",
                 name, e->state_path);
    return rc;
}

int rollup_delete(struct rollup_engine *e, const char *name)
{
    bool found;
    size_t at;
    char *text = NULL;
    int rc = TSDB_OK;

    pthread_mutex_lock(&e->lock);
    at = rule_index(e, name, &found);
    if (found) {
        rollup_rulestate_free(e->rules[at]);
        memmove(&e->rules[at], &e->rules[at + 1],
                (e->nrules - at - 1) * sizeof(e->rules[0]));
        e->nrules--;
        e->gen++;
        text = rollup_state_text(e);
    }
    pthread_mutex_unlock(&e->lock);
    if (!found)
        return TSDB_ENOTFOUND;
    log_info("rule %s removed", name);
    pthread_mutex_lock(&e->save_lock);
    rc = text ? rollup_state_write(e, text) : TSDB_ENOMEM;
    pthread_mutex_unlock(&e->save_lock);
    free(text);
    return rc;
}

static json_t *time_or_null(int64_t ms)
{
    return ms == INT64_MIN ? json_null() : json_real((double)ms / 1000);
}

static json_t *rule_entry(const struct rollup_rulestate *r)
{
    json_t *o = json_loads(r->def_json, 0, NULL), *st = json_object();

    if (o == NULL || st == NULL) {
        json_decref(o);
        json_decref(st);
        return NULL;
    }
    json_object_set_new(o, "name", json_string(r->def.name));
    json_object_set_new(st, "series", json_integer((json_int_t)r->nseries));
    json_object_set_new(st, "groups", json_integer((json_int_t)r->ngroups));
    json_object_set_new(st, "open_intervals",
                        json_integer((json_int_t)r->nivs));
    json_object_set_new(st, "closed_until", time_or_null(r->closed_until));
    json_object_set_new(st, "newest_sample", time_or_null(r->max_t));
    json_object_set_new(st, "samples", json_integer((json_int_t)r->samples));
    json_object_set_new(st, "late_samples", json_integer((json_int_t)r->late));
    json_object_set_new(st, "dropped_samples",
                        json_integer((json_int_t)r->dropped));
    json_object_set_new(st, "results", json_integer((json_int_t)r->written));
    json_object_set_new(o, "state", st);
    return o;
}

char *rollup_list_json(struct rollup_engine *e)
{
    json_t *a = json_array();
    char *s = NULL;

    if (a == NULL)
        return NULL;
    pthread_mutex_lock(&e->lock);
    for (size_t i = 0; i < e->nrules; i++) {
        json_t *o = rule_entry(e->rules[i]);

        if (o == NULL || json_array_append_new(a, o) != 0)
            goto out;
    }
    s = json_dumps(a, JSON_COMPACT);
out:
    pthread_mutex_unlock(&e->lock);
    json_decref(a);
    return s;
}

int rollup_sync(struct rollup_engine *e)
{
    uint64_t target;
    int rc;

    pthread_mutex_lock(&e->lock);
    target = e->queued_batches;
    pthread_cond_signal(&e->wake);
    while (e->committed_batches < target && !e->stop)
        pthread_cond_wait(&e->done, &e->lock);
    rc = e->commit_rc;
    pthread_mutex_unlock(&e->lock);
    return rc;
}

void rollup_stats_get(struct rollup_engine *e, struct rollup_stats *st)
{
    memset(st, 0, sizeof(*st));
    pthread_mutex_lock(&e->lock);
    st->rules = e->nrules;
    st->observe_seconds = (double)e->observe_ns / 1e9;
    for (size_t i = 0; i < e->nrules; i++) {
        st->samples += e->rules[i]->samples;
        st->late += e->rules[i]->late;
        st->dropped += e->rules[i]->dropped;
        st->written += e->rules[i]->written;
    }
    pthread_mutex_unlock(&e->lock);
}
