// SPDX-License-Identifier: MIT
/*
 * topology_test: the cpulist parser, and uhp_topology_load() over fake
 * sysfs trees written to a temporary directory: one node, two nodes,
 * a hybrid part (cpu_core + cpu_atom), offline CPUs, nodes without CPUs,
 * malformed lists (a clear -errno, no crash), the UHP_SYSFS_ROOT override;
 * and the real /sys.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime_internal.h"
#include "tap.h"

static char base[256];
static unsigned tree_nr;

static void mkdirs(const char *path)
{
	char tmp[PATH_MAX];

	snprintf(tmp, sizeof(tmp), "%s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		mkdir(tmp, 0700);
		*p = '/';
	}
	mkdir(tmp, 0700);
}

static void put(const char *root, const char *rel, const char *text)
{
	char path[PATH_MAX], dir[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	snprintf(dir, sizeof(dir), "%s", path);
	*strrchr(dir, '/') = '\0';
	mkdirs(dir);
	f = fopen(path, "w");
	if (!f)
		tap_bail("write %s", path);
	fputs(text, f);
	fclose(f);
}

/* A new empty tree; returns its root (static storage per call slot). */
static const char *new_tree(char *root)
{
	snprintf(root, PATH_MAX, "%s/t%u", base, tree_nr++);
	mkdirs(root);
	return root;
}

static void t_parser(void)
{
	uint64_t m[4];

	tap_is(uhp__cpulist_parse("0-3,8,10-11\n", m, 256), 7, "cpulist 0-3,8,10-11: 7 CPUs");
	tap_ok(m[0] == 0xd0f, "... the right bits (0x%llx)", (unsigned long long)m[0]);
	tap_is(uhp__cpulist_parse("\n", m, 256), 0, "empty list (newline only): 0 CPUs");
	tap_is(uhp__cpulist_parse("", m, 256), 0, "empty string: 0 CPUs");
	tap_is(uhp__cpulist_parse("200-255", m, 256), 56, "range at the top of the mask");
	tap_ok(m[3] == 0xffffffffffffff00ULL && m[2] == 0 && m[0] == 0,
	       "... sets bits 200..255");
	tap_is(uhp__cpulist_parse("0-1,1-2", m, 256), 3, "overlapping ranges counted once");

	static const char *const bad[] = {
		"3-1", "0-", "-1", "a", "1,", ",1", "1 2", "1\n\n", "0-3x",
		"256", "0-256", "99999999999999999999", "1--2", "\n1",
	};
	unsigned rejected = 0;

	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = uhp__cpulist_parse(bad[i], m, 256);

		if (r == -EINVAL)
			rejected++;
		else
			tap_diag("'%s' -> %d", bad[i], r);
	}
	tap_is(rejected, sizeof(bad) / sizeof(bad[0]),
	       "malformed lists, descending ranges, numbers past the mask: -EINVAL");
}

static void t_uniform(void)
{
	char root[PATH_MAX];
	struct uhp_topology *t;
	struct uhp_cpu c;

	new_tree(root);
	put(root, "devices/system/cpu/online", "0-3\n");
	put(root, "devices/system/node/node0/cpulist", "0-3\n");
	tap_is(uhp_topology_load(root, &t), 0, "uniform, 1 node: loads");
	tap_is(uhp_topology_nr_cpus(t), 4, "... 4 CPUs");
	tap_is(uhp_topology_nr_nodes(t), 1, "... 1 node");
	tap_ok(!uhp_topology_hybrid(t), "... not hybrid");
	tap_ok(uhp_topology_cpu(t, 3, &c) == 0 && c.cpu == 3 && c.node == 0 &&
	       c.kind == UHP_CORES_ANY, "... cpu 3: node 0, kind ANY");
	tap_is(uhp_topology_cpu(t, 4, &c), -EINVAL, "... index past the end: -EINVAL");
	uhp_topology_free(t);

	/* No node directories at all: a kernel without NUMA in sysfs. */
	new_tree(root);
	put(root, "devices/system/cpu/online", "0\n");
	tap_ok(uhp_topology_load(root, &t) == 0 && uhp_topology_nr_cpus(t) == 1 &&
	       uhp_topology_nr_nodes(t) == 1 && uhp_topology_cpu(t, 0, &c) == 0 &&
	       c.node == 0, "no node directories: everything on node 0");
	uhp_topology_free(t);
}

static void t_two_nodes_offline(void)
{
	char root[PATH_MAX];
	struct uhp_topology *t;
	struct uhp_cpu c[8];
	bool ok = true;

	/* CPUs 2 and 5 offline; node 2 has memory but no CPU; node 1 sparse. */
	new_tree(root);
	put(root, "devices/system/cpu/online", "0-1,3-4,6-7\n");
	put(root, "devices/system/node/node0/cpulist", "0-3\n");
	put(root, "devices/system/node/node1/cpulist", "4-7\n");
	put(root, "devices/system/node/node2/cpulist", "\n");
	put(root, "devices/system/node/online", "0-2\n");	/* not a node dir */
	tap_is(uhp_topology_load(root, &t), 0, "2 nodes + a CPU-less node, offline CPUs: loads");
	tap_is(uhp_topology_nr_cpus(t), 6, "... 6 online CPUs");
	tap_is(uhp_topology_nr_nodes(t), 2, "... 2 nodes with CPUs");
	for (unsigned i = 0; i < 6; i++)
		ok &= uhp_topology_cpu(t, i, &c[i]) == 0;
	tap_ok(ok && c[0].cpu == 0 && c[1].cpu == 1 && c[2].cpu == 3 &&
	       c[3].cpu == 4 && c[4].cpu == 6 && c[5].cpu == 7,
	       "... ascending, offline 2 and 5 left out");
	tap_ok(c[2].node == 0 && c[3].node == 1 && c[5].node == 1,
	       "... CPU 3 on node 0, CPUs 4 and 7 on node 1");
	uhp_topology_free(t);
}

