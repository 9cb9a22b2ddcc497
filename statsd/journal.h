/*
 * The StatsD journal's records: what statsd_ingest appends to
 * DIR/statsd/journal before it acknowledges a body, and the flush markers
 * that order flushes among those bodies.  The segments themselves are
 * tsdb/wal.c's (storage-format.md section 7: header, checksummed
 * records); only the record types and payloads below are ours, defined
 * byte by byte in storage-format.md section 13.2.  Pure code: encoding and
 * decoding only.
 *
 * LIMIT: these record codes live here rather than in tsdb/format.h, which
 * belongs to the storage engine.  Why: the statsd folder is separate from
 * wal/ and never read by the engine.  Behaviour: none; move them there if
 * a tool ever reads both.
 */
#ifndef STATSD_JOURNAL_H
#define STATSD_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include "statsd/parse.h"
#include "tsdb/wal.h"

/* Record types in DIR/statsd/journal (storage-format.md section 13.2). */
#define STATSD_REC_BATCH 0x10 /* arrival time, then line elements */
#define STATSD_REC_FLUSH 0x11 /* flush marker: sequence and time */

/* Record types in DIR/statsd/snapshot ("Snapshot"); encoded by
 * aggregate.c, which owns the state they describe. */
#define STATSD_REC_SNAP_HEAD    0x20
#define STATSD_REC_SNAP_ENTRIES 0x21
#define STATSD_REC_SNAP_END     0x22

/* Type byte of a line element (never renumber: replay reads old ones). */
#define STATSD_JT_COUNTER      1
#define STATSD_JT_GAUGE        2
#define STATSD_JT_TIMER        3
#define STATSD_JT_HISTOGRAM    4
#define STATSD_JT_DISTRIBUTION 5
#define STATSD_JT_SET          6

/* Kind byte of a snapshot entry. */
#define STATSD_SK_COUNTER   1
#define STATSD_SK_GAUGE     2
#define STATSD_SK_TIMER     3
#define STATSD_SK_HISTOGRAM 4 /* h and d lines */
#define STATSD_SK_SET       5

/* Flag bits of a line element. */
#define STATSD_JF_TIME 0x01 /* a timestamp follows the rate */

/* Bytes of a batch record's fixed start (the arrival time). */
#define STATSD_BATCH_HEADER_LEN 8
/* Bytes of a flush marker's payload. */
#define STATSD_FLUSH_LEN 16

/*
 * Starts a batch record in b for lines that arrived at arrival_ms.
 * TSDB_OK or TSDB_ENOMEM.
 */
int statsd_journal_begin_batch(struct tsdb_wal_buf *b, int64_t arrival_ms);

/*
 * Appends line l as one element of the batch record being built in b.
 * TSDB_OK or TSDB_ENOMEM.
 */
int statsd_journal_put_line(struct tsdb_wal_buf *b,
                            const struct statsd_line *l);

/* Appends a whole flush marker record (sequence seq, flush time t). */
int statsd_journal_put_flush(struct tsdb_wal_buf *b, uint64_t seq, int64_t t);

/* Decodes a flush marker payload.  TSDB_OK or TSDB_ECORRUPT. */
int statsd_journal_get_flush(const uint8_t *p, size_t len, uint64_t *seq,
                             int64_t *t);

/*
 * Scratch space that one decoded element points into: the line, its tags
 * and values.  Strings point into the record's payload.
 */
struct statsd_journal_line {
    struct statsd_line line;
    struct statsd_tag tags[STATSD_MAX_TAGS];
    struct statsd_value values[STATSD_MAX_VALUES];
};

/*
 * Reads a batch record's arrival time and sets *p past it.  TSDB_OK or
 * TSDB_ECORRUPT (payload too short).
 */
int statsd_journal_get_batch(const uint8_t **p, const uint8_t *end,
                             int64_t *arrival_ms);

/*
 * Decodes the element at *p (before end) into out and advances *p.
 * out->line and its strings are valid while out and the payload are.
 * Returns TSDB_OK or TSDB_ECORRUPT (unknown type or flag, a length past
 * the end or past a STATSD_MAX_* bound, a rate outside (0, 1]).
 */
int statsd_journal_get_line(const uint8_t **p, const uint8_t *end,
                            struct statsd_journal_line *out);

#endif
