// SPDX-License-Identifier: MIT
/*
 * uhp_memcpy(): memcpy with its implementation chosen once at run time.
 *
 * Paths (each one complete; the vector ones compiled with per-function
 * target attributes, so the library runs on any x86-64):
 *   avx512   n < 64: one masked load/store (AVX512BW); up to 512 bytes:
 *            2/4/8 unaligned zmm moves, the last ones overlapping (both in
 *            zmm16..23, so no vzeroupper on the way out); above:
 *            the first zmm and the last four are loaded up front, the
 *            destination is aligned to 64 and a loop moves 4 x 64 bytes
 *            per turn with aligned stores, then the saved head and tail
 *            are stored (overlapping what the loop wrote: same bytes).
 *            Once source and destination no longer fit L1 together
 *            (n >= copy_erms_min = L1d / 2), 'rep movsb' if the CPU has
 *            ERMS: it writes whole lines without reading them first, which
 *            a vector loop with ordinary stores cannot (on Zen 5: 1.7x at
 *            32..256 KiB, 1.2x at 64 MiB, and still ahead of non-temporal
 *            stores there, misaligned or not). Without ERMS, from
 *            UHP_COPY_NT_MIN on, the loop uses non-temporal stores + sfence
 *            (a copy that large does not stay in the caches anyway, and
 *            streaming stores skip the reads too).
 *   avx2     the same with 32-byte ymm registers (no masks: n < 32 by
 *            overlapping scalar/xmm moves).
 *   erms     'rep movsb' from 64 bytes on (ERMS); smaller by SSE2 moves.
 *   generic  the C library's memcpy().
 * UHP_COPY=avx512|avx2|erms|generic|auto forces a path; an unknown value or
 * one this CPU lacks means auto (avx512, else avx2, else generic).
 *
 * memcpy semantics: the buffers must not overlap (no path checks).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "uhp_internal.h"

/*
 * Under AddressSanitizer (the host tests) the vector paths are checked like
 * the memcpy interceptor checks memcpy: masked moves and rep movsb are not
 * instrumented, and the library's payload copies go through here.
 */
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <stdio.h>

static void asan_check(const void *p, size_t n, const char *what)
{
	void *bad = n ? __asan_region_is_poisoned((void *)p, n) : NULL;

	if (bad) {
		fprintf(stderr, "uhp_memcpy: %s [%p, +%zu) touches poisoned %p\n",
			what, p, n, bad);
		__asan_describe_address(bad);
		abort();
	}
}
#define COPY_CHECK(d, s, n) do {					\
		asan_check((s), (n), "source");				\
		asan_check((d), (n), "destination");			\
	} while (0)
#else
#define COPY_CHECK(d, s, n) do { } while (0)
#endif

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>

#define T_AVX512	__attribute__((target("avx2,avx512f,avx512bw,bmi2")))
#define T_AVX2		__attribute__((target("avx2")))

#define COPY_NT_MIN	UHP_COPY_NT_MIN

/*
 * From here on the vector paths use 'rep movsb'; SIZE_MAX (never) without
 * ERMS. Set once (copy_tune) before uhp__copy_path_fn() hands out any path
 * that reads it; tests change it (uhp__copy_set_erms_min) to reach the
 * non-temporal loop.
 */
static size_t copy_erms_min = SIZE_MAX;

static inline void rep_movsb(void *d, const void *s, size_t n)
{
	__asm__ volatile("rep movsb"
			 : "+D"(d), "+S"(s), "+c"(n)
			 : : "memory");
}

static bool cpu_erms(void)
{
	unsigned a, b, c, d;

	if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
		return false;
	return b & (1U << 9);	/* CPUID.(EAX=7,ECX=0):EBX.ERMS[bit 9] */
}

/* L1d / 2 (source and destination together fill it), 8..64 KiB. */
static size_t erms_min_for_cpu(void)
{
	long l1 = sysconf(_SC_LEVEL1_DCACHE_SIZE);

	if (!cpu_erms())
		return SIZE_MAX;
	if (l1 <= 0)
		l1 = 32 << 10;
	if (l1 < 16 << 10)
		l1 = 16 << 10;
	if (l1 > 128 << 10)
		l1 = 128 << 10;
	return (size_t)l1 / 2;
}

