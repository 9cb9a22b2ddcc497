/*
 * Shortest round-trip digits against a reference that is right by
 * construction (printf's %e at 1 to 17 digits, the first that strtod reads
 * back): on random bit patterns across every exponent, on the kinds of
 * values metrics hold, and on edge cases (subnormals, powers of two,
 * the largest double).  The answer must read back bit for bit, be no
 * longer than the reference, and equal it when as long (both are then
 * the closest decimal of that length).  At powers of two the interval's
 * lower half is narrower, and a shorter answer than the reference's may
 * exist on the wide side: that is Go's answer too.
 */
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/shortest.h"
#include "query/strconv.h"
#include "testutil.h"

static int reference(double v, char *digits, int *exp10)
{
    char e[40];
    int nd = 0;
    const char *p;

    for (int prec = 1; prec <= 17; prec++) {
        snprintf(e, sizeof(e), "%.*e", prec - 1, v);
        if (prec == 17 || strtod(e, NULL) == v)
            break;
    }
    for (p = e; *p != 'e'; p++)
        if (*p >= '0' && *p <= '9')
            digits[nd++] = *p;
    *exp10 = atoi(p + 1);
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    return nd;
}

static unsigned long checked, shorter;

static void check(double v)
{
    char got[24], want[24], text[64];
    int ng, nw, eg, ew;

    if (!isfinite(v) || v <= 0)
        return;
    ng = query_shortest(v, got, &eg);
    nw = reference(v, want, &ew);
    snprintf(text, sizeof(text), "%c.%.*se%d", got[0], ng - 1, got + 1, eg);
    if (strtod(text, NULL) != v)
        fail_msg("%.17g: %s does not read back", v, text);
    if (ng > nw || (ng == nw && (eg != ew || memcmp(got, want, ng) != 0)))
        fail_msg("%.17g: got %.*s e%d, reference %.*s e%d", v, ng, got, eg, nw,
                 want, ew);
    shorter += ng < nw;
    checked++;
}

static void random_bit_patterns(void **state)
{
    struct test_rng rng;

    (void)state;
    test_rng_init(&rng, "shortest", 0);
    for (int i = 0; i < 400000; i++) {
        uint64_t bits = test_rng_next(&rng) & ~(1ULL << 63);
        double v;

        memcpy(&v, &bits, sizeof(v));
        check(v);
    }
}

static void metric_like_values(void **state)
{
    struct test_rng rng;

    (void)state;
    test_rng_init(&rng, "shortest-metrics", 0);
    for (int i = 0; i < 200000; i++) {
        double a = (double)test_rng_below(&rng, 1000000);
        double b = (double)(test_rng_below(&rng, 999) + 1);

        check(a / b);                /* rates */
        check(a / 1000);             /* seconds from ms */
        check((a + 0.5) * 1e-9 * b); /* tiny */
        check(a * 1e15 * b);         /* huge */
    }
}

static void edge_cases(void **state)
{
    (void)state;
    check(DBL_MIN);
    check(DBL_MAX);
    check(DBL_TRUE_MIN);
    check(5e-324);
    check(1.7976931348623157e308);
    check(0.1);
    check(0.3);
    check(1.0 / 3);
    check(2.0 / 3);
    check(123.456);
    check(9007199254740993.0);
    for (int e = -1074; e <= 1023; e++) {
        check(ldexp(1, e));
        check(nextafter(ldexp(1, e), 0));
        check(nextafter(ldexp(1, e), INFINITY));
    }
    for (int e = -300; e <= 300; e++) {
        double p = pow(10, e);

        check(p);
        check(nextafter(p, 0));
        check(nextafter(p, INFINITY));
    }
    /* The formatter around it: Go's texts. */
    {
        char out[QUERY_FLOAT_MAX];

        out[query_format_float(out, 1e21, QUERY_FLOAT_JSON)] = '\0';
        assert_string_equal(out, "1e+21");
        out[query_format_float(out, 1e-7, QUERY_FLOAT_JSON)] = '\0';
        assert_string_equal(out, "1e-07");
        out[query_format_float(out, 183.33333333333334, QUERY_FLOAT_JSON)] =
            '\0';
        assert_string_equal(out, "183.33333333333334");
        out[query_format_float(out, 0.1 + 0.2, QUERY_FLOAT_PLAIN)] = '\0';
        assert_string_equal(out, "0.30000000000000004");
        out[query_format_float(out, 5e-324, QUERY_FLOAT_PLAIN)] = '\0';
        assert_int_equal(strlen(out), 326);
    }
    print_message("%lu values checked, %lu shorter than the reference\n",
                  checked, shorter);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(edge_cases),
        cmocka_unit_test(metric_like_values),
        cmocka_unit_test(random_bit_patterns),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
