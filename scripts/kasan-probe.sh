#!/usr/bin/env bash
# Prove that a lane's kernel (the "debug" lane) really reports a
# use-after-free: build tests/kasan/uhp_kasan_probe.ko against the lane's
# tree, boot the lane with it (and without uhp.ko) and run
# tests/kasan/kasan-probe.sh in the guest, which fails unless the kernel log
# shows "BUG: KASAN: slab-use-after-free in uhp_kasan_probe...". A boot of
# its own: KASAN reports once per boot, and a report turns lockdep off.
#
#   scripts/kasan-probe.sh [LANE]      LANE defaults to "debug"
set -euo pipefail

die() { echo "kasan-probe.sh: $*" >&2; exit 1; }

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${UHP_BUILD:-$repo/build}
lane=${1:-debug}
env=$("$repo/scripts/lane.sh" "$lane")
# shellcheck source=/dev/null
. "$env"
[[ -z $BUILD_ROOT ]] || die "lane $lane builds in a chroot; the probe is built on the host only"

out=$build/kasan/$lane
rm -rf "$out"
mkdir -p "$out"
cp "$repo/tests/kasan/Kbuild" "$repo/tests/kasan/uhp_kasan_probe.c" "$out/"
make -C "$KDIR" M="$out" modules >"$out/build.log" 2>&1 ||
    { tail -n 20 "$out/build.log" >&2; die "building the probe against $KDIR failed"; }
# shellcheck disable=SC2086 # UHP_VM_FLAGS is a list of options
"$repo/scripts/uhp-vm" ${UHP_VM_FLAGS:-} --lane "$lane" --ko none \
    --file "$out/uhp_kasan_probe.ko" run "$repo/tests/kasan/kasan-probe.sh" /uhp/uhp_kasan_probe.ko
