/*
 * A rollup rule: which series (a PromQL selector), how they are grouped
 * (by or without labels; the metric name always), the interval, the grace
 * period for late samples, and the outputs.  Rules arrive as JSON, from
 * PUT /api/v1/rollups/<name> or the --rollups file:
 *
 *   {"match": "llm_tokens_total{direction=\"output\"}", "by": ["region"],
 *    "interval": "1m", "grace": "10s",
 *    "outputs": ["increase", "count", "quantiles(0.5, 0.99)"]}
 *
 * Each output becomes the series <metric>:<interval>_<output> with the
 * group's labels, "quantiles" one series per quantile with a quantile
 * label, as <metric>:1m_quantile{quantile="0.99"}.
 */
#ifndef ROLLUP_RULE_H
#define ROLLUP_RULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tsdb/matcher.h"

#define ROLLUP_NAME_MAX      128 /* rule names: [A-Za-z0-9_.-]+ */
#define ROLLUP_MAX_LABELS    16  /* entries of by or without */
#define ROLLUP_MAX_QUANTILES 10  /* values inside quantiles(...) */
/* Intervals from 1 s to 1 d: shorter ones would write more series than
 * the raw data they replace, longer ones keep an interval's state open
 * for longer than a restart is expected to take to recover it. */
#define ROLLUP_MIN_INTERVAL_MS  1000
#define ROLLUP_MAX_INTERVAL_MS  86400000
#define ROLLUP_DEFAULT_GRACE_MS 10000

enum rollup_output {
    ROLLUP_SUM,   /* sum of every sample value */
    ROLLUP_COUNT, /* number of samples */
    ROLLUP_MIN,
    ROLLUP_MAX,
    ROLLUP_AVG,      /* sum / count */
    ROLLUP_LAST,     /* each series' last value, added over the group */
    ROLLUP_INCREASE, /* counters: growth, resets counted as from zero */
    ROLLUP_RATE,     /* increase per second of the interval */
    ROLLUP_QUANTILE, /* quantiles of every sample value */
    ROLLUP_NOUTPUTS
};

struct rollup_rule {
    char name[ROLLUP_NAME_MAX + 1];
    char *match; /* the selector as written */
    bool without;
    size_t nlabels;
    char *labels[ROLLUP_MAX_LABELS]; /* by or without, sorted, unique */
    int64_t interval_ms;
    int64_t grace_ms;
    uint32_t outputs; /* bit (1 << enum rollup_output) */
    size_t nquantiles;
    double quantiles[ROLLUP_MAX_QUANTILES]; /* ascending, unique */
    /* The compiled selector. */
    struct tsdb_matcher *ms;
    size_t nms;
};

/*
 * Reads a rule from JSON text (len bytes) into r (caller-owned; release
 * with rollup_rule_release).  Returns TSDB_OK, or TSDB_EINVAL with err
 * naming the field and what is wrong with it, or TSDB_ENOMEM.
 */
int rollup_rule_parse(const char *name, const char *json, size_t len,
                      struct rollup_rule *r, char *err, size_t errlen);

/* The rule as canonical JSON (malloc'd, NUL-ended; NULL on OOM): equal
 * rules give equal text, which is how a restart tells a changed rule. */
char *rollup_rule_json(const struct rollup_rule *r);

void rollup_rule_release(struct rollup_rule *r);

/* "sum", "count", ... "quantile". */
const char *rollup_output_name(enum rollup_output o);

#endif
