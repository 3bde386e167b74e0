/* SPDX-License-Identifier: MIT */
/*
 * uhp-bridge, outbound: a route takes the records of its outbox and sends
 * them to the remote channel. The outbox, framing, waiting for records,
 * the core route thread, then the jetstream one (spool, PubAcks, resends,
 * credit) and how an ack or a grant wakes it, and start_route().
 */
#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge.h"
#include "cpu_relax.h"

static int open_outbox(struct route *r)
{
	struct uhp_open_opts o = UHP_OPEN_OPTS_INIT;
	int rc;

	o.flags = UHP_OPEN_CREATE | UHP_OPEN_CONSUMER;
	o.ring_size = (uint64_t)r->ring_size;
	o.spin = (uint32_t)C.spin;
	rc = uhp_open_channel(r->outbox, &o, &r->ch);
	if (rc < 0) {
		LOG_ERR("outbox %s: uhp_open_channel: %s", r->outbox, strerror(-rc));
		return rc;
	}
	if (C.spin)
		uhp_set_spin(r->ch, (unsigned)C.spin);
	LOG_INFO("route %s -> %s/%s (%s, %s): %s, subject %s", r->outbox,
		 r->dst_host, r->dst_chan, uhp_channel_kind(r->ch),
		 rc ? "created" : "attached", mode_name(r->mode), r->subject);
	return 0;
}

static size_t frame_put(char *dst, const void *payload, uint32_t len, const struct wire *w)
{
	struct frame f = { .len = len, .type = w->type, .flags = w->flags, .src = w->src,
			   .dst = w->dst, .seq = w->useq, .crc = w->crc };

	memcpy(dst, &f, sizeof(f));
	memcpy(dst + sizeof(f), payload, len);
	return sizeof(f) + len;
}

/*
 * Records were taken from the outbox: note when, and the mean gap between
 * such moments (a burst counts once), for outbox_wait().
 */
static void outbox_took(struct route *r)
{
	int64_t now = now_ns(), gap = now - r->last_take_ns;

	if (gap > 1000000000LL)
		gap = 1000000000LL;
	r->gap_ns = r->last_take_ns ? (r->gap_ns * 7 + gap) / 8 : gap;
	r->last_take_ns = now;
}

/*
 * Wait for records in the outbox. A thread that sleeps costs every record
 * that finds it asleep a wakeup (the futex, the scheduler, on a VM an idle
 * vCPU's exit): tens to hundreds of us on the path that is measured. So
 * while records came often lately (their mean gap within spin_us), poll
 * the outbox until spin_us after the last one, yielding the CPU every 32
 * checks, and only then sleep. Records that come less often than that
 * never make it spin: an idle or slow route costs no CPU.
 */
static int outbox_wait(struct route *r, int timeout_ms)
{
	if (C.spin_us > 0 && r->last_take_ns && r->gap_ns <= C.spin_us * 1000) {
		int64_t end = r->last_take_ns + C.spin_us * 1000;

		for (unsigned i = 1; !g_stop && now_ns() < end; i++) {
			if (uhp_wait(r->ch, 0) == 1)
				return 1;
			if (i % 32)
				cpu_relax();
			else
				sched_yield();
		}
	}
	return uhp_wait(r->ch, timeout_ms);
}

