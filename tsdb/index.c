/*
 * The series index on LMDB (storage-format.md sections "series",
 * "series_hash" and "postings").  Sits under the storage engine (db.c),
 * which owns the environment and transactions, and above labels.c (the
 * canonical encoding) and matcher.c (label matching).
 *
 * Invariants, for every series id S with canonical labels E:
 * 1. series[S] = E, and series_hash[hash(E)] holds S.
 * 2. For each label (n, v) of E, postings[n 0x00 v] holds S, and the
 *    all-series key postings[0x00] holds S.
 * 3. No other entry refers to S.  No postings or series_hash key has an
 *    empty id list: LMDB drops a key with its last duplicate.
 * 4. Ids are 8-byte big-endian, so LMDB's duplicate order is numeric order
 *    and every list read from a key is strictly ascending.
 *
 * Selection (tsdb_index_select) never reads every series: each matcher
 * becomes a union of postings lists over the values of its label that
 * satisfy it, found by direct key lookups or by a cursor walk over the
 * keys "name 0x00 ..." only.  Matchers that accept "" select series
 * lacking the label too; they are evaluated as "all series minus those
 * whose value fails the matcher".
 */
#define LOG_MODULE "index"

#include "tsdb/index.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "tsdb/bytes.h"
#include "tsdb/error.h"
#include "tsdb/labels.h"
#include "tsdb/log.h"

#define DB_SERIES      "series"
#define DB_SERIES_HASH "series_hash"
#define DB_POSTINGS    "postings"

/* The longest postings key the label limits allow (see labels.h). */
#define KEY_MAX (TSDB_MAX_LABEL_NAME + 1 + TSDB_MAX_LABEL_VALUE)

/*
 * Once the candidates are this few, the remaining matchers are checked on
 * each candidate's labels (one B-tree lookup each) rather than by walking
 * every value of a label, which can mean 100k keys.
 */
#define FILTER_MAX 2048

/* Label names or values among at most this many ids are found by reading
 * the ids' labels; for more, by walking postings and testing membership. */
#define IDS_READ_MAX 1024

/* The all-series postings key: empty name, empty value.  No label has an
 * empty name, so no real key can equal it. */
static const uint8_t all_key[1] = {0};

int tsdb_mdb_error(int rc)
{
    switch (rc) {
    case MDB_SUCCESS:
        return TSDB_OK;
    case MDB_NOTFOUND:
        return TSDB_ENOTFOUND;
    case MDB_MAP_FULL:
        return TSDB_EMAPFULL;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
        return TSDB_ECORRUPT;
    case ENOMEM:
        return TSDB_ENOMEM;
    case MDB_VERSION_MISMATCH:
        return TSDB_EVERSION;
    default:
        return TSDB_EIO;
    }
}

/* Maps rc and logs the LMDB code, except for the expected MDB_NOTFOUND. */
static int mdb_fail(int rc, const char *what)
{
    if (rc == MDB_NOTFOUND)
        return TSDB_ENOTFOUND;
    if (rc == MDB_MAP_FULL)
        log_warn("map full in %s: %s (lmdb code %d)", what, mdb_strerror(rc),
                 rc);
    else
        log_error("lmdb error in %s: %s (lmdb code %d)", what, mdb_strerror(rc),
                  rc);
    return tsdb_mdb_error(rc);
}

/* ---- id lists ---- */

static int ids_reserve(struct tsdb_ids *ids, size_t extra)
{
    size_t cap;
    uint64_t *v;

    if (ids->cap - ids->n >= extra)
        return TSDB_OK;
    if (extra > SIZE_MAX / sizeof(*v) - ids->n)
        return TSDB_ENOMEM;
    cap = ids->cap < 16 ? 16 : ids->cap;
    while (cap - ids->n < extra)
        cap = cap > SIZE_MAX / sizeof(*v) / 2 ? ids->n + extra : cap * 2;
    v = realloc(ids->v, cap * sizeof(*v));
    if (v == NULL)
        return TSDB_ENOMEM;
    ids->v = v;
    ids->cap = cap;
    return TSDB_OK;
}

/*
 * LIMIT: an id list has no cap of its own; it is bounded by the number of
 * series (tsdb_options.max_series).  A selection over ten million series
 * holds 80 MB of ids.  Behaviour past memory: TSDB_ENOMEM.
 */
int tsdb_ids_push(struct tsdb_ids *ids, uint64_t id)
{
    if (ids_reserve(ids, 1) != TSDB_OK)
        return TSDB_ENOMEM;
    ids->v[ids->n++] = id;
    return TSDB_OK;
}

void tsdb_ids_release(struct tsdb_ids *ids)
{
    free(ids->v);
    ids->v = NULL;
    ids->n = 0;
    ids->cap = 0;
}

static bool ids_sorted(const struct tsdb_ids *ids)
{
    for (size_t i = 1; i < ids->n; i++) {
        if (ids->v[i - 1] > ids->v[i])
            return false;
    }
    return true;
}

/*
 * LSD radix sort, one byte per pass.  A pass whose byte is the same in
 * every id is skipped, so ids below 2^24 cost three passes.
 */
