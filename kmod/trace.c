// SPDX-License-Identifier: GPL-2.0
/*
 * The tracepoints of kmod/trace.h, defined once here; the other files
 * include trace.h to call them.
 */
#define CREATE_TRACE_POINTS
#include "trace.h"
