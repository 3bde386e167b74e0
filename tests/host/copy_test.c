// SPDX-License-Identifier: MIT
/*
 * copy_test: uhp_memcpy() and each of its paths (generic, erms, avx2,
 * avx512; a path this CPU lacks is reported "# SKIP" with the reason).
 *  - every size 0..600, then a spread up to 9000, each at every source and
 *    destination misalignment 0..63 (relative to 64-byte lines): the copy is
 *    exact, GUARD bytes before and after the destination are untouched, the
 *    source is unchanged and the return value is dst;
 *  - the source is never read outside [src, src + n): every size 0..2100
 *    with the source ending at a PROT_NONE page and again starting right
 *    after one (a vector load past either end faults; masked loads that
 *    suppress the faulting bytes are fine);
 *  - sizes around the 'rep movsb' thresholds (L1d / 2) and the
 *    non-temporal one (UHP_COPY_NT_MIN), a few misalignments each, with
 *    rep movsb as this CPU has it and again switched off (as without
 *    ERMS: the vector loops, streaming stores from UHP_COPY_NT_MIN).
 * memcpy semantics: source and destination never overlap here, and
 * overlapping buffers are not supported by uhp_memcpy().
 * "copy_test dispatch" only checks that UHP_COPY picked the right path
 * (the Makefile runs it once per value, and with a bogus one = auto).
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "uhp_internal.h"
#include "tap.h"

#define GUARD		256		/* a 4 x 64 loop overrunning shows here */
#define MAX_SMALL	9000
#define GUARD_BYTE	0xA5

static uint64_t rng = 0x9E3779B97F4A7C15ULL;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static uint8_t *src_pool, *src_copy, *dst_area, *guard_ref;
static size_t pool_size, area_size;

/*
 * One copy of n bytes from src_pool + soff to dst_area + GUARD + doff;
 * returns 0 or a bit mask of what went wrong (1 content, 2 guard before,
 * 4 guard after, 8 return value).
 */
static int one_copy(uhp_copy_fn f, size_t n, size_t soff, size_t doff)
{
	uint8_t *d = dst_area + GUARD + doff;
	const uint8_t *s = src_pool + soff;
	int bad = 0;

	memset(d - GUARD, GUARD_BYTE, n + 2 * GUARD);
	if (f(d, s, n) != d)
		bad |= 8;
	if (memcmp(d, s, n))
		bad |= 1;
	if (memcmp(d - GUARD, guard_ref, GUARD))
		bad |= 2;
	if (memcmp(d + n, guard_ref, GUARD))
		bad |= 4;
	return bad;
}

static int sweep(uhp_copy_fn f, const size_t *sizes, size_t nsizes,
		 const char *name)
{
	int fails = 0;

	for (size_t i = 0; i < nsizes; i++) {
		size_t n = sizes[i];
		/* a different stretch of random source for every size */
		size_t base = (rnd() % (pool_size - MAX_SMALL - 128)) & ~(size_t)63;

		for (size_t so = 0; so < 64; so++)
			for (size_t dof = 0; dof < 64; dof++) {
				int bad = one_copy(f, n, base + so, dof);

				if (bad && fails++ < 5)
					tap_diag("%s: n=%zu src+%zu dst+%zu: %s%s%s%s",
						 name, n, so, dof,
						 bad & 1 ? "content " : "",
						 bad & 2 ? "guard-before " : "",
						 bad & 4 ? "guard-after " : "",
						 bad & 8 ? "return " : "");
			}
	}
	return fails;
}

static size_t small_sizes[601], spread_sizes[256];
static size_t nspread;

