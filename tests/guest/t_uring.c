// SPDX-License-Identifier: MIT
/*
 * io_uring with uhp channels (userlib/uhp_uring.h, liburing linked
 * statically): one ring waiting on 128 channels with multishot polls gets
 * completions for exactly the channels that received data; the
 * UHP_URING_CMD_NOTIFY doorbell wakes many consumers from one
 * io_uring_enter(); bad commands get -EINVAL / -EOPNOTSUPP.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "uhp_uring.h"

#include "harness.h"

#define NCH	128

static int dev;
static struct uhp_channel *ch[NCH];

static int write_param(const char *name, const char *val)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "/sys/module/uhp/parameters/%s", name);
	f = fopen(path, "w");
	if (!f)
		return -errno;
	fputs(val, f);
	return fclose(f) ? -errno : 0;
}

/* n consumer channels "ur.<tag>.<i>", one small ring each. */
static void make_channels(const char *tag, int n)
{
	char name[UHP_NAME_MAX];
	int i, ret;

	dev = uhp_open();
	/* 128 channels is past the default per-user limit (64). */
	if (write_param("max_channels_per_user", "512"))
		FAIL("cannot raise max_channels_per_user");
	for (i = 0; i < n; i++) {
		struct uhp_create_opts o = UHP_CREATE_OPTS_INIT;

		o.ring_size = 4096;
		o.node = 0;
		o.consumer = true;
		snprintf(name, sizeof(name), "ur.%s.%d", tag, i);
		ret = uhp_create(dev, name, &o, &ch[i]);
		if (ret)
			FAIL("create %s: %s", name, strerror(-ret));
		uhp_unlink(dev, name);	/* the fds are enough */
	}
}

/* Collect CQEs until none arrives for quiet_ms; mark user_data in seen[]. */
static int reap(struct io_uring *ring, int *seen, int n, int quiet_ms)
{
	struct __kernel_timespec ts = { .tv_nsec = (long)quiet_ms * 1000000L };
	struct io_uring_cqe *cqe;
	int count = 0;

	while (io_uring_wait_cqe_timeout(ring, &cqe, &ts) == 0) {
		uint64_t k = io_uring_cqe_get_data64(cqe);

		if (k < (uint64_t)n && cqe->res > 0 && (cqe->res & POLLIN))
			seen[k]++;
		else if (k < (uint64_t)n)
			TH_LOG("cqe for %llu: res %d", (unsigned long long)k, cqe->res);
		io_uring_cqe_seen(ring, cqe);
		count++;
	}
	return count;
}

TEST_TIMEOUT(one_ring_waits_on_128_channels, 120)
{
	struct io_uring ring;
	int seen[NCH] = { 0 }, i, status, errors = 0;
	pid_t pid;

	make_channels("wait", NCH);
	ASSERT_EQ(io_uring_queue_init(256, &ring, 0), 0);
	for (i = 0; i < NCH; i++)
		uhp_uring_prep_wait(io_uring_get_sqe(&ring), ch[i], (uint64_t)i);
	ASSERT_EQ(io_uring_submit(&ring), NCH);
	/* Nothing yet: no completion. */
	EXPECT_EQ(reap(&ring, seen, NCH, 200), 0);
	for (i = 0; i < NCH; i++)
		ASSERT_EQ(uhp_prepare_sleep(ch[i]), 0);

	/* Another process sends to every third channel. */
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		for (i = 0; i < NCH; i += 3)
			if (uhp_send(ch[i], &i, sizeof(i), NULL))
				_exit(1);
		_exit(0);
	}
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT_EQ(WEXITSTATUS(status), 0);
	reap(&ring, seen, NCH, 500);
	for (i = 0; i < NCH; i++) {
		int want = i % 3 == 0;

		if ((seen[i] > 0) != want) {
			TH_LOG("channel %d: %d completions, want %s", i, seen[i],
			       want ? "some" : "none");
			errors++;
		}
		if (want) {
			int v = -1;

			EXPECT_EQ(uhp_recv(ch[i], &v, sizeof(v), NULL), (ssize_t)sizeof(v));
			EXPECT_EQ(v, i);
		}
		uhp_end_sleep(ch[i]);
	}
	EXPECT_EQ(errors, 0);
	/* Multishot: still armed. A second round on channel 1 only. */
	memset(seen, 0, sizeof(seen));
	ASSERT_EQ(uhp_prepare_sleep(ch[1]), 0);
	ASSERT_EQ(uhp_send(ch[1], "x", 1, NULL), 0);
	reap(&ring, seen, NCH, 300);
	EXPECT_GT(seen[1], 0);
	for (i = 0; i < NCH; i++)
		if (i != 1 && seen[i])
			errors++;
	EXPECT_EQ(errors, 0);
	io_uring_queue_exit(&ring);
	write_param("max_channels_per_user", "64");
}

