/*
 * Integration test of the real server binary (build/asan/tsdbd): starts it
 * on a free loopback port with a scratch data folder, talks HTTP to it
 * over a plain socket, and stops it with SIGTERM, which must end in exit
 * status 0 (or with SIGKILL, to check that acknowledged imports survive).
 *
 * Covered: routing errors (404, 405 with Allow, 413 for each kind of
 * body), import then export compared byte for byte and sample for sample
 * (also on a file from ../shared/bench/gen-dataset), bad lines reported
 * with their numbers while the valid ones are kept, OpenMetrics' # EOF
 * rules, export parameters, the /metrics page after writes, kill -9 right
 * after an acknowledged import, and promtool reading an export (make deps
 * installs promtool; without it that test fails).  A missing gen-dataset
 * (../shared outside this workplace) skips its part with a printed
 * reason.
 *
 * StatsD: each type's semantics read back through the export (counter
 * with a sample rate, gauge deltas, timers in seconds into _bucket, _sum
 * and _count, histograms, sets, tags as labels, |T timestamps), every
 * field of a line wrong in turn with line numbers and reasons in the
 * answer, bodies over the limits, kill -9 right after acknowledged bodies
 * then restart (every increment counted exactly once), datagrams over
 * UDP, idle series going stale, and the /metrics figures.  Also
 * /api/v1/status/tsdb in Prometheus's shape, and a limits file with
 * reject and fold rules, and a bad one.  Flushes run every 200 ms to keep
 * the tests short.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "http/expfmt.h"
#include "server.h"
#include "testutil.h"

#define TSDBD       "build/asan/tsdbd"
#define GEN_DATASET "../shared/bench/gen-dataset"
#define IMPORT      "/api/v1/import/prometheus"
#define STATSD      "/api/v1/statsd"
#define STATUS      "/api/v1/status/tsdb"
#define OM_TYPE     "application/openmetrics-text; version=1.0.0"
#define REPLY_MAX   (256u << 20)

/* ---- samples as comparable text ---- */

/* Every sample of an exposition as "name{sorted labels} ms bits",
 * sorted; NaN as "nan" since its payload does not survive the text. */
struct sample_set {
    char **v;
    size_t n, cap;
    uint64_t errors;
};

static int label_cmp(const void *a, const void *b)
{
    return strcmp(((const struct tsdb_label *)a)->name,
                  ((const struct tsdb_label *)b)->name);
}

static int collect(void *ctx, struct expfmt_sample *s)
{
    struct sample_set *set = ctx;
    char line[4096];
    size_t len;
    uint64_t bits;

    qsort(s->labels + 1, s->nlabels - 1, sizeof(*s->labels), label_cmp);
    len = (size_t)snprintf(line, sizeof(line), "%s{", s->name);
    for (size_t i = 1; i < s->nlabels; i++)
        len += (size_t)snprintf(line + len, sizeof(line) - len, "%s=\"%s\",",
                                s->labels[i].name, s->labels[i].value);
    memcpy(&bits, &s->value, sizeof(bits));
    if (isnan(s->value))
        snprintf(line + len, sizeof(line) - len, "} %lld nan",
                 (long long)s->timestamp_ms);
    else
        snprintf(line + len, sizeof(line) - len, "} %lld %016llx",
                 (long long)s->timestamp_ms, (unsigned long long)bits);
    if (set->n == set->cap) {
        set->cap = set->cap ? set->cap * 2 : 1024;
        set->v = realloc(set->v, set->cap * sizeof(*set->v));
    }
    set->v[set->n++] = strdup(line);
    return TSDB_OK;
}

