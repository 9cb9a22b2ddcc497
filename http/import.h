/*
 * Bulk import (POST /api/v1/import/prometheus): a request body in the
 * Prometheus text format or OpenMetrics, fed piece by piece as it arrives,
 * parsed by expfmt.h and appended through one tsdb appender.
 *
 * Memory is bounded whatever the body's size: the parser holds at most one
 * line (EXPFMT_MAX_LINE), the appender at most one batch of samples, and
 * the error list at most HTTP_IMPORT_MAX_ERRORS details (the counts go on).
 *
 * Rules (design.md "Writes", protocols.md section 8):
 * 1. A bad line is reported (line, column, what is wrong) and skipped; the
 *    valid lines around it are stored.
 * 2. A sample without a timestamp is stored at the request's arrival time.
 * 3. Samples are committed every `batch` samples and at the end.  A commit
 *    that fails (I/O, map full, shutdown) stops the import: the feed and
 *    finish calls return its code, and samples of earlier batches stay
 *    stored (each commit is durable on its own).
 * 4. http_import_finish returns TSDB_OK only after the last commit did:
 *    from then on every sample counted as accepted survives kill -9.
 * 5. OpenMetrics input must end with "# EOF"; a missing one, or data after
 *    it, is a parse error like any other.  Samples before it are kept:
 *    bounded memory means they are committed before the end is seen.
 *
 * Counting: every sample the parser delivers ends in exactly one of
 * accepted, duplicates (same timestamp and value as stored: a no-op) or a
 * rejected reason; a line that does not parse counts as parse_error.
 *
 * LIMIT: samples refused at commit (out of order, conflicting, out of
 * bounds) are counted per batch, not per line: the storage judges a whole
 * batch and returns counts.  Their error detail names the batch's line
 * range; --import-batch 1 makes it exact, at one WAL write per sample.
 *
 * LIMIT: bodies must be uncompressed (the route answers 415 to a
 * Content-Encoding), and VictoriaMetrics' extra_label and timestamp
 * parameters are not read.
 *
 * Threads: an import belongs to one thread at a time (MHD may call the
 * feed from any of its threads, one at a time per connection).
 */
#ifndef HTTP_IMPORT_H
#define HTTP_IMPORT_H

#include <stddef.h>
#include <stdint.h>

#include "http/buf.h"
#include "http/expfmt.h"
#include "http/metrics.h"
#include "tsdb/db.h"

/* Error details kept per request; past it only counts grow. */
#define HTTP_IMPORT_MAX_ERRORS 100
/* Largest batch: the appender buffers at most 16 Mi samples, and a batch
 * of a million already costs 24 MB per running import. */
#define HTTP_IMPORT_MAX_BATCH 1000000

struct http_import;

/*
 * Starts an import into db of input in format; samples without a timestamp
 * get now_ms; commits every batch samples (1..HTTP_IMPORT_MAX_BATCH).
 * Returns the import (free with http_import_free), or NULL on OOM.
 */
struct http_import *http_import_new(struct tsdb *db, enum expfmt_format format,
                                    int64_t now_ms, size_t batch);

/*
 * Parses and stores len bytes of the body, cut anywhere.  Returns TSDB_OK
 * (bad lines included), or the storage error that stopped the import
 * (TSDB_EIO, TSDB_ENOMEM, TSDB_EMAPFULL, TSDB_ECLOSED), also on every
 * later call.
 */
int http_import_feed(struct http_import *im, const void *buf, size_t len);

/*
 * Ends the body: parses a last unterminated line, checks "# EOF" for
 * OpenMetrics, commits what is pending.  Returns TSDB_OK once every
 * accepted sample is durable, else the error that stopped the import.
 */
int http_import_finish(struct http_import *im);

/* Drops samples not yet committed (the body was refused part way). */
void http_import_abort(struct http_import *im);

/* Counts so far; borrowed until the import is freed. */
const struct http_ingest_counts *
http_import_counts(const struct http_import *im);

/* Lines and samples rejected so far, all reasons. */
uint64_t http_import_rejected(const struct http_import *im);

/*
 * Appends the result as a JSON object (the "data" of the answer):
 * {"format":"prometheus"|"openmetrics","lines":N,"samples":N,
 *  "accepted":N,"duplicates":N,"rejected":N,
 *  "rejectedByReason":{"parse_error":N,"invalid_series":N,"limit":N,
 *                      "out_of_order":N,"duplicate_conflict":N,
 *                      "out_of_bounds":N},
 *  "errors":[{"line":N,"column":N,"reason":"...","error":"..."}],
 *  "errorsNotShown":N}
 * "column" is 0 for errors that concern a whole line or a batch
 * (a commit's rejections name the batch's first line and its range).
 */
void http_import_json(const struct http_import *im, struct http_buf *out);

/* One line for the log: "N samples accepted, N rejected (...)". */
void http_import_summary(const struct http_import *im, char *out, size_t cap);

/* Rolls back what is pending and frees im.  NULL is a no-op. */
void http_import_free(struct http_import *im);

#endif
