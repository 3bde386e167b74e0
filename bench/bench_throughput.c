// SPDX-License-Identifier: MIT
/*
 * bench_throughput: messages per second from K producer processes to one
 * consumer process, uhp channels (libuhp seals and checks a CRC32C per
 * record) against peers that move the same messages. uhp runs in an arena
 * by default (no module needed: the host), or, with --dev, in a /dev/uhp
 * channel (uhp.ko: the guest) created with a ring per NUMA node, each
 * process sending into the ring of its own node:
 *
 *   uhp          uhp_send() / uhp_recv(), uhp_wait() when empty
 *   uhp_spin     uhp_send() / uhp_recv(), the consumer spins when empty
 *                (the ring peers' policy: ck_ring, rte_ring, iceoryx)
 *   uhp_excl     uhp_spin with a single-producer ring per producer: each
 *                claims one (uhp_claim_ring(), excl_rings = K), so its
 *                sends store write_pos instead of CASing it
 *   uhp_batch    uhp_send_batch() of 32 / uhp_recv_batch() of 64
 *   uhp_peekb    uhp_send_batch() of 32 / uhp_peek_batch() of 64, each
 *                record checked in place, uhp_release_batch() (no copy out)
 *   pipe         one write() / read() of S bytes per message
 *   seqpacket    AF_UNIX SOCK_SEQPACKET socketpair, send() / recv()
 *   mqueue       POSIX mq_send() / mq_receive()
 *   eventfd_shm  an SPSC ring per producer in MAP_SHARED memory, slots of
 *                S bytes; the consumer sleeps on an eventfd when all are
 *                empty (after the same 256 checks uhp_wait() spins)
 *   ck_ring      Concurrency Kit ck_ring SPSC, one per producer, in
 *                MAP_SHARED memory; entries are slot indices, the S bytes
 *                are copied into / out of a slot array; consumer spins
 *   rte_ring     DPDK rte_ring (rte_ring_init() on our own MAP_SHARED
 *                memory, no EAL), SP/SC for K=1, MP/SC otherwise (the
 *                RTS producer mode: producers share a CPU); slot
 *                array as for ck_ring; consumer spins
 *   rte_ring_ptr the same ring, pointer-only (the hardest peer): the
 *                producer writes the message into its slot in place, the
 *                consumer checks it in place; no copy on either side and
 *                no integrity check beyond the bench's own stamp
 *   rte_burst    the same ring, rte_ring_enqueue_burst() of 32 /
 *                dequeue_burst() of 64, copying in and out: the peer of
 *                uhp_batch
 *   iceoryx      Eclipse iceoryx 2 through its C binding: a publisher per
 *                producer process, one subscriber (queue 256, the
 *                producers block when it is full: no loss) in the consumer;
 *                loan a chunk of S bytes, fill it, publish (zero copy);
 *                take, copy out, release; consumer spins. The bench starts
 *                its own RouDi (iox-roudi, a temporary config with mempools
 *                for S) and stops it at the end. Host only.
 *
 * Every message carries (producer, sequence) in its first 8 bytes and a tag
 * derived from them in its last 8; the consumer copies each message out and
 * checks both, and that every producer's sequence arrives complete and in
 * order. A peer that loses, reorders or damages anything is reported as
 * FAILED and left out of the table.
 *
 * Each trial sets up a fresh channel, forks the consumer and the producers
 * (consumer on CPU 1, producers on the other CPUs, i.e. CPU 0 on a 2-vCPU
 * host), releases them together and times from the release to the
 * consumer's last message. Trials of all implementations are interleaved,
 * the order rotated each round; the figure is the median over the rounds.
 * Producers that find their queue full spin briefly, then sched_yield().
 *
 * bench_throughput [--messages N] [--size S] [--producers K] [--rounds R]
 *                  [--only a,b,...] [--cores p|e|any] [--append] [--dev]
 * N, K and R are counts (2M = 2000000), S a size (1K = 1024), see
 * bench_common.h; --only names implementations exactly (uhp, uhp_spin, ...).
 * JSON lines into $BENCH_OUT/throughput.jsonl (--append: add to it); each
 * carries "channel": "arena" or "dev" (what the uhp rows ran on).
 */
#include "bench_common.h"

#include <fcntl.h>
#include <mqueue.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "uhp.h"
#include "uhp_runtime.h"

#ifdef HAVE_CK
#include <ck_ring.h>
#endif
#ifdef HAVE_DPDK
#include <rte_ring.h>
#endif
#ifdef HAVE_ICEORYX
#include <iceoryx_binding_c/log.h>
#include <iceoryx_binding_c/publisher.h>
#include <iceoryx_binding_c/runtime.h>
#include <iceoryx_binding_c/subscriber.h>
#endif

#define MAX_PRODUCERS	16
#define RING_ENTRIES	8192	/* ck_ring, rte_ring, eventfd_shm (slots) */
#define TX_BATCH	32
#define RX_BATCH	64
#define TRIAL_TIMEOUT_S	120
/* --messages: more than any trial could move before TRIAL_TIMEOUT_S */
#define MAX_MESSAGES	1000000000000LL

/* Why a peer is missing, when its build left it out (bench/Makefile, guest.mk). */
#ifndef CK_SKIP_WHY
#define CK_SKIP_WHY	"built without libck-dev"
#endif
#ifndef DPDK_SKIP_WHY
#define DPDK_SKIP_WHY	"built without dpdk-dev"
#endif
#ifndef ICEORYX_SKIP_WHY
#define ICEORYX_SKIP_WHY "built without libiceoryx-binding-c-dev"
#endif

static inline void cpu_relax(void)
{
	__builtin_ia32_pause();
}

/* ---- configuration and the shared control page ---- */

static size_t S = 64;		/* message size */
static int K = 1;		/* producers */
static long per_prod;		/* messages per producer */
static long total;		/* per_prod * K */
static int ncpu;

struct ctl {
	atomic_int ready;
	atomic_int go;
	uint64_t t0, t1;
	uint64_t received, bad;
	char why[160];
};
static struct ctl *ctl;

static void *shared_alloc(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		perror("mmap");
		exit(2);
	}
	memset(p, 0, len);
	return p;
}

/*
 * The CPUs the trial runs on (--cores): every online one, or on a hybrid
 * part only its P or E cores (libuhp's topology, which $UHP_SYSFS_ROOT can
 * point at a fake machine). The consumer takes the second, the producers
 * the others (all on the first when there are two).
 */
static int sel_cpu[MAX_PRODUCERS + 1];
static int nsel;

static int consumer_cpu(void)
{
	return sel_cpu[nsel > 1 ? 1 : 0];
}

static int producer_cpu(int p)
{
	return sel_cpu[nsel > 1 ? (p % (nsel - 1) + 2) % nsel : 0];
}

