/*
 * The write-ahead log: numbered segment files in DIR/wal, each a header and
 * a sequence of checksummed records (storage-format.md section "WAL").
 * A commit hands complete records to tsdb_wal_write, which issues one
 * write(2): once it returns, the records survive kill -9 of the process.
 * With sync_ms == 0 it also fdatasyncs before returning; otherwise a
 * background thread fdatasyncs the open segment every sync_ms.
 *
 * Threads: tsdb_wal_write and tsdb_wal_rotate are called by one thread at a
 * time (the head's commit lock); the syncer thread is internal.
 */
#ifndef TSDB_WAL_H
#define TSDB_WAL_H

#include <stddef.h>
#include <stdint.h>

/* Records are collected in a growable buffer before one write. */
struct tsdb_wal_buf {
    uint8_t *p;
    size_t len;
    size_t cap;
    size_t rec; /* offset of the record being built */
};

/* Empties b, keeping its memory. */
void tsdb_wal_buf_reset(struct tsdb_wal_buf *b);
void tsdb_wal_buf_release(struct tsdb_wal_buf *b);

/* Makes room for need more bytes; TSDB_OK or TSDB_ENOMEM. */
int tsdb_wal_buf_reserve(struct tsdb_wal_buf *b, size_t need);

/* Starts a record of type; payload bytes are then appended at p + len. */
int tsdb_wal_buf_begin(struct tsdb_wal_buf *b, uint8_t type);

/* Closes the record: fills its length and checksum. */
void tsdb_wal_buf_end(struct tsdb_wal_buf *b);

/* Payload bytes of the record being built so far. */
size_t tsdb_wal_buf_payload(const struct tsdb_wal_buf *b);

struct tsdb_wal;

/*
 * Opens DIR (created if missing) for appending, in a new segment numbered
 * seq.  Returns TSDB_OK with *out (close with tsdb_wal_close), TSDB_EIO.
 */
int tsdb_wal_open(const char *dir, uint64_t seq, int sync_ms,
                  size_t segment_max, struct tsdb_wal **out);

/*
 * Appends len bytes of complete records.  Rotates to a new segment first if
 * the current one would pass segment_max.  TSDB_OK or TSDB_EIO (the WAL is
 * then unusable: every later write fails too, so no commit is acknowledged
 * after a lost write).
 */
int tsdb_wal_write(struct tsdb_wal *w, const uint8_t *buf, size_t len);

/* Closes the current segment (synced) and starts the next; *closed gets
 * the number of the segment just closed. */
int tsdb_wal_rotate(struct tsdb_wal *w, uint64_t *closed);

/* fdatasync of the current segment. */
int tsdb_wal_sync(struct tsdb_wal *w);

/* Deletes segments numbered <= upto. */
int tsdb_wal_remove_upto(struct tsdb_wal *w, uint64_t upto);

/* Bytes in all segments. */
uint64_t tsdb_wal_size(struct tsdb_wal *w);

/* Stops the syncer, syncs and closes.  NULL is a no-op. */
void tsdb_wal_close(struct tsdb_wal *w);

/* Called per valid record during replay; non-zero stops the replay. */
typedef int (*tsdb_wal_record_fn)(void *ctx, uint8_t type,
                                  const uint8_t *payload, size_t len);

struct tsdb_wal_replay_stats {
    uint64_t segments;
    uint64_t records;
    uint64_t bytes;
    uint64_t torn_bytes; /* cut from the end of the last segment */
    uint64_t last_seq;   /* highest segment number seen, 0 if none */
};

/*
 * Reads every segment in DIR in order and calls fn per record.  A record
 * that is cut short or fails its checksum in the last segment is a torn
 * write from a crash: the segment is truncated there and replay ends
 * normally.  Anywhere else it is TSDB_ECORRUPT (the log names segment and
 * offset).  A missing DIR is an empty log.
 */
int tsdb_wal_replay(const char *dir, tsdb_wal_record_fn fn, void *ctx,
                    struct tsdb_wal_replay_stats *st);

#endif
