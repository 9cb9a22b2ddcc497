/*
 * tsdb-replay's CSV mode (see replay_csv.h).  Each file is read whole,
 * parsed into rows that keep their text, run through a fresh model
 * state, and written out; files are independent, so one bad file stops
 * the run with its name rather than leaving half a folder unexplained.
 *
 * Invariants:
 *  1. One output row per valid input row, in input order, with the
 *     timestamp and value text exactly as read.
 *  2. The model is configured per file: the interval, when not given,
 *     is the file's most common positive spacing.
 */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "anomaly/replay_csv.h"
#include "anomaly/season.h"
#include "tsdb/error.h"

/* LIMIT: a CSV file is read whole, at most 1 GiB (row offsets are 32
 * bits).  NAB files are under 1 MiB; a bigger file fails with its name
 * (TSDB_ELIMIT) rather than being read in pieces. */
#define REPLAY_MAX_FILE (1u << 30)
#define REPLAY_PATH_MAX 4096

struct job {
    char *path; /* as opened */
    char *rel;  /* below the folder given, or the file's base name */
    uint64_t size;
};

struct jobs {
    struct job *v;
    size_t n, cap;
    uint64_t bytes;
};

struct row {
    uint32_t start, comma, end; /* the line's text within the buffer */
    int64_t t;
    double v;
};

struct csv {
    char *buf;
    size_t len;
    struct row *rows;
    size_t n;
};

struct progress {
    bool on;
    struct timespec start, last;
    size_t files_total, files_done;
    uint64_t bytes_total, bytes_done, rows_done;
};

void anomaly_replay_opts_init(struct anomaly_replay_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->sensitivity = 3;
    o->log = stderr;
}

/* ---- finding the inputs ---- */

static int jobs_push(struct jobs *j, const char *path, const char *rel,
                     uint64_t size)
{
    if (j->n == j->cap) {
        size_t cap = j->cap ? 2 * j->cap : 64;
        struct job *v = realloc(j->v, cap * sizeof(*v));

        if (!v)
            return TSDB_ENOMEM;
        j->v = v;
        j->cap = cap;
    }
    j->v[j->n].path = strdup(path);
    j->v[j->n].rel = strdup(rel);
    j->v[j->n].size = size;
    if (!j->v[j->n].path || !j->v[j->n].rel) {
        free(j->v[j->n].path);
        free(j->v[j->n].rel);
        return TSDB_ENOMEM;
    }
    j->n++;
    j->bytes += size;
    return TSDB_OK;
}

static void jobs_release(struct jobs *j)
{
    for (size_t i = 0; i < j->n; i++) {
        free(j->v[i].path);
        free(j->v[i].rel);
    }
    free(j->v);
}

static bool is_csv(const char *name)
{
    size_t n = strlen(name);

    return n > 4 && strcmp(name + n - 4, ".csv") == 0;
}

static int walk_entry(struct jobs *j, const char *dir, const char *rel,
                      const char *name, char *err, size_t errlen);

/* Walks dir in name order, so that runs are reproducible. */
static int walk_dir(struct jobs *j, const char *dir, const char *rel, char *err,
                    size_t errlen)
{
    struct dirent **ents;
    int n = scandir(dir, &ents, NULL, alphasort);
    int rc = TSDB_OK;

    if (n < 0) {
        snprintf(err, errlen, "%s: cannot read folder: %s", dir,
                 strerror(errno));
        return TSDB_EIO;
    }
    for (int i = 0; i < n; i++) {
        if (rc == TSDB_OK && ents[i]->d_name[0] != '.')
            rc = walk_entry(j, dir, rel, ents[i]->d_name, err, errlen);
        free(ents[i]);
    }
    free(ents);
    return rc;
}

static int walk_entry(struct jobs *j, const char *dir, const char *rel,
                      const char *name, char *err, size_t errlen)
{
    char path[REPLAY_PATH_MAX], sub[REPLAY_PATH_MAX];
    struct stat sb;

    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >=
            sizeof(path) ||
        (size_t)snprintf(sub, sizeof(sub), "%s%s%s", rel, *rel ? "/" : "",
                         name) >= sizeof(sub)) {
        snprintf(err, errlen, "%s/%s: path too long", dir, name);
        return TSDB_ELIMIT;
    }
    if (stat(path, &sb) != 0)
        return TSDB_OK; /* a dangling link: nothing to replay */
    if (S_ISDIR(sb.st_mode))
        return walk_dir(j, path, sub, err, errlen);
    if (!S_ISREG(sb.st_mode) || !is_csv(name))
        return TSDB_OK;
    return jobs_push(j, path, sub, (uint64_t)sb.st_size);
}

