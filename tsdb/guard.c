/*
 * Cardinality guardrails (guard.h): the rules, the counts behind them and
 * the check made when a series is about to be created.  Layer: inside the
 * storage engine; appender.c calls tsdb_guard_admit under the head lock and
 * db.c opens the guard once WAL replay has indexed every series.  It reads
 * the index (index.c) to count and never writes it.
 *
 * Invariants, whenever the guard's lock is free:
 * 1. For each label rule r, r->values holds the hash of every value (but
 *    TSDB_GUARD_OVERFLOW) that r's label takes among the series r governs:
 *    those in the index when r was counted plus those admitted since.  Its
 *    count of distinct values is r->values.n.
 * 2. For each metric with a series in the index at open or admitted since,
 *    the entry (metric, "") holds its series count.
 * 3. No two rules have the same metric and label.
 * 4. The totals refused and folded are at least the sums of the entries'
 *    counters (an event whose entry cannot be allocated counts in the
 *    totals only).
 * tsdb_guard_check verifies 1 to 3 against the index.
 *
 * Lock order: head lock, then lock.  config_lock is taken before either
 * and serialises rule changes, so that a change may read the rule list
 * without lock while admissions go on.
 */
#define LOG_MODULE "guard"
#include "tsdb/guard.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "tsdb/db_internal.h"
#include "tsdb/log.h"

#define METRIC_LABEL "__name__"
/* A config file is a few lines; a bigger one is a mistake. */
#define CONFIG_MAX_BYTES (1u << 20)
/* Fields of a config line: values LABEL METRIC LIMIT POLICY. */
#define CONFIG_MAX_FIELDS 5

/* judge_labels keeps one bit per label. */
static_assert(TSDB_MAX_LABELS <= 64, "label bitmap is a uint64_t");

/* ---- a set of value hashes ---- */

/*
 * Open addressing with linear probing, at most half full.  0 marks an
 * empty slot, so a hash of 0 is stored as 1.  Bounded by the distinct
 * values in the index, each of which needs a series (max_series).
 */
struct hset {
    uint64_t *slot;
    size_t cap; /* 0 or a power of two */
    size_t n;
};

static uint64_t value_hash(const char *s, size_t len)
{
    uint64_t h = XXH3_64bits(s, len);

    return h ? h : 1;
}

static bool hset_has(const struct hset *s, uint64_t h)
{
    size_t mask = s->cap - 1;

    if (s->cap == 0)
        return false;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        if (s->slot[i] == h)
            return true;
        if (s->slot[i] == 0)
            return false;
    }
}

/* Adds h; the caller has made room with hset_reserve. */
static void hset_put(struct hset *s, uint64_t h)
{
    size_t mask = s->cap - 1, i = h & mask;

    while (s->slot[i] != 0 && s->slot[i] != h)
        i = (i + 1) & mask;
    if (s->slot[i] == 0) {
        s->slot[i] = h;
        s->n++;
    }
}

/* Makes room for one more hash, so that the next hset_put cannot fail. */
static int hset_reserve(struct hset *s)
{
    struct hset t = {NULL, s->cap ? s->cap : 16, 0};

    if ((s->n + 1) * 2 <= s->cap)
        return TSDB_OK;
    while ((s->n + 1) * 2 > t.cap)
        t.cap *= 2;
    t.slot = calloc(t.cap, sizeof(*t.slot));
    if (!t.slot)
        return TSDB_ENOMEM;
    for (size_t i = 0; i < s->cap; i++) {
        if (s->slot[i] != 0)
            hset_put(&t, s->slot[i]);
    }
    free(s->slot);
    *s = t;
    return TSDB_OK;
}

static int hset_add(struct hset *s, uint64_t h)
{
    int rc = hset_reserve(s);

    if (rc == TSDB_OK)
        hset_put(s, h);
    return rc;
}

static void hset_release(struct hset *s)
{
    free(s->slot);
    memset(s, 0, sizeof(*s));
}

/* ---- per metric and label: series counts and event counters ---- */

struct entry {
    uint64_t hash;
    uint64_t series; /* entries with label "": series of the metric */
    uint64_t refused;
    uint64_t folded;
    size_t mlen; /* the metric is key[0..mlen), then 0x00 */
    char key[];  /* metric 0x00 label 0x00 */
};

/* Open addressing over entry pointers, at most half full. */
struct emap {
    struct entry **slot;
    size_t cap; /* 0 or a power of two */
    size_t n;
};

static uint64_t entry_hash(const char *metric, const char *label)
{
    return XXH3_64bits_withSeed(label, strlen(label),
                                XXH3_64bits(metric, strlen(metric)));
}

static bool entry_is(const struct entry *e, uint64_t h, const char *metric,
                     const char *label)
{
    return e->hash == h && strcmp(e->key, metric) == 0 &&
           strcmp(e->key + e->mlen + 1, label) == 0;
}

/* The slot holding (metric, label), or the empty slot where it goes. */
static size_t emap_slot(const struct emap *m, uint64_t h, const char *metric,
                        const char *label)
{
    size_t mask = m->cap - 1, i = h & mask;

    while (m->slot[i] && !entry_is(m->slot[i], h, metric, label))
        i = (i + 1) & mask;
    return i;
}

