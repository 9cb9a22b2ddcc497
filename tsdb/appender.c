/*
 * The append path: appenders, series creation and commit.  Layer: public
 * API (db.h) over head.c, wal.c and index.c.
 *
 * Commit protocol (storage-format.md "Crash safety"):
 * 1. Series the LMDB index lacks are added in one write txn, before
 *    head_lock is taken (lock order: write txn, then head_lock).
 * 2. Under head_lock: each sample is checked against its series' newest
 *    sample, the accepted ones are logged with one WAL write, then
 *    appended to the head.  The WAL order is the order in which the head
 *    accepted samples, which is what replay relies on.
 *
 * Invariants:
 * 1. The WAL holds a series record before the first sample record of that
 *    series written since the last checkpoint (s->logged).
 * 2. A series is in the index before its first sample is accepted.
 *
 * LIMIT: one commit at a time.  Why: the WAL order must be the order in
 * which the head accepts samples, and one head_lock keeps both.  Matters
 * when several writers each push more than one core's worth (measured 22 M
 * samples/s on one core).  Behaviour: commits queue on head_lock.  Fix:
 * per-shard heads and WAL files, replayed shard by shard.
 *
 * LIMIT: no out-of-order window.  A sample older than its series' newest
 * is rejected and counted (TSDB_EOUTOFORDER in the commit result), as in
 * Prometheus before 2.39.  Matters for StatsD |T lines and backfills that
 * arrive late.  Fix: a second, unordered open chunk per series, sorted and
 * merged into the stored chunks when it is sealed.
 */
#define LOG_MODULE "append"
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tsdb/bytes.h"
#include "tsdb/db_internal.h"
#include "tsdb/format.h"
#include "tsdb/log.h"

/* Sample records are cut at this many samples (about 1 MiB, well under the
 * 24-bit record length) so that replay never holds one huge record. */
#define SAMPLES_PER_RECORD 65536
/* An appender buffers at most this many samples between commits. */
#define APPENDER_MAX_SAMPLES (16u << 20)

enum verdict {
    V_ACCEPT,
    V_DUPLICATE,
    V_OUT_OF_ORDER,
    V_CONFLICT,
    V_OUT_OF_BOUNDS,
};

/* A buffered sample is kept in the observer's type, so that the accepted
 * ones are handed on where they lie. */
#define app_sample tsdb_observed

struct tsdb_appender {
    struct tsdb *db;
    struct app_sample *v;
    size_t n;
    size_t cap;
    uint8_t *verdict;
    size_t verdict_cap;
    struct head_series **series; /* scratch: series needing work */
    size_t nseries;
    size_t series_cap;
    struct tsdb_wal_buf wal;
    bool unobserved; /* the commit observer does not see these commits */
    uint8_t enc[TSDB_MAX_LABELS_BYTES];
};

struct tsdb_appender *tsdb_appender_new(struct tsdb *db)
{
    struct tsdb_appender *a = calloc(1, sizeof(*a));

    if (a)
        a->db = db;
    return a;
}

void tsdb_appender_free(struct tsdb_appender *a)
{
    if (!a)
        return;
    free(a->v);
    free(a->verdict);
    free(a->series);
    tsdb_wal_buf_release(&a->wal);
    free(a);
}

void tsdb_appender_unobserved(struct tsdb_appender *a)
{
    a->unobserved = true;
}

void tsdb_set_commit_observer(struct tsdb *db, tsdb_commit_observer fn,
                              void *ctx)
{
    pthread_mutex_lock(&db->observe_lock);
    db->observer = fn;
    db->observer_ctx = ctx;
    pthread_mutex_unlock(&db->observe_lock);
}

int tsdb_series_labels(struct tsdb *db, uint64_t ref, struct tsdb_labels *out)
{
    const struct head_series *s;
    int rc = TSDB_ENOTFOUND;

    pthread_mutex_lock(&db->head_lock);
    s = head_get(&db->head, ref);
    if (s)
        rc = tsdb_labels_decode(s->labels, s->labels_len, out);
    pthread_mutex_unlock(&db->head_lock);
    return rc;
}

/* Shows the accepted samples to the observer.  The buffer is emptied by
 * the caller next, so the accepted ones are packed to its front. */
static void show_observer(struct tsdb_appender *a)
{
    struct tsdb *db = a->db;
    size_t n = 0;

    for (size_t i = 0; i < a->n; i++)
        if (a->verdict[i] == V_ACCEPT)
            a->v[n++] = a->v[i];
    if (n > 0)
        db->observer(db->observer_ctx, a->v, n);
}

