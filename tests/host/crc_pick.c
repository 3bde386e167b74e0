// SPDX-License-Identifier: MIT
/*
 * crc_pick: which CRC32C path libuhp's auto choice takes, and the fast
 * paths' seal variant with it (userlib/crc32c.c, crc_calibrate()). Built
 * without sanitizers so it can also run under valgrind, whose CPU emulates
 * the crc32 and pclmulqdq instructions as QEMU TCG does:
 *
 *   crc_pick native     on this CPU: a hardware path (the table is 4-20x
 *                       slower here) and the SSE4.2 seal
 *   crc_pick emulated   under valgrind: timed, the table wins; the seal
 *                       follows it to the generic variant
 *   crc_pick forced P   UHP_CRC=P is kept as it is, never timed
 */
#include <stdio.h>
#include <string.h>

#include "tap.h"
#include "uhp_internal.h"

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "native";
	const char *impl = uhp__crc32c_impl();
	int seal = uhp__seal_choose();

	tap_plan(1);
	if (strcmp(mode, "native") == 0) {
		__builtin_cpu_init();
		if (!__builtin_cpu_supports("sse4.2"))
			tap_skip("no SSE4.2 on this CPU: the table is all it has",
				 "auto on this CPU: %s", impl);
		else
			tap_ok(strcmp(impl, "table") != 0 && seal == UHP_SEAL_SSE42,
			       "auto on this CPU: %s, seal %s", impl,
			       seal == UHP_SEAL_SSE42 ? "sse4.2" : "generic");
	} else if (strcmp(mode, "emulated") == 0) {
		tap_ok(strcmp(impl, "table") == 0 && seal == UHP_SEAL_GENERIC,
		       "auto on an emulating CPU: %s (the table is faster there), seal %s",
		       impl, seal == UHP_SEAL_SSE42 ? "sse4.2" : "generic");
	} else {
		tap_ok(argc > 2 && strcmp(impl, argv[2]) == 0,
		       "UHP_CRC=%s is kept untimed: %s", argc > 2 ? argv[2] : "?", impl);
	}
	return tap_done();
}
