#!/usr/bin/env bash
# The kernel matrix of `make check`: for every lane (scripts/lane.sh), build
# uhp.ko and the sample module through dkms, warning-free, check them with
# sparse, boot the lane's kernel and run the whole guest suite; on the debug
# lane also prove that KASAN is on (tests/kasan) and run the KUnit suites
# (scripts/kunit-guest.sh). Ends with one table:
#
#   kernel | module build | sparse | guest tests passed/failed | console
#
#   scripts/matrix.sh [LANE...]      default: every lane (scripts/lane.sh --list)
#
# A lane that fails does not stop the others: one run tells about all of
# them. The exit status is the verdict. Logs: build/matrix/<lane>.*.log
# (<lane>.console.log: the guest's whole console). A guest that died or
# splatted gets its console's last lines printed after the table, where a
# CI log's tail still shows them.
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${UHP_BUILD:-$repo/build}
logs=$build/matrix
UHP_VM_FLAGS=${UHP_VM_FLAGS:-}
mkdir -p "$logs"

lanes=("$@")
[[ ${#lanes[@]} -gt 0 ]] || read -r -a lanes <<<"$("$repo/scripts/lane.sh" --list)"

rows=()
died=()
rc=0
for lane in "${lanes[@]}"; do
    t0=$(date +%s)
    kver="?" mod="-" sparse="-" tests="-" console="-"
    echo "== kernel lane $lane"
    if env=$("$repo/scripts/lane.sh" "$lane" 2>"$logs/$lane.prepare.log"); then
        kver=$(. "$env" && echo "$KVER")
    else
        tail -n 30 "$logs/$lane.prepare.log" >&2
        rows+=("$lane|?|lane not prepared (build/matrix/$lane.prepare.log)|-|-|-|$(($(date +%s) - t0))s")
        rc=1
        continue
    fi

    if kodir=$("$repo/scripts/dkms-build.sh" "$lane" 2>"$logs/$lane.build.log"); then
        mod=ok
    else
        tail -n 30 "$logs/$lane.build.log" >&2
        mod=FAIL
        rc=1
    fi

    if [[ $mod == ok ]]; then
        if "$repo/scripts/sparse.sh" "$lane" >"$logs/$lane.sparse.log" 2>&1; then
            sparse=clean
        else
            tail -n 30 "$logs/$lane.sparse.log" >&2
            sparse=FAIL
            rc=1
        fi

        # shellcheck disable=SC2086 # UHP_VM_FLAGS is a list of options
        "$repo/scripts/uhp-vm" $UHP_VM_FLAGS --lane "$lane" --ko "$kodir" test 2>&1 |
            tee "$logs/$lane.guest.log"
        grc=${PIPESTATUS[0]}
        cp "$build/vm/console.log" "$logs/$lane.console.log" 2>/dev/null || true
        counts=$(sed -n 's/^guest: \([0-9]*\) passed, \([0-9]*\) failed, \([0-9]*\) skipped$/\1 passed, \2 failed, \3 skipped/p' \
                 "$logs/$lane.guest.log" | tail -n1)
        tests=${counts:-"no result"}
        if grep -q 'kernel splat\|kernel log shows a splat' "$logs/$lane.guest.log"; then
            console=SPLAT
            died+=("$lane")
        elif grep -q 'uhp-vm: FAIL: guest' "$logs/$lane.guest.log"; then
            console=DIED
            died+=("$lane")
        else
            console=clean
        fi
        [[ $grc -eq 0 ]] || rc=1

        # The debug kernel must really catch a use-after-free.
        if [[ $(. "$env" && echo "$DEBUG") == 1 ]]; then
            if "$repo/scripts/kasan-probe.sh" "$lane" >"$logs/$lane.kasan.log" 2>&1; then
                console="$console, KASAN proven"
            else
                tail -n 30 "$logs/$lane.kasan.log" >&2
                console="$console, KASAN NOT proven"
                rc=1
            fi
            # The KUnit suites, under KASAN/lockdep/DEBUG_ATOMIC_SLEEP.
            if "$repo/scripts/kunit-guest.sh" "$lane" >"$logs/$lane.kunit.log" 2>&1; then
                kunit=$(sed -n 's/.*Testing complete. Ran \([0-9]*\) tests: \(.*\)$/\1 KUnit: \2/p' \
                        "$logs/$lane.kunit.log" | tail -n1)
                console="$console, ${kunit:-KUnit passed}"
            else
                tail -n 30 "$logs/$lane.kunit.log" >&2
                console="$console, KUnit FAILED"
                rc=1
            fi
        fi
    fi
    rows+=("$lane|$kver|$mod|$sparse|$tests|$console|$(($(date +%s) - t0))s")
done

echo
echo "== kernel matrix"
{
    echo "lane|kernel|module build|sparse|guest tests|console|time"
    printf '%s\n' "${rows[@]}"
} | column -t -s '|' -o ' | '
for lane in "${died[@]}"; do
    echo
    echo "== $lane: the guest's console, last test started and last 60 lines ($logs/$lane.console.log)"
    grep 'uhp-test: start' "$logs/$lane.console.log" 2>/dev/null | tail -n1
    tail -n 60 "$logs/$lane.console.log" 2>/dev/null
done
exit $rc
