// SPDX-License-Identifier: MIT
/*
 * ring_test: the single-threaded fast path on in-memory rings.
 * Round trips of many sizes (payload, metadata, stored CRC against an
 * independent CRC), -EMSGSIZE and full/empty edges, wrap-around including
 * positions crossing 2^64, records that run across the end of the data
 * area, reserve/commit/discard/peek/release, the batch calls, round robin
 * over several rings, stats and the in-memory answers of the control calls.
 * make check runs it twice: as the CPU allows (the send/receive fast paths'
 * SSE4.2 variant on x86-64) and with UHP_CRC=table (their generic one);
 * t_seal_path checks which one ran.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdlib.h>

#include "helpers.h"
#include "tap.h"

static struct uhp_channel *mk(unsigned nr, uint64_t ds)
{
	struct uhp_channel *ch;
	int ret = uhp__mem_channel_new(nr, ds, &ch);

	if (ret)
		tap_bail("in-memory channel (%u x %llu): %d", nr,
			 (unsigned long long)ds, ret);
	return ch;
}

static uint8_t in[1 << 16], out[1 << 16];

static void t_round_trip(void)
{
	static const uint32_t sizes[] = {
		0, 1, 2, 7, 8, 23, 24, 25, 31, 32, 63, 64, 65, 100, 255, 256,
		1000, 4095, 4096, 10000, 30000, 65536 - 40 - 64, 65536 - 40,
	};
	struct uhp_channel *ch = mk(1, 1 << 16);
	int bad = 0, badcrc = 0;

	tap_is(uhp_recv(ch, out, sizeof(out), NULL), -EAGAIN, "empty: recv -EAGAIN");
	{
		struct uhp_rx rx;

		tap_is(uhp_peek(ch, &rx), -EAGAIN, "empty: peek -EAGAIN");
	}
	for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		uint32_t len = sizes[i];
		struct uhp_meta m = { .seq = 0x1000000000ULL + i, .src = 11 + i,
				      .dst = 0xFFFFFFF0 - i, .type = (uint16_t)(300 + i) };
		struct uhp_meta got;
		uint64_t pos = t_wpos(ch, 0);
		ssize_t n;

		pat_fill(in, len, 1, i);
		if (uhp_send(ch, in, len, &m)) {
			bad++;
			continue;
		}
		if (t_hdr(ch, 0, pos)->crc != ref_rec_crc(t_hdr(ch, 0, pos)))
			badcrc++;
		memset(out, 0, sizeof(out));
		n = uhp_recv(ch, out, sizeof(out), &got);
		if (n != (ssize_t)len || pat_check(out, len, 1, i) ||
		    got.seq != m.seq || got.src != m.src || got.dst != m.dst ||
		    got.type != m.type || got.flags != 0 || got.ring != 0) {
			tap_diag("size %u: recv %zd", len, n);
			bad++;
		}
	}
	tap_is(bad, 0, "round trip of 23 sizes (0 .. data_size - header): len, payload, meta");
	tap_is(badcrc, 0, "stored hdr.crc equals an independent CRC32C of hdr[8..32) || payload");
	tap_is(uhp_recv(ch, out, sizeof(out), NULL), -EAGAIN, "empty again after the round trips");
	{
		struct uhp_stats st;

		uhp_stats(ch, &st);
		tap_ok(st.sent == 23 && st.received == 23 && st.crc_errors == 0,
		       "stats count 23 sent, 23 received, 0 crc errors");
	}
	uhp_close(ch);
}

static void t_sizes_and_full(void)
{
	struct uhp_channel *ch = mk(1, 4096);
	struct uhp_txn t;
	int n;

	tap_is(uhp_send(ch, in, 4096 - 40 + 1, NULL), -EMSGSIZE,
	       "send: UHP_REC_TOTAL(len) > data_size is -EMSGSIZE");
	tap_is(uhp_send(ch, in, UINT32_MAX, NULL), -EMSGSIZE,
	       "send: len UINT32_MAX is -EMSGSIZE");
	tap_is(uhp_reserve(ch, 5000, &t), -EMSGSIZE, "reserve: too big is -EMSGSIZE");
	tap_is(uhp_send(ch, NULL, 5, NULL), -EINVAL, "send: NULL buf with len is -EINVAL");
	tap_is(uhp_send(ch, in, 4096 - 40, NULL), 0, "a record of exactly data_size bytes fits");
	tap_is(uhp_send(ch, in, 0, NULL), -EAGAIN, "then the ring is full: -EAGAIN");
	tap_is(uhp_recv(ch, out, 100, NULL), -EMSGSIZE, "recv with a short buffer: -EMSGSIZE");
	tap_is(uhp_recv(ch, out, sizeof(out), NULL), 4096 - 40,
	       "the record stayed and comes with a big enough buffer");

	/* 100-byte records occupy 192 bytes: 21 fit in 4096. */
	for (n = 0; n < 100; n++) {
		pat_fill(in, 100, 2, (uint64_t)n);
		if (uhp_send(ch, in, 100, &(struct uhp_meta){ .seq = (uint64_t)n }))
			break;
	}
	tap_is(n, 21, "ring full after 4096 / UHP_REC_TOTAL(100) = 21 records");
	tap_is(uhp_recv(ch, out, sizeof(out), NULL), 100, "one out ...");
	tap_is(uhp_send(ch, in, 100, &(struct uhp_meta){ .seq = 21 }), 0, "... one more in");
	tap_is(uhp_send(ch, in, 100, NULL), -EAGAIN, "... and full again");
	{
		struct uhp_meta m;
		int bad = 0;

		for (uint64_t s = 1; s <= 21; s++) {
			pat_fill(in, 100, 2, s);
			if (uhp_recv(ch, out, sizeof(out), &m) != 100 || m.seq != s)
				bad++;
			else if (s < 21 && pat_check(out, 100, 2, s))
				bad++;
		}
		tap_is(bad, 0, "drained in order");
	}
	uhp_close(ch);
}

