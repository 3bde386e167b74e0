/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note OR MIT */
/*
 * uhp - Ultra-Hybrid Protocol: message channels on mmap'd, NUMA-local rings.
 *
 * This header is the ABI shared by the kernel module and userspace. Only
 * fixed-width types, no hidden padding; every argument struct starts with its
 * own size so it can grow (copy_struct_from_user() rules: a shorter struct is
 * zero-extended, a longer one must have a zero tail or gets -E2BIG); every
 * __reserved field and every undefined flag bit must be zero (-EINVAL).
 *
 * Objects
 * -------
 * /dev/uhp (misc device) creates, attaches and unlinks named *channels*.
 * CREATE and ATTACH return a *channel fd* (O_CLOEXEC). A channel owns one
 * sub-ring per NUMA node with memory (or a single one on a chosen node); each
 * sub-ring's pages are allocated on its node. A channel lives while it is named
 * or while any fd or mapping holds it.
 *
 * Ioctls (magic UHP_IOC_MAGIC, numbers built with _IO(): the size travels in
 * the struct, not in the command, so a struct can grow without a new number)
 * ----------------------------------------------------------------------------
 *   nr    on          name              argument              returns
 *   0x00  /dev/uhp    UHP_IOC_CREATE    struct uhp_create     channel fd
 *   0x01  /dev/uhp    UHP_IOC_ATTACH    struct uhp_attach     channel fd
 *   0x02  /dev/uhp    UHP_IOC_UNLINK    struct uhp_unlink     0
 *   0x10  channel fd  UHP_IOC_INFO      struct uhp_info       0
 *   0x11  channel fd  UHP_IOC_NOTIFY    struct uhp_notify     0
 *   0x12  channel fd  UHP_IOC_SEND      struct uhp_send       0
 *   0x13  channel fd  UHP_IOC_VERIFY    struct uhp_verify     0
 *   0x14  channel fd  UHP_IOC_CLAIM     struct uhp_claim      0
 * Unknown commands get -ENOTTY.
 *
 * io_uring: IORING_OP_URING_CMD on a channel fd, sqe->cmd_op one of
 * UHP_URING_CMD_*, the SQE's command area a struct uhp_uring_cmd (all zero
 * today). A producer can so wake the consumers of many channels with one
 * io_uring_enter(). Unknown cmd_op: -EOPNOTSUPP; non-zero fields: -EINVAL.
 *
 * Sub-ring layout
 * ---------------
 * Each sub-ring has three parts, mapped separately: a producer page, a
 * consumer page, and a data area of data_size bytes (a power of two, at least
 * one page). The data area may be mapped twice back to back (as the BPF ring
 * buffer does), so a record that crosses the end of the area is still
 * contiguous in the mapping:
 *
 *   prod page:  0x000 struct uhp_prod_line  written by producers per record
 *               0x080 struct uhp_ring_desc  written once by the kernel
 *   cons page:  0x000 struct uhp_cons_line  written by the consumer per record
 *               0x080 struct uhp_wake_line  written by the consumer around
 *                                           sleeps, read by producers after
 *                                           every commit (so it stays shared
 *                                           in their caches)
 *   data:       [ data 0 .. data_size ][ the same pages again ]
 *
 * Words with different writers are 128 bytes apart at least, so neither a
 * cache line nor the adjacent-line prefetcher's pair is shared.
 *
 * Who may map what writable: a user ring's prod page and data, any channel
 * fd; a kernel ring's, nobody; every cons page, only the fd that holds the
 * consumer role (UHP_FEAT_CONS_OWNER; others map it read-only); an fd
 * attached UHP_ATTACH_RDONLY maps everything read-only. A refused
 * writable mapping is -EPERM and mprotect() cannot add PROT_WRITE later.
 * madvise(MADV_DONTNEED) on a ring mapping drops its pages from that
 * mapping for good (the BPF ring buffer behaves the same): later accesses
 * raise SIGBUS; munmap() and mmap() it again.
 *
 * Two kinds of sub-ring: user rings (producers are processes, and the kernel
 * through UHP_IOC_SEND) and, with UHP_CREATE_KERNEL_RINGS, kernel rings
 * (UHP_RING_F_KERNEL: only kernel code produces, through the exported kernel
 * API). A process maps a kernel ring's prod page and data read-only (a
 * writable mapping gets -EPERM and mprotect() cannot add PROT_WRITE); only its
 * cons page is writable. The kernel keeps a kernel ring's positions in its own
 * memory and publishes copies, so no process can stall or corrupt a kernel
 * producer: a consumer that stops reading makes it see "full".
 *
 * A third kind, with uhp_create.excl_rings: exclusive rings (UHP_RING_F_EXCL),
 * placed after the user rings (and before any kernel rings). A process claims
 * one for a channel fd with UHP_IOC_CLAIM; while that fd is open it is the
 * ring's only producer, so it advances write_pos with a plain store instead
 * of compare-and-swap (a single-producer ring, as an io_uring SQ). The claim
 * ends with the fd. Producers without the claim never write there: libuhp
 * does not pick exclusive rings, and UHP_IOC_SEND to one is -EBUSY for any
 * fd but its claimant's. Consumers read them like any other ring.
 *
 * Positions are free-running 64-bit byte counters; the offset of a position in
 * the data area is (pos & (data_size - 1)). The ring is empty when
 * read_pos == write_pos and holds write_pos - read_pos <= data_size bytes.
 *
 * Records
 * -------
 * A record is a struct uhp_rec_hdr followed by len payload bytes, padded to
 * UHP_REC_ALIGN; it starts at a UHP_REC_ALIGN-aligned position. Producers
 * (any number) reserve space by advancing write_pos with compare-and-swap
 * (the claimant of an exclusive ring: with a plain store), then publish the
 * record in two steps through hdr.tag:
 *
 *   1. fill len and the other header fields, store-release
 *      tag = pos ^ salt ^ UHP_TAG_BUSY          (length known, not complete)
 *   2. write payload and crc, store-release tag = pos ^ salt   (committed)
 *
 * The consumer owns read_pos. It load-acquires the tag at read_pos and takes the
 * record only when tag == read_pos ^ salt. Because the tag encodes the
 * record's own position and a per-ring random salt, stale bytes left from
 * earlier laps are not mistaken for a record by chance. A peer that knows
 * the salt (it is on the prod page) can forge one inside a payload, so
 * consumers also bound every read by write_pos and check the CRC. A record with
 * UHP_REC_F_DISCARD set was given back by its producer and carries no data;
 * its len still covers the whole reservation, so the consumer skips it as a
 * whole.
 *
 * Integrity: hdr.crc is the CRC32C (Castagnoli, reflected, init ~0, final ~0)
 * of the header bytes from 'len' up to and not including 'crc'
 * (UHP_REC_CRC_HDR_LEN bytes) followed by the payload.
 *
 * Sleeping and waking
 * -------------------
 * A consumer that runs dry stores need_wakeup = 1 in every sub-ring, issues a
 * full barrier, re-checks every sub-ring, and only then sleeps in poll() on the
 * channel fd (POLLIN: a committed record is at read_pos of some sub-ring).
 * A producer, after committing, issues a full barrier and reads need_wakeup; if
 * it is set it calls UHP_IOC_NOTIFY. The two full barriers pair with each
 * other: either the consumer's re-check sees the record or the producer sees
 * need_wakeup (store-buffer litmus test). So the fast path needs no syscall.
 *
 * mmap
 * ----
 * Offsets come from UHP_MMAP_OFF(ring, part) (also reported by UHP_IOC_INFO).
 * UHP_PART_PROD and UHP_PART_CONS map exactly one page (UHP_PAGE_SIZE);
 * UHP_PART_DATA maps data_size or 2 * data_size bytes. Mappings must be
 * MAP_SHARED and not executable; they cannot be grown (mremap) or split
 * (partial munmap/mprotect -> -EINVAL).
 *
 * The kernel never trusts the shared pages: it reads positions with
 * READ_ONCE, bounds every index with its own private mask, and answers a
 * corrupted position (write_pos - read_pos > data_size) with -EUCLEAN.
 */
