/*
 * PromQL syntax tree helpers (see ast.h): the function table, type of a
 * node, freeing, and the canonical printer used by tests and by the HTTP
 * format_query endpoint.
 *
 * Invariants:
 * 1. Every node owns its children and strings; no node is shared.
 * 2. The printer's output re-parses to a tree that prints the same text.
 */
#include "query/ast.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/duration.h"
#include "tsdb/error.h"

#define S QUERY_TYPE_SCALAR
#define V QUERY_TYPE_VECTOR
#define M QUERY_TYPE_MATRIX
#define T QUERY_TYPE_STRING

/* Prometheus 2.42's functions, sorted by name for bsearch. */
static const struct query_fsig fsigs[] = {
    {"abs", {V}, 1, 0, V},
    {"absent", {V}, 1, 0, V},
    {"absent_over_time", {M}, 1, 0, V},
    {"acos", {V}, 1, 0, V},
    {"acosh", {V}, 1, 0, V},
    {"asin", {V}, 1, 0, V},
    {"asinh", {V}, 1, 0, V},
    {"atan", {V}, 1, 0, V},
    {"atanh", {V}, 1, 0, V},
    {"avg_over_time", {M}, 1, 0, V},
    {"ceil", {V}, 1, 0, V},
    {"changes", {M}, 1, 0, V},
    {"clamp", {V, S, S}, 3, 0, V},
    {"clamp_max", {V, S}, 2, 0, V},
    {"clamp_min", {V, S}, 2, 0, V},
    {"cos", {V}, 1, 0, V},
    {"cosh", {V}, 1, 0, V},
    {"count_over_time", {M}, 1, 0, V},
    {"day_of_month", {V}, 1, 1, V},
    {"day_of_week", {V}, 1, 1, V},
    {"day_of_year", {V}, 1, 1, V},
    {"days_in_month", {V}, 1, 1, V},
    {"deg", {V}, 1, 0, V},
    {"delta", {M}, 1, 0, V},
    {"deriv", {M}, 1, 0, V},
    {"exp", {V}, 1, 0, V},
    {"floor", {V}, 1, 0, V},
    {"histogram_count", {V}, 1, 0, V},
    {"histogram_fraction", {S, S, V}, 3, 0, V},
    {"histogram_quantile", {S, V}, 2, 0, V},
    {"histogram_sum", {V}, 1, 0, V},
    {"holt_winters", {M, S, S}, 3, 0, V},
    {"hour", {V}, 1, 1, V},
    {"idelta", {M}, 1, 0, V},
    {"increase", {M}, 1, 0, V},
    {"irate", {M}, 1, 0, V},
    {"label_join", {V, T, T, T}, 4, -1, V},
    {"label_replace", {V, T, T, T, T}, 5, 0, V},
    {"last_over_time", {M}, 1, 0, V},
    {"ln", {V}, 1, 0, V},
    {"log10", {V}, 1, 0, V},
    {"log2", {V}, 1, 0, V},
    {"max_over_time", {M}, 1, 0, V},
    {"min_over_time", {M}, 1, 0, V},
    {"minute", {V}, 1, 1, V},
    {"month", {V}, 1, 1, V},
    {"pi", {QUERY_TYPE_NONE}, 0, 0, S},
    {"predict_linear", {M, S}, 2, 0, V},
    {"present_over_time", {M}, 1, 0, V},
    {"quantile_over_time", {S, M}, 2, 0, V},
    {"rad", {V}, 1, 0, V},
    {"rate", {M}, 1, 0, V},
    {"resets", {M}, 1, 0, V},
    {"round", {V, S}, 2, 1, V},
    {"scalar", {V}, 1, 0, S},
    {"sgn", {V}, 1, 0, V},
    {"sin", {V}, 1, 0, V},
    {"sinh", {V}, 1, 0, V},
    {"sort", {V}, 1, 0, V},
    {"sort_desc", {V}, 1, 0, V},
    {"sqrt", {V}, 1, 0, V},
    {"stddev_over_time", {M}, 1, 0, V},
    {"stdvar_over_time", {M}, 1, 0, V},
    {"sum_over_time", {M}, 1, 0, V},
    {"tan", {V}, 1, 0, V},
    {"tanh", {V}, 1, 0, V},
    {"time", {QUERY_TYPE_NONE}, 0, 0, S},
    {"timestamp", {V}, 1, 0, V},
    {"vector", {S}, 1, 0, V},
    {"year", {V}, 1, 1, V},
};

