/*
 * What the detector scheduler keeps on disk (engine.h):
 *
 *   DATA/detectors.json        {"version": 1, "detectors": {NAME: {...}}}
 *   DATA/detectors/NAME.state  model states, binary, below
 *   DATA/detectors/NAME.events closed events, one JSON object per line
 *
 * The state file's layout is in state.c.  A state that does not match
 * the definition is not loaded: the detector warms up afresh.  Files are
 * written beside, synced and renamed over.
 */
#define LOG_MODULE "anomaly"
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "anomaly/engine_internal.h"
#include "anomaly/state.h"
#include "tsdb/error.h"
#include "tsdb/log.h"

/* ---- definitions ---- */

int persist_defs_load(struct anomaly_engine *e, const char *path, bool user,
                      char *err, size_t errlen)
{
    json_error_t je;
    json_t *root, *defs, *v;
    const char *name;
    int rc = TSDB_OK;

    if (access(path, F_OK) != 0 && errno == ENOENT) {
        if (!user)
            return TSDB_OK;
        snprintf(err, errlen, "%s: no such file", path);
        return TSDB_EINVAL;
    }
    root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (root == NULL) {
        snprintf(err, errlen, "%s: line %d, column %d: %s", path, je.line,
                 je.column, je.text);
        return TSDB_EINVAL;
    }
    /* The stored file wraps the detectors; a user's file is them. */
    defs = user ? root : json_object_get(root, "detectors");
    if (!json_is_object(defs)) {
        snprintf(err, errlen, "%s: an object of detectors by name is required",
                 path);
        json_decref(root);
        return TSDB_EINVAL;
    }
    json_object_foreach(defs, name, v)
    {
        char *text = json_dumps(v, JSON_COMPACT);
        char why[512];
        struct det_entry *x;

        if (text == NULL) {
            rc = TSDB_ENOMEM;
            break;
        }
        x = engine_entry_new(name, text, strlen(text), why, sizeof(why), &rc);
        free(text);
        if (x == NULL) {
            if (rc == TSDB_EINVAL)
                snprintf(err, errlen, "%s: %s", path, why);
            break;
        }
        rc = engine_add(e, x, true);
        if (rc != TSDB_OK) {
            engine_entry_free(x);
            break;
        }
    }
    json_decref(root);
    return rc;
}

static int write_whole(const char *path, const void *p, size_t n)
{
    char tmp[4096];
    FILE *f;
    bool ok;

    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    f = fopen(tmp, "wb");
    if (f == NULL)
        return TSDB_EIO;
    ok = fwrite(p, 1, n, f) == n && fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return TSDB_EIO;
    }
    return TSDB_OK;
}

/* Under e->lock. */
int persist_defs_save(struct anomaly_engine *e)
{
    json_t *root = json_object(), *defs = json_object();
    char *text;
    int rc;

    json_object_set_new(root, "version", json_integer(1));
    json_object_set_new(root, "detectors", defs);
    for (size_t i = 0; i < e->n; i++)
        json_object_set_new(defs, e->list[i]->def.name,
                            json_loads(e->list[i]->def.json, 0, NULL));
    text = json_dumps(root, JSON_INDENT(1) | JSON_SORT_KEYS);
    json_decref(root);
    if (text == NULL)
        return TSDB_ENOMEM;
    rc = write_whole(e->defs_path, text, strlen(text));
    free(text);
    return rc;
}

/* ---- model states ---- */

static void state_path(const struct anomaly_engine *e, const char *name,
                       const char *ext, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s.%s", e->dir, name, ext);
}

int persist_state_save(struct anomaly_engine *e, struct det_entry *x)
{
    return anomaly_state_write(e->dir, &x->run);
}

bool persist_state_load(struct anomaly_engine *e, struct det_entry *x)
{
    int rc = anomaly_state_read(e->dir, &x->run);

    if (rc == TSDB_EINVAL)
        log_warn("detector %s: its state file does not match the "
                 "definition or is damaged; warming up afresh",
                 x->def.name);
    if (rc != TSDB_OK)
        return false;
    pthread_mutex_lock(&e->lock);
    for (size_t i = 0; i < x->run.nseries; i++)
        if (x->run.series[i].ev_open)
            engine_keep_event(x, &x->run.series[i].ev);
    pthread_mutex_unlock(&e->lock);
    return true;
}

/* Under e->lock. */
void persist_state_remove(struct anomaly_engine *e, const char *name)
{
    char path[4096];

    state_path(e, name, "state", path, sizeof(path));
    unlink(path);
    state_path(e, name, "events", path, sizeof(path));
    unlink(path);
}

