// SPDX-License-Identifier: MIT
/*
 * Chase-Lev work-stealing deque, after the C11 version of Le, Pop, Cohen
 * and Zappa Nardelli, "Correct and efficient work-stealing for weak memory
 * models" (PPoPP 2013), figure 1, with a fixed-capacity array:
 *
 *   slots[i & mask] for top <= i < bottom
 *   owner:  push -> slots[bottom++]      pop  -> slots[--bottom]  (LIFO)
 *   thieves:                             steal -> slots[top++]    (FIFO)
 *
 * The one contended item is the last: pop and steal both CAS top for it.
 *
 * Why fixed capacity: the runtime queues an agent only while it moves it
 * from IDLE to QUEUED, so an agent sits in at most one deque at a time and
 * a deque sized for every agent of the runtime can never fill. Resizing
 * (the paper's array swap, with old arrays kept until no thief can read
 * them) is therefore not needed; a full deque is reported (-ENOSPC).
 *
 * Slots are read and written with relaxed atomics: a thief may read a slot
 * the owner is overwriting, and then loses its CAS on top (the paper's
 * reasoning); the atomics only keep that race defined in C.
 */
#include <errno.h>

#include "runtime_internal.h"

void uhp__deque_init(struct uhp__deque *d, void **slots, uint64_t cap)
{
	d->top = 0;
	d->bottom = 0;
	d->mask = cap - 1;
	d->slots = slots;
}

int uhp__deque_push(struct uhp__deque *d, void *item)
{
	int64_t b = __atomic_load_n(&d->bottom, __ATOMIC_RELAXED);
	/* Pairs with the thieves' CAS on top: a slot is free again only once
	 * its steal completed. */
	int64_t t = __atomic_load_n(&d->top, __ATOMIC_ACQUIRE);

	if ((uint64_t)(b - t) > d->mask)
		return -ENOSPC;
	__atomic_store_n(&d->slots[b & d->mask], item, __ATOMIC_RELAXED);
	/*
	 * The slot (and everything the owner did before queuing the item)
	 * before the new bottom. Pairs with the acquire load of bottom in
	 * uhp__deque_steal(): a thief that sees b + 1 sees the item. The
	 * paper has a release fence and a relaxed store; only bottom
	 * publishes, so a store-release is the same here (and ThreadSanitizer,
	 * which does not model fences, sees it).
	 */
	__atomic_store_n(&d->bottom, b + 1, __ATOMIC_RELEASE);
	return 0;
}

void *uhp__deque_pop(struct uhp__deque *d)
{
	int64_t b = __atomic_load_n(&d->bottom, __ATOMIC_RELAXED) - 1;
	void *item = NULL;
	int64_t t;

	__atomic_store_n(&d->bottom, b, __ATOMIC_RELAXED);
	/*
	 * Full fence: the bottom store before the top load. Pairs with the
	 * fence between a thief's top load and bottom load: of a thief and
	 * the owner racing for the last item, at least one sees the other
	 * and both then settle it with the CAS on top.
	 */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	t = __atomic_load_n(&d->top, __ATOMIC_RELAXED);
	if (t <= b) {
		item = __atomic_load_n(&d->slots[b & d->mask], __ATOMIC_RELAXED);
		if (t == b) {
			/* The last item: win it against the thieves. */
			if (!__atomic_compare_exchange_n(&d->top, &t, t + 1, false,
							 __ATOMIC_SEQ_CST,
							 __ATOMIC_RELAXED))
				item = NULL;
			__atomic_store_n(&d->bottom, b + 1, __ATOMIC_RELAXED);
		}
	} else {
		__atomic_store_n(&d->bottom, b + 1, __ATOMIC_RELAXED);
	}
	return item;
}

int uhp__deque_steal(struct uhp__deque *d, void **out)
{
	/* Pairs with the CASes on top by other thieves and the owner. */
	int64_t t = __atomic_load_n(&d->top, __ATOMIC_ACQUIRE);
	int64_t b;
	void *item;

	/* Full fence: pairs with the one in uhp__deque_pop(). */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	/* Pairs with the release fence in uhp__deque_push(). */
	b = __atomic_load_n(&d->bottom, __ATOMIC_ACQUIRE);
	if (t >= b)
		return -EAGAIN;
	item = __atomic_load_n(&d->slots[t & d->mask], __ATOMIC_RELAXED);
	/* Claims slot t; seq_cst like the owner's CAS for the last item. */
	if (!__atomic_compare_exchange_n(&d->top, &t, t + 1, false,
					 __ATOMIC_SEQ_CST, __ATOMIC_RELAXED))
		return -EBUSY;
	*out = item;
	return 0;
}

int64_t uhp__deque_size(const struct uhp__deque *d)
{
	int64_t b = __atomic_load_n(&d->bottom, __ATOMIC_ACQUIRE);
	int64_t t = __atomic_load_n(&d->top, __ATOMIC_ACQUIRE);

	return b > t ? b - t : 0;
}
