// SPDX-License-Identifier: MIT
/*
 * In-memory channels: the same rings as the module builds, in a memfd, so
 * the whole fast path runs (and is tested) without /dev/uhp. Internal only:
 * declared in uhp_internal.h, hidden from libuhp.so.
 *
 * Layout of the memfd for each ring (page = the system page size):
 *   [0, page)                    prod page (the first 4096 bytes are used)
 *   [page, 2 * page)             cons page
 *   [2 * page, 2 * page + size)  data area
 * and of this process's address space:
 *   prod_page, cons_page -> one mmap of the two pages
 *   data -> a PROT_NONE reservation of 2 * size, then the data area mapped
 *           twice into it with MAP_FIXED, back to back, as the kernel does.
 * The handle has no fd: uhp_wait() sleeps in short slices instead of poll(),
 * NOTIFY is only counted, and the handle holds the consumer role. Mappings
 * (not the memfd) keep the pages, so a fork()ed child shares the rings.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "uhp_internal.h"

static uint64_t random_salt(void)
{
	uint64_t salt;

	if (getrandom(&salt, sizeof(salt), GRND_NONBLOCK) == sizeof(salt))
		return salt;
	/* no entropy yet: the salt only has to differ between rings and laps */
	salt = uhp__now_ns() * 0x9E3779B97F4A7C15ULL;
	return salt ^ ((uint64_t)(uintptr_t)&salt << 17);
}

/*
 * Map ring r from fd, laid out as [prod page][cons page][data] at base (the
 * layout of in-memory rings and arenas): the two pages once, the data twice
 * back to back, as the kernel maps it; prot: PROT_READ for an observer.
 * What was mapped before an error stays recorded in r, for
 * uhp__channel_free().
 */
int uhp__ring_map_file(struct uhp_ring *r, int fd, off_t base, size_t page,
		       uint64_t ds, int prot)
{
	void *p;

	p = mmap(NULL, 2 * page, prot, MAP_SHARED, fd, base);
	if (p == MAP_FAILED)
		return -errno;
	r->prod_page = p;
	r->cons_page = (char *)p + page;
	p = mmap(NULL, 2 * ds, PROT_NONE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	r->data = p;	/* from here uhp__channel_free() unmaps 2 * ds */
	for (int half = 0; half < 2; half++)
		if (mmap(r->data + (size_t)half * ds, ds, prot,
			 MAP_SHARED | MAP_FIXED, fd,
			 base + (off_t)(2 * page)) == MAP_FAILED)
			return -errno;
	return 0;
}

static int mem_ring_map(struct uhp_channel *ch, unsigned k, size_t page)
{
	struct uhp_ring *r = &ch->rings[k];
	uint64_t ds = ch->data_size;
	struct uhp_ring_desc *desc;
	int fd, ret = 0;

	fd = memfd_create("uhp-mem-ring", MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)(2 * page + ds)) < 0) {
		ret = -errno;
		goto out_close;
	}
	ret = uhp__ring_map_file(r, fd, 0, page, ds, PROT_READ | PROT_WRITE);
	if (ret)
		goto out_close;

	desc = (struct uhp_ring_desc *)((char *)r->prod_page + UHP_DESC_OFF);
	desc->magic = UHP_RING_MAGIC;
	desc->data_size = ds;
	desc->salt = random_salt();
	desc->abi_version = UHP_ABI_VERSION;
	desc->node = (int32_t)k;
	desc->ring_index = k;

	r->prod = (struct uhp_prod_line *)((char *)r->prod_page + UHP_PROD_LINE_OFF);
	r->cons = (struct uhp_cons_line *)((char *)r->cons_page + UHP_CONS_LINE_OFF);
	r->wake = (struct uhp_wake_line *)((char *)r->cons_page + UHP_WAKE_LINE_OFF);
	r->mask = ds - 1;
	r->salt = desc->salt;
	r->node = (int)k;
out_close:
	close(fd);
	return ret;
}

/* ---- the backend: nobody can wake the consumer, it polls ---- */

static int mem_notify(struct uhp_channel *ch)
{
	(void)ch;
	return 0;	/* the waiter polls by itself */
}

