#!/usr/bin/env bash
# Print the kernel release (<kver>, e.g. 6.1.0-56-amd64) the project builds
# and tests against.
#
# It is derived from the installed Debian meta-package linux-headers-amd64,
# never hard-coded: Debian bumps the ABI name (the "-56-") with kernel
# updates, and the headers, the downloaded guest image and dkms must all
# agree on it.  The meta-package depends on exactly one
# linux-headers-<kver>, so that dependency names <kver>.
#
#   scripts/kver.sh            -> 6.1.0-56-amd64
#   scripts/kver.sh --kdir     -> /usr/src/linux-headers-6.1.0-56-amd64
#   scripts/kver.sh --version  -> Debian version of linux-headers-<kver>
#
# UHP_KVER=<kver> in the environment overrides the derivation (for trying
# another installed kernel); it is still checked against /usr/src.
set -euo pipefail

die() { echo "kver.sh: $*" >&2; exit 1; }

kver=${UHP_KVER:-}
if [[ -z $kver ]]; then
    command -v dpkg-query >/dev/null || die "dpkg-query not found: this rig needs Debian (or pass KDIR=... to make module)"
    deps=$(dpkg-query -W -f='${Status}|${Depends}\n' linux-headers-amd64 2>/dev/null) ||
        die "linux-headers-amd64 is not installed (run scripts/deps.sh)"
    [[ ${deps%%|*} == "install ok installed" ]] ||
        die "linux-headers-amd64 is not fully installed (${deps%%|*}); run scripts/deps.sh"
    # Depends: "linux-headers-6.1.0-56-amd64 (= 6.1.192-2)"
    kver=$(sed -n 's/.*linux-headers-\([^ ,|]*-amd64\).*/\1/p' <<<"${deps#*|}")
    [[ -n $kver ]] || die "cannot find linux-headers-<kver> in the dependencies of linux-headers-amd64: '${deps#*|}'"
fi

kdir=/usr/src/linux-headers-$kver
[[ -d $kdir ]] || die "$kdir is missing (is linux-headers-$kver installed?)"

case ${1:-} in
    "") echo "$kver" ;;
    --kdir) echo "$kdir" ;;
    --version) dpkg-query -W -f='${Version}\n' "linux-headers-$kver" ;;
    *) die "usage: $0 [--kdir|--version]" ;;
esac
