// SPDX-License-Identifier: GPL-2.0
/*
 * uhp sub-ring: NUMA-local pages, the double-mapped data area, and every
 * kernel access to the positions and records that userspace shares.
 *
 * Memory of one sub-ring (one vmap, as kernel/bpf/ringbuf.c does it):
 *
 *   +-----------+-------------------------+-------------------------+
 *   | ctrl page |  data pages 0 .. n-1    |  data pages 0 .. n-1    |
 *   +-----------+-------------------------+-------------------------+
 *               ^ data                    ^ data + size (same pages)
 *
 * so any record that starts at data + (pos & mask) and is at most size bytes
 * long is contiguous, in the kernel and in a process that maps the data area
 * twice. Every page comes from the ring's node (__GFP_THISNODE).
 *
 * Trust: the control page and the data area are writable by every process
 * attached to the channel. The kernel therefore
 *   - keeps size, mask and salt in struct uhp_ring, never re-reads them;
 *   - reads positions once (READ_ONCE/acquire) and rejects impossible ones
 *     (write_pos - read_pos > size, misaligned) with -EUCLEAN;
 *   - indexes only with its own mask, so even a rejected value cannot move an
 *     access outside the vmap;
 *   - copies a record header to the stack before using any field of it, and
 *     bounds the record's length by the positions it validated;
 *   - bounds its compare-and-swap retries, so a process rewriting write_pos
 *     in a loop cannot keep a task in the kernel.
 */
#include <linux/crc32c.h>
#include <linux/gfp.h>
#include <linux/log2.h>
#include <linux/mm.h>
#include <linux/random.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/uio.h>
#include <linux/vmalloc.h>

#include "uhp.h"

/* Failed compare-and-swaps on write_pos before SEND gives up with -EAGAIN. */
#define UHP_SEND_MAX_RETRIES	1024

static_assert(sizeof(struct uhp_rec_hdr) == UHP_REC_HDR_SIZE);
static_assert(offsetof(struct uhp_rec_hdr, crc) ==
	      UHP_REC_CRC_HDR_OFF + UHP_REC_CRC_HDR_LEN);
static_assert(sizeof(struct uhp_prod_line) == UHP_CACHELINE);
static_assert(sizeof(struct uhp_cons_line) == UHP_CACHELINE);
static_assert(sizeof(struct uhp_wake_line) == UHP_CACHELINE);
static_assert(UHP_CTRL_DESC_OFF + sizeof(struct uhp_ring_desc) <= UHP_CTRL_SIZE);
static_assert(UHP_CTRL_SIZE == PAGE_SIZE);

int uhp_ring_init(struct uhp_ring *r, int node, u64 size, unsigned int index)
{
	const gfp_t gfp = GFP_KERNEL_ACCOUNT | __GFP_THISNODE | __GFP_ZERO |
			  __GFP_NOWARN | __GFP_RETRY_MAYFAIL;
	unsigned int nr_data = size >> PAGE_SHIFT;
	unsigned int nr_pages = 1 + nr_data;	/* distinct pages */
	struct uhp_ring_desc *desc;
	unsigned int i;

	r->pages = kvzalloc_node(array_size(nr_pages + nr_data, sizeof(*r->pages)),
				 GFP_KERNEL_ACCOUNT, node);
	if (!r->pages)
		return -ENOMEM;

	for (i = 0; i < nr_pages; i++) {
		struct page *page = alloc_pages_node(node, gfp, 0);

		if (!page)
			goto err_free_pages;
		r->pages[i] = page;
		if (i >= 1)
			r->pages[nr_data + i] = page;
	}

	r->vaddr = vmap(r->pages, nr_pages + nr_data, VM_MAP | VM_USERMAP,
			PAGE_KERNEL);
	if (!r->vaddr)
		goto err_free_pages;

	r->nr_data_pages = nr_data;
	r->node = node;
	r->size = size;
	r->mask = size - 1;
	r->salt = get_random_u64() & ~UHP_TAG_BUSY;
	r->prod = r->vaddr + UHP_CTRL_PROD_OFF;
	r->cons = r->vaddr + UHP_CTRL_CONS_OFF;
	r->wake = r->vaddr + UHP_CTRL_WAKE_OFF;
	r->data = r->vaddr + PAGE_SIZE;

	desc = r->vaddr + UHP_CTRL_DESC_OFF;
	desc->magic = UHP_RING_MAGIC;
	desc->data_size = size;
	desc->salt = r->salt;
	desc->abi_version = UHP_ABI_VERSION;
	desc->node = node;
	desc->ring_index = index;
	return 0;

err_free_pages:
	while (i--)
		__free_page(r->pages[i]);
	kvfree(r->pages);
	r->pages = NULL;
	return -ENOMEM;
}

