/*
 * tsdb-bench: storage benchmark over one exposition file, through the
 * public C API only (tsdb/db.h, http/expfmt.h).  bench/run-bench runs it
 * beside Prometheus on the same file.
 *
 *   tsdb-bench FILE [--dir DIR] [--format openmetrics|text] [--batch N]
 *              [--series-mem N] [--mem-samples N] [--max-samples N] [--keep]
 *
 * Steps, each printing "name value unit" lines on stdout:
 * 1. parse FILE into memory: per series its label set and its samples,
 *    sorted by time (duplicate timestamps dropped and counted);
 * 2. append on one thread as a scraper does: for each step i, sample i of
 *    every series, committed every --batch samples; only appender calls and
 *    commits are timed;
 * 3. seal, flush, checkpoint; bytes per sample of the LMDB file, of its
 *    used pages and of the chunk payloads, and the WAL size;
 * 4. one query over every series and the whole time range, counting and
 *    summing samples; the count and an exact checksum over every timestamp
 *    and value bit must equal what was appended;
 * 5. in a fresh database, --series-mem series shaped like the file's, with
 *    --mem-samples samples each: resident memory per series.
 *
 * The databases live in DIR/append and DIR/mem; without --dir, in a new
 * folder under /tmp that is removed at the end unless --keep is given.
 * Exit 0 when every check passed, 1 when a check failed, 2 on bad usage.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>

#include "http/expfmt.h"
#include "tsdb/compact.h"
#include "tsdb/db.h"

/* Every growable buffer of the tool has a bound: these. */
#define BENCH_MAX_SERIES    (16u << 20)
#define BENCH_MAX_SAMPLES   ((size_t)1 << 30) /* default of --max-samples */
#define BENCH_READ_SIZE     (1u << 20)
#define BENCH_KEY_MAX       (2 * EXPFMT_MAX_LINE)
#define BENCH_BATCH_DEFAULT 10000
#define BENCH_MEM_SERIES    1000000
#define BENCH_MEM_SAMPLES   3
#define BENCH_MEM_STEP_MS   10000

/* One series of the file: its label set and its samples. */
struct series {
    char *key; /* name\0value\0... of every label: owns the strings */
    size_t keylen;
    uint64_t hash;
    struct tsdb_label *labels; /* into key; normalized by the appender */
    size_t nlabels;
    int64_t *ts;
    double *vs;
    size_t n, cap;
    uint64_t ref; /* storage id, once appended */
};

struct dataset {
    struct series *s;
    size_t n, cap;
    uint32_t *slots; /* open addressing: series index + 1, 0 = free */
    size_t nslots;   /* power of two, kept over twice n */
    size_t last;     /* series of the previous sample, or SIZE_MAX */
    char *key;       /* the current sample's key, BENCH_KEY_MAX */
    size_t samples, max_samples, no_timestamp, duplicates;
    size_t maxlen;  /* most samples in one series */
    uint64_t check; /* sum of every timestamp and value bit pattern */
    double sum;
};

struct options {
    const char *file, *dir;
    enum expfmt_format format;
    bool format_set, keep;
    size_t batch, mem_series, mem_samples, max_samples;
};

