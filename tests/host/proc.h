/* SPDX-License-Identifier: MIT */
/*
 * Shared by the host tests, public API only (helpers.h adds the library's
 * internals): a monotonic clock, a sleep, and a child's exit status.
 */
#ifndef UHP_TEST_PROC_H
#define UHP_TEST_PROC_H

#include <stdint.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>

static inline uint64_t t_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static inline void t_sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Wait for child pid: its exit code, 128 + signal if killed, -1 if lost. */
static inline int t_reap(pid_t pid)
{
	int status;

	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

#endif
