// SPDX-License-Identifier: MIT
/*
 * The channel handle, whatever is behind it: a /dev/uhp channel
 * (control.c), an arena (arena.c) or an in-memory channel of the tests
 * (memring.c). Each of those fills the rings and sets ch->be, its struct
 * uhp_backend; everything here and in wait.c and claim.c goes through that
 * table and names no backend, so the backends depend on this file and not
 * on each other.
 *
 * Order of things: 1. names, 2. the handle (allocation, the node -> ring
 * index, free), 3. the public calls that only dispatch or read the handle.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "uhp_internal.h"

/* ---- 1. names ---- */

/* Same rule as the kernel: 1..UHP_NAME_MAX-1 of [A-Za-z0-9._-], no leading '.' */
int uhp__name_copy(char dst[UHP_NAME_MAX], const char *name)
{
	size_t n;

	if (!name)
		return -EINVAL;
	n = strnlen(name, UHP_NAME_MAX);
	if (n >= UHP_NAME_MAX)
		return -ENAMETOOLONG;
	if (n == 0 || name[0] == '.')
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
			return -EINVAL;
	}
	memset(dst, 0, UHP_NAME_MAX);
	memcpy(dst, name, n);
	return 0;
}

/* ---- 2. the handle ---- */

struct uhp_channel *uhp__channel_alloc(unsigned nr_rings,
				       const struct uhp_backend *be)
{
	struct uhp_channel *ch;
	size_t sz = sizeof(*ch) + (size_t)nr_rings * sizeof(ch->rings[0]);

	/* aligned_alloc: the stat groups are cache-line aligned */
	sz = (sz + 63) & ~(size_t)63;
	ch = aligned_alloc(64, sz);
	if (!ch)
		return NULL;
	memset(ch, 0, sz);
	ch->be = be;
	ch->fd = -1;
	ch->wake_fd = -1;
	ch->spin = UHP_DEFAULT_SPIN;
	ch->claimed = -1;
	ch->rr_left = UHP_RR_QUANTUM;
	ch->nr_rings = nr_rings;
	ch->stall_timeout_ns = UHP_DEFAULT_STALL_TIMEOUT_NS;
	return ch;
}

/* Build node -> ring: a producer looks up the ring of the node it runs on. */
int uhp__channel_index_nodes(struct uhp_channel *ch)
{
	int max = -1;

	for (unsigned k = 0; k < ch->nr_rings; k++)
		if (ch->rings[k].node > max && ch->rings[k].node < 4096)
			max = ch->rings[k].node;
	if (max < 0)
		return 0;	/* no usable node ids: everyone uses ring 0 */
	ch->node_ring = malloc((size_t)(max + 1) * sizeof(ch->node_ring[0]));
	if (!ch->node_ring)
		return -ENOMEM;
	for (int n = 0; n <= max; n++)
		ch->node_ring[n] = -1;
	for (unsigned k = 0; k < ch->nr_rings; k++) {
		int n = ch->rings[k].node;

		/* Producers never write kernel rings, nor unclaimed
		 * exclusive ones. */
		if (ch->rings[k].kernel || ch->rings[k].excl)
			continue;
		if (n >= 0 && n <= max && ch->node_ring[n] < 0)
			ch->node_ring[n] = (int16_t)k;
	}
	ch->nr_node_ring = (unsigned)max + 1;
	uhp__channel_pick_producer_ring(ch);
	/* Every backend's open ends here, once the handle is whole. */
	UHP_PROBE3(open, ch, ch->nr_rings, ch->be->name);
	return 0;
}

/* Producers of a new handle use the ring of the caller's node, or ring 0. */
void uhp__channel_pick_producer_ring(struct uhp_channel *ch)
{
	unsigned cpu, node;

	ch->prod_ring = 0;
	if (getcpu(&cpu, &node) || node >= ch->nr_node_ring ||
	    ch->node_ring[node] < 0)
		return;
	ch->prod_ring = (unsigned)ch->node_ring[node];
	/* informational: who produces where (an observer maps it read-only) */
	if (ch->max_total)
		__atomic_store_n(&ch->rings[ch->prod_ring].prod->producer_cpu,
				 cpu, __ATOMIC_RELAXED);
}

void uhp__channel_free(struct uhp_channel *ch)
{
	uhp__claim_forget(ch);
	for (unsigned k = 0; k < ch->nr_rings; k++) {
		struct uhp_ring *r = &ch->rings[k];

		if (r->data)
			munmap(r->data, 2 * ch->data_size);
		if (r->prod_page)
			munmap(r->prod_page, UHP_PAGE_SIZE);
		if (r->cons_page)
			munmap(r->cons_page, UHP_PAGE_SIZE);
	}
	ch->be->release(ch);
	free(ch->node_ring);
	free(ch);
}

/* ---- 3. public calls ---- */

UHP_API void uhp_close(struct uhp_channel *ch)
{
	if (ch) {
		UHP_PROBE1(close, ch);
		uhp__channel_free(ch);
	}
}

