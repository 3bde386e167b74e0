// SPDX-License-Identifier: GPL-2.0
/*
 * uhp module: parameters, the /dev/uhp misc device and its ioctls.
 *
 * /dev/uhp only makes, finds and forgets channels (CREATE, ATTACH, UNLINK);
 * everything else happens on the channel fd those return (channel.c).
 * Each handler checks every field first and then acts, with one unwind path.
 */
#include <linux/capability.h>
#include <linux/cred.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/log2.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/nodemask.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>

#include "compat.h"
#include "uhp.h"
#include "trace.h"

unsigned int uhp_max_channels_per_user = 64;
module_param_named(max_channels_per_user, uhp_max_channels_per_user, uint, 0644);
MODULE_PARM_DESC(max_channels_per_user,
		 "Live channels one user may own; CREATE beyond it fails with ENOSPC (default 64)");

/*
 * Parameters that size kernel memory are checked when they are set, at load
 * or through sysfs: a value the code after them cannot hold is -EINVAL and
 * leaves the old value.
 */
unsigned long uhp_max_ring_size = 64UL << 20;

static int uhp_param_set_ring_size(const char *val, const struct kernel_param *kp)
{
	unsigned long v;
	int ret = kstrtoul(val, 0, &v);

	if (ret)
		return ret;
	if (v < PAGE_SIZE || v > UHP_RING_SIZE_LIMIT || !is_power_of_2(v))
		return -EINVAL;
	WRITE_ONCE(*(unsigned long *)kp->arg, v);
	return 0;
}

static const struct kernel_param_ops uhp_ring_size_ops = {
	.set = uhp_param_set_ring_size,
	.get = param_get_ulong,
};
module_param_cb(max_ring_size, &uhp_ring_size_ops, &uhp_max_ring_size, 0644);
MODULE_PARM_DESC(max_ring_size,
		 "Largest data area of one sub-ring in bytes, a power of two from 4 KiB to 1 GiB; larger CREATE fails with EINVAL (default 64 MiB)");

/* 0 until init sets it to half of RAM; 0 then means "no ring at all". */
unsigned long uhp_max_pinned_mb;

static int uhp_param_set_pinned(const char *val, const struct kernel_param *kp)
{
	unsigned long v;
	int ret = kstrtoul(val, 0, &v);

	if (ret)
		return ret;
	if (v > (ULONG_MAX >> 20))	/* must convert to pages and bytes */
		return -EINVAL;
	WRITE_ONCE(*(unsigned long *)kp->arg, v);
	return 0;
}

static const struct kernel_param_ops uhp_pinned_ops = {
	.set = uhp_param_set_pinned,
	.get = param_get_ulong,
};
module_param_cb(max_pinned_mb, &uhp_pinned_ops, &uhp_max_pinned_mb, 0644);
MODULE_PARM_DESC(max_pinned_mb,
		 "Ring memory of all channels together in MiB, root's included; CREATE beyond it fails with ENOSPC (default: half of RAM)");

static unsigned short dev_mode = 0666;
module_param(dev_mode, ushort, 0444);
MODULE_PARM_DESC(dev_mode, "Mode of /dev/uhp (default 0666: every user may create channels; 0660 with a udev GROUP= rule limits it to a group)");

/*
 * A fixed misc minor, so that /dev/uhp can exist before the module is
 * loaded and load it on first open (the devname alias at the end). 243 to
 * 254 are assigned to nothing in <linux/miscdevice.h> of any kernel of the
 * matrix (6.1 to 7.2), and dynamic minors come from below 128 or above 255.
 * minor=255 (MISC_DYNAMIC_MINOR) takes a dynamic one where another
 * out-of-tree driver holds this one; the autoload then does not apply.
 */
#define UHP_MINOR	249
static unsigned short minor = UHP_MINOR;
module_param(minor, ushort, 0444);
MODULE_PARM_DESC(minor, "Misc minor of /dev/uhp (default 249, which modules.devname names; 255: dynamic)");

static int uhp_check_reserved(const __u64 *reserved, size_t bytes)
{
	return memchr_inv(reserved, 0, bytes) ? -EINVAL : 0;
}

