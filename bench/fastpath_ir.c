// SPDX-License-Identifier: MIT
/*
 * fastpath_ir: N round trips of a 64-byte record (uhp_send then uhp_recv,
 * CRC sealed and checked) through an arena, for counting instructions per
 * message under valgrind --tool=callgrind (scripts/fastpath-budget.sh). One
 * thread, no waiting: only the ring fast path runs in the loop.
 *
 *   fastpath_ir N          through the shared ring (write_pos CASed)
 *   fastpath_ir N excl     through a claimed exclusive ring
 *                          (uhp_claim_ring(): write_pos stored); the
 *                          consumer's turn still visits the empty shared
 *                          ring once per UHP_RR_QUANTUM records
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "uhp.h"

#include "bench_common.h"

int main(int argc, char **argv)
{
	struct uhp_create_opts o = UHP_CREATE_OPTS_INIT;
	unsigned char msg[64], out[64];
	struct uhp_channel *ch;
	char name[UHP_NAME_MAX];
	long n;
	int ret;

	if (argc < 2 || (argc > 2 && strcmp(argv[2], "excl"))) {
		fprintf(stderr, "usage: %s N [excl]\n", argv[0]);
		return 2;
	}
	n = (long)bench_arg_count("N", argv[1], 1, LONG_MAX);
	snprintf(name, sizeof(name), "fastpath.%d", getpid());
	o.ring_size = 1 << 16;
	o.node = 0;
	o.consumer = true;
	o.excl_rings = argc > 2;	/* "excl": send on a claimed ring */
	ret = uhp_arena_create(name, &o, &ch);
	if (ret) {
		fprintf(stderr, "fastpath_ir: arena: %s\n", strerror(-ret));
		return 2;
	}
	if (argc > 2 && (ret = uhp_claim_ring(ch)) < 0) {
		fprintf(stderr, "fastpath_ir: claim: %s\n", strerror(-ret));
		return 2;
	}
	memset(msg, 0x5a, sizeof(msg));
	for (long i = 0; i < n; i++) {
		struct uhp_meta m = { .seq = (uint64_t)i };

		if (uhp_send(ch, msg, sizeof(msg), &m) ||
		    uhp_recv(ch, out, sizeof(out), &m) != (ssize_t)sizeof(out) ||
		    m.seq != (uint64_t)i) {
			fprintf(stderr, "fastpath_ir: round trip %ld failed\n", i);
			ret = 1;
			break;
		}
	}
	uhp_close(ch);
	uhp_arena_unlink(name);
	return ret;
}
