/*
 * tsdbd: the server.  Opens the data folder, loads the cardinality rules
 * (--limits-file), opens StatsD (recovering its journal into the storage),
 * starts the StatsD flush thread, serves HTTP on a loopback address
 * (routes in http/routes.h) and, with --statsd-udp, StatsD over UDP.
 *
 * Shutdown on SIGTERM or SIGINT, in this order: stop HTTP and UDP (no
 * new bodies), stop the flush thread and flush once more, close StatsD
 * (its journal keeps what was not flushed), close the storage
 * (checkpoint, sync, compaction) and exit 0.  Exit status 2 for a bad
 * flag, 1 when the folder, the limits file or an address cannot be used.
 */
#define LOG_MODULE "tsdbd"
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/server.h"
#include "http/statsd.h"
#include "anomaly/engine.h"
#include "rollup/rollup.h"
#include "statsd/sink.h"
#include "statsd/statsd.h"
#include "statsd/udp.h"
#include "tsdb/db.h"
#include "tsdb/guard.h"
#include "tsdb/log.h"

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: tsdbd [options]\n"
        "  --data DIR          data folder, created if missing (default "
        "./data)\n"
        "  --listen HOST:PORT  HTTP address (default 127.0.0.1:9201)\n"
        "  --retention DUR     delete data older than DUR, e.g. 30d, 12h;\n"
        "                      0 keeps everything (default 0)\n"
        "  --tiers LIST        downsampled tiers, widths ascending, each with\n"
        "                      an optional retention: 5m:90d,1h:2y; 'none'\n"
        "                      turns them off (default 5m,1h, kept forever)\n"
        "  --wal-sync DUR      fsync the write-ahead log and the StatsD\n"
        "                      journal this often; 0 syncs every write\n"
        "                      (default 1s).  Writes survive a crash of the\n"
        "                      process either way; this bounds what a power\n"
        "                      loss can take\n"
        "  --max-series N      refuse new series past N (default 5000000)\n"
        "  --map-size BYTES    LMDB map size, suffixes K M G T (default 64G)\n"
        "  --threads N         HTTP request threads (default 4)\n"
        "  --max-body SIZE     largest request body read whole (export form\n"
        "                      bodies, StatsD bodies, which also stop at\n"
        "                      8M); larger ones get 413 (default 64M;\n"
        "                      suffixes K M G T)\n"
        "  --max-import-body SIZE\n"
        "                      largest body for /api/v1/import/prometheus,\n"
        "                      which is streamed in bounded memory whatever\n"
        "                      its size; 0 is no limit (default 0)\n"
        "  --import-batch N    samples per commit during an import, 1 to\n"
        "                      1000000 (default 50000); each commit is\n"
        "                      durable, the answer comes after the last\n"
        "  --slow-request DUR  log requests and StatsD flushes that take\n"
        "                      longer (default 1s)\n"
        "  --query-timeout DUR a PromQL query that runs longer is stopped\n"
        "                      with 503 timeout; 0 never (default 2m); the\n"
        "                      timeout parameter of a request may lower it\n"
        "  --query-max-samples N\n"
        "                      samples a query may hold at once; past it the\n"
        "                      query gets 422 (default 50000000)\n"
        "  --flush-interval DUR\n"
        "                      StatsD flush interval, 100ms to 1h (default\n"
        "                      10s); flushes are stamped with the time\n"
        "                      rounded down to a multiple of it\n"
        "  --statsd-idle-ttl DUR\n"
        "                      a StatsD series without lines for DUR gets a\n"
        "                      stale marker and is dropped; 0 never (default\n"
        "                      5m)\n"
        "  --statsd-buckets LIST\n"
        "                      histogram bucket bounds for ms, h and d lines,\n"
        "                      comma-separated, ascending, at most 64 (ms in\n"
        "                      seconds; default .005,.01,.025,.05,.1,.25,.5,\n"
        "                      1,2.5,5,10)\n"
        "  --statsd-udp HOST:PORT\n"
        "                      also take StatsD datagrams on this UDP\n"
        "                      address, e.g. 127.0.0.1:8125 (default off)\n"
        "  --limits-file FILE  cardinality rules: series per metric, values\n"
        "                      per label, reject or fold (README); a bad file\n"
        "                      stops the start\n"
        "  --rollups FILE      rollup rules, a JSON object of rules by name\n"
        "                      (README); they replace stored rules of the\n"
        "                      same name, and a bad file stops the start\n"
        "  --detectors FILE    anomaly detectors, a JSON object of detectors\n"
        "                      by name (README); they replace stored ones of\n"
        "                      the same name, and a bad file stops the start\n"
        "  --no-compact        skip rewriting the LMDB file with full pages\n"
        "                      at shutdown (it takes time in proportion to\n"
        "                      the file; tsdb-compact DIR does it later)\n"
        "  --log-level LEVEL   error, warn, info or debug (default info)\n"
        "  --help              this text\n");
}

