/* SPDX-License-Identifier: MIT */
/*
 * ioctl_calls.h - raw ioctl(2) helpers the guest tests share: they test the
 * kernel's checks, so they call it directly instead of through libuhp.
 */
#ifndef UHP_TEST_IOCTL_CALLS_H
#define UHP_TEST_IOCTL_CALLS_H

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>

#include <linux/uhp.h>

/* /dev/uhp, or the test program exits saying why. */
static inline int dev_open_or_exit(void)
{
	int fd = open(UHP_DEVICE_PATH, O_RDWR | O_CLOEXEC);

	if (fd < 0) {
		perror("open " UHP_DEVICE_PATH);
		exit(1);
	}
	return fd;
}

/* ioctl() returning -errno instead of -1 and errno. */
static inline long xioctl(int fd, unsigned long cmd, void *arg)
{
	long ret = ioctl(fd, cmd, arg);

	return ret < 0 ? -errno : ret;
}

/* UHP_IOC_UNLINK of name on /dev/uhp fd dev. */
static inline long unlink_name(int dev, const char *name)
{
	struct uhp_unlink u = { .size = sizeof(u) };

	snprintf(u.name, sizeof(u.name), "%s", name);
	return xioctl(dev, UHP_IOC_UNLINK, &u);
}

#endif /* UHP_TEST_IOCTL_CALLS_H */
