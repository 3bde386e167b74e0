// SPDX-License-Identifier: MIT
/*
 * Control path: thin wrappers around the /dev/uhp and channel-fd ioctls, and
 * the mapping of a channel's rings into this process.
 *
 * Order of things in this file:
 *   1. ABI layout checks (static asserts against <linux/uhp.h>)
 *   2. helpers: ioctl with -errno
 *   3. the backend of /dev/uhp channels (struct uhp_backend, channel.c)
 *   4. channel_map(): INFO, validate, mmap every ring, read each desc once
 *   5. the public calls, in the order of the ioctl table
 *
 * channel_map() trusts nothing it reads: the ABI version, the ring count, the
 * data size (power of two, sane bounds) and each ring's desc (magic, size,
 * index) are checked, and size/mask/salt are kept in the private handle. On
 * any error everything mapped so far is unmapped and the handle is freed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "uhp_internal.h"

/* ---- 1. ABI layout: the structs must match the comment in the uapi ---- */

_Static_assert(sizeof(struct uhp_rec_hdr) == UHP_REC_HDR_SIZE, "rec hdr size");
_Static_assert(offsetof(struct uhp_rec_hdr, len) == UHP_REC_CRC_HDR_OFF,
	       "crc starts at len");
_Static_assert(offsetof(struct uhp_rec_hdr, crc) ==
	       UHP_REC_CRC_HDR_OFF + UHP_REC_CRC_HDR_LEN, "crc covers up to crc");
_Static_assert(sizeof(struct uhp_prod_line) <= UHP_DESC_OFF - UHP_PROD_LINE_OFF,
	       "prod line fits before the desc");
_Static_assert(sizeof(struct uhp_cons_line) <= UHP_WAKE_LINE_OFF - UHP_CONS_LINE_OFF,
	       "cons line fits before the wake line");
_Static_assert(UHP_DESC_OFF + sizeof(struct uhp_ring_desc) <= UHP_PAGE_SIZE,
	       "desc fits");
_Static_assert(UHP_WAKE_LINE_OFF + sizeof(struct uhp_wake_line) <= UHP_PAGE_SIZE,
	       "wake line fits");
_Static_assert(UHP_REC_HDR_SIZE <= UHP_REC_ALIGN, "a header never wraps");

/* ---- 2. helpers ---- */

static int xioctl(int fd, unsigned long cmd, void *arg)
{
	int ret;

	do
		ret = ioctl(fd, cmd, arg);
	while (ret < 0 && errno == EINTR);
	return ret < 0 ? -errno : ret;
}

static bool is_pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

/* ---- 3. the backend ---- */

static int dev_notify(struct uhp_channel *ch)
{
	struct uhp_notify n = { .size = sizeof(n) };
	int ret = xioctl(ch->fd, UHP_IOC_NOTIFY, &n);

	return ret < 0 ? ret : 0;
}

/* The kernel's POLLIN is the state of the rings: no token needed. */
static uint32_t dev_wake_token(struct uhp_channel *ch)
{
	(void)ch;
	return 0;
}

static int dev_sleep(struct uhp_channel *ch, uint32_t token, uint64_t ns,
		     uint64_t *backoff)
{
	(void)token;
	(void)backoff;
	return uhp__poll_sleep(ch->fd, ns);
}

static uint32_t *dev_wake_word(struct uhp_channel *ch)
{
	(void)ch;
	return NULL;
}

static int dev_pollfd(struct uhp_channel *ch)
{
	return ch->fd;
}

static void dev_end_sleep(struct uhp_channel *ch)
{
	(void)ch;
}

static int dev_claim(struct uhp_channel *ch)
{
	struct uhp_claim c = { .size = sizeof(c) };
	int ret = xioctl(ch->fd, UHP_IOC_CLAIM, &c);

	if (ret < 0)	/* a module before UHP_FEAT_EXCL_RINGS: ENOTTY */
		return ret == -ENOTTY ? -EOPNOTSUPP : ret;
	return (int)c.ring;
}

