/*
 * Tests of statsd/journal.c: the worked example of storage-format.md
 * section 13.2.1 byte for byte, round trips of parsed lines of every shape,
 * flush markers, and damaged payloads (every truncation, bad codes), which must
 * decode to TSDB_ECORRUPT and never read out of bounds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "statsd/journal.h"
#include "testutil.h"
#include "tsdb/bytes.h"
#include "tsdb/format.h"

/* Lines captured from the parser, encoded as one batch. */
struct enc {
    struct tsdb_wal_buf b;
    size_t lines;
};

static int enc_line(void *ctx, const struct statsd_line *l)
{
    struct enc *e = ctx;

    e->lines++;
    return statsd_journal_put_line(&e->b, l);
}

static const struct statsd_parse_cb enc_cb = {enc_line, NULL};

/* Prints a line as the parse tests do, into out. */
static void print_line(const struct statsd_line *l, char *out, size_t cap)
{
    size_t n = 0;

    n += (size_t)snprintf(out + n, cap - n, "%llu %s %.*s{",
                          (unsigned long long)l->lineno,
                          statsd_type_name(l->type), (int)l->name_len, l->name);
    for (size_t i = 0; i < l->ntags; i++)
        n += (size_t)snprintf(out + n, cap - n, "%s%.*s=%.*s", i ? "," : "",
                              (int)l->tags[i].key_len, l->tags[i].key,
                              (int)l->tags[i].value_len, l->tags[i].value);
    n += (size_t)snprintf(out + n, cap - n, "} r=%a", l->rate);
    if (l->has_time)
        n += (size_t)snprintf(out + n, cap - n, " t=%lld",
                              (long long)l->time_ms);
    if (l->type == STATSD_SET)
        n += (size_t)snprintf(out + n, cap - n, " m=%.*s", (int)l->member_len,
                              l->member);
    for (size_t i = 0; i < l->nvalues; i++)
        n += (size_t)snprintf(out + n, cap - n, " %s%a",
                              l->values[i].delta ? "d" : "", l->values[i].v);
    assert_true(n < cap);
}

struct printed {
    char text[64][512];
    size_t n;
};

static int print_cb(void *ctx, const struct statsd_line *l)
{
    struct printed *p = ctx;

    assert_true(p->n < 64);
    print_line(l, p->text[p->n++], sizeof(p->text[0]));
    return TSDB_OK;
}

static void encode(const char *body, int64_t arrival, struct enc *e)
{
    struct statsd_parser p;

    memset(e, 0, sizeof(*e));
    assert_int_equal(statsd_journal_begin_batch(&e->b, arrival), TSDB_OK);
    statsd_parser_init(&p);
    assert_int_equal(statsd_parse(&p, body, strlen(body), &enc_cb, e), TSDB_OK);
    tsdb_wal_buf_end(&e->b);
}

/* Bytes from hex text as storage-format.md section 13.2.1 prints them ("10 00
 * 2e"). */
static size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = 0;

    while (*hex) {
        if (*hex == ' ' || *hex == '\n') {
            hex++;
            continue;
        }
        assert_true(n < cap);
        out[n++] = (uint8_t)strtoul((char[]){hex[0], hex[1], 0}, NULL, 16);
        hex += 2;
    }
    return n;
}

