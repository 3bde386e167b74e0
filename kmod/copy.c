// SPDX-License-Identifier: GPL-2.0
/*
 * uhp payload copy: the one routine through which every payload enters a
 * ring from outside the ring.
 *
 * Paths, best first, chosen once at module load from boot_cpu_has() and
 * overridable with the "copy" module parameter (INFO reports the one in use):
 *
 *   avx512   64-byte zmm loads/stores, 256 bytes per iteration with a
 *            prefetch ahead of the source, a masked (k-register) tail, and
 *            non-temporal stores (then sfence) for copies of at least
 *            UHP_COPY_NT_MIN bytes (16 MiB: up to 8 MiB, in the KUnit timing
 *            report on a Zen 5 host, streaming lost to plain stores; the
 *            consumer reads the record soon and the cache still holds it).
 *            Needs AVX512F and AVX512BW (byte-granular masks).
 *   avx2     32-byte ymm, 128 bytes per iteration; the tail is one
 *            overlapping unaligned 32-byte move.
 *   erms     rep movsb (Enhanced REP MOVSB).
 *   generic  memcpy().
 *
 * SIMD rules: the vector paths run only between kernel_fpu_begin() and
 * kernel_fpu_end(), only in process or softirq context and when
 * irq_fpu_usable() says this context may touch the FPU (otherwise the copy
 * falls back to erms/generic), and never sleep. Not in hard-irq: there
 * kernel_fpu_begin() has to XSAVE the interrupted task's whole vector state
 * (2.7 KiB with AVX-512) and keeps interrupts off for it, for a copy that
 * rep movsb does at close to the same speed.
 * kernel_fpu_begin() disables preemption, so long copies are cut into
 * UHP_COPY_FPU_CHUNK pieces with the FPU section reopened between them: at
 * the ~10 GB/s even a slow machine reaches that holds preemption off for a
 * few microseconds at most. Copies shorter than UHP_COPY_SIMD_MIN bytes
 * take memcpy() whatever the path: saving the user's vector state (or
 * starting rep movsb) would cost more than it saves.
 *
 * The vector routines use inline asm rather than intrinsics: the kernel is
 * built with -mno-sse/-mno-avx, so the compiler itself never uses vector
 * registers and needs no clobbers for them.
 */
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/preempt.h>
#include <linux/string.h>
#include <linux/uio.h>
#include <asm/cpufeature.h>
#include <asm/fpu/api.h>

#include "uhp.h"

#define UHP_COPY_FPU_CHUNK	(64 * 1024)
#define UHP_COPY_NT_MIN		(16 * 1024 * 1024)

static char *copy = "auto";
module_param(copy, charp, 0444);
MODULE_PARM_DESC(copy, "Payload copy path: auto (default), avx512, avx2, erms or generic");

static const char * const uhp_copy_names[] = {
	[UHP_COPY_GENERIC] = "generic",
	[UHP_COPY_ERMS] = "erms",
	[UHP_COPY_AVX2] = "avx2",
	[UHP_COPY_AVX512] = "avx512",
};

/* Set once by uhp_copy_init(); read-only afterwards. */
static unsigned int uhp_copy_active = UHP_COPY_GENERIC;

static void uhp_copy_erms(void *dst, const void *src, size_t len)
{
	asm volatile("rep movsb"
		     : "+D" (dst), "+S" (src), "+c" (len)
		     : : "memory");
}

/*
 * Inside an FPU section. len >= 32. No streaming variant: AVX2-only machines
 * are the ones whose rep movsb is slow for small copies, not large ones.
 */
static void uhp_copy_avx2(u8 *d, const u8 *s, size_t len)
{
	const u8 *tail_s = s + len - 32;
	u8 *tail_d = d + len - 32;

	for (; len >= 128; len -= 128, s += 128, d += 128)
		asm volatile("prefetcht0 512(%[s])\n\t"
			     "vmovdqu   0(%[s]), %%ymm0\n\t"
			     "vmovdqu  32(%[s]), %%ymm1\n\t"
			     "vmovdqu  64(%[s]), %%ymm2\n\t"
			     "vmovdqu  96(%[s]), %%ymm3\n\t"
			     "vmovdqu %%ymm0,   0(%[d])\n\t"
			     "vmovdqu %%ymm1,  32(%[d])\n\t"
			     "vmovdqu %%ymm2,  64(%[d])\n\t"
			     "vmovdqu %%ymm3,  96(%[d])\n\t"
			     : : [s] "r" (s), [d] "r" (d) : "memory");
	for (; len >= 32; len -= 32, s += 32, d += 32)
		asm volatile("vmovdqu (%[s]), %%ymm0\n\t"
			     "vmovdqu %%ymm0, (%[d])\n\t"
			     : : [s] "r" (s), [d] "r" (d) : "memory");
	if (len)	/* the last 32 bytes again, overlapping what is done */
		asm volatile("vmovdqu (%[s]), %%ymm0\n\t"
			     "vmovdqu %%ymm0, (%[d])\n\t"
			     : : [s] "r" (tail_s), [d] "r" (tail_d) : "memory");
	asm volatile("vzeroupper" ::: "memory");
}

