/*
 * Label sets: validation, canonical form, the canonical byte encoding and
 * its hash (storage-format.md section "Label set encoding").  Pure code:
 * no LMDB, no logging; the index (index.c) stores what this file encodes.
 *
 * Invariants of a canonical encoding (decode checks each one, because the
 * bytes may come from a damaged file):
 * 1. Labels appear in strictly ascending bytewise order of name, so one
 *    label set has exactly one encoding and one hash.
 * 2. Every length is a minimal varint in 1..limit: no empty name or value,
 *    and no second spelling of the same length.
 * 3. Names are valid label names; the value of __name__ is a valid metric
 *    name; every value is UTF-8 without NUL.
 * 4. There are 1..TSDB_MAX_LABELS labels.
 */
#include "tsdb/labels.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <xxhash.h>

#include "tsdb/bytes.h"
#include "tsdb/error.h"

#define METRIC_NAME_LABEL "__name__"

/* How much of a name or value an error message quotes: enough to
 * recognise the series, short enough for a log line. */
#define BRIEF_NAME_MAX  64
#define BRIEF_VALUE_MAX 24

/* Length of the valid UTF-8 sequence at p, or 0 if the bytes there are not
 * one.  Rejects overlong forms, surrogates and code points past U+10FFFF,
 * as Go's utf8.Valid does (Prometheus validates values with it). */
static size_t utf8_seq(const uint8_t *p, const uint8_t *end)
{
    size_t avail = (size_t)(end - p);
    uint8_t b = p[0];

    if (b < 0x80)
        return 1;
    if (b < 0xc2 || b > 0xf4)
        return 0;
    if (b < 0xe0) {
        if (avail < 2 || (p[1] & 0xc0) != 0x80)
            return 0;
        return 2;
    }
    if (b < 0xf0) {
        if (avail < 3 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80)
            return 0;
        if ((b == 0xe0 && p[1] < 0xa0) || (b == 0xed && p[1] >= 0xa0))
            return 0;
        return 3;
    }
    if (avail < 4 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80 ||
        (p[3] & 0xc0) != 0x80)
        return 0;
    if ((b == 0xf0 && p[1] < 0x90) || (b == 0xf4 && p[1] >= 0x90))
        return 0;
    return 4;
}

/* Offset of the first byte that breaks UTF-8 or is NUL, or len if none. */
static size_t utf8_bad_offset(const char *s, size_t len)
{
    const uint8_t *p = (const uint8_t *)s, *end = p + len;
    size_t n;

    while (p < end) {
        if (*p == 0)
            break;
        n = utf8_seq(p, end);
        if (n == 0)
            break;
        p += n;
    }
    return (size_t)(p - (const uint8_t *)s);
}

static bool name_char(char c, bool first, bool colon)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_')
        return true;
    if (colon && c == ':')
        return true;
    return !first && c >= '0' && c <= '9';
}

static bool name_valid(const char *s, size_t len, bool colon)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (!name_char(s[i], i == 0, colon))
            return false;
    }
    return true;
}

bool tsdb_metric_name_valid(const char *s, size_t len)
{
    return name_valid(s, len, true);
}

bool tsdb_label_name_valid(const char *s, size_t len)
{
    return name_valid(s, len, false);
}

/*
 * A bounded text writer: keeps what fits and remembers that something did
 * not, so the caller can end the text with "...".
 */
struct textbuf {
    char *p;
    size_t cap; /* includes room for the NUL */
    size_t len;
    bool cut;
};

static void tb_put(struct textbuf *tb, const char *s, size_t n)
{
    size_t room = tb->cap > 0 ? tb->cap - 1 - tb->len : 0;

    if (n > room) {
        n = room;
        tb->cut = true;
    }
    if (n == 0)
        return;
    memcpy(tb->p + tb->len, s, n);
    tb->len += n;
}

static void tb_str(struct textbuf *tb, const char *s)
{
    tb_put(tb, s, strlen(s));
}

/*
 * NUL-terminates; if anything was cut, the text ends in "..." and never in
 * the middle of a UTF-8 sequence.
 */
