/*
 * Tests for tsdb/labels.c: canonical form, validation messages and limits,
 * the canonical encoding (golden bytes from storage-format.md section 6.2.1),
 * decoding of damaged bytes, and Prometheus-style formatting.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tsdb/error.h"
#include "tsdb/labels.h"

#define SEED 0x5eed1abe15ULL

static uint64_t rng_state;

static uint64_t rng(void)
{
    /* splitmix64: small, and the same sequence on every platform. */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* The worked example of storage-format.md section 6.2.1: up{job="api"}. */
static const uint8_t golden[] = {
    0x08, '_', '_',  'n', 'a', 'm', 'e',  '_', '_', 0x02,
    'u',  'p', 0x03, 'j', 'o', 'b', 0x03, 'a', 'p', 'i',
};
#define GOLDEN_HASH 0x455e9d47d8480df4ULL

static int normalize(struct tsdb_label *v, size_t *n, char *err, size_t errlen)
{
    return tsdb_labels_normalize(v, n, err, errlen);
}

static void test_labels_normalize_sorts_and_drops_empty(void **state)
{
    struct tsdb_label v[] = {
        {"zone", "eu"},
        {"__name__", "up"},
        {"empty", ""},
        {"job", "api"},
    };
    size_t n = 4;
    char err[256];

    (void)state;
    assert_int_equal(normalize(v, &n, err, sizeof(err)), TSDB_OK);
    assert_int_equal(n, 3);
    assert_string_equal(v[0].name, "__name__");
    assert_string_equal(v[1].name, "job");
    assert_string_equal(v[2].name, "zone");
    assert_string_equal(err, "");
}

static void test_labels_normalize_rejects_duplicates(void **state)
{
    struct tsdb_label v[] = {{"__name__", "up"}, {"job", "a"}, {"job", "b"}};
    size_t n = 3;
    char err[256];

    (void)state;
    assert_int_equal(normalize(v, &n, err, sizeof(err)), TSDB_EINVAL);
    assert_string_equal(err, "duplicate label name \"job\" in series "
                             "up{job=\"b\",...}");
}

static void test_labels_normalize_empty_value_is_not_duplicate(void **state)
{
    struct tsdb_label v[] = {{"job", ""}, {"job", "b"}};
    size_t n = 2;

    (void)state;
    assert_int_equal(normalize(v, &n, NULL, 0), TSDB_OK);
    assert_int_equal(n, 1);
}

static void test_labels_normalize_rejects_no_labels(void **state)
{
    struct tsdb_label v[] = {{"__name__", ""}, {"job", ""}};
    size_t n = 2;
    char err[256];

    (void)state;
    assert_int_equal(normalize(v, &n, err, sizeof(err)), TSDB_EINVAL);
    assert_int_equal(n, 0);
    assert_string_equal(err, "series has no labels with a non-empty value");
    n = 0;
    assert_int_equal(normalize(v, &n, err, sizeof(err)), TSDB_EINVAL);
}

static void test_labels_normalize_bad_metric_name(void **state)
{
    struct tsdb_label v[] = {{"__name__", "1up"}, {"job", "a"}};
    size_t n = 2;
    char err[256];

    (void)state;
    assert_int_equal(normalize(v, &n, err, sizeof(err)), TSDB_EINVAL);
    assert_string_equal(err, "invalid metric name \"1up\" (must match "
                             "[a-zA-Z_:][a-zA-Z0-9_:]*) in series "
                             "1up{job=\"a\"}");
}

static void test_labels_normalize_bad_label_name(void **state)
{
    struct tsdb_label v[] = {{"__name__", "up"}, {"a-b", "x"}};
    size_t n = 2;
    char err[256];

    (void)state;
    assert_int_equal(normalize(v, &n, err, sizeof(err)), TSDB_EINVAL);
    assert_string_equal(err, "invalid label name \"a-b\" (must match "
                             "[a-zA-Z_][a-zA-Z0-9_]*) in series "
                             "up{a-b=\"x\"}");
}

