// SPDX-License-Identifier: GPL-2.0
/*
 * uhp sub-ring: NUMA-local pages, the double-mapped data area, and every
 * kernel access to the positions and records that userspace shares.
 *
 * Memory of one sub-ring (one vmap, as kernel/bpf/ringbuf.c does it):
 *
 *   +------+------+-------------------------+-------------------------+
 *   | prod | cons |  data pages 0 .. n-1    |  data pages 0 .. n-1    |
 *   +------+------+-------------------------+-------------------------+
 *                 ^ data                    ^ data + size (same pages)
 *
 * so any record that starts at data + (pos & mask) and is at most size bytes
 * long is contiguous, in the kernel and in a process that maps the data area
 * twice. Every page comes from the ring's node (__GFP_THISNODE).
 *
 * Trust: on a user ring every page is writable by every process attached to
 * the channel; on a kernel ring only the cons page is. The kernel therefore
 *   - keeps size, mask and salt in struct uhp_ring, never re-reads them;
 *   - reads positions once (READ_ONCE/acquire) and rejects impossible ones
 *     (write_pos - read_pos > size, misaligned) with -EUCLEAN;
 *   - indexes only with its own mask, so even a rejected value cannot move an
 *     access outside the vmap;
 *   - copies a record header to the stack before using any field of it, and
 *     bounds the record's length by the positions it validated;
 *   - bounds its compare-and-swap retries, so a process rewriting write_pos
 *     in a loop cannot keep a task in the kernel;
 *   - on kernel rings, keeps the producer position (kwpos) and the oldest
 *     record still being written (kpending) in struct uhp_ring, publishes
 *     write_pos as a copy on the read-only prod page, and bounds every
 *     reservation by both read_pos and kpending, so a consumer that rewinds
 *     or skips read_pos can never make the kernel hand out space a record
 *     is still being written into (the lesson of CVE-2024-41009).
 */
#include <linux/gfp.h>
#include <linux/log2.h>
#include <linux/mm.h>
#include <linux/preempt.h>
#include <linux/overflow.h>
#include <linux/random.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/uio.h>
#include <linux/vmalloc.h>

#include "compat.h"
#include "uhp.h"

/* Failed compare-and-swaps on write_pos before SEND gives up with -EAGAIN. */
#define UHP_SEND_MAX_RETRIES	1024

static_assert(sizeof(struct uhp_rec_hdr) == UHP_REC_HDR_SIZE);
static_assert(offsetof(struct uhp_rec_hdr, crc) ==
	      UHP_REC_CRC_HDR_OFF + UHP_REC_CRC_HDR_LEN);
static_assert(sizeof(struct uhp_prod_line) == UHP_CACHELINE);
static_assert(sizeof(struct uhp_cons_line) == UHP_CACHELINE);
static_assert(sizeof(struct uhp_wake_line) == UHP_CACHELINE);
static_assert(UHP_PROD_LINE_OFF + 2 * UHP_CACHELINE <= UHP_DESC_OFF);
static_assert(UHP_DESC_OFF + sizeof(struct uhp_ring_desc) <= UHP_PAGE_SIZE);
static_assert(UHP_CONS_LINE_OFF + 2 * UHP_CACHELINE <= UHP_WAKE_LINE_OFF);
static_assert(UHP_PAGE_SIZE == PAGE_SIZE);

