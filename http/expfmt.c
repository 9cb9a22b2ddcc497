/*
 * Streaming parser for the Prometheus text and OpenMetrics exposition
 * formats; the contract is in expfmt.h.  It sits under the HTTP import
 * route and the benchmark tool and knows nothing of storage.
 *
 * feed() cuts the input at newlines with memchr.  A whole line inside the
 * caller's buffer is parsed where it lies; only a line cut by a feed
 * boundary is copied, into carry.  parse_line() walks a line once, left to
 * right, copying names and unescaped values NUL-terminated into scratch
 * and pointing labels[] at them, so a sample costs no allocation.
 *
 * Invariants:
 * 1. carry_len > 0 exactly when the input so far ends inside a line that
 *    still fits EXPFMT_MAX_LINE; skipping is set exactly when it ends
 *    inside a line already reported as too long.  Never both.
 * 2. A line handed to parse_line() holds no '\n', is at most
 *    EXPFMT_MAX_LINE bytes long, and is followed by a readable '\n' (its
 *    own in the caller's buffer, or one written after it in carry).  The
 *    scanning loops rely on it to stop without checking the end.
 * 3. Parsing one line writes at most (line length + 1) bytes to scratch:
 *    every string copied leaves behind at least one byte of the line that
 *    is not copied (a quote, '=', '{', a blank or the line end), which pays
 *    for its NUL, and unescaping never makes a value longer.
 * 4. Each line adds one to lines and then is delivered, ignored (comment,
 *    blank text line, anything after a reported "data after # EOF"), or
 *    adds one to errors.  The only error not tied to a line of its own is a
 *    missing "# EOF", added by finish().
 */
#include "http/expfmt.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Byte classes, one bit each, for the hot loops. */
#define CL_ALPHA 1  /* A-Z a-z _ : may start any name */
#define CL_DIGIT 2  /* 0-9 */
#define CL_COLON 4  /* ':' : metric names only */
#define CL_VSTOP 8  /* ends a run of plain value bytes: " \\ NUL \n >= 0x80 */
#define CL_BLANK 16 /* ' ' '\t' */

#define CL_NAME_START  (CL_ALPHA | CL_COLON)
#define CL_NAME_CHAR   (CL_ALPHA | CL_DIGIT | CL_COLON)
#define CL_LABEL_START CL_ALPHA
#define CL_LABEL_CHAR  (CL_ALPHA | CL_DIGIT)

/* clang-format off */
static const unsigned char cls[256] = {
    8,  0,  0,  0,  0,  0,  0,  0,  0,  16, 8,  0,  0,  0,  0,  0,
    0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
    16, 0,  8,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
    2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  4,  0,  0,  0,  0,  0,
    0,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,
    1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  0,  8,  0,  0,  1,
    0,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,
    1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  0,  0,  0,  0,  0,
    8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,
    8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,
    8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,
    8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,
    8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,
    8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,
    8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,
    8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,
};
/* clang-format on */

/* Limits spelled out in error texts. */
#define STR_(x) #x
#define STR(x)  STR_(x)

/* Scratch room: invariant 3 needs EXPFMT_MAX_LINE + 1; the rest is
 * margin that costs nothing. */
#define SCRATCH_SIZE (EXPFMT_MAX_LINE + 64)

/* Bytes per name cache slot, so names up to 62 bytes are cached. */
#define NAME_SLOT 64

/* Sample values with at most this many significant digits and a power of
 * ten within +-22 convert exactly with one multiply or divide: both
 * operands are exact doubles, so the one rounding is the correct one. */
#define FAST_MAX_DIGITS   19
#define FAST_MAX_POW10    22
#define FAST_MAX_MANTISSA (UINT64_C(1) << 53)
/* Exponents past this are saturated: no finite double needs more. */
#define EXP_SATURATE 100000

