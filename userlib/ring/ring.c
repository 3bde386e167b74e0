// SPDX-License-Identifier: MIT
/*
 * Fast path: producers (many, any thread or process) and the consumer (one).
 * No system call here except UHP_IOC_NOTIFY when the consumer sleeps.
 *
 * Order of things in this file:
 *   1. record helpers: address of a position, record CRC
 *   2. producer: ring choice, reservation (CAS on write_pos), the two-step
 *      tag publish, the wakeup check, and the public send calls
 *   3. consumer: the head of a ring, round robin over rings, and the public
 *      receive calls
 *
 * Memory ordering, by shared word (every atomic below names its partner):
 *   write_pos        CAS among producers (stored by the claimant of an
 *                    exclusive ring, its only producer); relaxed: it only
 *                    hands out space, the consumer learns about records
 *                    from the tags.
 *   read_pos         consumer store-release after it is done with a record;
 *                    producers load-acquire it before reusing that space.
 *   cached_read_pos  producers' hint; store-release/load-acquire so that a
 *                    producer that trusts the hint also inherits the
 *                    acquire of read_pos made by whoever wrote it.
 *   hdr.tag          producer store-release (BUSY, then committed); the
 *                    consumer load-acquires it before reading header/payload.
 *   need_wakeup      full barrier on both sides (store-buffer pattern), see
 *                    wake_check() here and uhp_wait() in wait.c.
 *
 * Hostile peers: everything read from the shared pages is bounded with the
 * private data_size/mask before it is used as an offset or length, and the
 * header is copied to private memory once before it is looked at; recv
 * checks the CRC over its private copy of the payload.
 *
 * Lengths: a committed tag is the record's position XOR the ring's salt, so
 * stale bytes of an earlier lap never pass for a record, and an honest
 * producer commits only inside the space its CAS on write_pos took. So the
 * consumer bounds a record's length by the ring (data_size: the double map
 * keeps every read inside the mapping) and trusts the tag and the CRC for
 * the rest; it does not read write_pos per record, which would pull the
 * producers' line across on every record when it keeps up. Only a record
 * whose CRC fails is held against write_pos (bad_record()): a forged tag
 * where nothing is reserved is then no record, and a damaged length is
 * skipped as garbage so the next record is found. A producer
 * that forges a tag and length past write_pos can only do what it could
 * do by rewriting write_pos itself: disturb this ring (producers then see
 * read_pos ahead of write_pos, -EUCLEAN), never read or write outside it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stddef.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>

#include "uhp_internal.h"
#include "seal.h"

/* ---- 1. records ---- */

static inline struct uhp_rec_hdr *rec_at(const struct uhp_ring *r, uint64_t pos)
{
	/* The header never wraps (UHP_REC_ALIGN >= header); a payload may run
	 * into the second mapping of the data area, which is contiguous. */
	return (struct uhp_rec_hdr *)(r->data + (pos & r->mask));
}

/* ---- 2. producer ---- */

/*
 * Producer ring choice. Every record a handle sends goes to the handle's
 * producer ring (ch->prod_ring, picked at create/attach time from the calling
 * thread's NUMA node): one ring per handle is what makes records arrive in
 * the order a handle sent them, whatever threads it runs on. The host tests
 * build the library with UHP_TEST_HOOKS to force a ring per thread; the
 * shipped library has no such branch on the fast path.
 */
#ifdef UHP_TEST_HOOKS
static __thread int tls_force_ring = -1;

void uhp__set_thread_ring(int ring)
{
	tls_force_ring = ring;
}
#endif

static inline unsigned pick_ring(const struct uhp_channel *ch)
{
#ifdef UHP_TEST_HOOKS
	if (tls_force_ring >= 0)
		return (unsigned)tls_force_ring < ch->nr_rings ? (unsigned)tls_force_ring : 0;
#endif
	/* Written only by uhp_set_producer_ring(); any recent value is fine. */
	return __atomic_load_n(&ch->prod_ring, __ATOMIC_RELAXED);
}

UHP_API int uhp_set_producer_ring(struct uhp_channel *ch, unsigned ring)
{
	if (!ch || ring >= ch->nr_rings || ch->rings[ring].kernel ||
	    (ch->rings[ring].excl && (int)ring != ch->claimed))
		return -EINVAL;
	__atomic_store_n(&ch->prod_ring, ring, __ATOMIC_RELAXED);
	return 0;
}

UHP_API unsigned uhp_producer_ring(const struct uhp_channel *ch)
{
	return __atomic_load_n(&ch->prod_ring, __ATOMIC_RELAXED);
}

/* How many records (prefix[i] = bytes of records 0..i) fit between rp and wp. */
static inline unsigned fit(uint64_t wp, uint64_t rp, uint64_t ds,
			   const uint64_t *prefix, unsigned n)
{
	uint64_t used = wp - rp, room;
	unsigned k = 0;

	if (used > ds)		/* also catches rp > wp (hint ahead or corrupt) */
		return 0;
	room = ds - used;
	while (k < n && prefix[k] <= room)
		k++;
	return k;
}

/*
 * Reserve the first k >= 1 of n records (as many as fit, all of them when
 * possible) with one CAS on write_pos, or one store on an exclusive ring
 * (its only producer is us, see claim.c). Returns k and the start in *pos,
 * or -EAGAIN (not even one fits) or -EUCLEAN (shared positions corrupt).
 */
