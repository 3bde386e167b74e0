/* SPDX-License-Identifier: MIT */
/*
 * ticker.h - the guest tests' handle on samples/uhp_ticker.ko, the sample
 * kernel producer: load and unload it, read and write its parameters, make
 * a channel for it.
 * Include after harness.h (SKIP, TH_LOG).
 */
#ifndef UHP_TEST_TICKER_H
#define UHP_TEST_TICKER_H

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "uhp.h"

#define TICKER_KO	"/lib/modules/uhp/uhp_ticker.ko"
#define TICKER_PARAM	"/sys/module/uhp_ticker/parameters/"

static inline int have_ticker(void)
{
	struct stat st;

	return stat(TICKER_KO, &st) == 0;
}

static inline void need_ticker(void)
{
	if (!have_ticker())
		SKIP("%s is not in this guest (built without samples?)", TICKER_KO);
}

/* insmod the ticker with 'args'; 0 if it loaded. */
static inline int ticker_load(const char *args)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "insmod " TICKER_KO " %s", args);
	return system(cmd) == 0 ? 0 : -1;
}

static inline void ticker_unload(void)
{
	if (system("rmmod uhp_ticker 2>/dev/null"))
		TH_LOG("rmmod uhp_ticker failed");
}

/* Write v to the ticker's parameter 'name': 0 or -errno. */
static inline int param_write(const char *name, unsigned long v)
{
	char path[128], val[32];
	int fd, n;

	snprintf(path, sizeof(path), TICKER_PARAM "%s", name);
	n = snprintf(val, sizeof(val), "%lu", v);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return -errno;
	n = write(fd, val, (size_t)n) == n ? 0 : -errno;
	close(fd);
	return n;
}

/* The ticker's parameter 'name' as a number, or -1. */
static inline long param_read(const char *name)
{
	char path[128], val[32] = "";
	int fd;

	snprintf(path, sizeof(path), TICKER_PARAM "%s", name);
	fd = open(path, O_RDONLY);
	if (fd < 0 || read(fd, val, sizeof(val) - 1) < 0)
		return -1;
	close(fd);
	return atol(val);
}

/* Root: a channel with kernel rings for the ticker, this handle its consumer. */
static inline struct uhp_channel *ticker_channel(int dev, const char *name,
						 uint64_t ring_size)
{
	struct uhp_create_opts o = UHP_CREATE_OPTS_INIT;
	struct uhp_channel *ch;
	int ret;

	o.ring_size = ring_size;
	o.consumer = true;
	o.kernel_rings = true;
	ret = uhp_create(dev, name, &o, &ch);
	if (ret)
		FAIL("create %s: %s", name, strerror(-ret));
	return ch;
}

#endif /* UHP_TEST_TICKER_H */
