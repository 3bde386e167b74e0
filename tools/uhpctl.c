// SPDX-License-Identifier: MIT
/*
 * uhpctl: see and remove uhp channels (/dev/uhp) and arenas (/dev/shm).
 *
 *   uhpctl ls [--json]               the channels the caller may see
 *                                    (UHP_IOC_LIST: its own, and those it
 *                                    may observe, of its namespace; writers
 *                                    and the consumer's pid), then the
 *                                    arenas it may read
 *   uhpctl stat NAME [--json]        one channel (else the arena NAME):
 *                                    owner, mode, its rings with node, kind,
 *                                    fill, bytes written, records taken, bad
 *                                    and stalled ones (uhp_ring_stats()),
 *                                    kernel-ring counters
 *   uhpctl rm NAME...                unlink names, the channel's or else the
 *                                    arena's (the channel lives on while fds
 *                                    or mappings hold it)
 *   uhpctl watch [-n SECS] [-c N] ls|stat NAME   the same, every SECS (1),
 *                                    N times (0: until interrupted)
 *
 * stat attaches as an observer (UHP_ATTACH_RDONLY: read permission is
 * enough, nothing is written; arenas too) and reads the positions and the
 * consumer's counters from the mapped pages: a snapshot. Without the
 * module only arenas are shown. Exit status: 0, 1 when a channel operation failed (the
 * message says which and why), 2 for a bad command line.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

/* ---- arenas: /dev/shm/uhp.<name>, opened as an observer ---- */

#define SHM_DIR		"/dev/shm"
#define ARENA_PREFIX	"uhp."

/*
 * Call fn for every arena this user may read: regular files named
 * uhp.<name> (the wake FIFOs, uhp.<name>:wake, are not), skipping what
 * uhp_arena_attach() refuses (another user's, 0600 by default).
 */
static int for_each_arena(int (*fn)(const char *name, struct uhp_channel *ch,
				    const struct stat *st, void *arg), void *arg)
{
	struct dirent **ents;
	int n = scandir(SHM_DIR, &ents, NULL, alphasort), rc = 0;

	if (n < 0)
		return 0;	/* no /dev/shm: no arenas */
	for (int i = 0; i < n; i++) {
		const char *f = ents[i]->d_name;
		char path[512];
		struct uhp_channel *ch;
		struct stat st;

		snprintf(path, sizeof(path), SHM_DIR "/%s", f);
		if (!rc && !strncmp(f, ARENA_PREFIX, strlen(ARENA_PREFIX)) &&
		    !strchr(f, ':') && lstat(path, &st) == 0 && S_ISREG(st.st_mode) &&
		    uhp_arena_attach(f + strlen(ARENA_PREFIX), UHP_ATTACH_RDONLY, &ch) == 0) {
			rc = fn(f + strlen(ARENA_PREFIX), ch, &st, arg);
			uhp_close(ch);
		}
		free(ents[i]);
	}
	free(ents);
	return rc;
}

/* ---- ls ---- */

struct ls_state {
	unsigned shown;
};

static int ls_arena(const char *name, struct uhp_channel *ch, const struct stat *st,
		    void *arg)
{
	struct ls_state *ls = arg;
	struct uhp_info info;

	if (uhp_info(ch, &info, NULL, 0))
		return 0;
	if (json)
		printf("%s{\"name\":\"%s\",\"kind\":\"arena\",\"uid\":%u,\"gid\":%u,"
		       "\"mode\":\"%04o\",\"rings\":%u,\"ring_size\":%llu,"
		       "\"bytes\":%llu}", ls->shown ? "," : "", name, (unsigned)st->st_uid,
		       (unsigned)st->st_gid, (unsigned)(st->st_mode & 07777),
		       info.nr_rings, (unsigned long long)info.data_size,
		       (unsigned long long)st->st_size);
	else
		printf("%-32s %-7s %6u %6u %04o %5u %4s %7s %7s %10llu %10llu %s\n", name,
		       "arena", (unsigned)st->st_uid, (unsigned)st->st_gid,
		       (unsigned)(st->st_mode & 07777), info.nr_rings, "-", "-", "-",
		       (unsigned long long)info.data_size, (unsigned long long)st->st_size,
		       "-");
	ls->shown++;
	return 0;
}

