/*
 * A growable byte buffer with an explicit maximum, for request bodies,
 * JSON answers and the /metrics page.  Appends past the maximum fail with
 * TSDB_EFULL instead of growing, so no request can make the server hold
 * more than the limit its route sets.
 *
 * Errors are sticky: after the first failed append, later appends do
 * nothing and b->err keeps the first code.  A caller builds a whole answer
 * with unchecked appends and tests b->err once at the end.
 *
 * Invariants:
 * 1. len <= max, and len < cap whenever p != NULL.
 * 2. p[len] == '\0' whenever p != NULL, so p is a C string when the
 *    content has no NUL.
 */
#ifndef HTTP_BUF_H
#define HTTP_BUF_H

#include <stdarg.h>
#include <stddef.h>

#include "tsdb/error.h"

struct http_buf {
    char *p;    /* caller owns through the struct; NULL until first use */
    size_t len; /* bytes held, terminating NUL excluded */
    size_t cap; /* bytes allocated */
    size_t max; /* len never exceeds this */
    int err;    /* first failure: TSDB_EFULL or TSDB_ENOMEM, else TSDB_OK */
};

/* Prepares b (caller-owned; release with http_buf_release) to hold at
 * most max bytes.  Allocates nothing yet. */
void http_buf_init(struct http_buf *b, size_t max);

/* Frees the bytes; b may be initialised again.  Safe on a zeroed struct. */
void http_buf_release(struct http_buf *b);

/* Empties b and clears a sticky error, keeping the allocation. */
void http_buf_reset(struct http_buf *b);

/* Appends n bytes.  Returns TSDB_OK, TSDB_EFULL (would pass max; nothing
 * appended) or TSDB_ENOMEM; either error is also kept in b->err. */
int http_buf_add(struct http_buf *b, const void *p, size_t n);

/* Appends a NUL-terminated string; as http_buf_add. */
int http_buf_puts(struct http_buf *b, const char *s);

/* Appends printf output; as http_buf_add. */
int http_buf_printf(struct http_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Detaches the bytes: returns p (caller owns, free with free(); NULL when
 * nothing was appended) and leaves b empty. */
char *http_buf_detach(struct http_buf *b, size_t *len);

#endif
