/*
 * tsdb-load: HTTP load generator for the StatsD endpoint of a tsdbd on
 * this machine.  bench/run-write-bench runs it; it needs nothing but libc
 * and pthreads (it is linked like the other tools, but uses none of the
 * library).
 *
 *   tsdb-load [--port P] [--path PATH] [--clients N] [--seconds S]
 *             [--max-requests N] [--lines N] [--seed N]
 *
 * Each of --clients threads (default 8) keeps one HTTP/1.1 keep-alive
 * connection to 127.0.0.1:P (default 9201), bound to 127.0.0.1 on its own
 * side as well, and POSTs bodies of --lines DogStatsD lines (default 1000)
 * to PATH (default /api/v1/statsd) one after another until --seconds
 * (default 10) have passed or --max-requests (default 1000000) requests
 * were sent by all threads together.  Bodies are made before the clock
 * starts: 8 per thread, from a seeded generator (the same seed gives the
 * same bodies), so that the run measures the server and not the maker.
 *
 * The lines look like an LLM serving platform's: request and error
 * counters, a sampled token counter (@0.5), latency and time-to-first-
 * token timers, queue-depth and GPU gauges, tagged with region, model,
 * team, direction or instance: 2,650 distinct StatsD series in all.
 *
 * Prints "name value unit" lines: requests, lines sent and accepted
 * (from the answers' "accepted" figure when they carry one), lines/s,
 * request latency p50/p99/max, and errors by kind.  A connection that
 * fails is reopened; every socket has a 10 s send and receive timeout, so
 * the run ends by itself.  Exit 0 with no errors, 1 with any, 2 on bad
 * usage.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define LOAD_MAX_CLIENTS  256
#define LOAD_MAX_LINES    100000 /* the server's lines-per-body limit */
#define LOAD_MAX_REQUESTS 100000000
#define LOAD_MAX_SECONDS  3600
#define LOAD_BODIES       8            /* bodies per thread, sent in turn */
#define LOAD_LINE_MAX     160          /* longest line the generator makes */
#define LOAD_REPLY_MAX    (256u << 10) /* largest answer read */
#define LOAD_HEAD_MAX     512
#define LOAD_TIMEOUT_S    10

struct options {
    int port;
    const char *path;
    size_t clients, lines, max_requests;
    double seconds;
    uint64_t seed;
};

/* One client thread: its bodies, connection and figures. */
struct client {
    pthread_t thread;
    const struct options *o;
    char *body[LOAD_BODIES]; /* owned; free() */
    size_t body_len[LOAD_BODIES];
    int fd; /* -1 when not connected */
    char *reply;
    /* figures */
    uint64_t requests, ok, lines_ok, accepted;
    uint64_t err_connect, err_io, err_http;
    int first_status; /* of the first non-2xx answer */
    bool saw_accepted;
    uint32_t *lat_us; /* latency of every answered request */
    size_t nlat, lat_cap;
};

static atomic_bool stopping;
static atomic_size_t issued;
static double deadline;

