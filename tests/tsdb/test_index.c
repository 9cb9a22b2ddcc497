/*
 * Tests for tsdb/index.c on a real LMDB environment under /tmp.  The core
 * test adds thousands of random series and checks tsdb_index_select for
 * random matcher sets against a brute-force evaluation over every series;
 * label names and values are checked the same way.  check_invariants()
 * verifies the invariants listed at the top of index.c after each change.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <errno.h>
#include <lmdb.h>

#include "tsdb/bytes.h"
#include "tsdb/error.h"
#include "tsdb/index.h"
#include "tsdb/labels.h"
#include "tsdb/matcher.h"

#define SEED     0x1dec5eedULL
#define NSERIES  5000
#define NQUERIES 1500

static uint64_t rng_state;

static uint64_t rng(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

struct env {
    char dir[64];
    MDB_env *env;
    struct tsdb_index ix;
};

static int env_open(struct env *e, size_t map_size)
{
    MDB_txn *txn;

    strcpy(e->dir, "/tmp/test_index.XXXXXX");
    assert_non_null(mkdtemp(e->dir));
    assert_int_equal(mdb_env_create(&e->env), 0);
    assert_int_equal(mdb_env_set_maxdbs(e->env, 8), 0);
    assert_int_equal(mdb_env_set_mapsize(e->env, map_size), 0);
    assert_int_equal(mdb_env_open(e->env, e->dir, MDB_NOSYNC, 0600), 0);
    assert_int_equal(mdb_txn_begin(e->env, NULL, 0, &txn), 0);
    assert_int_equal(tsdb_index_open(&e->ix, txn), TSDB_OK);
    assert_int_equal(mdb_txn_commit(txn), 0);
    return 0;
}

static void env_close(struct env *e)
{
    char path[128];

    if (e->env != NULL)
        mdb_env_close(e->env);
    snprintf(path, sizeof(path), "%s/data.mdb", e->dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/lock.mdb", e->dir);
    unlink(path);
    rmdir(e->dir);
}

static MDB_txn *begin(struct env *e, unsigned flags)
{
    MDB_txn *txn;

    assert_int_equal(mdb_txn_begin(e->env, NULL, flags, &txn), 0);
    return txn;
}

/* ---- the model: every live series, for brute-force answers ---- */

struct mseries {
    uint64_t id;
    struct tsdb_labels ls;
    uint8_t enc[TSDB_MAX_LABELS_BYTES];
    size_t len;
    bool live;
};

static struct mseries *model;
static size_t nmodel;

static const char *const label_names[] = {
    "__name__", "job", "instance", "path", "status", "zone", "x", "absent",
};
#define NNAMES (sizeof(label_names) / sizeof(label_names[0]))

/* Value k of label i; each label has its own pool size and shape. */
static void pool_value(size_t i, size_t k, char *out, size_t cap)
{
    static const char *const special[] = {
        "a.b",     "axb",         "a|b",        "multi\nline", "caf\xc3\xa9",
        "q\"uote", "back\\slash", "/api/v1/r1", "(x)"};

    switch (i) {
    case 0:
        snprintf(out, cap, "metric_%zu", k % 30);
        break;
    case 1:
        snprintf(out, cap, "job%zu", k % 10);
        break;
    case 2:
        snprintf(out, cap, "host-%zu:9100", k % 500);
        break;
    case 3:
        if (k % 20 == 0)
            snprintf(out, cap, "%s", special[(k / 20) % 9]);
        else if (k % 5 == 0)
            snprintf(out, cap, "multi\nline%zu", k % 13);
        else
            snprintf(out, cap, "/api/v1/r%zu", k % 300);
        break;
    case 4:
        snprintf(out, cap, "%s",
                 (const char *[]){"200", "404", "500", "503"}[k % 4]);
        break;
    case 5:
        snprintf(out, cap, "%s", (const char *[]){"eu", "us", "ap"}[k % 3]);
        break;
    case 6:
        snprintf(out, cap, "1");
        break;
    default:
        snprintf(out, cap, "v");
        break;
    }
}

/* Percent of series that carry label i. */
static const int presence[] = {100, 90, 100, 50, 60, 30, 2, 0};

