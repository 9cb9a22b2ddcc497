/*
 * The harness of the integration tests that run the real server binary
 * (tests/tools/test_*.c): free loopback ports, a small HTTP client (plain,
 * chunked or headers-only bodies), starting tsdbd on a scratch folder and
 * stopping it with SIGTERM (which must end in exit status 0), and file
 * helpers.  Static functions in a header, like testutil.h: each test
 * binary is one file.
 */
#ifndef TESTS_TOOLS_SERVER_H
#define TESTS_TOOLS_SERVER_H

#include <arpa/inet.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

#ifndef TSDBD
#define TSDBD "build/asan/tsdbd"
#endif
#ifndef REPLY_MAX
#define REPLY_MAX (256u << 20)
#endif

static inline int free_port(void)
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

/* ---- a tiny HTTP client ---- */

enum send_mode {
    SEND_PLAIN,        /* HTTP/1.0 with Content-Length */
    SEND_CHUNKED,      /* HTTP/1.1, Transfer-Encoding: chunked */
    SEND_HEADERS_ONLY, /* Content-Length announced, body never sent */
};

struct reply {
    int status; /* -1: no server */
    char *text; /* the whole response, NUL-terminated; free() */
    char *body; /* into text */
    size_t len; /* body length */
};

static inline void send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w <= 0)
            return; /* the server may answer and close early */
        p += w;
        n -= (size_t)w;
    }
}

static inline void send_body(int fd, const char *body, size_t len,
                             enum send_mode mode)
{
    char head[32];

    if (mode == SEND_PLAIN) {
        send_all(fd, body, len);
        return;
    }
    if (mode != SEND_CHUNKED)
        return;
    for (size_t off = 0; off < len; off += 1000) {
        size_t n = len - off < 1000 ? len - off : 1000;
        snprintf(head, sizeof(head), "%zx\r\n", n);
        send_all(fd, head, strlen(head));
        send_all(fd, body + off, n);
        send_all(fd, "\r\n", 2);
    }
    send_all(fd, "0\r\n\r\n", 5);
}

static inline void read_reply(int fd, struct reply *r)
{
    size_t got = 0, cap = 1 << 16;
    char *end;
    ssize_t n;

    r->text = malloc(cap);
    for (;;) {
        if (got + 1 == cap) {
            assert_true(cap < REPLY_MAX);
            cap *= 2;
            r->text = realloc(r->text, cap);
        }
        n = read(fd, r->text + got, cap - 1 - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    r->text[got] = '\0';
    r->status = got > 12 ? atoi(r->text + 9) : 0;
    end = strstr(r->text, "\r\n\r\n");
    r->body = end ? end + 4 : r->text + got;
    r->len = (size_t)(r->text + got - r->body);
}

/* One request; headers (may be NULL) end each line with \r\n. */
static inline int request(int port, const char *method, const char *path,
                          const char *headers, const char *body, size_t len,
                          enum send_mode mode, struct reply *r)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    char req[1024];
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    memset(r, 0, sizeof(*r));
    r->status = -1;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        close(fd);
        return -1;
    }
    if (mode == SEND_CHUNKED)
        snprintf(req, sizeof(req),
                 "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                 "Transfer-Encoding: chunked\r\n%s\r\n",
                 method, path, headers ? headers : "");
    else
        snprintf(req, sizeof(req),
                 "%s %s HTTP/1.0\r\nHost: x\r\nContent-Length: %zu\r\n%s\r\n",
                 method, path, len, headers ? headers : "");
    send_all(fd, req, strlen(req));
    send_body(fd, body, len, mode);
    read_reply(fd, r);
    close(fd);
    return r->status;
}

static inline int get(int port, const char *path, struct reply *r)
{
    return request(port, "GET", path, NULL, NULL, 0, SEND_PLAIN, r);
}

static inline int post(int port, const char *path, const char *type,
                       const char *body, size_t len, struct reply *r)
{
    char headers[256] = "";

    if (type)
        snprintf(headers, sizeof(headers), "Content-Type: %s\r\n", type);
    return request(port, "POST", path, headers, body, len, SEND_PLAIN, r);
}

static inline void reply_free(struct reply *r)
{
    free(r->text);
    memset(r, 0, sizeof(*r));
}

static inline void contains(const char *text, const char *want)
{
    if (!strstr(text, want)) {
        print_error("missing \"%s\" in:\n%.2000s\n", want, text);
        fail();
    }
}

/* ---- the server process ---- */

static inline pid_t start(const char *dir, int port, const char *const *extra)
{
    const char *argv[24] = {TSDBD, "--data",      dir,   "--listen",
                            NULL,  "--log-level", "warn"};
    char listen[32];
    size_t n = 7;
    pid_t pid;

    snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
    argv[4] = listen;
    for (; extra && *extra && n < 23; extra++)
        argv[n++] = *extra;
    argv[n] = NULL;
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* A failed assertion ends the test without stop(): the server
         * must not outlive it. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        execv(TSDBD, (char *const *)argv);
        _exit(127);
    }
    return pid;
}

static inline int wait_ready(int port)
{
    struct reply r;

    for (int i = 0; i < 200; i++) {
        struct timespec nap = {0, 50000000};
        int status = get(port, "/-/ready", &r);
        reply_free(&r);
        if (status == 200)
            return 0;
        nanosleep(&nap, NULL);
    }
    return -1;
}

/* A server on a fresh folder, ready.  *dir: free with test_rmdir. */
static inline pid_t serve(char **dir, int *port, const char *const *extra)
{
    pid_t pid;

    *dir = test_tmpdir("tsdbd");
    *port = free_port();
    pid = start(*dir, *port, extra);
    assert_int_equal(wait_ready(*port), 0);
    return pid;
}

static inline void stop(pid_t pid)
{
    int status;

    kill(pid, SIGTERM);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static inline char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *p;
    long n;

    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    rewind(f);
    p = malloc((size_t)n + 1);
    assert_int_equal(fread(p, 1, (size_t)n, f), (size_t)n);
    p[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return p;
}

static inline void write_file(const char *path, const char *p, size_t len)
{
    FILE *f = fopen(path, "wb");

    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, len, f), len);
    fclose(f);
}

/* The generated dataset (20 series, 1 h), or NULL with a printed reason
 * when the generator is not there.  Caller frees. */
static inline void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};

    nanosleep(&ts, NULL);
}

static inline int free_udp_port(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_DGRAM, 0), port;

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

#endif
