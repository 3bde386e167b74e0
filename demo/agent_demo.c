// SPDX-License-Identifier: MIT
/*
 * uhp agent demo: several agent processes talk through uhp channels.
 *
 * Each agent owns an inbox channel ("demo.agent.<i>", consumer role) and sends
 * a fixed number of messages to the other agents, round robin, with payloads
 * whose size and bytes follow from (source, sequence). Data messages go
 * through a router agent: agents send them to one ingress channel
 * ("demo.ingress") with the destination in the record header; the router
 * drains it in batches, splits each batch by destination with
 * uhp_route_match() (AVX-512/AVX2 where the CPU has them) and forwards every
 * record to its destination's inbox, keeping each sender's order. Every agent
 * checks what it receives end to end: per-sender sequence numbers gap-free
 * and in order, payload bytes as expected, CRC32C (checked by libuhp on every
 * record), and the count it must get. Besides the fast path, each agent sends
 * one record through the kernel (UHP_IOC_SEND, sealed with the kernel's
 * crc32c()) and the receiver has the kernel verify one record (UHP_IOC_VERIFY).
 *
 * The parent creates the channels, forks the router and the agents, collects
 * their counts over a pipe and prints a summary. Exit status 0 only if nothing was lost,
 * duplicated, reordered or damaged.
 *
 * usage: agent_demo [-a agents] [-m messages-per-agent] [-s max-payload]
 */
#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "uhp.h"

#define MAX_AGENTS	16
#define TYPE_DATA	1
#define TYPE_KERNEL	2

struct report {
	uint64_t received;
	uint64_t bytes;
	uint64_t lost;		/* expected but never seen */
	uint64_t bad;		/* reordered, duplicated or wrong bytes */
	uint64_t crc_errors;
	uint64_t kernel_records;
	uint64_t kernel_verified;
	uint64_t notifies;
	int error;		/* negative errno of a failed call, or 0 */
};

#define ROUTER_BATCH	64

static unsigned int nagents = 4;
static unsigned int nmsgs = 20000;
static unsigned int max_payload = 1024;

static uint32_t payload_len(uint32_t src, uint64_t seq)
{
	return 8 + (uint32_t)((src * 131 + seq * 17) % (max_payload - 7));
}

static void fill(uint8_t *p, uint32_t len, uint32_t src, uint64_t seq)
{
	for (uint32_t i = 0; i < len; i++)
		p[i] = (uint8_t)(src * 31 + seq * 7 + i);
}

static int check(const uint8_t *p, uint32_t len, uint32_t src, uint64_t seq)
{
	if (len != payload_len(src, seq))
		return -1;
	for (uint32_t i = 0; i < len; i++)
		if (p[i] != (uint8_t)(src * 31 + seq * 7 + i))
			return -1;
	return 0;
}

/* Messages agent 'src' sends to agent 'dst' (round robin over the others). */
static uint64_t expected_from(unsigned int src, unsigned int dst)
{
	unsigned int peers = nagents - 1;
	unsigned int k = (dst + nagents - src - 1) % nagents;	/* dst's rank */

	return nmsgs / peers + (k < nmsgs % peers);
}

/*
 * The router: drain the ingress channel in batches and forward each record
 * to the inbox its header names. Reports how many it forwarded.
 */
