/*
 * Numbers as the exposition formats write them (protocols.md section 8):
 * sample values in the shortest decimal form that reads back to the same
 * double, and millisecond timestamps as decimal seconds.  Pure code.
 */
#ifndef HTTP_NUMFMT_H
#define HTTP_NUMFMT_H

#include <stddef.h>
#include <stdint.h>

/* Room for any output of the functions below, NUL included. */
#define HTTP_NUM_MAX 32

/*
 * Writes v into out (HTTP_NUM_MAX bytes) and returns the length.  Finite
 * values get the first of 15, 16 or 17 significant digits (%g style) that
 * strtod reads back to the same bits, -0 included ("-0"); infinities are
 * "+Inf" and "-Inf", every NaN is "NaN" (so a NaN's payload is not
 * carried).
 */
size_t http_fmt_value(char *out, double v);

/*
 * Writes the timestamp ms (milliseconds since the epoch) as seconds with
 * exactly three decimals, or none when they would be ".000":
 * 1704067200123 -> "1704067200.123", -1500 -> "-1.500", 5000 -> "5".
 * Exact for every int64: no floating point is involved.
 */
size_t http_fmt_seconds(char *out, int64_t ms);

#endif
