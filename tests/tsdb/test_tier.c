/*
 * Downsampled tiers (tsdb/tier*.c): bucket maths against hand-computed
 * buckets, the block codec (round trips, every truncation refused), and
 * the stored tier read back through tsdb_tier_query beside buckets
 * summarised from the raw samples, before and after tier retention.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "testutil.h"
#include "tsdb/db.h"
#include "tsdb/tier.h"

#define STALE 0x7ff0000000000002ULL

static double bits(uint64_t b)
{
    double d;

    memcpy(&d, &b, sizeof(d));
    return d;
}

static uint64_t dbits(double d)
{
    uint64_t b;

    memcpy(&b, &d, sizeof(b));
    return b;
}

static void test_tier_bucket_end(void **state)
{
    (void)state;
    assert_int_equal(tier_bucket_end(1, 300), 300);
    assert_int_equal(tier_bucket_end(300, 300), 300);
    assert_int_equal(tier_bucket_end(301, 300), 600);
    assert_int_equal(tier_bucket_end(0, 300), 0);
    assert_int_equal(tier_bucket_end(-1, 300), 0);
    assert_int_equal(tier_bucket_end(-300, 300), -300);
    assert_int_equal(tier_bucket_end(-301, 300), -300);
    assert_int_equal(tier_block_start(0, 10), 0);
    assert_int_equal(tier_block_start(630, 10), 0);
    assert_int_equal(tier_block_start(640, 10), 640);
    assert_int_equal(tier_block_start(-10, 10), -640);
}

/*
 * Width 10: samples at 1..25 fall in (0,10], (10,20], (20,30].
 *   (0,10]:  t=1 v=5, t=4 v=7, t=10 v=2 (a reset: +7)
 *   (10,20]: t=12 NaN, t=15 stale (skipped), t=20 v=4
 *   (20,30]: t=25 v=-0.0
 */
static void test_tier_summarize_by_hand(void **state)
{
    const int64_t t[] = {1, 4, 10, 12, 15, 20, 25};
    const double v[] = {5, 7, 2, NAN, bits(STALE), 4, -0.0};
    struct tier_buckets b = {0};

    (void)state;
    assert_int_equal(tier_summarize(10, t, v, 7, &b), TSDB_OK);
    for (size_t i = 0; i < b.n; i++)
        tier_bucket_finish(&b.v[i]);
    assert_int_equal(b.n, 3);

    assert_int_equal(b.v[0].end, 10);
    assert_int_equal(b.v[0].count, 3);
    assert_true(b.v[0].sum == 14);
    assert_true(b.v[0].min == 2 && b.v[0].max == 7);
    assert_int_equal(b.v[0].first_t, 1);
    assert_int_equal(b.v[0].last_t, 10);
    assert_true(b.v[0].first_v == 5 && b.v[0].last_v == 2);
    assert_true(b.v[0].resets == 7);

    /* NaN then 4: the NaN gives way in min and max; the sum is NaN; a
     * rise from NaN is no reset. */
    assert_int_equal(b.v[1].end, 20);
    assert_int_equal(b.v[1].count, 2);
    assert_true(isnan(b.v[1].sum));
    assert_true(b.v[1].min == 4 && b.v[1].max == 4);
    assert_true(isnan(b.v[1].first_v) && b.v[1].last_v == 4);
    assert_true(b.v[1].resets == 0);

    /* One sample of -0: a sum from zero makes it +0. */
    assert_int_equal(b.v[2].count, 1);
    assert_int_equal(dbits(b.v[2].sum), 0);
    assert_int_equal(dbits(b.v[2].last_v), dbits(-0.0));

    /* Fed in two batches, the same buckets. */
    {
        struct tier_buckets c = {0};

        assert_int_equal(tier_summarize(10, t, v, 2, &c), TSDB_OK);
        assert_int_equal(tier_summarize(10, t + 2, v + 2, 5, &c), TSDB_OK);
        assert_int_equal(c.n, 3);
        assert_int_equal(c.v[0].count, 3);
        tier_buckets_release(&c);
    }
    tier_buckets_release(&b);
}

static void same_bucket(const struct tsdb_bucket *a,
                        const struct tsdb_bucket *b)
{
    assert_int_equal(a->end, b->end);
    assert_int_equal(a->count, b->count);
    assert_int_equal(a->first_t, b->first_t);
    assert_int_equal(a->last_t, b->last_t);
    assert_int_equal(dbits(a->first_v), dbits(b->first_v));
    assert_int_equal(dbits(a->last_v), dbits(b->last_v));
    assert_int_equal(dbits(a->sum), dbits(b->sum));
    assert_int_equal(dbits(a->min), dbits(b->min));
    assert_int_equal(dbits(a->max), dbits(b->max));
    assert_int_equal(dbits(a->resets), dbits(b->resets));
}

