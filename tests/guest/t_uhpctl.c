// SPDX-License-Identifier: MIT
/*
 * uhpctl (tools/uhpctl.c), run as a user runs it: ls shows the channels
 * with their rings and flags, stat a channel's rings with kind and fill
 * (records sent are bytes used, a consumer's reads free them), rm unlinks
 * and names what it could not, and bad command lines are exit status 2.
 * uhp-vm puts the static uhpctl on the guest's PATH.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <uhp.h>

#include "harness.h"

/* Run "uhpctl ARGS", its stdout and stderr into out; the exit status. */
static int uhpctl(char *out, size_t cap, const char *args)
{
	char cmd[512];
	size_t n = 0;
	FILE *p;
	int st;

	snprintf(cmd, sizeof(cmd), "uhpctl %s 2>&1", args);
	p = popen(cmd, "r");
	if (!p)
		return -1;
	while (n + 1 < cap && fgets(out + n, (int)(cap - n), p))
		n += strlen(out + n);
	out[n] = 0;
	st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static struct uhp_channel *make(int dev, const char *name, unsigned excl,
				bool kernel_rings)
{
	struct uhp_create_opts o = UHP_CREATE_OPTS_INIT;
	struct uhp_channel *ch;

	o.ring_size = 1 << 16;
	o.consumer = true;
	o.excl_rings = excl;
	o.kernel_rings = kernel_rings;
	if (uhp_create(dev, name, &o, &ch))
		return NULL;
	return ch;
}

TEST(ls_shows_channels_and_their_flags)
{
	static char out[16384];
	struct uhp_channel *a, *b;
	int dev = uhp_open();
	char want[64];

	ASSERT_GE(dev, 0);
	a = make(dev, "ctl.plain", 0, false);
	b = make(dev, "ctl.kernel", 1, true);
	ASSERT_TRUE(a && b);
	ASSERT_EQ(uhpctl(out, sizeof(out), "ls"), 0);
	EXPECT_TRUE(strstr(out, "NAME") && strstr(out, "ctl.plain") &&
		    strstr(out, "ctl.kernel"));
	EXPECT_TRUE(strstr(out, "consumer,kernel-rings") != NULL);
	ASSERT_EQ(uhpctl(out, sizeof(out), "ls --json"), 0);
	/* a user ring per node, 1 exclusive, a kernel ring per node */
	snprintf(want, sizeof(want), "\"rings\":%u,", uhp_nr_rings(b));
	EXPECT_TRUE(strstr(out, "{\"name\":\"ctl.kernel\"") && strstr(out, want) &&
		    strstr(out, "\"kernel_rings\":true"));
	EXPECT_TRUE(out[0] == '[' && strstr(out, "]\n"));
	uhp_unlink(dev, "ctl.plain");
	uhp_unlink(dev, "ctl.kernel");
	uhp_close(a);
	uhp_close(b);
}

TEST(stat_shows_rings_and_fill)
{
	static char out[16384];
	struct uhp_channel *ch;
	char buf[64] = { 0 }, want[64];
	int dev = uhp_open();
	unsigned ring;

	ASSERT_GE(dev, 0);
	ch = make(dev, "ctl.stat", 1, false);
	ASSERT_TRUE(ch != NULL);
	ring = uhp_producer_ring(ch);
	for (int i = 0; i < 10; i++)	/* 10 records of 128 bytes */
		ASSERT_EQ(uhp_send(ch, buf, sizeof(buf), NULL), 0);
	ASSERT_EQ(uhpctl(out, sizeof(out), "stat ctl.stat --json"), 0);
	snprintf(want, sizeof(want), "{\"ring\":%u,\"node\":", ring);
	EXPECT_TRUE(strstr(out, want) != NULL);
	EXPECT_TRUE(strstr(out, "\"kind\":\"user\",\"used\":1280,") != NULL);
	EXPECT_TRUE(strstr(out, "\"kind\":\"exclusive\",\"used\":0,") != NULL);
	ASSERT_EQ(uhpctl(out, sizeof(out), "stat ctl.stat"), 0);
	EXPECT_TRUE(strstr(out, "ctl.stat (channel): uid 0") && strstr(out, "exclusive"));
	/* the consumer reads them: the space is free again, 10 records taken */
	for (int i = 0; i < 10; i++)
		ASSERT_EQ(uhp_recv(ch, buf, sizeof(buf), NULL), (ssize_t)sizeof(buf));
	ASSERT_EQ(uhpctl(out, sizeof(out), "stat ctl.stat --json"), 0);
	EXPECT_TRUE(strstr(out, "\"used\":1280") == NULL);
	EXPECT_TRUE(strstr(out, "\"used\":0,\"written\":1280,\"records\":10,\"bad\":0") != NULL);
	/* the creator's fd is the one writer (uhpctl observes), and consumes */
	snprintf(want, sizeof(want), "\"writers\":1,\"consumer_pid\":%d,", (int)getpid());
	EXPECT_TRUE(strstr(out, want) != NULL);
	/* the namespace, as /proc/self/ns/{ipc,user} names it */
	{
		char link[64] = "", want_ns[80];
		ssize_t n = readlink("/proc/self/ns/ipc", link, sizeof(link) - 1);

		if (n > 0 && !strstr(out, "\"namespace\":\"ipc:")) {
			n = readlink("/proc/self/ns/user", link, sizeof(link) - 1);
		}
		ASSERT_GT(n, 0);
		link[n] = 0;
		snprintf(want_ns, sizeof(want_ns), "\"namespace\":\"%s\"", link);
		EXPECT_TRUE(strstr(out, want_ns) != NULL);
	}
	ASSERT_EQ(uhpctl(out, sizeof(out), "watch -n 0.05 -c 2 stat ctl.stat"), 0);
	EXPECT_TRUE(strstr(out, "ctl.stat (channel): uid 0") &&
		    strstr(strstr(out, "ctl.stat (channel): uid 0") + 1,
			   "ctl.stat (channel): uid 0"));
	uhp_unlink(dev, "ctl.stat");
	uhp_close(ch);
}

TEST(arenas_are_listed_shown_and_removed)
{
	static char out[16384];
	struct uhp_create_opts o = UHP_CREATE_OPTS_INIT;
	struct uhp_channel *ch;
	char buf[40] = { 0 };

	o.ring_size = 1 << 14;
	o.consumer = true;
	ASSERT_EQ(uhp_arena_create("ctl.arena", &o, &ch), 0);
	for (int i = 0; i < 3; i++)
		ASSERT_EQ(uhp_send(ch, buf, sizeof(buf), NULL), 0);
	ASSERT_EQ(uhp_recv(ch, buf, sizeof(buf), NULL), (ssize_t)sizeof(buf));
	ASSERT_EQ(uhpctl(out, sizeof(out), "ls"), 0);
	EXPECT_TRUE(strstr(out, "ctl.arena") && strstr(out, " arena "));
	ASSERT_EQ(uhpctl(out, sizeof(out), "stat ctl.arena --json"), 0);
	EXPECT_TRUE(strstr(out, "\"kind\":\"arena\",\"uid\":0,\"gid\":0,\"mode\":\"0600\"") != NULL);
	/* 3 records of 128 bytes, one taken */
	EXPECT_TRUE(strstr(out, "\"used\":256,\"written\":384,\"records\":1,") != NULL);
	ASSERT_EQ(uhpctl(out, sizeof(out), "rm ctl.arena"), 0);
	EXPECT_EQ(uhp_arena_unlink("ctl.arena"), -ENOENT);
	uhp_close(ch);
}

TEST(rm_unlinks_and_says_what_failed)
{
	static char out[4096];
	struct uhp_channel *ch;
	int dev = uhp_open();

	ASSERT_GE(dev, 0);
	ch = make(dev, "ctl.rm", 0, false);
	ASSERT_TRUE(ch != NULL);
	EXPECT_EQ(uhpctl(out, sizeof(out), "rm ctl.rm ctl.nosuch"), 1);
	EXPECT_TRUE(strstr(out, "rm ctl.nosuch: No such file or directory") != NULL);
	ASSERT_EQ(uhpctl(out, sizeof(out), "ls"), 0);
	EXPECT_TRUE(strstr(out, "ctl.rm") == NULL);
	/* unlinked, the channel lives on for its fd */
	EXPECT_EQ(uhp_send(ch, out, 8, NULL), 0);
	EXPECT_EQ(uhpctl(out, sizeof(out), "stat ctl.rm"), 1);
	uhp_close(ch);
}

TEST(bad_command_lines_are_status_2)
{
	static char out[4096];

	EXPECT_EQ(uhpctl(out, sizeof(out), ""), 2);
	EXPECT_EQ(uhpctl(out, sizeof(out), "frob"), 2);
	EXPECT_EQ(uhpctl(out, sizeof(out), "stat"), 2);
	EXPECT_EQ(uhpctl(out, sizeof(out), "rm"), 2);
	EXPECT_EQ(uhpctl(out, sizeof(out), "watch -n 0 ls"), 2);
	EXPECT_EQ(uhpctl(out, sizeof(out), "watch stat"), 2);
	EXPECT_TRUE(strstr(out, "usage: uhpctl") != NULL);
	EXPECT_EQ(uhpctl(out, sizeof(out), "--help"), 0);
}

TEST_HARNESS_MAIN