static void make_series(struct mseries *s, uint64_t id)
{
    char vals[NNAMES][64];
    struct tsdb_label v[NNAMES];
    size_t n = 0;

    for (size_t i = 0; i < NNAMES; i++) {
        if ((int)(rng() % 100) >= presence[i])
            continue;
        pool_value(i, (size_t)rng(), vals[i], sizeof(vals[i]));
        v[n].name = label_names[i];
        v[n].value = vals[i];
        n++;
    }
    assert_int_equal(tsdb_labels_normalize(v, &n, NULL, 0), TSDB_OK);
    assert_int_equal(tsdb_labels_encode(v, n, s->enc, sizeof(s->enc), &s->len),
                     TSDB_OK);
    assert_int_equal(tsdb_labels_decode(s->enc, s->len, &s->ls), TSDB_OK);
    s->id = id;
    s->live = true;
}

static int cmp_mseries(const void *a, const void *b)
{
    const struct mseries *x = a, *y = b;

    return x->id < y->id ? -1 : x->id > y->id;
}

/* Adds n random series (distinct label sets, sparse ids) to env and model. */
static void populate(struct env *e, size_t n)
{
    MDB_txn *txn = begin(e, 0);
    uint64_t id, found;
    const uint8_t *enc;
    size_t len;

    model = calloc(n, sizeof(*model));
    assert_non_null(model);
    nmodel = 0;
    while (nmodel < n) {
        /* Ids spread over many bytes, a few past 2^56. */
        id = rng() % 1000 == 0 ? rng() : rng() % (UINT64_C(1) << 40);
        if (tsdb_index_labels(&e->ix, txn, id, &enc, &len) == TSDB_OK)
            continue;
        make_series(&model[nmodel], id);
        if (tsdb_index_find(&e->ix, txn, model[nmodel].enc, model[nmodel].len,
                            &found) == TSDB_OK) {
            tsdb_labels_release(&model[nmodel].ls);
            continue;
        }
        assert_int_equal(tsdb_index_add(&e->ix, txn, id, model[nmodel].enc,
                                        model[nmodel].len),
                         TSDB_OK);
        nmodel++;
    }
    assert_int_equal(mdb_txn_commit(txn), 0);
    qsort(model, nmodel, sizeof(*model), cmp_mseries);
}

static void model_free(void)
{
    for (size_t i = 0; i < nmodel; i++)
        tsdb_labels_release(&model[i].ls);
    free(model);
    model = NULL;
    nmodel = 0;
}

static bool model_matches(const struct mseries *s, struct tsdb_matcher *ms,
                          size_t n)
{
    const char *v;

    for (size_t i = 0; i < n; i++) {
        v = tsdb_labels_get(&s->ls, ms[i].name);
        if (v == NULL)
            v = "";
        if (!tsdb_matcher_matches(&ms[i], v, strlen(v)))
            return false;
    }
    return true;
}

/* ---- invariants of index.c, checked by reading every database ---- */

static bool has_pair(MDB_txn *txn, MDB_dbi dbi, const void *key, size_t klen,
                     uint64_t id)
{
    uint8_t idb[8];
    MDB_val k = {klen, (void *)key}, d = {8, idb};
    MDB_cursor *c;
    int rc;

    put_be64(idb, id);
    assert_int_equal(mdb_cursor_open(txn, dbi, &c), 0);
    rc = mdb_cursor_get(c, &k, &d, MDB_GET_BOTH);
    mdb_cursor_close(c);
    return rc == 0;
}

static size_t db_entries(MDB_txn *txn, MDB_dbi dbi)
{
    MDB_stat st;

    assert_int_equal(mdb_stat(txn, dbi, &st), 0);
    return st.ms_entries;
}

static void check_invariants(struct env *e)
{
    MDB_txn *txn = begin(e, MDB_RDONLY);
    size_t live = 0, pairs = 0, klen;
    uint8_t key[600], hash[8];
    const uint8_t *enc;
    size_t len;

    for (size_t i = 0; i < nmodel; i++) {
        struct mseries *s = &model[i];

        if (!s->live) {
            assert_int_equal(tsdb_index_labels(&e->ix, txn, s->id, &enc, &len),
                             TSDB_ENOTFOUND);
            continue;
        }
        live++;
        assert_int_equal(tsdb_index_labels(&e->ix, txn, s->id, &enc, &len),
                         TSDB_OK);
        assert_int_equal(len, s->len);
        assert_memory_equal(enc, s->enc, len);
        put_be64(hash, tsdb_labels_hash(s->enc, s->len));
        assert_true(has_pair(txn, e->ix.series_hash, hash, 8, s->id));
        assert_true(has_pair(txn, e->ix.postings, "", 1, s->id));
        for (size_t j = 0; j < s->ls.n; j++) {
            klen = strlen(s->ls.v[j].name);
            memcpy(key, s->ls.v[j].name, klen + 1);
            memcpy(key + klen + 1, s->ls.v[j].value, strlen(s->ls.v[j].value));
            klen += 1 + strlen(s->ls.v[j].value);
            assert_true(has_pair(txn, e->ix.postings, key, klen, s->id));
        }
        pairs += s->ls.n + 1;
    }
    /* With every expected pair present, equal counts mean nothing else
     * is there (invariant 3). */
    assert_int_equal(db_entries(txn, e->ix.series), live);
    assert_int_equal(db_entries(txn, e->ix.series_hash), live);
    assert_int_equal(db_entries(txn, e->ix.postings), pairs);
    mdb_txn_abort(txn);
}

