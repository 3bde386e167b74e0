#!/bin/sh
# SPDX-License-Identifier: MIT
#
# systemd_test: uhp-bridge's service files, offline (no running systemd):
#  - uhp-bridge@.service, as bridge/Makefile writes it from
#    packaging/systemd/uhp-bridge@.service.in, passes systemd-analyze
#    verify (as an instance, its man pages found in man/);
#  - it is a template that reads /etc/uhp-bridge/%i.conf, runs --check
#    first, keeps its state in its StateDirectory (--state-dir), restarts
#    on failure, runs as uhp-bridge:uhp, and keeps what the bridge needs
#    reachable: no PrivateDevices= (/dev/uhp), no RemoveIPC= or
#    DynamicUser= (they delete the arenas in /dev/shm at a stop);
#  - its ExecStartPre and ExecStart command lines, run as systemd would run
#    them for instance A (%i, %S), accept the example configuration and
#    put the state in the instance's state directory;
#  - the example configuration is refused as shipped ('host' is required)
#    and accepted with its settings uncommented;
#  - sysusers.d/uhp-bridge.conf creates user uhp-bridge in group uhp
#    (systemd-sysusers --root on a scratch tree).
# The bridge needs libnats-dev: without it (or without systemd-analyze)
# the tests are skipped.
#
# usage: systemd_test.sh ROOT    (TAP output, non-zero exit on failure)
set -u
ROOT=$(cd "$1" && pwd) || exit 2
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
n=0 failed=0
ok() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; failed=$((failed + 1)); fi; }

if ! command -v systemd-analyze >/dev/null; then
	echo "1..0 # SKIP systemd-analyze missing (Debian package systemd)"
	exit 0
fi
if ! pkg-config --exists libnats 2>/dev/null && [ ! -f /usr/include/nats/nats.h ]; then
	echo "1..0 # SKIP libnats-dev missing: no uhp-bridge to check (scripts/deps.sh)"
	exit 0
fi
echo "1..8"

BIN=$ROOT/build/bridge
ETC=$TMP/etc
UNIT=$TMP/o/bridge/uhp-bridge@.service
EX=$ROOT/packaging/uhp-bridge/example.conf
# The unit as bridge/Makefile writes it, pointing at the binary just built
# and a scratch configuration directory (verify wants the commands to exist).
make -s -C "$ROOT" bridge >"$TMP/build.log" 2>&1 &&
	make -s -C "$ROOT/bridge" unit O="$TMP/o" BINDIR="$BIN" SYSCONFDIR="$ETC" >>"$TMP/build.log" 2>&1 &&
	[ -x "$BIN/uhp-bridge" ] && [ -f "$UNIT" ]
ok $? "the bridge builds, bridge/Makefile writes uhp-bridge@.service"
[ -f "$UNIT" ] || { sed 's/^/# /' "$TMP/build.log" | tail -20; echo "$((n - failed)) passed, $failed failed"; exit 1; }

# An instance of the template, as systemctl would load it.
MANPATH=$ROOT/man systemd-analyze verify "$(dirname "$UNIT")/uhp-bridge@A.service" >"$TMP/verify" 2>&1
rc=$?
[ $rc = 0 ] && [ ! -s "$TMP/verify" ]
ok $? "systemd-analyze verify uhp-bridge@A.service: clean ($(systemd-analyze --version | head -1))"
sed 's/^/# /' "$TMP/verify"

# key=value lines of the [Service] section.
key() { sed -n '/^\[Service\]/,/^\[/p' "$UNIT" | sed -n "s/^$1=//p"; }
missing=""
[ "$(key ExecStart)" = "$BIN/uhp-bridge -c $ETC/uhp-bridge/%i.conf --state-dir %S/uhp-bridge/%i" ] ||
	missing="$missing ExecStart"
[ "$(key ExecStartPre)" = "$BIN/uhp-bridge --check -c $ETC/uhp-bridge/%i.conf --state-dir %S/uhp-bridge/%i" ] ||
	missing="$missing ExecStartPre"
[ "$(key StateDirectory)" = "uhp-bridge/%i" ] || missing="$missing StateDirectory"
for kv in User=uhp-bridge Group=uhp Restart=on-failure RestartPreventExitStatus=2 \
	NoNewPrivileges=yes ProtectSystem=strict ProtectHome=yes PrivateTmp=yes \
	DevicePolicy=closed "DeviceAllow=char-misc rw" LimitMEMLOCK=infinity; do
	[ "$(key "${kv%%=*}")" = "${kv#*=}" ] || missing="$missing $kv"
