// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit: uhp_context -- the calling contexts the module promises, checked
 * from the contexts themselves rather than from comments:
 *
 *   - a hard interrupt (a HRTIMER_MODE_*_HARD timer) never takes a vector
 *     copy path: kernel_fpu_begin() there would save the interrupted task's
 *     whole vector state with interrupts off;
 *   - a hard interrupt that arrives the moment a kernel producer drops klock
 *     (where interrupts held back by the lock are taken) finds every record
 *     in [kpending, kwpos) already tagged and sized, as the next producer's
 *     kpending walk expects;
 *   - a consumer that takes the role the moment the old one drops it (from
 *     a hard interrupt at any point of the drop) keeps the need_wakeup it
 *     armed: the old consumer clears its own before letting go;
 *   - a final put may sleep, so every put says so (might_sleep()), even one
 *     that would not;
 *   - NMI is refused (klock is not NMI-safe), not deadlocked on.
 *
 * The NMI case sets the NMI bits of preempt_count, which is all in_nmi()
 * reads: UML, where KUnit runs, has no NMIs to send.
 */
#include <kunit/test.h>
#include <linux/hardirq.h>
#include <linux/hrtimer.h>
#include <linux/jiffies.h>
#include <linux/panic.h>
#include <linux/preempt.h>

#include "uhp_kunit.h"
#include "../kmod/compat.h"

/*
 * A one-shot hard-irq timer on this CPU that runs 'fn' each time it fires.
 * Test-managed memory, not the stack: DEBUG_OBJECTS_TIMERS (the debug lane)
 * wants on-stack timers set up with their own calls.
 */
struct ctx_timer {
	struct hrtimer t;
	void (*fn)(struct ctx_timer *ct);
	atomic_t shots;		/* callbacks finished */
	bool all_hardirq;	/* in_hardirq() held in every callback */
	struct uhp_ring *r;	/* for the ring probe */
	struct uhp_channel *ch;	/* for the hand-over probe */
	bool armed;		/* hand-over probe: took the role, armed */
	bool in_take;		/* hand-over: the old consumer is taking the role */
	atomic_t bad;		/* ring probe: broken records seen */
	u64 bad_pos;
	u64 bad_tag;
	unsigned int path;	/* copy probe: path in and path taken */
};

static enum hrtimer_restart ctx_timer_fn(struct hrtimer *t)
{
	struct ctx_timer *ct = container_of(t, struct ctx_timer, t);

	if (!in_hardirq())
		ct->all_hardirq = false;
	ct->fn(ct);
	/* Pairs with the atomic_read() in ctx_timer_shoot(). */
	smp_mb__before_atomic();
	atomic_inc(&ct->shots);
	return HRTIMER_NORESTART;
}

static struct ctx_timer *ctx_timer_new(struct kunit *test,
				       void (*fn)(struct ctx_timer *ct))
{
	struct ctx_timer *ct = kunit_kzalloc(test, sizeof(*ct), GFP_KERNEL);

	KUNIT_ASSERT_NOT_ERR_OR_NULL(test, ct);
	ct->fn = fn;
	ct->all_hardirq = true;
	uhp_hrtimer_setup(&ct->t, ctx_timer_fn, CLOCK_MONOTONIC,
			  HRTIMER_MODE_REL_PINNED_HARD);
	return ct;
}

/*
 * Fire the timer once, 'ns' from now, running 'work' in a loop until it has
 * fired; false if it did not fire within a second. Either way the timer is
 * idle on return (hrtimer_cancel() waits for a callback still running).
 */
static bool ctx_timer_shoot(struct ctx_timer *ct, u64 ns,
			    void (*work)(struct ctx_timer *ct))
{
	int shots = atomic_read(&ct->shots);
	unsigned long deadline = jiffies + HZ;
	bool fired;

	hrtimer_start(&ct->t, ns_to_ktime(ns), HRTIMER_MODE_REL_PINNED_HARD);
	while (!(fired = atomic_read(&ct->shots) != shots) &&
	       time_before(jiffies, deadline)) {
		if (work)
			work(ct);
		else
			cpu_relax();
	}
	hrtimer_cancel(&ct->t);
	return fired;
}

/* The best vector copy path this CPU has, or UHP_COPY_GENERIC. */
static unsigned int best_simd_path(void)
{
	if (uhp_copy_path_supported(UHP_COPY_AVX512))
		return UHP_COPY_AVX512;
	if (uhp_copy_path_supported(UHP_COPY_AVX2))
		return UHP_COPY_AVX2;
	return UHP_COPY_GENERIC;
}

static void copy_probe(struct ctx_timer *ct)
{
	ct->path = uhp_copy_effective(ct->path, SZ_4K);
}

