/*
 * Tests of statsd/aggregate.c: per-type semantics with sample rates
 * (a counter at @0.1 counts ten times), gauge deltas, timer buckets and
 * the ms -> s conversion, set distinct counts, |T passthrough, the idle
 * TTL and its stale marker, kind conflicts and limits, cumulative values
 * over many flushes (seeded), and snapshot round trips that must give
 * bit-identical emissions.  statsd_agg_check runs after every mutation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "statsd/aggregate.h"
#include "statsd/journal.h"
#include "testutil.h"
#include "tsdb/bytes.h"
#include "tsdb/format.h"

/* ---- helpers ---- */

struct sample {
    char series[512];
    int64_t t;
    double v;
};

struct collect {
    struct sample *v;
    size_t n, cap;
};

static int collect_fn(void *ctx, const struct statsd_sample *s)
{
    struct collect *c = ctx;
    struct sample *x;
    size_t n = 0;

    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 64;
        c->v = realloc(c->v, c->cap * sizeof(*c->v));
        assert_non_null(c->v);
    }
    x = &c->v[c->n++];
    assert_string_equal(s->labels[0].name, "__name__");
    n += (size_t)snprintf(x->series, sizeof(x->series), "%s{",
                          s->labels[0].value);
    for (size_t i = 1; i < s->nlabels; i++)
        n += (size_t)snprintf(x->series + n, sizeof(x->series) - n,
                              "%s%s=\"%s\"", i > 1 ? "," : "",
                              s->labels[i].name, s->labels[i].value);
    snprintf(x->series + n, sizeof(x->series) - n, "}");
    x->t = s->t;
    x->v = s->v;

    /* The array is scratch: scribbling over it must not matter. */
    s->labels[0] = (struct tsdb_label){"x", "y"};
    return TSDB_OK;
}

static void collect_reset(struct collect *c)
{
    free(c->v);
    memset(c, 0, sizeof(*c));
}

static const struct sample *find(const struct collect *c, const char *series)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->v[i].series, series) == 0)
            return &c->v[i];
    return NULL;
}

static double value(const struct collect *c, const char *series)
{
    const struct sample *s = find(c, series);

    if (!s)
        fail_msg("no sample for %s", series);
    return s->v;
}

struct feed {
    struct statsd_agg *a;
    int64_t arrival;
    char reasons[4096];
    size_t len;
    int last_rc;
};

static int feed_line(void *ctx, const struct statsd_line *l)
{
    struct feed *f = ctx;
    char reason[STATSD_MAX_REASON];

    f->last_rc = statsd_agg_apply(f->a, l, f->arrival, reason, sizeof(reason));
    assert_int_equal(statsd_agg_check(f->a), TSDB_OK);
    if (f->last_rc != TSDB_OK)
        f->len += (size_t)snprintf(f->reasons + f->len,
                                   sizeof(f->reasons) - f->len, "%s\n", reason);
    return TSDB_OK;
}

static int feed_reject(void *ctx, uint64_t line, const char *reason)
{
    (void)ctx;
    (void)line;
    fail_msg("unexpected parse rejection: %s", reason);
    return TSDB_OK;
}

/* Applies body at arrival; returns the state's rejections, one a line. */
static const char *feed(struct statsd_agg *a, const char *body, int64_t arrival)
{
    static struct feed f;
    static struct statsd_parser p;
    static const struct statsd_parse_cb cb = {feed_line, feed_reject};

    memset(&f, 0, sizeof(f));
    f.a = a;
    f.arrival = arrival;
    statsd_parser_init(&p);
    assert_int_equal(statsd_parse(&p, body, strlen(body), &cb, &f), TSDB_OK);
    return f.reasons;
}

/* Flushes at t into c (emptied first). */
static void flush(struct statsd_agg *a, int64_t t, struct collect *c)
{
    struct statsd_capture *cap;
    uint64_t n;

    collect_reset(c);
    assert_int_equal(statsd_agg_flush(a, t, &cap), TSDB_OK);
    assert_int_equal(statsd_capture_time(cap), t);
    assert_int_equal(statsd_capture_seq(cap), statsd_agg_seq(a));
    assert_int_equal(statsd_capture_emit(cap, collect_fn, c, &n), TSDB_OK);
    assert_int_equal(n, c->n);
    statsd_capture_free(cap);
    assert_int_equal(statsd_agg_check(a), TSDB_OK);
}

