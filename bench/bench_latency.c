// SPDX-License-Identifier: MIT
/*
 * bench_latency: one-way latency of a uhp record between two cores, with
 * the consumer spinning, next to the floor for any shared-memory channel
 * between the same two cores: a cache line bounced between them.
 *
 *   bench_latency [--percentiles 50,90,99,99.9] [--duration S] [--size B]
 *                 [--cpus P,C] [--dev]
 *
 * uhp: the producer (pinned to P) stamps a record with the TSC and sends it
 * through an arena (or, with --dev, a /dev/uhp channel: uhp.ko, the guest),
 * both ends in ring 0; the consumer (pinned to C) spins on uhp_recv and takes
 * the difference when the record arrives (CRC checked). The producer waits
 * for each record to be consumed before the next, so every sample is an
 * idle-to-arrival latency. ping-pong: two threads on the same cores pass a
 * counter through one cache line; half the round trip is the one-way time.
 * Times come from the TSC (constant_tsc, calibrated against
 * CLOCK_MONOTONIC_RAW by bench_tsc_ns_per_tick()). Prints a table with the
 * ratio uhp / ping-pong per percentile and JSON lines into
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

static int more_samples(size_t n, double t0)
{
	double el = bench_now_s() - t0;

	return n < MAX_SAMPLES &&
	       (el < duration || (n < MIN_SAMPLES && el < 10 * duration));
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

/* ---- uhp ---- */

static struct uhp_channel *prod_ch;
static atomic_uint_fast64_t consumed;
static atomic_int stop;

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
		seq++;
		/* One record in flight: each sample starts from idle. */
		while (atomic_load_explicit(&consumed, memory_order_acquire) < seq &&
		       !atomic_load(&stop))
			_mm_pause();
	}
	return NULL;
}

static size_t run_uhp(uint64_t *samples)
{
	struct uhp_create_opts o = UHP_CREATE_OPTS_INIT;
	static uint8_t buf[65536];
	struct uhp_channel *ch;
	char name[UHP_NAME_MAX];
	pthread_t th;
	size_t n = 0;
	double t0;

	atomic_store(&stop, 0);
	atomic_store(&consumed, 0);
	snprintf(name, sizeof(name), "latency.%d", getpid());
	int dev = -1, ret;

	o.ring_size = 1 << 16;
	o.consumer = true;
	if (use_dev) {
		dev = uhp_open();
		ret = dev < 0 ? dev : uhp_create(dev, name, &o, &ch);
		if (!ret && (ret = uhp_attach(dev, name, 0, &prod_ch)) < 0) {
			uhp_close(ch);
			uhp_unlink(dev, name);
		}
	} else {
		ret = uhp_arena_create(name, &o, &ch);
		if (!ret && (ret = uhp_arena_attach(name, 0, &prod_ch)) < 0) {
			uhp_close(ch);
			uhp_arena_unlink(name);
		}
	}
	if (ret < 0) {
		fprintf(stderr, "bench_latency: %s channel: %s\n",
			use_dev ? "/dev/uhp" : "arena", strerror(-ret));
		exit(2);
	}
	/* Both ends in one ring, whatever node the attach saw. */
	uhp_set_producer_ring(prod_ch, 0);
	pin(cpu_c);
	pthread_create(&th, NULL, uhp_producer, NULL);
	t0 = bench_now_s();
	while (more_samples(n, t0)) {
		for (int spin = 0; spin < 4096; spin++) {
			ssize_t len = uhp_recv(ch, buf, sizeof(buf), NULL);

			if (len >= (ssize_t)sizeof(uint64_t)) {
				uint64_t t;

				memcpy(&t, buf, sizeof(t));
				samples[n++] = __rdtsc() - t;
				atomic_fetch_add_explicit(&consumed, 1, memory_order_release);
				break;
			}
		}
	}
	atomic_store(&stop, 1);
	pthread_join(th, NULL);
	uhp_close(prod_ch);
	uhp_close(ch);
	if (use_dev) {
		uhp_unlink(dev, name);
		close(dev);
	} else {
		uhp_arena_unlink(name);
	}
	return n;
}

/* ---- cache-line ping-pong ---- */

static _Alignas(64) atomic_uint_fast64_t line;

static void *ponger(void *arg)
{
	uint64_t want = 1;

	(void)arg;
	pin(cpu_p);
	while (!atomic_load(&stop)) {
		while (atomic_load_explicit(&line, memory_order_acquire) != want)
			if (atomic_load_explicit(&stop, memory_order_relaxed))
				return NULL;
		atomic_store_explicit(&line, want + 1, memory_order_release);
		want += 2;
	}
	return NULL;
}

static size_t run_pingpong(uint64_t *samples)
{
	pthread_t th;
	uint64_t v = 0;
	size_t n = 0;
	double t0;

	atomic_store(&stop, 0);
	atomic_store(&line, 0);
	pin(cpu_c);
	pthread_create(&th, NULL, ponger, NULL);
	t0 = bench_now_s();
	while (more_samples(n, t0)) {
		uint64_t t = __rdtsc();

		atomic_store_explicit(&line, ++v, memory_order_release);
		while (atomic_load_explicit(&line, memory_order_acquire) != v + 1)
			_mm_pause();
		v++;
		samples[n++] = (__rdtsc() - t) / 2;	/* one way */
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
	np = run_pingpong(sp);
	nu = run_uhp(su);
	if (nu < 100 || np < 100) {
		fprintf(stderr, "bench_latency: too few samples (%zu, %zu)\n", nu, np);
		return 1;
	}
	qsort(su, nu, sizeof(*su), cmp_u64);
	qsort(sp, np, sizeof(*sp), cmp_u64);

	js = bench_open_jsonl("latency");
	printf("latency: one way, CPU %d -> CPU %d, %u-byte records, uhp %s, %zu uhp / %zu ping-pong samples\n",
	       cpu_p, cpu_c, size, use_dev ? "/dev/uhp channel" : "arena", nu, np);
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
