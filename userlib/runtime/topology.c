// SPDX-License-Identifier: MIT
/*
 * Topology: which CPUs are online, their NUMA node and, on hybrid Intel
 * parts, their core kind, read from sysfs under a root that tests replace
 * with a directory tree describing a fake machine.
 *
 *   <root>/devices/system/cpu/online            cpulist, required
 *   <root>/devices/system/node/node<N>/cpulist  one per node, optional
 *   <root>/devices/cpu_core/cpus                P cores (hybrid only)
 *   <root>/devices/cpu_atom/cpus                E cores (hybrid only)
 *
 * Order of things: 1. the cpulist parser, 2. reading files, 3. nodes and
 * kinds, 4. uhp_topology_load() and the accessors.
 *
 * Every file is read whole into a bounded buffer and parsed strictly: a
 * malformed list is -EINVAL, never a partial answer.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "runtime_internal.h"

#define MASK_WORDS	(UHP_TOPOLOGY_MAX_CPUS / 64)
#define LIST_MAX	65536	/* bytes of one cpulist file */
#define NODE_MAX	4096	/* node<N> directories above are refused */

struct uhp_topology {
	unsigned nr_cpus;
	unsigned nr_nodes;
	bool hybrid;
	struct uhp_cpu cpus[];
};

/* ---- 1. cpulist ---- */

static int parse_num(const char **p, unsigned nbits, unsigned *out)
{
	const char *s = *p;
	unsigned long v = 0;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	while (*s >= '0' && *s <= '9') {
		v = v * 10 + (unsigned long)(*s++ - '0');
		if (v >= nbits)
			return -EINVAL;
	}
	*p = s;
	*out = (unsigned)v;
	return 0;
}

int uhp__cpulist_parse(const char *s, uint64_t *mask, unsigned nbits)
{
	unsigned a, b, n = 0;

	memset(mask, 0, (nbits + 63) / 64 * sizeof(*mask));
	if (s[0] == '\0' || (s[0] == '\n' && s[1] == '\0'))
		return 0;	/* an empty set: a node without CPUs */
	for (;;) {
		if (parse_num(&s, nbits, &a))
			return -EINVAL;
		b = a;
		if (*s == '-') {
			s++;
			if (parse_num(&s, nbits, &b) || b < a)
				return -EINVAL;
		}
		for (unsigned x = a; x <= b; x++) {
			if (!uhp__mask_test(mask, x))
				n++;
			mask[x / 64] |= 1ULL << (x % 64);
		}
		if (*s == ',') {
			s++;
			continue;
		}
		if (*s == '\n')
			s++;
		return *s ? -EINVAL : (int)n;
	}
}

/* ---- 2. files ---- */

/* Read root/rel into buf (NUL-terminated). 0, or -errno; -EFBIG if longer. */
static int read_file(const char *root, const char *rel, char *buf, size_t cap)
{
	char path[PATH_MAX];
	size_t len = 0;
	int fd, ret = 0;

	if (snprintf(path, sizeof(path), "%s/%s", root, rel) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	for (;;) {
		ssize_t n = read(fd, buf + len, cap - 1 - len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			break;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len == cap - 1) {
			ret = -EFBIG;
			break;
		}
	}
	close(fd);
	buf[len] = '\0';
	return ret;
}

/* Read and parse a cpulist file. Returns the count, or -errno. */
static int read_list(const char *root, const char *rel, char *buf,
		     uint64_t *mask)
{
	int ret = read_file(root, rel, buf, LIST_MAX);

	return ret ? ret : uhp__cpulist_parse(buf, mask, UHP_TOPOLOGY_MAX_CPUS);
}

/* ---- 3. nodes, kinds ---- */

/* "node<digits>" -> the number, or -1. */
static int node_dir_number(const char *name)
{
	unsigned v;
	const char *p = name + 4;

	if (strncmp(name, "node", 4) || parse_num(&p, NODE_MAX, &v) || *p)
		return -1;
	return (int)v;
}

/*
 * node_of[cpu] for every node<N>/cpulist. A missing node directory is a
 * machine without NUMA in sysfs (everything stays node 0); a node listed
 * without a readable cpulist is an error.
 */
static int load_nodes(const char *root, char *buf, uint64_t *mask,
		      int32_t *node_of)
{
	char rel[64], dpath[PATH_MAX];
	struct dirent *de;
	DIR *dir;
	int ret = 0;

	if (snprintf(dpath, sizeof(dpath), "%s/devices/system/node", root) >=
	    (int)sizeof(dpath))
		return -ENAMETOOLONG;
	dir = opendir(dpath);
	if (!dir)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(dir))) {
		int node = node_dir_number(de->d_name);

		if (node < 0)
			continue;
		snprintf(rel, sizeof(rel), "devices/system/node/node%d/cpulist", node);
		ret = read_list(root, rel, buf, mask);
		if (ret < 0)
			break;
		ret = 0;
		for (unsigned c = 0; c < UHP_TOPOLOGY_MAX_CPUS; c++)
			if (uhp__mask_test(mask, c))
				node_of[c] = node;
	}
	closedir(dir);
	return ret;
}