static void pin_cpu(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

/* --cores any|p|e: fill sel_cpu[]; a choice the machine cannot give is exit 2. */
static void select_cpus(const char *cores, char *what, size_t len)
{
	unsigned want = !strcmp(cores, "p") ? UHP_CORES_P :
			!strcmp(cores, "e") ? UHP_CORES_E : UHP_CORES_ANY;
	struct uhp_topology *t;
	int ret;

	if (want == UHP_CORES_ANY && strcmp(cores, "any")) {
		fprintf(stderr, "bench_throughput: --cores \"%s\": want p, e or any\n", cores);
		exit(2);
	}
	ret = uhp_topology_load(NULL, &t);
	if (ret) {
		fprintf(stderr, "bench_throughput: topology: %s\n", strerror(-ret));
		exit(2);
	}
	nsel = 0;
	for (unsigned i = 0; i < uhp_topology_nr_cpus(t) && nsel < MAX_PRODUCERS + 1; i++) {
		struct uhp_cpu c;

		uhp_topology_cpu(t, i, &c);
		/* as the runtime does: on a uniform part every core is both */
		if (want == UHP_CORES_ANY || !uhp_topology_hybrid(t) || c.kind == want)
			sel_cpu[nsel++] = (int)c.cpu;
	}
	snprintf(what, len, "%s%s", cores,
		 want == UHP_CORES_ANY ? "" : uhp_topology_hybrid(t) ?
		 " (hybrid part)" : " (not a hybrid part: every core)");
	uhp_topology_free(t);
	if (!nsel) {
		fprintf(stderr, "bench_throughput: --cores %s: no such core on this machine\n", cores);
		exit(2);
	}
}

/* Backoff of a producer whose queue is full (or of a spinning consumer). */
static inline void backoff(unsigned *n)
{
	if (++*n < 64)
		cpu_relax();
	else
		sched_yield();
}

static void wait_go(void)
{
	atomic_fetch_add(&ctl->ready, 1);
	while (!atomic_load(&ctl->go))
		sched_yield();
}

/* ---- message contents and the consumer's check ---- */

static inline uint64_t tag_of(uint64_t hdr)
{
	return hdr * 0x9e3779b97f4a7c15ULL ^ 0x5bd1e995c0ffee11ULL;
}

/* Producer side: stamp message seq of producer p into buf (S bytes). */
static inline void stamp(unsigned char *buf, int p, uint64_t seq)
{
	uint64_t hdr = (uint64_t)p << 48 | seq, tag = tag_of(hdr);

	memcpy(buf, &hdr, 8);
	memcpy(buf + S - 8, &tag, 8);
}

/* Consumer side, per process. */
static uint64_t expect[MAX_PRODUCERS];
static uint64_t got, bad;

static inline void check(const unsigned char *buf, size_t len)
{
	uint64_t hdr, tag;
	unsigned p;

	got++;
	if (len != S) {
		bad++;
		return;
	}
	memcpy(&hdr, buf, 8);
	memcpy(&tag, buf + S - 8, 8);
	p = (unsigned)(hdr >> 48);
	if (p >= (unsigned)K || tag != tag_of(hdr) ||
	    (hdr & ((1ULL << 48) - 1)) != expect[p]) {
		bad++;
		return;
	}
	expect[p]++;
}

static void consumer_done(void)
{
	ctl->t1 = bench_now_ns();
	ctl->received = got;
	ctl->bad = bad;
	for (int p = 0; p < K; p++)
		if (expect[p] != (uint64_t)per_prod && !ctl->why[0])
			snprintf(ctl->why, sizeof(ctl->why),
				 "producer %d: %llu of %ld in order", p,
				 (unsigned long long)expect[p], per_prod);
}

static void fail(const char *what, int err)
{
	snprintf(ctl->why, sizeof(ctl->why), "%s: %s", what, strerror(err));
	_exit(3);
}

/* ---- implementations ---- */

struct impl {
	const char *name;
	int (*setup)(void);		/* parent, before fork; 0 or -errno */
	void (*producer)(int p);	/* child */
	void (*consumer)(void);		/* child */
	void (*teardown)(void);		/* parent, after the children */
	const char *skip;		/* set when unavailable */
};

/* uhp: an arena, or a /dev/uhp channel with --dev (dev_fd inherited) */
static bool use_dev;
static int dev_fd = -1;
static char uhp_name[64];
static struct uhp_channel *uhp_parent;

static unsigned uhp_excl_rings;	/* uhp_excl: one per producer */

static int uhp_setup(void)
{
	struct uhp_create_opts o = UHP_CREATE_OPTS_INIT;

	o.excl_rings = uhp_excl_rings;
	snprintf(uhp_name, sizeof(uhp_name), "bench-tp-%d", (int)getpid());
	if (use_dev)
		return uhp_create(dev_fd, uhp_name, &o, &uhp_parent);
	uhp_arena_unlink(uhp_name);
	return uhp_arena_create(uhp_name, &o, &uhp_parent);
}

static void uhp_teardown(void)
{
	uhp_close(uhp_parent);
	if (use_dev)
		uhp_unlink(dev_fd, uhp_name);
	else
		uhp_arena_unlink(uhp_name);
}

/* In the child, after pinning: a producer gets the ring of its node. */
static struct uhp_channel *uhp_join(bool consumer)
{
	unsigned flags = consumer ? UHP_ATTACH_CONSUMER : 0;
	struct uhp_channel *ch;
	int ret = use_dev ? uhp_attach(dev_fd, uhp_name, flags, &ch) :
			    uhp_arena_attach(uhp_name, flags, &ch);

	if (ret < 0)
		fail(use_dev ? "uhp_attach" : "uhp_arena_attach", -ret);
	return ch;
}

static int uhp_excl_setup(void)
{
	uhp_excl_rings = (unsigned)K;
	return uhp_setup();
}

static void uhp_excl_teardown(void)
{
	uhp_teardown();
	uhp_excl_rings = 0;
}

static void uhp_producer(int p)
{
	struct uhp_channel *ch = uhp_join(false);
	unsigned char *buf = calloc(1, S);
	int ret;

	if (uhp_excl_rings && (ret = uhp_claim_ring(ch)) < 0)
		fail("uhp_claim_ring", -ret);
	wait_go();
	for (long i = 0; i < per_prod; i++) {
		unsigned n = 0;

		stamp(buf, p, (uint64_t)i);
		while ((ret = uhp_send(ch, buf, (uint32_t)S, NULL)) == -EAGAIN)
			backoff(&n);
		if (ret < 0)
			fail("uhp_send", -ret);
	}
	uhp_close(ch);
}

static void uhp_check_stats(struct uhp_channel *ch)
{
	struct uhp_stats st;

	uhp_stats(ch, &st);
	if ((st.crc_errors || st.stalled_skips) && !ctl->why[0])
		snprintf(ctl->why, sizeof(ctl->why), "crc_errors %llu stalled %llu",
			 (unsigned long long)st.crc_errors,
			 (unsigned long long)st.stalled_skips);
}

/*
 * spin: the ring peers' policy (ck_ring, rte_ring, iceoryx): spin when
 * empty, never sleep. Otherwise sleep in uhp_wait() after its short spin.
 */
static void uhp_consume(bool spin)
{
	struct uhp_channel *ch = uhp_join(true);
	unsigned char *buf = calloc(1, S);

	wait_go();
	while (got < (uint64_t)total) {
		ssize_t n = uhp_recv(ch, buf, S, NULL);

		if (n >= 0)
			check(buf, (size_t)n);
		else if (n == -EAGAIN && spin)
			cpu_relax();
		else if (n == -EAGAIN)
			uhp_wait(ch, -1);
		else if (n == -EBADMSG)
			bad++, got++;
		else
			fail("uhp_recv", (int)-n);
	}
	consumer_done();
	uhp_check_stats(ch);
	uhp_close(ch);
}

static void uhp_consumer(void)
{
	uhp_consume(false);
}

static void uhp_spin_consumer(void)
{
	uhp_consume(true);
}

static void uhpb_producer(int p)
{
	struct uhp_channel *ch = uhp_join(false);
	unsigned char *buf = calloc(TX_BATCH, S);
	struct uhp_iov_msg msgs[TX_BATCH];

	memset(msgs, 0, sizeof(msgs));
	wait_go();
	for (long i = 0; i < per_prod;) {
		unsigned k = per_prod - i < TX_BATCH ? (unsigned)(per_prod - i) :
						       TX_BATCH;
		unsigned done = 0, n = 0;

		for (unsigned j = 0; j < k; j++) {
			stamp(buf + j * S, p, (uint64_t)(i + j));
			msgs[j].buf = buf + j * S;
			msgs[j].len = (uint32_t)S;
		}
		while (done < k) {
			int ret = uhp_send_batch(ch, msgs + done, k - done);

			if (ret > 0)
				done += (unsigned)ret, n = 0;
			else if (ret == -EAGAIN)
				backoff(&n);
			else
				fail("uhp_send_batch", -ret);
		}
		i += k;
	}
	uhp_close(ch);
}

static void uhpb_consumer(void)
{
	struct uhp_channel *ch = uhp_join(true);
	unsigned char *buf = calloc(RX_BATCH, S);
	struct uhp_rx_msg msgs[RX_BATCH];

	memset(msgs, 0, sizeof(msgs));
	for (int j = 0; j < RX_BATCH; j++) {
		msgs[j].buf = buf + j * S;
		msgs[j].cap = (uint32_t)S;
	}
	wait_go();
	while (got < (uint64_t)total) {
		int n = uhp_recv_batch(ch, msgs, RX_BATCH);

		if (n > 0)
			for (int j = 0; j < n; j++)
				check(msgs[j].buf, msgs[j].len);
		else if (n == -EAGAIN)
			uhp_wait(ch, -1);
		else if (n == -EBADMSG)
			bad++, got++;
		else
			fail("uhp_recv_batch", -n);
	}
	consumer_done();
	uhp_check_stats(ch);
	uhp_close(ch);
}

static void uhpp_consumer(void)
{
	struct uhp_channel *ch = uhp_join(true);
	struct uhp_rx rx[RX_BATCH];

	wait_go();
	while (got < (uint64_t)total) {
		int n = uhp_peek_batch(ch, rx, RX_BATCH);

		if (n > 0) {
			for (int j = 0; j < n; j++)
				check(rx[j].payload, rx[j].len);
			uhp_release_batch(ch, rx, (unsigned)n);
		} else if (n == -EAGAIN) {
			uhp_wait(ch, -1);
		} else if (n == -EBADMSG) {
			bad++, got++;
		} else {
			fail("uhp_peek_batch", -n);
		}
	}
	consumer_done();
	uhp_check_stats(ch);
	uhp_close(ch);
}

/* pipe and socketpair: one fd pair, producers share the write end */
static int fds[2];

static int pipe_setup(void)
{
	return pipe(fds) ? -errno : 0;
}

static int seqp_setup(void)
{
	return socketpair(AF_UNIX, SOCK_SEQPACKET, 0, fds) ? -errno : 0;
}

static void fds_teardown(void)
{
	close(fds[0]);
	close(fds[1]);
}

static void fd_producer(int p)
{
	unsigned char *buf = calloc(1, S);

	close(fds[0]);
	wait_go();
	for (long i = 0; i < per_prod; i++) {
		ssize_t n;

		stamp(buf, p, (uint64_t)i);
		do
			n = write(fds[1], buf, S);
		while (n < 0 && errno == EINTR);
		if (n != (ssize_t)S)	/* <= PIPE_BUF: all or nothing */
			fail("write", n < 0 ? errno : EIO);
	}
}

static void pipe_consumer(void)
{
	unsigned char *buf = calloc(1, S);

	close(fds[1]);
	wait_go();
	while (got < (uint64_t)total) {
		size_t have = 0;

		while (have < S) {	/* a byte stream: gather S bytes */
			ssize_t n = read(fds[0], buf + have, S - have);

			if (n <= 0) {
				if (n < 0 && errno == EINTR)
					continue;
				fail("read", n < 0 ? errno : EPIPE);
			}
			have += (size_t)n;
		}
		check(buf, S);
	}
	consumer_done();
}

static void seqp_consumer(void)
{
	unsigned char *buf = calloc(1, S + 1);

	close(fds[1]);
	wait_go();
	while (got < (uint64_t)total) {
		ssize_t n = recv(fds[0], buf, S + 1, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			fail("recv", errno);
		}
		check(buf, (size_t)n);
	}
	consumer_done();
}

/* POSIX message queue */
static char mq_name[64];
static mqd_t mqd;
static long mq_depth;

static int mq_setup(void)
{
	struct mq_attr a = { .mq_maxmsg = mq_depth, .mq_msgsize = (long)S };

	snprintf(mq_name, sizeof(mq_name), "/uhp-bench-tp-%d", (int)getpid());
	mq_unlink(mq_name);
	mqd = mq_open(mq_name, O_RDWR | O_CREAT | O_EXCL, 0600, &a);
	return mqd == (mqd_t)-1 ? -errno : 0;
}

static long mq_msg_max(void)
{
	FILE *f = fopen("/proc/sys/fs/mqueue/msg_max", "r");
	long v = 10;

	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = 10;
		fclose(f);
	}
	return v;
}