static const double pow10_exact[FAST_MAX_POW10 + 1] = {
    1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

static const int64_t pow10_int[19] = {
    INT64_C(1),
    INT64_C(10),
    INT64_C(100),
    INT64_C(1000),
    INT64_C(10000),
    INT64_C(100000),
    INT64_C(1000000),
    INT64_C(10000000),
    INT64_C(100000000),
    INT64_C(1000000000),
    INT64_C(10000000000),
    INT64_C(100000000000),
    INT64_C(1000000000000),
    INT64_C(10000000000000),
    INT64_C(100000000000000),
    INT64_C(1000000000000000),
    INT64_C(10000000000000000),
    INT64_C(100000000000000000),
    INT64_C(1000000000000000000),
};

/* Where parsing of one line stands, and why it failed. */
struct cur {
    const char *line; /* first byte of the line, for columns */
    const char *s;    /* next byte to read */
    const char *end;  /* one past the last byte */
    char *w;          /* next free byte of scratch */
    bool lax;         /* text format: blanks are free-form */
    const char *err_at;
    const char *err;
};

enum num_rc {
    NUM_OK,
    NUM_BAD,   /* not a number in the accepted syntax */
    NUM_RANGE, /* well formed, but does not fit */
};

/* A decimal number as read, before conversion. */
struct decnum {
    bool neg;
    uint64_t m;    /* first FAST_MAX_DIGITS significant digits */
    int digits;    /* significant digits seen, dropped ones included */
    int64_t exp10; /* value = m x 10^exp10, up to the dropped digits */
};

static bool fail(struct cur *c, const char *at, const char *msg)
{
    c->err_at = at;
    c->err = msg;
    return false;
}

static bool at_end(const struct cur *c)
{
    return c->s == c->end;
}

static bool is_blank(char ch)
{
    return cls[(unsigned char)ch] & CL_BLANK;
}

static void skip_blanks(struct cur *c)
{
    while (is_blank(*c->s))
        c->s++;
}

/* Moves past the separator between two tokens: one or more blanks in the
 * text format, exactly one space in OpenMetrics.  False if there is none. */
static bool take_sep(struct cur *c)
{
    if (at_end(c) || (c->lax ? !is_blank(*c->s) : *c->s != ' '))
        return false;
    if (c->lax)
        skip_blanks(c);
    else
        c->s++;
    return true;
}

/* The end of the token at c->s: the next separator byte or the line end. */
static const char *token_end(const struct cur *c)
{
    const char *e = c->s;

    if (c->lax) {
        while (e < c->end && !is_blank(*e))
            e++;
    } else {
        const char *sp = memchr(e, ' ', (size_t)(c->end - e));
        e = sp ? sp : c->end;
    }
    return e;
}

/*
 * Copies the identifier at c->s (first byte in class first, the rest in
 * class rest) NUL-terminated to scratch.  Returns the copy, or NULL if no
 * identifier starts at c->s.
 */
static const char *copy_ident(struct cur *c, unsigned first, unsigned rest)
{
    const char *b = c->s, *e = b;
    char *out = c->w;

    if (e == c->end || !(cls[(unsigned char)*e] & first))
        return NULL;

    /* Names are short: copying while scanning beats a memcpy call. */
    out[0] = *e;
    for (e++; cls[(unsigned char)*e] & rest; e++)
        out[e - b] = *e;
    out[e - b] = '\0';
    c->w += (e - b) + 1;
    c->s = e;
    return out;
}

/*
 * copy_ident() through a one-entry cache per label position: the names
 * of one position mostly repeat from line to line, and comparing against
 * the last one costs less than copying.  slot: NAME_SLOT bytes, a length
 * byte (0: empty) then the name and its NUL.  The name returned may be the
 * slot's, valid until the slot changes on a later line.
 */
static const char *take_name(struct cur *c, char *slot, unsigned first,
                             unsigned rest)
{
    size_t len = (unsigned char)slot[0];
    const char *b = c->s, *name;

    /* c->s[len] is at worst the line's '\n' (invariant 2). */
    if (len > 0 && (size_t)(c->end - b) >= len &&
        memcmp(b, slot + 1, len) == 0 && !(cls[(unsigned char)b[len]] & rest)) {
        c->s += len;
        return slot + 1;
    }
    name = copy_ident(c, first, rest);
    len = (size_t)(c->s - b);
    if (name != NULL && len < NAME_SLOT - 1) {
        slot[0] = (char)len;
        memcpy(slot + 1, name, len + 1);
    }
    return name;
}

/* Length of the valid UTF-8 sequence at s (shortest form, no surrogates,
 * at most U+10FFFF), or 0 if it is not one. */
static size_t utf8_seq(const unsigned char *s, const unsigned char *end)
{
    unsigned char lo = 0x80, hi = 0xBF;
    size_t n, i;

    if (s[0] < 0x80)
        return 1;
    if (s[0] < 0xC2 || s[0] > 0xF4)
        return 0;
    n = s[0] < 0xE0 ? 2 : s[0] < 0xF0 ? 3 : 4;
    if (s[0] == 0xE0)
        lo = 0xA0;
    else if (s[0] == 0xED)
        hi = 0x9F;
    else if (s[0] == 0xF0)
        lo = 0x90;
    else if (s[0] == 0xF4)
        hi = 0x8F;
    if ((size_t)(end - s) < n || s[1] < lo || s[1] > hi)
        return 0;
    for (i = 2; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    }
    return n;
}

/*
 * Where in the 8-byte word v, loaded from memory, the first byte that is
 * not a plain value byte ('"', '\\', NUL or >= 0x80) sits: 0..7, or 8 if
 * there is none (big-endian hosts only learn whether there is one).  Each
 * equality test looks for a zero byte after an xor; the lowest flagged
 * byte is always a true hit (a borrow only moves up).
 */
static unsigned first_special(uint64_t v)
{
    const uint64_t ones = UINT64_C(0x0101010101010101);
    const uint64_t highs = UINT64_C(0x8080808080808080);
    uint64_t q = v ^ (ones * '"'), b = v ^ (ones * '\\');
    uint64_t z = ((v - ones) & ~v) | ((q - ones) & ~q) | ((b - ones) & ~b);
    uint64_t hit = (z | v) & highs;

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    return hit ? 0 : 8; /* memory order is not numeric order here */
#else
    return hit ? (unsigned)__builtin_ctzll(hit) / 8 : 8;
#endif
}

/* Error texts of copy_text(), for label values and HELP text. */
struct text_msgs {
    const char *unclosed;
    const char *utf8;
    const char *nul;
};

static const struct text_msgs value_msgs = {
    "label value has no closing quote",
    "label value is not valid UTF-8",
    "label value contains a NUL byte",
};
static const struct text_msgs help_msgs = {
    NULL,
    "HELP text is not valid UTF-8",
    "HELP text contains a NUL byte",
};

/*
 * Copies text at c->s to scratch, unescaping \\ and \n (and \" when
 * esc_quote), keeping any other backslash as written.  quoted: the text is
 * a label value, c->s is past its opening quote and it ends at the closing
 * one; else it runs to the line end.  Returns the NUL-terminated copy, or
 * NULL with the error set.
 */
static const char *copy_text(struct cur *c, bool quoted, bool esc_quote,
                             const struct text_msgs *msg)
{
    const char *q = c->s, *e = c->end;
    char *out = c->w, *w = c->w;
    size_t n;

    for (;;) {
        /* Plain bytes, a word at a time while a whole word is left, then
         * one by one up to a byte that needs a look (at worst the line's
         * '\n'). */
        while (e - q >= 8) {
            uint64_t v;
            unsigned k;

            memcpy(&v, q, sizeof(v));
            /* All 8 bytes may be stored: they are line bytes, so this
             * stays within invariant 3's room. */
            memcpy(w, &v, sizeof(v));
            k = first_special(v);
            w += k;
            q += k;
            if (k < 8)
                break;
        }
        while (!(cls[(unsigned char)*q] & CL_VSTOP))
            *w++ = *q++;
        if (q == e) {
            if (quoted) {
                fail(c, c->s - 1, msg->unclosed);
                return NULL;
            }
            break;
        }
        if (*q == '"') {
            q++;
            if (quoted)
                break;
            *w++ = '"';
        } else if (*q == '\\') {
            char x = q + 1 < e ? q[1] : '\0';

            if (x == '\\' || x == 'n' || (x == '"' && esc_quote)) {
                *w++ = x == 'n' ? '\n' : x;
                q += 2;
            } else {
                *w++ = *q++;
            }
        } else if (*q == '\0') {
            fail(c, q, msg->nul);
            return NULL;
        } else {
            n = utf8_seq((const unsigned char *)q, (const unsigned char *)e);
            if (n == 0) {
                fail(c, q, msg->utf8);
                return NULL;
            }
            memcpy(w, q, n);
            w += n;
            q += n;
        }
    }
    *w++ = '\0';
    c->w = w;
    c->s = q;
    return out;
}

/* Moves s past a run of digits (the line's '\n' ends it at the latest),
 * appending them to *m (which wraps past 19 digits: the caller then starts
 * over digit by digit).  Returns the run's length. */
static size_t scan_digits(const char **s, uint64_t *m)
{
    const char *b = *s;
    uint64_t v = *m;
    unsigned dig;

    while ((dig = (unsigned)(**s - '0')) <= 9) {
        v = v * 10 + dig;
        (*s)++;
    }
    *m = v;
    return (size_t)(*s - b);
}

/* Adds the digits of s[0..n) to d one by one, dropping those past the
 * first FAST_MAX_DIGITS significant ones.  frac: they follow the point. */
static void add_digits_slow(struct decnum *d, const char *s, size_t n,
                            bool frac)
{
    size_t i;

    for (i = 0; i < n; i++) {
        unsigned dig = (unsigned)(s[i] - '0');

        if (d->m == 0 && dig == 0) {
            d->exp10 -= frac; /* leading zero: only moves the point */
            continue;
        }
        if (d->digits < FAST_MAX_DIGITS)
            d->m = d->m * 10 + dig;
        d->exp10 += (d->digits >= FAST_MAX_DIGITS) - frac;
        d->digits++;
    }
}

/*
 * Reads [+-]?(D+(.D*)?|.D+)([eE][+-]?D+)? filling exactly s[0..n).
 * Returns false if the text is anything else.
 */
static bool read_decimal(const char *s, size_t n, struct decnum *d)
{
    const char *e = s + n, *ib, *fb = s;
    size_t ni, nf = 0;
    uint64_t m = 0;
    int64_t exp = 0;
    bool eneg = false;

    memset(d, 0, sizeof(*d));
    if (s < e && (*s == '+' || *s == '-'))
        d->neg = *s++ == '-';
    ib = s;
    ni = scan_digits(&s, &m);
    if (s < e && *s == '.') {
        fb = ++s;
        nf = scan_digits(&s, &m);
    }
    if (ni + nf == 0)
        return false;

    /* Up to FAST_MAX_DIGITS digits in all (the usual case) fit m as they
     * are, leading zeros and all. */
    if (ni + nf <= FAST_MAX_DIGITS) {
        d->m = m;
        d->digits = (int)(ni + nf);
        d->exp10 = -(int64_t)nf;
    } else {
        add_digits_slow(d, ib, ni, false);
        add_digits_slow(d, fb, nf, true);
    }

    if (s < e && (*s == 'e' || *s == 'E')) {
        s++;
        if (s < e && (*s == '+' || *s == '-'))
            eneg = *s++ == '-';
        ib = s;
        for (; s < e && (unsigned)(*s - '0') <= 9; s++) {
            if (exp < EXP_SATURATE)
                exp = exp * 10 + (*s - '0');
        }
        if (s == ib)
            return false;
        d->exp10 += eneg ? -exp : exp;
    }
    return s == e;
}

/* Case-insensitive: is s[0..n) exactly the lower-case word w? */
static bool word_is(const char *s, size_t n, const char *w)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (w[i] == '\0' || (s[i] | 0x20) != w[i])
            return false;
    }
    return w[n] == '\0';
}

