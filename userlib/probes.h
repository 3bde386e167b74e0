/* SPDX-License-Identifier: MIT */
/*
 * USDT probes of libuhp (provider "uhp"), for bpftrace, perf and systemtap:
 *
 *   uhp:open      (ch, nr_rings, kind)     a handle came to be: create or attach
 *   uhp:close     (ch)                     uhp_close()
 *   uhp:ring_full (prod_line, used)        a send found no room (-EAGAIN)
 *   uhp:notify    (ch)                     a producer wakes a sleeping consumer
 *   uhp:sleep     (ch, ns)                 the consumer goes to sleep (up to ns)
 *   uhp:wake      (ch, ret)                ... and is back (0, or -errno)
 *   uhp:bad       (ch, ring, pos)          a record skipped: CRC or length wrong
 *   uhp:stall     (ch, ring, pos)          a dead reservation skipped
 *   uhp:hangup    (ch)                     uhp_wait() says -EPIPE
 *
 * e.g. `bpftrace -e 'usdt:/usr/lib/x86_64-linux-gnu/libuhp.so.0:uhp:ring_full
 * { @[ustack] = count(); }'`. None is on the fast path of a send or receive
 * that succeeds: each is a nop where it is, plus its arguments in registers.
 * Built in when <sys/sdt.h> is there (Debian: systemtap-sdt-dev), else the
 * macros are empty; tests/host/usdt_test.sh checks the notes.
 */
#ifndef UHP_PROBES_H
#define UHP_PROBES_H

#if defined(__has_include)
#if __has_include(<sys/sdt.h>)
#include <sys/sdt.h>
#define UHP_HAVE_USDT 1
#endif
#endif

#ifdef UHP_HAVE_USDT
#define UHP_PROBE1(name, a)		DTRACE_PROBE1(uhp, name, a)
#define UHP_PROBE2(name, a, b)		DTRACE_PROBE2(uhp, name, a, b)
#define UHP_PROBE3(name, a, b, c)	DTRACE_PROBE3(uhp, name, a, b, c)
#else
#define UHP_PROBE1(name, a)		do { (void)(a); } while (0)
#define UHP_PROBE2(name, a, b)		do { (void)(a); (void)(b); } while (0)
#define UHP_PROBE3(name, a, b, c)	do { (void)(a); (void)(b); (void)(c); } while (0)
#endif

#endif /* UHP_PROBES_H */