/*
 * The deepest queue (<= RING_ENTRIES) this process may create: powers of
 * two down to fs/mqueue/msg_max (CAP_SYS_RESOURCE may exceed it), then
 * msg_max itself, then less.
 */
static void mq_probe(void)
{
	struct rlimit rl = { RLIM_INFINITY, RLIM_INFINITY };
	long max = mq_msg_max();

	setrlimit(RLIMIT_MSGQUEUE, &rl);	/* as root; else keep the limit */
	for (mq_depth = RING_ENTRIES; mq_depth >= 1;) {
		if (mq_setup() == 0) {
			mq_close(mqd);
			mq_unlink(mq_name);
			return;
		}
		if (mq_depth > max && mq_depth / 2 < max)
			mq_depth = max;
		else
			mq_depth /= 2;
	}
	mq_depth = 0;
}

static void mq_teardown(void)
{
	mq_close(mqd);
	mq_unlink(mq_name);
}

static void mq_producer(int p)
{
	unsigned char *buf = calloc(1, S);

	wait_go();
	for (long i = 0; i < per_prod; i++) {
		stamp(buf, p, (uint64_t)i);
		while (mq_send(mqd, (const char *)buf, S, 0) != 0)
			if (errno != EINTR)
				fail("mq_send", errno);
	}
}

static void mq_consumer(void)
{
	unsigned char *buf = calloc(1, S);

	wait_go();
	while (got < (uint64_t)total) {
		ssize_t n = mq_receive(mqd, (char *)buf, S, NULL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			fail("mq_receive", errno);
		}
		check(buf, (size_t)n);
	}
	consumer_done();
}