#ifndef _UAPI_LINUX_UHP_H
#define _UAPI_LINUX_UHP_H

#include <linux/types.h>
#include <linux/ioctl.h>

#define UHP_ABI_VERSION		1
#define UHP_DEVICE_PATH		"/dev/uhp"

/* Channel names: 1..UHP_NAME_MAX-1 bytes of [A-Za-z0-9._-], not starting with '.'. */
#define UHP_NAME_MAX		64

#define UHP_REC_ALIGN		64
#define UHP_CACHELINE		64
#define UHP_PAGE_SIZE		4096
#define UHP_PROD_LINE_OFF	0x000	/* in the prod page */
#define UHP_DESC_OFF		0x080	/* in the prod page */
#define UHP_CONS_LINE_OFF	0x000	/* in the cons page */
#define UHP_WAKE_LINE_OFF	0x080	/* in the cons page */

/* Written by producers. cached_read_pos is a hint: a recent read_pos. */
struct uhp_prod_line {
	__aligned_u64 write_pos;
	__aligned_u64 cached_read_pos;
	__u32 producer_cpu;	/* last CPU that produced (informational) */
	__u32 __pad0;
	__aligned_u64 __pad[5];
};

/*
 * Written by the consumer. records, bad and stalled are what the ring's
 * consumers say they took (informational, for tools such as uhpctl; the
 * kernel never reads them): records consumed, bad ones among them (CRC or
 * length wrong: skipped), and reservations skipped after the stall
 * timeout. Consumers before they existed leave them 0.
 */
