/*
 * The shortest decimal digits that read back as a given double, the
 * closest to it where several are as short: what Go's strconv (and so
 * Prometheus) prints.  Ryū's method (Adams, PLDI 2018): the bounds of the
 * double's rounding interval are scaled by a power of ten taken from a
 * 128-bit table, and digits are removed while both bounds still differ.
 * Pure code; the tables are computed on first use.
 */
#ifndef QUERY_SHORTEST_H
#define QUERY_SHORTEST_H

/* Writes the digits of finite v > 0 (at most 17, no NUL) and returns how
 * many; v = d1.d2d3... x 10^*exp10. */
int query_shortest(double v, char *digits, int *exp10);

#endif
