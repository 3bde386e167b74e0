// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit: uhp_crc -- the CRC32C that seals every kernel-sent record and that
 * VERIFY recomputes, checked against the uapi's definition ("CRC32C of
 * header bytes [8, 32) followed by the payload") implemented independently
 * in uhp_kunit.h.
 */
#include <kunit/test.h>
#include <linux/crc32c.h>
#include <linux/sizes.h>
#include <linux/string.h>

#include "uhp_kunit.h"

#define CRC_RING	SZ_16K

/* The reference CRC and the kernel's crc32c() agree on the check value. */
static void uhp_crc_check_value(struct kunit *test)
{
	static const char check[] = "123456789";

	KUNIT_EXPECT_EQ(test, uhp_kunit_crc32c_update(~0U, check, 9) ^ ~0U,
			0xE3069283U);
	KUNIT_EXPECT_EQ(test, crc32c(~0U, check, 9) ^ ~0U, 0xE3069283U);
	/* The empty message. */
	KUNIT_EXPECT_EQ(test, uhp_kunit_crc32c_update(~0U, check, 0) ^ ~0U, 0U);
}

static const u32 crc_lens[] = { 0, 1, 3, 4, 7, 8, 15, 16, 63, 64, 65, 255, 1024,
				4093, CRC_RING - UHP_REC_HDR_SIZE };

static void crc_len_desc(const u32 *len, char *desc)
{
	snprintf(desc, KUNIT_PARAM_DESC_SIZE, "len %u", *len);
}

KUNIT_ARRAY_PARAM(crc_len, crc_lens, crc_len_desc);

/* SEND seals with the uapi's CRC; VERIFY reports that same value. */
static void uhp_crc_seal(struct kunit *test)
{
	const u32 len = *(const u32 *)test->param_value;
	struct uhp_ring *r = uhp_kunit_ring(test, CRC_RING);
	u8 *buf = uhp_kunit_pattern(test, len, len);
	struct uhp_rec_hdr *h;
	u32 vlen, vcrc = 0;
	u64 pos;

	/* Start mid-ring so that long records also cross the data end. */
	uhp_kunit_set_pos(r, CRC_RING / 2, CRC_RING / 2);
	KUNIT_ASSERT_EQ(test, uhp_kunit_send(r, buf, len, 0x0102030405060708ULL,
					     &pos), 0);
	h = uhp_kunit_hdr(r, pos);
	KUNIT_EXPECT_EQ(test, h->crc, uhp_kunit_rec_crc(h, buf, len));
	KUNIT_EXPECT_EQ(test, uhp_ring_verify(r, pos, &vlen, &vcrc), 0);
	KUNIT_EXPECT_EQ(test, vcrc, h->crc);
}

/* A record of 100 payload bytes takes 192: 52 bytes of padding follow it. */
#define FLIP_LEN	100
#define FLIP_PAYLOAD	UHP_REC_HDR_SIZE

/* One byte of a sealed record, and whether the CRC covers it. */
struct uhp_crc_flip {
	const char *what;
	unsigned int off;	/* from the start of the header */
	bool covered;
};

static const struct uhp_crc_flip crc_flips[] = {
	{ "len",		8,				true },
	{ "type",		12,				true },
	{ "flags",		14,				true },
	{ "src",		16,				true },
	{ "dst",		20,				true },
	{ "seq low",		24,				true },
	{ "seq high",		31,				true },
	{ "crc itself",		32,				true },
	{ "__reserved",		36,				false },
	{ "payload first",	FLIP_PAYLOAD,			true },
	{ "payload middle",	FLIP_PAYLOAD + FLIP_LEN / 2,	true },
	{ "payload last",	FLIP_PAYLOAD + FLIP_LEN - 1,	true },
	{ "padding",		FLIP_PAYLOAD + FLIP_LEN,	false },
	{ "padding last",	UHP_REC_TOTAL(FLIP_LEN) - 1,	false },
};

static void crc_flip_desc(const struct uhp_crc_flip *f, char *desc)
{
	snprintf(desc, KUNIT_PARAM_DESC_SIZE, "flip %s", f->what);
}

KUNIT_ARRAY_PARAM(crc_flip, crc_flips, crc_flip_desc);

/*
 * Flip one bit of a sealed record: VERIFY answers -EBADMSG exactly when the
 * bit is covered by the CRC (or is in the CRC), and reports the CRC it
 * computed. (A flipped len, 100 -> 116, still ends inside the record.)
 */
