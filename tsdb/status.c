/*
 * TSDB status figures (status.h).  Layer: storage engine; reads the
 * postings database directly (storage-format.md section 6.6) in one read
 * snapshot, and the head under the head lock.  Writes nothing.
 *
 * Invariants of a top-N list being built (struct top):
 * 1. It holds at most cap entries, as a binary heap whose root is the
 *    entry that ranks lowest (the first to drop).
 * 2. Every entry owns its strings.
 * 3. Ranking is total: count, then name, then value, so that equal counts
 *    give the same answer on every run.
 */
#define LOG_MODULE "status"
#include "tsdb/status.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "tsdb/db_internal.h"
#include "tsdb/labels.h"
#include "tsdb/log.h"

#define METRIC_LABEL "__name__"
/* The longest postings key (labels.h): name, 0x00, value. */
#define KEY_MAX (TSDB_MAX_LABEL_NAME + 1 + TSDB_MAX_LABEL_VALUE)

/* ---- top N ---- */

struct top {
    struct tsdb_status_entry *v;
    size_t n;
    size_t cap;
};

static int name_cmp(const struct tsdb_status_entry *a,
                    const struct tsdb_status_entry *b)
{
    int c = strcmp(a->name, b->name);

    if (c != 0)
        return c;
    return strcmp(a->value ? a->value : "", b->value ? b->value : "");
}

/* Does a rank below b (invariant 3)? */
static bool below(const struct tsdb_status_entry *a,
                  const struct tsdb_status_entry *b)
{
    if (a->count != b->count)
        return a->count < b->count;
    return name_cmp(a, b) > 0;
}

static void swap(struct tsdb_status_entry *a, struct tsdb_status_entry *b)
{
    struct tsdb_status_entry t = *a;

    *a = *b;
    *b = t;
}

