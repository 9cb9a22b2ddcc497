/*
 * The StatsD service: flush thread, line counts, answer and metrics; see
 * statsd.h.  Layer: http/, over statsd/statsd.h and statsd/sink.h.
 *
 * Invariants:
 * 1. Only the flush thread calls statsd_flush while it runs; after it is
 *    joined, only http_statsd_stop does.  So the sink's counts (t) are
 *    read without a lock by whoever flushes, and copied under s->lock for
 *    the page.
 * 2. flush_buckets[i] counts flushes whose duration fell in bucket i
 *    alone; the page sums them (as metrics.c does for requests).
 */
#define LOG_MODULE "statsd"
#include "http/statsd.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http/json.h"
#include "http/metrics.h"
#include "http/numfmt.h"
#include "tsdb/log.h"

/* Flush duration buckets, seconds (+Inf not listed). */
#define NBOUNDS 9
/* Notable flushes are logged at most this often. */
#define LOG_EVERY_MS 60000
/* Slack after an interval boundary before flushing, so that the rounded
 * flush time is the boundary just passed. */
#define BOUNDARY_SLACK_MS 2

static const double bounds[NBOUNDS] = {.001, .005, .01, .05, .1, .5, 1, 5, 10};

/* What the sink had counted, for deltas between flushes and the page. */
struct sink_counts {
    struct tsdb_commit_result total;
    uint64_t series_refused;
};

struct http_statsd {
    struct statsd *sd;
    const struct statsd_sink *sink;
    struct statsd_tsdb_sink *t; /* may be NULL */
    struct http_statsd_options o;

    pthread_t thread;
    bool running;
    pthread_mutex_t lock; /* stopping, shown */
    pthread_cond_t wake;
    bool stopping;
    struct sink_counts shown; /* the sink's counts after the last flush */

    /* Flush thread only (or the last flush, after the join). */
    struct statsd_sink watch; /* sink, noting why series were refused */
    char refusal[sizeof(((struct statsd_tsdb_sink *)0)->last_error)];
    struct sink_counts seen;
    uint64_t emitted_seen;
    int64_t logged_ms; /* monotonic time of the last notable line */
    uint64_t unlogged; /* notable flushes held back since */

    atomic_uint_fast64_t bodies[HTTP_STATSD_NSOURCES];
    atomic_uint_fast64_t accepted[HTTP_STATSD_NSOURCES];
    atomic_uint_fast64_t rejected[HTTP_STATSD_NSOURCES][HTTP_STATSD_NREASONS];
    atomic_uint_fast64_t flush_buckets[NBOUNDS + 1];
    atomic_uint_fast64_t flush_us;
};

static const char *const source_names[HTTP_STATSD_NSOURCES] = {"http", "udp"};

const char *http_statsd_reason_name(enum http_statsd_reason r)
{
    static const char *const names[HTTP_STATSD_NREASONS] = {
        "parse_error", "type_conflict", "limit", "unavailable", "other"};

    return (unsigned)r < HTTP_STATSD_NREASONS ? names[r] : "other";
}

/*
 * The messages come from statsd/aggregate.c (what the state refuses) and
 * statsd/parse.c (the lines-per-body limit); everything else the parser
 * says is a parse error.  tests/http/test_statsd.c runs the real messages
 * through this, so a change of wording there fails a test here.
 */
enum http_statsd_reason http_statsd_reason_of(const char *msg)
{
    static const char *const limits[] = {
        "series limit of",
        "distinct members in this flush interval",
        "timestamped samples already wait",
        "lines in one body",
    };

    if (strstr(msg, "; this line sends it as |"))
        return HTTP_STATSD_TYPE_CONFLICT;
    for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++)
        if (strstr(msg, limits[i]))
            return HTTP_STATSD_LIMIT;
    if (strstr(msg, ": out of memory"))
        return HTTP_STATSD_OTHER;
    return HTTP_STATSD_PARSE;
}

