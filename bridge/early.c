/* SPDX-License-Identifier: MIT */
/*
 * uhp-bridge, inbound, jetstream: early delivery (bridge/DESIGN.md, "Early
 * delivery"). In order: what a source committed early and the stream has
 * not delivered yet (early_lo and the bits, kept as a distance in the state
 * file across a restart), what the stream's copies tell of it, giving up on
 * a copy that never comes, then the early copy itself: committing it
 * (in_early()), its callback and its subscription.
 *
 * Everything here runs under the export's in_mu, but early_lo's stores,
 * which credit_cb() loads without it.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "bridge.h"

/* Loss hook: every Nth early copy is ignored, as if it never came.
 * UHP_BRIDGE_EARLY_DROP_EVERY=N; tests only. */
uint64_t g_early_drop_every;
/* Stall hook: the puller starts pulling this long after it subscribed for
 * early copies (a stream that lags behind them). UHP_BRIDGE_PULL_DELAY_MS;
 * tests only. */
uint64_t g_pull_delay_ms;

static uint64_t *early_row(struct export *e, int idx)
{
	return e->early_bits + (size_t)idx * (EARLY_WINDOW / 64);
}

static bool early_bit(struct export *e, int idx, uint64_t lseq)
{
	return early_row(e, idx)[lseq % EARLY_WINDOW / 64] >> (lseq % 64) & 1;
}

/*
 * Save what is pending as a distance below next (the mark about to be
 * stored): the state file outlives the process, the bits do not. Clamped:
 * a wrong distance only makes credit narrower.
 */
void early_note(struct export *e, int idx, uint64_t next)
{
	uint64_t lo = atomic_load_explicit(&e->early_lo[idx], memory_order_relaxed);
	uint64_t back = lo && next > lo ? next - lo : 0;

	e->st->src[idx].early_back = back > UINT32_MAX ? UINT32_MAX : (uint32_t)back;
}

/* early_lo moves: credit_cb() loads it (acquire). */
static void early_set_lo(struct export *e, int idx, uint64_t lo)
{
	atomic_store_explicit(&e->early_lo[idx], lo, memory_order_release);
	e->early_lo_ns[idx] = now_ns();
	if (!lo)
		e->early_blind[idx] = false;
	early_note(e, idx, e->st->src[idx].next);
}

/* A source entry (re)used: nothing of it is pending. */
void early_forget(struct export *e, int idx)
{
	atomic_store_explicit(&e->early_lo[idx], 0, memory_order_release);
	e->early_blind[idx] = false;
	if (e->early_bits)
		memset(early_row(e, idx), 0, EARLY_WINDOW / 8);
}

/*
 * At the start: what was committed early before the stop and perhaps not
 * delivered by the stream yet, from the state file. Which of those records
 * the stream still holds is not known (the bits are gone): until it
 * delivers past them, the source is blind (no early commits) and each
 * stream copy in the range moves early_lo past it. Credit counts the
 * range meanwhile, also with early delivery turned off since.
 */
void early_restore(struct export *e)
{
	for (int i = 0; i < MAX_SRC; i++) {
		struct src_ent *s = &e->st->src[i];

		if (!s->used || !s->early_back)
			continue;
		e->early_blind[i] = true;
		atomic_store_explicit(&e->early_lo[i],
				      s->next > s->early_back ? s->next - s->early_back : 1,
				      memory_order_release);
		e->early_lo_ns[i] = now_ns();
		LOG_INFO("%s: %s: records from %" PRIu64 " were committed early before the stop;"
			 " waiting for the stream to deliver past them", e->chan, s->key,
			 atomic_load(&e->early_lo[i]));
	}
}

/*
 * The stream delivered record lseq of source idx (before it is checked
 * against next): true if it was committed early, its copy now only to be
 * acknowledged. The oldest pending one delivered moves early_lo to the
 * next pending one, or to none.
 */
bool early_seen(struct export *e, int idx, uint64_t lseq)
{
	uint64_t lo = atomic_load_explicit(&e->early_lo[idx], memory_order_relaxed);
	uint64_t next = e->st->src[idx].next, q;
	uint64_t *w;

	if (!lo || lseq < lo)
		return false;
	if (e->early_blind[idx]) {
		/* the stream delivers in order: what is before lseq is out */
		early_set_lo(e, idx, lseq + 1 < next ? lseq + 1 : 0);
		return lseq < next;
	}
	if (lseq >= next || !e->early_bits || !early_bit(e, idx, lseq))
		return false;
	w = &early_row(e, idx)[lseq % EARLY_WINDOW / 64];
	*w &= ~(1ULL << (lseq % 64));
	if (lseq == lo) {	/* set bits lie in [lo, lo + EARLY_WINDOW) */
		for (q = lo + 1; q < next && q - lo < EARLY_WINDOW && !early_bit(e, idx, q); q++)
			;
		early_set_lo(e, idx, q < next && q - lo < EARLY_WINDOW ? q : 0);
	}
	return true;
}

/*
 * A record committed early whose copy the stream never delivers (it lost
 * it, or its sender is gone and resends nothing) would hold credit and the
 * window for good: after gap_timeout_ms (60 s if 0) without early_lo
 * moving, forget what is pending for that source (early_expired, logged).
 * Called by the puller, under in_mu, now and then.
 */
void early_expire(struct export *e, int64_t now)
{
	int64_t ms = C.gap_timeout_ms > 0 ? C.gap_timeout_ms : 60000;

	for (int i = 0; i < MAX_SRC; i++) {
		uint64_t lo = atomic_load_explicit(&e->early_lo[i], memory_order_relaxed);

		if (!lo || now - e->early_lo_ns[i] < ms * 1000000LL)
			continue;
		LOG_WARN("%s: %s: the stream did not deliver %" PRIu64 " (committed early) in %"
			 PRId64 " ms: no longer counted as in the stream", e->chan,
			 e->st->src[i].key, lo, ms);
		CNT_INC(e->early_expired);
		if (e->early_bits)
			memset(early_row(e, i), 0, EARLY_WINDOW / 8);
		early_set_lo(e, i, 0);
	}
}

