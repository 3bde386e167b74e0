// SPDX-License-Identifier: MIT
/*
 * Record CRCs: hdr.crc is the CRC32C of the header bytes [8, 32) followed
 * by the payload (uapi/linux/uhp.h, "Integrity").
 *
 *   uhp__rec_crc()        over a header and a payload in place, through
 *                         uhp_crc32c() (any length, every path).
 *   uhp__seal_copy_*()    (seal.h) copy a payload of at most
 *                         UHP_SEAL_COPY_MAX bytes and return the record's
 *                         CRC over the header and the bytes as copied, in
 *                         one pass: the send and receive fast paths
 *                         (ring.c), one variant of each per path.
 *
 * Why a pass of its own for short records: a 64-byte send+recv spent ~180
 * of its ~530 instructions in four uhp_crc32c() calls (header and payload,
 * on each side) through the dispatch pointer into length-generic code, and
 * then copied the payload again with memcpy(). With the SSE4.2 crc32
 * instruction, each 8 bytes are loaded once, fed to the CRC and stored:
 * three crc32 steps for the header, one per 8 payload bytes. Longer
 * payloads go the two-pass way, where uhp_crc32c()'s folding paths and
 * uhp_memcpy() are faster than one crc32 chain.
 *
 * The CRC is over the bytes as copied (the value loaded is the value
 * stored), so the consumer checks exactly what it hands out even if a
 * hostile peer rewrites the ring meanwhile. The generic path (no SSE4.2,
 * or UHP_CRC=table) copies, then runs uhp_crc32c() over the destination.
 */
#include <string.h>

#include "uhp_internal.h"

uint32_t uhp__rec_crc(const struct uhp_rec_hdr *h, const void *payload,
		      uint32_t len)
{
	uint32_t c;

	c = uhp_crc32c(~0U, (const char *)h + UHP_REC_CRC_HDR_OFF,
		       UHP_REC_CRC_HDR_LEN);
	c = uhp_crc32c(c, payload, len);
	return ~c;
}

int uhp__seal_path;

/*
 * The fast paths' CRC: SSE4.2 whenever uhp_crc32c() uses a hardware path
 * (they all have the crc32 instruction), so UHP_CRC=table forces both.
 * Racing first calls choose the same; relaxed is enough: the choice carries
 * no other state.
 */
int uhp__seal_choose(void)
{
	int path = UHP_SEAL_GENERIC;

#if defined(__x86_64__)
	if (strcmp(uhp__crc32c_impl(), "table") != 0)
		path = UHP_SEAL_SSE42;
#endif
	__atomic_store_n(&uhp__seal_path, path, __ATOMIC_RELAXED);
	return path;
}
