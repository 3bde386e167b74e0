// SPDX-License-Identifier: MIT
/*
 * Loading on first open. uhp.ko declares the aliases devname:uhp and
 * char-major-10-249 (kmod/main.c): at boot kmod creates /dev/uhp from
 * modules.devname, and the first open of that node makes the kernel ask
 * modprobe for char-major-10-249, which finds uhp in the modules.alias that
 * depmod wrote. Here the module is unloaded, the node made by hand (as
 * static-nodes would) and busybox's depmod and modprobe stand in for kmod's.
 * The test leaves the module loaded, as it found it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <linux/uhp.h>

#include "harness.h"
#include "ioctl_calls.h"

/* Where scripts/guest-init keeps the modules it loaded. */
#define UHP_KO		"/lib/modules/uhp/uhp.ko"
#define UHP_MINOR	249

static int loaded(void)
{
	struct stat st;

	return stat("/sys/module/uhp", &st) == 0;
}

/* Does FILE have a line containing WORD? */
static int file_has(const char *file, const char *word)
{
	char line[512];
	FILE *f = fopen(file, "r");
	int found = 0;

	if (!f)
		return 0;
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, word) != NULL;
	fclose(f);
	return found;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f || fputs(text, f) < 0 || fclose(f))
		FAIL("writing %s: %s", path, strerror(errno));
}

TEST(first_open_of_the_node_loads_the_module)
{
	struct uhp_create c = { .size = sizeof(c), .mode = 0600, .ring_size = 4096 };
	struct uhp_info info = { .size = sizeof(info) };
	char dir[300], cmd[700], alias[400];
	struct utsname u;
	struct stat node;
	int dev, fd;

	ASSERT_EQ(uname(&u), 0);
	ASSERT_TRUE(loaded());
	/* The node we make stays (devtmpfs does not replace it): same mode. */
	ASSERT_EQ(stat(UHP_DEVICE_PATH, &node), 0);
	snprintf(dir, sizeof(dir), "/lib/modules/%s/extra", u.release);
	snprintf(cmd, sizeof(cmd), "mkdir -p %s && cp " UHP_KO " %s/ && depmod", dir, dir);
	ASSERT_EQ(system(cmd), 0);
	snprintf(alias, sizeof(alias), "/lib/modules/%s/modules.alias", u.release);
	EXPECT_TRUE(file_has(alias, "char-major-10-249") || file_has(alias, "char_major_10_249"));
	write_file("/proc/sys/kernel/modprobe", "/sbin/modprobe\n");

	ASSERT_EQ(system("rmmod uhp"), 0);
	ASSERT_FALSE(loaded());
	unlink(UHP_DEVICE_PATH);	/* devtmpfs removed it; a stale one would not do */
	ASSERT_EQ(mknod(UHP_DEVICE_PATH, S_IFCHR | 0600, makedev(10, UHP_MINOR)), 0);
	ASSERT_EQ(chmod(UHP_DEVICE_PATH, node.st_mode & 07777), 0);	/* not umask's */

	dev = open(UHP_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	EXPECT_GE(dev, 0);
	EXPECT_TRUE(loaded());
	if (dev >= 0) {
		/* The node reached uhp, not just some driver: a channel works. */
		strcpy(c.name, "autoload");
		fd = ioctl(dev, UHP_IOC_CREATE, &c);
		EXPECT_GE(fd, 0);
		if (fd >= 0) {
			EXPECT_EQ(ioctl(fd, UHP_IOC_INFO, &info), 0);
			EXPECT_EQ(info.abi_version, UHP_ABI_VERSION);
			close(fd);
			EXPECT_EQ(unlink_name(dev, "autoload"), 0);
		}
		close(dev);
	}
	if (!loaded() && system("insmod " UHP_KO))
		FAIL("could not reload " UHP_KO);
}

TEST_HARNESS_MAIN
