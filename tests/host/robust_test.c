// SPDX-License-Identifier: MIT
/*
 * robust_test: damaged records and hostile or dead peers.
 * A flipped payload or header byte is -EBADMSG and the next record still
 * arrives (recv, peek, recv_batch); a committed header with an impossible
 * length, a forged tag, corrupt shared positions and a random scribbling
 * peer never crash the consumer nor make it read outside the mapping (ASan
 * watches), nor can a peer rewriting write_pos trap a producer in its CAS
 * loop; a producer that reserves and never commits (in this process,
 * or a child that exits) is skipped after the stall timeout, and not before.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"
#include "tap.h"

static uint8_t in[8192], out[8192];

static struct uhp_channel *mk(uint64_t ds)
{
	struct uhp_channel *ch;
	int ret = uhp__mem_channel_new(1, ds, &ch);

	if (ret)
		tap_bail("in-memory channel: %d", ret);
	return ch;
}

static struct uhp_stats stats(struct uhp_channel *ch)
{
	struct uhp_stats st;

	uhp_stats(ch, &st);
	return st;
}

static int send_seq(struct uhp_channel *ch, uint32_t len, uint64_t seq)
{
	pat_fill(in, len, 9, seq);
	return uhp_send(ch, in, len, &(struct uhp_meta){ .seq = seq });
}

/* recv one record; its seq, or -errno. */
static long long recv_seq(struct uhp_channel *ch)
{
	struct uhp_meta m;
	ssize_t n = uhp_recv(ch, out, sizeof(out), &m);

	if (n < 0)
		return n;
	if (pat_check(out, (uint32_t)n, 9, m.seq))
		return -1000;
	return (long long)m.seq;
}

static void t_corrupt(void)
{
	struct uhp_channel *ch = mk(4096);
	struct uhp_rx rx;
	uint64_t pos;

	pos = t_wpos(ch, 0);
	send_seq(ch, 100, 1);
	send_seq(ch, 100, 2);
	((uint8_t *)t_hdr(ch, 0, pos))[UHP_REC_HDR_SIZE + 57] ^= 0x10;
	tap_is(recv_seq(ch), -EBADMSG, "recv: a flipped payload byte is -EBADMSG");
	tap_is(recv_seq(ch), 2, "the next record is still received");
	tap_is(stats(ch).crc_errors, 1, "crc_errors counts it");

	pos = t_wpos(ch, 0);
	send_seq(ch, 100, 3);
	send_seq(ch, 100, 4);
	t_hdr(ch, 0, pos)->seq ^= 1ULL << 40;
	tap_is(uhp_peek(ch, &rx), -EBADMSG, "peek: a flipped header byte is -EBADMSG");
	tap_ok(uhp_peek(ch, &rx) == 0 && rx.meta.seq == 4 && uhp_release(ch, &rx) == 0,
	       "peek then sees the next record");

	{
		struct uhp_rx_msg msgs[3];

		for (int i = 0; i < 3; i++)
			msgs[i] = (struct uhp_rx_msg){ .buf = out + i * 256, .cap = 256 };
		send_seq(ch, 10, 5);
		pos = t_wpos(ch, 0);
		send_seq(ch, 10, 6);
		send_seq(ch, 10, 7);
		((uint8_t *)t_hdr(ch, 0, pos))[UHP_REC_HDR_SIZE] ^= 1;
		tap_is(uhp_recv_batch(ch, msgs, 3), 1,
		       "recv_batch returns the good record before a bad one");
		tap_is(uhp_recv_batch(ch, msgs, 3), -EBADMSG, "the next call reports the bad one");
		tap_ok(uhp_recv_batch(ch, msgs, 3) == 1 && msgs[0].meta.seq == 7,
		       "and the one after it follows");
	}
	tap_is(stats(ch).crc_errors, 3, "three damaged records counted");
	uhp_close(ch);
}

