/*
 * Verifies a database against the invariants of storage-format.md section
 * "Invariants": every chunk's checksum and decoding, chunk order and
 * overlap per series, the index's three databases agreeing with each
 * other, head snapshots.  Used by tools/tsdb-check and by the tests after
 * every mutation they make.
 */
#ifndef TSDB_CHECK_H
#define TSDB_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include "tsdb/db.h"

#define TSDB_CHECK_MAX_PROBLEMS 16

struct tsdb_check_report {
    uint64_t series;
    uint64_t chunks;
    uint64_t samples;     /* in stored chunks */
    uint64_t snapshots;   /* head snapshots */
    uint64_t chunk_bytes; /* values of stored chunks */
    uint64_t problems;
    /* The first problems, as text: what is wrong and where. */
    char text[TSDB_CHECK_MAX_PROBLEMS][160];
};

/*
 * Reads the whole database in one read snapshot.  Returns TSDB_OK when it
 * could read everything (the report says whether problems were found),
 * or TSDB_ENOMEM/TSDB_EIO.
 */
int tsdb_check(struct tsdb *db, struct tsdb_check_report *r);

#endif