static void test_labels_name_rules(void **state)
{
    (void)state;
    assert_true(tsdb_metric_name_valid("a:b_c9", 6));
    assert_true(tsdb_metric_name_valid(":x", 2));
    assert_true(tsdb_metric_name_valid("_", 1));
    assert_false(tsdb_metric_name_valid("9a", 2));
    assert_false(tsdb_metric_name_valid("", 0));
    assert_false(tsdb_metric_name_valid("a.b", 3));
    assert_false(tsdb_metric_name_valid("a\0b", 3));
    assert_true(tsdb_label_name_valid("__name__", 8));
    assert_true(tsdb_label_name_valid("A_9", 3));
    assert_false(tsdb_label_name_valid("a:b", 3));
    assert_false(tsdb_label_name_valid("9", 1));
    assert_false(tsdb_label_name_valid("", 0));
    assert_false(tsdb_label_name_valid("\xc3\xa9", 2));
}

static void test_labels_limit_value_length(void **state)
{
    char value[413], err[256];
    struct tsdb_label v[] = {
        {"__name__", "http_requests_total"}, {"path", value}, {"z", "1"}};
    size_t n = 3;

    (void)state;
    memset(value, 'a', 412);
    value[0] = '/';
    value[380] = '\0';
    assert_int_equal(normalize(v, &n, err, sizeof(err)), TSDB_OK);
    value[380] = 'a';
    value[412] = '\0';
    n = 3;
    assert_int_equal(normalize(v, &n, err, sizeof(err)), TSDB_ELIMIT);
    assert_string_equal(err, "label value of \"path\" is 412 bytes, over the "
                             "limit of 380 bytes, in series "
                             "http_requests_total{path=\"/aaaaaaaaaaaaaaaaaaa"
                             "aaaa...\",...}");
}

static void test_labels_limit_metric_name_length(void **state)
{
    char name[382], err[256];
    struct tsdb_label v[] = {{"__name__", name}};
    size_t n = 1;

    (void)state;
    memset(name, 'm', 381);
    name[381] = '\0';
    assert_int_equal(normalize(v, &n, err, sizeof(err)), TSDB_ELIMIT);
    assert_non_null(strstr(err, "metric name is 381 bytes, over the limit "
                                "of 380 bytes, in series mmmm"));
    name[380] = '\0';
    n = 1;
    assert_int_equal(normalize(v, &n, err, sizeof(err)), TSDB_OK);
}

static void test_labels_limit_name_length(void **state)
{
    char name[130], err[512];
    struct tsdb_label v[] = {{"__name__", "up"}, {name, "x"}};
    size_t n = 2;

    (void)state;
    memset(name, 'n', 129);
    name[129] = '\0';
    assert_int_equal(normalize(v, &n, err, sizeof(err)), TSDB_ELIMIT);
    assert_non_null(strstr(err, "label name \"nnnn"));
    assert_non_null(strstr(err, "...\" is 129 bytes, over the limit of 128 "
                                "bytes, in series up{nnn"));
    name[128] = '\0';
    n = 2;
    assert_int_equal(normalize(v, &n, err, sizeof(err)), TSDB_OK);
}

static void test_labels_limit_count(void **state)
{
    struct tsdb_label v[TSDB_MAX_LABELS + 1];
    char names[TSDB_MAX_LABELS + 1][8], err[256];
    size_t n = TSDB_MAX_LABELS + 1;

    (void)state;
    for (size_t i = 0; i < n; i++) {
        snprintf(names[i], sizeof(names[i]), "l%02u", (unsigned)(i % 100));
        v[i].name = names[i];
        v[i].value = "v";
    }
    assert_int_equal(normalize(v, &n, err, sizeof(err)), TSDB_ELIMIT);
    assert_string_equal(err, "series has 65 labels, over the limit of 64 "
                             "labels, in series {l00=\"v\",...}");
    n = TSDB_MAX_LABELS;
    assert_int_equal(normalize(v, &n, err, sizeof(err)), TSDB_OK);
}

static void test_labels_invalid_utf8(void **state)
{
    static const char *bad[] = {
        "a\xff",            /* never valid */
        "\xc0\xaf",         /* overlong '/' */
        "\xe0\x80\xaf",     /* overlong, 3 bytes */
        "\xed\xa0\x80",     /* surrogate U+D800 */
        "\xf4\x90\x80\x80", /* past U+10FFFF */
        "ab\xe2\x82",       /* cut sequence */
        "\x80",             /* lone continuation */
    };
    struct tsdb_label v[2] = {{"__name__", "up"}, {"v", NULL}};
    char err[256];
    size_t n;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        v[1].value = bad[i];
        n = 2;
        assert_int_equal(normalize(v, &n, err, sizeof(err)), TSDB_EINVAL);
        assert_non_null(strstr(err, "label value of \"v\" is not valid "
                                    "UTF-8"));
    }
    v[1].value = "ab\xe2\x82";
    n = 2;
    normalize(v, &n, err, sizeof(err));
    assert_string_equal(err, "label value of \"v\" is not valid UTF-8 "
                             "(byte 2) in series up{v=\"ab\\xe2\\x82\"}");

    v[1].value = "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80";
    n = 2;
    assert_int_equal(normalize(v, &n, err, sizeof(err)), TSDB_OK);
}

