/* tsdb-replay over stored history (replay_db.h). */
#include "anomaly/replay_db.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "anomaly/plot.h"
#include "anomaly/run.h"
#include "anomaly/state.h"
#include "tsdb/db.h"
#include "tsdb/error.h"

/* What a replay remembers of one result series. */
struct summary {
    struct tsdb_labels labels;
    uint64_t steps, anomalous, events;
    double max_score;
    int64_t max_score_t;
    struct plot_series *plot; /* NULL past PLOT_MAX_SERIES */
};

struct replay {
    const struct detector_def *def;
    struct summary *sums;
    size_t nsums, cap;
    struct anomaly_event *events;
    size_t nevents, events_cap;
    size_t nplots;
};

static struct summary *summary_of(struct replay *rp, const struct run_series *s)
{
    for (size_t i = rp->nsums; i-- > 0;)
        if (tsdb_labels_cmp(&rp->sums[i].labels, &s->labels) == 0)
            return &rp->sums[i];
    if (rp->nsums == rp->cap) {
        size_t cap = rp->cap ? rp->cap * 2 : 16;
        struct summary *p = realloc(rp->sums, cap * sizeof(*p));
        if (p == NULL)
            return NULL;
        rp->sums = p;
        rp->cap = cap;
    }
    memset(&rp->sums[rp->nsums], 0, sizeof(rp->sums[0]));
    if (tsdb_labels_copy(s->labels.v, s->labels.n,
                         &rp->sums[rp->nsums].labels) != TSDB_OK)
        return NULL;
    if (rp->nplots < PLOT_MAX_SERIES) {
        rp->sums[rp->nsums].plot = plot_series_new(&rp->sums[rp->nsums].labels);
        rp->nplots += rp->sums[rp->nsums].plot != NULL;
    }
    return &rp->sums[rp->nsums++];
}

static int on_point(void *ctx, const struct run_series *s, int64_t t, double v,
                    const struct anomaly_result *r, bool active)
{
    struct summary *m = summary_of(ctx, s);

    if (m == NULL)
        return TSDB_ENOMEM;
    m->steps++;
    m->anomalous += r->anomalous;
    if (r->score > m->max_score || m->steps == 1) {
        m->max_score = r->score;
        m->max_score_t = t;
    }
    if (m->plot != NULL)
        return plot_series_add(m->plot, t, v, r->expected, r->lower, r->upper,
                               active);
    return TSDB_OK;
}

static int on_event(void *ctx, const struct anomaly_event *ev)
{
    struct replay *rp = ctx;

    for (size_t i = rp->nevents; i-- > 0;) {
        if (rp->events[i].id == ev->id) {
            rp->events[i].end = ev->end;
            return TSDB_OK;
        }
    }
    if (rp->nevents == rp->events_cap) {
        size_t cap = rp->events_cap ? rp->events_cap * 2 : 16;
        struct anomaly_event *p = realloc(rp->events, cap * sizeof(*p));
        if (p == NULL)
            return TSDB_ENOMEM;
        rp->events = p;
        rp->events_cap = cap;
    }
    rp->events[rp->nevents] = *ev;
    if (tsdb_labels_copy(ev->labels.v, ev->labels.n,
                         &rp->events[rp->nevents].labels) != TSDB_OK)
        return TSDB_ENOMEM;
    for (size_t i = 0; i < rp->nsums; i++)
        if (tsdb_labels_cmp(&rp->sums[i].labels, &ev->labels) == 0)
            rp->sums[i].events++;
    rp->nevents++;
    return TSDB_OK;
}

static void replay_release(struct replay *rp)
{
    for (size_t i = 0; i < rp->nsums; i++) {
        tsdb_labels_release(&rp->sums[i].labels);
        plot_series_free(rp->sums[i].plot);
    }
    for (size_t i = 0; i < rp->nevents; i++)
        tsdb_labels_release(&rp->events[i].labels);
    free(rp->sums);
    free(rp->events);
}

/* ---- the report ---- */

