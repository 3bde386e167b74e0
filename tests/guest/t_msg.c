// SPDX-License-Identifier: MIT
/*
 * Messages through /dev/uhp channels with libuhp, across processes: payload
 * and CRC end to end (user-written records checked by the kernel's crc32c(),
 * kernel-written ones by libuhp's), full/empty edges and wrap-around, a
 * sleeping consumer woken by a producer in another process, producers and
 * consumers killed mid-stream, NUMA ring choice, fds passed over SCM_RIGHTS.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "uhp.h"

#include "harness.h"

static int dev;

static void fill(uint8_t *p, uint32_t len, uint32_t id, uint64_t seq)
{
	for (uint32_t i = 0; i < len; i++)
		p[i] = (uint8_t)(id * 13 + seq * 7 + i);
}

static int check(const uint8_t *p, uint32_t len, uint32_t id, uint64_t seq)
{
	for (uint32_t i = 0; i < len; i++)
		if (p[i] != (uint8_t)(id * 13 + seq * 7 + i))
			return -1;
	return 0;
}

static uint32_t size_of(uint64_t seq, uint32_t max)
{
	return (uint32_t)((seq * 2654435761u) % (max + 1));
}

/* Create 'name' as consumer with the given ring size (node -1: per node). */
static struct uhp_channel *consumer(const char *name, uint64_t ring, int node)
{
	struct uhp_create_opts o = UHP_CREATE_OPTS_INIT;
	struct uhp_channel *ch;
	int ret;

	if (dev <= 0)
		dev = uhp_open();
	o.ring_size = ring;
	o.node = node;
	o.consumer = true;
	ret = uhp_create(dev, name, &o, &ch);
	if (ret) {
		printf("# create %s: %s\n", name, strerror(-ret));
		exit(1);
	}
	/* Children attach by name before the test ends; unlink at exit. */
	return ch;
}

static struct uhp_channel *producer(const char *name)
{
	struct uhp_channel *ch;
	int d = uhp_open();
	int ret = d < 0 ? d : uhp_attach(d, name, 0, &ch);

	if (ret) {
		printf("# attach %s: %s\n", name, strerror(-ret));
		_exit(100);
	}
	return ch;
}

/* Producer process body: n records of up to max bytes, id in src. */
static void produce(const char *name, uint32_t id, uint64_t n, uint32_t max)
{
	struct uhp_channel *ch = producer(name);
	static uint8_t buf[65536];

	for (uint64_t seq = 0; seq < n; seq++) {
		struct uhp_meta m = { .seq = seq, .src = id, .type = 1 };
		uint32_t len = size_of(seq, max);
		int ret;

		fill(buf, len, id, seq);
		while ((ret = uhp_send(ch, buf, len, &m)) == -EAGAIN)
			sched_yield();
		if (ret)
			_exit(101);
	}
	uhp_close(ch);
}

static pid_t spawn_producer(const char *name, uint32_t id, uint64_t n, uint32_t max)
{
	pid_t pid = fork();

	if (pid == 0) {
		produce(name, id, n, max);
		_exit(0);
	}
	return pid;
}

