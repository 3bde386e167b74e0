// SPDX-License-Identifier: GPL-2.0
/*
 * uhp payload copy: the one routine through which every payload enters a
 * ring from outside the ring (UHP_IOC_SEND today, kernel producers later).
 *
 * Generic path only: copy_from_iter() handles user and kernel sources alike
 * and may fault, so it runs outside any FPU section. The SIMD paths
 * (AVX-512/AVX2/ERMS inside kernel_fpu_begin()/kernel_fpu_end()) will slot in
 * here for kernel-memory sources; callers do not change.
 */
#include <linux/uio.h>

#include "uhp.h"

/* Returns 0, or -EFAULT if the source could not be read in full. */
int uhp_copy_from_iter(void *dst, size_t len, struct iov_iter *from)
{
	return copy_from_iter_full(dst, len, from) ? 0 : -EFAULT;
}