/* Parses "30d", "1h30m", "500ms", "0" into milliseconds. */
static bool parse_duration(const char *s, int64_t *ms)
{
    static const struct {
        const char *unit;
        int64_t ms;
    } units[] = {{"ms", 1},         {"s", 1000},     {"m", 60000},
                 {"h", 3600000},    {"d", 86400000}, {"w", 604800000},
                 {"y", 31536000000}};
    int64_t total = 0;

    if (strcmp(s, "0") == 0) {
        *ms = 0;
        return true;
    }
    while (*s) {
        char *end;
        long long n = strtoll(s, &end, 10);
        size_t i, best = 0, best_len = 0;
        if (end == s || n < 0)
            return false;
        for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
            size_t l = strlen(units[i].unit);
            if (strncmp(end, units[i].unit, l) == 0 && l > best_len) {
                best = i;
                best_len = l;
            }
        }
        if (best_len == 0)
            return false;
        total += (int64_t)n * units[best].ms;
        s = end + best_len;
    }
    *ms = total;
    return true;
}

/* Parses --tiers: "none", or "W[:R],..." with durations W > 0 ascending
 * and R a retention (0 keeps all).  Checked again by tsdb_open. */
static bool parse_tiers(const char *s, struct tsdb_options *o)
{
    char buf[256], *save = NULL, *item;

    o->ntiers = 0;
    if (strcmp(s, "none") == 0)
        return true;
    if (strlen(s) >= sizeof(buf))
        return false;
    strcpy(buf, s);
    for (item = strtok_r(buf, ",", &save); item;
         item = strtok_r(NULL, ",", &save)) {
        struct tsdb_tier_spec *t = &o->tiers[o->ntiers];
        char *colon = strchr(item, ':');

        if (o->ntiers == TSDB_TIERS_MAX)
            return false;
        if (colon)
            *colon = '\0';
        t->retention_ms = 0;
        if (!parse_duration(item, &t->width_ms) || t->width_ms <= 0 ||
            (colon && !parse_duration(colon + 1, &t->retention_ms)) ||
            (o->ntiers > 0 && t->width_ms <= o->tiers[o->ntiers - 1].width_ms))
            return false;
        o->ntiers++;
    }
    return o->ntiers > 0;
}

static bool parse_size(const char *s, uint64_t *out)
{
    char *end;
    unsigned long long n = strtoull(s, &end, 10);
    int shift = 0;

    switch (*end) {
    case 'K':
        shift = 10;
        end++;
        break;
    case 'M':
        shift = 20;
        end++;
        break;
    case 'G':
        shift = 30;
        end++;
        break;
    case 'T':
        shift = 40;
        end++;
        break;
    }
    if (end == s || *end || n > (UINT64_MAX >> shift))
        return false;
    *out = (uint64_t)n << shift;
    return true;
}

/* A whole decimal number in [lo, hi]. */
static bool parse_count(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
    char *end;
    unsigned long long n;

    if (*s < '0' || *s > '9')
        return false;
    n = strtoull(s, &end, 10);
    if (*end || n < lo || n > hi)
        return false;
    *out = n;
    return true;
}

static int bad_flag(const char *flag, const char *value, const char *want)
{
    fprintf(stderr, "tsdbd: %s '%s' is not %s\n", flag, value, want);
    return 2;
}

/* Reads "0.005,0.01,1" into v[0..*n): finite, ascending, at most
 * STATSD_MAX_BUCKETS. */
static bool parse_buckets(const char *s, double *v, size_t *n)
{
    *n = 0;
    for (;;) {
        char *end;
        double x = strtod(s, &end);

        if (end == s || !isfinite(x) || *n == STATSD_MAX_BUCKETS ||
            (*n > 0 && x <= v[*n - 1]))
            return false;
        v[(*n)++] = x;
        if (*end == '\0')
            return true;
        if (*end != ',')
            return false;
        s = end + 1;
    }
}

/* Everything the flags set. */
struct config {
    struct tsdb_options db;
    struct http_server_options http;
    struct statsd_options statsd;
    struct http_statsd_options flush;
    const char *limits_file;    /* NULL: no cardinality rules */
    const char *rollups_file;   /* NULL: only the rules of the state file */
    const char *detectors_file; /* NULL: only the stored detectors */
    const char *statsd_udp;     /* NULL: no UDP */
    double buckets[STATSD_MAX_BUCKETS];
};