static void test_statsd_journal_worked_example(void **state)
{
    /* storage-format.md section 13.2.1, "Journal", worked example. */
    static const char batch[] =
        "10 00 00 2e 2f 4d 99 6a\n"       /* header */
        "00 00 01 8b cf e5 68 00\n"       /* arrival */
        "01 00 01\n"                      /* c, flags, line */
        "07 61 70 69 5f 72 65 71\n"       /* api_req */
        "01 03 65 6e 76 04 70 72 6f 64\n" /* env=prod */
        "3f e0 00 00 00 00 00 00\n"       /* rate 0.5 */
        "01 3f f0 00 00 00 00 00 00\n";   /* 1 value: 1.0 */
    static const char marker[] = "11 00 00 10 84 cb 60 f9\n"  /* header */
                                 "00 00 00 00 00 00 00 03\n"  /* seq 3 */
                                 "00 00 01 8b cf e5 8f 10\n"; /* time */
    struct tsdb_wal_buf m = {0};
    uint8_t want[64];
    size_t n;
    struct enc e;

    (void)state;
    encode("api.req:1|c|@0.5|#env:prod", INT64_C(1700000000000), &e);
    n = unhex(batch, want, sizeof(want));
    assert_int_equal(e.b.len, n);
    assert_memory_equal(e.b.p, want, n);
    tsdb_wal_buf_release(&e.b);

    assert_int_equal(statsd_journal_put_flush(&m, 3, INT64_C(1700000010000)),
                     TSDB_OK);
    n = unhex(marker, want, sizeof(want));
    assert_int_equal(m.len, n);
    assert_memory_equal(m.p, want, n);
    tsdb_wal_buf_release(&m);
}

static void test_statsd_journal_flush_marker(void **state)
{
    struct tsdb_wal_buf b = {0};
    uint64_t seq;
    int64_t t;

    (void)state;
    assert_int_equal(statsd_journal_put_flush(&b, 3, INT64_C(1700000010000)),
                     TSDB_OK);
    assert_int_equal(b.len, TSDB_WAL_RECORD_HEADER_LEN + STATSD_FLUSH_LEN);
    assert_int_equal(b.p[0], STATSD_REC_FLUSH);
    assert_int_equal(
        statsd_journal_get_flush(b.p + 8, STATSD_FLUSH_LEN, &seq, &t), TSDB_OK);
    assert_int_equal(seq, 3);
    assert_int_equal(t, INT64_C(1700000010000));
    assert_int_equal(statsd_journal_get_flush(b.p + 8, 15, &seq, &t),
                     TSDB_ECORRUPT);
    tsdb_wal_buf_release(&b);
}

/* Decodes a whole batch record into printed lines. */
static int decode(const struct tsdb_wal_buf *b, struct printed *out,
                  int64_t *arrival)
{
    static struct statsd_journal_line jl;
    const uint8_t *p = b->p + TSDB_WAL_RECORD_HEADER_LEN, *end = b->p + b->len;
    int rc = statsd_journal_get_batch(&p, end, arrival);

    while (rc == TSDB_OK && p < end) {
        rc = statsd_journal_get_line(&p, end, &jl);
        if (rc == TSDB_OK)
            print_cb(out, &jl.line);
    }
    return rc;
}

static void test_statsd_journal_round_trip(void **state)
{
    static const char body[] = "a:1|c\n"
                               "b.x:1:2:3|ms|@0.25|#z:1,a:2,flag\n"
                               "g:+1.5:-2:7|g|#k:v\n"
                               "s:fe80::1|s|@0.5\n"
                               "raw:5|c|T1700000000|@0.1\n"
                               "neg:-0|g\n"
                               "k:1|c:2|h|@0.5:3|d\n"
                               "u:1|c|#v:caf\xc3\xa9\n";
    struct statsd_parser p;
    struct printed direct = {0}, back = {0};
    struct enc e;
    int64_t arrival;

    (void)state;
    statsd_parser_init(&p);
    assert_int_equal(statsd_parse(&p, body, sizeof(body) - 1,
                                  &(struct statsd_parse_cb){print_cb, NULL},
                                  &direct),
                     TSDB_OK);
    encode(body, -5, &e);
    assert_int_equal(decode(&e.b, &back, &arrival), TSDB_OK);
    assert_int_equal(arrival, -5);
    assert_int_equal(back.n, direct.n);
    assert_int_equal(back.n, 10);
    for (size_t i = 0; i < back.n; i++)
        assert_string_equal(back.text[i], direct.text[i]);
    tsdb_wal_buf_release(&e.b);
}

