/*
 * PromQL series selectors, for match[] parameters until the PromQL engine
 * exists: metric, metric{...}, or {...} with matchers
 * label="v", label!="v", label=~"re", label!~"re" separated by commas
 * (a trailing comma allowed) and blanks anywhere between tokens.
 *
 * Strings are quoted with ", ' or ` as in PromQL.  Inside " and ' the Go
 * escapes work: \a \b \f \n \r \t \v \\ \' \" \xHH, \NNN (octal, up to
 * 377), \uHHHH and \UHHHHHHHH (a Unicode code point, written as UTF-8);
 * any other escape is an error.  Backquoted strings have no escapes and
 * may not hold a newline either.
 *
 * Rules kept from Prometheus 2.42: the metric name may not be given twice
 * (before the braces and as __name__ inside them); at least one matcher
 * must not match the empty string ("vector selector must contain at least
 * one non-empty matcher").  A range ([5m]), offset or @ after the selector
 * is refused: match[] takes plain selectors only.
 */
#ifndef HTTP_SELECTOR_H
#define HTTP_SELECTOR_H

#include <stdbool.h>
#include <stddef.h>

#include "tsdb/db.h"
#include "tsdb/matcher.h"

/* Matchers per selector.  Why: each becomes an index walk, and a real
 * selector has a handful.  Past it the parse fails with TSDB_ELIMIT. */
#define HTTP_SELECTOR_MAX_MATCHERS 64

struct http_selector {
    struct tsdb_matcher *m; /* m[0..n): owned, released by release() */
    size_t n;
};

/*
 * Parses s into sel (caller-owned; release with http_selector_release,
 * also after a failure).  Returns TSDB_OK, TSDB_EINVAL with err as
 * "1:COL: parse error: what" (COL is the 1-based byte column) or a
 * matcher's own error (bad regular expression), TSDB_ELIMIT past
 * HTTP_SELECTOR_MAX_MATCHERS, or TSDB_ENOMEM.
 */
int http_selector_parse(const char *s, struct http_selector *sel, char *err,
                        size_t errlen);

void http_selector_release(struct http_selector *sel);

/*
 * Does the series ls satisfy every matcher of sel?  A label the series
 * lacks is read as the empty string, as Prometheus does.  Uses the
 * matchers' PCRE2 match data: one thread at a time per selector.
 */
bool http_selector_matches(const struct http_selector *sel,
                           const struct tsdb_labels *ls);

#endif
