// SPDX-License-Identifier: MIT
/*
 * uhpctl: see and remove uhp channels (/dev/uhp).
 *
 *   uhpctl ls [--json]               the channels the caller may see
 *                                    (UHP_IOC_LIST: its own, and those it
 *                                    may observe, of its namespace)
 *   uhpctl stat NAME [--json]        one channel: owner, mode, its rings with
 *                                    node, kind and fill, kernel-ring counters
 *   uhpctl rm NAME...                unlink names (the channel lives on while
 *                                    fds or mappings hold it)
 *   uhpctl watch [-n SECS] [-c N] ls|stat NAME   the same, every SECS (1),
 *                                    N times (0: until interrupted)
 *
 * stat attaches as an observer (UHP_ATTACH_RDONLY: read permission is
 * enough, nothing is written) and reads the positions from the mapped
 * pages: a snapshot. Exit status: 0, 1 when a channel operation failed (the
 * message says which and why), 2 for a bad command line.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "uhp.h"

static bool json;

static void usage(FILE *f)
{
	fprintf(f,
		"usage: uhpctl ls [--json]\n"
		"       uhpctl stat NAME [--json]\n"
		"       uhpctl rm NAME...\n"
		"       uhpctl watch [-n SECS] [-c COUNT] ls|stat NAME\n");
}

static int open_dev(void)
{
	int dev = uhp_open();

	if (dev < 0)
		fprintf(stderr, "uhpctl: %s: %s%s\n", UHP_DEVICE_PATH, strerror(-dev),
			dev == -ENOENT ? " (is the uhp module loaded?)" : "");
	return dev;
}

static void flags_str(unsigned f, char *out, size_t cap)
{
	snprintf(out, cap, "%s%s%s%s",
		 f & UHP_LIST_F_CONSUMER ? "consumer," : "",
		 f & UHP_LIST_F_KERNEL_RINGS ? "kernel-rings," : "",
		 f & UHP_LIST_F_AUTO_UNLINK ? "auto-unlink," : "", "");
	if (*out)
		out[strlen(out) - 1] = 0;
	else
		snprintf(out, cap, "-");
}

/* ---- ls ---- */

static int cmd_ls(int dev)
{
	struct uhp_list_entry e[64];
	unsigned start = 0, total = 0, shown = 0;
	int n;

	if (json)
		printf("[");
	else
		printf("%-32s %6s %6s %5s %5s %4s %10s %10s %s\n", "NAME", "UID",
		       "GID", "MODE", "RINGS", "FDS", "RING", "PINNED", "FLAGS");
	do {
		n = uhp_list(dev, start, e, 64, &total);
		if (n < 0) {
			fprintf(stderr, "uhpctl: list: %s\n", strerror(-n));
			return 1;
		}
		for (int i = 0; i < n; i++, shown++) {
			char fl[64];

			flags_str(e[i].flags, fl, sizeof(fl));
			if (json)
				printf("%s{\"name\":\"%s\",\"uid\":%u,\"gid\":%u,\"mode\":\"%04o\","
				       "\"rings\":%u,\"fds\":%u,\"ring_size\":%llu,"
				       "\"pinned_bytes\":%llu,\"consumer\":%s,"
				       "\"kernel_rings\":%s,\"auto_unlink\":%s}",
				       shown ? "," : "", e[i].name, e[i].uid, e[i].gid,
				       e[i].mode, e[i].nr_rings, e[i].nr_fds,
				       (unsigned long long)e[i].data_size,
				       (unsigned long long)e[i].ring_bytes,
				       e[i].flags & UHP_LIST_F_CONSUMER ? "true" : "false",
				       e[i].flags & UHP_LIST_F_KERNEL_RINGS ? "true" : "false",
				       e[i].flags & UHP_LIST_F_AUTO_UNLINK ? "true" : "false");
			else
				printf("%-32s %6u %6u %05o %5u %4u %10llu %10llu %s\n",
				       e[i].name, e[i].uid, e[i].gid, e[i].mode,
				       e[i].nr_rings, e[i].nr_fds,
				       (unsigned long long)e[i].data_size,
				       (unsigned long long)e[i].ring_bytes, fl);
		}
		start += (unsigned)n;
	} while (n > 0 && start < total);
	if (json)
		printf("]\n");
	return 0;
}

/* ---- stat ---- */

static const char *ring_kind(unsigned flags)
{
	if (flags & UHP_RING_F_KERNEL)
		return "kernel";
	if (flags & UHP_RING_F_EXCL)
		return flags & UHP_RING_F_CLAIMED ? "exclusive-claimed" : "exclusive";
	return "user";
}

