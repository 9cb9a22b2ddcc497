/*
 * Internal bit I/O shared by the two chunk codecs (gorilla.c, pack.c); not
 * a public API.  Every bitstream here is MSB-first: the first bit written
 * is bit 7 of byte 0, and a field of n bits is stored most significant bit
 * first.  storage-format.md section "Conventions" defines this order.
 *
 * Three tools:
 * 1. bitio_or_put(): ORs a field into a zeroed buffer at any bit offset.
 *    Used by the Gorilla encoder, whose buffer lives between calls.
 * 2. struct bitio_w: a bounded writer into a caller's buffer (pack.c).
 * 3. struct bitio_r: a reader that never touches memory past its end;
 *    reads beyond the end yield zero bits and set the reader's position
 *    past nbits, which the caller checks once per step (bitio_r_over()).
 *
 * Invariants:
 * 1. Fields are 0..64 bits; a value wider than its field is a caller bug
 *    (the writers mask nothing off).
 * 2. A reader's pos only grows, so one check after a run of reads catches
 *    any read that went past the end.
 */
#ifndef TSDB_BITIO_H
#define TSDB_BITIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline uint64_t bitio_bswap64(uint64_t v)
{
#if defined(__GNUC__)
    return __builtin_bswap64(v);
#else
    v = (v & 0x00ff00ff00ff00ffULL) << 8 | (v >> 8 & 0x00ff00ff00ff00ffULL);
    v = (v & 0x0000ffff0000ffffULL) << 16 | (v >> 16 & 0x0000ffff0000ffffULL);
    return v << 32 | v >> 32;
#endif
}

/* The 8 bytes at p as a big-endian integer; p need not be aligned. */
static inline uint64_t bitio_load_be64(const uint8_t *p)
{
    uint64_t v;

    memcpy(&v, p, sizeof(v));
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    return v;
#else
    return bitio_bswap64(v);
#endif
}

static inline void bitio_store_be64(uint8_t *p, uint64_t v)
{
#if !(defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__)
    v = bitio_bswap64(v);
#endif
    memcpy(p, &v, sizeof(v));
}

/* Significant bits of v: 0 for 0, 64 for values with the top bit set. */
static inline unsigned bitio_width(uint64_t v)
{
    return v ? 64 - (unsigned)__builtin_clzll(v) : 0;
}

/*
 * ORs the low n bits of v (n <= 57, no higher bits set) into buf at bit
 * offset pos.  The bytes from pos / 8 to pos / 8 + 7 must exist and every
 * bit from pos on must be zero.
 */
static inline void bitio_or_put57(uint8_t *buf, uint64_t pos, uint64_t v,
                                  unsigned n)
{
    uint8_t *p = buf + (pos >> 3);
    unsigned shift = 64 - (unsigned)(pos & 7) - n;

    if (n == 0)
        return;
    bitio_store_be64(p, bitio_load_be64(p) | v << shift);
}

/* As bitio_or_put57() for any n <= 64; needs 9 bytes from pos / 8 on. */
static inline void bitio_or_put(uint8_t *buf, uint64_t pos, uint64_t v,
                                unsigned n)
{
    if (n > 57) {
        bitio_or_put57(buf, pos, v >> 32, n - 32);
        bitio_or_put57(buf, pos + n - 32, v & 0xffffffffu, 32);
    } else {
        bitio_or_put57(buf, pos, v, n);
    }
}

/*
 * Bounded writer: bits collect in acc (the low nacc bits, MSB-first) and
 * leave as whole bytes.  Running out of room sets full and drops the rest;
 * the caller checks full once at the end.
 */
struct bitio_w {
    uint8_t *p;
    uint8_t *end;
    uint64_t acc;
    unsigned nacc;
    bool full;
};

static inline void bitio_w_init(struct bitio_w *w, uint8_t *p, uint8_t *end)
{
    w->p = p;
    w->end = end;
    w->acc = 0;
    w->nacc = 0;
    w->full = false;
}

/* Writes the low n bits of v, n <= 32, no higher bits set. */
static inline void bitio_w_put32(struct bitio_w *w, uint64_t v, unsigned n)
{
    w->acc = w->acc << n | v;
    w->nacc += n;
    while (w->nacc >= 8) {
        w->nacc -= 8;
        if (w->p < w->end)
            *w->p++ = (uint8_t)(w->acc >> w->nacc);
        else
            w->full = true;
    }
}

