/*
 * PromQL parser: text to a syntax tree (query/ast.h), with Prometheus
 * 2.42's grammar, precedence and parse-time type checks.
 */
#ifndef QUERY_PARSE_H
#define QUERY_PARSE_H

#include <stddef.h>

#include "query/ast.h"

/*
 * LIMIT: query text is at most QUERY_PARSE_MAX_LEN bytes and a tree at
 * most QUERY_PARSE_MAX_DEPTH nodes high (parentheses, calls, unary signs
 * and operator chains all count).  The parser, printer and free recurse,
 * so the height bounds their stack; the length bounds every list the
 * parser grows.  Prometheus has neither limit; real dashboard queries stay
 * far below both.  Past either, query_parse() returns TSDB_ELIMIT with a
 * message ("expression nesting exceeds 256 levels").
 */
#define QUERY_PARSE_MAX_LEN   (1024 * 1024) /* bytes of query text */
#define QUERY_PARSE_MAX_DEPTH 256           /* tree height and nesting */

/*
 * A parse error: msg reads like Prometheus's, e.g.
 * "1:5: parse error: unexpected <op:*>" (line and 1-based byte column of
 * the offending token); pos is its byte offset.
 */
struct query_parse_err {
    size_t pos;
    int line, col;
    char msg[256];
};

/*
 * Parses src (len bytes, need not be NUL-terminated) into *out.
 * Returns TSDB_OK with *out owned by the caller (free with
 * query_node_free()); TSDB_EINVAL for a syntax or type error and
 * TSDB_ELIMIT for a limit above, both with err filled; TSDB_ENOMEM.
 * On error *out is NULL.  err may be NULL.
 */
int query_parse(const char *src, size_t len, struct query_node **out,
                struct query_parse_err *err);

#endif
