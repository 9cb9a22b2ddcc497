/*
 * Seasons in a time zone: the phase of a time within a daily or weekly
 * season is counted in local time, so that a peak at 09:00 stays at
 * 09:00 across a daylight-saving change.  Zones are read from the
 * system's TZif files (/usr/share/zoneinfo), once per detector.
 */
#ifndef ANOMALY_SEASON_H
#define ANOMALY_SEASON_H

#include <stddef.h>
#include <stdint.h>

#include "anomaly/model.h"

struct anomaly_tz;

/*
 * Loads zone name ("Europe/Paris", "UTC").  TSDB_OK with *out (free with
 * anomaly_tz_free), TSDB_EINVAL with err when the zone is unknown or its
 * file unreadable, TSDB_ENOMEM.
 */
int anomaly_tz_load(const char *name, struct anomaly_tz **out, char *err,
                    size_t errlen);

void anomaly_tz_free(struct anomaly_tz *tz);

/* The offset from UTC of local time at t (ms since the epoch), in ms;
 * 0 for a NULL zone. */
int64_t anomaly_tz_offset(const struct anomaly_tz *tz, int64_t t);

/*
 * The phase of t within cfg's season, in steps: floor(local ms within the
 * season / interval).  Weekly seasons start on Monday 00:00 local time,
 * daily ones at midnight.  0 without a season.  tz NULL means UTC.
 */
uint32_t anomaly_phase(const struct anomaly_tz *tz,
                       const struct anomaly_config *cfg, int64_t t);

#endif
