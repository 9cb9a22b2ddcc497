/*
 * statsd_sink over a struct tsdb appender (sink.h).  Sits between
 * statsd.c's flush and tsdb/appender.c; holds no state but the appender
 * and the counts.
 */
#include "statsd/sink.h"

#include <string.h>

static int tsdb_emit(void *ctx, const struct statsd_sample *s)
{
    struct statsd_tsdb_sink *t = ctx;
    uint64_t ref;
    int rc;

    rc = tsdb_appender_series(t->app, s->labels, s->nlabels, &ref,
                              t->last_error, sizeof(t->last_error));
    if (rc == TSDB_EINVAL || rc == TSDB_ELIMIT) {
        t->series_refused++;
        return TSDB_OK;
    }
    if (rc == TSDB_OK)
        rc = tsdb_appender_add(t->app, ref, s->t, s->v);

    /* The flush stops here and is emitted again at recovery: what was
     * buffered of it must not ride along with a later commit. */
    if (rc != TSDB_OK)
        tsdb_appender_rollback(t->app);
    return rc;
}

static int tsdb_commit(void *ctx)
{
    struct statsd_tsdb_sink *t = ctx;
    struct tsdb_commit_result r = {0};
    int rc = tsdb_appender_commit(t->app, &r);

    if (rc != TSDB_OK) {
        tsdb_appender_rollback(t->app); /* a failed commit keeps them */
        return rc;
    }
    t->total.accepted += r.accepted;
    t->total.duplicates += r.duplicates;
    t->total.out_of_order += r.out_of_order;
    t->total.conflicts += r.conflicts;
    t->total.out_of_bounds += r.out_of_bounds;
    return TSDB_OK;
}

int statsd_tsdb_sink_init(struct statsd_tsdb_sink *t, struct tsdb *db,
                          struct statsd_sink *sink)
{
    memset(t, 0, sizeof(*t));
    t->app = tsdb_appender_new(db);
    if (!t->app)
        return TSDB_ENOMEM;
    sink->emit = tsdb_emit;
    sink->commit = tsdb_commit;
    sink->ctx = t;
    return TSDB_OK;
}

void statsd_tsdb_sink_release(struct statsd_tsdb_sink *t)
{
    if (!t->app)
        return;
    tsdb_appender_rollback(t->app);
    tsdb_appender_free(t->app);
    t->app = NULL;
}
