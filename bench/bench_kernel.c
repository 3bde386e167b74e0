// SPDX-License-Identifier: MIT
/*
 * bench_kernel: kernel -> user throughput and wake-up latency, uhp against
 * the BPF ring buffer and a pipe, all in the same boot. A static program for
 * the test guest (make bench-guest, or scripts/uhp-vm --ko uhp.ko run
 * build/bench/guest/bench_kernel).
 *
 * Peers, each a producer on CPU 0 and the consumer (this program's main
 * thread) on CPU 1, rings of the same size (-R, default 1 MiB):
 *   uhp          samples/uhp_ticker.ko into a channel with kernel rings;
 *                "burst" N (a kworker; waits 50..200 us when the ring is
 *                full), the consumer uhp_peek_batch()es up to 64 records
 *                in place (libuhp checks every CRC32C), releases them at
 *                once and sleeps in uhp_wait().
 *   bpf_ringbuf  bpf/ringbuf_peer.bpf.c, a SEC("syscall") program run with
 *                BPF_PROG_TEST_RUN by a thread: bpf_loop() +
 *                bpf_ringbuf_output(); when the ring is full it returns and
 *                the thread sleeps 50 us and runs it again for the rest
 *                (nothing dropped). Consumer: ring_buffer__poll(), records
 *                read in place by the callback.
 *   pipe         a child process write()s one record per call into a pipe
 *                (F_SETPIPE_SZ = ring size); the consumer read()s 64 KiB at
 *                a time and walks the records.
 * Every producer builds a record the way the ticker does: { CLOCK_MONOTONIC
 * ns, seq } then bytes (u8)(seq + i) written one at a time, and every
 * consumer checks seq and all bytes of every record.
 *
 * With -P N (default 2; 1: off), throughput again with N producing CPUs at
 * once (CPUs 0..N-1, the consumer still on CPU 1), each sending its share:
 * uhp: the ticker's "pburst" (a work item bound to each CPU, each into its
 * node's kernel ring, src = TICKER_SRC + k); bpf_ringbuf: N threads, each
 * pinned and running the program, into the one ring (seq = k << 40 + i).
 * The consumer checks every producer's records in its order. No pipe peer
 * there (one writer per pipe is what the single-producer table shows).
 * Reading that table in a guest with two CPUs: the consumer shares CPU 1
 * with producer 1, so a run lasts about as long as CPU 1 needs for its
 * producer's half plus every record's consumer work (CPU 0 finishes first
 * and idles). The ratio is then one of per-record CPU cost on CPU 1, where
 * uhp checks a CRC32C (the table under TCG, ~2x the bench's own byte
 * check per record) that BPF's consumer does not; cons.cpu shows it. More
 * producing CPUs than the consumer's own are needed to show what one ring
 * per node buys against BPF's one locked ring.
 *
 * Throughput: the clock starts at the trigger (the sysfs write, the post
 * that wakes the BPF thread, the command to the pipe child) and stops at
 * the last record. Rounds rotate the order of the peers; the median is
 * reported. Latency: the consumer sleeps (the producer checks that its
 * state is 'S'), the producer sends one record stamped just before it
 * emits, the consumer takes now - stamp; 1..3 ms between records.
 *
 * QEMU TCG: absolute numbers mean little and differ from boot to boot;
 * only the ratios between peers measured in the same boot compare.
 *
 * Also per peer, to explain the throughput: the consumer's CPU time per
 * record (CLOCK_THREAD_CPUTIME_ID: spinning included, sleeping not), how
 * often it called into a possible sleep, and how often the producer found
 * the ring full.
 *
 * Output: a human table, and JSON lines prefixed with "UHP-BENCH-JSON: ".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "uhp.h"

#include "bench_common.h"	/* bench_arg_count(), bench_arg_size() */

#define TAG		"UHP-BENCH-JSON: "
#define TICKER_KO	"/lib/modules/uhp/uhp_ticker.ko"
#define PARAM		"/sys/module/uhp_ticker/parameters/"
#define TYPE_BURST	2
#define TYPE_FLOOD	3
#define TYPE_PBURST	5
#define MAX_PROD	4		/* the ticker's TICKER_MAX_PCPUS */
#define BPF_SEQ_SHIFT	40		/* bpf_ringbuf: producer k's seq base */
#define TICKER_SRC	0x7c
#define CHAN		"bench.k2u"
#define MAX_SIZE	4096		/* the ticker's limit */
#define MAX_SIZES	8
#define MAX_ROUNDS	31
#define PROD_CPU	0
#define CONS_CPU	1
#define WAIT_MS		20000		/* a stuck peer fails the run */
#define UHP_DRAIN_BATCH	64		/* uhp_peek_batch(), as BPF's consumer takes what is there */

/* The BPF object, embedded at build time (BPF_OBJ is its path). */
__asm__(".pushsection .rodata\n"
	".balign 8\n"
	".globl ringbuf_peer_obj\n"
	"ringbuf_peer_obj:\n"
	".incbin \"" BPF_OBJ "\"\n"
	".globl ringbuf_peer_obj_end\n"
	"ringbuf_peer_obj_end:\n"
	".popsection\n");
extern const char ringbuf_peer_obj[], ringbuf_peer_obj_end[];

/* What every record starts with (struct uhp_tick in the ticker). */
struct tick {
	uint64_t ktime_ns;
	uint64_t seq;
};

/* The context of the BPF program (struct args in ringbuf_peer.bpf.c). */
struct bpf_args {
	uint64_t n;
	uint64_t seq;
	uint32_t size;
	uint32_t pad;
	uint64_t done;
};

enum { P_UHP, P_BPF, P_PIPE, NPEERS };
static const char *const peer_name[NPEERS] = { "uhp", "bpf_ringbuf", "pipe" };