static void uhp_crc_flip_bit(struct kunit *test)
{
	const struct uhp_crc_flip *f = test->param_value;
	struct uhp_ring *r = uhp_kunit_ring(test, CRC_RING);
	u8 *buf = uhp_kunit_pattern(test, FLIP_LEN, 0x77);
	u32 vlen = 0, vcrc = 0;
	u8 *rec;
	u64 pos;

	KUNIT_ASSERT_EQ(test, uhp_kunit_send(r, buf, FLIP_LEN, 1, &pos), 0);
	rec = (u8 *)uhp_kunit_hdr(r, pos);
	rec[f->off] ^= 0x10;

	KUNIT_EXPECT_EQ(test, uhp_ring_verify(r, pos, &vlen, &vcrc),
			f->covered ? -EBADMSG : 0);
	KUNIT_EXPECT_EQ(test, vcrc, uhp_kunit_rec_crc((void *)rec,
						      rec + FLIP_PAYLOAD, vlen));
}

/* The tag is outside the CRC: changing it makes the record uncommitted. */
static void uhp_crc_tag_not_covered(struct kunit *test)
{
	struct uhp_ring *r = uhp_kunit_ring(test, CRC_RING);
	u8 *buf = uhp_kunit_pattern(test, FLIP_LEN, 0x78);
	struct uhp_rec_hdr *h;
	u32 vlen, vcrc;
	u64 pos;

	KUNIT_ASSERT_EQ(test, uhp_kunit_send(r, buf, FLIP_LEN, 1, &pos), 0);
	h = uhp_kunit_hdr(r, pos);
	KUNIT_EXPECT_EQ(test, h->crc, uhp_kunit_rec_crc(h, buf, FLIP_LEN));
	h->tag ^= 0x10;
	KUNIT_EXPECT_EQ(test, uhp_ring_verify(r, pos, &vlen, &vcrc), -EAGAIN);
	h->tag ^= 0x10;
	KUNIT_EXPECT_EQ(test, uhp_ring_verify(r, pos, &vlen, &vcrc), 0);
}

/*
 * The table crc.c may pick instead of crc32c() (an emulated CPU) computes
 * the same function: every length to 300 at every alignment, and chained.
 */
static void uhp_crc_table_matches_crc32c(struct kunit *test)
{
	u8 *buf = uhp_kunit_pattern(test, 320, 77);
	unsigned int len, off, bad = 0;

	for (off = 0; off < 8; off++)
		for (len = 0; len <= 300; len++)
			if (uhp_crc32c_table(~0U, buf + off, len) !=
			    crc32c(~0U, buf + off, len))
				bad++;
	KUNIT_EXPECT_EQ(test, bad, 0U);
	KUNIT_EXPECT_EQ(test, uhp_crc32c_table(uhp_crc32c_table(~0U, buf, 13), buf + 13, 200),
			crc32c(~0U, buf, 213));
	/* whichever crc.c chose at load, it is the same function */
	KUNIT_EXPECT_EQ(test, uhp_crc32c(~0U, buf, 300), crc32c(~0U, buf, 300));
}

/* Only a clear win (1.5x) replaces crc32c(): a noisy trial never does. */
static void uhp_crc_table_needs_a_margin(struct kunit *test)
{
	KUNIT_EXPECT_TRUE(test, uhp_crc_prefer_table(4000, 1000));	/* TCG-like */
	KUNIT_EXPECT_TRUE(test, uhp_crc_prefer_table(1000, 600));
	KUNIT_EXPECT_FALSE(test, uhp_crc_prefer_table(1000, 700));
	KUNIT_EXPECT_FALSE(test, uhp_crc_prefer_table(1000, 1000));
	KUNIT_EXPECT_FALSE(test, uhp_crc_prefer_table(100, 2000));	/* hardware */
}

static struct kunit_case uhp_crc_cases[] = {
	KUNIT_CASE(uhp_crc_check_value),
	KUNIT_CASE(uhp_crc_table_matches_crc32c),
	KUNIT_CASE(uhp_crc_table_needs_a_margin),
	KUNIT_CASE_PARAM(uhp_crc_seal, crc_len_gen_params),
	KUNIT_CASE_PARAM(uhp_crc_flip_bit, crc_flip_gen_params),
	KUNIT_CASE(uhp_crc_tag_not_covered),
	{}
};

static struct kunit_suite uhp_crc_suite = {
	.name = "uhp_crc",
	.test_cases = uhp_crc_cases,
};

kunit_test_suite(uhp_crc_suite);
