/* SPDX-License-Identifier: MIT */
/*
 * cpu_relax(): the body of a spin-wait loop, for libuhp and the programs
 * built beside it (uhp-bridge). Internal: never installed.
 *
 * x86's pause lets the sibling hyperthread run and keeps the loop's exit
 * from a memory-order mis-speculation; arm64's yield is its hint. Elsewhere
 * a compiler barrier, so the loop re-reads what it waits for.
 */
#ifndef UHP_CPU_RELAX_H
#define UHP_CPU_RELAX_H

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#else
	__asm__ __volatile__("" ::: "memory");
#endif
}

#endif /* UHP_CPU_RELAX_H */
