// SPDX-License-Identifier: MIT
/*
 * Waiting for records: the consumer's half of the need_wakeup protocol.
 *
 * Order of things in this file:
 *   1. need_wakeup helpers (cpu_relax() is ../cpu_relax.h)
 *   2. uhp__poll_sleep(): one bounded poll() (the device backend's sleep;
 *      each backend sleeps its own way: ch->be->sleep)
 *   3. uhp_wait(), the sleep protocol for other loops, uhp_set_spin(),
 *      uhp_send_wait(), uhp_recv_wait()
 *
 * uhp_wait: spin a little (records usually follow each other closely), then
 * store need_wakeup = 1 in every ring, full fence, re-check every ring, and
 * only then sleep. Each sleep is capped by the stall timeout (and 1 s) so
 * that dead-producer recovery runs and a lost NOTIFY costs at most that long.
 * need_wakeup is cleared on the way out.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <time.h>

#include "cpu_relax.h"
#include "uhp_internal.h"

/*
 * The spin gives the CPU away every UHP_SPIN_YIELD_EVERY checks: a producer
 * that shares this CPU (a kernel producer's work item, a thread pinned
 * here) cannot fill the ring while we spin, and sched_yield() lets it run
 * instead of waiting out the spin. Alone on its CPU, the call returns at
 * once (~0.1 us on x86).
 */
#define UHP_SPIN_YIELD_EVERY	32
#define UHP_SLEEP_CAP_NS	1000000000ULL
/* uhp_send_wait(): tries before it sleeps, and its sleeps (doubling). */
#define UHP_SEND_SPIN		64
#define UHP_SEND_SLEEP_MIN_NS	1000ULL
#define UHP_SEND_SLEEP_MAX_NS	1000000ULL

/* ---- 1. helpers ---- */

static void need_wakeup_set(struct uhp_channel *ch, uint32_t v)
{
	int cpu = v ? sched_getcpu() : -1;

	for (unsigned k = 0; k < ch->nr_rings; k++) {
		struct uhp_ring *r = &ch->rings[k];

		if (v) {
			/* informational */
			if (cpu >= 0)
				__atomic_store_n(&r->cons->consumer_cpu,
						 (uint32_t)cpu, __ATOMIC_RELAXED);
			/*
			 * Re-publish our private read_pos: if a peer scribbled
			 * on it, the kernel would otherwise judge POLLIN on a
			 * wrong position. Same pairing as uhp__ring_consume().
			 */
			__atomic_store_n(&r->cons->read_pos, r->rpos,
					 __ATOMIC_RELEASE);
		}
		/* Ordered by the fence in uhp_wait() (set) or not at all (clear:
		 * a stale 1 only costs a producer one needless NOTIFY). */
		__atomic_store_n(&r->wake->need_wakeup, v, __ATOMIC_RELAXED);
	}
}

/* ---- 2. one sleep ---- */

/*
 * Returns 0 after sleeping up to ns, or -errno: -EPIPE for POLLHUP (the
 * channel hung up: uhp_wait() decides what that means), -EIO for POLLERR.
 */
int uhp__poll_sleep(int fd, uint64_t ns)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	int ms = (int)((ns + 999999) / 1000000);
	int n = poll(&pfd, 1, ms);

	if (n < 0)
		return -errno;
	if (n > 0 && (pfd.revents & POLLNVAL))
		return -EBADF;
	if (n > 0 && (pfd.revents & POLLERR))
		return -EIO;
	if (n > 0 && (pfd.revents & POLLHUP))
		return -EPIPE;
	return 0;
}

/*
 * Every ring read up to where its producers wrote: nothing committed nor
 * reserved is left. (A dead producer's reservation is skipped after the
 * stall timeout, and the records behind it are taken then.)
 */
static bool rings_drained(struct uhp_channel *ch)
{
	/* Relaxed: called after a hang-up, when no writer is left to move
	 * write_pos (the kernel counted the last one out). */
	for (unsigned k = 0; k < ch->nr_rings; k++)
		if (__atomic_load_n(&ch->rings[k].prod->write_pos, __ATOMIC_RELAXED) !=
		    ch->rings[k].rpos)
			return false;
	return true;
}

/* ---- 3. public ---- */

UHP_API int uhp_wait(struct uhp_channel *ch, int timeout_ms)
{
	uint64_t deadline, cap, backoff = UHP_MEM_SLEEP_MIN_NS;
	int ret;

	if (!ch->consumer)
		return -EPERM;
	if (uhp__ready(ch))
		return 1;
	if (timeout_ms == 0)
		return -ETIMEDOUT;
	for (unsigned i = 1; i <= ch->spin; i++) {
		if (i % UHP_SPIN_YIELD_EVERY)
			cpu_relax();
		else
			sched_yield();
		if (uhp__ready(ch))
			return 1;
	}

	deadline = timeout_ms < 0 ? UINT64_MAX :
		   uhp__now_ns() + (uint64_t)timeout_ms * 1000000ULL;
	cap = ch->stall_timeout_ns && ch->stall_timeout_ns < UHP_SLEEP_CAP_NS ?
	      ch->stall_timeout_ns : UHP_SLEEP_CAP_NS;

	need_wakeup_set(ch, 1);
	/*
	 * Full barrier: need_wakeup stores before the re-check's tag loads.
	 * Pairs with the producer's fence between its committed tag store and
	 * its need_wakeup load (wake_check() in ring.c).
	 */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	for (;;) {
		/*
		 * Read before the re-check (an arena's futex word): a wakeup
		 * after it changes the token, so the sleep returns at once.
		 */
		uint32_t token = ch->be->wake_token(ch);
		uint64_t now;

		uhp__stall_check_soon(ch);	/* a dead producer, too */
		if (uhp__ready(ch)) {
			ret = 1;
			break;
		}
		now = uhp__now_ns();
		if (now >= deadline) {
			ret = -ETIMEDOUT;
			break;
		}
		UHP_PROBE2(sleep, ch, deadline - now < cap ? deadline - now : cap);
		ret = ch->be->sleep(ch, token,
				    deadline - now < cap ? deadline - now : cap,
				    &backoff);
		UHP_PROBE2(wake, ch, ret);
		if (ret == -EPIPE && !rings_drained(ch)) {
			/* Hung up, but records or a stalled reservation are
			 * left: take them first (poll() would return at once). */
			struct timespec ts = { 0, 1000000 };

			nanosleep(&ts, NULL);
			ret = 0;
		}
		if (ret < 0)
			break;
	}
	need_wakeup_set(ch, 0);
	if (ret == -EPIPE)
		UHP_PROBE1(hangup, ch);
	return ret;
}