static void t_garbage_header(void)
{
	struct uhp_channel *ch = mk(4096);
	struct uhp_ring *r = t_ring(ch, 0);
	uint64_t pos;

	pos = t_wpos(ch, 0);
	send_seq(ch, 100, 1);
	send_seq(ch, 100, 2);
	t_hdr(ch, 0, pos)->len = 0xFFFFFF00;
	tap_is(recv_seq(ch), -EBADMSG, "a committed header with a huge len is -EBADMSG");
	tap_is(recv_seq(ch), 2, "the consumer finds the next record at once");

	pos = t_wpos(ch, 0);
	send_seq(ch, 100, 3);
	send_seq(ch, 100, 4);
	t_hdr(ch, 0, pos)->len = 2000;	/* fits the ring, not below write_pos */
	tap_is(recv_seq(ch), -EBADMSG, "a len reaching past write_pos is -EBADMSG");
	tap_is(recv_seq(ch), 4, "and the next record follows");

	/* A committed-looking tag where nothing was reserved is no record. */
	pos = t_wpos(ch, 0);
	t_hdr(ch, 0, pos)->len = 10;
	__atomic_store_n(&t_hdr(ch, 0, pos)->tag, pos ^ r->salt, __ATOMIC_RELEASE);
	tap_is(recv_seq(ch), -EAGAIN, "a forged tag at write_pos is not a record");
	send_seq(ch, 300, 5);
	tap_is(recv_seq(ch), 5, "a real record then overwrites it and arrives");
	uhp_close(ch);
}

static void t_positions(void)
{
	struct uhp_channel *ch = mk(4096);
	struct uhp_ring *r = t_ring(ch, 0);

	send_seq(ch, 10, 1);
	r->prod->cached_read_pos = 1ULL << 50;	/* garbage hint */
	tap_is(send_seq(ch, 10, 2), 0, "a garbage cached_read_pos hint is not trusted");
	r->prod->cached_read_pos = 0;
	r->prod->write_pos += 8;
	tap_is(send_seq(ch, 10, 3), -EUCLEAN, "a misaligned write_pos: send is -EUCLEAN");
	r->prod->write_pos -= 8;
	/* The hint alone would let sends through: make it agree with the lie. */
	r->cons->read_pos = r->prod->write_pos + 4096;
	r->prod->cached_read_pos = r->cons->read_pos;
	tap_is(send_seq(ch, 10, 3), -EUCLEAN, "read_pos ahead of write_pos: -EUCLEAN");
	r->cons->read_pos = r->prod->write_pos - 8192;
	r->prod->cached_read_pos = r->cons->read_pos;
	tap_is(send_seq(ch, 10, 3), -EUCLEAN, "more than data_size in flight: -EUCLEAN");
	tap_ok(recv_seq(ch) == 1 && recv_seq(ch) == 2,
	       "the consumer keeps its own read position and still delivers");
	tap_is(send_seq(ch, 10, 3), 0, "its next store of read_pos heals the producers");
	tap_is(recv_seq(ch), 3, "and the record arrives");
	uhp_close(ch);
}

static volatile int churn_stop;

/* A peer that rewrites write_pos nonstop (aligned values, so CAS can fail). */
static void *churn_main(void *arg)
{
	struct uhp_ring *r = arg;
	uint64_t base = r->prod->write_pos;

	for (uint64_t i = 0; !churn_stop; i++)
		__atomic_store_n(&r->prod->write_pos, base + (i % 4) * 64, __ATOMIC_RELAXED);
	return NULL;
}

static void t_churn(void)
{
	struct uhp_channel *ch = mk(1 << 16);
	pthread_t th;
	uint64_t t0 = t_now_ns();
	int bad = 0;

	churn_stop = 0;
	pthread_create(&th, NULL, churn_main, t_ring(ch, 0));
	for (int i = 0; i < 20000; i++) {
		int ret = send_seq(ch, 32, (uint64_t)i);

		bad += ret != 0 && ret != -EAGAIN && ret != -EUCLEAN;
	}
	churn_stop = 1;
	pthread_join(th, NULL);
	tap_ok(bad == 0 && t_now_ns() - t0 < 30000000000ULL,
	       "a peer rewriting write_pos nonstop cannot trap a producer (%.2f s)",
	       (double)(t_now_ns() - t0) / 1e9);
	uhp_close(ch);
}

