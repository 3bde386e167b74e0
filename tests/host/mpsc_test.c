// SPDX-License-Identifier: MIT
/*
 * mpsc_test: several producer threads, one consumer thread, millions of
 * records. Producers mix send, send_batch, reserve/commit and
 * reserve/discard; the consumer mixes recv, recv_batch and peek/release (or
 * sleeps in uhp_recv_wait). Per producer the sequence numbers must arrive
 * in order with no gap and no duplicate, every payload must match, no CRC
 * error, no stalled skip, and the counters must add up (loss = 0).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>

#include "helpers.h"
#include "tap.h"

#define MAX_PROD	4
#define MAX_LEN		256
#define BATCH		8

struct config {
	const char *name;
	unsigned nr_rings;
	uint64_t ring_size;
	unsigned nr_prod;
	uint64_t per_prod;
	bool sleepy;		/* consumer sleeps in uhp_recv_wait */
	uint64_t start_pos;	/* 0, or positions near 2^64 */
};

struct producer {
	pthread_t th;
	struct uhp_channel *ch;
	uint32_t id;
	uint64_t n;
	int ring;		/* forced ring, or -1 */
	long errors;
	uint64_t discards;
};

static uint32_t size_of(uint32_t id, uint64_t seq)
{
	return (uint32_t)(((seq + id) * 2654435761u) >> 7) % (MAX_LEN + 1);
}

static void *producer_main(void *arg)
{
	struct producer *p = arg;
	static __thread uint8_t bufs[BATCH][MAX_LEN];
	uint64_t seq = 0;

	if (p->ring >= 0)
		uhp__set_thread_ring(p->ring);
	while (seq < p->n) {
		uint32_t len = size_of(p->id, seq);
		struct uhp_meta m = { .seq = seq, .src = p->id, .type = 1 };
		int ret = -EAGAIN;

		switch ((seq / 7 + p->id) % 4) {
		case 0:
			pat_fill(bufs[0], len, p->id, seq);
			ret = uhp_send(p->ch, bufs[0], len, &m);
			if (ret == 0)
				seq++;
			break;
		case 1: {
			struct uhp_iov_msg msgs[BATCH];
			unsigned k = 0;

			for (; k < BATCH && seq + k < p->n; k++) {
				uint32_t l = size_of(p->id, seq + k);

				pat_fill(bufs[k], l, p->id, seq + k);
				msgs[k] = (struct uhp_iov_msg){ .buf = bufs[k], .len = l,
					.meta = { .seq = seq + k, .src = p->id, .type = 1 } };
			}
			ret = uhp_send_batch(p->ch, msgs, k);
			if (ret > 0) {
				seq += (uint64_t)ret;
				ret = 0;
			}
			break;
		}
		case 2:
		case 3: {
			struct uhp_txn t;

			if ((seq % 5) == 0 && (seq / 7 + p->id) % 4 == 3) {
				/* give one back first: consumers must skip it */
				ret = uhp_reserve(p->ch, len, &t);
				if (ret == 0) {
					memset(t.payload, 0xEE, len);
					ret = uhp_discard(p->ch, &t);
					p->discards++;
				}
				if (ret)
					break;
			}
			ret = uhp_reserve(p->ch, len, &t);
			if (ret == 0) {
				pat_fill(t.payload, len, p->id, seq);
				ret = uhp_commit(p->ch, &t, &m);
				if (ret == 0)
					seq++;
			}
			break;
		}
		}
		if (ret == -EAGAIN)
			sched_yield();
		else if (ret)
			p->errors++;
		if (p->errors > 100)
			break;
	}
	return NULL;
}

struct consumer_state {
	uint64_t next[MAX_PROD];
	uint64_t total, bad_order, bad_payload, errors;
	unsigned nr_prod;
};

static void check_one(struct consumer_state *cs, const struct uhp_meta *m,
		      const void *payload, uint32_t len)
{
	if (m->src >= cs->nr_prod || m->seq != cs->next[m->src]) {
		if (cs->bad_order++ < 5)
			tap_diag("src %u seq %llu, expected %llu", m->src,
				 (unsigned long long)m->seq,
				 (unsigned long long)(m->src < cs->nr_prod ? cs->next[m->src] : 0));
		if (m->src < cs->nr_prod)
			cs->next[m->src] = m->seq + 1;
	} else {
		if (len != size_of(m->src, m->seq) ||
		    pat_check(payload, len, m->src, m->seq))
			cs->bad_payload++;
		cs->next[m->src]++;
	}
	cs->total++;
}

