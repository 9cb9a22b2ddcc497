/* Running a detector over evaluation steps (run.h). */
#include "anomaly/run.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tsdb/error.h"

int64_t run_step_floor(const struct detector_def *def, int64_t t)
{
    int64_t i = def->cfg.interval_ms, q = t / i;

    return (t % i != 0 && t < 0 ? q - 1 : q) * i;
}

void run_init(struct run *r, const struct detector_def *def)
{
    memset(r, 0, sizeof(*r));
    r->def = def;
    r->state_size = def->model->state_size(&def->cfg);
    r->last_step = INT64_MIN;
}

void run_release(struct run *r)
{
    for (size_t i = 0; i < r->nseries; i++) {
        tsdb_labels_release(&r->series[i].labels);
        free(r->series[i].state);
    }
    free(r->series);
    free(r->slots);
    memset(r, 0, sizeof(*r));
}

/* ---- series by labels ---- */

static uint64_t labels_hash(const struct tsdb_labels *ls)
{
    uint64_t h = 1469598103934665603ULL;

    for (size_t i = 0; i < ls->n; i++) {
        for (const char *p = ls->v[i].name; *p; p++)
            h = (h ^ (uint8_t)*p) * 1099511628211ULL;
        h = (h ^ 0xff) * 1099511628211ULL;
        for (const char *p = ls->v[i].value; *p; p++)
            h = (h ^ (uint8_t)*p) * 1099511628211ULL;
        h = (h ^ 0xfe) * 1099511628211ULL;
    }
    return h;
}

static int grow_slots(struct run *r)
{
    size_t n = r->nslots ? r->nslots * 2 : 64;
    uint32_t *s = calloc(n, sizeof(*s));

    if (s == NULL)
        return TSDB_ENOMEM;
    for (size_t i = 0; i < r->nseries; i++) {
        size_t j = r->series[i].hash & (n - 1);

        while (s[j] != 0)
            j = (j + 1) & (n - 1);
        s[j] = (uint32_t)i + 1;
    }
    free(r->slots);
    r->slots = s;
    r->nslots = n;
    return TSDB_OK;
}

/* ls without __name__: a detector's results are named by the detector. */
static int copy_without_name(const struct tsdb_labels *ls,
                             struct tsdb_labels *out)
{
    struct tsdb_label v[TSDB_MAX_LABELS];
    size_t n = 0;

    for (size_t i = 0; i < ls->n && n < TSDB_MAX_LABELS; i++)
        if (strcmp(ls->v[i].name, "__name__") != 0)
            v[n++] = ls->v[i];
    return tsdb_labels_copy(v, n, out);
}

static struct run_series *add_series(struct run *r, struct tsdb_labels *ls,
                                     uint64_t h)
{
    struct run_series *s;

    if (r->nseries >= DETECTOR_MAX_SERIES) {
        r->refused++;
        return NULL;
    }
    if ((r->nseries + 1) * 2 > r->nslots && grow_slots(r) != TSDB_OK)
        return NULL;
    if (r->nseries == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        struct run_series *p = realloc(r->series, cap * sizeof(*p));
        if (p == NULL)
            return NULL;
        r->series = p;
        r->cap = cap;
    }
    s = &r->series[r->nseries];
    memset(s, 0, sizeof(*s));
    s->state = malloc(r->state_size ? r->state_size : 1);
    if (s->state == NULL)
        return NULL;
    r->def->model->init(s->state, &r->def->cfg);
    s->labels = *ls;
    s->hash = h;
    s->anomalous_since = INT64_MIN;
    for (size_t j = h & (r->nslots - 1);; j = (j + 1) & (r->nslots - 1)) {
        if (r->slots[j] == 0) {
            r->slots[j] = (uint32_t)r->nseries + 1;
            break;
        }
    }
    r->nseries++;
    return s;
}

struct run_series *run_series_get(struct run *r, const struct tsdb_labels *ls)
{
    struct tsdb_labels own;
    struct run_series *s;
    uint64_t h;

    if (copy_without_name(ls, &own) != TSDB_OK)
        return NULL;
    h = labels_hash(&own);
    for (size_t j = r->nslots ? h & (r->nslots - 1) : 0;
         r->nslots && r->slots[j] != 0; j = (j + 1) & (r->nslots - 1)) {
        s = &r->series[r->slots[j] - 1];
        if (s->hash == h && tsdb_labels_cmp(&s->labels, &own) == 0) {
            tsdb_labels_release(&own);
            return s;
        }
    }
    s = add_series(r, &own, h);
    if (s == NULL)
        tsdb_labels_release(&own);
    return s;
}

/* ---- steps ---- */

/* What every series shares at one step. */
struct step_ctx {
    int64_t t;
    uint32_t phase;
    bool learn;
};

