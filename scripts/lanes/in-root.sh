#!/usr/bin/env bash
# Run a command inside a lane's build root (scripts/lane.sh: BUILD_ROOT), or
# on the host when the lane has none.
#
#   scripts/lanes/in-root.sh BUILD_ROOT CMD [ARGS...]     (BUILD_ROOT may be "")
#
# Inside, /proc is mounted (dkms and objtool read it) in a private mount
# namespace, so nothing stays mounted after the command, whatever happens.
set -euo pipefail

root=$1
shift
if [[ -z $root ]]; then
    exec "$@"
fi
[[ -d $root ]] || { echo "in-root.sh: no build root at $root" >&2; exit 1; }
exec unshare --mount --propagation private -- \
    sh -c 'mount -t proc proc "$0/proc" && exec chroot "$0" "$@"' "$root" "$@"
