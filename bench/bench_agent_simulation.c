// SPDX-License-Identifier: MIT
/*
 * bench_agent_simulation: N agents pass messages among themselves until
 * exactly M deliveries have happened, on libuhp's agent runtime and on
 * ZeroMQ ipc:// with the same traffic pattern, in one run.
 *
 *   bench_agent_simulation [--agents N] [--messages M]
 *                          [--pattern realistic|uniform|hotspot|all]
 *                          [--size P] [--inflight F] [--rounds R]
 *                          [--seed S] [--only uhp,zmq,zmq_pool]
 *                          [--ring BYTES] [--dev] [--append]
 *
 * Defaults: 100 agents, 200000 messages, all three patterns, 128-byte
 * payloads, 8 tokens per agent, 1 round, uhp and zmq (zmq_pool only when
 * named in --only), uhp inboxes sized to hold 2T records (--ring BYTES, a
 * power of two, overrides). Prints a table (msgs/s, CPUs used, msgs per
 * CPU-second, uhp's msgs/s over each peer's) and writes JSON lines into
 * $BENCH_OUT/agentsim.jsonl (default ../build/bench). Exit
 * status 0 only if every implementation that ran delivered all M messages,
 * none lost, duplicated, reordered or damaged; 1 otherwise; 2 on a usage or
 * setup error.
 *
 * ---- The simulation ----
 *
 * A message is a 32-byte header plus P payload bytes:
 *   kind (DATA), src, dst, seq, token, hop, budget, crc
 * seq counts the messages src sent to dst (so it checks FIFO per (src,dst)
 * pair), token names the chain the message belongs to, budget is the
 * number of deliveries still owed by this message and everything it will
 * cause, crc is the CRC32C (uhp_crc32c) of the header (crc excluded) and
 * the payload. The payload bytes are a hash of the token, written once when
 * the token is injected and carried along unchanged.
 *
 * T = min(N * F, M) tokens are injected at the start, token i by agent
 * i % N, with budgets M / T (+1 for the first M % T), so the budgets add up
 * to M. An agent that receives a message does the same work on every
 * implementation:
 *   1. checks it: length, kind, dst == itself, src in range, seq equal to
 *      the next one expected from src, token in range, first payload word
 *      equal to the token's hash, and the CRC32C over all 32 + P bytes
 *      (this CRC is the fixed per-message work);
 *   2. counts the delivery; budget - 1 deliveries remain for the chain;
 *   3. if none remain, absorbs the token; otherwise forwards it: picks
 *      destination(s) by the pattern, copies the payload into a new message
 *      (src = itself, seq = its next seq for that destination, hop + 1),
 *      seals it with a fresh CRC32C and sends it.
 * So exactly M messages are delivered; the run ends when the last chain is
 * absorbed (a global count of live messages reaches 0; it changes only
 * when a chain is absorbed or a broadcast adds leaves, not per message).
 * At the end every pair's sent count must equal its received count and the
 * deliveries must add up to M; any failed check aborts the run as FAILED.
 *
 * ---- Patterns ----
 *
 * Agent a decides its k-th destination from its own generator (splitmix64
 * seeded with seed ^ (a + 1) * golden ratio, two draws r1, r2 per
 * decision), so agent a's sequence of destinations is the same on every
 * implementation; which chain it forwards at its k-th decision depends on
 * arrival order, which no run controls. A destination equal to the sender
 * is replaced as said below; nobody sends to itself.
 *
 *   uniform    d = r2 mod (N - 1), skipping a: uniform over the others.
 *   hotspot    H = ceil(N / 10) hot agents, ids 0..H-1. With probability
 *              0.8 (r1 mod 100 < 80) d = r2 mod H, else d = r2 mod N;
 *              d == a becomes (a + 1) mod N. About 80% of the messages go
 *              to 10% of the agents.
 *   realistic  Agent 0 is a router; agents 1..N-1 form teams of 10
 *              consecutive ids (the last may be smaller), the first of each
 *              its lead, each team a pipeline ring (stage i hands to stage
 *              i + 1, the last stage back to the lead). A team agent sends
 *              (r1 mod 100): < 80 to its next stage, < 90 to a random
 *              teammate (r2), < 97 to a random agent anywhere (r2, uniform
 *              over the others), else to the router; d == a becomes the
 *              router. The router broadcasts: the chain goes on to lead
 *              number k mod teams (k: its decision count) and every other
 *              lead gets a leaf copy with budget 1 (absorbed on delivery),
 *              as many leaves as the chain's remaining budget allows and
 *              as keep the messages alive at most 2T (fewer, or none,
 *              while a backlog is that large). So traffic is mostly
 *              neighbour to neighbour, with 3% fan-out through one hot
 *              router. At most 2T messages exist at any time (T in the
 *              other patterns).
 *
 * ---- Implementations ----
 *
 * Every (pattern, implementation, round) is one trial in a child process
 * (fresh channels or sockets, the child's CPU time is its own); the parent
 * cleans up what a dead child leaves (arena names, the ipc:// directory)
 * and kills a child that runs past TRIAL_TIMEOUT_S. Trials of one pattern
 * are interleaved over the rounds; the figure is the median msgs/s, timed
 * from the release of the agents (all connected, nothing in flight) to the
 * absorption of the last chain. CPU is the process's user + system time
 * over that interval, in CPUs (1.00 = one CPU busy all along).
 *
 *   uhp   libuhp's agent runtime (uhp_runtime.h): one agent per inbox
 *         channel (arenas; /dev/uhp channels with --dev), a pool of
 *         workers pinned by topology (one per CPU) running agents from
 *         work-stealing deques, uhp_agent_send() into the destination's
 *         inbox, 32 records per handler call (the runtime's default). An
 *         inbox is one ring, on the nodes with CPUs in turn (agent a on
 *         the (a mod nodes)-th; every sender goes through the inbox's one
 *         handle, so one ring is all it uses), big enough for every
 *         message that can be alive at once (2T records, so inboxes
 *         never fill). With --ring smaller, a send that finds its inbox
 *         full is kept in the agent's outbox and the handler defers the
 *         record that made it and the ones after (a positive return, see
 *         uhp_agent_fn): the runtime hands them again later, behind other
 *         work, and no handler ever waits for room.
 *   zmq   ZeroMQ ipc://, the idiomatic peer-to-peer design: one thread per
 *         agent, each owning one ROUTER socket bound at ipc://DIR/<id> with
 *         its routing id; agent a connects to every b > a (routing id of
 *         the peer set with ZMQ_CONNECT_ROUTING_ID), so each pair shares one
 *         bidirectional connection and a send is [peer id][message] on the
 *         agent's single socket. Why ROUTER/ROUTER and not a PUSH per
 *         destination: the latter needs N(N-1) sockets and connections (at
 *         100 agents ~30000 descriptors, above this host's 20000 limit and
 *         ZMQ_MAX_SOCKETS), ROUTER pairs need N sockets and N(N-1)/2
 *         connections, and a pipe per pair keeps per-pair FIFO either way.
 *         ZMQ_ROUTER_MANDATORY (nothing dropped silently), high-water marks
 *         0 (no limit: the simulation bounds what is in flight), LINGER 0,
 *         one I/O thread (ZMQ_IO_THREADS; AGENTSIM_ZMQ_IO sets it). Before
 *         the clock starts every agent has sent a hello to every peer and
 *         received one from each, so all connections exist and are warm.
 *         The end is zmq_ctx_shutdown(): blocked receives return ETERM, the
 *         threads close their sockets, the context is terminated and the
 *         directory removed. Setting up the 4950 connections of 100 agents
 *         takes ZeroMQ several seconds here (not timed).
 *   zmq_pool  the same sockets and connections, but as many agent threads
 *         as CPUs, like uhp's workers, each zmq_poll()ing the sockets of
 *         its agents (a mod threads) and taking up to 64 messages from
 *         each ready one: whether ZeroMQ loses by its thread per agent
 *         rather than by its transport. Only with --only ...,zmq_pool.
 *
 * --dev: the uhp side uses /dev/uhp channels. The module's default
 * max_channels_per_user (64) is below 100 agents: run as root, the bench
 * raises /sys/module/uhp/parameters/max_channels_per_user to agents + 16
 * and restores it at the end (else it says what to do). The ZeroMQ peer
 * runs where the bench was built with it (-DHAVE_ZMQ); a build without it
 * (the static guest binary: libzmq does not link statically on Debian)
 * runs uhp only and says so.
 */