static struct entry *emap_find(const struct emap *m, const char *metric,
                               const char *label)
{
    if (m->cap == 0)
        return NULL;
    return m->slot[emap_slot(m, entry_hash(metric, label), metric, label)];
}

static int emap_grow(struct emap *m)
{
    struct emap t = {NULL, m->cap ? m->cap * 2 : 64, 0};
    struct entry *e;

    t.slot = calloc(t.cap, sizeof(*t.slot));
    if (!t.slot)
        return TSDB_ENOMEM;
    for (size_t i = 0; i < m->cap; i++) {
        e = m->slot[i];
        if (e)
            t.slot[emap_slot(&t, e->hash, e->key, e->key + e->mlen + 1)] = e;
    }
    t.n = m->n;
    free(m->slot);
    *m = t;
    return TSDB_OK;
}

/* Finds or adds the entry (metric, label).  TSDB_OK or TSDB_ENOMEM. */
static int emap_get(struct emap *m, const char *metric, const char *label,
                    struct entry **out)
{
    size_t mlen = strlen(metric), llen = strlen(label), i;
    uint64_t h = entry_hash(metric, label);
    struct entry *e;

    if ((m->n + 1) * 2 > m->cap && emap_grow(m) != TSDB_OK)
        return TSDB_ENOMEM;
    i = emap_slot(m, h, metric, label);
    if (!m->slot[i]) {
        e = calloc(1, sizeof(*e) + mlen + llen + 2);
        if (!e)
            return TSDB_ENOMEM;
        e->hash = h;
        e->mlen = mlen;
        memcpy(e->key, metric, mlen);
        memcpy(e->key + mlen + 1, label, llen);
        m->slot[i] = e;
        m->n++;
    }
    *out = m->slot[i];
    return TSDB_OK;
}

static void emap_release(struct emap *m)
{
    for (size_t i = 0; i < m->cap; i++)
        free(m->slot[i]);
    free(m->slot);
    memset(m, 0, sizeof(*m));
}

/* ---- rules ---- */

struct rule {
    char *metric; /* NULL: every metric */
    char *label;  /* NULL: series per metric */
    uint64_t limit;
    enum tsdb_guard_policy policy;
    struct hset values; /* label rules: invariant 1 */
};

struct tsdb_guard {
    pthread_mutex_t lock;        /* everything below */
    pthread_mutex_t config_lock; /* one rule change at a time */
    struct rule **rules;         /* in the order they were set */
    size_t nrules;
    struct emap entries;
    uint64_t refused;
    uint64_t folded;
};

static bool same(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

static struct rule *find_rule(const struct tsdb_guard *g, const char *metric,
                              const char *label)
{
    for (size_t i = 0; i < g->nrules; i++) {
        if (same(g->rules[i]->metric, metric) &&
            same(g->rules[i]->label, label))
            return g->rules[i];
    }
    return NULL;
}

static void rule_free(struct rule *r)
{
    if (!r)
        return;
    free(r->metric);
    free(r->label);
    hset_release(&r->values);
    free(r);
}

static bool is_overflow(const char *value)
{
    return strcmp(value, TSDB_GUARD_OVERFLOW) == 0;
}

/* ---- admission ---- */

static const char *metric_of(const struct tsdb_label *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(v[i].name, METRIC_LABEL) == 0)
            return v[i].value;
    }
    return NULL;
}

/* Counts one refusal or fold, under (metric, label or ""). */
static void count_event(struct tsdb_guard *g, const char *metric,
                        const char *label, bool refused)
{
    struct entry *e;

    if (refused)
        g->refused++;
    else
        g->folded++;
    if (emap_get(&g->entries, metric ? metric : "", label ? label : "", &e) !=
        TSDB_OK)
        return; /* the total has it (invariant 4) */
    if (refused)
        e->refused++;
    else
        e->folded++;
}

/* The rule judging label name in a series of metric: the metric's own if
 * it has one, else the one for every metric. */
static struct rule *label_rule(const struct tsdb_guard *g, const char *metric,
                               const char *name)
{
    struct rule *r = metric ? find_rule(g, metric, name) : NULL;

    return r ? r : find_rule(g, NULL, name);
}

/* Would value be a new value of r, with r full? */
static bool over_limit(const struct rule *r, const char *value)
{
    return r && r->values.n >= r->limit &&
           !hset_has(&r->values, value_hash(value, strlen(value)));
}

static int refuse_label(struct tsdb_guard *g, const struct rule *r,
                        const struct tsdb_label *v, size_t n, size_t i,
                        const char *metric, char *err, size_t errlen)
{
    char series[384];

    count_event(g, metric, v[i].name, true);
    if (!err || errlen == 0)
        return TSDB_ELIMIT;
    tsdb_labels_format(v, n, series, sizeof(series));
    if (r->metric)
        snprintf(err, errlen,
                 "label \"%s\" is at its limit of %" PRIu64
                 " distinct values for metric \"%s\"; not creating series %s",
                 v[i].name, r->limit, r->metric, series);
    else
        snprintf(
            err, errlen,
            "label \"%s\" is at its limit of %" PRIu64
            " distinct values over all metrics; not creating series %s of metric \"%s\"",
            v[i].name, r->limit, series, metric ? metric : "");
    return TSDB_ELIMIT;
}

/*
 * Label rules: refuses if any label over its limit says reject, else folds
 * every label over its limit.  Nothing changes before the verdict is
 * known, so a refusal leaves v as it was.
 */
