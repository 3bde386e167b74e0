// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit: uhp_ring (kmod/ring.c) -- the sub-ring's pages, its double mapping,
 * kernel SEND and VERIFY, and what the kernel does with positions and
 * headers a hostile process wrote into the shared pages.
 */
#include <kunit/test.h>
#include <linux/limits.h>
#include <linux/sizes.h>
#include <linux/string.h>

#include "uhp_kunit.h"

/* Smallest ring: one page of data. */
#define RING_SMALL	PAGE_SIZE
#define RING_MID	(16 * PAGE_SIZE)

/* ---- init, destroy, double mapping --------------------------------------- */

static const u64 ring_sizes[] = { SZ_4K, SZ_8K, SZ_64K, SZ_256K, SZ_1M };

static void ring_size_desc(const u64 *size, char *desc)
{
	snprintf(desc, KUNIT_PARAM_DESC_SIZE, "size %llu", *size);
}

KUNIT_ARRAY_PARAM(ring_size, ring_sizes, ring_size_desc);

static void uhp_ring_init_desc(struct kunit *test)
{
	const u64 size = *(const u64 *)test->param_value;
	struct uhp_ring *r = uhp_kunit_ring(test, size);
	const struct uhp_ring_desc *desc = r->vaddr + UHP_DESC_OFF;

	KUNIT_EXPECT_EQ(test, r->size, size);
	KUNIT_EXPECT_EQ(test, r->mask, size - 1);
	KUNIT_EXPECT_EQ(test, r->node, 0);
	KUNIT_EXPECT_EQ(test, (u64)r->nr_data_pages, size >> PAGE_SHIFT);
	KUNIT_EXPECT_EQ(test, r->salt & UHP_TAG_BUSY, 0ULL);
	/* prod page, cons page, then data (see the diagram in ring.c) */
	KUNIT_EXPECT_PTR_EQ(test, (void *)r->prod, r->vaddr + UHP_PROD_LINE_OFF);
	KUNIT_EXPECT_PTR_EQ(test, (void *)r->cons,
			    r->vaddr + PAGE_SIZE + UHP_CONS_LINE_OFF);
	KUNIT_EXPECT_PTR_EQ(test, (void *)r->wake,
			    r->vaddr + PAGE_SIZE + UHP_WAKE_LINE_OFF);
	KUNIT_EXPECT_PTR_EQ(test, r->data, r->vaddr + 2 * PAGE_SIZE);
	KUNIT_EXPECT_FALSE(test, r->kernel);

	KUNIT_EXPECT_EQ(test, desc->magic, UHP_RING_MAGIC);
	KUNIT_EXPECT_EQ(test, desc->data_size, size);
	KUNIT_EXPECT_EQ(test, desc->salt, r->salt);
	KUNIT_EXPECT_EQ(test, desc->abi_version, UHP_ABI_VERSION);
	KUNIT_EXPECT_EQ(test, desc->node, 0);
	KUNIT_EXPECT_EQ(test, desc->ring_index, 0U);

	/* Fresh pages: positions zero, nobody asleep. */
	KUNIT_EXPECT_EQ(test, r->prod->write_pos, 0ULL);
	KUNIT_EXPECT_EQ(test, r->cons->read_pos, 0ULL);
	KUNIT_EXPECT_EQ(test, r->wake->need_wakeup, 0U);
}

/* Two rings get different salts (a 2^-63 chance of a false failure). */
static void uhp_ring_init_salt_differs(struct kunit *test)
{
	struct uhp_ring *a = uhp_kunit_ring(test, RING_SMALL);
	struct uhp_ring *b = uhp_kunit_ring(test, RING_SMALL);

	KUNIT_EXPECT_NE(test, a->salt, b->salt);
}

/* A byte stored at data[i] is the byte at data[size + i], both ways. */
static void uhp_ring_double_map(struct kunit *test)
{
	const u64 size = *(const u64 *)test->param_value;
	struct uhp_ring *r = uhp_kunit_ring(test, size);
	u8 *d = r->data;
	u64 i;

	for (i = 0; i < size; i++)
		d[i] = i * 31 + (i >> 12);
	KUNIT_EXPECT_EQ(test, memcmp(d, d + size, size), 0);

	for (i = 0; i < size; i += PAGE_SIZE / 2 + 1) {
		d[size + i] = ~d[i];
		KUNIT_EXPECT_EQ(test, d[i], d[size + i]);
	}
	d[size - 1] = 0x5a;
	KUNIT_EXPECT_EQ(test, d[2 * size - 1], 0x5a);
}

