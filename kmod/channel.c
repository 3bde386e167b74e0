// SPDX-License-Identifier: GPL-2.0
/*
 * uhp channel: the object behind a name, and the fd a process holds on it.
 *
 * A channel fd is an anon inode file whose private_data holds a channel
 * reference. It offers the channel ioctls (INFO, NOTIFY, SEND, VERIFY),
 * poll() for consumers that ran dry, and mmap() of each sub-ring's control
 * page and data area. One fd at a time may hold the consumer role (the ring's
 * read_pos has a single writer); when it is closed the role is free again and
 * need_wakeup is cleared so producers stop calling NOTIFY for nobody.
 */
#include <linux/anon_inodes.h>
#include <linux/cred.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/nodemask.h>
#include <linux/poll.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/uio.h>

#include "compat.h"
#include "uhp.h"
#include "trace.h"

/* Offsets are UHP_MMAP_OFF(ring, part): split vm_pgoff the same way. */
#define UHP_PGOFF_PART_SHIFT	(32 - PAGE_SHIFT)
#define UHP_PGOFF_RING_SHIFT	(36 - PAGE_SHIFT)

void uhp_channel_wake(struct uhp_channel *ch)
{
	/*
	 * The waitqueue lock orders this against a consumer in poll():
	 * either it is already queued and gets woken, or its readable check
	 * runs after the record was committed (the producer committed before
	 * calling NOTIFY, the consumer's smp_mb() after setting need_wakeup
	 * pairs with the producer's smp_mb() after committing).
	 */
	trace_uhp_wake(ch);
	wake_up_interruptible_poll(&ch->wq, EPOLLIN | EPOLLRDNORM);
}

/*
 * Hung up: nobody can produce into the channel any more. Its name is gone
 * (nobody attaches again), no file that can produce is left (a file lives
 * on in mappings, in children and in fds passed over sockets: it counts
 * until its last reference goes; a UHP_*_CONSUME_ONLY consumer's file and
 * observers' cannot produce), and no kernel producer holds it. Lockless:
 * once the name is gone both can only go down (attaching and kernel
 * producers need the name), so a true answer stays true.
 */
bool uhp_channel_hung_up(struct uhp_channel *ch)
{
	return !READ_ONCE(ch->named) && atomic_read(&ch->nr_writers) <= 0;
}

/*
 * Tell a consumer in poll() when the channel has just hung up. Callers made
 * it so before calling: the waitqueue lock orders this against poll()'s
 * check, as in uhp_channel_wake().
 */
void uhp_channel_hup_wake(struct uhp_channel *ch)
{
	if (uhp_channel_hung_up(ch))
		wake_up_interruptible_poll(&ch->wq, EPOLLHUP);
}

/*
 * Can this file produce: open for writing (not an observer), and not the
 * consumer's file of a UHP_*_CONSUME_ONLY consumer. The role, and with it
 * consume_only, stays with its file until the file is released.
 */
bool uhp_file_produces(struct uhp_channel *ch, const struct file *file)
{
	return (file->f_mode & FMODE_WRITE) &&
	       !(READ_ONCE(ch->consumer) == file && READ_ONCE(ch->consume_only));
}

/* A writable file went, or a kernel producer let go. */
void uhp_channel_writer_gone(struct uhp_channel *ch)
{
	atomic_dec(&ch->nr_writers);
	uhp_channel_hup_wake(ch);
}

static void uhp_channel_kwake_fn(struct irq_work *work)
{
	uhp_channel_wake(container_of(work, struct uhp_channel, kwake));
}

/*
 * Wake the consumer on behalf of a kernel producer, which may run in
 * hard-irq context: the waitqueue lock is a spinlock_t, which sleeps on
 * PREEMPT_RT, so the wake-up is deferred to an irq_work (run from the next
 * interrupt on this CPU, or from the irq_work thread on PREEMPT_RT), as the
 * BPF ring buffer does. Queueing an already queued irq_work is a no-op: one
 * wake-up serves every record committed before it runs.
 */
void uhp_channel_kwake(struct uhp_channel *ch)
{
	irq_work_queue(&ch->kwake);
}