static int cmd_stat(int dev, const char *name)
{
	struct uhp_ring_info ri[256];
	struct uhp_channel *ch;
	struct uhp_info info;
	int ret;

	ret = uhp_attach(dev, name, UHP_ATTACH_RDONLY, &ch);
	if (ret) {
		fprintf(stderr, "uhpctl: %s: %s\n", name, strerror(-ret));
		return 1;
	}
	ret = uhp_info(ch, &info, ri, 256);
	if (ret) {
		fprintf(stderr, "uhpctl: %s: info: %s\n", name, strerror(-ret));
		uhp_close(ch);
		return 1;
	}
	if (json)
		printf("{\"name\":\"%s\",\"uid\":%u,\"gid\":%u,\"mode\":\"%04o\","
		       "\"ring_size\":%llu,\"rings\":[", info.name, info.uid, info.gid,
		       info.mode, (unsigned long long)info.data_size);
	else
		printf("%s: uid %u gid %u mode %04o, %u rings of %llu bytes\n"
		       "  %4s %4s %-18s %12s %6s %12s %12s\n", info.name, info.uid,
		       info.gid, info.mode, info.nr_rings,
		       (unsigned long long)info.data_size, "RING", "NODE", "KIND",
		       "USED", "FILL", "KFULL", "KCORRUPT");
	for (unsigned k = 0; k < info.nr_rings && k < 256; k++) {
		uint64_t used = 0, size = 0;
		int f = uhp_ring_fill(ch, k, &used, &size);

		if (json)
			printf("%s{\"ring\":%u,\"node\":%d,\"kind\":\"%s\",\"used\":%lld,"
			       "\"kernel_full\":%llu,\"kernel_corrupt\":%llu}",
			       k ? "," : "", k, ri[k].node, ring_kind(ri[k].flags),
			       f ? -1LL : (long long)used,
			       (unsigned long long)ri[k].kernel_full,
			       (unsigned long long)ri[k].kernel_corrupt);
		else if (f)
			printf("  %4u %4d %-18s %12s %6s %12llu %12llu\n", k, ri[k].node,
			       ring_kind(ri[k].flags), "corrupt", "-",
			       (unsigned long long)ri[k].kernel_full,
			       (unsigned long long)ri[k].kernel_corrupt);
		else
			printf("  %4u %4d %-18s %12llu %5.1f%% %12llu %12llu\n", k,
			       ri[k].node, ring_kind(ri[k].flags),
			       (unsigned long long)used, 100.0 * (double)used / (double)size,
			       (unsigned long long)ri[k].kernel_full,
			       (unsigned long long)ri[k].kernel_corrupt);
	}
	if (json)
		printf("]}\n");
	uhp_close(ch);
	return 0;
}

/* ---- rm ---- */

static int cmd_rm(int dev, int n, char **names)
{
	int rc = 0;

	for (int i = 0; i < n; i++) {
		int ret = uhp_unlink(dev, names[i]);

		if (ret) {
			fprintf(stderr, "uhpctl: rm %s: %s\n", names[i], strerror(-ret));
			rc = 1;
		}
	}
	return rc;
}

/* ---- watch ---- */

static int cmd_watch(int dev, int argc, char **argv)
{
	double secs = 1.0;
	long count = 0;
	int c, rc = 0;

	optind = 1;
	while ((c = getopt(argc, argv, "+n:c:")) != -1) {
		char *end;

		switch (c) {
		case 'n':
			secs = strtod(optarg, &end);
			if (*end || secs < 0.01 || secs > 86400) {
				fprintf(stderr, "uhpctl: watch -n %s: seconds, 0.01..86400\n", optarg);
				return 2;
			}
			break;
		case 'c':
			count = strtol(optarg, &end, 10);
			if (*end || count < 0) {
				fprintf(stderr, "uhpctl: watch -c %s: a count >= 0\n", optarg);
				return 2;
			}
			break;
		default:
			usage(stderr);
			return 2;
		}
	}
	argc -= optind;
	argv += optind;
	if (!(argc == 1 && !strcmp(argv[0], "ls")) &&
	    !(argc == 2 && !strcmp(argv[0], "stat"))) {
		usage(stderr);
		return 2;
	}
	for (long i = 0; count == 0 || i < count; i++) {
		struct timespec ts = {
			.tv_sec = (time_t)secs,
			.tv_nsec = (long)((secs - (double)(time_t)secs) * 1e9),
		};

		if (i && isatty(STDOUT_FILENO))
			printf("\033[H\033[J");		/* home, clear */
		rc = argc == 1 ? cmd_ls(dev) : cmd_stat(dev, argv[1]);
		fflush(stdout);
		if (rc || (count && i + 1 == count))
			break;
		nanosleep(&ts, NULL);
	}
	return rc;
}

int main(int argc, char **argv)
{
	int dev, rc, n = 0;
	char *args[argc + 1];

	/* --json anywhere; the rest in order */
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = true;
		else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		} else
			args[n++] = argv[i];
	}
	args[n] = NULL;
	if (n == 0 || (!strcmp(args[0], "ls") && n != 1) ||
	    (!strcmp(args[0], "stat") && n != 2) ||
	    (!strcmp(args[0], "rm") && n < 2) ||
	    (strcmp(args[0], "ls") && strcmp(args[0], "stat") &&
	     strcmp(args[0], "rm") && strcmp(args[0], "watch"))) {
		usage(stderr);
		return 2;
	}
	dev = open_dev();
	if (dev < 0)
		return 1;
	if (!strcmp(args[0], "ls"))
		rc = cmd_ls(dev);
	else if (!strcmp(args[0], "stat"))
		rc = cmd_stat(dev, args[1]);
	else if (!strcmp(args[0], "rm"))
		rc = cmd_rm(dev, n - 1, args + 1);
	else
		rc = cmd_watch(dev, n, args);
	close(dev);
	return rc;
}