int uhp_ring_init(struct uhp_ring *r, int node, u64 size, unsigned int index,
		  bool kernel)
{
	const gfp_t gfp = GFP_KERNEL_ACCOUNT | __GFP_THISNODE | __GFP_ZERO |
			  __GFP_NOWARN | __GFP_RETRY_MAYFAIL;
	unsigned int nr_data, nr_pages, nr_map, i;
	struct uhp_ring_desc *desc;

	/* The caller checked size against max_ring_size: check what we need. */
	if (size < PAGE_SIZE || size > UHP_RING_SIZE_LIMIT || !is_power_of_2(size))
		return -EINVAL;
	nr_data = size >> PAGE_SHIFT;
	if (check_add_overflow(nr_data, (unsigned int)UHP_RING_META_PAGES, &nr_pages) ||
	    check_add_overflow(nr_pages, nr_data, &nr_map))
		return -EINVAL;

	r->pages = kvzalloc_node(array_size(nr_map, sizeof(*r->pages)),
				 GFP_KERNEL_ACCOUNT, node);
	if (!r->pages)
		return -ENOMEM;

	for (i = 0; i < nr_pages; i++) {
		struct page *page = alloc_pages_node(node, gfp, 0);

		if (!page)
			goto err_free_pages;
		r->pages[i] = page;
		if (i >= UHP_RING_META_PAGES)
			r->pages[nr_data + i] = page;
	}

	r->vaddr = vmap(r->pages, nr_map, VM_MAP | VM_USERMAP,
			PAGE_KERNEL);
	if (!r->vaddr)
		goto err_free_pages;

	r->nr_data_pages = nr_data;
	r->node = node;
	r->size = size;
	r->mask = size - 1;
	r->salt = get_random_u64() & ~UHP_TAG_BUSY;
	r->kernel = kernel;
	raw_spin_lock_init(&r->klock);
	r->prod = r->vaddr + UHP_PROD_LINE_OFF;
	r->cons = r->vaddr + PAGE_SIZE + UHP_CONS_LINE_OFF;
	r->wake = r->vaddr + PAGE_SIZE + UHP_WAKE_LINE_OFF;
	r->data = r->vaddr + UHP_RING_META_PAGES * PAGE_SIZE;

	desc = r->vaddr + UHP_DESC_OFF;
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
	for (i = 0; i < UHP_RING_META_PAGES + r->nr_data_pages; i++)
		__free_page(r->pages[i]);
	kvfree(r->pages);
	r->pages = NULL;
}

/*
 * Make a mapping read-only for good, or refuse it if it asks for writing:
 * VM_MAYWRITE cleared, so mprotect() cannot add PROT_WRITE later.
 */
static int uhp_ring_mmap_ro(struct vm_area_struct *vma, bool ro)
{
	if (!ro)
		return 0;
	if (vma->vm_flags & VM_WRITE)
		return -EPERM;
	uhp_vm_flags_clear(vma, VM_MAYWRITE);
	return 0;
}

/*
 * Map one part of the ring. Only the kernel writes a kernel ring's prod
 * page and data, and a consume-only fd writes neither (consume_only); only
 * the consumer (cons_owner: the mapping comes through the fd holding the
 * role) writes the cons page. remap_vmalloc_range()
 * takes a reference on every page for the mapping's lifetime and sets
 * VM_DONTEXPAND | VM_DONTDUMP; it also rejects a length past the end of
 * the vmap.
 */
