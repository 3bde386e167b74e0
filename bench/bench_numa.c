// SPDX-License-Identifier: MIT
/*
 * bench_numa: a producer on CPU P sending to a consumer on CPU C through a
 * ring whose pages sit on the producer's node ("local") or on another node
 * ("remote"), throughput and one-way latency, with the placement checked.
 *
 *   bench_numa [--dev] [--messages N] [--sizes 64,1024] [--rounds R]
 *              [--duration S] [--cpus P,C] [--ring BYTES]
 *
 * One channel with a ring per NUMA node (a /dev/uhp channel with --dev, an
 * arena otherwise); the producer's handle is pointed at the ring of each
 * node in turn with uhp_set_producer_ring(). Before measuring, and again
 * after, every data page of every ring is located with move_pages(2) (and
 * the first with get_mempolicy(MPOL_F_NODE | MPOL_F_ADDR)): the producer
 * reserves records until the ring is full, collects the pages under their
 * payloads and discards them. Channels with a single ring placed by
 * uhp_create_opts.node are checked the same way for every node. Any page
 * off its intended node fails the run (exit 1).
 *
 * Throughput: N messages of S bytes (sequence and tag checked by the
 * consumer, CRC32C by libuhp), timed from the release to the last one;
 * latency: one record in flight, TSC stamped, the consumer spinning, as in
 * bench_latency. Placements are interleaved over R rounds; the figures are
 * medians (throughput) and percentiles over all samples (latency).
 *
 * What it shows depends on the machine: under QEMU TCG (the test guest)
 * memory has no NUMA latency at all, so local and remote come out alike
 * and the run demonstrates placement, not a hardware penalty. With one node
 * (the 2-vCPU host) only the local placement exists and is reported.
 * Note that with one CPU per node the consumer's side is remote whenever
 * the producer's is local, and the other way round.
 *
 * Human table on stdout, JSON lines into $BENCH_OUT/numa.jsonl.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>

#include "uhp.h"

#include "bench_common.h"

#define MAX_NODES	8
#define MAX_SIZES	8
#define MAX_ROUNDS	51
#define MAX_MESSAGES	1000000000000LL	/* --messages */
#define MAX_RING_SIZE	(1ULL << 40)	/* --ring: libuhp's limit */
#define LAT_MAX		(1 << 20)	/* latency samples per placement and size */
#define PAGE		4096UL

#ifndef MPOL_F_NODE
#define MPOL_F_NODE	(1 << 0)
#define MPOL_F_ADDR	(1 << 1)
#endif

static int use_dev, dev = -1;
static int cpu_p, cpu_c = 1;
static long n_msgs = 1000000;
static int rounds = 5;
static double duration = 1.0;
static uint64_t ring_size = 1 << 20;
static size_t sizes[MAX_SIZES] = { 64, 1024 };
static int nsizes = 2;
static double ns_per_tick;

static struct uhp_channel *cons_ch, *prod_ch;

static void die(const char *what, int err)
{
	fprintf(stderr, "bench_numa: %s: %s\n", what, strerror(err));
	exit(2);
}

static void pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		die("sched_setaffinity", errno);
}

/* The node of a CPU, from pinning there and asking. */
static int node_of_cpu(int cpu)
{
	unsigned c, node;

	pin(cpu);
	if (getcpu(&c, &node))
		die("getcpu", errno);
	return (int)node;
}

/* ---- channels ---- */

static int ch_create(const char *name, int node, bool consumer,
		     struct uhp_channel **out)
{
	struct uhp_create_opts o = UHP_CREATE_OPTS_INIT;

	o.ring_size = ring_size;
	o.node = node;
	o.consumer = consumer;
	if (use_dev)
		return uhp_create(dev, name, &o, out);
	uhp_arena_unlink(name);
	return uhp_arena_create(name, &o, out);
}

static int ch_attach(const char *name, struct uhp_channel **out)
{
	return use_dev ? uhp_attach(dev, name, 0, out) :
			 uhp_arena_attach(name, 0, out);
}

static void ch_unlink(const char *name)
{
	if (use_dev)
		uhp_unlink(dev, name);
	else
		uhp_arena_unlink(name);
}

