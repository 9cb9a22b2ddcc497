/*
 * Handlers of the Prometheus query API (routes.h lists the routes):
 * instant and range queries, series, label names and values, and the
 * endpoints Grafana probes (metadata, buildinfo, exemplars, rules,
 * alerts, format_query).  Each reads GET parameters and a POST form alike.
 *
 * Answers: 200 with Prometheus's envelope; 400 bad_data for a bad
 * parameter or query text (the messages are Prometheus 2.42's); 422
 * execution for an evaluation error or a limit of the data (sample limit,
 * answer size); 503 timeout; 500 internal for a storage failure.
 */
#ifndef HTTP_QUERYROUTES_H
#define HTTP_QUERYROUTES_H

struct http_req;

int http_query_end(struct http_req *r);
int http_query_range_end(struct http_req *r);
int http_series_end(struct http_req *r);
int http_labels_end(struct http_req *r);
int http_label_values_end(struct http_req *r);
int http_metadata_end(struct http_req *r);
int http_buildinfo_end(struct http_req *r);
int http_exemplars_end(struct http_req *r);
int http_rules_end(struct http_req *r);
int http_alerts_end(struct http_req *r);
int http_format_query_end(struct http_req *r);

#endif
