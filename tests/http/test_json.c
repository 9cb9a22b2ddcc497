/*
 * Tests for http/json.c: string escaping and the error envelope.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <string.h>

#include "http/json.h"

static void test_json_escapes_strings(void **state)
{
    struct http_buf b;
    const char s[] = "a\"b\\c\nd\te\x01\x7f\xc3\xa9";
    (void)state;

    http_buf_init(&b, 256);
    http_json_string(&b, s, sizeof(s) - 1);
    assert_string_equal(b.p, "\"a\\\"b\\\\c\\nd\\te\\u0001\x7f\xc3\xa9\"");
    http_buf_reset(&b);
    http_json_string(&b, "", 0);
    assert_string_equal(b.p, "\"\"");

    /* Invalid UTF-8 (a lone continuation byte, a cut sequence, an
     * overlong form, a surrogate) becomes U+FFFD, byte by byte. */
    http_buf_reset(&b);
    http_json_str(&b, "a\x80"
                      "b\xe2\x82\xc0\xaf\xed\xa0\x80\xf0\x9f\x98\x80");
    assert_string_equal(b.p, "\"a\\ufffdb\\ufffd\\ufffd\\ufffd\\ufffd"
                             "\\ufffd\\ufffd\\ufffd\xf0\x9f\x98\x80\"");
    http_buf_release(&b);
}

static void test_json_error_envelope(void **state)
{
    struct http_buf b;
    (void)state;

    http_buf_init(&b, 256);
    http_json_error(&b, "bad_data", "invalid parameter \"end\"");
    assert_string_equal(b.p, "{\"status\":\"error\",\"errorType\":"
                             "\"bad_data\",\"error\":\"invalid parameter "
                             "\\\"end\\\"\"}\n");
    http_buf_reset(&b);
    http_json_error_open(&b, "internal", "x");
    http_buf_puts(&b, ",\"data\":{}}");
    assert_string_equal(b.p, "{\"status\":\"error\",\"errorType\":"
                             "\"internal\",\"error\":\"x\",\"data\":{}}");
    http_buf_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_escapes_strings),
        cmocka_unit_test(test_json_error_envelope),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
