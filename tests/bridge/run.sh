#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# uhp-bridge tests: a 3-node nats-server cluster on loopback (routes between
# them, JetStream R3), two "hosts" A and B as two bridges with their own
# channels (arenas, distinct names), agents on both sides. Prints TAP; exit
# status 0 only if every test passed. Everything it starts is killed on exit
# (failure and Ctrl-C included); the temp dir is removed unless KEEP=1.
#
#   tests/bridge/run.sh            (make -C bridge check; top level: make check-bridge)
#   KEEP=1 tests/bridge/run.sh     keep $T (logs, configs, stats) for a look
#   N_CORE=1000000 N_JS=200000     records of the big tests (defaults)
#   UHP_BRIDGE_TESTS="t8 t9"        run only these tests (in this order)
#   UHP_BRIDGE_TIMEOUT=900          the whole suite's limit in seconds: past
#                                   it the suite fails (with the bridges'
#                                   logs) instead of hanging make check
#   UHP_BRIDGE_SANITIZE=thread      the bridges built with ThreadSanitizer
#                                   (build/tsan), or =address with ASan,
#                                   LeakSanitizer and UBSan (build/asan);
#                                   one more test: no bridge reported
#                                   anything (nats.c is not instrumented)
set -u -o pipefail

TOP=$(cd "$(dirname "$0")/../.." && pwd)
skip_all() { echo "1..0 # SKIP $*"; exit 0; }
command -v nats-server >/dev/null || skip_all "nats-server is not installed (apt-get install nats-server)"
[[ -f /usr/include/nats/nats.h ]] || skip_all "libnats-dev is not installed (apt-get install libnats-dev)"
for t in jq curl ss; do
    command -v $t >/dev/null || skip_all "$t is not installed"
done

N_CORE=${N_CORE:-1000000}
N_JS=${N_JS:-200000}
T=$(mktemp -d /tmp/uhp-bridge-test.XXXXXX)
RUNID=bt$$
R=$RUNID
export T TOP RUNID
# shellcheck source=lib.sh
source "$TOP/tests/bridge/lib.sh"

finish() {
    cleanup_all
    if [[ -n ${KEEP:-} ]]; then echo "# kept $T" >&2; else rm -rf "$T"; fi
}
trap finish EXIT
trap 'exit 130' INT HUP
on_term() {
    if [[ -f $T/timed-out ]]; then
        echo "not ok - the suite ran past ${UHP_BRIDGE_TIMEOUT:-900} s (a test hung); the bridges' logs follow"
        tail_logs
        exit 1
    fi
    exit 130
}
trap on_term TERM

# ---- build ----
if ! make -s -C "$TOP/bridge" >"$T/build.log" 2>&1 ||
   ! make -s -C "$TOP/tests/bridge" >>"$T/build.log" 2>&1; then
    echo "1..1"; echo "not ok 1 - build"; sed 's/^/# /' "$T/build.log"; exit 1
fi
[[ -z ${UHP_BRIDGE_TSAN:-} ]] || { echo "1..1"; echo "not ok 1 - UHP_BRIDGE_TSAN is now UHP_BRIDGE_SANITIZE=thread"; exit 1; }
SAN=${UHP_BRIDGE_SANITIZE:-}
case $SAN in
"") ;;
thread)
    SAN_DIR=tsan SAN_NAME=ThreadSanitizer SAN_FLAGS="-fsanitize=thread"
    # reports to files (a bridge's exit status stays its own)
    export TSAN_OPTIONS="log_path=$T/san/report exitcode=0 ${TSAN_OPTIONS:-}" ;;
address)
    SAN_DIR=asan SAN_NAME="ASan/LSan/UBSan" SAN_FLAGS="-fsanitize=address,undefined"
    export ASAN_OPTIONS="log_path=$T/san/report exitcode=0 ${ASAN_OPTIONS:-}"
    export UBSAN_OPTIONS="log_path=$T/san/report print_stacktrace=1 ${UBSAN_OPTIONS:-}" ;;
*)
    echo "1..1"; echo "not ok 1 - UHP_BRIDGE_SANITIZE=$SAN: thread or address"; exit 1 ;;
esac
if [[ -n $SAN ]]; then
    if ! make -s -C "$TOP/bridge" O="$TOP/build/$SAN_DIR" \
            CFLAGS="-O1 -g -fno-omit-frame-pointer $SAN_FLAGS -Wno-error=tsan" \
            LDFLAGS="$SAN_FLAGS" >>"$T/build.log" 2>&1; then
        echo "1..1"; echo "not ok 1 - build with $SAN_NAME"; sed 's/^/# /' "$T/build.log"; exit 1
    fi
    BRIDGE=$TOP/build/$SAN_DIR/bridge/uhp-bridge
    mkdir -p "$T/san"
fi
GOAGENT=""
if command -v go >/dev/null && [[ -d /usr/share/gocode/src/github.com/nats-io/nats.go ]]; then
    if (cd "$TOP/tests/bridge/goagent" &&
        GO111MODULE=off GOPATH=/usr/share/gocode GOCACHE="$T/gocache" \
            go build -o "$BIN/tests/goagent" .) >>"$T/build.log" 2>&1; then
        GOAGENT=$BIN/tests/goagent
    fi
fi
NKEYGEN=""
if command -v go >/dev/null && [[ -d /usr/share/gocode/src/github.com/nats-io/nkeys ]]; then
    if (cd "$TOP/tests/bridge/nkeygen" &&
        GO111MODULE=off GOPATH=/usr/share/gocode GOCACHE="$T/gocache" \
            go build -o "$BIN/tests/nkeygen" .) >>"$T/build.log" 2>&1; then
        NKEYGEN=$BIN/tests/nkeygen
    fi
fi

# ---- TAP ----
NT=0
FAILED=0
# the server kill last: nats-server 2.9 may take long to bring the restarted
# replica back (see DESIGN.md), which is not what the other tests are about
TESTS=${UHP_BRIDGE_TESTS:-t1 t3 t4 t5 t6 t7 t8 t10 t11 t16 t13 t14 t15 t2 t12 t9}
PLAN=$(wc -w <<<"$TESTS")
[[ -n ${UHP_BRIDGE_SANITIZE:-} ]] && PLAN=$((PLAN + 1))
echo "1..$PLAN"
ok()   { NT=$((NT + 1)); echo "ok $NT - $*"; }
nok()  { NT=$((NT + 1)); FAILED=$((FAILED + 1)); echo "not ok $NT - $*"; }
skip() { NT=$((NT + 1)); echo "ok $NT - $1 # SKIP $2"; }
diag() { echo "# $*"; }
show() { [[ -f $1 ]] && sed 's/^/#   /' "$1"; }
tail_logs() {
    local f
    for f in "$T"/bridge-*.log; do
        echo "# --- $(basename "$f") (last 15 lines)"
        tail -15 "$f" | sed 's/^/#   /'
    done
}
# jv FILE KEY: a number from an agent's JSON line
jv() { jq -r ".$2" "$1" 2>/dev/null | tail -1; }
# export/route counters from a bridge's stats
ex() { stats "$1" "[.exports[] | select(.channel==\"$2\")][0].$3"; }
rt() { stats "$1" "[.routes[] | select(.outbox==\"$2\")][0].$3"; }
# progress value written by an agent
prog() { cat "$1" 2>/dev/null || echo 0; }
wait_prog() {           # file value timeout_s
    local deadline=$((SECONDS + $3))
    while (($(prog "$1") < $2)); do
        ((SECONDS < deadline)) || return 1
        sleep 0.1
    done
}
bg() { "$@" & track $! agent; }
wait_running() {        # name n: the bridge logged its n-th "running:"
    local deadline=$((SECONDS + 30))
    until [[ $(grep -c "running:" "$T/bridge-$1.log" 2>/dev/null) -ge $2 ]]; do
        ((SECONDS < deadline)) || { diag "bridge $1 did not come up"; return 1; }
        sleep 0.1
    done
}
refresh_stats() {       # ask every bridge for fresh stats, give it a moment
    local n
    for n in "${!BRIDGE_PID[@]}"; do
        [[ -n ${BRIDGE_PID[$n]} ]] && kill -USR1 "${BRIDGE_PID[$n]}" 2>/dev/null
    done
    sleep 0.3
}

