# uhp: top-level Makefile.
#
#   make            the module (./uhp.ko) and the library (build/userlib/libuhp.a)
#   make check      everything: deps, host tests, KUnit, and on every kernel
#                   lane the dkms build, sparse and the guest tests in QEMU
#                   (KERNELS="6.12 6.12-rt" picks lanes: scripts/lane.sh)
#   make matrix     only the kernel lanes (same KERNELS=)
#   make run        boot the guest, load uhp.ko, run the agent demo
#   make vm-shell   boot the guest with uhp.ko loaded and give a shell
#   make kunit      the KUnit suites (kunit/) on UML, via scripts/kunit.sh,
#                   and in the debug lane's guest (scripts/kunit-guest.sh)
#
# The module is an ordinary out-of-tree one: kbuild, entered with
# `make -C $(KDIR) M=$(CURDIR)`, reads ./Kbuild and never this file, so this
# file only drives.  kbuild writes its objects next to the sources (uhp.ko
# lands here at the top); everything else goes under build/.

BUILD := $(CURDIR)/build

# The kernel to build against.  By default the Debian headers that the
# installed linux-headers-amd64 names (scripts/kver.sh): the guest boots
# exactly that kernel.  On a real machine:
#   make KDIR=/lib/modules/$(uname -r)/build
ifeq ($(origin KDIR),undefined)
KVER := $(shell scripts/kver.sh 2>/dev/null)
KDIR := /usr/src/linux-headers-$(KVER)
endif

# Extra options for scripts/uhp-vm, e.g. make check UHP_VM_FLAGS=-v
UHP_VM_FLAGS ?=
export UHP_VM_FLAGS

# The kernel lanes of make check / make matrix; empty means all of them
# (scripts/lane.sh --list: default 6.12 6.12-rt unstable debug).
KERNELS ?=

all: module lib tools

# ---- build -----------------------------------------------------------------

module:
	@test -f Kbuild || { echo "make module: no Kbuild yet (the module is not written)" >&2; exit 1; }
	@test -d "$(KDIR)" || { echo "make module: kernel headers not found at KDIR=$(KDIR) (scripts/deps.sh, or pass KDIR=...)" >&2; exit 1; }
	$(MAKE) -C $(KDIR) M=$(CURDIR) modules
	@# kbuild does not notice a new Module.symvers of uhp (the sample's
	@# symbol CRCs): without its own, modpost runs again.
	@rm -f samples/Module.symvers
	$(MAKE) -C $(KDIR) M=$(CURDIR)/samples KBUILD_EXTRA_SYMBOLS=$(CURDIR)/Module.symvers modules

lib:
	$(MAKE) -C userlib

# build/tools/uhpctl (tools/uhpctl.c)
tools: lib
	$(MAKE) -C tools

# Static guest test programs (build/tests/guest/t_*); they link libuhp.
tests: lib
	$(MAKE) -C tests/guest

# build/demo/uhp_demo from demo/*.c, static like the tests.
demo: lib
	@test -n "$(wildcard demo/*.c)" || { echo "make: demo/agent_demo.c is not written yet: there is no demo to build or run" >&2; exit 1; }
	$(MAKE) -C tests/guest demo

# Every host benchmark with its peers (bench/Makefile run-all): CRC32C, copy,
# routing, throughput, latency, NUMA placement, stress, the agent simulation
# and the feature-flag ratios; tables on stdout, JSON lines in build/bench/.
bench: bench-deps lib
	$(MAKE) -C bench run-all
.PHONY: bench

# The guest benchmarks in one boot (bench/guest.mk): kernel->user vs the BPF
# ring buffer and a pipe, and throughput, latency, NUMA and the agent
# simulation on /dev/uhp; JSON lines in build/bench/{kernel,guest_*}.jsonl.
bench-guest: bench-deps module lib
	$(MAKE) -C bench guest-run UHP_VM_FLAGS="$(UHP_VM_FLAGS)"
