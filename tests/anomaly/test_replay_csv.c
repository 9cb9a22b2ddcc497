/*
 * tsdb-replay's CSV mode (anomaly/replay_csv.c): a folder walked with
 * its sub-folders kept, one output row per valid input row in input
 * order (timestamps that repeat or step back included), bad rows
 * reported with file and line and skipped, or fatal with --strict,
 * unknown parameters and missing inputs refused with a clear message.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "anomaly/replay_csv.h"
#include "testutil.h"
#include "tsdb/error.h"

struct fixture {
    char *dir;
    char in[512], out[512];
    char *log;
    size_t loglen;
    FILE *logf;
    struct anomaly_replay_opts o;
};

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[1024];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* Reads a whole file into a malloc'd string (free it), NULL if absent. */
static char *read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    char *buf;
    long n;

    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = calloc(1, (size_t)n + 1);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    return buf;
}

/* A.csv: 60 rows every 5 minutes.  sub/b.csv: CRLF, a repeated and a
 * backward timestamp (a daylight-saving change), a bad value on line 4,
 * a bad timestamp on line 6, a blank line.  notes.txt: not a CSV. */
static const char b_csv[] = "timestamp,value\r\n"
                            "2014-04-10 07:15:00,1.5\r\n"
                            "2014-04-10 07:20:00,2\r\n"
                            "2014-04-10 07:25:00,abc\r\n"
                            "2014-04-10 07:25:00,3\r\n"
                            "2014-04-10 7:30,4\r\n"
                            "2014-04-10 07:20:00,5e0\r\n"
                            "\r\n"
                            "2014-04-10 07:35:00,6\r\n";

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    char buf[4096];
    size_t used = 0;

    assert_non_null(fx);
    fx->dir = test_tmpdir("replay");
    assert_non_null(fx->dir);
    snprintf(fx->in, sizeof(fx->in), "%s/in", fx->dir);
    snprintf(fx->out, sizeof(fx->out), "%s/out", fx->dir);
    assert_int_equal(mkdir(fx->in, 0777), 0);
    snprintf(buf, sizeof(buf), "%s/sub", fx->in);
    assert_int_equal(mkdir(buf, 0777), 0);

    used = (size_t)snprintf(buf, sizeof(buf), "timestamp,value\n");
    for (int i = 0; i < 60; i++)
        used += (size_t)snprintf(buf + used, sizeof(buf) - used,
                                 "2014-04-10 %02d:%02d:00,%d\n", 8 + i / 12,
                                 i % 12 * 5, 10 + i % 3);
    write_file(fx->in, "a.csv", buf);
    write_file(fx->in, "sub/b.csv", b_csv);
    write_file(fx->in, "notes.txt", "not a csv\n");

    fx->logf = open_memstream(&fx->log, &fx->loglen);
    assert_non_null(fx->logf);
    anomaly_replay_opts_init(&fx->o);
    fx->o.model = anomaly_model_find("ewma");
    fx->o.log = fx->logf;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;

    fclose(fx->logf);
    free(fx->log);
    test_rmdir(fx->dir);
    free(fx);
    return 0;
}

static int replay(struct fixture *fx, const char *input, char *err,
                  size_t errlen, struct anomaly_replay_stats *st)
{
    const char *inputs[1] = {input};

    return anomaly_replay_csv(&fx->o, inputs, 1, fx->out, st, err, errlen);
}

static void test_replay_csv_walks_folder_row_for_row(void **state)
{
    struct fixture *fx = *state;
    struct anomaly_replay_stats st;
    char err[512], path[1024];
    char *b;

    assert_int_equal(replay(fx, fx->in, err, sizeof(err), &st), TSDB_OK);
    assert_int_equal(st.files, 2);
    assert_int_equal(st.rows, 60 + 5);
    assert_int_equal(st.bad_rows, 2);

    snprintf(path, sizeof(path), "%s/sub/b.csv", fx->out);
    b = read_file(path);
    assert_non_null(b);
    /* Input order and text, whatever the timestamps do. */
    assert_string_equal(b, "timestamp,value,anomaly_score\n"
                           "2014-04-10 07:15:00,1.5,0\n"
                           "2014-04-10 07:20:00,2,0\n"
                           "2014-04-10 07:25:00,3,0\n"
                           "2014-04-10 07:20:00,5e0,0\n"
                           "2014-04-10 07:35:00,6,0\n");
    free(b);

    snprintf(path, sizeof(path), "%s/a.csv", fx->out);
    b = read_file(path);
    assert_non_null(b);
    assert_non_null(strstr(b, "\n2014-04-10 12:55:00,12,"));
    free(b);
    snprintf(path, sizeof(path), "%s/notes.txt", fx->out);
    assert_null(read_file(path));
}

