// SPDX-License-Identifier: MIT
/*
 * Every uhp ioctl with good and bad arguments, through raw ioctl(2) so the
 * kernel's checks are what is tested (libuhp would refuse some inputs
 * itself). Size handling follows iommufd's selftests: size - 1 -> EINVAL,
 * larger with a non-zero tail -> E2BIG, larger with a zero tail -> accepted,
 * bad pointer -> EFAULT, unknown command -> ENOTTY.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/uhp.h>

#include "harness.h"
#include "ioctl_calls.h"

static struct uhp_create create_args(const char *name)
{
	struct uhp_create c = {
		.size = sizeof(c),
		.mode = 0600,
		.ring_size = 1 << 16,
	};

	strncpy(c.name, name, sizeof(c.name) - 1);
	return c;
}

/*
 * Named channels outlive the test's process; tests unlink what they name so
 * the per-user channel limit is not used up by earlier tests.
 */
static int create(int dev, const char *name)
{
	struct uhp_create c = create_args(name);
	int fd = (int)xioctl(dev, UHP_IOC_CREATE, &c);

	if (fd >= 0 && unlink_name(dev, name))
		return -1;
	return fd;
}

static int create_named(int dev, const char *name)
{
	struct uhp_create c = create_args(name);

	return (int)xioctl(dev, UHP_IOC_CREATE, &c);
}

