// SPDX-License-Identifier: MIT
/*
 * The calls a program uses without caring which backend it gets, run
 * against arenas (the host has no /dev/uhp; the guest's t_open runs them on
 * the module):
 *   - uhp_open_channel(): options copied like the kernel's sized structs,
 *     flags checked, the arena chosen where there is no module, and
 *     create-or-attach among racing processes (exactly one creates);
 *   - an arena's pollable fd: a FIFO only the owner can have made, POLLIN
 *     after a producer's wakeup, drained by uhp_end_sleep(), gone with
 *     uhp_arena_unlink();
 *   - the record CRC that uhp_peek() hands out is the sealed one;
 *   - uhp_set_spin(): 0 sleeps at once (the producer has to wake it), a
 *     long spin catches the record awake (no wakeup).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proc.h"
#include "tap.h"
#include "uhp.h"

static char name[64];
static char fifo[128];

/* A newer program's struct: ours plus fields this library does not know. */
struct opts_v9 {
	struct uhp_open_opts o;
	uint64_t future[2];
};

static void t_options(void)
{
	struct uhp_open_opts o = UHP_OPEN_OPTS_INIT;
	struct opts_v9 big = { .o = UHP_OPEN_OPTS_INIT };
	struct uhp_channel *ch, *ch2;

	o.size = 4;
	tap_is(uhp_open_channel(name, &o, &ch), -EINVAL, "size below the first version: -EINVAL");
	o.size = sizeof(o);
	o.flags = 1U << 30;
	tap_is(uhp_open_channel(name, &o, &ch), -EINVAL, "unknown flag: -EINVAL");
	o.flags = UHP_OPEN_DEVICE | UHP_OPEN_ARENA;
	tap_is(uhp_open_channel(name, &o, &ch), -EINVAL, "DEVICE and ARENA: -EINVAL");
	o.flags = UHP_OPEN_EXCL;
	tap_is(uhp_open_channel(name, &o, &ch), -EINVAL, "EXCL without CREATE: -EINVAL");
	o.flags = UHP_OPEN_RDONLY | UHP_OPEN_CREATE;
	tap_is(uhp_open_channel(name, &o, &ch), -EINVAL, "an observer that creates: -EINVAL");
	o.flags = UHP_OPEN_CREATE | UHP_OPEN_KERNEL_RINGS | UHP_OPEN_ARENA;
	tap_is(uhp_open_channel(name, &o, &ch), -EOPNOTSUPP, "kernel rings in an arena: -EOPNOTSUPP");
	o.flags = 0;
	tap_is(uhp_open_channel(name, &o, &ch), -ENOENT, "no such channel, no CREATE: -ENOENT");
	tap_is(uhp_open_channel(name, NULL, &ch), -ENOENT, "opts NULL: the defaults (attach): -ENOENT");
	if (access("/dev/uhp", F_OK) != 0) {
		o.flags = UHP_OPEN_DEVICE | UHP_OPEN_CREATE;
		tap_is(uhp_open_channel(name, &o, &ch), -ENOENT, "DEVICE without the module: -ENOENT");
	} else {
		tap_skip("this host has /dev/uhp", "DEVICE without the module");
	}

	big.o.size = sizeof(big);
	big.o.flags = UHP_OPEN_CREATE | UHP_OPEN_ARENA;
	big.o.ring_size = 4096;
	big.future[1] = 1;
	tap_is(uhp_open_channel(name, &big.o, &ch), -E2BIG,
	       "a longer struct with non-zero bytes past ours: -E2BIG");
	big.future[1] = 0;
	tap_is(uhp_open_channel(name, &big.o, &ch), 1, "a longer struct, zero past ours: created (1)");
	tap_ok(strcmp(uhp_channel_kind(ch), "arena") == 0, "kind \"%s\"", uhp_channel_kind(ch));
	tap_is(uhp_open_channel(name, &big.o, &ch2), 0, "the same call again attaches (0)");
	uhp_close(ch2);
	uhp_close(ch);
	uhp_arena_unlink(name);
}

