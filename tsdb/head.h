/*
 * The head: the in-memory state of active series.  Each series keeps its
 * open chunk (Gorilla, appended one sample at a time) and the chunks sealed
 * from it that the flusher has not yet written to LMDB.  Lookup is by id
 * (a sparse array) and by canonical label set (a chained hash table).
 *
 * Internal to tsdb/.  The caller holds the database's head lock around every
 * call; nothing here does I/O or logs.
 */
#ifndef TSDB_HEAD_H
#define TSDB_HEAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tsdb/gorilla.h"

/* A sealed chunk waiting for the flusher: its complete entry (chunk.h),
 * Gorilla encoded; the flusher packs it. */
struct head_chunk {
    int64_t mint;
    int64_t maxt;
    uint32_t count;
    bool in_flight; /* being written by the flusher: do not free */
    size_t len;
    uint8_t val[]; /* storage-format.md "Chunk entry" */
};

struct head_series {
    uint64_t id;
    uint64_t hash;
    struct head_series *hnext; /* hash chain */
    struct gorilla_enc open;   /* the open chunk */
    int64_t open_mint;         /* first timestamp in the open chunk */
    int64_t maxt;              /* newest sample ever stored; INT64_MIN */
    uint64_t last_bits;        /* value bits of that sample */
    /* Scratch of tsdb_appender_commit's first pass (see db.c). */
    uint64_t batch_gen;
    int64_t batch_maxt;
    uint64_t batch_bits;
    struct head_chunk **pending; /* oldest first */
    uint32_t npending;
    uint32_t pending_cap;
    struct head_series *dirty_next;
    bool in_dirty; /* on the dirty list */
    bool logged;   /* its series record is in the WAL */
    bool indexed;  /* it is in the LMDB index */
    uint32_t labels_len;
    uint8_t labels[]; /* canonical encoding, immutable */
};

struct head {
    struct head_series **by_id; /* index = id; NULL where not loaded */
    size_t by_id_cap;
    struct head_series **table; /* hash buckets, power of two */
    size_t table_cap;
    size_t count;
    uint64_t next_id;
    struct head_series *dirty; /* series with chunks to flush */
    uint32_t chunk_samples;
    int64_t chunk_span_ms;
    uint64_t chunks_sealed;
};

int head_init(struct head *h, uint32_t chunk_samples, int64_t chunk_span_ms);
void head_release(struct head *h);

/* The series with canonical labels enc, or NULL. */
struct head_series *head_find(const struct head *h, uint64_t hash,
                              const uint8_t *enc, size_t len);

static inline struct head_series *head_get(const struct head *h, uint64_t id)
{
    return id < h->by_id_cap ? h->by_id[id] : NULL;
}

/*
 * Adds a series with the given id (which must not be loaded) and labels.
 * maxt is its newest stored timestamp (INT64_MIN if none).  Bumps next_id
 * past id.  Returns TSDB_OK with *out, or TSDB_ENOMEM.
 */
int head_add(struct head *h, uint64_t id, uint64_t hash, const uint8_t *enc,
             size_t len, int64_t maxt, struct head_series **out);

/*
 * Appends (t, v) to s, sealing the open chunk first when it is full by
 * sample count or time span.  The caller has checked ordering:
 * t > s->maxt.  Returns TSDB_OK or TSDB_ENOMEM (s unchanged).
 */
int head_append(struct head *h, struct head_series *s, int64_t t, double v);

/* Seals s's open chunk if it holds samples.  TSDB_OK or TSDB_ENOMEM. */
int head_seal(struct head *h, struct head_series *s);

/*
 * The aligned time window holding t: floor(t / span), rounding down for
 * negative t too.  A chunk never spans two windows.
 */
int64_t head_window(int64_t t, int64_t span);

/* Drops the first n pending chunks of s (written by the flusher). */
void head_drop_pending(struct head_series *s, uint32_t n);

#endif