TEST(create_returns_cloexec_channel_fd)
{
	int dev = dev_open_or_exit();
	int fd = create(dev, "io.create");
	struct uhp_info info = { .size = sizeof(info) };

	ASSERT_TRUE(fd >= 0);
	ASSERT_EQ(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	ASSERT_EQ(xioctl(fd, UHP_IOC_INFO, &info), 0);
	EXPECT_EQ(info.abi_version, UHP_ABI_VERSION);
	EXPECT_EQ(info.data_size, 1 << 16);
	EXPECT_EQ(info.mode, 0600);
	EXPECT_EQ(info.uid, getuid());
	EXPECT_EQ(strcmp(info.name, "io.create"), 0);
	EXPECT_EQ(info.page_size, 4096);
	EXPECT_TRUE(info.features & UHP_FEAT_NEED_WAKEUP);
	EXPECT_TRUE(info.features & UHP_FEAT_DOUBLE_MAP);
	EXPECT_EQ(info.flags & UHP_INFO_F_CONSUMER, 0);
}

TEST(create_one_ring_per_node_by_default)
{
	int dev = dev_open_or_exit();
	int fd = create(dev, "io.pernode");
	struct uhp_ring_info ri[8];
	struct uhp_info info = {
		.size = sizeof(info), .rings_cap = 8,
		.rings_uptr = (uintptr_t)ri,
	};

	ASSERT_TRUE(fd >= 0);
	ASSERT_EQ(xioctl(fd, UHP_IOC_INFO, &info), 0);
	ASSERT_EQ(info.nr_rings, 2);		/* the rig boots two nodes */
	EXPECT_EQ(ri[0].node, 0);
	EXPECT_EQ(ri[1].node, 1);
	EXPECT_EQ(ri[1].prod_off, UHP_MMAP_OFF(1, UHP_PART_PROD));
	EXPECT_EQ(ri[1].cons_off, UHP_MMAP_OFF(1, UHP_PART_CONS));
	EXPECT_EQ(ri[1].flags, 0);		/* user rings only */
	EXPECT_EQ(ri[1].data_off, UHP_MMAP_OFF(1, UHP_PART_DATA));
}

TEST(create_single_node)
{
	int dev = dev_open_or_exit();
	struct uhp_create c = create_args("io.node1");
	struct uhp_ring_info ri[2] = { { .node = -5 }, { .node = -5 } };
	struct uhp_info info = {
		.size = sizeof(info), .rings_cap = 2,
		.rings_uptr = (uintptr_t)ri,
	};
	int fd;

	c.flags = UHP_CREATE_NODE;
	c.node = 1;
	fd = (int)xioctl(dev, UHP_IOC_CREATE, &c);
	ASSERT_TRUE(fd >= 0);
	EXPECT_EQ(unlink_name(dev, "io.node1"), 0);
	ASSERT_EQ(xioctl(fd, UHP_IOC_INFO, &info), 0);
	EXPECT_EQ(info.nr_rings, 1);
	EXPECT_EQ(ri[0].node, 1);
	EXPECT_EQ(ri[1].node, -5);		/* untouched past nr_rings */
}

TEST(create_size_handling)
{
	int dev = dev_open_or_exit();
	struct {
		struct uhp_create c;
		uint64_t tail;
	} big = { .c = create_args("io.size"), .tail = 0 };
	struct uhp_create c = create_args("io.size");

	c.size = sizeof(c) - 1;
	EXPECT_EQ(xioctl(dev, UHP_IOC_CREATE, &c), -EINVAL);
	c.size = 0;
	EXPECT_EQ(xioctl(dev, UHP_IOC_CREATE, &c), -EINVAL);

	big.c.size = sizeof(big);
	big.tail = 1;
	EXPECT_EQ(xioctl(dev, UHP_IOC_CREATE, &big), -E2BIG);
	big.tail = 0;				/* a newer, zero-extended struct */
	EXPECT_TRUE(xioctl(dev, UHP_IOC_CREATE, &big) >= 0);
	EXPECT_EQ(unlink_name(dev, "io.size"), 0);

	EXPECT_EQ(xioctl(dev, UHP_IOC_CREATE, NULL), -EFAULT);
	EXPECT_EQ(xioctl(dev, UHP_IOC_CREATE, (void *)16), -EFAULT);
}

TEST(create_rejects_bad_fields)
{
	int dev = dev_open_or_exit();
	struct uhp_create c;

#define EXPECT_CREATE(field_stmt, err) do {				\
		c = create_args("io.bad");				\
		field_stmt;						\
		EXPECT_EQ(xioctl(dev, UHP_IOC_CREATE, &c), err);	\
	} while (0)

	EXPECT_CREATE(c.flags = 1U << 31, -EINVAL);
	EXPECT_CREATE(c.flags = UHP_CREATE_FLAGS + 1, -EINVAL);
	EXPECT_CREATE(c.__reserved[0] = 1ULL << 63, -EINVAL);
	EXPECT_CREATE(c.__reserved0 = 1, -EINVAL);
	EXPECT_CREATE(c.excl_rings = UHP_EXCL_RINGS_MAX + 1, -EINVAL);
	EXPECT_CREATE(c.mode = 01000, -EINVAL);
	EXPECT_CREATE(c.node = 1, -EINVAL);	/* node without UHP_CREATE_NODE */
	EXPECT_CREATE((c.flags = UHP_CREATE_NODE, c.node = 2), -EINVAL);
	EXPECT_CREATE((c.flags = UHP_CREATE_NODE, c.node = -1), -EINVAL);
	EXPECT_CREATE((c.flags = UHP_CREATE_NODE, c.node = 1 << 20), -EINVAL);
	EXPECT_CREATE(c.ring_size = 0, -EINVAL);
	EXPECT_CREATE(c.ring_size = 2048, -EINVAL);
	EXPECT_CREATE(c.ring_size = (1 << 16) + 4096, -EINVAL);
	EXPECT_CREATE(c.ring_size = 1ULL << 40, -EINVAL);
	EXPECT_CREATE(c.ring_size = 1ULL << 63, -EINVAL);
	EXPECT_CREATE(memset(c.name, 'a', sizeof(c.name)), -ENAMETOOLONG);
	EXPECT_CREATE(memset(c.name, 0, sizeof(c.name)), -EINVAL);
	EXPECT_CREATE(strcpy(c.name, ".hidden"), -EINVAL);
	EXPECT_CREATE(strcpy(c.name, "a/b"), -EINVAL);
	EXPECT_CREATE(strcpy(c.name, "a b"), -EINVAL);
	EXPECT_CREATE(strcpy(c.name, "caf\xc3\xa9"), -EINVAL);
#undef EXPECT_CREATE

	/* The longest valid name. */
	c = create_args("");
	memset(c.name, 'n', UHP_NAME_MAX - 1);
	EXPECT_TRUE(xioctl(dev, UHP_IOC_CREATE, &c) >= 0);
	EXPECT_EQ(unlink_name(dev, c.name), 0);
}

