/*
 * Shortest round-trip digits of a double (shortest.h).
 *
 * A double is m2 x 2^e2.  Its neighbours' midpoints bound the decimals
 * that read back as it: with mv = 4 m2 the bounds are mp = mv + 2 and
 * mm = mv - 1 or mv - 2 (the lower gap halves at a power of two).  All
 * three are multiplied by 2^e2 x 10^-e10 for a q chosen so that the
 * results (vp, vr, vm) keep enough digits, using 5^q or 5^-q to about
 * 125 bits; then the last digit is dropped from all three for as long as
 * vp and vm still differ after dropping it.  What is left of vr, rounded
 * by the last digit dropped (ties to even when the product was exact), is
 * the answer.  When mv's factors of 2 or 5 make a product exact, the
 * bounds themselves may be decimals of the interval, so trailing zeros
 * are tracked.
 */
#include "query/shortest.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define MANT_BITS      52
#define EXP_BITS       11
#define BIAS           1023
#define POW5_BITS      125
#define POW5_INV_BITS  125
#define POW5_COUNT     326
#define POW5_INV_COUNT 342

static uint64_t pow5[POW5_COUNT][2];         /* [lo, hi] */
static uint64_t pow5_inv[POW5_INV_COUNT][2]; /* [lo, hi] */
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

/* ceil(log2(5^e)), 1 for e = 0. */
static int pow5bits(int e)
{
    return (int)(((uint32_t)e * 1217359) >> 19) + 1;
}

static uint32_t log10_pow2(int e)
{
    return ((uint32_t)e * 78913) >> 18;
}

static uint32_t log10_pow5(int e)
{
    return ((uint32_t)e * 732923) >> 20;
}

/* ---- the tables, from exact integers ---- */

#define LIMBS 40 /* 1280 bits: 2^(pow5bits(341) - 1 + 125) fits */

struct big {
    uint32_t w[LIMBS]; /* little-endian */
};

static void big_mul_small(struct big *b, uint32_t m)
{
    uint64_t carry = 0;

    for (int i = 0; i < LIMBS; i++) {
        uint64_t x = (uint64_t)b->w[i] * m + carry;

        b->w[i] = (uint32_t)x;
        carry = x >> 32;
    }
}

static void big_div_small(struct big *b, uint32_t d)
{
    uint64_t rem = 0;

    for (int i = LIMBS - 1; i >= 0; i--) {
        uint64_t x = rem << 32 | b->w[i];

        b->w[i] = (uint32_t)(x / d);
        rem = x % d;
    }
}

/* The 128 bits of b starting at bit `from` (may be negative: shift up). */
static void big_bits(const struct big *b, int from, uint64_t out[2])
{
    out[0] = out[1] = 0;
    for (int k = 0; k < 128; k++) {
        int bit = from + k;

        if (bit < 0 || bit >= LIMBS * 32)
            continue;
        if (b->w[bit / 32] >> (bit % 32) & 1)
            out[k / 64] |= 1ULL << (k % 64);
    }
}

static void make_tables(void)
{
    struct big p = {{1}};

    /* pow5[i] = 5^i scaled to exactly POW5_BITS bits (rounded down). */
    for (int i = 0; i < POW5_COUNT; i++) {
        big_bits(&p, pow5bits(i) - POW5_BITS, pow5[i]);
        big_mul_small(&p, 5);
    }
    /* pow5_inv[q] = floor(2^(pow5bits(q) - 1 + POW5_INV_BITS) / 5^q) + 1 */
    for (int q = 0; q < POW5_INV_COUNT; q++) {
        struct big n;
        int shift = pow5bits(q) - 1 + POW5_INV_BITS;

        memset(&n, 0, sizeof(n));
        n.w[shift / 32] = 1u << (shift % 32);
        for (int k = 0; k < q; k++)
            big_div_small(&n, 5);
        big_bits(&n, 0, pow5_inv[q]);
        if (++pow5_inv[q][0] == 0)
            pow5_inv[q][1]++;
    }
}

/* ---- the method ---- */

/* (m * mul) >> j, mul 128 bits, j >= 64. */
static uint64_t mul_shift(uint64_t m, const uint64_t *mul, int j)
{
    unsigned __int128 lo = (unsigned __int128)m * mul[0];
    unsigned __int128 hi = (unsigned __int128)m * mul[1];
    unsigned __int128 sum = hi + (uint64_t)(lo >> 64);

    return (uint64_t)(sum >> (j - 64));
}

static int pow5_factor(uint64_t v)
{
    int n = 0;

    while (v % 5 == 0) {
        v /= 5;
        n++;
    }
    return n;
}

static bool multiple_of_pow5(uint64_t v, uint32_t p)
{
    return (uint32_t)pow5_factor(v) >= p;
}

static bool multiple_of_pow2(uint64_t v, uint32_t p)
{
    return (v & ((1ULL << p) - 1)) == 0;
}

