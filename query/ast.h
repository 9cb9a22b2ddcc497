/*
 * PromQL syntax tree: the node types query/parse.c builds, the table of
 * known functions with their argument and return types, and a printer
 * back to canonical PromQL text (Prometheus 2.42's String() form: one space
 * around binary operators, "sum by (a) (x)", "@ 1.000", user parentheses
 * kept and none added).
 *
 * Ownership: a tree is one allocation per node plus its strings, all owned
 * by the root; query_node_free() releases it.
 */
#ifndef QUERY_AST_H
#define QUERY_AST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Value types of expressions, as Prometheus names them in errors. */
enum query_type {
    QUERY_TYPE_NONE, /* only in the function table: no such argument */
    QUERY_TYPE_SCALAR,
    QUERY_TYPE_VECTOR, /* instant vector */
    QUERY_TYPE_MATRIX, /* range vector */
    QUERY_TYPE_STRING,
};

enum query_node_kind {
    QUERY_NODE_NUMBER,
    QUERY_NODE_STRING,
    QUERY_NODE_SELECTOR, /* instant vector selector */
    QUERY_NODE_MATRIX,   /* selector[range]; modifiers live on the selector */
    QUERY_NODE_SUBQUERY, /* expr[range:step] */
    QUERY_NODE_PAREN,
    QUERY_NODE_UNARY,
    QUERY_NODE_BINARY,
    QUERY_NODE_CALL,
    QUERY_NODE_AGG,
};

/* Binary operators, in no particular order; see query_op_name(). */
enum query_op {
    QUERY_OP_ADD,
    QUERY_OP_SUB,
    QUERY_OP_MUL,
    QUERY_OP_DIV,
    QUERY_OP_MOD,
    QUERY_OP_POW,
    QUERY_OP_ATAN2,
    QUERY_OP_EQ,
    QUERY_OP_NE,
    QUERY_OP_LE,
    QUERY_OP_LT,
    QUERY_OP_GE,
    QUERY_OP_GT,
    QUERY_OP_AND,
    QUERY_OP_UNLESS,
    QUERY_OP_OR,
};

enum query_agg {
    QUERY_AGG_SUM,
    QUERY_AGG_AVG,
    QUERY_AGG_COUNT,
    QUERY_AGG_MIN,
    QUERY_AGG_MAX,
    QUERY_AGG_GROUP,
    QUERY_AGG_STDDEV,
    QUERY_AGG_STDVAR,
    QUERY_AGG_TOPK,
    QUERY_AGG_BOTTOMK,
    QUERY_AGG_QUANTILE,
    QUERY_AGG_COUNT_VALUES,
};

enum query_match_op {
    QUERY_MATCH_EQ,  /* = */
    QUERY_MATCH_NE,  /* != */
    QUERY_MATCH_RE,  /* =~ */
    QUERY_MATCH_NRE, /* !~ */
};

enum query_card {
    QUERY_CARD_ONE_TO_ONE,
    QUERY_CARD_MANY_TO_ONE,  /* group_left */
    QUERY_CARD_ONE_TO_MANY,  /* group_right */
    QUERY_CARD_MANY_TO_MANY, /* set operators */
};

enum query_at {
    QUERY_AT_NONE,
    QUERY_AT_TIME, /* @ <number>, in at_ms */
    QUERY_AT_START,
    QUERY_AT_END,
};

/* A string that may hold NUL bytes (Go strings can); p is NUL-ended too. */
struct query_str {
    char *p;
    size_t len;
};

struct query_matcher {
    enum query_match_op op;
    struct query_str name;
    struct query_str value; /* regex text unanchored, as written */
};

struct query_labels {
    size_t n;
    struct query_str *names;
};

/* offset and @ as written; offset 0 means none. */
struct query_mods {
    int64_t offset_ms;
    enum query_at at;
    int64_t at_ms;
};

/*
 * One node.  pos is the byte offset of the node's first character in the
 * source, for error messages.  height is 1 for a leaf and 1 + the highest
 * child otherwise; the parser keeps it within QUERY_PARSE_MAX_DEPTH so
 * that the recursive free and print stay within a small stack.
 */
struct query_node {
    enum query_node_kind kind;
    size_t pos;
    int height;
    union {
        double number;
        struct query_str string;
        struct {
            /* metric name outside the braces, or p NULL; it is not
             * repeated in matchers, unlike a __name__ written inside. */
            struct query_str name;
            size_t nmatchers;
            struct query_matcher *matchers;
            struct query_mods mods;
        } sel;
        struct {
            struct query_node *sel; /* a QUERY_NODE_SELECTOR */
            int64_t range_ms;
        } matrix;
        struct {
            struct query_node *expr;
            int64_t range_ms;
            int64_t step_ms; /* 0: the default evaluation interval */
            struct query_mods mods;
        } subquery;
        struct query_node *paren;
        struct {
            bool neg; /* '-'; false for unary '+' */
            struct query_node *expr;
        } unary;
        struct {
            enum query_op op;
            bool return_bool;
            enum query_card card;
            bool on; /* on(...) written, else ignoring(...) or none */
            struct query_labels matching;
            struct query_labels include; /* group_left/right labels */
            struct query_node *lhs, *rhs;
        } binary;
        struct {
            const struct query_fsig *fn;
            size_t nargs;
            struct query_node **args;
        } call;
        struct {
            enum query_agg op;
            bool without;
            struct query_labels grouping;
            struct query_node *param; /* topk k, quantile q, ...; or NULL */
            struct query_node *expr;
        } agg;
    } u;
};

/*
 * A known function: argument types in order; variadic 0 means exactly
 * that many, -1 means the last type repeats without bound, n > 0 means up
 * to n more of the last type and the last one is optional (e.g. round's
 * to_nearest), as in Prometheus's table.
 */
struct query_fsig {
    const char *name;
    enum query_type args[5];
    int nargs;
    int variadic;
    enum query_type ret;
};

/* The signature of function name (len bytes), or NULL if unknown. */
const struct query_fsig *query_fsig_lookup(const char *name, size_t len);

/* Text of an operator ("+", "and", "atan2"); never NULL. */
const char *query_op_name(enum query_op op);

/* Name of an aggregation ("sum", "count_values"); never NULL. */
const char *query_agg_name(enum query_agg op);

/* Prometheus's name of a type ("instant vector"); never NULL. */
const char *query_type_name(enum query_type t);

/* The value type an expression yields. */
enum query_type query_node_type(const struct query_node *n);

/* Releases a tree and all its strings; NULL is a no-op. */
void query_node_free(struct query_node *n);

/*
 * Prints n as canonical PromQL into buf (cap bytes), NUL-terminated, and
 * sets *len (if not NULL) to the length without the NUL.  Returns TSDB_OK,
 * or TSDB_EFULL if the text does not fit (buf then holds a truncated,
 * terminated prefix).
 *
 * Canonical durations use the largest units first (90m prints as 1h30m),
 * numbers print in shortest round-trip form without exponent (1e3 prints
 * as 1000), strings print double-quoted with Go escapes.
 *
 * LIMIT: unlike Prometheus 2.42, which drops "ignoring () group_left ()"
 * from its output and so changes the meaning, we print the group modifier
 * whenever it was given, so a printed query means what was parsed.
 */
int query_print(const struct query_node *n, char *buf, size_t cap, size_t *len);

#endif
