#!/bin/sh
# SPDX-License-Identifier: MIT
#
# man-check.sh: the man pages under man/ against libuhp.so's exports.
#
#   scripts/man-check.sh [LIBUHP_SO]     (default: build/userlib/libuhp.so)
#
# Fails (exit 1, one line per problem on stderr) when
#   - an exported function of LIBUHP_SO (nm -D, type T) has no man/man3/<sym>.3,
#     or is not listed in man/man3/libuhp.3 (the index) and in the SEE ALSO
#     of man/man7/uhp.7;
#   - man/man7/uhp.7, man/man8/uhpctl.8, man/man3/libuhp.3 or the bridge's
#     pages (man/man8/uhp-bridge.8, man/man5/uhp-bridge.conf.5) is missing;
#   - a ".so" redirect points at a missing page (or at another redirect);
#   - a page's NAME section (for a redirect: its target's) does not name the
#     page, or a full page's .TH does not carry the page's name and section;
#   - groff -man -Tutf8 -ww -z prints anything (a roff warning or error).
# Prints "man-check: N symbols, N pages, ok" when all is well.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
lib=${1:-$root/build/userlib/libuhp.so}
man=$root/man
problems=0

export LC_ALL=C

bad() {
	echo "man-check: $*" >&2
	problems=$((problems + 1))
}

die() {
	echo "man-check: $*" >&2
	exit 1
}

command -v nm >/dev/null 2>&1 || die "nm not found (binutils)"
command -v groff >/dev/null 2>&1 || die "groff not found (Debian: apt-get install groff-base)"
[ -f "$lib" ] || die "$lib: no such file (build it with: make -C $root lib)"
[ -d "$man" ] || die "$man: no such directory"

# The exported functions, without their symbol version (uhp_send@@UHP_0.1).
syms=$(nm -D --defined-only "$lib" | awk '$2 == "T" { sub(/@.*/, "", $3); print $3 }' | sort -u)
[ -n "$syms" ] || die "$lib: no exported functions (not libuhp.so?)"
nsyms=$(echo "$syms" | wc -l)

for p in man7/uhp.7 man8/uhpctl.8 man3/libuhp.3 man8/uhp-bridge.8 man5/uhp-bridge.conf.5; do
	[ -f "$man/$p" ] || bad "man/$p is missing"
done

# The .so target of a redirect page (first line that is not a comment), or "".
so_target() {
	awk '/^\.\\"/ || /^[ \t]*$/ { next }
	     /^\.so[ \t]/ { print $2 } { exit }' "$1"
}

# The text of the NAME section of a page.
name_section() {
	awk '/^\.SH[ \t]+"?NAME"?[ \t]*$/ { f = 1; next } /^\.SH/ { f = 0 } f' "$1"
}

# Does the SEE ALSO section of page $1 mention word $2?
see_also_has() {
	awk '/^\.SH[ \t]+"?SEE ALSO"?[ \t]*$/ { f = 1; next } /^\.SH/ { f = 0 } f' "$1" |
		grep -qwF -- "$2"
}

for sym in $syms; do
	if [ ! -f "$man/man3/$sym.3" ]; then
		bad "no man page for exported symbol $sym (man/man3/$sym.3)"
	fi
	if [ -f "$man/man3/libuhp.3" ] && ! grep -qwF -- "$sym" "$man/man3/libuhp.3"; then
		bad "man/man3/libuhp.3 does not list $sym"
	fi
	if [ -f "$man/man7/uhp.7" ] && ! see_also_has "$man/man7/uhp.7" "$sym"; then
		bad "man/man7/uhp.7: SEE ALSO does not list $sym"
	fi
done

npages=0
for f in "$man"/man[1-8]/*.[1-8]; do
	[ -f "$f" ] || continue
	npages=$((npages + 1))
	rel=${f#"$man"/}
	base=$(basename "$f")
	sec=${base##*.}
	page=${base%.*}
	src=$f
	target=$(so_target "$f")
	if [ -n "$target" ]; then
		if [ ! -f "$man/$target" ]; then
			bad "man/$rel: .so points at missing $target"
			continue
		fi
		if [ -n "$(so_target "$man/$target")" ]; then
			bad "man/$rel: .so points at $target, itself a redirect"
			continue
		fi
		src=$man/$target
	else
		th=$(awk '/^\.TH[ \t]/ { print $2, $3; exit }' "$f")
		if [ "$th" != "$page $sec" ]; then
			bad "man/$rel: .TH says \"${th:-nothing}\", not \"$page $sec\""
		fi
	fi
	names=$(name_section "$src")
	if [ -z "$names" ]; then
		bad "man/$rel: no NAME section${target:+ in $target}"
	elif ! echo "$names" | grep -qwF -- "$page"; then
		bad "man/$rel: NAME section${target:+ of $target} does not mention $page"
	fi
	# From man/, so that ".so man3/x.3" resolves as man(1) resolves it.
	out=$(cd "$man" && groff -man -Tutf8 -ww -z "$rel" 2>&1) || true
	if [ -n "$out" ]; then
		bad "man/$rel: groff -man -Tutf8 -ww -z says:"
		echo "$out" | sed 's/^/    /' >&2
	fi
done
[ "$npages" -gt 0 ] || bad "no pages under man/"

if [ "$problems" -gt 0 ]; then
	echo "man-check: $problems problem(s); $nsyms symbols, $npages pages" >&2
	exit 1
fi
echo "man-check: $nsyms symbols, $npages pages, ok"