/* Fill and drain a 4 KiB ring many times with sizes that keep moving. */
static int laps(struct uhp_channel *ch, int nlaps, uint64_t *records)
{
	uint64_t seq = 0, rseq = 0;
	int bad = 0;

	for (int lap = 0; lap < nlaps; lap++) {
		int sent = 0;

		for (;;) {
			uint32_t len = (uint32_t)((seq * 2654435761u) % 900);
			int ret;

			pat_fill(in, len, 3, seq);
			ret = uhp_send(ch, in, len, &(struct uhp_meta){ .seq = seq });
			if (ret == -EAGAIN)
				break;
			if (ret)
				return -1;
			seq++;
			sent++;
		}
		if (!sent)
			bad++;
		for (;;) {
			struct uhp_meta m;
			ssize_t len = uhp_recv(ch, out, sizeof(out), &m);

			if (len == -EAGAIN)
				break;
			if (len < 0 || m.seq != rseq ||
			    pat_check(out, (uint32_t)len, 3, rseq))
				bad++;
			rseq++;
		}
		if (rseq != seq)
			bad++;
	}
	*records = seq;
	return bad;
}

static void t_wrap(void)
{
	struct uhp_channel *ch = mk(1, 4096);
	uint64_t n, start = 0ULL - 3 * 4096;	/* 2^64 - 12 KiB */
	int bad;

	bad = laps(ch, 300, &n);
	tap_is(bad, 0, "300 fill/drain laps of a 4 KiB ring (%llu records)",
	       (unsigned long long)n);
	uhp_close(ch);

	ch = mk(1, 4096);
	tap_is(uhp__mem_ring_set_pos(ch, 0, start), 0, "positions moved to 2^64 - 12 KiB");
	bad = laps(ch, 50, &n);
	tap_is(bad, 0, "50 laps across the 2^64 wrap of the positions");
	tap_ok(t_wpos(ch, 0) < start && t_wpos(ch, 0) == t_rpos(ch, 0),
	       "write_pos wrapped past 2^64 and read_pos followed (%llu)",
	       (unsigned long long)t_wpos(ch, 0));
	uhp_close(ch);
}

static void t_across_end(void)
{
	struct uhp_channel *ch = mk(1, 4096);
	struct uhp_rx rx;
	const uint8_t *data = t_ring(ch, 0)->data;
	int ok_alias = 1;

	uhp__mem_ring_set_pos(ch, 0, 4096 - 64);
	pat_fill(in, 500, 4, 4);
	tap_is(uhp_send(ch, in, 500, NULL), 0, "a 500-byte record starting 64 bytes before the end");
	tap_ok(uhp_peek(ch, &rx) == 0 && rx.len == 500 &&
	       rx.payload == data + 4096 - 64 + 40 &&
	       pat_check(rx.payload, 500, 4, 4) == 0,
	       "peek sees it contiguous through the second mapping");
	for (int i = 0; i < 4096; i++)
		ok_alias &= data[i] == data[4096 + i];
	tap_ok(ok_alias, "the two halves of the data mapping are the same pages");
	tap_is(uhp_release(ch, &rx), 0, "release");
	uhp_close(ch);
}

