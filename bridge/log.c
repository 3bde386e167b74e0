/* SPDX-License-Identifier: MIT */
/*
 * uhp-bridge: logging (logmsg(), behind the LOG_* macros of bridge.h) and,
 * built with make LATTRACE=1 only, the latency trace.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge.h"

int g_verbose;
const char *g_host = "?";

#ifdef UHP_BRIDGE_LATTRACE
/*
 * Latency trace, for bench/bridge only (make -C bridge LATTRACE=1): the
 * first 8 payload bytes of a record are taken as its sender's
 * CLOCK_MONOTONIC stamp (bench_bridge puts it there), and each stage a
 * record passes is noted with that stamp and the time, then written to
 * $UHP_BRIDGE_LATTRACE ("stage sent_ns at_ns" lines) at exit.
 */
struct lt_ent {
	int64_t sent, at;
	int stage;
};
#define LT_CAP (1u << 21)
static struct lt_ent *g_lt;
static _Atomic uint64_t g_lt_n;

void lt_mark(int stage, const void *payload, uint32_t len)
{
	int64_t sent, at = now_ns();
	uint64_t i;

	if (!g_lt || len < 8)
		return;
	memcpy(&sent, payload, 8);
	if (sent <= 0 || sent > at || at - sent > 10000000000LL)
		return;		/* not a stamp */
	i = atomic_fetch_add(&g_lt_n, 1);
	if (i < LT_CAP)
		g_lt[i] = (struct lt_ent){ sent, at, stage };
}

void lt_open(void)
{
	if (getenv("UHP_BRIDGE_LATTRACE"))
		g_lt = calloc(LT_CAP, sizeof(*g_lt));
}

void lt_dump(void)
{
	const char *path = getenv("UHP_BRIDGE_LATTRACE");
	uint64_t n = atomic_load(&g_lt_n);
	FILE *f;

	if (!g_lt || !path || !(f = fopen(path, "w")))
		return;
	for (uint64_t i = 0; i < n && i < LT_CAP; i++)
		fprintf(f, "%d %" PRId64 " %" PRId64 "\n", g_lt[i].stage, g_lt[i].sent, g_lt[i].at);
	fclose(f);
	free(g_lt);
	g_lt = NULL;
}
#endif

void logmsg(const char *lvl, const char *fmt, ...)
{
	char buf[1024];
	struct timespec ts;
	struct tm tm;
	va_list ap;
	int n;

	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	n = snprintf(buf, sizeof(buf), "%02d:%02d:%02d.%03ld uhp-bridge[%s] %s: ",
		     tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
		     g_host, lvl);
	va_start(ap, fmt);
	vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	strcat(buf, "\n");
	fputs(buf, stderr);
}
