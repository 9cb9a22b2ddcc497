/*
 * Tests of query/lex.c: each token kind, numbers against durations,
 * comments, string escapes (Go rules) and lexer errors.  Token streams are
 * printed as "KIND:text" words so expectations read like the input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "query/lex.h"
#include "tsdb/error.h"

static const char *kind_name(enum query_tok k)
{
    static const char *names[] = {
        "EOF", "ERR", "ID", "NUM", "DUR", "STR", "(",  ")", "{",  "}",
        "[",   "]",   ",",  ":",   "@",   "=",   "+",  "-", "*",  "/",
        "%",   "^",   "==", "!=",  "<=",  "<",   ">=", ">", "=~", "!~",
    };

    return names[k];
}

/* All tokens of src as "KIND:text ..." (text only for literal kinds). */
static void lex_all(const char *src, char *out, size_t cap)
{
    struct query_lexer lx;
    struct query_token t;
    size_t len = 0;

    query_lexer_init(&lx, src, strlen(src));
    out[0] = '\0';
    do {
        query_lexer_next(&lx, &t);
        if (t.kind >= QUERY_T_IDENT && t.kind <= QUERY_T_STRING)
            len += (size_t)snprintf(out + len, cap - len, "%s%s:%.*s",
                                    len ? " " : "", kind_name(t.kind),
                                    (int)t.len, src + t.pos);
        else if (t.kind == QUERY_T_ERROR)
            len += (size_t)snprintf(out + len, cap - len, "%sERR@%zu:%s",
                                    len ? " " : "", t.pos, lx.msg);
        else
            len += (size_t)snprintf(out + len, cap - len, "%s%s",
                                    len ? " " : "", kind_name(t.kind));
        assert_true(len < cap);
    } while (t.kind != QUERY_T_EOF && t.kind != QUERY_T_ERROR);
}

static void test_query_lex_tokens(void **state)
{
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"foo", "ID:foo EOF"},
        {"foo:bar_1{a=\"b\"}", "ID:foo:bar_1 { ID:a = STR:\"b\" } EOF"},
        {"a!=b!~c=~d==e", "ID:a != ID:b !~ ID:c =~ ID:d == ID:e EOF"},
        {"<= < >= > + - * / % ^", "<= < >= > + - * / % ^ EOF"},
        {"x[5m:1m] @ 3", "ID:x [ DUR:5m : DUR:1m ] @ NUM:3 EOF"},
        {"1h30m 5ms 1y2w3d", "DUR:1h30m DUR:5ms DUR:1y2w3d EOF"},
        {"1 1.5 .5 1e3 1E-3 0x1F 3.", "NUM:1 NUM:1.5 NUM:.5 NUM:1e3 "
                                      "NUM:1E-3 NUM:0x1F NUM:3. EOF"},
        {"Inf nan", "ID:Inf ID:nan EOF"},
        {"'a' \"b\\\"\" `c\\`", "STR:'a' STR:\"b\\\"\" STR:`c\\` EOF"},
        {"x # a comment\n+ y", "ID:x + ID:y EOF"},
        {"  \t\r\n", "EOF"},
        {"5mx", "ERR@0:bad number or duration syntax: \"5mx\""},
        {"1.2.3", "ERR@0:bad number or duration syntax: \"1.2.3\""},
        {"a $", "ID:a ERR@2:unexpected character: '$'"},
        {"\"abc", "ERR@0:unterminated quoted string"},
        {"'a\nb'", "ERR@0:unterminated quoted string"},
        {"`abc", "ERR@0:unterminated raw string"},
        {"!x", "ERR@0:unexpected character: '!'"},
    };
    char out[512];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        lex_all(cases[i].in, out, sizeof(out));
        assert_string_equal(out, cases[i].want);
    }
}

static void test_query_lex_error_sticks(void **state)
{
    struct query_lexer lx;
    struct query_token t;

    (void)state;
    query_lexer_init(&lx, "$ x", 3);
    query_lexer_next(&lx, &t);
    assert_int_equal(t.kind, QUERY_T_ERROR);
    query_lexer_next(&lx, &t);
    assert_int_equal(t.kind, QUERY_T_ERROR);
    assert_int_equal(t.pos, 0);
}

static void test_query_lex_unquote(void **state)
{
    static const struct {
        const char *in;
        const char *want;
        size_t want_len;
    } cases[] = {
        {"\"plain\"", "plain", 5},
        {"\"\\a\\b\\f\\n\\r\\t\\v\\\\\\\"\"", "\a\b\f\n\r\t\v\\\"", 9},
        {"'it\\'s'", "it's", 4},
        {"\"\\x41\\101\\u00e9\\U0001F600\"", "AA\xc3\xa9\xf0\x9f\x98\x80", 8},
        {"\"\\x00z\"", "\0z", 2},
        {"`a\\nb`", "a\\nb", 4},
        {"''", "", 0},
    };
    char out[64], msg[96];
    size_t len, bad;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(query_lex_unquote(cases[i].in, strlen(cases[i].in),
                                           out, &len, msg, sizeof(msg), &bad),
                         TSDB_OK);
        assert_int_equal(len, cases[i].want_len);
        assert_memory_equal(out, cases[i].want, len);
    }
}

static void test_query_lex_unquote_errors(void **state)
{
    static const struct {
        const char *in, *msg;
        size_t bad;
    } cases[] = {
        {"\"a\\qb\"", "unknown escape sequence 'q'", 2},
        {"\"\\xZZ\"", "illegal character in escape sequence", 1},
        {"\"\\u12\"", "illegal character in escape sequence", 1},
        {"\"\\400\"", "escape sequence is invalid Unicode code point", 1},
        {"\"\\ud800\"", "escape sequence is invalid Unicode code point", 1},
        {"'\\\"'", "unknown escape sequence '\"'", 1},
    };
    char out[64], msg[96];
    size_t len, bad;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(query_lex_unquote(cases[i].in, strlen(cases[i].in),
                                           out, &len, msg, sizeof(msg), &bad),
                         TSDB_EINVAL);
        assert_string_equal(msg, cases[i].msg);
        assert_int_equal(bad, cases[i].bad);
    }
}

static void test_query_lex_word_is(void **state)
{
    (void)state;
    assert_true(query_lex_word_is("SUM", 3, "sum"));
    assert_true(query_lex_word_is("Bool", 4, "bool"));
    assert_false(query_lex_word_is("summ", 4, "sum"));
    assert_false(query_lex_word_is("su", 2, "sum"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_query_lex_tokens),
        cmocka_unit_test(test_query_lex_error_sticks),
        cmocka_unit_test(test_query_lex_unquote),
        cmocka_unit_test(test_query_lex_unquote_errors),
        cmocka_unit_test(test_query_lex_word_is),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