static int count_error(void *ctx, const struct expfmt_error *e)
{
    struct sample_set *set = ctx;

    print_error("parse error line %llu col %u: %s\n",
                (unsigned long long)e->line, e->column, e->msg);
    set->errors++;
    return TSDB_OK;
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void parse_set(const char *text, size_t len, enum expfmt_format f,
                      struct sample_set *set)
{
    struct expfmt_callbacks cb = {collect, NULL, count_error};
    struct expfmt_parser p;

    memset(set, 0, sizeof(*set));
    assert_int_equal(expfmt_parser_init(&p, f, &cb, set), TSDB_OK);
    expfmt_parser_feed(&p, text, len);
    expfmt_parser_finish(&p);
    expfmt_parser_release(&p);
    if (set->n > 0)
        qsort(set->v, set->n, sizeof(*set->v), str_cmp);
}

static void set_free(struct sample_set *set)
{
    for (size_t i = 0; i < set->n; i++)
        free(set->v[i]);
    free(set->v);
}

static void assert_same_samples(const char *want, size_t wlen,
                                enum expfmt_format wf, const char *got,
                                size_t glen)
{
    struct sample_set a, b;

    parse_set(want, wlen, wf, &a);
    parse_set(got, glen, EXPFMT_OPENMETRICS, &b);
    assert_int_equal(a.errors, 0);
    assert_int_equal(b.errors, 0);
    assert_int_equal(b.n, a.n);
    for (size_t i = 0; i < a.n; i++) {
        if (strcmp(a.v[i], b.v[i]) != 0)
            print_error("sample %zu differs:\n  in  %s\n  out %s\n", i, a.v[i],
                        b.v[i]);
        assert_string_equal(a.v[i], b.v[i]);
    }
    set_free(&a);
    set_free(&b);
}

static char *gen_dataset(const char *dir, size_t *len)
{
    char cmd[512], path[256];

    if (access(GEN_DATASET, X_OK) != 0) {
        printf("skipped: %s not found (run from the checkout beside "
               "../shared)\n",
               GEN_DATASET);
        return NULL;
    }
    snprintf(path, sizeof(path), "%s/gen.om", dir);
    snprintf(cmd, sizeof(cmd),
             "%s --series 20 --hours 1 --format openmetrics --out %s "
             "2>/dev/null",
             GEN_DATASET, path);
    assert_int_equal(system(cmd), 0);
    return read_file(path, len);
}

/* ---- tests ---- */

static void test_tsdbd_serves_and_stops_cleanly(void **state)
{
    const char *const flags[] = {"--no-compact", "--threads", "2", NULL};
    struct reply r;
    char *dir;
    int port;
    pid_t pid = serve(&dir, &port, flags);
    (void)state;

    assert_int_equal(get(port, "/metrics", &r), 200);
    contains(r.body, "# TYPE tsdb_head_series gauge");
    contains(r.body, "tsdb_lmdb_file_bytes ");
    contains(r.body, "# TYPE tsdb_series gauge");
    contains(r.body, "# TYPE tsdb_flush_duration_seconds histogram");
    contains(r.body, "tsdb_flush_duration_seconds_bucket{le=\"+Inf\"} ");
    reply_free(&r);
    assert_int_equal(
        request(port, "HEAD", "/-/healthy", NULL, NULL, 0, SEND_PLAIN, &r),
        200);
    assert_int_equal(r.len, 0);
    reply_free(&r);
    stop(pid);
    test_rmdir(dir);
}

static void test_tsdbd_routing_errors(void **state)
{
    struct reply r;
    char *dir;
    int port;
    pid_t pid = serve(&dir, &port, NULL);
    (void)state;

    assert_int_equal(get(port, "/nope", &r), 404);
    contains(r.text, "Content-Type: application/json");
    contains(r.body, "{\"status\":\"error\",\"errorType\":\"not_found\","
                     "\"error\":\"no route for path '/nope'");
    reply_free(&r);
    assert_int_equal(
        request(port, "DELETE", "/metrics", NULL, NULL, 0, SEND_PLAIN, &r),
        405);
    contains(r.text, "Allow: GET, HEAD\r\n");
    contains(r.body, "\"errorType\":\"method_not_allowed\"");
    reply_free(&r);
    assert_int_equal(get(port, IMPORT, &r), 405);
    contains(r.text, "Allow: POST\r\n");
    contains(r.body, "method GET is not allowed on " IMPORT "; use POST");
    reply_free(&r);
    assert_int_equal(
        request(port, "PUT", "/api/v1/export", NULL, NULL, 0, SEND_PLAIN, &r),
        405);
    contains(r.text, "Allow: GET, HEAD, POST\r\n");
    reply_free(&r);
    assert_int_equal(post(port, IMPORT, NULL, "x 1\n", 4, &r), 200);
    reply_free(&r);
    assert_int_equal(request(port, "POST", IMPORT, "Content-Encoding: gzip\r\n",
                             "x", 1, SEND_PLAIN, &r),
                     415);
    contains(r.body, "\"errorType\":\"unsupported_media_type\"");
    reply_free(&r);
    stop(pid);
    test_rmdir(dir);
}

static void test_tsdbd_refuses_oversize_bodies(void **state)
{
    const char *const flags[] = {"--max-body", "1K", "--max-import-body", "4K",
                                 NULL};
    char body[12000], *dir;
    struct reply r;
    int port;
    pid_t pid = serve(&dir, &port, flags);
    size_t len = 0;
    (void)state;

    /* A collected body: refused from its Content-Length, unread. */
    memset(body, 'a', sizeof(body));
    assert_int_equal(request(port, "POST", "/api/v1/export", NULL, body, 2000,
                             SEND_HEADERS_ONLY, &r),
                     413);
    contains(r.body, "{\"status\":\"error\",\"errorType\":\"too_large\","
                     "\"error\":\"request body of 2000 bytes exceeds the "
                     "--max-body limit of 1024 bytes\"}");
    reply_free(&r);

    /* The same without a length: read up to the limit, then refused. */
    assert_int_equal(request(port, "POST", "/api/v1/export", NULL, body, 2000,
                             SEND_CHUNKED, &r),
                     413);
    contains(r.body, "exceeds the --max-body limit of 1024 bytes");
    reply_free(&r);

    /* An import body over --max-import-body, announced and chunked. */
    assert_int_equal(
        request(port, "POST", IMPORT, NULL, body, 8192, SEND_HEADERS_ONLY, &r),
        413);
    contains(r.body, "--max-import-body limit of 4096 bytes");
    reply_free(&r);
    while (len < 6000)
        len += (size_t)snprintf(body + len, sizeof(body) - len,
                                "big{n=\"%zu\"} 1 1000\n", len);
    assert_int_equal(
        request(port, "POST", IMPORT, NULL, body, len, SEND_CHUNKED, &r), 413);
    contains(r.body, "samples committed before that point are kept");
    reply_free(&r);

    /* A StatsD body is read whole, so --max-body applies. */
    assert_int_equal(post(port, STATSD, NULL, body, 2000, &r), 413);
    contains(r.body, "{\"status\":\"error\",\"errorType\":\"too_large\","
                     "\"error\":\"request body of 2000 bytes exceeds the "
                     "--max-body limit of 1024 bytes\"}");
    reply_free(&r);

    /* The server is fine afterwards. */
    assert_int_equal(post(port, IMPORT, NULL, "ok 1 1000\n", 10, &r), 200);
    reply_free(&r);
    stop(pid);
    test_rmdir(dir);
}

/* An input written exactly as the export writes it, so that the round
 * trip can be compared byte for byte. */
static const char canonical[] =
    "# TYPE http_requests_total unknown\n"
    "http_requests_total{code=\"200\",job=\"api\"} 1027 1704067200\n"
    "http_requests_total{code=\"200\",job=\"api\"} 1028.5 1704067200.123\n"
    "http_requests_total{code=\"200\",job=\"api\"} 0.30000000000000004 "
    "1704067260.050\n"
    "http_requests_total{code=\"500\",job=\"a\\\\b \\\"q\\\"\\n\"} -0 "
    "1704067200\n"
    "http_requests_total{code=\"500\",job=\"a\\\\b \\\"q\\\"\\n\"} +Inf "
    "1704067201\n"
    "http_requests_total{code=\"500\",job=\"a\\\\b \\\"q\\\"\\n\"} -Inf "
    "1704067202\n"
    "http_requests_total{code=\"500\",job=\"a\\\\b \\\"q\\\"\\n\"} NaN "
    "1704067203\n"
    "# TYPE temp_celsius unknown\n"
    "temp_celsius 1e-07 1704067200.001\n"
    "temp_celsius 1.7976931348623157e+308 1704067200.002\n"
    "temp_celsius 4.94065645841247e-324 1704067200.003\n"
    "temp_celsius{room=\"caf\xc3\xa9\"} 21.5 1704067200\n"
    "# EOF\n";

static void test_tsdbd_import_then_export_exactly(void **state)
{
    const char *form = "match%5B%5D=%7Bcode%3D%22200%22%7D&end=1704067200";
    struct reply r;
    char *dir;
    int port;
    pid_t pid = serve(&dir, &port, NULL);
    (void)state;

    assert_int_equal(
        post(port, IMPORT, OM_TYPE, canonical, sizeof(canonical) - 1, &r), 200);
    contains(r.body, "{\"status\":\"success\",\"data\":{\"format\":"
                     "\"openmetrics\",\"lines\":14,\"samples\":11,"
                     "\"accepted\":11,\"duplicates\":0,\"rejected\":0,");
    reply_free(&r);
    assert_int_equal(get(port,
                         "/api/v1/export?match[]=%7B__name__%3D~%22.%2B"
                         "%22%7D",
                         &r),
                     200);
    contains(r.text, "Content-Type: application/openmetrics-text; "
                     "version=1.0.0; charset=utf-8\r\n");
    assert_int_equal(r.len, sizeof(canonical) - 1);
    assert_memory_equal(r.body, canonical, r.len);
    reply_free(&r);

    /* Selection and range, by GET and by POST form. */
    assert_int_equal(get(port,
                         "/api/v1/export?match[]=temp_celsius"
                         "&start=1704067200.002&end=2024-01-01T00:00:"
                         "00.003Z",
                         &r),
                     200);
    assert_string_equal(r.body,
                        "# TYPE temp_celsius unknown\n"
                        "temp_celsius 1.7976931348623157e+308 "
                        "1704067200.002\n"
                        "temp_celsius 4.94065645841247e-324 1704067200.003\n"
                        "# EOF\n");
    reply_free(&r);
    assert_int_equal(post(port, "/api/v1/export",
                          "application/x-www-form-urlencoded", form,
                          strlen(form), &r),
                     200);
    assert_string_equal(r.body, "# TYPE http_requests_total unknown\n"
                                "http_requests_total{code=\"200\",job=\"api\"} "
                                "1027 1704067200\n# EOF\n");
    reply_free(&r);

    /* Parameter errors name the parameter. */
    assert_int_equal(get(port, "/api/v1/export", &r), 400);
    contains(r.body, "\"errorType\":\"bad_data\",\"error\":\"no match[] "
                     "parameter provided\"");
    reply_free(&r);
    assert_int_equal(get(port, "/api/v1/export?match[]=up%5B5m%5D", &r), 400);
    contains(r.body, "invalid parameter \\\"match[]\\\": 1:3: parse error: "
                     "unexpected '['");
    reply_free(&r);
    assert_int_equal(get(port, "/api/v1/export?match[]=up&start=abc", &r), 400);
    contains(r.body, "invalid parameter \\\"start\\\": cannot parse "
                     "\\\"abc\\\" to a valid timestamp");
    reply_free(&r);
    assert_int_equal(get(port, "/api/v1/export?match[]=up&start=2&end=1", &r),
                     400);
    contains(r.body, "end timestamp must not be before start time");
    reply_free(&r);
    stop(pid);
    test_rmdir(dir);
}

static void test_tsdbd_generated_dataset_round_trip(void **state)
{
    char *tmp = test_tmpdir("tsdbd-gen"), *dir, *om;
    struct reply r;
    size_t len;
    int port;
    pid_t pid;
    (void)state;

    om = gen_dataset(tmp, &len);
    if (!om) {
        test_rmdir(tmp);
        return;
    }
    pid = serve(&dir, &port, NULL);
    assert_int_equal(post(port, IMPORT, OM_TYPE, om, len, &r), 200);
    contains(r.body, "\"samples\":7200,\"accepted\":7200,\"duplicates\":0,"
                     "\"rejected\":0,");
    contains(r.body, "\"errors\":[]");
    reply_free(&r);
    assert_int_equal(get(port,
                         "/api/v1/export?match[]=%7B__name__%3D~%22.%2B"
                         "%22%7D",
                         &r),
                     200);
    assert_same_samples(om, len, EXPFMT_OPENMETRICS, r.body, r.len);
    reply_free(&r);

    /* The server's own figures saw the writes. */
    assert_int_equal(get(port, "/metrics", &r), 200);
    contains(r.body, "tsdb_ingest_samples_written_total{endpoint=\"import\"} "
                     "7200\n");
    contains(r.body, "tsdb_http_requests_total{endpoint=\"import\","
                     "code=\"200\"} 1\n");
    contains(r.body, "tsdb_export_samples_total 7200\n");
    contains(r.body, "tsdb_head_series 20\n");
    reply_free(&r);
    stop(pid);
    free(om);
    test_rmdir(dir);
    test_rmdir(tmp);
}

/* A slice of a real node_exporter and Prometheus capture (three samples
 * of each of its 917 series, with NaN values and the real label shapes,
 * from ../shared/bench/capture-real): imports without an error and
 * exports back sample for sample. */
static void test_tsdbd_real_capture_round_trip(void **state)
{
    struct reply r;
    char *dir, *om;
    size_t len;
    int port;
    pid_t pid;
    (void)state;

    om = read_file("tests/fixtures/real-capture.om", &len);
    assert_non_null(om);
    pid = serve(&dir, &port, NULL);
    assert_int_equal(post(port, IMPORT, OM_TYPE, om, len, &r), 200);
    contains(r.body, "\"samples\":2751,\"accepted\":2751,\"duplicates\":0,"
                     "\"rejected\":0,");
    reply_free(&r);
    assert_int_equal(get(port,
                         "/api/v1/export?match[]=%7B__name__%3D~%22.%2B"
                         "%22%7D",
                         &r),
                     200);
    assert_same_samples(om, len, EXPFMT_OPENMETRICS, r.body, r.len);
    reply_free(&r);
    stop(pid);
    free(om);
    test_rmdir(dir);
}

static void test_tsdbd_bad_lines_reported_valid_kept(void **state)
{
    const char body[] = "# TYPE a counter\n"
                        "a{x=\"1\"} 1 1000\n"
                        "a{x=\"1\"} 2 2000\n"
                        "a{x=\"1\" 3 3000\n"
                        "a{x=\"1\"} three 4000\n"
                        "a{x=\"1\"} 5 5000\n"
                        "a{x=\"1\"} 6 6000 extra\n"
                        "a{x=\"1\"} 7 7000\n";
    struct reply r;
    char *dir;
    int port;
    pid_t pid = serve(&dir, &port, NULL);
    (void)state;

    assert_int_equal(post(port, IMPORT, "text/plain; version=0.0.4", body,
                          sizeof(body) - 1, &r),
                     400);
    contains(r.body, "{\"status\":\"error\",\"errorType\":\"bad_data\","
                     "\"error\":\"3 lines or samples were rejected, see "
                     "data.errors; the 4 others were stored\",\"data\":{");
    contains(r.body, "\"rejectedByReason\":{\"parse_error\":3,");
    contains(r.body, "{\"line\":4,\"column\":");
    contains(r.body, "{\"line\":5,\"column\":10,\"reason\":\"parse_error\"");
    contains(r.body, "{\"line\":7,\"column\":");
    reply_free(&r);
    assert_int_equal(get(port, "/api/v1/export?match[]=a", &r), 200);
    assert_string_equal(r.body, "# TYPE a unknown\n"
                                "a{x=\"1\"} 1 1\na{x=\"1\"} 2 2\n"
                                "a{x=\"1\"} 5 5\na{x=\"1\"} 7 7\n# EOF\n");
    reply_free(&r);
    stop(pid);
    test_rmdir(dir);
}

static void test_tsdbd_openmetrics_eof_rules(void **state)
{
    const char missing[] = "om_a 1 1\nom_a 2 2\n";
    const char after[] = "om_b 1 1\n# EOF\nom_b 2 2\n";
    const char text_eof[] = "om_c 1 1000\n# EOF\n";
    struct reply r;
    char *dir;
    int port;
    pid_t pid = serve(&dir, &port, NULL);
    (void)state;

    assert_int_equal(
        post(port, IMPORT, OM_TYPE, missing, sizeof(missing) - 1, &r), 400);
    contains(r.body, "{\"line\":3,\"column\":1,\"reason\":\"parse_error\","
                     "\"error\":\"missing # EOF at the end of input\"}");
    contains(r.body, "\"accepted\":2,");
    reply_free(&r);
    assert_int_equal(post(port, IMPORT, OM_TYPE, after, sizeof(after) - 1, &r),
                     400);
    contains(r.body, "{\"line\":3,\"column\":1,\"reason\":\"parse_error\","
                     "\"error\":\"data after # EOF\"}");
    contains(r.body, "\"accepted\":1,");
    reply_free(&r);

    /* In the text format "# EOF" is an ordinary comment. */
    assert_int_equal(
        post(port, IMPORT, "text/plain", text_eof, sizeof(text_eof) - 1, &r),
        200);
    reply_free(&r);
    assert_int_equal(get(port,
                         "/api/v1/export?match[]=%7B__name__%3D~%22om_"
                         ".*%22%7D",
                         &r),
                     200);
    assert_string_equal(r.body, "# TYPE om_a unknown\nom_a 1 1\nom_a 2 2\n"
                                "# TYPE om_b unknown\nom_b 1 1\n"
                                "# TYPE om_c unknown\nom_c 1 1\n# EOF\n");
    reply_free(&r);
    stop(pid);
    test_rmdir(dir);
}

/* A body of n samples over 50 series, text format with ms timestamps. */
static char *many_samples(size_t n, size_t *len)
{
    char *p = malloc(n * 48 + 1);

    *len = 0;
    for (size_t i = 0; i < n; i++)
        *len += (size_t)sprintf(p + *len, "k{s=\"%zu\"} %zu.25 %zu\n", i % 50,
                                i, 1704067200000 + i / 50 * 1000);
    return p;
}

static void test_tsdbd_acknowledged_import_survives_kill9(void **state)
{
    const char *const flags[] = {"--import-batch", "1000", NULL};
    struct reply r;
    char *dir, *body;
    size_t len;
    int port, status;
    pid_t pid = serve(&dir, &port, flags);
    (void)state;

    body = many_samples(20000, &len);
    assert_int_equal(post(port, IMPORT, NULL, body, len, &r), 200);
    contains(r.body, "\"accepted\":20000,");
    reply_free(&r);
    kill(pid, SIGKILL);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));

    /* Restart on the same folder: every acknowledged sample is there. */
    pid = start(dir, port, flags);
    assert_int_equal(wait_ready(port), 0);
    assert_int_equal(get(port, "/api/v1/export?match[]=k", &r), 200);
    assert_same_samples(body, len, EXPFMT_TEXT, r.body, r.len);
    reply_free(&r);
    stop(pid);
    free(body);
    test_rmdir(dir);
}

