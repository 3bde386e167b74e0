// SPDX-License-Identifier: MIT
/*
 * bench_copy: every uhp_memcpy() path this CPU has, the dispatching
 * uhp_memcpy(), and the C library's memcpy() as the peer, side by side in
 * one process (bench_common.h says how). Each call copies the same source
 * to the same destination, so up to the cache sizes both stay hot, as for
 * a ring slot and a message buffer that are reused; beyond, the copy runs
 * from and to memory. BENCH_COPY_SRC_OFF / BENCH_COPY_DST_OFF (0..4095,
 * default 0) misalign the buffers.
 */
#include "bench_common.h"
#include "uhp_internal.h"

typedef void *(*copy_fn)(void *, const void *, size_t);

static unsigned char *src, *dst;
static volatile uintptr_t sink;

/*
 * memcpy() and uhp_memcpy() are called as a program calls them (through
 * the PLT, resp. directly into the dispatcher: two jumps each); a single
 * path through a pointer (one).
 */
static uint64_t copy_batch(const struct bench_impl *impl, size_t size, long iters)
{
	copy_fn f = (copy_fn)impl->fn;
	unsigned char *d = dst;		/* in registers: not reloaded per call */
	const unsigned char *sr = src;
	uintptr_t s = 0;
	uint64_t t0 = bench_now_ns();

	if (f == memcpy)
		for (long i = 0; i < iters; i++)
			s += (uintptr_t)memcpy(d, sr, size);
	else if (f == uhp_memcpy)
		for (long i = 0; i < iters; i++)
			s += (uintptr_t)uhp_memcpy(d, sr, size);
	else
		for (long i = 0; i < iters; i++)
			s += (uintptr_t)f(d, sr, size);
	t0 = bench_now_ns() - t0;
	sink += s;
	return t0;
}

int main(void)
{
	static const size_t def[] = {
		64, 128, 256, 512, 1024, 4096, 16384, 65536, 256 << 10,
		1 << 20, 4 << 20, 16 << 20, 64 << 20,
	};
	size_t sizes[BENCH_MAX_SIZES], max = 0;
	int nsizes = bench_sizes(sizes, def, sizeof(def) / sizeof(def[0]));
	size_t soff = (size_t)bench_env_long("BENCH_COPY_SRC_OFF", 0, 0, 4095);
	size_t doff = (size_t)bench_env_long("BENCH_COPY_DST_OFF", 0, 0, 4095);
	struct bench_impl impls[BENCH_MAX_IMPLS];
	double ns[BENCH_MAX_IMPLS];
	int n = 0, peer;
	FILE *jf;

	bench_pin();
	for (unsigned p = 0; p < UHP_COPY_NR_PATHS; p++) {
		const char *why;
		uhp_copy_fn f = uhp__copy_path_fn(p, &why);

		if (!f) {
			printf("# %s: skipped (%s)\n", uhp__copy_path_name(p), why);
			continue;
		}
		impls[n].name = uhp__copy_path_name(p);
		impls[n++].fn = (void (*)(void))f;
	}
	printf("# uhp_memcpy dispatches to %s; src +%zu, dst +%zu from a page\n",
	       uhp__copy_impl(), soff, doff);
	impls[n].name = "uhp_memcpy";
	impls[n++].fn = (void (*)(void))uhp_memcpy;
	impls[n].name = "glibc";
	impls[n++].fn = (void (*)(void))memcpy;
	peer = n - 1;

	for (int i = 0; i < nsizes; i++)
		max = sizes[i] > max ? sizes[i] : max;
	max = (max + soff + doff + 4095) & ~(size_t)4095;
	src = aligned_alloc(4096, max);
	dst = aligned_alloc(4096, max);
	if (!src || !dst)
		return 1;
	for (size_t i = 0; i < max; i++)
		src[i] = (unsigned char)(i * 2654435761U >> 13);
	memset(dst, 0, max);	/* fault the pages in before timing */
	src += soff;
	dst += doff;

	jf = bench_open_jsonl("copy");
	bench_header("copy", impls, n, peer);
	for (int s = 0; s < nsizes; s++) {
		bench_size(impls, n, sizes[s], copy_batch, ns);
		bench_report(jf, "copy", impls, n, peer, sizes[s], ns);
	}
	if (jf)
		fclose(jf);
	return 0;
}
