// SPDX-License-Identifier: MIT
/*
 * Arenas: uhp channels without the kernel module, for processes of one user
 * (uhp_arena_*). The same rings and the same fast path as a /dev/uhp
 * channel, in a named POSIX shared-memory object, /dev/shm/uhp.<name>:
 *
 *   [0, page)                    struct uhp_arena_hdr
 *   then per ring k:             prod page, cons page, data (data_size)
 *
 * What the module does and an arena cannot: kernel producers and kernel
 * rings, permissions across users (the object is created 0600), the
 * kernel's refusal of corrupt positions (every process of the arena is
 * trusted as much as the creator), UHP_IOC_SEND/VERIFY. Wakeups go through
 * a futex in the header instead of UHP_IOC_NOTIFY and poll(): a sleeping
 * consumer waits on hdr->wake_seq; a producer that sees need_wakeup bumps it
 * and calls FUTEX_WAKE. Placement: the data and pages of ring k are bound to
 * node k with mbind(MPOL_PREFERRED) before they are first touched.
 *
 * Order of things: 1. names and the header, 2. mapping, 3. create/attach/
 * unlink, 4. futex wait/wake, 5. release (from uhp__channel_free()).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <linux/futex.h>
#include <linux/mempolicy.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "uhp_internal.h"

#define UHP_ARENA_MAGIC		0x414e455241504855ULL	/* "UHPARENA" */
#define UHP_ARENA_MAX_RINGS	64

/* Page 0 of an arena. Written by the creator, then read-only but for the
 * consumer role, the claims and the futex word. */
struct uhp_arena_hdr {
	uint64_t magic;
	uint32_t abi_version;
	uint32_t nr_rings;
	uint64_t data_size;
	uint64_t ring_stride;		/* bytes per ring: 2 pages + data */
	int32_t node[UHP_ARENA_MAX_RINGS];
	uint32_t ready;			/* 1 once fully initialised (release) */
	int32_t consumer_pid;		/* holder of the consumer role, or 0 */
	uint32_t wake_seq;		/* futex: bumped by producers' wakeups */
	/* the last nr_excl rings are exclusive (claim.c) */
	uint32_t nr_excl;
	int32_t claim_pid[UHP_ARENA_MAX_RINGS];	/* claimant of ring k, or 0 */
};

/* ---- 1. names, header ---- */

/* Channel names and arena names follow one rule (uhp__name_copy()). */
static int shm_name(const char *name, char out[UHP_NAME_MAX + 8])
{
	char checked[UHP_NAME_MAX];
	int ret = uhp__name_copy(checked, name);

	if (ret)
		return ret;
	snprintf(out, UHP_NAME_MAX + 8, "/uhp.%s", checked);
	return 0;
}

/*
 * Nodes with normal memory, from sysfs ("0-1,3"); just node 0 if unreadable.
 * The module's rule (kmod/channel.c), so a channel has the same rings in
 * both modes: a node whose memory is all movable (a CPU-less CXL expander)
 * has no CPU whose producers would call its ring local.
 */
static unsigned memory_nodes(int32_t *nodes, unsigned max)
{
	char buf[256], *p = buf;
	unsigned n = 0;
	FILE *f = fopen("/sys/devices/system/node/has_normal_memory", "re");

	if (f && fgets(buf, sizeof(buf), f)) {
		while (*p && *p != '\n' && n < max) {
			char *end;
			long a = strtol(p, &end, 10), b = a;

			if (end == p)
				break;
			if (*end == '-')
				b = strtol(end + 1, &end, 10);
			for (long x = a; x <= b && n < max; x++)
				nodes[n++] = (int32_t)x;
			p = *end == ',' ? end + 1 : end;
		}
	}
	if (f)
		fclose(f);
	if (n == 0)
		nodes[n++] = 0;
	return n;
}

/* ---- 2. mapping ---- */