/* Opens a connection and sends head (and nothing more); returns the fd. */
static int stall(int port, const char *head)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    send_all(fd, head, strlen(head));
    return fd;
}

static void test_tsdbd_slow_clients_do_not_block_writes(void **state)
{
    const char *const flags[] = {"--threads", "1", NULL};
    const char *half = "POST " IMPORT " HTTP/1.0\r\nContent-Length: 100000"
                       "\r\n\r\nslow{a=\"b\"} 1 1000\nslow{a=\"b\"} 2";
    const char *export = "GET /api/v1/export?match[]=k HTTP/1.0\r\n\r\n";
    struct reply r;
    char *dir, *body;
    size_t len;
    int port, a, b;
    pid_t pid = serve(&dir, &port, flags);
    (void)state;

    /* One worker thread: a client stuck mid-body and one that does not
     * read a large export must not hold up an import on another
     * connection. */
    body = many_samples(200000, &len);
    assert_int_equal(post(port, IMPORT, NULL, body, len, &r), 200);
    reply_free(&r);
    a = stall(port, half);
    b = stall(port, export);
    assert_int_equal(post(port, IMPORT, NULL, "fast 1 1000\n", 12, &r), 200);
    reply_free(&r);
    assert_int_equal(get(port, "/api/v1/export?match[]=fast", &r), 200);
    assert_string_equal(r.body, "# TYPE fast unknown\nfast 1 1\n# EOF\n");
    reply_free(&r);
    close(a);
    close(b);
    stop(pid);
    free(body);
    test_rmdir(dir);
}

