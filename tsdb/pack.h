/*
 * The sealed-chunk codec.  When a head chunk is cut, its samples are
 * re-encoded for storage: timestamps as a regular grid (first timestamp,
 * interval) plus bit-packed residuals when the cadence is regular, values as
 * scaled decimal integers (v = m / 10^k, m bit-packed as deltas) when every
 * value of the chunk round-trips that way, and Gorilla XOR otherwise.
 * Bitstream: storage-format.md section "Packed chunk".
 *
 * Pure code, like gorilla.c.  Every float64 round-trips bit-exactly.
 */
#ifndef TSDB_PACK_H
#define TSDB_PACK_H

#include <stddef.h>
#include <stdint.h>

/*
 * Encodes n samples (timestamps non-decreasing) into out[0..cap).
 * Returns TSDB_OK with *len set, TSDB_EFULL if cap is too small (out is
 * then unspecified), TSDB_EINVAL for n == 0 or n > GORILLA_MAX_SAMPLES.
 */
int pack_encode(const int64_t *ts, const double *vs, uint32_t n, uint8_t *out,
                size_t cap, size_t *len);

/*
 * Decodes n samples from in[0..len) into ts[] and vs[] (room for n each).
 * Returns TSDB_OK or TSDB_ECORRUPT; never reads past in + len.
 */
int pack_decode(const uint8_t *in, size_t len, uint32_t n, int64_t *ts,
                double *vs);

#endif