static int arena_map_ring(struct uhp_channel *ch, int fd, unsigned k,
			  const struct uhp_arena_hdr *hdr, size_t page)
{
	struct uhp_ring *r = &ch->rings[k];
	uint64_t ds = hdr->data_size;
	struct uhp_ring_desc desc;
	int ret;

	ret = uhp__ring_map_file(r, fd, (off_t)(page + k * hdr->ring_stride),
				 page, ds);
	if (ret)
		return ret;

	memcpy(&desc, (char *)r->prod_page + UHP_DESC_OFF, sizeof(desc));
	if (desc.magic != UHP_RING_MAGIC || desc.data_size != ds ||
	    desc.ring_index != k)
		return -EPROTO;
	r->prod = (struct uhp_prod_line *)((char *)r->prod_page + UHP_PROD_LINE_OFF);
	r->cons = (struct uhp_cons_line *)((char *)r->cons_page + UHP_CONS_LINE_OFF);
	r->wake = (struct uhp_wake_line *)((char *)r->cons_page + UHP_WAKE_LINE_OFF);
	r->mask = ds - 1;
	r->salt = desc.salt;
	r->node = hdr->node[k];
	r->excl = k >= hdr->nr_rings - hdr->nr_excl;
	/* Pairs with the previous consumer's store-release of read_pos. */
	r->rpos = __atomic_load_n(&r->cons->read_pos, __ATOMIC_ACQUIRE);
	return 0;
}

/* Bind [addr, addr + len) of the object to node before first touch. */
static void bind_to_node(void *addr, size_t len, int node)
{
	unsigned long mask[16] = { 0 };

	if (node < 0 || node >= (int)(sizeof(mask) * CHAR_BIT))
		return;
	mask[node / (sizeof(long) * CHAR_BIT)] = 1UL << (node % (sizeof(long) * CHAR_BIT));
	/* Preferred, not bound: a full node falls back instead of failing. */
	(void)syscall(SYS_mbind, addr, len, MPOL_PREFERRED, mask,
		      sizeof(mask) * CHAR_BIT, 0);
}

/* Creator: bind, then write every ring's desc (first touch places pages). */
static int arena_init_rings(int fd, struct uhp_arena_hdr *hdr, size_t page)
{
	for (unsigned k = 0; k < hdr->nr_rings; k++) {
		off_t base = (off_t)(page + k * hdr->ring_stride);
		size_t len = (size_t)hdr->ring_stride;
		struct uhp_ring_desc *d;
		char *p;

		p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, base);
		if (p == MAP_FAILED)
			return -errno;
		bind_to_node(p, len, hdr->node[k]);
		memset(p, 0, len);	/* first touch: allocate on the node */
		d = (struct uhp_ring_desc *)(p + UHP_DESC_OFF);
		d->magic = UHP_RING_MAGIC;
		d->data_size = hdr->data_size;
		d->abi_version = UHP_ABI_VERSION;
		d->node = hdr->node[k];
		d->ring_index = k;
		if (getrandom(&d->salt, sizeof(d->salt), 0) != sizeof(d->salt))
			d->salt = uhp__now_ns() * 0x9E3779B97F4A7C15ULL + k;
		d->salt &= ~UHP_TAG_BUSY;
		munmap(p, len);
	}
	return 0;
}

/* The channel over an open arena fd whose header is mapped at hdr; takes
 * the header mapping over (unmapped on failure too). */
static int arena_open(int fd, struct uhp_arena_hdr *hdr, bool consumer,
		      struct uhp_channel **out)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	struct uhp_channel *ch;
	int ret;

	ch = uhp__channel_alloc(hdr->nr_rings);
	if (!ch) {
		munmap(hdr, page);
		return -ENOMEM;
	}
	ch->data_size = hdr->data_size;
	ch->max_total = hdr->data_size;
	ch->arena = hdr;	/* from here uhp__channel_free() unmaps it */
	ch->arena_len = page;
	if (consumer) {
		int32_t holder = 0, me = (int32_t)getpid();

		/*
		 * The role is free, or its holder is dead: take it. Pairs
		 * with the release in uhp__arena_release(). (A holder's pid
		 * reused by an unrelated process keeps the role taken.)
		 */
		while (!__atomic_compare_exchange_n(&hdr->consumer_pid, &holder, me,
						    false, __ATOMIC_ACQ_REL,
						    __ATOMIC_ACQUIRE)) {
			if (holder != me && kill(holder, 0) && errno == ESRCH)
				continue;	/* dead: retry the CAS against it */
			uhp__channel_free(ch);
			return -EBUSY;
		}
		ch->consumer = true;
	}
	for (unsigned k = 0; k < hdr->nr_rings; k++) {
		ret = arena_map_ring(ch, fd, k, hdr, page);
		if (ret)
			goto err_free;
	}
	ret = uhp__channel_index_nodes(ch);
	if (ret)
		goto err_free;
	*out = ch;
	return 0;

err_free:
	uhp__channel_free(ch);	/* also gives the role back and unmaps hdr */
	return ret;
}

/* ---- 3. public ---- */

