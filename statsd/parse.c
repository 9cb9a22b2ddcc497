/*
 * StatsD line parser (statsd/parse.h has the grammar and the contract).
 * It sits below the aggregation: statsd.c feeds it request bodies and
 * journals what it delivers; the fuzz target feeds it anything.
 *
 * Invariants:
 * 1. Every delivered line satisfies the field rules in parse.h, so the
 *    aggregation never re-checks syntax: names and tag keys are valid
 *    label names, values finite, rates in (0, 1].
 * 2. A line is delivered whole or not at all: every part of a multi-typed
 *    line is checked before the first part is delivered.
 * 3. No read goes past the line being parsed, and no write past the
 *    parser's fixed buffers: every copy is bounded by a STATSD_MAX_*.
 */
#include "statsd/parse.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longest quoted excerpt of input in a reason, before "...". */
#define QUOTE_MAX 48
/* What the checkers return for a bad line (p->reason says why); positive,
 * so that it never equals a callback's TSDB_E* code. */
#define BAD 1

const char *statsd_type_name(enum statsd_type t)
{
    switch (t) {
    case STATSD_COUNTER:
        return "c";
    case STATSD_GAUGE:
        return "g";
    case STATSD_TIMER:
        return "ms";
    case STATSD_HISTOGRAM:
        return "h";
    case STATSD_DISTRIBUTION:
        return "d";
    case STATSD_SET:
        return "s";
    }
    return "?";
}

void statsd_parser_init(struct statsd_parser *p)
{
    p->lines = 0;
    p->accepted = 0;
    p->rejected = 0;
}

/* ---- reasons ---- */

/* Copies s[0..n) into out for quoting: bytes that are not printable ASCII
 * become '?', so a reason is always clean text; long input is cut. */
static void excerpt(char *out, size_t cap, const char *s, size_t n)
{
    size_t i, k = 0;
    bool cut = n > QUOTE_MAX;

    if (cut)
        n = QUOTE_MAX;
    for (i = 0; i < n && k + 4 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        out[k++] = (c >= 0x20 && c < 0x7f && c != '\'') ? (char)c : '?';
    }
    if (cut && k + 4 <= cap) {
        memcpy(out + k, "...", 3);
        k += 3;
    }
    out[k] = '\0';
}

/* Sets p->reason to "line N: " plus the formatted text; returns BAD so
 * that a checker can write "return bad(...)". */
static int bad(struct statsd_parser *p, uint64_t lineno, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int bad(struct statsd_parser *p, uint64_t lineno, const char *fmt, ...)
{
    va_list ap;
    int n;

    n = snprintf(p->reason, sizeof(p->reason),
                 "line %llu: ", (unsigned long long)lineno);
    va_start(ap, fmt);
    vsnprintf(p->reason + n, sizeof(p->reason) - (size_t)n, fmt, ap);
    va_end(ap);
    return BAD;
}

/* ---- small scanners ---- */

static const char *find(const char *s, const char *end, char c)
{
    const char *q = memchr(s, c, (size_t)(end - s));
    return q ? q : end;
}

static bool has_prefix(const char *s, size_t n, const char *pre)
{
    size_t k = strlen(pre);
    return n >= k && memcmp(s, pre, k) == 0;
}

/* Length of the valid UTF-8 sequence at p, or 0.  Rejects overlong forms,
 * surrogates and code points past U+10FFFF, as Go's utf8.Valid does. */
static size_t utf8_seq(const unsigned char *p, const unsigned char *end)
{
    unsigned c = p[0];
    size_t n, i;
    unsigned cp;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef)
        n = 3, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 4, cp = c & 0x07;
    else
        return 0;
    if ((size_t)(end - p) < n)
        return 0;
    for (i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
        (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
        return 0;
    return n;
}

static bool utf8_valid_no_nul(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n;

    while (p < end) {
        size_t k = utf8_seq(p, end);
        if (k == 0 || *p == 0)
            return false;
        p += k;
    }
    return true;
}

static bool name_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '_';
}

/*
 * Writes the sanitised form of s[0..n) to out (cap bytes, NUL added): one
 * '_' per character outside [A-Za-z0-9_], a '_' before a leading digit.
 * Returns the length, or -1 if it would exceed max.
 */
static long sanitise(const char *s, size_t n, char *out, size_t max)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    size_t k = 0;

    if (n > 0 && p[0] >= '0' && p[0] <= '9')
        out[k++] = '_';
    while (p < end) {
        size_t step = 1;
        char c = '_';

        if (name_char(*p))
            c = (char)*p;
        else if (*p >= 0x80)
            step = utf8_seq(p, end) ? utf8_seq(p, end) : 1;
        if (k == max)
            return -1;
        out[k++] = c;
        p += step;
    }
    out[k] = '\0';
    return (long)k;
}

