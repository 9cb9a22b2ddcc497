/* Tests of tsdb/crc32c.c against the standard check value and against a
 * bit-at-a-time reference, for every length and alignment up to 64. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdint.h>

#include "tsdb/crc32c.h"

static uint32_t reference(const uint8_t *p, size_t len)
{
    uint32_t c = 0xffffffffu;
    while (len--) {
        c ^= *p++;
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1)));
    }
    return ~c;
}

static void test_crc32c_check_value(void **state)
{
    (void)state;
    assert_int_equal(crc32c(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(crc32c(0, "", 0), 0);
}

static void test_crc32c_matches_reference_and_chains(void **state)
{
    uint8_t buf[80];
    (void)state;

    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (uint8_t)(i * 37 + 11);
    for (size_t off = 0; off < 8; off++)
        for (size_t len = 0; len + off <= 72; len++) {
            uint32_t whole = crc32c(0, buf + off, len);
            assert_int_equal(whole, reference(buf + off, len));
            assert_int_equal(crc32c(crc32c(0, buf + off, len / 2),
                                    buf + off + len / 2, len - len / 2),
                             whole);
        }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c_check_value),
        cmocka_unit_test(test_crc32c_matches_reference_and_chains),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
