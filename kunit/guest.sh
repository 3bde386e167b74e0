#!/bin/sh
# Inside a guest (busybox sh): run the uhp KUnit suites by loading a uhp.ko
# that has them linked in (scripts/kunit-guest.sh builds it), and print
# their KTAP report between "KTAP-BEGIN" and "KTAP-END" lines for the host.
#
#   guest.sh [KO]     KO defaults to /uhp/uhp.ko
#
# KUnit runs a module's suites when it is loaded, before insmod returns.
#
# Two cases provoke a kernel report on purpose: uhp_context_put_might_sleep
# (DEBUG_ATOMIC_SLEEP's "BUG: sleeping function called from invalid
# context") and uhp_context_nmi_refused (the WARN_ON_ONCE(in_nmi()) in
# uhp_kring_reserve()). The kernel log is split at each case's result line;
# a splat in the span of one of those two cases is expected, anywhere else
# it fails the run. When only expected ones are found the log is cleared
# (dmesg -c), since scripts/guest-init fails any run whose log shows one.
ko=${1:-/uhp/uhp.ko}

fail() {
	echo "kunit-guest: FAIL: $*"
	exit 1
}

# What scripts/guest-init counts as a splat (keep in step with its SPLAT).
SPLAT='BUG:|WARNING:|Oops|Call Trace|general protection|KASAN|UBSAN|hung_task|blocked for more than|kernel BUG|soft lockup|rcu.*stall|circular locking|possible recursive locking'
EXPECTED='uhp_context_put_might_sleep|uhp_context_nmi_refused'

[ -f "$ko" ] || fail "$ko not found"
dmesg | grep -qE "$SPLAT" && fail "the kernel log shows a splat before the suites ran"

mark="kunit-guest: start $$"
echo "$mark" >/dev/kmsg
out=$(insmod "$ko" 2>&1) || fail "insmod $ko: $out"
rmmod uhp || fail "rmmod uhp failed"

# The log since the mark, without printk's "[    1.234567] " prefixes.
dmesg | sed -n "/$mark\$/,\$p" | sed 's/^\[[ 0-9.]*\] //' >/tmp/.kunit.log
echo "KTAP-BEGIN"
cat /tmp/.kunit.log
echo "KTAP-END"

# Each case's output ends with its "ok N name" / "not ok N name" line.
unexpected=$(awk -v expected="$EXPECTED" -v splat="$SPLAT" '
	{ span[n++] = $0 }
	/^[ \t]*(not )?ok [0-9]+ / {
		keep = $0 !~ ("(not )?ok [0-9]+ (" expected ")( |$)")
		for (i = 0; i < n; i++)
			if (keep && span[i] ~ splat)
				print span[i]
		n = 0
	}
	END { for (i = 0; i < n; i++) if (span[i] ~ splat) print span[i] }
' /tmp/.kunit.log)
[ -z "$unexpected" ] || fail "a kernel splat outside the cases that expect one: $(echo "$unexpected" | head -n 3)"
dmesg -c >/dev/null
echo "kunit-guest: suites ran; no unexpected splat"
exit 0