/* Rejected lines of res by reason (rc as statsd_ingest returned it). */
static void tally(int rc, const struct statsd_result *res,
                  uint64_t by[HTTP_STATSD_NREASONS])
{
    memset(by, 0, HTTP_STATSD_NREASONS * sizeof(by[0]));
    if (rc != TSDB_OK) {
        by[HTTP_STATSD_UNAVAILABLE] = res ? res->lines : 0;
        return;
    }
    for (size_t i = 0; i < res->nreasons; i++)
        by[http_statsd_reason_of(res->reasons[i].reason)]++;
    if (res->rejected > res->nreasons)
        by[HTTP_STATSD_OTHER] += res->rejected - res->nreasons;
}

void http_statsd_json(int rc, const struct statsd_result *res,
                      struct http_buf *out)
{
    uint64_t by[HTTP_STATSD_NREASONS];
    uint64_t accepted = rc == TSDB_OK ? res->accepted : 0;
    uint64_t rejected = rc == TSDB_OK ? res->rejected : res->lines;
    size_t shown = rc == TSDB_OK ? res->nreasons : 0;

    tally(rc, res, by);
    http_buf_printf(out,
                    "{\"lines\":%" PRIu64 ",\"accepted\":%" PRIu64
                    ",\"rejected\":%" PRIu64 ",\"rejectedByReason\":{",
                    res->lines, accepted, rejected);
    for (int r = 0; r < HTTP_STATSD_NREASONS; r++)
        http_buf_printf(out, "%s\"%s\":%" PRIu64, r ? "," : "",
                        http_statsd_reason_name(r), by[r]);
    http_buf_puts(out, "},\"errors\":[");
    for (size_t i = 0; i < shown; i++) {
        const struct statsd_reject *e = &res->reasons[i];

        http_buf_printf(
            out, "%s{\"line\":%" PRIu64 ",\"reason\":\"%s\"", i ? "," : "",
            e->line, http_statsd_reason_name(http_statsd_reason_of(e->reason)));
        http_buf_puts(out, ",\"error\":");
        http_json_str(out, e->reason);
        http_buf_puts(out, "}");
    }
    http_buf_printf(out, "],\"errorsNotShown\":%" PRIu64 "}",
                    rejected > shown ? rejected - shown : 0);
}

/* ---- counting ---- */

