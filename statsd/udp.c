/*
 * The StatsD UDP reader (udp.h): one socket, one thread, one datagram per
 * statsd_ingest.  Layer: statsd/, above statsd.c, beside http/.
 *
 * Invariants:
 * 1. Only the reader thread touches buf and res; stats are atomics, read
 *    from any thread.
 * 2. The reader leaves its loop only when the wake-up pipe is readable
 *    (stop) or poll fails for good; stop writes the pipe, then joins, so
 *    the socket is closed only after the thread is gone.
 */
#define LOG_MODULE "statsd"
#include "statsd/udp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "tsdb/addr.h"
#include "tsdb/log.h"

/* Datagrams read per wake-up before poll is asked again, so that stop is
 * seen within one burst. */
#define BURST 256
/* A repeated receive error is logged at most this often. */
#define ERROR_LOG_EVERY_MS 60000

struct statsd_udp {
    struct statsd *s;
    int fd;
    int wake[2]; /* pipe: stop writes [1], the reader polls [0] */
    int port;
    pthread_t thread;
    void (*on_body)(void *ctx, int rc, const struct statsd_result *res);
    void *ctx;
    char *buf;                 /* STATSD_UDP_MAX_DATAGRAM bytes */
    struct statsd_result *res; /* about 13 KiB, so not on the stack */
    int64_t error_logged_ms;   /* when a receive error was last logged */
    uint64_t errors_unlogged;  /* receive errors since that line */
    atomic_uint_fast64_t datagrams, bytes, refused, receive_errors;
};

static int64_t now_ms(clockid_t clock)
{
    struct timespec ts;

    clock_gettime(clock, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A failed recvfrom: counted always, logged at most once a minute. */
static void receive_error(struct statsd_udp *u, int e)
{
    int64_t now = now_ms(CLOCK_MONOTONIC);

    atomic_fetch_add_explicit(&u->receive_errors, 1, memory_order_relaxed);
    if (u->error_logged_ms != 0 &&
        now - u->error_logged_ms < ERROR_LOG_EVERY_MS) {
        u->errors_unlogged++;
        return;
    }
    log_warn("cannot read a udp datagram on port %d: %s (%llu more errors "
             "since the last line)",
             u->port, strerror(e), (unsigned long long)u->errors_unlogged);
    u->error_logged_ms = now;
    u->errors_unlogged = 0;
}

/* One datagram in buf[0..n): ingested as one body. */
static void ingest(struct statsd_udp *u, size_t n)
{
    int rc = statsd_ingest(u->s, u->buf, n, now_ms(CLOCK_REALTIME), u->res);

    atomic_fetch_add_explicit(&u->datagrams, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&u->bytes, n, memory_order_relaxed);

    /* statsd.c logs a journal failure itself, once. */
    if (rc != TSDB_OK)
        atomic_fetch_add_explicit(&u->refused, 1, memory_order_relaxed);
    if (u->on_body)
        u->on_body(u->ctx, rc, u->res);
}

/* Reads what the socket holds, up to BURST datagrams. */
static void drain(struct statsd_udp *u)
{
    for (int i = 0; i < BURST; i++) {
        ssize_t n = recv(u->fd, u->buf, STATSD_UDP_MAX_DATAGRAM, MSG_DONTWAIT);

        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                receive_error(u, errno);
            return;
        }
        ingest(u, (size_t)n);
    }
}

static void *reader(void *arg)
{
    struct statsd_udp *u = arg;

    for (;;) {
        struct pollfd pf[2] = {{u->fd, POLLIN, 0}, {u->wake[0], POLLIN, 0}};

        if (poll(pf, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            log_error("udp reader on port %d stops: poll failed: %s", u->port,
                      strerror(errno));
            return NULL;
        }
        if (pf[1].revents != 0)
            return NULL;
        if (pf[0].revents != 0)
            drain(u);
    }
}

/* Creates and binds the socket; fills u->fd and u->port. */
static int bind_socket(struct statsd_udp *u, const char *listen, char *err,
                       size_t errlen)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    int rcvbuf = STATSD_UDP_RCVBUF;
    int rc = tsdb_addr_parse(listen, "--statsd-udp", &sa, err, errlen);

    if (rc != TSDB_OK)
        return rc;
    u->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (u->fd < 0 || bind(u->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        snprintf(err, errlen, "cannot listen for StatsD on udp %s: %s", listen,
                 strerror(errno));
        return TSDB_EIO;
    }

    /* Best effort: the host caps it at net.core.rmem_max. */
    setsockopt(u->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    getsockname(u->fd, (struct sockaddr *)&sa, &len);
    u->port = ntohs(sa.sin_port);
    return TSDB_OK;
}

static void udp_free(struct statsd_udp *u)
{
    if (u->fd >= 0)
        close(u->fd);
    if (u->wake[0] >= 0)
        close(u->wake[0]);
    if (u->wake[1] >= 0)
        close(u->wake[1]);
    free(u->buf);
    free(u->res);
    free(u);
}

int statsd_udp_start(struct statsd *s, const struct statsd_udp_options *o,
                     struct statsd_udp **out, char *err, size_t errlen)
{
    struct statsd_udp *u = calloc(1, sizeof(*u));
    int rc;

    if (errlen > 0)
        err[0] = '\0';
    if (!u)
        return TSDB_ENOMEM;
    u->fd = u->wake[0] = u->wake[1] = -1;
    u->s = s;
    u->on_body = o->on_body;
    u->ctx = o->ctx;
    u->buf = malloc(STATSD_UDP_MAX_DATAGRAM);
    u->res = malloc(sizeof(*u->res));
    rc = u->buf && u->res ? TSDB_OK : TSDB_ENOMEM;
    if (rc == TSDB_OK)
        rc = bind_socket(u, o->listen, err, errlen);
    if (rc == TSDB_OK && pipe2(u->wake, O_CLOEXEC | O_NONBLOCK) < 0) {
        snprintf(err, errlen, "cannot make a pipe: %s", strerror(errno));
        rc = TSDB_EIO;
    }
    if (rc == TSDB_OK && pthread_create(&u->thread, NULL, reader, u) != 0) {
        snprintf(err, errlen, "cannot start the udp reader thread");
        rc = TSDB_EIO;
    }
    if (rc != TSDB_OK) {
        udp_free(u);
        return rc;
    }
    log_info("listening for StatsD on udp %s (port %d)", o->listen, u->port);
    *out = u;
    return TSDB_OK;
}

int statsd_udp_port(const struct statsd_udp *u)
{
    return u->port;
}

void statsd_udp_stats_get(struct statsd_udp *u, struct statsd_udp_stats *st)
{
    st->datagrams = atomic_load_explicit(&u->datagrams, memory_order_relaxed);
    st->bytes = atomic_load_explicit(&u->bytes, memory_order_relaxed);
    st->refused = atomic_load_explicit(&u->refused, memory_order_relaxed);
    st->receive_errors =
        atomic_load_explicit(&u->receive_errors, memory_order_relaxed);
}

void statsd_udp_stop(struct statsd_udp *u)
{
    char one = 1;

    if (!u)
        return;

    /* A full pipe already holds a wake-up, so a short write is fine. */
    if (write(u->wake[1], &one, 1) < 0 && errno != EAGAIN)
        log_warn("cannot wake the udp reader: %s", strerror(errno));
    pthread_join(u->thread, NULL);
    udp_free(u);
}
