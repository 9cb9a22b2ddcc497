/*
 * Request parameters: name/value pairs from the URL query string and from
 * an application/x-www-form-urlencoded body, as Prometheus's API reads
 * them (protocols.md section 2): a repeated name (match[]) collects every
 * value; for a single-valued name the first value wins, and the server
 * adds body pairs before URL pairs so that the body wins, as in Go's
 * FormValue.  Also the parsing of time parameters.  Pure code.
 */
#ifndef HTTP_PARAMS_H
#define HTTP_PARAMS_H

#include <stddef.h>
#include <stdint.h>

#include "tsdb/error.h"

/* Why a maximum: each pair is a heap copy.  1024 covers any match[] list
 * a dashboard sends; past it a request is refused with TSDB_ELIMIT. */
#define HTTP_PARAMS_MAX 1024

struct http_param {
    char *name;  /* owned, NUL-terminated, decoded */
    char *value; /* owned, NUL-terminated, decoded; may hold no NUL */
};

struct http_params {
    struct http_param *v;
    size_t n;
    size_t cap;
};

/* Prepares ps (caller-owned; release with http_params_release). */
void http_params_init(struct http_params *ps);

void http_params_release(struct http_params *ps);

/* Appends a copy of one decoded pair.  Returns TSDB_OK, TSDB_EINVAL if
 * name or value holds a NUL byte, TSDB_ELIMIT past HTTP_PARAMS_MAX or
 * TSDB_ENOMEM. */
int http_params_add(struct http_params *ps, const char *name, size_t nlen,
                    const char *value, size_t vlen);

/*
 * Decodes a form body ("a=1&b=x+y&c=%2F"): '+' is a space, %XX a byte; a
 * pair without '=' has an empty value; empty pairs are skipped.  Returns
 * TSDB_OK, TSDB_EINVAL for a bad %-escape or a NUL byte (pairs before it
 * are kept), or an error of http_params_add.
 */
int http_params_parse_form(struct http_params *ps, const char *body,
                           size_t len);

/* The first value of name, or NULL; borrowed until ps is released. */
const char *http_params_get(const struct http_params *ps, const char *name);

#endif
