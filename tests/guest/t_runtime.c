// SPDX-License-Identifier: MIT
/*
 * The agent runtime (uhp_runtime.h) on the real thing: /dev/uhp inboxes and
 * a two-node machine. The host tests drive the runtime with arenas and a
 * faked fd; here the watcher sleeps in poll() on channel fds with
 * need_wakeup armed, a record from another process must wake it, agents on
 * both nodes pass tokens, and sysfs describes the two nodes for real.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "uhp.h"
#include "uhp_runtime.h"

#include "harness.h"

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static uint64_t cpu_ns(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000ULL +
	       (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000ULL;
}

static struct uhp_channel *dev_inbox(int dev, const char *name, int node)
{
	struct uhp_create_opts o = UHP_CREATE_OPTS_INIT;
	struct uhp_channel *ch = NULL;

	o.ring_size = 1 << 16;
	o.node = node;
	o.consumer = true;
	uhp_unlink(dev, name);
	if (uhp_create(dev, name, &o, &ch))
		return NULL;
	return ch;
}

TEST(sysfs_shows_two_nodes_one_cpu_each)
{
	struct uhp_topology *t;
	struct uhp_cpu c;

	ASSERT_EQ(uhp_topology_load(NULL, &t), 0);
	EXPECT_EQ(uhp_topology_nr_cpus(t), 2);
	EXPECT_EQ(uhp_topology_nr_nodes(t), 2);
	EXPECT_FALSE(uhp_topology_hybrid(t));
	for (unsigned i = 0; i < uhp_topology_nr_cpus(t); i++) {
		ASSERT_EQ(uhp_topology_cpu(t, i, &c), 0);
		EXPECT_EQ(c.cpu, i);
		EXPECT_EQ(c.node, (int32_t)i);	/* -numa node,cpus=k per node */
		EXPECT_EQ(c.kind, UHP_CORES_ANY);
	}
	uhp_topology_free(t);
}

/* ---- an idle pool sleeps; another process's plain uhp_send wakes it ---- */

#define WAKE_RECORDS	20

struct count {
	_Atomic uint64_t n, bad, running;
};

static int count_fn(struct uhp_agent *self, struct uhp_rx_msg *msgs,
		    unsigned n, void *arg)
{
	struct count *c = arg;

	(void)self;
	/* Pairs with nothing: only checks that the runtime never runs one
	 * agent on two workers at once. */
	if (atomic_fetch_add(&c->running, 1))
		atomic_fetch_add(&c->bad, 1);
	for (unsigned i = 0; i < n; i++) {
		uint64_t v;

		memcpy(&v, msgs[i].buf, sizeof(v));
		if (msgs[i].len != sizeof(v) || v != atomic_load(&c->n) + i)
			atomic_fetch_add(&c->bad, 1);
	}
	atomic_fetch_add(&c->n, n);
	atomic_fetch_sub(&c->running, 1);
	return 0;
}

