/*
 * PromQL conformance of the real server (build/asan/tsdbd) against
 * Prometheus 2.42: each test case runs tests/conformance/run on one query
 * list, which loads the same generated data into both servers (free
 * loopback ports, both stopped at the end) and compares every answer with
 * ../shared/bench/compare-prom-api.  One case per list, so that a failure
 * names the list; the differing queries are repeated at the end of the
 * case's output as "ERROR:" lines, which tests/run-all shows.
 *
 * The script exits 77 when ../shared/bench is not beside the checkout;
 * the case is then skipped.  Prometheus, promtool and python3 come from
 * make deps.  Outputs: build/conformance/ (tables and both answers).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define TSDBD      "build/asan/tsdbd"
#define RUN        "tests/conformance/run"
#define ERRORS_MAX 40

/* Whether an output line of the script says what went wrong. */
static int is_problem(const char *line)
{
    return strncmp(line, "DIFF ", 5) == 0 ||
           strncmp(line, "REFUSED ", 8) == 0 ||
           strncmp(line, "conformance: error: ", 20) == 0;
}

/* Runs the script on LIST, echoing its output; returns its exit status
 * (-1 if it could not run or died on a signal). */
static int run_list(const char *list)
{
    char cmd[256], line[2048], *problems[ERRORS_MAX];
    size_t nproblems = 0;
    FILE *p;
    int status;

    snprintf(cmd, sizeof(cmd), "%s --tsdbd %s %s 2>&1", RUN, TSDBD, list);
    printf("running %s\n", cmd);
    fflush(stdout);
    p = popen(cmd, "r");
    assert_non_null(p);
    while (fgets(line, sizeof(line), p)) {
        fputs(line, stdout);
        if (is_problem(line) && nproblems < ERRORS_MAX)
            problems[nproblems++] = strdup(line);
    }
    status = pclose(p);
    fflush(stdout);

    /* A failure repeats the problem lines where run-all looks. */
    for (size_t i = 0; i < nproblems; i++) {
        if (status != 0)
            printf("ERROR: %s: %s", list, problems[i]);
        free(problems[i]);
    }
    fflush(stdout);
    if (status == -1 || !WIFEXITED(status))
        return -1;
    return WEXITSTATUS(status);
}

static void check_list(const char *list)
{
    int rc = run_list(list);

    if (rc == 77)
        skip();
    if (rc != 0)
        fail_msg("%s %s exited %d: see the ERROR lines above and "
                 "build/conformance/",
                 RUN, list, rc);
}

static void test_conformance_llm_queries(void **state)
{
    (void)state;
    check_list("llm");
}

static void test_conformance_own_queries(void **state)
{
    (void)state;
    check_list("ours");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conformance_llm_queries),
        cmocka_unit_test(test_conformance_own_queries),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
