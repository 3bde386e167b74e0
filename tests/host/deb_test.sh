#!/bin/sh
# SPDX-License-Identifier: MIT
#
# deb_test: the Debian packages of debian/, built by dpkg-buildpackage from
# a copy of the tree (the working tree and its build/ are never touched).
#  - the five binary packages build (uhp-dkms, libuhp0, libuhp-dev,
#    uhp-tools, uhp-bridge), and nothing of the module is compiled doing so;
#  - uhp-dkms holds exactly what `make dkms-src` lays out, with the
#    version of ./VERSION in dkms.conf, registers it with dkms (dh_dkms),
#    creates the group uhp and ships the udev rule and the examples;
#  - libuhp0 the .so (soname libuhp.so.0, uhp_* only, each versioned
#    UHP_x.y), debian/libuhp0.symbols up to date; libuhp-dev the headers,
#    libuhp.so, libuhp.a and a uhp.pc for /usr and the multiarch libdir,
#    and a man page for every exported symbol; uhp-tools uhpctl; every
#    page of man/ shipped;
#  - uhp-bridge the bridge (it runs), its template unit in /lib/systemd/system
#    running /usr/bin/uhp-bridge and enabled for no instance, its
#    sysusers.d file applied by the postinst, /etc/uhp-bridge/example.conf a
#    conffile, its two man pages;
#  - debian/changelog's upstream version is ./VERSION's;
#  - lintian reports no error (its warnings are listed).
# Skips (exit 0) without dpkg-buildpackage, debhelper, dh_dkms or lintian.
#
# usage: deb_test.sh ROOT    (TAP output, non-zero exit on failure)
#        UHP_DEB_KEEP=1 deb_test.sh ROOT   keeps the build directory
set -u
ROOT=$(cd "$1" && pwd) || exit 2
t0=$(date +%s)

# Packages that provide the tools (for scripts/deps.sh): dpkg-dev,
# debhelper, dh-dkms, lintian.
for tool in dpkg-buildpackage:dpkg-dev dh:debhelper dh_dkms:dh-dkms lintian:lintian; do
	if ! command -v "${tool%%:*}" >/dev/null; then
		echo "1..0 # SKIP ${tool%%:*} missing (Debian package ${tool#*:}; scripts/deps.sh installs it)"
		exit 0
	fi
done

TMP=$(mktemp -d)
if [ "${UHP_DEB_KEEP:-0}" = 1 ]; then
	trap 'echo "# kept: $TMP"' EXIT
else
	trap 'rm -rf "$TMP"' EXIT
fi
n=0 failed=0
ok() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; failed=$((failed + 1)); fi; }
skip() { n=$((n + 1)); echo "ok $n - $1 # SKIP $2"; }
# Does the extracted package $1 hold path $2 (a file, or a symlink)?
has() { [ -e "$TMP/x/$1$2" ] || [ -L "$TMP/x/$1$2" ]; }

VERSION=$(cat "$ROOT/VERSION")
MA=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
ARCH=$(dpkg-architecture -qDEB_HOST_ARCH)
LIBDIR=/usr/lib/$MA
echo "1..14"

