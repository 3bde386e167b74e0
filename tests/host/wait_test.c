// SPDX-License-Identifier: MIT
/*
 * wait_test: the need_wakeup protocol and the waiting calls on in-memory
 * rings (no fd: uhp_wait sleeps in short slices; control_test covers poll).
 * A consumer about to sleep sets need_wakeup in every ring; a producer that
 * commits while it is set calls NOTIFY (counted), and not otherwise; the
 * flag is cleared on wake; timeouts hold; only the consumer may wait.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "helpers.h"
#include "tap.h"

static struct uhp_channel *ch;
static uint8_t buf[256];

static uint32_t need_wakeup(unsigned k)
{
	return __atomic_load_n(&t_ring(ch, k)->wake->need_wakeup, __ATOMIC_ACQUIRE);
}

static uint64_t notifies(void)
{
	struct uhp_stats st;

	uhp_stats(ch, &st);
	return st.notifies;
}

struct waiter {
	pthread_t th;
	int timeout_ms;
	int ret;
	double ms;
};

static void *waiter_main(void *arg)
{
	struct waiter *w = arg;
	uint64_t t0 = t_now_ns();

	w->ret = uhp_wait(ch, w->timeout_ms);
	w->ms = (double)(t_now_ns() - t0) / 1e6;
	return NULL;
}

/* After 40 ms, take the *(int *)arg records that fill the ring (and no
 * more: the one uhp_send_wait() then sends is the test's to check). */
static void *late_drainer(void *arg)
{
	uint8_t b[256];

	t_sleep_ms(40);
	for (int i = 0; i < *(int *)arg;)
		if (uhp_recv(ch, b, sizeof(b), NULL) >= 0)
			i++;
	return NULL;
}

static void *late_sender(void *arg)
{
	(void)arg;
	t_sleep_ms(50);
	uhp_send(ch, "late", 4, NULL);
	return NULL;
}

