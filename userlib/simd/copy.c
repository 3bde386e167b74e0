// SPDX-License-Identifier: MIT
/*
 * uhp_memcpy(): memcpy with its implementation chosen once at run time.
 *
 * Paths (each one complete; the vector ones compiled with per-function
 * target attributes, so the library runs on any x86-64):
 *   avx512   n < 64: one masked load/store (AVX512BW); up to 1 KiB:
 *            2..16 unaligned zmm moves, the last ones overlapping (all in
 *            zmm16..31, so no vzeroupper on the way out); up to 2 KiB:
 *            512-byte steps of 8 moves, then the same; above:
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

/* n > 2048: head/tail saved, aligned 4 x 64 loop, optionally streaming. */
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
 * Up to 1024 bytes: uhp__copy_avx512_entry, in assembly, because the
 * layout is the point. Every size up to 1 KiB is one straight run of
 * loads then stores, the first and last vectors overlapping, in
 * zmm16..zmm31: registers SSE code cannot see, so no vzeroupper on the
 * way out (glibc's memmove does the same; compiled C would pick zmm0..
 * and add vzeroupper). One entry, branches inside it, no tail jump to
 * another function below 2 KiB (the C version took one at 129 bytes and
 * another at 513). glibc (2.36 on Zen 5) runs a 4 x 64 loop from 513
 * bytes until rep movsb at 2112; here every size up to 1 KiB is
 * straight-line: the first 8, 12 or 14 vectors from the start and the
 * last 2 or 4 from the end, so that, with the destination aligned, at
 * most 2..4 stores cross a line (about what glibc's loop stores, with its
 * unaligned head and tail, and no loop, alignment or loop branch);
 * 1025..2048 bytes take 512-byte steps (8 moves) down to that.
 *   n < 64     one masked load/store (k1 = the n low bits)
 *   64..128    first and last zmm
 *   129..256   first 2, last 2
 *   257..512   first 4, last 4
 *   513..640   first 8, last 2
 *   641..768   first 8, last 4
 *   769..896   first 12, last 2
 *   897..1024  first 14, last 2
 *   1025..2048 8 moves per 512-byte step while more than 1 KiB is left
 *   > 2048     tail jump to uhp__copy_avx512_large (C)
 * All temporaries are caller-saved in the SysV ABI (rax, rcx, k1,
 * zmm16..31); rax holds the return value, dst.
 */
#ifdef __CET__
#define COPY_ENDBR "\tendbr64\n"
#else
#define COPY_ENDBR ""
#endif
#define ZL(i, off, base) "\tvmovdqu64 " off "(" base "), %zmm" #i "\n"
#define ZS(i, off, base) "\tvmovdqu64 %zmm" #i ", " off "(" base ")\n"

#define COPY_STEP_MAX_S "2048"	/* 512-byte steps up to here */
UHP_HIDDEN void *uhp__copy_avx512_entry(void *dst, const void *src, size_t n);
UHP_HIDDEN void *uhp__copy_avx512_large(void *dst, const void *src, size_t n);