/* destroy() on a destroyed ring is a no-op (channel unwind relies on it). */
static void uhp_ring_destroy_twice(struct kunit *test)
{
	struct uhp_ring r = {};

	KUNIT_ASSERT_EQ(test, uhp_ring_init(&r, 0, RING_SMALL, 3, false), 0);
	KUNIT_EXPECT_EQ(test, ((struct uhp_ring_desc *)(r.vaddr +
			       UHP_DESC_OFF))->ring_index, 3U);
	uhp_ring_destroy(&r);
	KUNIT_EXPECT_NULL(test, r.pages);
	uhp_ring_destroy(&r);
	KUNIT_EXPECT_NULL(test, r.pages);
}

/* ---- send and verify ----------------------------------------------------- */

static const u32 payload_lens[] = {
	0, 1, 23, 24, 25, 63, 64, 100, 1000, RING_MID / 2, RING_MID - UHP_REC_HDR_SIZE,
};

static void payload_len_desc(const u32 *len, char *desc)
{
	snprintf(desc, KUNIT_PARAM_DESC_SIZE, "len %u", *len);
}

KUNIT_ARRAY_PARAM(payload_len, payload_lens, payload_len_desc);

/* A kernel SEND lays out the record the uapi describes and VERIFY accepts it. */
static void uhp_ring_send_verify(struct kunit *test)
{
	const u32 len = *(const u32 *)test->param_value;
	struct uhp_ring *r = uhp_kunit_ring(test, RING_MID);
	u8 *buf = uhp_kunit_pattern(test, len, 0x11);
	struct uhp_rec_hdr *h;
	u32 vlen = 0, vcrc = 0;
	u64 pos = U64_MAX;

	KUNIT_ASSERT_EQ(test, uhp_kunit_send(r, buf, len, 42, &pos), 0);
	KUNIT_EXPECT_EQ(test, pos, 0ULL);
	KUNIT_EXPECT_EQ(test, r->prod->write_pos, UHP_REC_TOTAL(len));
	KUNIT_EXPECT_EQ(test, r->cons->read_pos, 0ULL);

	h = uhp_kunit_hdr(r, pos);
	KUNIT_EXPECT_EQ(test, h->tag, pos ^ r->salt);
	KUNIT_EXPECT_EQ(test, h->len, len);
	KUNIT_EXPECT_EQ(test, h->type, 0x1234);
	KUNIT_EXPECT_EQ(test, h->flags, 0);	/* UHP_REC_F_KERNEL: kernel rings only */
	KUNIT_EXPECT_EQ(test, h->src, 0xaU);
	KUNIT_EXPECT_EQ(test, h->dst, 0xbU);
	KUNIT_EXPECT_EQ(test, h->seq, 42ULL);
	KUNIT_EXPECT_EQ(test, h->__reserved, 0U);
	KUNIT_EXPECT_EQ(test, memcmp(h + 1, buf, len), 0);

	KUNIT_EXPECT_TRUE(test, uhp_ring_readable(r));
	KUNIT_EXPECT_EQ(test, uhp_ring_verify(r, pos, &vlen, &vcrc), 0);
	KUNIT_EXPECT_EQ(test, vlen, len);
	KUNIT_EXPECT_EQ(test, vcrc, h->crc);
}