#include "bench_common.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "uhp.h"
#include "uhp_runtime.h"

#ifdef HAVE_ZMQ
#include <zmq.h>
#endif

#define MAX_AGENTS	1024
#define MAX_ROUNDS	15
#define HDR_LEN		32
#define KIND_DATA	0x41474e54u	/* a magic: a data message */
#define KIND_KICK	0x4b43494bu	/* "KICK": uhp's release */
#define TEAM_SIZE	10
#define TRIAL_TIMEOUT_S	300

enum pattern { PAT_UNIFORM, PAT_HOTSPOT, PAT_REALISTIC, NPAT };
static const char *const pat_names[NPAT] = { "uniform", "hotspot", "realistic" };

/* ---- configuration (set in main, read by every trial) ---- */

static unsigned N = 100;		/* agents */
static uint64_t M = 200000;		/* deliveries */
static unsigned P = 128;		/* payload bytes */
static unsigned F = 8;			/* tokens per agent */
static uint64_t seed = 1;
static bool use_dev;
static enum pattern pat;
static unsigned T;			/* tokens */
static unsigned MSG_LEN;		/* HDR_LEN + P */

/* ---- what a trial child reports (shared page) ---- */

struct result {
	uint64_t t0, t1;		/* release, last absorption */
	uint64_t cpu_ns;		/* user + system over [t0, t1] */
	uint64_t delivered;
	uint64_t send_retries;		/* sends that found the inbox full */
	int ok;
	char why[240];			/* first failure */
	char note[240];			/* what the implementation used */
};
static struct result *res;