int main(void)
{
	uint64_t t0;
	double ms;
	int ret;

	tap_plan(19);
	if (uhp__mem_channel_new(2, 4096, &ch))
		tap_bail("in-memory channel");

	t0 = t_now_ns();
	ret = uhp_wait(ch, 0);
	tap_ok(ret == -ETIMEDOUT && t_now_ns() - t0 < 50000000ULL,
	       "wait(0) on empty rings: -ETIMEDOUT at once");
	t0 = t_now_ns();
	ret = uhp_wait(ch, 60);
	ms = (double)(t_now_ns() - t0) / 1e6;
	tap_ok(ret == -ETIMEDOUT && ms >= 59 && ms < 1000,
	       "wait(60) times out: -ETIMEDOUT after %.1f ms", ms);
	tap_ok(need_wakeup(0) == 0 && need_wakeup(1) == 0, "need_wakeup is clear after a timeout");

	uhp_send(ch, "x", 1, NULL);
	tap_is(uhp_wait(ch, 0), 1, "wait with a record ready: 1 at once");
	tap_is(notifies(), 0, "no NOTIFY while nobody sleeps");
	uhp_recv(ch, buf, sizeof(buf), NULL);

	/* A sleeping consumer and a producer on the other ring. */
	{
		struct waiter w = { .timeout_ms = 5000 };
		int seen = 0;

		pthread_create(&w.th, NULL, waiter_main, &w);
		t0 = t_now_ns();
		while (t_now_ns() - t0 < 3000000000ULL &&
		       !(seen = need_wakeup(0) && need_wakeup(1)))
			t_sleep_ms(1);
		tap_ok(seen, "the consumer sets need_wakeup in every ring before sleeping");
		uhp__set_thread_ring(1);
		uhp_send(ch, "wake", 4, NULL);
		uhp__set_thread_ring(-1);
		tap_is(notifies(), 1, "the producer saw need_wakeup and notified once");
		pthread_join(w.th, NULL);
		tap_ok(w.ret == 1 && w.ms < 3500, "the consumer woke with a record (%d after %.1f ms)",
		       w.ret, w.ms);
		tap_ok(need_wakeup(0) == 0 && need_wakeup(1) == 0, "and cleared need_wakeup on wake");
		tap_is(uhp_recv(ch, buf, sizeof(buf), NULL), 4, "the record is there");
		uhp_send(ch, "y", 1, NULL);
		tap_is(notifies(), 1, "no NOTIFY after the consumer is awake");
		uhp_recv(ch, buf, sizeof(buf), NULL);
	}

	t0 = t_now_ns();
	ret = (int)uhp_recv_wait(ch, buf, sizeof(buf), NULL, 30);
	ms = (double)(t_now_ns() - t0) / 1e6;
	tap_ok(ret == -ETIMEDOUT && ms >= 29, "recv_wait times out with -ETIMEDOUT (%.1f ms)", ms);
	{
		pthread_t th;
		ssize_t n;

		pthread_create(&th, NULL, late_sender, NULL);
		n = uhp_recv_wait(ch, buf, sizeof(buf), NULL, 5000);
		pthread_join(th, NULL);
		tap_ok(n == 4 && memcmp(buf, "late", 4) == 0,
		       "recv_wait returns a record sent 50 ms later");
	}

	/* Many sleep/wake rounds between two threads: nothing is lost. */
	{
		struct waiter w = { .timeout_ms = 2000 };
		int lost = 0;

		for (int round = 0; round < 300; round++) {
			pthread_create(&w.th, NULL, waiter_main, &w);
			if (round % 3)
				t_sleep_ms((unsigned)(round % 4));
			uhp_send(ch, "r", 1, NULL);
			pthread_join(w.th, NULL);
			if (w.ret != 1 || uhp_recv(ch, buf, sizeof(buf), NULL) != 1)
				lost++;
		}
		tap_is(lost, 0, "300 sleep/wake rounds, every record seen (%llu notifies)",
		       (unsigned long long)notifies());
	}

	/* uhp_send_wait(): a full ring, then room. */
	{
		struct uhp_meta m = { .seq = 77 };
		pthread_t th;
		int full = 0;

		uhp__set_thread_ring(0);
		while (uhp_send(ch, "fill", 4, NULL) == 0)
			full++;
		t0 = t_now_ns();
		ret = uhp_send_wait(ch, "more", 4, &m, 30);
		ms = (double)(t_now_ns() - t0) / 1e6;
		tap_ok(ret == -ETIMEDOUT && ms >= 29 && ms < 1000,
		       "send_wait on a full ring (%d records): -ETIMEDOUT after %.1f ms", full, ms);
		tap_is(uhp_send_wait(ch, "more", 4, &m, 0), -ETIMEDOUT,
		       "send_wait(0) on a full ring: -ETIMEDOUT at once, like every timeout");
		pthread_create(&th, NULL, late_drainer, &full);
		t0 = t_now_ns();
		ret = uhp_send_wait(ch, "more", 4, &m, 5000);
		ms = (double)(t_now_ns() - t0) / 1e6;
		pthread_join(th, NULL);
		uhp__set_thread_ring(-1);
		tap_ok(ret == 0 && ms >= 35 && ms < 4000 &&
		       uhp_recv(ch, buf, sizeof(buf), &m) == 4 && m.seq == 77 &&
		       memcmp(buf, "more", 4) == 0,
		       "send_wait gets in once a consumer made room (%.1f ms)", ms);
		tap_is(uhp_version(), UHP_VERSION_NUM, "uhp_version() is the header's version");
	}

	ch->consumer = false;	/* as if attached without UHP_ATTACH_CONSUMER */
	{
		struct uhp_rx rx;

		tap_ok(uhp_recv(ch, buf, sizeof(buf), NULL) == -EPERM &&
		       uhp_peek(ch, &rx) == -EPERM && uhp_wait(ch, 10) == -EPERM,
		       "recv, peek and wait are -EPERM without the consumer role");
	}
	ch->consumer = true;
	uhp_close(ch);
	return tap_done();
}
