/* SPDX-License-Identifier: MIT */
/*
 * The fast paths' copy with CRC (see seal.c), inline so that ring.c's send
 * and receive variants (one per path) have it in their own body: a call
 * there cost its arguments, the caller's spills and the indirect jump.
 *
 * uhp__seal_copy_*(dst, src, len, q0, q1, q2) copy len <= UHP_SEAL_COPY_MAX
 * bytes and return the record's CRC32C over the header bytes [8, 32) given
 * as three little-endian qwords (q0 = len | type << 32 | flags << 48,
 * q1 = src | dst << 32, q2 = seq) followed by the bytes as copied.
 * uhp__seal_check_*(src, len, q0, q1, q2) compute the same CRC over src in
 * place, storing nothing (uhp_peek()).
 */
#ifndef UHP_SEAL_H
#define UHP_SEAL_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "uhp_internal.h"

static inline __attribute__((always_inline)) uint32_t
uhp__seal_copy_generic(void *dst, const void *src, uint32_t len,
		       uint64_t q0, uint64_t q1, uint64_t q2)
{
	unsigned char hb[UHP_REC_CRC_HDR_LEN];

	memcpy(hb, &q0, 8);
	memcpy(hb + 8, &q1, 8);
	memcpy(hb + 16, &q2, 8);
	if (len)	/* src may be NULL then */
		memcpy(dst, src, len);
	return ~uhp_crc32c(uhp_crc32c(~0U, hb, sizeof(hb)), dst, len);
}

static inline __attribute__((always_inline)) uint32_t
uhp__seal_check_generic(const void *src, uint32_t len,
			uint64_t q0, uint64_t q1, uint64_t q2)
{
	unsigned char hb[UHP_REC_CRC_HDR_LEN];

	memcpy(hb, &q0, 8);
	memcpy(hb + 8, &q1, 8);
	memcpy(hb + 16, &q2, 8);
	return ~uhp_crc32c(uhp_crc32c(~0U, hb, sizeof(hb)), src, len);
}

#if defined(__x86_64__)
#include <immintrin.h>

/* 8 bytes: load, CRC, and (store) store. */
#define UHP_SEAL_STEP8(off)					\
	do {							\
		memcpy(&v, s + (off), 8);			\
		c = _mm_crc32_u64(c, v);			\
		if (store)					\
			memcpy(d + (off), &v, 8);		\
	} while (0)

/* store is a constant wherever this is inlined: its branches go. */
static inline __attribute__((always_inline, target("sse4.2"))) uint32_t
uhp__seal_sse42(unsigned char *d, const unsigned char *s, uint32_t len,
		uint64_t q0, uint64_t q1, uint64_t q2, const bool store)
{
	uint64_t c, v;

	c = _mm_crc32_u64(0xffffffffU, q0);
	c = _mm_crc32_u64(c, q1);
	c = _mm_crc32_u64(c, q2);
	/* 64 bytes a turn: a 64-byte payload is one turn and no tail */
	for (const unsigned char *end = s + (len & ~63U); s != end;
	     s += 64, d += 64) {
		UHP_SEAL_STEP8(0);
		UHP_SEAL_STEP8(8);
		UHP_SEAL_STEP8(16);
		UHP_SEAL_STEP8(24);
		UHP_SEAL_STEP8(32);
		UHP_SEAL_STEP8(40);
		UHP_SEAL_STEP8(48);
		UHP_SEAL_STEP8(56);
	}
	if (len & 32) {
		UHP_SEAL_STEP8(0);
		UHP_SEAL_STEP8(8);
		UHP_SEAL_STEP8(16);
		UHP_SEAL_STEP8(24);
		s += 32;
		d += 32;
	}
	if (uhp_unlikely(len & 31)) {
		if (len & 16) {
			UHP_SEAL_STEP8(0);
			UHP_SEAL_STEP8(8);
			s += 16;
			d += 16;
		}
		if (len & 8) {
			UHP_SEAL_STEP8(0);
			s += 8;
			d += 8;
		}
		if (len & 4) {
			uint32_t w;

			memcpy(&w, s, 4);
			c = _mm_crc32_u32((uint32_t)c, w);
			if (store)
				memcpy(d, &w, 4);
			s += 4;
			d += 4;
		}
		if (len & 2) {
			uint16_t w;

			memcpy(&w, s, 2);
			c = _mm_crc32_u16((uint32_t)c, w);
			if (store)
				memcpy(d, &w, 2);
			s += 2;
			d += 2;
		}
		if (len & 1) {
			c = _mm_crc32_u8((uint32_t)c, *s);
			if (store)
				*d = *s;
		}
	}
	return ~(uint32_t)c;
}
#undef UHP_SEAL_STEP8

static inline __attribute__((always_inline, target("sse4.2"))) uint32_t
uhp__seal_copy_sse42(void *dst, const void *src, uint32_t len,
		     uint64_t q0, uint64_t q1, uint64_t q2)
{
	return uhp__seal_sse42(dst, src, len, q0, q1, q2, true);
}

/* The CRC of the record at src in place (uhp_peek()): nothing stored. */
static inline __attribute__((always_inline, target("sse4.2"))) uint32_t
uhp__seal_check_sse42(const void *src, uint32_t len,
		      uint64_t q0, uint64_t q1, uint64_t q2)
{
	/* d walks along s and is never written through */
	return uhp__seal_sse42((unsigned char *)src, src, len, q0, q1, q2, false);
}
#endif

#endif /* UHP_SEAL_H */
