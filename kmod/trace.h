/* SPDX-License-Identifier: GPL-2.0 */
/*
 * uhp tracepoints (events/uhp/ in tracefs; perf trace -e 'uhp:*',
 * trace-cmd record -e uhp). One event per thing an operator asks about:
 * a channel made, attached to, unlinked; a NOTIFY and a wake-up; a
 * position no honest process writes; a kernel producer's record dropped.
 * Channel names are copied whole (a fixed array, not __string(), whose
 * __assign_str() changed its arguments in 6.10): nothing here needs
 * kmod/compat.h.
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM uhp

#if !defined(_UHP_TRACE_H) || defined(TRACE_HEADER_MULTI_READ)
#define _UHP_TRACE_H

#include <linux/tracepoint.h>

#include "uhp.h"

DECLARE_EVENT_CLASS(uhp_channel_class,
		    TP_PROTO(const struct uhp_channel *ch),
		    TP_ARGS(ch),
		    TP_STRUCT__entry(__array(char, name, UHP_NAME_MAX)
				     __field(u32, uid)
				     __field(u32, nr_rings)),
		    TP_fast_assign(memcpy(__entry->name, ch->name, UHP_NAME_MAX);
				   __entry->uid = from_kuid(&init_user_ns, ch->uid);
				   __entry->nr_rings = ch->nr_rings;),
		    TP_printk("name=%s uid=%u rings=%u", __entry->name,
			      __entry->uid, __entry->nr_rings)
);

/* CREATE made and named a channel. */
DEFINE_EVENT(uhp_channel_class, uhp_create,
	     TP_PROTO(const struct uhp_channel *ch),
	     TP_ARGS(ch)
);

/* UNLINK took a channel's name (it lives on while fds or mappings hold it). */
DEFINE_EVENT(uhp_channel_class, uhp_unlink,
	     TP_PROTO(const struct uhp_channel *ch),
	     TP_ARGS(ch)
);

/* A process NOTIFYed the consumer (ioctl or io_uring). */
DEFINE_EVENT(uhp_channel_class, uhp_notify,
	     TP_PROTO(const struct uhp_channel *ch),
	     TP_ARGS(ch)
);

/* The consumers sleeping in poll() are woken. */
DEFINE_EVENT(uhp_channel_class, uhp_wake,
	     TP_PROTO(const struct uhp_channel *ch),
	     TP_ARGS(ch)
);

/* ATTACH gave a process an fd on a channel. */
TRACE_EVENT(uhp_attach,
	    TP_PROTO(const struct uhp_channel *ch, u32 flags),
	    TP_ARGS(ch, flags),
	    TP_STRUCT__entry(__array(char, name, UHP_NAME_MAX)
			     __field(u32, flags)),
	    TP_fast_assign(memcpy(__entry->name, ch->name, UHP_NAME_MAX);
			   __entry->flags = flags;),
	    TP_printk("name=%s consumer=%d rdonly=%d", __entry->name,
		      !!(__entry->flags & UHP_ATTACH_CONSUMER),
		      !!(__entry->flags & UHP_ATTACH_RDONLY))
);

/*
 * A ring's shared positions are ones no honest process writes: a kernel
 * producer or UHP_IOC_SEND refused to write (-EUCLEAN).
 */
TRACE_EVENT(uhp_corrupt,
	    TP_PROTO(const struct uhp_channel *ch, u32 ring, u64 read_pos,
		     u64 write_pos),
	    TP_ARGS(ch, ring, read_pos, write_pos),
	    TP_STRUCT__entry(__array(char, name, UHP_NAME_MAX)
			     __field(u32, ring)
			     __field(u64, read_pos)
			     __field(u64, write_pos)),
	    TP_fast_assign(memcpy(__entry->name, ch->name, UHP_NAME_MAX);
			   __entry->ring = ring;
			   __entry->read_pos = read_pos;
			   __entry->write_pos = write_pos;),
	    TP_printk("name=%s ring=%u read_pos=%llu write_pos=%llu",
		      __entry->name, __entry->ring, __entry->read_pos,
		      __entry->write_pos)
);

/* A kernel producer's record was not sent: -ENOSPC (full) or -EUCLEAN. */
TRACE_EVENT(uhp_kernel_drop,
	    TP_PROTO(const struct uhp_channel *ch, u32 ring, u32 len, int err),
	    TP_ARGS(ch, ring, len, err),
	    TP_STRUCT__entry(__array(char, name, UHP_NAME_MAX)
			     __field(u32, ring)
			     __field(u32, len)
			     __field(int, err)),
	    TP_fast_assign(memcpy(__entry->name, ch->name, UHP_NAME_MAX);
			   __entry->ring = ring;
			   __entry->len = len;
			   __entry->err = err;),
	    TP_printk("name=%s ring=%u len=%u err=%d", __entry->name,
		      __entry->ring, __entry->len, __entry->err)
);

#endif /* _UHP_TRACE_H */

/* Out of the kernel tree: found through -I (Kbuild) as ./trace.h. */
#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE trace
#include <trace/define_trace.h>
