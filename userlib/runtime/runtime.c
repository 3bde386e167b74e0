// SPDX-License-Identifier: MIT
/*
 * The agent runtime: a pool of workers that run agents (handlers bound to
 * their inbox channel) from per-worker Chase-Lev deques.
 *
 * Order of things in this file:
 *   1. the agent state machine (runtime_internal.h draws it)
 *   2. queues: the worker's own deques, the shared inject queues, stealing
 *   3. running an agent, sweeping inboxes, the worker loop
 *   4. create/add/start/stop/destroy, sending, stats
 *
 * Scheduling
 *  - A send (uhp_agent_send()) commits the record into the destination's
 *    inbox, then moves the agent IDLE -> QUEUED and queues it: on the
 *    sending worker's own deque (LIFO: it runs next, its records still in
 *    cache) when that worker may run it, otherwise on the inject queue of
 *    its class, and wakes a sleeping worker when nobody is searching.
 *  - A worker takes work in this order: its own deques (the newest first;
 *    every FAIR_EVERY-th time the oldest, so nothing at the bottom waits
 *    forever), the inject queues (every INJECT_EVERY-th time before its
 *    own deques), then it steals the oldest item of another worker's
 *    deque, same node first, from a random start. When it takes work and
 *    sees more queued behind it, it wakes a peer (uhp__idle_kick()); a
 *    worker that was searching stops counting as searching first, then
 *    looks at every queue (stop_searching()), so a burst queued at once
 *    wakes one sleeper after another until nothing is left.
 *  - One run is one batch: uhp_recv_batch() of up to opts.batch records,
 *    one handler call. If records are left, the agent is pushed again on
 *    the worker's deque: it usually runs next (LIFO), older work gets its
 *    turn through the FAIR_EVERY take from the top and through thieves.
 *  - Backpressure: a handler that could not handle all its records (a
 *    destination inbox full) returns how many it did (uhp_agent_fn). The
 *    rest stay in the agent's buffers (held), the agent goes QUEUED onto
 *    its worker's retry list with a not-before time (RETRY_MIN_NS,
 *    doubling per deferral without progress up to RETRY_MAX_NS), and its
 *    next run hands the held records, not the inbox's. The retry list is
 *    looked at after the own deques and the inject queues, before
 *    stealing, and its head every RETRY_EVERY-th pick first, so neither
 *    side starves; it is the worker's alone (a deferred agent is waiting
 *    on another agent, stealing it would only move the wait). An idle
 *    worker with a retry pending sleeps as usual (parked or watching) but
 *    never past the head's time (w->wake_by): no deferred agent is lost,
 *    and none is retried in a tight loop.
 *  - Records sent with plain uhp_send() (other threads, other processes)
 *    do not queue anything: idle workers find them (idle.c: the watcher
 *    sleeps on every idle inbox), busy workers sweep SWEEP_CHUNK inboxes
 *    every SWEEP_EVERY runs.
 *
 * Hybrid parts: a worker has the kind of its CPU. When the pool has both P
 * and E workers, an agent that prefers one kind is of that class and goes
 * only to the UHP__DQ_KIND deques of workers of that kind (and their
 * inject queue); workers of the other kind never look there. Otherwise
 * every agent is of class ANY and any worker runs it.
 *
 * Memory: each worker's struct and deque slots, and each agent's struct,
 * slots and receive buffers, are one mapping bound to the node of the
 * worker's CPU / the agent's node with mbind(MPOL_PREFERRED) before first
 * touch (node_mem.c), so placement does not depend on who touches first.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cpu_relax.h"
#include "runtime_internal.h"

#define FAIR_EVERY	31	/* own deque: the oldest item every Nth take */
#define INJECT_EVERY	61	/* inject queues before own deques every Nth */
#define SWEEP_EVERY	64	/* runs between two sweeps of idle inboxes */
#define SWEEP_CHUNK	16	/* inboxes looked at per sweep */
#define YIELDS		16	/* sched_yield()s between spinning and sleeping */
#define RETRY_EVERY	8	/* due deferred agent before own deques every Nth */
#define BLOCKED_SPIN	64	/* idle polls, then yields, while only a */
#define BLOCKED_YIELDS	2	/* ... deferred agent's retry is left */
#define RETRY_MIN_NS	UHP_AGENT_RETRY_MIN_NS
#define RETRY_MAX_NS	UHP_AGENT_RETRY_MAX_NS

static __thread struct uhp__worker *tls_worker;

static inline void stat_add(uint64_t *c, uint64_t v)
{
	/* single writer (the worker); atomic so uhp_runtime_stats() can read */
	__atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + v,
			 __ATOMIC_RELAXED);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* ---- 1. agent states ---- */

static void enqueue(struct uhp__worker *w, struct uhp_agent *a);

bool uhp__agent_claim(struct uhp_agent *a)
{
	uint32_t s = UHP__AGENT_IDLE;

	/*
	 * Acquire pairs with the release of the previous owner's move to
	 * IDLE: its consumer-side updates of the inbox are visible to us.
	 * seq_cst: the watcher's scan relies on a total order with the
	 * watch_seq pokes (idle.c).
	 */
	return __atomic_compare_exchange_n(&a->state, &s, UHP__AGENT_RUNNING,
					   false, __ATOMIC_SEQ_CST,
					   __ATOMIC_RELAXED);
}