static void tb_finish(struct textbuf *tb)
{
    size_t at;

    if (tb->cap == 0)
        return;
    if (!tb->cut) {
        tb->p[tb->len] = '\0';
        return;
    }
    if (tb->cap < 4) {
        memset(tb->p, '.', tb->cap - 1);
        tb->p[tb->cap - 1] = '\0';
        return;
    }
    at = tb->len < tb->cap - 4 ? tb->len : tb->cap - 4;
    while (at > 0 && ((uint8_t)tb->p[at] & 0xc0) == 0x80)
        at--;
    memcpy(tb->p + at, "...", 4);
}

/*
 * Writes a label value the way the Prometheus text format quotes one:
 * backslash, double quote and newline are escaped.  With strict, also
 * control bytes and bytes that are not UTF-8 become \xNN, so that an error
 * message about a bad value is itself printable.  At most max input bytes
 * are written (whole UTF-8 sequences only), then "..." if more remained.
 */
static void tb_value(struct textbuf *tb, const char *s, size_t len, size_t max,
                     bool strict)
{
    const uint8_t *p = (const uint8_t *)s, *end = p + len;
    char hex[8];
    size_t n;

    while (p < end) {
        n = utf8_seq(p, end);
        if ((size_t)(p - (const uint8_t *)s) + (n ? n : 1) > max) {
            tb_str(tb, "...");
            return;
        }
        if (*p == '\\' || *p == '"') {
            tb_put(tb, "\\", 1);
            tb_put(tb, (const char *)p, 1);
        } else if (*p == '\n') {
            tb_put(tb, "\\n", 2);
        } else if (strict && (n == 0 || *p < 0x20 || *p == 0x7f)) {
            snprintf(hex, sizeof(hex), "\\x%02x", *p);
            tb_str(tb, hex);
            n = 1;
        } else {
            n = n ? n : 1;
            tb_put(tb, (const char *)p, n);
            p += n;
            continue;
        }
        p++;
    }
}

static ssize_t find_label(const struct tsdb_label *v, size_t n,
                          const char *name)
{
    for (size_t i = 0; i < n; i++) {
        if (v[i].name != NULL && strcmp(v[i].name, name) == 0)
            return (ssize_t)i;
    }
    return -1;
}

/*
 * Names the series in an error message without printing all of it:
 * metric{focus="value...",...}.  The label the error is about (focus, or
 * the first other label when focus < 0) is shown; the rest is "...".
 */
static void tb_series_brief(struct textbuf *tb, const struct tsdb_label *v,
                            size_t n, ssize_t focus)
{
    ssize_t name = find_label(v, n, METRIC_NAME_LABEL);
    size_t others = n - (name >= 0);
    const struct tsdb_label *l;

    if (name >= 0)
        tb_value(tb, v[name].value, strlen(v[name].value), BRIEF_NAME_MAX,
                 true);
    if (others == 0) {
        if (name < 0)
            tb_str(tb, "{}");
        return;
    }
    if (focus < 0 || focus == name)
        focus = name == 0 ? 1 : 0;
    l = &v[focus];
    tb_str(tb, "{");
    tb_value(tb, l->name, strlen(l->name), BRIEF_NAME_MAX, true);
    tb_str(tb, "=\"");
    tb_value(tb, l->value, strlen(l->value), BRIEF_VALUE_MAX, true);
    tb_str(tb, others > 1 ? "\",...}" : "\"}");
}

/*
 * Fills err with "<what>, in series <brief>".  what is already formatted
 * by the caller; the series part is appended here.
 */
static int fail(int code, char *err, size_t errlen, const char *what,
                const struct tsdb_label *v, size_t n, ssize_t focus)
{
    struct textbuf tb = {err, errlen, 0, false};

    if (err == NULL || errlen == 0)
        return code;
    tb_str(&tb, what);
    if (n > 0) {
        tb_str(&tb, " in series ");
        tb_series_brief(&tb, v, n, focus);
    }
    tb_finish(&tb);
    return code;
}

/* A quoted, escaped and shortened copy of s for an error message. */
static void quote_brief(char *out, size_t cap, const char *s, size_t max)
{
    struct textbuf tb = {out, cap, 0, false};

    tb_str(&tb, "\"");
    tb_value(&tb, s, strlen(s), max, true);
    tb_str(&tb, "\"");
    tb_finish(&tb);
}