static void t_zero_copy(void)
{
	struct uhp_channel *ch = mk(1, 4096);
	struct uhp_meta m = { .seq = 77, .src = 5, .dst = 6, .type = 9 };
	struct uhp_txn t, a;
	struct uhp_rx rx, rx2;

	tap_is(uhp_reserve(ch, 100, &t), 0, "reserve 100 bytes");
	tap_ok(t.len == 100 && t.ring == 0 && t.pos == 0 &&
	       (uint8_t *)t.payload == t_ring(ch, 0)->data + 40,
	       "the reservation points into the ring after the header");
	tap_is(t_hdr(ch, 0, 0)->tag, 0 ^ t_ring(ch, 0)->salt ^ UHP_TAG_BUSY,
	       "step 1 of the publish: tag is pos ^ salt ^ BUSY");
	tap_is(uhp_recv(ch, out, sizeof(out), NULL), -EAGAIN,
	       "an uncommitted record is not received");
	pat_fill(t.payload, 100, 5, 77);
	tap_is(uhp_commit(ch, &t, &m), 0, "commit");
	tap_is(t_hdr(ch, 0, 0)->tag, 0 ^ t_ring(ch, 0)->salt,
	       "step 2: tag is pos ^ salt");
	tap_is(uhp_commit(ch, &t, &m), -EINVAL, "a second commit is -EINVAL");
	tap_ok(uhp_peek(ch, &rx) == 0 && rx.len == 100 && rx.pos == 0 &&
	       rx.meta.seq == 77 && rx.meta.src == 5 && rx.meta.dst == 6 &&
	       rx.meta.type == 9 && pat_check(rx.payload, 100, 5, 77) == 0,
	       "peek: length, metadata and payload in place");
	tap_ok(uhp_peek(ch, &rx2) == 0 && rx2.pos == rx.pos,
	       "peek again without release: the same record");
	rx2.pos += 64;
	tap_is(uhp_release(ch, &rx2), -EINVAL, "release of a record that is not the head: -EINVAL");
	rx2 = rx;
	rx2.len += 1000;
	tap_is(uhp_release(ch, &rx2), -EINVAL,
	       "release with a length other than peek's: -EINVAL (it would move read_pos past it)");
	tap_is(uhp_release(ch, &rx), 0, "release");
	tap_is(uhp_peek(ch, &rx), -EAGAIN, "then empty");

	/* Discard: consumers skip it. */
	tap_is(uhp_reserve(ch, 50, &t), 0, "reserve for a discard");
	tap_is(uhp_send(ch, in, 10, &(struct uhp_meta){ .seq = 1 }), 0, "a record behind it");
	tap_is(uhp_discard(ch, &t), 0, "discard");
	tap_is(uhp_discard(ch, &t), -EINVAL, "discard twice: -EINVAL");
	{
		struct uhp_meta g;

		tap_ok(uhp_recv(ch, out, sizeof(out), &g) == 10 && g.seq == 1,
		       "the discarded record is skipped, the next one arrives");
	}

	/* Order is reservation order: an older reservation holds newer records back. */
	tap_is(uhp_reserve(ch, 20, &a), 0, "reserve A");
	tap_is(uhp_send(ch, in, 30, NULL), 0, "send B behind A");
	tap_is(uhp_recv(ch, out, sizeof(out), NULL), -EAGAIN, "B waits for A");
	uhp_commit(ch, &a, NULL);
	tap_ok(uhp_recv(ch, out, sizeof(out), NULL) == 20 &&
	       uhp_recv(ch, out, sizeof(out), NULL) == 30, "then A, then B");
	uhp_close(ch);
}

