// SPDX-License-Identifier: GPL-2.0
/*
 * uhp module: parameters, the /dev/uhp misc device and its ioctls.
 *
 * /dev/uhp only makes, finds and forgets channels (CREATE, ATTACH, UNLINK);
 * everything else happens on the channel fd those return (channel.c).
 * Each handler checks every field first and then acts, with one unwind path.
 */
#include <linux/cred.h>
#include <linux/fs.h>
#include <linux/log2.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/nodemask.h>
#include <linux/string.h>

#include "uhp.h"

unsigned int uhp_max_channels_per_user = 64;
module_param_named(max_channels_per_user, uhp_max_channels_per_user, uint, 0644);
MODULE_PARM_DESC(max_channels_per_user,
		 "Live channels one user may own; CREATE beyond it fails with ENOSPC (default 64)");

unsigned long uhp_max_ring_size = 64UL << 20;
module_param_named(max_ring_size, uhp_max_ring_size, ulong, 0644);
MODULE_PARM_DESC(max_ring_size,
		 "Largest data area of one sub-ring in bytes; larger CREATE fails with EINVAL (default 64 MiB)");

static int uhp_check_reserved(const __u64 *reserved, size_t bytes)
{
	return memchr_inv(reserved, 0, bytes) ? -EINVAL : 0;
}

static int uhp_ioctl_create(struct uhp_ucmd *ucmd)
{
	struct uhp_create *c = ucmd->cmd;
	struct uhp_channel *ch;
	int node = -1;
	int ret, fd;

	if (c->flags & ~UHP_CREATE_FLAGS)
		return -EINVAL;
	ret = uhp_check_reserved(c->__reserved, sizeof(c->__reserved));
	if (ret)
		return ret;
	if (c->mode & ~0777U)
		return -EINVAL;
	if (c->flags & UHP_CREATE_NODE) {
		if (c->node < 0 || c->node >= MAX_NUMNODES ||
		    !node_state(c->node, N_MEMORY))
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

	ch = uhp_channel_alloc(c->name, c->ring_size, node, c->mode,
			       c->flags & UHP_CREATE_KERNEL_RINGS);
	if (IS_ERR(ch))
		return PTR_ERR(ch);
	ret = uhp_registry_create(ch);
	if (ret)
		goto out_put;
	fd = uhp_channel_install_fd(ch, c->flags & UHP_CREATE_CONSUMER);
	if (fd < 0) {
		ret = fd;
		uhp_registry_forget(ch);
		goto out_put;
	}
	ret = fd;
out_put:
	uhp_channel_put(ch);	/* the allocation's reference */
	return ret;
}

static int uhp_ioctl_attach(struct uhp_ucmd *ucmd)
{
	struct uhp_attach *a = ucmd->cmd;
	struct uhp_channel *ch;
	int ret;

	if (a->flags & ~UHP_ATTACH_FLAGS)
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
	ret = uhp_registry_permission(ch);
	if (!ret)
		ret = uhp_channel_install_fd(ch, a->flags & UHP_ATTACH_CONSUMER);
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

#define UHP_DEV_IOC_BASE	_IOC_NR(UHP_IOC_CREATE)

static const struct uhp_ioctl_op uhp_dev_ioctl_ops[] = {
	UHP_IOCTL_OP(UHP_DEV_IOC_BASE, UHP_IOC_CREATE, uhp_ioctl_create,
		     struct uhp_create, __reserved, false),
	UHP_IOCTL_OP(UHP_DEV_IOC_BASE, UHP_IOC_ATTACH, uhp_ioctl_attach,
		     struct uhp_attach, __reserved, false),
	UHP_IOCTL_OP(UHP_DEV_IOC_BASE, UHP_IOC_UNLINK, uhp_ioctl_unlink,
		     struct uhp_unlink, __reserved, false),
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

/* Any user may create channels; access to each is then by its mode bits. */
static struct miscdevice uhp_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "uhp",
	.fops = &uhp_dev_fops,
	.mode = 0666,
};

static int __init uhp_init(void)
{
	int ret;

	ret = uhp_copy_init();
	if (ret)
		return ret;
	ret = misc_register(&uhp_misc);
	if (ret)
		return ret;
	pr_info("uhp: ABI %d, copy path %s, /dev/%s ready\n", UHP_ABI_VERSION,
		uhp_copy_name(uhp_copy_path()), uhp_misc.name);
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
MODULE_VERSION("0.1");
