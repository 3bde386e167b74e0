#!/usr/bin/env bash
# The "debug" kernel lane: build (once, cached) a guest kernel with the
# kernel's own bug detectors and print the path of its lane.env.
#
#   scripts/lanes/debug.sh    -> $UHP_CACHE/lanes/debug/lane.env (one line on stdout)
#
# lane.env (shell-sourceable, one VAR=value a line, values unquoted):
#   LANE=debug
#   KVER=<make -s kernelrelease>     e.g. 6.12.118-uhp-debug
#   KDIR=<the built tree>            make -C $KDIR M=<dir> modules
#   BUILD_ROOT=                      empty: modules build on the host
#   VMLINUZ=<tree>/arch/x86/boot/bzImage
#   MODULES=                         empty: CRC32C etc. are built in
#   PREEMPT_RT=0
#   DEBUG=1
#
# Why a kernel of our own: Debian's kernels have no KASAN, no lockdep, no
# DEBUG_ATOMIC_SLEEP, so a clean console on them proves little.  This one is
# Debian's linux-source-6.12 (package linux-source-6.12, installed if the
# tarball is missing) configured from `make tinyconfig` plus
# scripts/lanes/debug.config: KASAN (generic, inline, vmalloc), KFENCE,
# PROVE_LOCKING, DEBUG_ATOMIC_SLEEP, DEBUG_PREEMPT, DEBUG_VM, DEBUG_OBJECTS,
# DEBUG_LIST, and just enough of the rest for the busybox guest, uhp.ko and
# the tests (2 NUMA nodes via ACPI, serial console, io_uring, AF_UNIX, BPF).
# Everything is built in, so the guest loads no module but uhp's own.
#
# Why this shape:
# - tinyconfig keeps the build short (about 10 min cold on 2 idle CPUs,
#   14-17 min measured while other jobs shared them; a distribution config
#   would take hours), but it says "n" to every question, so a
#   fragment option whose dependency is missing would silently vanish in
#   olddefconfig.  Every line of the fragment is therefore checked against
#   the final .config and a mismatch fails the build: a lane that quietly
#   lost KASAN would pass everything and prove nothing.
# - The tree lives in $UHP_CACHE/debug/linux-6.12-<Debian version of
#   linux-source-6.12>/, so a new source package builds a new tree (older
#   ones are removed).  A stamp in the tree records what it was built from
#   (this recipe's version, the fragment's sha256, the tarball's size and
#   mtime, the compiler); the build runs in <tree>.tmp and is renamed only
#   when complete, so an interrupted build is never trusted.  A changed
#   fragment rebuilds incrementally (kbuild recompiles only what the
#   changed options touch); a changed tarball unpacks afresh.
# - `make modules` (no in-tree module is =m, so it only runs modpost) leaves
#   Module.symvers, and modules_prepare the rest that `make -C $KDIR M=...`
#   needs; without Module.symvers modpost would only warn about undefined
#   symbols.
# - A flock serialises runs; the cached path takes well under a second.
# - stdout carries only the lane.env path; progress goes to stderr and the
#   full build output to <tree>/.uhp-build.log (its tail is shown on failure).
#
# Environment: UHP_CACHE (default /var/cache/uhp), UHP_JOBS (default nproc).
set -euo pipefail

die() { echo "debug.sh: $*" >&2; exit 1; }
say() { echo "debug.sh: $*" >&2; }

# Bump when the build steps change in a way that needs a rebuild.
recipe=1

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
fragment=$repo/scripts/lanes/debug.config
cache=${UHP_CACHE:-/var/cache/uhp}
jobs=${UHP_JOBS:-$(nproc)}
srcpkg=linux-source-6.12
tarball=/usr/src/$srcpkg.tar.xz

[[ -f $fragment ]] || die "$fragment is missing"
# The kernel's make must not inherit a caller's make or cross settings (this
# script may run from a Makefile recipe).
unset ARCH CROSS_COMPILE KBUILD_OUTPUT O M MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES \
      KCONFIG_CONFIG KCONFIG_ALLCONFIG LOCALVERSION

