#!/bin/sh
# SPDX-License-Identifier: MIT
#
# usdt_test: libuhp.so carries its USDT probes (userlib/probes.h): one
# stapsdt note per probe site, provider uhp, every documented name present,
# nothing unknown. Skips (saying why) when the library was built without
# <sys/sdt.h> (Debian: systemtap-sdt-dev, which scripts/deps.sh installs).
#
# usage: usdt_test.sh BUILD_DIR    (TAP output, non-zero exit on failure)
set -u
LIB=$1/userlib/libuhp.so
WANT="open close ring_full notify sleep wake bad stall hangup"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

readelf -n "$LIB" >"$TMP/notes" 2>/dev/null
if ! grep -q 'stapsdt' "$TMP/notes"; then
	if [ -f /usr/include/x86_64-linux-gnu/sys/sdt.h ] || [ -f /usr/include/sys/sdt.h ]; then
		echo "1..1"; echo "not ok 1 - <sys/sdt.h> is there but $LIB has no stapsdt notes"; exit 1
	fi
	echo "1..0 # SKIP no <sys/sdt.h> (systemtap-sdt-dev): libuhp built without USDT probes"
	exit 0
fi
echo "1..4"
n=0 failed=0
ok() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; failed=$((failed + 1)); fi; }
sed -n 's/^ *Provider: //p' "$TMP/notes" | sort -u >"$TMP/prov"
[ "$(cat "$TMP/prov")" = uhp ]
ok $? "provider uhp only ($(tr '\n' ' ' <"$TMP/prov"))"
sed -n 's/^ *Name: //p' "$TMP/notes" | sort -u >"$TMP/names"
missing=""
for p in $WANT; do grep -qx "$p" "$TMP/names" || missing="$missing $p"; done
[ -z "$missing" ]
ok $? "every documented probe is there (missing:${missing:- none})"
extra=$(for p in $(cat "$TMP/names"); do echo " $WANT " | grep -q " $p " || printf ' %s' "$p"; done)
[ -z "$extra" ]
ok $? "and no undocumented one (${extra:-none}); $(grep -c 'Name:' "$TMP/notes") probe sites"
# A probe fires: gdb stops at uhp:ring_full when a send finds a full ring.
if command -v gdb >/dev/null; then
	cat >"$TMP/fill.c" <<'PROG'
#include <stdio.h>
#include <unistd.h>
#include <uhp.h>
int main(void)
{
	struct uhp_create_opts o = UHP_CREATE_OPTS_INIT;
	struct uhp_channel *ch;
	char name[64];

	o.ring_size = 4096;
	o.node = 0;
	snprintf(name, sizeof(name), "usdt-%d", (int)getpid());
	if (uhp_arena_create(name, &o, &ch))
		return 2;
	while (uhp_send(ch, "x", 1, NULL) == 0)
		;
	uhp_close(ch);
	uhp_arena_unlink(name);
	return 0;
}
PROG
	ROOT=$(cd "$(dirname "$0")/../.." && pwd)
	${CC:-cc} -I"$ROOT/userlib" -I"$ROOT/uapi" -o "$TMP/fill" "$TMP/fill.c" \
		-L"$1/userlib" -luhp &&
	LD_LIBRARY_PATH=$1/userlib timeout 120 gdb -q -batch -ex 'start' \
		-ex 'break -probe-stap uhp:ring_full' -ex 'continue' \
		-ex 'print $_probe_arg1' -ex 'continue' "$TMP/fill" >"$TMP/gdb.log" 2>&1
	grep -q '^\$1 = 4096$' "$TMP/gdb.log"
	ok $? "gdb stops at uhp:ring_full, used = 4096 bytes (a full 4 KiB ring)"
	grep -q '^\$1 = 4096$' "$TMP/gdb.log" || tail -5 "$TMP/gdb.log" | sed 's/^/# /'
else
	n=$((n + 1)); echo "ok $n - a probe fires # SKIP no gdb"
fi
echo "$((n - failed)) passed, $failed failed"
[ $failed = 0 ]
