/*
 * Parsing of the "HOST:PORT" addresses the server's flags take (--listen,
 * --statsd-udp).  Shared base code, like log.h: no storage in it.
 */
#ifndef TSDB_ADDR_H
#define TSDB_ADDR_H

#include <netinet/in.h>
#include <stddef.h>

/*
 * Parses text as an IPv4 literal and a port 0..65535 into *sa.  Returns
 * TSDB_OK, or TSDB_EINVAL with err naming flag (e.g. "--listen"), the text
 * and what is wrong.
 */
int tsdb_addr_parse(const char *text, const char *flag, struct sockaddr_in *sa,
                    char *err, size_t errlen);

#endif