static void t_auto_and_create_or_attach(void)
{
	struct uhp_open_opts o = UHP_OPEN_OPTS_INIT;
	struct uhp_channel *ch, *ch2;
	enum { KIDS = 8 };
	pid_t pid[KIDS];
	int created = 0, attached = 0, other = 0;

	/* No module here: the default backend is an arena. */
	o.flags = UHP_OPEN_CREATE | UHP_OPEN_CONSUMER;
	o.ring_size = 8192;
	if (access("/dev/uhp", F_OK) == 0) {
		tap_skip("this host has /dev/uhp", "without the module the default is an arena");
		o.flags |= UHP_OPEN_ARENA;
		tap_is(uhp_open_channel(name, &o, &ch), 1, "create-or-attach creates");
	} else {
		tap_is(uhp_open_channel(name, &o, &ch), 1, "create-or-attach creates (1)");
		tap_ok(strcmp(uhp_channel_kind(ch), "arena") == 0,
		       "without the module the default is an arena (%s)", uhp_channel_kind(ch));
	}
	o.flags &= ~UHP_OPEN_CONSUMER;
	tap_is(uhp_open_channel(name, &o, &ch2), 0, "again: attaches (0)");
	tap_is(uhp_send(ch2, "hello", 5, NULL), 0, "and sends");
	{
		char b[8];

		tap_is(uhp_recv(ch, b, sizeof(b), NULL), 5, "to the creator's consumer");
	}
	uhp_close(ch2);
	o.flags |= UHP_OPEN_EXCL;
	tap_is(uhp_open_channel(name, &o, &ch2), -EEXIST, "EXCL on an existing one: -EEXIST");
	o.flags = UHP_OPEN_CONSUMER;
	tap_is(uhp_open_channel(name, &o, &ch2), -EBUSY, "the consumer role is taken: -EBUSY");
	uhp_close(ch);
	uhp_arena_unlink(name);

	/* Racing processes: one creates, the others attach. */
	for (int i = 0; i < KIDS; i++) {
		pid[i] = fork();
		if (pid[i] == 0) {
			struct uhp_open_opts k = UHP_OPEN_OPTS_INIT;
			int r;

			k.flags = UHP_OPEN_CREATE | (access("/dev/uhp", F_OK) ? 0 : UHP_OPEN_ARENA);
			k.ring_size = 1 << 20;	/* a longer creation: a wider race */
			r = uhp_open_channel(name, &k, &ch);
			if (r >= 0)
				t_sleep_ms(50);	/* hold it while the others come */
			_exit(r == 1 ? 10 : r == 0 ? 11 : 12);
		}
	}
	for (int i = 0; i < KIDS; i++) {
		int st = t_reap(pid[i]);

		created += st == 10;
		attached += st == 11;
		other += st != 10 && st != 11;
	}
	tap_ok(created == 1 && attached == KIDS - 1 && other == 0,
	       "%d racing processes: %d created, %d attached, %d failed", KIDS, created,
	       attached, other);
	uhp_arena_unlink(name);
}

static void t_arena_pollfd(void)
{
	struct uhp_create_opts o = UHP_CREATE_OPTS_INIT;
	struct uhp_channel *ch, *p;
	struct pollfd pfd;
	struct stat st;
	char b[8];
	pid_t pid;
	int fd, fd2;

	o.ring_size = 4096;
	o.consumer = true;
	if (uhp_arena_create(name, &o, &ch) || uhp_arena_attach(name, 0, &p))
		tap_bail("arena");
	tap_is(uhp_channel_fd(p), -EOPNOTSUPP, "a producer's handle has no fd");
	fd = uhp_channel_fd(ch);
	tap_ok(fd >= 0, "the consumer's fd: %d", fd);
	tap_ok(stat(fifo, &st) == 0 && S_ISFIFO(st.st_mode) && (st.st_mode & 0777) == 0600,
	       "a FIFO %s, mode 0600", fifo);
	fd2 = uhp_channel_fd(ch);
	tap_is(fd2, fd, "the same fd on the second call");
	tap_is(uhp_prepare_sleep(ch), 0, "prepare_sleep: nothing ready");
	pfd = (struct pollfd){ .fd = fd, .events = POLLIN };
	tap_is(poll(&pfd, 1, 0), 0, "no POLLIN before a record");

	pid = fork();
	if (pid == 0) {
		struct uhp_channel *q;

		if (uhp_arena_attach(name, 0, &q))
			_exit(1);
		t_sleep_ms(100);
		_exit(uhp_send(q, "tick", 4, NULL) ? 2 : 0);
	}
	pfd.revents = 0;
	tap_is(poll(&pfd, 1, 5000), 1, "POLLIN once another process sent");
	tap_ok(pfd.revents == POLLIN, "POLLIN only (revents %#x)", pfd.revents);
	tap_is(t_reap(pid), 0, "the producer exits 0");
	uhp_end_sleep(ch);
	pfd.revents = 0;
	tap_is(poll(&pfd, 1, 0), 0, "uhp_end_sleep() drained the FIFO");
	tap_is(uhp_recv(ch, b, sizeof(b), NULL), 4, "the record is there");
	/* Not asleep: a send does not write to the FIFO. */
	tap_is(uhp_send(p, "x", 1, NULL), 0, "a send while the consumer is awake");
	tap_is(poll(&pfd, 1, 0), 0, "leaves the FIFO empty");
	uhp_close(p);
	uhp_close(ch);
	tap_is(uhp_arena_unlink(name), 0, "unlink");
	tap_ok(access(fifo, F_OK) != 0 && errno == ENOENT, "removes the FIFO too");

	/* /dev/shm is everyone's: a file in the FIFO's place is refused. */
	if (uhp_arena_create(name, &o, &ch))
		tap_bail("arena");
	fd = open(fifo, O_CREAT | O_EXCL | O_WRONLY, 0600);
	close(fd);
	tap_is(uhp_channel_fd(ch), -EPERM, "a regular file in its place: -EPERM");
	unlink(fifo);
	tap_ok(mkfifo(fifo, 0666) == 0 && chmod(fifo, 0666) == 0, "a FIFO open to others");
	tap_is(uhp_channel_fd(ch), -EPERM, "is refused: -EPERM");
	unlink(fifo);
	tap_ok(symlink("/dev/null", fifo) == 0, "a symlink");
	tap_is(uhp_channel_fd(ch), -EPERM, "is refused: -EPERM");
	unlink(fifo);
	uhp_close(ch);
	uhp_arena_unlink(name);
}