TEST_TIMEOUT(a_record_from_another_process_wakes_the_sleeping_pool, 120)
{
	struct uhp_runtime_opts ro = UHP_RUNTIME_OPTS_INIT;
	struct uhp_agent_opts ao = UHP_AGENT_OPTS_INIT;
	static struct count c;
	struct uhp_runtime_stats st;
	struct uhp_runtime *rt;
	struct uhp_channel *in;
	uint64_t c0, t0, idle_cpu;
	int dev, status;
	pid_t pid;

	dev = uhp_open();
	ASSERT_GE(dev, 0);
	in = dev_inbox(dev, "rt.wake", -1);
	ASSERT_TRUE(in != NULL);
	ASSERT_EQ(uhp_runtime_create(&ro, &rt), 0);
	ao.fn = count_fn;
	ao.arg = &c;
	ASSERT_EQ(uhp_runtime_add_agent(rt, in, &ao, NULL), 0);
	ASSERT_EQ(uhp_runtime_start(rt), 0);

	/* Idle: after the spin and back-off, the pool sleeps in poll(). */
	usleep(200 * 1000);
	c0 = cpu_ns();
	t0 = now_ns();
	usleep(500 * 1000);
	idle_cpu = cpu_ns() - c0;
	TH_LOG("idle pool: %.1f ms of CPU in %.0f ms", idle_cpu / 1e6,
	       (now_ns() - t0) / 1e6);
	/* Two spinning workers would burn ~1000 ms; a sleeping pool a few. */
	EXPECT_LT(idle_cpu, 50 * 1000000ULL);

	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		struct uhp_channel *p;
		int d = uhp_open();

		if (d < 0 || uhp_attach(d, "rt.wake", 0, &p))
			_exit(1);
		/* Each record after a pause: the pool is asleep every time. */
		for (uint64_t i = 0; i < WAKE_RECORDS; i++) {
			usleep(30 * 1000);
			if (uhp_send(p, &i, sizeof(i), NULL))
				_exit(2);
		}
		uhp_close(p);
		_exit(0);
	}
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	t0 = now_ns();
	while (atomic_load(&c.n) < WAKE_RECORDS && now_ns() - t0 < 5000000000ULL)
		usleep(1000);
	EXPECT_EQ(atomic_load(&c.n), WAKE_RECORDS);
	EXPECT_EQ(atomic_load(&c.bad), 0);
	ASSERT_EQ(uhp_runtime_stop(rt), 0);
	ASSERT_EQ(uhp_runtime_stats(rt, &st, NULL, 0), 2);	/* workers */
	TH_LOG("sleeps %llu (watcher %llu), runs %llu",
	       (unsigned long long)st.sleeps, (unsigned long long)st.watches,
	       (unsigned long long)st.runs);
	/* The records were spread out: the pool went to sleep between them. */
	EXPECT_GE(st.watches, WAKE_RECORDS / 2);
	uhp_runtime_destroy(rt);
	uhp_close(in);
	EXPECT_EQ(uhp_unlink(dev, "rt.wake"), 0);
	close(dev);
}

/* ---- tokens around agents whose inboxes sit on both nodes ---- */

#define RING_AGENTS	6
#define TOKENS		4
#define HOPS		3000

struct ring_agent {
	struct uhp_agent *next;
	_Atomic uint64_t seen, bad;
	_Atomic int running;
	uint64_t last[TOKENS];		/* per token: hop count last seen */
};

struct token {
	uint32_t id;
	uint32_t hop;
};

static int ring_fn(struct uhp_agent *self, struct uhp_rx_msg *msgs,
		   unsigned n, void *arg)
{
	struct ring_agent *a = arg;

	if (atomic_fetch_add(&a->running, 1))
		atomic_fetch_add(&a->bad, 1);
	for (unsigned i = 0; i < n; i++) {
		struct token t;

		if (msgs[i].len != sizeof(t)) {
			atomic_fetch_add(&a->bad, 1);
			continue;
		}
		memcpy(&t, msgs[i].buf, sizeof(t));
		if (t.id >= TOKENS || (a->last[t.id] && t.hop <= a->last[t.id]))
			atomic_fetch_add(&a->bad, 1);
		else
			a->last[t.id] = t.hop;
		atomic_fetch_add(&a->seen, 1);
		if (t.hop < HOPS) {		/* each token makes HOPS hops */
			t.hop++;
			if (uhp_agent_send(self, a->next, &t, sizeof(t), NULL))
				atomic_fetch_add(&a->bad, 1);
		}
	}
	atomic_fetch_sub(&a->running, 1);
	return 0;
}

