/* SPDX-License-Identifier: MIT */
/*
 * libuhp internals shared by the library's files and the host tests. Nothing
 * here is exported from libuhp.so (hidden visibility, and the version script
 * keeps only uhp_*; the internal names use the uhp__ prefix and are hidden).
 *
 * Layout of a mapped channel (one struct uhp_ring per sub-ring):
 *   ctrl  -> the ring's control page (4096 bytes, MAP_SHARED)
 *   data  -> 2 * data_size bytes: the data area mapped twice back to back
 * Everything the library decides with (data_size, mask, salt, the consumer's
 * read position) is copied into private memory once and never re-read from
 * the shared pages, which any peer can scribble on.
 */
#ifndef UHP_INTERNAL_H
#define UHP_INTERNAL_H

#include "uhp.h"

#define UHP_HIDDEN __attribute__((visibility("hidden")))
#define UHP_COLD __attribute__((cold, noinline))

#define uhp_likely(x)	__builtin_expect(!!(x), 1)
#define uhp_unlikely(x)	__builtin_expect(!!(x), 0)

/* Sanity bounds for what the kernel reports (the ABI itself has none). */
#define UHP_MAX_RINGS		1024
#define UHP_MIN_DATA_SIZE	4096ULL
#define UHP_MAX_DATA_SIZE	(1ULL << 40)

/* Failed write_pos CASes before a reservation gives up with -EAGAIN. */
#define UHP_RESERVE_MAX_TRIES	4096

struct uhp_ring {
	/* read-mostly, set at map time */
	void *ctrl;
	struct uhp_prod_line *prod;
	struct uhp_cons_line *cons;
	struct uhp_wake_line *wake;
	unsigned char *data;		/* 2 * data_size bytes */
	uint64_t mask;			/* data_size - 1, private */
	uint64_t salt;			/* from the desc, read once */
	int node;

	/* consumer-private state (single consumer thread) */
	uint64_t rpos;			/* authoritative read position */
	uint64_t wpos_seen;		/* last write_pos read: bounds lengths */
	uint64_t stall_pos;		/* position the stall clock runs for */
	uint64_t stall_since;		/* CLOCK_MONOTONIC ns; 0 = not armed */
	uint64_t stall_next_scan;	/* earliest ns for the next idle scan */
};

struct uhp_channel {
	int fd;				/* channel fd, -1 for an in-memory channel */
	bool consumer;
	unsigned nr_rings;
	uint64_t data_size;
	uint64_t stall_timeout_ns;

	/* node -> ring index (-1: none), for nodes < nr_node_ring */
	int16_t *node_ring;
	unsigned nr_node_ring;

	/* ring this handle's producers use (uhp_set_producer_ring) */
	unsigned prod_ring;
	/* consumer's round-robin cursor: next ring to look at */
	unsigned rr;

	/*
	 * Counters. The producer ones are bumped by many threads (atomic
	 * adds, relaxed: they order nothing); the consumer ones by the
	 * consumer thread only. Each group has its own cache line.
	 */
	struct {
		uint64_t sent;
		uint64_t notifies;
	} __attribute__((aligned(64))) pstat;
	struct {
		uint64_t received;
		uint64_t crc_errors;
		uint64_t stalled_skips;
	} __attribute__((aligned(64))) cstat;

	struct uhp_ring rings[];
};

/* What the consumer found at the head of a ring (header copied out). */
struct uhp_head {
	struct uhp_rec_hdr h;		/* private copy, read after the tag */
	const unsigned char *rec;	/* record start in the mapping */
	uint64_t pos;
	uint64_t total;
	unsigned ring;
};

/* control.c */
UHP_HIDDEN struct uhp_channel *uhp__channel_alloc(unsigned nr_rings);
UHP_HIDDEN int uhp__channel_index_nodes(struct uhp_channel *ch);
UHP_HIDDEN void uhp__channel_pick_producer_ring(struct uhp_channel *ch);
UHP_HIDDEN void uhp__channel_free(struct uhp_channel *ch);

/* ring.c */
UHP_HIDDEN int uhp__ring_head(struct uhp_channel *ch, unsigned k,
			      struct uhp_head *hd);
UHP_HIDDEN bool uhp__ready(struct uhp_channel *ch);
UHP_HIDDEN void uhp__ring_consume(struct uhp_channel *ch, struct uhp_ring *r,
				  uint64_t newpos);
UHP_HIDDEN uint32_t uhp__rec_crc(const struct uhp_rec_hdr *h,
				 const void *payload, uint32_t len);
/* Tests: force the ring this thread's producers use (-1: by node). */
UHP_HIDDEN void uhp__set_thread_ring(int ring);

/* recover.c: the head of ring r is not committed (tag as loaded) */
UHP_HIDDEN int uhp__ring_stalled(struct uhp_channel *ch, struct uhp_ring *r,
				 uint64_t tag);
/* recover.c: the committed head of ring r has an impossible length */
UHP_HIDDEN void uhp__ring_skip_garbage(struct uhp_channel *ch,
				       struct uhp_ring *r);
UHP_HIDDEN uint64_t uhp__now_ns(void);

/* crc32c.c */
UHP_HIDDEN uint32_t uhp__crc32c_table(uint32_t crc, const void *buf, size_t len);
UHP_HIDDEN uint32_t uhp__crc32c_hw(uint32_t crc, const void *buf, size_t len);
UHP_HIDDEN bool uhp__crc32c_hw_supported(void);
UHP_HIDDEN const char *uhp__crc32c_impl(void);

/* memring.c: a channel in a memfd, no module needed (tests, benchmarks) */
UHP_HIDDEN int uhp__mem_channel_new(unsigned nr_rings, uint64_t data_size,
				    struct uhp_channel **out);
/* Move an empty ring's positions to pos (aligned): wrap-around tests. */
UHP_HIDDEN int uhp__mem_ring_set_pos(struct uhp_channel *ch, unsigned ring,
				     uint64_t pos);

#endif /* UHP_INTERNAL_H */
