/* SPDX-License-Identifier: MIT */
/*
 * Internals of the agent runtime (uhp_runtime.h), shared by its files and
 * the host tests; nothing here is exported (hidden visibility, uhp__ names).
 *
 *   topology.c   cpulist parser, sysfs topology
 *   deque.c      Chase-Lev work-stealing deque (fixed capacity)
 *   node_mem.c   memory placed on a NUMA node
 *   runtime.c    pool, agents, scheduling (the agent state machine)
 *   idle.c       what idle workers do: park on the pool's futex word, or
 *                watch every idle inbox at once
 */
#ifndef UHP_RUNTIME_INTERNAL_H
#define UHP_RUNTIME_INTERNAL_H

#include <pthread.h>

#include "uhp_internal.h"
#include "uhp_runtime.h"

/* ---- topology.c ---- */

/*
 * Parse a sysfs cpulist ("0-3,8,10-11", optional trailing newline; empty
 * is an empty set) into mask (nbits bits, cleared first).
 * Returns the number of CPUs set, or -EINVAL (malformed, descending range,
 * a number >= nbits).
 */
UHP_HIDDEN int uhp__cpulist_parse(const char *s, uint64_t *mask, unsigned nbits);

static inline bool uhp__mask_test(const uint64_t *mask, unsigned bit)
{
	return mask[bit / 64] >> (bit % 64) & 1;
}

/* ---- deque.c ---- */

/*
 * Chase-Lev deque of non-NULL pointers with a fixed power-of-two capacity.
 * The owner pushes and pops at the bottom; any thread steals at the top.
 * top and bottom are signed so that bottom - 1 on an empty deque is -1,
 * not a huge unsigned value (the C11 code of Le et al. uses size_t and
 * relies on never popping from index 0).
 */
struct uhp__deque {
	int64_t top __attribute__((aligned(64)));	/* thieves CAS it */
	int64_t bottom __attribute__((aligned(64)));	/* owner writes it */
	uint64_t mask;
	void **slots;
};

/* cap: a power of two >= 2; slots: cap pointers (caller's memory). */
UHP_HIDDEN void uhp__deque_init(struct uhp__deque *d, void **slots, uint64_t cap);
/* Owner only. 0, or -ENOSPC when full (the item is not queued). */
UHP_HIDDEN int uhp__deque_push(struct uhp__deque *d, void *item);
/* Owner only. The newest item, or NULL when empty. */
UHP_HIDDEN void *uhp__deque_pop(struct uhp__deque *d);
/* Any thread. 0 with *out set, -EAGAIN (empty) or -EBUSY (lost a race:
 * another thief or the owner took the item; try again). */
UHP_HIDDEN int uhp__deque_steal(struct uhp__deque *d, void **out);
/* Any thread: items queued, a racy estimate (never negative). */
UHP_HIDDEN int64_t uhp__deque_size(const struct uhp__deque *d);

/* ---- node_mem.c ---- */

/*
 * size bytes of zeroed anonymous memory preferring node (mbind
 * MPOL_PREFERRED before the first touch; node < 0 or an mbind failure
 * leaves the default policy). NULL on failure.
 */
UHP_HIDDEN void *uhp__node_alloc(size_t size, int node);
UHP_HIDDEN void uhp__node_free(void *p, size_t size);

/* ---- runtime.c, idle.c ---- */

/*
 * Agent states (struct uhp_agent.state). Whoever moves an agent out of
 * IDLE or QUEUED owns it: it is in no queue, and only the owner calls its
 * inbox's consumer functions, so an agent never runs on two workers.
 *
 *   IDLE ---- send / sweep / watcher claims ----> QUEUED or RUNNING
 *   QUEUED --- a worker takes it from a queue --> RUNNING
 *   RUNNING -- a send meanwhile ----------------> NOTIFIED
 *   RUNNING -- done, inbox empty ---------------> IDLE
 *   RUNNING -- done, records left --------------> QUEUED (pushed again)
 *   NOTIFIED - done ----------------------------> QUEUED (pushed again)
 *   RUNNING or NOTIFIED -- handler deferred ----> QUEUED (on the owner's
 *                                                 retry list, not stealable)
 *   RUNNING -- handler < 0, inbox error --------> STOPPED (final)
 *
 * Senders only ever move IDLE -> QUEUED (then they push it) or RUNNING ->
 * NOTIFIED (the owner pushes it when done): one push per trip through a
 * queue, so an agent is in at most one queue and a deque holding every
 * agent of the runtime cannot fill.
 */
enum {
	UHP__AGENT_IDLE,
	UHP__AGENT_QUEUED,
	UHP__AGENT_RUNNING,	/* run, swept or watched by its owner */
	UHP__AGENT_NOTIFIED,	/* RUNNING, and sent to meanwhile */
	UHP__AGENT_STOPPED,
};

struct uhp_agent {
	/* read-only after uhp_runtime_add_agent() */
	struct uhp_runtime *rt;
	struct uhp_channel *inbox;
	uhp_agent_fn fn;
	void *arg;
	uint32_t id;
	uint32_t klass;			/* queues it may go to: UHP_CORES_* */
	uint32_t max_msg;
	int node;
	size_t mem_len;			/* this mapping: struct, slots, buffers */
	struct uhp_rx_msg *msgs;	/* rt->batch slots */
	unsigned char *bufs;		/* rt->batch * max_msg bytes */

