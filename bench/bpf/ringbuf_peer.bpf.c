// SPDX-License-Identifier: GPL-2.0
/*
 * The BPF ring buffer peer of bench/bench_kernel.c: a kernel producer that
 * does what samples/uhp_ticker.c does for a "burst", into a
 * BPF_MAP_TYPE_RINGBUF instead of a uhp kernel ring.
 *
 * emit (SEC("syscall"), run with BPF_PROG_TEST_RUN) sends up to ctx->n
 * records of ctx->size bytes: for each, like the ticker's fill(), a header
 * { bpf_ktime_get_ns() (= ktime_get_ns(), CLOCK_MONOTONIC), seq } and then
 * bytes (u8)(seq + i) written one by one into a per-CPU scratch buffer, then
 * one bpf_ringbuf_output() that copies it into the ring (the ticker's
 * uhp_ksend()). It stops at the first record the ring has no room for and
 * reports how many it sent in ctx->done (and the return value): BPF cannot
 * sleep, so the caller waits and runs it again for the rest, as the ticker
 * waits for the consumer when the ring is full. Nothing is dropped.
 *
 * Wakeups: flags 0 (adaptive), the consumer is woken when it has caught up,
 * which is what uhp's need_wakeup does too.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define MAX_SIZE	4096	/* TICKER_MAX_SIZE */

struct args {
	__u64 n;		/* records to send */
	__u64 seq;		/* seq of the first one */
	__u32 size;		/* payload bytes per record, 16..MAX_SIZE */
	__u32 pad;
	__u64 done;		/* out: records sent */
};

struct scratch {			/* struct uhp_tick, then the fill bytes */
	__u64 ktime_ns;
	__u64 seq;
	__u8 b[MAX_SIZE - 16];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);	/* set by the loader before load */
} rb SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} buf SEC(".maps");

struct loop_ctx {
	struct args *a;
	struct scratch *s;
	__u64 done;
};

static long emit_one(__u64 i, void *data)
{
	struct loop_ctx *c = data;
	struct scratch *s = c->s;
	__u32 size = c->a->size;
	__u64 seq = c->a->seq + i;
	__u32 k;

	if (size < 16 || size > MAX_SIZE)
		return 1;
	s->ktime_ns = bpf_ktime_get_ns();
	s->seq = seq;
	for (k = 16; k < MAX_SIZE; k++) {	/* bounded for the verifier */
		if (k >= size)
			break;
		s->b[k - 16] = (__u8)(seq + k);
	}
	if (bpf_ringbuf_output(&rb, s, size, 0))
		return 1;		/* full: stop here */
	c->done++;
	return 0;
}

SEC("syscall")
int emit(struct args *a)
{
	struct loop_ctx c = { .a = a };
	__u32 zero = 0;

	c.s = bpf_map_lookup_elem(&buf, &zero);
	if (!c.s)
		return 0;
	bpf_loop(a->n, emit_one, &c, 0);
	a->done = c.done;
	return c.done;
}

char LICENSE[] SEC("license") = "GPL";