static void test_tsdbd_promtool_reads_export(void **state)
{
    char *tmp = test_tmpdir("tsdbd-promtool"), *dir, *om, path[256];
    char cmd[768];
    struct reply r;
    size_t len;
    int port;
    pid_t pid;
    (void)state;

    /* make deps installs it: a missing promtool is a failed check, not a
     * pass. */
    if (system("command -v promtool >/dev/null 2>&1") != 0) {
        test_rmdir(tmp);
        fail_msg("promtool is not installed: run make deps (Debian package "
                 "prometheus)");
    }
    om = gen_dataset(tmp, &len);
    pid = serve(&dir, &port, NULL);
    if (om)
        assert_int_equal(post(port, IMPORT, OM_TYPE, om, len, &r), 200);
    else
        assert_int_equal(
            post(port, IMPORT, OM_TYPE, canonical, sizeof(canonical) - 1, &r),
            200);
    reply_free(&r);
    assert_int_equal(get(port,
                         "/api/v1/export?match[]=%7B__name__%3D~%22.%2B"
                         "%22%7D",
                         &r),
                     200);
    snprintf(path, sizeof(path), "%s/export.om", tmp);
    write_file(path, r.body, r.len);
    reply_free(&r);
    snprintf(cmd, sizeof(cmd),
             "promtool tsdb create-blocks-from openmetrics %s %s/blocks "
             ">%s/promtool.log 2>&1",
             path, tmp, tmp);
    if (system(cmd) != 0) {
        snprintf(cmd, sizeof(cmd), "cat %s/promtool.log", tmp);
        assert_int_equal(system(cmd), 0);
        fail_msg("promtool refused the export");
    }
    stop(pid);
    free(om);
    test_rmdir(dir);
    test_rmdir(tmp);
}