static int judge_labels(struct tsdb_guard *g, struct tsdb_label *v, size_t n,
                        const char *metric, bool *fold, char *err,
                        size_t errlen)
{
    uint64_t over = 0;
    struct rule *r;

    for (size_t i = 0; i < n; i++) {
        if (is_overflow(v[i].value))
            continue;
        r = label_rule(g, metric, v[i].name);
        if (!over_limit(r, v[i].value))
            continue;
        if (r->policy == TSDB_GUARD_REJECT)
            return refuse_label(g, r, v, n, i, metric, err, errlen);
        over |= UINT64_C(1) << i;
    }
    for (size_t i = 0; i < n; i++) {
        if (over & (UINT64_C(1) << i)) {
            count_event(g, metric, v[i].name, false);
            v[i].value = TSDB_GUARD_OVERFLOW;
        }
    }
    *fold = over != 0;
    return TSDB_OK;
}

/* Has the series labels besides the metric name, all of them folded? */
static bool overflow_series(const struct tsdb_label *v, size_t n)
{
    size_t others = 0;

    for (size_t i = 0; i < n; i++) {
        if (strcmp(v[i].name, METRIC_LABEL) == 0)
            continue;
        if (!is_overflow(v[i].value))
            return false;
        others++;
    }
    return others > 0;
}

static int refuse_series(struct tsdb_guard *g, const struct rule *r,
                         const struct tsdb_label *v, size_t n,
                         const char *metric, char *err, size_t errlen)
{
    char series[384];

    count_event(g, metric, NULL, true);
    if (!err || errlen == 0)
        return TSDB_ELIMIT;
    tsdb_labels_format(v, n, series, sizeof(series));
    snprintf(err, errlen,
             "metric \"%s\" is at its %slimit of %" PRIu64
             " series; not creating series %s",
             metric, r->metric ? "" : "default ", r->limit, series);
    return TSDB_ELIMIT;
}

/*
 * The series rule of the metric (its own, else the default).  An overflow
 * series is exempt, else fold could never land.  Fold needs a label to
 * fold: a series of the metric name alone is refused.
 */
static int judge_series(struct tsdb_guard *g, struct tsdb_label *v, size_t n,
                        const char *metric, bool *fold, char *err,
                        size_t errlen)
{
    const struct entry *e;
    struct rule *r;

    if (!metric)
        return TSDB_OK;
    r = find_rule(g, metric, NULL);
    if (!r)
        r = find_rule(g, NULL, NULL);
    if (!r)
        return TSDB_OK;
    e = emap_find(&g->entries, metric, "");
    if ((e ? e->series : 0) < r->limit || overflow_series(v, n))
        return TSDB_OK;
    if (r->policy == TSDB_GUARD_REJECT || n < 2)
        return refuse_series(g, r, v, n, metric, err, errlen);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(v[i].name, METRIC_LABEL) != 0)
            v[i].value = TSDB_GUARD_OVERFLOW;
    }
    count_event(g, metric, NULL, false);
    *fold = true;
    return TSDB_OK;
}

/* The rules that count label name of a series of metric (invariant 1):
 * the one for every metric and the metric's own. */
static size_t counting_rules(const struct tsdb_guard *g, const char *metric,
                             const char *name, struct rule *out[2])
{
    size_t k = 0;

    out[k] = find_rule(g, NULL, name);
    k += out[k] != NULL;
    out[k] = metric ? find_rule(g, metric, name) : NULL;
    k += out[k] != NULL;
    return k;
}

/* Counts an admitted series.  All memory is found before anything is
 * counted, so TSDB_ENOMEM leaves every count as it was. */
static int record(struct tsdb_guard *g, const struct tsdb_label *v, size_t n,
                  const char *metric)
{
    struct entry *e = NULL;
    struct rule *r[2];
    size_t k;

    for (size_t i = 0; i < n; i++) {
        k = is_overflow(v[i].value) ? 0
                                    : counting_rules(g, metric, v[i].name, r);
        for (size_t j = 0; j < k; j++) {
            if (hset_reserve(&r[j]->values) != TSDB_OK)
                return TSDB_ENOMEM;
        }
    }
    if (metric && emap_get(&g->entries, metric, "", &e) != TSDB_OK)
        return TSDB_ENOMEM;

    for (size_t i = 0; i < n; i++) {
        k = is_overflow(v[i].value) ? 0
                                    : counting_rules(g, metric, v[i].name, r);
        for (size_t j = 0; j < k; j++)
            hset_put(&r[j]->values, value_hash(v[i].value, strlen(v[i].value)));
    }
    if (e)
        e->series++;
    return TSDB_OK;
}

int tsdb_guard_admit(struct tsdb_guard *g, struct tsdb_label *v, size_t n,
                     bool *fold, char *err, size_t errlen)
{
    const char *metric = metric_of(v, n);
    int rc;

    *fold = false;
    if (!g)
        return TSDB_OK;
    pthread_mutex_lock(&g->lock);
    rc = judge_labels(g, v, n, metric, fold, err, errlen);
    if (rc == TSDB_OK && !*fold)
        rc = judge_series(g, v, n, metric, fold, err, errlen);
    if (rc == TSDB_OK && !*fold)
        rc = record(g, v, n, metric);
    pthread_mutex_unlock(&g->lock);
    return rc;
}

