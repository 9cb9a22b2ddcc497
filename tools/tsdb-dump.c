/*
 * tsdb-dump DIR [MATCHER...]: prints stored samples as Prometheus text
 * with millisecond timestamps, one line per sample, for debugging and
 * for diffing two folders.  Matchers are name=value, name!=value,
 * name=~re or name!~re; without any, every series.  Read-only.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/numfmt.h"
#include "tsdb/db.h"
#include "tsdb/log.h"

#define MAX_MATCHERS 16

/* Splits "name<op>value" into a matcher; returns false on bad syntax. */
static bool parse_matcher(char *arg, struct tsdb_matcher *m)
{
    static const struct {
        const char *op;
        enum tsdb_match_type type;
    } ops[] = {{"!=", TSDB_MATCH_NEQ},
               {"=~", TSDB_MATCH_RE},
               {"!~", TSDB_MATCH_NRE},
               {"=", TSDB_MATCH_EQ}};
    char err[256];

    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        char *at = strstr(arg, ops[i].op);
        if (!at)
            continue;
        *at = '\0';
        if (tsdb_matcher_init(m, ops[i].type, arg, at + strlen(ops[i].op), err,
                              sizeof(err)) != TSDB_OK) {
            fprintf(stderr, "tsdb-dump: %s\n", err);
            return false;
        }
        return true;
    }
    fprintf(stderr, "tsdb-dump: matcher '%s' has no =, !=, =~ or !~\n", arg);
    return false;
}

static void print_series(const struct tsdb_labels *ls)
{
    const char *name = tsdb_labels_get(ls, "__name__");
    bool first = true;

    printf("%s{", name ? name : "");
    for (size_t i = 0; i < ls->n; i++) {
        if (strcmp(ls->v[i].name, "__name__") == 0)
            continue;
        printf("%s%s=\"", first ? "" : ",", ls->v[i].name);
        for (const char *p = ls->v[i].value; *p; p++) {
            if (*p == '\\' || *p == '"')
                putchar('\\');
            if (*p == '\n')
                fputs("\\n", stdout);
            else
                putchar(*p);
        }
        putchar('"');
        first = false;
    }
    putchar('}');
}

int main(int argc, char **argv)
{
    struct tsdb_matcher ms[MAX_MATCHERS];
    struct tsdb_options o;
    struct tsdb_query *q;
    const struct tsdb_labels *ls;
    struct tsdb *db;
    char err[64];
    size_t n = 0;
    int rc;

    if (argc < 2 || argc - 2 > MAX_MATCHERS || !strcmp(argv[1], "--help")) {
        fprintf(stderr, "usage: tsdb-dump DIR [name=value|name!=value|"
                        "name=~re|name!~re ...]\n");
        return 2;
    }
    for (int i = 2; i < argc; i++)
        if (!parse_matcher(argv[i], &ms[n++]))
            return 2;
    if (n == 0)
        tsdb_matcher_init(&ms[n++], TSDB_MATCH_RE, "__name__", ".*", err,
                          sizeof(err));
    tsdb_log_level = TSDB_LOG_WARN;
    tsdb_options_init(&o);
    o.dir = argv[1];
    o.read_only = true;
    rc = tsdb_open(&o, &db);
    if (rc == TSDB_OK)
        rc = tsdb_query_open(db, ms, n, INT64_MIN, INT64_MAX, &q);
    if (rc != TSDB_OK) {
        fprintf(stderr, "tsdb-dump: '%s': %s\n", argv[1], tsdb_strerror(rc));
        return 2;
    }
    while ((rc = tsdb_query_next_series(q, &ls, NULL)) == TSDB_OK) {
        const int64_t *ts;
        const double *vs;
        size_t k;
        while ((rc = tsdb_query_next_batch(q, &ts, &vs, &k)) == TSDB_OK &&
               k > 0) {
            for (size_t i = 0; i < k; i++) {
                char num[HTTP_NUM_MAX];
                http_fmt_value(num, vs[i]);
                print_series(ls);
                printf(" %s %" PRId64 "\n", num, ts[i]);
            }
        }
        if (rc != TSDB_OK)
            break;
    }
    tsdb_query_close(q);
    for (size_t i = 0; i < n; i++)
        tsdb_matcher_release(&ms[i]);
    tsdb_close(db);
    if (rc != TSDB_ENOTFOUND) {
        fprintf(stderr, "tsdb-dump: read failed: %s\n", tsdb_strerror(rc));
        return 1;
    }
    return 0;
}
