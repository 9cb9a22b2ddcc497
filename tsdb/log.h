/*
 * Logging: one line per event, "LEVEL module: message", to stderr.
 * The macros check the level before formatting, so a disabled debug line
 * costs one comparison.  Pure code (gorilla, pack) never logs.
 *
 * Each .c file that logs defines LOG_MODULE before including this header.
 * Messages start lowercase, say the problem first, quote the subject and end
 * without a full stop.
 */
#ifndef TSDB_LOG_H
#define TSDB_LOG_H

#include <stdbool.h>

enum tsdb_log_level {
    TSDB_LOG_ERROR = 0,
    TSDB_LOG_WARN = 1,
    TSDB_LOG_INFO = 2,
    TSDB_LOG_DEBUG = 3,
};

/* Lines above this level are dropped.  Default TSDB_LOG_INFO. */
extern int tsdb_log_level;

/* Parses "error", "warn", "info" or "debug"; false if name is none. */
bool tsdb_log_parse_level(const char *name, int *level);

void tsdb_log_write(int level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define TSDB_LOG_AT(lvl, ...)                                                  \
    do {                                                                       \
        if (tsdb_log_level >= (lvl))                                           \
            tsdb_log_write((lvl), LOG_MODULE, __VA_ARGS__);                    \
    } while (0)

#define log_error(...) TSDB_LOG_AT(TSDB_LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  TSDB_LOG_AT(TSDB_LOG_WARN, __VA_ARGS__)
#define log_info(...)  TSDB_LOG_AT(TSDB_LOG_INFO, __VA_ARGS__)
#define log_debug(...) TSDB_LOG_AT(TSDB_LOG_DEBUG, __VA_ARGS__)

#endif
