/*
 * A recursive-descent parser for PromQL series selectors; see selector.h
 * for the grammar.  Layer: http/ over tsdb/matcher.h.  Pure: no logging.
 *
 * Invariants:
 * 1. On success sel->m[0..n) are initialised matchers and n >= 1.
 * 2. On failure every matcher initialised so far stays in sel->m[0..n),
 *    so release() frees exactly what exists.
 */
#include "http/selector.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cursor {
    const char *s;
    size_t pos;
    char *err;
    size_t errlen;
    struct http_selector *sel;
    char *scratch; /* decoded string, as long as the input at most */
};

static int fail(struct cursor *c, size_t pos, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Reports "LINE:COL: parse error: ..." for the byte at pos. */
static int fail(struct cursor *c, size_t pos, int rc, const char *fmt, ...)
{
    size_t line = 1, col = 1, n;
    va_list ap;

    for (size_t i = 0; i < pos; i++, col++) {
        if (c->s[i] == '\n') {
            line++;
            col = 0;
        }
    }
    n = (size_t)snprintf(c->err, c->errlen, "%zu:%zu: parse error: ", line,
                         col);
    if (n < c->errlen) {
        va_start(ap, fmt);
        vsnprintf(c->err + n, c->errlen - n, fmt, ap);
        va_end(ap);
    }
    return rc;
}

static void skip_blanks(struct cursor *c)
{
    while (c->s[c->pos] == ' ' || c->s[c->pos] == '\t' ||
           c->s[c->pos] == '\n' || c->s[c->pos] == '\r')
        c->pos++;
}

static bool is_alpha(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_';
}

static bool is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

/* Length of the name at pos: [a-zA-Z_:][a-zA-Z0-9_:]* with colons only
 * when colon is true. */
static size_t name_len(const struct cursor *c, bool colon)
{
    const char *p = c->s + c->pos;
    size_t n = 0;

    while (is_alpha(p[n]) || (n > 0 && is_digit(p[n])) ||
           (colon && p[n] == ':'))
        n++;
    return n;
}

static int hex_val(char ch)
{
    if (is_digit(ch))
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Reads n hex digits at p into *v; false if any is not one. */
static bool read_hex(const char *p, int n, uint32_t *v)
{
    *v = 0;
    for (int i = 0; i < n; i++) {
        int d = hex_val(p[i]);
        if (d < 0)
            return false;
        *v = *v * 16 + (uint32_t)d;
    }
    return true;
}

/* Writes code point cp as UTF-8 at out; returns the byte count. */
static size_t put_utf8(char *out, uint32_t cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/*
 * Decodes the escape after the backslash at c->pos into out, advancing
 * past it; returns the bytes written, or -1 after reporting.  As in Go,
 * only the string's own quote may be escaped.
 */
static int escape(struct cursor *c, char quote, char *out)
{
    static const char simple[] = "a\ab\bf\fn\nr\rt\tv\v\\\\";
    size_t at = c->pos;
    char e = c->s[c->pos + 1];
    const char *hit = e ? strchr(simple, e) : NULL;
    uint32_t v = 0;
    int len;

    if (e == quote || (hit && (hit - simple) % 2 == 0)) {
        out[0] = e == quote ? e : hit[1];
        c->pos += 2;
        return 1;
    }
    if (e >= '0' && e <= '7') {
        for (int i = 1; i <= 3; i++) {
            char d = c->s[c->pos + (size_t)i];
            if (d < '0' || d > '7') {
                fail(c, at, TSDB_EINVAL, "invalid octal escape");
                return -1;
            }
            v = v * 8 + (uint32_t)(d - '0');
        }
        if (v > 255) {
            fail(c, at, TSDB_EINVAL, "octal escape above \\377");
            return -1;
        }
        out[0] = (char)v;
        c->pos += 4;
        return 1;
    }
    len = e == 'x' ? 2 : e == 'u' ? 4 : e == 'U' ? 8 : 0;
    if (len == 0 || !read_hex(c->s + c->pos + 2, len, &v)) {
        fail(c, at, TSDB_EINVAL, "invalid escape sequence starting '\\%c'",
             e ? e : ' ');
        return -1;
    }
    c->pos += 2 + (size_t)len;
    if (e == 'x') {
        out[0] = (char)v;
        return 1;
    }
    if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) {
        fail(c, at, TSDB_EINVAL, "escape is not a Unicode code point");
        return -1;
    }
    return (int)put_utf8(out, v);
}

/* Reads the quoted string at c->pos into c->scratch (NUL-terminated). */
static int read_string(struct cursor *c)
{
    size_t start = c->pos, o = 0;
    char quote = c->s[c->pos++];

    for (;;) {
        char ch = c->s[c->pos];
        int n;

        if (ch == '\0' || ch == '\n')
            return fail(c, start, TSDB_EINVAL, "unterminated quoted string");
        if (ch == quote) {
            c->pos++;
            break;
        }
        if (ch != '\\' || quote == '`') {
            c->scratch[o++] = ch;
            c->pos++;
            continue;
        }
        n = escape(c, quote, c->scratch + o);
        if (n < 0)
            return TSDB_EINVAL;
        o += (size_t)n;
    }
    if (memchr(c->scratch, '\0', o))
        return fail(c, start, TSDB_EINVAL, "string holds a NUL byte");
    c->scratch[o] = '\0';
    return TSDB_OK;
}

/* Adds one matcher; pos is where it starts, for the error. */
static int add(struct cursor *c, size_t pos, enum tsdb_match_type type,
               const char *name, const char *value)
{
    struct http_selector *sel = c->sel;
    char why[256];
    int rc;

    if (sel->n == HTTP_SELECTOR_MAX_MATCHERS)
        return fail(c, pos, TSDB_ELIMIT, "more than %d matchers",
                    HTTP_SELECTOR_MAX_MATCHERS);
    rc =
        tsdb_matcher_init(&sel->m[sel->n], type, name, value, why, sizeof(why));
    if (rc == TSDB_EINVAL)
        return fail(c, pos, rc, "%s", why);
    if (rc == TSDB_OK)
        sel->n++;
    return rc;
}

/* label op string, at c->pos (blanks skipped). */
static int matcher(struct cursor *c)
{
    static const struct {
        const char *op;
        enum tsdb_match_type type;
    } ops[] = {{"=~", TSDB_MATCH_RE},
               {"!~", TSDB_MATCH_NRE},
               {"!=", TSDB_MATCH_NEQ},
               {"=", TSDB_MATCH_EQ}};
    size_t start = c->pos, len = name_len(c, false), i;
    char name[TSDB_MAX_LABEL_NAME + 1];
    int rc;

    if (len == 0)
        return fail(c, c->pos, TSDB_EINVAL, "expected a label name");
    if (len > TSDB_MAX_LABEL_NAME)
        return fail(c, c->pos, TSDB_EINVAL, "label name longer than %d bytes",
                    TSDB_MAX_LABEL_NAME);
    memcpy(name, c->s + c->pos, len);
    name[len] = '\0';
    c->pos += len;
    skip_blanks(c);
    for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
        if (strncmp(c->s + c->pos, ops[i].op, strlen(ops[i].op)) == 0)
            break;
    if (i == sizeof(ops) / sizeof(ops[0]))
        return fail(c, c->pos, TSDB_EINVAL,
                    "expected =, !=, =~ or !~ after label name \"%s\"", name);
    c->pos += strlen(ops[i].op);
    skip_blanks(c);
    if (!strchr("\"'`", c->s[c->pos]) || c->s[c->pos] == '\0')
        return fail(c, c->pos, TSDB_EINVAL, "expected a quoted string after %s",
                    ops[i].op);
    rc = read_string(c);
    if (rc == TSDB_OK)
        rc = add(c, start, ops[i].type, name, c->scratch);
    return rc;
}

/* "{" [matcher ("," matcher)* [","]] "}" with c->pos on the brace. */
static int braces(struct cursor *c)
{
    c->pos++;
    for (;;) {
        int rc;

        skip_blanks(c);
        if (c->s[c->pos] == '}')
            break;
        rc = matcher(c);
        if (rc != TSDB_OK)
            return rc;
        skip_blanks(c);
        if (c->s[c->pos] == ',') {
            c->pos++;
            continue;
        }
        if (c->s[c->pos] != '}')
            return fail(c, c->pos, TSDB_EINVAL,
                        "expected , or } after a label matcher");
    }
    c->pos++;
    return TSDB_OK;
}

/* The Prometheus rules that hold for the selector as a whole. */
static int check_whole(struct cursor *c, bool named)
{
    const struct http_selector *sel = c->sel;
    bool nonempty = false;

    for (size_t i = 0; i < sel->n; i++) {
        if (named && i > 0 && strcmp(sel->m[i].name, "__name__") == 0)
            return fail(c, 0, TSDB_EINVAL,
                        "metric name must not be set twice: \"%s\" or \"%s\"",
                        sel->m[0].value, sel->m[i].value);
        nonempty = nonempty || !sel->m[i].matches_empty;
    }
    if (!nonempty)
        return fail(c, 0, TSDB_EINVAL,
                    "vector selector must contain at least one non-empty "
                    "matcher");
    return TSDB_OK;
}

static int parse(struct cursor *c)
{
    size_t len;
    bool named = false;
    int rc = TSDB_OK;

    skip_blanks(c);
    len = name_len(c, true);
    if (len > 0) {
        char *name = c->scratch;

        memcpy(name, c->s + c->pos, len);
        name[len] = '\0';
        rc = add(c, c->pos, TSDB_MATCH_EQ, "__name__", name);
        c->pos += len;
        named = true;
        skip_blanks(c);
    }
    if (rc == TSDB_OK && c->s[c->pos] == '{')
        rc = braces(c);
    else if (rc == TSDB_OK && !named)
        return fail(c, c->pos, TSDB_EINVAL,
                    c->s[c->pos] ? "expected a metric name or {"
                                 : "no selector found in input");
    if (rc != TSDB_OK)
        return rc;
    skip_blanks(c);
    if (c->s[c->pos] != '\0')
        return fail(c, c->pos, TSDB_EINVAL,
                    "unexpected '%c' after the selector (match[] takes a "
                    "plain series selector)",
                    c->s[c->pos]);
    return check_whole(c, named);
}

int http_selector_parse(const char *s, struct http_selector *sel, char *err,
                        size_t errlen)
{
    struct cursor c = {s, 0, err, errlen, sel, NULL};
    int rc;

    memset(sel, 0, sizeof(*sel));
    sel->m = calloc(HTTP_SELECTOR_MAX_MATCHERS, sizeof(*sel->m));
    c.scratch = malloc(strlen(s) + 1);
    rc = sel->m && c.scratch ? parse(&c) : TSDB_ENOMEM;
    if (rc == TSDB_ENOMEM)
        snprintf(err, errlen, "out of memory parsing a selector");
    free(c.scratch);
    return rc;
}

void http_selector_release(struct http_selector *sel)
{
    if (!sel->m)
        return;
    for (size_t i = 0; i < sel->n; i++)
        tsdb_matcher_release(&sel->m[i]);
    free(sel->m);
    memset(sel, 0, sizeof(*sel));
}

bool http_selector_matches(const struct http_selector *sel,
                           const struct tsdb_labels *ls)
{
    for (size_t i = 0; i < sel->n; i++) {
        const char *v = tsdb_labels_get(ls, sel->m[i].name);
        if (!tsdb_matcher_matches(&sel->m[i], v ? v : "", v ? strlen(v) : 0))
            return false;
    }
    return true;
}
