/*
 * Integration test of the real server binary (build/asan/tsdbd): starts it
 * on a free loopback port with a scratch data folder, talks HTTP to it,
 * and stops it with SIGTERM, which must end in exit status 0.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

#define TSDBD "build/asan/tsdbd"

static int free_port(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port;

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

/* One HTTP/1.0 request; the whole response into out.  -1 if no server. */
static int http(int port, const char *method, const char *path, char *out,
                size_t cap)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    char req[256];
    size_t got = 0;
    ssize_t n;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        close(fd);
        return -1;
    }
    snprintf(req, sizeof(req), "%s %s HTTP/1.0\r\nHost: x\r\n\r\n", method,
             path);
    assert_true(write(fd, req, strlen(req)) == (ssize_t)strlen(req));
    while (got + 1 < cap && (n = read(fd, out + got, cap - 1 - got)) > 0)
        got += (size_t)n;
    out[got] = '\0';
    close(fd);
    return atoi(out + 9); /* "HTTP/1.x NNN" */
}

static pid_t start(const char *dir, int port)
{
    char listen[32];
    pid_t pid;

    snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        execl(TSDBD, TSDBD, "--data", dir, "--listen", listen, "--log-level",
              "warn", (char *)NULL);
        _exit(127);
    }
    return pid;
}

static int wait_ready(int port)
{
    char buf[512];
    for (int i = 0; i < 200; i++) {
        struct timespec nap = {0, 50000000};
        if (http(port, "GET", "/-/ready", buf, sizeof(buf)) == 200)
            return 0;
        nanosleep(&nap, NULL);
    }
    return -1;
}

static void test_tsdbd_serves_and_stops_cleanly(void **state)
{
    char *dir = test_tmpdir("tsdbd");
    char buf[32768];
    int port = free_port(), status;
    pid_t pid = start(dir, port);
    (void)state;

    assert_int_equal(wait_ready(port), 0);
    assert_int_equal(http(port, "GET", "/metrics", buf, sizeof(buf)), 200);
    assert_non_null(strstr(buf, "# TYPE tsdb_head_series gauge"));
    assert_non_null(strstr(buf, "tsdb_lmdb_file_bytes "));
    assert_int_equal(http(port, "GET", "/nope", buf, sizeof(buf)), 404);
    assert_non_null(strstr(buf, "\"errorType\":\"not_found\""));
    assert_int_equal(http(port, "DELETE", "/metrics", buf, sizeof(buf)), 405);
    assert_non_null(strstr(buf, "\"status\":\"error\""));

    kill(pid, SIGTERM);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    test_rmdir(dir);
}

static void test_tsdbd_refuses_bad_flags_and_busy_folder(void **state)
{
    char *dir = test_tmpdir("tsdbd-flags");
    char listen[32];
    int port = free_port(), status;
    pid_t first, pid;
    (void)state;

    pid = fork();
    if (pid == 0) {
        execl(TSDBD, TSDBD, "--retention", "ten days", (char *)NULL);
        _exit(127);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_int_equal(WEXITSTATUS(status), 2);

    /* A second server on the same folder is refused, the first lives. */
    first = start(dir, port);
    assert_int_equal(wait_ready(port), 0);
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", free_port());
    pid = fork();
    if (pid == 0) {
        execl(TSDBD, TSDBD, "--data", dir, "--listen", listen, "--log-level",
              "error", (char *)NULL);
        _exit(127);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_int_equal(WEXITSTATUS(status), 1);
    kill(first, SIGINT);
    assert_int_equal(waitpid(first, &status, 0), first);
    assert_int_equal(WEXITSTATUS(status), 0);
    test_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tsdbd_serves_and_stops_cleanly),
        cmocka_unit_test(test_tsdbd_refuses_bad_flags_and_busy_folder),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
