/*
 * The read path: select series by matchers, then stream each series'
 * samples in [mint, maxt] batch by batch, stored chunks first, then the
 * head's chunks.  Layer: public API over index.c, chunk.c and the head.
 *
 * Consistency: a query copies the head chunks of its series first, then
 * renews its LMDB snapshot.  A chunk the flusher moves from the head to
 * LMDB in between is then in both copies, never in neither; stored samples
 * at or after the first copied head timestamp (head_min) are skipped, since
 * the head copy holds all of them.
 *
 * Invariants:
 * 1. Batches of one series are ascending and do not overlap.
 * 2. Only chunks overlapping [mint, maxt] are decoded.
 */
#define LOG_MODULE "query"
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "tsdb/bytes.h"
#include "tsdb/chunk.h"
#include "tsdb/db_internal.h"
#include "tsdb/format.h"
#include "tsdb/log.h"
#include "tsdb/pack.h"

/* A copy of one head chunk, its payload in the series' bytes. */
struct q_chunk {
    int64_t mint;
    int64_t maxt;
    uint32_t count;
    uint8_t enc;
    size_t off;
    size_t len;
};

struct q_series {
    uint64_t id;
    struct tsdb_labels labels;
    uint8_t *bytes; /* payloads of the head chunks */
    struct q_chunk *chunks;
    uint32_t nchunks;
    int64_t head_min; /* first head timestamp; INT64_MAX if none */
};

struct tsdb_query {
    struct tsdb *db;
    MDB_txn *txn;
    MDB_cursor *cur;
    int64_t mint, maxt;
    struct q_series *series;
    size_t n;
    size_t pos;      /* current series + 1; 0 before the first */
    bool stored;     /* the cursor sits on a chunk still to read */
    uint32_t head_i; /* next head chunk */
    int64_t *ts;
    double *vs;
    size_t cap;
};

static int labels_cmp(const struct tsdb_labels *a, const struct tsdb_labels *b)
{
    for (size_t i = 0; i < a->n && i < b->n; i++) {
        int c = strcmp(a->v[i].name, b->v[i].name);
        if (c)
            return c;
        c = strcmp(a->v[i].value, b->v[i].value);
        if (c)
            return c;
    }
    return (a->n > b->n) - (a->n < b->n);
}

static int series_cmp(const void *x, const void *y)
{
    const struct q_series *a = x, *b = y;
    return labels_cmp(&a->labels, &b->labels);
}

/* Copies s's pending chunks and open chunk into qs; head_lock held. */
static int copy_head(struct head_series *s, struct q_series *qs)
{
    size_t total = gorilla_enc_len(&s->open), off = 0;
    uint32_t n = s->npending + (s->open.count > 0);

    qs->head_min = INT64_MAX;
    if (n == 0)
        return TSDB_OK;
    for (uint32_t i = 0; i < s->npending; i++)
        total += s->pending[i]->len;
    qs->bytes = malloc(total ? total : 1);
    qs->chunks = calloc(n, sizeof(*qs->chunks));
    if (!qs->bytes || !qs->chunks)
        return TSDB_ENOMEM;
    for (uint32_t i = 0; i < s->npending; i++) {
        struct head_chunk *c = s->pending[i];
        struct tsdb_chunk pc;

        if (tsdb_chunk_parse(s->id, c->val, c->len, &pc) != TSDB_OK)
            return TSDB_ECORRUPT;
        memcpy(qs->bytes + off, pc.payload, pc.payload_len);
        qs->chunks[qs->nchunks++] = (struct q_chunk){
            c->mint, c->maxt, c->count, pc.enc, off, pc.payload_len};
        off += pc.payload_len;
    }
    if (s->open.count > 0) {
        memcpy(qs->bytes + off, s->open.buf, gorilla_enc_len(&s->open));
        qs->chunks[qs->nchunks++] = (struct q_chunk){
            s->open_mint,           s->maxt, s->open.count,
            TSDB_CHUNK_ENC_GORILLA, off,     gorilla_enc_len(&s->open)};
    }
    qs->head_min = qs->chunks[0].mint;
    return TSDB_OK;
}

