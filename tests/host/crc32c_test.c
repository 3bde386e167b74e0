// SPDX-License-Identifier: MIT
/*
 * crc32c_test: CRC32C on every path (table, sse42, pclmul, avx512) and
 * through the dispatching uhp_crc32c().
 *  - the constants of crc32c_x86.c, each x^e mod P for a stated e, equal
 *    what a plain C generator here computes (carry-less arithmetic one bit
 *    at a time: nothing shared with the library);
 *  - per path: RFC 3720 B.4 vectors and "123456789"; every length 0..4096
 *    at a random alignment and seed against the table path, which itself
 *    matches a bit-at-a-time reference on every such length; large and
 *    threshold lengths (64 KiB, 1 MiB + 3, the hybrid bounds); chaining;
 *    ISA-L's crc32_iscsi(b, n, ~0) ^ ~0 when built with it (HAVE_ISAL);
 *  - lengths around every threshold of the x86 paths (192, 256, 1 KiB,
 *    3 KiB, 4 KiB, 8 KiB) at every alignment 0..63, and every length
 *    0..2100 with the buffer against a PROT_NONE page at either end (a
 *    load outside [buf, buf + len) faults; masked loads may not);
 *  - a path this CPU lacks is reported "# SKIP" with the reason;
 *  - the dispatch honours UHP_CRC (the Makefile runs this once per value,
 *    and with a bogus one, which must mean auto);
 *  - the record CRC covers header bytes [8, 32) then the payload.
 * "crc32c_test gen" prints the constant tables for crc32c_x86.c.
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

#ifdef HAVE_ISAL
#include <isa-l/crc.h>
#endif

#define POLY	0x82F63B78U	/* reflected 0x1EDC6F41, written out here */

/* ---- the generator: reflected polynomials, bit i <-> x^(31-i) ---- */

/* a * b mod P, shift-and-add. */
static uint32_t gf_mul(uint32_t a, uint32_t b)
{
	uint32_t r = 0;

	for (int i = 0; i < 32; i++) {
		if (a & (0x80000000U >> i))	/* a has x^i: add b * x^i */
			r ^= b;
		b = (b >> 1) ^ ((b & 1) ? POLY : 0);	/* b *= x */
	}
	return r;
}

/* x^e mod P by square-and-multiply (e up to 2^128 - 1). */
static uint32_t gf_xpow(unsigned __int128 e)
{
	uint32_t r = 0x80000000U, sq = 0x40000000U;	/* 1 and x */

	for (; e; e >>= 1) {
		if (e & 1)
			r = gf_mul(r, sq);
		sq = gf_mul(sq, sq);
	}
	return r;
}

/* x^e mod P by e single shifts: the slow, obvious cross-check. */
static uint32_t gf_xpow_slow(unsigned e)
{
	uint32_t v = 0x80000000U;

	while (e--)
		v = (v >> 1) ^ ((v & 1) ? POLY : 0);
	return v;
}

#if defined(__x86_64__)
static unsigned __int128 pow2_exp(unsigned b)
{
	return ((unsigned __int128)64 << b) - 33;
}

static int gen(void)
{
	static const unsigned d[] = { 128, 256, 384, 512, 1024, 1536, 2048 };

	printf("/* uhp__crc32c_fold_k: { D, x^(D+31), x^(D-33) } */\n");
	for (unsigned i = 0; i < sizeof(d) / sizeof(d[0]); i++)
		printf("\t{ %4u, 0x%08x, 0x%08x },\n", d[i],
		       gf_xpow(d[i] + 31), gf_xpow(d[i] - 33));
	printf("/* uhp__crc32c_shift_k: [i - 1] = x^(64 i - 33) */\n");
	for (unsigned i = 1; i <= UHP_CRC32C_NR_SHIFT_K; i++)
		printf("%s0x%08x,%s", i % 6 == 1 ? "\t" : "",
		       gf_xpow(64 * i - 33), i % 6 == 0 ? "\n" : " ");
	printf("\n/* uhp__crc32c_pow2_k: [b] = x^(64 2^b - 33) */\n");
	for (unsigned b = 0; b < UHP_CRC32C_NR_POW2_K; b++)
		printf("%s0x%08x,%s", b % 6 == 0 ? "\t" : "",
		       gf_xpow(pow2_exp(b)), b % 6 == 5 ? "\n" : " ");
	printf("\n");
	return 0;
}
#endif

/* ---- references ---- */

/* Independent reference: one bit at a time, straight from the polynomial. */
static uint32_t crc_bitwise(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len--) {
		crc ^= *p++;
		for (int b = 0; b < 8; b++)
			crc = (crc >> 1) ^ (POLY & (0U - (crc & 1)));
	}
	return crc;
}