/* eventfd + shared memory: an SPSC ring per producer, one eventfd */
struct efd_ring {
	_Alignas(64) _Atomic uint64_t head;	/* producer */
	_Alignas(64) _Atomic uint64_t tail;	/* consumer */
	_Alignas(64) unsigned char slots[];	/* RING_ENTRIES * S */
};
static struct {
	_Atomic int sleeping;
} *efd_shared;
static struct efd_ring *efd_rings[MAX_PRODUCERS];
static size_t efd_ring_len;
static int efd;

static int efd_setup(void)
{
	efd_ring_len = sizeof(struct efd_ring) + RING_ENTRIES * S;
	efd_shared = shared_alloc(4096);
	for (int p = 0; p < K; p++)
		efd_rings[p] = shared_alloc(efd_ring_len);
	efd = eventfd(0, 0);
	return efd < 0 ? -errno : 0;
}

static void efd_teardown(void)
{
	close(efd);
	for (int p = 0; p < K; p++)
		munmap(efd_rings[p], efd_ring_len);
	munmap(efd_shared, 4096);
}

static void efd_producer(int p)
{
	struct efd_ring *r = efd_rings[p];
	unsigned char *buf = calloc(1, S);
	uint64_t head = 0;

	wait_go();
	for (long i = 0; i < per_prod; i++) {
		unsigned n = 0;

		while (head - atomic_load_explicit(&r->tail, memory_order_acquire) >=
		       RING_ENTRIES)
			backoff(&n);
		stamp(buf, p, (uint64_t)i);
		memcpy(r->slots + (head % RING_ENTRIES) * S, buf, S);
		atomic_store_explicit(&r->head, ++head, memory_order_release);
		/* Pairs with the consumer's sleeping store / head loads. */
		atomic_thread_fence(memory_order_seq_cst);
		if (atomic_load_explicit(&efd_shared->sleeping, memory_order_relaxed)) {
			uint64_t one = 1;

			if (write(efd, &one, 8) != 8)
				fail("eventfd write", errno);
		}
	}
}

static bool efd_any(void)
{
	for (int p = 0; p < K; p++)
		if (atomic_load_explicit(&efd_rings[p]->head, memory_order_acquire) !=
		    atomic_load_explicit(&efd_rings[p]->tail, memory_order_relaxed))
			return true;
	return false;
}

static void efd_consumer(void)
{
	unsigned char *buf = calloc(1, S);
	int idle = 0;

	wait_go();
	while (got < (uint64_t)total) {
		bool any = false;

		for (int p = 0; p < K; p++) {
			struct efd_ring *r = efd_rings[p];
			uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
			uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);

			for (; tail != head; tail++) {
				memcpy(buf, r->slots + (tail % RING_ENTRIES) * S, S);
				atomic_store_explicit(&r->tail, tail + 1,
						      memory_order_release);
				check(buf, S);
				any = true;
			}
		}
		if (any) {
			idle = 0;
			continue;
		}
		if (++idle < 256) {
			cpu_relax();
			continue;
		}
		idle = 0;
		atomic_store(&efd_shared->sleeping, 1);
		atomic_thread_fence(memory_order_seq_cst);
		if (!efd_any()) {
			uint64_t v;

			if (read(efd, &v, 8) != 8 && errno != EINTR)
				fail("eventfd read", errno);
		}
		atomic_store(&efd_shared->sleeping, 0);
	}
	consumer_done();
}

/* Slot arrays for the pointer rings: producer p's entry e lives in slot
 * e % (2 * RING_ENTRIES) of its own array. A slot is rewritten only after
 * 2 * RING_ENTRIES - 1 later entries of that producer were enqueued, more
 * than the ring holds, so the consumer (one thread, dequeue then copy out)
 * has finished with it. */
#if defined(HAVE_CK) || defined(HAVE_DPDK)
#define NSLOTS	(2 * RING_ENTRIES)
static unsigned char *slot_mem[MAX_PRODUCERS];

static void slots_alloc(void)
{
	for (int p = 0; p < K; p++)
		slot_mem[p] = shared_alloc(NSLOTS * S);
}

static void slots_free(void)
{
	for (int p = 0; p < K; p++)
		munmap(slot_mem[p], NSLOTS * S);
}

/* A ring entry names a slot: producer p in the high half, the slot index low. */
static inline void *slot_entry(int p, uintptr_t slot)
{
	return (void *)((uintptr_t)p << 32 | slot);
}

static inline unsigned char *slot_at(const void *e)
{
	uintptr_t v = (uintptr_t)e;

	return slot_mem[v >> 32] + (v & 0xffffffffU) * S;
}
#endif /* HAVE_CK || HAVE_DPDK: their rings are the ones with slots */

#ifdef HAVE_CK
struct ck_shared {
	ck_ring_t ring;
	_Alignas(64) ck_ring_buffer_t buf[RING_ENTRIES];
};
static struct ck_shared *ckr[MAX_PRODUCERS];

static int ck_setup(void)
{
	for (int p = 0; p < K; p++) {
		ckr[p] = shared_alloc(sizeof(struct ck_shared));
		ck_ring_init(&ckr[p]->ring, RING_ENTRIES);
	}
	slots_alloc();
	return 0;
}

static void ck_teardown(void)
{
	for (int p = 0; p < K; p++)
		munmap(ckr[p], sizeof(struct ck_shared));
	slots_free();
}

static void ck_producer(int p)
{
	struct ck_shared *c = ckr[p];
	unsigned char *buf = calloc(1, S);

	wait_go();
	for (long i = 0; i < per_prod; i++) {
		uintptr_t slot = (uintptr_t)i % NSLOTS;
		unsigned n = 0;

		stamp(buf, p, (uint64_t)i);
		memcpy(slot_mem[p] + slot * S, buf, S);
		while (!ck_ring_enqueue_spsc(&c->ring, c->buf, (void *)slot))
			backoff(&n);
	}
}

static void ck_consumer(void)
{
	unsigned char *buf = calloc(1, S);

	wait_go();
	while (got < (uint64_t)total) {
		bool any = false;

		for (int p = 0; p < K; p++) {
			void *e;

			while (ck_ring_dequeue_spsc(&ckr[p]->ring, ckr[p]->buf, &e)) {
				memcpy(buf, slot_mem[p] + (uintptr_t)e * S, S);
				check(buf, S);
				any = true;
			}
		}
		if (!any)
			cpu_relax();
	}
	consumer_done();
}
#endif

#ifdef HAVE_DPDK
static struct rte_ring *rr;
static size_t rr_len;

static int rte_setup(void)
{
	/* K > 1: the RTS producer mode, as DPDK advises for preemptible
	 * producers (K producers share CPU 0 here); the classic MP mode
	 * spins on the tail of a preempted producer for a whole time slice. */
	unsigned flags = RING_F_SC_DEQ | (K == 1 ? RING_F_SP_ENQ : RING_F_MP_RTS_ENQ);
	ssize_t len = rte_ring_get_memsize(RING_ENTRIES);
	int ret;

	if (len < 0)
		return (int)len;
	rr_len = (size_t)len;
	rr = shared_alloc(rr_len);
	ret = rte_ring_init(rr, "bench_tp", RING_ENTRIES, flags);
	if (ret < 0)
		return ret;
	slots_alloc();
	return 0;
}

