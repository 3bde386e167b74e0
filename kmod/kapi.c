// SPDX-License-Identifier: GPL-2.0
/*
 * uhp kernel API (uhp_kapi.h): kernel code producing into the kernel rings
 * of a channel. The ring mechanics (reservation under klock, kpending, the
 * two-step publish) are in ring.c; this file picks rings, copies, seals and
 * wakes, and holds channels for other modules.
 */
#include <linux/err.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/topology.h>

#include "compat.h"
#include "uhp.h"
#include "uhp_kapi.h"
#include "trace.h"

/* Fan-out targets per group: reservations live on the stack while sending. */
#define UHP_KGROUP_MAX	16

struct uhp_kgroup {
	unsigned int n;
	struct uhp_channel *ch[];
};

struct uhp_channel *uhp_kchannel_get(const char *name)
{
	struct uhp_channel *ch;
	int ret;

	might_sleep();
	ret = uhp_name_validate(name);
	if (ret)
		return ERR_PTR(ret == -ENAMETOOLONG ? -EINVAL : ret);
	/* Kernel code sees the names of the initial namespace only. */
	ch = uhp_registry_lookup_scope(uhp_scope_init(), name);
	if (!ch)
		return ERR_PTR(-ENOENT);
	if (ch->nr_rings == ch->kring_first) {
		uhp_channel_put(ch);
		return ERR_PTR(-EOPNOTSUPP);
	}
	atomic_inc(&ch->nr_writers);	/* a producer: no hang-up while held */
	return ch;
}
EXPORT_SYMBOL_GPL(uhp_kchannel_get);

void uhp_kchannel_put(struct uhp_channel *ch)
{
	uhp_channel_writer_gone(ch);
	uhp_channel_put(ch);
}
EXPORT_SYMBOL_GPL(uhp_kchannel_put);

/*
 * The kernel ring of the nearest node with memory to this CPU (its own, or
 * for a CPU on a memory-less node the one the page allocator would use), or
 * the first kernel ring.
 */
static unsigned int uhp_kring_index(struct uhp_channel *ch)
{
	int node = numa_mem_id();
	unsigned int i;

	for (i = ch->kring_first; i < ch->nr_rings; i++)
		if (ch->rings[i].node == node)
			return i;
	return ch->kring_first;
}

static void uhp_khdr(struct uhp_rec_hdr *h, u32 len,
		     const struct uhp_kmeta *meta)
{
	*h = (struct uhp_rec_hdr) {
		.len = len,
		.flags = UHP_REC_F_KERNEL,
	};
	if (meta) {
		h->type = meta->type;
		h->src = meta->src;
		h->dst = meta->dst;
		h->seq = meta->seq;
	}
}

/* A kernel producer's record refused by ring k: say so, and why. */
static void uhp_kdrop_trace(struct uhp_channel *ch, unsigned int k, u32 len,
			    int err)
{
	struct uhp_ring *r = &ch->rings[k];

	trace_uhp_kernel_drop(ch, k, len, err);
	if (err == -EUCLEAN)
		trace_uhp_corrupt(ch, k, READ_ONCE(r->cons->read_pos),
				  READ_ONCE(r->kwpos));
}

int uhp_kreserve(struct uhp_channel *ch, u32 len, struct uhp_ktxn *txn)
{
	unsigned int k = uhp_kring_index(ch);
	int ret;

	ret = uhp_kring_reserve(&ch->rings[k], len, &txn->pos);
	if (ret) {
		uhp_kdrop_trace(ch, k, len, ret);
		return ret;
	}
	txn->ring = k;
	txn->len = len;
	txn->payload = uhp_ring_payload(&ch->rings[k], txn->pos);
	return 0;
}
EXPORT_SYMBOL_GPL(uhp_kreserve);

/*
 * Seal and publish a reservation. Its length is the one uhp_kring_reserve()
 * wrote into the header (a page no process can write), never txn->len: a
 * caller that changed that cannot make the record cover more or less than
 * its reservation and wedge the ring.
 */
static void uhp_kfinish(struct uhp_channel *ch, struct uhp_ktxn *txn,
			const struct uhp_kmeta *meta, u16 flags)
{
	struct uhp_ring *r;
	struct uhp_rec_hdr h;
	u32 len;

	if (WARN_ON_ONCE(txn->ring < ch->kring_first || txn->ring >= ch->nr_rings))
		return;
	r = &ch->rings[txn->ring];
	len = uhp_ring_reserved_len(r, txn->pos);
	uhp_khdr(&h, len, meta);
	h.flags |= flags;
	/* The payload is in pages no process can write: seal what is there. */
	h.crc = uhp_rec_crc(&h, uhp_ring_payload(r, txn->pos), len);
	uhp_ring_commit(r, txn->pos, &h);
	if (uhp_ring_needs_wakeup(r))
		uhp_channel_kwake(ch);
}

