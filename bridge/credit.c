/* SPDX-License-Identifier: MIT */
/*
 * uhp-bridge, jetstream: credit, both sides. The receiver's (an export's)
 * grants first, then the sender's (a route's) use of them.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "bridge.h"

/*
 * Credit (jetstream): a sending bridge takes a new record from its outbox
 * only while the receiving bridge's grant allows it, so that the stream
 * never reaches its limits. (An R3 work-queue stream that refuses messages
 * at a limit lets its replicas diverge: each replica checks the limit when
 * it applies a message, against acked messages it removed at its own pace,
 * so replicas refuse different messages; seen with nats-server 2.9.10,
 * records PubAck'd to the sender then never reach the consumer.)
 *
 * The sender asks on <prefix>.credit.<host>.<channel> with its link key;
 * the receiver answers "<mark> <msgs> <bytes>": it committed the link's
 * records up to mark, and the sender may have msgs records, costing bytes
 * (payload + CREDIT_REC_COST each), beyond it: 1/CREDIT_SHARE of the
 * stream's limits, split among the sources that asked lately. A record
 * stored twice (in a batch and alone, after a lost PubAck) and the
 * messages' headers stay well inside the limits that way.
 */
#define CREDIT_REC_COST		512
#define CREDIT_SHARE		4
#define CREDIT_ACTIVE_NS	5000000000LL

/* Limit / CREDIT_SHARE / sources; a limit of 0 or less is none. */
static uint64_t credit_share(int64_t limit, int sources)
{
	if (limit <= 0)
		return UINT64_MAX;
	return (uint64_t)limit / CREDIT_SHARE / (uint64_t)sources;
}

/*
 * A sending bridge asks for credit (see CREDIT_REC_COST): the payload is
 * its link key, the answer "<mark> <msgs> <bytes>". Runs on nats.c's
 * thread, beside the puller: src[] entries are looked at under src_mu, a
 * mark is read as the puller stores it (release).
 */
void credit_cb(natsConnection *nc, natsSubscription *sub, natsMsg *m,
	       void *closure)
{
	struct export *e = closure;
	const char *reply = natsMsg_GetReply(m);
	int len = natsMsg_GetDataLength(m), found = -1, sources = 0, n;
	char key[SRC_KEY_MAX], out[96];
	uint64_t mark = 0, lo;
	int64_t now = now_ns();

	(void)sub;
	if (!reply || !*reply || len <= 0 || len >= SRC_KEY_MAX)
		goto out;
	memcpy(key, natsMsg_GetData(m), (size_t)len);
	key[len] = 0;
	pthread_mutex_lock(&e->src_mu);
	for (int i = 0; i < MAX_SRC; i++) {
		struct src_ent *s = &e->st->src[i];

		if (!s->used)
			continue;
		if (found < 0 && !strcmp(s->key, key)) {
			found = i;
			mark = atomic_load_explicit((_Atomic uint64_t *)&s->next,
						    memory_order_acquire) - 1;
			/* what was committed early is still in the stream
			 * until it delivers it: the mark stops below the
			 * oldest such record (early.c) */
			lo = atomic_load_explicit(&e->early_lo[i], memory_order_acquire);
			if (lo && lo - 1 < mark)
				mark = lo - 1;
			e->credit_ns[i] = now;
		}
		if (now - e->credit_ns[i] < CREDIT_ACTIVE_NS)
			sources++;
	}
	pthread_mutex_unlock(&e->src_mu);
	if (found < 0)		/* a link we have not heard of yet starts at 1 */
		sources++;
	n = snprintf(out, sizeof(out), "%" PRIu64 " %" PRIu64 " %" PRIu64, mark,
		     credit_share(e->max_msgs, sources), credit_share(e->max_bytes, sources));
	natsConnection_Publish(nc, reply, out, n);
	CNT_INC(e->credit_replies);
out:
	natsMsg_Destroy(m);
}

/* The receiver's grant (see CREDIT_REC_COST); a stale one is ignored. */
void on_credit(natsConnection *nc, natsSubscription *sub, natsMsg *m,
	       void *closure)
{
	struct route *r = closure;
	char buf[96];
	int len = natsMsg_GetDataLength(m);
	uint64_t mark, msgs, bytes;

	(void)nc;
	(void)sub;
	if (len <= 0 || len >= (int)sizeof(buf))
		goto out;
	memcpy(buf, natsMsg_GetData(m), (size_t)len);
	buf[len] = 0;
	if (sscanf(buf, "%" SCNu64 " %" SCNu64 " %" SCNu64, &mark, &msgs, &bytes) != 3) {
		LOG_RATE("warning", "%s: a credit answer we cannot read: %s", r->outbox, buf);
		goto out;
	}
	/* the receiver moved on: ask again soon; it did not: less often */
	if (mark > atomic_load(&r->credit_mark))
		atomic_store(&r->credit_ivl_ns, 1000000LL);
	else if (atomic_load(&r->credit_ivl_ns) < 100000000LL)
		atomic_store(&r->credit_ivl_ns, atomic_load(&r->credit_ivl_ns) * 2);
	if (mark >= atomic_load(&r->credit_mark)) {
		atomic_store(&r->credit_msgs, msgs);
		atomic_store(&r->credit_bytes, bytes);
		atomic_store(&r->credit_mark, mark);
	}
	atomic_store(&r->credit_asked, 0);
	route_wake(r);
out:
	natsMsg_Destroy(m);
}

/* Does the grant let us take a record of len payload bytes as the next? */
bool credit_allows(struct route *r, uint32_t len)
{
	uint64_t mark = atomic_load(&r->credit_mark), last = r->cur.next_seq - 1;
	uint64_t msgs, bytes;

	if (mark >= last)
		return true;	/* nothing of ours waits: one record always goes */
	msgs = last - mark;
	/* sizes from before our start, or too many back: wait for the mark */
	if (mark + 1 < r->cost_base || msgs >= CREDIT_RING)
		return false;
	bytes = r->cost_total - (mark + 1 == r->cost_base ? 0 :
				 r->cost_cum[mark % CREDIT_RING]);
	return msgs < atomic_load(&r->credit_msgs) &&
	       bytes + len + CREDIT_REC_COST <= atomic_load(&r->credit_bytes);
}

void credit_took(struct route *r, uint64_t seq, uint32_t len)
{
	r->cost_total += len + CREDIT_REC_COST;
	r->cost_cum[seq % CREDIT_RING] = r->cost_total;
}

/* Ask for a fresh grant: often while we wait for one, now and then while
 * records of ours wait at the receiver (its mark moves on). */
void credit_ask(struct route *r, bool blocked)
{
	int64_t now = now_ns(), since = now - r->credit_ask_ns;

	if (!blocked && atomic_load(&r->credit_mark) + 1 >= r->cur.next_seq &&
	    r->credit_ask_ns)
		return;
	if (atomic_load(&r->credit_asked) && since < 500000000LL)
		return;
	if (since < (blocked ? atomic_load(&r->credit_ivl_ns) : 50000000LL))
		return;
	r->credit_ask_ns = now;
	atomic_store(&r->credit_asked, 1);
	/* link_pfx without its trailing '/': the key */
	natsConnection_PublishRequest(g_nc_out, r->credit_subj, r->credit_inbox, r->link_pfx,
				      (int)strlen(r->link_pfx) - 1);
}
