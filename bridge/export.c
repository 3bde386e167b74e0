/* SPDX-License-Identifier: MIT */
/*
 * uhp-bridge, inbound: what comes in for an exported channel. In order:
 * the source table, waiting for room in the ring, committing a record
 * (and what was held for its source, hold.c), then a record and a message
 * in (verify, deduplicate, commit), the record in flight at the last
 * stop, the core subscription, and start_export(): the channel, its
 * in-state file (state_dir/in.<channel>.state), then the jetstream puller
 * (pull.c) with its credit (credit.c), or the core subscription.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge.h"

#define IN_MAGIC	"UHPBIN01"

/* A known source's index, or -1 (under src_mu). */
int src_find(struct export *e, const char *key)
{
	for (int i = 0; i < MAX_SRC; i++)
		if (e->st->src[i].used && !strcmp(e->st->src[i].key, key))
			return i;
	return -1;
}

static int src_lookup(struct export *e, const char *key, bool *created)
{
	struct in_state *st = e->st;
	int free_i = -1, lru = -1;
	int64_t lru_t = INT64_MAX;

	*created = false;
	for (int i = 0; i < MAX_SRC; i++) {
		struct src_ent *s = &st->src[i];

		if (!s->used) {
			if (free_i < 0)
				free_i = i;
			continue;
		}
		if (!strcmp(s->key, key))
			return i;
		if (s->seen_ns < lru_t) {
			lru_t = s->seen_ns;
			lru = i;
		}
	}
	if (free_i < 0) {
		free_i = lru;
		CNT_INC(e->evictions);
		LOG_WARN("%s: source table full, forgetting %s", e->chan,
			 st->src[lru].key);
		st->src[lru].used = 0;
		hold_purge(e, lru);
	}
	{
		struct src_ent *s = &st->src[free_i];

		memset(s, 0, sizeof(*s));
		e->credit_ns[free_i] = 0;
		early_forget(e, free_i);
		snprintf(s->key, sizeof(s->key), "%s", key);
		s->next = 1;	/* every link instance starts at 1 */
		/* after the rest, for a kill at any point: the state file */
		atomic_store_explicit((_Atomic uint32_t *)&s->used, 1, memory_order_release);
		st->nsrc++;
	}
	*created = true;
	return free_i;
}

/*
 * The ring memory around a reservation: the record layout is ABI
 * (<linux/uhp.h>): a record's 40-byte header precedes its payload, the data
 * area holds position pos at offset pos & (size - 1), and tag is
 * pos ^ salt (committed) or pos ^ salt ^ UHP_TAG_BUSY (reserved).
 */
static uint64_t txn_salt(const struct uhp_txn *t)
{
	const struct uhp_rec_hdr *h =
		(const struct uhp_rec_hdr *)((const char *)t->payload - UHP_REC_HDR_SIZE);

	return __atomic_load_n(&h->tag, __ATOMIC_ACQUIRE) ^ t->pos ^ UHP_TAG_BUSY;
}

/* Wait for room for len bytes; false if stopping. */
static bool reserve_wait(struct export *e, uint32_t len, struct uhp_txn *t,
			 natsMsg *m)
{
	long back = 20;
	int64_t t0 = 0, last_wpi = 0;
	int r;

	while ((r = uhp_reserve(e->ch, len, t)) == -EAGAIN) {
		int64_t now = now_ns();

		if (!t0) {
			t0 = last_wpi = now;
			CNT_INC(e->full_waits);
		}
		if (g_stop)
			return false;
		/* JetStream: tell the server we are working on it, and on
		 * the messages queued behind it, so a full ring does not turn
		 * into redeliveries. */
		if (m && natsMsg_GetReply(m) &&
		    now - last_wpi > C.ack_wait_ms * 1000000LL / 3) {
			natsConnection_Publish(g_nc_in, natsMsg_GetReply(m), "+WPI", 4);
			pull_in_progress(e);
			last_wpi = now;
		}
		sleep_us(back);
		if (back < 1000)
			back *= 2;
	}
	if (r) {
		LOG_RATE("error", "%s: uhp_reserve: %s", e->chan, strerror(-r));
		return false;
	}
	return true;
}

/*
 * Commit one verified-on-arrival record as the next of source idx (idx < 0:
 * unsequenced). The CRC is checked again over the copy in the ring.
 * Returns 0, -ECANCELED (stopping), -EBADMSG (CRC mismatch in the ring copy);
 * early (never waits for room): -EAGAIN (no room now).
 */
