// SPDX-License-Identifier: MIT
/*
 * crc32c_test: CRC32C on every path (dispatch, table, SSE4.2).
 *  - RFC 3720 B.4 vectors and "123456789" on each path;
 *  - hw and table agree for every length 0..4096 at random alignments;
 *  - all paths agree with a bit-at-a-time reference, chaining works;
 *  - UHP_CRC=table selects the table path (the Makefile runs this twice);
 *  - the record CRC covers header bytes [8, 32) then the payload.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "uhp_internal.h"
#include "tap.h"

typedef uint32_t (*crc_fn)(uint32_t, const void *, size_t);

/* Independent reference: one bit at a time, straight from the polynomial. */
static uint32_t crc_bitwise(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len--) {
		crc ^= *p++;
		for (int b = 0; b < 8; b++)
			crc = (crc >> 1) ^ (0x82F63B78U & (0U - (crc & 1)));
	}
	return crc;
}

static uint32_t std_crc(crc_fn f, const void *buf, size_t len)
{
	return f(~0U, buf, len) ^ ~0U;
}

static uint64_t rng = 0x243F6A8885A308D3ULL;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void vector_each(const char *name, crc_fn f)
{
	uint8_t b[32];

	memset(b, 0, sizeof(b));
	tap_is(std_crc(f, b, 32), 0x8A9136AA, "%s: 32 zero bytes", name);
	memset(b, 0xff, sizeof(b));
	tap_is(std_crc(f, b, 32), 0x62A8AB43, "%s: 32 0xff bytes", name);
	for (int i = 0; i < 32; i++)
		b[i] = (uint8_t)i;
	tap_is(std_crc(f, b, 32), 0x46DD794E, "%s: 0..31 ascending", name);
	for (int i = 0; i < 32; i++)
		b[i] = (uint8_t)(31 - i);
	tap_is(std_crc(f, b, 32), 0x113FDB5C, "%s: 31..0 descending", name);
	tap_is(std_crc(f, "123456789", 9), 0xE3069283, "%s: \"123456789\"", name);
}

int main(void)
{
	static uint8_t buf[4096 + 64];
	const char *env = getenv("UHP_CRC");
	bool hw = uhp__crc32c_hw_supported();
	int bad;

	tap_plan(20);
	tap_diag("UHP_CRC=%s, dispatch uses %s, sse4.2 %s", env ? env : "(unset)",
		 uhp__crc32c_impl(), hw ? "present" : "absent");

	vector_each("uhp_crc32c", uhp_crc32c);
	vector_each("table", uhp__crc32c_table);
	if (hw) {
		vector_each("sse4.2", uhp__crc32c_hw);
	} else {
		for (int i = 0; i < 5; i++)
			tap_skip("no SSE4.2 on this CPU", "sse4.2 vector %d", i);
	}

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)rnd();

	/* Every length 0..4096, each at a random alignment and seed. */
	bad = 0;
	for (size_t len = 0; len <= 4096; len++) {
		size_t off = rnd() % 64;
		uint32_t seed = (uint32_t)rnd();
		uint32_t t = uhp__crc32c_table(seed, buf + off, len);

		if (hw && uhp__crc32c_hw(seed, buf + off, len) != t)
			bad++;
		if (uhp_crc32c(seed, buf + off, len) != t)
			bad++;
	}
	tap_is(bad, 0, "hw, table and dispatch agree, lengths 0..4096, random alignment");

	bad = 0;
	for (int i = 0; i < 300; i++) {
		size_t off = rnd() % 64, len = rnd() % 4097;
		uint32_t ref = crc_bitwise(~0U, buf + off, len);

		bad += uhp__crc32c_table(~0U, buf + off, len) != ref;
		bad += hw && uhp__crc32c_hw(~0U, buf + off, len) != ref;
	}
	tap_is(bad, 0, "table and hw match a bit-at-a-time reference");

	bad = 0;
	for (int i = 0; i < 300; i++) {
		size_t len = rnd() % 4097, cut = len ? rnd() % len : 0;
		uint32_t whole = uhp_crc32c(~0U, buf, len);
		uint32_t part = uhp_crc32c(uhp_crc32c(~0U, buf, cut), buf + cut,
					   len - cut);

		bad += whole != part;
	}
	tap_is(bad, 0, "chaining: crc(a||b) == crc(crc(a), b)");

	if (env && strcmp(env, "table") == 0)
		tap_ok(strcmp(uhp__crc32c_impl(), "table") == 0,
		       "UHP_CRC=table forces the table path");
	else
		tap_ok(strcmp(uhp__crc32c_impl(), hw ? "sse4.2" : "table") == 0,
		       "dispatch picks sse4.2 when present");

	{
		struct uhp_rec_hdr h;
		uint8_t img[UHP_REC_HDR_SIZE + 100];
		uint32_t ref;

		memset(&h, 0, sizeof(h));
		h.tag = 0x1122334455667788ULL;	/* not covered */
		h.len = 100;
		h.type = 7;
		h.flags = 0;
		h.src = 0xAABBCCDD;
		h.dst = 3;
		h.seq = 0x0102030405060708ULL;
		h.crc = 0xDEADBEEF;		/* not covered */
		memcpy(img, &h, sizeof(h));
		memcpy(img + UHP_REC_HDR_SIZE, buf, 100);
		ref = crc_bitwise(~0U, img + 8, 24);
		ref = crc_bitwise(ref, img + UHP_REC_HDR_SIZE, 100) ^ ~0U;
		tap_is(uhp__rec_crc(&h, buf, 100), ref,
		       "record CRC = crc32c(hdr[8..32) || payload)");
	}
	return tap_done();
}
