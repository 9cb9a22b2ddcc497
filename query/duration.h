/*
 * PromQL durations as text ("1h30m", "5m", "250ms") and times as the
 * Prometheus API takes them.  Used by the parser's printer, the HTTP API's
 * parameters, rollup rules (whose output names carry their interval) and
 * detectors.  Pure code.
 */
#ifndef QUERY_DURATION_H
#define QUERY_DURATION_H

#include <stdbool.h>
#include <stdint.h>

/* Room for the longest duration query_format_duration writes, NUL
 * included. */
#define QUERY_DURATION_MAX 64

/* Reads units from years down to milliseconds, each at most once and in
 * that order, into *ms.  TSDB_OK, or TSDB_EINVAL for anything else (an
 * empty string, a sign, a fraction, an overflow). */
int query_parse_duration(const char *s, int64_t *ms);

/* Writes ms (>= 0) as Prometheus prints a model.Duration: largest units
 * first, y and w only when they divide it exactly, "0s" for zero.  False
 * for a negative ms. */
bool query_format_duration(char out[QUERY_DURATION_MAX], int64_t ms);

/*
 * Parses a time as Prometheus's API does: Unix seconds as a decimal float
 * (negative and exponent forms accepted; the fraction rounded to whole
 * milliseconds, halves away from zero), else RFC 3339 with an optional
 * fraction (cut to milliseconds) and a Z or +-HH:MM zone.  Returns TSDB_OK
 * with *ms, or TSDB_EINVAL (also for a time outside the int64 millisecond
 * range).
 */
int query_parse_time(const char *s, int64_t *ms);

#endif