# debian/changelog: Version is the upstream version (native) or
# upstream-revision, maybe with an epoch.
DV=$(dpkg-parsechangelog -l "$ROOT/debian/changelog" -S Version 2>/dev/null)
DV=${DV#*:}
UPSTREAM=${DV%-*}
[ -n "$DV" ] && [ "$UPSTREAM" = "$VERSION" ]
ok $? "debian/changelog's upstream version ${UPSTREAM:-(none)} is ./VERSION's ($VERSION)"

# The copy: what git tracks or would track (not ignored), else the tree
# without build output.
SRC=$TMP/src/uhp-$VERSION
mkdir -p "$SRC"
if git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	how="git ls-files -co --exclude-standard"
	git -C "$ROOT" ls-files -co --exclude-standard | while IFS= read -r f; do
		# tracked but deleted in the working tree: nothing to copy
		if [ -e "$ROOT/$f" ] || [ -L "$ROOT/$f" ]; then printf '%s\n' "$f"; fi
	done >"$TMP/files"
	tar -C "$ROOT" -cf - -T "$TMP/files" | tar -C "$SRC" -xf -
else
	how="tar without build/ and kbuild output"
	tar -C "$ROOT" --exclude=./build --exclude=./.git --exclude='*.o' --exclude='*.ko' \
		--exclude='*.mod' --exclude='*.mod.c' --exclude='*.cmd' --exclude=Module.symvers \
		--exclude=modules.order -cf - . | tar -C "$SRC" -xf -
fi
echo "# source copy ($how): $(find "$SRC" -type f | wc -l) files in $SRC"

# Build tools are checked above; any other unmet Build-Depends fails the
# build (and names itself in the log).
: "${DEB_BUILD_OPTIONS:=parallel=$(nproc 2>/dev/null || echo 2)}"
export DEB_BUILD_OPTIONS
tb=$(date +%s)
(cd "$SRC" && dpkg-buildpackage -us -uc -b) >"$TMP/build.log" 2>&1
rc=$?
# uhp.ko is dkms's to build, on the target: no kbuild output in the copy.
kbuilt=$(cd "$SRC" && find . -name '*.ko' -o -name '*.mod' -o -path './kmod/*.o' | head -3)
[ $rc = 0 ] && [ -z "$kbuilt" ]
ok $? "dpkg-buildpackage -us -uc -b ($(($(date +%s) - tb))s), the module not built"
[ $rc = 0 ] || { sed 's/^/# /' "$TMP/build.log" | tail -25; }
[ -z "$kbuilt" ] || printf '%s\n' "$kbuilt" | sed 's/^/# kbuild output: /'

# The five packages, their contents in the comments.
D=$TMP/src
missing=""
for p in uhp-dkms:all libuhp0:$ARCH libuhp-dev:$ARCH uhp-tools:$ARCH uhp-bridge:$ARCH; do
	deb=$D/${p%%:*}_${DV}_${p#*:}.deb
	if [ -f "$deb" ]; then
		mkdir -p "$TMP/x/${p%%:*}" &&
		dpkg-deb -x "$deb" "$TMP/x/${p%%:*}" &&
		dpkg-deb -e "$deb" "$TMP/x/${p%%:*}/DEBIAN"
	else
		missing="$missing $(basename "$deb")"
	fi
done
[ -z "$missing" ]
ok $? "the five packages: uhp-dkms, libuhp0, libuhp-dev, uhp-tools, uhp-bridge ($DV)"
[ -z "$missing" ] || echo "# missing:$missing"
for p in uhp-dkms libuhp0 libuhp-dev uhp-tools uhp-bridge; do
	[ -d "$TMP/x/$p" ] || continue
	echo "# $p: $(dpkg-deb -f "$D/${p}_${DV}_"*.deb Depends)"
	dpkg-deb -c "$D/${p}_${DV}_"*.deb | awk -v p="$p" '{ l = "#   " $1 " " $6; if ($7 == "->") l = l " -> " $8; print l }'
done

# uhp-dkms: /usr/src/uhp-VERSION is `make dkms-src`, file for file.
S=/usr/src/uhp-$VERSION
make -s -C "$SRC" dkms-src KDIR=/nonexistent DESTDIR="$TMP/ref" >>"$TMP/dkms-src.log" 2>&1 &&
	[ -d "$TMP/x/uhp-dkms$S" ] &&
	diff -r "$TMP/ref$S" "$TMP/x/uhp-dkms$S" >"$TMP/dkdiff" 2>&1 &&
	[ "$(ls "$TMP/x/uhp-dkms/usr/src")" = "uhp-$VERSION" ] &&
	grep -qx "PACKAGE_VERSION=\"$VERSION\"" "$TMP/x/uhp-dkms$S/dkms.conf"
ok $? "uhp-dkms: $S is what make dkms-src makes ($(find "$TMP/ref$S" -type f 2>/dev/null | wc -l) files), dkms.conf PACKAGE_VERSION=\"$VERSION\""
sed 's/^/# /' "$TMP/dkdiff" 2>/dev/null | head -8

# uhp-dkms: dkms registration, the group, the rule, the examples.
C=$TMP/x/uhp-dkms/DEBIAN
has uhp-dkms /lib/udev/rules.d/60-uhp.rules &&
	has uhp-dkms /usr/share/doc/uhp-dkms/examples/modprobe.d-uhp.conf &&
	has uhp-dkms /usr/share/doc/uhp-dkms/examples/modules-load.d-uhp.conf &&
	grep -q "common.postinst" "$C/postinst" && grep -q "^DKMS_VERSION=$VERSION\$" "$C/postinst" &&
	grep -q "addgroup --system" "$C/postinst" &&
	grep -q "dkms remove" "$C/prerm" &&
	dpkg-deb -f "$D/uhp-dkms_${DV}_all.deb" Depends | grep -q 'dkms'
ok $? "uhp-dkms: udev rule in /lib/udev/rules.d, examples, postinst (dh_dkms, addgroup uhp), prerm, Depends dkms"

# libuhp0: the shared library as the ABI check wants it.
SO=$TMP/x/libuhp0$LIBDIR/libuhp.so.$VERSION
[ -f "$SO" ] && [ "$(readlink "$TMP/x/libuhp0$LIBDIR/libuhp.so.0")" = "libuhp.so.$VERSION" ] &&
	readelf -d "$SO" | grep -q 'Library soname: \[libuhp.so.0\]' &&
	nm -D --defined-only "$SO" | awk '{ print $3 }' >"$TMP/exported" && [ -s "$TMP/exported" ] &&
	! grep -qvE '^(uhp_[a-z0-9_]+@@?UHP_[0-9]+\.[0-9]+|UHP_[0-9]+\.[0-9]+)$' "$TMP/exported" &&
	[ -s "$TMP/x/libuhp0/DEBIAN/symbols" ] && [ -s "$TMP/x/libuhp0/DEBIAN/shlibs" ]
ok $? "libuhp0: $LIBDIR/libuhp.so.0 -> libuhp.so.$VERSION, only uhp_* exported, each versioned ($(grep -o 'UHP_[0-9.]*$' "$TMP/exported" 2>/dev/null | sort -u | tr '\n' ' ' | sed 's/ $//')), symbols and shlibs files"
grep -vE '^(uhp_[a-z0-9_]+@@?UHP_[0-9]+\.[0-9]+|UHP_[0-9]+\.[0-9]+)$' "$TMP/exported" 2>/dev/null | head -5 | sed 's/^/# stray: /'

# debian/libuhp0.symbols must follow the exports: dpkg-gensymbols only
# warns when symbols appear (regenerate: see the file's header).
! grep -q '^dpkg-gensymbols: warning' "$TMP/build.log" && [ -s "$TMP/x/libuhp0/DEBIAN/symbols" ]
ok $? "debian/libuhp0.symbols lists exactly the $(grep -c '^ uhp_' "$TMP/x/libuhp0/DEBIAN/symbols" 2>/dev/null) symbols of libuhp.so (no dpkg-gensymbols warning)"
grep -E '^[-+] ' "$TMP/build.log" | grep -v '^[-+][-+]' | sed 's/^/# dpkg-gensymbols: /' | head -12

# libuhp-dev: headers, link-time libraries, .pc, dependency on libuhp0.
missing=""
for f in /usr/include/uhp/uhp.h /usr/include/uhp/uhp_version.h /usr/include/uhp/uhp_uring.h \
	/usr/include/uhp/uhp_runtime.h /usr/include/uhp/linux/uhp.h "$LIBDIR/libuhp.so" \
	"$LIBDIR/libuhp.a" "$LIBDIR/pkgconfig/uhp.pc"; do
	has libuhp-dev "$f" || missing="$missing $f"
done
dep=$(dpkg-deb -f "$D/libuhp-dev_${DV}_$ARCH.deb" Depends 2>/dev/null)
case "$dep" in *"libuhp0 (= $DV)"*) ;; *) missing="$missing Depends:libuhp0(=$DV)" ;; esac
[ -z "$missing" ] && [ "$(readlink "$TMP/x/libuhp-dev$LIBDIR/libuhp.so")" = libuhp.so.0 ]
ok $? "libuhp-dev: headers in /usr/include/uhp, libuhp.so -> libuhp.so.0, libuhp.a, uhp.pc, Depends libuhp0 (= $DV)"
[ -z "$missing" ] || echo "# missing:$missing"