.PHONY: bench-guest

deps:
	@scripts/deps.sh

# The benchmarks' peers (clang/libbpf, ck, DPDK) are not needed by make check.
bench-deps:
	@scripts/deps.sh --bench

# The default lane's guest kernel, fetched and unpacked once into the cache
# (/var/cache/uhp); scripts/lane.sh NAME does the same for any lane.
kernel: deps
	@scripts/lane.sh default

# ---- install ---------------------------------------------------------------

# make install [DESTDIR=] [PREFIX=/usr/local] [LIBDIR=] ...: the library,
# headers and uhp.pc (written for this PREFIX/LIBDIR), uhpctl, the man
# pages, the udev rule, and the modprobe.d/modules-load.d examples; and
# where libnats-dev is installed, uhp-bridge with its systemd unit, its
# sysusers.d file, its man pages and /etc/uhp-bridge/example.conf
# (bridge/Makefile; WITH_BRIDGE=no leaves it out, WITH_BRIDGE=yes fails
# without libnats-dev instead of skipping it). The module goes in through
# dkms: make dkms-install. make uninstall removes exactly what install put
# there.
VERSION := $(shell cat VERSION)
PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
DOCDIR ?= $(PREFIX)/share/doc/uhp
# udev reads /usr/lib/udev and /etc/udev only.
UDEVRULESDIR ?= $(if $(filter /usr,$(PREFIX)),/usr/lib/udev/rules.d,/etc/udev/rules.d)
INSTALL_VARS = PREFIX=$(PREFIX) LIBDIR=$(LIBDIR) INCLUDEDIR=$(INCLUDEDIR) DESTDIR=$(DESTDIR)
BRIDGE_VARS = O=$(BUILD) PREFIX=$(PREFIX) BINDIR=$(BINDIR) MANDIR=$(MANDIR) DESTDIR=$(DESTDIR)
WITH_BRIDGE ?= auto
HAVE_NATS = $(shell { pkg-config --exists libnats || test -f /usr/include/nats/nats.h; } 2>/dev/null && echo yes)
# uhp-bridge's pages go with the bridge (install-bridge), not with uhpctl.
BRIDGE_MAN_PAGES = man/man8/uhp-bridge.8 man/man5/uhp-bridge.conf.5
MAN_PAGES = $(filter-out $(BRIDGE_MAN_PAGES),$(wildcard man/man3/*.3 man/man7/*.7 man/man8/*.8))
EXAMPLES = packaging/modprobe.d/uhp.conf packaging/modules-load.d/uhp.conf

install: lib tools
	$(MAKE) -C userlib install $(INSTALL_VARS)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(UDEVRULESDIR) $(DESTDIR)$(DOCDIR)/examples
	install -m 755 $(BUILD)/tools/uhpctl $(DESTDIR)$(BINDIR)/
	install -m 644 packaging/udev/60-uhp.rules $(DESTDIR)$(UDEVRULESDIR)/
	install -m 644 packaging/modprobe.d/uhp.conf $(DESTDIR)$(DOCDIR)/examples/modprobe.d-uhp.conf
	install -m 644 packaging/modules-load.d/uhp.conf $(DESTDIR)$(DOCDIR)/examples/modules-load.d-uhp.conf
	@for p in $(MAN_PAGES); do \
		d=$(DESTDIR)$(MANDIR)/$$(basename $$(dirname $$p)); \
		install -d $$d && install -m 644 $$p $$d/ || exit 1; \
	done
	@$(MAKE) --no-print-directory install-bridge
	@echo "installed uhp $(VERSION) under $(DESTDIR)$(PREFIX); the module: make dkms-install"

install-bridge:
	@if [ "$(WITH_BRIDGE)" = no ]; then \
		echo "make install: uhp-bridge skipped (WITH_BRIDGE=no)"; \
	elif [ "$(WITH_BRIDGE)" = auto ] && [ "$(HAVE_NATS)" != yes ]; then \
		echo "make install: uhp-bridge skipped: libnats-dev (nats.c) is not installed"; \
	else \
		$(MAKE) -C bridge install $(BRIDGE_VARS) && \
		echo "installed uhp-bridge; its account: systemd-sysusers, then see uhp-bridge(8), SYSTEMD"; \
	fi

uninstall:
	$(MAKE) -C userlib uninstall $(INSTALL_VARS)
	$(MAKE) -C bridge uninstall $(BRIDGE_VARS)
	rm -f $(DESTDIR)$(BINDIR)/uhpctl $(DESTDIR)$(UDEVRULESDIR)/60-uhp.rules
	rm -f $(DESTDIR)$(DOCDIR)/examples/modprobe.d-uhp.conf \
	      $(DESTDIR)$(DOCDIR)/examples/modules-load.d-uhp.conf
	-rmdir $(DESTDIR)$(DOCDIR)/examples $(DESTDIR)$(DOCDIR) 2>/dev/null
	rm -f $(foreach p,$(MAN_PAGES),$(DESTDIR)$(MANDIR)/$(notdir $(patsubst %/,%,$(dir $(p))))/$(notdir $(p)))

# The module's sources and nothing else (no build output, no tests), as
# dkms and the uhp-dkms package want them: $(DESTDIR)/usr/src/uhp-VERSION.
DKMS_DIR = $(DESTDIR)/usr/src/uhp-$(VERSION)
DKMS_SRCS = Kbuild VERSION $(wildcard kmod/*.[ch]) uapi/linux/uhp.h

dkms-src:
	rm -rf $(DKMS_DIR)
	install -d $(DKMS_DIR)/kmod $(DKMS_DIR)/uapi/linux
	for f in $(DKMS_SRCS); do install -m 644 $$f $(DKMS_DIR)/$$f || exit 1; done
	sed 's/#MODULE_VERSION#/$(VERSION)/' dkms.conf > $(DKMS_DIR)/dkms.conf

# Registers the copy with dkms, which builds and installs uhp.ko for the
# running kernel now and for every kernel installed later (AUTOINSTALL).
dkms-install: dkms-src
	dkms status -m uhp -v $(VERSION) | grep -q . || dkms add -m uhp -v $(VERSION)
	dkms install -m uhp -v $(VERSION)

dkms-uninstall:
	-dkms remove -m uhp -v $(VERSION) --all
	rm -rf $(DKMS_DIR)

# ---- across hosts ----------------------------------------------------------

# build/bridge/uhp-bridge (bridge/: uhp channels over a NATS cluster)
bridge: lib
	$(MAKE) -C bridge O=$(BUILD)

# The bridge's tests alone: a 3-node nats-server cluster on loopback, two
# bridges, agents on both sides (tests/bridge/run.sh, TAP).
check-bridge: deps lib
	tests/bridge/run.sh
	UHP_BRIDGE_SANITIZE=thread UHP_BRIDGE_TESTS="t3 t8 t11 t13 t14 t15" tests/bridge/run.sh
	UHP_BRIDGE_SANITIZE=address UHP_BRIDGE_TESTS="t5 t6 t14 t16 t12 t9" tests/bridge/run.sh

# ---- test ------------------------------------------------------------------

# deps -> host tests -> KUnit -> the kernel matrix.  deps runs first in its
# own step, then a sub-make, so that KVER is derived after the headers are
# installed.  Host and guest tests both run even if one fails: one CI run
# then tells about both.  The exit status is the verdict.
check:
	@t0=$$(date +%s); \
	scripts/deps.sh && $(MAKE) --no-print-directory check-steps; rc=$$?; \
	t=$$(( $$(date +%s) - t0 )); \
	if [ $$rc -eq 0 ]; then v=PASS; else v=FAIL; fi; \
	echo "make check: $$v in $$((t / 60))m$$((t % 60))s"; \
	exit $$rc

check-steps: tests
	@rc=0; \
	echo "== host tests"; \
	$(MAKE) -C tests/host check || rc=1; \
	echo "== bridge (uhp-bridge on a 3-node nats-server cluster on loopback)"; \
	tests/bridge/run.sh || rc=1; \
	echo "== bridge under ThreadSanitizer (the jetstream tests: restarts, backpressure, hold, early delivery and its credit)"; \
	UHP_BRIDGE_SANITIZE=thread UHP_BRIDGE_TESTS="t3 t8 t11 t13 t14 t15" tests/bridge/run.sh || rc=1; \
	echo "== bridge under ASan/LSan/UBSan (corruption, rogue publisher, early delivery, a damaged hold, authentication, configuration)"; \
	UHP_BRIDGE_SANITIZE=address UHP_BRIDGE_TESTS="t5 t6 t14 t16 t12 t9" tests/bridge/run.sh || rc=1; \
	echo "== fast-path instruction budget (callgrind)"; \
	scripts/fastpath-budget.sh || rc=1; \
	echo "== benchmark command lines (numbers, --only)"; \
	{ $(MAKE) -s -C bench O=$(BUILD) all throughput latency numa stress agentsim fastpath && \
	  sh tests/host/bench_args_test.sh $(BUILD)/bench; } || rc=1; \
	echo "== man pages (every exported symbol has one; groff -ww clean)"; \
	scripts/man-check.sh $(BUILD)/userlib/libuhp.so || rc=1; \
	echo "== checkpatch --strict"; \
	scripts/checkpatch.sh || rc=1; \
	echo "== kunit (UML, linux-source-6.1)"; \
	scripts/kunit.sh || rc=1; \
	echo "== kunit (UML, linux-source-6.12)"; \
	UHP_KUNIT_SOURCE=6.12 scripts/kunit.sh || rc=1; \
	scripts/matrix.sh $(KERNELS) || rc=1; \
	exit $$rc

# The kernel lanes alone: per lane the dkms build, sparse, the guest suite.
matrix: deps tests
	@scripts/matrix.sh $(KERNELS)

# The KUnit suites (kunit/*_kunit.c) on UML, in Debian's 6.1 and 6.12
# source trees cached in /var/cache/uhp/kunit (scripts/kunit.sh), then in
# the debug lane's guest (KASAN, lockdep, DEBUG_ATOMIC_SLEEP, 2 CPUs; make
# check runs that one in the matrix).
kunit: deps
	@scripts/kunit.sh && UHP_KUNIT_SOURCE=6.12 scripts/kunit.sh && \
	scripts/kunit-guest.sh debug

# ---- run -------------------------------------------------------------------

run: deps module demo
	scripts/uhp-vm $(UHP_VM_FLAGS) --ko uhp.ko run $(BUILD)/demo/uhp_demo

vm-shell: deps module
	scripts/uhp-vm $(UHP_VM_FLAGS) --ko uhp.ko shell

# ---- clean -----------------------------------------------------------------

# Keeps nothing but the sources. Downloaded kernels, the sid chroot and the
# debug kernel live in /var/cache/uhp (scripts/lane.sh) and stay.
clean:
	@if [ -f Kbuild ] && [ -d "$(KDIR)" ]; then $(MAKE) -C $(KDIR) M=$(CURDIR) clean; \
		$(MAKE) -C $(KDIR) M=$(CURDIR)/samples clean; fi
	@if [ -f userlib/Makefile ]; then $(MAKE) -C userlib clean; fi
	@if [ -f tests/host/Makefile ]; then $(MAKE) -C tests/host clean; fi
	@if [ -f bridge/Makefile ]; then $(MAKE) -C bridge clean; fi
	$(MAKE) -C tests/guest clean
	rm -rf $(BUILD)

.PHONY: all module lib tools tests demo deps bench-deps kernel check check-steps matrix kunit run vm-shell clean \
	install install-bridge uninstall dkms-src dkms-install dkms-uninstall bridge check-bridge
