/*
 * Go's shortest float formatting (see strconv.h): the digits come from
 * printf's %e at increasing precision until strtod reads the same bits
 * back, which is the shortest round trip by construction.
 */
#include "query/strconv.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The shortest digits of finite v > 0 and its decimal exponent: v is
 * 0.d1d2d3... x 10^(exp10 + 1), i.e. d1.d2d3... x 10^exp10. */
static int shortest_digits(double v, char *digits, int *exp10)
{
    char e[40];
    int nd = 0;
    const char *p;

    for (int prec = 1; prec <= 17; prec++) {
        snprintf(e, sizeof(e), "%.*e", prec - 1, v);
        if (strtod(e, NULL) == v)
            break;
    }
    for (p = e; *p != 'e'; p++)
        if (*p >= '0' && *p <= '9')
            digits[nd++] = *p;
    *exp10 = atoi(p + 1);
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    return nd;
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
    nd = shortest_digits(v, digits, &exp10);
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
