// SPDX-License-Identifier: MIT
/*
 * Arenas (uhp_arena_*, no module involved) on a real two-node machine: the
 * pages of ring k are on node k, and two processes exchange records through
 * one. The host (one node) cannot show placement; the guest can.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "uhp.h"

#include "harness.h"

#define RING	(1 << 16)

static int page_node(void *addr)
{
	void *pages[1] = { addr };
	int status[1] = { -1 };

	if (syscall(SYS_move_pages, 0, 1, pages, NULL, status, 0))
		return -errno;
	return status[0];
}

TEST(ring_k_of_an_arena_is_on_node_k)
{
	struct uhp_create_opts o = UHP_CREATE_OPTS_INIT;
	struct uhp_ring_info ri[4];
	struct uhp_info info;
	struct uhp_channel *ch;
	size_t stride = 2 * 4096 + RING, len;
	char *base;
	int fd, k;

	o.ring_size = RING;
	ASSERT_EQ(uhp_arena_create("arena.numa", &o, &ch), 0);
	ASSERT_EQ(uhp_info(ch, &info, ri, 4), 0);
	ASSERT_EQ(info.nr_rings, 2);
	/* Look at the object from outside the library. */
	fd = shm_open("/uhp.arena.numa", O_RDONLY, 0);
	ASSERT_GE(fd, 0);
	len = 4096 + 2 * stride;
	base = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
	ASSERT_TRUE(base != MAP_FAILED);
	for (k = 0; k < 2; k++) {
		char *ring = base + 4096 + (size_t)k * stride;

		EXPECT_EQ(ri[k].node, k);
		for (size_t off = 0; off < stride; off += 4096) {
			/* Fault the (existing) page into this mapping first. */
			(void)*(volatile char *)(ring + off);
			ASSERT_EQ(page_node(ring + off), k);
		}
	}
	uhp_close(ch);
	EXPECT_EQ(uhp_arena_unlink("arena.numa"), 0);
}

TEST(two_processes_through_an_arena)
{
	struct uhp_create_opts o = UHP_CREATE_OPTS_INIT;
	struct uhp_channel *ch;
	uint64_t seq;
	int status;
	pid_t pid;

	o.ring_size = 4096;
	o.consumer = true;
	ASSERT_EQ(uhp_arena_create("arena.msg", &o, &ch), 0);
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		struct uhp_channel *p;

		if (uhp_arena_attach("arena.msg", 0, &p))
			_exit(1);
		for (seq = 0; seq < 20000; seq++) {
			struct uhp_meta m = { .seq = seq };

			while (uhp_send(p, &seq, sizeof(seq), &m) == -EAGAIN)
				;
		}
		_exit(0);
	}
	for (seq = 0; seq < 20000; seq++) {
		struct uhp_meta m;
		uint64_t v;

		ASSERT_EQ(uhp_recv_wait(ch, &v, sizeof(v), &m, 10000), (ssize_t)sizeof(v));
		ASSERT_EQ(v, seq);
		ASSERT_EQ(m.seq, seq);
	}
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	EXPECT_EQ(WEXITSTATUS(status), 0);
	uhp_close(ch);
	EXPECT_EQ(uhp_arena_unlink("arena.msg"), 0);
}

TEST_HARNESS_MAIN
