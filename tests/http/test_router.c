/*
 * Tests for http/router.c: exact path matching, 404 versus 405, HEAD
 * allowed by GET, and the Allow header text.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "http/router.h"

static int end(struct http_req *r)
{
    (void)r;
    return TSDB_OK;
}

static const struct http_route table[] = {
    {"/metrics", HTTP_GET, HTTP_EP_METRICS, HTTP_BODY_NONE, NULL, NULL, end},
    {"/api/v1/export", HTTP_GET, HTTP_EP_EXPORT, HTTP_BODY_NONE, NULL, NULL,
     end},
    {"/api/v1/export", HTTP_POST, HTTP_EP_EXPORT, HTTP_BODY_BUFFER, NULL, NULL,
     end},
    {"/api/v1/import/prometheus", HTTP_POST, HTTP_EP_IMPORT, HTTP_BODY_STREAM,
     NULL, NULL, end},
};
#define N (sizeof(table) / sizeof(table[0]))

static void test_router_finds_routes(void **state)
{
    const struct http_route *r = NULL;
    (void)state;

    assert_int_equal(http_router_find(table, N, "/metrics", HTTP_GET, &r),
                     TSDB_OK);
    assert_ptr_equal(r, &table[0]);
    assert_int_equal(http_router_find(table, N, "/metrics", HTTP_HEAD, &r),
                     TSDB_OK);
    assert_int_equal(
        http_router_find(table, N, "/api/v1/export", HTTP_POST, &r), TSDB_OK);
    assert_ptr_equal(r, &table[2]);
    assert_int_equal(http_router_find(table, N, "/metrics/", HTTP_GET, &r),
                     TSDB_ENOTFOUND);
    assert_int_equal(http_router_find(table, N, "/", HTTP_GET, &r),
                     TSDB_ENOTFOUND);
    assert_int_equal(http_router_find(table, N, "/metrics", HTTP_POST, &r),
                     TSDB_EINVAL);
    assert_int_equal(
        http_router_find(table, N, "/api/v1/import/prometheus", HTTP_GET, &r),
        TSDB_EINVAL);
    assert_int_equal(
        http_router_find(table, N, "/api/v1/import/prometheus", HTTP_HEAD, &r),
        TSDB_EINVAL);
}

static void test_router_allow_header(void **state)
{
    char allow[64];
    (void)state;

    http_router_allow(table, N, "/metrics", allow, sizeof(allow));
    assert_string_equal(allow, "GET, HEAD");
    http_router_allow(table, N, "/api/v1/export", allow, sizeof(allow));
    assert_string_equal(allow, "GET, HEAD, POST");
    http_router_allow(table, N, "/api/v1/import/prometheus", allow,
                      sizeof(allow));
    assert_string_equal(allow, "POST");
}

static void test_router_method_bits(void **state)
{
    (void)state;
    assert_int_equal(http_method_bit("GET"), HTTP_GET);
    assert_int_equal(http_method_bit("DELETE"), HTTP_DELETE);
    assert_int_equal(http_method_bit("get"), HTTP_OTHER);
    assert_int_equal(http_method_bit("PATCH"), HTTP_OTHER);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_router_finds_routes),
        cmocka_unit_test(test_router_allow_header),
        cmocka_unit_test(test_router_method_bits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