static uint32_t std_crc(uhp_crc_fn f, const void *buf, size_t len)
{
	return f(~0U, buf, len) ^ ~0U;
}

static uint64_t rng = 0x243F6A8885A308D3ULL;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* ---- per path ---- */

#define BIG	((4U << 20) + 4096 + 64)	/* past UHP_CRC32C_HYBRID_MAX */
static uint8_t *buf;

static int vectors_bad(uhp_crc_fn f)
{
	uint8_t b[32];
	int bad = 0;

	memset(b, 0, sizeof(b));
	bad += std_crc(f, b, 32) != 0x8A9136AA;
	memset(b, 0xff, sizeof(b));
	bad += std_crc(f, b, 32) != 0x62A8AB43;
	for (int i = 0; i < 32; i++)
		b[i] = (uint8_t)i;
	bad += std_crc(f, b, 32) != 0x46DD794E;
	for (int i = 0; i < 32; i++)
		b[i] = (uint8_t)(31 - i);
	bad += std_crc(f, b, 32) != 0x113FDB5C;
	bad += std_crc(f, "123456789", 9) != 0xE3069283;
	return bad;
}

/* Every length 0..4096, random alignment 0..63 and seed, against table. */
static int lengths_bad(uhp_crc_fn f)
{
	int bad = 0;

	for (size_t len = 0; len <= 4096; len++) {
		size_t off = rnd() % 64;
		uint32_t seed = (uint32_t)rnd();

		bad += f(seed, buf + off, len) != uhp__crc32c_table(seed, buf + off, len);
	}
	return bad;
}

/* Lengths around every threshold and large ones. */
static const size_t big_lens[] = {
	UHP_CRC32C_PCL_MIN + 1, 3 * 1024 - 1, 3 * 1024, 3 * 1024 + 25,
	UHP_CRC32C_HYBRID_MIN - 1, UHP_CRC32C_HYBRID_MIN + 1, 5000, 8191,
	65536, 65536 + 7, 100003, (1U << 20) + 3,
	UHP_CRC32C_HYBRID_MAX - 1, UHP_CRC32C_HYBRID_MAX,
	UHP_CRC32C_HYBRID_MAX + 1, UHP_CRC32C_HYBRID_MAX + 4095,
};

static int big_bad(uhp_crc_fn f)
{
	int bad = 0;

	for (size_t i = 0; i < sizeof(big_lens) / sizeof(big_lens[0]); i++) {
		size_t off = rnd() % 64;
		uint32_t seed = (uint32_t)rnd();

		bad += f(seed, buf + off, big_lens[i]) !=
		       uhp__crc32c_table(seed, buf + off, big_lens[i]);
	}
	return bad;
}

/*
 * Around each threshold of the x86 paths (sse42 -> folding at 192, pclmul
 * from 256 and its 3 KiB blocks, the 64-byte chunks and 256-byte turns of
 * the folds, the folds + injected chains from 1 KiB to 8 KiB in 512-byte
 * turns after a folded or serial head, the hybrid bound), every alignment
 * 0..63, random seeds.
 */
static int edges_bad(uhp_crc_fn f)
{
	static const size_t centre[] = {
		64, 128, UHP_CRC32C_AVX512_MIN, UHP_CRC32C_PCL_MIN, 320, 512,
		1024, 1024 + UHP_CRC32C_AVX512_MIN, 2048, 3 * 1024,
		UHP_CRC32C_HYBRID_MIN, 8192,
	};
	int bad = 0;

	for (size_t i = 0; i < sizeof(centre) / sizeof(centre[0]); i++)
		for (size_t len = centre[i] - 17; len <= centre[i] + 17; len++)
			for (size_t off = 0; off < 64; off++) {
				uint32_t seed = (uint32_t)rnd();

				bad += f(seed, buf + off, len) !=
				       uhp__crc32c_table(seed, buf + off, len);
			}
	return bad;
}

/* Every length 0..GP_MAX ending at, and again starting at, a PROT_NONE page. */
#define GP_MAX	2100
static uint8_t *gp_lo, *gp_hi;	/* first data byte; one past the last */

static int guard_page_bad(uhp_crc_fn f)
{
	int bad = 0;

	for (size_t len = 0; len <= GP_MAX; len++) {
		uint32_t seed = (uint32_t)rnd();

		bad += f(seed, gp_hi - len, len) !=
		       crc_bitwise(seed, gp_hi - len, len);
		bad += f(seed, gp_lo, len) != crc_bitwise(seed, gp_lo, len);
	}
	return bad;
}

static int chain_bad(uhp_crc_fn f)
{
	int bad = 0;

	for (int i = 0; i < 200; i++) {
		size_t len = rnd() % 20000, cut = len ? rnd() % len : 0;
		uint32_t whole = f(~0U, buf, len);
		uint32_t part = f(f(~0U, buf, cut), buf + cut, len - cut);

		bad += whole != part;
	}
	return bad;
}

