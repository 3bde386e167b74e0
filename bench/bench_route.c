// SPDX-License-Identifier: MIT
/*
 * bench_route: uhp_route_match() and uhp_route_match_set() (4 targets),
 * every path this CPU has and the dispatching public function, with the
 * scalar path as the peer (bench_common.h says how they are interleaved).
 * Batches of n = 64, 256, 4096 records (BENCH_SIZES replaces the list),
 * ids dense (stride 4) and in struct uhp_rec_hdr headers (stride 40, a
 * gather on the vector paths); about 1 in 8 matches. Everything stays in
 * the caches: this is the cost of the filter, not of memory.
 * Output: ns per call, million records per second, speed vs scalar; JSON
 * lines (size = records, plus stride and mrec_per_s) into route.jsonl.
 */
#include "bench_common.h"
#include "uhp_internal.h"

#define MAX_N		(1 << 20)
#define NR_TARGETS	4

static const uint32_t targets[NR_TARGETS] = { 7, 1000, 0x80000000, 42 };
static uint32_t *dense;
static struct uhp_rec_hdr *hdrs;
static uint64_t *bitmap;
static const uint32_t *cur_ids;		/* the layout being measured */
static size_t cur_stride;
static volatile size_t sink;

static uint64_t match_batch(const struct bench_impl *impl, size_t n, long iters)
{
	uhp_route_match_fn f = (uhp_route_match_fn)impl->fn;
	const uint32_t *ids = cur_ids;
	size_t stride = cur_stride, s = 0;
	uint64_t t0 = bench_now_ns();

	if (f == uhp_route_match)
		for (long i = 0; i < iters; i++)
			s += uhp_route_match(ids, stride, n, targets[0], bitmap);
	else
		for (long i = 0; i < iters; i++)
			s += f(ids, stride, n, targets[0], bitmap);
	t0 = bench_now_ns() - t0;
	sink += s;
	return t0;
}

static uint64_t set_batch(const struct bench_impl *impl, size_t n, long iters)
{
	uhp_route_set_fn f = (uhp_route_set_fn)impl->fn;
	const uint32_t *ids = cur_ids;
	size_t stride = cur_stride, s = 0;
	uint64_t t0 = bench_now_ns();

	if (f == uhp_route_match_set)
		for (long i = 0; i < iters; i++)
			s += uhp_route_match_set(ids, stride, n, targets,
						 NR_TARGETS, bitmap);
	else
		for (long i = 0; i < iters; i++)
			s += f(ids, stride, n, targets, NR_TARGETS, bitmap);
	t0 = bench_now_ns() - t0;
	sink += s;
	return t0;
}

static void run(FILE *jf, const char *bench, const struct bench_impl *impls,
		int nimpl, bench_batch_fn batch, const size_t *sizes, int nsizes)
{
	static const size_t strides[] = { 4, sizeof(struct uhp_rec_hdr) };
	double ns[BENCH_MAX_IMPLS];
	long reps = bench_env_long("BENCH_REPS", 15, 1, BENCH_MAX_REPS);

	printf("\n%s: median of %ld interleaved rounds; per impl: ns/call, "
	       "Mrec/s, speed vs %s (>1 = faster)\n", bench, reps, impls[0].name);
	printf("%6s %6s", "n", "stride");
	for (int i = 0; i < nimpl; i++)
		printf(" | %-22s", impls[i].name);
	printf("\n");
	for (size_t s = 0; s < 2; s++) {
		cur_stride = strides[s];
		cur_ids = s == 0 ? dense : &hdrs[0].dst;
		for (int z = 0; z < nsizes; z++) {
			size_t n = sizes[z];

			bench_size(impls, nimpl, n, batch, ns);
			printf("%6zu %6zu", n, cur_stride);
			for (int i = 0; i < nimpl; i++)
				printf(" | %8.1f %6.0f %5.2fx", ns[i],
				       (double)n / ns[i] * 1e3, ns[0] / ns[i]);
			printf("\n");
			fflush(stdout);
			for (int i = 0; jf && i < nimpl; i++)
				fprintf(jf, "{\"bench\":\"%s\",\"impl\":\"%s\","
					"\"size\":%zu,\"stride\":%zu,"
					"\"ns_per_op\":%.3f,\"mrec_per_s\":%.1f,"
					"\"ratio_vs_peer\":%.3f}\n",
					bench, impls[i].name, n, cur_stride,
					ns[i], (double)n / ns[i] * 1e3,
					ns[0] / ns[i]);
		}
	}
}

int main(void)
{
	static const size_t def[] = { 64, 256, 4096 };
	size_t sizes[BENCH_MAX_SIZES];
	int nsizes = bench_sizes(sizes, def, sizeof(def) / sizeof(def[0]));
	struct bench_impl mimpls[BENCH_MAX_IMPLS], simpls[BENCH_MAX_IMPLS];
	size_t max = 0;
	int n = 0;
	uint64_t x = 0x243F6A8885A308D3ULL;
	FILE *jf;

	for (int z = 0; z < nsizes; z++) {
		if (sizes[z] == 0 || sizes[z] > MAX_N) {
			fprintf(stderr, "BENCH_SIZES: 1..%d records\n", MAX_N);
			return 2;
		}
		max = sizes[z] > max ? sizes[z] : max;
	}
	dense = malloc(max * sizeof(*dense));
	hdrs = calloc(max, sizeof(*hdrs));
	bitmap = malloc((max + 63) / 64 * sizeof(*bitmap));
	if (!dense || !hdrs || !bitmap)
		return 1;
	for (size_t i = 0; i < max; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		dense[i] = x % 8 == 0 ? targets[(x >> 3) % NR_TARGETS] :
					(uint32_t)(x >> 32);
		hdrs[i].dst = dense[i];
		hdrs[i].src = (uint32_t)x;
		hdrs[i].len = 64;
	}

	bench_pin();
	for (unsigned p = 0; p < UHP_ROUTE_NR_PATHS; p++) {
		const char *why;
		const struct uhp_route_impl *im = uhp__route_path(p, &why);

		if (!im) {
			printf("# %s: skipped (%s)\n", uhp__route_path_name(p), why);
			continue;
		}
		mimpls[n].name = simpls[n].name = uhp__route_path_name(p);
		mimpls[n].fn = (void (*)(void))im->match;
		simpls[n++].fn = (void (*)(void))im->match_set;
	}
	printf("# uhp_route_* dispatch to %s; ~1/8 of the ids match\n",
	       uhp__route_impl());
	mimpls[n].name = simpls[n].name = "uhp_route";
	mimpls[n].fn = (void (*)(void))uhp_route_match;
	simpls[n++].fn = (void (*)(void))uhp_route_match_set;

	jf = bench_open_jsonl("route");
	run(jf, "route_match", mimpls, n, match_batch, sizes, nsizes);
	run(jf, "route_match_set4", simpls, n, set_batch, sizes, nsizes);
	if (jf)
		fclose(jf);
	free(dense);
	free(hdrs);
	free(bitmap);
	return 0;
}