/* Random samples in one block's buckets, every value class included. */
static void random_block(struct test_rng *r, int64_t w, int64_t start,
                         struct tier_buckets *b)
{
    static const double odd[] = {NAN, INFINITY, -INFINITY, -0.0, 1e-310};
    int64_t t = start - w + 1;
    double c = 100;

    b->n = 0;
    while (t <= start + (TIER_BLOCK_BUCKETS - 1) * w) {
        uint64_t dice = test_rng_next(r) % 100;
        double v = dice < 5 ? odd[dice] : dice < 50 ? c += dice : dice * 0.1;

        assert_int_equal(tier_summarize(w, &t, &v, 1, b), TSDB_OK);
        t += 1 + (int64_t)(test_rng_next(r) % (uint64_t)(w * 3));
    }
    for (size_t i = 0; i < b->n; i++)
        tier_bucket_finish(&b->v[i]);
}

static void test_tier_block_round_trip(void **state)
{
    struct tsdb_bucket out[TIER_BLOCK_BUCKETS];
    uint8_t buf[TIER_BLOCK_MAX];
    struct tier_buckets b = {0};
    struct test_rng r;
    size_t total = 0, nb = 0;

    (void)state;
    test_rng_init(&r, "test_tier_block_round_trip", 7);
    for (int round = 0; round < 200; round++) {
        int64_t w = round % 2 ? 300000 : 10;
        int64_t start = (round - 100) * TIER_BLOCK_BUCKETS * w;
        size_t len, n;

        random_block(&r, w, start, &b);
        assert_true(b.n > 0 && b.n <= TIER_BLOCK_BUCKETS);
        len = tier_block_encode(b.v, b.n, start, w, buf);
        assert_true(len <= TIER_BLOCK_MAX);
        assert_int_equal(tier_block_decode(buf, len, start, w, out, &n),
                         TSDB_OK);
        assert_int_equal(n, b.n);
        for (size_t i = 0; i < n; i++)
            same_bucket(&out[i], &b.v[i]);
        /* Every truncation is refused, never read past. */
        for (size_t cut = 0; cut < len; cut++)
            assert_int_equal(tier_block_decode(buf, cut, start, w, out, &n),
                             TSDB_ECORRUPT);
        total += len;
        nb += b.n;
    }
    printf("block codec: %.1f bytes per bucket on mixed values\n",
           (double)total / (double)nb);
    tier_buckets_release(&b);
}

/* storage-format.md section 3.4, worked example. */
static void test_tier_worked_example(void **state)
{
    static const int64_t t[] = {1700000010000LL, 1700000070000LL,
                                1700000100000LL, 1700000130000LL};
    static const double v[] = {10, 4, 6, 9};
    static const uint8_t want_key[TIER_KEY_LEN] = {
        0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x93, 0xe0, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x2a, 0x80, 0x00, 0x01, 0x8b, 0xcf, 0x22, 0x18, 0x00};
    static const uint8_t want[] = {
        0x01, 0x02, 0x2b, 0x03, 0x9e, 0xd1, 0x19, 0x02, 0x40, 0x24, 0x00,
        0x04, 0x11, 0x3c, 0x02, 0x40, 0x34, 0x02, 0x40, 0x10, 0x02, 0x40,
        0x24, 0x02, 0x40, 0x24, 0x00, 0x01, 0xbf, 0xfc, 0x15, 0x11, 0x3a};
    uint8_t key[TIER_KEY_LEN], out[TIER_BLOCK_MAX];
    struct tier_buckets b = {0};
    int64_t start;
    size_t len;

    (void)state;
    assert_int_equal(tier_summarize(300000, t, v, 4, &b), TSDB_OK);
    for (size_t i = 0; i < b.n; i++)
        tier_bucket_finish(&b.v[i]);
    start = tier_block_start(b.v[0].end, 300000);
    assert_int_equal(start, 1699987200000LL);
    tier_key(key, 300000, 42, start);
    assert_memory_equal(key, want_key, sizeof(key));
    len = tier_block_encode(b.v, b.n, start, 300000, out);
    assert_int_equal(len, sizeof(want));
    assert_memory_equal(out, want, len);
    tier_buckets_release(&b);
}

/* ---- through the database ---- */

struct fixture {
    char *dir;
    struct tsdb *db;
};

static int db_setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    struct tsdb_options o;

    f->dir = test_tmpdir("tier");
    tsdb_options_init(&o);
    o.dir = f->dir;
    o.map_size = 64u << 20;
    o.tier_settle_ms = 0;
    o.tier_interval_ms = 3600 * 1000;
    o.tiers[0].retention_ms = 6 * 3600 * 1000; /* 5m kept 6 h */
    assert_int_equal(tsdb_open(&o, &f->db), TSDB_OK);
    *state = f;
    return 0;
}