# ---- the cluster and the two hosts ----
if ! start_cluster; then
    nok "3-node cluster elects a JetStream meta leader"
    tail -20 "$T"/n0.log | sed 's/^/# /'
    exit 1
fi
diag "cluster: ${NATS_URLS} (meta leader $META_LEADER); work dir $T"

COMMON=(
    "ack_wait_ms 3000" "retry_ms 1000" "fetch_expires_ms 1000" "stats_ms 500"
    "replicas 3"
)
bridge_conf A "${COMMON[@]}" \
    "route B/$R.core1 $R.A.toB.core1 mode=core" \
    "export $R.A.core1 mode=core" \
    "route B/$R.js $R.A.toB.js mode=jetstream" \
    "route B/$R.bp $R.A.toB.bp mode=jetstream" \
    "route B/$R.gap $R.A.toB.gap mode=core"
bridge_conf B "${COMMON[@]}" \
    "export $R.core1 mode=core" \
    "route A/$R.A.core1 $R.B.toA.core1 mode=core" \
    "export $R.js mode=jetstream" \
    "export $R.bp mode=jetstream ring_size=64K max_bytes=256K" \
    "export $R.gap mode=core" \
    "export $R.corrupt mode=core" \
    "export $R.rogue mode=jetstream" \
    "export $R.go mode=core" \
    "export $R.gojs mode=jetstream" \
    "export $R.rs mode=jetstream" \
    "export $R.hd mode=jetstream ring_size=64K" \
    "export $R.wp mode=jetstream ring_size=64K" \
    "export $R.dh mode=jetstream" \
    "route go/$R.goin $R.B.togo mode=core batch=1"
bridge_conf X "${COMMON[@]}" "route B/$R.corrupt $R.X.toB.corrupt mode=core"
bridge_conf Y "${COMMON[@]}" "route B/$R.rs $R.Y.toB.rs mode=jetstream"
bridge_conf Z "${COMMON[@]}" "route B/$R.hd $R.Z.toB.hd mode=jetstream"
bridge_conf W "${COMMON[@]}" "route B/$R.wp $R.W.toB.wp mode=jetstream"
bridge_conf Z2 "${COMMON[@]}" "retry_ms 4000" "route B/$R.dh $R.Z2.toB.dh mode=jetstream"
bridge_conf E "${COMMON[@]}" "route V/$R.ev $R.E.toV.ev mode=jetstream" \
    "route N/$R.en $R.E.toN.en mode=jetstream"
bridge_conf V "${COMMON[@]}" "export $R.ev mode=jetstream"
bridge_conf N "${COMMON[@]}" "early no" "export $R.en mode=jetstream"
bridge_conf F "${COMMON[@]}" "route V2/$R.cr $R.F.toV2.cr mode=jetstream batch=1"
bridge_conf V2 "${COMMON[@]}" "export $R.cr mode=jetstream max_msgs=400"
start_bridge B
start_bridge A
if ! wait_bridge_up A || ! wait_bridge_up B || ! wait_export_ready B 7 60; then
    nok "bridges A and B start"
    tail_logs
    exit 1
fi

# ---- 1. core: 1M records across, both directions at once ----
t1() {
    local half=$((N_CORE / 2)) nback=$((N_CORE / 5)) rc=0
    bg "$AGENT" recv "$R.core1" --expect "$N_CORE" --sources 2 --idle-ms 20000 --max-ms 300000 >"$T/t1.b" 2>&1
    local rb=$!
    bg "$AGENT" recv "$R.A.core1" --expect "$nback" --sources 1 --idle-ms 20000 --max-ms 300000 >"$T/t1.a" 2>&1
    local ra=$!
    sleep 0.3
    bg "$AGENT" send "$R.A.toB.core1" --src 1 --count "$half" --size-min 16 --size-max 256 >"$T/t1.s1" 2>&1
    local s1=$!
    bg "$AGENT" send "$R.A.toB.core1" --src 2 --count "$half" --size 64 >"$T/t1.s2" 2>&1
    local s2=$!
    bg "$AGENT" send "$R.B.toA.core1" --src 3 --count "$nback" --size 128 >"$T/t1.s3" 2>&1
    local s3=$!
    wait $s1 $s2 $s3 || rc=1
    wait $rb || rc=1
    wait $ra || rc=1
    refresh_stats
    diag "A->B: $(cat "$T/t1.b")"
    diag "B->A: $(cat "$T/t1.a")"
    diag "B export: crc_refused $(ex B "$R.core1" crc_refused), gaps $(ex B "$R.core1" gaps), slow drops $(ex B "$R.core1" slow_consumer_drops)"
    if [[ $rc == 0 && $(ex B "$R.core1" gaps) == 0 && $(ex A "$R.A.core1" gaps) == 0 ]]; then
        ok "core: $N_CORE records A->B (2 producers) and $nback B->A at once: loss 0, order per producer kept, every CRC verified"
    else
        nok "core: $N_CORE records A->B and $nback B->A"
        show "$T/t1.s1"; show "$T/t1.s2"; show "$T/t1.s3"; tail_logs
    fi
}

# ---- 2. jetstream: the stream leader is killed mid-stream ----
t2() {
    local rc=0 stream="UHP_B_${R//./_}_js" L
    bg "$AGENT" recv "$R.js" --expect "$N_JS" --idle-ms 30000 --max-ms 400000 --progress "$T/t2.p" >"$T/t2.r" 2>&1
    local rr=$!
    sleep 0.3
    bg "$AGENT" send "$R.A.toB.js" --src 5 --count "$N_JS" --size-min 16 --size-max 512 --rate 40000 >"$T/t2.s" 2>&1
    local ss=$!
    if wait_prog "$T/t2.p" $((N_JS / 3)) 200; then
        L=$(stream_leader "$stream") || L=1
        diag "killing nats-server n$L (leader of $stream) at $(prog "$T/t2.p") records"
        stop_nats "$L" KILL
    else
        diag "no progress: $(prog "$T/t2.p")"
        rc=1
    fi
    wait $ss || rc=1
    wait $rr || rc=1
    refresh_stats
    diag "received: $(cat "$T/t2.r")"
    diag "A route: published $(rt A "$R.A.toB.js" published), retransmits $(rt A "$R.A.toB.js" retransmits), dup acks $(rt A "$R.A.toB.js" dup_acks); B export: dups dropped $(ex B "$R.js" dups), naks $(ex B "$R.js" naks), gap timeouts $(ex B "$R.js" gap_timeouts)"
    if [[ $rc == 0 && $(jv "$T/t2.r" dups) == 0 && $(jv "$T/t2.r" missing) == 0 ]]; then
        ok "jetstream: $N_JS records, a nats-server (the stream leader) killed mid-stream: loss 0, duplicates delivered 0"
    else
        nok "jetstream: a nats-server killed mid-stream"
        show "$T/t2.s"; tail_logs
    fi
    if [[ -n ${L:-} ]]; then
        start_nats "$L"
        wait_meta_leader 20 || diag "no meta leader after restarting n$L"
        sleep 2   # let it catch up before the next test
    fi
}

