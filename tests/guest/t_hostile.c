// SPDX-License-Identifier: MIT
/*
 * A hostile or buggy peer owns the shared pages too: positions and record
 * headers it writes must be rejected by the kernel (-EUCLEAN and a
 * rate-limited log line), never followed, and must not crash or hang it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <linux/uhp.h>

#include "harness.h"
#include "ioctl_calls.h"

#define RING_SIZE	(1 << 16)

struct ring {
	int fd;
	struct uhp_prod_line *prod;
	struct uhp_cons_line *cons;
	unsigned char *data;
};

static struct ring open_ring(void)
{
	struct uhp_create c = {
		.size = sizeof(c), .mode = 0600, .ring_size = RING_SIZE,
		/* The consumer role: only its fd may write read_pos. */
		.flags = UHP_CREATE_NODE | UHP_CREATE_CONSUMER, .node = 0,
	};
	struct uhp_unlink u = { .size = sizeof(u) };
	int dev = open(UHP_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	struct ring r;
	char *prod, *cons;

	snprintf(c.name, sizeof(c.name), "hostile.%d", getpid());
	strcpy(u.name, c.name);
	r.fd = (int)xioctl(dev, UHP_IOC_CREATE, &c);
	if (r.fd < 0 || xioctl(dev, UHP_IOC_UNLINK, &u)) {
		perror("create");
		exit(1);
	}
	close(dev);
	prod = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, r.fd,
		    UHP_MMAP_OFF(0, UHP_PART_PROD));
	cons = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, r.fd,
		    UHP_MMAP_OFF(0, UHP_PART_CONS));
	r.data = mmap(NULL, 2 * RING_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
		      r.fd, UHP_MMAP_OFF(0, UHP_PART_DATA));
	if (prod == MAP_FAILED || cons == MAP_FAILED || r.data == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	r.prod = (struct uhp_prod_line *)(prod + UHP_PROD_LINE_OFF);
	r.cons = (struct uhp_cons_line *)(cons + UHP_CONS_LINE_OFF);
	return r;
}

static long ksend(struct ring *r, uint32_t len, uint64_t *pos)
{
	static char payload[4096];
	struct uhp_send s = {
		.size = sizeof(s), .len = len, .buf = (uintptr_t)payload,
	};
	long ret = xioctl(r->fd, UHP_IOC_SEND, &s);

	if (pos)
		*pos = s.pos;
	return ret;
}

static long kverify(struct ring *r, uint64_t pos)
{
	struct uhp_verify v = { .size = sizeof(v), .pos = pos };

	return xioctl(r->fd, UHP_IOC_VERIFY, &v);
}

