// SPDX-License-Identifier: MIT
/*
 * Consumer-side recovery: what to do when the head of a ring is not a
 * committed record although producers have reserved space past it.
 *
 * Order of things in this file:
 *   1. the clock and the timeout setter
 *   2. scan_next(): find the next position that holds a plausible record
 *   3. uhp__ring_stalled(): the stall clock and the two ways to skip;
 *      uhp__stall_check_soon(): when the next head check runs it
 *   4. uhp__ring_skip_garbage(): a committed header with an impossible length
 *
 * A producer that dies (or stops) between reserve and commit leaves the
 * record at read_pos uncommitted. Once it has been so for the stall timeout
 * (never on a kernel ring: kernel producers do not die, see below):
 *   - tag BUSY with a length that fits below write_pos: skip exactly that
 *     record (the length was written before the BUSY tag was released);
 *   - anything else (nothing written yet, or a length that cannot be): scan
 *     forward in UHP_REC_ALIGN steps below write_pos for the first position p
 *     whose tag is p^salt or p^salt^BUSY and skip to it. If nothing is found
 *     (the producers after it have not written their headers yet) the scan
 *     is retried later, at most every timeout/8.
 * The clock is read only here, never while records flow.
 *
 * Residual risk, by design: a producer stopped (not dead) for longer than the
 * timeout loses its record; when it resumes, it writes into space the
 * consumer has released, and if that space was already reserved again the
 * newer record fails its CRC and is reported as -EBADMSG.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <time.h>

#include "uhp_internal.h"

/* ---- 1. clock ---- */

uint64_t uhp__now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);	/* vDSO: no syscall */
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

UHP_API void uhp_set_stall_timeout_ns(struct uhp_channel *ch, uint64_t ns)
{
	ch->stall_timeout_ns = ns;
}

/* ---- 2. scan ---- */

static bool tag_plausible(const struct uhp_ring *r, uint64_t p)
{
	const struct uhp_rec_hdr *h =
		(const struct uhp_rec_hdr *)(r->data + (p & r->mask));
	/* Pairs with the producers' store-release of the tag. */
	uint64_t tag = __atomic_load_n(&h->tag, __ATOMIC_ACQUIRE);

	return tag == (p ^ r->salt) || tag == (p ^ r->salt ^ UHP_TAG_BUSY);
}

/* First p in (from, from + dist) with a plausible tag; dist <= data_size. */
static bool scan_next(const struct uhp_ring *r, uint64_t from, uint64_t dist,
		      uint64_t *found)
{
	for (uint64_t off = UHP_REC_ALIGN; off < dist; off += UHP_REC_ALIGN) {
		if (tag_plausible(r, from + off)) {
			*found = from + off;
			return true;
		}
	}
	return false;
}

/* Distance from rpos to write_pos, clamped to one lap; 0 if none/corrupt. */
static uint64_t reserved_ahead(struct uhp_channel *ch, struct uhp_ring *r)
{
	/* Relaxed: only a bound, every record found is checked by its tag. */
	uint64_t wp = __atomic_load_n(&r->prod->write_pos, __ATOMIC_RELAXED);
	uint64_t dist = wp - r->rpos;

	if ((int64_t)dist <= 0)
		return 0;
	return dist > ch->data_size ? ch->data_size : dist;
}

static void skip_to(struct uhp_channel *ch, struct uhp_ring *r, uint64_t pos)
{
	UHP_PROBE3(stall, ch, (unsigned)(r - ch->rings), r->rpos);
	uhp__ring_consume(ch, r, pos);
	uhp__count(&ch->cstat.stalled_skips, 1);
	uhp__count(&r->cons->stalled, 1);
}

/* ---- 3. stalled head ---- */

/*
 * The tag at rpos of r is 'tag', not the committed value. Returns 0 if rpos
 * was moved (look again), -EAGAIN if there is nothing to take yet.
 */
UHP_COLD int uhp__ring_stalled(struct uhp_channel *ch, struct uhp_ring *r,
			       uint64_t tag)
{
	uint64_t pos = r->rpos, dist, now, p;

	/*
	 * A kernel producer never dies between reserve and commit (a kernel
	 * caller that cannot commit discards), but on PREEMPT_RT it can be
	 * preempted there for any time: skipping would lose its record.
	 */
	if (r->kernel)
		return -EAGAIN;
	dist = reserved_ahead(ch, r);
	if (dist == 0) {
		r->stall_since = 0;	/* empty: nothing is late */
		return -EAGAIN;
	}
	if (ch->stall_timeout_ns == 0)
		return -EAGAIN;
	now = uhp__now_ns();
	if (r->stall_since == 0 || r->stall_pos != pos) {
		r->stall_pos = pos;
		r->stall_since = now;
		r->stall_next_scan = 0;
		return -EAGAIN;
	}
	if (now - r->stall_since < ch->stall_timeout_ns)
		return -EAGAIN;

	if (tag == (pos ^ r->salt ^ UHP_TAG_BUSY)) {
		const struct uhp_rec_hdr *h =
			(const struct uhp_rec_hdr *)(r->data + (pos & r->mask));
		/* Written before the BUSY tag we acquired in uhp__ring_head(). */
		uint64_t total = UHP_REC_TOTAL(__atomic_load_n(&h->len,
							       __ATOMIC_RELAXED));

		if (total <= dist) {
			skip_to(ch, r, pos + total);
			return 0;
		}
	}
	if (now < r->stall_next_scan)
		return -EAGAIN;
	if (scan_next(r, pos, dist, &p)) {
		skip_to(ch, r, p);
		return 0;
	}
	r->stall_next_scan = now + ch->stall_timeout_ns / 8;
	return -EAGAIN;
}

UHP_COLD void uhp__stall_check_soon(struct uhp_channel *ch)
{
	for (unsigned k = 0; k < ch->nr_rings; k++)
		ch->rings[k].idle_polls = UHP_STALL_CHECK_EVERY - 1;
}

/* ---- 4. garbage ---- */

/*
 * The committed head of r claims a length past write_pos or the ring (a
 * peer wrote garbage). Its real extent is unknown: skip to the next
 * plausible record, or by one slot; uhp__ring_head() made sure write_pos is
 * at least one slot ahead, so read_pos never passes write_pos.
 */
UHP_COLD void uhp__ring_skip_garbage(struct uhp_channel *ch, struct uhp_ring *r)
{
	uint64_t pos = r->rpos, dist = reserved_ahead(ch, r), p;

	if (dist < UHP_REC_ALIGN)
		return;
	if (!scan_next(r, pos, dist, &p))
		p = pos + UHP_REC_ALIGN;
	UHP_PROBE3(bad, ch, (unsigned)(r - ch->rings), pos);
	uhp__ring_consume(ch, r, p);
	/* The callers count the handle's crc_errors; this is the ring's. */
	uhp__count(&r->cons->records, 1);
	uhp__count(&r->cons->bad, 1);
}
