# shellcheck shell=bash
# Helpers of the bridge tests and benchmark: a 3-node nats-server cluster on
# loopback, bridges, agents. Everything lives under $T (a temp dir) and every
# process started is recorded in $T/pids, so cleanup kills exactly those.
#
# Needs: T (work dir), TOP (repo root), BIN (build/bridge).

: "${T:?}" "${TOP:?}"
BIN=${BIN:-$TOP/build/bridge}
AGENT=$BIN/tests/bridge_agent
BRIDGE=$BIN/uhp-bridge
RUNID=${RUNID:-b$$}                 # prefix of every channel name of this run

declare -a NATS_PORT CLUSTER_PORT HTTP_PORT NATS_PID

port_free() { ! ss -Htln "sport = :$1" 2>/dev/null | grep -q .; }

pick_ports() {
    local base tries=0 i ok
    while :; do
        base=$((20000 + (RANDOM % 400) * 100))
        ok=1
        for i in 0 1 2; do
            port_free $((base + i)) && port_free $((base + 10 + i)) &&
                port_free $((base + 20 + i)) || ok=0
        done
        [[ $ok == 1 ]] && break
        tries=$((tries + 1))
        [[ $tries -lt 50 ]] || { echo "no free ports" >&2; return 1; }
    done
    for i in 0 1 2; do
        NATS_PORT[i]=$((base + i))
        CLUSTER_PORT[i]=$((base + 10 + i))
        HTTP_PORT[i]=$((base + 20 + i))
    done
    NATS_URLS="nats://127.0.0.1:${NATS_PORT[0]},nats://127.0.0.1:${NATS_PORT[1]},nats://127.0.0.1:${NATS_PORT[2]}"
}

track() { echo "$1 $2" >>"$T/pids"; }     # pid name

# a free TCP port on loopback, other than the ones given (picked, not yet bound)
pick_port() {             # [port to avoid...]
    local p tries=0
    while :; do
        p=$((20000 + RANDOM % 40000))
        if port_free "$p" && [[ " $* " != *" $p "* ]]; then
            echo "$p"
            return 0
        fi
        tries=$((tries + 1))
        [[ $tries -lt 100 ]] || { echo "no free port" >&2; return 1; }
    done
}

# wait until a nats-server's log says it is ready
wait_nats_ready() {       # log [timeout s]
    local deadline=$((SECONDS + ${2:-10}))
    until grep -q "Server is ready" "$1" 2>/dev/null; do
        ((SECONDS < deadline)) || return 1
        sleep 0.1
    done
}

nats_conf() {
    local i=$1 routes="" j
    for j in 0 1 2; do
        routes+="nats-route://127.0.0.1:${CLUSTER_PORT[j]}, "
    done
    mkdir -p "$T/n$i"
    cat >"$T/n$i.conf" <<EOF
server_name: n$i
listen: 127.0.0.1:${NATS_PORT[i]}
http: 127.0.0.1:${HTTP_PORT[i]}
max_payload: 8MB
${NATS_EXTRA_CONF:-}
jetstream { store_dir: "$T/n$i" }
cluster {
  name: c1
  listen: 127.0.0.1:${CLUSTER_PORT[i]}
  routes: [ ${routes%, } ]
}
EOF
}

start_nats() {            # i
    local i=$1
    [[ -f $T/n$i.conf ]] || nats_conf "$i"
    nats-server -c "$T/n$i.conf" >>"$T/n$i.log" 2>&1 &
    NATS_PID[i]=$!
    track "${NATS_PID[i]}" "nats-n$i"
}

stop_nats() {             # i [signal]
    local i=$1 sig=${2:-KILL}
    [[ -n ${NATS_PID[i]:-} ]] || return 0
    kill -"$sig" "${NATS_PID[i]}" 2>/dev/null || true
    wait "${NATS_PID[i]}" 2>/dev/null || true
    NATS_PID[i]=
}

jsz() { curl -s --max-time 2 "http://127.0.0.1:${HTTP_PORT[$1]}/jsz${2:-}"; }

# every live server's view of a stream and its consumers, one line each
stream_views() {          # stream
    local i
    for i in 0 1 2; do
        [[ -n ${NATS_PID[i]:-} ]] || continue
        jsz "$i" "?consumers=1" | jq -c --arg s "$1" --arg n "n$i" \
            '.account_details[]?.stream_detail[]? | select(.name==$s) |
             {server: $n, leader: .cluster.leader, msgs: .state.messages, first: .state.first_seq,
              last: .state.last_seq, consumers: [.consumer_detail[]? |
              {leader: .cluster.leader, delivered: .delivered.stream_seq, ack_floor: .ack_floor.stream_seq,
               pending: .num_pending, ack_pending: .num_ack_pending, redelivered: .num_redelivered}]}' 2>/dev/null
    done
}

