// SPDX-License-Identifier: MIT
/*
 * Exclusive rings: uhp_claim_ring() makes a handle the only producer of
 * one ring, so its sends store write_pos instead of CASing it (ring.c,
 * reserve() and send_body()). Measured with bench_throughput, uhp_spin vs
 * uhp_excl: the CAS, a locked instruction that waits for the record stores
 * before it, was most of a 64-byte send.
 *
 * Who guarantees "only producer":
 *   module   the kernel (UHP_IOC_CLAIM): one claimant per ring, one claim
 *            per fd, released when the fd is closed; SEND by anyone else
 *            is -EBUSY.
 *   arena    the header's claim_pid[] (arena.c), taken with a CAS and given
 *            back by uhp_close(), as the consumer role is.
 * Producers without the claim never pick the ring (channel.c) and
 * uhp_set_producer_ring() refuses it.
 *
 * fork(): a child shares the parent's claim (the same open file in the
 * module's case), so two processes would store write_pos. The child's copy
 * of every claiming handle therefore gives up the ring at fork (an atfork
 * handler over the list below) and sends to its node's shared ring.
 *
 * Order of things: 1. the list of claiming handles and fork, 2. the claim.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>

#include "uhp_internal.h"

/* ---- 1. claiming handles, fork ---- */

static pthread_mutex_t claim_lock = PTHREAD_MUTEX_INITIALIZER;
static struct uhp_channel *claim_list;	/* claim_lock */
static pthread_once_t claim_once = PTHREAD_ONCE_INIT;

static void claim_prepare(void)
{
	pthread_mutex_lock(&claim_lock);
}

static void claim_parent(void)
{
	pthread_mutex_unlock(&claim_lock);
}

/* The child: its handles are no ring's only producer. */
static void claim_child(void)
{
	for (struct uhp_channel *ch = claim_list; ch; ch = ch->claim_next) {
		ch->claimed = -1;
		uhp__channel_pick_producer_ring(ch);
	}
	claim_list = NULL;
	pthread_mutex_unlock(&claim_lock);
}

static void claim_init(void)
{
	(void)pthread_atfork(claim_prepare, claim_parent, claim_child);
}

/* ch goes (uhp__channel_free()): off the list. */
void uhp__claim_forget(struct uhp_channel *ch)
{
	if (ch->claimed < 0)
		return;
	pthread_mutex_lock(&claim_lock);
	for (struct uhp_channel **p = &claim_list; *p; p = &(*p)->claim_next) {
		if (*p == ch) {
			*p = ch->claim_next;
			break;
		}
	}
	pthread_mutex_unlock(&claim_lock);
}

/* ---- 2. the claim ---- */

UHP_API int uhp_claim_ring(struct uhp_channel *ch)
{
	int k;

	if (!ch)
		return -EINVAL;
	if (!ch->max_total)
		return -EBADF;		/* an observer sends nothing */
	if (ch->claimed >= 0)
		return -EBUSY;
	pthread_once(&claim_once, claim_init);
	k = ch->be->claim(ch);
	if (k < 0)
		return k;
	/* What the kernel or the arena header says is checked like the rest. */
	if ((unsigned)k >= ch->nr_rings || !ch->rings[k].excl)
		return -EPROTO;
	pthread_mutex_lock(&claim_lock);
	ch->claimed = k;
	ch->claim_next = claim_list;
	claim_list = ch;
	pthread_mutex_unlock(&claim_lock);
	__atomic_store_n(&ch->prod_ring, (unsigned)k, __ATOMIC_RELAXED);
	return k;
}