/*
 * Parses a decimal number: [+-]digits[.digits][e[+-]digits], at least one
 * digit in the mantissa.  No "nan", "inf" or hexadecimal.  *out is finite.
 */
static bool parse_number(const char *s, size_t n, double *out)
{
    char buf[STATSD_MAX_NUMBER + 1];
    size_t i = 0, digits = 0;
    char *end;

    if (n == 0 || n > STATSD_MAX_NUMBER)
        return false;
    if (s[i] == '+' || s[i] == '-')
        i++;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
        digits++;
    if (i < n && s[i] == '.')
        for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++)
            digits++;
    if (digits == 0)
        return false;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        size_t edigits = 0;
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
            edigits++;
        if (edigits == 0)
            return false;
    }
    if (i != n)
        return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    *out = strtod(buf, &end);
    return end == buf + n && isfinite(*out);
}

static bool parse_type(const char *s, size_t n, enum statsd_type *t)
{
    for (int i = STATSD_COUNTER; i <= STATSD_SET; i++) {
        const char *name = statsd_type_name((enum statsd_type)i);
        if (strlen(name) == n && memcmp(name, s, n) == 0) {
            *t = (enum statsd_type)i;
            return true;
        }
    }
    return false;
}

/* ---- one line ---- */

/* Where the line-wide fields were found while splitting. */
struct fields {
    const char *tags; /* text after '#', or NULL */
    size_t tags_len;
    const char *time; /* text after 'T', or NULL */
    size_t time_len;
};

static int set_type(struct statsd_parser *p, uint64_t ln, const char *s,
                    size_t n, struct statsd_part *part)
{
    char q[QUOTE_MAX + 4];

    if (n == 0)
        return bad(p, ln, "type is empty; expected one of c, g, ms, h, d, s");
    if (parse_type(s, n, &part->type))
        return 0;
    excerpt(q, sizeof(q), s, n);
    return bad(p, ln, "type '%s' is not one of c, g, ms, h, d, s", q);
}

static int set_rate(struct statsd_parser *p, uint64_t ln, const char *s,
                    size_t n, struct statsd_part *part, bool *seen)
{
    char q[QUOTE_MAX + 4];
    double r;

    excerpt(q, sizeof(q), s, n);
    if (*seen)
        return bad(p, ln, "sample rate '%s' given twice", q);
    *seen = true;
    if (!parse_number(s + 1, n - 1, &r))
        return bad(p, ln, "sample rate '%s' is not a number", q);
    if (!(r > 0 && r <= 1))
        return bad(p, ln, "sample rate '%s' is not in (0, 1]", q);
    part->rate = r;
    return 0;
}

/*
 * Reads the fields after a type, from *pos (at a '|' or the end).  Sets
 * *more if a rate field ended in ':' (Etsy form: the next part starts at
 * *pos).  Returns 0 or BAD.
 */
static int split_fields(struct statsd_parser *p, uint64_t ln, const char **pos,
                        const char *end, struct statsd_part *part,
                        struct fields *f, bool *more)
{
    const char *s = *pos;
    bool rate_seen = false;
    char q[QUOTE_MAX + 4];

    while (s < end) {
        const char *tok = s + 1, *te = find(tok, end, '|');
        size_t n = (size_t)(te - tok);

        if (n == 0)
            return bad(p, ln, "empty field after '|'");
        if (tok[0] == '@') {
            const char *c = find(tok, te, ':');
            if (set_rate(p, ln, tok, (size_t)(c - tok), part, &rate_seen))
                return BAD;
            if (c < te) {
                *pos = c + 1;
                *more = true;
                return 0;
            }
        } else if (tok[0] == '#') {
            if (f->tags)
                return bad(p, ln, "tags (|#) given twice");
            f->tags = tok + 1;
            f->tags_len = n - 1;
        } else if (tok[0] == 'T') {
            if (f->time)
                return bad(p, ln, "timestamp (|T) given twice");
            f->time = tok + 1;
            f->time_len = n - 1;
        } else if (!has_prefix(tok, n, "c:") && !has_prefix(tok, n, "e:") &&
                   !has_prefix(tok, n, "card:")) {
            excerpt(q, sizeof(q), tok, n);
            return bad(p, ln,
                       "unknown field '|%s'; expected @rate, #tags, "
                       "T<seconds>, c:, e: or card:",
                       q);
        }
        s = te;
    }
    *pos = end;
    *more = false;
    return 0;
}

