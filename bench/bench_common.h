/* SPDX-License-Identifier: MIT */
/*
 * Shared by the bench_* programs: clock, CPU pinning, medians, output.
 *
 * Method: for every size, each implementation runs a timed batch of calls
 * (about BENCH_SAMPLE_NS long, the same call count for every
 * implementation of that size); the batches of all implementations are
 * interleaved, their order rotated each round, and BENCH_REPS rounds are
 * run, so noise (frequency, the other vCPU, interrupts) hits all alike.
 * The figure reported is the median over the rounds.
 *
 * Environment: BENCH_REPS (default 15), BENCH_SAMPLE_US (default 2000),
 * BENCH_SIZES (comma-separated byte counts, K/M/G = 2^10/2^20/2^30,
 * replaces the default list),
 * BENCH_OUT (directory for the .jsonl, default ../build/bench from bench/).
 */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define BENCH_MAX_IMPLS	16
#define BENCH_MAX_SIZES	32
#define BENCH_MAX_REPS	101

static inline uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static inline long bench_env_long(const char *name, long def, long lo, long hi)
{
	const char *s = getenv(name);
	char *end;
	long v;

	if (!s || !*s)
		return def;
	v = strtol(s, &end, 0);
	if (*end || v < lo || v > hi) {
		fprintf(stderr, "%s=%s ignored (want %ld..%ld)\n", name, s, lo, hi);
		return def;
	}
	return v;
}

/*
 * ---- numbers on the command line ----
 *
 *   bench_arg_count(opt, s, lo, hi)  a count: messages, rounds, threads, ...
 *   bench_arg_size(opt, s, lo, hi)   a size in bytes: message, ring
 *
 * s is a decimal number, or a hexadecimal one after 0x / 0X, followed by at
 * most one suffix: K/k, M/m, G/g, which multiply a count by 10^3, 10^6,
 * 10^9 and a size by 2^10, 2^20, 2^30. Nothing else may come before or
 * after it (no sign, no blanks, no second suffix). Text of any other form,
 * a value that does not fit in 64 bits or one outside [lo, hi] is reported
 * on stderr, naming the program, opt, the text and the form and range
 * wanted, and the program exits with status 2:
 *
 *   bench_throughput: --messages "1X": want a count like 2000000, 2M or
 *   500K (1 .. 1000000000000)
 */

/* Parse s[0..len) as above into *v: 0, -EINVAL (not of that form) or
 * -ERANGE (too big for 64 bits). */
static inline int bench_parse_num(const char *s, size_t len, bool binary,
				  unsigned long long *v)
{
	const char *p = s, *e = s + len;
	unsigned long long x = 0, mul = 1;
	unsigned base = 10;
	bool digits = false, overflow = false;

	if (len > 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
		base = 16;
		p += 2;
	}
	for (; p < e; p++) {
		unsigned d;

		if (*p >= '0' && *p <= '9')
			d = (unsigned)(*p - '0');
		else if (base == 16 && *p >= 'a' && *p <= 'f')
			d = (unsigned)(*p - 'a') + 10;
		else if (base == 16 && *p >= 'A' && *p <= 'F')
			d = (unsigned)(*p - 'A') + 10;
		else
			break;
		if (x > (ULLONG_MAX - d) / base)
			overflow = true;
		else
			x = x * base + d;
		digits = true;
	}
	if (p < e) {
		switch (*p++) {
		case 'K': case 'k': mul = binary ? 1ULL << 10 : 1000ULL; break;
		case 'M': case 'm': mul = binary ? 1ULL << 20 : 1000000ULL; break;
		case 'G': case 'g': mul = binary ? 1ULL << 30 : 1000000000ULL; break;
		default: return -EINVAL;
		}
	}
	if (!digits || p != e)
		return -EINVAL;
	if (overflow || x > ULLONG_MAX / mul)
		return -ERANGE;
	*v = x * mul;
	return 0;
}