static int cmp_label(const void *a, const void *b)
{
    const struct tsdb_label *x = a, *y = b;

    return strcmp(x->name, y->name);
}

enum label_problem {
    LABEL_OK,
    LABEL_NAME_LONG,
    LABEL_NAME_BAD,
    LABEL_VALUE_LONG,
    LABEL_METRIC_BAD,
    LABEL_VALUE_UTF8,
};

/* What is wrong with one label, if anything; *bad gets the offset of the
 * first byte that is not UTF-8. */
static enum label_problem label_problem(const char *name, const char *value,
                                        bool is_metric, size_t *bad)
{
    size_t nlen = strlen(name), vlen = strlen(value);

    if (nlen > TSDB_MAX_LABEL_NAME)
        return LABEL_NAME_LONG;
    if (!tsdb_label_name_valid(name, nlen))
        return LABEL_NAME_BAD;
    if (vlen > TSDB_MAX_LABEL_VALUE)
        return LABEL_VALUE_LONG;
    if (is_metric && !tsdb_metric_name_valid(value, vlen))
        return LABEL_METRIC_BAD;
    *bad = utf8_bad_offset(value, vlen);
    return *bad < vlen ? LABEL_VALUE_UTF8 : LABEL_OK;
}

/* Checks one label of a sorted set; i is its index, for the message.  The
 * message is built only on failure: this runs for every label written. */
static int check_label(const struct tsdb_label *v, size_t n, size_t i,
                       char *err, size_t errlen)
{
    const char *name = v[i].name, *value = v[i].value;
    bool is_metric = strcmp(name, METRIC_NAME_LABEL) == 0;
    char what[512], q[BRIEF_NAME_MAX * 4 + 16];
    enum label_problem p;
    size_t bad = 0;
    int code = TSDB_EINVAL;

    p = label_problem(name, value, is_metric, &bad);
    if (p == LABEL_OK)
        return TSDB_OK;
    quote_brief(q, sizeof(q), name, BRIEF_NAME_MAX);
    switch (p) {
    case LABEL_NAME_LONG:
        snprintf(what, sizeof(what),
                 "label name %s is %zu bytes, over the limit of %d bytes,", q,
                 strlen(name), TSDB_MAX_LABEL_NAME);
        code = TSDB_ELIMIT;
        break;
    case LABEL_NAME_BAD:
        snprintf(what, sizeof(what),
                 "invalid label name %s (must match [a-zA-Z_][a-zA-Z0-9_]*)",
                 q);
        break;
    case LABEL_VALUE_LONG:
        if (is_metric)
            snprintf(what, sizeof(what), "metric name is %zu bytes",
                     strlen(value));
        else
            snprintf(what, sizeof(what), "label value of %s is %zu bytes", q,
                     strlen(value));
        snprintf(what + strlen(what), sizeof(what) - strlen(what),
                 ", over the limit of %d bytes,", TSDB_MAX_LABEL_VALUE);
        code = TSDB_ELIMIT;
        break;
    case LABEL_METRIC_BAD:
        quote_brief(q, sizeof(q), value, BRIEF_NAME_MAX);
        snprintf(what, sizeof(what),
                 "invalid metric name %s (must match "
                 "[a-zA-Z_:][a-zA-Z0-9_:]*)",
                 q);
        break;
    default:
        snprintf(what, sizeof(what),
                 "label value of %s is not valid UTF-8 (byte %zu)", q, bad);
        break;
    }
    return fail(code, err, errlen, what, v, n, (ssize_t)i);
}