/*
 * Splits the text after the name's ':' into parts: value text, type and
 * rate each, plus the line-wide fields.  Etsy's name:v1|t1:v2|t2 form is
 * recognised where a type or a rate is followed by ':'.
 */
static int split_parts(struct statsd_parser *p, uint64_t ln, const char *s,
                       const char *end, size_t *nparts, struct fields *f)
{
    char q[QUOTE_MAX + 4];

    *nparts = 0;
    for (;;) {
        struct statsd_part *part;
        const char *bar, *tok, *te, *colon;
        bool more;

        if (*nparts == STATSD_MAX_PARTS)
            return bad(p, ln, "more than %d typed parts (v|t:v|t...)",
                       STATSD_MAX_PARTS);
        part = &p->parts[(*nparts)++];
        part->rate = 1.0;
        bar = find(s, end, '|');
        if (bar == end) {
            excerpt(q, sizeof(q), s, (size_t)(end - s));
            return bad(p, ln, "no '|type' after value '%s'", q);
        }
        part->text = s;
        part->len = (size_t)(bar - s);
        tok = bar + 1;
        te = find(tok, end, '|');
        colon = find(tok, te, ':');
        if (set_type(p, ln, tok, (size_t)(colon - tok), part))
            return BAD;
        if (colon < te) {
            s = colon + 1;
            continue;
        }
        s = te;
        if (split_fields(p, ln, &s, end, part, f, &more))
            return BAD;
        if (!more)
            return 0;
    }
}

/* Fills part's values from its text (all types but s). */
static int parse_values(struct statsd_parser *p, uint64_t ln, size_t *next,
                        struct statsd_part *part)
{
    const char *s = part->text, *end = s + part->len;
    const char *kind = statsd_type_name(part->type);
    char q[QUOTE_MAX + 4];

    part->first = *next;
    part->nvalues = 0;
    for (;;) {
        const char *c = find(s, end, ':');
        size_t n = (size_t)(c - s);
        struct statsd_value *v;

        if (*next == STATSD_MAX_VALUES)
            return bad(p, ln, "more than %d values in one line",
                       STATSD_MAX_VALUES);
        v = &p->values[(*next)++];
        excerpt(q, sizeof(q), s, n);
        if (n == 0)
            return bad(p, ln, "value is empty");
        if (!parse_number(s, n, &v->v))
            return bad(p, ln, "value '%s' is not a number", q);
        v->delta = part->type == STATSD_GAUGE && (s[0] == '+' || s[0] == '-');
        if (part->type != STATSD_GAUGE && s[0] == '-' && v->v != 0)
            return bad(p, ln, "value '%s' is negative; |%s values are >= 0", q,
                       kind);
        if (v->v == 0)
            v->v = 0; /* -0 is 0 for everything but a gauge's sign */
        part->nvalues++;
        if (c == end)
            return 0;
        s = c + 1;
    }
}

/* Parses "#" text into p->tags, sorted; type decides whether le is free. */
static int parse_tags(struct statsd_parser *p, uint64_t ln, const char *s,
                      size_t n, bool histogram, size_t *ntags);

static int parse_time(struct statsd_parser *p, uint64_t ln,
                      const struct fields *f, int64_t *ms)
{
    char q[QUOTE_MAX + 4];
    int64_t sec = 0;
    size_t i;

    excerpt(q, sizeof(q), f->time, f->time_len);
    if (f->time_len == 0 || f->time_len > 12)
        return bad(p, ln, "timestamp 'T%s' is not unix seconds", q);
    for (i = 0; i < f->time_len; i++) {
        if (f->time[i] < '0' || f->time[i] > '9')
            return bad(p, ln, "timestamp 'T%s' is not unix seconds", q);
        sec = sec * 10 + (f->time[i] - '0');
    }
    if (sec > STATSD_MAX_TIME_S)
        return bad(p, ln, "timestamp 'T%s' is past the year 9999", q);
    *ms = sec * 1000;
    return 0;
}

