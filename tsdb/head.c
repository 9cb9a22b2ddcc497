/*
 * In-memory series and their open chunks (see head.h).  Layer: below db.c,
 * above the codecs; no I/O, no locks of its own.
 *
 * Invariants (tests/tsdb/test_head.c checks them on small cases; the crash
 * and read-back tests in test_crash.c and test_db.c catch their breach):
 * 1. by_id[s->id] == s for every series s in the hash table, and back.
 * 2. Pending chunks of a series are in time order, do not overlap, and all
 *    end before open_mint when the open chunk holds samples.
 * 3. s->maxt is the newest timestamp of the open chunk if it has samples,
 *    else of the newest pending or stored chunk.
 * 4. A series is on the dirty list exactly when in_dirty is set.
 */
#include "tsdb/head.h"

#include <stdlib.h>
#include <string.h>

#include "tsdb/chunk.h"
#include "tsdb/error.h"
#include "tsdb/format.h"

int head_init(struct head *h, uint32_t chunk_samples, int64_t chunk_span_ms)
{
    memset(h, 0, sizeof(*h));
    h->table_cap = 1024;
    h->table = calloc(h->table_cap, sizeof(*h->table));
    if (!h->table)
        return TSDB_ENOMEM;
    h->next_id = 1;
    h->chunk_samples = chunk_samples;
    h->chunk_span_ms = chunk_span_ms;
    return TSDB_OK;
}

static void series_free(struct head_series *s)
{
    for (uint32_t i = 0; i < s->npending; i++)
        free(s->pending[i]);
    free(s->pending);
    gorilla_enc_release(&s->open);
    free(s);
}

void head_release(struct head *h)
{
    for (size_t i = 0; i < h->table_cap; i++) {
        struct head_series *s = h->table ? h->table[i] : NULL, *next;
        for (; s; s = next) {
            next = s->hnext;
            series_free(s);
        }
    }
    free(h->table);
    free(h->by_id);
    memset(h, 0, sizeof(*h));
}

struct head_series *head_find(const struct head *h, uint64_t hash,
                              const uint8_t *enc, size_t len)
{
    struct head_series *s = h->table[hash & (h->table_cap - 1)];

    for (; s; s = s->hnext)
        if (s->hash == hash && s->labels_len == len &&
            memcmp(s->labels, enc, len) == 0)
            return s;
    return NULL;
}

static int grow_table(struct head *h)
{
    size_t cap = h->table_cap * 2;
    struct head_series **t = calloc(cap, sizeof(*t));

    if (!t)
        return TSDB_ENOMEM;
    for (size_t i = 0; i < h->table_cap; i++) {
        struct head_series *s = h->table[i], *next;
        for (; s; s = next) {
            next = s->hnext;
            s->hnext = t[s->hash & (cap - 1)];
            t[s->hash & (cap - 1)] = s;
        }
    }
    free(h->table);
    h->table = t;
    h->table_cap = cap;
    return TSDB_OK;
}

static int grow_by_id(struct head *h, uint64_t id)
{
    size_t cap = h->by_id_cap ? h->by_id_cap : 1024;
    struct head_series **v;

    while (cap <= id)
        cap *= 2;
    v = realloc(h->by_id, cap * sizeof(*v));
    if (!v)
        return TSDB_ENOMEM;
    memset(v + h->by_id_cap, 0, (cap - h->by_id_cap) * sizeof(*v));
    h->by_id = v;
    h->by_id_cap = cap;
    return TSDB_OK;
}