# ---- 3. jetstream: each bridge killed (SIGKILL) mid-stream and restarted ----
t3() {
    local rc=0
    bg "$AGENT" recv "$R.js" --expect "$N_JS" --start 1 --idle-ms 30000 --max-ms 400000 --progress "$T/t3.p" >"$T/t3.r" 2>&1
    local rr=$!
    sleep 0.3
    bg "$AGENT" send "$R.A.toB.js" --src 6 --count "$N_JS" --size-min 16 --size-max 512 --rate 40000 >"$T/t3.s" 2>&1
    local ss=$!
    if wait_prog "$T/t3.p" $((N_JS / 4)) 200; then
        diag "SIGKILL to bridge B (receiving) at $(prog "$T/t3.p") records"
        stop_bridge B KILL
        sleep 1
        start_bridge B
        wait_running B 2 || rc=1
    else
        rc=1
    fi
    if wait_prog "$T/t3.p" $((N_JS / 2)) 200; then
        diag "SIGKILL to bridge A (sending) at $(prog "$T/t3.p") records"
        stop_bridge A KILL
        sleep 1
        start_bridge A
        wait_running A 2 || rc=1
    else
        rc=1
    fi
    wait $ss || rc=1
    wait $rr || rc=1
    refresh_stats
    diag "received: $(cat "$T/t3.r")"
    diag "B after restart: dups dropped $(ex B "$R.js" dups), probe committed/uncommitted/unknown $(ex B "$R.js" probe_committed)/$(ex B "$R.js" probe_uncommitted)/$(ex B "$R.js" probe_unknown); A after restart: resent from spool $(rt A "$R.A.toB.js" recovered), dup acks $(rt A "$R.A.toB.js" dup_acks)"
    grep -h "in flight at the last stop\|resending" "$T"/bridge-[AB].log | sed 's/^/#   /'
    if [[ $rc == 0 && $(jv "$T/t3.r" dups) == 0 && $(jv "$T/t3.r" missing) == 0 &&
          $(ex B "$R.js" probe_unknown) == 0 ]]; then
        ok "jetstream: receiving and sending bridges killed and restarted mid-stream: resumed from the durable consumer and the spool, loss 0, duplicates 0"
    else
        nok "jetstream: bridges killed and restarted"
        show "$T/t3.s"; tail_logs
    fi
}

# ---- 4. core: what is lost while the receiver is down is counted ----
t4() {
    local n=60000 rc=0 got holes gaps
    bg "$AGENT" recv "$R.gap" --expect "$n" --lossy --idle-ms 4000 --max-ms 60000 --progress "$T/t4.p" >"$T/t4.r" 2>&1
    local rr=$!
    sleep 0.3
    bg "$AGENT" send "$R.A.toB.gap" --src 7 --count "$n" --size 64 --rate 20000 >"$T/t4.s" 2>&1
    local ss=$!
    if wait_prog "$T/t4.p" $((n / 4)) 60; then
        stop_bridge B KILL
        sleep 0.5
        start_bridge B
        wait_running B 3
    else
        rc=1
    fi
    wait $ss || rc=1
    wait $rr || rc=1
    refresh_stats
    got=$(jv "$T/t4.r" unique)
    holes=$(jv "$T/t4.r" holes)
    gaps=$(ex B "$R.gap" gaps)
    diag "received $got of $n, holes seen by the agent $holes, gaps counted by bridge B $gaps"
    if [[ $rc == 0 && $holes -gt 0 && $((got + gaps)) -ge $n && $((got + gaps)) -le $((n + 1)) ]]; then
        ok "core: records lost while the receiving bridge was down are counted as gaps (received + gaps = sent), never silent"
    else
        nok "core: gaps counted"
        show "$T/t4.s"; tail_logs
    fi
}

# ---- 5. corruption on the wire (the sending bridge's test hook) ----
t5() {
    local rc=0
    start_bridge X UHP_BRIDGE_CORRUPT_EVERY=100
    wait_bridge_up X || rc=1
    bg "$AGENT" recv "$R.corrupt" --expect 1000 --holes 10 --idle-ms 5000 --max-ms 60000 >"$T/t5.r" 2>&1
    local rr=$!
    sleep 0.3
    "$AGENT" send "$R.X.toB.corrupt" --src 8 --count 1010 --size 200 >"$T/t5.s" 2>&1 || rc=1
    wait $rr || rc=1
    refresh_stats
    diag "received: $(cat "$T/t5.r")"
    diag "X corrupted $(rt X "$R.X.toB.corrupt" corrupted_by_hook); B refused $(ex B "$R.corrupt" crc_refused), counted gaps $(ex B "$R.corrupt" gaps)"
    grep -m1 "bad CRC" "$T/bridge-B.log" | sed 's/^/#   /'
    stop_bridge X
    if [[ $rc == 0 && $(ex B "$R.corrupt" crc_refused) == 10 && $(ex B "$R.corrupt" gaps) == 10 &&
          $(jv "$T/t5.r" bad_payload) == 0 ]]; then
        ok "integrity: 10 of 1010 payloads corrupted on the wire are refused (CRC recomputed), counted and logged; the other 1000 arrive intact"
    else
        nok "integrity: corrupted payloads refused"
        tail_logs
    fi
}

# ---- 6. a rogue publisher on a jetstream subject ----
t6() {
    local rc=0 subj="uhp.js.B.$R.rogue" url="nats://127.0.0.1:${NATS_PORT[0]}"
    bg "$AGENT" recv "$R.rogue" --expect 5 --idle-ms 8000 --max-ms 60000 >"$T/t6.r" 2>&1
    local rr=$!
    sleep 0.3
    "$AGENT" rogue "$url" "$subj" --count 5 --kind badcrc >"$T/t6.s" 2>&1 || rc=1
    "$AGENT" rogue "$url" "$subj" --count 5 --kind nocrc >>"$T/t6.s" 2>&1 || rc=1
    "$AGENT" rogue "$url" "$subj" --count 5 --kind good >>"$T/t6.s" 2>&1 || rc=1
    wait $rr || rc=1
    refresh_stats
    diag "B: crc_refused $(ex B "$R.rogue" crc_refused), malformed $(ex B "$R.rogue" malformed), unsequenced accepted $(ex B "$R.rogue" unsequenced); agent: $(cat "$T/t6.r")"
    if [[ $rc == 0 && $(ex B "$R.rogue" crc_refused) == 5 && $(ex B "$R.rogue" malformed) == 5 ]]; then
        ok "integrity: a rogue publisher's records with a wrong CRC (5) or none (5) are refused; its 5 correct ones are delivered"
    else
        nok "integrity: rogue publisher"
        tail_logs
    fi
}

# ---- 7. a remote agent written with the NATS Go client ----
t7() {
    local rc=0 url="nats://127.0.0.1:${NATS_PORT[2]}"
    if [[ -z $GOAGENT ]]; then
        skip "Go client agent" "go or golang-github-nats-io-go-nats-dev missing"
        return
    fi
    # Go -> uhp, core and jetstream
    bg "$AGENT" recv "$R.go" --expect 1000 --idle-ms 8000 --max-ms 60000 >"$T/t7.r1" 2>&1
    local r1=$!
    bg "$AGENT" recv "$R.gojs" --expect 1000 --idle-ms 8000 --max-ms 60000 >"$T/t7.r2" 2>&1
    local r2=$!
    sleep 0.3
    "$GOAGENT" send "$url" "uhp.core.B.$R.go" 1000 core >"$T/t7.s1" 2>&1 || rc=1
    "$GOAGENT" send "$url" "uhp.js.B.$R.gojs" 1000 js >"$T/t7.s2" 2>&1 || rc=1
    wait $r1 || rc=1
    wait $r2 || rc=1
    # uhp -> Go
    bg "$GOAGENT" recv "$url" "uhp.core.go.$R.goin" 1000 30000 >"$T/t7.gr" 2>"$T/t7.gr.err"
    local gr=$!
    local deadline=$((SECONDS + 10))
    until grep -q subscribed "$T/t7.gr.err" || ((SECONDS > deadline)); do sleep 0.1; done
    sleep 0.3
    "$AGENT" send "$R.B.togo" --src 9 --count 1000 --size-min 16 --size-max 300 >"$T/t7.s3" 2>&1 || rc=1
    wait $gr || rc=1
    diag "Go -> uhp (core): $(cat "$T/t7.r1")"
    diag "Go -> uhp (jetstream): $(cat "$T/t7.r2")"
    diag "uhp -> Go: $(cat "$T/t7.gr")"
    if [[ $rc == 0 ]]; then
        ok "interop: an agent written with the NATS Go client sends to uhp agents (core and jetstream) and receives from one, CRC checked on both ends"
    else
        nok "interop: Go client agent"
        show "$T/t7.s1"; show "$T/t7.s2"; show "$T/t7.gr.err"; tail_logs
    fi
}

