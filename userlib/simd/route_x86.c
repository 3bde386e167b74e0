// SPDX-License-Identifier: MIT
/*
 * The vector paths of uhp_route_match()/uhp_route_match_set() (route.c
 * chooses; call them only through uhp__route_path()). Compiled with
 * per-function target attributes, so the library runs on any x86-64.
 *
 * Both walk the ids 64 at a time, one bitmap word per turn:
 *   avx512  4 x 16 ids: a plain 64-byte load when the stride is 4, else
 *           a gather with the byte offsets 0, s, .., 15 s (scale 1) from
 *           the group's first id; each compare (one per target, ORed)
 *           gives a __mmask16, widened to 64 bits before it is shifted
 *           into the word (16 k, k < 4).
 *   avx2    8 x 8 ids, the same with ymm registers; compare results to
 *           bits by movemask.
 * The last, partial word uses masked loads/gathers: lanes past n are not
 * read (no fault at a page end) and their bits are masked off (a zeroed
 * lane would otherwise match target 0). Strides whose offsets do not fit
 * the gather's 32-bit indices (> UHP_ROUTE_GATHER_MAX_STRIDE) and sets of
 * more than UHP_ROUTE_SET_VEC_MAX targets go to the scalar code.
 */
#include "uhp_internal.h"

#if defined(__x86_64__)
#include <immintrin.h>

/*
 * Under AddressSanitizer (the host tests): masked loads and gathers are not
 * instrumented, so check the whole span of ids up front.
 */
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <stdio.h>
#include <stdlib.h>

static void route_asan_check(const void *ids, size_t stride, size_t n)
{
	size_t span = n ? (n - 1) * stride + sizeof(uint32_t) : 0;
	void *bad = span ? __asan_region_is_poisoned((void *)ids, span) : NULL;

	if (bad) {
		fprintf(stderr, "uhp_route: ids [%p, +%zu) touch poisoned %p\n",
			ids, span, bad);
		__asan_describe_address(bad);
		abort();
	}
}
#define ROUTE_CHECK(ids, stride, n) route_asan_check((ids), (stride), (n))
#else
#define ROUTE_CHECK(ids, stride, n) do { } while (0)
#endif

#define T_AVX512	__attribute__((target("avx512f,popcnt")))
#define T_AVX2		__attribute__((target("avx2,popcnt")))
#define INLINE		static inline __attribute__((always_inline))

/* ---- avx512 ---- */

/* Lanes of k (of v) equal to any of tg[0..nt), nt >= 1. */
T_AVX512 INLINE __mmask16 z_cmp(__mmask16 k, __m512i v, const uint32_t *tg,
				size_t nt)
{
	__mmask16 m = _mm512_mask_cmpeq_epi32_mask(k, v, _mm512_set1_epi32((int)tg[0]));

	for (size_t j = 1; j < nt; j++)
		m |= _mm512_mask_cmpeq_epi32_mask(k, v,
						  _mm512_set1_epi32((int)tg[j]));
	return m;
}

/* 16 ids from p; lanes outside k are neither read nor (later) counted. */
T_AVX512 INLINE __m512i z_load(const unsigned char *p, __m512i off, bool dense,
			       __mmask16 k)
{
	if (k == 0xffff)
		return dense ? _mm512_loadu_si512(p) :
			       _mm512_i32gather_epi32(off, p, 1);
	return dense ? _mm512_maskz_loadu_epi32(k, p) :
		       _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), k,
						   off, p, 1);
}

T_AVX512 INLINE size_t z_run(const uint32_t *ids, size_t stride, size_t n,
			     const uint32_t *tg, size_t nt, uint64_t *bitmap,
			     bool dense)
{
	const unsigned char *base = (const unsigned char *)ids;
	const __m512i off = _mm512_mullo_epi32(
		_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
				  13, 14, 15),
		_mm512_set1_epi32((int)stride));
	size_t cnt = 0, i = 0;

	for (; n - i >= 64; i += 64) {
		uint64_t w = 0;

		for (unsigned k = 0; k < 4; k++) {
			__m512i v = z_load(base + (i + 16 * k) * stride, off,
					   dense, 0xffff);

			w |= (uint64_t)z_cmp(0xffff, v, tg, nt) << (16 * k);
		}
		bitmap[i / 64] = w;
		cnt += (size_t)_mm_popcnt_u64(w);
	}
	if (i < n) {
		size_t rem = n - i;
		uint64_t w = 0;

		for (unsigned k = 0; 16 * k < rem; k++) {
			size_t left = rem - 16 * k;
			__mmask16 m = left >= 16 ? 0xffff :
					(__mmask16)((1U << left) - 1);
			__m512i v = z_load(base + (i + 16 * k) * stride, off,
					   dense, m);

			w |= (uint64_t)z_cmp(m, v, tg, nt) << (16 * k);
		}
		bitmap[i / 64] = w;
		cnt += (size_t)_mm_popcnt_u64(w);
	}
	return cnt;
}

