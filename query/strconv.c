/*
 * Go's float formatting (see strconv.h): the shortest digits come from
 * shortest.c; this file lays them out.
 */
#include "query/strconv.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/shortest.h"

size_t query_format_u64(char *out, uint64_t v)
{
    char tmp[20];
    size_t n = 0;

    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return n;
}

size_t query_format_float(char *out, double v, enum query_float_style style)
{
    char digits[24] = {0};
    int nd, exp10;
    size_t len = 0;

    if (isnan(v))
        return (size_t)snprintf(out, QUERY_FLOAT_MAX, "NaN");
    if (isinf(v))
        return (size_t)snprintf(out, QUERY_FLOAT_MAX, v > 0 ? "+Inf" : "-Inf");
    if (v == 0)
        return (size_t)snprintf(out, QUERY_FLOAT_MAX, signbit(v) ? "-0" : "0");
    if (v < 0) {
        out[len++] = '-';
        v = -v;
    }
    /* Whole numbers below 2^53 are most samples (counters, gauges of
     * counts) and print exactly as integers. */
    if (v < 9007199254740992.0 && v == (double)(uint64_t)v) {
        len += query_format_u64(out + len, (uint64_t)v);
        out[len] = '\0';
        return len;
    }
    nd = query_shortest(v, digits, &exp10);
    if (style == QUERY_FLOAT_JSON && (v < 1e-6 || v >= 1e21)) {
        out[len++] = digits[0];
        if (nd > 1) {
            out[len++] = '.';
            memcpy(out + len, digits + 1, (size_t)nd - 1);
            len += (size_t)nd - 1;
        }
        len += (size_t)snprintf(out + len, QUERY_FLOAT_MAX - len, "e%c%02d",
                                exp10 < 0 ? '-' : '+', abs(exp10));
        return len;
    }
    if (exp10 < 0) {
        out[len++] = '0';
        out[len++] = '.';
        for (int i = 0; i < -exp10 - 1; i++)
            out[len++] = '0';
        memcpy(out + len, digits, (size_t)nd);
        len += (size_t)nd;
    } else {
        for (int i = 0; i <= exp10; i++)
            out[len++] = i < nd ? digits[i] : '0';
        if (nd > exp10 + 1) {
            out[len++] = '.';
            memcpy(out + len, digits + exp10 + 1, (size_t)(nd - exp10 - 1));
            len += (size_t)(nd - exp10 - 1);
        }
    }
    out[len] = '\0';
    return len;
}