static void *core_route_thread(void *arg)
{
	struct route *r = arg;
	int64_t last_err = 0;
	size_t cap = (size_t)r->batch_bytes + sizeof(struct frame);
	char *buf = malloc(cap);

	if (!buf) {	/* a route that cannot run stops the bridge, loudly */
		LOG_ERR("%s: out of memory for the batch buffer: stopping", r->outbox);
		g_failed = 1;
		g_stop = 1;
		return NULL;
	}
	while (!g_stop) {
		struct uhp_rx rx;
		unsigned n = 0;
		size_t bytes = 0;
		natsStatus s = NATS_OK;
		int rc;

		/* Natural batching: as many records as are there, no waiting. */
		if (uhp_wait(r->ch, 0) == 1)
			outbox_took(r);
		while (n < (unsigned)r->batch && (rc = uhp_peek(r->ch, &rx)) == 0) {
			struct wire w = { .src = rx.meta.src, .dst = rx.meta.dst,
					  .crc = rx.crc, .type = rx.meta.type,
					  .flags = rx.meta.flags, .useq = rx.meta.seq };

			lt_mark(LT_A_PEEK, rx.payload, rx.len);
			if (r->batch > 1 && sizeof(struct frame) + rx.len <= cap) {
				if (n && bytes + sizeof(struct frame) + rx.len > cap)
					break;		/* next batch */
				bytes += frame_put(buf + bytes, rx.payload, rx.len, &w);
				uhp_release(r->ch, &rx);
				n++;
				CNT_INC(r->forwarded);
				continue;
			}
			if (n)
				break;			/* a big one: after this batch */
			/* one record, its meta in headers */
			s = core_publish_held(r, rx.payload, rx.len, 1, &w, &last_err);
			if (s == NATS_MAX_PAYLOAD) {
				CNT_INC(r->too_big);
				LOG_RATE("error", "%s: a %u-byte record exceeds the server's max_payload: dropped",
					 r->outbox, rx.len);
			} else if (s == NATS_OK) {
				r->core_seq++;
				CNT_INC(r->published);
			}
			uhp_release(r->ch, &rx);
			CNT_INC(r->forwarded);
			n = 0;
			bytes = 0;
			goto next;
		}
		/* A lone record too goes framed (only with batch > 1: the
		 * subscriber is a bridge): two headers to write and parse
		 * instead of seven, on the path of every record that finds
		 * the route idle. */
		if (n)
			s = core_publish_held(r, buf, bytes, n, NULL, &last_err);
		if (n) {
			if (s == NATS_MAX_PAYLOAD) {
				CNT_ADD(r->too_big, n);
				LOG_RATE("error", "%s: a batch exceeds the server's max_payload: lower batch_bytes",
					 r->outbox);
			}
			r->core_seq += n;	/* lost ones show as a gap */
			CNT_ADD(r->published, n);
			continue;
		}
		outbox_wait(r, 100);
next:		;
	}
	free(buf);
	return NULL;
}

/* A new ack or credit: wake the route thread if it sleeps for one. */
void route_wake(struct route *r)
{
	if (atomic_load(&r->waiting)) {
		pthread_mutex_lock(&r->mu);
		pthread_cond_signal(&r->cv);
		pthread_mutex_unlock(&r->mu);
	}
}

