/*
 * StatsD aggregation (aggregate.h has the semantics).  Sits between the
 * parser's lines and statsd.c, which journals lines, calls the flush and
 * writes snapshots; this file does no I/O and takes no locks.
 *
 * Invariants (statsd_agg_check verifies them):
 * 1. Every series is in exactly one hash chain, the one its key hash
 *    selects; a->n counts them and a->nhist counts those with a
 *    histogram; a key is in the table at most once.
 * 2. A series' key is immutable after creation: captures read it without
 *    the caller's lock while lines are applied.
 * 3. A set holds at most max_set_members member hashes; the raw buffer
 *    holds at most max_raw_bytes.
 * 4. Only statsd_agg_flush removes series (idle ones), and it hands them
 *    to the capture, which frees them after emission.
 */
#include "statsd/aggregate.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "statsd/journal.h"
#include "tsdb/bytes.h"
#include "tsdb/error.h"

/* Longest series key: name and tags, each string followed by a 0 byte. */
#define KEY_MAX                                                                \
    (STATSD_MAX_NAME + 1 +                                                     \
     STATSD_MAX_TAGS * (TSDB_MAX_LABEL_NAME + TSDB_MAX_LABEL_VALUE + 2))
/* Payload bytes after which an entries record is closed. */
#define SNAP_RECORD_MAX (1u << 20)
/* Longest metric name with a suffix, NUL included. */
#define NAME_BUF (STATSD_MAX_NAME + sizeof("_bucket"))

enum kind {
    KIND_COUNTER,
    KIND_GAUGE,
    KIND_TIMER,
    KIND_HISTOGRAM,
    KIND_SET,
};

static const char *const kind_names[] = {
    [KIND_COUNTER] = "counter (c)", [KIND_GAUGE] = "gauge (g)",
    [KIND_TIMER] = "timer (ms)",    [KIND_HISTOGRAM] = "histogram (h/d)",
    [KIND_SET] = "set (s)",
};

static const uint8_t kind_code[] = {
    [KIND_COUNTER] = STATSD_SK_COUNTER, [KIND_GAUGE] = STATSD_SK_GAUGE,
    [KIND_TIMER] = STATSD_SK_TIMER,     [KIND_HISTOGRAM] = STATSD_SK_HISTOGRAM,
    [KIND_SET] = STATSD_SK_SET,
};

struct entry {
    struct entry *next; /* hash chain; in a capture, the dropped list */
    uint64_t hash;      /* XXH3-64 of key[0..key_len) */
    enum kind kind;
    bool flushed; /* emitted at least once, so it may expire */
    int64_t last_seen;
    double v;       /* counter total or gauge value */
    double *hist;   /* nb + 1 bucket counts, then sum, then count */
    uint64_t *mems; /* sets: open-addressed member hashes, 0 = free */
    uint32_t mcap;  /* slots in mems, a power of two */
    uint32_t mn;    /* members in mems */
    uint32_t ntags;
    uint32_t name_len;
    uint32_t key_len;
    char key[]; /* name \0 (tag \0 value \0)* */
};

struct statsd_agg {
    struct statsd_agg_options o;
    double bounds[STATSD_MAX_BUCKETS];
    size_t nb;
    char le[STATSD_MAX_BUCKETS + 1][48]; /* bucket labels, "+Inf" last */
    struct entry **tab;
    size_t tab_cap; /* power of two */
    size_t n;       /* series */
    size_t nhist;   /* series with a histogram */
    uint64_t seq;   /* flushes done */
    int64_t last_flush;
    uint8_t *raw; /* timestamped samples: u32 key len, key, i64, f64 */
    size_t raw_len, raw_cap;
    char keybuf[KEY_MAX];
};

struct cap_entry {
    struct entry *e;
    int64_t last_seen;
    double v;
    size_t hist; /* offset into the capture's hist array */
    bool stale;
};

struct statsd_capture {
    const struct statsd_agg *a;
    uint64_t seq;
    int64_t t;
    struct cap_entry *v;
    size_t n;
    double *hist;
    struct entry *dead; /* dropped series, freed with the capture */
    uint8_t *raw;
    size_t raw_len;
};

/* ---- options ---- */

static const double default_buckets[] = {.005, .01, .025, .05, .1, .25,
                                         .5,   1,   2.5,  5,   10};

