// SPDX-License-Identifier: MIT
/*
 * mmap of channel rings: the offsets the uapi defines, the double mapping,
 * NUMA placement of every sub-ring's pages, and the mappings the kernel
 * refuses (private, executable, wrong sizes or offsets, growth, splits).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/uhp.h>

#include "harness.h"

#define RING_SIZE	(1 << 16)

/* A channel with one sub-ring per node, already unlinked. */
static int channel(unsigned int *nr_rings, struct uhp_ring_info *ri)
{
	/* The consumer's fd: it may map every part writable (t_shared has the rest). */
	struct uhp_create c = {
		.size = sizeof(c), .mode = 0600, .ring_size = RING_SIZE,
		.flags = UHP_CREATE_CONSUMER,
	};
	struct uhp_unlink u = { .size = sizeof(u) };
	struct uhp_info info = {
		.size = sizeof(info), .rings_cap = 8,
		.rings_uptr = (uintptr_t)ri,
	};
	int dev = open(UHP_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	int fd;

	snprintf(c.name, sizeof(c.name), "mmap.%d", getpid());
	strcpy(u.name, c.name);
	fd = ioctl(dev, UHP_IOC_CREATE, &c);
	if (fd < 0 || ioctl(dev, UHP_IOC_UNLINK, &u) ||
	    ioctl(fd, UHP_IOC_INFO, &info)) {
		perror("channel setup");
		exit(1);
	}
	close(dev);
	*nr_rings = info.nr_rings;
	return fd;
}

static void *map(int fd, size_t len, int prot, int flags, uint64_t off)
{
	return mmap(NULL, len, prot, flags, fd, (off_t)off);
}

TEST(control_page_layout)
{
	struct uhp_ring_info ri[8];
	unsigned int n, k;
	int fd = channel(&n, ri);

	for (k = 0; k < n; k++) {
		char *prod = map(fd, 4096, PROT_READ | PROT_WRITE, MAP_SHARED,
				 ri[k].prod_off);
		char *cons = map(fd, 4096, PROT_READ | PROT_WRITE, MAP_SHARED,
				 ri[k].cons_off);
		struct uhp_ring_desc *d;

		ASSERT_TRUE(prod != MAP_FAILED && cons != MAP_FAILED);
		d = (struct uhp_ring_desc *)(prod + UHP_DESC_OFF);
		EXPECT_EQ(d->magic, UHP_RING_MAGIC);
		EXPECT_EQ(d->data_size, RING_SIZE);
		EXPECT_EQ(d->abi_version, UHP_ABI_VERSION);
		EXPECT_EQ(d->ring_index, k);
		EXPECT_EQ(d->node, ri[k].node);
		EXPECT_TRUE(d->salt != 0);
		/* Producer and consumer words on different pages. */
		EXPECT_NE(prod, cons);
		EXPECT_EQ(((struct uhp_prod_line *)(prod + UHP_PROD_LINE_OFF))->write_pos, 0);
		EXPECT_EQ(((struct uhp_cons_line *)(cons + UHP_CONS_LINE_OFF))->read_pos, 0);
		/* The wake line is the consumer's, a cache-line pair away. */
		EXPECT_GE(UHP_WAKE_LINE_OFF - UHP_CONS_LINE_OFF, 2 * UHP_CACHELINE);
	}
}

TEST(data_area_is_double_mapped)
{
	struct uhp_ring_info ri[8];
	unsigned int n;
	int fd = channel(&n, ri);
	volatile unsigned char *d = map(fd, 2 * RING_SIZE, PROT_READ | PROT_WRITE,
					MAP_SHARED, ri[0].data_off);
	unsigned char *single;

	ASSERT_TRUE(d != MAP_FAILED);
	d[10] = 0xab;
	EXPECT_EQ(d[RING_SIZE + 10], 0xab);
	d[2 * RING_SIZE - 1] = 0xcd;
	EXPECT_EQ(d[RING_SIZE - 1], 0xcd);
	/* A single mapping of the data area is allowed too. */
	single = map(fd, RING_SIZE, PROT_READ, MAP_SHARED, ri[0].data_off);
	ASSERT_TRUE(single != MAP_FAILED);
	EXPECT_EQ(single[10], 0xab);
}

/* get the node of each page with move_pages(2) (nodes == NULL: query only) */
static int page_node(void *addr)
{
	void *pages[1] = { addr };
	int status[1] = { -1 };

	if (syscall(SYS_move_pages, 0, 1, pages, NULL, status, 0))
		return -errno;
	return status[0];
}

TEST(pages_of_ring_k_are_on_node_k)
{
	struct uhp_ring_info ri[8];
	unsigned int n, k;
	int fd = channel(&n, ri);

	ASSERT_EQ(n, 2);
	for (k = 0; k < n; k++) {
		char *ctrl = map(fd, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, ri[k].prod_off);
		char *cons = map(fd, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, ri[k].cons_off);
		char *data = map(fd, 2 * RING_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
				 ri[k].data_off);
		size_t off;

		ASSERT_TRUE(ctrl != MAP_FAILED && cons != MAP_FAILED && data != MAP_FAILED);
		ASSERT_EQ(ri[k].node, (int)k);
		EXPECT_EQ(page_node(ctrl), (int)k);
		EXPECT_EQ(page_node(cons), (int)k);
		for (off = 0; off < 2 * RING_SIZE; off += 4096)
			ASSERT_EQ(page_node(data + off), (int)k);
	}
}

TEST(refused_mappings)
{
	struct uhp_ring_info ri[8];
	unsigned int n;
	int fd = channel(&n, ri);
	int rw = PROT_READ | PROT_WRITE;

	/* Private copies, executable mappings. */
	EXPECT_TRUE(map(fd, 4096, rw, MAP_PRIVATE, ri[0].prod_off) == MAP_FAILED);
	EXPECT_EQ(errno, EINVAL);
	EXPECT_TRUE(map(fd, 4096, rw | PROT_EXEC, MAP_SHARED, ri[0].prod_off) == MAP_FAILED);
	EXPECT_EQ(errno, EPERM);
	/* Wrong lengths. */
	EXPECT_TRUE(map(fd, 8192, rw, MAP_SHARED, ri[0].prod_off) == MAP_FAILED);
	EXPECT_EQ(errno, EINVAL);
	EXPECT_TRUE(map(fd, 8192, rw, MAP_SHARED, ri[0].cons_off) == MAP_FAILED);
	EXPECT_EQ(errno, EINVAL);
	EXPECT_TRUE(map(fd, RING_SIZE / 2, rw, MAP_SHARED, ri[0].data_off) == MAP_FAILED);
	EXPECT_EQ(errno, EINVAL);
	EXPECT_TRUE(map(fd, 3 * RING_SIZE, rw, MAP_SHARED, ri[0].data_off) == MAP_FAILED);
	EXPECT_EQ(errno, EINVAL);
	/* Offsets: past the last ring, unknown part, not at a part's start. */
	EXPECT_TRUE(map(fd, 4096, rw, MAP_SHARED, UHP_MMAP_OFF(n, UHP_PART_PROD)) == MAP_FAILED);
	EXPECT_EQ(errno, EINVAL);
	EXPECT_TRUE(map(fd, 4096, rw, MAP_SHARED, UHP_MMAP_OFF(0, 3)) == MAP_FAILED);
	EXPECT_EQ(errno, EINVAL);
	EXPECT_TRUE(map(fd, 4096, rw, MAP_SHARED, ri[0].data_off + 4096) == MAP_FAILED);
	EXPECT_EQ(errno, EINVAL);
	EXPECT_TRUE(map(fd, 4096, rw, MAP_SHARED, 1ULL << 62) == MAP_FAILED);
}

TEST(mappings_cannot_change_shape)
{
	struct uhp_ring_info ri[8];
	unsigned int n;
	int fd = channel(&n, ri);
	char *ctrl = map(fd, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, ri[0].prod_off);
	char *data = map(fd, 2 * RING_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
			 ri[0].data_off);

	ASSERT_TRUE(ctrl != MAP_FAILED && data != MAP_FAILED);
	/* No executable upgrade. */
	EXPECT_EQ(mprotect(ctrl, 4096, PROT_READ | PROT_EXEC), -1);
	EXPECT_EQ(errno, EACCES);
	/* No growth. */
	EXPECT_TRUE(mremap(ctrl, 4096, 8192, 0) == MAP_FAILED);
	EXPECT_TRUE(mremap(ctrl, 4096, 8192, MREMAP_MAYMOVE) == MAP_FAILED);
	/* No split: partial munmap, partial mprotect, shrinking mremap. */
	EXPECT_EQ(munmap(data, 4096), -1);
	EXPECT_EQ(errno, EINVAL);
	EXPECT_EQ(munmap(data + RING_SIZE, RING_SIZE), -1);
	EXPECT_EQ(mprotect(data, 4096, PROT_READ), -1);
	EXPECT_TRUE(mremap(data, 2 * RING_SIZE, RING_SIZE, 0) == MAP_FAILED);
	/* Whole mappings can go (and the fd keeps the channel). */
	EXPECT_EQ(munmap(data, 2 * RING_SIZE), 0);
	EXPECT_EQ(mprotect(ctrl, 4096, PROT_READ), 0);
	EXPECT_EQ(munmap(ctrl, 4096), 0);
}

TEST(fork_shares_live_mappings)
{
	struct uhp_ring_info ri[8];
	unsigned int n;
	int fd = channel(&n, ri);
	volatile uint64_t *data = map(fd, 2 * RING_SIZE, PROT_READ | PROT_WRITE,
				      MAP_SHARED, ri[0].data_off);
	int status;
	pid_t pid;

	ASSERT_TRUE(data != MAP_FAILED);
	data[0] = 1;
	pid = fork();
	ASSERT_TRUE(pid >= 0);
	if (pid == 0) {
		/* The child sees the parent's pages and writes into them. */
		_exit(data[0] == 1 ? (data[1] = 0x1234, 0) : 1);
	}
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	EXPECT_EQ(WEXITSTATUS(status), 0);
	EXPECT_EQ(data[1], 0x1234);
	/* The channel outlives the fd while mapped. */
	close(fd);
	data[2] = 7;
	EXPECT_EQ(data[RING_SIZE / 8 + 2], 7);
}

TEST_HARNESS_MAIN