static int radix_sort(uint64_t *v, size_t n)
{
    size_t *hist = calloc(8 * 256, sizeof(*hist)), *h, sum, c;
    uint64_t *tmp = malloc(n * sizeof(*tmp)), *src = v, *dst = tmp, *t;

    if (hist == NULL || tmp == NULL) {
        free(hist);
        free(tmp);
        return TSDB_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        for (int b = 0; b < 8; b++)
            hist[b * 256 + ((v[i] >> (8 * b)) & 0xff)]++;
    }
    for (int b = 0; b < 8; b++) {
        h = hist + b * 256;
        if (h[(v[0] >> (8 * b)) & 0xff] == n)
            continue;
        sum = 0;
        for (int d = 0; d < 256; d++) {
            c = h[d];
            h[d] = sum;
            sum += c;
        }
        for (size_t i = 0; i < n; i++)
            dst[h[(src[i] >> (8 * b)) & 0xff]++] = src[i];
        t = src;
        src = dst;
        dst = t;
    }
    if (src != v)
        memcpy(v, src, n * sizeof(*v));
    free(hist);
    free(tmp);
    return TSDB_OK;
}

/* Sorts ids and drops repeats. */
static int ids_sort_unique(struct tsdb_ids *ids)
{
    size_t k = 0;
    int rc;

    if (ids->n < 2)
        return TSDB_OK;
    if (!ids_sorted(ids)) {
        rc = radix_sort(ids->v, ids->n);
        if (rc != TSDB_OK)
            return rc;
    }
    for (size_t i = 0; i < ids->n; i++) {
        if (k == 0 || ids->v[k - 1] != ids->v[i])
            ids->v[k++] = ids->v[i];
    }
    ids->n = k;
    return TSDB_OK;
}

/* First index >= lo whose id is >= x: exponential then binary search, so
 * stepping through a list costs O(log gap) per step. */