static void die(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fputs("tsdb-bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n);
    if (p == NULL)
        die("out of memory (%zu bytes)", n);
    return p;
}

static double now_s(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double cpu_s(void)
{
    struct timespec t;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* One figure: name, value, unit.  bench/run-bench reads these by name. */
static void figure(const char *name, double v, const char *unit)
{
    if (fabs(v) >= 1000 || v == floor(v))
        printf("%-30s %.0f %s\n", name, v, unit);
    else
        printf("%-30s %.4g %s\n", name, v, unit);
    fflush(stdout);
}

static void note(const char *name, const char *text)
{
    printf("%-30s %s\n", name, text);
    fflush(stdout);
}

static void check(int rc, const char *what)
{
    if (rc != TSDB_OK)
        die("%s: %s", what, tsdb_strerror(rc));
}

/* ---- step 1: the file in memory ---- */

static uint64_t bits_of(double v)
{
    uint64_t b;

    memcpy(&b, &v, sizeof(b));
    return b;
}

/* Builds the current sample's key; returns its length. */
static size_t make_key(struct dataset *d, const struct expfmt_sample *smp)
{
    size_t len = 0, i, a, b;

    for (i = 0; i < smp->nlabels; i++) {
        a = strlen(smp->labels[i].name) + 1;
        b = strlen(smp->labels[i].value) + 1;
        if (len + a + b > BENCH_KEY_MAX)
            die("line %" PRIu64 ": label set too long", smp->line);
        memcpy(d->key + len, smp->labels[i].name, a);
        memcpy(d->key + len + a, smp->labels[i].value, b);
        len += a + b;
    }
    return len;
}

static void grow_slots(struct dataset *d)
{
    size_t i, j, mask;

    free(d->slots);
    d->nslots = d->nslots ? d->nslots * 2 : 1024;
    d->slots = calloc(d->nslots, sizeof(*d->slots));
    if (d->slots == NULL)
        die("out of memory");
    mask = d->nslots - 1;
    for (i = 0; i < d->n; i++) {
        for (j = d->s[i].hash & mask; d->slots[j]; j = (j + 1) & mask)
            ;
        d->slots[j] = (uint32_t)(i + 1);
    }
}

/* Appends a series for the key in d->key[0..len); the caller files it in
 * the hash table. */
static size_t add_series(struct dataset *d, size_t len, uint64_t h,
                         size_t nlabels)
{
    struct series *s;
    size_t i, off = 0;

    if (d->n == BENCH_MAX_SERIES)
        die("more than %u series", BENCH_MAX_SERIES);
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 1024;
        d->s = xrealloc(d->s, d->cap * sizeof(*d->s));
    }
    s = &d->s[d->n];
    memset(s, 0, sizeof(*s));
    s->key = xrealloc(NULL, len);
    memcpy(s->key, d->key, len);
    s->keylen = len;
    s->hash = h;
    s->nlabels = nlabels;
    s->labels = xrealloc(NULL, nlabels * sizeof(*s->labels));
    for (i = 0; i < nlabels; i++) {
        s->labels[i].name = s->key + off;
        off += strlen(s->key + off) + 1;
        s->labels[i].value = s->key + off;
        off += strlen(s->key + off) + 1;
    }
    return d->n++;
}

/* The series of the current sample, found or created. */
static size_t find_series(struct dataset *d, const struct expfmt_sample *smp)
{
    size_t len = make_key(d, smp), mask, j, idx;
    uint64_t h;
    struct series *s;

    if (d->last != SIZE_MAX) {
        s = &d->s[d->last];
        if (s->keylen == len && memcmp(s->key, d->key, len) == 0)
            return d->last;
    }
    h = XXH3_64bits(d->key, len);
    if (d->nslots == 0)
        grow_slots(d);
    mask = d->nslots - 1;
    for (j = h & mask; d->slots[j]; j = (j + 1) & mask) {
        s = &d->s[d->slots[j] - 1];
        if (s->hash == h && s->keylen == len &&
            memcmp(s->key, d->key, len) == 0)
            return d->slots[j] - 1;
    }
    idx = add_series(d, len, h, smp->nlabels);
    if (d->n * 2 > d->nslots)
        grow_slots(d); /* places the new series too */
    else
        d->slots[j] = (uint32_t)(idx + 1);
    return idx;
}

static int on_sample(void *ctx, struct expfmt_sample *smp)
{
    struct dataset *d = ctx;
    struct series *s;

    if (!smp->has_timestamp) {
        d->no_timestamp++;
        return TSDB_OK;
    }
    if (d->samples == d->max_samples)
        die("more than %zu samples (raise --max-samples)", d->max_samples);
    d->last = find_series(d, smp);
    s = &d->s[d->last];
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 64;
        s->ts = xrealloc(s->ts, s->cap * sizeof(*s->ts));
        s->vs = xrealloc(s->vs, s->cap * sizeof(*s->vs));
    }
    s->ts[s->n] = smp->timestamp_ms;
    s->vs[s->n] = smp->value;
    s->n++;
    d->samples++;
    return TSDB_OK;
}

static int on_error(void *ctx, const struct expfmt_error *e)
{
    static unsigned shown;

    (void)ctx;
    if (shown++ < 10) {
        fprintf(stderr, "tsdb-bench: line %" PRIu64 ", column %u: %s\n",
                e->line, e->column, e->msg);
    }
    return TSDB_OK;
}

static void dataset_release(struct dataset *d)
{
    size_t k;

    for (k = 0; k < d->n; k++) {
        free(d->s[k].key);
        free(d->s[k].labels);
        free(d->s[k].ts);
        free(d->s[k].vs);
    }
    free(d->s);
    free(d->slots);
    free(d->key);
    memset(d, 0, sizeof(*d));
}

/* A sample and its place in the file, for a stable sort by time. */
struct pair {
    int64_t t;
    double v;
    size_t i;
};

static int cmp_pair(const void *a, const void *b)
{
    const struct pair *x = a, *y = b;

    if (x->t != y->t)
        return (x->t > y->t) - (x->t < y->t);
    return (x->i > y->i) - (x->i < y->i);
}

/* Puts s in time order and drops repeated timestamps (the first one
 * read wins), as the storage would refuse them. */
static size_t sort_series(struct series *s)
{
    struct pair *pv;
    size_t i, n = 0, dup;

    for (i = 1; i < s->n && s->ts[i - 1] < s->ts[i]; i++)
        ;
    if (i >= s->n)
        return 0;
    pv = xrealloc(NULL, s->n * sizeof(*pv));
    for (i = 0; i < s->n; i++) {
        pv[i].t = s->ts[i];
        pv[i].v = s->vs[i];
        pv[i].i = i;
    }
    qsort(pv, s->n, sizeof(*pv), cmp_pair);
    for (i = 0; i < s->n; i++) {
        if (n > 0 && s->ts[n - 1] == pv[i].t)
            continue;
        s->ts[n] = pv[i].t;
        s->vs[n] = pv[i].v;
        n++;
    }
    free(pv);
    dup = s->n - n;
    s->n = n;
    return dup;
}

/* Orders every series and computes what the scan must find. */
static void finish_dataset(struct dataset *d, int64_t *mint, int64_t *maxt)
{
    size_t k, i;

    *mint = INT64_MAX;
    *maxt = INT64_MIN;
    d->samples = 0;
    for (k = 0; k < d->n; k++) {
        struct series *s = &d->s[k];

        d->duplicates += sort_series(s);
        for (i = 0; i < s->n; i++) {
            d->check += (uint64_t)s->ts[i] + bits_of(s->vs[i]);
            d->sum += s->vs[i];
        }
        d->samples += s->n;
        if (s->n > d->maxlen)
            d->maxlen = s->n;
        if (s->n > 0 && s->ts[0] < *mint)
            *mint = s->ts[0];
        if (s->n > 0 && s->ts[s->n - 1] > *maxt)
            *maxt = s->ts[s->n - 1];
    }
}

/*
 * Feeds the whole file to a parser with cb.  Returns the seconds spent
 * inside the parser calls (reading the file is not counted).
 */
static double parse_file(const struct options *o,
                         const struct expfmt_callbacks *cb, void *ctx,
                         struct expfmt_parser *p)
{
    char *buf = xrealloc(NULL, BENCH_READ_SIZE);
    double t = 0, t0;
    ssize_t got;
    int fd, rc = TSDB_OK;

    fd = open(o->file, O_RDONLY);
    if (fd < 0)
        die("%s: %s", o->file, strerror(errno));
    check(expfmt_parser_init(p, o->format, cb, ctx), "parser");
    while ((got = read(fd, buf, BENCH_READ_SIZE)) > 0) {
        t0 = now_s();
        rc = expfmt_parser_feed(p, buf, (size_t)got);
        t += now_s() - t0;
        check(rc, "parse");
    }
    if (got < 0)
        die("%s: %s", o->file, strerror(errno));
    t0 = now_s();
    rc = expfmt_parser_finish(p);
    t += now_s() - t0;
    close(fd);
    free(buf);
    if (rc != TSDB_OK && rc != TSDB_ECORRUPT)
        check(rc, "parse");
    return t;
}

static void load(const struct options *o, struct dataset *d, int64_t *mint,
                 int64_t *maxt)
{
    const struct expfmt_callbacks load_cb = {on_sample, NULL, on_error};
    const struct expfmt_callbacks bare_cb = {NULL, NULL, NULL};
    struct expfmt_parser p;
    double t0, t;

    /* The parser alone first: the figure the import path starts from. */
    t = parse_file(o, &bare_cb, NULL, &p);
    figure("parse_lines", (double)p.lines, "lines");
    figure("parse_lines_per_s", (double)p.lines / t, "lines/s");
    figure("parse_samples_per_s", (double)p.samples / t, "samples/s");
    expfmt_parser_release(&p);

    d->key = xrealloc(NULL, BENCH_KEY_MAX);
    d->last = SIZE_MAX;
    t0 = now_s();
    parse_file(o, &load_cb, d, &p);
    finish_dataset(d, mint, maxt);
    t = now_s() - t0;
    figure("load_s", t, "s (parse + in-memory build)");
    figure("parse_errors", (double)p.errors, "lines");
    figure("series", (double)d->n, "series");
    figure("samples", (double)d->samples, "samples");
    if (d->no_timestamp > 0)
        figure("skipped_no_timestamp", (double)d->no_timestamp, "samples");
    if (d->duplicates > 0)
        figure("skipped_duplicate_ts", (double)d->duplicates, "samples");
    figure("time_span_s", (double)(*maxt - *mint) / 1000.0, "s");
    expfmt_parser_release(&p);
    if (d->samples == 0)
        die("%s: no samples with a timestamp", o->file);
}

/* ---- steps 2 to 4: append, size on disk, full scan ---- */

static void open_db(const char *dir, size_t max_series, struct tsdb **db)
{
    struct tsdb_options opt;

    tsdb_options_init(&opt);
    opt.dir = dir;
    if (opt.max_series < max_series)
        opt.max_series = max_series;
    check(tsdb_open(&opt, db), dir);
}

static void commit(struct tsdb_appender *a, struct tsdb_commit_result *tot)
{
    struct tsdb_commit_result r;

    check(tsdb_appender_commit(a, &r), "commit");
    tot->accepted += r.accepted;
    tot->duplicates += r.duplicates;
    tot->out_of_order += r.out_of_order;
    tot->conflicts += r.conflicts;
    tot->out_of_bounds += r.out_of_bounds;
}

/* Step 2.  Returns the samples the storage accepted. */
static size_t append_all(struct dataset *d, struct tsdb *db, size_t batch)
{
    struct tsdb_appender *a = tsdb_appender_new(db);
    struct tsdb_commit_result tot = {0};
    size_t i, k, pending = 0, commits = 0;
    double t0, t1, c0;
    char err[512];

    if (a == NULL)
        die("out of memory");
    c0 = cpu_s();
    t0 = now_s();
    for (k = 0; k < d->n; k++) {
        if (tsdb_appender_series(a, d->s[k].labels, d->s[k].nlabels,
                                 &d->s[k].ref, err, sizeof(err)) != TSDB_OK)
            die("series %zu: %s", k, err);
    }
    t1 = now_s();
    for (i = 0; i < d->maxlen; i++) {
        for (k = 0; k < d->n; k++) {
            const struct series *s = &d->s[k];

            if (i >= s->n)
                continue;
            check(tsdb_appender_add(a, s->ref, s->ts[i], s->vs[i]), "add");
            if (++pending == batch) {
                commit(a, &tot);
                pending = 0;
                commits++;
            }
        }
    }
    if (pending > 0) {
        commit(a, &tot);
        commits++;
    }
    figure("append_series_create_s", t1 - t0, "s");
    figure("append_samples_per_s", (double)d->samples / (now_s() - t0),
           "samples/s");
    figure("append_cpu_s", cpu_s() - c0, "s (all threads)");
    figure("append_commits", (double)commits, "commits");
    figure("append_accepted", (double)tot.accepted, "samples");
    if (tot.accepted != d->samples) {
        printf("append_rejected                dup %zu ooo %zu conflict %zu "
               "oob %zu\n",
               tot.duplicates, tot.out_of_order, tot.conflicts,
               tot.out_of_bounds);
    }
    tsdb_appender_free(a);
    return tot.accepted;
}

static uint64_t du_total;

static int du_entry(const char *path, const struct stat *sb, int flag,
                    struct FTW *ftw)
{
    (void)path;
    (void)ftw;
    if (flag == FTW_F)
        du_total += (uint64_t)sb->st_blocks * 512;
    return 0;
}

/* Bytes allocated on disk under dir, as du counts them. */
static uint64_t dir_bytes(const char *dir)
{
    du_total = 0;
    nftw(dir, du_entry, 16, FTW_PHYS);
    return du_total;
}

/* Step 3. */
static void disk_figures(struct tsdb *db, const char *dir, size_t samples)
{
    struct tsdb_stats st;
    double t0 = now_s(), n = (double)samples;

    check(tsdb_seal_all(db), "seal");
    check(tsdb_flush(db), "flush");
    figure("seal_flush_s", now_s() - t0, "s");
    /* The flusher packs sealed chunks on its own thread; sustained ingest
     * is the lower of this and the append rate. */
    figure("flush_samples_per_s", n / (now_s() - t0),
           "samples/s (packing and writing, flusher thread)");
    tsdb_stats_get(db, &st);
    figure("lmdb_file_bytes_per_sample", (double)st.lmdb_file_bytes / n,
           "bytes/sample");
    figure("lmdb_used_bytes_per_sample", (double)st.lmdb_used_bytes / n,
           "bytes/sample");
    figure("chunk_bytes_per_sample", (double)st.chunk_bytes / n,
           "bytes/sample");
    figure("chunks_written", (double)st.chunks_written, "chunks");
    figure("wal_bytes", (double)st.wal_bytes, "bytes");
    t0 = now_s();
    check(tsdb_checkpoint(db), "checkpoint");
    tsdb_stats_get(db, &st);
    figure("checkpoint_s", now_s() - t0, "s");
    figure("wal_bytes_after_checkpoint", (double)st.wal_bytes, "bytes");
    figure("lmdb_file_bytes", (double)st.lmdb_file_bytes, "bytes");
    figure("dir_bytes_per_sample", (double)dir_bytes(dir) / n,
           "bytes/sample (du of the data folder)");
}

/*
 * Step 3b, on the closed folder: LMDB leaves pages half full where chunks
 * of many series go in mid-page, and tsdb_compact rebuilds them full, as
 * tsdbd does at shutdown.
 */
static void compact_figures(const char *dir, size_t samples)
{
    uint64_t before, after;
    double t0 = now_s(), n = (double)samples;

    check(tsdb_compact(dir, &before, &after), "compact");
    figure("compact_s", now_s() - t0, "s");
    figure("lmdb_compacted_bytes_per_sample", (double)after / n,
           "bytes/sample");
    figure("dir_compacted_bytes_per_sample", (double)dir_bytes(dir) / n,
           "bytes/sample (du of the data folder)");
}

/* The scan adds in another order than the file, so the last bits of the
 * sum may differ; the checksum is the exact test. */
static bool sums_match(double got, double want)
{
    if (isnan(want) || isnan(got))
        return isnan(want) && isnan(got);
    return fabs(got - want) <= 1e-9 * fabs(want);
}

/* Step 4.  Returns false if the scan does not give back the data. */
static bool scan_all(struct dataset *d, struct tsdb *db, int64_t mint,
                     int64_t maxt, size_t accepted)
{
    struct tsdb_matcher m;
    struct tsdb_query *q;
    const struct tsdb_labels *ls;
    const int64_t *ts;
    const double *vs;
    size_t n, i, count = 0, series = 0;
    uint64_t sum_check = 0;
    double sum = 0, t0, t;
    char err[256];

    if (tsdb_matcher_init(&m, TSDB_MATCH_RE, "__name__", ".+", err,
                          sizeof(err)) != TSDB_OK)
        die("matcher: %s", err);
    t0 = now_s();
    check(tsdb_query_open(db, &m, 1, mint, maxt, &q), "query");
    while (tsdb_query_next_series(q, &ls, NULL) == TSDB_OK) {
        series++;
        for (;;) {
            check(tsdb_query_next_batch(q, &ts, &vs, &n), "decode");
            if (n == 0)
                break;
            for (i = 0; i < n; i++) {
                sum += vs[i];
                sum_check += (uint64_t)ts[i] + bits_of(vs[i]);
            }
            count += n;
        }
    }
    tsdb_query_close(q);
    t = now_s() - t0;
    tsdb_matcher_release(&m);
    figure("scan_samples_per_s", (double)count / t, "samples/s");
    figure("scan_series", (double)series, "series");
    figure("scan_samples", (double)count, "samples");
    figure("scan_sum", sum, "(sum of values)");
    if (accepted != d->samples) {
        note("scan_check", "skipped (the storage refused samples)");
        return count == accepted;
    }
    if (count != d->samples || sum_check != d->check || series != d->n ||
        !sums_match(sum, d->sum)) {
        note("scan_check", "FAILED: count, series, sum or checksum differ");
        return false;
    }
    note("scan_check", "ok (count, series, sum and exact checksum match)");
    return true;
}

/* ---- step 5: memory per series ---- */

/* Resident memory in bytes from /proc/self/status: VmRSS, RssAnon. */
static void rss(uint64_t *total, uint64_t *anon)
{
    char line[256];
    unsigned long long kb;
    FILE *f = fopen("/proc/self/status", "r");

    *total = *anon = 0;
    if (f == NULL)
        die("/proc/self/status: %s", strerror(errno));
    while (fgets(line, sizeof(line), f) != NULL) {
        if (sscanf(line, "VmRSS: %llu kB", &kb) == 1)
            *total = kb * 1024;
        else if (sscanf(line, "RssAnon: %llu kB", &kb) == 1)
            *anon = kb * 1024;
    }
    fclose(f);
}

/*
 * Label set number i shaped like series tpl: the same labels, with copy
 * number i / nseries appended to the instance label (or the last one), so
 * names and value lengths follow the file.  Uses buf (BENCH_KEY_MAX).
 */
static size_t make_shaped(const struct series *tpl, size_t copy, char *buf,
                          struct tsdb_label *v)
{
    const char *p = tpl->key;
    size_t i, pick = tpl->nlabels - 1;
    int w;

    for (i = 0; i < tpl->nlabels; i++) {
        v[i].name = p;
        p += strlen(p) + 1;
        v[i].value = p;
        p += strlen(p) + 1;
        if (strcmp(v[i].name, "instance") == 0)
            pick = i;
    }
    if (copy == 0)
        return tpl->nlabels;
    w = snprintf(buf, BENCH_KEY_MAX, "%s-%zu", v[pick].value, copy);
    if (w < 0 || (size_t)w >= BENCH_KEY_MAX)
        die("label value too long");
    v[pick].value = buf;
    return tpl->nlabels;
}

static void memory_per_series(const struct dataset *d, const char *dir,
                              size_t nseries, size_t per, size_t batch)
{
    struct tsdb_label v[EXPFMT_MAX_LABELS];
    struct tsdb_appender *a;
    struct tsdb_commit_result tot = {0};
    struct tsdb_stats st;
    struct tsdb *db;
    uint64_t rss0, anon0, rss1, anon1, ref;
    size_t i, j, n, pending = 0;
    char *buf = xrealloc(NULL, BENCH_KEY_MAX), err[512];
    double t0;

    open_db(dir, nseries + 1, &db);
    a = tsdb_appender_new(db);
    if (a == NULL)
        die("out of memory");
    rss(&rss0, &anon0);
    t0 = now_s();
    for (i = 0; i < nseries; i++) {
        n = make_shaped(&d->s[i % d->n], i / d->n, buf, v);
        if (tsdb_appender_series(a, v, n, &ref, err, sizeof(err)) != TSDB_OK)
            die("series %zu: %s", i, err);
        for (j = 0; j < per; j++) {
            check(tsdb_appender_add(
                      a, ref, (int64_t)(1704067200000 + j * BENCH_MEM_STEP_MS),
                      (double)j),
                  "add");
        }
        pending += per;
        if (pending >= batch) {
            commit(a, &tot);
            pending = 0;
        }
    }
    commit(a, &tot);
    if (tot.accepted != nseries * per)
        die("memory step: %zu of %zu samples accepted", tot.accepted,
            nseries * per);
    figure("mem_create_series_per_s", (double)nseries / (now_s() - t0),
           "series/s");
    rss(&rss1, &anon1);
    tsdb_stats_get(db, &st);
    figure("mem_series", (double)st.series, "series");
    figure("mem_samples_per_series", (double)per, "samples");
    figure("mem_rss_bytes_per_series",
           (double)(rss1 - rss0) / (double)st.series, "bytes/series");
    figure("mem_anon_bytes_per_series",
           (double)(anon1 - anon0) / (double)st.series,
           "bytes/series (heap only)");
    tsdb_appender_free(a);
    check(tsdb_close(db), "close");
    free(buf);
}

/* Writes every series key to path, for the step 5 child. */
static void save_templates(const struct dataset *d, const char *path)
{
    FILE *f = fopen(path, "wb");
    size_t k;

    if (f == NULL)
        die("%s: %s", path, strerror(errno));
    for (k = 0; k < d->n; k++) {
        uint32_t len = (uint32_t)d->s[k].keylen;
        uint32_t nl = (uint32_t)d->s[k].nlabels;

        if (fwrite(&len, 4, 1, f) != 1 || fwrite(&nl, 4, 1, f) != 1 ||
            fwrite(d->s[k].key, len, 1, f) != 1)
            die("%s: write failed", path);
    }
    if (fclose(f) != 0)
        die("%s: %s", path, strerror(errno));
}

/* Reads what save_templates wrote: keys only, no samples. */
static void load_templates(struct dataset *d, const char *path)
{
    FILE *f = fopen(path, "rb");
    uint32_t len, nl;

    if (f == NULL)
        die("%s: %s", path, strerror(errno));
    d->key = xrealloc(NULL, BENCH_KEY_MAX);
    while (fread(&len, 4, 1, f) == 1) {
        if (fread(&nl, 4, 1, f) != 1 || len > BENCH_KEY_MAX || nl == 0 ||
            nl > EXPFMT_MAX_LABELS || fread(d->key, len, 1, f) != 1)
            die("%s: bad template file", path);
        add_series(d, len, 0, nl);
    }
    fclose(f);
    if (d->n == 0)
        die("%s: no templates", path);
}

/*
 * Step 5 runs in a new process (this program again, with --mem-child), so
 * that memory the load freed, and the allocator still holds, cannot be
 * reused by the database and hide its cost.
 */
static bool spawn_memory_child(const struct options *o, const char *tpl,
                               const char *dir)
{
    char series[32], per[32], batch[32];
    pid_t pid;
    int status;

    snprintf(series, sizeof(series), "%zu", o->mem_series);
    snprintf(per, sizeof(per), "%zu", o->mem_samples);
    snprintf(batch, sizeof(batch), "%zu", o->batch);
    fflush(stdout);
    pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        execl("/proc/self/exe", "tsdb-bench", "--mem-child", tpl, "--dir", dir,
              "--series-mem", series, "--mem-samples", per, "--batch", batch,
              (char *)NULL);
        fprintf(stderr, "tsdb-bench: exec: %s\n", strerror(errno));
        _exit(127);
    }
    if (waitpid(pid, &status, 0) < 0)
        die("waitpid: %s", strerror(errno));
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* ---- command line and folders ---- */

static int rm_entry(const char *path, const struct stat *sb, int flag,
                    struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: tsdb-bench FILE [--dir DIR] [--format openmetrics|text]\n"
            "                  [--batch N] [--series-mem N] "
            "[--mem-samples N]\n"
            "                  [--max-samples N] [--keep]\n"
            "FILE: OpenMetrics if it ends in .om, else Prometheus text\n"
            "(--format overrides).  DIR must be new or empty; without it a\n"
            "folder under /tmp is used and removed afterwards (--keep "
            "keeps it).\n");
    exit(2);
}

