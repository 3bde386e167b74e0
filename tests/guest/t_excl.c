// SPDX-License-Identifier: MIT
/*
 * Exclusive rings (uhp_create.excl_rings, UHP_IOC_CLAIM, uhp_claim_ring()):
 * a ring one fd claims is written by that fd alone, which is what lets its
 * producer store write_pos instead of CASing it. The kernel's side through
 * raw ioctl(2): layout in INFO, one claimant per ring and one claim per fd,
 * claims that end with the fd, SEND refused to anyone but the claimant.
 * Then libuhp: claimed producers in other processes deliver everything in
 * order, producers without a claim never land on an exclusive ring, and a
 * fork()ed child does not inherit the claim.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <pthread.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/uhp.h>
#include <uhp.h>

#include "harness.h"
#include "ioctl_calls.h"

#define NR_EXCL		3

/* A named channel with excl exclusive rings; the caller unlinks it. */
static int create_excl(int dev, const char *name, unsigned excl, unsigned flags)
{
	struct uhp_create c = {
		.size = sizeof(c), .mode = 0600, .ring_size = 1 << 16,
		.flags = flags, .excl_rings = excl,
	};

	strncpy(c.name, name, sizeof(c.name) - 1);
	return (int)xioctl(dev, UHP_IOC_CREATE, &c);
}

static int attach(int dev, const char *name, unsigned flags)
{
	struct uhp_attach a = { .size = sizeof(a), .flags = flags };

	strncpy(a.name, name, sizeof(a.name) - 1);
	return (int)xioctl(dev, UHP_IOC_ATTACH, &a);
}

/* INFO with the rings; returns nr_rings. */
static unsigned info_rings(int fd, struct uhp_ring_info *ri, unsigned cap,
			   struct uhp_info *out)
{
	struct uhp_info info = {
		.size = sizeof(info), .rings_cap = cap, .rings_uptr = (uintptr_t)ri,
	};

	if (xioctl(fd, UHP_IOC_INFO, &info))
		return 0;
	if (out)
		*out = info;
	return info.nr_rings;
}

static long claim(int fd, unsigned *ring)
{
	struct uhp_claim c = { .size = sizeof(c) };
	long ret = xioctl(fd, UHP_IOC_CLAIM, &c);

	if (!ret && ring)
		*ring = c.ring;
	return ret;
}

TEST(excl_rings_sit_after_the_user_rings)
{
	struct uhp_ring_info ri[64];
	struct uhp_info info;
	int dev = dev_open_or_exit(), fd;
	unsigned n, nu = 0;

	fd = create_excl(dev, "excl.layout", NR_EXCL, UHP_CREATE_KERNEL_RINGS);
	ASSERT_GE(fd, 0);
	n = info_rings(fd, ri, 64, &info);
	ASSERT_GT(n, NR_EXCL);
	EXPECT_TRUE(info.features & UHP_FEAT_EXCL_RINGS);
	while (nu < n && !ri[nu].flags)
		nu++;
	/* user rings, then NR_EXCL exclusive ones, then as many kernel rings */
	EXPECT_EQ(n, 2 * nu + NR_EXCL);
	for (unsigned k = 0; k < n; k++) {
		unsigned want = k < nu ? 0 : k < nu + NR_EXCL ? UHP_RING_F_EXCL :
			       UHP_RING_F_KERNEL;

		EXPECT_EQ(ri[k].flags, want);
		if (want == UHP_RING_F_EXCL)	/* the user rings' nodes in turn */
			EXPECT_EQ(ri[k].node, ri[(k - nu) % nu].node);
	}
	EXPECT_EQ(unlink_name(dev, "excl.layout"), 0);
	close(fd);
	EXPECT_EQ(create_excl(dev, "excl.toomany", UHP_EXCL_RINGS_MAX + 1, 0), -EINVAL);
	close(dev);
}

