#!/usr/bin/env bash
# Run the KUnit suites (kunit/*_kunit.c) on UML with the kernel's own runner.
#
#   scripts/kunit.sh [extra kunit.py run options, e.g. --raw_output]
#   UHP_KUNIT_SOURCE=6.12 scripts/kunit.sh      the same on linux-source-6.12
#
# kunit.py needs a kernel tree, so one is unpacked from Debian's
# linux-source-6.1 into $UHP_CACHE/kunit/linux-source-6.1 (default
# /var/cache/uhp; once, again only when the tarball changes) and uhp is
# linked into it as drivers/misc/uhp/:
#
#   drivers/misc/uhp/Makefile     -> kunit/Makefile.intree
#   drivers/misc/uhp/Kconfig      -> kunit/Kconfig.intree
#   drivers/misc/uhp/uhp.kbuild   -> Kbuild (the module's object list, uhp-y)
#   drivers/misc/uhp/{kmod,uapi/linux,kunit}/*.[ch] -> the same files here
#
# Only .c and .h files are linked, one symlink each, never a directory: the
# out-of-tree `make module` leaves kmod/*.o beside the sources, and kbuild
# must not find those through its VPATH. The links are redone on every run,
# so new files appear and removed ones go. The UML objects go to
# $UHP_CACHE/kunit/uml (kept: a rebuild after a one-file change takes
# seconds). A lock serialises runs (of any clone) that share the tree, and
# the log of this run is copied to build/kunit/test-<source>.log.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# In the cache outside the clone (as the kernel lanes): a fresh clone or
# `make clean` then rebuilds only uhp's own objects, not all of UML.
work=${UHP_CACHE:-/var/cache/uhp}/kunit
# Which Debian kernel source: 6.1 (default) or 6.12 (UHP_KUNIT_SOURCE=6.12).
src=${UHP_KUNIT_SOURCE:-6.1}
[[ $src =~ ^[0-9]+\.[0-9]+$ ]] || { echo "kunit.sh: bad UHP_KUNIT_SOURCE '$src'" >&2; exit 2; }
tarball=/usr/src/linux-source-$src.tar.xz
tree=$work/linux-source-$src
uml=$work/uml-$src

die() { echo "kunit.sh: $*" >&2; exit 1; }

[[ -f $tarball ]] || die "$tarball not found (scripts/deps.sh installs linux-source-$src)"
for tool in bc flex bison python3 flock; do
    command -v "$tool" >/dev/null || die "$tool not found (scripts/deps.sh)"
done

mkdir -p "$work"
exec 9>"$work/.lock-$src"
if ! flock -n 9; then
    echo "kunit.sh: waiting for another run on $work" >&2
    flock 9
fi

# ---- the kernel tree, unpacked once per tarball ------------------------------
stamp="$(stat -c '%s %Y' "$tarball") $tarball"
if [[ ! -f $tree/.uhp-unpacked || $(<"$tree/.uhp-unpacked") != "$stamp" ]]; then
    echo "kunit.sh: unpacking $tarball into $tree" >&2
    rm -rf "$tree" "$tree.tmp" "$uml"
    mkdir -p "$tree.tmp"
    tar -xJf "$tarball" -C "$tree.tmp" --strip-components=1
    echo "$stamp" >"$tree.tmp/.uhp-unpacked"
    mv "$tree.tmp" "$tree"
fi

# ---- link uhp into drivers/misc/uhp -----------------------------------------
dst=$tree/drivers/misc/uhp

# link TARGET LINK: (re)point LINK at TARGET unless it already does.
link() {
    [[ -L $2 && $(readlink "$2") == "$1" ]] || ln -sfn "$1" "$2"
}

mkdir -p "$dst/kmod" "$dst/uapi/linux" "$dst/kunit"
link "$root/kunit/Makefile.intree" "$dst/Makefile"
link "$root/kunit/Kconfig.intree" "$dst/Kconfig"
link "$root/Kbuild" "$dst/uhp.kbuild"
link "$root/VERSION" "$dst/VERSION"
for d in kmod uapi/linux kunit; do
    # Drop links whose file went away (or anything that is not one of ours).
    for f in "$dst/$d"/*; do
        [[ -e $f || -L $f ]] || continue
        [[ -L $f && -f $f && $f == *.[ch] ]] || rm -rf "$f"
    done
    for f in "$root/$d"/*.[ch]; do
        [[ -f $f ]] && link "$f" "$dst/$d/${f##*/}"
    done
done

# Hook the directory into drivers/misc (idempotent: once per unpacked tree).
grep -q '^source "drivers/misc/uhp/Kconfig"$' "$tree/drivers/misc/Kconfig" ||
    sed -i 's|^endmenu$|source "drivers/misc/uhp/Kconfig"\n&|' "$tree/drivers/misc/Kconfig"
grep -q '^source "drivers/misc/uhp/Kconfig"$' "$tree/drivers/misc/Kconfig" ||
    die "could not hook drivers/misc/Kconfig"
# shellcheck disable=SC2016 # $(CONFIG_UHP) is make's, not the shell's
grep -q '^obj-$(CONFIG_UHP)' "$tree/drivers/misc/Makefile" ||
    echo 'obj-$(CONFIG_UHP)		+= uhp/' >>"$tree/drivers/misc/Makefile"

# ---- build and run -------------------------------------------------------------
# kunit.py changes into the kernel tree, so every path it gets is absolute.
cd "$tree"
rm -f "$uml/test.log"
rc=0
python3 tools/testing/kunit/kunit.py run --jobs "${KUNIT_JOBS:-2}" \
    --build_dir "$uml" --kunitconfig "$root/kunit/.kunitconfig" "$@" || rc=$?

# kunit.py shows a skipped case by name only: print why it was skipped.
if [[ -f $uml/test.log ]]; then
    sed -n 's/^[[:space:]]*ok [0-9]* \(.*\) # SKIP \(.*\)$/kunit.sh: skipped \1: \2/p' "$uml/test.log"
    mkdir -p "$root/build/kunit"
    cp "$uml/test.log" "$root/build/kunit/test-$src.log"
fi
exit $rc
