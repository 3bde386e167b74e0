// SPDX-License-Identifier: MIT
/*
 * arena_test: channels without the module (uhp_arena_*): names and errors,
 * two processes exchanging records through a named arena with payload and
 * CRC checked, a consumer asleep on the futex woken by a producer in another
 * process, the consumer role (exclusive, freed on close, taken over from a
 * dead holder), and a corrupted header refused on attach.
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

#include "tap.h"
#include "uhp.h"

static char name[64];

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int reap(pid_t pid)
{
	int status;

	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

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
	tap_is(reap(pid), 0, "producer process exits 0");
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
	t0 = now_ns();
	tap_is(uhp_recv_wait(ch, b, sizeof(b), NULL, 10000), 4, "the sleeping consumer gets the record");
	waited = now_ns() - t0;
	tap_is(reap(pid), 0, "the producer saw need_wakeup and woke the futex");
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
	reap(pid);
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

int main(void)
{
	snprintf(name, sizeof(name), "arena-test.%d", getpid());
	tap_plan(26);
	t_names_and_errors();
	t_two_processes();
	t_futex_wakeup();
	t_consumer_role();
	t_corrupt_header();
	return tap_done();
}