static void uhp_context_no_simd_in_hardirq(struct kunit *test)
{
	unsigned int simd = best_simd_path();
	struct ctx_timer *ct;

	if (simd == UHP_COPY_GENERIC)
		kunit_skip(test, "no AVX2 or AVX-512 on this CPU: no vector path");
	/* The control: in process context the vector path is taken. */
	KUNIT_ASSERT_EQ(test, uhp_copy_effective(simd, SZ_4K), simd);

	ct = ctx_timer_new(test, copy_probe);
	ct->path = simd;
	KUNIT_ASSERT_TRUE(test, ctx_timer_shoot(ct, 1000, NULL));
	KUNIT_ASSERT_TRUE(test, ct->all_hardirq);
	KUNIT_EXPECT_NE_MSG(test, ct->path, simd,
			    "a 4 KiB copy in hard-irq took the %s path",
			    uhp_copy_name(simd));
	KUNIT_EXPECT_TRUE(test,
			  ct->path == UHP_COPY_ERMS || ct->path == UHP_COPY_GENERIC);
}

/*
 * In hard-irq, with klock (no producer on this CPU can hold it now: it
 * keeps interrupts off): every header from kpending to kwpos carries its
 * position's tag, BUSY or committed, and a length that stays below kwpos.
 */
static void ring_probe(struct ctx_timer *ct)
{
	struct uhp_ring *r = ct->r;
	u64 pos, tag;
	u32 len;

	raw_spin_lock(&r->klock);
	for (pos = r->kpending; pos != r->kwpos; pos += UHP_REC_TOTAL(len)) {
		struct uhp_rec_hdr *h = uhp_kunit_hdr(r, pos);

		tag = READ_ONCE(h->tag);
		len = READ_ONCE(h->len);
		if ((tag != (pos ^ r->salt) &&
		     tag != (pos ^ r->salt ^ UHP_TAG_BUSY)) ||
		    UHP_REC_TOTAL(len) > r->kwpos - pos) {
			if (atomic_inc_return(&ct->bad) == 1) {
				ct->bad_pos = pos;
				ct->bad_tag = tag;
			}
			break;
		}
	}
	raw_spin_unlock(&r->klock);
}

/* One kernel producer record, the consumer keeping up. */
static void ring_work(struct ctx_timer *ct)
{
	struct uhp_ring *r = ct->r;
	struct uhp_rec_hdr h = { .len = 40, .flags = UHP_REC_F_KERNEL };
	u64 pos;

	if (uhp_kring_reserve(r, h.len, &pos))
		return;
	memset(uhp_ring_payload(r, pos), 0x33, h.len);
	h.crc = uhp_rec_crc(&h, uhp_ring_payload(r, pos), h.len);
	uhp_ring_commit(r, pos, &h);
	/* The consumer: everything up to this record is read. */
	smp_store_release(&r->cons->read_pos, pos + UHP_REC_TOTAL(h.len));
}

#define RING_PROBE_SHOTS	2000

/*
 * Interrupts that come while a producer holds klock run the moment it
 * drops it. A reservation that tagged its record only after dropping
 * klock left that record's header stale for exactly that moment.
 */
static void uhp_context_kring_tagged_at_unlock(struct kunit *test)
{
	unsigned long deadline = jiffies + 3 * HZ;
	struct ctx_timer *ct = ctx_timer_new(test, ring_probe);
	unsigned int i;

	ct->r = uhp_kunit_ring_kind(test, 4 * PAGE_SIZE, true);
	for (i = 0; i < RING_PROBE_SHOTS && time_before(jiffies, deadline); i++)
		KUNIT_ASSERT_TRUE(test, ctx_timer_shoot(ct, 500 + (i * 37) % 4000,
							ring_work));
	KUNIT_ASSERT_TRUE(test, ct->all_hardirq);
	KUNIT_EXPECT_EQ_MSG(test, atomic_read(&ct->bad), 0,
			    "first at %llu: tag %#llx (kwpos %llu)",
			    ct->bad_pos, ct->bad_tag, ct->r->kwpos);
	kunit_info(test, "%u interrupts, %llu bytes reserved", i, ct->r->kwpos);
}

/* Stand-ins for two consumer files: the role is compared, never used. */
static const struct file *const old_consumer = (const struct file *)0x1000;
static const struct file *const new_consumer = (const struct file *)0x2000;

/*
 * The next consumer: takes the role if it is free and arms need_wakeup at
 * once. While the old consumer is taking the role under consumer_lock it
 * would have to wait, so it gives up instead (in_take, set around that:
 * on UML, a UP kernel, the spinlock has no state to look at).
 */
static void handover_probe(struct ctx_timer *ct)
{
	struct uhp_channel *ch = ct->ch;

	if (READ_ONCE(ct->in_take) || READ_ONCE(ch->consumer))
		return;
	WRITE_ONCE(ch->consumer, (struct file *)new_consumer);
	WRITE_ONCE(ch->rings[0].wake->need_wakeup, 1);
	ct->armed = true;
}