/*
 * Commit record lseq, the next of source idx, from its early copy: never
 * waiting for room (-EAGAIN), never while the source is blind or the
 * oldest pending record is EARLY_WINDOW behind (the bits then stay exact:
 * all of them lie in [early_lo, next)).
 */
int early_commit(struct export *e, int idx, uint64_t lseq, const struct wire *w,
		 const void *data, uint32_t len)
{
	uint64_t lo = atomic_load_explicit(&e->early_lo[idx], memory_order_relaxed);
	int rc;

	if (e->early_blind[idx] || (lo && lseq - lo >= EARLY_WINDOW))
		return -EAGAIN;
	if (!lo)	/* before the commit: its note (commit_rec()) counts it */
		early_set_lo(e, idx, lseq);
	rc = commit_rec(e, idx, lseq, w, data, len, NULL, true, true);
	if (rc) {
		if (!lo)
			early_set_lo(e, idx, 0);
		return rc;
	}
	early_row(e, idx)[lseq % EARLY_WINDOW / 64] |= 1ULL << (lseq % 64);
	e->st->src[idx].wait_since_ns = 0;
	CNT_INC(e->early);
	return 0;
}

/*
 * The early copy of a jetstream message. A publish passes every subscriber
 * on its way to the stream's leader, which stores it on a quorum before
 * the consumer delivers it. Its records are committed at once when each is
 * the next of a source we know, nothing is held and early_commit() agrees;
 * anything else (a copy lost, out of order, damaged, no room) is left to
 * the stream's copy. Each record is still committed once and in order.
 */
static void in_early(struct export *e, natsMsg *m)
{
	const char *link = NULL, *bv = NULL, *data = natsMsg_GetData(m);
	uint32_t len = (uint32_t)natsMsg_GetDataLength(m);
	uint64_t lseq, n = 1, off = 0, own = e->msg_bytes;
	char key[SRC_KEY_MAX];
	struct src_ent *s;
	struct wire w;
	int idx;

	if (atomic_load(&e->held_now) ||
	    natsMsgHeader_Get(m, "Uhp-Link", &link) != NATS_OK || !link ||
	    !parse_link(link, key, sizeof(key), &lseq))
		goto skip;
	pthread_mutex_lock(&e->src_mu);
	idx = src_find(e, key);
	pthread_mutex_unlock(&e->src_mu);
	if (idx < 0)
		goto skip;		/* a new source starts with the stream */
	s = &e->st->src[idx];
	if (natsMsgHeader_Get(m, "Uhp-Batch", &bv) == NATS_OK && bv &&
	    (!parse_u64(bv, 10, &n) || n == 0))
		goto skip;
	if (lseq + n <= s->next)
		return;			/* the stream's copy was first */
	if (lseq > s->next)
		goto skip;		/* one before it has not come yet */
	lt_mark(LT_B_IN, bv ? data + sizeof(struct frame) : data,
		bv ? (len > sizeof(struct frame) ? len - (uint32_t)sizeof(struct frame) : 0) : len);
	if (!bv) {
		if (!parse_wire(m, &w) || early_commit(e, idx, lseq, &w, data, len))
			goto skip;
		goto out;
	}
	for (uint64_t i = 0; i < n; i++) {
		struct frame f;

		if (off + sizeof(f) > len)
			goto skip;
		memcpy(&f, data + off, sizeof(f));
		off += sizeof(f);
		if (f.len > len - off)
			goto skip;
		if (lseq + i == s->next) {
			w = (struct wire){ .src = f.src, .dst = f.dst, .crc = f.crc, .type = f.type,
					   .flags = f.flags, .useq = f.seq };
			if (early_commit(e, idx, lseq + i, &w, data + off, f.len))
				goto skip;
		}
		off += f.len;
	}
	goto out;
skip:
	CNT_INC(e->early_skipped);
out:
	e->msg_bytes = own;	/* the puller's (pull_room()) */
}

static void early_msg_cb(natsConnection *nc, natsSubscription *sub, natsMsg *m,
			 void *closure)
{
	static _Atomic uint64_t seen;
	struct export *e = closure;

	(void)nc;
	(void)sub;
	if (g_early_drop_every && atomic_fetch_add(&seen, 1) % g_early_drop_every == 0) {
		CNT_INC(e->early_skipped);
	} else if (!pthread_mutex_trylock(&e->in_mu)) {
		if (!e->closed)
			in_early(e, m);
		pthread_mutex_unlock(&e->in_mu);
	} else {
		/* the puller commits, or waits for room: the stream's copy
		 * will do */
		CNT_INC(e->early_skipped);
	}
	natsMsg_Destroy(m);
}

/*
 * Subscribe for the early copies; by the puller, once the stream exists (a
 * subscriber on the subject before it would answer a sender's publish in
 * its place: no 503 "no responders", so no quick retry). 0 or -EIO.
 */
int early_subscribe(struct export *e)
{
	natsSubscription *sub = NULL;

	if (natsConnection_Subscribe(&sub, g_nc_in, e->subject, early_msg_cb, e) != NATS_OK) {
		LOG_ERR("%s: subscribe %s: %s", e->chan, e->subject, nats_GetLastError(NULL));
		return -EIO;
	}
	/* a copy dropped here is the stream's to deliver */
	natsSubscription_SetPendingLimits(sub, 65536, 64 << 20);
	atomic_store(&e->early_sub, sub);
	return 0;
}
