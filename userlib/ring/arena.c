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
 * A pollable fd (uhp_channel_fd() of the consumer, for epoll and asyncio) is
 * a FIFO beside the object, /dev/shm/uhp.<name>:wake (':' is in no channel
 * name, so no arena is called that), made and opened by the consumer at its
 * first uhp_channel_fd(), which then sets hdr->wake_fifo. From then on a
 * producer's wakeup also writes a byte into it (the write end opened once
 * per handle); uhp_end_sleep() drains it. Both ends refuse a FIFO that is
 * not the user's own: /dev/shm is writable by everyone.
 *
 * Order of things: 1. names and the header, 2. mapping, 3. create/attach/
 * unlink, 4. wait/wake (futex, FIFO), 5. claims, 6. release, 7. the backend.
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
/* How long an attach waits for an arena being created to be ready. */
#define UHP_ARENA_READY_WAIT_MS	2000

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
	/* 1 once a consumer listens on the wake FIFO (older arenas: 0) */
	uint32_t wake_fifo;
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

#define UHP_SHM_DIR		"/dev/shm"
#define UHP_WAKE_SUFFIX		":wake"
#define UHP_WAKE_PATH_MAX	(sizeof(UHP_SHM_DIR) + UHP_NAME_MAX + 8 + sizeof(UHP_WAKE_SUFFIX))

