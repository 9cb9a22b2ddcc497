/*
 * Offline compaction (see compact.h).  Layer: beside db.c; used by
 * tsdb_close and tools/tsdb-compact.  LMDB's own compacting copy
 * (MDB_CP_COMPACT) only drops free pages and keeps half-full pages as they
 * are, so this rebuilds every database in key order instead.
 */
#define LOG_MODULE "compact"
#include "tsdb/compact.h"

#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tsdb/error.h"
#include "tsdb/log.h"

static uint64_t file_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (uint64_t)sb.st_size : 0;
}

static int sync_path(const char *path, int flags)
{
    int fd = open(path, flags | O_CLOEXEC), rc;

    if (fd < 0)
        return -1;
    rc = fsync(fd);
    close(fd);
    return rc;
}

/* Entries copied per write transaction: bounds the dirty pages a
 * transaction holds in memory. */
#define COPY_BATCH 20000

static int open_env(const char *path, unsigned flags, size_t map, MDB_env **env)
{
    int rc = mdb_env_create(env);

    if (rc == MDB_SUCCESS)
        rc = mdb_env_set_maxdbs(*env, 16);
    if (rc == MDB_SUCCESS && map)
        rc = mdb_env_set_mapsize(*env, map);
    if (rc == MDB_SUCCESS)
        rc = mdb_env_open(*env, path, MDB_NOSUBDIR | flags, 0644);
    return rc;
}

/*
 * Copies database name from src to dst in key order with MDB_APPEND, which
 * makes LMDB fill every page (a plain insert splits pages in the middle).
 */
static int copy_db(MDB_env *src, MDB_env *dst, const char *name)
{
    MDB_txn *rtxn = NULL, *wtxn = NULL;
    MDB_cursor *rc_cur = NULL, *wc = NULL;
    MDB_dbi sdbi, ddbi;
    MDB_val k, v;
    unsigned flags;
    size_t n = 0;
    int rc, op;

    rc = mdb_txn_begin(src, NULL, MDB_RDONLY, &rtxn);
    if (rc == MDB_SUCCESS)
        rc = mdb_dbi_open(rtxn, name, 0, &sdbi);
    if (rc == MDB_SUCCESS)
        rc = mdb_dbi_flags(rtxn, sdbi, &flags);
    if (rc == MDB_SUCCESS)
        rc = mdb_cursor_open(rtxn, sdbi, &rc_cur);
    /* A new key is appended to the tree; a further duplicate of the same
     * key to that key's own list (MDB_APPEND alone refuses it). */
    for (op = MDB_FIRST; rc == MDB_SUCCESS; op = MDB_NEXT) {
        if (!wtxn) {
            rc = mdb_txn_begin(dst, NULL, 0, &wtxn);
            if (rc == MDB_SUCCESS)
                rc = mdb_dbi_open(wtxn, name, flags | MDB_CREATE, &ddbi);
            if (rc == MDB_SUCCESS)
                rc = mdb_cursor_open(wtxn, ddbi, &wc);
            if (rc != MDB_SUCCESS)
                break;
        }
        rc = mdb_cursor_get(rc_cur, &k, &v, op);
        if (rc == MDB_NOTFOUND)
            break;
        if (rc == MDB_SUCCESS) {
            size_t dups = 1;
            if (flags & MDB_DUPSORT)
                rc = mdb_cursor_count(rc_cur, &dups);
            if (rc == MDB_SUCCESS)
                rc = mdb_cursor_put(wc, &k, &v, MDB_APPEND);
            for (size_t d = 1; d < dups && rc == MDB_SUCCESS; d++) {
                rc = mdb_cursor_get(rc_cur, &k, &v, MDB_NEXT_DUP);
                if (rc == MDB_SUCCESS)
                    rc = mdb_cursor_put(wc, &k, &v, MDB_APPENDDUP);
            }
        }
        if (rc == MDB_SUCCESS && ++n % COPY_BATCH == 0) {
            rc = mdb_txn_commit(wtxn);
            wtxn = NULL;
        }
    }
    if (rc == MDB_NOTFOUND)
        rc = MDB_SUCCESS;
    if (wtxn && rc == MDB_SUCCESS)
        rc = mdb_txn_commit(wtxn);
    else if (wtxn)
        mdb_txn_abort(wtxn);
    /* A read-only txn's cursor outlives it unless closed. */
    if (rc_cur)
        mdb_cursor_close(rc_cur);
    if (rtxn)
        mdb_txn_abort(rtxn);
    if (rc != MDB_SUCCESS)
        log_error("copying database '%s' failed: %s", name, mdb_strerror(rc));
    return rc;
}

