/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * harness.h - a small test harness for the uhp guest tests.
 *
 * In the spirit of the kernel's kselftest harness, much smaller:
 *
 *	#include "harness.h"
 *
 *	TEST(open_works)
 *	{
 *		int fd = open("/dev/uhp", O_RDWR);
 *
 *		ASSERT_GE(fd, 0);
 *		EXPECT_ERRNO(ioctl(fd, 0x1234), ENOTTY);
 *	}
 *
 *	TEST_TIMEOUT(slow_one, 120) { ... }
 *
 *	TEST_HARNESS_MAIN
 *
 * Each test runs in its own forked child (so a crash or an exit() fails
 * only that test) in its own process group, with a timeout (default 30 s)
 * enforced by the parent, which kills the whole group.  ASSERT_* ends the
 * test at the first failure; EXPECT_* records it and carries on.  SKIP()
 * ends the test as skipped with a reason.  Failures print file:line and the
 * values compared.
 *
 * Output is TAP:  1..N, "ok N name", "not ok N name", "ok N name # SKIP why",
 * diagnostics as "# " lines, then "# P passed, F failed, S skipped".
 * Exit status: 0 if nothing failed, 1 if something failed, 4 (KSFT_SKIP) if
 * every test was skipped.
 *
 * Command line: PROG [-l] [NAME...]  (-l lists; NAMEs select tests).
 */
#ifndef UHP_TEST_HARNESS_H
#define UHP_TEST_HARNESS_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define UHP_HARNESS_DEFAULT_TIMEOUT	30	/* seconds */
#define UHP_HARNESS_SKIP_EXIT		4	/* kselftest's KSFT_SKIP */

struct uhp_test {
	const char *name;
	void (*fn)(void);
	unsigned int timeout;		/* seconds */
	struct uhp_test *next;
};

/*
 * State a child shares with the parent: a MAP_SHARED page, so the reason a
 * test skipped survives the child's exit.
 */
struct uhp_test_shared {
	int skipped;
	int expect_failed;
	char reason[256];
};

/* Static: each test program is one translation unit plus libuhp. */
static struct uhp_test *uhp_tests_head, **uhp_tests_tail = &uhp_tests_head;
static struct uhp_test_shared *uhp_test_state;

static inline void uhp_test_register(struct uhp_test *t)
{
	/* Append, so tests run in the order the file defines them. */
	*uhp_tests_tail = t;
	uhp_tests_tail = &t->next;
}