TEST(one_claimant_per_ring_one_claim_per_fd)
{
	int dev = dev_open_or_exit(), fds[NR_EXCL + 1];
	struct uhp_ring_info ri[64];
	unsigned ring[NR_EXCL + 1], n, again;

	fds[0] = create_excl(dev, "excl.claim", NR_EXCL, 0);
	ASSERT_GE(fds[0], 0);
	for (int i = 1; i <= NR_EXCL; i++) {
		fds[i] = attach(dev, "excl.claim", 0);
		ASSERT_GE(fds[i], 0);
	}
	for (int i = 0; i < NR_EXCL; i++) {
		ASSERT_EQ(claim(fds[i], &ring[i]), 0);
		for (int j = 0; j < i; j++)
			EXPECT_NE(ring[i], ring[j]);
	}
	EXPECT_EQ(claim(fds[0], NULL), -EBUSY);		/* one per fd */
	EXPECT_EQ(claim(fds[NR_EXCL], NULL), -EBUSY);	/* all taken */
	n = info_rings(fds[NR_EXCL], ri, 64, NULL);
	for (int i = 0; i < NR_EXCL; i++) {
		ASSERT_LT(ring[i], n);
		EXPECT_EQ(ri[ring[i]].flags, UHP_RING_F_EXCL | UHP_RING_F_CLAIMED);
	}
	/* The claim ends with its fd: the ring is free for the next one. */
	close(fds[1]);
	ASSERT_EQ(claim(fds[NR_EXCL], &again), 0);
	EXPECT_EQ(again, ring[1]);
	info_rings(fds[NR_EXCL], ri, 64, NULL);
	EXPECT_EQ(ri[again].flags, UHP_RING_F_EXCL | UHP_RING_F_CLAIMED);
	EXPECT_EQ(unlink_name(dev, "excl.claim"), 0);
	for (int i = 0; i <= NR_EXCL; i++)
		if (i != 1)
			close(fds[i]);
	close(dev);
}

TEST(claim_checks_its_arguments_and_the_fd)
{
	int dev = dev_open_or_exit(), fd, ro, none;
	struct uhp_claim c = { .size = sizeof(c) };

	fd = create_excl(dev, "excl.args", 1, 0);
	ASSERT_GE(fd, 0);
	c.flags = 1;
	EXPECT_EQ(xioctl(fd, UHP_IOC_CLAIM, &c), -EINVAL);
	c.flags = 0;
	c.__reserved[1] = 1;
	EXPECT_EQ(xioctl(fd, UHP_IOC_CLAIM, &c), -EINVAL);
	c.__reserved[1] = 0;
	c.ring = 1;		/* out only */
	EXPECT_EQ(xioctl(fd, UHP_IOC_CLAIM, &c), -EINVAL);
	ro = attach(dev, "excl.args", UHP_ATTACH_RDONLY);
	ASSERT_GE(ro, 0);
	EXPECT_EQ(claim(ro, NULL), -EBADF);	/* an observer sends nothing */
	none = create_excl(dev, "excl.none", 0, 0);
	ASSERT_GE(none, 0);
	EXPECT_EQ(claim(none, NULL), -EBUSY);	/* no exclusive ring at all */
	EXPECT_EQ(unlink_name(dev, "excl.args"), 0);
	EXPECT_EQ(unlink_name(dev, "excl.none"), 0);
	close(none);
	close(ro);
	close(fd);
	close(dev);
}

static long send_on(int fd, unsigned ring)
{
	char payload[16] = "exclusive";
	struct uhp_send s = {
		.size = sizeof(s), .ring = ring, .len = sizeof(payload),
		.buf = (uintptr_t)payload,
	};

	return xioctl(fd, UHP_IOC_SEND, &s);
}

TEST(send_ioctl_to_an_exclusive_ring_only_by_its_claimant)
{
	int dev = dev_open_or_exit(), a, b;
	struct uhp_ring_info ri[64];
	unsigned ring, n, free_ring = 0;

	a = create_excl(dev, "excl.send", 2, 0);
	ASSERT_GE(a, 0);
	b = attach(dev, "excl.send", 0);
	ASSERT_GE(b, 0);
	ASSERT_EQ(claim(a, &ring), 0);
	EXPECT_EQ(send_on(b, ring), -EBUSY);	/* a's ring */
	EXPECT_EQ(send_on(a, ring), 0);		/* a itself */
	n = info_rings(a, ri, 64, NULL);
	for (unsigned k = 0; k < n; k++)
		if ((ri[k].flags & UHP_RING_F_EXCL) && k != ring)
			free_ring = k;
	ASSERT_NE(free_ring, 0);
	EXPECT_EQ(send_on(b, free_ring), -EBUSY);	/* nobody's: still not b's */
	EXPECT_EQ(send_on(b, 0), 0);			/* a shared ring */
	EXPECT_EQ(unlink_name(dev, "excl.send"), 0);
	close(b);
	close(a);
	close(dev);
}

