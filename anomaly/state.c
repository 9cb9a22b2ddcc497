/*
 * A detector's model states in a file, DATA/detectors/NAME.state, read
 * and written by the scheduler and by tsdb-replay --save-state.  Every
 * integer little-endian:
 *   "TSDBDET1", u32 ANOMALY_STATE_VERSION, u32 n + n bytes of the
 *   detector's canonical JSON, u64 state size, i64 last step, u64 next
 *   event id, u64 series; per series: u32 n + n bytes of its labels
 *   (canonical encoding, storage-format.md 6.2), i64 anomalous since,
 *   u8 event open, u64 event id, i64 event start, f64 peak score, i64
 *   peak time, f64 observed, expected, lower, upper, then the model's
 *   state block; last, u32 CRC-32C of every byte before it.
 * A state is read only when its version, definition and size match the
 * detector's and its CRC holds.  The file is written beside, synced and
 * renamed over.
 */
#include "anomaly/state.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tsdb/crc32c.h"
#include "tsdb/error.h"

#define MAGIC "TSDBDET1"

struct wbuf {
    FILE *f;
    uint32_t crc;
    bool ok;
};

static void put(struct wbuf *w, const void *p, size_t n)
{
    w->crc = crc32c(w->crc, p, n);
    w->ok = w->ok && fwrite(p, 1, n, w->f) == n;
}

/* Little-endian on every machine we build for (x86-64, arm64). */
static void put_u64(struct wbuf *w, uint64_t v)
{
    put(w, &v, 8);
}

static void put_u32(struct wbuf *w, uint32_t v)
{
    put(w, &v, 4);
}

static void put_f64(struct wbuf *w, double v)
{
    put(w, &v, 8);
}

static void put_series(struct wbuf *w, const struct run *r,
                       const struct run_series *s)
{
    uint8_t enc[TSDB_MAX_LABELS_BYTES];
    size_t len = 0;
    uint8_t open = s->ev_open;

    if (tsdb_labels_encode(s->labels.v, s->labels.n, enc, sizeof(enc), &len) !=
        TSDB_OK)
        w->ok = false;
    put_u32(w, (uint32_t)len);
    put(w, enc, len);
    put_u64(w, (uint64_t)s->anomalous_since);
    put(w, &open, 1);
    put_u64(w, s->ev.id);
    put_u64(w, (uint64_t)s->ev.start);
    put_f64(w, s->ev.peak_score);
    put_u64(w, (uint64_t)s->ev.peak_t);
    put_f64(w, s->ev.observed);
    put_f64(w, s->ev.expected);
    put_f64(w, s->ev.lower);
    put_f64(w, s->ev.upper);
    put(w, s->state, r->state_size);
}

int anomaly_state_write(const char *dir, const struct run *r)
{
    const struct detector_def *d = r->def;
    char path[4096], tmp[4200];
    struct wbuf w = {NULL, 0, true};
    uint32_t jlen = (uint32_t)strlen(d->json);

    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return TSDB_EIO;
    snprintf(path, sizeof(path), "%s/%s.state", dir, d->name);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    w.f = fopen(tmp, "wb");
    if (w.f == NULL)
        return TSDB_EIO;
    put(&w, MAGIC, 8);
    put_u32(&w, ANOMALY_STATE_VERSION);
    put_u32(&w, jlen);
    put(&w, d->json, jlen);
    put_u64(&w, r->state_size);
    put_u64(&w, (uint64_t)r->last_step);
    put_u64(&w, r->next_event_id);
    put_u64(&w, r->nseries);
    for (size_t i = 0; i < r->nseries; i++)
        put_series(&w, r, &r->series[i]);
    {
        uint32_t crc = w.crc;

        w.ok = w.ok && fwrite(&crc, 1, 4, w.f) == 4;
    }
    w.ok = w.ok && fflush(w.f) == 0 && fsync(fileno(w.f)) == 0;
    w.ok = fclose(w.f) == 0 && w.ok;
    if (!w.ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return TSDB_EIO;
    }
    return TSDB_OK;
}

struct rbuf {
    const uint8_t *p;
    size_t left;
    bool ok;
};