static void uhp_channel_release(struct kref *ref)
{
	struct uhp_channel *ch = container_of(ref, struct uhp_channel, ref);
	unsigned int i;

	/* A kernel producer's wake-up may still be queued: let it finish. */
	irq_work_sync(&ch->kwake);
	uhp_registry_release(ch);
	for (i = 0; i < ch->nr_rings; i++)
		uhp_ring_destroy(&ch->rings[i]);
	uhp_account_uncharge(ch);
	uhp_scope_put(ch->scope);
	kvfree(ch);
}

void uhp_channel_get(struct uhp_channel *ch)
{
	kref_get(&ch->ref);
}

/* Process context: the final put takes the registry mutex and vunmap()s. */
void uhp_channel_put(struct uhp_channel *ch)
{
	might_sleep();
	kref_put(&ch->ref, uhp_channel_release);
}

/*
 * Allocate a channel with one user sub-ring per node with normal memory (the
 * memory GFP_KERNEL can have: not a node whose memory is all movable), or
 * a single one on 'node' (node >= 0); then excl_rings exclusive rings on
 * the user rings' nodes in turn; with UHP_CREATE_KERNEL_RINGS, as many
 * kernel rings as user rings, on their nodes, last. The ring memory is
 * charged to the caller (account.c) before any of it is allocated. The
 * caller validated name, size, node, mode and excl_rings.
 */
struct uhp_channel *uhp_channel_alloc(const char *name, u64 ring_size,
				      int node, umode_t mode, unsigned int flags,
				      unsigned int excl_rings)
{
	bool kernel = flags & UHP_CREATE_KERNEL_RINGS;
	unsigned int nr_user = node >= 0 ? 1 : num_node_state(N_NORMAL_MEMORY);
	unsigned int nr_rings = (kernel ? 2 * nr_user : nr_user) + excl_rings;
	struct uhp_channel *ch;
	unsigned int i = 0, j;
	int nid, ret;

	/* 2 x MAX_NUMNODES rings can be more than an order-0 page: kvzalloc. */
	ch = kvzalloc(struct_size(ch, rings, nr_rings), GFP_KERNEL_ACCOUNT);
	if (!ch)
		return ERR_PTR(-ENOMEM);
	kref_init(&ch->ref);
	strscpy(ch->name, name, sizeof(ch->name));
	ch->scope = uhp_scope_get();
	ch->uid = current_fsuid();
	ch->gid = current_fsgid();
	ch->mode = mode;
	ch->auto_unlink = flags & UHP_CREATE_AUTO_UNLINK;
	INIT_LIST_HEAD(&ch->all_node);
	spin_lock_init(&ch->consumer_lock);
	spin_lock_init(&ch->claim_lock);
	init_waitqueue_head(&ch->wq);
	init_irq_work(&ch->kwake, uhp_channel_kwake_fn);
	ch->data_size = ring_size;

	ret = uhp_account_charge(ch, uhp_account_pages(nr_rings, ring_size));
	if (ret)
		goto err_free;
	if (node >= 0) {
		ret = uhp_ring_init(&ch->rings[0], node, ring_size, 0, false);
		if (ret)
			goto err_rings;
		i = 1;
	} else {
		for_each_node_state(nid, N_NORMAL_MEMORY) {
			/* Nodes may come online since we counted them. */
			if (i == nr_user)
				break;
			ret = uhp_ring_init(&ch->rings[i], nid, ring_size, i,
					    false);
			if (ret)
				goto err_rings;
			i++;
		}
	}
	ch->nr_user_rings = i;
	/* Exclusive rings: user rings the nodes take in turn. */
	for (j = 0; j < excl_rings; j++, i++) {
		ret = uhp_ring_init(&ch->rings[i],
				    ch->rings[j % ch->nr_user_rings].node,
				    ring_size, i, false);
		if (ret)
			goto err_rings;
		ch->rings[i].excl = true;
	}
	ch->kring_first = i;
	/* Kernel rings mirror the user rings' nodes. */
	for (j = 0; kernel && j < ch->nr_user_rings; j++, i++) {
		ret = uhp_ring_init(&ch->rings[i], ch->rings[j].node,
				    ring_size, i, true);
		if (ret)
			goto err_rings;
	}
	ch->nr_rings = i;
	return ch;

err_rings:
	while (i--)
		uhp_ring_destroy(&ch->rings[i]);
	uhp_account_uncharge(ch);
err_free:
	uhp_scope_put(ch->scope);
	kvfree(ch);
	return ERR_PTR(ret);
}

