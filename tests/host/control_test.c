// SPDX-License-Identifier: MIT
/*
 * control_test: the control path against a fake kernel. The test is linked
 * with -Wl,--wrap=ioctl, so every ioctl() the library makes on the fake
 * device or on a fake channel fd lands in __wrap_ioctl below; a channel fd
 * is a memfd laid out at the UHP_MMAP_OFF() offsets (no double mapping, so
 * records here never cross the end of the data area).
 *
 * Checked: names and options are validated before any ioctl; the argument
 * structs are filled as the uapi says (size first, reserved zero); what
 * INFO and the ring descs report is validated (each bad field gives its
 * error) and every failure leaves no fd and no mapping behind (and a failed
 * create unlinks its name); send/verify/notify marshal both ways; uhp_wait
 * sleeps in poll() on the channel fd and a NOTIFY wakes it.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"
#include "tap.h"

#define FAKE_DS		8192ULL
#define FAKE_RINGS	2
#define FAKE_SALT0	0x5A5A123412345678ULL

int __real_ioctl(int fd, unsigned long req, ...);

static struct {
	int dev;			/* the fake /dev/uhp */
	int memfd;			/* the channel's pages */
	int sealed;			/* the same, write-sealed: mmap fails */
	int calls;			/* ioctls seen on fake fds */
	int info_calls;
	struct uhp_create create;
	struct uhp_attach attach;
	struct uhp_unlink unlink;
	struct uhp_info info_in[2];	/* the first two INFO arguments */
	struct uhp_send send;
	struct uhp_verify verify;
	int notifies;
	/* what the fake answers */
	struct uhp_info info;
	int nr_rings_second;		/* nr_rings in the second INFO, if != 0 */
	int open_errno;			/* CREATE/ATTACH fail with this */
	int info_errno;
	int send_errno;
	int verify_ret;			/* 0 or -errno */
	int chan_is_sealed;		/* hand out an fd that cannot be mapped */
} fk;

static bool is_fake_chan(int fd)
{
	struct stat a, b;

	if (fstat(fd, &a))
		return false;
	if (!fstat(fk.memfd, &b) && a.st_ino == b.st_ino && a.st_dev == b.st_dev)
		return true;
	return !fstat(fk.sealed, &b) && a.st_ino == b.st_ino && a.st_dev == b.st_dev;
}

static int fake_fail(int e)
{
	errno = e;
	return -1;
}

int __wrap_ioctl(int fd, unsigned long req, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, req);
	arg = va_arg(ap, void *);
	va_end(ap);

	if (fd == fk.dev) {
		fk.calls++;
		switch (req) {
		case UHP_IOC_CREATE:
		case UHP_IOC_ATTACH:
			if (req == UHP_IOC_CREATE)
				memcpy(&fk.create, arg, sizeof(fk.create));
			else
				memcpy(&fk.attach, arg, sizeof(fk.attach));
			if (fk.open_errno)
				return fake_fail(fk.open_errno);
			if (fk.chan_is_sealed)
				return fcntl(fk.sealed, F_DUPFD_CLOEXEC, 3);
			return fcntl(fk.memfd, F_DUPFD_CLOEXEC, 3);
		case UHP_IOC_UNLINK:
			memcpy(&fk.unlink, arg, sizeof(fk.unlink));
			return 0;
		}
		return fake_fail(ENOTTY);
	}
	if (req == UHP_IOC_NOTIFY) {
		struct uhp_notify *n = arg;
		uint64_t one = 1;

		if (n->size != sizeof(*n) || n->flags || n->__reserved)
			return fake_fail(EINVAL);
		fk.notifies++;
		/* t_poll swaps the channel fd for an eventfd: wake its poll() */
		if (!is_fake_chan(fd) && write(fd, &one, sizeof(one)) != sizeof(one))
			return -1;
		return 0;
	}
	if (!is_fake_chan(fd))
		return __real_ioctl(fd, req, arg);

	fk.calls++;
	switch (req) {
	case UHP_IOC_INFO: {
		struct uhp_info *in = arg, out = fk.info;
		struct uhp_ring_info *ri = (void *)(uintptr_t)in->rings_uptr;

		if (fk.info_calls < 2)
			fk.info_in[fk.info_calls] = *in;
		fk.info_calls++;
		if (fk.info_errno)
			return fake_fail(fk.info_errno);
		if (in->size != sizeof(*in) || in->flags || (in->rings_cap && !ri))
			return fake_fail(EINVAL);
		if (fk.info_calls == 2 && fk.nr_rings_second)
			out.nr_rings = (uint32_t)fk.nr_rings_second;
		for (uint32_t k = 0; k < in->rings_cap && k < out.nr_rings; k++)
			ri[k] = (struct uhp_ring_info){ .node = (int32_t)k,
				.prod_off = UHP_MMAP_OFF(k, UHP_PART_PROD),
				.cons_off = UHP_MMAP_OFF(k, UHP_PART_CONS),
				.data_off = UHP_MMAP_OFF(k, UHP_PART_DATA) };
		out.size = in->size;
		out.rings_cap = in->rings_cap;
		out.rings_uptr = in->rings_uptr;
		*in = out;
		return 0;
	}
	case UHP_IOC_SEND: {
		struct uhp_send *s = arg;

		memcpy(&fk.send, s, sizeof(fk.send));
		if (fk.send_errno)
			return fake_fail(fk.send_errno);
		s->pos = 4242;
		return 0;
	}
	case UHP_IOC_VERIFY: {
		struct uhp_verify *v = arg;

		memcpy(&fk.verify, v, sizeof(fk.verify));
		v->len = 17;
		v->crc = fk.verify_ret ? 0xBAD : 0xC0FFEE;	/* copied out on -EBADMSG too */
		if (fk.verify_ret)
			return fake_fail(-fk.verify_ret);
		return 0;
	}
	}
	return fake_fail(ENOTTY);
}

