/*
 * A streaming push parser for the Prometheus text exposition format 0.0.4
 * and OpenMetrics 1.0 (protocols.md section 8).  The HTTP bulk import feeds
 * it request bodies of any size piece by piece; tools/tsdb-bench feeds it
 * files.  Pure code: no LMDB, no HTTP, no logging, no allocation after
 * expfmt_parser_init.
 *
 * Input is cut into lines at '\n'.  Each line is handled on its own: a bad
 * line is reported through the error callback (line, column, what is wrong
 * in which field) and skipped, and parsing goes on with the next line, so
 * the valid lines around a bad one are still delivered.  Lines, samples,
 * metadata lines and errors are counted in the parser struct.
 *
 * What each format accepts (a summary; the tests are the full statement):
 *   text 0.0.4   name[{l="v",...[,]}] value [timestamp_ms]; blanks (space
 *                or tab) between tokens, inside braces and at both ends;
 *                "# HELP name text", "# TYPE name counter|gauge|histogram|
 *                summary|untyped"; any other '#' line and blank lines are
 *                comments.
 *   OpenMetrics  single spaces, no blanks inside braces; timestamps are
 *                seconds with an optional fraction or exponent, converted
 *                to ms exactly by decimal arithmetic (digits past the
 *                millisecond are cut toward zero, as Prometheus does);
 *                an exemplar "# {l="v"} value [timestamp]" may follow and
 *                is checked and dropped; HELP, TYPE (counter, gauge,
 *                histogram, gaugehistogram, stateset, info, summary,
 *                unknown) and UNIT metadata; "# EOF" must be the last
 *                line; blank lines and other comments are errors.
 *   Both         label values unescape \\ \" \n (any other backslash pair
 *                is kept as written) and must be valid UTF-8 without NUL;
 *                HELP text unescapes \\ \n (and \" in OpenMetrics); sample
 *                values are decimal floats or NaN, Inf, +Inf, -Inf,
 *                Infinity in any letter case, as Go's ParseFloat reads
 *                them (hexadecimal floats are refused).
 *
 * LIMIT: the parser checks syntax line by line only.  Family rules (TYPE
 * before the first sample, no interleaved families, counter samples named
 * _total, histogram buckets with le="+Inf") are not checked, and label
 * sets are not checked for duplicate names or for the storage's length
 * limits.  Why: the storage normalizes and checks every label set anyway
 * and reports the series by name; family rules would need per-family
 * state without a bound.  Behaviour: such lines are delivered and the
 * storage accepts or rejects each series on its own.
 *
 * LIMIT: sample values go through strtod when they do not fit the exact
 * fast path (more than 19 significant digits, exponent beyond +-22), so
 * the process must keep LC_NUMERIC as "C" (the default unless setlocale is
 * called).  Behaviour otherwise: such values parse wrongly or are refused.
 *
 * Threads: a parser belongs to one thread at a time.
 */
#ifndef HTTP_EXPFMT_H
#define HTTP_EXPFMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tsdb/error.h"
#include "tsdb/labels.h"

/* Longest line kept, newline excluded.  A longer line is reported as one
 * error and skipped to its newline without being buffered, so a parser
 * never holds more than this much of the input. */
#define EXPFMT_MAX_LINE 65536
/* Labels per sample, __name__ included: the storage's limit, so that a
 * line the storage would refuse anyway is refused here with its column. */
#define EXPFMT_MAX_LABELS TSDB_MAX_LABELS

enum expfmt_format {
    EXPFMT_TEXT,        /* Prometheus text 0.0.4, timestamps in ms */
    EXPFMT_OPENMETRICS, /* OpenMetrics 1.0, timestamps in seconds */
};

enum expfmt_meta_kind {
    EXPFMT_META_HELP,
    EXPFMT_META_TYPE,
    EXPFMT_META_UNIT, /* OpenMetrics only */
};

/* Metric types named by a TYPE line.  UNTYPED is text-only, UNKNOWN and
 * the three after SUMMARY are OpenMetrics-only. */
enum expfmt_type {
    EXPFMT_TYPE_COUNTER,
    EXPFMT_TYPE_GAUGE,
    EXPFMT_TYPE_HISTOGRAM,
    EXPFMT_TYPE_SUMMARY,
    EXPFMT_TYPE_UNTYPED,
    EXPFMT_TYPE_UNKNOWN,
    EXPFMT_TYPE_GAUGEHISTOGRAM,
    EXPFMT_TYPE_STATESET,
    EXPFMT_TYPE_INFO,
};

