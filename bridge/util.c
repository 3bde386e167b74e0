/* SPDX-License-Identifier: MIT */
/*
 * uhp-bridge: small helpers of every file: sleeping, random ids, numbers,
 * then the files of state_dir (mapped state files).
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bridge.h"

uint64_t rand64(void)
{
	uint64_t v = 0;

	while (getrandom(&v, sizeof(v), 0) != sizeof(v))
		;
	return v ? v : 1;
}

void sleep_us(long us)
{
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };

	nanosleep(&ts, NULL);
}

bool parse_u64(const char *s, int base, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!s || !*s || *s == '-' || isspace((unsigned char)*s))
		return false;
	errno = 0;
	v = strtoull(s, &end, base);
	if (errno || *end)
		return false;
	*out = v;
	return true;
}

int mkdir_p(const char *path)
{
	char tmp[PATH_MAX];

	snprintf(tmp, sizeof(tmp), "%s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p == '/') {
			*p = 0;
			if (mkdir(tmp, 0700) && errno != EEXIST)
				return -errno;
			*p = '/';
		}
	}
	if (mkdir(tmp, 0700) && errno != EEXIST)
		return -errno;
	return 0;
}

/* Map state_dir/name of len bytes; *fresh says it was created (zeroed). */
void *map_file(const char *name, size_t len, bool *fresh, size_t *len_out)
{
	char path[PATH_MAX + 128];
	struct stat stb;
	void *p;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", C.state_dir, name);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		LOG_ERR("%s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &stb)) {
		close(fd);
		return NULL;
	}
	*fresh = stb.st_size == 0;
	if ((size_t)stb.st_size > len && !*fresh)
		len = (size_t)stb.st_size;
	if ((size_t)stb.st_size < len && ftruncate(fd, (off_t)len)) {
		LOG_ERR("%s: ftruncate: %s", path, strerror(errno));
		close(fd);
		return NULL;
	}
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED) {
		LOG_ERR("%s: mmap: %s", path, strerror(errno));
		return NULL;
	}
	*len_out = len;
	return p;
}