static void fmt_time(int64_t ms, char *out, size_t cap)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;

    gmtime_r(&s, &tm);
    strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void fmt_labels(const struct tsdb_labels *ls, char *out, size_t cap)
{
    tsdb_labels_format(ls->v, ls->n, out, cap);
}

static void text_report(const struct replay *rp, int64_t start, int64_t end,
                        uint64_t steps, FILE *out)
{
    char a[32], b[32], ls[1024];

    fmt_time(start, a, sizeof(a));
    fmt_time(end, b, sizeof(b));
    fprintf(out,
            "detector %s: %zu series, %llu steps from %s to %s, %zu "
            "events\n",
            rp->def->name, rp->nsums, (unsigned long long)steps, a, b,
            rp->nevents);
    for (size_t i = 0; i < rp->nevents; i++) {
        const struct anomaly_event *ev = &rp->events[i];

        fmt_labels(&ev->labels, ls, sizeof(ls));
        fmt_time(ev->start, a, sizeof(a));
        if (ev->end)
            fmt_time(ev->end, b, sizeof(b));
        else
            snprintf(b, sizeof(b), "(open)");
        fprintf(out,
                "  event %s from %s to %s: peak score %.3f, observed %g, "
                "expected %g, band [%g, %g]\n",
                ls, a, b, ev->peak_score, ev->observed, ev->expected, ev->lower,
                ev->upper);
    }
    for (size_t i = 0; i < rp->nsums; i++) {
        const struct summary *m = &rp->sums[i];

        fmt_labels(&m->labels, ls, sizeof(ls));
        fmt_time(m->max_score_t, a, sizeof(a));
        fprintf(out,
                "  series %s: %llu steps with a value, %llu anomalous, %llu "
                "events, highest score %.3f at %s\n",
                ls, (unsigned long long)m->steps,
                (unsigned long long)m->anomalous, (unsigned long long)m->events,
                m->max_score, a);
    }
}

static json_t *labels_json(const struct tsdb_labels *ls)
{
    json_t *o = json_object();

    for (size_t i = 0; i < ls->n; i++)
        json_object_set_new(o, ls->v[i].name, json_string(ls->v[i].value));
    return o;
}

static json_t *num(double v)
{
    return isnan(v) ? json_null() : json_real(v);
}

static json_t *json_report(const struct replay *rp, int64_t start, int64_t end,
                           uint64_t steps)
{
    json_t *o = json_object(), *evs = json_array(), *ss = json_array();

    json_object_set_new(o, "name", json_string(rp->def->name));
    json_object_set_new(o, "start", json_real((double)start / 1000));
    json_object_set_new(o, "end", json_real((double)end / 1000));
    json_object_set_new(o, "steps", json_integer((json_int_t)steps));
    for (size_t i = 0; i < rp->nevents; i++) {
        const struct anomaly_event *ev = &rp->events[i];
        json_t *e = json_object();

        json_object_set_new(e, "labels", labels_json(&ev->labels));
        json_object_set_new(e, "start", json_real((double)ev->start / 1000));
        json_object_set_new(e, "end",
                            ev->end ? json_real((double)ev->end / 1000)
                                    : json_null());
        json_object_set_new(e, "peak_score", num(ev->peak_score));
        json_object_set_new(e, "peak_time",
                            json_real((double)ev->peak_t / 1000));
        json_object_set_new(e, "observed", num(ev->observed));
        json_object_set_new(e, "expected", num(ev->expected));
        json_object_set_new(e, "lower", num(ev->lower));
        json_object_set_new(e, "upper", num(ev->upper));
        json_array_append_new(evs, e);
    }
    for (size_t i = 0; i < rp->nsums; i++) {
        const struct summary *m = &rp->sums[i];
        json_t *s = json_object();

        json_object_set_new(s, "labels", labels_json(&m->labels));
        json_object_set_new(s, "steps", json_integer((json_int_t)m->steps));
        json_object_set_new(s, "anomalous",
                            json_integer((json_int_t)m->anomalous));
        json_object_set_new(s, "events", json_integer((json_int_t)m->events));
        json_object_set_new(s, "max_score", num(m->max_score));
        json_object_set_new(s, "max_score_time",
                            json_real((double)m->max_score_t / 1000));
        json_array_append_new(ss, s);
    }
    json_object_set_new(o, "events", evs);
    json_object_set_new(o, "series", ss);
    return o;
}