int commit_rec(struct export *e, int idx, uint64_t lseq, const struct wire *w,
	       const void *data, uint32_t len, natsMsg *m, bool js, bool early)
{
	struct in_state *st = e->st;
	struct uhp_txn t;
	struct uhp_meta meta;
	uint32_t crc;
	int r;

	if (early) {	/* never waits: no room is -EAGAIN */
		r = uhp_reserve(e->ch, len, &t);
		if (r)
			return r == -EAGAIN ? -EAGAIN : -ECANCELED;
	} else if (!reserve_wait(e, len, &t, js ? m : NULL)) {
		return -ECANCELED;
	}
	if (len)
		memcpy(t.payload, data, len);
	crc = rec_crc(len, w->type, w->flags, w->src, w->dst, w->useq, t.payload);
	if (crc != w->crc) {
		uhp_discard(e->ch, &t);
		return -EBADMSG;
	}
	meta = (struct uhp_meta){ .seq = w->useq, .src = w->src, .dst = w->dst,
				  .type = w->type };
	if (idx >= 0 && js) {
		/* Crash between commit and mark: see recover_pending(). */
		st->pend.src = (uint32_t)idx;
		st->pend.seq = lseq;
		st->pend.pos = t.pos;
		st->pend.ring = t.ring;
		st->pend.len = len;
		st->pend.salt = txn_salt(&t);
		atomic_store_explicit((_Atomic uint32_t *)&st->pend.valid, 1,
				      memory_order_release);
	}
	/* what is pending early, as a distance below the next mark, before
	 * the mark: a kill between them errs by one the safe way (early.c) */
	if (idx >= 0)
		early_note(e, idx, lseq + 1);
	uhp_commit(e->ch, &t, &meta);
	lt_mark(LT_B_COMMIT, data, len);
	if (idx >= 0) {
		atomic_store_explicit((_Atomic uint64_t *)&st->src[idx].next, lseq + 1,
				      memory_order_release);
		if (js)
			atomic_store_explicit((_Atomic uint32_t *)&st->pend.valid, 0,
					      memory_order_release);
	}
	CNT_INC(e->committed);
	e->msg_bytes += UHP_REC_TOTAL(len);
	return 0;
}

/* Source idx's mark moves past records that are gone (credit_cb() loads
 * it: release). */
static void src_advance(struct export *e, int idx, uint64_t next)
{
	early_note(e, idx, next);
	atomic_store_explicit((_Atomic uint64_t *)&e->st->src[idx].next, next,
			      memory_order_release);
}

static void hold_drain_run(struct export *e, int idx, natsMsg *m);

/*
 * After source idx advanced: commit what was held for it, in order. The
 * ring bytes that takes are not the current message's (msg_bytes sizes
 * the next pull: counting thousands of held records as one message made
 * every later pull ask for none, and the export stopped).
 */
static void hold_drain(struct export *e, int idx, natsMsg *m)
{
	uint64_t own = e->msg_bytes;

	hold_drain_run(e, idx, m);
	e->msg_bytes = own;
}

static void hold_drain_run(struct export *e, int idx, natsMsg *m)
{
	struct src_ent *s = &e->st->src[idx];

	while (atomic_load(&e->held_now) > 0 && !g_stop) {
		uint64_t q = s->next;
		struct wire w;
		void *data = NULL;
		uint32_t len;
		int rc;

		rc = hold_get(e, idx, q, &w, &data, &len);
		if (rc == -EIO) {	/* damaged on our disk: gone */
			CNT_INC(e->gaps);
			LOG_ERR("%s: held record %s/%" PRIu64 " unreadable: counted lost",
				e->chan, s->key, q);
			src_advance(e, idx, q + 1);
			continue;
		}
		if (rc)
			return;
		rc = commit_rec(e, idx, q, &w, data, len, m, true, false);
		free(data);
		if (rc == -ECANCELED)
			return;
		if (rc == -EBADMSG) {	/* damaged on our disk */
			CNT_INC(e->crc_refused);
			CNT_INC(e->gaps);
			LOG_ERR("%s: held record %s/%" PRIu64 " failed its CRC: counted lost",
				e->chan, s->key, q);
			src_advance(e, idx, q + 1);
		}
		CNT_INC(e->unheld);
		hold_del(e, idx, q);
	}
}

/*
 * One record for an exported channel: verify, deduplicate, commit. key/lseq
 * are its link identity (key NULL: unsequenced). Returns what the record
 * asks of its JetStream message.
 */
