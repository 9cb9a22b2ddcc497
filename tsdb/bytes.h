/*
 * Byte-level helpers shared by the codecs and the on-disk layouts:
 * big-endian fixed-width integers (keys sort numerically under memcmp),
 * LEB128 varints and zigzag.  storage-format.md section "Conventions"
 * defines each encoding; these are the only implementations.
 *
 * The readers take an end pointer and report failure instead of reading
 * past it: every length comes from untrusted bytes.
 */
#ifndef TSDB_BYTES_H
#define TSDB_BYTES_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static inline uint64_t get_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

static inline void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

/* Signed key component: flip the sign bit so that memcmp order equals
 * numeric order for negative timestamps too. */
static inline void put_be64_signed(uint8_t *p, int64_t v)
{
    put_be64(p, (uint64_t)v ^ (UINT64_C(1) << 63));
}

static inline int64_t get_be64_signed(const uint8_t *p)
{
    return (int64_t)(get_be64(p) ^ (UINT64_C(1) << 63));
}

static inline uint64_t zigzag_enc(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static inline int64_t zigzag_dec(uint64_t v)
{
    return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

/* Writes v as LEB128 at p (room for 10 bytes needed); returns bytes used. */
static inline size_t varint_put(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

/* Reads a LEB128 varint from [*p, end); advances *p.  Returns 0 on success,
 * -1 if the varint runs past end or is longer than 10 bytes. */
static inline int varint_get(const uint8_t **p, const uint8_t *end,
                             uint64_t *out)
{
    uint64_t v = 0;
    const uint8_t *q = *p;
    for (int shift = 0; shift < 70; shift += 7) {
        if (q >= end)
            return -1;
        uint8_t b = *q++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *p = q;
            *out = v;
            return 0;
        }
    }
    return -1;
}

static inline uint64_t double_bits(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof(u));
    return u;
}

static inline double bits_double(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof(d));
    return d;
}

#endif
