/*
 * Chunk entries: how one chunk of one series is stored (storage-format.md
 * section "Chunk entry").  In the `chunks` database the key is the series
 * id and the chunk's first timestamp (so a series' chunks sort by time and
 * a range read is one cursor scan) and the value is the entry: the first
 * timestamp again, a header giving the last timestamp and the sample count
 * (so a reader skips a chunk without decoding it), a CRC-32C over series
 * id and entry (bit flips and misplaced entries are caught), and the
 * encoded samples.  The `head` database stores open-chunk snapshots as
 * entries too.
 */
#ifndef TSDB_CHUNK_H
#define TSDB_CHUNK_H

#include <stddef.h>
#include <stdint.h>

/* The largest entry.  On 4096-byte pages LMDB moves a node bigger than 2040
 * bytes (8-byte node header, key, value) to overflow pages rounded up to
 * whole pages, wasting most of a page per chunk; with the 16-byte key that
 * leaves 2016.  The flusher merges chunks up to this size and head.c splits
 * sealed chunks to fit it. */
#define TSDB_CHUNK_ENTRY_MAX 2016
/* Key of a stored chunk: series id (u64 BE), first timestamp (i64 key). */
#define TSDB_CHUNK_KEY_LEN 16

/* Bytes before the payload: first timestamp, encoding, CRC, and the two
 * varints at their largest. */
#define TSDB_CHUNK_HEADER_MAX (8 + 1 + 4 + 3 + 10)

/* A parsed entry; payload is borrowed from the bytes it was parsed from. */
struct tsdb_chunk {
    uint64_t sid;
    int64_t mint;
    int64_t maxt;
    uint32_t count;
    uint8_t enc; /* TSDB_CHUNK_ENC_* */
    const uint8_t *payload;
    size_t payload_len;
};

/*
 * Builds the entry of a packed chunk (pack.c) holding ts/vs[0..n) of
 * series sid into entry[0..cap).  Returns TSDB_OK with *len, TSDB_EFULL
 * if it does not fit, TSDB_EINVAL for n == 0, n > GORILLA_MAX_SAMPLES or a
 * span that does not fit in int64.
 */
int tsdb_chunk_build(uint64_t sid, const int64_t *ts, const double *vs,
                     uint32_t n, uint8_t *entry, size_t cap, size_t *len);

/*
 * Builds an entry around an already encoded payload of encoding enc
 * (n samples from mint to maxt).  Same returns as tsdb_chunk_build.
 */
int tsdb_chunk_build_raw(uint64_t sid, uint8_t enc, int64_t mint, int64_t maxt,
                         uint32_t n, const uint8_t *payload, size_t plen,
                         uint8_t *entry, size_t cap, size_t *len);

/*
 * Parses and verifies the entry of series sid.  Returns TSDB_OK, or
 * TSDB_ECORRUPT for a short entry, unknown encoding, bad varints or a
 * checksum mismatch.
 */
int tsdb_chunk_parse(uint64_t sid, const uint8_t *entry, size_t len,
                     struct tsdb_chunk *c);

/* The first timestamp of an entry of at least 8 bytes, without checks. */
int64_t tsdb_chunk_entry_mint(const uint8_t *entry);

/* Writes the `chunks` key of the chunk of series sid starting at mint. */
void tsdb_chunk_key(uint8_t *key, uint64_t sid, int64_t mint);

/* Decodes c's count samples into ts/vs (room for c->count each), and
 * checks them against the header.  TSDB_OK or TSDB_ECORRUPT. */
int tsdb_chunk_decode(const struct tsdb_chunk *c, int64_t *ts, double *vs);

#endif