void tsdb_appender_rollback(struct tsdb_appender *a)
{
    a->n = 0;
}

int tsdb_appender_add(struct tsdb_appender *a, uint64_t ref, int64_t t,
                      double v)
{
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 1024;
        struct app_sample *p;
        if (cap > APPENDER_MAX_SAMPLES)
            return TSDB_EFULL;
        p = realloc(a->v, cap * sizeof(*p));
        if (!p)
            return TSDB_ENOMEM;
        a->v = p;
        a->cap = cap;
    }
    a->v[a->n++] = (struct app_sample){ref, t, v};
    return TSDB_OK;
}

static int push_series(struct tsdb_appender *a, struct head_series *s)
{
    if (a->nseries == a->series_cap) {
        size_t cap = a->series_cap ? a->series_cap * 2 : 64;
        struct head_series **p = realloc(a->series, cap * sizeof(*p));
        if (!p)
            return TSDB_ENOMEM;
        a->series = p;
        a->series_cap = cap;
    }
    a->series[a->nseries++] = s;
    return TSDB_OK;
}

/* Looks the label set up in the LMDB index; loads it into the head. */
static int find_stored(struct tsdb *db, const uint8_t *enc, size_t len,
                       uint64_t hash, uint64_t *ref)
{
    struct head_series *s;
    MDB_txn *txn;
    uint64_t id;
    int64_t maxt;
    int rc;

    rc = tsdb_mdb_error(mdb_txn_begin(db->env, NULL, MDB_RDONLY, &txn));
    if (rc != TSDB_OK)
        return rc;
    rc = tsdb_index_find(&db->index, txn, enc, len, &id);
    if (rc == TSDB_OK)
        rc = store_newest_time(db, txn, id, &maxt);
    mdb_txn_abort(txn);
    if (rc != TSDB_OK)
        return rc;

    pthread_mutex_lock(&db->head_lock);
    s = head_find(&db->head, hash, enc, len);
    if (!s && !head_get(&db->head, id))
        rc = head_add(&db->head, id, hash, enc, len, maxt, &s);
    else if (!s)
        rc = TSDB_ECORRUPT; /* the index and the head disagree on id */
    if (rc == TSDB_OK) {
        if (maxt > db->max_time)
            db->max_time = maxt;
        *ref = s->id;
    }
    pthread_mutex_unlock(&db->head_lock);
    return rc;
}

int tsdb_appender_series(struct tsdb_appender *a, struct tsdb_label *v,
                         size_t n, uint64_t *ref, char *err, size_t errlen)
{
    struct tsdb *db = a->db;
    struct head_series *s;
    bool fold = false;
    uint64_t hash;
    size_t len;
    int rc;

    rc = tsdb_labels_normalize(v, &n, err, errlen);
    if (rc != TSDB_OK)
        return rc;
    rc = tsdb_labels_encode(v, n, a->enc, sizeof(a->enc), &len);
    if (rc != TSDB_OK)
        return rc;
    hash = tsdb_labels_hash(a->enc, len);

    pthread_mutex_lock(&db->head_lock);
    s = head_find(&db->head, hash, a->enc, len);
    if (s)
        *ref = s->id;
    pthread_mutex_unlock(&db->head_lock);
    if (s)
        return TSDB_OK;

    rc = find_stored(db, a->enc, len, hash, ref);
    if (rc != TSDB_ENOTFOUND)
        return rc;

    /* A new series: the head is the authority on what exists, so a
     * concurrent creator of the same labels is found here. */
    pthread_mutex_lock(&db->head_lock);
    s = head_find(&db->head, hash, a->enc, len);
    if (!s && db->head.count >= db->opt.max_series) {
        char name[256];
        tsdb_labels_format(v, n, name, sizeof(name));
        snprintf(err, errlen,
                 "series limit of %zu reached (max_series); not creating "
                 "%s",
                 db->opt.max_series, name);
        rc = TSDB_ELIMIT;
    } else if (!s) {
        /* Cardinality rules (guard.h), judged only for a new series. */
        rc = tsdb_guard_admit(db->guard, v, n, &fold, err, errlen);
        if (rc == TSDB_OK && !fold)
            rc = head_add(&db->head, db->head.next_id, hash, a->enc, len,
                          INT64_MIN, &s);
    } else {
        rc = TSDB_OK;
    }
    if (rc == TSDB_OK && !fold)
        *ref = s->id;
    pthread_mutex_unlock(&db->head_lock);
    /* Folded: v now names the overflow series; find or create that one. */
    if (rc == TSDB_OK && fold)
        return tsdb_appender_series(a, v, n, ref, err, errlen);
    return rc;
}

