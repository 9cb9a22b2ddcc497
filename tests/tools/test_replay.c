/*
 * The tsdb-replay binary (build/asan/tsdb-replay) in its CSV mode, as a
 * user runs it: exit status and message for an unknown model, an
 * unknown parameter, a missing folder, a bad row under --strict; --help
 * listing every flag; no progress output when stderr is not a terminal.
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
#include <sys/wait.h>

#include "testutil.h"

#define REPLAY "build/asan/tsdb-replay"

struct fixture {
    char *dir;
    char errpath[512];
    char *err; /* stderr of the last run */
};

/* Runs REPLAY with args (a shell fragment); returns its exit status and
 * keeps its stderr in fx->err. */
static int run(struct fixture *fx, const char *args)
{
    char cmd[2048];
    FILE *f;
    long n;
    int rc;

    snprintf(cmd, sizeof(cmd), "%s %s >/dev/null 2>%s", REPLAY, args,
             fx->errpath);
    rc = system(cmd);
    free(fx->err);
    f = fopen(fx->errpath, "r");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    fx->err = calloc(1, (size_t)n + 1);
    assert_int_equal(fread(fx->err, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    char path[1024];
    FILE *f;

    assert_non_null(fx);
    fx->dir = test_tmpdir("replaycli");
    assert_non_null(fx->dir);
    snprintf(fx->errpath, sizeof(fx->errpath), "%s/stderr", fx->dir);
    snprintf(path, sizeof(path), "%s/in", fx->dir);
    assert_int_equal(mkdir(path, 0777), 0);
    snprintf(path, sizeof(path), "%s/in/x.csv", fx->dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("timestamp,value\n2014-04-10 07:15:00,1\n"
          "2014-04-10 07:20:00,oops\n2014-04-10 07:25:00,2\n",
          f);
    fclose(f);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;

    free(fx->err);
    test_rmdir(fx->dir);
    free(fx);
    return 0;
}

static void test_replay_help_lists_every_flag(void **state)
{
    static const char *const flags[] = {
        "--csv",           "--model",       "--param",  "--out",
        "--interval",      "--season",      "--strict", "--sensitivity",
        "--min-deviation", "--time-passes", "--help"};
    char out[8192];
    FILE *p = popen(REPLAY " --help", "r");
    size_t n;

    (void)state;
    assert_non_null(p);
    n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = '\0';
    assert_int_equal(pclose(p), 0);
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
        assert_non_null(strstr(out, flags[i]));
}

static void test_replay_unknown_model_and_parameter(void **state)
{
    struct fixture *fx = *state;
    char args[1024];

    snprintf(args, sizeof(args), "--csv %s/in --model prophet --out %s/o",
             fx->dir, fx->dir);
    assert_int_equal(run(fx, args), 2);
    assert_non_null(strstr(fx->err, "unknown model \"prophet\" (known: "
                                    "ewma holt_winters seasonal_robust)"));

    snprintf(args, sizeof(args),
             "--csv %s/in --model ewma --param alpah=0.1 --out %s/o", fx->dir,
             fx->dir);
    assert_int_equal(run(fx, args), 2);
    assert_non_null(strstr(fx->err, "unknown parameter \"alpah\""));

    snprintf(args, sizeof(args), "--csv %s/in --model holt_winters --out %s/o",
             fx->dir, fx->dir);
    assert_int_equal(run(fx, args), 2);
    assert_non_null(strstr(fx->err, "needs a season"));
}

static void test_replay_missing_folder(void **state)
{
    struct fixture *fx = *state;
    char args[1024];

    snprintf(args, sizeof(args), "--csv %s/nope --model ewma --out %s/o",
             fx->dir, fx->dir);
    assert_int_equal(run(fx, args), 1);
    assert_non_null(strstr(fx->err, "nope: no such file or folder"));
}

static void test_replay_bad_row_counted_or_strict(void **state)
{
    struct fixture *fx = *state;
    char args[1024];

    snprintf(args, sizeof(args), "--csv %s/in --model ewma --out %s/o", fx->dir,
             fx->dir);
    assert_int_equal(run(fx, args), 0);
    assert_non_null(strstr(fx->err, "x.csv:3: value is not a finite number"
                                    " (row skipped)"));
    assert_non_null(strstr(fx->err, "1 files, 2 rows, 1 bad rows skipped"));
    /* Not a terminal: no progress line. */
    assert_null(strchr(fx->err, '\r'));

    snprintf(args, sizeof(args), "--csv %s/in --model ewma --out %s/o --strict",
             fx->dir, fx->dir);
    assert_int_equal(run(fx, args), 1);
    assert_non_null(strstr(fx->err, "x.csv:3: value is not a finite number"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replay_help_lists_every_flag),
        cmocka_unit_test_setup_teardown(test_replay_unknown_model_and_parameter,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_missing_folder, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_replay_bad_row_counted_or_strict,
                                        setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
