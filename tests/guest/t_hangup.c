// SPDX-License-Identifier: MIT
/*
 * Hang-up: a channel whose name is gone and in which nobody can produce
 * any more reports POLLHUP, and libuhp's waits return -EPIPE once the
 * consumer took every record (uhp_wait(), kmod/channel.c
 * uhp_channel_hung_up()). The consumer must be consume-only
 * (UHP_*_CONSUME_ONLY: its fd cannot produce, whoever shares it), else its
 * own fd is a writer. Writers are writable channel files, however they are
 * kept: an fd, a mapping whose fd was closed, a child's inherited fd;
 * observers (read-only attach) are not writers.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/uhp.h>
#include <uhp.h>

#include "harness.h"
#include "ioctl_calls.h"

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static short revents(struct uhp_channel *ch)
{
	struct pollfd p = { .fd = uhp_channel_fd(ch), .events = POLLIN };

	return poll(&p, 1, 0) == 1 ? p.revents : 0;
}

/* A consume-only consumer of a new channel 'name' on /dev/uhp. */
static struct uhp_channel *consumer(int dev, const char *name)
{
	struct uhp_open_opts o = UHP_OPEN_OPTS_INIT;
	struct uhp_channel *ch = NULL;

	(void)dev;
	o.flags = UHP_OPEN_CREATE | UHP_OPEN_EXCL | UHP_OPEN_CONSUMER |
		  UHP_OPEN_CONSUME_ONLY | UHP_OPEN_DEVICE;
	o.ring_size = 1 << 14;
	if (uhp_open_channel(name, &o, &ch) != 1)
		return NULL;
	return ch;
}

TEST(a_consume_only_consumer_cannot_produce)
{
	int dev = dev_open_or_exit();
	struct uhp_channel *c = consumer(dev, "hup.ro");
	struct uhp_info info = { .size = sizeof(info) };
	void *p;

	ASSERT_TRUE(c != NULL);
	EXPECT_EQ(uhp_send(c, "x", 1, NULL), -EBADF);
	EXPECT_EQ(uhp_kernel_send(c, 0, "x", 1, NULL, NULL), -EBADF);
	EXPECT_EQ(uhp_claim_ring(c), -EBADF);
	p = mmap(NULL, 1 << 14, PROT_READ | PROT_WRITE, MAP_SHARED, uhp_channel_fd(c),
		 UHP_MMAP_OFF(0, UHP_PART_DATA));
	EXPECT_TRUE(p == MAP_FAILED && errno == EPERM);
	p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, uhp_channel_fd(c),
		 UHP_MMAP_OFF(0, UHP_PART_PROD));
	EXPECT_TRUE(p == MAP_FAILED && errno == EPERM);
	ASSERT_EQ(ioctl(uhp_channel_fd(c), UHP_IOC_INFO, &info), 0);
	EXPECT_EQ(info.flags, UHP_INFO_F_CONSUMER | UHP_INFO_F_CONSUME_ONLY);
	EXPECT_TRUE(info.features & UHP_FEAT_HANGUP);
	/* Not the consumer: the flag alone is refused. */
	{
		struct uhp_attach a = { .size = sizeof(a), .name = "hup.ro",
					.flags = UHP_ATTACH_CONSUME_ONLY };

		EXPECT_EQ(xioctl(dev, UHP_IOC_ATTACH, &a), -EINVAL);
	}
	uhp_close(c);
	EXPECT_EQ(uhp_unlink(dev, "hup.ro"), 0);
	close(dev);
}

TEST(a_full_consumer_is_a_writer_no_hangup)
{
	int dev = dev_open_or_exit();
	struct uhp_create_opts o = UHP_CREATE_OPTS_INIT;
	struct uhp_channel *c;

	o.ring_size = 1 << 14;
	o.consumer = true;
	ASSERT_EQ(uhp_create(dev, "hup.full", &o, &c), 0);
	ASSERT_EQ(uhp_unlink(dev, "hup.full"), 0);
	/* Its own fd (and a child that inherits it) can still produce. */
	EXPECT_EQ(revents(c) & POLLHUP, 0);
	EXPECT_EQ(uhp_wait(c, 50), -ETIMEDOUT);
	uhp_close(c);
	close(dev);
}

TEST(records_first_then_epipe)
{
	int dev = dev_open_or_exit();
	struct uhp_channel *c = consumer(dev, "hup.a"), *p;
	char b[16];

	ASSERT_TRUE(c != NULL);
	ASSERT_EQ(uhp_attach(dev, "hup.a", 0, &p), 0);
	for (int i = 0; i < 3; i++)
		ASSERT_EQ(uhp_send(p, "rec", 3, NULL), 0);
	uhp_close(p);
	/* Named: anyone may still attach and produce. */
	EXPECT_EQ(revents(c) & POLLHUP, 0);
	ASSERT_EQ(uhp_unlink(dev, "hup.a"), 0);
	EXPECT_EQ(revents(c), POLLIN | POLLHUP);
	for (int i = 0; i < 3; i++)
		EXPECT_EQ(uhp_recv_wait(c, b, sizeof(b), NULL, 1000), 3);
	EXPECT_EQ(revents(c), POLLHUP);
	EXPECT_EQ(uhp_recv_wait(c, b, sizeof(b), NULL, 5000), -EPIPE);
	EXPECT_EQ(uhp_wait(c, 0), -ETIMEDOUT);	/* 0: only checks, no sleep */
	uhp_close(c);
	close(dev);
}