static size_t gallop(const struct tsdb_ids *ids, size_t lo, uint64_t x)
{
    size_t step = 1, hi, mid;

    if (lo >= ids->n || ids->v[lo] >= x)
        return lo;
    while (lo + step < ids->n && ids->v[lo + step] < x) {
        lo += step;
        step *= 2;
    }
    hi = lo + step < ids->n ? lo + step : ids->n;
    lo++;
    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        if (ids->v[mid] < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* a = a AND b, in place.  Walks the shorter list, galloping in the other. */
static void ids_intersect(struct tsdb_ids *a, const struct tsdb_ids *b)
{
    const struct tsdb_ids *small = a->n <= b->n ? a : b;
    const struct tsdb_ids *big = small == a ? b : a;
    size_t j = 0, k = 0;

    /* Writing a->v[k] is safe: k never passes the read position in a. */
    for (size_t i = 0; i < small->n; i++) {
        j = gallop(big, j, small->v[i]);
        if (j == big->n)
            break;
        if (big->v[j] == small->v[i])
            a->v[k++] = small->v[i];
    }
    a->n = k;
}

/* a = a AND NOT b, in place. */
static void ids_subtract(struct tsdb_ids *a, const struct tsdb_ids *b)
{
    size_t j = 0, k = 0;

    for (size_t i = 0; i < a->n; i++) {
        j = gallop(b, j, a->v[i]);
        if (j < b->n && b->v[j] == a->v[i])
            continue;
        a->v[k++] = a->v[i];
    }
    a->n = k;
}

/* ---- postings ---- */

/*
 * Positions on the first page of ids of the key under cursor c, whose
 * first id the caller's positioning call left in *data.  A key with one
 * id has no duplicate page: *data is that id.  MDB_GET_MULTIPLE must not
 * be asked then, since after a cursor move it may answer from the
 * previous key's duplicate page.
 */
static int first_page(MDB_cursor *c, MDB_val *data)
{
    MDB_val key;
    size_t count;
    int rc = mdb_cursor_count(c, &count);

    if (rc != MDB_SUCCESS)
        return rc;
    return count == 1 ? MDB_SUCCESS
                      : mdb_cursor_get(c, &key, data, MDB_GET_MULTIPLE);
}

/* The next page of ids of the key under c; MDB_NOTFOUND after the last.
 * For a key with one id there is no next page. */
static int next_page(MDB_cursor *c, MDB_val *data)
{
    MDB_val key;
    size_t count;
    int rc = mdb_cursor_count(c, &count);

    if (rc != MDB_SUCCESS)
        return rc;
    return count == 1 ? MDB_NOTFOUND
                      : mdb_cursor_get(c, &key, data, MDB_NEXT_MULTIPLE);
}

/* Appends the ids of the key under cursor c (see first_page). */
static int append_dups(MDB_cursor *c, MDB_val *data, struct tsdb_ids *out)
{
    const uint8_t *p;
    size_t n;
    int rc;

    rc = first_page(c, data);
    while (rc == MDB_SUCCESS) {
        if (data->mv_size % 8 != 0) {
            log_error("postings list of %zu bytes is not whole ids",
                      data->mv_size);
            return TSDB_ECORRUPT;
        }
        n = data->mv_size / 8;
        if (ids_reserve(out, n) != TSDB_OK)
            return TSDB_ENOMEM;
        p = data->mv_data;
        for (size_t i = 0; i < n; i++)
            out->v[out->n++] = get_be64(p + 8 * i);
        rc = next_page(c, data);
    }
    return rc == MDB_NOTFOUND ? TSDB_OK : mdb_fail(rc, "postings read");
}

/* Appends the ids under one postings key; none if the key is absent. */
static int read_postings(MDB_cursor *c, const void *key, size_t len,
                         struct tsdb_ids *out)
{
    MDB_val k = {len, (void *)key}, d;
    int rc;

    if (len > KEY_MAX)
        return TSDB_OK;
    rc = mdb_cursor_get(c, &k, &d, MDB_SET_KEY);
    if (rc == MDB_NOTFOUND)
        return TSDB_OK;
    if (rc != MDB_SUCCESS)
        return mdb_fail(rc, "postings lookup");
    return append_dups(c, &d, out);
}

/* Builds "name 0x00 value" into buf (KEY_MAX bytes); 0 if too long to be
 * a key, which means no such key exists. */
static size_t make_key(uint8_t *buf, const char *name, const char *value,
                       size_t vlen)
{
    size_t nlen = strlen(name);

    if (nlen + 1 + vlen > KEY_MAX)
        return 0;
    memcpy(buf, name, nlen);
    buf[nlen] = 0;
    if (vlen > 0)
        memcpy(buf + nlen + 1, value, vlen);
    return nlen + 1 + vlen;
}

typedef int (*value_fn)(void *ctx, MDB_cursor *c, MDB_val *data,
                        const char *value, size_t len);

/*
 * Calls fn for each postings key "name 0x00 prefix...", in key order, with
 * the cursor on that key.  fn may read the key's ids through the cursor.
 * A non-zero return from fn ends the walk and is returned.
 */
static int walk_values(MDB_cursor *c, const char *name, const char *prefix,
                       size_t plen, value_fn fn, void *ctx)
{
    uint8_t buf[KEY_MAX];
    size_t klen = make_key(buf, name, prefix, plen), skip;
    MDB_val k = {klen, buf}, d;
    int rc, r;

    if (klen == 0)
        return TSDB_OK;
    skip = klen - plen;
    for (rc = mdb_cursor_get(c, &k, &d, MDB_SET_RANGE); rc == MDB_SUCCESS;
         rc = mdb_cursor_get(c, &k, &d, MDB_NEXT_NODUP)) {
        if (k.mv_size < klen || memcmp(k.mv_data, buf, klen) != 0)
            return TSDB_OK;
        r = fn(ctx, c, &d, (const char *)k.mv_data + skip, k.mv_size - skip);
        if (r != 0)
            return r;
    }
    return rc == MDB_NOTFOUND ? TSDB_OK : mdb_fail(rc, "postings walk");
}

/* ---- stored label sets ---- */

/* Steps over one label of a stored encoding, checking bounds only:
 * labels.c defines the encoding; the index needs just the fields. */
static int enc_next(const uint8_t **p, const uint8_t *end, const uint8_t **name,
                    size_t *nlen, const uint8_t **value, size_t *vlen)
{
    uint64_t n;

    if (varint_get(p, end, &n) != 0 || n > (uint64_t)(end - *p))
        return TSDB_ECORRUPT;
    *name = *p;
    *nlen = (size_t)n;
    *p += n;
    if (varint_get(p, end, &n) != 0 || n > (uint64_t)(end - *p))
        return TSDB_ECORRUPT;
    *value = *p;
    *vlen = (size_t)n;
    *p += n;
    return TSDB_OK;
}

/* The value of label name in a stored encoding; "" when absent. */
static int enc_value(const uint8_t *enc, size_t len, const char *name,
                     const char **value, size_t *vlen)
{
    const uint8_t *p = enc, *end = enc + len, *n, *v;
    size_t want = strlen(name), nl, vl;

    *value = "";
    *vlen = 0;
    while (p < end) {
        if (enc_next(&p, end, &n, &nl, &v, &vl) != TSDB_OK)
            return TSDB_ECORRUPT;
        if (nl == want && memcmp(n, name, nl) == 0) {
            *value = (const char *)v;
            *vlen = vl;
            break;
        }
    }
    return TSDB_OK;
}

static int get_series(const struct tsdb_index *ix, MDB_txn *txn, uint64_t id,
                      MDB_val *val)
{
    uint8_t key[8];
    MDB_val k = {sizeof(key), key};
    int rc;

    put_be64(key, id);
    rc = mdb_get(txn, ix->series, &k, val);
    return rc == MDB_SUCCESS ? TSDB_OK : mdb_fail(rc, "series lookup");
}

/* ---- open, add, remove, find ---- */

static int open_db(MDB_txn *txn, const char *name, unsigned flags, MDB_dbi *dbi)
{
    int rc = mdb_dbi_open(txn, name, flags, dbi);

    /* Create only when missing, so that a read-only transaction can open
     * databases that exist. */
    if (rc == MDB_NOTFOUND)
        rc = mdb_dbi_open(txn, name, flags | MDB_CREATE, dbi);
    if (rc == EACCES) {
        log_warn("database \"%s\" is missing and the txn is read-only", name);
        return TSDB_ENOTFOUND;
    }
    return rc == MDB_SUCCESS ? TSDB_OK : mdb_fail(rc, name);
}

int tsdb_index_open(struct tsdb_index *ix, MDB_txn *txn)
{
    unsigned dup = MDB_DUPSORT | MDB_DUPFIXED;
    int rc;

    rc = open_db(txn, DB_SERIES, 0, &ix->series);
    if (rc == TSDB_OK)
        rc = open_db(txn, DB_SERIES_HASH, dup, &ix->series_hash);
    if (rc == TSDB_OK)
        rc = open_db(txn, DB_POSTINGS, dup, &ix->postings);
    return rc;
}

/* Puts one (key, id) pair into a DUPSORT database; a pair already there
 * is fine (that is what makes add idempotent). */
static int put_id(MDB_txn *txn, MDB_dbi dbi, const void *key, size_t len,
                  const uint8_t *idb, const char *what)
{
    MDB_val k = {len, (void *)key}, d = {8, (void *)idb};
    int rc = mdb_put(txn, dbi, &k, &d, MDB_NODUPDATA);

    if (rc == MDB_KEYEXIST)
        return TSDB_OK;
    return rc == MDB_SUCCESS ? TSDB_OK : mdb_fail(rc, what);
}

/*
 * Checks that id and enc do not already belong to different series.
 * TSDB_OK with *present set when exactly this series is indexed already.
 */
static int check_identity(const struct tsdb_index *ix, MDB_txn *txn,
                          uint64_t id, const uint8_t *enc, size_t len,
                          bool *present)
{
    uint64_t other;
    MDB_val cur;
    int rc;

    *present = false;
    rc = get_series(ix, txn, id, &cur);
    if (rc == TSDB_OK) {
        if (cur.mv_size == len && memcmp(cur.mv_data, enc, len) == 0) {
            *present = true;
            return TSDB_OK;
        }
        log_warn("series id %llu is taken by other labels",
                 (unsigned long long)id);
        return TSDB_EINVAL;
    }
    if (rc != TSDB_ENOTFOUND)
        return rc;
    rc = tsdb_index_find(ix, txn, enc, len, &other);
    if (rc == TSDB_OK) {
        log_warn("series labels already indexed as id %llu, not %llu",
                 (unsigned long long)other, (unsigned long long)id);
        return TSDB_EINVAL;
    }
    return rc == TSDB_ENOTFOUND ? TSDB_OK : rc;
}

/*
 * Besides the header's codes: TSDB_EINVAL if enc is not a canonical
 * encoding, if id holds other labels, or if these labels hold another id.
 */
int tsdb_index_add(const struct tsdb_index *ix, MDB_txn *txn, uint64_t id,
                   const uint8_t *enc, size_t len)
{
    struct tsdb_labels ls;
    uint8_t idb[8], hash[8], key[KEY_MAX];
    MDB_val k = {8, idb}, d = {len, (void *)enc};
    bool present;
    size_t klen;
    int rc;

    rc = tsdb_labels_decode(enc, len, &ls);
    if (rc != TSDB_OK)
        return rc == TSDB_ECORRUPT ? TSDB_EINVAL : rc;
    rc = check_identity(ix, txn, id, enc, len, &present);
    if (rc != TSDB_OK || present)
        goto out_release;

    put_be64(idb, id);
    put_be64(hash, tsdb_labels_hash(enc, len));
    rc = mdb_put(txn, ix->series, &k, &d, 0);
    if (rc != MDB_SUCCESS) {
        rc = mdb_fail(rc, "series put");
        goto out_release;
    }
    rc = put_id(txn, ix->series_hash, hash, 8, idb, "series_hash put");
    if (rc == TSDB_OK)
        rc = put_id(txn, ix->postings, all_key, 1, idb, "postings put");
    for (size_t i = 0; i < ls.n && rc == TSDB_OK; i++) {
        klen =
            make_key(key, ls.v[i].name, ls.v[i].value, strlen(ls.v[i].value));
        rc = put_id(txn, ix->postings, key, klen, idb, "postings put");
    }

out_release:
    tsdb_labels_release(&ls);
    return rc;
}

/* Deletes one (key, id) pair; a missing pair breaks invariant 2 or 1, so
 * it is logged, but removal goes on to clear what is there. */
static int del_id(MDB_txn *txn, MDB_dbi dbi, const void *key, size_t len,
                  const uint8_t *idb, const char *what)
{
    MDB_val k = {len, (void *)key}, d = {8, (void *)idb};
    int rc = mdb_del(txn, dbi, &k, &d);

    if (rc == MDB_NOTFOUND) {
        log_warn("index entry missing in %s for series id %llu", what,
                 (unsigned long long)get_be64(idb));
        return TSDB_OK;
    }
    return rc == MDB_SUCCESS ? TSDB_OK : mdb_fail(rc, what);
}

int tsdb_index_remove(const struct tsdb_index *ix, MDB_txn *txn, uint64_t id)
{
    struct tsdb_labels ls;
    uint8_t idb[8], hash[8], key[KEY_MAX];
    MDB_val k = {8, idb}, cur;
    size_t klen;
    int rc;

    rc = get_series(ix, txn, id, &cur);
    if (rc != TSDB_OK)
        return rc;

    /* Decode copies the labels: cur is borrowed and the deletes below
     * may move the page it points into. */
    put_be64(idb, id);
    put_be64(hash, tsdb_labels_hash(cur.mv_data, cur.mv_size));
    rc = tsdb_labels_decode(cur.mv_data, cur.mv_size, &ls);
    if (rc == TSDB_ECORRUPT)
        log_error("stored labels of series id %llu are corrupt",
                  (unsigned long long)id);
    if (rc != TSDB_OK)
        return rc;

    for (size_t i = 0; i < ls.n && rc == TSDB_OK; i++) {
        klen =
            make_key(key, ls.v[i].name, ls.v[i].value, strlen(ls.v[i].value));
        rc = del_id(txn, ix->postings, key, klen, idb, "postings");
    }
    if (rc == TSDB_OK)
        rc = del_id(txn, ix->postings, all_key, 1, idb, "postings");
    if (rc == TSDB_OK)
        rc = del_id(txn, ix->series_hash, hash, 8, idb, "series_hash");
    if (rc == TSDB_OK) {
        rc = mdb_del(txn, ix->series, &k, NULL);
        rc = rc == MDB_SUCCESS ? TSDB_OK : mdb_fail(rc, "series delete");
    }
    tsdb_labels_release(&ls);
    return rc;
}

/*
 * Different label sets may share a hash, so every id under the hash is
 * checked against the stored labels.
 */
int tsdb_index_find(const struct tsdb_index *ix, MDB_txn *txn,
                    const uint8_t *enc, size_t len, uint64_t *id)
{
    uint8_t hash[8];
    MDB_val k = {8, hash}, d, cur;
    MDB_cursor *c;
    uint64_t cand;
    int rc;

    put_be64(hash, tsdb_labels_hash(enc, len));
    rc = mdb_cursor_open(txn, ix->series_hash, &c);
    if (rc != MDB_SUCCESS)
        return mdb_fail(rc, "series_hash cursor");
    for (rc = mdb_cursor_get(c, &k, &d, MDB_SET_KEY); rc == MDB_SUCCESS;
         rc = mdb_cursor_get(c, &k, &d, MDB_NEXT_DUP)) {
        if (d.mv_size != 8) {
            rc = TSDB_ECORRUPT;
            goto out_close;
        }
        cand = get_be64(d.mv_data);
        rc = get_series(ix, txn, cand, &cur);
        if (rc != TSDB_OK) {
            /* An id under a hash must have a series (invariant 1). */
            rc = rc == TSDB_ENOTFOUND ? TSDB_ECORRUPT : rc;
            goto out_close;
        }
        if (cur.mv_size == len && memcmp(cur.mv_data, enc, len) == 0) {
            *id = cand;
            rc = TSDB_OK;
            goto out_close;
        }
    }
    rc = rc == MDB_NOTFOUND ? TSDB_ENOTFOUND : mdb_fail(rc, "series_hash");

out_close:
    mdb_cursor_close(c);
    return rc;
}

int tsdb_index_labels(const struct tsdb_index *ix, MDB_txn *txn, uint64_t id,
                      const uint8_t **enc, size_t *len)
{
    MDB_val v;
    int rc = get_series(ix, txn, id, &v);

    if (rc != TSDB_OK)
        return rc;
    *enc = v.mv_data;
    *len = v.mv_size;
    return TSDB_OK;
}

/* ---- selection ---- */

/*
 * How one matcher is evaluated, cheapest first; steps run in this order.
 * A matcher that accepts "" is a negative step: its set is the series
 * whose value fails it, subtracted from the candidates.
 */
enum step_kind {
    STEP_KEYS,   /* one or a few direct postings lookups */
    STEP_PREFIX, /* walk of the values under a literal prefix */
    STEP_WALK,   /* walk of every value of the label */
};

struct step {
    struct tsdb_matcher *m;
    enum step_kind kind;
    bool negative;
    char *lits; /* STEP_KEYS: NUL-separated values, nlits of them */
    size_t nlits;
    char *prefix; /* STEP_PREFIX */
    size_t plen;
};

static bool is_meta(char c)
{
    return c != '\0' && strchr("\\^$.|?*+()[]{}", c) != NULL;
}

/* A byte after '\' that stands for itself: ASCII punctuation. */
static bool is_escapable(char c)
{
    return c > 0x20 && c < 0x7f && !(c >= '0' && c <= '9') &&
           !(c >= 'a' && c <= 'z') && !(c >= 'A' && c <= 'Z');
}

/*
 * If pattern is literals joined by '|' ("a|b\.c"), writes them unescaped
 * and NUL-separated into out (strlen(pattern) + 1 bytes) and returns how
 * many; 0 if the pattern uses any other syntax.
 */
static size_t parse_literals(const char *pat, char *out)
{
    size_t n = 1;

    for (; *pat != '\0'; pat++) {
        if (*pat == '|') {
            *out++ = '\0';
            n++;
        } else if (*pat == '\\' && is_escapable(pat[1])) {
            *out++ = *++pat;
        } else if (is_meta(*pat)) {
            return 0;
        } else {
            *out++ = *pat;
        }
    }
    *out = '\0';
    return n;
}

/*
 * The literal text every match of pattern starts with, unescaped into out
 * (strlen(pattern) + 1 bytes); returns its length.  Conservative: stops at
 * the first syntax or non-ASCII byte, drops a character that a quantifier
 * follows, and gives up on any '|'.
 */
static size_t parse_prefix(const char *pat, char *out)
{
    size_t n = 0;
    const char *p;

    for (p = pat; *p != '\0'; p++) {
        if (*p == '|')
            return 0;
        if (*p == '\\' && p[1] != '\0')
            p++;
    }
    for (p = pat; *p != '\0' && (unsigned char)*p < 0x80; p++) {
        if (*p == '\\' && is_escapable(p[1]))
            out[n++] = *++p;
        else if (!is_meta(*p))
            out[n++] = *p;
        else
            break;
    }
    if (n > 0 && (*p == '?' || *p == '*' || *p == '+' || *p == '{'))
        n--;
    return n;
}

/* Chooses how to evaluate m.  The literal shortcuts apply only when the
 * step's values are those the regex matches. */
static int plan_step(struct step *s, struct tsdb_matcher *m)
{
    bool re_side;

    memset(s, 0, sizeof(*s));
    s->m = m;
    s->negative = m->matches_empty;
    if (m->type == TSDB_MATCH_EQ || m->type == TSDB_MATCH_NEQ) {
        if (m->value[0] == '\0') {
            s->kind = STEP_WALK;
            return TSDB_OK;
        }
        s->kind = STEP_KEYS;
        s->lits = strdup(m->value);
        s->nlits = 1;
        return s->lits == NULL ? TSDB_ENOMEM : TSDB_OK;
    }

    s->kind = STEP_WALK;
    re_side = (m->type == TSDB_MATCH_RE) != s->negative;
    if (!re_side)
        return TSDB_OK;
    s->lits = malloc(strlen(m->value) + 1);
    if (s->lits == NULL)
        return TSDB_ENOMEM;
    s->nlits = parse_literals(m->value, s->lits);
    if (s->nlits > 0) {
        s->kind = STEP_KEYS;
        return TSDB_OK;
    }
    s->prefix = s->lits;
    s->lits = NULL;
    s->plen = parse_prefix(m->value, s->prefix);
    if (s->plen > 0)
        s->kind = STEP_PREFIX;
    return TSDB_OK;
}

struct collect {
    const struct step *s;
    struct tsdb_ids *out;
};

/* Keeps the ids of a value that the step selects. */
static int collect_value(void *ctx, MDB_cursor *c, MDB_val *data,
                         const char *value, size_t len)
{
    struct collect *col = ctx;
    bool ok = tsdb_matcher_matches(col->s->m, value, len);

    if (ok == col->s->negative)
        return TSDB_OK;
    return append_dups(c, data, col->out);
}

/* The step's set: ids of series whose value passes (or, for a negative
 * step, fails) the matcher, sorted. */
static int step_ids(MDB_cursor *c, const struct step *s, struct tsdb_ids *out)
{
    struct collect col = {s, out};
    uint8_t key[KEY_MAX];
    const char *lit = s->lits;
    size_t len, klen;
    int rc = TSDB_OK;

    if (s->kind == STEP_KEYS) {
        for (size_t i = 0; i < s->nlits && rc == TSDB_OK; i++) {
            len = strlen(lit);
            klen = len > 0 ? make_key(key, s->m->name, lit, len) : 0;
            if (klen > 0)
                rc = read_postings(c, key, klen, out);
            lit += len + 1;
        }
    } else {
        rc =
            walk_values(c, s->m->name, s->prefix, s->plen, collect_value, &col);
    }
    return rc == TSDB_OK ? ids_sort_unique(out) : rc;
}

/*
 * Keeps the candidates whose labels satisfy every matcher of steps[0..n),
 * reading each candidate's labels instead of walking postings.  An absent
 * label is tested as "", the rule the postings path follows too.
 */
static int filter_ids(const struct tsdb_index *ix, MDB_txn *txn,
                      const struct step *steps, size_t n, struct tsdb_ids *cand)
{
    const char *value;
    size_t k = 0, vlen, j;
    MDB_val enc;
    int rc;

    for (size_t i = 0; i < cand->n; i++) {
        rc = get_series(ix, txn, cand->v[i], &enc);
        if (rc == TSDB_ENOTFOUND)
            log_error("postings name series id %llu which does not exist",
                      (unsigned long long)cand->v[i]);
        if (rc != TSDB_OK)
            return rc == TSDB_ENOTFOUND ? TSDB_ECORRUPT : rc;
        for (j = 0; j < n; j++) {
            rc = enc_value(enc.mv_data, enc.mv_size, steps[j].m->name, &value,
                           &vlen);
            if (rc != TSDB_OK)
                return rc;
            if (!tsdb_matcher_matches(steps[j].m, value, vlen))
                break;
        }
        if (j == n)
            cand->v[k++] = cand->v[i];
    }
    cand->n = k;
    return TSDB_OK;
}

static int step_order(const struct step *s)
{
    return (int)s->kind + (s->negative ? 3 : 0);
}

/* Insertion sort: stable, and n is a handful of matchers. */
static void sort_steps(struct step *s, size_t n)
{
    struct step t;
    size_t j;

    for (size_t i = 1; i < n; i++) {
        t = s[i];
        for (j = i; j > 0 && step_order(&s[j - 1]) > step_order(&t); j--)
            s[j] = s[j - 1];
        s[j] = t;
    }
}

static bool walks_remain(const struct step *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i].kind != STEP_KEYS)
            return true;
    }
    return false;
}

