// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit: uhp_channel (kmod/channel.c) -- the channel object itself.
 *
 * Its allocation is sized by the rings the channel really has (one per
 * node with normal memory, or one, and as many kernel rings again), not by
 * MAX_NUMNODES: with Debian's NODES_SHIFT of 10, room for 2 x 1024 rings
 * made every CREATE ask for a high-order block, which a fragmented machine
 * refuses. kvzalloc() covers the machines with many nodes.
 */
#include <kunit/test.h>
#include <linux/mm.h>
#include <linux/nodemask.h>
#include <linux/slab.h>

#include "uhp_kunit.h"

static void uhp_channel_alloc_is_sized_by_rings(struct kunit *test)
{
	struct uhp_channel *one, *all;

	one = uhp_channel_alloc("kunit.size1", PAGE_SIZE, 0, 0600, 0, 0);
	KUNIT_ASSERT_FALSE(test, IS_ERR(one));
	KUNIT_EXPECT_EQ(test, one->nr_rings, 1U);
	/* One ring: a small slab object, not a vmalloc area or a high order. */
	KUNIT_EXPECT_FALSE(test, is_vmalloc_addr(one));
	KUNIT_EXPECT_LE(test, ksize(one), (size_t)PAGE_SIZE);
	KUNIT_EXPECT_LE(test, ksize(one), 2 * struct_size(one, rings, 1));
	uhp_channel_put(one);

	all = uhp_channel_alloc("kunit.sizeall", PAGE_SIZE, -1, 0600,
				UHP_CREATE_KERNEL_RINGS, 0);
	KUNIT_ASSERT_FALSE(test, IS_ERR(all));
	KUNIT_EXPECT_EQ(test, all->nr_rings, 2 * num_node_state(N_NORMAL_MEMORY));
	if (!is_vmalloc_addr(all))
		KUNIT_EXPECT_LE(test, ksize(all),
				2 * struct_size(all, rings, all->nr_rings));
	kunit_info(test, "%u rings: %zu bytes (MAX_NUMNODES %d)", all->nr_rings,
		   struct_size(all, rings, all->nr_rings), MAX_NUMNODES);
	uhp_channel_put(all);
}

/*
 * Exclusive rings sit between the user rings and the kernel rings, on the
 * user rings' nodes in turn, and are the only ones marked excl: the kernel
 * API (kring_first) and UHP_IOC_SEND's refusal depend on that order.
 */
static void uhp_channel_excl_rings_between_user_and_kernel(struct kunit *test)
{
	struct uhp_channel *ch;
	unsigned int nu, i;

	ch = uhp_channel_alloc("kunit.excl", PAGE_SIZE, -1, 0600,
			       UHP_CREATE_KERNEL_RINGS, 3);
	KUNIT_ASSERT_FALSE(test, IS_ERR(ch));
	nu = ch->nr_user_rings;
	KUNIT_EXPECT_EQ(test, nu, num_node_state(N_NORMAL_MEMORY));
	KUNIT_EXPECT_EQ(test, ch->kring_first, nu + 3);
	KUNIT_EXPECT_EQ(test, ch->nr_rings, 2 * nu + 3);
	for (i = 0; i < ch->nr_rings; i++) {
		struct uhp_ring *r = &ch->rings[i];
		bool excl = i >= nu && i < nu + 3;

		KUNIT_EXPECT_EQ(test, r->excl, excl);
		KUNIT_EXPECT_EQ(test, r->kernel, i >= nu + 3);
		KUNIT_EXPECT_PTR_EQ(test, r->claimant, (struct file *)NULL);
		if (excl)
			KUNIT_EXPECT_EQ(test, r->node, ch->rings[(i - nu) % nu].node);
	}
	uhp_channel_put(ch);
}

static struct kunit_case uhp_channel_cases[] = {
	KUNIT_CASE(uhp_channel_alloc_is_sized_by_rings),
	KUNIT_CASE(uhp_channel_excl_rings_between_user_and_kernel),
	{}
};

static struct kunit_suite uhp_channel_suite = {
	.name = "uhp_channel",
	.test_cases = uhp_channel_cases,
};

kunit_test_suite(uhp_channel_suite);
