// SPDX-License-Identifier: MIT
/*
 * Run-time dispatch: which path a routine with several implementations
 * (CRC32C, copies, routing) uses. One rule for all of them: the path the
 * environment variable names, if this CPU has it; otherwise the first path
 * of the caller's preference list that the CPU has; otherwise the fallback.
 * An unknown or unsupported name means "auto" and is never an error.
 */
#include <stdlib.h>
#include <string.h>

#include "uhp_internal.h"

unsigned uhp__dispatch_choose(const char *env, const char *const *names,
			      unsigned nr, bool (*have)(unsigned path),
			      const unsigned *prefer, unsigned nprefer,
			      unsigned fallback)
{
	const char *force = getenv(env);

	if (force)
		for (unsigned i = 0; i < nr; i++)
			if (strcmp(force, names[i]) == 0 && have(i))
				return i;
	for (unsigned i = 0; i < nprefer; i++)
		if (have(prefer[i]))
			return prefer[i];
	return fallback;
}