static void die(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fputs("tsdb-load: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n);

    if (p == NULL)
        die("out of memory (%zu bytes)", n);
    return p;
}

static double now_s(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* ---- bodies ---- */

/* xorshift64*: the same bodies on every machine for one seed. */
static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * UINT64_C(2685821657736338717);
}

static size_t rng_below(uint64_t *s, size_t n)
{
    return (size_t)(rng_next(s) % n);
}

static const char *const regions[] = {"us-east", "us-west", "eu-west",
                                      "eu-central", "ap-south"};
static const char *const models[] = {
    "llama-3-70b", "llama-3-8b", "mistral-7b", "mixtral-8x7b", "qwen-72b",
    "gemma-27b",   "phi-3-mini", "command-r",  "dbrx",         "yi-34b"};
static const char *const teams[] = {"search", "ads",     "assist", "code",
                                    "docs",   "support", "infra",  "growth",
                                    "labs",   "mobile"};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/*
 * One line into out (LOAD_LINE_MAX bytes), newline included; returns its
 * length.  Families and their share of lines, with the distinct series
 * each can make: requests c 30% (500), errors c 5% (500), latency ms 30%
 * (500), ttft ms 10% (50), tokens c @0.5 15% (100), queue_depth g 5%
 * (500), gpu utilization g 5% (500 instances).
 */
static size_t make_line(uint64_t *s, char *out)
{
    const char *r = regions[rng_below(s, COUNT(regions))];
    const char *m = models[rng_below(s, COUNT(models))];
    const char *t = teams[rng_below(s, COUNT(teams))];
    size_t pick = rng_below(s, 100);
    int n;

    if (pick < 30)
        n = snprintf(out, LOAD_LINE_MAX,
                     "llm.requests:1|c|#region:%s,model:%s,team:%s\n", r, m, t);
    else if (pick < 35)
        n = snprintf(out, LOAD_LINE_MAX,
                     "llm.errors:1|c|#region:%s,model:%s,team:%s\n", r, m, t);
    else if (pick < 65)
        n = snprintf(out, LOAD_LINE_MAX,
                     "llm.latency:%zu.%zu|ms|#region:%s,model:%s,team:%s\n",
                     20 + rng_below(s, 3000), rng_below(s, 10), r, m, t);
    else if (pick < 75)
        n = snprintf(out, LOAD_LINE_MAX,
                     "llm.ttft:%zu|ms|#region:%s,model:%s\n",
                     5 + rng_below(s, 800), r, m);
    else if (pick < 90)
        n = snprintf(out, LOAD_LINE_MAX,
                     "llm.tokens:%zu|c|@0.5|#region:%s,model:%s,"
                     "direction:%s\n",
                     1 + rng_below(s, 4000), r, m,
                     rng_below(s, 2) ? "in" : "out");
    else if (pick < 95)
        n = snprintf(out, LOAD_LINE_MAX,
                     "llm.queue_depth:%zu|g|#region:%s,model:%s,team:%s\n",
                     rng_below(s, 40), r, m, t);
    else
        n = snprintf(out, LOAD_LINE_MAX,
                     "gpu.utilization:%zu.%zu|g|#region:%s,instance:i-%03zu\n",
                     rng_below(s, 101), rng_below(s, 10), r, rng_below(s, 100));
    return (size_t)n;
}

/* Fills c's bodies with o->lines lines each. */
static void make_bodies(struct client *c, uint64_t seed)
{
    uint64_t s = seed ? seed : 1;

    for (size_t b = 0; b < LOAD_BODIES; b++) {
        char *p = xmalloc(c->o->lines * LOAD_LINE_MAX);
        size_t len = 0;

        for (size_t i = 0; i < c->o->lines; i++)
            len += make_line(&s, p + len);
        c->body[b] = p;
        c->body_len[b] = len;
    }
}

/* ---- one connection ---- */

static void set_timeouts(int fd)
{
    struct timeval tv = {LOAD_TIMEOUT_S, 0};
    int one = 1;

    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* Connects c to 127.0.0.1:port from 127.0.0.1; false on failure. */
static bool client_connect(struct client *c)
{
    struct sockaddr_in local = {.sin_family = AF_INET};
    struct sockaddr_in peer = {.sin_family = AF_INET};
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    if (fd < 0)
        return false;
    local.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    peer.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    peer.sin_port = htons((uint16_t)c->o->port);
    set_timeouts(fd);
    if (bind(fd, (struct sockaddr *)&local, sizeof(local)) != 0 ||
        connect(fd, (struct sockaddr *)&peer, sizeof(peer)) != 0) {
        close(fd);
        return false;
    }
    c->fd = fd;
    return true;
}

static void client_disconnect(struct client *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

static bool send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* What one answer said. */
struct answer {
    int status;
    bool close;         /* the server will close the connection */
    long long accepted; /* the body's "accepted" figure, or -1 */
};

/* Case-insensitive search for a header name at a line start in head. */
static const char *header(const char *head, const char *name)
{
    size_t n = strlen(name);

    for (const char *p = strstr(head, "\r\n"); p; p = strstr(p + 2, "\r\n"))
        if (strncasecmp(p + 2, name, n) == 0)
            return p + 2 + n;
    return NULL;
}

/*
 * Reads more of the answer into c->reply[*got..]; false on a closed
 * connection, a timeout or an answer over LOAD_REPLY_MAX.
 */
static bool read_more(struct client *c, size_t *got)
{
    ssize_t n;

    if (*got + 1 >= LOAD_REPLY_MAX)
        return false;
    do
        n = recv(c->fd, c->reply + *got, LOAD_REPLY_MAX - 1 - *got, 0);
    while (n < 0 && errno == EINTR);
    if (n <= 0)
        return false;
    *got += (size_t)n;
    c->reply[*got] = '\0';
    return true;
}

/*
 * Decodes a chunked body in place from p (where the body starts, *got
 * bytes into c->reply) until the last chunk; false if the connection
 * fails first.  The body ends up NUL-terminated at p.
 */
static bool read_chunked(struct client *c, size_t *got, char *p)
{
    size_t body = (size_t)(p - c->reply), out = body, at = body;

    for (;;) {
        char *eol, *end;
        unsigned long len;

        while (!(eol = strstr(c->reply + at, "\r\n")))
            if (!read_more(c, got))
                return false;
        len = strtoul(c->reply + at, &end, 16);
        while (*got < (size_t)(eol - c->reply) + 2 + len + 2)
            if (!read_more(c, got))
                return false;
        memmove(c->reply + out, eol + 2, len);
        out += len;
        at = (size_t)(eol - c->reply) + 2 + len + 2;
        if (len == 0)
            break;
    }
    c->reply[out] = '\0';
    return true;
}

/* Reads one whole answer; false if the connection failed first. */
static bool read_answer(struct client *c, struct answer *a)
{
    size_t got = 0, need;
    const char *v, *acc;
    char *end;

    while (!(end = strstr(c->reply, "\r\n\r\n")))
        if (!read_more(c, &got))
            return false;
    *end = '\0';
    a->status = got > 12 ? atoi(c->reply + 9) : 0;
    v = header(c->reply, "connection:");
    a->close = (v && strstr(v, "close") == v + strspn(v, " ")) ||
               strncmp(c->reply, "HTTP/1.0", 8) == 0;
    if ((v = header(c->reply, "transfer-encoding:")) && strstr(v, "chunked")) {
        if (!read_chunked(c, &got, end + 4))
            return false;
    } else {
        v = header(c->reply, "content-length:");
        need = (size_t)(end + 4 - c->reply) + (v ? strtoul(v, NULL, 10) : 0);
        while (got < need)
            if (!read_more(c, &got))
                return false;
    }
    acc = strstr(end + 4, "\"accepted\":");
    a->accepted = acc ? atoll(acc + 11) : -1;
    return true;
}

/* ---- the client loop ---- */

static void note_latency(struct client *c, double seconds)
{
    if (c->nlat == c->lat_cap) {
        size_t cap = c->lat_cap ? c->lat_cap * 2 : 4096;
        uint32_t *p = realloc(c->lat_us, cap * sizeof(*p));

        if (p == NULL)
            die("out of memory for latencies");
        c->lat_us = p;
        c->lat_cap = cap;
    }
    c->lat_us[c->nlat++] = (uint32_t)fmin(seconds * 1e6, UINT32_MAX);
}

/* Sends body b and reads the answer; false when the connection failed. */
static bool exchange(struct client *c, size_t b, struct answer *a)
{
    char head[LOAD_HEAD_MAX];
    int n = snprintf(head, sizeof(head),
                     "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     "Content-Type: text/plain\r\nContent-Length: %zu\r\n\r\n",
                     c->o->path, c->body_len[b]);

    c->reply[0] = '\0';
    return send_all(c->fd, head, (size_t)n) &&
           send_all(c->fd, c->body[b], c->body_len[b]) && read_answer(c, a);
}

/* One request on c's connection, opening it if needed; counts the result. */
static void one_request(struct client *c, size_t b)
{
    struct answer a;
    double t0;

    if (c->fd < 0 && !client_connect(c)) {
        c->err_connect++;
        usleep(10000); /* a refused connect must not spin */
        return;
    }
    t0 = now_s();
    c->requests++;
    if (!exchange(c, b, &a)) {
        c->err_io++;
        client_disconnect(c);
        return;
    }
    note_latency(c, now_s() - t0);
    if (a.status >= 200 && a.status < 300) {
        c->ok++;
        c->lines_ok += c->o->lines;
    } else {
        if (c->err_http++ == 0)
            c->first_status = a.status;
    }
    if (a.accepted >= 0) {
        c->accepted += (uint64_t)a.accepted;
        c->saw_accepted = true;
    }
    if (a.close)
        client_disconnect(c);
}

static void *client_main(void *arg)
{
    struct client *c = arg;

    for (size_t b = 0; !atomic_load(&stopping); b = (b + 1) % LOAD_BODIES) {
        if (now_s() >= deadline ||
            atomic_fetch_add(&issued, 1) >= c->o->max_requests) {
            atomic_store(&stopping, true);
            break;
        }
        one_request(c, b);
    }
    client_disconnect(c);
    return NULL;
}

/* ---- figures ---- */

static void figure(const char *name, double v, const char *unit)
{
    if (fabs(v) >= 1000 || v == floor(v))
        printf("%-24s %.0f %s\n", name, v, unit);
    else
        printf("%-24s %.4g %s\n", name, v, unit);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return (x > y) - (x < y);
}

/* The q-quantile (nearest rank) of sorted v[0..n), in ms; 0 if n is 0. */
static double quantile_ms(const uint32_t *v, size_t n, double q)
{
    size_t i;

    if (n == 0)
        return 0;
    i = (size_t)ceil(q * (double)n);
    return (double)v[i > 0 ? i - 1 : 0] / 1000.0;
}

/* Adds up every client's figures and prints them; returns the errors. */
static uint64_t report(struct client *cl, const struct options *o,
                       double elapsed)
{
    struct client t = {0};
    uint32_t *all;
    size_t n = 0;

    for (size_t i = 0; i < o->clients; i++) {
        t.requests += cl[i].requests;
        t.ok += cl[i].ok;
        t.lines_ok += cl[i].lines_ok;
        t.accepted += cl[i].accepted;
        t.saw_accepted |= cl[i].saw_accepted;
        t.err_connect += cl[i].err_connect;
        t.err_io += cl[i].err_io;
        t.err_http += cl[i].err_http;
        if (t.first_status == 0)
            t.first_status = cl[i].first_status;
        n += cl[i].nlat;
    }
    all = xmalloc((n ? n : 1) * sizeof(*all));
    n = 0;
    for (size_t i = 0; i < o->clients; i++) {
        memcpy(all + n, cl[i].lat_us, cl[i].nlat * sizeof(*all));
        n += cl[i].nlat;
    }
    qsort(all, n, sizeof(*all), cmp_u32);
    figure("clients", (double)o->clients, "");
    figure("lines_per_body", (double)o->lines, "");
    figure("seconds", elapsed, "s");
    figure("requests", (double)t.requests, "");
    figure("requests_ok", (double)t.ok, "");
    figure("lines_sent_ok", (double)t.lines_ok, "lines");
    if (t.saw_accepted)
        figure("lines_accepted", (double)t.accepted, "lines");
    figure("lines_per_s", (double)t.lines_ok / elapsed, "lines/s");
    figure("requests_per_s", (double)t.ok / elapsed, "requests/s");
    figure("latency_p50_ms", quantile_ms(all, n, 0.50), "ms");
    figure("latency_p99_ms", quantile_ms(all, n, 0.99), "ms");
    figure("latency_max_ms", n ? (double)all[n - 1] / 1000.0 : 0, "ms");
    figure("errors_connect", (double)t.err_connect, "");
    figure("errors_io", (double)t.err_io, "");
    figure("errors_http", (double)t.err_http, "");
    if (t.err_http)
        figure("first_error_status", (double)t.first_status, "");
    free(all);
    return t.err_connect + t.err_io + t.err_http;
}

/* ---- options ---- */

static void usage(void)
{
    fprintf(stderr,
            "usage: tsdb-load [--port P] [--path PATH] [--clients N]\n"
            "                 [--seconds S] [--max-requests N] [--lines N]\n"
            "                 [--seed N]\n"
            "POSTs DogStatsD bodies to http://127.0.0.1:P/PATH from N\n"
            "keep-alive connections for S seconds (defaults: 9201,\n"
            "/api/v1/statsd, 8, 10, 1000000 requests, 1000 lines, seed 1).\n");
    exit(2);
}

static unsigned long long parse_num(const char *s, unsigned long long min,
                                    unsigned long long max)
{
    char *end;
    unsigned long long v;

    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || end == s || v < min || v > max)
        usage();
    return v;
}

static void parse_args(int argc, char **argv, struct options *o)
{
    *o = (struct options){9201, "/api/v1/statsd", 8, 1000, 1000000, 10, 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

        if (v == NULL || a[0] != '-')
            usage();
        i++;
        if (strcmp(a, "--port") == 0)
            o->port = (int)parse_num(v, 1, 65535);
        else if (strcmp(a, "--path") == 0 && v[0] == '/' &&
                 strlen(v) < LOAD_HEAD_MAX / 2 && !strpbrk(v, " \r\n"))
            o->path = v;
        else if (strcmp(a, "--clients") == 0)
            o->clients = parse_num(v, 1, LOAD_MAX_CLIENTS);
        else if (strcmp(a, "--seconds") == 0)
            o->seconds = (double)parse_num(v, 1, LOAD_MAX_SECONDS);
        else if (strcmp(a, "--max-requests") == 0)
            o->max_requests = parse_num(v, 1, LOAD_MAX_REQUESTS);
        else if (strcmp(a, "--lines") == 0)
            o->lines = parse_num(v, 1, LOAD_MAX_LINES);
        else if (strcmp(a, "--seed") == 0)
            o->seed = parse_num(v, 0, UINT64_MAX);
        else
            usage();
    }
}

int main(int argc, char **argv)
{
    struct options o;
    struct client *cl;
    double t0, elapsed;
    uint64_t errors;

    parse_args(argc, argv, &o);
    signal(SIGPIPE, SIG_IGN);
    cl = calloc(o.clients, sizeof(*cl));
    if (cl == NULL)
        die("out of memory");
    for (size_t i = 0; i < o.clients; i++) {
        cl[i].o = &o;
        cl[i].fd = -1;
        cl[i].reply = xmalloc(LOAD_REPLY_MAX);
        make_bodies(&cl[i], o.seed + i * UINT64_C(0x9e3779b97f4a7c15));
    }

    /* The clock starts once every body is made. */
    t0 = now_s();
    deadline = t0 + o.seconds;
    for (size_t i = 0; i < o.clients; i++)
        if (pthread_create(&cl[i].thread, NULL, client_main, &cl[i]) != 0)
            die("cannot start client thread %zu", i);
    for (size_t i = 0; i < o.clients; i++)
        pthread_join(cl[i].thread, NULL);
    elapsed = now_s() - t0;

    errors = report(cl, &o, elapsed);
    for (size_t i = 0; i < o.clients; i++) {
        for (size_t b = 0; b < LOAD_BODIES; b++)
            free(cl[i].body[b]);
        free(cl[i].reply);
        free(cl[i].lat_us);
    }
    free(cl);
    return errors ? 1 : 0;
}
