/*
 * Time zones from TZif files (RFC 8536) and phases within a season
 * (season.h).
 *
 * A zone is its list of transitions (UTC time from which an offset
 * holds), taken from the file's 64-bit block, plus the footer's POSIX TZ
 * rule for times after the last transition ("CET-1CEST,M3.5.0,M10.5.0/3"):
 * the rule gives the two offsets and the days on which they switch.
 */
#include "anomaly/season.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tsdb/error.h"

#define ZONEINFO "/usr/share/zoneinfo/"
#define TZIF_MAX (1 << 20)

/* Mm.w.d/time: month 1-12, week 1-5 (5 = last), weekday 0-6 (Sunday 0),
 * local time of the switch in seconds. */
struct tz_switch {
    int month, week, wday;
    int64_t at;
};

struct anomaly_tz {
    size_t n;
    int64_t *when;   /* transition times, seconds, ascending */
    int32_t *offset; /* offset from UTC from when[i] on, seconds */
    int32_t first;   /* offset before the first transition */
    /* The footer rule, for times past when[n - 1]. */
    bool has_rule, has_dst;
    int32_t std_off, dst_off;
    struct tz_switch start, end; /* DST starts, ends (local times) */
};

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

static int64_t be64(const uint8_t *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

/* ---- the footer: a POSIX TZ string ---- */

/* Skips a zone abbreviation: letters, or <...>. */
static const char *skip_name(const char *s)
{
    if (*s == '<') {
        const char *e = strchr(s, '>');
        return e ? e + 1 : NULL;
    }
    while (isalpha((unsigned char)*s))
        s++;
    return s;
}

/* [+-]hh[:mm[:ss]] into seconds. */
static const char *read_hms(const char *s, int64_t *out)
{
    int sign = 1;
    long h = 0, m = 0, sec = 0;

    if (*s == '+' || *s == '-')
        sign = *s++ == '-' ? -1 : 1;
    if (!isdigit((unsigned char)*s))
        return NULL;
    h = strtol(s, (char **)&s, 10);
    if (*s == ':') {
        m = strtol(s + 1, (char **)&s, 10);
        if (*s == ':')
            sec = strtol(s + 1, (char **)&s, 10);
    }
    *out = sign * (h * 3600 + m * 60 + sec);
    return s;
}

static const char *read_switch(const char *s, struct tz_switch *w)
{
    if (*s != 'M')
        return NULL; /* Jn and n forms: not used by tzdata's zones */
    w->month = (int)strtol(s + 1, (char **)&s, 10);
    if (*s++ != '.')
        return NULL;
    w->week = (int)strtol(s, (char **)&s, 10);
    if (*s++ != '.')
        return NULL;
    w->wday = (int)strtol(s, (char **)&s, 10);
    w->at = 7200;
    if (*s == '/')
        s = read_hms(s + 1, &w->at);
    if (s == NULL || w->month < 1 || w->month > 12 || w->week < 1 ||
        w->week > 5 || w->wday < 0 || w->wday > 6)
        return NULL;
    return s;
}

/* "STD offset [DST [offset] [,start,end]]"; POSIX offsets are west of
 * UTC, hence the minus signs. */
static bool read_rule(struct anomaly_tz *tz, const char *s)
{
    int64_t off;

    if ((s = skip_name(s)) == NULL || (s = read_hms(s, &off)) == NULL)
        return false;
    tz->std_off = (int32_t)-off;
    tz->has_rule = true;
    if (*s == '\0')
        return true;
    if ((s = skip_name(s)) == NULL)
        return false;
    tz->dst_off = tz->std_off + 3600;
    if (*s != ',' && *s != '\0') {
        if ((s = read_hms(s, &off)) == NULL)
            return false;
        tz->dst_off = (int32_t)-off;
    }
    if (*s++ != ',' || (s = read_switch(s, &tz->start)) == NULL ||
        *s++ != ',' || (s = read_switch(s, &tz->end)) == NULL)
        return false;
    tz->has_dst = true;
    return true;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int64_t year_of(int64_t secs)
{
    int64_t days = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400;
    int64_t y = 1970 + days / 366;

    while (days_from_civil(y + 1, 1, 1) <= days)
        y++;
    while (days_from_civil(y, 1, 1) > days)
        y--;
    return y;
}

/* Local seconds since the epoch at which switch w happens in year y. */
static int64_t switch_local(const struct tz_switch *w, int64_t y)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int64_t first = days_from_civil(y, w->month, 1);
    int wday_first = (int)(((first % 7) + 11) % 7); /* 1970-01-01: Thu */
    int day = 1 + (w->wday - wday_first + 7) % 7 + (w->week - 1) * 7;
    int last = mdays[w->month - 1] +
               (w->month == 2 && (y % 4 == 0 && (y % 100 || y % 400 == 0)));

    while (day > last)
        day -= 7;
    return (first + day - 1) * 86400 + w->at;
}

static int32_t rule_offset(const struct anomaly_tz *tz, int64_t secs)
{
    int64_t y, on, off;

    if (!tz->has_dst)
        return tz->std_off;
    y = year_of(secs + tz->std_off);
    on = switch_local(&tz->start, y) - tz->std_off;
    off = switch_local(&tz->end, y) - tz->dst_off;
    /* Southern zones have their summer across the new year. */
    if (on < off)
        return secs >= on && secs < off ? tz->dst_off : tz->std_off;
    return secs >= on || secs < off ? tz->dst_off : tz->std_off;
}

/* ---- the file ---- */

/* Reads the version 2+ block (64-bit times) starting at p. */
static int read_block(struct anomaly_tz *tz, const uint8_t *p, size_t len)
{
    uint32_t isut, isstd, leap, timecnt, typecnt, charcnt;
    const uint8_t *times, *idx, *types;
    size_t need;

    if (len < 44 || memcmp(p, "TZif", 4) != 0)
        return TSDB_EINVAL;
    isut = be32(p + 20);
    isstd = be32(p + 24);
    leap = be32(p + 28);
    timecnt = be32(p + 32);
    typecnt = be32(p + 36);
    charcnt = be32(p + 40);
    need = 44 + (size_t)timecnt * 9 + (size_t)typecnt * 6 + charcnt +
           (size_t)leap * 12 + isstd + isut;
    if (typecnt == 0 || need > len)
        return TSDB_EINVAL;
    times = p + 44;
    idx = times + (size_t)timecnt * 8;
    types = idx + timecnt;
    tz->when = malloc((timecnt ? timecnt : 1) * sizeof(*tz->when));
    tz->offset = malloc((timecnt ? timecnt : 1) * sizeof(*tz->offset));
    if (!tz->when || !tz->offset)
        return TSDB_ENOMEM;
    for (uint32_t i = 0; i < timecnt; i++) {
        if (idx[i] >= typecnt)
            return TSDB_EINVAL;
        tz->when[i] = be64(times + (size_t)i * 8);
        tz->offset[i] = (int32_t)be32(types + (size_t)idx[i] * 6);
    }
    tz->n = timecnt;
    tz->first = (int32_t)be32(types);
    /* The footer: "\nRULE\n" after the block. */
    p += need;
    len -= need;
    if (len > 2 && p[0] == '\n') {
        char rule[128];
        const uint8_t *e = memchr(p + 1, '\n', len - 1);

        if (e && (size_t)(e - p - 1) < sizeof(rule)) {
            memcpy(rule, p + 1, (size_t)(e - p - 1));
            rule[e - p - 1] = '\0';
            if (rule[0] && !read_rule(tz, rule))
                return TSDB_EINVAL;
        }
    }
    return TSDB_OK;
}

static int parse_tzif(struct anomaly_tz *tz, const uint8_t *p, size_t len)
{
    size_t v1;

    if (len < 44 || memcmp(p, "TZif", 4) != 0 || p[4] < '2')
        return TSDB_EINVAL;
    /* Skip the 32-bit block: its counts are in the first header. */
    v1 = 44 + (size_t)be32(p + 32) * 5 + (size_t)be32(p + 36) * 6 +
         be32(p + 40) + (size_t)be32(p + 28) * 8 + be32(p + 24) + be32(p + 20);
    if (v1 >= len)
        return TSDB_EINVAL;
    return read_block(tz, p + v1, len - v1);
}

static bool name_ok(const char *name)
{
    if (*name == '\0' || *name == '/' || strstr(name, "..") != NULL)
        return false;
    for (; *name; name++)
        if (!(isalnum((unsigned char)*name) || strchr("/_+-", *name)))
            return false;
    return true;
}

int anomaly_tz_load(const char *name, struct anomaly_tz **out, char *err,
                    size_t errlen)
{
    char path[512];
    uint8_t *buf;
    size_t len = 0;
    FILE *f;
    int rc;
    struct anomaly_tz *tz;

    if (!name_ok(name) || strlen(name) > 200) {
        snprintf(err, errlen, "unknown time zone \"%s\"", name);
        return TSDB_EINVAL;
    }
    snprintf(path, sizeof(path), ZONEINFO "%s", name);
    f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, errlen,
                 "unknown time zone \"%s\" (no %s; zones are IANA names such "
                 "as Europe/Paris)",
                 name, path);
        return TSDB_EINVAL;
    }
    buf = malloc(TZIF_MAX);
    tz = calloc(1, sizeof(*tz));
    if (buf == NULL || tz == NULL) {
        fclose(f);
        free(buf);
        free(tz);
        return TSDB_ENOMEM;
    }
    len = fread(buf, 1, TZIF_MAX, f);
    fclose(f);
    rc = parse_tzif(tz, buf, len);
    free(buf);
    if (rc != TSDB_OK) {
        if (rc == TSDB_EINVAL)
            snprintf(err, errlen,
                     "time zone \"%s\": %s is not a TZif file "
                     "of version 2 or later",
                     name, path);
        anomaly_tz_free(tz);
        return rc;
    }
    *out = tz;
    return TSDB_OK;
}