static void *js_route_thread(void *arg)
{
	struct route *r = arg;
	int64_t last_scan = 0, backoff_ms = 50;
	bool deferred = false, credit_blocked = false;
	natsInbox *inbox = NULL;
	char subj[200];

	/* PubAcks come back on <inbox>.<lseq>. */
	natsInbox_Create(&inbox);
	snprintf(r->ack_pfx, sizeof(r->ack_pfx), "%s", inbox);
	natsInbox_Destroy(inbox);
	snprintf(subj, sizeof(subj), "%s.*.*", r->ack_pfx);
	if (natsConnection_Subscribe(&r->acksub, g_nc_out, subj, on_puback, r) != NATS_OK) {
		/* a route that cannot run stops the bridge, loudly */
		LOG_ERR("%s: subscribe %s: %s: stopping", r->outbox, subj, nats_GetLastError(NULL));
		g_failed = 1;
		g_stop = 1;
		return NULL;
	}
	natsSubscription_SetPendingLimits(r->acksub, -1, -1);
	natsInbox_Create(&inbox);
	snprintf(r->credit_inbox, sizeof(r->credit_inbox), "%s", inbox);
	natsInbox_Destroy(inbox);
	if (natsConnection_Subscribe(&r->credit_sub, g_nc_out, r->credit_inbox, on_credit, r) != NATS_OK) {
		LOG_ERR("%s: subscribe %s: %s: stopping", r->outbox, r->credit_inbox,
			nats_GetLastError(NULL));
		g_failed = 1;
		g_stop = 1;
		return NULL;
	}

	/* Whatever the spool holds was not acked: send it again first. */
	{
		uint64_t off = r->cur.head_off, seq = r->cur.head_seq;

		while (off != r->cur.tail_off) {
			struct spool_ent *en = spool_at(r, off);

			if (en->kind == ENT_REC) {
				struct slot *sl = &r->slots[seq & (r->cap - 1)];

				atomic_store(&sl->seq, seq);
				sl->off = off;
				sl->tries = 0;
				js_publish_slot(r, seq);
				CNT_INC(r->recovered);
				seq++;
			}
			off += en->total;
		}
		if (seq != r->cur.next_seq)
			LOG_ERR("%s: spool holds seqs up to %" PRIu64 ", state says %" PRIu64,
				r->outbox, seq, r->cur.next_seq);
		if (CNT_GET(r->recovered))
			LOG_INFO("%s: resending %" PRIu64 " record(s) from the spool (%" PRIu64 "..%" PRIu64 ")",
				 r->outbox, CNT_GET(r->recovered), r->cur.head_seq, seq - 1);
	}

	while (!g_stop) {
		bool progress = false, popped = false;
		int64_t now;

		/* for write_stats() on the main thread (a number only) */
		atomic_store_explicit(&r->inflight_now, r->cur.next_seq - r->cur.head_seq,
				      memory_order_relaxed);
		credit_ask(r, credit_blocked);
		credit_blocked = false;

		/* 1. drop what the stream acknowledged, in order */
		while (r->cur.head_seq < r->cur.next_seq) {
			struct slot *sl = &r->slots[r->cur.head_seq & (r->cap - 1)];
			struct spool_ent *en;

			if (atomic_load(&sl->state) != S_ACKED)
				break;
			en = spool_at(r, r->cur.head_off);
			if (en->kind == ENT_PAD) {
				r->cur.head_off += en->total;
				continue;
			}
			atomic_store(&sl->state, S_FREE);
			r->cur.head_off += en->total;
			r->cur.head_seq++;
			popped = true;
		}
		/* pads left at the head once the records are gone */
		while (r->cur.head_off != r->cur.tail_off &&
		       spool_at(r, r->cur.head_off)->kind == ENT_PAD)
			r->cur.head_off += spool_at(r, r->cur.head_off)->total, popped = true;
		if (popped) {
			spool_commit(r);
			progress = true;
		}

		/* 2. resend failures and records acked by nobody in time, oldest
		 * first and a bounded number per round; while some wait for
		 * their back-off, take nothing new (it would overtake them) */
		now = now_ns();
		if (atomic_load(&r->resend_all) || atomic_load(&r->failed_any) ||
		    now - last_scan > 100000000LL) {
			bool all = atomic_exchange(&r->resend_all, 0);
			bool any_failed = false;
			int budget = 512;

			atomic_store(&r->failed_any, 0);
			last_scan = now;
			deferred = false;
			for (uint64_t q = r->cur.head_seq; q < r->cur.next_seq && !g_stop; q++) {
				struct slot *sl = &r->slots[q & (r->cap - 1)];
				uint32_t stt = atomic_load(&sl->state);

				if (stt == S_FAILED) {
					any_failed = true;
					if (now - sl->sent_ns < backoff_ms * 1000000LL || budget <= 0) {
						deferred = true;
						continue;
					}
				} else if (!(stt == S_SENT &&
					     (all || now - sl->sent_ns > C.retry_ms * 1000000LL))) {
					continue;
				}
				if (budget-- <= 0) {
					deferred = true;
					continue;
				}
				CNT_INC(r->retransmits);
				sl->tries++;
				js_publish_slot(r, q);
				progress = true;
			}
			if (any_failed) {
				if (backoff_ms < 1000)
					backoff_ms *= 2;
			} else {
				backoff_ms = 50;
			}
		}

		/* 3. take new records from the outbox while the window has room,
		 * and publish what was there as one batch (natural batching) */
		{
			uint64_t first = r->cur.next_seq;
			unsigned nb = 0;
			bool took = false;
			size_t bytes = 0;

			for (int n = 0; n < 256 && !g_stop && !deferred && !atomic_load(&r->failed_any) &&
			     r->cur.next_seq - r->cur.head_seq < (uint64_t)C.max_inflight; n++) {
				struct uhp_rx rx;
				struct spool_ent *en;
				struct slot *sl;
				uint64_t total, pad, seq;
				struct wire w;

				if (nb >= (unsigned)r->batch)
					break;
				if (uhp_peek(r->ch, &rx))
					break;
				lt_mark(LT_A_PEEK, rx.payload, rx.len);
				if (r->cur.last_valid && rx.meta.ring == r->cur.last_ring &&
				    rx.pos == r->cur.last_pos && rx.crc == r->cur.last_crc &&
				    rx.len == r->cur.last_len) {
					/* spooled before the crash, never released */
					uhp_release(r->ch, &rx);
					r->cur.last_valid = 0;
					continue;
				}
				if (!credit_allows(r, rx.len)) {
					if (!credit_blocked)
						CNT_INC(r->credit_waits);
					credit_blocked = true;
					break;
				}
				total = ENT_TOTAL(rx.len);
				if (total > r->sp->size / 2) {
					CNT_INC(r->too_big);
					LOG_RATE("error", "%s: a %u-byte record does not fit the spool: dropped",
						 r->outbox, rx.len);
					uhp_release(r->ch, &rx);
					continue;
				}
				if (nb && bytes + sizeof(struct frame) + rx.len > r->batch_cap)
					break;	/* the next batch */
				if (!spool_room(r, total, &pad))
					break;
				if (pad) {
					en = spool_at(r, r->cur.tail_off);
					en->total = (uint32_t)pad;
					en->kind = ENT_PAD;
					r->cur.tail_off += pad;
				}
				seq = r->cur.next_seq;
				en = spool_at(r, r->cur.tail_off);
				en->total = (uint32_t)total;
				en->kind = ENT_REC;
				en->seq = seq;
				en->len = rx.len;
				en->crc = rx.crc;
				en->src = rx.meta.src;
				en->dst = rx.meta.dst;
				en->useq = rx.meta.seq;
				en->type = rx.meta.type;
				en->flags = rx.meta.flags;
				en->src_ring = rx.meta.ring;
				en->src_pos = rx.pos;
				memcpy(en + 1, rx.payload, rx.len);
				sl = &r->slots[seq & (r->cap - 1)];
				atomic_store(&sl->seq, seq);
				sl->off = r->cur.tail_off;
				sl->tries = 0;
				r->cur.tail_off += total;
				r->cur.next_seq = seq + 1;
				r->cur.last_ring = rx.meta.ring;
				r->cur.last_pos = rx.pos;
				r->cur.last_crc = rx.crc;
				r->cur.last_len = rx.len;
				r->cur.last_valid = 1;
				credit_took(r, seq, rx.len);
				spool_commit(r);		/* now it is ours ... */
				uhp_release(r->ch, &rx);	/* ... and no longer the ring's */
				CNT_INC(r->forwarded);
				if (!took)
					outbox_took(r);
				took = true;
				progress = true;
				if (sizeof(struct frame) + en->len > r->batch_cap) {
					/* too big to batch: alone, after the batch */
					if (nb)
						break;
					js_publish_slot(r, seq);
					first = r->cur.next_seq;
					continue;
				}
				w = (struct wire){ .src = en->src, .dst = en->dst, .crc = en->crc,
						   .type = en->type, .flags = en->flags, .useq = en->useq };
				bytes += frame_put(r->batch_buf + bytes, en + 1, en->len, &w);
				nb++;
			}
			/* framed even alone unless batch=1 (see core_route_thread()) */
			if (nb == 1 && r->batch == 1)
				js_publish_slot(r, first);
			else if (nb)
				js_publish(r, first, nb, r->batch_buf, bytes, NULL);
		}
		if (progress)
			continue;

		/* 4. nothing to do: wait for records, acks, credit or a timer */
		if (credit_blocked ||
		    r->cur.next_seq - r->cur.head_seq >= (uint64_t)C.max_inflight ||
		    uhp_wait(r->ch, 0) != 1) {
			bool full = credit_blocked ||
				    r->cur.next_seq - r->cur.head_seq >= (uint64_t)C.max_inflight;

			if (!full && r->cur.next_seq == r->cur.head_seq) {
				outbox_wait(r, 50);
			} else if (!full) {
				outbox_wait(r, 2);
			} else {
				struct timespec ts;

				clock_gettime(CLOCK_REALTIME, &ts);
				ts.tv_nsec += 2000000;
				if (ts.tv_nsec >= 1000000000L) {
					ts.tv_sec++;
					ts.tv_nsec -= 1000000000L;
				}
				pthread_mutex_lock(&r->mu);
				atomic_store(&r->waiting, 1);
				{
					struct slot *sl = &r->slots[r->cur.head_seq & (r->cap - 1)];
					if (credit_blocked || atomic_load(&sl->state) != S_ACKED)
						pthread_cond_timedwait(&r->cv, &r->mu, &ts);
				}
				atomic_store(&r->waiting, 0);
				pthread_mutex_unlock(&r->mu);
			}
		}
	}
	return NULL;
}