/* Records follow each other at aligned positions; each verifies. */
static void uhp_ring_send_sequence(struct kunit *test)
{
	struct uhp_ring *r = uhp_kunit_ring(test, RING_MID);
	u8 *buf = uhp_kunit_pattern(test, 200, 0x22);
	u64 pos, expect = 0;
	u32 vlen, vcrc;
	int i;

	for (i = 0; i < 20; i++) {
		u32 len = (i * 37) % 200;

		KUNIT_ASSERT_EQ(test, uhp_kunit_send(r, buf, len, i, &pos), 0);
		KUNIT_EXPECT_EQ(test, pos, expect);
		KUNIT_EXPECT_EQ(test, pos % UHP_REC_ALIGN, 0ULL);
		expect += UHP_REC_TOTAL(len);
	}
	KUNIT_EXPECT_EQ(test, r->prod->write_pos, expect);
	for (pos = 0, i = 0; pos < expect; i++) {
		KUNIT_EXPECT_EQ(test, uhp_ring_verify(r, pos, &vlen, &vcrc), 0);
		KUNIT_EXPECT_EQ(test, uhp_kunit_hdr(r, pos)->seq, (u64)i);
		pos += UHP_REC_TOTAL(vlen);
	}
	KUNIT_EXPECT_EQ(test, pos, expect);
}

/* A payload that cannot fit even an empty ring: -EMSGSIZE, nothing reserved. */
static void uhp_ring_send_too_big(struct kunit *test)
{
	struct uhp_ring *r = uhp_kunit_ring(test, RING_SMALL);
	u8 *buf = uhp_kunit_pattern(test, RING_SMALL, 0x33);
	u64 pos = 7;

	KUNIT_EXPECT_EQ(test, uhp_kunit_send(r, buf, RING_SMALL - UHP_REC_HDR_SIZE + 1,
					     0, &pos), -EMSGSIZE);
	KUNIT_EXPECT_EQ(test, r->prod->write_pos, 0ULL);
	KUNIT_EXPECT_EQ(test, pos, 7ULL);
	/* One byte less fills the ring exactly. */
	KUNIT_EXPECT_EQ(test, uhp_kunit_send(r, buf, RING_SMALL - UHP_REC_HDR_SIZE,
					     0, &pos), 0);
	KUNIT_EXPECT_EQ(test, r->prod->write_pos, (u64)RING_SMALL);
}

/* VERIFY: misaligned pos -EINVAL, pos outside [read_pos, write_pos) -ERANGE. */
static void uhp_ring_verify_range(struct kunit *test)
{
	struct uhp_ring *r = uhp_kunit_ring(test, RING_SMALL);
	u8 buf[8] = {};
	u32 vlen, vcrc;
	u64 pos;

	KUNIT_EXPECT_EQ(test, uhp_ring_verify(r, 0, &vlen, &vcrc), -ERANGE);
	KUNIT_ASSERT_EQ(test, uhp_kunit_send(r, buf, sizeof(buf), 0, &pos), 0);
	KUNIT_ASSERT_EQ(test, uhp_kunit_send(r, buf, sizeof(buf), 1, &pos), 0);
	KUNIT_EXPECT_EQ(test, uhp_ring_verify(r, 0, &vlen, &vcrc), 0);
	KUNIT_EXPECT_EQ(test, uhp_ring_verify(r, 64, &vlen, &vcrc), 0);
	KUNIT_EXPECT_EQ(test, uhp_ring_verify(r, 8, &vlen, &vcrc), -EINVAL);
	KUNIT_EXPECT_EQ(test, uhp_ring_verify(r, 128, &vlen, &vcrc), -ERANGE);
	KUNIT_EXPECT_EQ(test, uhp_ring_verify(r, -64ULL, &vlen, &vcrc), -ERANGE);

	/* The consumer moved on: the first record is gone. */
	WRITE_ONCE(r->cons->read_pos, 64);
	KUNIT_EXPECT_EQ(test, uhp_ring_verify(r, 0, &vlen, &vcrc), -ERANGE);
	KUNIT_EXPECT_EQ(test, uhp_ring_verify(r, 64, &vlen, &vcrc), 0);
}

/* ---- full ring --------------------------------------------------------- */

/*
 * Fill a one-page ring with records of one length: every SEND succeeds
 * exactly while size - (write_pos - read_pos) >= its total, and a refused one
 * leaves write_pos alone. Then the consumer frees one record and one more
 * fits.
 */
static const u32 full_lens[] = { 0, 24, 25, 100, 1000, RING_SMALL - UHP_REC_HDR_SIZE };

KUNIT_ARRAY_PARAM(full_len, full_lens, payload_len_desc);

