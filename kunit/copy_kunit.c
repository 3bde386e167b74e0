// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit: uhp_copy (kmod/copy.c) -- every copy path the CPU has, over sizes
 * 0..9000 and beyond the streaming-store threshold, at every source and
 * destination misalignment that matters, with guard bytes around the
 * destination that must stay untouched. Under UML the host's AVX-512 really
 * executes (kernel_fpu_begin() is a no-op there, the instructions are not).
 *
 * uhp_copy_timing is a report, not a gate: it prints each path's time
 * against the kernel's memcpy() (machines are noisy), but still checks
 * that every timed copy is right.
 */
#include <kunit/test.h>
#include <linux/ktime.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>

#include "uhp_kunit.h"

#define GUARD		64
#define GUARD_BYTE	0xa5

static const unsigned int copy_paths[] = {
	UHP_COPY_GENERIC, UHP_COPY_ERMS, UHP_COPY_AVX2, UHP_COPY_AVX512,
};

static void copy_path_desc(const unsigned int *path, char *desc)
{
	snprintf(desc, KUNIT_PARAM_DESC_SIZE, "%s", uhp_copy_name(*path));
}

KUNIT_ARRAY_PARAM(copy_path, copy_paths, copy_path_desc);

static unsigned int param_path(struct kunit *test)
{
	unsigned int path = *(const unsigned int *)test->param_value;

	if (!uhp_copy_path_supported(path))
		kunit_skip(test, "this CPU lacks the %s instructions",
			   uhp_copy_name(path));
	return path;
}

struct copy_bufs {
	u8 *src;
	u8 *dst;	/* GUARD bytes, then room for the copy, then GUARD */
	size_t cap;
};

/* vmalloc: the large cases need more than kmalloc gives. */
static void copy_bufs_alloc(struct kunit *test, struct copy_bufs *b, size_t cap)
{
	size_t i;

	b->cap = cap;
	b->src = vmalloc(cap + 64);
	b->dst = vmalloc(cap + 64 + 2 * GUARD);
	if (!b->src || !b->dst) {
		vfree(b->src);
		vfree(b->dst);
		KUNIT_FAIL_AND_ABORT(test, "no %zu bytes of vmalloc space", cap);
	}
	for (i = 0; i < cap + 64; i++)
		b->src[i] = (u8)(i * 131 + 7);
}

static void copy_bufs_free(struct copy_bufs *b)
{
	vfree(b->src);
	vfree(b->dst);
}

/* Copy len bytes at the given misalignments and check all of dst. */
static bool copy_check(struct kunit *test, struct copy_bufs *b,
		       unsigned int path, size_t len, size_t soff, size_t doff)
{
	u8 *d = b->dst + GUARD + doff;
	size_t i;

	memset(b->dst, GUARD_BYTE, b->cap + 64 + 2 * GUARD);
	uhp_copy_with(path, d, b->src + soff, len);
	if (memcmp(d, b->src + soff, len)) {
		for (i = 0; i < len && d[i] == b->src[soff + i]; i++)
			;
		KUNIT_FAIL(test, "%s: len %zu src+%zu dst+%zu: first wrong byte at %zu",
			   uhp_copy_name(path), len, soff, doff, i);
		return false;
	}
	for (i = 0; i < GUARD + doff; i++)
		if (b->dst[i] != GUARD_BYTE)
			goto guard;
	for (i = GUARD + doff + len; i < b->cap + 64 + 2 * GUARD; i++)
		if (b->dst[i] != GUARD_BYTE)
			goto guard;
	return true;
guard:
	KUNIT_FAIL(test, "%s: len %zu src+%zu dst+%zu: wrote outside, at dst byte %zu",
		   uhp_copy_name(path), len, soff, doff, i);
	return false;
}