static void set_why(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static pthread_mutex_t why_lock = PTHREAD_MUTEX_INITIALIZER;

static void set_why(const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&why_lock);
	if (!res->why[0]) {
		va_start(ap, fmt);
		vsnprintf(res->why, sizeof(res->why), fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&why_lock);
}

/* ---- message layout ---- */

struct msg_hdr {
	uint32_t kind;
	uint32_t src;
	uint32_t dst;
	uint32_t seq;		/* messages src sent to dst before this one */
	uint32_t token;
	uint32_t hop;
	uint32_t budget;	/* deliveries this message and its chain owe */
	uint32_t crc;		/* CRC32C of bytes [0, 28) and the payload */
};
_Static_assert(sizeof(struct msg_hdr) == HDR_LEN, "header layout");

static inline uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static inline uint64_t token_word(uint32_t token, unsigned j)
{
	uint64_t s = seed * 0x632be59bd9b4e019ULL ^ ((uint64_t)token << 20 | j);

	return splitmix(&s);
}

static inline uint32_t msg_crc(const unsigned char *m)
{
	uint32_t c = uhp_crc32c(~0U, m, offsetof(struct msg_hdr, crc));

	return uhp_crc32c(c, m + HDR_LEN, P) ^ ~0U;
}

/* ---- the agents' common logic ---- */

/* Deliver one message to agent dst; 0, or -errno (the trial fails). */
typedef int (*send_fn)(void *ctx, unsigned dst, const void *msg, unsigned len);

struct agent {
	unsigned id;
	uint64_t rng;
	uint64_t decisions;
	uint64_t delivered;
	uint64_t send_retries;
	uint32_t *next_seq;	/* [N]: next seq this agent sends to each */
	uint32_t *expect;	/* [N]: next seq expected from each */
	unsigned char *out;	/* MSG_LEN scratch for the forwarded message */
	void *impl;		/* the implementation's per-agent state */
} __attribute__((aligned(64)));

struct sim {
	struct agent *agents;
	uint32_t *seq_mem;		/* 2 * N * N */
	unsigned char *out_mem;
	_Alignas(64) atomic_long live;	/* messages in flight or being handled */
	_Alignas(64) atomic_int failed;
	sem_t done;			/* posted once: all absorbed, or failed */
	atomic_int done_posted;
	unsigned nteams;
};
static struct sim S;

static void sim_finish(void)
{
	if (atomic_exchange(&S.done_posted, 1) == 0)
		sem_post(&S.done);
}

static void sim_fail(void)
{
	atomic_store(&S.failed, 1);
	sim_finish();
}

static int sim_init(void)
{
	size_t nn = (size_t)N * N;

	memset(&S, 0, sizeof(S));
	S.agents = aligned_alloc(64, sizeof(struct agent) * N);
	S.seq_mem = calloc(2 * nn, sizeof(uint32_t));
	S.out_mem = aligned_alloc(64, (size_t)N * ((MSG_LEN + 63) & ~63u));
	if (!S.agents || !S.seq_mem || !S.out_mem)
		return -ENOMEM;
	memset(S.agents, 0, sizeof(struct agent) * N);
	for (unsigned a = 0; a < N; a++) {
		struct agent *ag = &S.agents[a];

		ag->id = a;
		ag->rng = seed ^ (uint64_t)(a + 1) * 0x9e3779b97f4a7c15ULL;
		ag->next_seq = S.seq_mem + (size_t)a * N;
		ag->expect = S.seq_mem + nn + (size_t)a * N;
		ag->out = S.out_mem + (size_t)a * ((MSG_LEN + 63) & ~63u);
	}
	atomic_store(&S.live, (long)T);
	S.nteams = N > 1 ? (N - 1 + TEAM_SIZE - 1) / TEAM_SIZE : 0;
	return sem_init(&S.done, 0, 0) ? -errno : 0;
}

static void sim_free(void)
{
	sem_destroy(&S.done);
	free(S.agents);
	free(S.seq_mem);
	free(S.out_mem);
}

/* Agent a's next destination (not for the realistic router). */
static unsigned pick(struct agent *ag)
{
	unsigned a = ag->id, d;
	uint64_t r1 = splitmix(&ag->rng), r2 = splitmix(&ag->rng);

	ag->decisions++;
	switch (pat) {
	case PAT_UNIFORM:
		d = (unsigned)(r2 % (N - 1));
		return d >= a ? d + 1 : d;
	case PAT_HOTSPOT: {
		unsigned h = (N + 9) / 10;

		d = r1 % 100 < 80 ? (unsigned)(r2 % h) : (unsigned)(r2 % N);
		return d == a ? (a + 1) % N : d;
	}
	default: {
		unsigned t = (a - 1) / TEAM_SIZE, lead = 1 + t * TEAM_SIZE;
		unsigned end = lead + TEAM_SIZE < N ? lead + TEAM_SIZE : N;
		unsigned r = (unsigned)(r1 % 100);

		if (r < 80)
			d = a + 1 < end ? a + 1 : lead;
		else if (r < 90)
			d = lead + (unsigned)(r2 % (end - lead));
		else if (r < 97) {
			d = (unsigned)(r2 % (N - 1));
			d = d >= a ? d + 1 : d;
		} else
			d = 0;
		return d == a ? 0 : d;
	}
	}
}

static int send_one(struct agent *ag, unsigned dst, const unsigned char *payload,
		    uint32_t token, uint32_t hop, uint32_t budget, send_fn send,
		    void *ctx)
{
	unsigned char *m = ag->out;
	struct msg_hdr h = {
		.kind = KIND_DATA, .src = ag->id, .dst = dst,
		.seq = ag->next_seq[dst]++, .token = token, .hop = hop,
		.budget = budget,
	};

	memcpy(m, &h, HDR_LEN);
	if (payload != m + HDR_LEN)
		memcpy(m + HDR_LEN, payload, P);
	h.crc = msg_crc(m);
	memcpy(m + offsetof(struct msg_hdr, crc), &h.crc, 4);
	return send(ctx, dst, m, MSG_LEN);
}

/*
 * Send a chain that still owes 'remaining' (>= 1) deliveries on from agent
 * ag: one message, or the router's broadcast.
 */
static int forward(struct agent *ag, const unsigned char *payload, uint32_t token,
		   uint32_t hop, uint32_t remaining, send_fn send, void *ctx)
{
	unsigned first, leaves;
	int ret;

	if (pat != PAT_REALISTIC || ag->id != 0)
		return send_one(ag, pick(ag), payload, token, hop, remaining, send,
				ctx);
	/* the router: the chain to one lead, leaves (budget 1) to the others */
	first = (unsigned)(ag->decisions++ % S.nteams);
	splitmix(&ag->rng);
	splitmix(&ag->rng);
	leaves = S.nteams - 1 < remaining - 1 ? S.nteams - 1 : remaining - 1;
	/* Fan-out only while fewer than 2T messages live: what is in flight
	 * stays bounded. Only this agent adds to live, one run at a time, so
	 * the check cannot be overtaken. */
	{
		long live = atomic_load_explicit(&S.live, memory_order_relaxed);
		long room = 2L * T > live ? 2L * T - live : 0;

		if ((long)leaves > room)
			leaves = (unsigned)room;
	}
	if (leaves)
		atomic_fetch_add_explicit(&S.live, (long)leaves,
					  memory_order_relaxed);
	ret = send_one(ag, 1 + first * TEAM_SIZE, payload, token, hop,
		       remaining - leaves, send, ctx);
	for (unsigned i = 1; !ret && i <= leaves; i++) {
		unsigned lead = 1 + (first + i) % S.nteams * TEAM_SIZE;

		ret = send_one(ag, lead, payload, token, hop, 1, send, ctx);
	}
	return ret;
}

static void absorb(void)
{
	if (atomic_fetch_sub_explicit(&S.live, 1, memory_order_acq_rel) == 1) {
		res->t1 = bench_now_ns();
		sim_finish();
	}
}

/* Inject agent ag's tokens (ag->id, ag->id + N, ... < T). */
static int agent_start(struct agent *ag, send_fn send, void *ctx)
{
	unsigned char *pl = ag->out + HDR_LEN;
	uint64_t base = M / T, extra = M % T;

	for (unsigned tk = ag->id; tk < T; tk += N) {
		uint32_t budget = (uint32_t)(base + (tk < extra));
		int ret;

		for (unsigned j = 0; j < P / 8; j++) {
			uint64_t w = token_word(tk, j);

			memcpy(pl + 8 * j, &w, 8);
		}
		ret = forward(ag, pl, tk, 0, budget, send, ctx);
		if (ret < 0) {
			set_why("agent %u: send: %s", ag->id, strerror(-ret));
			sim_fail();
			return ret;
		}
	}
	return 0;
}

/* Handle one received message; 0, or -1 after failing the trial. */
static int agent_handle(struct agent *ag, const unsigned char *m, size_t len,
			send_fn send, void *ctx)
{
	struct msg_hdr h;
	uint64_t w0;
	int ret;

	if (len != MSG_LEN) {
		set_why("agent %u: message of %zu bytes, want %u", ag->id, len,
			MSG_LEN);
		goto bad;
	}
	memcpy(&h, m, HDR_LEN);
	if (h.kind != KIND_DATA || h.dst != ag->id || h.src >= N ||
	    h.token >= T || h.budget == 0) {
		set_why("agent %u: bad header (kind %#x src %u dst %u token %u "
			"budget %u)", ag->id, h.kind, h.src, h.dst, h.token,
			h.budget);
		goto bad;
	}
	if (msg_crc(m) != h.crc) {
		set_why("agent %u: CRC mismatch in message %u from %u", ag->id,
			h.seq, h.src);
		goto bad;
	}
	if (h.seq != ag->expect[h.src]) {
		set_why("agent %u: from %u got seq %u, want %u (%s)", ag->id,
			h.src, h.seq, ag->expect[h.src],
			h.seq < ag->expect[h.src] ? "duplicate/reordered" : "lost");
		goto bad;
	}
	memcpy(&w0, m + HDR_LEN, 8);
	if (P >= 8 && w0 != token_word(h.token, 0)) {
		set_why("agent %u: payload of token %u is not its own", ag->id,
			h.token);
		goto bad;
	}
	ag->expect[h.src]++;
	ag->delivered++;
	if (h.budget == 1) {
		absorb();
		return 0;
	}
	ret = forward(ag, m + HDR_LEN, h.token, h.hop + 1, h.budget - 1, send, ctx);
	if (ret < 0) {
		set_why("agent %u: send: %s", ag->id, strerror(-ret));
		goto bad;
	}
	return 0;
bad:
	sim_fail();
	return -1;
}

/* After the run: every pair's counts agree, deliveries add up to M. */
static bool sim_verify(void)
{
	uint64_t total = 0;

	for (unsigned a = 0; a < N; a++)
		total += S.agents[a].delivered;
	res->delivered = total;
	if (atomic_load(&S.failed))
		return false;
	for (unsigned s = 0; s < N; s++)
		for (unsigned d = 0; d < N; d++)
			if (S.agents[s].next_seq[d] != S.agents[d].expect[s]) {
				set_why("pair %u->%u: %u sent, %u received", s, d,
					S.agents[s].next_seq[d],
					S.agents[d].expect[s]);
				return false;
			}
	if (total != M) {
		set_why("%" PRIu64 " deliveries, want %" PRIu64, total, M);
		return false;
	}
	return true;
}

static uint64_t cpu_now_ns(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000ULL +
	       (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000ULL;
}

/* ---- ZeroMQ ipc:// ---- */

static char ipc_dir[256];	/* made by the parent per trial */

/* N(N-1)/2 connections with a descriptor at each end, a mailbox (eventfd)
 * per socket, and some slack for the context. */
static uint64_t zmq_fds_needed(void)
{
	return (uint64_t)N * (N - 1) + 2ULL * N + 64;
}

#ifdef HAVE_ZMQ
struct zagent {
	void *sock;
	unsigned char *rx;
	uint64_t retries;
	/* setup: hellos sent to / received from each agent */
	unsigned char *sent, *got;
	unsigned nsent, ngot;
};

struct zthread {
	pthread_t th;
	unsigned first;		/* its agents: first, first + W, ... < N */
};

static void *zctx;
static struct zagent *zag;
static unsigned zW;		/* threads; N: one per agent */
static pthread_barrier_t zbar;
static atomic_int zready;

static void zid(unsigned a, unsigned char id[5])
{
	id[0] = 'a';		/* a routing id must not start with 0 */
	memcpy(id + 1, &a, 4);
}

static int zsend(void *ctx, unsigned dst, const void *msg, unsigned len)
{
	struct zagent *z = ctx;
	unsigned char id[5];

	zid(dst, id);
	for (;;) {
		if (zmq_send(z->sock, id, 5, ZMQ_SNDMORE) == 5 &&
		    zmq_send(z->sock, msg, len, 0) == (int)len)
			return 0;
		if (errno != EINTR && errno != EAGAIN)
			return -errno;
		z->retries++;
	}
}

static int zsetopt(void *s, int opt, int v)
{
	return zmq_setsockopt(s, opt, &v, sizeof(v)) ? -errno : 0;
}

/* Agent a's socket: options, routing id, bound at ipc://DIR/a. */
static int zbind(unsigned a)
{
	struct zagent *z = &zag[a];
	unsigned char id[5];
	char ep[320];
	int ret;

	zid(a, id);
	z->sock = zmq_socket(zctx, ZMQ_ROUTER);
	if (!z->sock)
		return -errno;
	snprintf(ep, sizeof(ep), "ipc://%s/%u", ipc_dir, a);
	if ((ret = zsetopt(z->sock, ZMQ_ROUTER_MANDATORY, 1)) ||
	    (ret = zsetopt(z->sock, ZMQ_SNDHWM, 0)) ||
	    (ret = zsetopt(z->sock, ZMQ_RCVHWM, 0)) ||
	    (ret = zsetopt(z->sock, ZMQ_LINGER, 0)))
		return ret;
	if (zmq_setsockopt(z->sock, ZMQ_ROUTING_ID, id, 5) ||
	    zmq_bind(z->sock, ep))
		return -errno;
	return 0;
}

/* Agent a connects to every b > a (the pair's one connection). */
static int zconnect(unsigned a)
{
	char ep[320];

	for (unsigned b = a + 1; b < N; b++) {
		unsigned char pid[5];

		zid(b, pid);
		snprintf(ep, sizeof(ep), "ipc://%s/%u", ipc_dir, b);
		if (zmq_setsockopt(zag[a].sock, ZMQ_CONNECT_ROUTING_ID, pid, 5) ||
		    zmq_connect(zag[a].sock, ep))
			return -errno;
	}
	return 0;
}

/* One pass of agent a's hellos: send what can go, take what came. Returns
 * the progress made (>= 0), or -errno. */
static int zhello_step(unsigned a)
{
	struct zagent *z = &zag[a];
	unsigned char id[5], buf[16];
	unsigned before = z->nsent + z->ngot;

	for (unsigned b = 0; b < N && z->nsent < N; b++) {
		if (z->sent[b])
			continue;
		zid(b, id);
		if (zmq_send(z->sock, id, 5, ZMQ_SNDMORE | ZMQ_DONTWAIT) == 5) {
			if (zmq_send(z->sock, "hello", 5, 0) != 5)
				return -errno;
			z->sent[b] = 1;
			z->nsent++;
		} else if (errno != EHOSTUNREACH && errno != EAGAIN) {
			return -errno;
		}
	}
	while (zmq_recv(z->sock, id, 5, ZMQ_DONTWAIT) == 5) {
		unsigned from;

		if (zmq_recv(z->sock, buf, sizeof(buf), 0) != 5)
			return -EPROTO;
		memcpy(&from, id + 1, 4);
		if (from >= N || z->got[from])
			return -EPROTO;
		z->got[from] = 1;
		z->ngot++;
	}
	return (int)(z->nsent + z->ngot - before);
}

/*
 * Hello to every peer and one from each, for each of this thread's agents:
 * then all connections are up and warm.
 */
static int zhello(const struct zthread *t, zmq_pollitem_t *items, unsigned n)
{
	uint64_t deadline = bench_now_ns() + 120ULL * 1000000000ULL;
	int wait_ms = 1;

	for (unsigned a = t->first; a < N; a += zW) {
		struct zagent *z = &zag[a];

		z->sent = calloc(N, 1);
		z->got = calloc(N, 1);
		if (!z->sent || !z->got)
			return -ENOMEM;
		z->sent[a] = z->got[a] = 1;
		z->nsent = z->ngot = 1;
	}
	for (;;) {
		unsigned done = 0, progress = 0, i = 0;

		for (unsigned a = t->first; a < N; a += zW, i++) {
			int ret = zhello_step(a);

			if (ret < 0)
				return ret;
			progress += (unsigned)ret;
			done += zag[a].nsent == N && zag[a].ngot == N;
			items[i] = (zmq_pollitem_t){ .socket = zag[a].sock,
						     .events = ZMQ_POLLIN };
		}
		if (done == n)
			break;
		if (bench_now_ns() > deadline)
			return -ETIMEDOUT;
		/* Back off while the I/O thread makes the connections:
		 * threads retrying every peer at once would starve it. */
		wait_ms = progress ? 4 : wait_ms < 64 ? 2 * wait_ms : 64;
		if (zmq_poll(items, (int)n, wait_ms) < 0 && errno != EINTR)
			return -errno;
	}
	for (unsigned a = t->first; a < N; a += zW) {
		free(zag[a].sent);
		free(zag[a].got);
		zag[a].sent = zag[a].got = NULL;
	}
	return 0;
}

/* Receive and handle one message of agent a. 1: handled, 0: none waiting
 * (flags ZMQ_DONTWAIT), -1: the end (context shut down, or a failure). */
static int zrecv_one(unsigned a, int flags)
{
	struct zagent *z = &zag[a];
	unsigned char id[5];
	int n;

	do
		n = zmq_recv(z->sock, id, 5, flags);
	while (n < 0 && errno == EINTR);
	if (n >= 0) {
		do
			n = zmq_recv(z->sock, z->rx, MSG_LEN + 1, 0);
		while (n < 0 && errno == EINTR);
	}
	if (n < 0) {
		if (errno == EAGAIN)
			return 0;
		if (errno != ETERM) {
			set_why("zmq agent %u: recv: %s", a, zmq_strerror(errno));
			sim_fail();
		}
		return -1;
	}
	return agent_handle(&S.agents[a], z->rx, (size_t)n, zsend, z) < 0 ? -1 : 1;
}

static void *zthread_main(void *arg)
{
	const struct zthread *t = arg;
	unsigned n = 0;
	zmq_pollitem_t *items;
	int ret = 0;

	for (unsigned a = t->first; a < N; a += zW)
		n++;
	items = calloc(n, sizeof(*items));
	if (!items)
		ret = -ENOMEM;
	for (unsigned a = t->first; !ret && a < N; a += zW)
		ret = zbind(a);
	pthread_barrier_wait(&zbar);		/* every endpoint bound */
	for (unsigned a = t->first; !ret && a < N; a += zW)
		ret = zconnect(a);
	if (!ret)
		ret = zhello(t, items, n);
	if (ret < 0) {
		set_why("zmq thread %u: setup: %s", t->first, strerror(-ret));
		sim_fail();
	}
	atomic_fetch_add(&zready, 1);
	pthread_barrier_wait(&zbar);		/* the release */
	if (ret < 0 || atomic_load(&S.failed))
		goto out;
	for (unsigned a = t->first; a < N; a += zW)
		if (agent_start(&S.agents[a], zsend, &zag[a]) < 0)
			goto out;
	if (n == 1) {
		/* one agent: block in its socket */
		while (zrecv_one(t->first, 0) > 0)
			;
		goto out;
	}
	for (;;) {
		/* several: zmq_poll() them, then up to 64 messages from each
		 * that has some (ETERM ends the poll as it ends a receive) */
		unsigned i = 0;

		if (zmq_poll(items, (int)n, -1) < 0) {
			if (errno == EINTR)
				continue;
			if (errno != ETERM) {
				set_why("zmq thread %u: poll: %s", t->first,
					zmq_strerror(errno));
				sim_fail();
			}
			break;
		}
		for (unsigned a = t->first; a < N; a += zW, i++) {
			int k = 0, r = 1;

			if (!(items[i].revents & ZMQ_POLLIN))
				continue;
			while (k++ < 64 && (r = zrecv_one(a, ZMQ_DONTWAIT)) > 0)
				;
			if (r < 0)
				goto out;
		}
	}
out:
	for (unsigned a = t->first; a < N; a += zW) {
		if (zag[a].sock)
			zmq_close(zag[a].sock);
		free(zag[a].sent);
		free(zag[a].got);
	}
	free(items);
	return NULL;
}

/* threads: N (one per agent) or fewer (each polls its agents' sockets). */
static int zmq_run(unsigned threads)
{
	long io = bench_env_long("AGENTSIM_ZMQ_IO", 1, 1, 64);
	struct zthread *th = NULL;
	struct rlimit rl;
	uint64_t need = zmq_fds_needed(), c0;
	unsigned started = 0;
	int ret = 0;

	getrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur < need && rl.rlim_max >= need) {
		rl.rlim_cur = need;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur < need) {
		set_why("needs %" PRIu64 " file descriptors for %u agents, the "
			"limit is %llu", need, N, (unsigned long long)rl.rlim_max);
		return -EMFILE;
	}
	zW = threads < N ? threads : N;
	zctx = zmq_ctx_new();
	if (!zctx) {
		set_why("zmq_ctx_new: %s", zmq_strerror(errno));
		return -errno;
	}
	zmq_ctx_set(zctx, ZMQ_IO_THREADS, (int)io);
	if (N + 16 > ZMQ_MAX_SOCKETS_DFLT)
		zmq_ctx_set(zctx, ZMQ_MAX_SOCKETS, (int)N + 16);
	snprintf(res->note, sizeof(res->note), "libzmq %d.%d.%d, a ROUTER per "
		 "agent, %u agent thread(s)%s, %d I/O thread(s)",
		 ZMQ_VERSION_MAJOR, ZMQ_VERSION_MINOR, ZMQ_VERSION_PATCH, zW,
		 zW < N ? " polling their agents' sockets" : "", (int)io);
	zag = calloc(N, sizeof(*zag));
	th = calloc(zW, sizeof(*th));
	if (!zag || !th) {
		ret = -ENOMEM;
		goto out;
	}
	pthread_barrier_init(&zbar, NULL, zW + 1);
	atomic_store(&zready, 0);
	for (unsigned a = 0; a < N; a++) {
		zag[a].rx = malloc(MSG_LEN + 1);
		if (!zag[a].rx) {
			ret = -ENOMEM;
			goto out;
		}
	}
	for (unsigned t = 0; t < zW; t++) {
		th[t].first = t;
		if (pthread_create(&th[t].th, NULL, zthread_main, &th[t])) {
			/* the barrier can never fill: nothing but exit is left */
			fprintf(stderr, "zmq: cannot start thread %u of %u\n", t, zW);
			_exit(2);
		}
		started++;
	}
	pthread_barrier_wait(&zbar);		/* bound */
	while (atomic_load(&zready) < (int)zW)
		usleep(100);
	c0 = cpu_now_ns();
	res->t0 = bench_now_ns();
	pthread_barrier_wait(&zbar);		/* release */
	while (sem_wait(&S.done) && errno == EINTR)
		;
	res->cpu_ns = cpu_now_ns() - c0;
	zmq_ctx_shutdown(zctx);
	for (unsigned t = 0; t < started; t++)
		pthread_join(th[t].th, NULL);
	pthread_barrier_destroy(&zbar);
out:
	if (zag)
		for (unsigned a = 0; a < N; a++) {
			res->send_retries += zag[a].retries;
			free(zag[a].rx);
		}
	zmq_ctx_term(zctx);
	free(zag);
	free(th);
	return ret;
}

static int zmq_trial(void)
{
	return zmq_run(N);
}

static int zmq_pool_trial(void)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	return zmq_run(cpus > 0 ? (unsigned)cpus : 1);
}
#endif /* HAVE_ZMQ */