static void test_labels_error_buffer_small(void **state)
{
    struct tsdb_label v[] = {{"__name__", "up"}, {"a", "1"}, {"a", "2"}};
    size_t n = 3;
    char err[12];

    (void)state;
    assert_int_equal(normalize(v, &n, err, sizeof(err)), TSDB_EINVAL);
    assert_string_equal(err, "duplicat...");
    n = 3;
    assert_int_equal(normalize(v, &n, NULL, 0), TSDB_EINVAL);
}

static void test_labels_encode_golden(void **state)
{
    struct tsdb_label v[] = {{"job", "api"}, {"__name__", "up"}};
    uint8_t out[64];
    size_t n = 2, len;

    (void)state;
    assert_int_equal(normalize(v, &n, NULL, 0), TSDB_OK);
    assert_int_equal(tsdb_labels_encode(v, n, out, sizeof(out), &len), TSDB_OK);
    assert_int_equal(len, sizeof(golden));
    assert_memory_equal(out, golden, sizeof(golden));
    assert_true(tsdb_labels_hash(out, len) == GOLDEN_HASH);

    /* Exactly enough room is enough; one byte less is not. */
    assert_int_equal(tsdb_labels_encode(v, n, out, len, &len), TSDB_OK);
    assert_int_equal(tsdb_labels_encode(v, n, out, len - 1, &len), TSDB_EFULL);
}

static void random_value(char *buf, size_t len)
{
    static const char *pieces[] = {
        "a",  "Z",        "\"",           "\\",
        "\n", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80",
        " "};
    size_t at = 0, k;

    while (at < len) {
        k = rng() % (sizeof(pieces) / sizeof(pieces[0]));
        if (at + strlen(pieces[k]) > len)
            k = 0;
        memcpy(buf + at, pieces[k], strlen(pieces[k]));
        at += strlen(pieces[k]);
    }
    buf[at] = '\0';
}

static void test_labels_roundtrip_random(void **state)
{
    static char names[TSDB_MAX_LABELS][TSDB_MAX_LABEL_NAME + 1];
    static char values[TSDB_MAX_LABELS][TSDB_MAX_LABEL_VALUE + 1];
    static uint8_t enc[TSDB_MAX_LABELS_BYTES], enc2[TSDB_MAX_LABELS_BYTES];
    struct tsdb_label v[TSDB_MAX_LABELS];
    struct tsdb_labels ls;
    size_t n, len, len2, nlen;

    (void)state;
    rng_state = SEED;
    printf("test_labels_roundtrip_random seed %#llx\n",
           (unsigned long long)SEED);
    for (int iter = 0; iter < 2000; iter++) {
        n = 1 + rng() % TSDB_MAX_LABELS;
        for (size_t i = 0; i < n; i++) {
            nlen = 1 + rng() % (iter % 10 == 0 ? TSDB_MAX_LABEL_NAME : 8);
            names[i][0] = (char)('a' + i % 26);
            for (size_t j = 1; j < nlen; j++)
                names[i][j] = "abcxyz_019AZ"[rng() % 12];
            names[i][nlen] = '\0';
            snprintf(names[i] + (nlen > 3 ? nlen - 2 : nlen), 3, "%02u",
                     (unsigned)(i % 100));
            random_value(values[i],
                         1 + rng() %
                                 (iter % 10 == 0 ? TSDB_MAX_LABEL_VALUE : 12));
            v[i].name = names[i];
            v[i].value = values[i];
        }
        assert_int_equal(normalize(v, &n, NULL, 0), TSDB_OK);
        assert_int_equal(tsdb_labels_encode(v, n, enc, sizeof(enc), &len),
                         TSDB_OK);
        assert_int_equal(tsdb_labels_decode(enc, len, &ls), TSDB_OK);
        assert_int_equal(ls.n, n);
        for (size_t i = 0; i < n; i++) {
            assert_string_equal(ls.v[i].name, v[i].name);
            assert_string_equal(ls.v[i].value, v[i].value);
            assert_string_equal(tsdb_labels_get(&ls, v[i].name), v[i].value);
        }
        assert_null(tsdb_labels_get(&ls, "~none"));
        assert_int_equal(
            tsdb_labels_encode(ls.v, ls.n, enc2, sizeof(enc2), &len2), TSDB_OK);
        assert_int_equal(len2, len);
        assert_memory_equal(enc2, enc, len);
        tsdb_labels_release(&ls);
    }
}

