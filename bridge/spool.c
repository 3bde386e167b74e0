/* SPDX-License-Identifier: MIT */
/*
 * uhp-bridge, outbound, jetstream: the spool, state_dir/out.<outbox>.spool,
 * which holds a route's records from the outbox until the stream
 * acknowledged them (its layout: struct spool_hdr, struct spool_ent in
 * bridge.h). js_route_thread() (route.c) appends and drops entries.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "bridge.h"

#define SPOOL_MAGIC	"UHPSPL01"
#define SPOOL_HDR	4096

void spool_commit(struct route *r)
{
	uint64_t g = atomic_load_explicit(&r->sp->gen, memory_order_relaxed);

	r->sp->st[(g + 1) & 1] = r->cur;
	atomic_store_explicit(&r->sp->gen, g + 1, memory_order_release);
}

struct spool_ent *spool_at(struct route *r, uint64_t off)
{
	return (struct spool_ent *)(r->sp_data + (off & (r->sp->size - 1)));
}

int open_spool(struct route *r)
{
	char name[UHP_NAME_MAX + 32];
	bool fresh;
	size_t want = SPOOL_HDR + (size_t)C.spool_bytes;
	struct spool_hdr *h;

	snprintf(name, sizeof(name), "out.%s.spool", r->outbox);
	h = map_file(name, want, &fresh, &r->sp_len);
	if (!h)
		return -EIO;
	if (fresh || memcmp(h->magic, SPOOL_MAGIC, 8) || h->hdr_size != SPOOL_HDR ||
	    h->size + SPOOL_HDR > r->sp_len || (h->size & (h->size - 1))) {
		if (!fresh)
			LOG_WARN("%s: %s is not a spool: starting a new link instance",
				 r->outbox, name);
		memset(h, 0, SPOOL_HDR);
		memcpy(h->magic, SPOOL_MAGIC, 8);
		h->version = 1;
		h->hdr_size = SPOOL_HDR;
		h->size = (uint64_t)C.spool_bytes;
		h->instance = rand64();
		h->st[0].head_seq = h->st[0].next_seq = 1;
		h->st[1] = h->st[0];
	}
	r->sp = h;
	r->sp_data = (unsigned char *)h + SPOOL_HDR;
	r->cur = h->st[atomic_load(&h->gen) & 1];
	r->instance = h->instance;
	return 0;
}

/* Room for an entry of total bytes at the tail (with a pad to wrap)? */
bool spool_room(struct route *r, uint64_t total, uint64_t *pad)
{
	uint64_t size = r->sp->size, off = r->cur.tail_off & (size - 1);
	uint64_t used = r->cur.tail_off - r->cur.head_off;

	*pad = off + total > size ? size - off : 0;
	return total <= size / 2 && used + *pad + total <= size;
}