/* A record was committed to a's inbox: true if the caller must queue a. */
static bool agent_notify(struct uhp_agent *a)
{
	uint32_t s = __atomic_load_n(&a->state, __ATOMIC_RELAXED);

	for (;;) {
		uint32_t to;

		if (s == UHP__AGENT_IDLE)
			to = UHP__AGENT_QUEUED;
		else if (s == UHP__AGENT_RUNNING)
			to = UHP__AGENT_NOTIFIED;
		else
			return false;	/* QUEUED, NOTIFIED: it will run; STOPPED */
		/*
		 * Release: our committed record before the state change, so
		 * whoever takes the agent through it sees the record. Both
		 * this and the owner's RUNNING -> IDLE are RMWs of one word:
		 * either the owner sees NOTIFIED and queues the agent again,
		 * or we see IDLE and queue it; a record is never left behind.
		 */
		if (__atomic_compare_exchange_n(&a->state, &s, to, false,
						__ATOMIC_SEQ_CST, __ATOMIC_RELAXED))
			return to == UHP__AGENT_QUEUED;
	}
}

bool uhp__agent_release(struct uhp__worker *w, struct uhp_agent *a, bool more)
{
	if (!more) {
		uint32_t s = UHP__AGENT_RUNNING;

		/*
		 * Success (release) pairs with the next owner's acquire in
		 * uhp__agent_claim() / a sender's CAS IDLE -> QUEUED. Failure
		 * is acquire: we read the NOTIFIED of a sender's CAS (release,
		 * agent_notify()), so its committed record happens before our
		 * enqueue and thus before the next owner's run.
		 */
		if (__atomic_compare_exchange_n(&a->state, &s, UHP__AGENT_IDLE,
						false, __ATOMIC_SEQ_CST,
						__ATOMIC_ACQUIRE)) {
			if (w)
				w->released = true;
			return false;
		}
		/* NOTIFIED: a sender left it to us to queue it again. */
	}
	/* We own it (RUNNING or NOTIFIED); senders leave QUEUED alone. */
	__atomic_store_n(&a->state, UHP__AGENT_QUEUED, __ATOMIC_SEQ_CST);
	enqueue(w, a);
	return true;
}

static void agent_stop(struct uhp_agent *a, int error)
{
	a->error = error;
	/* Release: error before the state, read by uhp_agent_error(). */
	__atomic_store_n(&a->state, UHP__AGENT_STOPPED, __ATOMIC_RELEASE);
	__atomic_fetch_add(&a->rt->agents_stopped, 1, __ATOMIC_RELAXED);
}

/* ---- 2. queues ---- */

static bool worker_may_run(const struct uhp__worker *w, const struct uhp_agent *a)
{
	return a->klass == UHP_CORES_ANY || a->klass == w->cpu.kind;
}

static void inject_push(struct uhp_runtime *rt, struct uhp_agent *a)
{
	struct uhp__inject *q = &rt->inject[a->klass];

	pthread_mutex_lock(&q->lock);
	/* Never full: an agent is in at most one queue (see the states). */
	q->ring[q->tail++ & (rt->cap - 1)] = a;
	/* Release, after the slot: a peek that sees the count then locks. */
	__atomic_store_n(&q->count, q->tail - q->head, __ATOMIC_SEQ_CST);
	pthread_mutex_unlock(&q->lock);
}

static struct uhp_agent *inject_pop(struct uhp_runtime *rt, unsigned klass)
{
	struct uhp__inject *q = &rt->inject[klass];
	struct uhp_agent *a = NULL;

	/* Pairs with the store in inject_push(); the lock orders the rest. */
	if (!__atomic_load_n(&q->count, __ATOMIC_ACQUIRE))
		return NULL;
	pthread_mutex_lock(&q->lock);
	if (q->head != q->tail) {
		a = q->ring[q->head++ & (rt->cap - 1)];
		__atomic_store_n(&q->count, q->tail - q->head, __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&q->lock);
	return a;
}

static void enqueue(struct uhp__worker *w, struct uhp_agent *a)
{
	struct uhp_runtime *rt = a->rt;

	if (w && w->rt == rt && worker_may_run(w, a)) {
		struct uhp__deque *d = &w->dq[a->klass == UHP_CORES_ANY ?
					      UHP__DQ_ANY : UHP__DQ_KIND];

		if (uhp__deque_push(d, a) == 0) {
			/* More than the next run queued: let a peer help. */
			if (uhp__deque_size(d) > 1)
				uhp__idle_kick(rt);
			return;
		}
		/* Cannot happen (capacity); stay correct anyway. */
	}
	inject_push(rt, a);
	uhp__idle_kick(rt);
}

/*
 * QUEUED -> RUNNING for an agent just taken from a queue. Whoever queued it
 * is ordered before us by the queue itself (deque push/steal, inject lock).
 * Senders leave QUEUED alone, so a plain store is enough; after it they may
 * move RUNNING -> NOTIFIED.
 */
static struct uhp_agent *take(struct uhp_agent *a)
{
	__atomic_store_n(&a->state, UHP__AGENT_RUNNING, __ATOMIC_SEQ_CST);
	return a;
}

static struct uhp_agent *deque_take_oldest(struct uhp__deque *d)
{
	void *item;

	for (int tries = 0; tries < 4; tries++) {
		int ret = uhp__deque_steal(d, &item);

		if (ret == 0)
			return item;
		if (ret == -EAGAIN)
			break;
	}
	return NULL;
}

static struct uhp_agent *steal(struct uhp__worker *w)
{
	struct uhp_runtime *rt = w->rt;
	unsigned n = w->nr_victims;