PC=$TMP/x/libuhp-dev$LIBDIR/pkgconfig/uhp.pc
grep -qx 'prefix=/usr' "$PC" 2>/dev/null && grep -qx "libdir=$LIBDIR" "$PC" &&
	grep -qx 'includedir=/usr/include' "$PC" && grep -qx "Version: $VERSION" "$PC"
ok $? "libuhp-dev's uhp.pc: prefix=/usr, libdir=$LIBDIR, version $VERSION"
grep -E '^(prefix|libdir|includedir|Version)' "$PC" 2>/dev/null | sed 's/^/# /'

# Man pages: one per exported symbol, and every page of man/ shipped
# (sections 3 and 7 in libuhp-dev, uhpctl(8) in uhp-tools, uhp-bridge's in
# uhp-bridge).
if [ ! -d "$SRC/man" ]; then
	skip "libuhp-dev: a man page per exported symbol" "no man/ in the source yet"
	skip "every page of man/ is in a package" "no man/ in the source yet"
else
	missing="" nsym=0
	for s in $(nm -D --defined-only "$SO" 2>/dev/null | awk '$2 != "A" { sub(/@.*/, "", $3); print $3 }' | sort -u); do
		nsym=$((nsym + 1))
		has libuhp-dev "/usr/share/man/man3/$s.3.gz" || missing="$missing $s"
	done
	[ $nsym -gt 0 ] && [ -z "$missing" ]
	ok $? "libuhp-dev: a man page for each of the $nsym symbols libuhp.so exports"
	[ -z "$missing" ] || echo "# no page:$missing" | fold -w 200

	missing="" npages=0
	for p in "$SRC"/man/man3/*.3 "$SRC"/man/man5/*.5 "$SRC"/man/man7/*.7 "$SRC"/man/man8/*.8; do
		[ -f "$p" ] || continue
		npages=$((npages + 1))
		sec=$(basename "$(dirname "$p")")
		case $(basename "$p"):$sec in
		uhp-bridge.*) pkg=uhp-bridge ;;
		*:man8) pkg=uhp-tools ;;
		*) pkg=libuhp-dev ;;
		esac
		has $pkg "/usr/share/man/$sec/$(basename "$p").gz" || missing="$missing $pkg:$sec/$(basename "$p")"
	done
	[ -z "$missing" ]
	ok $? "every page of man/ ($npages) is shipped: man3, man7 in libuhp-dev, uhpctl(8) in uhp-tools, uhp-bridge(8) and uhp-bridge.conf(5) in uhp-bridge"
	[ -z "$missing" ] || echo "# not shipped:$missing" | fold -w 200
fi

has uhp-tools /usr/bin/uhpctl && [ -x "$TMP/x/uhp-tools/usr/bin/uhpctl" ] &&
	{ [ ! -f "$SRC/man/man8/uhpctl.8" ] || has uhp-tools /usr/share/man/man8/uhpctl.8.gz; }
ok $? "uhp-tools: /usr/bin/uhpctl$([ -f "$SRC/man/man8/uhpctl.8" ] && echo ' and uhpctl(8)')"

# uhp-bridge: the binary (it runs: --version, and --check refuses the
# example as shipped), the unit for /usr/bin, nothing enabled, the account.
X=$TMP/x/uhp-bridge
U=/lib/systemd/system/uhp-bridge@.service
missing=""
for f in /usr/bin/uhp-bridge $U /usr/lib/sysusers.d/uhp-bridge.conf /etc/uhp-bridge/example.conf \
	/usr/share/man/man8/uhp-bridge.8.gz /usr/share/man/man5/uhp-bridge.conf.5.gz; do
	has uhp-bridge "$f" || missing="$missing $f"
done
grep -qx 'ExecStart=/usr/bin/uhp-bridge -c /etc/uhp-bridge/%i.conf --state-dir %S/uhp-bridge/%i' "$X$U" 2>/dev/null ||
	missing="$missing ExecStart"
grep -qx /etc/uhp-bridge/example.conf "$X/DEBIAN/conffiles" 2>/dev/null || missing="$missing conffile"
grep -q 'systemd-sysusers .*uhp-bridge.conf' "$X/DEBIAN/postinst" 2>/dev/null || missing="$missing postinst:sysusers"
! grep -qs 'uhp-bridge@' "$X/DEBIAN/postinst" || missing="$missing postinst:enables-an-instance"
dep=$(dpkg-deb -f "$D/uhp-bridge_${DV}_$ARCH.deb" Depends 2>/dev/null)
case "$dep" in *libnats*) ;; *) missing="$missing Depends:libnats" ;; esac
"$X/usr/bin/uhp-bridge" --version >"$TMP/ub.out" 2>&1 || missing="$missing --version"
"$X/usr/bin/uhp-bridge" --check -c "$X/etc/uhp-bridge/example.conf" >>"$TMP/ub.out" 2>&1
[ $? = 2 ] || missing="$missing --check(example)"
[ -z "$missing" ]
ok $? "uhp-bridge: /usr/bin/uhp-bridge runs, $U for it (no instance enabled), sysusers.d applied by the postinst, example.conf a conffile, Depends libnats"
[ -z "$missing" ] || echo "# wrong or missing:$missing"
sed 's/^/# /' "$TMP/ub.out"

# lintian on the whole upload: warnings listed, errors fail.
lintian "$D/uhp_${DV}_$ARCH.changes" >"$TMP/lintian.log" 2>&1
rc=$?
grep -E '^[EW]: ' "$TMP/lintian.log" | sed 's/^/# /'
nerr=$(grep -c '^E: ' "$TMP/lintian.log")
nwarn=$(grep -c '^W: ' "$TMP/lintian.log")
[ $rc -le 1 ] && [ "$nerr" = 0 ] && [ -f "$D/uhp_${DV}_$ARCH.changes" ]
ok $? "lintian $(lintian --version | sed 's/^Lintian v//'): $nerr errors, $nwarn warnings"
[ $rc -le 1 ] || sed 's/^/# /' "$TMP/lintian.log" | tail -10

echo "# deb_test took $(($(date +%s) - t0))s"
echo "$((n - failed)) passed, $failed failed"
[ $failed = 0 ]