static void test_tsdbd_refuses_bad_flags_and_busy_folder(void **state)
{
    static const char *const bad[][3] = {
        {"--retention", "ten days", NULL},
        {"--max-body", "0", NULL},
        {"--import-batch", "0", NULL},
        {"--import-batch", "2000000", NULL},
        {"--max-import-body", "x", NULL},
        {"--threads", "-1", NULL},
        {"--flush-interval", "10ms", NULL},
        {"--flush-interval", "2h", NULL},
        {"--statsd-idle-ttl", "soon", NULL},
        {"--statsd-buckets", "1,0.5", NULL},
        {"--statsd-buckets", "0.1,inf", NULL},
        {"--statsd-buckets", "", NULL},
        {"--tiers", "1h,5m", NULL},
        {"--tiers", "5m:forever", NULL},
        {"--tiers", "", NULL},
        {"--tiers", "5m,10m,15m,1h,1d", NULL},
    };
    char *dir = test_tmpdir("tsdbd-flags");
    char listen[32];
    int port = free_port(), status;
    pid_t first, pid;
    (void)state;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        pid = fork();
        if (pid == 0) {
            execl(TSDBD, TSDBD, bad[i][0], bad[i][1], (char *)NULL);
            _exit(127);
        }
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_int_equal(WEXITSTATUS(status), 2);
    }

    /* A second server on the same folder is refused, the first lives. */
    first = start(dir, port, NULL);
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

/* ---- StatsD, status, limits ---- */

static void send_udp(int port, const char *p)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    size_t n = strlen(p);

    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(sendto(fd, p, n, 0, (struct sockaddr *)&sa, sizeof(sa)),
                     (ssize_t)n);
    close(fd);
}

/*
 * In an export, the samples of the series written as key (the text before
 * the value: "temp", "req{env=\"prod\"}"): how many, the last value and
 * its timestamp in ms, and the largest value.
 */
struct series_view {
    size_t n;
    double last, max;
    int64_t last_ms;
    bool aligned; /* every timestamp a multiple of align_ms */
};

static void view(const char *body, const char *key, int64_t align_ms,
                 struct series_view *v)
{
    size_t klen = strlen(key);

    memset(v, 0, sizeof(*v));
    v->aligned = true;
    for (const char *p = body; *p;
         p = strchr(p, '\n') ? strchr(p, '\n') + 1 : p + strlen(p)) {
        char *end;
        double x, ts;

        if (strncmp(p, key, klen) != 0 || p[klen] != ' ')
            continue;
        x = strtod(p + klen + 1, &end);
        ts = strtod(end, NULL);
        v->last = x;
        v->last_ms = llround(ts * 1000);
        v->max = v->n == 0 || x > v->max ? x : v->max;
        if (align_ms > 0 && v->last_ms % align_ms != 0)
            v->aligned = false;
        v->n++;
    }
}

/* Exports match (URL-encoded) until key's last value is want, up to 5 s;
 * returns the final export (free with reply_free). */
static void wait_value(int port, const char *match, const char *key,
                       double want, struct reply *r)
{
    char path[512];
    struct series_view v;

    snprintf(path, sizeof(path), "/api/v1/export?match[]=%s", match);
    for (int i = 0; i < 100; i++) {
        assert_int_equal(get(port, path, r), 200);
        view(r->body, key, 0, &v);
        if (v.n > 0 && v.last == want)
            return;
        reply_free(r);
        nap_ms(50);
    }
    fail_msg("%s did not reach %g in 5 s (last %g, %zu samples)", key, want,
             v.last, v.n);
}

static void assert_last(const char *body, const char *key, double want)
{
    struct series_view v;

    view(body, key, 0, &v);
    if (v.n == 0 || v.last != want) {
        print_error("%s: want %g, got %g (%zu samples) in:\n%.3000s\n", key,
                    want, v.last, v.n, body);
        fail();
    }
}

#define ALL        "%7B__name__%3D~%22.%2B%22%7D"
#define FAST_FLUSH "--flush-interval", "200ms"

static const char statsd_body[] =
    "req.count:1|c|@0.1|#env:prod,canary\n"  /* 10 */
    "temp:20|g\ntemp:+5|g\ntemp:-3|g\n"      /* 22 */
    "lat:100|ms\nlat:150:300|ms|#route:/x\n" /* seconds */
    "lat:50|ms|@0.5\n"                       /* counts 2 */
    "size:3|h\nsize:7|h|@0.5\n"              /* count 3, sum 17 */
    "dist:0.1|d\n"
    "uniq:a|s\nuniq:b|s\nuniq:a|s\n" /* 2 distinct */
    "tsd:7|c|T1700000000\n"          /* its own time */
    "tsd_g:2.5|g|T1700000001\n";

