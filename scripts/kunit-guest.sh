#!/usr/bin/env bash
# Run the uhp KUnit suites inside a lane's guest (the "debug" lane: KASAN,
# lockdep, DEBUG_ATOMIC_SLEEP, 2 CPUs, the real x86 FPU rules), which UML
# (scripts/kunit.sh) has none of.
#
#   scripts/kunit-guest.sh [LANE]      LANE defaults to "debug"
#
# Builds a uhp.ko with the suites linked in (Kbuild's UHP_KUNIT=1; never the
# module dkms installs) against the lane's tree, boots the lane with it,
# and runs kunit/guest.sh in the guest, which loads it (KUnit runs the
# suites at load) and prints their KTAP report. The report is checked here
# with the kernel's own parser (tools/testing/kunit/kunit.py parse). The
# lane's kernel needs CONFIG_KUNIT=y (scripts/lanes/debug.config has it).
set -euo pipefail

die() { echo "kunit-guest.sh: $*" >&2; exit 1; }

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${UHP_BUILD:-$repo/build}
lane=${1:-debug}
env=$("$repo/scripts/lane.sh" "$lane")
# shellcheck source=/dev/null
. "$env"
[[ -z $BUILD_ROOT ]] || die "lane $lane builds in a chroot; the KUnit module is built on the host only"
grep -qs '^CONFIG_KUNIT=y' "$KDIR/.config" || die "lane $lane's kernel ($KDIR) has no CONFIG_KUNIT=y"
parser=$KDIR/tools/testing/kunit/kunit.py
[[ -f $parser ]] || die "$parser not found: the lane's tree has no KUnit tools"

out=$build/kunit-guest/$lane
rm -rf "$out"
mkdir -p "$out"
# Sources only, as scripts/kunit.sh links them: no objects of another build.
(cd "$repo" && git ls-files -co --exclude-standard Kbuild VERSION 'kmod/*.[ch]' 'uapi/*.h' \
    'kunit/*.[ch]' 'samples/*.[ch]' | xargs cp --parents -t "$out")
make -C "$KDIR" M="$out" UHP_KUNIT=1 modules >"$out/build.log" 2>&1 ||
    { tail -n 20 "$out/build.log" >&2; die "building uhp.ko with its KUnit suites against $KDIR failed"; }
if grep -q 'warning:' "$out/build.log"; then
    grep 'warning:' "$out/build.log" >&2
    die "the build warned"
fi

rc=0
# shellcheck disable=SC2086 # UHP_VM_FLAGS is a list of options
"$repo/scripts/uhp-vm" ${UHP_VM_FLAGS:-} --lane "$lane" --ko none \
    --file "$out/uhp.ko" run "$repo/kunit/guest.sh" /uhp/uhp.ko >"$out/guest.log" 2>&1 || rc=$?
sed -n '/^KTAP-BEGIN/,/^KTAP-END/{/^KTAP-/d;p}' "$out/guest.log" | tr -d '\r' >"$out/test.log"
sed '/^KTAP-BEGIN/,/^KTAP-END/d' "$out/guest.log" | tail -n 40
[[ -s $out/test.log ]] || die "no KTAP report from the guest (see $out/guest.log)"

prc=0
python3 "$parser" parse "$out/test.log" || prc=$?
# kunit.py shows a skipped case by name only: print why it was skipped.
sed -n 's/^[[:space:]]*ok [0-9]* \(.*\) # SKIP \(.*\)$/kunit-guest.sh: skipped \1: \2/p' "$out/test.log"
grep -q '^[[:space:]]*not ok ' "$out/test.log" && prc=1
[[ $rc -eq 0 ]] || die "the guest run failed (exit $rc; see $out/guest.log)"
[[ $prc -eq 0 ]] || die "KUnit reported failures"
echo "kunit-guest.sh: PASS on lane $lane ($KVER)"