static void t_batch(void)
{
	struct uhp_channel *ch = mk(1, 4096);
	static uint8_t bufs[32][128];
	struct uhp_iov_msg msgs[32];
	struct uhp_rx_msg rx[32];
	uint64_t w0 = t_wpos(ch, 0);
	int n, bad = 0;

	for (int i = 0; i < 32; i++) {
		pat_fill(bufs[i], 100, 6, (uint64_t)i);
		msgs[i] = (struct uhp_iov_msg){ .buf = bufs[i], .len = 100,
						.meta = { .seq = (uint64_t)i } };
		rx[i] = (struct uhp_rx_msg){ .buf = out + i * 128, .cap = 128 };
	}
	tap_is(uhp_recv_batch(ch, rx, 32), -EAGAIN, "recv_batch on an empty ring: -EAGAIN");
	n = uhp_send_batch(ch, msgs, 30);
	tap_is(n, 21, "send_batch of 30 into a 4 KiB ring sends the 21 that fit");
	tap_is(t_wpos(ch, 0) - w0, 21 * 192, "write_pos moved by exactly 21 records");
	n = uhp_recv_batch(ch, rx, 32);
	tap_is(n, 21, "recv_batch gets all 21");
	for (int i = 0; i < 21; i++)
		if (rx[i].len != 100 || rx[i].meta.seq != (uint64_t)i ||
		    pat_check(rx[i].buf, 100, 6, (uint64_t)i))
			bad++;
	tap_is(bad, 0, "... in order, with their payloads");
	{
		struct uhp_stats st;

		uhp_stats(ch, &st);
		tap_ok(t_ring(ch, 0)->cons->read_pos == t_wpos(ch, 0) &&
		       st.received == 21,
		       "the batch published read_pos once at its end and counted 21");
	}

	msgs[3].len = 5000;
	tap_is(uhp_send_batch(ch, msgs, 6), 3, "a batch stops before an oversized message");
	tap_is(uhp_send_batch(ch, msgs + 3, 3), -EMSGSIZE, "which alone is -EMSGSIZE");
	msgs[3].len = 100;
	msgs[4].buf = NULL;
	tap_is(uhp_send_batch(ch, msgs + 4, 2), -EINVAL, "NULL buffer with a length: -EINVAL");
	msgs[4].buf = bufs[4];
	tap_is(uhp_send_batch(ch, msgs, 0), 0, "an empty batch sends nothing");

	rx[1].cap = 10;
	tap_is(uhp_recv_batch(ch, rx, 3), 1, "recv_batch stops before a record too big for its slot");
	tap_is(uhp_recv_batch(ch, rx + 1, 1), -EMSGSIZE, "which alone is -EMSGSIZE");
	rx[1].cap = 128;
	tap_is(uhp_recv_batch(ch, rx + 1, 2), 2, "and arrives with room");
	uhp_close(ch);
}

static void t_round_robin(void)
{
	enum { PER = 2 * UHP_RR_QUANTUM, ALL = 3 * PER };
	struct uhp_channel *ch = mk(3, 1 << 14);
	uint32_t seen[ALL];
	int bad = 0, n = 0;
	uint64_t next[3] = { 0 };

	tap_is(uhp_nr_rings(ch), 3, "three rings");
	for (int k = 0; k < 3; k++) {
		uhp__set_thread_ring(k);
		for (uint64_t s = 0; s < PER; s++)
			uhp_send(ch, in, 8, &(struct uhp_meta){ .seq = s, .src = (uint32_t)k });
	}
	uhp__set_thread_ring(-1);
	for (;;) {
		struct uhp_meta m;

		if (uhp_recv(ch, out, sizeof(out), &m) < 0)
			break;
		if (n < ALL)
			seen[n] = m.ring;
		n++;
		if (m.ring != m.src || m.seq != next[m.ring]++)
			bad++;
	}
	tap_ok(n == ALL && bad == 0, "%d records, each from the ring it was sent to, FIFO per ring",
	       ALL);
	for (int i = 0; i < ALL && i < n; i++)
		if (seen[i] != (uint32_t)(i / UHP_RR_QUANTUM % 3))
			bad++;
	tap_is(bad, 0, "the consumer takes the rings in turn, %d records a turn (0..0,1..1,2..2,0..)",
	       UHP_RR_QUANTUM);

	/* Ring 1 empty: the turn skips it; a ring that runs dry ends its turn. */
	uhp__set_thread_ring(0);
	uhp_send(ch, in, 8, NULL);
	uhp_send(ch, in, 8, NULL);
	uhp__set_thread_ring(2);
	uhp_send(ch, in, 8, NULL);
	uhp_send(ch, in, 8, NULL);
	uhp__set_thread_ring(-1);
	{
		uint32_t order[4] = { 9, 9, 9, 9 };

		for (int i = 0; i < 4; i++) {
			struct uhp_meta m;

			if (uhp_recv(ch, out, sizeof(out), &m) >= 0)
				order[i] = m.ring;
		}
		tap_ok(order[0] == 0 && order[1] == 0 && order[2] == 2 && order[3] == 2,
		       "with ring 1 empty: 0,0,2,2 (got %u,%u,%u,%u)",
		       order[0], order[1], order[2], order[3]);
	}
	{
		/* in-memory ring k is on "node" k: we must land on our node's */
		unsigned cpu = 0, node = 0;
		struct uhp_meta m = { .ring = 99 };
		uint32_t want;

		getcpu(&cpu, &node);
		want = node < 3 ? node : 0;
		uhp_send(ch, in, 8, NULL);
		uhp_recv(ch, out, sizeof(out), &m);
		tap_ok(m.ring == want && uhp_producer_ring(ch) == want &&
		       t_ring(ch, want)->prod->producer_cpu < 4096,
		       "a new handle produces into the ring of its node (node %u, ring %u)",
		       node, m.ring);
		tap_is(uhp_set_producer_ring(ch, 3), -EINVAL, "no ring 3 to move to");
		tap_is(uhp_set_producer_ring(ch, 2), 0, "the producer ring can be moved");
		uhp_send(ch, in, 8, NULL);
		uhp_recv(ch, out, sizeof(out), &m);
		tap_is(m.ring, 2, "and records follow it");
	}
	uhp_close(ch);
}

