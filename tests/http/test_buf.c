/*
 * Tests for http/buf.c: growth up to the maximum and never past it, the
 * sticky error, reset and detach.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "http/buf.h"

static void test_buf_grows_to_its_maximum(void **state)
{
    struct http_buf b;
    char big[300];
    (void)state;

    memset(big, 'x', sizeof(big));
    http_buf_init(&b, 1000);
    for (int i = 0; i < 3; i++)
        assert_int_equal(http_buf_add(&b, big, sizeof(big)), TSDB_OK);
    assert_int_equal(b.len, 900);
    assert_true(b.cap <= 1001);
    assert_int_equal(b.p[900], '\0');
    assert_int_equal(http_buf_add(&b, big, 101), TSDB_EFULL);
    assert_int_equal(b.len, 900);

    /* Sticky: even a fitting append does nothing now. */
    assert_int_equal(http_buf_puts(&b, "a"), TSDB_EFULL);
    assert_int_equal(b.len, 900);
    http_buf_reset(&b);
    assert_int_equal(b.err, TSDB_OK);
    assert_int_equal(http_buf_printf(&b, "%d-%s", 42, "x"), TSDB_OK);
    assert_string_equal(b.p, "42-x");
    http_buf_release(&b);
}

static void test_buf_printf_long_and_over(void **state)
{
    struct http_buf b;
    char want[600];
    (void)state;

    memset(want, 'y', 599);
    want[599] = '\0';
    http_buf_init(&b, 600);
    assert_int_equal(http_buf_printf(&b, "%s", want), TSDB_OK);
    assert_string_equal(b.p, want);
    assert_int_equal(http_buf_printf(&b, "%s", "zz"), TSDB_EFULL);
    assert_int_equal(b.len, 599);
    http_buf_release(&b);
}

static void test_buf_detach(void **state)
{
    struct http_buf b;
    size_t len;
    char *p;
    (void)state;

    http_buf_init(&b, 64);
    assert_null(http_buf_detach(&b, &len));
    assert_int_equal(len, 0);
    http_buf_puts(&b, "abc");
    p = http_buf_detach(&b, &len);
    assert_string_equal(p, "abc");
    assert_int_equal(len, 3);
    assert_null(b.p);
    free(p);
    http_buf_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf_grows_to_its_maximum),
        cmocka_unit_test(test_buf_printf_long_and_over),
        cmocka_unit_test(test_buf_detach),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
