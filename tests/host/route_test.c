// SPDX-License-Identifier: MIT
/*
 * route_test: uhp_route_match() / uhp_route_match_set() and each of their
 * paths (scalar, avx2, avx512; a path this CPU lacks is reported "# SKIP"
 * with the reason), then the public functions through the dispatch.
 * Every case is compared with a naive reference and with the scalar path:
 * the whole bitmap ((n + 63) / 64 words, prefilled with garbage, so bits
 * past n must be written 0), the word after it (must stay untouched) and
 * the count. Cases:
 *  - every n 0..300 and random n up to 20000, strides 4, 8, 40, 64, match
 *    densities 0 %, 1 %, 50 %, 100 %; the other bytes of every element
 *    hold the target, so a read at a wrong offset shows;
 *  - ids at offsetof(struct uhp_rec_hdr, dst) of a real header array;
 *  - ids and targets at the edges (0, 1, 0x7fffffff, 0x80000000,
 *    0xffffffff), the target equal to each;
 *  - sets of 1..20 targets; large sets (17..600) sorted, unsorted, with
 *    duplicates; ntargets 0; n 0 with NULL pointers;
 *  - strides 0, 1, 2, 3, 5, 6, 12, 4096 (overlapping and unaligned ids);
 *  - the last id ending exactly at a page whose successor is PROT_NONE
 *    (an over-read faults), every n 0..300;
 *  - strides at and just above UHP_ROUTE_GATHER_MAX_STRIDE (sparse mmap).
 * ROUTE_SEED=<n> changes the random seed (printed).
 * "route_test dispatch" only checks that UHP_ROUTE picked the right path
 * (the Makefile runs it once per value, and with a bogus one = auto).
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "uhp_internal.h"
#include "tap.h"

#define MAX_N		20000
#define MAX_ELEM	4096		/* largest stride in the byte buffer */
#define MAX_WORDS	((MAX_N + 63) / 64)
#define GARBAGE		0xA5A5A5A5A5A5A5A5ULL
#define MAX_DIAG	5		/* failures described per check */

static uint64_t rng_state;

