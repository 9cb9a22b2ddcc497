/*
 * Bounded growable buffer; see buf.h for the contract and invariants.
 * Layer: http/ helpers, no MHD, no logging.
 */
#include "http/buf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void http_buf_init(struct http_buf *b, size_t max)
{
    memset(b, 0, sizeof(*b));
    b->max = max;
}

void http_buf_release(struct http_buf *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

void http_buf_reset(struct http_buf *b)
{
    b->len = 0;
    b->err = TSDB_OK;
    if (b->p)
        b->p[0] = '\0';
}

/* Makes room for n more bytes plus the NUL; doubles to amortise. */
static int reserve(struct http_buf *b, size_t n)
{
    size_t need, cap;
    char *p;

    if (b->err != TSDB_OK)
        return b->err;
    if (n > b->max - b->len) {
        b->err = TSDB_EFULL;
        return b->err;
    }
    need = b->len + n + 1;
    if (need <= b->cap)
        return TSDB_OK;
    cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (cap > b->max + 1)
        cap = b->max + 1;
    p = realloc(b->p, cap);
    if (!p) {
        b->err = TSDB_ENOMEM;
        return b->err;
    }
    b->p = p;
    b->cap = cap;
    return TSDB_OK;
}

int http_buf_add(struct http_buf *b, const void *p, size_t n)
{
    int rc = reserve(b, n);

    if (rc != TSDB_OK)
        return rc;
    if (n > 0)
        memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = '\0';
    return TSDB_OK;
}

int http_buf_puts(struct http_buf *b, const char *s)
{
    return http_buf_add(b, s, strlen(s));
}

int http_buf_printf(struct http_buf *b, const char *fmt, ...)
{
    va_list ap;
    char small[256];
    int n, rc;

    if (b->err != TSDB_OK)
        return b->err;

    /* Most lines fit the stack buffer: format once, copy once. */
    va_start(ap, fmt);
    n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->err = TSDB_EINVAL;
        return b->err;
    }
    if ((size_t)n < sizeof(small))
        return http_buf_add(b, small, (size_t)n);
    rc = reserve(b, (size_t)n);
    if (rc != TSDB_OK)
        return rc;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return TSDB_OK;
}

char *http_buf_detach(struct http_buf *b, size_t *len)
{
    char *p = b->p;

    if (len)
        *len = b->len;
    b->p = NULL;
    b->len = 0;
    b->cap = 0;
    b->err = TSDB_OK;
    return p;
}