static void t_hybrid(void)
{
	char root[PATH_MAX];
	struct uhp_topology *t;
	unsigned p = 0, e = 0;
	struct uhp_cpu c;

	new_tree(root);
	put(root, "devices/system/cpu/online", "0-11\n");
	put(root, "devices/system/node/node0/cpulist", "0-11\n");
	put(root, "devices/cpu_core/cpus", "0-3\n");
	put(root, "devices/cpu_atom/cpus", "4-11\n");
	tap_is(uhp_topology_load(root, &t), 0, "hybrid (4 P + 8 E): loads");
	tap_ok(uhp_topology_hybrid(t), "... hybrid");
	for (unsigned i = 0; i < uhp_topology_nr_cpus(t); i++) {
		uhp_topology_cpu(t, i, &c);
		p += c.kind == UHP_CORES_P && c.cpu < 4;
		e += c.kind == UHP_CORES_E && c.cpu >= 4;
	}
	tap_ok(p == 4 && e == 8, "... CPUs 0-3 are P, 4-11 are E (%u, %u)", p, e);
	uhp_topology_free(t);

	/* Only cpu_core (a hybrid-capable kernel on a part with no E cores). */
	new_tree(root);
	put(root, "devices/system/cpu/online", "0-3\n");
	put(root, "devices/cpu_core/cpus", "0-3\n");
	tap_ok(uhp_topology_load(root, &t) == 0 && !uhp_topology_hybrid(t) &&
	       uhp_topology_cpu(t, 0, &c) == 0 && c.kind == UHP_CORES_ANY,
	       "cpu_core without cpu_atom: uniform");
	uhp_topology_free(t);
}

static void t_malformed(void)
{
	char root[PATH_MAX];
	struct uhp_topology *t = NULL;

	tap_is(uhp_topology_load(NULL, NULL), -EINVAL, "out NULL: -EINVAL");
	new_tree(root);
	tap_is(uhp_topology_load(root, &t), -ENOENT, "no cpu/online: -ENOENT");
	put(root, "devices/system/cpu/online", "0-x\n");
	tap_is(uhp_topology_load(root, &t), -EINVAL, "garbage cpu/online: -EINVAL");
	put(root, "devices/system/cpu/online", "\n");
	tap_is(uhp_topology_load(root, &t), -EINVAL, "no online CPU: -EINVAL");
	put(root, "devices/system/cpu/online", "0-99999\n");
	tap_is(uhp_topology_load(root, &t), -EINVAL,
	       "CPU number past UHP_TOPOLOGY_MAX_CPUS: -EINVAL");
	put(root, "devices/system/cpu/online", "0-3\n");
	put(root, "devices/system/node/node0/cpulist", "3-0\n");
	tap_is(uhp_topology_load(root, &t), -EINVAL, "descending node cpulist: -EINVAL");
	put(root, "devices/system/node/node0/cpulist", "0-3\n");
	put(root, "devices/cpu_core/cpus", "0,,1\n");
	put(root, "devices/cpu_atom/cpus", "2-3\n");
	tap_is(uhp_topology_load(root, &t), -EINVAL, "garbage cpu_core/cpus: -EINVAL");
	put(root, "devices/cpu_core/cpus", "0-1\n");
	tap_ok(uhp_topology_load(root, &t) == 0 && uhp_topology_hybrid(t),
	       "fixed again: loads, hybrid");
	uhp_topology_free(t);
	uhp_topology_free(NULL);
}

static void t_env_and_real(void)
{
	char root[PATH_MAX];
	struct uhp_topology *t;

	new_tree(root);
	put(root, "devices/system/cpu/online", "0-6\n");
	setenv("UHP_SYSFS_ROOT", root, 1);
	tap_ok(uhp_topology_load(NULL, &t) == 0 && uhp_topology_nr_cpus(t) == 7,
	       "UHP_SYSFS_ROOT overrides /sys (7 fake CPUs)");
	uhp_topology_free(t);
	unsetenv("UHP_SYSFS_ROOT");

	tap_is(uhp_topology_load(NULL, &t), 0, "the real /sys loads");
	tap_ok(uhp_topology_nr_cpus(t) >= 1 &&
	       uhp_topology_nr_cpus(t) <= (unsigned)sysconf(_SC_NPROCESSORS_CONF),
	       "... %u CPUs, %u nodes, hybrid %d (%ld configured)",
	       uhp_topology_nr_cpus(t), uhp_topology_nr_nodes(t),
	       uhp_topology_hybrid(t), sysconf(_SC_NPROCESSORS_CONF));
	uhp_topology_free(t);
}

int main(void)
{
	char cmd[PATH_MAX + 16];

	snprintf(base, sizeof(base), "/tmp/uhp_topo.%d", (int)getpid());
	mkdirs(base);
	tap_plan(35);
	t_parser();
	t_uniform();
	t_two_nodes_offline();
	t_hybrid();
	t_malformed();
	t_env_and_real();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", base);
	if (system(cmd))
		tap_diag("could not remove %s", base);
	return tap_done();
}
