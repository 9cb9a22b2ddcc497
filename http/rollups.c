/* The rollup rule endpoints (rollups.h). */
#include "http/rollups.h"

#include <stdlib.h>
#include <string.h>

#include "http/json.h"
#include "http/metrics.h"
#include "tsdb/error.h"

#define PREFIX "/api/v1/rollups/"

static int unavailable(struct http_req *r)
{
    return http_reply_error(r, 503, "unavailable",
                            "rollups are not enabled on this server");
}

int http_rollups_list_end(struct http_req *r)
{
    if (r->env->rollups == NULL)
        return unavailable(r);
    return http_reply_data(r, rollup_list_json(r->env->rollups));
}

/* The NAME of /api/v1/rollups/NAME (the router matched the prefix). */
static const char *rule_name(const struct http_req *r)
{
    return r->url + strlen(PREFIX);
}

int http_rollups_put_end(struct http_req *r)
{
    const char *name = rule_name(r);
    char err[768];
    int rc;

    if (r->env->rollups == NULL)
        return unavailable(r);
    if (r->body.len == 0)
        return http_reply_error(r, 400, "bad_data",
                                "rule %s: a JSON body is required", name);
    rc = rollup_put(r->env->rollups, name, r->body.p, r->body.len, err,
                    sizeof(err));
    if (rc == TSDB_EINVAL)
        return http_reply_error(r, 400, "bad_data", "%s", err);
    if (rc == TSDB_EIO)
        return http_reply_error(r, 500, "internal", "%s", err);
    if (rc != TSDB_OK)
        return http_reply_error(r, 500, "internal", "rule %s: %s", name,
                                tsdb_strerror(rc));
    return http_rollups_list_end(r);
}

int http_rollups_delete_end(struct http_req *r)
{
    const char *name = rule_name(r);
    int rc;

    if (r->env->rollups == NULL)
        return unavailable(r);
    rc = rollup_delete(r->env->rollups, name);
    if (rc == TSDB_ENOTFOUND)
        return http_reply_error(r, 404, "not_found", "no rollup rule named %s",
                                name);
    if (rc != TSDB_OK)
        return http_reply_error(r, 500, "internal",
                                "rule %s removed, but the state file could "
                                "not be written: %s",
                                name, tsdb_strerror(rc));
    return http_rollups_list_end(r);
}

int http_rollups_render(struct rollup_engine *e, struct http_buf *b)
{
    struct rollup_stats st;

    rollup_stats_get(e, &st);
    http_metrics_single(b, "tsdb_rollup_rules", "gauge",
                        "Rollup rules in effect.", st.rules);
    http_metrics_single(b, "tsdb_rollup_samples_total", "counter",
                        "Samples added to rollup intervals.", st.samples);
    http_metrics_single(b, "tsdb_rollup_late_samples_total", "counter",
                        "Samples for intervals that had closed, not added.",
                        st.late);
    http_metrics_single(b, "tsdb_rollup_dropped_samples_total", "counter",
                        "Samples past a rule's group or memory limits.",
                        st.dropped);
    http_metrics_single(b, "tsdb_rollup_results_total", "counter",
                        "Result samples of closed intervals.", st.written);
    http_buf_printf(b,
                    "# HELP tsdb_rollup_observe_seconds_total Time the rules "
                    "took inside commits.\n"
                    "# TYPE tsdb_rollup_observe_seconds_total counter\n"
                    "tsdb_rollup_observe_seconds_total %.6f\n",
                    st.observe_seconds);
    return b->err;
}