static int reserve(struct uhp_ring *r, uint64_t ds, const uint64_t *prefix,
		   unsigned n, uint64_t *pos)
{
	__u64 wp = __atomic_load_n(&r->prod->write_pos, __ATOMIC_RELAXED);

	for (unsigned tries = 0; tries < UHP_RESERVE_MAX_TRIES; tries++) {
		uint64_t rp;
		unsigned k;

		if (uhp_unlikely(wp & (UHP_REC_ALIGN - 1)))
			return -EUCLEAN;
		/* Pairs with the store-release of the hint below. */
		rp = __atomic_load_n(&r->prod->cached_read_pos, __ATOMIC_ACQUIRE);
		k = fit(wp, rp, ds, prefix, n);
		if (k < n) {
			/*
			 * Looks full with the hint: read the real read_pos.
			 * Pairs with the consumer's store-release in
			 * uhp__ring_consume(): its reads of the space we are
			 * about to reuse are finished.
			 */
			rp = __atomic_load_n(&r->cons->read_pos, __ATOMIC_ACQUIRE);
			if (uhp_unlikely((int64_t)(wp - rp) < 0)) {
				/* our wp is stale, or read_pos is garbage */
				uint64_t now = __atomic_load_n(&r->prod->write_pos,
							       __ATOMIC_RELAXED);
				if (now != wp) {
					wp = now;
					continue;
				}
				return -EUCLEAN;
			}
			if (uhp_unlikely(wp - rp > ds))
				return -EUCLEAN;
			k = fit(wp, rp, ds, prefix, n);
			if (k == 0) {
				UHP_PROBE2(ring_full, r->prod, wp - rp);
				return -EAGAIN;
			}
			/* Publish the hint; pairs with the load-acquire above. */
			__atomic_store_n(&r->prod->cached_read_pos, rp,
					 __ATOMIC_RELEASE);
		}
		if (r->excl) {
			/* Relaxed: the consumer learns of the records from
			 * their tags' store-release, which follows. */
			__atomic_store_n(&r->prod->write_pos, wp + prefix[k - 1],
					 __ATOMIC_RELAXED);
			*pos = wp;
			return (int)k;
		}
		/* On failure wp is reloaded and the space is checked again. */
		if (__atomic_compare_exchange_n(&r->prod->write_pos, &wp,
						wp + prefix[k - 1], true,
						__ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
			*pos = wp;
			return (int)k;
		}
	}
	/* Every failed CAS means another producer got space, so only a peer
	 * rewriting write_pos nonstop gets here: answer as for a full ring. */
	return -EAGAIN;
}

/* Step 1 of the publish: length known, record not complete. */
static inline struct uhp_rec_hdr *rec_begin(struct uhp_ring *r, uint64_t pos,
					    uint32_t len)
{
	struct uhp_rec_hdr *h = rec_at(r, pos);

	h->len = len;
	h->type = 0;
	h->flags = 0;
	h->src = 0;
	h->dst = 0;
	h->seq = 0;
	h->crc = 0;
	h->__reserved = 0;
	/* Pairs with the consumer's load-acquire of the tag: a consumer that
	 * sees BUSY (stall recovery) also sees len. */
	__atomic_store_n(&h->tag, pos ^ r->salt ^ UHP_TAG_BUSY, __ATOMIC_RELEASE);
	return h;
}

/* Step 2: fill the header, seal it with the CRC, commit. */
static inline void rec_finish(struct uhp_ring *r, uint64_t pos,
			      struct uhp_rec_hdr *h, uint32_t len,
			      const struct uhp_meta *meta, uint16_t flags)
{
	h->len = len;
	h->flags = flags;
	if (meta) {
		h->type = meta->type;
		h->src = meta->src;
		h->dst = meta->dst;
		h->seq = meta->seq;
	}
	h->crc = uhp__rec_crc(h, h + 1, len);
	/* Pairs with the consumer's load-acquire of the tag in
	 * uhp__ring_head(): header, payload and crc are visible first. */
	__atomic_store_n(&h->tag, pos ^ r->salt, __ATOMIC_RELEASE);
}

/*
 * The copy-in senders (uhp_send, uhp_send_batch): the CRC is computed over a
 * private header and the caller's buffer, never read back from the ring. The
 * record's lines are the ones the consumer polls; loading our own fresh
 * stores to them back (the CRC did, through rec_finish) waits until those
 * lines have come back from the consumer's cache, once per record.
 */
static inline void rec_put(struct uhp_ring *r, uint64_t pos, const void *buf,
			   uint32_t len, const struct uhp_meta *meta)
{
	struct uhp_rec_hdr lh = { .len = len }, *h = rec_at(r, pos);

	if (meta) {
		lh.type = meta->type;
		lh.src = meta->src;
		lh.dst = meta->dst;
		lh.seq = meta->seq;
	}
	lh.crc = uhp__rec_crc(&lh, buf, len);
	/* Everything but the tag; the header is filled, crc included. */
	memcpy(&h->len, &lh.len, UHP_REC_HDR_SIZE - sizeof(h->tag));
	/* As in rec_begin(): a consumer that sees BUSY also sees len. */
	__atomic_store_n(&h->tag, pos ^ r->salt ^ UHP_TAG_BUSY, __ATOMIC_RELEASE);
	if (len)
		uhp__copy_payload(h + 1, buf, len);
	/* As in rec_finish(): header and payload are visible first. */
	__atomic_store_n(&h->tag, pos ^ r->salt, __ATOMIC_RELEASE);
}

/*
 * The header's CRC'd bytes [8, 32) as three little-endian qwords, the form
 * uhp__rec_crc_copy() takes: len | type << 32 | flags << 48, src | dst << 32,
 * seq.
 */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
	       "the record header qwords are little-endian");
_Static_assert(offsetof(struct uhp_meta, seq) == 0 &&
	       offsetof(struct uhp_meta, src) == 8 &&
	       offsetof(struct uhp_meta, dst) == 12 &&
	       offsetof(struct uhp_meta, type) == 16 &&
	       offsetof(struct uhp_meta, flags) == 18 &&
	       offsetof(struct uhp_meta, ring) == 20,
	       "struct uhp_meta: seq, src|dst, type|flags|ring as qwords");
_Static_assert(offsetof(struct uhp_rec_hdr, len) == 8 &&
	       offsetof(struct uhp_rec_hdr, type) == 12 &&
	       offsetof(struct uhp_rec_hdr, flags) == 14 &&
	       offsetof(struct uhp_rec_hdr, src) == 16 &&
	       offsetof(struct uhp_rec_hdr, dst) == 20 &&
	       offsetof(struct uhp_rec_hdr, seq) == 24 &&
	       offsetof(struct uhp_rec_hdr, crc) == 32 &&
	       offsetof(struct uhp_rec_hdr, __reserved) == 36,
	       "record header layout");

/* uhp__seal_copy_generic() or _sse42() (seal.h) */
typedef uint32_t (*seal_copy_fn)(void *dst, const void *src, uint32_t len,
				 uint64_t q0, uint64_t q1, uint64_t q2);

/*
 * The send and receive fast paths come in one variant per seal path: a
 * body inlined (always_inline) into a function per path, given that
 * path's copy-and-CRC routine as a constant, so the common case of a send
 * or a receive makes no call at all (a call there cost ~60 instructions per
 * send+recv in arguments, spills and the indirect jump). The public
 * functions pick the variant with one compare (seal_sse42()).
 */
static inline bool seal_sse42(void)
{
	int path = __atomic_load_n(&uhp__seal_path, __ATOMIC_RELAXED);

	/* The common case is one compare; only the first call chooses. */
	if (uhp_likely(path == UHP_SEAL_SSE42))
		return true;
	return uhp_unlikely(path == 0) && uhp__seal_choose() == UHP_SEAL_SSE42;
}
#if defined(__x86_64__)
#define UHP_T_SSE42	__attribute__((target("sse4.2")))
#endif

/*
 * rec_put() for a payload of at most UHP_SEAL_COPY_MAX bytes: the header
 * goes out of registers, and the payload is copied and CRC'd in one pass
 * (seal.h). The same two-step publish.
 */