/* The seal, computed here from what the record says. */
static uint32_t seal(uint32_t len, const struct uhp_meta *m, const void *payload)
{
	struct uhp_rec_hdr h;

	memset(&h, 0, sizeof(h));
	h.len = len;
	h.type = m->type;
	h.flags = m->flags;
	h.src = m->src;
	h.dst = m->dst;
	h.seq = m->seq;
	return ~uhp_crc32c(uhp_crc32c(~0U, (const char *)&h + UHP_REC_CRC_HDR_OFF,
				      UHP_REC_CRC_HDR_LEN), payload, len);
}

static void t_rx_crc(void)
{
	struct uhp_create_opts o = UHP_CREATE_OPTS_INIT;
	static char big[3000];
	struct uhp_channel *ch;
	struct uhp_rx rx;
	int good = 0;

	o.ring_size = 1 << 16;
	o.consumer = true;
	if (uhp_arena_create(name, &o, &ch))
		tap_bail("arena");
	for (unsigned i = 0; i < sizeof(big); i++)
		big[i] = (char)(i * 13);
	/* Short records take the one-pass path, long ones the generic one. */
	for (uint32_t len = 0; len <= 2900; len += len < 300 ? 1 : 260) {
		struct uhp_meta m = { .seq = len * 3ULL, .src = len, .dst = 7, .type = 2 };

		if (uhp_send(ch, big, len, &m) || uhp_peek(ch, &rx))
			tap_bail("send/peek %u", len);
		good += rx.len == len && rx.crc == seal(len, &rx.meta, rx.payload);
		uhp_release(ch, &rx);
	}
	tap_is(good, 300 + 11, "uhp_peek()'s rx.crc is the sealed CRC, 0..2900 bytes");
	uhp_close(ch);
	uhp_arena_unlink(name);
}

/* An arena observer, and what uhp_ring_stats() reads from the pages. */
static void t_observer_and_ring_stats(void)
{
	struct uhp_create_opts o = UHP_CREATE_OPTS_INIT;
	struct uhp_ring_stats rs = { .size = sizeof(rs) };
	struct uhp_channel *c, *obs, *c2;
	struct uhp_txn t;
	char b[64], *pl;

	o.ring_size = 4096;
	o.consumer = true;
	o.node = 0;
	if (uhp_arena_create(name, &o, &c))
		tap_bail("arena");
	tap_is(uhp_arena_attach(name, UHP_ATTACH_RDONLY, &obs), 0, "an arena observer attaches");
	tap_is(uhp_arena_attach(name, UHP_ATTACH_RDONLY | UHP_ATTACH_CONSUMER, &c2), -EINVAL,
	       "an observer that consumes: -EINVAL");
	tap_is(uhp_send(obs, "x", 1, NULL), -EBADF, "the observer cannot send");
	tap_is(uhp_channel_fd(obs), -EOPNOTSUPP, "nor has a wake fd");
	tap_is(uhp_notify(obs), -EBADF, "nor notifies (its header is read-only)");
	for (int i = 0; i < 4; i++)
		uhp_send(c, "hello", 5, NULL);
	/* One damaged after its seal, one left in the ring. */
	if (uhp_reserve(c, 8, &t))
		tap_bail("reserve");
	pl = t.payload;
	memcpy(pl, "abcdefgh", 8);
	uhp_commit(c, &t, NULL);
	pl[0] ^= 1;
	uhp_send(c, "left", 4, NULL);
	for (int i = 0; i < 5; i++)
		uhp_recv(c, b, sizeof(b), NULL);
	tap_is(uhp_ring_stats(obs, 0, &rs), 0, "uhp_ring_stats through the observer");
	tap_ok(rs.records == 5 && rs.bad == 1 && rs.stalled == 0 && rs.used == 64 &&
	       rs.written == 6 * 64 && rs.consumed == 5 * 64 && rs.data_size == 4096 &&
	       rs.node == 0 && rs.flags == 0,
	       "records %llu, bad %llu, used %llu, written %llu, consumed %llu",
	       (unsigned long long)rs.records, (unsigned long long)rs.bad,
	       (unsigned long long)rs.used, (unsigned long long)rs.written,
	       (unsigned long long)rs.consumed);
	rs.size = 8;
	tap_is(uhp_ring_stats(obs, 0, &rs), -EINVAL, "a size below the first version: -EINVAL");
	rs.size = sizeof(rs);
	tap_is(uhp_ring_stats(obs, 1, &rs), -EINVAL, "no ring 1: -EINVAL");
	uhp_close(obs);
	uhp_close(c);
	uhp_arena_unlink(name);
}

