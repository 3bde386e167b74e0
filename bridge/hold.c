/* SPDX-License-Identifier: MIT */
/*
 * uhp-bridge, inbound, jetstream: the holdback store, one file a record in
 * state_dir/hold.<channel>/. export.c puts records in and takes them out
 * in order (hold_drain()).
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bridge.h"

/*
 * A JetStream record whose link sequence is ahead of the next one expected
 * (the stream took it before an earlier one that is being resent) is kept
 * here, state_dir/hold.<channel>/<source index>.<lseq>, and acknowledged, so
 * it leaves the stream and makes room for the missing one (with a stream
 * limit, NAKing it instead could fill the stream with records that wait for
 * one that cannot get in). Committed in order once the gap is filled;
 * files below the source's mark are stale and removed at start.
 */
struct hold_hdr {
	char magic[8];		/* "UHPHOLD" and its NUL */
	uint32_t len, crc;
	uint32_t src, dst;
	uint64_t useq;
	uint16_t type, flags;
	uint32_t pad_;
};

static void hold_path(const struct export *e, char *buf, size_t cap, int idx,
		      uint64_t lseq)
{
	snprintf(buf, cap, "%s/hold.%s/%d.%" PRIu64, C.state_dir, e->chan, idx, lseq);
}

bool hold_exists(const struct export *e, int idx, uint64_t lseq)
{
	char path[PATH_MAX + 128];

	hold_path(e, path, sizeof(path), idx, lseq);
	return access(path, F_OK) == 0;
}

int hold_put(struct export *e, int idx, uint64_t lseq, const struct wire *w,
	     const void *data, uint32_t len)
{
	char path[PATH_MAX + 128], tmp[PATH_MAX + 160];
	struct hold_hdr h = { .magic = "UHPHOLD", .len = len, .crc = w->crc,
			      .src = w->src, .dst = w->dst, .useq = w->useq,
			      .type = w->type, .flags = w->flags };
	FILE *f;
	bool ok;

	hold_path(e, path, sizeof(path), idx, lseq);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f)
		return -errno;
	ok = fwrite(&h, sizeof(h), 1, f) == 1 &&
	     (len == 0 || fwrite(data, len, 1, f) == 1);
	if (fclose(f) || !ok || rename(tmp, path)) {
		unlink(tmp);
		return -EIO;
	}
	atomic_fetch_add(&e->held_now, 1);
	return 0;
}

/* Load a held record into malloc'd *data; 0, -ENOENT, -ENOMEM (still
 * held) or -EIO (damaged: removed, no longer held). */
int hold_get(struct export *e, int idx, uint64_t lseq, struct wire *w,
	     void **data, uint32_t *len)
{
	char path[PATH_MAX + 128];
	struct hold_hdr h;
	FILE *f;
	int rc = 0;

	hold_path(e, path, sizeof(path), idx, lseq);
	f = fopen(path, "r");
	if (!f)
		return -ENOENT;
	if (fread(&h, sizeof(h), 1, f) != 1 || memcmp(h.magic, "UHPHOLD", 8)) {
		rc = -EIO;
	} else {
		*data = malloc(h.len ? h.len : 1);
		if (!*data) {
			rc = -ENOMEM;
		} else if (h.len && fread(*data, h.len, 1, f) != 1) {
			free(*data);
			rc = -EIO;
		}
	}
	fclose(f);
	if (rc == -ENOMEM) {	/* the record stays held: tried again later */
		LOG_ERR("%s: %s: out of memory", e->chan, path);
		return rc;
	}
	if (rc) {
		LOG_ERR("%s: %s is damaged: removed (counted lost)", e->chan, path);
		if (unlink(path) == 0)
			atomic_fetch_sub(&e->held_now, 1);
		return rc;
	}
	*w = (struct wire){ .src = h.src, .dst = h.dst, .crc = h.crc, .type = h.type,
			    .flags = h.flags, .useq = h.useq };
	*len = h.len;
	return 0;
}

void hold_del(struct export *e, int idx, uint64_t lseq)
{
	char path[PATH_MAX + 128];

	hold_path(e, path, sizeof(path), idx, lseq);
	if (unlink(path) == 0)
		atomic_fetch_sub(&e->held_now, 1);
}

/* Forget what is held for a source index (it is being reused). */
void hold_purge(struct export *e, int idx)
{
	char dir[PATH_MAX + 128], path[PATH_MAX + 512], pfx[32];
	DIR *d;
	struct dirent *de;

	snprintf(dir, sizeof(dir), "%s/hold.%s", C.state_dir, e->chan);
	snprintf(pfx, sizeof(pfx), "%d.", idx);
	d = opendir(dir);
	if (!d)
		return;
	while ((de = readdir(d))) {
		if (strncmp(de->d_name, pfx, strlen(pfx)))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (unlink(path) == 0) {
			atomic_fetch_sub(&e->held_now, 1);
			CNT_INC(e->gaps);
		}
	}
	closedir(d);
}

/* At start: count what is held, drop what is below its source's mark. */
void hold_scan(struct export *e)
{
	char dir[PATH_MAX + 128], path[PATH_MAX + 512];
	DIR *d;
	struct dirent *de;

	snprintf(dir, sizeof(dir), "%s/hold.%s", C.state_dir, e->chan);
	mkdir(dir, 0700);
	d = opendir(dir);
	if (!d)
		return;
	while ((de = readdir(d))) {
		int idx;
		uint64_t lseq;
		char c;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (sscanf(de->d_name, "%d.%" SCNu64 "%c", &idx, &lseq, &c) != 2 ||
		    idx < 0 || idx >= MAX_SRC || !e->st->src[idx].used ||
		    lseq < e->st->src[idx].next) {
			unlink(path);
			continue;
		}
		atomic_fetch_add(&e->held_now, 1);
	}
	closedir(d);
	if (atomic_load(&e->held_now))
		LOG_INFO("%s: %" PRIu64 " record(s) held back from before the last stop",
			 e->chan, (uint64_t)atomic_load(&e->held_now));
}