static void test_tsdbd_statsd_types_through_export(void **state)
{
    const char *const flags[] = {FAST_FLUSH, "--statsd-buckets", "0.05,0.2,1",
                                 NULL};
    struct series_view v;
    struct reply r;
    char *dir;
    int port;
    pid_t pid = serve(&dir, &port, flags);
    (void)state;

    assert_int_equal(
        post(port, STATSD, NULL, statsd_body, sizeof(statsd_body) - 1, &r),
        200);
    assert_string_equal(r.body,
                        "{\"status\":\"success\",\"data\":{\"lines\":15,"
                        "\"accepted\":15,\"rejected\":0,\"rejectedByReason\":"
                        "{\"parse_error\":0,\"type_conflict\":0,\"limit\":0,"
                        "\"unavailable\":0,\"other\":0},\"errors\":[],"
                        "\"errorsNotShown\":0}}\n");
    reply_free(&r);
    wait_value(port, ALL, "req_count{canary=\"true\",env=\"prod\"}", 10, &r);

    /* Counter: 1 / 0.1; flush times are multiples of the interval. */
    view(r.body, "req_count{canary=\"true\",env=\"prod\"}", 200, &v);
    assert_true(v.aligned);
    assert_last(r.body, "temp", 22);

    /* Timer in seconds: 0.1 and 0.05 (x2) under 0.2, 0.15 too; 0.3 in
     * 1; one line's tags make its own series. */
    assert_last(r.body, "lat_bucket{le=\"0.05\"}", 2);
    assert_last(r.body, "lat_bucket{le=\"0.2\"}", 3);
    assert_last(r.body, "lat_bucket{le=\"1\"}", 3);
    assert_last(r.body, "lat_bucket{le=\"+Inf\"}", 3);
    assert_last(r.body, "lat_count", 3);
    assert_last(r.body, "lat_sum", 0.2);
    assert_last(r.body, "lat_bucket{le=\"0.2\",route=\"/x\"}", 1);
    assert_last(r.body, "lat_bucket{le=\"1\",route=\"/x\"}", 2);
    assert_last(r.body, "lat_sum{route=\"/x\"}", 150 / 1000.0 + 300 / 1000.0);

    /* Histogram and distribution: values as they are. */
    assert_last(r.body, "size_bucket{le=\"1\"}", 0);
    assert_last(r.body, "size_bucket{le=\"+Inf\"}", 3);
    assert_last(r.body, "size_count", 3);
    assert_last(r.body, "size_sum", 17);
    assert_last(r.body, "dist_bucket{le=\"0.05\"}", 0);
    assert_last(r.body, "dist_bucket{le=\"0.2\"}", 1);

    /* Set: 2 distinct members in the first flush, 0 after. */
    contains(r.body, "\nuniq 2 ");

    /* |T lines: stored at their own time, once. */
    contains(r.body, "\ntsd 7 1700000000\n");
    contains(r.body, "\ntsd_g 2.5 1700000001\n");
    view(r.body, "tsd", 0, &v);
    assert_int_equal(v.n, 1);
    reply_free(&r);

    /* A body over the StatsD limit is refused from its Content-Length. */
    assert_int_equal(request(port, "POST", STATSD, NULL, "x", 9u << 20,
                             SEND_HEADERS_ONLY, &r),
                     413);
    contains(r.body, "exceeds the StatsD body limit of 8388608 bytes");
    reply_free(&r);

    assert_int_equal(get(port, "/metrics", &r), 200);
    contains(r.body, "tsdb_statsd_lines_accepted_total{endpoint=\"http\"} "
                     "15\n");
    contains(r.body, "tsdb_http_requests_total{endpoint=\"statsd\","
                     "code=\"413\"} 1\n");
    contains(r.body, "# TYPE tsdb_statsd_flush_duration_seconds histogram\n");
    assert_null(strstr(r.body, "tsdb_statsd_flushes_total 0\n"));
    assert_null(strstr(r.body, "tsdb_statsd_samples_emitted_total 0\n"));
    reply_free(&r);
    stop(pid);
    test_rmdir(dir);
}

static void test_tsdbd_statsd_bad_lines_reported_valid_kept(void **state)
{
    const char body[] = "ok:1|c\n"         /* 1 */
                        ":1|c\n"           /* 2 name */
                        "noval|c\n"        /* 3 no value */
                        "x:abc|c\n"        /* 4 value */
                        "x:-1|c\n"         /* 5 sign */
                        "x:1|q\n"          /* 6 type */
                        "x:1|c|@2\n"       /* 7 rate */
                        "x:1|c|#a:1,a:2\n" /* 8 tags */
                        "x:1|ms|#le:5\n"   /* 9 reserved tag */
                        "x:1|c|Tabc\n"     /* 10 timestamp */
                        "x:1|g|+T5\n"      /* 11 field */
                        "\n"               /* 12 blank */
                        "_e{1,1}:a|b\n"    /* 13 event */
                        "__x:1|c\n"        /* 14 reserved name */
                        "ok:2|c\n"         /* 15 */
                        "ok:1|g\n";        /* 16 type conflict */
    const char *const flags[] = {FAST_FLUSH, NULL};
    struct reply r;
    char *dir;
    int port;
    pid_t pid = serve(&dir, &port, flags);
    (void)state;

    assert_int_equal(post(port, STATSD, NULL, body, sizeof(body) - 1, &r), 400);
    contains(r.body, "{\"status\":\"error\",\"errorType\":\"bad_data\","
                     "\"error\":\"13 of 15 lines were rejected, see "
                     "data.errors; the 2 others were accepted\",\"data\":{"
                     "\"lines\":15,\"accepted\":2,\"rejected\":13,"
                     "\"rejectedByReason\":{\"parse_error\":12,"
                     "\"type_conflict\":1,\"limit\":0,\"unavailable\":0,"
                     "\"other\":0},\"errors\":[");
    contains(r.body, "{\"line\":2,\"reason\":\"parse_error\",\"error\":"
                     "\"line 2: metric name is empty\"}");
    contains(r.body, "{\"line\":3,\"reason\":\"parse_error\",\"error\":"
                     "\"line 3: no ':' after the metric name\"}");
    contains(r.body, "\"line 4: value 'abc' is not a number\"");
    contains(r.body, "\"line 5: value '-1' is negative; |c values are "
                     ">= 0\"");
    contains(r.body, "\"line 6: type 'q' is not one of c, g, ms, h, d, s\"");
    contains(r.body, "\"line 7: sample rate '@2' is not in (0, 1]\"");
    contains(r.body, "\"line 8: two tags become label 'a'\"");
    contains(r.body, "\"line 9: tag 'le' is reserved for histogram "
                     "buckets\"");
    contains(r.body, "\"line 10: timestamp 'Tabc' is not unix seconds\"");
    contains(r.body, "{\"line\":11,\"reason\":\"parse_error\"");
    contains(r.body, "\"line 13: events (_e{...}) are not supported\"");
    contains(r.body, "\"line 14: metric name '__x' is reserved (starts with "
                     "__)\"");
    contains(r.body, "{\"line\":16,\"reason\":\"type_conflict\",\"error\":"
                     "\"line 16: 'ok' is a counter (c); this line sends it "
                     "as |g\"}],\"errorsNotShown\":0}}\n");
    reply_free(&r);

    /* The valid lines were kept. */
    wait_value(port, "ok", "ok", 3, &r);
    reply_free(&r);
    assert_int_equal(get(port, "/metrics", &r), 200);
    contains(r.body, "tsdb_statsd_lines_rejected_total{endpoint=\"http\","
                     "reason=\"parse_error\"} 12\n");
    contains(r.body, "tsdb_statsd_lines_rejected_total{endpoint=\"http\","
                     "reason=\"type_conflict\"} 1\n");
    reply_free(&r);
    stop(pid);
    test_rmdir(dir);
}