int uhp_ring_mmap(struct uhp_ring *r, struct vm_area_struct *vma,
		  unsigned int part, bool cons_owner, bool consume_only)
{
	unsigned long len = vma->vm_end - vma->vm_start;
	int ret;

	switch (part) {
	case UHP_PART_PROD:
		if (len != PAGE_SIZE)
			return -EINVAL;
		ret = uhp_ring_mmap_ro(vma, r->kernel || consume_only);
		return ret ?: remap_vmalloc_range(vma, r->vaddr, 0);
	case UHP_PART_CONS:
		if (len != PAGE_SIZE)
			return -EINVAL;
		ret = uhp_ring_mmap_ro(vma, !cons_owner);
		return ret ?: remap_vmalloc_range(vma, r->vaddr, 1);
	case UHP_PART_DATA:
		if (len != r->size && len != 2 * r->size)
			return -EINVAL;
		ret = uhp_ring_mmap_ro(vma, r->kernel || consume_only);
		return ret ?: remap_vmalloc_range(vma, r->vaddr,
						  UHP_RING_META_PAGES);
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

u32 uhp_rec_crc(const struct uhp_rec_hdr *h, const void *payload, u32 len)
{
	u32 crc = uhp_crc32c(~0U, (const u8 *)h + UHP_REC_CRC_HDR_OFF,
			     UHP_REC_CRC_HDR_LEN);

	return uhp_crc32c(crc, payload, len) ^ ~0U;
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

/*
 * Kernel rings. Producers serialise on klock only to hand out space; they
 * copy and seal outside it. klock is a raw spinlock taken irqsave: callers
 * may be in hard-irq context (never NMI), also on PREEMPT_RT, where a
 * spinlock_t would sleep. Returns the record's position, with step 1 of
 * the publish done under klock (len known, tag BUSY) before write_pos
 * covers it, or -ENOSPC (full: the consumer is behind, or a record that far
 * back is still being written) or -EUCLEAN (the consumer's read_pos is
 * impossible). Both are counted for UHP_IOC_INFO.
 */
int uhp_kring_reserve(struct uhp_ring *r, u32 len, u64 *pos_out)
{
	u64 total = UHP_REC_TOTAL(len), rpos, pend, end;
	struct uhp_rec_hdr *rec;
	unsigned long flags;
	unsigned int n;
	int ret = 0;

	if (WARN_ON_ONCE(in_nmi()))
		return -EINVAL;		/* klock is not NMI-safe */
	if (total > r->size)
		return -EMSGSIZE;

	raw_spin_lock_irqsave(&r->klock, flags);
	/*
	 * Pairs with the consumer's store-release of read_pos: the bytes
	 * below it are read and may be reused.
	 */
	rpos = smp_load_acquire(&r->cons->read_pos);
	if (unlikely(rpos & (UHP_REC_ALIGN - 1) || r->kwpos - rpos > r->size)) {
		atomic64_inc(&r->kcorrupt);
		ret = -EUCLEAN;
		goto out_unlock;
	}
	/*
	 * Advance kpending past records already committed. Every header in
	 * [kpending, kwpos) was given its BUSY tag and len under klock
	 * before kwpos passed it, in pages no process can write, so the walk
	 * reads only what we wrote, never stale bytes. At most
	 * UHP_KPENDING_WALK records per call keep the time with interrupts
	 * off bounded; a reservation makes one record and walks up to that
	 * many, so kpending keeps up (a walk cut short can only make this
	 * call report a full ring early).
	 */
	pend = r->kpending;
	for (n = 0; pend != r->kwpos && n < UHP_KPENDING_WALK; n++) {
		rec = uhp_ring_hdr(r, pend);
		/* Pairs with the store-release of the tag in uhp_ring_commit(). */
		if (smp_load_acquire(&rec->tag) != (pend ^ r->salt))
			break;
		pend += UHP_REC_TOTAL(rec->len);
	}
	r->kpending = pend;
	end = r->kwpos + total;
	if (end - rpos > r->size || end - pend > r->size) {
		atomic64_inc(&r->kfull);
		ret = -ENOSPC;
		goto out_unlock;
	}
	*pos_out = r->kwpos;
	r->kwpos = end;

	/* Step 1 of the publish, still under klock (see the walk above). */
	rec = uhp_ring_hdr(r, *pos_out);
	rec->len = len;
	rec->flags = UHP_REC_F_KERNEL;
	/* Pairs with the consumer's load-acquire of the tag. */
	smp_store_release(&rec->tag, *pos_out ^ r->salt ^ UHP_TAG_BUSY);
	/*
	 * A copy for consumers (stall recovery and read bounds); never read
	 * back. Release: a consumer that sees this write_pos sees the BUSY
	 * tag above, never the stale bytes of an older lap.
	 */
	smp_store_release(&r->prod->write_pos, end);
out_unlock:
	raw_spin_unlock_irqrestore(&r->klock, flags);
	if (ret == -EUCLEAN)
		pr_warn_ratelimited("uhp: kernel ring: corrupt read_pos %llu (write_pos %llu, size %llu), send refused\n",
				    rpos, r->kwpos, r->size);
	return ret;
}

/*
 * The length a kernel reservation at pos was made for: step 1 wrote it
 * under klock, in a page only the kernel writes.
 */
u32 uhp_ring_reserved_len(struct uhp_ring *r, u64 pos)
{
	return READ_ONCE(uhp_ring_hdr(r, pos)->len);
}

/* Where the payload of the record at pos goes (contiguous: double map). */
void *uhp_ring_payload(struct uhp_ring *r, u64 pos)
{
	return uhp_ring_hdr(r, pos) + 1;
}

/*
 * Step 2 of the publish for a record the kernel reserved at pos: h carries
 * every field, crc included. Pairs with the consumer's load-acquire of the
 * tag (and uhp_kring_reserve()'s walk of kpending).
 */
void uhp_ring_commit(struct uhp_ring *r, u64 pos, const struct uhp_rec_hdr *h)
{
	struct uhp_rec_hdr *rec = uhp_ring_hdr(r, pos);

	uhp_rec_store_fields(rec, h);
	/* Pairs with the consumer's load-acquire of the tag. */
	smp_store_release(&rec->tag, pos ^ r->salt);
}

/* Did the consumer ask to be woken? Called after a commit. */
bool uhp_ring_needs_wakeup(struct uhp_ring *r)
{
	/*
	 * Orders the committed tag before the need_wakeup load; pairs with
	 * the consumer's full barrier between setting need_wakeup and
	 * re-checking the rings.
	 */
	smp_mb();
	return READ_ONCE(r->wake->need_wakeup);
}

/* The consumer is gone: producers need not wake it any more. */
void uhp_ring_clear_need_wakeup(struct uhp_ring *r)
{
	WRITE_ONCE(r->wake->need_wakeup, 0);
}