	for (unsigned pass = 0; pass < 2; pass++) {
		/* pass 0: same node [0, nr_near); pass 1: the rest */
		unsigned lo = pass ? w->nr_near : 0, hi = pass ? n : w->nr_near;
		unsigned span = hi - lo, start;

		if (!span)
			continue;
		w->rng ^= w->rng << 13;
		w->rng ^= w->rng >> 7;
		w->rng ^= w->rng << 17;
		start = (unsigned)(w->rng % span);
		for (unsigned k = 0; k < span; k++) {
			struct uhp__worker *v = rt->workers[w->victims[lo + (start + k) % span]];
			struct uhp_agent *a = NULL;

			if (rt->mixed && v->cpu.kind == w->cpu.kind)
				a = deque_take_oldest(&v->dq[UHP__DQ_KIND]);
			if (!a)
				a = deque_take_oldest(&v->dq[UHP__DQ_ANY]);
			if (a) {
				stat_add(&w->stats.steals, 1);
				return a;
			}
		}
	}
	return NULL;
}

/* Work left behind what this worker just took: a peer should help. */
static bool surplus(const struct uhp__worker *w)
{
	const struct uhp_runtime *rt = w->rt;

	return uhp__deque_size(&w->dq[UHP__DQ_ANY]) ||
	       uhp__deque_size(&w->dq[UHP__DQ_KIND]) ||
	       __atomic_load_n(&rt->inject[UHP_CORES_ANY].count, __ATOMIC_RELAXED) ||
	       __atomic_load_n(&rt->inject[UHP_CORES_P].count, __ATOMIC_RELAXED) ||
	       __atomic_load_n(&rt->inject[UHP_CORES_E].count, __ATOMIC_RELAXED);
}

/* ---- deferred agents: the worker's retry list ---- */

static void retry_push(struct uhp__worker *w, struct uhp_agent *a)
{
	a->retry_next = NULL;
	if (w->retry_tail)
		w->retry_tail->retry_next = a;
	else
		w->retry_head = a;
	w->retry_tail = a;
	w->nr_retry++;
}

/* The head of the retry list if its time has come. */
static struct uhp_agent *retry_take(struct uhp__worker *w)
{
	struct uhp_agent *a = w->retry_head;

	if (!a || now_ns() < a->retry_at)
		return NULL;
	w->retry_head = a->retry_next;
	if (!w->retry_head)
		w->retry_tail = NULL;
	w->nr_retry--;
	return a;
}

/*
 * The handler left records unhandled: keep them (held), and put a, which
 * we own (RUNNING or NOTIFIED), on our retry list. QUEUED: senders leave
 * it alone (it will run; its inbox is read once the held ones are done).
 */
static void agent_defer(struct uhp__worker *w, struct uhp_agent *a,
			bool progress)
{
	uint64_t delay = RETRY_MIN_NS;

	if (progress) {
		__atomic_store_n(&a->streak, 0, __ATOMIC_RELAXED);
	} else {
		unsigned shift = a->streak < 20 ? a->streak : 20;

		delay <<= shift;
		if (delay > RETRY_MAX_NS)
			delay = RETRY_MAX_NS;
		__atomic_store_n(&a->streak, a->streak + 1, __ATOMIC_RELAXED);
	}
	w->blocked = !progress;
	a->retry_at = now_ns() + delay;
	__atomic_store_n(&a->state, UHP__AGENT_QUEUED, __ATOMIC_SEQ_CST);
	retry_push(w, a);
}

static struct uhp_agent *pick(struct uhp__worker *w)
{
	struct uhp_runtime *rt = w->rt;
	unsigned tick = ++w->tick;
	struct uhp_agent *a = NULL;