/* Runs the planned steps; cand ends as the selection. */
static int run_steps(const struct tsdb_index *ix, MDB_txn *txn, MDB_cursor *c,
                     struct step *steps, size_t n, struct tsdb_ids *cand)
{
    struct tsdb_ids set = {0}, t;
    bool have = false;
    int rc = TSDB_OK;

    for (size_t i = 0; i < n && rc == TSDB_OK; i++) {
        if (have && cand->n == 0)
            break;
        if (have && cand->n <= FILTER_MAX && walks_remain(steps + i, n - i)) {
            rc = filter_ids(ix, txn, steps + i, n - i, cand);
            break;
        }
        set.n = 0;
        rc = step_ids(c, &steps[i], &set);
        if (rc == TSDB_OK && !have && steps[i].negative)
            rc = read_postings(c, all_key, sizeof(all_key), cand);
        if (rc != TSDB_OK)
            break;
        if (steps[i].negative) {
            ids_subtract(cand, &set);
        } else if (!have) {
            t = *cand;
            *cand = set;
            set = t;
        } else {
            ids_intersect(cand, &set);
        }
        have = true;
    }
    if (rc == TSDB_OK && !have)
        rc = read_postings(c, all_key, sizeof(all_key), cand);
    tsdb_ids_release(&set);
    return rc;
}

