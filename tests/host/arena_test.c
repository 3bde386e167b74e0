// SPDX-License-Identifier: MIT
/*
 * arena_test: channels without the module (uhp_arena_*): names and errors,
 * two processes exchanging records through a named arena with payload and
 * CRC checked, a consumer asleep on the futex woken by a producer in another
 * process, the consumer role (exclusive, freed on close, taken over from a
 * dead holder), a corrupted header refused on attach, and exclusive rings:
 * claims (one per ring and per handle, freed on close, taken over from a
 * dead claimant, not inherited by fork) and records sent on them.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proc.h"
#include "tap.h"
#include "uhp.h"

static char name[64];

static void t_names_and_errors(void)
{
	struct uhp_create_opts o = UHP_CREATE_OPTS_INIT;
	struct uhp_channel *ch, *ch2;

	tap_is(uhp_arena_attach(name, 0, &ch), -ENOENT, "attach before create: -ENOENT");
	tap_is(uhp_arena_create(".x", NULL, &ch), -EINVAL, "leading dot: -EINVAL");
	tap_is(uhp_arena_create("a/b", NULL, &ch), -EINVAL, "slash: -EINVAL");
	tap_is(uhp_arena_create("", NULL, &ch), -EINVAL, "empty: -EINVAL");
	o.ring_size = 4096 + 1;
	tap_is(uhp_arena_create(name, &o, &ch), -EINVAL, "ring size not a power of two");
	o.ring_size = 4096;
	o.kernel_rings = true;
	tap_is(uhp_arena_create(name, &o, &ch), -EINVAL, "no kernel rings without the module");
	o.kernel_rings = false;
	tap_is(uhp_arena_create(name, &o, &ch), 0, "create");
	tap_is(uhp_arena_create(name, &o, &ch2), -EEXIST, "create twice: -EEXIST");
	tap_is(uhp_channel_fd(ch), -EOPNOTSUPP, "no fd to poll");
	tap_is(uhp_arena_attach(name, 0x10, &ch2), -EINVAL, "unknown attach flag");
	tap_is(uhp_arena_attach(name, 0, &ch2), 0, "attach");
	uhp_close(ch2);
	uhp_close(ch);
	tap_is(uhp_arena_unlink(name), 0, "unlink");
	tap_is(uhp_arena_unlink(name), -ENOENT, "unlink twice: -ENOENT");
}

static void fill(uint8_t *p, uint32_t len, uint64_t seq)
{
	for (uint32_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seq * 7 + i);
}

static void t_two_processes(void)
{
	struct uhp_create_opts o = UHP_CREATE_OPTS_INIT;
	static uint8_t buf[4096];
	struct uhp_channel *ch;
	const uint64_t n = 100000;
	uint64_t seq = 0, bad = 0;
	struct uhp_stats st;
	pid_t pid;

	o.ring_size = 1 << 16;
	o.consumer = true;
	if (uhp_arena_create(name, &o, &ch))
		tap_bail("create");
	pid = fork();
	if (pid == 0) {
		struct uhp_channel *p;

		/* A separate attach by name, as an unrelated process would. */
		if (uhp_arena_attach(name, 0, &p))
			_exit(1);
		for (uint64_t s = 0; s < n; s++) {
			struct uhp_meta m = { .seq = s, .src = 9 };
			uint32_t len = (uint32_t)(s * 37 % 2000);

			fill(buf, len, s);
			while (uhp_send(p, buf, len, &m) == -EAGAIN)
				;
		}
		uhp_close(p);
		_exit(0);
	}
	while (seq < n) {
		struct uhp_meta m;
		ssize_t len = uhp_recv_wait(ch, buf, sizeof(buf), &m, 10000);

		if (len < 0)
			break;
		if (m.seq != seq || len != (ssize_t)(seq * 37 % 2000))
			bad++;
		else
			for (ssize_t i = 0; i < len; i++)
				if (buf[i] != (uint8_t)(seq * 7 + (uint64_t)i)) {
					bad++;
					break;
				}
		seq++;
	}
	tap_is(t_reap(pid), 0, "producer process exits 0");
	tap_is(seq, n, "all %llu records arrive", (unsigned long long)n);
	tap_is(bad, 0, "in order, with the right bytes");
	uhp_stats(ch, &st);
	tap_is(st.crc_errors, 0, "no CRC errors");
	uhp_close(ch);
	uhp_arena_unlink(name);
}

