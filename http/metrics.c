/*
 * The server's own metrics: atomic counters and the text page; see
 * metrics.h.  Layer: http/ over tsdb/db.h (tsdb_stats_get).
 *
 * Invariants:
 * 1. buckets[ep][i] counts requests whose duration fell in bucket i alone
 *    (not cumulative); the page sums them, so that a bucket, the +Inf
 *    bucket and _count always agree within one scrape.
 * 2. Counters only grow; in_flight goes up at a request's first call and
 *    down at its completion.
 */
#include "http/metrics.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "http/numfmt.h"
#include "http/queryapi.h"
#include "tsdb/guard.h"

static const double bucket_bounds[HTTP_METRICS_NBUCKETS - 1] = {
    .001, .005, .01, .05, .1, .5, 1, 5, 10};
static const unsigned codes[HTTP_METRICS_NCODES - 1] = HTTP_METRICS_CODES;

/* Which endpoints read lines and store samples themselves. */
static bool ingests(enum http_endpoint ep)
{
    return ep == HTTP_EP_IMPORT;
}

void http_metrics_init(struct http_metrics *m)
{
    memset(m, 0, sizeof(*m));
}

const char *http_endpoint_name(enum http_endpoint ep)
{
    static const char *const names[HTTP_EP_COUNT] = {
        "metrics",     "healthy", "ready",     "import",
        "export",      "statsd",  "status",    "query",
        "query_range", "series",  "labels",    "label_values",
        "api_meta",    "rollups", "detectors", "other"};

    return (unsigned)ep < HTTP_EP_COUNT ? names[ep] : "other";
}

const char *http_reject_name(enum http_reject r)
{
    static const char *const names[HTTP_REJ_COUNT] = {
        "parse_error",  "invalid_series",     "limit",
        "out_of_order", "duplicate_conflict", "out_of_bounds"};

    return (unsigned)r < HTTP_REJ_COUNT ? names[r] : "other";
}

