// SPDX-License-Identifier: MIT
/*
 * uhp_open_channel(): one call for programs that should run with the
 * module where it is loaded and without it elsewhere, that create a
 * channel or join it whoever comes first, and whose options may grow.
 *
 * Which backend: UHP_OPEN_DEVICE or UHP_OPEN_ARENA say; with neither,
 * /dev/uhp when it opens, an arena when there is no such device (ENOENT,
 * ENODEV, ENXIO: no module). A device that exists but refuses us (EACCES)
 * is an answer, not a reason to go elsewhere: the admin keeps uhp to a
 * group, and peers on /dev/uhp would never meet ours in an arena. With the
 * module there, an existing arena of the name is still found by attach
 * (someone made it with UHP_OPEN_ARENA); creation goes to the device.
 *
 * Create-or-attach: attach first (the common case of a running system);
 * on ENOENT create; on EEXIST (someone created it meanwhile) attach again;
 * on ENOENT again (and it was unlinked meanwhile) start over, a few times.
 *
 * Options are copied the way the kernel copies its structs
 * (copy_struct_from_user()): a shorter struct is zero-extended, a longer
 * one must be zero beyond ours.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include "uhp_internal.h"

#define UHP_OPEN_FLAGS \
	(UHP_OPEN_CREATE | UHP_OPEN_EXCL | UHP_OPEN_CONSUMER | UHP_OPEN_RDONLY | \
	 UHP_OPEN_KERNEL_RINGS | UHP_OPEN_ONE_NODE | UHP_OPEN_DEVICE | UHP_OPEN_ARENA | \
	 UHP_OPEN_CONSUME_ONLY)
#define UHP_OPEN_RETRIES	8
/* The first version of struct uhp_open_opts ends after flags. */
#define UHP_OPEN_OPTS_SIZE_VER0	offsetof(struct uhp_open_opts, ring_size)

static int copy_opts(struct uhp_open_opts *o, const struct uhp_open_opts *in)
{
	memset(o, 0, sizeof(*o));
	if (!in)
		return 0;
	if (in->size < UHP_OPEN_OPTS_SIZE_VER0)
		return -EINVAL;
	if (in->size > sizeof(*o)) {
		const unsigned char *rest = (const unsigned char *)in + sizeof(*o);

		for (size_t i = 0; i < in->size - sizeof(*o); i++)
			if (rest[i])
				return -E2BIG;
	}
	memcpy(o, in, in->size < sizeof(*o) ? in->size : sizeof(*o));
	if ((o->flags & ~UHP_OPEN_FLAGS) || o->node > INT32_MAX)
		return -EINVAL;
	if ((o->flags & UHP_OPEN_DEVICE) && (o->flags & UHP_OPEN_ARENA))
		return -EINVAL;
	if ((o->flags & UHP_OPEN_EXCL) && !(o->flags & UHP_OPEN_CREATE))
		return -EINVAL;
	if ((o->flags & UHP_OPEN_CONSUME_ONLY) && !(o->flags & UHP_OPEN_CONSUMER))
		return -EINVAL;
	/* An observer creates nothing and consumes nothing. */
	if ((o->flags & UHP_OPEN_RDONLY) &&
	    (o->flags & (UHP_OPEN_CREATE | UHP_OPEN_CONSUMER)))
		return -EINVAL;
	return 0;
}

static void create_opts(const struct uhp_open_opts *o, struct uhp_create_opts *c)
{
	c->ring_size = o->ring_size ? o->ring_size : UHP_DEFAULT_RING_SIZE;
	c->mode = o->mode ? o->mode : UHP_DEFAULT_MODE;
	c->node = o->flags & UHP_OPEN_ONE_NODE ? (int)o->node : -1;
	c->consumer = o->flags & UHP_OPEN_CONSUMER;
	c->kernel_rings = o->flags & UHP_OPEN_KERNEL_RINGS;
	c->excl_rings = o->excl_rings;
}

static unsigned attach_flags(const struct uhp_open_opts *o)
{
	return (o->flags & UHP_OPEN_CONSUMER ? UHP_ATTACH_CONSUMER : 0) |
	       (o->flags & UHP_OPEN_RDONLY ? UHP_ATTACH_RDONLY : 0);
}


/* On /dev/uhp (dev >= 0) or as an arena (dev < 0). 1 created, 0 attached. */
static int open_on(int dev, const char *name, const struct uhp_open_opts *o,
		   struct uhp_channel **out)
{
	struct uhp_create_opts c;
	int ret = -ENOENT;

	create_opts(o, &c);
	for (int i = 0; i < UHP_OPEN_RETRIES; i++) {
		if (!(o->flags & UHP_OPEN_EXCL)) {
			ret = dev >= 0 ?
			      uhp_attach(dev, name, attach_flags(o) |
					 (o->flags & UHP_OPEN_CONSUME_ONLY ?
					  UHP_ATTACH_CONSUME_ONLY : 0), out) :
			      uhp_arena_attach(name, attach_flags(o), out);
			if (ret != -ENOENT || !(o->flags & UHP_OPEN_CREATE))
				return ret;
		}
		ret = dev >= 0 ?
		      uhp__create(dev, name, &c, o->flags & UHP_OPEN_CONSUME_ONLY ?
				  UHP_CREATE_CONSUME_ONLY : 0, out) :
		      uhp_arena_create(name, &c, out);
		if (ret == 0)
			return 1;
		if (ret != -EEXIST || (o->flags & UHP_OPEN_EXCL))
			return ret;
	}
	return ret;	/* created and unlinked under us every time */
}

UHP_API int uhp_open_channel(const char *name, const struct uhp_open_opts *opts,
			     struct uhp_channel **out)
{
	struct uhp_open_opts o;
	int dev, ret;

	if (!out)
		return -EINVAL;
	ret = copy_opts(&o, opts);
	if (ret)
		return ret;
	if (o.flags & UHP_OPEN_ARENA) {
		dev = -ENOENT;
	} else {
		dev = uhp_open();
		if (dev < 0 && ((o.flags & UHP_OPEN_DEVICE) ||
				(dev != -ENOENT && dev != -ENODEV && dev != -ENXIO)))
			return dev;
	}
	if (dev < 0 && (o.flags & UHP_OPEN_KERNEL_RINGS))
		return -EOPNOTSUPP;	/* only the module has kernel producers */

	if (dev >= 0) {
		struct uhp_open_opts a = o;
		bool may_arena = !(o.flags & (UHP_OPEN_EXCL | UHP_OPEN_DEVICE |
					      UHP_OPEN_KERNEL_RINGS));

		/* The device's channel, else an arena's, else create one. */
		a.flags &= ~UHP_OPEN_CREATE;
		ret = o.flags & UHP_OPEN_EXCL ? -ENOENT : open_on(dev, name, &a, out);
		if (ret == -ENOENT && may_arena)
			ret = uhp_arena_attach(name, attach_flags(&o), out);
		if (ret == -ENOENT && (o.flags & UHP_OPEN_CREATE))
			ret = open_on(dev, name, &o, out);
		close(dev);
	} else {
		ret = open_on(-1, name, &o, out);
	}
	if (ret < 0)
		return ret;
	if (o.flags & UHP_OPEN_CONSUME_ONLY)
		(*out)->max_total = 0;	/* an arena's too: it sends nothing */
	if (o.spin)
		uhp_set_spin(*out, o.spin);
	if (o.stall_timeout_ns)
		uhp_set_stall_timeout_ns(*out, o.stall_timeout_ns);
	return ret;
}

UHP_API const char *uhp_channel_kind(const struct uhp_channel *ch)
{
	return ch->be->name;
}
