/*
 * Tests of tsdb/head.c: lookup by labels and id, sealing by sample count
 * and by aligned time window (negative timestamps included), and pending
 * chunk bookkeeping.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "testutil.h"
#include "tsdb/error.h"
#include "tsdb/head.h"

static struct head_series *add(struct head *h, uint64_t id, const char *l)
{
    struct head_series *s;
    assert_int_equal(
        head_add(h, id, id * 31, (const uint8_t *)l, strlen(l), INT64_MIN, &s),
        TSDB_OK);
    return s;
}

static void test_head_finds_by_labels_and_id(void **state)
{
    struct head h;
    char name[16];
    (void)state;

    assert_int_equal(head_init(&h, 120, 7200000), TSDB_OK);
    for (uint64_t id = 1; id <= 5000; id++) {
        snprintf(name, sizeof(name), "s%llu", (unsigned long long)id);
        add(&h, id, name);
    }
    assert_int_equal(h.count, 5000);
    assert_int_equal(h.next_id, 5001);
    assert_non_null(head_find(&h, 77 * 31, (const uint8_t *)"s77", 3));
    assert_null(head_find(&h, 77 * 31, (const uint8_t *)"s78", 3));
    assert_ptr_equal(head_get(&h, 77),
                     head_find(&h, 77 * 31, (const uint8_t *)"s77", 3));
    assert_null(head_get(&h, 999999));
    head_release(&h);
}

static void test_head_seals_by_count(void **state)
{
    struct head h;
    struct head_series *s;
    (void)state;

    assert_int_equal(head_init(&h, 10, 7200000), TSDB_OK);
    s = add(&h, 1, "a");
    for (int i = 0; i < 25; i++)
        assert_int_equal(head_append(&h, s, 1000 + i, i), TSDB_OK);
    assert_int_equal(s->npending, 2);
    assert_int_equal(s->open.count, 5);
    assert_int_equal(s->pending[0]->count, 10);
    assert_int_equal(s->pending[1]->mint, 1010);
    assert_ptr_equal(h.dirty, s);
    head_drop_pending(s, 1);
    assert_int_equal(s->npending, 1);
    assert_int_equal(s->pending[0]->mint, 1010);
    head_release(&h);
}

static void test_head_seals_at_window_edges(void **state)
{
    struct head h;
    struct head_series *s;
    (void)state;

    assert_int_equal(head_init(&h, 1000, 100), TSDB_OK);
    s = add(&h, 1, "a");
    /* Windows [-200,-100) [-100,0) [0,100): three chunks. */
    assert_int_equal(head_append(&h, s, -150, 1), TSDB_OK);
    assert_int_equal(head_append(&h, s, -101, 1), TSDB_OK);
    assert_int_equal(head_append(&h, s, -100, 1), TSDB_OK);
    assert_int_equal(head_append(&h, s, -1, 1), TSDB_OK);
    assert_int_equal(head_append(&h, s, 0, 1), TSDB_OK);
    assert_int_equal(s->npending, 2);
    assert_int_equal(s->pending[0]->maxt, -101);
    assert_int_equal(s->pending[1]->mint, -100);
    assert_int_equal(s->open_mint, 0);
    assert_int_equal(head_window(-1, 100), -1);
    assert_int_equal(head_window(-100, 100), -1);
    assert_int_equal(head_window(-101, 100), -2);
    head_release(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_head_finds_by_labels_and_id),
        cmocka_unit_test(test_head_seals_by_count),
        cmocka_unit_test(test_head_seals_at_window_edges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
