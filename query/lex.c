/*
 * PromQL lexer (see lex.h).  Sits under query/parse.c and knows nothing of
 * the grammar beyond which characters make up one token.
 *
 * Invariants:
 * 1. Every token's [pos, pos+len) lies inside the source text.
 * 2. Once an error token is returned, the lexer stays failed: later calls
 *    return the same token, so the parser can never skip past an error.
 */
#include "query/lex.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "tsdb/error.h"

void query_lexer_init(struct query_lexer *lx, const char *src, size_t len)
{
    memset(lx, 0, sizeof(*lx));
    lx->src = src;
    lx->len = len;
}

bool query_lex_word_is(const char *ident, size_t len, const char *word)
{
    size_t i;

    for (i = 0; i < len && word[i]; i++)
        if (tolower((unsigned char)ident[i]) != word[i])
            return false;
    return i == len && word[i] == '\0';
}

static int peek(const struct query_lexer *lx, size_t off)
{
    size_t p = lx->pos + off;

    return p < lx->len ? (unsigned char)lx->src[p] : -1;
}

static bool is_ident_start(int c)
{
    return c >= 0 && (isalpha(c) || c == '_' || c == ':');
}

static bool is_ident_char(int c)
{
    return c >= 0 && (isalnum(c) || c == '_' || c == ':');
}

static bool is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static void fail(struct query_lexer *lx, struct query_token *tok, size_t pos,
                 const char *msg)
{
    lx->failed = true;
    lx->err_tok.kind = QUERY_T_ERROR;
    lx->err_tok.pos = pos;
    lx->err_tok.len = 0;
    snprintf(lx->msg, sizeof(lx->msg), "%s", msg);
    *tok = lx->err_tok;
}

/* Length of a duration (1h30m, 5ms) starting at p, or 0 if there is none. */
static size_t scan_duration(const struct query_lexer *lx, size_t p)
{
    size_t start = p;
    bool units = false;

    while (p < lx->len && is_digit((unsigned char)lx->src[p])) {
        while (p < lx->len && is_digit((unsigned char)lx->src[p]))
            p++;
        if (p + 1 < lx->len && lx->src[p] == 'm' && lx->src[p + 1] == 's')
            p += 2;
        else if (p < lx->len && strchr("ywdhms", lx->src[p]) &&
                 lx->src[p] != '\0')
            p++;
        else
            return 0;
        units = true;
    }
    /* "5m:" ends a subquery range; "5mx" or "5m.1" is no duration. */
    if (!units || (p < lx->len && (isalnum((unsigned char)lx->src[p]) ||
                                   lx->src[p] == '_' || lx->src[p] == '.')))
        return 0;
    return p - start;
}

/* Scans a number or duration; PromQL has no sign inside a literal. */
static void lex_number(struct query_lexer *lx, struct query_token *tok)
{
    size_t start = lx->pos, n = scan_duration(lx, lx->pos);
    char msg[96];

    if (n > 0) {
        tok->kind = QUERY_T_DURATION;
        lx->pos += n;
        tok->len = n;
        return;
    }
    if (peek(lx, 0) == '0' && (peek(lx, 1) == 'x' || peek(lx, 1) == 'X')) {
        lx->pos += 2;
        while (peek(lx, 0) >= 0 && isxdigit(peek(lx, 0)))
            lx->pos++;
    } else {
        while (is_digit(peek(lx, 0)))
            lx->pos++;
        if (peek(lx, 0) == '.')
            lx->pos++;
        while (is_digit(peek(lx, 0)))
            lx->pos++;
        if ((peek(lx, 0) == 'e' || peek(lx, 0) == 'E') &&
            (is_digit(peek(lx, 1)) ||
             ((peek(lx, 1) == '+' || peek(lx, 1) == '-') &&
              is_digit(peek(lx, 2))))) {
            lx->pos += 2;
            while (is_digit(peek(lx, 0)))
                lx->pos++;
        }
    }
    if (is_ident_char(peek(lx, 0)) || peek(lx, 0) == '.') {
        while (is_ident_char(peek(lx, 0)) || peek(lx, 0) == '.')
            lx->pos++;
        snprintf(msg, sizeof(msg), "bad number or duration syntax: \"%.*s\"",
                 (int)(lx->pos - start > 40 ? 40 : lx->pos - start),
                 lx->src + start);
        fail(lx, tok, start, msg);
        return;
    }
    tok->kind = QUERY_T_NUMBER;
    tok->len = lx->pos - start;
}

static void lex_string(struct query_lexer *lx, struct query_token *tok)
{
    size_t start = lx->pos;
    int q = peek(lx, 0), c;

    lx->pos++;
    for (;;) {
        c = peek(lx, 0);
        if (c < 0 || (c == '\n' && q != '`')) {
            fail(lx, tok, start,
                 q == '`' ? "unterminated raw string"
                          : "unterminated quoted string");
            return;
        }
        lx->pos++;
        if (c == q)
            break;
        if (c == '\\' && q != '`' && peek(lx, 0) >= 0)
            lx->pos++;
    }
    tok->kind = QUERY_T_STRING;
    tok->len = lx->pos - start;
}

