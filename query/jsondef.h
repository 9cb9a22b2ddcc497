/*
 * What the JSON definitions of rollup rules and detectors share: the
 * form of their names, errors that name the field, and duration fields.
 * Both are built around PromQL (a selector, an expression), hence here.
 */
#ifndef QUERY_JSONDEF_H
#define QUERY_JSONDEF_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* 1 to max bytes of [A-Za-z0-9_.-]: safe in a URL path and a file name. */
bool jsondef_name_valid(const char *s, size_t max);

/* Formats err and returns TSDB_EINVAL, for one-line error returns. */
int jsondef_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Reads duration field of root ("1m", "90s") into *ms, within [lo, hi].
 * A missing field takes dflt, or is an error when dflt < 0.  TSDB_OK or
 * TSDB_EINVAL with err naming the field.
 */
int jsondef_duration(json_t *root, const char *field, int64_t lo, int64_t hi,
                     int64_t dflt, int64_t *ms, char *err, size_t errlen);

#endif