/* NaN, Inf, Infinity with an optional sign on the infinities, any case,
 * as Go's ParseFloat takes them. */
static bool read_special(const char *s, size_t n, double *out)
{
    double sign = 1.0;

    if (word_is(s, n, "nan")) {
        *out = NAN;
        return true;
    }
    if (n > 0 && (*s == '+' || *s == '-')) {
        sign = *s == '-' ? -1.0 : 1.0;
        s++;
        n--;
    }
    if (word_is(s, n, "inf") || word_is(s, n, "infinity")) {
        *out = sign * INFINITY;
        return true;
    }
    return false;
}

/*
 * Converts the sample value s[0..n) to a double, correctly rounded.
 * tmp: room for n + 1 bytes, used when strtod must do the work.
 */
static enum num_rc parse_value(const char *s, size_t n, char *tmp, double *out)
{
    struct decnum d;
    double v;

    if (n > 0 && (cls[(unsigned char)s[n - 1]] & CL_ALPHA))
        return read_special(s, n, out) ? NUM_OK : NUM_BAD;
    if (!read_decimal(s, n, &d))
        return NUM_BAD;
    if (d.m == 0) {
        v = 0.0;
    } else if (d.digits <= FAST_MAX_DIGITS && d.m <= FAST_MAX_MANTISSA &&
               d.exp10 >= -FAST_MAX_POW10 && d.exp10 <= FAST_MAX_POW10) {
        v = (double)d.m;
        if (d.exp10 < 0)
            v /= pow10_exact[-d.exp10];
        else
            v *= pow10_exact[d.exp10];
    } else {
        memcpy(tmp, s, n);
        tmp[n] = '\0';
        v = strtod(tmp, NULL);
        if (isinf(v))
            return NUM_RANGE; /* Go refuses what overflows to Inf */
        *out = v;
        return NUM_OK;
    }
    *out = d.neg ? -v : v;
    return NUM_OK;
}

