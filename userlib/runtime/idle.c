// SPDX-License-Identifier: MIT
/*
 * What idle workers do, so that an idle pool burns no CPU and still wakes
 * for every record. A worker that found no work spun (opts.spin polls of
 * the queues, runtime.c) and yielded; then it sleeps in one of two roles:
 *
 *   watcher  (at most one: rt->watcher) claims every IDLE agent (IDLE ->
 *            RUNNING, so it may call the inbox's consumer functions), arms
 *            need_wakeup on each inbox with uhp_prepare_sleep() and sleeps
 *            on all of them at once:
 *              - arena inboxes: their futex words with futex_waitv(2)
 *                (Linux 5.16+), plus the runtime's watch_seq word in slot
 *                0, up to FUTEX_WAITV_MAX (128) words in all;
 *              - /dev/uhp inboxes: poll(2) on their fds plus an eventfd;
 *              - inboxes that cannot wake it (past the 127 arena words, the
 *                arenas while it polls fds, in-memory channels, or a kernel
 *                without futex_waitv) are "blind": the sleep is then cut to
 *                SLICE_NS and those inboxes are checked after each slice.
 *            A poke without queued work (uhp__idle_rescan(): agents went
 *            IDLE or were added) makes it scan again and stay seated.
 *            When it wakes for work it hands every agent back: queued if records
 *            wait (uhp__agent_release()), IDLE otherwise; if it queued any
 *            it wakes a parked peer, which becomes the next watcher, and
 *            goes to work.
 *   parked   every other idle worker: sleeps on the futex word wake_seq.
 *
 * Wakeups: uhp__idle_kick() (work was queued) does nothing while a worker
 * is searching (it will find the work), else wakes a parked worker, else
 * pokes the watcher (watch_seq). In a pool of P and E workers it wakes
 * every parked worker and the watcher: one of the right kind must come.
 * A worker that let agents go IDLE while a watcher slept pokes it when it
 * starts backing off (runtime.c) and again before parking, so that the
 * watcher scans again and takes them on; busy workers sweep inboxes
 * instead. A watcher that leaves its seat wakes a parked worker
 * (uhp__idle_unwatch()), and a worker does not park while the seat is
 * empty, so idle workers do not all sleep where no inbox can wake them.
 * Every sleep is bounded: the watcher's by SLEEP_CAP_NS (the default stall
 * timeout, so dead-producer recovery runs), a parked worker's by
 * PARK_CAP_NS, and both by w->wake_by, the time of the worker's next
 * deferred agent (runtime.c): nothing wakes a worker for its own retry
 * list, so it must wake by itself.
 *
 * While it sleeps the watcher owns the idle agents (RUNNING): a send to one
 * marks it NOTIFIED and wakes the watcher through the inbox, which queues
 * it. So the watcher thread must get a CPU soon after a wakeup; a pool
 * pinned to CPUs that other pinned, busy threads share can see delays.
 *
 * The need_wakeup handshake per inbox is uhp_wait()'s (wait.c): read the
 * arena's futex word, announce need_wakeup, full fence, re-check; the
 * producer fences after its commit and wakes the word if it sees the flag.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "runtime_internal.h"

#define SLEEP_CAP_NS	UHP_DEFAULT_STALL_TIMEOUT_NS
#define SLICE_NS	10000000ULL	/* blind inboxes: checked this often */
#define PARK_CAP_NS	1000000000ULL
#define WAITV_MAX	FUTEX_WAITV_MAX

/* ---- clocks ---- */

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/*
 * At most cap ns, and not past w->wake_by (0: none). 0 when wake_by has
 * come: do not sleep.
 */
static uint64_t sleep_ns(const struct uhp__worker *w, uint64_t cap)
{
	uint64_t now;

	if (!w->wake_by)
		return cap;
	now = mono_ns();
	if (now >= w->wake_by)
		return 0;
	return w->wake_by - now < cap ? w->wake_by - now : cap;
}

/* ---- futex words ---- */

static long futex(uint32_t *word, int op, uint32_t val, const struct timespec *ts)
{
	return syscall(SYS_futex, word, op, val, ts, NULL, 0);
}