/* ---- through libuhp ---- */

#define PER_PRODUCER	20000

/* A producer process: attach, claim (or not), send PER_PRODUCER records. */
static void lib_producer(const char *name, uint32_t id, bool excl)
{
	struct uhp_channel *ch;
	int dev = uhp_open(), ring;
	char buf[64];

	if (dev < 0 || uhp_attach(dev, name, 0, &ch))
		_exit(10);
	ring = excl ? uhp_claim_ring(ch) : (int)uhp_producer_ring(ch);
	if (ring < 0 || (int)uhp_producer_ring(ch) != ring)
		_exit(11);
	for (uint64_t s = 0; s < PER_PRODUCER; s++) {
		struct uhp_meta m = { .seq = s, .src = id, .dst = (uint32_t)ring };
		int ret;

		memset(buf, (int)(s + id), sizeof(buf));
		while ((ret = uhp_send(ch, buf, sizeof(buf), &m)) == -EAGAIN)
			sched_yield();
		if (ret)
			_exit(12);
	}
	uhp_close(ch);
	_exit(0);
}

/*
 * Receive n producers' records: each producer's in order, intact, from the
 * ring it said it sends to; that ring exclusive iff excl[id].
 */
static void lib_consume(struct uhp_channel *ch, unsigned n, const bool *excl)
{
	struct uhp_ring_info ri[64];
	struct uhp_info info;
	uint64_t next[8] = { 0 }, got = 0, want = (uint64_t)n * PER_PRODUCER;
	unsigned bad = 0, nr;
	char buf[64];

	ASSERT_EQ(uhp_info(ch, &info, ri, 64), 0);
	nr = info.nr_rings;
	while (got < want) {
		struct uhp_meta m;
		ssize_t len = uhp_recv(ch, buf, sizeof(buf), &m);

		if (len == -EAGAIN) {
			/* 1: ready; 0: 5 s without a record, a lost one */
			ASSERT_EQ(uhp_wait(ch, 5000), 1);
			continue;
		}
		ASSERT_EQ(len, (ssize_t)sizeof(buf));
		got++;
		if (m.src >= n || m.seq != next[m.src]++ || m.ring != m.dst ||
		    m.ring >= nr ||
		    !!(ri[m.ring].flags & UHP_RING_F_EXCL) != excl[m.src] ||
		    (unsigned char)buf[63] != (unsigned char)(m.seq + m.src))
			bad++;
	}
	EXPECT_EQ(bad, 0);
	EXPECT_EQ(uhp_recv(ch, buf, sizeof(buf), NULL), -EAGAIN);
}