static void uhp_ring_full(struct kunit *test)
{
	const u32 len = *(const u32 *)test->param_value;
	const u64 total = UHP_REC_TOTAL(len);
	struct uhp_ring *r = uhp_kunit_ring(test, RING_SMALL);
	u8 *buf = uhp_kunit_pattern(test, len, 0x44);
	unsigned int sent = 0, i;
	u64 pos, w;
	int ret;

	for (i = 0; i <= RING_SMALL / UHP_REC_ALIGN; i++) {
		w = r->prod->write_pos;
		ret = uhp_kunit_send(r, buf, len, i, &pos);
		if (RING_SMALL - (w - r->cons->read_pos) >= total) {
			KUNIT_EXPECT_EQ(test, ret, 0);
			KUNIT_EXPECT_EQ(test, pos, w);
			sent++;
		} else {
			KUNIT_EXPECT_EQ(test, ret, -EAGAIN);
			KUNIT_EXPECT_EQ(test, r->prod->write_pos, w);
			break;
		}
	}
	KUNIT_EXPECT_EQ(test, sent, (unsigned int)(RING_SMALL / total));
	KUNIT_EXPECT_EQ(test, uhp_kunit_send(r, buf, len, 0, &pos), -EAGAIN);

	/* Consume the first record: exactly one more fits. */
	WRITE_ONCE(r->cons->read_pos, total);
	KUNIT_EXPECT_EQ(test, uhp_kunit_send(r, buf, len, 0, &pos), 0);
	KUNIT_EXPECT_EQ(test, uhp_kunit_send(r, buf, len, 0, &pos), -EAGAIN);
}

/* ---- free-running positions across 2^64 ----------------------------------- */

static const u64 wrap_starts[] = {
	-(3ULL * 64), -64ULL, -(u64)RING_SMALL, -(u64)RING_SMALL - 64,
	(1ULL << 63) - 3 * 64,		/* across the tag's BUSY bit */
};

static void wrap_start_desc(const u64 *start, char *desc)
{
	snprintf(desc, KUNIT_PARAM_DESC_SIZE, "start %#llx", *start);
}

KUNIT_ARRAY_PARAM(wrap_start, wrap_starts, wrap_start_desc);

/*
 * Start both positions just below a wrap and keep sending (and consuming)
 * across it: every record lands where its position says, verifies, and the
 * bytes outside it are untouched; fullness still follows the positions.
 */
static void uhp_ring_wrap(struct kunit *test)
{
	const u64 start = *(const u64 *)test->param_value;
	const u32 len = 100;			/* 192 bytes a record */
	const u64 total = UHP_REC_TOTAL(len);
	struct uhp_ring *r = uhp_kunit_ring(test, RING_SMALL);
	u8 *buf = uhp_kunit_pattern(test, len, 0x55);
	u8 *before = kunit_kmalloc(test, RING_SMALL, GFP_KERNEL);
	u8 *d = r->data;
	u32 vlen, vcrc;
	u64 pos, i, k;
	int ret;

	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, before);
	memset(d, 0xa5, RING_SMALL);
	uhp_kunit_set_pos(r, start, start);

	for (i = 0; i < 3 * RING_SMALL / total; i++) {
		u64 off;

		memcpy(before, d, RING_SMALL);
		ret = uhp_kunit_send(r, buf, len, i, &pos);
		KUNIT_ASSERT_EQ(test, ret, 0);
		KUNIT_EXPECT_EQ(test, pos, start + i * total);
		KUNIT_EXPECT_EQ(test, r->prod->write_pos, pos + total);
		KUNIT_EXPECT_EQ(test, uhp_ring_verify(r, pos, &vlen, &vcrc), 0);
		KUNIT_EXPECT_EQ(test, vlen, len);
		/* Contiguous through the second mapping, even across the end. */
		KUNIT_EXPECT_EQ(test, memcmp(d + (pos & r->mask) + UHP_REC_HDR_SIZE,
					     buf, len), 0);
		/* Only this record's bytes changed (offsets taken mod size). */
		for (k = 0; k < RING_SMALL; k++) {
			off = (k - (pos & r->mask)) & r->mask;
			if (off >= total && d[k] != before[k]) {
				KUNIT_FAIL(test, "byte %llu changed outside the record at %#llx",
					   k, pos);
				break;
			}
		}
		/* The consumer takes it. */
		WRITE_ONCE(r->cons->read_pos, pos + total);
		KUNIT_EXPECT_FALSE(test, uhp_ring_readable(r));
	}

	/* Fullness across the wrap: read_pos below 2^64, write_pos above. */
	uhp_kunit_set_pos(r, -64ULL, -64ULL);
	for (i = 0; i < RING_SMALL / total; i++)
		KUNIT_EXPECT_EQ(test, uhp_kunit_send(r, buf, len, i, &pos), 0);
	KUNIT_EXPECT_EQ(test, uhp_kunit_send(r, buf, len, i, &pos), -EAGAIN);
	KUNIT_EXPECT_EQ(test, r->prod->write_pos, -64ULL + i * total);
}