static int collect(struct jobs *j, const char *const *inputs, size_t n,
                   char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        struct stat sb;
        const char *base = strrchr(inputs[i], '/');
        int rc;

        if (stat(inputs[i], &sb) != 0) {
            snprintf(err, errlen, "%s: no such file or folder", inputs[i]);
            return TSDB_ENOTFOUND;
        }
        if (S_ISDIR(sb.st_mode))
            rc = walk_dir(j, inputs[i], "", err, errlen);
        else
            rc = jobs_push(j, inputs[i], base ? base + 1 : inputs[i],
                           (uint64_t)sb.st_size);
        if (rc != TSDB_OK)
            return rc;
    }
    return TSDB_OK;
}

/* ---- reading one CSV ---- */

static bool digits(const char *s, int n, int *out)
{
    int x = 0;

    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        x = 10 * x + (s[i] - '0');
    }
    *out = x;
    return true;
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar. */
static int64_t days_from_civil(int y, int m, int d)
{
    int64_t era, yoe, doy;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    return era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
}

static bool parse_fraction(const char *s, size_t len, int64_t *ms)
{
    int64_t scale = 100;

    *ms = 0;
    if (len == 0)
        return true;
    if (s[0] != '.' || len < 2)
        return false;
    for (size_t i = 1; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        *ms += (s[i] - '0') * scale;
        scale /= 10;
    }
    return true;
}

bool anomaly_replay_parse_time(const char *s, size_t len, int64_t *ms)
{
    int y, mo, d, h, mi, sec;
    int64_t frac;

    if (len > 0 && s[len - 1] == 'Z')
        len--;
    if (len < 19 || s[4] != '-' || s[7] != '-' ||
        (s[10] != ' ' && s[10] != 'T') || s[13] != ':' || s[16] != ':')
        return false;
    if (!digits(s, 4, &y) || !digits(s + 5, 2, &mo) || !digits(s + 8, 2, &d) ||
        !digits(s + 11, 2, &h) || !digits(s + 14, 2, &mi) ||
        !digits(s + 17, 2, &sec) || !parse_fraction(s + 19, len - 19, &frac))
        return false;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return false;
    *ms = ((days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60000 +
          sec * 1000 + frac;
    return true;
}

static int read_whole(const char *path, uint64_t size, struct csv *c, char *err,
                      size_t errlen)
{
    FILE *f;

    if (size >= REPLAY_MAX_FILE) {
        snprintf(err, errlen, "%s: over the 1 GiB a CSV file may have", path);
        return TSDB_ELIMIT;
    }
    c->buf = malloc(size + 1);
    if (!c->buf)
        return TSDB_ENOMEM;
    f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return TSDB_EIO;
    }
    c->len = fread(c->buf, 1, size, f);
    if (ferror(f) || c->len != size) {
        snprintf(err, errlen, "%s: short read", path);
        fclose(f);
        return TSDB_EIO;
    }
    fclose(f);
    c->buf[c->len] = '\0';
    return TSDB_OK;
}

/* Why the row [s, e) is bad, or NULL; fills r when it is good. */
static const char *parse_row(const char *buf, size_t s, size_t e, struct row *r)
{
    const char *comma = memchr(buf + s, ',', e - s);
    char *end;

    if (!comma)
        return "no comma: expected \"timestamp,value\"";
    if (memchr(comma + 1, ',', buf + e - comma - 1))
        return "more than two fields: expected \"timestamp,value\"";
    if (!anomaly_replay_parse_time(buf + s, (size_t)(comma - buf) - s, &r->t))
        return "bad timestamp: expected YYYY-MM-DD HH:MM:SS";
    if (comma + 1 == buf + e)
        return "empty value";
    r->v = strtod(comma + 1, &end);
    if (end != buf + e || isinf(r->v))
        return "value is not a finite number";
    r->start = (uint32_t)s;
    r->comma = (uint32_t)(comma - buf);
    r->end = (uint32_t)e;
    return NULL;
}

static int bad_row(const struct anomaly_replay_opts *o, const char *path,
                   size_t line, const char *why, uint64_t *bad, char *err,
                   size_t errlen)
{
    (*bad)++;
    if (o->strict) {
        snprintf(err, errlen, "%s:%zu: %s", path, line, why);
        return TSDB_EINVAL;
    }
    fprintf(o->log, "tsdb-replay: %s:%zu: %s (row skipped)\n", path, line, why);
    return TSDB_OK;
}

static int parse_lines(const struct anomaly_replay_opts *o, const char *path,
                       struct csv *c, uint64_t *bad, char *err, size_t errlen)
{
    size_t s = 0, line = 0;

    c->rows = calloc(c->len / 4 + 1, sizeof(*c->rows));
    if (!c->rows)
        return TSDB_ENOMEM;
    while (s < c->len) {
        char *nl = memchr(c->buf + s, '\n', c->len - s);
        size_t e = nl ? (size_t)(nl - c->buf) : c->len, next = e + 1;
        const char *why;

        line++;
        if (e > s && c->buf[e - 1] == '\r')
            e--;
        c->buf[e] = '\0';
        why = e > s ? parse_row(c->buf, s, e, &c->rows[c->n]) : NULL;
        if (e > s && !why)
            c->n++;
        else if (why &&
                 !(line == 1 && strncmp(why, "bad timestamp", 13) == 0)) {
            int rc = bad_row(o, path, line, why, bad, err, errlen);

            if (rc != TSDB_OK)
                return rc;
        }
        s = next;
    }
    return TSDB_OK;
}

/* ---- running the model ---- */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

/* The most common positive spacing; ties go to the shorter one. */
static int infer_interval(const struct csv *c, int64_t *out)
{
    int64_t *d = malloc((c->n + 1) * sizeof(*d));
    size_t k = 0, best = 0;

    if (!d)
        return TSDB_ENOMEM;
    for (size_t i = 1; i < c->n; i++)
        if (c->rows[i].t > c->rows[i - 1].t)
            d[k++] = c->rows[i].t - c->rows[i - 1].t;
    qsort(d, k, sizeof(*d), cmp_i64);
    *out = k ? d[0] : 60000;
    for (size_t i = 0, j; i < k; i = j) {
        for (j = i; j < k && d[j] == d[i]; j++)
            ;
        if (j - i > best) {
            best = j - i;
            *out = d[i];
        }
    }
    free(d);
    return TSDB_OK;
}

static int configure(const struct anomaly_replay_opts *o, int64_t interval,
                     struct anomaly_config *cfg, char *err, size_t errlen)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->interval_ms = interval;
    cfg->season_ms = o->season_ms;
    cfg->sensitivity = o->sensitivity;
    cfg->min_deviation = o->min_deviation;
    return o->model->configure(cfg, o->names, o->values, o->nparams, err,
                               errlen);
}