/* ---- uhp: the agent runtime ---- */

static char uhp_prefix[32];	/* channel names: <prefix>.<id> */
static uint64_t ring_size;	/* 0: room for 2T records */
static struct uhp_agent **uag;	/* [N], runtime agent of agent id a */

/*
 * Backpressure. Handling one record may send several messages (the
 * router's broadcast, a kick's tokens). A send that finds the inbox full
 * (-EAGAIN), and every send after it, goes into the agent's outbox, and
 * the handler returns the index of the record that caused it: the runtime
 * hands that record (first) and the ones after it again later
 * (uhp_agent_fn), and the handler waits for nothing. Invariant: the outbox
 * is non-empty only while the first record handed to the next call is
 * one already handled, whose messages it holds; the next call sends them
 * first and skips that record, or defers everything while the inbox is
 * still full.
 */
struct uoutbox {
	unsigned head, count, cap;
	unsigned *dst;
	unsigned char *msgs;		/* cap * MSG_LEN */
};
static struct uoutbox *uout;		/* [N] */

static int uout_init(void)
{
	/* Most messages one record makes: a broadcast, or a kick's tokens. */
	unsigned cap = S.nteams + 2 > (T + N - 1) / N ? S.nteams + 2 :
		       (T + N - 1) / N;

	uout = calloc(N, sizeof(*uout));
	if (!uout)
		return -ENOMEM;
	for (unsigned a = 0; a < N; a++) {
		uout[a].cap = cap;
		uout[a].dst = calloc(cap, sizeof(unsigned));
		uout[a].msgs = malloc((size_t)cap * MSG_LEN);
		if (!uout[a].dst || !uout[a].msgs)
			return -ENOMEM;
	}
	return 0;
}