static struct statsd_agg *agg_new(int64_t ttl)
{
    struct statsd_agg_options o;
    struct statsd_agg *a;

    statsd_agg_options_init(&o);
    o.idle_ttl_ms = ttl;
    assert_int_equal(statsd_agg_new(&o, &a), TSDB_OK);
    return a;
}

/* ---- per type ---- */

static void test_statsd_aggregate_counter_rates(void **state)
{
    struct statsd_agg *a = agg_new(0);
    struct collect c = {0};

    (void)state;
    assert_string_equal(feed(a, "c:1|c|@0.1\nc:2|c\nc:1:2|c|#k:v", 0), "");
    flush(a, 10000, &c);
    assert_int_equal(c.n, 2);
    assert_true(value(&c, "c{}") == 12.0);
    assert_true(value(&c, "c{k=\"v\"}") == 3.0);
    assert_int_equal(find(&c, "c{}")->t, 10000);

    /* Cumulative: the next flush adds to it; an idle counter repeats. */
    feed(a, "c:3|c|@0.5", 12000);
    flush(a, 20000, &c);
    assert_true(value(&c, "c{}") == 18.0);
    assert_true(value(&c, "c{k=\"v\"}") == 3.0);
    flush(a, 30000, &c);
    assert_true(value(&c, "c{}") == 18.0);
    statsd_agg_free(a);
    collect_reset(&c);
}

static void test_statsd_aggregate_gauges(void **state)
{
    struct statsd_agg *a = agg_new(0);
    struct collect c = {0};

    (void)state;
    feed(a, "g:5|g\ng:+3|g|@0.5\nd:+4|g\nn:-2.5|g", 0);
    flush(a, 10000, &c);
    assert_true(value(&c, "g{}") == 8.0); /* rates do not scale gauges */
    assert_true(value(&c, "d{}") == 4.0); /* a new gauge starts at 0 */
    assert_true(value(&c, "n{}") == -2.5);

    feed(a, "g:-10|g\ng:1:+1:+1|g", 11000);
    flush(a, 20000, &c);
    assert_true(value(&c, "g{}") == 3.0);
    assert_true(value(&c, "d{}") == 4.0); /* kept while idle */
    statsd_agg_free(a);
    collect_reset(&c);
}

static void test_statsd_aggregate_timer_buckets(void **state)
{
    struct statsd_agg *a = agg_new(0);
    struct collect c = {0};

    (void)state;

    /* 5 ms lands in le=0.005 (le is inclusive), 7 ms in 0.01, 20 s in
     * +Inf; @0.5 counts twice in the buckets, _count and _sum. */
    feed(a, "t:5|ms\nt:7|ms|@0.5\nt:20000|ms", 0);
    flush(a, 10000, &c);
    assert_int_equal(c.n, 14);
    assert_true(value(&c, "t_bucket{le=\"0.005\"}") == 1);
    assert_true(value(&c, "t_bucket{le=\"0.01\"}") == 3);
    assert_true(value(&c, "t_bucket{le=\"0.025\"}") == 3);
    assert_true(value(&c, "t_bucket{le=\"10\"}") == 3);
    assert_true(value(&c, "t_bucket{le=\"+Inf\"}") == 4);
    assert_true(value(&c, "t_count{}") == 4);
    assert_true(value(&c, "t_sum{}") == 0.005 + 0.007 * 2 + 20.0);

    /* Cumulative across flushes. */
    feed(a, "t:1:1|ms|#a:b\nt:100|ms", 12000);
    flush(a, 20000, &c);
    assert_true(value(&c, "t_bucket{le=\"0.1\"}") == 4);
    assert_true(value(&c, "t_count{}") == 5);
    assert_true(value(&c, "t_count{a=\"b\"}") == 2);
    assert_true(value(&c, "t_bucket{a=\"b\",le=\"0.005\"}") == 2);
    statsd_agg_free(a);
    collect_reset(&c);
}