void tsdb_guard_totals(struct tsdb_guard *g, uint64_t *refused,
                       uint64_t *folded)
{
    *refused = 0;
    *folded = 0;
    if (!g)
        return;
    pthread_mutex_lock(&g->lock);
    *refused = g->refused;
    *folded = g->folded;
    pthread_mutex_unlock(&g->lock);
}

/* ---- counting from the index ---- */

/*
 * Series per metric: one mdb_cursor_count per key "__name__ 00 metric"
 * (storage-format.md 6.6).  The keys of one name are contiguous.
 */
static int count_metrics(struct tsdb *db, MDB_txn *txn, struct emap *out)
{
    static const char prefix[] = METRIC_LABEL; /* and its NUL: the 00 */
    char name[TSDB_MAX_LABEL_VALUE + 1];
    MDB_val k = {sizeof(prefix), (void *)prefix}, d;
    MDB_cursor *c;
    struct entry *e;
    size_t count, len;
    int mrc, rc;

    rc = tsdb_mdb_error(mdb_cursor_open(txn, db->index.postings, &c));
    if (rc != TSDB_OK)
        return rc;
    for (mrc = mdb_cursor_get(c, &k, &d, MDB_SET_RANGE);
         rc == TSDB_OK && mrc == MDB_SUCCESS;
         mrc = mdb_cursor_get(c, &k, &d, MDB_NEXT_NODUP)) {
        if (k.mv_size < sizeof(prefix) ||
            memcmp(k.mv_data, prefix, sizeof(prefix)) != 0)
            break;
        len = k.mv_size - sizeof(prefix);
        if (len == 0 || len > TSDB_MAX_LABEL_VALUE) {
            log_error("postings key of metric name has a value of %zu bytes",
                      len);
            rc = TSDB_ECORRUPT;
            break;
        }
        memcpy(name, (const char *)k.mv_data + sizeof(prefix), len);
        name[len] = '\0';
        rc = tsdb_mdb_error(mdb_cursor_count(c, &count));
        if (rc == TSDB_OK)
            rc = emap_get(out, name, "", &e);
        if (rc == TSDB_OK)
            e->series = count;
    }
    if (rc == TSDB_OK && mrc != MDB_SUCCESS && mrc != MDB_NOTFOUND) {
        log_error("cannot walk postings: %s", mdb_strerror(mrc));
        rc = tsdb_mdb_error(mrc);
    }
    mdb_cursor_close(c);
    return rc;
}

static int add_value(void *ctx, const char *s, size_t len)
{
    if (len == strlen(TSDB_GUARD_OVERFLOW) &&
        memcmp(s, TSDB_GUARD_OVERFLOW, len) == 0)
        return TSDB_OK;
    return hset_add(ctx, value_hash(s, len));
}

/*
 * The values of r's label among the series r governs, into out: the
 * label's keys for a rule over every metric; else the metric's ids first,
 * then the label's values among them.
 */
static int count_values(struct tsdb *db, MDB_txn *txn, const struct rule *r,
                        struct hset *out)
{
    struct tsdb_ids ids = {0};
    struct tsdb_matcher m;
    int rc;

    if (!r->metric)
        return tsdb_index_label_values(&db->index, txn, r->label, NULL,
                                       add_value, out);
    rc = tsdb_matcher_init(&m, TSDB_MATCH_EQ, METRIC_LABEL, r->metric, NULL, 0);
    if (rc != TSDB_OK)
        return rc;
    rc = tsdb_index_select(&db->index, txn, &m, 1, &ids);
    if (rc == TSDB_OK)
        rc = tsdb_index_label_values(&db->index, txn, r->label, &ids, add_value,
                                     out);
    tsdb_ids_release(&ids);
    tsdb_matcher_release(&m);
    return rc;
}

static int begin_read(struct tsdb *db, MDB_txn **txn)
{
    return tsdb_mdb_error(mdb_txn_begin(db->env, NULL, MDB_RDONLY, txn));
}

/* ---- rule changes ---- */

static bool rule_valid(const struct tsdb_guard_rule *r)
{
    if (r->metric && (strlen(r->metric) > TSDB_MAX_LABEL_VALUE ||
                      !tsdb_metric_name_valid(r->metric, strlen(r->metric))))
        return false;
    if (r->label && (strlen(r->label) > TSDB_MAX_LABEL_NAME ||
                     !tsdb_label_name_valid(r->label, strlen(r->label))))
        return false;
    if (r->metric && r->label && strcmp(r->label, METRIC_LABEL) == 0)
        return false;
    return r->policy == TSDB_GUARD_REJECT || r->policy == TSDB_GUARD_FOLD;
}

/* A rule being installed: an existing rule to keep, or a new one. */
struct plan {
    struct rule *r;
    bool fresh;
    uint64_t limit;
    enum tsdb_guard_policy policy;
};