/* Up to 64 bytes with baseline (SSE2) moves: first and last pieces overlap. */
static inline void copy_small(unsigned char *d, const unsigned char *s, size_t n)
{
	if (n >= 16) {
		__m128i a = _mm_loadu_si128((const __m128i *)s);
		__m128i b = _mm_loadu_si128((const __m128i *)(s + n - 16));

		if (n > 32) {
			__m128i c = _mm_loadu_si128((const __m128i *)(s + 16));
			__m128i e = _mm_loadu_si128((const __m128i *)(s + n - 32));

			_mm_storeu_si128((__m128i *)(d + 16), c);
			_mm_storeu_si128((__m128i *)(d + n - 32), e);
		}
		_mm_storeu_si128((__m128i *)d, a);
		_mm_storeu_si128((__m128i *)(d + n - 16), b);
	} else if (n >= 8) {
		uint64_t a, b;

		memcpy(&a, s, 8);
		memcpy(&b, s + n - 8, 8);
		memcpy(d, &a, 8);
		memcpy(d + n - 8, &b, 8);
	} else if (n >= 4) {
		uint32_t a, b;

		memcpy(&a, s, 4);
		memcpy(&b, s + n - 4, 4);
		memcpy(d, &a, 4);
		memcpy(d + n - 4, &b, 4);
	} else if (n >= 2) {
		uint16_t a, b;

		memcpy(&a, s, 2);
		memcpy(&b, s + n - 2, 2);
		memcpy(d, &a, 2);
		memcpy(d + n - 2, &b, 2);
	} else if (n) {
		*d = *s;
	}
}

/* ---- avx512 ---- */

#define Z_LD(p)		_mm512_loadu_si512((const void *)(p))
#define Z_ST(p, v)	_mm512_storeu_si512((void *)(p), (v))

/* n > 512: head/tail saved, aligned 4 x 64 loop, optionally streaming. */
T_AVX512 static void copy_avx512_big(unsigned char *d, const unsigned char *s,
				     size_t n)
{
	__m512i h = Z_LD(s);
	__m512i t0 = Z_LD(s + n - 256), t1 = Z_LD(s + n - 192);
	__m512i t2 = Z_LD(s + n - 128), t3 = Z_LD(s + n - 64);
	unsigned char *dend = d + n - 256;	/* the loop stops before */
	size_t skew = 64 - ((uintptr_t)d & 63);	/* 1..64 */
	unsigned char *dd = d + skew;
	const unsigned char *ss = s + skew;

	if (n >= COPY_NT_MIN) {
		for (; dd < dend; dd += 256, ss += 256) {
			__m512i a = Z_LD(ss), b = Z_LD(ss + 64);
			__m512i c = Z_LD(ss + 128), e = Z_LD(ss + 192);

			_mm512_stream_si512((void *)dd, a);
			_mm512_stream_si512((void *)(dd + 64), b);
			_mm512_stream_si512((void *)(dd + 128), c);
			_mm512_stream_si512((void *)(dd + 192), e);
		}
		_mm_sfence();
	} else {
		for (; dd < dend; dd += 256, ss += 256) {
			__m512i a = Z_LD(ss), b = Z_LD(ss + 64);
			__m512i c = Z_LD(ss + 128), e = Z_LD(ss + 192);

			_mm512_store_si512((void *)dd, a);
			_mm512_store_si512((void *)(dd + 64), b);
			_mm512_store_si512((void *)(dd + 128), c);
			_mm512_store_si512((void *)(dd + 192), e);
		}
	}
	Z_ST(d, h);
	Z_ST(d + n - 256, t0);
	Z_ST(d + n - 192, t1);
	Z_ST(d + n - 128, t2);
	Z_ST(d + n - 64, t3);
}

/*
 * Up to 512 bytes in zmm16..zmm23: registers SSE code cannot see, so no
 * vzeroupper is needed on the way out (glibc's memmove does the same);
 * inline asm because the compiler would pick zmm0.. and add vzeroupper.
 */
#define Z_CLOBBER "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", \
		  "xmm22", "xmm23", "memory"

T_AVX512 __attribute__((noinline))
static void *copy_avx512_large(void *dst, const void *src, size_t n)
{
	if (n < __atomic_load_n(&copy_erms_min, __ATOMIC_RELAXED))
		copy_avx512_big(dst, src, n);
	else
		rep_movsb(dst, src, n);
	return dst;
}

