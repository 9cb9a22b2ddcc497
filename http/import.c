/*
 * Bulk import: expfmt parser callbacks feeding one tsdb appender; see
 * import.h for the rules.  Layer: http/ over tsdb/db.h and expfmt.h; no
 * MHD here, so the tests drive it without a server.
 *
 * Invariants:
 * 1. pending == samples added to the appender since the last commit;
 *    batch_first/batch_last are the lines of the first and last of them.
 * 2. stop != TSDB_OK once a storage error happened; nothing is added or
 *    committed after that.
 * 3. The series cache (key, ref, rc) describes the label set of the last
 *    sample exactly as parsed, before tsdb_appender_series reordered it.
 */
#include "http/import.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/json.h"

/* A label set as parsed, names and values NUL-separated: bounded by one
 * line plus two separators per label. */
#define KEY_MAX (EXPFMT_MAX_LINE + 4 * EXPFMT_MAX_LABELS)

struct import_error {
    uint64_t line;
    uint32_t column;
    enum http_reject reason;
    char msg[320];
};

struct http_import {
    struct tsdb *db;
    struct tsdb_appender *app;
    struct expfmt_parser parser;
    enum expfmt_format format;
    int64_t now_ms;
    size_t batch;
    size_t pending;
    uint64_t batch_first, batch_last;
    int stop;

    struct http_ingest_counts counts;
    uint64_t samples;
    struct import_error errors[HTTP_IMPORT_MAX_ERRORS];
    size_t nerrors;
    uint64_t errors_total;

    char *key; /* 2 x KEY_MAX: the cached key, then the candidate */
    size_t key_len;
    bool key_valid;
    uint64_t key_ref;
    int key_rc;
    char key_err[320];
};

static void record(struct http_import *im, uint64_t line, uint32_t column,
                   enum http_reject reason, const char *msg)
{
    struct import_error *e;

    im->errors_total++;
    if (im->nerrors == HTTP_IMPORT_MAX_ERRORS)
        return;
    e = &im->errors[im->nerrors++];
    e->line = line;
    e->column = column;
    e->reason = reason;
    snprintf(e->msg, sizeof(e->msg), "%s", msg);
}

/* Counts one commit's verdicts; names the batch's lines for rejections. */
static void tally(struct http_import *im, const struct tsdb_commit_result *r)
{
    static const struct {
        enum http_reject reason;
        const char *what;
    } kinds[] = {
        {HTTP_REJ_OUT_OF_ORDER, "older than the newest sample of their series"},
        {HTTP_REJ_CONFLICT, "at a stored timestamp with a different value"},
        {HTTP_REJ_OUT_OF_BOUNDS, "older than the retention window"},
    };
    const size_t n[] = {r->out_of_order, r->conflicts, r->out_of_bounds};
    char msg[256];

    im->counts.written += r->accepted;
    im->counts.duplicates += r->duplicates;
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        if (n[i] == 0)
            continue;
        im->counts.samples_rejected[kinds[i].reason] += n[i];
        snprintf(msg, sizeof(msg),
                 "%zu samples in lines %" PRIu64 "-%" PRIu64 " are %s", n[i],
                 im->batch_first, im->batch_last, kinds[i].what);
        record(im, im->batch_first, 0, kinds[i].reason, msg);
    }
}

static int commit(struct http_import *im)
{
    struct tsdb_commit_result res;
    int rc;

    if (im->stop != TSDB_OK)
        return im->stop;
    rc = tsdb_appender_commit(im->app, &res);
    im->pending = 0;
    if (rc != TSDB_OK) {
        im->stop = rc;
        return rc;
    }
    tally(im, &res);
    return TSDB_OK;
}

