// SPDX-License-Identifier: MIT
/*
 * Kernel producers (kmod/uhp_kapi.h, through the sample samples/uhp_ticker.c)
 * into the kernel rings of a channel: many records from process context and
 * from an hrtimer (hardirq), every CRC checked, per-stream sequences
 * gap-free, no loss, the consumer sleeping and being woken; the read-only
 * mappings of a kernel ring's producer side; a consumer that corrupts or
 * stops advancing read_pos; fan-out; module unload ordering.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "uhp.h"

#include "harness.h"
#include "ticker.h"

#define TYPE_TICK	1
#define TYPE_BURST	2
#define TYPE_FLOOD	3
#define TYPE_FANOUT	4

struct tick {
	uint64_t ktime_ns;
	uint64_t seq;
};

static int dev;

/* A consumer handle on a new channel with kernel rings. */
static struct uhp_channel *kchannel(const char *name, uint64_t ring_size)
{
	dev = uhp_open();
	return ticker_channel(dev, name, ring_size);
}

static int check_payload(const uint8_t *p, ssize_t len, uint64_t seq)
{
	struct tick t;

	if (len < (ssize_t)sizeof(t))
		return -1;
	memcpy(&t, p, sizeof(t));
	if (t.seq != seq || t.ktime_ns == 0)
		return -1;
	for (ssize_t i = sizeof(t); i < len; i++)
		if (p[i] != (uint8_t)(seq + (uint64_t)i))
			return -1;
	return 0;
}

TEST(kernel_rings_are_reported)
{
	struct uhp_channel *ch = kchannel("k.info", 1 << 14);
	struct uhp_ring_info ri[8];
	struct uhp_info info;
	unsigned k;

	ASSERT_EQ(uhp_info(ch, &info, ri, 8), 0);
	ASSERT_EQ(info.nr_rings, 4);		/* 2 user + 2 kernel rings */
	EXPECT_TRUE(info.features & UHP_FEAT_KERNEL_RINGS);
	for (k = 0; k < 4; k++) {
		EXPECT_EQ(ri[k].flags, k < 2 ? 0 : UHP_RING_F_KERNEL);
		EXPECT_EQ(ri[k].node, (int)(k % 2));
	}
	/* Processes cannot produce into kernel rings. */
	EXPECT_EQ(uhp_kernel_send(ch, 2, "x", 1, NULL, NULL), -EPERM);
	EXPECT_EQ(uhp_set_producer_ring(ch, 2), -EINVAL);
	EXPECT_LT(uhp_producer_ring(ch), 2);
	uhp_unlink(dev, "k.info");
}

static sigjmp_buf segv_jmp;

static void on_segv(int sig)
{
	siglongjmp(segv_jmp, sig);
}

TEST(producer_side_of_a_kernel_ring_is_read_only)
{
	struct uhp_channel *ch = kchannel("k.ro", 1 << 14);
	int fd = uhp_channel_fd(ch);
	uint64_t prod_off = UHP_MMAP_OFF(2, UHP_PART_PROD);
	uint64_t data_off = UHP_MMAP_OFF(2, UHP_PART_DATA);
	volatile uint64_t *prod;
	struct sigaction sa = { .sa_handler = on_segv };

	uhp_unlink(dev, "k.ro");
	/* Writable mappings are refused... */
	EXPECT_TRUE(mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
			 prod_off) == MAP_FAILED);
	EXPECT_EQ(errno, EPERM);
	EXPECT_TRUE(mmap(NULL, 2 << 14, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
			 data_off) == MAP_FAILED);
	EXPECT_EQ(errno, EPERM);
	/* ... read-only ones cannot be upgraded ... */
	prod = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, prod_off);
	ASSERT_TRUE(prod != MAP_FAILED);
	EXPECT_EQ(mprotect((void *)prod, 4096, PROT_READ | PROT_WRITE), -1);
	EXPECT_EQ(errno, EACCES);
	/* ... and a write through one is SIGSEGV. */
	sigaction(SIGSEGV, &sa, NULL);
	if (sigsetjmp(segv_jmp, 1) == 0) {
		prod[0] = 1ULL << 40;
		FAIL("wrote the kernel ring's write_pos");
	}
	EXPECT_EQ(prod[0], 0);
	/* The consumer page stays writable: it is the consumer's. */
	EXPECT_TRUE(mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
			 UHP_MMAP_OFF(2, UHP_PART_CONS)) != MAP_FAILED);
}

