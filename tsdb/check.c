/*
 * The consistency checker (see check.h).  Reads only; never repairs.
 */
#include "tsdb/check.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tsdb/bytes.h"
#include "tsdb/chunk.h"
#include "tsdb/db_internal.h"
#include "tsdb/format.h"

static void problem(struct tsdb_check_report *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void problem(struct tsdb_check_report *r, const char *fmt, ...)
{
    va_list ap;

    if (r->problems < TSDB_CHECK_MAX_PROBLEMS) {
        va_start(ap, fmt);
        vsnprintf(r->text[r->problems], sizeof(r->text[0]), fmt, ap);
        va_end(ap);
    }
    r->problems++;
}

static bool series_exists(struct tsdb *db, MDB_txn *txn, uint64_t sid)
{
    const uint8_t *enc;
    size_t len;

    return tsdb_index_labels(&db->index, txn, sid, &enc, &len) == TSDB_OK;
}

/* One entry: checksum, decoding, order inside it and against prev. */
static void check_chunk(struct tsdb_check_report *r, uint64_t sid,
                        const MDB_val *v, int64_t *ts, double *vs,
                        uint64_t *prev_sid, int64_t *prev_maxt)
{
    struct tsdb_chunk c;

    if (tsdb_chunk_parse(sid, v->mv_data, v->mv_size, &c) != TSDB_OK) {
        problem(r,
                "chunk of series %" PRIu64 " fails its header or "
                "checksum",
                sid);
        return;
    }
    if (tsdb_chunk_decode(&c, ts, vs) != TSDB_OK) {
        problem(r, "chunk of series %" PRIu64 " at %" PRId64 " does not decode",
                c.sid, c.mint);
        return;
    }
    for (uint32_t i = 1; i < c.count; i++) {
        if (ts[i] <= ts[i - 1]) {
            problem(r,
                    "chunk of series %" PRIu64 " at %" PRId64
                    " has timestamps out of order at sample %u",
                    c.sid, c.mint, i);
            break;
        }
    }
    if (c.sid == *prev_sid && c.mint <= *prev_maxt)
        problem(r, "chunks of series %" PRIu64 " overlap at %" PRId64, c.sid,
                c.mint);
    *prev_sid = c.sid;
    *prev_maxt = c.maxt;
    r->chunks++;
    r->samples += c.count;
    r->chunk_bytes += v->mv_size;
}

static void check_chunks(struct tsdb *db, MDB_txn *txn,
                         struct tsdb_check_report *r, int64_t *ts, double *vs)
{
    MDB_cursor *cur;
    MDB_val k, v;
    uint64_t prev_sid = 0, known_sid = 0;
    int64_t prev_maxt = INT64_MIN;

    if (mdb_cursor_open(txn, db->chunks, &cur) != MDB_SUCCESS) {
        problem(r, "cannot open the chunks database");
        return;
    }
    for (int op = MDB_FIRST; mdb_cursor_get(cur, &k, &v, op) == 0;
         op = MDB_NEXT) {
        uint64_t sid;
        if (k.mv_size != TSDB_CHUNK_KEY_LEN || v.mv_size < 8 ||
            memcmp((const uint8_t *)k.mv_data + 8, v.mv_data, 8) != 0) {
            problem(r, "chunks key of %zu bytes does not match its entry",
                    k.mv_size);
            continue;
        }
        sid = get_be64(k.mv_data);
        if (sid != known_sid) {
            if (!series_exists(db, txn, sid))
                problem(r,
                        "chunks of series %" PRIu64
                        " whose labels are not in the index",
                        sid);
            known_sid = sid;
        }
        check_chunk(r, sid, &v, ts, vs, &prev_sid, &prev_maxt);
    }
    mdb_cursor_close(cur);
}

/* Postings and hash entries of one series point back at it. */
static void check_series(struct tsdb *db, MDB_txn *txn,
                         struct tsdb_check_report *r, uint64_t sid,
                         const MDB_val *v)
{
    struct tsdb_labels ls;
    uint64_t found;

    if (tsdb_labels_decode(v->mv_data, v->mv_size, &ls) != TSDB_OK) {
        problem(r, "labels of series %" PRIu64 " do not decode", sid);
        return;
    }
    if (tsdb_index_find(&db->index, txn, v->mv_data, v->mv_size, &found) !=
            TSDB_OK ||
        found != sid)
        problem(r, "series %" PRIu64 " is not found by its label hash", sid);
    for (size_t i = 0; i < ls.n; i++) {
        struct tsdb_matcher m;
        struct tsdb_ids ids = {0};
        char err[64];
        bool hit = false;

        if (tsdb_matcher_init(&m, TSDB_MATCH_EQ, ls.v[i].name, ls.v[i].value,
                              err, sizeof(err)) != TSDB_OK)
            continue;
        if (tsdb_index_select(&db->index, txn, &m, 1, &ids) == TSDB_OK)
            for (size_t j = 0; j < ids.n && !hit; j++)
                hit = ids.v[j] == sid;
        if (!hit)
            problem(r, "series %" PRIu64 " missing from postings of %s", sid,
                    ls.v[i].name);
        tsdb_ids_release(&ids);
        tsdb_matcher_release(&m);
    }
    tsdb_labels_release(&ls);
    r->series++;
}

static void check_index(struct tsdb *db, MDB_txn *txn,
                        struct tsdb_check_report *r)
{
    MDB_cursor *cur;
    MDB_val k, v;

    if (mdb_cursor_open(txn, db->index.series, &cur) != MDB_SUCCESS) {
        problem(r, "cannot open the series database");
        return;
    }
    for (int op = MDB_FIRST; mdb_cursor_get(cur, &k, &v, op) == 0;
         op = MDB_NEXT) {
        if (k.mv_size != 8) {
            problem(r, "series key of %zu bytes", k.mv_size);
            continue;
        }
        check_series(db, txn, r, get_be64(k.mv_data), &v);
    }
    mdb_cursor_close(cur);
}

/* Head snapshots decode.  One may overlap its series' stored chunks: a
 * snapshot goes stale when its chunk is flushed after the checkpoint, and
 * loading skips what is stored (store.c, load_snapshot). */
static void check_snapshots(struct tsdb *db, MDB_txn *txn,
                            struct tsdb_check_report *r, int64_t *ts,
                            double *vs)
{
    MDB_cursor *cur;
    MDB_val k, v;

    if (mdb_cursor_open(txn, db->headdb, &cur) != MDB_SUCCESS)
        return;
    for (int op = MDB_FIRST; mdb_cursor_get(cur, &k, &v, op) == 0;
         op = MDB_NEXT) {
        struct tsdb_chunk c;
        uint64_t sid;

        if (k.mv_size != 8) {
            problem(r, "head snapshot with a malformed key");
            continue;
        }
        sid = get_be64(k.mv_data);
        if (tsdb_chunk_parse(sid, v.mv_data, v.mv_size, &c) != TSDB_OK ||
            tsdb_chunk_decode(&c, ts, vs) != TSDB_OK) {
            problem(r, "head snapshot of series %" PRIu64 " is corrupt", sid);
            continue;
        }
        r->snapshots++;
    }
    mdb_cursor_close(cur);
}

int tsdb_check(struct tsdb *db, struct tsdb_check_report *r)
{
    int64_t *ts = malloc(GORILLA_MAX_SAMPLES * sizeof(*ts));
    double *vs = malloc(GORILLA_MAX_SAMPLES * sizeof(*vs));
    MDB_txn *txn = NULL;
    int rc = TSDB_ENOMEM;

    memset(r, 0, sizeof(*r));
    if (!ts || !vs)
        goto out;
    rc = tsdb_mdb_error(mdb_txn_begin(db->env, NULL, MDB_RDONLY, &txn));
    if (rc != TSDB_OK)
        goto out;
    check_chunks(db, txn, r, ts, vs);
    check_index(db, txn, r);
    check_snapshots(db, txn, r, ts, vs);
    mdb_txn_abort(txn);
out:
    free(ts);
    free(vs);
    return rc;
}