TEST(doorbell_wakes_many_consumers_in_one_enter)
{
	struct io_uring waiters, bells;
	struct io_uring_cqe *cqe;
	int seen[16] = { 0 }, i, n = 16, ok = 0;

	make_channels("bell", n);
	ASSERT_EQ(io_uring_queue_init(64, &waiters, 0), 0);
	ASSERT_EQ(io_uring_queue_init(64, &bells, 0), 0);
	for (i = 0; i < n; i++)
		uhp_uring_prep_wait(io_uring_get_sqe(&waiters), ch[i], (uint64_t)i);
	ASSERT_EQ(io_uring_submit(&waiters), n);
	/* Records land without need_wakeup: no NOTIFY, no wakeup. */
	for (i = 0; i < n; i++)
		ASSERT_EQ(uhp_send(ch[i], "rec", 3, NULL), 0);
	EXPECT_EQ(reap(&waiters, seen, n, 200), 0);
	/* One io_uring_enter() rings all 16 doorbells. */
	for (i = 0; i < n; i++)
		uhp_uring_prep_notify(io_uring_get_sqe(&bells), ch[i], (uint64_t)i);
	ASSERT_EQ(io_uring_submit_and_wait(&bells, n), n);
	for (i = 0; i < n; i++) {
		ASSERT_EQ(io_uring_wait_cqe(&bells, &cqe), 0);
		ok += cqe->res == 0;
		io_uring_cqe_seen(&bells, cqe);
	}
	EXPECT_EQ(ok, n);
	reap(&waiters, seen, n, 300);
	for (i = 0; i < n; i++)
		EXPECT_GT(seen[i], 0);
	io_uring_queue_exit(&waiters);
	io_uring_queue_exit(&bells);
}

static int one_cmd(struct io_uring *ring, int fd, uint32_t op, uint32_t flags)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
	struct io_uring_cqe *cqe;
	struct uhp_uring_cmd cmd = { .flags = flags };
	int res;

	io_uring_prep_rw(IORING_OP_URING_CMD, sqe, fd, NULL, 0, 0);
	sqe->cmd_op = op;
	memcpy(&sqe->addr3, &cmd, sizeof(cmd));
	if (io_uring_submit(ring) != 1 || io_uring_wait_cqe(ring, &cqe))
		return -1000;
	res = cqe->res;
	io_uring_cqe_seen(ring, cqe);
	return res;
}

TEST(bad_uring_commands)
{
	struct io_uring ring;
	int fd;

	make_channels("bad", 1);
	fd = uhp_channel_fd(ch[0]);
	ASSERT_EQ(io_uring_queue_init(8, &ring, 0), 0);
	EXPECT_EQ(one_cmd(&ring, fd, UHP_URING_CMD_NOTIFY, 0), 0);
	EXPECT_EQ(one_cmd(&ring, fd, 99, 0), -EOPNOTSUPP);
	EXPECT_EQ(one_cmd(&ring, fd, 0, 0), -EOPNOTSUPP);
	EXPECT_EQ(one_cmd(&ring, fd, UHP_URING_CMD_NOTIFY, 1), -EINVAL);
	/* /dev/uhp itself takes no io_uring commands. */
	EXPECT_EQ(one_cmd(&ring, dev, UHP_URING_CMD_NOTIFY, 0), -EOPNOTSUPP);
	io_uring_queue_exit(&ring);
}

/* An observer (UHP_ATTACH_RDONLY) rings no doorbell. */
TEST(read_only_fd_cannot_notify)
{
	struct uhp_channel *obs;
	struct io_uring ring;

	make_channels("ro", 1);
	ASSERT_EQ(uhp_create(dev, "ur.ro.named", NULL, &obs), 0);
	uhp_close(obs);
	ASSERT_EQ(uhp_attach(dev, "ur.ro.named", UHP_ATTACH_RDONLY, &obs), 0);
	uhp_unlink(dev, "ur.ro.named");
	ASSERT_EQ(io_uring_queue_init(8, &ring, 0), 0);
	EXPECT_EQ(one_cmd(&ring, uhp_channel_fd(obs), UHP_URING_CMD_NOTIFY, 0), -EBADF);
	io_uring_queue_exit(&ring);
	uhp_close(obs);
}

TEST_HARNESS_MAIN