static inline __attribute__((always_inline)) void
rec_put_small(struct uhp_ring *r, uint64_t pos, const void *buf, uint32_t len,
	      const struct uhp_meta *meta, seal_copy_fn seal_copy)
{
	struct uhp_rec_hdr *h = rec_at(r, pos);
	unsigned char *b = (unsigned char *)h;
	uint64_t q0 = len, q1 = 0, q2 = 0, crc;

	if (meta) {
		/* src and dst side by side in both: one load (see below) */
		q0 |= (uint64_t)meta->type << 32;
		memcpy(&q1, (const char *)meta + offsetof(struct uhp_meta, src), 8);
		q2 = meta->seq;
	}
	memcpy(b + 8, &q0, 8);
	memcpy(b + 16, &q1, 8);
	memcpy(b + 24, &q2, 8);
	/* As in rec_begin(): a consumer that sees BUSY also sees len. */
	__atomic_store_n(&h->tag, pos ^ r->salt ^ UHP_TAG_BUSY, __ATOMIC_RELEASE);
	crc = seal_copy(h + 1, buf, len, q0, q1, q2);
	memcpy(b + 32, &crc, 8);	/* crc, and __reserved = 0 */
	/* As in rec_finish(): header and payload are visible first. */
	__atomic_store_n(&h->tag, pos ^ r->salt, __ATOMIC_RELEASE);
}

/*
 * After committing: count the records sent (n, 0 for a discard) and wake
 * the consumer if it announced it is going to sleep. A failed NOTIFY is
 * not reported: the record is in the ring, and a waiting consumer re-checks
 * at least every stall timeout (capped at 1 s) anyway.
 */