static double cpu_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One pass of the model over the rows; scores into score (may be NULL). */
static void run_pass(const struct anomaly_replay_opts *o,
                     const struct anomaly_config *cfg, void *state,
                     const struct csv *c, double *score, struct plot_series *ps)
{
    struct anomaly_result r;
    struct anomaly_step in = {.learn = true};

    o->model->init(state, cfg);
    for (size_t i = 0; i < c->n; i++) {
        in.t = c->rows[i].t;
        in.v = c->rows[i].v;
        in.phase = anomaly_phase(NULL, cfg, in.t);
        o->model->step(state, cfg, &in, &r);
        if (score)
            score[i] = r.score;
        if (ps)
            plot_series_add(ps, in.t, in.v, r.expected, r.lower, r.upper,
                            r.anomalous);
    }
}

static int run_model(const struct anomaly_replay_opts *o, const char *path,
                     const struct csv *c, double *score, struct plot_series *ps,
                     struct anomaly_replay_stats *st, char *err, size_t errlen)
{
    struct anomaly_config cfg;
    int64_t interval = o->interval_ms;
    char why[256];
    void *state;
    double t0;
    int rc;

    if (!interval && (rc = infer_interval(c, &interval)) != TSDB_OK)
        return rc;
    rc = configure(o, interval, &cfg, why, sizeof(why));
    if (rc != TSDB_OK) {
        snprintf(err, errlen, "%s: %s", path, why);
        return rc;
    }
    state = malloc(o->model->state_size(&cfg));
    if (!state)
        return TSDB_ENOMEM;
    t0 = cpu_now();
    run_pass(o, &cfg, state, c, score, ps);
    for (unsigned k = 0; k < o->time_passes; k++)
        run_pass(o, &cfg, state, c, NULL, NULL);
    st->step_cpu_s += cpu_now() - t0;
    st->steps_timed += (uint64_t)c->n * (1 + o->time_passes);
    free(state);
    return TSDB_OK;
}

/* ---- writing ---- */

/* Creates every folder above path. */
static int make_parents(char *path, char *err, size_t errlen)
{
    for (char *p = strchr(path + 1, '/'); p; p = strchr(p + 1, '/')) {
        *p = '\0';
        if (mkdir(path, 0777) != 0 && errno != EEXIST) {
            snprintf(err, errlen, "%s: cannot create folder: %s", path,
                     strerror(errno));
            *p = '/';
            return TSDB_EIO;
        }
        *p = '/';
    }
    return TSDB_OK;
}