int tsdb_labels_normalize(struct tsdb_label *v, size_t *n, char *err,
                          size_t errlen)
{
    char what[512], q[BRIEF_NAME_MAX * 4 + 16];
    size_t kept = 0;
    int rc;

    if (err != NULL && errlen > 0)
        err[0] = '\0';

    /* An empty value means the label is absent, as in Prometheus. */
    for (size_t i = 0; i < *n; i++) {
        if (v[i].value == NULL || v[i].value[0] == '\0')
            continue;
        if (v[i].name == NULL)
            return fail(TSDB_EINVAL, err, errlen, "label without a name", v, 0,
                        -1);
        v[kept++] = v[i];
    }
    *n = kept;
    if (kept == 0)
        return fail(TSDB_EINVAL, err, errlen,
                    "series has no labels with a non-empty value", v, 0, -1);

    qsort(v, kept, sizeof(*v), cmp_label);
    if (kept > TSDB_MAX_LABELS) {
        snprintf(what, sizeof(what),
                 "series has %zu labels, over the limit of %d labels,", kept,
                 TSDB_MAX_LABELS);
        return fail(TSDB_ELIMIT, err, errlen, what, v, kept, -1);
    }
    for (size_t i = 0; i < kept; i++) {
        rc = check_label(v, kept, i, err, errlen);
        if (rc != TSDB_OK)
            return rc;
        if (i > 0 && strcmp(v[i - 1].name, v[i].name) == 0) {
            quote_brief(q, sizeof(q), v[i].name, BRIEF_NAME_MAX);
            snprintf(what, sizeof(what), "duplicate label name %s", q);
            return fail(TSDB_EINVAL, err, errlen, what, v, kept, (ssize_t)i);
        }
    }
    return TSDB_OK;
}