static uint64_t rng = 0x9E3779B97F4A7C15ULL;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* A peer scribbling on everything while we produce and consume. */
static void t_fuzz(void)
{
	struct uhp_channel *ch = mk(4096);
	struct uhp_ring *r = t_ring(ch, 0);
	long bad = 0, got = 0, sent = 0;

	uhp_set_stall_timeout_ns(ch, 1);	/* recovery runs all the time */
	for (int it = 0; it < 200000; it++) {
		uint64_t x = rnd(), base = r->rpos;
		uint64_t p = (base + (x >> 8) % 8192) & ~63ULL;
		struct uhp_rec_hdr *h = t_hdr(ch, 0, p);
		ssize_t n;
		int ret;

		switch (x % 12) {
		case 0:	/* random bytes anywhere in the data area */
			r->data[(x >> 16) % 4096] = (uint8_t)(x >> 40);
			break;
		case 1:	/* plausible tags with random lengths */
			h->len = (uint32_t)(rnd() % 6000);
			h->flags = (uint16_t)(rnd() & 3);
			__atomic_store_n(&h->tag, p ^ r->salt ^ ((x & 64) ? UHP_TAG_BUSY : 0),
					 __ATOMIC_RELEASE);
			break;
		case 2:	/* write_pos anywhere near, sometimes misaligned or behind */
			r->prod->write_pos = base + (uint64_t)((int64_t)(rnd() % 12288) - 4096) +
					     ((x & 128) ? (x >> 20) % 64 : 0);
			break;
		case 3:
			r->cons->read_pos = base + rnd() % 8192 - 4096;
			r->prod->cached_read_pos = rnd();
			break;
		case 4: case 5: case 6: {
			uint32_t len = (uint32_t)(rnd() % 700);

			ret = send_seq(ch, len, (uint64_t)it);
			if (ret == 0)
				sent++;
			else if (ret != -EAGAIN && ret != -EUCLEAN)
				bad++;
			break;
		}
		case 7: {
			struct uhp_rx rx;

			ret = uhp_peek(ch, &rx);
			if (ret == 0) {
				if (rx.len > 4096 - 40 || uhp_release(ch, &rx))
					bad++;
				got++;
			} else if (ret != -EAGAIN && ret != -EBADMSG) {
				bad++;
			}
			break;
		}
		case 8: {
			struct uhp_rx_msg msgs[4];

			for (int i = 0; i < 4; i++)
				msgs[i] = (struct uhp_rx_msg){ .buf = out + i * 2048,
								.cap = 2048 };
			ret = uhp_recv_batch(ch, msgs, 4);
			if (ret > 0)
				got += ret;
			else if (ret != -EAGAIN && ret != -EBADMSG && ret != -EMSGSIZE)
				bad++;
			break;
		}
		case 9:
			ret = uhp_wait(ch, 0);
			if (ret < 0 && ret != -ETIMEDOUT)
				bad++;
			break;
		default:
			n = uhp_recv(ch, out, (x >> 8) % 2 ? sizeof(out) : 50, NULL);
			if (n >= 0) {
				if (n > 4096 - 40)
					bad++;
				got++;
			} else if (n != -EAGAIN && n != -EBADMSG && n != -EMSGSIZE) {
				bad++;
			}
			break;
		}
	}
	tap_diag("fuzz: %ld sent, %ld received, %llu crc errors, %llu stalled skips",
		 sent, got, (unsigned long long)stats(ch).crc_errors,
		 (unsigned long long)stats(ch).stalled_skips);
	tap_is(bad, 0, "200000 steps of a scribbling peer: only documented return values");
	tap_ok(got > 0 && sent > 0, "records still flowed during the scribbling");

	/* Peace again: positions agree, the ring works. */
	r->prod->write_pos = r->rpos;
	r->cons->read_pos = r->rpos;
	r->prod->cached_read_pos = r->rpos;
	uhp__mem_ring_set_pos(ch, 0, (r->rpos + 4096) & ~63ULL);
	{
		int ok = 1;

		for (uint64_t s = 0; s < 500; s++) {
			ok &= send_seq(ch, (uint32_t)(s % 300), s) == 0;
			ok &= recv_seq(ch) == (long long)s;
		}
		tap_ok(ok, "after the peer stops, 500 records round-trip");
	}
	uhp_close(ch);
}

