/*
 * Value and timestamp formatting; see numfmt.h.  Layer: http/ helpers.
 *
 * Why 15, 16, 17: any decimal of up to 15 digits survives a trip through
 * a double (DBL_DIG), so a value that came in as such a decimal (most
 * measurements) is written back as it came, %g dropping the padding
 * zeros; 17 digits always round-trip, so the loop always ends exact.
 * LIMIT: strtod and printf read LC_NUMERIC, which must stay "C" (as
 * expfmt.h requires too).  Behaviour otherwise: a comma as the decimal
 * point in the output.
 */
#include "http/numfmt.h"

#include "query/strconv.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t http_fmt_value(char *out, double v)
{
    int n = 0;

    if (isnan(v)) {
        memcpy(out, "NaN", 4);
        return 3;
    }
    if (isinf(v)) {
        memcpy(out, v > 0 ? "+Inf" : "-Inf", 5);
        return 4;
    }
    for (int digits = 15; digits <= 17; digits++) {
        double back;

        n = snprintf(out, HTTP_NUM_MAX, "%.*g", digits, v);
        back = strtod(out, NULL);
        if (memcmp(&back, &v, sizeof(v)) == 0)
            break;
    }
    return (size_t)n;
}

size_t http_fmt_seconds(char *out, int64_t ms)
{
    /* Unsigned magnitude, so that INT64_MIN needs no special case. */
    uint64_t mag = ms < 0 ? (uint64_t)0 - (uint64_t)ms : (uint64_t)ms;
    unsigned frac = (unsigned)(mag % 1000);
    size_t n = 0;

    /* By hand, not printf: answers print millions of timestamps. */
    if (ms < 0)
        out[n++] = '-';
    n += query_format_u64(out + n, mag / 1000);
    if (frac != 0) {
        out[n++] = '.';
        out[n++] = (char)('0' + frac / 100);
        out[n++] = (char)('0' + frac / 10 % 10);
        out[n++] = (char)('0' + frac % 10);
    }
    out[n] = '\0';
    return n;
}