static void build_sizes(void)
{
	for (size_t n = 0; n <= 600; n++)
		small_sizes[n] = n;
	/* boundaries of 32/64-byte vectors and of the 4 x 64 loop, then primes */
	static const size_t edge[] = {
		/* avx512: straight-line classes up to 1024 (8+2, 8+4, 12+2,
		 * 14+2 vectors), 512-byte steps up to 2048, then the loop */
		575, 576, 577, 639, 640, 641, 704, 705, 767, 768, 769, 831, 832,
		895, 896, 897, 959, 960, 1000, 1021, 1022, 1023, 1024, 1025, 1026,
		1087, 1088, 1089, 1279, 1280, 1535, 1536, 1537, 1600, 1919, 2047,
		2048, 2049, 2050, 2560, 2561,
		1281, 3000, 4095, 4096, 4097, 4159, 6144, 8191,
		8192, 8193, 8999, 9000,
	};
	for (size_t i = 0; i < sizeof(edge) / sizeof(edge[0]); i++)
		spread_sizes[nspread++] = edge[i];
	for (size_t n = 601; n < MAX_SMALL && nspread < 256; n += 151)
		spread_sizes[nspread++] = n;
}

static int big_bad(uhp_copy_fn f, const char *name)
{
	static const size_t sizes[] = {
		/* rep movsb from L1d / 2: 8, 16, 24, 32 KiB for common L1d */
		8191, 8192, 16383, 16384, 16385, 24575, 24576, 24577, 32767,
		32768, 32769, 65536 + 3, 100003, (1U << 20) + 5,
		/* streaming stores */
		UHP_COPY_NT_MIN - 1, UHP_COPY_NT_MIN, UHP_COPY_NT_MIN + 1,
		UHP_COPY_NT_MIN + 4096 + 63, (size_t)UHP_COPY_NT_MIN * 5 / 4 + 7,
	};
	static const size_t offs[][2] = { { 0, 0 }, { 1, 63 }, { 33, 7 }, { 63, 1 } };
	int fails = 0;

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		for (size_t j = 0; j < sizeof(offs) / sizeof(offs[0]); j++) {
			int bad = one_copy(f, sizes[i], offs[j][0], offs[j][1]);

			if (bad && fails++ < 5)
				tap_diag("%s: n=%zu src+%zu dst+%zu: bad %d", name,
					 sizes[i], offs[j][0], offs[j][1], bad);
		}
	return fails;
}

/*
 * Source reads stay inside [s, s + n): the source placed against a
 * PROT_NONE page, ending at it and starting right after one, every size
 * up to GP_MAX (past every straight-line case and into the loop). A read
 * outside faults (SIGSEGV ends the test: a failure the harness sees).
 */
#define GP_MAX	2100
static uint8_t *gp_area;	/* guard | data pages | guard */
static size_t gp_page, gp_data;

static int guard_page_bad(uhp_copy_fn f)
{
	uint8_t *lo = gp_area + gp_page, *hi = lo + gp_data;
	static uint8_t dst[GP_MAX + 64];
	int bad = 0;

	for (size_t n = 0; n <= GP_MAX; n++) {
		const uint8_t *s1 = hi - n, *s2 = lo;

		if (f(dst + (n & 63), s1, n) != dst + (n & 63) ||
		    memcmp(dst + (n & 63), s1, n))
			bad++;
		if (f(dst + (n % 61), s2, n) != dst + (n % 61) ||
		    memcmp(dst + (n % 61), s2, n))
			bad++;
	}
	return bad;
}