static struct timespec rel_ts(uint64_t ns)
{
	return (struct timespec){ .tv_sec = (time_t)(ns / 1000000000ULL),
				  .tv_nsec = (long)(ns % 1000000000ULL) };
}

/* Wake the watcher: watch_seq moves, so its waitv returns. */
static void poke_watcher(struct uhp_runtime *rt)
{
	uint64_t one = 1;

	/* seq_cst: pairs with the watcher's load of watch_seq before its
	 * scan of the agents (see uhp__agent_claim()). */
	__atomic_fetch_add(&rt->watch_seq, 1, __ATOMIC_SEQ_CST);
	futex(&rt->watch_seq, FUTEX_WAKE_PRIVATE, 1, NULL);
	/* Pairs with the watcher's store of watcher_polls before its
	 * last look at watch_seq: either it sees the bump or we see it polls. */
	if (__atomic_load_n(&rt->watcher_polls, __ATOMIC_SEQ_CST) &&
	    write(rt->evfd, &one, sizeof(one)) < 0) {
		/* the eventfd is full: it is readable, the watcher wakes */
	}
}

void uhp__idle_kick(struct uhp_runtime *rt)
{
	/*
	 * Full fence: the queued work before the loads below. Pairs with the
	 * fence in park()/watch() between registering as asleep and the last
	 * look for work: either the sleeper sees the work or we see it.
	 */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (rt->mixed) {
		/*
		 * P and E workers: the one searching, parked or watching may
		 * be of the wrong kind for this work, and would leave it
		 * there. Wake them all; they sort it out (hybrid pools only).
		 */
		__atomic_fetch_add(&rt->wake_seq, 1, __ATOMIC_SEQ_CST);
		if (__atomic_load_n(&rt->nr_parked, __ATOMIC_RELAXED))
			futex(&rt->wake_seq, FUTEX_WAKE_PRIVATE, INT_MAX, NULL);
		if (__atomic_load_n(&rt->watcher, __ATOMIC_RELAXED) >= 0)
			poke_watcher(rt);
		return;
	}
	if (__atomic_load_n(&rt->nr_searching, __ATOMIC_RELAXED))
		return;
	if (__atomic_load_n(&rt->nr_parked, __ATOMIC_RELAXED)) {
		__atomic_fetch_add(&rt->wake_seq, 1, __ATOMIC_SEQ_CST);
		futex(&rt->wake_seq, FUTEX_WAKE_PRIVATE, 1, NULL);
		return;
	}
	if (__atomic_load_n(&rt->watcher, __ATOMIC_RELAXED) >= 0)
		poke_watcher(rt);
}

void uhp__idle_rescan(struct uhp_runtime *rt)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);	/* as in uhp__idle_kick() */
	if (__atomic_load_n(&rt->watcher, __ATOMIC_RELAXED) >= 0)
		poke_watcher(rt);
}

void uhp__idle_wake_all(struct uhp_runtime *rt)
{
	/* stop is set (seq_cst) before: a sleeper re-checks it after waking */
	__atomic_fetch_add(&rt->wake_seq, 1, __ATOMIC_SEQ_CST);
	futex(&rt->wake_seq, FUTEX_WAKE_PRIVATE, INT_MAX, NULL);
	poke_watcher(rt);
}

/* ---- parked ---- */

