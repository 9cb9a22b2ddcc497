/* Open-addressing hash map (map.h). */
#include "rollup/map.h"

#include <stdlib.h>
#include <string.h>

#include "tsdb/error.h"

/* Series ids are dense small integers: mixing spreads them over the
 * table instead of filling one run of slots. */
static size_t slot_of(uint64_t key, size_t cap)
{
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdULL;
    key ^= key >> 33;
    return (size_t)key & (cap - 1);
}

uint32_t *rollup_map_get(const struct rollup_map *m, uint64_t key)
{
    if (m->cap == 0)
        return NULL;
    for (size_t i = slot_of(key, m->cap);; i = (i + 1) & (m->cap - 1)) {
        if (!m->used[i])
            return NULL;
        if (m->keys[i] == key)
            return &m->vals[i];
    }
}

static int grow(struct rollup_map *m)
{
    struct rollup_map g = {0};

    g.cap = m->cap ? m->cap * 2 : 64;
    g.keys = malloc(g.cap * sizeof(*g.keys));
    g.vals = malloc(g.cap * sizeof(*g.vals));
    g.used = calloc(g.cap, sizeof(*g.used));
    if (!g.keys || !g.vals || !g.used) {
        rollup_map_release(&g);
        return TSDB_ENOMEM;
    }
    for (size_t i = 0; i < m->cap; i++) {
        size_t j;

        if (!m->used[i])
            continue;
        for (j = slot_of(m->keys[i], g.cap); g.used[j];
             j = (j + 1) & (g.cap - 1))
            ;
        g.used[j] = true;
        g.keys[j] = m->keys[i];
        g.vals[j] = m->vals[i];
    }
    g.n = m->n;
    rollup_map_release(m);
    *m = g;
    return TSDB_OK;
}

int rollup_map_put(struct rollup_map *m, uint64_t key, uint32_t val)
{
    uint32_t *p = rollup_map_get(m, key);
    size_t i;

    if (p != NULL) {
        *p = val;
        return TSDB_OK;
    }
    if ((m->n + 1) * 2 > m->cap && grow(m) != TSDB_OK)
        return TSDB_ENOMEM;
    for (i = slot_of(key, m->cap); m->used[i]; i = (i + 1) & (m->cap - 1))
        ;
    m->used[i] = true;
    m->keys[i] = key;
    m->vals[i] = val;
    m->n++;
    return TSDB_OK;
}

void rollup_map_release(struct rollup_map *m)
{
    free(m->keys);
    free(m->vals);
    free(m->used);
    memset(m, 0, sizeof(*m));
}