/* ---- placement check ---- */

static int cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;

	return (x > y) - (x < y);
}

/*
 * Where the pages of ring 'ring' are: reserve records through prod until the
 * ring is full, note the pages under the payloads, discard them all and let
 * cons skip them. Returns the number of pages on 'want' and stores the count
 * checked in *checked; prints what is elsewhere.
 */
static long check_ring_pages(struct uhp_channel *cons, struct uhp_channel *prod,
			     unsigned ring, int want, long *checked,
			     const char *label)
{
	const uint32_t len = 2000;
	size_t cap = (size_t)(ring_size / len + 8) * 2 + 8, n = 0, nt = 0;
	struct uhp_txn *txn = calloc(cap, sizeof(*txn));
	uintptr_t *pages = calloc(cap * 2, sizeof(*pages));
	void **addrs;
	int *status, mode = -1, pol_node = -1;
	long good = 0, bad_pages = 0;
	unsigned char buf[4096];

	if (!txn || !pages)
		die("calloc", ENOMEM);
	if (uhp_set_producer_ring(prod, ring))
		die("uhp_set_producer_ring", EINVAL);
	while (nt < cap) {
		int ret = uhp_reserve(prod, len, &txn[nt]);

		if (ret == -EAGAIN)
			break;
		if (ret < 0)
			die("uhp_reserve", -ret);
		memset(txn[nt].payload, 0x5a, len);	/* touched, like real use */
		for (uintptr_t a = (uintptr_t)txn[nt].payload & ~(PAGE - 1);
		     a < (uintptr_t)txn[nt].payload + len; a += PAGE)
			pages[n++] = a;
		nt++;
	}
	for (size_t i = 0; i < nt; i++)
		uhp_discard(prod, &txn[i]);
	for (;;) {	/* the consumer skips the discarded records */
		ssize_t r = uhp_recv(cons, buf, sizeof(buf), NULL);

		if (r == -EAGAIN)
			break;
		if (r >= 0 || r == -EBADMSG)
			continue;
		die("uhp_recv (draining discards)", (int)-r);
	}
	qsort(pages, n, sizeof(*pages), cmp_ptr);
	{
		size_t u = 0;

		for (size_t i = 0; i < n; i++)
			if (!u || pages[u - 1] != pages[i])
				pages[u++] = pages[i];
		n = u;
	}
	addrs = calloc(n, sizeof(*addrs));
	status = calloc(n, sizeof(*status));
	if (!addrs || !status)
		die("calloc", ENOMEM);
	for (size_t i = 0; i < n; i++)
		addrs[i] = (void *)pages[i];
	if (syscall(SYS_move_pages, 0, (unsigned long)n, addrs, NULL, status, 0))
		die("move_pages", errno);
	for (size_t i = 0; i < n; i++) {
		if (status[i] == want) {
			good++;
			continue;
		}
		if (bad_pages++ < 4)
			printf("# %s: page %p is %s %d, not on node %d\n", label,
			       addrs[i], status[i] < 0 ? "not placed, error" : "on node",
			       status[i] < 0 ? -status[i] : status[i], want);
	}
	if (n && syscall(SYS_get_mempolicy, &mode, NULL, 0UL, addrs[0],
			 MPOL_F_NODE | MPOL_F_ADDR) == 0)
		pol_node = mode;
	else if (n)
		printf("# %s: get_mempolicy(MPOL_F_NODE|MPOL_F_ADDR): %s\n", label,
		       strerror(errno));
	if (n && pol_node != want) {
		printf("# %s: get_mempolicy says node %d for %p, not %d\n", label,
		       pol_node, addrs[0], want);
		good = 0;
	}
	*checked = (long)n;
	free(addrs);
	free(status);
	free(pages);
	free(txn);
	return good;
}

/* ---- message contents ---- */

static inline uint64_t tag_of(uint64_t seq)
{
	return seq * 0x9e3779b97f4a7c15ULL ^ 0x5bd1e995c0ffee11ULL;
}

/* ---- throughput ---- */

static atomic_int go, stop;
static atomic_uint_fast64_t consumed;
static size_t cur_size;
static long cur_n;

