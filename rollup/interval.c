/*
 * Adding samples to open intervals and closing them (rollup.h).
 *
 * A group's figures for an interval are folded as samples arrive: count,
 * sum, min and max at once; increase from each series' previous sample,
 * which may lie in an earlier interval, so that the increases of
 * consecutive intervals add up to the counter's whole growth; a series'
 * last value when the series moves on to a later interval or when the
 * interval closes, whichever comes first.  Quantiles keep the values.
 */
#define LOG_MODULE "rollup"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "query/duration.h"
#include "query/strconv.h"
#include "rollup/engine_internal.h"
#include "tsdb/error.h"
#include "tsdb/log.h"

static bool is_stale(double v)
{
    uint64_t bits;

    memcpy(&bits, &v, sizeof(bits));
    return bits == 0x7ff0000000000002ULL;
}

int64_t rollup_floor(int64_t t, int64_t step)
{
    int64_t q = t / step;

    return (t % step != 0 && t < 0 ? q - 1 : q) * step;
}

/* ---- groups and series ---- */

static bool in_list(const struct rollup_rule *d, const char *name)
{
    for (size_t i = 0; i < d->nlabels; i++)
        if (strcmp(d->labels[i], name) == 0)
            return true;
    return false;
}

/* The labels of ls that form its group, __name__ first, into v. */
static size_t group_labels(const struct rollup_rule *d,
                           const struct tsdb_labels *ls, struct tsdb_label *v)
{
    size_t n = 1;

    v[0].name = "__name__";
    v[0].value = tsdb_labels_get(ls, "__name__");
    if (v[0].value == NULL)
        v[0].value = "";
    for (size_t i = 0; i < ls->n; i++) {
        const char *name = ls->v[i].name;

        if (strcmp(name, "__name__") == 0)
            continue;
        if (in_list(d, name) != d->without)
            v[n++] = ls->v[i];
    }
    return n;
}

/* name NUL value NUL ... : equal keys, equal groups. */
static char *group_key(const struct tsdb_label *v, size_t n, size_t *len)
{
    size_t total = 0, at = 0;
    char *k;

    for (size_t i = 0; i < n; i++)
        total += strlen(v[i].name) + strlen(v[i].value) + 2;
    k = malloc(total ? total : 1);
    if (k == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        size_t a = strlen(v[i].name) + 1, b = strlen(v[i].value) + 1;

        memcpy(k + at, v[i].name, a);
        memcpy(k + at + a, v[i].value, b);
        at += a + b;
    }
    *len = total;
    return k;
}

static int add_group(struct rollup_rulestate *r, char *key, size_t len,
                     const struct tsdb_label *v, size_t n, uint64_t hash,
                     uint32_t *out)
{
    struct rollup_group *g;
    uint32_t *head = rollup_map_get(&r->group_by_hash, hash);

    if (r->ngroups == r->groups_cap) {
        size_t cap = r->groups_cap ? r->groups_cap * 2 : 16;
        struct rollup_group *p = realloc(r->groups, cap * sizeof(*p));
        if (p == NULL)
            return TSDB_ENOMEM;
        r->groups = p;
        r->groups_cap = cap;
    }
    g = &r->groups[r->ngroups];
    memset(g, 0, sizeof(*g));
    if (tsdb_labels_copy(v, n, &g->labels) != TSDB_OK ||
        rollup_map_put(&r->group_by_hash, hash, (uint32_t)r->ngroups) !=
            TSDB_OK) {
        tsdb_labels_release(&g->labels);
        return TSDB_ENOMEM;
    }
    g->key = key;
    g->key_len = len;
    g->next = head ? *head : UINT32_MAX;
    *out = (uint32_t)r->ngroups++;
    return TSDB_OK;
}

