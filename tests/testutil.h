/*
 * Helpers shared by the test binaries: scratch folders under /tmp that are
 * removed afterwards, and a seeded generator that prints its seed, so a
 * failure can be replayed (nothing is seeded from the clock).
 */
#ifndef TESTS_TESTUTIL_H
#define TESTS_TESTUTIL_H

#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline char *test_tmpdir(const char *tag)
{
    char tmpl[256];
    char *dir;

    snprintf(tmpl, sizeof(tmpl), "/tmp/tsdb-test-%s-XXXXXX", tag);
    dir = mkdtemp(tmpl);
    return dir ? strdup(dir) : NULL;
}

static inline int test_rm_entry(const char *path, const struct stat *sb,
                                int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static inline void test_rmdir(char *dir)
{
    if (dir)
        nftw(dir, test_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
}

/* xorshift64*: small, fast, and the same on every machine. */
struct test_rng {
    uint64_t s;
};

static inline void test_rng_init(struct test_rng *r, const char *name,
                                 uint64_t seed)
{
    const char *env = getenv("TEST_SEED");

    if (env)
        seed = strtoull(env, NULL, 0);
    printf("%s: seed=%llu (set TEST_SEED to replay)\n", name,
           (unsigned long long)seed);
    r->s = seed ? seed : 1;
}

static inline uint64_t test_rng_next(struct test_rng *r)
{
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * UINT64_C(2685821657736338717);
}

static inline uint64_t test_rng_below(struct test_rng *r, uint64_t n)
{
    return test_rng_next(r) % n;
}

#endif
