/*
 * The detector scheduler: the list of detectors, the thread that
 * evaluates them, and the API (engine.h).
 */
#define LOG_MODULE "anomaly"
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "anomaly/engine_internal.h"
#include "query/duration.h"
#include "tsdb/error.h"
#include "tsdb/log.h"

static int64_t wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double mono_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- entries ---- */

struct det_entry *engine_entry_new(const char *name, const char *json,
                                   size_t len, char *err, size_t errlen,
                                   int *rc)
{
    struct det_entry *x = calloc(1, sizeof(*x));

    if (x == NULL) {
        *rc = TSDB_ENOMEM;
        return NULL;
    }
    *rc = detector_def_parse(name, json, len, &x->def, err, errlen);
    if (*rc != TSDB_OK) {
        free(x);
        return NULL;
    }
    run_init(&x->run, &x->def);
    x->last_step = INT64_MIN;
    snprintf(x->status, sizeof(x->status), "warming up");
    return x;
}

void engine_entry_free(struct det_entry *x)
{
    if (x == NULL)
        return;
    for (size_t i = 0; i < x->nevents; i++)
        tsdb_labels_release(&x->events[i].labels);
    free(x->events);
    run_release(&x->run);
    detector_def_release(&x->def);
    tsdb_appender_free(x->app);
    free(x);
}