/* Serialises the parsed label set into key; false if it does not fit. */
static bool make_key(const struct expfmt_sample *s, char *key, size_t *len)
{
    size_t n = 0;

    for (size_t i = 0; i < s->nlabels; i++) {
        size_t ln = strlen(s->labels[i].name) + 1;
        size_t lv = strlen(s->labels[i].value) + 1;
        if (n + ln + lv > KEY_MAX)
            return false;
        memcpy(key + n, s->labels[i].name, ln);
        memcpy(key + n + ln, s->labels[i].value, lv);
        n += ln + lv;
    }
    *len = n;
    return true;
}

/*
 * The series of s: from the cache when the previous sample had the same
 * label set (files list a series' samples together), else looked up or
 * created.  Returns tsdb_appender_series's code, cached with its message.
 */
static int series_of(struct http_import *im, struct expfmt_sample *s,
                     uint64_t *ref)
{
    size_t len;
    bool keyed = make_key(s, im->key + KEY_MAX, &len);

    if (keyed && im->key_valid && len == im->key_len &&
        memcmp(im->key, im->key + KEY_MAX, len) == 0) {
        *ref = im->key_ref;
        return im->key_rc;
    }
    im->key_err[0] = '\0';
    im->key_rc =
        tsdb_appender_series(im->app, s->labels, s->nlabels, &im->key_ref,
                             im->key_err, sizeof(im->key_err));
    im->key_valid = keyed;
    if (keyed) {
        memcpy(im->key, im->key + KEY_MAX, len);
        im->key_len = len;
    }
    *ref = im->key_ref;
    return im->key_rc;
}

static int on_sample(void *ctx, struct expfmt_sample *s)
{
    struct http_import *im = ctx;
    uint64_t ref;
    int rc;

    im->samples++;
    rc = series_of(im, s, &ref);
    if (rc == TSDB_EINVAL || rc == TSDB_ELIMIT) {
        enum http_reject why =
            rc == TSDB_ELIMIT ? HTTP_REJ_LIMIT : HTTP_REJ_INVALID_SERIES;
        im->counts.lines_rejected[why]++;
        im->counts.samples_rejected[why]++;
        record(im, s->line, 0, why,
               im->key_err[0] ? im->key_err : tsdb_strerror(rc));
        return TSDB_OK;
    }
    if (rc == TSDB_OK)
        rc = tsdb_appender_add(im->app, ref,
                               s->has_timestamp ? s->timestamp_ms : im->now_ms,
                               s->value);
    if (rc != TSDB_OK) {
        im->stop = rc;
        return rc;
    }
    if (im->pending++ == 0)
        im->batch_first = s->line;
    im->batch_last = s->line;
    return im->pending >= im->batch ? commit(im) : TSDB_OK;
}

static int on_error(void *ctx, const struct expfmt_error *e)
{
    struct http_import *im = ctx;

    im->counts.lines_rejected[HTTP_REJ_PARSE]++;
    record(im, e->line, e->column, HTTP_REJ_PARSE, e->msg);
    return TSDB_OK;
}

struct http_import *http_import_new(struct tsdb *db, enum expfmt_format format,
                                    int64_t now_ms, size_t batch)
{
    static const struct expfmt_callbacks cb = {on_sample, NULL, on_error};
    struct http_import *im = calloc(1, sizeof(*im));

    if (!im)
        return NULL;
    im->db = db;
    im->format = format;
    im->now_ms = now_ms;
    im->batch = batch < 1                       ? 1
                : batch > HTTP_IMPORT_MAX_BATCH ? HTTP_IMPORT_MAX_BATCH
                                                : batch;
    im->app = tsdb_appender_new(db);
    im->key = malloc(2 * KEY_MAX);
    if (!im->app || !im->key ||
        expfmt_parser_init(&im->parser, format, &cb, im) != TSDB_OK) {
        http_import_free(im);
        return NULL;
    }
    return im;
}

int http_import_feed(struct http_import *im, const void *buf, size_t len)
{
    if (im->stop != TSDB_OK)
        return im->stop;
    expfmt_parser_feed(&im->parser, buf, len);
    return im->stop;
}