/* ---- hostile positions --------------------------------------------------- */

struct uhp_bad_pos {
	const char *what;
	u64 rpos;
	u64 wpos;
};

static const struct uhp_bad_pos bad_positions[] = {
	{ "more than size in flight", 0, RING_SMALL + 64 },
	{ "far more than size", 64, -64ULL },
	{ "read_pos ahead of write_pos", 128, 64 },
	{ "read_pos ahead across 2^64", 64, -64ULL - 64 },
	{ "write_pos misaligned", 0, 8 },
	{ "read_pos misaligned", 8, 64 },
	{ "both misaligned", 1, 1 },
	{ "write_pos misaligned near 2^64", -64ULL, -1ULL },
};

static void bad_pos_desc(const struct uhp_bad_pos *p, char *desc)
{
	snprintf(desc, KUNIT_PARAM_DESC_SIZE, "%s", p->what);
}

KUNIT_ARRAY_PARAM(bad_pos, bad_positions, bad_pos_desc);

/*
 * Positions no honest process can produce: SEND and VERIFY answer -EUCLEAN,
 * write nothing anywhere in the data area, and leave the positions as found.
 */
static void uhp_ring_hostile_positions(struct kunit *test)
{
	const struct uhp_bad_pos *p = test->param_value;
	struct uhp_ring *r = uhp_kunit_ring(test, RING_SMALL);
	u8 *buf = uhp_kunit_pattern(test, 100, 0x66);
	u8 *before = kunit_kmalloc(test, RING_SMALL, GFP_KERNEL);
	u32 vlen = 0, vcrc = 0;
	u64 pos = 7;

	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, before);
	memset(r->data, 0xa5, RING_SMALL);
	memcpy(before, r->data, RING_SMALL);
	uhp_kunit_set_pos(r, p->rpos, p->wpos);

	KUNIT_EXPECT_EQ(test, uhp_kunit_send(r, buf, 100, 0, &pos), -EUCLEAN);
	KUNIT_EXPECT_EQ(test, uhp_kunit_send(r, buf, 0, 0, &pos), -EUCLEAN);
	KUNIT_EXPECT_EQ(test, pos, 7ULL);
	KUNIT_EXPECT_EQ(test, uhp_ring_verify(r, p->rpos & ~63ULL, &vlen, &vcrc),
			-EUCLEAN);
	KUNIT_EXPECT_EQ(test, uhp_ring_verify(r, p->wpos & ~63ULL, &vlen, &vcrc),
			-EUCLEAN);
	KUNIT_EXPECT_EQ(test, vlen, 0U);

	KUNIT_EXPECT_EQ(test, memcmp(r->data, before, RING_SMALL), 0);
	KUNIT_EXPECT_EQ(test, r->cons->read_pos, p->rpos);
	KUNIT_EXPECT_EQ(test, r->prod->write_pos, p->wpos);
}

/* ---- hostile headers ----------------------------------------------------- */

struct uhp_bad_len {
	const char *what;
	u32 len;
	int expect;
};

/* One record sent with len 10 (64 bytes) then a second one (64 bytes). */
static const struct uhp_bad_len bad_lens[] = {
	{ "len as sent", 10, 0 },
	{ "len still inside the record", 24, -EBADMSG },
	{ "len into the next record", 25, -EBADMSG },
	{ "len up to write_pos", 64 + 24, -EBADMSG },
	{ "len past write_pos", 64 + 25, -EUCLEAN },
	{ "len of the ring", RING_SMALL, -EUCLEAN },
	{ "len U32_MAX", U32_MAX, -EUCLEAN },
};