static void uout_free(void)
{
	for (unsigned a = 0; uout && a < N; a++) {
		free(uout[a].dst);
		free(uout[a].msgs);
	}
	free(uout);
	uout = NULL;
}

static int usend_now(struct agent *ag, unsigned dst, const void *msg,
		     unsigned len)
{
	struct msg_hdr h;
	struct uhp_meta m;

	memcpy(&h, msg, HDR_LEN);
	m = (struct uhp_meta){ .seq = h.seq, .src = ag->id, .dst = dst, .type = 1 };
	return uhp_agent_send(ag->impl, uag[dst], msg, len, &m);
}

/* From a handler: into dst's inbox, dst scheduled; into the outbox if the
 * inbox is full or earlier messages wait there (FIFO per destination). */
static int usend(void *ctx, unsigned dst, const void *msg, unsigned len)
{
	struct agent *ag = ctx;
	struct uoutbox *o = &uout[ag->id];
	unsigned slot;
	int ret = -EAGAIN;

	if (!o->count) {
		ret = usend_now(ag, dst, msg, len);
		if (ret != -EAGAIN)
			return ret;
		ag->send_retries++;
	}
	if (o->count == o->cap) {
		set_why("agent %u: outbox of %u full", ag->id, o->cap);
		return -ENOSPC;
	}
	slot = (o->head + o->count++) % o->cap;
	o->dst[slot] = dst;
	memcpy(o->msgs + (size_t)slot * MSG_LEN, msg, len);
	return 0;
}

/* Send what waits in the outbox, in order; true when it is empty. */
static bool uout_flush(struct agent *ag, int *err)
{
	struct uoutbox *o = &uout[ag->id];

	while (o->count) {
		int ret = usend_now(ag, o->dst[o->head],
				    o->msgs + (size_t)o->head * MSG_LEN, MSG_LEN);

		if (ret == -EAGAIN) {
			ag->send_retries++;
			return false;
		}
		if (ret < 0) {
			*err = ret;
			return false;
		}
		o->head = (o->head + 1) % o->cap;
		o->count--;
	}
	o->head = 0;
	return true;
}

