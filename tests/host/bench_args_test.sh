#!/bin/sh
# bench_args_test.sh: the benchmarks' command-line numbers and --only.
#
#   tests/host/bench_args_test.sh BUILD_BENCH_DIR   (e.g. build/bench)
#
# Counts take K/M/G = 10^3/10^6/10^9, sizes K/M/G = 2^10/2^20/2^30, and
# anything else (junk, trailing characters, a sign, empty, out of range)
# is a usage error: exit status 2 and the option named on stderr (see
# bench/bench_common.h, bench_arg_count / bench_arg_size).
# bench_throughput --only matches implementation names exactly, and
# --cores p|e|any picks the CPUs from the topology (a fake hybrid machine
# under $UHP_SYSFS_ROOT here: CPUs 0-1 P cores, 2-3 E cores).
#
# TAP on stdout; exit status 1 if any test failed. bench_throughput,
# bench_latency and bench_agent_simulation must exist in the directory;
# the others are tested when they were built (else the test is skipped).
# Runs small counts, --rounds 1: a few seconds on a 2-CPU host.

if [ $# -ne 1 ] || [ ! -d "$1" ]; then
	echo "usage: $0 BUILD_BENCH_DIR" >&2
	exit 2
fi
bin=$(cd "$1" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/bench_args.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM
# the programs write JSON lines into $BENCH_OUT: not into the build tree
BENCH_OUT=$tmp
export BENCH_OUT
unset BENCH_SIZES
cd "$tmp" || exit 2
# a hung benchmark fails its test instead of the whole run
to=
command -v timeout >/dev/null 2>&1 && to="timeout 20"

n=0
failed=0
plan=33
echo "1..$plan"

# result STATUS DESC: one TAP line (STATUS 0: ok), the run's output as
# diagnostics on failure.
result() {
	n=$((n + 1))
	if [ "$1" = 0 ]; then
		echo "ok $n - $2"
	else
		echo "not ok $n - $2"
		failed=1
		echo "# exit status $rc"
		sed -n '1,5s/^/#   stdout: /p' "$tmp/out"
		sed -n '1,5s/^/#   stderr: /p' "$tmp/err"
	fi
}

skip() {
	n=$((n + 1))
	echo "ok $n - $1 # SKIP $2"
}

# run PROG ARGS...: $rc, $tmp/out, $tmp/err
run() {
	prog=$1
	shift
	# shellcheck disable=SC2086 # $to: empty or "timeout 20"
	$to "$bin/$prog" "$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
}

# have PROG REQUIRED DESC: 0 if PROG was built; else a not ok (REQUIRED=1)
# or a skip (0) for DESC, and 1.
have() {
	[ -x "$bin/$1" ] && return 0
	rc=127
	: >"$tmp/out"
	echo "$bin/$1 missing" >"$tmp/err"
	if [ "$2" = 1 ]; then
		result 1 "$3"
	else
		skip "$3" "$1 not built"
	fi
	return 1
}

# usage_error REQUIRED OPTION PROG ARGS...: exit status 2 and OPTION named
# on stderr. ARGS come after options that keep a run short, should the
# program take them (the test then fails in a second, not after minutes).
usage_error() {
	req=$1 opt=$2 prog=$3
	shift 3
	desc=$prog
	for a; do
		case $a in
		'' | *' '*) desc="$desc '$a'" ;;
		*) desc="$desc $a" ;;
		esac
	done
	desc="$desc: exit 2 naming $opt"
	have "$prog" "$req" "$desc" || return 0
	case $prog in
	bench_throughput) set -- --only uhp --rounds 1 --messages 20K "$@" ;;
	bench_latency) set -- --duration 0.1 "$@" ;;
	bench_agent_simulation)
		set -- --agents 4 --messages 2K --pattern uniform --only uhp "$@" ;;
	bench_numa)
		set -- --messages 2K --rounds 1 --duration 0.1 --sizes 64 "$@" ;;
	stress_test) set -- --duration 0.2 "$@" ;;
	esac
	run "$prog" "$@"
	[ $rc -eq 2 ] && grep -qF -e "$opt" "$tmp/err"
	result $? "$desc"
}

# accepted REQUIRED PATTERN DESC PROG ARGS...: exit status 0 and a line of
# stdout matching PATTERN (grep -E).
accepted() {
	req=$1 pat=$2 desc=$3 prog=$4
	shift 4
	have "$prog" "$req" "$desc" || return 0
	run "$prog" "$@"
	[ $rc -eq 0 ] && grep -qE -e "$pat" "$tmp/out"
	result $? "$desc"
}

# rows: bench_throughput's result rows, "impl size K | ...", one impl a line
rows() {
	awk '/^[a-z_]+ +[0-9]+ +[0-9]+ \|/ { print $1 }' "$tmp/out" | tr '\n' ' '
}


# ---- bench_throughput ----
accepted 1 '^# 20000 messages of 64 bytes' \
	"bench_throughput --messages 20K means 20000" \
	bench_throughput --only uhp --rounds 1 --messages 20K
