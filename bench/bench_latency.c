// SPDX-License-Identifier: MIT
/*
 * bench_latency: one-way latency of a uhp record between two cores, with
 * the consumer spinning, next to the floor for any shared-memory channel
 * between the same two cores: a cache line bounced between them.
 *
 *   bench_latency [--percentiles 50,90,99,99.9] [--duration S] [--size B]
 *                 [--cpus P,C] [--dev]
 *
 * Both are measured the same way, one way, P -> C: the producer (pinned
 * to P) stamps the TSC and sends; the consumer (pinned to C) spins without
 * pausing until the message arrives and takes the difference; the
 * producer waits (with pause) until that sample is taken before the next,
 * so every sample is an idle-to-arrival latency.
 *   uhp        the message is a record through an arena (or, with --dev,
 *              a /dev/uhp channel: uhp.ko, the guest), both ends in ring 0,
 *              CRC checked; the consumer spins on uhp_recv().
 *   ping-pong  the message is the stamp itself, stored into one cache line;
 *              the acknowledgement goes back through another: the floor for
 *              any shared-memory channel between the same two cores.
 * The two alternate in ROUNDS slices of the run (the machine's speed
 * changes from one minute to the next), so their samples come from the
 * same speed regimes. Times come from the TSC (constant_tsc, calibrated
 * against CLOCK_MONOTONIC_RAW by bench_tsc_ns_per_tick()). Prints a table
 * with the ratio uhp / ping-pong per percentile and JSON lines into
 * $BENCH_OUT/latency.jsonl (default ../build/bench, see bench_common.h).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>

#include "uhp.h"

#include "bench_common.h"

#define MAX_SAMPLES	(1 << 21)
#define MAX_PCT		8
/* Sampling goes on past --duration (up to 10x) until there are this many:
 * on an overloaded host (or under TCG) each sample can take milliseconds. */
#define MIN_SAMPLES	1000

static int cpu_p, cpu_c = 1;
static double duration = 2.0;
static unsigned size = 64;
static double pcts[MAX_PCT] = { 50, 90, 99, 99.9 };
static int npct = 4;
static double ns_per_tick;
static int use_dev;

static void pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

/* Slices of the run, alternating uhp and ping-pong. */
#define ROUNDS		10

static int more_samples(size_t n, size_t cap, double t0, double slice)
{
	double el = bench_now_s() - t0;

	return n < cap &&
	       (el < slice || (n < MIN_SAMPLES / ROUNDS && el < 10 * slice));
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static double pct_ns(uint64_t *s, size_t n, double p)
{
	size_t i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);

	return (double)s[i < n ? i : n - 1] * ns_per_tick;
}

/* Samples taken by the consumer; the producer waits for each (ack). */
static atomic_uint_fast64_t consumed;
static atomic_int stop;

/*
 * The consumer's clock read: lfence first, or the CPU may read the TSC
 * before the load that saw the message has completed (rdtsc is not
 * ordered after earlier loads), which made some samples negative.
 */
static inline uint64_t tsc_after_loads(void)
{
	_mm_lfence();
	return __rdtsc();
}

static void producer_wait(uint64_t seq)
{
	while (atomic_load_explicit(&consumed, memory_order_acquire) < seq &&
	       !atomic_load_explicit(&stop, memory_order_relaxed))
		_mm_pause();
}

/* ---- uhp ---- */

static struct uhp_channel *cons_ch, *prod_ch;
static char ch_name[UHP_NAME_MAX];
static int dev = -1;

static void *uhp_producer(void *arg)
{
	static uint8_t msg[65536];
	uint64_t seq = 0;

	(void)arg;
	pin(cpu_p);
	while (!atomic_load(&stop)) {
		uint64_t t = __rdtsc();

		memcpy(msg, &t, sizeof(t));
		while (uhp_send(prod_ch, msg, size, &(struct uhp_meta){ .seq = seq }) == -EAGAIN)
			;
		producer_wait(++seq);
	}
	return NULL;
}

static void open_uhp_channel(void)
{
	struct uhp_create_opts o = UHP_CREATE_OPTS_INIT;
	int ret;

	snprintf(ch_name, sizeof(ch_name), "latency.%d", getpid());
	o.ring_size = 1 << 16;
	o.consumer = true;
	if (use_dev) {
		dev = uhp_open();
		ret = dev < 0 ? dev : uhp_create(dev, ch_name, &o, &cons_ch);
		if (!ret && (ret = uhp_attach(dev, ch_name, 0, &prod_ch)) < 0) {
			uhp_close(cons_ch);
			uhp_unlink(dev, ch_name);
		}
	} else {
		ret = uhp_arena_create(ch_name, &o, &cons_ch);
		if (!ret && (ret = uhp_arena_attach(ch_name, 0, &prod_ch)) < 0) {
			uhp_close(cons_ch);
			uhp_arena_unlink(ch_name);
		}
	}
	if (ret < 0) {
		fprintf(stderr, "bench_latency: %s channel: %s\n",
			use_dev ? "/dev/uhp" : "arena", strerror(-ret));
		exit(2);
	}
	/* Both ends in one ring, whatever node the attach saw. */
	uhp_set_producer_ring(prod_ch, 0);
}

static void uhp_close_channel(void)
{
	uhp_close(prod_ch);
	uhp_close(cons_ch);
	if (use_dev) {
		uhp_unlink(dev, ch_name);
		close(dev);
	} else {
		uhp_arena_unlink(ch_name);
	}
}