static const uint8_t *take(struct rbuf *b, size_t n)
{
    const uint8_t *p = b->p;

    if (!b->ok || n > b->left) {
        b->ok = false;
        return NULL;
    }
    b->p += n;
    b->left -= n;
    return p;
}

static uint64_t take_u64(struct rbuf *b)
{
    const uint8_t *p = take(b, 8);
    uint64_t v = 0;

    if (p)
        memcpy(&v, p, 8);
    return v;
}

static uint32_t take_u32(struct rbuf *b)
{
    const uint8_t *p = take(b, 4);
    uint32_t v = 0;

    if (p)
        memcpy(&v, p, 4);
    return v;
}

static double take_f64(struct rbuf *b)
{
    uint64_t u = take_u64(b);
    double v;

    memcpy(&v, &u, 8);
    return v;
}

static bool take_series(struct rbuf *b, struct run *r)
{
    uint32_t len = take_u32(b);
    const uint8_t *enc = take(b, len), *state;
    struct tsdb_labels ls;
    struct run_series *s;

    if (enc == NULL || tsdb_labels_decode(enc, len, &ls) != TSDB_OK)
        return false;
    s = run_series_get(r, &ls);
    tsdb_labels_release(&ls);
    if (s == NULL)
        return false;
    s->anomalous_since = (int64_t)take_u64(b);
    s->ev_open = *take(b, 1) != 0;
    s->ev.id = take_u64(b);
    s->ev.start = (int64_t)take_u64(b);
    s->ev.peak_score = take_f64(b);
    s->ev.peak_t = (int64_t)take_u64(b);
    s->ev.observed = take_f64(b);
    s->ev.expected = take_f64(b);
    s->ev.lower = take_f64(b);
    s->ev.upper = take_f64(b);
    s->ev.labels = s->labels;
    state = take(b, r->state_size);
    if (state != NULL)
        memcpy(s->state, state, r->state_size);
    return b->ok;
}

static bool parse_state(struct run *r, const uint8_t *p, size_t n)
{
    struct rbuf b = {p, n - 4, n >= 12};
    const struct detector_def *d = r->def;
    uint32_t crc, jlen;
    const uint8_t *json;
    uint64_t nseries;

    memcpy(&crc, p + n - 4, 4);
    if (!b.ok || crc32c(0, p, n - 4) != crc || memcmp(p, MAGIC, 8) != 0)
        return false;
    take(&b, 8);
    if (take_u32(&b) != ANOMALY_STATE_VERSION)
        return false;
    jlen = take_u32(&b);
    json = take(&b, jlen);
    if (json == NULL || jlen != strlen(d->json) ||
        memcmp(json, d->json, jlen) != 0 || take_u64(&b) != r->state_size)
        return false;
    r->last_step = (int64_t)take_u64(&b);
    r->next_event_id = take_u64(&b);
    nseries = take_u64(&b);
    for (uint64_t i = 0; i < nseries && b.ok; i++)
        if (!take_series(&b, r))
            b.ok = false;
    return b.ok && b.left == 0;
}

static uint8_t *read_all(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    struct stat st;
    uint8_t *p = NULL;

    if (f == NULL)
        return NULL;
    if (fstat(fileno(f), &st) == 0 && st.st_size > 0 &&
        (p = malloc((size_t)st.st_size)) != NULL &&
        fread(p, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
        free(p);
        p = NULL;
    }
    *n = p ? (size_t)st.st_size : 0;
    fclose(f);
    return p;
}

int anomaly_state_read(const char *dir, struct run *r)
{
    char path[4096];
    size_t n;
    uint8_t *p;
    bool ok;

    snprintf(path, sizeof(path), "%s/%s.state", dir, r->def->name);
    p = read_all(path, &n);
    if (p == NULL)
        return TSDB_ENOTFOUND;
    ok = parse_state(r, p, n);
    free(p);
    if (!ok) {
        const struct detector_def *d = r->def;

        run_release(r);
        run_init(r, d);
        return TSDB_EINVAL;
    }
    return TSDB_OK;
}