static int db_teardown(void **state)
{
    struct fixture *f = *state;

    tsdb_close(f->db);
    test_rmdir(f->dir);
    free(f);
    return 0;
}

/* Counter every 15 s for 24 h, resets every 5 h. */
#define N_SAMPLES (24 * 240)
#define T0        1700000000000LL

static void write_counter(struct tsdb *db, int64_t *t, double *v)
{
    struct tsdb_appender *a = tsdb_appender_new(db);
    struct tsdb_label ls[1] = {{"__name__", "c_total"}};
    char err[128];
    uint64_t ref;

    assert_int_equal(tsdb_appender_series(a, ls, 1, &ref, err, sizeof(err)),
                     TSDB_OK);
    for (int i = 0; i < N_SAMPLES; i++) {
        t[i] = T0 + i * 15000LL;
        v[i] = (double)(i % 1200) * 2;
        assert_int_equal(tsdb_appender_add(a, ref, t[i], v[i]), TSDB_OK);
    }
    assert_int_equal(tsdb_appender_commit(a, NULL), TSDB_OK);
    tsdb_appender_free(a);
}

/* Reads tier i over [mint, maxt] and compares with summarising raw. */
static void check_tier(struct tsdb *db, size_t i, int64_t w, int64_t mint,
                       int64_t maxt, const int64_t *t, const double *v)
{
    struct tsdb_matcher m;
    struct tsdb_tier_query *q;
    const struct tsdb_labels *ls;
    const struct tsdb_bucket *b;
    struct tier_buckets want = {0};
    size_t n, k = 0;
    char err[64];

    assert_int_equal(tier_summarize(w, t, v, N_SAMPLES, &want), TSDB_OK);
    assert_int_equal(tsdb_matcher_init(&m, TSDB_MATCH_EQ, "__name__", "c_total",
                                       err, sizeof(err)),
                     TSDB_OK);
    assert_int_equal(tsdb_tier_query_open(db, i, &m, 1, mint, maxt, &q),
                     TSDB_OK);
    assert_int_equal(tsdb_tier_query_next(q, &ls, &b, &n), TSDB_OK);
    while (k < want.n && want.v[k].end < mint)
        k++;
    for (size_t j = 0; j < n; j++, k++) {
        tier_bucket_finish(&want.v[k]);
        same_bucket(&b[j], &want.v[k]);
    }
    assert_true(k == want.n || want.v[k].end > maxt);
    assert_int_equal(tsdb_tier_query_next(q, &ls, &b, &n), TSDB_ENOTFOUND);
    tsdb_tier_query_close(q);
    tsdb_matcher_release(&m);
    tier_buckets_release(&want);
}

static void test_tier_stored_equals_summary(void **state)
{
    struct fixture *f = *state;
    int64_t *t = malloc(N_SAMPLES * sizeof(*t));
    double *v = malloc(N_SAMPLES * sizeof(*v));
    struct tsdb_tier_stats st[TSDB_TIERS_MAX];
    int64_t end = T0 + N_SAMPLES * 15000LL, cutoff;
    struct tsdb_matcher m;
    struct tsdb_tier_query *q;
    const struct tsdb_labels *ls;
    const struct tsdb_bucket *b;
    char err[64];
    size_t n;

    write_counter(f->db, t, v);

    /* Before any pass: everything summarised on the fly. */
    check_tier(f->db, 1, 3600000, 0, end + 3600000, t, v);
    assert_int_equal(tsdb_tiers_build(f->db), TSDB_OK);
    tsdb_tier_stats_get(f->db, st, &n);
    assert_int_equal(n, 2);
    assert_true(st[0].horizon > end - 600000 && st[0].bytes > 0);
    assert_true(st[1].horizon > end - 2 * 3600000 && st[1].bytes > 0);
    printf("stored: 1h tier of a counter, %.1f bytes per bucket\n",
           (double)st[1].bytes / 24.0);

    /* Stored part, the horizon's edge and the part past it. */
    check_tier(f->db, 1, 3600000, 0, end + 3600000, t, v);
    check_tier(f->db, 1, 3600000, T0 + 7200000, T0 + 4 * 3600000, t, v);

    /* Tier retention: the 5m tier keeps 6 h (whole blocks go), so its
     * first hours are gone and the rest is intact. */
    cutoff = tsdb_tier_oldest(f->db, 0);
    assert_true(cutoff == t[N_SAMPLES - 1] - 6 * 3600000);
    assert_int_equal(tsdb_tier_oldest(f->db, 1), INT64_MIN);
    check_tier(f->db, 0, 300000, tier_bucket_end(cutoff, 300000), end + 300000,
               t, v);
    assert_int_equal(tsdb_matcher_init(&m, TSDB_MATCH_EQ, "__name__", "c_total",
                                       err, sizeof(err)),
                     TSDB_OK);
    assert_int_equal(
        tsdb_tier_query_open(f->db, 0, &m, 1, T0, T0 + 3600000, &q), TSDB_OK);
    assert_int_equal(tsdb_tier_query_next(q, &ls, &b, &n), TSDB_ENOTFOUND);
    tsdb_tier_query_close(q);
    tsdb_matcher_release(&m);
    free(t);
    free(v);
}