static int load_series(struct tsdb_query *q, const struct tsdb_ids *ids)
{
    int rc = TSDB_OK;

    q->series = calloc(ids->n ? ids->n : 1, sizeof(*q->series));
    if (!q->series)
        return TSDB_ENOMEM;
    for (size_t i = 0; i < ids->n && rc == TSDB_OK; i++) {
        const uint8_t *enc;
        size_t len;

        rc = tsdb_index_labels(&q->db->index, q->txn, ids->v[i], &enc, &len);
        if (rc == TSDB_OK)
            rc = tsdb_labels_decode(enc, len, &q->series[q->n].labels);
        if (rc == TSDB_OK)
            q->series[q->n++].id = ids->v[i];
    }
    if (rc != TSDB_OK)
        return rc;
    qsort(q->series, q->n, sizeof(*q->series), series_cmp);

    pthread_mutex_lock(&q->db->head_lock);
    for (size_t i = 0; i < q->n && rc == TSDB_OK; i++) {
        struct head_series *s = head_get(&q->db->head, q->series[i].id);
        q->series[i].head_min = INT64_MAX;
        if (s)
            rc = copy_head(s, &q->series[i]);
    }
    pthread_mutex_unlock(&q->db->head_lock);
    return rc;
}

int tsdb_query_open(struct tsdb *db, struct tsdb_matcher *ms, size_t n,
                    int64_t mint, int64_t maxt, struct tsdb_query **out)
{
    struct tsdb_query *q;
    struct tsdb_ids ids = {0};
    int rc;

    if (n == 0 || mint > maxt)
        return TSDB_EINVAL;
    q = calloc(1, sizeof(*q));
    if (!q)
        return TSDB_ENOMEM;
    q->db = db;
    q->mint = mint;
    q->maxt = maxt;
    rc = tsdb_mdb_error(mdb_txn_begin(db->env, NULL, MDB_RDONLY, &q->txn));
    if (rc == TSDB_OK)
        rc = tsdb_index_select(&db->index, q->txn, ms, n, &ids);
    if (rc == TSDB_OK)
        rc = load_series(q, &ids);
    tsdb_ids_release(&ids);

    /* A snapshot newer than the head copy: see the comment at the top. */
    if (rc == TSDB_OK) {
        mdb_txn_reset(q->txn);
        rc = tsdb_mdb_error(mdb_txn_renew(q->txn));
    }
    if (rc == TSDB_OK)
        rc = tsdb_mdb_error(mdb_cursor_open(q->txn, db->chunks, &q->cur));
    if (rc != TSDB_OK) {
        tsdb_query_close(q);
        return rc;
    }
    *out = q;
    return TSDB_OK;
}

/* Parses the entry under the cursor; true if it belongs to qs and may
 * hold samples the query wants (starts by maxt, and before the head copy
 * takes over). */
static bool chunk_here(struct tsdb_query *q, const struct q_series *qs,
                       struct tsdb_chunk *c, int *rc)
{
    MDB_val k, v;

    *rc = TSDB_OK;
    if (mdb_cursor_get(q->cur, &k, &v, MDB_GET_CURRENT) != MDB_SUCCESS ||
        k.mv_size != TSDB_CHUNK_KEY_LEN || get_be64(k.mv_data) != qs->id)
        return false;
    *rc = tsdb_chunk_parse(qs->id, v.mv_data, v.mv_size, c);
    if (*rc == TSDB_OK &&
        c->mint != get_be64_signed((const uint8_t *)k.mv_data + 8))
        *rc = TSDB_ECORRUPT;
    if (*rc != TSDB_OK) {
        log_error("corrupt chunk of series %" PRIu64 " at %" PRId64, qs->id,
                  get_be64_signed((const uint8_t *)k.mv_data + 8));
        return false;
    }
    return c->mint <= q->maxt && c->mint < qs->head_min;
}

