/* SPDX-License-Identifier: GPL-2.0 */
/*
 * uhp kernel API: kernel code producing into uhp channels.
 *
 * A channel created with UHP_CREATE_KERNEL_RINGS has kernel rings, one per
 * node of its user rings, whose producer side only the kernel writes.
 * Kernel producers find such a channel by name, hold it, and send records
 * that the channel's (userspace) consumer receives like any other, with
 * UHP_REC_F_KERNEL set. Every record is sealed with the kernel's crc32c()
 * and its payload copied with uhp's FPU-guarded copy.
 *
 * Contexts:
 *   uhp_kchannel_get(), uhp_kgroup_create()      process context (may sleep)
 *   uhp_kchannel_put(), uhp_kgroup_destroy()     process context
 *   uhp_ksend(), uhp_ksend_batch(), uhp_kreserve(), uhp_kcommit(),
 *   uhp_kdiscard(), uhp_kgroup_send()            any context but NMI: process,
 *                                                softirq, hardirq, also on
 *                                                PREEMPT_RT (a raw spinlock,
 *                                                wake-ups through irq_work).
 *                                                They never sleep or block; a
 *                                                full ring is -ENOSPC
 *                                                (counted), never a wait.
 *                                                Payload copies use AVX-512/
 *                                                AVX2 only in process and
 *                                                softirq context where
 *                                                irq_fpu_usable(), else rep
 *                                                movsb or memcpy(). From NMI
 *                                                they WARN once and fail.
 * Consent: uhp_kchannel_get() binds only channels that were created with
 * UHP_CREATE_KERNEL_RINGS, which needs CAP_SYS_ADMIN.
 *
 * A sender uses the kernel ring of the node of the CPU it runs on, so
 * records are FIFO per CPU (per sender, for senders that do not migrate, e.g.
 * softirq and hardirq code, or a thread bound to a node).
 *
 * Lifetime: a held channel stays valid after its name is unlinked and after
 * its last fd is closed; uhp.ko cannot be unloaded while a module using this
 * API is loaded (symbol dependency), and that module must put every channel
 * it holds before it exits.
 */
#ifndef _UHP_KAPI_H
#define _UHP_KAPI_H

#include <linux/types.h>

struct uhp_channel;
struct uhp_kgroup;

/* Record metadata (see struct uhp_rec_hdr). */
struct uhp_kmeta {
	u64 seq;
	u32 src;
	u32 dst;
	u16 type;
};

/* One message of uhp_ksend_batch(). */
struct uhp_kmsg {
	const void *buf;
	u32 len;
	struct uhp_kmeta meta;
};

/*
 * A reservation: write len bytes at payload, then uhp_kcommit() it, or
 * uhp_kdiscard() it if it cannot be filled. One of the two must follow,
 * soon and in any case: until then the ring cannot pass this record (its
 * consumer waits for it and, a lap later, producers see "full").
 * len is for reading: the commit uses the length that was reserved.
 */
struct uhp_ktxn {
	void *payload;
	u32 len;
	/* private */
	unsigned int ring;
	u64 pos;
};

/*
 * The channel named 'name', held. ERR_PTR(-ENOENT) if there is none,
 * -EOPNOTSUPP if it has no kernel rings, -EINVAL for a malformed name.
 */
struct uhp_channel *uhp_kchannel_get(const char *name);
void uhp_kchannel_put(struct uhp_channel *ch);

/*
 * Copy and send one record. 0, or -ENOSPC (ring full), -EMSGSIZE (can
 * never fit), -EUCLEAN (the consumer corrupted read_pos).
 */
int uhp_ksend(struct uhp_channel *ch, const void *buf, u32 len,
	      const struct uhp_kmeta *meta);

/* Send msgs[0..n) in order into one ring; returns how many were sent. */
int uhp_ksend_batch(struct uhp_channel *ch, const struct uhp_kmsg *msgs,
		    unsigned int n);

/* Zero copy: reserve, fill txn->payload, commit. Errors as uhp_ksend(). */
int uhp_kreserve(struct uhp_channel *ch, u32 len, struct uhp_ktxn *txn);
void uhp_kcommit(struct uhp_channel *ch, struct uhp_ktxn *txn,
		 const struct uhp_kmeta *meta);
/* Give a reservation back: the consumer skips it (UHP_REC_F_DISCARD). */
void uhp_kdiscard(struct uhp_channel *ch, struct uhp_ktxn *txn);

/*
 * Fan-out: a set of channels (each held) that receive the same record from
 * one call. The CRC is computed once; the payload is copied once per
 * channel, all copies inside one FPU section when that is allowed and the
 * total is small enough. uhp_kgroup_send() returns the number of channels
 * that took the record (the others were full or corrupt, and counted).
 * A group has 1..16 channels (-EINVAL otherwise).
 */
struct uhp_kgroup *uhp_kgroup_create(const char * const *names,
				     unsigned int n);
void uhp_kgroup_destroy(struct uhp_kgroup *g);
int uhp_kgroup_send(struct uhp_kgroup *g, const void *buf, u32 len,
		    const struct uhp_kmeta *meta);

#endif /* _UHP_KAPI_H */