static int uhandler(struct uhp_agent *self, struct uhp_rx_msg *msgs, unsigned n,
		    void *arg)
{
	struct agent *ag = arg;
	unsigned i = 0;
	int err = 0;

	(void)self;
	if (uout[ag->id].count) {
		if (!uout_flush(ag, &err)) {
			if (!err)
				return UHP_AGENT_DEFER_ALL;
			set_why("agent %u: send: %s", ag->id, strerror(-err));
			sim_fail();
			return -EPROTO;
		}
		i = 1;		/* msgs[0] was handled: its messages are out */
	}
	for (; i < n; i++) {
		const unsigned char *m = msgs[i].buf;
		uint32_t kind;

		memcpy(&kind, m, 4);
		if (msgs[i].len == HDR_LEN && kind == KIND_KICK) {
			if (agent_start(ag, usend, ag) < 0)
				return -EPROTO;
		} else if (agent_handle(ag, m, msgs[i].len, usend, ag) < 0) {
			return -EPROTO;
		}
		/* Its messages wait: hand msgs[i..n) again, msgs[i] first. */
		if (uout[ag->id].count)
			return UHP_AGENT_DEFER(i);
	}
	return 0;
}

#define CHAN_LIMIT "/sys/module/uhp/parameters/max_channels_per_user"

static unsigned long dev_channel_limit(void)
{
	FILE *f = fopen(CHAN_LIMIT, "r");
	unsigned long v = 0;

	if (f) {
		if (fscanf(f, "%lu", &v) != 1)
			v = 0;
		fclose(f);
	}
	return v;
}

static int set_dev_channel_limit(unsigned long v)
{
	FILE *f = fopen(CHAN_LIMIT, "w");
	int ret;

	if (!f)
		return -errno;
	ret = fprintf(f, "%lu\n", v) < 0 ? -EIO : 0;
	if (fclose(f) && !ret)
		ret = -errno;
	return ret;
}

static int uhp_trial(void)
{
	struct uhp_runtime_opts ro = UHP_RUNTIME_OPTS_INIT;
	struct uhp_create_opts co = UHP_CREATE_OPTS_INIT;
	struct uhp_channel **inbox = calloc(N, sizeof(*inbox));
	struct uhp_runtime *rt = NULL;
	struct uhp_topology *topo;
	struct uhp_runtime_stats st;
	int32_t nodes[64];
	unsigned nnodes = 0;
	struct uhp_stats cs;
	int dev = -1, ret = 0;
	unsigned made = 0;
	uint64_t c0, crc_errors = 0, leftover = 0;

	uag = calloc(N, sizeof(*uag));
	if (!inbox || !uag || uout_init()) {
		ret = -ENOMEM;
		goto out;
	}
	co.consumer = true;
	co.ring_size = ring_size;
	if (!co.ring_size) {
		uint64_t need = (2ULL * T + S.nteams + 16) * UHP_REC_TOTAL(MSG_LEN);

		for (co.ring_size = 64 << 10; co.ring_size < need &&
		     co.ring_size < (64ULL << 20); co.ring_size <<= 1)
			;
	}
	ret = uhp_topology_load(NULL, &topo);
	if (ret < 0) {
		set_why("uhp_topology_load: %s", strerror(-ret));
		goto out;
	}
	for (unsigned i = 0; i < uhp_topology_nr_cpus(topo); i++) {
		struct uhp_cpu c;
		unsigned j;

		if (uhp_topology_cpu(topo, i, &c) < 0)
			continue;
		for (j = 0; j < nnodes && nodes[j] != c.node; j++)
			;
		if (j == nnodes && nnodes < 64)
			nodes[nnodes++] = c.node;
	}
	uhp_topology_free(topo);
	if (!nnodes)
		nodes[nnodes++] = 0;
	if (use_dev) {
		dev = uhp_open();
		if (dev < 0) {
			set_why("/dev/uhp: %s", strerror(-dev));
			ret = dev;
			goto out;
		}
	}
	/* The names go as soon as the channels exist: the handles keep them,
	 * and nothing is left behind however this process ends. */
	for (; made < N; made++) {
		char name[UHP_NAME_MAX];

		snprintf(name, sizeof(name), "%s.%u", uhp_prefix, made);
		co.node = nodes[made % nnodes];
		ret = use_dev ? uhp_create(dev, name, &co, &inbox[made]) :
				uhp_arena_create(name, &co, &inbox[made]);
		if (ret < 0) {
			if (use_dev && ret == -ENOSPC)
				set_why("uhp_create of channel %u: %s (the module's "
					"max_channels_per_user is %lu; echo %u > "
					"/sys/module/uhp/parameters/"
					"max_channels_per_user)", made,
					strerror(-ret), dev_channel_limit(), N + 16);
			else
				set_why("%s of channel %u: %s", use_dev ?
					"uhp_create" : "uhp_arena_create", made,
					strerror(-ret));
			goto out;
		}
		if (use_dev)
			uhp_unlink(dev, name);
		else
			uhp_arena_unlink(name);
	}
	ro.max_agents = N;
	ret = uhp_runtime_create(&ro, &rt);
	if (ret < 0) {
		set_why("uhp_runtime_create: %s", strerror(-ret));
		goto out;
	}
	for (unsigned a = 0; a < N; a++) {
		struct uhp_agent_opts ao = UHP_AGENT_OPTS_INIT;

		ao.fn = uhandler;
		ao.arg = &S.agents[a];
		ao.max_msg = MSG_LEN;
		ret = uhp_runtime_add_agent(rt, inbox[a], &ao, &uag[a]);
		if (ret < 0) {
			set_why("uhp_runtime_add_agent %u: %s", a, strerror(-ret));
			goto out;
		}
		if (uhp_agent_id(uag[a]) != a) {
			set_why("agent %u got runtime id %u", a, uhp_agent_id(uag[a]));
			ret = -EPROTO;
			goto out;
		}
		S.agents[a].impl = uag[a];
	}
	ret = uhp_runtime_start(rt);
	if (ret < 0) {
		set_why("uhp_runtime_start: %s", strerror(-ret));
		goto out;
	}
	usleep(20000);		/* the workers up and idle, like the ZeroMQ threads */

	/* The release: a kick into every inbox; each agent injects its own
	 * tokens from its handler, as each ZeroMQ agent thread does. */
	c0 = cpu_now_ns();
	res->t0 = bench_now_ns();
	for (unsigned a = 0; a < N; a++) {
		struct msg_hdr k = { .kind = KIND_KICK, .dst = a };

		while ((ret = uhp_agent_send(NULL, uag[a], &k, HDR_LEN, NULL)) == -EAGAIN)
			sched_yield();
		if (ret < 0) {
			set_why("kick agent %u: %s", a, strerror(-ret));
			sim_fail();
			break;
		}
	}
	while (sem_wait(&S.done) && errno == EINTR)
		;
	res->cpu_ns = cpu_now_ns() - c0;
	uhp_runtime_stop(rt);
	ret = 0;

	uhp_runtime_stats(rt, &st, NULL, 0);
	for (unsigned a = 0; a < N; a++) {
		unsigned char *buf = S.agents[a].out;	/* MSG_LEN, free now */
		ssize_t n;

		res->send_retries += S.agents[a].send_retries;
		if (uhp_agent_error(uag[a]) && !atomic_load(&S.failed))
			set_why("agent %u stopped by the runtime: %s", a,
				strerror(-uhp_agent_error(uag[a])));
		if (uhp_stats(inbox[a], &cs) == 0)
			crc_errors += cs.crc_errors + cs.stalled_skips;
		while ((n = uhp_recv(inbox[a], buf, MSG_LEN, NULL)) >= 0 ||
		       n == -EBADMSG)
			leftover++;
		if (n != -EAGAIN)	/* -EMSGSIZE: a record too big to be ours */
			leftover++;
	}
	if (st.recv_errors || st.agents_stopped || crc_errors)
		set_why("runtime: %llu receive errors, %u agents stopped, %llu "
			"CRC errors/stalls in the inboxes",
			(unsigned long long)st.recv_errors, st.agents_stopped,
			(unsigned long long)crc_errors);
	else if (leftover)
		set_why("%llu records left in the inboxes after the last "
			"absorption", (unsigned long long)leftover);
	if (res->why[0])
		sim_fail();
	snprintf(res->note, sizeof(res->note), "uhp_runtime, %u workers, %s "
		 "inboxes of %llu KiB on %u node(s); %llu handler runs, %.1f "
		 "msgs/run, %llu steals, %llu sleeps, %llu full-inbox sends, "
		 "%llu deferrals",
		 st.nr_workers, use_dev ? "/dev/uhp" : "arena",
		 (unsigned long long)(co.ring_size >> 10), nnodes,
		 (unsigned long long)st.runs,
		 st.runs ? (double)st.msgs / (double)st.runs : 0.0,
		 (unsigned long long)st.steals, (unsigned long long)st.sleeps,
		 (unsigned long long)res->send_retries,
		 (unsigned long long)st.deferrals);
out:
	uhp_runtime_destroy(rt);
	for (unsigned a = 0; a < made; a++)
		uhp_close(inbox[a]);
	if (dev >= 0)
		close(dev);
	free(inbox);
	free(uag);
	uout_free();
	return ret;
}

