#!/usr/bin/env bash
# sparse over uhp's kernel code (kmod/, samples/) as built for one lane
# (scripts/lane.sh): `make C=2 CHECK=sparse`, which checks every file.
#
#   scripts/sparse.sh [LANE]      LANE defaults to "default"
#
# Fails if sparse (or the compiler) says anything about a uhp file; what it
# says about the kernel's own headers is not ours to fix and is only counted.
# The build runs on a copy in build/sparse/<lane> (inside the lane's build
# root when it has one), so it never mixes with dkms's or `make module`'s.
set -euo pipefail

die() { echo "sparse.sh: $*" >&2; exit 1; }

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${UHP_BUILD:-$repo/build}
lane=${1:-default}
env=$("$repo/scripts/lane.sh" "$lane")
# shellcheck source=/dev/null
. "$env"

if [[ -n $BUILD_ROOT ]]; then
    inner=/tmp/uhp-sparse
    dir=$BUILD_ROOT$inner
else
    dir=$build/sparse/$lane
    inner=$dir
fi
run() { "$repo/scripts/lanes/in-root.sh" "$BUILD_ROOT" "$@"; }
run sh -c 'command -v sparse >/dev/null' || die "sparse missing in ${BUILD_ROOT:-the host} (scripts/deps.sh)"
rm -rf "$dir"
mkdir -p "$dir"
(cd "$repo" && git ls-files -z -co --exclude-standard -- Kbuild VERSION kmod samples uapi |
    while IFS= read -r -d '' f; do [[ -f $f ]] && printf '%s\0' "$f"; done |
    tar --null -T - -cf -) | tar -C "$dir" -xf -

log=$dir.log
rc=0
# KBUILD_CHECKSRC=2 on the command line as well: some headers packages
# (Debian's 7.x) lack scripts/checker-valid.sh, and kbuild would then turn
# the checker off with a warning instead of running the sparse we checked.
run make -C "$KDIR" M="$inner" C=2 KBUILD_CHECKSRC=2 CHECK=sparse modules >"$log" 2>&1 || rc=$?
grep -q "CHECK.*kmod/ring.c" "$log" || { rc=1; echo "sparse.sh: sparse did not run (log: $log)" >&2; }
# Newer kbuild prints paths relative to M=, older ones absolute.
ours=$(grep -E "^($inner/)?(kmod|samples|uapi)/.*(warning|error):" "$log" || true)
theirs=$(grep -cE '(warning|error):' "$log" || true)
if [[ $rc -ne 0 || -n $ours ]]; then
    [[ $rc -ne 0 ]] && tail -n 20 "$log" >&2
    [[ -n $ours ]] && echo "$ours" >&2
    die "$lane: sparse or the build complained about uhp (log: $log)"
fi
echo "sparse.sh: $lane ($KVER): clean ($((theirs)) messages about the kernel's own headers)"
