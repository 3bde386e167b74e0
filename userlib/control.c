// SPDX-License-Identifier: MIT
/*
 * Control path: thin wrappers around the /dev/uhp and channel-fd ioctls, and
 * the mapping of a channel's rings into this process.
 *
 * Order of things in this file:
 *   1. ABI layout checks (static asserts against <linux/uhp.h>)
 *   2. helpers: ioctl with -errno, name validation
 *   3. channel handle allocation/free (also used by memring.c)
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

/* Same rule as the kernel: 1..UHP_NAME_MAX-1 of [A-Za-z0-9._-], no leading '.' */
int uhp__name_copy(char dst[UHP_NAME_MAX], const char *name)
{
	size_t n;

	if (!name)
		return -EINVAL;
	n = strnlen(name, UHP_NAME_MAX);
	if (n >= UHP_NAME_MAX)
		return -ENAMETOOLONG;
	if (n == 0 || name[0] == '.')
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
			return -EINVAL;
	}
	memset(dst, 0, UHP_NAME_MAX);
	memcpy(dst, name, n);
	return 0;
}

static bool is_pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

/* ---- 3. handle ---- */

struct uhp_channel *uhp__channel_alloc(unsigned nr_rings)
{
	struct uhp_channel *ch;
	size_t sz = sizeof(*ch) + (size_t)nr_rings * sizeof(ch->rings[0]);

	/* aligned_alloc: the stat groups are cache-line aligned */
	sz = (sz + 63) & ~(size_t)63;
	ch = aligned_alloc(64, sz);
	if (!ch)
		return NULL;
	memset(ch, 0, sz);
	ch->fd = -1;
	ch->claimed = -1;
	ch->rr_left = UHP_RR_QUANTUM;
	ch->nr_rings = nr_rings;
	ch->stall_timeout_ns = UHP_DEFAULT_STALL_TIMEOUT_NS;
	return ch;
}

/* Build node -> ring: a producer looks up the ring of the node it runs on. */
int uhp__channel_index_nodes(struct uhp_channel *ch)
{
	int max = -1;

	for (unsigned k = 0; k < ch->nr_rings; k++)
		if (ch->rings[k].node > max && ch->rings[k].node < 4096)
			max = ch->rings[k].node;
	if (max < 0)
		return 0;	/* no usable node ids: everyone uses ring 0 */
	ch->node_ring = malloc((size_t)(max + 1) * sizeof(ch->node_ring[0]));
	if (!ch->node_ring)
		return -ENOMEM;
	for (int n = 0; n <= max; n++)
		ch->node_ring[n] = -1;
	for (unsigned k = 0; k < ch->nr_rings; k++) {
		int n = ch->rings[k].node;

		/* Producers never write kernel rings, nor unclaimed
		 * exclusive ones. */
		if (ch->rings[k].kernel || ch->rings[k].excl)
			continue;
		if (n >= 0 && n <= max && ch->node_ring[n] < 0)
			ch->node_ring[n] = (int16_t)k;
	}
	ch->nr_node_ring = (unsigned)max + 1;
	uhp__channel_pick_producer_ring(ch);
	return 0;
}

/* Producers of a new handle use the ring of the caller's node, or ring 0. */
void uhp__channel_pick_producer_ring(struct uhp_channel *ch)
{
	unsigned cpu, node;

	ch->prod_ring = 0;
	if (getcpu(&cpu, &node) || node >= ch->nr_node_ring ||
	    ch->node_ring[node] < 0)
		return;
	ch->prod_ring = (unsigned)ch->node_ring[node];
	/* informational: who produces where (an observer maps it read-only) */
	if (ch->max_total)
		__atomic_store_n(&ch->rings[ch->prod_ring].prod->producer_cpu,
				 cpu, __ATOMIC_RELAXED);
}

void uhp__channel_free(struct uhp_channel *ch)
{
	uhp__claim_forget(ch);
	for (unsigned k = 0; k < ch->nr_rings; k++) {
		struct uhp_ring *r = &ch->rings[k];

		if (r->data)
			munmap(r->data, 2 * ch->data_size);
		if (r->prod_page)
			munmap(r->prod_page, UHP_PAGE_SIZE);
		if (r->cons_page)
			munmap(r->cons_page, UHP_PAGE_SIZE);
	}
	if (ch->fd >= 0)
		close(ch->fd);
	if (ch->arena)
		uhp__arena_release(ch);
	free(ch->node_ring);
	free(ch);
}

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

	ch = uhp__channel_alloc(info.nr_rings);
	if (!ch) {
		ret = -ENOMEM;
		goto out_free_ri;
	}
	ch->data_size = info.data_size;
	ch->consumer = info.flags & UHP_INFO_F_CONSUMER;
	/* An observer (UHP_ATTACH_RDONLY) maps read-only and sends nothing. */
	ch->max_total = info.flags & UHP_INFO_F_RDONLY ? 0 : info.data_size;
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
	static const struct uhp_create_opts defaults = UHP_CREATE_OPTS_INIT;
	struct uhp_create c = { .size = sizeof(c) };
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

