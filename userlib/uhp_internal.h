/* SPDX-License-Identifier: MIT */
/*
 * libuhp internals shared by the library's layers (ring/, simd/, runtime/:
 * userlib/Makefile says what each holds) and the host tests. Nothing
 * here is exported from libuhp.so (hidden visibility, and the version script
 * keeps only uhp_*; the internal names use the uhp__ prefix and are hidden).
 *
 * Layout of a mapped channel (one struct uhp_ring per sub-ring):
 *   prod_page, cons_page -> the ring's producer and consumer pages (4096
 *           bytes each, MAP_SHARED; a kernel ring's prod page read-only)
 *   data  -> 2 * data_size bytes: the data area mapped twice back to back
 * Everything the library decides with (data_size, mask, salt, the consumer's
 * read position) is copied into private memory once and never re-read from
 * the shared pages, which any peer can scribble on.
 */
#ifndef UHP_INTERNAL_H
#define UHP_INTERNAL_H

#include <string.h>

#include "uhp.h"
#include "probes.h"

#define UHP_HIDDEN __attribute__((visibility("hidden")))
#define UHP_COLD __attribute__((cold, noinline))

#define uhp_likely(x)	__builtin_expect(!!(x), 1)
#define uhp_unlikely(x)	__builtin_expect(!!(x), 0)

/* Sanity bounds for what the kernel reports (the ABI itself has none). */
#define UHP_MAX_RINGS		1024
#define UHP_MIN_DATA_SIZE	4096ULL
#define UHP_MAX_DATA_SIZE	(1ULL << 40)

/*
 * Records the consumer takes from one ring in a row before it looks at the
 * next: with one busy ring among several, a cursor that moved after every
 * record sent every other receive down the slow path to find the busy ring
 * again (bench_throughput uhp_excl, two rings: no faster than uhp_spin).
 */
#define UHP_RR_QUANTUM		32

/* An in-memory channel's consumer sleeps this long, doubling up to MAX. */
#define UHP_MEM_SLEEP_MIN_NS	10000ULL
#define UHP_MEM_SLEEP_MAX_NS	1000000ULL

/* Failed write_pos CASes before a reservation gives up with -EAGAIN. */
#define UHP_RESERVE_MAX_TRIES	4096

struct uhp_ring {
	/* read-mostly, set at map time */
	void *prod_page;
	void *cons_page;
	bool kernel;			/* UHP_RING_F_KERNEL: consume only */
	/*
	 * UHP_RING_F_EXCL: a producer handle reaches one only through its
	 * claim (uhp_claim_ring()), so sending there means "we are its only
	 * producer": write_pos is stored, not CASed (reserve() in ring.c).
	 */
	bool excl;
	int node;
	struct uhp_prod_line *prod;
	struct uhp_cons_line *cons;
	struct uhp_wake_line *wake;
	unsigned char *data;		/* 2 * data_size bytes */
	uint64_t mask;			/* data_size - 1, private */
	uint64_t salt;			/* from the desc, read once */

	/* consumer-private state (single consumer thread) */
	uint64_t rpos;			/* authoritative read position */
	uint64_t stall_pos;		/* position the stall clock runs for */
	/* CLOCK_MONOTONIC ns; 0 = not armed. Armed for stall_pos only: a
	 * consumer that moved on re-arms it (uhp__ring_stalled()). */
	uint64_t stall_since;
	uint64_t stall_next_scan;	/* earliest ns for the next idle scan */
	uint32_t idle_polls;		/* head checks that found no record */
	/* where the record uhp_peek() returned last ends: uhp_release()
	 * consumes up to there, whatever the caller's struct uhp_rx says
	 * now (a stale rx cannot match: read positions only grow) */
	uint64_t peek_end;
	/* cons->records when this handle took the role: uhp_stats() counts
	 * its received records from there (the fast path counts only once) */
	uint64_t records_base;
} __attribute__((aligned(64)));

/*
 * A power of two (two lines), so ch->rings[k] on the fast paths is a shift,
 * not a multiply (8 instructions per send+recv when it was 120 bytes).
 */
_Static_assert((sizeof(struct uhp_ring) & (sizeof(struct uhp_ring) - 1)) == 0,
	       "struct uhp_ring: keep its size a power of two");

/*
 * A head check that finds no committed record looks at write_pos and the
 * stall clock only every UHP_STALL_CHECK_EVERY-th time: both live on lines
 * producers write, and a consumer spinning on an empty ring that read
 * write_pos each time took that line away from the producer's next CAS, a
 * cache miss per message. uhp_wait() and uhp_prepare_sleep()
 * make the next check a full one (uhp__stall_check_soon()), so a sleeping
 * consumer still recovers from a dead producer within the stall timeout.
 */