/*
 * Puts the cursor on the first stored chunk of qs overlapping the range:
 * the chunk before the first one starting at or after mint if it reaches
 * into the range (chunks of a series never overlap), else that first one.
 */
static int position_stored(struct tsdb_query *q, const struct q_series *qs)
{
    uint8_t key[TSDB_CHUNK_KEY_LEN];
    MDB_val k = {sizeof(key), key}, v;
    struct tsdb_chunk c;
    int rc = TSDB_OK, mrc;

    q->stored = false;
    tsdb_chunk_key(key, qs->id, q->mint);
    mrc = mdb_cursor_get(q->cur, &k, &v, MDB_SET_RANGE);
    mrc = mrc == MDB_SUCCESS ? mdb_cursor_get(q->cur, &k, &v, MDB_PREV)
                             : mdb_cursor_get(q->cur, &k, &v, MDB_LAST);
    if (mrc == MDB_SUCCESS && chunk_here(q, qs, &c, &rc) && c.maxt >= q->mint) {
        q->stored = true;
        return TSDB_OK;
    }
    if (rc != TSDB_OK)
        return rc;
    tsdb_chunk_key(key, qs->id, q->mint);
    k = (MDB_val){sizeof(key), key};
    if (mdb_cursor_get(q->cur, &k, &v, MDB_SET_RANGE) == MDB_SUCCESS &&
        chunk_here(q, qs, &c, &rc))
        q->stored = true;
    return rc;
}

static bool head_overlaps(const struct tsdb_query *q, const struct q_series *qs)
{
    for (uint32_t i = 0; i < qs->nchunks; i++)
        if (qs->chunks[i].mint <= q->maxt && qs->chunks[i].maxt >= q->mint)
            return true;
    return false;
}

int tsdb_query_next_series(struct tsdb_query *q,
                           const struct tsdb_labels **labels, uint64_t *id)
{
    while (q->pos < q->n) {
        struct q_series *qs = &q->series[q->pos++];
        int rc = position_stored(q, qs);

        if (rc != TSDB_OK)
            return rc;
        q->head_i = 0;
        if (!q->stored && !head_overlaps(q, qs))
            continue;
        *labels = &qs->labels;
        if (id)
            *id = qs->id;
        return TSDB_OK;
    }
    return TSDB_ENOTFOUND;
}

static int reserve(struct tsdb_query *q, size_t n)
{
    if (n <= q->cap)
        return TSDB_OK;
    free(q->ts);
    free(q->vs);
    q->ts = malloc(n * sizeof(*q->ts));
    q->vs = malloc(n * sizeof(*q->vs));
    q->cap = q->ts && q->vs ? n : 0;
    return q->cap ? TSDB_OK : TSDB_ENOMEM;
}

/* Narrows the decoded ts/vs[0..n) to [lo, hi]; returns the slice. */
static void clip(struct tsdb_query *q, size_t n, int64_t lo, int64_t hi,
                 const int64_t **ts, const double **vs, size_t *out)
{
    size_t a = 0, b = n;

    while (a < b && q->ts[a] < lo)
        a++;
    while (b > a && q->ts[b - 1] > hi)
        b--;
    *ts = q->ts + a;
    *vs = q->vs + a;
    *out = b - a;
}

