/*
 * Numbers as Go's strconv writes them, which is what Prometheus's answers
 * and labels contain: the shortest decimal digits that read back to the
 * same double, laid out without an exponent (FormatFloat 'f', -1), or in
 * the style of Go's JSON encoder, which switches to an exponent below
 * 1e-6 and from 1e21 on ("1e-07", "1e+21").  Pure code.
 */
#ifndef QUERY_STRCONV_H
#define QUERY_STRCONV_H

#include <stddef.h>
#include <stdint.h>

/* Room for any output below, NUL included: 17 digits, a sign, a point
 * and up to 324 zeros of a subnormal written out in full. */
#define QUERY_FLOAT_MAX 352

enum query_float_style {
    QUERY_FLOAT_PLAIN, /* count_values labels: never an exponent */
    QUERY_FLOAT_JSON,  /* API values: an exponent outside [1e-6, 1e21) */
};

/* Writes v in decimal into out (21 bytes at least, no NUL written) and
 * returns the length; the answers print millions of these, printf is the
 * slow part of them. */
size_t query_format_u64(char *out, uint64_t v);

/* Writes v into out (QUERY_FLOAT_MAX bytes) and returns the length.
 * NaN is "NaN", infinities "+Inf" and "-Inf". */
size_t query_format_float(char *out, double v, enum query_float_style style);

#endif
