/* SPDX-License-Identifier: MIT */
/*
 * libuhp - userspace side of uhp message channels.
 *
 * A channel (created or attached through /dev/uhp) has one ring per NUMA
 * node, mapped into this process. Any number of producers (threads here and
 * in other processes) send records; exactly one consumer per channel receives
 * them. Sending and receiving make no system call; the only syscall on the
 * data path is UHP_IOC_NOTIFY, issued by a producer when the consumer has
 * announced that it is going to sleep (need_wakeup).
 *
 * Guarantees
 *  - Records sent through one handle arrive in the order they were committed
 *    (FIFO per handle, so per producer thread): a handle sends every record
 *    to one ring, its producer ring, which uhp_create()/uhp_attach() pick as
 *    the ring of the NUMA node the calling thread runs on. A thread that runs
 *    on another node produces locally through a handle of its own.
 *  - One consumer per channel, and inside a process one thread at a time
 *    calls the receive and wait functions of a struct uhp_channel. Producer
 *    functions may be called from many threads on the same struct uhp_channel.
 *  - Every record carries a CRC32C; a damaged one is reported (-EBADMSG) and
 *    skipped so it never wedges the channel.
 *  - A producer that reserved space and never committed (killed, stopped)
 *    stalls the ring only for the stall timeout (default 200 ms), after which
 *    the consumer skips the reservation (counted in stalled_skips). Residual
 *    risk: a producer that is merely stopped for longer than the timeout loses
 *    its record, and its late write lands in space that is free again; if
 *    that space was already reused, the newer record fails its CRC.
 *
 * Errors: every function that can fail returns a negative errno value; none
 * prints anything or relies on errno alone.
 */
#ifndef UHP_H
#define UHP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <linux/uhp.h>

#include "uhp_version.h"	/* generated from the top-level VERSION */

