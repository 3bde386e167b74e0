# Guest benchmarks, all in one boot of the QEMU guest (bench/guest_bench.sh):
#  - kernel -> user throughput and wake-up latency, uhp vs the BPF ring
#    buffer vs a pipe (bench_kernel.c, bpf/ringbuf_peer.bpf.c);
#  - bench_throughput, bench_latency and bench_numa with --dev: uhp through
#    /dev/uhp, and the peers that link statically (pipe, seqpacket, mqueue,
#    eventfd+shm, ck_ring, rte_ring if DPDK's static libraries link; iceoryx
#    is host only: no static library, and RouDi is not in the guest).
# Included by bench/Makefile; nothing here is built unless asked for, so the
# default target needs neither clang nor libbpf.
#
#   make -C bench guest       build the static programs in $(O)/bench/guest/
#   make -C bench guest-run   run them in the QEMU guest (scripts/uhp-vm, needs
#                             ./uhp.ko and samples/uhp_ticker.ko: make module);
#                             log in $(O)/bench/guest.log, JSON lines into
#                             $(O)/bench/kernel.jsonl and guest_{throughput,
#                             latency,numa}.jsonl
#   make bench-guest          the same from the top, building module and lib
#   GUEST_BENCH="throughput numa" make bench-guest   (a subset; default all)
#   BENCH_KERNEL_ARGS="-s 64,256,1024 -r 7" make bench-guest   (bench_kernel -h)
#   GUEST_TP="N ROUNDS"       bench_throughput messages per trial and rounds
#   GUEST_LAT, GUEST_NUMA     more arguments for bench_latency / bench_numa
#
# Needs clang (the BPF object) and libbpf-dev, libelf-dev, zlib1g-dev (static
# libbpf.a, libelf.a, libz.a): scripts/deps.sh installs them.

G_ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))/..)
G_O ?= $(if $(O),$(O),$(G_ROOT)/build)
G_B := $(G_O)/bench/guest
G_LIB := $(G_O)/userlib/libuhp.a
G_BIN := $(G_B)/bench_kernel
G_BPF := $(G_B)/ringbuf_peer.bpf.o

G_CC ?= cc
G_CLANG ?= clang
G_CFLAGS := -O2 -g -std=gnu11 -Wall -Wextra -Werror -pthread \
	    -I$(G_ROOT)/uapi -I$(G_ROOT)/userlib
# <asm/types.h> for <linux/bpf.h> under -target bpf.
G_BPF_CFLAGS := -O2 -g -target bpf -Wall -Werror \
		-I/usr/include/$(shell $(G_CC) -print-multiarch 2>/dev/null)
BENCH_KERNEL_ARGS ?=
UHP_VM_FLAGS ?=
GUEST_BENCH ?= kernel throughput latency numa agentsim
# TCG runs the guest ~10-50x slower than the host: counts that keep the
# whole run within a few minutes (pipe and mqueue trials take seconds).
GUEST_TP ?= 50000 3
GUEST_LAT ?= --duration 2
GUEST_NUMA ?= --messages 50000 --rounds 3 --duration 2
GUEST_AGENTSIM ?= --agents 100 --messages 200000
G_USER := $(G_B)/bench_throughput $(G_B)/bench_latency $(G_B)/bench_numa \
	  $(G_B)/bench_agent_simulation

guest: $(G_BIN) $(G_USER)

# Static userspace benchmarks. ck_ring is header only; rte_ring needs DPDK's
# static libraries and theirs: if that link fails, rte_ring is left out and
# the program says why.
G_MULTIARCH := $(shell $(G_CC) -print-multiarch 2>/dev/null)
G_TP_CFLAGS := $(if $(wildcard /usr/include/ck_ring.h),-DHAVE_CK,\
	-DCK_SKIP_WHY='"built without libck-dev"') \
	-DICEORYX_SKIP_WHY='"host only: iceoryx has no static libraries and RouDi does not run in the guest"'
G_TP_DPDK := $(if $(wildcard /usr/include/dpdk/rte_ring.h),1)
G_TP_DPDK_CFLAGS := -DHAVE_DPDK -I/usr/include/dpdk \
	-I/usr/include/$(G_MULTIARCH)/dpdk -include rte_config.h
G_TP_DPDK_LIBS := -Wl,--start-group -lrte_ring -lrte_eal -lrte_kvargs \
	-lrte_telemetry -lnuma -lbsd -lmd -Wl,--end-group -ldl
G_TP_NODPDK := -DDPDK_SKIP_WHY='"DPDK does not link statically here (see $(G_B)/dpdk-static.log)"'