TEST_TIMEOUT(tokens_pass_between_agents_on_both_nodes, 240)
{
	struct uhp_runtime_opts ro = UHP_RUNTIME_OPTS_INIT;
	static struct ring_agent ra[RING_AGENTS];
	struct uhp_channel *in[RING_AGENTS];
	struct uhp_agent *ag[RING_AGENTS];
	struct uhp_worker_stats ws[2];
	struct uhp_runtime_stats st;
	struct uhp_runtime *rt;
	uint64_t seen = 0, bad = 0, t0;
	char name[32];
	int dev;

	dev = uhp_open();
	ASSERT_GE(dev, 0);
	ASSERT_EQ(uhp_runtime_create(&ro, &rt), 0);
	for (int i = 0; i < RING_AGENTS; i++) {
		struct uhp_agent_opts ao = UHP_AGENT_OPTS_INIT;
		struct uhp_info info;
		struct uhp_ring_info ri[2];

		snprintf(name, sizeof(name), "rt.tok%d", i);
		in[i] = dev_inbox(dev, name, i % 2);
		ASSERT_TRUE(in[i] != NULL);
		/* The inbox's only ring is on the node asked for. */
		ASSERT_EQ(uhp_info(in[i], &info, ri, 2), 0);
		ASSERT_EQ(info.nr_rings, 1);
		EXPECT_EQ(ri[0].node, i % 2);
		ao.fn = ring_fn;
		ao.arg = &ra[i];
		ao.node = i % 2;
		ASSERT_EQ(uhp_runtime_add_agent(rt, in[i], &ao, &ag[i]), 0);
	}
	for (int i = 0; i < RING_AGENTS; i++)
		ra[i].next = ag[(i + 1) % RING_AGENTS];
	ASSERT_EQ(uhp_runtime_start(rt), 0);
	for (uint32_t k = 0; k < TOKENS; k++) {
		struct token t = { .id = k, .hop = 1 };

		/* From outside the pool: NULL self. */
		ASSERT_EQ(uhp_agent_send(NULL, ag[(k * 2) % RING_AGENTS], &t,
					 sizeof(t), NULL), 0);
	}
	t0 = now_ns();
	while (now_ns() - t0 < 180000000000ULL) {
		seen = 0;
		for (int i = 0; i < RING_AGENTS; i++)
			seen += atomic_load(&ra[i].seen);
		if (seen >= (uint64_t)TOKENS * HOPS)
			break;
		usleep(5000);
	}
	ASSERT_EQ(uhp_runtime_stop(rt), 0);
	for (int i = 0; i < RING_AGENTS; i++)
		bad += atomic_load(&ra[i].bad);
	EXPECT_EQ(seen, (uint64_t)TOKENS * HOPS);
	EXPECT_EQ(bad, 0);
	ASSERT_EQ(uhp_runtime_stats(rt, &st, ws, 2), 2);	/* workers */
	TH_LOG("%llu hops in %.2f s; runs %llu, steals %llu, sleeps %llu; "
	       "worker 0 on CPU %u node %d, worker 1 on CPU %u node %d",
	       (unsigned long long)seen, (now_ns() - t0) / 1e9,
	       (unsigned long long)st.runs, (unsigned long long)st.steals,
	       (unsigned long long)st.sleeps, ws[0].cpu.cpu, ws[0].cpu.node,
	       ws[1].cpu.cpu, ws[1].cpu.node);
	EXPECT_EQ(st.nr_workers, 2);
	EXPECT_EQ(st.msgs, (uint64_t)TOKENS * HOPS);
	EXPECT_EQ(st.recv_errors, 0);
	/* Pinned by topology: one worker per CPU, each on its CPU's node. */
	EXPECT_EQ(ws[0].cpu.node, (int32_t)ws[0].cpu.cpu);
	EXPECT_EQ(ws[1].cpu.node, (int32_t)ws[1].cpu.cpu);
	uhp_runtime_destroy(rt);
	for (int i = 0; i < RING_AGENTS; i++) {
		snprintf(name, sizeof(name), "rt.tok%d", i);
		uhp_close(in[i]);
		EXPECT_EQ(uhp_unlink(dev, name), 0);
	}
	close(dev);
}

TEST_HARNESS_MAIN