#undef S
#undef V
#undef M
#undef T

const struct query_fsig *query_fsig_lookup(const char *name, size_t len)
{
    size_t lo = 0, hi = sizeof(fsigs) / sizeof(fsigs[0]), mid, n;
    int c;

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        n = strlen(fsigs[mid].name);
        c = strncmp(name, fsigs[mid].name, len < n ? len : n);
        if (c == 0)
            c = len < n ? -1 : len > n ? 1 : 0;
        if (c == 0)
            return &fsigs[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

const char *query_op_name(enum query_op op)
{
    static const char *names[] = {
        "+",  "-",  "*", "/",  "%", "^",   "atan2",  "==",
        "!=", "<=", "<", ">=", ">", "and", "unless", "or",
    };

    return (size_t)op < sizeof(names) / sizeof(names[0]) ? names[op] : "?";
}

const char *query_agg_name(enum query_agg op)
{
    static const char *names[] = {
        "sum",    "avg",    "count", "min",     "max",      "group",
        "stddev", "stdvar", "topk",  "bottomk", "quantile", "count_values",
    };

    return (size_t)op < sizeof(names) / sizeof(names[0]) ? names[op] : "?";
}

const char *query_type_name(enum query_type t)
{
    switch (t) {
    case QUERY_TYPE_SCALAR:
        return "scalar";
    case QUERY_TYPE_VECTOR:
        return "instant vector";
    case QUERY_TYPE_MATRIX:
        return "range vector";
    case QUERY_TYPE_STRING:
        return "string";
    default:
        return "none";
    }
}

enum query_type query_node_type(const struct query_node *n)
{
    switch (n->kind) {
    case QUERY_NODE_NUMBER:
        return QUERY_TYPE_SCALAR;
    case QUERY_NODE_STRING:
        return QUERY_TYPE_STRING;
    case QUERY_NODE_SELECTOR:
    case QUERY_NODE_AGG:
        return QUERY_TYPE_VECTOR;
    case QUERY_NODE_MATRIX:
    case QUERY_NODE_SUBQUERY:
        return QUERY_TYPE_MATRIX;
    case QUERY_NODE_PAREN:
        return query_node_type(n->u.paren);
    case QUERY_NODE_UNARY:
        return query_node_type(n->u.unary.expr);
    case QUERY_NODE_BINARY:
        if (query_node_type(n->u.binary.lhs) == QUERY_TYPE_SCALAR &&
            query_node_type(n->u.binary.rhs) == QUERY_TYPE_SCALAR)
            return QUERY_TYPE_SCALAR;
        return QUERY_TYPE_VECTOR;
    case QUERY_NODE_CALL:
        return n->u.call.fn->ret;
    }
    return QUERY_TYPE_NONE;
}

static void labels_release(struct query_labels *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->names[i].p);
    free(l->names);
}

void query_node_free(struct query_node *n)
{
    if (!n)
        return;
    switch (n->kind) {
    case QUERY_NODE_NUMBER:
        break;
    case QUERY_NODE_STRING:
        free(n->u.string.p);
        break;
    case QUERY_NODE_SELECTOR:
        free(n->u.sel.name.p);
        for (size_t i = 0; i < n->u.sel.nmatchers; i++) {
            free(n->u.sel.matchers[i].name.p);
            free(n->u.sel.matchers[i].value.p);
        }
        free(n->u.sel.matchers);
        break;
    case QUERY_NODE_MATRIX:
        query_node_free(n->u.matrix.sel);
        break;
    case QUERY_NODE_SUBQUERY:
        query_node_free(n->u.subquery.expr);
        break;
    case QUERY_NODE_PAREN:
        query_node_free(n->u.paren);
        break;
    case QUERY_NODE_UNARY:
        query_node_free(n->u.unary.expr);
        break;
    case QUERY_NODE_BINARY:
        labels_release(&n->u.binary.matching);
        labels_release(&n->u.binary.include);
        query_node_free(n->u.binary.lhs);
        query_node_free(n->u.binary.rhs);
        break;
    case QUERY_NODE_CALL:
        for (size_t i = 0; i < n->u.call.nargs; i++)
            query_node_free(n->u.call.args[i]);
        free(n->u.call.args);
        break;
    case QUERY_NODE_AGG:
        labels_release(&n->u.agg.grouping);
        query_node_free(n->u.agg.param);
        query_node_free(n->u.agg.expr);
        break;
    }
    free(n);
}

/* Bounded output: once full, further writes are dropped and remembered. */
struct out {
    char *buf;
    size_t cap, len;
    bool full;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->full || n >= o->cap - o->len) {
        o->full = true;
        return;
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
    o->buf[o->len] = '\0';
}

static void puts_(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

static void putf(struct out *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void putf(struct out *o, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    put(o, tmp, n < 0 ? 0 : (size_t)n);
}

/* Go's FormatFloat(v, 'f', -1, 64): shortest digits, never an exponent. */
static void put_number(struct out *o, double v)
{
    char e[40], digits[20];
    int p, exp, nd = 0;
    const char *c;

    if (isnan(v)) {
        puts_(o, "NaN");
        return;
    }
    if (isinf(v)) {
        puts_(o, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    for (p = 1; p <= 17; p++) {
        snprintf(e, sizeof(e), "%.*e", p - 1, v);
        if (strtod(e, NULL) == v)
            break;
    }
    for (c = e; *c && *c != 'e'; c++)
        if (*c >= '0' && *c <= '9')
            digits[nd++] = *c;
    exp = atoi(c + 1);
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    if (signbit(v))
        puts_(o, "-");
    if (exp < 0) {
        puts_(o, "0.");
        for (int i = 0; i < -exp - 1; i++)
            puts_(o, "0");
        put(o, digits, (size_t)nd);
        return;
    }
    for (int i = 0; i <= exp; i++)
        put(o, i < nd ? &digits[i] : "0", 1);
    if (nd > exp + 1) {
        puts_(o, ".");
        put(o, digits + exp + 1, (size_t)(nd - exp - 1));
    }
}

static void put_duration(struct out *o, int64_t ms)
{
    char s[QUERY_DURATION_MAX];

    puts_(o, query_format_duration(s, ms) ? s : "");
}

/* Go's %q for a byte string; bytes >= 0x80 pass through unchanged. */
static void put_quoted(struct out *o, const struct query_str *s)
{
    static const char esc[] = "\aa\bb\ff\nn\rr\tt\vv\\\\\"\"";
    const char *e;

    puts_(o, "\"");
    for (size_t i = 0; i < s->len; i++) {
        unsigned char c = (unsigned char)s->p[i];

        e = c ? strchr(esc, c) : NULL;
        if (e && (e - esc) % 2 == 0)
            putf(o, "\\%c", e[1]);
        else if (c < 0x20 || c == 0x7f)
            putf(o, "\\x%02x", c);
        else
            put(o, (const char *)&c, 1);
    }
    puts_(o, "\"");
}

static void put_labels(struct out *o, const struct query_labels *l)
{
    puts_(o, "(");
    for (size_t i = 0; i < l->n; i++) {
        if (i)
            puts_(o, ", ");
        put(o, l->names[i].p, l->names[i].len);
    }
    puts_(o, ")");
}

static void put_mods(struct out *o, const struct query_mods *m)
{
    if (m->at == QUERY_AT_TIME)
        putf(o, " @ %.3f", (double)m->at_ms / 1000.0);
    else if (m->at == QUERY_AT_START)
        puts_(o, " @ start()");
    else if (m->at == QUERY_AT_END)
        puts_(o, " @ end()");
    if (m->offset_ms > 0) {
        puts_(o, " offset ");
        put_duration(o, m->offset_ms);
    } else if (m->offset_ms < 0) {
        puts_(o, " offset -");
        put_duration(o, -m->offset_ms);
    }
}

static void put_selector(struct out *o, const struct query_node *n)
{
    static const char *ops[] = {"=", "!=", "=~", "!~"};
    const struct query_matcher *m;

    if (n->u.sel.name.p)
        put(o, n->u.sel.name.p, n->u.sel.name.len);
    if (n->u.sel.nmatchers == 0 && n->u.sel.name.p)
        return;
    puts_(o, "{");
    for (size_t i = 0; i < n->u.sel.nmatchers; i++) {
        m = &n->u.sel.matchers[i];
        if (i)
            puts_(o, ", ");
        put(o, m->name.p, m->name.len);
        puts_(o, ops[m->op]);
        put_quoted(o, &m->value);
    }
    puts_(o, "}");
}

static void put_node(struct out *o, const struct query_node *n);

static void put_binary(struct out *o, const struct query_node *n)
{
    const struct query_node *l = n->u.binary.lhs;

    /* "+Inf ^ x" would re-parse as +(Inf ^ x), and gain a "+" per round
     * trip; Prometheus prints it so, we drop the sign there. */
    if (n->u.binary.op == QUERY_OP_POW && l->kind == QUERY_NODE_NUMBER &&
        isinf(l->u.number) && l->u.number > 0)
        puts_(o, "Inf");
    else
        put_node(o, l);
    putf(o, " %s", query_op_name(n->u.binary.op));
    if (n->u.binary.return_bool)
        puts_(o, " bool");
    if (n->u.binary.on || n->u.binary.matching.n > 0 ||
        n->u.binary.card == QUERY_CARD_MANY_TO_ONE ||
        n->u.binary.card == QUERY_CARD_ONE_TO_MANY) {
        puts_(o, n->u.binary.on ? " on " : " ignoring ");
        put_labels(o, &n->u.binary.matching);
    }
    if (n->u.binary.card == QUERY_CARD_MANY_TO_ONE ||
        n->u.binary.card == QUERY_CARD_ONE_TO_MANY) {
        puts_(o, n->u.binary.card == QUERY_CARD_MANY_TO_ONE ? " group_left "
                                                            : " group_right ");
        put_labels(o, &n->u.binary.include);
    }
    puts_(o, " ");
    put_node(o, n->u.binary.rhs);
}

static void put_agg(struct out *o, const struct query_node *n)
{
    puts_(o, query_agg_name(n->u.agg.op));
    if (n->u.agg.without || n->u.agg.grouping.n > 0) {
        puts_(o, n->u.agg.without ? " without " : " by ");
        put_labels(o, &n->u.agg.grouping);
        puts_(o, " ");
    }
    puts_(o, "(");
    if (n->u.agg.param) {
        put_node(o, n->u.agg.param);
        puts_(o, ", ");
    }
    put_node(o, n->u.agg.expr);
    puts_(o, ")");
}

static void put_node(struct out *o, const struct query_node *n)
{
    switch (n->kind) {
    case QUERY_NODE_NUMBER:
        put_number(o, n->u.number);
        break;
    case QUERY_NODE_STRING:
        put_quoted(o, &n->u.string);
        break;
    case QUERY_NODE_SELECTOR:
        put_selector(o, n);
        put_mods(o, &n->u.sel.mods);
        break;
    case QUERY_NODE_MATRIX:
        put_selector(o, n->u.matrix.sel);
        puts_(o, "[");
        put_duration(o, n->u.matrix.range_ms);
        puts_(o, "]");
        put_mods(o, &n->u.matrix.sel->u.sel.mods);
        break;
    case QUERY_NODE_SUBQUERY:
        put_node(o, n->u.subquery.expr);
        puts_(o, "[");
        put_duration(o, n->u.subquery.range_ms);
        puts_(o, ":");
        if (n->u.subquery.step_ms)
            put_duration(o, n->u.subquery.step_ms);
        puts_(o, "]");
        put_mods(o, &n->u.subquery.mods);
        break;
    case QUERY_NODE_PAREN:
        puts_(o, "(");
        put_node(o, n->u.paren);
        puts_(o, ")");
        break;
    case QUERY_NODE_UNARY:
        puts_(o, n->u.unary.neg ? "-" : "+");
        put_node(o, n->u.unary.expr);
        break;
    case QUERY_NODE_BINARY:
        put_binary(o, n);
        break;
    case QUERY_NODE_CALL:
        putf(o, "%s(", n->u.call.fn->name);
        for (size_t i = 0; i < n->u.call.nargs; i++) {
            if (i)
                puts_(o, ", ");
            put_node(o, n->u.call.args[i]);
        }
        puts_(o, ")");
        break;
    case QUERY_NODE_AGG:
        put_agg(o, n);
        break;
    }
}

int query_print(const struct query_node *n, char *buf, size_t cap, size_t *len)
{
    struct out o = {buf, cap, 0, cap == 0};

    if (cap > 0)
        buf[0] = '\0';
    put_node(&o, n);
    if (len)
        *len = o.len;
    return o.full ? TSDB_EFULL : TSDB_OK;
}