/* Up to 64 bytes through a byte mask in k1. */
static void uhp_copy_avx512_masked(u8 *d, const u8 *s, size_t len)
{
	u64 mask = len >= 64 ? ~0ULL : (1ULL << len) - 1;

	asm volatile("kmovq %[m], %%k1\n\t"
		     "vmovdqu8 (%[s]), %%zmm0%{%%k1%}%{z%}\n\t"
		     "vmovdqu8 %%zmm0, (%[d])%{%%k1%}\n\t"
		     : : [m] "r" (mask), [s] "r" (s), [d] "r" (d) : "memory");
}

/* 256 bytes from %[s] to %[d], prefetching ahead; 'store' is the store insn. */
#define UHP_AVX512_COPY256(store)			\
	"prefetcht0 1024(%[s])\n\t"			\
	"vmovdqu64   0(%[s]), %%zmm0\n\t"		\
	"vmovdqu64  64(%[s]), %%zmm1\n\t"		\
	"vmovdqu64 128(%[s]), %%zmm2\n\t"		\
	"vmovdqu64 192(%[s]), %%zmm3\n\t"		\
	store " %%zmm0,   0(%[d])\n\t"		\
	store " %%zmm1,  64(%[d])\n\t"		\
	store " %%zmm2, 128(%[d])\n\t"		\
	store " %%zmm3, 192(%[d])\n\t"

/* Inside an FPU section. nt: use streaming stores (a large copy overall). */
static void uhp_copy_avx512(u8 *d, const u8 *s, size_t len, bool nt)
{
	if (nt && len >= 256) {
		/* Align the destination so the streaming stores are aligned. */
		size_t head = -(uintptr_t)d & 63;

		uhp_copy_avx512_masked(d, s, head);
		d += head;
		s += head;
		len -= head;
		for (; len >= 256; len -= 256, s += 256, d += 256)
			asm volatile(UHP_AVX512_COPY256("vmovntdq")
				     : : [s] "r" (s), [d] "r" (d) : "memory");
		/*
		 * Streaming stores are weakly ordered: fence before anyone
		 * (e.g. a release of the record's tag) publishes them.
		 */
		asm volatile("sfence" ::: "memory");
	}
	for (; len >= 256; len -= 256, s += 256, d += 256)
		asm volatile(UHP_AVX512_COPY256("vmovdqu64")
			     : : [s] "r" (s), [d] "r" (d) : "memory");
	for (; len >= 64; len -= 64, s += 64, d += 64)
		asm volatile("vmovdqu64 (%[s]), %%zmm0\n\t"
			     "vmovdqu64 %%zmm0, (%[d])\n\t"
			     : : [s] "r" (s), [d] "r" (d) : "memory");
	if (len)
		uhp_copy_avx512_masked(d, s, len);
	asm volatile("vzeroupper" ::: "memory");
}

/* May this context use the vector paths? See "SIMD rules" above. */
static bool uhp_copy_simd_usable(void)
{
	return !in_hardirq() && !in_nmi() && irq_fpu_usable();
}

static bool uhp_copy_supported(unsigned int path)
{
	switch (path) {
	case UHP_COPY_AVX512:
		return boot_cpu_has(X86_FEATURE_AVX512F) &&
		       boot_cpu_has(X86_FEATURE_AVX512BW);
	case UHP_COPY_AVX2:
		return boot_cpu_has(X86_FEATURE_AVX2);
	case UHP_COPY_ERMS:
		return boot_cpu_has(X86_FEATURE_ERMS);
	case UHP_COPY_GENERIC:
		return true;
	default:
		return false;
	}
}

/*
 * The path a copy of len bytes asked to take 'path' really takes in the
 * calling context (the KUnit suite uhp_context checks it in hard-irq).
 */
unsigned int uhp_copy_effective(unsigned int path, size_t len)
{
	bool simd = path == UHP_COPY_AVX512 || path == UHP_COPY_AVX2;

	/*
	 * Short copies: the kernel's memcpy() wins (measured by the uhp_copy
	 * KUnit timing report: rep movsb and an FPU section both cost more
	 * than they save below UHP_COPY_SIMD_MIN).
	 */
	if (len < UHP_COPY_SIMD_MIN)
		return UHP_COPY_GENERIC;
	if (simd && !uhp_copy_simd_usable())
		return uhp_copy_supported(UHP_COPY_ERMS) ? UHP_COPY_ERMS :
							   UHP_COPY_GENERIC;
	return path;
}