# ---- 8. backpressure: a full channel slows the remote producer down ----
t8() {
    local n=30000 rc=0
    bg "$AGENT" recv "$R.bp" --expect "$n" --pause-ms 6000 --idle-ms 30000 --max-ms 300000 >"$T/t8.r" 2>&1
    local rr=$!
    sleep 0.3
    bg "$AGENT" send "$R.A.toB.bp" --src 10 --count "$n" --size 100 >"$T/t8.s" 2>&1
    local ss=$!
    wait $ss || rc=1
    wait $rr || rc=1
    refresh_stats
    diag "sender: $(cat "$T/t8.s")"
    diag "receiver: $(cat "$T/t8.r")"
    diag "A route: publishes refused by the stream $(rt A "$R.A.toB.bp" pub_failed), retransmits $(rt A "$R.A.toB.bp" retransmits); B export: pulls $(ex B "$R.bp" pulls), waits for room $(ex B "$R.bp" full_waits), dups $(ex B "$R.bp" dups), leader stepdowns asked $(ex B "$R.bp" stepdowns)"
    # An R3 work-queue stream that refuses messages at its limits lets its
    # replicas diverge (nats-server 2.9: each replica checks the limit when
    # it applies, after acks it removed at its own pace): the bridge must
    # stop the sender before the stream is full, never let it run into the
    # limit. And a bridge that waited for room in its own channel did not
    # find the consumer stalled: no leader stepdown is asked for. And B
    # pulls no more than its channel takes (max_bytes): nothing waits in
    # its client's queue past ack_wait_ms to be redelivered (B dropped no
    # duplicate; pulls sized by count alone did, in about 1 run of 10).
    # And a pull the server answered "Message Size Exceeds MaxBytes" (the
    # next message is larger than the room offered) is not asked again
    # until there is that much room: asked again at once, B sent 81757
    # pulls here instead of ~300.
    if [[ $rc == 0 && $(jv "$T/t8.s" full_waits) -gt 0 && $(jv "$T/t8.r" missing) == 0 && $(jv "$T/t8.r" dups) == 0 &&
          $(rt A "$R.A.toB.bp" pub_failed) == 0 && $(ex B "$R.bp" stepdowns) == 0 && $(ex B "$R.bp" dups) == 0 &&
          $(ex B "$R.bp" pulls) -lt 5000 ]]; then
        ok "backpressure: with the receiving agent stopped, the sender stops before the stream is full, then the outbox fills and the producer waits; after it resumes: loss 0, duplicates 0, no publish refused, no pull asked again before the next message fits"
    else
        nok "backpressure"
        stream_views "UHP_B_${R//./_}_bp" | sed 's/^/# stream: /'
        tail_logs
    fi
}

# ---- 10. jetstream: what the stream never acknowledged is resent from the spool after a restart ----
t10() {
    local n=2000 rc=0 deadline acked received inflight
    bg "$AGENT" recv "$R.rs" --expect "$n" --idle-ms 30000 --max-ms 120000 >"$T/t10.r" 2>&1
    local rr=$!
    start_bridge Y UHP_BRIDGE_DROP_JS=1
    wait_bridge_up Y || rc=1
    "$AGENT" send "$R.Y.toB.rs" --src 11 --count "$n" --size-min 16 --size-max 300 >"$T/t10.s" 2>&1 || rc=1
    # Y spools every record; each publish, and each resend after retry_ms,
    # is lost on the way (the test hook): nothing reaches the stream
    deadline=$((SECONDS + 30))
    until [[ $(rt Y "$R.Y.toB.rs" forwarded) == "$n" && $(rt Y "$R.Y.toB.rs" retransmits) -gt 0 ]]; do
        ((SECONDS < deadline)) || { diag "Y did not spool and retry: $(rt Y "$R.Y.toB.rs" forwarded)"; rc=1; break; }
        sleep 0.2
    done
    refresh_stats
    acked=$(rt Y "$R.Y.toB.rs" acked)
    inflight=$(rt Y "$R.Y.toB.rs" inflight)
    received=$(ex B "$R.rs" received)
    diag "before the restart: Y spooled $(rt Y "$R.Y.toB.rs" forwarded), lost on the way $(rt Y "$R.Y.toB.rs" dropped_by_hook) (retransmits $(rt Y "$R.Y.toB.rs" retransmits)), acked $acked, unacked $inflight; B received $received"
    stop_bridge Y KILL
    start_bridge Y
    wait_running Y 2 || rc=1
    wait $rr || rc=1
    refresh_stats
    diag "after: Y resent from the spool $(rt Y "$R.Y.toB.rs" recovered), acked $(rt Y "$R.Y.toB.rs" acked); B dups dropped $(ex B "$R.rs" dups); agent: $(cat "$T/t10.r")"
    grep -h "resending" "$T/bridge-Y.log" | sed 's/^/#   /'
    stop_bridge Y
    if [[ $rc == 0 && $acked == 0 && $inflight == "$n" && $received == 0 &&
          $(rt Y "$R.Y.toB.rs" recovered) == "$n" && $(jv "$T/t10.r" missing) == 0 && $(jv "$T/t10.r" dups) == 0 ]]; then
        ok "jetstream: $n records whose publishes were all lost stay in the sender's spool; after a SIGKILL and restart it resends them: loss 0, duplicates 0"
    else
        nok "jetstream: resend from the spool after a restart"
        show "$T/t10.s"; tail_logs
    fi
}

# ---- 11. jetstream: a gap filled late drains more held records than the ring holds ----
t11() {
    local n=4000 rc=0 held
    bg "$AGENT" recv "$R.hd" --expect "$n" --idle-ms 15000 --max-ms 120000 >"$T/t11.r" 2>&1
    local rr=$!
    start_bridge Z UHP_BRIDGE_DROP_JS_FIRST=1
    wait_bridge_up Z || rc=1
    # Z's first publish is lost (the hook): B holds every later record
    # until Z resends it after retry_ms, then commits the first and
    # drains the hold, ~1000 records of ~150 ring bytes into a 64 KiB
    # ring, while the sender goes on: the rest must still be pulled
    "$AGENT" send "$R.Z.toB.hd" --src 12 --count "$n" --size 100 --rate 1000 >"$T/t11.s" 2>&1 || rc=1
    wait $rr || rc=1
    refresh_stats
    held=$(ex B "$R.hd" held)
    diag "Z lost $(rt Z "$R.Z.toB.hd" dropped_by_hook) record(s) on the way, retransmits $(rt Z "$R.Z.toB.hd" retransmits); B held $held, drained $(ex B "$R.hd" unheld), pulls $(ex B "$R.hd" pulls); agent: $(cat "$T/t11.r")"
    stop_bridge Z
    if [[ $rc == 0 && $(rt Z "$R.Z.toB.hd" dropped_by_hook) -ge 1 && ${held:-0} -ge 600 &&
          $(ex B "$R.hd" unheld) == "$held" && $(jv "$T/t11.r" missing) == 0 && $(jv "$T/t11.r" dups) == 0 ]]; then
        ok "jetstream: a lost first publish resent late; the $held records held meanwhile (more than the ring holds) drain in order and the rest still arrive: loss 0, duplicates 0"
    else
        nok "jetstream: a late gap fill drains the hold and the export goes on pulling"
        show "$T/t11.s"; tail_logs
    fi
}

