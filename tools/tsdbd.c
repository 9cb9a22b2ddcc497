/*
 * tsdbd: the server.  Opens the data folder, serves HTTP on a loopback
 * address (routes in http/routes.h), and on SIGTERM or SIGINT stops
 * accepting, checkpoints (flush, sync) and exits 0.  Exit status 2 for a
 * bad flag, 1 when the folder or the address cannot be used.
 */
#define LOG_MODULE "tsdbd"
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/server.h"
#include "tsdb/db.h"
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
        "  --wal-sync DUR      fsync the write-ahead log this often; 0 "
        "syncs\n"
        "                      every write (default 1s).  Writes survive a\n"
        "                      crash of the process either way; this bounds\n"
        "                      what a power loss can take\n"
        "  --max-series N      refuse new series past N (default 5000000)\n"
        "  --map-size BYTES    LMDB map size, suffixes K M G T (default 64G)\n"
        "  --threads N         HTTP request threads (default 4)\n"
        "  --max-body SIZE     largest request body read whole (export form\n"
        "                      bodies, later StatsD); larger ones get 413\n"
        "                      (default 64M; suffixes K M G T)\n"
        "  --max-import-body SIZE\n"
        "                      largest body for /api/v1/import/prometheus,\n"
        "                      which is streamed in bounded memory whatever\n"
        "                      its size; 0 is no limit (default 0)\n"
        "  --import-batch N    samples per commit during an import, 1 to\n"
        "                      1000000 (default 50000); each commit is\n"
        "                      durable, the answer comes after the last\n"
        "  --slow-request DUR  log requests that take longer (default 1s)\n"
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

/*
 * Reads the flags into o and ho.  Returns -1 to go on, else the exit
 * status (0 after --help, 2 for a bad flag).  One flat switch over the
 * flags, so it stays whole.
 */
static int parse_flags(int argc, char **argv, struct tsdb_options *o,
                       struct http_server_options *ho)
{
    static const struct option longopts[] = {
        {"data", required_argument, NULL, 'd'},
        {"listen", required_argument, NULL, 'l'},
        {"retention", required_argument, NULL, 'r'},
        {"wal-sync", required_argument, NULL, 'w'},
        {"max-series", required_argument, NULL, 's'},
        {"map-size", required_argument, NULL, 'm'},
        {"threads", required_argument, NULL, 't'},
        {"max-body", required_argument, NULL, 'b'},
        {"max-import-body", required_argument, NULL, 'i'},
        {"import-batch", required_argument, NULL, 'n'},
        {"slow-request", required_argument, NULL, 'q'},
        {"log-level", required_argument, NULL, 'v'},
        {"no-compact", no_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    uint64_t size;
    int64_t ms;
    int opt;

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
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "tsdbd: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    return -1;
}

int main(int argc, char **argv)
{
    struct http_server_options ho;
    struct tsdb_options o;
    struct http_server *srv = NULL;
    struct tsdb *db;
    sigset_t sigs;
    char err[256];
    int sig, rc;

    tsdb_options_init(&o);
    http_server_options_init(&ho);
    o.compact_on_close = true;
    rc = parse_flags(argc, argv, &o, &ho);
    if (rc >= 0)
        return rc;

    /* Signals are taken by sigwait below, never by a worker thread. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    log_info("starting: data '%s', listen %s, retention %" PRId64
             " ms, wal-sync %d ms, max-series %zu, map-size %zu, "
             "compact at shutdown %s, max-body %zu, max-import-body %" PRIu64
             ", import-batch %zu",
             o.dir, ho.listen, o.retention_ms, o.wal_sync_ms, o.max_series,
             o.map_size, o.compact_on_close ? "on" : "off", ho.max_body,
             ho.max_import_body, ho.import_batch);
    rc = tsdb_open(&o, &db);
    if (rc != TSDB_OK) {
        log_error("cannot open data folder '%s': %s", o.dir, tsdb_strerror(rc));
        return 1;
    }
    rc = http_server_start(db, &ho, &srv, err, sizeof(err));
    if (rc != TSDB_OK) {
        log_error("%s", err);
        tsdb_close(db);
        return 1;
    }
    sigwait(&sigs, &sig);
    log_info("received %s: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    http_server_stop(srv);
    rc = tsdb_close(db);
    if (rc != TSDB_OK) {
        log_error("shutdown flush failed: %s", tsdb_strerror(rc));
        return 1;
    }
    log_info("stopped cleanly");
    return 0;
}
