/*
 * Label matchers (=, !=, =~, !~) with Prometheus 2.42 semantics.  Pure
 * code above PCRE2: no LMDB, no logging.  index.c evaluates matchers
 * against postings keys; the query layer evaluates them against values.
 *
 * Invariants:
 * 1. A regular expression must match the whole value: the pattern is
 *    compiled anchored at both ends, and '$' matches only at the very end,
 *    as Go's regexp does for Prometheus's "^(?:re)$".
 * 2. '.' does not match '\n' (newline is LF only, no dotall), as in
 *    Prometheus before 3.0.
 * 3. matches_empty equals tsdb_matcher_matches(m, "", 0) for the life of m.
 */
#define PCRE2_CODE_UNIT_WIDTH 8

#include "tsdb/matcher.h"

#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tsdb/error.h"

static int compile(struct tsdb_matcher *m, char *err, size_t errlen)
{
    uint32_t opts = PCRE2_UTF | PCRE2_ANCHORED | PCRE2_ENDANCHORED |
                    PCRE2_DOLLAR_ENDONLY | PCRE2_NEVER_BACKSLASH_C;
    pcre2_compile_context *cc;
    PCRE2_UCHAR msg[256];
    PCRE2_SIZE off;
    int code;

    /* The build's default newline may be CRLF or ANY; '.' must exclude
     * exactly '\n', as RE2 does. */
    cc = pcre2_compile_context_create(NULL);
    if (cc == NULL)
        return TSDB_ENOMEM;
    pcre2_set_newline(cc, PCRE2_NEWLINE_LF);
    m->re = pcre2_compile((PCRE2_SPTR)m->value, PCRE2_ZERO_TERMINATED, opts,
                          &code, &off, cc);
    pcre2_compile_context_free(cc);
    if (m->re == NULL) {
        if (code == PCRE2_ERROR_HEAP_FAILED)
            return TSDB_ENOMEM;
        pcre2_get_error_message(code, msg, sizeof(msg));
        if (err != NULL && errlen > 0)
            snprintf(err, errlen,
                     "invalid regular expression for label \"%s\" at "
                     "offset %zu: %s",
                     m->name, (size_t)off, (const char *)msg);
        return TSDB_EINVAL;
    }

    /* JIT is an optimisation only: without it matching is slower, not
     * different. */
    pcre2_jit_compile(m->re, PCRE2_JIT_COMPLETE);

    /* Only match/no match is needed, so one pair of offsets is enough. */
    m->md = pcre2_match_data_create(1, NULL);
    return m->md == NULL ? TSDB_ENOMEM : TSDB_OK;
}

int tsdb_matcher_init(struct tsdb_matcher *m, enum tsdb_match_type type,
                      const char *name, const char *value, char *err,
                      size_t errlen)
{
    int rc;

    memset(m, 0, sizeof(*m));
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (name == NULL || value == NULL || type < TSDB_MATCH_EQ ||
        type > TSDB_MATCH_NRE) {
        if (err != NULL && errlen > 0)
            snprintf(err, errlen,
                     "matcher needs a type, a label name and "
                     "a value");
        return TSDB_EINVAL;
    }
    m->type = type;
    m->name = strdup(name);
    m->value = strdup(value);
    if (m->name == NULL || m->value == NULL) {
        rc = TSDB_ENOMEM;
        goto fail_release;
    }
    if (type == TSDB_MATCH_RE || type == TSDB_MATCH_NRE) {
        rc = compile(m, err, errlen);
        if (rc != TSDB_OK)
            goto fail_release;
    }
    m->matches_empty = tsdb_matcher_matches(m, "", 0);
    return TSDB_OK;

fail_release:
    tsdb_matcher_release(m);
    return rc;
}

void tsdb_matcher_release(struct tsdb_matcher *m)
{
    pcre2_match_data_free(m->md);
    pcre2_code_free(m->re);
    free(m->name);
    free(m->value);
    memset(m, 0, sizeof(*m));
}

/*
 * LIMIT: PCRE2 backtracks, RE2 does not.  A pathological pattern such as
 * (a*)*b may hit PCRE2's match limit on a long value.  Matters only for
 * such patterns (values are at most TSDB_MAX_LABEL_VALUE bytes).
 * Behaviour: the value counts as not matching the regex, where Prometheus
 * would give the exact answer.  Tracked in storage-format.md "Limits".
 * Invalid UTF-8 in value also counts as not matching; stored values are
 * always valid (labels.c checks them).
 */
static bool re_matches(const struct tsdb_matcher *m, const char *value,
                       size_t len)
{
    int rc = pcre2_match(m->re, (PCRE2_SPTR)value, len, 0, 0, m->md, NULL);

    return rc >= 0;
}

bool tsdb_matcher_matches(const struct tsdb_matcher *m, const char *value,
                          size_t len)
{
    switch (m->type) {
    case TSDB_MATCH_EQ:
        return strlen(m->value) == len && memcmp(m->value, value, len) == 0;
    case TSDB_MATCH_NEQ:
        return strlen(m->value) != len || memcmp(m->value, value, len) != 0;
    case TSDB_MATCH_RE:
        return re_matches(m, value, len);
    case TSDB_MATCH_NRE:
        return !re_matches(m, value, len);
    }
    return false;
}
