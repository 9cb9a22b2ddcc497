/*
 * Export as an OpenMetrics stream; see export.h for the output rules.
 * Layer: http/ over tsdb/db.h; no MHD, so the tests drive it directly.
 *
 * The stream is a state machine advanced one step at a time by step():
 * a step writes at most one line (or a run of sample lines that keeps the
 * buffer under HTTP_EXPORT_CHUNK), or moves to the next batch, series,
 * selector or metric name.
 *
 * Invariants:
 * 1. q != NULL only while name_m is initialised (it matches names[name_i])
 *    and the query uses sels[sel_i] plus name_m.
 * 2. bi <= bn; ts/vs are the current batch, borrowed from q until the next
 *    tsdb_query_next_batch.
 * 3. out.len - pos bytes are produced and not yet handed out.
 */
#include "http/export.h"

#include <stdlib.h>
#include <string.h>

#include "http/buf.h"
#include "http/numfmt.h"

/* One sample line at most: a series text (name, 63 labels with escaped
 * values) plus value and timestamp. */
#define LINE_MAX_BYTES                                                         \
    (TSDB_MAX_LABEL_VALUE +                                                    \
     TSDB_MAX_LABELS * (TSDB_MAX_LABEL_NAME + 2 * TSDB_MAX_LABEL_VALUE + 4) +  \
     2 * HTTP_NUM_MAX + 8)

#define STALE_NAN_BITS UINT64_C(0x7ff0000000000002)

struct http_export {
    struct tsdb *db;
    struct http_selector *sels;
    size_t nsel;
    int64_t mint, maxt;

    char **names; /* sorted, unique */
    size_t nnames;
    size_t names_cap;

    size_t name_i; /* current name */
    size_t sel_i;  /* current selector for that name */
    struct tsdb_matcher name_m;
    bool name_live;
    bool typed; /* "# TYPE" written for names[name_i] */
    struct tsdb_matcher *scratch;
    struct tsdb_query *q;
    bool in_series;
    const int64_t *ts;
    const double *vs;
    size_t bn, bi;

    struct http_buf prefix; /* series text up to the value */
    struct http_buf out;
    size_t pos;
    bool finished; /* "# EOF" is in out */

    uint64_t series, samples, stale;
};