struct uhp_cons_line {
	__aligned_u64 read_pos;
	__aligned_u64 cached_write_pos;
	__u32 consumer_cpu;	/* last CPU that consumed (informational) */
	__u32 __pad0;
	__aligned_u64 records;
	__aligned_u64 bad;
	__aligned_u64 stalled;
	__aligned_u64 __pad[2];
};

/* Written by the consumer around sleeps, and by the kernel on its release. */
struct uhp_wake_line {
	__u32 need_wakeup;	/* 1: the consumer sleeps, producers must NOTIFY */
	__u32 __pad0;
	__aligned_u64 __pad[7];
};

#define UHP_RING_MAGIC		0x55485052494e4731ULL	/* "UHPRING1" */

/* Written once by the kernel. Informational: the kernel never reads it back. */
struct uhp_ring_desc {
	__aligned_u64 magic;
	__aligned_u64 data_size;
	__aligned_u64 salt;	/* per-ring random value mixed into hdr.tag */
	__u32 abi_version;
	__s32 node;		/* NUMA node of this sub-ring's pages */
	__u32 ring_index;
	__u32 __reserved0;
	__aligned_u64 __reserved[2];
};

#define UHP_TAG_BUSY		(1ULL << 63)

/* Record flags (uhp_rec_hdr.flags). */
/*
 * UHP_REC_F_KERNEL: sent by kernel code through the kernel API. Only kernel
 * rings carry it with meaning (no process can write there); on a user ring
 * any producer can set the bit, so consumers (libuhp does) ignore it there.
 * UHP_IOC_SEND relays a process's record and does not set it.
 */
#define UHP_REC_F_KERNEL	(1U << 0)	/* from a kernel producer (kernel rings) */
#define UHP_REC_F_DISCARD	(1U << 1)	/* reservation given back: skip it */

struct uhp_rec_hdr {
	__aligned_u64 tag;	/* commit word, see "Records" above */
	__u32 len;		/* payload bytes */
	__u16 type;		/* application-defined */
	__u16 flags;		/* UHP_REC_F_* */
	__u32 src;		/* source agent id */
	__u32 dst;		/* destination agent id */
	__aligned_u64 seq;	/* sequence number, chosen by the producer */
	__u32 crc;		/* CRC32C, see "Integrity" above */
	__u32 __reserved;	/* must be 0 */
};

#define UHP_REC_HDR_SIZE	40
#define UHP_REC_CRC_HDR_OFF	8	/* CRC covers hdr bytes [8, 32) ... */
#define UHP_REC_CRC_HDR_LEN	24	/* ... then the payload */

/* Bytes a record with 'len' payload bytes occupies in the ring. */
#define UHP_REC_TOTAL(len) \
	(((__u64)(len) + UHP_REC_HDR_SIZE + UHP_REC_ALIGN - 1) & \
	 ~(__u64)(UHP_REC_ALIGN - 1))

