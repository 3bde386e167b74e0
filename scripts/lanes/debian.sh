#!/usr/bin/env bash
# The Debian 12 kernel lanes: prepare, once and cached, what building uhp.ko
# for one of Debian 12's kernels and booting that kernel in the guest need.
#
#   scripts/lanes/debian.sh default    Debian 12's default kernel (6.1), the
#                                      headers scripts/deps.sh installs
#   scripts/lanes/debian.sh 6.12       Debian 12's 6.12 LTS
#   scripts/lanes/debian.sh 6.12-rt    its PREEMPT_RT flavour
#
# Prints the path of the lane's lane.env (see scripts/lane.sh) on stdout;
# progress goes to stderr.
#
# The kernel release is derived from apt metadata every time, never written
# down: the lane's meta-package (linux-headers-amd64, linux-headers-6.12-amd64,
# linux-headers-6.12-rt-amd64) depends on exactly one linux-headers-<kver>,
# and that names <kver> and its Debian version. For "default" the installed
# meta-package counts (scripts/kver.sh), so the lane is the kernel whose
# headers this machine has; for the others the candidate version does.
#
# Why the 6.12 headers are unpacked, not installed: installing
# linux-headers-<kver> pulls linux-image-<kver>, whose postinst runs
# `dkms autoinstall` for every registered module (uhp included) and leaves
# dpkg half-configured when one fails to build. So the headers, their
# -common part and the matching linux-kbuild are `apt-get download`ed and
# `dpkg -x`ed into one root under the cache, and the one absolute path in the
# headers' Makefile (the include of the -common Makefile) is pointed into
# that root. The guest image (linux-image-<kver>-unsigned) is unpacked the
# same way for every lane. A root is built in a temporary directory and
# renamed when complete, and its stamp names every package version, so an
# interrupted or stale unpack is never used.
set -euo pipefail

die() { echo "lanes/debian.sh: $*" >&2; exit 1; }

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cache=${UHP_CACHE:-/var/cache/uhp}
lane=${1:-}

case $lane in
    default) meta=linux-headers-amd64 ;;
    6.12) meta=linux-headers-6.12-amd64 ;;
    6.12-rt) meta=linux-headers-6.12-rt-amd64 ;;
    *) die "usage: $0 default|6.12|6.12-rt" ;;
esac

# meta_dep PKG VERSION -> "<kver> <debian version>" of its linux-headers-<kver>.
meta_dep() {
    apt-cache show "$1=$2" 2>/dev/null |
        sed -n 's/^Depends:.*linux-headers-\([^ ,|]*-amd64\) (= \([^)]*\)).*/\1 \2/p' | head -n1
}

if [[ $lane == default ]]; then
    kver=$("$repo/scripts/kver.sh")
    debver=$("$repo/scripts/kver.sh" --version)
else
    cand=$(apt-cache policy "$meta" 2>/dev/null | sed -n 's/^  Candidate: //p')
    [[ -n $cand && $cand != "(none)" ]] ||
        die "$meta has no candidate version (apt-get update first?)"
    read -r kver debver < <(meta_dep "$meta" "$cand") ||
        die "cannot find linux-headers-<kver> in the dependencies of $meta=$cand"
fi
# 6.12.117+deb12-rt-amd64 -> base 6.12.117+deb12, flavour rt-amd64
base=${kver%-amd64}
base=${base%-rt}
flavour=${kver#"$base"-}

dir=$cache/debian/$kver
root=$dir/root
env=$cache/lanes/$lane/lane.env

pkgs=("linux-image-$kver-unsigned=$debver")
if [[ $lane != default ]]; then
    pkgs+=("linux-headers-$kver=$debver" "linux-headers-$base-common=$debver"
           "linux-kbuild-$base=$debver")
    [[ $flavour == rt-amd64 ]] && pkgs+=("linux-headers-$base-common-rt=$debver")
fi
want="${pkgs[*]}"

mkdir -p "$cache/debian" "${env%/*}"
exec 8>"$cache/debian/.lock"
flock 8

if [[ ! -f $root/.uhp-lane || $(<"$root/.uhp-lane") != "$want" ]]; then
    echo "lanes/debian.sh: $lane: fetching $want" >&2
    tmp=$dir/tmp
    rm -rf "$tmp"
    mkdir -p "$tmp/debs" "$tmp/root"
    # apt-get download as root into a directory _apt cannot read warns
    # "Download is performed unsandboxed": harmless, filtered out.
    (cd "$tmp/debs" && apt-get download -q "${pkgs[@]}" 2>&1 | { grep -v 'unsandboxed' >&2 || true; }) ||
        die "cannot download ${pkgs[*]} (no network to Debian, or stale apt lists: apt-get update)"
    for deb in "$tmp"/debs/*.deb; do
        dpkg -x "$deb" "$tmp/root"
    done
    [[ -f $tmp/root/boot/vmlinuz-$kver ]] || die "linux-image-$kver-unsigned has no boot/vmlinuz-$kver"
    if [[ $lane != default ]]; then
        mk=$tmp/root/usr/src/linux-headers-$kver/Makefile
        [[ -f $mk ]] || die "linux-headers-$kver has no Makefile"
        # "include /usr/src/linux-headers-<base>-common[-rt]/Makefile" -> into the root
        sed -i "s|^include /usr/src/|include $root/usr/src/|" "$mk"
        grep -q "^include $root/usr/src/" "$mk" || die "unexpected $mk: $(head -n3 "$mk")"
    fi
    rm -rf "$tmp/debs"
    echo "$want" >"$tmp/root/.uhp-lane"
    rm -rf "$root"
    mv "$tmp/root" "$root"
    rm -rf "$tmp"
fi

# This lane's older kernels (Debian moved the meta-package on) go.
echo "$lane" >"$dir/.lane"
for old in "$cache"/debian/*/.lane; do
    [[ ${old%/.lane} != "$dir" && $(<"$old") == "$lane" ]] || continue
    echo "lanes/debian.sh: $lane: removing ${old%/.lane} (superseded by $kver)" >&2
    rm -rf "${old%/.lane}"
done

if [[ $lane == default ]]; then
    kdir=$("$repo/scripts/kver.sh" --kdir)
else
    kdir=$root/usr/src/linux-headers-$kver
fi
rt=0
[[ $flavour == rt-amd64 ]] && rt=1
cat >"$env.tmp" <<EOF
LANE=$lane
KVER=$kver
KDIR=$kdir
BUILD_ROOT=
VMLINUZ=$root/boot/vmlinuz-$kver
MODULES=$root/lib/modules/$kver
PREEMPT_RT=$rt
DEBUG=0
EOF
mv "$env.tmp" "$env"
echo "$env"
