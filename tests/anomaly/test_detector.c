/*
 * Detectors over a real database folder: definitions refused with the
 * field named; a run over stored history finds an injected spike and
 * gives the same results evaluated at once or step by step (the replay
 * and live paths are one); the scheduler warms up from history, writes
 * its result series and events, and picks its state up after a restart.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "anomaly/engine.h"
#include "anomaly/run.h"
#include "testutil.h"
#include "tsdb/db.h"

#define MIN 60000LL

struct fixture {
    char *dir;
    struct tsdb *db;
    struct query_opts qo;
    int64_t now;  /* a whole minute */
    int64_t from; /* first sample */
};

static int64_t wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A noisy flat series per region, a minute apart, over the last 6 hours;
 * eu gets a spike 30 minutes ago, for 3 minutes. */
static void write_history(struct fixture *f)
{
    static const char *regions[] = {"eu", "us"};
    struct tsdb_appender *a = tsdb_appender_new(f->db);
    struct test_rng rng;
    char err[256];

    test_rng_init(&rng, "detector", 0);
    for (int r = 0; r < 2; r++) {
        struct tsdb_label ls[2] = {{"__name__", "tokens"},
                                   {"region", regions[r]}};
        uint64_t ref;

        assert_int_equal(tsdb_appender_series(a, ls, 2, &ref, err, sizeof(err)),
                         TSDB_OK);
        for (int64_t t = f->from; t <= f->now; t += MIN) {
            double v = 100 + (double)test_rng_below(&rng, 1000) / 100;

            if (r == 0 && t >= f->now - 30 * MIN && t < f->now - 27 * MIN)
                v += 80;
            assert_int_equal(tsdb_appender_add(a, ref, t, v), TSDB_OK);
        }
    }
    assert_int_equal(tsdb_appender_commit(a, NULL), TSDB_OK);
    tsdb_appender_free(a);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    struct tsdb_options o;

    f->dir = test_tmpdir("detector");
    tsdb_options_init(&o);
    o.dir = f->dir;
    o.map_size = 64u << 20;
    assert_int_equal(tsdb_open(&o, &f->db), TSDB_OK);
    query_opts_init(&f->qo);
    f->now = wall_ms() / MIN * MIN;
    f->from = f->now - 6 * 60 * MIN;
    write_history(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    tsdb_close(f->db);
    test_rmdir(f->dir);
    free(f);
    return 0;
}

static void expect_bad(const char *json, const char *field)
{
    struct detector_def d;
    char err[512] = "";

    if (detector_def_parse("d", json, strlen(json), &d, err, sizeof(err)) !=
        TSDB_EINVAL)
        fail_msg("accepted: %s", json);
    if (strstr(err, field) == NULL)
        fail_msg("%s: error \"%s\" does not name %s", json, err, field);
}

static void bad_definitions_name_the_field(void **state)
{
    (void)state;
    expect_bad("{\"query\": \"sum(\", \"interval\": \"1m\", \"model\": "
               "\"ewma\"}",
               "field \"query\"");
    expect_bad("{\"query\": \"x[5m]\", \"interval\": \"1m\", \"model\": "
               "\"ewma\"}",
               "range vector");
    expect_bad("{\"query\": \"x\", \"interval\": \"1m\", \"model\": "
               "\"prophet\"}",
               "field \"model\": \"prophet\"");
    expect_bad("{\"query\": \"x\", \"interval\": \"0s\", \"model\": "
               "\"ewma\"}",
               "field \"interval\"");
    expect_bad("{\"query\": \"x\", \"interval\": \"1h\", \"model\": "
               "\"holt_winters\", \"params\": {\"season\": \"30m\"}}",
               "field \"params.season\": 30m is shorter than the interval");
    expect_bad("{\"query\": \"x\", \"interval\": \"1m\", \"model\": "
               "\"ewma\", \"params\": {\"alpha\": 7}}",
               "alpha");
    expect_bad("{\"query\": \"x\", \"interval\": \"1m\", \"model\": "
               "\"ewma\", \"params\": {\"beta\": 1}}",
               "beta");
    expect_bad("{\"query\": \"x\", \"interval\": \"1m\", \"model\": "
               "\"ewma\", \"sensitivity\": 0}",
               "field \"sensitivity\"");
    expect_bad("{\"query\": \"x\", \"interval\": \"1m\", \"model\": "
               "\"ewma\", \"timezone\": \"Mars/Olympus\"}",
               "field \"timezone\"");
    expect_bad(
        "{\"query\": \"x\", \"interval\": \"1m\", \"model\": "
        "\"ewma\", \"exclusions\": [{\"start\": \"2026-01-02T00:00:00Z\","
        " \"end\": \"2026-01-01T00:00:00Z\"}]}",
        "field \"exclusions\": entry 1");
    expect_bad("{\"query\": \"x\", \"interval\": \"1m\", \"model\": "
               "\"ewma\", \"treshold\": 3}",
               "field \"treshold\"");
}

static const char *const spike_def =
    "{\"query\": \"sum by (region) (tokens)\", \"interval\": \"1m\", "
    "\"model\": \"ewma\", \"min_duration\": \"0s\", "
    "\"history\": \"5h\"}";

struct record {
    int64_t from;
    size_t points, events_opened, events_closed;
    int64_t ev_start, ev_end;
    char ev_region[16];
    /* Every result, by region (eu, us) and step. */
    double score[2][400], expected[2][400], upper[2][400];
};

static int rec_point(void *ctx, const struct run_series *s, int64_t t, double v,
                     const struct anomaly_result *r, bool active)
{
    struct record *rec = ctx;
    int region = strcmp(s->labels.v[0].value, "eu") == 0 ? 0 : 1;
    size_t k = (size_t)((t - rec->from) / MIN);

    (void)v, (void)active;
    assert_true(k < 400);
    rec->points++;
    rec->score[region][k] = r->score;
    rec->expected[region][k] = r->expected;
    rec->upper[region][k] = r->upper;
    return TSDB_OK;
}

static int rec_event(void *ctx, const struct anomaly_event *ev)
{
    struct record *rec = ctx;

    if (ev->end == 0) {
        rec->events_opened++;
        rec->ev_start = ev->start;
        snprintf(rec->ev_region, sizeof(rec->ev_region), "%s",
                 ev->labels.n ? ev->labels.v[0].value : "");
    } else {
        rec->events_closed++;
        rec->ev_end = ev->end;
    }
    return TSDB_OK;
}

static void run_finds_the_spike_either_way(void **state)
{
    struct fixture *f = *state;
    struct detector_def d;
    struct run whole, steps;
    static struct record a, b;
    struct run_sink sa = {&a, rec_point, rec_event, NULL};
    struct run_sink sb = {&b, rec_point, rec_event, NULL};
    char err[512];

    assert_int_equal(detector_def_parse("spike", spike_def, strlen(spike_def),
                                        &d, err, sizeof(err)),
                     TSDB_OK);
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    a.from = b.from = f->from;
    run_init(&whole, &d);
    run_init(&steps, &d);
    assert_int_equal(run_steps(&whole, f->db, &f->qo, f->from, f->now, &sa, err,
                               sizeof(err)),
                     TSDB_OK);
    for (int64_t t = f->from; t <= f->now; t += 7 * MIN)
        assert_int_equal(
            run_steps(&steps, f->db, &f->qo, t,
                      t + 7 * MIN - 1 < f->now ? t + 7 * MIN - 1 : f->now, &sb,
                      err, sizeof(err)),
            TSDB_OK);
    assert_int_equal(whole.nseries, 2);
    assert_int_equal(a.points, 2 * 361);
    assert_int_equal(a.events_opened, 1);
    assert_int_equal(a.events_closed, 1);
    assert_string_equal(a.ev_region, "eu");
    assert_true(a.ev_start == f->now - 30 * MIN);
    assert_true(a.ev_end > a.ev_start && a.ev_end <= f->now - 20 * MIN);
    /* One path: step by step gives what the whole stretch gave. */
    assert_int_equal(b.points, a.points);
    assert_int_equal(b.events_opened, a.events_opened);
    assert_true(b.ev_start == a.ev_start && b.ev_end == a.ev_end);
    assert_memory_equal(a.score, b.score, sizeof(a.score));
    assert_memory_equal(a.expected, b.expected, sizeof(a.expected));
    assert_memory_equal(a.upper, b.upper, sizeof(a.upper));
    run_release(&whole);
    run_release(&steps);
    detector_def_release(&d);
}

static double instant(struct fixture *f, const char *q, int64_t t)
{
    struct query_result r;
    struct query_err err;
    double v = NAN;

    if (query_eval_instant(f->db, &f->qo, q, strlen(q), t, &r, &err) != TSDB_OK)
        fail_msg("%s: %s", q, err.msg);
    if (r.type == QUERY_TYPE_VECTOR && r.nseries > 0)
        v = r.series[0].v[0];
    query_result_release(&r);
    return v;
}

static void scheduler_warms_up_writes_and_restarts(void **state)
{
    struct fixture *f = *state;
    struct anomaly_engine *e;
    char err[512] = "", *list, *events;
    bool found;

    assert_int_equal(
        anomaly_open(f->db, &f->qo, f->dir, NULL, &e, err, sizeof(err)),
        TSDB_OK);
    assert_int_equal(
        anomaly_put(e, "spike", spike_def, strlen(spike_def), err, sizeof(err)),
        TSDB_OK);
    anomaly_sync(e);
    list = anomaly_list_json(e);
    if (strstr(list, "\"status\":\"ok\"") == NULL ||
        strstr(list, "\"series\":2") == NULL)
        fail_msg("%s", list);
    free(list);
    /* Learned from 5 hours, then evaluated the current step live. */
    assert_false(isnan(instant(f,
                               "anomaly_expected{detector=\"spike\","
                               "region=\"us\"}",
                               f->now)));
    assert_true(instant(f, "anomaly_score{detector=\"spike\",region=\"eu\"}",
                        f->now) < 0.5);
    events = anomaly_events_json(e, "spike", 0, INT64_MAX, &found);
    assert_true(found);
    assert_string_equal(events, "[]"); /* the spike was in the history */
    free(events);
    events = anomaly_events_json(e, "nope", 0, INT64_MAX, &found);
    assert_false(found);
    free(events);
    anomaly_close(e);
    /* The state file brings the models back: no warm-up this time. */
    assert_int_equal(
        anomaly_open(f->db, &f->qo, f->dir, NULL, &e, err, sizeof(err)),
        TSDB_OK);
    anomaly_sync(e);
    list = anomaly_list_json(e);
    assert_non_null(strstr(list, "\"name\":\"spike\""));
    assert_non_null(strstr(list, "\"series\":2"));
    assert_null(strstr(list, "evaluation failed"));
    free(list);
    assert_int_equal(anomaly_delete(e, "spike"), TSDB_OK);
    assert_int_equal(anomaly_delete(e, "spike"), TSDB_ENOTFOUND);
    anomaly_close(e);
}

/* A detector whose expression gives nothing says so. */
static void empty_expression_is_reported(void **state)
{
    struct fixture *f = *state;
    struct anomaly_engine *e;
    const char *def = "{\"query\": \"no_such_metric\", \"interval\": \"1m\", "
                      "\"model\": \"ewma\"}";
    char err[512] = "", *list;

    assert_int_equal(
        anomaly_open(f->db, &f->qo, f->dir, NULL, &e, err, sizeof(err)),
        TSDB_OK);
    assert_int_equal(
        anomaly_put(e, "empty", def, strlen(def), err, sizeof(err)), TSDB_OK);
    anomaly_sync(e);
    list = anomaly_list_json(e);
    assert_non_null(strstr(list, "no series: the expression returned nothing"));
    free(list);
    anomaly_close(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bad_definitions_name_the_field),
        cmocka_unit_test_setup_teardown(run_finds_the_spike_either_way, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(scheduler_warms_up_writes_and_restarts,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(empty_expression_is_reported, setup,
                                        teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
