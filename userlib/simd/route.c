// SPDX-License-Identifier: MIT
/*
 * Routing: uhp_route_match() and uhp_route_match_set() filter a batch of
 * records by destination agent id into a bitmap; the choice of their path.
 *
 * Paths (each one complete, for every n, stride and set size):
 *   scalar   one id at a time (here)
 *   avx2     8 ids per compare, movemask (route_x86.c)
 *   avx512   16 ids per compare into a __mmask16 (route_x86.c)
 * Sets of more than UHP_ROUTE_SET_VEC_MAX targets take the same binary
 * search (uhp__route_set_large, here) on every path.
 *
 * Like uhp_crc32c(): the best path the CPU (and OS) supports is chosen
 * once, at the first call of either function, and both function pointers
 * are set; UHP_ROUTE=scalar|avx2|avx512|auto forces a path, an unknown
 * value or a path this CPU lacks means auto.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "uhp_internal.h"

/* The id of record i: a 4-byte load that needs no alignment. */
static inline uint32_t route_id(const uint32_t *ids, size_t stride, size_t i)
{
	uint32_t v;

	memcpy(&v, (const unsigned char *)ids + i * stride, sizeof(v));
	return v;
}

/* ---- scalar ---- */

size_t uhp__route_match_scalar(const uint32_t *ids, size_t stride, size_t n,
			       uint32_t target, uint64_t *bitmap)
{
	size_t cnt = 0;

	for (size_t i = 0; i < n; i += 64) {
		size_t lim = n - i < 64 ? n - i : 64;
		uint64_t w = 0;

		for (size_t b = 0; b < lim; b++) {
			uint64_t hit = route_id(ids, stride, i + b) == target;

			w |= hit << b;
			cnt += hit;
		}
		bitmap[i / 64] = w;
	}
	return cnt;
}

/* Up to UHP_ROUTE_SET_VEC_MAX targets: compare with each. */
size_t uhp__route_set_scalar(const uint32_t *ids, size_t stride, size_t n,
			     const uint32_t *targets, size_t ntargets,
			     uint64_t *bitmap)
{
	size_t cnt = 0;

	if (ntargets > UHP_ROUTE_SET_VEC_MAX)
		return uhp__route_set_large(ids, stride, n, targets, ntargets,
					    bitmap);
	for (size_t i = 0; i < n; i += 64) {
		size_t lim = n - i < 64 ? n - i : 64;
		uint64_t w = 0;

		for (size_t b = 0; b < lim; b++) {
			uint32_t id = route_id(ids, stride, i + b);
			uint64_t hit = 0;

			for (size_t j = 0; j < ntargets; j++)
				hit |= id == targets[j];
			w |= hit << b;
			cnt += hit;
		}
		bitmap[i / 64] = w;
	}
	return cnt;
}

/* ---- large sets: binary search in sorted targets ---- */

/*
 * Is x in the ascending a[0..n), n >= 1? Branchless: base ends on the
 * last element <= x (or a[0]), which is x when x is there.
 */
static inline bool route_in_sorted(const uint32_t *a, size_t n, uint32_t x)
{
	const uint32_t *base = a;

	while (n > 1) {
		size_t half = n / 2;

		base = base[half] <= x ? base + half : base;
		n -= half;
	}
	return *base == x;
}

/* OR (or, if first, store) the ids found in the ascending set[0..ns). */
static void route_search(const uint32_t *ids, size_t stride, size_t n,
			 const uint32_t *set, size_t ns, uint64_t *bitmap,
			 bool first)
{
	for (size_t i = 0; i < n; i += 64) {
		size_t lim = n - i < 64 ? n - i : 64;
		uint64_t w = 0;

		for (size_t b = 0; b < lim; b++)
			w |= (uint64_t)route_in_sorted(set, ns,
						       route_id(ids, stride, i + b)) << b;
		bitmap[i / 64] = first ? w : bitmap[i / 64] | w;
	}
}

/* Insertion sort: chunks are at most UHP_ROUTE_SET_CHUNK entries. */
static void route_sort(uint32_t *a, size_t n)
{
	for (size_t i = 1; i < n; i++) {
		uint32_t v = a[i];
		size_t j = i;

		for (; j > 0 && a[j - 1] > v; j--)
			a[j] = a[j - 1];
		a[j] = v;
	}
}

static bool route_sorted(const uint32_t *a, size_t n)
{
	for (size_t i = 1; i < n; i++)
		if (a[i - 1] > a[i])
			return false;
	return true;
}

size_t uhp__route_set_large(const uint32_t *ids, size_t stride, size_t n,
			    const uint32_t *targets, size_t ntargets,
			    uint64_t *bitmap)
{
	uint32_t chunk[UHP_ROUTE_SET_CHUNK];
	size_t cnt = 0;

	if (n == 0)
		return 0;
	if (ntargets == 0) {
		memset(bitmap, 0, (n + 63) / 64 * sizeof(*bitmap));
		return 0;
	}
	if (route_sorted(targets, ntargets)) {
		route_search(ids, stride, n, targets, ntargets, bitmap, true);
	} else {
		for (size_t j = 0; j < ntargets; j += UHP_ROUTE_SET_CHUNK) {
			size_t k = ntargets - j < UHP_ROUTE_SET_CHUNK ?
				   ntargets - j : UHP_ROUTE_SET_CHUNK;

			memcpy(chunk, targets + j, k * sizeof(*chunk));
			route_sort(chunk, k);
			route_search(ids, stride, n, chunk, k, bitmap, j == 0);
		}
	}
	for (size_t w = 0; w < (n + 63) / 64; w++)
		cnt += (size_t)__builtin_popcountll(bitmap[w]);
	return cnt;
}