/* Receive n records of 'type' from src 0x7c in order; returns how many. */
static uint64_t drain(struct uhp_channel *ch, uint16_t type, uint64_t n,
		      uint64_t *bad)
{
	static uint8_t buf[8192];
	uint64_t got = 0;

	while (got < n) {
		struct uhp_meta m;
		ssize_t len = uhp_recv_wait(ch, buf, sizeof(buf), &m, 20000);

		if (len < 0) {
			TH_LOG("recv after %llu of %llu: %s", (unsigned long long)got,
			       (unsigned long long)n, strerror((int)-len));
			break;
		}
		if (m.type != type)
			continue;	/* another stream (ticks) */
		if (!(m.flags & UHP_REC_F_KERNEL) || m.src != 0x7c ||
		    m.seq != got || check_payload(buf, len, m.seq))
			(*bad)++;
		got++;
	}
	return got;
}

TEST_TIMEOUT(kernel_producer_to_user_consumer, 240)
{
	struct uhp_channel *ch;
	struct uhp_stats st;
	/* A quarter on the debug kernel, whose KASAN and lockdep slow it 4x. */
	const uint64_t n = getenv("UHP_GUEST_DEBUG") &&
			   !strcmp(getenv("UHP_GUEST_DEBUG"), "1") ? 500000 : 2000000;
	uint64_t bad = 0, got;

	need_ticker();
	ch = kchannel("k.burst", 1 << 16);
	ASSERT_EQ(ticker_load("channel=k.burst size=100"), 0);
	/* Far more than the ring holds: the ticker waits for us, we sleep
	 * and are woken by it. */
	ASSERT_EQ(param_write("burst", n), 0);
	got = drain(ch, TYPE_BURST, n, &bad);
	EXPECT_EQ(got, n);
	EXPECT_EQ(bad, 0);
	ASSERT_EQ(uhp_stats(ch, &st), 0);
	EXPECT_EQ(st.crc_errors, 0);
	EXPECT_EQ(param_read("sent"), (long)n);
	EXPECT_EQ(param_read("dropped"), 0);
	TH_LOG("%llu kernel records received, ticker waited %ld times for the consumer",
	       (unsigned long long)got, param_read("waits"));
	ticker_unload();
	uhp_unlink(dev, "k.burst");
}

TEST_TIMEOUT(hardirq_ticks, 60)
{
	struct uhp_channel *ch;
	uint64_t bad = 0, got;
	long hard;

	need_ticker();
	ch = kchannel("k.tick", 1 << 16);
	ASSERT_EQ(ticker_load("channel=k.tick rate_hz=500 size=64"), 0);
	got = drain(ch, TYPE_TICK, 500, &bad);
	/*
	 * Every tick ran in hard-irq context (also on PREEMPT_RT, where the
	 * ticker's timer is HRTIMER_MODE_*_HARD), so the kernel API's hard-irq
	 * promise was exercised, wake-ups included (drain() sleeps).
	 */
	hard = param_read("hardirq_ticks");
	ticker_unload();
	EXPECT_EQ(got, 500);
	EXPECT_EQ(bad, 0);
	EXPECT_GE(hard, 500);
	uhp_unlink(dev, "k.tick");
}

TEST(full_ring_drops_and_counts_never_overwrites)
{
	struct uhp_channel *ch;
	struct uhp_ring_info ri[4];
	struct uhp_info info;
	uint64_t bad = 0, got, fits;
	long sent;

	need_ticker();
	ch = kchannel("k.full", 4096);
	ASSERT_EQ(ticker_load("channel=k.full size=100"), 0);
	/* Nobody reads: 4096 / UHP_REC_TOTAL(100) = 21 fit, the rest drop. */
	ASSERT_EQ(param_write("flood", 100), 0);
	usleep(500000);
	sent = param_read("sent");
	fits = 4096 / UHP_REC_TOTAL(100);
	EXPECT_EQ(sent, (long)fits);
	EXPECT_EQ(param_read("dropped"), 100 - (long)fits);
	ASSERT_EQ(uhp_info(ch, &info, ri, 4), 0);
	EXPECT_EQ(ri[2].kernel_full + ri[3].kernel_full, 100 - fits);
	/* What is there is intact and in order: the first 'fits' records. */
	got = drain(ch, TYPE_FLOOD, fits, &bad);
	EXPECT_EQ(got, fits);
	EXPECT_EQ(bad, 0);
	ticker_unload();
	uhp_unlink(dev, "k.full");
}