static void config_init(struct config *c)
{
    memset(c, 0, sizeof(*c));
    tsdb_options_init(&c->db);
    http_server_options_init(&c->http);
    statsd_options_init(&c->statsd);
    http_statsd_options_init(&c->flush);
    c->db.compact_on_close = true;
}

/* The StatsD and flush flags, and the files of rules. */
static int parse_statsd_flag(int opt, struct config *c)
{
    int64_t ms;

    switch (opt) {
    case 'f':
        if (!parse_duration(optarg, &ms) || ms < 100 || ms > 3600000)
            return bad_flag("--flush-interval", optarg,
                            "a duration from 100ms to 1h");
        c->statsd.flush_interval_ms = ms;
        c->flush.flush_interval_ms = ms;
        return -1;
    case 'e':
        if (!parse_duration(optarg, &c->statsd.agg.idle_ttl_ms))
            return bad_flag("--statsd-idle-ttl", optarg, "a duration, or 0");
        return -1;
    case 'k':
        if (!parse_buckets(optarg, c->buckets, &c->statsd.agg.nbuckets))
            return bad_flag("--statsd-buckets", optarg,
                            "a comma-separated ascending list of at most 64 "
                            "finite numbers");
        c->statsd.agg.buckets = c->buckets;
        return -1;
    case 'u':
        c->statsd_udp = optarg;
        return -1;
    case 'g':
        c->limits_file = optarg;
        return -1;
    case 'R':
        c->rollups_file = optarg;
        return -1;
    case 'D':
        c->detectors_file = optarg;
        return -1;
    }
    usage(stderr);
    return 2;
}

/*
 * Reads the flags into c.  Returns -1 to go on, else the exit status (0
 * after --help, 2 for a bad flag).  One flat switch over the flags, so it
 * stays whole.
 */