static void test_replay_csv_bad_rows_name_file_and_line(void **state)
{
    struct fixture *fx = *state;
    struct anomaly_replay_stats st;
    char err[512], in[1024];
    char *out;

    snprintf(in, sizeof(in), "%s/sub/b.csv", fx->in);
    assert_int_equal(replay(fx, in, err, sizeof(err), &st), TSDB_OK);
    fflush(fx->logf);
    assert_non_null(strstr(fx->log, "b.csv:4: value is not a finite number"));
    assert_non_null(strstr(fx->log, "b.csv:6: bad timestamp"));
    assert_int_equal(st.bad_rows, 2);
    /* A single file lands under its base name. */
    snprintf(in, sizeof(in), "%s/b.csv", fx->out);
    out = read_file(in);
    assert_non_null(out);
    free(out);
}

static void test_replay_csv_strict_fails_on_bad_row(void **state)
{
    struct fixture *fx = *state;
    struct anomaly_replay_stats st;
    char err[512];

    fx->o.strict = true;
    assert_int_equal(replay(fx, fx->in, err, sizeof(err), &st), TSDB_EINVAL);
    assert_non_null(strstr(err, "b.csv:4: value is not a finite number"));
}

static void test_replay_csv_refuses_missing_and_unknown(void **state)
{
    struct fixture *fx = *state;
    struct anomaly_replay_stats st;
    const char *names[1] = {"alpah"}, *values[1] = {"0.1"};
    char err[512], in[1024];

    snprintf(in, sizeof(in), "%s/nowhere", fx->dir);
    assert_int_equal(replay(fx, in, err, sizeof(err), &st), TSDB_ENOTFOUND);
    assert_non_null(strstr(err, "nowhere: no such file or folder"));

    fx->o.names = names;
    fx->o.values = values;
    fx->o.nparams = 1;
    assert_int_equal(anomaly_replay_check(&fx->o, err, sizeof(err)),
                     TSDB_EINVAL);
    assert_non_null(strstr(err, "unknown parameter \"alpah\""));
    assert_int_equal(replay(fx, fx->in, err, sizeof(err), &st), TSDB_EINVAL);
}

static void test_replay_csv_refuses_file_without_rows(void **state)
{
    struct fixture *fx = *state;
    struct anomaly_replay_stats st;
    char err[512], in[1024];

    write_file(fx->in, "empty.csv", "timestamp,value\n");
    snprintf(in, sizeof(in), "%s/empty.csv", fx->in);
    assert_int_equal(replay(fx, in, err, sizeof(err), &st), TSDB_EINVAL);
    assert_non_null(strstr(err, "empty.csv: no rows"));
}

/* The interval is inferred per file; a season it does not divide is an
 * error naming the file. */
static void test_replay_csv_season_checked_per_file(void **state)
{
    struct fixture *fx = *state;
    struct anomaly_replay_stats st;
    char err[512], in[1024];

    fx->o.model = anomaly_model_find("seasonal_robust");
    fx->o.season_ms = 3600000; /* 1h: 12 steps of a.csv */
    snprintf(in, sizeof(in), "%s/a.csv", fx->in);
    assert_int_equal(replay(fx, in, err, sizeof(err), &st), TSDB_OK);

    write_file(fx->in, "odd.csv",
               "2014-04-10 07:00:00,1\n"
               "2014-04-10 07:07:00,1\n"
               "2014-04-10 07:14:00,1\n");
    snprintf(in, sizeof(in), "%s/odd.csv", fx->in);
    assert_int_equal(replay(fx, in, err, sizeof(err), &st), TSDB_EINVAL);
    assert_non_null(strstr(err, "odd.csv: the season must be a multiple"));
}

static void test_replay_csv_parses_times(void **state)
{
    int64_t ms;

    (void)state;
    assert_true(anomaly_replay_parse_time("1970-01-01 00:00:00", 19, &ms));
    assert_int_equal(ms, 0);
    assert_true(anomaly_replay_parse_time("2014-04-10 07:15:00", 19, &ms));
    assert_int_equal(ms, 1397114100000LL);
    assert_true(anomaly_replay_parse_time("2014-04-10T07:15:00.250Z", 24, &ms));
    assert_int_equal(ms, 1397114100250LL);
    assert_true(anomaly_replay_parse_time("2000-02-29 23:59:59", 19, &ms));
    assert_int_equal(ms, 951868799000LL);
    assert_false(anomaly_replay_parse_time("2014-04-10 7:15:00", 18, &ms));
    assert_false(anomaly_replay_parse_time("2014-13-10 07:15:00", 19, &ms));
    assert_false(anomaly_replay_parse_time("2014-04-10 07:15:00.", 20, &ms));
    assert_false(anomaly_replay_parse_time("timestamp", 9, &ms));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_replay_csv_walks_folder_row_for_row, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_replay_csv_bad_rows_name_file_and_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_csv_strict_fails_on_bad_row,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_replay_csv_refuses_missing_and_unknown, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_replay_csv_refuses_file_without_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_csv_season_checked_per_file,
                                        setup, teardown),
        cmocka_unit_test(test_replay_csv_parses_times),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
