/*
 * The rollup engine's state, shared by engine.c (API, observer, writer),
 * interval.c (adding samples, closing intervals) and state.c (the state
 * file and recovery).  Not a public header.  Everything here is guarded
 * by rollup_engine.lock unless a field says otherwise.
 */
#ifndef ROLLUP_ENGINE_INTERNAL_H
#define ROLLUP_ENGINE_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>

#include "rollup/map.h"
#include "rollup/rollup.h"
#include "rollup/rule.h"
#include "tsdb/labels.h"

/* Groups per rule.  Why: each open interval holds one accumulator per
 * group; a rule grouped by a per-request label would otherwise grow
 * without bound.  Samples of further groups are dropped and counted. */
#define ROLLUP_MAX_GROUPS 100000
/* Values a group keeps for quantiles in one open interval (8 bytes
 * each); further values are dropped and counted. */
#define ROLLUP_MAX_QUANTILE_VALUES (1u << 20)

/* One group's figures over one open interval. */
struct rollup_acc {
    uint64_t count;
    double sum, min, max;
    double increase; /* summed over the group's series */
    double last;     /* each series' last value, added as it is known */
    size_t nvals, cap;
    double *vals; /* quantiles only */
};

struct rollup_interval {
    int64_t start;
    struct rollup_acc *accs; /* by group index */
    size_t naccs;
};

struct rollup_group {
    char *key; /* metric name and grouping labels, see group_key() */
    size_t key_len;
    uint32_t next; /* next group with the same hash, or UINT32_MAX */
    struct tsdb_labels labels; /* __name__ = the source metric, then the
                                  grouping labels */
};

/* A selected series' state.  The increase base and the series' last value
 * outlive intervals. */
struct rollup_series {
    uint32_t group;
    bool has_base;
    bool holds_last; /* last_v not yet added to interval last_iv */
    int64_t last_t;
    double last_v;
    int64_t last_iv;
};

struct rollup_rulestate {
    struct rollup_rule def;
    char *def_json; /* canonical, rollup_rule_json */
    struct rollup_group *groups;
    size_t ngroups, groups_cap;
    struct rollup_map group_by_hash;
    struct rollup_series *series;
    size_t nseries, series_cap;
    struct rollup_map series_by_ref;
    struct rollup_interval *ivs; /* open, ascending start */
    size_t nivs;
    int64_t closed_until;  /* every interval before it is closed */
    int64_t durable_until; /* ... and its results are committed */
    int64_t max_t;         /* newest sample added */
    int64_t last_wall_ms;  /* wall clock of the newest sample */
    bool recovering;       /* closing waits until recovery has fed all */
    bool touched;          /* fed since the observer last looked */
    uint64_t snap_batch;   /* the writer's batch that ... */
    int64_t snap_until;    /* ... commits the intervals before this */
    uint64_t samples, late, dropped, written;
    uint64_t late_logged; /* late count at the last log line */
};

/* A result waiting for the writer. */
struct rollup_out {
    struct tsdb_labels labels;
    int64_t t;
    double v;
};

/* What a series id leads to: the (rule, series slot) pairs selecting it.
 * gen tells a stale entry after the rules changed. */
struct rollup_ref {
    uint32_t gen;
    uint32_t n;
    uint32_t *pairs; /* rule index, slot, rule index, slot... */
};

struct rollup_engine {
    struct tsdb *db;
    char *state_path;
    pthread_mutex_t lock;
    pthread_cond_t wake;             /* the writer: results queued, or stop */
    pthread_cond_t done;             /* rollup_sync: a batch was committed */
    struct rollup_rulestate **rules; /* by name */
    size_t nrules;
    struct rollup_ref *refs; /* by series id */
    size_t refs_cap;
    uint32_t gen;
    struct rollup_out *outs;
    size_t nouts, outs_cap;
    uint64_t observe_ns; /* time the observer took, for /metrics */
    uint64_t queued_batches, committed_batches; /* for rollup_sync */
    int commit_rc;                              /* last failed commit */
    bool stop;
    pthread_t writer;
    bool writer_running;
    pthread_mutex_t save_lock; /* one state file write at a time */
    struct tsdb_appender *app; /* the writer's, unobserved */
};

/* interval.c */
int rollup_series_slot(struct rollup_rulestate *r, uint64_t ref,
                       const struct tsdb_labels *ls, uint32_t *slot);
void rollup_feed(struct rollup_rulestate *r, uint32_t slot, int64_t t,
                 double v);
void rollup_close_due(struct rollup_engine *e, struct rollup_rulestate *r,
                      int64_t upto);
void rollup_rulestate_free(struct rollup_rulestate *r);
int64_t rollup_floor(int64_t t, int64_t step);

/* state.c */
int rollup_state_load(struct rollup_engine *e, char *err, size_t errlen);
int rollup_rules_file_load(struct rollup_engine *e, const char *path, char *err,
                           size_t errlen);
char *rollup_state_text(struct rollup_engine *e);
int rollup_state_write(struct rollup_engine *e, const char *text);
int rollup_recover(struct rollup_engine *e, struct rollup_rulestate *r);

/* engine.c */
struct rollup_rulestate *rollup_rulestate_new(const struct rollup_rule *def);
int rollup_insert_rule(struct rollup_engine *e, struct rollup_rulestate *r);

#endif
