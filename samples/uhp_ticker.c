// SPDX-License-Identifier: GPL-2.0
/*
 * uhp_ticker: a sample kernel agent producing into uhp channels.
 *
 * It shows the three ways kernel code produces (kmod/uhp_kapi.h):
 *   - ticks from an hrtimer in hard-irq context (HRTIMER_MODE_*_HARD, so
 *     also on PREEMPT_RT, where other hrtimers expire in a softirq thread),
 *     rate_hz per second; "hardirq_ticks" counts the ticks that really ran
 *     in hard-irq context;
 *   - bursts from a work item (process context): writing N to the "burst"
 *     parameter sends N records, waiting while the ring is full (nothing is
 *     lost); writing N to "flood" sends N without waiting (a full ring drops
 *     records; they are counted in "dropped");
 *   - fan-out: with "fanout" naming up to 16 channels (comma separated),
 *     writing N to "fanout_burst" sends N records to all of them at once
 *     (waiting while every one of them is full; a channel that is full
 *     while others take the record misses it, counted in "dropped");
 *   - parallel bursts: writing N to "pburst" makes each of the first
 *     "pburst_cpus" online CPUs send N records at the same time, from a
 *     work item bound to it (into the kernel ring of its node), each with
 *     src = "src" + its index and its own seq, waiting while full.
 *
 * Records: type 1 tick, 2 burst, 3 flood, 4 fan-out, 5 parallel burst;
 * src = "src" parameter (+ the CPU's index for type 5);
 * seq counts per type from 0; payload = struct uhp_tick followed by bytes
 * (uint8)(seq + i) up to "size" bytes. The channel(s) must exist, created by
 * a process with UHP_CREATE_KERNEL_RINGS, before the module loads.
 *
 *   insmod uhp_ticker.ko channel=agents.in rate_hz=100 size=64
 *   echo 100000 > /sys/module/uhp_ticker/parameters/burst
 */
#include <linux/delay.h>
#include <linux/cpumask.h>
#include <linux/err.h>
#include <linux/hrtimer.h>
#include <linux/module.h>
#include <linux/preempt.h>
#include <linux/moduleparam.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/timekeeping.h>
#include <linux/workqueue.h>

#include "../kmod/compat.h"
#include "../kmod/uhp_kapi.h"

#define TICKER_TYPE_TICK	1
#define TICKER_TYPE_BURST	2
#define TICKER_TYPE_FLOOD	3
#define TICKER_TYPE_FANOUT	4
#define TICKER_TYPE_PBURST	5
#define TICKER_MAX_PCPUS	4
#define TICKER_MAX_SIZE		4096
#define TICKER_MAX_FANOUT	16

/* What every record starts with. */
struct uhp_tick {
	u64 ktime_ns;		/* ktime_get_ns() when sent */
	u64 seq;
};

static char *channel;
module_param(channel, charp, 0444);
MODULE_PARM_DESC(channel, "Channel to produce into (must have kernel rings)");

static unsigned int rate_hz;
module_param(rate_hz, uint, 0444);
MODULE_PARM_DESC(rate_hz, "Ticks per second from an hrtimer (0: none)");

static unsigned int size = 64;
module_param(size, uint, 0444);
MODULE_PARM_DESC(size, "Payload bytes per record (16..4096)");

static unsigned int src = 0x7c;
module_param(src, uint, 0444);
MODULE_PARM_DESC(src, "Source agent id in every record");

static char *fanout;
module_param(fanout, charp, 0444);
MODULE_PARM_DESC(fanout, "Comma separated channels for fanout_burst");

static unsigned int pburst_cpus = 2;
module_param(pburst_cpus, uint, 0444);
MODULE_PARM_DESC(pburst_cpus, "CPUs that each send a pburst (1..4, at most the online CPUs)");

static atomic64_t sent = ATOMIC64_INIT(0);
static atomic64_t dropped = ATOMIC64_INIT(0);
static atomic64_t waits = ATOMIC64_INIT(0);
static atomic64_t hardirq_ticks = ATOMIC64_INIT(0);

static struct uhp_channel *ch;
static struct uhp_kgroup *group;
static int group_size;
static struct hrtimer timer;
static ktime_t period;
static u64 seq[5];
static u8 *tick_buf;		/* hrtimer only: one context, no lock */

