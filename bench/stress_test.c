// SPDX-License-Identifier: MIT
/*
 * stress_test: many producers, one consumer, for a while, everything checked.
 *
 *   stress_test [--duration S] [--threads T] [--verify] [--dev] [--ring BYTES]
 *
 * T producer threads (each with its own handle, so each is its own FIFO)
 * send records of random size (0..2000 bytes) with a per-producer sequence
 * and a payload derived from (producer, sequence) through one channel: an
 * arena by default (no module needed), or a /dev/uhp channel with --dev.
 * Producers mix uhp_send, reserve/commit and small batches. The consumer
 * sleeps when the rings run dry. With --verify (the default) it checks
 * every record: CRC (libuhp), sequence per producer gap-free and in order,
 * payload bytes. At the end every producer's count must have arrived.
 * Prints a summary and one JSON line; exits 1 on any loss, CRC error,
 * disorder or damage, 2 on a usage or setup error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "uhp.h"

#include "bench_common.h"

#define MAX_THREADS	64
#define MAX_PAYLOAD	2000

static char name[UHP_NAME_MAX];
static int use_dev, dev = -1;
static atomic_int stop;
static uint64_t sent[MAX_THREADS];

static uint32_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return (uint32_t)*s;
}

static void fill(uint8_t *p, uint32_t len, uint32_t id, uint64_t seq)
{
	for (uint32_t i = 0; i < len; i++)
		p[i] = (uint8_t)(id * 29 + seq * 11 + i);
}

static int check(const uint8_t *p, uint32_t len, uint32_t id, uint64_t seq)
{
	for (uint32_t i = 0; i < len; i++)
		if (p[i] != (uint8_t)(id * 29 + seq * 11 + i))
			return -1;
	return 0;
}

static int open_producer(struct uhp_channel **ch)
{
	return use_dev ? uhp_attach(dev, name, 0, ch) : uhp_arena_attach(name, 0, ch);
}

static void *producer(void *arg)
{
	uint32_t id = (uint32_t)(uintptr_t)arg;
	uint64_t rng = 0x9E3779B97F4A7C15ULL * (id + 1), seq = 0;
	static __thread uint8_t buf[MAX_PAYLOAD];
	struct uhp_channel *ch;

	if (open_producer(&ch)) {
		fprintf(stderr, "stress_test: producer %u cannot attach\n", id);
		return (void *)1;
	}
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		uint32_t len = xorshift(&rng) % (MAX_PAYLOAD + 1);
		struct uhp_meta m = { .src = id, .seq = seq };
		int ret;

		switch (xorshift(&rng) % 3) {
		case 0:
			fill(buf, len, id, seq);
			ret = uhp_send(ch, buf, len, &m);
			break;
		case 1: {
			struct uhp_txn t;

			ret = uhp_reserve(ch, len, &t);
			if (!ret) {
				fill(t.payload, len, id, seq);
				ret = uhp_commit(ch, &t, &m);
			}
			break;
		}
		default: {
			/* a batch of two: this record and the next */
			static __thread uint8_t buf2[MAX_PAYLOAD];
			uint32_t len2 = len / 2;
			struct uhp_iov_msg msgs[2] = {
				{ .buf = buf, .len = len, .meta = m },
				{ .buf = buf2, .len = len2,
				  .meta = { .src = id, .seq = seq + 1 } },
			};

			fill(buf, len, id, seq);
			fill(buf2, len2, id, seq + 1);
			ret = uhp_send_batch(ch, msgs, 2);
			if (ret > 0) {
				seq += (uint64_t)ret;
				ret = 0;
				continue;
			}
			break;
		}
		}
		if (ret == 0)
			seq++;
		else if (ret != -EAGAIN) {
			fprintf(stderr, "stress_test: producer %u: %s\n", id, strerror(-ret));
			break;
		}
	}
	sent[id] = seq;
	uhp_close(ch);
	return NULL;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "duration", required_argument, NULL, 'd' },
		{ "threads", required_argument, NULL, 't' },
		{ "verify", no_argument, NULL, 'v' },
		{ "dev", no_argument, NULL, 'k' },
		{ "ring", required_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 },
	};
	struct uhp_create_opts o = UHP_CREATE_OPTS_INIT;
	uint64_t next[MAX_THREADS] = { 0 }, received = 0, bytes = 0, bad = 0, lost = 0;
	static uint8_t buf[MAX_PAYLOAD];
	pthread_t th[MAX_THREADS];
	double duration = 5, t0, t1;
	struct uhp_channel *ch;
	struct uhp_stats st;
	int threads = 2, opt, ret, failed = 0;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'd': duration = atof(optarg); break;
		case 't':
			threads = (int)bench_arg_count("--threads", optarg, 1,
						       MAX_THREADS);
			break;
		case 'v': break;	/* always on: a stress test that does not check proves nothing */
		case 'k': use_dev = 1; break;
		case 'r':	/* 0: the default */
			o.ring_size = bench_arg_size("--ring", optarg, 0,
						     1ULL << 40);
			break;
		default:
			fprintf(stderr, "usage: %s [--duration S] [--threads T] [--verify] [--dev] [--ring BYTES]\n",
				argv[0]);
			return 2;
		}
	}
	if (threads < 1 || threads > MAX_THREADS || duration <= 0) {
		fprintf(stderr, "stress_test: need 1..%d threads and a positive duration\n", MAX_THREADS);
		return 2;
	}
	snprintf(name, sizeof(name), "stress.%d", getpid());
	o.consumer = true;
	if (!o.ring_size)
		o.ring_size = 1 << 16;
	if (use_dev) {
		dev = uhp_open();
		ret = dev < 0 ? dev : uhp_create(dev, name, &o, &ch);
	} else {
		ret = uhp_arena_create(name, &o, &ch);
	}
	if (ret) {
		fprintf(stderr, "stress_test: cannot create %s (%s): %s\n", name,
			use_dev ? "/dev/uhp" : "arena", strerror(-ret));
		return 2;
	}

	t0 = now_s();
	for (int i = 0; i < threads; i++)
		pthread_create(&th[i], NULL, producer, (void *)(uintptr_t)i);
	for (;;) {
		struct uhp_meta m;
		ssize_t len;
		int done = now_s() - t0 >= duration;

		if (done && !atomic_load(&stop)) {
			atomic_store(&stop, 1);
			for (int i = 0; i < threads; i++)
				pthread_join(th[i], NULL);
		}
		len = uhp_recv_wait(ch, buf, sizeof(buf), &m, done ? 200 : 100);
		if (len == -ETIMEDOUT) {
			if (atomic_load(&stop))
				break;	/* producers joined and nothing left */
			continue;
		}
		if (len == -EBADMSG)
			continue;	/* counted in the handle's stats */
		if (len < 0) {
			fprintf(stderr, "stress_test: recv: %s\n", strerror((int)-len));
			failed = 1;
			break;
		}
		received++;
		bytes += (uint64_t)len;
		if (m.src >= (uint32_t)threads || m.seq != next[m.src] ||
		    check(buf, (uint32_t)len, m.src, m.seq))
			bad++;
		if (m.src < (uint32_t)threads)
			next[m.src] = m.seq + 1;
	}
	t1 = now_s();
	for (int i = 0; i < threads; i++)
		if (next[i] != sent[i])
			lost += sent[i] > next[i] ? sent[i] - next[i] : next[i] - sent[i];
	uhp_stats(ch, &st);
	uhp_close(ch);
	if (use_dev)
		uhp_unlink(dev, name);
	else
		uhp_arena_unlink(name);

	printf("stress_test: %d producers, %.1f s, %s: %" PRIu64 " records, %" PRIu64
	       " bytes, loss %" PRIu64 ", disordered/damaged %" PRIu64 ", CRC errors %" PRIu64
	       ", stalled skips %" PRIu64 "\n", threads, t1 - t0,
	       use_dev ? "/dev/uhp" : "arena", received, bytes, lost, bad,
	       st.crc_errors, st.stalled_skips);
	printf("{\"bench\":\"stress\",\"impl\":\"%s\",\"producers\":%d,\"records\":%" PRIu64
	       ",\"msgs_per_s\":%.0f,\"loss\":%" PRIu64 ",\"bad\":%" PRIu64 ",\"crc_errors\":%" PRIu64 "}\n",
	       use_dev ? "uhp_dev" : "uhp_arena", threads, received,
	       (double)received / (t1 - t0), lost, bad, st.crc_errors);
	if (failed || lost || bad || st.crc_errors || received == 0) {
		printf("stress_test: FAIL\n");
		return 1;
	}
	printf("stress_test: PASS\n");
	return 0;
}