/* ---- running ---- */

static double mono_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void progress(const struct detector_def *d, uint64_t done,
                     uint64_t total, uint64_t series, double t0)
{
    double secs = mono_s() - t0, rate = secs > 0 ? (double)done / secs : 0;

    fprintf(stderr,
            "\r%s: step %llu of %llu, %llu series, %.0f samples/s, %.0f s "
            "left   ",
            d->name, (unsigned long long)done, (unsigned long long)total,
            (unsigned long long)series, rate * (double)series,
            rate > 0 ? (double)(total - done) / rate : 0);
}

/* Learns quietly from the history before start, then steps as live. */
static int replay_one(const struct replay_db_opts *o, struct tsdb *db,
                      const struct detector_def *d, struct replay *rp,
                      uint64_t *steps, char *err, size_t errlen)
{
    struct run_sink sink = {rp, on_point, on_event, NULL};
    struct query_opts qo;
    struct run r;
    int64_t step = d->cfg.interval_ms;
    int64_t first = run_step_floor(d, o->start - 1) + step;
    int64_t last = run_step_floor(d, o->end);
    uint64_t total = last >= first ? (uint64_t)((last - first) / step) + 1 : 0;
    double t0 = mono_s();
    int rc = TSDB_OK;

    query_opts_init(&qo);
    qo.timeout_ms = 0;
    run_init(&r, d);
    if (d->history_ms > 0)
        rc = run_steps(&r, db, &qo, first - d->history_ms, first - step, NULL,
                       err, errlen);
    /* One step per call, as the scheduler makes them. */
    for (int64_t t = first; t <= last && rc == TSDB_OK; t += step) {
        rc = run_steps(&r, db, &qo, t, t, &sink, err, errlen);
        ++*steps;
        if (o->progress && (*steps % 64 == 0 || t == last))
            progress(d, *steps, total, r.nseries, t0);
    }
    if (o->progress)
        fputc('\n', stderr);
    if (rc == TSDB_OK && o->save_state) {
        char dir[4096];

        snprintf(dir, sizeof(dir), "%s/detectors", o->data);
        rc = anomaly_state_write(dir, &r);
        if (rc != TSDB_OK)
            snprintf(err, errlen, "cannot write %s/%s.state", dir, d->name);
    }
    run_release(&r);
    return rc;
}

static int load_defs(const char *path, json_t **root, char *err, size_t errlen)
{
    json_error_t je;
    struct stat st;

    if (stat(path, &st) != 0) {
        snprintf(err, errlen, "%s: no such file", path);
        return TSDB_ENOTFOUND;
    }
    *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (*root == NULL) {
        snprintf(err, errlen, "%s: line %d, column %d: %s", path, je.line,
                 je.column, je.text);
        return TSDB_EINVAL;
    }
    if (!json_is_object(*root) || json_object_size(*root) == 0) {
        snprintf(err, errlen,
                 "%s: an object of detectors by name is required, e.g. "
                 "{\"tokens\": {\"query\": ..., \"interval\": \"1m\", "
                 "\"model\": \"ewma\"}}",
                 path);
        json_decref(*root);
        return TSDB_EINVAL;
    }
    return TSDB_OK;
}

static int check_dir(const char *dir, char *err, size_t errlen)
{
    struct stat st;

    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "%s: no such data folder", dir);
        return TSDB_ENOTFOUND;
    }
    return TSDB_OK;
}

static int open_db(const char *dir, struct tsdb **db, char *err, size_t errlen)
{
    struct tsdb_options to;
    int rc;

    tsdb_options_init(&to);
    to.dir = dir;
    to.read_only = true;
    rc = tsdb_open(&to, db);
    if (rc != TSDB_OK)
        snprintf(err, errlen, "%s: cannot open the data folder: %s", dir,
                 tsdb_strerror(rc));
    return rc;
}