/*
 * Work requests: a count per kind, consumed by one work item. req_lock
 * also orders "ready" and "stopping" against queueing the work: requests
 * written before init finished (insmod ... burst=N) wait for init to queue
 * them, and none is queued once exit has begun.
 */
static DEFINE_SPINLOCK(req_lock);
static unsigned int req_burst, req_flood, req_fanout;
static bool ready, stopping;
static void ticker_work_fn(struct work_struct *work);
static DECLARE_WORK(ticker_work, ticker_work_fn);

/* One parallel-burst producer: a work item bound to one CPU. */
struct ticker_pworker {
	struct work_struct work;
	unsigned int k;		/* index: src + k, and its own seq */
	int cpu;
	unsigned int n;		/* req_lock: records requested */
	u64 seq;		/* the work item only */
	u8 *buf;
};

static struct ticker_pworker pworkers[TICKER_MAX_PCPUS];
static unsigned int nr_pworkers;

static void fill(u8 *buf, u64 s)
{
	struct uhp_tick t = { .ktime_ns = ktime_get_ns(), .seq = s };
	unsigned int i;

	memcpy(buf, &t, sizeof(t));
	for (i = sizeof(t); i < size; i++)
		buf[i] = (u8)(s + i);
}

static enum hrtimer_restart ticker_tick(struct hrtimer *t)
{
	struct uhp_kmeta m = { .type = TICKER_TYPE_TICK, .src = src,
			       .seq = seq[TICKER_TYPE_TICK] };

	if (in_hardirq())
		atomic64_inc(&hardirq_ticks);
	fill(tick_buf, m.seq);
	if (uhp_ksend(ch, tick_buf, size, &m)) {
		atomic64_inc(&dropped);
	} else {
		seq[TICKER_TYPE_TICK]++;
		atomic64_inc(&sent);
	}
	hrtimer_forward_now(t, period);
	return HRTIMER_RESTART;
}

/* Process context: may sleep between attempts when the ring is full. */
static void ticker_send(u8 *buf, u16 type, bool wait)
{
	struct uhp_kmeta m = { .type = type, .src = src, .seq = seq[type] };
	int ret, took;

	fill(buf, m.seq);
	for (;;) {
		if (type == TICKER_TYPE_FANOUT) {
			/* Wait only while nobody takes it; count who missed it. */
			took = uhp_kgroup_send(group, buf, size, &m);
			ret = took ? 0 : -ENOSPC;
			if (took && took < group_size)
				atomic64_add(group_size - took, &dropped);
		} else {
			ret = uhp_ksend(ch, buf, size, &m);
		}
		if (ret != -ENOSPC || !wait || READ_ONCE(stopping))
			break;
		atomic64_inc(&waits);
		usleep_range(50, 200);	/* the consumer is behind */
	}
	if (ret) {
		atomic64_inc(&dropped);
		return;
	}
	seq[type]++;
	atomic64_inc(&sent);
}

static bool take(unsigned int *req, unsigned int *n)
{
	spin_lock(&req_lock);
	*n = *req;
	*req = 0;
	spin_unlock(&req_lock);
	return *n;
}

static void ticker_work_fn(struct work_struct *work)
{
	u8 *buf = kmalloc(TICKER_MAX_SIZE, GFP_KERNEL);
	unsigned int n, i;

	if (!buf)
		return;
	while (!READ_ONCE(stopping)) {
		if (take(&req_burst, &n))
			for (i = 0; i < n && !READ_ONCE(stopping); i++)
				ticker_send(buf, TICKER_TYPE_BURST, true);
		else if (take(&req_flood, &n))
			for (i = 0; i < n && !READ_ONCE(stopping); i++) {
				ticker_send(buf, TICKER_TYPE_FLOOD, false);
				if (!(i % 1024))
					cond_resched();
			}
		else if (take(&req_fanout, &n))
			for (i = 0; i < n && !READ_ONCE(stopping); i++)
				ticker_send(buf, TICKER_TYPE_FANOUT, true);
		else
			break;
		cond_resched();
	}
	kfree(buf);
}

