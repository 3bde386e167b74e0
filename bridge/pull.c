/* SPDX-License-Identifier: MIT */
/*
 * uhp-bridge, inbound, jetstream: the stream and its durable consumer, how
 * much a pull may ask for, and the pull thread, which asks only while the
 * channel has room and hands each message to in_handle() (export.c).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge.h"

static natsStatus ensure_stream(struct export *e)
{
	jsStreamConfig sc;
	jsStreamInfo *si = NULL;
	jsConsumerConfig cc;
	jsConsumerInfo *ci = NULL;
	jsErrCode jerr = 0;
	const char *subjects[1] = { e->subject };
	natsStatus s;

	jsStreamConfig_Init(&sc);
	sc.Name = e->stream;
	sc.Subjects = subjects;
	sc.SubjectsLen = 1;
	sc.Retention = js_WorkQueuePolicy;
	sc.Discard = js_DiscardNew;
	sc.Storage = C.memory_storage ? js_MemoryStorage : js_FileStorage;
	sc.Replicas = e->replicas;
	sc.MaxMsgs = e->max_msgs;
	sc.MaxBytes = e->max_bytes;
	sc.Duplicates = C.dup_window_ms * 1000000LL;
	s = js_AddStream(&si, g_js, &sc, NULL, &jerr);
	if (s != NATS_OK && jerr == JSStreamNameExistErr)
		s = js_UpdateStream(&si, g_js, &sc, NULL, &jerr);
	if (s != NATS_OK) {
		LOG_RATE("warning", "%s: stream %s: %s (%d)", e->chan, e->stream,
			 nats_GetLastError(NULL), (int)jerr);
		return s;
	}
	jsStreamInfo_Destroy(si);

	jsConsumerConfig_Init(&cc);
	cc.Durable = "uhp-bridge";
	cc.AckPolicy = js_AckExplicit;
	cc.AckWait = C.ack_wait_ms * 1000000LL;
	cc.MaxAckPending = C.max_ack_pending;
	cc.MaxDeliver = -1;
	cc.DeliverPolicy = js_DeliverAll;
	cc.MaxWaiting = 512;
	s = js_AddConsumer(&ci, g_js, e->stream, &cc, NULL, &jerr);
	if (s != NATS_OK)
		s = js_UpdateConsumer(&ci, g_js, e->stream, &cc, NULL, &jerr);
	if (s != NATS_OK) {
		LOG_RATE("warning", "%s: consumer on %s: %s (%d)", e->chan, e->stream,
			 nats_GetLastError(NULL), (int)jerr);
		return s;
	}
	jsConsumerInfo_Destroy(ci);
	LOG_INFO("%s: stream %s (R%d, %s, work queue) and its durable consumer are ready",
		 e->chan, e->stream, e->replicas, C.memory_storage ? "memory" : "file");
	return NATS_OK;
}

/*
 * How many messages a pull may ask for with free bytes in the ring: as many
 * as fit if each takes as much as the largest of the last MSG_HIST ones
 * (a batch of 128 small records takes ~17 KB, a lone record ~100 B; an
 * average that adapts slowly asked for far more batches than fit, the
 * commit then waited for room while the rest sat unacknowledged in the
 * client's queue until the server redelivered them). Before the first
 * message, one: its size tells the next pull.
 */
static int64_t pull_room(const struct export *e, uint64_t free_bytes,
			 uint64_t ring_bytes)
{
	uint64_t per = 0;
	unsigned n = e->msg_hist_n < MSG_HIST ? e->msg_hist_n : MSG_HIST;

	for (unsigned i = 0; i < n; i++)
		if (e->msg_hist[i] > per)
			per = e->msg_hist[i];
	/* An empty ring always has room for one message, however big. */
	if (per > ring_bytes)
		per = ring_bytes;
	if (!per)
		return free_bytes ? 1 : 0;
	return (int64_t)(free_bytes / per);
}