static int dev_info(struct uhp_channel *ch, struct uhp_info *out,
		    struct uhp_ring_info *rings, unsigned cap)
{
	int ret;

	memset(out, 0, sizeof(*out));
	out->size = sizeof(*out);
	out->rings_cap = cap;
	out->rings_uptr = (uintptr_t)rings;
	ret = xioctl(ch->fd, UHP_IOC_INFO, out);
	return ret < 0 ? ret : 0;
}

static void dev_release(struct uhp_channel *ch)
{
	if (ch->fd >= 0)
		close(ch->fd);
	ch->fd = -1;
}

const struct uhp_backend uhp__dev_backend = {
	.name = "device",
	.notify = dev_notify,
	.wake_token = dev_wake_token,
	.sleep = dev_sleep,
	.wake_word = dev_wake_word,
	.pollfd = dev_pollfd,
	.end_sleep = dev_end_sleep,
	.claim = dev_claim,
	.info = dev_info,
	.release = dev_release,
};

/* ---- 4. mapping ---- */

static int check_info(const struct uhp_info *info)
{
	if (info->abi_version != UHP_ABI_VERSION)
		return -EPROTO;
	if (info->nr_rings == 0 || info->nr_rings > UHP_MAX_RINGS)
		return -EPROTO;
	if (!is_pow2(info->data_size) || info->data_size < UHP_MIN_DATA_SIZE ||
	    info->data_size > UHP_MAX_DATA_SIZE ||
	    info->data_size > SIZE_MAX / 2)
		return -EPROTO;
	if (info->page_size != UHP_PAGE_SIZE)
		return -EPROTO;
	if (!(info->features & UHP_FEAT_DOUBLE_MAP))
		return -EOPNOTSUPP;
	return 0;
}

static int map_ring(struct uhp_channel *ch, int fd, unsigned k,
		    const struct uhp_ring_info *ri)
{
	struct uhp_ring *r = &ch->rings[k];
	struct uhp_ring_desc desc;
	/*
	 * Only the kernel writes a kernel ring's prod page and data, and an
	 * observer's handle writes nothing.
	 */
	int prot = ri->flags & UHP_RING_F_KERNEL || !ch->max_total ?
		   PROT_READ : PROT_READ | PROT_WRITE;
	void *p;

	r->kernel = ri->flags & UHP_RING_F_KERNEL;
	r->excl = ri->flags & UHP_RING_F_EXCL;
	p = mmap(NULL, UHP_PAGE_SIZE, prot, MAP_SHARED, fd, (off_t)ri->prod_off);
	if (p == MAP_FAILED)
		return -errno;
	r->prod_page = p;
	/* Only the consumer writes the cons page; the kernel enforces it. */
	p = mmap(NULL, UHP_PAGE_SIZE, ch->consumer ? PROT_READ | PROT_WRITE : PROT_READ,
		 MAP_SHARED, fd, (off_t)ri->cons_off);
	if (p == MAP_FAILED)
		return -errno;
	r->cons_page = p;
	/* The kernel maps the data pages twice when asked for 2 * data_size. */
	p = mmap(NULL, 2 * ch->data_size, prot, MAP_SHARED, fd,
		 (off_t)ri->data_off);
	if (p == MAP_FAILED)
		return -errno;
	r->data = p;

	/* One private copy of the desc; it is never read again. */
	memcpy(&desc, (char *)r->prod_page + UHP_DESC_OFF, sizeof(desc));
	if (desc.magic != UHP_RING_MAGIC || desc.abi_version != UHP_ABI_VERSION ||
	    desc.data_size != ch->data_size || desc.ring_index != k)
		return -EPROTO;

	r->prod = (struct uhp_prod_line *)((char *)r->prod_page + UHP_PROD_LINE_OFF);
	r->cons = (struct uhp_cons_line *)((char *)r->cons_page + UHP_CONS_LINE_OFF);
	r->wake = (struct uhp_wake_line *)((char *)r->cons_page + UHP_WAKE_LINE_OFF);
	r->mask = ch->data_size - 1;
	r->salt = desc.salt;
	r->node = ri->node;
	if (ch->consumer) {
		/*
		 * Take over from a previous consumer: pairs with its
		 * store-release of read_pos. A misaligned value (corrupted
		 * by a peer) is rounded up; stall recovery handles the rest.
		 */
		uint64_t rp = __atomic_load_n(&r->cons->read_pos, __ATOMIC_ACQUIRE);

		r->records_base = __atomic_load_n(&r->cons->records, __ATOMIC_RELAXED);

		r->rpos = (rp + UHP_REC_ALIGN - 1) & ~(uint64_t)(UHP_REC_ALIGN - 1);
	}
	return 0;
}

