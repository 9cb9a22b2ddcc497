/*
 * tsdb-compact DIR: rewrites the LMDB file of a data folder that no server
 * has open, with every page full and without free pages (see
 * tsdb/compact.h).  Exit 0 done, 1 failed, 2 bad usage.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "tsdb/compact.h"
#include "tsdb/error.h"

int main(int argc, char **argv)
{
    uint64_t before, after;
    int rc;

    if (argc != 2 || strcmp(argv[1], "--help") == 0) {
        fprintf(stderr, "usage: tsdb-compact DIR\n"
                        "Rewrites DIR/data.mdb compactly; the folder must "
                        "not be open by tsdbd.\n");
        return 2;
    }
    rc = tsdb_compact(argv[1], &before, &after);
    if (rc != TSDB_OK) {
        fprintf(stderr, "tsdb-compact: '%s': %s\n", argv[1],
                rc == TSDB_ELOCKED ? "in use by a running server; stop it "
                                     "first"
                                   : tsdb_strerror(rc));
        return 1;
    }
    printf("%s/data.mdb: %" PRIu64 " -> %" PRIu64 " bytes\n", argv[1], before,
           after);
    return 0;
}