static void park(struct uhp__worker *w)
{
	struct uhp_runtime *rt = w->rt;
	struct timespec ts;
	uint64_t ns;
	uint32_t seq;

	if (w->released) {
		w->released = false;
		uhp__idle_rescan(rt);	/* watch what we let go IDLE */
	}
	__atomic_fetch_add(&rt->nr_parked, 1, __ATOMIC_SEQ_CST);
	__atomic_fetch_sub(&rt->nr_searching, 1, __ATOMIC_SEQ_CST);
	/*
	 * Pairs with the fence in uhp__idle_kick() (work queued, then
	 * nr_searching/nr_parked loaded) and with the one in
	 * uhp__idle_unwatch() (watcher = -1, then nr_parked loaded): either
	 * they see us parked and bump wake_seq, or we see their work / the
	 * empty watcher seat below.
	 */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	/* Before the looks below: a kick after them changes it. */
	seq = __atomic_load_n(&rt->wake_seq, __ATOMIC_SEQ_CST);
	/*
	 * No watcher (it left while we were on our way here): do not sleep
	 * where no inbox can wake us; go round and take the watch.
	 */
	if (!__atomic_load_n(&rt->stop, __ATOMIC_SEQ_CST) &&
	    __atomic_load_n(&rt->watcher, __ATOMIC_SEQ_CST) >= 0 &&
	    !uhp__rt_has_work(w) && (ns = sleep_ns(w, PARK_CAP_NS)) != 0) {
		ts = rel_ts(ns);
		__atomic_store_n(&w->stats.sleeps, w->stats.sleeps + 1,
				 __ATOMIC_RELAXED);
		futex(&rt->wake_seq, FUTEX_WAIT_PRIVATE, seq, &ts);
	}
	__atomic_fetch_add(&rt->nr_searching, 1, __ATOMIC_SEQ_CST);
	__atomic_fetch_sub(&rt->nr_parked, 1, __ATOMIC_SEQ_CST);
}

/* ---- watcher ---- */

struct watch {
	struct futex_waitv *wv;		/* [0]: watch_seq, then arena words */
	struct pollfd *pfd;		/* [0]: the eventfd, then inbox fds */
	unsigned nw, nfut, nfd, blind;
	uint32_t wseq;
};

/* Cleared at the first ENOSYS (Linux < 5.16); relaxed: any value is safe. */
static bool have_waitv = true;

/* Arm inbox a (claimed) and file it. false: records wait, do not sleep. */
static bool watch_arm(struct watch *ws, struct uhp_agent *a)
{
	struct uhp_channel *ch = a->inbox;
	uint32_t *word = ch->be->wake_word(ch);
	/* Read before the re-check in uhp_prepare_sleep(): a producer that
	 * commits after it bumps the word, and the waitv returns at once. */
	uint32_t val = word ? __atomic_load_n(word, __ATOMIC_SEQ_CST) : 0;

	if (uhp_prepare_sleep(ch) != 0)
		return false;
	a->rt->watched[ws->nw++] = a;
	if (word && ws->nfut < WAITV_MAX) {
		ws->wv[ws->nfut++] = (struct futex_waitv){
			.val = val, .uaddr = (uintptr_t)word, .flags = FUTEX_32,
		};
	} else if (!word && ch->fd >= 0 && !a->inbox_hup) {
		a->rt->pfd_agent[ws->nfd] = a;
		ws->pfd[ws->nfd++] = (struct pollfd){ .fd = ch->fd, .events = POLLIN };
	} else {
		ws->blind++;
	}
	return true;
}

/* One sleep on everything armed, of at most ns. */
static void watch_sleep(struct uhp_runtime *rt, struct watch *ws, uint64_t ns)
{
	bool polls = ws->nfd > 1;
	bool waitv = __atomic_load_n(&have_waitv, __ATOMIC_RELAXED);

	if (polls) {
		uint64_t drain;

		__atomic_store_n(&rt->watcher_polls, 1, __ATOMIC_SEQ_CST);
		/* Pairs with poke_watcher(): bump, then load watcher_polls. */
		if (__atomic_load_n(&rt->watch_seq, __ATOMIC_SEQ_CST) == ws->wseq &&
		    poll(ws->pfd, ws->nfd, (int)((ns + 999999) / 1000000)) > 0) {
			if ((ws->pfd[0].revents & POLLIN) &&
			    read(rt->evfd, &drain, sizeof(drain)) < 0) {
				/* EAGAIN: drained by an earlier wake */
			}
			/* A hung-up inbox: blind from now on (checked each slice). */
			for (unsigned i = 1; i < ws->nfd; i++)
				if (ws->pfd[i].revents & (POLLHUP | POLLERR | POLLNVAL))
					rt->pfd_agent[i]->inbox_hup = true;
		}
		__atomic_store_n(&rt->watcher_polls, 0, __ATOMIC_RELAXED);
		return;
	}
	if (waitv) {
		struct timespec abs;

		clock_gettime(CLOCK_MONOTONIC, &abs);
		abs.tv_sec += (time_t)(ns / 1000000000ULL);
		abs.tv_nsec += (long)(ns % 1000000000ULL);
		if (abs.tv_nsec >= 1000000000L) {
			abs.tv_sec++;
			abs.tv_nsec -= 1000000000L;
		}
		if (syscall(SYS_futex_waitv, ws->wv, ws->nfut, 0, &abs,
			    CLOCK_MONOTONIC) < 0 && errno == ENOSYS)
			__atomic_store_n(&have_waitv, false, __ATOMIC_RELAXED);
		else
			return;
	}
	/* No futex_waitv: the watch word alone, every inbox blind. */
	struct timespec ts = rel_ts(ns < SLICE_NS ? ns : SLICE_NS);

	futex(&rt->watch_seq, FUTEX_WAIT_PRIVATE, ws->wseq, &ts);
}