static void test_statsd_aggregate_histograms_unconverted(void **state)
{
    struct statsd_agg *a = agg_new(0);
    struct collect c = {0};

    (void)state;
    feed(a, "h:0.3|h\nh:3|d|@0.25\ng:7|d", 0);
    flush(a, 10000, &c);
    assert_true(value(&c, "h_bucket{le=\"0.25\"}") == 0);
    assert_true(value(&c, "h_bucket{le=\"0.5\"}") == 1);
    assert_true(value(&c, "h_bucket{le=\"5\"}") == 5);
    assert_true(value(&c, "h_sum{}") == 0.3 + 12);
    assert_true(value(&c, "g_bucket{le=\"10\"}") == 1);
    assert_true(value(&c, "g_sum{}") == 7);
    statsd_agg_free(a);
    collect_reset(&c);
}

static void test_statsd_aggregate_custom_buckets(void **state)
{
    static const double b[] = {1e-5, 0.005, 2.5, 100000, 1e6, 1234567};
    struct statsd_agg_options o;
    struct statsd_agg *a;
    struct collect c = {0};

    (void)state;
    statsd_agg_options_init(&o);
    o.buckets = b;
    o.nbuckets = 6;
    assert_int_equal(statsd_agg_new(&o, &a), TSDB_OK);
    feed(a, "h:5|h", 0);
    flush(a, 10000, &c);
    assert_int_equal(c.n, 9);

    /* le as the Prometheus text format writes it. */
    assert_true(value(&c, "h_bucket{le=\"1e-05\"}") == 0);
    assert_true(value(&c, "h_bucket{le=\"0.005\"}") == 0);
    assert_true(value(&c, "h_bucket{le=\"2.5\"}") == 0);
    assert_true(value(&c, "h_bucket{le=\"100000\"}") == 1);
    assert_true(value(&c, "h_bucket{le=\"1e+06\"}") == 1);
    assert_true(value(&c, "h_bucket{le=\"1.234567e+06\"}") == 1);
    assert_true(value(&c, "h_bucket{le=\"+Inf\"}") == 1);
    statsd_agg_free(a);
    collect_reset(&c);

    /* Bad bounds are refused. */
    o.buckets = (const double[]){1, 1};
    o.nbuckets = 2;
    assert_int_equal(statsd_agg_new(&o, &a), TSDB_EINVAL);
    o.buckets = (const double[]){1, INFINITY};
    assert_int_equal(statsd_agg_new(&o, &a), TSDB_EINVAL);
    o.nbuckets = STATSD_MAX_BUCKETS + 1;
    assert_int_equal(statsd_agg_new(&o, &a), TSDB_EINVAL);
}

static void test_statsd_aggregate_sets(void **state)
{
    struct statsd_agg_options o;
    struct statsd_agg *a;
    struct collect c = {0};

    (void)state;
    statsd_agg_options_init(&o);
    o.max_set_members = 3;
    o.idle_ttl_ms = 0;
    assert_int_equal(statsd_agg_new(&o, &a), TSDB_OK);
    assert_string_equal(feed(a, "u:a|s\nu:b|s|@0.1\nu:a|s\nu:c|s\nu:c|s", 0),
                        "");
    assert_string_equal(feed(a, "u:d|s", 0),
                        "line 1: set 'u' already has 3 distinct members in "
                        "this flush interval\n");
    flush(a, 10000, &c);
    assert_true(value(&c, "u{}") == 3);

    /* A new interval starts empty: no members -> 0. */
    flush(a, 20000, &c);
    assert_true(value(&c, "u{}") == 0);
    feed(a, "u:d|s\nu:a|s", 21000);
    flush(a, 30000, &c);
    assert_true(value(&c, "u{}") == 2);
    statsd_agg_free(a);
    collect_reset(&c);
}