/* A text-format timestamp: [+-]?D+ milliseconds, as an int64. */
static enum num_rc parse_ts_ms(const char *s, size_t n, int64_t *out)
{
    const char *e = s + n;
    bool neg = false;
    uint64_t v = 0, lim;

    if (s < e && (*s == '+' || *s == '-'))
        neg = *s++ == '-';
    if (s == e)
        return NUM_BAD;
    lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; s < e; s++) {
        unsigned dig = (unsigned)(*s - '0');

        if (dig > 9)
            return NUM_BAD;
        if (v > (lim - dig) / 10)
            return NUM_RANGE;
        v = v * 10 + dig;
    }
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return NUM_OK;
}

/*
 * An OpenMetrics timestamp: decimal seconds, turned into ms with integer
 * arithmetic only, so "1704067200.123" is 1704067200123 exactly.  Digits
 * below the ms are cut toward zero, as Prometheus's int64(seconds * 1000)
 * does.  Only the first FAST_MAX_DIGITS significant digits are kept: any
 * result that fits an int64 has its ms units among them.
 */
static enum num_rc parse_ts_sec(const char *s, size_t n, int64_t *out)
{
    struct decnum d;
    int64_t shift;
    uint64_t v;

    if (!read_decimal(s, n, &d))
        return NUM_BAD;
    shift = d.exp10 + 3;
    v = d.m;
    if (v != 0 && shift > 0) {
        if (shift > 18 || v > (uint64_t)INT64_MAX / (uint64_t)pow10_int[shift])
            return NUM_RANGE;
        v *= (uint64_t)pow10_int[shift];
    } else if (shift < 0) {
        v = shift < -18 ? 0 : v / (uint64_t)pow10_int[-shift];
    }
    if (v > (uint64_t)INT64_MAX)
        return NUM_RANGE;
    *out = d.neg ? -(int64_t)v : (int64_t)v;
    return NUM_OK;
}