static size_t parse_count(const char *s, size_t min)
{
    char *end;
    unsigned long long v;

    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || end == s || v < min || v > SIZE_MAX)
        usage();
    return (size_t)v;
}

static void parse_format(const char *v, struct options *o)
{
    if (strcmp(v, "text") == 0)
        o->format = EXPFMT_TEXT;
    else if (strcmp(v, "openmetrics") == 0)
        o->format = EXPFMT_OPENMETRICS;
    else
        usage();
    o->format_set = true;
}

static void parse_args(int argc, char **argv, struct options *o,
                       const char **mem_child)
{
    int i;

    o->batch = BENCH_BATCH_DEFAULT;
    o->mem_series = BENCH_MEM_SERIES;
    o->mem_samples = BENCH_MEM_SAMPLES;
    o->max_samples = BENCH_MAX_SAMPLES;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

        if (strcmp(a, "--keep") == 0) {
            o->keep = true;
            continue;
        }
        if (a[0] != '-') {
            if (o->file != NULL)
                usage();
            o->file = a;
            continue;
        }
        if (v == NULL)
            usage();
        i++;
        if (strcmp(a, "--dir") == 0)
            o->dir = v;
        else if (strcmp(a, "--batch") == 0)
            o->batch = parse_count(v, 1);
        else if (strcmp(a, "--series-mem") == 0)
            o->mem_series = parse_count(v, 0);
        else if (strcmp(a, "--mem-samples") == 0)
            o->mem_samples = parse_count(v, 1);
        else if (strcmp(a, "--max-samples") == 0)
            o->max_samples = parse_count(v, 1);
        else if (strcmp(a, "--mem-child") == 0)
            *mem_child = v;
        else if (strcmp(a, "--format") == 0)
            parse_format(v, o);
        else
            usage();
    }
}