void uhp_kcommit(struct uhp_channel *ch, struct uhp_ktxn *txn,
		 const struct uhp_kmeta *meta)
{
	uhp_kfinish(ch, txn, meta, 0);
}
EXPORT_SYMBOL_GPL(uhp_kcommit);

void uhp_kdiscard(struct uhp_channel *ch, struct uhp_ktxn *txn)
{
	uhp_kfinish(ch, txn, NULL, UHP_REC_F_DISCARD);
}
EXPORT_SYMBOL_GPL(uhp_kdiscard);

int uhp_ksend(struct uhp_channel *ch, const void *buf, u32 len,
	      const struct uhp_kmeta *meta)
{
	struct uhp_ktxn txn;
	int ret;

	ret = uhp_kreserve(ch, len, &txn);
	if (ret)
		return ret;
	uhp_copy(txn.payload, buf, len);
	uhp_kcommit(ch, &txn, meta);
	return 0;
}
EXPORT_SYMBOL_GPL(uhp_ksend);

int uhp_ksend_batch(struct uhp_channel *ch, const struct uhp_kmsg *msgs,
		    unsigned int n)
{
	unsigned int k = uhp_kring_index(ch), i;
	struct uhp_ring *r = &ch->rings[k];
	struct uhp_rec_hdr h;
	u64 pos;

	for (i = 0; i < n; i++) {
		int ret = uhp_kring_reserve(r, msgs[i].len, &pos);

		if (ret) {
			uhp_kdrop_trace(ch, k, msgs[i].len, ret);
			break;
		}
		uhp_copy(uhp_ring_payload(r, pos), msgs[i].buf, msgs[i].len);
		uhp_khdr(&h, msgs[i].len, &msgs[i].meta);
		h.crc = uhp_rec_crc(&h, uhp_ring_payload(r, pos), msgs[i].len);
		uhp_ring_commit(r, pos, &h);
	}
	/* One wakeup check for the batch. */
	if (i && uhp_ring_needs_wakeup(r))
		uhp_channel_kwake(ch);
	return i;
}
EXPORT_SYMBOL_GPL(uhp_ksend_batch);

struct uhp_kgroup *uhp_kgroup_create(const char * const *names,
				     unsigned int n)
{
	struct uhp_kgroup *g;
	int ret = 0;

	might_sleep();
	if (!n || n > UHP_KGROUP_MAX)
		return ERR_PTR(-EINVAL);
	g = kzalloc(struct_size(g, ch, n), GFP_KERNEL);
	if (!g)
		return ERR_PTR(-ENOMEM);
	for (g->n = 0; g->n < n; g->n++) {
		struct uhp_channel *ch = uhp_kchannel_get(names[g->n]);

		if (IS_ERR(ch)) {
			ret = PTR_ERR(ch);
			goto err_put;
		}
		g->ch[g->n] = ch;
	}
	return g;

err_put:
	uhp_kgroup_destroy(g);
	return ERR_PTR(ret);
}
EXPORT_SYMBOL_GPL(uhp_kgroup_create);

void uhp_kgroup_destroy(struct uhp_kgroup *g)
{
	unsigned int i;

	for (i = 0; i < g->n; i++)
		uhp_kchannel_put(g->ch[i]);	/* uhp_kchannel_get()'s */
	kfree(g);
}
EXPORT_SYMBOL_GPL(uhp_kgroup_destroy);

int uhp_kgroup_send(struct uhp_kgroup *g, const void *buf, u32 len,
		    const struct uhp_kmeta *meta)
{
	struct uhp_ktxn txn[UHP_KGROUP_MAX];
	bool ok[UHP_KGROUP_MAX];
	unsigned int i, n = g->n, sent = 0;
	struct uhp_rec_hdr h;
	bool simd;

	/* Same header and payload everywhere: one CRC for all targets. */
	uhp_khdr(&h, len, meta);
	h.crc = uhp_rec_crc(&h, buf, len);

	for (i = 0; i < n; i++)
		ok[i] = !uhp_kreserve(g->ch[i], len, &txn[i]);
	/* Every copy inside one FPU section when allowed (bounded size). */
	simd = uhp_copy_section_begin((size_t)len * n);
	for (i = 0; i < n; i++) {
		if (!ok[i])
			continue;
		if (simd)
			uhp_copy_in_section(txn[i].payload, buf, len);
		else
			uhp_copy(txn[i].payload, buf, len);
	}
	if (simd)
		uhp_copy_section_end();
	for (i = 0; i < n; i++) {
		struct uhp_ring *r;

		if (!ok[i])
			continue;
		r = &g->ch[i]->rings[txn[i].ring];
		uhp_ring_commit(r, txn[i].pos, &h);
		if (uhp_ring_needs_wakeup(r))
			uhp_channel_kwake(g->ch[i]);
		sent++;
	}
	return sent;
}
EXPORT_SYMBOL_GPL(uhp_kgroup_send);
