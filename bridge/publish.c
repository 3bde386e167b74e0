/* SPDX-License-Identifier: MIT */
/*
 * uhp-bridge, outbound: publishing. The test hooks that corrupt or lose
 * what goes out, then a record or a batch on the wire, the core publish
 * that holds records while the client cannot take them, and jetstream's
 * publish with its PubAck (on_puback()).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "bridge.h"

/* Bit-flip hook: every Nth outbound record gets a payload bit flipped on the
 * wire (never in the spool). UHP_BRIDGE_CORRUPT_EVERY=N; tests only. */
uint64_t g_corrupt_every;
static _Atomic uint64_t g_corrupt_count;

/* Loss hook: every jetstream publish (and resend) is lost on the way, so
 * records stay in the spool unacknowledged. UHP_BRIDGE_DROP_JS=1; tests
 * only (the resend from the spool after a restart). With
 * UHP_BRIDGE_DROP_JS_FIRST=1 only each route's first publish is lost: the
 * receiver holds everything after it until the resend (the hold drain). */
uint64_t g_drop_js, g_drop_js_first;

/* The loss hook (UHP_BRIDGE_DROP_JS): true when n records are lost. */
static bool drop_by_hook(struct route *r, unsigned n)
{
	if (r->mode != MODE_JS)
		return false;
	if (!g_drop_js && (!g_drop_js_first || atomic_exchange(&r->first_dropped, true)))
		return false;
	CNT_ADD(r->dropped_by_hook, n);
	return true;
}

/* The corruption hook (UHP_BRIDGE_CORRUPT_EVERY): flip one bit of the copy
 * on the wire of every Nth record that has a payload. */
static void corrupt_by_hook(struct route *r, char *payload, uint32_t len)
{
	if (g_corrupt_every && len &&
	    atomic_fetch_add(&g_corrupt_count, 1) % g_corrupt_every == g_corrupt_every - 1) {
		payload[len / 2] ^= 0x10;
		CNT_INC(r->corrupted_by_hook);
	}
}

/* Add the link of the (first) record, lseq, publish m (whatever s says
 * of its headers so far) and destroy it. */
static natsStatus publish_link(struct route *r, natsMsg *m, uint64_t lseq, natsStatus s)
{
	char link[200];

	snprintf(link, sizeof(link), "%s%" PRIu64, r->link_pfx, lseq);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(m, "Uhp-Link", link);
	if (s == NATS_OK && r->mode == MODE_JS)
		s = natsMsgHeader_Set(m, "Nats-Msg-Id", link);
	if (s == NATS_OK)
		s = natsConnection_PublishMsg(g_nc_out, m);
	natsMsg_Destroy(m);
	return s;
}

/* Build and publish one record; the payload is copied by nats.c. */
static natsStatus publish_rec(struct route *r, const void *payload, uint32_t len,
			      const struct wire *w, uint64_t lseq, const char *reply)
{
	natsMsg *m = NULL;
	natsStatus s;

	if (drop_by_hook(r, 1))
		return NATS_OK;
	s = natsMsg_Create(&m, r->subject, reply, payload, (int)len);
	if (s != NATS_OK)
		return s;
	corrupt_by_hook(r, (char *)natsMsg_GetData(m), len);
	lt_mark(LT_A_PREPUB, payload, len);
	s = publish_link(r, m, lseq, set_headers(m, w));
	lt_mark(LT_A_PUB, payload, len);
	return s;
}

/* Publish frames [buf, buf+bytes) holding n records, the first lseq first. */
static natsStatus publish_batch(struct route *r, const char *buf, size_t bytes,
				unsigned n, uint64_t lseq, const char *reply)
{
	char nb[16];
	natsMsg *m = NULL;
	natsStatus s;

	if (drop_by_hook(r, n))
		return NATS_OK;
	snprintf(nb, sizeof(nb), "%u", n);
	s = natsMsg_Create(&m, r->subject, reply, buf, (int)bytes);
	if (s != NATS_OK)
		return s;
	if (g_corrupt_every) {
		/* per record inside the batch */
		char *d = (char *)natsMsg_GetData(m);
		size_t off = 0;

		for (unsigned i = 0; i < n; i++) {
			struct frame f;

			memcpy(&f, d + off, sizeof(f));
			corrupt_by_hook(r, d + off + sizeof(f), f.len);
			off += sizeof(f) + f.len;
		}
	}
	if (bytes > sizeof(struct frame))
		lt_mark(LT_A_PREPUB, buf + sizeof(struct frame), (uint32_t)(bytes - sizeof(struct frame)));
	s = publish_link(r, m, lseq, natsMsgHeader_Set(m, "Uhp-Batch", nb));
	if (bytes > sizeof(struct frame))
		lt_mark(LT_A_PUB, buf + sizeof(struct frame), (uint32_t)(bytes - sizeof(struct frame)));
	return s;
}

/* One record (w: its meta) or a batch of n (w NULL: frames in buf). */
static natsStatus publish_out(struct route *r, const char *buf, size_t bytes, unsigned n,
			      const struct wire *w, uint64_t lseq, const char *reply)
{
	if (w)
		return publish_rec(r, buf, (uint32_t)bytes, w, lseq, reply);
	return publish_batch(r, buf, bytes, n, lseq, reply);
}