static void rte_teardown(void)
{
	munmap(rr, rr_len);
	slots_free();
}

static void rte_producer(int p)
{
	unsigned char *buf = calloc(1, S);

	wait_go();
	for (long i = 0; i < per_prod; i++) {
		uintptr_t slot = (uintptr_t)i % NSLOTS;
		unsigned n = 0;

		stamp(buf, p, (uint64_t)i);
		memcpy(slot_mem[p] + slot * S, buf, S);
		while (rte_ring_enqueue(rr, slot_entry(p, slot)) != 0)
			backoff(&n);
	}
}

static void rte_consumer(void)
{
	unsigned char *buf = calloc(1, S);

	wait_go();
	while (got < (uint64_t)total) {
		void *e;

		if (rte_ring_dequeue(rr, &e) != 0) {
			cpu_relax();
			continue;
		}
		memcpy(buf, slot_at(e), S);
		check(buf, S);
	}
	consumer_done();
}
#endif

#ifdef HAVE_DPDK
/* rte_ring_ptr: the slot is the message; nothing is copied. */
static void rte_ptr_producer(int p)
{
	wait_go();
	for (long i = 0; i < per_prod; i++) {
		uintptr_t slot = (uintptr_t)i % NSLOTS;
		unsigned n = 0;

		stamp(slot_mem[p] + slot * S, p, (uint64_t)i);
		while (rte_ring_enqueue(rr, slot_entry(p, slot)) != 0)
			backoff(&n);
	}
}

static void rte_ptr_consumer(void)
{
	wait_go();
	while (got < (uint64_t)total) {
		void *e;

		if (rte_ring_dequeue(rr, &e) != 0) {
			cpu_relax();
			continue;
		}
		/* checked where it lies: the slot is not reused before this
		 * (see NSLOTS), as the consumer checks before dequeuing more */
		check(slot_at(e), S);
	}
	consumer_done();
}

/* rte_burst: TX_BATCH in / RX_BATCH out per ring operation, copying. */
static void rte_burst_producer(int p)
{
	unsigned char *buf = calloc(1, S);
	void *ents[TX_BATCH];

	wait_go();
	for (long i = 0; i < per_prod;) {
		unsigned k = per_prod - i < TX_BATCH ? (unsigned)(per_prod - i) : TX_BATCH;
		unsigned done = 0, n = 0;

		for (unsigned j = 0; j < k; j++) {
			uintptr_t slot = (uintptr_t)(i + j) % NSLOTS;

			stamp(buf, p, (uint64_t)(i + j));
			memcpy(slot_mem[p] + slot * S, buf, S);
			ents[j] = slot_entry(p, slot);
		}
		while (done < k) {
			unsigned got_n = rte_ring_enqueue_burst(rr, ents + done,
								k - done, NULL);

			if (got_n)
				done += got_n, n = 0;
			else
				backoff(&n);
		}
		i += k;
	}
	free(buf);
}

static void rte_burst_consumer(void)
{
	unsigned char *buf = calloc(RX_BATCH, S);
	void *ents[RX_BATCH];

	wait_go();
	while (got < (uint64_t)total) {
		unsigned n = rte_ring_dequeue_burst(rr, ents, RX_BATCH, NULL);

		if (!n) {
			cpu_relax();
			continue;
		}
		for (unsigned j = 0; j < n; j++) {
			memcpy(buf + j * S, slot_at(ents[j]), S);
			check(buf + j * S, S);
		}
	}
	consumer_done();
}
#endif

#ifdef HAVE_ICEORYX
/*
 * RouDi, iceoryx's broker: started once by main() (iox_start), stopped at
 * exit, also after a failure or SIGINT/SIGTERM (iox_stop, parent only).
 */
static pid_t roudi_pid, main_pid;
static char roudi_dir[64], roudi_why[200];