#define UHP_STALL_CHECK_EVERY	64

struct uhp_channel;

/*
 * What differs between the kinds of channel: a /dev/uhp channel
 * (control.c: uhp__dev_backend), an arena (arena.c) and the tests'
 * in-memory channel (memring.c). channel.c, wait.c, claim.c and the runtime
 * call through it and name no backend; the fast paths never use it.
 */
struct uhp_backend {
	const char *name;
	/* Producer side: wake a consumer that announced need_wakeup. */
	int (*notify)(struct uhp_channel *ch);
	/*
	 * Consumer side. wake_token() is read before the last re-check;
	 * sleep() returns when a wakeup came after it, or after ns (0 or
	 * -errno). *backoff is for a backend nobody can wake (it sleeps
	 * that long, doubling). wake_word(): the futex word a sleeping
	 * consumer waits on, or NULL (the runtime waits on many at once).
	 */
	uint32_t (*wake_token)(struct uhp_channel *ch);
	int (*sleep)(struct uhp_channel *ch, uint32_t token, uint64_t ns,
		     uint64_t *backoff);
	uint32_t *(*wake_word)(struct uhp_channel *ch);
	/* uhp_channel_fd(); end_sleep(): after a wait on it (may drain it) */
	int (*pollfd)(struct uhp_channel *ch);
	void (*end_sleep)(struct uhp_channel *ch);
	/* uhp_claim_ring(): the claimed exclusive ring, or -errno */
	int (*claim)(struct uhp_channel *ch);
	/* uhp_info(), arguments checked */
	int (*info)(struct uhp_channel *ch, struct uhp_info *out,
		    struct uhp_ring_info *rings, unsigned cap);
	/* uhp_close(), after the rings are unmapped: the rest */
	void (*release)(struct uhp_channel *ch);
};

struct uhp_channel {
	const struct uhp_backend *be;
	int fd;				/* channel fd (/dev/uhp channels), or -1 */
	/* an arena's wake FIFO (the consumer's pollable fd, a producer's
	 * cached write end), or -1 */
	int wake_fd;
	bool consumer;
	/* uhp_wait()'s checks before it sleeps (uhp_set_spin()) */
	unsigned spin;
	unsigned nr_rings;
	uint64_t data_size;
	/* largest record a producer may send: data_size; 0 if read-only */
	uint64_t max_total;
	uint64_t stall_timeout_ns;

	/* node -> ring index (-1: none), for nodes < nr_node_ring */
	int16_t *node_ring;
	unsigned nr_node_ring;

	/* arena (uhp_arena_*): its header page, or NULL */
	void *arena;
	size_t arena_len;
	char *wake_path;		/* its wake FIFO (arena.c) */
	/* ring this handle's producers use (uhp_set_producer_ring) */
	unsigned prod_ring;
	/* exclusive ring this handle claimed (claim.c), or -1 */
	int claimed;
	/* claim.c's list of handles holding a claim (for fork) */
	struct uhp_channel *claim_next;
	/* consumer's round-robin cursor: next ring to look at, and how many
	 * more records it takes there in a row (ring.c, rr_taken()) */
	unsigned rr;
	unsigned rr_left;

