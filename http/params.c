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

int http_parse_time(const char *s, int64_t *ms)
{
    if (plain_seconds(s, ms) == TSDB_OK)
        return TSDB_OK;
    if (float_seconds(s, ms) == TSDB_OK)
        return TSDB_OK;
    return rfc3339(s, ms);
}
