/* Selector nodes to storage matchers (matchers.h). */
#include <stdlib.h>

#include "query/matchers.h"
#include "tsdb/error.h"

static const enum tsdb_match_type match_types[] = {
    [QUERY_MATCH_EQ] = TSDB_MATCH_EQ,
    [QUERY_MATCH_NE] = TSDB_MATCH_NEQ,
    [QUERY_MATCH_RE] = TSDB_MATCH_RE,
    [QUERY_MATCH_NRE] = TSDB_MATCH_NRE,
};

int query_matchers(const struct query_node *sel, struct tsdb_matcher **out,
                   size_t *n, char *err, size_t errlen)
{
    size_t cap = sel->u.sel.nmatchers + (sel->u.sel.name.p != NULL);
    struct tsdb_matcher *ms = calloc(cap ? cap : 1, sizeof(*ms));
    size_t k = 0;
    int rc = TSDB_OK;

    if (ms == NULL)
        return TSDB_ENOMEM;
    if (sel->u.sel.name.p != NULL)
        rc = tsdb_matcher_init(&ms[k++], TSDB_MATCH_EQ, "__name__",
                               sel->u.sel.name.p, err, errlen);
    for (size_t i = 0; i < sel->u.sel.nmatchers && rc == TSDB_OK; i++) {
        const struct query_matcher *m = &sel->u.sel.matchers[i];

        rc = tsdb_matcher_init(&ms[k], match_types[m->op], m->name.p,
                               m->value.p, err, errlen);
        if (rc == TSDB_OK)
            k++;
    }
    if (rc != TSDB_OK) {
        query_matchers_free(ms, k);
        return rc;
    }
    *out = ms;
    *n = k;
    return TSDB_OK;
}

void query_matchers_free(struct tsdb_matcher *ms, size_t n)
{
    for (size_t i = 0; i < n; i++)
        tsdb_matcher_release(&ms[i]);
    free(ms);
}
