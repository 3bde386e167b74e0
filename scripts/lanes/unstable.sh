#!/usr/bin/env bash
# The "unstable" kernel lane: everything needed to build uhp.ko for the
# newest kernel in Debian unstable (sid) and to boot that kernel in the test
# guest, prepared once and cached.
#
#   scripts/lanes/unstable.sh            prepare (or reuse) the lane; print the
#                                        path of $UHP_CACHE/lanes/unstable/lane.env
#   scripts/lanes/unstable.sh --refresh  the same, but update the apt metadata now
#   scripts/lanes/unstable.sh --check    prepare, then build this tree in the
#                                        build root with make and with dkms and
#                                        say how it went (stderr; exit 1 on failure)
#   scripts/lanes/unstable.sh --run CMD...  run CMD inside the build root with
#                                        /proc mounted (in a private mount
#                                        namespace, so nothing stays mounted)
#
# lane.env (shell-sourceable) names:
#   LANE=unstable  KVER=<kernel release, e.g. 7.2.13+deb14-amd64>
#   KDIR=/usr/src/linux-headers-<KVER>   (a path INSIDE BUILD_ROOT)
#   BUILD_ROOT=<sid chroot>              build: chroot "$BUILD_ROOT" make -C "$KDIR" M=...
#   VMLINUZ=<host path of the kernel>    MODULES=<host path of usr/lib/modules/<KVER>>
#   PREEMPT_RT=0|1  DEBUG=0|1            (read from the kernel's config)
#
# Why this shape:
# - The host is Debian 12; sid's headers need gcc-16 and kbuild tools linked
#   against glibc >= 2.38, so modules for sid's kernel are built in a sid
#   chroot (debootstrap --variant=minbase) that holds only the headers and a
#   toolchain.  No kernel image is ever installed there (an apt pin forbids
#   it), so a dkms registration inside can never be triggered by a kernel
#   postinst.  The host's apt sources and dpkg database are never touched.
# - The kernel version comes from sid's linux-headers-amd64 meta-package at
#   run time (its dependency linux-headers-<KVER>), cross-checked against
#   linux-image-amd64: Debian moves it, nothing here hard-codes it.
# - sid's metadata is fetched with a private apt configuration under
#   $UHP_CACHE/unstable/apt, at most once every UHP_UNSTABLE_MAX_AGE_H hours
#   (default 12), so a warm call makes no network access.  If the refresh
#   fails, the lists from the last good update are used (with a warning).
# - sid splits the image: linux-binary-unsigned-<KVER> has
#   usr/lib/modules/<KVER>/vmlinuz.unsigned, linux-modules-<KVER> the .ko.xz
#   files, linux-base-<KVER> the config, System.map stub and modules.builtin.
#   All three are unpacked into image/<KVER>; a stamp naming the exact package
#   versions is written last, so a partial or stale unpack is never trusted.
# - Everything is built in a temporary directory and renamed into place when
#   complete; a lock file serialises concurrent runs.
#
# Environment: UHP_CACHE (default /var/cache/uhp), UHP_UNSTABLE_MAX_AGE_H
# (default 12), UHP_UNSTABLE_MIRROR (default http://deb.debian.org/debian).
# Needs root (debootstrap, chroot).
set -euo pipefail

die() { echo "unstable.sh: $*" >&2; exit 1; }
say() { echo "unstable.sh: $*" >&2; }

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cache=${UHP_CACHE:-/var/cache/uhp}
mirror=${UHP_UNSTABLE_MIRROR:-http://deb.debian.org/debian}
max_age_h=${UHP_UNSTABLE_MAX_AGE_H:-12}
base=$cache/unstable
aptdir=$base/apt
root=$base/root
lanedir=$cache/lanes/unstable
laneenv=$lanedir/lane.env
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
# What the build root needs besides linux-headers-<KVER>.  dkms in sid
# depends on kmod, dpkg-dev, make, patch (no kernel image).
root_pkgs=(make gcc dkms kmod sparse dwarves)  # sparse: scripts/sparse.sh; dwarves: pahole for BTF

mode=prepare
case ${1:-} in
    "") ;;
    --refresh) mode=refresh ;;
    --check) mode=check ;;
    --run) mode=run; shift; [[ $# -ge 1 ]] || die "--run needs a command" ;;
    -h|--help) sed -n '2,/^$/s/^# \{0,1\}//p' "$0" >&2; exit 0 ;;
    *) die "usage: $0 [--refresh|--check|--run CMD...]" ;;