/* ---- trials: one child process each ---- */

struct impl {
	const char *name;
	int (*run)(void);
	const char *skip;
};

static struct impl impls[] = {
	{ "uhp", uhp_trial, NULL },
#ifdef HAVE_ZMQ
	{ "zmq", zmq_trial, NULL },
	{ "zmq_pool", zmq_pool_trial, NULL },
#else
	{ "zmq", NULL, "built without libzmq; -DHAVE_ZMQ -lzmq needs libzmq3-dev, "
		"scripts/deps.sh --bench; a static guest build cannot link it, "
		"Debian ships no static krb5" },
	{ "zmq_pool", NULL, "built without libzmq" },
#endif
};
#define NIMPL	((int)(sizeof(impls) / sizeof(impls[0])))

static const char *only = "uhp,zmq";	/* --only: comma-separated names */

static bool wanted(const char *name)
{
	size_t n = strlen(name);

	for (const char *p = only; p && *p;) {
		const char *e = strchr(p, ',');
		size_t len = e ? (size_t)(e - p) : strlen(p);

		if (len == n && !strncmp(p, name, n))
			return true;
		p = e ? e + 1 : NULL;
	}
	return false;
}

static volatile sig_atomic_t interrupted;
static pid_t child;
static unsigned long dev_limit_old;	/* --dev: max_channels_per_user to restore */

static void on_signal(int sig)
{
	interrupted = sig;
	if (child > 0)
		kill(child, SIGKILL);
}

static void rm_tree(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char p[512];

	if (!d)
		return;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		unlink(p);
	}
	closedir(d);
	rmdir(dir);
}

/* What a trial leaves behind if its child died: names and files. */
static void trial_cleanup(const struct impl *im)
{
	if (im->run == uhp_trial) {
		int dev = use_dev ? uhp_open() : -1;
		char name[UHP_NAME_MAX];

		for (unsigned a = 0; a < N && (!use_dev || dev >= 0); a++) {
			snprintf(name, sizeof(name), "%s.%u", uhp_prefix, a);
			if (use_dev)
				uhp_unlink(dev, name);
			else
				uhp_arena_unlink(name);
		}
		if (dev >= 0)
			close(dev);
	}
	if (ipc_dir[0]) {
		rm_tree(ipc_dir);
		ipc_dir[0] = 0;
	}
}