static int parse_flags(int argc, char **argv, struct config *c)
{
    static const struct option longopts[] = {
        {"data", required_argument, NULL, 'd'},
        {"listen", required_argument, NULL, 'l'},
        {"retention", required_argument, NULL, 'r'},
        {"tiers", required_argument, NULL, 'D'},
        {"wal-sync", required_argument, NULL, 'w'},
        {"max-series", required_argument, NULL, 's'},
        {"map-size", required_argument, NULL, 'm'},
        {"threads", required_argument, NULL, 't'},
        {"max-body", required_argument, NULL, 'b'},
        {"max-import-body", required_argument, NULL, 'i'},
        {"import-batch", required_argument, NULL, 'n'},
        {"slow-request", required_argument, NULL, 'q'},
        {"query-timeout", required_argument, NULL, 'T'},
        {"query-max-samples", required_argument, NULL, 'S'},
        {"flush-interval", required_argument, NULL, 'f'},
        {"statsd-idle-ttl", required_argument, NULL, 'e'},
        {"statsd-buckets", required_argument, NULL, 'k'},
        {"statsd-udp", required_argument, NULL, 'u'},
        {"limits-file", required_argument, NULL, 'g'},
        {"rollups", required_argument, NULL, 'R'},
        {"detectors", required_argument, NULL, 'D'},
        {"log-level", required_argument, NULL, 'v'},
        {"no-compact", no_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    struct tsdb_options *o = &c->db;
    struct http_server_options *ho = &c->http;
    uint64_t size;
    int64_t ms;
    int opt, rc;

    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case 'd':
            o->dir = optarg;
            break;
        case 'l':
            ho->listen = optarg;
            break;
        case 'r':
            if (!parse_duration(optarg, &o->retention_ms))
                return bad_flag("--retention", optarg, "a duration");
            break;
        case 'w':
            if (!parse_duration(optarg, &ms) || ms > 3600000)
                return bad_flag("--wal-sync", optarg, "a duration <= 1h");
            o->wal_sync_ms = (int)ms;
            break;
        case 's':
            if (!parse_count(optarg, 1, SIZE_MAX, &size))
                return bad_flag("--max-series", optarg, "a count >= 1");
            o->max_series = (size_t)size;
            break;
        case 'm':
            if (!parse_size(optarg, &size) || size == 0 || size > SIZE_MAX)
                return bad_flag("--map-size", optarg, "a size like 64G");
            o->map_size = (size_t)size;
            break;
        case 'b':
            if (!parse_size(optarg, &size) || size == 0 || size > SIZE_MAX)
                return bad_flag("--max-body", optarg, "a size like 64M");
            ho->max_body = (size_t)size;
            break;
        case 'i':
            if (!parse_size(optarg, &ho->max_import_body))
                return bad_flag("--max-import-body", optarg,
                                "a size like 10G, or 0");
            break;
        case 'n':
            if (!parse_count(optarg, 1, 1000000, &size))
                return bad_flag("--import-batch", optarg,
                                "a count from 1 to 1000000");
            ho->import_batch = (size_t)size;
            break;
        case 'q':
            if (!parse_duration(optarg, &ms) || ms > 86400000)
                return bad_flag("--slow-request", optarg, "a duration <= 1d");
            ho->slow_ms = (unsigned)ms;
            c->flush.slow_ms = (unsigned)ms;
            break;
        case 'T':
            if (!parse_duration(optarg, &ho->query_timeout_ms))
                return bad_flag("--query-timeout", optarg, "a duration");
            break;
        case 'S':
            if (!parse_count(optarg, 1, UINT64_MAX, &ho->query_max_samples))
                return bad_flag("--query-max-samples", optarg, "a count >= 1");
            break;
        case 't':
            if (!parse_count(optarg, 1, 1024, &size))
                return bad_flag("--threads", optarg, "a count from 1 to 1024");
            ho->threads = (unsigned)size;
            break;
        case 'c':
            o->compact_on_close = false;
            break;
        case 'v':
            if (!tsdb_log_parse_level(optarg, &tsdb_log_level))
                return bad_flag("--log-level", optarg,
                                "error, warn, info or debug");
            break;
        case 'D':
            if (!parse_tiers(optarg, o))
                return bad_flag("--tiers", optarg,
                                "none, or widths ascending with optional "
                                "retentions, like 5m:90d,1h:2y");
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            rc = parse_statsd_flag(opt, c);
            if (rc >= 0)
                return rc;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "tsdbd: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    return -1;
}

/* The start-up lines: every setting, so that a log shows what ran. */
static void log_settings(const struct config *c)
{
    const struct statsd_agg_options *a = &c->statsd.agg;
    char buckets[STATSD_MAX_BUCKETS * 26] = "default";
    size_t len = 0;

    log_info("starting: data '%s', listen %s, retention %" PRId64
             " ms, wal-sync %d ms, max-series %zu, map-size %zu, "
             "compact at shutdown %s, max-body %zu, max-import-body %" PRIu64
             ", import-batch %zu, limits-file %s, query-timeout %" PRId64
             " ms, query-max-samples %" PRIu64,
             c->db.dir, c->http.listen, c->db.retention_ms, c->db.wal_sync_ms,
             c->db.max_series, c->db.map_size,
             c->db.compact_on_close ? "on" : "off", c->http.max_body,
             c->http.max_import_body, c->http.import_batch,
             c->limits_file ? c->limits_file : "none", c->http.query_timeout_ms,
             c->http.query_max_samples);
    for (size_t i = 0; a->buckets && i < a->nbuckets; i++)
        len += (size_t)snprintf(buckets + len, sizeof(buckets) - len, "%s%g",
                                i ? "," : "", a->buckets[i]);
    log_info("statsd: flush-interval %" PRId64 " ms, idle-ttl %" PRId64
             " ms, buckets %s, udp %s",
             c->statsd.flush_interval_ms, a->idle_ttl_ms, buckets,
             c->statsd_udp ? c->statsd_udp : "off");
}

/* What runs, in start order. */
struct server {
    struct tsdb *db;
    struct statsd_tsdb_sink sink_state;
    struct statsd_sink sink;
    struct statsd *sd;
    struct http_statsd *flusher;
    struct http_server *http;
    struct statsd_udp *udp;
    struct rollup_engine *rollups;
    struct anomaly_engine *detectors;
};

/* The rollup rules, before any write: their recovery reads what is
 * stored, and every later write goes through them. */
static int start_rollups(struct server *sv, const struct config *c)
{
    char path[4096], err[1024];
    int rc;

    snprintf(path, sizeof(path), "%s/rollups.json", c->db.dir);
    rc = rollup_open(sv->db, path, c->rollups_file, &sv->rollups, err,
                     sizeof(err));
    if (rc != TSDB_OK) {
        if (rc == TSDB_EINVAL || rc == TSDB_EIO)
            log_error("rollups: %s", err);
        else
            log_error("rollups: %s", tsdb_strerror(rc));
        return 1;
    }
    return 0;
}

/* The detectors, whose scheduler evaluates with the query limits of the
 * HTTP API. */
static int start_detectors(struct server *sv, const struct config *c)
{
    struct query_opts qo;
    char err[1024];
    int rc;

    query_opts_init(&qo);
    qo.timeout_ms = c->http.query_timeout_ms;
    qo.max_samples = c->http.query_max_samples;
    rc = anomaly_open(sv->db, &qo, c->db.dir, c->detectors_file, &sv->detectors,
                      err, sizeof(err));
    if (rc != TSDB_OK) {
        if (rc == TSDB_EINVAL || rc == TSDB_EIO)
            log_error("detectors: %s", err);
        else
            log_error("detectors: %s", tsdb_strerror(rc));
        return 1;
    }
    return 0;
}

/* The storage and its cardinality rules, read before any write so that
 * the rules count every series.  Returns an exit status, 0 if it runs. */
static int start_storage(struct server *sv, const struct config *c)
{
    char err[600];
    int rc = tsdb_open(&c->db, &sv->db);

    if (rc != TSDB_OK) {
        log_error("cannot open data folder '%s': %s", c->db.dir,
                  tsdb_strerror(rc));
        return 1;
    }
    if (c->limits_file) {
        rc = tsdb_guard_load(sv->db, c->limits_file, err, sizeof(err));
        if (rc != TSDB_OK) {
            log_error("%s", err);
            return 1;
        }
    }
    return start_rollups(sv, c);
}

/* StatsD (recovery emits through the sink), its flusher, HTTP, UDP. */
static int start_services(struct server *sv, struct config *c)
{
    struct statsd_udp_options uo = {c->statsd_udp, http_statsd_on_udp, NULL};
    char err[256];
    int rc;

    rc = statsd_tsdb_sink_init(&sv->sink_state, sv->db, &sv->sink);
    c->statsd.dir = c->db.dir;
    c->statsd.sync_ms = c->db.wal_sync_ms;
    if (rc == TSDB_OK)
        rc = statsd_open(&c->statsd, &sv->sink, &sv->sd);
    if (rc == TSDB_OK)
        rc = http_statsd_start(sv->sd, &sv->sink, &sv->sink_state, &c->flush,
                               &sv->flusher);
    if (rc != TSDB_OK) {
        log_error("cannot start StatsD in '%s/statsd': %s", c->db.dir,
                  tsdb_strerror(rc));
        return 1;
    }
    c->http.statsd = sv->flusher;
    if (start_detectors(sv, c) != 0)
        return 1;
    c->http.rollups = sv->rollups;
    c->http.detectors = sv->detectors;
    if (http_server_start(sv->db, &c->http, &sv->http, err, sizeof(err)) !=
        TSDB_OK) {
        log_error("%s", err);
        return 1;
    }
    uo.ctx = sv->flusher;
    if (c->statsd_udp &&
        statsd_udp_start(sv->sd, &uo, &sv->udp, err, sizeof(err)) != TSDB_OK) {
        log_error("%s", err);
        return 1;
    }
    return 0;
}

/* Stops what runs, in the order of the top comment.  Returns the exit
 * status. */
static int stop(struct server *sv)
{
    int status = 0, rc;

    http_server_stop(sv->http);
    statsd_udp_stop(sv->udp);
    if (sv->flusher) {
        rc = http_statsd_stop(sv->flusher);
        if (rc != TSDB_OK)
            log_warn("last StatsD flush failed: %s; its lines stay in the "
                     "journal for the next start",
                     tsdb_strerror(rc));
    }
    http_statsd_free(sv->flusher);
    statsd_close(sv->sd);
    statsd_tsdb_sink_release(&sv->sink_state);
    anomaly_close(sv->detectors);
    rollup_close(sv->rollups);
    if (sv->db) {
        rc = tsdb_close(sv->db);
        if (rc != TSDB_OK) {
            log_error("shutdown flush failed: %s", tsdb_strerror(rc));
            status = 1;
        }
    }
    return status;
}

int main(int argc, char **argv)
{
    struct server sv = {0};
    struct config c;
    sigset_t sigs;
    int sig, rc;

    config_init(&c);
    rc = parse_flags(argc, argv, &c);
    if (rc >= 0)
        return rc;

    /* Signals are taken by sigwait below, never by a worker thread. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    log_settings(&c);
    rc = start_storage(&sv, &c);
    if (rc == 0)
        rc = start_services(&sv, &c);
    if (rc != 0) {
        stop(&sv);
        return rc;
    }
    sigwait(&sigs, &sig);
    log_info("received %s: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    rc = stop(&sv);
    if (rc == 0)
        log_info("stopped cleanly");
    return rc;
}