static inline void wake_check(struct uhp_channel *ch, struct uhp_ring *r,
			      unsigned n)
{
	/*
	 * Full barrier: the committed tag store is ordered before the
	 * need_wakeup load. Pairs with the fence in uhp_wait() between the
	 * consumer's need_wakeup store and its re-check of the rings: either
	 * it sees our record or we see need_wakeup.
	 *
	 * On x86 the counter's locked add is that barrier (reads and writes
	 * are not reordered with locked instructions: Intel SDM vol. 3A,
	 * "Memory Ordering in P6 and More Recent Processor Families"), and
	 * seq_cst keeps the compiler from moving the tag store
	 * below it or the need_wakeup load above it: one locked instruction
	 * per send instead of two, 10% of a 64 B send+recv (bench_throughput
	 * uhp_spin). Elsewhere a fence follows a relaxed add.
	 */
#if defined(__x86_64__) || defined(__i386__)
	__atomic_fetch_add(&ch->pstat.sent, n, __ATOMIC_SEQ_CST);
#else
	__atomic_fetch_add(&ch->pstat.sent, n, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
#endif
	if (uhp_unlikely(__atomic_load_n(&r->wake->need_wakeup, __ATOMIC_RELAXED)))
		(void)uhp_notify(ch);
}

/* uhp_send() for everything but the common case of send_body(). */
static __attribute__((noinline)) int send_slow(struct uhp_channel *ch,
					      const void *buf, uint32_t len,
					      const struct uhp_meta *meta)
{
	uint64_t total = UHP_REC_TOTAL(len), pos;
	struct uhp_ring *r;
	int ret;

	if (uhp_unlikely(!buf && len))
		return -EINVAL;
	if (uhp_unlikely(total > ch->max_total))
		return ch->max_total ? -EMSGSIZE : -EBADF;
	r = &ch->rings[pick_ring(ch)];
	ret = reserve(r, ch->data_size, &total, 1, &pos);
	if (ret < 0)
		return ret;
	rec_put(r, pos, buf, len, meta);
	wake_check(ch, r, 1);
	return 0;
}

/*
 * The common case: a payload of at most UHP_SEAL_COPY_MAX bytes, room by
 * the producers' hint, the CAS won the first time. Everything else is
 * send_slow(), so this body calls nothing and saves few registers.
 */
static inline __attribute__((always_inline)) int
send_body(struct uhp_channel *ch, const void *buf, uint32_t len,
	  const struct uhp_meta *meta, seal_copy_fn seal_copy)
{
	uint64_t total = UHP_REC_TOTAL(len), wp, rp;
	struct uhp_ring *r;

	/* !buf: send_slow() tells a zero-length record from a bad call */
	if (uhp_unlikely(!buf || len > UHP_SEAL_COPY_MAX ||
			 total > ch->max_total))
		return send_slow(ch, buf, len, meta);
	r = &ch->rings[pick_ring(ch)];
	wp = __atomic_load_n(&r->prod->write_pos, __ATOMIC_RELAXED);
	/* Pairs with the store-release of the hint in reserve(). */
	rp = __atomic_load_n(&r->prod->cached_read_pos, __ATOMIC_ACQUIRE);
	/* wp - rp <= ds - total: room, and rp not ahead of wp */
	if (uhp_unlikely((wp & (UHP_REC_ALIGN - 1)) ||
			 wp - rp > ch->data_size - total))
		return send_slow(ch, buf, len, meta);
	if (r->excl)	/* our claimed ring: a store, as in reserve() */
		__atomic_store_n(&r->prod->write_pos, wp + total, __ATOMIC_RELAXED);
	else if (uhp_unlikely(!__atomic_compare_exchange_n(&r->prod->write_pos,
							   &wp, wp + total, true,
							   __ATOMIC_RELAXED,
							   __ATOMIC_RELAXED)))
		return send_slow(ch, buf, len, meta);
	rec_put_small(r, wp, buf, len, meta, seal_copy);
	wake_check(ch, r, 1);
	return 0;
}

static __attribute__((noinline)) int
send_generic(struct uhp_channel *ch, const void *buf, uint32_t len,
	     const struct uhp_meta *meta)
{
	return send_body(ch, buf, len, meta, uhp__seal_copy_generic);
}

#if defined(__x86_64__)
UHP_T_SSE42 static int send_sse42(struct uhp_channel *ch, const void *buf,
				  uint32_t len, const struct uhp_meta *meta)
{
	return send_body(ch, buf, len, meta, uhp__seal_copy_sse42);
}
#endif

UHP_API int uhp_send(struct uhp_channel *ch, const void *buf, uint32_t len,
		     const struct uhp_meta *meta)
{
#if defined(__x86_64__)
	if (seal_sse42())
		return send_sse42(ch, buf, len, meta);
#endif
	return send_generic(ch, buf, len, meta);
}

UHP_API int uhp_reserve(struct uhp_channel *ch, uint32_t len, struct uhp_txn *t)
{
	uint64_t total = UHP_REC_TOTAL(len), pos;
	unsigned k;
	int ret;

	if (uhp_unlikely(!t))
		return -EINVAL;
	if (uhp_unlikely(total > ch->max_total))
		return ch->max_total ? -EMSGSIZE : -EBADF;
	k = pick_ring(ch);
	ret = reserve(&ch->rings[k], ch->data_size, &total, 1, &pos);
	if (ret < 0)
		return ret;
	t->payload = rec_begin(&ch->rings[k], pos, len) + 1;
	t->len = len;
	t->ring = k;
	t->pos = pos;
	return 0;
}

/* The header of a live reservation made through t, or NULL. */
static struct uhp_rec_hdr *txn_hdr(struct uhp_channel *ch,
				   const struct uhp_txn *t)
{
	struct uhp_ring *r;
	struct uhp_rec_hdr *h;

	if (!t || t->ring >= ch->nr_rings)
		return NULL;
	r = &ch->rings[t->ring];
	h = rec_at(r, t->pos);
	/* Our own BUSY store; relaxed is enough to recognise it. */
	if (__atomic_load_n(&h->tag, __ATOMIC_RELAXED) !=
	    (t->pos ^ r->salt ^ UHP_TAG_BUSY) || (void *)(h + 1) != t->payload)
		return NULL;
	return h;
}

UHP_API int uhp_commit(struct uhp_channel *ch, struct uhp_txn *t,
		       const struct uhp_meta *meta)
{
	struct uhp_rec_hdr *h = txn_hdr(ch, t);

	if (!h)
		return -EINVAL;
	rec_finish(&ch->rings[t->ring], t->pos, h, t->len, meta, 0);
	wake_check(ch, &ch->rings[t->ring], 1);
	t->payload = NULL;
	return 0;
}

UHP_API int uhp_discard(struct uhp_channel *ch, struct uhp_txn *t)
{
	struct uhp_rec_hdr *h = txn_hdr(ch, t);

	if (!h)
		return -EINVAL;
	rec_finish(&ch->rings[t->ring], t->pos, h, t->len, NULL,
		   UHP_REC_F_DISCARD);
	/* The consumer may be waiting for this slot to clear. */
	wake_check(ch, &ch->rings[t->ring], 0);
	t->payload = NULL;
	return 0;
}

#define UHP_BATCH_CHUNK 64

static inline __attribute__((always_inline)) int
send_batch_body(struct uhp_channel *ch, const struct uhp_iov_msg *msgs,
		unsigned n, seal_copy_fn seal_copy)
{
	uint64_t prefix[UHP_BATCH_CHUNK];
	struct uhp_ring *r;
	unsigned done = 0;
	int err = 0;

	if (n && !msgs)
		return -EINVAL;
	r = &ch->rings[pick_ring(ch)];
	while (done < n && !err) {
		uint64_t sum = 0, pos;
		unsigned m = 0;
		int k;

		/* Prefix sums of the next chunk, up to the first bad message. */
		for (; m < UHP_BATCH_CHUNK && done + m < n; m++) {
			const struct uhp_iov_msg *msg = &msgs[done + m];
			uint64_t total = UHP_REC_TOTAL(msg->len);

			if (!msg->buf && msg->len) {
				err = -EINVAL;
				break;
			}
			if (total > ch->max_total) {
				err = ch->max_total ? -EMSGSIZE : -EBADF;
				break;
			}
			sum += total;
			prefix[m] = sum;
		}
		if (m == 0)
			break;
		k = reserve(r, ch->data_size, prefix, m, &pos);
		if (k < 0) {
			err = k;
			break;
		}
		for (int i = 0; i < k; i++) {
			const struct uhp_iov_msg *msg = &msgs[done + i];
			uint64_t at = pos + (i ? prefix[i - 1] : 0);

			if (uhp_likely(msg->len <= UHP_SEAL_COPY_MAX))
				rec_put_small(r, at, msg->buf, msg->len,
					      &msg->meta, seal_copy);
			else
				rec_put(r, at, msg->buf, msg->len, &msg->meta);
		}
		done += (unsigned)k;
		if ((unsigned)k < m)
			break;		/* ring full */
	}
	if (done) {
		wake_check(ch, r, done);
		return (int)done;
	}
	return err;
}

static __attribute__((noinline)) int
send_batch_generic(struct uhp_channel *ch, const struct uhp_iov_msg *msgs,
		   unsigned n)
{
	return send_batch_body(ch, msgs, n, uhp__seal_copy_generic);
}

#if defined(__x86_64__)
UHP_T_SSE42 static int send_batch_sse42(struct uhp_channel *ch,
					const struct uhp_iov_msg *msgs,
					unsigned n)
{
	return send_batch_body(ch, msgs, n, uhp__seal_copy_sse42);
}
#endif

UHP_API int uhp_send_batch(struct uhp_channel *ch,
			   const struct uhp_iov_msg *msgs, unsigned n)
{
#if defined(__x86_64__)
	if (seal_sse42())
		return send_batch_sse42(ch, msgs, n);
#endif
	return send_batch_generic(ch, msgs, n);
}

/* ---- 3. consumer ---- */

void uhp__ring_consume(struct uhp_channel *ch, struct uhp_ring *r,
		       uint64_t newpos)
{
	(void)ch;
	/* The stall clock needs no reset: it runs for stall_pos only. */
	r->rpos = newpos;
	/* Pairs with the producers' load-acquire of read_pos in reserve():
	 * our reads of the record happen before they reuse its space. */
	__atomic_store_n(&r->cons->read_pos, newpos, __ATOMIC_RELEASE);
}

/*
 * The committed record at the head of ring k, header copied into hd.
 * Discarded records are consumed on the way. Returns 0, -EAGAIN (nothing
 * committed, stall recovery may have run), or -EUCLEAN (committed tag but an
 * impossible length: the caller skips it with uhp__ring_skip_garbage()).
 */
int uhp__ring_head(struct uhp_channel *ch, unsigned k, struct uhp_head *hd)
{
	struct uhp_ring *r = &ch->rings[k];

	for (;;) {
		uint64_t pos = r->rpos, tag, total;
		struct uhp_rec_hdr *h = rec_at(r, pos);

		/* Pairs with the producer's store-release of the tag
		 * (rec_begin/rec_finish): what it wrote before is visible. */
		tag = __atomic_load_n(&h->tag, __ATOMIC_ACQUIRE);
		if (uhp_unlikely(tag != (pos ^ r->salt))) {
			/* Nothing here: see UHP_STALL_CHECK_EVERY. */
			if (++r->idle_polls % UHP_STALL_CHECK_EVERY)
				return -EAGAIN;
			if (uhp__ring_stalled(ch, r, tag) == -EAGAIN)
				return -EAGAIN;
			continue;	/* recovery moved rpos */
		}
		memcpy(&hd->h, h, sizeof(hd->h));	/* one read of the header */
		total = UHP_REC_TOTAL(hd->h.len);
		/* See "Lengths" at the top: the ring bounds them, not write_pos. */
		if (uhp_unlikely(total > ch->data_size))
			return -EUCLEAN;
		if (uhp_unlikely(hd->h.flags & UHP_REC_F_DISCARD)) {
			uhp__ring_consume(ch, r, pos + total);
			continue;
		}
		hd->rec = (const unsigned char *)h;
		hd->pos = pos;
		hd->total = total;
		hd->ring = k;
		return 0;
	}
}

/* First ring, starting at the round-robin cursor, with something to say. */
static int head_any(struct uhp_channel *ch, struct uhp_head *hd)
{
	unsigned nr = ch->nr_rings;

	for (unsigned i = 0; i < nr; i++) {
		unsigned k = ch->rr + i;
		int ret;

		if (k >= nr)
			k -= nr;
		ret = uhp__ring_head(ch, k, hd);
		if (ret != -EAGAIN) {
			hd->ring = k;
			return ret;
		}
	}
	return -EAGAIN;
}

bool uhp__ready(struct uhp_channel *ch)
{
	struct uhp_head hd;

	return head_any(ch, &hd) != -EAGAIN;
}

static inline void stat_add(uint64_t *c, uint64_t n)
{
	uhp__count(c, n);	/* single writer: the consumer */
}

static inline void stat_inc(uint64_t *c)
{
	stat_add(c, 1);
}

/*
 * A record was taken from ring k: the cursor stays there for
 * UHP_RR_QUANTUM records in a row, then moves to the next ring (a turn
 * ends early when the ring runs dry: head_any() moves on).
 */
static inline void rr_step(struct uhp_channel *ch, unsigned k)
{
	/* k is ch->rr */
	if (--ch->rr_left == 0) {
		ch->rr = k + 1 < ch->nr_rings ? k + 1 : 0;
		ch->rr_left = UHP_RR_QUANTUM;
	}
}

static inline void rr_taken(struct uhp_channel *ch, unsigned k)
{
	if (k != ch->rr) {
		ch->rr = k;
		ch->rr_left = UHP_RR_QUANTUM;
	}
	rr_step(ch, k);
}

/* n records from ring k at once (uhp_release_batch()): one turn's worth. */
static void rr_taken_n(struct uhp_channel *ch, unsigned k, unsigned n)
{
	if (k != ch->rr) {
		ch->rr = k;
		ch->rr_left = UHP_RR_QUANTUM;
	}
	if (n >= ch->rr_left) {
		ch->rr = k + 1 < ch->nr_rings ? k + 1 : 0;
		ch->rr_left = UHP_RR_QUANTUM;
	} else {
		ch->rr_left -= n;
	}
}

/* Consume the head record of hd->ring and move the round-robin cursor. */
static void take(struct uhp_channel *ch, const struct uhp_head *hd, bool good)
{
	struct uhp_ring *r = &ch->rings[hd->ring];

	uhp__ring_consume(ch, r, hd->pos + hd->total);
	uhp__count(&r->cons->records, 1);
	if (!good) {
		UHP_PROBE3(bad, ch, hd->ring, hd->pos);
		stat_inc(&ch->cstat.crc_errors);
		uhp__count(&r->cons->bad, 1);
	}
	rr_taken(ch, hd->ring);
}

static void meta_fill(struct uhp_channel *ch, struct uhp_meta *m,
		      const struct uhp_head *hd)
{
	m->seq = hd->h.seq;
	m->src = hd->h.src;
	m->dst = hd->h.dst;
	m->type = hd->h.type;
	/*
	 * UHP_REC_F_KERNEL means "from a kernel producer", which only a
	 * kernel ring can say: any producer can write the bit on a user ring.
	 */
	m->flags = ch->rings[hd->ring].kernel ? hd->h.flags :
		   hd->h.flags & ~UHP_REC_F_KERNEL;
	m->ring = hd->ring;
}

/* -EBADMSG without consuming when !consume_bad (batch: report next call). */
/*
 * A committed head whose CRC fails: is it a record at all? Only now is
 * write_pos read (see "Lengths" at the top). A tag where nothing is
 * reserved is no record (-EAGAIN: a producer will overwrite it); a length
 * past write_pos is garbage (-EUCLEAN: skip it with
 * uhp__ring_skip_garbage(), which finds the next record); else 0: a
 * damaged record, consumed as one.
 */
static int bad_record(const struct uhp_channel *ch, const struct uhp_head *hd)
{
	/* Relaxed: the producers' CAS preceded their release of the tag. */
	uint64_t ahead = __atomic_load_n(&ch->rings[hd->ring].prod->write_pos,
					 __ATOMIC_RELAXED) - hd->pos;

	if ((int64_t)ahead < UHP_REC_ALIGN)
		return -EAGAIN;
	return hd->total > ahead ? -EUCLEAN : 0;
}

static ssize_t recv_slow(struct uhp_channel *ch, void *buf, size_t cap,
			 struct uhp_meta *meta_out, bool consume_bad)
{
	struct uhp_head hd;
	int ret;

	if (uhp_unlikely(!ch->consumer))
		return -EPERM;
	if (uhp_unlikely(!buf && cap))
		return -EINVAL;
	ret = head_any(ch, &hd);
	if (uhp_unlikely(ret == -EUCLEAN)) {
		if (consume_bad) {
			uhp__ring_skip_garbage(ch, &ch->rings[hd.ring]);
			stat_inc(&ch->cstat.crc_errors);
		}
		return -EBADMSG;
	}
	if (ret)
		return ret;
	if (hd.h.len > cap)
		return -EMSGSIZE;
	if (hd.h.len)
		uhp__copy_payload(buf, hd.rec + UHP_REC_HDR_SIZE, hd.h.len);
	/* Check what we return: our copies of header and payload. */
	if (uhp_unlikely(uhp__rec_crc(&hd.h, buf, hd.h.len) != hd.h.crc)) {
		ret = bad_record(ch, &hd);
		if (ret == -EAGAIN)
			return ret;
		if (consume_bad) {
			if (ret == -EUCLEAN) {
				uhp__ring_skip_garbage(ch, &ch->rings[hd.ring]);
				stat_inc(&ch->cstat.crc_errors);
			} else {
				take(ch, &hd, false);
			}
		}
		return -EBADMSG;
	}
	take(ch, &hd, true);
	if (meta_out)
		meta_fill(ch, meta_out, &hd);
	return hd.h.len;
}

/*
 * The common case first: a committed record of at most UHP_SEAL_COPY_MAX
 * bytes at the head of the ring the round-robin cursor points to, whose
 * CRC checks. Its header is read once into registers (the private copy),
 * the payload copied and CRC'd in one pass. Anything else (no record there,
 * another ring, a discard, a bad length or CRC, a long record) goes to
 * recv_slow(), which looks again from the start.
 */
/* recv_fast(): "not the common case, take recv_slow()" (no errno value). */
#define RECV_SLOW	(-((ssize_t)1 << 40))

static inline __attribute__((always_inline)) ssize_t
recv_fast(struct uhp_channel *ch, void *buf, size_t cap,
	  struct uhp_meta *meta_out, seal_copy_fn seal_copy, bool publish)
{
	unsigned k = ch->rr;
	struct uhp_ring *r = &ch->rings[k];
	uint64_t pos = r->rpos, q0, q1, q2, q3;
	const unsigned char *b = (const unsigned char *)rec_at(r, pos);
	uint32_t len;

	/* !buf: recv_slow() tells a zero-length record from a bad call */
	if (uhp_unlikely(!ch->consumer || !buf))
		return RECV_SLOW;
	/* Pairs with the producer's store-release of the committed tag. */
	if (__atomic_load_n((const uint64_t *)b, __ATOMIC_ACQUIRE) != (pos ^ r->salt))
		return RECV_SLOW;
	memcpy(&q0, b + 8, 8);
	memcpy(&q1, b + 16, 8);
	memcpy(&q2, b + 24, 8);
	memcpy(&q3, b + 32, 8);
	len = (uint32_t)q0;
	if (uhp_unlikely(len > UHP_SEAL_COPY_MAX || len > cap ||
			 (q0 & (uint64_t)UHP_REC_F_DISCARD << 48) ||
			 seal_copy(buf, b + UHP_REC_HDR_SIZE, len,
				   q0, q1, q2) != (uint32_t)q3))
		return RECV_SLOW;
	if (publish) {
		uhp__ring_consume(ch, r, pos + UHP_REC_TOTAL(len));
		uhp__count(&r->cons->records, 1);
	} else {
		/* The caller stores read_pos and counts (recv_batch_body()). */
		r->rpos = pos + UHP_REC_TOTAL(len);
	}
	rr_step(ch, k);		/* k is ch->rr */
	if (meta_out) {
		/* type | flags << 16 | ring << 32; see the layout asserts */
		uint64_t tfr = q0 >> 32 | (uint64_t)k << 32;

		/* As in meta_fill(): only kernel rings say UHP_REC_F_KERNEL. */
		if (!r->kernel)
			tfr &= ~((uint64_t)UHP_REC_F_KERNEL << 16);
		/* From the struct's base: each store spans two members. */
		memcpy(meta_out, &q2, 8);
		memcpy((char *)meta_out + offsetof(struct uhp_meta, src), &q1, 8);
		memcpy((char *)meta_out + offsetof(struct uhp_meta, type), &tfr, 8);
	}
	return len;
}

/*
 * The cursor's ring has nothing: move it to the next ring whose head is
 * committed, if any (a new turn there), so the fast path can take that
 * record. True if it moved. Only tags are read: everything else is the
 * fast path's to check, and an empty channel is recv_slow()'s (stall
 * checks).
 */
static __attribute__((noinline)) bool rr_to_ready(struct uhp_channel *ch)
{
	unsigned nr = ch->nr_rings;

	for (unsigned i = 1; i < nr; i++) {
		unsigned k = ch->rr + i < nr ? ch->rr + i : ch->rr + i - nr;
		struct uhp_ring *r = &ch->rings[k];

		/* Pairs with the producer's store-release of the tag. */
		if (__atomic_load_n(&rec_at(r, r->rpos)->tag, __ATOMIC_ACQUIRE) ==
		    (r->rpos ^ r->salt)) {
			ch->rr = k;
			ch->rr_left = UHP_RR_QUANTUM;
			return true;
		}
	}
	return false;
}

typedef ssize_t (*recv_fn)(struct uhp_channel *ch, void *buf, size_t cap,
			  struct uhp_meta *meta_out);

/*
 * uhp_recv(): a bad record is consumed (and counted) as it is reported.
 * When the cursor's ring is dry but another ring's head is committed, the
 * cursor moves there and 'again' (this body without that step, so it runs
 * once) takes the record on the fast path.
 */
static inline __attribute__((always_inline)) ssize_t
recv_body(struct uhp_channel *ch, void *buf, size_t cap,
	  struct uhp_meta *meta_out, seal_copy_fn seal_copy, recv_fn again)
{
	ssize_t len = recv_fast(ch, buf, cap, meta_out, seal_copy, true);

	if (uhp_unlikely(len == RECV_SLOW)) {
		if (again && ch->consumer && rr_to_ready(ch))
			return again(ch, buf, cap, meta_out);
		return recv_slow(ch, buf, cap, meta_out, true);
	}
	return len;
}

/* Publish ring k's read position (see uhp__ring_consume()) after a run. */
static inline void publish_run(struct uhp_channel *ch, unsigned k, unsigned run)
{
	struct uhp_ring *r = &ch->rings[k];

	/* Pairs with the producers' load-acquire of read_pos in reserve(). */
	__atomic_store_n(&r->cons->read_pos, r->rpos, __ATOMIC_RELEASE);
	uhp__count(&r->cons->records, run);
}

/*
 * uhp_recv_batch(): the records the fast path takes move only the private
 * read position; read_pos is stored once for a run of records from one
 * ring (when the batch ends, moves to another ring or needs recv_slow(),
 * which publishes its own), and 'received' is counted once per run.
 * Producers see the space a little later, never early.
 */
static inline __attribute__((always_inline)) int
recv_batch_body(struct uhp_channel *ch, struct uhp_rx_msg *msgs, unsigned n,
		seal_copy_fn seal_copy)
{
	unsigned i, run = 0, run_ring = 0;
	ssize_t len;

	if (n && !msgs)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		bool moved = false;
		unsigned k;
again:
		k = ch->rr;
		len = recv_fast(ch, msgs[i].buf, msgs[i].cap, &msgs[i].meta,
				seal_copy, false);
		if (uhp_likely(len != RECV_SLOW)) {
			if (run && run_ring != k) {
				publish_run(ch, run_ring, run);
				run = 0;
			}
			run_ring = k;
			run++;
			msgs[i].len = (uint32_t)len;
			continue;
		}
		/* As in recv_body(): another ring's head, on the fast path. */
		if (!moved && ch->consumer && rr_to_ready(ch)) {
			moved = true;
			goto again;
		}
		if (run) {
			publish_run(ch, run_ring, run);
			run = 0;
		}
		/* -EBADMSG without consuming unless first: reported next call */
		len = recv_slow(ch, msgs[i].buf, msgs[i].cap, &msgs[i].meta,
				i == 0);
		if (len < 0)
			return i ? (int)i : (int)len;
		msgs[i].len = (uint32_t)len;
	}
	if (run) {
		publish_run(ch, run_ring, run);
	}
	return (int)i;
}

