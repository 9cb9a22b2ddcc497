/*
 * The `tiers` database: blocks of buckets per (tier width, series, block
 * start), and each tier's horizon under a `meta` key (storage-format.md
 * section "tiers").  Reads take the caller's cursor or txn; writes
 * happen inside the caller's write txn, so that buckets and horizon
 * commit together.
 */
#define LOG_MODULE "tier"
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tsdb/bytes.h"
#include "tsdb/db_internal.h"
#include "tsdb/log.h"
#include "tsdb/tier.h"

/* Blocks a write txn of tier_store_expire deletes at most. */
#define EXPIRE_PER_TXN 1000
/* Series an expiry txn looks at, at most. */
#define SCANS_PER_TXN 20000

static size_t horizon_key(char *k, size_t cap, int64_t w)
{
    return (size_t)snprintf(k, cap, "tier_horizon/%" PRId64, w);
}

int tier_horizon_get(struct tsdb *db, MDB_txn *txn, int64_t w, int64_t *h)
{
    char key[64];
    MDB_val k = {horizon_key(key, sizeof(key), w), key}, v;
    int rc = mdb_get(txn, db->meta, &k, &v);

    *h = INT64_MIN;
    if (rc == MDB_NOTFOUND)
        return TSDB_OK;
    if (rc != MDB_SUCCESS)
        return tsdb_mdb_error(rc);
    if (v.mv_size != 8) {
        log_error("meta key '%s' holds %zu bytes, not 8", key, v.mv_size);
        return TSDB_ECORRUPT;
    }
    *h = get_be64_signed(v.mv_data);
    return TSDB_OK;
}

int tier_horizon_put(struct tsdb *db, MDB_txn *txn, int64_t w, int64_t h)
{
    char key[64];
    uint8_t val[8];
    MDB_val k = {horizon_key(key, sizeof(key), w), key}, v = {8, val};

    put_be64_signed(val, h);
    return tsdb_mdb_error(mdb_put(txn, db->meta, &k, &v, 0));
}

/* Is the cursor's entry a block of (w, sid)?  Gives its start. */
static bool block_of(const MDB_val *k, int64_t w, uint64_t sid, int64_t *start)
{
    if (k->mv_size != TIER_KEY_LEN || get_be64(k->mv_data) != (uint64_t)w ||
        get_be64((const uint8_t *)k->mv_data + 8) != sid)
        return false;
    *start = get_be64_signed((const uint8_t *)k->mv_data + 16);
    return true;
}

static int decode_logged(const MDB_val *v, int64_t start, int64_t w,
                         uint64_t sid, struct tsdb_bucket *out, size_t *n)
{
    int rc = tier_block_decode(v->mv_data, v->mv_size, start, w, out, n);

    if (rc != TSDB_OK)
        log_error("corrupt tier block: width %" PRId64 " ms, series %" PRIu64
                  ", block %" PRId64,
                  w, sid, start);
    return rc;
}

/* Room for one more block's buckets at the end of out. */
static int reserve_block(struct tier_buckets *out)
{
    size_t cap = out->cap ? out->cap : 4 * TIER_BLOCK_BUCKETS;
    struct tsdb_bucket *v;

    while (cap < out->n + TIER_BLOCK_BUCKETS)
        cap *= 2;
    if (cap == out->cap)
        return TSDB_OK;
    v = realloc(out->v, cap * sizeof(*v));
    if (v == NULL)
        return TSDB_ENOMEM;
    out->v = v;
    out->cap = cap;
    return TSDB_OK;
}