/* ---- random matchers ---- */

static void re_escape(const char *s, char *out)
{
    for (; *s; s++) {
        if (strchr("\\^$.|?*+()[]{}", *s))
            *out++ = '\\';
        *out++ = *s;
    }
    *out = '\0';
}

static void random_pattern(size_t li, char *out, size_t cap)
{
    static const char *const fixed[] = {
        ".*",
        ".+",
        "",
        "x|",
        "[0-9]+",
        "5..",
        "(?i)EU",
        ".*\n.*",
        "multi.*",
        "host-1.*",
        "metric_(1|2)",
        "/api/v1/r1[0-9]",
        ".*\xc3\xa9.*",
        "a.b",
        "job[0-4]",
        "e.|u.",
        "metric_1.*|up",
        "host-2\\d:9100",
        "multi\nline1.*",
        "job1?",
        "(?s)multi.*",
        "metric_12*",
        "job12?",
        "/api/v1/r12{0,2}",
        "/api/v1/r1\\d",
        "a\\|b|a\\.b",
    };
    char v[3][64], esc[3][140];
    int kind = (int)(rng() % 6);

    for (int i = 0; i < 3; i++) {
        pool_value(li, (size_t)rng(), v[i], sizeof(v[i]));
        re_escape(v[i], esc[i]);
    }
    switch (kind) {
    case 0:
        snprintf(out, cap, "%s", esc[0]);
        break;
    case 1:
        snprintf(out, cap, "%s|%s|%s", esc[0], esc[1], esc[2]);
        break;
    case 2:
        /* Half of the value, cut neither in an escape nor in UTF-8. */
        esc[0][strlen(esc[0]) / 2] = '\0';
        while (strlen(esc[0]) > 0 &&
               ((unsigned char)esc[0][strlen(esc[0]) - 1] >= 0x80 ||
                esc[0][strlen(esc[0]) - 1] == '\\'))
            esc[0][strlen(esc[0]) - 1] = '\0';
        snprintf(out, cap, "%s.*", esc[0]);
        break;
    case 3:
        snprintf(out, cap, "%s|", esc[0]);
        break;
    default:
        snprintf(out, cap, "%s",
                 fixed[rng() % (sizeof(fixed) / sizeof(fixed[0]))]);
        break;
    }
}

static void random_matcher(struct tsdb_matcher *m)
{
    enum tsdb_match_type type = (enum tsdb_match_type)(rng() % 4);
    size_t li = rng() % NNAMES;
    char value[512], err[256];
    int r = (int)(rng() % 10);

    if (type == TSDB_MATCH_EQ || type == TSDB_MATCH_NEQ) {
        if (r < 6)
            pool_value(li, (size_t)rng(), value, sizeof(value));
        else if (r < 8)
            strcpy(value, "");
        else
            strcpy(value, "nonexistent");
    } else {
        random_pattern(li, value, sizeof(value));
    }
    assert_int_equal(
        tsdb_matcher_init(m, type, label_names[li], value, err, sizeof(err)),
        TSDB_OK);
}

static void expect_select(struct env *e, MDB_txn *txn, struct tsdb_matcher *ms,
                          size_t n)
{
    struct tsdb_ids got = {0};
    size_t k = 0;

    assert_int_equal(tsdb_index_select(&e->ix, txn, ms, n, &got), TSDB_OK);
    for (size_t i = 0; i < nmodel; i++) {
        if (!model[i].live || !model_matches(&model[i], ms, n))
            continue;
        if (k >= got.n || got.v[k] != model[i].id) {
            fprintf(stderr, "select mismatch at %zu (n=%zu):", k, n);
            for (size_t j = 0; j < n; j++)
                fprintf(stderr, " {%s %d \"%s\"}", ms[j].name, ms[j].type,
                        ms[j].value);
            fprintf(stderr, "\n");
            fail();
        }
        k++;
    }
    assert_int_equal(got.n, k);
    tsdb_ids_release(&got);
}