static __attribute__((noinline)) ssize_t
recv_generic_once(struct uhp_channel *ch, void *buf, size_t cap,
		  struct uhp_meta *meta_out)
{
	return recv_body(ch, buf, cap, meta_out, uhp__seal_copy_generic, NULL);
}

static __attribute__((noinline)) ssize_t
recv_generic(struct uhp_channel *ch, void *buf, size_t cap,
	     struct uhp_meta *meta_out)
{
	return recv_body(ch, buf, cap, meta_out, uhp__seal_copy_generic,
			 recv_generic_once);
}

#if defined(__x86_64__)
UHP_T_SSE42 static __attribute__((noinline)) ssize_t
recv_sse42_once(struct uhp_channel *ch, void *buf, size_t cap,
		struct uhp_meta *meta_out)
{
	return recv_body(ch, buf, cap, meta_out, uhp__seal_copy_sse42, NULL);
}

UHP_T_SSE42 static ssize_t recv_sse42(struct uhp_channel *ch, void *buf,
				      size_t cap, struct uhp_meta *meta_out)
{
	return recv_body(ch, buf, cap, meta_out, uhp__seal_copy_sse42,
			 recv_sse42_once);
}
#endif

UHP_API ssize_t uhp_recv(struct uhp_channel *ch, void *buf, size_t cap,
			 struct uhp_meta *meta_out)
{
#if defined(__x86_64__)
	if (seal_sse42())
		return recv_sse42(ch, buf, cap, meta_out);
#endif
	return recv_generic(ch, buf, cap, meta_out);
}