static enum act in_record(struct export *e, const struct wire *wp, const char *data,
			  uint32_t len, const char *key, uint64_t lseq, natsMsg *m, bool js)
{
	struct in_state *st = e->st;
	struct wire w = *wp;
	int idx = -1, rc;
	struct src_ent *s = NULL;
	bool was_early = false;

	if (UHP_REC_TOTAL(len) > e->ring_bytes) {
		CNT_INC(e->too_big);
		LOG_RATE("warning", "%s: refused a %u-byte record: larger than the ring",
			 e->chan, len);
		return A_TERM;
	}
	if (key) {
		bool created;

		pthread_mutex_lock(&e->src_mu);	/* credit_cb() reads src[] */
		idx = src_lookup(e, key, &created);
		pthread_mutex_unlock(&e->src_mu);
		s = &st->src[idx];
		s->seen_ns = now_ns();
		if (created)
			LOG_INFO("%s: new source %s", e->chan, key);
		/* the stream delivered it: committed early? (early.c) */
		if (js)
			was_early = early_seen(e, idx, lseq);
		if (lseq != s->next &&
		    rec_crc(len, w.type, w.flags, w.src, w.dst, w.useq, data) != w.crc)
			goto bad_crc;
		if (lseq < s->next) {
			if (js) {
				if (was_early)
					CNT_INC(e->early_confirmed);
				else
					CNT_INC(e->dups);
				return A_ACK;
			}
			CNT_INC(e->late);
			LOG_RATE("warning", "%s: dropped a late record %s/%" PRIu64 " (expected %" PRIu64 ")",
				 e->chan, key, lseq, s->next);
			return A_NONE;
		}
		if (lseq > s->next && js) {
			int64_t now = s->seen_ns;

			if (!s->wait_since_ns)
				s->wait_since_ns = now;
			if (C.gap_timeout_ms <= 0 ||
			    now - s->wait_since_ns < C.gap_timeout_ms * 1000000LL) {
				if (hold_exists(e, idx, lseq)) {
					CNT_INC(e->dups);
					return A_ACK;
				}
				if (atomic_load(&e->held_now) < C.max_hold &&
				    hold_put(e, idx, lseq, &w, data, len) == 0) {
					CNT_INC(e->held);
					return A_ACK;
				}
				CNT_INC(e->naks);
				return A_NAK;
			}
			/* Give up on the missing ones, keeping what was held. */
			CNT_INC(e->gap_timeouts);
			LOG_ERR("%s: gave up waiting %" PRId64 " ms for %s/%" PRIu64
				": records up to %" PRIu64 " that never came are counted lost",
				e->chan, C.gap_timeout_ms, key, s->next, lseq - 1);
			while (s->next < lseq && !g_stop) {
				if (hold_exists(e, idx, s->next))
					hold_drain(e, idx, m);
				else {
					CNT_INC(e->gaps);
					src_advance(e, idx, s->next + 1);
				}
			}
		} else if (lseq > s->next) {
			LOG_RATE("warning", "%s: gap from %s: %" PRIu64 " record(s) missing before %" PRIu64,
				 e->chan, key, lseq - s->next, lseq);
			CNT_ADD(e->gaps, lseq - s->next);
		}
		s->wait_since_ns = 0;
	}

	rc = commit_rec(e, idx, lseq, &w, data, len, m, js, false);
	if (rc == -ECANCELED)
		return A_NONE;
	if (rc == -EBADMSG)
		goto bad_crc;
	if (idx < 0)
		CNT_INC(e->unsequenced);
	if (s && js)
		hold_drain(e, idx, m);
	return A_ACK;

bad_crc:
	CNT_INC(e->crc_refused);
	LOG_RATE("warning", "%s: refused a record with a bad CRC (wire %08x, computed %08x, link %s/%" PRIu64 ")",
		 e->chan, w.crc, rec_crc(len, w.type, w.flags, w.src, w.dst, w.useq, data),
		 key ? key : "-", lseq);
	return A_TERM;
}

/*
 * One NATS message for an exported channel: a single record (its meta in
 * the Uhp-* headers) or, with Uhp-Batch: N, N records framed in the payload
 * whose link sequences follow the one in Uhp-Link.
 */