/*
 * uhp_wait() of libuhp 0.1, for the programs linked against it: 0 on a
 * timeout. Not in uhp.h; the name matches no uhp_* pattern of libuhp.map,
 * only the .symver alias is exported.
 */
__attribute__((visibility("default"))) int compat_uhp_wait_0_1(struct uhp_channel *ch,
								int timeout_ms);
__attribute__((visibility("default"))) int compat_uhp_wait_0_1(struct uhp_channel *ch,
								int timeout_ms)
{
	int ret = uhp_wait(ch, timeout_ms);

	return ret == -ETIMEDOUT ? 0 : ret;
}
__asm__(".symver compat_uhp_wait_0_1, uhp_wait@UHP_0.1");

/*
 * The sleep protocol for callers that wait on their own (epoll, io_uring):
 * announce, fence, re-check. 1: data is ready, do not sleep; 0: sleep.
 */
UHP_API int uhp_prepare_sleep(struct uhp_channel *ch)
{
	if (!ch->consumer)
		return -EPERM;
	need_wakeup_set(ch, 1);
	/* Pairs with the producer's fence after its commit (wake_check()). */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	uhp__stall_check_soon(ch);
	return uhp__ready(ch) ? 1 : 0;
}

UHP_API void uhp_end_sleep(struct uhp_channel *ch)
{
	if (ch->consumer) {
		need_wakeup_set(ch, 0);
		ch->be->end_sleep(ch);
	}
}

UHP_API void uhp_set_spin(struct uhp_channel *ch, unsigned checks)
{
	ch->spin = checks;
}

UHP_API int uhp_send_wait(struct uhp_channel *ch, const void *buf, uint32_t len,
			  const struct uhp_meta *meta, int timeout_ms)
{
	uint64_t deadline = 0, nap = UHP_SEND_SLEEP_MIN_NS;

	for (unsigned i = 0;; i++) {
		int ret = uhp_send(ch, buf, len, meta);
		uint64_t now;
		struct timespec ts;

		if (ret != -EAGAIN)
			return ret;
		if (timeout_ms == 0)
			return -ETIMEDOUT;
		if (i < UHP_SEND_SPIN) {
			cpu_relax();
			continue;
		}
		now = uhp__now_ns();
		if (!deadline)
			deadline = timeout_ms < 0 ? UINT64_MAX :
				   now + (uint64_t)timeout_ms * 1000000ULL;
		if (now >= deadline)
			return -ETIMEDOUT;
		if (nap > deadline - now)
			nap = deadline - now;
		ts.tv_sec = (time_t)(nap / 1000000000ULL);
		ts.tv_nsec = (long)(nap % 1000000000ULL);
		nanosleep(&ts, NULL);
		if (nap < UHP_SEND_SLEEP_MAX_NS)
			nap *= 2;
	}
}

/* The deadline of a wait of timeout_ms (< 0: none, UINT64_MAX). */
static uint64_t deadline_of(int timeout_ms)
{
	return timeout_ms < 0 ? UINT64_MAX :
	       uhp__now_ns() + (uint64_t)timeout_ms * 1000000ULL;
}

/*
 * A receive found nothing (-EAGAIN): wait for a record until deadline.
 * 0: try again; -ETIMEDOUT, or a uhp_wait() -errno.
 */
static int wait_until(struct uhp_channel *ch, uint64_t deadline)
{
	uint64_t now = uhp__now_ns();
	int w;

	if (now >= deadline)
		return -ETIMEDOUT;
	w = uhp_wait(ch, deadline == UINT64_MAX ? -1 :
		     (int)((deadline - now + 999999) / 1000000));
	return w < 0 ? w : 0;
}

UHP_API int uhp_recv_batch_wait(struct uhp_channel *ch, struct uhp_rx_msg *msgs,
				unsigned n, int timeout_ms)
{
	uint64_t deadline = deadline_of(timeout_ms);
	int got, w;

	if (n == 0)
		return 0;
	while ((got = uhp_recv_batch(ch, msgs, n)) == -EAGAIN) {
		w = wait_until(ch, deadline);
		if (w)
			return w;
	}
	return got;
}

UHP_API ssize_t uhp_recv_wait(struct uhp_channel *ch, void *buf, size_t cap,
			      struct uhp_meta *meta_out, int timeout_ms)
{
	uint64_t deadline = deadline_of(timeout_ms);
	ssize_t n;
	int w;

	while ((n = uhp_recv(ch, buf, cap, meta_out)) == -EAGAIN) {
		w = wait_until(ch, deadline);
		if (w)
			return w;
	}
	return n;
}