void anomaly_tz_free(struct anomaly_tz *tz)
{
    if (tz == NULL)
        return;
    free(tz->when);
    free(tz->offset);
    free(tz);
}

int64_t anomaly_tz_offset(const struct anomaly_tz *tz, int64_t t)
{
    int64_t secs = t >= 0 ? t / 1000 : (t - 999) / 1000;
    size_t lo = 0, hi;

    if (tz == NULL)
        return 0;
    if (tz->n == 0 || secs < tz->when[0])
        return tz->n == 0 && tz->has_rule ? rule_offset(tz, secs) * 1000LL
                                          : tz->first * 1000LL;
    if (secs >= tz->when[tz->n - 1] && tz->has_rule)
        return rule_offset(tz, secs) * 1000LL;
    hi = tz->n;
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;

        if (tz->when[mid] <= secs)
            lo = mid;
        else
            hi = mid;
    }
    return tz->offset[lo] * 1000LL;
}

uint32_t anomaly_phase(const struct anomaly_tz *tz,
                       const struct anomaly_config *cfg, int64_t t)
{
    /* 1970-01-01 was a Thursday: weeks start on Monday, 4 days later. */
    int64_t origin =
        cfg->season_ms % (7 * 86400000LL) == 0 ? 4 * 86400000LL : 0;
    int64_t local = t + anomaly_tz_offset(tz, t) - origin;
    int64_t in;

    if (cfg->season_ms <= 0 || cfg->interval_ms <= 0)
        return 0;
    in = local % cfg->season_ms;
    if (in < 0)
        in += cfg->season_ms;
    return (uint32_t)(in / cfg->interval_ms);
}