enum act in_handle(struct export *e, natsMsg *m, bool js)
{
	const char *link = NULL, *bv = NULL, *data = natsMsg_GetData(m);
	char key[SRC_KEY_MAX];
	uint64_t lseq = 0, n;
	uint32_t len = (uint32_t)natsMsg_GetDataLength(m);
	bool has_key = false;
	struct wire w;
	enum act a = A_ACK;

#ifdef UHP_BRIDGE_LATTRACE
	if (natsMsgHeader_Get(m, "Uhp-Batch", &bv) == NATS_OK && bv)
		lt_mark(LT_B_IN, data + sizeof(struct frame),
			len > sizeof(struct frame) ? len - (uint32_t)sizeof(struct frame) : 0);
	else
		lt_mark(LT_B_IN, data, len);
	bv = NULL;
#endif
	CNT_INC(e->received);
	if (natsMsgHeader_Get(m, "Uhp-Link", &link) != NATS_OK || !link)
		link = NULL;
	if (link) {
		has_key = parse_link(link, key, sizeof(key), &lseq);
		if (!has_key)
			CNT_INC(e->malformed);	/* a link we cannot read: unsequenced */
	}
	if (natsMsgHeader_Get(m, "Uhp-Batch", &bv) == NATS_OK && bv) {
		uint64_t off = 0;

		if (!parse_u64(bv, 10, &n) || n == 0 || !has_key) {
			CNT_INC(e->malformed);
			LOG_RATE("warning", "%s: refused a batch without a valid Uhp-Batch/Uhp-Link", e->chan);
			return A_TERM;
		}
		for (uint64_t i = 0; i < n; i++) {
			struct frame f;
			enum act r;

			if (off + sizeof(f) > len) {
				CNT_INC(e->malformed);
				LOG_RATE("warning", "%s: a batch from %s is truncated at record %" PRIu64,
					 e->chan, key, i);
				return a == A_NAK ? A_NAK : A_ACK;
			}
			memcpy(&f, data + off, sizeof(f));
			off += sizeof(f);
			if (f.len > len - off) {
				CNT_INC(e->malformed);
				LOG_RATE("warning", "%s: a batch from %s is truncated at record %" PRIu64,
					 e->chan, key, i);
				return a == A_NAK ? A_NAK : A_ACK;
			}
			w = (struct wire){ .src = f.src, .dst = f.dst, .crc = f.crc, .type = f.type,
					   .flags = f.flags, .useq = f.seq };
			if (i)
				CNT_INC(e->received);
			r = in_record(e, &w, data + off, f.len, key, lseq + i, m, js);
			off += f.len;
			if (r == A_NONE && g_stop)
				return A_NONE;
			if (r == A_NAK)
				a = A_NAK;
		}
		return a;
	}
	if (!parse_wire(m, &w)) {
		CNT_INC(e->malformed);
		LOG_RATE("warning", "%s: refused a message without valid Uhp-* headers (subject %s)",
			 e->chan, natsMsg_GetSubject(m));
		return A_TERM;
	}
	return in_record(e, &w, data, len, has_key ? key : NULL, lseq, m, js);
}

/*
 * After a crash, the one record that may have been committed without its
 * mark: look at its tag through a fresh reservation on the same ring.
 */
static void recover_pending(struct export *e)
{
	struct in_state *st = e->st;
	struct in_pending *p = &st->pend;
	struct src_ent *s;
	struct uhp_txn t;
	uint64_t used, size, salt, tag;
	const char *verdict;
	unsigned old_ring;
	int r;

	if (!p->valid)
		return;
	if (p->src >= MAX_SRC || !st->src[p->src].used) {
		p->valid = 0;
		return;
	}
	s = &st->src[p->src];
	if (s->next > p->seq) {		/* the mark made it */
		p->valid = 0;
		return;
	}
	old_ring = uhp_producer_ring(e->ch);
	if (p->ring >= uhp_nr_rings(e->ch) ||
	    uhp_ring_fill(e->ch, p->ring, &used, &size) ||
	    uhp_set_producer_ring(e->ch, p->ring)) {
		verdict = "unknown (ring gone)";
		CNT_INC(e->probe_unknown);
		s->next = p->seq + 1;
		goto out;
	}
	while ((r = uhp_reserve(e->ch, 0, &t)) == -EAGAIN && !g_stop)
		sleep_us(1000);
	if (r) {
		verdict = "unknown (no reservation)";
		CNT_INC(e->probe_unknown);
		s->next = p->seq + 1;
		goto out_ring;
	}
	salt = txn_salt(&t);
	if (salt != p->salt) {
		verdict = "unknown (the channel was re-created)";
		CNT_INC(e->probe_unknown);
		s->next = p->seq + 1;
	} else if (t.pos - p->pos >= size) {
		verdict = "unknown (the ring went round since)";
		CNT_INC(e->probe_unknown);
		s->next = p->seq + 1;
	} else {
		const char *base = (const char *)t.payload - UHP_REC_HDR_SIZE -
				   (t.pos & (size - 1));
		const struct uhp_rec_hdr *h =
			(const struct uhp_rec_hdr *)(base + (p->pos & (size - 1)));

		tag = __atomic_load_n(&h->tag, __ATOMIC_ACQUIRE);
		if (tag == (p->pos ^ salt)) {
			verdict = "committed";
			CNT_INC(e->probe_committed);
			s->next = p->seq + 1;
		} else if (tag == (p->pos ^ salt ^ UHP_TAG_BUSY)) {
			verdict = "not committed (will be redelivered)";
			CNT_INC(e->probe_uncommitted);
		} else {
			verdict = "unknown (overwritten)";
			CNT_INC(e->probe_unknown);
			s->next = p->seq + 1;
		}
	}
	uhp_discard(e->ch, &t);
out_ring:
	uhp_set_producer_ring(e->ch, old_ring);
out:
	LOG_INFO("%s: record %s/%" PRIu64 " in flight at the last stop: %s",
		 e->chan, s->key, p->seq, verdict);
	p->valid = 0;
}