	/* Deferred agents get a turn even while the deques never drain. */
	if (w->nr_retry && tick % RETRY_EVERY == 0) {
		a = retry_take(w);
		if (a)
			return a;
	}
	if (tick % INJECT_EVERY == 0) {
		a = inject_pop(rt, w->cpu.kind);
		if (!a && w->cpu.kind != UHP_CORES_ANY)
			a = inject_pop(rt, UHP_CORES_ANY);
		if (a)
			return a;
	}
	for (unsigned k = UHP__DQ_KIND + 1; k-- > 0;) {
		a = tick % FAIR_EVERY == 0 ? deque_take_oldest(&w->dq[k]) :
					     uhp__deque_pop(&w->dq[k]);
		if (a)
			return a;
	}
	if (w->cpu.kind != UHP_CORES_ANY)
		a = inject_pop(rt, w->cpu.kind);
	if (!a)
		a = inject_pop(rt, UHP_CORES_ANY);
	if (!a && w->nr_retry)
		a = retry_take(w);
	if (!a)
		a = steal(w);
	return a;
}

bool uhp__rt_has_work(struct uhp__worker *w)
{
	struct uhp_runtime *rt = w->rt;

	if (__atomic_load_n(&rt->inject[UHP_CORES_ANY].count, __ATOMIC_ACQUIRE) ||
	    (w->cpu.kind != UHP_CORES_ANY &&
	     __atomic_load_n(&rt->inject[w->cpu.kind].count, __ATOMIC_ACQUIRE)))
		return true;
	for (unsigned i = 0; i < rt->nr_workers; i++) {
		struct uhp__worker *v = rt->workers[i];

		if (uhp__deque_size(&v->dq[UHP__DQ_ANY]) ||
		    (v->cpu.kind == w->cpu.kind &&
		     uhp__deque_size(&v->dq[UHP__DQ_KIND])))
			return true;
	}
	return false;
}

/* ---- 3. running ---- */

/*
 * One handler call on msgs[off, off + n) and what its return means
 * (uhp_agent_fn). Returns false if it stopped the agent; else *done is
 * the number of records handled.
 */
static bool agent_call(struct uhp__worker *w, struct uhp_agent *a,
		       unsigned off, unsigned n, unsigned *done)
{
	int ret = a->fn(a, a->msgs + off, n, a->arg);
	unsigned k;

	/* The handler may have scribbled on the slots' inputs. */
	for (unsigned i = off; i < off + n; i++) {
		a->msgs[i].buf = a->bufs + (size_t)i * a->max_msg;
		a->msgs[i].cap = a->max_msg;
	}
	if (ret == 0)
		k = n;
	else if (ret == UHP_AGENT_DEFER_ALL)
		k = 0;
	else if (ret > 0 && (unsigned)ret <= n)
		k = (unsigned)ret;
	else
		k = UINT32_MAX;
	stat_add(&w->stats.runs, 1);
	stat_add(&a->nr_runs, 1);
	if (k != UINT32_MAX) {
		stat_add(&w->stats.msgs, k);
		stat_add(&a->nr_msgs, k);
	}
	if (ret < 0 || k == UINT32_MAX) {
		__atomic_store_n(&a->held, 0, __ATOMIC_RELAXED);
		agent_stop(a, ret < 0 ? ret : -EINVAL);
		return false;
	}
	*done = k;
	return true;
}

static void agent_run(struct uhp__worker *w, struct uhp_agent *a)
{
	struct uhp_runtime *rt = w->rt;
	bool more = false;
	unsigned done;
	int n;

	w->blocked = false;

	if (a->held) {
		/* Deferred records first, before anything newer. */
		unsigned off = a->held_off, left = a->held;

		stat_add(&w->stats.retries, 1);
		if (!agent_call(w, a, off, left, &done))
			return;
		if (done < left) {
			a->held_off = off + done;
			__atomic_store_n(&a->held, left - done, __ATOMIC_RELAXED);
			goto defer;
		}
		a->held_off = 0;
		__atomic_store_n(&a->held, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&a->streak, 0, __ATOMIC_RELAXED);
		uhp__agent_release(w, a, uhp__ready(a->inbox));
		return;
	}
	n = uhp_recv_batch(a->inbox, a->msgs, rt->batch);
	if (n > 0) {
		if (!agent_call(w, a, 0, (unsigned)n, &done))
			return;
		if (done < (unsigned)n) {
			a->held_off = done;
			__atomic_store_n(&a->held, (unsigned)n - done,
					 __ATOMIC_RELAXED);
			goto defer;
		}
		more = uhp__ready(a->inbox);
	} else if (n == -EBADMSG) {
		stat_add(&w->stats.recv_errors, 1);	/* skipped; go on */
		more = true;
	} else if (n != -EAGAIN) {
		agent_stop(a, n);	/* -EMSGSIZE: bigger than max_msg */
		return;
	}
	uhp__agent_release(w, a, more);
	return;

defer:
	stat_add(&w->stats.deferrals, 1);
	stat_add(&a->nr_deferrals, 1);
	stat_add(&w->stats.deferred, a->held);
	stat_add(&a->nr_deferred, a->held);
	agent_defer(w, a, done > 0);
}

/*
 * Look at SWEEP_CHUNK idle inboxes for records sent with plain uhp_send():
 * claim the agent (only an owner may call the inbox's consumer functions),
 * look, and queue it or let it go.
 */
static void sweep(struct uhp__worker *w)
{
	struct uhp_runtime *rt = w->rt;
	/* Pairs with the store-release in uhp_runtime_add_agent(). */
	uint32_t n = __atomic_load_n(&rt->nr_agents, __ATOMIC_ACQUIRE);
	uint32_t at;

	if (!n)
		return;
	at = __atomic_fetch_add(&rt->sweep_cursor, SWEEP_CHUNK, __ATOMIC_RELAXED);
	for (unsigned k = 0; k < SWEEP_CHUNK && k < n; k++) {
		struct uhp_agent *a = rt->agents[(at + k) % n];

		if (uhp__agent_claim(a))
			uhp__agent_release(w, a, uhp__ready(a->inbox));
	}
}

/*
 * A searching worker found a: it stops searching, and if work is still
 * queued anywhere it wakes a peer. The kick must come after the decrement:
 * uhp__idle_kick() does nothing while a worker is searching, and that
 * worker would be us. Without this, of several agents queued at once
 * (e.g. by the watcher, on its own deque) one woken worker takes one, the
 * rest wait for a busy worker while peers stay parked.
 */
static void stop_searching(struct uhp__worker *w)
{
	struct uhp_runtime *rt = w->rt;

	__atomic_fetch_sub(&rt->nr_searching, 1, __ATOMIC_SEQ_CST);
	/*
	 * Full fence: the decrement before the looks at the queues. Pairs
	 * with the fence in uhp__idle_kick() between queuing work and its
	 * load of nr_searching: either the kicker sees no searcher and wakes
	 * a sleeper itself, or we see its work here.
	 */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (uhp__rt_has_work(w))
		uhp__idle_kick(rt);
}

static void worker_loop(struct uhp__worker *w)
{
	struct uhp_runtime *rt = w->rt;

	for (;;) {
		struct uhp_agent *a = pick(w);

		/*
		 * Not searching: more work queued behind what we took? Wake a
		 * peer (uhp__idle_kick() does nothing while one searches).
		 */
		if (a && surplus(w))
			uhp__idle_kick(rt);
		if (!a) {
			/*
			 * Our deferred agent just deferred again without
			 * progress, and nothing else is runnable: what we
			 * wait for is its retry time (or a kick), spinning
			 * the full opts.spin for it would only burn the CPU
			 * that the agent it waits on may need.
			 */
			unsigned spin = w->blocked && rt->spin > BLOCKED_SPIN ?
					BLOCKED_SPIN : rt->spin;
			unsigned yields = w->blocked ? BLOCKED_YIELDS : YIELDS;

			__atomic_fetch_add(&rt->nr_searching, 1, __ATOMIC_SEQ_CST);
			for (unsigned i = 1;; i++) {
				a = pick(w);
				/* Pairs with the store of stop in uhp_runtime_stop(). */
				if (a || __atomic_load_n(&rt->stop, __ATOMIC_ACQUIRE))
					break;
				if (i % 64 == 0)
					sweep(w);
				if (i < spin) {
					cpu_relax();
				} else if (i < spin + yields) {
					/*
					 * Backing off: have the watcher take on the
					 * agents we let go IDLE. Yielding can take
					 * long on a loaded machine; only the spin
					 * before (swept every 64 polls) is unwatched.
					 */
					if (w->released) {
						w->released = false;
						uhp__idle_rescan(rt);
					}
					sched_yield();
				} else {
					/* Not past the next deferred agent's time. */
					w->wake_by = w->retry_head ?
						     w->retry_head->retry_at : 0;
					uhp__idle_sleep(w);
					w->wake_by = 0;
					i = 0;
				}
			}
			if (!a) {
				__atomic_fetch_sub(&rt->nr_searching, 1, __ATOMIC_SEQ_CST);
				return;		/* stop */
			}
			stop_searching(w);
		}
		agent_run(w, take(a));
		if (++w->runs_since_sweep >= SWEEP_EVERY) {
			w->runs_since_sweep = 0;
			sweep(w);
		}
		/* Pairs with the store of stop in uhp_runtime_stop(). */
		if (__atomic_load_n(&rt->stop, __ATOMIC_ACQUIRE))
			return;
	}
}

static int pin_self(unsigned cpu)
{
	size_t sz = CPU_ALLOC_SIZE(cpu + 1);
	cpu_set_t *set = CPU_ALLOC(cpu + 1);
	int ret;

	if (!set)
		return -ENOMEM;
	CPU_ZERO_S(sz, set);
	CPU_SET_S(cpu, sz, set);
	ret = -pthread_setaffinity_np(pthread_self(), sz, set);
	CPU_FREE(set);
	return ret;
}

static void *worker_main(void *arg)
{
	struct uhp__worker *w = arg;
	struct uhp_runtime *rt = w->rt;
	int ret = rt->pin ? pin_self(w->cpu.cpu) : 0;

	tls_worker = w;
	pthread_mutex_lock(&rt->start_lock);
	w->start_ret = ret;
	rt->nr_ready++;
	pthread_cond_broadcast(&rt->start_cond);
	/* Wait for the verdict on the whole pool before touching queues. */
	while (!__atomic_load_n(&rt->started, __ATOMIC_RELAXED) &&
	       !__atomic_load_n(&rt->stop, __ATOMIC_RELAXED))
		pthread_cond_wait(&rt->start_cond, &rt->start_lock);
	pthread_mutex_unlock(&rt->start_lock);
	if (!__atomic_load_n(&rt->stop, __ATOMIC_ACQUIRE))
		worker_loop(w);
	tls_worker = NULL;
	return NULL;
}

/* ---- 4. public ---- */

static bool cores_ok(unsigned c)
{
	return c == UHP_CORES_ANY || c == UHP_CORES_P || c == UHP_CORES_E;
}

/*
 * The CPUs the pool uses: of the wanted kind (all on a uniform part), in
 * this thread's affinity mask when pinning, ordered round robin over the
 * nodes (first CPU of each node, then the second, ...) so that the first
 * workers spread over the nodes. *out: calloc'ed, *nr_out entries.
 */
static int pick_cpus(const struct uhp_topology *t, unsigned cores, bool pin,
		     struct uhp_cpu **out, unsigned *nr_out)
{
	unsigned n = uhp_topology_nr_cpus(t), m = 0, nn = 0, k = 0;
	struct uhp_cpu *all = calloc(n, sizeof(*all));
	struct uhp_cpu *res = calloc(n, sizeof(*res));
	int32_t *nodes = calloc(n, sizeof(*nodes));
	unsigned *cur = calloc(n, sizeof(*cur));
	size_t affsz = CPU_ALLOC_SIZE(UHP_TOPOLOGY_MAX_CPUS);
	cpu_set_t *aff = NULL;
	int ret = -ENOMEM;