/*
 * The bytes a pull may ask for (its max_bytes, as the server counts them:
 * headers and payload) with free bytes in the ring: as many as the recent
 * messages took on the wire per ring byte they took. A pull sized only by
 * count asked for hundreds of lone records' worth and got 17 KB batches:
 * the client's queue held far more than the ring, and what waited there
 * past ack_wait_ms was redelivered. Before the first message, one wire
 * byte per ring byte.
 */
static int64_t pull_max_bytes(const struct export *e, uint64_t free_bytes)
{
	uint64_t ring = 0, wire = 0;
	unsigned n = e->msg_hist_n < MSG_HIST ? e->msg_hist_n : MSG_HIST;

	for (unsigned i = 0; i < n; i++) {
		ring += e->msg_hist[i];
		wire += e->wire_hist[i];
	}
	if (!ring || !wire)
		return (int64_t)free_bytes;
	return (int64_t)(free_bytes * wire / ring);	/* < 2^30 * 2^31 */
}

/* A message's size as a pull's max_bytes counts it: the header block
 * ("NATS/1.0\r\n", "Key: value\r\n" each, "\r\n") and the payload. */
static int64_t wire_size(natsMsg *m)
{
	const char **keys = NULL;
	int nk = 0;
	int64_t sz = natsMsg_GetDataLength(m);

	if (natsMsgHeader_Keys(m, &keys, &nk) != NATS_OK)
		return sz;
	sz += 12;
	for (int i = 0; i < nk; i++) {
		const char **vals = NULL;
		int nv = 0;

		if (natsMsgHeader_Values(m, keys[i], &vals, &nv) != NATS_OK)
			continue;
		for (int j = 0; j < nv; j++)
			sz += (int64_t)(strlen(keys[i]) + strlen(vals[j]) + 4);
		free((void *)vals);
	}
	free((void *)keys);
	return sz;
}

/* No pull asks for fewer bytes than this: smaller than any record's
 * message, and a request with less left is counted as over. */
#define MIN_PULL_BYTES	256

/* An outstanding pull request: its own reply subject, so we count exactly. */
struct pull_req {
	uint64_t id;
	int64_t batch, got;
	int64_t max_bytes, got_bytes;	/* max_bytes 0: no limit */
	int64_t deadline_ns;
	bool live;
};

#define MAX_REQS 4

/*
 * While a commit waits for room in the channel (reserve_wait(), on the pull
 * thread), the messages delivered behind it wait in nats.c's queue and
 * their ack_wait_ms runs out: the server would deliver them again (the
 * receiving side drops them as duplicates, but they cross twice). Move
 * them into the backlog, which the pull thread handles first and in order,
 * and tell the server each is in progress (+WPI), like the one in hand.
 */
void pull_in_progress(struct export *e)
{
	natsMsg *x = NULL;

	if (!e->pull_sub)
		return;
	while (e->bl_n < e->bl_cap &&
	       natsSubscription_NextMsg(&x, e->pull_sub, 0) == NATS_OK && x) {
		e->backlog[(e->bl_head + e->bl_n++) % e->bl_cap] = x;
		x = NULL;
	}
	for (unsigned i = 0; i < e->bl_n; i++) {
		const char *reply = natsMsg_GetReply(e->backlog[(e->bl_head + i) % e->bl_cap]);

		/* data messages only: status ones carry no ack subject */
		if (reply && !strncmp(reply, "$JS.ACK.", 8)) {
			natsConnection_Publish(g_nc_in, reply, "+WPI", 4);
			CNT_INC(e->in_progress);
		}
	}
}

/* The next message for the pull thread: the backlog's, else nats.c's. */
static natsStatus pull_next(struct export *e, natsMsg **m, int64_t timeout_ms)
{
	if (e->bl_n) {
		*m = e->backlog[e->bl_head];
		e->bl_head = (e->bl_head + 1) % e->bl_cap;
		e->bl_n--;
		return NATS_OK;
	}
	return natsSubscription_NextMsg(m, e->pull_sub, timeout_ms);
}

