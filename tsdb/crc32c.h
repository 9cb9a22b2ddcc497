/*
 * CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of WAL
 * records and stored chunks.  crc32c(0, "123456789", 9) == 0xE3069283.
 */
#ifndef TSDB_CRC32C_H
#define TSDB_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Extends crc (0 to start) over len bytes at p. */
uint32_t crc32c(uint32_t crc, const void *p, size_t len);

#endif
