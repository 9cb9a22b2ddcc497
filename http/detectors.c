/* The detector endpoints (detectors.h). */
#include "http/detectors.h"

#include <stdlib.h>
#include <string.h>

#include "http/metrics.h"
#include "http/params.h"
#include "tsdb/error.h"

#define PREFIX "/api/v1/detectors/"

static int unavailable(struct http_req *r)
{
    return http_reply_error(r, 503, "unavailable",
                            "detectors are not enabled on this server");
}

int http_detectors_list_end(struct http_req *r)
{
    if (r->env->detectors == NULL)
        return unavailable(r);
    return http_reply_data(r, anomaly_list_json(r->env->detectors));
}

int http_detectors_put_end(struct http_req *r)
{
    const char *name = r->url + strlen(PREFIX);
    char err[768];
    int rc;

    if (r->env->detectors == NULL)
        return unavailable(r);
    if (r->body.len == 0)
        return http_reply_error(r, 400, "bad_data",
                                "detector %s: a JSON body is required", name);
    rc = anomaly_put(r->env->detectors, name, r->body.p, r->body.len, err,
                     sizeof(err));
    if (rc == TSDB_EINVAL)
        return http_reply_error(r, 400, "bad_data", "%s", err);
    if (rc == TSDB_EIO)
        return http_reply_error(r, 500, "internal", "%s", err);
    if (rc != TSDB_OK)
        return http_reply_error(r, 500, "internal", "detector %s: %s", name,
                                tsdb_strerror(rc));
    return http_detectors_list_end(r);
}

int http_detectors_delete_end(struct http_req *r)
{
    const char *name = r->url + strlen(PREFIX);
    int rc;

    if (r->env->detectors == NULL)
        return unavailable(r);
    rc = anomaly_delete(r->env->detectors, name);
    if (rc == TSDB_ENOTFOUND)
        return http_reply_error(r, 404, "not_found", "no detector named %s",
                                name);
    if (rc != TSDB_OK)
        return http_reply_error(r, 500, "internal",
                                "detector %s removed, but the definitions "
                                "file could not be written",
                                name);
    return http_detectors_list_end(r);
}

int http_anomalies_end(struct http_req *r)
{
    struct http_params ps;
    int64_t start = INT64_MIN, end = INT64_MAX;
    const char *det;
    bool answered = false, found;
    char *list;
    int rc;

    if (r->env->detectors == NULL)
        return unavailable(r);
    http_params_init(&ps);
    rc = http_req_params(r, &ps);
    if (rc != TSDB_OK) {
        rc = http_reply_error(r, 400, "bad_data",
                              "cannot read the parameters: %s",
                              tsdb_strerror(rc));
        goto out;
    }
    rc = http_req_time_param(r, &ps, "start", false, &start, &answered);
    if (rc == TSDB_OK && !answered)
        rc = http_req_time_param(r, &ps, "end", false, &end, &answered);
    if (rc != TSDB_OK || answered)
        goto out;
    det = http_params_get(&ps, "detector");
    if (det != NULL && *det == '\0')
        det = NULL;
    list = anomaly_events_json(r->env->detectors, det, start, end, &found);
    if (list != NULL && !found) {
        free(list);
        rc = http_reply_error(r, 404, "not_found", "no detector named %s", det);
    } else {
        rc = http_reply_data(r, list);
    }
out:
    http_params_release(&ps);
    return rc;
}

int http_detectors_render(struct anomaly_engine *e, struct http_buf *b)
{
    struct anomaly_stats st;

    anomaly_stats_get(e, &st);
    http_metrics_single(b, "tsdb_detectors", "gauge", "Detectors defined.",
                        st.detectors);
    http_metrics_single(b, "tsdb_detector_series", "gauge",
                        "Result series followed, each with a model state.",
                        st.series);
    http_metrics_single(b, "tsdb_detector_evaluations_total", "counter",
                        "Detector evaluations (one or more steps each).",
                        st.evaluations);
    http_metrics_single(b, "tsdb_detector_failures_total", "counter",
                        "Evaluations whose expression failed.", st.failures);
    http_metrics_single(b, "tsdb_detector_events_total", "counter",
                        "Anomaly events opened.", st.events);
    http_buf_printf(b,
                    "# HELP tsdb_detector_seconds_total Time spent "
                    "evaluating detectors.\n"
                    "# TYPE tsdb_detector_seconds_total counter\n"
                    "tsdb_detector_seconds_total %.6f\n",
                    st.seconds);
    return b->err;
}