static size_t run_uhp(uint64_t *samples, size_t cap, double slice)
{
	static uint8_t buf[65536];
	pthread_t th;
	size_t n = 0;
	double t0;

	atomic_store(&stop, 0);
	atomic_store(&consumed, 0);
	pin(cpu_c);
	pthread_create(&th, NULL, uhp_producer, NULL);
	t0 = bench_now_s();
	while (more_samples(n, cap, t0, slice)) {
		for (int spin = 0; spin < 4096; spin++) {
			ssize_t len = uhp_recv(cons_ch, buf, sizeof(buf), NULL);

			if (len >= (ssize_t)sizeof(uint64_t)) {
				uint64_t t;

				memcpy(&t, buf, sizeof(t));
				samples[n++] = tsc_after_loads() - t;
				atomic_fetch_add_explicit(&consumed, 1, memory_order_release);
				break;
			}
		}
	}
	atomic_store(&stop, 1);
	pthread_join(th, NULL);
	/* a record sent after the last sample: not a sample, drain it */
	while (uhp_recv(cons_ch, buf, sizeof(buf), NULL) >= 0)
		;
	return n;
}

/* ---- cache-line ping-pong ---- */

static _Alignas(64) atomic_uint_fast64_t line;

static void *pp_producer(void *arg)
{
	uint64_t seq = 0;

	(void)arg;
	pin(cpu_p);
	while (!atomic_load(&stop)) {
		/* the stamp is the message (never 0: the TSC runs) */
		atomic_store_explicit(&line, __rdtsc(), memory_order_release);
		producer_wait(++seq);
	}
	return NULL;
}

static size_t run_pingpong(uint64_t *samples, size_t cap, double slice)
{
	uint64_t last = 0;
	pthread_t th;
	size_t n = 0;
	double t0;

	atomic_store(&stop, 0);
	atomic_store(&consumed, 0);
	atomic_store(&line, 0);
	pin(cpu_c);
	pthread_create(&th, NULL, pp_producer, NULL);
	t0 = bench_now_s();
	while (more_samples(n, cap, t0, slice)) {
		for (int spin = 0; spin < 4096; spin++) {
			uint64_t t = atomic_load_explicit(&line, memory_order_acquire);

			if (t != last) {
				samples[n++] = tsc_after_loads() - t;
				last = t;
				atomic_fetch_add_explicit(&consumed, 1, memory_order_release);
				break;
			}
		}
	}
	atomic_store(&stop, 1);
	pthread_join(th, NULL);
	return n;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "percentiles", required_argument, NULL, 'p' },
		{ "duration", required_argument, NULL, 'd' },
		{ "size", required_argument, NULL, 's' },
		{ "cpus", required_argument, NULL, 'c' },
		{ "dev", no_argument, NULL, 'k' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t *su = malloc(MAX_SAMPLES * sizeof(uint64_t));
	uint64_t *sp = malloc(MAX_SAMPLES * sizeof(uint64_t));
	size_t nu, np;
	FILE *js;
	int opt;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'p': {
			char *s = optarg, *tok;

			npct = 0;
			while ((tok = strsep(&s, ",")) && npct < MAX_PCT)
				pcts[npct++] = atof(tok);
			break;
		}
		case 'd': duration = atof(optarg); break;
		case 's': size = (unsigned)bench_arg_size("--size", optarg, 8, 65536); break;
		case 'c': sscanf(optarg, "%d,%d", &cpu_p, &cpu_c); break;
		case 'k': use_dev = 1; break;
		default:
			fprintf(stderr, "usage: %s [--percentiles 50,90,99,99.9] [--duration S] [--size B] [--cpus P,C] [--dev]\n",
				argv[0]);
			return 2;
		}
	}
	if (!su || !sp || size < 8 || size > 65536 || npct == 0) {
		fprintf(stderr, "bench_latency: need 8 <= size <= 65536 and percentiles\n");
		return 2;
	}
	ns_per_tick = bench_tsc_ns_per_tick();
	open_uhp_channel();
	nu = np = 0;
	for (int r = 0; r < ROUNDS; r++) {
		double slice = duration / ROUNDS / 2;
		size_t cap = MAX_SAMPLES / ROUNDS;

		/* alternate which goes first */
		if (r & 1) {
			nu += run_uhp(su + nu, cap, slice);
			np += run_pingpong(sp + np, cap, slice);
		} else {
			np += run_pingpong(sp + np, cap, slice);
			nu += run_uhp(su + nu, cap, slice);
		}
	}
	uhp_close_channel();
	if (nu < 100 || np < 100) {
		fprintf(stderr, "bench_latency: too few samples (%zu, %zu)\n", nu, np);
		return 1;
	}
	qsort(su, nu, sizeof(*su), cmp_u64);
	qsort(sp, np, sizeof(*sp), cmp_u64);

	js = bench_open_jsonl("latency");
	printf("latency: one way, CPU %d -> CPU %d, %u-byte records, uhp %s, %zu uhp / %zu ping-pong samples, %d interleaved slices each, measured alike\n",
	       cpu_p, cpu_c, size, use_dev ? "/dev/uhp channel" : "arena", nu, np, ROUNDS);
	printf("  percentile |   uhp ns | ping-pong ns | uhp / ping-pong\n");
	for (int i = 0; i < npct; i++) {
		double u = pct_ns(su, nu, pcts[i]), p = pct_ns(sp, np, pcts[i]);

		printf("  p%-9g | %8.0f | %12.0f | %6.2fx\n", pcts[i], u, p, u / p);
		if (js)
			fprintf(js, "{\"bench\":\"latency\",\"impl\":\"uhp\",\"channel\":\"%s\",\"size\":%u,\"percentile\":\"p%g\",\"ns\":%.1f,\"pingpong_ns\":%.1f,\"ratio_vs_pingpong\":%.3f}\n",
				use_dev ? "dev" : "arena", size, pcts[i], u, p, u / p);
	}
	if (js)
		fclose(js);
	return 0;
}
