#!/bin/sh
# Every guest benchmark in one boot; run inside the QEMU guest by
# bench/guest.mk (make bench-guest) through scripts/uhp-vm, which copies the
# static programs beside this script into /uhp.
#
#   guest_bench.sh [--only "kernel throughput latency numa agentsim"]
#                  [--kernel ARGS] [--tp "N ROUNDS"] [--lat ARGS] [--numa ARGS]
#                  [--agentsim ARGS]
#
# Each program's JSON lines go back over the console as
# "UHP-JSON-<bench>: {...}" lines (bench_kernel prints its own
# "UHP-BENCH-JSON: " lines); the host sorts them into files. The exit status
# is non-zero if any program failed.
only="kernel throughput latency numa agentsim"
kargs="" tp="20000 3" lat="--duration 1" numa="" agentsim="--agents 100"
while [ $# -gt 0 ]; do
	case $1 in
	--only) only=$2 ;;
	--kernel) kargs=$2 ;;
	--tp) tp=$2 ;;
	--lat) lat=$2 ;;
	--numa) numa=$2 ;;
	--agentsim) agentsim=$2 ;;
	*) echo "guest_bench.sh: unknown option $1"; exit 2 ;;
	esac
	shift 2
done
set -- $tp
tp_n=$1 tp_rounds=$2
export BENCH_OUT=/tmp/bench
mkdir -p $BENCH_OUT
rc=0

# emit NAME: the JSON lines of $BENCH_OUT/NAME.jsonl, tagged for the host.
emit() {
	[ -f $BENCH_OUT/$1.jsonl ] && sed "s/^/UHP-JSON-$1: /" $BENCH_OUT/$1.jsonl
}
# step NAME CMD...: run, report a failure, keep going.
step() {
	name=$1
	shift
	echo
	echo "==== $name: $*"
	t0=$(date +%s)
	"$@"
	st=$?
	echo "==== $name: exit $st, $(($(date +%s) - t0)) s"
	[ $st -eq 0 ] || rc=1
}

for b in $only; do
	case $b in
	kernel)
		# shellcheck disable=SC2086 # word splitting wanted
		step kernel ./bench_kernel $kargs
		;;
	throughput)
		app=""
		for size in 64 1024; do
			for k in 1 2; do
				step "throughput $size B, K=$k" ./bench_throughput --dev \
					--messages "$tp_n" --rounds "$tp_rounds" --size $size \
					--producers $k $app
				app=--append
			done
		done
		emit throughput
		;;
	latency)
		# shellcheck disable=SC2086
		step latency ./bench_latency --dev --percentiles 50,90,99,99.9 $lat
		emit latency
		;;
	numa)
		# shellcheck disable=SC2086
		step numa ./bench_numa --dev $numa
		emit numa
		;;
	agentsim)
		# uhp only: libzmq does not link statically (the program says so)
		# shellcheck disable=SC2086
		step agentsim ./bench_agent_simulation --dev $agentsim
		emit agentsim
		;;
	*)
		echo "guest_bench.sh: unknown benchmark $b"
		rc=1
		;;
	esac
done
exit $rc