/* The old consumer takes the role (as ATTACH does) and drops it again. */
static void handover_work(struct ctx_timer *ct)
{
	struct uhp_channel *ch = ct->ch;

	WRITE_ONCE(ct->in_take, true);
	spin_lock(&ch->consumer_lock);
	if (!ch->consumer)
		WRITE_ONCE(ch->consumer, (struct file *)old_consumer);
	spin_unlock(&ch->consumer_lock);
	WRITE_ONCE(ct->in_take, false);
	WRITE_ONCE(ch->rings[0].wake->need_wakeup, 1);
	uhp_channel_consumer_drop(ch, old_consumer);
}

#define HANDOVER_SHOTS	2000

static void uhp_context_consumer_handover(struct kunit *test)
{
	struct ctx_timer *ct = ctx_timer_new(test, handover_probe);
	unsigned long deadline = jiffies + 3 * HZ;
	unsigned int i, taken = 0, wiped = 0;

	ct->ch = uhp_channel_alloc("kunit.handover", PAGE_SIZE, 0, 0600, 0, 0);
	KUNIT_ASSERT_FALSE(test, IS_ERR(ct->ch));
	for (i = 0; i < HANDOVER_SHOTS && time_before(jiffies, deadline); i++) {
		ct->armed = false;
		WRITE_ONCE(ct->ch->consumer, NULL);
		if (!ctx_timer_shoot(ct, 500 + (i * 37) % 4000, handover_work))
			break;
		if (!ct->armed)
			continue;
		taken++;
		if (!READ_ONCE(ct->ch->rings[0].wake->need_wakeup))
			wiped++;
	}
	WRITE_ONCE(ct->ch->consumer, NULL);
	uhp_channel_put(ct->ch);
	KUNIT_ASSERT_TRUE(test, ct->all_hardirq);
	KUNIT_EXPECT_GT(test, taken, 0U);
	KUNIT_EXPECT_EQ_MSG(test, wiped, 0U,
			    "the old consumer wiped the need_wakeup of the new one");
	kunit_info(test, "%u interrupts, the role changed hands in %u", i, taken);
}

/*
 * A put that is not the last would not sleep, but the next one might:
 * might_sleep() reports the caller in atomic context every time, which
 * CONFIG_DEBUG_ATOMIC_SLEEP shows as a warning (taint W).
 */
static void uhp_context_put_might_sleep(struct kunit *test)
{
	struct uhp_channel *ch;

	if (!IS_ENABLED(CONFIG_DEBUG_ATOMIC_SLEEP))
		kunit_skip(test, "no DEBUG_ATOMIC_SLEEP (not on UML; the debug lane has it)");
	if (test_taint(TAINT_WARN))
		kunit_skip(test, "an earlier warning tainted the kernel: a new one cannot be seen");
	ch = uhp_channel_alloc("kunit.ctx", PAGE_SIZE, 0, 0600, 0, 0);
	KUNIT_ASSERT_FALSE(test, IS_ERR(ch));
	uhp_channel_get(ch);
	preempt_disable();
	uhp_channel_put(ch);		/* not the last reference */
	preempt_enable();
	KUNIT_EXPECT_TRUE_MSG(test, test_taint(TAINT_WARN),
			      "uhp_channel_put() in atomic context went unreported");
	uhp_channel_put(ch);
}

static void uhp_context_nmi_refused(struct kunit *test)
{
	struct uhp_ring *r = uhp_kunit_ring_kind(test, PAGE_SIZE, true);
	u64 pos = ~0ULL, wpos;
	int ret;

	/* What nmi_enter() adds, which is what in_nmi() reads. */
	__preempt_count_add(NMI_OFFSET + HARDIRQ_OFFSET);
	ret = uhp_kring_reserve(r, 16, &pos);
	__preempt_count_sub(NMI_OFFSET + HARDIRQ_OFFSET);
	KUNIT_EXPECT_EQ(test, ret, -EINVAL);
	KUNIT_EXPECT_EQ(test, pos, ~0ULL);
	KUNIT_EXPECT_EQ(test, r->kwpos, 0ULL);
	wpos = READ_ONCE(r->prod->write_pos);
	KUNIT_EXPECT_EQ(test, wpos, 0ULL);
}

/* The might_sleep case first: the NMI case's WARN taints the kernel. */
static struct kunit_case uhp_context_cases[] = {
	KUNIT_CASE(uhp_context_put_might_sleep),
	KUNIT_CASE(uhp_context_no_simd_in_hardirq),
	KUNIT_CASE(uhp_context_kring_tagged_at_unlock),
	KUNIT_CASE(uhp_context_consumer_handover),
	KUNIT_CASE(uhp_context_nmi_refused),
	{}
};

static struct kunit_suite uhp_context_suite = {
	.name = "uhp_context",
	.test_cases = uhp_context_cases,
};

kunit_test_suite(uhp_context_suite);