/* Step 1 of commit: index the series of this batch that need it. */
static int index_new_series(struct tsdb_appender *a)
{
    struct tsdb *db = a->db;
    uint64_t gen;
    MDB_txn *txn;
    int rc = TSDB_OK;

    a->nseries = 0;
    pthread_mutex_lock(&db->head_lock);
    gen = ++db->commit_gen;
    for (size_t i = 0; i < a->n && rc == TSDB_OK; i++) {
        struct head_series *s = head_get(&db->head, a->v[i].ref);
        if (!s) {
            rc = TSDB_ENOTFOUND;
        } else if (!s->indexed && s->batch_gen != gen) {
            s->batch_gen = gen;
            rc = push_series(a, s);
        }
    }
    pthread_mutex_unlock(&db->head_lock);
    if (rc != TSDB_OK || a->nseries == 0)
        return rc;

    /* Labels and ids are immutable and series are never freed while the
     * database is open, so the pointers stay valid without the lock. */
    rc = tsdb_mdb_error(mdb_txn_begin(db->env, NULL, 0, &txn));
    for (size_t i = 0; i < a->nseries && rc == TSDB_OK; i++)
        rc = tsdb_index_add(&db->index, txn, a->series[i]->id,
                            a->series[i]->labels, a->series[i]->labels_len);
    if (rc == TSDB_OK)
        rc = tsdb_mdb_error(mdb_txn_commit(txn));
    else if (txn)
        mdb_txn_abort(txn);
    if (rc != TSDB_OK) {
        log_error("cannot index %zu new series: %s", a->nseries,
                  tsdb_strerror(rc));
        return rc;
    }
    pthread_mutex_lock(&db->head_lock);
    for (size_t i = 0; i < a->nseries; i++)
        a->series[i]->indexed = true;
    pthread_mutex_unlock(&db->head_lock);
    return TSDB_OK;
}

/* Appends the series record body for s to the record being built. */
static int put_series_record(struct tsdb_wal_buf *b,
                             const struct head_series *s)
{
    int rc = tsdb_wal_buf_reserve(b, 20 + s->labels_len);

    if (rc != TSDB_OK)
        return rc;
    b->len += varint_put(b->p + b->len, s->id);
    b->len += varint_put(b->p + b->len, s->labels_len);
    memcpy(b->p + b->len, s->labels, s->labels_len);
    b->len += s->labels_len;
    return TSDB_OK;
}

/* Judges sample i against its series as the batch has left it. */
static enum verdict judge(struct tsdb *db, struct head_series *s,
                          const struct app_sample *x, uint64_t gen)
{
    uint64_t bits = double_bits(x->v);

    if (s->batch_gen != gen) {
        s->batch_gen = gen;
        s->batch_maxt = s->maxt;
        s->batch_bits = s->last_bits;
    }
    if (db->opt.retention_ms > 0 && db->max_time != INT64_MIN &&
        x->t < db->max_time - db->opt.retention_ms)
        return V_OUT_OF_BOUNDS;
    if (x->t < s->batch_maxt)
        return V_OUT_OF_ORDER;
    if (x->t == s->batch_maxt)
        return bits == s->batch_bits ? V_DUPLICATE : V_CONFLICT;
    s->batch_maxt = x->t;
    s->batch_bits = bits;
    return V_ACCEPT;
}

/* Builds the WAL records of the accepted samples (and their series). */
static int build_records(struct tsdb_appender *a, size_t *accepted)
{
    struct tsdb_wal_buf *b = &a->wal;
    uint64_t prev_ref = 0;
    int64_t prev_t = 0;
    size_t in_record = 0;
    int rc = TSDB_OK;

    tsdb_wal_buf_reset(b);
    *accepted = 0;
    if (a->nseries > 0) {
        rc = tsdb_wal_buf_begin(b, TSDB_WAL_REC_SERIES);
        for (size_t i = 0; i < a->nseries && rc == TSDB_OK; i++)
            rc = put_series_record(b, a->series[i]);
        if (rc != TSDB_OK)
            return rc;
        tsdb_wal_buf_end(b);
    }
    for (size_t i = 0; i < a->n; i++) {
        const struct app_sample *x = &a->v[i];
        if (a->verdict[i] != V_ACCEPT)
            continue;
        if (in_record == 0) {
            rc = tsdb_wal_buf_begin(b, TSDB_WAL_REC_SAMPLES);
            prev_ref = 0;
            prev_t = 0;
        }
        if (rc == TSDB_OK)
            rc = tsdb_wal_buf_reserve(b, 28);
        if (rc != TSDB_OK)
            return rc;
        b->len +=
            varint_put(b->p + b->len, zigzag_enc((int64_t)(x->ref - prev_ref)));
        b->len += varint_put(b->p + b->len, zigzag_enc(x->t - prev_t));
        put_be64(b->p + b->len, double_bits(x->v));
        b->len += 8;
        prev_ref = x->ref;
        prev_t = x->t;
        (*accepted)++;
        if (++in_record == SAMPLES_PER_RECORD) {
            tsdb_wal_buf_end(b);
            in_record = 0;
        }
    }
    if (in_record > 0)
        tsdb_wal_buf_end(b);
    return TSDB_OK;
}