/* The group of a series with labels ls; UINT32_MAX past the limit. */
static int find_group(struct rollup_rulestate *r, const struct tsdb_labels *ls,
                      uint32_t *out)
{
    struct tsdb_label v[TSDB_MAX_LABELS + 1];
    size_t n = group_labels(&r->def, ls, v), len;
    char *key = group_key(v, n, &len);
    uint64_t hash;
    uint32_t *p;
    int rc;

    if (key == NULL)
        return TSDB_ENOMEM;
    hash = XXH3_64bits(key, len);
    p = rollup_map_get(&r->group_by_hash, hash);
    for (uint32_t g = p ? *p : UINT32_MAX; g != UINT32_MAX;
         g = r->groups[g].next) {
        if (r->groups[g].key_len == len &&
            memcmp(r->groups[g].key, key, len) == 0) {
            free(key);
            *out = g;
            return TSDB_OK;
        }
    }
    if (r->ngroups >= ROLLUP_MAX_GROUPS) {
        free(key);
        *out = UINT32_MAX;
        return TSDB_OK;
    }
    rc = add_group(r, key, len, v, n, hash, out);
    if (rc != TSDB_OK)
        free(key);
    return rc;
}

int rollup_series_slot(struct rollup_rulestate *r, uint64_t ref,
                       const struct tsdb_labels *ls, uint32_t *slot)
{
    uint32_t *p = rollup_map_get(&r->series_by_ref, ref);
    struct rollup_series *s;
    uint32_t group;
    int rc;

    if (p != NULL) {
        *slot = *p;
        return TSDB_OK;
    }
    rc = find_group(r, ls, &group);
    if (rc != TSDB_OK)
        return rc;
    if (r->nseries == r->series_cap) {
        size_t cap = r->series_cap ? r->series_cap * 2 : 64;
        struct rollup_series *q = realloc(r->series, cap * sizeof(*q));
        if (q == NULL)
            return TSDB_ENOMEM;
        r->series = q;
        r->series_cap = cap;
    }
    if (rollup_map_put(&r->series_by_ref, ref, (uint32_t)r->nseries) != TSDB_OK)
        return TSDB_ENOMEM;
    s = &r->series[r->nseries];
    memset(s, 0, sizeof(*s));
    s->group = group;
    *slot = (uint32_t)r->nseries++;
    return TSDB_OK;
}

/* ---- adding ---- */

static struct rollup_interval *find_interval(struct rollup_rulestate *r,
                                             int64_t start)
{
    for (size_t i = r->nivs; i-- > 0;)
        if (r->ivs[i].start == start)
            return &r->ivs[i];
    return NULL;
}

static struct rollup_interval *open_interval(struct rollup_rulestate *r,
                                             int64_t start)
{
    struct rollup_interval *iv = find_interval(r, start), *p;
    size_t at;

    if (iv != NULL)
        return iv;
    p = realloc(r->ivs, (r->nivs + 1) * sizeof(*p));
    if (p == NULL)
        return NULL;
    r->ivs = p;
    for (at = r->nivs; at > 0 && r->ivs[at - 1].start > start; at--)
        ;
    memmove(&r->ivs[at + 1], &r->ivs[at], (r->nivs - at) * sizeof(*p));
    r->ivs[at] = (struct rollup_interval){.start = start};
    r->nivs++;
    return &r->ivs[at];
}

static struct rollup_acc *acc_of(struct rollup_interval *iv, uint32_t group)
{
    if (group >= iv->naccs) {
        size_t n = group + 1 > iv->naccs * 2 ? group + 1 : iv->naccs * 2;
        struct rollup_acc *p = realloc(iv->accs, n * sizeof(*p));

        if (p == NULL)
            return NULL;
        memset(p + iv->naccs, 0, (n - iv->naccs) * sizeof(*p));
        iv->accs = p;
        iv->naccs = n;
    }
    return &iv->accs[group];
}

/* min and max as PromQL's min_over_time and min: a NaN gives way to any
 * later value, so that NaN comes out only when every value was NaN. */
static void acc_value(struct rollup_acc *a, double v, bool keep)
{
    if (a->count == 0) {
        a->min = a->max = v;
    } else {
        if (v < a->min || isnan(a->min))
            a->min = v;
        if (v > a->max || isnan(a->max))
            a->max = v;
    }
    a->count++;
    a->sum += v;
    if (keep && a->nvals < ROLLUP_MAX_QUANTILE_VALUES) {
        if (a->nvals == a->cap) {
            size_t cap = a->cap ? a->cap * 2 : 16;
            double *p = realloc(a->vals, cap * sizeof(*p));
            if (p == NULL)
                return;
            a->vals = p;
            a->cap = cap;
        }
        a->vals[a->nvals++] = v;
    }
}