static uint32_t mem_wake_token(struct uhp_channel *ch)
{
	(void)ch;
	return 0;
}

/* Sleep short and back off: nothing else would end the sleep. */
static int mem_sleep(struct uhp_channel *ch, uint32_t token, uint64_t ns,
		     uint64_t *backoff)
{
	struct timespec ts;

	(void)ch;
	(void)token;
	if (ns > *backoff)
		ns = *backoff;
	if (*backoff < UHP_MEM_SLEEP_MAX_NS)
		*backoff *= 2;
	ts.tv_sec = (time_t)(ns / 1000000000ULL);
	ts.tv_nsec = (long)(ns % 1000000000ULL);
	return nanosleep(&ts, NULL) < 0 ? -errno : 0;
}

static uint32_t *mem_wake_word(struct uhp_channel *ch)
{
	(void)ch;
	return NULL;
}

static int mem_pollfd(struct uhp_channel *ch)
{
	(void)ch;
	return -EOPNOTSUPP;
}

static void mem_end_sleep(struct uhp_channel *ch)
{
	(void)ch;
}

static int mem_claim(struct uhp_channel *ch)
{
	(void)ch;
	return -EOPNOTSUPP;	/* one process, no rings to claim */
}

static int mem_info(struct uhp_channel *ch, struct uhp_info *out,
		    struct uhp_ring_info *rings, unsigned cap)
{
	return uhp__info_local(ch, out, rings, cap, 0);
}

/* No channel fd of its own, but a test may give it one (an eventfd). */
static void mem_release(struct uhp_channel *ch)
{
	if (ch->fd >= 0)
		close(ch->fd);
	ch->fd = -1;
}

const struct uhp_backend uhp__mem_backend = {
	.name = "memory",
	.notify = mem_notify,
	.wake_token = mem_wake_token,
	.sleep = mem_sleep,
	.wake_word = mem_wake_word,
	.pollfd = mem_pollfd,
	.end_sleep = mem_end_sleep,
	.claim = mem_claim,
	.info = mem_info,
	.release = mem_release,
};

/* ---- the channel ---- */

int uhp__mem_channel_new(unsigned nr_rings, uint64_t data_size,
			 struct uhp_channel **out)
{
	long page = sysconf(_SC_PAGESIZE);
	struct uhp_channel *ch;
	int ret;

	if (!out || nr_rings == 0 || nr_rings > UHP_MAX_RINGS || page <= 0)
		return -EINVAL;
	if (!data_size || (data_size & (data_size - 1)) ||
	    data_size < UHP_MIN_DATA_SIZE || data_size > UHP_MAX_DATA_SIZE ||
	    data_size % (uint64_t)page || data_size > SIZE_MAX / 2)
		return -EINVAL;
	ch = uhp__channel_alloc(nr_rings, &uhp__mem_backend);
	if (!ch)
		return -ENOMEM;
	ch->data_size = data_size;
	ch->max_total = data_size;
	ch->consumer = true;
	for (unsigned k = 0; k < nr_rings; k++) {
		ret = mem_ring_map(ch, k, (size_t)page);
		if (ret)
			goto out_free;
	}
	ret = uhp__channel_index_nodes(ch);
	if (ret)
		goto out_free;
	*out = ch;
	return 0;

out_free:
	uhp__channel_free(ch);
	return ret;
}

int uhp__mem_ring_set_pos(struct uhp_channel *ch, unsigned ring, uint64_t pos)
{
	struct uhp_ring *r;

	if (ring >= ch->nr_rings || (pos & (UHP_REC_ALIGN - 1)))
		return -EINVAL;
	r = &ch->rings[ring];
	if (r->prod->write_pos != r->rpos)
		return -EBUSY;
	/* Old tags must not match positions of the new lap: start clean. */
	memset(r->data, 0, ch->data_size);
	r->prod->write_pos = pos;
	r->prod->cached_read_pos = pos;
	r->cons->read_pos = pos;
	r->cons->cached_write_pos = pos;
	r->rpos = pos;
	r->stall_since = 0;
	return 0;
}