int tsdb_index_select(const struct tsdb_index *ix, MDB_txn *txn,
                      struct tsdb_matcher *ms, size_t n, struct tsdb_ids *out)
{
    struct step *steps = calloc(n > 0 ? n : 1, sizeof(*steps));
    struct tsdb_ids cand = {0};
    MDB_cursor *c = NULL;
    size_t planned = 0;
    int rc;

    tsdb_ids_release(out);
    if (steps == NULL)
        return TSDB_ENOMEM;
    for (rc = TSDB_OK; planned < n && rc == TSDB_OK; planned++)
        rc = plan_step(&steps[planned], &ms[planned]);
    if (rc != TSDB_OK)
        goto out_free;
    sort_steps(steps, n);

    rc = mdb_cursor_open(txn, ix->postings, &c);
    if (rc != MDB_SUCCESS) {
        rc = mdb_fail(rc, "postings cursor");
        goto out_free;
    }
    rc = run_steps(ix, txn, c, steps, n, &cand);
    mdb_cursor_close(c);
    if (rc == TSDB_OK)
        *out = cand;
    else
        tsdb_ids_release(&cand);

out_free:
    for (size_t i = 0; i < planned; i++) {
        free(steps[i].lits);
        free(steps[i].prefix);
    }
    free(steps);
    return rc;
}