static bool uhp_channel_readable(struct uhp_channel *ch)
{
	unsigned int i;

	for (i = 0; i < ch->nr_rings; i++)
		if (uhp_ring_readable(&ch->rings[i]))
			return true;
	return false;
}

static int uhp_ioctl_info(struct uhp_ucmd *ucmd)
{
	struct uhp_channel *ch = ucmd->file->private_data;
	struct uhp_info *info = ucmd->cmd;
	struct uhp_ring_info __user *uri;
	unsigned int i, n;

	if (info->flags || memchr_inv(info->__reserved, 0,
				      sizeof(info->__reserved)))
		return -EINVAL;
	if (info->rings_cap && !info->rings_uptr)
		return -EINVAL;

	uri = u64_to_user_ptr(info->rings_uptr);
	n = min(info->rings_cap, ch->nr_rings);
	for (i = 0; i < n; i++) {
		struct uhp_ring *r = &ch->rings[i];
		struct uhp_ring_info ri = {
			.node = r->node,
			.flags = (r->kernel ? UHP_RING_F_KERNEL : 0) |
				 (r->excl ? UHP_RING_F_EXCL : 0) |
				 (READ_ONCE(r->claimant) ? UHP_RING_F_CLAIMED : 0),
			.prod_off = UHP_MMAP_OFF(i, UHP_PART_PROD),
			.cons_off = UHP_MMAP_OFF(i, UHP_PART_CONS),
			.data_off = UHP_MMAP_OFF(i, UHP_PART_DATA),
			.kernel_full = atomic64_read(&r->kfull),
			.kernel_corrupt = atomic64_read(&r->kcorrupt),
		};

		if (copy_to_user(&uri[i], &ri, sizeof(ri)))
			return -EFAULT;
	}

	info->flags = READ_ONCE(ch->consumer) == ucmd->file ?
		      UHP_INFO_F_CONSUMER : 0;
	if (!(ucmd->file->f_mode & FMODE_WRITE))
		info->flags |= UHP_INFO_F_RDONLY;
	else if (!uhp_file_produces(ch, ucmd->file))
		info->flags |= UHP_INFO_F_CONSUME_ONLY;
	info->abi_version = UHP_ABI_VERSION;
	info->nr_rings = ch->nr_rings;
	info->features = UHP_FEAT_NUMA_RINGS | UHP_FEAT_DOUBLE_MAP |
			 UHP_FEAT_NEED_WAKEUP | UHP_FEAT_KERNEL_SEND |
			 UHP_FEAT_VERIFY | UHP_FEAT_KERNEL_RINGS |
			 UHP_FEAT_URING_CMD | UHP_FEAT_MEMLOCK |
			 UHP_FEAT_AUTO_UNLINK | UHP_FEAT_CONS_OWNER |
			 UHP_FEAT_ATTACH_RDONLY | UHP_FEAT_LIST |
			 UHP_FEAT_EXCL_RINGS | UHP_FEAT_HANGUP | UHP_FEAT_SCOPE;
	info->data_size = ch->data_size;
	info->page_size = UHP_PAGE_SIZE;
	info->copy_path = uhp_copy_path();
	info->mode = ch->mode;
	info->uid = from_kuid_munged(current_user_ns(), ch->uid);
	info->gid = from_kgid_munged(current_user_ns(), ch->gid);
	memcpy(info->name, ch->name, sizeof(info->name));
	return 0;
}

static int uhp_ioctl_notify(struct uhp_ucmd *ucmd)
{
	struct uhp_channel *ch = ucmd->file->private_data;
	struct uhp_notify *n = ucmd->cmd;

	if (n->flags || n->__reserved)
		return -EINVAL;
	if (!(ucmd->file->f_mode & FMODE_WRITE))
		return -EBADF;		/* an observer (UHP_ATTACH_RDONLY) */
	trace_uhp_notify(ch);
	uhp_channel_wake(ch);
	return 0;
}