static void bad_len_desc(const struct uhp_bad_len *p, char *desc)
{
	snprintf(desc, KUNIT_PARAM_DESC_SIZE, "%s", p->what);
}

KUNIT_ARRAY_PARAM(bad_len, bad_lens, bad_len_desc);

/*
 * A header whose len claims more bytes than write_pos covers is corrupt
 * (-EUCLEAN); a len inside the written bytes is merely a CRC mismatch.
 */
static void uhp_ring_header_len_lies(struct kunit *test)
{
	const struct uhp_bad_len *p = test->param_value;
	struct uhp_ring *r = uhp_kunit_ring(test, RING_SMALL);
	u8 buf[10] = { 1, 2, 3 };
	u32 vlen = 0, vcrc = 0;
	u64 pos;

	KUNIT_ASSERT_EQ(test, uhp_kunit_send(r, buf, sizeof(buf), 0, &pos), 0);
	KUNIT_ASSERT_EQ(test, uhp_kunit_send(r, buf, sizeof(buf), 1, &pos), 0);
	WRITE_ONCE(uhp_kunit_hdr(r, 0)->len, p->len);
	KUNIT_EXPECT_EQ(test, uhp_ring_verify(r, 0, &vlen, &vcrc), p->expect);
	if (p->expect != -EUCLEAN)
		KUNIT_EXPECT_EQ(test, vlen, p->len);
	/* The second record is not affected. */
	KUNIT_EXPECT_EQ(test, uhp_ring_verify(r, 64, &vlen, &vcrc), 0);
}

/* ---- the commit tag --------------------------------------------------------- */

struct uhp_bad_tag {
	const char *what;
	u64 (*tag)(const struct uhp_ring *r, u64 pos);
};

static u64 tag_busy(const struct uhp_ring *r, u64 pos)
{
	return pos ^ r->salt ^ UHP_TAG_BUSY;
}

static u64 tag_zero(const struct uhp_ring *r, u64 pos)
{
	return 0;
}

static u64 tag_last_lap(const struct uhp_ring *r, u64 pos)
{
	return (pos - r->size) ^ r->salt;
}

static u64 tag_unsalted(const struct uhp_ring *r, u64 pos)
{
	return pos;
}

static u64 tag_other_pos(const struct uhp_ring *r, u64 pos)
{
	return (pos + 64) ^ r->salt;
}

static const struct uhp_bad_tag bad_tags[] = {
	{ "busy (step 1 only)", tag_busy },
	{ "zero", tag_zero },
	{ "last lap's", tag_last_lap },
	{ "without salt", tag_unsalted },
	{ "another position's", tag_other_pos },
};

static void bad_tag_desc(const struct uhp_bad_tag *p, char *desc)
{
	snprintf(desc, KUNIT_PARAM_DESC_SIZE, "tag %s", p->what);
}

KUNIT_ARRAY_PARAM(bad_tag, bad_tags, bad_tag_desc);

/*
 * Only tag == pos ^ salt commits a record: anything else is "not yet"
 * (-EAGAIN for VERIFY, not readable for poll), and putting the committed
 * tag back makes it whole again.
 */
static void uhp_ring_uncommitted(struct kunit *test)
{
	const struct uhp_bad_tag *p = test->param_value;
	struct uhp_ring *r = uhp_kunit_ring(test, RING_SMALL);
	u8 buf[16] = { 9 };
	u32 vlen, vcrc;
	u64 pos;

	/* Not at position 0, so that "last lap" and "other" differ from it. */
	uhp_kunit_set_pos(r, 5 * RING_SMALL + 128, 5 * RING_SMALL + 128);
	KUNIT_ASSERT_EQ(test, uhp_kunit_send(r, buf, sizeof(buf), 0, &pos), 0);
	KUNIT_ASSERT_TRUE(test, uhp_ring_readable(r));

	WRITE_ONCE(uhp_kunit_hdr(r, pos)->tag, p->tag(r, pos));
	KUNIT_EXPECT_EQ(test, uhp_ring_verify(r, pos, &vlen, &vcrc), -EAGAIN);
	KUNIT_EXPECT_FALSE(test, uhp_ring_readable(r));

	WRITE_ONCE(uhp_kunit_hdr(r, pos)->tag, pos ^ r->salt);
	KUNIT_EXPECT_EQ(test, uhp_ring_verify(r, pos, &vlen, &vcrc), 0);
	KUNIT_EXPECT_TRUE(test, uhp_ring_readable(r));
}