TEST(no_hangup_while_a_producer_is_there)
{
	int dev = dev_open_or_exit();
	struct uhp_channel *c = consumer(dev, "hup.b"), *p, *obs;
	uint64_t t0;

	ASSERT_TRUE(c != NULL);
	ASSERT_EQ(uhp_attach(dev, "hup.b", 0, &p), 0);
	ASSERT_EQ(uhp_attach(dev, "hup.b", UHP_ATTACH_RDONLY, &obs), 0);
	ASSERT_EQ(uhp_unlink(dev, "hup.b"), 0);
	EXPECT_EQ(revents(c) & POLLHUP, 0);
	t0 = now_ms();
	EXPECT_EQ(uhp_wait(c, 200), -ETIMEDOUT);
	EXPECT_GE(now_ms() - t0, 190);
	uhp_close(p);
	/* An observer cannot write: it keeps nothing open. */
	EXPECT_EQ(revents(c) & POLLHUP, POLLHUP);
	EXPECT_EQ(uhp_wait(c, 1000), -EPIPE);
	uhp_close(obs);
	uhp_close(c);
	close(dev);
}

TEST(a_mapping_and_a_child_count_as_writers)
{
	int dev = dev_open_or_exit();
	struct uhp_channel *c = consumer(dev, "hup.c");
	struct uhp_attach a = { .size = sizeof(a), .name = "hup.c" };
	pid_t cons_child, prod_child;
	int fd, st, pipefd[2];
	void *data;
	char x;

	ASSERT_TRUE(c != NULL);
	/* A child with the consumer's own fd is no writer: consume-only. */
	cons_child = fork();
	if (cons_child == 0)
		_exit(uhp_send(c, "x", 1, NULL) == -EBADF ? 0 : 1);
	fd = (int)xioctl(dev, UHP_IOC_ATTACH, &a);
	ASSERT_GE(fd, 0);
	data = mmap(NULL, 1 << 14, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		    UHP_MMAP_OFF(0, UHP_PART_DATA));
	ASSERT_TRUE(data != MAP_FAILED);
	ASSERT_EQ(pipe(pipefd), 0);
	prod_child = fork();
	if (prod_child == 0) {
		/* Holds its copy of the producer's fd until the parent says. */
		close(pipefd[1]);
		_exit(read(pipefd[0], &x, 1) < 0);
	}
	close(pipefd[0]);
	ASSERT_EQ(waitpid(cons_child, &st, 0), cons_child);
	EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	ASSERT_EQ(uhp_unlink(dev, "hup.c"), 0);
	close(fd);
	EXPECT_EQ(revents(c) & POLLHUP, 0);	/* the mapping and the child's fd */
	ASSERT_EQ(munmap(data, 1 << 14), 0);
	EXPECT_EQ(revents(c) & POLLHUP, 0);	/* the child's fd */
	close(pipefd[1]);
	ASSERT_EQ(waitpid(prod_child, &st, 0), prod_child);
	EXPECT_EQ(revents(c) & POLLHUP, POLLHUP);
	uhp_close(c);
	close(dev);
}

struct sleeper {
	struct uhp_channel *c;
	ssize_t ret;
	uint64_t ms;
};

static void *sleeper_main(void *arg)
{
	struct sleeper *s = arg;
	uint64_t t0 = now_ms();
	char b[16];

	s->ret = uhp_recv_wait(s->c, b, sizeof(b), NULL, 10000);
	s->ms = now_ms() - t0;
	return NULL;
}

TEST(the_last_producer_going_wakes_a_sleeping_consumer)
{
	int dev = dev_open_or_exit();
	struct uhp_channel *c = consumer(dev, "hup.d"), *p;
	struct sleeper s;
	pthread_t th;

	ASSERT_TRUE(c != NULL);
	uhp_set_stall_timeout_ns(c, 0);	/* its sleeps last up to 1 s */
	ASSERT_EQ(uhp_attach(dev, "hup.d", 0, &p), 0);
	ASSERT_EQ(uhp_unlink(dev, "hup.d"), 0);
	s = (struct sleeper){ .c = c };
	ASSERT_EQ(pthread_create(&th, NULL, sleeper_main, &s), 0);
	usleep(300000);		/* asleep in poll() by now */
	uhp_close(p);
	pthread_join(th, NULL);
	EXPECT_EQ(s.ret, -EPIPE);
	/* Woken by the hang-up, not by a timeout or the 1 s sleep cap. */
	EXPECT_GE(s.ms, 250);
	EXPECT_LT(s.ms, 900);
	uhp_close(c);
	close(dev);
}

TEST_HARNESS_MAIN