static int uhp_ioctl_send(struct uhp_ucmd *ucmd)
{
	struct uhp_channel *ch = ucmd->file->private_data;
	struct uhp_send *s = ucmd->cmd;
	struct iov_iter iter;
	void __user *buf;
	int ret;

	if (s->flags || s->__reserved0 || s->__reserved1 || s->pos)
		return -EINVAL;
	if (!uhp_file_produces(ch, ucmd->file))
		return -EBADF;		/* an observer, or a consume-only consumer */
	if (s->ring >= ch->nr_rings)
		return -EINVAL;
	if (ch->rings[s->ring].kernel)
		return -EPERM;	/* only kernel producers write there */
	/* Its claimant stores write_pos without a CAS: nobody else writes. */
	if (ch->rings[s->ring].excl &&
	    READ_ONCE(ch->rings[s->ring].claimant) != ucmd->file)
		return -EBUSY;
	if (s->len > MAX_RW_COUNT)
		return -EMSGSIZE;
	buf = u64_to_user_ptr(s->buf);
	if (!access_ok(buf, s->len))
		return -EFAULT;
	iov_iter_ubuf(&iter, ITER_SOURCE, buf, s->len);
	ret = uhp_ring_send(&ch->rings[s->ring], s, &iter, &s->pos);
	if (ret == 0 || ret == -EFAULT)	/* -EFAULT still filled the ring */
		uhp_channel_wake(ch);
	if (ret == -EUCLEAN)
		trace_uhp_corrupt(ch, s->ring,
				  READ_ONCE(ch->rings[s->ring].cons->read_pos),
				  READ_ONCE(ch->rings[s->ring].prod->write_pos));
	return ret;
}

static int uhp_ioctl_verify(struct uhp_ucmd *ucmd)
{
	struct uhp_channel *ch = ucmd->file->private_data;
	struct uhp_verify *v = ucmd->cmd;
	int ret;

	if (v->flags || v->__reserved0 || v->len || v->crc)
		return -EINVAL;
	if (v->ring >= ch->nr_rings)
		return -EINVAL;
	ret = uhp_ring_verify(&ch->rings[v->ring], v->pos, &v->len, &v->crc);
	/* Report what was computed even on a mismatch. */
	if (ret == -EBADMSG &&
	    copy_to_user(ucmd->ubuffer, v, min_t(u32, ucmd->user_size, sizeof(*v))))
		return -EFAULT;
	return ret;
}

/*
 * Give this fd a free exclusive ring: the first on the calling CPU's node,
 * else the first free one. claim_lock makes the claimant of each ring, and
 * "one claim per fd", single-writer facts.
 */
static int uhp_ioctl_claim(struct uhp_ucmd *ucmd)
{
	struct uhp_channel *ch = ucmd->file->private_data;
	struct uhp_claim *c = ucmd->cmd;
	unsigned int i, pick = ch->kring_first;
	int node = numa_node_id();

	if (c->flags || c->ring || c->__reserved0 ||
	    memchr_inv(c->__reserved, 0, sizeof(c->__reserved)))
		return -EINVAL;
	if (!uhp_file_produces(ch, ucmd->file))
		return -EBADF;		/* an observer, or a consume-only consumer */

	spin_lock(&ch->claim_lock);
	for (i = ch->nr_user_rings; i < ch->kring_first; i++) {
		struct uhp_ring *r = &ch->rings[i];

		if (r->claimant == ucmd->file) {
			pick = ch->kring_first;	/* one claim per fd */
			break;
		}
		if (!r->claimant && (pick == ch->kring_first ||
				     (r->node == node &&
				      ch->rings[pick].node != node)))
			pick = i;
	}
	if (pick < ch->kring_first)
		WRITE_ONCE(ch->rings[pick].claimant, ucmd->file);
	spin_unlock(&ch->claim_lock);
	if (pick == ch->kring_first)
		return -EBUSY;
	c->ring = pick;
	return 0;
}

/* The claims of a file that goes: its rings are free again. */
static void uhp_channel_claims_drop(struct uhp_channel *ch,
				    const struct file *file)
{
	unsigned int i;

	spin_lock(&ch->claim_lock);
	for (i = ch->nr_user_rings; i < ch->kring_first; i++)
		if (ch->rings[i].claimant == file)
			WRITE_ONCE(ch->rings[i].claimant, NULL);
	spin_unlock(&ch->claim_lock);
}

#define UHP_CH_IOC_BASE	_IOC_NR(UHP_IOC_INFO)

