/*
 * Chunk entries (storage-format.md section "Chunk entry").  Sits between
 * the codecs (gorilla.c, pack.c: bytes only) and the store (store.c:
 * LMDB).
 *
 * Invariants:
 * 1. An entry's CRC covers the series id and every entry byte except the
 *    CRC itself, so an entry moved under another series is caught too.
 * 2. maxt >= mint and 1 <= count <= GORILLA_MAX_SAMPLES in every entry
 *    built here.
 */
#include "tsdb/chunk.h"

#include "tsdb/bytes.h"
#include "tsdb/crc32c.h"
#include "tsdb/error.h"
#include "tsdb/format.h"
#include "tsdb/gorilla.h"
#include "tsdb/pack.h"

/* Entry layout: mint (8), encoding (1), crc (4), count, span, payload. */
#define OFF_ENC   8
#define OFF_CRC   9
#define OFF_COUNT 13

void tsdb_chunk_key(uint8_t *key, uint64_t sid, int64_t mint)
{
    put_be64(key, sid);
    put_be64_signed(key + 8, mint);
}

int64_t tsdb_chunk_entry_mint(const uint8_t *entry)
{
    return get_be64_signed(entry);
}

static uint32_t entry_crc(uint64_t sid, const uint8_t *entry, size_t len)
{
    uint8_t id[8];

    put_be64(id, sid);
    return crc32c(crc32c(crc32c(0, id, 8), entry, OFF_CRC), entry + OFF_COUNT,
                  len - OFF_COUNT);
}

/* Writes everything before the payload; returns its length, 0 if bad. */
static size_t put_header(uint8_t *e, uint8_t enc, int64_t mint, int64_t maxt,
                         uint32_t n)
{
    int64_t span;
    size_t hdr = OFF_COUNT;

    if (n == 0 || n > GORILLA_MAX_SAMPLES ||
        __builtin_sub_overflow(maxt, mint, &span) || span < 0)
        return 0;
    put_be64_signed(e, mint);
    e[OFF_ENC] = enc;
    hdr += varint_put(e + hdr, n);
    hdr += varint_put(e + hdr, (uint64_t)span);
    return hdr;
}

int tsdb_chunk_build(uint64_t sid, const int64_t *ts, const double *vs,
                     uint32_t n, uint8_t *entry, size_t cap, size_t *len)
{
    size_t hdr, plen;
    int rc;

    if (n == 0)
        return TSDB_EINVAL;
    if (cap < TSDB_CHUNK_HEADER_MAX)
        return TSDB_EFULL;
    hdr = put_header(entry, TSDB_CHUNK_ENC_PACK, ts[0], ts[n - 1], n);
    if (hdr == 0)
        return TSDB_EINVAL;
    rc = pack_encode(ts, vs, n, entry + hdr, cap - hdr, &plen);
    if (rc != TSDB_OK)
        return rc;
    *len = hdr + plen;
    put_be32(entry + OFF_CRC, entry_crc(sid, entry, *len));
    return TSDB_OK;
}

int tsdb_chunk_build_raw(uint64_t sid, uint8_t enc, int64_t mint, int64_t maxt,
                         uint32_t n, const uint8_t *payload, size_t plen,
                         uint8_t *entry, size_t cap, size_t *len)
{
    size_t hdr;

    if (cap < TSDB_CHUNK_HEADER_MAX)
        return TSDB_EFULL;
    hdr = put_header(entry, enc, mint, maxt, n);
    if (hdr == 0)
        return TSDB_EINVAL;
    if (plen > cap - hdr)
        return TSDB_EFULL;
    memcpy(entry + hdr, payload, plen);
    *len = hdr + plen;
    put_be32(entry + OFF_CRC, entry_crc(sid, entry, *len));
    return TSDB_OK;
}

int tsdb_chunk_parse(uint64_t sid, const uint8_t *entry, size_t len,
                     struct tsdb_chunk *c)
{
    const uint8_t *p = entry + OFF_COUNT, *end = entry + len;
    uint64_t count, span;

    if (len < OFF_COUNT + 2)
        return TSDB_ECORRUPT;
    c->sid = sid;
    c->mint = get_be64_signed(entry);
    c->enc = entry[OFF_ENC];
    if (c->enc != TSDB_CHUNK_ENC_PACK && c->enc != TSDB_CHUNK_ENC_GORILLA)
        return TSDB_ECORRUPT;
    if (get_be32(entry + OFF_CRC) != entry_crc(sid, entry, len))
        return TSDB_ECORRUPT;
    if (varint_get(&p, end, &count) || varint_get(&p, end, &span))
        return TSDB_ECORRUPT;
    if (count == 0 || count > GORILLA_MAX_SAMPLES || span > INT64_MAX ||
        __builtin_add_overflow(c->mint, (int64_t)span, &c->maxt))
        return TSDB_ECORRUPT;
    c->count = (uint32_t)count;
    c->payload = p;
    c->payload_len = (size_t)(end - p);
    return TSDB_OK;
}

int tsdb_chunk_decode(const struct tsdb_chunk *c, int64_t *ts, double *vs)
{
    int rc;

    if (c->enc == TSDB_CHUNK_ENC_PACK)
        rc = pack_decode(c->payload, c->payload_len, c->count, ts, vs);
    else
        rc = gorilla_decode(c->payload, c->payload_len, c->count, ts, vs);
    if (rc != TSDB_OK)
        return TSDB_ECORRUPT;

    /* The header must agree with the payload it describes. */
    if (ts[0] != c->mint || ts[c->count - 1] != c->maxt)
        return TSDB_ECORRUPT;
    return TSDB_OK;
}
