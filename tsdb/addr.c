/* HOST:PORT parsing for the server's flags (see addr.h). */
#include "tsdb/addr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tsdb/error.h"

int tsdb_addr_parse(const char *text, const char *flag, struct sockaddr_in *sa,
                    char *err, size_t errlen)
{
    const char *colon = strrchr(text, ':');
    char host[64];
    char *end;
    long port;

    memset(sa, 0, sizeof(*sa));
    sa->sin_family = AF_INET;
    if (!colon || (size_t)(colon - text) >= sizeof(host)) {
        snprintf(err, errlen, "%s '%s' is not HOST:PORT", flag, text);
        return TSDB_EINVAL;
    }
    memcpy(host, text, (size_t)(colon - text));
    host[colon - text] = '\0';
    port = strtol(colon + 1, &end, 10);
    if (*end || end == colon + 1 || port < 0 || port > 65535) {
        snprintf(err, errlen, "%s '%s': port must be 0 to 65535", flag, text);
        return TSDB_EINVAL;
    }
    if (inet_pton(AF_INET, host, &sa->sin_addr) != 1) {
        snprintf(err, errlen, "%s '%s': '%s' is not an IPv4 address", flag,
                 text, host);
        return TSDB_EINVAL;
    }
    sa->sin_port = htons((uint16_t)port);
    return TSDB_OK;
}
