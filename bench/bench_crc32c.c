// SPDX-License-Identifier: MIT
/*
 * bench_crc32c: every CRC32C path of libuhp this CPU has, the dispatching
 * uhp_crc32c(), and ISA-L's crc32_iscsi() as the peer, side by side in one
 * process (bench_common.h says how). Calls are independent (seed ~0 each),
 * as for records: throughput of back-to-back calls, not chained latency.
 * ISA-L computes the same function: crc32_iscsi(b, n, ~0) == uhp_crc32c(~0,
 * b, n) (checked below before timing).
 * ISA-L's own non-AVX-512 entry points, where the library exports them
 * (crc32_iscsi_00, crc32_iscsi_01 in 2.30), are columns too, so each uhp
 * path has a peer of its kind; the ratio column stays against crc32_iscsi.
 * BENCH_CRC_CHAIN=1: each call is seeded with the result of the one
 * before, so calls cannot overlap: the latency of one call (a record
 * checked before the next step depends on it), not throughput.
 */
#include "bench_common.h"
#include "uhp_internal.h"

#ifdef HAVE_ISAL
#include <isa-l/crc.h>
#endif

typedef uint32_t (*crc_fn)(uint32_t, const void *, size_t);

static unsigned char *buf;
static volatile uint32_t sink;
static int chain;	/* BENCH_CRC_CHAIN */

#ifdef HAVE_ISAL
static uint32_t isal_crc(uint32_t crc, const void *b, size_t len)
{
	return crc32_iscsi((unsigned char *)b, (int)len, crc);
}

/* Not in isa-l/crc.h; weak: absent from some versions of the library. */
extern unsigned int crc32_iscsi_00(unsigned char *, int, unsigned int)
	__attribute__((weak));
extern unsigned int crc32_iscsi_01(unsigned char *, int, unsigned int)
	__attribute__((weak));

static uint32_t isal00_crc(uint32_t crc, const void *b, size_t len)
{
	return crc32_iscsi_00((unsigned char *)b, (int)len, crc);
}

static uint32_t isal01_crc(uint32_t crc, const void *b, size_t len)
{
	return crc32_iscsi_01((unsigned char *)b, (int)len, crc);
}
#endif

/*
 * crc32_iscsi() and uhp_crc32c() are called as a program calls them
 * (PLT resp. direct, then their own dispatch); a single path through a
 * pointer.
 */
static uint64_t crc_batch(const struct bench_impl *impl, size_t size, long iters)
{
	crc_fn f = (crc_fn)impl->fn;
	unsigned char *b = buf;		/* in a register: not reloaded per call */
	uint32_t s = 0;
	uint64_t t0 = bench_now_ns();

	if (chain) {
		/* each call waits for the last: latency */
		if (f == uhp_crc32c)
			for (long i = 0; i < iters; i++)
				s = uhp_crc32c(s, b, size);
#ifdef HAVE_ISAL
		else if (f == isal_crc)
			for (long i = 0; i < iters; i++)
				s = crc32_iscsi(b, (int)size, s);
#endif
		else
			for (long i = 0; i < iters; i++)
				s = f(s, b, size);
	} else if (f == uhp_crc32c)
		for (long i = 0; i < iters; i++)
			s += uhp_crc32c(~0U, b, size);
#ifdef HAVE_ISAL
	else if (f == isal_crc)
		for (long i = 0; i < iters; i++)
			s += crc32_iscsi(b, (int)size, ~0U);
#endif
	else
		for (long i = 0; i < iters; i++)
			s += f(~0U, b, size);
	t0 = bench_now_ns() - t0;
	sink += s;
	return t0;
}

int main(void)
{
	static const size_t def[] = { 64, 256, 1024, 4096, 65536, 1 << 20, 64 << 20 };
	size_t sizes[BENCH_MAX_SIZES], max = 0;
	int nsizes = bench_sizes(sizes, def, sizeof(def) / sizeof(def[0]));
	struct bench_impl impls[BENCH_MAX_IMPLS];
	double ns[BENCH_MAX_IMPLS];
	int n = 0, peer;
	FILE *jf;

	bench_pin();
	chain = (int)bench_env_long("BENCH_CRC_CHAIN", 0, 0, 1);
	if (chain)
		printf("# chained: each call seeded with the last result (latency)\n");
	for (unsigned p = 0; p < UHP_CRC_NR_PATHS; p++) {
		const char *why;
		uhp_crc_fn f = uhp__crc32c_path_fn(p, &why);

		if (!f) {
			printf("# %s: skipped (%s)\n", uhp__crc32c_path_name(p), why);
			continue;
		}
		impls[n].name = uhp__crc32c_path_name(p);
		impls[n++].fn = (void (*)(void))f;
	}
	printf("# uhp_crc32c dispatches to %s\n", uhp__crc32c_impl());
	impls[n].name = "uhp_crc32c";
	impls[n++].fn = (void (*)(void))uhp_crc32c;
#ifdef HAVE_ISAL
	__builtin_cpu_init();
	if (crc32_iscsi_00 && __builtin_cpu_supports("sse4.2")) {
		impls[n].name = "isal_00";
		impls[n++].fn = (void (*)(void))isal00_crc;
	}
	if (crc32_iscsi_01 && __builtin_cpu_supports("sse4.2") &&
	    __builtin_cpu_supports("pclmul")) {
		impls[n].name = "isal_01";
		impls[n++].fn = (void (*)(void))isal01_crc;
	}
	impls[n].name = "isal";
	impls[n++].fn = (void (*)(void))isal_crc;
	peer = n - 1;
#else
	printf("# ISA-L not built in (no libisal-dev): ratios are against table\n");
	peer = 0;
#endif

	for (int i = 0; i < nsizes; i++)
		max = sizes[i] > max ? sizes[i] : max;
	buf = aligned_alloc(4096, (max + 4095) & ~(size_t)4095);
	if (!buf)
		return 1;
	for (size_t i = 0; i < max; i++)
		buf[i] = (unsigned char)(i * 2654435761U >> 13);

	/* same answers before anything is timed */
	for (int i = 0; i < n; i++) {
		crc_fn f = (crc_fn)impls[i].fn;
		size_t len = max < 100000 ? max : 100000;

		if (f(~0U, buf, len) != uhp__crc32c_table(~0U, buf, len)) {
			fprintf(stderr, "%s disagrees with table\n", impls[i].name);
			return 1;
		}
	}

	{
		const char *name = chain ? "crc32c_chain" : "crc32c";

		jf = bench_open_jsonl(name);
		bench_header(name, impls, n, peer);
		for (int s = 0; s < nsizes; s++) {
			bench_size(impls, n, sizes[s], crc_batch, ns);
			bench_report(jf, name, impls, n, peer, sizes[s], ns);
		}
	}
	if (jf)
		fclose(jf);
	return 0;
}
