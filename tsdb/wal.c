/*
 * Write-ahead log segments (storage-format.md section "WAL").
 *
 * Invariants:
 * 1. Segment numbers only grow; the open segment has the highest number.
 * 2. Every byte before w->size in the open segment was handed to write(2)
 *    whole; a failed or short write poisons the WAL (w->failed) so that no
 *    later commit is acknowledged on top of a hole.
 * 3. Only the last segment may end in a torn record; replay cuts it.
 */
#define LOG_MODULE "wal"
#include "tsdb/wal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tsdb/bytes.h"
#include "tsdb/crc32c.h"
#include "tsdb/error.h"
#include "tsdb/format.h"
#include "tsdb/log.h"

struct tsdb_wal {
    char *dir;
    int fd;
    uint64_t seq;
    uint64_t size;        /* bytes in the open segment */
    uint64_t closed_size; /* bytes in older segments still on disk */
    size_t segment_max;
    int sync_ms;
    bool dirty;  /* written since the last fdatasync */
    bool failed; /* a write failed: refuse all later writes */
    bool stop;
    pthread_t syncer;
    bool syncer_running;
    pthread_mutex_t lock; /* fd, dirty, stop: shared with the syncer */
    pthread_cond_t wake;
};

/* ---- record buffer ---- */

void tsdb_wal_buf_reset(struct tsdb_wal_buf *b)
{
    b->len = 0;
    b->rec = 0;
}

void tsdb_wal_buf_release(struct tsdb_wal_buf *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

int tsdb_wal_buf_reserve(struct tsdb_wal_buf *b, size_t need)
{
    size_t cap;
    uint8_t *p;

    if (b->len + need <= b->cap)
        return TSDB_OK;
    cap = b->cap ? b->cap : 4096;
    while (cap < b->len + need)
        cap *= 2;
    p = realloc(b->p, cap);
    if (!p)
        return TSDB_ENOMEM;
    b->p = p;
    b->cap = cap;
    return TSDB_OK;
}

int tsdb_wal_buf_begin(struct tsdb_wal_buf *b, uint8_t type)
{
    int rc = tsdb_wal_buf_reserve(b, TSDB_WAL_RECORD_HEADER_LEN);

    if (rc != TSDB_OK)
        return rc;
    b->rec = b->len;
    b->p[b->len] = type;
    b->len += TSDB_WAL_RECORD_HEADER_LEN;
    return TSDB_OK;
}

size_t tsdb_wal_buf_payload(const struct tsdb_wal_buf *b)
{
    return b->len - b->rec - TSDB_WAL_RECORD_HEADER_LEN;
}

void tsdb_wal_buf_end(struct tsdb_wal_buf *b)
{
    uint8_t *h = b->p + b->rec;
    size_t plen = tsdb_wal_buf_payload(b);
    uint32_t crc;

    h[1] = (uint8_t)(plen >> 16);
    h[2] = (uint8_t)(plen >> 8);
    h[3] = (uint8_t)plen;
    crc = crc32c(0, h, 4);
    crc = crc32c(crc, h + TSDB_WAL_RECORD_HEADER_LEN, plen);
    put_be32(h + 4, crc);
}

/* ---- segments ---- */

static char *segment_path(const char *dir, uint64_t seq)
{
    char *path;

    if (asprintf(&path, "%s/%016" PRIx64 ".wal", dir, seq) < 0)
        return NULL;
    return path;
}

static int write_all(int fd, const uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    int rc;

    if (fd < 0)
        return -1;
    rc = fsync(fd);
    close(fd);
    return rc;
}

static int segment_create(struct tsdb_wal *w, uint64_t seq)
{
    uint8_t hdr[TSDB_WAL_HEADER_LEN];
    char *path = segment_path(w->dir, seq);
    int fd;

    if (!path)
        return TSDB_ENOMEM;
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        log_error("cannot create segment '%s': %s", path, strerror(errno));
        free(path);
        return TSDB_EIO;
    }
    memcpy(hdr, TSDB_WAL_MAGIC, 8);
    put_be64(hdr + 8, seq);
    if (write_all(fd, hdr, sizeof(hdr)) < 0 || sync_dir(w->dir) < 0) {
        log_error("cannot start segment '%s': %s", path, strerror(errno));
        close(fd);
        free(path);
        return TSDB_EIO;
    }
    free(path);
    w->fd = fd;
    w->seq = seq;
    w->size = sizeof(hdr);
    return TSDB_OK;
}