/* Hands a series' last value to the interval it belongs to. */
static void fold_last(struct rollup_rulestate *r, struct rollup_series *s)
{
    struct rollup_interval *iv = find_interval(r, s->last_iv);
    struct rollup_acc *a = iv ? acc_of(iv, s->group) : NULL;

    if (a != NULL)
        a->last += s->last_v;
    s->holds_last = false;
}

void rollup_feed(struct rollup_rulestate *r, uint32_t slot, int64_t t, double v)
{
    struct rollup_series *s = &r->series[slot];
    int64_t start = rollup_floor(t, r->def.interval_ms);
    struct rollup_interval *iv;
    struct rollup_acc *a;

    if (is_stale(v))
        return;
    r->touched = true;
    if (start < r->closed_until) {
        r->late++;
        return;
    }
    if (s->group == UINT32_MAX || (iv = open_interval(r, start)) == NULL ||
        (a = acc_of(iv, s->group)) == NULL) {
        r->dropped++;
        return;
    }
    r->samples++;
    acc_value(a, v, r->def.nquantiles > 0);
    if (t > r->max_t)
        r->max_t = t;
    /* A sample older than the series' newest (two commits crossing on
     * their way to the observer) counts in the figures above; it cannot
     * be placed in the series' increase or last value. */
    if (s->has_base && t <= s->last_t)
        return;
    if (s->has_base)
        a->increase += v < s->last_v ? v : v - s->last_v;
    if (s->holds_last && s->last_iv != start)
        fold_last(r, s);
    s->has_base = true;
    s->last_t = t;
    s->last_v = v;
    s->holds_last = true;
    s->last_iv = start;
}

/* ---- closing ---- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    if (isnan(x) || isnan(y))
        return isnan(y) - isnan(x);
    return (x > y) - (x < y);
}

/* PromQL's quantile: linear between the two nearest ranks. */
static double quantile(double q, const double *v, size_t n)
{
    double rank = q * (double)(n - 1), lo = floor(rank);
    double hi = lo + 1 < (double)(n - 1) ? lo + 1 : (double)(n - 1);
    double w = rank - lo;

    return v[(size_t)lo] * (1 - w) + v[(size_t)hi] * w;
}

static int queue_out(struct rollup_engine *e, const struct rollup_group *g,
                     const char *name, const char *qlabel, int64_t t, double v)
{
    struct tsdb_label lv[TSDB_MAX_LABELS + 2];
    size_t n = 0;
    struct rollup_out *o;

    if (e->nouts == e->outs_cap) {
        size_t cap = e->outs_cap ? e->outs_cap * 2 : 256;
        struct rollup_out *p = realloc(e->outs, cap * sizeof(*p));
        if (p == NULL)
            return TSDB_ENOMEM;
        e->outs = p;
        e->outs_cap = cap;
    }
    lv[n++] = (struct tsdb_label){"__name__", name};
    for (size_t i = 0; i < g->labels.n; i++)
        if (strcmp(g->labels.v[i].name, "__name__") != 0)
            lv[n++] = g->labels.v[i];
    if (qlabel != NULL)
        lv[n++] = (struct tsdb_label){"quantile", qlabel};
    o = &e->outs[e->nouts];
    if (tsdb_labels_copy(lv, n, &o->labels) != TSDB_OK)
        return TSDB_ENOMEM;
    o->t = t;
    o->v = v;
    e->nouts++;
    return TSDB_OK;
}

static double output_value(enum rollup_output o, const struct rollup_acc *a,
                           int64_t interval_ms)
{
    switch (o) {
    case ROLLUP_SUM:
        return a->sum;
    case ROLLUP_COUNT:
        return (double)a->count;
    case ROLLUP_MIN:
        return a->min;
    case ROLLUP_MAX:
        return a->max;
    case ROLLUP_AVG:
        return a->sum / (double)a->count;
    case ROLLUP_LAST:
        return a->last;
    case ROLLUP_INCREASE:
        return a->increase;
    case ROLLUP_RATE:
        return a->increase / ((double)interval_ms / 1000);
    default:
        return NAN;
    }
}