static void add(atomic_uint_fast64_t *c, uint64_t n)
{
    if (n)
        atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static uint64_t get(atomic_uint_fast64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

void http_statsd_record(struct http_statsd *s, enum http_statsd_source src,
                        int rc, const struct statsd_result *res)
{
    uint64_t by[HTTP_STATSD_NREASONS];

    tally(rc, res, by);
    add(&s->bodies[src], 1);
    if (rc == TSDB_OK)
        add(&s->accepted[src], res->accepted);
    for (int r = 0; r < HTTP_STATSD_NREASONS; r++)
        add(&s->rejected[src][r], by[r]);
}

void http_statsd_on_udp(void *ctx, int rc, const struct statsd_result *res)
{
    http_statsd_record(ctx, HTTP_STATSD_UDP, rc, res);
}

/* ---- the flush thread ---- */

static int64_t clock_ms(clockid_t clock)
{
    struct timespec ts;

    clock_gettime(clock, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t mono_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void read_sink(const struct http_statsd *s, struct sink_counts *c)
{
    memset(c, 0, sizeof(*c));
    if (!s->t)
        return;
    c->total = s->t->total;
    c->series_refused = s->t->series_refused;
}

/* The one log line of a notable flush, at most once a minute. */
static void log_notable(struct http_statsd *s, int64_t t, int rc, uint64_t us,
                        uint64_t emitted, const struct sink_counts *d)
{
    int64_t now = clock_ms(CLOCK_MONOTONIC);
    char held[64] = "", why[sizeof(s->refusal) + 16] = "";

    if (s->logged_ms != 0 && now - s->logged_ms < LOG_EVERY_MS) {
        s->unlogged++;
        return;
    }
    if (s->unlogged > 0)
        snprintf(held, sizeof(held),
                 " (%" PRIu64 " notable flushes not logged)", s->unlogged);
    if (d->series_refused && s->refusal[0])
        snprintf(why, sizeof(why), " (last: %s)", s->refusal);
    if (rc != TSDB_OK)
        log_warn("flush at %" PRId64 " failed after %.3f s: %s%s", t,
                 (double)us / 1e6, tsdb_strerror(rc), held);
    else
        log_warn("flush at %" PRId64 " took %.3f s: %" PRIu64
                 " samples emitted, %" PRIu64 " series refused%s, %zu "
                 "out of order, %zu conflicting, %zu out of bounds%s",
                 t, (double)us / 1e6, emitted, d->series_refused, why,
                 d->total.out_of_order, d->total.conflicts,
                 d->total.out_of_bounds, held);
    s->logged_ms = now;
    s->unlogged = 0;
}

/* Counts a flush that ran (emitted or failed) and logs it if notable. */
static void account(struct http_statsd *s, int64_t now, int rc, uint64_t us)
{
    struct statsd_stats st;
    struct sink_counts c, d;
    size_t b = 0;
    uint64_t emitted;

    while (b < NBOUNDS && (double)us / 1e6 > bounds[b])
        b++;
    add(&s->flush_buckets[b], 1);
    add(&s->flush_us, us);

    statsd_stats_get(s->sd, &st);
    emitted = st.samples_emitted - s->emitted_seen;
    s->emitted_seen = st.samples_emitted;
    read_sink(s, &c);
    d.series_refused = c.series_refused - s->seen.series_refused;
    d.total.out_of_order = c.total.out_of_order - s->seen.total.out_of_order;
    d.total.conflicts = c.total.conflicts - s->seen.total.conflicts;
    d.total.out_of_bounds = c.total.out_of_bounds - s->seen.total.out_of_bounds;
    s->seen = c;
    pthread_mutex_lock(&s->lock);
    s->shown = c;
    pthread_mutex_unlock(&s->lock);

    if (rc != TSDB_OK || us >= (uint64_t)s->o.slow_ms * 1000u ||
        d.series_refused || d.total.out_of_order || d.total.conflicts ||
        d.total.out_of_bounds)
        log_notable(s, now - now % s->o.flush_interval_ms, rc, us, emitted, &d);
}

/*
 * The sink's emit, keeping the message of the last refused series: the
 * sink's own last_error is cleared by every later lookup of the flush.
 */
static int watch_emit(void *ctx, const struct statsd_sample *x)
{
    struct http_statsd *s = ctx;
    uint64_t before = s->t->series_refused;
    int rc = s->sink->emit(s->sink->ctx, x);

    if (s->t->series_refused != before)
        snprintf(s->refusal, sizeof(s->refusal), "%s", s->t->last_error);
    return rc;
}

static int watch_commit(void *ctx)
{
    struct http_statsd *s = ctx;

    return s->sink->commit(s->sink->ctx);
}

static int flush_once(struct http_statsd *s)
{
    int64_t now = clock_ms(CLOCK_REALTIME);
    uint64_t start = mono_us();
    bool flushed = false;
    int rc = statsd_flush(s->sd, now, s->t ? &s->watch : s->sink, &flushed);

    if (flushed || rc != TSDB_OK)
        account(s, now, rc, mono_us() - start);
    return rc;
}

/* How long to sleep: to just past the next interval boundary, at most a
 * tick. */
static int64_t sleep_ms(const struct http_statsd *s)
{
    int64_t now = clock_ms(CLOCK_REALTIME);
    int64_t next = now - now % s->o.flush_interval_ms + s->o.flush_interval_ms;
    int64_t wait = next - now + BOUNDARY_SLACK_MS;

    return wait < s->o.tick_ms ? wait : s->o.tick_ms;
}

static void *flusher(void *arg)
{
    struct http_statsd *s = arg;
    struct timespec until;

    pthread_mutex_lock(&s->lock);
    while (!s->stopping) {
        int64_t ms = sleep_ms(s);

        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += ms / 1000;
        until.tv_nsec += (ms % 1000) * 1000000;
        if (until.tv_nsec >= 1000000000) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000;
        }
        while (!s->stopping &&
               pthread_cond_timedwait(&s->wake, &s->lock, &until) != ETIMEDOUT)
            ;
        if (s->stopping)
            break;
        pthread_mutex_unlock(&s->lock);
        flush_once(s);
        pthread_mutex_lock(&s->lock);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

void http_statsd_options_init(struct http_statsd_options *o)
{
    o->flush_interval_ms = 10000;
    o->tick_ms = 1000;
    o->slow_ms = 1000;
}

int http_statsd_start(struct statsd *sd, const struct statsd_sink *sink,
                      struct statsd_tsdb_sink *t,
                      const struct http_statsd_options *o,
                      struct http_statsd **out)
{
    struct http_statsd *s;
    pthread_condattr_t ca;

    if (o->flush_interval_ms <= 0 || o->tick_ms <= 0)
        return TSDB_EINVAL;
    s = calloc(1, sizeof(*s));
    if (!s)
        return TSDB_ENOMEM;
    s->sd = sd;
    s->sink = sink;
    s->t = t;
    s->o = *o;
    s->watch.emit = watch_emit;
    s->watch.commit = watch_commit;
    s->watch.ctx = s;
    read_sink(s, &s->seen);
    s->shown = s->seen;
    pthread_mutex_init(&s->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->wake, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&s->thread, NULL, flusher, s) != 0) {
        http_statsd_free(s);
        return TSDB_EIO;
    }
    s->running = true;
    *out = s;
    return TSDB_OK;
}

struct statsd *http_statsd_handle(struct http_statsd *s)
{
    return s->sd;
}

static void join(struct http_statsd *s)
{
    if (!s->running)
        return;
    pthread_mutex_lock(&s->lock);
    s->stopping = true;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->thread, NULL);
    s->running = false;
}

int http_statsd_stop(struct http_statsd *s)
{
    join(s);
    return flush_once(s);
}

void http_statsd_free(struct http_statsd *s)
{
    if (!s)
        return;
    join(s);
    pthread_cond_destroy(&s->wake);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

/* ---- /metrics ---- */

static void render_lines(struct http_statsd *s, struct http_buf *b)
{
    http_metrics_family(
        b, "tsdb_statsd_bodies_total", "counter",
        "StatsD bodies ingested: HTTP request bodies and UDP datagrams.");
    for (int src = 0; src < HTTP_STATSD_NSOURCES; src++)
        http_buf_printf(
            b, "tsdb_statsd_bodies_total{endpoint=\"%s\"} %" PRIu64 "\n",
            source_names[src], get(&s->bodies[src]));
    http_metrics_family(b, "tsdb_statsd_lines_accepted_total", "counter",
                        "StatsD lines journalled and aggregated.");
    for (int src = 0; src < HTTP_STATSD_NSOURCES; src++)
        http_buf_printf(b,
                        "tsdb_statsd_lines_accepted_total{endpoint=\"%s\"} "
                        "%" PRIu64 "\n",
                        source_names[src], get(&s->accepted[src]));
    http_metrics_family(b, "tsdb_statsd_lines_rejected_total", "counter",
                        "StatsD lines refused, by reason.");
    for (int src = 0; src < HTTP_STATSD_NSOURCES; src++)
        for (int r = 0; r < HTTP_STATSD_NREASONS; r++)
            http_buf_printf(b,
                            "tsdb_statsd_lines_rejected_total{endpoint="
                            "\"%s\",reason=\"%s\"} %" PRIu64 "\n",
                            source_names[src], http_statsd_reason_name(r),
                            get(&s->rejected[src][r]));
}

static void render_durations(struct http_statsd *s, struct http_buf *b)
{
    const char *name = "tsdb_statsd_flush_duration_seconds";
    char num[HTTP_NUM_MAX];
    uint64_t cum = 0;

    http_metrics_family(
        b, name, "histogram",
        "Time of each flush: capture, emission, commit and snapshot.");
    for (size_t i = 0; i <= NBOUNDS; i++) {
        cum += get(&s->flush_buckets[i]);
        if (i < NBOUNDS)
            http_fmt_value(num, bounds[i]);
        else
            strcpy(num, "+Inf");
        http_buf_printf(b, "%s_bucket{le=\"%s\"} %" PRIu64 "\n", name, num,
                        cum);
    }
    http_fmt_value(num, (double)get(&s->flush_us) / 1e6);
    http_buf_printf(b, "%s_sum %s\n%s_count %" PRIu64 "\n", name, num, name,
                    cum);
}

static void render_storage(struct sink_counts *c, struct http_buf *b)
{
    http_metrics_family(
        b, "tsdb_statsd_samples_stored_total", "counter",
        "Flushed samples the storage took: new, or equal to one stored "
        "(a replayed flush).");
    http_buf_printf(b,
                    "tsdb_statsd_samples_stored_total{result=\"accepted\"} "
                    "%zu\n"
                    "tsdb_statsd_samples_stored_total{result=\"duplicate\"} "
                    "%zu\n",
                    c->total.accepted, c->total.duplicates);
    http_metrics_family(b, "tsdb_statsd_samples_rejected_total", "counter",
                        "Flushed samples the storage refused, by reason.");
    http_buf_printf(b,
                    "tsdb_statsd_samples_rejected_total{reason="
                    "\"out_of_order\"} %zu\n"
                    "tsdb_statsd_samples_rejected_total{reason="
                    "\"duplicate_conflict\"} %zu\n"
                    "tsdb_statsd_samples_rejected_total{reason="
                    "\"out_of_bounds\"} %zu\n",
                    c->total.out_of_order, c->total.conflicts,
                    c->total.out_of_bounds);
    http_metrics_single(
        b, "tsdb_statsd_series_refused_total", "counter",
        "Flushed samples dropped because the storage refused their label "
        "set (a cardinality limit, an invalid label).",
        c->series_refused);
}

int http_statsd_render(struct http_statsd *s, struct http_buf *out)
{
    struct statsd_stats st;
    struct sink_counts c;

    statsd_stats_get(s->sd, &st);
    pthread_mutex_lock(&s->lock);
    c = s->shown;
    pthread_mutex_unlock(&s->lock);
    render_lines(s, out);
    http_metrics_single(out, "tsdb_statsd_flushes_total", "counter",
                        "Flushes emitted and committed.", st.flushes);
    http_metrics_single(out, "tsdb_statsd_flush_errors_total", "counter",
                        "Flushes whose emission or commit failed.",
                        st.flush_errors);
    render_durations(s, out);
    http_metrics_single(out, "tsdb_statsd_samples_emitted_total", "counter",
                        "Samples emitted by flushes, stale markers included.",
                        st.samples_emitted);
    render_storage(&c, out);
    http_metrics_single(out, "tsdb_statsd_series", "gauge",
                        "Series in the StatsD aggregation.", st.series);
    http_metrics_single(out, "tsdb_statsd_journal_bytes", "gauge",
                        "Bytes in StatsD journal segments.", st.journal_bytes);
    http_metrics_single(out, "tsdb_statsd_checkpoints_total", "counter",
                        "Snapshots of the aggregation written.",
                        st.checkpoints);
    http_metrics_single(out, "tsdb_statsd_stuck", "gauge",
                        "1 after a failed commit: no snapshot until restart.",
                        st.stuck ? 1 : 0);
    return out->err;
}