/* mmap offsets: bits 36.. select the sub-ring, bits 32..35 the part. */
#define UHP_PART_PROD		0
#define UHP_PART_DATA		1
#define UHP_PART_CONS		2
#define UHP_MMAP_OFF(ring, part) \
	(((__u64)(ring) << 36) | ((__u64)(part) << 32))

/* ---- /dev/uhp ioctls ---- */

#define UHP_IOC_MAGIC		0xB8

/* uhp_create.flags */
#define UHP_CREATE_NODE		(1U << 0)	/* one sub-ring, on uhp_create.node */
#define UHP_CREATE_CONSUMER	(1U << 1)	/* this fd takes the consumer role */
/* kernel rings: as many as user rings; needs CAP_SYS_ADMIN (-EPERM) */
#define UHP_CREATE_KERNEL_RINGS	(1U << 2)
#define UHP_CREATE_AUTO_UNLINK	(1U << 3)	/* the name goes with the last fd and mapping */
/*
 * With UHP_CREATE_CONSUMER / UHP_ATTACH_CONSUMER: the fd consumes and never
 * produces (the prod pages and data map read-only, SEND and CLAIM are
 * -EBADF; the cons page stays writable). It is then not a writer, so the
 * channel can hang up: poll() reports EPOLLHUP once its name is gone and
 * no writer is left (no other writable fd or mapping of it anywhere, no
 * kernel producer holding it). Pipes work so: the read end is not a
 * writer, whoever shares it. UHP_FEAT_HANGUP.
 */
#define UHP_CREATE_CONSUME_ONLY	(1U << 4)
#define UHP_CREATE_FLAGS	(UHP_CREATE_NODE | UHP_CREATE_CONSUMER | \
				 UHP_CREATE_KERNEL_RINGS | UHP_CREATE_AUTO_UNLINK | \
				 UHP_CREATE_CONSUME_ONLY)

struct uhp_create {
	__u32 size;		/* sizeof(struct uhp_create) */
	__u32 flags;		/* UHP_CREATE_* */
	__u32 mode;		/* permission bits (0777 mask) checked by ATTACH */
	__s32 node;		/* with UHP_CREATE_NODE: the node; else must be 0 */
	__aligned_u64 ring_size;	/* data bytes per sub-ring: power of two */
	char name[UHP_NAME_MAX];	/* NUL-terminated */
	/*
	 * Exclusive rings (UHP_RING_F_EXCL, UHP_IOC_CLAIM), at most
	 * UHP_EXCL_RINGS_MAX, each of ring_size bytes, spread over the user
	 * rings' nodes in turn. UHP_FEAT_EXCL_RINGS; a kernel without it
	 * answers -EINVAL (the field was reserved).
	 */
	__u32 excl_rings;
	__u32 __reserved0;		/* must be 0 */
	__aligned_u64 __reserved[1];	/* must be 0 */
};

#define UHP_EXCL_RINGS_MAX	64

/* uhp_attach.flags */
#define UHP_ATTACH_CONSUMER	(1U << 0)	/* take the consumer role (one per channel) */
/*
 * An observer: needs only the read bit of the caller's class (the others
 * need read and write); every mapping of the fd is read-only, and SEND and
 * NOTIFY (ioctl or io_uring) are -EBADF. INFO, VERIFY and poll() work.
 * Not with UHP_ATTACH_CONSUMER (-EINVAL). UHP_FEAT_ATTACH_RDONLY.
 */
#define UHP_ATTACH_RDONLY	(1U << 1)
/* As UHP_CREATE_CONSUME_ONLY; with UHP_ATTACH_CONSUMER only. */
#define UHP_ATTACH_CONSUME_ONLY	(1U << 2)
#define UHP_ATTACH_FLAGS	(UHP_ATTACH_CONSUMER | UHP_ATTACH_RDONLY | \
				 UHP_ATTACH_CONSUME_ONLY)

struct uhp_attach {
	__u32 size;		/* sizeof(struct uhp_attach) */
	__u32 flags;		/* UHP_ATTACH_* */
	char name[UHP_NAME_MAX];
	__aligned_u64 __reserved[2];	/* must be 0 */
};