static size_t find(const struct anomaly_engine *e, const char *name,
                   bool *found)
{
    size_t lo = 0, hi = e->n;

    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(e->list[mid]->def.name, name);

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

/* Under e->lock.  A detector whose definition is unchanged keeps running
 * (x is freed) when keep_same is set. */
int engine_add(struct anomaly_engine *e, struct det_entry *x, bool keep_same)
{
    bool found;
    size_t at = find(e, x->def.name, &found);

    if (found && keep_same && strcmp(e->list[at]->def.json, x->def.json) == 0) {
        engine_entry_free(x);
        return TSDB_OK;
    }
    if (found) {
        e->list[at]->next = e->graveyard;
        e->list[at]->removed = true;
        e->graveyard = e->list[at];
    } else {
        struct det_entry **p = realloc(e->list, (e->n + 1) * sizeof(*p));

        if (p == NULL)
            return TSDB_ENOMEM;
        e->list = p;
        memmove(&e->list[at + 1], &e->list[at], (e->n - at) * sizeof(*p));
        e->n++;
    }
    e->list[at] = x;
    return TSDB_OK;
}

/* Under e->lock: an event opened or ended. */
int engine_keep_event(struct det_entry *x, const struct anomaly_event *ev)
{
    struct anomaly_event *k;

    for (size_t i = x->nevents; i-- > 0;) {
        if (x->events[i].id == ev->id) {
            x->events[i].end = ev->end;
            return TSDB_OK;
        }
    }
    if (x->nevents == ENGINE_MAX_EVENTS) {
        size_t drop = 0;

        while (drop < x->nevents && x->events[drop].end == 0)
            drop++;
        if (drop == x->nevents)
            return TSDB_OK; /* all open: keep the oldest ones */
        tsdb_labels_release(&x->events[drop].labels);
        memmove(&x->events[drop], &x->events[drop + 1],
                (x->nevents - drop - 1) * sizeof(*k));
        x->nevents--;
    }
    if (x->nevents == x->events_cap) {
        size_t cap = x->events_cap ? x->events_cap * 2 : 16;
        struct anomaly_event *p = realloc(x->events, cap * sizeof(*p));

        if (p == NULL)
            return TSDB_ENOMEM;
        x->events = p;
        x->events_cap = cap;
    }
    k = &x->events[x->nevents];
    *k = *ev;
    if (tsdb_labels_copy(ev->labels.v, ev->labels.n, &k->labels) != TSDB_OK)
        return TSDB_ENOMEM;
    x->nevents++;
    return TSDB_OK;
}

/* ---- the live sink: results as series, events kept ---- */

struct live {
    struct anomaly_engine *e;
    struct det_entry *x;
    char err[256];
};

static int add_point(struct live *l, const struct run_series *s,
                     const char *name, int64_t t, double v)
{
    struct tsdb_label lv[TSDB_MAX_LABELS + 2];
    size_t n = 0;
    uint64_t ref;
    int rc;

    if (isnan(v))
        return TSDB_OK;
    lv[n++] = (struct tsdb_label){"__name__", name};
    lv[n++] = (struct tsdb_label){"detector", l->x->def.name};
    for (size_t i = 0; i < s->labels.n && n < TSDB_MAX_LABELS; i++)
        if (strcmp(s->labels.v[i].name, "detector") != 0)
            lv[n++] = s->labels.v[i];
    rc = tsdb_appender_series(l->x->app, lv, n, &ref, l->err, sizeof(l->err));
    if (rc == TSDB_OK)
        rc = tsdb_appender_add(l->x->app, ref, t, v);
    if (rc == TSDB_EFULL) {
        rc = tsdb_appender_commit(l->x->app, NULL);
        if (rc == TSDB_OK)
            rc = tsdb_appender_add(l->x->app, ref, t, v);
    }
    return rc;
}

static int live_point(void *ctx, const struct run_series *s, int64_t t,
                      double v, const struct anomaly_result *r, bool active)
{
    struct live *l = ctx;
    int rc = add_point(l, s, "anomaly_score", t, r->score);

    (void)v;
    if (rc == TSDB_OK)
        rc = add_point(l, s, "anomaly_expected", t, r->expected);
    if (rc == TSDB_OK)
        rc = add_point(l, s, "anomaly_lower", t, r->lower);
    if (rc == TSDB_OK)
        rc = add_point(l, s, "anomaly_upper", t, r->upper);
    if (rc == TSDB_OK)
        rc = add_point(l, s, "anomaly_active", t, active ? 1 : 0);
    return rc;
}

static int live_event(void *ctx, const struct anomaly_event *ev)
{
    struct live *l = ctx;
    int rc;

    pthread_mutex_lock(&l->e->lock);
    rc = engine_keep_event(l->x, ev);
    if (ev->end == 0)
        l->x->opened++;
    pthread_mutex_unlock(&l->e->lock);
    if (ev->end != 0 && persist_event_append(l->e, l->x, ev) != TSDB_OK)
        log_warn("detector %s: cannot append to its events file",
                 l->x->def.name);
    return rc;
}

static int live_flush(void *ctx)
{
    struct live *l = ctx;

    return tsdb_appender_commit(l->x->app, NULL);
}

/* ---- the scheduler ---- */

/* Loads the saved state, or learns from history; then it is live. */
static int start_entry(struct anomaly_engine *e, struct det_entry *x,
                       int64_t now, char *err, size_t errlen)
{
    int64_t step = x->def.cfg.interval_ms;
    /* The first live step; the history before it is learned from, on
     * the same grid as tsdb-replay, so that both see the same steps. */
    int64_t first = run_step_floor(&x->def, now);
    char span[QUERY_DURATION_MAX];
    int rc = TSDB_OK;

    x->app = tsdb_appender_new(e->db);
    if (x->app == NULL)
        return TSDB_ENOMEM;
    persist_events_load(e, x);
    if (persist_state_load(e, x)) {
        log_info("detector %s: state loaded, %zu series, last step %lld",
                 x->def.name, x->run.nseries, (long long)x->run.last_step);
        if (x->run.last_step < first - x->def.history_ms)
            x->run.last_step = first - x->def.history_ms;
    } else if (x->def.history_ms > 0) {
        rc = run_steps(&x->run, e->db, &e->qo, first - x->def.history_ms,
                       first - step, NULL, err, errlen);
        query_format_duration(span, x->def.history_ms);
        log_info("detector %s: learned from %s of history, %zu series",
                 x->def.name, span, x->run.nseries);
    }
    x->started = true;
    return rc;
}

static void publish(struct anomaly_engine *e, struct det_entry *x, int rc,
                    const char *err, double secs, int64_t now, bool evaluated)
{
    pthread_mutex_lock(&e->lock);
    x->nseries = x->run.nseries;
    x->state_bytes = x->run.state_size;
    x->last_step = x->run.last_step;
    x->last_results = x->run.last_results;
    x->refused = x->run.refused;
    x->last_wall_ms = now;
    x->last_seconds = secs;
    x->evaluations++;
    e->seconds += secs;
    if (rc != TSDB_OK) {
        x->failures++;
        snprintf(x->status, sizeof(x->status), "evaluation failed: %s",
                 err[0] ? err : tsdb_strerror(rc));
    } else if (!evaluated) {
        if (strcmp(x->status, "warming up") == 0)
            snprintf(x->status, sizeof(x->status), "waiting for the next step");
    } else if (x->run.last_results == 0) {
        snprintf(x->status, sizeof(x->status),
                 "no series: the expression returned nothing at the last "
                 "step");
    } else {
        snprintf(x->status, sizeof(x->status), "ok");
    }
    pthread_mutex_unlock(&e->lock);
}

static void work(struct anomaly_engine *e, struct det_entry *x, int64_t now)
{
    struct live l = {e, x, ""};
    struct run_sink sink = {&l, live_point, live_event, live_flush};
    char err[256] = "";
    double t0 = mono_s();
    bool evaluated = false, removed;
    int rc = TSDB_OK;

    if (!x->started)
        rc = start_entry(e, x, now, err, sizeof(err));
    if (rc == TSDB_OK) {
        int64_t from = x->run.last_step == INT64_MIN
                           ? run_step_floor(&x->def, now)
                           : x->run.last_step + x->def.cfg.interval_ms;

        evaluated = from <= now;

        rc = run_steps(&x->run, e->db, &e->qo, from, now, &sink, err,
                       sizeof(err));
        if (rc != TSDB_OK) {
            tsdb_appender_rollback(x->app);
            /* A failing query is retried at the next step, not forever
             * at this one. */
            x->run.last_step = run_step_floor(&x->def, now);
        }
    }
    if (rc != TSDB_OK && !err[0] && l.err[0])
        snprintf(err, sizeof(err), "%s", l.err);
    publish(e, x, rc, err, mono_s() - t0, now, evaluated);
    if (rc != TSDB_OK)
        log_warn("detector %s: %s", x->def.name,
                 err[0] ? err : tsdb_strerror(rc));
    pthread_mutex_lock(&e->lock);
    removed = x->removed;
    pthread_mutex_unlock(&e->lock);
    if (!removed && now - x->saved_wall >= ENGINE_SAVE_MS) {
        if (persist_state_save(e, x) != TSDB_OK)
            log_warn("detector %s: cannot save its state", x->def.name);
        x->saved_wall = now;
    }
}

static bool due(const struct det_entry *x, int64_t now)
{
    return !x->started || x->run.last_step + x->def.cfg.interval_ms <= now;
}

/* Under e->lock: frees what the API took out of the list. */
static void bury(struct anomaly_engine *e)
{
    while (e->graveyard != NULL) {
        struct det_entry *x = e->graveyard;

        e->graveyard = x->next;
        engine_entry_free(x);
    }
}

static void *scheduler(void *arg)
{
    struct anomaly_engine *e = arg;

    pthread_mutex_lock(&e->lock);
    while (!e->stop) {
        int64_t now = wall_ms();
        struct timespec ts;

        bury(e);
        for (size_t i = 0; i < e->n && !e->stop; i++) {
            struct det_entry *x = e->list[i];

            if (!due(x, now))
                continue;
            pthread_mutex_unlock(&e->lock);
            work(e, x, now);
            pthread_mutex_lock(&e->lock);
        }
        e->rounds++;
        pthread_cond_broadcast(&e->done);
        if (e->stop)
            break;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 200000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&e->wake, &e->lock, &ts);
    }
    pthread_mutex_unlock(&e->lock);
    return NULL;
}

