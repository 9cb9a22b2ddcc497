/*
 * Time zones read from the system's TZif files, and phases in local time:
 * offsets across daylight-saving changes, past the last transition of the
 * file (its footer rule), and the phase of a daily peak in winter and
 * summer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "anomaly/season.h"
#include "tsdb/error.h"

/* 2024-01-15 00:00:00 UTC, a Monday. */
#define JAN15 1705276800000LL
#define DAY   86400000LL
#define HOUR  3600000LL

static struct anomaly_tz *load(const char *name)
{
    struct anomaly_tz *tz = NULL;
    char err[256];

    assert_int_equal(anomaly_tz_load(name, &tz, err, sizeof(err)), TSDB_OK);
    return tz;
}

static void offsets_follow_daylight_saving(void **state)
{
    struct anomaly_tz *paris = load("Europe/Paris");
    struct anomaly_tz *ny = load("America/New_York");
    struct anomaly_tz *utc = load("UTC");
    /* 2024-03-31 01:00 UTC: Paris goes from +1 to +2. */
    int64_t switch_utc = 1711846800000LL;

    (void)state;
    assert_int_equal(anomaly_tz_offset(paris, JAN15), HOUR);
    assert_int_equal(anomaly_tz_offset(paris, switch_utc - 1), HOUR);
    assert_int_equal(anomaly_tz_offset(paris, switch_utc), 2 * HOUR);
    assert_int_equal(anomaly_tz_offset(ny, JAN15), -5 * HOUR);
    assert_int_equal(anomaly_tz_offset(ny, JAN15 + 180 * DAY), -4 * HOUR);
    assert_int_equal(anomaly_tz_offset(utc, JAN15), 0);
    /* 2040 is past the file's transitions: the footer rule answers.
     * 2040-01-01 and 2040-07-01, 12:00 UTC. */
    assert_int_equal(anomaly_tz_offset(paris, 2209032000000LL), HOUR);
    assert_int_equal(anomaly_tz_offset(paris, 2224756800000LL), 2 * HOUR);
    /* 2040-03-25 00:30 UTC is before the switch (last Sunday of March,
     * 01:00 UTC), 01:30 UTC after it. */
    assert_int_equal(anomaly_tz_offset(paris, 2216248200000LL), HOUR);
    assert_int_equal(anomaly_tz_offset(paris, 2216251800000LL), 2 * HOUR);
    assert_int_equal(anomaly_tz_offset(NULL, JAN15), 0);
    anomaly_tz_free(paris);
    anomaly_tz_free(ny);
    anomaly_tz_free(utc);
}

static void a_local_peak_keeps_its_phase(void **state)
{
    struct anomaly_tz *paris = load("Europe/Paris");
    struct anomaly_config daily = {.interval_ms = HOUR, .season_ms = DAY};
    struct anomaly_config weekly = {.interval_ms = HOUR, .season_ms = 7 * DAY};

    (void)state;
    /* 09:00 in Paris: 08:00 UTC in January, 07:00 UTC in July. */
    assert_int_equal(anomaly_phase(paris, &daily, JAN15 + 8 * HOUR), 9);
    assert_int_equal(anomaly_phase(paris, &daily, JAN15 + 182 * DAY + 7 * HOUR),
                     9);
    assert_int_equal(anomaly_phase(NULL, &daily, JAN15 + 8 * HOUR), 8);
    /* Weeks start on Monday 00:00 local: Sunday 23:00 UTC in Paris. */
    assert_int_equal(anomaly_phase(paris, &weekly, JAN15 - HOUR), 0);
    assert_int_equal(anomaly_phase(paris, &weekly, JAN15), 1);
    assert_int_equal(anomaly_phase(NULL, &weekly, JAN15), 0);
    assert_int_equal(anomaly_phase(NULL, &weekly, JAN15 - HOUR), 167);
    anomaly_tz_free(paris);
}

static void unknown_zones_are_refused(void **state)
{
    struct anomaly_tz *tz = NULL;
    char err[256];

    (void)state;
    assert_int_equal(anomaly_tz_load("Mars/Olympus", &tz, err, sizeof(err)),
                     TSDB_EINVAL);
    assert_non_null(strstr(err, "Mars/Olympus"));
    assert_int_equal(anomaly_tz_load("../etc/passwd", &tz, err, sizeof(err)),
                     TSDB_EINVAL);
    assert_null(tz);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(offsets_follow_daylight_saving),
        cmocka_unit_test(a_local_peak_keeps_its_phase),
        cmocka_unit_test(unknown_zones_are_refused),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