/*
 * Under head_lock: judges every sample, queues a series record for each
 * series the WAL does not know yet (marking it logged), and counts.
 */
static int judge_batch(struct tsdb_appender *a, struct tsdb_commit_result *res)
{
    struct tsdb *db = a->db;
    uint64_t gen = ++db->commit_gen;

    a->nseries = 0;
    for (size_t i = 0; i < a->n; i++) {
        struct head_series *s = head_get(&db->head, a->v[i].ref);
        if (!s)
            return TSDB_ENOTFOUND;
        a->verdict[i] = (uint8_t)judge(db, s, &a->v[i], gen);
        switch (a->verdict[i]) {
        case V_ACCEPT:
            if (!s->logged) {
                if (push_series(a, s) != TSDB_OK)
                    return TSDB_ENOMEM;
                s->logged = true;
            }
            res->accepted++;
            break;
        case V_DUPLICATE:
            res->duplicates++;
            break;
        case V_OUT_OF_ORDER:
            res->out_of_order++;
            break;
        case V_CONFLICT:
            res->conflicts++;
            break;
        case V_OUT_OF_BOUNDS:
            res->out_of_bounds++;
            break;
        }
    }
    return TSDB_OK;
}

/* Under head_lock, after the WAL write: the head takes the samples. */
static int apply_batch(struct tsdb_appender *a)
{
    struct tsdb *db = a->db;
    int rc = TSDB_OK;

    for (size_t i = 0; i < a->n && rc == TSDB_OK; i++) {
        const struct app_sample *x = &a->v[i];
        if (a->verdict[i] != V_ACCEPT)
            continue;
        rc = head_append(&db->head, head_get(&db->head, x->ref), x->t, x->v);
        if (x->t > db->max_time)
            db->max_time = x->t;
    }
    if (rc != TSDB_OK)
        log_error("out of memory appending to the head; the samples are "
                  "in the WAL and return on restart");
    return rc;
}

int tsdb_appender_commit(struct tsdb_appender *a,
                         struct tsdb_commit_result *res)
{
    struct tsdb_commit_result local;
    struct tsdb *db = a->db;
    size_t accepted;
    bool observed;
    int rc;

    if (!res)
        res = &local;
    memset(res, 0, sizeof(*res));
    if (a->n == 0)
        return TSDB_OK;
    if (a->verdict_cap < a->n) {
        uint8_t *p = realloc(a->verdict, a->n);
        if (!p)
            return TSDB_ENOMEM;
        a->verdict = p;
        a->verdict_cap = a->n;
    }
    rc = index_new_series(a);
    if (rc != TSDB_OK)
        return rc;

    /* Reading db->observer unlocked is safe: it only changes while no
     * commit runs (db.h). */
    observed = db->observer != NULL && !a->unobserved;
    if (observed)
        pthread_mutex_lock(&db->observe_lock);
    pthread_mutex_lock(&db->head_lock);
    rc = db->stopping ? TSDB_ECLOSED : judge_batch(a, res);
    if (rc == TSDB_OK)
        rc = build_records(a, &accepted);
    if (rc == TSDB_OK && accepted > 0)
        rc = tsdb_wal_write(db->wal, a->wal.p, a->wal.len);
    if (rc != TSDB_OK) {
        for (size_t i = 0; i < a->nseries; i++)
            a->series[i]->logged = false;
        pthread_mutex_unlock(&db->head_lock);
        if (observed)
            pthread_mutex_unlock(&db->observe_lock);
        memset(res, 0, sizeof(*res));
        return rc;
    }
    rc = apply_batch(a);
    db->samples_appended += res->accepted;
    db->rejected_ooo += res->out_of_order;
    db->rejected_conflict += res->conflicts;
    db->rejected_bounds += res->out_of_bounds;
    pthread_mutex_unlock(&db->head_lock);
    if (observed) {
        if (rc == TSDB_OK)
            show_observer(a);
        pthread_mutex_unlock(&db->observe_lock);
    }
    a->n = 0;
    return rc;
}
