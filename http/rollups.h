/*
 * The rollup rule endpoints (rollup/rollup.h):
 *
 *   GET    /api/v1/rollups        every rule with its state
 *   PUT    /api/v1/rollups/NAME   create or replace from a JSON body
 *   DELETE /api/v1/rollups/NAME   remove
 *
 * Answers use Prometheus's envelope; a bad rule is 400 bad_data whose
 * message names the field, an unknown name 404 not_found.
 */
#ifndef HTTP_ROLLUPS_H
#define HTTP_ROLLUPS_H

#include "http/request.h"

int http_rollups_list_end(struct http_req *r);
int http_rollups_put_end(struct http_req *r);
int http_rollups_delete_end(struct http_req *r);

/* Appends the rules' figures to a /metrics page; returns b->err. */
int http_rollups_render(struct rollup_engine *e, struct http_buf *b);

#endif
