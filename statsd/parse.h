/*
 * The StatsD line parser: one body of lines in DogStatsD form (protocols.md
 * sections 9 and 10) in, normalised lines out.  Pure code: no I/O, no
 * logging, no allocation (the parser struct holds every buffer).
 *
 * Line grammar (README.md "StatsD" is the full statement):
 *
 *   name:value[:value...]|type[|@rate][|#tag[:value],...][|T<seconds>]
 *       [|c:<container>][|e:<external>][|card:<cardinality>]
 *   name:v1|t1[|@rate]:v2|t2[|@rate]...      (Etsy multi-typed form)
 *
 * Types c g ms h d s.  Several values after the name share the type, rate
 * and tags (DogStatsD 1.1); for s the whole text up to '|' is one member.
 * Gauge values with a leading + or - are deltas.  A rate is in (0, 1].
 * Counter, timer, histogram and distribution values are >= 0.  |T takes
 * unix seconds and is allowed on c and g lines with one value and no
 * delta.  Container, external-data and cardinality fields are accepted and
 * ignored.  Events (_e{...}) and service checks (_sc|...) are rejected.
 *
 * Names: every character outside [A-Za-z0-9_] becomes one '_' (a
 * multi-byte UTF-8 character counts as one), a leading digit gets a '_'
 * prefix, and a result starting with "__" is rejected (reserved).  Tag
 * keys follow the same rules and become label names; a bare tag becomes
 * tag="true"; a tag with an empty value is dropped (an empty label value
 * means "absent" in Prometheus); two tags that end up with one label name
 * reject the line; "le" is refused on ms, h and d lines, whose buckets
 * carry it.  Tags are delivered sorted by label name.
 *
 * A line is accepted or rejected whole.  A rejected line is reported with
 * its 1-based number and a reason naming the field, such as
 * "line 7: sample rate '@2' is not in (0, 1]", and parsing goes on.
 *
 * LIMIT: numbers go through strtod after a syntax check, so the process
 * must keep LC_NUMERIC as "C" (the default unless setlocale is called).
 * Behaviour otherwise: values with a decimal point are refused.
 *
 * Threads: a parser belongs to one thread at a time.
 */
#ifndef STATSD_PARSE_H
#define STATSD_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tsdb/error.h"
#include "tsdb/labels.h"

/* Longest line, newline excluded.  Why 8192: DogStatsD clients cap a
 * datagram at 8 KiB, and a bound keeps every scan of a line short. */
#define STATSD_MAX_LINE 8192
/* Lines per body; lines after it are rejected as one and not parsed. */
#define STATSD_MAX_LINES 100000
/* Longest metric name after sanitising.  Why 256: with the longest
 * suffix ("_bucket") it stays well inside TSDB_MAX_LABEL_VALUE. */
#define STATSD_MAX_NAME 256
/* Tags per line.  Why 32: with __name__ and le, far inside
 * TSDB_MAX_LABELS, and more tags than this is a modelling error. */
#define STATSD_MAX_TAGS 32
/* Values per line (name:v1:v2:...). */
#define STATSD_MAX_VALUES 1024
/* Parts of one Etsy multi-typed line (name:v1|t1:v2|t2...). */
#define STATSD_MAX_PARTS 16
/* Longest text of one number (value or rate). */
#define STATSD_MAX_NUMBER 64
/* Latest |T accepted: 9999-12-31T23:59:59Z, in unix seconds. */
#define STATSD_MAX_TIME_S INT64_C(253402300799)
/* Room for one rejection reason, "line N: " included. */
#define STATSD_MAX_REASON 192

/* In-memory types; the journal's byte codes are in statsd/journal.h. */
enum statsd_type {
    STATSD_COUNTER,      /* c */
    STATSD_GAUGE,        /* g */
    STATSD_TIMER,        /* ms: milliseconds, stored in seconds */
    STATSD_HISTOGRAM,    /* h */
    STATSD_DISTRIBUTION, /* d: aggregated like h */
    STATSD_SET,          /* s */
};

struct statsd_value {
    double v;   /* finite; >= 0 except for gauges */
    bool delta; /* gauges only: written with a leading + or - */
};

/* Strings are (pointer, length) and not NUL-terminated. */
struct statsd_tag {
    const char *key; /* a valid label name, not starting with "__" */
    size_t key_len;
    const char *value; /* valid UTF-8, no NUL, 1..TSDB_MAX_LABEL_VALUE */
    size_t value_len;
};

/*
 * One parsed line, or one part of a multi-typed line (parts share lineno).
 * Everything is borrowed until the callback returns.
 */
struct statsd_line {
    uint64_t lineno; /* 1-based, within the body */
    enum statsd_type type;
    const char *name; /* sanitised; matches [a-zA-Z_][a-zA-Z0-9_]* */
    size_t name_len;
    const struct statsd_tag *tags; /* sorted by key, keys unique */
    size_t ntags;
    double rate; /* in (0, 1]; 1 when not given */
    bool has_time;
    int64_t time_ms;                   /* when has_time: from |T seconds */
    const struct statsd_value *values; /* all types but s */
    size_t nvalues;                    /* 1..STATSD_MAX_VALUES; 0 for s */
    const char *member;                /* s only: the member's bytes */
    size_t member_len;                 /* s only: >= 1 */
};

/*
 * Callbacks.  Each returns TSDB_OK to go on or a negative TSDB_E* code to
 * stop; statsd_parse then returns that code.  reject may be NULL.
 */
struct statsd_parse_cb {
    int (*line)(void *ctx, const struct statsd_line *l);
    int (*reject)(void *ctx, uint64_t lineno, const char *reason);
};

/* One multi-typed part while a line is being split (private). */
struct statsd_part {
    const char *text; /* value text, up to the '|' before the type */
    size_t len;
    enum statsd_type type;
    double rate;
    size_t first; /* index of its first value in values[] */
    size_t nvalues;
};

/*
 * Parser state, caller-owned (about 23 KiB).  The counters are public and
 * read-only; the rest is private scratch space.
 */
struct statsd_parser {
    uint64_t lines;    /* non-blank lines seen */
    uint64_t accepted; /* lines delivered (a multi-typed line once) */
    uint64_t rejected; /* lines reported as bad */

    char name[STATSD_MAX_NAME + 1];
    char keys[STATSD_MAX_TAGS][TSDB_MAX_LABEL_NAME + 1];
    struct statsd_tag tags[STATSD_MAX_TAGS];
    struct statsd_value values[STATSD_MAX_VALUES];
    struct statsd_part parts[STATSD_MAX_PARTS];
    char reason[STATSD_MAX_REASON];
};

/* Zeroes the counters; p may be reused for any number of bodies. */
void statsd_parser_init(struct statsd_parser *p);

/*
 * Parses body[0..len) (lines end at '\n'; a '\r' before it is dropped;
 * blank lines are skipped).  Calls cb->line for each part of each valid
 * line and cb->reject for each bad one, in input order.  body is only read
 * during the call and may hold any bytes.  Returns TSDB_OK, TSDB_ELIMIT
 * when the body has more than STATSD_MAX_LINES lines (the lines after the
 * limit are reported as one rejection; the others are delivered), or the
 * code a callback stopped with.
 */
int statsd_parse(struct statsd_parser *p, const char *body, size_t len,
                 const struct statsd_parse_cb *cb, void *ctx);

/* The type as written in a line: "c", "g", "ms", "h", "d" or "s". */
const char *statsd_type_name(enum statsd_type t);

#endif