/* Creates dir (or accepts an empty one); false if it holds anything. */
static bool make_empty_dir(const char *dir)
{
    DIR *dp;
    struct dirent *e;
    bool empty = true;

    if (mkdir(dir, 0755) == 0)
        return true;
    if (errno != EEXIST)
        die("%s: %s", dir, strerror(errno));
    dp = opendir(dir);
    if (dp == NULL)
        die("%s: %s", dir, strerror(errno));
    while ((e = readdir(dp)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            empty = false;
    }
    closedir(dp);
    return empty;
}

static int mem_child_main(const struct options *o, const char *tpl)
{
    struct dataset d = {0};

    if (o->dir == NULL)
        usage();
    load_templates(&d, tpl);
    memory_per_series(&d, o->dir, o->mem_series, o->mem_samples, o->batch);
    dataset_release(&d);
    return 0;
}

int main(int argc, char **argv)
{
    struct options o = {0};
    struct dataset d = {0};
    const char *mem_child = NULL;
    char tmpl[] = "/tmp/tsdb-bench.XXXXXX", path[4096], tpl[4096];
    struct tsdb *db;
    int64_t mint, maxt;
    size_t accepted;
    bool ok, own_dir = false;

    parse_args(argc, argv, &o, &mem_child);
    if (mem_child != NULL)
        return mem_child_main(&o, mem_child);
    if (o.file == NULL)
        usage();
    if (!o.format_set) {
        size_t n = strlen(o.file);

        o.format = n > 3 && strcmp(o.file + n - 3, ".om") == 0
                       ? EXPFMT_OPENMETRICS
                       : EXPFMT_TEXT;
    }
    if (o.dir == NULL) {
        o.dir = mkdtemp(tmpl);
        if (o.dir == NULL)
            die("mkdtemp: %s", strerror(errno));
        own_dir = true;
    } else if (!make_empty_dir(o.dir)) {
        die("%s: not empty; give a new or empty folder", o.dir);
    }
    note("input", o.file);
    note("data_dir", o.dir);
    d.max_samples = o.max_samples;
    load(&o, &d, &mint, &maxt);

    snprintf(path, sizeof(path), "%s/append", o.dir);
    open_db(path, d.n, &db);
    accepted = append_all(&d, db, o.batch);
    disk_figures(db, path, accepted);
    check(tsdb_close(db), "close");
    compact_figures(path, accepted);

    /* The scan reads the compacted folder back, from LMDB alone. */
    open_db(path, d.n, &db);
    ok = scan_all(&d, db, mint, maxt, accepted);
    check(tsdb_close(db), "close");

    if (o.mem_series > 0) {
        snprintf(tpl, sizeof(tpl), "%s/templates", o.dir);
        snprintf(path, sizeof(path), "%s/mem", o.dir);
        save_templates(&d, tpl);
        ok = spawn_memory_child(&o, tpl, path) && ok;
    }
    dataset_release(&d);
    if (own_dir && !o.keep)
        nftw(o.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return ok ? 0 : 1;
}