UHP_API int uhp_arena_create(const char *name, const struct uhp_create_opts *opts,
			     struct uhp_channel **out)
{
	const struct uhp_create_opts defaults = UHP_CREATE_OPTS_INIT;
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	struct uhp_arena_hdr *hdr;
	char path[UHP_NAME_MAX + 8];
	int32_t nodes[UHP_ARENA_MAX_RINGS];
	unsigned nr;
	uint64_t ds;
	int fd, ret;

	if (!out)
		return -EINVAL;
	ret = shm_name(name, path);
	if (ret)
		return ret;
	if (!opts)
		opts = &defaults;
	ds = opts->ring_size ? opts->ring_size : UHP_DEFAULT_RING_SIZE;
	if ((ds & (ds - 1)) || ds < UHP_MIN_DATA_SIZE || ds % page ||
	    ds > UHP_MAX_DATA_SIZE || opts->kernel_rings)
		return -EINVAL;
	if (opts->node >= 0) {
		nodes[0] = opts->node;
		nr = 1;
	} else {
		nr = memory_nodes(nodes, UHP_ARENA_MAX_RINGS);
	}
	/* Exclusive rings, last: on the shared rings' nodes in turn. */
	if (opts->excl_rings > UHP_EXCL_RINGS_MAX ||
	    opts->excl_rings > UHP_ARENA_MAX_RINGS - nr)
		return -EINVAL;
	for (unsigned j = 0; j < opts->excl_rings; j++)
		nodes[nr + j] = nodes[j % nr];
	nr += opts->excl_rings;

	fd = shm_open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)(page + nr * (2 * page + ds))) < 0)
		goto err_errno;
	hdr = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (hdr == MAP_FAILED)
		goto err_errno;
	hdr->magic = UHP_ARENA_MAGIC;
	hdr->abi_version = UHP_ABI_VERSION;
	hdr->nr_rings = nr;
	hdr->data_size = ds;
	hdr->ring_stride = 2 * page + ds;
	hdr->nr_excl = opts->excl_rings;
	memcpy(hdr->node, nodes, nr * sizeof(nodes[0]));
	ret = arena_init_rings(fd, hdr, page);
	if (ret) {
		munmap(hdr, page);
		goto err_unlink;
	}
	/* Pairs with the load-acquire in uhp_arena_attach(). */
	__atomic_store_n(&hdr->ready, 1, __ATOMIC_RELEASE);
	ret = arena_open(fd, hdr, opts->consumer, out);
	if (ret)
		goto err_unlink;	/* arena_open() unmapped hdr */
	close(fd);
	return 0;

err_errno:
	ret = -errno;
err_unlink:
	shm_unlink(path);
	close(fd);
	return ret;
}

UHP_API int uhp_arena_attach(const char *name, unsigned flags,
			     struct uhp_channel **out)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	struct uhp_arena_hdr *hdr;
	char path[UHP_NAME_MAX + 8];
	struct stat st;
	int fd, ret;

	if (flags & UHP_ATTACH_RDONLY)
		return -EOPNOTSUPP;
	if (!out || (flags & ~UHP_ATTACH_CONSUMER))
		return -EINVAL;
	ret = shm_name(name, path);
	if (ret)
		return ret;
	fd = shm_open(path, O_RDWR | O_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || (size_t)st.st_size < page) {
		ret = fstat(fd, &st) < 0 ? -errno : -EPROTO;
		close(fd);
		return ret;
	}
	hdr = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (hdr == MAP_FAILED) {
		ret = -errno;
		close(fd);
		return ret;
	}
	/* Check everything the layout depends on against the object's size. */
	if (!__atomic_load_n(&hdr->ready, __ATOMIC_ACQUIRE) ||
	    hdr->magic != UHP_ARENA_MAGIC || hdr->abi_version != UHP_ABI_VERSION ||
	    hdr->nr_rings == 0 || hdr->nr_rings > UHP_ARENA_MAX_RINGS ||
	    hdr->nr_excl >= hdr->nr_rings ||
	    (hdr->data_size & (hdr->data_size - 1)) ||
	    hdr->data_size < UHP_MIN_DATA_SIZE || hdr->data_size > UHP_MAX_DATA_SIZE ||
	    hdr->ring_stride != 2 * page + hdr->data_size ||
	    (uint64_t)st.st_size < page + hdr->nr_rings * hdr->ring_stride) {
		munmap(hdr, page);
		close(fd);
		return -EPROTO;
	}
	ret = arena_open(fd, hdr, flags & UHP_ATTACH_CONSUMER, out);
	close(fd);
	return ret;
}

