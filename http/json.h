/*
 * JSON output for the HTTP API: string escaping and Prometheus's answer
 * envelope (protocols.md section 2):
 *   {"status":"success","data":...}
 *   {"status":"error","errorType":"...","error":"...","data":...}
 * The "data" member of an error is optional; we add it where a partial
 * result helps the caller (an import that stored some lines).
 *
 * Everything appends to a struct http_buf, so the sticky-error rule of
 * buf.h applies: check b->err once at the end.
 */
#ifndef HTTP_JSON_H
#define HTTP_JSON_H

#include <stddef.h>

#include "http/buf.h"

/* Appends s[0..n) as a quoted JSON string: '"' and '\\' escaped, control
 * bytes as \n, \t or \u00XX, valid UTF-8 copied as it is, and each byte
 * of invalid UTF-8 as \ufffd, so that echoing a client's bytes in an
 * error message always gives valid JSON. */
void http_json_string(struct http_buf *b, const char *s, size_t n);

/* As http_json_string for a NUL-terminated string. */
void http_json_str(struct http_buf *b, const char *s);

/*
 * Appends the error envelope without its closing brace, so that a caller
 * may add ",\"data\":{...}" before closing it with "}\n".  type is one of
 * Prometheus's error types (bad_data, internal, unavailable, ...) or one of
 * ours (not_found, method_not_allowed, too_large, unsupported_media_type);
 * msg says what to fix.
 */
void http_json_error_open(struct http_buf *b, const char *type,
                          const char *msg);

/* The whole error envelope, with its closing brace and a newline. */
void http_json_error(struct http_buf *b, const char *type, const char *msg);

#endif
