/*
 * The scheduler's state, shared by engine.c (the list, the thread, the
 * API) and persist.c (definitions, model states and events on disk).
 * Not a public header.
 *
 * Threads: e->lock guards the list, every entry's published figures and
 * its events.  An entry's def and run belong to the scheduler thread; the
 * API never touches them once the entry is listed.  A deleted or replaced
 * entry moves to the graveyard, freed by the scheduler between
 * evaluations, so that the scheduler never holds a freed entry.
 */
#ifndef ANOMALY_ENGINE_INTERNAL_H
#define ANOMALY_ENGINE_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>

#include "anomaly/detector.h"
#include "anomaly/engine.h"
#include "anomaly/run.h"

/* Events kept in memory per detector (the file keeps them all). */
#define ENGINE_MAX_EVENTS 10000
/* How often model states are saved while running. */
#define ENGINE_SAVE_MS 60000

struct det_entry {
    struct detector_def def;
    struct run run;
    bool started;       /* warm-up or state load done */
    int64_t saved_wall; /* last state save, wall ms */
    struct tsdb_appender *app;
    /* Published under e->lock. */
    struct anomaly_event *events; /* open and closed, oldest first */
    size_t nevents, events_cap;
    size_t nseries;
    size_t state_bytes; /* one series' model state */
    int64_t last_step;
    int64_t last_wall_ms;
    double last_seconds;
    uint64_t evaluations, failures, opened, refused;
    size_t last_results;
    char status[320];       /* "ok", "warming up", an error, "no series" */
    bool removed;           /* deleted: its files must not come back */
    struct det_entry *next; /* graveyard */
};

struct anomaly_engine {
    struct tsdb *db;
    struct query_opts qo;
    char *dir;       /* DATA/detectors */
    char *defs_path; /* DATA/detectors.json */
    pthread_mutex_t lock;
    pthread_cond_t wake, done;
    struct det_entry **list; /* by name */
    size_t n;
    struct det_entry *graveyard;
    bool stop;
    uint64_t rounds; /* scheduler loops finished, for anomaly_sync */
    double seconds;
    pthread_t thread;
    bool running;
};

/* persist.c */
int persist_defs_load(struct anomaly_engine *e, const char *path, bool user,
                      char *err, size_t errlen);
int persist_defs_save(struct anomaly_engine *e);
int persist_state_save(struct anomaly_engine *e, struct det_entry *x);
bool persist_state_load(struct anomaly_engine *e, struct det_entry *x);
void persist_state_remove(struct anomaly_engine *e, const char *name);
int persist_event_append(struct anomaly_engine *e, const struct det_entry *x,
                         const struct anomaly_event *ev);
void persist_events_load(struct anomaly_engine *e, struct det_entry *x);
struct json_t *persist_event_object(const char *detector,
                                    const struct anomaly_event *ev);

/* engine.c */
int engine_add(struct anomaly_engine *e, struct det_entry *x, bool keep_same);
struct det_entry *engine_entry_new(const char *name, const char *json,
                                   size_t len, char *err, size_t errlen,
                                   int *rc);
void engine_entry_free(struct det_entry *x);
int engine_keep_event(struct det_entry *x, const struct anomaly_event *ev);

#endif