static void test_statsd_aggregate_set_many_members(void **state)
{
    struct statsd_agg *a = agg_new(0);
    struct collect c = {0};
    char line[64];

    (void)state;
    for (int i = 0; i < 5000; i++) {
        snprintf(line, sizeof(line), "big:m%d|s", i % 4000);
        feed(a, line, 0);
    }
    flush(a, 10000, &c);
    assert_true(value(&c, "big{}") == 4000);
    statsd_agg_free(a);
    collect_reset(&c);
}

static void test_statsd_aggregate_timestamped_passthrough(void **state)
{
    struct statsd_agg *a = agg_new(0);
    struct collect c = {0};
    const struct sample *s;

    (void)state;
    feed(a, "r:5|c|T1700000000|@0.5\nrg:3|g|#k:v|T1700000001\nr:1|c", 0);
    assert_int_equal(statsd_agg_series(a), 1); /* only the plain r */
    flush(a, 10000, &c);
    assert_int_equal(c.n, 3);
    assert_true(value(&c, "r{}") == 1.0); /* the aggregated one */
    for (size_t i = 0; i < c.n; i++)
        if (c.v[i].t == INT64_C(1700000000000))
            assert_true(c.v[i].v == 10.0);
    s = find(&c, "rg{k=\"v\"}");
    assert_non_null(s);
    assert_int_equal(s->t, INT64_C(1700000001000));
    assert_true(s->v == 3.0);

    /* Emitted once. */
    flush(a, 20000, &c);
    assert_int_equal(c.n, 1);
    statsd_agg_free(a);
    collect_reset(&c);
}

static bool is_stale(double v)
{
    return double_bits(v) == STATSD_STALE_BITS;
}

static void test_statsd_aggregate_idle_ttl_and_stale(void **state)
{
    struct statsd_agg *a = agg_new(30000);
    struct collect c = {0};

    (void)state;
    feed(a, "c:1|c\nt:5|ms", 1000);
    flush(a, 10000, &c);
    assert_true(value(&c, "c{}") == 1);
    flush(a, 20000, &c);
    flush(a, 30000, &c); /* idle 29 s: still emitted */
    assert_true(value(&c, "c{}") == 1);

    /* Idle 39 s >= 30 s: one stale marker per series, exact bits. */
    flush(a, 40000, &c);
    assert_int_equal(c.n, 1 + 14);
    assert_true(is_stale(value(&c, "c{}")));
    assert_true(is_stale(value(&c, "t_bucket{le=\"+Inf\"}")));
    assert_true(is_stale(value(&c, "t_sum{}")));
    assert_true(is_stale(value(&c, "t_count{}")));
    assert_int_equal(find(&c, "c{}")->t, 40000);
    assert_int_equal(statsd_agg_series(a), 0);

    /* Then nothing; a new line starts the series over from 0. */
    flush(a, 50000, &c);
    assert_int_equal(c.n, 0);
    feed(a, "c:2|c", 51000);
    flush(a, 60000, &c);
    assert_true(value(&c, "c{}") == 2);
    statsd_agg_free(a);
    collect_reset(&c);
}

static void test_statsd_aggregate_emitted_once_before_expiry(void **state)
{
    struct statsd_agg *a = agg_new(1);
    struct collect c = {0};

    (void)state;

    /* Idle already at its first flush: emitted once anyway, then stale. */
    feed(a, "g:4|g", 0);
    flush(a, 10000, &c);
    assert_true(value(&c, "g{}") == 4);
    flush(a, 20000, &c);
    assert_true(is_stale(value(&c, "g{}")));
    flush(a, 30000, &c);
    assert_int_equal(c.n, 0);
    statsd_agg_free(a);
    collect_reset(&c);
}

static void test_statsd_aggregate_kind_conflicts(void **state)
{
    struct statsd_agg *a = agg_new(0);

    (void)state;
    assert_string_equal(feed(a, "x:1|c\nx:1|g\nx:1|c|#k:v", 0),
                        "line 2: 'x' is a counter (c); this line sends it as "
                        "|g\n");
    assert_string_equal(feed(a, "y:1|ms\ny:1|h\nz:1|h\nz:1|d", 0),
                        "line 2: 'y' is a timer (ms); this line sends it as "
                        "|h\n");
    assert_string_equal(feed(a, "x:a|s", 0),
                        "line 1: 'x' is a counter (c); this line sends it as "
                        "|s\n");
    statsd_agg_free(a);
}