[ "$(rows)" = "uhp " ]
result $? "bench_throughput --only uhp runs the uhp row only (got: $(rows))"
accepted 1 '^# 1000000 messages of 64 bytes' \
	"bench_throughput --messages 1M means 1000000" \
	bench_throughput --only uhp --rounds 1 --messages 1M
accepted 1 '^# 4096 messages of 1024 bytes' \
	"bench_throughput --messages 0x1000 --size 1K: 4096 messages of 1024 bytes" \
	bench_throughput --only uhp --rounds 1 --messages 0x1000 --size 1K
accepted 1 '^uhp_spin +64 ' "bench_throughput --only uhp_spin runs" \
	bench_throughput --only uhp_spin --rounds 1 --messages 20K
[ "$(rows)" = "uhp_spin " ]
result $? "bench_throughput --only uhp_spin runs the uhp_spin row only (got: $(rows))"
usage_error 1 --messages bench_throughput --messages 1X
usage_error 1 --messages bench_throughput --messages ''
usage_error 1 --messages bench_throughput --messages -5
usage_error 1 --messages bench_throughput --messages 1MB
usage_error 1 --messages bench_throughput --messages 99999999999999999999999
usage_error 1 --size bench_throughput --size 64Q
usage_error 1 --size bench_throughput --size 8K
usage_error 1 --producers bench_throughput --producers 2x
usage_error 1 --rounds bench_throughput --rounds ' 1'
have bench_throughput 1 "bench_throughput --only nosuch: exit 2 listing the names" && {
	run bench_throughput --only nosuch --rounds 1 --messages 20K
	[ $rc -eq 2 ] && grep -qF -e '--only' "$tmp/err" &&
		grep -qF -e 'uhp_spin' "$tmp/err"
	result $? "bench_throughput --only nosuch: exit 2 listing the names"
}
usage_error 1 --only bench_throughput --only uhp,uhp_spi

# ---- bench_latency (a size: --size) ----
accepted 1 ' 1024-byte records' "bench_latency --size 1K means 1024 bytes" \
	bench_latency --size 1K --duration 0.1
usage_error 1 --size bench_latency --size 64Q
usage_error 1 --size bench_latency --size ''

# ---- bench_throughput --cores, on a fake hybrid part ----
mkdir -p "$tmp/sys/devices/system/cpu" "$tmp/sys/devices/cpu_core" \
	"$tmp/sys/devices/cpu_atom"
echo 0-3 >"$tmp/sys/devices/system/cpu/online"
echo 0-1 >"$tmp/sys/devices/cpu_core/cpus"
echo 2-3 >"$tmp/sys/devices/cpu_atom/cpus"
UHP_SYSFS_ROOT=$tmp/sys
export UHP_SYSFS_ROOT
accepted 1 'cores e \(hybrid part\): consumer on CPU 3, producers on CPU 2$' \
	"bench_throughput --cores e on a hybrid part: the E cores (2, 3)" \
	bench_throughput --only uhp --rounds 1 --messages 2K --cores e
accepted 1 'cores p \(hybrid part\): consumer on CPU 1, producers on CPU 0,0$' \
	"bench_throughput --cores p: the P cores (0, 1)" \
	bench_throughput --only uhp --rounds 1 --messages 2K --producers 2 --cores p
echo 0-1 >"$tmp/sys/devices/system/cpu/online"
rm -r "$tmp/sys/devices/cpu_core" "$tmp/sys/devices/cpu_atom"
accepted 1 'cores e \(not a hybrid part: every core\): consumer on CPU 1' \
	"bench_throughput --cores e on a uniform part: every core" \
	bench_throughput --only uhp --rounds 1 --messages 2K --cores e
unset UHP_SYSFS_ROOT
usage_error 1 --cores bench_throughput --cores x

# ---- bench_agent_simulation ----
accepted 1 '^# agent simulation: 4 agents, 2000 deliveries' \
	"bench_agent_simulation --messages 2K means 2000" \
	bench_agent_simulation --agents 4 --messages 2K --pattern uniform \
	--only uhp --rounds 1
usage_error 1 --messages bench_agent_simulation --messages 1X
usage_error 1 --messages bench_agent_simulation --messages ''
usage_error 1 --messages bench_agent_simulation --messages -5
usage_error 1 --size bench_agent_simulation --size 64Q

# ---- the others, when built: usage errors only ----
usage_error 0 --messages bench_numa --messages 1X
usage_error 0 --threads stress_test --threads 4T
usage_error 0 'N "2K5"' fastpath_ir 2K5
desc="BENCH_SIZES=64,4Q bench_crc32c: exit 2 naming BENCH_SIZES"
if have bench_crc32c 0 "$desc"; then
	BENCH_SIZES=64,4Q BENCH_REPS=1 BENCH_SAMPLE_US=10
	export BENCH_SIZES BENCH_REPS BENCH_SAMPLE_US
	run bench_crc32c
	unset BENCH_SIZES BENCH_REPS BENCH_SAMPLE_US
	[ $rc -eq 2 ] && grep -qF -e 'BENCH_SIZES' "$tmp/err"
	result $? "$desc"
fi

if [ $n -ne $plan ]; then
	echo "# ran $n tests, planned $plan"
	failed=1
fi
exit $failed