static void test_tsdbd_statsd_survives_kill9(void **state)
{
    const char *const flags[] = {FAST_FLUSH, NULL};
    const char body[] = "kc:1|c\nkc:2|c|@0.5\n"; /* +5 */
    struct series_view v;
    struct reply r;
    char *dir;
    int port, status;
    pid_t pid = serve(&dir, &port, flags);
    (void)state;

    /* Bodies across several flushes, the last one right before the
     * kill: each is acknowledged only once journalled. */
    for (int i = 0; i < 40; i++) {
        assert_int_equal(post(port, STATSD, NULL, body, sizeof(body) - 1, &r),
                         200);
        reply_free(&r);
        if (i % 8 == 0)
            nap_ms(120);
    }
    kill(pid, SIGKILL);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));

    /* Recovery replays the journal; the next flush stores the total. */
    pid = start(dir, port, flags);
    assert_int_equal(wait_ready(port), 0);
    wait_value(port, "kc", "kc", 200, &r);
    reply_free(&r);
    nap_ms(500);
    assert_int_equal(get(port, "/api/v1/export?match[]=kc", &r), 200);
    view(r.body, "kc", 200, &v);
    assert_true(v.aligned);
    assert_true(v.last == 200);
    assert_true(v.max == 200);
    reply_free(&r);
    stop(pid);
    test_rmdir(dir);
}

static void test_tsdbd_statsd_over_udp(void **state)
{
    char udp[32];
    const char *const flags[] = {FAST_FLUSH, "--statsd-udp", udp, NULL};
    int uport = free_udp_port(), port;
    struct reply r;
    char *dir;
    pid_t pid;
    (void)state;

    snprintf(udp, sizeof(udp), "127.0.0.1:%d", uport);
    pid = serve(&dir, &port, flags);
    for (int i = 0; i < 10; i++)
        send_udp(uport, "udp_hits:1|c|#src:udp\nudp_temp:5|g");
    send_udp(uport, "udp_hits:2|c|#src:udp\nnot a line\n");
    wait_value(port, "%7B__name__%3D~%22udp_.%2A%22%7D",
               "udp_hits{src=\"udp\"}", 12, &r);
    assert_last(r.body, "udp_temp", 5);
    reply_free(&r);
    assert_int_equal(get(port, "/metrics", &r), 200);
    contains(r.body, "tsdb_statsd_bodies_total{endpoint=\"udp\"} 11\n");
    contains(r.body, "tsdb_statsd_lines_accepted_total{endpoint=\"udp\"} "
                     "21\n");
    contains(r.body, "tsdb_statsd_lines_rejected_total{endpoint=\"udp\","
                     "reason=\"parse_error\"} 1\n");
    reply_free(&r);
    stop(pid);
    test_rmdir(dir);
}

static void test_tsdbd_statsd_idle_series_go_stale(void **state)
{
    const char *const flags[] = {FAST_FLUSH, "--statsd-idle-ttl", "600ms",
                                 NULL};
    struct series_view a, b;
    struct reply r;
    char *dir;
    int port;
    pid_t pid = serve(&dir, &port, flags);
    (void)state;

    assert_int_equal(post(port, STATSD, NULL, "idle:4|g", 8, &r), 200);
    reply_free(&r);
    wait_value(port, "idle", "idle", 4, &r);
    reply_free(&r);

    /* Past the TTL: one stale marker (left out of exports), then
     * nothing more. */
    nap_ms(1200);
    assert_int_equal(get(port, "/api/v1/export?match[]=idle", &r), 200);
    view(r.body, "idle", 0, &a);
    reply_free(&r);
    nap_ms(500);
    assert_int_equal(get(port, "/api/v1/export?match[]=idle", &r), 200);
    view(r.body, "idle", 0, &b);
    reply_free(&r);
    assert_int_equal(a.n, b.n);
    assert_int_equal(get(port, "/metrics", &r), 200);
    contains(r.body, "tsdb_statsd_series 0\n");
    assert_null(strstr(r.body, "tsdb_export_stale_markers_skipped_total 0\n"));
    reply_free(&r);
    stop(pid);
    test_rmdir(dir);
}

static void test_tsdbd_status_tsdb(void **state)
{
    const char body[] = "a{job=\"x\",i=\"1\"} 1 1000\n"
                        "a{job=\"x\",i=\"2\"} 1 2000\n"
                        "a{job=\"y\",i=\"3\"} 1 3000\n"
                        "bb{job=\"x\"} 1 4000\n";
    struct reply r;
    char *dir;
    int port;
    pid_t pid = serve(&dir, &port, NULL);
    (void)state;

    assert_int_equal(post(port, STATUS, NULL, "", 0, &r), 405);
    reply_free(&r);
    assert_int_equal(get(port, STATUS, &r), 200);
    assert_string_equal(r.body,
                        "{\"status\":\"success\",\"data\":{\"headStats\":{"
                        "\"numSeries\":0,\"numLabelPairs\":0,\"chunkCount\":0,"
                        "\"minTime\":9223372036854775807,\"maxTime\":"
                        "-9223372036854775808},\"seriesCountByMetricName\":[],"
                        "\"labelValueCountByLabelName\":[],"
                        "\"memoryInBytesByLabelName\":[],"
                        "\"seriesCountByLabelValuePair\":[]}}\n");
    reply_free(&r);
    assert_int_equal(post(port, IMPORT, NULL, body, sizeof(body) - 1, &r), 200);
    reply_free(&r);
    assert_int_equal(get(port, STATUS "?limit=2", &r), 200);
    contains(r.text, "Content-Type: application/json\r\n");
    assert_string_equal(
        r.body, "{\"status\":\"success\",\"data\":{\"headStats\":{"
                "\"numSeries\":4,\"numLabelPairs\":7,\"chunkCount\":4,"
                "\"minTime\":1000,\"maxTime\":4000},"
                "\"seriesCountByMetricName\":[{\"name\":\"a\",\"value\":3},"
                "{\"name\":\"bb\",\"value\":1}],"
                "\"labelValueCountByLabelName\":[{\"name\":\"i\",\"value\":3},"
                "{\"name\":\"__name__\",\"value\":2}],"
                "\"memoryInBytesByLabelName\":[{\"name\":\"__name__\","
                "\"value\":5},{\"name\":\"job\",\"value\":4}],"
                "\"seriesCountByLabelValuePair\":[{\"name\":\"__name__=a\","
                "\"value\":3},{\"name\":\"job=x\",\"value\":3}]}}\n");
    reply_free(&r);
    assert_int_equal(get(port, STATUS "?limit=0", &r), 400);
    assert_string_equal(r.body, "{\"status\":\"error\",\"errorType\":"
                                "\"bad_data\",\"error\":\"limit must be a "
                                "positive number\"}\n");
    reply_free(&r);
    assert_int_equal(get(port, STATUS "?limit=x", &r), 400);
    reply_free(&r);
    stop(pid);
    test_rmdir(dir);
}

