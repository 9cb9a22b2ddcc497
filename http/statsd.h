/*
 * The StatsD service as the server runs it: the flush thread that calls
 * statsd_flush through a sink, the counts of lines taken by HTTP and UDP,
 * the JSON answer of POST /api/v1/statsd, and the StatsD families of
 * /metrics.  Layer: http/, over statsd/statsd.h; the route (routes.c) and
 * the UDP reader (statsd/udp.h, through http_statsd_on_udp) feed it.
 *
 * Flushes: the thread wakes just after each multiple of the flush
 * interval, and at least every tick_ms, and calls statsd_flush with the
 * wall-clock time; statsd_flush decides whether a flush is due.  A flush
 * is logged (one line) only when it is notable: it failed, it took
 * slow_ms or more, or the storage refused series or samples of it.  Such
 * lines come at most once a minute; the ones held back are counted in the
 * next.
 *
 * Lines are counted by source (http, udp) and by reason of rejection:
 *   parse_error    the line breaks the line format (statsd/parse.h)
 *   type_conflict  the series exists with another type
 *   limit          an aggregation limit (series, set members, waiting
 *                  timestamped lines, lines per body)
 *   unavailable    the whole body was refused: the journal cannot be
 *                  written, or memory ran out
 *   other          a line refused for lack of memory, or a rejection
 *                  past the reasons a body itemises (see the LIMIT below)
 *
 * LIMIT: the reason of a rejected line is read from its message, and only
 * the first STATSD_MAX_REJECTS rejections of a body carry one.  Why:
 * struct statsd_result holds reasons as text and keeps at most that many.
 * Matters for bodies with more bad lines than that.  Behaviour: the rest
 * count as reason "other"; accepted and rejected totals stay exact.
 *
 * Threads: record and render from any thread; start, stop and free from
 * one.
 */
#ifndef HTTP_STATSD_H
#define HTTP_STATSD_H

#include <stdatomic.h>
#include <stdint.h>

#include "http/buf.h"
#include "statsd/sink.h"
#include "statsd/statsd.h"

enum http_statsd_source {
    HTTP_STATSD_HTTP, /* POST /api/v1/statsd */
    HTTP_STATSD_UDP,  /* statsd/udp.h */
    HTTP_STATSD_NSOURCES
};

enum http_statsd_reason {
    HTTP_STATSD_PARSE,
    HTTP_STATSD_TYPE_CONFLICT,
    HTTP_STATSD_LIMIT,
    HTTP_STATSD_UNAVAILABLE,
    HTTP_STATSD_OTHER,
    HTTP_STATSD_NREASONS
};

/* The reason's label value ("parse_error", ...). */
const char *http_statsd_reason_name(enum http_statsd_reason r);

/* The reason of one rejection message of struct statsd_reject.  Pure. */
enum http_statsd_reason http_statsd_reason_of(const char *msg);

/*
 * Appends the "data" object of the answer for res:
 * {"lines":N,"accepted":N,"rejected":N,
 *  "rejectedByReason":{"parse_error":N,"type_conflict":N,"limit":N,
 *                      "unavailable":N,"other":N},
 *  "errors":[{"line":N,"reason":"parse_error","error":"line N: ..."}],
 *  "errorsNotShown":N}
 * with errors in line order.  rc is statsd_ingest's code: when it is not
 * TSDB_OK every line counts as rejected for "unavailable".
 */
void http_statsd_json(int rc, const struct statsd_result *res,
                      struct http_buf *out);

struct http_statsd_options {
    int64_t flush_interval_ms; /* as statsd was opened with */
    int64_t tick_ms;           /* longest sleep between flush calls: 1000 */
    unsigned slow_ms;          /* log flushes that take longer: 1000 */
};

/* Fills o with the defaults: flush_interval 10 s, tick 1 s, slow 1 s. */
void http_statsd_options_init(struct http_statsd_options *o);

struct http_statsd;

/*
 * Starts the flush thread for sd.  sink receives the flushes; t, if not
 * NULL, is the statsd_tsdb_sink behind sink, whose counts of refused
 * series and samples are logged and shown.  sd, sink and t are borrowed
 * until http_statsd_free.  Returns TSDB_OK with *out, TSDB_EINVAL for an
 * interval or tick <= 0, TSDB_ENOMEM, or TSDB_EIO if the thread cannot
 * start.
 */
int http_statsd_start(struct statsd *sd, const struct statsd_sink *sink,
                      struct statsd_tsdb_sink *t,
                      const struct http_statsd_options *o,
                      struct http_statsd **out);

/* The StatsD handle, for statsd_ingest; borrowed. */
struct statsd *http_statsd_handle(struct http_statsd *s);

/* Counts one body's lines: rc and res as statsd_ingest gave them (res
 * may be NULL when rc is not TSDB_OK).  Any thread. */
void http_statsd_record(struct http_statsd *s, enum http_statsd_source src,
                        int rc, const struct statsd_result *res);

/* http_statsd_record for the UDP reader (statsd_udp_options.on_body, with
 * ctx the struct http_statsd). */
void http_statsd_on_udp(void *ctx, int rc, const struct statsd_result *res);

/*
 * Stops the flush thread (waiting for a flush in progress), then calls
 * statsd_flush once more at the current time, as shutdown wants: what is
 * due is stored, the rest stays in the journal for the next start.
 * Returns that flush's code.  Call once, after the HTTP server and the
 * UDP reader stopped.
 */
int http_statsd_stop(struct http_statsd *s);

/* Frees s (stopping the thread if http_statsd_stop was not called, without
 * the last flush).  NULL is a no-op. */
void http_statsd_free(struct http_statsd *s);

/*
 * Appends the StatsD families to a /metrics page (every name starts
 * tsdb_statsd_):
 *   bodies_total{endpoint}                 bodies (HTTP) and datagrams (UDP)
 *   lines_accepted_total{endpoint}
 *   lines_rejected_total{endpoint,reason}
 *   flushes_total, flush_errors_total      statsd_stats
 *   flush_duration_seconds                 histogram, as the HTTP one
 *   samples_emitted_total                  stale markers included
 *   samples_stored_total{result}           "accepted" or "duplicate"
 *   samples_rejected_total{reason}         by the storage's write rules
 *   series_refused_total                   label sets the storage refused
 *   series, journal_bytes, checkpoints_total, stuck
 * Returns out's sticky error.
 */
int http_statsd_render(struct http_statsd *s, struct http_buf *out);

#endif
