/* SPDX-License-Identifier: MIT */
/*
 * Shared by the host tests: payload patterns, an independent record CRC,
 * proc.h's clock, and access to a ring's shared words (the tests play
 * hostile peers).
 */
#ifndef UHP_TEST_HELPERS_H
#define UHP_TEST_HELPERS_H

#include <stdint.h>
#include <string.h>
#include <time.h>

#include "proc.h"
#include "uhp_internal.h"

/* Payload bytes depend on (id, seq, index): any mix-up shows. */
static inline void pat_fill(uint8_t *p, uint32_t len, uint32_t id, uint64_t seq)
{
	for (uint32_t i = 0; i < len; i++)
		p[i] = (uint8_t)(id * 29 + seq * 131 + i * 7 + (i >> 8));
}

static inline int pat_check(const uint8_t *p, uint32_t len, uint32_t id,
			    uint64_t seq)
{
	for (uint32_t i = 0; i < len; i++)
		if (p[i] != (uint8_t)(id * 29 + seq * 131 + i * 7 + (i >> 8)))
			return -1;
	return 0;
}

/* Bit-at-a-time CRC32C, independent of the library's. */
static inline uint32_t ref_crc32c(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len--) {
		crc ^= *p++;
		for (int b = 0; b < 8; b++)
			crc = (crc >> 1) ^ (0x82F63B78U & (0U - (crc & 1)));
	}
	return crc;
}

/* What hdr.crc must be for the record image at rec (header + payload). */
static inline uint32_t ref_rec_crc(const void *rec)
{
	const uint8_t *p = rec;
	uint32_t len;

	memcpy(&len, p + 8, sizeof(len));
	return ref_crc32c(ref_crc32c(~0U, p + 8, 24), p + UHP_REC_HDR_SIZE, len) ^ ~0U;
}

static inline struct uhp_ring *t_ring(struct uhp_channel *ch, unsigned k)
{
	return &ch->rings[k];
}

/* The record header at position pos of ring k (in the shared mapping). */
static inline struct uhp_rec_hdr *t_hdr(struct uhp_channel *ch, unsigned k,
					uint64_t pos)
{
	struct uhp_ring *r = &ch->rings[k];

	return (struct uhp_rec_hdr *)(r->data + (pos & r->mask));
}

static inline uint64_t t_wpos(struct uhp_channel *ch, unsigned k)
{
	return __atomic_load_n(&ch->rings[k].prod->write_pos, __ATOMIC_ACQUIRE);
}

static inline uint64_t t_rpos(struct uhp_channel *ch, unsigned k)
{
	return __atomic_load_n(&ch->rings[k].cons->read_pos, __ATOMIC_ACQUIRE);
}

#endif /* UHP_TEST_HELPERS_H */