/* ---- label names and values ---- */

/* A small sorted set of copied strings, for names or values gathered
 * from series labels. */
struct strset {
    char **v;
    size_t *len;
    size_t n, cap;
};

static int str_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);

    if (c != 0)
        return c;
    return alen < blen ? -1 : alen > blen;
}

static int strset_add(struct strset *set, const char *s, size_t len)
{
    size_t lo = 0, hi = set->n, mid, cap;
    char **v;
    size_t *l;
    int c;

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        c = str_cmp(set->v[mid], set->len[mid], s, len);
        if (c == 0)
            return TSDB_OK;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (set->n == set->cap) {
        cap = set->cap ? set->cap * 2 : 16;
        v = realloc(set->v, cap * sizeof(*v));
        if (v != NULL)
            set->v = v;
        l = realloc(set->len, cap * sizeof(*l));
        if (l != NULL)
            set->len = l;
        if (v == NULL || l == NULL)
            return TSDB_ENOMEM;
        set->cap = cap;
    }
    memmove(set->v + lo + 1, set->v + lo, (set->n - lo) * sizeof(*set->v));
    memmove(set->len + lo + 1, set->len + lo,
            (set->n - lo) * sizeof(*set->len));
    set->v[lo] = malloc(len > 0 ? len : 1);
    if (set->v[lo] == NULL) {
        memmove(set->v + lo, set->v + lo + 1, (set->n - lo) * sizeof(*set->v));
        memmove(set->len + lo, set->len + lo + 1,
                (set->n - lo) * sizeof(*set->len));
        return TSDB_ENOMEM;
    }
    memcpy(set->v[lo], s, len);
    set->len[lo] = len;
    set->n++;
    return TSDB_OK;
}