/* ---- the fake channel's pages ---- */

static void desc_write(unsigned k, uint64_t magic, uint64_t ds, uint32_t index)
{
	struct uhp_ring_desc d = {
		.magic = magic, .data_size = ds, .salt = FAKE_SALT0 + k,
		.abi_version = UHP_ABI_VERSION, .node = (int32_t)k, .ring_index = index,
	};

	if (pwrite(fk.memfd, &d, sizeof(d), (off_t)(UHP_MMAP_OFF(k, UHP_PART_PROD) +
						    UHP_DESC_OFF)) != sizeof(d))
		tap_bail("pwrite desc");
}

/* A good channel: 2 rings of 8 KiB, this fd is the consumer. */
static void fake_reset(void)
{
	int dev = fk.dev, memfd = fk.memfd, sealed = fk.sealed;

	memset(&fk, 0, sizeof(fk));
	fk.dev = dev;
	fk.memfd = memfd;
	fk.sealed = sealed;
	fk.info = (struct uhp_info){
		.flags = UHP_INFO_F_CONSUMER, .abi_version = UHP_ABI_VERSION,
		.nr_rings = FAKE_RINGS, .data_size = FAKE_DS, .page_size = UHP_PAGE_SIZE,
		.features = UHP_FEAT_NUMA_RINGS | UHP_FEAT_DOUBLE_MAP |
			    UHP_FEAT_NEED_WAKEUP | UHP_FEAT_KERNEL_SEND | UHP_FEAT_VERIFY,
		.mode = 0600, .name = "fake",
	};
	for (unsigned k = 0; k < FAKE_RINGS; k++)
		desc_write(k, UHP_RING_MAGIC, FAKE_DS, k);
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	while (d && (e = readdir(d)))
		n += e->d_name[0] != '.';
	if (d)
		closedir(d);
	return n;
}

static int count_fake_maps(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	int n = 0;

	while (f && fgets(line, sizeof(line), f))
		n += strstr(line, "uhp-fake") != NULL;
	if (f)
		fclose(f);
	return n;
}

/* ---- tests ---- */