__asm__(
	"\t.text\n"
	"\t.p2align 6\n"
	"\t.globl uhp__copy_avx512_entry\n"
	"\t.hidden uhp__copy_avx512_entry\n"
	"\t.type uhp__copy_avx512_entry, @function\n"
	"uhp__copy_avx512_entry:\n"
	COPY_ENDBR
	"\tcmp $63, %rdx\n"
	"\tjbe .Lcz_lt64\n"
	"\tcmp $128, %rdx\n"
	"\tja .Lcz_gt128\n"
	ZL(16, "", "%rsi") ZL(17, "-64", "%rsi,%rdx")
	ZS(16, "", "%rdi") ZS(17, "-64", "%rdi,%rdx")
	"\tmov %rdi, %rax\n"
	"\tret\n"
	"\t.p2align 3\n"
	".Lcz_lt64:\n"
	"\tmov $-1, %rax\n"
	"\tbzhi %rdx, %rax, %rcx\n"
	"\tkmovq %rcx, %k1\n"
	"\tvmovdqu8 (%rsi), %zmm16{%k1}{z}\n"
	"\tvmovdqu8 %zmm16, (%rdi){%k1}\n"
	"\tmov %rdi, %rax\n"
	"\tret\n"
	".Lcz_gt128:\n"
	"\tmov %rdi, %rax\n"
	"\tcmp $512, %rdx\n"
	"\tja .Lcz_gt512\n"
	"\tcmp $256, %rdx\n"
	"\tja .Lcz_gt256\n"
	ZL(16, "", "%rsi") ZL(17, "64", "%rsi")
	ZL(18, "-128", "%rsi,%rdx") ZL(19, "-64", "%rsi,%rdx")
	ZS(16, "", "%rdi") ZS(17, "64", "%rdi")
	ZS(18, "-128", "%rdi,%rdx") ZS(19, "-64", "%rdi,%rdx")
	"\tret\n"
	".Lcz_gt256:\n"
	ZL(16, "", "%rsi") ZL(17, "64", "%rsi")
	ZL(18, "128", "%rsi") ZL(19, "192", "%rsi")
	ZL(20, "-256", "%rsi,%rdx") ZL(21, "-192", "%rsi,%rdx")
	ZL(22, "-128", "%rsi,%rdx") ZL(23, "-64", "%rsi,%rdx")
	ZS(16, "", "%rdi") ZS(17, "64", "%rdi")
	ZS(18, "128", "%rdi") ZS(19, "192", "%rdi")
	ZS(20, "-256", "%rdi,%rdx") ZS(21, "-192", "%rdi,%rdx")
	ZS(22, "-128", "%rdi,%rdx") ZS(23, "-64", "%rdi,%rdx")
	"\tret\n"
	".Lcz_gt512:\n"
	"\tcmp $1024, %rdx\n"
	"\tja .Lcz_gt1024\n"
	".Lcz_513_1024:\n"
	ZL(16, "", "%rsi") ZL(17, "64", "%rsi")
	ZL(18, "128", "%rsi") ZL(19, "192", "%rsi")
	ZL(20, "256", "%rsi") ZL(21, "320", "%rsi")
	ZL(22, "384", "%rsi") ZL(23, "448", "%rsi")
	ZL(30, "-128", "%rsi,%rdx") ZL(31, "-64", "%rsi,%rdx")
	"\tcmp $768, %rdx\n"
	"\tja .Lcz_gt768\n"
	"\tcmp $640, %rdx\n"
	"\tjbe .Lcz_le640\n"
	ZL(28, "-256", "%rsi,%rdx") ZL(29, "-192", "%rsi,%rdx")
	ZS(28, "-256", "%rdi,%rdx") ZS(29, "-192", "%rdi,%rdx")
	".Lcz_le640:\n"
	ZS(16, "", "%rdi") ZS(17, "64", "%rdi")
	ZS(18, "128", "%rdi") ZS(19, "192", "%rdi")
	ZS(20, "256", "%rdi") ZS(21, "320", "%rdi")
	ZS(22, "384", "%rdi") ZS(23, "448", "%rdi")
	ZS(30, "-128", "%rdi,%rdx") ZS(31, "-64", "%rdi,%rdx")
	"\tret\n"
	".Lcz_gt768:\n"
	ZL(24, "512", "%rsi") ZL(25, "576", "%rsi")
	ZL(26, "640", "%rsi") ZL(27, "704", "%rsi")
	"\tcmp $896, %rdx\n"
	"\tjbe .Lcz_le896\n"
	ZL(28, "768", "%rsi") ZL(29, "832", "%rsi")
	ZS(28, "768", "%rdi") ZS(29, "832", "%rdi")
	".Lcz_le896:\n"
	ZS(16, "", "%rdi") ZS(17, "64", "%rdi")
	ZS(18, "128", "%rdi") ZS(19, "192", "%rdi")
	ZS(20, "256", "%rdi") ZS(21, "320", "%rdi")
	ZS(22, "384", "%rdi") ZS(23, "448", "%rdi")
	ZS(24, "512", "%rdi") ZS(25, "576", "%rdi")
	ZS(26, "640", "%rdi") ZS(27, "704", "%rdi")
	ZS(30, "-128", "%rdi,%rdx") ZS(31, "-64", "%rdi,%rdx")
	"\tret\n"
	".Lcz_gt1024:\n"
	"\tcmp $" COPY_STEP_MAX_S ", %rdx\n"
	"\tja uhp__copy_avx512_large\n"
	".Lcz_step512:\n"
	ZL(16, "", "%rsi") ZL(17, "64", "%rsi")
	ZL(18, "128", "%rsi") ZL(19, "192", "%rsi")
	ZL(20, "256", "%rsi") ZL(21, "320", "%rsi")
	ZL(22, "384", "%rsi") ZL(23, "448", "%rsi")
	ZS(16, "", "%rdi") ZS(17, "64", "%rdi")
	ZS(18, "128", "%rdi") ZS(19, "192", "%rdi")
	ZS(20, "256", "%rdi") ZS(21, "320", "%rdi")
	ZS(22, "384", "%rdi") ZS(23, "448", "%rdi")
	"\tadd $512, %rsi\n"
	"\tadd $512, %rdi\n"
	"\tsub $512, %rdx\n"
	"\tcmp $1024, %rdx\n"
	"\tja .Lcz_step512\n"
	"\tjmp .Lcz_513_1024\n"
	"\t.size uhp__copy_avx512_entry, .-uhp__copy_avx512_entry\n"
	"\t.text\n");

#undef ZL
#undef ZS

/* More than 2 KiB: the aligned loop or rep movsb (tail-jumped to) */
T_AVX512 __attribute__((used))
void *uhp__copy_avx512_large(void *dst, const void *src, size_t n)
{
	if (n < __atomic_load_n(&copy_erms_min, __ATOMIC_RELAXED))
		copy_avx512_big(dst, src, n);
	else
		rep_movsb(dst, src, n);
	return dst;
}

#if defined(__SANITIZE_ADDRESS__)
/* the checks of the memcpy interceptor, then the same code */
static void *copy_avx512(void *dst, const void *src, size_t n)
{
	COPY_CHECK(dst, src, n);
	return uhp__copy_avx512_entry(dst, src, n);
}
#else
#define copy_avx512 uhp__copy_avx512_entry
#endif

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
