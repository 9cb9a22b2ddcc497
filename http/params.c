/*
 * Request parameters and time parsing; see params.h.  Layer: http/
 * helpers, no MHD, no logging.
 */
#include "http/params.h"

#include <ctype.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

void http_params_init(struct http_params *ps)
{
    memset(ps, 0, sizeof(*ps));
}

void http_params_release(struct http_params *ps)
{
    for (size_t i = 0; i < ps->n; i++) {
        free(ps->v[i].name);
        free(ps->v[i].value);
    }
    free(ps->v);
    memset(ps, 0, sizeof(*ps));
}

static char *dup_bytes(const char *s, size_t n)
{
    char *p = malloc(n + 1);

    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

int http_params_add(struct http_params *ps, const char *name, size_t nlen,
                    const char *value, size_t vlen)
{
    struct http_param *p;

    if (memchr(name, '\0', nlen) || memchr(value, '\0', vlen))
        return TSDB_EINVAL;
    if (ps->n == HTTP_PARAMS_MAX)
        return TSDB_ELIMIT;
    if (ps->n == ps->cap) {
        size_t cap = ps->cap ? ps->cap * 2 : 8;
        p = realloc(ps->v, cap * sizeof(*p));
        if (!p)
            return TSDB_ENOMEM;
        ps->v = p;
        ps->cap = cap;
    }
    p = &ps->v[ps->n];
    p->name = dup_bytes(name, nlen);
    p->value = dup_bytes(value, vlen);
    if (!p->name || !p->value) {
        free(p->name);
        free(p->value);
        return TSDB_ENOMEM;
    }
    ps->n++;
    return TSDB_OK;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes s[0..n) into out (room for n bytes); *outlen. */
static int form_decode(const char *s, size_t n, char *out, size_t *outlen)
{
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+') {
            out[o++] = ' ';
        } else if (s[i] == '%') {
            int hi = i + 2 < n ? hex_digit(s[i + 1]) : -1;
            int lo = i + 2 < n ? hex_digit(s[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return TSDB_EINVAL;
            out[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    *outlen = o;
    return TSDB_OK;
}

/* Adds one "name=value" pair, both still encoded. */
static int add_encoded(struct http_params *ps, const char *s, size_t n)
{
    const char *eq = memchr(s, '=', n);
    size_t nlen = eq ? (size_t)(eq - s) : n;
    size_t vlen = eq ? n - nlen - 1 : 0;
    char *name = malloc(nlen + 1), *value = malloc(vlen + 1);
    size_t dn = 0, dv = 0;
    int rc = name && value ? TSDB_OK : TSDB_ENOMEM;

    if (rc == TSDB_OK)
        rc = form_decode(s, nlen, name, &dn);
    if (rc == TSDB_OK && eq)
        rc = form_decode(eq + 1, vlen, value, &dv);
    if (rc == TSDB_OK)
        rc = http_params_add(ps, name, dn, value, dv);
    free(name);
    free(value);
    return rc;
}

int http_params_parse_form(struct http_params *ps, const char *body, size_t len)
{
    size_t start = 0;

    for (size_t i = 0; i <= len; i++) {
        int rc;

        if (i < len && body[i] != '&')
            continue;
        rc = i > start ? add_encoded(ps, body + start, i - start) : TSDB_OK;
        if (rc != TSDB_OK)
            return rc;
        start = i + 1;
    }
    return TSDB_OK;
}

const char *http_params_get(const struct http_params *ps, const char *name)
{
    for (size_t i = 0; i < ps->n; i++)
        if (strcmp(ps->v[i].name, name) == 0)
            return ps->v[i].value;
    return NULL;
}