#ifdef HAVE_ISAL
static int isal_bad(uhp_crc_fn f)
{
	int bad = 0;

	for (size_t len = 0; len <= 4096; len++) {
		size_t off = rnd() % 64;

		bad += (f(~0U, buf + off, len) ^ ~0U) !=
		       (crc32_iscsi(buf + off, (int)len, ~0U) ^ ~0U);
	}
	for (size_t i = 0; i < sizeof(big_lens) / sizeof(big_lens[0]); i++)
		bad += (f(~0U, buf + 1, big_lens[i]) ^ ~0U) !=
		       (crc32_iscsi(buf + 1, (int)big_lens[i], ~0U) ^ ~0U);
	return bad;
}
#endif

#define PER_PATH 8

static void check_path(const char *name, uhp_crc_fn f, const char *why)
{
	if (!f) {
		tap_skip(why, "%s: vectors", name);
		tap_skip(why, "%s: lengths 0..4096", name);
		tap_skip(why, "%s: large and threshold lengths", name);
		tap_skip(why, "%s: threshold lengths x alignments", name);
		tap_skip(why, "%s: reads stay inside (guard pages)", name);
		tap_skip(why, "%s: chaining", name);
		tap_skip(why, "%s: random lengths < 20000", name);
		tap_skip(why, "%s: equals ISA-L", name);
		return;
	}
	tap_is(vectors_bad(f), 0, "%s: RFC 3720 vectors and \"123456789\"", name);
	tap_is(lengths_bad(f), 0, "%s: every length 0..4096, random alignment and seed", name);
	tap_is(big_bad(f), 0, "%s: threshold lengths, 64 KiB, 1 MiB + 3, 4 MiB +- 1", name);
	tap_is(edges_bad(f), 0,
	       "%s: lengths within 17 of each threshold x alignment 0..63", name);
	tap_is(guard_page_bad(f), 0,
	       "%s: lengths 0..%d against a PROT_NONE page at either end", name,
	       GP_MAX);
	tap_is(chain_bad(f), 0, "%s: chaining crc(a||b) == crc(crc(a), b)", name);
	{
		int bad = 0;

		for (int i = 0; i < 300; i++) {
			size_t off = rnd() % 64, len = rnd() % 20000;
			uint32_t seed = (uint32_t)rnd();

			bad += f(seed, buf + off, len) != crc_bitwise(seed, buf + off, len);
		}
		tap_is(bad, 0, "%s: random lengths < 20000 match bit-at-a-time", name);
	}
#ifdef HAVE_ISAL
	tap_is(isal_bad(f), 0, "%s: equals ISA-L crc32_iscsi(b, n, ~0) ^ ~0", name);
#else
	tap_skip("built without ISA-L (libisal-dev)", "%s: equals ISA-L", name);
#endif
}

static void check_constants(void)
{
#if defined(__x86_64__)
	int bad = 0;

	for (unsigned i = 0; i < UHP_CRC32C_NR_FOLD_K; i++) {
		const struct uhp_crc32c_fold_k *k = &uhp__crc32c_fold_k[i];

		bad += k->k_lo != gf_xpow(k->bits + 31);
		bad += k->k_hi != gf_xpow(k->bits - 33);
		bad += k->k_lo != gf_xpow_slow(k->bits + 31);
	}
	tap_is(bad, 0, "fold constants: x^(D+31), x^(D-33) mod P for %u distances",
	       UHP_CRC32C_NR_FOLD_K);
	bad = 0;
	for (unsigned i = 1; i <= UHP_CRC32C_NR_SHIFT_K; i++) {
		bad += uhp__crc32c_shift_k[i - 1] != gf_xpow(64 * i - 33);
		bad += uhp__crc32c_shift_k[i - 1] != gf_xpow_slow(64 * i - 33);
	}
	tap_is(bad, 0, "shift constants: [i-1] = x^(64i-33) mod P, i = 1..%u",
	       UHP_CRC32C_NR_SHIFT_K);
	bad = 0;
	for (unsigned b = 0; b < UHP_CRC32C_NR_POW2_K; b++)
		bad += uhp__crc32c_pow2_k[b] != gf_xpow(pow2_exp(b));
	for (unsigned b = 0; b < 8; b++)
		bad += uhp__crc32c_pow2_k[b] != gf_xpow_slow((64U << b) - 33);
	tap_is(bad, 0, "power-of-two constants: [b] = x^(64*2^b-33) mod P, b < %u",
	       UHP_CRC32C_NR_POW2_K);
#else
	for (int i = 0; i < 3; i++)
		tap_skip("not x86-64: no constants", "constants %d", i);
#endif
}