/* Names of the named databases, from the main database's keys. */
static int list_dbs(MDB_env *env, char names[][32], size_t *n)
{
    MDB_txn *txn;
    MDB_cursor *cur = NULL;
    MDB_dbi main;
    MDB_val k, v;
    int rc;

    *n = 0;
    rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
    if (rc != MDB_SUCCESS)
        return rc;
    rc = mdb_dbi_open(txn, NULL, 0, &main);
    if (rc == MDB_SUCCESS)
        rc = mdb_cursor_open(txn, main, &cur);
    for (int op = MDB_FIRST;
         rc == MDB_SUCCESS && mdb_cursor_get(cur, &k, &v, op) == MDB_SUCCESS;
         op = MDB_NEXT) {
        if (k.mv_size >= 32 || *n >= 16)
            continue;
        memcpy(names[*n], k.mv_data, k.mv_size);
        names[(*n)++][k.mv_size] = '\0';
    }
    if (cur)
        mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    return rc;
}

/* Rebuilds data into tmp with every page full. */
static int copy_compact(const char *data, const char *tmp)
{
    MDB_env *src = NULL, *dst = NULL;
    MDB_envinfo info;
    char names[16][32];
    size_t n = 0;
    int rc;

    unlink(tmp);
    rc = open_env(data, MDB_RDONLY, 0, &src);
    if (rc == MDB_SUCCESS)
        rc = mdb_env_info(src, &info);
    if (rc == MDB_SUCCESS)
        rc = open_env(tmp, MDB_NOSYNC | MDB_NOLOCK, info.me_mapsize, &dst);
    if (rc == MDB_SUCCESS)
        rc = list_dbs(src, names, &n);
    for (size_t i = 0; i < n && rc == MDB_SUCCESS; i++)
        rc = copy_db(src, dst, names[i]);
    if (rc == MDB_SUCCESS)
        rc = mdb_env_sync(dst, 1);
    if (dst)
        mdb_env_close(dst);
    if (src)
        mdb_env_close(src);
    if (rc != MDB_SUCCESS) {
        log_error("compacting copy of '%s' failed: %s", data, mdb_strerror(rc));
        unlink(tmp);
        return rc == ENOENT ? TSDB_ENOTFOUND : TSDB_EIO;
    }
    return TSDB_OK;
}

int tsdb_compact(const char *dir, uint64_t *before, uint64_t *after)
{
    char *lock = NULL, *data = NULL, *tmp = NULL;
    int fd = -1, rc = TSDB_ENOMEM;

    if (asprintf(&lock, "%s/LOCK", dir) < 0 ||
        asprintf(&data, "%s/data.mdb", dir) < 0 ||
        asprintf(&tmp, "%s/data.mdb.compact", dir) < 0)
        goto out;
    fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) < 0) {
        rc = fd < 0 ? TSDB_EIO : TSDB_ELOCKED;
        goto out;
    }
    if (before)
        *before = file_size(data);
    if (after)
        *after = file_size(data);
    rc = copy_compact(data, tmp);
    if (rc != TSDB_OK)
        goto out;

    /* A nearly empty file can come out bigger (each copied batch leaves a
     * few pages free): keep whichever is smaller. */
    if (file_size(tmp) >= file_size(data)) {
        unlink(tmp);
        goto out;
    }

    /* Durable copy first, then the atomic switch, then its name. */
    if (sync_path(tmp, O_RDONLY) < 0 || rename(tmp, data) < 0 ||
        sync_path(dir, O_RDONLY | O_DIRECTORY) < 0) {
        log_error("cannot replace '%s' by its compacted copy: %s", data,
                  strerror(errno));
        unlink(tmp);
        rc = TSDB_EIO;
        goto out;
    }
    if (after)
        *after = file_size(data);
out:
    if (fd >= 0)
        close(fd);
    free(lock);
    free(data);
    free(tmp);
    return rc;
}