static void t_names_and_opts(void)
{
	struct uhp_create_opts o = UHP_CREATE_OPTS_INIT;
	struct uhp_channel *ch = NULL;
	char long_name[UHP_NAME_MAX + 1];
	int bad = 0;

	memset(long_name, 'a', sizeof(long_name));
	long_name[UHP_NAME_MAX] = 0;
	fake_reset();
	bad += uhp_attach(fk.dev, NULL, 0, &ch) != -EINVAL;
	bad += uhp_attach(fk.dev, "", 0, &ch) != -EINVAL;
	bad += uhp_attach(fk.dev, ".hidden", 0, &ch) != -EINVAL;
	bad += uhp_attach(fk.dev, "a b", 0, &ch) != -EINVAL;
	bad += uhp_attach(fk.dev, "a/b", 0, &ch) != -EINVAL;
	bad += uhp_unlink(fk.dev, long_name) != -ENAMETOOLONG;	/* 64 bytes */
	long_name[UHP_NAME_MAX - 1] = 0;
	bad += uhp_attach(fk.dev, "x", 0x80, &ch) != -EINVAL;	/* unknown flag */
	o.ring_size = 3;
	bad += uhp_create(fk.dev, "x", &o, &ch) != -EINVAL;
	o = (struct uhp_create_opts)UHP_CREATE_OPTS_INIT;
	o.mode = 01000;
	bad += uhp_create(fk.dev, "x", &o, &ch) != -EINVAL;
	o = (struct uhp_create_opts)UHP_CREATE_OPTS_INIT;
	o.node = -2;
	bad += uhp_create(fk.dev, "x", &o, &ch) != -EINVAL;
	tap_ok(bad == 0 && fk.calls == 0,
	       "bad names, flags and options are refused before any ioctl (%d wrong, %d ioctls)",
	       bad, fk.calls);
	tap_ok(uhp_unlink(fk.dev, long_name) == 0 && fk.calls == 1 &&
	       strcmp(fk.unlink.name, long_name) == 0 && fk.unlink.size == sizeof(fk.unlink) &&
	       !fk.unlink.flags && !fk.unlink.__reserved[0] && !fk.unlink.__reserved[1],
	       "a 63-byte name goes through; UNLINK's struct is size-first, reserved zero");

	fk.open_errno = EEXIST;
	tap_is(uhp_create(fk.dev, "chan.1", NULL, &ch), -EEXIST, "CREATE's errno comes back negated");
	tap_ok(fk.create.size == sizeof(fk.create) && fk.create.flags == 0 &&
	       fk.create.mode == 0600 && fk.create.node == 0 &&
	       fk.create.ring_size == UHP_DEFAULT_RING_SIZE &&
	       strcmp(fk.create.name, "chan.1") == 0 &&
	       !fk.create.excl_rings && !fk.create.__reserved0 && !fk.create.__reserved[0],
	       "opts NULL: 1 MiB per ring, mode 0600, a ring per node, no consumer");
	o = (struct uhp_create_opts)UHP_CREATE_OPTS_INIT;
	o.node = 1;
	o.consumer = true;
	o.ring_size = 1 << 16;
	o.mode = 0640;
	uhp_create(fk.dev, "chan.2", &o, &ch);
	tap_ok(fk.create.flags == (UHP_CREATE_NODE | UHP_CREATE_CONSUMER) &&
	       fk.create.node == 1 && fk.create.ring_size == 1 << 16 && fk.create.mode == 0640,
	       "node >= 0 and consumer become UHP_CREATE_NODE | UHP_CREATE_CONSUMER");
	uhp_attach(fk.dev, "chan.3", UHP_ATTACH_CONSUMER, &ch);
	tap_ok(fk.attach.size == sizeof(fk.attach) && fk.attach.flags == UHP_ATTACH_CONSUMER &&
	       strcmp(fk.attach.name, "chan.3") == 0, "ATTACH carries the name and the flag");
}

static struct uhp_channel *attach_ok(void)
{
	struct uhp_channel *ch = NULL;
	int ret = uhp_attach(fk.dev, "fake", UHP_ATTACH_CONSUMER, &ch);

	if (ret)
		tap_bail("attach to the fake channel: %d", ret);
	return ch;
}