static void strset_release(struct strset *set)
{
    for (size_t i = 0; i < set->n; i++)
        free(set->v[i]);
    free(set->v);
    free(set->len);
    memset(set, 0, sizeof(*set));
}

/*
 * Gathers the label names of the series in ids (name == NULL), or the
 * values of label name, from their stored labels.
 */
static int gather_from_series(const struct tsdb_index *ix, MDB_txn *txn,
                              const struct tsdb_ids *ids, const char *name,
                              struct strset *set)
{
    const uint8_t *p, *end, *n, *v;
    size_t nl, vl, want = name ? strlen(name) : 0;
    MDB_val enc;
    int rc;

    for (size_t i = 0; i < ids->n; i++) {
        rc = get_series(ix, txn, ids->v[i], &enc);
        if (rc == TSDB_ENOTFOUND)
            continue;
        if (rc != TSDB_OK)
            return rc;
        p = enc.mv_data;
        end = p + enc.mv_size;
        while (p < end) {
            if (enc_next(&p, end, &n, &nl, &v, &vl) != TSDB_OK)
                return TSDB_ECORRUPT;
            if (name == NULL)
                rc = strset_add(set, (const char *)n, nl);
            else if (nl == want && memcmp(n, name, nl) == 0)
                rc = strset_add(set, (const char *)v, vl);
            if (rc != TSDB_OK)
                return rc;
        }
    }
    return TSDB_OK;
}

static int emit_set(const struct strset *set, tsdb_string_fn fn, void *ctx)
{
    int r;

    for (size_t i = 0; i < set->n; i++) {
        r = fn(ctx, set->v[i], set->len[i]);
        if (r != 0)
            return r;
    }
    return TSDB_OK;
}

/* Returned by a walk callback to stop early; not a TSDB_E* code. */
#define WALK_FOUND 1

/*
 * Does the key under the cursor hold any id of ids?  Both lists ascend, so
 * one pass over the postings suffices, galloping in ids; it ends early
 * once ids has nothing left at or above the postings' position.
 */