/* Only called when no mapping exists any more (mappings pin the channel). */
void uhp_ring_destroy(struct uhp_ring *r)
{
	unsigned int i;

	if (!r->pages)
		return;
	vunmap(r->vaddr);
	for (i = 0; i < 1 + r->nr_data_pages; i++)
		__free_page(r->pages[i]);
	kvfree(r->pages);
	r->pages = NULL;
}

/*
 * Map one part of the ring. remap_vmalloc_range() takes a reference on every
 * page for the mapping's lifetime and sets VM_DONTEXPAND | VM_DONTDUMP; it
 * also rejects a length past the end of the vmap.
 */
int uhp_ring_mmap(struct uhp_ring *r, struct vm_area_struct *vma,
		  unsigned int part)
{
	unsigned long len = vma->vm_end - vma->vm_start;

	switch (part) {
	case UHP_PART_CTRL:
		if (len != PAGE_SIZE)
			return -EINVAL;
		return remap_vmalloc_range(vma, r->vaddr, 0);
	case UHP_PART_DATA:
		if (len != r->size && len != 2 * r->size)
			return -EINVAL;
		return remap_vmalloc_range(vma, r->vaddr, 1);
	default:
		return -EINVAL;
	}
}

static struct uhp_rec_hdr *uhp_ring_hdr(struct uhp_ring *r, u64 pos)
{
	/* Own mask, aligned: in bounds whatever pos userspace made us read. */
	return r->data + (pos & r->mask & ~(u64)(UHP_REC_ALIGN - 1));
}

/*
 * Read both positions and check they describe a possible ring: aligned, and
 * no more than size bytes in flight. Unsigned subtraction keeps this right
 * across the 2^64 wrap of the free-running counters.
 */
static int uhp_ring_positions(struct uhp_ring *r, u64 *rpos, u64 *wpos)
{
	/*
	 * Pairs with the consumer's store-release of read_pos: once we see a
	 * read_pos, the consumer has finished reading the bytes below it, so
	 * they may be overwritten.
	 */
	*rpos = smp_load_acquire(&r->cons->read_pos);
	*wpos = READ_ONCE(r->prod->write_pos);
	if (unlikely((*rpos | *wpos) & (UHP_REC_ALIGN - 1) ||
		     *wpos - *rpos > r->size)) {
		pr_warn_ratelimited("uhp: corrupt ring positions read=%llu write=%llu size=%llu (pid %d), rejected\n",
				    *rpos, *wpos, r->size, task_pid_nr(current));
		return -EUCLEAN;
	}
	return 0;
}

/* Is a committed record waiting at read_pos? Used by poll(). */
bool uhp_ring_readable(struct uhp_ring *r)
{
	u64 rpos = READ_ONCE(r->cons->read_pos);

	/*
	 * Pairs with the producer's store-release of the committed tag. A
	 * corrupted read_pos only changes which (in-bounds) slot we look at.
	 */
	return smp_load_acquire(&uhp_ring_hdr(r, rpos)->tag) == (rpos ^ r->salt);
}

/* Store every header field but the tag (which publishes the record). */
static void uhp_rec_store_fields(struct uhp_rec_hdr *rec,
				 const struct uhp_rec_hdr *h)
{
	rec->len = h->len;
	rec->type = h->type;
	rec->flags = h->flags;
	rec->src = h->src;
	rec->dst = h->dst;
	rec->seq = h->seq;
	rec->crc = h->crc;
	rec->__reserved = 0;
}

static u32 uhp_rec_crc(const struct uhp_rec_hdr *h, const void *payload,
		       u32 len)
{
	u32 crc = crc32c(~0U, (const u8 *)h + UHP_REC_CRC_HDR_OFF,
			 UHP_REC_CRC_HDR_LEN);

	return crc32c(crc, payload, len) ^ ~0U;
}

