// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Description: smoke test of the rig and of /dev/uhp: the guest has two NUMA
 * nodes and two CPUs, /dev/uhp is a character device, an unknown ioctl gets
 * ENOTTY, and (once the module implements it) a channel can be created,
 * described with INFO and unlinked.
 *
 * Raw ioctls only, so it does not depend on libuhp.
 */
#include <dirent.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include <linux/uhp.h>

#include "harness.h"

/* Nodes listed in a sysfs node mask such as "0-1" or "0,2-3". */
static int count_nodes(const char *path)
{
	char buf[256], *p;
	int n = 0;
	FILE *f = fopen(path, "r");

	if (!f)
		return -1;
	if (!fgets(buf, sizeof(buf), f)) {
		fclose(f);
		return -1;
	}
	fclose(f);
	for (p = strtok(buf, ",\n"); p; p = strtok(NULL, ",\n")) {
		int lo, hi;

		if (sscanf(p, "%d-%d", &lo, &hi) == 2)
			n += hi - lo + 1;
		else if (sscanf(p, "%d", &lo) == 1)
			n++;
	}
	return n;
}

static int open_uhp(void)
{
	int fd = open(UHP_DEVICE_PATH, O_RDWR | O_CLOEXEC);

	if (fd < 0 && errno == ENOENT)
		FAIL("%s does not exist: is the module loaded?", UHP_DEVICE_PATH);
	ASSERT_GE(fd, 0);
	return fd;
}

/*
 * What scripts/uhp-vm promises: 2 nodes with normal memory and one CPU
 * each, and a third one without CPUs whose memory (if the kernel could
 * online it at all) is all movable.
 */
TEST(vm_topology)
{
	int mem;

	if (!getenv("UHP_VM"))
		SKIP("not in the uhp-vm guest");
	EXPECT_EQ(count_nodes("/sys/devices/system/node/has_cpu"), 2);
	EXPECT_EQ(count_nodes("/sys/devices/system/node/has_normal_memory"), 2);
	mem = count_nodes("/sys/devices/system/node/has_memory");
	EXPECT_TRUE(mem == 2 || mem == 3);
	EXPECT_EQ(sysconf(_SC_NPROCESSORS_ONLN), 2);
	/* Non-root tests need a world-writable, sticky /tmp. */
	struct stat st;

	ASSERT_EQ(stat("/tmp", &st), 0);
	EXPECT_EQ(st.st_mode & 01777, 01777);
}

TEST(dev_is_char_device)
{
	struct stat st;

	ASSERT_EQ(stat(UHP_DEVICE_PATH, &st), 0);
	ASSERT_TRUE(S_ISCHR(st.st_mode));
}

TEST(unknown_ioctl_enotty)
{
	int fd = open_uhp();

	/* An unused number in uhp's magic, and a foreign magic. */
	EXPECT_ERRNO(ioctl(fd, _IO(UHP_IOC_MAGIC, 0x7f), 0), ENOTTY);
	EXPECT_ERRNO(ioctl(fd, _IO('x', 0x00), 0), ENOTTY);
	close(fd);
}

TEST(create_info_unlink)
{
	struct uhp_ring_info rings[4];
	struct uhp_create c = {
		.size = sizeof(c),
		.mode = 0600,
		.ring_size = 64 * 1024,
	};
	struct uhp_info info = {
		.size = sizeof(info),
		.rings_cap = 4,
		.rings_uptr = (uintptr_t)rings,
	};
	struct uhp_unlink u = { .size = sizeof(u) };
	int fd = open_uhp(), ch, nodes;
	unsigned int i;

	snprintf(c.name, sizeof(c.name), "smoke.%d", (int)getpid());
	ch = ioctl(fd, UHP_IOC_CREATE, &c);
	if (ch < 0 && errno == ENOTTY)
		SKIP("UHP_IOC_CREATE not implemented yet");
	ASSERT_GE(ch, 0);

	memset(rings, 0xff, sizeof(rings));
	ASSERT_EQ(ioctl(ch, UHP_IOC_INFO, &info), 0);
	EXPECT_EQ(info.abi_version, UHP_ABI_VERSION);
	EXPECT_EQ(info.data_size, c.ring_size);
	EXPECT_EQ(info.page_size, UHP_PAGE_SIZE);
	EXPECT_EQ(info.uid, getuid());
	EXPECT_STREQ(info.name, c.name);
	/* One sub-ring per node with memory GFP_KERNEL can have. */
	nodes = count_nodes("/sys/devices/system/node/has_normal_memory");
	if (nodes > 0)
		EXPECT_EQ(info.nr_rings, nodes);
	ASSERT_GE(info.nr_rings, 1);
	for (i = 0; i < info.nr_rings && i < 4; i++) {
		EXPECT_GE(rings[i].node, 0);
		EXPECT_EQ(rings[i].prod_off, UHP_MMAP_OFF(i, UHP_PART_PROD));
		EXPECT_EQ(rings[i].cons_off, UHP_MMAP_OFF(i, UHP_PART_CONS));
		EXPECT_EQ(rings[i].data_off, UHP_MMAP_OFF(i, UHP_PART_DATA));
	}

	strcpy(u.name, c.name);
	EXPECT_EQ(ioctl(fd, UHP_IOC_UNLINK, &u), 0);
	close(ch);
	close(fd);
}

TEST_HARNESS_MAIN
