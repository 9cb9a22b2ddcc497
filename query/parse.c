/*
 * PromQL parser (see parse.h): recursive descent with precedence climbing
 * for binary operators, on top of query/lex.c, building query/ast.h trees.
 *
 * Precedence, loosest first: or; and unless; == != <= < >= >; + -;
 * * / % atan2; ^ (right-associative).  Unary + and - bind like * / %, so
 * -a ^ b is -(a ^ b) and -a * b is (-a) * b; a sign in front of a number
 * literal folds into the number.  offset, @ and [..] bind tightest.
 *
 * Invariants:
 * 1. p->tok is the current token, p->ahead the one after it.
 * 2. Every function returning a node returns NULL exactly when p->rc is
 *    set, and then owns nothing: partial trees are freed where they fail.
 * 3. Every node's height is at most QUERY_PARSE_MAX_DEPTH.
 */
#include "query/parse.h"

#define PCRE2_CODE_UNIT_WIDTH 8

#include <math.h>
#include <pcre2.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/lex.h"
#include "tsdb/error.h"

struct parser {
    struct query_lexer lx;
    struct query_token tok, ahead;
    int depth;
    int rc;
    struct query_parse_err *err;
};

static void perr(struct parser *p, size_t pos, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Records the first error only; the position becomes line:column. */
static void perr(struct parser *p, size_t pos, int rc, const char *fmt, ...)
{
    struct query_parse_err *e = p->err;
    char text[200];
    va_list ap;
    int line = 1;
    size_t bol = 0;

    if (p->rc != TSDB_OK)
        return;
    p->rc = rc;
    if (!e)
        return;
    for (size_t i = 0; i < pos && i < p->lx.len; i++)
        if (p->lx.src[i] == '\n')
            line++, bol = i + 1;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    e->pos = pos;
    e->line = line;
    e->col = (int)(pos - bol) + 1;
    snprintf(e->msg, sizeof(e->msg), "%d:%d: parse error: %s", e->line, e->col,
             text);
}

static void nomem(struct parser *p)
{
    if (p->rc == TSDB_OK && p->err)
        snprintf(p->err->msg, sizeof(p->err->msg), "out of memory");
    if (p->rc == TSDB_OK)
        p->rc = TSDB_ENOMEM;
}

static void advance(struct parser *p)
{
    p->tok = p->ahead;
    query_lexer_next(&p->lx, &p->ahead);
}

static const char *tok_text(const struct parser *p)
{
    return p->lx.src + p->tok.pos;
}

static bool is_word(const struct parser *p, const char *word)
{
    return p->tok.kind == QUERY_T_IDENT &&
           query_lex_word_is(tok_text(p), p->tok.len, word);
}

static const char *const keywords[] = {
    "bool",     "by",         "without",     "on",
    "ignoring", "group_left", "group_right", "offset",
};
static const char *const word_ops[] = {"and", "or", "unless", "atan2"};
static const char *const aggs[] = {
    "sum",    "avg",    "count", "min",     "max",      "group",
    "stddev", "stdvar", "topk",  "bottomk", "quantile", "count_values",
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static int word_index(const struct parser *p, const char *const *words,
                      size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (is_word(p, words[i]))
            return (int)i;
    return -1;
}

/* Describes the current token as Prometheus's parse errors do. */
static void describe(const struct parser *p, char *buf, size_t cap)
{
    static const char *punct = "(){}[],:@=";
    const struct query_token *t = &p->tok;
    int n = t->len > 40 ? 40 : (int)t->len;
    const char *s = tok_text(p);

    if (t->kind == QUERY_T_EOF) {
        snprintf(buf, cap, "end of input");
    } else if (t->kind == QUERY_T_IDENT) {
        if (word_index(p, word_ops, NELEM(word_ops)) >= 0)
            snprintf(buf, cap, "<op:%.*s>", n, s);
        else if (word_index(p, aggs, NELEM(aggs)) >= 0)
            snprintf(buf, cap, "<aggr:%.*s>", n, s);
        else if (word_index(p, keywords, NELEM(keywords)) >= 0)
            snprintf(buf, cap, "<%.*s>", n, s);
        else
            snprintf(buf, cap, "identifier \"%.*s\"", n, s);
    } else if (t->kind == QUERY_T_NUMBER) {
        snprintf(buf, cap, "number \"%.*s\"", n, s);
    } else if (t->kind == QUERY_T_DURATION) {
        snprintf(buf, cap, "duration \"%.*s\"", n, s);
    } else if (t->kind == QUERY_T_STRING) {
        snprintf(buf, cap, "string %.*s", n, s);
    } else if (t->len == 1 && strchr(punct, s[0])) {
        snprintf(buf, cap, "\"%c\"", s[0]);
    } else {
        snprintf(buf, cap, "<op:%.*s>", n, s);
    }
}

/*
 * "unexpected X[ in ctx][, expected what]"; a lexer error token reports the
 * lexer's message instead.
 */
static void unexpected(struct parser *p, const char *ctx, const char *what)
{
    char d[64];

    if (p->tok.kind == QUERY_T_ERROR) {
        perr(p, p->tok.pos, TSDB_EINVAL, "%s", p->lx.msg);
        return;
    }
    describe(p, d, sizeof(d));
    perr(p, p->tok.pos, TSDB_EINVAL, "unexpected %s%s%s%s%s", d,
         ctx ? " in " : "", ctx ? ctx : "", what ? ", expected " : "",
         what ? what : "");
}

static bool expect(struct parser *p, enum query_tok kind, const char *ctx,
                   const char *what)
{
    if (p->tok.kind != kind) {
        unexpected(p, ctx, what);
        return false;
    }
    advance(p);
    return true;
}

static struct query_node *node_new(struct parser *p, enum query_node_kind k,
                                   size_t pos)
{
    struct query_node *n = calloc(1, sizeof(*n));

    if (!n) {
        nomem(p);
        return NULL;
    }
    n->kind = k;
    n->pos = pos;
    n->height = 1;
    return n;
}

/* Sets n's height from a child's; false past the depth limit. */
static bool grow(struct parser *p, struct query_node *n,
                 const struct query_node *child)
{
    if (child && child->height + 1 > n->height)
        n->height = child->height + 1;
    if (n->height > QUERY_PARSE_MAX_DEPTH) {
        perr(p, n->pos, TSDB_ELIMIT, "expression nesting exceeds %d levels",
             QUERY_PARSE_MAX_DEPTH);
        return false;
    }
    return true;
}

static bool str_dup(struct parser *p, struct query_str *dst, const char *s,
                    size_t len)
{
    dst->p = malloc(len + 1);
    if (!dst->p) {
        nomem(p);
        return false;
    }
    memcpy(dst->p, s, len);
    dst->p[len] = '\0';
    dst->len = len;
    return true;
}

/* Decodes the current string token into dst and consumes it. */
static bool take_string(struct parser *p, struct query_str *dst)
{
    char msg[96];
    size_t bad = 0;

    dst->p = malloc(p->tok.len);
    if (!dst->p) {
        nomem(p);
        return false;
    }
    if (query_lex_unquote(tok_text(p), p->tok.len, dst->p, &dst->len, msg,
                          sizeof(msg), &bad) != TSDB_OK) {
        perr(p, p->tok.pos + bad, TSDB_EINVAL, "%s", msg);
        free(dst->p);
        dst->p = NULL;
        return false;
    }
    dst->p[dst->len] = '\0';
    advance(p);
    return true;
}

/*
 * Converts a duration token to milliseconds: units y w d h m s ms, each at
 * most once and in that order, as Prometheus's model.ParseDuration wants.
 */
static bool take_duration(struct parser *p, int64_t *ms)
{
    static const struct {
        const char *unit;
        int64_t mult;
    } units[] = {
        {"y", 365LL * 86400000},
        {"w", 7LL * 86400000},
        {"d", 86400000},
        {"h", 3600000},
        {"m", 60000},
        {"s", 1000},
        {"ms", 1},
    };
    const char *s = tok_text(p), *end = s + p->tok.len;
    size_t next = 0, u, ulen;
    int64_t total = 0, v;

    while (s < end) {
        for (v = 0; s < end && *s >= '0' && *s <= '9'; s++) {
            if (v > INT64_MAX / 10 - 10)
                goto bad;
            v = v * 10 + (*s - '0');
        }
        ulen = (s + 1 < end && s[0] == 'm' && s[1] == 's') ? 2 : 1;
        for (u = next; u < NELEM(units); u++)
            if (strlen(units[u].unit) == ulen &&
                memcmp(units[u].unit, s, ulen) == 0)
                break;
        if (u == NELEM(units) || v > (INT64_MAX - total) / units[u].mult)
            goto bad;
        total += v * units[u].mult;
        next = u + 1;
        s += ulen;
    }
    *ms = total;
    advance(p);
    return true;
bad:
    perr(p, p->tok.pos, TSDB_EINVAL, "not a valid duration string: \"%.*s\"",
         (int)p->tok.len, tok_text(p));
    return false;
}

static bool label_name_ok(const struct parser *p)
{
    return p->tok.kind == QUERY_T_IDENT &&
           memchr(tok_text(p), ':', p->tok.len) == NULL;
}

/* "(a, b,)" after by/without/on/ignoring/group_x. */
static bool parse_labels(struct parser *p, struct query_labels *l)
{
    struct query_str *grown;

    if (!expect(p, QUERY_T_LPAREN, "grouping opts", "\"(\""))
        return false;
    while (p->tok.kind != QUERY_T_RPAREN) {
        if (!label_name_ok(p)) {
            unexpected(p, "grouping opts", "label");
            return false;
        }
        grown = realloc(l->names, (l->n + 1) * sizeof(*grown));
        if (!grown) {
            nomem(p);
            return false;
        }
        l->names = grown;
        if (!str_dup(p, &l->names[l->n], tok_text(p), p->tok.len))
            return false;
        l->n++;
        advance(p);
        if (p->tok.kind == QUERY_T_COMMA)
            advance(p);
        else if (p->tok.kind != QUERY_T_RPAREN) {
            unexpected(p, "grouping opts", "\",\" or \")\"");
            return false;
        }
    }
    advance(p);
    return true;
}

static struct query_node *parse_expr(struct parser *p, int min_prec);

/*
 * Whether a matcher also selects series lacking the label (matches "").
 *
 * LIMIT: regexes are compiled with PCRE2, not RE2, so a pattern valid in
 * one and not the other (RE2's \C, PCRE2's lookaround and backreferences)
 * is judged by PCRE2 here; the evaluator must apply the same engine.
 */
static int matches_empty(struct parser *p, const struct query_matcher *m,
                         size_t pos, bool *empty)
{
    pcre2_code *re;
    pcre2_match_data *md;
    int ecode, rc;
    PCRE2_SIZE eoff;
    char msg[120];

    if (m->op == QUERY_MATCH_EQ || m->op == QUERY_MATCH_NE) {
        *empty = (m->value.len == 0) == (m->op == QUERY_MATCH_EQ);
        return TSDB_OK;
    }
    re = pcre2_compile((PCRE2_SPTR)m->value.p, m->value.len,
                       PCRE2_ANCHORED | PCRE2_ENDANCHORED | PCRE2_UTF, &ecode,
                       &eoff, NULL);
    if (!re) {
        pcre2_get_error_message(ecode, (PCRE2_UCHAR *)msg, sizeof(msg));
        perr(p, pos, TSDB_EINVAL, "invalid regular expression: %s", msg);
        return TSDB_EINVAL;
    }
    md = pcre2_match_data_create_from_pattern(re, NULL);
    if (!md) {
        pcre2_code_free(re);
        nomem(p);
        return TSDB_ENOMEM;
    }
    rc = pcre2_match(re, (PCRE2_SPTR) "", 0, 0, 0, md, NULL);
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    *empty = (rc >= 0) == (m->op == QUERY_MATCH_RE);
    return TSDB_OK;
}

static bool parse_matcher(struct parser *p, struct query_node *n)
{
    static const enum query_tok ops[] = {QUERY_T_ASSIGN, QUERY_T_NEQ,
                                         QUERY_T_EQL_REGEX, QUERY_T_NEQ_REGEX};
    struct query_matcher *grown, *m;
    size_t i;

    if (!label_name_ok(p)) {
        unexpected(p, "label matching", "identifier or \"}\"");
        return false;
    }
    grown =
        realloc(n->u.sel.matchers, (n->u.sel.nmatchers + 1) * sizeof(*grown));
    if (!grown) {
        nomem(p);
        return false;
    }
    n->u.sel.matchers = grown;
    m = &grown[n->u.sel.nmatchers++];
    memset(m, 0, sizeof(*m));
    if (!str_dup(p, &m->name, tok_text(p), p->tok.len))
        return false;
    advance(p);
    for (i = 0; i < NELEM(ops) && p->tok.kind != ops[i]; i++)
        ;
    if (i == NELEM(ops)) {
        unexpected(p, "label matching", "label matching operator");
        return false;
    }
    m->op = (enum query_match_op)i;
    advance(p);
    if (p->tok.kind != QUERY_T_STRING) {
        unexpected(p, "label matching", "string");
        return false;
    }
    return take_string(p, &m->value);
}

/* The matchers of a selector, then its check for a non-empty matcher. */
static bool parse_braces(struct parser *p, struct query_node *n)
{
    bool empty, any = n->u.sel.name.p != NULL;
    const struct query_matcher *m;

    advance(p);
    while (p->tok.kind != QUERY_T_RBRACE) {
        if (!parse_matcher(p, n))
            return false;
        if (p->tok.kind == QUERY_T_COMMA)
            advance(p);
        else if (p->tok.kind != QUERY_T_RBRACE) {
            unexpected(p, "label matching", "\",\" or \"}\"");
            return false;
        }
    }
    advance(p);
    for (size_t i = 0; i < n->u.sel.nmatchers; i++) {
        m = &n->u.sel.matchers[i];
        if (n->u.sel.name.p && strcmp(m->name.p, "__name__") == 0) {
            perr(p, n->pos, TSDB_EINVAL,
                 "metric name must not be set twice: \"%s\" or \"%s\"",
                 n->u.sel.name.p, m->value.p);
            return false;
        }
        if (matches_empty(p, m, n->pos, &empty) != TSDB_OK)
            return false;
        any = any || !empty;
    }
    if (!any) {
        perr(p, n->pos, TSDB_EINVAL,
             "vector selector must contain at least one non-empty matcher");
        return false;
    }
    return true;
}

static struct query_node *parse_selector(struct parser *p)
{
    struct query_node *n = node_new(p, QUERY_NODE_SELECTOR, p->tok.pos);

    if (!n)
        return NULL;
    if (p->tok.kind == QUERY_T_IDENT) {
        if (!str_dup(p, &n->u.sel.name, tok_text(p), p->tok.len))
            goto fail;
        advance(p);
    }
    if (p->tok.kind == QUERY_T_LBRACE && !parse_braces(p, n))
        goto fail;
    return n;
fail:
    query_node_free(n);
    return NULL;
}

/* Arguments of a call or aggregation, "(" already current. */
static bool parse_args(struct parser *p, struct query_node *n,
                       struct query_node ***args, size_t *nargs,
                       const char *ctx)
{
    struct query_node **grown, *a;

    advance(p);
    while (p->tok.kind != QUERY_T_RPAREN) {
        a = parse_expr(p, 0);
        if (!a)
            return false;
        grown = realloc(*args, (*nargs + 1) * sizeof(*grown));
        if (!grown) {
            query_node_free(a);
            nomem(p);
            return false;
        }
        *args = grown;
        grown[(*nargs)++] = a;
        if (!grow(p, n, a))
            return false;
        if (p->tok.kind == QUERY_T_COMMA)
            advance(p);
        else if (p->tok.kind != QUERY_T_RPAREN) {
            unexpected(p, ctx, "\",\" or \")\"");
            return false;
        }
    }
    advance(p);
    return true;
}

static bool expect_type(struct parser *p, const struct query_node *n,
                        enum query_type want, const char *ctx)
{
    enum query_type got = query_node_type(n);

    if (got == want)
        return true;
    perr(p, n->pos, TSDB_EINVAL, "expected type %s in %s, got %s",
         query_type_name(want), ctx, query_type_name(got));
    return false;
}

/* Argument count and types, with Prometheus's messages. */
static bool check_call(struct parser *p, const struct query_node *n)
{
    const struct query_fsig *f = n->u.call.fn;
    size_t got = n->u.call.nargs, i, t;
    char ctx[64];

    if (f->variadic == 0 && got != (size_t)f->nargs) {
        perr(p, n->pos, TSDB_EINVAL,
             "expected %d argument(s) in call to \"%s\", got %zu", f->nargs,
             f->name, got);
        return false;
    }
    if (f->variadic != 0 && got < (size_t)f->nargs - 1) {
        perr(p, n->pos, TSDB_EINVAL,
             "expected at least %d argument(s) in call to \"%s\", got %zu",
             f->nargs - 1, f->name, got);
        return false;
    }
    if (f->variadic > 0 && got > (size_t)(f->nargs - 1 + f->variadic)) {
        perr(p, n->pos, TSDB_EINVAL,
             "expected at most %d argument(s) in call to \"%s\", got %zu",
             f->nargs - 1 + f->variadic, f->name, got);
        return false;
    }
    snprintf(ctx, sizeof(ctx), "call to function \"%s\"", f->name);
    for (i = 0; i < got; i++) {
        t = i < (size_t)f->nargs ? i : (size_t)f->nargs - 1;
        if (!expect_type(p, n->u.call.args[i], f->args[t], ctx))
            return false;
    }
    return true;
}

static struct query_node *parse_call(struct parser *p)
{
    const struct query_fsig *f = query_fsig_lookup(tok_text(p), p->tok.len);
    struct query_node *n;

    if (!f) {
        perr(p, p->tok.pos, TSDB_EINVAL, "unknown function with name \"%.*s\"",
             (int)p->tok.len, tok_text(p));
        return NULL;
    }
    n = node_new(p, QUERY_NODE_CALL, p->tok.pos);
    if (!n)
        return NULL;
    n->u.call.fn = f;
    advance(p);
    if (!parse_args(p, n, &n->u.call.args, &n->u.call.nargs, "function call") ||
        !check_call(p, n)) {
        query_node_free(n);
        return NULL;
    }
    return n;
}

static bool parse_grouping(struct parser *p, struct query_node *n)
{
    n->u.agg.without = is_word(p, "without");
    advance(p);
    return parse_labels(p, &n->u.agg.grouping);
}

/* Splits the argument list into parameter and expression, and checks both. */
static bool check_agg(struct parser *p, struct query_node *n,
                      struct query_node **args, size_t nargs)
{
    enum query_agg op = n->u.agg.op;
    bool param = op == QUERY_AGG_TOPK || op == QUERY_AGG_BOTTOMK ||
                 op == QUERY_AGG_QUANTILE || op == QUERY_AGG_COUNT_VALUES;

    if (nargs == 0) {
        perr(p, n->pos, TSDB_EINVAL,
             "no arguments for aggregate expression provided");
        return false;
    }
    if (nargs != (param ? 2u : 1u)) {
        perr(p, n->pos, TSDB_EINVAL,
             "wrong number of arguments for aggregate expression provided, "
             "expected %d, got %zu",
             param ? 2 : 1, nargs);
        return false;
    }
    if (param) {
        n->u.agg.param = args[0];
        args[0] = NULL;
        if (!expect_type(p, n->u.agg.param,
                         op == QUERY_AGG_COUNT_VALUES ? QUERY_TYPE_STRING
                                                      : QUERY_TYPE_SCALAR,
                         "aggregation parameter"))
            return false;
    }
    n->u.agg.expr = args[nargs - 1];
    args[nargs - 1] = NULL;
    return expect_type(p, n->u.agg.expr, QUERY_TYPE_VECTOR,
                       "aggregation expression");
}

static struct query_node *parse_agg(struct parser *p, int op)
{
    struct query_node *n = node_new(p, QUERY_NODE_AGG, p->tok.pos);
    struct query_node **args = NULL;
    size_t nargs = 0;
    bool ok, grouped = false;

    if (!n)
        return NULL;
    n->u.agg.op = (enum query_agg)op;
    advance(p);
    if (is_word(p, "by") || is_word(p, "without")) {
        grouped = true;
        if (!parse_grouping(p, n))
            goto fail;
    }
    if (p->tok.kind != QUERY_T_LPAREN) {
        unexpected(p, "aggregation", "\"(\"");
        goto fail;
    }
    ok = parse_args(p, n, &args, &nargs, "aggregation") &&
         check_agg(p, n, args, nargs);
    for (size_t i = 0; i < nargs; i++)
        query_node_free(args[i]);
    free(args);
    if (!ok)
        goto fail;
    if (!grouped && (is_word(p, "by") || is_word(p, "without")) &&
        !parse_grouping(p, n))
        goto fail;
    return n;
fail:
    query_node_free(n);
    return NULL;
}

static struct query_node *parse_number(struct parser *p)
{
    struct query_node *n = node_new(p, QUERY_NODE_NUMBER, p->tok.pos);
    char buf[64];
    size_t len = p->tok.len < sizeof(buf) - 1 ? p->tok.len : sizeof(buf) - 1;

    if (!n)
        return NULL;
    memcpy(buf, tok_text(p), len);
    buf[len] = '\0';
    n->u.number = strtod(buf, NULL);
    advance(p);
    return n;
}

static bool is_number_word(const struct parser *p)
{
    return is_word(p, "inf") || is_word(p, "nan");
}

/* An identifier at the start of an operand. */
static struct query_node *parse_ident(struct parser *p)
{
    int agg = word_index(p, aggs, NELEM(aggs));

    if (is_number_word(p))
        return parse_number(p);
    if (agg >= 0 &&
        (p->ahead.kind == QUERY_T_LPAREN || p->ahead.kind == QUERY_T_IDENT))
        return parse_agg(p, agg);
    if (agg >= 0 || word_index(p, keywords, NELEM(keywords)) >= 0 ||
        word_index(p, word_ops, NELEM(word_ops)) >= 0) {
        unexpected(p, NULL, NULL);
        return NULL;
    }
    if (p->ahead.kind == QUERY_T_LPAREN)
        return parse_call(p);
    return parse_selector(p);
}

static struct query_node *parse_primary(struct parser *p)
{
    struct query_node *n, *inner;

    switch (p->tok.kind) {
    case QUERY_T_NUMBER:
        return parse_number(p);
    case QUERY_T_STRING:
        n = node_new(p, QUERY_NODE_STRING, p->tok.pos);
        if (n && !take_string(p, &n->u.string)) {
            query_node_free(n);
            return NULL;
        }
        return n;
    case QUERY_T_IDENT:
        return parse_ident(p);
    case QUERY_T_LBRACE:
        return parse_selector(p);
    case QUERY_T_LPAREN:
        n = node_new(p, QUERY_NODE_PAREN, p->tok.pos);
        if (!n)
            return NULL;
        advance(p);
        inner = parse_expr(p, 0);
        n->u.paren = inner;
        if (!inner || !grow(p, n, inner))
            goto fail;
        if (!expect(p, QUERY_T_RPAREN, "paren expression", "\")\""))
            goto fail;
        return n;
    default:
        unexpected(p, NULL, NULL);
        return NULL;
    }
fail:
    query_node_free(n);
    return NULL;
}

/* The selector or subquery whose offset and @ a modifier sets, or NULL. */
static struct query_mods *mods_of(struct query_node *n)
{
    if (n->kind == QUERY_NODE_SELECTOR)
        return &n->u.sel.mods;
    if (n->kind == QUERY_NODE_MATRIX)
        return &n->u.matrix.sel->u.sel.mods;
    if (n->kind == QUERY_NODE_SUBQUERY)
        return &n->u.subquery.mods;
    return NULL;
}

static bool parse_offset(struct parser *p, struct query_node *n)
{
    struct query_mods *m = mods_of(n);
    bool neg = false;
    int64_t ms;

    if (!m) {
        perr(p, p->tok.pos, TSDB_EINVAL,
             "offset modifier must be preceded by an instant vector "
             "selector or range vector selector or a subquery");
        return false;
    }
    if (m->offset_ms != 0) {
        perr(p, p->tok.pos, TSDB_EINVAL,
             "offset may not be set multiple times");
        return false;
    }
    advance(p);
    if (p->tok.kind == QUERY_T_SUB) {
        neg = true;
        advance(p);
    }
    if (p->tok.kind != QUERY_T_DURATION) {
        unexpected(p, "offset", "duration");
        return false;
    }
    if (!take_duration(p, &ms))
        return false;
    m->offset_ms = neg ? -ms : ms;
    return true;
}

/* @ <number> | @ start() | @ end(); the time is kept in milliseconds. */
static bool parse_at(struct parser *p, struct query_node *n)
{
    struct query_mods *m = mods_of(n);
    bool neg = false, se;
    double v;
    struct query_node *num;
    size_t pos;

    if (!m) {
        perr(p, p->tok.pos, TSDB_EINVAL,
             "@ modifier must be preceded by an instant vector selector or "
             "range vector selector or a subquery");
        return false;
    }
    if (m->at != QUERY_AT_NONE) {
        perr(p, p->tok.pos, TSDB_EINVAL,
             "@ <timestamp> may not be set multiple times");
        return false;
    }
    advance(p);
    se = is_word(p, "start") || is_word(p, "end");
    if (se && p->ahead.kind == QUERY_T_LPAREN) {
        m->at = is_word(p, "start") ? QUERY_AT_START : QUERY_AT_END;
        advance(p);
        advance(p);
        return expect(p, QUERY_T_RPAREN, "@ modifier", "\")\"");
    }
    if (p->tok.kind == QUERY_T_SUB || p->tok.kind == QUERY_T_ADD) {
        neg = p->tok.kind == QUERY_T_SUB;
        advance(p);
    }
    if (p->tok.kind != QUERY_T_NUMBER && !is_number_word(p)) {
        unexpected(p, "@", "number or \"start()\" or \"end()\"");
        return false;
    }
    pos = p->tok.pos;
    num = parse_number(p);
    if (!num)
        return false;
    v = neg ? -num->u.number : num->u.number;
    query_node_free(num);

    /* Prometheus keeps @ as int64 milliseconds; refuse what cannot fit. */
    if (isnan(v) || isinf(v)) {
        perr(p, pos, TSDB_EINVAL, "timestamp out of bounds for @ modifier: %s",
             isnan(v) ? "NaN"
             : v > 0  ? "+Inf"
                      : "-Inf");
        return false;
    }
    if (fabs(v) * 1000.0 >= 9.2e18) {
        perr(p, pos, TSDB_EINVAL, "timestamp out of bounds for @ modifier: %f",
             v);
        return false;
    }
    m->at = QUERY_AT_TIME;
    m->at_ms = (int64_t)llround(v * 1000.0);
    return true;
}

/* "[" current: a range on a selector, or a subquery on anything else. */
static struct query_node *parse_bracket(struct parser *p, struct query_node *n)
{
    struct query_node *r;
    int64_t range, step = 0;
    bool sub;

    advance(p);
    if (p->tok.kind != QUERY_T_DURATION) {
        unexpected(p, "subquery or range", "duration");
        return NULL;
    }
    if (!take_duration(p, &range))
        return NULL;
    sub = p->tok.kind == QUERY_T_COLON;
    if (sub) {
        advance(p);
        if (p->tok.kind == QUERY_T_DURATION && !take_duration(p, &step))
            return NULL;
    }
    if (!expect(p, QUERY_T_RBRACKET, sub ? "subquery selector" : "range",
                "\"]\""))
        return NULL;
    if (!sub && n->kind != QUERY_NODE_SELECTOR) {
        perr(p, n->pos, TSDB_EINVAL,
             "ranges only allowed for vector selectors");
        return NULL;
    }
    if (!sub && n->u.sel.mods.offset_ms != 0) {
        perr(p, n->pos, TSDB_EINVAL,
             "no offset modifiers allowed before range");
        return NULL;
    }
    if (!sub && n->u.sel.mods.at != QUERY_AT_NONE) {
        perr(p, n->pos, TSDB_EINVAL, "no @ modifiers allowed before range");
        return NULL;
    }
    if (sub && query_node_type(n) != QUERY_TYPE_VECTOR) {
        perr(p, n->pos, TSDB_EINVAL,
             "subquery is only allowed on instant vector, got %s instead",
             query_type_name(query_node_type(n)));
        return NULL;
    }
    r = node_new(p, sub ? QUERY_NODE_SUBQUERY : QUERY_NODE_MATRIX, n->pos);
    if (!r)
        return NULL;
    if (sub) {
        r->u.subquery.expr = n;
        r->u.subquery.range_ms = range;
        r->u.subquery.step_ms = step;
    } else {
        r->u.matrix.sel = n;
        r->u.matrix.range_ms = range;
    }
    return r;
}

/* offset, @ and [...] after an operand, in any order and number. */
static struct query_node *parse_postfix(struct parser *p, struct query_node *n)
{
    struct query_node *r;

    while (n) {
        if (is_word(p, "offset")) {
            if (!parse_offset(p, n))
                goto fail;
        } else if (p->tok.kind == QUERY_T_AT) {
            if (!parse_at(p, n))
                goto fail;
        } else if (p->tok.kind == QUERY_T_LBRACKET) {
            r = parse_bracket(p, n);
            if (!r)
                goto fail;
            n = r;
            if (!grow(p, n,
                      n->kind == QUERY_NODE_MATRIX ? n->u.matrix.sel
                                                   : n->u.subquery.expr))
                goto fail;
        } else {
            break;
        }
    }
    return n;
fail:
    query_node_free(n);
    return NULL;
}

static bool enter(struct parser *p)
{
    if (++p->depth > QUERY_PARSE_MAX_DEPTH) {
        perr(p, p->tok.pos, TSDB_ELIMIT, "expression nesting exceeds %d levels",
             QUERY_PARSE_MAX_DEPTH);
        return false;
    }
    return true;
}

#define PREC_POW 6

static struct query_node *parse_unary(struct parser *p)
{
    struct query_node *n, *e;
    size_t pos = p->tok.pos;
    bool neg;

    if (p->tok.kind != QUERY_T_ADD && p->tok.kind != QUERY_T_SUB)
        return parse_postfix(p, parse_primary(p));
    neg = p->tok.kind == QUERY_T_SUB;
    advance(p);
    e = parse_expr(p, PREC_POW);
    if (!e)
        return NULL;

    /* A sign before a number literal is part of the number. */
    if (e->kind == QUERY_NODE_NUMBER) {
        if (neg)
            e->u.number = -e->u.number;
        e->pos = pos;
        return e;
    }
    if (query_node_type(e) != QUERY_TYPE_SCALAR &&
        query_node_type(e) != QUERY_TYPE_VECTOR) {
        perr(p, pos, TSDB_EINVAL,
             "unary expression only allowed on expressions of type scalar "
             "or instant vector, got \"%s\"",
             query_type_name(query_node_type(e)));
        query_node_free(e);
        return NULL;
    }
    n = node_new(p, QUERY_NODE_UNARY, pos);
    if (!n) {
        query_node_free(e);
        return NULL;
    }
    n->u.unary.neg = neg;
    n->u.unary.expr = e;
    if (!grow(p, n, e)) {
        query_node_free(n);
        return NULL;
    }
    return n;
}

/* The binary operator at the current token and its precedence, or -1. */
static int binop(const struct parser *p, enum query_op *op)
{
    static const struct {
        enum query_tok tok;
        enum query_op op;
        int prec;
    } ops[] = {
        {QUERY_T_ADD, QUERY_OP_ADD, 4}, {QUERY_T_SUB, QUERY_OP_SUB, 4},
        {QUERY_T_MUL, QUERY_OP_MUL, 5}, {QUERY_T_DIV, QUERY_OP_DIV, 5},
        {QUERY_T_MOD, QUERY_OP_MOD, 5}, {QUERY_T_POW, QUERY_OP_POW, 6},
        {QUERY_T_EQLC, QUERY_OP_EQ, 3}, {QUERY_T_NEQ, QUERY_OP_NE, 3},
        {QUERY_T_LTE, QUERY_OP_LE, 3},  {QUERY_T_LSS, QUERY_OP_LT, 3},
        {QUERY_T_GTE, QUERY_OP_GE, 3},  {QUERY_T_GTR, QUERY_OP_GT, 3},
    };
    static const int word_prec[] = {2, 1, 2, 5};
    static const enum query_op word_op[] = {QUERY_OP_AND, QUERY_OP_OR,
                                            QUERY_OP_UNLESS, QUERY_OP_ATAN2};
    int w = word_index(p, word_ops, NELEM(word_ops));

    if (w >= 0) {
        *op = word_op[w];
        return word_prec[w];
    }
    for (size_t i = 0; i < NELEM(ops); i++) {
        if (ops[i].tok == p->tok.kind) {
            *op = ops[i].op;
            return ops[i].prec;
        }
    }
    return -1;
}

static bool is_comparison(enum query_op op)
{
    return op >= QUERY_OP_EQ && op <= QUERY_OP_GT;
}

static bool is_set_op(enum query_op op)
{
    return op == QUERY_OP_AND || op == QUERY_OP_OR || op == QUERY_OP_UNLESS;
}

/* bool, on/ignoring and group_left/right after an operator. */
static bool parse_modifiers(struct parser *p, struct query_node *n)
{
    if (is_word(p, "bool")) {
        n->u.binary.return_bool = true;
        advance(p);
    }
    if (is_word(p, "on") || is_word(p, "ignoring")) {
        n->u.binary.on = is_word(p, "on");
        advance(p);
        if (!parse_labels(p, &n->u.binary.matching))
            return false;
        if (is_word(p, "group_left") || is_word(p, "group_right")) {
            n->u.binary.card = is_word(p, "group_left")
                                   ? QUERY_CARD_MANY_TO_ONE
                                   : QUERY_CARD_ONE_TO_MANY;
            advance(p);
            if (p->tok.kind == QUERY_T_LPAREN &&
                !parse_labels(p, &n->u.binary.include))
                return false;
        }
    }
    return true;
}

/* Prometheus's parse-time checks of a binary expression, in its order. */
static bool check_binary(struct parser *p, struct query_node *n)
{
    enum query_op op = n->u.binary.op;
    enum query_type lt = query_node_type(n->u.binary.lhs);
    enum query_type rt = query_node_type(n->u.binary.rhs);
    bool matching = n->u.binary.on || n->u.binary.matching.n > 0 ||
                    n->u.binary.card != QUERY_CARD_ONE_TO_ONE;
    const struct query_labels *on = &n->u.binary.matching;
    const struct query_labels *inc = &n->u.binary.include;

    if (n->u.binary.return_bool && !is_comparison(op))
        return perr(p, n->pos, TSDB_EINVAL,
                    "bool modifier can only be used on comparison operators"),
               false;
    if (is_comparison(op) && !n->u.binary.return_bool &&
        lt == QUERY_TYPE_SCALAR && rt == QUERY_TYPE_SCALAR)
        return perr(p, n->pos, TSDB_EINVAL,
                    "comparisons between scalars must use BOOL modifier"),
               false;
    if (is_set_op(op) && n->u.binary.card != QUERY_CARD_ONE_TO_ONE)
        return perr(p, n->pos, TSDB_EINVAL,
                    "no grouping allowed for \"%s\" operation",
                    query_op_name(op)),
               false;
    if ((lt != QUERY_TYPE_SCALAR && lt != QUERY_TYPE_VECTOR) ||
        (rt != QUERY_TYPE_SCALAR && rt != QUERY_TYPE_VECTOR))
        return perr(p, n->pos, TSDB_EINVAL,
                    "binary expression must contain only scalar and instant "
                    "vector types"),
               false;
    if (matching && (lt != QUERY_TYPE_VECTOR || rt != QUERY_TYPE_VECTOR))
        return perr(p, n->pos, TSDB_EINVAL,
                    "vector matching only allowed between instant vectors"),
               false;
    if (is_set_op(op) && (lt == QUERY_TYPE_SCALAR || rt == QUERY_TYPE_SCALAR))
        return perr(p, n->pos, TSDB_EINVAL,
                    "set operator \"%s\" not allowed in binary scalar "
                    "expression",
                    query_op_name(op)),
               false;
    for (size_t i = 0; n->u.binary.on && i < inc->n; i++)
        for (size_t j = 0; j < on->n; j++)
            if (strcmp(inc->names[i].p, on->names[j].p) == 0)
                return perr(p, n->pos, TSDB_EINVAL,
                            "label \"%s\" must not occur in ON and GROUP "
                            "clause at once",
                            on->names[j].p),
                       false;
    if (is_set_op(op))
        n->u.binary.card = QUERY_CARD_MANY_TO_MANY;
    return true;
}

static struct query_node *parse_expr(struct parser *p, int min_prec)
{
    struct query_node *lhs, *n;
    enum query_op op = QUERY_OP_ADD; /* set by binop() before use */
    int prec;

    if (!enter(p))
        return NULL;
    lhs = parse_unary(p);
    while (lhs && (prec = binop(p, &op)) >= min_prec) {
        n = node_new(p, QUERY_NODE_BINARY, lhs->pos);
        if (!n)
            goto fail;
        n->u.binary.op = op;
        n->u.binary.lhs = lhs;
        lhs = n;
        advance(p);
        if (!parse_modifiers(p, n))
            goto fail;
        n->u.binary.rhs = parse_expr(p, op == QUERY_OP_POW ? prec : prec + 1);
        if (!n->u.binary.rhs || !grow(p, n, n->u.binary.lhs) ||
            !grow(p, n, n->u.binary.rhs) || !check_binary(p, n))
            goto fail;
    }
    p->depth--;
    return lhs;
fail:
    query_node_free(lhs);
    p->depth--;
    return NULL;
}

/*
 * An error at the end of the input while a parenthesis or bracket is
 * still open: Prometheus's lexer reports that before its parser sees the
 * end, so its message names the open bracket instead of what was
 * expected next.  Says the same.
 */
static void name_unclosed(struct parser *p, const char *src, size_t len)
{
    struct query_lexer lx;
    struct query_token tok;
    int parens = 0, brackets = 0;

    query_lexer_init(&lx, src, len);
    for (;;) {
        query_lexer_next(&lx, &tok);
        if (tok.kind == QUERY_T_EOF)
            break;
        if (tok.kind == QUERY_T_ERROR)
            return;
        parens += (tok.kind == QUERY_T_LPAREN) - (tok.kind == QUERY_T_RPAREN);
        brackets +=
            (tok.kind == QUERY_T_LBRACKET) - (tok.kind == QUERY_T_RBRACKET);
    }
    if (parens <= 0 && brackets <= 0)
        return;
    p->rc = TSDB_OK;
    perr(p, len, TSDB_EINVAL, "%s",
         parens > 0 ? "unclosed left parenthesis" : "unclosed left bracket");
}

int query_parse(const char *src, size_t len, struct query_node **out,
                struct query_parse_err *err)
{
    struct parser p;
    struct query_node *n;

    memset(&p, 0, sizeof(p));
    p.err = err;
    *out = NULL;
    if (err)
        memset(err, 0, sizeof(*err));
    query_lexer_init(&p.lx, src, len);
    if (len > QUERY_PARSE_MAX_LEN) {
        perr(&p, 0, TSDB_ELIMIT, "query longer than %d bytes",
             QUERY_PARSE_MAX_LEN);
        return p.rc;
    }
    query_lexer_next(&p.lx, &p.ahead);
    advance(&p);
    if (p.tok.kind == QUERY_T_EOF) {
        perr(&p, 0, TSDB_EINVAL, "no expression found in input");
        return p.rc;
    }
    n = parse_expr(&p, 0);
    if (n && p.tok.kind != QUERY_T_EOF)
        unexpected(&p, NULL, NULL);
    if (p.rc == TSDB_EINVAL && err && err->pos >= len)
        name_unclosed(&p, src, len);
    if (p.rc != TSDB_OK) {
        query_node_free(n);
        return p.rc;
    }
    *out = n;
    return TSDB_OK;
}