TEST(claimed_producers_deliver_in_order)
{
	struct uhp_create_opts o = UHP_CREATE_OPTS_INIT;
	const bool excl[3] = { true, true, false };
	struct uhp_channel *ch;
	int dev = uhp_open(), st;
	pid_t pid[3];

	ASSERT_GE(dev, 0);
	o.consumer = true;
	o.excl_rings = 2;
	o.ring_size = 1 << 14;	/* small: producers meet a full ring */
	ASSERT_EQ(uhp_create(dev, "excl.lib", &o, &ch), 0);
	for (int i = 0; i < 3; i++) {
		pid[i] = fork();
		ASSERT_GE(pid[i], 0);
		if (pid[i] == 0)
			lib_producer("excl.lib", (uint32_t)i, excl[i]);
	}
	lib_consume(ch, 3, excl);
	for (int i = 0; i < 3; i++) {
		ASSERT_EQ(waitpid(pid[i], &st, 0), pid[i]);
		EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	EXPECT_EQ(uhp_unlink(dev, "excl.lib"), 0);
	uhp_close(ch);
	close(dev);
}

TEST(library_refuses_unclaimed_exclusive_rings)
{
	struct uhp_create_opts o = UHP_CREATE_OPTS_INIT;
	struct uhp_channel *ch, *other;
	int dev = uhp_open(), k;
	unsigned nr;

	ASSERT_GE(dev, 0);
	o.excl_rings = 2;
	ASSERT_EQ(uhp_create(dev, "excl.refuse", &o, &ch), 0);
	ASSERT_EQ(uhp_attach(dev, "excl.refuse", 0, &other), 0);
	nr = uhp_nr_rings(ch);
	/* exclusive rings are the last two here (no kernel rings) */
	EXPECT_LT(uhp_producer_ring(ch), nr - 2);
	EXPECT_EQ(uhp_set_producer_ring(ch, nr - 1), -EINVAL);
	k = uhp_claim_ring(ch);
	ASSERT_GE(k, (int)nr - 2);
	EXPECT_EQ(uhp_claim_ring(ch), -EBUSY);		/* one per handle */
	EXPECT_EQ(uhp_set_producer_ring(ch, 0), 0);	/* may leave it */
	EXPECT_EQ(uhp_set_producer_ring(ch, (unsigned)k), 0);	/* and come back */
	/* the other handle may not move onto ch's ring, but may claim the other */
	EXPECT_EQ(uhp_set_producer_ring(other, (unsigned)k), -EINVAL);
	EXPECT_EQ(uhp_claim_ring(other), (int)(2 * nr - 3) - k);
	EXPECT_EQ(uhp_unlink(dev, "excl.refuse"), 0);
	uhp_close(other);
	uhp_close(ch);
	close(dev);
}

struct parent_send {
	struct uhp_channel *ch;
	int ring;
	int ret;
};

/* The claimant, in the parent, sends alongside the child. */
static void *parent_sender(void *arg)
{
	struct parent_send *ps = arg;
	char buf[64];

	for (uint64_t s = 0; s < PER_PRODUCER; s++) {
		struct uhp_meta m = { .seq = s, .src = 0, .dst = (uint32_t)ps->ring };

		memset(buf, (int)s, sizeof(buf));
		while ((ps->ret = uhp_send(ps->ch, buf, sizeof(buf), &m)) == -EAGAIN)
			sched_yield();
		if (ps->ret)
			break;
	}
	return NULL;
}

TEST(fork_child_does_not_inherit_the_claim)
{
	struct parent_send ps;
	pthread_t th;
	struct uhp_create_opts o = UHP_CREATE_OPTS_INIT;
	const bool excl[2] = { true, false };
	struct uhp_channel *cons, *prod;
	int dev = uhp_open(), k, st;
	pid_t pid;

	ASSERT_GE(dev, 0);
	o.consumer = true;
	o.excl_rings = 1;
	ASSERT_EQ(uhp_create(dev, "excl.fork", &o, &cons), 0);
	ASSERT_EQ(uhp_attach(dev, "excl.fork", 0, &prod), 0);
	k = uhp_claim_ring(prod);
	ASSERT_GE(k, 0);
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		/* the child's copy sends to a shared ring, with a CAS */
		char buf[64];

		if ((int)uhp_producer_ring(prod) == k)
			_exit(20);
		for (uint64_t s = 0; s < PER_PRODUCER; s++) {
			struct uhp_meta m = { .seq = s, .src = 1,
					      .dst = uhp_producer_ring(prod) };

			memset(buf, (int)(s + 1), sizeof(buf));
			while (uhp_send(prod, buf, sizeof(buf), &m) == -EAGAIN)
				sched_yield();
		}
		_exit(0);
	}
	/* the parent keeps its claim and sends alongside the child */
	EXPECT_EQ((int)uhp_producer_ring(prod), k);
	ps = (struct parent_send){ .ch = prod, .ring = k };
	ASSERT_EQ(pthread_create(&th, NULL, parent_sender, &ps), 0);
	lib_consume(cons, 2, excl);
	pthread_join(th, NULL);
	EXPECT_EQ(ps.ret, 0);
	ASSERT_EQ(waitpid(pid, &st, 0), pid);
	EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	EXPECT_EQ(uhp_unlink(dev, "excl.fork"), 0);
	uhp_close(prod);
	uhp_close(cons);
	close(dev);
}

TEST_HARNESS_MAIN