static struct {
	uint64_t ring;		/* bytes per ring, all peers */
	uint32_t sizes[MAX_SIZES];
	int nsizes;
	uint64_t n;		/* records per throughput run; 0: by size */
	int rounds;
	int samples;		/* latency samples per peer and size */
	int producers;		/* -P: producing CPUs of the second table */
	long spin;		/* -S: uhp_set_spin() checks; < 0: libuhp's */
} cfg = { .ring = 1 << 20, .sizes = { 64, 1024 }, .nsizes = 2, .rounds = 9,
	  .samples = 200, .producers = 2, .spin = -1 };	/* rounds: see usage() */

static int pin_ok = 1;
static uint64_t cons_waits;	/* consumer calls that may sleep: uhp_wait,
				 * ring_buffer__poll, read */
static uint64_t bad_total;	/* records that failed a check, all runs */

/* ---- helpers ---- */

static void die(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "bench_kernel: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	exit(1);
}

/* CLOCK_MONOTONIC: the clock of ktime_get_ns() and bpf_ktime_get_ns(). */
static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static pid_t tid(void)
{
	return (pid_t)syscall(SYS_gettid);
}

static void pin(int cpu)
{
	cpu_set_t set;

	if (!pin_ok)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		die("pin to CPU %d: %s", cpu, strerror(errno));
}

/* The scheduler state letter of thread t (R, S, D, ...), '?' if unknown. */
static char task_state(pid_t t)
{
	char path[64], buf[512], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)t);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return '?';
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return '?';
	buf[n] = 0;
	p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : '?';
}

/* Until thread t sleeps (in poll, epoll_wait, read); 1 s at most. */
static void wait_asleep(pid_t t)
{
	for (int i = 0; i < 20000 && task_state(t) != 'S'; i++)
		usleep(50);
}

/* Until *seen reaches v (the consumer took the previous record). */
static void wait_seen(const volatile uint64_t *seen, uint64_t v)
{
	uint64_t t0 = now_ns();

	while (__atomic_load_n(seen, __ATOMIC_ACQUIRE) < v) {
		if (now_ns() - t0 > (uint64_t)WAIT_MS * 1000000)
			die("latency: the consumer never got record %llu",
			    (unsigned long long)v - 1);
		usleep(20);
	}
}

/* 1..3 ms, varied, between latency samples. */
static void lat_gap(int i)
{
	usleep(1000 + (unsigned)(i * 7919) % 2000);
}

/*
 * The ticker's fill(): stamp, seq, then byte by byte. Not vectorised, like
 * the kernel's (no SIMD in kernel C), so all producers do the same work.
 */
__attribute__((noinline, optimize("no-tree-vectorize")))
static void fill(uint8_t *buf, uint32_t size, uint64_t seq)
{
	struct tick t = { .ktime_ns = now_ns(), .seq = seq };

	memcpy(buf, &t, sizeof(t));
	for (uint32_t i = sizeof(t); i < size; i++)
		buf[i] = (uint8_t)(seq + i);
}