static void t_attach(void)
{
	int fds = count_fds(), maps = count_fake_maps();
	struct uhp_channel *ch;
	struct uhp_info info;
	struct uhp_ring_info ri[4];
	uint8_t buf[64];
	struct uhp_meta m;

	fake_reset();
	ch = attach_ok();
	tap_ok(fk.info_in[0].rings_cap == 0 && fk.info_in[0].rings_uptr == 0 &&
	       fk.info_in[1].rings_cap == FAKE_RINGS && fk.info_in[1].rings_uptr != 0 &&
	       fk.info_in[0].size == sizeof(struct uhp_info),
	       "INFO asked twice: ring count first, then the ring table");
	tap_ok(uhp_nr_rings(ch) == FAKE_RINGS && ch->consumer && ch->data_size == FAKE_DS &&
	       count_fake_maps() == maps + 3 * FAKE_RINGS && count_fds() == fds + 1,
	       "attached: 2 rings, consumer, a prod, a cons and a data mapping per ring, one fd");
	tap_ok(t_ring(ch, 0)->salt == FAKE_SALT0 && t_ring(ch, 1)->salt == FAKE_SALT0 + 1 &&
	       t_ring(ch, 1)->mask == FAKE_DS - 1 && t_ring(ch, 1)->node == 1,
	       "salt, mask and node kept privately per ring");
	tap_ok(uhp_send(ch, "hello", 5, &(struct uhp_meta){ .seq = 3 }) == 0 &&
	       uhp_recv(ch, buf, sizeof(buf), &m) == 5 && memcmp(buf, "hello", 5) == 0 &&
	       m.seq == 3, "a record round-trips through the mapped pages");
	tap_ok(uhp_info(ch, &info, ri, 4) == 0 && info.nr_rings == FAKE_RINGS &&
	       strcmp(info.name, "fake") == 0 && ri[1].data_off == UHP_MMAP_OFF(1, UHP_PART_DATA),
	       "uhp_info passes the kernel's answer through");
	tap_ok(uhp_channel_fd(ch) >= 0 && is_fake_chan(uhp_channel_fd(ch)),
	       "uhp_channel_fd is the fd the kernel returned");

	/* slow-path ioctls */
	{
		uint64_t pos = 0;
		uint32_t len = 0, crc = 0;
		struct uhp_meta sm = { .seq = 99, .src = 1, .dst = 2, .type = 3 };

		tap_ok(uhp_kernel_send(ch, 1, "abc", 3, &sm, &pos) == 0 && pos == 4242 &&
		       fk.send.size == sizeof(fk.send) && fk.send.ring == 1 && fk.send.len == 3 &&
		       fk.send.seq == 99 && fk.send.src == 1 && fk.send.dst == 2 &&
		       fk.send.type == 3 && fk.send.buf != 0 && !fk.send.flags &&
		       !fk.send.__reserved0 && !fk.send.__reserved1 && fk.send.pos == 0,
		       "kernel_send fills struct uhp_send and returns pos");
		fk.send_errno = EAGAIN;
		tap_ok(uhp_kernel_send(ch, 0, "abc", 3, NULL, NULL) == -EAGAIN &&
		       uhp_kernel_send(ch, 2, "abc", 3, NULL, NULL) == -EINVAL,
		       "kernel_send: -EAGAIN passed through, a bad ring refused");
		tap_ok(uhp_verify(ch, 1, 640, &len, &crc) == 0 && len == 17 && crc == 0xC0FFEE &&
		       fk.verify.ring == 1 && fk.verify.pos == 640 && !fk.verify.len &&
		       !fk.verify.crc && fk.verify.size == sizeof(fk.verify),
		       "verify sends ring and pos, returns len and crc");
		fk.verify_ret = -EBADMSG;
		tap_ok(uhp_verify(ch, 0, 0, &len, &crc) == -EBADMSG && crc == 0xBAD && len == 17,
		       "verify: -EBADMSG passed through with the kernel's CRC");
	}
	uhp_close(ch);
	tap_ok(count_fds() == fds && count_fake_maps() == maps,
	       "uhp_close unmaps everything and closes the fd");
}

/* Every bad answer: its error, and nothing left behind. */
static void t_validation(void)
{
	struct {
		const char *what;
		int expect;
	} cases[] = {
		{ "abi_version 2", -EPROTO },
		{ "nr_rings 0", -EPROTO },
		{ "nr_rings 5000", -EPROTO },
		{ "data_size 6000 (not a power of two)", -EPROTO },
		{ "data_size 2 KiB (under a page)", -EPROTO },
		{ "data_size 2^41", -EPROTO },
		{ "page_size 8192", -EPROTO },
		{ "no UHP_FEAT_DOUBLE_MAP", -EOPNOTSUPP },
		{ "ring count changes between the INFO calls", -EPROTO },
		{ "INFO fails with EFAULT", -EFAULT },
		{ "bad magic in ring 1's desc", -EPROTO },
		{ "desc data_size differs", -EPROTO },
		{ "desc ring_index wrong", -EPROTO },
		{ "the channel fd cannot be mapped writable", -EPERM },
	};
	int fds = count_fds(), maps = count_fake_maps();

	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct uhp_channel *ch = NULL;
		int ret;

		fake_reset();
		switch (i) {
		case 0: fk.info.abi_version = 2; break;
		case 1: fk.info.nr_rings = 0; break;
		case 2: fk.info.nr_rings = 5000; break;
		case 3: fk.info.data_size = 6000; break;
		case 4: fk.info.data_size = 2048; break;
		case 5: fk.info.data_size = 1ULL << 41; break;
		case 6: fk.info.page_size = 8192; break;
		case 7: fk.info.features &= ~UHP_FEAT_DOUBLE_MAP; break;
		case 8: fk.nr_rings_second = 3; break;
		case 9: fk.info_errno = EFAULT; break;
		case 10: desc_write(1, 0x1234, FAKE_DS, 1); break;
		case 11: desc_write(1, UHP_RING_MAGIC, FAKE_DS * 2, 1); break;
		case 12: desc_write(1, UHP_RING_MAGIC, FAKE_DS, 0); break;
		case 13: fk.chan_is_sealed = 1; break;
		}
		ret = uhp_create(fk.dev, "victim", NULL, &ch);
		tap_ok(ret == cases[i].expect && count_fds() == fds &&
		       count_fake_maps() == maps && strcmp(fk.unlink.name, "victim") == 0,
		       "%s: create returns %d, no fd or mapping left, name unlinked",
		       cases[i].what, ret);
	}
	fake_reset();
}

