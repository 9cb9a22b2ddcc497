/* Shared pieces of JSON definitions (jsondef.h). */
#include "query/jsondef.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "query/duration.h"
#include "tsdb/error.h"

bool jsondef_name_valid(const char *s, size_t max)
{
    size_t n = strlen(s);

    if (n == 0 || n > max)
        return false;
    for (; *s; s++)
        if (!(*s == '_' || *s == '-' || *s == '.' || (*s >= '0' && *s <= '9') ||
              (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')))
            return false;
    return true;
}

int jsondef_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return TSDB_EINVAL;
}

int jsondef_duration(json_t *root, const char *field, int64_t lo, int64_t hi,
                     int64_t dflt, int64_t *ms, char *err, size_t errlen)
{
    json_t *v = json_object_get(root, field);
    const char *s = json_string_value(v);

    if (v == NULL && dflt >= 0) {
        *ms = dflt;
        return TSDB_OK;
    }
    if (s == NULL || query_parse_duration(s, ms) != TSDB_OK)
        return jsondef_fail(err, errlen,
                            "field \"%s\": a duration such as \"1m\" or "
                            "\"90s\" is required",
                            field);
    if (*ms < lo || *ms > hi)
        return jsondef_fail(err, errlen,
                            "field \"%s\": %s is outside [%llds, %llds]", field,
                            s, (long long)(lo / 1000), (long long)(hi / 1000));
    return TSDB_OK;
}