static enum num_rc parse_ts(const struct cur *c, const char *s, size_t n,
                            int64_t *out)
{
    return c->lax ? parse_ts_ms(s, n, out) : parse_ts_sec(s, n, out);
}

/*
 * Parses a label set, c->s at its '{', up to and past the '}'.  A sample's
 * (labels not NULL) is stored in labels[*n...], its names looked up in the
 * name cache slots; an exemplar's is only checked.
 */
static bool parse_labels(struct cur *c, struct tsdb_label *labels, size_t *n,
                         char *slots)
{
    const bool keep = labels != NULL;
    const char *name, *value, *at;

    c->s++;
    for (;;) {
        if (c->lax)
            skip_blanks(c);
        if (!at_end(c) && *c->s == '}')
            break;
        at = c->s;
        if (keep && *n < EXPFMT_MAX_LABELS)
            name = take_name(c, slots + *n * NAME_SLOT, CL_LABEL_START,
                             CL_LABEL_CHAR);
        else
            name = copy_ident(c, CL_LABEL_START, CL_LABEL_CHAR);
        if (name == NULL) {
            if (at_end(c))
                return fail(c, c->s, "label set has no closing '}'");
            return fail(c, c->s, "label name must start with a letter or '_'");
        }
        if (keep && *n == EXPFMT_MAX_LABELS)
            return fail(
                c, at,
                "label set has more than " STR(EXPFMT_MAX_LABELS) " labels");
        if (!at_end(c) && *c->s != '=' && !is_blank(*c->s))
            return fail(c, c->s, "label name has an invalid character");
        if (c->lax)
            skip_blanks(c);
        if (at_end(c) || *c->s != '=')
            return fail(c, c->s, "expected '=' after the label name");
        c->s++;
        if (c->lax)
            skip_blanks(c);
        if (at_end(c) || *c->s != '"')
            return fail(c, c->s, "label value is not a quoted string");
        c->s++;
        value = copy_text(c, true, true, &value_msgs);
        if (value == NULL)
            return false;
        if (keep) {
            labels[*n].name = name;
            labels[*n].value = value;
            (*n)++;
        }
        if (c->lax)
            skip_blanks(c);
        if (at_end(c))
            return fail(c, c->s, "label set has no closing '}'");
        if (*c->s == '}')
            break;
        if (*c->s != ',')
            return fail(c, c->s, "expected ',' or '}' after the label value");
        c->s++;
    }
    c->s++;
    return true;
}

/* An OpenMetrics exemplar, c->s at its '#': "# {labels} value [ts]".
 * Checked, then dropped. */
static bool parse_exemplar(struct cur *c)
{
    const char *tok, *te;
    double v;
    int64_t ts;
    size_t none = 0;
    enum num_rc rc;

    if (c->s + 1 >= c->end || c->s[1] != ' ')
        return fail(c, c->s, "expected ' # ' before the exemplar");
    c->s += 2;
    if (at_end(c) || *c->s != '{')
        return fail(c, c->s, "exemplar label set must start with '{'");
    if (!parse_labels(c, NULL, &none, NULL))
        return false;
    if (!take_sep(c))
        return fail(c, c->s, "exemplar value is missing");
    tok = c->s;
    te = token_end(c);
    rc = parse_value(tok, (size_t)(te - tok), c->w, &v);
    if (rc != NUM_OK)
        return fail(c, tok, "exemplar value is not a number");
    c->s = te;
    if (at_end(c))
        return true;
    take_sep(c);
    if (at_end(c))
        return fail(c, c->s - 1, "unexpected space at the end of the line");
    tok = c->s;
    te = token_end(c);
    rc = parse_ts_sec(tok, (size_t)(te - tok), &ts);
    if (rc != NUM_OK)
        return fail(c, tok, "exemplar timestamp is not a number of seconds");
    c->s = te;
    if (at_end(c))
        return true;
    take_sep(c);
    if (at_end(c))
        return fail(c, c->s - 1, "unexpected space at the end of the line");
    return fail(c, c->s, "unexpected text after the exemplar");
}

/* Timestamp and whatever follows the sample value; c->s just past the
 * value, not at the line end. */