static __attribute__((noinline)) int
recv_batch_generic(struct uhp_channel *ch, struct uhp_rx_msg *msgs, unsigned n)
{
	return recv_batch_body(ch, msgs, n, uhp__seal_copy_generic);
}

#if defined(__x86_64__)
UHP_T_SSE42 static int recv_batch_sse42(struct uhp_channel *ch,
					struct uhp_rx_msg *msgs, unsigned n)
{
	return recv_batch_body(ch, msgs, n, uhp__seal_copy_sse42);
}
#endif

UHP_API int uhp_recv_batch(struct uhp_channel *ch, struct uhp_rx_msg *msgs,
			   unsigned n)
{
#if defined(__x86_64__)
	if (seal_sse42())
		return recv_batch_sse42(ch, msgs, n);
#endif
	return recv_batch_generic(ch, msgs, n);
}

/* rx for the checked record hd, which now ends what this handle peeked. */
static void rx_fill(struct uhp_channel *ch, struct uhp_rx *rx,
		    const struct uhp_head *hd)
{
	rx->payload = hd->rec + UHP_REC_HDR_SIZE;
	rx->len = hd->h.len;
	meta_fill(ch, &rx->meta, hd);
	rx->pos = hd->pos;
	ch->rings[hd->ring].peek_end = hd->pos + hd->total;
	rx->crc = hd->h.crc;
	rx->pad_ = 0;
}

