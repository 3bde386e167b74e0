#!/usr/bin/env bash
# Install the Debian packages the build and the tests need, if any is missing.
#
# Quick and silent when everything is present (one dpkg-query call), so every
# `make check` can run it.  Needs root to install; as another user it prints
# the exact apt command and fails, rather than half-working later.
#
#   scripts/deps.sh           what `make check`, `make run` and `make kunit` need
#   scripts/deps.sh --bench   that, plus the benchmarks' peers (make bench*)
set -euo pipefail

pkgs=(
    make gcc libc6-dev          # userlib, the static guest tests
    g++                         # header_test: the public headers in C++
    linux-headers-amd64         # KDIR for the module; names <kver> (scripts/kver.sh)
    dkms                        # `make check` builds uhp.ko through dkms
    dwarves                     # pahole: 6.12+ headers build BTF for modules
    sparse                      # scripts/sparse.sh, on every lane
    debootstrap                 # the sid chroot of the "unstable" lane
    linux-source-6.12 libelf-dev libssl-dev  # the "debug" lane's kernel
    kmod                        # modinfo on the host
    qemu-system-x86             # the test guest (TCG)
    busybox-static              # the guest's userland
    cpio                        # initramfs
    xz-utils zstd               # modules in the image may be compressed
    liburing-dev libnuma-dev    # static libs for tests and demos
    libisal-dev                 # ISA-L crc32_iscsi: peer in crc32c_test and make bench
    git                         # the dkms source copy uses git ls-files
    valgrind                    # the fast-path instruction budget (callgrind)
    python3-matplotlib          # bench/plot (make bench), tested by make check
    linux-source-6.1 bc flex bison  # `make kunit`: a UML kernel tree for KUnit
    dpkg-dev debhelper dh-dkms lintian  # tests/host/deb_test.sh: debian/ builds, lintian-clean
    groff-base pkg-config       # scripts/man-check.sh; install_test through uhp.pc
    python3-pytest              # python/: the binding's tests
    systemtap-sdt-dev gdb       # libuhp's USDT probes (sys/sdt.h); usdt_test fires one
    nats-server libnats-dev jq curl  # uhp-bridge and its tests (tests/bridge/run.sh)
    systemd                     # tests/host/systemd_test.sh: systemd-analyze verify, systemd-sysusers
    golang-go golang-github-nats-io-go-nats-dev  # tests/bridge: the Go client agent
)
if [[ ${1:-} == --bench ]]; then
    pkgs+=(
        clang libbpf-dev libelf-dev zlib1g-dev  # `make bench-guest`: the BPF ringbuf peer
        libck-dev dpdk-dev          # bench_throughput peers: ck_ring, rte_ring
        iceoryx libiceoryx-binding-c-dev  # bench_throughput peer: iceoryx (C binding, RouDi)
        libzmq3-dev                 # bench_agent_simulation peer: ZeroMQ ipc://
    )
fi

# One dpkg-query for all: it lists the packages it knows (any state) and
# complains on stderr about the ones it has never seen; both count as missing
# unless listed as "install ok installed".
installed=" $( (dpkg-query -W -f='${Package}=${Status}\n' "${pkgs[@]}" 2>/dev/null || true) |
              sed -n 's/=install ok installed$//p' | tr '\n' ' ') "
missing=()
for p in "${pkgs[@]}"; do
    [[ $installed == *" $p "* ]] || missing+=("$p")
done

[[ ${#missing[@]} -eq 0 ]] && exit 0

cmd="apt-get install -y --no-install-recommends ${missing[*]}"
if [[ $(id -u) -ne 0 ]]; then
    echo "deps.sh: missing packages: ${missing[*]}" >&2
    echo "deps.sh: run as root:  apt-get update && $cmd" >&2
    exit 1
fi
echo "deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
$cmd
