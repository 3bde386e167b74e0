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

#endif /* UHP_RUNTIME_INTERNAL_H */