	if (!all || !res || !nodes || !cur)
		goto out;
	if (pin) {
		aff = CPU_ALLOC(UHP_TOPOLOGY_MAX_CPUS);
		if (!aff)
			goto out;
		if (sched_getaffinity(0, affsz, aff)) {
			ret = -errno;
			goto out;
		}
	}
	for (unsigned i = 0; i < n; i++) {
		struct uhp_cpu c;
		unsigned j;

		uhp_topology_cpu(t, i, &c);
		if (uhp_topology_hybrid(t) && cores != UHP_CORES_ANY && c.kind != cores)
			continue;
		if (aff && !CPU_ISSET_S(c.cpu, affsz, aff))
			continue;
		all[m++] = c;
		for (j = 0; j < nn && nodes[j] != c.node; j++)
			;
		if (j == nn)
			nodes[nn++] = c.node;
	}
	while (k < m) {
		for (unsigned j = 0; j < nn; j++) {
			while (cur[j] < m && all[cur[j]].node != nodes[j])
				cur[j]++;
			if (cur[j] < m)
				res[k++] = all[cur[j]++];
		}
	}
	*out = res;
	*nr_out = m;
	res = NULL;
	ret = 0;
out:
	if (aff)
		CPU_FREE(aff);
	free(cur);
	free(nodes);
	free(res);
	free(all);
	return ret;
}

static uint64_t pow2_at_least(uint64_t v)
{
	uint64_t p = 2;

	while (p < v)
		p <<= 1;
	return p;
}

static size_t round_page(size_t v)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);

	return (v + page - 1) / page * page;
}

