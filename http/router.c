/*
 * Route lookup; see router.h.  A linear scan: the table has a handful of
 * entries and the comparison is one strcmp each.
 */
#include "http/router.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

unsigned http_method_bit(const char *method)
{
    static const struct {
        const char *name;
        unsigned bit;
    } names[] = {{"GET", HTTP_GET},
                 {"HEAD", HTTP_HEAD},
                 {"POST", HTTP_POST},
                 {"PUT", HTTP_PUT},
                 {"DELETE", HTTP_DELETE}};

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(method, names[i].name) == 0)
            return names[i].bit;
    return HTTP_OTHER;
}

/* The methods a route takes, HEAD added wherever GET is. */
/* Does path match pattern, where a "*" segment stands for one segment? */
static bool path_match(const char *pattern, const char *path)
{
    while (*pattern && *path) {
        if (pattern[0] == '*' && (pattern[1] == '/' || pattern[1] == '\0')) {
            const char *end = strchr(path, '/');

            if (end == path)
                return false;
            path = end ? end : path + strlen(path);
            pattern++;
            continue;
        }
        if (*pattern++ != *path++)
            return false;
    }
    return *pattern == '\0' && *path == '\0';
}

static unsigned allowed(const struct http_route *r)
{
    return r->methods | (r->methods & HTTP_GET ? HTTP_HEAD : 0);
}

int http_router_find(const struct http_route *t, size_t n, const char *path,
                     unsigned method, const struct http_route **out)
{
    bool path_known = false;

    for (size_t i = 0; i < n; i++) {
        if (!path_match(t[i].path, path))
            continue;
        path_known = true;
        if (allowed(&t[i]) & method) {
            *out = &t[i];
            return TSDB_OK;
        }
    }
    return path_known ? TSDB_EINVAL : TSDB_ENOTFOUND;
}

void http_router_allow(const struct http_route *t, size_t n, const char *path,
                       char *out, size_t cap)
{
    static const struct {
        unsigned bit;
        const char *name;
    } order[] = {{HTTP_GET, "GET"},
                 {HTTP_HEAD, "HEAD"},
                 {HTTP_POST, "POST"},
                 {HTTP_PUT, "PUT"},
                 {HTTP_DELETE, "DELETE"}};
    unsigned bits = 0;
    size_t len = 0;

    for (size_t i = 0; i < n; i++)
        if (path_match(t[i].path, path))
            bits |= allowed(&t[i]);
    if (cap > 0)
        out[0] = '\0';
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        if (!(bits & order[i].bit) || len >= cap)
            continue;
        len += (size_t)snprintf(out + len, cap - len, "%s%s", len ? ", " : "",
                                order[i].name);
    }
}