static void core_msg_cb(natsConnection *nc, natsSubscription *sub, natsMsg *m,
			void *closure)
{
	struct export *e = closure;

	(void)nc;
	(void)sub;
	pthread_mutex_lock(&e->in_mu);
	if (!e->closed)		/* (nats.c may call once more after the stop) */
		in_handle(e, m, false);
	pthread_mutex_unlock(&e->in_mu);
	natsMsg_Destroy(m);
}

static int open_export_channel(struct export *e)
{
	struct uhp_open_opts o = UHP_OPEN_OPTS_INIT;
	uint64_t used;
	int r;

	o.flags = UHP_OPEN_CREATE;
	o.ring_size = (uint64_t)e->ring_size;
	r = uhp_open_channel(e->chan, &o, &e->ch);
	if (r < 0) {
		LOG_ERR("export %s: uhp_open_channel: %s", e->chan, strerror(-r));
		return r;
	}
	if (uhp_ring_fill(e->ch, uhp_producer_ring(e->ch), &used, &e->ring_bytes))
		e->ring_bytes = (uint64_t)e->ring_size;
	LOG_INFO("export %s (%s, %s): %s, subject %s%s%s", e->chan,
		 uhp_channel_kind(e->ch), r ? "created" : "attached",
		 mode_name(e->mode), e->subject,
		 e->mode == MODE_JS ? ", stream " : "",
		 e->mode == MODE_JS ? e->stream : "");
	return 0;
}

static int open_in_state(struct export *e)
{
	char name[UHP_NAME_MAX + 32];
	bool fresh;

	snprintf(name, sizeof(name), "in.%s.state", e->chan);
	e->st = map_file(name, sizeof(struct in_state), &fresh, &e->st_len);
	if (!e->st)
		return -EIO;
	if (fresh || memcmp(e->st->magic, IN_MAGIC, 8)) {
		if (!fresh)
			LOG_WARN("%s: %s is not a state file: starting afresh", e->chan, name);
		memset(e->st, 0, sizeof(*e->st));
		memcpy(e->st->magic, IN_MAGIC, 8);
		e->st->version = 1;
	}
	for (int i = 0; i < MAX_SRC; i++)
		e->st->src[i].wait_since_ns = 0;
	return 0;
}

int start_export(struct export *e)
{
	int r;

	pthread_mutex_init(&e->src_mu, NULL);
	pthread_mutex_init(&e->in_mu, NULL);
	if ((r = open_export_channel(e)) || (r = open_in_state(e)))
		return r;
	if (e->mode == MODE_JS) {
		char subj[256];

		recover_pending(e);
		hold_scan(e);
		early_restore(e);
		if (C.early && !(e->early_bits = calloc(MAX_SRC, EARLY_WINDOW / 8))) {
			LOG_ERR("%s: out of memory for early delivery", e->chan);
			return -ENOMEM;
		}
		snprintf(subj, sizeof(subj), "%s.credit.%s.%s", C.prefix, C.host, e->chan);
		if (natsConnection_Subscribe(&e->credit_sub, g_nc_in, subj, credit_cb, e) != NATS_OK) {
			LOG_ERR("%s: subscribe %s: %s", e->chan, subj, nats_GetLastError(NULL));
			return -EIO;
		}
		if ((r = pthread_create(&e->thr, NULL, js_pull_thread, e)))
			return -r;	/* its error, not errno */
		e->thr_started = true;
		return 0;
	}
	if (natsConnection_Subscribe(&e->sub, g_nc_in, e->subject, core_msg_cb, e) != NATS_OK) {
		LOG_ERR("%s: subscribe: %s", e->chan, nats_GetLastError(NULL));
		return -EIO;
	}
	natsSubscription_SetPendingLimits(e->sub, (int)C.core_pending_msgs,
					  (int)(C.core_pending_msgs > 8388607 ? INT_MAX
						: C.core_pending_msgs * 256));
	return 0;
}
