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

/*
 * 8 bytes at off from the ends se/de (off < 0): load, CRC, and (store)
 * store.
 */
#define UHP_SEAL_STEP8(off)					\
	do {							\
		memcpy(&v, se + (off), 8);			\
		c = _mm_crc32_u64(c, v);			\
		if (store)					\
			memcpy(de + (off), &v, 8);		\
	} while (0)

/* case n: the 8-byte step n words before the end, then fall through. */
#define UHP_SEAL_CASE(n)						\
	case n: UHP_SEAL_STEP8(-8 * (n)); __attribute__((fallthrough))
#define UHP_SEAL_CASES4(n)						\
	UHP_SEAL_CASE(n + 3); UHP_SEAL_CASE(n + 2);			\
	UHP_SEAL_CASE(n + 1); UHP_SEAL_CASE(n)

_Static_assert(UHP_SEAL_COPY_MAX == 256, "uhp__seal_sse42() unrolls 32 words");

/*
 * The words of the payload in one straight run: a jump into it (Duff's
 * device, counted from the end so the words are still taken in order)
 * instead of a loop, whose control cost ~10 instructions a record on each
 * side. store is a constant wherever this is inlined: its branches go.
 */
static inline __attribute__((always_inline, target("sse4.2"))) uint32_t
uhp__seal_sse42(unsigned char *d, const unsigned char *s, uint32_t len,
		uint64_t q0, uint64_t q1, uint64_t q2, const bool store)
{
	const unsigned char *se = s + (len & ~7U);
	unsigned char *de = d + (len & ~7U);
	uint64_t c, v;

	c = _mm_crc32_u64(0xffffffffU, q0);
	c = _mm_crc32_u64(c, q1);
	c = _mm_crc32_u64(c, q2);
	switch (len >> 3) {
	UHP_SEAL_CASES4(29);
	UHP_SEAL_CASES4(25);
	UHP_SEAL_CASES4(21);
	UHP_SEAL_CASES4(17);
	UHP_SEAL_CASES4(13);
	UHP_SEAL_CASES4(9);
	UHP_SEAL_CASES4(5);
	UHP_SEAL_CASES4(1);
	case 0:
		break;
	default:
		__builtin_unreachable();	/* len <= UHP_SEAL_COPY_MAX */
	}
	if (uhp_unlikely(len & 7)) {
		const unsigned char *t = se;
		unsigned char *dt = de;

		if (len & 4) {
			uint32_t w;

			memcpy(&w, t, 4);
			c = _mm_crc32_u32((uint32_t)c, w);
			if (store)
				memcpy(dt, &w, 4);
			t += 4;
			dt += 4;
		}
		if (len & 2) {
			uint16_t w;

			memcpy(&w, t, 2);
			c = _mm_crc32_u16((uint32_t)c, w);
			if (store)
				memcpy(dt, &w, 2);
			t += 2;
			dt += 2;
		}
		if (len & 1) {
			c = _mm_crc32_u8((uint32_t)c, *t);
			if (store)
				*dt = *t;
		}
	}
	return ~(uint32_t)c;
}
#undef UHP_SEAL_CASES4
#undef UHP_SEAL_CASE
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
