#!/usr/bin/env bash
# Build uhp.ko (and the sample uhp_ticker.ko) the way a user's machine
# would: through dkms, for one kernel lane (scripts/lane.sh).
#
#   scripts/dkms-build.sh [LANE]     LANE defaults to "default"
#
# Copies the module's sources to /usr/src/uhp-<version> exactly as `make
# dkms-install` and the uhp-dkms package do (`make dkms-src`), replaces any
# earlier registration of uhp/<version>, then `dkms add` + `dkms build -k
# <kver> --kernelsourcedir <kdir>`; then builds the sample agent against the
# Module.symvers dkms produced, as any module using uhp's kernel API is built.
# For a lane with a BUILD_ROOT (the sid chroot of "unstable") all of that
# happens inside the chroot, with its own dkms and compiler. Nothing is
# installed into any kernel (the host's cannot load modules anyway).
#
# Prints on stdout the directory holding plain (decompressed) uhp.ko and
# uhp_ticker.ko, build/modules/<lane>/, for `scripts/uhp-vm --ko`.
set -euo pipefail

die() { echo "dkms-build.sh: $*" >&2; exit 1; }

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${UHP_BUILD:-$repo/build}
lane=${1:-default}
name=uhp
version=$(cat "$repo/VERSION")
[[ -n $version ]] || die "empty $repo/VERSION"

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
make -s -C "$repo" dkms-src DESTDIR="$BUILD_ROOT" >&2
[[ -f $src/dkms.conf ]] || die "make dkms-src left no $src/dkms.conf"

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

# The sample, as any module using uhp's kernel API is built: against the
# Module.symvers of uhp's sources (dkms cleans its own build area, so they
# are built once more here; this uhp.ko is not used).
sample=/var/tmp/uhp-sample-$lane
rm -rf "$BUILD_ROOT$sample"
cp -a "$src" "$BUILD_ROOT$sample"
(cd "$repo" && cp --parents -t "$BUILD_ROOT$sample" samples/Kbuild samples/*.c)
if ! in_root sh -c 'make -C "$1" M="$2" modules &&
        make -C "$1" M="$2/samples" KBUILD_EXTRA_SYMBOLS="$2/Module.symvers" modules' \
        sh "$KDIR" "$sample" >"$BUILD_ROOT$sample/make.log" 2>&1; then
    tail -n 40 "$BUILD_ROOT$sample/make.log" >&2
    die "the sample did not build against $KVER and uhp's Module.symvers"
fi
if grep -iE '(warning|error):' "$BUILD_ROOT$sample/make.log" >&2; then
    die "the sample's $KVER build has warnings (above)"
fi
out=$build/modules/$lane
rm -rf "$out"
mkdir -p "$out"
for m in "$name" uhp_ticker; do
    ko=""
    dir=$moddir
    [[ $m == uhp_ticker ]] && dir=$BUILD_ROOT$sample/samples
    for f in "$dir/$m.ko" "$dir/$m.ko.xz" "$dir/$m.ko.zst" "$dir/$m.ko.gz"; do
        [[ -f $f ]] && { ko=$f; break; }
    done
    [[ -n $ko ]] || die "$dir has no $m.ko* after the build"
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