static void *syncer_main(void *arg)
{
    struct tsdb_wal *w = arg;
    struct timespec until;

    pthread_mutex_lock(&w->lock);
    while (!w->stop) {
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += w->sync_ms / 1000;
        until.tv_nsec += (long)(w->sync_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&w->wake, &w->lock, &until);
        if (w->dirty && w->fd >= 0) {
            w->dirty = false;
            if (fdatasync(w->fd) < 0)
                log_warn("fdatasync of segment %" PRIu64 " failed: %s", w->seq,
                         strerror(errno));
        }
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

/* Adds up the sizes of the segments already in dir (left from before). */
static uint64_t existing_bytes(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    uint64_t total = 0;

    if (!d)
        return 0;
    while ((e = readdir(d)) != NULL) {
        struct stat st;
        if (strlen(e->d_name) != 20 || !strstr(e->d_name, ".wal"))
            continue;
        if (fstatat(dirfd(d), e->d_name, &st, 0) == 0)
            total += (uint64_t)st.st_size;
    }
    closedir(d);
    return total;
}

int tsdb_wal_open(const char *dir, uint64_t seq, int sync_ms,
                  size_t segment_max, struct tsdb_wal **out)
{
    struct tsdb_wal *w = calloc(1, sizeof(*w));
    int rc;

    if (!w)
        return TSDB_ENOMEM;
    w->dir = strdup(dir);
    w->fd = -1;
    w->sync_ms = sync_ms;
    w->segment_max = segment_max;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->wake, NULL);
    if (!w->dir) {
        rc = TSDB_ENOMEM;
        goto fail;
    }
    if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
        log_error("cannot create folder '%s': %s", dir, strerror(errno));
        rc = TSDB_EIO;
        goto fail;
    }
    w->closed_size = existing_bytes(dir);
    rc = segment_create(w, seq);
    if (rc != TSDB_OK)
        goto fail;
    if (sync_ms > 0) {
        if (pthread_create(&w->syncer, NULL, syncer_main, w) != 0) {
            rc = TSDB_ENOMEM;
            goto fail;
        }
        w->syncer_running = true;
    }
    *out = w;
    return TSDB_OK;

fail:
    tsdb_wal_close(w);
    return rc;
}

int tsdb_wal_rotate(struct tsdb_wal *w, uint64_t *closed)
{
    int old_fd = w->fd, rc;
    uint64_t old_seq = w->seq, old_size = w->size;

    if (w->failed)
        return TSDB_EIO;
    if (fdatasync(old_fd) < 0) {
        log_error("fdatasync of segment %" PRIu64 " failed: %s", old_seq,
                  strerror(errno));
        w->failed = true;
        return TSDB_EIO;
    }
    pthread_mutex_lock(&w->lock);
    rc = segment_create(w, old_seq + 1);
    if (rc == TSDB_OK) {
        close(old_fd);
        w->closed_size += old_size;
        w->dirty = false;
    } else {
        w->fd = old_fd;
        w->failed = true;
    }
    pthread_mutex_unlock(&w->lock);
    if (closed)
        *closed = old_seq;
    return rc;
}