void statsd_agg_options_init(struct statsd_agg_options *o)
{
    o->idle_ttl_ms = 5 * 60 * 1000;
    o->buckets = default_buckets;
    o->nbuckets = sizeof(default_buckets) / sizeof(default_buckets[0]);
    o->max_series = 1000000;
    o->max_set_members = 100000;
    o->max_raw_bytes = (size_t)64 << 20;
}

/*
 * Formats a bucket bound as the Prometheus text format writes le (Go's
 * shortest 'g' form): the fewest digits that read back to the same double,
 * in exponent form below 1e-4 or from 1e6 up ("0.005", "2.5", "100000",
 * "1e+06").
 */
static void format_le(double v, char *out, size_t cap)
{
    char buf[40];
    int prec, exp;

    for (prec = 1; prec < 17; prec++) {
        snprintf(buf, sizeof(buf), "%.*e", prec - 1, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    snprintf(buf, sizeof(buf), "%.*e", prec - 1, v);
    exp = atoi(strchr(buf, 'e') + 1);
    if (exp < -4 || exp >= 6)
        snprintf(out, cap, "%s", buf);
    else
        snprintf(out, cap, "%.*f", prec - 1 - exp > 0 ? prec - 1 - exp : 0, v);
}

int statsd_agg_new(const struct statsd_agg_options *o, struct statsd_agg **out)
{
    struct statsd_agg *a;

    if (o->nbuckets > STATSD_MAX_BUCKETS || o->max_series == 0 ||
        o->max_set_members == 0 || o->max_set_members > UINT32_MAX / 4 ||
        o->idle_ttl_ms < 0)
        return TSDB_EINVAL;
    for (size_t i = 0; i < o->nbuckets; i++)
        if (!isfinite(o->buckets[i]) ||
            (i > 0 && !(o->buckets[i] > o->buckets[i - 1])))
            return TSDB_EINVAL;
    a = calloc(1, sizeof(*a));
    if (!a)
        return TSDB_ENOMEM;
    a->o = *o;
    a->nb = o->nbuckets;
    memcpy(a->bounds, o->buckets, a->nb * sizeof(double));
    a->o.buckets = a->bounds;
    for (size_t i = 0; i < a->nb; i++)
        format_le(a->bounds[i], a->le[i], sizeof(a->le[i]));
    snprintf(a->le[a->nb], sizeof(a->le[a->nb]), "+Inf");
    a->tab_cap = 1024;
    a->tab = calloc(a->tab_cap, sizeof(*a->tab));
    if (!a->tab) {
        free(a);
        return TSDB_ENOMEM;
    }
    a->last_flush = INT64_MIN;
    *out = a;
    return TSDB_OK;
}

static void entry_free(struct entry *e)
{
    if (!e)
        return;
    free(e->hist);
    free(e->mems);
    free(e);
}

void statsd_agg_free(struct statsd_agg *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->tab_cap; i++) {
        struct entry *e = a->tab[i], *next;
        for (; e; e = next) {
            next = e->next;
            entry_free(e);
        }
    }
    free(a->tab);
    free(a->raw);
    free(a);
}

/* ---- series table ---- */

static enum kind kind_of(enum statsd_type t)
{
    switch (t) {
    case STATSD_COUNTER:
        return KIND_COUNTER;
    case STATSD_GAUGE:
        return KIND_GAUGE;
    case STATSD_TIMER:
        return KIND_TIMER;
    case STATSD_HISTOGRAM:
    case STATSD_DISTRIBUTION:
        return KIND_HISTOGRAM;
    case STATSD_SET:
        break;
    }
    return KIND_SET;
}

static bool has_hist(enum kind k)
{
    return k == KIND_TIMER || k == KIND_HISTOGRAM;
}

/* Writes l's series key to a->keybuf; returns its length. */
static size_t build_key(struct statsd_agg *a, const struct statsd_line *l)
{
    char *k = a->keybuf;
    size_t n = 0;

    memcpy(k, l->name, l->name_len);
    n = l->name_len;
    k[n++] = '\0';
    for (size_t i = 0; i < l->ntags; i++) {
        memcpy(k + n, l->tags[i].key, l->tags[i].key_len);
        n += l->tags[i].key_len;
        k[n++] = '\0';
        memcpy(k + n, l->tags[i].value, l->tags[i].value_len);
        n += l->tags[i].value_len;
        k[n++] = '\0';
    }
    return n;
}

static struct entry *lookup(const struct statsd_agg *a, const char *key,
                            size_t len, uint64_t hash)
{
    struct entry *e = a->tab[hash & (a->tab_cap - 1)];

    for (; e; e = e->next)
        if (e->hash == hash && e->key_len == len &&
            memcmp(e->key, key, len) == 0)
            return e;
    return NULL;
}

/* Doubles the table when it averages more than one series per chain.  A
 * failed allocation only leaves chains longer. */
static void maybe_grow(struct statsd_agg *a)
{
    size_t cap = a->tab_cap * 2;
    struct entry **tab;

    if (a->n < a->tab_cap)
        return;
    tab = calloc(cap, sizeof(*tab));
    if (!tab)
        return;
    for (size_t i = 0; i < a->tab_cap; i++) {
        struct entry *e = a->tab[i], *next;
        for (; e; e = next) {
            next = e->next;
            e->next = tab[e->hash & (cap - 1)];
            tab[e->hash & (cap - 1)] = e;
        }
    }
    free(a->tab);
    a->tab = tab;
    a->tab_cap = cap;
}

static struct entry *entry_new(struct statsd_agg *a, enum kind kind,
                               const char *key, size_t len, uint64_t hash,
                               size_t name_len, size_t ntags)
{
    struct entry *e = calloc(1, sizeof(*e) + len);

    if (!e)
        return NULL;
    if (has_hist(kind)) {
        e->hist = calloc(a->nb + 3, sizeof(double));
        if (!e->hist) {
            free(e);
            return NULL;
        }
    }
    e->hash = hash;
    e->kind = kind;
    e->last_seen = INT64_MIN;
    e->ntags = (uint32_t)ntags;
    e->name_len = (uint32_t)name_len;
    e->key_len = (uint32_t)len;
    memcpy(e->key, key, len);
    return e;
}

static void insert(struct statsd_agg *a, struct entry *e)
{
    struct entry **head = &a->tab[e->hash & (a->tab_cap - 1)];

    e->next = *head;
    *head = e;
    a->n++;
    if (e->hist)
        a->nhist++;
    maybe_grow(a);
}

/* ---- sets ---- */

static bool member_find(const struct entry *e, uint64_t h, size_t *slot)
{
    size_t mask = (size_t)e->mcap - 1, i = (size_t)h & mask;

    for (;; i = (i + 1) & mask) {
        if (e->mems[i] == h) {
            *slot = i;
            return true;
        }
        if (e->mems[i] == 0) {
            *slot = i;
            return false;
        }
    }
}

/* Keeps the load at most 1/2 so that probes stay short. */
static int member_grow(struct entry *e)
{
    uint32_t cap = e->mcap ? e->mcap * 2 : 8;
    uint64_t *old = e->mems;
    uint32_t old_cap = e->mcap;

    e->mems = calloc(cap, sizeof(*e->mems));
    if (!e->mems) {
        e->mems = old;
        return TSDB_ENOMEM;
    }
    e->mcap = cap;
    for (uint32_t i = 0; i < old_cap; i++) {
        size_t slot;
        if (old[i] && !member_find(e, old[i], &slot))
            e->mems[slot] = old[i];
    }
    free(old);
    return TSDB_OK;
}

/* Adds a member; 1 if new, 0 if seen, or a negative TSDB_E* code. */
static int member_add(struct statsd_agg *a, struct entry *e, const char *m,
                      size_t len)
{
    /* LIMIT: members are kept as 64-bit hashes, 8 bytes each whatever
     * their length.  Why: a set of long members would otherwise cost
     * their bytes.  Matters never in practice: two of n members collide
     * with odds of about n^2 / 2^65; then the count is one short. */
    uint64_t h = XXH3_64bits(m, len);
    size_t slot;
    int rc;

    h = h ? h : 1;
    if (e->mcap && member_find(e, h, &slot))
        return 0;
    if (e->mn >= a->o.max_set_members)
        return TSDB_ELIMIT;
    if ((e->mn + 1) * 2 > e->mcap) {
        rc = member_grow(e);
        if (rc != TSDB_OK)
            return rc;
    }
    member_find(e, h, &slot);
    e->mems[slot] = h;
    e->mn++;
    return 1;
}

/* ---- applying lines ---- */

static int reject(char *reason, size_t len, int code,
                  const struct statsd_line *l, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int reject(char *reason, size_t len, int code,
                  const struct statsd_line *l, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (len == 0)
        return code;
    n = snprintf(reason, len, "line %llu: ", (unsigned long long)l->lineno);
    if (n >= 0 && (size_t)n < len) {
        va_start(ap, fmt);
        vsnprintf(reason + n, len - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* Timestamped c and g lines: one raw sample for the next flush. */
static int apply_raw(struct statsd_agg *a, const struct statsd_line *l,
                     char *reason, size_t rlen)
{
    size_t klen = build_key(a, l), need = 4 + klen + 16;
    double v = l->values[0].v;
    uint8_t *p;

    if (l->type == STATSD_GAUGE && l->values[0].delta)
        return reject(reason, rlen, TSDB_EINVAL, l,
                      "a gauge delta (+/-) cannot carry a timestamp");
    if (l->type == STATSD_COUNTER)
        v = v / l->rate;
    if (a->raw_len + need > a->o.max_raw_bytes)
        return reject(reason, rlen, TSDB_ELIMIT, l,
                      "%zu bytes of timestamped samples already wait for "
                      "the next flush",
                      a->raw_len);
    if (a->raw_len + need > a->raw_cap) {
        size_t cap = a->raw_cap ? a->raw_cap * 2 : 4096;
        while (cap < a->raw_len + need)
            cap *= 2;
        p = realloc(a->raw, cap);
        if (!p)
            return TSDB_ENOMEM;
        a->raw = p;
        a->raw_cap = cap;
    }
    p = a->raw + a->raw_len;
    put_be32(p, (uint32_t)klen);
    memcpy(p + 4, a->keybuf, klen);
    put_be64(p + 4 + klen, (uint64_t)l->time_ms);
    put_be64(p + 12 + klen, double_bits(v));
    a->raw_len += need;
    return TSDB_OK;
}

static void observe(const struct statsd_agg *a, struct entry *e, double x,
                    double w)
{
    size_t lo = 0, hi = a->nb;

    /* First bucket whose bound is >= x (le is inclusive); nb is +Inf. */
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (x <= a->bounds[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    e->hist[lo] += w;
    e->hist[a->nb + 1] += x * w;
    e->hist[a->nb + 2] += w;
}

static int apply_values(struct statsd_agg *a, struct entry *e,
                        const struct statsd_line *l, char *reason, size_t rlen)
{
    int rc;

    switch (e->kind) {
    case KIND_COUNTER:
        for (size_t i = 0; i < l->nvalues; i++)
            e->v += l->values[i].v / l->rate;
        break;
    case KIND_GAUGE:
        for (size_t i = 0; i < l->nvalues; i++)
            e->v = l->values[i].delta ? e->v + l->values[i].v : l->values[i].v;
        break;
    case KIND_TIMER:
    case KIND_HISTOGRAM:
        for (size_t i = 0; i < l->nvalues; i++) {
            double x = l->values[i].v;
            observe(a, e, e->kind == KIND_TIMER ? x / 1000.0 : x,
                    1.0 / l->rate);
        }
        break;
    case KIND_SET:
        rc = member_add(a, e, l->member, l->member_len);
        if (rc == TSDB_ELIMIT)
            return reject(reason, rlen, rc, l,
                          "set '%s' already has %zu distinct members in "
                          "this flush interval",
                          e->key, a->o.max_set_members);
        if (rc < 0)
            return rc;
        break;
    }
    return TSDB_OK;
}

int statsd_agg_apply(struct statsd_agg *a, const struct statsd_line *l,
                     int64_t arrival_ms, char *reason, size_t reason_len)
{
    enum kind kind = kind_of(l->type);
    size_t len;
    uint64_t hash;
    struct entry *e;
    bool created = false;
    int rc;

    if (reason_len > 0)
        reason[0] = '\0';
    if (l->has_time)
        return apply_raw(a, l, reason, reason_len);
    len = build_key(a, l);
    hash = XXH3_64bits(a->keybuf, len);
    e = lookup(a, a->keybuf, len, hash);
    if (e && e->kind != kind)
        return reject(reason, reason_len, TSDB_EINVAL, l,
                      "'%s' is a %s; this line sends it as |%s", e->key,
                      kind_names[e->kind], statsd_type_name(l->type));
    if (!e) {
        if (a->n >= a->o.max_series)
            return reject(reason, reason_len, TSDB_ELIMIT, l,
                          "series limit of %zu reached; not creating '%s'",
                          a->o.max_series, a->keybuf);
        e = entry_new(a, kind, a->keybuf, len, hash, l->name_len, l->ntags);
        if (!e)
            return TSDB_ENOMEM;
        created = true;
    }
    rc = apply_values(a, e, l, reason, reason_len);
    if (rc != TSDB_OK) {
        if (created)
            entry_free(e);
        return rc;
    }
    if (created)
        insert(a, e);
    if (arrival_ms > e->last_seen)
        e->last_seen = arrival_ms;
    return TSDB_OK;
}

/* ---- flush ---- */

static void capture_entry(struct statsd_agg *a, struct statsd_capture *c,
                          struct entry *e, size_t *hoff)
{
    struct cap_entry *ce = &c->v[c->n++];

    ce->e = e;
    ce->last_seen = e->last_seen;
    ce->stale = false;
    ce->v = e->v;
    if (e->kind == KIND_SET) {
        ce->v = (double)e->mn;
        free(e->mems);
        e->mems = NULL;
        e->mcap = 0;
        e->mn = 0;
    } else if (e->hist) {
        ce->hist = *hoff;
        memcpy(c->hist + *hoff, e->hist, (a->nb + 3) * sizeof(double));
        *hoff += a->nb + 3;
    }
    e->flushed = true;
}

static bool idle(const struct statsd_agg *a, const struct entry *e, int64_t t)
{
    return a->o.idle_ttl_ms > 0 && e->flushed &&
           e->last_seen <= t - a->o.idle_ttl_ms;
}

int statsd_agg_flush(struct statsd_agg *a, int64_t t,
                     struct statsd_capture **out)
{
    struct statsd_capture *c;
    size_t hoff = 0;

    if (t <= a->last_flush)
        return TSDB_EINVAL;

    /* Allocate first: past this point nothing can fail, so an error
     * leaves the state as it was. */
    c = calloc(1, sizeof(*c));
    if (!c)
        return TSDB_ENOMEM;
    c->v = calloc(a->n ? a->n : 1, sizeof(*c->v));
    c->hist = calloc(a->nhist ? a->nhist * (a->nb + 3) : 1, sizeof(double));
    if (!c->v || !c->hist) {
        statsd_capture_free(c);
        return TSDB_ENOMEM;
    }
    c->a = a;
    c->t = t;
    for (size_t i = 0; i < a->tab_cap; i++) {
        struct entry **pp = &a->tab[i];
        while (*pp) {
            struct entry *e = *pp;
            if (!idle(a, e, t)) {
                capture_entry(a, c, e, &hoff);
                pp = &e->next;
                continue;
            }
            *pp = e->next;
            a->n--;
            if (e->hist)
                a->nhist--;
            e->next = c->dead;
            c->dead = e;
            c->v[c->n++] = (struct cap_entry){.e = e, .stale = true};
        }
    }
    c->raw = a->raw;
    c->raw_len = a->raw_len;
    a->raw = NULL;
    a->raw_len = a->raw_cap = 0;
    a->seq++;
    a->last_flush = t;
    c->seq = a->seq;
    *out = c;
    return TSDB_OK;
}

uint64_t statsd_capture_seq(const struct statsd_capture *c)
{
    return c->seq;
}

int64_t statsd_capture_time(const struct statsd_capture *c)
{
    return c->t;
}

void statsd_capture_free(struct statsd_capture *c)
{
    struct entry *e, *next;

    if (!c)
        return;
    for (e = c->dead; e; e = next) {
        next = e->next;
        entry_free(e);
    }
    free(c->v);
    free(c->hist);
    free(c->raw);
    free(c);
}

/* ---- emission ---- */

/* Fills labels[1..] from a key's tags; returns the label count so far. */
static size_t key_labels(const char *key, size_t name_len, size_t ntags,
                         struct tsdb_label *labels)
{
    const char *s = key + name_len + 1;

    for (size_t i = 0; i < ntags; i++) {
        labels[1 + i].name = s;
        s += strlen(s) + 1;
        labels[1 + i].value = s;
        s += strlen(s) + 1;
    }
    return 1 + ntags;
}

struct emitter {
    statsd_emit_fn fn;
    void *ctx;
    uint64_t count;
    char name[NAME_BUF];
    struct tsdb_label labels[STATSD_MAX_SAMPLE_LABELS];
};

/* Emits one sample of entry e: suffix may be "", le NULL for no le. */
static int emit_one(struct emitter *em, const struct entry *e,
                    const char *suffix, const char *le, int64_t t, double v)
{
    struct statsd_sample s = {.labels = em->labels, .t = t, .v = v};

    snprintf(em->name, sizeof(em->name), "%s%s", e->key, suffix);
    em->labels[0] = (struct tsdb_label){"__name__", em->name};
    s.nlabels = key_labels(e->key, e->name_len, e->ntags, em->labels);
    if (le)
        em->labels[s.nlabels++] = (struct tsdb_label){"le", le};
    em->count++;
    return em->fn(em->ctx, &s);
}

static int emit_entry(const struct statsd_capture *c, struct emitter *em,
                      const struct cap_entry *ce)
{
    const struct statsd_agg *a = c->a;
    const struct entry *e = ce->e;
    double stale = bits_double(STATSD_STALE_BITS), cum = 0;
    const double *h = c->hist + ce->hist;
    int rc;

    if (!e->hist)
        return emit_one(em, e, "", NULL, c->t, ce->stale ? stale : ce->v);
    for (size_t i = 0; i <= a->nb; i++) {
        cum += ce->stale ? 0 : h[i];
        rc =
            emit_one(em, e, "_bucket", a->le[i], c->t, ce->stale ? stale : cum);
        if (rc != TSDB_OK)
            return rc;
    }
    rc = emit_one(em, e, "_sum", NULL, c->t, ce->stale ? stale : h[a->nb + 1]);
    if (rc == TSDB_OK)
        rc = emit_one(em, e, "_count", NULL, c->t,
                      ce->stale ? stale : h[a->nb + 2]);
    return rc;
}

static int emit_raw(const struct statsd_capture *c, struct emitter *em)
{
    size_t off = 0;

    while (off < c->raw_len) {
        const uint8_t *p = c->raw + off;
        uint32_t klen = get_be32(p);
        const char *key = (const char *)p + 4;
        struct statsd_sample s = {.labels = em->labels};
        size_t name_len = strlen(key), ntags = 0;
        int rc;

        for (const char *q = key + name_len + 1; q < key + klen;
             q += strlen(q) + 1)
            ntags++;
        em->labels[0] = (struct tsdb_label){"__name__", key};
        s.nlabels = key_labels(key, name_len, ntags / 2, em->labels);
        s.t = (int64_t)get_be64(p + 4 + klen);
        s.v = bits_double(get_be64(p + 12 + klen));
        em->count++;
        rc = em->fn(em->ctx, &s);
        if (rc != TSDB_OK)
            return rc;
        off += 4 + klen + 16;
    }
    return TSDB_OK;
}

int statsd_capture_emit(const struct statsd_capture *c, statsd_emit_fn fn,
                        void *ctx, uint64_t *emitted)
{
    struct emitter *em = calloc(1, sizeof(*em));
    int rc = TSDB_OK;

    if (!em)
        return TSDB_ENOMEM;
    em->fn = fn;
    em->ctx = ctx;
    for (size_t i = 0; i < c->n && rc == TSDB_OK; i++)
        rc = emit_entry(c, em, &c->v[i]);
    if (rc == TSDB_OK)
        rc = emit_raw(c, em);
    if (emitted)
        *emitted = em->count;
    free(em);
    return rc;
}

/* ---- snapshot ---- */

static size_t entry_bound(const struct statsd_agg *a, const struct entry *e)
{
    return 1 + 8 + 5 + e->key_len + (a->nb + 3) * 8;
}

static void put_entry(const struct statsd_capture *c,
                      const struct cap_entry *ce, struct tsdb_wal_buf *b)
{
    const struct entry *e = ce->e;
    uint8_t *p = b->p + b->len;

    *p++ = kind_code[e->kind];
    put_be64(p, (uint64_t)ce->last_seen);
    p += 8;
    p += varint_put(p, e->key_len);
    memcpy(p, e->key, e->key_len);
    p += e->key_len;
    if (e->kind == KIND_COUNTER || e->kind == KIND_GAUGE) {
        put_be64(p, double_bits(ce->v));
        p += 8;
    } else if (e->hist) {
        for (size_t i = 0; i < c->a->nb + 3; i++, p += 8)
            put_be64(p, double_bits(c->hist[ce->hist + i]));
    }
    b->len = (size_t)(p - b->p);
}

static int put_head(const struct statsd_capture *c, struct tsdb_wal_buf *b)
{
    const struct statsd_agg *a = c->a;
    size_t live = 0;
    uint8_t *p;
    int rc;

    for (size_t i = 0; i < c->n; i++)
        live += !c->v[i].stale;
    rc = tsdb_wal_buf_begin(b, STATSD_REC_SNAP_HEAD);
    if (rc == TSDB_OK)
        rc = tsdb_wal_buf_reserve(b, 28 + a->nb * 8);
    if (rc != TSDB_OK)
        return rc;
    p = b->p + b->len;
    put_be64(p, c->seq);
    put_be64(p + 8, (uint64_t)c->t);
    put_be64(p + 16, live);
    put_be32(p + 24, (uint32_t)a->nb);
    for (size_t i = 0; i < a->nb; i++)
        put_be64(p + 28 + i * 8, double_bits(a->bounds[i]));
    b->len += 28 + a->nb * 8;
    tsdb_wal_buf_end(b);
    return TSDB_OK;
}

static int put_end(const struct statsd_capture *c, size_t entries,
                   struct tsdb_wal_buf *b)
{
    int rc = tsdb_wal_buf_begin(b, STATSD_REC_SNAP_END);

    if (rc == TSDB_OK)
        rc = tsdb_wal_buf_reserve(b, 16);
    if (rc != TSDB_OK)
        return rc;
    put_be64(b->p + b->len, c->seq);
    put_be64(b->p + b->len + 8, entries);
    b->len += 16;
    tsdb_wal_buf_end(b);
    return TSDB_OK;
}

/* One entries record, closed at SNAP_RECORD_MAX payload bytes. */
static int put_entries(const struct statsd_capture *c,
                       struct statsd_snap_cursor *cur, struct tsdb_wal_buf *b)
{
    int rc = tsdb_wal_buf_begin(b, STATSD_REC_SNAP_ENTRIES);

    if (rc != TSDB_OK)
        return rc;
    for (; cur->next < c->n; cur->next++) {
        const struct cap_entry *ce = &c->v[cur->next];

        if (ce->stale)
            continue;
        if (tsdb_wal_buf_payload(b) >= SNAP_RECORD_MAX)
            break;
        rc = tsdb_wal_buf_reserve(b, entry_bound(c->a, ce->e));
        if (rc != TSDB_OK)
            return rc;
        put_entry(c, ce, b);
        cur->entries++;
    }
    tsdb_wal_buf_end(b);
    return TSDB_OK;
}

int statsd_capture_snapshot(const struct statsd_capture *c,
                            struct statsd_snap_cursor *cur,
                            struct tsdb_wal_buf *b, size_t chunk)
{
    size_t start = b->len;
    int rc = TSDB_OK;

    if (!cur->head_done) {
        rc = put_head(c, b);
        cur->head_done = rc == TSDB_OK;
    }
    while (rc == TSDB_OK && cur->next < c->n && b->len - start < chunk)
        rc = put_entries(c, cur, b);

    /* The end record goes alone into a call of its own, so that a writer
     * that syncs each chunk has every entry on disk before the end record
     * that makes the snapshot count. */
    if (rc == TSDB_OK && cur->next == c->n && b->len == start && !cur->done) {
        rc = put_end(c, cur->entries, b);
        cur->done = rc == TSDB_OK;
    }
    return rc;
}

/* ---- loading ---- */

int statsd_agg_load_head(const struct statsd_agg *a, const uint8_t *p,
                         size_t len, struct statsd_snap_info *info)
{
    uint32_t nb;

    if (len < 28)
        return TSDB_ECORRUPT;
    nb = get_be32(p + 24);
    if (nb > STATSD_MAX_BUCKETS || len != 28 + (size_t)nb * 8)
        return TSDB_ECORRUPT;
    info->seq = get_be64(p);
    info->t = (int64_t)get_be64(p + 8);
    info->entries = get_be64(p + 16);
    info->nbuckets = nb;
    info->same_bounds = nb == a->nb;
    for (size_t i = 0; i < nb && info->same_bounds; i++)
        info->same_bounds =
            get_be64(p + 28 + i * 8) == double_bits(a->bounds[i]);
    return TSDB_OK;
}

int statsd_agg_load_end(const uint8_t *p, size_t len, uint64_t *seq,
                        uint64_t *entries)
{
    if (len != 16)
        return TSDB_ECORRUPT;
    *seq = get_be64(p);
    *entries = get_be64(p + 8);
    return TSDB_OK;
}

static bool kind_from_code(uint8_t code, enum kind *k)
{
    for (int i = KIND_COUNTER; i <= KIND_SET; i++)
        if (kind_code[i] == code) {
            *k = (enum kind)i;
            return true;
        }
    return false;
}

/*
 * Checks that key[0..len) is name \0 (tag \0 value \0)* with a valid
 * metric name, valid label names and UTF-8 values; sets the counts.
 */
static bool key_valid(const char *key, size_t len, size_t *name_len,
                      size_t *ntags)
{
    const char *s = key, *end = key + len;
    size_t nstr = 0;

    if (len == 0 || key[len - 1] != '\0')
        return false;
    while (s < end) {
        size_t n = strlen(s);
        bool ok;

        if (nstr == 0)
            ok = n <= STATSD_MAX_NAME && tsdb_metric_name_valid(s, n);
        else if (nstr % 2 == 1)
            ok = n <= TSDB_MAX_LABEL_NAME && tsdb_label_name_valid(s, n);
        else
            ok = n > 0 && n <= TSDB_MAX_LABEL_VALUE;
        if (!ok)
            return false;
        if (nstr == 0)
            *name_len = n;
        nstr++;
        s += n + 1;
    }
    *ntags = (nstr - 1) / 2;
    return nstr % 2 == 1 && *ntags <= STATSD_MAX_TAGS;
}

static int load_entry(struct statsd_agg *a, const struct statsd_snap_info *info,
                      const uint8_t **pp, const uint8_t *end, bool load)
{
    const uint8_t *p = *pp;
    size_t name_len, ntags, nv;
    uint64_t klen, hash;
    struct entry *e;
    enum kind kind;
    int64_t seen;

    if (end - p < 10 || !kind_from_code(p[0], &kind))
        return TSDB_ECORRUPT;
    seen = (int64_t)get_be64(p + 1);
    p += 9;
    if (varint_get(&p, end, &klen) < 0 || klen > KEY_MAX ||
        klen > (uint64_t)(end - p) ||
        !key_valid((const char *)p, klen, &name_len, &ntags))
        return TSDB_ECORRUPT;
    nv = kind == KIND_SET ? 0 : has_hist(kind) ? info->nbuckets + 3 : 1;
    if ((size_t)(end - p) - klen < nv * 8)
        return TSDB_ECORRUPT;
    *pp = p + klen + nv * 8;
    if (!load)
        return TSDB_OK;
    hash = XXH3_64bits(p, klen);
    if (lookup(a, (const char *)p, klen, hash))
        return TSDB_ECORRUPT;
    e = entry_new(a, kind, (const char *)p, klen, hash, name_len, ntags);
    if (!e)
        return TSDB_ENOMEM;
    p += klen;
    e->last_seen = seen;
    e->flushed = true;
    if (nv == 1)
        e->v = bits_double(get_be64(p));
    for (size_t i = 0; e->hist && info->same_bounds && i < nv; i++)
        e->hist[i] = bits_double(get_be64(p + i * 8));
    insert(a, e);
    return TSDB_OK;
}

int statsd_agg_load_entries(struct statsd_agg *a,
                            const struct statsd_snap_info *info,
                            const uint8_t *p, size_t len, bool load,
                            uint64_t *count)
{
    const uint8_t *end = p + len;

    while (p < end) {
        int rc = load_entry(a, info, &p, end, load);
        if (rc != TSDB_OK)
            return rc;
        (*count)++;
    }
    return TSDB_OK;
}

void statsd_agg_set_position(struct statsd_agg *a, uint64_t seq, int64_t t)
{
    a->seq = seq;
    a->last_flush = t;
}

/* ---- figures and checks ---- */

uint64_t statsd_agg_seq(const struct statsd_agg *a)
{
    return a->seq;
}

int64_t statsd_agg_last_flush(const struct statsd_agg *a)
{
    return a->last_flush;
}

size_t statsd_agg_series(const struct statsd_agg *a)
{
    return a->n;
}

int statsd_agg_check(const struct statsd_agg *a)
{
    size_t n = 0, nhist = 0;

    if (a->raw_len > a->o.max_raw_bytes || a->raw_len > a->raw_cap ||
        (a->tab_cap & (a->tab_cap - 1)) != 0)
        return TSDB_ECORRUPT;
    for (size_t i = 0; i < a->tab_cap; i++) {
        for (const struct entry *e = a->tab[i]; e; e = e->next) {
            size_t nl, nt;
            if ((e->hash & (a->tab_cap - 1)) != i ||
                e->hash != XXH3_64bits(e->key, e->key_len) ||
                lookup(a, e->key, e->key_len, e->hash) != e ||
                !key_valid(e->key, e->key_len, &nl, &nt) || nl != e->name_len ||
                nt != e->ntags || has_hist(e->kind) != (e->hist != NULL) ||
                e->mn > a->o.max_set_members || e->mn * 2 > e->mcap ||
                (e->kind != KIND_SET && e->mems))
                return TSDB_ECORRUPT;
            n++;
            nhist += e->hist != NULL;
        }
    }
    return n == a->n && nhist == a->nhist ? TSDB_OK : TSDB_ECORRUPT;
}