#define TEST_TIMEOUT(test_name, secs)					\
	static void uhp_test_fn_##test_name(void);			\
	static struct uhp_test uhp_test_##test_name = {			\
		.name = #test_name,					\
		.fn = uhp_test_fn_##test_name,				\
		.timeout = (secs),					\
	};								\
	__attribute__((constructor)) static void			\
	uhp_test_reg_##test_name(void)					\
	{								\
		uhp_test_register(&uhp_test_##test_name);		\
	}								\
	static void uhp_test_fn_##test_name(void)

#define TEST(test_name) TEST_TIMEOUT(test_name, UHP_HARNESS_DEFAULT_TIMEOUT)

/* A diagnostic line in the TAP stream. */
#define TH_LOG(fmt, ...)						\
	do {								\
		printf("# " fmt "\n", ##__VA_ARGS__);			\
		fflush(stdout);						\
	} while (0)

/* End the current test as skipped; the reason goes on its "ok" line. */
#define SKIP(fmt, ...)							\
	do {								\
		uhp_test_state->skipped = 1;				\
		snprintf(uhp_test_state->reason,			\
			 sizeof(uhp_test_state->reason), fmt,		\
			 ##__VA_ARGS__);				\
		fflush(stdout);						\
		_exit(0);						\
	} while (0)

/* End the current test as failed. */
#define FAIL(fmt, ...)							\
	do {								\
		TH_LOG("%s:%d: FAIL: " fmt, __FILE__, __LINE__,		\
		       ##__VA_ARGS__);					\
		_exit(1);						\
	} while (0)

/*
 * The user-facing macros stringify their arguments themselves and pass the
 * strings down: stringified one level lower, ENOTTY would print as 25.
 *
 * uhp_fail_(): report and either end the test (assert) or mark it failed
 * (expect).  Values are printed both signed and in hex: ioctl results are
 * small signed numbers, flags and positions read better in hex.
 */
static inline void uhp_fail_(int is_assert, const char *file, int line,
			     const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static inline void uhp_fail_(int is_assert, const char *file, int line,
			     const char *fmt, ...)
{
	va_list ap;

	printf("# %s:%d: ", file, line);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	if (is_assert)
		_exit(1);
	uhp_test_state->expect_failed = 1;
}

/*
 * ASSERT_EQ(info.nr_rings, 2) compares a __u32 with an int: that is meant,
 * so -Wsign-compare is silenced for the comparison itself.
 */
#define UHP_CMP_(is_assert, kind, a, op, b, sa, sb)			\
	do {								\
		__typeof__(a) uhp_a_ = (a);				\
		__typeof__(b) uhp_b_ = (b);				\
		int uhp_ok_;						\
		_Pragma("GCC diagnostic push")				\
		_Pragma("GCC diagnostic ignored \"-Wsign-compare\"")	\
		uhp_ok_ = uhp_a_ op uhp_b_;				\
		_Pragma("GCC diagnostic pop")				\
		if (!uhp_ok_)						\
			uhp_fail_(is_assert, __FILE__, __LINE__,	\
				  kind "(%s, %s) failed: %s = %lld (0x%llx), %s = %lld (0x%llx)", \
				  sa, sb, sa,				\
				  (long long)uhp_a_,			\
				  (unsigned long long)uhp_a_,		\
				  sb, (long long)uhp_b_,		\
				  (unsigned long long)uhp_b_);		\
	} while (0)

#define UHP_BOOL_(is_assert, kind, expr, want, sexpr)			\
	do {								\
		if ((!!(expr)) != (want))				\
			uhp_fail_(is_assert, __FILE__, __LINE__,	\
				  kind "(%s) failed (errno %d: %s)",	\
				  sexpr, errno, strerror(errno));	\
	} while (0)

/* expr must return -1 with errno == err (the libc convention for syscalls). */
#define UHP_ERRNO_(is_assert, kind, expr, err, sexpr, serr)		\
	do {								\
		long uhp_r_;						\
		errno = 0;						\
		uhp_r_ = (long)(expr);					\
		if (uhp_r_ != -1 || errno != (err))			\
			uhp_fail_(is_assert, __FILE__, __LINE__,	\
				  kind "(%s, %s) failed: returned %ld, errno %d (%s), want -1 errno %d (%s)", \
				  sexpr, serr, uhp_r_, errno,		\
				  strerror(errno), (int)(err),		\
				  strerror(err));			\
	} while (0)

#define UHP_STREQ_(is_assert, kind, a, b, sa, sb)			\
	do {								\
		const char *uhp_sa_ = (a), *uhp_sb_ = (b);		\
		if (strcmp(uhp_sa_, uhp_sb_))				\
			uhp_fail_(is_assert, __FILE__, __LINE__,	\
				  kind "(%s, %s) failed: \"%s\" != \"%s\"", \
				  sa, sb, uhp_sa_, uhp_sb_);		\
	} while (0)

#define ASSERT_EQ(a, b)		UHP_CMP_(1, "ASSERT_EQ", a, ==, b, #a, #b)
#define ASSERT_NE(a, b)		UHP_CMP_(1, "ASSERT_NE", a, !=, b, #a, #b)
#define ASSERT_LT(a, b)		UHP_CMP_(1, "ASSERT_LT", a, <, b, #a, #b)
#define ASSERT_LE(a, b)		UHP_CMP_(1, "ASSERT_LE", a, <=, b, #a, #b)
#define ASSERT_GT(a, b)		UHP_CMP_(1, "ASSERT_GT", a, >, b, #a, #b)
#define ASSERT_GE(a, b)		UHP_CMP_(1, "ASSERT_GE", a, >=, b, #a, #b)
#define ASSERT_TRUE(e)		UHP_BOOL_(1, "ASSERT_TRUE", e, 1, #e)
#define ASSERT_FALSE(e)		UHP_BOOL_(1, "ASSERT_FALSE", e, 0, #e)
#define ASSERT_ERRNO(e, err)	UHP_ERRNO_(1, "ASSERT_ERRNO", e, err, #e, #err)
#define ASSERT_STREQ(a, b)	UHP_STREQ_(1, "ASSERT_STREQ", a, b, #a, #b)

#define EXPECT_EQ(a, b)		UHP_CMP_(0, "EXPECT_EQ", a, ==, b, #a, #b)
#define EXPECT_NE(a, b)		UHP_CMP_(0, "EXPECT_NE", a, !=, b, #a, #b)
#define EXPECT_LT(a, b)		UHP_CMP_(0, "EXPECT_LT", a, <, b, #a, #b)
#define EXPECT_LE(a, b)		UHP_CMP_(0, "EXPECT_LE", a, <=, b, #a, #b)
#define EXPECT_GT(a, b)		UHP_CMP_(0, "EXPECT_GT", a, >, b, #a, #b)
#define EXPECT_GE(a, b)		UHP_CMP_(0, "EXPECT_GE", a, >=, b, #a, #b)
#define EXPECT_TRUE(e)		UHP_BOOL_(0, "EXPECT_TRUE", e, 1, #e)
#define EXPECT_FALSE(e)		UHP_BOOL_(0, "EXPECT_FALSE", e, 0, #e)
#define EXPECT_ERRNO(e, err)	UHP_ERRNO_(0, "EXPECT_ERRNO", e, err, #e, #err)
#define EXPECT_STREQ(a, b)	UHP_STREQ_(0, "EXPECT_STREQ", a, b, #a, #b)

enum uhp_test_result { UHP_PASS, UHP_FAIL, UHP_SKIP };

static inline enum uhp_test_result uhp_run_one(struct uhp_test *t)
{
	struct timespec deadline, now;
	sigset_t chld, old;
	int status = 0;
	pid_t pid, r;

	memset(uhp_test_state, 0, sizeof(*uhp_test_state));
	fflush(stdout);
	fflush(stderr);

	/* Block SIGCHLD before fork so its arrival cannot be missed. */
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, &old);

	pid = fork();
	if (pid < 0) {
		TH_LOG("fork: %s", strerror(errno));
		sigprocmask(SIG_SETMASK, &old, NULL);
		return UHP_FAIL;
	}
	if (pid == 0) {
		sigprocmask(SIG_SETMASK, &old, NULL);
		/* Own group: a timeout kills what the test forked, too. */
		setpgid(0, 0);
		t->fn();
		fflush(stdout);
		_exit(uhp_test_state->expect_failed ? 1 : 0);
	}
	setpgid(pid, pid);	/* also here: no race with the kill below */

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += t->timeout;
	for (;;) {
		struct timespec left;

		r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			break;
		if (r < 0 && errno != EINTR) {
			TH_LOG("waitpid: %s", strerror(errno));
			status = -1;
			break;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		left.tv_sec = deadline.tv_sec - now.tv_sec;
		left.tv_nsec = deadline.tv_nsec - now.tv_nsec;
		if (left.tv_nsec < 0) {
			left.tv_nsec += 1000000000L;
			left.tv_sec--;
		}
		if (left.tv_sec < 0) {
			TH_LOG("%s: timed out after %u s", t->name, t->timeout);
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			sigprocmask(SIG_SETMASK, &old, NULL);
			return UHP_FAIL;
		}
		sigtimedwait(&chld, NULL, &left);
	}
	/* Whatever the test left running in its group goes too. */
	kill(-pid, SIGKILL);
	sigprocmask(SIG_SETMASK, &old, NULL);

	if (status == -1)
		return UHP_FAIL;
	if (WIFSIGNALED(status)) {
		TH_LOG("%s: killed by signal %d (%s)", t->name,
		       WTERMSIG(status), strsignal(WTERMSIG(status)));
		return UHP_FAIL;
	}
	if (WEXITSTATUS(status) != 0)
		return UHP_FAIL;
	return uhp_test_state->skipped ? UHP_SKIP : UHP_PASS;
}

static inline int uhp_test_selected(struct uhp_test *t, int argc, char **argv)
{
	int i;

	if (argc <= 1)
		return 1;
	for (i = 1; i < argc; i++)
		if (!strcmp(argv[i], t->name))
			return 1;
	return 0;
}

static inline int uhp_test_main(int argc, char **argv)
{
	int n = 0, i = 0, pass = 0, fail = 0, skip = 0;
	struct uhp_test *t;

	/* Line buffered even into a file or pipe, so the order holds. */
	setvbuf(stdout, NULL, _IOLBF, 0);

	if (argc > 1 && !strcmp(argv[1], "-l")) {
		for (t = uhp_tests_head; t; t = t->next)
			printf("%s\n", t->name);
		return 0;
	}
	for (i = 1; i < argc; i++) {
		for (t = uhp_tests_head; t; t = t->next)
			if (!strcmp(argv[i], t->name))
				break;
		if (!t) {
			fprintf(stderr, "%s: no test named %s\n", argv[0], argv[i]);
			return 2;
		}
	}

	uhp_test_state = mmap(NULL, sizeof(*uhp_test_state),
			      PROT_READ | PROT_WRITE,
			      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (uhp_test_state == MAP_FAILED) {
		perror("mmap");
		return 1;
	}

	for (t = uhp_tests_head; t; t = t->next)
		n += uhp_test_selected(t, argc, argv);
	printf("1..%d\n", n);

	i = 0;
	for (t = uhp_tests_head; t; t = t->next) {
		if (!uhp_test_selected(t, argc, argv))
			continue;
		i++;
		switch (uhp_run_one(t)) {
		case UHP_PASS:
			printf("ok %d %s\n", i, t->name);
			pass++;
			break;
		case UHP_SKIP:
			printf("ok %d %s # SKIP %s\n", i, t->name,
			       uhp_test_state->reason);
			skip++;
			break;
		case UHP_FAIL:
			printf("not ok %d %s\n", i, t->name);
			fail++;
			break;
		}
	}
	printf("# %d passed, %d failed, %d skipped\n", pass, fail, skip);
	if (fail)
		return 1;
	if (n && skip == n)
		return UHP_HARNESS_SKIP_EXIT;
	return 0;
}

#define TEST_HARNESS_MAIN						\
	int main(int argc, char **argv)					\
	{								\
		return uhp_test_main(argc, argv);			\
	}

#endif /* UHP_TEST_HARNESS_H */