/* Appends n samples of c_total{s=name}, step ms apart from t0, value
 * i; returns the last time. */
static int64_t write_run(struct tsdb *db, const char *name, int64_t t0,
                         int64_t step, int n)
{
    struct tsdb_appender *a = tsdb_appender_new(db);
    struct tsdb_label ls[2] = {{"__name__", "c_total"}, {"s", name}};
    char err[128];
    uint64_t ref;

    assert_int_equal(tsdb_appender_series(a, ls, 2, &ref, err, sizeof(err)),
                     TSDB_OK);
    for (int i = 0; i < n; i++)
        assert_int_equal(tsdb_appender_add(a, ref, t0 + i * step, i), TSDB_OK);
    assert_int_equal(tsdb_appender_commit(a, NULL), TSDB_OK);
    tsdb_appender_free(a);
    return t0 + (n - 1) * step;
}

/* The 1h buckets of c_total{s=name} with end in [mint, maxt]. */
static size_t count_buckets(struct tsdb *db, const char *name, int64_t mint,
                            int64_t maxt)
{
    struct tsdb_matcher m;
    struct tsdb_tier_query *q;
    const struct tsdb_labels *ls;
    const struct tsdb_bucket *b;
    size_t n = 0;
    char err[64];

    assert_int_equal(
        tsdb_matcher_init(&m, TSDB_MATCH_EQ, "s", name, err, sizeof(err)),
        TSDB_OK);
    assert_int_equal(tsdb_tier_query_open(db, 1, &m, 1, mint, maxt, &q),
                     TSDB_OK);
    if (tsdb_tier_query_next(q, &ls, &b, &n) != TSDB_OK)
        n = 0;
    tsdb_tier_query_close(q);
    tsdb_matcher_release(&m);
    return n;
}

/*
 * A tier outlives raw retention: the series stays in the index while a
 * tier holds it, and a late sample after a restart (when the downsampler
 * knows nothing of the series) summarises again only from the first raw
 * sample on, never wiping the older buckets.
 */
static void test_tier_outlives_raw(void **state)
{
    struct fixture *f = *state;
    struct tsdb_options o;
    int64_t hour = 3600000, x_end, y_end;
    size_t deleted;

    x_end = write_run(f->db, "x", T0, 60000, 10 * 60);
    y_end = write_run(f->db, "y", T0, 60000, 20 * 60);
    assert_int_equal(tsdb_tiers_build(f->db), TSDB_OK);
    assert_int_equal(count_buckets(f->db, "x", T0, y_end), 11);
    assert_int_equal(tsdb_seal_all(f->db), TSDB_OK);

    /* Restart, so that x is not active in memory, then retention takes
     * every raw chunk of x. */
    tsdb_close(f->db);
    tsdb_options_init(&o);
    o.dir = f->dir;
    o.map_size = 64u << 20;
    o.tier_settle_ms = 0;
    o.tier_interval_ms = 3600 * 1000;
    assert_int_equal(tsdb_open(&o, &f->db), TSDB_OK);
    assert_int_equal(tsdb_retention_run(f->db, y_end - hour, &deleted),
                     TSDB_OK);
    assert_true(deleted > 0);
    assert_int_equal(count_buckets(f->db, "x", T0, y_end), 11);

    /* x writes late: below the horizon that y set. */
    write_run(f->db, "x", x_end + 5 * hour, 60000, 30);
    assert_int_equal(tsdb_tiers_build(f->db), TSDB_OK);
    assert_int_equal(count_buckets(f->db, "x", T0, y_end), 12);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tier_bucket_end),
        cmocka_unit_test(test_tier_summarize_by_hand),
        cmocka_unit_test(test_tier_block_round_trip),
        cmocka_unit_test(test_tier_worked_example),
        cmocka_unit_test_setup_teardown(test_tier_stored_equals_summary,
                                        db_setup, db_teardown),
        cmocka_unit_test_setup_teardown(test_tier_outlives_raw, db_setup,
                                        db_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