static size_t worker_size(const struct uhp_runtime *rt)
{
	return round_page(sizeof(struct uhp__worker) +
			  2 * rt->cap * sizeof(void *) +
			  rt->nr_workers * sizeof(unsigned));
}

/* Worker i on cpu c, on c's node; its steal order: same node first. */
static struct uhp__worker *worker_new(struct uhp_runtime *rt, unsigned i,
				      const struct uhp_cpu *cpus, unsigned nr_cpus)
{
	size_t len = worker_size(rt);
	const struct uhp_cpu *c = &cpus[i % nr_cpus];
	struct uhp__worker *w = uhp__node_alloc(len, c->node);
	void **slots;

	if (!w)
		return NULL;
	slots = (void **)(w + 1);
	w->rt = rt;
	w->index = i;
	w->cpu = *c;
	w->mem_len = len;
	w->rng = 0x9E3779B97F4A7C15ULL * (i + 1);
	w->victims = (unsigned *)(slots + 2 * rt->cap);
	uhp__deque_init(&w->dq[UHP__DQ_ANY], slots, rt->cap);
	uhp__deque_init(&w->dq[UHP__DQ_KIND], slots + rt->cap, rt->cap);
	w->stats.cpu = *c;
	for (unsigned pass = 0; pass < 2; pass++) {
		for (unsigned j = 0; j < rt->nr_workers; j++) {
			bool near = cpus[j % nr_cpus].node == c->node;

			if (j != i && near == !pass)
				w->victims[w->nr_victims++] = j;
		}
		if (!pass)
			w->nr_near = w->nr_victims;
	}
	return w;
}

static void runtime_free(struct uhp_runtime *rt)
{
	for (unsigned i = 0; rt->agents && i < rt->nr_agents; i++)
		uhp__node_free(rt->agents[i], rt->agents[i]->mem_len);
	for (unsigned i = 0; rt->workers && i < rt->nr_workers; i++)
		if (rt->workers[i])
			uhp__node_free(rt->workers[i], rt->workers[i]->mem_len);
	for (unsigned k = 0; k < 3; k++) {
		free(rt->inject[k].ring);
		pthread_mutex_destroy(&rt->inject[k].lock);
	}
	uhp__idle_fini(rt);
	pthread_mutex_destroy(&rt->add_lock);
	pthread_mutex_destroy(&rt->start_lock);
	pthread_cond_destroy(&rt->start_cond);
	pthread_mutex_destroy(&rt->join_lock);
	free(rt->workers);
	free(rt->agents);
	free(rt);
}

UHP_API int uhp_runtime_create(const struct uhp_runtime_opts *opts,
			       struct uhp_runtime **out)
{
	const struct uhp_runtime_opts defaults = UHP_RUNTIME_OPTS_INIT;
	struct uhp_topology *t = NULL;
	struct uhp_cpu *cpus = NULL;
	struct uhp_runtime *rt;
	unsigned nr_cpus = 0;
	bool has_p = false, has_e = false;
	int ret;

	if (!out)
		return -EINVAL;
	if (!opts)
		opts = &defaults;
	if (!cores_ok(opts->cores) || opts->batch > UHP_RUNTIME_MAX_BATCH ||
	    opts->max_agents > UHP_RUNTIME_MAX_AGENTS ||
	    opts->nr_workers > UHP_RUNTIME_MAX_WORKERS)
		return -EINVAL;
	ret = uhp_topology_load(opts->sysfs_root, &t);
	if (ret)
		return ret;
	ret = pick_cpus(t, opts->cores, opts->pin, &cpus, &nr_cpus);
	uhp_topology_free(t);
	if (ret)
		return ret;
	if (!nr_cpus) {
		free(cpus);
		return -EINVAL;
	}

	rt = calloc(1, sizeof(*rt));
	if (!rt) {
		free(cpus);
		return -ENOMEM;
	}
	rt->nr_workers = opts->nr_workers ? opts->nr_workers : nr_cpus;
	rt->batch = opts->batch ? opts->batch : UHP_RUNTIME_DEFAULT_BATCH;
	rt->spin = opts->spin ? opts->spin : UHP_RUNTIME_DEFAULT_SPIN;
	rt->max_agents = opts->max_agents ? opts->max_agents :
			 UHP_RUNTIME_DEFAULT_AGENTS;
	rt->pin = opts->pin;
	rt->cap = pow2_at_least(rt->max_agents);
	rt->watcher = -1;
	rt->evfd = -1;
	pthread_mutex_init(&rt->add_lock, NULL);
	pthread_mutex_init(&rt->start_lock, NULL);
	pthread_cond_init(&rt->start_cond, NULL);
	pthread_mutex_init(&rt->join_lock, NULL);
	for (unsigned k = 0; k < 3; k++)
		pthread_mutex_init(&rt->inject[k].lock, NULL);

	ret = -ENOMEM;
	rt->workers = calloc(rt->nr_workers, sizeof(*rt->workers));
	rt->agents = calloc(rt->max_agents, sizeof(*rt->agents));
	if (!rt->workers || !rt->agents)
		goto err;
	for (unsigned k = 0; k < 3; k++) {
		rt->inject[k].ring = calloc(rt->cap, sizeof(*rt->inject[k].ring));
		if (!rt->inject[k].ring)
			goto err;
	}
	for (unsigned i = 0; i < rt->nr_workers; i++) {
		rt->workers[i] = worker_new(rt, i, cpus, nr_cpus);
		if (!rt->workers[i])
			goto err;
		has_p |= rt->workers[i]->cpu.kind == UHP_CORES_P;
		has_e |= rt->workers[i]->cpu.kind == UHP_CORES_E;
	}
	rt->mixed = has_p && has_e;
	ret = uhp__idle_init(rt);
	if (ret)
		goto err;
	free(cpus);
	*out = rt;
	return 0;

err:
	free(cpus);
	runtime_free(rt);
	return ret;
}

