/*
 * A parsed selector's label matchers in the storage engine's form, for
 * code that reads series without evaluating PromQL (rollup rules, match[]
 * parameters).  A metric name written outside the braces becomes the
 * first matcher, __name__="...".
 */
#ifndef QUERY_MATCHERS_H
#define QUERY_MATCHERS_H

#include <stddef.h>

#include "query/ast.h"
#include "tsdb/matcher.h"

/*
 * Fills *out (free with query_matchers_free) with the n matchers of sel, a
 * QUERY_NODE_SELECTOR.  Returns TSDB_OK, TSDB_EINVAL with err naming the
 * label and the regular expression's fault, or TSDB_ENOMEM.
 */
int query_matchers(const struct query_node *sel, struct tsdb_matcher **out,
                   size_t *n, char *err, size_t errlen);

void query_matchers_free(struct tsdb_matcher *ms, size_t n);

#endif