/* Hybrid when both PMU cpu lists exist and are non-empty. */
static int load_kinds(const char *root, char *buf, uint64_t *pmask,
		      uint64_t *emask, bool *hybrid)
{
	int np = read_list(root, "devices/cpu_core/cpus", buf, pmask);
	int ne = read_list(root, "devices/cpu_atom/cpus", buf, emask);

	if (np == -ENOENT || ne == -ENOENT) {
		*hybrid = false;
		return 0;
	}
	if (np < 0)
		return np;
	if (ne < 0)
		return ne;
	*hybrid = np > 0 && ne > 0;
	return 0;
}

/* ---- 4. public ---- */

static const char *pick_root(const char *root)
{
	const char *env;

	if (root)
		return root;
	env = secure_getenv("UHP_SYSFS_ROOT");
	return env && *env ? env : "/sys";
}

UHP_API int uhp_topology_load(const char *sysfs_root, struct uhp_topology **out)
{
	uint64_t *online, *tmp, *pmask, *emask;
	struct uhp_topology *t = NULL;
	uint64_t seen[NODE_MAX / 64] = { 0 };
	int32_t *node_of = NULL;
	const char *root;
	char *buf = NULL;
	bool hybrid;
	int n, ret;

	if (!out)
		return -EINVAL;
	root = pick_root(sysfs_root);
	online = calloc(4 * MASK_WORDS, sizeof(uint64_t));
	node_of = calloc(UHP_TOPOLOGY_MAX_CPUS, sizeof(*node_of));
	buf = malloc(LIST_MAX);
	ret = -ENOMEM;
	if (!online || !node_of || !buf)
		goto out;
	tmp = online + MASK_WORDS;
	pmask = tmp + MASK_WORDS;
	emask = pmask + MASK_WORDS;

	n = read_list(root, "devices/system/cpu/online", buf, online);
	ret = n;
	if (n < 0)
		goto out;
	ret = -EINVAL;
	if (n == 0)
		goto out;
	ret = load_nodes(root, buf, tmp, node_of);
	if (ret)
		goto out;
	ret = load_kinds(root, buf, pmask, emask, &hybrid);
	if (ret)
		goto out;

	ret = -ENOMEM;
	t = calloc(1, sizeof(*t) + (size_t)n * sizeof(t->cpus[0]));
	if (!t)
		goto out;
	t->hybrid = hybrid;
	for (unsigned c = 0; c < UHP_TOPOLOGY_MAX_CPUS; c++) {
		struct uhp_cpu *u;

		if (!uhp__mask_test(online, c))
			continue;
		u = &t->cpus[t->nr_cpus++];
		u->cpu = c;
		u->node = node_of[c];
		u->kind = !hybrid ? UHP_CORES_ANY :
			  uhp__mask_test(emask, c) && !uhp__mask_test(pmask, c) ?
			  UHP_CORES_E : UHP_CORES_P;
		if (!uhp__mask_test(seen, (unsigned)u->node)) {
			seen[u->node / 64] |= 1ULL << (u->node % 64);
			t->nr_nodes++;
		}
	}
	*out = t;
	ret = 0;
out:
	free(buf);
	free(node_of);
	free(online);
	return ret;
}

UHP_API void uhp_topology_free(struct uhp_topology *t)
{
	free(t);
}

UHP_API unsigned uhp_topology_nr_cpus(const struct uhp_topology *t)
{
	return t ? t->nr_cpus : 0;
}

UHP_API unsigned uhp_topology_nr_nodes(const struct uhp_topology *t)
{
	return t ? t->nr_nodes : 0;
}

UHP_API bool uhp_topology_hybrid(const struct uhp_topology *t)
{
	return t && t->hybrid;
}

UHP_API int uhp_topology_cpu(const struct uhp_topology *t, unsigned i,
			     struct uhp_cpu *out)
{
	if (!t || !out || i >= t->nr_cpus)
		return -EINVAL;
	*out = t->cpus[i];
	return 0;
}