static bool parse_tail(struct cur *c, struct expfmt_sample *smp)
{
    const char *tok, *te;
    enum num_rc rc;

    take_sep(c);
    if (at_end(c)) {
        if (c->lax)
            return true;
        return fail(c, c->s - 1, "unexpected space at the end of the line");
    }
    if (!c->lax && *c->s == '#')
        return parse_exemplar(c);
    tok = c->s;
    te = token_end(c);
    rc = parse_ts(c, tok, (size_t)(te - tok), &smp->timestamp_ms);
    if (rc == NUM_RANGE)
        return fail(c, tok, "timestamp is out of range");
    if (rc != NUM_OK) {
        return fail(c, tok,
                    c->lax ? "timestamp is not an integer"
                           : "timestamp is not a number of seconds");
    }
    smp->has_timestamp = true;
    c->s = te;
    if (at_end(c))
        return true;
    take_sep(c);
    if (at_end(c)) {
        if (c->lax)
            return true;
        return fail(c, c->s - 1, "unexpected space at the end of the line");
    }
    if (!c->lax && *c->s == '#')
        return parse_exemplar(c);
    return fail(c, c->s, "unexpected text after the timestamp");
}

/* A sample line, c->s at its first byte. */
static bool parse_sample(struct expfmt_parser *p, struct cur *c,
                         struct expfmt_sample *smp)
{
    const char *name, *tok, *te, *bad;
    enum num_rc rc;

    name = take_name(c, p->names, CL_NAME_START, CL_NAME_CHAR);
    if (name == NULL) {
        return fail(c, c->s,
                    "metric name must start with a letter, '_' or ':'");
    }
    p->labels[0].name = "__name__";
    p->labels[0].value = name;
    smp->labels = p->labels;
    smp->nlabels = 1;
    smp->name = name;
    smp->has_timestamp = false;
    smp->timestamp_ms = 0;

    /* Blanks before '{' are only allowed by the text format. */
    tok = c->s;
    if (c->lax)
        skip_blanks(c);
    if (!at_end(c) && *c->s == '{') {
        if (!parse_labels(c, p->labels, &smp->nlabels, p->names))
            return false;
        bad = "expected a space after the label set";
    } else {
        c->s = tok;
        bad = "metric name has an invalid character";
    }
    if (!take_sep(c))
        return fail(c, c->s, at_end(c) ? "sample value is missing" : bad);

    tok = c->s;
    te = token_end(c);
    if (te == tok)
        return fail(c, tok, "sample value is missing");
    rc = parse_value(tok, (size_t)(te - tok), c->w, &smp->value);
    if (rc == NUM_RANGE)
        return fail(c, tok, "sample value is out of range");
    if (rc != NUM_OK)
        return fail(c, tok, "sample value is not a number");
    c->s = te;
    return at_end(c) || parse_tail(c, smp);
}

/* Metadata keywords and error texts, indexed by enum expfmt_meta_kind. */
static const char *const meta_word[] = {"HELP", "TYPE", "UNIT"};
static const char *const meta_no_name[] = {
    "HELP metric name must start with a letter, '_' or ':'",
    "TYPE metric name must start with a letter, '_' or ':'",
    "UNIT metric name must start with a letter, '_' or ':'",
};
static const char *const meta_bad_name[] = {
    "HELP metric name has an invalid character",
    "TYPE metric name has an invalid character",
    "UNIT metric name has an invalid character",
};

static const char *const type_names[] = {
    [EXPFMT_TYPE_COUNTER] = "counter",
    [EXPFMT_TYPE_GAUGE] = "gauge",
    [EXPFMT_TYPE_HISTOGRAM] = "histogram",
    [EXPFMT_TYPE_SUMMARY] = "summary",
    [EXPFMT_TYPE_UNTYPED] = "untyped",
    [EXPFMT_TYPE_UNKNOWN] = "unknown",
    [EXPFMT_TYPE_GAUGEHISTOGRAM] = "gaugehistogram",
    [EXPFMT_TYPE_STATESET] = "stateset",
    [EXPFMT_TYPE_INFO] = "info",
};

const char *expfmt_type_name(enum expfmt_type t)
{
    if ((unsigned)t >= sizeof(type_names) / sizeof(type_names[0]))
        return "unknown";
    return type_names[t];
}

/* Is word the name of a type this format allows? */
static bool match_type(bool text, const char *s, size_t n,
                       enum expfmt_type *out)
{
    unsigned t;

    for (t = 0; t < sizeof(type_names) / sizeof(type_names[0]); t++) {
        bool allowed =
            text ? t <= EXPFMT_TYPE_UNTYPED : t != EXPFMT_TYPE_UNTYPED;

        if (allowed && strlen(type_names[t]) == n &&
            memcmp(type_names[t], s, n) == 0) {
            *out = (enum expfmt_type)t;
            return true;
        }
    }
    return false;
}

/* The part of a HELP, TYPE or UNIT line after the metric name and its
 * separator, c->s at its first byte. */
static bool parse_meta_body(struct expfmt_parser *p, struct cur *c,
                            struct expfmt_meta *m)
{
    const char *b = c->s, *e = c->end;