/* The wake FIFO's path, from shm_name()'s "/uhp.<name>". */
static void wake_path(char out[UHP_WAKE_PATH_MAX], const char *shm)
{
	snprintf(out, UHP_WAKE_PATH_MAX, UHP_SHM_DIR "%s" UHP_WAKE_SUFFIX, shm);
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
			  const struct uhp_arena_hdr *hdr, size_t page, int prot)
{
	struct uhp_ring *r = &ch->rings[k];
	uint64_t ds = hdr->data_size;
	struct uhp_ring_desc desc;
	int ret;

	ret = uhp__ring_map_file(r, fd, (off_t)(page + k * hdr->ring_stride),
				 page, ds, prot);
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
	r->records_base = __atomic_load_n(&r->cons->records, __ATOMIC_RELAXED);
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
static int arena_open(int fd, struct uhp_arena_hdr *hdr, const char *shm,
		      unsigned flags, struct uhp_channel **out)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	struct uhp_channel *ch;
	int ret;

	ch = uhp__channel_alloc(hdr->nr_rings, &uhp__arena_backend);
	if (ch)
		ch->wake_path = malloc(UHP_WAKE_PATH_MAX);
	if (!ch || !ch->wake_path) {
		free(ch);
		munmap(hdr, page);
		return -ENOMEM;
	}
	wake_path(ch->wake_path, shm);
	ch->data_size = hdr->data_size;
	/* An observer (UHP_ATTACH_RDONLY) maps read-only and sends nothing. */
	ch->max_total = flags & UHP_ATTACH_RDONLY ? 0 : hdr->data_size;
	ch->arena = hdr;	/* from here uhp__channel_free() unmaps it */
	ch->arena_len = page;
	if (flags & UHP_ATTACH_CONSUMER) {
		int32_t holder = 0, me = (int32_t)getpid();

		/*
		 * The role is free, or its holder is dead: take it. Pairs
		 * with the release in arena_release(). (A holder's pid
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
		ret = arena_map_ring(ch, fd, k, hdr, page,
				     flags & UHP_ATTACH_RDONLY ? PROT_READ :
				     PROT_READ | PROT_WRITE);
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
	ret = arena_open(fd, hdr, path, opts->consumer ? UHP_ATTACH_CONSUMER : 0, out);
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

	if (!out || (flags & ~(UHP_ATTACH_CONSUMER | UHP_ATTACH_RDONLY)) ||
	    (flags & UHP_ATTACH_CONSUMER && flags & UHP_ATTACH_RDONLY))
		return -EINVAL;
	ret = shm_name(name, path);
	if (ret)
		return ret;
	fd = shm_open(path, (flags & UHP_ATTACH_RDONLY ? O_RDONLY : O_RDWR) | O_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/*
	 * The name exists from the creator's shm_open(O_EXCL) on, before the
	 * object has its size and header (arena_init_rings() touches every
	 * page first): wait for ready while one is being made, as a racing
	 * create-or-attach does (uhp_open_channel()), up to
	 * UHP_ARENA_READY_WAIT_MS. A creator that died mid-way leaves -EPROTO.
	 */
	for (unsigned ms = 0;; ms++) {
		if (fstat(fd, &st) < 0) {
			ret = -errno;
			close(fd);
			return ret;
		}
		hdr = MAP_FAILED;
		if ((size_t)st.st_size >= page) {
			hdr = mmap(NULL, page, flags & UHP_ATTACH_RDONLY ? PROT_READ :
				   PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
			if (hdr == MAP_FAILED) {
				ret = -errno;
				close(fd);
				return ret;
			}
			/* Pairs with the creator's store-release of ready. */
			if (__atomic_load_n(&hdr->ready, __ATOMIC_ACQUIRE))
				break;
			munmap(hdr, page);
		}
		if (ms == UHP_ARENA_READY_WAIT_MS) {
			close(fd);
			return -EPROTO;
		}
		nanosleep(&(struct timespec){ .tv_nsec = 1000000 }, NULL);
	}
	/* Check everything the layout depends on against the object's size. */
	if (hdr->magic != UHP_ARENA_MAGIC || hdr->abi_version != UHP_ABI_VERSION ||
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
	ret = arena_open(fd, hdr, path, flags, out);
	close(fd);
	return ret;
}

UHP_API int uhp_arena_unlink(const char *name)
{
	char path[UHP_NAME_MAX + 8], wake[UHP_WAKE_PATH_MAX];
	int ret = shm_name(name, path);

	if (ret)
		return ret;
	ret = shm_unlink(path) ? -errno : 0;
	if (!ret) {
		/* Its FIFO, if a consumer made one (ours: shm_unlink worked). */
		wake_path(wake, path);
		unlink(wake);
	}
	return ret;
}

/* ---- 4. futex ---- */

static long futex(uint32_t *uaddr, int op, uint32_t val,
		  const struct timespec *ts)
{
	/* Shared (not FUTEX_PRIVATE): the word is in memory of many processes. */
	return syscall(SYS_futex, uaddr, op, val, ts, NULL, 0);
}

/* Is fd a FIFO of this user's, not readable or writable by others? */
static bool own_fifo(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode) &&
	       st.st_uid == geteuid() && !(st.st_mode & 077);
}

/*
 * A producer's half: a byte into the FIFO, if a consumer listens there.
 * The write end is opened once per handle; a full FIFO (EAGAIN) already
 * says "readable", and no reader (ENXIO: the consumer went) is no error.
 */
static void wake_fifo(struct uhp_channel *ch)
{
	static const char byte = 1;

	if (ch->wake_fd < 0) {
		int fd = open(ch->wake_path, O_WRONLY | O_NONBLOCK | O_NOFOLLOW |
			      O_CLOEXEC);

		if (fd < 0)
			return;
		if (!own_fifo(fd)) {
			close(fd);
			return;
		}
		ch->wake_fd = fd;
	}
	if (write(ch->wake_fd, &byte, 1) < 0 && errno == EPIPE) {
		close(ch->wake_fd);	/* reader gone: reopen next time */
		ch->wake_fd = -1;
	}
}

static int arena_notify(struct uhp_channel *ch)
{
	struct uhp_arena_hdr *hdr = ch->arena;

	if (!ch->max_total)
		return -EBADF;	/* an observer's header is read-only */

	/* Pairs with the consumer's load of wake_seq before it re-checks. */
	__atomic_fetch_add(&hdr->wake_seq, 1, __ATOMIC_SEQ_CST);
	futex(&hdr->wake_seq, FUTEX_WAKE, INT_MAX, NULL);
	/* Set (release) after the consumer opened the FIFO for reading. */
	if (__atomic_load_n(&hdr->wake_fifo, __ATOMIC_ACQUIRE))
		wake_fifo(ch);
	return 0;
}

static uint32_t arena_wake_token(struct uhp_channel *ch)
{
	return __atomic_load_n(&((struct uhp_arena_hdr *)ch->arena)->wake_seq,
			       __ATOMIC_SEQ_CST);
}

static uint32_t *arena_wake_word(struct uhp_channel *ch)
{
	return &((struct uhp_arena_hdr *)ch->arena)->wake_seq;
}

/* Sleep until wake_seq moves from seq or ns pass. 0, or -errno. */
static int arena_sleep(struct uhp_channel *ch, uint32_t seq, uint64_t ns,
		       uint64_t *backoff)
{
	struct uhp_arena_hdr *hdr = ch->arena;
	struct timespec ts = {
		.tv_sec = (time_t)(ns / 1000000000ULL),
		.tv_nsec = (long)(ns % 1000000000ULL),
	};

	(void)backoff;
	/* EINTR is the caller's, as poll()'s is on /dev/uhp: -EINTR. */
	if (futex(&hdr->wake_seq, FUTEX_WAIT, seq, &ts) < 0 &&
	    errno != EAGAIN && errno != ETIMEDOUT)
		return -errno;
	return 0;
}

/*
 * The consumer's pollable fd: the read end of the wake FIFO, made and
 * opened at the first call (O_RDWR: it never reports EOF or POLLHUP when
 * no writer has it open). Producers write only while need_wakeup is set,
 * so the protocol is the device's: uhp_prepare_sleep(), poll, then
 * uhp_end_sleep(), which drains the FIFO.
 */
static int arena_pollfd(struct uhp_channel *ch)
{
	struct uhp_arena_hdr *hdr = ch->arena;
	int fd;

	if (!ch->consumer)
		return -EOPNOTSUPP;	/* producers are not woken */
	if (ch->wake_fd >= 0)
		return ch->wake_fd;
	if (mkfifo(ch->wake_path, 0600) < 0 && errno != EEXIST)
		return -errno;
	fd = open(ch->wake_path, O_RDWR | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ELOOP ? -EPERM : -errno;
	if (!own_fifo(fd)) {
		close(fd);
		return -EPERM;	/* someone else's file in its place */
	}
	ch->wake_fd = fd;
	/* Pairs with the load-acquire in arena_notify(). */
	__atomic_store_n(&hdr->wake_fifo, 1, __ATOMIC_RELEASE);
	return fd;
}

/* Empty the FIFO: the bytes were wakeups, and the rings are re-read next. */
static void arena_end_sleep(struct uhp_channel *ch)
{
	char buf[256];

	if (ch->consumer && ch->wake_fd >= 0)
		while (read(ch->wake_fd, buf, sizeof(buf)) > 0)
			;
}

/* ---- 5. claims (claim.c) ---- */

/*
 * A free exclusive ring for this process: no claimant, or a dead one (as
 * for the consumer role; a claimant's pid reused by an unrelated process
 * keeps its ring taken). The caller's node first. Ring k, or -EBUSY.
 * claim_pid[k] pairs acquire/release with the release in
 * arena_release(): the old claimant's stores to write_pos and the
 * data come before ours.
 */
static int arena_claim(struct uhp_channel *ch)
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

static void arena_release(struct uhp_channel *ch)
{
	struct uhp_arena_hdr *hdr = ch->arena;
	int32_t me = (int32_t)getpid();

	/* Producers stop writing to a FIFO nobody reads (a new consumer's
	 * uhp_channel_fd() sets it again). */
	if (hdr && ch->consumer && ch->wake_fd >= 0)
		__atomic_store_n(&hdr->wake_fifo, 0, __ATOMIC_RELAXED);
	if (ch->wake_fd >= 0)
		close(ch->wake_fd);
	ch->wake_fd = -1;
	free(ch->wake_path);
	ch->wake_path = NULL;
	if (!hdr)
		return;

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

/* ---- 7. the backend ---- */

static int arena_info(struct uhp_channel *ch, struct uhp_info *out,
		      struct uhp_ring_info *rings, unsigned cap)
{
	return uhp__info_local(ch, out, rings, cap, UHP_FEAT_EXCL_RINGS);
}

const struct uhp_backend uhp__arena_backend = {
	.name = "arena",
	.notify = arena_notify,
	.wake_token = arena_wake_token,
	.sleep = arena_sleep,
	.wake_word = arena_wake_word,
	.pollfd = arena_pollfd,
	.end_sleep = arena_end_sleep,
	.claim = arena_claim,
	.info = arena_info,
	.release = arena_release,
};
