/* SPDX-License-Identifier: MIT */
/*
 * uhp-bridge: the wire format (bridge/DESIGN.md): the record's CRC as its
 * producer sealed it, the Uhp-* headers of a single record, and the link
 * (Uhp-Link). A batch's frames (struct frame) are written by route.c and
 * read by export.c.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "bridge.h"

static void put_le16(unsigned char *p, uint16_t v) { p[0] = v; p[1] = v >> 8; }
static void put_le32(unsigned char *p, uint32_t v)
{
	put_le16(p, (uint16_t)v);
	put_le16(p + 2, (uint16_t)(v >> 16));
}
static void put_le64(unsigned char *p, uint64_t v)
{
	put_le32(p, (uint32_t)v);
	put_le32(p + 4, (uint32_t)(v >> 32));
}

/*
 * The record's CRC exactly as uhp_rx.crc documents it: CRC32C of the header
 * bytes [UHP_REC_CRC_HDR_OFF, +UHP_REC_CRC_HDR_LEN) (len, type, flags, src,
 * dst, seq, little-endian) followed by the payload.
 */
uint32_t rec_crc(uint32_t len, uint16_t type, uint16_t flags,
		 uint32_t src, uint32_t dst, uint64_t seq,
		 const void *payload)
{
	unsigned char h[UHP_REC_CRC_HDR_LEN];
	uint32_t c;

	put_le32(h, len);
	put_le16(h + 4, type);
	put_le16(h + 6, flags);
	put_le32(h + 8, src);
	put_le32(h + 12, dst);
	put_le64(h + 16, seq);
	c = uhp_crc32c(~0U, h, sizeof(h));
	c = uhp_crc32c(c, payload, len);
	return ~c;
}

/* A single record's meta; its link is publish_link()'s. */
natsStatus set_headers(natsMsg *m, const struct wire *w)
{
	char b[32];
	natsStatus s;

	snprintf(b, sizeof(b), "%" PRIu32, w->src);
	s = natsMsgHeader_Set(m, "Uhp-Src", b);
	snprintf(b, sizeof(b), "%" PRIu32, w->dst);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(m, "Uhp-Dst", b);
	snprintf(b, sizeof(b), "%u", (unsigned)w->type);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(m, "Uhp-Type", b);
	snprintf(b, sizeof(b), "%" PRIu64, w->useq);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(m, "Uhp-Seq", b);
	snprintf(b, sizeof(b), "%08" PRIx32, w->crc);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(m, "Uhp-Crc", b);
	if (w->flags && s == NATS_OK) {
		snprintf(b, sizeof(b), "%u", (unsigned)w->flags);
		s = natsMsgHeader_Set(m, "Uhp-Flags", b);
	}
	return s;
}

static bool hdr_u64(natsMsg *m, const char *key, int base, uint64_t max,
		    uint64_t *out, bool required, uint64_t dflt)
{
	const char *v = NULL;

	if (natsMsgHeader_Get(m, key, &v) != NATS_OK || !v) {
		*out = dflt;
		return !required;
	}
	return parse_u64(v, base, out) && *out <= max;
}

bool parse_wire(natsMsg *m, struct wire *w)
{
	uint64_t v;

	if (!hdr_u64(m, "Uhp-Crc", 16, UINT32_MAX, &v, true, 0))
		return false;
	w->crc = (uint32_t)v;
	if (!hdr_u64(m, "Uhp-Src", 10, UINT32_MAX, &v, false, 0))
		return false;
	w->src = (uint32_t)v;
	if (!hdr_u64(m, "Uhp-Dst", 10, UINT32_MAX, &v, false, 0))
		return false;
	w->dst = (uint32_t)v;
	if (!hdr_u64(m, "Uhp-Type", 10, UINT16_MAX, &v, false, 0))
		return false;
	w->type = (uint16_t)v;
	if (!hdr_u64(m, "Uhp-Flags", 10, UINT16_MAX, &v, false, 0))
		return false;
	w->flags = (uint16_t)v;
	if (!hdr_u64(m, "Uhp-Seq", 10, UINT64_MAX, &v, false, 0))
		return false;
	w->useq = v;
	return true;
}

/* "<host>/<outbox>/<instance>/<lseq>": key = all but the last part. */
bool parse_link(const char *link, char *key, size_t keycap, uint64_t *lseq)
{
	const char *last = strrchr(link, '/');
	size_t klen;
	int slashes = 0;

	if (!last)
		return false;
	for (const char *p = link; p < last; p++)
		slashes += *p == '/';
	klen = (size_t)(last - link);
	if (slashes != 2 || klen == 0 || klen >= keycap)
		return false;
	if (!parse_u64(last + 1, 10, lseq) || *lseq == 0)
		return false;
	memcpy(key, link, klen);
	key[klen] = 0;
	return true;
}