static int track_event(struct run *r, struct run_series *s,
                       const struct step_ctx *c, double v,
                       const struct anomaly_result *res,
                       const struct run_sink *sink)
{
    struct anomaly_event *ev = &s->ev;

    if (!res->anomalous) {
        int rc = TSDB_OK;

        if (s->ev_open) {
            ev->end = c->t;
            rc = sink->event(sink->ctx, ev);
            s->ev_open = false;
        }
        s->anomalous_since = INT64_MIN;
        return rc;
    }
    if (s->anomalous_since == INT64_MIN) {
        s->anomalous_since = c->t;
        memset(ev, 0, sizeof(*ev));
        ev->peak_score = -1;
    }
    if (res->score > ev->peak_score) {
        ev->peak_score = res->score;
        ev->peak_t = c->t;
        ev->observed = v;
        ev->expected = res->expected;
        ev->lower = res->lower;
        ev->upper = res->upper;
    }
    if (!s->ev_open && c->t - s->anomalous_since >= r->def->min_duration_ms) {
        s->ev_open = true;
        ev->id = ++r->next_event_id;
        ev->start = s->anomalous_since;
        ev->end = 0;
        ev->labels = s->labels;
        return sink->event(sink->ctx, ev);
    }
    return TSDB_OK;
}

static int step_one(struct run *r, struct run_series *s,
                    const struct step_ctx *c, double v,
                    const struct run_sink *sink)
{
    struct anomaly_step in = {c->t, v, c->phase, c->learn};
    struct anomaly_result res;
    int rc;

    r->def->model->step(s->state, &r->def->cfg, &in, &res);
    if (sink == NULL)
        return TSDB_OK;
    rc = track_event(r, s, c, v, &res, sink);
    if (rc == TSDB_OK && !isnan(v))
        rc = sink->point(sink->ctx, s, c->t, v, &res, s->ev_open);
    return rc;
}

/* Feeds one result series its piece: values where it has points, NaN at
 * the steps where it has none. */
static int feed(struct run *r, struct run_series *s, const struct step_ctx *cs,
                size_t nsteps, const struct query_series *qs,
                const struct run_sink *sink)
{
    size_t j = 0;
    int rc = TSDB_OK;

    for (size_t k = 0; k < nsteps && rc == TSDB_OK; k++) {
        double v = NAN;

        if (qs != NULL && j < qs->n && qs->t[j] == cs[k].t)
            v = qs->v[j++];
        rc = step_one(r, s, &cs[k], v, sink);
    }
    return rc;
}

static int run_piece(struct run *r, struct tsdb *db,
                     const struct query_opts *qo, int64_t from, int64_t to,
                     const struct run_sink *sink, char *err, size_t errlen)
{
    const struct detector_def *d = r->def;
    size_t nsteps = (size_t)((to - from) / d->cfg.interval_ms) + 1;
    struct step_ctx *cs = calloc(nsteps, sizeof(*cs));
    struct query_result res = {0};
    struct query_err qerr;
    int rc;

    if (cs == NULL)
        return TSDB_ENOMEM;
    for (size_t k = 0; k < nsteps; k++) {
        cs[k].t = from + (int64_t)k * d->cfg.interval_ms;
        cs[k].phase = anomaly_phase(d->tz, &d->cfg, cs[k].t);
        cs[k].learn = !detector_excluded(d, cs[k].t);
    }
    rc = query_eval_range_node(db, qo, d->expr, from, to, d->cfg.interval_ms,
                               &res, &qerr);
    if (rc != TSDB_OK) {
        snprintf(err, errlen, "%s", qerr.msg);
        free(cs);
        return rc == TSDB_ENOMEM ? rc : TSDB_EINVAL;
    }
    r->last_results = 0;
    r->piece++;
    for (size_t i = 0; i < res.nseries && rc == TSDB_OK; i++) {
        struct run_series *s = run_series_get(r, &res.series[i].labels);

        if (s == NULL)
            continue;
        s->piece = r->piece;
        if (res.series[i].n > 0 && res.series[i].t[res.series[i].n - 1] == to)
            r->last_results++;
        rc = feed(r, s, cs, nsteps, &res.series[i], sink);
    }
    /* Series followed before but absent from this piece get gaps. */
    for (size_t i = 0; i < r->nseries && rc == TSDB_OK; i++)
        if (r->series[i].piece != r->piece)
            rc = feed(r, &r->series[i], cs, nsteps, NULL, sink);
    if (rc == TSDB_OK && sink != NULL && sink->flush != NULL)
        rc = sink->flush(sink->ctx);
    if (rc == TSDB_OK)
        r->last_step = to;
    free(cs);
    query_result_release(&res);
    return rc;
}

int run_steps(struct run *r, struct tsdb *db, const struct query_opts *qo,
              int64_t from, int64_t to, const struct run_sink *sink, char *err,
              size_t errlen)
{
    int64_t step = r->def->cfg.interval_ms;
    int64_t first = run_step_floor(r->def, from);
    int rc = TSDB_OK;

    from = first < from ? first + step : first;
    to = run_step_floor(r->def, to);
    while (from <= to && rc == TSDB_OK) {
        int64_t end = from + (RUN_PIECE_STEPS - 1) * step;

        if (end > to)
            end = to;
        rc = run_piece(r, db, qo, from, end, sink, err, errlen);
        from = end + step;
    }
    return rc;
}
