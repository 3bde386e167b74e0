#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Bridged throughput and added latency against NATS itself, in one run:
# a 3-node cluster on loopback, bridges A and B (arena channels), then
# bench_bridge's interleaved rounds (see bench_bridge.c). JSON lines go to
# build/bench/bridge.jsonl (appended), the table to stdout. Both JetStream
# peers get the same placement: stream leader on n0 (where the publisher and
# bridge A connect), consumer leader on n1 (the subscriber's and bridge B's).
#
#   bench/bridge/run.sh [bench_bridge options: --rounds 3 --count-core 200000
#                        --count-js 50000 --lat-count 2000 --lat-rate 1000
#                        --agent-spin N (the receiving agent's uhp_set_spin)]
#   BRIDGE_EXTRA="spin_us 2000" bench/bridge/run.sh   a setting for both bridges
#
# LATTRACE=DIR: where the latency goes. Builds the bridge with its stage
# trace (make LATTRACE=1, into build/lattrace), writes DIR/A.trace,
# DIR/B.trace and DIR/bench.lat and prints bench/bridge/lattrace.py's table.
# Use small counts (--count-core 2000 --count-js 2000): every record is noted.
set -u -o pipefail
TOP=$(cd "$(dirname "$0")/../.." && pwd)
command -v nats-server >/dev/null || { echo "bench/bridge: nats-server missing (apt-get install nats-server)" >&2; exit 1; }
if [[ -n ${LATTRACE:-} ]]; then
    mkdir -p "$LATTRACE" && LATTRACE=$(cd "$LATTRACE" && pwd) || exit 1
    export BIN=$TOP/build/lattrace/bridge
    make -s -C "$TOP/bridge" O="$TOP/build/lattrace" LATTRACE=1 &&
        make -s -C "$TOP/bench/bridge" O="$TOP/build/lattrace" || exit 1
    export BENCH_LATDUMP=$LATTRACE/bench.lat
else
    make -s -C "$TOP/bridge" && make -s -C "$TOP/bench/bridge" || exit 1
fi
T=$(mktemp -d /tmp/uhp-bridge-bench.XXXXXX)
RUNID=bb$$
export T TOP RUNID
source "$TOP/tests/bridge/lib.sh"
trap 'cleanup_all; rm -rf "$T"' EXIT
trap 'exit 130' INT TERM HUP
R=$RUNID
start_cluster || { echo "no JetStream meta leader" >&2; exit 1; }
C=("ack_wait_ms 10000" "stats_ms 1000" "replicas 3" ${BRIDGE_EXTRA:+"$BRIDGE_EXTRA"})
bridge_conf A "${C[@]}" "route B/$R.core $R.A.core mode=core" "route B/$R.js $R.A.js mode=jetstream"
bridge_conf B "${C[@]}" "export $R.core mode=core" "export $R.js mode=jetstream"
# the bridges connect like the plain clients: A (sender) to server 0 first, B to server 1
sed -i "s|^nats .*|nats nats://127.0.0.1:${NATS_PORT[0]}|" "$T/A.conf"
sed -i "s|^nats .*|nats nats://127.0.0.1:${NATS_PORT[1]}|" "$T/B.conf"
start_bridge B ${LATTRACE:+UHP_BRIDGE_LATTRACE=$LATTRACE/B.trace}
start_bridge A ${LATTRACE:+UHP_BRIDGE_LATTRACE=$LATTRACE/A.trace}
wait_bridge_up A && wait_bridge_up B && wait_export_ready B 1 || { tail "$T"/bridge-*.log; exit 1; }
mkdir -p "$TOP/build/bench"
"$BIN/bench_bridge" --nats0 "nats://127.0.0.1:${NATS_PORT[0]}" --nats1 "nats://127.0.0.1:${NATS_PORT[1]}" \
    --run "$R" --outbox-core "$R.A.core" --inbox-core "$R.core" --outbox-js "$R.A.js" --inbox-js "$R.js" \
    --leaders n0/n1 \
    --json "$TOP/build/bench/bridge.jsonl" "$@"
rc=$?
kill -USR1 "${BRIDGE_PID[B]}" 2>/dev/null; sleep 0.5
echo
if [[ -n ${LATTRACE:-} ]]; then
    stop_bridge A; stop_bridge B	# they write their traces at exit
    /usr/bin/python3 "$TOP/bench/bridge/lattrace.py" "$LATTRACE"
    echo "bridge A: $(jq -c '[.routes[]]' "$T/state-A/stats.json")"
fi
echo "bridge B: $(jq -c '[.exports[] | {channel, crc_refused, gaps, dups, early, early_confirmed, early_skipped, early_dropped, slow_consumer_drops}]' "$T/state-B/stats.json")"
exit $rc
