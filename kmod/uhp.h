/* SPDX-License-Identifier: GPL-2.0 */
/*
 * uhp internal declarations.
 *
 * Files and what each owns:
 *   ioctl.c     table-driven ioctl dispatch (size-first structs)
 *   main.c      module init/exit, module parameters, the /dev/uhp misc device
 *               and its ioctl table (CREATE, ATTACH, UNLINK)
 *   registry.c  channel names, owners, permissions, per-user limits
 *   channel.c   the channel object and its fd: ioctl table (INFO, NOTIFY,
 *               SEND, VERIFY), poll, mmap, release
 *   ring.c      one sub-ring: NUMA-local pages, the double-mapped data area,
 *               and every kernel access to the shared positions and records
 *   copy.c      the one routine that copies payloads into a ring
 *   crc.c       the record CRC32C: crc32c(), or a table where that is faster
 *   account.c   ring memory charged to its user and to a global cap
 *   kapi.c      the exported kernel API (uhp_kapi.h)
 *   trace.c     the tracepoints (trace.h: events/uhp/)
 *   compat.h    every difference between supported kernels
 *
 * Object lifetime: a channel is reference counted (kref). The registry holds
 * one reference while the channel is named; every channel fd holds one (the
 * file's private_data); every mapping holds the file (vma->vm_file), hence the
 * channel. The last put frees the rings. Every channel fd and every open
 * /dev/uhp pins the module through fops->owner, so rmmod is refused while any
 * of them (or a mapping) exists; named channels with no users are freed by
 * module exit.
 */
#ifndef _UHP_INTERNAL_H
#define _UHP_INTERNAL_H

#include <linux/kref.h>
#include <linux/atomic.h>
#include <linux/irq_work.h>
#include <linux/list.h>
#include <linux/sizes.h>
#include <linux/spinlock.h>
#include <linux/string.h>
#include <linux/types.h>
#include <linux/uidgid.h>
#include <linux/wait.h>

#include "../uapi/linux/uhp.h"

struct file;
struct iov_iter;
struct vm_area_struct;

/* Module parameters (main.c). */
extern unsigned int uhp_max_channels_per_user;
extern unsigned long uhp_max_ring_size;
extern unsigned long uhp_max_pinned_mb;

/*
 * Largest sub-ring data area max_ring_size may allow: its page counts (and
 * twice them, for the double map) fit an unsigned int with room to spare.
 */
#define UHP_RING_SIZE_LIMIT	SZ_1G
/* Pages of a sub-ring before its data area: prod, cons. */
#define UHP_RING_META_PAGES	2

/*
 * One sub-ring. Everything a kernel decision depends on (size, mask, salt,
 * node) lives here, in kernel memory; the shared control page is only read
 * with READ_ONCE()/acquire and validated before use.
 */
struct uhp_ring {
	void *vaddr;			/* vmap: ctrl page, data, data again */
	struct uhp_prod_line *prod;	/* shared, user-writable */
	struct uhp_cons_line *cons;	/* shared, user-writable */
	struct uhp_wake_line *wake;	/* shared, user-writable */
	void *data;			/* start of the double-mapped data area */
	bool kernel;			/* kernel ring: only kernel code produces */
	bool excl;			/* exclusive ring (UHP_IOC_CLAIM) */
	struct file *claimant;		/* excl: claim_lock; fd holding it, or NULL */
	raw_spinlock_t klock;		/* kernel ring producers: kwpos, kpending */
	u64 kwpos;			/* kernel ring: the real write_pos */
	u64 kpending;			/* kernel ring: oldest record not committed */
	atomic64_t kfull;		/* kernel ring: sends refused, full */
	atomic64_t kcorrupt;		/* kernel ring: sends refused, bad read_pos */
	struct page **pages;		/* 1 ctrl + nr_data pages, then data again */
	unsigned int nr_data_pages;
	int node;
	u64 size;			/* data bytes, power of two */
	u64 mask;			/* size - 1 */
	u64 salt;			/* mixed into every record tag */
};

struct uhp_channel {
	struct kref ref;
	char name[UHP_NAME_MAX];
	void *scope;			/* namespace of the name (compat.h), held */
	kuid_t uid;
	kgid_t gid;
	umode_t mode;
	bool named;			/* in the name hash (registry lock) */
	struct hlist_node name_node;	/* registry lock */
	struct list_head all_node;	/* registry lock: every live channel */
	struct file *consumer;		/* consumer_lock: fd holding the role */
	bool consume_only;		/* consumer_lock: it never produces */
	struct pid *consumer_pid;	/* consumer_lock: who took the role */
	spinlock_t consumer_lock;	/* consumer, consume_only, consumer_pid */
	wait_queue_head_t wq;		/* consumers sleeping in poll() */
	struct irq_work kwake;		/* kernel producers' deferred wake-up */
	u64 data_size;
	bool auto_unlink;		/* UHP_CREATE_AUTO_UNLINK */
	atomic_t nr_files;		/* channel fds (mappings hold theirs) */
	/*
	 * Who can still produce: writable channel files (as nr_files: a
	 * file counts until its last fd or mapping goes) and kernel
	 * producers' references (uhp_kchannel_get()). See
	 * uhp_channel_hung_up().
	 */
	atomic_t nr_writers;
	struct user_struct *user;	/* charged for the rings, or NULL */
	unsigned long nr_pinned;	/* pages charged (account.c) */
	/*
	 * user rings [0, nr_user_rings), exclusive rings, then kernel rings
	 * [kring_first, nr_rings)
	 */
	unsigned int nr_rings;
	unsigned int nr_user_rings;
	unsigned int kring_first;
	spinlock_t claim_lock;		/* every ring's claimant */
	struct uhp_ring rings[];
};

