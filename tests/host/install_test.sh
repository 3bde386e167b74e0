#!/bin/sh
# SPDX-License-Identifier: MIT
#
# install_test: what `make install`, `make uninstall` and `make dkms-src`
# put on a machine, into a scratch DESTDIR.
#  - uhp.pc names the PREFIX/LIBDIR of the install, not those of the first
#    build (the library is built first with the default /usr/local);
#  - a program builds through the installed uhp.pc and runs against the
#    installed .so, and through build/userlib/uhp-uninstalled.pc too;
#  - uhpctl, the udev rule, the examples and a man page per exported symbol
#    are installed; uninstall leaves no file behind;
#  - with libnats-dev, uhp-bridge, its unit (in systemd's unit directory for
#    PREFIX=/usr, under PREFIX/lib/systemd/system otherwise, running
#    PREFIX/bin/uhp-bridge), its sysusers.d file, its man pages and
#    /etc/uhp-bridge/example.conf; without it, or with WITH_BRIDGE=no, none
#    of that and a line that says it was skipped;
#  - the dkms source copy holds the module's sources only, its dkms.conf
#    has the version of ./VERSION and lists uhp.ko alone (no sample);
#  - depmod puts uhp in modules.devname (c10:249), so /dev/uhp exists from
#    boot and loads the module (the guest's t_autoload tests the load).
#
# usage: install_test.sh ROOT    (TAP output, non-zero exit on failure)
set -u
ROOT=$1
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
n=0 failed=0
ok() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; failed=$((failed + 1)); fi; }
skip() { n=$((n + 1)); echo "ok $n - $1 # SKIP $2"; }

VERSION=$(cat "$ROOT/VERSION")
MA=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)
D=$TMP/dest
LIBDIR=/usr/lib/$MA
echo "1..11"

if pkg-config --exists libnats 2>/dev/null || [ -f /usr/include/nats/nats.h ]; then nats=yes; else nats=no; fi
# uhp-bridge's files for PREFIX $1 (its unit directory is systemd's for /usr)
bridge_files() {
	if [ "$1" = /usr ]; then
		ud=$(pkg-config --variable=systemdsystemunitdir systemd 2>/dev/null)
		sd=$(pkg-config --variable=sysusersdir systemd 2>/dev/null)
	else
		ud="" sd=""
	fi
	echo "$1/bin/uhp-bridge ${ud:-$1/lib/systemd/system}/uhp-bridge@.service ${sd:-$1/lib/sysusers.d}/uhp-bridge.conf" \
		"$1/share/man/man8/uhp-bridge.8 $1/share/man/man5/uhp-bridge.conf.5 /etc/uhp-bridge/example.conf"
}

make -s -C "$ROOT" lib >"$TMP/build.log" 2>&1 &&
make -s -C "$ROOT" install DESTDIR="$D" PREFIX=/usr LIBDIR="$LIBDIR" >"$TMP/install.log" 2>&1
ok $? "make install DESTDIR=... PREFIX=/usr LIBDIR=$LIBDIR"
cat "$TMP/install.log" >>"$TMP/build.log"

PC=$D$LIBDIR/pkgconfig/uhp.pc
grep -qx 'prefix=/usr' "$PC" && grep -qx "libdir=$LIBDIR" "$PC" &&
	grep -qx 'includedir=/usr/include' "$PC" && grep -qx "Version: $VERSION" "$PC"
ok $? "uhp.pc says prefix /usr, libdir $LIBDIR, version $VERSION"
sed 's/^/# /' "$PC" | head -4

cat >"$TMP/prog.c" <<'PROG'
#include <stdio.h>
#include <uhp.h>
int main(void)
{
	printf("# uhp_version() %#x, header %#x\n", uhp_version(), UHP_VERSION_NUM);
	return uhp_version() == UHP_VERSION_NUM ? 0 : 1;
}
PROG
CFL=$(PKG_CONFIG_LIBDIR=$D$LIBDIR/pkgconfig PKG_CONFIG_SYSROOT_DIR=$D pkg-config --cflags uhp) &&
LIBS=$(PKG_CONFIG_LIBDIR=$D$LIBDIR/pkgconfig PKG_CONFIG_SYSROOT_DIR=$D pkg-config --libs uhp) &&
${CC:-cc} -Wall -Werror $CFL -o "$TMP/prog" "$TMP/prog.c" $LIBS >>"$TMP/build.log" 2>&1 &&
LD_LIBRARY_PATH=$D$LIBDIR "$TMP/prog" &&
ldd "$TMP/prog" | grep -q "$D$LIBDIR/libuhp.so.0" 2>/dev/null ||
	LD_LIBRARY_PATH=$D$LIBDIR ldd "$TMP/prog" | grep -q "$D$LIBDIR/libuhp.so.0"