static int readable(struct ring *r)
{
	struct pollfd p = { .fd = r->fd, .events = POLLIN };

	return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

TEST(write_pos_too_far_ahead)
{
	struct ring r = open_ring();

	ASSERT_EQ(ksend(&r, 100, NULL), 0);
	r.prod->write_pos = r.cons->read_pos + RING_SIZE + UHP_REC_ALIGN;
	EXPECT_EQ(ksend(&r, 100, NULL), -EUCLEAN);
	EXPECT_EQ(kverify(&r, 0), -EUCLEAN);
	r.prod->write_pos = 1ULL << 62;
	EXPECT_EQ(ksend(&r, 100, NULL), -EUCLEAN);
	/* Nothing was written past the ring: the only record is intact. */
	r.prod->write_pos = UHP_REC_TOTAL(100);
	EXPECT_EQ(kverify(&r, 0), 0);
	EXPECT_EQ(ksend(&r, 100, NULL), 0);
}

TEST(positions_backwards_or_misaligned)
{
	struct ring r = open_ring();

	ASSERT_EQ(ksend(&r, 100, NULL), 0);
	r.cons->read_pos = 4 * UHP_REC_ALIGN;	/* consumer "ahead" of producer */
	EXPECT_EQ(ksend(&r, 100, NULL), -EUCLEAN);
	r.cons->read_pos = 0;
	r.prod->write_pos = UHP_REC_TOTAL(100) + 8;	/* misaligned */
	EXPECT_EQ(ksend(&r, 100, NULL), -EUCLEAN);
	r.prod->write_pos = UHP_REC_TOTAL(100);
	r.cons->read_pos = 3;
	EXPECT_EQ(kverify(&r, 0), -EUCLEAN);
	EXPECT_FALSE(readable(&r));		/* never committed at pos 3 */
	r.cons->read_pos = 0;
	EXPECT_TRUE(readable(&r));
}

TEST(positions_near_wrap_are_fine)
{
	struct ring r = open_ring();
	uint64_t start = -(uint64_t)(2 * UHP_REC_TOTAL(100)), pos;
	int i;

	/* Free-running counters: a ring that has moved 2^64 bytes still works. */
	r.prod->write_pos = start;
	r.cons->read_pos = start;
	for (i = 0; i < 4; i++) {
		ASSERT_EQ(ksend(&r, 100, &pos), 0);
		EXPECT_EQ(pos, start + i * UHP_REC_TOTAL(100));
		EXPECT_EQ(kverify(&r, pos), 0);
	}
	EXPECT_EQ(r.prod->write_pos, start + 4 * UHP_REC_TOTAL(100));
	EXPECT_TRUE(r.prod->write_pos < start);	/* wrapped through zero */
}

TEST(header_lies_about_length)
{
	struct ring r = open_ring();
	struct uhp_rec_hdr *h = (struct uhp_rec_hdr *)r.data;

	ASSERT_EQ(ksend(&r, 100, NULL), 0);
	h->len = RING_SIZE;			/* claims bytes past write_pos */
	EXPECT_EQ(kverify(&r, 0), -EUCLEAN);
	h->len = 0xffffffff;
	EXPECT_EQ(kverify(&r, 0), -EUCLEAN);
	h->len = 50;				/* plausible: CRC catches it */
	EXPECT_EQ(kverify(&r, 0), -EBADMSG);
	h->len = 100;
	EXPECT_EQ(kverify(&r, 0), 0);
	h->tag ^= 1;				/* not a committed tag */
	EXPECT_EQ(kverify(&r, 0), -EAGAIN);
	EXPECT_FALSE(readable(&r));
}

static atomic_int stop;

static void *scribbler(void *arg)
{
	struct ring *r = arg;
	uint64_t x = 88172645463325252ULL;

	while (!atomic_load(&stop)) {
		/* xorshift64: huge, backwards, misaligned, sometimes sane. */
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		switch (x & 3) {
		case 0: r->prod->write_pos = x >> 2; break;
		case 1: r->cons->read_pos = x >> 2; break;
		case 2: r->prod->write_pos = r->cons->read_pos + ((x >> 8) & (RING_SIZE - 1)); break;
		case 3: ((struct uhp_rec_hdr *)(r->data + (x >> 40) % RING_SIZE / 64 * 64))->len = (uint32_t)x; break;
		}
	}
	return NULL;
}

TEST(peer_scribbling_in_a_tight_loop)
{
	struct ring r = open_ring();
	struct timespec t0, t;
	pthread_t th;
	long n = 0, ok = 0;

	atomic_store(&stop, 0);
	ASSERT_EQ(pthread_create(&th, NULL, scribbler, &r), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		long s = ksend(&r, (uint32_t)(n * 37 % 3000), NULL);
		long v = kverify(&r, (uint64_t)n * 64);

		ASSERT_TRUE(s == 0 || s == -EUCLEAN || s == -EAGAIN);
		ASSERT_TRUE(v == 0 || v == -EUCLEAN || v == -EAGAIN ||
			    v == -ERANGE || v == -EBADMSG);
		readable(&r);
		ok += s == 0;
		n++;
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while (t.tv_sec - t0.tv_sec < 2);
	atomic_store(&stop, 1);
	pthread_join(th, NULL);
	TH_LOG("%ld kernel sends against a scribbler, %ld accepted", n, ok);

	/* Restored to sane positions, the ring works again. */
	r.prod->write_pos = 0;
	r.cons->read_pos = 0;
	EXPECT_EQ(ksend(&r, 100, NULL), 0);
	EXPECT_EQ(kverify(&r, 0), 0);
}

TEST_HARNESS_MAIN
