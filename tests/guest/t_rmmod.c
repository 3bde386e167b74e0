// SPDX-License-Identifier: MIT
/*
 * Module lifetime: rmmod is refused while a channel fd or a mapping of a
 * channel exists, and succeeds once they are gone, freeing channels that only
 * a name kept alive. Each test leaves the module loaded again.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/uhp.h>

#include "harness.h"

/* Where scripts/guest-init keeps the modules it loaded. */
#define UHP_KO		"/lib/modules/uhp/uhp.ko"

static int loaded(void)
{
	struct stat st;

	return stat("/sys/module/uhp", &st) == 0;
}

static int rmmod(void)
{
	return system("rmmod uhp 2>/dev/null") == 0 ? 0 : -1;
}

static void reload(void)
{
	if (!loaded() && system("insmod " UHP_KO))
		FAIL("could not reload " UHP_KO);
}

static int create(const char *name, int *devp)
{
	struct uhp_create c = { .size = sizeof(c), .mode = 0600, .ring_size = 4096 };
	int dev = open(UHP_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	int fd;

	if (dev < 0)
		FAIL("open: %s", strerror(errno));
	strcpy(c.name, name);
	fd = ioctl(dev, UHP_IOC_CREATE, &c);
	if (fd < 0)
		FAIL("create: %s", strerror(errno));
	*devp = dev;
	return fd;
}

TEST(refused_while_dev_open)
{
	int dev = open(UHP_DEVICE_PATH, O_RDWR);

	ASSERT_GE(dev, 0);
	EXPECT_EQ(rmmod(), -1);
	EXPECT_TRUE(loaded());
	close(dev);
	EXPECT_EQ(rmmod(), 0);
	reload();
}

TEST(refused_while_channel_fd_open)
{
	struct uhp_unlink u = { .size = sizeof(u), .name = "rmmod.fd" };
	int dev, fd = create("rmmod.fd", &dev);

	ASSERT_EQ(ioctl(dev, UHP_IOC_UNLINK, &u), 0);
	close(dev);
	EXPECT_EQ(rmmod(), -1);
	EXPECT_TRUE(loaded());
	close(fd);
	EXPECT_EQ(rmmod(), 0);
	EXPECT_FALSE(loaded());
	reload();
}

TEST(refused_while_only_a_mapping_is_left)
{
	int dev, fd = create("rmmod.map", &dev);
	volatile uint64_t *data = mmap(NULL, 8192, PROT_READ | PROT_WRITE,
				       MAP_SHARED, fd, UHP_MMAP_OFF(0, UHP_PART_DATA));
	struct uhp_unlink u = { .size = sizeof(u), .name = "rmmod.map" };

	ASSERT_TRUE(data != MAP_FAILED);
	ASSERT_EQ(ioctl(dev, UHP_IOC_UNLINK, &u), 0);
	close(fd);
	close(dev);
	/* No fd left, but the mapping holds the channel and the module. */
	EXPECT_EQ(rmmod(), -1);
	data[0] = 42;
	EXPECT_EQ(data[4096 / 8], 42);	/* the double map still works */
	ASSERT_EQ(munmap((void *)data, 8192), 0);
	EXPECT_EQ(rmmod(), 0);
	reload();
}

TEST(named_channel_alone_does_not_block_unload)
{
	struct uhp_attach a = { .size = sizeof(a), .name = "rmmod.named" };
	int dev, fd = create("rmmod.named", &dev);

	close(fd);
	close(dev);
	/* Only the name holds it: unloading frees it. */
	EXPECT_EQ(rmmod(), 0);
	reload();
	dev = open(UHP_DEVICE_PATH, O_RDWR);
	ASSERT_GE(dev, 0);
	EXPECT_ERRNO(ioctl(dev, UHP_IOC_ATTACH, &a), ENOENT);
}

static int info_copy_path(void)
{
	struct uhp_info info = { .size = sizeof(info) };
	int dev, fd = create("rmmod.copy", &dev);
	struct uhp_unlink u = { .size = sizeof(u), .name = "rmmod.copy" };

	if (ioctl(fd, UHP_IOC_INFO, &info) || ioctl(dev, UHP_IOC_UNLINK, &u))
		FAIL("info: %s", strerror(errno));
	close(fd);
	close(dev);
	return (int)info.copy_path;
}

static int cpu_has(const char *flag)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "grep -qw %s /proc/cpuinfo", flag);
	return system(cmd) == 0;
}

TEST(copy_parameter_picks_or_refuses_a_path)
{
	int has512 = cpu_has("avx512f") && cpu_has("avx512bw");
	int has2 = cpu_has("avx2"), erms = cpu_has("erms");
	int best = has512 ? UHP_COPY_AVX512 : has2 ? UHP_COPY_AVX2 :
		   erms ? UHP_COPY_ERMS : UHP_COPY_GENERIC;

	EXPECT_EQ(info_copy_path(), best);	/* auto */
	ASSERT_EQ(rmmod(), 0);
	EXPECT_NE(system("insmod " UHP_KO " copy=bogus 2>/dev/null"), 0);
	EXPECT_FALSE(loaded());
	if (!has512) {
		/* A path the CPU lacks is refused, not faked. */
		EXPECT_NE(system("insmod " UHP_KO " copy=avx512 2>/dev/null"), 0);
		EXPECT_FALSE(loaded());
	}
	ASSERT_EQ(system("insmod " UHP_KO " copy=generic"), 0);
	EXPECT_EQ(info_copy_path(), UHP_COPY_GENERIC);
	ASSERT_EQ(rmmod(), 0);
	reload();
	EXPECT_EQ(info_copy_path(), best);
}

TEST_HARNESS_MAIN