static int next_stored(struct tsdb_query *q, const struct q_series *qs,
                       const int64_t **ts, const double **vs, size_t *n)
{
    MDB_val k, v;
    struct tsdb_chunk c;
    int rc;

    while (q->stored) {
        q->stored = chunk_here(q, qs, &c, &rc);
        if (rc != TSDB_OK)
            return rc;
        if (!q->stored)
            break;
        rc = reserve(q, c.count);
        if (rc == TSDB_OK)
            rc = tsdb_chunk_decode(&c, q->ts, q->vs);
        if (rc != TSDB_OK) {
            log_error("corrupt chunk of series %" PRIu64 " at %" PRId64, qs->id,
                      c.mint);
            return rc;
        }
        if (mdb_cursor_get(q->cur, &k, &v, MDB_NEXT) != MDB_SUCCESS)
            q->stored = false;
        clip(q, c.count, q->mint,
             qs->head_min <= q->maxt ? qs->head_min - 1 : q->maxt, ts, vs, n);
        if (*n > 0)
            return TSDB_OK;
    }
    return TSDB_OK;
}

int tsdb_query_next_batch(struct tsdb_query *q, const int64_t **ts,
                          const double **vs, size_t *n)
{
    const struct q_series *qs;
    int rc;

    *n = 0;
    if (q->pos == 0)
        return TSDB_OK;
    qs = &q->series[q->pos - 1];
    rc = next_stored(q, qs, ts, vs, n);
    if (rc != TSDB_OK || *n > 0)
        return rc;
    while (q->head_i < qs->nchunks) {
        const struct q_chunk *c = &qs->chunks[q->head_i++];
        const uint8_t *p = qs->bytes + c->off;

        if (c->mint > q->maxt || c->maxt < q->mint)
            continue;
        rc = reserve(q, c->count);
        if (rc != TSDB_OK)
            return rc;
        if (c->enc == TSDB_CHUNK_ENC_PACK)
            rc = pack_decode(p, c->len, c->count, q->ts, q->vs);
        else
            rc = gorilla_decode(p, c->len, c->count, q->ts, q->vs);
        if (rc != TSDB_OK)
            return TSDB_ECORRUPT;
        clip(q, c->count, q->mint, q->maxt, ts, vs, n);
        if (*n > 0)
            return TSDB_OK;
    }
    return TSDB_OK;
}

void tsdb_query_close(struct tsdb_query *q)
{
    if (!q)
        return;
    for (size_t i = 0; i < q->n; i++) {
        tsdb_labels_release(&q->series[i].labels);
        free(q->series[i].bytes);
        free(q->series[i].chunks);
    }
    free(q->series);
    if (q->cur)
        mdb_cursor_close(q->cur);
    if (q->txn)
        mdb_txn_abort(q->txn);
    free(q->ts);
    free(q->vs);
    free(q);
}

/* ---- label names and values ---- */

static int label_walk(struct tsdb *db, const char *name,
                      struct tsdb_matcher *ms, size_t n, tsdb_string_fn fn,
                      void *ctx)
{
    struct tsdb_ids ids = {0};
    MDB_txn *txn;
    int rc;

    rc = tsdb_mdb_error(mdb_txn_begin(db->env, NULL, MDB_RDONLY, &txn));
    if (rc != TSDB_OK)
        return rc;
    if (n > 0)
        rc = tsdb_index_select(&db->index, txn, ms, n, &ids);
    if (rc == TSDB_OK && name)
        rc = tsdb_index_label_values(&db->index, txn, name, n > 0 ? &ids : NULL,
                                     fn, ctx);
    else if (rc == TSDB_OK)
        rc = tsdb_index_label_names(&db->index, txn, n > 0 ? &ids : NULL, fn,
                                    ctx);
    tsdb_ids_release(&ids);
    mdb_txn_abort(txn);
    return rc;
}

int tsdb_label_names(struct tsdb *db, struct tsdb_matcher *ms, size_t n,
                     int (*fn)(void *ctx, const char *s, size_t len), void *ctx)
{
    return label_walk(db, NULL, ms, n, fn, ctx);
}

int tsdb_label_values(struct tsdb *db, const char *name,
                      struct tsdb_matcher *ms, size_t n,
                      int (*fn)(void *ctx, const char *s, size_t len),
                      void *ctx)
{
    return label_walk(db, name, ms, n, fn, ctx);
}