# a meta leader that sees every live peer as current (streams can be placed)
wait_meta_leader() {      # [timeout s]
    local deadline=$((SECONDS + ${1:-20})) i l live=0 cur
    for i in 0 1 2; do [[ -n ${NATS_PID[i]:-} ]] && live=$((live + 1)); done
    while ((SECONDS < deadline)); do
        for i in 0 1 2; do
            [[ -n ${NATS_PID[i]:-} ]] || continue
            l=$(jsz "$i" | jq -r '.meta_cluster.leader // empty' 2>/dev/null)
            [[ -n $l && $l == "n$i" ]] || continue
            cur=$(jsz "$i" | jq -r '[.meta_cluster.replicas[]? | select(.current and (.offline | not))] | length' 2>/dev/null)
            if [[ ${cur:-0} -ge $((live - 1)) ]]; then
                META_LEADER=$l
                return 0
            fi
        done
        sleep 0.2
    done
    return 1
}

start_cluster() {
    pick_ports || return 1
    local i
    for i in 0 1 2; do start_nats "$i"; done
    wait_meta_leader 30
}

# stream leader's index (0..2) from any live server's view
stream_leader() {         # stream
    local i l
    for i in 0 1 2; do
        [[ -n ${NATS_PID[i]:-} ]] || continue
        l=$(jsz "$i" "?streams=1" | jq -r --arg s "$1" \
            '.account_details[]?.stream_detail[]? | select(.name==$s) | .cluster.leader // empty' 2>/dev/null | head -1)
        if [[ $l == n[012] ]]; then echo "${l#n}"; return 0; fi
    done
    return 1
}

# bridge NAME CONFIG-BODY: writes $T/NAME.conf (host NAME, nats, state_dir prepended)
bridge_conf() {
    local name=$1
    shift
    {
        echo "host $name"
        echo "nats $NATS_URLS"
        echo "state_dir $T/state-$name"
        printf '%s\n' "$@"
    } >"$T/$name.conf"
}

declare -A BRIDGE_PID
start_bridge() {          # name [env...]
    local name=$1
    shift
    env "$@" "$BRIDGE" -c "$T/$name.conf" ${BRIDGE_ARGS:-} >>"$T/bridge-$name.log" 2>&1 &
    BRIDGE_PID[$name]=$!
    track "${BRIDGE_PID[$name]}" "bridge-$name"
}

# wait until a bridge exits by itself; BRIDGE_RC is its status. 1: still
# running after the timeout (it is left running: cleanup kills it)
wait_bridge_exit() {      # name timeout_s
    local pid=${BRIDGE_PID[$1]:-} deadline=$((SECONDS + $2))
    [[ -n $pid ]] || return 1
    while kill -0 "$pid" 2>/dev/null; do
        ((SECONDS < deadline)) || return 1
        sleep 0.1
    done
    wait "$pid"
    BRIDGE_RC=$?
    BRIDGE_PID[$1]=
}

stop_bridge() {           # name [signal]
    local name=$1 sig=${2:-TERM} pid=${BRIDGE_PID[$1]:-}
    [[ -n $pid ]] || return 0
    kill -"$sig" "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    BRIDGE_PID[$name]=
}

# stats NAME JQ-EXPR: a value from the bridge's stats.json
stats() { jq -r "$2" "$T/state-$1/stats.json" 2>/dev/null; }

# wait until the bridge wrote stats (it is up) or timeout
wait_bridge_up() {        # name [timeout s]
    local deadline=$((SECONDS + ${2:-20}))
    while ((SECONDS < deadline)); do
        grep -q "running:" "$T/bridge-$1.log" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# wait until the bridge's exports are subscribed (jetstream: stream ready)
wait_export_ready() {     # name count [timeout s]
    local deadline=$((SECONDS + ${3:-30}))
    while ((SECONDS < deadline)); do
        [[ $(grep -c "durable consumer are ready" "$T/bridge-$1.log" 2>/dev/null) -ge $2 ]] && return 0
        sleep 0.1
    done
    return 1
}

cleanup_all() {
    local pid name
    if [[ -f $T/pids ]]; then
        while read -r pid name; do
            kill -TERM "$pid" 2>/dev/null || true
        done <"$T/pids"
        sleep 0.3
        while read -r pid name; do
            kill -KILL "$pid" 2>/dev/null || true
        done <"$T/pids"
    fi
    wait 2>/dev/null || true
    rm -f /dev/shm/uhp."$RUNID".* 2>/dev/null || true
}
