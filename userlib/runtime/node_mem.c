// SPDX-License-Identifier: MIT
/*
 * Memory on a NUMA node for the runtime's workers and agents: anonymous
 * pages bound with mbind(MPOL_PREFERRED) before anything touches them, so
 * they are allocated on the node whichever thread touches them first
 * (placement does not depend on the allocating thread being pinned).
 * Preferred, not bound: a full node falls back to another instead of
 * failing, and a node that does not exist (fake topologies in tests) just
 * leaves the default policy, as in arena.c.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <linux/mempolicy.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "runtime_internal.h"

#define NODE_MASK_BITS	1024

void *uhp__node_alloc(size_t size, int node)
{
	unsigned long mask[NODE_MASK_BITS / (sizeof(long) * CHAR_BIT)] = { 0 };
	void *p;

	p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	if (node >= 0 && node < NODE_MASK_BITS) {
		mask[node / (sizeof(long) * CHAR_BIT)] =
			1UL << (node % (sizeof(long) * CHAR_BIT));
		(void)syscall(SYS_mbind, p, size, MPOL_PREFERRED, mask,
			      NODE_MASK_BITS, 0);
	}
	return p;	/* zero-filled; pages come on first touch */
}

void uhp__node_free(void *p, size_t size)
{
	if (p)
		munmap(p, size);
}
