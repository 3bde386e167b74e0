/* SPDX-License-Identifier: MIT */
/*
 * libuhp agent runtime: a pool of worker threads, pinned by topology, that
 * runs agents (handlers bound to their inbox channel) from per-worker
 * Chase-Lev deques, steals when idle and sleeps on the inboxes when there
 * is nothing to do, so an idle pool burns no CPU. Optional part of libuhp:
 * programs that do not call it pay nothing.
 *
 *   topology   CPUs, their NUMA node and core kind, read from sysfs
 *              (devices/system/cpu/online, devices/system/node/node<N>/cpulist,
 *              devices/cpu_core/cpus + devices/cpu_atom/cpus on hybrid parts).
 *              The sysfs root is an argument, else $UHP_SYSFS_ROOT, else /sys,
 *              so tests describe fake machines with a directory tree.
 *   runtime    the pool: one worker per usable CPU (or opts.nr_workers),
 *              each pinned to its CPU (opts.pin), its struct and deques
 *              placed on the CPU's node.
 *   agent      a handler plus its inbox, a struct uhp_channel with the
 *              consumer role (uhp_create()/uhp_attach() on /dev/uhp, or an
 *              arena from uhp_arena_create()/_attach()). The runtime
 *              consumes the inbox; the caller keeps owning the handle and
 *              closes it after uhp_runtime_destroy().
 *
 * Guarantees
 *  - An agent never runs on two workers at once, and its handler sees the
 *    records of its inbox in the inbox's order (FIFO per sending handle,
 *    see uhp.h).
 *  - Every record received from an inbox is handed to the handler (again,
 *    if the handler deferred it, until handled or the pool stops); records
 *    still in an inbox when the pool stops stay there (uhp_recv() them).
 *  - A record sent with plain uhp_send() by anyone (another thread, another
 *    process) into an agent's inbox gets that agent run: idle workers sleep
 *    on the inboxes with need_wakeup armed, busy ones sweep the inboxes.
 *  - On a hybrid part, an agent created with prefer = UHP_CORES_P runs only
 *    on P-core workers (E-core workers never steal it) when the pool has P
 *    workers; likewise UHP_CORES_E. Put AVX-512-heavy agents on P cores.
 *
 * Errors: negative errno values, as in uhp.h.
 */
#ifndef UHP_RUNTIME_H
#define UHP_RUNTIME_H

#include <stdbool.h>
#include <stdint.h>

#include "uhp.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- topology ---- */

/* Core kinds (struct uhp_cpu.kind) and core selections (opts.cores, prefer). */
#define UHP_CORES_ANY	0	/* kind: not a hybrid part; selection: any core */
#define UHP_CORES_P	1	/* performance core (devices/cpu_core/cpus) */
#define UHP_CORES_E	2	/* efficiency core (devices/cpu_atom/cpus) */

/* Highest CPU number accepted in a cpulist, plus one. */
#define UHP_TOPOLOGY_MAX_CPUS	8192

struct uhp_topology;

struct uhp_cpu {
	uint32_t cpu;		/* CPU number */
	int32_t node;		/* NUMA node (0 when sysfs lists none) */
	uint32_t kind;		/* UHP_CORES_ANY (uniform), _P or _E */
};

/*
 * Read the machine's topology under sysfs_root (NULL: $UHP_SYSFS_ROOT if set
 * and non-empty, else "/sys"). The CPUs are the online ones
 * (devices/system/cpu/online), in ascending order; a CPU's node is the
 * node<N> directory whose cpulist has it (node 0 without node directories).
 * The part is hybrid when devices/cpu_core/cpus and devices/cpu_atom/cpus
 * both list CPUs; then each CPU is UHP_CORES_P or _E (a CPU in neither is
 * taken as P), otherwise every CPU is UHP_CORES_ANY.
 * Returns 0, or -EINVAL (out NULL, a malformed cpulist, a CPU number at or
 * above UHP_TOPOLOGY_MAX_CPUS, no online CPU), -ENOENT (no cpu/online under
 * the root), -ENOMEM, or another open()/read() -errno.
 */