    switch (m->kind) {
    case EXPFMT_META_HELP:
        m->text = copy_text(c, false, !c->lax, &help_msgs);
        return m->text != NULL;
    case EXPFMT_META_TYPE:
        if (c->lax) {
            while (e > b && is_blank(e[-1]))
                e--;
        }
        if (b == e)
            return fail(c, b, "TYPE value is missing");
        if (!match_type(p->format == EXPFMT_TEXT, b, (size_t)(e - b),
                        &m->type)) {
            return fail(c, b, "TYPE value is not a known metric type");
        }
        m->text = type_names[m->type];
        return true;
    case EXPFMT_META_UNIT:
        for (; b < e; b++) {
            if (!(cls[(unsigned char)*b] & CL_NAME_CHAR))
                return fail(c, b, "UNIT value has an invalid character");
        }
        m->text = copy_text(c, false, false, &help_msgs);
        return true;
    }
    return fail(c, b, "unknown metadata line");
}

/* HELP, TYPE or UNIT, c->s just past the keyword. */
static bool parse_meta(struct expfmt_parser *p, struct cur *c,
                       struct expfmt_meta *m)
{
    if (!take_sep(c))
        return fail(c, c->s, meta_no_name[m->kind]);
    m->name = copy_ident(c, CL_NAME_START, CL_NAME_CHAR);
    if (m->name == NULL)
        return fail(c, c->s, meta_no_name[m->kind]);
    m->text = "";
    if (at_end(c)) {
        if (m->kind == EXPFMT_META_TYPE)
            return fail(c, c->s, "TYPE value is missing");
        return true;
    }
    if (!take_sep(c))
        return fail(c, c->s, meta_bad_name[m->kind]);
    return parse_meta_body(p, c, m);
}

/*
 * A line starting with '#'.  Sets m->name to NULL for a line that carries
 * nothing to deliver (a text comment, "# EOF").
 */
static bool parse_comment(struct expfmt_parser *p, struct cur *c,
                          struct expfmt_meta *m)
{
    const char *kw;
    size_t len;
    int k;

    m->name = NULL;
    c->s++;
    if (c->lax)
        skip_blanks(c);
    else if (at_end(c) || *c->s != ' ')
        return fail(c, c->line, "comment is not HELP, TYPE, UNIT or EOF");
    else
        c->s++;
    kw = c->s;
    while (c->s < c->end && !is_blank(*c->s))
        c->s++;
    len = (size_t)(c->s - kw);
    if (!c->lax && len == 3 && memcmp(kw, "EOF", 3) == 0 && at_end(c)) {
        p->seen_eof = true;
        return true;
    }
    for (k = 0; k < (c->lax ? 2 : 3); k++) {
        if (len == 4 && memcmp(kw, meta_word[k], 4) == 0) {
            m->kind = (enum expfmt_meta_kind)k;
            return parse_meta(p, c, m);
        }
    }
    if (c->lax)
        return true;
    return fail(c, c->line, "comment is not HELP, TYPE, UNIT or EOF");
}

static int report(struct expfmt_parser *p, uint64_t line, size_t column,
                  const char *msg)
{
    struct expfmt_error e;

    p->errors++;
    if (p->cb.error == NULL)
        return TSDB_OK;
    e.line = line;
    e.column = (uint32_t)column;
    e.msg = msg;
    return p->cb.error(p->ctx, &e);
}

/* One complete line, line[0..n) with line[n] == '\n' (invariant 2).
 * Returns TSDB_OK or what a callback stopped with. */
static int parse_line(struct expfmt_parser *p, const char *line, size_t n)
{
    struct cur c = {line, line, line + n, p->scratch, false, NULL, NULL};
    struct expfmt_sample smp;
    struct expfmt_meta m;
    bool ok;

    p->lines++;
    if (p->after_eof)
        return TSDB_OK;
    if (p->seen_eof) {
        p->after_eof = true;
        return report(p, p->lines, 1, "data after # EOF");
    }
    c.lax = p->format == EXPFMT_TEXT;
    if (c.lax) {
        skip_blanks(&c);
        if (at_end(&c))
            return TSDB_OK;
    } else if (n == 0) {
        return report(p, p->lines, 1, "blank line in OpenMetrics input");
    }

    if (*c.s == '#') {
        ok = parse_comment(p, &c, &m);
        if (ok && m.name != NULL) {
            m.line = p->lines;
            p->metas++;
            assert(c.w <= p->scratch + SCRATCH_SIZE);
            return p->cb.meta ? p->cb.meta(p->ctx, &m) : TSDB_OK;
        }
    } else {
        ok = parse_sample(p, &c, &smp);
        if (ok) {
            smp.line = p->lines;
            p->samples++;
            assert(c.w <= p->scratch + SCRATCH_SIZE);
            return p->cb.sample ? p->cb.sample(p->ctx, &smp) : TSDB_OK;
        }
    }
    if (ok)
        return TSDB_OK;
    return report(p, p->lines, (size_t)(c.err_at - line) + 1, c.err);
}

