/*
 * The series index in LMDB: series id <-> canonical label set, and postings
 * (label pair -> sorted series ids) that let label matchers select series
 * without scanning them all.  Layouts: storage-format.md sections
 * "series", "series_hash" and "postings".
 *
 * Internal to tsdb/: callers pass LMDB transactions.  Every call maps LMDB
 * codes to TSDB_E* codes and logs the original code.  Data returned from a
 * transaction is borrowed: valid until the next write in that transaction
 * or its end.
 */
#ifndef TSDB_INDEX_H
#define TSDB_INDEX_H

#include <lmdb.h>
#include <stddef.h>
#include <stdint.h>

#include "tsdb/matcher.h"

struct tsdb_index {
    MDB_dbi series;      /* id (u64 BE) -> canonical labels */
    MDB_dbi series_hash; /* label hash (u64 BE) -> ids, DUPSORT|DUPFIXED */
    MDB_dbi postings;    /* name 0x00 value -> ids, DUPSORT|DUPFIXED */
};

/* A sorted, duplicate-free list of series ids; caller-owned. */
struct tsdb_ids {
    uint64_t *v;
    size_t n;
    size_t cap;
};

/* Appends id (the caller keeps the list sorted).  TSDB_OK or TSDB_ENOMEM. */
int tsdb_ids_push(struct tsdb_ids *ids, uint64_t id);
void tsdb_ids_release(struct tsdb_ids *ids);

/* Opens (creating with a write txn) the three databases. */
int tsdb_index_open(struct tsdb_index *ix, MDB_txn *txn);

/*
 * Records series id with canonical labels enc[0..len) and its postings.
 * Idempotent: adding the same (id, labels) twice is TSDB_OK.  TSDB_EMAPFULL
 * if the map is full (the txn must then be aborted).
 */
int tsdb_index_add(const struct tsdb_index *ix, MDB_txn *txn, uint64_t id,
                   const uint8_t *enc, size_t len);

/* Removes series id and its postings; TSDB_ENOTFOUND if absent. */
int tsdb_index_remove(const struct tsdb_index *ix, MDB_txn *txn, uint64_t id);

/* Finds the id of the series with canonical labels enc; TSDB_ENOTFOUND. */
int tsdb_index_find(const struct tsdb_index *ix, MDB_txn *txn,
                    const uint8_t *enc, size_t len, uint64_t *id);

/* Canonical labels of id, borrowed (see above); TSDB_ENOTFOUND. */
int tsdb_index_labels(const struct tsdb_index *ix, MDB_txn *txn, uint64_t id,
                      const uint8_t **enc, size_t *len);

/*
 * Ids of the series that satisfy every matcher, ascending, into out
 * (caller-owned, initially zeroed).  With n == 0, every series.  Matchers
 * that match "" also accept series lacking the label.
 */
int tsdb_index_select(const struct tsdb_index *ix, MDB_txn *txn,
                      struct tsdb_matcher *ms, size_t n, struct tsdb_ids *out);

/* Called per name or value, in ascending byte order; a non-zero return
 * stops the walk and is returned by the walker. */
typedef int (*tsdb_string_fn)(void *ctx, const char *s, size_t len);

/*
 * Every label name in use (only among ids when ids is not NULL), each once,
 * sorted.  Without ids this reads one postings key per distinct name.
 */
int tsdb_index_label_names(const struct tsdb_index *ix, MDB_txn *txn,
                           const struct tsdb_ids *ids, tsdb_string_fn fn,
                           void *ctx);

/* Every value of label name (only among ids when not NULL), sorted. */
int tsdb_index_label_values(const struct tsdb_index *ix, MDB_txn *txn,
                            const char *name, const struct tsdb_ids *ids,
                            tsdb_string_fn fn, void *ctx);

/* Maps an LMDB return code to a TSDB_E* code (MDB_SUCCESS -> TSDB_OK). */
int tsdb_mdb_error(int rc);

#endif