TEST(corrupt_read_pos_is_refused_not_followed)
{
	struct uhp_channel *ch;
	struct uhp_ring_info ri[4];
	struct uhp_info info;
	volatile uint64_t *rpos[2];
	uint64_t bad = 0;
	int k;

	need_ticker();
	ch = kchannel("k.corrupt", 1 << 14);
	for (k = 0; k < 2; k++) {
		char *cons = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED,
				  uhp_channel_fd(ch), UHP_MMAP_OFF(2 + k, UHP_PART_CONS));

		ASSERT_TRUE(cons != MAP_FAILED);
		rpos[k] = (volatile uint64_t *)(cons + UHP_CONS_LINE_OFF);
		*rpos[k] = 1ULL << 50;		/* far past write_pos */
	}
	ASSERT_EQ(ticker_load("channel=k.corrupt size=64"), 0);
	ASSERT_EQ(param_write("flood", 10), 0);
	usleep(300000);
	EXPECT_EQ(param_read("sent"), 0);
	EXPECT_EQ(param_read("dropped"), 10);
	ASSERT_EQ(uhp_info(ch, &info, ri, 4), 0);
	EXPECT_EQ(ri[2].kernel_corrupt + ri[3].kernel_corrupt, 10);
	/* Misaligned and behind by more than the ring: also refused. */
	*rpos[0] = *rpos[1] = 8;
	ASSERT_EQ(param_write("flood", 1), 0);
	usleep(200000);
	EXPECT_EQ(param_read("sent"), 0);
	/* Repaired, the channel works again. */
	*rpos[0] = *rpos[1] = 0;
	ASSERT_EQ(param_write("flood", 5), 0);
	EXPECT_EQ(drain(ch, TYPE_FLOOD, 5, &bad), 5);
	EXPECT_EQ(bad, 0);
	ticker_unload();
	uhp_unlink(dev, "k.corrupt");
}

TEST_TIMEOUT(fan_out_reaches_every_channel_once, 120)
{
	struct uhp_channel *ch[3];
	const uint64_t n = 2000;
	char name[16];
	int i;

	need_ticker();
	/* Rings that hold all n records: none is ever full. */
	for (i = 0; i < 3; i++) {
		snprintf(name, sizeof(name), "k.fan%d", i);
		ch[i] = kchannel(name, 1 << 20);
	}
	ASSERT_EQ(ticker_load("channel=k.fan0 fanout=k.fan0,k.fan1,k.fan2 size=200"), 0);
	ASSERT_EQ(param_write("fanout_burst", n), 0);
	for (i = 0; i < 3; i++) {
		uint64_t bad = 0;

		EXPECT_EQ(drain(ch[i], TYPE_FANOUT, n, &bad), n);
		EXPECT_EQ(bad, 0);
		/* Exactly once: nothing more arrives. */
		EXPECT_EQ(uhp_recv_wait(ch[i], name, sizeof(name), NULL, 200), -ETIMEDOUT);
	}
	EXPECT_EQ(param_read("sent"), (long)n);
	EXPECT_EQ(param_read("dropped"), 0);
	ticker_unload();
	for (i = 0; i < 3; i++) {
		snprintf(name, sizeof(name), "k.fan%d", i);
		uhp_unlink(dev, name);
	}
}

TEST(unload_order_and_lifetime)
{
	struct uhp_channel *ch;

	need_ticker();
	ch = kchannel("k.life", 1 << 14);
	/* No such channel / no kernel rings: the module refuses to load. */
	EXPECT_NE(ticker_load("channel=k.none"), 0);
	ASSERT_EQ(ticker_load("channel=k.life rate_hz=200"), 0);
	/* uhp cannot go while a module uses its API. */
	EXPECT_NE(system("rmmod uhp 2>/dev/null"), 0);
	/* The channel outlives its name and every fd while the ticker holds it. */
	EXPECT_EQ(uhp_unlink(dev, "k.life"), 0);
	uhp_close(ch);
	close(dev);
	usleep(200000);
	EXPECT_GT(param_read("sent") + param_read("dropped"), 0);
	ticker_unload();
	/* Then both go, in this order. */
	EXPECT_EQ(system("rmmod uhp"), 0);
	EXPECT_EQ(system("insmod /lib/modules/uhp/uhp.ko"), 0);
}

TEST_HARNESS_MAIN