static void run_random_queries(struct env *e, int count)
{
    struct tsdb_matcher ms[4];
    MDB_txn *txn = begin(e, MDB_RDONLY);
    size_t n;

    for (int q = 0; q < count; q++) {
        n = rng() % 4;
        for (size_t i = 0; i < n; i++)
            random_matcher(&ms[i]);
        expect_select(e, txn, ms, n);
        for (size_t i = 0; i < n; i++)
            tsdb_matcher_release(&ms[i]);
    }
    mdb_txn_abort(txn);
}

/* ---- label names and values ---- */

struct strlist {
    char *v[4096];
    size_t len[4096];
    size_t n;
    int stop_after; /* return 7 after this many; 0 never */
};

static int collect(void *ctx, const char *s, size_t len)
{
    struct strlist *l = ctx;

    assert_true(l->n < 4096);
    l->v[l->n] = malloc(len + 1);
    memcpy(l->v[l->n], s, len);
    l->v[l->n][len] = '\0';
    l->len[l->n++] = len;
    return l->stop_after != 0 && (int)l->n == l->stop_after ? 7 : 0;
}

static void strlist_release(struct strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    l->n = 0;
}

static int cmp_bytes(const char *a, size_t al, const char *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);

    return c != 0 ? c : (al > bl) - (al < bl);
}

/* Adds s to the sorted, duplicate-free list l. */
static void strlist_add(struct strlist *l, const char *s)
{
    size_t i, len = strlen(s);
    int c = 1;

    for (i = 0; i < l->n; i++) {
        c = cmp_bytes(l->v[i], l->len[i], s, len);
        if (c >= 0)
            break;
    }
    if (i < l->n && c == 0)
        return;
    memmove(l->v + i + 1, l->v + i, (l->n - i) * sizeof(l->v[0]));
    memmove(l->len + i + 1, l->len + i, (l->n - i) * sizeof(l->len[0]));
    l->v[i] = strdup(s);
    l->len[i] = len;
    l->n++;
}

static bool in_ids(const struct tsdb_ids *ids, uint64_t id)
{
    for (size_t i = 0; ids != NULL && i < ids->n; i++) {
        if (ids->v[i] == id)
            return true;
    }
    return ids == NULL;
}

static void expect_lists_equal(struct strlist *got, struct strlist *want)
{
    assert_int_equal(got->n, want->n);
    for (size_t i = 0; i < got->n; i++) {
        assert_int_equal(got->len[i], want->len[i]);
        assert_memory_equal(got->v[i], want->v[i], got->len[i]);
    }
}

static void expect_names_values(struct env *e, MDB_txn *txn,
                                const struct tsdb_ids *ids)
{
    static struct strlist got, want;

    for (size_t i = 0; i < nmodel; i++) {
        if (model[i].live && in_ids(ids, model[i].id)) {
            for (size_t j = 0; j < model[i].ls.n; j++)
                strlist_add(&want, model[i].ls.v[j].name);
        }
    }
    assert_int_equal(tsdb_index_label_names(&e->ix, txn, ids, collect, &got),
                     TSDB_OK);
    expect_lists_equal(&got, &want);
    strlist_release(&got);
    strlist_release(&want);

    for (size_t li = 0; li < NNAMES; li++) {
        for (size_t i = 0; i < nmodel; i++) {
            const char *v = tsdb_labels_get(&model[i].ls, label_names[li]);

            if (model[i].live && v != NULL && in_ids(ids, model[i].id))
                strlist_add(&want, v);
        }
        assert_int_equal(tsdb_index_label_values(&e->ix, txn, label_names[li],
                                                 ids, collect, &got),
                         TSDB_OK);
        expect_lists_equal(&got, &want);
        strlist_release(&got);
        strlist_release(&want);
    }
}

/* Random subsets of live ids, small (read from series) and large (tested
 * against postings), plus ids that name no series. */
static void check_names_values_random(struct env *e)
{
    static const size_t sizes[] = {0, 1, 5, 300, 1024, 1025, 3000};
    MDB_txn *txn = begin(e, MDB_RDONLY);
    struct tsdb_ids ids = {0};

    expect_names_values(e, txn, NULL);
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        ids.n = 0;
        for (size_t i = 0; i < nmodel && ids.n < sizes[s]; i++) {
            if (model[i].live && rng() % 2 == 0)
                assert_int_equal(tsdb_ids_push(&ids, model[i].id), 0);
        }
        expect_names_values(e, txn, &ids);
    }
    tsdb_ids_release(&ids);
    mdb_txn_abort(txn);
}