/* On error the handle is gone but fd is still open: the caller closes it. */
static int channel_map(int fd, struct uhp_channel **out)
{
	struct uhp_info info = { .size = sizeof(info) };
	struct uhp_ring_info *ri = NULL;
	struct uhp_channel *ch;
	int ret;

	ret = xioctl(fd, UHP_IOC_INFO, &info);
	if (ret < 0)
		return ret;
	ret = check_info(&info);
	if (ret)
		return ret;

	ri = calloc(info.nr_rings, sizeof(*ri));
	if (!ri)
		return -ENOMEM;
	{
		uint32_t nr = info.nr_rings;

		memset(&info, 0, sizeof(info));
		info.size = sizeof(info);
		info.rings_cap = nr;
		info.rings_uptr = (uintptr_t)ri;
		ret = xioctl(fd, UHP_IOC_INFO, &info);
		if (ret < 0)
			goto out_free_ri;
		ret = check_info(&info);
		if (!ret && info.nr_rings != nr)
			ret = -EPROTO;
		if (ret)
			goto out_free_ri;
	}

	ch = uhp__channel_alloc(info.nr_rings, &uhp__dev_backend);
	if (!ch) {
		ret = -ENOMEM;
		goto out_free_ri;
	}
	ch->data_size = info.data_size;
	ch->consumer = info.flags & UHP_INFO_F_CONSUMER;
	/*
	 * An observer (UHP_ATTACH_RDONLY) maps read-only and sends nothing;
	 * a consume-only consumer maps all but its cons page read-only.
	 */
	ch->max_total = info.flags & (UHP_INFO_F_RDONLY | UHP_INFO_F_CONSUME_ONLY) ?
			0 : info.data_size;
	for (unsigned k = 0; k < info.nr_rings; k++) {
		ret = map_ring(ch, fd, k, &ri[k]);
		if (ret)
			goto out_free_ch;
	}
	ret = uhp__channel_index_nodes(ch);
	if (ret)
		goto out_free_ch;
	free(ri);
	ch->fd = fd;
	*out = ch;
	return 0;

out_free_ch:
	uhp__channel_free(ch);	/* fd is still -1 there: not closed */
out_free_ri:
	free(ri);
	return ret;
}

/* ---- 5. public calls ---- */