int http_import_finish(struct http_import *im)
{
    if (im->stop != TSDB_OK)
        return im->stop;

    /* A missing "# EOF" comes back as TSDB_ECORRUPT after it was reported
     * through on_error: it is a bad line, not a failed import. */
    expfmt_parser_finish(&im->parser);
    im->counts.lines = im->parser.lines;
    if (im->stop != TSDB_OK)
        return im->stop;
    return im->pending > 0 ? commit(im) : TSDB_OK;
}

void http_import_abort(struct http_import *im)
{
    tsdb_appender_rollback(im->app);
    im->pending = 0;
    im->counts.lines = im->parser.lines;
}

const struct http_ingest_counts *
http_import_counts(const struct http_import *im)
{
    return &im->counts;
}

uint64_t http_import_rejected(const struct http_import *im)
{
    uint64_t n = im->counts.lines_rejected[HTTP_REJ_PARSE];

    for (int r = HTTP_REJ_INVALID_SERIES; r < HTTP_REJ_COUNT; r++)
        n += im->counts.samples_rejected[r];
    return n;
}

/* The count shown for a reason: lines for parse errors, else samples. */
static uint64_t reason_count(const struct http_import *im, int r)
{
    return r == HTTP_REJ_PARSE ? im->counts.lines_rejected[r]
                               : im->counts.samples_rejected[r];
}

void http_import_json(const struct http_import *im, struct http_buf *b)
{
    http_buf_printf(
        b,
        "{\"format\":\"%s\",\"lines\":%" PRIu64 ",\"samples\":%" PRIu64
        ",\"accepted\":%" PRIu64 ",\"duplicates\":%" PRIu64
        ",\"rejected\":%" PRIu64 ",\"rejectedByReason\":{",
        im->format == EXPFMT_OPENMETRICS ? "openmetrics" : "prometheus",
        im->parser.lines, im->samples, im->counts.written,
        im->counts.duplicates, http_import_rejected(im));
    for (int r = 0; r < HTTP_REJ_COUNT; r++)
        http_buf_printf(b, "%s\"%s\":%" PRIu64, r ? "," : "",
                        http_reject_name(r), reason_count(im, r));
    http_buf_puts(b, "},\"errors\":[");
    for (size_t i = 0; i < im->nerrors; i++) {
        const struct import_error *e = &im->errors[i];
        http_buf_printf(b,
                        "%s{\"line\":%" PRIu64 ",\"column\":%" PRIu32
                        ",\"reason\":\"%s\",\"error\":",
                        i ? "," : "", e->line, e->column,
                        http_reject_name(e->reason));
        http_json_str(b, e->msg);
        http_buf_puts(b, "}");
    }
    http_buf_printf(b, "],\"errorsNotShown\":%" PRIu64 "}",
                    im->errors_total - im->nerrors);
}

void http_import_summary(const struct http_import *im, char *out, size_t cap)
{
    size_t n;

    n = (size_t)snprintf(out, cap,
                         "%" PRIu64 " lines, %" PRIu64
                         " samples accepted, %" PRIu64 " duplicates, %" PRIu64
                         " rejected",
                         im->parser.lines, im->counts.written,
                         im->counts.duplicates, http_import_rejected(im));
    for (int r = 0; r < HTTP_REJ_COUNT && n < cap; r++) {
        if (reason_count(im, r) == 0)
            continue;
        n += (size_t)snprintf(out + n, cap - n, " %s=%" PRIu64,
                              http_reject_name(r), reason_count(im, r));
    }
    if (im->nerrors > 0 && n < cap)
        snprintf(out + n, cap - n, "; first: line %" PRIu64 ": %s",
                 im->errors[0].line, im->errors[0].msg);
}

void http_import_free(struct http_import *im)
{
    if (!im)
        return;
    if (im->app)
        tsdb_appender_rollback(im->app);
    tsdb_appender_free(im->app);
    expfmt_parser_release(&im->parser);
    free(im->key);
    free(im);
}