/* ---- tests ---- */

static void test_index_select_matches_brute_force(void **state)
{
    struct env e;

    (void)state;
    rng_state = SEED;
    printf("test_index_select_matches_brute_force seed %#llx\n",
           (unsigned long long)SEED);
    env_open(&e, 256u << 20);
    populate(&e, NSERIES);
    check_invariants(&e);
    run_random_queries(&e, NQUERIES);
    model_free();
    env_close(&e);
}

static void test_index_label_names_and_values(void **state)
{
    struct env e;

    (void)state;
    rng_state = SEED + 1;
    printf("test_index_label_names_and_values seed %#llx\n",
           (unsigned long long)(SEED + 1));
    env_open(&e, 256u << 20);
    populate(&e, 3000);
    check_names_values_random(&e);
    model_free();
    env_close(&e);
}

static void test_index_remove(void **state)
{
    MDB_txn *txn;
    struct env e;
    size_t removed = 0;

    (void)state;
    rng_state = SEED + 2;
    printf("test_index_remove seed %#llx\n", (unsigned long long)(SEED + 2));
    env_open(&e, 256u << 20);
    populate(&e, 3000);

    txn = begin(&e, 0);
    for (size_t i = 0; i < nmodel; i++) {
        if (rng() % 10 < 4 || tsdb_labels_get(&model[i].ls, "x") != NULL) {
            assert_int_equal(tsdb_index_remove(&e.ix, txn, model[i].id),
                             TSDB_OK);
            assert_int_equal(tsdb_index_remove(&e.ix, txn, model[i].id),
                             TSDB_ENOTFOUND);
            model[i].live = false;
            removed++;
        }
    }
    assert_int_equal(mdb_txn_commit(txn), 0);
    assert_true(removed > 1000);

    /* Label x is gone with its last series, key and name both. */
    check_invariants(&e);
    check_names_values_random(&e);
    run_random_queries(&e, 400);
    model_free();
    env_close(&e);
}

static int count_fn(void *ctx, const char *s, size_t len)
{
    (void)s;
    (void)len;
    ++*(int *)ctx;
    return 0;
}

static void select_one(struct env *e, MDB_txn *txn, enum tsdb_match_type t,
                       const char *name, const char *value,
                       const uint64_t *want, size_t nwant)
{
    struct tsdb_matcher m;
    struct tsdb_ids got = {0};

    assert_int_equal(tsdb_matcher_init(&m, t, name, value, NULL, 0), 0);
    assert_int_equal(tsdb_index_select(&e->ix, txn, &m, 1, &got), TSDB_OK);
    assert_int_equal(got.n, nwant);
    for (size_t i = 0; i < nwant; i++)
        assert_int_equal(got.v[i], want[i]);
    tsdb_ids_release(&got);
    tsdb_matcher_release(&m);
}

static void add_series(struct env *e, MDB_txn *txn, uint64_t id,
                       struct tsdb_label *v, size_t n)
{
    uint8_t enc[TSDB_MAX_LABELS_BYTES];
    size_t len;

    assert_int_equal(tsdb_labels_normalize(v, &n, NULL, 0), 0);
    assert_int_equal(tsdb_labels_encode(v, n, enc, sizeof(enc), &len), 0);
    assert_int_equal(tsdb_index_add(&e->ix, txn, id, enc, len), TSDB_OK);
}