UHP_API int uhp_topology_load(const char *sysfs_root, struct uhp_topology **out);
/* NULL is a no-op. */
UHP_API void uhp_topology_free(struct uhp_topology *t);
UHP_API unsigned uhp_topology_nr_cpus(const struct uhp_topology *t);
/* Nodes that have at least one online CPU. */
UHP_API unsigned uhp_topology_nr_nodes(const struct uhp_topology *t);
UHP_API bool uhp_topology_hybrid(const struct uhp_topology *t);
/* The i-th online CPU (ascending). Returns 0, or -EINVAL (NULL, i too big). */
UHP_API int uhp_topology_cpu(const struct uhp_topology *t, unsigned i,
			     struct uhp_cpu *out);

/* ---- runtime ---- */

struct uhp_runtime;
struct uhp_agent;

/*
 * Run by a worker with a batch of 1..opts.batch records received from the
 * agent's inbox (msgs[i].buf: the agent's buffers, msgs[i].len bytes;
 * valid until the handler returns). The return value says how many were
 * handled:
 *
 *   0 or n                 all n; the agent goes on.
 *   k, 0 < k < n           msgs[0..k) were handled, msgs[k..n) were not
 *                          (backpressure: e.g. uhp_agent_send() returned
 *                          -EAGAIN, a destination inbox is full). The
 *                          runtime keeps msgs[k..n) in the agent's buffers
 *                          and runs the agent again later with exactly
 *                          those, in order, as the first n - k slots of
 *                          msgs (same buffers, len and meta as the handler
 *                          left them), before any newer record of its
 *                          inbox: the agent's FIFO order holds. It may
 *                          return k again on that call, and so on.
 *   UHP_AGENT_DEFER_ALL    none was handled: all n are handed again later.
 *   any other value > n    a bug: stops the agent with -EINVAL.
 *   < 0                    stops the agent: it is never run again,
 *                          uhp_agent_error() returns the value and
 *                          uhp_runtime_stats() counts it.
 *
 * "Later" means behind the worker's other runnable work, and after a
 * back-off that grows with the agent's consecutive deferrals without
 * progress (UHP_AGENT_RETRY_MIN_NS doubling up to UHP_AGENT_RETRY_MAX_NS;
 * a deferral that handled k > 0 records waits the minimum). The agent
 * stays with the worker that ran it; that worker never sleeps past the
 * retry, and other agents run meanwhile. So a handler must never spin on
 * -EAGAIN: it defers instead, and the destination's agent gets the worker.
 * Records sent to a deferred agent wait in its inbox. A cycle of agents
 * whose inboxes are all full and which all defer to each other cannot
 * progress (bounded buffers); it costs a retry per agent per
 * UHP_AGENT_RETRY_MAX_NS, not a spinning CPU. Deferred records not handled
 * when the pool stops are dropped (counted in uhp_agent_stats().held).
 * UHP_AGENT_DEFER(k) returns k, or UHP_AGENT_DEFER_ALL for k == 0.
 */
typedef int (*uhp_agent_fn)(struct uhp_agent *self, struct uhp_rx_msg *msgs,
			    unsigned n, void *arg);

#define UHP_AGENT_DEFER_ALL	(1 << 30)	/* above any batch */
#define UHP_AGENT_DEFER(k)	((k) ? (int)(k) : UHP_AGENT_DEFER_ALL)
#define UHP_AGENT_RETRY_MIN_NS	2000ULL
#define UHP_AGENT_RETRY_MAX_NS	1000000ULL

#define UHP_RUNTIME_DEFAULT_SPIN	1024
#define UHP_RUNTIME_DEFAULT_BATCH	32
#define UHP_RUNTIME_MAX_BATCH		1024
#define UHP_RUNTIME_DEFAULT_AGENTS	1024
#define UHP_RUNTIME_MAX_AGENTS		(1U << 20)
#define UHP_RUNTIME_MAX_WORKERS		1024

/* Start from UHP_RUNTIME_OPTS_INIT; fields at 0 mean their default. */
struct uhp_runtime_opts {
	unsigned nr_workers;	/* 0: one per usable CPU; more than CPUs:
				 * round robin over them */
	unsigned cores;		/* UHP_CORES_ANY, _P or _E (uniform part: all) */
	const char *sysfs_root;	/* as uhp_topology_load() */
	bool pin;		/* pin each worker to its CPU (a CPU outside
				 * this thread's affinity mask is not usable) */
	unsigned spin;		/* idle polls of the queues before backing off */
	unsigned batch;		/* records per handler call, at most
				 * UHP_RUNTIME_MAX_BATCH */
	unsigned max_agents;	/* agents this runtime can hold */
};

