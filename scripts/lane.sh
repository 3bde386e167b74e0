#!/usr/bin/env bash
# The kernel lanes uhp is built and tested on, and where each one's pieces are.
#
#   scripts/lane.sh NAME     prepare lane NAME (cached) and print its lane.env
#   scripts/lane.sh --list   the lanes `make check` runs by default, in order
#
# Lanes:
#   default   Debian 12's default kernel (6.1)          scripts/lanes/debian.sh
#   6.12      Debian 12's 6.12 LTS                       scripts/lanes/debian.sh
#   6.12-rt   its PREEMPT_RT flavour                     scripts/lanes/debian.sh
#   unstable  the newest kernel of Debian unstable,      scripts/lanes/unstable.sh
#             built in a sid chroot
#   debug     6.12 built from Debian's source with KASAN, scripts/lanes/debug.sh
#             KFENCE, lockdep, DEBUG_ATOMIC_SLEEP, ...
#
# Every lane script caches what it downloads or builds under $UHP_CACHE
# (default /var/cache/uhp), outside the work tree, so fresh clones and
# `make clean` reuse it, and writes $UHP_CACHE/lanes/NAME/lane.env, a shell
# fragment with:
#   LANE        the lane's name
#   KVER        the guest kernel's release (what a module's vermagic names)
#   KDIR        the kbuild directory to build modules against
#   BUILD_ROOT  empty, or a chroot in which builds run (KDIR is inside it)
#   VMLINUZ     the kernel image the guest boots
#   MODULES     the image's lib/modules/KVER (empty: everything built in)
#   PREEMPT_RT  1 on a PREEMPT_RT kernel
#   DEBUG       1 on the debug kernel
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
all="default 6.12 6.12-rt unstable debug"

case ${1:-} in
    --list) echo "$all" ;;
    default|6.12|6.12-rt) exec "$here/lanes/debian.sh" "$1" ;;
    unstable) exec "$here/lanes/unstable.sh" ;;
    debug) exec "$here/lanes/debug.sh" ;;
    *) echo "lane.sh: unknown lane '${1:-}' (lanes: $all)" >&2; exit 2 ;;
esac