static int new_rule(struct tsdb *db, MDB_txn **txn,
                    const struct tsdb_guard_rule *want, struct rule **out)
{
    struct rule *r = calloc(1, sizeof(*r));
    int rc = TSDB_OK;

    if (!r)
        return TSDB_ENOMEM;
    r->metric = want->metric ? strdup(want->metric) : NULL;
    r->label = want->label ? strdup(want->label) : NULL;
    if ((want->metric && !r->metric) || (want->label && !r->label))
        rc = TSDB_ENOMEM;
    if (rc == TSDB_OK && r->label && !*txn)
        rc = begin_read(db, txn);
    if (rc == TSDB_OK && r->label)
        rc = count_values(db, *txn, r, &r->values);
    if (rc != TSDB_OK) {
        rule_free(r);
        return rc;
    }
    *out = r;
    return TSDB_OK;
}

/* Plans v[0..n) into p (n slots); *np receives the count, duplicates
 * merged with the last one winning.  Holds config_lock. */
static int plan_rules(struct tsdb *db, const struct tsdb_guard_rule *v,
                      size_t n, struct plan *p, size_t *np)
{
    struct tsdb_guard *g = db->guard;
    MDB_txn *txn = NULL;
    size_t k = 0, j;
    int rc = TSDB_OK;

    for (size_t i = 0; i < n && rc == TSDB_OK; i++) {
        for (j = 0; j < k; j++) {
            if (same(p[j].r->metric, v[i].metric) &&
                same(p[j].r->label, v[i].label))
                break;
        }
        if (j == k) {
            p[k].r = find_rule(g, v[i].metric, v[i].label);
            p[k].fresh = p[k].r == NULL;
            if (p[k].fresh)
                rc = new_rule(db, &txn, &v[i], &p[k].r);
            k += rc == TSDB_OK;
        }
        p[j].limit = v[i].limit;
        p[j].policy = v[i].policy;
    }
    if (txn)
        mdb_txn_abort(txn);
    *np = k;
    return rc;
}

/* Installs the plan, freeing the rules it drops.  Holds config_lock. */
static void install(struct tsdb_guard *g, struct plan *p, size_t n,
                    struct rule **next)
{
    struct rule **old;
    size_t nold, j;

    for (size_t i = 0; i < n; i++)
        next[i] = p[i].r;
    pthread_mutex_lock(&g->lock);
    for (size_t i = 0; i < n; i++) {
        p[i].r->limit = p[i].limit;
        p[i].r->policy = p[i].policy;
    }
    old = g->rules;
    nold = g->nrules;
    g->rules = next;
    g->nrules = n;
    pthread_mutex_unlock(&g->lock);

    for (size_t i = 0; i < nold; i++) {
        for (j = 0; j < n && next[j] != old[i]; j++)
            ;
        if (j == n)
            rule_free(old[i]);
    }
    free(old);
}

static int replace_locked(struct tsdb *db, const struct tsdb_guard_rule *v,
                          size_t n)
{
    struct plan *p = calloc(n ? n : 1, sizeof(*p));
    struct rule **next = calloc(n ? n : 1, sizeof(*next));
    size_t np = 0;
    int rc = p && next ? TSDB_OK : TSDB_ENOMEM;

    if (rc == TSDB_OK)
        rc = plan_rules(db, v, n, p, &np);
    if (rc == TSDB_OK) {
        install(db->guard, p, np, next);
        next = NULL;
    }
    for (size_t i = 0; rc != TSDB_OK && i < np; i++) {
        if (p[i].fresh)
            rule_free(p[i].r);
    }
    free(p);
    free(next);
    return rc;
}

int tsdb_guard_replace(struct tsdb *db, const struct tsdb_guard_rule *v,
                       size_t n)
{
    struct tsdb_guard *g = db->guard;
    int rc;

    if (n > TSDB_GUARD_MAX_RULES)
        return TSDB_ELIMIT;
    for (size_t i = 0; i < n; i++) {
        if (!rule_valid(&v[i]))
            return TSDB_EINVAL;
    }
    pthread_mutex_lock(&g->config_lock);
    rc = replace_locked(db, v, n);
    pthread_mutex_unlock(&g->config_lock);
    return rc;
}

