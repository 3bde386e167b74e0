#!/usr/bin/env bash
# Fetch the Debian kernel image that matches the installed headers and unpack
# it once into build/kernel/<kver>/ (cached: later calls only print paths).
#
# The guest boots this exact image so that the uhp.ko built against
# /usr/src/linux-headers-<kver> (by make or by dkms) loads in it: same
# release, same config, same symbol versions.
#
#   scripts/kernel.sh             -> build/kernel/<kver>        (unpacked tree)
#   scripts/kernel.sh --vmlinuz   -> .../boot/vmlinuz-<kver>
#   scripts/kernel.sh --modules   -> .../lib/modules/<kver>
#
# UHP_BUILD overrides the build directory (default: <repo>/build).
set -euo pipefail

die() { echo "kernel.sh: $*" >&2; exit 1; }

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${UHP_BUILD:-$repo/build}
kver=$("$repo/scripts/kver.sh")
dir=$build/kernel/$kver
stamp=$dir/.unpacked

if [[ ! -e $stamp ]]; then
    # The package is linux-image-<kver>-unsigned (kver already ends in -amd64).
    # Ask for the version of the installed headers so that a newer image
    # in the apt lists under the same ABI name cannot slip in.
    pkg=linux-image-$kver-unsigned
    ver=$("$repo/scripts/kver.sh" --version)
    dl=$build/kernel/.download
    rm -rf "$dir" "$dl"
    mkdir -p "$dl"
    echo "kernel.sh: downloading $pkg=$ver" >&2
    # apt-get download as root into a directory _apt cannot read warns
    # "Download is performed unsandboxed": harmless, filtered out.
    if ! (cd "$dl" && apt-get download -q "$pkg=$ver" 2>&1 | { grep -v 'unsandboxed' >&2 || true; }); then
        echo "kernel.sh: $pkg=$ver not downloadable; trying the candidate version" >&2
        (cd "$dl" && apt-get download -q "$pkg" 2>&1 | { grep -v 'unsandboxed' >&2 || true; }) ||
            die "cannot download $pkg (no network to Debian, or stale apt lists: apt-get update)"
    fi
    deb=$(ls "$dl"/"$pkg"_*.deb 2>/dev/null | head -n1)
    [[ -n $deb ]] || die "apt-get download left no $pkg .deb"
    echo "kernel.sh: unpacking $(basename "$deb") into $dir" >&2
    mkdir -p "$dir.tmp"
    dpkg -x "$deb" "$dir.tmp"
    [[ -f $dir.tmp/boot/vmlinuz-$kver ]] || die "$deb has no boot/vmlinuz-$kver"
    mv "$dir.tmp" "$dir"
    rm -rf "$dl"
    touch "$stamp"
fi

case ${1:-} in
    "") echo "$dir" ;;
    --vmlinuz) echo "$dir/boot/vmlinuz-$kver" ;;
    --modules) echo "$dir/lib/modules/$kver" ;;
    *) die "usage: $0 [--vmlinuz|--modules]" ;;
esac