struct waiter {
	pthread_t th;
	struct uhp_channel *ch;
	int ret;
	double ms;
};

static void *waiter_main(void *arg)
{
	struct waiter *w = arg;
	uint64_t t0 = t_now_ns();

	w->ret = uhp_wait(w->ch, 5000);
	w->ms = (double)(t_now_ns() - t0) / 1e6;
	return NULL;
}

static void t_poll(void)
{
	struct uhp_channel *ch;
	struct waiter w;
	uint64_t t0, cnt;
	int efd, seen = 0;
	uint8_t buf[16];

	fake_reset();
	ch = attach_ok();
	/* From here the channel fd is an eventfd: NOTIFY writes it, poll reads it. */
	efd = eventfd(0, EFD_CLOEXEC);
	close(ch->fd);
	ch->fd = efd;
	uhp_set_stall_timeout_ns(ch, 0);	/* sleeps up to 1 s per poll */

	w = (struct waiter){ .ch = ch };
	pthread_create(&w.th, NULL, waiter_main, &w);
	t0 = t_now_ns();
	while (t_now_ns() - t0 < 3000000000ULL &&
	       !(seen = t_ring(ch, 0)->wake->need_wakeup && t_ring(ch, 1)->wake->need_wakeup))
		t_sleep_ms(1);
	t_sleep_ms(100);	/* let it sleep in poll() */
	uhp_send(ch, "ping", 4, NULL);
	pthread_join(w.th, NULL);
	tap_ok(seen && fk.notifies == 1 && w.ret == 1 && w.ms >= 100 && w.ms < 900,
	       "a producer's NOTIFY wakes the consumer out of poll() (%d notify, %d after %.1f ms)",
	       fk.notifies, w.ret, w.ms);
	tap_is(uhp_recv(ch, buf, sizeof(buf), NULL), 4, "the record is there after the wakeup");

	if (read(efd, &cnt, sizeof(cnt)) != sizeof(cnt))
		tap_diag("eventfd read failed");
	t0 = t_now_ns();
	tap_ok(uhp_wait(ch, 50) == -ETIMEDOUT && t_now_ns() - t0 >= 50000000ULL,
	       "poll() times out: uhp_wait returns -ETIMEDOUT after 50 ms");
	close(efd);
	ch->fd = efd;		/* now a closed fd */
	tap_is(uhp_wait(ch, 100), -EBADF, "a dead channel fd is -EBADF, not a hang");
	ch->fd = -1;
	uhp_close(ch);
}

int main(void)
{
	int real_null;
	int ret;

	tap_plan(37);
	fk.dev = open("/dev/null", O_RDWR | O_CLOEXEC);
	real_null = open("/dev/null", O_RDWR | O_CLOEXEC);
	fk.memfd = memfd_create("uhp-fake", MFD_CLOEXEC);
	fk.sealed = memfd_create("uhp-fake", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fk.dev < 0 || real_null < 0 || fk.memfd < 0 || fk.sealed < 0 ||
	    /* the last part of the last ring is its cons page */
	    ftruncate(fk.memfd, (off_t)(UHP_MMAP_OFF(FAKE_RINGS - 1, UHP_PART_CONS) +
					UHP_PAGE_SIZE)) ||
	    ftruncate(fk.sealed, (off_t)(UHP_MMAP_OFF(FAKE_RINGS - 1, UHP_PART_CONS) +
					 UHP_PAGE_SIZE)) ||
	    fcntl(fk.sealed, F_ADD_SEALS, F_SEAL_WRITE))
		tap_bail("fake kernel setup");

	ret = uhp_open();
	if (access(UHP_DEVICE_PATH, F_OK) == 0) {
		tap_skip("/dev/uhp exists here", "uhp_open without the module is -ENOENT");
		if (ret >= 0)
			close(ret);
	} else {
		tap_is(ret, -ENOENT, "uhp_open without the module is -ENOENT");
	}
	tap_ok(uhp_unlink(real_null, "x") == -ENOTTY && uhp_unlink(-1, "x") == -EBADF,
	       "ioctl errors of a real fd come back as -errno (-ENOTTY, -EBADF)");

	t_names_and_opts();
	t_attach();
	t_validation();
	t_poll();
	return tap_done();
}