static bool inbox_taken(const struct uhp_runtime *rt, const struct uhp_channel *ch)
{
	for (unsigned i = 0; i < rt->nr_agents; i++)
		if (rt->agents[i]->inbox == ch)
			return true;
	return false;
}

UHP_API int uhp_runtime_add_agent(struct uhp_runtime *rt,
				  struct uhp_channel *inbox,
				  const struct uhp_agent_opts *opts,
				  struct uhp_agent **out)
{
	uint32_t max_msg;
	struct uhp_agent *a;
	size_t head, len;
	int node, ret;

	if (!rt || !inbox || !opts || !opts->fn || !cores_ok(opts->prefer))
		return -EINVAL;
	max_msg = opts->max_msg ? opts->max_msg : UHP_AGENT_DEFAULT_MAX_MSG;
	if (max_msg > UHP_AGENT_MAX_MSG)
		return -EINVAL;
	if (!inbox->consumer)
		return -EPERM;
	node = opts->node >= 0 ? opts->node : inbox->rings[0].node;

	pthread_mutex_lock(&rt->add_lock);
	ret = -ESHUTDOWN;
	if (__atomic_load_n(&rt->stop, __ATOMIC_ACQUIRE))
		goto out;
	ret = -EBUSY;
	if (inbox_taken(rt, inbox))
		goto out;
	ret = -ENOSPC;
	if (rt->nr_agents >= rt->max_agents)
		goto out;

	head = (sizeof(*a) + 63) & ~(size_t)63;
	len = round_page(head + rt->batch * sizeof(struct uhp_rx_msg) +
			 (size_t)rt->batch * max_msg);
	ret = -ENOMEM;
	a = uhp__node_alloc(len, node);
	if (!a)
		goto out;
	a->rt = rt;
	a->inbox = inbox;
	a->fn = opts->fn;
	a->arg = opts->arg;
	a->id = rt->nr_agents;
	a->max_msg = max_msg;
	a->node = node;
	a->mem_len = len;
	a->msgs = (struct uhp_rx_msg *)((char *)a + head);
	a->bufs = (unsigned char *)(a->msgs + rt->batch);
	for (unsigned i = 0; i < rt->batch; i++) {
		a->msgs[i].buf = a->bufs + (size_t)i * max_msg;
		a->msgs[i].cap = max_msg;
	}
	/* A preference applies only where both kinds work (see the top). */
	a->klass = rt->mixed ? opts->prefer : UHP_CORES_ANY;
	a->state = UHP__AGENT_IDLE;
	rt->agents[a->id] = a;
	/* Publish the agent: pairs with the load-acquire in sweep()/idle.c. */
	__atomic_store_n(&rt->nr_agents, a->id + 1, __ATOMIC_RELEASE);
	if (out)
		*out = a;
	ret = 0;
	/* Records may already wait: queue it; else the watcher takes it on. */
	if (uhp__agent_claim(a))
		uhp__agent_release(NULL, a, uhp__ready(inbox));
	uhp__idle_rescan(rt);
out:
	pthread_mutex_unlock(&rt->add_lock);
	return ret;
}

UHP_API int uhp_runtime_start(struct uhp_runtime *rt)
{
	unsigned created = 0;
	int ret = 0;

	if (!rt)
		return -EINVAL;
	/* Claim the start under the lock: two starts must not both create
	 * threads on the same workers. */
	pthread_mutex_lock(&rt->start_lock);
	if (__atomic_load_n(&rt->stop, __ATOMIC_RELAXED))
		ret = -ESHUTDOWN;
	else if (rt->starting)
		ret = -EALREADY;
	rt->starting = true;
	pthread_mutex_unlock(&rt->start_lock);
	if (ret)
		return ret;

	for (; created < rt->nr_workers; created++) {
		struct uhp__worker *w = rt->workers[created];

		ret = -pthread_create(&w->thread, NULL, worker_main, w);
		if (ret)
			break;
	}
	pthread_mutex_lock(&rt->start_lock);
	while (rt->nr_ready < created)
		pthread_cond_wait(&rt->start_cond, &rt->start_lock);
	for (unsigned i = 0; i < created && !ret; i++)
		ret = rt->workers[i]->start_ret;
	/*
	 * A stop that came in meanwhile saw started == 0 and left the
	 * workers to us: they exit at once, we join them.
	 */
	if (!ret && __atomic_load_n(&rt->stop, __ATOMIC_RELAXED))
		ret = -ESHUTDOWN;
	/* The verdict, under start_lock: the workers and uhp_runtime_stop()
	 * read it under the lock too (the atomics are for the lock-free
	 * reads of stop in the worker loop). */
	if (ret)
		__atomic_store_n(&rt->stop, 1, __ATOMIC_SEQ_CST);
	else
		__atomic_store_n(&rt->started, 1, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&rt->start_cond);
	pthread_mutex_unlock(&rt->start_lock);
	if (ret) {
		for (unsigned i = 0; i < created; i++)
			pthread_join(rt->workers[i]->thread, NULL);
	}
	return ret;
}