/* A parallel burst on this worker's CPU: n records, waiting while full. */
static void ticker_pwork_fn(struct work_struct *work)
{
	struct ticker_pworker *pw = container_of(work, struct ticker_pworker, work);
	unsigned int n, i;

	while (!READ_ONCE(stopping) && take(&pw->n, &n)) {
		/* counted once per request: no line shared with the other CPUs per record */
		unsigned int done = 0;

		for (i = 0; i < n && !READ_ONCE(stopping); i++) {
			struct uhp_kmeta m = { .type = TICKER_TYPE_PBURST,
					       .src = src + pw->k, .seq = pw->seq };
			int ret;

			fill(pw->buf, m.seq);
			while ((ret = uhp_ksend(ch, pw->buf, size, &m)) == -ENOSPC &&
			       !READ_ONCE(stopping)) {
				atomic64_inc(&waits);
				usleep_range(50, 200);	/* the consumer is behind */
			}
			if (ret) {
				atomic64_inc(&dropped);
				continue;
			}
			pw->seq++;
			done++;
			/* Let a consumer on this CPU run: it drains the ring. */
			if (!(i % 32))
				cond_resched();
		}
		atomic64_add(done, &sent);
	}
}

/* Always the same CPU: its records go to one ring, in order. */
static void ticker_kick(void)
{
	queue_work_on(cpumask_first(cpu_online_mask), uhp_percpu_wq(), &ticker_work);
}

/* Writing N to a trigger parameter queues N records of that kind. */
static int ticker_trigger(const char *val, unsigned int *req)
{
	unsigned int n;
	int ret = kstrtouint(val, 0, &n);

	if (ret)
		return ret;
	spin_lock(&req_lock);
	if (stopping) {
		ret = -ESHUTDOWN;
	} else if (ready && req == &req_fanout && !group) {
		ret = -ENOENT;	/* no fanout= channels */
	} else {
		*req += n;
		if (ready)
			ticker_kick();
	}
	spin_unlock(&req_lock);
	return ret;
}

static int set_burst(const char *val, const struct kernel_param *kp)
{
	return ticker_trigger(val, &req_burst);
}

static int set_flood(const char *val, const struct kernel_param *kp)
{
	return ticker_trigger(val, &req_flood);
}

static int set_fanout(const char *val, const struct kernel_param *kp)
{
	return ticker_trigger(val, &req_fanout);
}

/* Writing N to pburst: every parallel worker sends N (after init only). */
static int set_pburst(const char *val, const struct kernel_param *kp)
{
	unsigned int n, k;
	int ret = kstrtouint(val, 0, &n);

	if (ret)
		return ret;
	spin_lock(&req_lock);
	if (stopping || !ready) {
		ret = -EAGAIN;
	} else {
		for (k = 0; k < nr_pworkers; k++) {
			pworkers[k].n += n;
			queue_work_on(pworkers[k].cpu, uhp_percpu_wq(),
				      &pworkers[k].work);
		}
	}
	spin_unlock(&req_lock);
	return ret;
}

static int get_counter(char *buf, const struct kernel_param *kp)
{
	return sysfs_emit(buf, "%lld\n", atomic64_read(kp->arg));
}

static const struct kernel_param_ops burst_ops = { .set = set_burst };
static const struct kernel_param_ops flood_ops = { .set = set_flood };
static const struct kernel_param_ops fanout_ops = { .set = set_fanout };
static const struct kernel_param_ops pburst_ops = { .set = set_pburst };
static const struct kernel_param_ops counter_ops = { .get = get_counter };

module_param_cb(burst, &burst_ops, NULL, 0200);
MODULE_PARM_DESC(burst, "Write N: send N records, waiting while full");
module_param_cb(flood, &flood_ops, NULL, 0200);
MODULE_PARM_DESC(flood, "Write N: send N records, dropping while full");
module_param_cb(fanout_burst, &fanout_ops, NULL, 0200);
MODULE_PARM_DESC(fanout_burst, "Write N: send N records to every fanout channel");
module_param_cb(pburst, &pburst_ops, NULL, 0200);
MODULE_PARM_DESC(pburst, "Write N: each of pburst_cpus CPUs sends N records");
module_param_cb(sent, &counter_ops, &sent, 0444);
MODULE_PARM_DESC(sent, "Records sent");
module_param_cb(dropped, &counter_ops, &dropped, 0444);
MODULE_PARM_DESC(dropped, "Records not sent: ring full or consumer corrupt");
module_param_cb(waits, &counter_ops, &waits, 0444);
MODULE_PARM_DESC(waits, "Times a burst waited for the consumer");
module_param_cb(hardirq_ticks, &counter_ops, &hardirq_ticks, 0444);
MODULE_PARM_DESC(hardirq_ticks, "Ticks whose hrtimer callback ran in hard-irq context");