static int decimal_length(uint64_t v)
{
    int n = 1;

    while (v >= 10) {
        v /= 10;
        n++;
    }
    return n;
}

struct scaled {
    uint64_t vr, vp, vm;
    int32_t e10;
    bool vm_zeros, vr_zeros; /* the dropped digits so far are all 0 */
};

/* vr, vp, vm = mv, mp, mm x 2^e2 scaled by 10^-e10. */
static void scale(uint64_t m2, int32_t e2, uint32_t mm_shift, bool accept,
                  struct scaled *s)
{
    uint64_t mv = 4 * m2;

    s->vm_zeros = s->vr_zeros = false;
    if (e2 >= 0) {
        uint32_t q = log10_pow2(e2) - (e2 > 3);
        int k = POW5_INV_BITS + pow5bits((int)q) - 1;
        int i = -e2 + (int)q + k;

        s->e10 = (int32_t)q;
        s->vr = mul_shift(4 * m2, pow5_inv[q], i);
        s->vp = mul_shift(4 * m2 + 2, pow5_inv[q], i);
        s->vm = mul_shift(4 * m2 - 1 - mm_shift, pow5_inv[q], i);
        if (q <= 21) {
            if (mv % 5 == 0)
                s->vr_zeros = multiple_of_pow5(mv, q);
            else if (accept)
                s->vm_zeros = multiple_of_pow5(mv - 1 - mm_shift, q);
            else
                s->vp -= multiple_of_pow5(mv + 2, q);
        }
    } else {
        uint32_t q = log10_pow5(-e2) - (-e2 > 1);
        int i = -e2 - (int)q;
        int k = pow5bits(i) - POW5_BITS;
        int j = (int)q - k;

        s->e10 = (int32_t)q + e2;
        s->vr = mul_shift(4 * m2, pow5[i], j);
        s->vp = mul_shift(4 * m2 + 2, pow5[i], j);
        s->vm = mul_shift(4 * m2 - 1 - mm_shift, pow5[i], j);
        if (q <= 1) {
            s->vr_zeros = true;
            if (accept)
                s->vm_zeros = mm_shift == 1;
            else
                s->vp--;
        } else if (q < 63) {
            s->vr_zeros = multiple_of_pow2(mv, q);
        }
    }
}

/* Drops digits while the bounds allow; returns the digits kept. */
static uint64_t trim(struct scaled *s, bool accept, int *removed)
{
    uint8_t last = 0;

    if (s->vm_zeros || s->vr_zeros) {
        while (s->vp / 10 > s->vm / 10) {
            s->vm_zeros &= s->vm % 10 == 0;
            s->vr_zeros &= last == 0;
            last = (uint8_t)(s->vr % 10);
            s->vr /= 10;
            s->vp /= 10;
            s->vm /= 10;
            ++*removed;
        }
        if (s->vm_zeros) {
            while (s->vm % 10 == 0) {
                s->vr_zeros &= last == 0;
                last = (uint8_t)(s->vr % 10);
                s->vr /= 10;
                s->vp /= 10;
                s->vm /= 10;
                ++*removed;
            }
        }
        if (s->vr_zeros && last == 5 && s->vr % 2 == 0)
            last = 4; /* exactly halfway: round to even */
        return s->vr +
               ((s->vr == s->vm && (!accept || !s->vm_zeros)) || last >= 5);
    }
    while (s->vp / 10 > s->vm / 10) {
        last = (uint8_t)(s->vr % 10);
        s->vr /= 10;
        s->vp /= 10;
        s->vm /= 10;
        ++*removed;
    }
    return s->vr + (s->vr == s->vm || last >= 5);
}

int query_shortest(double v, char *digits, int *exp10)
{
    uint64_t bits, mant, out;
    uint32_t exp;
    int32_t e2;
    uint64_t m2;
    struct scaled s;
    int removed = 0, n;
    bool accept;

    pthread_once(&tables_once, make_tables);
    memcpy(&bits, &v, sizeof(bits));
    mant = bits & ((1ULL << MANT_BITS) - 1);
    exp = (uint32_t)(bits >> MANT_BITS) & ((1u << EXP_BITS) - 1);
    if (exp == 0) {
        e2 = 1 - BIAS - MANT_BITS - 2;
        m2 = mant;
    } else {
        e2 = (int32_t)exp - BIAS - MANT_BITS - 2;
        m2 = (1ULL << MANT_BITS) | mant;
    }
    /* Round-half-even reading accepts the bounds of an even mantissa. */
    accept = (m2 & 1) == 0;
    scale(m2, e2, mant != 0 || exp <= 1, accept, &s);
    out = trim(&s, accept, &removed);
    n = decimal_length(out);
    for (int i = n - 1; i >= 0; i--) {
        digits[i] = (char)('0' + out % 10);
        out /= 10;
    }
    *exp10 = s.e10 + removed + n - 1;
    /* Whole numbers end in zeros the caller pads back. */
    while (n > 1 && digits[n - 1] == '0')
        n--;
    return n;
}