/* recv until a record arrives or ms pass; its seq or -errno, *took in ms. */
static long long recv_within(struct uhp_channel *ch, unsigned ms, double *took)
{
	uint64_t t0 = t_now_ns();
	long long s;

	while ((s = recv_seq(ch)) == -EAGAIN && t_now_ns() - t0 < ms * 1000000ULL)
		t_sleep_ms(1);
	*took = (double)(t_now_ns() - t0) / 1e6;
	return s;
}

static void t_dead_producer(void)
{
	struct uhp_channel *ch = mk(1 << 14);
	struct uhp_txn t;
	double took;

	uhp_set_stall_timeout_ns(ch, 40 * 1000000ULL);
	tap_is(uhp_reserve(ch, 100, &t), 0, "a producer reserves and never commits");
	send_seq(ch, 50, 1);
	tap_is(recv_seq(ch), -EAGAIN, "the record behind it waits ...");
	t_sleep_ms(15);
	tap_is(recv_seq(ch), -EAGAIN, "... still, before the stall timeout");
	tap_is(recv_within(ch, 2000, &took), 1, "after the timeout the reservation is skipped");
	tap_ok(took >= 15 && took < 1000, "about 40 ms after the stall was seen (%.1f ms more)", took);
	tap_is(stats(ch).stalled_skips, 1, "one stalled skip counted");

	/* Its late commit lands in released space and is never delivered. */
	tap_is(uhp_commit(ch, &t, NULL), 0, "the slow producer commits late");
	send_seq(ch, 70, 2);
	tap_is(recv_seq(ch), 2, "the consumer does not go back for it");
	tap_is(recv_seq(ch), -EAGAIN, "nothing else arrives");

	/* Reserved but not even the header written: scan to the next record. */
	__atomic_fetch_add(&t_ring(ch, 0)->prod->write_pos, 3 * 64, __ATOMIC_RELAXED);
	send_seq(ch, 20, 3);
	send_seq(ch, 20, 4);
	tap_is(recv_within(ch, 2000, &took), 3,
	       "an unwritten reservation is skipped by scanning for the next tag");
	tap_ok(recv_seq(ch) == 4 && stats(ch).stalled_skips == 2,
	       "then the records flow, two skips counted");

	/* Timeout 0: no skipping at all. */
	uhp_set_stall_timeout_ns(ch, 0);
	uhp_reserve(ch, 10, &t);
	send_seq(ch, 10, 5);
	t_sleep_ms(60);
	tap_is(recv_seq(ch), -EAGAIN, "stall timeout 0 disables the skipping");
	uhp_set_stall_timeout_ns(ch, 1000000);
	tap_is(recv_within(ch, 2000, &took), 5, "and a short timeout brings it back");

	/* uhp_wait itself runs recovery: it returns once the skip is due. */
	uhp_set_stall_timeout_ns(ch, 50 * 1000000ULL);
	uhp_reserve(ch, 10, &t);
	send_seq(ch, 10, 6);
	{
		uint64_t t0 = t_now_ns();
		int w = uhp_wait(ch, 3000);
		double ms = (double)(t_now_ns() - t0) / 1e6;

		tap_ok(w == 1 && ms >= 40 && ms < 1500 && recv_seq(ch) == 6,
		       "uhp_wait returns when a dead reservation is skipped (%d after %.1f ms)",
		       w, ms);
	}
	uhp_close(ch);
}

/*
 * Kernel rings: a kernel producer never dies between reserve and commit, but
 * on PREEMPT_RT it can be preempted there for any time. Skipping its record
 * after the stall timeout would lose it (seen in the guest on 6.12-rt: one
 * record of 2M gone, every later seq off by one), so the consumer waits.
 */