/*
 * uhp_ring_readable() looks at the tag at read_pos and nothing else: not at
 * write_pos, not at later records.
 */
static void uhp_ring_readable_follows_tag(struct kunit *test)
{
	struct uhp_ring *r = uhp_kunit_ring(test, RING_SMALL);
	u8 buf[16] = {};
	u64 pos;

	KUNIT_EXPECT_FALSE(test, uhp_ring_readable(r));
	KUNIT_ASSERT_EQ(test, uhp_kunit_send(r, buf, sizeof(buf), 0, &pos), 0);
	KUNIT_ASSERT_EQ(test, uhp_kunit_send(r, buf, sizeof(buf), 1, &pos), 0);
	KUNIT_EXPECT_TRUE(test, uhp_ring_readable(r));

	/* First record busy again: the committed second one does not count. */
	WRITE_ONCE(uhp_kunit_hdr(r, 0)->tag, tag_busy(r, 0));
	KUNIT_EXPECT_FALSE(test, uhp_ring_readable(r));

	/* The consumer passed it: the second one is at read_pos. */
	WRITE_ONCE(r->cons->read_pos, 64);
	KUNIT_EXPECT_TRUE(test, uhp_ring_readable(r));
	WRITE_ONCE(r->cons->read_pos, 128);
	KUNIT_EXPECT_FALSE(test, uhp_ring_readable(r));

	/* A committed tag at read_pos is enough, whatever write_pos says. */
	WRITE_ONCE(uhp_kunit_hdr(r, 128)->tag, 128 ^ r->salt);
	KUNIT_EXPECT_EQ(test, r->prod->write_pos, 128ULL);
	KUNIT_EXPECT_TRUE(test, uhp_ring_readable(r));

	/* A hostile read_pos only moves the (in-bounds, masked) slot looked at. */
	WRITE_ONCE(r->cons->read_pos, 128 + 7 * RING_SMALL + 3);
	KUNIT_EXPECT_FALSE(test, uhp_ring_readable(r));
}

/* need_wakeup is cleared when the consumer goes away. */
static void uhp_ring_clear_need_wakeup_clears(struct kunit *test)
{
	struct uhp_ring *r = uhp_kunit_ring(test, RING_SMALL);

	WRITE_ONCE(r->wake->need_wakeup, 1);
	uhp_ring_clear_need_wakeup(r);
	KUNIT_EXPECT_EQ(test, r->wake->need_wakeup, 0U);
}

static struct kunit_case uhp_ring_cases[] = {
	KUNIT_CASE_PARAM(uhp_ring_init_desc, ring_size_gen_params),
	KUNIT_CASE(uhp_ring_init_salt_differs),
	KUNIT_CASE_PARAM(uhp_ring_double_map, ring_size_gen_params),
	KUNIT_CASE(uhp_ring_destroy_twice),
	KUNIT_CASE_PARAM(uhp_ring_send_verify, payload_len_gen_params),
	KUNIT_CASE(uhp_ring_send_sequence),
	KUNIT_CASE(uhp_ring_send_too_big),
	KUNIT_CASE(uhp_ring_verify_range),
	KUNIT_CASE_PARAM(uhp_ring_full, full_len_gen_params),
	KUNIT_CASE_PARAM(uhp_ring_wrap, wrap_start_gen_params),
	KUNIT_CASE_PARAM(uhp_ring_hostile_positions, bad_pos_gen_params),
	KUNIT_CASE_PARAM(uhp_ring_header_len_lies, bad_len_gen_params),
	KUNIT_CASE_PARAM(uhp_ring_uncommitted, bad_tag_gen_params),
	KUNIT_CASE(uhp_ring_readable_follows_tag),
	KUNIT_CASE(uhp_ring_clear_need_wakeup_clears),
	{}
};

static struct kunit_suite uhp_ring_suite = {
	.name = "uhp_ring",
	.test_cases = uhp_ring_cases,
};

kunit_test_suite(uhp_ring_suite);