int head_add(struct head *h, uint64_t id, uint64_t hash, const uint8_t *enc,
             size_t len, int64_t maxt, struct head_series **out)
{
    struct head_series *s;
    size_t b;

    if (id >= h->by_id_cap && grow_by_id(h, id) != TSDB_OK)
        return TSDB_ENOMEM;
    if (h->count >= h->table_cap && grow_table(h) != TSDB_OK)
        return TSDB_ENOMEM;
    s = calloc(1, sizeof(*s) + len);
    if (!s)
        return TSDB_ENOMEM;
    s->id = id;
    s->hash = hash;
    s->maxt = maxt;
    s->labels_len = (uint32_t)len;
    memcpy(s->labels, enc, len);
    gorilla_enc_init(&s->open);

    b = hash & (h->table_cap - 1);
    s->hnext = h->table[b];
    h->table[b] = s;
    h->by_id[id] = s;
    h->count++;
    if (id >= h->next_id)
        h->next_id = id + 1;
    *out = s;
    return TSDB_OK;
}

int64_t head_window(int64_t t, int64_t span)
{
    int64_t q = t / span;
    return (t % span != 0 && t < 0) ? q - 1 : q;
}

static int push_pending(struct head *h, struct head_series *s,
                        struct head_chunk *c)
{
    if (s->npending == s->pending_cap) {
        uint32_t cap = s->pending_cap ? s->pending_cap * 2 : 2;
        struct head_chunk **v = realloc(s->pending, cap * sizeof(*v));
        if (!v)
            return TSDB_ENOMEM;
        s->pending = v;
        s->pending_cap = cap;
    }
    s->pending[s->npending++] = c;
    if (!s->in_dirty) {
        s->in_dirty = true;
        s->dirty_next = h->dirty;
        h->dirty = s;
    }
    return TSDB_OK;
}

/*
 * Seals the open chunk as it stands, Gorilla bytes and all: packing costs
 * about ten times an append, so the flusher does it on its own thread when
 * it stores the chunk (store.c).
 */
static int seal_open(struct head *h, struct head_series *s)
{
    size_t glen = gorilla_enc_len(&s->open), cap, len;
    struct head_chunk *c;

    cap = glen + TSDB_CHUNK_HEADER_MAX;
    c = malloc(sizeof(*c) + cap);
    if (!c)
        return TSDB_ENOMEM;
    c->mint = s->open_mint;
    c->maxt = s->maxt;
    c->count = s->open.count;
    c->in_flight = false;
    if (tsdb_chunk_build_raw(s->id, TSDB_CHUNK_ENC_GORILLA, s->open_mint,
                             s->maxt, s->open.count, s->open.buf, glen, c->val,
                             cap, &len) != TSDB_OK ||
        push_pending(h, s, c) != TSDB_OK) {
        free(c);
        return TSDB_ENOMEM;
    }
    c->len = len;
    return TSDB_OK;
}

int head_seal(struct head *h, struct head_series *s)
{
    int rc;

    if (s->open.count == 0)
        return TSDB_OK;
    rc = seal_open(h, s);
    if (rc != TSDB_OK)
        return rc;
    gorilla_enc_release(&s->open);
    gorilla_enc_init(&s->open);
    h->chunks_sealed++;
    return TSDB_OK;
}

int head_append(struct head *h, struct head_series *s, int64_t t, double v)
{
    int rc;

    if (s->open.count > 0 &&
        (s->open.count >= h->chunk_samples ||
         head_window(t, h->chunk_span_ms) !=
             head_window(s->open_mint, h->chunk_span_ms))) {
        rc = head_seal(h, s);
        if (rc != TSDB_OK)
            return rc;
    }
    rc = gorilla_enc_append(&s->open, t, v);
    if (rc == TSDB_EFULL) {
        rc = head_seal(h, s);
        if (rc == TSDB_OK)
            rc = gorilla_enc_append(&s->open, t, v);
    }
    if (rc != TSDB_OK)
        return rc;
    if (s->open.count == 1)
        s->open_mint = t;
    s->maxt = t;
    memcpy(&s->last_bits, &v, sizeof(v));
    return TSDB_OK;
}

void head_drop_pending(struct head_series *s, uint32_t n)
{
    if (n == 0)
        return;
    for (uint32_t i = 0; i < n; i++)
        free(s->pending[i]);
    memmove(s->pending, s->pending + n,
            (s->npending - n) * sizeof(*s->pending));
    s->npending -= n;
}