static void router(int dev, int report_fd)
{
	static uint8_t bufs[ROUTER_BATCH][65536];
	struct uhp_channel *ingress = NULL, *inbox[MAX_AGENTS] = { 0 };
	struct uhp_rx_msg msgs[ROUTER_BATCH];
	uint64_t want = (uint64_t)nagents * nmsgs, routed = 0;
	uint64_t bitmap[(ROUTER_BATCH + 63) / 64];
	struct report r = { 0 };
	char name[UHP_NAME_MAX];
	unsigned int i, d;
	int ret;

	ret = uhp_attach(dev, "demo.ingress", UHP_ATTACH_CONSUMER, &ingress);
	for (i = 0; !ret && i < nagents; i++) {
		snprintf(name, sizeof(name), "demo.agent.%u", i);
		ret = uhp_attach(dev, name, 0, &inbox[i]);
	}
	while (!ret && routed < want) {
		int n;

		for (i = 0; i < ROUTER_BATCH; i++)
			msgs[i] = (struct uhp_rx_msg){ .buf = bufs[i], .cap = sizeof(bufs[i]) };
		n = uhp_recv_batch(ingress, msgs, ROUTER_BATCH);
		if (n == -EAGAIN) {
			ret = uhp_wait(ingress, 10000) > 0 ? 0 : -ETIMEDOUT;
			continue;
		}
		if (n < 0) {
			ret = n;
			break;
		}
		/* One bitmap per destination over the batch's dst ids. */
		for (d = 0; d < nagents; d++) {
			if (!uhp_route_match(&msgs[0].meta.dst, sizeof(msgs[0]),
					     (size_t)n, d, bitmap))
				continue;
			for (i = 0; i < (unsigned int)n; i++) {
				if (!(bitmap[i / 64] >> (i % 64) & 1))
					continue;
				while ((ret = uhp_send(inbox[d], msgs[i].buf, msgs[i].len,
						       &msgs[i].meta)) == -EAGAIN)
					sched_yield();	/* its owner drains it */
				if (ret)
					goto out;
				routed++;
			}
		}
	}
out:
	r.received = routed;
	r.error = ret;
	for (i = 0; i < nagents; i++) {
		struct uhp_stats st;

		if (inbox[i] && !uhp_stats(inbox[i], &st))
			r.notifies += st.notifies;
		uhp_close(inbox[i]);
	}
	uhp_close(ingress);
	if (write(report_fd, &r, sizeof(r)) != sizeof(r))
		_exit(2);
	_exit(0);
}