T_AVX512 size_t uhp__route_match_avx512(const uint32_t *ids, size_t stride,
					size_t n, uint32_t target,
					uint64_t *bitmap)
{
	if (stride > UHP_ROUTE_GATHER_MAX_STRIDE)
		return uhp__route_match_scalar(ids, stride, n, target, bitmap);
	ROUTE_CHECK(ids, stride, n);
	if (stride == 4)
		return z_run(ids, 4, n, &target, 1, bitmap, true);
	return z_run(ids, stride, n, &target, 1, bitmap, false);
}

T_AVX512 size_t uhp__route_set_avx512(const uint32_t *ids, size_t stride,
				      size_t n, const uint32_t *targets,
				      size_t ntargets, uint64_t *bitmap)
{
	if (stride > UHP_ROUTE_GATHER_MAX_STRIDE ||
	    ntargets > UHP_ROUTE_SET_VEC_MAX || ntargets == 0)
		return uhp__route_set_scalar(ids, stride, n, targets, ntargets,
					     bitmap);
	ROUTE_CHECK(ids, stride, n);
	if (stride == 4)
		return z_run(ids, 4, n, targets, ntargets, bitmap, true);
	return z_run(ids, stride, n, targets, ntargets, bitmap, false);
}

/* ---- avx2 ---- */

/* Bits of the lanes of v equal to any of tg[0..nt), nt >= 1. */
T_AVX2 INLINE unsigned y_cmp(__m256i v, const uint32_t *tg, size_t nt)
{
	__m256i eq = _mm256_cmpeq_epi32(v, _mm256_set1_epi32((int)tg[0]));

	for (size_t j = 1; j < nt; j++)
		eq = _mm256_or_si256(eq, _mm256_cmpeq_epi32(
					     v, _mm256_set1_epi32((int)tg[j])));
	return (unsigned)_mm256_movemask_ps(_mm256_castsi256_ps(eq));
}

T_AVX2 INLINE __m256i y_load(const unsigned char *p, __m256i off, bool dense)
{
	return dense ? _mm256_loadu_si256((const __m256i *)p) :
		       _mm256_i32gather_epi32((const int *)p, off, 1);
}

/* Lanes whose mask element is all-ones; the others are not read (0). */
T_AVX2 INLINE __m256i y_load_mask(const unsigned char *p, __m256i off,
				  bool dense, __m256i mask)
{
	return dense ? _mm256_maskload_epi32((const int *)p, mask) :
		       _mm256_mask_i32gather_epi32(_mm256_setzero_si256(),
						   (const int *)p, off, mask, 1);
}

T_AVX2 INLINE size_t y_run(const uint32_t *ids, size_t stride, size_t n,
			   const uint32_t *tg, size_t nt, uint64_t *bitmap,
			   bool dense)
{
	const unsigned char *base = (const unsigned char *)ids;
	const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
	const __m256i off = _mm256_mullo_epi32(lane, _mm256_set1_epi32((int)stride));
	size_t cnt = 0, i = 0;

	for (; n - i >= 64; i += 64) {
		uint64_t w = 0;

		for (unsigned k = 0; k < 8; k++) {
			__m256i v = y_load(base + (i + 8 * k) * stride, off, dense);

			w |= (uint64_t)y_cmp(v, tg, nt) << (8 * k);
		}
		bitmap[i / 64] = w;
		cnt += (size_t)_mm_popcnt_u64(w);
	}
	if (i < n) {
		size_t rem = n - i;
		uint64_t w = 0;

		for (unsigned k = 0; 8 * k < rem; k++) {
			size_t left = rem - 8 * k;
			unsigned lanes = left >= 8 ? 8 : (unsigned)left;
			__m256i mask = _mm256_cmpgt_epi32(
				_mm256_set1_epi32((int)lanes), lane);
			__m256i v = y_load_mask(base + (i + 8 * k) * stride,
						off, dense, mask);
			unsigned m = y_cmp(v, tg, nt) & ((1U << lanes) - 1);

			w |= (uint64_t)m << (8 * k);
		}
		bitmap[i / 64] = w;
		cnt += (size_t)_mm_popcnt_u64(w);
	}
	return cnt;
}

T_AVX2 size_t uhp__route_match_avx2(const uint32_t *ids, size_t stride,
				    size_t n, uint32_t target, uint64_t *bitmap)
{
	if (stride > UHP_ROUTE_GATHER_MAX_STRIDE)
		return uhp__route_match_scalar(ids, stride, n, target, bitmap);
	ROUTE_CHECK(ids, stride, n);
	if (stride == 4)
		return y_run(ids, 4, n, &target, 1, bitmap, true);
	return y_run(ids, stride, n, &target, 1, bitmap, false);
}

T_AVX2 size_t uhp__route_set_avx2(const uint32_t *ids, size_t stride,
				  size_t n, const uint32_t *targets,
				  size_t ntargets, uint64_t *bitmap)
{
	if (stride > UHP_ROUTE_GATHER_MAX_STRIDE ||
	    ntargets > UHP_ROUTE_SET_VEC_MAX || ntargets == 0)
		return uhp__route_set_scalar(ids, stride, n, targets, ntargets,
					     bitmap);
	ROUTE_CHECK(ids, stride, n);
	if (stride == 4)
		return y_run(ids, 4, n, targets, ntargets, bitmap, true);
	return y_run(ids, stride, n, targets, ntargets, bitmap, false);
}
#endif /* __x86_64__ */