UHP_API int uhp_info(struct uhp_channel *ch, struct uhp_info *out,
		     struct uhp_ring_info *rings, unsigned cap)
{
	if (!ch || !out || (cap && !rings))
		return -EINVAL;
	return ch->be->info(ch, out, rings, cap);
}

/*
 * What a backend without the kernel (arena, in-memory) reports for
 * uhp_info(): what the handle knows; uid/gid/mode are 0.
 */
int uhp__info_local(struct uhp_channel *ch, struct uhp_info *out,
		    struct uhp_ring_info *rings, unsigned cap, uint64_t features)
{
	memset(out, 0, sizeof(*out));
	out->size = sizeof(*out);
	out->flags = ch->consumer ? UHP_INFO_F_CONSUMER : 0;
	out->abi_version = UHP_ABI_VERSION;
	out->nr_rings = ch->nr_rings;
	out->features = UHP_FEAT_NUMA_RINGS | UHP_FEAT_DOUBLE_MAP |
			UHP_FEAT_NEED_WAKEUP | features;
	out->data_size = ch->data_size;
	out->page_size = UHP_PAGE_SIZE;
	out->copy_path = UHP_COPY_GENERIC;
	out->rings_cap = cap;
	for (unsigned k = 0; k < cap && k < ch->nr_rings; k++) {
		memset(&rings[k], 0, sizeof(rings[k]));
		rings[k].node = ch->rings[k].node;
		/* (an arena's claims live in its header: not shown) */
		rings[k].flags = ch->rings[k].excl ? UHP_RING_F_EXCL : 0;
		rings[k].prod_off = UHP_MMAP_OFF(k, UHP_PART_PROD);
		rings[k].cons_off = UHP_MMAP_OFF(k, UHP_PART_CONS);
		rings[k].data_off = UHP_MMAP_OFF(k, UHP_PART_DATA);
	}
	return 0;
}

/* An arena's consumer opens its wake FIFO at the first call: hence the cast. */
UHP_API int uhp_channel_fd(const struct uhp_channel *ch)
{
	return ch->be->pollfd((struct uhp_channel *)ch);
}

UHP_API unsigned uhp_version(void)
{
	return UHP_VERSION_NUM;
}

UHP_API unsigned uhp_nr_rings(const struct uhp_channel *ch)
{
	return ch->nr_rings;
}

UHP_API int uhp_ring_fill(const struct uhp_channel *ch, unsigned ring,
			  uint64_t *used, uint64_t *size)
{
	const struct uhp_ring *r;
	uint64_t wp, rp;

	if (!ch || ring >= ch->nr_rings || !used)
		return -EINVAL;
	r = &ch->rings[ring];
	/*
	 * A snapshot (relaxed loads): write_pos read while read_pos did not
	 * move is a pair that held at one instant, so an honest ring never
	 * looks over-full; a consumer moving all the while gets the last try.
	 */
	for (int tries = 0; tries < 4; tries++) {
		rp = __atomic_load_n(&r->cons->read_pos, __ATOMIC_RELAXED);
		wp = __atomic_load_n(&r->prod->write_pos, __ATOMIC_RELAXED);
		if (__atomic_load_n(&r->cons->read_pos, __ATOMIC_RELAXED) == rp)
			break;
	}
	if (size)
		*size = ch->data_size;
	if ((int64_t)(wp - rp) < 0 || wp - rp > ch->data_size)
		return -EUCLEAN;
	*used = wp - rp;
	return 0;
}

UHP_API int uhp_ring_stats(const struct uhp_channel *ch, unsigned ring,
			   struct uhp_ring_stats *out)
{
	struct uhp_ring_stats s = { 0 };
	const struct uhp_ring *r;
	uint32_t size;
	int ret;

	if (!ch || !out || ring >= ch->nr_rings ||
	    out->size < offsetof(struct uhp_ring_stats, stalled) + sizeof(s.stalled))
		return -EINVAL;
	size = out->size < sizeof(s) ? out->size : (uint32_t)sizeof(s);
	r = &ch->rings[ring];
	ret = uhp_ring_fill(ch, ring, &s.used, &s.data_size);
	if (ret)
		s.used = 0;
	s.size = size;
	s.node = r->node;
	s.flags = (r->kernel ? UHP_RING_F_KERNEL : 0) | (r->excl ? UHP_RING_F_EXCL : 0);
	/* Relaxed loads of lines others write: a snapshot, for display. */
	s.written = __atomic_load_n(&r->prod->write_pos, __ATOMIC_RELAXED);
	s.consumed = __atomic_load_n(&r->cons->read_pos, __ATOMIC_RELAXED);
	s.records = __atomic_load_n(&r->cons->records, __ATOMIC_RELAXED);
	s.bad = __atomic_load_n(&r->cons->bad, __ATOMIC_RELAXED);
	s.stalled = __atomic_load_n(&r->cons->stalled, __ATOMIC_RELAXED);
	memcpy(out, &s, size);
	return ret;
}

UHP_API int uhp_notify(struct uhp_channel *ch)
{
	__atomic_fetch_add(&ch->pstat.notifies, 1, __ATOMIC_RELAXED);
	UHP_PROBE1(notify, ch);
	return ch->be->notify(ch);
}