static void t_control_in_memory(void)
{
	struct uhp_channel *ch = mk(2, 8192);
	struct uhp_info info;
	struct uhp_ring_info ri[2];

	tap_ok(uhp_info(ch, &info, ri, 2) == 0 && info.nr_rings == 2 &&
	       info.data_size == 8192 && (info.flags & UHP_INFO_F_CONSUMER) &&
	       info.abi_version == UHP_ABI_VERSION &&
	       ri[1].prod_off == UHP_MMAP_OFF(1, UHP_PART_PROD) &&
	       ri[1].cons_off == UHP_MMAP_OFF(1, UHP_PART_CONS),
	       "uhp_info on an in-memory channel");
	tap_ok(uhp_channel_fd(ch) == -EOPNOTSUPP &&
	       uhp_kernel_send(ch, 0, in, 1, NULL, NULL) == -EOPNOTSUPP &&
	       uhp_verify(ch, 0, 0, NULL, NULL) == -EOPNOTSUPP,
	       "fd, kernel_send and verify: -EOPNOTSUPP without a kernel channel");
	{
		struct uhp_ring_desc *d = (void *)((char *)t_ring(ch, 1)->prod_page + UHP_DESC_OFF);

		tap_ok(d->magic == UHP_RING_MAGIC && d->data_size == 8192 &&
		       d->ring_index == 1 && d->salt == t_ring(ch, 1)->salt &&
		       t_ring(ch, 0)->salt != t_ring(ch, 1)->salt,
		       "the desc is filled like the kernel's, with a salt per ring");
	}
	tap_is(uhp__mem_channel_new(1, 6000, &ch), -EINVAL,
	       "in-memory channel: size not a power of two is -EINVAL");
	uhp_close(NULL);
	uhp_close(ch);
}

/*
 * peek/release over the sizes around the fast path's limits (in place
 * CRC up to UHP_SEAL_COPY_MAX, the general path beyond), and a payload
 * byte flipped after the commit: -EBADMSG, consumed, the next one arrives.
 */
static void t_peek_sizes(void)
{
	static const uint32_t sizes[] = { 0, 1, 7, 8, 31, 63, 64, 65, 255, 256, 257, 1000 };
	struct uhp_channel *ch = mk(1, 1 << 14);
	int bad = 0;

	for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct uhp_meta m = { .seq = 500 + i, .src = 3, .dst = 4,
				      .type = (uint16_t)i };
		struct uhp_rx rx;

		pat_fill(in, sizes[i], 2, i);
		if (uhp_send(ch, in, sizes[i], &m) ||
		    uhp_peek(ch, &rx) || rx.len != sizes[i] ||
		    rx.meta.seq != m.seq || rx.meta.src != 3 || rx.meta.dst != 4 ||
		    rx.meta.type != m.type || rx.meta.flags != 0 || rx.meta.ring != 0 ||
		    pat_check(rx.payload, sizes[i], 2, i) || uhp_release(ch, &rx)) {
			tap_diag("peek of %u bytes", sizes[i]);
			bad++;
		}
	}
	tap_is(bad, 0, "peek/release of 12 sizes around the in-place CRC's limit");
	for (unsigned i = 0; i < 2; i++) {
		uint32_t len = i ? 1000 : 64;
		uint64_t pos = t_wpos(ch, 0);
		struct uhp_rx rx;

		pat_fill(in, len, 3, i);
		uhp_send(ch, in, len, NULL);
		uhp_send(ch, in, 8, &(struct uhp_meta){ .seq = 9 });
		((uint8_t *)(t_hdr(ch, 0, pos) + 1))[len / 2] ^= 0x10;
		tap_ok(uhp_peek(ch, &rx) == -EBADMSG && uhp_peek(ch, &rx) == 0 &&
		       rx.meta.seq == 9 && uhp_release(ch, &rx) == 0,
		       "peek of a damaged %u-byte record: -EBADMSG, then the next", len);
	}
	uhp_close(ch);
}

/*
 * recv_batch across two rings and across the fast path's limits: records
 * of both rings interleave (round robin), a long record (slow path) sits
 * between short ones, and at the end each ring's read_pos is published
 * and every record counted once.
 */
