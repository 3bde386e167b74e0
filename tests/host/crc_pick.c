// SPDX-License-Identifier: MIT
/*
 * crc_pick: which CRC32C path libuhp's auto choice takes, and the fast
 * paths' seal variant with it (userlib/simd/crc32c.c, crc_calibrate()). Built
 * without sanitizers so it can also run under valgrind.
 *
 *   crc_pick native     on this CPU: a hardware path (the table is 4-20x
 *                       slower here) and the SSE4.2 seal
 *   crc_pick rule       the timing rule: the table replaces the pick only
 *                       when 1.5x faster
 *   crc_pick forced P   UHP_CRC=P is kept as it is, never timed (run under
 *                       valgrind, whose emulated crc32 would otherwise be
 *                       timed against the table)
 * That an emulating CPU gets the table is checked where the emulation is
 * steady: the TCG guest (tests/guest/t_crc.c).
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

	if (strcmp(mode, "rule") == 0) {
		tap_plan(1);
		tap_ok(uhp__crc_prefer_table(4000, 1000) && uhp__crc_prefer_table(1000, 600) &&
		       !uhp__crc_prefer_table(1000, 700) && !uhp__crc_prefer_table(1000, 1000) &&
		       !uhp__crc_prefer_table(100, 2000),
		       "the table replaces the pick at 1.67x and 4x faster, not at 1.43x, 1x or slower");
		return tap_done();
	}
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
	} else {
		tap_ok(argc > 2 && strcmp(impl, argv[2]) == 0,
		       "UHP_CRC=%s is kept untimed: %s", argc > 2 ? argv[2] : "?", impl);
	}
	return tap_done();
}