static int uhp_ioctl_create(struct uhp_ucmd *ucmd)
{
	struct uhp_create *c = ucmd->cmd;
	struct uhp_channel *ch;
	struct file *file;
	int node = -1;
	int ret;

	if (c->flags & ~UHP_CREATE_FLAGS)
		return -EINVAL;
	if ((c->flags & UHP_CREATE_CONSUME_ONLY) && !(c->flags & UHP_CREATE_CONSUMER))
		return -EINVAL;
	ret = uhp_check_reserved(c->__reserved, sizeof(c->__reserved));
	if (ret)
		return ret;
	if (c->__reserved0 || c->excl_rings > UHP_EXCL_RINGS_MAX)
		return -EINVAL;
	if (c->mode & ~0777U)
		return -EINVAL;
	if (c->flags & UHP_CREATE_NODE) {
		if (c->node < 0 || c->node >= MAX_NUMNODES ||
		    !node_state(c->node, N_NORMAL_MEMORY))
			return -EINVAL;
		node = c->node;
	} else if (c->node) {
		return -EINVAL;
	}
	if (c->ring_size < PAGE_SIZE || !is_power_of_2(c->ring_size) ||
	    c->ring_size > READ_ONCE(uhp_max_ring_size))
		return -EINVAL;
	ret = uhp_name_validate(c->name);
	if (ret)
		return ret;

	/*
	 * Kernel rings are how kernel code delivers into a channel: only a
	 * privileged creator in the initial namespace consents to that on
	 * the channel's behalf (as only privilege attaches BPF programs), so
	 * uhp_kchannel_get() never binds a name a user or a container made.
	 */
	if ((c->flags & UHP_CREATE_KERNEL_RINGS) &&
	    (!capable(CAP_SYS_ADMIN) || uhp_scope_current() != uhp_scope_init()))
		return -EPERM;

	ch = uhp_channel_alloc(c->name, c->ring_size, node, c->mode, c->flags,
			       c->excl_rings);
	if (IS_ERR(ch))
		return PTR_ERR(ch);
	/*
	 * The file, and the consumer role, exist before the name is visible:
	 * a concurrent ATTACH cannot take the role from the creator.
	 */
	file = uhp_channel_open(ch, c->flags & UHP_CREATE_CONSUMER, false,
				c->flags & UHP_CREATE_CONSUME_ONLY);
	if (IS_ERR(file)) {
		ret = PTR_ERR(file);
		goto out_put;
	}
	ret = uhp_registry_create(ch);
	if (ret) {
		fput(file);
		goto out_put;
	}
	ret = uhp_channel_install_file(file);
	if (ret < 0)
		uhp_registry_forget(ch);
	else
		trace_uhp_create(ch);
out_put:
	uhp_channel_put(ch);	/* the allocation's reference */
	return ret;
}

static int uhp_ioctl_attach(struct uhp_ucmd *ucmd)
{
	struct uhp_attach *a = ucmd->cmd;
	struct uhp_channel *ch;
	bool rdonly = a->flags & UHP_ATTACH_RDONLY;
	struct file *file;
	int ret;

	if (a->flags & ~UHP_ATTACH_FLAGS)
		return -EINVAL;
	if (rdonly && (a->flags & UHP_ATTACH_CONSUMER))
		return -EINVAL;		/* the consumer writes read_pos */
	if ((a->flags & UHP_ATTACH_CONSUME_ONLY) && !(a->flags & UHP_ATTACH_CONSUMER))
		return -EINVAL;
	ret = uhp_check_reserved(a->__reserved, sizeof(a->__reserved));
	if (ret)
		return ret;
	ret = uhp_name_validate(a->name);
	if (ret)
		return ret;

	ch = uhp_registry_lookup(a->name);
	if (!ch)
		return -ENOENT;
	ret = uhp_registry_permission(ch, rdonly);
	if (!ret) {
		file = uhp_channel_open(ch, a->flags & UHP_ATTACH_CONSUMER, rdonly,
					a->flags & UHP_ATTACH_CONSUME_ONLY);
		ret = IS_ERR(file) ? PTR_ERR(file) : uhp_channel_install_file(file);
		if (ret >= 0)
			trace_uhp_attach(ch, a->flags);
	}
	uhp_channel_put(ch);	/* the lookup's reference */
	return ret;
}

static int uhp_ioctl_unlink(struct uhp_ucmd *ucmd)
{
	struct uhp_unlink *u = ucmd->cmd;
	int ret;

	if (u->flags)
		return -EINVAL;
	ret = uhp_check_reserved(u->__reserved, sizeof(u->__reserved));
	if (ret)
		return ret;
	ret = uhp_name_validate(u->name);
	if (ret)
		return ret;
	return uhp_registry_unlink(u->name);
}