static void t_batch_mixed(void)
{
	struct uhp_channel *ch = mk(2, 1 << 14);
	struct uhp_rx_msg rx[16];
	struct uhp_stats st;
	uint64_t next[2] = { 0, 0 };
	int n, bad = 0;

	for (int i = 0; i < 12; i++) {
		uint32_t len = i == 5 ? 1000 : 64;
		struct uhp_meta m = { .seq = (uint64_t)i, .src = (uint32_t)(i & 1) };

		uhp__set_thread_ring(i & 1);
		pat_fill(in, len, 9, (uint64_t)i);
		if (uhp_send(ch, in, len, &m))
			bad++;
	}
	uhp__set_thread_ring(-1);
	for (int i = 0; i < 16; i++)
		rx[i] = (struct uhp_rx_msg){ .buf = out + i * 1024, .cap = 1024 };
	n = uhp_recv_batch(ch, rx, 16);
	tap_is(n, 12, "recv_batch over two rings gets all 12 records");
	for (int i = 0; i < n; i++) {
		unsigned k = rx[i].meta.ring;
		uint64_t seq = rx[i].meta.seq;

		/* ring k carries the seqs of parity k, in order */
		if (k > 1 || seq % 2 != k || seq < next[k] ||
		    rx[i].len != (seq == 5 ? 1000U : 64U) ||
		    pat_check(rx[i].buf, rx[i].len, 9, seq))
			bad++;
		next[k] = seq + 1;
	}
	tap_is(bad, 0, "each ring's records in order, the long one among them, payloads intact");
	uhp_stats(ch, &st);
	tap_ok(t_ring(ch, 0)->cons->read_pos == t_wpos(ch, 0) &&
	       t_ring(ch, 1)->cons->read_pos == t_wpos(ch, 1) && st.received == 12,
	       "both rings' read_pos published, 12 counted");
	tap_is(uhp_recv_batch(ch, rx, 16), -EAGAIN, "and nothing is left");
	uhp_close(ch);
}

/*
 * Every length from 0 past UHP_SEAL_COPY_MAX through the fast paths: the
 * one-pass seal is a jump into an unrolled run of 8-byte words plus a tail
 * of 4/2/1, so each length takes its own way in. Sealed CRC against the
 * bit-at-a-time reference, payload and meta through recv, peek and the
 * batch calls.
 */
static void t_every_small_size(void)
{
	struct uhp_channel *ch = mk(1, 1 << 16);
	int badcrc = 0, badrecv = 0, badpeek = 0, badbatch = 0;

	for (uint32_t len = 0; len <= UHP_SEAL_COPY_MAX + 8; len++) {
		struct uhp_meta m = { .seq = len, .src = 7, .dst = 8, .type = (uint16_t)len };
		uint64_t pos = t_wpos(ch, 0);
		struct uhp_rx rx;
		ssize_t got;

		pat_fill(in, len, 5, len);
		if (uhp_send(ch, in, len, &m) || t_hdr(ch, 0, pos)->crc != ref_rec_crc(t_hdr(ch, 0, pos)))
			badcrc++;
		if (uhp_peek(ch, &rx) || rx.len != len || rx.meta.seq != len ||
		    pat_check(rx.payload, len, 5, len) || uhp_release(ch, &rx))
			badpeek++;
		uhp_send(ch, in, len, &m);
		memset(out, 0xee, len + 16);
		got = uhp_recv(ch, out, len, &m);
		if (got != (ssize_t)len || m.seq != len || m.src != 7 || m.dst != 8 ||
		    m.type != (uint16_t)len || pat_check(out, len, 5, len) ||
		    out[len] != 0xee)
			badrecv++;
	}
	for (uint32_t base = 0; base <= UHP_SEAL_COPY_MAX; base += 16) {
		struct uhp_iov_msg tx[16];
		struct uhp_rx_msg rx[16];

		for (uint32_t i = 0; i < 16; i++) {
			pat_fill(in + i * 512, base + i, 6, base + i);
			tx[i] = (struct uhp_iov_msg){ .buf = in + i * 512, .len = base + i,
						      .meta = { .seq = base + i } };
			rx[i] = (struct uhp_rx_msg){ .buf = out + i * 512, .cap = 512 };
		}
		if (uhp_send_batch(ch, tx, 16) != 16 || uhp_recv_batch(ch, rx, 16) != 16) {
			badbatch++;
			continue;
		}
		for (uint32_t i = 0; i < 16; i++)
			if (rx[i].len != base + i || rx[i].meta.seq != base + i ||
			    pat_check(rx[i].buf, rx[i].len, 6, base + i))
				badbatch++;
	}
	tap_ok(badcrc == 0 && badrecv == 0 && badpeek == 0 && badbatch == 0,
	       "every length 0..%d: sealed CRC (%d bad), recv (%d), peek (%d), batch (%d)",
	       UHP_SEAL_COPY_MAX + 8, badcrc, badrecv, badpeek, badbatch);
	uhp_close(ch);
}

