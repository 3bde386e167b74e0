// SPDX-License-Identifier: MIT
/*
 * uhp_open_channel() with the module loaded (tests/host/open_test.c runs
 * the arena side): the device is the default, create-or-attach among
 * racing processes creates one channel on the device, an arena made on
 * purpose (UHP_OPEN_ARENA) is still found by a plain attach, /dev/uhp
 * refusing the caller is reported (not worked around with an arena), and
 * uhp_peek() hands out the CRC the kernel sealed for UHP_IOC_SEND.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/uhp.h>
#include <uhp.h>

#include "harness.h"
#include "ioctl_calls.h"

static void cleanup(const char *name)
{
	int dev = uhp_open();

	if (dev >= 0) {
		uhp_unlink(dev, name);
		close(dev);
	}
	uhp_arena_unlink(name);
}

TEST(the_device_is_the_default)
{
	struct uhp_open_opts o = UHP_OPEN_OPTS_INIT;
	struct uhp_channel *ch, *ch2;
	char b[16];

	o.flags = UHP_OPEN_CREATE | UHP_OPEN_CONSUMER;
	o.ring_size = 1 << 16;
	ASSERT_EQ(uhp_open_channel("open.dev", &o, &ch), 1);
	EXPECT_STREQ(uhp_channel_kind(ch), "device");
	EXPECT_GE(uhp_channel_fd(ch), 0);
	o.flags = UHP_OPEN_CREATE;
	ASSERT_EQ(uhp_open_channel("open.dev", &o, &ch2), 0);
	EXPECT_STREQ(uhp_channel_kind(ch2), "device");
	EXPECT_EQ(uhp_send(ch2, "hello", 5, NULL), 0);
	EXPECT_EQ(uhp_recv(ch, b, sizeof(b), NULL), 5);
	uhp_close(ch2);
	uhp_close(ch);
	cleanup("open.dev");
}

TEST(racing_processes_create_one_channel)
{
	enum { KIDS = 4 };
	int created = 0, attached = 0;
	pid_t pid[KIDS];

	for (int i = 0; i < KIDS; i++) {
		pid[i] = fork();
		if (pid[i] == 0) {
			struct uhp_open_opts o = UHP_OPEN_OPTS_INIT;
			struct uhp_channel *ch;
			int r;

			o.flags = UHP_OPEN_CREATE;
			o.ring_size = 1 << 14;
			r = uhp_open_channel("open.race", &o, &ch);
			if (r >= 0 && strcmp(uhp_channel_kind(ch), "device"))
				r = 5;
			if (r >= 0)
				usleep(50000);
			_exit(r == 1 ? 10 : r == 0 ? 11 : 12);
		}
	}
	for (int i = 0; i < KIDS; i++) {
		int st;

		ASSERT_EQ(waitpid(pid[i], &st, 0), pid[i]);
		created += WIFEXITED(st) && WEXITSTATUS(st) == 10;
		attached += WIFEXITED(st) && WEXITSTATUS(st) == 11;
	}
	EXPECT_EQ(created, 1);
	EXPECT_EQ(attached, KIDS - 1);
	cleanup("open.race");
}

TEST(an_arena_made_on_purpose_is_found)
{
	struct uhp_open_opts o = UHP_OPEN_OPTS_INIT;
	struct uhp_channel *a, *b;

	o.flags = UHP_OPEN_CREATE | UHP_OPEN_ARENA | UHP_OPEN_CONSUMER;
	o.ring_size = 1 << 14;
	ASSERT_EQ(uhp_open_channel("open.arena", &o, &a), 1);
	EXPECT_STREQ(uhp_channel_kind(a), "arena");
	o.flags = 0;
	ASSERT_EQ(uhp_open_channel("open.arena", &o, &b), 0);
	EXPECT_STREQ(uhp_channel_kind(b), "arena");
	uhp_close(b);
	o.flags = UHP_OPEN_DEVICE;
	EXPECT_EQ(uhp_open_channel("open.arena", &o, &b), -ENOENT);
	uhp_close(a);
	cleanup("open.arena");
}

TEST(a_device_that_refuses_is_an_answer)
{
	struct stat st;
	pid_t pid;
	int status;

	ASSERT_EQ(stat(UHP_DEVICE_PATH, &st), 0);
	ASSERT_EQ(chmod(UHP_DEVICE_PATH, 0600), 0);
	pid = fork();
	if (pid == 0) {
		struct uhp_open_opts o = UHP_OPEN_OPTS_INIT;
		struct uhp_channel *ch;
		int r1, r2;

		if (setgid(65534) || setuid(65534))
			_exit(3);
		o.flags = UHP_OPEN_CREATE;
		r1 = uhp_open_channel("open.perm", &o, &ch);
		o.flags |= UHP_OPEN_ARENA;	/* going without it is a choice */
		r2 = uhp_open_channel("open.perm", &o, &ch);
		if (r2 == 1)
			uhp_arena_unlink("open.perm");
		_exit(r1 == -EACCES && r2 == 1 ? 0 : 1);
	}
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	chmod(UHP_DEVICE_PATH, st.st_mode & 07777);
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

TEST(peek_gives_the_kernels_seal)
{
	struct uhp_open_opts o = UHP_OPEN_OPTS_INIT;
	struct uhp_meta m = { .seq = 77, .src = 5, .dst = 6, .type = 9 };
	struct uhp_channel *ch;
	struct uhp_rec_hdr h;
	struct uhp_rx rx;
	uint32_t kcrc = 0, len = 0;
	uint64_t pos;
	char payload[100];

	memset(payload, 'k', sizeof(payload));
	o.flags = UHP_OPEN_CREATE | UHP_OPEN_CONSUMER | UHP_OPEN_DEVICE;
	o.ring_size = 1 << 14;
	ASSERT_EQ(uhp_open_channel("open.crc", &o, &ch), 1);
	/* The kernel seals this one (UHP_IOC_SEND), not libuhp. */
	ASSERT_EQ(uhp_kernel_send(ch, 0, payload, sizeof(payload), &m, &pos), 0);
	ASSERT_EQ(uhp_verify(ch, 0, pos, &len, &kcrc), 0);
	ASSERT_EQ(uhp_peek(ch, &rx), 0);
	EXPECT_EQ(rx.crc, kcrc);
	memset(&h, 0, sizeof(h));
	h.len = rx.len;
	h.type = rx.meta.type;
	h.flags = rx.meta.flags;
	h.src = rx.meta.src;
	h.dst = rx.meta.dst;
	h.seq = rx.meta.seq;
	EXPECT_EQ(rx.crc, ~uhp_crc32c(uhp_crc32c(~0U, (char *)&h + UHP_REC_CRC_HDR_OFF,
						 UHP_REC_CRC_HDR_LEN), rx.payload, rx.len));
	EXPECT_EQ(uhp_release(ch, &rx), 0);
	uhp_close(ch);
	cleanup("open.crc");
}

TEST_HARNESS_MAIN