/* Checks what only the whole line can tell: parts against tags and time. */
static int check_line(struct statsd_parser *p, uint64_t ln, size_t nparts,
                      const struct fields *f)
{
    const struct statsd_part *first = &p->parts[0];

    if (nparts > 1) {
        for (size_t i = 0; i < nparts; i++)
            if (memchr(p->parts[i].text, ':', p->parts[i].len))
                return bad(p, ln,
                           "several values (v1:v2|t) cannot be mixed with "
                           "several types (v1|t1:v2|t2) in one line");
        if (f->tags || f->time)
            return bad(p, ln,
                       "tags and timestamps are ambiguous with several "
                       "types (v1|t1:v2|t2) in one line");
        return 0;
    }
    if (!f->time)
        return 0;
    if (first->type != STATSD_COUNTER && first->type != STATSD_GAUGE)
        return bad(p, ln,
                   "timestamp (|T) is allowed on c and g lines only, "
                   "not on |%s",
                   statsd_type_name(first->type));
    if (first->nvalues != 1)
        return bad(p, ln, "timestamp (|T) needs exactly one value");
    if (p->values[first->first].delta)
        return bad(p, ln, "a gauge delta (+/-) cannot carry a timestamp");
    return 0;
}

static int deliver(struct statsd_parser *p, uint64_t ln, size_t nparts,
                   size_t ntags, const struct fields *f, int64_t t,
                   size_t name_len, const struct statsd_parse_cb *cb, void *ctx)
{
    for (size_t i = 0; i < nparts; i++) {
        const struct statsd_part *part = &p->parts[i];
        struct statsd_line l = {
            .lineno = ln,
            .type = part->type,
            .name = p->name,
            .name_len = name_len,
            .tags = p->tags,
            .ntags = ntags,
            .rate = part->rate,
            .has_time = f->time != NULL,
            .time_ms = t,
        };
        int rc;

        if (part->type == STATSD_SET) {
            l.member = part->text;
            l.member_len = part->len;
        } else {
            l.values = p->values + part->first;
            l.nvalues = part->nvalues;
        }
        rc = cb->line(ctx, &l);
        if (rc != TSDB_OK)
            return rc;
    }
    return TSDB_OK;
}

static int parse_name(struct statsd_parser *p, uint64_t ln, const char *s,
                      size_t n, size_t *len)
{
    char q[QUOTE_MAX + 4];
    long k;

    if (n == 0)
        return bad(p, ln, "metric name is empty");
    k = sanitise(s, n, p->name, STATSD_MAX_NAME);
    if (k < 0)
        return bad(p, ln, "metric name is longer than %d bytes",
                   STATSD_MAX_NAME);
    if (k >= 2 && p->name[0] == '_' && p->name[1] == '_') {
        excerpt(q, sizeof(q), p->name, (size_t)k);
        return bad(p, ln, "metric name '%s' is reserved (starts with __)", q);
    }
    *len = (size_t)k;
    return 0;
}

/*
 * Parses one line (no newline).  Returns 0 when delivered, BAD when bad
 * (p->reason says why), or the negative code a callback stopped with.
 */
static int parse_line(struct statsd_parser *p, const char *s, size_t n,
                      uint64_t ln, const struct statsd_parse_cb *cb, void *ctx)
{
    const char *end = s + n, *colon;
    struct fields f = {0};
    size_t nparts = 0, ntags = 0, nvalues = 0, name_len = 0;
    bool hist = false;
    int64_t t = 0;

    if (n > STATSD_MAX_LINE)
        return bad(p, ln, "line is longer than %d bytes", STATSD_MAX_LINE);
    if (has_prefix(s, n, "_e{"))
        return bad(p, ln, "events (_e{...}) are not supported");
    if (has_prefix(s, n, "_sc|"))
        return bad(p, ln, "service checks (_sc|...) are not supported");
    colon = find(s, end, ':');
    if (colon == end)
        return bad(p, ln, "no ':' after the metric name");
    if (parse_name(p, ln, s, (size_t)(colon - s), &name_len))
        return BAD;
    if (split_parts(p, ln, colon + 1, end, &nparts, &f))
        return BAD;
    for (size_t i = 0; i < nparts; i++) {
        struct statsd_part *part = &p->parts[i];

        if (part->type == STATSD_TIMER || part->type == STATSD_HISTOGRAM ||
            part->type == STATSD_DISTRIBUTION)
            hist = true;
        if (part->type != STATSD_SET) {
            if (parse_values(p, ln, &nvalues, part))
                return BAD;
        } else if (part->len == 0) {
            return bad(p, ln, "set member is empty");
        }
    }
    if (check_line(p, ln, nparts, &f))
        return BAD;
    if (f.time && parse_time(p, ln, &f, &t))
        return BAD;
    if (f.tags && parse_tags(p, ln, f.tags, f.tags_len, hist, &ntags))
        return BAD;
    return deliver(p, ln, nparts, ntags, &f, t, name_len, cb, ctx);
}

/* ---- tags ---- */