/* Every definition of the file, checked before any data is read. */
static int parse_defs(const struct replay_db_opts *o, struct detector_def **out,
                      size_t *n, char *err, size_t errlen)
{
    json_t *root, *v;
    const char *name;
    int rc = load_defs(o->detectors, &root, err, errlen);

    if (rc != TSDB_OK)
        return rc;
    *n = 0;
    *out = calloc(json_object_size(root), sizeof(**out));
    if (*out == NULL)
        rc = TSDB_ENOMEM;
    json_object_foreach(root, name, v)
    {
        char *text, why[768];

        if (rc != TSDB_OK)
            break;
        text = json_dumps(v, JSON_COMPACT);
        rc = text ? detector_def_parse(name, text, strlen(text), &(*out)[*n],
                                       why, sizeof(why))
                  : TSDB_ENOMEM;
        free(text);
        if (rc == TSDB_EINVAL)
            snprintf(err, errlen, "%s: %s", o->detectors, why);
        if (rc == TSDB_OK)
            (*n)++;
    }
    json_decref(root);
    return rc;
}

/* Replays d and adds its report to report (JSON) or out (text), and its
 * panels to plot. */
static int replay_def(const struct replay_db_opts *o, struct tsdb *db,
                      const struct detector_def *d, json_t *report,
                      struct plot *plot, FILE *out, char *err, size_t errlen)
{
    struct replay rp = {0};
    uint64_t steps = 0;
    int rc;

    rp.def = d;
    rc = replay_one(o, db, d, &rp, &steps, err, errlen);
    if (rc == TSDB_OK && o->json)
        json_array_append_new(report,
                              json_report(&rp, o->start, o->end, steps));
    else if (rc == TSDB_OK)
        text_report(&rp, o->start, o->end, steps, out);
    for (size_t i = 0; rc == TSDB_OK && plot && i < rp.nsums; i++) {
        if (rp.sums[i].plot != NULL) {
            rc = plot_add(plot, d->name, rp.sums[i].plot);
            rp.sums[i].plot = NULL;
        }
    }
    replay_release(&rp);
    return rc;
}

int replay_db_run(const struct replay_db_opts *o, FILE *out, char *err,
                  size_t errlen)
{
    struct detector_def *defs = NULL;
    json_t *report = json_array();
    struct plot *plot = NULL;
    struct tsdb *db = NULL;
    size_t n = 0;
    int rc = TSDB_OK;

    if (o->end < o->start) {
        snprintf(err, errlen, "--end is before --start");
        rc = TSDB_EINVAL;
    }
    if (rc == TSDB_OK)
        rc = check_dir(o->data, err, errlen);
    if (rc == TSDB_OK)
        rc = parse_defs(o, &defs, &n, err, errlen);
    if (rc == TSDB_OK)
        rc = open_db(o->data, &db, err, errlen);
    if (rc == TSDB_OK && o->plot != NULL && (plot = plot_new()) == NULL)
        rc = TSDB_ENOMEM;
    for (size_t i = 0; i < n && rc == TSDB_OK; i++)
        rc = replay_def(o, db, &defs[i], report, plot, out, err, errlen);
    if (rc == TSDB_OK && o->json) {
        json_t *w = json_object();

        json_object_set_new(w, "detectors", json_incref(report));
        json_dumpf(w, out, JSON_INDENT(1));
        fputc('\n', out);
        json_decref(w);
    }
    if (rc == TSDB_OK && plot != NULL && plot_write(plot, o->plot) != TSDB_OK) {
        snprintf(err, errlen, "cannot write %s", o->plot);
        rc = TSDB_EIO;
    }
    for (size_t i = 0; i < n; i++)
        detector_def_release(&defs[i]);
    free(defs);
    plot_free(plot);
    json_decref(report);
    tsdb_close(db);
    return rc;
}