static uint64_t rnd(void)	/* splitmix64 */
{
	uint64_t z = (rng_state += 0x9E3779B97F4A7C15ULL);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

static const uint32_t edges[] = { 0, 1, 0x7fffffff, 0x80000000, 0xffffffff };
#define NR_EDGES (sizeof(edges) / sizeof(edges[0]))
static const size_t strides[] = { 4, 8, 40, 64 };
#define NR_STRIDES (sizeof(strides) / sizeof(strides[0]))
static const unsigned densities[] = { 0, 10, 500, 1000 };	/* per mille */
#define NR_DENS (sizeof(densities) / sizeof(densities[0]))

static const struct uhp_route_impl *scalar;
static unsigned char *area;		/* MAX_N * MAX_ELEM + slack */
static uint64_t *bm, *bm_ref, *bm_sc;	/* MAX_WORDS + 1 each */
static char cur_case[256];		/* for a fault */
static int ndiag;

static void on_segv(int sig)
{
	static const char msg[] = "route_test: fault (over-read?) in ";

	(void)sig;
	if (write(2, msg, sizeof(msg) - 1) < 0 ||
	    write(2, cur_case, strnlen(cur_case, sizeof(cur_case))) < 0 ||
	    write(2, "\n", 1) < 0)
		_exit(3);
	_exit(3);
}

static uint32_t ld(const unsigned char *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static void st(unsigned char *p, uint32_t v)
{
	memcpy(p, &v, sizeof(v));
}

static bool in_set(uint32_t id, const uint32_t *tg, size_t nt)
{
	for (size_t j = 0; j < nt; j++)
		if (tg[j] == id)
			return true;
	return false;
}

/* The obvious reference: one bit at a time, bitmap cleared first. */
static size_t ref_match(const unsigned char *ids, size_t stride, size_t n,
			const uint32_t *tg, size_t nt, uint64_t *out)
{
	size_t cnt = 0;

	memset(out, 0, (n + 63) / 64 * sizeof(*out));
	for (size_t i = 0; i < n; i++)
		if (in_set(ld(ids + i * stride), tg, nt)) {
			out[i / 64] |= 1ULL << (i % 64);
			cnt++;
		}
	return cnt;
}

/* An id that matches with probability dens / 1000. */
static uint32_t pick_id(const uint32_t *tg, size_t nt, unsigned dens)
{
	uint32_t id;

	if (nt && rnd() % 1000 < dens)
		return tg[rnd() % nt];
	do
		id = rnd() % 4 ? (uint32_t)rnd() : (nt ? tg[0] : 0) + (uint32_t)(rnd() % 5) - 2;
	while (in_set(id, tg, nt));
	return id;
}

/*
 * Lay out n elements of stride bytes from p, the id at p + i * stride
 * (ids for stride < 4 overlap: written in order, what is read is what the
 * reference reads), every other aligned word of an element = tg[0].
 */
static void fill(unsigned char *p, size_t stride, size_t n, const uint32_t *tg,
		 size_t nt, unsigned dens)
{
	uint32_t noise = nt ? tg[0] : 0x5a5a5a5a;

	for (size_t i = 0; i < n; i++)
		for (size_t o = 4; o + 4 <= stride; o += 4)
			st(p + i * stride + o, noise);
	for (size_t i = 0; i < n; i++)
		st(p + i * stride, pick_id(tg, nt, dens));
}

/*
 * One call of im (single target when nt == 1 and single) against the
 * reference and the scalar path. Returns 0 if all agree.
 */
static int one(const struct uhp_route_impl *im, const char *name,
	       const unsigned char *ids, size_t stride, size_t n,
	       const uint32_t *tg, size_t nt, bool single)
{
	size_t nw = (n + 63) / 64, got, ref, sc;
	int bad = 0;

	snprintf(cur_case, sizeof(cur_case), "%s: n %zu stride %zu nt %zu%s",
		 name, n, stride, nt, single ? " (single)" : "");
	ref = ref_match(ids, stride, n, tg, nt, bm_ref);
	for (size_t w = 0; w <= nw; w++)
		bm[w] = bm_sc[w] = GARBAGE;
	if (single) {
		got = im->match((const uint32_t *)ids, stride, n, tg[0], bm);
		sc = scalar->match((const uint32_t *)ids, stride, n, tg[0], bm_sc);
	} else {
		got = im->match_set((const uint32_t *)ids, stride, n, tg, nt, bm);
		sc = scalar->match_set((const uint32_t *)ids, stride, n, tg, nt,
				       bm_sc);
	}
	if (got != ref || sc != ref)
		bad |= 1;
	if (memcmp(bm, bm_ref, nw * sizeof(*bm)) ||
	    memcmp(bm_sc, bm_ref, nw * sizeof(*bm)))
		bad |= 2;
	if (bm[nw] != GARBAGE || bm_sc[nw] != GARBAGE)
		bad |= 4;
	if (bad && ndiag++ < MAX_DIAG) {
		tap_diag("%s: count %zu (scalar %zu, ref %zu)%s%s", cur_case,
			 got, sc, ref, bad & 2 ? ", bitmap differs" : "",
			 bad & 4 ? ", wrote past the bitmap" : "");
		for (size_t w = 0; w < nw && (bad & 2); w++)
			if (bm[w] != bm_ref[w] || bm_sc[w] != bm_ref[w])
				tap_diag("  word %zu: %016llx scalar %016llx ref %016llx",
					 w, (unsigned long long)bm[w],
					 (unsigned long long)bm_sc[w],
					 (unsigned long long)bm_ref[w]);
	}
	return bad != 0;
}

static void random_set(uint32_t *tg, size_t nt)
{
	for (size_t j = 0; j < nt; j++)
		tg[j] = rnd() % 3 ? (uint32_t)rnd() : edges[rnd() % NR_EDGES];
}

/* ---- the checks of one path ---- */

#define PER_PATH 10

static void t_every_n(const struct uhp_route_impl *im, const char *name)
{
	int bad = 0, cases = 0;

	for (size_t s = 0; s < NR_STRIDES; s++)
		for (size_t d = 0; d < NR_DENS; d++)
			for (size_t n = 0; n <= 300; n++) {
				uint32_t t = (uint32_t)rnd();

				fill(area, strides[s], n, &t, 1, densities[d]);
				bad += one(im, name, area, strides[s], n, &t, 1, true);
				cases++;
			}
	tap_is(bad, 0, "%s: match, every n 0..300 x strides 4/8/40/64 x "
	       "densities 0/1/50/100 %% (%d cases)", name, cases);
}

static void t_random_n(const struct uhp_route_impl *im, const char *name)
{
	int bad = 0, cases = 0;

	for (int r = 0; r < 12; r++) {
		size_t n = 301 + rnd() % (MAX_N - 300);

		for (size_t s = 0; s < NR_STRIDES; s++)
			for (size_t d = 0; d < NR_DENS; d++) {
				uint32_t t = (uint32_t)rnd();

				fill(area, strides[s], n, &t, 1, densities[d]);
				bad += one(im, name, area, strides[s], n, &t, 1, true);
				cases++;
			}
	}
	tap_is(bad, 0, "%s: match, random n 301..%d x strides x densities "
	       "(%d cases)", name, MAX_N, cases);
}

static void t_headers(const struct uhp_route_impl *im, const char *name)
{
	struct uhp_rec_hdr *h = calloc(MAX_N, sizeof(*h));
	int bad = 0, cases = 0;

	if (!h)
		tap_bail("calloc");
	_Static_assert(sizeof(struct uhp_rec_hdr) == 40, "header size");
	for (size_t k = 0; k < 340; k++) {
		size_t n = k <= 300 ? k : 301 + rnd() % (MAX_N - 300);
		uint32_t tg[4];
		size_t nt = 1 + k % 4;

		random_set(tg, nt);
		for (size_t i = 0; i < n; i++) {
			h[i].tag = ((uint64_t)tg[0] << 32) | tg[0];
			h[i].len = tg[0];
			h[i].src = tg[0];
			h[i].seq = h[i].tag;
			h[i].crc = tg[0];
			h[i].dst = pick_id(tg, nt, densities[k % NR_DENS]);
		}
		bad += one(im, name, (const unsigned char *)&h[0].dst, sizeof(*h),
			   n, tg, 1, true);
		bad += one(im, name, (const unsigned char *)&h[0].dst, sizeof(*h),
			   n, tg, nt, false);
		cases += 2;
	}
	free(h);
	tap_is(bad, 0, "%s: ids at offsetof(struct uhp_rec_hdr, dst), stride "
	       "40, n 0..300 + random, 1..4 targets (%d cases)", name, cases);
}

static void t_edges(const struct uhp_route_impl *im, const char *name)
{
	int bad = 0, cases = 0;
	static const size_t es[] = { 4, 40 };

	for (size_t s = 0; s < 2; s++)
		for (size_t e = 0; e < NR_EDGES; e++)
			for (size_t n = 0; n <= 140; n++) {
				uint32_t t = edges[e], set[3];

				for (size_t i = 0; i < n; i++)
					st(area + i * es[s], edges[rnd() % NR_EDGES]);
				bad += one(im, name, area, es[s], n, &t, 1, true);
				set[0] = t;
				set[1] = edges[(e + 1) % NR_EDGES];
				set[2] = edges[(e + 3) % NR_EDGES];
				bad += one(im, name, area, es[s], n, set, 3, false);
				cases += 2;
			}
	tap_is(bad, 0, "%s: ids and targets 0, 1, 0x7fffffff, 0x80000000, "
	       "0xffffffff, n 0..140, strides 4/40 (%d cases)", name, cases);
}

static void t_sets(const struct uhp_route_impl *im, const char *name)
{
	int bad = 0, cases = 0;

	for (size_t nt = 1; nt <= 20; nt++)
		for (size_t s = 0; s < NR_STRIDES; s++)
			for (size_t n = 0; n <= 300; n += 1 + (nt > 4) * 2) {
				uint32_t tg[20];

				random_set(tg, nt);
				if (nt > 1 && n % 5 == 0)
					tg[nt - 1] = tg[0];	/* duplicate */
				fill(area, strides[s], n, tg, nt,
				     densities[n % NR_DENS]);
				bad += one(im, name, area, strides[s], n, tg, nt, false);
				cases++;
			}
	tap_is(bad, 0, "%s: match_set, 1..20 targets, n 0..300, strides "
	       "4/8/40/64 (%d cases)", name, cases);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

static void t_large_sets(const struct uhp_route_impl *im, const char *name)
{
	static const size_t nts[] = { 17, 31, 100, 255, 256, 257, 600 };
	static const size_t ns[] = { 1, 63, 64, 65, 300, 1000 };
	static uint32_t tg[600];
	int bad = 0, cases = 0;

	for (size_t a = 0; a < sizeof(nts) / sizeof(nts[0]); a++)
		for (int order = 0; order < 3; order++)
			for (size_t b = 0; b < sizeof(ns) / sizeof(ns[0]); b++) {
				size_t nt = nts[a];

				random_set(tg, nt);
				if (order == 2)		/* duplicates, sorted */
					for (size_t j = 1; j < nt; j += 3)
						tg[j] = tg[j - 1];
				if (order >= 1)
					qsort(tg, nt, sizeof(*tg), cmp_u32);
				fill(area, 40, ns[b], tg, nt, densities[b % NR_DENS]);
				bad += one(im, name, area, 40, ns[b], tg, nt, false);
				cases++;
			}
	tap_is(bad, 0, "%s: match_set, 17..600 targets unsorted, sorted, with "
	       "duplicates (%d cases)", name, cases);
}

static void t_degenerate(const struct uhp_route_impl *im, const char *name)
{
	uint32_t t = 7;
	uint64_t w = GARBAGE;
	int bad = 0;

	bad += im->match(NULL, 4, 0, 7, NULL) != 0;
	bad += im->match_set(NULL, 40, 0, &t, 1, NULL) != 0;
	bad += im->match_set(NULL, 40, 0, NULL, 0, NULL) != 0;
	bad += im->match_set(NULL, 40, 0, edges, NR_EDGES, NULL) != 0;
	fill(area, 4, 100, &t, 1, 1000);
	bad += one(im, name, area, 4, 100, NULL, 0, false);
	bad += one(im, name, area, 40, 1, NULL, 0, false);
	bad += im->match_set((const uint32_t *)area, 4, 1, NULL, 0, &w) != 0 || w;
	tap_is(bad, 0, "%s: n 0 with NULL ids/bitmap; ntargets 0 (NULL "
	       "targets) matches nothing, bitmap zeroed", name);
}

static void t_odd_strides(const struct uhp_route_impl *im, const char *name)
{
	static const size_t os[] = { 0, 1, 2, 3, 5, 6, 12, 4096 };
	int bad = 0, cases = 0;

	for (size_t s = 0; s < sizeof(os) / sizeof(os[0]); s++)
		for (size_t n = 0; n <= 200; n += 1 + (os[s] == 4096) * 6) {
			uint32_t tg[3];

			random_set(tg, 3);
			fill(area, os[s], n, tg, 3, densities[n % NR_DENS]);
			bad += one(im, name, area, os[s], n, tg, 1, true);
			bad += one(im, name, area, os[s], n, tg, 3, false);
			cases += 2;
		}
	tap_is(bad, 0, "%s: strides 0, 1, 2, 3, 5, 6, 12, 4096 (unaligned, "
	       "overlapping), n 0..200 (%d cases)", name, cases);
}

/* The last id's bytes end where a PROT_NONE page begins. */
static void t_page_end(const struct uhp_route_impl *im, const char *name)
{
	static const size_t ps[] = { 4, 6, 8, 40, 64 };
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	size_t len = (300 * 64 + pg - 1) / pg * pg + pg;
	unsigned char *map = mmap(NULL, len + pg, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	unsigned char *end;
	int bad = 0, cases = 0;

	if (map == MAP_FAILED || mprotect(map + len, pg, PROT_NONE))
		tap_bail("mmap/mprotect of the guarded buffer");
	end = map + len;
	for (size_t s = 0; s < sizeof(ps) / sizeof(ps[0]); s++)
		for (size_t n = 0; n <= 300; n++) {
			size_t span = n ? (n - 1) * ps[s] + 4 : 0;
			unsigned char *ids = end - span;
			uint32_t tg[20];

			random_set(tg, 20);
			for (size_t i = 0; i < n; i++)
				st(ids + i * ps[s], pick_id(tg, 20, densities[n % NR_DENS]));
			bad += one(im, name, ids, ps[s], n, tg, 1, true);
			bad += one(im, name, ids, ps[s], n, tg, 5, false);
			bad += one(im, name, ids, ps[s], n, tg, 16, false);
			bad += one(im, name, ids, ps[s], n, tg, 20, false);
			cases += 4;
		}
	munmap(map, len + pg);
	tap_is(bad, 0, "%s: last id ends at a PROT_NONE page, n 0..300, "
	       "strides 4/6/8/40/64, 1/5/16/20 targets (%d cases)", name, cases);
}

/* Gather offsets are 32-bit: strides at and past the limit. */
static void t_huge_stride(const struct uhp_route_impl *im, const char *name)
{
	static const size_t hs[] = { UHP_ROUTE_GATHER_MAX_STRIDE & ~3UL,
				     UHP_ROUTE_GATHER_MAX_STRIDE + 1,
				     (size_t)UHP_ROUTE_GATHER_MAX_STRIDE * 2 };
	size_t n = 17, len = 16 * hs[2] + 4;
	unsigned char *map = mmap(NULL, len, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
				  -1, 0);
	int bad = 0;

	if (map == MAP_FAILED) {
		tap_skip("cannot map a sparse 4 GiB area", "%s: huge strides", name);
		return;
	}
	for (size_t s = 0; s < 3; s++) {
		uint32_t tg[2] = { 0x12345678, 0 };

		for (size_t i = 0; i < n; i++)
			st(map + i * hs[s], i % 3 ? tg[i % 2] : (uint32_t)i);
		bad += one(im, name, map, hs[s], n, tg, 1, true);
		bad += one(im, name, map, hs[s], n, tg, 2, false);
		for (size_t i = 0; i < n; i++)
			st(map + i * hs[s], 0);
	}
	munmap(map, len);
	tap_is(bad, 0, "%s: strides %#zx, %#zx, %#zx (the gather limit), n 17",
	       name, hs[0], hs[1], hs[2]);
}

static void check_path(const struct uhp_route_impl *im, const char *name,
		       const char *why)
{
	void (*const checks[PER_PATH])(const struct uhp_route_impl *, const char *) = {
		t_every_n, t_random_n, t_headers, t_edges, t_sets,
		t_large_sets, t_degenerate, t_odd_strides, t_page_end,
		t_huge_stride,
	};

	for (int c = 0; c < PER_PATH; c++) {
		if (!im) {
			tap_skip(why, "%s: check %d", name, c + 1);
			continue;
		}
		ndiag = 0;
		checks[c](im, name);
	}
}

/* ---- dispatch ---- */

static int dispatch_only(void)
{
	const char *env = getenv("UHP_ROUTE");
	const char *want = NULL;
	uint32_t ids[70], tg[2] = { 3, 9 };
	uint64_t w[2], r[2];
	size_t got;

	tap_plan(2);
	for (size_t i = 0; i < 70; i++)
		ids[i] = (uint32_t)(i % 11);
	/* the set function resolves first here: both must then be set */
	got = uhp_route_match_set(ids, 4, 70, tg, 2, w);
	tap_ok(got == ref_match((const unsigned char *)ids, 4, 70, tg, 2, r) &&
	       !memcmp(w, r, sizeof(w)) &&
	       uhp_route_match(ids, 4, 70, 9, w) ==
	       ref_match((const unsigned char *)ids, 4, 70, tg + 1, 1, r) &&
	       !memcmp(w, r, sizeof(w)),
	       "first call through uhp_route_match_set, then uhp_route_match: "
	       "both right");
	if (env)
		for (unsigned p = 0; p < UHP_ROUTE_NR_PATHS; p++)
			if (!strcmp(env, uhp__route_path_name(p)) &&
			    uhp__route_path(p, NULL))
				want = uhp__route_path_name(p);
	for (unsigned p = UHP_ROUTE_NR_PATHS; !want && p-- > 0;)
		if (uhp__route_path(p, NULL))
			want = uhp__route_path_name(p);
	tap_ok(!strcmp(uhp__route_impl(), want), "UHP_ROUTE=%s: uses %s (want %s)",
	       env ? env : "(unset)", uhp__route_impl(), want);
	return tap_done();
}

int main(int argc, char **argv)
{
	static const struct uhp_route_impl public_fns = {
		uhp_route_match, uhp_route_match_set
	};
	const char *seed = getenv("ROUTE_SEED");
	struct sigaction sa = { .sa_handler = on_segv };

	if (argc > 1 && !strcmp(argv[1], "dispatch"))
		return dispatch_only();
	if (argc > 1) {
		fprintf(stderr, "usage: route_test [dispatch]\n");
		return 2;
	}

	tap_plan((UHP_ROUTE_NR_PATHS + 1) * PER_PATH);
	rng_state = seed ? strtoull(seed, NULL, 0) : 0x7e57ab1e;
	tap_diag("ROUTE_SEED=%#llx; UHP_ROUTE=%s, dispatch uses %s",
		 (unsigned long long)rng_state,
		 getenv("UHP_ROUTE") ? getenv("UHP_ROUTE") : "(unset)",
		 uhp__route_impl());
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	area = malloc((size_t)MAX_N * 64 + (size_t)201 * MAX_ELEM + 64);
	bm = malloc((MAX_WORDS + 1) * sizeof(*bm));
	bm_ref = malloc((MAX_WORDS + 1) * sizeof(*bm));
	bm_sc = malloc((MAX_WORDS + 1) * sizeof(*bm));
	scalar = uhp__route_path(UHP_ROUTE_SCALAR, NULL);
	if (!area || !bm || !bm_ref || !bm_sc || !scalar)
		tap_bail("setup");

	for (unsigned p = 0; p < UHP_ROUTE_NR_PATHS; p++) {
		const char *why;
		const struct uhp_route_impl *im = uhp__route_path(p, &why);

		check_path(im, uhp__route_path_name(p), why);
	}
	check_path(&public_fns, "uhp_route", NULL);
	free(area);
	free(bm);
	free(bm_ref);
	free(bm_sc);
	return tap_done();
}