UHP_API int uhp_arena_unlink(const char *name)
{
	char path[UHP_NAME_MAX + 8];
	int ret = shm_name(name, path);

	if (ret)
		return ret;
	return shm_unlink(path) ? -errno : 0;
}

/* ---- 4. futex ---- */

static long futex(uint32_t *uaddr, int op, uint32_t val,
		  const struct timespec *ts)
{
	/* Shared (not FUTEX_PRIVATE): the word is in memory of many processes. */
	return syscall(SYS_futex, uaddr, op, val, ts, NULL, 0);
}

void uhp__arena_wake(struct uhp_channel *ch)
{
	struct uhp_arena_hdr *hdr = ch->arena;

	/* Pairs with the consumer's load of wake_seq before it re-checks. */
	__atomic_fetch_add(&hdr->wake_seq, 1, __ATOMIC_SEQ_CST);
	futex(&hdr->wake_seq, FUTEX_WAKE, INT_MAX, NULL);
}

uint32_t uhp__arena_wake_seq(struct uhp_channel *ch)
{
	return __atomic_load_n(&((struct uhp_arena_hdr *)ch->arena)->wake_seq,
			       __ATOMIC_SEQ_CST);
}

uint32_t *uhp__arena_wake_word(struct uhp_channel *ch)
{
	return &((struct uhp_arena_hdr *)ch->arena)->wake_seq;
}

/* Sleep until wake_seq moves from seq or ns pass. 0, or -errno. */
int uhp__arena_sleep(struct uhp_channel *ch, uint32_t seq, uint64_t ns)
{
	struct uhp_arena_hdr *hdr = ch->arena;
	struct timespec ts = {
		.tv_sec = (time_t)(ns / 1000000000ULL),
		.tv_nsec = (long)(ns % 1000000000ULL),
	};

	if (futex(&hdr->wake_seq, FUTEX_WAIT, seq, &ts) < 0 &&
	    errno != EAGAIN && errno != ETIMEDOUT && errno != EINTR)
		return -errno;
	return 0;
}

/* ---- 5. claims (claim.c) ---- */

/*
 * A free exclusive ring for this process: no claimant, or a dead one (as
 * for the consumer role; a claimant's pid reused by an unrelated process
 * keeps its ring taken). The caller's node first. Ring k, or -EBUSY.
 * claim_pid[k] pairs acquire/release with the release in
 * uhp__arena_release(): the old claimant's stores to write_pos and the
 * data come before ours.
 */
int uhp__arena_claim(struct uhp_channel *ch)
{
	struct uhp_arena_hdr *hdr = ch->arena;
	int32_t me = (int32_t)getpid();
	unsigned cpu, node, first = ch->nr_rings - hdr->nr_excl;
	bool known = getcpu(&cpu, &node) == 0;

	if (hdr->nr_excl == 0 || hdr->nr_excl >= ch->nr_rings)
		return -EBUSY;
	for (int pass = known ? 0 : 1; pass < 2; pass++) {
		for (unsigned k = first; k < ch->nr_rings; k++) {
			int32_t holder = 0;

			if (pass == 0 && ch->rings[k].node != (int)node)
				continue;
			/* On failure holder is the claimant: retry if dead. */
			for (;;) {
				if (__atomic_compare_exchange_n(&hdr->claim_pid[k],
								&holder, me, false,
								__ATOMIC_ACQ_REL,
								__ATOMIC_ACQUIRE))
					return (int)k;
				if (holder == me || !(kill(holder, 0) && errno == ESRCH))
					break;	/* another handle of ours, or alive */
			}
		}
	}
	return -EBUSY;
}

/* ---- 6. release ---- */

void uhp__arena_release(struct uhp_channel *ch)
{
	struct uhp_arena_hdr *hdr = ch->arena;
	int32_t me = (int32_t)getpid();

	if (ch->consumer)
		__atomic_compare_exchange_n(&hdr->consumer_pid, &me, 0, false,
					    __ATOMIC_RELEASE, __ATOMIC_RELAXED);
	me = (int32_t)getpid();
	if (ch->claimed >= 0)
		__atomic_compare_exchange_n(&hdr->claim_pid[ch->claimed], &me, 0,
					    false, __ATOMIC_RELEASE,
					    __ATOMIC_RELAXED);
	munmap(hdr, ch->arena_len);
	ch->arena = NULL;
}