ok $? "a program builds through the installed uhp.pc and runs on the installed libuhp.so.0"

CFL=$(PKG_CONFIG_PATH=$ROOT/build/userlib pkg-config --cflags uhp) &&
LIBS=$(PKG_CONFIG_PATH=$ROOT/build/userlib pkg-config --libs uhp) &&
${CC:-cc} -Wall -Werror $CFL -o "$TMP/prog2" "$TMP/prog.c" $LIBS >>"$TMP/build.log" 2>&1 &&
LD_LIBRARY_PATH=$ROOT/build/userlib "$TMP/prog2"
ok $? "and through build/userlib/uhp-uninstalled.pc ($CFL)"

(cd "$D" && find . -type f -o -type l | sed 's|^\./|/|' | sort) >"$TMP/files"
missing=""
for f in /usr/bin/uhpctl /usr/lib/udev/rules.d/60-uhp.rules /usr/include/uhp/uhp.h \
	/usr/include/uhp/uhp_version.h /usr/include/uhp/linux/uhp.h "$LIBDIR/libuhp.so.$VERSION" \
	"$LIBDIR/libuhp.so.0" "$LIBDIR/libuhp.so" "$LIBDIR/libuhp.a" \
	/usr/share/doc/uhp/examples/modprobe.d-uhp.conf \
	/usr/share/doc/uhp/examples/modules-load.d-uhp.conf \
	/usr/share/man/man7/uhp.7 /usr/share/man/man8/uhpctl.8; do
	grep -qx "$f" "$TMP/files" || missing="$missing $f"
done
for s in $(nm -D --defined-only "$ROOT/build/userlib/libuhp.so" | awk '$2 == "T" { sub(/@.*/, "", $3); print $3 }'); do
	grep -qx "/usr/share/man/man3/$s.3" "$TMP/files" || missing="$missing man3/$s.3"
done
[ -z "$missing" ]
ok $? "uhpctl, udev rule, headers, libraries, examples and a man page per exported symbol ($(wc -l <"$TMP/files") files)"
[ -z "$missing" ] || echo "# missing:$missing" | cut -c1-400

missing=""
if [ $nats = yes ]; then
	for f in $(bridge_files /usr); do
		grep -qx "$f" "$TMP/files" || missing="$missing $f"
	done
	unit=$D$(bridge_files /usr | cut -d' ' -f2)
	grep -qx 'ExecStart=/usr/bin/uhp-bridge -c /etc/uhp-bridge/%i.conf --state-dir %S/uhp-bridge/%i' "$unit" 2>/dev/null ||
		missing="$missing ExecStart=/usr/bin/uhp-bridge"
	[ -z "$missing" ]
	ok $? "uhp-bridge (libnats-dev found): $(bridge_files /usr | tr ' ' '\n' | sed 's|.*/||' | tr '\n' ' ' | sed 's/ $//')"
else
	grep -q 'uhp-bridge skipped: libnats-dev' "$TMP/install.log" && ! grep -q 'uhp-bridge' "$TMP/files"
	ok $? "uhp-bridge skipped, and said so: no libnats-dev"
fi
[ -z "$missing" ] || echo "# missing:$missing"

make -s -C "$ROOT" uninstall DESTDIR="$D" PREFIX=/usr LIBDIR="$LIBDIR" >>"$TMP/build.log" 2>&1
left=$(cd "$D" && find . -type f -o -type l)
[ -z "$left" ]
ok $? "make uninstall removes every file install put there"
[ -z "$left" ] || echo "$left" | head -5 | sed 's/^/# left: /'

