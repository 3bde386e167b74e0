/* SPDX-License-Identifier: GPL-2.0 */
/*
 * uhp compat: every difference between the kernels uhp builds on, in one
 * place. This is the only file that tests LINUX_VERSION_CODE (through
 * UHP_KERNEL_AT_LEAST()); the rest of uhp (and samples/) calls the helpers
 * below and reads the same on every kernel.
 *
 * Kernels built and tested in `make check`: Debian 12's 6.1, 6.12 and
 * 6.12-rt, and Debian unstable's newest (7.x). Each entry names the kernel
 * release that changed the interface, so the oldest side can be dropped
 * when the oldest supported kernel moves past it.
 *
 *   vm_flags      read-only since 6.3: vm_flags_set()/vm_flags_clear().
 *   io_uring cmd  6.6 passes the whole SQE (the payload is ioucmd->sqe->cmd
 *                 instead of ioucmd->cmd); 6.7 moved struct io_uring_cmd
 *                 to <linux/io_uring/cmd.h>.
 *   crc32c()      6.14 made it part of the CRC32 library (<linux/crc32.h>,
 *                 no libcrc32c.ko since 6.15); before, <linux/crc32c.h>
 *                 declared it and libcrc32c exported it.
 *   hrtimer       6.13 added hrtimer_setup(); hrtimer_init() is gone in 7.x.
 *   workqueues    6.17 added system_percpu_wq, the new name of system_wq,
 *                 which later kernels deprecate.
 *
 * Not here because one spelling works everywhere: user buffers become an
 * iov_iter with access_ok() + iov_iter_ubuf() (both exist since 6.0), not
 * import_single_range() (gone in 6.9) or import_ubuf() (6.3+).
 */
#ifndef _UHP_COMPAT_H
#define _UHP_COMPAT_H

#include <linux/version.h>
#include <linux/hrtimer.h>
#include <linux/mm.h>
#include <linux/workqueue.h>

/* The one version test; checkpatch's LINUX_VERSION_CODE warning is for it. */
#define UHP_KERNEL_AT_LEAST(a, b, c) (LINUX_VERSION_CODE >= KERNEL_VERSION(a, b, c))

#if UHP_KERNEL_AT_LEAST(6, 7, 0)
#include <linux/io_uring/cmd.h>
#else
#include <linux/io_uring.h>
#endif

#if UHP_KERNEL_AT_LEAST(6, 14, 0)
#include <linux/crc32.h>
#else
#include <linux/crc32c.h>
#endif

/* ---- vm_flags ------------------------------------------------------------ */

static inline void uhp_vm_flags_clear(struct vm_area_struct *vma,
				      vm_flags_t flags)
{
#if UHP_KERNEL_AT_LEAST(6, 3, 0)
	vm_flags_clear(vma, flags);
#else
	vma->vm_flags &= ~flags;
#endif
}

/* ---- io_uring commands ------------------------------------------------------ */

/* The command's payload in the SQE: shared memory, read each field once. */
static inline const void *uhp_uring_cmd_payload(struct io_uring_cmd *ioucmd)
{
#if UHP_KERNEL_AT_LEAST(6, 6, 0)
	/* What io_uring_sqe_cmd() returns (its arguments changed in 7.x). */
	return ioucmd->sqe->cmd;
#else
	return ioucmd->cmd;
#endif
}

/* ---- hrtimers ------------------------------------------------------------ */

static inline void uhp_hrtimer_setup(struct hrtimer *timer,
				     enum hrtimer_restart (*fn)(struct hrtimer *),
				     clockid_t clock, enum hrtimer_mode mode)
{
#if UHP_KERNEL_AT_LEAST(6, 13, 0)
	hrtimer_setup(timer, fn, clock, mode);
#else
	hrtimer_init(timer, clock, mode);
	timer->function = fn;
#endif
}

/* ---- the scope of channel names --------------------------------------------- */

/*
 * Names live in the creator's IPC namespace, as POSIX message queues do,
 * where the kernel exports put_ipc_ns() and init_ipc_ns to modules (Debian's
 * 6.12 and 7.x do; Kbuild probes the kernel's symbol table and defines
 * UHP_HAVE_IPC_NS). Elsewhere (6.1) a module cannot drop a reference to an
 * IPC namespace, and names live in the creator's user namespace instead,
 * which every container runtime that unshares users also makes anew.
 * INFO reports which (UHP_FEAT_SCOPE_IPC_NS or UHP_FEAT_SCOPE_USER_NS).
 */
#ifdef UHP_HAVE_IPC_NS
#include <linux/ipc_namespace.h>
#include <linux/nsproxy.h>
#include <linux/sched.h>

#define UHP_FEAT_SCOPE		UHP_FEAT_SCOPE_IPC_NS

static inline void *uhp_scope_current(void)
{
	return current->nsproxy->ipc_ns;
}

static inline void *uhp_scope_get(void)
{
	return get_ipc_ns(current->nsproxy->ipc_ns);
}

static inline void uhp_scope_put(void *scope)
{
	put_ipc_ns(scope);
}

static inline const void *uhp_scope_init(void)
{
	return &init_ipc_ns;
}

static inline u32 uhp_scope_inum(const void *scope)
{
	return ((const struct ipc_namespace *)scope)->ns.inum;
}
#else
#include <linux/cred.h>
#include <linux/user_namespace.h>

#define UHP_FEAT_SCOPE		UHP_FEAT_SCOPE_USER_NS

static inline void *uhp_scope_current(void)
{
	return current_user_ns();
}

static inline void *uhp_scope_get(void)
{
	return get_user_ns(current_user_ns());
}

static inline void uhp_scope_put(void *scope)
{
	put_user_ns(scope);
}

static inline const void *uhp_scope_init(void)
{
	return &init_user_ns;
}

static inline u32 uhp_scope_inum(const void *scope)
{
	return ((const struct user_namespace *)scope)->ns.inum;
}
#endif

/* ---- workqueues ---------------------------------------------------------- */

/* The system workqueue whose work runs on the CPU it was queued on. */
static inline struct workqueue_struct *uhp_percpu_wq(void)
{
#if UHP_KERNEL_AT_LEAST(6, 17, 0)
	return system_percpu_wq;
#else
	return system_wq;
#endif
}

#endif /* _UHP_COMPAT_H */
