/* PromQL durations (duration.h). */
#include "query/duration.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "tsdb/error.h"

int query_parse_duration(const char *s, int64_t *ms)
{
    static const struct {
        const char *unit;
        int64_t ms;
    } units[] = {{"y", 365LL * 86400000},
                 {"w", 7LL * 86400000},
                 {"d", 86400000},
                 {"h", 3600000},
                 {"m", 60000},
                 {"s", 1000},
                 {"ms", 1}};
    size_t next = 0;
    int64_t total = 0;

    if (*s == '\0')
        return TSDB_EINVAL;
    while (*s != '\0') {
        int64_t n = 0;
        size_t u;

        if (!isdigit((unsigned char)*s))
            return TSDB_EINVAL;
        for (; isdigit((unsigned char)*s); s++) {
            if (n > (INT64_MAX - 9) / 10)
                return TSDB_EINVAL;
            n = n * 10 + (*s - '0');
        }
        /* "ms" before "m": the longest unit that matches. */
        for (u = next; u < sizeof(units) / sizeof(units[0]); u++) {
            size_t len = strlen(units[u].unit);

            if (strncmp(s, units[u].unit, len) == 0 &&
                !(units[u].unit[0] == 'm' && len == 1 && s[1] == 's'))
                break;
        }
        if (u == sizeof(units) / sizeof(units[0]))
            return TSDB_EINVAL;
        if (n > INT64_MAX / units[u].ms || total > INT64_MAX - n * units[u].ms)
            return TSDB_EINVAL;
        total += n * units[u].ms;
        s += strlen(units[u].unit);
        next = u + 1;
    }
    *ms = total;
    return TSDB_OK;
}

bool query_format_duration(char out[QUERY_DURATION_MAX], int64_t ms)
{
    static const struct {
        const char *unit;
        int64_t mult;
        bool exact;
    } units[] = {
        {"y", 365LL * 86400000, true},
        {"w", 7LL * 86400000, true},
        {"d", 86400000, false},
        {"h", 3600000, false},
        {"m", 60000, false},
        {"s", 1000, false},
        {"ms", 1, false},
    };
    size_t len = 0;

    if (ms < 0)
        return false;
    if (ms == 0) {
        strcpy(out, "0s");
        return true;
    }
    out[0] = '\0';
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (units[i].exact && ms % units[i].mult != 0)
            continue;
        if (ms / units[i].mult > 0) {
            len += (size_t)snprintf(out + len, QUERY_DURATION_MAX - len,
                                    "%lld%s", (long long)(ms / units[i].mult),
                                    units[i].unit);
            ms -= ms / units[i].mult * units[i].mult;
        }
    }
    return true;
}
