// SPDX-License-Identifier: MIT
/*
 * CRC32C (Castagnoli, polynomial 0x1EDC6F41, reflected as 0x82F63B78):
 * uhp_crc32c() and the choice of its implementation.
 *
 * Convention: like the kernel's crc32c(seed, buf, len), no inversion inside;
 * the standard CRC is uhp_crc32c(~0U, buf, len) ^ ~0U.
 *
 * Paths (each handles every length; the x86 ones are in crc32c_x86.c and
 * compiled with target attributes, so the library runs on any x86-64):
 *   table   portable slicing-by-8 (crc32c_table.c)
 *   sse42   one crc32-instruction chain: short records
 *   pclmul  three crc32 chains joined with PCLMULQDQ: mid sizes and up
 *   vpclmul VPCLMULQDQ folding on ymm from UHP_CRC32C_VPCL256_MIN bytes,
 *           for CPUs with AVX2 and VPCLMULQDQ but no AVX-512 (Zen 3,
 *           Alder Lake and later client parts)
 *   avx512  VPCLMULQDQ folding on zmm from UHP_CRC32C_AVX512_MIN bytes
 *   avx512mix  the same, mixed with crc32 chains from 1 KiB (faster on
 *           AMD Zen 5, slower on Intel: preferred on AMD CPUs only)
 * The best path the CPU (and OS: AVX-512 state enabled) supports is picked
 * once, at the first call, and stored in a function pointer: no CPUID per
 * call. UHP_CRC=table|sse42|pclmul|vpclmul|avx512|avx512mix|auto forces a path; an unknown
 * value or a path this CPU lacks means auto.
 *
 * auto also times the pick against the table once (crc_calibrate()): a CPU
 * that emulates the instructions (QEMU TCG, where a crc32 or pclmulqdq is a
 * call into a helper) runs the table 2-4x faster, and gets it. On real
 * hardware the table is 4-20x slower and never wins; the margin keeps a
 * noisy trial from switching.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "uhp_internal.h"

static const char *const path_names[UHP_CRC_NR_PATHS] = {
	[UHP_CRC_TABLE] = "table",
	[UHP_CRC_SSE42] = "sse42",
	[UHP_CRC_PCLMUL] = "pclmul",
	[UHP_CRC_VPCLMUL] = "vpclmul",
	[UHP_CRC_AVX512] = "avx512",
	[UHP_CRC_AVX512MIX] = "avx512mix",
};

const char *uhp__crc32c_path_name(unsigned path)
{
	return path < UHP_CRC_NR_PATHS ? path_names[path] : "?";
}

uhp_crc_fn uhp__crc32c_path_fn(unsigned path, const char **why_not)
{
	const char *why = NULL;
	uhp_crc_fn fn = NULL;

	switch (path) {
	case UHP_CRC_TABLE:
		fn = uhp__crc32c_table;
		break;
#if defined(__x86_64__)
	case UHP_CRC_SSE42:
		__builtin_cpu_init();
		if (!__builtin_cpu_supports("sse4.2"))
			why = "CPU lacks SSE4.2";
		fn = uhp__crc32c_sse42;
		break;
	case UHP_CRC_PCLMUL:
		__builtin_cpu_init();
		if (!__builtin_cpu_supports("sse4.2") ||
		    !__builtin_cpu_supports("pclmul"))
			why = "CPU lacks SSE4.2 or PCLMULQDQ";
		fn = uhp__crc32c_pclmul;
		break;
	case UHP_CRC_VPCLMUL:
		/* libgcc checks that the OS saves the ymm state (XCR0) */
		__builtin_cpu_init();
		if (!__builtin_cpu_supports("sse4.2") ||
		    !__builtin_cpu_supports("pclmul") ||
		    !__builtin_cpu_supports("avx2") ||
		    !__builtin_cpu_supports("vpclmulqdq"))
			why = "CPU or OS lacks AVX2 or VPCLMULQDQ";
		fn = uhp__crc32c_vpclmul;
		break;
	case UHP_CRC_AVX512:
	case UHP_CRC_AVX512MIX:
		/* libgcc also checks that the OS saves the zmm/opmask state */
		__builtin_cpu_init();
		if (!__builtin_cpu_supports("sse4.2") ||
		    !__builtin_cpu_supports("pclmul") ||
		    !__builtin_cpu_supports("avx512f") ||
		    !__builtin_cpu_supports("avx512vl") ||
		    !__builtin_cpu_supports("vpclmulqdq"))
			why = "CPU or OS lacks AVX512F/VL or VPCLMULQDQ";
		fn = path == UHP_CRC_AVX512 ? uhp__crc32c_avx512 :
					      uhp__crc32c_avx512mix;
		break;
#else
	case UHP_CRC_SSE42:
	case UHP_CRC_PCLMUL:
	case UHP_CRC_VPCLMUL:
	case UHP_CRC_AVX512:
	case UHP_CRC_AVX512MIX:
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

static bool crc_have(unsigned path)
{
	return uhp__crc32c_path_fn(path, NULL) != NULL;
}