done
for k in PrivateDevices RemoveIPC DynamicUser PrivateIPC ExecReload; do
	[ -z "$(key $k)" ] || missing="$missing no-$k"
done
grep -qx 'WantedBy=multi-user.target' "$UNIT" || missing="$missing WantedBy"
! grep -q '^DefaultInstance=' "$UNIT" || missing="$missing no-DefaultInstance"
[ -z "$missing" ]
ok $? "a template: --check first, state in StateDirectory=uhp-bridge/%i, uhp-bridge:uhp, restart on failure, sandboxed with /dev/uhp and /dev/shm reachable"
[ -z "$missing" ] || echo "# wrong or missing:$missing"
score=$(systemd-analyze security --offline=yes "$UNIT" 2>/dev/null | sed -n 's/.*Overall exposure level for [^:]*: //p')
echo "# systemd-analyze security --offline: ${score:-(not available)}"

# The shipped example: refused as it is, every setting commented out...
"$BIN/uhp-bridge" --check -c "$EX" >"$TMP/ex.out" 2>&1
rc=$?
[ $rc = 2 ] && grep -q "'host' is required" "$TMP/ex.out"
ok $? "the example configuration, as shipped, is refused: exit 2, 'host' is required"
sed 's/^/# /' "$TMP/ex.out"

# ...and good once they are uncommented: what the unit would read for A.
mkdir -p "$ETC/uhp-bridge" &&
	sed 's/^#\([a-z]\)/\1/' "$EX" >"$ETC/uhp-bridge/A.conf" &&
	"$BIN/uhp-bridge" --check -c "$ETC/uhp-bridge/A.conf" >"$TMP/a.out" 2>&1 &&
	[ "$(grep -c '^export ' "$TMP/a.out")" = 2 ] && [ "$(grep -c '^route ' "$TMP/a.out")" = 3 ]
ok $? "the example with its settings uncommented passes --check: 2 exports, 3 routes"
sed 's/^/# /' "$TMP/a.out"

# The unit's command lines for instance A, %S the state root of a system
# manager moved into the scratch directory.
cmd() { key "$1" | sed -e 's/%i/A/g' -e "s|%S|$TMP/var/lib|g"; }
# (split on blanks, as systemd splits these unquoted lines)
pre=$(cmd ExecStartPre) && $pre >"$TMP/pre.out" 2>"$TMP/pre.err" &&
	grep -q "state_dir $TMP/var/lib/uhp-bridge/A\$" "$TMP/pre.out" &&
	grep -q "state_dir /var/lib/uhp-bridge/A of .* ignored: --state-dir $TMP/var/lib/uhp-bridge/A" "$TMP/pre.err"
ok $? "ExecStartPre for A: the example's state_dir gives way to $TMP/var/lib/uhp-bridge/A, and says so"
sed 's/^/# /' "$TMP/pre.out" "$TMP/pre.err" | head -3

# ExecStart: the state directory appears; no NATS server answers (port 1),
# so stop it the hard way after a moment: nothing to check but the start.
sed -i 's|^nats .*|nats nats://127.0.0.1:1|' "$ETC/uhp-bridge/A.conf"
sed -i '/^export\|^route/d' "$ETC/uhp-bridge/A.conf"
start=$(cmd ExecStart)
$start >"$TMP/start.out" 2>&1 &
pid=$!
i=0
while [ $i -lt 50 ] && [ ! -d "$TMP/var/lib/uhp-bridge/A" ]; do sleep 0.1; i=$((i + 1)); done
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
[ "$(stat -c %a "$TMP/var/lib/uhp-bridge/A" 2>/dev/null)" = 700 ]
ok $? "ExecStart for A creates its state directory there (mode 0700)"
[ -d "$TMP/var/lib/uhp-bridge/A" ] || sed 's/^/# /' "$TMP/start.out" | tail -5

# sysusers.d: the account the unit names.
mkdir -p "$TMP/r/etc" &&
	systemd-sysusers --root="$TMP/r" "$ROOT/packaging/sysusers.d/uhp-bridge.conf" >"$TMP/su.out" 2>&1 &&
	grep -q '^uhp-bridge:x:[0-9]*:[0-9]*:[^:]*:[^:]*:/usr/sbin/nologin$' "$TMP/r/etc/passwd" &&
	grep -q '^uhp:x:[0-9]*:\(.*,\)*uhp-bridge\(,.*\)*$' "$TMP/r/etc/group"
ok $? "sysusers.d/uhp-bridge.conf: system user uhp-bridge (nologin), member of group uhp"
sed 's/^/# /' "$TMP/su.out"

echo "$((n - failed)) passed, $failed failed"
[ $failed = 0 ]