esac
[[ $mode == run ]] || [[ $# -le 1 ]] || die "usage: $0 [--refresh|--check|--run CMD...]"

[[ $(id -u) -eq 0 ]] || die "needs root (debootstrap, chroot): run as root"

# in_root DIR CMD...: run CMD in the chroot DIR with a clean environment and
# /proc mounted in a private mount namespace (gone when CMD exits, even if
# it is killed: nothing is left mounted in the tree).
in_root() {
    local dir=$1; shift
    # shellcheck disable=SC2016 # expanded by the inner sh
    unshare --mount --propagation private -- /bin/sh -c '
        dir=$1; shift
        mount -t proc proc "$dir/proc" || exit 125
        exec chroot "$dir" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
            HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"
    ' in_root "$dir" "$@"
}

if [[ $mode == run ]]; then
    [[ -f $root/etc/uhp-lane.stamp ]] || die "no build root at $root yet: run $0 first"
    in_root "$root" "$@"
    exit
fi

for tool in apt-get apt-cache dpkg debootstrap unshare flock chroot; do
    command -v $tool >/dev/null || die "$tool missing"
done
[[ -f $keyring ]] || die "$keyring missing (debian-archive-keyring)"

mkdir -p "$base" "$lanedir"
exec 9>"$base/.lock"
if ! flock -n 9; then
    say "another run is preparing the lane; waiting for it"
    flock -w 3600 9 || die "timed out waiting for $base/.lock"
fi

# ---- private apt configuration ---------------------------------------------

mkdir -p "$aptdir/state/lists/partial" "$aptdir/cache/archives/partial" "$aptdir/log" "$aptdir/apt.conf.d"
srcline="deb [signed-by=$keyring] $mirror sid main"
if [[ ! -f $aptdir/sources.list ]] || [[ $(cat "$aptdir/sources.list") != "$srcline" ]]; then
    echo "$srcline" >"$aptdir/sources.list"
    rm -f "$aptdir/updated"
fi
# The whole configuration, read through APT_CONFIG: Dir::Etc::Parts (an
# empty directory) and Dir::Etc::Main (/dev/null) replace the host's, so
# nothing from the host's /etc/apt applies (its apt.conf.d has update hooks
# that refresh the host's AppStream and PackageKit caches, and a setting that
# disables apt's binary cache).  The status file is empty: apt sees no
# installed packages (the host's would make `apt-cache show` list bookworm's
# linux-headers-amd64 too) and no pin can change the candidate.  The mirror's
# sid Release file has an expired Valid-Until, hence Check-Valid-Until.
: >>"$aptdir/state/status"
cat >"$aptdir/apt.conf.tmp" <<EOF
// Written by scripts/lanes/unstable.sh: a private apt for Debian sid.
Dir::Etc::Parts "$aptdir/apt.conf.d";
Dir::Etc::Main "/dev/null";
Dir::Etc::SourceList "$aptdir/sources.list";
Dir::Etc::SourceParts "/dev/null";
Dir::Etc::Preferences "/dev/null";
Dir::Etc::PreferencesParts "/dev/null";
Dir::State "$aptdir/state";
Dir::State::Lists "$aptdir/state/lists";
Dir::State::status "$aptdir/state/status";
Dir::Cache "$aptdir/cache";
Dir::Cache::pkgcache "pkgcache.bin";
Dir::Cache::srcpkgcache "srcpkgcache.bin";
Dir::Log "$aptdir/log";
APT::Architecture "amd64";
APT::Architectures { "amd64"; };
Acquire::Check-Valid-Until "false";
Acquire::GzipIndexes "true";
Acquire::Languages "none";
EOF
if cmp -s "$aptdir/apt.conf.tmp" "$aptdir/apt.conf"; then
    rm -f "$aptdir/apt.conf.tmp"
else
    mv "$aptdir/apt.conf.tmp" "$aptdir/apt.conf"
fi
# sapt apt-get|apt-cache ARGS...: apt with the private configuration only.
sapt() { APT_CONFIG=$aptdir/apt.conf "$@"; }
# Never fall back to the host's configuration (APT_CONFIG naming a missing
# file only warns): check the file is there and is the one apt reads.
[[ -f $aptdir/apt.conf ]] || die "$aptdir/apt.conf missing"
[[ $(sapt apt-config shell x Dir::Etc::SourceList/f) == "x='$aptdir/sources.list'" ]] ||
    die "apt does not read $aptdir/apt.conf"

have_lists() { compgen -G "$aptdir/state/lists/*_Packages*" >/dev/null; }
# fresh FILE MINUTES: FILE exists and is younger than MINUTES.
fresh() { [[ -n $(find "$1" -mmin "-$2" 2>/dev/null) ]]; }
# After a failed update (offline?) the next attempt waits an hour, so that
# calls in a loop do not each wait for the network to time out.
if [[ $mode == refresh ]] ||
        { ! fresh "$aptdir/updated" $((max_age_h * 60)) && ! fresh "$aptdir/update-failed" 60; }; then
    say "apt-get update (sid, private config $aptdir/apt.conf)"
    # A failed fetch is only a warning to apt-get update (exit 0, old lists
    # kept): --error-on=any, and the log is checked too.
    if sapt apt-get -q --error-on=any update >"$aptdir/update.log" 2>&1 &&
            ! grep -qE '^(E:|W: Failed to fetch|W: Some index files failed)' "$aptdir/update.log" &&
            have_lists; then
        touch "$aptdir/updated"
        rm -f "$aptdir/update-failed"
    elif have_lists; then
        touch "$aptdir/update-failed"
        sed 's/^/    /' "$aptdir/update.log" >&2
        say "warning: apt-get update failed; using the lists of $(date -r "$aptdir/state/lists" '+%F %R')"
    else
        sed 's/^/    /' "$aptdir/update.log" >&2
        die "apt-get update failed and there are no sid lists yet (no network to $mirror?)"
    fi
fi

# show PKG...: the candidates' control fields, as "Package|Field: value" lines.
show() {
    { sapt apt-cache show --no-all-versions "$@" 2>/dev/null || true; } |
        awk '/^Package: / { p = $2 } /^[A-Za-z-]+: / && p != "" { print p "|" $0 }'
}
# field LINES PKG FIELD: the value of FIELD for PKG in show's output.
field() { awk -v k="$2|$3: " 'index($0, k) == 1 { print substr($0, length(k) + 1); exit }' <<<"$1"; }

# ---- the kernel version -----------------------------------------------------

metas=$(show linux-headers-amd64 linux-image-amd64)
# Depends: linux-base-amd64 (= 7.2.13-1), linux-headers-7.2.13+deb14-amd64 (= 7.2.13-1)
hdeps=$(field "$metas" linux-headers-amd64 Depends)
[[ -n $hdeps ]] || die "linux-headers-amd64 not found in sid's lists"
KVER=$(sed -n 's/.*linux-headers-\([^ ,|]*-amd64\) *(= *\([^)]*\)).*/\1/p' <<<"$hdeps")
PKGVER=$(sed -n 's/.*linux-headers-\([^ ,|]*-amd64\) *(= *\([^)]*\)).*/\2/p' <<<"$hdeps")
[[ -n $KVER && -n $PKGVER ]] || die "no 'linux-headers-<kver> (= <version>)' in linux-headers-amd64's Depends: '$hdeps'"
ideps=$(field "$metas" linux-image-amd64 Depends)
ikver=$(sed -n 's/.*linux-image-\([^ ,|]*-amd64\) *(=.*/\1/p' <<<"$ideps")
[[ $ikver == "$KVER" ]] ||
    die "sid's meta-packages disagree: linux-headers-amd64 -> $KVER, linux-image-amd64 -> '${ikver:-?}' (mirror mid-update? try --refresh later)"

# The image packages and the headers must come from the same upload.
img_pkgs=("linux-binary-unsigned-$KVER" "linux-modules-$KVER" "linux-base-$KVER")
stanzas=$(show "linux-headers-$KVER" "${img_pkgs[@]}")
for p in "linux-headers-$KVER" "${img_pkgs[@]}"; do
    v=$(field "$stanzas" "$p" Version)
    [[ $v == "$PKGVER" ]] || die "$p is at '${v:-missing}' in sid, linux-headers-amd64 wants $PKGVER"
done
say "sid's kernel: $KVER ($PKGVER)"

# ---- the guest image --------------------------------------------------------

img=$base/image/$KVER
want_stamp=$(for p in "${img_pkgs[@]}"; do echo "$p=$PKGVER"; done)
if [[ ! -f $img/.uhp-stamp ]] || [[ $(cat "$img/.uhp-stamp") != "$want_stamp" ]]; then
    tmp=$base/image/.tmp-$KVER
    rm -rf "$tmp"
    mkdir -p "$tmp/debs" "$tmp/tree"
    say "downloading ${img_pkgs[*]} ($PKGVER)"
    # As root into a directory _apt cannot write apt warns "Download is
    # performed unsandboxed": harmless, filtered out.
    (cd "$tmp/debs" && sapt apt-get -q download "${img_pkgs[@]/%/=$PKGVER}" 2>&1 |
        { grep -v 'unsandboxed' >&2 || true; }) ||
        die "apt-get download of ${img_pkgs[*]} failed"
    for p in "${img_pkgs[@]}"; do
        debs=("$tmp/debs/${p}_${PKGVER/:/%3a}_"*.deb)
        [[ -f ${debs[0]} ]] || die "apt-get download left no $p .deb"
        dpkg -x "${debs[0]}" "$tmp/tree"
    done
    m=$tmp/tree/usr/lib/modules/$KVER
    [[ -f $m/vmlinuz.unsigned ]] || die "linux-binary-unsigned-$KVER has no usr/lib/modules/$KVER/vmlinuz.unsigned"
    [[ -d $m/kernel ]] || die "linux-modules-$KVER has no usr/lib/modules/$KVER/kernel"
    [[ -f $m/config ]] || die "linux-base-$KVER has no usr/lib/modules/$KVER/config"
    echo "$want_stamp" >"$tmp/tree/.uhp-stamp"
    rm -rf "$img"
    mv "$tmp/tree" "$img"
    rm -rf "$tmp"
    say "unpacked into $img"
fi
# Other kernels' images are no longer referenced by lane.env.
for d in "$base"/image/*; do
    [[ -d $d && $d != "$img" ]] || continue
    say "removing the old image $d"
    rm -rf "$d"
done
VMLINUZ=$img/usr/lib/modules/$KVER/vmlinuz.unsigned
MODULES=$img/usr/lib/modules/$KVER

# ---- the build root ---------------------------------------------------------

# refresh_resolv DIR: the chroot's apt needs the host's DNS.
refresh_resolv() { rm -f "$1/etc/resolv.conf"; cp -L /etc/resolv.conf "$1/etc/resolv.conf"; }

# setup_apt DIR: pin kernel images out of the chroot, skip docs.
setup_apt() {
    cat >"$1/etc/apt/preferences.d/uhp-no-kernel-image" <<'EOF'
# uhp's build root holds kernel headers only.  A kernel image's postinst
# would run `dkms autoinstall`: never install one here.
Package: linux-image-* linux-binary-* linux-signed-* linux-modules-*
Pin: release *
Pin-Priority: -1
EOF
    cat >"$1/etc/apt/apt.conf.d/90uhp" <<'EOF'
Acquire::Check-Valid-Until "false";
APT::Install-Recommends "false";
APT::Install-Suggests "false";
EOF
    cat >"$1/etc/dpkg/dpkg.cfg.d/90uhp-nodoc" <<'EOF'
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
EOF
    printf '#!/bin/sh\nexit 101\n' >"$1/usr/sbin/policy-rc.d"
    chmod 0755 "$1/usr/sbin/policy-rc.d"
}

# logged CMD...: run CMD with its output in $base/root-apt.log (apt and dpkg
# are chatty); on failure show the end of it.
logged() {
    echo "+ $*" >>"$base/root-apt.log"
    "$@" >>"$base/root-apt.log" 2>&1 && return 0
    tail -n 30 "$base/root-apt.log" | sed 's/^/    /' >&2
    return 1
}

# install_headers DIR: linux-headers-$KVER=$PKGVER and the toolchain in the
# chroot DIR, older kernels' headers removed.
install_headers() {
    local dir=$1 old=()
    refresh_resolv "$dir"
    say "installing linux-headers-$KVER=$PKGVER ${root_pkgs[*]} in $dir (log: $base/root-apt.log)"
    : >"$base/root-apt.log"
    logged in_root "$dir" dpkg --configure -a || die "dpkg --configure -a in $dir failed"
    logged in_root "$dir" apt-get -q update || die "apt-get update in $dir failed"
    logged in_root "$dir" apt-get -q -y install "linux-headers-$KVER=$PKGVER" "${root_pkgs[@]}" ||
        die "installing linux-headers-$KVER in $dir failed"
    # shellcheck disable=SC2016 # ${...} are dpkg-query's, not the shell's
    mapfile -t old < <(in_root "$dir" dpkg-query -W -f='${db:Status-Status} ${Package}\n' \
            'linux-headers-*' 'linux-kbuild-*' 2>/dev/null |
        sed -n 's/^installed //p' |
        grep -v -x -F -e "linux-headers-$KVER" -e "linux-headers-${KVER%-amd64}-common" \
            -e "linux-kbuild-${KVER%-amd64}" || true)
    if [[ ${#old[@]} -gt 0 ]]; then
        say "removing older headers: ${old[*]}"
        logged in_root "$dir" apt-get -q -y purge "${old[@]}" || die "removing ${old[*]} from $dir failed"
        logged in_root "$dir" apt-get -q -y autoremove --purge || true
    fi
    logged in_root "$dir" apt-get clean || true
    # shellcheck disable=SC2016
    if in_root "$dir" dpkg-query -W -f='${db:Status-Status} ${Package}\n' 'linux-image-*' 'linux-binary-*' 2>/dev/null |
            grep -q '^installed '; then
        die "a kernel image package got into $dir: remove it before anything runs dkms there"
    fi
    [[ -f $dir/usr/src/linux-headers-$KVER/Makefile ]] || die "$dir has no /usr/src/linux-headers-$KVER/Makefile"
    [[ -f $dir/usr/src/linux-headers-$KVER/Module.symvers ]] || die "$dir has no /usr/src/linux-headers-$KVER/Module.symvers"
    printf 'linux-headers-%s=%s\n%s\n' "$KVER" "$PKGVER" "${root_pkgs[*]}" >"$dir/etc/uhp-lane.stamp"
}

want_root="linux-headers-$KVER=$PKGVER
${root_pkgs[*]}"
if [[ ! -f $root/etc/uhp-lane.stamp ]]; then
    tmp=$base/.tmp-root
    if [[ -e $tmp ]]; then
        # in_root's mounts live in private namespaces, but be careful anyway
        grep -q " $tmp/" /proc/mounts && die "something is mounted below $tmp: unmount it first"
        rm -rf --one-file-system "$tmp"
    fi
    if [[ -e $root ]]; then
        grep -q " $root/" /proc/mounts && die "something is mounted below $root: unmount it first"
        say "$root has no stamp (an earlier run died?): starting over"
        rm -rf --one-file-system "$root"
    fi
    say "debootstrap --variant=minbase sid (about a minute)"
    t0=$(date +%s)
    debootstrap --variant=minbase --keyring="$keyring" sid "$tmp" "$mirror" >"$base/debootstrap.log" 2>&1 || {
        tail -n 30 "$base/debootstrap.log" >&2
        die "debootstrap failed (log: $base/debootstrap.log)"
    }
    say "debootstrap done in $(($(date +%s) - t0)) s"
    setup_apt "$tmp"
    install_headers "$tmp"
    mv "$tmp" "$root"
elif [[ $(cat "$root/etc/uhp-lane.stamp") != "$want_root" ]]; then
    say "the build root has $(head -n1 "$root/etc/uhp-lane.stamp"); sid now has $KVER ($PKGVER)"
    rm -f "$root/etc/uhp-lane.stamp"
    setup_apt "$root"
    install_headers "$root"
fi
KDIR=/usr/src/linux-headers-$KVER

# ---- lane.env ---------------------------------------------------------------

config=$MODULES/config
PREEMPT_RT=0
grep -q '^CONFIG_PREEMPT_RT=y' "$config" && PREEMPT_RT=1
DEBUG=0
grep -qE '^CONFIG_(KASAN|PROVE_LOCKING|DEBUG_ATOMIC_SLEEP)=y' "$config" && DEBUG=1

# shq WORD: single-quoted if it needs quoting (a + or a / does not).
shq() {
    if [[ $1 =~ ^[A-Za-z0-9_.,:/+=@%-]*$ ]]; then printf '%s' "$1"
    else printf "'%s'" "${1//\'/\'\\\'\'}"; fi
}
{
    echo "LANE=unstable"
    echo "KVER=$(shq "$KVER")"
    echo "KDIR=$(shq "$KDIR")"
    echo "BUILD_ROOT=$(shq "$root")"
    echo "VMLINUZ=$(shq "$VMLINUZ")"
    echo "MODULES=$(shq "$MODULES")"
    echo "PREEMPT_RT=$PREEMPT_RT"
    echo "DEBUG=$DEBUG"
} >"$laneenv.tmp"
if [[ -f $laneenv ]] && cmp -s "$laneenv.tmp" "$laneenv"; then
    rm -f "$laneenv.tmp"
else
    mv "$laneenv.tmp" "$laneenv"
fi

if [[ $mode != check ]]; then
    echo "$laneenv"
    exit 0
fi

# ---- --check: build this tree in the build root -----------------------------

# copy_tree DEST: tracked and untracked-but-not-ignored files, as dkms-build.sh does.
copy_tree() {
    rm -rf "$1"
    mkdir -p "$1"
    (cd "$repo" && git ls-files -z -co --exclude-standard |
        while IFS= read -r -d '' f; do [[ -f $f ]] && printf '%s\0' "$f"; done |
        tar --null -T - -cf -) | tar -C "$1" -xf -
}
# (still under the lock: no other run may rebuild the root meanwhile)
rc=0
copy_tree "$root/tmp/uhp-src"
say "check: chroot $root make -k -C $KDIR M=/tmp/uhp-src modules"
if chroot "$root" make -k -C "$KDIR" M=/tmp/uhp-src modules >"$base/check-make.log" 2>&1; then
    say "check: make: OK ($(cd "$root/tmp/uhp-src" && find . -name '*.ko' | sort | tr '\n' ' '))"
else
    rc=1
    say "check: make FAILED; errors (full log: $base/check-make.log):"
    grep -E 'error:|Error [0-9]' "$base/check-make.log" | sed 's/^/    /' >&2 || true
fi

version=$(sed -n 's/^PACKAGE_VERSION="\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$repo/dkms.conf")
copy_tree "$root/usr/src/uhp-$version"
in_root "$root" dkms remove "uhp/$version" --all >/dev/null 2>&1 || true
say "check: dkms add + build uhp/$version -k $KVER in the build root"
if in_root "$root" dkms add -m uhp -v "$version" >"$base/check-dkms.log" 2>&1 &&
   in_root "$root" dkms build -m uhp -v "$version" -k "$KVER" --kernelsourcedir "$KDIR" >>"$base/check-dkms.log" 2>&1; then
    say "check: dkms build: OK"
else
    rc=1
    say "check: dkms build FAILED (log: $base/check-dkms.log; make.log below)"
    tail -n 15 "$base/check-dkms.log" | sed 's/^/    /' >&2
    log=$root/var/lib/dkms/uhp/$version/build/make.log
    if [[ -f $log ]]; then grep -E 'error:|Error [0-9]' "$log" | sed 's/^/    /' >&2 || true; fi
fi
# Leave no registration behind: the build root stays headers + toolchain.
in_root "$root" dkms remove "uhp/$version" --all >/dev/null 2>&1 || true
rm -rf "$root/usr/src/uhp-$version"
exit $rc