static void agent(int dev, unsigned int self, int report_fd)
{
	struct uhp_channel *inbox = NULL, *out[MAX_AGENTS] = { 0 }, *ingress = NULL;
	uint64_t next_seq[MAX_AGENTS] = { 0 }, expect = 0, sent_to[MAX_AGENTS] = { 0 };
	struct report r = { 0 };
	uint8_t buf[65536];
	char name[UHP_NAME_MAX];
	unsigned int i, sent = 0;
	int ret;

	snprintf(name, sizeof(name), "demo.agent.%u", self);
	ret = uhp_attach(dev, name, UHP_ATTACH_CONSUMER, &inbox);
	if (!ret)
		ret = uhp_attach(dev, "demo.ingress", 0, &ingress);
	for (i = 0; !ret && i < nagents; i++) {
		if (i == self)
			continue;
		snprintf(name, sizeof(name), "demo.agent.%u", i);
		ret = uhp_attach(dev, name, 0, &out[i]);
		expect += expected_from(i, self) + 1;	/* + one kernel record */
	}
	if (ret)
		goto out;

	/* One record through the kernel to each peer. */
	for (i = 0; i < nagents; i++) {
		struct uhp_meta m = { .type = TYPE_KERNEL, .src = self, .dst = i };

		if (i == self)
			continue;
		do
			ret = uhp_kernel_send(out[i], 0, "kernel-sealed", 13, &m, NULL);
		while (ret == -EAGAIN);
		if (ret)
			goto out;
	}

	/* Interleave sending and draining so nobody waits on a full inbox forever. */
	while (sent < nmsgs || r.received < expect) {
		if (sent < nmsgs) {
			unsigned int dst = (self + 1 + sent % (nagents - 1)) % nagents;
			struct uhp_meta m = {
				.type = TYPE_DATA, .src = self, .dst = dst,
				.seq = sent_to[dst],
			};
			uint32_t len = payload_len(self, m.seq);

			fill(buf, len, self, m.seq);
			/* Through the router: the header carries dst. */
			ret = uhp_send(ingress, buf, len, &m);
			if (ret == 0) {
				sent_to[dst]++;
				sent++;
			} else if (ret != -EAGAIN) {
				goto out;
			}
		}
		while (sent < nmsgs || r.received < expect) {
			struct uhp_meta m;
			ssize_t n;

			n = sent < nmsgs ? uhp_recv(inbox, buf, sizeof(buf), &m)
					 : uhp_recv_wait(inbox, buf, sizeof(buf), &m, 10000);
			if (n == -EAGAIN)
				break;
			if (n == -EBADMSG)
				continue;	/* counted in the handle's stats */
			if (n < 0) {
				ret = (int)n;
				goto out;
			}
			r.received++;
			r.bytes += (uint64_t)n;
			if (m.src >= nagents || m.dst != self) {
				r.bad++;
			} else if (m.type == TYPE_KERNEL) {
				r.kernel_records++;
				/*
				 * Relayed and sealed by the kernel, but a
				 * process's record on a user ring: never
				 * UHP_REC_F_KERNEL (kernel producers only).
				 */
				if ((m.flags & UHP_REC_F_KERNEL) || n != 13 ||
				    memcmp(buf, "kernel-sealed", 13))
					r.bad++;
			} else if (m.seq != next_seq[m.src] ||
				   check(buf, (uint32_t)n, m.src, m.seq)) {
				r.bad++;
				next_seq[m.src] = m.seq + 1;
			} else {
				next_seq[m.src]++;
			}
			if (sent == nmsgs)
				break;
		}
	}

	/* Have the kernel check one record the way a consumer would. */
	{
		struct uhp_meta m = { .type = TYPE_KERNEL, .src = self, .dst = self };
		struct uhp_rx rx;

		ret = uhp_kernel_send(inbox, 0, "verify-me", 9, &m, NULL);
		if (!ret)
			ret = uhp_peek(inbox, &rx);
		if (!ret) {
			ret = uhp_verify(inbox, rx.meta.ring, rx.pos, NULL, NULL);
			r.kernel_verified += ret == 0;
			if (!ret)
				ret = uhp_release(inbox, &rx);
		}
	}
out:
	{
		struct uhp_stats st;

		if (inbox && !uhp_stats(inbox, &st))
			r.crc_errors = st.crc_errors;
		for (i = 0; i < nagents; i++) {
			if (out[i] && !uhp_stats(out[i], &st))
				r.notifies += st.notifies;
			uhp_close(out[i]);
		}
		if (ingress && !uhp_stats(ingress, &st))
			r.notifies += st.notifies;
		uhp_close(ingress);
	}
	for (i = 0; i < nagents; i++)
		if (i != self && next_seq[i] < expected_from(i, self))
			r.lost += expected_from(i, self) - next_seq[i];
	r.error = ret;
	uhp_close(inbox);
	if (write(report_fd, &r, sizeof(r)) != sizeof(r))
		_exit(2);
	_exit(0);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	struct uhp_channel *inbox[MAX_AGENTS] = { 0 };
	struct report total = { 0 };
	unsigned int i, failed = 0;
	struct uhp_channel *ingress = NULL;
	int dev, opt, pipefd[2], routerfd[2], ret = 0;
	uint64_t routed = 0;
	pid_t router_pid;
	char name[UHP_NAME_MAX];
	double t0, t1;

	while ((opt = getopt(argc, argv, "a:m:s:")) != -1) {
		switch (opt) {
		case 'a': nagents = (unsigned int)atoi(optarg); break;
		case 'm': nmsgs = (unsigned int)atoi(optarg); break;
		case 's': max_payload = (unsigned int)atoi(optarg); break;
		default:
			fprintf(stderr, "usage: %s [-a agents] [-m messages-per-agent] [-s max-payload]\n", argv[0]);
			return 2;
		}
	}
	if (nagents < 2 || nagents > MAX_AGENTS || max_payload < 8 || max_payload > 65536) {
		fprintf(stderr, "agent_demo: need 2..%d agents and a max payload of 8..65536 bytes\n",
			MAX_AGENTS);
		return 2;
	}

	dev = uhp_open();
	if (dev < 0) {
		fprintf(stderr, "agent_demo: cannot open %s: %s (is uhp.ko loaded?)\n",
			UHP_DEVICE_PATH, strerror(-dev));
		return 1;
	}
	for (i = 0; i < nagents; i++) {
		struct uhp_create_opts o = UHP_CREATE_OPTS_INIT;

		o.ring_size = 256 << 10;
		snprintf(name, sizeof(name), "demo.agent.%u", i);
		ret = uhp_create(dev, name, &o, &inbox[i]);
		if (ret) {
			fprintf(stderr, "agent_demo: create %s: %s\n", name, strerror(-ret));
			return 1;
		}
	}
	{
		struct uhp_create_opts o = UHP_CREATE_OPTS_INIT;

		o.ring_size = 1 << 20;
		ret = uhp_create(dev, "demo.ingress", &o, &ingress);
		if (ret) {
			fprintf(stderr, "agent_demo: create demo.ingress: %s\n", strerror(-ret));
			return 1;
		}
	}
	if (pipe(pipefd) || pipe(routerfd))
		return 1;

	printf("uhp agent demo: %u agents, %u messages each, payload 8..%u bytes, %u ring(s) per channel\n",
	       nagents, nmsgs, max_payload, uhp_nr_rings(inbox[0]));
	t0 = now_s();
	router_pid = fork();
	if (router_pid < 0)
		return 1;
	if (router_pid == 0) {
		close(routerfd[0]);
		router(dev, routerfd[1]);
	}
	close(routerfd[1]);
	for (i = 0; i < nagents; i++) {
		pid_t pid = fork();

		if (pid < 0)
			return 1;
		if (pid == 0) {
			close(pipefd[0]);
			agent(dev, i, pipefd[1]);
		}
	}
	close(pipefd[1]);
	for (i = 0; i < nagents; i++) {
		struct report r;
		int status;

		if (read(pipefd[0], &r, sizeof(r)) != sizeof(r)) {
			failed++;
			continue;
		}
		if (r.error) {
			fprintf(stderr, "agent_demo: an agent failed: %s\n", strerror(-r.error));
			failed++;
		}
		total.received += r.received;
		total.bytes += r.bytes;
		total.lost += r.lost;
		total.bad += r.bad;
		total.crc_errors += r.crc_errors;
		total.kernel_records += r.kernel_records;
		total.kernel_verified += r.kernel_verified;
		total.notifies += r.notifies;
		wait(&status);
		if (!WIFEXITED(status) || WEXITSTATUS(status))
			failed++;
	}
	{
		struct report r;
		int status;

		if (read(routerfd[0], &r, sizeof(r)) != sizeof(r) || r.error) {
			fprintf(stderr, "agent_demo: the router failed: %s\n",
				strerror(r.error ? -r.error : EPIPE));
			failed++;
		}
		routed = r.received;
		total.notifies += r.notifies;
		waitpid(router_pid, &status, 0);
		if (!WIFEXITED(status) || WEXITSTATUS(status))
			failed++;
	}
	t1 = now_s();

	for (i = 0; i < nagents; i++) {
		snprintf(name, sizeof(name), "demo.agent.%u", i);
		uhp_unlink(dev, name);
		uhp_close(inbox[i]);
	}
	uhp_unlink(dev, "demo.ingress");
	uhp_close(ingress);
	close(dev);

	printf("  messages   %" PRIu64 " (%" PRIu64 " kernel-sealed, %" PRIu64 " kernel-verified)\n",
	       total.received, total.kernel_records, total.kernel_verified);
	printf("  routed     %" PRIu64 " through demo.ingress by the router agent\n", routed);
	printf("  bytes      %" PRIu64 "\n", total.bytes);
	printf("  loss       %" PRIu64 "\n", total.lost);
	printf("  misordered or damaged %" PRIu64 "\n", total.bad);
	printf("  CRC errors %" PRIu64 "\n", total.crc_errors);
	printf("  wakeups    %" PRIu64 " NOTIFY calls\n", total.notifies);
	printf("  time       %.2f s (%.0f messages/s under TCG emulation)\n", t1 - t0,
	       (double)total.received / (t1 - t0));
	if (failed || total.lost || total.bad || total.crc_errors ||
	    total.received != (uint64_t)nagents * (nmsgs + nagents - 1) ||
	    routed != (uint64_t)nagents * nmsgs ||
	    total.kernel_verified != nagents) {
		printf("RESULT: FAIL\n");
		return 1;
	}
	printf("RESULT: PASS\n");
	return 0;
}