static void test_statsd_aggregate_limits(void **state)
{
    struct statsd_agg_options o;
    struct statsd_agg *a;

    (void)state;
    statsd_agg_options_init(&o);
    o.max_series = 2;
    o.max_raw_bytes = 40;
    assert_int_equal(statsd_agg_new(&o, &a), TSDB_OK);
    assert_string_equal(feed(a, "a:1|c\nb:1|g\nc:1|c\na:2|c", 0),
                        "line 3: series limit of 2 reached; not creating "
                        "'c'\n");
    assert_string_equal(feed(a, "r:1|c|T1\nr:1|c|T2", 0),
                        "line 2: 22 bytes of timestamped samples already "
                        "wait for the next flush\n");
    statsd_agg_free(a);

    o.max_series = 0;
    assert_int_equal(statsd_agg_new(&o, &a), TSDB_EINVAL);
}

static void test_statsd_aggregate_flush_time_must_advance(void **state)
{
    struct statsd_agg *a = agg_new(0);
    struct statsd_capture *c;

    (void)state;
    assert_int_equal(statsd_agg_flush(a, 10000, &c), TSDB_OK);
    statsd_capture_free(c);
    assert_int_equal(statsd_agg_flush(a, 10000, &c), TSDB_EINVAL);
    assert_int_equal(statsd_agg_flush(a, 9000, &c), TSDB_EINVAL);
    assert_int_equal(statsd_agg_seq(a), 1);
    assert_int_equal(statsd_agg_last_flush(a), 10000);
    statsd_agg_free(a);
}

/* ---- cumulative values over many flushes ---- */

static void test_statsd_aggregate_cumulative_random(void **state)
{
    static const char *const rates[] = {"1", "0.5", "0.25", "0.125"};
    static const double inv[] = {1, 2, 4, 8};
    struct statsd_agg *a = agg_new(0);
    struct collect c = {0};
    struct test_rng rng;
    double want[8] = {0}, count[8] = {0};
    char line[128], series[64];

    (void)state;
    test_rng_init(&rng, "test_statsd_aggregate_cumulative_random", 77);
    for (int f = 1; f <= 40; f++) {
        for (int i = 0; i < 50; i++) {
            int k = (int)test_rng_below(&rng, 8),
                r = (int)test_rng_below(&rng, 4);
            int v = (int)test_rng_below(&rng, 100);
            snprintf(line, sizeof(line),
                     "ctr:%d|c|@%s|#k:%d\ntm:%d|ms|@%s|#k:%d", v, rates[r], k,
                     v, rates[r], k);
            feed(a, line, f * 10000 - 5000);
            want[k] += v * inv[r];
            count[k] += inv[r];
        }
        flush(a, f * 10000, &c);
        for (int k = 0; k < 8; k++) {
            if (count[k] == 0)
                continue;
            snprintf(series, sizeof(series), "ctr{k=\"%d\"}", k);
            assert_true(value(&c, series) == want[k]);
            snprintf(series, sizeof(series), "tm_count{k=\"%d\"}", k);
            assert_true(value(&c, series) == count[k]);
            snprintf(series, sizeof(series), "tm_bucket{k=\"%d\",le=\"+Inf\"}",
                     k);
            assert_true(value(&c, series) == count[k]);
        }
    }
    statsd_agg_free(a);
    collect_reset(&c);
}

/* ---- snapshots ---- */