static int peek_slow(struct uhp_channel *ch, struct uhp_rx *rx)
{
	struct uhp_head hd;
	const void *payload;
	int ret;

	if (uhp_unlikely(!ch->consumer))
		return -EPERM;
	if (uhp_unlikely(!rx))
		return -EINVAL;
	ret = head_any(ch, &hd);
	if (uhp_unlikely(ret == -EUCLEAN)) {
		uhp__ring_skip_garbage(ch, &ch->rings[hd.ring]);
		stat_inc(&ch->cstat.crc_errors);
		return -EBADMSG;
	}
	if (ret)
		return ret;
	payload = hd.rec + UHP_REC_HDR_SIZE;
	if (uhp_unlikely(uhp__rec_crc(&hd.h, payload, hd.h.len) != hd.h.crc)) {
		ret = bad_record(ch, &hd);
		if (ret == -EAGAIN)
			return ret;
		if (ret == -EUCLEAN) {
			uhp__ring_skip_garbage(ch, &ch->rings[hd.ring]);
			stat_inc(&ch->cstat.crc_errors);
		} else {
			take(ch, &hd, false);
		}
		return -EBADMSG;
	}
	rx_fill(ch, rx, &hd);
	return 0;
}

/* check_crc: uhp__seal_check_generic() or _sse42() (seal.h) */
typedef uint32_t (*seal_check_fn)(const void *src, uint32_t len,
				  uint64_t q0, uint64_t q1, uint64_t q2);

/*
 * The record after the last one peeked in ring k, in place, if it is
 * committed, whole, no discard and its CRC checks: true and rx filled
 * (what peek_end covers grows by it). Anything else ends a batch there, to
 * be met at the head by a later uhp_peek() (stall recovery, discards, bad
 * records: one place for them). The batch never spans more than the ring:
 * a header that claims more is not trusted.
 */
static bool peek_next(struct uhp_channel *ch, unsigned k, struct uhp_rx *rx)
{
	struct uhp_ring *r = &ch->rings[k];
	uint64_t pos = r->peek_end;
	const struct uhp_rec_hdr *h = rec_at(r, pos);
	struct uhp_head hd;

	/* Pairs with the producer's store-release of the committed tag. */
	if (__atomic_load_n(&h->tag, __ATOMIC_ACQUIRE) != (pos ^ r->salt))
		return false;
	memcpy(&hd.h, h, sizeof(hd.h));		/* one read of the header */
	hd.total = UHP_REC_TOTAL(hd.h.len);
	if (uhp_unlikely(hd.total > ch->data_size ||
			 pos + hd.total - r->rpos > ch->data_size ||
			 (hd.h.flags & UHP_REC_F_DISCARD)))
		return false;
	hd.rec = (const unsigned char *)h;
	if (uhp_unlikely(uhp__rec_crc(&hd.h, hd.rec + UHP_REC_HDR_SIZE,
				      hd.h.len) != hd.h.crc))
		return false;
	hd.pos = pos;
	hd.ring = k;
	rx_fill(ch, rx, &hd);
	return true;
}

/*
 * The record at pos of ring k, the common case only, as recv_fast() sees it
 * (same checks, the header read once into registers) but the CRC computed
 * in place and nothing copied or consumed: true and rx filled (peek_end at
 * its end). False for anything else: not committed, a discard, longer than
 * UHP_SEAL_COPY_MAX, a bad CRC, or (a batch) past a ring's worth from the
 * head.
 */
static inline __attribute__((always_inline)) bool
peek_rec(struct uhp_channel *ch, unsigned k, uint64_t pos, struct uhp_rx *rx,
	 seal_check_fn check_crc)
{
	struct uhp_ring *r = &ch->rings[k];
	const unsigned char *b = (const unsigned char *)rec_at(r, pos);
	uint64_t q0, q1, q2, q3, tfr;
	uint32_t len;

	/* Pairs with the producer's store-release of the committed tag. */
	if (__atomic_load_n((const uint64_t *)b, __ATOMIC_ACQUIRE) != (pos ^ r->salt))
		return false;
	memcpy(&q0, b + 8, 8);
	memcpy(&q1, b + 16, 8);
	memcpy(&q2, b + 24, 8);
	memcpy(&q3, b + 32, 8);
	len = (uint32_t)q0;
	if (uhp_unlikely(len > UHP_SEAL_COPY_MAX ||
			 pos + UHP_REC_TOTAL(len) - r->rpos > ch->data_size ||
			 (q0 & (uint64_t)UHP_REC_F_DISCARD << 48) ||
			 check_crc(b + UHP_REC_HDR_SIZE, len, q0, q1, q2) !=
			 (uint32_t)q3))
		return false;
	rx->payload = b + UHP_REC_HDR_SIZE;
	rx->len = len;
	tfr = q0 >> 32 | (uint64_t)k << 32;
	/* As in meta_fill(): only kernel rings say UHP_REC_F_KERNEL. */
	if (!r->kernel)
		tfr &= ~((uint64_t)UHP_REC_F_KERNEL << 16);
	memcpy(&rx->meta, &q2, 8);
	memcpy((char *)&rx->meta + offsetof(struct uhp_meta, src), &q1, 8);
	memcpy((char *)&rx->meta + offsetof(struct uhp_meta, type), &tfr, 8);
	rx->pos = pos;
	r->peek_end = pos + UHP_REC_TOTAL(len);
	rx->crc = (uint32_t)q3;
	rx->pad_ = 0;
	return true;
}