/* uhp_ring_fill(): what the shared positions say a ring holds. */
static void t_ring_fill(void)
{
	struct uhp_channel *ch = mk(1, 1 << 14);
	uint64_t used = 1, size = 0, rp;
	int ret = uhp_ring_fill(ch, 0, &used, &size);

	tap_ok(ret == 0 && used == 0 && size == 1 << 14,
	       "ring_fill: empty, size %llu", (unsigned long long)size);
	for (int i = 0; i < 3; i++)
		uhp_send(ch, in, 100, NULL);
	uhp_recv(ch, out, sizeof(out), NULL);
	ret = uhp_ring_fill(ch, 0, &used, NULL);
	tap_ok(ret == 0 && used == 2 * UHP_REC_TOTAL(100),
	       "ring_fill: 3 sent, 1 received: %llu bytes", (unsigned long long)used);
	rp = t_ring(ch, 0)->cons->read_pos;
	t_ring(ch, 0)->cons->read_pos = t_wpos(ch, 0) + 64;	/* a peer's scribble */
	tap_ok(uhp_ring_fill(ch, 0, &used, NULL) == -EUCLEAN &&
	       uhp_ring_fill(ch, 1, &used, NULL) == -EINVAL,
	       "ring_fill: read_pos ahead of write_pos is -EUCLEAN, no ring 1 -EINVAL");
	t_ring(ch, 0)->cons->read_pos = rp;
	uhp_close(ch);
}

/* The fast paths' variant in use is the one UHP_CRC and the CPU call for. */
static void t_seal_path(void)
{
	const char *force = getenv("UHP_CRC");
	int want = UHP_SEAL_GENERIC;

#if defined(__x86_64__)
	__builtin_cpu_init();
	if (__builtin_cpu_supports("sse4.2") && !(force && !strcmp(force, "table")))
		want = UHP_SEAL_SSE42;
#endif
	tap_is(__atomic_load_n(&uhp__seal_path, __ATOMIC_RELAXED), want,
	       "send/recv fast path variant: %s (UHP_CRC=%s)",
	       want == UHP_SEAL_SSE42 ? "sse4.2" : "generic", force ? force : "unset");
}

/*
 * uhp_peek_batch()/uhp_release_batch(): records of one ring in place, in
 * order, read_pos stored once; a batch stops where the next record needs
 * the head's handling (uncommitted, discard, bad CRC), and a release that
 * is not exactly what was peeked changes nothing.
 */