static void expect_corrupt(const uint8_t *p, size_t len)
{
    struct tsdb_labels ls;

    assert_int_equal(tsdb_labels_decode(p, len, &ls), TSDB_ECORRUPT);
    assert_null(ls.v);
    tsdb_labels_release(&ls);
}

static void test_labels_decode_corrupt_cases(void **state)
{
    static const uint8_t unsorted[] = {1, 'b', 1, 'x', 1, 'a', 1, 'y'};
    static const uint8_t dup[] = {1, 'a', 1, 'x', 1, 'a', 1, 'y'};
    static const uint8_t empty_value[] = {1, 'a', 0};
    static const uint8_t empty_name[] = {0, 1, 'x'};
    static const uint8_t long_varint[] = {0x81, 0x00, 'a', 1, 'x'};
    static const uint8_t nul_value[] = {1, 'a', 2, 'x', 0};
    static const uint8_t bad_utf8[] = {1, 'a', 1, 0xff};
    static const uint8_t bad_name[] = {1, '-', 1, 'x'};
    static const uint8_t bad_metric[] = {8,   '_', '_', 'n', 'a', 'm',
                                         'e', '_', '_', 1,   '9'};
    static const uint8_t prefix_order[] = {2, 'a', 'b', 1, 'x', 1, 'a', 1, 'y'};
    static const uint8_t huge_len[] = {1, 'a', 0xff, 0xff, 0xff, 0xff, 0x0f};
    static uint8_t many[(TSDB_MAX_LABELS + 1) * 5];
    struct tsdb_labels ls;

    (void)state;
    expect_corrupt(golden, 0);
    assert_int_equal(tsdb_labels_decode(NULL, 0, &ls), TSDB_ECORRUPT);
    expect_corrupt(unsorted, sizeof(unsorted));
    expect_corrupt(dup, sizeof(dup));
    expect_corrupt(empty_value, sizeof(empty_value));
    expect_corrupt(empty_name, sizeof(empty_name));
    expect_corrupt(long_varint, sizeof(long_varint));
    expect_corrupt(nul_value, sizeof(nul_value));
    expect_corrupt(bad_utf8, sizeof(bad_utf8));
    expect_corrupt(bad_name, sizeof(bad_name));
    expect_corrupt(bad_metric, sizeof(bad_metric));
    expect_corrupt(prefix_order, sizeof(prefix_order));
    expect_corrupt(huge_len, sizeof(huge_len));

    /* 65 labels "aa".."cm" in order: one over the count limit. */
    for (size_t i = 0; i <= TSDB_MAX_LABELS; i++) {
        many[i * 5] = 2;
        many[i * 5 + 1] = (uint8_t)('a' + i / 26);
        many[i * 5 + 2] = (uint8_t)('a' + i % 26);
        many[i * 5 + 3] = 1;
        many[i * 5 + 4] = 'v';
    }
    assert_int_equal(tsdb_labels_decode(many, TSDB_MAX_LABELS * 5, &ls),
                     TSDB_OK);
    tsdb_labels_release(&ls);
    expect_corrupt(many, sizeof(many));
}

/* Every truncation and every single-bit flip of a valid encoding either
 * fails with TSDB_ECORRUPT or decodes to a set that re-encodes to the very
 * same bytes (a flip can turn one valid set into another). */