static void test_index_empty_label_semantics(void **state)
{
    struct tsdb_label s1[] = {{"__name__", "up"}, {"a", "x"}};
    struct tsdb_label s2[] = {{"__name__", "up"}, {"a", "y"}};
    struct tsdb_label s3[] = {{"__name__", "up"}, {"b", "x"}};
    struct tsdb_label s4[] = {{"__name__", "up"}, {"a", "line\nbreak"}};
    const uint64_t all[] = {1, 2, 3, 4};
    struct env e;
    MDB_txn *txn;
    int calls = 0;

    (void)state;
    env_open(&e, 16u << 20);
    txn = begin(&e, 0);
    add_series(&e, txn, 1, s1, 2);
    add_series(&e, txn, 2, s2, 2);
    add_series(&e, txn, 3, s3, 2);
    add_series(&e, txn, 4, s4, 2);

    select_one(&e, txn, TSDB_MATCH_EQ, "a", "", (uint64_t[]){3}, 1);
    select_one(&e, txn, TSDB_MATCH_NEQ, "a", "", (uint64_t[]){1, 2, 4}, 3);
    select_one(&e, txn, TSDB_MATCH_EQ, "nope", "", all, 4);
    select_one(&e, txn, TSDB_MATCH_NEQ, "nope", "", NULL, 0);
    select_one(&e, txn, TSDB_MATCH_NEQ, "a", "x", (uint64_t[]){2, 3, 4}, 3);
    /* '.' stops at the newline, so series 4 fails ".*". */
    select_one(&e, txn, TSDB_MATCH_RE, "a", ".*", (uint64_t[]){1, 2, 3}, 3);
    select_one(&e, txn, TSDB_MATCH_RE, "a", "(?s).*", all, 4);
    select_one(&e, txn, TSDB_MATCH_RE, "a", ".+", (uint64_t[]){1, 2}, 2);
    select_one(&e, txn, TSDB_MATCH_RE, "a", "x|", (uint64_t[]){1, 3}, 2);
    select_one(&e, txn, TSDB_MATCH_RE, "a", "x|y", (uint64_t[]){1, 2}, 2);
    select_one(&e, txn, TSDB_MATCH_NRE, "a", "x", (uint64_t[]){2, 3, 4}, 3);
    select_one(&e, txn, TSDB_MATCH_NRE, "a", ".*", (uint64_t[]){4}, 1);
    select_one(&e, txn, TSDB_MATCH_NRE, "nope", ".*", NULL, 0);
    select_one(&e, txn, TSDB_MATCH_RE, "nope", ".*", all, 4);
    select_one(&e, txn, TSDB_MATCH_RE, "", ".*", all, 4);
    select_one(&e, txn, TSDB_MATCH_EQ, "", "", all, 4);

    /* The all-series key is no label: "" has no values. */
    assert_int_equal(
        tsdb_index_label_values(&e.ix, txn, "", NULL, count_fn, &calls),
        TSDB_OK);
    assert_int_equal(calls, 0);
    mdb_txn_abort(txn);
    env_close(&e);
}

static void test_index_add_is_idempotent(void **state)
{
    struct tsdb_label v[] = {{"__name__", "up"}, {"job", "api"}};
    struct tsdb_label w[] = {{"__name__", "up"}, {"job", "web"}};
    uint8_t enc[256], enc2[256], junk[] = {1, 'a', 9};
    size_t len, len2, n = 2;
    struct env e;
    MDB_txn *txn;
    uint64_t id;

    (void)state;
    env_open(&e, 16u << 20);
    txn = begin(&e, 0);
    assert_int_equal(tsdb_labels_normalize(v, &n, NULL, 0), 0);
    assert_int_equal(tsdb_labels_encode(v, n, enc, sizeof(enc), &len), 0);
    assert_int_equal(tsdb_labels_normalize(w, &n, NULL, 0), 0);
    assert_int_equal(tsdb_labels_encode(w, n, enc2, sizeof(enc2), &len2), 0);

    assert_int_equal(tsdb_index_add(&e.ix, txn, 42, enc, len), TSDB_OK);
    assert_int_equal(tsdb_index_add(&e.ix, txn, 42, enc, len), TSDB_OK);
    assert_int_equal(db_entries(txn, e.ix.postings), 3);
    assert_int_equal(db_entries(txn, e.ix.series_hash), 1);
    assert_int_equal(tsdb_index_find(&e.ix, txn, enc, len, &id), TSDB_OK);
    assert_int_equal(id, 42);

    /* One id, one label set: both directions are refused. */
    assert_int_equal(tsdb_index_add(&e.ix, txn, 43, enc, len), TSDB_EINVAL);
    assert_int_equal(tsdb_index_add(&e.ix, txn, 42, enc2, len2), TSDB_EINVAL);
    assert_int_equal(tsdb_index_add(&e.ix, txn, 44, junk, sizeof(junk)),
                     TSDB_EINVAL);
    assert_int_equal(tsdb_index_find(&e.ix, txn, enc2, len2, &id),
                     TSDB_ENOTFOUND);
    assert_int_equal(db_entries(txn, e.ix.series), 1);
    mdb_txn_abort(txn);
    env_close(&e);
}