static void check_path(const char *name, uhp_copy_fn f, const char *why)
{
	if (!f) {
		tap_skip(why, "%s: sizes 0..600", name);
		tap_skip(why, "%s: spread up to %d", name, MAX_SMALL);
		tap_skip(why, "%s: source reads stay inside (guard pages)", name);
		tap_skip(why, "%s: rep movsb and non-temporal sizes", name);
		tap_skip(why, "%s: the same sizes without rep movsb", name);
		tap_skip(why, "%s: source unchanged", name);
		return;
	}
	tap_is(sweep(f, small_sizes, 601, name), 0,
	       "%s: sizes 0..600 x src/dst misalignment 0..63: exact, guards intact",
	       name);
	tap_is(sweep(f, spread_sizes, nspread, name), 0,
	       "%s: %zu sizes 601..%d x src/dst misalignment 0..63", name, nspread,
	       MAX_SMALL);
	tap_is(guard_page_bad(f), 0,
	       "%s: sizes 0..%d against a PROT_NONE page at either end of the source",
	       name, GP_MAX);
	tap_is(big_bad(f, name), 0,
	       "%s: 8 KiB..1 MiB (rep movsb from L1d/2) and around %u",
	       name, UHP_COPY_NT_MIN);
	{
		/* as on a CPU without ERMS: vector loop, then streaming stores */
		size_t old = uhp__copy_set_erms_min(SIZE_MAX);

		tap_is(big_bad(f, name), 0,
		       "%s: the same sizes without rep movsb (non-temporal from %u)",
		       name, UHP_COPY_NT_MIN);
		uhp__copy_set_erms_min(old);
	}
	tap_ok(!memcmp(src_pool, src_copy, pool_size), "%s: source unchanged", name);
}

static int dispatch_only(void)
{
	const char *env = getenv("UHP_COPY");
	const char *impl = uhp__copy_impl();
	const char *want = NULL;
	static const unsigned pref[] = { UHP_COPY_AVX512, UHP_COPY_AVX2,
					 UHP_COPY_GENERIC };

	tap_plan(1);
	if (env)
		for (unsigned p = 0; p < UHP_COPY_NR_PATHS; p++)
			if (!strcmp(env, uhp__copy_path_name(p)) &&
			    uhp__copy_path_fn(p, NULL))
				want = uhp__copy_path_name(p);
	for (unsigned i = 0; !want && i < 3; i++)
		if (uhp__copy_path_fn(pref[i], NULL))
			want = uhp__copy_path_name(pref[i]);
	tap_ok(!strcmp(impl, want), "UHP_COPY=%s: uhp_memcpy uses %s (want %s)",
	       env ? env : "(unset)", impl, want);
	return tap_done();
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "dispatch"))
		return dispatch_only();
	if (argc > 1) {
		fprintf(stderr, "usage: copy_test [dispatch]\n");
		return 2;
	}

	tap_plan((UHP_COPY_NR_PATHS + 1) * 6);
	pool_size = (size_t)UHP_COPY_NT_MIN * 2;
	area_size = pool_size + 2 * GUARD + 64;
	src_pool = malloc(pool_size);
	src_copy = malloc(pool_size);
	dst_area = malloc(area_size);
	guard_ref = malloc(GUARD);
	if (!src_pool || !src_copy || !dst_area || !guard_ref)
		tap_bail("malloc");
	for (size_t i = 0; i < pool_size; i += 8) {
		uint64_t v = rnd();

		memcpy(src_pool + i, &v, 8);
	}
	memcpy(src_copy, src_pool, pool_size);
	gp_page = (size_t)sysconf(_SC_PAGESIZE);
	gp_data = (GP_MAX + gp_page - 1) / gp_page * gp_page;
	gp_area = mmap(NULL, gp_data + 2 * gp_page, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (gp_area == MAP_FAILED)
		tap_bail("mmap");
	for (size_t i = 0; i < gp_data; i++)
		gp_area[gp_page + i] = (uint8_t)rnd();
	if (mprotect(gp_area, gp_page, PROT_NONE) ||
	    mprotect(gp_area + gp_page + gp_data, gp_page, PROT_NONE))
		tap_bail("mprotect");
	memset(guard_ref, GUARD_BYTE, GUARD);
	build_sizes();
	tap_diag("uhp_memcpy uses %s", uhp__copy_impl());

	for (unsigned p = 0; p < UHP_COPY_NR_PATHS; p++) {
		const char *why;
		uhp_copy_fn f = uhp__copy_path_fn(p, &why);

		check_path(uhp__copy_path_name(p), f, why);
	}
	check_path("uhp_memcpy", uhp_memcpy, NULL);
	free(src_pool);
	free(src_copy);
	free(dst_area);
	free(guard_ref);
	munmap(gp_area, gp_data + 2 * gp_page);
	return tap_done();
}