/* ---- life cycle and API ---- */

static void engine_free(struct anomaly_engine *e)
{
    bury(e);
    for (size_t i = 0; i < e->n; i++)
        engine_entry_free(e->list[i]);
    free(e->list);
    free(e->dir);
    free(e->defs_path);
    pthread_mutex_destroy(&e->lock);
    pthread_cond_destroy(&e->wake);
    pthread_cond_destroy(&e->done);
    free(e);
}

int anomaly_open(struct tsdb *db, const struct query_opts *qo,
                 const char *data_dir, const char *file,
                 struct anomaly_engine **out, char *err, size_t errlen)
{
    struct anomaly_engine *e = calloc(1, sizeof(*e));
    int rc;

    if (e == NULL)
        return TSDB_ENOMEM;
    e->db = db;
    e->qo = *qo;
    pthread_mutex_init(&e->lock, NULL);
    pthread_cond_init(&e->wake, NULL);
    pthread_cond_init(&e->done, NULL);
    if (asprintf(&e->dir, "%s/detectors", data_dir) < 0 ||
        asprintf(&e->defs_path, "%s/detectors.json", data_dir) < 0) {
        e->dir = e->defs_path = NULL;
        engine_free(e);
        return TSDB_ENOMEM;
    }
    rc = persist_defs_load(e, e->defs_path, false, err, errlen);
    if (rc == TSDB_OK && file != NULL)
        rc = persist_defs_load(e, file, true, err, errlen);
    if (rc == TSDB_OK && file != NULL)
        rc = persist_defs_save(e);
    if (rc == TSDB_OK && pthread_create(&e->thread, NULL, scheduler, e) != 0)
        rc = TSDB_ENOMEM;
    if (rc != TSDB_OK) {
        if (rc == TSDB_EIO)
            snprintf(err, errlen, "cannot write %s", e->defs_path);
        engine_free(e);
        return rc;
    }
    e->running = true;
    log_info("%zu detectors from %s%s%s", e->n, e->defs_path,
             file ? " and " : "", file ? file : "");
    *out = e;
    return TSDB_OK;
}

