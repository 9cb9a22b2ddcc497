/*
 * The log sink: formats one line and writes it with a single write(2) so
 * lines from several threads never interleave.
 */
#include "tsdb/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int tsdb_log_level = TSDB_LOG_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

bool tsdb_log_parse_level(const char *name, int *level)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *level = i;
            return true;
        }
    }
    return false;
}

void tsdb_log_write(int level, const char *module, const char *fmt, ...)
{
    char line[1024];
    struct timespec now;
    struct tm tm;
    size_t len;
    va_list ap;

    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    len = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    len += snprintf(line + len, sizeof(line) - len,
                    ".%03ldZ %s %s: ", now.tv_nsec / 1000000,
                    level_names[level & 3], module);
    va_start(ap, fmt);
    if (len < sizeof(line))
        len += vsnprintf(line + len, sizeof(line) - len, fmt, ap);
    va_end(ap);

    /* A line longer than the buffer is cut, never split across writes. */
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2;
    line[len++] = '\n';
    if (write(STDERR_FILENO, line, len) < 0)
        return;
}