/* s[0..len) given for opt: parsed and checked against [lo, hi], or exit(2). */
static inline unsigned long long bench_arg_num(const char *opt, const char *s,
					       size_t len, unsigned long long lo,
					       unsigned long long hi, bool binary)
{
	unsigned long long v = 0;
	char range[64] = "";
	int ret = bench_parse_num(s, len, binary, &v);

	if (!ret && (v < lo || v > hi))
		ret = -ERANGE;
	if (!ret)
		return v;
	if (hi != ULLONG_MAX)
		snprintf(range, sizeof(range), " (%llu .. %llu)", lo, hi);
	else if (lo)
		snprintf(range, sizeof(range), " (at least %llu)", lo);
	fprintf(stderr, "%s: %s \"%.*s\": %swant %s%s\n",
		program_invocation_short_name, opt, (int)len, s,
		ret == -ERANGE ? "out of range; " : "",
		binary ? "a size in bytes like 4096, 64K or 1M" :
			 "a count like 2000000, 2M or 500K", range);
	exit(2);
}

/* A count: K, M, G = 10^3, 10^6, 10^9. */
static inline unsigned long long bench_arg_count(const char *opt, const char *s,
						 unsigned long long lo,
						 unsigned long long hi)
{
	return bench_arg_num(opt, s ? s : "", s ? strlen(s) : 0, lo, hi, false);
}

/* A size in bytes: K, M, G = 2^10, 2^20, 2^30. */
static inline unsigned long long bench_arg_size(const char *opt, const char *s,
						unsigned long long lo,
						unsigned long long hi)
{
	return bench_arg_num(opt, s ? s : "", s ? strlen(s) : 0, lo, hi, true);
}

/*
 * The default list, or BENCH_SIZES: comma-separated sizes as for
 * bench_arg_size() (K, M, G binary), at most BENCH_MAX_SIZES; anything
 * else exits with status 2. Returns the count.
 */
static inline int bench_sizes(size_t *out, const size_t *def, int ndef)
{
	const char *s = getenv("BENCH_SIZES");
	int n = 0;

	if (!s || !*s) {
		memcpy(out, def, sizeof(*def) * (size_t)ndef);
		return ndef;
	}
	for (;;) {
		size_t len = strcspn(s, ",");

		if (n == BENCH_MAX_SIZES) {
			fprintf(stderr, "%s: BENCH_SIZES: more than %d sizes\n",
				program_invocation_short_name, BENCH_MAX_SIZES);
			exit(2);
		}
		out[n++] = (size_t)bench_arg_num("BENCH_SIZES", s, len, 0,
						 SIZE_MAX, true);
		if (!s[len])
			return n;
		s += len + 1;
	}
}

/* Stay on the CPU we start on: no migrations between samples. */
static inline void bench_pin(void)
{
	cpu_set_t set;
	int cpu = sched_getcpu();

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set) != 0)
		fprintf(stderr, "note: could not pin to CPU %d (%s)\n", cpu,
			strerror(errno));
}

static int bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static inline double bench_median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), bench_cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* $BENCH_OUT/<name>.jsonl, truncated or (append) added to; NULL on error. */
static inline FILE *bench_open_jsonl_mode(const char *name, bool append)
{
	const char *dir = getenv("BENCH_OUT");
	char path[4096];
	FILE *f;

	if (!dir || !*dir)
		dir = "../build/bench";
	mkdir(dir, 0777);
	snprintf(path, sizeof(path), "%s/%s.jsonl", dir, name);
	f = fopen(path, append ? "a" : "w");
	if (!f)
		fprintf(stderr, "cannot write %s: %s\n", path, strerror(errno));
	else
		printf("# JSON lines: %s\n", path);
	return f;
}

static inline FILE *bench_open_jsonl(const char *name)
{
	return bench_open_jsonl_mode(name, false);
}

static inline double bench_now_s(void)
{
	return (double)bench_now_ns() / 1e9;
}

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>

/* Nanoseconds per TSC tick (constant_tsc), measured over a 100 ms sleep. */
static inline double bench_tsc_ns_per_tick(void)
{
	struct timespec d = { 0, 100 * 1000000L };
	uint64_t t0 = bench_now_ns(), c0 = __rdtsc();

	nanosleep(&d, NULL);
	return (double)(bench_now_ns() - t0) / (double)(__rdtsc() - c0);
}
#endif