/* msgs/s, or -1 (reason printed). */
static double trial(const struct impl *im, double *cpus)
{
	int st, ret;
	pid_t pid;

	memset(res, 0, sizeof(*res));
	snprintf(uhp_prefix, sizeof(uhp_prefix), "agentsim.%d", (int)getpid());
	if (im->run != uhp_trial) {
		const char *tmp = getenv("TMPDIR");

		snprintf(ipc_dir, sizeof(ipc_dir), "%s/uhp-agentsim.XXXXXX",
			 tmp && *tmp ? tmp : "/tmp");
		if (!mkdtemp(ipc_dir)) {
			printf("# %s: mkdtemp %s: %s\n", im->name, ipc_dir,
			       strerror(errno));
			ipc_dir[0] = 0;
			return -1;
		}
	}
	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		perror("fork");
		trial_cleanup(im);
		return -1;
	}
	if (pid == 0) {
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		alarm(TRIAL_TIMEOUT_S);
		if (sim_init() < 0) {
			set_why("out of memory");
			_exit(2);
		}
		ret = im->run();
		res->ok = ret == 0 && sim_verify();
		if (ret < 0 && !res->why[0])
			set_why("%s", strerror(-ret));
		sim_free();
		_exit(res->ok ? 0 : 1);
	}
	child = pid;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	child = 0;
	trial_cleanup(im);
	if (WIFSIGNALED(st)) {
		printf("# %s/%s: FAILED, killed by signal %d%s%s%s\n", im->name,
		       pat_names[pat], WTERMSIG(st),
		       WTERMSIG(st) == SIGALRM ? " (timeout)" : "",
		       res->why[0] ? "; " : "", res->why);
		return -1;
	}
	if (!res->ok || WEXITSTATUS(st) != 0) {
		printf("# %s/%s: FAILED (%s; %" PRIu64 " of %" PRIu64
		       " delivered)\n", im->name, pat_names[pat],
		       res->why[0] ? res->why : "no reason given",
		       res->delivered, M);
		return -1;
	}
	*cpus = (double)res->cpu_ns / (double)(res->t1 - res->t0);
	return (double)M * 1e9 / (double)(res->t1 - res->t0);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: bench_agent_simulation [--agents N] [--messages M]\n"
		"         [--pattern realistic|uniform|hotspot|all] [--size P]\n"
		"         [--inflight F] [--rounds R] [--seed S]\n"
		"         [--only uhp,zmq,zmq_pool]\n"
		"         [--ring BYTES] [--dev] [--append]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static double mps[NPAT][BENCH_MAX_IMPLS][MAX_ROUNDS];
	static double cpu[NPAT][BENCH_MAX_IMPLS][MAX_ROUNDS];
	bool pats[NPAT] = { true, true, true }, append = false, any_fail = false;
	bool zmq_no_fds[NIMPL] = { 0 };
	int noted[NIMPL] = { 0 };	/* peers' notes once, uhp's per pattern */
	long rounds = 1;
	struct sigaction sa;
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
		if (!strcmp(a, "--agents"))
			N = (unsigned)bench_arg_count(a, argv[++i], 2, MAX_AGENTS);
		else if (!strcmp(a, "--messages"))
			M = bench_arg_count(a, argv[++i], 1, UINT32_MAX);
		else if (!strcmp(a, "--size"))
			P = (unsigned)bench_arg_size(a, argv[++i], 8, 4096);
		else if (!strcmp(a, "--inflight"))
			F = (unsigned)bench_arg_count(a, argv[++i], 1, 1024);
		else if (!strcmp(a, "--rounds"))
			rounds = (long)bench_arg_count(a, argv[++i], 1, MAX_ROUNDS);
		else if (!strcmp(a, "--ring"))	/* 0: the default */
			ring_size = bench_arg_size(a, argv[++i], 0, 1ULL << 40);
		else if (!strcmp(a, "--seed"))
			seed = bench_arg_count(a, argv[++i], 0, UINT64_MAX);
		else if (!strcmp(a, "--only"))
			only = argv[++i];
		else if (!strcmp(a, "--pattern")) {
			const char *p = argv[++i];
			int k;

			if (!strcmp(p, "all"))
				continue;
			for (k = 0; k < NPAT; k++)
				pats[k] = !strcmp(p, pat_names[k]);
			for (k = 0; k < NPAT && !pats[k]; k++)
				;
			if (k == NPAT)
				usage();
		} else
			usage();
	}
	if (N < 2 || N > MAX_AGENTS || M < 1 || M > UINT32_MAX || P < 8 ||
	    P > 4096 || P % 8 || F < 1 || F > 1024 || rounds < 1 ||
	    rounds > MAX_ROUNDS || (ring_size && (ring_size < 4096 ||
	    (ring_size & (ring_size - 1))))) {
		fprintf(stderr, "want 2 <= agents <= %d, 1 <= messages < 2^32, "
			"8 <= size <= 4096 (multiple of 8), 1 <= inflight <= 1024, "
			"1 <= rounds <= %d, ring a power of two >= 4096\n",
			MAX_AGENTS, MAX_ROUNDS);
		return 2;
	}
	{
		int k = 0;

		for (int i = 0; i < NIMPL; i++)
			k += wanted(impls[i].name);
		if (!k) {
			fprintf(stderr, "--only %s names none of uhp, zmq, zmq_pool\n",
				only);
			return 2;
		}
	}
	MSG_LEN = HDR_LEN + P;
	T = (uint64_t)N * F < M ? N * F : (unsigned)M;
	res = mmap(NULL, sizeof(*res), PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (res == MAP_FAILED) {
		perror("mmap");
		return 2;
	}
	if (use_dev) {
		unsigned long lim = dev_channel_limit(), want = N + 16;

		if (lim && lim < want) {
			if (set_dev_channel_limit(want) == 0) {
				printf("# %s: %lu raised to %lu for %u agents "
				       "(restored at the end)\n", CHAN_LIMIT, lim,
				       want, N);
				dev_limit_old = lim;
			} else {
				printf("# %s is %lu, below %u agents: uhp will "
				       "fail (as root: echo %lu > %s)\n",
				       CHAN_LIMIT, lim, N, want, CHAN_LIMIT);
			}
		}
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	printf("# agent simulation: %u agents, %" PRIu64 " deliveries, %u-byte "
	       "messages (%u header + %u payload), %u tokens, seed %" PRIu64
	       ", %ld round(s), %ld CPUs; uhp on %s\n", N, M, MSG_LEN, HDR_LEN,
	       P, T, seed, rounds, sysconf(_SC_NPROCESSORS_ONLN),
	       use_dev ? "/dev/uhp channels" : "arenas");
	for (int i = 0; i < NIMPL; i++) {
		struct rlimit rl;

		if (!wanted(impls[i].name))
			continue;
		if (impls[i].skip) {
			printf("# %s: skipped (%s)\n", impls[i].name, impls[i].skip);
			continue;
		}
		getrlimit(RLIMIT_NOFILE, &rl);
		if (!strncmp(impls[i].name, "zmq", 3) &&
		    rl.rlim_max < zmq_fds_needed()) {
			printf("# %s: skipped (%u agents need %llu file "
			       "descriptors, the hard limit is %llu)\n",
			       impls[i].name, N,
			       (unsigned long long)zmq_fds_needed(),
			       (unsigned long long)rl.rlim_max);
			zmq_no_fds[i] = true;
		}
	}

	jf = bench_open_jsonl_mode("agentsim", append);

	printf("msgs/s: deliveries per second, median of %ld round(s); CPUs: CPU "
	       "time / wall time; per CPU: msgs per CPU-second; uhp x: uhp's "
	       "msgs/s over this one's\n", rounds);
	printf("%-10s %-8s %6s %9s | %12s %6s %12s %8s\n", "pattern", "impl",
	       "agents", "messages", "msgs/s", "CPUs", "per CPU", "uhp x");
	for (int p = 0; p < NPAT && !interrupted; p++) {
		bool broken[BENCH_MAX_IMPLS] = { 0 };
		double med[BENCH_MAX_IMPLS] = { 0 }, medcpu[BENCH_MAX_IMPLS] = { 0 };
		int act[BENCH_MAX_IMPLS], na = 0, iu = -1;

		if (!pats[p])
			continue;
		pat = (enum pattern)p;
		for (int i = 0; i < NIMPL; i++) {
			if (impls[i].skip || !wanted(impls[i].name) || zmq_no_fds[i])
				continue;
			if (impls[i].run == uhp_trial)
				iu = na;
			act[na++] = i;
		}
		for (long r = 0; r < rounds && !interrupted; r++)
			for (int j = 0; j < na && !interrupted; j++) {
				int k = (int)((j + r) % na);

				if (broken[k])
					continue;
				mps[p][k][r] = trial(&impls[act[k]], &cpu[p][k][r]);
				if (mps[p][k][r] < 0)
					broken[k] = any_fail = true;
				else if (r == 0 && res->note[0] &&
					 (impls[act[k]].run == uhp_trial ||
					  !noted[act[k]]++))
					printf("# %s: %s\n", impls[act[k]].name,
					       res->note);
			}
		if (interrupted)
			break;
		for (int k = 0; k < na; k++)
			if (!broken[k]) {
				med[k] = bench_median(mps[p][k], (int)rounds);
				medcpu[k] = bench_median(cpu[p][k], (int)rounds);
			}
		for (int k = 0; k < na; k++) {
			const char *name = impls[act[k]].name;
			double ratio = iu >= 0 && k != iu && !broken[iu] && !broken[k] ?
				       med[iu] / med[k] : 0;
			char ratio_s[32];

			snprintf(ratio_s, sizeof(ratio_s), "%.3f", ratio);
			if (broken[k]) {
				printf("%-10s %-8s %6u %9" PRIu64 " | %12s\n",
				       pat_names[p], name, N, M, "FAILED");
				continue;
			}
			printf("%-10s %-8s %6u %9" PRIu64 " | %12.0f %6.2f %12.0f",
			       pat_names[p], name, N, M, med[k], medcpu[k],
			       medcpu[k] > 0 ? med[k] / medcpu[k] : 0);
			if (ratio > 0)
				printf(" %7.2fx", ratio);
			printf("\n");
			if (jf)
				fprintf(jf, "{\"bench\":\"agentsim\",\"impl\":\"%s\","
					"\"pattern\":\"%s\",\"agents\":%u,\"messages\":%"
					PRIu64 ",\"size\":%u,\"payload\":%u,"
					"\"inflight\":%u,\"dev\":%s,"
					"\"msgs_per_s\":%.0f,\"cpus\":%.3f,"
					"\"msgs_per_cpu_s\":%.0f,"
					"\"uhp_ratio\":%s}\n", name,
					pat_names[p], N, M, MSG_LEN, P, F,
					use_dev ? "true" : "false", med[k], medcpu[k],
					medcpu[k] > 0 ? med[k] / medcpu[k] : 0,
					ratio > 0 ? ratio_s : "null");
		}
		fflush(stdout);
	}
	if (jf)
		fclose(jf);
	if (dev_limit_old)
		set_dev_channel_limit(dev_limit_old);
	if (interrupted) {
		printf("# interrupted\n");
		return 1;
	}
	return any_fail ? 1 : 0;
}
