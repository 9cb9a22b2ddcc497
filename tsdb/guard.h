/*
 * Cardinality guardrails: limits on how many series a metric may have and
 * on how many distinct values a label may take, so that one label fed with
 * user ids or request ids cannot exhaust the server's memory.
 *
 * A rule is one of:
 * - series per metric: `metric` names the metric, or is NULL for the
 *   default that applies to every metric without a rule of its own;
 * - distinct values of `label`: over every metric (`metric` NULL), or
 *   among the series of one metric.  A metric with its own rule for a
 *   label is judged by that rule only; its values still count toward the
 *   label's global figure, since that figure is what the index holds.
 *
 * Rules are checked only when a series is about to be created: series that
 * exist keep working whatever the limits say.  Each rule has a policy:
 * - TSDB_GUARD_REJECT: the new series is refused; tsdb_appender_series
 *   returns TSDB_ELIMIT with a message naming the metric, the label, the
 *   limit and the series.
 * - TSDB_GUARD_FOLD: the value over the limit is replaced by
 *   TSDB_GUARD_OVERFLOW and the series is looked up again, so its samples
 *   go to the overflow series (created once, then reused) and sums over
 *   the metric stay right.  For a series-per-metric rule every label value
 *   but the metric name is replaced.  The overflow value never counts
 *   toward a limit and is always admitted.
 *
 * Counts are kept in memory.  At open (and when a rule is added) they are
 * read from the index postings (storage-format.md section 6.6), never by
 * decoding every series:
 * - series per metric: the id count of key `__name__ 00 metric`, one
 *   O(1) mdb_cursor_count per metric name;
 * - distinct values of a label: the keys `label 00 *`, one cursor step
 *   each; the set of values is kept as 64-bit hashes (16 to 32 bytes per
 *   value with the table's slack);
 * - distinct values of a label within a metric: the metric's ids, then the
 *   label's values among them (tsdb_index_label_values), which reads at
 *   most 1024 series or walks the label's keys.
 *
 * Thread rules: every call may be made from any thread.  The guard has its
 * own lock, taken after the database's head lock.
 *
 * LIMIT: fold keeps every sample but not every counter semantic.  Why:
 * folding renames a series, it does not aggregate; samples of several
 * sources land in one overflow series.  Matters for counters and for
 * sources that write the same timestamp.  Behaviour: sums of gauges and of
 * deltas stay right; a sample older than the overflow series' newest is
 * counted out_of_order, one at the same timestamp with another value a
 * conflict (struct tsdb_commit_result).  Aggregating on ingest (rollups,
 * design.md) is the way to fold counters.
 *
 * LIMIT: counts only grow while the database is open.  Why: retention
 * drops series from the index without telling the guard.  Matters when a
 * metric churns under retention.  Behaviour: the guard refuses (or folds)
 * earlier than the index would; the next open counts again.
 *
 * LIMIT: a rule added while writes run misses the series created while
 * its count is being read.  Why: the count is read from an index snapshot
 * without blocking writers.  Behaviour: those values count from the next
 * open.  Rules loaded at open (tsdb_options.guard_file) see every series.
 *
 * LIMIT: values are compared by 64-bit hash.  Two values of one label with
 * the same hash count as one, so a limit may let one extra value in; with
 * ten million values the chance of any collision is about 3 in a million.
 */
#ifndef TSDB_GUARD_H
#define TSDB_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tsdb/db.h"

/* The value a folded label takes.  A valid metric name too, so that a
 * rule on __name__ may fold. */
#define TSDB_GUARD_OVERFLOW "__overflow__"

/* At most this many rules, since each new series is checked against them
 * one by one. */
#define TSDB_GUARD_MAX_RULES 1024

enum tsdb_guard_policy {
    TSDB_GUARD_REJECT = 0,
    TSDB_GUARD_FOLD = 1,
};

struct tsdb_guard_rule {
    const char *metric; /* NULL: every metric */
    const char *label;  /* NULL: series per metric; else distinct values */
    uint64_t limit;     /* 0 allows nothing new (fold sends all to overflow) */
    enum tsdb_guard_policy policy;
};

/*
 * Adds rule r, or changes the limit and policy of the rule with the same
 * metric and label (whose count is kept).  A new rule's count is read from
 * the index first (see the top for the cost).  Strings are copied.
 * Returns TSDB_OK, TSDB_EINVAL (bad metric or label name, a metric-scoped
 * rule on __name__, unknown policy), TSDB_ELIMIT (TSDB_GUARD_MAX_RULES),
 * TSDB_ENOMEM or an index read error (TSDB_EIO, TSDB_ECORRUPT).
 */
int tsdb_guard_set(struct tsdb *db, const struct tsdb_guard_rule *r);

/*
 * Replaces every rule with v[0..n) (n == 0 removes them all), as a config
 * reload does.  Rules kept from before keep their counts.  On error the
 * old rules stay in force.  Returns as tsdb_guard_set.
 */
int tsdb_guard_replace(struct tsdb *db, const struct tsdb_guard_rule *v,
                       size_t n);