static void sift_up(struct top *t, size_t i)
{
    while (i > 0 && below(&t->v[i], &t->v[(i - 1) / 2])) {
        swap(&t->v[i], &t->v[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
}

static void sift_down(struct top *t, size_t i)
{
    size_t low, l, r;

    for (;;) {
        low = i;
        l = 2 * i + 1;
        r = l + 1;
        if (l < t->n && below(&t->v[l], &t->v[low]))
            low = l;
        if (r < t->n && below(&t->v[r], &t->v[low]))
            low = r;
        if (low == i)
            return;
        swap(&t->v[i], &t->v[low]);
        i = low;
    }
}

static void entry_release(struct tsdb_status_entry *e)
{
    free(e->name);
    free(e->value);
    memset(e, 0, sizeof(*e));
}

/* Offers c, whose strings are borrowed: copied only if c gets in. */
static int top_offer(struct top *t, const struct tsdb_status_entry *c)
{
    struct tsdb_status_entry e = {NULL, NULL, c->count};

    if (t->n == t->cap && (t->cap == 0 || !below(&t->v[0], c)))
        return TSDB_OK;
    e.name = strdup(c->name);
    e.value = c->value ? strdup(c->value) : NULL;
    if (!e.name || (c->value && !e.value)) {
        entry_release(&e);
        return TSDB_ENOMEM;
    }
    if (t->n < t->cap) {
        t->v[t->n++] = e;
        sift_up(t, t->n - 1);
    } else {
        entry_release(&t->v[0]);
        t->v[0] = e;
        sift_down(t, 0);
    }
    return TSDB_OK;
}

static int rank_desc(const void *a, const void *b)
{
    const struct tsdb_status_entry *x = a, *y = b;

    if (below(x, y))
        return 1;
    return below(y, x) ? -1 : 0;
}

/* Moves t's entries, best first, into the list. */
static void top_finish(struct top *t, struct tsdb_status_list *out)
{
    qsort(t->v, t->n, sizeof(*t->v), rank_desc);
    out->v = t->v;
    out->n = t->n;
    memset(t, 0, sizeof(*t));
}

static void list_release(struct tsdb_status_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        entry_release(&l->v[i]);
    free(l->v);
    memset(l, 0, sizeof(*l));
}

/* ---- the postings walk ---- */

struct walk {
    struct top metrics; /* series per metric */
    struct top values;  /* distinct values per name */
    struct top pairs;   /* series per pair */
    struct top bytes;   /* value bytes x series per name */
    struct tsdb_status *st;
    char name[TSDB_MAX_LABEL_NAME + 1]; /* the name being summed; "" none */
    uint64_t nvalues;
    uint64_t nbytes;
};

/* Ends the figures of the current name. */
static int end_name(struct walk *w)
{
    struct tsdb_status_entry e = {w->name, NULL, w->nvalues};
    int rc;

    if (w->name[0] == '\0')
        return TSDB_OK;
    rc = top_offer(&w->values, &e);
    e.count = w->nbytes;
    if (rc == TSDB_OK)
        rc = top_offer(&w->bytes, &e);
    w->name[0] = '\0';
    return rc;
}

/* One postings key "name 00 value" holding count series. */
static int walk_key(struct walk *w, const MDB_val *k, size_t count)
{
    char key[KEY_MAX + 1];
    const char *sep = memchr(k->mv_data, 0, k->mv_size);
    size_t nlen = sep ? (size_t)(sep - (const char *)k->mv_data) : 0;
    struct tsdb_status_entry e = {key, key + nlen + 1, count};
    int rc = TSDB_OK;

    if (!sep || nlen == 0 || nlen > TSDB_MAX_LABEL_NAME ||
        k->mv_size > KEY_MAX || k->mv_size == nlen + 1) {
        log_error("postings key of %zu bytes is not name, 00, value",
                  k->mv_size);
        return TSDB_ECORRUPT;
    }
    memcpy(key, k->mv_data, k->mv_size);
    key[k->mv_size] = '\0';
    if (strcmp(key, w->name) != 0) {
        rc = end_name(w);
        memcpy(w->name, key, nlen + 1);
        w->nvalues = 0;
        w->nbytes = 0;
        w->st->label_names++;
    }
    w->nvalues++;
    w->nbytes += (k->mv_size - nlen - 1) * (uint64_t)count;
    w->st->label_pairs++;
    if (rc == TSDB_OK)
        rc = top_offer(&w->pairs, &e);
    if (rc == TSDB_OK && strcmp(key, METRIC_LABEL) == 0) {
        e = (struct tsdb_status_entry){key + nlen + 1, NULL, count};
        rc = top_offer(&w->metrics, &e);
    }
    return rc;
}

/* Reads every postings key once, in key order. */
static int walk_postings(struct tsdb *db, struct walk *w)
{
    MDB_txn *txn;
    MDB_cursor *c;
    MDB_val k, d;
    size_t count;
    int mrc, rc;

    rc = tsdb_mdb_error(mdb_txn_begin(db->env, NULL, MDB_RDONLY, &txn));
    if (rc != TSDB_OK)
        return rc;
    rc = tsdb_mdb_error(mdb_cursor_open(txn, db->index.postings, &c));
    if (rc != TSDB_OK) {
        mdb_txn_abort(txn);
        return rc;
    }
    for (mrc = mdb_cursor_get(c, &k, &d, MDB_FIRST);
         mrc == MDB_SUCCESS && rc == TSDB_OK;
         mrc = mdb_cursor_get(c, &k, &d, MDB_NEXT_NODUP)) {
        mrc = mdb_cursor_count(c, &count);
        if (mrc != MDB_SUCCESS)
            break;
        /* The all-series key, 00 alone. */
        if (k.mv_size == 1 && *(const uint8_t *)k.mv_data == 0)
            w->st->series = count;
        else
            rc = walk_key(w, &k, count);
    }
    if (rc == TSDB_OK && mrc != MDB_SUCCESS && mrc != MDB_NOTFOUND) {
        log_error("cannot walk postings: %s", mdb_strerror(mrc));
        rc = tsdb_mdb_error(mrc);
    }
    if (rc == TSDB_OK)
        rc = end_name(w);
    mdb_cursor_close(c);
    mdb_txn_abort(txn);
    return rc;
}

/* ---- head ---- */

static void head_figures(struct tsdb *db, struct tsdb_status_head *h)
{
    const struct head_series *s;

    h->min_time = INT64_MAX;
    pthread_mutex_lock(&db->head_lock);
    h->series = db->head.count;
    h->max_time = db->max_time;
    for (size_t id = 0; id < db->head.by_id_cap; id++) {
        s = db->head.by_id[id];
        if (!s)
            continue;
        if (s->npending > 0) {
            h->chunks += s->npending;
            if (s->pending[0]->mint < h->min_time)
                h->min_time = s->pending[0]->mint;
        }
        if (s->open.count > 0) {
            h->chunks++;
            if (s->open_mint < h->min_time)
                h->min_time = s->open_mint;
        }
    }
    pthread_mutex_unlock(&db->head_lock);
}

/* ---- the call ---- */

static int walk_init(struct walk *w, struct tsdb_status *st, size_t top)
{
    struct top *t[] = {&w->metrics, &w->values, &w->pairs, &w->bytes};

    memset(w, 0, sizeof(*w));
    w->st = st;
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        t[i]->v = calloc(top, sizeof(*t[i]->v));
        if (!t[i]->v)
            return TSDB_ENOMEM;
        t[i]->cap = top;
    }
    return TSDB_OK;
}

static void walk_release(struct walk *w)
{
    struct top *t[] = {&w->metrics, &w->values, &w->pairs, &w->bytes};

    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        for (size_t j = 0; j < t[i]->n; j++)
            entry_release(&t[i]->v[j]);
        free(t[i]->v);
    }
    memset(w, 0, sizeof(*w));
}

int tsdb_status_get(struct tsdb *db, size_t top, struct tsdb_status *out)
{
    struct walk w;
    int rc;

    memset(out, 0, sizeof(*out));
    if (top == 0)
        top = TSDB_STATUS_DEFAULT_TOP;
    if (top > TSDB_STATUS_MAX_TOP)
        top = TSDB_STATUS_MAX_TOP;
    rc = walk_init(&w, out, top);
    if (rc == TSDB_OK)
        rc = walk_postings(db, &w);
    if (rc != TSDB_OK) {
        walk_release(&w);
        memset(out, 0, sizeof(*out));
        return rc;
    }
    top_finish(&w.metrics, &out->series_by_metric);
    top_finish(&w.values, &out->values_by_name);
    top_finish(&w.pairs, &out->series_by_pair);
    top_finish(&w.bytes, &out->bytes_by_name);
    walk_release(&w);
    head_figures(db, &out->head);
    return TSDB_OK;
}

void tsdb_status_release(struct tsdb_status *st)
{
    list_release(&st->series_by_metric);
    list_release(&st->values_by_name);
    list_release(&st->series_by_pair);
    list_release(&st->bytes_by_name);
    memset(st, 0, sizeof(*st));
}
