#!/usr/bin/env bash
# fastpath-budget.sh: instructions per message on the ring fast path, counted
# by valgrind --tool=callgrind (deterministic for a given binary, whatever
# else the machine does), against the budget kept in bench/fastpath.budget.
#
# Counted for fastpath_ir linked with libuhp.a and with libuhp.so (calls
# inside a shared library could go through the PLT), each through a shared
# ring and through a claimed exclusive ring (uhp_claim_ring()).
#
# Two runs, N1 and N2 round trips of a 64-byte record (send + recv, CRC
# sealed and checked): (Ir(N2) - Ir(N1)) / (N2 - N1) cancels set-up and
# exit. Under valgrind the CPU lacks AVX-512, so the paths counted are the
# ones valgrind's CPU has: the figure guards the code, not the hardware.
# UHP_CRC=sse42: the fast paths' hardware seal, which every x86-64 CPU with
# SSE4.2 runs; left to auto, libuhp would time valgrind's emulated crc32
# against the table (userlib/simd/crc32c.c) and count the table.
#
#   scripts/fastpath-budget.sh          check (exit 1 over budget)
#   scripts/fastpath-budget.sh --print  just print the figure
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${UHP_BUILD:-$root/build}
bin=$build/bench/fastpath_ir
budget_file=$root/bench/fastpath.budget

command -v valgrind >/dev/null || { echo "fastpath-budget: valgrind missing (scripts/deps.sh)" >&2; exit 2; }
make -s -C "$root/bench" O="$build" fastpath >/dev/null

# "TOTAL LIB": the whole run, and what uhp_send and uhp_recv cost
# inclusively (callgrind_annotate --inclusive), whatever they call.
ir() {
    local out
    out=$(mktemp)
    UHP_CRC=sse42 valgrind --tool=callgrind --callgrind-out-file="$out" "$1" "$2" $3 >/dev/null 2>&1
    echo "$(awk '/^(summary|totals):/ { print $2; exit }' "$out")" \
         "$(callgrind_annotate --inclusive=yes "$out" 2>/dev/null |
            awk '/:uhp_(send|recv) \[/ { gsub(",", "", $1); s += $1 } END { print s + 0 }')"
    rm -f "$out"
}
# "PER_ITERATION IN_SEND_RECV" per message, set-up and exit cancelled.
per_message() {
    local n1=2000 n2=12000 t1 l1 t2 l2
    read -r t1 l1 <<<"$(ir "$1" $n1 "${2:-}")"
    read -r t2 l2 <<<"$(ir "$1" $n2 "${2:-}")"
    echo $(( (t2 - t1) / (n2 - n1) )) $(( (l2 - l1) / (n2 - n1) ))
}
budget=$(grep -v '^#' "$budget_file" | head -n 1)
rc=0
for run in "$bin" "${bin}_so" "$bin excl" "${bin}_so excl"; do
    read -r bin mode <<<"$run"
    read -r per lib <<<"$(per_message "$bin" "$mode")"
    how=libuhp.a
    [[ $bin == *_so ]] && how=libuhp.so
    how+=${mode:+, exclusive ring}
    echo "fastpath: $per instructions per message (send + recv of 64 B, CRC both ways; $how; $lib inside uhp_send + uhp_recv, $(( per - lib )) the loop's own); budget $budget"
    [[ ${1:-} == --print ]] && continue
    if (( per > budget )); then
        echo "fastpath: OVER BUDGET by $(( per - budget )) instructions ($how): a fast-path change costs more; justify it and raise bench/fastpath.budget, or fix it" >&2
        rc=1
    fi
done
exit $rc