static const struct uhp_ioctl_op uhp_channel_ioctl_ops[] = {
	UHP_IOCTL_OP(UHP_CH_IOC_BASE, UHP_IOC_INFO, uhp_ioctl_info,
		     struct uhp_info, __reserved, true),
	UHP_IOCTL_OP(UHP_CH_IOC_BASE, UHP_IOC_NOTIFY, uhp_ioctl_notify,
		     struct uhp_notify, __reserved, false),
	UHP_IOCTL_OP(UHP_CH_IOC_BASE, UHP_IOC_SEND, uhp_ioctl_send,
		     struct uhp_send, pos, true),
	UHP_IOCTL_OP(UHP_CH_IOC_BASE, UHP_IOC_VERIFY, uhp_ioctl_verify,
		     struct uhp_verify, __reserved0, true),
	UHP_IOCTL_OP(UHP_CH_IOC_BASE, UHP_IOC_CLAIM, uhp_ioctl_claim,
		     struct uhp_claim, __reserved, true),
};

static long uhp_channel_ioctl(struct file *file, unsigned int cmd,
			      unsigned long arg)
{
	return uhp_ioctl_dispatch(uhp_channel_ioctl_ops,
				  ARRAY_SIZE(uhp_channel_ioctl_ops),
				  UHP_CH_IOC_BASE, file, cmd, arg);
}

/*
 * IORING_OP_URING_CMD: a doorbell, so one io_uring_enter() can wake the
 * consumers of many channels. Completes inline; never sleeps.
 */
static int uhp_channel_uring_cmd(struct io_uring_cmd *ioucmd,
				 unsigned int issue_flags)
{
	struct uhp_channel *ch = ioucmd->file->private_data;
	const struct uhp_uring_cmd *cmd = uhp_uring_cmd_payload(ioucmd);

	switch (ioucmd->cmd_op) {
	case UHP_URING_CMD_NOTIFY:
		/* The SQE is shared memory: read each field once. */
		if (READ_ONCE(cmd->flags) || READ_ONCE(cmd->__reserved0) ||
		    READ_ONCE(cmd->__reserved1))
			return -EINVAL;
		if (!(ioucmd->file->f_mode & FMODE_WRITE))
			return -EBADF;	/* an observer (UHP_ATTACH_RDONLY) */
		trace_uhp_notify(ch);
		uhp_channel_wake(ch);
		return 0;
	default:
		return -EOPNOTSUPP;
	}
}

static __poll_t uhp_channel_poll(struct file *file, poll_table *wait)
{
	struct uhp_channel *ch = file->private_data;
	__poll_t mask;

	poll_wait(file, &ch->wq, wait);
	mask = uhp_channel_readable(ch) ? EPOLLIN | EPOLLRDNORM : 0;
	if (uhp_channel_hung_up(ch))
		mask |= EPOLLHUP;
	return mask;
}

/* A partial munmap/mprotect would split the mapping: refuse it. */
static int uhp_vma_may_split(struct vm_area_struct *vma, unsigned long addr)
{
	return -EINVAL;
}

static const struct vm_operations_struct uhp_vm_ops = {
	.may_split = uhp_vma_may_split,
};

static int uhp_channel_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct uhp_channel *ch = file->private_data;
	unsigned long pgoff = vma->vm_pgoff;
	unsigned long ring = pgoff >> UHP_PGOFF_RING_SHIFT;
	unsigned int part = (pgoff >> UHP_PGOFF_PART_SHIFT) & 0xf;
	int ret;

	if (pgoff & ((1UL << UHP_PGOFF_PART_SHIFT) - 1) || ring >= ch->nr_rings)
		return -EINVAL;
	/*
	 * VM_MAYSHARE, not VM_SHARED: mmap() clears VM_SHARED of a MAP_SHARED
	 * mapping of a file not open for writing (UHP_ATTACH_RDONLY).
	 */
	if (!(vma->vm_flags & VM_MAYSHARE))
		return -EINVAL;		/* a private copy would see nothing */
	if (vma->vm_flags & VM_EXEC)
		return -EPERM;
	/*
	 * read_pos and need_wakeup have one writer, the consumer: only the
	 * fd holding the role maps the cons page writable (the role cannot
	 * move while this fd is open, and a mapping keeps it open).
	 */
	ret = uhp_ring_mmap(&ch->rings[ring], vma, part,
			    READ_ONCE(ch->consumer) == file,
			    !uhp_file_produces(ch, file));
	if (ret)
		return ret;
	/* mprotect(PROT_EXEC) stays refused */
	uhp_vm_flags_clear(vma, VM_MAYEXEC);
	vma->vm_ops = &uhp_vm_ops;
	return 0;
}