/* Queues one group's results for a closed interval. */
static int emit_group(struct rollup_engine *e, struct rollup_rulestate *r,
                      const struct rollup_group *g, struct rollup_acc *a,
                      int64_t end)
{
    const char *metric = tsdb_labels_get(&g->labels, "__name__");
    char iv[QUERY_DURATION_MAX], name[TSDB_MAX_LABEL_VALUE + 1];
    int rc = TSDB_OK;

    query_format_duration(iv, r->def.interval_ms);
    for (int o = 0; o < ROLLUP_NOUTPUTS && rc == TSDB_OK; o++) {
        if (!(r->def.outputs & (1u << o)))
            continue;
        snprintf(name, sizeof(name), "%s:%s_%s", metric, iv,
                 rollup_output_name((enum rollup_output)o));
        if (o != ROLLUP_QUANTILE) {
            rc = queue_out(
                e, g, name, NULL, end,
                output_value((enum rollup_output)o, a, r->def.interval_ms));
            r->written++;
            continue;
        }
        if (a->nvals == 0)
            continue;
        qsort(a->vals, a->nvals, sizeof(double), cmp_double);
        for (size_t i = 0; i < r->def.nquantiles && rc == TSDB_OK; i++) {
            char q[QUERY_FLOAT_MAX + 1];

            q[query_format_float(q, r->def.quantiles[i], QUERY_FLOAT_PLAIN)] =
                '\0';
            rc = queue_out(e, g, name, q, end,
                           quantile(r->def.quantiles[i], a->vals, a->nvals));
            r->written++;
        }
    }
    return rc;
}

static void close_interval(struct rollup_engine *e, struct rollup_rulestate *r,
                           struct rollup_interval *iv)
{
    int64_t end = iv->start + r->def.interval_ms;

    for (size_t i = 0; i < r->nseries; i++)
        if (r->series[i].holds_last && r->series[i].last_iv == iv->start)
            fold_last(r, &r->series[i]);
    for (size_t g = 0; g < iv->naccs && g < r->ngroups; g++) {
        struct rollup_acc *a = &iv->accs[g];

        if (a->count > 0 && emit_group(e, r, &r->groups[g], a, end) != TSDB_OK)
            log_error("rule %s: out of memory; results for %lld lost",
                      r->def.name, (long long)end);
    }
    for (size_t g = 0; g < iv->naccs; g++)
        free(iv->accs[g].vals);
    free(iv->accs);
}

void rollup_close_due(struct rollup_engine *e, struct rollup_rulestate *r,
                      int64_t upto)
{
    size_t n = 0;

    if (r->recovering || upto <= r->closed_until)
        return;
    while (n < r->nivs && r->ivs[n].start + r->def.interval_ms <= upto)
        close_interval(e, r, &r->ivs[n++]);
    memmove(r->ivs, r->ivs + n, (r->nivs - n) * sizeof(*r->ivs));
    r->nivs -= n;
    r->closed_until = upto;
    if (n > 0)
        e->queued_batches++;
    if (r->late > r->late_logged) {
        log_warn("rule %s: %llu samples came after their interval had "
                 "closed (grace %lld ms) and were not added",
                 r->def.name, (unsigned long long)(r->late - r->late_logged),
                 (long long)r->def.grace_ms);
        r->late_logged = r->late;
    }
}

void rollup_rulestate_free(struct rollup_rulestate *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->nivs; i++) {
        for (size_t g = 0; g < r->ivs[i].naccs; g++)
            free(r->ivs[i].accs[g].vals);
        free(r->ivs[i].accs);
    }
    free(r->ivs);
    for (size_t g = 0; g < r->ngroups; g++) {
        free(r->groups[g].key);
        tsdb_labels_release(&r->groups[g].labels);
    }
    free(r->groups);
    rollup_map_release(&r->group_by_hash);
    free(r->series);
    rollup_map_release(&r->series_by_ref);
    rollup_rule_release(&r->def);
    free(r->def_json);
    free(r);
}