/*
 * Core mode: publish until the client takes it (closed connection,
 * reconnect buffer full: the records are held, not dropped), the server
 * could never take it (NATS_MAX_PAYLOAD) or we stop. last_err NULL: no
 * warning.
 */
natsStatus core_publish_held(struct route *r, const char *buf, size_t bytes,
			     unsigned n, const struct wire *w, int64_t *last_err)
{
	natsStatus s;

	while ((s = publish_out(r, buf, bytes, n, w, r->core_seq + 1, NULL)) != NATS_OK &&
	       s != NATS_MAX_PAYLOAD && !g_stop) {
		CNT_INC(r->pub_errors);
		if (last_err && now_ns() - *last_err > 1000000000LL) {
			LOG_WARN("%s: publish failed (%s): holding records",
				 r->outbox, natsStatus_GetText(s));
			*last_err = now_ns();
		}
		sleep_us(10000);
	}
	return s;
}

void on_puback(natsConnection *nc, natsSubscription *sub, natsMsg *m,
	       void *closure)
{
	struct route *r = closure;
	const char *subj = natsMsg_GetSubject(m), *dot = strrchr(subj, '.');
	const char *data = natsMsg_GetData(m), *st = NULL;
	int dlen = natsMsg_GetDataLength(m);
	uint64_t seq, cnt;
	char first[32];
	const char *dot1;
	uint32_t to = S_ACKED;
	bool any = false;

	(void)nc;
	(void)sub;
	/* <ack_pfx>.<first lseq>.<count> */
	if (!dot || !parse_u64(dot + 1, 10, &cnt) || cnt == 0 || cnt > r->cap)
		goto out;
	for (dot1 = dot - 1; dot1 > subj && *dot1 != '.'; dot1--)
		;
	if (*dot1 != '.' || (size_t)(dot - dot1 - 1) >= sizeof(first))
		goto out;
	memcpy(first, dot1 + 1, (size_t)(dot - dot1 - 1));
	first[dot - dot1 - 1] = 0;
	if (!parse_u64(first, 10, &seq))
		goto out;
	if (dlen == 0 && natsMsgHeader_Get(m, "Status", &st) == NATS_OK && st) {
		to = S_FAILED;		/* 503: no stream (yet) */
		LOG_RATE("warning", "%s: publish to %s: status %s (no stream yet?)",
			 r->outbox, r->subject, st);
	} else if (dlen > 0 && data && memmem(data, (size_t)dlen, "\"error\"", 7)) {
		to = S_FAILED;
		LOG_RATE("warning", "%s: publish to %s refused: %.*s", r->outbox,
			 r->subject, dlen > 200 ? 200 : dlen, data);
	} else if (dlen > 0 && data && memmem(data, (size_t)dlen, "\"duplicate\":true", 16)) {
		CNT_INC(r->dup_acks);
	}
	for (uint64_t q = seq; q < seq + cnt; q++) {
		struct slot *sl = &r->slots[q & (r->cap - 1)];
		uint32_t want = S_SENT;

		if (atomic_load(&sl->seq) != q ||
		    !atomic_compare_exchange_strong(&sl->state, &want, to))
			continue;
		any = true;
		if (to == S_FAILED) {
			CNT_INC(r->pub_failed);
			atomic_store(&r->failed_any, 1);
		} else {
			CNT_INC(r->acked);
		}
	}
	if (any)
		route_wake(r);
out:
	natsMsg_Destroy(m);
}

/*
 * Jetstream: publish the spooled records first .. first + n - 1 (one
 * record, its meta in w, or a batch of n frames in buf) with the PubAck to
 * <ack_pfx>.<first>.<n>; their slots are sent, or failed (to be resent)
 * if the client refused the publish.
 */
bool js_publish(struct route *r, uint64_t first, unsigned n, const char *buf,
		size_t bytes, const struct wire *w)
{
	char reply[160];
	int64_t t = now_ns();
	natsStatus s;

	for (uint64_t q = first; q < first + n; q++) {
		struct slot *sl = &r->slots[q & (r->cap - 1)];

		sl->sent_ns = t;
		atomic_store(&sl->state, S_SENT);
	}
	snprintf(reply, sizeof(reply), "%s.%" PRIu64 ".%u", r->ack_pfx, first, n);
	s = publish_out(r, buf, bytes, n, w, first, reply);
	if (s != NATS_OK) {
		CNT_INC(r->pub_errors);
		for (uint64_t q = first; q < first + n; q++)
			atomic_store(&r->slots[q & (r->cap - 1)].state, S_FAILED);
		atomic_store(&r->failed_any, 1);
		return false;
	}
	CNT_ADD(r->published, n);
	return true;
}

/* One spooled record, alone (the first of a batch of one, a resend). */
bool js_publish_slot(struct route *r, uint64_t seq)
{
	struct spool_ent *en = spool_at(r, r->slots[seq & (r->cap - 1)].off);
	struct wire w = { .src = en->src, .dst = en->dst, .crc = en->crc,
			  .type = en->type, .flags = en->flags, .useq = en->useq };

	return js_publish(r, seq, 1, (const char *)(en + 1), en->len, &w);
}