/* Every size 0..600 (all tails and unroll edges), aligned and misaligned. */
static void uhp_copy_small_sizes(struct kunit *test)
{
	unsigned int path = param_path(test);
	static const size_t offs[][2] = { {0, 0}, {1, 0}, {0, 1}, {7, 13}, {63, 33} };
	struct copy_bufs b;
	size_t len, k;

	copy_bufs_alloc(test, &b, 600);
	for (len = 0; len <= 600; len++)
		for (k = 0; k < ARRAY_SIZE(offs); k++)
			if (!copy_check(test, &b, path, len, offs[k][0], offs[k][1]))
				goto out;
out:
	copy_bufs_free(&b);
}

/* Sizes up to ~9000 (across several FPU-free/FPU thresholds), all offsets. */
static void uhp_copy_misaligned(struct kunit *test)
{
	unsigned int path = param_path(test);
	static const size_t lens[] = { 601, 1023, 1024, 1025, 2047, 4096, 4099,
				       6000, 8191, 8192, 8193, 9000 };
	struct copy_bufs b;
	size_t k, soff, doff;

	copy_bufs_alloc(test, &b, 9000);
	for (k = 0; k < ARRAY_SIZE(lens); k++)
		for (soff = 0; soff < 64; soff += 5)
			for (doff = 0; doff < 64; doff += 3)
				if (!copy_check(test, &b, path, lens[k], soff, doff))
					goto out;
out:
	copy_bufs_free(&b);
}

/* Across FPU chunk boundaries and past the streaming-store threshold. */
static void uhp_copy_big_sizes(struct kunit *test)
{
	unsigned int path = param_path(test);
	static const size_t lens[] = { SZ_64K, SZ_64K + 1, SZ_64K + 255,
				       SZ_256K + 13, SZ_16M + 77 };
	struct copy_bufs b;
	size_t k;

	copy_bufs_alloc(test, &b, SZ_16M + 128);
	for (k = 0; k < ARRAY_SIZE(lens); k++) {
		if (!copy_check(test, &b, path, lens[k], 0, 0) ||
		    !copy_check(test, &b, path, lens[k], 3, 61))
			break;
	}
	copy_bufs_free(&b);
}

/* A kvec source goes through uhp_copy(); the iterator advances. */
static void uhp_copy_from_kvec(struct kunit *test)
{
	const size_t len = 700;
	u8 *src = kunit_kmalloc(test, len, GFP_KERNEL);
	u8 *dst = kunit_kmalloc(test, len, GFP_KERNEL);
	struct kvec kv = { .iov_base = src, .iov_len = len };
	struct iov_iter iter;
	size_t i;

	/* Not on the stack: under KASAN the frame outgrew 1 KiB. */
	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, src);
	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, dst);
	for (i = 0; i < len; i++)
		src[i] = (u8)i;
	iov_iter_kvec(&iter, ITER_SOURCE, &kv, 1, len);
	KUNIT_ASSERT_EQ(test, uhp_copy_from_iter(dst, 300, &iter), 0);
	KUNIT_EXPECT_EQ(test, iov_iter_count(&iter), len - 300);
	KUNIT_ASSERT_EQ(test, uhp_copy_from_iter(dst + 300, 400, &iter), 0);
	KUNIT_EXPECT_EQ(test, memcmp(dst, src, len), 0);
	/* Asking for more than the source has is -EFAULT, not an overrun. */
	KUNIT_EXPECT_EQ(test, uhp_copy_from_iter(dst, 1, &iter), -EFAULT);
}

/* The path chosen at load is the best one the CPU has (copy=auto). */
static void uhp_copy_auto_is_best(struct kunit *test)
{
	unsigned int best = UHP_COPY_GENERIC, k;

	for (k = 0; k < ARRAY_SIZE(copy_paths); k++)
		if (uhp_copy_path_supported(copy_paths[k]) && copy_paths[k] > best)
			best = copy_paths[k];
	KUNIT_EXPECT_EQ(test, uhp_copy_path(), best);
	kunit_info(test, "copy path in use: %s", uhp_copy_name(uhp_copy_path()));
}