static void run(const struct config *cfg)
{
	struct producer prod[MAX_PROD];
	struct consumer_state cs = { .nr_prod = cfg->nr_prod };
	const uint64_t expected = cfg->per_prod * cfg->nr_prod;
	static uint8_t buf[16][MAX_LEN];
	struct uhp_channel *ch;
	struct uhp_stats st;
	uint64_t t0 = t_now_ns(), last_progress = t0, seen = 0;
	long perr = 0;
	bool gaps = false;
	unsigned i;

	if (uhp__mem_channel_new(cfg->nr_rings, cfg->ring_size, &ch))
		tap_bail("%s: in-memory channel", cfg->name);
	if (cfg->start_pos)
		for (i = 0; i < cfg->nr_rings; i++)
			uhp__mem_ring_set_pos(ch, i, cfg->start_pos);
	/* 2 cores, up to 5 threads: a preempted producer is not dead. */
	uhp_set_stall_timeout_ns(ch, 10ULL * 1000000000ULL);

	for (i = 0; i < cfg->nr_prod; i++) {
		prod[i] = (struct producer){ .ch = ch, .id = i, .n = cfg->per_prod,
			.ring = cfg->nr_rings > 1 ? (int)(i % cfg->nr_rings) : -1 };
		pthread_create(&prod[i].th, NULL, producer_main, &prod[i]);
	}

	for (uint64_t it = 0; cs.total < expected; it++) {
		int ret;

		if (cs.total != seen) {
			seen = cs.total;
			last_progress = t_now_ns();
		} else if ((it & 1023) == 0 && t_now_ns() - last_progress > 20000000000ULL) {
			tap_diag("%s: no progress for 20 s", cfg->name);
			break;
		}
		switch (it % 3) {
		case 0: {
			struct uhp_meta m;
			ssize_t n = cfg->sleepy ?
				uhp_recv_wait(ch, buf[0], MAX_LEN, &m, 1000) :
				uhp_recv(ch, buf[0], MAX_LEN, &m);

			ret = n < 0 ? (int)n : 0;
			if (n >= 0)
				check_one(&cs, &m, buf[0], (uint32_t)n);
			break;
		}
		case 1: {
			struct uhp_rx_msg msgs[16];

			for (int k = 0; k < 16; k++)
				msgs[k] = (struct uhp_rx_msg){ .buf = buf[k], .cap = MAX_LEN };
			ret = uhp_recv_batch(ch, msgs, 16);
			for (int k = 0; k < ret; k++)
				check_one(&cs, &msgs[k].meta, msgs[k].buf, msgs[k].len);
			if (ret > 0)
				ret = 0;
			break;
		}
		default: {
			struct uhp_rx rx;

			ret = uhp_peek(ch, &rx);
			if (ret == 0) {
				check_one(&cs, &rx.meta, rx.payload, rx.len);
				ret = uhp_release(ch, &rx);
			}
			break;
		}
		}
		if (ret == -EAGAIN || ret == -ETIMEDOUT)
			sched_yield();
		else if (ret)
			cs.errors++;
	}
	for (i = 0; i < cfg->nr_prod; i++) {
		pthread_join(prod[i].th, NULL);
		perr += prod[i].errors;
		gaps |= cs.next[i] != cfg->per_prod;
	}
	uhp_stats(ch, &st);
	tap_diag("%s: %llu records in %.2f s, %llu notifies", cfg->name,
		 (unsigned long long)cs.total, (double)(t_now_ns() - t0) / 1e9,
		 (unsigned long long)st.notifies);
	tap_ok(cs.total == expected && !gaps && perr == 0 && cs.errors == 0,
	       "%s: %u producers x %llu records all received (loss 0)",
	       cfg->name, cfg->nr_prod, (unsigned long long)cfg->per_prod);
	tap_is(cs.bad_order, 0, "%s: per-producer FIFO, no gap, no duplicate", cfg->name);
	tap_is(cs.bad_payload, 0, "%s: every payload and length intact", cfg->name);
	tap_ok(st.crc_errors == 0 && st.stalled_skips == 0 &&
	       st.sent == expected && st.received == expected,
	       "%s: stats: sent %llu, received %llu, crc errors %llu, skips %llu",
	       cfg->name, (unsigned long long)st.sent, (unsigned long long)st.received,
	       (unsigned long long)st.crc_errors, (unsigned long long)st.stalled_skips);
	tap_is(uhp_recv(ch, buf[0], MAX_LEN, NULL), -EAGAIN, "%s: nothing extra left", cfg->name);
	uhp_close(ch);
}

int main(int argc, char **argv)
{
	/* Scale with UHP_MPSC_SCALE (percent) for longer soak runs. */
	const char *s = getenv("UHP_MPSC_SCALE");
	uint64_t scale = s ? strtoull(s, NULL, 10) : 100;
	struct config cfgs[] = {
		{ "3 producers, 1 ring of 64 KiB", 1, 1 << 16, 3, 1000000, false, 0 },
		{ "4 producers, 2 rings of 4 KiB, sleeping consumer", 2, 4096, 4, 250000, true, 0 },
		{ "2 producers, 8 KiB ring across 2^64", 1, 8192, 2, 500000, false,
		  0ULL - (1ULL << 20) },
	};

	(void)argc;
	(void)argv;
	tap_plan(15);
	for (unsigned i = 0; i < 3; i++) {
		cfgs[i].per_prod = cfgs[i].per_prod * scale / 100;
		run(&cfgs[i]);
	}
	return tap_done();
}