static void t_kernel_ring_waits(void)
{
	struct uhp_channel *ch = mk(1 << 14);
	struct uhp_txn t;

	uhp_set_stall_timeout_ns(ch, 5 * 1000000ULL);
	/* The reservation stands in for a preempted kernel producer's. */
	tap_is(uhp_reserve(ch, 100, &t), 0, "a slow producer reserves");
	send_seq(ch, 50, 1);
	t_ring(ch, 0)->kernel = true;
	{
		/* Poll flat out: the stall clock is read every 64th empty poll. */
		uint64_t t0 = t_now_ns();
		long long s;

		while ((s = recv_seq(ch)) == -EAGAIN && t_now_ns() - t0 < 60 * 1000000ULL)
			;
		tap_is(s, -EAGAIN,
		       "on a kernel ring nothing is skipped, 12x the stall timeout later");
	}
	tap_is(stats(ch).stalled_skips, 0, "no stalled skip counted");
	t_ring(ch, 0)->kernel = false;
	tap_is(uhp_commit(ch, &t, NULL), 0, "the producer commits after all");
	tap_is(uhp_recv(ch, out, sizeof(out), NULL), 100, "its record arrives first");
	tap_is(recv_seq(ch), 1, "then the one behind it");
	uhp_close(ch);
}

/*
 * UHP_REC_F_KERNEL means "from a kernel producer": any producer can write
 * the bit into a user ring, so there the consumer reports it cleared; a
 * kernel ring (only the kernel writes it) reports it as it is.
 */
static void t_kernel_flag_not_forgeable(void)
{
	struct uhp_channel *ch = mk(1 << 14);
	struct uhp_rec_hdr *h;
	struct uhp_meta m;
	int k;

	for (k = 0; k < 2; k++) {
		uint64_t pos = t_ring(ch, 0)->rpos;

		send_seq(ch, 40, 7);
		/* A producer forges the flag and seals the record again. */
		h = t_hdr(ch, 0, pos);
		h->flags |= UHP_REC_F_KERNEL;
		h->crc = uhp_crc32c(uhp_crc32c(~0U, (char *)h + UHP_REC_CRC_HDR_OFF,
					       UHP_REC_CRC_HDR_LEN), h + 1, 40) ^ ~0U;
		t_ring(ch, 0)->kernel = k;
		tap_is(uhp_recv(ch, out, sizeof(out), &m), 40,
		       "%s ring: the forged record passes its CRC", k ? "kernel" : "user");
		tap_is(m.flags & UHP_REC_F_KERNEL, k ? UHP_REC_F_KERNEL : 0,
		       "%s ring: UHP_REC_F_KERNEL %s", k ? "kernel" : "user",
		       k ? "reported" : "cleared");
	}
	t_ring(ch, 0)->kernel = false;
	uhp_close(ch);
}

static void t_dead_child(void)
{
	struct uhp_channel *ch = mk(1 << 14);
	int status = -1, ok = 1;
	pid_t pid;

	uhp_set_stall_timeout_ns(ch, 30 * 1000000ULL);
	pid = fork();
	if (pid == 0) {
		struct uhp_txn t;

		/* shares the rings (MAP_SHARED) and dies holding a reservation */
		_exit(uhp_reserve(ch, 500, &t) ? 1 : 0);
	}
	waitpid(pid, &status, 0);
	tap_ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	       "a child process reserved and exited without committing");
	for (uint64_t s = 1; s <= 3; s++)
		send_seq(ch, 40, s);
	for (long long s = 1; s <= 3; s++) {
		struct uhp_meta m;
		ssize_t n = uhp_recv_wait(ch, out, sizeof(out), &m, 2000);

		ok &= n == 40 && (long long)m.seq == s;
	}
	tap_ok(ok && stats(ch).stalled_skips == 1,
	       "the parent's records arrive in order after one skip");
	uhp_close(ch);
}

int main(void)
{
	tap_plan(52);
	t_corrupt();
	t_garbage_header();
	t_positions();
	t_fuzz();
	t_churn();
	t_dead_producer();
	t_kernel_ring_waits();
	t_kernel_flag_not_forgeable();
	t_dead_child();
	return tap_done();
}