/* Operators and punctuation; returns false for an unknown character. */
static bool lex_symbol(struct query_lexer *lx, struct query_token *tok)
{
    static const struct {
        const char *text;
        enum query_tok kind;
    } syms[] = {
        {"==", QUERY_T_EQLC},      {"!=", QUERY_T_NEQ},
        {"<=", QUERY_T_LTE},       {">=", QUERY_T_GTE},
        {"=~", QUERY_T_EQL_REGEX}, {"!~", QUERY_T_NEQ_REGEX},
        {"(", QUERY_T_LPAREN},     {")", QUERY_T_RPAREN},
        {"{", QUERY_T_LBRACE},     {"}", QUERY_T_RBRACE},
        {"[", QUERY_T_LBRACKET},   {"]", QUERY_T_RBRACKET},
        {",", QUERY_T_COMMA},      {":", QUERY_T_COLON},
        {"@", QUERY_T_AT},         {"=", QUERY_T_ASSIGN},
        {"+", QUERY_T_ADD},        {"-", QUERY_T_SUB},
        {"*", QUERY_T_MUL},        {"/", QUERY_T_DIV},
        {"%", QUERY_T_MOD},        {"^", QUERY_T_POW},
        {"<", QUERY_T_LSS},        {">", QUERY_T_GTR},
    };
    size_t i, n;

    for (i = 0; i < sizeof(syms) / sizeof(syms[0]); i++) {
        n = strlen(syms[i].text);
        if (lx->len - lx->pos >= n &&
            memcmp(lx->src + lx->pos, syms[i].text, n) == 0) {
            tok->kind = syms[i].kind;
            tok->len = n;
            lx->pos += n;
            return true;
        }
    }
    return false;
}

void query_lexer_next(struct query_lexer *lx, struct query_token *tok)
{
    int c;
    char msg[64];

    if (lx->failed) {
        *tok = lx->err_tok;
        return;
    }

    /* White space and comments separate tokens and are dropped. */
    for (;;) {
        c = peek(lx, 0);
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            lx->pos++;
        } else if (c == '#') {
            while (peek(lx, 0) >= 0 && peek(lx, 0) != '\n')
                lx->pos++;
        } else {
            break;
        }
    }
    tok->pos = lx->pos;
    tok->len = 0;
    if (c < 0) {
        tok->kind = QUERY_T_EOF;
        return;
    }
    if (is_digit(c) || (c == '.' && is_digit(peek(lx, 1)))) {
        lex_number(lx, tok);
        return;
    }
    if (is_ident_start(c) && !(c == ':' && !is_ident_start(peek(lx, 1)))) {
        while (is_ident_char(peek(lx, 0)))
            lx->pos++;
        tok->kind = QUERY_T_IDENT;
        tok->len = lx->pos - tok->pos;
        return;
    }
    if (c == '"' || c == '\'' || c == '`') {
        lex_string(lx, tok);
        return;
    }
    if (lex_symbol(lx, tok))
        return;
    if (c >= 0x20 && c < 0x7f)
        snprintf(msg, sizeof(msg), "unexpected character: '%c'", c);
    else
        snprintf(msg, sizeof(msg), "unexpected character: '\\x%02x'", c);
    fail(lx, tok, lx->pos, msg);
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static size_t put_utf8(char *out, unsigned long cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/*
 * One escape after the backslash at text[*i]; advances *i past it.  The
 * output is never longer than the escape text, so out of len bytes is
 * always enough.
 */
static int unescape(const char *text, size_t len, size_t *i, char q, char *out,
                    size_t *o, char *msg, size_t cap)
{
    static const char simple[] = "a\ab\bf\fn\nr\rt\tv\v\\\\";
    size_t j, digits = 0;
    unsigned long v = 0;
    int c = (unsigned char)text[*i + 1], base = 16, d;
    const char *s = strchr(simple, c);

    if (c != 0 && s && (s - simple) % 2 == 0) {
        out[(*o)++] = s[1];
        *i += 2;
        return TSDB_OK;
    }
    if (c == q) {
        out[(*o)++] = q;
        *i += 2;
        return TSDB_OK;
    }
    if (c == 'x')
        digits = 2;
    else if (c == 'u')
        digits = 4;
    else if (c == 'U')
        digits = 8;
    else if (c >= '0' && c <= '7')
        digits = 3, base = 8;
    if (digits == 0) {
        snprintf(msg, cap, "unknown escape sequence '%c'", c ? c : '?');
        return TSDB_EINVAL;
    }
    j = *i + (base == 8 ? 1 : 2);
    for (size_t k = 0; k < digits; k++, j++) {
        d = j < len - 1 ? hexval((unsigned char)text[j]) : -1;
        if (d < 0 || d >= base) {
            snprintf(msg, cap, "illegal character in escape sequence");
            return TSDB_EINVAL;
        }
        v = v * (unsigned long)base + (unsigned long)d;
    }
    if ((base == 8 && v > 255) || v > 0x10ffff ||
        (v >= 0xd800 && v < 0xe000 && c != 'x' && base != 8)) {
        snprintf(msg, cap, "escape sequence is invalid Unicode code point");
        return TSDB_EINVAL;
    }

    /* \x and octal give raw bytes; \u and \U give UTF-8 code points. */
    if (c == 'x' || base == 8)
        out[(*o)++] = (char)v;
    else
        *o += put_utf8(out + *o, v);
    *i = j;
    return TSDB_OK;
}

int query_lex_unquote(const char *text, size_t len, char *out, size_t *out_len,
                      char *msg, size_t msg_cap, size_t *bad)
{
    char q = text[0];
    size_t i = 1, o = 0;
    int rc;

    if (q == '`') {
        memcpy(out, text + 1, len - 2);
        *out_len = len - 2;
        return TSDB_OK;
    }
    while (i < len - 1) {
        if (text[i] != '\\') {
            out[o++] = text[i++];
            continue;
        }
        *bad = i;
        rc = unescape(text, len, &i, q, out, &o, msg, msg_cap);
        if (rc != TSDB_OK)
            return rc;
    }
    *out_len = o;
    return TSDB_OK;
}
