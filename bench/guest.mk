# Guest benchmark: kernel -> user throughput and wake-up latency, uhp vs the
# BPF ring buffer vs a pipe (bench_kernel.c, bpf/ringbuf_peer.bpf.c).
# Included by bench/Makefile; nothing here is built unless asked for, so the
# default target needs neither clang nor libbpf.
#
#   make -C bench guest       build $(O)/bench/guest/bench_kernel (static)
#   make -C bench guest-run   run it in the QEMU guest (scripts/uhp-vm, needs
#                             ./uhp.ko and samples/uhp_ticker.ko: make module),
#                             JSON lines into $(O)/bench/kernel.jsonl
#   make bench-guest          the same from the top, building module and lib
#   BENCH_KERNEL_ARGS="-s 64,256,1024 -r 7" make bench-guest   (bench_kernel -h)
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

guest: $(G_BIN)

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
guest-run: $(G_BIN)
	@test -f $(G_ROOT)/uhp.ko || { echo "$(G_ROOT)/uhp.ko missing: make module" >&2; exit 1; }
	@test -f $(G_ROOT)/samples/uhp_ticker.ko || { echo "samples/uhp_ticker.ko missing: make module" >&2; exit 1; }
	@rm -f $(G_O)/bench/kernel.rc
	{ $(G_ROOT)/scripts/uhp-vm $(UHP_VM_FLAGS) --ko $(G_ROOT)/uhp.ko run $(G_BIN) $(BENCH_KERNEL_ARGS); \
	  echo $$? >$(G_O)/bench/kernel.rc; } | tee $(G_O)/bench/kernel.log
	@test "$$(cat $(G_O)/bench/kernel.rc)" = 0 || { echo "guest benchmark failed (log: $(G_O)/bench/kernel.log)" >&2; exit 1; }
	@sed -n 's/.*UHP-BENCH-JSON: //p' $(G_O)/bench/kernel.log >$(G_O)/bench/kernel.jsonl
	@echo "# JSON lines: $(G_O)/bench/kernel.jsonl ($$(wc -l <$(G_O)/bench/kernel.jsonl) lines)"

.PHONY: guest guest-run