# Another prefix: the unit under it, running the binary under it; and
# WITH_BRIDGE=no (what a machine without libnats-dev gets).
make -s -C "$ROOT" install DESTDIR="$TMP/local" PREFIX=/usr/local >"$TMP/local.log" 2>&1 &&
	make -s -C "$ROOT" install DESTDIR="$TMP/nob" PREFIX=/usr WITH_BRIDGE=no >"$TMP/nob.log" 2>&1
rc=$?
cat "$TMP/local.log" "$TMP/nob.log" >>"$TMP/build.log"
missing=""
if [ $nats = yes ]; then
	for f in $(bridge_files /usr/local); do
		[ -f "$TMP/local$f" ] || missing="$missing $f"
	done
	grep -q '^ExecStart=/usr/local/bin/uhp-bridge ' "$TMP/local/usr/local/lib/systemd/system/uhp-bridge@.service" 2>/dev/null ||
		missing="$missing ExecStart=/usr/local/bin/uhp-bridge"
fi
[ -z "$(find "$TMP/nob" -name '*uhp-bridge*' | head -1)" ] || missing="$missing WITH_BRIDGE=no:installed"
grep -q 'uhp-bridge skipped (WITH_BRIDGE=no)' "$TMP/nob.log" || missing="$missing WITH_BRIDGE=no:silent"
[ $rc = 0 ] && [ -z "$missing" ]
ok $? "PREFIX=/usr/local: the unit in /usr/local/lib/systemd/system runs /usr/local/bin/uhp-bridge; WITH_BRIDGE=no: no bridge, and a line that says so"
[ -z "$missing" ] || echo "# wrong:$missing"

make -s -C "$ROOT" dkms-src DESTDIR="$TMP/dk" >>"$TMP/build.log" 2>&1
S=$TMP/dk/usr/src/uhp-$VERSION
(cd "$S" 2>/dev/null && find . -type f | sed 's|^\./||' | sort) >"$TMP/dkfiles"
(cd "$ROOT" && { echo Kbuild; echo VERSION; echo dkms.conf; ls kmod/*.[ch]; echo uapi/linux/uhp.h; } | sort) >"$TMP/dkwant"
cmp -s "$TMP/dkfiles" "$TMP/dkwant"
ok $? "make dkms-src copies the module's sources only ($(wc -l <"$TMP/dkfiles") files) to /usr/src/uhp-$VERSION"
diff "$TMP/dkwant" "$TMP/dkfiles" | sed 's/^/# /' | head -8

grep -qx "PACKAGE_VERSION=\"$VERSION\"" "$S/dkms.conf" && ! grep -q 'MODULE_VERSION#' "$S/dkms.conf" &&
	[ "$(grep -c '^BUILT_MODULE_NAME' "$S/dkms.conf")" = 1 ] && grep -qx 'BUILT_MODULE_NAME\[0\]="uhp"' "$S/dkms.conf" &&
	grep -qx 'AUTOINSTALL="yes"' "$S/dkms.conf"
ok $? "its dkms.conf: version $VERSION, uhp.ko the only module AUTOINSTALL builds"

KO=$ROOT/uhp.ko
[ -f "$KO" ] || make -s -C "$ROOT" module >>"$TMP/build.log" 2>&1
if [ ! -f "$KO" ]; then
	skip "modules.devname lists uhp" "no $KO and make module failed (no kernel headers?)"
elif ! command -v depmod >/dev/null && [ ! -x /sbin/depmod ]; then
	skip "modules.devname lists uhp" "no depmod (kmod)"
else
	kver=$(modinfo -F vermagic "$KO" | cut -d' ' -f1)
	mkdir -p "$TMP/mods/lib/modules/$kver/extra" && cp "$KO" "$TMP/mods/lib/modules/$kver/extra/" &&
	PATH=$PATH:/sbin:/usr/sbin depmod -b "$TMP/mods" "$kver" 2>/dev/null &&
	grep -qx 'uhp uhp c10:249' "$TMP/mods/lib/modules/$kver/modules.devname"
	ok $? "depmod lists uhp in modules.devname as c10:249 ($kver)"
fi

[ $failed = 0 ] || sed 's/^/# /' "$TMP/build.log" | tail -20
echo "$((n - failed)) passed, $failed failed"
[ $failed = 0 ]