UHP_API int uhp_runtime_stop(struct uhp_runtime *rt)
{
	bool started;

	if (!rt)
		return -EINVAL;
	if (tls_worker && tls_worker->rt == rt)
		return -EDEADLK;
	pthread_mutex_lock(&rt->start_lock);
	/*
	 * seq_cst: pairs with the load-acquires of stop in the worker loop,
	 * and with the sleepers' re-check of stop after they registered
	 * (uhp__idle_wake_all() wakes them after this store).
	 */
	__atomic_store_n(&rt->stop, 1, __ATOMIC_SEQ_CST);
	pthread_cond_broadcast(&rt->start_cond);
	/* Under the lock: a start that has not given its verdict yet sees
	 * stop there and joins its workers itself. */
	started = __atomic_load_n(&rt->started, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&rt->start_lock);
	if (!started)
		return 0;
	/* A second stop waits here until the first has joined everyone. */
	pthread_mutex_lock(&rt->join_lock);
	if (!rt->joined) {
		uhp__idle_wake_all(rt);
		for (unsigned i = 0; i < rt->nr_workers; i++)
			pthread_join(rt->workers[i]->thread, NULL);
		rt->joined = true;
	}
	pthread_mutex_unlock(&rt->join_lock);
	return 0;
}

UHP_API void uhp_runtime_destroy(struct uhp_runtime *rt)
{
	if (!rt)
		return;
	/*
	 * From one of rt's own handlers: the workers cannot be joined and the
	 * memory is in use under our feet. Misuse (documented); leak rather
	 * than free what is running.
	 */
	if (uhp_runtime_stop(rt) == -EDEADLK)
		return;
	runtime_free(rt);
}

UHP_API int uhp_agent_send(struct uhp_agent *self, struct uhp_agent *dst,
			   const void *buf, uint32_t len,
			   const struct uhp_meta *meta)
{
	struct uhp_meta m;
	int ret;

	if (!dst)
		return -EINVAL;
	if (__atomic_load_n(&dst->state, __ATOMIC_ACQUIRE) == UHP__AGENT_STOPPED)
		return -EPIPE;
	if (!meta) {
		memset(&m, 0, sizeof(m));
		m.src = self ? self->id : 0;
		m.dst = dst->id;
		meta = &m;
	}
	ret = uhp_send(dst->inbox, buf, len, meta);
	if (ret)
		return ret;
	if (agent_notify(dst))
		enqueue(tls_worker, dst);
	return 0;
}

UHP_API uint32_t uhp_agent_id(const struct uhp_agent *a)
{
	return a ? a->id : UINT32_MAX;
}

UHP_API struct uhp_channel *uhp_agent_inbox(const struct uhp_agent *a)
{
	return a ? a->inbox : NULL;
}

UHP_API int uhp_agent_error(const struct uhp_agent *a)
{
	/* Pairs with the store-release in agent_stop(). */
	if (!a || __atomic_load_n(&a->state, __ATOMIC_ACQUIRE) != UHP__AGENT_STOPPED)
		return 0;
	return a->error;
}

UHP_API int uhp_agent_stats(const struct uhp_agent *a,
			    struct uhp_agent_stats *out)
{
	if (!a || !out)
		return -EINVAL;
	*out = (struct uhp_agent_stats){
		.runs = __atomic_load_n(&a->nr_runs, __ATOMIC_RELAXED),
		.msgs = __atomic_load_n(&a->nr_msgs, __ATOMIC_RELAXED),
		.deferrals = __atomic_load_n(&a->nr_deferrals, __ATOMIC_RELAXED),
		.deferred = __atomic_load_n(&a->nr_deferred, __ATOMIC_RELAXED),
		.held = __atomic_load_n(&a->held, __ATOMIC_RELAXED),
		.streak = __atomic_load_n(&a->streak, __ATOMIC_RELAXED),
	};
	return 0;
}

UHP_API int uhp_runtime_worker_self(struct uhp_cpu *out)
{
	if (!tls_worker)
		return -ESRCH;
	if (out)
		*out = tls_worker->cpu;
	return (int)tls_worker->index;
}

UHP_API int uhp_runtime_stats(const struct uhp_runtime *rt,
			      struct uhp_runtime_stats *total,
			      struct uhp_worker_stats *per, unsigned cap)
{
	if (!rt)
		return -EINVAL;
	if (total) {
		memset(total, 0, sizeof(*total));
		total->nr_workers = rt->nr_workers;
		total->nr_agents = __atomic_load_n(&rt->nr_agents, __ATOMIC_ACQUIRE);
		total->agents_stopped = __atomic_load_n(&rt->agents_stopped,
							__ATOMIC_RELAXED);
	}
	for (unsigned i = 0; i < rt->nr_workers; i++) {
		const struct uhp_worker_stats *s = &rt->workers[i]->stats;
		struct uhp_worker_stats c = {
			.cpu = s->cpu,
			.runs = __atomic_load_n(&s->runs, __ATOMIC_RELAXED),
			.msgs = __atomic_load_n(&s->msgs, __ATOMIC_RELAXED),
			.steals = __atomic_load_n(&s->steals, __ATOMIC_RELAXED),
			.sleeps = __atomic_load_n(&s->sleeps, __ATOMIC_RELAXED),
			.watches = __atomic_load_n(&s->watches, __ATOMIC_RELAXED),
			.recv_errors = __atomic_load_n(&s->recv_errors, __ATOMIC_RELAXED),
			.deferrals = __atomic_load_n(&s->deferrals, __ATOMIC_RELAXED),
			.deferred = __atomic_load_n(&s->deferred, __ATOMIC_RELAXED),
			.retries = __atomic_load_n(&s->retries, __ATOMIC_RELAXED),
		};

		if (i < cap && per)
			per[i] = c;
		if (total) {
			total->runs += c.runs;
			total->msgs += c.msgs;
			total->steals += c.steals;
			total->sleeps += c.sleeps;
			total->watches += c.watches;
			total->recv_errors += c.recv_errors;
			total->deferrals += c.deferrals;
			total->deferred += c.deferred;
			total->retries += c.retries;
		}
	}
	return (int)rt->nr_workers;
}
