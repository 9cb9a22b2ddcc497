/* PromQL durations (duration.h). */
#include "query/duration.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
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

/* ---- times ---- */

/* Reads exactly n decimal digits at s into *out. */
static bool digits(const char *s, size_t n, int *out)
{
    int v = 0;

    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

/* "[-]digits[.digits]": exact decimal arithmetic, no rounding error. */
static int plain_seconds(const char *s, int64_t *ms)
{
    bool neg = *s == '-';
    const char *p = s + (neg || *s == '+');
    uint64_t whole = 0, frac = 0;
    int fdigits = 0;
    bool any = false, round_up = false;

    for (; isdigit((unsigned char)*p); p++, any = true) {
        if (whole > (UINT64_MAX - 9) / 10)
            return TSDB_EINVAL;
        whole = whole * 10 + (uint64_t)(*p - '0');
    }
    if (*p == '.') {
        for (p++; isdigit((unsigned char)*p); p++, any = true) {
            if (fdigits < 3)
                frac = frac * 10 + (uint64_t)(*p - '0');
            else if (fdigits == 3)
                round_up = *p >= '5';
            fdigits++;
        }
    }
    if (!any || *p)
        return TSDB_EINVAL;
    for (; fdigits < 3; fdigits++)
        frac *= 10;
    if (whole > (uint64_t)INT64_MAX / 1000 - 1)
        return TSDB_EINVAL;
    whole = whole * 1000 + frac + round_up;
    *ms = neg ? -(int64_t)whole : (int64_t)whole;
    return TSDB_OK;
}

/* Any other float Go's ParseFloat reads (exponents): via strtod. */
static int float_seconds(const char *s, int64_t *ms)
{
    char *end;
    double t, r;

    if (!*s || isspace((unsigned char)*s))
        return TSDB_EINVAL;
    t = strtod(s, &end);
    if (*end || !isfinite(t) || strpbrk(s, "xXnNiI"))
        return TSDB_EINVAL;
    r = round(t * 1000.0);
    if (!(r >= -9.2e18 && r <= 9.2e18))
        return TSDB_EINVAL;
    *ms = (int64_t)r;
    return TSDB_OK;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (m 1..12). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    int64_t era, yoe, doy;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    return era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
}

static int month_days(int y, int m)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30,
                                 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

    return m == 2 && leap ? 29 : days[m - 1];
}

/* Parses the zone at s ("Z" or "+HH:MM") into seconds east of UTC. */
static int zone_offset(const char *s, int *off)
{
    int hh, mm;

    if ((s[0] == 'Z' || s[0] == 'z') && s[1] == '\0') {
        *off = 0;
        return TSDB_OK;
    }
    if ((s[0] != '+' && s[0] != '-') || strlen(s) != 6 || s[3] != ':' ||
        !digits(s + 1, 2, &hh) || !digits(s + 4, 2, &mm) || hh > 23 || mm > 59)
        return TSDB_EINVAL;
    *off = (hh * 3600 + mm * 60) * (s[0] == '-' ? -1 : 1);
    return TSDB_OK;
}

/* YYYY-MM-DDTHH:MM:SS[.fff...](Z|+HH:MM) */
static int rfc3339(const char *s, int64_t *ms)
{
    int y, mo, d, h, mi, sec, off, frac = 0, fdigits = 0;
    const char *p = s + 19;

    if (strlen(s) < 20 || !digits(s, 4, &y) || s[4] != '-' ||
        !digits(s + 5, 2, &mo) || s[7] != '-' || !digits(s + 8, 2, &d) ||
        (s[10] != 'T' && s[10] != 't') || !digits(s + 11, 2, &h) ||
        s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':' ||
        !digits(s + 17, 2, &sec))
        return TSDB_EINVAL;
    if (mo < 1 || mo > 12 || d < 1 || d > month_days(y, mo) || h > 23 ||
        mi > 59 || sec > 59)
        return TSDB_EINVAL;
    if (*p == '.') {
        for (p++; isdigit((unsigned char)*p); p++, fdigits++)
            if (fdigits < 3)
                frac = frac * 10 + (*p - '0');
        if (fdigits == 0)
            return TSDB_EINVAL;
        for (int i = fdigits; i < 3; i++)
            frac *= 10;
    }
    if (zone_offset(p, &off) != TSDB_OK)
        return TSDB_EINVAL;
    *ms =
        ((days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec) - off) *
            1000 +
        frac;
    return TSDB_OK;
}

int query_parse_time(const char *s, int64_t *ms)
{
    if (plain_seconds(s, ms) == TSDB_OK)
        return TSDB_OK;
    if (float_seconds(s, ms) == TSDB_OK)
        return TSDB_OK;
    return rfc3339(s, ms);
}