static void add(atomic_uint_fast64_t *c, uint64_t n)
{
    if (n)
        atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static uint64_t get(atomic_uint_fast64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

void http_metrics_request(struct http_metrics *m, enum http_endpoint ep,
                          unsigned code, uint64_t duration_us)
{
    size_t slot = HTTP_METRICS_NCODES - 1, b = 0;
    double secs = (double)duration_us / 1e6;

    for (size_t i = 0; i < HTTP_METRICS_NCODES - 1; i++)
        if (codes[i] == code)
            slot = i;
    while (b < HTTP_METRICS_NBUCKETS - 1 && secs > bucket_bounds[b])
        b++;
    add(&m->requests[ep][slot], 1);
    add(&m->buckets[ep][b], 1);
    add(&m->duration_us[ep], duration_us);
}

void http_metrics_ingest(struct http_metrics *m, enum http_endpoint ep,
                         const struct http_ingest_counts *c)
{
    add(&m->lines[ep], c->lines);
    add(&m->written[ep], c->written);
    add(&m->duplicates[ep], c->duplicates);
    for (size_t r = 0; r < HTTP_REJ_COUNT; r++) {
        add(&m->lines_rejected[ep][r], c->lines_rejected[r]);
        add(&m->samples_rejected[ep][r], c->samples_rejected[r]);
    }
}

void http_metrics_export(struct http_metrics *m, uint64_t series,
                         uint64_t samples, uint64_t stale)
{
    add(&m->export_series, series);
    add(&m->export_samples, samples);
    add(&m->export_stale, stale);
}

void http_metrics_family(struct http_buf *b, const char *name, const char *type,
                         const char *help)
{
    http_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void http_metrics_single(struct http_buf *b, const char *name, const char *type,
                         const char *help, uint64_t v)
{
    http_metrics_family(b, name, type, help);
    http_buf_printf(b, "%s %" PRIu64 "\n", name, v);
}

static void render_requests(struct http_metrics *m, struct http_buf *b)
{
    http_metrics_family(b, "tsdb_http_requests_total", "counter",
                        "HTTP requests answered, by endpoint and status code.");
    for (int ep = 0; ep < HTTP_EP_COUNT; ep++) {
        for (size_t i = 0; i < HTTP_METRICS_NCODES; i++) {
            uint64_t n = get(&m->requests[ep][i]);
            char code[16];

            if (n == 0)
                continue;
            if (i < HTTP_METRICS_NCODES - 1)
                snprintf(code, sizeof(code), "%u", codes[i]);
            else
                snprintf(code, sizeof(code), "other");
            http_buf_printf(b,
                            "tsdb_http_requests_total{endpoint=\"%s\","
                            "code=\"%s\"} %" PRIu64 "\n",
                            http_endpoint_name(ep), code, n);
        }
    }
}

static void render_durations(struct http_metrics *m, struct http_buf *b)
{
    const char *name = "tsdb_http_request_duration_seconds";

    http_metrics_family(b, name, "histogram",
                        "Time from a request's headers to its last byte sent.");
    for (int ep = 0; ep < HTTP_EP_COUNT; ep++) {
        const char *epn = http_endpoint_name(ep);
        uint64_t cum = 0;
        char num[HTTP_NUM_MAX];

        for (size_t i = 0; i < HTTP_METRICS_NBUCKETS; i++) {
            cum += get(&m->buckets[ep][i]);
            if (i < HTTP_METRICS_NBUCKETS - 1)
                http_fmt_value(num, bucket_bounds[i]);
            else
                strcpy(num, "+Inf");
            http_buf_printf(
                b, "%s_bucket{endpoint=\"%s\",le=\"%s\"} %" PRIu64 "\n", name,
                epn, num, cum);
        }
        http_fmt_value(num, (double)get(&m->duration_us[ep]) / 1e6);
        http_buf_printf(b, "%s_sum{endpoint=\"%s\"} %s\n", name, epn, num);
        http_buf_printf(b, "%s_count{endpoint=\"%s\"} %" PRIu64 "\n", name, epn,
                        cum);
    }
}

/* A counter family over ingesting endpoints, optionally by reason. */
static void render_ingest(struct http_buf *b, const char *name,
                          const char *help, atomic_uint_fast64_t *plain,
                          atomic_uint_fast64_t (*by)[HTTP_REJ_COUNT],
                          int first_reason, int last_reason)
{
    http_metrics_family(b, name, "counter", help);
    for (int ep = 0; ep < HTTP_EP_COUNT; ep++) {
        if (!ingests(ep))
            continue;
        if (plain) {
            http_buf_printf(b, "%s{endpoint=\"%s\"} %" PRIu64 "\n", name,
                            http_endpoint_name(ep), get(&plain[ep]));
            continue;
        }
        for (int r = first_reason; r <= last_reason; r++)
            http_buf_printf(
                b, "%s{endpoint=\"%s\",reason=\"%s\"} %" PRIu64 "\n", name,
                http_endpoint_name(ep), http_reject_name(r), get(&by[ep][r]));
    }
}

static void render_writes(struct http_metrics *m, struct http_buf *b)
{
    render_ingest(b, "tsdb_ingest_lines_total",
                  "Lines read by write endpoints, blank and comment lines "
                  "included.",
                  m->lines, NULL, 0, 0);
    render_ingest(b, "tsdb_ingest_lines_rejected_total",
                  "Lines refused as a whole, by reason.", NULL,
                  m->lines_rejected, HTTP_REJ_PARSE, HTTP_REJ_LIMIT);
    render_ingest(b, "tsdb_ingest_samples_written_total",
                  "Samples stored by write endpoints.", m->written, NULL, 0, 0);
    render_ingest(b, "tsdb_ingest_samples_duplicate_total",
                  "Samples equal to one already stored (a no-op).",
                  m->duplicates, NULL, 0, 0);
    render_ingest(b, "tsdb_ingest_samples_rejected_total",
                  "Samples not stored, by reason.", NULL, m->samples_rejected,
                  HTTP_REJ_INVALID_SERIES, HTTP_REJ_OUT_OF_BOUNDS);
    http_metrics_single(b, "tsdb_export_series_total", "counter",
                        "Series streamed by /api/v1/export.",
                        get(&m->export_series));
    http_metrics_single(b, "tsdb_export_samples_total", "counter",
                        "Samples streamed by /api/v1/export.",
                        get(&m->export_samples));
    http_metrics_single(
        b, "tsdb_export_stale_markers_skipped_total", "counter",
        "Stale markers left out of exports (OpenMetrics cannot carry "
        "them).",
        get(&m->export_stale));
}

/* The storage flusher's transactions as a histogram (cumulative here). */
static void render_flushes(struct http_buf *b, const struct tsdb_stats *st)
{
    char num[HTTP_NUM_MAX];
    uint64_t cum = 0;

    http_metrics_family(
        b, "tsdb_flush_duration_seconds", "histogram",
        "Storage flusher transactions (packing sealed chunks and writing "
        "them to LMDB), by duration.");
    for (int i = 0; i < TSDB_FLUSH_NBUCKETS; i++) {
        cum += st->flush_buckets[i];
        if (i < TSDB_FLUSH_NBUCKETS - 1)
            http_fmt_value(num, tsdb_flush_bounds[i]);
        http_buf_printf(b,
                        "tsdb_flush_duration_seconds_bucket{le=\"%s\"} "
                        "%" PRIu64 "\n",
                        i < TSDB_FLUSH_NBUCKETS - 1 ? num : "+Inf", cum);
    }
    http_fmt_value(num, st->flush_seconds);
    http_buf_printf(b,
                    "tsdb_flush_duration_seconds_sum %s\n"
                    "tsdb_flush_duration_seconds_count %" PRIu64 "\n",
                    num, st->flushes);
}

static void render_storage(struct tsdb *db, struct http_buf *b)
{
    struct tsdb_stats st;
    uint64_t free_bytes;
    char newest[HTTP_NUM_MAX];

    tsdb_stats_get(db, &st);
    free_bytes = st.lmdb_file_bytes > st.lmdb_used_bytes
                     ? st.lmdb_file_bytes - st.lmdb_used_bytes
                     : 0;
    http_metrics_single(
        b, "tsdb_head_series", "gauge",
        "Series held in memory (written to since the server started, or "
        "recovered from the WAL).",
        st.series);
    http_metrics_single(b, "tsdb_samples_appended_total", "counter",
                        "Samples accepted by commits, every endpoint.",
                        st.samples_appended);
    http_metrics_family(
        b, "tsdb_samples_rejected_total", "counter",
        "Samples refused by commits, by reason, every endpoint.");
    http_buf_printf(b,
                    "tsdb_samples_rejected_total{reason=\"out_of_order\"} "
                    "%" PRIu64 "\n"
                    "tsdb_samples_rejected_total{reason="
                    "\"duplicate_conflict\"} %" PRIu64 "\n"
                    "tsdb_samples_rejected_total{reason=\"out_of_bounds\"} "
                    "%" PRIu64 "\n",
                    st.rejected_out_of_order, st.rejected_duplicate_conflict,
                    st.rejected_out_of_bounds);
    http_metrics_single(b, "tsdb_series", "gauge",
                        "Series in the index, stored or in memory.",
                        st.series_total);
    http_metrics_single(b, "tsdb_chunks_sealed_total", "counter",
                        "Open chunks cut and sealed.", st.chunks_sealed);
    render_flushes(b, &st);
    http_metrics_single(b, "tsdb_chunks_written_total", "counter",
                        "Chunk writes to LMDB by the flusher, merges included.",
                        st.chunks_written);
    http_metrics_single(b, "tsdb_chunks_deleted_total", "counter",
                        "Chunks deleted by retention.", st.chunks_deleted);
    http_metrics_single(b, "tsdb_chunk_bytes", "gauge",
                        "Bytes of stored chunk values.", st.chunk_bytes);
    http_metrics_single(b, "tsdb_wal_bytes", "gauge",
                        "Bytes in write-ahead log segments.", st.wal_bytes);
    http_metrics_single(b, "tsdb_lmdb_file_bytes", "gauge",
                        "Size of the LMDB data file.", st.lmdb_file_bytes);
    http_metrics_single(b, "tsdb_lmdb_used_bytes", "gauge",
                        "LMDB pages in use times the page size.",
                        st.lmdb_used_bytes);
    http_metrics_single(
        b, "tsdb_lmdb_free_bytes", "gauge",
        "LMDB file bytes not in use (free pages and the unused tail).",
        free_bytes);
    http_metrics_family(b, "tsdb_head_max_time_seconds", "gauge",
                        "Timestamp of the newest sample stored.");
    http_fmt_seconds(newest, st.max_time == INT64_MIN ? 0 : st.max_time);
    http_buf_printf(b, "tsdb_head_max_time_seconds %s\n", newest);
}

/* Appends s as a label value: backslash, quote and newline escaped. */
static void label_value(struct http_buf *b, const char *s)
{
    const char *run = s;

    for (; *s; s++) {
        const char *esc = *s == '\\'   ? "\\\\"
                          : *s == '"'  ? "\\\""
                          : *s == '\n' ? "\\n"
                                       : NULL;
        if (!esc)
            continue;
        http_buf_add(b, run, (size_t)(s - run));
        http_buf_puts(b, esc);
        run = s + 1;
    }
    http_buf_add(b, run, (size_t)(s - run));
}

/* {metric="...",label="..." without the closing brace. */
static void guard_labels(struct http_buf *b, const char *name,
                         const char *metric, const char *label)
{
    http_buf_printf(b, "%s{metric=\"", name);
    label_value(b, metric ? metric : "*");
    http_buf_puts(b, "\",label=\"");
    label_value(b, label ? label : "");
    http_buf_puts(b, "\"");
}

static void render_guard(struct tsdb *db, struct http_buf *b)
{
    struct tsdb_guard_stats st = {0};
    int rc = tsdb_guard_stats_get(db, &st);

    if (rc != TSDB_OK) {
        b->err = b->err ? b->err : rc;
        return;
    }
    http_metrics_family(
        b, "tsdb_guard_limit", "gauge",
        "Cardinality rules: series per metric (label=\"\") or distinct "
        "values of a label.");
    for (size_t i = 0; i < st.nrules; i++) {
        const struct tsdb_guard_usage *u = &st.rules[i];
        guard_labels(b, "tsdb_guard_limit", u->metric, u->label);
        http_buf_printf(b, ",policy=\"%s\"} %" PRIu64 "\n",
                        u->policy == TSDB_GUARD_FOLD ? "fold" : "reject",
                        u->limit);
    }
    http_metrics_family(b, "tsdb_guard_used", "gauge",
                        "What each cardinality rule counts now.");
    for (size_t i = 0; i < st.nrules; i++) {
        guard_labels(b, "tsdb_guard_used", st.rules[i].metric,
                     st.rules[i].label);
        http_buf_printf(b, "} %" PRIu64 "\n", st.rules[i].used);
    }
    http_metrics_family(
        b, "tsdb_guard_series_refused_total", "counter",
        "New series refused by a cardinality rule, by metric and label.");
    for (size_t i = 0; i < st.ncounters; i++) {
        guard_labels(b, "tsdb_guard_series_refused_total",
                     st.counters[i].metric, st.counters[i].label);
        http_buf_printf(b, "} %" PRIu64 "\n", st.counters[i].refused);
    }
    http_metrics_family(
        b, "tsdb_guard_values_folded_total", "counter",
        "Label values replaced by __overflow__, by metric and label.");
    for (size_t i = 0; i < st.ncounters; i++) {
        guard_labels(b, "tsdb_guard_values_folded_total", st.counters[i].metric,
                     st.counters[i].label);
        http_buf_printf(b, "} %" PRIu64 "\n", st.counters[i].folded);
    }
    tsdb_guard_stats_release(&st);
}

/* One tier family: a sample per tier, labelled by its width. */
static void tier_family(struct http_buf *b, const char *name, const char *type,
                        const char *help, const struct tsdb_tier_stats *st,
                        size_t n, int field)
{
    http_metrics_family(b, name, type, help);
    for (size_t i = 0; i < n; i++) {
        int64_t w = st[i].width_ms;
        char res[32], secs[40];

        http_query_resolution(1u << 1, &w, 1, res, sizeof(res));
        if (field == 0) {
            http_fmt_seconds(secs,
                             st[i].horizon == INT64_MIN ? 0 : st[i].horizon);
            http_buf_printf(b, "%s{resolution=\"%s\"} %s\n", name, res, secs);
            continue;
        }
        http_buf_printf(b, "%s{resolution=\"%s\"} %" PRIu64 "\n", name, res,
                        field == 1   ? st[i].bytes
                        : field == 2 ? st[i].buckets_written
                                     : st[i].reads);
    }
}

/* The downsampled tiers of tsdb/db.h. */
static void render_tiers(struct tsdb *db, struct http_buf *b)
{
    struct tsdb_tier_stats st[TSDB_TIERS_MAX];
    size_t n;

    tsdb_tier_stats_get(db, st, &n);
    if (n == 0)
        return;
    tier_family(b, "tsdb_tier_horizon_seconds", "gauge",
                "Every bucket ending at or before this is stored, by tier.", st,
                n, 0);
    tier_family(b, "tsdb_tier_bytes", "gauge",
                "Bytes of the tier's stored blocks.", st, n, 1);
    tier_family(b, "tsdb_tier_buckets_written_total", "counter",
                "Buckets the downsampler wrote, by tier.", st, n, 2);
    tier_family(b, "tsdb_tier_reads_total", "counter",
                "Range function calls answered from the tier instead of raw "
                "chunks.",
                st, n, 3);
}

int http_metrics_render(struct http_metrics *m, struct tsdb *db,
                        struct http_buf *out)
{
    render_requests(m, out);
    render_durations(m, out);
    http_metrics_family(out, "tsdb_http_requests_in_flight", "gauge",
                        "Requests being read or answered now.");
    http_buf_printf(out, "tsdb_http_requests_in_flight %" PRIdFAST64 "\n",
                    atomic_load_explicit(&m->in_flight, memory_order_relaxed));
    render_writes(m, out);
    render_storage(db, out);
    render_tiers(db, out);
    render_guard(db, out);
    return out->err;
}