int tsdb_wal_write(struct tsdb_wal *w, const uint8_t *buf, size_t len)
{
    int rc;

    if (w->failed)
        return TSDB_EIO;
    if (w->size > TSDB_WAL_HEADER_LEN && w->size + len > w->segment_max) {
        rc = tsdb_wal_rotate(w, NULL);
        if (rc != TSDB_OK)
            return rc;
    }
    if (write_all(w->fd, buf, len) < 0) {
        log_error("write to segment %" PRIu64 " failed: %s; refusing "
                  "further writes",
                  w->seq, strerror(errno));
        w->failed = true;
        return TSDB_EIO;
    }
    w->size += len;
    if (w->sync_ms == 0)
        return tsdb_wal_sync(w);
    w->dirty = true;
    return TSDB_OK;
}

int tsdb_wal_sync(struct tsdb_wal *w)
{
    if (fdatasync(w->fd) < 0) {
        log_error("fdatasync of segment %" PRIu64 " failed: %s", w->seq,
                  strerror(errno));
        w->failed = true;
        return TSDB_EIO;
    }
    return TSDB_OK;
}

int tsdb_wal_remove_upto(struct tsdb_wal *w, uint64_t upto)
{
    DIR *d = opendir(w->dir);
    struct dirent *e;
    int rc = TSDB_OK;

    if (!d)
        return TSDB_EIO;
    while ((e = readdir(d)) != NULL) {
        uint64_t seq;
        struct stat st;
        char *end;

        if (strlen(e->d_name) != 20 || strcmp(e->d_name + 16, ".wal") != 0)
            continue;
        seq = strtoull(e->d_name, &end, 16);
        if (end != e->d_name + 16 || seq > upto || seq >= w->seq)
            continue;
        if (fstatat(dirfd(d), e->d_name, &st, 0) == 0 &&
            w->closed_size >= (uint64_t)st.st_size)
            w->closed_size -= (uint64_t)st.st_size;
        if (unlinkat(dirfd(d), e->d_name, 0) < 0) {
            log_warn("cannot remove segment '%s': %s", e->d_name,
                     strerror(errno));
            rc = TSDB_EIO;
        }
    }
    closedir(d);
    return rc;
}

uint64_t tsdb_wal_size(struct tsdb_wal *w)
{
    return w->closed_size + w->size;
}

void tsdb_wal_close(struct tsdb_wal *w)
{
    if (!w)
        return;
    if (w->syncer_running) {
        pthread_mutex_lock(&w->lock);
        w->stop = true;
        pthread_cond_signal(&w->wake);
        pthread_mutex_unlock(&w->lock);
        pthread_join(w->syncer, NULL);
    }
    if (w->fd >= 0) {
        if (fdatasync(w->fd) < 0)
            log_warn("fdatasync at close failed: %s", strerror(errno));
        close(w->fd);
    }
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->wake);
    free(w->dir);
    free(w);
}

/* ---- replay ---- */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Segment numbers in dir, ascending, into *seqs (caller frees). */
static int list_segments(const char *dir, uint64_t **seqs, size_t *n)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t cap = 0;

    *seqs = NULL;
    *n = 0;
    if (!d)
        return errno == ENOENT ? TSDB_OK : TSDB_EIO;
    while ((e = readdir(d)) != NULL) {
        char *end;
        uint64_t seq;

        if (strlen(e->d_name) != 20 || strcmp(e->d_name + 16, ".wal") != 0)
            continue;
        seq = strtoull(e->d_name, &end, 16);
        if (end != e->d_name + 16)
            continue;
        if (*n == cap) {
            uint64_t *p;
            cap = cap ? cap * 2 : 16;
            p = realloc(*seqs, cap * sizeof(*p));
            if (!p) {
                closedir(d);
                return TSDB_ENOMEM;
            }
            *seqs = p;
        }
        (*seqs)[(*n)++] = seq;
    }
    closedir(d);
    if (*n > 1)
        qsort(*seqs, *n, sizeof(**seqs), cmp_u64);
    return TSDB_OK;
}

