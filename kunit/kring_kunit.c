// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit: uhp_kring (kmod/ring.c, kernel rings) -- the reservation rules
 * kernel producers live by when the only thing userspace can touch is the
 * consumer page: records published in two steps, "full" and "corrupt"
 * counted, and never a reservation over a record that is still being
 * written, whatever read_pos a consumer claims (CVE-2024-41009's lesson).
 */
#include <kunit/test.h>

#include "uhp_kunit.h"
#include "../kmod/uhp_kapi.h"

#define KRING_SIZE	PAGE_SIZE

static struct uhp_ring *kring(struct kunit *test)
{
	struct uhp_ring *r = uhp_kunit_ring_kind(test, KRING_SIZE, true);

	KUNIT_ASSERT_TRUE(test, r->kernel);
	return r;
}

/* Reserve, fill, seal and commit one record as uhp_ksend() does. */
static int ksend(struct uhp_ring *r, u32 len, u8 fill, u64 *pos)
{
	struct uhp_rec_hdr h = { .len = len, .flags = UHP_REC_F_KERNEL, .seq = fill };
	int ret = uhp_kring_reserve(r, len, pos);

	if (ret)
		return ret;
	memset(uhp_ring_payload(r, *pos), fill, len);
	h.crc = uhp_rec_crc(&h, uhp_ring_payload(r, *pos), len);
	uhp_ring_commit(r, *pos, &h);
	return 0;
}

static void uhp_kring_send_publishes(struct kunit *test)
{
	struct uhp_ring *r = kring(test);
	struct uhp_rec_hdr *h;
	u64 pos, pos2;

	KUNIT_ASSERT_EQ(test, ksend(r, 100, 0x5a, &pos), 0);
	KUNIT_EXPECT_EQ(test, pos, 0ULL);
	KUNIT_EXPECT_EQ(test, READ_ONCE(r->prod->write_pos), UHP_REC_TOTAL(100));
	h = r->data;
	KUNIT_EXPECT_EQ(test, h->tag, pos ^ r->salt);
	KUNIT_EXPECT_EQ(test, h->crc, uhp_kunit_rec_crc(h, h + 1, 100));
	KUNIT_EXPECT_TRUE(test, uhp_ring_readable(r));
	KUNIT_ASSERT_EQ(test, ksend(r, 0, 0, &pos2), 0);
	KUNIT_EXPECT_EQ(test, pos2, UHP_REC_TOTAL(100));
}

/* Step 1 alone: BUSY tag with the length, not readable yet. */
static void uhp_kring_reserve_is_busy(struct kunit *test)
{
	struct uhp_ring *r = kring(test);
	struct uhp_rec_hdr *h = r->data;
	u64 pos;

	KUNIT_ASSERT_EQ(test, uhp_kring_reserve(r, 200, &pos), 0);
	KUNIT_EXPECT_EQ(test, h->tag, pos ^ r->salt ^ UHP_TAG_BUSY);
	KUNIT_EXPECT_EQ(test, h->len, 200U);
	KUNIT_EXPECT_FALSE(test, uhp_ring_readable(r));
}

static void uhp_kring_full_is_counted(struct kunit *test)
{
	struct uhp_ring *r = kring(test);
	unsigned int fits = KRING_SIZE / UHP_REC_TOTAL(100), i;
	u64 pos;

	for (i = 0; i < fits; i++)
		KUNIT_ASSERT_EQ(test, ksend(r, 100, i, &pos), 0);
	KUNIT_EXPECT_EQ(test, ksend(r, 100, 0, &pos), -ENOSPC);
	/* 64 bytes are left; 30 payload bytes need 128. */
	KUNIT_EXPECT_EQ(test, ksend(r, 30, 0, &pos), -ENOSPC);
	KUNIT_EXPECT_EQ(test, atomic64_read(&r->kfull), 2LL);
	KUNIT_EXPECT_EQ(test, ksend(r, 0, 0, &pos), 0);	/* exactly fills it */
	KUNIT_EXPECT_EQ(test, ksend(r, 0, 0, &pos), -ENOSPC);
	KUNIT_EXPECT_EQ(test, uhp_kring_reserve(r, KRING_SIZE, &pos), -EMSGSIZE);
	/* The consumer frees one record: exactly one more fits. */
	WRITE_ONCE(r->cons->read_pos, UHP_REC_TOTAL(100));
	KUNIT_EXPECT_EQ(test, atomic64_read(&r->kfull), 3LL);
	KUNIT_EXPECT_EQ(test, ksend(r, 100, 0, &pos), 0);
	KUNIT_EXPECT_EQ(test, ksend(r, 100, 0, &pos), -ENOSPC);
}

/* Misaligned; ahead of write_pos (0); behind it by more than the ring. */
static const u64 bad_rpos[] = { 8, 64, 1ULL << 40, -(u64)(KRING_SIZE + 64) };

static void bad_rpos_desc(const u64 *v, char *desc)
{
	snprintf(desc, KUNIT_PARAM_DESC_SIZE, "read_pos %llu", *v);
}

KUNIT_ARRAY_PARAM(bad_rpos, bad_rpos, bad_rpos_desc);

/* read_pos misaligned, ahead of the kernel's write_pos, or far behind it. */
static void uhp_kring_corrupt_read_pos(struct kunit *test)
{
	struct uhp_ring *r = kring(test);
	u64 rpos = *(const u64 *)test->param_value, pos;

	WRITE_ONCE(r->cons->read_pos, rpos);
	KUNIT_EXPECT_EQ(test, ksend(r, 10, 0, &pos), -EUCLEAN);
	KUNIT_EXPECT_EQ(test, atomic64_read(&r->kcorrupt), 1LL);
	KUNIT_EXPECT_EQ(test, r->kwpos, 0ULL);	/* nothing handed out */
	WRITE_ONCE(r->cons->read_pos, 0);
	KUNIT_EXPECT_EQ(test, ksend(r, 10, 0, &pos), 0);
}

/*
 * A consumer skips a record the kernel is still writing (stall recovery, or
 * malice): read_pos says the space is free, but new reservations must stop
 * a ring's length after that record until it is committed.
 */
static void uhp_kring_never_overlaps_uncommitted(struct kunit *test)
{
	struct uhp_ring *r = kring(test);
	u64 busy, pos, end = 0;
	int n = 0;

	KUNIT_ASSERT_EQ(test, uhp_kring_reserve(r, 100, &busy), 0);	/* not committed */
	KUNIT_ASSERT_EQ(test, ksend(r, 100, 1, &pos), 0);
	/* The consumer jumps past both. */
	WRITE_ONCE(r->cons->read_pos, 2 * UHP_REC_TOTAL(100));
	while (!ksend(r, 100, 2, &pos)) {
		end = pos + UHP_REC_TOTAL(100);
		n++;
		KUNIT_ASSERT_LT(test, n, 1000);
		WRITE_ONCE(r->cons->read_pos, end);	/* consumer keeps up */
	}
	/* Stopped by the busy record, not by read_pos. */
	KUNIT_EXPECT_LE(test, end - busy, (u64)KRING_SIZE);
	KUNIT_EXPECT_GT(test, end + UHP_REC_TOTAL(100) - busy, (u64)KRING_SIZE);
	KUNIT_EXPECT_EQ(test, r->kpending, busy);
	/* The busy record's header is intact: nothing was written over it. */
	KUNIT_EXPECT_EQ(test, ((struct uhp_rec_hdr *)r->data)->tag,
			busy ^ r->salt ^ UHP_TAG_BUSY);
}

/*
 * kpending's catch-up walk runs with interrupts off: after a long-held
 * record commits, one reservation walks at most UHP_KPENDING_WALK records,
 * and the next few finish the job.
 */
static void uhp_kring_catch_up_is_bounded(struct kunit *test)
{
	struct uhp_ring *r = uhp_kunit_ring_kind(test, 16 * PAGE_SIZE, true);
	struct uhp_rec_hdr h = { .len = 0, .flags = UHP_REC_F_KERNEL };
	const u64 rec = UHP_REC_TOTAL(0);
	u64 held, pos;
	int i;

	KUNIT_ASSERT_EQ(test, uhp_kring_reserve(r, 0, &held), 0);
	for (i = 0; i < 4 * UHP_KPENDING_WALK; i++)
		KUNIT_ASSERT_EQ(test, ksend(r, 0, 1, &pos), 0);
	KUNIT_ASSERT_EQ(test, r->kpending, held);
	h.crc = uhp_rec_crc(&h, uhp_ring_payload(r, held), 0);
	uhp_ring_commit(r, held, &h);

	KUNIT_ASSERT_EQ(test, ksend(r, 0, 2, &pos), 0);
	KUNIT_EXPECT_EQ(test, r->kpending - held, UHP_KPENDING_WALK * rec);
	for (i = 0; i < 4; i++)
		KUNIT_ASSERT_EQ(test, ksend(r, 0, 3, &pos), 0);
	/* Caught up: everything before the newest record is committed. */
	KUNIT_EXPECT_EQ(test, r->kpending, pos);
}

/*
 * Through the kernel API: the length a commit publishes is the reserved
 * one, whatever the caller did to txn->len, and a reservation the caller
 * cannot fill is given back with uhp_kdiscard(), so the ring goes on.
 */
static void uhp_kring_commit_and_discard(struct kunit *test)
{
	struct uhp_channel *ch = uhp_channel_alloc("kunit.ktxn", KRING_SIZE, 0, 0600,
						   UHP_CREATE_KERNEL_RINGS, 0);
	struct uhp_rec_hdr *h;
	struct uhp_ktxn txn;
	struct uhp_ring *r;
	int i;

	KUNIT_ASSERT_FALSE(test, IS_ERR(ch));
	KUNIT_ASSERT_EQ(test, uhp_kreserve(ch, 100, &txn), 0);
	r = &ch->rings[txn.ring];
	KUNIT_ASSERT_TRUE(test, r->kernel);
	txn.len = 3000;		/* a buggy caller */
	uhp_kcommit(ch, &txn, NULL);
	h = r->data + (txn.pos & r->mask);
	KUNIT_EXPECT_EQ(test, h->len, 100U);
	KUNIT_EXPECT_EQ(test, h->tag, txn.pos ^ r->salt);
	KUNIT_EXPECT_EQ(test, h->crc, uhp_kunit_rec_crc(h, h + 1, 100));

	KUNIT_ASSERT_EQ(test, uhp_kreserve(ch, 200, &txn), 0);
	uhp_kdiscard(ch, &txn);
	h = r->data + (txn.pos & r->mask);
	KUNIT_EXPECT_EQ(test, h->len, 200U);
	KUNIT_EXPECT_EQ(test, h->flags & UHP_REC_F_DISCARD, UHP_REC_F_DISCARD);
	KUNIT_EXPECT_EQ(test, h->tag, txn.pos ^ r->salt);

	/* Three laps of the ring later nothing is stuck behind either. */
	for (i = 0; i < 3 * KRING_SIZE / UHP_REC_TOTAL(0); i++) {
		WRITE_ONCE(r->cons->read_pos, r->kwpos);	/* consumer keeps up */
		KUNIT_ASSERT_EQ(test, uhp_ksend(ch, NULL, 0, NULL), 0);
	}
	uhp_channel_put(ch);
}

static struct kunit_case uhp_kring_cases[] = {
	KUNIT_CASE(uhp_kring_send_publishes),
	KUNIT_CASE(uhp_kring_reserve_is_busy),
	KUNIT_CASE(uhp_kring_full_is_counted),
	KUNIT_CASE_PARAM(uhp_kring_corrupt_read_pos, bad_rpos_gen_params),
	KUNIT_CASE(uhp_kring_never_overlaps_uncommitted),
	KUNIT_CASE(uhp_kring_catch_up_is_bounded),
	KUNIT_CASE(uhp_kring_commit_and_discard),
	{}
};

static struct kunit_suite uhp_kring_suite = {
	.name = "uhp_kring",
	.test_cases = uhp_kring_cases,
};

kunit_test_suite(uhp_kring_suite);