int tsdb_guard_set(struct tsdb *db, const struct tsdb_guard_rule *r)
{
    struct tsdb_guard *g = db->guard;
    struct tsdb_guard_rule *v;
    size_t n;
    int rc;

    if (!rule_valid(r))
        return TSDB_EINVAL;
    pthread_mutex_lock(&g->config_lock);
    n = g->nrules;
    v = calloc(n + 1, sizeof(*v));
    if (!v) {
        pthread_mutex_unlock(&g->config_lock);
        return TSDB_ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        v[i] =
            (struct tsdb_guard_rule){g->rules[i]->metric, g->rules[i]->label,
                                     g->rules[i]->limit, g->rules[i]->policy};
    v[n] = *r;
    rc = n + 1 > TSDB_GUARD_MAX_RULES && !find_rule(g, r->metric, r->label)
             ? TSDB_ELIMIT
             : replace_locked(db, v, n + 1);
    pthread_mutex_unlock(&g->config_lock);
    free(v);
    return rc;
}

/* ---- config text ---- */

/* "line N: what "field"[; hint]" into err; returns TSDB_EINVAL. */
static int bad_line(char *err, size_t errlen, unsigned line, const char *what,
                    const char *field, const char *hint)
{
    if (err && errlen > 0)
        snprintf(err, errlen, "line %u: %s \"%.64s\"%s%s", line, what, field,
                 hint ? "; " : "", hint ? hint : "");
    return TSDB_EINVAL;
}

static int parse_limit(const char *s, uint64_t *out)
{
    char *end;

    if (*s < '0' || *s > '9')
        return TSDB_EINVAL;
    errno = 0;
    *out = strtoull(s, &end, 10);
    return *end == '\0' && errno == 0 ? TSDB_OK : TSDB_EINVAL;
}

/* Fills r from the fields f[0..nf) of one line. */
static int parse_rule(char **f, size_t nf, unsigned line,
                      struct tsdb_guard_rule *r, char *err, size_t errlen)
{
    bool values = strcmp(f[0], "values") == 0;
    size_t want = values ? 5 : 4;
    char **rest = f + (values ? 2 : 1);

    if (!values && strcmp(f[0], "series") != 0)
        return bad_line(err, errlen, line, "unknown rule kind", f[0],
                        "want series or values");
    if (nf != want)
        return bad_line(err, errlen, line, "wrong field count for", f[0],
                        values ? "want: values LABEL METRIC|* LIMIT POLICY"
                               : "want: series METRIC|* LIMIT POLICY");
    r->label = values ? f[1] : NULL;
    r->metric = strcmp(rest[0], "*") == 0 ? NULL : rest[0];
    if (parse_limit(rest[1], &r->limit) != TSDB_OK)
        return bad_line(err, errlen, line, "bad limit", rest[1],
                        "want a decimal integer");
    if (strcmp(rest[2], "reject") == 0)
        r->policy = TSDB_GUARD_REJECT;
    else if (strcmp(rest[2], "fold") == 0)
        r->policy = TSDB_GUARD_FOLD;
    else
        return bad_line(err, errlen, line, "unknown policy", rest[2],
                        "want reject or fold");
    if (r->label && !tsdb_label_name_valid(r->label, strlen(r->label)))
        return bad_line(err, errlen, line, "bad label name", r->label, NULL);
    if (r->metric && !tsdb_metric_name_valid(r->metric, strlen(r->metric)))
        return bad_line(err, errlen, line, "bad metric name", r->metric, NULL);
    if (r->metric && r->label && strcmp(r->label, METRIC_LABEL) == 0)
        return bad_line(err, errlen, line,
                        "a rule on __name__ cannot name a metric", r->metric,
                        NULL);
    if (!rule_valid(r))
        return bad_line(err, errlen, line, "name too long", f[1], NULL);
    return TSDB_OK;
}

/* Adds r to c, or updates the rule of c with the same metric and label. */
static int config_put(struct tsdb_guard_config *c, size_t *cap,
                      const struct tsdb_guard_rule *r)
{
    struct tsdb_guard_rule *v;

    for (size_t i = 0; i < c->n; i++) {
        if (same(c->v[i].metric, r->metric) && same(c->v[i].label, r->label)) {
            c->v[i] = *r;
            return TSDB_OK;
        }
    }
    if (c->n == TSDB_GUARD_MAX_RULES)
        return TSDB_ELIMIT;
    if (c->n == *cap) {
        *cap = *cap ? *cap * 2 : 16;
        v = realloc(c->v, *cap * sizeof(*v));
        if (!v)
            return TSDB_ENOMEM;
        c->v = v;
    }
    c->v[c->n++] = *r;
    return TSDB_OK;
}

/* Splits line in place at blanks, after cutting a comment. */
static size_t split_fields(char *line, char **f, size_t max)
{
    char *save = NULL, *tok, *hash = strchr(line, '#');
    size_t n = 0;

    if (hash)
        *hash = '\0';
    for (tok = strtok_r(line, " \t\r\v\f", &save); tok;
         tok = strtok_r(NULL, " \t\r\v\f", &save)) {
        if (n == max)
            return max + 1;
        f[n++] = tok;
    }
    return n;
}

int tsdb_guard_parse(const char *text, size_t len,
                     struct tsdb_guard_config *out, char *err, size_t errlen)
{
    char *f[CONFIG_MAX_FIELDS], *line, *nl;
    struct tsdb_guard_rule r;
    unsigned lineno = 1;
    size_t cap = 0, nf;
    int rc = TSDB_OK;

    memset(out, 0, sizeof(*out));
    if (memchr(text, '\0', len))
        return bad_line(err, errlen, 0, "config holds a NUL byte", "", NULL);
    out->strings = malloc(len + 1);
    if (!out->strings)
        return TSDB_ENOMEM;
    memcpy(out->strings, text, len);
    out->strings[len] = '\0';
    for (line = out->strings; line && rc == TSDB_OK; line = nl, lineno++) {
        nl = strchr(line, '\n');
        if (nl)
            *nl++ = '\0';
        nf = split_fields(line, f, CONFIG_MAX_FIELDS);
        if (nf > CONFIG_MAX_FIELDS)
            rc = bad_line(err, errlen, lineno, "too many fields after", f[0],
                          NULL);
        else if (nf > 0)
            rc = parse_rule(f, nf, lineno, &r, err, errlen);
        if (rc == TSDB_OK && nf > 0)
            rc = config_put(out, &cap, &r);
        if (rc == TSDB_ELIMIT)
            bad_line(err, errlen, lineno, "too many rules at", f[0], NULL);
    }
    if (rc != TSDB_OK)
        tsdb_guard_config_release(out);
    return rc;
}

void tsdb_guard_config_release(struct tsdb_guard_config *c)
{
    free(c->v);
    free(c->strings);
    memset(c, 0, sizeof(*c));
}

/* Reads path whole, up to CONFIG_MAX_BYTES, into *buf (caller frees). */
static int read_file(const char *path, char **buf, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    int rc = TSDB_OK;

    *buf = NULL;
    if (!fp)
        return errno == ENOENT ? TSDB_ENOTFOUND : TSDB_EIO;
    *buf = malloc(CONFIG_MAX_BYTES + 1);
    if (!*buf)
        rc = TSDB_ENOMEM;
    if (rc == TSDB_OK) {
        *len = fread(*buf, 1, CONFIG_MAX_BYTES + 1, fp);
        if (ferror(fp))
            rc = TSDB_EIO;
        else if (*len > CONFIG_MAX_BYTES)
            rc = TSDB_ELIMIT;
    }
    fclose(fp);
    if (rc != TSDB_OK) {
        free(*buf);
        *buf = NULL;
    }
    return rc;
}

int tsdb_guard_load(struct tsdb *db, const char *path, char *err, size_t errlen)
{
    struct tsdb_guard_config c = {0};
    char why[256] = "";
    size_t len = 0;
    char *text;
    int rc;

    rc = read_file(path, &text, &len);
    if (rc == TSDB_OK)
        rc = tsdb_guard_parse(text, len, &c, why, sizeof(why));
    else if (rc == TSDB_ELIMIT)
        snprintf(why, sizeof(why), "over %u bytes", CONFIG_MAX_BYTES);
    free(text);
    if (rc == TSDB_OK)
        rc = tsdb_guard_replace(db, c.v, c.n);
    if (rc != TSDB_OK && err && errlen > 0)
        snprintf(err, errlen, "bad guard config '%s': %s%s%s", path,
                 tsdb_strerror(rc), why[0] ? ": " : "", why);
    tsdb_guard_config_release(&c);
    return rc;
}

/* ---- open, free ---- */

int tsdb_guard_open(struct tsdb *db)
{
    struct tsdb_guard *g = calloc(1, sizeof(*g));
    char err[512];
    MDB_txn *txn;
    int rc;

    if (!g)
        return TSDB_ENOMEM;
    pthread_mutex_init(&g->lock, NULL);
    pthread_mutex_init(&g->config_lock, NULL);
    db->guard = g;

    /* Appenders do not exist yet, so the counts need no lock. */
    rc = begin_read(db, &txn);
    if (rc == TSDB_OK) {
        rc = count_metrics(db, txn, &g->entries);
        mdb_txn_abort(txn);
    }
    if (rc != TSDB_OK) {
        log_error("cannot count series per metric in '%s': %s", db->dir,
                  tsdb_strerror(rc));
        return rc;
    }
    if (!db->opt.guard_file)
        return TSDB_OK;
    rc = tsdb_guard_load(db, db->opt.guard_file, err, sizeof(err));
    if (rc != TSDB_OK)
        log_error("%s", err);
    else
        log_info("loaded %zu cardinality rules from '%s'", g->nrules,
                 db->opt.guard_file);
    return rc;
}

void tsdb_guard_free(struct tsdb_guard *g)
{
    if (!g)
        return;
    for (size_t i = 0; i < g->nrules; i++)
        rule_free(g->rules[i]);
    free(g->rules);
    emap_release(&g->entries);
    pthread_mutex_destroy(&g->lock);
    pthread_mutex_destroy(&g->config_lock);
    free(g);
}

/* ---- figures ---- */

static bool metric_entry(const struct entry *e)
{
    return e->key[e->mlen + 1] == '\0';
}

/* See struct tsdb_guard_usage.used. */
static uint64_t usage(const struct tsdb_guard *g, const struct rule *r)
{
    const struct entry *e;
    uint64_t most = 0;

    if (r->label)
        return r->values.n;
    if (r->metric) {
        e = emap_find(&g->entries, r->metric, "");
        return e ? e->series : 0;
    }
    for (size_t i = 0; i < g->entries.cap; i++) {
        e = g->entries.slot[i];
        if (e && metric_entry(e) && e->series > most &&
            !find_rule(g, e->key, NULL))
            most = e->series;
    }
    return most;
}

static int dup_or_null(const char *s, char **out)
{
    *out = s ? strdup(s) : NULL;
    return s && !*out ? TSDB_ENOMEM : TSDB_OK;
}

static int copy_rules(const struct tsdb_guard *g, struct tsdb_guard_stats *st)
{
    struct tsdb_guard_usage *u;
    int rc = TSDB_OK;

    st->rules = calloc(g->nrules ? g->nrules : 1, sizeof(*st->rules));
    if (!st->rules)
        return TSDB_ENOMEM;
    for (size_t i = 0; i < g->nrules && rc == TSDB_OK; i++, st->nrules++) {
        u = &st->rules[i];
        rc = dup_or_null(g->rules[i]->metric, &u->metric);
        if (rc == TSDB_OK)
            rc = dup_or_null(g->rules[i]->label, &u->label);
        u->limit = g->rules[i]->limit;
        u->policy = g->rules[i]->policy;
        u->used = usage(g, g->rules[i]);
    }
    return rc;
}

static int copy_counters(const struct tsdb_guard *g,
                         struct tsdb_guard_stats *st)
{
    struct tsdb_guard_counter *c;
    const struct entry *e;
    int rc = TSDB_OK;

    st->counters =
        calloc(g->entries.n ? g->entries.n : 1, sizeof(*st->counters));
    if (!st->counters)
        return TSDB_ENOMEM;
    for (size_t i = 0; i < g->entries.cap && rc == TSDB_OK; i++) {
        e = g->entries.slot[i];
        if (!e || (e->refused == 0 && e->folded == 0))
            continue;
        c = &st->counters[st->ncounters++];
        rc = dup_or_null(e->key, &c->metric);
        if (rc == TSDB_OK && !metric_entry(e))
            rc = dup_or_null(e->key + e->mlen + 1, &c->label);
        c->refused = e->refused;
        c->folded = e->folded;
    }
    return rc;
}

static int counter_cmp(const void *a, const void *b)
{
    const struct tsdb_guard_counter *x = a, *y = b;
    int c = strcmp(x->metric, y->metric);

    if (c != 0)
        return c;
    return strcmp(x->label ? x->label : "", y->label ? y->label : "");
}

int tsdb_guard_stats_get(struct tsdb *db, struct tsdb_guard_stats *out)
{
    struct tsdb_guard *g = db->guard;
    int rc;

    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&g->lock);
    out->refused = g->refused;
    out->folded = g->folded;
    rc = copy_rules(g, out);
    if (rc == TSDB_OK)
        rc = copy_counters(g, out);
    pthread_mutex_unlock(&g->lock);
    if (rc != TSDB_OK) {
        tsdb_guard_stats_release(out);
        return rc;
    }
    qsort(out->counters, out->ncounters, sizeof(*out->counters), counter_cmp);
    return TSDB_OK;
}