/*
 * Walks the records of one mapped segment.  Returns TSDB_OK with *good set
 * to the length of the valid prefix, or the callback's non-zero result.
 */
static int replay_records(const uint8_t *p, size_t len, uint64_t seq,
                          tsdb_wal_record_fn fn, void *ctx, size_t *good,
                          struct tsdb_wal_replay_stats *st)
{
    size_t off = TSDB_WAL_HEADER_LEN;

    *good = 0;
    if (len < TSDB_WAL_HEADER_LEN || memcmp(p, TSDB_WAL_MAGIC, 8) != 0 ||
        get_be64(p + 8) != seq)
        return TSDB_OK;
    while (off + TSDB_WAL_RECORD_HEADER_LEN <= len) {
        const uint8_t *h = p + off;
        size_t plen = (size_t)h[1] << 16 | (size_t)h[2] << 8 | h[3];
        uint32_t crc;
        int rc;

        if (plen > len - off - TSDB_WAL_RECORD_HEADER_LEN)
            break;
        crc = crc32c(0, h, 4);
        crc = crc32c(crc, h + TSDB_WAL_RECORD_HEADER_LEN, plen);
        if (crc != get_be32(h + 4))
            break;
        rc = fn(ctx, h[0], h + TSDB_WAL_RECORD_HEADER_LEN, plen);
        if (rc != 0)
            return rc;
        st->records++;
        off += TSDB_WAL_RECORD_HEADER_LEN + plen;
    }
    *good = off;
    return TSDB_OK;
}

static int replay_segment(const char *dir, uint64_t seq, bool last,
                          tsdb_wal_record_fn fn, void *ctx,
                          struct tsdb_wal_replay_stats *st)
{
    char *path = segment_path(dir, seq);
    struct stat sb;
    uint8_t *map = NULL;
    size_t good = 0;
    int fd, rc = TSDB_OK;

    if (!path)
        return TSDB_ENOMEM;
    fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &sb) < 0) {
        log_error("cannot open segment '%s': %s", path, strerror(errno));
        rc = TSDB_EIO;
        goto out;
    }
    if (sb.st_size > 0) {
        map = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            map = NULL;
            rc = TSDB_EIO;
            goto out;
        }
    }
    rc = replay_records(map, (size_t)sb.st_size, seq, fn, ctx, &good, st);
    if (rc != TSDB_OK)
        goto out;
    st->segments++;
    st->bytes += good;
    if (good == (size_t)sb.st_size)
        goto out;

    /* A torn tail is what kill -9 during a write leaves: never
     * acknowledged, so cutting it loses nothing that was promised. */
    if (!last) {
        log_error("corrupt record in segment '%s' at offset %zu of %lld", path,
                  good, (long long)sb.st_size);
        rc = TSDB_ECORRUPT;
        goto out;
    }
    log_warn("torn write cut from segment '%s': %lld bytes at offset %zu", path,
             (long long)sb.st_size - (long long)good, good);
    st->torn_bytes += (uint64_t)sb.st_size - good;
    if (ftruncate(fd, (off_t)good) < 0 || fsync(fd) < 0)
        rc = TSDB_EIO;
out:
    if (map)
        munmap(map, (size_t)sb.st_size);
    if (fd >= 0)
        close(fd);
    free(path);
    return rc;
}

int tsdb_wal_replay(const char *dir, tsdb_wal_record_fn fn, void *ctx,
                    struct tsdb_wal_replay_stats *st)
{
    uint64_t *seqs;
    size_t n;
    int rc;

    memset(st, 0, sizeof(*st));
    rc = list_segments(dir, &seqs, &n);
    if (rc != TSDB_OK)
        return rc;
    for (size_t i = 0; i < n && rc == TSDB_OK; i++) {
        rc = replay_segment(dir, seqs[i], i + 1 == n, fn, ctx, st);
        st->last_seq = seqs[i];
    }
    free(seqs);
    return rc;
}
