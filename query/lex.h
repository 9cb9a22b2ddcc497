/*
 * PromQL lexer: cuts an expression into tokens for query/parse.c.
 *
 * The lexer is context-free: keywords (by, on, bool, offset, sum, ...) come
 * out as QUERY_T_IDENT and the parser decides from the position whether a
 * word is a keyword, a metric name or a label name, because PromQL lets a
 * label be called "on" or "sum".  Inf and NaN are identifiers here too.
 * Comments (# to end of line) and white space are skipped.
 */
#ifndef QUERY_LEX_H
#define QUERY_LEX_H

#include <stdbool.h>
#include <stddef.h>

enum query_tok {
    QUERY_T_EOF,
    QUERY_T_ERROR,    /* lexing stopped here; see query_lexer.msg */
    QUERY_T_IDENT,    /* [a-zA-Z_:][a-zA-Z0-9_:]* */
    QUERY_T_NUMBER,   /* decimal, hex or scientific; sign not included */
    QUERY_T_DURATION, /* digits and units, e.g. 1h30m; checked by parser */
    QUERY_T_STRING,   /* "..", '..' or `..`, quotes included */
    QUERY_T_LPAREN,
    QUERY_T_RPAREN,
    QUERY_T_LBRACE,
    QUERY_T_RBRACE,
    QUERY_T_LBRACKET,
    QUERY_T_RBRACKET,
    QUERY_T_COMMA,
    QUERY_T_COLON,
    QUERY_T_AT,
    QUERY_T_ASSIGN, /* = (matchers only) */
    QUERY_T_ADD,
    QUERY_T_SUB,
    QUERY_T_MUL,
    QUERY_T_DIV,
    QUERY_T_MOD,
    QUERY_T_POW,
    QUERY_T_EQLC, /* == */
    QUERY_T_NEQ,
    QUERY_T_LTE,
    QUERY_T_LSS,
    QUERY_T_GTE,
    QUERY_T_GTR,
    QUERY_T_EQL_REGEX,
    QUERY_T_NEQ_REGEX,
};

struct query_token {
    enum query_tok kind;
    size_t pos; /* byte offset of the first character */
    size_t len; /* bytes of source text */
};

/*
 * Lexer state over a borrowed source text, which must outlive it.  msg is
 * set (without position) when a QUERY_T_ERROR token is returned; after
 * that every call returns the same error token again.
 */
struct query_lexer {
    const char *src;
    size_t len;
    size_t pos;
    bool failed;
    struct query_token err_tok;
    char msg[128];
};

void query_lexer_init(struct query_lexer *lx, const char *src, size_t len);

/* Returns the next token in *tok; never fails other than by an error token. */
void query_lexer_next(struct query_lexer *lx, struct query_token *tok);

/* True if ident (len bytes) equals word, ASCII case ignored. */
bool query_lex_word_is(const char *ident, size_t len, const char *word);

/*
 * Decodes a QUERY_T_STRING token's text (quotes included) with Go's escape
 * rules into out (at least len bytes), setting *out_len.  Returns TSDB_OK,
 * or TSDB_EINVAL with a reason in msg (msg_cap bytes) and the byte offset
 * of the bad escape, relative to text, in *bad.
 */
int query_lex_unquote(const char *text, size_t len, char *out, size_t *out_len,
                      char *msg, size_t msg_cap, size_t *bad);

#endif