TEST(create_duplicate_name)
{
	int dev = dev_open_or_exit();

	ASSERT_TRUE(create_named(dev, "io.dup") >= 0);
	EXPECT_EQ(create_named(dev, "io.dup"), -EEXIST);
	EXPECT_EQ(unlink_name(dev, "io.dup"), 0);
}

TEST(attach_and_unlink)
{
	int dev = dev_open_or_exit();
	struct uhp_attach a = { .size = sizeof(a) };
	struct uhp_unlink u = { .size = sizeof(u) };
	struct uhp_info info = { .size = sizeof(info) };
	int fd1, fd2;

	strcpy(a.name, "io.attach");
	strcpy(u.name, "io.attach");
	EXPECT_EQ(xioctl(dev, UHP_IOC_ATTACH, &a), -ENOENT);
	fd1 = create_named(dev, "io.attach");
	ASSERT_TRUE(fd1 >= 0);
	fd2 = (int)xioctl(dev, UHP_IOC_ATTACH, &a);
	ASSERT_TRUE(fd2 >= 0);
	EXPECT_EQ(fcntl(fd2, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);

	a.flags = 1U << 7;
	EXPECT_EQ(xioctl(dev, UHP_IOC_ATTACH, &a), -EINVAL);
	a.flags = 0;
	a.__reserved[1] = 1;
	EXPECT_EQ(xioctl(dev, UHP_IOC_ATTACH, &a), -EINVAL);
	a.__reserved[1] = 0;
	a.size = sizeof(a) - 1;
	EXPECT_EQ(xioctl(dev, UHP_IOC_ATTACH, &a), -EINVAL);
	a.size = sizeof(a);

	u.flags = 1;
	EXPECT_EQ(xioctl(dev, UHP_IOC_UNLINK, &u), -EINVAL);
	u.flags = 0;
	u.__reserved[0] = 1;
	EXPECT_EQ(xioctl(dev, UHP_IOC_UNLINK, &u), -EINVAL);
	u.__reserved[0] = 0;
	EXPECT_EQ(xioctl(dev, UHP_IOC_UNLINK, &u), 0);
	EXPECT_EQ(xioctl(dev, UHP_IOC_UNLINK, &u), -ENOENT);
	EXPECT_EQ(xioctl(dev, UHP_IOC_ATTACH, &a), -ENOENT);
	/* Unlinked, but both fds keep the channel alive. */
	EXPECT_EQ(xioctl(fd2, UHP_IOC_INFO, &info), 0);
	/* The name is free for a new channel. */
	EXPECT_TRUE(create_named(dev, "io.attach") >= 0);
	EXPECT_EQ(unlink_name(dev, "io.attach"), 0);
	close(fd1);
}

TEST(consumer_role_is_exclusive)
{
	int dev = dev_open_or_exit();
	struct uhp_create c = create_args("io.cons");
	struct uhp_attach a = { .size = sizeof(a), .flags = UHP_ATTACH_CONSUMER };
	struct uhp_info info = { .size = sizeof(info) };
	int fd, fd2;

	c.flags = UHP_CREATE_CONSUMER;
	fd = (int)xioctl(dev, UHP_IOC_CREATE, &c);
	ASSERT_TRUE(fd >= 0);
	ASSERT_EQ(xioctl(fd, UHP_IOC_INFO, &info), 0);
	EXPECT_EQ(info.flags & UHP_INFO_F_CONSUMER, UHP_INFO_F_CONSUMER);
	strcpy(a.name, "io.cons");
	EXPECT_EQ(xioctl(dev, UHP_IOC_ATTACH, &a), -EBUSY);
	close(fd);				/* frees the role */
	fd2 = (int)xioctl(dev, UHP_IOC_ATTACH, &a);
	EXPECT_TRUE(fd2 >= 0);
	EXPECT_EQ(unlink_name(dev, "io.cons"), 0);
}

TEST(info_bad_arguments)
{
	int dev = dev_open_or_exit();
	int fd = create(dev, "io.info");
	struct uhp_info info = { .size = sizeof(info) };

	ASSERT_TRUE(fd >= 0);
	info.rings_cap = 1;			/* cap without a buffer */
	EXPECT_EQ(xioctl(fd, UHP_IOC_INFO, &info), -EINVAL);
	info.rings_uptr = 8;			/* unmapped buffer */
	EXPECT_EQ(xioctl(fd, UHP_IOC_INFO, &info), -EFAULT);
	info.rings_cap = 0;
	info.rings_uptr = 0;
	info.__reserved[0] = 1;
	EXPECT_EQ(xioctl(fd, UHP_IOC_INFO, &info), -EINVAL);
	info.__reserved[0] = 0;
	info.flags = 1;				/* output only: must be 0 in */
	EXPECT_EQ(xioctl(fd, UHP_IOC_INFO, &info), -EINVAL);
	info.flags = 0;
	info.size = 4;
	EXPECT_EQ(xioctl(fd, UHP_IOC_INFO, &info), -EINVAL);
	/* Channel ioctls are not /dev/uhp ioctls and vice versa. */
	EXPECT_EQ(xioctl(dev, UHP_IOC_INFO, &info), -ENOTTY);
	EXPECT_EQ(xioctl(fd, UHP_IOC_CREATE, &info), -ENOTTY);
}

TEST(unknown_commands)
{
	int dev = dev_open_or_exit();
	int fd = create(dev, "io.unknown");
	char buf[256] = { 0 };

	ASSERT_TRUE(fd >= 0);
	/* The first number after the last /dev/uhp command (LIST, 0x03). */
	EXPECT_EQ(xioctl(dev, _IO(UHP_IOC_MAGIC, 0x04), buf), -ENOTTY);
	EXPECT_EQ(xioctl(dev, _IO(UHP_IOC_MAGIC, 0xff), buf), -ENOTTY);
	/* ... and after the last channel command (CLAIM, 0x14). */
	EXPECT_EQ(xioctl(fd, _IO(UHP_IOC_MAGIC, 0x15), buf), -ENOTTY);
	EXPECT_EQ(xioctl(fd, _IO('x', 0x10), buf), -ENOTTY);
	/* Right number, but the direction/size bits do not match. */
	EXPECT_EQ(xioctl(fd, _IOWR(UHP_IOC_MAGIC, 0x10, struct uhp_info), buf), -ENOTTY);
}

TEST(notify_arguments)
{
	int dev = dev_open_or_exit();
	int fd = create(dev, "io.notify");
	struct uhp_notify n = { .size = sizeof(n) };

	ASSERT_TRUE(fd >= 0);
	EXPECT_EQ(xioctl(fd, UHP_IOC_NOTIFY, &n), 0);
	n.flags = 1;
	EXPECT_EQ(xioctl(fd, UHP_IOC_NOTIFY, &n), -EINVAL);
	n.flags = 0;
	n.__reserved = 1;
	EXPECT_EQ(xioctl(fd, UHP_IOC_NOTIFY, &n), -EINVAL);
}

TEST(send_and_verify_arguments)
{
	int dev = dev_open_or_exit();
	int fd = create(dev, "io.send");
	char payload[100];
	struct uhp_send s = {
		.size = sizeof(s), .len = sizeof(payload),
		.buf = (uintptr_t)payload, .type = 3, .seq = 9,
	};
	struct uhp_verify v = { .size = sizeof(v) };
	struct uhp_rec_hdr *rec;
	void *data;

	ASSERT_TRUE(fd >= 0);
	memset(payload, 0x5a, sizeof(payload));
	ASSERT_EQ(xioctl(fd, UHP_IOC_SEND, &s), 0);
	EXPECT_EQ(s.pos, 0);
	s.pos = 0;
	ASSERT_EQ(xioctl(fd, UHP_IOC_SEND, &s), 0);
	EXPECT_EQ(s.pos, UHP_REC_TOTAL(sizeof(payload)));

	v.pos = 0;
	EXPECT_EQ(xioctl(fd, UHP_IOC_VERIFY, &v), 0);
	EXPECT_EQ(v.len, sizeof(payload));
	v.len = 0;
	v.crc = 0;
	v.pos = 8;
	EXPECT_EQ(xioctl(fd, UHP_IOC_VERIFY, &v), -EINVAL);	/* misaligned */
	v.pos = 4096;
	EXPECT_EQ(xioctl(fd, UHP_IOC_VERIFY, &v), -ERANGE);	/* past write_pos */
	v.pos = 0;
	v.ring = 2;
	EXPECT_EQ(xioctl(fd, UHP_IOC_VERIFY, &v), -EINVAL);
	v.ring = 0;
	v.__reserved0 = 1;
	EXPECT_EQ(xioctl(fd, UHP_IOC_VERIFY, &v), -EINVAL);
	v.__reserved0 = 0;

	/* Damage the first record's payload through the mapping. */
	data = mmap(NULL, 1 << 17, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		    UHP_MMAP_OFF(0, UHP_PART_DATA));
	ASSERT_TRUE(data != MAP_FAILED);
	rec = data;
	/* A process's record relayed by the kernel: not a kernel producer's. */
	EXPECT_EQ(rec->flags & UHP_REC_F_KERNEL, 0);
	EXPECT_EQ(rec->type, 3);
	EXPECT_EQ(rec->seq, 9);
	((char *)(rec + 1))[50] ^= 1;
	EXPECT_EQ(xioctl(fd, UHP_IOC_VERIFY, &v), -EBADMSG);
	EXPECT_TRUE(v.crc != rec->crc);		/* reported even on mismatch */

	s.pos = 0;
	s.ring = 2;
	EXPECT_EQ(xioctl(fd, UHP_IOC_SEND, &s), -EINVAL);
	s.ring = 0;
	s.flags = 1;
	EXPECT_EQ(xioctl(fd, UHP_IOC_SEND, &s), -EINVAL);
	s.flags = 0;
	s.__reserved0 = 1;
	EXPECT_EQ(xioctl(fd, UHP_IOC_SEND, &s), -EINVAL);
	s.__reserved0 = 0;
	s.__reserved1 = 1;
	EXPECT_EQ(xioctl(fd, UHP_IOC_SEND, &s), -EINVAL);
	s.__reserved1 = 0;
	s.len = 1 << 16;			/* can never fit */
	EXPECT_EQ(xioctl(fd, UHP_IOC_SEND, &s), -EMSGSIZE);
	s.len = 10;
	s.buf = 16;				/* unreadable payload */
	EXPECT_EQ(xioctl(fd, UHP_IOC_SEND, &s), -EFAULT);
	/* ... which still left a discarded record covering its space. */
	rec = (struct uhp_rec_hdr *)((char *)data + 2 * UHP_REC_TOTAL(sizeof(payload)));
	EXPECT_EQ(rec->flags & UHP_REC_F_DISCARD, UHP_REC_F_DISCARD);
	EXPECT_EQ(rec->len, 10);
	s.buf = (uintptr_t)payload;
	s.pos = 0;
	ASSERT_EQ(xioctl(fd, UHP_IOC_SEND, &s), 0);
	EXPECT_EQ(s.pos, 2 * UHP_REC_TOTAL(sizeof(payload)) + UHP_REC_TOTAL(10));
}

TEST(send_until_full)
{
	int dev = dev_open_or_exit();
	int fd = create(dev, "io.full");
	char payload[1000] = { 0 };
	struct uhp_send s = {
		.size = sizeof(s), .len = sizeof(payload),
		.buf = (uintptr_t)payload,
	};
	unsigned int n = 0;
	long ret;

	ASSERT_TRUE(fd >= 0);
	while ((ret = xioctl(fd, UHP_IOC_SEND, &s)) == 0) {
		s.pos = 0;
		n++;
	}
	EXPECT_EQ(ret, -EAGAIN);
	EXPECT_EQ(n, (1 << 16) / UHP_REC_TOTAL(sizeof(payload)));
}

TEST_HARNESS_MAIN