#define UHP_RUNTIME_OPTS_INIT \
	{ .nr_workers = 0, .cores = UHP_CORES_ANY, .sysfs_root = NULL, \
	  .pin = true, .spin = UHP_RUNTIME_DEFAULT_SPIN, \
	  .batch = UHP_RUNTIME_DEFAULT_BATCH, \
	  .max_agents = UHP_RUNTIME_DEFAULT_AGENTS }

#define UHP_AGENT_DEFAULT_MAX_MSG	4096
#define UHP_AGENT_MAX_MSG		(64U << 20)

/* Start from UHP_AGENT_OPTS_INIT. */
struct uhp_agent_opts {
	uhp_agent_fn fn;	/* required */
	void *arg;		/* passed to fn */
	uint32_t max_msg;	/* largest payload accepted; 0: default. A
				 * larger record stops the agent (-EMSGSIZE) */
	unsigned prefer;	/* UHP_CORES_ANY, _P or _E */
	int node;		/* node of the agent's buffers; -1: the node of
				 * the inbox's first ring */
};

#define UHP_AGENT_OPTS_INIT \
	{ .fn = NULL, .arg = NULL, .max_msg = UHP_AGENT_DEFAULT_MAX_MSG, \
	  .prefer = UHP_CORES_ANY, .node = -1 }

/* Counters of one worker (uhp_runtime_stats()). */
struct uhp_worker_stats {
	struct uhp_cpu cpu;	/* where the worker runs (or would, unpinned) */
	uint64_t runs;		/* handler calls */
	uint64_t msgs;		/* records handled (a deferred one once, when
				 * handled) */
	uint64_t steals;	/* agents taken from another worker's deque */
	uint64_t sleeps;	/* times the worker blocked in the kernel */
	uint64_t watches;	/* ... of those, as the watcher of the inboxes */
	uint64_t recv_errors;	/* -EBADMSG from an inbox (record skipped) */
	uint64_t deferrals;	/* handler calls that deferred records */
	uint64_t deferred;	/* records deferred (again at each deferral) */
	uint64_t retries;	/* handler calls on deferred records */
};

/* Totals (uhp_runtime_stats()). */
struct uhp_runtime_stats {
	unsigned nr_workers;
	unsigned nr_agents;
	unsigned agents_stopped;	/* by a negative handler return or an
					 * inbox error */
	uint64_t runs, msgs, steals, sleeps, watches, recv_errors;
	uint64_t deferrals, deferred, retries;
};

/* Counters of one agent (uhp_agent_stats()). */
struct uhp_agent_stats {
	uint64_t runs;		/* handler calls */
	uint64_t msgs;		/* records handled (a deferred one once, when
				 * handled) */
	uint64_t deferrals;	/* handler calls that deferred records */
	uint64_t deferred;	/* records deferred (again at each deferral) */
	uint32_t held;		/* records deferred and not handled yet */
	uint32_t streak;	/* deferrals in a row without progress */
};

/*
 * Create a stopped runtime: load the topology, choose the CPUs (opts->cores;
 * with opts->pin, those in this thread's affinity mask), allocate each
 * worker on its CPU's node. opts NULL means UHP_RUNTIME_OPTS_INIT.
 * Returns 0, or -EINVAL (out NULL, bad opts, no usable CPU), -ENOMEM, or a
 * uhp_topology_load() -errno.
 */
UHP_API int uhp_runtime_create(const struct uhp_runtime_opts *opts,
			       struct uhp_runtime **out);

/*
 * Bind a handler to inbox (a consumer handle nobody else receives from
 * while the runtime runs), before or after uhp_runtime_start(). The agent's
 * buffers (opts->batch slots of max_msg bytes) are placed on its node.
 * opts NULL is -EINVAL (fn is required). *out (may be NULL) receives the
 * agent, valid until uhp_runtime_destroy().
 * Returns 0, or -EINVAL (NULL rt/inbox/fn, bad prefer, max_msg above
 * UHP_AGENT_MAX_MSG), -EPERM
 * (inbox is not a consumer handle), -EBUSY (inbox already has an agent),
 * -ENOSPC (opts.max_agents reached), -ENOMEM, -ESHUTDOWN (stopped runtime).
 */
