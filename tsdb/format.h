/*
 * On-disk codes and constants.  These values are the format: they never
 * change meaning, and each names the storage-format.md section that defines
 * it.  In-memory enums stay elsewhere.
 */
#ifndef TSDB_FORMAT_H
#define TSDB_FORMAT_H

/* "Scope and versioning": the major version a reader must understand. */
#define TSDB_FORMAT_VERSION 1

/* "LMDB databases": named databases in data.mdb. */
#define TSDB_DB_META   "meta"
#define TSDB_DB_CHUNKS "chunks"
#define TSDB_DB_HEAD   "head"
#define TSDB_DB_TIERS  "tiers" /* "tiers" */

/* "meta": keys of the meta database. */
#define TSDB_META_VERSION "format_version"

/* "Chunk entry": encoding byte of an entry. */
#define TSDB_CHUNK_ENC_GORILLA 1
#define TSDB_CHUNK_ENC_PACK    2

/* "WAL segment": file header and record types. */
#define TSDB_WAL_MAGIC             "TSDBWAL1"
#define TSDB_WAL_HEADER_LEN        16
#define TSDB_WAL_RECORD_HEADER_LEN 8
#define TSDB_WAL_REC_SERIES        1
#define TSDB_WAL_REC_SAMPLES       2
/* Largest record payload (its length field is 24 bits). */
#define TSDB_WAL_RECORD_MAX ((1u << 24) - 1)

#endif