void anomaly_close(struct anomaly_engine *e)
{
    if (e == NULL)
        return;
    pthread_mutex_lock(&e->lock);
    e->stop = true;
    pthread_cond_signal(&e->wake);
    pthread_mutex_unlock(&e->lock);
    if (e->running)
        pthread_join(e->thread, NULL);
    for (size_t i = 0; i < e->n; i++)
        if (e->list[i]->started && persist_state_save(e, e->list[i]) != TSDB_OK)
            log_warn("detector %s: cannot save its state",
                     e->list[i]->def.name);
    engine_free(e);
}

int anomaly_put(struct anomaly_engine *e, const char *name, const char *json,
                size_t len, char *err, size_t errlen)
{
    int rc;
    struct det_entry *x = engine_entry_new(name, json, len, err, errlen, &rc);

    if (x == NULL)
        return rc;
    pthread_mutex_lock(&e->lock);
    rc = engine_add(e, x, true);
    if (rc == TSDB_OK)
        rc = persist_defs_save(e);
    pthread_cond_signal(&e->wake);
    pthread_mutex_unlock(&e->lock);
    if (rc == TSDB_EIO)
        snprintf(err, errlen,
                 "detector %s runs but %s could not be written: it will be "
                 "missing after a restart",
                 name, e->defs_path);
    else if (rc == TSDB_OK)
        log_info("detector %s set", name);
    return rc;
}

int anomaly_delete(struct anomaly_engine *e, const char *name)
{
    bool found;
    size_t at;
    int rc = TSDB_OK;

    pthread_mutex_lock(&e->lock);
    at = find(e, name, &found);
    if (found) {
        struct det_entry *x = e->list[at];

        memmove(&e->list[at], &e->list[at + 1],
                (e->n - at - 1) * sizeof(e->list[0]));
        e->n--;
        x->next = e->graveyard;
        e->graveyard = x;
        x->removed = true;
        persist_state_remove(e, name);
        rc = persist_defs_save(e);
    }
    pthread_mutex_unlock(&e->lock);
    if (!found)
        return TSDB_ENOTFOUND;
    log_info("detector %s removed", name);
    return rc;
}

void anomaly_sync(struct anomaly_engine *e)
{
    uint64_t target;

    pthread_mutex_lock(&e->lock);
    target = e->rounds + 2;
    pthread_cond_signal(&e->wake);
    while (e->rounds < target && !e->stop)
        pthread_cond_wait(&e->done, &e->lock);
    pthread_mutex_unlock(&e->lock);
}