/* 129 bytes and up: a tail jump away, as in glibc, not a call */
T_AVX512 __attribute__((noinline))
static void *copy_avx512_129(void *dst, const void *src, size_t n)
{
	if (n > 512)
		return copy_avx512_large(dst, src, n);
	if (n <= 256) {
		__asm__ volatile(
			"vmovdqu64 (%[s]), %%zmm16\n\t"
			"vmovdqu64 64(%[s]), %%zmm17\n\t"
			"vmovdqu64 -128(%[s],%[n]), %%zmm18\n\t"
			"vmovdqu64 -64(%[s],%[n]), %%zmm19\n\t"
			"vmovdqu64 %%zmm16, (%[d])\n\t"
			"vmovdqu64 %%zmm17, 64(%[d])\n\t"
			"vmovdqu64 %%zmm18, -128(%[d],%[n])\n\t"
			"vmovdqu64 %%zmm19, -64(%[d],%[n])"
			: : [d] "r"(dst), [s] "r"(src), [n] "r"(n) : Z_CLOBBER);
	} else {
		__asm__ volatile(
			"vmovdqu64 (%[s]), %%zmm16\n\t"
			"vmovdqu64 64(%[s]), %%zmm17\n\t"
			"vmovdqu64 128(%[s]), %%zmm18\n\t"
			"vmovdqu64 192(%[s]), %%zmm19\n\t"
			"vmovdqu64 -256(%[s],%[n]), %%zmm20\n\t"
			"vmovdqu64 -192(%[s],%[n]), %%zmm21\n\t"
			"vmovdqu64 -128(%[s],%[n]), %%zmm22\n\t"
			"vmovdqu64 -64(%[s],%[n]), %%zmm23\n\t"
			"vmovdqu64 %%zmm16, (%[d])\n\t"
			"vmovdqu64 %%zmm17, 64(%[d])\n\t"
			"vmovdqu64 %%zmm18, 128(%[d])\n\t"
			"vmovdqu64 %%zmm19, 192(%[d])\n\t"
			"vmovdqu64 %%zmm20, -256(%[d],%[n])\n\t"
			"vmovdqu64 %%zmm21, -192(%[d],%[n])\n\t"
			"vmovdqu64 %%zmm22, -128(%[d],%[n])\n\t"
			"vmovdqu64 %%zmm23, -64(%[d],%[n])"
			: : [d] "r"(dst), [s] "r"(src), [n] "r"(n) : Z_CLOBBER);
	}
	return dst;
}

/* 64..128 bytes fall straight through (glibc's branch layout) */
T_AVX512 __attribute__((aligned(64)))
static void *copy_avx512(void *dst, const void *src, size_t n)
{
	COPY_CHECK(dst, src, n);
	if (n >= 64) {
		if (n > 128)
			return copy_avx512_129(dst, src, n);
		__asm__ volatile(
			"vmovdqu64 (%[s]), %%zmm16\n\t"
			"vmovdqu64 -64(%[s],%[n]), %%zmm17\n\t"
			"vmovdqu64 %%zmm16, (%[d])\n\t"
			"vmovdqu64 %%zmm17, -64(%[d],%[n])"
			: : [d] "r"(dst), [s] "r"(src), [n] "r"(n) : Z_CLOBBER);
		return dst;
	}
	__asm__ volatile(
		"bzhi	%[n], %[ones], %%rcx\n\t"
		"kmovq	%%rcx, %%k1\n\t"
		"vmovdqu8 (%[s]), %%zmm16%{%%k1%}%{z%}\n\t"
		"vmovdqu8 %%zmm16, (%[d])%{%%k1%}"
		: : [d] "r"(dst), [s] "r"(src), [n] "r"(n), [ones] "r"(~0ULL)
		: "rcx", "k1", Z_CLOBBER);
	return dst;
}

/* ---- avx2 ---- */

#define Y_LD(p)		_mm256_loadu_si256((const __m256i *)(p))
#define Y_ST(p, v)	_mm256_storeu_si256((__m256i *)(p), (v))

