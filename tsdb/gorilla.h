/*
 * The Gorilla codec (Pelkonen et al., VLDB 2015): timestamps as
 * delta-of-delta, values XORed against the previous value.  It is the
 * encoding of open chunks in the head (cheap to append one sample at a time)
 * and the fallback encoding of sealed chunks.  Bitstream:
 * storage-format.md section "Gorilla bitstream".
 *
 * Pure code: bytes in, bytes out; no LMDB, no logging, no globals.  Every
 * float64 round-trips bit-exactly (NaN payloads, -0.0, infinities).
 */
#ifndef TSDB_GORILLA_H
#define TSDB_GORILLA_H

#include <stddef.h>
#include <stdint.h>

/* A chunk never holds more samples than this (count fits a u16). */
#define GORILLA_MAX_SAMPLES 65535

/* Appending encoder; caller-owned struct, buffer owned by the encoder. */
struct gorilla_enc {
    uint8_t *buf;    /* grows by realloc; NULL until the first append */
    uint32_t cap;    /* bytes allocated */
    uint32_t nbits;  /* bits written */
    uint16_t count;  /* samples appended */
    uint8_t lead;    /* leading zeros of the current XOR window */
    uint8_t trail;   /* trailing zeros of the current XOR window */
    int64_t t_prev;  /* last timestamp */
    int64_t dt_prev; /* last delta */
    uint64_t v_prev; /* last value's bits */
};

void gorilla_enc_init(struct gorilla_enc *e);

/* Frees the buffer; the struct may be initialised again. */
void gorilla_enc_release(struct gorilla_enc *e);

/*
 * Appends (t, v).  Timestamps must not decrease (the caller enforces it).
 * Returns TSDB_OK, TSDB_EFULL at GORILLA_MAX_SAMPLES, TSDB_ENOMEM (the
 * encoder is unchanged on either error).
 */
int gorilla_enc_append(struct gorilla_enc *e, int64_t t, double v);

/* Bytes of the encoded stream so far: ceil(nbits / 8). */
size_t gorilla_enc_len(const struct gorilla_enc *e);

/*
 * Decodes count samples from buf[0..len) into ts[] and vs[] (room for count
 * each).  Returns TSDB_OK, or TSDB_ECORRUPT if the stream ends early or
 * holds an impossible code; never reads past buf + len.
 */
int gorilla_decode(const uint8_t *buf, size_t len, uint32_t count, int64_t *ts,
                   double *vs);

#endif
