/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers shared by the uhp KUnit suites (the kunit/ files): test-managed
 * rings, a kernel-buffer send, and a CRC32C written from the uapi's
 * definition alone (bit by bit, no table, no crc32c()), so that the sealing
 * done by ring.c is checked against something it does not share code with.
 */
#ifndef _UHP_KUNIT_H
#define _UHP_KUNIT_H

#include <kunit/test.h>
#include <linux/slab.h>
#include <linux/uio.h>

#include "../kmod/uhp.h"

/* KUnit renamed KUNIT_ASSERT_FAILURE() to KUNIT_FAIL_AND_ABORT() (6.2). */
#ifndef KUNIT_FAIL_AND_ABORT
#define KUNIT_FAIL_AND_ABORT KUNIT_ASSERT_FAILURE
#endif

/* CRC32C: Castagnoli, reflected (polynomial 0x82F63B78), as the uapi says. */
static inline u32 uhp_kunit_crc32c_update(u32 crc, const void *buf, size_t len)
{
	const u8 *p = buf;
	int k;

	while (len--) {
		crc ^= *p++;
		for (k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82F63B78U & -(crc & 1));
	}
	return crc;
}

/* hdr.crc as the uapi defines it: hdr bytes [8, 32), then the payload. */
static inline u32 uhp_kunit_rec_crc(const struct uhp_rec_hdr *h,
				    const void *payload, u32 len)
{
	u32 crc = uhp_kunit_crc32c_update(~0U, (const u8 *)h + UHP_REC_CRC_HDR_OFF,
					  UHP_REC_CRC_HDR_LEN);

	return uhp_kunit_crc32c_update(crc, payload, len) ^ ~0U;
}

struct uhp_kunit_ring_args {
	u64 size;
	bool kernel;
};

static inline int uhp_kunit_ring_res_init(struct kunit_resource *res,
					  void *context)
{
	const struct uhp_kunit_ring_args *a = context;
	struct uhp_ring *r = kzalloc(sizeof(*r), GFP_KERNEL);
	int ret;

	if (!r)
		return -ENOMEM;
	ret = uhp_ring_init(r, 0, a->size, 0, a->kernel);
	if (ret) {
		kfree(r);
		return ret;
	}
	res->data = r;
	return 0;
}

static inline void uhp_kunit_ring_res_free(struct kunit_resource *res)
{
	uhp_ring_destroy(res->data);
	kfree(res->data);
}

/* A ring of 'size' data bytes on node 0, destroyed when the test ends. */
static inline struct uhp_ring *uhp_kunit_ring_kind(struct kunit *test,
						   u64 size, bool kernel)
{
	struct uhp_kunit_ring_args a = { .size = size, .kernel = kernel };
	struct uhp_ring *r;

	r = kunit_alloc_resource(test, uhp_kunit_ring_res_init,
				 uhp_kunit_ring_res_free, GFP_KERNEL, &a);
	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, r);
	return r;
}

static inline struct uhp_ring *uhp_kunit_ring(struct kunit *test, u64 size)
{
	return uhp_kunit_ring_kind(test, size, false);
}

/* Set both shared positions, as a (possibly hostile) process could. */
static inline void uhp_kunit_set_pos(struct uhp_ring *r, u64 rpos, u64 wpos)
{
	WRITE_ONCE(r->cons->read_pos, rpos);
	WRITE_ONCE(r->prod->write_pos, wpos);
}

/* UHP_IOC_SEND's work on a kernel buffer: the payload as an ITER_KVEC. */
static inline int uhp_kunit_send(struct uhp_ring *r, const void *buf, u32 len,
				 u64 seq, u64 *pos)
{
	struct uhp_send s = {
		.size = sizeof(s),
		.type = 0x1234,
		.src = 0xa,
		.dst = 0xb,
		.seq = seq,
		.len = len,
	};
	struct kvec kv = { .iov_base = (void *)buf, .iov_len = len };
	struct iov_iter iter;

	iov_iter_kvec(&iter, ITER_SOURCE, &kv, 1, len);
	return uhp_ring_send(r, &s, &iter, pos);
}

/* The record header at 'pos', through the ring's own mask. */
static inline struct uhp_rec_hdr *uhp_kunit_hdr(struct uhp_ring *r, u64 pos)
{
	return r->data + (pos & r->mask);
}

/* A test-managed buffer of 'len' bytes filled with a pattern seeded by 'seed'. */
static inline u8 *uhp_kunit_pattern(struct kunit *test, size_t len, u8 seed)
{
	u8 *p = kunit_kmalloc(test, len ? len : 1, GFP_KERNEL);
	size_t i;

	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, p);
	for (i = 0; i < len; i++)
		p[i] = seed + i * 7 + (i >> 8);
	return p;
}

#endif /* _UHP_KUNIT_H */