static struct uhp_kgroup *ticker_group(char *list)
{
	const char *names[TICKER_MAX_FANOUT];
	struct uhp_kgroup *g;
	unsigned int n = 0;
	char *copy, *p, *name;

	copy = kstrdup(list, GFP_KERNEL);
	if (!copy)
		return ERR_PTR(-ENOMEM);
	p = copy;
	while ((name = strsep(&p, ",")) && n < TICKER_MAX_FANOUT)
		if (*name)
			names[n++] = name;
	g = n ? uhp_kgroup_create(names, n) : ERR_PTR(-EINVAL);
	group_size = n;
	kfree(copy);
	return g;
}

/* One worker per CPU, the first pburst_cpus online ones; 0 or -ENOMEM. */
static int ticker_pworkers_init(void)
{
	int cpu;

	for_each_online_cpu(cpu) {
		struct ticker_pworker *pw = &pworkers[nr_pworkers];

		if (nr_pworkers == min_t(unsigned int, pburst_cpus, TICKER_MAX_PCPUS))
			break;
		pw->buf = kmalloc(TICKER_MAX_SIZE, GFP_KERNEL);
		if (!pw->buf)
			return -ENOMEM;
		INIT_WORK(&pw->work, ticker_pwork_fn);
		pw->k = nr_pworkers++;
		pw->cpu = cpu;
	}
	return 0;
}

static void ticker_pworkers_exit(void)
{
	unsigned int k;

	for (k = 0; k < nr_pworkers; k++) {
		cancel_work_sync(&pworkers[k].work);
		kfree(pworkers[k].buf);
	}
	nr_pworkers = 0;
}

static int __init ticker_init(void)
{
	int ret;

	if (!channel || size < sizeof(struct uhp_tick) || size > TICKER_MAX_SIZE) {
		pr_err("uhp_ticker: need channel= and 16 <= size <= %d\n",
		       TICKER_MAX_SIZE);
		return -EINVAL;
	}
	tick_buf = kmalloc(TICKER_MAX_SIZE, GFP_KERNEL);
	if (!tick_buf)
		return -ENOMEM;
	ret = ticker_pworkers_init();
	if (ret)
		goto err_free;
	ch = uhp_kchannel_get(channel);
	if (IS_ERR(ch)) {
		ret = PTR_ERR(ch);
		pr_err("uhp_ticker: channel %s: error %d\n", channel, ret);
		goto err_free;
	}
	if (fanout) {
		group = ticker_group(fanout);
		if (IS_ERR(group)) {
			ret = PTR_ERR(group);
			group = NULL;
			pr_err("uhp_ticker: fanout %s: error %d\n", fanout, ret);
			goto err_put;
		}
	}
	if (rate_hz) {
		period = ns_to_ktime(NSEC_PER_SEC / rate_hz);
		/* Pinned: every tick on this CPU, so in one ring, in order. */
		uhp_hrtimer_setup(&timer, ticker_tick, CLOCK_MONOTONIC,
				  HRTIMER_MODE_REL_PINNED_HARD);
		hrtimer_start(&timer, period, HRTIMER_MODE_REL_PINNED_HARD);
	}
	pr_info("uhp_ticker: producing into %s (%u Hz, %u bytes)\n", channel,
		rate_hz, size);
	/* Requests given on the insmod command line run now. */
	spin_lock(&req_lock);
	ready = true;
	if (!group)
		req_fanout = 0;
	if (req_burst || req_flood || req_fanout)
		ticker_kick();
	spin_unlock(&req_lock);
	return 0;

err_put:
	uhp_kchannel_put(ch);
err_free:
	ticker_pworkers_exit();
	kfree(tick_buf);
	return ret;
}

static void __exit ticker_exit(void)
{
	spin_lock(&req_lock);
	WRITE_ONCE(stopping, true);	/* no work is queued after this */
	spin_unlock(&req_lock);
	if (rate_hz)
		hrtimer_cancel(&timer);
	cancel_work_sync(&ticker_work);
	ticker_pworkers_exit();
	if (group)
		uhp_kgroup_destroy(group);
	uhp_kchannel_put(ch);
	kfree(tick_buf);
}

module_init(ticker_init);
module_exit(ticker_exit);

MODULE_DESCRIPTION("uhp sample: a kernel agent producing ticks and bursts");
MODULE_LICENSE("GPL");