void tsdb_guard_stats_release(struct tsdb_guard_stats *st)
{
    for (size_t i = 0; i < st->nrules; i++) {
        free(st->rules[i].metric);
        free(st->rules[i].label);
    }
    for (size_t i = 0; i < st->ncounters; i++) {
        free(st->counters[i].metric);
        free(st->counters[i].label);
    }
    free(st->rules);
    free(st->counters);
    memset(st, 0, sizeof(*st));
}

/* ---- the invariant checker ---- */

static int check_fail(char *err, size_t errlen, const char *what,
                      const char *metric, const char *label)
{
    if (err && errlen > 0)
        snprintf(err, errlen, "%s (metric \"%s\", label \"%s\")", what,
                 metric ? metric : "*", label ? label : "");
    return TSDB_ECORRUPT;
}

/* Invariant 2 both ways: the index's counts equal the guard's. */
static int check_metrics(const struct tsdb_guard *g, const struct emap *idx,
                         char *err, size_t errlen)
{
    const struct entry *e, *f;

    for (size_t i = 0; i < idx->cap; i++) {
        e = idx->slot[i];
        f = e ? emap_find(&g->entries, e->key, "") : NULL;
        if (e && (!f || f->series != e->series))
            return check_fail(err, errlen,
                              "series count differs from the index", e->key,
                              NULL);
    }
    for (size_t i = 0; i < g->entries.cap; i++) {
        e = g->entries.slot[i];
        if (e && metric_entry(e) && e->series > 0 &&
            !emap_find(idx, e->key, ""))
            return check_fail(err, errlen, "counted metric not in the index",
                              e->key, NULL);
    }
    return TSDB_OK;
}

