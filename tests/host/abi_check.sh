#!/bin/sh
# SPDX-License-Identifier: MIT
#
# abi_check: the shared library as users get it. libuhp.so exports exactly
# the functions uhp.h declares UHP_API (versions UHP_0.1 to UHP_0.3, no
# internal uhp__ names), keeps uhp_wait@UHP_0.1 for programs linked against
# 0.1 (0 on a timeout, where 0.2 says -ETIMEDOUT), has soname libuhp.so.0,
# and an installed copy (make install into a scratch DESTDIR) builds and
# runs a program through pkg-config.
#
# usage: abi_check.sh ROOT BUILD_DIR    (TAP output, non-zero exit on failure)
set -u
ROOT=$1
O=$2
LIB=$O/userlib/libuhp.so
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
n=0 failed=0
ok() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; failed=$((failed + 1)); fi; }

echo "1..6"
make -s -C "$ROOT/userlib" O="$O" >"$TMP/build.log" 2>&1
ok $? "libuhp builds (make -C userlib)"

nm -D --defined-only "$LIB" | awk '{print $3}' | sort >"$TMP/exported"
grep -v -E '^(uhp_[a-z0-9_]+@@UHP_0\.[123]|UHP_0\.[123]|uhp_wait@UHP_0\.1)$' "$TMP/exported" >"$TMP/stray"
grep -q '^uhp__' "$TMP/exported"
internal=$?
[ ! -s "$TMP/stray" ] && [ $internal -ne 0 ]
ok $? "only uhp_* symbols exported, all versioned UHP_0.1 to UHP_0.3 ($(wc -l <"$TMP/exported") symbols)"
sed 's/ /\n/g' "$TMP/stray" | head -5 | sed 's/^/# stray: /'

sed -n 's/^UHP_API [^(]*[ *]\(uhp_[a-z0-9_]*\)(.*/\1/p' "$ROOT/userlib/uhp.h" \
	"$ROOT/userlib/uhp_runtime.h" | sort >"$TMP/declared"
grep '@@' "$TMP/exported" | sed 's/@@UHP_0\.[123]$//' | grep '^uhp_' | sort >"$TMP/exported_names"
cmp -s "$TMP/declared" "$TMP/exported_names"
ok $? "exactly the $(wc -l <"$TMP/declared") UHP_API functions of uhp.h and uhp_runtime.h are exported"
diff "$TMP/declared" "$TMP/exported_names" | sed 's/^/# /'

readelf -d "$LIB" | grep -q 'Library soname: \[libuhp.so.0\]'
ok $? "soname libuhp.so.0"

# A program bound to uhp_wait@UHP_0.1, as one linked against libuhp 0.1 is.
cat >"$TMP/old_wait.c" <<'OLD'
#include <errno.h>
#include <stdio.h>
#include <unistd.h>
#include <uhp.h>
__asm__(".symver uhp_wait_0_1, uhp_wait@UHP_0.1");
int uhp_wait_0_1(struct uhp_channel *ch, int timeout_ms);
int main(void)
{
	struct uhp_create_opts o = UHP_CREATE_OPTS_INIT;
	struct uhp_channel *ch;
	char name[64];
	int old, now;

	o.ring_size = 4096;
	o.consumer = 1;
	snprintf(name, sizeof(name), "abi-old-wait-%d", (int)getpid());
	if (uhp_arena_create(name, &o, &ch))
		return 2;
	old = uhp_wait_0_1(ch, 10);
	now = uhp_wait(ch, 10);
	printf("# timeout: uhp_wait@UHP_0.1 %d, uhp_wait %d\n", old, now);
	uhp_close(ch);
	uhp_arena_unlink(name);
	return old == 0 && now == -ETIMEDOUT ? 0 : 1;
}
OLD
${CC:-cc} -Wall -Werror -I"$ROOT/userlib" -I"$ROOT/uapi" -o "$TMP/old_wait" "$TMP/old_wait.c" \
	-L"$O/userlib" -luhp >>"$TMP/build.log" 2>&1 &&
LD_LIBRARY_PATH="$O/userlib" "$TMP/old_wait"
ok $? "uhp_wait@UHP_0.1 still returns 0 on a timeout, uhp_wait@@UHP_0.2 -ETIMEDOUT"

make -s -C "$ROOT/userlib" O="$O" DESTDIR="$TMP/dest" install >>"$TMP/build.log" 2>&1
cat >"$TMP/smoke.c" <<'SMOKE'
#include <errno.h>
#include <stdio.h>
#include <uhp.h>
#include <uhp_runtime.h>
int main(void)
{
	unsigned crc = uhp_crc32c(~0U, "123456789", 9) ^ ~0U;
	int fd = uhp_open();
	struct uhp_topology *t = NULL;
	int tr = uhp_topology_load(NULL, &t);

	printf("# crc 0x%08x, uhp_open %d, %u CPUs\n", crc, fd, uhp_topology_nr_cpus(t));
	uhp_topology_free(t);
	return crc == 0xE3069283 && (fd >= 0 || fd == -ENOENT || fd == -EACCES) &&
	       tr == 0 ? 0 : 1;
}
SMOKE
PC="$TMP/dest/usr/local/lib/pkgconfig"
CFL=$(PKG_CONFIG_PATH=$PC PKG_CONFIG_SYSROOT_DIR="$TMP/dest" pkg-config --cflags uhp) &&
LIBS=$(PKG_CONFIG_PATH=$PC PKG_CONFIG_SYSROOT_DIR="$TMP/dest" pkg-config --libs uhp) &&
${CC:-cc} -Wall -Werror $CFL -o "$TMP/smoke" "$TMP/smoke.c" $LIBS >>"$TMP/build.log" 2>&1 &&
LD_LIBRARY_PATH="$TMP/dest/usr/local/lib" "$TMP/smoke"
ok $? "installed header, .pc and .so build and run a program"
[ $failed = 0 ] || sed 's/^/# /' "$TMP/build.log" | tail -20

echo "$((n - failed)) passed, $failed failed"
[ $failed = 0 ]