UHP_API int uhp_runtime_add_agent(struct uhp_runtime *rt,
				  struct uhp_channel *inbox,
				  const struct uhp_agent_opts *opts,
				  struct uhp_agent **out);

/*
 * Start the workers (pinned if opts.pin). Records already in the inboxes
 * are picked up. Only one start succeeds, also when called from several
 * threads at once.
 * Returns 0, or -EINVAL (NULL), -EALREADY (started, or being started, by
 * another call), -ESHUTDOWN (stopped, also by a uhp_runtime_stop() that
 * raced with this call), or a pthread_create()/pthread_setaffinity_np()
 * -errno. On any failure after the checks no worker is left running and
 * the runtime is stopped for good (as after uhp_runtime_stop()).
 */
UHP_API int uhp_runtime_start(struct uhp_runtime *rt);

/*
 * Send a record into dst's inbox (uhp_send() on the inbox handle) and get
 * dst run: on a worker (from a handler) it goes on that worker's deque,
 * elsewhere on a shared queue, and a sleeping worker is woken if needed.
 * self (the sending agent, or NULL) sets meta.src when meta is NULL
 * (meta NULL: src = self's id or 0, dst = dst's id, type/seq 0).
 * Safe from any thread. Returns 0, or -EINVAL (dst NULL), -EPIPE (dst was
 * stopped by an error), or a uhp_send() -errno (-EAGAIN: inbox full; a
 * handler defers the record it was forwarding and the ones after it by
 * returning its index, see uhp_agent_fn, rather than waiting).
 */
UHP_API int uhp_agent_send(struct uhp_agent *self, struct uhp_agent *dst,
			   const void *buf, uint32_t len,
			   const struct uhp_meta *meta);

/* The agent's id: 0, 1, ... in the order of uhp_runtime_add_agent(). */
UHP_API uint32_t uhp_agent_id(const struct uhp_agent *a);
UHP_API struct uhp_channel *uhp_agent_inbox(const struct uhp_agent *a);
/* 0 while the agent runs; the value that stopped it otherwise. */
UHP_API int uhp_agent_error(const struct uhp_agent *a);
/*
 * The agent's counters into *out. Readable while the pool runs (each
 * counter is exact, the set is not a snapshot).
 * Returns 0, or -EINVAL (NULL).
 */
UHP_API int uhp_agent_stats(const struct uhp_agent *a,
			    struct uhp_agent_stats *out);

/*
 * On a worker thread of any runtime: fill *out (may be NULL) with its CPU
 * and return the worker's index. Elsewhere: -ESRCH.
 */
UHP_API int uhp_runtime_worker_self(struct uhp_cpu *out);

/*
 * Stop the workers: each finishes the handler call it is in and exits;
 * this waits for them, also when another thread's stop is doing the
 * joining. Records left in the inboxes stay there; records a handler
 * deferred and was not handed again are dropped (uhp_agent_stats().held). Final: a stopped runtime cannot start again.
 * Returns 0, or -EINVAL (NULL), -EDEADLK (called from a handler of rt:
 * nothing is done). Stopping twice, or before start, is fine.
 */
UHP_API int uhp_runtime_stop(struct uhp_runtime *rt);

/*
 * Stop if needed and free everything but the inboxes. NULL is a no-op.
 * No other call on rt or its agents may run or follow (uhp_agent_send()
 * from another thread included). From a handler of rt it does nothing
 * (the runtime cannot free itself under its own workers).
 */
UHP_API void uhp_runtime_destroy(struct uhp_runtime *rt);

/*
 * Counters: totals into *total (may be NULL), up to cap workers into
 * per[] (may be NULL if cap is 0). Readable while the pool runs (each
 * counter is exact, the set is not a snapshot).
 * Returns the number of workers, or -EINVAL (NULL rt).
 */
UHP_API int uhp_runtime_stats(const struct uhp_runtime *rt,
			      struct uhp_runtime_stats *total,
			      struct uhp_worker_stats *per, unsigned cap);

#ifdef __cplusplus
}
#endif

#endif /* UHP_RUNTIME_H */