# apt_install PKG...: install packages (root only), refreshing the lists once
# if the first attempt fails (stale lists).
apt_install() {
    [[ $(id -u) -eq 0 ]] ||
        die "missing packages: $* (as root: apt-get install --no-install-recommends $*)"
    say "installing $*"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends "$@" >&2 ||
        { apt-get update -q >&2 && apt-get install -y -q --no-install-recommends "$@" >&2; } ||
        die "apt-get install $* failed"
}

# ---- what the build needs ----------------------------------------------------
[[ -f $tarball ]] || apt_install "$srcpkg"
[[ -f $tarball ]] || die "$tarball still missing after installing $srcpkg"
missing=()
for t in make:make gcc:gcc bc:bc flex:flex bison:bison perl:perl xz:xz-utils flock:util-linux; do
    command -v "${t%%:*}" >/dev/null || missing+=("${t#*:}")
done
[[ -f /usr/include/gelf.h ]] || missing+=(libelf-dev)          # objtool
[[ -f /usr/include/openssl/ssl.h ]] || missing+=(libssl-dev)   # scripts/ (certs tools)
[[ ${#missing[@]} -eq 0 ]] || apt_install "${missing[@]}"

debver=$(dpkg-query -W -f='${Version}' "$srcpkg" 2>/dev/null) ||
    die "$tarball exists but $srcpkg is not installed (dpkg-query knows no version)"
[[ -n $debver ]] || die "no version for $srcpkg"

topdir=$cache/debug
tree=$topdir/linux-6.12-$debver
work=$tree.tmp
lanedir=$cache/lanes/debug
laneenv=$lanedir/lane.env

# lane.env is read by shells and by simple parsers alike, so its values stay
# unquoted: refuse paths that would need quoting.
[[ $tree =~ ^/[A-Za-z0-9/._+~-]+$ && $laneenv =~ ^/[A-Za-z0-9/._+~-]+$ ]] ||
    die "UHP_CACHE must be an absolute path of plain characters (got '$cache')"

if ! mkdir -p "$topdir" "$lanedir" 2>/dev/null || [[ ! -w $topdir || ! -w $lanedir ]]; then
    die "cannot write to $topdir and $lanedir (run as root, or set UHP_CACHE to a writable directory)"
fi
exec 9>"$topdir/.lock"
if ! flock -n 9; then
    say "waiting for another build in $topdir"
    flock 9
fi

# ---- is the cached tree current? ---------------------------------------------
stamp_want="recipe=$recipe
fragment=$(sha256sum <"$fragment" | cut -d' ' -f1)
tarball=$(stat -c '%s %Y' "$tarball") $tarball
compiler=$(gcc --version | head -n 1)"
unpack_want="$(stat -c '%s %Y' "$tarball") $tarball"

# write_lane_env KVER: (re)write lane.env atomically if its content differs.
write_lane_env() {
    local want
    want="LANE=debug
KVER=$1
KDIR=$tree
BUILD_ROOT=
VMLINUZ=$tree/arch/x86/boot/bzImage
MODULES=
PREEMPT_RT=0
DEBUG=1"
    if [[ ! -f $laneenv || $(<"$laneenv") != "$want" ]]; then
        printf '%s\n' "$want" >"$laneenv.tmp"
        mv -f "$laneenv.tmp" "$laneenv"
    fi
    echo "$laneenv"
}

if [[ -f $tree/.uhp-lane-stamp && $(<"$tree/.uhp-lane-stamp") == "$stamp_want" &&
      -f $tree/arch/x86/boot/bzImage && -s $tree/.uhp-kernelrelease ]]; then
    write_lane_env "$(<"$tree/.uhp-kernelrelease")"
    exit 0
fi

# ---- build -------------------------------------------------------------------
t_start=$(date +%s)
log=$work/.uhp-build.log

# run STEP CMD...: run a build step in the work tree, output to the log.
run() {
    local step=$1 t0=$SECONDS
    shift
    say "$step"
    echo "==== $step: $*" >>"$log"
    if ! (cd "$work" && "$@") >>"$log" 2>&1; then
        tail -n 40 "$log" | sed 's/^/    /' >&2
        die "$step failed after $((SECONDS - t0))s (full log: $log)"
    fi
    say "$step: $((SECONDS - t0))s"
}

# A stale tree (older fragment or recipe, same source) becomes the work
# tree, so kbuild only recompiles what changed; an interrupted earlier build
# in $work is resumed the same way.  Either is reused only if it was
# unpacked from this very tarball.
if [[ -d $tree ]]; then
    if [[ -d $work ]]; then rm -rf "$tree"; else mv "$tree" "$work"; fi
fi
if [[ ! -f $work/.uhp-unpacked || $(<"$work/.uhp-unpacked") != "$unpack_want" ]]; then
    rm -rf "$work"
    mkdir -p "$work"
    say "unpacking $tarball ($srcpkg $debver) into $work"
    t0=$SECONDS
    tar -xJf "$tarball" -C "$work" --strip-components=1 ||
        die "unpacking $tarball failed"
    echo "$unpack_want" >"$work/.uhp-unpacked"
    say "unpacked in $((SECONDS - t0))s"
else
    say "reusing the unpacked tree $work (incremental build)"
fi
rm -f "$work/.uhp-lane-stamp" "$work/.uhp-kernelrelease"
echo "==== $(date -u '+%F %T') build of $srcpkg $debver, $jobs jobs" >>"$log"

run "make tinyconfig" make tinyconfig
run "merge $fragment" scripts/kconfig/merge_config.sh -m .config "$fragment"
run "make olddefconfig" make olddefconfig

# Every option of the fragment must have survived olddefconfig.
bad=()
while IFS= read -r line; do
    if [[ $line =~ ^(CONFIG_[A-Za-z0-9_]+)=(.*)$ ]]; then
        grep -qxF -- "$line" "$work/.config" ||
            bad+=("$line -> $(grep -E "^(# )?${BASH_REMATCH[1]}[= ]" "$work/.config" || echo 'absent (unmet dependency?)')")
    elif [[ $line =~ ^#\ (CONFIG_[A-Za-z0-9_]+)\ is\ not\ set$ ]]; then
        ! grep -qE "^${BASH_REMATCH[1]}=" "$work/.config" ||
            bad+=("$line -> $(grep -E "^${BASH_REMATCH[1]}=" "$work/.config")")
    fi
done <"$fragment"
if [[ ${#bad[@]} -gt 0 ]]; then
    printf '    %s\n' "${bad[@]}" >&2
    die "${#bad[@]} option(s) of $fragment did not stick in $work/.config"
fi
say "all $(grep -cE '^(CONFIG_|# CONFIG_.* is not set$)' "$fragment") options of the fragment are set"

run "make -j$jobs bzImage" make -j"$jobs" bzImage
# No in-tree module is =m: this only runs modpost, which writes Module.symvers.
run "make modules" make -j"$jobs" modules
run "make modules_prepare" make -j"$jobs" modules_prepare
[[ -f $work/arch/x86/boot/bzImage ]] || die "no arch/x86/boot/bzImage in $work"
[[ -f $work/Module.symvers ]] || die "no Module.symvers in $work"

kver=$(cd "$work" && make -s kernelrelease 2>>"$log") || die "make kernelrelease failed"
[[ $kver =~ ^6\.12\.[0-9]+[A-Za-z0-9._+-]*$ ]] || die "odd kernelrelease '$kver'"
echo "$kver" >"$work/.uhp-kernelrelease"
echo "$stamp_want" >"$work/.uhp-lane-stamp"
mv "$work" "$tree"

# Trees of older source packages are dead weight (GBs each).
for old in "$topdir"/linux-6.12-*; do
    [[ -e $old && $old != "$tree" && $old != "$work" ]] || continue
    say "removing the outdated $old"
    rm -rf "$old"
done

secs=$(($(date +%s) - t_start))
say "built $kver in $((secs / 60))m$((secs % 60))s: $tree"
echo "$(date -u '+%F %T') built in ${secs}s with $jobs jobs" >>"$tree/.uhp-build.log"
write_lane_env "$kver"