/* Runs tsdbd with argv until it exits; its stderr goes to log.  Returns
 * the exit status. */
static int run_logged(const char *const *argv, const char *log)
{
    int status;
    pid_t pid = fork();

    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 2);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        execv(TSDBD, (char *const *)argv);
        _exit(127);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

static void test_tsdbd_limits_file(void **state)
{
    const char rules[] = "# at most two users, the rest folded\n"
                         "values user * 2 fold\n"
                         "values tenant api 1 reject\n";
    const char body[] = "api{tenant=\"a\"} 1 1000\n"
                        "api{tenant=\"b\"} 1 1000\n"
                        "req{user=\"u1\"} 5 1000\n"
                        "req{user=\"u2\"} 6 1000\n"
                        "req{user=\"u3\"} 7 2000\n"
                        "req{user=\"u4\"} 8 3000\n";
    char *tmp = test_tmpdir("tsdbd-limits"), path[256], log[256], *text;
    const char *flags[] = {FAST_FLUSH, "--limits-file", path, NULL};
    struct series_view v;
    struct reply r;
    char *dir;
    size_t len;
    int port;
    pid_t pid;
    (void)state;

    snprintf(path, sizeof(path), "%s/limits", tmp);
    write_file(path, rules, sizeof(rules) - 1);
    pid = serve(&dir, &port, flags);

    /* Reject: the error names the metric and the label. */
    assert_int_equal(post(port, IMPORT, NULL, body, sizeof(body) - 1, &r), 400);
    contains(r.body, "{\"line\":2,\"column\":0,\"reason\":\"limit\","
                     "\"error\":\"label \\\"tenant\\\" is at its limit of 1 "
                     "distinct values for metric \\\"api\\\"; not creating "
                     "series api{tenant=\\\"b\\\"}");
    reply_free(&r);

    /* Fold: u3 and u4 land in the overflow series, every sample kept. */
    assert_int_equal(get(port, "/api/v1/export?match[]=req", &r), 200);
    assert_string_equal(r.body, "# TYPE req unknown\n"
                                "req{user=\"__overflow__\"} 7 2\n"
                                "req{user=\"__overflow__\"} 8 3\n"
                                "req{user=\"u1\"} 5 1\n"
                                "req{user=\"u2\"} 6 1\n# EOF\n");
    reply_free(&r);

    /* StatsD series over a limit are refused at the flush, and counted. */
    assert_int_equal(post(port, STATSD, NULL, "api:1|g|#tenant:c", 17, &r),
                     200);
    reply_free(&r);
    nap_ms(600);
    assert_int_equal(get(port, "/api/v1/export?match[]=api", &r), 200);
    view(r.body, "api{tenant=\"c\"}", 0, &v);
    assert_int_equal(v.n, 0);
    reply_free(&r);
    assert_int_equal(get(port, "/metrics", &r), 200);
    contains(r.body, "tsdb_guard_limit{metric=\"*\",label=\"user\","
                     "policy=\"fold\"} 2\n");
    contains(r.body, "tsdb_guard_used{metric=\"api\",label=\"tenant\"} 1\n");
    contains(r.body, "tsdb_guard_values_folded_total{metric=\"req\","
                     "label=\"user\"} 2\n");
    assert_null(strstr(r.body, "tsdb_statsd_series_refused_total 0\n"));
    assert_null(strstr(r.body, "tsdb_guard_series_refused_total{metric="
                               "\"api\",label=\"tenant\"} 1\n"));
    reply_free(&r);
    stop(pid);
    test_rmdir(dir);

    /* A bad file stops the start, naming the file and the line. */
    write_file(path, "series * 10 reject\nvalues user * many fold\n", 42);
    snprintf(log, sizeof(log), "%s/log", tmp);
    dir = test_tmpdir("tsdbd-limits-bad");
    {
        const char *argv[] = {TSDBD,         "--data",        dir,  "--listen",
                              "127.0.0.1:0", "--limits-file", path, NULL};
        assert_int_equal(run_logged(argv, log), 1);
    }
    text = read_file(log, &len);
    contains(text, "bad guard config '");
    contains(text, "line 2: ");
    free(text);
    test_rmdir(dir);
    test_rmdir(tmp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tsdbd_serves_and_stops_cleanly),
        cmocka_unit_test(test_tsdbd_routing_errors),
        cmocka_unit_test(test_tsdbd_refuses_oversize_bodies),
        cmocka_unit_test(test_tsdbd_import_then_export_exactly),
        cmocka_unit_test(test_tsdbd_generated_dataset_round_trip),
        cmocka_unit_test(test_tsdbd_real_capture_round_trip),
        cmocka_unit_test(test_tsdbd_bad_lines_reported_valid_kept),
        cmocka_unit_test(test_tsdbd_openmetrics_eof_rules),
        cmocka_unit_test(test_tsdbd_acknowledged_import_survives_kill9),
        cmocka_unit_test(test_tsdbd_slow_clients_do_not_block_writes),
        cmocka_unit_test(test_tsdbd_promtool_reads_export),
        cmocka_unit_test(test_tsdbd_refuses_bad_flags_and_busy_folder),
        cmocka_unit_test(test_tsdbd_statsd_types_through_export),
        cmocka_unit_test(test_tsdbd_statsd_bad_lines_reported_valid_kept),
        cmocka_unit_test(test_tsdbd_statsd_survives_kill9),
        cmocka_unit_test(test_tsdbd_statsd_over_udp),
        cmocka_unit_test(test_tsdbd_statsd_idle_series_go_stale),
        cmocka_unit_test(test_tsdbd_status_tsdb),
        cmocka_unit_test(test_tsdbd_limits_file),
    };

    /* A server may close a socket we still write a refused body to. */
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