UHP_API int uhp_info(struct uhp_channel *ch, struct uhp_info *out,
		     struct uhp_ring_info *rings, unsigned cap)
{
	int ret;

	if (!ch || !out || (cap && !rings))
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	out->size = sizeof(*out);
	if (ch->fd < 0) {
		/* in-memory channel: report what the handle knows */
		out->flags = ch->consumer ? UHP_INFO_F_CONSUMER : 0;
		out->abi_version = UHP_ABI_VERSION;
		out->nr_rings = ch->nr_rings;
		out->features = UHP_FEAT_NUMA_RINGS | UHP_FEAT_DOUBLE_MAP |
				UHP_FEAT_NEED_WAKEUP |
				(ch->arena ? UHP_FEAT_EXCL_RINGS : 0);
		out->data_size = ch->data_size;
		out->page_size = UHP_PAGE_SIZE;
		out->copy_path = UHP_COPY_GENERIC;
		out->rings_cap = cap;
		for (unsigned k = 0; k < cap && k < ch->nr_rings; k++) {
			memset(&rings[k], 0, sizeof(rings[k]));
			rings[k].node = ch->rings[k].node;
			/* (an arena's claims live in its header: not shown) */
			rings[k].flags = ch->rings[k].excl ? UHP_RING_F_EXCL : 0;
			rings[k].prod_off = UHP_MMAP_OFF(k, UHP_PART_PROD);
			rings[k].cons_off = UHP_MMAP_OFF(k, UHP_PART_CONS);
			rings[k].data_off = UHP_MMAP_OFF(k, UHP_PART_DATA);
		}
		return 0;
	}
	out->rings_cap = cap;
	out->rings_uptr = (uintptr_t)rings;
	ret = xioctl(ch->fd, UHP_IOC_INFO, out);
	return ret < 0 ? ret : 0;
}

UHP_API void uhp_close(struct uhp_channel *ch)
{
	if (ch)
		uhp__channel_free(ch);
}

UHP_API int uhp_channel_fd(const struct uhp_channel *ch)
{
	return ch->fd >= 0 ? ch->fd : -EOPNOTSUPP;
}

UHP_API unsigned uhp_version(void)
{
	return UHP_VERSION_NUM;
}

UHP_API unsigned uhp_nr_rings(const struct uhp_channel *ch)
{
	return ch->nr_rings;
}

UHP_API int uhp_ring_fill(const struct uhp_channel *ch, unsigned ring,
			  uint64_t *used, uint64_t *size)
{
	const struct uhp_ring *r;
	uint64_t wp, rp;

	if (!ch || ring >= ch->nr_rings || !used)
		return -EINVAL;
	r = &ch->rings[ring];
	/*
	 * A snapshot (relaxed loads): write_pos read while read_pos did not
	 * move is a pair that held at one instant, so an honest ring never
	 * looks over-full; a consumer moving all the while gets the last try.
	 */
	for (int tries = 0; tries < 4; tries++) {
		rp = __atomic_load_n(&r->cons->read_pos, __ATOMIC_RELAXED);
		wp = __atomic_load_n(&r->prod->write_pos, __ATOMIC_RELAXED);
		if (__atomic_load_n(&r->cons->read_pos, __ATOMIC_RELAXED) == rp)
			break;
	}
	if (size)
		*size = ch->data_size;
	if ((int64_t)(wp - rp) < 0 || wp - rp > ch->data_size)
		return -EUCLEAN;
	*used = wp - rp;
	return 0;
}

UHP_API int uhp_notify(struct uhp_channel *ch)
{
	struct uhp_notify n = { .size = sizeof(n) };
	int ret;

	__atomic_fetch_add(&ch->pstat.notifies, 1, __ATOMIC_RELAXED);
	if (ch->arena) {
		uhp__arena_wake(ch);	/* a futex instead of the ioctl */
		return 0;
	}
	if (ch->fd < 0)
		return 0;	/* in-memory: the waiter polls by itself */
	ret = xioctl(ch->fd, UHP_IOC_NOTIFY, &n);
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