static void t_peek_batch(void)
{
	static const uint32_t sizes[10] = { 100, 600, 64, 0, 256, 257, 8, 1000, 33, 200 };
	struct uhp_channel *ch = mk(1, 1 << 14);
	struct uhp_rx rx[16], bad_rx[16];
	struct uhp_txn t;
	struct uhp_stats st;
	uint64_t end4 = 0;
	int n, bad = 0;

	tap_is(uhp_peek_batch(ch, rx, 16), -EAGAIN, "peek_batch on an empty ring: -EAGAIN");
	tap_is(uhp_peek_batch(ch, rx, 0), 0, "peek_batch of 0: 0");
	for (int i = 0; i < 10; i++) {
		pat_fill(in, sizes[i], 7, (uint64_t)i);
		uhp_send(ch, in, sizes[i], &(struct uhp_meta){ .seq = (uint64_t)i, .type = 3 });
	}
	n = uhp_peek_batch(ch, rx, 16);
	tap_is(n, 10, "peek_batch returns all 10 records, short and long");
	for (int i = 0; i < n; i++)
		if (rx[i].len != sizes[i] || rx[i].meta.seq != (uint64_t)i ||
		    rx[i].meta.type != 3 || rx[i].meta.ring != 0 ||
		    pat_check(rx[i].payload, sizes[i], 7, (uint64_t)i))
			bad++;
	tap_is(bad, 0, "... in order, in place, with their metadata");
	tap_is(t_ring(ch, 0)->cons->read_pos, 0, "peeking moved no read_pos");
	for (int i = 0; i < 4; i++)
		end4 += UHP_REC_TOTAL(sizes[i]);

	memcpy(bad_rx, rx, sizeof(rx));
	bad_rx[2].len = 8;
	tap_is(uhp_release_batch(ch, bad_rx, 4), -EINVAL,
	       "release_batch with a length other than the ring's: -EINVAL");
	tap_is(uhp_release_batch(ch, rx + 1, 3), -EINVAL,
	       "release_batch not from the head: -EINVAL");
	memcpy(bad_rx, rx, sizeof(rx));
	bad_rx[4] = bad_rx[5];
	tap_is(uhp_release_batch(ch, bad_rx, 5), -EINVAL,
	       "release_batch with a record left out: -EINVAL");
	tap_is(uhp_release_batch(ch, rx, 11), -EINVAL,
	       "release_batch of more than was peeked: -EINVAL");
	tap_is(t_ring(ch, 0)->cons->read_pos, 0, "none of these moved read_pos");

	tap_is(uhp_release_batch(ch, rx, 4), 0, "release_batch of the first 4");
	uhp_stats(ch, &st);
	tap_ok(t_ring(ch, 0)->cons->read_pos == end4 && st.received == 4,
	       "read_pos at the end of the 4th, 4 counted");
	tap_is(uhp_release_batch(ch, rx, 4), -EINVAL, "releasing them again: -EINVAL");
	tap_is(uhp_release_batch(ch, rx + 4, 6), 0, "then the other 6");
	tap_is(uhp_peek(ch, rx), -EAGAIN, "then empty");

	/* A discard and a bad record end a batch; the head handles them. */
	uhp_send(ch, in, 40, &(struct uhp_meta){ .seq = 20 });
	tap_is(uhp_reserve(ch, 50, &t), 0, "a reservation behind it");
	uhp_send(ch, in, 40, &(struct uhp_meta){ .seq = 21 });
	tap_is(uhp_peek_batch(ch, rx, 16), 1, "an uncommitted record ends the batch");
	uhp_discard(ch, &t);
	tap_is(uhp_peek_batch(ch, rx, 16), 1, "a discard ends the batch too");
	tap_is(uhp_release_batch(ch, rx, 1), 0, "release it");
	n = uhp_peek_batch(ch, rx, 16);
	tap_ok(n == 1 && rx[0].meta.seq == 21, "the discard is skipped at the head");
	uhp_release_batch(ch, rx, 1);

	for (int i = 0; i < 3; i++)
		uhp_send(ch, in, 64, &(struct uhp_meta){ .seq = 30 + (uint64_t)i });
	n = uhp_peek_batch(ch, rx, 16);
	((uint8_t *)rx[1].payload)[5] ^= 1;	/* the middle one goes bad */
	uhp_release_batch(ch, rx, 1);
	tap_is(uhp_peek_batch(ch, rx, 16), -EBADMSG,
	       "a bad CRC at the head: -EBADMSG (consumed and counted)");
	n = uhp_peek_batch(ch, rx, 16);
	tap_ok(n == 1 && rx[0].meta.seq == 32, "then the record after it");
	uhp_release_batch(ch, rx, n);
	for (int i = 0; i < 3; i++)
		uhp_send(ch, in, 64, &(struct uhp_meta){ .seq = 40 + (uint64_t)i });
	t_hdr(ch, 0, t_ring(ch, 0)->rpos + UHP_REC_TOTAL(64))->crc ^= 1;
	n = uhp_peek_batch(ch, rx, 16);
	tap_ok(n == 1 && rx[0].meta.seq == 40, "a bad CRC after the head ends the batch before it");
	uhp_stats(ch, &st);
	tap_is(st.crc_errors, 1, "... and is not counted until it is at the head");
	uhp_close(ch);

	/* Two rings: a batch comes from one; the round robin moves on after it. */
	ch = mk(2, 1 << 14);
	for (int i = 0; i < 4; i++) {
		uhp_set_producer_ring(ch, (unsigned)i & 1);
		uhp_send(ch, in, 16, &(struct uhp_meta){ .seq = (uint64_t)i });
	}
	n = uhp_peek_batch(ch, rx, 16);
	tap_ok(n == 2 && rx[0].meta.ring == rx[1].meta.ring &&
	       rx[1].meta.seq == rx[0].meta.seq + 2, "two rings: a batch holds one ring's records");
	uhp_release_batch(ch, rx, n);
	n = uhp_peek_batch(ch, bad_rx, 16);
	tap_ok(n == 2 && bad_rx[0].meta.ring != rx[0].meta.ring, "the next batch, the other ring's");
	uhp_release_batch(ch, bad_rx, n);
	uhp_close(ch);
}

int main(void)
{
	tap_plan(112);
	t_round_trip();
	t_sizes_and_full();
	t_wrap();
	t_across_end();
	t_zero_copy();
	t_batch();
	t_round_robin();
	t_control_in_memory();
	t_batch_mixed();
	t_peek_sizes();
	t_every_small_size();
	t_ring_fill();
	t_seal_path();
	t_peek_batch();
	return tap_done();
}