/* ---- events ---- */

static json_t *num_or_null(double v)
{
    return v == v ? json_real(v) : json_null();
}

json_t *persist_event_object(const char *detector,
                             const struct anomaly_event *ev)
{
    json_t *o = json_object(), *ls = json_object();

    if (o == NULL || ls == NULL) {
        json_decref(o);
        json_decref(ls);
        return NULL;
    }
    for (size_t i = 0; i < ev->labels.n; i++)
        json_object_set_new(ls, ev->labels.v[i].name,
                            json_string(ev->labels.v[i].value));
    json_object_set_new(o, "detector", json_string(detector));
    json_object_set_new(o, "id", json_integer((json_int_t)ev->id));
    json_object_set_new(o, "labels", ls);
    json_object_set_new(o, "start", json_real((double)ev->start / 1000));
    json_object_set_new(
        o, "end", ev->end ? json_real((double)ev->end / 1000) : json_null());
    json_object_set_new(o, "peak_score", num_or_null(ev->peak_score));
    json_object_set_new(o, "peak_time", json_real((double)ev->peak_t / 1000));
    json_object_set_new(o, "observed", num_or_null(ev->observed));
    json_object_set_new(o, "expected", num_or_null(ev->expected));
    json_object_set_new(o, "lower", num_or_null(ev->lower));
    json_object_set_new(o, "upper", num_or_null(ev->upper));
    return o;
}

int persist_event_append(struct anomaly_engine *e, const struct det_entry *x,
                         const struct anomaly_event *ev)
{
    json_t *o = persist_event_object(x->def.name, ev);
    char path[4096], *line = o ? json_dumps(o, JSON_COMPACT) : NULL;
    FILE *f;
    bool ok;

    json_decref(o);
    if (line == NULL)
        return TSDB_ENOMEM;
    if (mkdir(e->dir, 0755) != 0 && errno != EEXIST) {
        free(line);
        return TSDB_EIO;
    }
    state_path(e, x->def.name, "events", path, sizeof(path));
    f = fopen(path, "a");
    ok = f != NULL && fprintf(f, "%s\n", line) > 0;
    ok = f != NULL && fclose(f) == 0 && ok;
    free(line);
    return ok ? TSDB_OK : TSDB_EIO;
}

static int64_t ms_of(json_t *v)
{
    return (int64_t)(json_number_value(v) * 1000 + 0.5);
}

static void load_event(struct det_entry *x, json_t *o)
{
    struct anomaly_event ev = {0};
    struct tsdb_label v[TSDB_MAX_LABELS];
    json_t *ls = json_object_get(o, "labels"), *val;
    const char *key;
    size_t n = 0;

    json_object_foreach(ls, key, val)
    {
        if (n < TSDB_MAX_LABELS && json_string_value(val))
            v[n++] = (struct tsdb_label){key, json_string_value(val)};
    }
    if (tsdb_labels_copy(v, n, &ev.labels) != TSDB_OK)
        return;
    ev.id = (uint64_t)json_integer_value(json_object_get(o, "id"));
    ev.start = ms_of(json_object_get(o, "start"));
    ev.end = ms_of(json_object_get(o, "end"));
    ev.peak_score = json_number_value(json_object_get(o, "peak_score"));
    ev.peak_t = ms_of(json_object_get(o, "peak_time"));
    ev.observed = json_number_value(json_object_get(o, "observed"));
    ev.expected = json_number_value(json_object_get(o, "expected"));
    ev.lower = json_number_value(json_object_get(o, "lower"));
    ev.upper = json_number_value(json_object_get(o, "upper"));
    if (ev.end != 0)
        engine_keep_event(x, &ev);
    tsdb_labels_release(&ev.labels);
}

/* Reads back the last ENGINE_MAX_EVENTS closed events. */
void persist_events_load(struct anomaly_engine *e, struct det_entry *x)
{
    char path[4096], *line = NULL;
    size_t cap = 0;
    FILE *f;

    state_path(e, x->def.name, "events", path, sizeof(path));
    f = fopen(path, "r");
    if (f == NULL)
        return;
    pthread_mutex_lock(&e->lock);
    while (getline(&line, &cap, f) > 0) {
        json_t *o = json_loads(line, 0, NULL);

        if (o != NULL)
            load_event(x, o);
        json_decref(o);
    }
    pthread_mutex_unlock(&e->lock);
    free(line);
    fclose(f);
}
