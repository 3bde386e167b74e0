#!/bin/sh
# SPDX-License-Identifier: MIT
#
# compare_test: bench/compare flags a regression and only a regression.
# usage: compare_test.sh ROOT    (TAP output, non-zero exit on failure)
set -u
CMP="$1/bench/compare"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
n=0 failed=0
ok() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; failed=$((failed + 1)); fi; }

cat >"$TMP/old" <<'J'
{"bench":"copy","impl":"uhp_memcpy","size":4096,"ns_per_op":20.0,"gbps":200.0,"ratio_vs_peer":2.0}
{"bench":"copy","impl":"uhp_memcpy","size":64,"ns_per_op":2.0,"gbps":30.0,"ratio_vs_peer":1.1}
{"bench":"throughput","impl":"uhp_arena","size":64,"producers":1,"msgs_per_s":1000000,"ratio_vs_uhp":1.0}
J
echo "1..5"
python3 "$CMP" "$TMP/old" "$TMP/old" >"$TMP/out" 2>&1
ok $? "identical runs: no regression, exit 0"
sed 's/"gbps":200.0/"gbps":188.0/' "$TMP/old" >"$TMP/noise"
python3 "$CMP" "$TMP/old" "$TMP/noise" >"$TMP/out" 2>&1
ok $? "6% slower is within the 10% threshold"
sed 's/"gbps":200.0/"gbps":150.0/' "$TMP/old" >"$TMP/slow"
python3 "$CMP" "$TMP/old" "$TMP/slow" >"$TMP/out" 2>&1
[ $? = 1 ] && grep -q 'REGRESSED.*size=4096.*gbps' "$TMP/out"
ok $? "25% less throughput is flagged, exit 1"
sed 's/"msgs_per_s":1000000/"msgs_per_s":2000000/' "$TMP/old" >"$TMP/fast"
python3 "$CMP" "$TMP/old" "$TMP/fast" >"$TMP/out" 2>&1
ok $? "faster is not a regression"
echo '{"bench":"other","impl":"x","size":1,"gbps":1.0}' >"$TMP/unrelated"
python3 "$CMP" "$TMP/old" "$TMP/unrelated" >"$TMP/out" 2>&1
[ $? = 2 ]
ok $? "nothing in common: exit 2, not a silent pass"
echo "$((n - failed)) passed, $failed failed"
[ $failed = 0 ]