static void iox_stop(void)
{
	char path[128];
	int st;

	if (getpid() != main_pid || roudi_pid <= 0)
		return;
	kill(roudi_pid, SIGTERM);
	for (int i = 0; i < 100; i++) {	/* 5 s, then SIGKILL */
		if (waitpid(roudi_pid, &st, WNOHANG) == roudi_pid)
			break;
		if (i == 99) {
			kill(roudi_pid, SIGKILL);
			waitpid(roudi_pid, &st, 0);
		}
		usleep(50000);
	}
	roudi_pid = 0;
	snprintf(path, sizeof(path), "%s/roudi.toml", roudi_dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/roudi.log", roudi_dir);
	unlink(path);
	rmdir(roudi_dir);
}

static void iox_on_signal(int sig)
{
	iox_stop();
	signal(sig, SIG_DFL);
	raise(sig);
}

static const char *find_roudi(void)
{
	static char path[4096];
	const char *env = getenv("PATH");
	char *dirs, *d, *save = NULL;

	if (!env || !*env)
		env = "/usr/bin:/bin";
	dirs = strdup(env);
	for (d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		snprintf(path, sizeof(path), "%s/iox-roudi", d);
		if (access(path, X_OK) == 0) {
			free(dirs);
			return path;
		}
	}
	free(dirs);
	return NULL;
}

/* 0 when RouDi is up; otherwise roudi_why says why (and it is not running). */
static int iox_start(void)
{
	const char *roudi = find_roudi();
	char cfg[128], log[128];
	FILE *f;

	main_pid = getpid();
	if (!roudi) {
		snprintf(roudi_why, sizeof(roudi_why),
			 "iox-roudi not found in PATH (Debian package iceoryx)");
		return -1;
	}
	snprintf(roudi_dir, sizeof(roudi_dir), "/tmp/uhp-bench-roudi.XXXXXX");
	if (!mkdtemp(roudi_dir)) {
		snprintf(roudi_why, sizeof(roudi_why), "mkdtemp: %s", strerror(errno));
		return -1;
	}
	snprintf(cfg, sizeof(cfg), "%s/roudi.toml", roudi_dir);
	snprintf(log, sizeof(log), "%s/roudi.log", roudi_dir);
	f = fopen(cfg, "w");
	if (!f) {
		snprintf(roudi_why, sizeof(roudi_why), "%s: %s", cfg, strerror(errno));
		return -1;
	}
	/* Pools for the sizes this program takes (<= 4096), deep enough for
	 * MAX_PRODUCERS full subscriber queues (256) plus loans in flight. */
	fprintf(f, "[general]\nversion = 1\n\n[[segment]]\n");
	for (unsigned sz = 128; sz <= 4096; sz *= 2)
		fprintf(f, "\n[[segment.mempool]]\nsize = %u\ncount = %d\n", sz,
			sz <= 1024 ? 8192 : 4608);
	fclose(f);
	atexit(iox_stop);
	signal(SIGINT, iox_on_signal);
	signal(SIGTERM, iox_on_signal);
	fflush(NULL);
	roudi_pid = fork();
	if (roudi_pid < 0) {
		snprintf(roudi_why, sizeof(roudi_why), "fork: %s", strerror(errno));
		return -1;
	}
	if (roudi_pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		/* -m off: no keep-alive monitoring. A busy producer's
		 * keep-alive thread can miss its beat (2 CPUs, both spinning),
		 * and RouDi would then tear down its live ports under it. */
		execl(roudi, roudi, "-c", cfg, "-l", "info", "-m", "off",
		      (char *)NULL);
		_exit(127);
	}
	/* "RouDi is ready for clients" in its log, within 10 s */
	for (int i = 0; i < 200; i++) {
		char line[512];
		int st;

		usleep(50000);
		if (waitpid(roudi_pid, &st, WNOHANG) == roudi_pid) {
			roudi_pid = 0;
			snprintf(roudi_why, sizeof(roudi_why), "iox-roudi exited (%s %d)",
				 WIFEXITED(st) ? "status" : "signal",
				 WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
			f = fopen(log, "r");	/* its last words */
			while (f && fgets(line, sizeof(line), f)) {
				line[strcspn(line, "\n")] = 0;
				if (*line)
					snprintf(roudi_why + strlen(roudi_why),
						 sizeof(roudi_why) - strlen(roudi_why),
						 "; %.120s", line);
			}
			if (f)
				fclose(f);
			return -1;
		}
		f = fopen(log, "r");
		while (f && fgets(line, sizeof(line), f))
			if (strstr(line, "ready for clients")) {
				fclose(f);
				return 0;
			}
		if (f)
			fclose(f);
	}
	iox_stop();
	snprintf(roudi_why, sizeof(roudi_why), "iox-roudi not ready after 10 s");
	return -1;
}

static unsigned iox_trial;

static int iox_setup(void)
{
	iox_trial++;
	return roudi_pid > 0 ? 0 : -ECHILD;
}

static void iox_teardown(void)
{
}

/* A fresh service per trial: no stale ports of an earlier trial match. */
static void iox_service(char *inst, size_t cap)
{
	snprintf(inst, cap, "trial%u", iox_trial);
}

static void iox_runtime(const char *role, int p)
{
	char name[64];

	snprintf(name, sizeof(name), "uhp-bench-%s%d-%d", role, p, (int)getpid());
	iox_set_loglevel(Iceoryx_LogLevel_Warn);
	iox_runtime_init(name);
}

static void iox_producer(int p)
{
	iox_pub_storage_t storage;
	iox_pub_options_t o;
	unsigned char *buf = calloc(1, S);
	char inst[32];
	iox_pub_t pub;

	iox_runtime("p", p);
	iox_pub_options_init(&o);
	o.historyCapacity = 0;
	o.subscriberTooSlowPolicy = ConsumerTooSlowPolicy_WAIT_FOR_CONSUMER;
	iox_service(inst, sizeof(inst));
	pub = iox_pub_init(&storage, "uhp-bench", inst, "msg", &o);
	for (int i = 0; !iox_pub_has_subscribers(pub); i++) {
		if (i > 20000)	/* 20 s */
			fail("iceoryx: no subscriber", ETIMEDOUT);
		usleep(1000);
	}
	wait_go();
	for (long i = 0; i < per_prod; i++) {
		void *chunk;
		unsigned n = 0;
		enum iox_AllocationResult r;

		stamp(buf, p, (uint64_t)i);
		while ((r = iox_pub_loan_chunk(pub, &chunk, (uint32_t)S)) !=
		       AllocationResult_SUCCESS) {
			if (r != AllocationResult_RUNNING_OUT_OF_CHUNKS)
				fail("iox_pub_loan_chunk", EIO);
			backoff(&n);
		}
		memcpy(chunk, buf, S);
		iox_pub_publish_chunk(pub, chunk);
	}
	/* Do not take the port away under chunks still queued (the consumer
	 * drains at most a queue's worth after our last publish). */
	for (int w = 0; w < 30000 && !__atomic_load_n(&ctl->t1, __ATOMIC_ACQUIRE) &&
			!ctl->why[0]; w++)
		usleep(1000);
	iox_pub_deinit(pub);
	iox_runtime_shutdown();
}

static void iox_consumer(void)
{
	iox_sub_storage_t storage;
	iox_sub_options_t o;
	unsigned char *buf = calloc(1, S);
	char inst[32];
	iox_sub_t sub;

	iox_runtime("c", 0);
	iox_sub_options_init(&o);
	o.queueCapacity = 256;	/* the most iceoryx allows */
	o.historyRequest = 0;
	o.queueFullPolicy = QueueFullPolicy_BLOCK_PRODUCER;
	iox_service(inst, sizeof(inst));
	sub = iox_sub_init(&storage, "uhp-bench", inst, "msg", &o);
	for (int i = 0; iox_sub_get_subscription_state(sub) != SubscribeState_SUBSCRIBED;
	     i++) {
		if (i > 20000)
			fail("iceoryx: not subscribed", ETIMEDOUT);
		usleep(1000);
	}
	wait_go();
	while (got < (uint64_t)total) {
		const void *chunk;
		enum iox_ChunkReceiveResult r = iox_sub_take_chunk(sub, &chunk);

		if (r == ChunkReceiveResult_SUCCESS) {
			memcpy(buf, chunk, S);
			iox_sub_release_chunk(sub, chunk);
			check(buf, S);
		} else if (r == ChunkReceiveResult_NO_CHUNK_AVAILABLE) {
			cpu_relax();
		} else {
			fail("iox_sub_take_chunk", EIO);
		}
	}
	consumer_done();
	if (iox_sub_has_lost_chunks(sub) && !ctl->why[0])
		snprintf(ctl->why, sizeof(ctl->why), "iceoryx reports lost chunks");
	iox_sub_deinit(sub);
	iox_runtime_shutdown();
}
#endif

static struct impl impls[] = {
	{ "uhp", uhp_setup, uhp_producer, uhp_consumer, uhp_teardown, NULL },
	{ "uhp_spin", uhp_setup, uhp_producer, uhp_spin_consumer, uhp_teardown, NULL },
	{ "uhp_excl", uhp_excl_setup, uhp_producer, uhp_spin_consumer, uhp_excl_teardown, NULL },
	{ "uhp_batch", uhp_setup, uhpb_producer, uhpb_consumer, uhp_teardown, NULL },
	{ "uhp_peekb", uhp_setup, uhpb_producer, uhpp_consumer, uhp_teardown, NULL },
	{ "pipe", pipe_setup, fd_producer, pipe_consumer, fds_teardown, NULL },
	{ "seqpacket", seqp_setup, fd_producer, seqp_consumer, fds_teardown, NULL },
	{ "mqueue", mq_setup, mq_producer, mq_consumer, mq_teardown, NULL },
	{ "eventfd_shm", efd_setup, efd_producer, efd_consumer, efd_teardown, NULL },
#ifdef HAVE_CK
	{ "ck_ring", ck_setup, ck_producer, ck_consumer, ck_teardown, NULL },
#else
	{ "ck_ring", NULL, NULL, NULL, NULL, CK_SKIP_WHY },
#endif
#ifdef HAVE_DPDK
	{ "rte_ring", rte_setup, rte_producer, rte_consumer, rte_teardown, NULL },
	{ "rte_ring_ptr", rte_setup, rte_ptr_producer, rte_ptr_consumer, rte_teardown, NULL },
	{ "rte_burst", rte_setup, rte_burst_producer, rte_burst_consumer, rte_teardown, NULL },
#else
	{ "rte_ring", NULL, NULL, NULL, NULL, DPDK_SKIP_WHY },
	{ "rte_ring_ptr", NULL, NULL, NULL, NULL, DPDK_SKIP_WHY },
	{ "rte_burst", NULL, NULL, NULL, NULL, DPDK_SKIP_WHY },
#endif
#ifdef HAVE_ICEORYX
	{ "iceoryx", iox_setup, iox_producer, iox_consumer, iox_teardown, NULL },
#else
	{ "iceoryx", NULL, NULL, NULL, NULL, ICEORYX_SKIP_WHY },
#endif
};
#define NIMPL	((int)(sizeof(impls) / sizeof(impls[0])))
_Static_assert(NIMPL <= BENCH_MAX_IMPLS, "raise BENCH_MAX_IMPLS");

/* ---- one trial ---- */

static pid_t spawn(const struct impl *im, int role, int cpu)
{
	pid_t pid = fork();

	if (pid < 0) {
		perror("fork");
		exit(2);
	}
	if (pid)
		return pid;
	alarm(TRIAL_TIMEOUT_S);		/* a peer that loses messages hangs */
	pin_cpu(cpu);
	if (role < 0)
		im->consumer();
	else
		im->producer(role);
	_exit(0);
}

/* msgs/s, or < 0 on failure (the reason printed). */
/*
 * The speed regime a trial ran in: just before it, a cache line is passed
 * PROBE_TRIPS times between the consumer's CPU and the first producer's
 * (threads of this process, pinned as the trial's processes will be);
 * ns per round trip. These machines change speed several-fold from one
 * minute to the next: a row whose probes moved says so.
 */
#define PROBE_TRIPS	20000

static _Alignas(64) atomic_uint_fast64_t probe_line;

static void *probe_ponger(void *arg)
{
	(void)arg;
	pin_cpu(producer_cpu(0));
	for (uint64_t v = 1; v < 2 * PROBE_TRIPS; v += 2) {
		while (atomic_load_explicit(&probe_line, memory_order_acquire) != v)
			;
		atomic_store_explicit(&probe_line, v + 1, memory_order_release);
	}
	return NULL;
}

static double probe_rtt_ns(void)
{
	cpu_set_t saved;
	pthread_t th;
	uint64_t t0;

	atomic_store(&probe_line, 0);
	if (sched_getaffinity(0, sizeof(saved), &saved) ||
	    pthread_create(&th, NULL, probe_ponger, NULL))
		return 0;
	pin_cpu(consumer_cpu());
	t0 = bench_now_ns();
	for (uint64_t v = 0; v < 2 * PROBE_TRIPS; v += 2) {
		atomic_store_explicit(&probe_line, v + 1, memory_order_release);
		while (atomic_load_explicit(&probe_line, memory_order_acquire) != v + 2)
			;
	}
	t0 = bench_now_ns() - t0;
	pthread_join(th, NULL);
	sched_setaffinity(0, sizeof(saved), &saved);
	return (double)t0 / PROBE_TRIPS;
}

static double trial(const struct impl *im)
{
	pid_t pids[MAX_PRODUCERS + 1];
	int ret, failed = 0;
	double mps;

	memset(ctl, 0, sizeof(*ctl));
	ret = im->setup();
	if (ret < 0) {
		printf("# %s: setup failed: %s\n", im->name, strerror(-ret));
		return -1;
	}
	pids[0] = spawn(im, -1, consumer_cpu());
	for (int p = 0; p < K; p++)	/* the CPUs other than the consumer's */
		pids[p + 1] = spawn(im, p, producer_cpu(p));
	while (atomic_load(&ctl->ready) < K + 1) {
		int st;

		if (waitpid(-1, &st, WNOHANG) > 0) {	/* died in setup */
			failed = 1;
			break;
		}
		usleep(100);
	}
	ctl->t0 = bench_now_ns();
	atomic_store(&ctl->go, 1);
	for (int i = 0; i <= K; i++) {
		int st;

		if (failed)
			kill(pids[i], SIGKILL);
		if (waitpid(pids[i], &st, 0) < 0 || !WIFEXITED(st) ||
		    WEXITSTATUS(st) != 0) {
			if (!failed && WIFSIGNALED(st))
				printf("# %s: %s killed by signal %d\n", im->name,
				       i ? "a producer" : "the consumer",
				       WTERMSIG(st));
			failed = 1;
		}
	}
	im->teardown();
	if (failed || ctl->bad || ctl->received != (uint64_t)total || ctl->why[0]) {
		printf("# %s: FAILED (%s%sreceived %llu of %ld, %llu bad)\n",
		       im->name, ctl->why, ctl->why[0] ? "; " : "",
		       (unsigned long long)ctl->received, total,
		       (unsigned long long)ctl->bad);
		return -1;
	}
	mps = (double)total * 1e9 / (double)(ctl->t1 - ctl->t0);
	return mps;
}

/* Is name one of the comma-separated names in list (exactly)? */
static bool only_has(const char *list, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = list;;) {
		size_t len = strcspn(p, ",");

		if (len == n && !strncmp(p, name, n))
			return true;
		if (!p[len])
			return false;
		p += len + 1;
	}
}

/* --only: every name must be an implementation's; else exit(2). */
static void check_only(const char *list)
{
	for (const char *p = list;;) {
		size_t len = strcspn(p, ",");
		int i;

		for (i = 0; i < NIMPL; i++)
			if (strlen(impls[i].name) == len &&
			    !strncmp(p, impls[i].name, len))
				break;
		if (i == NIMPL) {
			fprintf(stderr, "bench_throughput: --only: unknown "
				"implementation \"%.*s\"; valid names:", (int)len, p);
			for (i = 0; i < NIMPL; i++)
				fprintf(stderr, "%s %s", i ? "," : "", impls[i].name);
			fprintf(stderr, "\n");
			exit(2);
		}
		if (!p[len])
			return;
		p += len + 1;
	}
}

static void usage(void)
{
	fprintf(stderr, "usage: bench_throughput [--messages N] [--size S] "
		"[--producers K] [--rounds R] [--only a,b,...] [--cores p|e|any] "
		"[--append] [--dev]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static double samples[BENCH_MAX_IMPLS][BENCH_MAX_REPS];
	static double probes[BENCH_MAX_IMPLS][BENCH_MAX_REPS];
	long n_msgs = 2000000, rounds = 5;
	const char *only = NULL, *cores = "any";
	char cores_what[64], cpus_desc[128];
	bool append = false, broken[BENCH_MAX_IMPLS] = { 0 };
	double mps[BENCH_MAX_IMPLS];
	int active[BENCH_MAX_IMPLS], na = 0, uhp_i = -1, base;
	FILE *jf;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--append")) {
			append = true;
			continue;
		}
		if (!strcmp(a, "--dev")) {
			use_dev = true;
			continue;
		}
		if (i + 1 >= argc)
			usage();
		if (!strcmp(a, "--messages"))
			n_msgs = (long)bench_arg_count(a, argv[++i], 1, MAX_MESSAGES);
		else if (!strcmp(a, "--size"))
			S = (size_t)bench_arg_size(a, argv[++i], 16, 4096);
		else if (!strcmp(a, "--producers"))
			K = (int)bench_arg_count(a, argv[++i], 1, MAX_PRODUCERS);
		else if (!strcmp(a, "--rounds"))
			rounds = (long)bench_arg_count(a, argv[++i], 1, BENCH_MAX_REPS);
		else if (!strcmp(a, "--only"))
			only = argv[++i];
		else if (!strcmp(a, "--cores"))
			cores = argv[++i];
		else
			usage();
	}
	if (S < 16 || S > 4096 || K < 1 || K > MAX_PRODUCERS || n_msgs < K ||
	    rounds < 1 || rounds > BENCH_MAX_REPS) {
		fprintf(stderr, "want 16 <= size <= 4096 (PIPE_BUF), 1 <= producers "
			"<= %d, messages >= producers, 1 <= rounds <= %d\n",
			MAX_PRODUCERS, BENCH_MAX_REPS);
		return 2;
	}
	if (only)
		check_only(only);
	per_prod = n_msgs / K;
	total = per_prod * K;
	ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (ncpu < 1)
		ncpu = 1;
	select_cpus(cores, cores_what, sizeof(cores_what));
	{
		size_t off = 0;

		for (int p = 0; p < K && p < nsel && off < sizeof(cpus_desc); p++)
			off += (size_t)snprintf(cpus_desc + off, sizeof(cpus_desc) - off,
						"%s%d", p ? "," : "", producer_cpu(p));
	}
	ctl = shared_alloc(4096);
	mq_probe();
	if (use_dev) {
		dev_fd = uhp_open();
		if (dev_fd < 0) {
			fprintf(stderr, "bench_throughput: --dev: cannot open /dev/uhp: "
				"%s (is uhp.ko loaded?)\n", strerror(-dev_fd));
			return 2;
		}
	}

	for (int i = 0; i < NIMPL; i++) {
		if (only && !only_has(only, impls[i].name))
			continue;
		if (impls[i].skip) {
			printf("# %s: skipped (%s)\n", impls[i].name, impls[i].skip);
			continue;
		}
		if (impls[i].setup == mq_setup && !mq_depth) {
			printf("# mqueue: skipped (cannot create a queue of %zu-byte "
			       "messages)\n", S);
			continue;
		}
#ifdef HAVE_ICEORYX
		if (impls[i].setup == iox_setup) {
			if (iox_start() < 0) {
				printf("# iceoryx: skipped (%s)\n", roudi_why);
				continue;
			}
			printf("# iceoryx: RouDi pid %d, config %s/roudi.toml\n",
			       (int)roudi_pid, roudi_dir);
		}
#endif
		if (!strcmp(impls[i].name, "uhp"))
			uhp_i = na;
		active[na++] = i;
	}
	printf("# %ld messages of %zu bytes from %d producer process(es) to 1 "
	       "consumer; %d CPUs, cores %s: consumer on CPU %d, producers on CPU %s\n",
	       total, S, K, ncpu, cores_what, consumer_cpu(), cpus_desc);
	if (mq_depth)
		printf("# mqueue depth %ld (fs/mqueue/msg_max %ld; raise it, e.g. "
		       "sysctl fs.mqueue.msg_max=%d, for a queue as deep as the "
		       "rings)\n", mq_depth, mq_msg_max(), RING_ENTRIES);
	printf("# ring peers: %d entries; ck_ring: one SPSC ring per producer; "
	       "rte_ring: %s\n", RING_ENTRIES, K == 1 ? "SP/SC" : "MP(RTS)/SC");
	printf("# uhp: %s, %llu KiB per ring\n", use_dev ?
	       "/dev/uhp channel, a ring per NUMA node, each process sends into "
	       "its node's ring" : "arena (shared memory, no module)",
	       (unsigned long long)UHP_DEFAULT_RING_SIZE >> 10);

	for (long r = 0; r < rounds; r++)
		for (int j = 0; j < na; j++) {
			int a = (int)((j + r) % na);

			if (broken[a])
				continue;
			probes[a][r] = probe_rtt_ns();
			samples[a][r] = trial(&impls[active[a]]);
			if (samples[a][r] < 0)
				broken[a] = true;
		}

	/*
	 * Ratios are paired: each round's msgs/s over the base's in the same
	 * round (the same speed regime), then the median of those. The base
	 * is uhp when it ran, else the first implementation that did.
	 */
	base = uhp_i >= 0 && !broken[uhp_i] ? uhp_i : -1;
	for (int a = 0; a < na && base < 0; a++)
		if (!broken[a])
			base = a;
	printf("throughput: median of %ld interleaved rounds; vs %s: median of "
	       "the rounds' paired msgs/s ratios (>1 = faster)\n", rounds,
	       base >= 0 ? impls[active[base]].name : "-");
	printf("%-12s %5s %3s | %14s %10s %8s | %s\n", "impl", "size", "K", "msgs/s",
	       "MB/s", "vs base", "probe ns: median (min-max)");
	/* bench_median() sorts: medians of copies, the rounds stay paired */
	for (int a = 0; a < na; a++) {
		double v[BENCH_MAX_REPS];

		memcpy(v, samples[a], sizeof(v[0]) * (size_t)rounds);
		mps[a] = broken[a] ? 0 : bench_median(v, (int)rounds);
	}
	jf = bench_open_jsonl_mode("throughput", append);
	for (int a = 0; a < na; a++) {
		double pr[BENCH_MAX_REPS], ratio = 0, pmed, pmin, pmax;

		if (base >= 0 && !broken[a]) {
			for (long r = 0; r < rounds; r++)
				pr[r] = samples[base][r] > 0 ?
					samples[a][r] / samples[base][r] : 0;
			ratio = bench_median(pr, (int)rounds);
		}
		memcpy(pr, probes[a], sizeof(pr[0]) * (size_t)rounds);
		pmed = bench_median(pr, (int)rounds);
		pmin = pr[0];
		pmax = pr[rounds - 1];

		if (broken[a]) {
			printf("%-12s %5zu %3d | %14s\n", impls[active[a]].name, S, K,
			       "FAILED");
			continue;
		}
		printf("%-12s %5zu %3d | %14.0f %10.1f %7.2fx | %.0f (%.0f-%.0f)\n",
		       impls[active[a]].name, S, K, mps[a], mps[a] * (double)S / 1e6,
		       ratio, pmed, pmin, pmax);
		if (jf)
			fprintf(jf, "{\"bench\":\"throughput\",\"impl\":\"%s\","
				"\"channel\":\"%s\",\"size\":%zu,\"producers\":%d,"
				"\"msgs_per_s\":%.0f,\"ratio_vs\":\"%s\","
				"\"ratio\":%.3f,\"probe_rtt_ns\":%.0f,"
				"\"probe_rtt_ns_min\":%.0f,\"probe_rtt_ns_max\":%.0f}\n",
				impls[active[a]].name, use_dev ? "dev" : "arena", S, K,
				mps[a], base >= 0 ? impls[active[base]].name : "",
				ratio, pmed, pmin, pmax);
	}
	if (jf)
		fclose(jf);
	return 0;
}