/* ---- dispatch ---- */

static const char *const path_names[UHP_ROUTE_NR_PATHS] = {
	[UHP_ROUTE_SCALAR] = "scalar",
	[UHP_ROUTE_AVX2] = "avx2",
	[UHP_ROUTE_AVX512] = "avx512",
};

static const struct uhp_route_impl route_impls[UHP_ROUTE_NR_PATHS] = {
	[UHP_ROUTE_SCALAR] = { uhp__route_match_scalar, uhp__route_set_scalar },
#if defined(__x86_64__)
	[UHP_ROUTE_AVX2] = { uhp__route_match_avx2, uhp__route_set_avx2 },
	[UHP_ROUTE_AVX512] = { uhp__route_match_avx512, uhp__route_set_avx512 },
#endif
};

const char *uhp__route_path_name(unsigned path)
{
	return path < UHP_ROUTE_NR_PATHS ? path_names[path] : "?";
}

const struct uhp_route_impl *uhp__route_path(unsigned path, const char **why_not)
{
	const char *why = NULL;

	switch (path) {
	case UHP_ROUTE_SCALAR:
		break;
#if defined(__x86_64__)
	case UHP_ROUTE_AVX2:
		/* libgcc also checks that the OS saves the ymm state */
		__builtin_cpu_init();
		if (!__builtin_cpu_supports("avx2") ||
		    !__builtin_cpu_supports("popcnt"))
			why = "CPU or OS lacks AVX2 or POPCNT";
		break;
	case UHP_ROUTE_AVX512:
		/* ... and the zmm/opmask state */
		__builtin_cpu_init();
		if (!__builtin_cpu_supports("avx512f") ||
		    !__builtin_cpu_supports("popcnt"))
			why = "CPU or OS lacks AVX512F or POPCNT";
		break;
#else
	case UHP_ROUTE_AVX2:
	case UHP_ROUTE_AVX512:
		why = "not an x86-64 build";
		break;
#endif
	default:
		why = "no such path";
		break;
	}
	if (why_not)
		*why_not = why;
	return why ? NULL : &route_impls[path];
}

static bool route_have(unsigned path)
{
	return uhp__route_path(path, NULL) != NULL;
}

static unsigned route_choose(void)
{
	static const unsigned prefer[] = { UHP_ROUTE_AVX512, UHP_ROUTE_AVX2 };

	return uhp__dispatch_choose("UHP_ROUTE", path_names, UHP_ROUTE_NR_PATHS,
				    route_have, prefer, 2, UHP_ROUTE_SCALAR);
}

static size_t match_resolve(const uint32_t *ids, size_t stride, size_t n,
			    uint32_t target, uint64_t *bitmap);
static size_t set_resolve(const uint32_t *ids, size_t stride, size_t n,
			  const uint32_t *targets, size_t ntargets,
			  uint64_t *bitmap);

/*
 * The functions in use: the resolvers until the first call has chosen.
 * Threads racing on the first call choose the same and store the same.
 */
static uhp_route_match_fn match_impl = match_resolve;
static uhp_route_set_fn set_impl = set_resolve;
static unsigned route_path = UHP_ROUTE_NR_PATHS;

static const struct uhp_route_impl *route_ready(void)
{
	unsigned path = __atomic_load_n(&route_path, __ATOMIC_ACQUIRE);

	if (uhp_unlikely(path >= UHP_ROUTE_NR_PATHS)) {
		const struct uhp_route_impl *im;

		path = route_choose();
		im = uhp__route_path(path, NULL);
		__atomic_store_n(&match_impl, im->match, __ATOMIC_RELEASE);
		__atomic_store_n(&set_impl, im->match_set, __ATOMIC_RELEASE);
		__atomic_store_n(&route_path, path, __ATOMIC_RELEASE);
	}
	return &route_impls[path];
}

static size_t match_resolve(const uint32_t *ids, size_t stride, size_t n,
			    uint32_t target, uint64_t *bitmap)
{
	return route_ready()->match(ids, stride, n, target, bitmap);
}

static size_t set_resolve(const uint32_t *ids, size_t stride, size_t n,
			  const uint32_t *targets, size_t ntargets,
			  uint64_t *bitmap)
{
	return route_ready()->match_set(ids, stride, n, targets, ntargets, bitmap);
}

const char *uhp__route_impl(void)
{
	route_ready();
	return uhp__route_path_name(__atomic_load_n(&route_path, __ATOMIC_ACQUIRE));
}

UHP_API size_t uhp_route_match(const uint32_t *ids, size_t stride_bytes,
			       size_t n, uint32_t target, uint64_t *bitmap)
{
	return __atomic_load_n(&match_impl, __ATOMIC_ACQUIRE)(ids, stride_bytes,
							       n, target, bitmap);
}

UHP_API size_t uhp_route_match_set(const uint32_t *ids, size_t stride_bytes,
				   size_t n, const uint32_t *targets,
				   size_t ntargets, uint64_t *bitmap)
{
	return __atomic_load_n(&set_impl, __ATOMIC_ACQUIRE)(ids, stride_bytes, n,
							     targets, ntargets,
							     bitmap);
}