/* n > 256: as copy_avx512_big with 32-byte vectors, 4 x 32 per turn. */
T_AVX2 static void copy_avx2_big(unsigned char *d, const unsigned char *s,
				 size_t n)
{
	__m256i h = Y_LD(s);
	__m256i t0 = Y_LD(s + n - 128), t1 = Y_LD(s + n - 96);
	__m256i t2 = Y_LD(s + n - 64), t3 = Y_LD(s + n - 32);
	unsigned char *dend = d + n - 128;
	size_t skew = 32 - ((uintptr_t)d & 31);	/* 1..32 */
	unsigned char *dd = d + skew;
	const unsigned char *ss = s + skew;

	if (n >= COPY_NT_MIN) {
		for (; dd < dend; dd += 128, ss += 128) {
			__m256i a = Y_LD(ss), b = Y_LD(ss + 32);
			__m256i c = Y_LD(ss + 64), e = Y_LD(ss + 96);

			_mm256_stream_si256((__m256i *)dd, a);
			_mm256_stream_si256((__m256i *)(dd + 32), b);
			_mm256_stream_si256((__m256i *)(dd + 64), c);
			_mm256_stream_si256((__m256i *)(dd + 96), e);
		}
		_mm_sfence();
	} else {
		for (; dd < dend; dd += 128, ss += 128) {
			__m256i a = Y_LD(ss), b = Y_LD(ss + 32);
			__m256i c = Y_LD(ss + 64), e = Y_LD(ss + 96);

			_mm256_store_si256((__m256i *)dd, a);
			_mm256_store_si256((__m256i *)(dd + 32), b);
			_mm256_store_si256((__m256i *)(dd + 64), c);
			_mm256_store_si256((__m256i *)(dd + 96), e);
		}
	}
	Y_ST(d, h);
	Y_ST(d + n - 128, t0);
	Y_ST(d + n - 96, t1);
	Y_ST(d + n - 64, t2);
	Y_ST(d + n - 32, t3);
}

T_AVX2 __attribute__((aligned(64)))
static void *copy_avx2(void *dst, const void *src, size_t n)
{
	unsigned char *d = dst;
	const unsigned char *s = src;

	COPY_CHECK(d, s, n);

	if (n <= 32) {
		copy_small(d, s, n);
	} else if (n <= 64) {
		__m256i a = Y_LD(s), b = Y_LD(s + n - 32);

		Y_ST(d, a);
		Y_ST(d + n - 32, b);
	} else if (n <= 128) {
		__m256i a = Y_LD(s), b = Y_LD(s + 32);
		__m256i c = Y_LD(s + n - 64), e = Y_LD(s + n - 32);

		Y_ST(d, a);
		Y_ST(d + 32, b);
		Y_ST(d + n - 64, c);
		Y_ST(d + n - 32, e);
	} else if (n <= 256) {
		__m256i a = Y_LD(s), b = Y_LD(s + 32);
		__m256i c = Y_LD(s + 64), e = Y_LD(s + 96);
		__m256i f = Y_LD(s + n - 128), g = Y_LD(s + n - 96);
		__m256i h = Y_LD(s + n - 64), i = Y_LD(s + n - 32);

		Y_ST(d, a);
		Y_ST(d + 32, b);
		Y_ST(d + 64, c);
		Y_ST(d + 96, e);
		Y_ST(d + n - 128, f);
		Y_ST(d + n - 96, g);
		Y_ST(d + n - 64, h);
		Y_ST(d + n - 32, i);
	} else if (n < __atomic_load_n(&copy_erms_min, __ATOMIC_RELAXED)) {
		copy_avx2_big(d, s, n);
	} else {
		rep_movsb(d, s, n);
	}
	return dst;
}

/* ---- erms ---- */

static void *copy_erms(void *dst, const void *src, size_t n)
{
	COPY_CHECK(dst, src, n);
	if (n <= 64)
		copy_small(dst, src, n);
	else
		rep_movsb(dst, src, n);
	return dst;
}
#endif /* __x86_64__ */

static void *copy_generic(void *dst, const void *src, size_t n)
{
	return memcpy(dst, src, n);
}

/* ---- dispatch ---- */

