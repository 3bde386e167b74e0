// SPDX-License-Identifier: MIT
/*
 * runtime_test: the agent runtime (uhp_runtime.h) on arena inboxes.
 *
 *   errors     bad opts, NULLs, a producer-only inbox, one inbox twice,
 *              too many agents, start twice, stop from a handler: -errno
 *   ring       50 agents pass 8 tokens around a ring on 2 workers: every
 *              message handled exactly once, per-sender FIFO, no agent ever
 *              inside its handler twice at once; then a root agent fans
 *              out to the 49 others (rounds of work piled on one worker's
 *              deque): the other worker steals
 *   idle       the pool then burns (almost) no CPU over 300 ms, asleep
 *   external   another thread with its own handle and plain uhp_send()
 *              wakes the sleeping pool; everything arrives, in order
 *   fd         an inbox with an fd (a /dev/uhp channel, faked: an
 *              in-memory channel whose fd is an eventfd the test writes
 *              as the kernel's NOTIFY would make it readable): the watcher
 *              sleeps in poll() and wakes for each record well inside its
 *              200 ms cap
 *   blind      150 agents (past futex_waitv's 128 words) and an in-memory
 *              inbox: a plain send to the last ones is still handled, and
 *              the idle pool stays cheap
 *   stop       stop with tokens and an external producer mid-flight: every
 *              committed record is either handled or still in its inbox
 *   error      a handler's negative return stops that agent, reported
 *   hybrid     fake 4 P + 4 E topology (pin off): P agents only on P
 *              workers, E agents only on E workers; cores=P picks P only
 *   parallel   3 slow agents sent to at once on an idle pool of 4: all three
 *              run at the same time (a worker that stops searching with work
 *              still queued anywhere wakes a parked peer, so work left on a
 *              deque does not wait for a busy worker)
 *   unwatch    white box: a worker parked while another held the watcher
 *              seat is woken when that one leaves it (uhp__idle_unwatch()),
 *              not after its 1 s park cap with no inbox watched
 *   races      start from two threads at once: one 0, one -EALREADY; stop
 *              from two threads while a handler sleeps: neither returns
 *              before the handler did; start racing stop, then destroy
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"
#include "runtime_internal.h"
#include "tap.h"

#define MAX_AGENTS	160
#define RING_AGENTS	50
#define TOKENS		8
#define HOPS		1500	/* per token */
#define FAN_ROUNDS	20

enum { FROM_PEER = 1, FROM_MAIN, FROM_EXT, FROM_FAN };

struct msg {
	uint32_t token;
	uint32_t hops_left;
	uint64_t seq;		/* per (sender, receiver) */
};

struct tagent {
	struct uhp_agent *a;
	struct uhp_channel *inbox;
	struct tagent *next;
	char name[48];
	int inside;		/* handler entries minus exits */
	uint64_t handled;	/* records handed to the handler */
	uint64_t tx_seq;	/* to next */
	uint64_t rx_seq;	/* expected from the predecessor */
	uint64_t ext_seq;	/* expected from the external producer */
	uint64_t fan_seq;	/* expected from the fan-out root */
	unsigned fan_to;	/* root: fan out to agents 1..fan_to-1 */
	int drain_fd;		/* > 0: read this eventfd in the handler */
	uint64_t sent_ok;	/* successful uhp_agent_send() to next */
	unsigned prefer;
	int fail_on;		/* return -42 at this token, or -1 */
};

static struct tagent ag[MAX_AGENTS];
static uint64_t overlaps, fifo_errors, bad_kind, tokens_done, send_errors;
static uint64_t fan_done;

/* Counters the handlers bump, read from the main thread. */
#define LD(v)	__atomic_load_n(&(v), __ATOMIC_ACQUIRE)

/* Root: one record to each of agents 1..fan_to-1, seq = the round. */
static void fan_out(struct uhp_agent *self, struct tagent *t, uint64_t round)
{
	struct msg m = { .token = UINT32_MAX - 1, .seq = round };
	struct uhp_meta meta = { .type = FROM_FAN, .src = uhp_agent_id(self) };

	unsigned to = __atomic_load_n(&t->fan_to, __ATOMIC_ACQUIRE);

	for (unsigned i = 1; i < to; i++)
		if (uhp_agent_send(self, ag[i].a, &m, sizeof(m), &meta))
			__atomic_fetch_add(&send_errors, 1, __ATOMIC_RELAXED);
}

/* About 20 us of work: the fan-out piles up faster than one worker eats. */
static void busy_20us(void)
{
	uint64_t end = t_now_ns() + 20000;

	while (t_now_ns() < end)
		;
}