struct uhp_unlink {
	__u32 size;		/* sizeof(struct uhp_unlink) */
	__u32 flags;		/* none defined: must be 0 */
	char name[UHP_NAME_MAX];
	__aligned_u64 __reserved[2];	/* must be 0 */
};

/*
 * UHP_IOC_LIST on /dev/uhp: the named channels of the caller's scope (its
 * IPC or user namespace, UHP_FEAT_SCOPE_*) that it owns or could attach to
 * read-only (read bit of its class, or CAP_DAC_OVERRIDE), oldest first.
 * Names of others' private channels are not shown: listing must not become
 * a way to probe them. Unlinked channels have no name and are not listed
 * (they still count against their owner's channel limit while alive).
 *
 * The kernel writes up to cap entries of entry_size bytes each (at least
 * UHP_LIST_ENTRY_SIZE_VER0; a larger size gets zeros past the fields it
 * knows) to entries_uptr, after skipping 'start' visible channels, and sets
 * count (written) and total (visible). At most UHP_LIST_MAX entries per
 * call: page with 'start'. A channel created or removed between two calls
 * can shift the pages. UHP_FEAT_LIST.
 */
#define UHP_LIST_MAX		1024

/* uhp_list_entry.flags */
#define UHP_LIST_F_AUTO_UNLINK	(1U << 0)	/* UHP_CREATE_AUTO_UNLINK */
#define UHP_LIST_F_KERNEL_RINGS	(1U << 1)	/* UHP_CREATE_KERNEL_RINGS */
#define UHP_LIST_F_CONSUMER	(1U << 2)	/* an fd holds the consumer role */

struct uhp_list_entry {
	char name[UHP_NAME_MAX];
	__u32 uid;		/* owner, in the caller's user namespace */
	__u32 gid;
	__u32 mode;		/* permission bits */
	__u32 flags;		/* UHP_LIST_F_* */
	__u32 nr_rings;		/* sub-rings, kernel rings included */
	__u32 nr_fds;		/* open channel fds (each mapping holds one) */
	__aligned_u64 data_size;	/* data bytes per sub-ring */
	__aligned_u64 ring_bytes;	/* memory its rings pin */
	/* UHP_FEAT_HANGUP and later (a larger entry_size gets zeros before) */
	/* who took the consumer role, in the caller's pid namespace (0: none) */
	__u32 consumer_pid;
	__u32 nr_writers;	/* files and kernel producers that can produce */
	/*
	 * The namespace its name lives in (UHP_FEAT_SCOPE_*): the inode
	 * number /proc/<pid>/ns/ipc (or ns/user) shows, e.g. ipc:[4026531839].
	 */
	__u32 scope_inum;
	__u32 __pad0;
};

#define UHP_LIST_ENTRY_SIZE_VER0	104	/* sizeof the first version */
#define UHP_LIST_ENTRY_SIZE_VER1	120	/* + consumer_pid, nr_writers, scope_inum */

struct uhp_list {
	__u32 size;		/* sizeof(struct uhp_list) */
	__u32 flags;		/* none defined: must be 0 */
	__u32 entry_size;	/* sizeof(struct uhp_list_entry) as the caller has it */
	__u32 cap;		/* entries entries_uptr can hold */
	__u32 start;		/* visible channels to skip first */
	__u32 count;		/* out: entries written */
	__u32 total;		/* out: channels visible to the caller */
	__u32 __reserved0;	/* must be 0 */
	__aligned_u64 entries_uptr;	/* struct uhp_list_entry[cap] */
	__aligned_u64 __reserved[2];	/* must be 0 */
};

/* ---- channel fd ioctls ---- */