/* Is p a whole record seq of size bytes? *stamp gets its stamp. */
static int check(const void *p, size_t len, uint32_t size, uint64_t seq,
		 uint64_t *stamp)
{
	const uint8_t *b = p;
	struct tick t;
	int bad = 0;

	if (len != size)
		return -1;
	memcpy(&t, b, sizeof(t));
	if (t.seq != seq || !t.ktime_ns)
		return -1;
	for (uint32_t i = sizeof(t); i < size; i++)
		bad |= b[i] ^ (uint8_t)(seq + i);
	*stamp = t.ktime_ns;
	return bad ? -1 : 0;
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

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Nearest rank percentile of a sorted array. */
static uint64_t pct(const uint64_t *v, int n, double p)
{
	int k = (int)((double)n * p + 0.999999) - 1;

	return v[k < 0 ? 0 : k >= n ? n - 1 : k];
}

/* ---- uhp: the sample kernel agent ---- */

static int param_write(const char *name, unsigned long v)
{
	char path[128], val[32];
	int fd, n;

	snprintf(path, sizeof(path), PARAM "%s", name);
	n = snprintf(val, sizeof(val), "%lu", v);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return -errno;
	n = write(fd, val, (size_t)n) == n ? 0 : -errno;
	close(fd);
	return n;
}

static long param_read(const char *name)
{
	char path[128], val[32] = "";
	int fd;

	snprintf(path, sizeof(path), PARAM "%s", name);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	if (read(fd, val, sizeof(val) - 1) < 0)
		val[0] = 0;
	close(fd);
	return atol(val);
}

static struct {
	int dev;
	struct uhp_channel *ch;
	uint32_t size;
	uint64_t seq[4];	/* next seq per ticker record type */
	uint64_t pseq[MAX_PROD];	/* TYPE_PBURST: next seq per producer */
	uint64_t lat_seen;	/* latency: records the consumer took */
	pid_t cons_tid;
	int lat_n;
} U;

static void uhp_setup(uint32_t size)
{
	struct uhp_create_opts o = UHP_CREATE_OPTS_INIT;
	char cmd[256];
	int ret;

	U.dev = uhp_open();
	if (U.dev < 0)
		die("uhp_open: %s (is uhp.ko loaded?)", strerror(-U.dev));
	o.ring_size = cfg.ring;
	o.consumer = true;
	o.kernel_rings = true;
	ret = uhp_create(U.dev, CHAN, &o, &U.ch);
	if (ret)
		die("uhp_create %s: %s", CHAN, strerror(-ret));
	if (cfg.spin >= 0)
		uhp_set_spin(U.ch, (unsigned)cfg.spin);
	snprintf(cmd, sizeof(cmd), "insmod " TICKER_KO " channel=" CHAN
		 " size=%u pburst_cpus=%d", size, cfg.producers);
	if (system(cmd))
		die("%s failed", cmd);
	U.size = size;
	memset(U.seq, 0, sizeof(U.seq));
	memset(U.pseq, 0, sizeof(U.pseq));
}

static void uhp_teardown(void)
{
	if (system("rmmod uhp_ticker"))
		die("rmmod uhp_ticker failed");
	uhp_close(U.ch);
	uhp_unlink(U.dev, CHAN);
	close(U.dev);
}

/* The next seq expected from the producer of m, or NULL: no such one. */
static uint64_t *uhp_expect(uint16_t type, const struct uhp_meta *m)
{
	if (m->type != type)
		return NULL;
	if (type == TYPE_PBURST)
		return m->src - TICKER_SRC < (uint32_t)cfg.producers ?
		       &U.pseq[m->src - TICKER_SRC] : NULL;
	return m->src == TICKER_SRC ? &U.seq[type] : NULL;
}

/*
 * Take n records of 'type' (in place, CRC checked by libuhp); for latency
 * (lat != NULL) one at a time, storing now - stamp. Each producer's in its
 * order (TYPE_PBURST: several). Returns bad records.
 */
static uint64_t uhp_drain(uint16_t type, uint64_t n, uint64_t *lat)
{
	uint64_t got = 0, bad = 0, stamp;
	struct uhp_rx rx[UHP_DRAIN_BATCH];

	while (got < n) {
		/* latency: one record at a time, stamped as it arrives */
		unsigned want_n = lat ? 1 : UHP_DRAIN_BATCH;
		int r = uhp_peek_batch(U.ch, rx, want_n);

		if (r > 0) {
			uint64_t t = lat ? now_ns() : 0;

			for (int i = 0; i < r; i++) {
				uint64_t *want = uhp_expect(type, &rx[i].meta);

				if (!want || !(rx[i].meta.flags & UHP_REC_F_KERNEL) ||
				    rx[i].meta.seq != *want ||
				    check(rx[i].payload, rx[i].len, U.size, *want, &stamp))
					bad++;
				else if (lat)
					lat[got] = t - stamp;
				if (want)
					(*want)++;
			}
			if (uhp_release_batch(U.ch, rx, (unsigned)r))
				die("uhp_release_batch: refused");
			got += (uint64_t)r;
			if (lat)
				__atomic_store_n(&U.lat_seen, U.lat_seen + 1,
						 __ATOMIC_RELEASE);
		} else if (r == -EAGAIN) {
			cons_waits++;
			r = uhp_wait(U.ch, WAIT_MS);
			if (r == -ETIMEDOUT)
				die("uhp: no record for %d ms after %llu of %llu", WAIT_MS,
				    (unsigned long long)got, (unsigned long long)n);
			if (r < 0)
				die("uhp_wait: %s", strerror(-r));
		} else if (r == -EBADMSG) {
			bad++;		/* consumed and counted by libuhp */
			if (type != TYPE_PBURST)	/* else: whose, unknown */
				U.seq[type]++;
			got++;
		} else {
			die("uhp_peek_batch: %s", strerror(-r));
		}
	}
	return bad;
}

/* n records from nprod producing CPUs (n / nprod each; nprod 1: "burst"). */
static double uhp_tput(uint64_t n, int nprod, uint64_t *waits, uint64_t *bad)
{
	long w0 = param_read("waits");
	uint64_t t0, t1;
	int ret;

	t0 = now_ns();
	ret = param_write(nprod > 1 ? "pburst" : "burst", n / (uint64_t)nprod);
	if (ret)
		die("burst: %s", strerror(-ret));
	*bad += uhp_drain(nprod > 1 ? TYPE_PBURST : TYPE_BURST, n, NULL);
	t1 = now_ns();
	*waits += (uint64_t)(param_read("waits") - w0);
	return (double)(t1 - t0);
}

static void *uhp_lat_producer(void *arg)
{
	(void)arg;
	pin(PROD_CPU);
	for (int i = 0; i < U.lat_n; i++) {
		wait_seen(&U.lat_seen, (uint64_t)i);
		lat_gap(i);
		wait_asleep(U.cons_tid);
		int ret = param_write("flood", 1);

		if (ret)
			die("flood: %s", strerror(-ret));
	}
	return NULL;
}

static uint64_t uhp_lat(uint64_t *lat, int n)
{
	pthread_t th;
	uint64_t bad;
	long d0 = param_read("dropped");

	U.lat_seen = 0;
	U.lat_n = n;
	U.cons_tid = tid();
	if (pthread_create(&th, NULL, uhp_lat_producer, NULL))
		die("pthread_create");
	bad = uhp_drain(TYPE_FLOOD, (uint64_t)n, lat);
	pthread_join(th, NULL);
	if (param_read("dropped") != d0)
		die("uhp: the ticker dropped a latency record");
	return bad;
}

/* ---- BPF ring buffer ---- */

enum { CMD_NONE, CMD_TPUT, CMD_LAT, CMD_QUIT };

/* One producer thread: it runs the program on its own CPU. */
struct bpf_prod {
	pthread_t th;
	sem_t go;
	int k;			/* CPU k; seq = k << BPF_SEQ_SHIFT + i */
	uint64_t seq;		/* next seq to send */
	uint64_t fulls;		/* runs that stopped at a full ring */
};

static struct {
	struct bpf_object *obj;
	int prog_fd;
	struct ring_buffer *rb;
	struct bpf_prod prod[MAX_PROD];	/* cfg.producers of them */
	/* the command for the producer threads */
	int cmd;
	uint64_t n;		/* records each */
	/* consumer state */
	uint32_t size;
	uint64_t expect[MAX_PROD];	/* next seq to receive per producer */
	uint64_t got, bad;
	uint64_t *lat;
	uint64_t lat_seen;
	pid_t cons_tid;
} B;

static int bpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

/* Send n records from bp->seq on, waiting while the ring is full. */
static void bpf_emit(struct bpf_prod *bp, uint64_t n)
{
	uint64_t sent = 0;

	while (sent < n) {
		struct bpf_args a = {
			.n = n - sent < (1u << 23) ? n - sent : (1u << 23), /* bpf_loop max */
			.seq = bp->seq, .size = B.size,
		};
		LIBBPF_OPTS(bpf_test_run_opts, o, .ctx_in = &a,
			    .ctx_size_in = sizeof(a));
		int err = bpf_prog_test_run_opts(B.prog_fd, &o);

		if (err)
			die("BPF_PROG_TEST_RUN: %s", strerror(-err));
		if (o.retval != a.done)
			die("BPF program: retval %u, done %llu", o.retval,
			    (unsigned long long)a.done);
		sent += a.done;
		bp->seq += a.done;
		if (sent < n) {
			__atomic_fetch_add(&bp->fulls, 1, __ATOMIC_RELAXED);
			usleep(50);	/* the ticker: usleep_range(50, 200) */
		}
	}
}

static void *bpf_producer(void *arg)
{
	struct bpf_prod *bp = arg;

	pin(bp->k ? bp->k : PROD_CPU);
	for (;;) {
		while (sem_wait(&bp->go) && errno == EINTR)
			;
		switch (B.cmd) {
		case CMD_TPUT:
			bpf_emit(bp, B.n);
			break;
		case CMD_LAT:
			for (uint64_t i = 0; i < B.n; i++) {
				wait_seen(&B.lat_seen, i);
				lat_gap((int)i);
				wait_asleep(B.cons_tid);
				bpf_emit(bp, 1);
			}
			break;
		case CMD_QUIT:
			return NULL;
		}
	}
}

static int bpf_on_record(void *ctx, void *data, size_t len)
{
	uint64_t t = B.lat ? now_ns() : 0, stamp, seq = 0, *want;

	(void)ctx;
	if (len >= sizeof(struct tick))
		memcpy(&seq, (const char *)data + offsetof(struct tick, seq), sizeof(seq));
	want = seq >> BPF_SEQ_SHIFT < (uint64_t)cfg.producers ?
	       &B.expect[seq >> BPF_SEQ_SHIFT] : NULL;
	if (!want || check(data, len, B.size, *want, &stamp))
		B.bad++;
	else if (B.lat)
		B.lat[B.got] = t - stamp;
	if (want)
		(*want)++;
	B.got++;
	if (B.lat)
		__atomic_store_n(&B.lat_seen, B.got, __ATOMIC_RELEASE);
	return 0;
}

static void bpf_setup(void)
{
	struct bpf_program *prog;
	struct bpf_map *map;
	int err;

	libbpf_set_print(bpf_print);
	B.obj = bpf_object__open_mem(ringbuf_peer_obj,
				     (size_t)(ringbuf_peer_obj_end - ringbuf_peer_obj),
				     NULL);
	if (!B.obj)
		die("bpf_object__open_mem: %s", strerror(errno));
	map = bpf_object__find_map_by_name(B.obj, "rb");
	prog = bpf_object__find_program_by_name(B.obj, "emit");
	if (!map || !prog)
		die("BPF object without map rb or program emit");
	err = bpf_map__set_max_entries(map, (uint32_t)cfg.ring);
	if (err)
		die("ringbuf size %llu: %s", (unsigned long long)cfg.ring,
		    strerror(-err));
	err = bpf_object__load(B.obj);
	if (err)
		die("loading the BPF program: %s", strerror(-err));
	B.prog_fd = bpf_program__fd(prog);
	B.rb = ring_buffer__new(bpf_map__fd(map), bpf_on_record, NULL, NULL);
	if (!B.rb)
		die("ring_buffer__new: %s", strerror(errno));
	for (int k = 0; k < cfg.producers; k++) {
		struct bpf_prod *bp = &B.prod[k];

		bp->k = k;
		bp->seq = (uint64_t)k << BPF_SEQ_SHIFT;
		sem_init(&bp->go, 0, 0);
		if (pthread_create(&bp->th, NULL, bpf_producer, bp))
			die("pthread_create");
	}
}

static void bpf_teardown(void)
{
	B.cmd = CMD_QUIT;
	for (int k = 0; k < cfg.producers; k++)
		sem_post(&B.prod[k].go);
	for (int k = 0; k < cfg.producers; k++)
		pthread_join(B.prod[k].th, NULL);
	ring_buffer__free(B.rb);
	bpf_object__close(B.obj);
}

static uint64_t bpf_fulls(void)
{
	uint64_t f = 0;

	for (int k = 0; k < cfg.producers; k++)
		f += __atomic_load_n(&B.prod[k].fulls, __ATOMIC_RELAXED);
	return f;
}

static uint64_t bpf_next_seq(void)
{
	return B.prod[0].seq;
}

/*
 * Consume until B.got reaches n. ring_buffer__poll() also returns 0 when
 * epoll woke it but the next record is still being written (busy bit), so
 * only the clock says that the producer is stuck.
 */
static void bpf_drain(uint64_t n)
{
	uint64_t last = B.got, t0 = now_ns();

	while (B.got < n) {
		int r;

		cons_waits++;
		r = ring_buffer__poll(B.rb, WAIT_MS);

		if (r < 0 && r != -EINTR)
			die("ring_buffer__poll: %s", strerror(-r));
		if (B.got != last) {
			last = B.got;
			t0 = now_ns();
		} else if (now_ns() - t0 > (uint64_t)WAIT_MS * 1000000) {
			die("bpf_ringbuf: no record for %d ms after %llu of %llu "
			    "(producer 0: next seq %llu; %llu times full)", WAIT_MS,
			    (unsigned long long)B.got, (unsigned long long)n,
			    (unsigned long long)bpf_next_seq(),
			    (unsigned long long)bpf_fulls());
		}
	}
}

/* n records from nprod producer threads, n / nprod each. */
static double bpf_tput(uint64_t n, int nprod, uint64_t *fulls, uint64_t *bad)
{
	uint64_t t0, t1, f0 = bpf_fulls();

	B.got = B.bad = 0;
	B.lat = NULL;
	B.cmd = CMD_TPUT;
	B.n = n / (uint64_t)nprod;
	t0 = now_ns();
	for (int k = 0; k < nprod; k++)
		sem_post(&B.prod[k].go);
	bpf_drain(B.n * (uint64_t)nprod);
	t1 = now_ns();
	*bad += B.bad;
	*fulls += bpf_fulls() - f0;	/* the producers are done */
	return (double)(t1 - t0);
}

static uint64_t bpf_lat(uint64_t *lat, int n)
{
	B.got = B.bad = 0;
	B.lat = lat;
	B.lat_seen = 0;
	B.cons_tid = tid();
	B.cmd = CMD_LAT;
	B.n = (uint64_t)n;
	sem_post(&B.prod[0].go);
	bpf_drain((uint64_t)n);
	B.lat = NULL;
	return B.bad;
}

/* ---- pipe ---- */

struct pipe_cmd {
	int op;			/* CMD_* */
	uint32_t size;
	uint64_t n;
	pid_t cons_tid;
};

static struct {
	pid_t child;
	int ctl;		/* commands to the child */
	int data;		/* records from the child */
	uint32_t size;
	uint64_t expect;
	uint64_t *seen;		/* shared with the child */
	uint8_t *buf;
	size_t have;		/* bytes of a partial record in buf */
} P;

#define PIPE_BUF_BYTES	(64 * 1024)

static void pipe_child(int ctl, int data, volatile uint64_t *seen)
{
	static uint8_t rec[MAX_SIZE];
	struct pipe_cmd c;
	uint64_t seq = 0;

	pin(PROD_CPU);
	while (read(ctl, &c, sizeof(c)) == sizeof(c)) {
		if (c.op == CMD_QUIT)
			break;
		for (uint64_t i = 0; i < c.n; i++) {
			if (c.op == CMD_LAT) {
				wait_seen(seen, i);
				lat_gap((int)i);
				wait_asleep(c.cons_tid);
			}
			fill(rec, c.size, seq++);
			if (write(data, rec, c.size) != (ssize_t)c.size)
				_exit(2);
		}
	}
	_exit(0);
}

static void pipe_setup(uint32_t size)
{
	int ctl[2], data[2];

	if (pipe(ctl) || pipe(data))
		die("pipe: %s", strerror(errno));
	if (fcntl(data[1], F_SETPIPE_SZ, (int)cfg.ring) < 0)
		die("F_SETPIPE_SZ %llu: %s", (unsigned long long)cfg.ring,
		    strerror(errno));
	P.seen = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (P.seen == MAP_FAILED)
		die("mmap: %s", strerror(errno));
	fflush(NULL);
	P.child = fork();
	if (P.child < 0)
		die("fork: %s", strerror(errno));
	if (P.child == 0) {
		close(ctl[1]);
		close(data[0]);
		pipe_child(ctl[0], data[1], P.seen);
	}
	close(ctl[0]);
	close(data[1]);
	P.ctl = ctl[1];
	P.data = data[0];
	P.size = size;
	P.expect = 0;
	P.have = 0;
	if (!P.buf && !(P.buf = malloc(PIPE_BUF_BYTES)))
		die("malloc");
}

static void pipe_teardown(void)
{
	struct pipe_cmd c = { .op = CMD_QUIT };
	int st;

	if (write(P.ctl, &c, sizeof(c)) != sizeof(c))
		die("pipe: command: %s", strerror(errno));
	waitpid(P.child, &st, 0);
	if (!WIFEXITED(st) || WEXITSTATUS(st))
		die("pipe writer failed (status %#x)", st);
	close(P.ctl);
	close(P.data);
	munmap(P.seen, 4096);
}

static void pipe_send(int op, uint64_t n)
{
	struct pipe_cmd c = { .op = op, .size = P.size, .n = n, .cons_tid = tid() };

	if (write(P.ctl, &c, sizeof(c)) != sizeof(c))
		die("pipe: command: %s", strerror(errno));
}

/* Read until n records arrived; lat: one at a time, now - stamp. */
static uint64_t pipe_drain(uint64_t n, uint64_t *lat)
{
	uint64_t got = 0, bad = 0, stamp;

	while (got < n) {
		ssize_t r;
		uint64_t t;
		size_t off = 0;

		cons_waits++;
		r = read(P.data, P.buf + P.have, PIPE_BUF_BYTES - P.have);
		t = lat ? now_ns() : 0;

		if (r <= 0)
			die("pipe: read: %s", r ? strerror(errno) : "EOF");
		P.have += (size_t)r;
		while (P.have - off >= P.size) {
			if (check(P.buf + off, P.size, P.size, P.expect, &stamp))
				bad++;
			else if (lat)
				lat[got] = t - stamp;
			P.expect++;
			got++;
			off += P.size;
			if (lat)
				__atomic_store_n(P.seen, got, __ATOMIC_RELEASE);
		}
		memmove(P.buf, P.buf + off, P.have - off);
		P.have -= off;
	}
	return bad;
}

static double pipe_tput(uint64_t n, uint64_t *bad)
{
	uint64_t t0, t1;

	t0 = now_ns();
	pipe_send(CMD_TPUT, n);
	*bad += pipe_drain(n, NULL);
	t1 = now_ns();
	return (double)(t1 - t0);
}

static uint64_t pipe_lat(uint64_t *lat, int n)
{
	__atomic_store_n(P.seen, 0, __ATOMIC_RELEASE);
	pipe_send(CMD_LAT, (uint64_t)n);
	return pipe_drain((uint64_t)n, lat);
}

/* ---- one size ---- */

static uint64_t records_for(uint32_t size)
{
	if (cfg.n)
		return cfg.n;
	return size <= 256 ? 100000 : 25000;
}

static uint64_t cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static double run_tput(int p, uint64_t n, int nprod, uint64_t *waits,
		       uint64_t *bad)
{
	switch (p) {
	case P_UHP:
		return uhp_tput(n, nprod, waits, bad);
	case P_BPF:
		return bpf_tput(n, nprod, waits, bad);
	default:
		return pipe_tput(n, bad);
	}
}

static uint64_t run_lat(int p, uint64_t *lat, int n)
{
	switch (p) {
	case P_UHP:
		return uhp_lat(lat, n);
	case P_BPF:
		return bpf_lat(lat, n);
	default:
		return pipe_lat(lat, n);
	}
}

/*
 * Throughput with cfg.producers producing CPUs at once, uhp and the BPF ring
 * buffer, rounds alternating; printed after the single-producer table of
 * the same size (run_size() calls it while the ticker is loaded).
 */
static void run_multi(uint32_t size, const char *boot)
{
	enum { NMULTI = 2 };	/* P_UHP, P_BPF */
	static double ns[NMULTI][MAX_ROUNDS], cpu[NMULTI][MAX_ROUNDS];
	uint64_t np = (uint64_t)cfg.producers;
	uint64_t n = records_for(size) / np * np, waits[NMULTI] = { 0 };
	uint64_t bad[NMULTI] = { 0 }, scratch = 0;
	double rate[NMULTI], lo[NMULTI], hi[NMULTI], ccpu[NMULTI];
	int p, r;

	for (p = 0; p < NMULTI; p++)
		run_tput(p, n / 20 / np * np + np, cfg.producers, &scratch, &bad[p]);
	for (r = 0; r < cfg.rounds; r++)
		for (int j = 0; j < NMULTI; j++) {
			uint64_t c0 = cpu_ns();

			p = (j + r) % NMULTI;
			ns[p][r] = run_tput(p, n, cfg.producers, &waits[p], &bad[p]);
			cpu[p][r] = (double)(cpu_ns() - c0) / (double)n;
		}
	for (p = 0; p < NMULTI; p++) {
		rate[p] = (double)n * 1e9 / median(ns[p], cfg.rounds);	/* sorts */
		lo[p] = (double)n * 1e9 / ns[p][cfg.rounds - 1];
		hi[p] = (double)n * 1e9 / ns[p][0];
		ccpu[p] = median(cpu[p], cfg.rounds);
	}
	printf("\nkernel -> user, %u-byte records, %d producing CPUs at once "
	       "(CPUs 0..%d, %llu records each), median of %d rounds\n", size,
	       cfg.producers, cfg.producers - 1, (unsigned long long)(n / np),
	       cfg.rounds);
	printf("  %-12s %10s %7s %6s %6s %9s %10s %4s\n", "peer", "records/s",
	       "MB/s", "x uhp", "range", "cons.cpu", "prod.waits", "bad");
	for (p = 0; p < NMULTI; p++) {
		printf("  %-12s %10.0f %7.1f %6.2f %5.0f%% %6.0f ns %10llu %4llu\n",
		       peer_name[p], rate[p], rate[p] * size / 1e6,
		       rate[p] / rate[P_UHP], (hi[p] - lo[p]) * 100 / rate[p], ccpu[p],
		       (unsigned long long)waits[p], (unsigned long long)bad[p]);
		printf(TAG "{\"bench\":\"kernel_to_user\",\"peer\":\"%s\",\"size\":%u,"
		       "\"producers\":%d,\"records\":%llu,\"rounds\":%d,"
		       "\"ring_bytes\":%llu,\"records_per_s\":%.0f,"
		       "\"records_per_s_min\":%.0f,\"records_per_s_max\":%.0f,"
		       "\"mb_per_s\":%.2f,\"ratio_vs_uhp\":%.3f,"
		       "\"ratio_of\":\"records_per_s\","
		       "\"consumer_cpu_ns_per_record\":%.0f,\"producer_waits\":%llu,"
		       "\"bad\":%llu,\"boot_id\":\"%s\"}\n",
		       peer_name[p], size, cfg.producers, (unsigned long long)n,
		       cfg.rounds, (unsigned long long)cfg.ring, rate[p], lo[p], hi[p],
		       rate[p] * size / 1e6, rate[p] / rate[P_UHP], ccpu[p],
		       (unsigned long long)waits[p], (unsigned long long)bad[p], boot);
		bad_total += bad[p];
	}
}

static void run_size(uint32_t size, const char *boot)
{
	static double ns[NPEERS][MAX_ROUNDS], cpu[NPEERS][MAX_ROUNDS];
	uint64_t cw[NPEERS] = { 0 };
	uint64_t n = records_for(size), waits[NPEERS] = { 0 }, bad[NPEERS] = { 0 };
	uint64_t scratch = 0, *lat[NPEERS], p50[NPEERS];
	double rate[NPEERS], lo[NPEERS], hi[NPEERS], ccpu[NPEERS];
	int p, r, chunks = 4;

	B.size = size;
	for (int k = 0; k < cfg.producers; k++)	/* empty: start where we are */
		B.expect[k] = B.prod[k].seq;
	pipe_setup(size);	/* first: the child needs no uhp fd */
	uhp_setup(size);

	/* Warm up every path (page faults, caches, first wakeups). */
	for (p = 0; p < NPEERS; p++)
		run_tput(p, n / 20 + 1, 1, &scratch, &bad[p]);
	memset(waits, 0, sizeof(waits));

	for (r = 0; r < cfg.rounds; r++)
		for (int j = 0; j < NPEERS; j++) {
			p = (j + r) % NPEERS;
			uint64_t c0 = cpu_ns(), w0 = cons_waits;

			ns[p][r] = run_tput(p, n, 1, &waits[p], &bad[p]);
			cpu[p][r] = (double)(cpu_ns() - c0) / (double)n;
			cw[p] += cons_waits - w0;
		}

	/* Latency in chunks, the order rotated, so drift hits all alike. */
	for (p = 0; p < NPEERS; p++)
		if (!(lat[p] = calloc((size_t)cfg.samples, sizeof(uint64_t))))
			die("calloc");
	for (int c = 0; c < chunks; c++) {
		int from = cfg.samples * c / chunks, to = cfg.samples * (c + 1) / chunks;

		for (int j = 0; j < NPEERS; j++) {
			p = (j + c) % NPEERS;
			bad[p] += run_lat(p, lat[p] + from, to - from);
		}
	}

	pipe_teardown();
	if (cfg.producers > 1)
		run_multi(size, boot);
	uhp_teardown();

	printf("\nkernel -> user, %u-byte records, %llu per run, rings of %llu KiB, "
	       "median of %d rounds\n", size, (unsigned long long)n,
	       (unsigned long long)(cfg.ring >> 10), cfg.rounds);
	printf("  %-12s %10s %7s %6s %6s %9s %10s %10s %4s\n", "peer", "records/s",
	       "MB/s", "x uhp", "range", "cons.cpu", "cons.waits", "prod.waits",
	       "bad");
	for (p = 0; p < NPEERS; p++) {
		rate[p] = (double)n * 1e9 / median(ns[p], cfg.rounds);	/* sorts */
		lo[p] = (double)n * 1e9 / ns[p][cfg.rounds - 1];
		hi[p] = (double)n * 1e9 / ns[p][0];
		ccpu[p] = median(cpu[p], cfg.rounds);
	}
	for (p = 0; p < NPEERS; p++) {
		char w[24] = "-";

		if (p != P_PIPE)
			snprintf(w, sizeof(w), "%llu", (unsigned long long)waits[p]);
		printf("  %-12s %10.0f %7.1f %6.2f %5.0f%% %6.0f ns %10llu %10s %4llu\n",
		       peer_name[p], rate[p], rate[p] * size / 1e6,
		       rate[p] / rate[P_UHP], (hi[p] - lo[p]) * 100 / rate[p], ccpu[p],
		       (unsigned long long)cw[p], w, (unsigned long long)bad[p]);
	}
	printf("  wake-up latency, %d samples (ns, stamp at the producer -> consumer "
	       "has the record)\n", cfg.samples);
	printf("  %-12s %10s %10s %10s %10s %8s\n", "peer", "p50", "p90", "p99",
	       "max", "p50 x uhp");
	for (p = 0; p < NPEERS; p++) {
		qsort(lat[p], (size_t)cfg.samples, sizeof(uint64_t), cmp_u64);
		p50[p] = pct(lat[p], cfg.samples, 0.50);
	}
	for (p = 0; p < NPEERS; p++)
		printf("  %-12s %10llu %10llu %10llu %10llu %8.2f\n", peer_name[p],
		       (unsigned long long)p50[p],
		       (unsigned long long)pct(lat[p], cfg.samples, 0.90),
		       (unsigned long long)pct(lat[p], cfg.samples, 0.99),
		       (unsigned long long)lat[p][cfg.samples - 1],
		       (double)p50[p] / (double)p50[P_UHP]);

	for (p = 0; p < NPEERS; p++)
		printf(TAG "{\"bench\":\"kernel_to_user\",\"peer\":\"%s\",\"size\":%u,"
		       "\"producers\":1,\"records\":%llu,\"rounds\":%d,\"ring_bytes\":%llu,"
		       "\"records_per_s\":%.0f,\"records_per_s_min\":%.0f,"
		       "\"records_per_s_max\":%.0f,\"mb_per_s\":%.2f,"
		       "\"ratio_vs_uhp\":%.3f,\"ratio_of\":\"records_per_s\","
		       "\"consumer_cpu_ns_per_record\":%.0f,\"consumer_waits\":%llu,"
		       "\"producer_waits\":%lld,\"bad\":%llu,\"boot_id\":\"%s\"}\n",
		       peer_name[p], size, (unsigned long long)n, cfg.rounds,
		       (unsigned long long)cfg.ring, rate[p], lo[p], hi[p],
		       rate[p] * size / 1e6, rate[p] / rate[P_UHP], ccpu[p],
		       (unsigned long long)cw[p], p == P_PIPE ? -1LL : (long long)waits[p],
		       (unsigned long long)bad[p], boot);
	for (p = 0; p < NPEERS; p++)
		printf(TAG "{\"bench\":\"kernel_to_user_wakeup\",\"peer\":\"%s\","
		       "\"size\":%u,\"samples\":%d,\"p50_ns\":%llu,\"p90_ns\":%llu,"
		       "\"p99_ns\":%llu,\"max_ns\":%llu,\"ratio_vs_uhp\":%.3f,"
		       "\"ratio_of\":\"p50_ns\",\"boot_id\":\"%s\"}\n",
		       peer_name[p], size, cfg.samples, (unsigned long long)p50[p],
		       (unsigned long long)pct(lat[p], cfg.samples, 0.90),
		       (unsigned long long)pct(lat[p], cfg.samples, 0.99),
		       (unsigned long long)lat[p][cfg.samples - 1],
		       (double)p50[p] / (double)p50[P_UHP], boot);
	for (p = 0; p < NPEERS; p++) {
		bad_total += bad[p];
		free(lat[p]);
	}
	fflush(stdout);
}

/* ---- main ---- */

static void usage(void)
{
	fprintf(stderr,
		"usage: bench_kernel [-s SIZE,...] [-n RECORDS] [-r ROUNDS] "
		"[-l SAMPLES] [-R RING_BYTES] [-P PRODUCERS] [-S CHECKS]\n"
		"  -s  payload sizes, 16..%d (default 64,1024)\n"
		"  -n  records per throughput run (default 100000 up to 256 B, "
		"else 25000)\n"
		"  -r  rounds, median reported (default 9, max %d)\n"
		"  -l  wake-up latency samples per peer and size (default 200)\n"
		"  -R  bytes per ring, a power of two >= 64K (default 1M)\n"
		"  -P  producing CPUs of the second throughput table (default 2,"
		" max %d; 1: none)\n"
		"  -S  uhp consumer: checks before it sleeps (uhp_set_spin();"
		" default libuhp's)\n",
		MAX_SIZE, MAX_ROUNDS, MAX_PROD);
	exit(2);
}

static void read_line(const char *path, char *buf, size_t cap)
{
	FILE *f = fopen(path, "r");

	buf[0] = 0;
	if (f) {
		if (!fgets(buf, (int)cap, f))
			buf[0] = 0;
		fclose(f);
	}
	buf[strcspn(buf, "\n")] = 0;
}

int main(int argc, char **argv)
{
	char boot[64], *s, *tok;
	struct utsname u;
	struct stat st;
	int c;

	while ((c = getopt(argc, argv, "s:n:r:l:R:P:S:h")) != -1) {
		switch (c) {
		case 's':
			cfg.nsizes = 0;
			for (s = optarg; (tok = strsep(&s, ","));) {
				if (cfg.nsizes == MAX_SIZES) {
					fprintf(stderr, "bench_kernel: -s: at most "
						"%d sizes\n", MAX_SIZES);
					exit(2);
				}
				cfg.sizes[cfg.nsizes++] = (uint32_t)bench_arg_size("-s",
						tok, sizeof(struct tick), MAX_SIZE);
			}
			break;
		case 'n':	/* 0: by size */
			cfg.n = bench_arg_count("-n", optarg, 0, 1000000000000ULL);
			break;
		case 'r':
			cfg.rounds = (int)bench_arg_count("-r", optarg, 1, MAX_ROUNDS);
			break;
		case 'l':
			cfg.samples = (int)bench_arg_count("-l", optarg, 4, INT_MAX);
			break;
		case 'P':
			cfg.producers = (int)bench_arg_count("-P", optarg, 1, MAX_PROD);
			break;
		case 'S':
			cfg.spin = (long)bench_arg_count("-S", optarg, 0, 1U << 30);
			break;
		case 'R':
			cfg.ring = bench_arg_size("-R", optarg, 65536, 1ULL << 30);
			if (cfg.ring & (cfg.ring - 1))
				usage();
			break;
		default:
			usage();
		}
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	if (stat(TICKER_KO, &st))
		die("%s is missing: build samples/uhp_ticker.ko (make module)", TICKER_KO);
	if (sysconf(_SC_NPROCESSORS_ONLN) < 2) {
		pin_ok = 0;
		fprintf(stderr, "bench_kernel: one CPU: producers and consumer share it\n");
	}
	pin(CONS_CPU);
	if (cfg.producers > sysconf(_SC_NPROCESSORS_ONLN))
		cfg.producers = (int)sysconf(_SC_NPROCESSORS_ONLN);

	read_line("/proc/sys/kernel/random/boot_id", boot, sizeof(boot));
	uname(&u);
	printf("bench_kernel: kernel -> user, uhp vs BPF ring buffer vs pipe, "
	       "kernel %s, %ld CPUs, boot %s\n", u.release,
	       sysconf(_SC_NPROCESSORS_ONLN), boot);
	printf("NOTE: this guest runs under QEMU TCG (emulation): absolute figures "
	       "are not those of real hardware and change from boot to boot; "
	       "compare peers only within one boot (same boot_id).\n");
	printf("producers on CPU %d, consumer on CPU %d; x uhp = peer / uhp "
	       "(throughput: > 1 faster than uhp; latency: > 1 slower); range = "
	       "(best - worst round) / median; prod.waits = times the producer "
	       "slept on a full ring, cons.waits = consumer calls that may sleep "
	       "(uhp_wait, ring_buffer__poll, read), both summed over the rounds; "
	       "cons.cpu = consumer CPU time per record (median)\n",
	       PROD_CPU, CONS_CPU);
	printf(TAG "{\"bench\":\"kernel_to_user_env\",\"kernel\":\"%s\",\"cpus\":%ld,"
	       "\"boot_id\":\"%s\",\"note\":\"QEMU TCG guest: compare only within "
	       "one boot (same boot_id)\"}\n", u.release,
	       sysconf(_SC_NPROCESSORS_ONLN), boot);

	bpf_setup();
	for (int i = 0; i < cfg.nsizes; i++)
		run_size(cfg.sizes[i], boot);
	bpf_teardown();

	if (bad_total) {
		printf("bench_kernel: FAIL: %llu records failed their checks\n",
		       (unsigned long long)bad_total);
		return 1;
	}
	printf("\nbench_kernel: every record arrived intact and in order. "
	       "Remember: TCG timings compare only within one boot.\n");
	return 0;
}