static size_t varint_len(uint64_t v)
{
    size_t n = 1;

    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

int tsdb_labels_encode(const struct tsdb_label *v, size_t n, uint8_t *out,
                       size_t cap, size_t *len)
{
    size_t at = 0, nlen, vlen;

    for (size_t i = 0; i < n; i++) {
        nlen = strlen(v[i].name);
        vlen = strlen(v[i].value);
        /* No overflow: each length is that of a string in memory. */
        if (cap - at < varint_len(nlen) + nlen + varint_len(vlen) + vlen)
            return TSDB_EFULL;
        at += varint_put(out + at, nlen);
        memcpy(out + at, v[i].name, nlen);
        at += nlen;
        at += varint_put(out + at, vlen);
        memcpy(out + at, v[i].value, vlen);
        at += vlen;
    }
    *len = at;
    return TSDB_OK;
}

/* Reads one length-prefixed string; checks invariant 2 for it. */
static int get_string(const uint8_t **p, const uint8_t *end, size_t max,
                      const uint8_t **s, size_t *len)
{
    const uint8_t *start = *p;
    uint64_t v;

    if (varint_get(p, end, &v) != 0 || v == 0 || v > max ||
        varint_len(v) != (size_t)(*p - start))
        return TSDB_ECORRUPT;
    if ((uint64_t)(end - *p) < v)
        return TSDB_ECORRUPT;
    *s = *p;
    *len = (size_t)v;
    *p += v;
    return TSDB_OK;
}

/*
 * Validates enc against every invariant at the top and counts its labels
 * and the bytes they need as NUL-terminated strings.
 */
static int scan_encoding(const uint8_t *p, size_t len, size_t *count,
                         size_t *bytes)
{
    const uint8_t *end = p + len, *name, *value, *prev = NULL;
    size_t nlen, vlen, plen = 0;
    int cmp;

    *count = 0;
    *bytes = 0;
    while (p < end) {
        if (*count == TSDB_MAX_LABELS ||
            get_string(&p, end, TSDB_MAX_LABEL_NAME, &name, &nlen) != 0 ||
            get_string(&p, end, TSDB_MAX_LABEL_VALUE, &value, &vlen) != 0)
            return TSDB_ECORRUPT;
        if (!tsdb_label_name_valid((const char *)name, nlen) ||
            utf8_bad_offset((const char *)value, vlen) != vlen)
            return TSDB_ECORRUPT;
        if (nlen == strlen(METRIC_NAME_LABEL) &&
            memcmp(name, METRIC_NAME_LABEL, nlen) == 0 &&
            !tsdb_metric_name_valid((const char *)value, vlen))
            return TSDB_ECORRUPT;

        /* Strictly ascending: a proper prefix sorts first. */
        if (prev != NULL) {
            cmp = memcmp(prev, name, plen < nlen ? plen : nlen);
            if (cmp > 0 || (cmp == 0 && plen >= nlen))
                return TSDB_ECORRUPT;
        }
        prev = name;
        plen = nlen;
        (*count)++;
        *bytes += nlen + vlen + 2;
    }
    return *count == 0 ? TSDB_ECORRUPT : TSDB_OK;
}

int tsdb_labels_decode(const uint8_t *p, size_t len, struct tsdb_labels *out)
{
    const uint8_t *end = p + len, *s;
    size_t count, bytes, slen;
    char *dst;
    int rc;

    memset(out, 0, sizeof(*out));
    if (p == NULL)
        return TSDB_ECORRUPT;
    rc = scan_encoding(p, len, &count, &bytes);
    if (rc != TSDB_OK)
        return rc;

    /* One block: the label array, then the strings it points into. */
    out->v = malloc(count * sizeof(*out->v) + bytes);
    if (out->v == NULL)
        return TSDB_ENOMEM;
    out->n = count;
    out->strings = (char *)(out->v + count);
    dst = out->strings;
    for (size_t i = 0; i < count; i++) {
        get_string(&p, end, TSDB_MAX_LABEL_NAME, &s, &slen);
        out->v[i].name = dst;
        memcpy(dst, s, slen);
        dst[slen] = '\0';
        dst += slen + 1;
        get_string(&p, end, TSDB_MAX_LABEL_VALUE, &s, &slen);
        out->v[i].value = dst;
        memcpy(dst, s, slen);
        dst[slen] = '\0';
        dst += slen + 1;
    }
    return TSDB_OK;
}

void tsdb_labels_release(struct tsdb_labels *ls)
{
    /* strings lives in the same block as v (see tsdb_labels_decode). */
    free(ls->v);
    ls->v = NULL;
    ls->n = 0;
    ls->strings = NULL;
}

uint64_t tsdb_labels_hash(const uint8_t *enc, size_t len)
{
    return XXH3_64bits(enc, len);
}

const char *tsdb_labels_get(const struct tsdb_labels *ls, const char *name)
{
    size_t lo = 0, hi = ls->n, mid;
    int c;

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        c = strcmp(ls->v[mid].name, name);
        if (c == 0)
            return ls->v[mid].value;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

void tsdb_labels_format(const struct tsdb_label *v, size_t n, char *out,
                        size_t cap)
{
    struct textbuf tb = {out, cap, 0, false};
    ssize_t name = find_label(v, n, METRIC_NAME_LABEL);
    bool first = true;

    if (name >= 0)
        tb_str(&tb, v[name].value);
    if (n - (name >= 0) > 0 || name < 0) {
        tb_str(&tb, "{");
        for (size_t i = 0; i < n; i++) {
            if ((ssize_t)i == name)
                continue;
            if (!first)
                tb_str(&tb, ",");
            first = false;
            tb_str(&tb, v[i].name);
            tb_str(&tb, "=\"");
            tb_value(&tb, v[i].value, strlen(v[i].value), SIZE_MAX, false);
            tb_str(&tb, "\"");
        }
        tb_str(&tb, "}");
    }
    tb_finish(&tb);
}

int tsdb_labels_cmp(const struct tsdb_labels *a, const struct tsdb_labels *b)
{
    size_t n = a->n < b->n ? a->n : b->n;

    for (size_t i = 0; i < n; i++) {
        int d = strcmp(a->v[i].name, b->v[i].name);

        if (d != 0)
            return d;
        d = strcmp(a->v[i].value, b->v[i].value);
        if (d != 0)
            return d;
    }
    return (a->n > b->n) - (a->n < b->n);
}

int tsdb_labels_copy(const struct tsdb_label *v, size_t n,
                     struct tsdb_labels *out)
{
    size_t bytes = 1;
    char *dst;

    for (size_t i = 0; i < n; i++)
        bytes += strlen(v[i].name) + strlen(v[i].value) + 2;
    /* One block, as tsdb_labels_decode lays it out, so that
     * tsdb_labels_release frees it. */
    out->v = malloc(n * sizeof(*out->v) + bytes);
    if (out->v == NULL) {
        out->n = 0;
        out->strings = NULL;
        return TSDB_ENOMEM;
    }
    out->n = n;
    out->strings = (char *)(out->v + n);
    dst = out->strings;
    for (size_t i = 0; i < n; i++) {
        size_t nl = strlen(v[i].name), vl = strlen(v[i].value);

        memcpy(dst, v[i].name, nl + 1);
        out->v[i].name = dst;
        dst += nl + 1;
        memcpy(dst, v[i].value, vl + 1);
        out->v[i].value = dst;
        dst += vl + 1;
    }
    return TSDB_OK;
}