static void t_futex_wakeup(void)
{
	struct uhp_create_opts o = UHP_CREATE_OPTS_INIT;
	struct uhp_channel *ch;
	uint64_t t0, waited;
	char b[8];
	pid_t pid;

	o.ring_size = 4096;
	o.consumer = true;
	if (uhp_arena_create(name, &o, &ch))
		tap_bail("create");
	pid = fork();
	if (pid == 0) {
		struct uhp_channel *p;
		struct uhp_stats st;
		struct timespec d = { 0, 300 * 1000000L };

		if (uhp_arena_attach(name, 0, &p))
			_exit(1);
		nanosleep(&d, NULL);	/* the consumer is asleep by now */
		if (uhp_send(p, "wake", 4, NULL) || uhp_stats(p, &st))
			_exit(2);
		_exit(st.notifies == 1 ? 0 : 3);	/* it saw need_wakeup */
	}
	t0 = t_now_ns();
	tap_is(uhp_recv_wait(ch, b, sizeof(b), NULL, 10000), 4, "the sleeping consumer gets the record");
	waited = t_now_ns() - t0;
	tap_is(t_reap(pid), 0, "the producer saw need_wakeup and woke the futex");
	/* Woken, not timed out: well before the 1 s sleep cap. */
	tap_ok(waited > 250000000ULL && waited < 900000000ULL,
	       "woken after %llu ms (the producer slept 300 ms)",
	       (unsigned long long)(waited / 1000000));
	uhp_close(ch);
	uhp_arena_unlink(name);
}

static void t_consumer_role(void)
{
	struct uhp_create_opts o = UHP_CREATE_OPTS_INIT;
	struct uhp_channel *ch, *c2;
	int pipefd[2];
	char c;
	pid_t pid;

	o.ring_size = 4096;
	o.consumer = true;
	if (uhp_arena_create(name, &o, &ch))
		tap_bail("create");
	tap_is(uhp_arena_attach(name, UHP_ATTACH_CONSUMER, &c2), -EBUSY,
	       "a second consumer is refused");
	uhp_close(ch);
	tap_is(uhp_arena_attach(name, UHP_ATTACH_CONSUMER, &c2), 0,
	       "the role is free once its holder closed");
	uhp_close(c2);

	/* A holder that dies without closing: the role is taken over. */
	if (pipe(pipefd))
		tap_bail("pipe");
	pid = fork();
	if (pid == 0) {
		struct uhp_channel *held;

		if (uhp_arena_attach(name, UHP_ATTACH_CONSUMER, &held))
			_exit(1);
		if (write(pipefd[1], "x", 1) != 1)
			_exit(2);
		pause();
		_exit(0);
	}
	if (read(pipefd[0], &c, 1) != 1)
		tap_bail("child");
	tap_is(uhp_arena_attach(name, UHP_ATTACH_CONSUMER, &c2), -EBUSY,
	       "held by a live process: -EBUSY");
	kill(pid, SIGKILL);
	t_reap(pid);
	tap_is(uhp_arena_attach(name, UHP_ATTACH_CONSUMER, &c2), 0,
	       "held by a dead process: taken over");
	uhp_close(c2);
	uhp_arena_unlink(name);
}

static void t_corrupt_header(void)
{
	struct uhp_create_opts o = UHP_CREATE_OPTS_INIT;
	struct uhp_channel *ch;
	char path[80];
	uint64_t *hdr;
	int fd;

	o.ring_size = 4096;
	if (uhp_arena_create(name, &o, &ch))
		tap_bail("create");
	uhp_close(ch);
	snprintf(path, sizeof(path), "/uhp.%s", name);
	fd = shm_open(path, O_RDWR, 0);
	hdr = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (fd < 0 || hdr == MAP_FAILED)
		tap_bail("map header");
	hdr[2] = 1ULL << 41;		/* data_size past any sane bound */
	tap_is(uhp_arena_attach(name, 0, &ch), -EPROTO, "a corrupt header is refused");
	hdr[2] = 4096;
	hdr[0] = 0;			/* magic */
	tap_is(uhp_arena_attach(name, 0, &ch), -EPROTO, "a foreign object is refused");
	munmap(hdr, 4096);
	close(fd);
	uhp_arena_unlink(name);
}

/* n records of seq 0.. from src on ch; 0 or the failing send's -errno */
static int send_n(struct uhp_channel *ch, uint32_t src, unsigned n)
{
	for (uint64_t s = 0; s < n; s++) {
		struct uhp_meta m = { .seq = s, .src = src, .dst = uhp_producer_ring(ch) };
		unsigned char buf[64];
		int ret;

		memset(buf, (int)(s + src), sizeof(buf));
		if ((ret = uhp_send(ch, buf, sizeof(buf), &m)))
			return ret;
	}
	return 0;
}