static void *tp_producer(void *arg)
{
	unsigned char *buf = calloc(1, cur_size);

	(void)arg;
	pin(cpu_p);
	while (!atomic_load(&go))
		_mm_pause();
	for (long i = 0; i < cur_n; i++) {
		uint64_t seq = (uint64_t)i, tag = tag_of(seq);
		unsigned spins = 0;
		int ret;

		memcpy(buf, &seq, 8);
		memcpy(buf + cur_size - 8, &tag, 8);
		while ((ret = uhp_send(prod_ch, buf, (uint32_t)cur_size, NULL)) == -EAGAIN)
			if (++spins > 64)
				sched_yield();
			else
				_mm_pause();
		if (ret < 0)
			die("uhp_send", -ret);
	}
	free(buf);
	return NULL;
}

/* msgs/s; exits on a lost, damaged or reordered message. */
static double tp_trial(size_t size, long n)
{
	unsigned char *buf = calloc(1, size);
	uint64_t expect = 0;
	pthread_t th;
	double t0, t1;

	cur_size = size;
	cur_n = n;
	atomic_store(&go, 0);
	pthread_create(&th, NULL, tp_producer, NULL);
	usleep(1000);
	t0 = bench_now_s();
	atomic_store(&go, 1);
	while (expect < (uint64_t)n) {
		ssize_t r = uhp_recv(cons_ch, buf, size, NULL);
		uint64_t seq, tag;

		if (r == -EAGAIN) {
			uhp_wait(cons_ch, 1000);
			continue;
		}
		if (r < 0) {
			fprintf(stderr, "bench_numa: uhp_recv: %s after %llu messages\n",
				strerror((int)-r), (unsigned long long)expect);
			exit(1);
		}
		memcpy(&seq, buf, 8);
		memcpy(&tag, buf + size - 8, 8);
		if ((size_t)r != size || seq != expect || tag != tag_of(seq)) {
			fprintf(stderr, "bench_numa: message %llu damaged or out of "
				"order (len %zd, seq %llu)\n",
				(unsigned long long)expect, r, (unsigned long long)seq);
			exit(1);
		}
		expect++;
	}
	t1 = bench_now_s();
	pthread_join(th, NULL);
	free(buf);
	return (double)n / (t1 - t0);
}

/* ---- latency ---- */

static void *lat_producer(void *arg)
{
	static unsigned char msg[4096];
	uint64_t seq = 0;

	(void)arg;
	pin(cpu_p);
	while (!atomic_load(&stop)) {
		uint64_t t = __rdtsc();

		memcpy(msg, &t, 8);
		while (uhp_send(prod_ch, msg, (uint32_t)cur_size, NULL) == -EAGAIN)
			_mm_pause();
		seq++;
		while (atomic_load_explicit(&consumed, memory_order_acquire) < seq &&
		       !atomic_load(&stop))
			_mm_pause();
	}
	return NULL;
}

/*
 * Append samples (TSC ticks) to s[*n..]; spins on uhp_recv for secs, or up
 * to 10x longer until it has min_n more samples (an overloaded host, TCG).
 */