static void check_dispatch(void)
{
	const char *env = getenv("UHP_CRC");
	const char *impl = uhp__crc32c_impl();
	const char *want = NULL;
	unsigned best = UHP_CRC_TABLE, skip = UHP_CRC_AVX512MIX;

#if defined(__x86_64__)
	/* auto: the last path the CPU has, but of avx512 and avx512mix only
	 * avx512mix on AMD CPUs and only avx512 elsewhere */
	__builtin_cpu_init();
	if (__builtin_cpu_is("amd"))
		skip = UHP_CRC_AVX512;
#endif
	for (unsigned p = 0; p < UHP_CRC_NR_PATHS; p++)
		if (p != skip && uhp__crc32c_path_fn(p, NULL))
			best = p;
	if (env)
		for (unsigned p = 0; p < UHP_CRC_NR_PATHS; p++)
			if (!strcmp(env, uhp__crc32c_path_name(p)) &&
			    uhp__crc32c_path_fn(p, NULL))
				want = uhp__crc32c_path_name(p);
	if (!want)
		want = uhp__crc32c_path_name(best);
	tap_ok(!strcmp(impl, want), "UHP_CRC=%s: dispatch uses %s (want %s)",
	       env ? env : "(unset)", impl, want);
}

static void check_record(void)
{
	struct uhp_rec_hdr h;
	uint8_t img[UHP_REC_HDR_SIZE + 100];
	uint32_t ref;

	memset(&h, 0, sizeof(h));
	h.tag = 0x1122334455667788ULL;	/* not covered */
	h.len = 100;
	h.type = 7;
	h.flags = 0;
	h.src = 0xAABBCCDD;
	h.dst = 3;
	h.seq = 0x0102030405060708ULL;
	h.crc = 0xDEADBEEF;		/* not covered */
	memcpy(img, &h, sizeof(h));
	memcpy(img + UHP_REC_HDR_SIZE, buf, 100);
	ref = crc_bitwise(~0U, img + 8, 24);
	ref = crc_bitwise(ref, img + UHP_REC_HDR_SIZE, 100) ^ ~0U;
	tap_is(uhp__rec_crc(&h, buf, 100), ref,
	       "record CRC = crc32c(hdr[8..32) || payload)");
}

int main(int argc, char **argv)
{
	int bad;

#if defined(__x86_64__)
	if (argc > 1 && !strcmp(argv[1], "gen"))
		return gen();
#endif
	(void)argv;
	if (argc > 1) {
		fprintf(stderr, "usage: crc32c_test [gen]\n");
		return 2;
	}

	tap_plan(3 + 1 + (UHP_CRC_NR_PATHS + 1) * PER_PATH + 1 + 1);
	buf = malloc(BIG + 64);
	if (!buf)
		tap_bail("malloc");
	for (size_t i = 0; i < BIG + 64; i++)
		buf[i] = (uint8_t)rnd();
	{
		/* guard | data pages | guard */
		size_t pg = (size_t)sysconf(_SC_PAGESIZE);
		size_t data = (GP_MAX + pg - 1) / pg * pg;
		uint8_t *area = mmap(NULL, data + 2 * pg, PROT_READ | PROT_WRITE,
				     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (area == MAP_FAILED)
			tap_bail("mmap");
		gp_lo = area + pg;
		gp_hi = gp_lo + data;
		for (size_t i = 0; i < data; i++)
			gp_lo[i] = (uint8_t)rnd();
		if (mprotect(area, pg, PROT_NONE) || mprotect(gp_hi, pg, PROT_NONE))
			tap_bail("mprotect");
	}
	tap_diag("UHP_CRC=%s, dispatch uses %s", getenv("UHP_CRC") ?
		 getenv("UHP_CRC") : "(unset)", uhp__crc32c_impl());

	check_constants();

	/* The table path is the reference for the others: pin it down first. */
	bad = 0;
	for (size_t len = 0; len <= 4096; len++) {
		size_t off = rnd() % 64;
		uint32_t seed = (uint32_t)rnd();

		bad += uhp__crc32c_table(seed, buf + off, len) !=
		       crc_bitwise(seed, buf + off, len);
	}
	tap_is(bad, 0, "table matches bit-at-a-time, every length 0..4096");

	for (unsigned p = 0; p < UHP_CRC_NR_PATHS; p++) {
		const char *why;
		uhp_crc_fn f = uhp__crc32c_path_fn(p, &why);

		check_path(uhp__crc32c_path_name(p), f, why);
	}
	check_path("uhp_crc32c", uhp_crc32c, NULL);
	check_dispatch();
	check_record();
	free(buf);
	return tap_done();
}