void anomaly_stats_get(struct anomaly_engine *e, struct anomaly_stats *st)
{
    memset(st, 0, sizeof(*st));
    pthread_mutex_lock(&e->lock);
    st->detectors = e->n;
    st->seconds = e->seconds;
    for (size_t i = 0; i < e->n; i++) {
        st->series += e->list[i]->nseries;
        st->evaluations += e->list[i]->evaluations;
        st->events += e->list[i]->opened;
        st->failures += e->list[i]->failures;
    }
    pthread_mutex_unlock(&e->lock);
}

/* ---- listings ---- */

static json_t *time_or_null(int64_t ms)
{
    return ms == INT64_MIN ? json_null() : json_real((double)ms / 1000);
}

static json_t *entry_json(const struct det_entry *x)
{
    json_t *o = json_loads(x->def.json, 0, NULL), *st = json_object();
    size_t open = 0;

    if (o == NULL || st == NULL) {
        json_decref(o);
        json_decref(st);
        return NULL;
    }
    for (size_t i = 0; i < x->nevents; i++)
        open += x->events[i].end == 0;
    json_object_set_new(o, "name", json_string(x->def.name));
    json_object_set_new(st, "status", json_string(x->status));
    json_object_set_new(st, "series", json_integer((json_int_t)x->nseries));
    json_object_set_new(st, "state_bytes_per_series",
                        json_integer((json_int_t)x->state_bytes));
    json_object_set_new(st, "series_refused",
                        json_integer((json_int_t)x->refused));
    json_object_set_new(st, "last_step", time_or_null(x->last_step));
    json_object_set_new(st, "last_step_series",
                        json_integer((json_int_t)x->last_results));
    json_object_set_new(
        st, "last_evaluation",
        time_or_null(x->evaluations ? x->last_wall_ms : INT64_MIN));
    json_object_set_new(st, "last_evaluation_seconds",
                        json_real(x->last_seconds));
    json_object_set_new(st, "evaluations",
                        json_integer((json_int_t)x->evaluations));
    json_object_set_new(st, "failures", json_integer((json_int_t)x->failures));
    json_object_set_new(st, "events_open", json_integer((json_int_t)open));
    json_object_set_new(st, "events_opened",
                        json_integer((json_int_t)x->opened));
    json_object_set_new(o, "state", st);
    return o;
}

char *anomaly_list_json(struct anomaly_engine *e)
{
    json_t *a = json_array();
    char *s = NULL;

    if (a == NULL)
        return NULL;
    pthread_mutex_lock(&e->lock);
    for (size_t i = 0; i < e->n; i++) {
        json_t *o = entry_json(e->list[i]);

        if (o == NULL || json_array_append_new(a, o) != 0)
            goto out;
    }
    s = json_dumps(a, JSON_COMPACT);
out:
    pthread_mutex_unlock(&e->lock);
    json_decref(a);
    return s;
}

static bool overlaps(const struct anomaly_event *ev, int64_t start, int64_t end)
{
    return ev->start <= end && (ev->end == 0 || ev->end >= start);
}

char *anomaly_events_json(struct anomaly_engine *e, const char *detector,
                          int64_t start, int64_t end, bool *found)
{
    json_t *a = json_array();
    char *s = NULL;

    *found = detector == NULL;
    if (a == NULL)
        return NULL;
    pthread_mutex_lock(&e->lock);
    for (size_t i = 0; i < e->n; i++) {
        const struct det_entry *x = e->list[i];

        if (detector != NULL && strcmp(detector, x->def.name) != 0)
            continue;
        *found = true;
        for (size_t k = 0; k < x->nevents; k++) {
            json_t *o;

            if (!overlaps(&x->events[k], start, end))
                continue;
            o = persist_event_object(x->def.name, &x->events[k]);
            if (o == NULL || json_array_append_new(a, o) != 0)
                goto out;
        }
    }
    s = json_dumps(a, JSON_COMPACT);
out:
    pthread_mutex_unlock(&e->lock);
    json_decref(a);
    return s;
}
