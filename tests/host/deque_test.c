// SPDX-License-Identifier: MIT
/*
 * deque_test: the Chase-Lev deque of the runtime. Single thread: the owner
 * pops LIFO, thieves steal FIFO, a full deque refuses (-ENOSPC) and works
 * again once drained, indices far past the capacity wrap. Concurrent: the
 * owner pushes and pops while three thieves steal, many rounds, and every
 * item is taken exactly once (a per-item counter), the contended last item
 * included.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>

#include "runtime_internal.h"
#include "tap.h"

#define CAP		64
#define NR_THIEVES	3
#define ROUNDS		100
#define PER_ROUND	2000

/* Items are pointers into this array (never NULL). */
static uint32_t taken[ROUNDS * PER_ROUND];

static void t_single(void)
{
	static void *slots[8];
	struct uhp__deque d;
	uintptr_t v[9];
	void *out;
	bool ok = true;

	uhp__deque_init(&d, slots, 8);
	tap_ok(uhp__deque_pop(&d) == NULL, "pop from empty: NULL");
	tap_is(uhp__deque_steal(&d, &out), -EAGAIN, "steal from empty: -EAGAIN");
	for (unsigned i = 0; i < 8; i++)
		ok &= uhp__deque_push(&d, (void *)(uintptr_t)(i + 1)) == 0;
	tap_ok(ok, "8 pushes fit a capacity of 8");
	tap_is(uhp__deque_push(&d, (void *)9), -ENOSPC, "9th push: -ENOSPC");
	tap_is(uhp__deque_size(&d), 8, "size 8");
	for (unsigned i = 0; i < 3; i++)
		v[i] = uhp__deque_steal(&d, &out) == 0 ? (uintptr_t)out : 0;
	tap_ok(v[0] == 1 && v[1] == 2 && v[2] == 3, "steals take the oldest: 1 2 3");
	for (unsigned i = 0; i < 3; i++)
		v[i] = (uintptr_t)uhp__deque_pop(&d);
	tap_ok(v[0] == 8 && v[1] == 7 && v[2] == 6, "pops take the newest: 8 7 6");
	tap_is(uhp__deque_push(&d, (void *)10), 0, "push after freeing room");
	tap_ok((uintptr_t)uhp__deque_pop(&d) == 10 && (uintptr_t)uhp__deque_pop(&d) == 5 &&
	       (uintptr_t)uhp__deque_pop(&d) == 4 && uhp__deque_pop(&d) == NULL &&
	       uhp__deque_size(&d) == 0, "drained: 10 5 4, then empty");

	/* Wrap: 1000 push/steal pairs move the indices far past the slots. */
	ok = true;
	for (uintptr_t i = 1; i <= 1000; i++) {
		ok &= uhp__deque_push(&d, (void *)i) == 0;
		ok &= uhp__deque_push(&d, (void *)(i + 5000)) == 0;
		ok &= uhp__deque_steal(&d, &out) == 0 && (uintptr_t)out == i;
		ok &= (uintptr_t)uhp__deque_pop(&d) == i + 5000;
	}
	tap_ok(ok && d.top >= 2000 && d.bottom == d.top,
	       "indices wrap the slots: FIFO steals, LIFO pops still right");
}

struct race {
	struct uhp__deque d;
	void *slots[CAP];
	int stop;
	uint64_t stolen;	/* items the thieves took */
	uint64_t aborts;	/* steals that lost a race (-EBUSY) */
};

static void take(void *item)
{
	__atomic_fetch_add((uint32_t *)item, 1, __ATOMIC_RELAXED);
}

static void *thief(void *arg)
{
	struct race *r = arg;
	uint64_t stolen = 0, aborts = 0, empty = 0;
	bool last = false;
	void *out;

	/* Steal until the owner is done, then once more until empty. */
	for (;;) {
		int ret = uhp__deque_steal(&r->d, &out);

		if (ret == 0) {
			take(out);
			stolen++;
		} else if (ret == -EBUSY) {
			aborts++;
		} else if (last) {
			break;
		} else {
			/* Pairs with the owner's store-release of stop. */
			last = __atomic_load_n(&r->stop, __ATOMIC_ACQUIRE);
			if (++empty % 64 == 0)
				sched_yield();	/* 2 CPUs: let the owner push */
		}
	}
	__atomic_fetch_add(&r->stolen, stolen, __ATOMIC_RELAXED);
	__atomic_fetch_add(&r->aborts, aborts, __ATOMIC_RELAXED);
	return NULL;
}

static void t_concurrent(void)
{
	struct race *r = calloc(1, sizeof(*r));
	pthread_t th[NR_THIEVES];
	uint64_t owner_pops = 0, once = 0, never = 0, twice = 0;
	unsigned next = 0, seed = 12345;

	uhp__deque_init(&r->d, r->slots, CAP);
	for (unsigned i = 0; i < NR_THIEVES; i++)
		pthread_create(&th[i], NULL, thief, r);
	for (unsigned round = 0; round < ROUNDS; round++) {
		/* Push a burst, pop some, push more: the deque is often empty
		 * or holding one item, where pop and steal race for it. */
		while (next < (round + 1) * PER_ROUND) {
			unsigned burst = 1 + (seed = seed * 1103515245 + 12345) % 7;

			for (unsigned k = 0; k < burst && next < (round + 1) * PER_ROUND; k++) {
				if (uhp__deque_push(&r->d, &taken[next]) == 0)
					next++;
				else
					break;	/* full: pop below */
			}
			/* Leave the thieves a moment, then pop about half. */
			for (unsigned k = 0; k < 64; k++)
				__asm__ __volatile__("pause" ::: "memory");
			for (unsigned k = 0; k < burst / 2 + 1; k++) {
				void *item = uhp__deque_pop(&r->d);

				if (!item)
					break;
				take(item);
				owner_pops++;
			}
		}
	}
	/* Owner drains its end, then lets the thieves finish theirs. */
	for (void *item; (item = uhp__deque_pop(&r->d)); owner_pops++)
		take(item);
	__atomic_store_n(&r->stop, 1, __ATOMIC_RELEASE);
	for (unsigned i = 0; i < NR_THIEVES; i++)
		pthread_join(th[i], NULL);

	for (unsigned i = 0; i < ROUNDS * PER_ROUND; i++) {
		uint32_t c = __atomic_load_n(&taken[i], __ATOMIC_RELAXED);

		once += c == 1;
		never += c == 0;
		twice += c > 1;
	}
	tap_diag("%u items: owner popped %llu, thieves stole %llu, lost races %llu",
		 ROUNDS * PER_ROUND, (unsigned long long)owner_pops,
		 (unsigned long long)r->stolen, (unsigned long long)r->aborts);
	tap_is(never, 0, "concurrent: no item lost");
	tap_is(twice, 0, "concurrent: no item taken twice");
	tap_is(once, ROUNDS * PER_ROUND, "concurrent: every item taken exactly once");
	tap_is(owner_pops + r->stolen, ROUNDS * PER_ROUND,
	       "owner pops + thieves' steals = items pushed");
	tap_ok(owner_pops > 0 && r->stolen > 0, "both the owner and the thieves took items");
	free(r);
}

int main(void)
{
	tap_plan(15);
	t_single();
	t_concurrent();
	return tap_done();
}