static u64 time_copy(unsigned int path, void *d, const void *s, size_t len,
		     unsigned int reps)
{
	u64 t0 = ktime_get_ns();
	unsigned int i;

	for (i = 0; i < reps; i++) {
		if (path == ~0U)
			memcpy(d, s, len);
		else if (path == ~1U)
			uhp_copy(d, s, len);	/* the entry the module uses */
		else
			uhp_copy_with(path, d, s, len);
	}
	return ktime_get_ns() - t0;
}

/*
 * Each implementation is timed TIMING_ROUNDS times, the rounds interleaved
 * (memcpy, every path, the uhp_copy entry, then again), and its best round
 * counts: a preempted or interrupted round only ever makes a copy look
 * slower. Times are in picoseconds per copy, for the short sizes.
 */
#define TIMING_ROUNDS	7
#define TIMING_IMPLS	(ARRAY_SIZE(copy_paths) + 2)

static void uhp_copy_timing(struct kunit *test)
{
	static const size_t lens[] = { 64, 256, SZ_1K, SZ_4K, SZ_64K, SZ_1M,
				       SZ_8M, SZ_32M };
	unsigned int ids[TIMING_IMPLS];
	u64 best[TIMING_IMPLS];
	struct copy_bufs b;
	unsigned int n = 0, i, r;
	size_t k;

	if (IS_ENABLED(CONFIG_KASAN))
		kunit_skip(test, "a sanitizer checks every access: timings would measure it");
	ids[n++] = ~0U;				/* the kernel's memcpy() */
	for (i = 0; i < ARRAY_SIZE(copy_paths); i++)
		if (uhp_copy_path_supported(copy_paths[i]))
			ids[n++] = copy_paths[i];
	ids[n++] = ~1U;				/* the entry the module uses */

	copy_bufs_alloc(test, &b, SZ_32M);
	for (k = 0; k < ARRAY_SIZE(lens); k++) {
		unsigned int reps = max_t(unsigned int, 4,
					  (64 * SZ_1M) / lens[k] / 64);

		time_copy(~0U, b.dst, b.src, lens[k], reps);	/* warm up */
		for (i = 0; i < n; i++)
			best[i] = U64_MAX;
		for (r = 0; r < TIMING_ROUNDS; r++)
			for (i = 0; i < n; i++)
				best[i] = min(best[i], time_copy(ids[i], b.dst, b.src,
								 lens[k], reps));
		for (i = 1; i < n; i++) {
			u64 t = max_t(u64, best[i], 1);

			kunit_info(test, "size %7zu %-8s %10llu ps/op  memcpy %10llu ps/op  speedup x%llu.%02llu",
				   lens[k], ids[i] == ~1U ? "uhp_copy" :
				   uhp_copy_name(ids[i]),
				   best[i] * 1000 / reps, best[0] * 1000 / reps,
				   best[0] / t, best[0] * 100 / t % 100);
		}
		if (!copy_check(test, &b, uhp_copy_path(), lens[k], 0, 0))
			break;
	}
	copy_bufs_free(&b);
}

static struct kunit_case uhp_copy_cases[] = {
	KUNIT_CASE_PARAM(uhp_copy_small_sizes, copy_path_gen_params),
	KUNIT_CASE_PARAM(uhp_copy_misaligned, copy_path_gen_params),
	KUNIT_CASE_PARAM(uhp_copy_big_sizes, copy_path_gen_params),
	KUNIT_CASE(uhp_copy_from_kvec),
	KUNIT_CASE(uhp_copy_auto_is_best),
	KUNIT_CASE(uhp_copy_timing),
	{}
};

static struct kunit_suite uhp_copy_suite = {
	.name = "uhp_copy",
	.test_cases = uhp_copy_cases,
};

kunit_test_suite(uhp_copy_suite);