/*
 * 'file' goes: if it is the consumer, the role is free again. need_wakeup
 * is cleared (producers stop calling NOTIFY for nobody) while the role is
 * still held: the next consumer can only take it once consumer is NULL, so
 * whatever it arms is never wiped by us (KUnit: uhp_context).
 */
void uhp_channel_consumer_drop(struct uhp_channel *ch, const struct file *file)
{
	struct pid *pid = NULL;
	unsigned int i;

	spin_lock(&ch->consumer_lock);
	if (ch->consumer == file) {
		for (i = 0; i < ch->nr_rings; i++)
			uhp_ring_clear_need_wakeup(&ch->rings[i]);
		WRITE_ONCE(ch->consumer, NULL);
		WRITE_ONCE(ch->consume_only, false);
		pid = ch->consumer_pid;
		ch->consumer_pid = NULL;
	}
	spin_unlock(&ch->consumer_lock);
	put_pid(pid);
}

static int uhp_channel_fd_release(struct inode *inode, struct file *file)
{
	struct uhp_channel *ch = file->private_data;
	bool writer = uhp_file_produces(ch, file);	/* before the role goes */

	uhp_channel_consumer_drop(ch, file);
	uhp_channel_claims_drop(ch, file);
	if (writer)
		uhp_channel_writer_gone(ch);
	/* The last fd (mappings hold theirs) of an auto-unlink channel. */
	if (atomic_dec_and_test(&ch->nr_files) && ch->auto_unlink)
		uhp_registry_forget(ch);
	uhp_channel_put(ch);
	return 0;
}

static const struct file_operations uhp_channel_fops = {
	.owner = THIS_MODULE,
	.release = uhp_channel_fd_release,
	.unlocked_ioctl = uhp_channel_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.poll = uhp_channel_poll,
	.mmap = uhp_channel_mmap,
	.uring_cmd = uhp_channel_uring_cmd,
	.llseek = noop_llseek,
};

/*
 * A channel file holding a new channel reference, with the consumer role
 * if asked: -EBUSY if another file holds it. Not installed as an fd yet
 * (uhp_channel_install_file()), so CREATE can take the role before the
 * name is visible.
 */
struct file *uhp_channel_open(struct uhp_channel *ch, bool consumer, bool rdonly,
			      bool consume_only)
{
	struct file *file;
	int ret = 0;

	uhp_channel_get(ch);	/* the file's reference */
	atomic_inc(&ch->nr_files);
	/*
	 * A writable file is a writer (release drops it: uhp_file_produces()),
	 * unless it becomes a consume-only consumer below.
	 */
	if (!rdonly)
		atomic_inc(&ch->nr_writers);
	/*
	 * A read-only file: mmap() itself refuses PROT_WRITE on it and clears
	 * VM_MAYWRITE (so mprotect() cannot add it); SEND and NOTIFY check
	 * FMODE_WRITE.
	 */
	file = anon_inode_getfile("[uhp]", &uhp_channel_fops, ch,
				  rdonly ? O_RDONLY : O_RDWR);
	if (IS_ERR(file)) {
		if (!rdonly)
			atomic_dec(&ch->nr_writers);
		atomic_dec(&ch->nr_files);
		uhp_channel_put(ch);
		return file;
	}
	if (consumer) {
		spin_lock(&ch->consumer_lock);
		ret = ch->consumer ? -EBUSY : 0;
		if (!ret) {
			WRITE_ONCE(ch->consume_only, consume_only);
			ch->consumer_pid = get_pid(task_tgid(current));
			WRITE_ONCE(ch->consumer, file);
			/* Not a writer after all (counted above). */
			if (consume_only)
				atomic_dec(&ch->nr_writers);
		}
		spin_unlock(&ch->consumer_lock);
	}
	if (ret) {
		fput(file);	/* release puts the file's reference */
		return ERR_PTR(ret);
	}
	return file;
}

/* Give file an fd (O_CLOEXEC); on failure the file is put. */
int uhp_channel_install_file(struct file *file)
{
	int fd = get_unused_fd_flags(O_CLOEXEC);

	if (fd < 0) {
		fput(file);
		return fd;
	}
	fd_install(fd, file);
	return fd;
}