/* Writes the low n bits of v, n <= 64. */
static inline void bitio_w_put(struct bitio_w *w, uint64_t v, unsigned n)
{
    if (n > 32) {
        bitio_w_put32(w, v >> 32, n - 32);
        bitio_w_put32(w, v & 0xffffffffu, 32);
    } else {
        bitio_w_put32(w, v, n);
    }
}

/* Pads the last byte with zero bits; returns the end of the output. */
static inline uint8_t *bitio_w_flush(struct bitio_w *w)
{
    if (w->nacc > 0)
        bitio_w_put32(w, 0, 8 - w->nacc);
    return w->p;
}

/* Reader over buf[0..len): pos counts bits from the start of buf. */
struct bitio_r {
    const uint8_t *buf;
    size_t len;
    uint64_t pos;
};

static inline void bitio_r_init(struct bitio_r *r, const uint8_t *buf,
                                size_t len, uint64_t pos)
{
    r->buf = buf;
    r->len = len;
    r->pos = pos;
}

/* The 8 bytes from byte i on, bytes past len reading as zero. */
static inline uint64_t bitio_load_safe(const uint8_t *buf, size_t len,
                                       uint64_t i)
{
    uint64_t v = 0;

    if (i + 8 <= len)
        return bitio_load_be64(buf + i);
    for (unsigned k = 0; k < 8; k++)
        v = v << 8 | (i + k < len ? buf[i + k] : 0);
    return v;
}

/* The next 57 bits left-aligned in the result, without consuming them. */
static inline uint64_t bitio_r_peek(const struct bitio_r *r)
{
    return bitio_load_safe(r->buf, r->len, r->pos >> 3) << (r->pos & 7);
}

/* Reads n bits, 1 <= n <= 57. */
static inline uint64_t bitio_r_get57(struct bitio_r *r, unsigned n)
{
    uint64_t v = bitio_r_peek(r) >> (64 - n);

    r->pos += n;
    return v;
}

/* Reads n bits, 0 <= n <= 64. */
static inline uint64_t bitio_r_get(struct bitio_r *r, unsigned n)
{
    uint64_t hi;

    if (n == 0)
        return 0;
    if (n <= 57)
        return bitio_r_get57(r, n);
    hi = bitio_r_get57(r, n - 32);
    return hi << 32 | bitio_r_get57(r, 32);
}

/* True once any read went past the last bit of the input. */
static inline bool bitio_r_over(const struct bitio_r *r)
{
    return r->pos > (uint64_t)r->len * 8;
}

/*
 * Gorilla XOR value codes, shared so that both codecs write and read one
 * format (storage-format.md section "XOR value codes").  The window is
 * (lead, trail): the XOR's meaningful bits lie between lead leading and
 * trail trailing zero bits; it starts as (0, 0).
 */
#define BITIO_XOR_LEAD_MAX 31

/*
 * For a non-zero x and the current window (wl, wt), sets *lead and *trail
 * to x's own window and returns true when the current one should be
 * reused.  A new window costs 11 bits of header, so it is taken over a
 * fitting one only when it is shorter by more than that.
 */
static inline bool bitio_xor_reuse(uint64_t x, unsigned wl, unsigned wt,
                                   unsigned *lead, unsigned *trail)
{
    unsigned l = (unsigned)__builtin_clzll(x);
    unsigned t = (unsigned)__builtin_ctzll(x);

    *lead = l > BITIO_XOR_LEAD_MAX ? BITIO_XOR_LEAD_MAX : l;
    *trail = t;
    return *lead >= wl && t >= wt && (64 - *lead - t) + 11 >= 64 - wl - wt;
}

/*
 * Reads one XOR code and applies it to *prev, updating the window.
 * Returns false for a new window wider than 64 bits (a corrupt code).
 */
static inline bool bitio_xor_get(struct bitio_r *r, uint64_t *prev,
                                 unsigned *lead, unsigned *trail)
{
    uint64_t w = bitio_r_peek(r);
    unsigned len;

    if (!(w >> 63)) {
        r->pos += 1;
        return true;
    }
    if (!(w >> 62 & 1)) {
        r->pos += 2;
        *prev ^= bitio_r_get(r, 64 - *lead - *trail) << *trail;
        return true;
    }
    len = (unsigned)(w >> 51) & 63;
    if (len == 0)
        len = 64;
    if (((unsigned)(w >> 57) & 31) + len > 64)
        return false;
    *lead = (unsigned)(w >> 57) & 31;
    *trail = 64 - *lead - len;
    r->pos += 13;
    *prev ^= bitio_r_get(r, len) << *trail;
    return true;
}

#endif