static int add_name(void *ctx, const char *s, size_t len)
{
    struct http_export *e = ctx;
    char *copy;

    if (e->nnames == HTTP_EXPORT_MAX_NAMES)
        return TSDB_ELIMIT;
    if (e->nnames == e->names_cap) {
        size_t cap = e->names_cap ? e->names_cap * 2 : 64;
        char **p = realloc(e->names, cap * sizeof(*p));
        if (!p)
            return TSDB_ENOMEM;
        e->names = p;
        e->names_cap = cap;
    }
    copy = malloc(len + 1);
    if (!copy)
        return TSDB_ENOMEM;
    memcpy(copy, s, len);
    copy[len] = '\0';
    e->names[e->nnames++] = copy;
    return TSDB_OK;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The union of the metric names of every selector, sorted, unique. */
static int collect_names(struct http_export *e)
{
    size_t w = 0;

    for (size_t i = 0; i < e->nsel; i++) {
        int rc = tsdb_label_values(e->db, "__name__", e->sels[i].m,
                                   e->sels[i].n, add_name, e);
        if (rc != TSDB_OK)
            return rc;
    }
    if (e->nnames == 0)
        return TSDB_OK;
    qsort(e->names, e->nnames, sizeof(*e->names), cmp_names);
    for (size_t r = 1; r < e->nnames; r++) {
        if (strcmp(e->names[r], e->names[w]) == 0)
            free(e->names[r]);
        else
            e->names[++w] = e->names[r];
    }
    e->nnames = w + 1;
    return TSDB_OK;
}

int http_export_new(struct tsdb *db, struct http_selector *sels, size_t nsel,
                    int64_t mint, int64_t maxt, struct http_export **out)
{
    struct http_export *e = calloc(1, sizeof(*e));
    size_t most = 0;
    int rc;

    if (!e) {
        for (size_t i = 0; i < nsel; i++)
            http_selector_release(&sels[i]);
        free(sels);
        return TSDB_ENOMEM;
    }
    e->db = db;
    e->sels = sels;
    e->nsel = nsel;
    e->mint = mint;
    e->maxt = maxt;
    http_buf_init(&e->prefix, LINE_MAX_BYTES);
    http_buf_init(&e->out, HTTP_EXPORT_CHUNK + LINE_MAX_BYTES);
    if (nsel == 0 || mint > maxt) {
        http_export_free(e);
        return TSDB_EINVAL;
    }
    for (size_t i = 0; i < nsel; i++)
        most = sels[i].n > most ? sels[i].n : most;
    e->scratch = calloc(most + 1, sizeof(*e->scratch));
    rc = e->scratch ? collect_names(e) : TSDB_ENOMEM;
    if (rc != TSDB_OK) {
        http_export_free(e);
        return rc;
    }
    *out = e;
    return TSDB_OK;
}

/* Appends s escaped as an OpenMetrics label value. */
static void put_escaped(struct http_buf *b, const char *s)
{
    size_t run = 0, i;

    for (i = 0; s[i]; i++) {
        const char *esc = s[i] == '\\'   ? "\\\\"
                          : s[i] == '"'  ? "\\\""
                          : s[i] == '\n' ? "\\n"
                                         : NULL;
        if (!esc)
            continue;
        http_buf_add(b, s + run, i - run);
        http_buf_puts(b, esc);
        run = i + 1;
    }
    http_buf_add(b, s + run, i - run);
}

/* Writes the "# TYPE" line if due and the series text into prefix. */
static int begin_series(struct http_export *e, const struct tsdb_labels *ls)
{
    const char *name = e->names[e->name_i];
    bool braces = false;

    if (!e->typed) {
        http_buf_printf(&e->out, "# TYPE %s unknown\n", name);
        e->typed = true;
    }
    http_buf_reset(&e->prefix);
    http_buf_puts(&e->prefix, name);
    for (size_t i = 0; i < ls->n; i++) {
        if (strcmp(ls->v[i].name, "__name__") == 0)
            continue;
        http_buf_puts(&e->prefix, braces ? "," : "{");
        braces = true;
        http_buf_puts(&e->prefix, ls->v[i].name);
        http_buf_puts(&e->prefix, "=\"");
        put_escaped(&e->prefix, ls->v[i].value);
        http_buf_puts(&e->prefix, "\"");
    }
    if (braces)
        http_buf_puts(&e->prefix, "}");
    e->in_series = true;
    e->series++;
    return e->prefix.err != TSDB_OK ? e->prefix.err : e->out.err;
}

/* Writes sample lines of the current batch until the chunk is full. */
static int write_samples(struct http_export *e)
{
    char num[HTTP_NUM_MAX], ts[HTTP_NUM_MAX];

    for (; e->bi < e->bn && e->out.len < HTTP_EXPORT_CHUNK; e->bi++) {
        uint64_t bits;
        size_t nl, tl;

        memcpy(&bits, &e->vs[e->bi], sizeof(bits));
        if (bits == STALE_NAN_BITS) {
            e->stale++;
            continue;
        }
        nl = http_fmt_value(num, e->vs[e->bi]);
        tl = http_fmt_seconds(ts, e->ts[e->bi]);
        http_buf_add(&e->out, e->prefix.p, e->prefix.len);
        http_buf_add(&e->out, " ", 1);
        http_buf_add(&e->out, num, nl);
        http_buf_add(&e->out, " ", 1);
        http_buf_add(&e->out, ts, tl);
        http_buf_add(&e->out, "\n", 1);
        e->samples++;
    }
    return e->out.err;
}

/* Is the series already written under an earlier selector? */
static bool seen_before(const struct http_export *e,
                        const struct tsdb_labels *ls)
{
    for (size_t k = 0; k < e->sel_i; k++)
        if (http_selector_matches(&e->sels[k], ls))
            return true;
    return false;
}

/* Opens the query of (names[name_i], sels[sel_i]). */
static int open_query(struct http_export *e)
{
    const struct http_selector *sel = &e->sels[e->sel_i];
    char err[256];
    int rc;

    if (!e->name_live) {
        rc = tsdb_matcher_init(&e->name_m, TSDB_MATCH_EQ, "__name__",
                               e->names[e->name_i], err, sizeof(err));
        if (rc != TSDB_OK)
            return rc;
        e->name_live = true;
    }

    /* Shallow copies: the query only reads the matchers, on this thread,
     * and the selector keeps owning what they point to. */
    memcpy(e->scratch, sel->m, sel->n * sizeof(*sel->m));
    e->scratch[sel->n] = e->name_m;
    return tsdb_query_open(e->db, e->scratch, sel->n + 1, e->mint, e->maxt,
                           &e->q);
}

/* Moves on to the next metric name. */
static void next_name(struct http_export *e)
{
    if (e->name_live)
        tsdb_matcher_release(&e->name_m);
    e->name_live = false;
    e->typed = false;
    e->sel_i = 0;
    e->name_i++;
}

/* In an open query: the next batch, or the next series. */
static int step_query(struct http_export *e)
{
    const struct tsdb_labels *ls;
    int rc;

    if (e->in_series) {
        rc = tsdb_query_next_batch(e->q, &e->ts, &e->vs, &e->bn);
        e->bi = 0;
        if (rc == TSDB_OK && e->bn == 0)
            e->in_series = false;
        return rc;
    }
    rc = tsdb_query_next_series(e->q, &ls, NULL);
    if (rc == TSDB_ENOTFOUND) {
        tsdb_query_close(e->q);
        e->q = NULL;
        e->sel_i++;
        return TSDB_OK;
    }
    if (rc != TSDB_OK || seen_before(e, ls))
        return rc;
    return begin_series(e, ls);
}

static int step(struct http_export *e)
{
    if (e->bi < e->bn)
        return write_samples(e);
    if (e->q)
        return step_query(e);
    if (e->name_i == e->nnames) {
        http_buf_puts(&e->out, "# EOF\n");
        e->finished = true;
        return e->out.err;
    }
    if (e->sel_i == e->nsel) {
        next_name(e);
        return TSDB_OK;
    }
    return open_query(e);
}

int http_export_read(struct http_export *e, char *buf, size_t cap, size_t *n)
{
    size_t avail;

    /* Move what the last call left to the front, then refill. */
    if (e->pos > 0) {
        memmove(e->out.p, e->out.p + e->pos, e->out.len - e->pos);
        e->out.len -= e->pos;
        e->pos = 0;
    }
    while (!e->finished && e->out.len < cap && e->out.len < HTTP_EXPORT_CHUNK) {
        int rc = step(e);
        if (rc != TSDB_OK)
            return rc;
    }
    avail = e->out.len < cap ? e->out.len : cap;
    if (avail > 0)
        memcpy(buf, e->out.p, avail);
    e->pos = avail;
    *n = avail;
    return TSDB_OK;
}

void http_export_counts(const struct http_export *e, uint64_t *series,
                        uint64_t *samples, uint64_t *stale)
{
    *series = e->series;
    *samples = e->samples;
    *stale = e->stale;
}

void http_export_free(struct http_export *e)
{
    if (!e)
        return;
    tsdb_query_close(e->q);
    if (e->name_live)
        tsdb_matcher_release(&e->name_m);
    for (size_t i = 0; i < e->nsel; i++)
        http_selector_release(&e->sels[i]);
    free(e->sels);
    for (size_t i = 0; i < e->nnames; i++)
        free(e->names[i]);
    free(e->names);
    free(e->scratch);
    http_buf_release(&e->prefix);
    http_buf_release(&e->out);
    free(e);
}
