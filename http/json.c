/*
 * JSON strings and the error envelope; see json.h.  Layer: http/
 * helpers over buf.c, no MHD.
 */
#include "http/json.h"

#include <stdio.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at s[0..n) (s[0] >= 0x80), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    size_t len = s[0] >= 0xF0 ? 4 : s[0] >= 0xE0 ? 3 : 2;
    unsigned char lo = 0x80, hi = 0xBF;

    if (s[0] < 0xC2 || s[0] > 0xF4 || n < len)
        return 0;
    if (s[0] == 0xE0)
        lo = 0xA0;
    else if (s[0] == 0xED)
        hi = 0x9F;
    else if (s[0] == 0xF0)
        lo = 0x90;
    else if (s[0] == 0xF4)
        hi = 0x8F;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return len;
}

void http_json_string(struct http_buf *b, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t run = 0, i = 0;

    http_buf_add(b, "\"", 1);
    while (i < n) {
        size_t len = u[i] >= 0x80 ? utf8_len(u + i, n - i) : 1;
        char esc[8];

        if (len > 1 ||
            (len == 1 && u[i] >= 0x20 && u[i] != '"' && u[i] != '\\')) {
            i += len;
            continue;
        }

        /* Copy the plain run before this byte, then its escape. */
        http_buf_add(b, s + run, i - run);
        if (len == 0)
            http_buf_add(b, "\\ufffd", 6);
        else if (u[i] == '"' || u[i] == '\\')
            http_buf_add(b, u[i] == '"' ? "\\\"" : "\\\\", 2);
        else if (u[i] == '\n')
            http_buf_add(b, "\\n", 2);
        else if (u[i] == '\t')
            http_buf_add(b, "\\t", 2);
        else if (snprintf(esc, sizeof(esc), "\\u%04x", u[i]) == 6)
            http_buf_add(b, esc, 6);
        run = ++i;
    }
    http_buf_add(b, s + run, n - run);
    http_buf_add(b, "\"", 1);
}

void http_json_str(struct http_buf *b, const char *s)
{
    http_json_string(b, s, strlen(s));
}

void http_json_error_open(struct http_buf *b, const char *type, const char *msg)
{
    http_buf_puts(b, "{\"status\":\"error\",\"errorType\":");
    http_json_str(b, type);
    http_buf_puts(b, ",\"error\":");
    http_json_str(b, msg);
}

void http_json_error(struct http_buf *b, const char *type, const char *msg)
{
    http_json_error_open(b, type, msg);
    http_buf_puts(b, "}\n");
}
