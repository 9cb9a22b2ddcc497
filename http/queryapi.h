/*
 * The Prometheus query API's parameters and answers (protocols.md section
 * 2), apart from the request cycle: durations and steps, the JSON of each
 * result type, and how an evaluation error maps to a status and an
 * errorType.  routes.c wires these to the endpoints.  Pure code.
 */
#ifndef HTTP_QUERYAPI_H
#define HTTP_QUERYAPI_H

#include <stddef.h>
#include <stdint.h>

#include "http/buf.h"
#include "query/eval.h"

/* Points per series a range query may ask for, as Prometheus: past it the
 * answer is 400 "exceeded maximum resolution of 11,000 points". */
#define HTTP_QUERY_MAX_POINTS 11000

/* An answer is built whole, in at most this many bytes: about 10 million
 * points.  Past it the query gets 422 naming the limit. */
#define HTTP_QUERY_ANSWER_MAX (512u << 20)

/*
 * Parses a step or timeout as Prometheus does: a decimal number of
 * seconds ("15", "0.5", "1e1"), else a PromQL duration ("1m", "1h30m").
 * Returns TSDB_OK with *ms (rounded to whole milliseconds) or TSDB_EINVAL.
 */
int http_parse_duration(const char *s, int64_t *ms);

/* Appends the data member of a successful answer:
 * {"resultType":"vector","result":[...]} and so on for each type. */
void http_query_result_json(struct http_buf *b, const struct query_result *r);

/* Appends one label set as a JSON object, keys sorted. */
void http_labels_json(struct http_buf *b, const struct tsdb_labels *ls);

/* The HTTP status and errorType of an evaluation error. */
unsigned http_query_err_status(const struct query_err *e, const char **type);

/*
 * The X-Tsdb-Resolution header of a query answer: what served its reads,
 * from struct query_result's resolutions bits, as "raw", a tier's width
 * ("5m", "1h") or a list of them ("raw, 1h"); "raw" when nothing was
 * read.  widths[0..n) are the tier widths in ms (tsdb_tiers_get).
 */
void http_query_resolution(uint32_t bits, const int64_t *widths, size_t n,
                           char *out, size_t cap);

#endif