int tier_store_read(struct tsdb *db, MDB_cursor *cur, int64_t w, uint64_t sid,
                    int64_t mint, int64_t maxt, struct tier_buckets *out)
{
    uint8_t key[TIER_KEY_LEN];
    MDB_val k = {sizeof(key), key}, v;
    int64_t start;
    int mrc;

    (void)db;
    tier_key(key, w, sid, tier_block_start(tier_bucket_end(mint, w), w));
    for (mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
         mrc == MDB_SUCCESS && block_of(&k, w, sid, &start) && start <= maxt;
         mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        struct tsdb_bucket *b;
        size_t n, keep = 0;
        int rc = reserve_block(out);

        if (rc == TSDB_OK)
            rc = decode_logged(&v, start, w, sid, out->v + out->n, &n);
        if (rc != TSDB_OK)
            return rc;
        /* Blocks at the ends of the range hold buckets outside it. */
        b = out->v + out->n;
        for (size_t i = 0; i < n; i++)
            if (b[i].end >= mint && b[i].end <= maxt)
                b[keep++] = b[i];
        out->n += keep;
    }
    if (mrc != MDB_SUCCESS && mrc != MDB_NOTFOUND)
        return tsdb_mdb_error(mrc);
    return TSDB_OK;
}

/*
 * One block: keeps its buckets outside (from, to], puts b[0..n) (which
 * fall in this block) in their place, and writes or deletes the block.
 */
static int replace_block(struct tsdb *db, MDB_txn *txn, int64_t w, uint64_t sid,
                         int64_t start, int64_t from, int64_t to,
                         const struct tsdb_bucket *b, size_t n)
{
    struct tsdb_bucket old[TIER_BLOCK_BUCKETS], merged[TIER_BLOCK_BUCKETS];
    uint8_t key[TIER_KEY_LEN], val[TIER_BLOCK_MAX];
    MDB_val k = {sizeof(key), key}, v;
    size_t nold = 0, m = 0, j = 0, old_len = 0;
    int rc;

    tier_key(key, w, sid, start);
    rc = mdb_get(txn, db->tiers, &k, &v);
    if (rc == MDB_SUCCESS) {
        old_len = v.mv_size;
        rc = decode_logged(&v, start, w, sid, old, &nold);
        if (rc != TSDB_OK)
            nold = 0; /* rebuilt from what this pass brings */
    } else if (rc != MDB_NOTFOUND) {
        return tsdb_mdb_error(rc);
    }
    for (size_t i = 0; i < nold || j < n;) {
        bool take_old = i < nold && (j == n || old[i].end < b[j].end);

        if (take_old) {
            if (old[i].end <= from || old[i].end > to)
                merged[m++] = old[i];
            i++;
        } else {
            if (i < nold && old[i].end == b[j].end)
                i++;
            merged[m++] = b[j++];
        }
    }
    if (m == 0) {
        rc = old_len ? mdb_del(txn, db->tiers, &k, NULL) : MDB_SUCCESS;
        tier_count_bytes(db, w, -(int64_t)old_len);
        return tsdb_mdb_error(rc);
    }
    v.mv_size = tier_block_encode(merged, m, start, w, val);
    v.mv_data = val;
    tier_count_bytes(db, w, (int64_t)v.mv_size - (int64_t)old_len);
    return tsdb_mdb_error(mdb_put(txn, db->tiers, &k, &v, 0));
}

/* The series' first stored block of tier w, or INT64_MAX. */
static int64_t first_block(struct tsdb *db, MDB_txn *txn, int64_t w,
                           uint64_t sid)
{
    uint8_t key[TIER_KEY_LEN];
    MDB_val k = {sizeof(key), key}, v;
    MDB_cursor *cur;
    int64_t start = INT64_MAX;

    if (mdb_cursor_open(txn, db->tiers, &cur) != MDB_SUCCESS)
        return start;
    tier_key(key, w, sid, INT64_MIN);
    if (mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE) != MDB_SUCCESS ||
        !block_of(&k, w, sid, &start))
        start = INT64_MAX;
    mdb_cursor_close(cur);
    return start;
}

