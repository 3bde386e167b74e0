#!/usr/bin/env bash
# Build uhp.ko the way a user's machine would: through dkms, for <kver>.
#
# Copies the working tree (tracked and new files, not build output) to
# /usr/src/uhp-0.1, replaces any earlier registration of uhp/0.1, then
# `dkms add` + `dkms build -k <kver>`.  Nothing is installed into the host
# (its kernel cannot load modules anyway).  Prints on stdout the path of a
# plain uhp.ko built by dkms, for `scripts/uhp-vm --ko`; if dkms compressed
# it, a decompressed copy in build/dkms/<kver>/.
set -euo pipefail

die() { echo "dkms-build.sh: $*" >&2; exit 1; }

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${UHP_BUILD:-$repo/build}
name=uhp
version=$(sed -n 's/^PACKAGE_VERSION="\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$repo/dkms.conf")
[[ -n $version ]] || die "no PACKAGE_VERSION in dkms.conf"
kver=$("$repo/scripts/kver.sh")
kdir=$("$repo/scripts/kver.sh" --kdir)

[[ $(id -u) -eq 0 ]] || die "dkms needs root (/usr/src, /var/lib/dkms): run as root"
command -v dkms >/dev/null || die "dkms missing (run scripts/deps.sh)"
[[ -f $repo/Kbuild ]] || die "no Kbuild at the top of the tree: the module is not there yet"

src=/usr/src/$name-$version
# Where dkms keeps its builds, as dkms itself reads it.
dkms_tree=$(
    for f in /etc/dkms/framework.conf /etc/dkms/framework.conf.d/*.conf; do
        [[ -f $f ]] && . "$f"
    done 2>/dev/null
    echo "${dkms_tree:-/var/lib/dkms}")
# Start from nothing each time: a stale registration or stale sources
# would make dkms build something other than this tree.
dkms remove "$name/$version" --all >/dev/null 2>&1 || true
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

echo "dkms-build.sh: dkms add + build $name/$version for $kver (sources in $src)" >&2
dkms add -m "$name" -v "$version" >&2
# --kernelsourcedir: the headers package's /lib/modules/<kver>/build link is
# not there on every machine (and points here anyway where it is).
if ! dkms build -m "$name" -v "$version" -k "$kver" --kernelsourcedir "$kdir" >&2; then
    log=$dkms_tree/$name/$version/build/make.log
    [[ -f $log ]] && { echo "dkms-build.sh: tail of $log:" >&2; tail -n 40 "$log" >&2; }
    die "dkms build failed"
fi

moddir=$dkms_tree/$name/$version/$kver/$(uname -m)/module
ko=""
for f in "$moddir/$name.ko" "$moddir/$name.ko.xz" "$moddir/$name.ko.zst" "$moddir/$name.ko.gz"; do
    [[ -f $f ]] && { ko=$f; break; }
done
[[ -n $ko ]] || die "dkms reported success but $moddir has no $name.ko*"
case $ko in
    *.ko) echo "$ko" ;;
    *)  # dkms compresses like the kernel's own modules; uhp-vm wants plain
        out=$build/dkms/$kver/$name.ko
        mkdir -p "${out%/*}"
        case $ko in
            *.xz) xz -dc "$ko" >"$out" ;;
            *.zst) zstd -qdc "$ko" >"$out" ;;
            *.gz) gzip -dc "$ko" >"$out" ;;
        esac
        echo "dkms-build.sh: decompressed $ko to $out" >&2
        # and the sample agent built with it, so it sits beside uhp.ko
        for f in "$moddir"/uhp_ticker.ko.*; do
            case $f in
                *.xz) xz -dc "$f" >"${out%/*}/uhp_ticker.ko" ;;
                *.zst) zstd -qdc "$f" >"${out%/*}/uhp_ticker.ko" ;;
                *.gz) gzip -dc "$f" >"${out%/*}/uhp_ticker.ko" ;;
            esac
        done
        echo "$out" ;;
esac