static void test_labels_decode_damaged(void **state)
{
    static uint8_t buf[sizeof(golden)], out[TSDB_MAX_LABELS_BYTES];
    struct tsdb_labels ls;
    size_t len;
    int rc;

    (void)state;
    for (size_t cut = 0; cut < sizeof(golden); cut++) {
        uint8_t *copy = malloc(cut ? cut : 1);

        memcpy(copy, golden, cut);
        rc = tsdb_labels_decode(copy, cut, &ls);
        if (rc == TSDB_OK) {
            /* Only a cut between labels leaves a valid set. */
            assert_int_equal(cut, 12);
            tsdb_labels_release(&ls);
        } else {
            assert_int_equal(rc, TSDB_ECORRUPT);
        }
        free(copy);
    }
    for (size_t bit = 0; bit < sizeof(golden) * 8; bit++) {
        memcpy(buf, golden, sizeof(golden));
        buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        rc = tsdb_labels_decode(buf, sizeof(buf), &ls);
        if (rc != TSDB_OK) {
            assert_int_equal(rc, TSDB_ECORRUPT);
            continue;
        }
        assert_int_equal(tsdb_labels_encode(ls.v, ls.n, out, sizeof(out), &len),
                         TSDB_OK);
        assert_int_equal(len, sizeof(buf));
        assert_memory_equal(out, buf, len);
        tsdb_labels_release(&ls);
    }
}

static void test_labels_format_escaping(void **state)
{
    struct tsdb_label v[] = {
        {"__name__", "up"}, {"a", "x\\y\"z\nw"}, {"b", "\xc3\xa9"}};
    struct tsdb_label noname[] = {{"a", "1"}, {"b", "2"}};
    struct tsdb_label onlyname[] = {{"__name__", "up"}};
    char out[128];

    (void)state;
    tsdb_labels_format(v, 3, out, sizeof(out));
    assert_string_equal(out, "up{a=\"x\\\\y\\\"z\\nw\",b=\"\xc3\xa9\"}");
    tsdb_labels_format(noname, 2, out, sizeof(out));
    assert_string_equal(out, "{a=\"1\",b=\"2\"}");
    tsdb_labels_format(onlyname, 1, out, sizeof(out));
    assert_string_equal(out, "up");
    tsdb_labels_format(NULL, 0, out, sizeof(out));
    assert_string_equal(out, "{}");
}

static void test_labels_format_truncates(void **state)
{
    struct tsdb_label v[] = {{"__name__", "up"}, {"a", "\xc3\xa9\xc3\xa9"}};
    char out[16];

    (void)state;
    /* Full text: up{a="éé"} is 12 bytes.  Each cut must leave "..." and
     * never half of an "é". */
    tsdb_labels_format(v, 2, out, 11);
    assert_string_equal(out, "up{a=\"...");
    tsdb_labels_format(v, 2, out, 12);
    assert_string_equal(out, "up{a=\"\xc3\xa9...");
    tsdb_labels_format(v, 2, out, 13);
    assert_string_equal(out, "up{a=\"\xc3\xa9\xc3\xa9\"}");
    tsdb_labels_format(v, 2, out, 3);
    assert_string_equal(out, "..");
    tsdb_labels_format(v, 2, out, 1);
    assert_string_equal(out, "");
    out[0] = 'x';
    tsdb_labels_format(v, 2, out, 0);
    assert_int_equal(out[0], 'x');
}

static void test_labels_hash_is_xxh3_seed0(void **state)
{
    (void)state;
    /* XXH3-64 of no bytes with seed 0, the published reference value. */
    assert_true(tsdb_labels_hash(golden, 0) == 0x2d06800538d394c2ULL);
    assert_true(tsdb_labels_hash(golden, sizeof(golden)) == GOLDEN_HASH);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_labels_normalize_sorts_and_drops_empty),
        cmocka_unit_test(test_labels_normalize_rejects_duplicates),
        cmocka_unit_test(test_labels_normalize_empty_value_is_not_duplicate),
        cmocka_unit_test(test_labels_normalize_rejects_no_labels),
        cmocka_unit_test(test_labels_normalize_bad_metric_name),
        cmocka_unit_test(test_labels_normalize_bad_label_name),
        cmocka_unit_test(test_labels_name_rules),
        cmocka_unit_test(test_labels_limit_value_length),
        cmocka_unit_test(test_labels_limit_metric_name_length),
        cmocka_unit_test(test_labels_limit_name_length),
        cmocka_unit_test(test_labels_limit_count),
        cmocka_unit_test(test_labels_invalid_utf8),
        cmocka_unit_test(test_labels_error_buffer_small),
        cmocka_unit_test(test_labels_encode_golden),
        cmocka_unit_test(test_labels_roundtrip_random),
        cmocka_unit_test(test_labels_decode_corrupt_cases),
        cmocka_unit_test(test_labels_decode_damaged),
        cmocka_unit_test(test_labels_format_escaping),
        cmocka_unit_test(test_labels_format_truncates),
        cmocka_unit_test(test_labels_hash_is_xxh3_seed0),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