void *js_pull_thread(void *arg)
{
	struct export *e = arg;
	struct pull_req reqs[MAX_REQS] = { 0 };
	natsSubscription *sub = NULL;
	natsInbox *inbox = NULL;
	char subj[256], rsubj[192], next_subj[256], body[128];
	uint64_t req_id = 0;
	int64_t last_rx = now_ns(), last_probe = 0, last_expire = 0;
	bool room_waited = false;	/* no request out: the channel was full */
	size_t ilen;

	while (!g_stop && ensure_stream(e) != NATS_OK)
		for (int i = 0; i < 10 && !g_stop; i++)
			sleep_us(100000);
	if (g_stop)
		return NULL;
	if (C.early && early_subscribe(e)) {
		g_failed = 1;	/* as below: an export that cannot run stops the bridge */
		g_stop = 1;
		return NULL;
	}
	for (uint64_t i = 0; i < g_pull_delay_ms / 10 && !g_stop; i++)
		sleep_us(10000);	/* the stall hook */
	natsInbox_Create(&inbox);
	snprintf(subj, sizeof(subj), "%s.*", inbox);
	ilen = strlen(inbox);
	if (natsConnection_SubscribeSync(&sub, g_nc_in, subj) != NATS_OK) {
		/* an export that cannot pull stops the bridge, loudly */
		LOG_ERR("%s: subscribe %s: %s: stopping", e->chan, subj, nats_GetLastError(NULL));
		natsInbox_Destroy(inbox);
		g_failed = 1;
		g_stop = 1;
		return NULL;
	}
	natsSubscription_SetPendingLimits(sub, -1, -1);
	/* as many as the live requests may deliver */
	e->bl_cap = (unsigned)(C.fetch_batch * MAX_REQS);
	e->backlog = calloc(e->bl_cap, sizeof(*e->backlog));
	if (!e->backlog) {
		LOG_ERR("%s: out of memory for the pull backlog: stopping", e->chan);
		g_failed = 1;
		g_stop = 1;
		natsSubscription_Destroy(sub);
		natsInbox_Destroy(inbox);
		return NULL;
	}
	e->pull_sub = sub;
	snprintf(next_subj, sizeof(next_subj), "$JS.API.CONSUMER.MSG.NEXT.%s.uhp-bridge",
		 e->stream);

	while (!g_stop) {
		int64_t now = now_ns(), outstanding = 0, out_bytes = 0;
		natsMsg *m = NULL;
		natsStatus s;
		int free_r = -1;

		if (now - last_expire > 1000000000LL) {
			last_expire = now;
			pthread_mutex_lock(&e->in_mu);
			early_expire(e, now);
			pthread_mutex_unlock(&e->in_mu);
		}

		for (int i = 0; i < MAX_REQS; i++) {
			struct pull_req *q = &reqs[i];

			if (q->live && now > q->deadline_ns)
				q->live = false;	/* lost (server gone): re-ask */
			/* bytes used up without the server's 409 (exactly
			 * exhausted): it delivers nothing more to it */
			if (q->live && q->max_bytes && q->max_bytes - q->got_bytes < MIN_PULL_BYTES)
				q->live = false;
			if (q->live) {
				outstanding += q->batch - q->got;
				if (q->max_bytes)
					out_bytes += q->max_bytes - q->got_bytes;
			} else if (free_r < 0) {
				free_r = i;
			}
		}
		/* Ask for more only while the ring has room for it. */
		if (free_r >= 0 && outstanding <= C.fetch_batch / 2) {
			uint64_t used = 0, size = 0, avail;
			int64_t room, want, mb;

			int fr = uhp_ring_fill(e->ch, uhp_producer_ring(e->ch), &used, &size);

			if (fr)
				LOG_RATE("warning", "%s: uhp_ring_fill: %s", e->chan, strerror(-fr));
			avail = size > used ? size - used : 0;
			room = pull_room(e, avail, size);
			want = room - outstanding;
			if (want > C.fetch_batch - outstanding)
				want = C.fetch_batch - outstanding;
			mb = pull_max_bytes(e, avail) - out_bytes;
			if (e->need_wire && mb < e->need_wire) {
				/* The next message is larger than what the
				 * ring took so far: an empty ring takes it,
				 * alone, whatever its size (and a record
				 * larger than the ring is refused then). */
				if (used || outstanding)
					want = 0;
				else
					want = 1, mb = 0;
			} else if (mb < MIN_PULL_BYTES) {
				want = 0;
			}
			if (room < 1 && outstanding == 0)
				room_waited = true;
			if (want >= 1 && (want * 4 >= (room < C.fetch_batch ? room : C.fetch_batch) ||
					  outstanding == 0)) {
				struct pull_req *r = &reqs[free_r];

				/* the stall clock runs from the first request
				 * after the channel had no room for any: that
				 * wait is ours, not the consumer's (requests
				 * that expire and are asked again are not) */
				if (room_waited && now > last_rx)
					last_rx = now;
				room_waited = false;
				r->id = ++req_id;
				r->batch = want;
				r->got = 0;
				r->max_bytes = mb;
				r->got_bytes = 0;
				r->deadline_ns = now + (C.fetch_expires_ms + 1000) * 1000000LL;
				r->live = true;
				snprintf(rsubj, sizeof(rsubj), "%s.%" PRIu64, inbox, r->id);
				if (mb)
					snprintf(body, sizeof(body),
						 "{\"batch\":%" PRId64 ",\"expires\":%" PRId64 ",\"max_bytes\":%" PRId64 "}",
						 want, (int64_t)(C.fetch_expires_ms * 1000000LL), mb);
				else
					snprintf(body, sizeof(body), "{\"batch\":%" PRId64 ",\"expires\":%" PRId64 "}",
						 want, (int64_t)(C.fetch_expires_ms * 1000000LL));
				if (natsConnection_PublishRequest(g_nc_in, next_subj, rsubj, body,
								  (int)strlen(body)) != NATS_OK) {
					r->live = false;
					sleep_us(10000);
				} else {
					CNT_INC(e->pulls);
					LOG_DBG("%s: pull %" PRIu64 " for %" PRId64 " / %" PRId64 " bytes (room %" PRId64
						", outstanding %" PRId64 ")", e->chan, r->id, want, mb, room, outstanding);
				}
				continue;
			}
		}
		/*
		 * A consumer whose leader sits on a replica that is behind (seen
		 * with nats-server 2.9 after a server was killed) takes our
		 * requests and delivers nothing. If we asked, got nothing for
		 * stall_ms and the stream (its leader's view) holds messages,
		 * have the consumer elect another leader.
		 */
		if (outstanding && C.stall_ms > 0 && now - last_rx > C.stall_ms * 1000000LL &&
		    now - last_probe > C.stall_ms * 1000000LL) {
			jsStreamInfo *si = NULL;
			jsErrCode jerr = 0;

			last_probe = now;
			if (js_GetStreamInfo(&si, g_js, e->stream, NULL, &jerr) == NATS_OK && si) {
				if (si->State.Msgs > 0) {
					char sd[256];
					natsMsg *resp = NULL;

					snprintf(sd, sizeof(sd), "$JS.API.CONSUMER.LEADER.STEPDOWN.%s.uhp-bridge",
						 e->stream);
					LOG_WARN("%s: nothing delivered for %" PRId64 " ms while the stream holds %" PRIu64
						 " message(s): asking the consumer to elect another leader",
						 e->chan, C.stall_ms, si->State.Msgs);
					if (natsConnection_RequestString(&resp, g_nc_in, sd, "", 2000) == NATS_OK)
						natsMsg_Destroy(resp);
					CNT_INC(e->stepdowns);
					for (int i = 0; i < MAX_REQS; i++)
						reqs[i].live = false;	/* ask the new leader */
				}
				jsStreamInfo_Destroy(si);
			}
			continue;
		}
		s = pull_next(e, &m, outstanding ? 50 : 5);
		if (s != NATS_OK || !m)
			continue;
		{
			const char *ms = natsMsg_GetSubject(m), *st = NULL;
			uint64_t id = 0;
			struct pull_req *r = NULL;

			if (strlen(ms) > ilen + 1)
				parse_u64(ms + ilen + 1, 10, &id);
			for (int i = 0; i < MAX_REQS; i++)
				if (reqs[i].live && reqs[i].id == id)
					r = &reqs[i];
			if (natsMsg_GetDataLength(m) == 0 &&
			    natsMsgHeader_Get(m, "Status", &st) == NATS_OK && st) {
				const char *desc = NULL;

				/* 100: heartbeat; 404/408/409: request over */
				if (strncmp(st, "100", 3) && r)
					r->live = false;
				/* 409 "Message Size Exceeds MaxBytes" with
				 * nothing delivered: the next message is larger
				 * than the request's max_bytes (not "Exceeded
				 * MaxRequestMaxBytes", a consumer's limit on
				 * what a request may ask) */
				if (r && r->got == 0 && r->max_bytes && !strncmp(st, "409", 3) &&
				    natsMsgHeader_Get(m, "Description", &desc) == NATS_OK && desc &&
				    strstr(desc, "Message Size Exceeds MaxBytes") && e->need_wire <= r->max_bytes) {
					e->need_wire = r->max_bytes + 1;
					LOG_DBG("%s: the next message is larger than %" PRId64 " bytes",
						e->chan, r->max_bytes);
				}
				natsMsg_Destroy(m);
				continue;
			}
			/* Deliveries carry the stream's subject, not the
			 * request's: the server fills waiting requests in order,
			 * so a message belongs to the oldest live one. */
			r = NULL;
			for (int i = 0; i < MAX_REQS; i++)
				if (reqs[i].live && (!r || reqs[i].id < r->id))
					r = &reqs[i];
			{
				enum act a;
				const char *reply = natsMsg_GetReply(m);
				int64_t wsz = wire_size(m);

				if (r) {
					r->got_bytes += wsz;
					if (++r->got >= r->batch)
						r->live = false;
				}
				/* early delivery commits too (export.c) */
				pthread_mutex_lock(&e->in_mu);
				e->need_wire = 0;
				e->msg_bytes = 0;
				a = in_handle(e, m, true);
				/* in_handle() may have waited long for room in the
				 * channel: that time is ours, not the consumer's */
				last_rx = now_ns();
				if (e->msg_bytes) {
					unsigned h = e->msg_hist_n++ % MSG_HIST;

					e->msg_hist[h] = e->msg_bytes > UINT32_MAX ? UINT32_MAX
										   : (uint32_t)e->msg_bytes;
					e->wire_hist[h] = wsz > UINT32_MAX ? UINT32_MAX : (uint32_t)wsz;
				}
				pthread_mutex_unlock(&e->in_mu);

				if (reply && *reply) {
					if (a == A_ACK) {
						natsConnection_Publish(g_nc_in, reply, "+ACK", 4);
						CNT_INC(e->acks);
					} else if (a == A_TERM) {
						natsConnection_Publish(g_nc_in, reply, "+TERM", 5);
					} else if (a == A_NAK) {
						char nak[64];
						int n = snprintf(nak, sizeof(nak), "-NAK {\"delay\":%" PRId64 "}",
								 (int64_t)(C.nak_delay_ms * 1000000LL));
						natsConnection_Publish(g_nc_in, reply, nak, n);
					}
				}
			}
			natsMsg_Destroy(m);
		}
	}
	while (e->bl_n) {	/* unacknowledged: the server delivers them again */
		natsMsg_Destroy(e->backlog[e->bl_head]);
		e->bl_head = (e->bl_head + 1) % e->bl_cap;
		e->bl_n--;
	}
	free(e->backlog);
	e->backlog = NULL;
	e->pull_sub = NULL;
	natsSubscription_Unsubscribe(sub);
	natsSubscription_Destroy(sub);
	natsInbox_Destroy(inbox);
	return NULL;
}
