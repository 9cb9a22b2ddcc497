/*
 * The detector endpoints (anomaly/engine.h):
 *
 *   GET    /api/v1/detectors        every detector with its state
 *   PUT    /api/v1/detectors/NAME   create or replace from a JSON body
 *   DELETE /api/v1/detectors/NAME   remove (its state and events too)
 *   GET    /api/v1/anomalies        events: ?detector=NAME&start=T&end=T
 *                                   (default: every detector, all time)
 *
 * Answers use Prometheus's envelope; a bad definition is 400 bad_data
 * naming the field, an unknown detector 404 not_found.
 */
#ifndef HTTP_DETECTORS_H
#define HTTP_DETECTORS_H

#include "http/request.h"

int http_detectors_list_end(struct http_req *r);
int http_detectors_put_end(struct http_req *r);
int http_detectors_delete_end(struct http_req *r);
int http_anomalies_end(struct http_req *r);

/* Appends the detectors' figures to a /metrics page; returns b->err. */
int http_detectors_render(struct anomaly_engine *e, struct http_buf *b);

#endif