/* uhp_info.features: what this module implements. */
#define UHP_FEAT_NUMA_RINGS	(1ULL << 0)	/* per-node sub-rings */
#define UHP_FEAT_DOUBLE_MAP	(1ULL << 1)	/* data may be mapped twice */
#define UHP_FEAT_NEED_WAKEUP	(1ULL << 2)	/* need_wakeup + NOTIFY protocol */
#define UHP_FEAT_KERNEL_SEND	(1ULL << 3)	/* UHP_IOC_SEND */
#define UHP_FEAT_VERIFY		(1ULL << 4)	/* UHP_IOC_VERIFY */
#define UHP_FEAT_KERNEL_RINGS	(1ULL << 5)	/* UHP_CREATE_KERNEL_RINGS, kernel API */
#define UHP_FEAT_URING_CMD	(1ULL << 6)	/* IORING_OP_URING_CMD, UHP_URING_CMD_* */
#define UHP_FEAT_MEMLOCK	(1ULL << 7)	/* rings charged: RLIMIT_MEMLOCK, max_pinned_mb */
#define UHP_FEAT_AUTO_UNLINK	(1ULL << 8)	/* UHP_CREATE_AUTO_UNLINK */
#define UHP_FEAT_CONS_OWNER	(1ULL << 9)	/* cons page writable by the consumer's fd only */
/* Channel names are per namespace of their creator: one of these two. */
#define UHP_FEAT_SCOPE_IPC_NS	(1ULL << 10)	/* per IPC namespace */
#define UHP_FEAT_SCOPE_USER_NS	(1ULL << 11)	/* per user namespace */
#define UHP_FEAT_ATTACH_RDONLY	(1ULL << 12)	/* UHP_ATTACH_RDONLY */
#define UHP_FEAT_LIST		(1ULL << 13)	/* UHP_IOC_LIST */
#define UHP_FEAT_EXCL_RINGS	(1ULL << 14)	/* excl_rings, UHP_IOC_CLAIM */
#define UHP_FEAT_HANGUP		(1ULL << 15)	/* UHP_*_CONSUME_ONLY, EPOLLHUP */

/* uhp_info.copy_path: the kernel's payload copy routine in use. */
#define UHP_COPY_GENERIC	0	/* memcpy() */
#define UHP_COPY_ERMS		1	/* rep movsb */
#define UHP_COPY_AVX2		2	/* 32-byte vectors in an FPU section */
#define UHP_COPY_AVX512		3	/* 64-byte vectors, masked tail, NT stores */

/* uhp_info.flags (output) */
#define UHP_INFO_F_CONSUMER	(1U << 0)	/* this fd holds the consumer role */
#define UHP_INFO_F_RDONLY	(1U << 1)	/* this fd was attached UHP_ATTACH_RDONLY */
#define UHP_INFO_F_CONSUME_ONLY	(1U << 2)	/* ... or UHP_*_CONSUME_ONLY */

/* uhp_ring_info.flags */
#define UHP_RING_F_KERNEL	(1U << 0)	/* only kernel code produces here */
#define UHP_RING_F_EXCL		(1U << 1)	/* exclusive ring (UHP_IOC_CLAIM) */
#define UHP_RING_F_CLAIMED	(1U << 2)	/* exclusive ring with a claimant now */

struct uhp_ring_info {
	__s32 node;
	__u32 flags;		/* UHP_RING_F_* */
	__aligned_u64 prod_off;	/* mmap offset of the prod page */
	__aligned_u64 cons_off;	/* mmap offset of the cons page */
	__aligned_u64 data_off;	/* mmap offset of the data area */
	__aligned_u64 kernel_full;	/* kernel rings: sends refused, ring full */
	__aligned_u64 kernel_corrupt;	/* kernel rings: sends refused, read_pos corrupt */
};

struct uhp_info {
	__u32 size;		/* in: sizeof(struct uhp_info) */
	__u32 flags;		/* out: UHP_INFO_F_* */
	__u32 abi_version;	/* out: UHP_ABI_VERSION */
	__u32 nr_rings;		/* out: sub-rings in the channel */
	__aligned_u64 features;	/* out: UHP_FEAT_* */
	__aligned_u64 data_size;	/* out: data bytes per sub-ring */
	__u32 page_size;	/* out: bytes of a prod or cons mapping */
	__u32 copy_path;	/* out: UHP_COPY_* */
	__u32 mode;		/* out: permission bits */
	__u32 uid;		/* out: owner */
	__u32 gid;		/* out: owner's group */
	__u32 rings_cap;	/* in: entries rings_uptr can hold */
	__aligned_u64 rings_uptr;	/* in: struct uhp_ring_info[rings_cap], or 0 */
	char name[UHP_NAME_MAX];	/* out */
	__aligned_u64 __reserved[2];	/* must be 0 */
};