static const char *const path_names[UHP_COPY_NR_PATHS] = {
	[UHP_COPY_GENERIC] = "generic",
	[UHP_COPY_ERMS] = "erms",
	[UHP_COPY_AVX2] = "avx2",
	[UHP_COPY_AVX512] = "avx512",
};

const char *uhp__copy_path_name(unsigned path)
{
	return path < UHP_COPY_NR_PATHS ? path_names[path] : "?";
}

#if defined(__x86_64__)
static pthread_once_t copy_tune_once = PTHREAD_ONCE_INIT;

static void copy_tune(void)
{
	__atomic_store_n(&copy_erms_min, erms_min_for_cpu(), __ATOMIC_RELAXED);
}
#endif

size_t uhp__copy_set_erms_min(size_t n)
{
#if defined(__x86_64__)
	pthread_once(&copy_tune_once, copy_tune);
	return __atomic_exchange_n(&copy_erms_min, n, __ATOMIC_RELAXED);
#else
	(void)n;
	return SIZE_MAX;
#endif
}

uhp_copy_fn uhp__copy_path_fn(unsigned path, const char **why_not)
{
	const char *why = NULL;
	uhp_copy_fn fn = NULL;

#if defined(__x86_64__)
	pthread_once(&copy_tune_once, copy_tune);
#endif

	switch (path) {
	case UHP_COPY_GENERIC:
		fn = copy_generic;
		break;
#if defined(__x86_64__)
	case UHP_COPY_ERMS:
		if (!cpu_erms())
			why = "CPU lacks ERMS";
		fn = copy_erms;
		break;
	case UHP_COPY_AVX2:
		__builtin_cpu_init();	/* libgcc checks the OS ymm state too */
		if (!__builtin_cpu_supports("avx2"))
			why = "CPU or OS lacks AVX2";
		fn = copy_avx2;
		break;
	case UHP_COPY_AVX512:
		__builtin_cpu_init();
		if (!__builtin_cpu_supports("avx512f") ||
		    !__builtin_cpu_supports("avx512bw") ||
		    !__builtin_cpu_supports("bmi2"))
			why = "CPU or OS lacks AVX512F/BW or BMI2";
		fn = copy_avx512;
		break;
#else
	case UHP_COPY_ERMS:
	case UHP_COPY_AVX2:
	case UHP_COPY_AVX512:
		why = "not an x86-64 build";
		break;
#endif
	default:
		why = "no such path";
		break;
	}
	if (why_not)
		*why_not = why;
	return why ? NULL : fn;
}

static bool copy_have(unsigned path)
{
	return uhp__copy_path_fn(path, NULL) != NULL;
}

static unsigned copy_choose(void)
{
	/* erms alone is not preferred: glibc already uses it where it pays */
	static const unsigned prefer[] = { UHP_COPY_AVX512, UHP_COPY_AVX2 };

	return uhp__dispatch_choose("UHP_COPY", path_names, UHP_COPY_NR_PATHS,
				    copy_have, prefer, 2, UHP_COPY_GENERIC);
}

static void *copy_resolve(void *dst, const void *src, size_t n);

/*
 * copy_resolve until the first call has chosen (see crc32c.c: same
 * scheme). Library-wide (hidden): uhp__memcpy() calls through it directly.
 */
uhp_copy_fn uhp__copy_fn = copy_resolve;
static unsigned copy_path = UHP_COPY_NR_PATHS;

static uhp_copy_fn copy_ready(void)
{
	uhp_copy_fn fn = __atomic_load_n(&uhp__copy_fn, __ATOMIC_ACQUIRE);

	if (uhp_unlikely(fn == copy_resolve)) {
		unsigned path = copy_choose();

		fn = uhp__copy_path_fn(path, NULL);
		__atomic_store_n(&copy_path, path, __ATOMIC_RELAXED);
		__atomic_store_n(&uhp__copy_fn, fn, __ATOMIC_RELEASE);
	}
	return fn;
}

static void *copy_resolve(void *dst, const void *src, size_t n)
{
	return copy_ready()(dst, src, n);
}

const char *uhp__copy_impl(void)
{
	copy_ready();
	return uhp__copy_path_name(__atomic_load_n(&copy_path, __ATOMIC_RELAXED));
}

UHP_API void *uhp_memcpy(void *dst, const void *src, size_t n)
{
	return uhp__memcpy(dst, src, n);
}
