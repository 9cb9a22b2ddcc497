/*
 * StatsD over UDP: one thread reads datagrams from one socket and hands
 * each to statsd_ingest as one body, so that UDP lines go through the same
 * parser, journal and aggregation as POST /api/v1/statsd.  It sits beside
 * the HTTP server, above statsd.h; it knows nothing of HTTP.
 *
 * A datagram is read whole into a buffer of STATSD_UDP_MAX_DATAGRAM bytes,
 * which holds the largest UDP payload over IPv4, and ingested with its
 * arrival time.  After each one, on_body (if set) receives statsd_ingest's
 * code and result: the server counts accepted and rejected lines there.
 *
 * LIMIT: UDP gives no acknowledgement.  Why: the protocol has none.
 * Matters when the socket buffer overflows (bursts faster than ingest):
 * the kernel drops datagrams, counted only in the host's UDP statistics
 * (RcvbufErrors in /proc/net/snmp).  Behaviour: the lines are lost
 * silently; the buffer is raised to STATSD_UDP_RCVBUF where the host
 * allows.  Clients that need every line use HTTP.
 *
 * Threads: start and stop from one thread; stats from any.  The reader
 * waits in poll(2) on the socket and a wake-up pipe, so stop returns as
 * soon as the datagram being ingested (if any) is done.
 */
#ifndef STATSD_UDP_H
#define STATSD_UDP_H

#include <stddef.h>
#include <stdint.h>

#include "statsd/statsd.h"

/* Buffer for one datagram.  Why 64 KiB: an IPv4 UDP payload is at most
 * 65507 bytes, so no datagram is ever cut. */
#define STATSD_UDP_MAX_DATAGRAM 65536
/* Socket receive buffer asked for, bytes (the host may cap it lower). */
#define STATSD_UDP_RCVBUF (4 << 20)

struct statsd_udp_options {
    const char *listen; /* "HOST:PORT", IPv4 literal; port 0 picks one */
    /*
     * Called on the reader thread after each datagram with statsd_ingest's
     * code and result (borrowed until it returns).  May be NULL.
     */
    void (*on_body)(void *ctx, int rc, const struct statsd_result *res);
    void *ctx;
};

struct statsd_udp_stats {
    uint64_t datagrams;      /* read and handed to statsd_ingest */
    uint64_t bytes;          /* their payload bytes */
    uint64_t refused;        /* datagrams statsd_ingest refused whole */
    uint64_t receive_errors; /* recvfrom failures other than EAGAIN */
};

struct statsd_udp;

/*
 * Binds o->listen and starts the reader for s (borrowed: it must outlive
 * the reader, so stop the reader before statsd_close).  Returns TSDB_OK
 * with *out (stop with statsd_udp_stop); TSDB_EINVAL for an address that
 * does not parse; TSDB_EIO when the socket cannot be bound or the thread
 * cannot start; TSDB_ENOMEM.  err (always NUL-terminated) says why.
 */
int statsd_udp_start(struct statsd *s, const struct statsd_udp_options *o,
                     struct statsd_udp **out, char *err, size_t errlen);

/* The port the socket is bound to (useful after port 0). */
int statsd_udp_port(const struct statsd_udp *u);

/* Counts so far.  Any thread. */
void statsd_udp_stats_get(struct statsd_udp *u, struct statsd_udp_stats *st);

/* Wakes and joins the reader, closes the socket, frees u.  Datagrams that
 * were not read yet are dropped.  NULL is a no-op. */
void statsd_udp_stop(struct statsd_udp *u);

#endif