/* Wake the consumer sleeping in poll() on this channel. */
struct uhp_notify {
	__u32 size;
	__u32 flags;		/* none defined: must be 0 */
	__aligned_u64 __reserved;	/* must be 0 */
};

/*
 * Send one record through the kernel (the slow path, e.g. for callers that
 * cannot map the ring): the kernel reserves, copies and seals it with crc32c()
 * (not UHP_REC_F_KERNEL: the record is the caller's). -EAGAIN when the
 * sub-ring is full, -EPERM for a kernel ring (records there come from
 * kernel producers only).
 */
struct uhp_send {
	__u32 size;
	__u32 flags;		/* none defined: must be 0 */
	__u32 ring;		/* sub-ring index */
	__u16 type;
	__u16 __reserved0;	/* must be 0 */
	__u32 src;
	__u32 dst;
	__aligned_u64 seq;
	__aligned_u64 buf;	/* user pointer to the payload */
	__u32 len;		/* payload bytes */
	__u32 __reserved1;	/* must be 0 */
	__aligned_u64 pos;	/* out: position of the record */
};

/*
 * Check the record at 'pos' of sub-ring 'ring' with the kernel's crc32c():
 * 0 if its CRC matches, -EBADMSG if not, -EAGAIN if it is not committed yet,
 * -ERANGE if pos is outside [read_pos, write_pos), -EUCLEAN if the ring's
 * positions or the record's length are corrupt.
 */
struct uhp_verify {
	__u32 size;
	__u32 flags;		/* none defined: must be 0 */
	__u32 ring;
	__u32 len;		/* out: payload length of the record */
	__aligned_u64 pos;
	__u32 crc;		/* out: CRC32C the kernel computed */
	__u32 __reserved0;	/* must be 0 */
};

/*
 * Claim a free exclusive ring for this channel fd: one on the calling CPU's
 * node if one is free, else any. The fd is then that ring's only producer
 * until it is closed (the claim belongs to the open file: after fork() both
 * processes hold it, so only one of them may produce there; libuhp drops
 * the claim in the child). One claim per fd. -EBUSY: every exclusive ring is
 * claimed, or this fd holds one already; -EBADF: an observer
 * (UHP_ATTACH_RDONLY); -EINVAL: flags or reserved fields not zero.
 */
struct uhp_claim {
	__u32 size;
	__u32 flags;		/* none defined: must be 0 */
	__u32 ring;		/* out: the ring claimed */
	__u32 __reserved0;	/* must be 0 */
	__aligned_u64 __reserved[2];	/* must be 0 */
};

/* io_uring commands (sqe->cmd_op) on a channel fd. */
#define UHP_URING_CMD_NOTIFY	1	/* what UHP_IOC_NOTIFY does */

/* The SQE's command area (16 bytes, fits a 64-byte SQE). */
struct uhp_uring_cmd {
	__u32 flags;		/* none defined: must be 0 */
	__u32 __reserved0;	/* must be 0 */
	__aligned_u64 __reserved1;	/* must be 0 */
};

#define UHP_IOC_CREATE	_IO(UHP_IOC_MAGIC, 0x00)
#define UHP_IOC_ATTACH	_IO(UHP_IOC_MAGIC, 0x01)
#define UHP_IOC_UNLINK	_IO(UHP_IOC_MAGIC, 0x02)
#define UHP_IOC_LIST	_IO(UHP_IOC_MAGIC, 0x03)
#define UHP_IOC_INFO	_IO(UHP_IOC_MAGIC, 0x10)
#define UHP_IOC_NOTIFY	_IO(UHP_IOC_MAGIC, 0x11)
#define UHP_IOC_SEND	_IO(UHP_IOC_MAGIC, 0x12)
#define UHP_IOC_VERIFY	_IO(UHP_IOC_MAGIC, 0x13)
#define UHP_IOC_CLAIM	_IO(UHP_IOC_MAGIC, 0x14)

#endif /* _UAPI_LINUX_UHP_H */