# ---- 16. jetstream: a held record damaged on disk ----
t16() {
    local n=500 rc=0 d="$T/state-B/hold.$R.dh" i
    bg "$AGENT" recv "$R.dh" --expect "$n" --idle-ms 8000 --max-ms 60000 >"$T/t16.r" 2>&1
    local rr=$!
    start_bridge Z2 UHP_BRIDGE_DROP_JS_FIRST=1
    wait_bridge_up Z2 || rc=1
    # Z2's first publish is lost: B holds the rest on disk until Z2 resends
    # it (retry_ms 4000). One held record is damaged meanwhile: B must
    # count it lost when its turn comes and drain the others at once (not
    # stop there until gap_timeout_ms), and no longer count it as held:
    # early delivery, off while anything is held, must work again after.
    "$AGENT" send "$R.Z2.toB.dh" --src 17 --count "$n" --size 100 --rate 2000 >"$T/t16.s" 2>&1 || rc=1
    for i in $(seq 100); do
        ls "$d" 2>/dev/null | grep -q '\.300$' && break
        sleep 0.05
    done
    if f=$(ls "$d"/*.300 2>/dev/null) && [[ -n $f ]]; then
        : >"$f"
    else
        rc=1
        diag "no held record 300 to damage in $d"
    fi
    wait $rr    # reports the one missing record
    refresh_stats
    diag "first $n: B gaps $(ex B "$R.dh" gaps), held $(ex B "$R.dh" held), drained $(ex B "$R.dh" unheld), held now $(ex B "$R.dh" held_now), committed early $(ex B "$R.dh" early); agent: $(cat "$T/t16.r")"
    local early0 held_now missing
    early0=$(ex B "$R.dh" early) held_now=$(ex B "$R.dh" held_now) missing=$(jv "$T/t16.r" missing)
    bg "$AGENT" recv "$R.dh" --expect 300 --idle-ms 8000 --max-ms 60000 >"$T/t16.r2" 2>&1
    rr=$!
    sleep 0.3
    "$AGENT" send "$R.Z2.toB.dh" --src 18 --count 300 --size 100 --rate 2000 >"$T/t16.s2" 2>&1 || rc=1
    wait $rr || rc=1
    refresh_stats
    diag "300 more: committed early $(($(ex B "$R.dh" early) - early0)); agent: $(cat "$T/t16.r2")"
    stop_bridge Z2
    if [[ $rc == 0 && $missing == 1 && $(jv "$T/t16.r" holes) -le 1 && $(ex B "$R.dh" gaps) == 1 && $held_now == 0 &&
          $(jv "$T/t16.r2" missing) == 0 && $(ex B "$R.dh" early) -gt "$early0" ]]; then
        ok "jetstream: a held record damaged on disk is counted lost when its turn comes, the rest drain at once, and it is not left counted as held (early delivery goes on)"
    else
        nok "jetstream: a damaged held record"
        show "$T/t16.s"; tail_logs
    fi
}

# ---- 12. authentication and TLS: a server of its own ----
# A single nats-server (not the cluster) that wants TLS with a client
# certificate (a throw-away CA made here with openssl, EC keys) and a user
# and password, or a user nkey; a second one in operator mode for creds.
# The nkeys and the creds' JWTs come from tests/bridge/nkeygen (Go, Debian's
# nkeys package; nsc is not needed): without Go those two are skipped and
# said so, the rest still runs.
t12_ca() {              # name CN: a self-signed CA
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
        -keyout "$T/t12/$1.key" -out "$T/t12/$1.pem" -subj "/CN=$2" 2>>"$T/t12/openssl.log"
}
t12_cert() {            # name CN extensions: an EC key and a certificate the CA signed
    local d=$T/t12
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$d/$1.key" -out "$d/$1.csr" -subj "/CN=$2" 2>>"$d/openssl.log" &&
    printf '%b' "$3" >"$d/$1.ext" &&
    openssl x509 -req -in "$d/$1.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
        -days 1 -extfile "$d/$1.ext" -out "$d/$1.pem" 2>>"$d/openssl.log"
}
declare -A T12_PID
t12_start_nats() {      # name: runs $T/t12/NAME.conf, pid in T12_PID[name]
    nats-server -c "$T/t12/$1.conf" >>"$T/t12/$1.log" 2>&1 &
    T12_PID[$1]=$!
    track "${T12_PID[$1]}" "nats-t12-$1"
    wait_nats_ready "$T/t12/$1.log" 10
}
# a bridge that must stop by itself with a non-zero status and log PATTERN
t12_refused() {         # name pattern what
    if ! wait_bridge_exit "$1" 20; then
        why+=("$3: bridge $1 still runs after 20 s")
        return 1
    fi
    diag "$3: exit $BRIDGE_RC: $(grep -m1 error "$T/bridge-$1.log")"
    if [[ $BRIDGE_RC == 0 ]] || ! grep -q "$2" "$T/bridge-$1.log"; then
        why+=("$3: bridge $1 exited with $BRIDGE_RC without logging '$2'")
        return 1
    fi
}
t12() {
    local d=$T/t12 rc=0 port oport pw nkpub="" url n r1 r2
    local -a why=()
    if ! command -v openssl >/dev/null; then
        skip "authentication and TLS" "openssl missing"
        return
    fi
    mkdir -p "$d/js"
    # --- the throw-away PKI, the secrets, the servers
    if ! t12_ca ca "uhp test CA $R" || ! t12_ca other "another CA $R" ||
       ! t12_cert server localhost 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' ||
       ! t12_cert client uhp-bridge 'extendedKeyUsage=clientAuth\n'; then
        nok "authentication and TLS: openssl makes the certificates"
        show "$d/openssl.log"
        return
    fi
    chmod 600 "$d"/*.key
    pw="pw-$RANDOM$RANDOM-$R"
    printf '%s\n' "$pw" >"$d/pw"
    printf 'wrong-%s\n' "$RANDOM" >"$d/pw.wrong"
    chmod 600 "$d/pw" "$d/pw.wrong"
    if [[ -n $NKEYGEN ]]; then
        mkdir -p "$d/nk" "$d/nk.other"
        if "$NKEYGEN" "$d/nk" && "$NKEYGEN" "$d/nk.other"; then
            nkpub=$(cat "$d/nk/user.pub")
        else
            diag "nkeygen failed: nkey and creds not tried"
        fi
    fi
    if ! port=$(pick_port) || ! oport=$(pick_port "$port"); then
        nok "authentication and TLS: free ports"
        return
    fi
    url="tls://127.0.0.1:$port"
    {
        echo "server_name: t12"
        echo "listen: 127.0.0.1:$port"
        echo "jetstream { store_dir: \"$d/js\" }"
        echo "tls { cert_file: \"$d/server.pem\", key_file: \"$d/server.key\", ca_file: \"$d/ca.pem\", verify: true, timeout: 5 }"
        echo "authorization { users = ["
        echo "  { user: bridge, password: \"$pw\" }"
        [[ -z $nkpub ]] || echo "  { nkey: $nkpub }"
        echo "] }"
    } >"$d/tls.conf"
    if ! t12_start_nats tls; then
        nok "authentication and TLS: a nats-server with TLS and passwords starts"
        show "$d/tls.log"
        return
    fi
    if [[ -n $nkpub ]]; then
        {
            echo "server_name: t12op"
            echo "listen: 127.0.0.1:$oport"
            echo "operator: \"$d/nk/operator.jwt\""
            echo "resolver: MEMORY"
            echo "resolver_preload: { $(cat "$d/nk/account.pub"): \"$(cat "$d/nk/account.jwt")\" }"
        } >"$d/op.conf"
        if ! t12_start_nats op; then
            rc=1
            why+=("the nats-server in operator mode did not start")
            show "$d/op.log"
            nkpub=""
        fi
    fi

    # --- the bridges: SA sends to SB, both with a password over TLS (SA
    # checks the server's certificate for the name localhost, SB for the
    # URL's address); SW (a wrong password) and SX (a CA that did not sign
    # the server's certificate) must stop; SN (nkey) sends to SB; SC (creds)
    # sends to itself; SD (creds of another operator) must stop
    local tls=("tls_ca $d/ca.pem" "tls_cert $d/client.pem" "tls_key $d/client.key")
    NATS_URLS=$url bridge_conf SB "stats_ms 500" "replicas 1" "user bridge" "password_file $d/pw" \
        "${tls[@]}" "export $R.s.core mode=core" "export $R.s.js mode=jetstream" \
        "export $R.s.nk mode=core"
    NATS_URLS=$url bridge_conf SA "stats_ms 500" "replicas 1" "user bridge" "password_file $d/pw" \
        "${tls[@]}" "tls_hostname localhost" \
        "route SB/$R.s.core $R.SA.toSB.core mode=core" "route SB/$R.s.js $R.SA.toSB.js mode=jetstream"
    NATS_URLS=$url bridge_conf SW "user bridge" "password_file $d/pw.wrong" "${tls[@]}"
    NATS_URLS=$url bridge_conf SX "user bridge" "password_file $d/pw" \
        "tls_ca $d/other.pem" "tls_cert $d/client.pem" "tls_key $d/client.key"
    start_bridge SW
    start_bridge SX
    start_bridge SB
    start_bridge SA
    if [[ -n $nkpub ]]; then
        NATS_URLS=$url bridge_conf SN "nkey $nkpub" "nkey_seed $d/nk/user.nk" "${tls[@]}" \
            "route SB/$R.s.nk $R.SN.toSB.nk mode=core"
        NATS_URLS=nats://127.0.0.1:$oport bridge_conf SC "creds $d/nk/user.creds" \
            "export $R.c.in mode=core" "route SC/$R.c.in $R.SC.loop mode=core"
        NATS_URLS=nats://127.0.0.1:$oport bridge_conf SD "creds $d/nk.other/user.creds"
        start_bridge SN
        start_bridge SC
        start_bridge SD
    fi

    # 1. the right password over TLS: records go across, core and
    # jetstream; then again after the server restarted (the reconnects
    # use the same options)
    if wait_bridge_up SB && wait_bridge_up SA && wait_export_ready SB 1 30; then
        bg "$AGENT" recv "$R.s.core" --expect 2000 --idle-ms 10000 --max-ms 60000 >"$d/r.core" 2>&1
        r1=$!
        bg "$AGENT" recv "$R.s.js" --expect 2000 --idle-ms 10000 --max-ms 60000 >"$d/r.js" 2>&1
        r2=$!
        sleep 0.3
        "$AGENT" send "$R.SA.toSB.core" --src 21 --count 2000 --size-min 16 --size-max 256 >"$d/s.core" 2>&1 || rc=1
        "$AGENT" send "$R.SA.toSB.js" --src 22 --count 2000 --size-min 16 --size-max 256 >"$d/s.js" 2>&1 || rc=1
        wait $r1 || { rc=1; why+=("core over TLS: $(cat "$d/r.core")"); }
        wait $r2 || { rc=1; why+=("jetstream over TLS: $(cat "$d/r.js")"); }
        diag "password over TLS, core: $(cat "$d/r.core")"
        diag "password over TLS, jetstream: $(cat "$d/r.js")"
        kill -KILL "${T12_PID[tls]}" 2>/dev/null
        wait "${T12_PID[tls]}" 2>/dev/null
        if ! t12_start_nats tls; then
            rc=1
            why+=("the server did not restart")
        fi
        n=$((SECONDS + 20))
        until [[ $(cat "$T/bridge-SA.log" "$T/bridge-SB.log" | grep -c "connection: reconnected") -ge 4 ]]; do
            ((SECONDS < n)) || { rc=1; why+=("SA and SB did not reconnect"); break; }
            sleep 0.1
        done
        bg "$AGENT" recv "$R.s.core" --expect 500 --idle-ms 10000 --max-ms 30000 >"$d/r.again" 2>&1
        r1=$!
        sleep 0.3
        "$AGENT" send "$R.SA.toSB.core" --src 23 --count 500 --size 64 >"$d/s.again" 2>&1 || rc=1
        wait $r1 || { rc=1; why+=("core after the server restarted: $(cat "$d/r.again")"); }
        diag "after a server restart and the reconnects: $(cat "$d/r.again")"
    else
        rc=1
        why+=("SA and SB did not come up over TLS with a password")
    fi

    # 2. a wrong password, 3. a CA that did not sign the server's
    # certificate: the bridge stops (exit non-zero) with nats.c's reason
    t12_refused SW "authentication failed.*Authorization Violation" "a wrong password" || rc=1
    t12_refused SX "TLS failed.*certificate" "an unknown CA" || rc=1

    # 4. a secret others may read is refused; --check says what is set up,
    # without the secret
    cp "$d/pw" "$d/pw.group"
    chmod 640 "$d/pw.group"
    sed "s|password_file .*|password_file $d/pw.group|" "$T/SA.conf" >"$d/group.conf"
    "$BRIDGE" --check -c "$d/group.conf" >"$d/check.group" 2>&1
    n=$?
    diag "$(cat "$d/check.group")"
    if [[ $n != 2 ]] ||
       ! grep -q "group.conf:[0-9]*: password_file $d/pw.group: permissions 0640 are too open" "$d/check.group"; then
        rc=1
        why+=("a group-readable password file: --check exit $n")
    fi
    if ! "$BRIDGE" --check -c "$T/SA.conf" >"$d/check.ok" 2>&1 ||
       ! grep -q "^auth: user bridge, password in $d/pw\$" "$d/check.ok" ||
       ! grep -q "^tls: on, server verified against the CAs in $d/ca.pem, server name localhost, client certificate $d/client.pem" "$d/check.ok"; then
        rc=1
        why+=("--check of SA: $(cat "$d/check.ok")")
    fi
    grep "^auth\|^tls" "$d/check.ok" | sed 's/^/#   /'

    # nkey (over TLS) and creds (operator mode): records go across; the
    # creds of another operator are refused
    if [[ -n $nkpub ]]; then
        if wait_bridge_up SN && wait_bridge_up SC; then
            bg "$AGENT" recv "$R.s.nk" --expect 300 --idle-ms 10000 --max-ms 30000 >"$d/r.nk" 2>&1
            r1=$!
            bg "$AGENT" recv "$R.c.in" --expect 300 --idle-ms 10000 --max-ms 30000 >"$d/r.creds" 2>&1
            r2=$!
            sleep 0.3
            "$AGENT" send "$R.SN.toSB.nk" --src 24 --count 300 --size 64 >"$d/s.nk" 2>&1 || rc=1
            "$AGENT" send "$R.SC.loop" --src 25 --count 300 --size 64 >"$d/s.creds" 2>&1 || rc=1
            wait $r1 || { rc=1; why+=("nkey: $(cat "$d/r.nk")"); }
            wait $r2 || { rc=1; why+=("creds: $(cat "$d/r.creds")"); }
            diag "nkey over TLS: $(cat "$d/r.nk")"
            diag "creds: $(cat "$d/r.creds")"
            # creds that break while the bridge runs (a rotation gone
            # wrong): nats.c's reconnects fail before the server could say
            # no, so nothing closes the connection; the bridge must say
            # why, and take the mended file at its next attempt
            cp -p "$d/nk/user.creds" "$d/user.creds.good"
            echo "not a creds file" >"$d/nk/user.creds"
            kill -KILL "${T12_PID[op]}" 2>/dev/null
            wait "${T12_PID[op]}" 2>/dev/null
            if t12_start_nats op; then
                n=$((SECONDS + 20))
                until grep -q "connection: still reconnecting after .*rounds.*user.creds" "$T/bridge-SC.log"; do
                    ((SECONDS < n)) || { rc=1; why+=("SC said nothing of its failing reconnects in 20 s"); break; }
                    sleep 0.2
                done
                diag "broken creds: $(grep -m1 "still reconnecting" "$T/bridge-SC.log")"
                cp -p "$d/user.creds.good" "$d/nk/user.creds"
                n=$((SECONDS + 20))
                until [[ $(grep -c "connection: reconnected" "$T/bridge-SC.log") -ge 2 ]]; do
                    ((SECONDS < n)) || { rc=1; why+=("SC did not reconnect with the mended creds"); break; }
                    sleep 0.1
                done
                bg "$AGENT" recv "$R.c.in" --expect 100 --idle-ms 10000 --max-ms 30000 >"$d/r.creds2" 2>&1
                r2=$!
                sleep 0.3
                "$AGENT" send "$R.SC.loop" --src 26 --count 100 --size 64 >"$d/s.creds2" 2>&1 || rc=1
                wait $r2 || { rc=1; why+=("creds mended: $(cat "$d/r.creds2")"); }
                diag "creds mended: $(cat "$d/r.creds2")"
            else
                rc=1
                why+=("the operator-mode server did not restart")
            fi
        else
            rc=1
            why+=("the bridges with an nkey and with creds did not come up")
        fi
        t12_refused SD "authentication failed" "creds of another operator" || rc=1
    else
        diag "nkey and creds not tried (no Go, no golang-github-nats-io-nkeys-dev, or no nkeygen)"
    fi

    # no password in any log or output
    if grep -qF -e "$pw" -e "$(cat "$d/pw.wrong")" "$T"/bridge-S*.log "$d"/check.*; then
        rc=1
        why+=("a password appears in a log")
    fi
    for n in SA SB SN SC SW SX SD; do stop_bridge "$n"; done
    for n in "${!T12_PID[@]}"; do
        kill "${T12_PID[$n]}" 2>/dev/null
        wait "${T12_PID[$n]}" 2>/dev/null
    done
    if [[ $rc == 0 ]]; then
        ok "authentication and TLS: records cross with a password over TLS (core and jetstream, again after a server restart)${nkpub:+, with an nkey and with creds (broken while running: said why, mended: taken)}; a wrong password, an unknown CA${nkpub:+, foreign creds} stop the bridge with the reason; a group-readable secret is refused; no password logged"
    else
        nok "authentication and TLS"
        for n in "${why[@]}"; do diag "$n"; done
        tail_logs
    fi
}

# ---- 13. jetstream: what waits behind a commit that waits for room is kept in progress ----
t13() {
    local n1=40 n2=3000 rc=0 n
    n=$((n1 + n2))
    bg "$AGENT" recv "$R.wp" --expect "$n" --pause-ms 12000 --idle-ms 30000 --max-ms 120000 >"$T/t13.r" 2>&1
    local rr=$!
    start_bridge W
    wait_bridge_up W || rc=1
    # Lone records first, one per message: B sizes its pulls from them
    # (16-byte records: their headers make ~2.5 wire bytes per ring byte).
    # Then, with W stopped, 3000 more wait in its outbox and go as full
    # batches when it is back (~0.5 wire bytes per ring byte): B's next
    # pull fills its 64 KiB ring and more, and what is left waits behind
    # the commit that waits for room, in B's client queue, while the agent
    # sleeps, longer than three times ack_wait_ms. Unless B tells the
    # server those are in progress too, they are delivered again.
    "$AGENT" send "$R.W.toB.wp" --src 13 --count "$n1" --size 16 --rate 40 >"$T/t13.s1" 2>&1 || rc=1
    stop_bridge W
    "$AGENT" send "$R.W.toB.wp" --src 13 --start $((n1 + 1)) --count "$n2" --size 16 >"$T/t13.s2" 2>&1 || rc=1
    start_bridge W
    wait $rr || rc=1
    refresh_stats
    stop_bridge W
    diag "B export: waits for room $(ex B "$R.wp" full_waits), kept in progress $(ex B "$R.wp" in_progress), dups dropped $(ex B "$R.wp" dups), pulls $(ex B "$R.wp" pulls); agent: $(cat "$T/t13.r")"
    if [[ $rc == 0 && $(ex B "$R.wp" full_waits) -ge 1 && $(ex B "$R.wp" dups) == 0 &&
          $(jv "$T/t13.r" missing) == 0 && $(jv "$T/t13.r" dups) == 0 ]]; then
        ok "jetstream: a commit waits for room past ack_wait_ms; the messages queued behind it are kept in progress, not delivered again: loss 0, duplicates 0 on the wire and in the channel"
    else
        nok "jetstream: what waits behind a commit that waits for room is kept in progress"
        tail_logs
    fi
}

# ---- 14. jetstream: early delivery, and without it ----
t14() {
    local n=20000 rc=0 i
    start_bridge V UHP_BRIDGE_EARLY_DROP_EVERY=5
    start_bridge N
    if ! wait_bridge_up V || ! wait_bridge_up N || ! wait_export_ready V 1 || ! wait_export_ready N 1; then
        nok "jetstream: early delivery (receiving bridges V and N start)"
        tail_logs
        return
    fi
    bg "$AGENT" recv "$R.ev" --expect "$n" --idle-ms 15000 --max-ms 120000 >"$T/t14.rv" 2>&1
    local rv=$!
    bg "$AGENT" recv "$R.en" --expect "$n" --idle-ms 15000 --max-ms 120000 >"$T/t14.rn" 2>&1
    local rn=$!
    start_bridge E
    wait_bridge_up E || rc=1
    # V commits a record from the copy every subscriber sees as it is
    # published, when it is the next of its source and there is room; the
    # hook makes V ignore every 5th such copy (a message: one record or a
    # batch), so those records and what follows them come from the
    # stream, in order. N (early no) takes
    # everything from the stream.
    "$AGENT" send "$R.E.toV.ev" --src 14 --count "$n" --size 100 --rate 5000 >"$T/t14.sv" 2>&1 &
    local sv=$!
    "$AGENT" send "$R.E.toN.en" --src 15 --count "$n" --size 100 --rate 5000 >"$T/t14.sn" 2>&1 || rc=1
    wait $sv || rc=1
    wait $rv || rc=1
    wait $rn || rc=1
    # every record committed early is delivered by the stream too (and
    # only acknowledged): wait for the last stream copies
    for i in $(seq 100); do
        refresh_stats
        [[ $(ex V "$R.ev" early) -gt 0 && $(ex V "$R.ev" early) == "$(ex V "$R.ev" early_confirmed)" ]] && break
    done
    diag "V (early yes, every 5th message's copy ignored): committed early $(ex V "$R.ev" early), confirmed by the stream $(ex V "$R.ev" early_confirmed), left to the stream $(ex V "$R.ev" early_skipped), dups $(ex V "$R.ev" dups); agent: $(cat "$T/t14.rv")"
    diag "N (early no): committed early $(ex N "$R.en" early), dups $(ex N "$R.en" dups); agent: $(cat "$T/t14.rn")"
    stop_bridge E
    stop_bridge V
    stop_bridge N
    if [[ $rc == 0 && $(jv "$T/t14.rv" missing) == 0 && $(jv "$T/t14.rv" dups) == 0 &&
          $(jv "$T/t14.rn" missing) == 0 && $(jv "$T/t14.rn" dups) == 0 &&
          $(ex V "$R.ev" early) -gt 0 && $(ex V "$R.ev" early) -lt "$n" && $(ex V "$R.ev" early_skipped) -gt 0 &&
          $(ex V "$R.ev" early) == "$(ex V "$R.ev" early_confirmed)" && $(ex V "$R.ev" dups) == 0 &&
          $(ex N "$R.en" early) == 0 && $(ex N "$R.en" dups) == 0 &&
          $(ex V "$R.ev" committed) == "$n" && $(ex N "$R.en" committed) == "$n" ]]; then
        ok "jetstream: early delivery commits records from the copy seen as they are published; those it misses come from the stream in order; without it all come from the stream: loss 0, duplicates 0 both ways"
    else
        nok "jetstream: early delivery"
        show "$T/t14.sv"; tail_logs
    fi
}

# ---- 15. jetstream: credit counts what was committed early, across restarts ----
t15() {
    local n=1500 rc=0 i
    bg "$AGENT" recv "$R.cr" --expect $((n + 10)) --idle-ms 30000 --max-ms 180000 >"$T/t15.r" 2>&1
    local rr=$!
    # V2's stream takes 400 messages; its senders' share is a quarter. Each
    # start of V2, the stream delivers nothing for 2.5 s (the hook) while
    # the early copies go on: V2 commits them, and they stay in the stream.
    # Credit must count them, also after V2 is killed and restarted (the
    # state file says how many; the bits are gone): a mark taken as
    # everything committed gave the sender a full share more at each
    # restart, until the stream refused publishes. (The source must be
    # known first: a new one starts with the stream's copy.)
    start_bridge V2
    start_bridge F
    if ! wait_bridge_up V2 || ! wait_bridge_up F || ! wait_export_ready V2 1; then
        nok "jetstream: credit across restarts (bridges F and V2 start)"
        tail_logs
        return
    fi
    "$AGENT" send "$R.F.toV2.cr" --src 16 --count 10 --size 100 >"$T/t15.s0" 2>&1 || rc=1
    sleep 1
    local ss=""
    for i in 1 2 3 4 5 6; do
        stop_bridge V2 KILL
        start_bridge V2 UHP_BRIDGE_PULL_DELAY_MS=2500
        wait_running V2 $((i + 1)) || rc=1
        sleep 0.3
        if [[ -z $ss ]]; then
            bg "$AGENT" send "$R.F.toV2.cr" --src 16 --start 11 --count "$n" --size 100 --max-ms 120000 >"$T/t15.s" 2>&1
            ss=$!
        fi
        sleep 1.2
        diag "run $((i + 1)) of V2: committed early $(ex V2 "$R.cr" early); F: credit waits $(rt F "$R.F.toV2.cr" credit_waits), publishes refused $(rt F "$R.F.toV2.cr" pub_failed)"
    done
    wait $ss || rc=1
    wait $rr || rc=1
    refresh_stats
    diag "F route: published $(rt F "$R.F.toV2.cr" published), publishes refused by the stream $(rt F "$R.F.toV2.cr" pub_failed), credit waits $(rt F "$R.F.toV2.cr" credit_waits); V2 (last run): early $(ex V2 "$R.cr" early), dups $(ex V2 "$R.cr" dups); agent: $(cat "$T/t15.r")"
    if [[ $rc == 0 && $(rt F "$R.F.toV2.cr" pub_failed) == 0 && $(rt F "$R.F.toV2.cr" credit_waits) -gt 0 &&
          $(jv "$T/t15.r" missing) == 0 && $(jv "$T/t15.r" dups) == 0 ]]; then
        ok "jetstream: records committed early count against the sender's credit until the stream delivers them, across six kills and restarts of the receiver: the stream never refused a publish, loss 0, duplicates 0"
    else
        nok "jetstream: credit counts what was committed early, across restarts"
        show "$T/t15.s"; tail_logs
    fi
    stop_bridge F
    stop_bridge V2
}

# ---- 9. configuration errors are refused ----
# --check must refuse a configuration (exit 2) with "FILE:LINE: why"
t9_refused() {          # line setting... (after host and nats, lines 1 and 2)
    local line=$1 bad="$T/bad.conf" out st
    shift
    printf '%s\n' "host A" "${T9_NATS:-nats nats://127.0.0.1:1}" "$@" >"$bad"
    out=$("$BRIDGE" --check -c "$bad" 2>&1)
    st=$?
    echo "$out" >>"$T/t9.out"
    [[ $st == 2 && $out == *"$bad:$line: "* ]] && return 0
    echo "expected exit 2 and $bad:$line:, got exit $st" >>"$T/t9.out"
    return 1
}
t9() {
    local bad="$T/bad.conf" rc=0
    printf 'host A\nnats nats://127.0.0.1:1\nexport a.b\nexport a_b mode=jetstream\nexport a.b mode=jetstream\n' >"$bad"
    "$BRIDGE" --check -c "$bad" >"$T/t9.out" 2>&1 && rc=1
    printf 'host A\nnats nats://127.0.0.1:1\nexport x mode=fast\n' >"$bad"
    "$BRIDGE" --check -c "$bad" >>"$T/t9.out" 2>&1 && rc=1
    printf 'host A\nnats nats://127.0.0.1:1\nspin_us 2000000\n' >"$bad"
    "$BRIDGE" --check -c "$bad" >>"$T/t9.out" 2>&1 && rc=1
    "$BRIDGE" --check -c "$T/B.conf" >>"$T/t9.out" 2>&1 || rc=1
    # uhp-bridge@.service passes its StateDirectory this way
    "$BRIDGE" --check -c "$T/B.conf" --state-dir "$T/sd" >"$T/t9.sd" 2>>"$T/t9.out" || rc=1
    cat "$T/t9.sd" >>"$T/t9.out"
    grep -q "state_dir $T/sd\$" "$T/t9.sd" || rc=1
    # authentication and TLS settings that clash, lack their other half,
    # or would put a secret in the configuration or a URL
    local s="$T/t9.secret" nk=UAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA
    printf 'not-a-real-secret\n' >"$s"
    chmod 600 "$s"
    t9_refused 4 "creds $s" "user u" "password_file $s" || rc=1
    t9_refused 5 "nkey $nk" "nkey_seed $s" "token_file $s" || rc=1
    t9_refused 3 "user u" || rc=1
    t9_refused 3 "password_file $s" || rc=1
    t9_refused 3 "nkey $nk" || rc=1
    t9_refused 3 "tls_cert $s" || rc=1
    t9_refused 3 "tls_key $s" || rc=1
    t9_refused 4 "token_file $s" "token_file $s" || rc=1
    t9_refused 3 "password hunter2" || rc=1
    t9_refused 3 "early maybe" || rc=1
    T9_NATS="nats nats://u:hunter2@127.0.0.1:1" t9_refused 2 || rc=1
    if grep -q hunter2 "$T/t9.out"; then
        echo "a refused password was printed" >>"$T/t9.out"
        rc=1
    fi
    if [[ $rc == 0 ]]; then
        ok "configuration: clashing or unknown settings (authentication and TLS ones too) are refused with the line number; --check prints what a good one means; --state-dir wins over the file"
    else
        nok "configuration checks"
        show "$T/t9.out"
    fi
}

# The watchdog: every agent has its own deadline, but a hang anywhere else
# (a wait on a bridge, a server that never answers) must still end the run.
(
    trap 'kill "$sp" 2>/dev/null; exit 0' TERM
    sleep "${UHP_BRIDGE_TIMEOUT:-900}" & sp=$!
    wait "$sp" || exit 0
    touch "$T/timed-out"
    kill -TERM $$
) </dev/null >/dev/null 2>&1 &
track $! watchdog

start=$SECONDS
for t in $TESTS; do
    $t
done
if [[ -n $SAN ]]; then
    cleanup_all		# LeakSanitizer reports at exit
    if compgen -G "$T/san/report*" >/dev/null; then
        nok "$SAN_NAME: $(cat "$T"/san/report* | grep -c 'SUMMARY: ') report(s) from the bridges"
        cat "$T"/san/report* | grep -E '^(WARNING|ERROR|SUMMARY)|runtime error|^    #[0-3] ' | sed 's/^/# /' | head -80
    else
        ok "$SAN_NAME: no report from any bridge"
    fi
fi
diag "done in $((SECONDS - start)) s"
[[ $NT == "$PLAN" ]] || { echo "# ran $NT of $PLAN tests"; exit 1; }
[[ $FAILED == 0 ]]