/* ioctl.c */
struct uhp_ucmd {
	struct file *file;
	void __user *ubuffer;
	u32 user_size;
	void *cmd;		/* the kernel's copy of the argument struct */
};

struct uhp_ioctl_op {
	unsigned int size;	/* sizeof the argument struct */
	unsigned int min_size;	/* smallest size userspace may pass */
	unsigned int ioctl_num;
	bool copy_out;		/* copy the struct back on success */
	int (*execute)(struct uhp_ucmd *ucmd);
};

/* Table entries are indexed by _IOC_NR(cmd) - base. */
#define UHP_IOCTL_OP(_base, _ioctl, _fn, _struct, _last, _out)		\
	[_IOC_NR(_ioctl) - (_base)] = {					\
		.size = sizeof(_struct),				\
		.min_size = offsetofend(_struct, _last),		\
		.ioctl_num = _ioctl,					\
		.copy_out = _out,					\
		.execute = _fn,						\
	}

long uhp_ioctl_dispatch(const struct uhp_ioctl_op *ops, unsigned int nr_ops,
			unsigned int base, struct file *file, unsigned int cmd,
			unsigned long arg);

/* ring.c */

/* Records one kernel reservation walks kpending forward, at most. */
#define UHP_KPENDING_WALK	64

int uhp_ring_init(struct uhp_ring *r, int node, u64 size, unsigned int index,
		  bool kernel);
void uhp_ring_destroy(struct uhp_ring *r);
int uhp_ring_mmap(struct uhp_ring *r, struct vm_area_struct *vma,
		  unsigned int part, bool cons_owner, bool consume_only);
bool uhp_ring_readable(struct uhp_ring *r);
int uhp_ring_send(struct uhp_ring *r, const struct uhp_send *s,
		  struct iov_iter *payload, u64 *pos_out);
int uhp_ring_verify(struct uhp_ring *r, u64 pos, u32 *len_out, u32 *crc_out);
void uhp_ring_clear_need_wakeup(struct uhp_ring *r);
u32 uhp_rec_crc(const struct uhp_rec_hdr *h, const void *payload, u32 len);
int uhp_kring_reserve(struct uhp_ring *r, u32 len, u64 *pos_out);
void *uhp_ring_payload(struct uhp_ring *r, u64 pos);
u32 uhp_ring_reserved_len(struct uhp_ring *r, u64 pos);
void uhp_ring_commit(struct uhp_ring *r, u64 pos, const struct uhp_rec_hdr *h);
bool uhp_ring_needs_wakeup(struct uhp_ring *r);

/* crc.c */
int uhp_crc_init(void);
u32 uhp_crc32c(u32 crc, const void *buf, size_t len);
u32 uhp_crc32c_table(u32 crc, const void *buf, size_t len);
bool uhp_crc_is_table(void);
bool uhp_crc_prefer_table(u64 kernel_ns, u64 table_ns);

/* account.c */
unsigned long uhp_account_pages(unsigned int nr_rings, u64 size);
int uhp_account_charge(struct uhp_channel *ch, unsigned long pages);
void uhp_account_uncharge(struct uhp_channel *ch);

/* copy.c */
int uhp_copy_init(void);
void uhp_copy_large(void *dst, const void *src, size_t len);
unsigned int uhp_copy_effective(unsigned int path, size_t len);
void uhp_copy_with(unsigned int path, void *dst, const void *src, size_t len);
unsigned int uhp_copy_path(void);
bool uhp_copy_path_supported(unsigned int path);
const char *uhp_copy_name(unsigned int path);
int uhp_copy_from_iter(void *dst, size_t len, struct iov_iter *from);
bool uhp_copy_section_begin(size_t total);
void uhp_copy_in_section(void *dst, const void *src, size_t len);
void uhp_copy_section_end(void);

#define UHP_COPY_SIMD_MIN	256

/* Kernel-to-kernel payload copy: short ones inline, the rest by path. */
static inline void uhp_copy(void *dst, const void *src, size_t len)
{
	if (len < UHP_COPY_SIMD_MIN)
		memcpy(dst, src, len);
	else
		uhp_copy_large(dst, src, len);
}

/* channel.c */
struct uhp_channel *uhp_channel_alloc(const char *name, u64 ring_size,
				      int node, umode_t mode, unsigned int flags,
				      unsigned int excl_rings);
void uhp_channel_wake(struct uhp_channel *ch);
void uhp_channel_kwake(struct uhp_channel *ch);
bool uhp_channel_hung_up(struct uhp_channel *ch);
void uhp_channel_writer_gone(struct uhp_channel *ch);
void uhp_channel_hup_wake(struct uhp_channel *ch);
void uhp_channel_get(struct uhp_channel *ch);
void uhp_channel_put(struct uhp_channel *ch);
struct file *uhp_channel_open(struct uhp_channel *ch, bool consumer, bool rdonly,
			      bool consume_only);
bool uhp_file_produces(struct uhp_channel *ch, const struct file *file);
void uhp_channel_consumer_drop(struct uhp_channel *ch, const struct file *file);
int uhp_channel_install_file(struct file *file);

/* registry.c */
int uhp_name_validate(const char *name);
int uhp_registry_create(struct uhp_channel *ch);
struct uhp_channel *uhp_registry_lookup(const char *name);
struct uhp_channel *uhp_registry_lookup_scope(const void *scope, const char *name);
int uhp_registry_unlink(const char *name);
int uhp_registry_permission(const struct uhp_channel *ch, bool rdonly);
u32 uhp_registry_list(struct uhp_list_entry *out, u32 start, u32 cap, u32 *count);
void uhp_registry_release(struct uhp_channel *ch);
void uhp_registry_forget(struct uhp_channel *ch);
void uhp_registry_drain(void);

#endif /* _UHP_INTERNAL_H */