static unsigned crc_choose(void)
{
	static const unsigned prefer[] = {
		UHP_CRC_AVX512, UHP_CRC_VPCLMUL, UHP_CRC_PCLMUL, UHP_CRC_SSE42,
	};
	static const unsigned prefer_amd[] = {
		UHP_CRC_AVX512MIX, UHP_CRC_VPCLMUL, UHP_CRC_PCLMUL, UHP_CRC_SSE42,
	};
	bool amd = false;
	const char *force = getenv("UHP_CRC");

	if (force && strcmp(force, "sse4.2") == 0 && crc_have(UHP_CRC_SSE42))
		return UHP_CRC_SSE42;	/* the old name */
#if defined(__x86_64__)
	/* folds + crc32 chains win on AMD (Zen 5), folds alone on Intel */
	__builtin_cpu_init();
	amd = __builtin_cpu_is("amd");
#endif
	return uhp__dispatch_choose("UHP_CRC", path_names, UHP_CRC_NR_PATHS,
				    crc_have, amd ? prefer_amd : prefer, 4,
				    UHP_CRC_TABLE);
}

/*
 * Best of CRC_TRIALS runs of CRC_CALLS calls over CRC_CAL_LEN bytes, in ns:
 * ~3 us of the first call on real hardware, ~0.5 ms under TCG, where a
 * timer interrupt inside a run is tens of microseconds: 9 runs, so that
 * one of each is clean.
 */
#define CRC_CAL_LEN	256
#define CRC_CALLS	8
#define CRC_TRIALS	9
/* The table must beat the pick by this factor (x 4) to replace it. */
#define CRC_CAL_MARGIN4	6	/* 1.5x */

static uint64_t crc_time(uhp_crc_fn fn, const unsigned char *buf)
{
	uint64_t best = UINT64_MAX;
	volatile uint32_t sink = 0;

	for (int t = 0; t < CRC_TRIALS; t++) {
		struct timespec a, b;
		uint64_t ns;
		uint32_t c = 0;

		clock_gettime(CLOCK_MONOTONIC, &a);
		for (int i = 0; i < CRC_CALLS; i++)
			c += fn(~0U, buf, CRC_CAL_LEN);
		clock_gettime(CLOCK_MONOTONIC, &b);
		sink += c;
		ns = (uint64_t)(b.tv_sec - a.tv_sec) * 1000000000ULL +
		     (uint64_t)(b.tv_nsec - a.tv_nsec);
		if (ns < best)
			best = ns;
	}
	(void)sink;
	return best;
}

/* Only a clear win (CRC_CAL_MARGIN4 / 4) replaces the CPUID pick. */
bool uhp__crc_prefer_table(uint64_t pick_ns, uint64_t table_ns)
{
	return table_ns * CRC_CAL_MARGIN4 < pick_ns * 4;
}

/* path, or the table if it is CRC_CAL_MARGIN4 / 4 times faster here. */
static unsigned crc_calibrate(unsigned path)
{
	unsigned char buf[CRC_CAL_LEN];
	uhp_crc_fn fn = uhp__crc32c_path_fn(path, NULL);
	uhp_crc_fn table = uhp__crc32c_path_fn(UHP_CRC_TABLE, NULL);

	if (path == UHP_CRC_TABLE || !fn || !table)
		return path;
	for (unsigned i = 0; i < sizeof(buf); i++)
		buf[i] = (unsigned char)(i * 131 + 7);
	/* Untimed first calls: the table's build, first-touch page faults
	 * (copy-on-write after fork()), an emulator's first translation. */
	(void)fn(~0U, buf, sizeof(buf));
	(void)table(~0U, buf, sizeof(buf));
	if (uhp__crc_prefer_table(crc_time(fn, buf), crc_time(table, buf)))
		return UHP_CRC_TABLE;
	return path;
}

/* A forced path is kept as it is; auto (or none) is timed. */
static unsigned crc_choose_timed(void)
{
	const char *force = getenv("UHP_CRC");
	unsigned path = crc_choose();

	if (force && strcmp(force, "auto") != 0 &&
	    (strcmp(force, uhp__crc32c_path_name(path)) == 0 ||
	     (strcmp(force, "sse4.2") == 0 && path == UHP_CRC_SSE42)))
		return path;
	return crc_calibrate(path);
}

static uint32_t crc_resolve(uint32_t crc, const void *buf, size_t len);

/*
 * The implementation in use: crc_resolve until the first call has chosen.
 * Threads racing on the first call may time differently and store
 * different paths: each computes the same CRC, and the last store stays;
 * release/acquire makes the chosen path's state (the table path's tables
 * are built under its own pthread_once) visible. The acquire load is a
 * plain mov on x86.
 */
static uhp_crc_fn crc_impl = crc_resolve;
static unsigned crc_path = UHP_CRC_NR_PATHS;

static uhp_crc_fn crc_ready(void)
{
	uhp_crc_fn fn = __atomic_load_n(&crc_impl, __ATOMIC_ACQUIRE);

	if (uhp_unlikely(fn == crc_resolve)) {
		unsigned path = crc_choose_timed();

		fn = uhp__crc32c_path_fn(path, NULL);
		__atomic_store_n(&crc_path, path, __ATOMIC_RELAXED);
		__atomic_store_n(&crc_impl, fn, __ATOMIC_RELEASE);
	}
	return fn;
}

static uint32_t crc_resolve(uint32_t crc, const void *buf, size_t len)
{
	return crc_ready()(crc, buf, len);
}

const char *uhp__crc32c_impl(void)
{
	crc_ready();
	return uhp__crc32c_path_name(__atomic_load_n(&crc_path, __ATOMIC_RELAXED));
}

UHP_API uint32_t uhp_crc32c(uint32_t crc, const void *buf, size_t len)
{
	return __atomic_load_n(&crc_impl, __ATOMIC_ACQUIRE)(crc, buf, len);
}