/* Walks snapshot records in b, as recovery does, into a new aggregation. */
static struct statsd_agg *load(const struct tsdb_wal_buf *b,
                               const struct statsd_agg_options *o, bool *same)
{
    struct statsd_agg *a;
    struct statsd_snap_info info = {0};
    uint64_t count = 0, eseq, eentries;
    size_t off = 0;
    bool ended = false;

    assert_int_equal(statsd_agg_new(o, &a), TSDB_OK);
    while (off < b->len) {
        const uint8_t *h = b->p + off, *p = h + TSDB_WAL_RECORD_HEADER_LEN;
        size_t len = (size_t)h[1] << 16 | (size_t)h[2] << 8 | h[3];

        if (h[0] == STATSD_REC_SNAP_HEAD)
            assert_int_equal(statsd_agg_load_head(a, p, len, &info), TSDB_OK);
        else if (h[0] == STATSD_REC_SNAP_ENTRIES)
            assert_int_equal(
                statsd_agg_load_entries(a, &info, p, len, true, &count),
                TSDB_OK);
        else if (h[0] == STATSD_REC_SNAP_END) {
            assert_int_equal(statsd_agg_load_end(p, len, &eseq, &eentries),
                             TSDB_OK);
            assert_int_equal(eseq, info.seq);
            assert_int_equal(eentries, count);
            ended = true;
        }
        off += TSDB_WAL_RECORD_HEADER_LEN + len;
    }
    assert_true(ended);
    assert_int_equal(info.entries, count);
    *same = info.same_bounds;
    statsd_agg_set_position(a, info.seq, info.t);
    assert_int_equal(statsd_agg_check(a), TSDB_OK);
    return a;
}

static void snapshot(struct statsd_agg *a, int64_t t, struct collect *c,
                     struct tsdb_wal_buf *b, size_t chunk)
{
    struct statsd_capture *cap;
    struct statsd_snap_cursor cur = {0};
    int calls = 0;

    collect_reset(c);
    assert_int_equal(statsd_agg_flush(a, t, &cap), TSDB_OK);
    assert_int_equal(statsd_capture_emit(cap, collect_fn, c, NULL), TSDB_OK);
    while (!cur.done) {
        size_t before = b->len;
        assert_int_equal(statsd_capture_snapshot(cap, &cur, b, chunk), TSDB_OK);
        assert_true(b->len > before);
        calls++;
    }
    assert_true(calls >= 2); /* the end record always alone */
    statsd_capture_free(cap);
}

static void same_samples(const struct collect *x, const struct collect *y)
{
    assert_int_equal(x->n, y->n);
    for (size_t i = 0; i < x->n; i++) {
        const struct sample *s = find(y, x->v[i].series);
        assert_non_null(s);
        assert_int_equal(s->t, x->v[i].t);
        assert_true(double_bits(s->v) == double_bits(x->v[i].v));
    }
}

static void test_statsd_aggregate_snapshot_round_trip(void **state)
{
    static const char more[] =
        "c:0.1|c|@0.3\nt:3.3|ms|@0.7\ng:+0.1|g\nu:q|s\nh:1e-3|d\n"
        "new:1|c|#a:b\nr:1|c|T99";
    struct statsd_agg_options o;
    struct statsd_agg *a, *b;
    struct tsdb_wal_buf buf = {0};
    struct collect c1 = {0}, c2 = {0};
    bool same;
    char line[96];

    (void)state;
    statsd_agg_options_init(&o);
    o.idle_ttl_ms = 25000;
    assert_int_equal(statsd_agg_new(&o, &a), TSDB_OK);
    for (int i = 0; i < 300; i++) {
        snprintf(line, sizeof(line),
                 "c:%d.7|c|@0.3|#i:%d\nt:%d|ms|#i:%d\ng:-%d.1|g\nu:%d|s", i,
                 i % 37, i * 13, i % 5, i, i);
        feed(a, line, i * 10);
    }
    feed(a, "old:1|c", -100000); /* idle: dropped at this flush */
    feed(a, "old2:1|c", -100000);
    flush(a, -50000, &c1);
    snapshot(a, 10000, &c1, &buf, 256); /* small chunks: many calls */
    assert_true(is_stale(value(&c1, "old{}")));

    /* The loaded copy and the original go on identically, bit for bit. */
    b = load(&buf, &o, &same);
    assert_true(same);
    assert_int_equal(statsd_agg_series(b), statsd_agg_series(a));
    assert_int_equal(statsd_agg_seq(b), statsd_agg_seq(a));
    feed(a, more, 12000);
    feed(b, more, 12000);
    flush(a, 20000, &c1);
    flush(b, 20000, &c2);
    same_samples(&c1, &c2);
    flush(a, 40000, &c1); /* idle expiry works on loaded times too */
    flush(b, 40000, &c2);
    same_samples(&c1, &c2);
    statsd_agg_free(b);

    /* Other buckets: histograms restart at zero, the rest is kept. */
    o.buckets = (const double[]){1, 2};
    o.nbuckets = 2;
    b = load(&buf, &o, &same);
    assert_false(same);
    flush(b, 20000, &c2);
    assert_true(value(&c2, "t_count{i=\"0\"}") == 0);
    assert_true(value(&c2, "c{i=\"0\"}") > 0);
    statsd_agg_free(b);

    statsd_agg_free(a);
    tsdb_wal_buf_release(&buf);
    collect_reset(&c1);
    collect_reset(&c2);
}