static int any_in_ids(MDB_cursor *c, MDB_val *data, const struct tsdb_ids *ids,
                      bool *found)
{
    const uint8_t *p;
    size_t j = 0;
    uint64_t x;
    int rc;

    *found = false;
    rc = first_page(c, data);
    while (rc == MDB_SUCCESS) {
        p = data->mv_data;
        for (size_t i = 0; i + 8 <= data->mv_size; i += 8) {
            x = get_be64(p + i);
            j = gallop(ids, j, x);
            if (j == ids->n)
                return TSDB_OK;
            if (ids->v[j] == x) {
                *found = true;
                return TSDB_OK;
            }
        }
        rc = next_page(c, data);
    }
    return rc == MDB_NOTFOUND ? TSDB_OK : mdb_fail(rc, "postings read");
}

struct emit_ctx {
    const struct tsdb_ids *ids;
    tsdb_string_fn fn;
    void *ctx;
};

static int emit_if_in_ids(void *ctx, MDB_cursor *c, MDB_val *data,
                          const char *value, size_t len)
{
    struct emit_ctx *e = ctx;
    bool found = true;
    int rc;

    if (e->ids != NULL) {
        rc = any_in_ids(c, data, e->ids, &found);
        if (rc != TSDB_OK)
            return rc;
    }
    return found ? e->fn(e->ctx, value, len) : TSDB_OK;
}

static int stop_if_in_ids(void *ctx, MDB_cursor *c, MDB_val *data,
                          const char *value, size_t len)
{
    bool found;
    int rc = any_in_ids(c, data, ctx, &found);

    (void)value;
    (void)len;
    return rc != TSDB_OK ? rc : found ? WALK_FOUND : TSDB_OK;
}

/* Each distinct name in postings: one seek per name, past "name 0x01". */
static int walk_names(MDB_cursor *c, const struct tsdb_ids *ids,
                      tsdb_string_fn fn, void *ctx)
{
    char name[KEY_MAX + 1];
    uint8_t start = 1;
    MDB_val k = {1, &start}, d;
    const char *z;
    size_t nlen;
    int rc, r;

    for (rc = mdb_cursor_get(c, &k, &d, MDB_SET_RANGE); rc == MDB_SUCCESS;
         rc = mdb_cursor_get(c, &k, &d, MDB_SET_RANGE)) {
        z = memchr(k.mv_data, 0, k.mv_size);
        if (z == NULL || k.mv_size > KEY_MAX) {
            log_error("postings key of %zu bytes has no name separator",
                      k.mv_size);
            return TSDB_ECORRUPT;
        }
        nlen = (size_t)(z - (const char *)k.mv_data);
        memcpy(name, k.mv_data, nlen);
        name[nlen] = '\0';
        r = ids == NULL
                ? WALK_FOUND
                : walk_values(c, name, "", 0, stop_if_in_ids, (void *)ids);
        if (r == WALK_FOUND)
            r = fn(ctx, name, nlen);
        if (r != 0)
            return r;

        /* Every key of this name sorts before "name 0x01". */
        name[nlen] = 1;
        k.mv_data = name;
        k.mv_size = nlen + 1;
    }
    return rc == MDB_NOTFOUND ? TSDB_OK : mdb_fail(rc, "postings names");
}

static int open_postings(const struct tsdb_index *ix, MDB_txn *txn,
                         MDB_cursor **c)
{
    int rc = mdb_cursor_open(txn, ix->postings, c);

    return rc == MDB_SUCCESS ? TSDB_OK : mdb_fail(rc, "postings cursor");
}

/*
 * For a few ids, reading their label sets beats walking every postings
 * key: the names (name NULL) or the values of name among them, sorted.
 */
static int emit_from_series(const struct tsdb_index *ix, MDB_txn *txn,
                            const struct tsdb_ids *ids, const char *name,
                            tsdb_string_fn fn, void *ctx)
{
    struct strset set = {0};
    int rc = gather_from_series(ix, txn, ids, name, &set);

    if (rc == TSDB_OK)
        rc = emit_set(&set, fn, ctx);
    strset_release(&set);
    return rc;
}

int tsdb_index_label_names(const struct tsdb_index *ix, MDB_txn *txn,
                           const struct tsdb_ids *ids, tsdb_string_fn fn,
                           void *ctx)
{
    MDB_cursor *c;
    int rc;

    if (ids != NULL && ids->n <= IDS_READ_MAX)
        return emit_from_series(ix, txn, ids, NULL, fn, ctx);
    rc = open_postings(ix, txn, &c);
    if (rc != TSDB_OK)
        return rc;
    rc = walk_names(c, ids, fn, ctx);
    mdb_cursor_close(c);
    return rc;
}

/*
 * From the postings walk, fn receives values that point into the map:
 * valid during the call only.
 */
int tsdb_index_label_values(const struct tsdb_index *ix, MDB_txn *txn,
                            const char *name, const struct tsdb_ids *ids,
                            tsdb_string_fn fn, void *ctx)
{
    struct emit_ctx e = {ids, fn, ctx};
    MDB_cursor *c;
    int rc;

    /* The empty name is the all-series key's, not a label's. */
    if (name[0] == '\0')
        return TSDB_OK;
    if (ids != NULL && ids->n <= IDS_READ_MAX)
        return emit_from_series(ix, txn, ids, name, fn, ctx);
    rc = open_postings(ix, txn, &c);
    if (rc != TSDB_OK)
        return rc;
    rc = walk_values(c, name, "", 0, emit_if_in_ids, &e);
    mdb_cursor_close(c);
    return rc;
}