static void lat_run(size_t size, double secs, size_t min_n, uint64_t *s,
		    size_t *n)
{
	static unsigned char buf[4096];
	size_t n0 = *n;
	pthread_t th;
	double t0, el;

	cur_size = size;
	atomic_store(&stop, 0);
	atomic_store(&consumed, 0);
	pthread_create(&th, NULL, lat_producer, NULL);
	t0 = bench_now_s();
	while (*n < LAT_MAX && ((el = bench_now_s() - t0) < secs ||
				(*n - n0 < min_n && el < 10 * secs))) {
		for (int spin = 0; spin < 4096; spin++) {
			ssize_t len = uhp_recv(cons_ch, buf, sizeof(buf), NULL);

			if (len >= 8) {
				uint64_t t;

				memcpy(&t, buf, 8);
				s[(*n)++] = __rdtsc() - t;
				atomic_fetch_add_explicit(&consumed, 1,
							  memory_order_release);
				break;
			}
			if (len != -EAGAIN) {
				fprintf(stderr, "bench_numa: uhp_recv: %s\n",
					strerror((int)-len));
				exit(1);
			}
		}
	}
	atomic_store(&stop, 1);
	pthread_join(th, NULL);
	for (;;) {	/* the one a stopping producer may have left */
		ssize_t len = uhp_recv(cons_ch, buf, sizeof(buf), NULL);

		if (len == -EAGAIN)
			break;
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double pct_ns(const uint64_t *s, size_t n, double p)
{
	size_t i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);

	return (double)s[i < n ? i : n - 1] * ns_per_tick;
}

/* ---- main ---- */

struct placement {
	unsigned ring;
	int node;
	const char *what;	/* "local" / "remote" */
};

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dev", no_argument, NULL, 'k' },
		{ "messages", required_argument, NULL, 'n' },
		{ "sizes", required_argument, NULL, 's' },
		{ "rounds", required_argument, NULL, 'r' },
		{ "duration", required_argument, NULL, 'd' },
		{ "cpus", required_argument, NULL, 'c' },
		{ "ring", required_argument, NULL, 'R' },
		{ NULL, 0, NULL, 0 },
	};
	static struct uhp_ring_info ri[MAX_NODES];
	struct placement pl[MAX_NODES];
	static double mps[MAX_SIZES][MAX_NODES][MAX_ROUNDS];
	uint64_t *lat[MAX_NODES];
	size_t nlat[MAX_NODES];
	struct uhp_info info;
	char name[UHP_NAME_MAX];
	int opt, ret, np = 0, node_p, node_c, failed = 0, local_i = -1;
	FILE *js;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'k': use_dev = 1; break;
		case 'n':
			n_msgs = (long)bench_arg_count("--messages", optarg, 1,
						       MAX_MESSAGES);
			break;
		case 'r':
			rounds = (int)bench_arg_count("--rounds", optarg, 1,
						      MAX_ROUNDS);
			break;
		case 'd': duration = atof(optarg); break;
		case 'c':
			if (sscanf(optarg, "%d,%d", &cpu_p, &cpu_c) != 2)
				goto usage;
			break;
		case 'R':
			ring_size = bench_arg_size("--ring", optarg, 65536,
						   MAX_RING_SIZE);
			break;
		case 's': {
			char *s = optarg, *tok;

			nsizes = 0;
			while ((tok = strsep(&s, ","))) {
				if (nsizes == MAX_SIZES) {
					fprintf(stderr, "bench_numa: --sizes: at "
						"most %d sizes\n", MAX_SIZES);
					return 2;
				}
				sizes[nsizes++] = (size_t)bench_arg_size("--sizes",
								tok, 16, 4096);
			}
			break;
		}
		default:
			goto usage;
		}
	}
	for (int i = 0; i < nsizes; i++)
		if (sizes[i] < 16 || sizes[i] > 4096)
			goto usage;
	if (n_msgs < 1 || rounds < 1 || rounds > MAX_ROUNDS || duration <= 0 ||
	    nsizes < 1 || ring_size < 65536)
		goto usage;

	node_c = node_of_cpu(cpu_c);
	node_p = node_of_cpu(cpu_p);
	ns_per_tick = bench_tsc_ns_per_tick();
	if (use_dev) {
		dev = uhp_open();
		if (dev < 0)
			die("/dev/uhp (is uhp.ko loaded?)", -dev);
	}
	snprintf(name, sizeof(name), "numa.%d", (int)getpid());
	ret = ch_create(name, -1, true, &cons_ch);
	if (ret < 0)
		die("create", -ret);
	ret = ch_attach(name, &prod_ch);
	if (ret < 0)
		die("attach", -ret);
	ret = uhp_info(cons_ch, &info, ri, MAX_NODES);
	if (ret < 0)
		die("uhp_info", -ret);

	printf("bench_numa: %s, %u ring(s) of %llu KiB; producer CPU %d (node %d), "
	       "consumer CPU %d (node %d)\n",
	       use_dev ? "/dev/uhp channel" : "arena", info.nr_rings,
	       (unsigned long long)ring_size >> 10, cpu_p, node_p, cpu_c, node_c);

	/* placements: the producer's node first, then the others */
	for (unsigned r = 0; r < info.nr_rings && r < MAX_NODES; r++)
		if (ri[r].node == node_p)
			pl[np++] = (struct placement){ r, ri[r].node, "local" };
	for (unsigned r = 0; r < info.nr_rings && r < MAX_NODES; r++)
		if (ri[r].node != node_p)
			pl[np++] = (struct placement){ r, ri[r].node, "remote" };
	for (int i = 0; i < np; i++)
		if (!strcmp(pl[i].what, "local"))
			local_i = i;
	if (np < 2)
		printf("# only %d ring (one NUMA node with memory here): local "
		       "placement only, no remote node to compare with\n", np);

	/* placement check: the channel's rings, then single-ring channels */
	for (int i = 0; i < np; i++) {
		char label[64];
		long checked, good;

		snprintf(label, sizeof(label), "ring %u", pl[i].ring);
		good = check_ring_pages(cons_ch, prod_ch, pl[i].ring, pl[i].node,
					&checked, label);
		printf("# placement: ring %u (node %d, %s to the producer): "
		       "%ld/%ld data pages on node %d (move_pages, get_mempolicy)\n",
		       pl[i].ring, pl[i].node, pl[i].what, good, checked, pl[i].node);
		if (good != checked || !checked)
			failed = 1;
	}
	for (unsigned r = 0; r < info.nr_rings && r < MAX_NODES; r++) {
		struct uhp_channel *c1, *p1;
		struct uhp_ring_info r1;
		struct uhp_info i1;
		char n1[UHP_NAME_MAX], label[64];
		long checked = 0, good = 0;
		int node = ri[r].node;

		snprintf(n1, sizeof(n1), "numa.%d.node%d", (int)getpid(), node);
		ret = ch_create(n1, node, true, &c1);
		if (ret < 0) {
			printf("# placement: single ring with opts.node = %d: create "
			       "failed: %s\n", node, strerror(-ret));
			failed = 1;
			continue;
		}
		if ((ret = ch_attach(n1, &p1)) < 0)
			die("attach", -ret);
		if ((ret = uhp_info(c1, &i1, &r1, 1)) < 0)
			die("uhp_info", -ret);
		snprintf(label, sizeof(label), "opts.node=%d", node);
		if (i1.nr_rings == 1 && r1.node == node)
			good = check_ring_pages(c1, p1, 0, node, &checked, label);
		printf("# placement: single ring with opts.node = %d: %u ring(s), "
		       "node %d, %ld/%ld data pages on node %d\n", node, i1.nr_rings,
		       r1.node, good, checked, node);
		if (i1.nr_rings != 1 || r1.node != node || good != checked || !checked)
			failed = 1;
		uhp_close(p1);
		uhp_close(c1);
		ch_unlink(n1);
	}
	if (failed) {
		printf("bench_numa: FAIL: ring pages are not on their intended nodes\n");
		return 1;
	}

	/* throughput, placements interleaved per round */
	pin(cpu_c);
	for (int z = 0; z < nsizes; z++) {
		tp_trial(sizes[z], n_msgs / 10 + 1);	/* warm-up */
		for (int r = 0; r < rounds; r++)
			for (int j = 0; j < np; j++) {
				int i = (j + r) % np;

				if (uhp_set_producer_ring(prod_ch, pl[i].ring))
					die("uhp_set_producer_ring", EINVAL);
				mps[z][i][r] = tp_trial(sizes[z], n_msgs);
			}
	}

	js = bench_open_jsonl("numa");
	printf("numa: median msgs/s of %d rounds, %ld messages each; one-way latency "
	       "over %.1f s per placement and size (consumer spinning)\n",
	       rounds, n_msgs, duration);
	printf("%5s | %-22s | %12s %8s | %8s %8s %8s %8s\n", "size", "ring",
	       "msgs/s", "vs local", "p50 ns", "p99 ns", "p99.9 ns", "p50 vs l");
	for (int i = 0; i < np; i++) {
		lat[i] = malloc(LAT_MAX * sizeof(uint64_t));
		if (!lat[i])
			die("malloc", ENOMEM);
	}
	for (int z = 0; z < nsizes; z++) {
		double med[MAX_NODES], p50[MAX_NODES], p99[MAX_NODES], p999[MAX_NODES];

		for (int i = 0; i < np; i++)
			nlat[i] = 0;
		for (int r = 0; r < rounds; r++)
			for (int j = 0; j < np; j++) {
				int i = (j + r) % np;

				if (uhp_set_producer_ring(prod_ch, pl[i].ring))
					die("uhp_set_producer_ring", EINVAL);
				lat_run(sizes[z], duration / rounds,
					(size_t)(1000 / rounds + 1), lat[i], &nlat[i]);
			}
		for (int i = 0; i < np; i++) {
			qsort(mps[z][i], (size_t)rounds, sizeof(double), cmp_double);
			med[i] = rounds % 2 ? mps[z][i][rounds / 2] :
				 (mps[z][i][rounds / 2 - 1] + mps[z][i][rounds / 2]) / 2;
			if (nlat[i] < 100) {
				fprintf(stderr, "bench_numa: too few latency samples (%zu)\n",
					nlat[i]);
				return 1;
			}
			qsort(lat[i], nlat[i], sizeof(uint64_t), cmp_u64);
			p50[i] = pct_ns(lat[i], nlat[i], 50);
			p99[i] = pct_ns(lat[i], nlat[i], 99);
			p999[i] = pct_ns(lat[i], nlat[i], 99.9);
		}
		for (int i = 0; i < np; i++) {
			double tr = local_i >= 0 ? med[i] / med[local_i] : 0;
			double lr = local_i >= 0 ? p50[i] / p50[local_i] : 0;
			char where[40];

			snprintf(where, sizeof(where), "%u: node %d (%s)", pl[i].ring,
				 pl[i].node, pl[i].what);
			printf("%5zu | %-22s | %12.0f %7.2fx | %8.0f %8.0f %8.0f %7.2fx\n",
			       sizes[z], where, med[i], tr, p50[i], p99[i], p999[i], lr);
			if (js)
				fprintf(js, "{\"bench\":\"numa\",\"impl\":\"uhp\",\"channel\":\"%s\","
					"\"size\":%zu,\"placement\":\"%s\",\"ring_node\":%d,"
					"\"producer_node\":%d,\"consumer_node\":%d,"
					"\"msgs_per_s\":%.0f,\"p50_ns\":%.1f,\"p99_ns\":%.1f,"
					"\"p999_ns\":%.1f,\"tp_ratio_vs_local\":%.3f,"
					"\"p50_ratio_vs_local\":%.3f}\n",
					use_dev ? "dev" : "arena", sizes[z], pl[i].what,
					pl[i].node, node_p, node_c, med[i], p50[i], p99[i],
					p999[i], tr, lr);
		}
	}
	if (js)
		fclose(js);

	/* the pages stayed where they were put */
	for (int i = 0; i < np; i++) {
		long checked, good = check_ring_pages(cons_ch, prod_ch, pl[i].ring,
						      pl[i].node, &checked, "after");

		if (good != checked || !checked) {
			printf("bench_numa: FAIL: ring %u has %ld/%ld pages on node %d "
			       "after the run\n", pl[i].ring, good, checked, pl[i].node);
			failed = 1;
		}
	}
	if (np > 1)
		printf("# %s\n", use_dev && getenv("UHP_VM") ?
		       "QEMU TCG models no NUMA latency: local and remote should "
		       "match; this run shows placement (checked above), not a "
		       "hardware penalty" :
		       "ratios > 1 in 'p50 vs l' / < 1 in 'vs local' are the cost "
		       "of the remote node");
	uhp_close(prod_ch);
	uhp_close(cons_ch);
	ch_unlink(name);
	return failed;

usage:
	fprintf(stderr, "usage: bench_numa [--dev] [--messages N] [--sizes 64,1024] "
		"[--rounds R<=%d] [--duration S] [--cpus P,C] [--ring BYTES>=65536] "
		"(sizes 16..4096)\n", MAX_ROUNDS);
	return 2;
}