static uint64_t cpu_ns(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000ULL +
	       (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000ULL;
}

static int handler(struct uhp_agent *self, struct uhp_rx_msg *msgs, unsigned n,
		   void *arg)
{
	struct tagent *t = arg;
	struct uhp_cpu cpu;
	int ret = 0;

	if (__atomic_fetch_add(&t->inside, 1, __ATOMIC_ACQ_REL) != 0)
		__atomic_fetch_add(&overlaps, 1, __ATOMIC_RELAXED);
	if (uhp_runtime_worker_self(&cpu) < 0 ||
	    (t->prefer != UHP_CORES_ANY && cpu.kind != t->prefer))
		__atomic_fetch_add(&bad_kind, 1, __ATOMIC_RELAXED);
	for (unsigned i = 0; i < n; i++) {
		struct msg m;

		memcpy(&m, msgs[i].buf, sizeof(m));
		if (msgs[i].len != sizeof(m))
			__atomic_fetch_add(&fifo_errors, 1, __ATOMIC_RELAXED);
		if (msgs[i].meta.type == FROM_PEER && m.seq != t->rx_seq++)
			__atomic_fetch_add(&fifo_errors, 1, __ATOMIC_RELAXED);
		if (msgs[i].meta.type == FROM_EXT && m.seq != t->ext_seq++)
			__atomic_fetch_add(&fifo_errors, 1, __ATOMIC_RELAXED);
		if (msgs[i].meta.type == FROM_FAN) {
			if (m.seq != t->fan_seq++)
				__atomic_fetch_add(&fifo_errors, 1, __ATOMIC_RELAXED);
			busy_20us();
			__atomic_fetch_add(&fan_done, 1, __ATOMIC_RELAXED);
			continue;
		}
		if (msgs[i].meta.type == FROM_MAIN &&
		    __atomic_load_n(&t->fan_to, __ATOMIC_ACQUIRE)) {
			fan_out(self, t, m.seq);
			continue;
		}
		if (t->fail_on >= 0 && m.token == (uint32_t)t->fail_on)
			ret = -42;
		if (msgs[i].meta.type != FROM_EXT && m.hops_left && t->next) {
			struct uhp_meta meta = { .type = FROM_PEER,
						 .src = uhp_agent_id(self) };
			int r;

			m.hops_left--;
			m.seq = t->tx_seq;
			do
				r = uhp_agent_send(self, t->next->a, &m, sizeof(m), &meta);
			while (r == -EAGAIN);
			if (r == 0) {
				t->tx_seq++;
				__atomic_fetch_add(&t->sent_ok, 1, __ATOMIC_RELAXED);
			} else {
				__atomic_fetch_add(&send_errors, 1, __ATOMIC_RELAXED);
			}
		} else if (msgs[i].meta.type != FROM_EXT) {
			__atomic_fetch_add(&tokens_done, 1, __ATOMIC_RELAXED);
		}
	}
	if (t->drain_fd > 0) {
		uint64_t v;

		if (read(t->drain_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
			__atomic_fetch_add(&send_errors, 1, __ATOMIC_RELAXED);
	}
	/* Give a second worker a chance to run us concurrently, were it
	 * possible. */
	for (int k = 0; k < 200; k++)
		__asm__ __volatile__("" ::: "memory");
	__atomic_store_n(&t->handled, t->handled + n, __ATOMIC_RELEASE);
	__atomic_fetch_sub(&t->inside, 1, __ATOMIC_ACQ_REL);
	return ret;
}

static void reset_counters(void)
{
	__atomic_store_n(&overlaps, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&fifo_errors, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&bad_kind, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&tokens_done, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&send_errors, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&fan_done, 0, __ATOMIC_RELEASE);
}

static uint64_t total_handled(unsigned nr)
{
	uint64_t s = 0;

	for (unsigned i = 0; i < nr; i++)
		s += __atomic_load_n(&ag[i].handled, __ATOMIC_ACQUIRE);
	return s;
}

/* Wait up to ms for *v >= want (polled). */
static bool wait_for(uint64_t *v, uint64_t want, unsigned ms)
{
	uint64_t end = t_now_ns() + (uint64_t)ms * 1000000ULL;

	while (__atomic_load_n(v, __ATOMIC_ACQUIRE) < want) {
		if (t_now_ns() > end)
			return false;
		t_sleep_ms(1);
	}
	return true;
}

static int make_agents(struct uhp_runtime *rt, unsigned nr, size_t ring_size)
{
	struct uhp_create_opts o = UHP_CREATE_OPTS_INIT;

	o.ring_size = ring_size;
	o.consumer = true;
	o.node = 0;
	for (unsigned i = 0; i < nr; i++) {
		struct uhp_agent_opts ao = UHP_AGENT_OPTS_INIT;
		struct tagent *t = &ag[i];
		int ret;

		memset(t, 0, sizeof(*t));
		t->fail_on = -1;
		t->prefer = UHP_CORES_ANY;
		snprintf(t->name, sizeof(t->name), "rtt.%d.%u", (int)getpid(), i);
		uhp_arena_unlink(t->name);
		ret = uhp_arena_create(t->name, &o, &t->inbox);
		if (ret)
			return ret;
		ao.fn = handler;
		ao.arg = t;
		ao.max_msg = 256;
		ret = uhp_runtime_add_agent(rt, t->inbox, &ao, &t->a);
		if (ret)
			return ret;
	}
	return 0;
}

static void free_agents(unsigned nr)
{
	for (unsigned i = 0; i < nr; i++) {
		uhp_close(ag[i].inbox);
		uhp_arena_unlink(ag[i].name);
		ag[i].inbox = NULL;
	}
}

static struct uhp_runtime *pool(unsigned workers, unsigned max_agents)
{
	struct uhp_runtime_opts o = UHP_RUNTIME_OPTS_INIT;
	struct uhp_runtime *rt = NULL;

	o.nr_workers = workers;
	o.max_agents = max_agents;
	o.spin = 256;
	/*
	 * Unpinned: on a shared 2-CPU host a pinned worker competes for its
	 * one CPU with whatever else is pinned there (another pool's workers
	 * spinning and yielding, a VM), and the timing checks here are about
	 * the protocol, not placement. t_errors runs a pinned pool.
	 */
	o.pin = false;
	if (uhp_runtime_create(&o, &rt))
		tap_bail("uhp_runtime_create");
	return rt;
}

/* ---- errors ---- */

static int stop_from_handler_ret = 1;
static struct uhp_runtime *stop_rt;

static int stop_handler(struct uhp_agent *self, struct uhp_rx_msg *msgs,
			unsigned n, void *arg)
{
	(void)self, (void)msgs, (void)n, (void)arg;
	__atomic_store_n(&stop_from_handler_ret, uhp_runtime_stop(stop_rt),
			 __ATOMIC_RELEASE);
	return 0;
}

static void t_errors(void)
{
	struct uhp_runtime_opts o = UHP_RUNTIME_OPTS_INIT;
	struct uhp_agent_opts ao = UHP_AGENT_OPTS_INIT;
	struct uhp_create_opts co = UHP_CREATE_OPTS_INIT;
	struct uhp_channel *in1, *in2, *in3, *prod;
	struct uhp_runtime *rt;
	struct uhp_agent *a;
	char n1[48], n2[48], n3[48];
	uint64_t x = 1;

	tap_is(uhp_runtime_create(NULL, NULL), -EINVAL, "create: out NULL");
	o.cores = 7;
	tap_is(uhp_runtime_create(&o, &rt), -EINVAL, "create: bad cores");
	o.cores = UHP_CORES_ANY;
	o.batch = UHP_RUNTIME_MAX_BATCH + 1;
	tap_is(uhp_runtime_create(&o, &rt), -EINVAL, "create: batch too big");
	o.batch = 4;
	o.sysfs_root = "/nonexistent/uhp";
	tap_is(uhp_runtime_create(&o, &rt), -ENOENT, "create: no sysfs there: -ENOENT");
	o.sysfs_root = NULL;
	o.max_agents = 2;
	o.nr_workers = 1;
	tap_is(uhp_runtime_create(&o, &rt), 0, "create: 1 worker (pinned), 2 agents at most");

	co.ring_size = 4096;
	co.consumer = true;
	snprintf(n1, sizeof(n1), "rte1.%d", (int)getpid());
	snprintf(n2, sizeof(n2), "rte2.%d", (int)getpid());
	snprintf(n3, sizeof(n3), "rte3.%d", (int)getpid());
	if (uhp_arena_create(n1, &co, &in1) || uhp_arena_create(n2, &co, &in2) ||
	    uhp_arena_create(n3, &co, &in3) || uhp_arena_attach(n1, 0, &prod))
		tap_bail("arenas");

	tap_is(uhp_runtime_add_agent(rt, in1, &ao, &a), -EINVAL, "add: no fn");
	ao.fn = stop_handler;
	tap_is(uhp_runtime_add_agent(NULL, in1, &ao, &a), -EINVAL, "add: rt NULL");
	tap_is(uhp_runtime_add_agent(rt, NULL, &ao, &a), -EINVAL, "add: inbox NULL");
	tap_is(uhp_runtime_add_agent(rt, in1, NULL, &a), -EINVAL, "add: opts NULL");
	ao.prefer = 9;
	tap_is(uhp_runtime_add_agent(rt, in1, &ao, &a), -EINVAL, "add: bad prefer");
	ao.prefer = UHP_CORES_ANY;
	ao.max_msg = UHP_AGENT_MAX_MSG + 1;
	tap_is(uhp_runtime_add_agent(rt, in1, &ao, &a), -EINVAL,
	       "add: max_msg above UHP_AGENT_MAX_MSG");
	ao.max_msg = 0;
	tap_is(uhp_runtime_add_agent(rt, prod, &ao, &a), -EPERM,
	       "add: a producer handle: -EPERM");
	tap_is(uhp_runtime_add_agent(rt, in1, &ao, &a), 0, "add");
	tap_is(uhp_runtime_add_agent(rt, in1, &ao, NULL), -EBUSY, "add: same inbox: -EBUSY");
	tap_is(uhp_runtime_add_agent(rt, in2, &ao, NULL), 0, "add a second");
	tap_is(uhp_runtime_add_agent(rt, in3, &ao, NULL), -ENOSPC,
	       "add past max_agents: -ENOSPC");
	tap_is(uhp_agent_send(NULL, NULL, &x, sizeof(x), NULL), -EINVAL, "send: dst NULL");
	tap_is(uhp_runtime_worker_self(NULL), -ESRCH, "worker_self off a worker: -ESRCH");
	tap_is(uhp_runtime_stats(NULL, NULL, NULL, 0), -EINVAL, "stats: NULL");
	tap_is(uhp_runtime_start(NULL), -EINVAL, "start: NULL");
	tap_is(uhp_runtime_start(rt), 0, "start");
	tap_is(uhp_runtime_start(rt), -EALREADY, "start twice: -EALREADY");
	stop_rt = rt;
	tap_is(uhp_agent_send(NULL, a, &x, sizeof(x), NULL), 0, "send from outside");
	{
		uint64_t end = t_now_ns() + 5000000000ULL;

		while (__atomic_load_n(&stop_from_handler_ret, __ATOMIC_ACQUIRE) == 1 &&
		       t_now_ns() < end)
			t_sleep_ms(1);
	}
	tap_is(stop_from_handler_ret, -EDEADLK, "stop from a handler: -EDEADLK");
	tap_is(uhp_runtime_stop(rt), 0, "stop");
	tap_is(uhp_runtime_stop(rt), 0, "stop twice: fine");
	tap_is(uhp_runtime_start(rt), -ESHUTDOWN, "start after stop: -ESHUTDOWN");
	tap_is(uhp_runtime_add_agent(rt, in3, &ao, NULL), -ESHUTDOWN,
	       "add after stop: -ESHUTDOWN");
	uhp_runtime_destroy(rt);
	uhp_runtime_destroy(NULL);
	uhp_close(prod);
	uhp_close(in1);
	uhp_close(in2);
	uhp_close(in3);
	uhp_arena_unlink(n1);
	uhp_arena_unlink(n2);
	uhp_arena_unlink(n3);
}

/* ---- ring, idle, external ---- */

struct ext {
	struct uhp_channel *ch;
	unsigned dst, count;
	uint64_t sent;
	int give_up;		/* set: stop retrying a full inbox */
};

static void *ext_producer(void *arg)
{
	struct ext *e = arg;

	for (unsigned i = 0; i < e->count; i++) {
		struct msg m = { .token = UINT32_MAX, .seq = i };
		struct uhp_meta meta = { .type = FROM_EXT, .dst = e->dst };

		while (uhp_send(e->ch, &m, sizeof(m), &meta) == -EAGAIN) {
			if (__atomic_load_n(&e->give_up, __ATOMIC_ACQUIRE))
				return NULL;
			t_sleep_ms(1);
		}
		__atomic_store_n(&e->sent, i + 1, __ATOMIC_RELEASE);
		if (i % 100 == 99)
			t_sleep_ms(30);	/* long enough for the pool to sleep */
	}
	return NULL;
}

static void start_tokens(unsigned nr, unsigned tokens, unsigned hops)
{
	for (unsigned k = 0; k < tokens; k++) {
		struct msg m = { .token = k, .hops_left = hops - 1 };
		struct uhp_meta meta = { .type = FROM_MAIN };

		if (uhp_agent_send(NULL, ag[k * nr / tokens].a, &m, sizeof(m), &meta))
			tap_bail("start token %u", k);
	}
}

static void t_ring_idle_external(void)
{
	struct uhp_runtime *rt = pool(2, MAX_AGENTS);
	struct uhp_runtime_stats st, st2;
	struct uhp_worker_stats ws[2];
	uint64_t c0, c1, sleeps0;
	struct ext e = { .dst = 7, .count = 1000 };
	pthread_t th;
	bool ok;

	tap_is(make_agents(rt, RING_AGENTS, 65536), 0, "50 agents on arena inboxes");
	for (unsigned i = 0; i < RING_AGENTS; i++)
		ag[i].next = &ag[(i + 1) % RING_AGENTS];
	tap_is(uhp_runtime_start(rt), 0, "start 2 workers");

	reset_counters();
	start_tokens(RING_AGENTS, TOKENS, HOPS);
	ok = wait_for(&tokens_done, TOKENS, 10000);
	tap_ok(ok, "8 tokens x 1500 hops around 50 agents: all done");
	t_sleep_ms(20);
	tap_is(total_handled(RING_AGENTS), TOKENS * HOPS, "every message handled exactly once");
	tap_is(LD(fifo_errors), 0, "per-sender FIFO held");
	tap_is(LD(overlaps), 0, "no agent ever ran on two workers at once");
	tap_is(LD(send_errors) + LD(bad_kind), 0, "no send errors, every run on a worker");
	uhp_runtime_stats(rt, &st, ws, 2);
	tap_is(st.msgs, TOKENS * HOPS, "stats: msgs add up");

	/* Fan-out: 20 rounds of root -> 49 agents, ~1 ms of work a round. */
	__atomic_store_n(&ag[0].fan_to, RING_AGENTS, __ATOMIC_RELEASE);
	for (uint64_t r = 0; r < FAN_ROUNDS; r++) {
		struct msg m = { .token = UINT32_MAX - 1, .seq = r };
		struct uhp_meta meta = { .type = FROM_MAIN };

		uhp_agent_send(NULL, ag[0].a, &m, sizeof(m), &meta);
		if (!wait_for(&fan_done, (r + 1) * (RING_AGENTS - 1), 5000))
			break;
	}
	__atomic_store_n(&ag[0].fan_to, 0, __ATOMIC_RELEASE);
	uhp_runtime_stats(rt, &st, ws, 2);
	tap_diag("runs %llu (w0 %llu, w1 %llu) msgs %llu steals %llu (w0 %llu, w1 %llu) sleeps %llu",
		 (unsigned long long)st.runs, (unsigned long long)ws[0].runs,
		 (unsigned long long)ws[1].runs, (unsigned long long)st.msgs,
		 (unsigned long long)st.steals, (unsigned long long)ws[0].steals,
		 (unsigned long long)ws[1].steals, (unsigned long long)st.sleeps);
	tap_is(LD(fan_done), FAN_ROUNDS * (RING_AGENTS - 1), "fan-out: 20 rounds x 49 handled");
	tap_ok(st.steals > 0 && ws[0].runs > 0 && ws[1].runs > 0,
	       "steals happened with 2 workers (%llu), both ran agents",
	       (unsigned long long)st.steals);
	tap_is(LD(fifo_errors) + LD(overlaps), 0, "fan-out: FIFO from the root, no overlap");

	/* Idle: let the pool fall asleep, then measure. */
	t_sleep_ms(100);
	uhp_runtime_stats(rt, &st, NULL, 0);
	c0 = cpu_ns();
	t_sleep_ms(300);
	c1 = cpu_ns();
	uhp_runtime_stats(rt, &st2, NULL, 0);
	tap_diag("idle: %.2f ms CPU in 300 ms, sleeps %llu -> %llu, watches %llu",
		 (c1 - c0) / 1e6, (unsigned long long)st.sleeps,
		 (unsigned long long)st2.sleeps, (unsigned long long)st2.watches);
	tap_ok(c1 - c0 < 15000000ULL, "idle pool: %.2f ms CPU over 300 ms (< 15)",
	       (c1 - c0) / 1e6);
	tap_ok(st2.sleeps > 0 && st2.watches > 0, "idle workers slept, one as the watcher");

	/* External producer: its own handle, plain uhp_send(). */
	sleeps0 = st2.sleeps;
	if (uhp_arena_attach(ag[7].name, 0, &e.ch))
		tap_bail("attach producer");
	uint64_t before = total_handled(RING_AGENTS);

	pthread_create(&th, NULL, ext_producer, &e);
	pthread_join(th, NULL);
	ok = true;
	{
		uint64_t end = t_now_ns() + 5000000000ULL;

		while (total_handled(RING_AGENTS) < before + e.count && t_now_ns() < end)
			t_sleep_ms(1);
	}
	uhp_runtime_stats(rt, &st2, NULL, 0);
	tap_is(total_handled(RING_AGENTS) - before, e.count,
	       "external producer's 1000 plain sends all handled");
	tap_ok(LD(ag[7].ext_seq) == e.count && LD(fifo_errors) == 0, "... in order");
	tap_ok(st2.sleeps > sleeps0,
	       "... the pool slept between bursts and woke (%llu sleeps)",
	       (unsigned long long)(st2.sleeps - sleeps0));
	uhp_close(e.ch);
	uhp_runtime_destroy(rt);
	free_agents(RING_AGENTS);
}

/* ---- blind inboxes ---- */

static void t_blind(void)
{
	struct uhp_runtime *rt = pool(2, MAX_AGENTS);
	struct uhp_channel *mem, *prod;
	struct uhp_agent_opts ao = UHP_AGENT_OPTS_INIT;
	struct msg m = { .token = UINT32_MAX };
	struct uhp_meta meta = { .type = FROM_EXT };
	const unsigned nr = 150;
	uint64_t c0, c1, t0, lat_max = 0;
	bool ok = true;

	tap_is(make_agents(rt, nr, 4096), 0, "150 agents (past futex_waitv's 128 words)");
	if (uhp__mem_channel_new(1, 4096, &mem))
		tap_bail("mem channel");
	mem->consumer = true;
	memset(&ag[nr], 0, sizeof(ag[nr]));
	ag[nr].fail_on = -1;
	ao.fn = handler;
	ao.arg = &ag[nr];
	ao.max_msg = 256;
	tap_is(uhp_runtime_add_agent(rt, mem, &ao, &ag[nr].a), 0,
	       "plus one in-memory inbox (no way to wake anyone)");
	tap_is(uhp_runtime_start(rt), 0, "start");
	t_sleep_ms(100);	/* asleep */

	/* The last arenas and the in-memory inbox are blind to the watcher. */
	for (unsigned i = nr - 5; i <= nr && ok; i++) {
		uint64_t want = __atomic_load_n(&ag[i].handled, __ATOMIC_ACQUIRE) + 1;

		if (i < nr) {
			if (uhp_arena_attach(ag[i].name, 0, &prod))
				tap_bail("attach");
		} else {
			prod = mem;
		}
		m.seq = 0;	/* the first external record each of them gets */
		t0 = t_now_ns();
		ok = uhp_send(prod, &m, sizeof(m), &meta) == 0 &&
		     wait_for(&ag[i].handled, want, 2000);
		if (t_now_ns() - t0 > lat_max)
			lat_max = t_now_ns() - t0;
		if (prod != mem)
			uhp_close(prod);
		t_sleep_ms(30);
	}
	tap_ok(ok, "plain sends to the last 5 arenas and the in-memory inbox handled (max %.1f ms)",
	       lat_max / 1e6);
	t_sleep_ms(50);
	c0 = cpu_ns();
	t_sleep_ms(300);
	c1 = cpu_ns();
	tap_ok(c1 - c0 < 30000000ULL, "idle pool watching 151 inboxes, some blind: %.2f ms CPU over 300 ms (< 30)",
	       (c1 - c0) / 1e6);
	uhp_runtime_destroy(rt);
	uhp_close(mem);
	free_agents(nr);
}

/* ---- an inbox with an fd ---- */

static void t_fd_inbox(void)
{
	struct uhp_runtime *rt = pool(2, 8);
	struct uhp_agent_opts ao = UHP_AGENT_OPTS_INIT;
	struct uhp_meta meta = { .type = FROM_EXT };
	struct uhp_channel *ch;
	uint64_t lat_max = 0, one = 1;
	bool ok = true;

	if (uhp__mem_channel_new(1, 4096, &ch))
		tap_bail("mem channel");
	ch->consumer = true;
	ch->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);	/* closed by uhp_close() */
	memset(&ag[0], 0, sizeof(ag[0]));
	ag[0].fail_on = -1;
	ag[0].drain_fd = ch->fd;
	ao.fn = handler;
	ao.arg = &ag[0];
	ao.max_msg = 256;
	tap_is(uhp_runtime_add_agent(rt, ch, &ao, &ag[0].a), 0, "an inbox with an fd");
	tap_is(uhp_runtime_start(rt), 0, "start");
	t_sleep_ms(100);	/* the watcher is in poll() now */
	for (uint64_t k = 0; k < 5 && ok; k++) {
		struct msg m = { .token = UINT32_MAX, .seq = k };
		uint64_t t0;

		ok = uhp_send(ch, &m, sizeof(m), &meta) == 0;
		t0 = t_now_ns();
		/* What the kernel's NOTIFY does: the fd becomes readable. */
		ok = ok && write(ch->fd, &one, sizeof(one)) == sizeof(one) &&
		     wait_for(&ag[0].handled, k + 1, 2000);
		if (t_now_ns() - t0 > lat_max)
			lat_max = t_now_ns() - t0;
		t_sleep_ms(60);
	}
	tap_ok(ok && LD(ag[0].ext_seq) == 5, "5 records, each handled after its wakeup");
	tap_ok(lat_max < 50000000ULL,
	       "... the watcher woke from poll() for each: max %.1f ms (cap 200)",
	       lat_max / 1e6);
	uhp_runtime_destroy(rt);
	uhp_close(ch);
}

/* ---- stop mid-flight ---- */

static void t_stop_midflight(void)
{
	struct uhp_runtime *rt = pool(2, MAX_AGENTS);
	struct ext e = { .dst = 3, .count = 3000 };
	uint64_t handled, left = 0, sent = 0;
	pthread_t th;
	char buf[256];

	tap_is(make_agents(rt, 20, 65536), 0, "20 agents");
	for (unsigned i = 0; i < 20; i++)
		ag[i].next = &ag[(i + 1) % 20];
	reset_counters();
	tap_is(uhp_runtime_start(rt), 0, "start");
	if (uhp_arena_attach(ag[3].name, 0, &e.ch))
		tap_bail("attach");
	start_tokens(20, TOKENS, 1000000);	/* more hops than can finish */
	pthread_create(&th, NULL, ext_producer, &e);
	{
		/* Stop mid-flight, however loaded the machine is. */
		uint64_t end = t_now_ns() + 10000000000ULL;

		while (total_handled(20) < 2000 && t_now_ns() < end)
			t_sleep_ms(1);
	}
	tap_is(uhp_runtime_stop(rt), 0, "stop with tokens in flight");
	__atomic_store_n(&e.give_up, 1, __ATOMIC_RELEASE);
	pthread_join(th, NULL);

	handled = total_handled(20);
	for (unsigned i = 0; i < 20; i++) {
		struct uhp_meta m;

		sent += __atomic_load_n(&ag[i].sent_ok, __ATOMIC_ACQUIRE);
		while (uhp_recv(ag[i].inbox, buf, sizeof(buf), &m) >= 0)
			left++;
	}
	sent += TOKENS + e.sent;
	tap_diag("sent %llu (external %llu), handled %llu, left in inboxes %llu",
		 (unsigned long long)sent, (unsigned long long)e.sent,
		 (unsigned long long)handled, (unsigned long long)left);
	tap_ok(handled >= 2000, "work was done before the stop (%llu records)",
	       (unsigned long long)handled);
	tap_is(handled + left, sent, "every committed record handled or still in its inbox");
	tap_ok(left > 0, "... records were left in the inboxes (the stop hit mid-flight)");
	uhp_close(e.ch);
	uhp_runtime_destroy(rt);
	free_agents(20);
}

/* ---- handler error ---- */

static void t_handler_error(void)
{
	struct uhp_runtime *rt = pool(2, MAX_AGENTS);
	struct uhp_runtime_stats st;
	struct msg m = { .token = 5 };
	struct uhp_meta meta = { .type = FROM_MAIN };
	uint64_t end;

	tap_is(make_agents(rt, 2, 4096), 0, "2 agents");
	ag[1].fail_on = 5;
	uhp_runtime_start(rt);
	tap_is(uhp_agent_send(NULL, ag[1].a, &m, sizeof(m), &meta), 0, "send the poison");
	end = t_now_ns() + 5000000000ULL;
	while (!uhp_agent_error(ag[1].a) && t_now_ns() < end)
		t_sleep_ms(1);
	tap_is(uhp_agent_error(ag[1].a), -42, "handler's -42 stops the agent, uhp_agent_error says so");
	uhp_runtime_stats(rt, &st, NULL, 0);
	tap_is(st.agents_stopped, 1, "stats: 1 agent stopped");
	tap_is(uhp_agent_send(NULL, ag[1].a, &m, sizeof(m), &meta), -EPIPE,
	       "send to a stopped agent: -EPIPE");
	tap_is(uhp_agent_error(ag[0].a), 0, "the other agent is fine");
	uhp_runtime_destroy(rt);
	free_agents(2);
}

/* ---- hybrid ---- */

static void put(const char *root, const char *rel, const char *text)
{
	char path[PATH_MAX], cmd[PATH_MAX + 16];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	snprintf(cmd, sizeof(cmd), "mkdir -p %s", path);
	*strrchr(cmd, '/') = '\0';
	if (system(cmd))
		tap_bail("mkdir");
	f = fopen(path, "w");
	if (!f)
		tap_bail("write %s", path);
	fputs(text, f);
	fclose(f);
}

static void t_hybrid(void)
{
	struct uhp_runtime_opts o = UHP_RUNTIME_OPTS_INIT;
	struct uhp_worker_stats ws[8];
	struct uhp_runtime *rt;
	char root[128], cmd[160];
	const unsigned nr = 30;
	unsigned p = 0;

	snprintf(root, sizeof(root), "/tmp/uhp_rt_sysfs.%d", (int)getpid());
	put(root, "devices/system/cpu/online", "0-7\n");
	put(root, "devices/system/node/node0/cpulist", "0-7\n");
	put(root, "devices/cpu_core/cpus", "0-3\n");
	put(root, "devices/cpu_atom/cpus", "4-7\n");
	o.sysfs_root = root;
	o.pin = false;		/* the fake CPUs need not exist */
	o.spin = 64;
	tap_is(uhp_runtime_create(&o, &rt), 0, "fake hybrid 4 P + 4 E, unpinned");
	tap_is(uhp_runtime_stats(rt, NULL, ws, 8), 8, "... 8 workers");
	for (unsigned i = 0; i < 8; i++)
		p += ws[i].cpu.kind == UHP_CORES_P;
	tap_is(p, 4, "... 4 of them P");
	{
		struct uhp_create_opts co = UHP_CREATE_OPTS_INIT;

		co.ring_size = 65536;
		co.consumer = true;
		co.node = 0;
		for (unsigned i = 0; i < nr; i++) {
			struct uhp_agent_opts ao = UHP_AGENT_OPTS_INIT;
			struct tagent *t = &ag[i];

			memset(t, 0, sizeof(*t));
			t->fail_on = -1;
			t->prefer = i % 3;	/* ANY, P, E */
			snprintf(t->name, sizeof(t->name), "rth.%d.%u", (int)getpid(), i);
			uhp_arena_unlink(t->name);
			if (uhp_arena_create(t->name, &co, &t->inbox))
				tap_bail("arena");
			ao.fn = handler;
			ao.arg = t;
			ao.max_msg = 256;
			ao.prefer = t->prefer;
			if (uhp_runtime_add_agent(rt, t->inbox, &ao, &t->a))
				tap_bail("add");
			t->next = i ? &ag[i - 1] : NULL;
		}
		ag[0].next = &ag[nr - 1];
	}
	tap_ok(true, "30 agents: 10 prefer P, 10 prefer E, 10 any");
	reset_counters();
	tap_is(uhp_runtime_start(rt), 0, "start");
	/* Tokens hop P -> ANY -> E -> P ...: every cross-kind hop goes
	 * through the inject queues. */
	uint64_t t0 = t_now_ns();
	bool done;

	start_tokens(nr, 6, 300);
	done = wait_for(&tokens_done, 6, 10000);
	tap_ok(done, "6 tokens x 300 hops done (%.0f ms)", (t_now_ns() - t0) / 1e6);
	/* Asleep: a record for a P-only or E-only agent must wake a worker
	 * of its kind, not just any worker. */
	{
		uint64_t lat_max = 0;
		bool ok = true;

		for (unsigned k = 0; k < 12 && ok; k++) {
			struct tagent *t = &ag[1 + k % 2];	/* prefer P, then E */
			struct msg m = { .token = 100 + k, .hops_left = 0 };
			struct uhp_meta meta = { .type = FROM_MAIN };
			uint64_t want = LD(tokens_done) + 1, t0;

			t_sleep_ms(40);
			t0 = t_now_ns();
			ok = uhp_agent_send(NULL, t->a, &m, sizeof(m), &meta) == 0 &&
			     wait_for(&tokens_done, want, 3000);
			if (t_now_ns() - t0 > lat_max)
				lat_max = t_now_ns() - t0;
		}
		/* Without waking a worker of the right kind, a record waits
		 * for a parked one's 1 s cap; 500 ms leaves room for a loaded
		 * machine (8 unpinned workers on this host's CPUs). */
		tap_ok(ok && lat_max < 500000000ULL,
		       "asleep: single records to P-only and E-only agents handled (max %.1f ms, < 500)",
		       lat_max / 1e6);
	}
	tap_is(LD(bad_kind), 0, "P agents ran only on P workers, E agents only on E workers");
	tap_is(LD(overlaps) + LD(fifo_errors), 0, "no overlap, FIFO held");
	uhp_runtime_destroy(rt);
	free_agents(nr);

	o.cores = UHP_CORES_P;
	tap_is(uhp_runtime_create(&o, &rt), 0, "cores = P");
	p = 0;
	tap_is(uhp_runtime_stats(rt, NULL, ws, 8), 4, "... 4 workers");
	for (unsigned i = 0; i < 4; i++)
		p += ws[i].cpu.kind == UHP_CORES_P;
	tap_is(p, 4, "... all on P cores");
	uhp_runtime_destroy(rt);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	if (system(cmd))
		tap_diag("could not remove %s", root);
}

/* ---- parallel wake-up ---- */

static int slow_inside, slow_max;
static uint64_t slow_start[4];

/* Sleeps 150 ms; records when it started and how many ran at once. */
static int slow_handler(struct uhp_agent *self, struct uhp_rx_msg *msgs,
			unsigned n, void *arg)
{
	int now = __atomic_add_fetch(&slow_inside, 1, __ATOMIC_ACQ_REL);
	int max = __atomic_load_n(&slow_max, __ATOMIC_RELAXED);
	struct tagent *t = arg;

	(void)self, (void)msgs;
	while (now > max &&
	       !__atomic_compare_exchange_n(&slow_max, &max, now, false,
					    __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
		;
	__atomic_store_n(&slow_start[t - ag], t_now_ns(), __ATOMIC_RELEASE);
	t_sleep_ms(150);
	__atomic_store_n(&t->handled, t->handled + n, __ATOMIC_RELEASE);
	__atomic_fetch_sub(&slow_inside, 1, __ATOMIC_ACQ_REL);
	return 0;
}

static void t_parallel_wakeup(void)
{
	struct uhp_runtime *rt = pool(4, 8);
	struct uhp_create_opts co = UHP_CREATE_OPTS_INIT;
	uint64_t t0, late = 0;
	bool ok = true;

	co.ring_size = 4096;
	co.consumer = true;
	co.node = 0;
	for (unsigned i = 0; i < 3; i++) {
		struct uhp_agent_opts ao = UHP_AGENT_OPTS_INIT;
		struct tagent *t = &ag[i];

		memset(t, 0, sizeof(*t));
		snprintf(t->name, sizeof(t->name), "rtp.%d.%u", (int)getpid(), i);
		uhp_arena_unlink(t->name);
		if (uhp_arena_create(t->name, &co, &t->inbox))
			tap_bail("arena");
		ao.fn = slow_handler;
		ao.arg = t;
		if (uhp_runtime_add_agent(rt, t->inbox, &ao, &t->a))
			tap_bail("add");
	}
	tap_is(uhp_runtime_start(rt), 0, "4 workers, 3 agents whose handler sleeps 150 ms");
	for (unsigned round = 0; round < 3 && ok; round++) {
		t_sleep_ms(100);	/* a watcher and three parked workers */
		__atomic_store_n(&slow_max, 0, __ATOMIC_RELEASE);
		t0 = t_now_ns();
		for (unsigned i = 0; i < 3; i++)
			ok &= uhp_agent_send(NULL, ag[i].a, &t0, sizeof(t0), NULL) == 0;
		for (unsigned i = 0; i < 3; i++) {
			ok &= wait_for(&ag[i].handled, round + 1, 3000);
			if (LD(slow_start[i]) - t0 > late)
				late = LD(slow_start[i]) - t0;
		}
		ok &= LD(slow_max) == 3;
	}
	tap_ok(ok && late < 100000000ULL,
	       "3 sends to an idle pool of 4: the 3 handlers ran at once (latest start %.1f ms, < 100)",
	       late / 1e6);
	uhp_runtime_destroy(rt);
	free_agents(3);
}

/* ---- watcher hand-over (white box) ---- */

static void *idle_sleep_thread(void *arg)
{
	uhp__idle_sleep(arg);
	return NULL;
}

static void t_unwatch(void)
{
	struct uhp_runtime *rt = pool(2, 4);	/* not started: we play both workers */
	uint64_t end, t0, took;
	pthread_t th;

	/* Worker 1 watches; worker 0 (this thread's helper) goes idle. */
	__atomic_store_n(&rt->watcher, 1, __ATOMIC_SEQ_CST);
	__atomic_store_n(&rt->nr_searching, 1, __ATOMIC_SEQ_CST);
	pthread_create(&th, NULL, idle_sleep_thread, rt->workers[0]);
	end = t_now_ns() + 2000000000ULL;
	while (!__atomic_load_n(&rt->nr_parked, __ATOMIC_ACQUIRE) && t_now_ns() < end)
		t_sleep_ms(1);
	t_sleep_ms(20);		/* in the futex wait by now */
	t0 = t_now_ns();
	uhp__idle_unwatch(rt);	/* worker 1 leaves the seat to go to work */
	while (__atomic_load_n(&rt->nr_parked, __ATOMIC_ACQUIRE) && t_now_ns() < end)
		t_sleep_ms(1);
	took = t_now_ns() - t0;
	pthread_join(th, NULL);
	tap_ok(took < 300000000ULL,
	       "the watcher leaving its seat wakes the parked worker (%.1f ms, < 300; park cap 1000)",
	       took / 1e6);
	uhp_runtime_destroy(rt);
}

/* ---- start/stop races ---- */

struct racer {
	struct uhp_runtime *rt;
	pthread_barrier_t *bar;
	int op;			/* 0: start, 1: stop */
	int ret;
	int inside_after;	/* slow_inside when the call returned */
};

static void *race_call(void *arg)
{
	struct racer *r = arg;

	pthread_barrier_wait(r->bar);
	r->ret = r->op ? uhp_runtime_stop(r->rt) : uhp_runtime_start(r->rt);
	r->inside_after = __atomic_load_n(&slow_inside, __ATOMIC_ACQUIRE);
	return NULL;
}

/* Run op0 and op1 on rt from two threads at once. */
static void race2(struct uhp_runtime *rt, int op0, int op1, struct racer *r)
{
	pthread_barrier_t bar;
	pthread_t th[2];

	pthread_barrier_init(&bar, NULL, 2);
	for (int i = 0; i < 2; i++) {
		r[i] = (struct racer){ .rt = rt, .bar = &bar, .op = i ? op1 : op0 };
		pthread_create(&th[i], NULL, race_call, &r[i]);
	}
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&bar);
}

static void t_start_stop_races(void)
{
	struct uhp_create_opts co = UHP_CREATE_OPTS_INIT;
	struct uhp_agent_opts ao = UHP_AGENT_OPTS_INIT;
	struct racer r[2];
	unsigned bad_start = 0, bad_mixed = 0;
	uint64_t x = 1;

	for (unsigned k = 0; k < 40; k++) {
		struct uhp_runtime *rt = pool(2, 4);

		race2(rt, 0, 0, r);
		if (!((r[0].ret == 0 && r[1].ret == -EALREADY) ||
		      (r[1].ret == 0 && r[0].ret == -EALREADY)))
			bad_start++;
		uhp_runtime_destroy(rt);
	}
	tap_is(bad_start, 0, "start from two threads at once: one 0, one -EALREADY (40 tries)");

	for (unsigned k = 0; k < 40; k++) {
		struct uhp_runtime *rt = pool(2, 4);

		race2(rt, 0, 1, r);
		/* Either order is fine; a start that lost to the stop says so. */
		if (!(r[0].ret == 0 || r[0].ret == -ESHUTDOWN) || r[1].ret != 0 ||
		    uhp_runtime_start(rt) != -ESHUTDOWN)
			bad_mixed++;
		uhp_runtime_destroy(rt);
	}
	tap_is(bad_mixed, 0, "start racing stop: 0 or -ESHUTDOWN, then stopped for good (40 tries)");

	/* Two stops while a handler sleeps: both wait for it. */
	{
		struct uhp_runtime *rt = pool(2, 4);
		uint64_t end = t_now_ns() + 5000000000ULL;

		co.ring_size = 4096;
		co.consumer = true;
		memset(&ag[0], 0, sizeof(ag[0]));
		snprintf(ag[0].name, sizeof(ag[0].name), "rts.%d", (int)getpid());
		uhp_arena_unlink(ag[0].name);
		if (uhp_arena_create(ag[0].name, &co, &ag[0].inbox))
			tap_bail("arena");
		ao.fn = slow_handler;
		ao.arg = &ag[0];
		if (uhp_runtime_add_agent(rt, ag[0].inbox, &ao, &ag[0].a) ||
		    uhp_runtime_start(rt) ||
		    uhp_agent_send(NULL, ag[0].a, &x, sizeof(x), NULL))
			tap_bail("slow agent");
		while (!__atomic_load_n(&slow_inside, __ATOMIC_ACQUIRE) && t_now_ns() < end)
			t_sleep_ms(1);
		race2(rt, 1, 1, r);
		tap_ok(r[0].ret == 0 && r[1].ret == 0 && r[0].inside_after == 0 &&
		       r[1].inside_after == 0,
		       "two stops at once: neither returns before the running handler did");
		uhp_runtime_destroy(rt);
		free_agents(1);
	}
}

/* ---- backpressure: handlers that defer records ---- */

/* A new arena inbox for a test agent; its name into name (48 bytes). */
static struct uhp_channel *defer_inbox(char *name, const char *tag, size_t ring)
{
	struct uhp_create_opts co = UHP_CREATE_OPTS_INIT;
	struct uhp_channel *ch;

	co.ring_size = ring;
	co.consumer = true;
	co.node = 0;
	snprintf(name, 48, "rtd.%s.%d", tag, (int)getpid());
	uhp_arena_unlink(name);
	if (uhp_arena_create(name, &co, &ch))
		tap_bail("arena %s", name);
	return ch;
}

/*
 * A scripted handler. Call c (0, 1, ...) returns script[c] (the last entry
 * for later calls) and logs the seqs it was given; the records it says it
 * handled are logged as handled. Call 0 also sends 3 newer records (seq
 * 10, 11, 12) into its own inbox: they must come after the deferred ones.
 */
struct script {
	int ret[8];
	unsigned nr;
	unsigned calls;
	unsigned n[8];			/* n of each call */
	uint64_t first[8];		/* seq of msgs[0] of each call */
	uint64_t handled[64];
	unsigned nr_handled;
	int bad;			/* a record not where it should be */
};

static int script_handler(struct uhp_agent *self, struct uhp_rx_msg *msgs,
			  unsigned n, void *arg)
{
	struct script *s = arg;
	unsigned c = s->calls;
	int ret = s->ret[c < s->nr ? c : s->nr - 1];
	unsigned k = ret == 0 ? n : ret == UHP_AGENT_DEFER_ALL ? 0 :
		     (unsigned)ret < n ? (unsigned)ret : n;

	if (c < 8) {
		struct msg m;

		memcpy(&m, msgs[0].buf, sizeof(m));
		s->n[c] = n;
		s->first[c] = m.seq;
	}
	for (unsigned i = 0; i < n; i++) {
		struct msg m;

		memcpy(&m, msgs[i].buf, sizeof(m));
		if (msgs[i].len != sizeof(m) || msgs[i].meta.seq != m.seq)
			s->bad++;
		if (i < k && s->nr_handled < 64)
			s->handled[s->nr_handled++] = m.seq;
	}
	if (c == 0) {
		for (uint64_t q = 10; q < 13; q++) {
			struct msg m = { .seq = q };
			struct uhp_meta meta = { .seq = (uint32_t)q };

			if (uhp_agent_send(self, self, &m, sizeof(m), &meta))
				s->bad++;
		}
	}
	__atomic_store_n(&s->calls, c + 1, __ATOMIC_RELEASE);
	return ret;
}

static void t_defer_partial(void)
{
	struct uhp_runtime *rt = pool(1, 4);
	struct uhp_agent_opts ao = UHP_AGENT_OPTS_INIT;
	struct script s = { .ret = { 4, UHP_AGENT_DEFER_ALL, 2, 0, 0 }, .nr = 5 };
	struct script bad = { .ret = { 2 }, .nr = 1 };
	struct uhp_agent_stats as;
	struct uhp_runtime_stats st;
	struct uhp_channel *in, *in2;
	struct uhp_agent *a, *b;
	char name[48], name2[48];
	bool order = true;

	in = defer_inbox(name, "p", 65536);
	in2 = defer_inbox(name2, "q", 65536);
	ao.fn = script_handler;
	ao.arg = &s;
	if (uhp_runtime_add_agent(rt, in, &ao, &a))
		tap_bail("add");
	ao.arg = &bad;
	if (uhp_runtime_add_agent(rt, in2, &ao, &b))
		tap_bail("add");
	/* Ten records before the start: the first call gets all ten. */
	for (uint64_t q = 0; q < 10; q++) {
		struct msg m = { .seq = q };
		struct uhp_meta meta = { .seq = (uint32_t)q };

		if (uhp_agent_send(NULL, a, &m, sizeof(m), &meta))
			tap_bail("send");
	}
	{
		struct msg m = { 0 };

		if (uhp_agent_send(NULL, b, &m, sizeof(m), NULL))
			tap_bail("send");
	}
	tap_is(uhp_runtime_start(rt), 0, "defer: 1 worker, a scripted agent");
	{
		uint64_t end = t_now_ns() + 5000000000ULL;

		while ((__atomic_load_n(&s.calls, __ATOMIC_ACQUIRE) < 5 ||
			s.nr_handled < 13 || !uhp_agent_error(b)) &&
		       t_now_ns() < end)
			t_sleep_ms(1);
	}
	uhp_runtime_stop(rt);
	tap_ok(s.calls == 5 && s.n[0] == 10 && s.first[0] == 0 &&
	       s.n[1] == 6 && s.first[1] == 4 && s.n[2] == 6 && s.first[2] == 4 &&
	       s.n[3] == 4 && s.first[3] == 6 && s.n[4] == 3 && s.first[4] == 10,
	       "return 4 of 10: 6 again (seq 4..), DEFER_ALL: the same 6, "
	       "2: the last 4 (seq 6..), then the 3 newer ones");
	tap_diag("calls %u: n %u %u %u %u %u, first %llu %llu %llu %llu %llu",
		 s.calls, s.n[0], s.n[1], s.n[2], s.n[3], s.n[4],
		 (unsigned long long)s.first[0], (unsigned long long)s.first[1],
		 (unsigned long long)s.first[2], (unsigned long long)s.first[3],
		 (unsigned long long)s.first[4]);
	for (unsigned i = 0; i < s.nr_handled; i++)
		order &= s.handled[i] == i;
	tap_ok(s.nr_handled == 13 && order && !s.bad,
	       "13 records handled once each, in order, same len and meta (%u)",
	       s.nr_handled);
	uhp_agent_stats(a, &as);
	tap_ok(as.runs == 5 && as.msgs == 13 && as.deferrals == 3 &&
	       as.deferred == 6 + 6 + 4 && as.held == 0 && as.streak == 0,
	       "agent stats: 5 runs, 13 msgs, 3 deferrals of 16 records, none held");
	uhp_runtime_stats(rt, &st, NULL, 0);
	tap_ok(st.deferrals == 3 && st.deferred == 16 && st.retries == 3 &&
	       st.msgs == 13 + 1 - 1 + 0 && st.runs == 6,
	       "pool stats: 3 deferrals, 16 deferred, 3 retries, 13 msgs, 6 runs "
	       "(got %llu %llu %llu %llu %llu)", (unsigned long long)st.deferrals,
	       (unsigned long long)st.deferred, (unsigned long long)st.retries,
	       (unsigned long long)st.msgs, (unsigned long long)st.runs);
	tap_is(uhp_agent_error(b), -EINVAL, "returning 2 for 1 record stops the agent: -EINVAL");
	tap_is(uhp_agent_stats(NULL, &as), -EINVAL, "agent stats: NULL");
	uhp_runtime_destroy(rt);
	uhp_close(in);
	uhp_close(in2);
	uhp_arena_unlink(name);
	uhp_arena_unlink(name2);
}

/*
 * Ping-pong through tiny inboxes: two agents forward each record to each
 * other until its hops run out; a full inbox is deferred, never waited for.
 */
#define PP_HOPS		2000

struct pp {
	struct uhp_agent *a;
	struct pp *peer;
	uint64_t tx_seq, rx_seq, main_seq;
	uint64_t delivered;
	int inside;
};

static int pp_handler(struct uhp_agent *self, struct uhp_rx_msg *msgs,
		      unsigned n, void *arg)
{
	struct pp *p = arg;
	int ret = 0;

	if (__atomic_fetch_add(&p->inside, 1, __ATOMIC_ACQ_REL) != 0)
		__atomic_fetch_add(&overlaps, 1, __ATOMIC_RELAXED);
	for (unsigned i = 0; i < n; i++) {
		struct msg m;

		memcpy(&m, msgs[i].buf, sizeof(m));
		if (m.hops_left) {
			struct msg f = { .token = m.token, .hops_left = m.hops_left - 1,
					 .seq = p->tx_seq };
			struct uhp_meta meta = { .type = FROM_PEER,
						 .src = uhp_agent_id(self) };
			int r = uhp_agent_send(self, p->peer->a, &f, sizeof(f), &meta);

			if (r == -EAGAIN) {
				ret = UHP_AGENT_DEFER(i);	/* msgs[i..n) later */
				break;
			}
			if (r)
				__atomic_fetch_add(&send_errors, 1, __ATOMIC_RELAXED);
			else
				p->tx_seq++;
		} else {
			__atomic_fetch_add(&tokens_done, 1, __ATOMIC_RELAXED);
		}
		/* Handled: only now does it count. */
		if (msgs[i].meta.type == FROM_PEER && m.seq != p->rx_seq++)
			__atomic_fetch_add(&fifo_errors, 1, __ATOMIC_RELAXED);
		if (msgs[i].meta.type == FROM_MAIN && m.seq != p->main_seq++)
			__atomic_fetch_add(&fifo_errors, 1, __ATOMIC_RELAXED);
		__atomic_store_n(&p->delivered, p->delivered + 1, __ATOMIC_RELEASE);
	}
	__atomic_fetch_sub(&p->inside, 1, __ATOMIC_ACQ_REL);
	return ret;
}

static void t_defer_pingpong(unsigned workers)
{
	struct uhp_runtime *rt = pool(workers, 4);
	struct uhp_agent_opts ao = UHP_AGENT_OPTS_INIT;
	struct uhp_runtime_stats st;
	struct uhp_agent_stats s0, s1;
	struct pp p[2] = { { 0 } };
	struct uhp_channel *in[2];
	char name[2][48];
	unsigned cap = 0, records, sent[2] = { 0, 0 };
	uint64_t t0, el;
	bool ok;

	in[0] = defer_inbox(name[0], "a", 4096);
	in[1] = defer_inbox(name[1], "b", 4096);
	ao.fn = pp_handler;
	ao.max_msg = 64;
	for (unsigned i = 0; i < 2; i++) {
		p[i].peer = &p[1 - i];
		ao.arg = &p[i];
		if (uhp_runtime_add_agent(rt, in[i], &ao, &p[i].a))
			tap_bail("add");
	}
	reset_counters();
	/*
	 * Fill agent 0's inbox before the start (its capacity C), then C / 2
	 * more into agent 1's: 1.5 C records in flight, so inboxes fill and
	 * handlers must defer, but fewer than the 2 C + 2 a cycle of two
	 * full inboxes with held records would need (that cycle cannot
	 * progress, whatever the runtime does).
	 */
	for (;;) {
		struct msg m = { .token = cap, .hops_left = PP_HOPS - 1, .seq = sent[0] };
		struct uhp_meta meta = { .type = FROM_MAIN };

		if (uhp_agent_send(NULL, p[0].a, &m, sizeof(m), &meta))
			break;
		sent[0]++;
		cap++;
	}
	records = cap + cap / 2;
	while (sent[0] + sent[1] < records) {
		struct msg m = { .token = sent[0] + sent[1], .hops_left = PP_HOPS - 1,
				 .seq = sent[1] };
		struct uhp_meta meta = { .type = FROM_MAIN };

		if (uhp_agent_send(NULL, p[1].a, &m, sizeof(m), &meta))
			tap_bail("inject");
		sent[1]++;
	}
	t0 = t_now_ns();
	if (uhp_runtime_start(rt))
		tap_bail("start");
	ok = wait_for(&tokens_done, records, 30000);
	el = t_now_ns() - t0;
	t_sleep_ms(10);
	uhp_runtime_stats(rt, &st, NULL, 0);
	uhp_agent_stats(p[0].a, &s0);
	uhp_agent_stats(p[1].a, &s1);
	tap_diag("%u worker(s), inboxes of %u records, %u in flight x %u hops: "
		 "%.1f ms, %llu runs, %llu deferrals (%llu records), %llu retries, "
		 "%llu sleeps", workers, cap, records, PP_HOPS, el / 1e6,
		 (unsigned long long)st.runs, (unsigned long long)st.deferrals,
		 (unsigned long long)st.deferred, (unsigned long long)st.retries,
		 (unsigned long long)st.sleeps);
	tap_ok(ok && el < 30000000000ULL,
	       "ping-pong, %u worker(s), 4 KiB inboxes: all %u records done, "
	       "no deadlock (%.0f ms)", workers, records, el / 1e6);
	tap_is(LD(p[0].delivered) + LD(p[1].delivered), (uint64_t)records * PP_HOPS,
	       "... every hop delivered exactly once");
	tap_is(LD(fifo_errors) + LD(overlaps) + LD(send_errors), 0,
	       "... per-sender FIFO, no overlap, no send error");
	tap_ok(st.deferrals > 0 && s0.deferrals + s1.deferrals == st.deferrals &&
	       st.msgs == (uint64_t)records * PP_HOPS && s0.held + s1.held == 0,
	       "... handlers deferred (%llu times), stats add up",
	       (unsigned long long)st.deferrals);
	uhp_runtime_destroy(rt);
	for (unsigned i = 0; i < 2; i++) {
		uhp_close(in[i]);
		uhp_arena_unlink(name[i]);
	}
}

/*
 * A destination that never drains: an agent of a runtime never started.
 * The agent forwarding to it defers over and over without burning a CPU,
 * other agents keep running, and once the destination has room again the
 * deferred records go through (the agent was not forgotten).
 */
/* CPU allowed over 300 ms of retries (a spinning worker: 300 or more).
 * ThreadSanitizer makes every retry some 10 times dearer. */
#ifdef __SANITIZE_THREAD__
#define STALLED_CPU_MS	150U
#else
#define STALLED_CPU_MS	60U
#endif

struct fwd {
	struct uhp_agent *dst;
	uint64_t forwarded;
};

static int fwd_handler(struct uhp_agent *self, struct uhp_rx_msg *msgs,
		       unsigned n, void *arg)
{
	struct fwd *f = arg;

	for (unsigned i = 0; i < n; i++) {
		int r = uhp_agent_send(self, f->dst, msgs[i].buf, msgs[i].len,
				       &msgs[i].meta);

		if (r == -EAGAIN)
			return UHP_AGENT_DEFER(i);
		if (r)
			__atomic_fetch_add(&send_errors, 1, __ATOMIC_RELAXED);
		__atomic_store_n(&f->forwarded, f->forwarded + 1, __ATOMIC_RELEASE);
	}
	return 0;
}

static void t_defer_stalled(void)
{
	struct uhp_runtime *rt = pool(2, 16), *dead = pool(1, 1);
	struct uhp_agent_opts ao = UHP_AGENT_OPTS_INIT;
	struct uhp_agent_stats as, as2;
	struct uhp_channel *in, *xin;
	struct uhp_agent *d, *x;
	struct fwd f = { 0 };
	char name[48], xname[48];
	unsigned extra = 40, got = 0, next = 0, order_bad = 0;
	uint64_t c0, c1;
	unsigned char buf[64];
	struct uhp_meta meta;
	ssize_t r;
	bool ok;

	in = defer_inbox(name, "d", 65536);
	xin = defer_inbox(xname, "x", 4096);
	ao.fn = fwd_handler;
	ao.max_msg = 64;
	ao.arg = &f;
	if (uhp_runtime_add_agent(dead, xin, &ao, &x) ||
	    uhp_runtime_add_agent(rt, in, &ao, &d))
		tap_bail("add");
	f.dst = x;
	if (make_agents(rt, 10, 65536))
		tap_bail("ring agents");
	for (unsigned i = 0; i < 10; i++)
		ag[i].next = &ag[(i + 1) % 10];
	reset_counters();
	if (uhp_runtime_start(rt))
		tap_bail("start");
	/* More than X's inbox holds (64 records of 64 B in 4 KiB). */
	for (unsigned i = 0; i < 64 + extra; i++) {
		struct msg m = { .seq = i };
		struct uhp_meta mm = { .seq = i };

		if (uhp_agent_send(NULL, d, &m, sizeof(m), &mm))
			tap_bail("send to the forwarder");
	}
	ok = false;
	for (uint64_t end = t_now_ns() + 5000000000ULL; !ok && t_now_ns() < end;
	     t_sleep_ms(1)) {
		uhp_agent_stats(d, &as);
		ok = as.held > 0 && as.deferrals > 2;
	}
	tap_ok(ok, "forwarder to a stalled inbox: deferring (%u held, %llu deferrals)",
	       as.held, (unsigned long long)as.deferrals);

	start_tokens(10, 4, 300);
	tap_ok(wait_for(&tokens_done, 4, 10000) && LD(fifo_errors) == 0 &&
	       total_handled(10) == 4 * 300,
	       "... other agents keep running: 4 tokens x 300 hops done meanwhile");

	t_sleep_ms(50);
	uhp_agent_stats(d, &as);
	c0 = cpu_ns();
	t_sleep_ms(300);
	c1 = cpu_ns();
	uhp_agent_stats(d, &as2);
	tap_diag("stalled: %.2f ms CPU in 300 ms, %llu retries meanwhile, streak %u",
		 (c1 - c0) / 1e6, (unsigned long long)(as2.runs - as.runs), as2.streak);
	tap_ok(c1 - c0 < STALLED_CPU_MS * 1000000ULL && as2.runs > as.runs,
	       "... retried (%llu times in 300 ms), not spinning: %.2f ms CPU (< %u)",
	       (unsigned long long)(as2.runs - as.runs), (c1 - c0) / 1e6,
	       STALLED_CPU_MS);

	/* Drain the stalled inbox by hand: the held records must come. */
	for (uint64_t end = t_now_ns() + 5000000000ULL;
	     got < 64 + extra && t_now_ns() < end;) {
		r = uhp_recv(xin, buf, sizeof(buf), &meta);
		if (r == -EAGAIN) {
			t_sleep_ms(1);
			continue;
		}
		if (r != sizeof(struct msg) || meta.seq != next++)
			order_bad++;
		got++;
	}
	uhp_agent_stats(d, &as);
	tap_ok(got == 64 + extra && !order_bad && as.held == 0 &&
	       LD(f.forwarded) == 64 + extra && LD(send_errors) == 0,
	       "... room again: all %u records arrive, in order (%u)", 64 + extra, got);
	uhp_runtime_destroy(rt);
	uhp_runtime_destroy(dead);
	free_agents(10);
	uhp_close(in);
	uhp_close(xin);
	uhp_arena_unlink(name);
	uhp_arena_unlink(xname);
}

int main(void)
{
	tap_plan(102);
	t_errors();
	t_ring_idle_external();
	t_fd_inbox();
	t_blind();
	t_stop_midflight();
	t_handler_error();
	t_hybrid();
	t_parallel_wakeup();
	t_unwatch();
	t_start_stop_races();
	t_defer_partial();
	t_defer_pingpong(2);
	t_defer_pingpong(1);
	t_defer_stalled();
	return tap_done();
}