/*
 * One sample.  Every pointer (the array and each string) is borrowed until
 * the callback returns.  The callback may reorder or rewrite labels[]
 * (tsdb_appender_series normalizes it in place) but not the strings.
 */
struct expfmt_sample {
    struct tsdb_label *labels; /* labels[0] is __name__ as parsed */
    size_t nlabels;            /* 1..EXPFMT_MAX_LABELS */
    const char *name;          /* the metric name, same as labels[0].value */
    double value;
    int64_t timestamp_ms; /* valid when has_timestamp */
    bool has_timestamp;
    uint64_t line; /* 1-based */
};

/* One HELP, TYPE or UNIT line; strings borrowed until the callback
 * returns. */
struct expfmt_meta {
    enum expfmt_meta_kind kind;
    const char *name;      /* metric family name */
    const char *text;      /* HELP text unescaped, UNIT, or the TYPE word */
    enum expfmt_type type; /* TYPE lines only */
    uint64_t line;
};

/* One bad line.  msg is a static string naming the field and what is
 * wrong with it, e.g. "label value is not a quoted string". */
struct expfmt_error {
    uint64_t line;   /* 1-based */
    uint32_t column; /* 1-based byte offset in the line of the bad byte */
    const char *msg;
};

/*
 * Callbacks, each optional (NULL ignores that kind).  Each returns TSDB_OK
 * to go on, or a negative TSDB_E* code to stop: expfmt_parser_feed and
 * expfmt_parser_finish then return that code, now and on every later call.
 */
struct expfmt_callbacks {
    int (*sample)(void *ctx, struct expfmt_sample *s);
    int (*meta)(void *ctx, const struct expfmt_meta *m);
    int (*error)(void *ctx, const struct expfmt_error *e);
};

/*
 * Parser state.  The counters are public and read-only to callers; the
 * fields after them are private.
 */
struct expfmt_parser {
    uint64_t lines;   /* lines seen so far, bad and blank ones included */
    uint64_t samples; /* samples delivered */
    uint64_t metas;   /* HELP, TYPE and UNIT lines delivered */
    uint64_t errors;  /* bad lines, a missing # EOF, data after it */

    enum expfmt_format format;
    struct expfmt_callbacks cb;
    void *ctx;
    char *carry;      /* a line cut by a feed boundary, EXPFMT_MAX_LINE + 1 */
    size_t carry_len; /* > 0 exactly when a cut line is pending */
    char *scratch;    /* NUL-terminated copies of one line's strings */
    char *names;      /* last name seen at each label position */
    struct tsdb_label labels[EXPFMT_MAX_LABELS];
    bool skipping;  /* dropping the rest of an overlong line */
    bool seen_eof;  /* OpenMetrics "# EOF" was read */
    bool after_eof; /* data after "# EOF" was reported */
    bool finished;
    int stop_rc; /* first non-zero callback result, else TSDB_OK */
};

/*
 * Prepares p (caller-owned; release with expfmt_parser_release) for input
 * in format.  cb is copied; ctx is passed to every callback as is.
 * Allocates about 2 x EXPFMT_MAX_LINE bytes, and nothing afterwards.
 * Returns TSDB_OK, TSDB_EINVAL for an unknown format or TSDB_ENOMEM.
 */
int expfmt_parser_init(struct expfmt_parser *p, enum expfmt_format format,
                       const struct expfmt_callbacks *cb, void *ctx);

/*
 * Parses len bytes of input, cut anywhere (mid-line, mid-token, mid UTF-8
 * sequence): the next call continues where this one stopped.  Callbacks run
 * inside this call, in input order.  buf is only read during the call.
 * Bad lines do not make it fail: they are reported, counted and skipped.
 * Returns TSDB_OK, the code a callback stopped with, or TSDB_EINVAL after
 * expfmt_parser_finish.
 */
int expfmt_parser_feed(struct expfmt_parser *p, const void *buf, size_t len);

/*
 * Ends the input: parses a last line that has no newline, then, for
 * OpenMetrics, reports a missing "# EOF" through the error callback (line
 * = the line after the last one, column 1).  Returns TSDB_OK,
 * TSDB_ECORRUPT for OpenMetrics input without "# EOF", or the code a
 * callback stopped with.  Later feeds return TSDB_EINVAL.
 */
int expfmt_parser_finish(struct expfmt_parser *p);

/* Frees the buffers; p may then be initialised again.  Safe on a zeroed
 * struct and on one whose init failed. */
void expfmt_parser_release(struct expfmt_parser *p);

/* The name of a TYPE value as written in the input ("counter", ...). */
const char *expfmt_type_name(enum expfmt_type t);

#endif
