#!/bin/sh
# SPDX-License-Identifier: MIT
#
# plot_test: bench/plot draws an SVG for each kind of JSON lines it knows,
# skips what is missing, and refuses a broken line.
# usage: plot_test.sh ROOT    (TAP output, non-zero exit on failure)
set -u
PLOT="$1/bench/plot"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
n=0 failed=0
ok() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; failed=$((failed + 1)); fi; }

echo "1..4"
cat >"$TMP/crc32c.jsonl" <<'J'
{"bench":"crc32c","impl":"sse42","size":64,"ns_per_op":7.0,"gbps":9.0,"ratio_vs_peer":1.5}
{"bench":"crc32c","impl":"sse42","size":1024,"ns_per_op":60.0,"gbps":17.0,"ratio_vs_peer":0.3}
{"bench":"crc32c","impl":"isal","size":64,"ns_per_op":10.0,"gbps":6.0,"ratio_vs_peer":1.0}
{"bench":"crc32c","impl":"isal","size":1024,"ns_per_op":20.0,"gbps":50.0,"ratio_vs_peer":1.0}
J
cat >"$TMP/throughput.jsonl" <<'J'
{"bench":"throughput","impl":"uhp","channel":"arena","size":64,"producers":1,"msgs_per_s":5000000,"ratio_vs":"uhp","ratio":1.000,"probe_rtt_ns":200,"probe_rtt_ns_min":150,"probe_rtt_ns_max":260}
{"bench":"throughput","impl":"rte_ring","channel":"arena","size":64,"producers":1,"msgs_per_s":3000000,"ratio_vs":"uhp","ratio":0.600,"probe_rtt_ns":210,"probe_rtt_ns_min":160,"probe_rtt_ns_max":270}
J
cat >"$TMP/latency.jsonl" <<'J'
{"bench":"latency","impl":"uhp","channel":"arena","size":64,"percentile":"p50","ns":250.0,"pingpong_ns":200.0,"ratio_vs_pingpong":1.25}
{"bench":"latency","impl":"uhp","channel":"arena","size":64,"percentile":"p99","ns":500.0,"pingpong_ns":300.0,"ratio_vs_pingpong":1.67}
J
/usr/bin/python3 "$PLOT" "$TMP" >"$TMP/out" 2>&1
ok $? "three kinds of JSON lines: exit 0"
for k in crc32c throughput latency; do
	grep -q '<svg' "$TMP/$k.svg" 2>/dev/null || { echo "# no $k.svg"; false; }
done
ok $? "crc32c.svg, throughput.svg and latency.svg drawn"
grep -q 'copy: no .*skipped' "$TMP/out"
ok $? "a missing kind is skipped, and said so"
echo '{"bench":"copy","impl":' >"$TMP/copy.jsonl"
/usr/bin/python3 "$PLOT" "$TMP" >"$TMP/out" 2>&1
[ $? != 0 ] && grep -q 'copy.jsonl:1' "$TMP/out"
ok $? "a broken line: non-zero exit naming the file and line"
echo "$((n - failed)) passed, $failed failed"
[ $failed = 0 ]
