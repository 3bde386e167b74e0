#!/bin/sh
# Inside the debug guest (busybox sh): prove that KASAN reports bugs.
#
#   kasan-probe.sh [KO]     KO defaults to /uhp/uhp_kasan_probe.ko
#
# It loads uhp_kasan_probe.ko (tests/kasan/uhp_kasan_probe.c), whose init
# reads a freed slab object, removes it again, and looks in the kernel log
# written since its own marker for "BUG: KASAN: slab-use-after-free in
# uhp_kasan_probe...".  Prints one "kasan-probe: PASS" or
# "kasan-probe: FAIL: why" line; exit 0 or 1.
#
# On PASS it clears the kernel log (dmesg -c): the report is expected, and
# scripts/guest-init fails any run whose log shows a splat.  It does not
# clear it when the log already showed a splat before the probe, so such a
# splat still fails the run.
#
# KASAN reports only its first bug per boot unless the kernel command line
# has kasan_multi_shot, and every report turns lockdep off for the rest of
# the boot (taint BAD_PAGE): run this in a boot of its own, or last.
# kasan.fault defaults to "report" and panic_on_warn to 0, so the report
# itself does not stop the guest.

ko=${1:-/uhp/uhp_kasan_probe.ko}

fail() {
	echo "kasan-probe: FAIL: $*"
	exit 1
}

# What scripts/guest-init counts as a splat (keep in step with its SPLAT).
SPLAT='BUG:|WARNING:|Oops|Call Trace|general protection|KASAN|UBSAN|hung_task|blocked for more than|kernel BUG|soft lockup|rcu.*stall|circular locking|possible recursive locking'

[ -f "$ko" ] || fail "$ko not found"
[ -w /dev/kmsg ] || fail "/dev/kmsg not writable (is devtmpfs mounted, are we root?)"

earlier=0
dmesg | grep -qE "$SPLAT" && earlier=1
if [ $earlier -eq 1 ] && dmesg | grep -q 'BUG: KASAN:' &&
   ! grep -qw kasan_multi_shot /proc/cmdline; then
	fail "KASAN already reported a bug in this boot and reports only once without kasan_multi_shot"
fi

mark="kasan-probe: start $$"
echo "$mark" >/dev/kmsg
if ! out=$(insmod "$ko" 2>&1); then
	dmesg | sed -n "/$mark\$/,\$p" | tail -n 20 | sed 's/^/kasan-probe:   /'
	fail "insmod $ko: $out"
fi
rmmod uhp_kasan_probe || fail "rmmod uhp_kasan_probe failed"

dmesg | sed -n "/$mark\$/,\$p" >/tmp/.kasan-probe.log
if ! grep -q 'BUG: KASAN: slab-use-after-free in uhp_kasan_probe' /tmp/.kasan-probe.log; then
	echo "kasan-probe: kernel log since the probe:"
	sed 's/^/kasan-probe:   /' /tmp/.kasan-probe.log | tail -n 40
	grep -q 'BUG: KFENCE' /tmp/.kasan-probe.log &&
		fail "KFENCE, not KASAN, caught the use-after-free"
	fail "no 'BUG: KASAN: slab-use-after-free in uhp_kasan_probe' in the kernel log (is this the debug kernel?)"
fi

echo "kasan-probe: $(grep -m 1 'BUG: KASAN: slab-use-after-free' /tmp/.kasan-probe.log | sed 's/^\[[^]]*\] *//')"
if [ $earlier -eq 1 ]; then
	echo "kasan-probe: kernel log NOT cleared: it showed a splat before the probe"
else
	dmesg -c >/dev/null
fi
echo "kasan-probe: PASS"
exit 0
