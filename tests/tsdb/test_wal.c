/*
 * Tests of tsdb/wal.c: records round-trip through segments, rotation and
 * removal, and the crash rules: a torn tail of the last segment is cut at
 * every possible length, damage anywhere else is an error.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"
#include "tsdb/error.h"
#include "tsdb/format.h"
#include "tsdb/wal.h"

struct seen {
    size_t records;
    size_t bytes;
    uint8_t last_type;
};

static int count_record(void *ctx, uint8_t type, const uint8_t *p, size_t len)
{
    struct seen *s = ctx;

    /* Payload byte i of record r is (r + i) & 0xff: check it. */
    for (size_t i = 0; i < len; i++)
        if (p[i] != (uint8_t)(s->records + i))
            return -1;
    s->records++;
    s->bytes += len;
    s->last_type = type;
    return 0;
}

/* Writes n records, record r of r * 7 bytes, one write each. */
static void write_records(struct tsdb_wal *w, size_t n)
{
    struct tsdb_wal_buf b = {0};

    for (size_t r = 0; r < n; r++) {
        tsdb_wal_buf_reset(&b);
        assert_int_equal(tsdb_wal_buf_begin(&b, TSDB_WAL_REC_SAMPLES), 0);
        assert_int_equal(tsdb_wal_buf_reserve(&b, r * 7), 0);
        for (size_t i = 0; i < r * 7; i++)
            b.p[b.len++] = (uint8_t)(r + i);
        tsdb_wal_buf_end(&b);
        assert_int_equal(tsdb_wal_write(w, b.p, b.len), TSDB_OK);
    }
    tsdb_wal_buf_release(&b);
}

static char *segment(const char *dir, uint64_t seq)
{
    char *p;
    assert_true(asprintf(&p, "%s/%016llx.wal", dir, (unsigned long long)seq) >
                0);
    return p;
}

static void test_wal_records_round_trip_across_rotation(void **state)
{
    char *dir = test_tmpdir("wal");
    struct tsdb_wal_replay_stats st;
    struct tsdb_wal *w;
    struct seen s = {0};
    (void)state;

    /* A 4 KiB segment limit forces many rotations. */
    assert_int_equal(tsdb_wal_open(dir, 1, 0, 4096, &w), TSDB_OK);
    write_records(w, 100);
    assert_true(tsdb_wal_size(w) > 100 * 8);
    tsdb_wal_close(w);
    assert_int_equal(tsdb_wal_replay(dir, count_record, &s, &st), TSDB_OK);
    assert_int_equal(s.records, 100);
    assert_true(st.segments > 5);
    assert_int_equal(st.torn_bytes, 0);
    assert_int_equal(s.last_type, TSDB_WAL_REC_SAMPLES);
    test_rmdir(dir);
}

static void test_wal_remove_upto_keeps_newer(void **state)
{
    char *dir = test_tmpdir("walrm");
    struct tsdb_wal_replay_stats st;
    struct tsdb_wal *w;
    struct seen s = {0};
    uint64_t closed;
    (void)state;

    assert_int_equal(tsdb_wal_open(dir, 1, 1000, 1 << 20, &w), TSDB_OK);
    write_records(w, 10);
    assert_int_equal(tsdb_wal_rotate(w, &closed), TSDB_OK);
    assert_int_equal(closed, 1);
    assert_int_equal(tsdb_wal_remove_upto(w, closed), TSDB_OK);
    tsdb_wal_close(w);
    assert_int_equal(tsdb_wal_replay(dir, count_record, &s, &st), TSDB_OK);
    assert_int_equal(s.records, 0);
    assert_int_equal(st.last_seq, 2);
    test_rmdir(dir);
}

/* Cutting the last segment anywhere loses only the cut record(s). */
static void test_wal_torn_tail_cut_at_every_length(void **state)
{
    char *dir = test_tmpdir("torn");
    struct tsdb_wal_replay_stats st;
    struct tsdb_wal *w;
    struct stat sb;
    char *path = segment(dir, 1);
    off_t full;
    (void)state;

    assert_int_equal(tsdb_wal_open(dir, 1, 0, 1 << 20, &w), TSDB_OK);
    write_records(w, 12);
    tsdb_wal_close(w);
    assert_int_equal(stat(path, &sb), 0);
    full = sb.st_size;
    for (off_t len = full - 1; len >= 0; len--) {
        struct seen s = {0};
        assert_int_equal(truncate(path, len), 0);
        assert_int_equal(tsdb_wal_replay(dir, count_record, &s, &st), TSDB_OK);
        assert_true(s.records <= 12);
        /* The file now ends at the last whole record. */
        assert_int_equal(stat(path, &sb), 0);
        assert_true(sb.st_size <= len);
    }
    free(path);
    test_rmdir(dir);
}

static void flip_byte(const char *path, off_t at)
{
    int fd = open(path, O_RDWR);
    uint8_t b;

    assert_true(fd >= 0);
    assert_int_equal(pread(fd, &b, 1, at), 1);
    b ^= 0x40;
    assert_int_equal(pwrite(fd, &b, 1, at), 1);
    close(fd);
}

static void test_wal_damage_before_last_segment_is_corrupt(void **state)
{
    char *dir = test_tmpdir("walbad");
    struct tsdb_wal_replay_stats st;
    struct tsdb_wal *w;
    struct seen s = {0};
    char *first = segment(dir, 1);
    (void)state;

    assert_int_equal(tsdb_wal_open(dir, 1, 0, 1 << 20, &w), TSDB_OK);
    write_records(w, 5);
    assert_int_equal(tsdb_wal_rotate(w, NULL), TSDB_OK);
    write_records(w, 5);
    tsdb_wal_close(w);
    flip_byte(first, TSDB_WAL_HEADER_LEN + 40);
    assert_int_equal(tsdb_wal_replay(dir, count_record, &s, &st),
                     TSDB_ECORRUPT);
    free(first);
    test_rmdir(dir);
}

static void test_wal_bit_flip_in_last_segment_cuts_there(void **state)
{
    char *dir = test_tmpdir("walflip");
    struct tsdb_wal_replay_stats st;
    struct tsdb_wal *w;
    struct seen s = {0};
    char *path = segment(dir, 1);
    (void)state;

    assert_int_equal(tsdb_wal_open(dir, 1, 0, 1 << 20, &w), TSDB_OK);
    write_records(w, 6); /* records of 0, 7, 14, 21, 28, 35 bytes */
    tsdb_wal_close(w);
    /* Inside record 3's payload: records 0..2 survive. */
    flip_byte(path, TSDB_WAL_HEADER_LEN + 3 * 8 + 21 + 8 + 5);
    assert_int_equal(tsdb_wal_replay(dir, count_record, &s, &st), TSDB_OK);
    assert_int_equal(s.records, 3);
    assert_true(st.torn_bytes > 0);
    free(path);
    test_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wal_records_round_trip_across_rotation),
        cmocka_unit_test(test_wal_remove_upto_keeps_newer),
        cmocka_unit_test(test_wal_torn_tail_cut_at_every_length),
        cmocka_unit_test(test_wal_damage_before_last_segment_is_corrupt),
        cmocka_unit_test(test_wal_bit_flip_in_last_segment_cuts_there),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