/*
 * The rules of a config file, parsed.  Caller-owned; release with
 * tsdb_guard_config_release (safe on a zeroed struct).
 */
struct tsdb_guard_config {
    struct tsdb_guard_rule *v; /* strings point into `strings` */
    size_t n;
    char *strings;
};

/*
 * Parses a config (text[0..len), need not be NUL-terminated).  One rule
 * per line, fields separated by blanks, `#` to the end of a line is a
 * comment, blank lines are ignored:
 *
 *     series METRIC|* LIMIT reject|fold
 *     values LABEL METRIC|* LIMIT reject|fold
 *
 * `*` is every metric.  LIMIT is a decimal integer.  A later line with the
 * same kind, metric and label replaces an earlier one.  Returns TSDB_OK,
 * TSDB_EINVAL with err naming the line and what is wrong, TSDB_ELIMIT (more
 * than TSDB_GUARD_MAX_RULES lines) or TSDB_ENOMEM.  Never logs.
 */
int tsdb_guard_parse(const char *text, size_t len,
                     struct tsdb_guard_config *out, char *err, size_t errlen);

void tsdb_guard_config_release(struct tsdb_guard_config *c);

/*
 * Reads the config file at path and replaces the rules with its own.
 * Returns TSDB_OK, TSDB_ENOTFOUND or TSDB_EIO (file), TSDB_ELIMIT (file
 * over 1 MiB, or too many rules), or as tsdb_guard_parse and
 * tsdb_guard_replace; err says which.
 */
int tsdb_guard_load(struct tsdb *db, const char *path, char *err,
                    size_t errlen);

/* What one rule allows and how much of it is used now. */
struct tsdb_guard_usage {
    char *metric; /* NULL: every metric */
    char *label;  /* NULL: series per metric */
    uint64_t limit;
    enum tsdb_guard_policy policy;
    /* Distinct values of a label rule; series of the metric of a series
     * rule; for the default series rule, the most series any metric it
     * governs has. */
    uint64_t used;
};

/* Events since open, for one metric and label (label NULL: the series
 * rule).  Only pairs that saw an event are listed. */
struct tsdb_guard_counter {
    char *metric; /* "" for series without __name__ */
    char *label;
    uint64_t refused; /* series refused (calls returning TSDB_ELIMIT) */
    uint64_t folded;  /* values replaced by TSDB_GUARD_OVERFLOW */
};

/* Figures for /metrics.  Caller-owned; release with
 * tsdb_guard_stats_release (safe on a zeroed struct). */
struct tsdb_guard_stats {
    uint64_t refused; /* totals over every counter */
    uint64_t folded;
    struct tsdb_guard_usage *rules; /* in the order they were set */
    size_t nrules;
    struct tsdb_guard_counter *counters; /* sorted by metric, then label */
    size_t ncounters;
};

/*
 * Fills *out.  Counters are counted per tsdb_appender_series call, so a
 * client that retries a refused series counts each time; they start at
 * zero at open.  Returns TSDB_OK or TSDB_ENOMEM (*out then empty).
 */
int tsdb_guard_stats_get(struct tsdb *db, struct tsdb_guard_stats *out);

void tsdb_guard_stats_release(struct tsdb_guard_stats *st);

/*
 * Debug checker: recounts from the index and compares with the counts in
 * memory (the invariants listed in guard.c).  Valid only when every series
 * created since open has been committed and retention has dropped none.
 * Costs as much as counting every rule again.  Returns TSDB_OK,
 * TSDB_ECORRUPT with err saying what differs, or an index read error.
 */
int tsdb_guard_check(struct tsdb *db, char *err, size_t errlen);

/* ---- engine side: db.c and appender.c only ---- */

struct tsdb_guard;

/*
 * Creates db->guard and loads db->opt.guard_file if set, logging the
 * reason of a failure.  Called by tsdb_open once the index holds every
 * series (after WAL replay).  Returns as tsdb_guard_load.
 */
int tsdb_guard_open(struct tsdb *db);

/* NULL is a no-op. */
void tsdb_guard_free(struct tsdb_guard *g);

/*
 * Judges the creation of the series v[0..n) (normalized; not yet in the
 * head nor the index).  The caller holds the head lock, so that the check
 * and the creation are one step.  Returns:
 * - TSDB_OK, *fold false: create it; it has been counted.
 * - TSDB_OK, *fold true: values of v were replaced in place by
 *   TSDB_GUARD_OVERFLOW; look the series up again.  Each fold turns at
 *   least one more value into the overflow value, which is exempt, so at
 *   most n + 1 lookups end in a verdict.
 * - TSDB_ELIMIT with err set; nothing counted but the refusal.
 * - TSDB_ENOMEM; nothing counted.
 * g may be NULL (no rules).
 */
int tsdb_guard_admit(struct tsdb_guard *g, struct tsdb_label *v, size_t n,
                     bool *fold, char *err, size_t errlen);

/* Totals for tsdb_stats_get; zero when g is NULL. */
void tsdb_guard_totals(struct tsdb_guard *g, uint64_t *refused,
                       uint64_t *folded);

#endif