static int uhp_ioctl_list(struct uhp_ucmd *ucmd)
{
	struct uhp_list *l = ucmd->cmd;
	struct uhp_list_entry *buf = NULL;
	u32 cap = min_t(u32, l->cap, UHP_LIST_MAX);
	size_t n = min_t(size_t, l->entry_size, sizeof(*buf));
	u8 __user *dst = u64_to_user_ptr(l->entries_uptr);
	int ret = 0;
	u32 i;

	BUILD_BUG_ON(sizeof(*buf) != UHP_LIST_ENTRY_SIZE_VER1);
	if (l->flags || l->__reserved0)
		return -EINVAL;
	ret = uhp_check_reserved(l->__reserved, sizeof(l->__reserved));
	if (ret)
		return ret;
	if (l->entry_size < UHP_LIST_ENTRY_SIZE_VER0 || l->entry_size > PAGE_SIZE)
		return -EINVAL;
	if (cap) {
		buf = kvcalloc(cap, sizeof(*buf), GFP_KERNEL_ACCOUNT);
		if (!buf)
			return -ENOMEM;
	}
	/* Copied out after the registry lock is dropped: user memory can fault. */
	l->total = uhp_registry_list(buf, l->start, cap, &l->count);
	for (i = 0; i < l->count; i++, dst += l->entry_size) {
		if (copy_to_user(dst, &buf[i], n) ||
		    clear_user(dst + n, l->entry_size - n)) {
			ret = -EFAULT;
			break;
		}
	}
	kvfree(buf);
	return ret;
}

#define UHP_DEV_IOC_BASE	_IOC_NR(UHP_IOC_CREATE)

static const struct uhp_ioctl_op uhp_dev_ioctl_ops[] = {
	UHP_IOCTL_OP(UHP_DEV_IOC_BASE, UHP_IOC_CREATE, uhp_ioctl_create,
		     struct uhp_create, __reserved, false),
	UHP_IOCTL_OP(UHP_DEV_IOC_BASE, UHP_IOC_ATTACH, uhp_ioctl_attach,
		     struct uhp_attach, __reserved, false),
	UHP_IOCTL_OP(UHP_DEV_IOC_BASE, UHP_IOC_UNLINK, uhp_ioctl_unlink,
		     struct uhp_unlink, __reserved, false),
	UHP_IOCTL_OP(UHP_DEV_IOC_BASE, UHP_IOC_LIST, uhp_ioctl_list,
		     struct uhp_list, __reserved, true),
};

static long uhp_dev_ioctl(struct file *file, unsigned int cmd,
			  unsigned long arg)
{
	return uhp_ioctl_dispatch(uhp_dev_ioctl_ops,
				  ARRAY_SIZE(uhp_dev_ioctl_ops),
				  UHP_DEV_IOC_BASE, file, cmd, arg);
}

static const struct file_operations uhp_dev_fops = {
	.owner = THIS_MODULE,
	.unlocked_ioctl = uhp_dev_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = noop_llseek,
};

/*
 * Any user who can open /dev/uhp may create channels (dev_mode, and a udev
 * rule for its group, decide who can); access to each channel is then by
 * its own mode bits.
 */
static struct miscdevice uhp_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "uhp",
	.fops = &uhp_dev_fops,
};

static int __init uhp_init(void)
{
	int ret;

	ret = uhp_copy_init();
	if (ret)
		return ret;
	ret = uhp_crc_init();
	if (ret)
		return ret;
	if (dev_mode & ~0777) {
		pr_err("uhp: dev_mode=%#o: only permission bits (0..0777)\n", dev_mode);
		return -EINVAL;
	}
	if (minor > MISC_DYNAMIC_MINOR) {
		pr_err("uhp: minor=%u: 0..254, or 255 for a dynamic one\n", minor);
		return -EINVAL;
	}
	uhp_misc.mode = dev_mode;
	uhp_misc.minor = minor;
	if (!uhp_max_pinned_mb)
		uhp_max_pinned_mb = (totalram_pages() >> (20 - PAGE_SHIFT)) / 2;
	ret = misc_register(&uhp_misc);
	if (ret == -EBUSY)
		pr_err("uhp: misc minor %u is taken by another driver: load with minor=255 for a dynamic one\n",
		       minor);
	if (ret)
		return ret;
	pr_info("uhp: ABI %d, copy path %s, crc32c %s, /dev/%s (10:%d) ready\n",
		UHP_ABI_VERSION, uhp_copy_name(uhp_copy_path()),
		uhp_crc_is_table() ? "table" : "kernel", uhp_misc.name,
		uhp_misc.minor);
	return 0;
}

static void __exit uhp_exit(void)
{
	misc_deregister(&uhp_misc);
	uhp_registry_drain();
}

module_init(uhp_init);
module_exit(uhp_exit);

MODULE_DESCRIPTION("uhp: message channels on mmap'd NUMA-local rings");
MODULE_LICENSE("GPL");
MODULE_VERSION(UHP_VERSION);
/*
 * Opening /dev/uhp loads the module: depmod lists these in modules.devname,
 * kmod creates the node at boot (c 10 UHP_MINOR) and the first open asks
 * modprobe for char-major-10-UHP_MINOR.
 */
MODULE_ALIAS_MISCDEV(UHP_MINOR);
MODULE_ALIAS("devname:uhp");