static void test_statsd_journal_truncated(void **state)
{
    struct enc e;
    struct printed out;
    int64_t arrival;

    (void)state;
    encode("b.x:1:2:3|ms|@0.25|#z:1,a:2\ns:m|s\ng:+1|g\nr:1|c|T5", 7, &e);

    /* Every cut is either at an element boundary (fewer lines) or
     * corrupt; never a crash or a read past the cut (ASan). */
    for (size_t cut = TSDB_WAL_RECORD_HEADER_LEN; cut < e.b.len; cut++) {
        struct tsdb_wal_buf t = {0};
        int rc;

        assert_int_equal(tsdb_wal_buf_reserve(&t, cut), TSDB_OK);
        memcpy(t.p, e.b.p, cut);
        t.len = cut;
        memset(&out, 0, sizeof(out));
        rc = decode(&t, &out, &arrival);
        assert_true(rc == TSDB_OK || rc == TSDB_ECORRUPT);
        assert_true(out.n <= 4);
        tsdb_wal_buf_release(&t);
    }
    tsdb_wal_buf_release(&e.b);
}

static void test_statsd_journal_bad_codes(void **state)
{
    static struct statsd_journal_line jl;
    struct enc e;
    const uint8_t *p, *end;
    size_t elem = TSDB_WAL_RECORD_HEADER_LEN + STATSD_BATCH_HEADER_LEN;

    (void)state;
    encode("a:1|c|@0.5", 0, &e);
    end = e.b.p + e.b.len;

    e.b.p[elem] = 9; /* unknown type */
    p = e.b.p + elem;
    assert_int_equal(statsd_journal_get_line(&p, end, &jl), TSDB_ECORRUPT);
    e.b.p[elem] = STATSD_JT_COUNTER;

    e.b.p[elem + 1] = 0x02; /* unknown flag */
    p = e.b.p + elem;
    assert_int_equal(statsd_journal_get_line(&p, end, &jl), TSDB_ECORRUPT);
    e.b.p[elem + 1] = 0;

    /* rate 2.0: type, flags, line, name "a", no tags, then the rate */
    put_be64(e.b.p + elem + 6, double_bits(2.0));
    p = e.b.p + elem;
    assert_int_equal(statsd_journal_get_line(&p, end, &jl), TSDB_ECORRUPT);
    put_be64(e.b.p + elem + 6, double_bits(0.5));
    p = e.b.p + elem;
    assert_int_equal(statsd_journal_get_line(&p, end, &jl), TSDB_OK);
    assert_true(p == end);
    tsdb_wal_buf_release(&e.b);
}

static void test_statsd_journal_random_bytes(void **state)
{
    static struct statsd_journal_line jl;
    struct test_rng rng;
    uint8_t buf[256];

    (void)state;
    test_rng_init(&rng, "test_statsd_journal_random_bytes", 20240611);
    for (int round = 0; round < 20000; round++) {
        size_t n = test_rng_below(&rng, sizeof(buf));
        const uint8_t *p = buf, *end;
        uint8_t *copy;

        for (size_t i = 0; i < n; i++)
            buf[i] = (uint8_t)test_rng_next(&rng);
        if (n > 0)
            buf[0] = (uint8_t)(1 + test_rng_below(&rng, 6));
        if (n > 1)
            buf[1] &= 1;

        /* An exact-size heap copy, so that ASan sees any overread. */
        copy = malloc(n ? n : 1);
        memcpy(copy, buf, n);
        p = copy;
        end = copy + n;
        while (p < end && statsd_journal_get_line(&p, end, &jl) == TSDB_OK)
            assert_true(p <= end);
        free(copy);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_statsd_journal_worked_example),
        cmocka_unit_test(test_statsd_journal_flush_marker),
        cmocka_unit_test(test_statsd_journal_round_trip),
        cmocka_unit_test(test_statsd_journal_truncated),
        cmocka_unit_test(test_statsd_journal_bad_codes),
        cmocka_unit_test(test_statsd_journal_random_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
