// SPDX-License-Identifier: MIT
/*
 * Who may attach to and unlink a channel (its mode bits, like POSIX mqueues),
 * and the per-user limits (module parameters) that keep a user from
 * exhausting kernel memory. Runs as root and drops to other uids in forked
 * children.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/uhp.h>

#include "harness.h"
#include "ioctl_calls.h"

#define PARAMS "/sys/module/uhp/parameters/"

static int dev_open(void)
{
	return open(UHP_DEVICE_PATH, O_RDWR | O_CLOEXEC);
}

static long create(int dev, const char *name, unsigned int mode, uint64_t size)
{
	struct uhp_create c = { .size = sizeof(c), .mode = mode, .ring_size = size };

	snprintf(c.name, sizeof(c.name), "%s", name);
	return xioctl(dev, UHP_IOC_CREATE, &c);
}

static long attach(int dev, const char *name)
{
	struct uhp_attach a = { .size = sizeof(a) };

	snprintf(a.name, sizeof(a.name), "%s", name);
	return xioctl(dev, UHP_IOC_ATTACH, &a);
}

/* Run fn as uid/gid in a child; returns what fn returned (0..255). */
static int as_user(uid_t uid, gid_t gid, int (*fn)(const char *), const char *arg)
{
	int status;
	pid_t pid = fork();

	if (pid == 0) {
		gid_t groups[1] = { gid };

		if (setgroups(1, groups) || setresgid(gid, gid, gid) ||
		    setresuid(uid, uid, uid))
			_exit(200);
		_exit(fn(arg));
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return 201;
	return WEXITSTATUS(status);
}

/* Child bodies return -errno of the operation as a positive exit code. */
static int try_attach(const char *name)
{
	long ret = attach(dev_open(), name);

	return ret < 0 ? (int)-ret : 0;
}

static int try_unlink(const char *name)
{
	long ret = unlink_name(dev_open(), name);

	return ret < 0 ? (int)-ret : 0;
}

TEST(device_is_usable_by_any_user)
{
	EXPECT_EQ(as_user(1000, 1000, try_attach, "perm.none"), ENOENT);
}

TEST(mode_bits_decide_attach)
{
	int dev = dev_open();

	ASSERT_TRUE(create(dev, "perm.0600", 0600, 4096) >= 0);
	ASSERT_TRUE(create(dev, "perm.0660", 0660, 4096) >= 0);
	ASSERT_TRUE(create(dev, "perm.0666", 0666, 4096) >= 0);
	ASSERT_TRUE(create(dev, "perm.0644", 0644, 4096) >= 0);

	/* Other uid, other group. */
	EXPECT_EQ(as_user(1000, 1000, try_attach, "perm.0600"), EACCES);
	EXPECT_EQ(as_user(1000, 1000, try_attach, "perm.0660"), EACCES);
	EXPECT_EQ(as_user(1000, 1000, try_attach, "perm.0666"), 0);
	/* Read alone is not enough: attaching maps the rings read-write. */
	EXPECT_EQ(as_user(1000, 1000, try_attach, "perm.0644"), EACCES);
	/* Other uid, owner's group (0). */
	EXPECT_EQ(as_user(1000, 0, try_attach, "perm.0600"), EACCES);
	EXPECT_EQ(as_user(1000, 0, try_attach, "perm.0660"), 0);
	/* Root overrides (CAP_DAC_OVERRIDE), like for files. */
	EXPECT_EQ(try_attach("perm.0600"), 0);

	/* Only the owner (or CAP_DAC_OVERRIDE) may unlink. */
	EXPECT_EQ(as_user(1000, 1000, try_unlink, "perm.0666"), EACCES);
	EXPECT_EQ(unlink_name(dev, "perm.0600"), 0);
	EXPECT_EQ(unlink_name(dev, "perm.0660"), 0);
	EXPECT_EQ(unlink_name(dev, "perm.0666"), 0);
	EXPECT_EQ(unlink_name(dev, "perm.0644"), 0);
}

static int own_channel(const char *name)
{
	int dev = dev_open();
	long fd = create(dev, name, 0600, 4096);

	if (fd < 0)
		return (int)-fd;
	/* Owner is this uid: another uid's attempt is tested by the parent. */
	return (int)-unlink_name(dev, name);
}

TEST(owner_is_the_creator)
{
	int dev = dev_open();

	EXPECT_EQ(as_user(1001, 1001, own_channel, "perm.own"), 0);
	/* The channel was created by 1001 and unlinked by 1001. */
	EXPECT_EQ(attach(dev, "perm.own"), -ENOENT);
}

static int write_param(const char *name, const char *val)
{
	char path[128];
	FILE *f;
	int ret;

	snprintf(path, sizeof(path), PARAMS "%s", name);
	f = fopen(path, "w");
	if (!f)
		return -errno;
	ret = fputs(val, f) < 0 ? -EIO : 0;
	if (fclose(f))
		ret = -errno;
	return ret;
}

/* The value of a parameter, without its newline. */
static int read_param(const char *name, char *val, size_t cap)
{
	char path[128];
	FILE *f;
	int ret = 0;

	snprintf(path, sizeof(path), PARAMS "%s", name);
	f = fopen(path, "r");
	if (!f)
		return -errno;
	if (!fgets(val, (int)cap, f))
		ret = -EIO;
	fclose(f);
	val[strcspn(val, "\n")] = '\0';
	return ret;
}

static int fill_limit(const char *unused)
{
	int dev = dev_open();
	char name[32];
	int i;
	long ret;

	(void)unused;
	for (i = 0; i < 3; i++) {
		snprintf(name, sizeof(name), "perm.lim.%d", i);
		ret = create(dev, name, 0600, 4096);
		if (ret < 0)
			return 100 + i;
		if (i == 0)
			close((int)ret);	/* named channels count without fds */
	}
	ret = create(dev, "perm.lim.3", 0600, 4096);
	if (ret != -ENOSPC)
		return 110;
	/* Unlinked but still open channels count as well. */
	if (unlink_name(dev, "perm.lim.1"))
		return 111;
	ret = create(dev, "perm.lim.3", 0600, 4096);
	if (ret != -ENOSPC)
		return 112;
	/* Freeing one (name gone, no fd) makes room. */
	if (unlink_name(dev, "perm.lim.0"))
		return 113;
	ret = create(dev, "perm.lim.3", 0600, 4096);
	if (ret < 0)
		return 114;
	unlink_name(dev, "perm.lim.2");
	unlink_name(dev, "perm.lim.3");
	return 0;
}

TEST(channels_per_user_limit)
{
	ASSERT_EQ(write_param("max_channels_per_user", "3"), 0);
	EXPECT_EQ(as_user(1002, 1002, fill_limit, NULL), 0);
	ASSERT_EQ(write_param("max_channels_per_user", "64"), 0);
}

TEST(ring_size_limit)
{
	int dev = dev_open();

	ASSERT_EQ(write_param("max_ring_size", "65536"), 0);
	EXPECT_EQ(create(dev, "perm.big", 0600, 1 << 17), -EINVAL);
	ASSERT_EQ(write_param("max_ring_size", "67108864"), 0);
	EXPECT_TRUE(create(dev, "perm.big", 0600, 1 << 17) >= 0);
	EXPECT_EQ(unlink_name(dev, "perm.big"), 0);
}

TEST(allocation_failure_is_enomem)
{
	int dev = dev_open();
	char pinned[32];
	long fd;

	/* 2 x 64 MiB rings fit the guest; pushing the limit up to 512 MiB
	 * asks for more than a node has: the kernel must say ENOMEM. The cap
	 * on all rings (max_pinned_mb, ENOSPC, t_shared) is lifted for it. */
	ASSERT_EQ(read_param("max_pinned_mb", pinned, sizeof(pinned)), 0);
	ASSERT_EQ(write_param("max_pinned_mb", "1048576"), 0);
	ASSERT_EQ(write_param("max_ring_size", "536870912"), 0);
	fd = create(dev, "perm.huge", 0600, 1ULL << 29);
	EXPECT_EQ(fd, -ENOMEM);
	ASSERT_EQ(write_param("max_ring_size", "67108864"), 0);
	ASSERT_EQ(write_param("max_pinned_mb", pinned), 0);
	if (fd >= 0)
		unlink_name(dev, "perm.huge");
}

TEST_HARNESS_MAIN