/* After a wake: records in a watched inbox? Re-reads the futex words
 * first (same order as watch_arm()) so the next waitv does not spin. */
static bool watch_check(struct uhp_runtime *rt, struct watch *ws)
{
	unsigned f = 1;

	for (unsigned i = 0; i < ws->nw; i++) {
		struct uhp_channel *ch = rt->watched[i]->inbox;

		uint32_t *word = ch->be->wake_word(ch);

		if (word && f < ws->nfut && ws->wv[f].uaddr == (uintptr_t)word)
			ws->wv[f++].val = __atomic_load_n(word, __ATOMIC_SEQ_CST);
	}
	for (unsigned i = 0; i < ws->nw; i++)
		if (uhp__ready(rt->watched[i]->inbox))
			return true;
	return false;
}

/*
 * Claim and arm every IDLE agent (those already watched are RUNNING and
 * skipped). Returns true if one had records waiting (queued, do not sleep).
 */
static bool watch_scan(struct uhp__worker *w, struct watch *ws)
{
	struct uhp_runtime *rt = w->rt;
	bool found = false;
	/* Pairs with the store-release in uhp_runtime_add_agent(). */
	uint32_t n = __atomic_load_n(&rt->nr_agents, __ATOMIC_ACQUIRE);

	for (uint32_t i = 0; i < n; i++) {
		struct uhp_agent *a = rt->agents[i];

		if (!uhp__agent_claim(a))
			continue;	/* queued, running, stopped, ours */
		if (!watch_arm(ws, a)) {
			uhp_end_sleep(a->inbox);
			uhp__agent_release(w, a, true);
			found = true;
		}
	}
	return found;
}

