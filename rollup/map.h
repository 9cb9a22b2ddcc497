/*
 * A hash map from 64-bit keys to 32-bit values, open addressing with
 * linear probing, for the rollup engine's per-rule lookups (series id to
 * state slot, group hash to group).  Grows at 50% load; never shrinks.
 */
#ifndef ROLLUP_MAP_H
#define ROLLUP_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rollup_map {
    uint64_t *keys;
    uint32_t *vals;
    bool *used;
    size_t cap; /* power of two, or 0 */
    size_t n;
};

/* Points *val at key's value, or NULL when key is absent. */
uint32_t *rollup_map_get(const struct rollup_map *m, uint64_t key);

/* Sets key to val.  TSDB_OK or TSDB_ENOMEM (m unchanged). */
int rollup_map_put(struct rollup_map *m, uint64_t key, uint32_t val);

void rollup_map_release(struct rollup_map *m);

#endif