int tier_store_replace(struct tsdb *db, MDB_txn *txn, int64_t w, uint64_t sid,
                       int64_t from, int64_t to, const struct tsdb_bucket *b,
                       size_t n)
{
    int64_t span = (int64_t)TIER_BLOCK_BUCKETS * w;
    int64_t first, last = tier_block_start(to, w);
    size_t i = 0;
    int rc = TSDB_OK;

    /* From the beginning of time: from the first block there is. */
    if (from == INT64_MIN) {
        first = first_block(db, txn, w, sid);
        if (n > 0 && tier_block_start(b[0].end, w) < first)
            first = tier_block_start(b[0].end, w);
        if (first == INT64_MAX)
            return TSDB_OK;
    } else {
        first = tier_block_start(from + w, w);
    }
    for (int64_t start = first; start <= last && rc == TSDB_OK; start += span) {
        size_t j = i;

        while (j < n && b[j].end < start + span)
            j++;
        rc = replace_block(db, txn, w, sid, start, from, to, b + i, j - i);
        i = j;
    }
    return rc;
}

bool tier_has_data(struct tsdb *db, MDB_txn *txn, uint64_t sid)
{
    for (size_t i = 0; i < tier_count(db); i++)
        if (first_block(db, txn, tier_width(db, i), sid) != INT64_MAX)
            return true;
    return false;
}

/* One bounded slice of an expiry pass; *pos is where the next one goes
 * on (series id), *done at the end of the tier. */
static int expire_slice(struct tsdb *db, int64_t w, int64_t cutoff,
                        uint64_t *pos, bool *done, size_t *deleted)
{
    uint8_t key[TIER_KEY_LEN];
    MDB_val k = {sizeof(key), key}, v;
    MDB_txn *txn;
    MDB_cursor *cur;
    size_t dels = 0, steps = 0;
    int64_t start;
    int rc, mrc;

    rc = tsdb_mdb_error(mdb_txn_begin(db->env, NULL, 0, &txn));
    if (rc != TSDB_OK)
        return rc;
    rc = tsdb_mdb_error(mdb_cursor_open(txn, db->tiers, &cur));
    *done = true;
    tier_key(key, w, *pos, INT64_MIN);
    for (mrc = rc == TSDB_OK ? mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE)
                             : MDB_NOTFOUND;
         mrc == MDB_SUCCESS && k.mv_size == TIER_KEY_LEN &&
         get_be64(k.mv_data) == (uint64_t)w;
         mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        uint64_t sid = get_be64((const uint8_t *)k.mv_data + 8);

        block_of(&k, w, sid, &start);
        *pos = sid;
        if (dels >= EXPIRE_PER_TXN) {
            *done = false;
            break;
        }
        /* Blocks of a series ascend: the first one kept ends its scan. */
        if (start + (TIER_BLOCK_BUCKETS - 1) * w >= cutoff) {
            if (sid == UINT64_MAX || ++steps >= SCANS_PER_TXN) {
                *pos = sid + (sid != UINT64_MAX);
                *done = sid == UINT64_MAX;
                break;
            }
            tier_key(key, w, sid + 1, INT64_MIN);
            k = (MDB_val){sizeof(key), key};
            mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
            if (mrc != MDB_SUCCESS)
                break;
            mrc = mdb_cursor_get(cur, &k, &v, MDB_PREV);
            if (mrc != MDB_SUCCESS)
                mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
            continue;
        }
        tier_count_bytes(db, w, -(int64_t)v.mv_size);
        rc = tsdb_mdb_error(mdb_cursor_del(cur, 0));
        if (rc != TSDB_OK)
            break;
        dels++;
    }
    if (cur)
        mdb_cursor_close(cur);
    if (rc == TSDB_OK)
        rc = tsdb_mdb_error(mdb_txn_commit(txn));
    else
        mdb_txn_abort(txn);
    if (rc == TSDB_OK)
        *deleted += dels;
    return rc;
}

int tier_store_expire(struct tsdb *db, int64_t w, int64_t cutoff,
                      size_t *deleted)
{
    uint64_t pos = 0;
    bool done = false;
    int rc = TSDB_OK;

    *deleted = 0;
    while (!done && rc == TSDB_OK)
        rc = expire_slice(db, w, cutoff, &pos, &done, deleted);
    return rc;
}