static void watch(struct uhp__worker *w)
{
	struct uhp_runtime *rt = w->rt;
	struct watch ws = { .wv = rt->waitv, .pfd = rt->pfds, .nfut = 1, .nfd = 1 };
	bool found, queued = false;

	w->released = false;	/* we are about to watch everything */
	__atomic_fetch_sub(&rt->nr_searching, 1, __ATOMIC_SEQ_CST);
	/* Before the scan: a poke after any claim below changes it. */
	ws.wseq = __atomic_load_n(&rt->watch_seq, __ATOMIC_SEQ_CST);
	ws.wv[0] = (struct futex_waitv){
		.val = ws.wseq, .uaddr = (uintptr_t)&rt->watch_seq,
		.flags = FUTEX_32 | FUTEX_PRIVATE_FLAG,
	};
	ws.pfd[0] = (struct pollfd){ .fd = rt->evfd, .events = POLLIN };

	found = watch_scan(w, &ws);
	/* Pairs with the fence in uhp__idle_kick() (we are the watcher). */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!found) {
		__atomic_store_n(&w->stats.watches, w->stats.watches + 1,
				 __ATOMIC_RELAXED);
		while (!__atomic_load_n(&rt->stop, __ATOMIC_SEQ_CST) &&
		       !uhp__rt_has_work(w)) {
			uint32_t seq = __atomic_load_n(&rt->watch_seq, __ATOMIC_SEQ_CST);

			if (seq != ws.wseq) {
				/*
				 * Poked: agents went IDLE behind our scan, were
				 * added, or work was queued (then has_work()
				 * above ends the watch). Take the new ones on
				 * and stay in the seat: leaving it would wake a
				 * parked worker (uhp__idle_unwatch()), whose
				 * sweeps and back-off poke the next watcher,
				 * and so on, a pool that never sleeps.
				 */
				ws.wseq = seq;
				ws.wv[0].val = seq;
				if (watch_scan(w, &ws))
					break;
				/* As after the first scan. */
				__atomic_thread_fence(__ATOMIC_SEQ_CST);
				continue;
			}
			bool blind = ws.blind || (ws.nfd > 1 && ws.nfut > 1) ||
				     !__atomic_load_n(&have_waitv, __ATOMIC_RELAXED);
			/* A deferred agent of ours is due: go and run it. */
			uint64_t ns = sleep_ns(w, blind ? SLICE_NS : SLEEP_CAP_NS);

			if (!ns)
				break;
			__atomic_store_n(&w->stats.sleeps, w->stats.sleeps + 1,
					 __ATOMIC_RELAXED);
			watch_sleep(rt, &ws, ns);
			if (watch_check(rt, &ws))
				break;
		}
	}
	for (unsigned i = 0; i < ws.nw; i++) {
		struct uhp_agent *a = rt->watched[i];

		uhp_end_sleep(a->inbox);
		queued |= uhp__agent_release(w, a, uhp__ready(a->inbox));
	}
	w->released = false;	/* nobody watches now; the next one scans */
	/*
	 * We go to work: hand the watch over. Not counted as searching yet,
	 * so the kick wakes a parked worker if there is one; it finds no
	 * work (or helps), and as the next idle worker becomes the watcher.
	 * uhp__idle_unwatch() then wakes one that parked since (park() does
	 * not sleep once the seat is empty).
	 */
	if (found || queued)
		uhp__idle_kick(rt);
	__atomic_fetch_add(&rt->nr_searching, 1, __ATOMIC_SEQ_CST);
}

void uhp__idle_unwatch(struct uhp_runtime *rt)
{
	/* seq_cst: pairs with the loads of watcher in kick/rescan/park. */
	__atomic_store_n(&rt->watcher, -1, __ATOMIC_SEQ_CST);
	/*
	 * Full fence: the empty seat before the load of nr_parked. Pairs
	 * with the fence in park() between nr_parked++ and its look at
	 * watcher: either it sees the seat empty and does not sleep, or we
	 * see it parked and wake it to take the watch over. Without this, a
	 * worker that parked while we were leaving sleeps up to PARK_CAP_NS
	 * with nobody watching the idle inboxes.
	 */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (__atomic_load_n(&rt->nr_parked, __ATOMIC_RELAXED)) {
		__atomic_fetch_add(&rt->wake_seq, 1, __ATOMIC_SEQ_CST);
		futex(&rt->wake_seq, FUTEX_WAKE_PRIVATE, 1, NULL);
	}
}

void uhp__idle_sleep(struct uhp__worker *w)
{
	struct uhp_runtime *rt = w->rt;
	int32_t none = -1;

	/* seq_cst: pairs with the loads of watcher in kick/rescan/park. */
	if (__atomic_compare_exchange_n(&rt->watcher, &none, (int32_t)w->index,
					false, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED)) {
		watch(w);
		uhp__idle_unwatch(rt);
	} else {
		park(w);
	}
}

/* ---- set-up ---- */

int uhp__idle_init(struct uhp_runtime *rt)
{
	rt->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (rt->evfd < 0)
		return -errno;
	rt->watched = calloc(rt->max_agents, sizeof(*rt->watched));
	rt->waitv = calloc(WAITV_MAX, sizeof(struct futex_waitv));
	rt->pfds = calloc(rt->max_agents + 1, sizeof(struct pollfd));
	rt->pfd_agent = calloc(rt->max_agents + 1, sizeof(*rt->pfd_agent));
	if (!rt->watched || !rt->waitv || !rt->pfds || !rt->pfd_agent)
		return -ENOMEM;		/* uhp__idle_fini() frees */
	return 0;
}

void uhp__idle_fini(struct uhp_runtime *rt)
{
	if (rt->evfd >= 0)
		close(rt->evfd);
	rt->evfd = -1;
	free(rt->watched);
	free(rt->waitv);
	free(rt->pfds);
	free(rt->pfd_agent);
}