static void on_alarm(int sig)
{
	(void)sig;
}

/* uhp_recv_batch_wait(), and a signal ends an arena's wait (-EINTR). */
static void t_batch_wait_and_eintr(void)
{
	struct uhp_create_opts o = UHP_CREATE_OPTS_INIT;
	struct sigaction sa = { .sa_handler = on_alarm };	/* no SA_RESTART */
	struct itimerval it = { .it_value = { 0, 100000 } };
	struct uhp_rx_msg m[4];
	struct uhp_channel *c;
	char bufs[4][16];
	uint64_t t0;
	int r;

	o.ring_size = 4096;
	o.consumer = true;
	if (uhp_arena_create(name, &o, &c))
		tap_bail("arena");
	for (int i = 0; i < 4; i++)
		m[i] = (struct uhp_rx_msg){ .buf = bufs[i], .cap = sizeof(bufs[i]) };
	tap_is(uhp_recv_batch_wait(c, m, 4, 0), -ETIMEDOUT, "batch wait(0) on nothing: -ETIMEDOUT");
	for (int i = 0; i < 3; i++)
		uhp_send(c, "abc", 3, NULL);
	tap_is(uhp_recv_batch_wait(c, m, 4, 1000), 3, "then the 3 records there, at once");
	sigaction(SIGALRM, &sa, NULL);
	setitimer(ITIMER_REAL, &it, NULL);
	t0 = t_now_ns();
	r = uhp_wait(c, 5000);
	tap_ok(r == -EINTR && t_now_ns() - t0 < 3000000000ULL,
	       "a signal ends an arena's wait: %d after %llu ms", r,
	       (unsigned long long)((t_now_ns() - t0) / 1000000));
	signal(SIGALRM, SIG_DFL);
	uhp_close(c);
	uhp_arena_unlink(name);
}

/* How many wakeups the producer made for one record sent 50 ms in. */
static int notifies_with_spin(unsigned spin)
{
	struct uhp_create_opts o = UHP_CREATE_OPTS_INIT;
	struct uhp_channel *ch;
	char b[8];
	pid_t pid;
	int st;

	o.ring_size = 4096;
	o.consumer = true;
	if (uhp_arena_create(name, &o, &ch))
		tap_bail("arena");
	uhp_set_spin(ch, spin);
	pid = fork();
	if (pid == 0) {
		struct uhp_channel *p;
		struct uhp_stats s;

		if (uhp_arena_attach(name, 0, &p))
			_exit(100);
		t_sleep_ms(50);
		if (uhp_send(p, "s", 1, NULL) || uhp_stats(p, &s))
			_exit(101);
		_exit((int)s.notifies);
	}
	if (uhp_recv_wait(ch, b, sizeof(b), NULL, 5000) != 1)
		tap_diag("no record with spin %u", spin);
	st = t_reap(pid);
	uhp_close(ch);
	uhp_arena_unlink(name);
	return st;
}

static void t_spin(void)
{
	tap_is(notifies_with_spin(0), 1, "spin 0: asleep at once, the producer wakes it");
	/* ~100 ns a check: a billion outlast the 50 ms by far. */
	tap_is(notifies_with_spin(1000000000U), 0, "a long spin: caught awake, no wakeup");
}

int main(void)
{
	snprintf(name, sizeof(name), "open-test.%d", getpid());
	snprintf(fifo, sizeof(fifo), "/dev/shm/uhp.%s:wake", name);
	tap_plan(56);
	t_options();
	t_auto_and_create_or_attach();
	t_arena_pollfd();
	t_rx_crc();
	t_observer_and_ring_stats();
	t_batch_wait_and_eintr();
	t_spin();
	return tap_done();
}