	uint32_t state __attribute__((aligned(64)));	/* UHP__AGENT_* */
	int error;			/* why it stopped (written once) */
	/*
	 * Deferred records: msgs[held_off, held_off + held). Owner only;
	 * the next owner is ordered after us by the queues, as for the
	 * inbox. held and the counters are also read by uhp_agent_stats().
	 */
	uint32_t held_off, held;
	uint32_t streak;		/* deferrals in a row without progress */
	uint64_t retry_at;		/* CLOCK_MONOTONIC ns: not run before */
	struct uhp_agent *retry_next;	/* on the owner's retry list */
	/* One writer at a time (the owner), relaxed atomics. */
	uint64_t nr_runs, nr_msgs, nr_deferrals, nr_deferred;
	/* watcher only: its fd said POLLHUP (hung up: no producer left);
	 * polled no more, it would return at once every time */
	bool inbox_hup;
};

/* Workers' queues: a deque per class they run. */
#define UHP__DQ_ANY	0	/* agents any worker may run */
#define UHP__DQ_KIND	1	/* agents only this worker's kind may run */

struct uhp__worker {
	struct uhp_runtime *rt;
	unsigned index;
	struct uhp_cpu cpu;
	pthread_t thread;
	size_t mem_len;
	unsigned *victims;		/* steal order: same node first */
	unsigned nr_victims, nr_near;
	uint64_t rng;
	unsigned tick;			/* pick() calls, for fairness */
	unsigned runs_since_sweep;
	bool released;			/* let an agent go IDLE since it last slept */
	int start_ret;

	struct uhp__deque dq[2];

	/*
	 * Deferred agents (QUEUED), owner only, FIFO through retry_next:
	 * run when their retry_at has come and nothing else is runnable,
	 * or every RETRY_EVERY-th pick. wake_by: the head's retry_at while
	 * it sleeps (0: none), so idle.c cuts its sleep there.
	 */
	struct uhp_agent *retry_head, *retry_tail;
	unsigned nr_retry;
	bool blocked;			/* last run: a deferral without progress */
	uint64_t wake_by;

	/* One writer (this worker), relaxed atomics: uhp_runtime_stats(). */
	struct uhp_worker_stats stats __attribute__((aligned(64)));
};

/* A locked FIFO of agents for senders that are not on a fitting worker. */
struct uhp__inject {
	pthread_mutex_t lock;
	uint64_t head, tail;		/* under lock */
	uint64_t count;			/* atomic: peeked without the lock */
	struct uhp_agent **ring;	/* rt->cap entries */
};

struct uhp_runtime {
	unsigned nr_workers;
	unsigned batch, spin, max_agents;
	bool pin;
	bool mixed;			/* both P and E workers: classes apply */
	uint64_t cap;			/* deque capacity >= max_agents */
	struct uhp__worker **workers;
	struct uhp__inject inject[3];	/* by class: UHP_CORES_ANY/P/E */

	pthread_mutex_t add_lock;	/* serialises uhp_runtime_add_agent() */
	struct uhp_agent **agents;	/* max_agents entries */
	uint32_t nr_agents;		/* published with store-release */
	uint32_t sweep_cursor;
	uint32_t agents_stopped;

	/*
	 * Start and stop. start_lock guards starting, nr_ready and the
	 * verdict (started or stop) that workers wait for on start_cond;
	 * started and stop are also read without it (atomics). join_lock
	 * serialises the joins: a stop returns only once the workers exited,
	 * also when another stop is joining them.
	 */
	uint32_t started, stop;
	bool starting;			/* under start_lock: a start claimed it */
	bool joined;			/* under join_lock */
	pthread_mutex_t start_lock;
	pthread_cond_t start_cond;
	unsigned nr_ready;
	pthread_mutex_t join_lock;

	/* idle.c */
	uint32_t nr_searching;		/* workers looking for work, awake */
	uint32_t nr_parked;		/* workers asleep on wake_seq */
	uint32_t wake_seq;		/* futex: parked workers */
	int32_t watcher;		/* worker watching the inboxes, or -1 */
	uint32_t watch_seq;		/* futex: pokes the watcher */
	uint32_t watcher_polls;		/* the watcher sleeps in poll() */
	int evfd;			/* ... and this eventfd wakes it there */
	struct uhp_agent **watched;	/* max_agents: the watcher's agents */
	void *waitv;			/* struct futex_waitv[UHP__WAITV_MAX] */
	void *pfds;			/* struct pollfd[max_agents + 1] */
	struct uhp_agent **pfd_agent;	/* whose fd pfds[i] is (i >= 1) */
};

/* runtime.c, for idle.c */
UHP_HIDDEN bool uhp__agent_claim(struct uhp_agent *a);
/* The owner lets a go: queued if more (or a send came), else IDLE.
 * Returns true if it queued a. */
UHP_HIDDEN bool uhp__agent_release(struct uhp__worker *w, struct uhp_agent *a,
				   bool more);
UHP_HIDDEN bool uhp__rt_has_work(struct uhp__worker *w);

/* idle.c */
UHP_HIDDEN int uhp__idle_init(struct uhp_runtime *rt);
UHP_HIDDEN void uhp__idle_fini(struct uhp_runtime *rt);
/* Idle worker, counted in nr_searching: sleep until work may be there. */
UHP_HIDDEN void uhp__idle_sleep(struct uhp__worker *w);
/* Work was queued: wake a sleeping worker unless one is searching. */
UHP_HIDDEN void uhp__idle_kick(struct uhp_runtime *rt);
/* Agents went IDLE or were added: have the watcher, if any, scan again. */
UHP_HIDDEN void uhp__idle_rescan(struct uhp_runtime *rt);
/* The watcher leaves its seat: a parked worker is woken to take it. */
UHP_HIDDEN void uhp__idle_unwatch(struct uhp_runtime *rt);
/* Stop: wake every worker. */
UHP_HIDDEN void uhp__idle_wake_all(struct uhp_runtime *rt);

#endif /* UHP_RUNTIME_INTERNAL_H */