/* Reports the current line as too long; the caller then drops its bytes
 * up to the newline. */
static int too_long(struct expfmt_parser *p)
{
    p->lines++;
    if (p->after_eof)
        return TSDB_OK;
    if (p->seen_eof) {
        p->after_eof = true;
        return report(p, p->lines, 1, "data after # EOF");
    }
    return report(p, p->lines, EXPFMT_MAX_LINE + 1,
                  "line is longer than " STR(EXPFMT_MAX_LINE) " bytes");
}

int expfmt_parser_init(struct expfmt_parser *p, enum expfmt_format format,
                       const struct expfmt_callbacks *cb, void *ctx)
{
    memset(p, 0, sizeof(*p));
    if (format != EXPFMT_TEXT && format != EXPFMT_OPENMETRICS)
        return TSDB_EINVAL;
    p->format = format;
    if (cb != NULL)
        p->cb = *cb;
    p->ctx = ctx;
    p->carry = malloc(EXPFMT_MAX_LINE + 1); /* + the '\n' of invariant 2 */
    p->scratch = malloc(SCRATCH_SIZE);
    p->names = calloc(EXPFMT_MAX_LABELS, NAME_SLOT);
    if (p->carry == NULL || p->scratch == NULL || p->names == NULL) {
        expfmt_parser_release(p);
        return TSDB_ENOMEM;
    }
    return TSDB_OK;
}

void expfmt_parser_release(struct expfmt_parser *p)
{
    free(p->carry);
    free(p->scratch);
    free(p->names);
    p->carry = NULL;
    p->scratch = NULL;
    p->names = NULL;
    p->carry_len = 0;
}

/*
 * Adds s[0..n) to the cut line in carry; nl tells whether it ends with
 * the line's newline (not included in n).
 */
static int carry_more(struct expfmt_parser *p, const char *s, size_t n, bool nl)
{
    int rc;

    if (p->carry_len + n > EXPFMT_MAX_LINE) {
        p->carry_len = 0;
        p->skipping = !nl;
        return too_long(p);
    }
    memcpy(p->carry + p->carry_len, s, n);
    p->carry_len += n;
    if (!nl)
        return TSDB_OK;
    p->carry[p->carry_len] = '\n';
    rc = parse_line(p, p->carry, p->carry_len);
    p->carry_len = 0;
    return rc;
}

/* Cuts s[0..end) into lines and handles each, until the end or until a
 * callback stops. */
static int feed_lines(struct expfmt_parser *p, const char *s, const char *end)
{
    const char *nl;
    size_t n;
    int rc = TSDB_OK;

    while (s < end && rc == TSDB_OK) {
        nl = memchr(s, '\n', (size_t)(end - s));
        n = (size_t)((nl ? nl : end) - s);
        if (p->skipping) {
            p->skipping = nl == NULL;
        } else if (p->carry_len > 0) {
            rc = carry_more(p, s, n, nl != NULL);
        } else if (n > EXPFMT_MAX_LINE) {
            p->skipping = nl == NULL;
            rc = too_long(p);
        } else if (nl != NULL) {
            rc = parse_line(p, s, n);
        } else {
            memcpy(p->carry, s, n);
            p->carry_len = n;
        }
        s = nl ? nl + 1 : end;
    }
    return rc;
}

int expfmt_parser_feed(struct expfmt_parser *p, const void *buf, size_t len)
{
    const char *s = buf;
    int rc;

    if (p->stop_rc != TSDB_OK)
        return p->stop_rc;
    if (p->finished)
        return TSDB_EINVAL;
    if (len == 0)
        return TSDB_OK;
    rc = feed_lines(p, s, s + len);
    if (rc != TSDB_OK)
        p->stop_rc = rc;
    return rc;
}

int expfmt_parser_finish(struct expfmt_parser *p)
{
    int rc = TSDB_OK;

    if (p->stop_rc != TSDB_OK)
        return p->stop_rc;
    if (p->finished)
        return TSDB_EINVAL;
    p->finished = true;

    /* A last line without '\n' still counts; an overlong one was already
     * reported when it crossed the limit. */
    if (p->carry_len > 0) {
        p->carry[p->carry_len] = '\n';
        rc = parse_line(p, p->carry, p->carry_len);
        p->carry_len = 0;
    }
    p->skipping = false;
    if (rc == TSDB_OK && p->format == EXPFMT_OPENMETRICS && !p->seen_eof) {
        rc = report(p, p->lines + 1, 1, "missing # EOF at the end of input");
        if (rc == TSDB_OK)
            rc = TSDB_ECORRUPT;
        else
            p->stop_rc = rc;
        return rc;
    }
    if (rc != TSDB_OK)
        p->stop_rc = rc;
    return rc;
}