UHP_API int uhp_open(void)
{
	int fd = open(UHP_DEVICE_PATH, O_RDWR | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

UHP_API int uhp_create(int dev, const char *name,
		       const struct uhp_create_opts *opts,
		       struct uhp_channel **out)
{
	return uhp__create(dev, name, opts, 0, out);
}

/* uhp_create() with more UHP_CREATE_* flags than its opts can say. */
int uhp__create(int dev, const char *name, const struct uhp_create_opts *opts,
		uint32_t flags, struct uhp_channel **out)
{
	static const struct uhp_create_opts defaults = UHP_CREATE_OPTS_INIT;
	struct uhp_create c = { .size = sizeof(c), .flags = flags };
	int fd, ret;

	if (!out)
		return -EINVAL;
	ret = uhp__name_copy(c.name, name);
	if (ret)
		return ret;
	if (!opts)
		opts = &defaults;
	c.ring_size = opts->ring_size ? opts->ring_size : UHP_DEFAULT_RING_SIZE;
	if (!is_pow2(c.ring_size))
		return -EINVAL;
	c.mode = opts->mode ? opts->mode : UHP_DEFAULT_MODE;
	if (c.mode & ~0777U)
		return -EINVAL;
	if (opts->node >= 0) {
		c.flags |= UHP_CREATE_NODE;
		c.node = opts->node;
	} else if (opts->node != -1) {
		return -EINVAL;
	}
	if (opts->consumer)
		c.flags |= UHP_CREATE_CONSUMER;
	if (opts->kernel_rings)
		c.flags |= UHP_CREATE_KERNEL_RINGS;
	if (opts->excl_rings > UHP_EXCL_RINGS_MAX)
		return -EINVAL;
	c.excl_rings = opts->excl_rings;

	fd = xioctl(dev, UHP_IOC_CREATE, &c);
	if (fd < 0)
		return fd;
	ret = channel_map(fd, out);
	if (ret) {
		close(fd);
		/* We named it: take the name back so a retry can succeed. */
		uhp_unlink(dev, name);
	}
	return ret;
}

UHP_API int uhp_attach(int dev, const char *name, unsigned flags,
		       struct uhp_channel **out)
{
	struct uhp_attach a = { .size = sizeof(a), .flags = flags };
	int fd, ret;

	if (!out || (flags & ~UHP_ATTACH_FLAGS))
		return -EINVAL;
	ret = uhp__name_copy(a.name, name);
	if (ret)
		return ret;
	fd = xioctl(dev, UHP_IOC_ATTACH, &a);
	if (fd < 0)
		return fd;
	ret = channel_map(fd, out);
	if (ret)
		close(fd);
	return ret;
}

UHP_API int uhp_list(int dev, unsigned start, struct uhp_list_entry *out,
		     unsigned cap, unsigned *total)
{
	struct uhp_list l = {
		.size = sizeof(l), .entry_size = sizeof(*out), .cap = cap,
		.start = start, .entries_uptr = (uintptr_t)out,
	};
	int ret;

	if (cap && !out)
		return -EINVAL;
	ret = xioctl(dev, UHP_IOC_LIST, &l);
	if (ret < 0)
		return ret;
	if (total)
		*total = l.total;
	return (int)l.count;
}

UHP_API int uhp_unlink(int dev, const char *name)
{
	struct uhp_unlink u = { .size = sizeof(u) };
	int ret = uhp__name_copy(u.name, name);

	if (ret)
		return ret;
	ret = xioctl(dev, UHP_IOC_UNLINK, &u);
	return ret < 0 ? ret : 0;
}

UHP_API int uhp_kernel_send(struct uhp_channel *ch, unsigned ring,
			    const void *buf, uint32_t len,
			    const struct uhp_meta *meta, uint64_t *pos_out)
{
	struct uhp_send s = {
		.size = sizeof(s),
		.ring = ring,
		.buf = (uintptr_t)buf,
		.len = len,
	};
	int ret;

	if (ch->fd < 0)
		return -EOPNOTSUPP;
	if (ring >= ch->nr_rings || (!buf && len))
		return -EINVAL;
	if (meta) {
		s.type = meta->type;
		s.src = meta->src;
		s.dst = meta->dst;
		s.seq = meta->seq;
	}
	ret = xioctl(ch->fd, UHP_IOC_SEND, &s);
	if (ret < 0)
		return ret;
	if (pos_out)
		*pos_out = s.pos;
	return 0;
}

UHP_API int uhp_verify(struct uhp_channel *ch, unsigned ring, uint64_t pos,
		       uint32_t *len_out, uint32_t *crc_out)
{
	struct uhp_verify v = { .size = sizeof(v), .ring = ring, .pos = pos };
	int ret;

	if (ch->fd < 0)
		return -EOPNOTSUPP;
	if (ring >= ch->nr_rings)
		return -EINVAL;
	ret = xioctl(ch->fd, UHP_IOC_VERIFY, &v);
	if (ret < 0 && ret != -EBADMSG)
		return ret;
	/* on a mismatch the kernel still reports what it computed */
	if (len_out)
		*len_out = v.len;
	if (crc_out)
		*crc_out = v.crc;
	return ret < 0 ? ret : 0;
}
