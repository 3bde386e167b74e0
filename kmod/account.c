// SPDX-License-Identifier: GPL-2.0
/*
 * uhp memory accounting: ring pages are pinned kernel memory that a process
 * asks for, so they are charged the way io_uring and AF_XDP charge theirs.
 *
 *   - To the creating user: user->locked_vm, against the creating process's
 *     RLIMIT_MEMLOCK, unless it has CAP_IPC_LOCK (then not charged at all,
 *     as io_uring does). Over the limit CREATE fails with -ENOMEM.
 *   - To everyone: uhp_pinned_pages, against the max_pinned_mb module
 *     parameter, which holds root too. Over it CREATE fails with -ENOSPC.
 *
 * Both are checked and charged before a single ring page is allocated, and
 * handed back by the channel's final put: a named channel outlives its
 * creator, and stays charged to its user until it is gone.
 */
#include <linux/capability.h>
#include <linux/cred.h>
#include <linux/mm.h>
#include <linux/sched/signal.h>
#include <linux/sched/user.h>

#include "uhp.h"

static atomic_long_t uhp_pinned_pages = ATOMIC_LONG_INIT(0);

/* Pages a channel of nr_rings rings of 'size' data bytes pins. */
unsigned long uhp_account_pages(unsigned int nr_rings, u64 size)
{
	return nr_rings * (UHP_RING_META_PAGES + (unsigned long)(size >> PAGE_SHIFT));
}

int uhp_account_charge(struct uhp_channel *ch, unsigned long pages)
{
	unsigned long cap = READ_ONCE(uhp_max_pinned_mb) << (20 - PAGE_SHIFT);
	unsigned long limit = rlimit(RLIMIT_MEMLOCK) >> PAGE_SHIFT;
	struct user_struct *user = current_user();
	unsigned long cur, new;

	if (atomic_long_add_return(pages, &uhp_pinned_pages) > cap) {
		atomic_long_sub(pages, &uhp_pinned_pages);
		pr_warn_ratelimited("uhp: CREATE by uid %u refused: %lu KiB of rings would pass max_pinned_mb=%lu\n",
				    from_kuid(&init_user_ns, current_uid()),
				    pages << (PAGE_SHIFT - 10), cap >> (20 - PAGE_SHIFT));
		return -ENOSPC;
	}
	ch->nr_pinned = pages;
	if (capable(CAP_IPC_LOCK))
		return 0;

	cur = atomic_long_read(&user->locked_vm);
	do {
		new = cur + pages;
		if (new > limit) {
			atomic_long_sub(pages, &uhp_pinned_pages);
			ch->nr_pinned = 0;
			pr_warn_ratelimited("uhp: CREATE by uid %u refused: %lu KiB of rings would pass RLIMIT_MEMLOCK (%lu KiB, %lu KiB locked)\n",
					    from_kuid(&init_user_ns, current_uid()),
					    pages << (PAGE_SHIFT - 10),
					    limit << (PAGE_SHIFT - 10),
					    cur << (PAGE_SHIFT - 10));
			return -ENOMEM;
		}
	} while (!atomic_long_try_cmpxchg(&user->locked_vm, &cur, new));
	ch->user = get_uid(user);
	return 0;
}

/* Undo uhp_account_charge(); a no-op for a channel that was never charged. */
void uhp_account_uncharge(struct uhp_channel *ch)
{
	atomic_long_sub(ch->nr_pinned, &uhp_pinned_pages);
	if (ch->user) {
		atomic_long_sub(ch->nr_pinned, &ch->user->locked_vm);
		free_uid(ch->user);
		ch->user = NULL;
	}
	ch->nr_pinned = 0;
}