/*
 * Reserve 'total' bytes by compare-and-swap on the shared write_pos, the
 * same protocol userspace producers use, so kernel and user producers can
 * share a sub-ring.
 */
static int uhp_ring_reserve(struct uhp_ring *r, u64 total, u64 *pos_out)
{
	unsigned int tries;
	u64 rpos, wpos;
	int ret;

	for (tries = 0; tries < UHP_SEND_MAX_RETRIES; tries++) {
		ret = uhp_ring_positions(r, &rpos, &wpos);
		if (ret)
			return ret;
		if (r->size - (wpos - rpos) < total)
			return -EAGAIN;
		/*
		 * Full barrier on success (cmpxchg): orders the reservation
		 * before our header stores, as a producer's CAS does in
		 * userspace.
		 */
		if (cmpxchg64(&r->prod->write_pos, wpos, wpos + total) == wpos) {
			*pos_out = wpos;
			return 0;
		}
		if (fatal_signal_pending(current))
			return -EINTR;
		cond_resched();
	}
	return -EAGAIN;
}

int uhp_ring_send(struct uhp_ring *r, const struct uhp_send *s,
		  struct iov_iter *payload, u64 *pos_out)
{
	u64 total = UHP_REC_TOTAL(s->len);
	struct uhp_rec_hdr h = {
		.len = s->len,
		.type = s->type,
		.flags = UHP_REC_F_KERNEL,
		.src = s->src,
		.dst = s->dst,
		.seq = s->seq,
	};
	struct uhp_rec_hdr *rec;
	u64 pos;
	int ret;

	if (total > r->size)
		return -EMSGSIZE;
	ret = uhp_ring_reserve(r, total, &pos);
	if (ret)
		return ret;

	/* Contiguous thanks to the double mapping: total <= size. */
	rec = uhp_ring_hdr(r, pos);
	uhp_rec_store_fields(rec, &h);
	/*
	 * Step 1: length known. Pairs with the consumer's load-acquire of the
	 * tag (it may then read len to skip a record whose writer stalls).
	 */
	smp_store_release(&rec->tag, pos ^ r->salt ^ UHP_TAG_BUSY);

	ret = uhp_copy_from_iter(rec + 1, s->len, payload);
	if (ret) {
		/*
		 * The space is ours: give it back as a discarded record. len
		 * keeps covering the reservation so consumers skip all of it.
		 */
		h.flags |= UHP_REC_F_DISCARD;
	}
	h.crc = uhp_rec_crc(&h, rec + 1, h.len);
	uhp_rec_store_fields(rec, &h);
	/*
	 * Step 2: committed. Pairs with the consumer's load-acquire of the tag
	 * (userspace, and uhp_ring_readable()/uhp_ring_verify()): header and
	 * payload stores above are visible before the tag.
	 */
	smp_store_release(&rec->tag, pos ^ r->salt);
	*pos_out = pos;
	return ret;
}

int uhp_ring_verify(struct uhp_ring *r, u64 pos, u32 *len_out, u32 *crc_out)
{
	struct uhp_rec_hdr *rec, h;
	u64 rpos, wpos;
	int ret;

	if (pos & (UHP_REC_ALIGN - 1))
		return -EINVAL;
	ret = uhp_ring_positions(r, &rpos, &wpos);
	if (ret)
		return ret;
	if (pos - rpos >= wpos - rpos)
		return -ERANGE;

	rec = uhp_ring_hdr(r, pos);
	/* Pairs with the producer's store-release of the committed tag. */
	if (smp_load_acquire(&rec->tag) != (pos ^ r->salt))
		return -EAGAIN;
	/* Use a private copy: the shared header can change under us. */
	memcpy(&h, rec, sizeof(h));
	if (UHP_REC_TOTAL(h.len) > wpos - pos) {
		pr_warn_ratelimited("uhp: record at %llu claims %u bytes past write_pos %llu (pid %d), rejected\n",
				    pos, h.len, wpos, task_pid_nr(current));
		return -EUCLEAN;
	}
	*len_out = h.len;
	*crc_out = uhp_rec_crc(&h, rec + 1, h.len);
	return *crc_out == h.crc ? 0 : -EBADMSG;
}

/* The consumer is gone: producers need not wake it any more. */
void uhp_ring_clear_need_wakeup(struct uhp_ring *r)
{
	WRITE_ONCE(r->wake->need_wakeup, 0);
}
