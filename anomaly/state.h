/*
 * Saving and loading a detector run's model states (state.c has the file
 * layout).  Used by the scheduler and by tsdb-replay --save-state, which
 * hands what a replay learned to the live detector of the same name.
 */
#ifndef ANOMALY_STATE_H
#define ANOMALY_STATE_H

#include "anomaly/run.h"

/* Writes DIR/NAME.state (DIR created if missing).  TSDB_OK or TSDB_EIO. */
int anomaly_state_write(const char *dir, const struct run *r);

/*
 * Reads DIR/NAME.state into r (freshly initialised).  TSDB_OK;
 * TSDB_ENOTFOUND without a file; TSDB_EINVAL when the file belongs to
 * another definition or is damaged (r is then left empty).
 */
int anomaly_state_read(const char *dir, struct run *r);

#endif