int start_route(struct route *r)
{
	int rc;

	if ((rc = open_outbox(r)))
		return rc;
	if (r->mode == MODE_CORE) {
		r->instance = rand64();
		snprintf(r->link_pfx, sizeof(r->link_pfx), "%s/%s/%016" PRIx64 "/",
			 C.host, r->outbox, r->instance);
		if ((rc = pthread_create(&r->thr, NULL, core_route_thread, r)))
			return -rc;	/* its error, not errno */
		r->thr_started = true;
		return 0;
	}
	if ((rc = open_spool(r)))
		return rc;
	snprintf(r->link_pfx, sizeof(r->link_pfx), "%s/%s/%016" PRIx64 "/",
		 C.host, r->outbox, r->instance);
	{
		uint64_t n = r->cur.next_seq - r->cur.head_seq, want = (uint64_t)C.max_inflight;

		if (n > want)
			want = n;
		r->cap = 1;
		while (r->cap < want)
			r->cap <<= 1;
	}
	r->slots = calloc(r->cap, sizeof(*r->slots));
	r->batch_cap = (size_t)r->batch_bytes;
	r->batch_buf = malloc(r->batch_cap + sizeof(struct frame));
	r->cost_cum = calloc(CREDIT_RING, sizeof(*r->cost_cum));
	if (!r->slots || !r->batch_buf || !r->cost_cum)
		return -ENOMEM;
	r->cost_base = r->cur.next_seq;
	r->credit_ivl_ns = 1000000LL;
	snprintf(r->credit_subj, sizeof(r->credit_subj), "%s.credit.%s.%s", C.prefix,
		 r->dst_host, r->dst_chan);
	pthread_mutex_init(&r->mu, NULL);
	{
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_cond_init(&r->cv, &ca);
		pthread_condattr_destroy(&ca);
	}
	LOG_INFO("%s: spool instance %016" PRIx64 ", next seq %" PRIu64 ", %" PRIu64 " unacked",
		 r->outbox, r->instance, r->cur.next_seq, r->cur.next_seq - r->cur.head_seq);
	if ((rc = pthread_create(&r->thr, NULL, js_route_thread, r)))
		return -rc;
	r->thr_started = true;
	return 0;
}
