/*
 * Label matchers, as in a PromQL selector: name="v", name!="v", name=~"re",
 * name!~"re".  Regular expressions are fully anchored (they must match the
 * whole value) and use PCRE2, whose syntax covers what Prometheus users write
 * in RE2 syntax; '.' does not match a newline, as in Prometheus 2.42.
 *
 * A matcher that matches the empty string also selects series that do not
 * have the label at all, as Prometheus does (absent label == empty value).
 *
 * Thread rules: a matcher holds PCRE2 match data, so one matcher is used by
 * one thread at a time.
 */
#ifndef TSDB_MATCHER_H
#define TSDB_MATCHER_H

#include <stdbool.h>
#include <stddef.h>

enum tsdb_match_type {
    TSDB_MATCH_EQ,  /* = */
    TSDB_MATCH_NEQ, /* != */
    TSDB_MATCH_RE,  /* =~ */
    TSDB_MATCH_NRE, /* !~ */
};

struct tsdb_matcher {
    enum tsdb_match_type type;
    char *name;         /* owned copy */
    char *value;        /* owned copy; the pattern for RE/NRE */
    void *re;           /* pcre2_code_8 *, RE/NRE only */
    void *md;           /* pcre2_match_data_8 *, RE/NRE only */
    bool matches_empty; /* does the matcher accept ""? */
};

/*
 * Prepares m (caller-owned struct; release with tsdb_matcher_release).
 * Returns TSDB_OK, TSDB_EINVAL with err naming the label and, for a bad
 * pattern, the offset and PCRE2's message, or TSDB_ENOMEM.
 */
int tsdb_matcher_init(struct tsdb_matcher *m, enum tsdb_match_type type,
                      const char *name, const char *value, char *err,
                      size_t errlen);

void tsdb_matcher_release(struct tsdb_matcher *m);

/* Does value (len bytes, need not be NUL-terminated) satisfy m? */
bool tsdb_matcher_matches(const struct tsdb_matcher *m, const char *value,
                          size_t len);

#endif