static int cmd_ls(int dev)
{
	struct uhp_list_entry e[64];
	unsigned start = 0, total = 0;
	struct ls_state ls = { 0 };
	int n;

	if (json)
		printf("[");
	else
		printf("%-32s %-7s %6s %6s %4s %5s %4s %7s %7s %10s %10s %s\n", "NAME",
		       "KIND", "UID", "GID", "MODE", "RINGS", "FDS", "WRITERS", "CONSPID",
		       "RING", "PINNED", "FLAGS");
	while (dev >= 0) {
		n = uhp_list(dev, start, e, 64, &total);
		if (n < 0) {
			if (json)
				printf("]\n");
			fprintf(stderr, "uhpctl: list: %s\n", strerror(-n));
			return 1;
		}
		for (int i = 0; i < n; i++, ls.shown++) {
			char fl[64];

			flags_str(e[i].flags, fl, sizeof(fl));
			if (json)
				printf("%s{\"name\":\"%s\",\"kind\":\"channel\",\"uid\":%u,"
				       "\"gid\":%u,\"mode\":\"%04o\",\"rings\":%u,\"fds\":%u,"
				       "\"writers\":%u,\"consumer_pid\":%u,\"ns_inum\":%u,"
				       "\"ring_size\":%llu,"
				       "\"pinned_bytes\":%llu,\"consumer\":%s,"
				       "\"kernel_rings\":%s,\"auto_unlink\":%s}",
				       ls.shown ? "," : "", e[i].name, e[i].uid, e[i].gid,
				       e[i].mode, e[i].nr_rings, e[i].nr_fds, e[i].nr_writers,
				       e[i].consumer_pid, e[i].scope_inum,
				       (unsigned long long)e[i].data_size,
				       (unsigned long long)e[i].ring_bytes,
				       e[i].flags & UHP_LIST_F_CONSUMER ? "true" : "false",
				       e[i].flags & UHP_LIST_F_KERNEL_RINGS ? "true" : "false",
				       e[i].flags & UHP_LIST_F_AUTO_UNLINK ? "true" : "false");
			else
				printf("%-32s %-7s %6u %6u %04o %5u %4u %7u %7u %10llu %10llu %s\n",
				       e[i].name, "channel", e[i].uid, e[i].gid, e[i].mode,
				       e[i].nr_rings, e[i].nr_fds, e[i].nr_writers,
				       e[i].consumer_pid, (unsigned long long)e[i].data_size,
				       (unsigned long long)e[i].ring_bytes, fl);
		}
		start += (unsigned)n;
		if (n == 0 || start >= total)
			break;
	}
	for_each_arena(ls_arena, &ls);
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

/* The LIST entry of 'name' (consumer pid, writers), or -ENOENT. */
static int list_find(int dev, const char *name, struct uhp_list_entry *out)
{
	struct uhp_list_entry e[64];
	unsigned start = 0, total = 0;
	int n;

	do {
		n = uhp_list(dev, start, e, 64, &total);
		for (int i = 0; i < n; i++)
			if (!strcmp(e[i].name, name)) {
				*out = e[i];
				return 0;
			}
		start += n > 0 ? (unsigned)n : 0;
	} while (n > 0 && start < total);
	return n < 0 ? n : -ENOENT;
}

static void stat_print(struct uhp_channel *ch, const char *kind,
		       const struct uhp_info *info, const struct uhp_ring_info *ri,
		       const struct uhp_list_entry *le)
{
	char ns[48] = "";

	/* as /proc/<pid>/ns/{ipc,user} says it */
	if (le && le->scope_inum)
		snprintf(ns, sizeof(ns), "%s:[%u]",
			 info->features & UHP_FEAT_SCOPE_IPC_NS ? "ipc" : "user",
			 le->scope_inum);
	if (json)
		printf("{\"name\":\"%s\",\"kind\":\"%s\",\"uid\":%u,\"gid\":%u,"
		       "\"mode\":\"%04o\",\"ring_size\":%llu,\"writers\":%d,"
		       "\"consumer_pid\":%d,\"namespace\":\"%s\",\"rings\":[", info->name,
		       kind, info->uid, info->gid, info->mode,
		       (unsigned long long)info->data_size, le ? (int)le->nr_writers : -1,
		       le ? (int)le->consumer_pid : -1, ns);
	else
		printf("%s (%s): uid %u gid %u mode %04o, %u rings of %llu bytes%s\n"
		       "  %4s %4s %-17s %10s %6s %14s %10s %6s %7s %8s %8s\n",
		       info->name, kind, info->uid, info->gid, info->mode, info->nr_rings,
		       (unsigned long long)info->data_size, "", "RING", "NODE", "KIND",
		       "USED", "FILL", "WRITTEN", "RECORDS", "BAD", "STALLED", "KFULL",
		       "KCORRUPT");
	if (!json && le)
		printf("  writers %u, consumer pid %u, namespace %s\n", le->nr_writers,
		       le->consumer_pid, ns[0] ? ns : "-");
	for (unsigned k = 0; k < info->nr_rings && k < 256; k++) {
		struct uhp_ring_stats rs = { .size = sizeof(rs) };
		unsigned flags = ri ? ri[k].flags : 0;
		int f = uhp_ring_stats(ch, k, &rs);

		if (!ri)
			flags = rs.flags;
		if (json)
			printf("%s{\"ring\":%u,\"node\":%d,\"kind\":\"%s\",\"used\":%lld,"
			       "\"written\":%llu,\"records\":%llu,\"bad\":%llu,"
			       "\"stalled\":%llu,\"kernel_full\":%llu,\"kernel_corrupt\":%llu}",
			       k ? "," : "", k, rs.node, ring_kind(flags),
			       f ? -1LL : (long long)rs.used, (unsigned long long)rs.written,
			       (unsigned long long)rs.records, (unsigned long long)rs.bad,
			       (unsigned long long)rs.stalled,
			       ri ? (unsigned long long)ri[k].kernel_full : 0ULL,
			       ri ? (unsigned long long)ri[k].kernel_corrupt : 0ULL);
		else {
			char used[24], fill[16];

			if (f) {
				snprintf(used, sizeof(used), "corrupt");
				snprintf(fill, sizeof(fill), "-");
			} else {
				snprintf(used, sizeof(used), "%llu", (unsigned long long)rs.used);
				snprintf(fill, sizeof(fill), "%5.1f%%",
					 100.0 * (double)rs.used / (double)rs.data_size);
			}
			printf("  %4u %4d %-17s %10s %6s %14llu %10llu %6llu %7llu %8llu %8llu\n",
			       k, rs.node, ring_kind(flags), used, fill,
			       (unsigned long long)rs.written, (unsigned long long)rs.records,
			       (unsigned long long)rs.bad, (unsigned long long)rs.stalled,
			       ri ? (unsigned long long)ri[k].kernel_full : 0ULL,
			       ri ? (unsigned long long)ri[k].kernel_corrupt : 0ULL);
		}
	}
	if (json)
		printf("]}\n");
}

/* A channel on /dev/uhp, else an arena of that name; as an observer. */
static int cmd_stat(int dev, const char *name)
{
	struct uhp_ring_info ri[256];
	struct uhp_list_entry le;
	struct uhp_channel *ch;
	struct uhp_info info;
	int ret = dev >= 0 ? uhp_attach(dev, name, UHP_ATTACH_RDONLY, &ch) : -ENOENT;

	if (ret == -ENOENT && uhp_arena_attach(name, UHP_ATTACH_RDONLY, &ch) == 0) {
		char path[256];
		struct stat st;

		ret = uhp_info(ch, &info, NULL, 0);
		snprintf(path, sizeof(path), SHM_DIR "/" ARENA_PREFIX "%s", name);
		if (!ret && stat(path, &st) == 0) {
			/* The object's owner and mode: an arena's header has none. */
			info.uid = (uint32_t)st.st_uid;
			info.gid = (uint32_t)st.st_gid;
			info.mode = (uint32_t)(st.st_mode & 07777);
		}
		if (!ret) {
			snprintf(info.name, sizeof(info.name), "%s", name);
			stat_print(ch, "arena", &info, NULL, NULL);
		}
		uhp_close(ch);
		if (ret)
			fprintf(stderr, "uhpctl: %s: info: %s\n", name, strerror(-ret));
		return ret ? 1 : 0;
	}
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
	stat_print(ch, "channel", &info, ri, list_find(dev, name, &le) ? NULL : &le);
	uhp_close(ch);
	return 0;
}

/* ---- rm ---- */

/* A channel's name on /dev/uhp, else an arena of that name. */
static int cmd_rm(int dev, int n, char **names)
{
	int rc = 0;

	for (int i = 0; i < n; i++) {
		int ret = dev >= 0 ? uhp_unlink(dev, names[i]) : -ENOENT;

		if (ret == -ENOENT)
			ret = uhp_arena_unlink(names[i]);
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
	/* Without the module: arenas only (ls, stat, rm still work). */
	dev = uhp_open();
	if (dev < 0 && dev != -ENOENT && dev != -ENODEV && dev != -ENXIO) {
		fprintf(stderr, "uhpctl: %s: %s\n", UHP_DEVICE_PATH, strerror(-dev));
		return 1;
	}
	if (!strcmp(args[0], "ls"))
		rc = cmd_ls(dev);
	else if (!strcmp(args[0], "stat"))
		rc = cmd_stat(dev, args[1]);
	else if (!strcmp(args[0], "rm"))
		rc = cmd_rm(dev, n - 1, args + 1);
	else
		rc = cmd_watch(dev, n, args);
	if (dev >= 0)
		close(dev);
	return rc;
}