static void test_statsd_aggregate_snapshot_damaged(void **state)
{
    struct statsd_agg *a = agg_new(0), *b = agg_new(0);
    struct statsd_snap_info info = {.nbuckets = 11, .same_bounds = true};
    struct tsdb_wal_buf buf = {0};
    struct collect c = {0};
    size_t off = 0;

    (void)state;
    feed(a, "c:1|c|#k:v\nt:1|ms\ng:1|g", 0);
    snapshot(a, 10000, &c, &buf, 1 << 20);

    /* Each entries record, cut anywhere or with a bad kind byte, is
     * corrupt and loads nothing it should not (ASan checks reads). */
    while (off < buf.len) {
        const uint8_t *h = buf.p + off, *p = h + TSDB_WAL_RECORD_HEADER_LEN;
        size_t len = (size_t)h[1] << 16 | (size_t)h[2] << 8 | h[3];

        if (h[0] == STATSD_REC_SNAP_ENTRIES) {
            for (size_t cut = 1; cut < len; cut++) {
                uint8_t *copy = malloc(cut);
                uint64_t n = 0;
                int rc;

                memcpy(copy, p, cut);
                rc = statsd_agg_load_entries(b, &info, copy, cut, false, &n);
                assert_true(rc == TSDB_OK || rc == TSDB_ECORRUPT);
                free(copy);
            }
            ((uint8_t *)p)[0] = 0x7f;
            uint64_t n = 0;
            assert_int_equal(
                statsd_agg_load_entries(b, &info, p, len, true, &n),
                TSDB_ECORRUPT);
        }
        off += TSDB_WAL_RECORD_HEADER_LEN + len;
    }
    assert_int_equal(statsd_agg_series(b), 0);
    statsd_agg_free(a);
    statsd_agg_free(b);
    tsdb_wal_buf_release(&buf);
    collect_reset(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_statsd_aggregate_counter_rates),
        cmocka_unit_test(test_statsd_aggregate_gauges),
        cmocka_unit_test(test_statsd_aggregate_timer_buckets),
        cmocka_unit_test(test_statsd_aggregate_histograms_unconverted),
        cmocka_unit_test(test_statsd_aggregate_custom_buckets),
        cmocka_unit_test(test_statsd_aggregate_sets),
        cmocka_unit_test(test_statsd_aggregate_set_many_members),
        cmocka_unit_test(test_statsd_aggregate_timestamped_passthrough),
        cmocka_unit_test(test_statsd_aggregate_idle_ttl_and_stale),
        cmocka_unit_test(test_statsd_aggregate_emitted_once_before_expiry),
        cmocka_unit_test(test_statsd_aggregate_kind_conflicts),
        cmocka_unit_test(test_statsd_aggregate_limits),
        cmocka_unit_test(test_statsd_aggregate_flush_time_must_advance),
        cmocka_unit_test(test_statsd_aggregate_cumulative_random),
        cmocka_unit_test(test_statsd_aggregate_snapshot_round_trip),
        cmocka_unit_test(test_statsd_aggregate_snapshot_damaged),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
