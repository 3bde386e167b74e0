// SPDX-License-Identifier: GPL-2.0
/*
 * uhp ioctl dispatch, shared by /dev/uhp and channel fds.
 *
 * Every uhp argument struct starts with its own size (u32). The table entry
 * for a command knows the kernel's struct size and the smallest size it
 * accepts; copy_struct_from_user() then zero-extends a shorter struct and
 * rejects a longer one whose extra bytes are not zero (-E2BIG), so old and
 * new userspace both work; a size above a page is -E2BIG outright. Results
 * are copied back up to the size userspace gave.
 */
#include <linux/fs.h>
#include <linux/uaccess.h>

#include "uhp.h"

union uhp_ucmd_buffer {
	struct uhp_create create;
	struct uhp_attach attach;
	struct uhp_unlink unlink;
	struct uhp_info info;
	struct uhp_notify notify;
	struct uhp_send send;
	struct uhp_verify verify;
};

long uhp_ioctl_dispatch(const struct uhp_ioctl_op *ops, unsigned int nr_ops,
			unsigned int base, struct file *file, unsigned int cmd,
			unsigned long arg)
{
	const struct uhp_ioctl_op *op;
	union uhp_ucmd_buffer buf;
	struct uhp_ucmd ucmd = {
		.file = file,
		.ubuffer = (void __user *)arg,
		.cmd = &buf,
	};
	unsigned int nr = _IOC_NR(cmd);
	long ret;

	if (_IOC_TYPE(cmd) != UHP_IOC_MAGIC || nr < base || nr - base >= nr_ops)
		return -ENOTTY;
	op = &ops[nr - base];
	if (op->ioctl_num != cmd)
		return -ENOTTY;

	if (get_user(ucmd.user_size, (u32 __user *)ucmd.ubuffer))
		return -EFAULT;
	if (ucmd.user_size < op->min_size)
		return -EINVAL;
	/*
	 * As clone3(), openat2() and perf_event_open(): a struct never grows
	 * past a page, and a huge size must not keep us scanning its tail.
	 */
	if (ucmd.user_size > PAGE_SIZE)
		return -E2BIG;
	ret = copy_struct_from_user(&buf, op->size, ucmd.ubuffer,
				    ucmd.user_size);
	if (ret)
		return ret;

	ret = op->execute(&ucmd);
	if (ret >= 0 && op->copy_out &&
	    copy_to_user(ucmd.ubuffer, &buf, min(ucmd.user_size, op->size)))
		return -EFAULT;	/* fds a handler made are already installed */
	return ret;
}