/* Invariants 1 and 3 for rule i. */
static int check_rule(struct tsdb *db, MDB_txn *txn, size_t i, char *err,
                      size_t errlen)
{
    const struct tsdb_guard *g = db->guard;
    const struct rule *r = g->rules[i];
    struct hset idx = {0};
    size_t used = 0;
    int rc = TSDB_OK;

    if (find_rule(g, r->metric, r->label) != r)
        return check_fail(err, errlen, "two rules", r->metric, r->label);
    for (size_t j = 0; j < r->values.cap; j++)
        used += r->values.slot[j] != 0;
    if (used != r->values.n)
        return check_fail(err, errlen, "value count off", r->metric, r->label);
    if (r->label)
        rc = count_values(db, txn, r, &idx);
    for (size_t j = 0; rc == TSDB_OK && j < idx.cap; j++) {
        if (idx.slot[j] && !hset_has(&r->values, idx.slot[j]))
            rc = check_fail(err, errlen, "value missing", r->metric, r->label);
    }
    if (rc == TSDB_OK && idx.n != r->values.n)
        rc = check_fail(err, errlen, "distinct values differ from the index",
                        r->metric, r->label);
    hset_release(&idx);
    return rc;
}

int tsdb_guard_check(struct tsdb *db, char *err, size_t errlen)
{
    struct tsdb_guard *g = db->guard;
    struct emap idx = {0};
    MDB_txn *txn;
    int rc;

    rc = begin_read(db, &txn);
    if (rc != TSDB_OK)
        return rc;
    pthread_mutex_lock(&g->lock);
    rc = count_metrics(db, txn, &idx);
    if (rc == TSDB_OK)
        rc = check_metrics(g, &idx, err, errlen);
    for (size_t i = 0; i < g->nrules && rc == TSDB_OK; i++)
        rc = check_rule(db, txn, i, err, errlen);
    pthread_mutex_unlock(&g->lock);
    mdb_txn_abort(txn);
    emap_release(&idx);
    return rc;
}