static int write_out(const char *out_dir, const char *rel, const struct csv *c,
                     const double *score, char *err, size_t errlen)
{
    char path[REPLAY_PATH_MAX];
    FILE *f;
    int rc;

    if ((size_t)snprintf(path, sizeof(path), "%s/%s", out_dir, rel) >=
        sizeof(path)) {
        snprintf(err, errlen, "%s/%s: path too long", out_dir, rel);
        return TSDB_ELIMIT;
    }
    if ((rc = make_parents(path, err, errlen)) != TSDB_OK)
        return rc;
    f = fopen(path, "w");
    if (!f) {
        snprintf(err, errlen, "%s: cannot create: %s", path, strerror(errno));
        return TSDB_EIO;
    }
    fputs("timestamp,value,anomaly_score\n", f);
    for (size_t i = 0; i < c->n; i++) {
        const struct row *r = &c->rows[i];

        fprintf(f, "%.*s,%s,%.10g\n", (int)(r->comma - r->start),
                c->buf + r->start, c->buf + r->comma + 1, score[i]);
    }
    if (fclose(f) != 0) {
        snprintf(err, errlen, "%s: write failed: %s", path, strerror(errno));
        return TSDB_EIO;
    }
    return TSDB_OK;
}

static int replay_one(const struct anomaly_replay_opts *o, const struct job *jb,
                      const char *out_dir, struct anomaly_replay_stats *st,
                      char *err, size_t errlen)
{
    struct csv c = {0};
    double *score = NULL;
    struct plot_series *ps = NULL;
    int rc;

    rc = read_whole(jb->path, jb->size, &c, err, errlen);
    if (rc == TSDB_OK)
        rc = parse_lines(o, jb->path, &c, &st->bad_rows, err, errlen);
    if (rc == TSDB_OK && c.n == 0) {
        snprintf(err, errlen, "%s: no rows of \"timestamp,value\"", jb->path);
        rc = TSDB_EINVAL;
    }
    if (rc == TSDB_OK && !(score = malloc(c.n * sizeof(*score))))
        rc = TSDB_ENOMEM;
    if (rc == TSDB_OK && o->plot != NULL && plot_room(o->plot) > 0 &&
        (ps = plot_series_titled(jb->rel)) == NULL)
        rc = TSDB_ENOMEM;
    if (rc == TSDB_OK)
        rc = run_model(o, jb->path, &c, score, ps, st, err, errlen);
    if (rc == TSDB_OK && ps != NULL) {
        rc = plot_add(o->plot, o->model->name, ps);
        ps = NULL;
    }
    plot_series_free(ps);
    if (rc == TSDB_OK)
        rc = write_out(out_dir, jb->rel, &c, score, err, errlen);
    if (rc == TSDB_OK) {
        st->files++;
        st->rows += c.n;
    }
    free(score);
    free(c.rows);
    free(c.buf);
    return rc;
}

/* ---- progress ---- */

static double since(const struct timespec *a, const struct timespec *b)
{
    return (double)(b->tv_sec - a->tv_sec) +
           (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

static void progress_show(struct progress *p, bool last)
{
    struct timespec now;
    double el, rate, left;

    if (!p->on)
        return;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (!last && since(&p->last, &now) < 0.2)
        return;
    p->last = now;
    el = since(&p->start, &now);
    rate = el > 0 ? (double)p->rows_done / el : 0;
    left = p->bytes_done ? el * (double)(p->bytes_total - p->bytes_done) /
                               (double)p->bytes_done
                         : 0;
    fprintf(stderr,
            "\rtsdb-replay: %zu/%zu files, %.2f M samples/s, %.0f s "
            "left   ",
            p->files_done, p->files_total, rate / 1e6, left);
    if (last)
        fputc('\n', stderr);
}

int anomaly_replay_check(const struct anomaly_replay_opts *o, char *err,
                         size_t errlen)
{
    struct anomaly_config cfg;

    return configure(o, o->interval_ms ? o->interval_ms : 60000, &cfg, err,
                     errlen);
}

int anomaly_replay_csv(const struct anomaly_replay_opts *o,
                       const char *const *inputs, size_t n, const char *out_dir,
                       struct anomaly_replay_stats *st, char *err,
                       size_t errlen)
{
    struct jobs j = {0};
    struct progress p = {.on = o->progress};
    int rc;

    memset(st, 0, sizeof(*st));

    /* Refuse bad parameters before reading any file. */
    rc = anomaly_replay_check(o, err, errlen);
    if (rc == TSDB_OK)
        rc = collect(&j, inputs, n, err, errlen);
    p.files_total = j.n;
    p.bytes_total = j.bytes;
    clock_gettime(CLOCK_MONOTONIC, &p.start);
    for (size_t i = 0; rc == TSDB_OK && i < j.n; i++) {
        rc = replay_one(o, &j.v[i], out_dir, st, err, errlen);
        p.files_done++;
        p.bytes_done += j.v[i].size;
        p.rows_done = st->rows;
        progress_show(&p, i + 1 == j.n);
    }
    jobs_release(&j);
    return rc;
}