$(G_B)/bench_throughput: $(G_ROOT)/bench/bench_throughput.c $(G_LIB) $(G_ROOT)/userlib/uhp.h
	@mkdir -p $(G_B)
	@rm -f $(G_B)/dpdk-static.log
	@if [ -n "$(G_TP_DPDK)" ] && $(G_CC) $(G_CFLAGS) $(G_TP_CFLAGS) $(G_TP_DPDK_CFLAGS) \
		-static -o $@ $< $(G_LIB) $(G_TP_DPDK_LIBS) -lrt >$(G_B)/dpdk-static.log 2>&1; then \
		echo "$(notdir $@): static, with rte_ring"; \
	else \
		[ -n "$(G_TP_DPDK)" ] || echo "dpdk-dev not installed" >$(G_B)/dpdk-static.log; \
		echo "$(notdir $@): static, without rte_ring ($(G_B)/dpdk-static.log)"; \
		$(G_CC) $(G_CFLAGS) $(G_TP_CFLAGS) $(G_TP_NODPDK) -static -o $@ $< $(G_LIB) -lrt; \
	fi

# bench_agent_simulation: uhp only (libzmq does not link statically).
$(G_B)/bench_latency $(G_B)/bench_numa $(G_B)/bench_agent_simulation: $(G_B)/%: \
		$(G_ROOT)/bench/%.c $(G_LIB) $(G_ROOT)/userlib/uhp.h \
		$(G_ROOT)/userlib/uhp_runtime.h
	@mkdir -p $(G_B)
	$(G_CC) $(G_CFLAGS) -static -o $@ $< $(G_LIB)

$(G_BPF): $(G_ROOT)/bench/bpf/ringbuf_peer.bpf.c
	@mkdir -p $(G_B)
	@command -v $(G_CLANG) >/dev/null || { echo "$(G_CLANG) missing: scripts/deps.sh installs clang" >&2; exit 1; }
	$(G_CLANG) $(G_BPF_CFLAGS) -c $< -o $@

# libuhp.a: bench/Makefile's rule (re)makes it.
# The BPF object is embedded with .incbin (BPF_OBJ): one static file to copy in.
$(G_BIN): $(G_ROOT)/bench/bench_kernel.c $(G_BPF) $(G_LIB) $(G_ROOT)/userlib/uhp.h
	@test -f /usr/include/bpf/libbpf.h || { echo "libbpf-dev missing: scripts/deps.sh installs it" >&2; exit 1; }
	$(G_CC) $(G_CFLAGS) -DBPF_OBJ='"$(G_BPF)"' -static -o $@ $< \
		$(G_LIB) -lbpf -lelf -lz

# uhp-vm's exit status survives the tee through a file (no pipefail in sh).
# The JSON lines are taken from the log even when a step failed.
G_LOG := $(G_O)/bench/guest.log
guest-run: $(G_BIN) $(G_USER)
	@test -f $(G_ROOT)/uhp.ko || { echo "$(G_ROOT)/uhp.ko missing: make module" >&2; exit 1; }
	@test -f $(G_ROOT)/samples/uhp_ticker.ko || { echo "samples/uhp_ticker.ko missing: make module" >&2; exit 1; }
	@rm -f $(G_O)/bench/guest.rc
	{ $(G_ROOT)/scripts/uhp-vm $(UHP_VM_FLAGS) --ko $(G_ROOT)/uhp.ko \
	    $(foreach f,$(G_BIN) $(G_USER),--file $(f)) \
	    run $(G_ROOT)/bench/guest_bench.sh --only "$(GUEST_BENCH)" \
	    --kernel "$(BENCH_KERNEL_ARGS)" --tp "$(GUEST_TP)" --lat "$(GUEST_LAT)" \
	    --numa "$(GUEST_NUMA)" --agentsim "$(GUEST_AGENTSIM)"; \
	  echo $$? >$(G_O)/bench/guest.rc; } | tee $(G_LOG)
	@sed -n 's/.*UHP-BENCH-JSON: //p' $(G_LOG) >$(G_O)/bench/kernel.jsonl
	@for b in throughput latency numa agentsim; do \
		sed -n "s/.*UHP-JSON-$$b: //p" $(G_LOG) >$(G_O)/bench/guest_$$b.jsonl; \
		echo "# JSON lines: $(G_O)/bench/guest_$$b.jsonl ($$(wc -l <$(G_O)/bench/guest_$$b.jsonl) lines)"; \
	done
	@echo "# JSON lines: $(G_O)/bench/kernel.jsonl ($$(wc -l <$(G_O)/bench/kernel.jsonl) lines)"
	@test "$$(cat $(G_O)/bench/guest.rc)" = 0 || { echo "guest benchmark failed (log: $(G_LOG))" >&2; exit 1; }

.PHONY: guest guest-run