static int add_tag(struct statsd_parser *p, uint64_t ln, const char *s,
                   size_t n, bool hist, size_t *ntags)
{
    const char *colon = find(s, s + n, ':');
    size_t klen = (size_t)(colon - s);
    const char *v = colon < s + n ? colon + 1 : "true";
    size_t vlen = colon < s + n ? n - klen - 1 : 4;
    char q[QUOTE_MAX + 4];
    struct statsd_tag *t;
    char *key;
    long k;

    excerpt(q, sizeof(q), s, n);
    if (klen == 0)
        return bad(p, ln, "tag '%s' has an empty name", q);
    if (vlen == 0)
        return 0; /* empty value: the label is absent */
    if (*ntags == STATSD_MAX_TAGS)
        return bad(p, ln, "more than %d tags", STATSD_MAX_TAGS);
    key = p->keys[*ntags];
    k = sanitise(s, klen, key, TSDB_MAX_LABEL_NAME);
    if (k < 0)
        return bad(p, ln, "tag '%s' has a name longer than %d bytes", q,
                   TSDB_MAX_LABEL_NAME);
    if (k >= 2 && key[0] == '_' && key[1] == '_')
        return bad(p, ln, "tag '%s' is reserved (starts with __)", q);
    if (hist && k == 2 && memcmp(key, "le", 2) == 0)
        return bad(p, ln, "tag 'le' is reserved for histogram buckets");
    if (vlen > TSDB_MAX_LABEL_VALUE)
        return bad(p, ln, "tag '%s' has a value longer than %d bytes", q,
                   TSDB_MAX_LABEL_VALUE);
    if (!utf8_valid_no_nul(v, vlen))
        return bad(p, ln, "tag '%s' has a value that is not UTF-8 text", q);
    t = &p->tags[(*ntags)++];
    t->key = key;
    t->key_len = (size_t)k;
    t->value = v;
    t->value_len = vlen;
    return 0;
}

static int tag_cmp(const struct statsd_tag *a, const struct statsd_tag *b)
{
    size_t n = a->key_len < b->key_len ? a->key_len : b->key_len;
    int c = memcmp(a->key, b->key, n);

    if (c != 0)
        return c;
    return (a->key_len > b->key_len) - (a->key_len < b->key_len);
}

static int parse_tags(struct statsd_parser *p, uint64_t ln, const char *s,
                      size_t n, bool hist, size_t *ntags)
{
    const char *end = s + n;

    *ntags = 0;
    while (s < end) {
        const char *c = find(s, end, ',');
        if (c > s && add_tag(p, ln, s, (size_t)(c - s), hist, ntags))
            return BAD;
        s = c + 1;
    }

    /* Insertion sort: at most STATSD_MAX_TAGS, usually a handful. */
    for (size_t i = 1; i < *ntags; i++) {
        struct statsd_tag t = p->tags[i];
        size_t j = i;
        for (; j > 0 && tag_cmp(&p->tags[j - 1], &t) > 0; j--)
            p->tags[j] = p->tags[j - 1];
        p->tags[j] = t;
    }
    for (size_t i = 1; i < *ntags; i++)
        if (tag_cmp(&p->tags[i - 1], &p->tags[i]) == 0)
            return bad(p, ln, "two tags become label '%s'", p->tags[i].key);
    return 0;
}

/* ---- body ---- */

static int report(struct statsd_parser *p, uint64_t ln,
                  const struct statsd_parse_cb *cb, void *ctx)
{
    p->rejected++;
    return cb->reject ? cb->reject(ctx, ln, p->reason) : TSDB_OK;
}

int statsd_parse(struct statsd_parser *p, const char *body, size_t len,
                 const struct statsd_parse_cb *cb, void *ctx)
{
    const char *s = body, *end = body + len;
    uint64_t ln = 0;
    int rc;

    while (s < end) {
        const char *nl = find(s, end, '\n');
        size_t n = (size_t)(nl - s);

        ln++;
        if (n > 0 && s[n - 1] == '\r')
            n--;
        if (n > 0) {
            p->lines++;
            if (ln > STATSD_MAX_LINES) {
                bad(p, ln,
                    "more than %d lines in one body; this line and the "
                    "rest are ignored",
                    STATSD_MAX_LINES);
                rc = report(p, ln, cb, ctx);
                return rc != TSDB_OK ? rc : TSDB_ELIMIT;
            }
            rc = parse_line(p, s, n, ln, cb, ctx);
            if (rc < 0)
                return rc;
            if (rc == BAD) {
                rc = report(p, ln, cb, ctx);
                if (rc != TSDB_OK)
                    return rc;
            } else {
                p->accepted++;
            }
        }
        s = nl + 1;
    }
    return TSDB_OK;
}