static void test_index_hash_collision(void **state)
{
    struct tsdb_label a[] = {{"__name__", "up"}, {"job", "a"}};
    struct tsdb_label b[] = {{"__name__", "up"}, {"job", "b"}};
    uint8_t ea[64], eb[64], hb[8], idb[8];
    MDB_val k = {8, hb}, d = {8, idb};
    size_t la, lb, n = 2;
    struct env e;
    MDB_txn *txn;
    uint64_t id;

    (void)state;
    env_open(&e, 16u << 20);
    txn = begin(&e, 0);
    assert_int_equal(tsdb_labels_normalize(a, &n, NULL, 0), 0);
    assert_int_equal(tsdb_labels_encode(a, n, ea, sizeof(ea), &la), 0);
    assert_int_equal(tsdb_labels_normalize(b, &n, NULL, 0), 0);
    assert_int_equal(tsdb_labels_encode(b, n, eb, sizeof(eb), &lb), 0);
    assert_int_equal(tsdb_index_add(&e.ix, txn, 7, ea, la), TSDB_OK);

    /* Pretend a and b share a hash: file id 7 under b's hash too. */
    put_be64(hb, tsdb_labels_hash(eb, lb));
    put_be64(idb, 7);
    assert_int_equal(mdb_put(txn, e.ix.series_hash, &k, &d, 0), 0);
    assert_int_equal(tsdb_index_find(&e.ix, txn, eb, lb, &id), TSDB_ENOTFOUND);

    assert_int_equal(tsdb_index_add(&e.ix, txn, 9, eb, lb), TSDB_OK);
    assert_int_equal(tsdb_index_find(&e.ix, txn, eb, lb, &id), TSDB_OK);
    assert_int_equal(id, 9);
    assert_int_equal(tsdb_index_find(&e.ix, txn, ea, la, &id), TSDB_OK);
    assert_int_equal(id, 7);

    /* Removing 9 leaves the other id under the shared hash. */
    assert_int_equal(tsdb_index_remove(&e.ix, txn, 9), TSDB_OK);
    assert_int_equal(tsdb_index_find(&e.ix, txn, eb, lb, &id), TSDB_ENOTFOUND);
    assert_true(has_pair(txn, e.ix.series_hash, hb, 8, 7));
    assert_int_equal(tsdb_index_find(&e.ix, txn, ea, la, &id), TSDB_OK);
    mdb_txn_abort(txn);
    env_close(&e);
}

static void test_index_map_full(void **state)
{
    struct tsdb_label v[3];
    char name[32], path[300];
    struct env e;
    MDB_txn *txn;
    uint8_t enc[512];
    size_t len, n, added = 0;
    int rc = TSDB_OK;

    (void)state;
    env_open(&e, 64u << 10);
    txn = begin(&e, 0);
    memset(path, 'p', sizeof(path) - 1);
    path[sizeof(path) - 1] = '\0';
    for (uint64_t id = 1; id < 100000 && rc == TSDB_OK; id++) {
        snprintf(name, sizeof(name), "m%llu", (unsigned long long)id);
        v[0] = (struct tsdb_label){"__name__", name};
        v[1] = (struct tsdb_label){"path", path};
        v[2] = (struct tsdb_label){"id", name};
        n = 3;
        assert_int_equal(tsdb_labels_normalize(v, &n, NULL, 0), 0);
        assert_int_equal(tsdb_labels_encode(v, n, enc, sizeof(enc), &len), 0);
        rc = tsdb_index_add(&e.ix, txn, id, enc, len);
        added += rc == TSDB_OK;
    }
    assert_int_equal(rc, TSDB_EMAPFULL);
    assert_true(added > 0);
    mdb_txn_abort(txn);

    /* The environment is still usable, and empty. */
    txn = begin(&e, MDB_RDONLY);
    assert_int_equal(
        tsdb_index_labels(&e.ix, txn, 1, &(const uint8_t *){0}, &len),
        TSDB_ENOTFOUND);
    mdb_txn_abort(txn);
    env_close(&e);
}

