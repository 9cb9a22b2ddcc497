/*
 * Compaction of a data folder's LMDB file.  LMDB never shrinks its file
 * and leaves leaf pages half full where chunks of many series are inserted
 * mid-page (storage-format.md section "Compaction"); a compacting copy
 * writes every page full and drops free pages.
 *
 * LIMIT: offline only.  Why: the running server holds the environment
 * open and LMDB cannot swap its file under live transactions.  Matters for
 * a server that runs for weeks: its file is about twice the compacted
 * size.  Behaviour: tsdbd compacts at shutdown; tsdb-compact runs on a
 * stopped folder.  Fix: pause writers, copy, replay the WAL written during
 * the copy onto it, reopen the environment on the copy.
 */
#ifndef TSDB_COMPACT_H
#define TSDB_COMPACT_H

#include <stdint.h>

/*
 * Rewrites DIR/data.mdb compactly: rebuilds it in DIR/data.mdb.compact
 * with every page full, syncs the copy, and renames it over the original
 * (the
 * rename is the commit point: a crash before it leaves the original, after
 * it the copy).  A copy that is not smaller is dropped and the original
 * kept.  The folder must not be open: this takes its writer lock.
 * *before and *after (may be NULL) receive the file sizes.  Returns
 * TSDB_OK, TSDB_ELOCKED if a writer has the folder open, TSDB_ENOTFOUND,
 * TSDB_EIO.
 */
int tsdb_compact(const char *dir, uint64_t *before, uint64_t *after);

#endif
