#!/usr/bin/env bash
# Build uhp.ko (and the sample uhp_ticker.ko) the way a user's machine
# would: through dkms, for one kernel lane (scripts/lane.sh).
#
#   scripts/dkms-build.sh [LANE]     LANE defaults to "default"
#
# Copies the working tree (tracked and new files, not build output) to
# /usr/src/uhp-<version>, replaces any earlier registration of uhp/<version>,
# then `dkms add` + `dkms build -k <kver> --kernelsourcedir <kdir>`. For a
# lane with a BUILD_ROOT (the sid chroot of "unstable") all of that happens
# inside the chroot, with its own dkms and compiler. Nothing is installed
# into any kernel (the host's cannot load modules anyway).
#
# Prints on stdout the directory holding plain (decompressed) uhp.ko and
# uhp_ticker.ko, build/modules/<lane>/, for `scripts/uhp-vm --ko`.
set -euo pipefail

die() { echo "dkms-build.sh: $*" >&2; exit 1; }

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${UHP_BUILD:-$repo/build}
lane=${1:-default}
name=uhp
version=$(sed -n 's/^PACKAGE_VERSION="\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$repo/dkms.conf")
[[ -n $version ]] || die "no PACKAGE_VERSION in dkms.conf"

[[ $(id -u) -eq 0 ]] || die "dkms needs root (/usr/src, /var/lib/dkms): run as root"
[[ -f $repo/Kbuild ]] || die "no Kbuild at the top of the tree: the module is not there yet"
env=$("$repo/scripts/lane.sh" "$lane")
# shellcheck source=/dev/null
. "$env"

# in_root CMD...: run CMD on the host or inside the lane's build root.
in_root() { "$repo/scripts/lanes/in-root.sh" "$BUILD_ROOT" "$@"; }
in_root sh -c 'command -v dkms >/dev/null' || die "dkms missing in ${BUILD_ROOT:-the host} (scripts/deps.sh)"

src=$BUILD_ROOT/usr/src/$name-$version
# Where dkms keeps its builds, as dkms itself reads it.
dkms_tree=$(
    for f in "$BUILD_ROOT"/etc/dkms/framework.conf "$BUILD_ROOT"/etc/dkms/framework.conf.d/*.conf; do
        [[ -f $f ]] && . "$f"
    done 2>/dev/null
    echo "${dkms_tree:-/var/lib/dkms}")
# Start from nothing each time: a stale registration or stale sources
# would make dkms build something other than this tree.
in_root dkms remove "$name/$version" --all >/dev/null 2>&1 || true
rm -rf "$src"
mkdir -p "$src"
if git -C "$repo" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    # Tracked and untracked-but-not-ignored files: the tree as edited,
    # without objects, .ko files or build/.
    (cd "$repo" && git ls-files -z -co --exclude-standard |
        while IFS= read -r -d '' f; do [[ -f $f ]] && printf '%s\0' "$f"; done |
        tar --null -T - -cf -) | tar -C "$src" -xf -
else
    (cd "$repo" && tar --exclude=./build --exclude=./.git --exclude='*.o' \
        --exclude='*.ko' --exclude='.*.cmd' -cf - .) | tar -C "$src" -xf -
fi

echo "dkms-build.sh: $lane: dkms add + build $name/$version for $KVER${BUILD_ROOT:+ in $BUILD_ROOT}" >&2
in_root dkms add -m "$name" -v "$version" >&2
# --kernelsourcedir: lanes unpack headers where dkms would not look.
if ! in_root dkms build -m "$name" -v "$version" -k "$KVER" --kernelsourcedir "$KDIR" >&2; then
    log=$BUILD_ROOT$dkms_tree/$name/$version/build/make.log
    [[ -f $log ]] && { echo "dkms-build.sh: tail of $log:" >&2; tail -n 40 "$log" >&2; }
    die "dkms build failed for $KVER"
fi

# Warning-free on every kernel: a warning fails the build here too.
log=$BUILD_ROOT$dkms_tree/$name/$version/$KVER/$(uname -m)/log/make.log
[[ -f $log ]] || die "dkms left no $log"
if grep -iE '(warning|error):' "$log" >&2; then
    die "the $KVER build has warnings (above; $log)"
fi

moddir=$BUILD_ROOT$dkms_tree/$name/$version/$KVER/$(uname -m)/module
out=$build/modules/$lane
rm -rf "$out"
mkdir -p "$out"
for m in "$name" uhp_ticker; do
    ko=""
    for f in "$moddir/$m.ko" "$moddir/$m.ko.xz" "$moddir/$m.ko.zst" "$moddir/$m.ko.gz"; do
        [[ -f $f ]] && { ko=$f; break; }
    done
    [[ -n $ko ]] || die "dkms reported success but $moddir has no $m.ko*"
    # dkms compresses like the kernel's own modules; uhp-vm wants plain.
    case $ko in
        *.ko) cp "$ko" "$out/$m.ko" ;;
        *.xz) xz -dc "$ko" >"$out/$m.ko" ;;
        *.zst) zstd -qdc "$ko" >"$out/$m.ko" ;;
        *.gz) gzip -dc "$ko" >"$out/$m.ko" ;;
    esac
done
vermagic=$(modinfo -F vermagic "$out/$name.ko")
[[ $vermagic == "$KVER "* ]] || die "$out/$name.ko has vermagic '$vermagic', expected $KVER"
echo "$out"