static inline void bench_jsonl(FILE *f, const char *bench, const char *impl,
			       size_t size, double ns, double peer_ns)
{
	if (!f)
		return;
	/* ratio_vs_peer: peer time / this time, > 1 means faster than the peer */
	fprintf(f, "{\"bench\":\"%s\",\"impl\":\"%s\",\"size\":%zu,"
		"\"ns_per_op\":%.3f,\"gbps\":%.3f,\"ratio_vs_peer\":%.3f}\n",
		bench, impl, size, ns, (double)size / ns,
		peer_ns > 0 ? peer_ns / ns : 0.0);
}

static inline const char *bench_size_str(size_t n, char *buf, size_t cap)
{
	if (n >= (1 << 20) && n % (1 << 20) == 0)
		snprintf(buf, cap, "%zuM", n >> 20);
	else if (n >= 1024 && n % 1024 == 0)
		snprintf(buf, cap, "%zuK", n >> 10);
	else
		snprintf(buf, cap, "%zu", n);
	return buf;
}

#endif /* BENCH_COMMON_H */

/* ---- the interleaved rounds ---- */

struct bench_impl {
	const char *name;
	void (*fn)(void);	/* cast by the batch function */
};

/* Run iters calls of impl on a size-byte problem; return elapsed ns. */
typedef uint64_t (*bench_batch_fn)(const struct bench_impl *impl, size_t size,
				   long iters);

/*
 * Median ns per call of every implementation at one size, into ns[]. The
 * call count per batch is set from the first implementation (after a
 * warm-up batch of each).
 */
static inline void bench_size(const struct bench_impl *impls, int nimpl,
			      size_t size, bench_batch_fn batch, double *ns)
{
	static double samples[BENCH_MAX_IMPLS][BENCH_MAX_REPS];
	long reps = bench_env_long("BENCH_REPS", 15, 1, BENCH_MAX_REPS);
	uint64_t sample_ns = (uint64_t)bench_env_long("BENCH_SAMPLE_US", 2000, 10,
						      1000000) * 1000;
	long iters = 1;
	uint64_t t;

	for (int i = 0; i < nimpl; i++)
		batch(&impls[i], size, 1);
	/* calibrate on impls[0]: double until a batch takes sample_ns / 8 */
	while ((t = batch(&impls[0], size, iters)) < sample_ns / 8 &&
	       iters < (1L << 40))
		iters *= 2;
	iters = (long)((double)iters * (double)sample_ns / (double)(t ? t : 1));
	if (iters < 1)
		iters = 1;

	for (long r = 0; r < reps; r++)
		for (int j = 0; j < nimpl; j++) {
			int i = (int)((j + r) % nimpl);

			samples[i][r] = (double)batch(&impls[i], size, iters) /
					(double)iters;
		}
	for (int i = 0; i < nimpl; i++)
		ns[i] = bench_median(samples[i], (int)reps);
}

/*
 * Print one size's results (human table row) and write the JSON lines.
 * peer: index of the peer implementation (ratios are peer time / time).
 */
static inline void bench_report(FILE *jf, const char *bench,
				const struct bench_impl *impls, int nimpl,
				int peer, size_t size, const double *ns)
{
	char sz[32];

	printf("%8s", bench_size_str(size, sz, sizeof(sz)));
	for (int i = 0; i < nimpl; i++)
		printf(" | %8.1f %6.2f %5.2fx", ns[i], (double)size / ns[i],
		       ns[peer] / ns[i]);
	printf("\n");
	fflush(stdout);
	for (int i = 0; i < nimpl; i++)
		bench_jsonl(jf, bench, impls[i].name, size, ns[i], ns[peer]);
}

static inline void bench_header(const char *bench,
				const struct bench_impl *impls, int nimpl,
				int peer)
{
	long reps = bench_env_long("BENCH_REPS", 15, 1, BENCH_MAX_REPS);

	printf("%s: median of %ld interleaved rounds; per impl: ns/call, GB/s, "
	       "speed vs %s (>1 = faster)\n", bench, reps, impls[peer].name);
	printf("%8s", "size");
	for (int i = 0; i < nimpl; i++)
		printf(" | %-22s", impls[i].name);
	printf("\n");
}
