/*
 * tsdb-check DIR: verifies a data folder against the invariants of
 * storage-format.md (checksums, chunk order, index consistency) and prints
 * what it found.  Opens read-only, so it can run beside a live tsdbd; it
 * then sees the state as of the last flush and checkpoint.
 * Exit status: 0 clean, 1 problems found, 2 could not read the folder.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "tsdb/check.h"
#include "tsdb/db.h"
#include "tsdb/log.h"

int main(int argc, char **argv)
{
    struct tsdb_options o;
    struct tsdb_check_report r;
    struct tsdb *db;
    int rc;

    if (argc != 2 || strcmp(argv[1], "--help") == 0) {
        fprintf(stderr, "usage: tsdb-check DIR\n"
                        "Verifies checksums, chunk order and the index of "
                        "the data folder DIR.\n");
        return 2;
    }
    tsdb_log_level = TSDB_LOG_WARN;
    tsdb_options_init(&o);
    o.dir = argv[1];
    o.read_only = true;
    rc = tsdb_open(&o, &db);
    if (rc != TSDB_OK) {
        fprintf(stderr, "tsdb-check: cannot open '%s': %s\n", argv[1],
                tsdb_strerror(rc));
        return 2;
    }
    rc = tsdb_check(db, &r);
    tsdb_close(db);
    if (rc != TSDB_OK) {
        fprintf(stderr, "tsdb-check: reading '%s' failed: %s\n", argv[1],
                tsdb_strerror(rc));
        return 2;
    }
    printf("series %" PRIu64 ", chunks %" PRIu64 " (%" PRIu64
           " bytes), samples %" PRIu64 ", head snapshots %" PRIu64 "\n",
           r.series, r.chunks, r.chunk_bytes, r.samples, r.snapshots);
    for (uint64_t i = 0; i < r.problems && i < TSDB_CHECK_MAX_PROBLEMS; i++)
        printf("problem: %s\n", r.text[i]);
    if (r.problems > TSDB_CHECK_MAX_PROBLEMS)
        printf("... and %" PRIu64 " more problems\n",
               r.problems - TSDB_CHECK_MAX_PROBLEMS);
    printf("%s\n", r.problems ? "NOT CLEAN" : "clean");
    return r.problems ? 1 : 0;
}