static int reap(pid_t pid)
{
	int status;

	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

TEST_TIMEOUT(two_processes_payload_and_crc, 120)
{
	struct uhp_channel *ch = consumer("msg.two", 1 << 16, -1);
	static uint8_t buf[65536];
	const uint64_t n = 20000;
	struct uhp_stats st;
	pid_t pid = spawn_producer("msg.two", 7, n, 3000);
	uint64_t seq = 0, bytes = 0;

	while (seq < n) {
		struct uhp_meta m;
		ssize_t len = uhp_recv_wait(ch, buf, sizeof(buf), &m, 10000);

		ASSERT_GE(len, 0);
		ASSERT_EQ(m.src, 7);
		ASSERT_EQ(m.seq, seq);
		ASSERT_EQ((uint32_t)len, size_of(seq, 3000));
		ASSERT_EQ(check(buf, (uint32_t)len, 7, seq), 0);
		bytes += (uint64_t)len;
		seq++;
	}
	EXPECT_EQ(reap(pid), 0);
	EXPECT_EQ(uhp_recv(ch, buf, sizeof(buf), NULL), -EAGAIN);
	ASSERT_EQ(uhp_stats(ch, &st), 0);
	EXPECT_EQ(st.received, n);
	EXPECT_EQ(st.crc_errors, 0);
	TH_LOG("%llu records, %llu payload bytes", (unsigned long long)n,
	       (unsigned long long)bytes);
	EXPECT_EQ(uhp_unlink(dev, "msg.two"), 0);
}

TEST(kernel_and_library_crc_agree)
{
	struct uhp_channel *ch = consumer("msg.crc", 1 << 16, 0);
	static uint8_t buf[4096];
	uint32_t len;

	uhp_unlink(dev, "msg.crc");
	/* Kernel-sealed records pass libuhp's CRC check... */
	for (len = 0; len < 2000; len += 97) {
		struct uhp_meta m = { .seq = len, .type = 2 }, got;
		uint64_t pos;

		fill(buf, len, 1, len);
		ASSERT_EQ(uhp_kernel_send(ch, 0, buf, len, &m, &pos), 0);
		memset(buf, 0, sizeof(buf));
		ASSERT_EQ(uhp_recv(ch, buf, sizeof(buf), &got), (ssize_t)len);
		EXPECT_EQ(got.flags & UHP_REC_F_KERNEL, 0);	/* a user ring */
		EXPECT_EQ(got.seq, len);
		EXPECT_EQ(check(buf, len, 1, len), 0);
	}
	/* ... and records libuhp sealed pass the kernel's crc32c(). */
	for (len = 0; len < 2000; len += 89) {
		struct uhp_rx rx;
		uint32_t klen, kcrc;

		fill(buf, len, 2, len);
		ASSERT_EQ(uhp_send(ch, buf, len, NULL), 0);
		ASSERT_EQ(uhp_peek(ch, &rx), 0);
		EXPECT_EQ(uhp_verify(ch, rx.meta.ring, rx.pos, &klen, &kcrc), 0);
		EXPECT_EQ(klen, len);
		EXPECT_EQ(uhp_release(ch, &rx), 0);
	}
	/* A damaged record: the kernel and the library both see it. */
	{
		struct uhp_txn t;
		struct uhp_rx rx;

		uint8_t *payload;

		ASSERT_EQ(uhp_reserve(ch, 64, &t), 0);
		payload = t.payload;
		memset(payload, 1, 64);
		ASSERT_EQ(uhp_commit(ch, &t, NULL), 0);
		payload[10] ^= 0x80;	/* after sealing: a peer scribbles */
		EXPECT_EQ(uhp_verify(ch, 0, t.pos, NULL, NULL), -EBADMSG);
		EXPECT_EQ(uhp_peek(ch, &rx), -EBADMSG);
		EXPECT_EQ(uhp_recv(ch, buf, sizeof(buf), NULL), -EAGAIN);
	}
}

TEST(full_empty_and_wrap)
{
	struct uhp_channel *ch = consumer("msg.wrap", 4096, 0);
	static uint8_t buf[4096];
	uint64_t seq = 0, rseq = 0;
	int lap;

	uhp_unlink(dev, "msg.wrap");
	EXPECT_EQ(uhp_recv(ch, buf, sizeof(buf), NULL), -EAGAIN);
	EXPECT_EQ(uhp_send(ch, buf, 4096, NULL), -EMSGSIZE);
	EXPECT_EQ(uhp_send(ch, buf, 4096 - UHP_REC_HDR_SIZE, NULL), 0);
	EXPECT_EQ(uhp_send(ch, buf, 0, NULL), -EAGAIN);	/* exactly full */
	EXPECT_EQ(uhp_recv(ch, buf, 100, NULL), -EMSGSIZE);	/* stays */
	EXPECT_EQ(uhp_recv(ch, buf, sizeof(buf), NULL), 4096 - UHP_REC_HDR_SIZE);
	EXPECT_EQ(uhp_recv(ch, buf, sizeof(buf), NULL), -EAGAIN);

	/* Many laps with sizes that keep moving the record boundaries
	 * across the end of the data area. */
	for (lap = 0; lap < 200; lap++) {
		int sent = 0;

		for (;;) {
			struct uhp_meta m = { .seq = seq };
			uint32_t len = size_of(seq, 700);
			int ret;

			fill(buf, len, 3, seq);
			ret = uhp_send(ch, buf, len, &m);
			if (ret == -EAGAIN)
				break;
			ASSERT_EQ(ret, 0);
			seq++;
			sent++;
		}
		ASSERT_GT(sent, 0);
		for (;;) {
			struct uhp_meta m;
			ssize_t len = uhp_recv(ch, buf, sizeof(buf), &m);

			if (len == -EAGAIN)
				break;
			ASSERT_GE(len, 0);
			ASSERT_EQ(m.seq, rseq);
			ASSERT_EQ(check(buf, (uint32_t)len, 3, rseq), 0);
			rseq++;
		}
		ASSERT_EQ(rseq, seq);
	}
	TH_LOG("%llu records through a 4 KiB ring", (unsigned long long)seq);
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

TEST(sleeping_consumer_is_woken_by_another_process)
{
	struct uhp_channel *ch = consumer("msg.wake", 1 << 16, -1);
	uint8_t buf[64];
	int64_t t0, waited;
	pid_t pid;
	int round;

	uhp_unlink(dev, "msg.wake");
	for (round = 0; round < 3; round++) {
		/* The child shares this handle (fork): it produces on it. */
		pid = fork();
		ASSERT_GE(pid, 0);
		if (pid == 0) {
			struct uhp_stats st;
			struct timespec d = { 0, 300 * 1000000L };

			nanosleep(&d, NULL);	/* the consumer is asleep by now */
			if (uhp_send(ch, "wake", 4, NULL) || uhp_stats(ch, &st))
				_exit(1);
			/* It saw need_wakeup and called NOTIFY. */
			_exit(st.notifies == 1 ? 0 : 2);
		}
		t0 = now_ns();
		ASSERT_EQ(uhp_recv_wait(ch, buf, sizeof(buf), NULL, 20000), 4);
		waited = now_ns() - t0;
		EXPECT_EQ(reap(pid), 0);
		EXPECT_GT(waited, 250 * 1000000LL);
		EXPECT_LT(waited, 10000 * 1000000LL);
	}
}

TEST_TIMEOUT(producer_killed_mid_stream, 120)
{
	struct uhp_channel *ch = consumer("msg.kill", 1 << 14, 0);
	static uint8_t buf[65536];
	uint64_t next[3] = { 0 }, got = 0;
	struct uhp_stats st;
	pid_t victim, fresh;

	uhp_set_stall_timeout_ns(ch, 50 * 1000000ULL);
	victim = spawn_producer("msg.kill", 1, UINT64_MAX, 500);
	/* Let it stream for a while, then kill it wherever it is. */
	while (next[1] < 1000) {
		struct uhp_meta m;
		ssize_t len = uhp_recv_wait(ch, buf, sizeof(buf), &m, 10000);

		ASSERT_GE(len, 0);
		ASSERT_EQ(m.seq, next[1]);
		next[1]++;
	}
	kill(victim, SIGKILL);
	EXPECT_EQ(reap(victim), 128 + SIGKILL);

	/* A fresh producer's records all arrive, after whatever the victim
	 * committed (a reservation it held is skipped after the timeout). */
	fresh = spawn_producer("msg.kill", 2, 5000, 500);
	while (next[2] < 5000) {
		struct uhp_meta m;
		ssize_t len = uhp_recv_wait(ch, buf, sizeof(buf), &m, 10000);

		ASSERT_GE(len, 0);
		if (m.src == 1) {
			ASSERT_EQ(m.seq, next[1]);	/* FIFO, no gap */
			next[1]++;
			continue;
		}
		ASSERT_EQ(m.src, 2);
		ASSERT_EQ(m.seq, next[2]);
		ASSERT_EQ(check(buf, (uint32_t)len, 2, m.seq), 0);
		next[2]++;
		got++;
	}
	EXPECT_EQ(reap(fresh), 0);
	ASSERT_EQ(uhp_stats(ch, &st), 0);
	EXPECT_EQ(st.crc_errors, 0);
	EXPECT_LE(st.stalled_skips, 1);
	TH_LOG("victim delivered %llu records before SIGKILL, %llu stalled skip(s)",
	       (unsigned long long)next[1], (unsigned long long)st.stalled_skips);
	uhp_unlink(dev, "msg.kill");
}

TEST(dead_reservation_is_skipped)
{
	struct uhp_channel *ch = consumer("msg.dead", 1 << 14, 0);
	uint8_t buf[256];
	struct uhp_stats st;
	struct uhp_meta m;
	pid_t pid = fork();

	ASSERT_GE(pid, 0);
	if (pid == 0) {
		struct uhp_channel *p = producer("msg.dead");
		struct uhp_txn t;

		/* Reserve and die without committing. */
		if (uhp_reserve(p, 100, &t))
			_exit(1);
		kill(getpid(), SIGKILL);
	}
	EXPECT_EQ(reap(pid), 128 + SIGKILL);
	spawn_producer("msg.dead", 5, 3, 100);
	uhp_set_stall_timeout_ns(ch, 100 * 1000000ULL);
	for (uint64_t seq = 0; seq < 3; seq++) {
		ASSERT_GE(uhp_recv_wait(ch, buf, sizeof(buf), &m, 5000), 0);
		EXPECT_EQ(m.src, 5);
		EXPECT_EQ(m.seq, seq);
	}
	ASSERT_EQ(uhp_stats(ch, &st), 0);
	EXPECT_EQ(st.stalled_skips, 1);
	while (wait(NULL) > 0)
		;
	EXPECT_EQ(uhp_unlink(dev, "msg.dead"), 0);
}

TEST(consumer_killed_while_asleep)
{
	struct uhp_channel *p;
	struct uhp_stats st;
	uint64_t before;
	pid_t pid;
	int i;

	dev = uhp_open();
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		struct uhp_channel *c = consumer("msg.zombie", 1 << 14, 0);
		uint8_t b[8];

		/* Sleeps with need_wakeup set until killed. */
		for (;;)
			uhp_recv_wait(c, b, sizeof(b), NULL, -1);
	}
	/* Wait until the child has created the channel and gone to sleep. */
	for (i = 0; i < 500 && uhp_attach(dev, "msg.zombie", 0, &p); i++)
		usleep(10000);
	ASSERT_LT(i, 500);
	usleep(300000);
	ASSERT_EQ(uhp_send(p, "x", 1, NULL), 0);	/* wakes it, it re-sleeps */
	usleep(300000);
	kill(pid, SIGKILL);
	EXPECT_EQ(reap(pid), 128 + SIGKILL);
	/* The kernel cleared need_wakeup when the consumer's fd went away:
	 * producers stop making syscalls for nobody. */
	ASSERT_EQ(uhp_stats(p, &st), 0);
	before = st.notifies;
	EXPECT_GE(before, 1);
	for (i = 0; i < 100; i++)
		ASSERT_EQ(uhp_send(p, "y", 1, NULL), 0);
	ASSERT_EQ(uhp_stats(p, &st), 0);
	EXPECT_EQ(st.notifies, before);
	/* And a new consumer can take over the backlog. */
	{
		struct uhp_channel *c;
		uint8_t b[8];
		int n = 0;

		ASSERT_EQ(uhp_attach(dev, "msg.zombie", UHP_ATTACH_CONSUMER, &c), 0);
		while (uhp_recv(c, b, sizeof(b), NULL) >= 0)
			n++;
		EXPECT_GE(n, 100);
	}
	uhp_unlink(dev, "msg.zombie");
}

TEST(producer_uses_the_ring_of_its_node)
{
	struct uhp_channel *ch = consumer("msg.numa", 1 << 14, -1);
	uint8_t b[8];
	struct uhp_meta m;
	int cpu;

	ASSERT_EQ(uhp_nr_rings(ch), 2);
	for (cpu = 0; cpu < 2; cpu++) {
		pid_t pid = fork();

		ASSERT_GE(pid, 0);
		if (pid == 0) {
			cpu_set_t set;

			CPU_ZERO(&set);
			CPU_SET(cpu, &set);
			if (sched_setaffinity(0, sizeof(set), &set))
				_exit(1);
			produce("msg.numa", (uint32_t)cpu, 1, 4);
			_exit(0);
		}
		EXPECT_EQ(reap(pid), 0);
		ASSERT_GE(uhp_recv_wait(ch, b, sizeof(b), &m, 5000), 0);
		/* The rig puts CPU n on node n, and ring n is node n's. */
		EXPECT_EQ(m.src, (uint32_t)cpu);
		EXPECT_EQ(m.ring, (uint32_t)cpu);
	}
	uhp_unlink(dev, "msg.numa");
}

TEST(multiple_producers_fifo_each)
{
	struct uhp_channel *ch = consumer("msg.mp", 1 << 15, 0);
	static uint8_t buf[65536];
	const uint64_t n = 5000;
	uint64_t next[4] = { 0 }, total = 0;
	pid_t pids[3];
	int i;

	for (i = 0; i < 3; i++)
		pids[i] = spawn_producer("msg.mp", (uint32_t)i, n, 1000);
	while (total < 3 * n) {
		struct uhp_meta m;
		ssize_t len = uhp_recv_wait(ch, buf, sizeof(buf), &m, 10000);

		ASSERT_GE(len, 0);
		ASSERT_LT(m.src, 3);
		ASSERT_EQ(m.seq, next[m.src]);
		ASSERT_EQ(check(buf, (uint32_t)len, m.src, m.seq), 0);
		next[m.src]++;
		total++;
	}
	for (i = 0; i < 3; i++)
		EXPECT_EQ(reap(pids[i]), 0);
	EXPECT_EQ(uhp_unlink(dev, "msg.mp"), 0);
}

TEST(channel_fd_passed_over_scm_rights)
{
	struct uhp_channel *ch = consumer("msg.scm", 1 << 14, 0);
	int sv[2], status;
	uint8_t b[16];
	pid_t pid;

	uhp_unlink(dev, "msg.scm");
	ASSERT_EQ(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv), 0);
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		char cbuf[CMSG_SPACE(sizeof(int))], c;
		struct iovec iov = { &c, 1 };
		struct msghdr mh = {
			.msg_iov = &iov, .msg_iovlen = 1,
			.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
		};
		struct uhp_send s = { .size = sizeof(s), .len = 6 };
		int fd;

		if (recvmsg(sv[1], &mh, 0) != 1)
			_exit(1);
		memcpy(&fd, CMSG_DATA(CMSG_FIRSTHDR(&mh)), sizeof(int));
		/* The name is gone: the passed fd is the only way in. */
		s.buf = (uintptr_t)"passed";
		_exit(ioctl(fd, UHP_IOC_SEND, &s) ? 2 : 0);
	}
	{
		char cbuf[CMSG_SPACE(sizeof(int))] = { 0 }, c = 'x';
		struct iovec iov = { &c, 1 };
		struct msghdr mh = {
			.msg_iov = &iov, .msg_iovlen = 1,
			.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
		};
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
		int fd = uhp_channel_fd(ch);

		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(int));
		ASSERT_EQ(sendmsg(sv[0], &mh, 0), 1);
	}
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	EXPECT_EQ(WEXITSTATUS(status), 0);
	ASSERT_EQ(uhp_recv_wait(ch, b, sizeof(b), NULL, 5000), 6);
	EXPECT_EQ(memcmp(b, "passed", 6), 0);
}

TEST_HARNESS_MAIN