#ifdef __cplusplus
extern "C" {
#endif

#ifndef UHP_API
#define UHP_API __attribute__((visibility("default")))
#endif

/*
 * The library's version; uhp_version() says which one is linked, e.g. to
 * refuse a libuhp.so older than the header a program was built with.
 */
#define UHP_VERSION_NUM \
	((UHP_VERSION_MAJOR << 16) | (UHP_VERSION_MINOR << 8) | UHP_VERSION_PATCH)

/* UHP_VERSION_NUM of the library that runs (not of the header). */
UHP_API unsigned uhp_version(void);

#define UHP_DEFAULT_RING_SIZE		(1ULL << 20)
#define UHP_DEFAULT_MODE		0600
#define UHP_DEFAULT_STALL_TIMEOUT_NS	200000000ULL

/* Opaque handle: the channel fd, its ring mappings and private state. */
struct uhp_channel;

/*
 * Creation options. Start from UHP_CREATE_OPTS_INIT: a zeroed struct means
 * "single ring on node 0", not "defaults".
 */
struct uhp_create_opts {
	uint64_t ring_size;	/* data bytes per ring, power of two; 0: default */
	uint32_t mode;		/* permission bits checked by attach; 0: default */
	int node;		/* -1: one ring per node; >= 0: one ring on node */
	bool consumer;		/* the creating fd takes the consumer role */
	bool kernel_rings;	/* also rings kernel code produces into
				 * (UHP_CREATE_KERNEL_RINGS, kmod/uhp_kapi.h) */
	unsigned excl_rings;	/* exclusive rings for uhp_claim_ring(),
				 * at most UHP_EXCL_RINGS_MAX; 0: none */
};

#define UHP_CREATE_OPTS_INIT \
	{ .ring_size = UHP_DEFAULT_RING_SIZE, .mode = UHP_DEFAULT_MODE, \
	  .node = -1, .consumer = false, .kernel_rings = false, .excl_rings = 0 }

/* Record metadata. On send only type/src/dst/seq are used. */
struct uhp_meta {
	uint64_t seq;		/* chosen by the producer */
	uint32_t src;		/* source agent id */
	uint32_t dst;		/* destination agent id */
	uint16_t type;		/* application-defined */
	uint16_t flags;		/* receive only: UHP_REC_F_* of the record */
	uint32_t ring;		/* receive only: ring the record came from */
};

/* A reservation made by uhp_reserve(): write len bytes at payload. */
struct uhp_txn {
	void *payload;
	uint32_t len;
	uint32_t ring;		/* ring index (e.g. for uhp_verify) */
	uint64_t pos;		/* record position in that ring */
};

/* A record looked at in place by uhp_peek(); valid until uhp_release(). */
struct uhp_rx {
	const void *payload;	/* in the shared mapping: read-only, see uhp_peek() */
	uint32_t len;
	struct uhp_meta meta;	/* meta.ring: the ring it came from */
	uint64_t pos;		/* record position in that ring (uhp_verify) */
	/*
	 * The record's CRC32C as its producer sealed it and uhp_peek()
	 * checked it, for a forwarder to pass on instead of computing it
	 * again: ~uhp_crc32c(uhp_crc32c(~0U, header bytes
	 * [UHP_REC_CRC_HDR_OFF, +UHP_REC_CRC_HDR_LEN) = len, type, flags,
	 * src, dst, seq), payload, len) (<linux/uhp.h>, uhp(7)).
	 */
	uint32_t crc;
	uint32_t pad_;
};

/* One message of uhp_send_batch(). */
struct uhp_iov_msg {
	const void *buf;
	uint32_t len;
	struct uhp_meta meta;
};

/* One slot of uhp_recv_batch(). */
struct uhp_rx_msg {
	void *buf;		/* in */
	uint32_t cap;		/* in: bytes buf can hold */
	uint32_t len;		/* out: payload bytes received */
	struct uhp_meta meta;	/* out */
};

/* Counters of this handle (this process's view, not the channel's). */
struct uhp_stats {
	uint64_t sent;		/* records committed by producers on this handle */
	uint64_t received;	/* records delivered by recv/peek */
	uint64_t crc_errors;	/* records skipped for a bad CRC or garbage header */
	uint64_t stalled_skips;	/* reservations skipped after the stall timeout */
	uint64_t notifies;	/* UHP_IOC_NOTIFY calls (need_wakeup seen set) */
};

/* ---- control: /dev/uhp and the channel fd ---- */

/*
 * Open /dev/uhp (O_RDWR | O_CLOEXEC).
 * Returns the fd, or -ENOENT (no module), -EACCES, or another open() -errno.
 */
UHP_API int uhp_open(void);

/*
 * Create the channel 'name' (1..UHP_NAME_MAX-1 bytes of [A-Za-z0-9._-], not
 * starting with '.') on the /dev/uhp fd 'dev', map its rings and return a
 * handle in *out. opts NULL means UHP_CREATE_OPTS_INIT.
 * Returns 0, or -EINVAL (bad name/opts), -ENAMETOOLONG, -EEXIST (name taken),
 * -ENOMEM, -EPROTO (the kernel reported an unsupported ABI or inconsistent
 * geometry; the channel is unlinked again), -EOPNOTSUPP (the module cannot
 * double-map), or an ioctl()/mmap() -errno. Nothing is left behind on error.
 */
UHP_API int uhp_create(int dev, const char *name,
		       const struct uhp_create_opts *opts,
		       struct uhp_channel **out);

/*
 * Attach to the existing channel 'name'. flags: UHP_ATTACH_CONSUMER to take
 * the consumer role, or UHP_ATTACH_RDONLY for an observer: it needs only
 * read permission, maps everything read-only, and its uhp_send(),
 * uhp_send_batch() and uhp_reserve() return -EBADF (uhp_info() and poll()
 * on uhp_channel_fd() work; uhp_wait() is the consumer's: -EPERM).
 * Returns 0, or -EINVAL, -ENAMETOOLONG, -ENOENT (no such channel), -EACCES
 * (mode), -EBUSY (consumer role taken), -ENOMEM, -EPROTO, -EOPNOTSUPP, or an
 * ioctl()/mmap() -errno.
 */
UHP_API int uhp_attach(int dev, const char *name, unsigned flags,
		       struct uhp_channel **out);

/*
 * The named channels of the caller's namespace that it owns or may attach to
 * read-only (UHP_IOC_LIST), oldest first: up to cap entries into out after
 * skipping 'start'; *total (may be NULL) receives how many there are.
 * Returns the number written, or -EINVAL, -EFAULT, -ENOMEM, -ENOTTY (a
 * module without UHP_IOC_LIST), or another ioctl() -errno.
 */
UHP_API int uhp_list(int dev, unsigned start, struct uhp_list_entry *out,
		     unsigned cap, unsigned *total);

/*
 * Remove the name; the channel lives on while handles map it.
 * Returns 0, or -EINVAL, -ENAMETOOLONG, -ENOENT, -EACCES, -EBADF, -ENOTTY.
 */
UHP_API int uhp_unlink(int dev, const char *name);

/*
 * Ask the kernel about the channel. rings (may be NULL if cap is 0) receives
 * up to cap entries; out->nr_rings tells how many exist.
 * Returns 0, or -EINVAL, -EFAULT, or another ioctl() -errno.
 * On an in-memory channel the answer is synthesised (uid/gid/mode are 0).
 */
UHP_API int uhp_info(struct uhp_channel *ch, struct uhp_info *out,
		     struct uhp_ring_info *rings, unsigned cap);

/* Unmap the rings, close the channel fd and free the handle. NULL is a no-op. */
UHP_API void uhp_close(struct uhp_channel *ch);

/*
 * A pollable fd for the channel: its channel fd on /dev/uhp, for an arena's
 * consumer a FIFO its producers write to (see the arenas below; -EOPNOTSUPP
 * for an arena's producers), or a negative errno. It reports POLLIN when
 * a record waits, but producers only wake it while the consumer has
 * need_wakeup set: around a poll of your own, call uhp_prepare_sleep()
 * first and uhp_end_sleep() after (which also drains an arena's FIFO).
 * The fd stays the handle's: do not close it.
 */
UHP_API int uhp_channel_fd(const struct uhp_channel *ch);

/* Number of rings (>= 1). */
UHP_API unsigned uhp_nr_rings(const struct uhp_channel *ch);

/*
 * Bytes ring k holds now (write_pos - read_pos, as the shared pages say:
 * a snapshot, for display), and its size. Any handle, an observer's too.
 * Returns 0, -EINVAL (no ring k), or -EUCLEAN (positions no honest peer
 * writes: read_pos ahead of write_pos or more than a ring apart).
 */
UHP_API int uhp_ring_fill(const struct uhp_channel *ch, unsigned ring,
			  uint64_t *used, uint64_t *size);

/*
 * What ring k has seen, from its shared pages (a snapshot for tools:
 * producers' and consumers' own accounts, which any of them could write
 * wrongly). Set out->size = sizeof(*out) first: the struct grows like
 * struct uhp_open_opts (fields past a shorter size are not written).
 */
struct uhp_ring_stats {
	uint32_t size;		/* in: sizeof(struct uhp_ring_stats) */
	int32_t node;		/* NUMA node of the ring's pages */
	uint32_t flags;		/* UHP_RING_F_KERNEL, UHP_RING_F_EXCL */
	uint32_t pad_;
	uint64_t data_size;	/* bytes of data */
	uint64_t used;		/* bytes it holds now (uhp_ring_fill()) */
	uint64_t written;	/* bytes ever reserved: write_pos */
	uint64_t consumed;	/* bytes ever consumed: read_pos */
	uint64_t records;	/* records consumers took (bad included) */
	uint64_t bad;		/* records skipped: CRC or length wrong */
	uint64_t stalled;	/* reservations skipped after the stall timeout */
};

/* Returns 0, -EINVAL (no ring k, out NULL or out->size too small for the
 * first version), or -EUCLEAN (corrupt positions: used is 0, the rest set). */
UHP_API int uhp_ring_stats(const struct uhp_channel *ch, unsigned ring,
			   struct uhp_ring_stats *out);

/*
 * Wake the consumer (UHP_IOC_NOTIFY). Producers call this by themselves when
 * need_wakeup is set; explicit calls are rarely needed.
 * Returns 0, or an ioctl() -errno. A no-op on an in-memory channel.
 */
UHP_API int uhp_notify(struct uhp_channel *ch);

/*
 * Send through the kernel (UHP_IOC_SEND) into ring 'ring'; the kernel seals
 * it (it stays the caller's record: no UHP_REC_F_KERNEL, which only records
 * from kernel producers on kernel rings carry). *pos_out (may be NULL)
 * receives its position.
 * Returns 0, or -EAGAIN (ring full), -EINVAL, -EFAULT, -EMSGSIZE,
 * -EOPNOTSUPP (in-memory channel), or another ioctl() -errno.
 */
UHP_API int uhp_kernel_send(struct uhp_channel *ch, unsigned ring,
			    const void *buf, uint32_t len,
			    const struct uhp_meta *meta, uint64_t *pos_out);

/*
 * Have the kernel check the record at 'pos' of ring 'ring' (UHP_IOC_VERIFY).
 * len_out/crc_out (may be NULL) receive its payload length and the CRC the
 * kernel computed.
 * Returns 0 (CRC matches), -EBADMSG (len_out/crc_out are filled too),
 * -EAGAIN (not committed), -ERANGE (pos not in [read_pos, write_pos)),
 * -EUCLEAN (corrupt positions or length), -EINVAL (bad ring or unaligned
 * pos), -EOPNOTSUPP (in-memory channel), or another ioctl() -errno.
 */
UHP_API int uhp_verify(struct uhp_channel *ch, unsigned ring, uint64_t pos,
		       uint32_t *len_out, uint32_t *crc_out);

/* ---- producer fast path ---- */

/*
 * The ring this handle sends to (see Guarantees). uhp_set_producer_ring()
 * moves it, e.g. after the thread moved to another node: records sent before
 * the move may then be received after records sent after it, unless the old
 * ring was drained in between. Returns 0, or -EINVAL (ring out of range, or
 * a kernel ring: UHP_RING_F_KERNEL rings take records from the kernel only,
 * or an exclusive ring this handle has not claimed).
 */
UHP_API int uhp_set_producer_ring(struct uhp_channel *ch, unsigned ring);
UHP_API unsigned uhp_producer_ring(const struct uhp_channel *ch);

/*
 * Make this handle the only producer of one of the channel's exclusive
 * rings (uhp_create_opts.excl_rings; one on the caller's node if one is
 * free) and send there from now on: a single-producer ring, whose sends
 * advance write_pos with a plain store instead of a compare-and-swap, the
 * costliest instruction of a send. In exchange the handle must not send
 * from two threads at the same time (reserve/commit included): use one
 * handle per sending thread. The claim lasts until uhp_close(); a child
 * process made by fork() does not inherit it (its copy of the handle sends
 * to its node's shared ring). Returns the ring index, or -EBUSY (every
 * exclusive ring is claimed, or this handle holds one), -EBADF (observer),
 * -EOPNOTSUPP (an in-memory channel, or a module without
 * UHP_FEAT_EXCL_RINGS), or an ioctl() -errno.
 */
UHP_API int uhp_claim_ring(struct uhp_channel *ch);

/*
 * Copy one record into the ring of the caller's NUMA node (ring 0 if that
 * node has none). meta NULL means all zero.
 * Returns 0, or -EAGAIN (ring full), -EMSGSIZE (UHP_REC_TOTAL(len) exceeds
 * the ring), -EINVAL (buf NULL with len > 0), -EUCLEAN (the shared positions
 * are corrupt), -EBADF (a UHP_ATTACH_RDONLY handle). If the consumer sleeps, a NOTIFY follows the commit; its
 * failure is not reported (the record is sent, and a sleeping consumer
 * re-checks at least every stall timeout, at most 1 s, anyway).
 */
UHP_API int uhp_send(struct uhp_channel *ch, const void *buf, uint32_t len,
		     const struct uhp_meta *meta);

/*
 * Reserve room for a len-byte record; write the payload at t->payload, then
 * uhp_commit() or uhp_discard() it soon (a reservation older than the stall
 * timeout is skipped by the consumer).
 * Returns 0, or -EAGAIN, -EMSGSIZE, -EINVAL, -EUCLEAN, -EBADF.
 */
UHP_API int uhp_reserve(struct uhp_channel *ch, uint32_t len,
			struct uhp_txn *t);

/*
 * Seal (CRC) and publish a reservation. meta NULL means all zero.
 * Returns 0, or -EINVAL (t is not a live reservation on ch).
 */
UHP_API int uhp_commit(struct uhp_channel *ch, struct uhp_txn *t,
		       const struct uhp_meta *meta);

/*
 * Give a reservation back: it is published with UHP_REC_F_DISCARD and
 * consumers skip it. Returns 0, or -EINVAL (t is not a live reservation).
 */
UHP_API int uhp_discard(struct uhp_channel *ch, struct uhp_txn *t);

/*
 * Send up to n records with one reservation (one ring, one write_pos update
 * when the ring has room for all) and one wakeup check.
 * Returns the number sent (a prefix of msgs; fewer than n when the ring
 * fills up or a later message is invalid), or, when none was sent, -EAGAIN,
 * -EMSGSIZE, -EINVAL, -EUCLEAN, -EBADF. Returns 0 only for n == 0.
 */
UHP_API int uhp_send_batch(struct uhp_channel *ch,
			   const struct uhp_iov_msg *msgs, unsigned n);

/* ---- consumer fast path (consumer handles only) ---- */

/*
 * Receive the next record, taking the rings in turn (round robin: up to 32
 * records in a row from one ring, fewer when it runs dry).
 * meta_out may be NULL.
 * Returns the payload length, or -EAGAIN (nothing committed), -EMSGSIZE (cap
 * too small: the record stays), -EBADMSG (CRC mismatch or garbage header: the
 * record is consumed and counted), -EPERM (not the consumer), -EINVAL (buf
 * NULL with cap > 0).
 */
UHP_API ssize_t uhp_recv(struct uhp_channel *ch, void *buf, size_t cap,
			 struct uhp_meta *meta_out);

/*
 * Look at the next record in place (CRC already checked). rx->payload points
 * into memory that other processes can write: copy what you must trust.
 * Call uhp_release() when done. Returns 0, or -EAGAIN, -EBADMSG (consumed and
 * counted as with uhp_recv), -EPERM, -EINVAL (rx NULL).
 */
UHP_API int uhp_peek(struct uhp_channel *ch, struct uhp_rx *rx);

/*
 * Consume the record returned by the last uhp_peek().
 * Returns 0, or -EINVAL (rx is not the record at the head of its ring, or
 * this handle is not the consumer).
 */
UHP_API int uhp_release(struct uhp_channel *ch, const struct uhp_rx *rx);

/*
 * Up to n records of one ring in place, in its order, each CRC checked, as
 * uhp_peek() returns one: the batch stops early where the next record is
 * not committed yet or needs attention (a discard, a bad record: the next
 * call meets it at the head). Returns how many (>= 1), or what uhp_peek()
 * returns when there is none (-EAGAIN, -EBADMSG, ...); 0 for n == 0.
 */
UHP_API int uhp_peek_batch(struct uhp_channel *ch, struct uhp_rx *rx,
			   unsigned n);

/*
 * Consume rx[0..n), the first n records the last uhp_peek_batch() returned
 * (all of them, or the ones handled so far): read_pos is stored once.
 * Returns 0, or -EINVAL (not those records, in that order, or not the
 * consumer; nothing is consumed then).
 */
UHP_API int uhp_release_batch(struct uhp_channel *ch, const struct uhp_rx *rx,
			      unsigned n);

/*
 * Receive up to n records into msgs[]. Returns the number received; when
 * none, -EAGAIN, -EMSGSIZE, -EBADMSG, -EPERM or -EINVAL as uhp_recv(). An
 * error met after the first record is returned by the next call (the bad
 * record stays until then).
 */
UHP_API int uhp_recv_batch(struct uhp_channel *ch, struct uhp_rx_msg *msgs,
			   unsigned n);

/* ---- waiting (consumer handles only) ---- */

/*
 * Wait until a record is ready in some ring: spin briefly (uhp_set_spin()),
 * then announce need_wakeup and sleep in poll() (a futex for an arena).
 * timeout_ms < 0 waits forever, 0 only checks.
 * Returns 1 (ready), or -ETIMEDOUT, -EPIPE (hung up, see below, and every
 * record taken), -EPERM (not the consumer), -EINTR (a signal), -EBADF (the
 * channel fd is gone), -EIO (POLLERR), or another poll() -errno.
 * need_wakeup is cleared again on every return.
 *
 * Hung up (/dev/uhp channels): nobody but this consumer can produce any
 * more: the name is unlinked, no other writable fd or mapping of the
 * channel is left in any process, and no kernel producer holds it. poll()
 * on uhp_channel_fd() then reports POLLHUP (with POLLIN while records are
 * left); uhp_wait() and uhp_recv_wait() return -EPIPE once the rings are
 * drained. (An arena cannot tell: its producers are not counted.)
 * Every call with a timeout says -ETIMEDOUT when it runs out; programs
 * linked against libuhp 0.1, whose uhp_wait() returned 0 then, keep that
 * (symbol version UHP_0.1).
 */
UHP_API int uhp_wait(struct uhp_channel *ch, int timeout_ms);

/*
 * Waiting in your own loop (epoll, io_uring: see uhp_uring.h). Before
 * sleeping on uhp_channel_fd() call uhp_prepare_sleep(): it asks producers
 * for a wakeup and returns 1 if a record arrived meanwhile (then do not
 * sleep), 0 if sleeping is safe; after waking, uhp_end_sleep() withdraws the
 * request so producers stop making NOTIFY calls.
 * uhp_prepare_sleep() returns -EPERM for a handle without the consumer role.
 */
UHP_API int uhp_prepare_sleep(struct uhp_channel *ch);
UHP_API void uhp_end_sleep(struct uhp_channel *ch);

/*
 * How many times uhp_wait() (and so uhp_recv_wait()) checks the rings
 * before it announces need_wakeup and sleeps: each check is a few loads,
 * a pause, and every 32nd a sched_yield(). Default UHP_DEFAULT_SPIN (a few
 * microseconds): more keeps a busy consumer awake between bursts (lower
 * latency, a CPU spent), 0 sleeps at once (no CPU, a wakeup per burst).
 */
#define UHP_DEFAULT_SPIN	256
UHP_API void uhp_set_spin(struct uhp_channel *ch, unsigned checks);

/*
 * uhp_recv(), waiting up to timeout_ms (< 0: forever) while it is -EAGAIN.
 * Returns as uhp_recv(), or -ETIMEDOUT, or a uhp_wait() -errno (-EPIPE:
 * hung up and drained).
 */
UHP_API ssize_t uhp_recv_wait(struct uhp_channel *ch, void *buf, size_t cap,
			      struct uhp_meta *meta_out, int timeout_ms);

/*
 * uhp_recv_batch(), waiting up to timeout_ms (< 0: forever) while nothing
 * is ready: one wait, then as many records as are there (up to n).
 * Returns as uhp_recv_batch() (>= 1; 0 for n == 0), or -ETIMEDOUT, or a
 * uhp_wait() -errno (-EPIPE: hung up and drained; -EINTR: a signal).
 */
UHP_API int uhp_recv_batch_wait(struct uhp_channel *ch, struct uhp_rx_msg *msgs,
				unsigned n, int timeout_ms);

/*
 * uhp_send(), waiting up to timeout_ms (< 0: forever) while the ring is
 * full (-EAGAIN): a short spin, then sleeps from 1 us doubling to 1 ms
 * (consumers do not signal producers, so the producer polls). Returns as
 * uhp_send(), or -ETIMEDOUT with nothing sent.
 */
UHP_API int uhp_send_wait(struct uhp_channel *ch, const void *buf, uint32_t len,
			  const struct uhp_meta *meta, int timeout_ms);

/* ---- arenas: channels without the kernel module ---- */

/*
 * A channel in a named POSIX shared-memory object (/dev/shm/uhp.<name>,
 * mode 0600), for processes of one user on machines without uhp.ko: the
 * same rings and fast path, one ring per NUMA node with memory (placed with
 * mbind(MPOL_PREFERRED)) or one on opts->node, waits through a futex.
 * Not available there: kernel producers (opts->kernel_rings: -EINVAL),
 * permissions across users, the kernel's checks of positions, SEND/VERIFY.
 * uhp_channel_fd() of the consumer is a FIFO beside the object
 * (/dev/shm/uhp.<name>:wake), made at the first call; producers' wakeups
 * write to it while the consumer announces need_wakeup, as on /dev/uhp.
 * The consumer role is one process's at a time (-EBUSY), taken over when
 * its holder died.
 * create: 0, or -EINVAL, -ENAMETOOLONG, -EEXIST, -ENOMEM, or a shm_open(),
 * ftruncate() or mmap() -errno. attach: 0, or -ENOENT, -EACCES, -EBUSY,
 * -EPROTO (not an arena of this ABI), -EINVAL. UHP_ATTACH_RDONLY makes an
 * observer: the object opened read-only (read permission is enough), every
 * mapping read-only, sends -EBADF. unlink: 0, -ENOENT, ...
 * Close handles with uhp_close().
 */
UHP_API int uhp_arena_create(const char *name, const struct uhp_create_opts *opts,
			     struct uhp_channel **out);
UHP_API int uhp_arena_attach(const char *name, unsigned flags,
			     struct uhp_channel **out);
UHP_API int uhp_arena_unlink(const char *name);

/* ---- one call for both: the module where it is loaded, an arena elsewhere ---- */

/*
 * Options of uhp_open_channel(). Every field's zero is its default, and the
 * struct grows the way the kernel's do: size is sizeof(struct
 * uhp_open_opts) as the program was built (UHP_OPEN_OPTS_INIT sets it); a
 * library given a shorter struct (an older program) takes the missing
 * fields as zero, and one given a longer struct (a newer program) refuses
 * it with -E2BIG unless the bytes it does not know are zero.
 */
struct uhp_open_opts {
	uint32_t size;		/* sizeof(struct uhp_open_opts) */
	uint32_t flags;		/* UHP_OPEN_* */
	uint64_t ring_size;	/* creating: data bytes per ring, a power of
				 * two; 0: UHP_DEFAULT_RING_SIZE */
	uint32_t mode;		/* creating: permission bits; 0: UHP_DEFAULT_MODE */
	uint32_t node;		/* creating with UHP_OPEN_ONE_NODE: its node */
	uint32_t excl_rings;	/* creating: exclusive rings (uhp_claim_ring()) */
	uint32_t spin;		/* uhp_set_spin(); 0: UHP_DEFAULT_SPIN */
	uint64_t stall_timeout_ns; /* uhp_set_stall_timeout_ns(); 0: default */
};

#define UHP_OPEN_OPTS_INIT	{ .size = sizeof(struct uhp_open_opts) }

#define UHP_OPEN_CREATE		(1U << 0)	/* create it if it does not exist */
#define UHP_OPEN_EXCL		(1U << 1)	/* with CREATE: -EEXIST if it exists */
#define UHP_OPEN_CONSUMER	(1U << 2)	/* take the consumer role */
#define UHP_OPEN_RDONLY		(1U << 3)	/* an observer (UHP_ATTACH_RDONLY) */
#define UHP_OPEN_KERNEL_RINGS	(1U << 4)	/* creating: kernel rings (module only) */
#define UHP_OPEN_ONE_NODE	(1U << 5)	/* creating: one ring, on opts->node */
#define UHP_OPEN_DEVICE		(1U << 6)	/* /dev/uhp only, never an arena */
#define UHP_OPEN_ARENA		(1U << 7)	/* an arena, even with the module */
/*
 * With UHP_OPEN_CONSUMER: this handle consumes and never produces (sends
 * are -EBADF), so on /dev/uhp the channel can hang up: uhp_wait() says
 * -EPIPE when nobody can produce any more (see uhp_wait()). Arenas: no
 * producing, but no hang-up either.
 */
#define UHP_OPEN_CONSUME_ONLY	(1U << 8)

/*
 * Open the channel 'name' on /dev/uhp where the module is loaded, else as
 * an arena (UHP_OPEN_DEVICE/UHP_OPEN_ARENA force one; /dev/uhp refusing
 * the caller, -EACCES, is returned, not worked around). Attaches to an
 * existing channel (with the module loaded: the device's, else an arena
 * of that name); with UHP_OPEN_CREATE creates it when there is none, on
 * the device if the module is loaded (create-or-attach: whoever comes
 * first creates, the others attach, however they race). opts NULL means
 * all defaults. uhp_channel_kind() says what it got.
 * Returns 1 (created), 0 (attached), or -EINVAL (bad name, flags or opts),
 * -E2BIG (opts longer than this library knows, with non-zero bytes there),
 * -ENOENT (no such channel, without UHP_OPEN_CREATE; with UHP_OPEN_DEVICE:
 * no module), -EEXIST (UHP_OPEN_EXCL), -EACCES, -EBUSY (consumer role
 * taken), -EOPNOTSUPP (an arena asked for kernel rings), or
 * any error of uhp_create(), uhp_attach() and the uhp_arena_* calls.
 */
UHP_API int uhp_open_channel(const char *name, const struct uhp_open_opts *opts,
			     struct uhp_channel **out);

/* "device", "arena" (or "memory", the tests' in-memory channels). */
UHP_API const char *uhp_channel_kind(const struct uhp_channel *ch);

/* ---- recovery, statistics, CRC ---- */

/*
 * How long the record at the head of a ring may stay uncommitted before the
 * consumer skips it. 0 disables skipping (a dead producer then wedges its
 * ring). Default UHP_DEFAULT_STALL_TIMEOUT_NS. uhp_wait() and
 * uhp_prepare_sleep() look for stalls at once; a consumer that only polls
 * uhp_recv() looks every 64th time it finds nothing, so it notices a dead
 * producer up to 64 polls later.
 */
UHP_API void uhp_set_stall_timeout_ns(struct uhp_channel *ch, uint64_t ns);

/* Copy this handle's counters. Returns 0, or -EINVAL (NULL argument). */
UHP_API int uhp_stats(const struct uhp_channel *ch, struct uhp_stats *out);

/*
 * CRC32C (Castagnoli, reflected) without pre/post inversion, like the
 * kernel's crc32c(seed, buf, len): the standard CRC of b[0..n) is
 * uhp_crc32c(~0U, b, n) ^ ~0U. Thread-safe, any alignment.
 *
 * The implementation is chosen once, at the first call, from what the CPU
 * and OS support: avx512 (VPCLMULQDQ folding, plus crc32 chains side by
 * side for buffers of 4 KiB..4 MiB), pclmul (three crc32 chains joined
 * with PCLMULQDQ), sse42 (one crc32 chain), table (portable). The
 * environment variable UHP_CRC=avx512|pclmul|sse42|table|auto, read at that
 * first call, forces one; a value that is unknown or names a path this CPU
 * lacks means auto. Every path gives the same result.
 */
UHP_API uint32_t uhp_crc32c(uint32_t crc, const void *buf, size_t len);

/*
 * memcpy(): copy n bytes from src to dst, which must not overlap; returns
 * dst. What the library uses for payloads. Chosen once, at the first call,
 * like uhp_crc32c(): avx512 (64-byte moves, masked below 64 bytes), avx2,
 * erms ('rep movsb') or generic (the C library's memcpy); copies of
 * several MiB use non-temporal stores (they would not stay in the caches
 * anyway). UHP_COPY=avx512|avx2|erms|generic|auto forces one; unknown or
 * unsupported values mean auto.
 */
UHP_API void *uhp_memcpy(void *dst, const void *src, size_t n);

/* ---- routing: which records of a batch go to which agent ---- */

/*
 * Filter a batch by destination agent id. ids[i] is the 32-bit id read at
 * (const char *)ids + i * stride_bytes: point ids at &hdrs[0].dst of an
 * array of struct uhp_rec_hdr (stride sizeof(struct uhp_rec_hdr)), at
 * &msgs[0].meta.dst, or at a dense uint32_t array (stride 4). Any stride
 * works, 0 included (every i reads the same id), and the ids need not be
 * 4-byte aligned; nothing outside the n ids is read.
 *
 * bitmap receives (n + 63) / 64 uint64_t words, all of them written: bit
 * (i % 64) of word i / 64 is set when ids[i] matches, bits from n on are 0.
 * Nothing is written for n == 0 (ids and bitmap may then be NULL).
 * Returns the number of matches (the bits set). There is no error case.
 *
 * The implementation is chosen once, at the first call of either function:
 * avx512 (16 ids per compare into a mask; a plain load when stride_bytes
 * is 4, a gather otherwise), avx2 (8 ids per compare), or scalar. The
 * environment variable UHP_ROUTE=avx512|avx2|scalar|auto, read at that
 * first call, forces one; a value that is unknown or names a path this CPU
 * lacks means auto. Every path gives the same bitmap and count. Strides
 * above UHP_ROUTE_GATHER_MAX_STRIDE (gather offsets are 32-bit) take the
 * scalar loop on every path. Thread-safe; ids may change meanwhile (each is
 * read once).
 */
#define UHP_ROUTE_GATHER_MAX_STRIDE	(0x7fffffffU / 16)

/* Bit i set when ids[i] == target. */
UHP_API size_t uhp_route_match(const uint32_t *ids, size_t stride_bytes, size_t n,
			       uint32_t target, uint64_t *bitmap);

/*
 * Bit i set when ids[i] equals any of targets[0..ntargets) (duplicates
 * allowed; ntargets 0 matches nothing, targets may then be NULL). Up to
 * UHP_ROUTE_SET_VEC_MAX targets are compared in the vector paths; a larger
 * set is looked up with a binary search per id, by the same scalar code on
 * every path: targets already sorted ascending are searched in place, any
 * other order is sorted in chunks of UHP_ROUTE_SET_CHUNK targets on the
 * stack (one pass over the ids per chunk; no allocation). Pass big fixed
 * sets sorted.
 */
#define UHP_ROUTE_SET_VEC_MAX	16
#define UHP_ROUTE_SET_CHUNK	256

UHP_API size_t uhp_route_match_set(const uint32_t *ids, size_t stride_bytes,
				   size_t n, const uint32_t *targets,
				   size_t ntargets, uint64_t *bitmap);

#ifdef __cplusplus
}
#endif

#endif /* UHP_H */
