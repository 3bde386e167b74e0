#!/usr/bin/env bash
# checkpatch.pl --strict over every kernel-side file of uhp (kmod/, samples/,
# kunit/, uapi/, tests/kasan/), with the checkpatch of the newest kernel
# source Debian 12 ships (linux-source-6.12), extracted once into the cache.
#
# Three rules are off where they cannot apply, and only there:
#   uapi/          BIT_MACRO: BIT() does not exist for userspace; flags are
#                  (1U << n), as in io_uring's and iommufd's uapi.
#   kmod/compat.h  LINUX_VERSION_CODE, CONSTANT_COMPARISON: the one place
#                  whose job is to test the kernel version.
#   everywhere     MACRO_ARG_REUSE: uhp's two multi-use macro arguments are
#                  an ioctl number and an asm string, constants both.
set -euo pipefail

die() { echo "checkpatch.sh: $*" >&2; exit 1; }

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${UHP_CACHE:-/var/cache/uhp}/checkpatch
tarball=/usr/src/linux-source-6.12.tar.xz
cp=$cache/linux-source-6.12/scripts/checkpatch.pl

if [[ ! -f $cp || $tarball -nt $cp ]]; then
    [[ -f $tarball ]] || die "$tarball not found (scripts/deps.sh installs linux-source-6.12)"
    mkdir -p "$cache"
    tar -xJf "$tarball" -C "$cache" linux-source-6.12/scripts/checkpatch.pl \
        linux-source-6.12/scripts/spelling.txt linux-source-6.12/scripts/const_structs.checkpatch
    touch "$cp"
fi

cd "$repo"
run() {
    local ignore=$1; shift
    [[ $# -gt 0 ]] || return 0
    perl "$cp" --no-tree --strict --terse --show-types --ignore "MACRO_ARG_REUSE${ignore:+,$ignore}" -f "$@" |
        grep -v '^total: 0 errors, 0 warnings, 0 checks' || true
}
mapfile -t uapi < <(git ls-files -co --exclude-standard 'uapi/*.h')
mapfile -t compat < <(git ls-files -co --exclude-standard kmod/compat.h)
mapfile -t rest < <(git ls-files -co --exclude-standard 'kmod/*.[ch]' 'samples/*.[ch]' 'kunit/*.[ch]' 'tests/kasan/*.[ch]' |
                    grep -vx kmod/compat.h)
out=$( { run BIT_MACRO "${uapi[@]}"; run LINUX_VERSION_CODE,CONSTANT_COMPARISON "${compat[@]}"; run "" "${rest[@]}"; } )
if [[ -n $out ]]; then
    echo "$out"
    die "checkpatch --strict found the above"
fi
echo "checkpatch.sh: $(( ${#uapi[@]} + ${#compat[@]} + ${#rest[@]} )) files clean (--strict)"