/* Copy with one given path; the caller checked uhp_copy_supported(path). */
void uhp_copy_with(unsigned int path, void *dst, const void *src, size_t len)
{
	bool nt;

	switch (uhp_copy_effective(path, len)) {
	case UHP_COPY_AVX512:
	case UHP_COPY_AVX2:
		nt = len >= UHP_COPY_NT_MIN;
		while (len) {
			/* No chunk shorter than UHP_COPY_SIMD_MIN (>= 32). */
			size_t n = len >= UHP_COPY_FPU_CHUNK + UHP_COPY_SIMD_MIN ?
				   UHP_COPY_FPU_CHUNK : len;

			kernel_fpu_begin();
			if (path == UHP_COPY_AVX512)
				uhp_copy_avx512(dst, src, n, nt);
			else
				uhp_copy_avx2(dst, src, n);
			kernel_fpu_end();
			dst += n;
			src += n;
			len -= n;
		}
		break;
	case UHP_COPY_ERMS:
		uhp_copy_erms(dst, src, len);
		break;
	default:
		memcpy(dst, src, len);
		break;
	}
}

/* Kernel-to-kernel copy with the path chosen at load time; see uhp_copy(). */
void uhp_copy_large(void *dst, const void *src, size_t len)
{
	uhp_copy_with(uhp_copy_active, dst, src, len);
}

unsigned int uhp_copy_path(void)
{
	return uhp_copy_active;
}

bool uhp_copy_path_supported(unsigned int path)
{
	return uhp_copy_supported(path);
}

/*
 * Several copies in one FPU section (fan-out): uhp_copy_section_begin()
 * opens it and returns true if the path in use is a vector one, this
 * context may use the FPU and 'total' bytes are worth it and short enough
 * to keep preemption off only briefly; then uhp_copy_in_section() copies
 * and uhp_copy_section_end() closes. On false, use uhp_copy().
 */
bool uhp_copy_section_begin(size_t total)
{
	if (uhp_copy_active != UHP_COPY_AVX512 &&
	    uhp_copy_active != UHP_COPY_AVX2)
		return false;
	if (total < UHP_COPY_SIMD_MIN || total > UHP_COPY_FPU_CHUNK ||
	    !uhp_copy_simd_usable())
		return false;
	kernel_fpu_begin();
	return true;
}

void uhp_copy_in_section(void *dst, const void *src, size_t len)
{
	if (len < 32)
		memcpy(dst, src, len);	/* below the AVX2 routine's minimum */
	else if (uhp_copy_active == UHP_COPY_AVX512)
		uhp_copy_avx512(dst, src, len, false);
	else
		uhp_copy_avx2(dst, src, len);
}

void uhp_copy_section_end(void)
{
	kernel_fpu_end();
}

/*
 * Copy len bytes from an iterator into the ring. Kernel sources (kvec) take
 * uhp_copy(); user memory can fault, which no FPU section may do, so it goes
 * through copy_from_iter(). Returns 0, or -EFAULT if the source could not be
 * read in full.
 */
int uhp_copy_from_iter(void *dst, size_t len, struct iov_iter *from)
{
	if (iov_iter_is_kvec(from) && from->nr_segs == 1 &&
	    from->count >= len && from->kvec->iov_len - from->iov_offset >= len) {
		uhp_copy(dst, from->kvec->iov_base + from->iov_offset, len);
		iov_iter_advance(from, len);
		return 0;
	}
	return copy_from_iter_full(dst, len, from) ? 0 : -EFAULT;
}

int uhp_copy_init(void)
{
	unsigned int path;

	if (!strcmp(copy, "auto")) {
		for (path = UHP_COPY_AVX512; path > UHP_COPY_GENERIC; path--)
			if (uhp_copy_supported(path))
				break;
		uhp_copy_active = path;
		return 0;
	}
	for (path = 0; path < ARRAY_SIZE(uhp_copy_names); path++)
		if (!strcmp(copy, uhp_copy_names[path]))
			break;
	if (path == ARRAY_SIZE(uhp_copy_names)) {
		pr_err("uhp: copy=%s: unknown path (auto, avx512, avx2, erms, generic)\n",
		       copy);
		return -EINVAL;
	}
	if (!uhp_copy_supported(path)) {
		pr_err("uhp: copy=%s: this CPU lacks the instructions\n", copy);
		return -ENODEV;
	}
	uhp_copy_active = path;
	return 0;
}

const char *uhp_copy_name(unsigned int path)
{
	return path < ARRAY_SIZE(uhp_copy_names) ? uhp_copy_names[path] : "?";
}