/* uhp_peek(): peek_rec() at the cursor's head, else peek_slow(). */
static inline __attribute__((always_inline)) int
peek_body(struct uhp_channel *ch, struct uhp_rx *rx, seal_check_fn check_crc)
{
	unsigned k = ch->rr;

	if (uhp_unlikely(!ch->consumer || !rx ||
			 !peek_rec(ch, k, ch->rings[k].rpos, rx, check_crc)))
		return peek_slow(ch, rx);
	return 0;
}

/*
 * uhp_peek_batch(): the head as uhp_peek() finds it, then the records after
 * it in that ring, each through peek_rec() or, when that says no (a long
 * record, say), peek_next(), which tells the rest apart; the first no
 * from both ends the batch.
 */
static inline __attribute__((always_inline)) int
peek_batch_body(struct uhp_channel *ch, struct uhp_rx *rx, unsigned n,
		seal_check_fn check_crc)
{
	struct uhp_ring *r;
	unsigned i, k;
	int ret;

	if (!n)
		return 0;
	ret = peek_body(ch, rx, check_crc);
	if (ret)
		return ret;
	k = rx[0].meta.ring;
	r = &ch->rings[k];
	for (i = 1; i < n; i++)
		if (!peek_rec(ch, k, r->peek_end, &rx[i], check_crc) &&
		    !peek_next(ch, k, &rx[i]))
			break;
	return (int)i;
}

static __attribute__((noinline)) int peek_generic(struct uhp_channel *ch,
						  struct uhp_rx *rx)
{
	return peek_body(ch, rx, uhp__seal_check_generic);
}

static __attribute__((noinline)) int
peek_batch_generic(struct uhp_channel *ch, struct uhp_rx *rx, unsigned n)
{
	return peek_batch_body(ch, rx, n, uhp__seal_check_generic);
}

#if defined(__x86_64__)
UHP_T_SSE42 static int peek_sse42(struct uhp_channel *ch, struct uhp_rx *rx)
{
	return peek_body(ch, rx, uhp__seal_check_sse42);
}

UHP_T_SSE42 static int peek_batch_sse42(struct uhp_channel *ch,
					struct uhp_rx *rx, unsigned n)
{
	return peek_batch_body(ch, rx, n, uhp__seal_check_sse42);
}
#endif

UHP_API int uhp_peek_batch(struct uhp_channel *ch, struct uhp_rx *rx,
			   unsigned n)
{
#if defined(__x86_64__)
	if (seal_sse42())
		return peek_batch_sse42(ch, rx, n);
#endif
	return peek_batch_generic(ch, rx, n);
}

UHP_API int uhp_peek(struct uhp_channel *ch, struct uhp_rx *rx)
{
#if defined(__x86_64__)
	if (seal_sse42())
		return peek_sse42(ch, rx);
#endif
	return peek_generic(ch, rx);
}

UHP_API int uhp_release(struct uhp_channel *ch, const struct uhp_rx *rx)
{
	struct uhp_head hd;

	if (!rx || !ch->consumer || rx->meta.ring >= ch->nr_rings ||
	    ch->rings[rx->meta.ring].rpos != rx->pos ||
	    ch->rings[rx->meta.ring].peek_end != rx->pos + UHP_REC_TOTAL(rx->len))
		return -EINVAL;
	hd.ring = rx->meta.ring;
	hd.pos = rx->pos;
	hd.total = UHP_REC_TOTAL(rx->len);
	take(ch, &hd, true);
	return 0;
}

/*
 * rx[0..n) must be what uhp_peek_batch() (or uhp_peek()) returned, in its
 * order, from the head of one ring: each starts where the one before ends,
 * its length is the one in the ring, and none ends past what was peeked. So
 * read_pos can only move to the end of a record this handle checked. One
 * read_pos store and one count for all of them.
 */
UHP_API int uhp_release_batch(struct uhp_channel *ch, const struct uhp_rx *rx,
			      unsigned n)
{
	const struct uhp_ring *r;
	uint64_t pos, peeked;
	unsigned k;

	if (!n)
		return 0;
	if (!rx || !ch->consumer || rx[0].meta.ring >= ch->nr_rings)
		return -EINVAL;
	k = rx[0].meta.ring;
	r = &ch->rings[k];
	pos = r->rpos;
	peeked = r->peek_end - pos;
	for (unsigned i = 0; i < n; i++) {
		if (rx[i].meta.ring != k || rx[i].pos != pos ||
		    UHP_REC_TOTAL(rx[i].len) > peeked - (pos - r->rpos) ||
		    /* Relaxed: a shared word, any value only refuses. */
		    __atomic_load_n(&rec_at(r, pos)->len, __ATOMIC_RELAXED) !=
		    rx[i].len)
			return -EINVAL;
		pos += UHP_REC_TOTAL(rx[i].len);
	}
	uhp__ring_consume(ch, &ch->rings[k], pos);
	uhp__count(&ch->rings[k].cons->records, n);
	rr_taken_n(ch, k, n);
	return 0;
}

UHP_API int uhp_stats(const struct uhp_channel *ch, struct uhp_stats *out)
{
	if (!ch || !out)
		return -EINVAL;
	out->sent = __atomic_load_n(&ch->pstat.sent, __ATOMIC_RELAXED);
	out->notifies = __atomic_load_n(&ch->pstat.notifies, __ATOMIC_RELAXED);
	out->crc_errors = __atomic_load_n(&ch->cstat.crc_errors, __ATOMIC_RELAXED);
	/*
	 * Records this handle took are counted once, in the rings' cons lines
	 * (which only the consumer writes); bad ones are counted there too.
	 */
	out->received = 0;
	if (ch->consumer) {
		for (unsigned k = 0; k < ch->nr_rings; k++)
			out->received += __atomic_load_n(&ch->rings[k].cons->records,
							 __ATOMIC_RELAXED) -
					 ch->rings[k].records_base;
		out->received -= out->crc_errors;
	}
	out->stalled_skips = __atomic_load_n(&ch->cstat.stalled_skips,
					     __ATOMIC_RELAXED);
	return 0;
}