static void t_exclusive_rings(void)
{
	struct uhp_create_opts o = UHP_CREATE_OPTS_INIT;
	struct uhp_channel *cons, *a, *b, *c;
	struct uhp_ring_info ri[64];
	struct uhp_info info;
	unsigned nr, bad = 0, got = 0, next[3] = { 0 };
	int ka, kb, pipefd[2];
	char x;
	pid_t pid;

	o.ring_size = 1 << 16;
	o.consumer = true;
	o.excl_rings = 65;
	tap_is(uhp_arena_create(name, &o, &cons), -EINVAL, "excl_rings past the maximum: -EINVAL");
	o.excl_rings = 2;
	if (uhp_arena_create(name, &o, &cons))
		tap_bail("create");
	nr = uhp_nr_rings(cons);
	uhp_info(cons, &info, ri, 64);
	tap_ok(nr >= 3 && ri[nr - 2].node == ri[0].node && ri[nr - 1].node == ri[1 % (nr - 2)].node &&
	       (ri[nr - 1].flags & UHP_RING_F_EXCL) && !(ri[0].flags & UHP_RING_F_EXCL),
	       "two exclusive rings after the %u shared one(s), on their nodes in turn", nr - 2);
	if (uhp_arena_attach(name, 0, &a) || uhp_arena_attach(name, 0, &b) ||
	    uhp_arena_attach(name, 0, &c))
		tap_bail("attach");
	tap_ok(uhp_producer_ring(a) < nr - 2 &&
	       uhp_set_producer_ring(a, nr - 1) == -EINVAL,
	       "a producer without a claim is on a shared ring and cannot move to an exclusive one");
	ka = uhp_claim_ring(a);
	kb = uhp_claim_ring(b);
	tap_ok(ka >= (int)nr - 2 && kb >= (int)nr - 2 && ka != kb &&
	       uhp_producer_ring(a) == (unsigned)ka && uhp_producer_ring(b) == (unsigned)kb,
	       "two handles claim the two exclusive rings (%d, %d) and send there", ka, kb);
	tap_ok(uhp_claim_ring(c) == -EBUSY && uhp_claim_ring(a) == -EBUSY,
	       "a third claim, or a second by one handle: -EBUSY");
	tap_ok(send_n(a, 0, 300) == 0 && send_n(b, 1, 300) == 0 && send_n(c, 2, 300) == 0,
	       "claimed and shared producers send");
	for (;;) {
		unsigned char buf[64];
		struct uhp_meta m;
		ssize_t len = uhp_recv(cons, buf, sizeof(buf), &m);

		if (len < 0)
			break;
		got++;
		if (len != 64 || m.src > 2 || m.seq != next[m.src]++ || m.ring != m.dst ||
		    buf[63] != (unsigned char)(m.seq + m.src))
			bad++;
	}
	tap_ok(got == 900 && bad == 0, "900 records, each producer's in order from its ring, intact");
	uhp_close(a);
	tap_is(uhp_claim_ring(c), ka, "closing a handle frees its ring for the next claim");
	uhp_close(c);

	/* A claimant that dies without closing: its ring is taken over. */
	if (pipe(pipefd))
		tap_bail("pipe");
	pid = fork();
	if (pid == 0) {
		struct uhp_channel *held;

		if (uhp_arena_attach(name, 0, &held) || uhp_claim_ring(held) < 0)
			_exit(1);
		if (write(pipefd[1], "x", 1) != 1)
			_exit(2);
		pause();
		_exit(0);
	}
	if (read(pipefd[0], &x, 1) != 1)
		tap_bail("child");
	if (uhp_arena_attach(name, 0, &c))
		tap_bail("attach");
	tap_is(uhp_claim_ring(c), -EBUSY, "both claimed, one by a live process: -EBUSY");
	kill(pid, SIGKILL);
	t_reap(pid);
	tap_is(uhp_claim_ring(c), ka, "claimed by a dead process: taken over");
	uhp_close(c);

	/* fork(): the child's copy of b is no longer the claimant. */
	pid = fork();
	if (pid == 0)
		_exit(uhp_producer_ring(b) < nr - 2 && send_n(b, 2, 100) == 0 ? 0 : 1);
	tap_is(t_reap(pid), 0, "a fork()ed child's copy sends to a shared ring");
	tap_ok(send_n(b, 1, 50) == 0 && uhp_producer_ring(b) == (unsigned)kb,
	       "while the parent keeps its claim");
	got = bad = 0;
	next[1] = next[2] = 0;
	for (;;) {
		unsigned char buf[64];
		struct uhp_meta m;

		if (uhp_recv(cons, buf, sizeof(buf), &m) < 0)
			break;
		got++;
		if (m.src < 1 || m.src > 2 || m.seq != next[m.src]++ || m.ring != m.dst ||
		    (m.src == 1) != (m.ring == (unsigned)kb))
			bad++;
	}
	tap_ok(got == 150 && bad == 0, "and both sets arrive, each from its ring");
	close(pipefd[0]);
	close(pipefd[1]);
	uhp_close(b);
	uhp_close(cons);
	uhp_arena_unlink(name);
}

int main(void)
{
	snprintf(name, sizeof(name), "arena-test.%d", getpid());
	tap_plan(39);
	t_names_and_errors();
	t_two_processes();
	t_futex_wakeup();
	t_consumer_role();
	t_corrupt_header();
	t_exclusive_rings();
	return tap_done();
}
