/* SPDX-License-Identifier: MIT */
/*
 * Minimal TAP for the host tests: tap_plan(N) prints "1..N", each check
 * prints "ok N - desc" or "not ok N - desc" (with "# got/expected" lines),
 * tap_done() prints "P passed, F failed" and returns the exit status. A
 * test that planned N checks but ran a different number fails: missing or
 * extra checks count as failures, so a check cannot silently disappear.
 */
#ifndef UHP_TAP_H
#define UHP_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static int tap_planned, tap_run, tap_failed;

static inline void tap_plan(int n)
{
	tap_planned = n;
	printf("1..%d\n", n);
	fflush(stdout);
}

static inline void tap_diag(const char *fmt, ...)
{
	va_list ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

__attribute__((format(printf, 2, 3)))
static inline int tap_ok(int cond, const char *fmt, ...)
{
	va_list ap;

	tap_run++;
	if (!cond)
		tap_failed++;
	printf("%sok %d - ", cond ? "" : "not ", tap_run);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	return cond;
}

/* Passes, but says why the check could not really run. */
__attribute__((format(printf, 2, 3)))
static inline void tap_skip(const char *why, const char *fmt, ...)
{
	va_list ap;

	tap_run++;
	printf("ok %d - ", tap_run);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf(" # SKIP %s\n", why);
	fflush(stdout);
}

/* Integer equality with both values reported on failure. */
#define tap_is(got, exp, ...) ({					\
	long long g_ = (long long)(got), e_ = (long long)(exp);	\
	int r_ = tap_ok(g_ == e_, __VA_ARGS__);				\
	if (!r_)							\
		tap_diag("got %lld (0x%llx), expected %lld (0x%llx)",	\
			 g_, (unsigned long long)g_, e_,		\
			 (unsigned long long)e_);			\
	r_;								\
})

static inline int tap_done(void)
{
	int failed = tap_failed;

	if (tap_run != tap_planned) {
		tap_diag("planned %d checks, ran %d", tap_planned, tap_run);
		failed += abs(tap_planned - tap_run);
	}
	printf("%d passed, %d failed\n", tap_run - tap_failed, failed);
	fflush(stdout);
	return failed ? 1 : 0;
}

/* Fatal setup failure: report it and stop with everything else failed. */
#define tap_bail(...) do {						\
	tap_ok(0, __VA_ARGS__);						\
	exit(tap_done());						\
} while (0)

#endif /* UHP_TAP_H */