static void test_index_open_read_only(void **state)
{
    struct tsdb_index ix;
    struct env e;
    MDB_txn *txn;
    MDB_env *env;
    char dir[64];

    (void)state;
    env_open(&e, 16u << 20);
    txn = begin(&e, MDB_RDONLY);
    assert_int_equal(tsdb_index_open(&ix, txn), TSDB_OK);
    mdb_txn_abort(txn);
    env_close(&e);

    /* A fresh environment has no index to open read-only. */
    strcpy(dir, "/tmp/test_index.XXXXXX");
    assert_non_null(mkdtemp(dir));
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 8), 0);
    assert_int_equal(mdb_env_open(env, dir, 0, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    assert_int_equal(tsdb_index_open(&ix, txn), TSDB_ENOTFOUND);
    mdb_txn_abort(txn);
    mdb_env_close(env);
    strcpy(e.dir, dir);
    e.env = NULL;
    env_close(&e);
}

static void test_index_corrupt_series_value(void **state)
{
    struct tsdb_label v[] = {{"__name__", "up"}, {"job", "a"}};
    uint8_t idb[8], junk[] = {0x05, 'j'};
    MDB_val k = {8, idb}, d = {sizeof(junk), junk};
    struct tsdb_matcher ms[2];
    struct tsdb_ids got = {0};
    struct env e;
    MDB_txn *txn;

    (void)state;
    env_open(&e, 16u << 20);
    txn = begin(&e, 0);
    add_series(&e, txn, 5, v, 2);
    put_be64(idb, 5);
    assert_int_equal(mdb_put(txn, e.ix.series, &k, &d, 0), 0);

    assert_int_equal(tsdb_index_remove(&e.ix, txn, 5), TSDB_ECORRUPT);
    assert_int_equal(
        tsdb_matcher_init(&ms[0], TSDB_MATCH_EQ, "__name__", "up", NULL, 0), 0);
    assert_int_equal(
        tsdb_matcher_init(&ms[1], TSDB_MATCH_RE, "job", "a.*", NULL, 0), 0);
    /* Few candidates: their labels are read, and found damaged. */
    assert_int_equal(tsdb_index_select(&e.ix, txn, ms, 2, &got), TSDB_ECORRUPT);
    assert_int_equal(got.n, 0);
    tsdb_matcher_release(&ms[0]);
    tsdb_matcher_release(&ms[1]);
    mdb_txn_abort(txn);
    env_close(&e);
}

static int stop_fn(void *ctx, const char *s, size_t len)
{
    (void)s;
    (void)len;
    return ++*(int *)ctx == 2 ? 99 : 0;
}

static void test_index_walk_stops_on_callback(void **state)
{
    struct tsdb_label v[] = {
        {"__name__", "up"}, {"a", "1"}, {"b", "2"}, {"c", "3"}};
    struct env e;
    MDB_txn *txn;
    int calls = 0;

    (void)state;
    env_open(&e, 16u << 20);
    txn = begin(&e, 0);
    add_series(&e, txn, 1, v, 4);
    assert_int_equal(tsdb_index_label_names(&e.ix, txn, NULL, stop_fn, &calls),
                     99);
    assert_int_equal(calls, 2);
    mdb_txn_abort(txn);
    env_close(&e);
}

static void test_index_mdb_error_mapping(void **state)
{
    (void)state;
    assert_int_equal(tsdb_mdb_error(MDB_SUCCESS), TSDB_OK);
    assert_int_equal(tsdb_mdb_error(MDB_NOTFOUND), TSDB_ENOTFOUND);
    assert_int_equal(tsdb_mdb_error(MDB_MAP_FULL), TSDB_EMAPFULL);
    assert_int_equal(tsdb_mdb_error(MDB_CORRUPTED), TSDB_ECORRUPT);
    assert_int_equal(tsdb_mdb_error(MDB_PAGE_NOTFOUND), TSDB_ECORRUPT);
    assert_int_equal(tsdb_mdb_error(MDB_INVALID), TSDB_ECORRUPT);
    assert_int_equal(tsdb_mdb_error(ENOMEM), TSDB_ENOMEM);
    assert_int_equal(tsdb_mdb_error(MDB_VERSION_MISMATCH), TSDB_EVERSION);
    assert_int_equal(tsdb_mdb_error(MDB_TXN_FULL), TSDB_EIO);
    assert_int_equal(tsdb_mdb_error(EIO), TSDB_EIO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_index_select_matches_brute_force),
        cmocka_unit_test(test_index_label_names_and_values),
        cmocka_unit_test(test_index_remove),
        cmocka_unit_test(test_index_empty_label_semantics),
        cmocka_unit_test(test_index_add_is_idempotent),
        cmocka_unit_test(test_index_hash_collision),
        cmocka_unit_test(test_index_map_full),
        cmocka_unit_test(test_index_open_read_only),
        cmocka_unit_test(test_index_corrupt_series_value),
        cmocka_unit_test(test_index_walk_stops_on_callback),
        cmocka_unit_test(test_index_mdb_error_mapping),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