	/*
	 * Counters. The producer ones are bumped by many threads (atomic
	 * adds; relaxed, except that on x86 the add to sent is also the
	 * producer's wake-up barrier, see wake_check() in ring.c); the
	 * consumer ones by the consumer thread only. Each group has its own
	 * cache line.
	 */
	struct {
		uint64_t sent;
		uint64_t notifies;
	} __attribute__((aligned(64))) pstat;
	struct {
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

/* channel.c */
UHP_HIDDEN struct uhp_channel *uhp__channel_alloc(unsigned nr_rings,
						  const struct uhp_backend *be);
/* uhp_info() of a backend without the kernel */
UHP_HIDDEN int uhp__info_local(struct uhp_channel *ch, struct uhp_info *out,
			       struct uhp_ring_info *rings, unsigned cap,
			       uint64_t features);
UHP_HIDDEN int uhp__channel_index_nodes(struct uhp_channel *ch);
UHP_HIDDEN void uhp__channel_pick_producer_ring(struct uhp_channel *ch);
UHP_HIDDEN void uhp__channel_free(struct uhp_channel *ch);
/* Check a channel/arena name and copy it, zero-padded, into dst. */
UHP_HIDDEN int uhp__name_copy(char dst[UHP_NAME_MAX], const char *name);

/* ring.c */
UHP_HIDDEN int uhp__ring_head(struct uhp_channel *ch, unsigned k,
			      struct uhp_head *hd);
UHP_HIDDEN bool uhp__ready(struct uhp_channel *ch);
UHP_HIDDEN void uhp__ring_consume(struct uhp_channel *ch, struct uhp_ring *r,
				  uint64_t newpos);

/* seal.c: record CRCs; see there */
UHP_HIDDEN uint32_t uhp__rec_crc(const struct uhp_rec_hdr *h,
				 const void *payload, uint32_t len);
#define UHP_SEAL_COPY_MAX	256	/* uhp__rec_crc_copy(): payloads up to here */
/* Which variant of the send/receive fast paths runs (seal.h, ring.c). */
enum { UHP_SEAL_UNCHOSEN, UHP_SEAL_GENERIC, UHP_SEAL_SSE42 };
UHP_HIDDEN extern int uhp__seal_path;
/* Choose it (once; racing callers choose the same) and return it. */
UHP_HIDDEN int uhp__seal_choose(void);
#ifdef UHP_TEST_HOOKS
/* Host tests: force the ring this thread's producers use (-1: the handle's). */
UHP_HIDDEN void uhp__set_thread_ring(int ring);
#endif

/*
 * Add to a counter only the consumer writes (its handle's stats, its cons
 * line's records/bad/stalled): relaxed, atomic so readers see whole values.
 */
#define uhp__count(c, n) \
	__atomic_store_n((c), __atomic_load_n((c), __ATOMIC_RELAXED) + (n), \
			 __ATOMIC_RELAXED)

/* recover.c: the head of ring r is not committed (tag as loaded) */
UHP_HIDDEN int uhp__ring_stalled(struct uhp_channel *ch, struct uhp_ring *r,
				 uint64_t tag);
/* recover.c: the committed head of ring r has an impossible length */
UHP_HIDDEN void uhp__ring_skip_garbage(struct uhp_channel *ch,
				       struct uhp_ring *r);
/* recover.c: the next head check of every ring runs the stall logic */
UHP_HIDDEN void uhp__stall_check_soon(struct uhp_channel *ch);
UHP_HIDDEN uint64_t uhp__now_ns(void);

/* dispatch.c: the env-forced path if the CPU has it, else the first of
 * prefer[] the CPU has, else fallback. */
UHP_HIDDEN unsigned uhp__dispatch_choose(const char *env,
					 const char *const *names, unsigned nr,
					 bool (*have)(unsigned path),
					 const unsigned *prefer, unsigned nprefer,
					 unsigned fallback);

/* claim.c */
UHP_HIDDEN void uhp__claim_forget(struct uhp_channel *ch);

/* control.c: uhp_create() with extra UHP_CREATE_* flags (open.c) */
UHP_HIDDEN int uhp__create(int dev, const char *name,
			   const struct uhp_create_opts *opts, uint32_t flags,
			   struct uhp_channel **out);

/* The backends (struct uhp_backend) */
UHP_HIDDEN extern const struct uhp_backend uhp__dev_backend;	/* control.c */
UHP_HIDDEN extern const struct uhp_backend uhp__arena_backend;	/* arena.c */
UHP_HIDDEN extern const struct uhp_backend uhp__mem_backend;	/* memring.c */
/* wait.c: poll() on fd for up to ns; 0, or -errno (POLLHUP/POLLERR: -EIO) */
UHP_HIDDEN int uhp__poll_sleep(int fd, uint64_t ns);

/* crc32c.c: the paths of uhp_crc32c() and the one it uses */
#define UHP_CRC32C_POLY_REFLECTED	0x82F63B78U

enum uhp_crc_path {
	UHP_CRC_TABLE,		/* crc32c_table.c, portable */
	UHP_CRC_SSE42,		/* crc32c_x86.c: one crc32 chain */
	UHP_CRC_PCLMUL,		/* crc32c_x86.c: 3 chains + PCLMULQDQ */
	UHP_CRC_VPCLMUL,	/* crc32c_x86.c: VPCLMULQDQ folding, ymm (AVX2) */
	UHP_CRC_AVX512,		/* crc32c_x86.c: VPCLMULQDQ folding */
	UHP_CRC_AVX512MIX,	/* crc32c_x86.c: folding + crc32 chains (AMD) */
	UHP_CRC_NR_PATHS
};

typedef uint32_t (*uhp_crc_fn)(uint32_t crc, const void *buf, size_t len);

UHP_HIDDEN const char *uhp__crc32c_path_name(unsigned path);
/* The path's function, or NULL (and *why_not, if given, says why) when
 * this CPU/OS or build lacks it. */
UHP_HIDDEN uhp_crc_fn uhp__crc32c_path_fn(unsigned path, const char **why_not);
/* Name of the path uhp_crc32c() uses (chooses it if not done yet). */
UHP_HIDDEN const char *uhp__crc32c_impl(void);
/* auto's timing rule: does the table replace a pick this much faster? */
UHP_HIDDEN bool uhp__crc_prefer_table(uint64_t pick_ns, uint64_t table_ns);

/* crc32c_table.c */
UHP_HIDDEN uint32_t uhp__crc32c_table(uint32_t crc, const void *buf, size_t len);

/* crc32c_x86.c: call only through uhp__crc32c_path_fn() (CPU checks) */
/* measured thresholds: see crc32c_x86.c */
#define UHP_CRC32C_PCL_MIN	256	/* pclmul: below, one crc32 chain */
#define UHP_CRC32C_AVX512_MIN	192	/* avx512: below, one crc32 chain */
#define UHP_CRC32C_VPCL256_MIN	256	/* vpclmul: below, one crc32 chain */
#define UHP_CRC32C_HYBRID_MIN	4096	/* avx512: from here folds + crc32 chains */
#define UHP_CRC32C_HYBRID_MAX	(4U << 20) /* ... up to here, then folds */
#define UHP_CRC32C_NR_FOLD_K	7
#define UHP_CRC32C_NR_SHIFT_K	256
#define UHP_CRC32C_NR_POW2_K	64

struct uhp_crc32c_fold_k {
	uint32_t bits;		/* fold distance D */
	uint32_t k_lo;		/* x^(D+31) mod P, for the low (earlier) qword */
	uint32_t k_hi;		/* x^(D-33) mod P, for the high qword */
};

UHP_HIDDEN extern const struct uhp_crc32c_fold_k
	uhp__crc32c_fold_k[UHP_CRC32C_NR_FOLD_K];
/* [i - 1] = x^(64*i - 33) mod P */
UHP_HIDDEN extern const uint32_t uhp__crc32c_shift_k[UHP_CRC32C_NR_SHIFT_K];
/* [b] = x^(64 * 2^b - 33) mod P */
UHP_HIDDEN extern const uint32_t uhp__crc32c_pow2_k[UHP_CRC32C_NR_POW2_K];
UHP_HIDDEN uint32_t uhp__crc32c_sse42(uint32_t crc, const void *buf, size_t len);
UHP_HIDDEN uint32_t uhp__crc32c_pclmul(uint32_t crc, const void *buf, size_t len);
UHP_HIDDEN uint32_t uhp__crc32c_vpclmul(uint32_t crc, const void *buf, size_t len);
UHP_HIDDEN uint32_t uhp__crc32c_avx512(uint32_t crc, const void *buf, size_t len);
UHP_HIDDEN uint32_t uhp__crc32c_avx512mix(uint32_t crc, const void *buf, size_t len);

/*
 * copy.c: the paths of uhp_memcpy() and the one it uses, numbered like the
 * kernel's (UHP_COPY_GENERIC/ERMS/AVX2/AVX512 of linux/uhp.h, 0..3).
 */
#define UHP_COPY_NR_PATHS	4

typedef void *(*uhp_copy_fn)(void *dst, const void *src, size_t n);

#define UHP_COPY_NT_MIN		(4U << 20)	/* no ERMS: streaming stores from here */

/*
 * The path uhp_memcpy() uses (a resolver until the first call). The
 * library's payload copies call it through uhp__memcpy(): one indirect
 * call, no PLT hop to the exported uhp_memcpy().
 */
UHP_HIDDEN extern uhp_copy_fn uhp__copy_fn;

static inline void *uhp__memcpy(void *dst, const void *src, size_t n)
{
	return __atomic_load_n(&uhp__copy_fn, __ATOMIC_ACQUIRE)(dst, src, n);
}

/*
 * Payload copies of send/recv: below UHP_COPY_PAYLOAD_MIN the C library's
 * memcpy is as fast as any uhp_memcpy path (bench_copy: 0.98..1.1x, the
 * same instructions) and in a send+recv loop its call is a hop shorter
 * (~1-2 ns of ~60 ns at 64..256 B); from there on uhp_memcpy's paths win
 * (4..16 KiB: 1.6x hot, ~1.1x in a send+recv loop; 1 MiB and up: 1.2-1.5x).
 */
#define UHP_COPY_PAYLOAD_MIN	2048

static inline void *uhp__copy_payload(void *dst, const void *src, size_t n)
{
	if (n < UHP_COPY_PAYLOAD_MIN)
		return memcpy(dst, src, n);
	return uhp__memcpy(dst, src, n);
}

UHP_HIDDEN const char *uhp__copy_path_name(unsigned path);
/* The path's function, or NULL (and *why_not) when this CPU/OS lacks it. */
UHP_HIDDEN uhp_copy_fn uhp__copy_path_fn(unsigned path, const char **why_not);
/* Name of the path uhp_memcpy() uses (chooses it if not done yet). */
UHP_HIDDEN const char *uhp__copy_impl(void);
/* Tests: where avx512/avx2 switch to rep movsb (SIZE_MAX: never); returns
 * the previous value (L1d / 2 with ERMS, else SIZE_MAX). */
UHP_HIDDEN size_t uhp__copy_set_erms_min(size_t n);

/* memring.c: a channel in a memfd, no module needed (tests, benchmarks) */
UHP_HIDDEN int uhp__mem_channel_new(unsigned nr_rings, uint64_t data_size,
				    struct uhp_channel **out);
/* Map [prod][cons][data] at base of fd into r (data twice). */
UHP_HIDDEN int uhp__ring_map_file(struct uhp_ring *r, int fd, off_t base,
				  size_t page, uint64_t ds, int prot);
/* Move an empty ring's positions to pos (aligned): wrap-around tests. */
UHP_HIDDEN int uhp__mem_ring_set_pos(struct uhp_channel *ch, unsigned ring,
				     uint64_t pos);

/*
 * route.c: the paths of uhp_route_match()/uhp_route_match_set() and the one
 * they use. Every path's functions take every input (any n, stride and
 * set size) and give the same bitmap and count.
 */
enum uhp_route_path {
	UHP_ROUTE_SCALAR,	/* route.c, portable */
	UHP_ROUTE_AVX2,		/* route_x86.c: 8 ids per compare */
	UHP_ROUTE_AVX512,	/* route_x86.c: 16 ids per compare, masks */
	UHP_ROUTE_NR_PATHS
};

typedef size_t (*uhp_route_match_fn)(const uint32_t *ids, size_t stride,
				     size_t n, uint32_t target,
				     uint64_t *bitmap);
typedef size_t (*uhp_route_set_fn)(const uint32_t *ids, size_t stride,
				   size_t n, const uint32_t *targets,
				   size_t ntargets, uint64_t *bitmap);

struct uhp_route_impl {
	uhp_route_match_fn match;
	uhp_route_set_fn match_set;
};

UHP_HIDDEN const char *uhp__route_path_name(unsigned path);
/* The path's functions, or NULL (and *why_not, if given, says why) when
 * this CPU/OS or build lacks it. */
UHP_HIDDEN const struct uhp_route_impl *uhp__route_path(unsigned path,
							 const char **why_not);
/* Name of the path the uhp_route_* functions use (chooses it if not yet). */
UHP_HIDDEN const char *uhp__route_impl(void);

/* route.c: the scalar path, and the > UHP_ROUTE_SET_VEC_MAX set lookup */
UHP_HIDDEN size_t uhp__route_match_scalar(const uint32_t *ids, size_t stride,
					  size_t n, uint32_t target,
					  uint64_t *bitmap);
UHP_HIDDEN size_t uhp__route_set_scalar(const uint32_t *ids, size_t stride,
					size_t n, const uint32_t *targets,
					size_t ntargets, uint64_t *bitmap);
UHP_HIDDEN size_t uhp__route_set_large(const uint32_t *ids, size_t stride,
				       size_t n, const uint32_t *targets,
				       size_t ntargets, uint64_t *bitmap);

/* route_x86.c: call only through uhp__route_path() (CPU checks) */
UHP_HIDDEN size_t uhp__route_match_avx2(const uint32_t *ids, size_t stride,
					size_t n, uint32_t target,
					uint64_t *bitmap);
UHP_HIDDEN size_t uhp__route_set_avx2(const uint32_t *ids, size_t stride,
				      size_t n, const uint32_t *targets,
				      size_t ntargets, uint64_t *bitmap);
UHP_HIDDEN size_t uhp__route_match_avx512(const uint32_t *ids, size_t stride,
					  size_t n, uint32_t target,
					  uint64_t *bitmap);
UHP_HIDDEN size_t uhp__route_set_avx512(const uint32_t *ids, size_t stride,
					size_t n, const uint32_t *targets,
					size_t ntargets, uint64_t *bitmap);

#endif /* UHP_INTERNAL_H */
