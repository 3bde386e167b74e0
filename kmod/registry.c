// SPDX-License-Identifier: GPL-2.0
/*
 * uhp channel registry: names, owners, permissions and per-user limits.
 *
 * A name lives in a scope, the namespace of the process that created it
 * (the IPC namespace, as POSIX message queues do, where the kernel lets a
 * module hold one; compat.h): a process sees, squats and unlinks only the
 * names of its own scope. Kernel producers look in the initial one.
 *
 * One mutex (uhp_registry_lock) protects the name hash and the list of every
 * live channel. The name hash holds a reference on each named channel; the
 * list does not (a channel leaves it in uhp_registry_release(), called from
 * the channel's final put). Nothing here is on a fast path: CREATE, ATTACH,
 * UNLINK and LIST are control operations, so a plain mutex and linear walks
 * of the list are fine (bounded by the per-user limit times the users).
 *
 * Never call uhp_channel_put() with uhp_registry_lock held: the final put
 * takes it.
 */
#include <linux/capability.h>
#include <linux/cred.h>
#include <linux/hashtable.h>
#include <linux/mutex.h>
#include <linux/string.h>
#include <linux/stringhash.h>

#include "compat.h"
#include "uhp.h"
#include "trace.h"

#define UHP_NAME_HASH_BITS	8

static DEFINE_MUTEX(uhp_registry_lock);
static DEFINE_HASHTABLE(uhp_names, UHP_NAME_HASH_BITS);
static LIST_HEAD(uhp_all);

/* The scope (namespace, see compat.h) salts the hash: names per scope. */
static u32 uhp_name_hash(const void *scope, const char *name)
{
	return full_name_hash(scope, name, strlen(name));
}

/* 1..UHP_NAME_MAX-1 bytes of [A-Za-z0-9._-], NUL-terminated, no leading '.'. */
int uhp_name_validate(const char *name)
{
	size_t len = strnlen(name, UHP_NAME_MAX);
	size_t i;

	if (len == UHP_NAME_MAX)
		return -ENAMETOOLONG;
	if (len == 0 || name[0] == '.')
		return -EINVAL;
	for (i = 0; i < len; i++) {
		char c = name[i];

		/* ASCII only: the kernel's isalnum() also takes Latin-1 letters. */
		if (!(c >= 'a' && c <= 'z') && !(c >= 'A' && c <= 'Z') &&
		    !(c >= '0' && c <= '9') && c != '.' && c != '_' && c != '-')
			return -EINVAL;
	}
	return 0;
}

static struct uhp_channel *uhp_name_find(const void *scope, const char *name)
{
	struct uhp_channel *ch;

	lockdep_assert_held(&uhp_registry_lock);
	hash_for_each_possible(uhp_names, ch, name_node, uhp_name_hash(scope, name))
		if (ch->scope == scope && !strcmp(ch->name, name))
			return ch;
	return NULL;
}

static unsigned int uhp_user_channels(kuid_t uid)
{
	struct uhp_channel *ch;
	unsigned int n = 0;

	lockdep_assert_held(&uhp_registry_lock);
	list_for_each_entry(ch, &uhp_all, all_node)
		if (uid_eq(ch->uid, uid))
			n++;
	return n;
}

/*
 * Enter a freshly allocated channel: counted against its owner's limit and,
 * the name being unique, hashed. On success the registry holds a reference
 * for the name.
 */
int uhp_registry_create(struct uhp_channel *ch)
{
	int ret = 0;

	mutex_lock(&uhp_registry_lock);
	if (uhp_user_channels(ch->uid) >= uhp_max_channels_per_user) {
		ret = -ENOSPC;
		goto out_unlock;
	}
	if (uhp_name_find(ch->scope, ch->name)) {
		ret = -EEXIST;
		goto out_unlock;
	}
	uhp_channel_get(ch);
	ch->named = true;
	hash_add(uhp_names, &ch->name_node, uhp_name_hash(ch->scope, ch->name));
	list_add(&ch->all_node, &uhp_all);
out_unlock:
	mutex_unlock(&uhp_registry_lock);
	return ret;
}

/* The channel named 'name' in 'scope', with a reference held, or NULL. */
struct uhp_channel *uhp_registry_lookup_scope(const void *scope, const char *name)
{
	struct uhp_channel *ch;

	mutex_lock(&uhp_registry_lock);
	ch = uhp_name_find(scope, name);
	if (ch)
		uhp_channel_get(ch);
	mutex_unlock(&uhp_registry_lock);
	return ch;
}

/* The same in the caller's scope: names elsewhere are not seen at all. */
struct uhp_channel *uhp_registry_lookup(const char *name)
{
	return uhp_registry_lookup_scope(uhp_scope_current(), name);
}

/* Owner, or CAP_DAC_OVERRIDE, may unlink (as with a file in a sticky dir). */
int uhp_registry_unlink(const char *name)
{
	struct uhp_channel *ch;
	int ret = 0;

	mutex_lock(&uhp_registry_lock);
	ch = uhp_name_find(uhp_scope_current(), name);
	if (!ch) {
		ret = -ENOENT;
		goto out_unlock;
	}
	if (!uid_eq(current_fsuid(), ch->uid) && !capable(CAP_DAC_OVERRIDE)) {
		ret = -EACCES;
		goto out_unlock;
	}
	hash_del(&ch->name_node);
	WRITE_ONCE(ch->named, false);	/* uhp_channel_hung_up() reads it */
	trace_uhp_unlink(ch);
out_unlock:
	mutex_unlock(&uhp_registry_lock);
	if (!ret) {
		uhp_channel_hup_wake(ch);
		uhp_channel_put(ch);	/* the name's reference */
	}
	return ret;
}

/*
 * Attaching gives read and write access to the rings, so it needs both bits
 * in the class (owner, group, other) the caller falls into, like a file opened
 * O_RDWR; a read-only attach (rdonly) needs the read bit, like O_RDONLY.
 * CAP_DAC_OVERRIDE overrides, as for files.
 */
static bool uhp_mode_allows(const struct uhp_channel *ch, umode_t want)
{
	umode_t mode = ch->mode;

	if (uid_eq(current_fsuid(), ch->uid))
		mode >>= 6;
	else if (in_group_p(ch->gid))
		mode >>= 3;
	return (mode & want) == want;
}

int uhp_registry_permission(const struct uhp_channel *ch, bool rdonly)
{
	if (uhp_mode_allows(ch, rdonly ? 04 : 06))
		return 0;
	return capable(CAP_DAC_OVERRIDE) ? 0 : -EACCES;
}

static void uhp_list_fill(struct uhp_list_entry *e, struct uhp_channel *ch)
{
	memcpy(e->name, ch->name, sizeof(e->name));
	e->uid = from_kuid_munged(current_user_ns(), ch->uid);
	e->gid = from_kgid_munged(current_user_ns(), ch->gid);
	e->mode = ch->mode;
	e->flags = (ch->auto_unlink ? UHP_LIST_F_AUTO_UNLINK : 0) |
		   (ch->nr_rings > ch->kring_first ? UHP_LIST_F_KERNEL_RINGS : 0) |
		   (READ_ONCE(ch->consumer) ? UHP_LIST_F_CONSUMER : 0);
	e->nr_rings = ch->nr_rings;
	e->nr_fds = atomic_read(&ch->nr_files);
	e->data_size = ch->data_size;
	/* the accounting rule, whether or not this owner was charged */
	e->ring_bytes = (u64)uhp_account_pages(ch->nr_rings, ch->data_size) << PAGE_SHIFT;
	spin_lock(&ch->consumer_lock);
	e->consumer_pid = ch->consumer_pid ? pid_vnr(ch->consumer_pid) : 0;
	spin_unlock(&ch->consumer_lock);
	e->nr_writers = max(atomic_read(&ch->nr_writers), 0);
	e->scope_inum = uhp_scope_inum(ch->scope);
}

/*
 * UHP_IOC_LIST: fill out[0..cap) with the named channels of the caller's
 * scope that it owns or may attach to read-only, oldest first, after
 * skipping 'start' of them; *count says how many were written. Returns how
 * many it may see. CAP_DAC_OVERRIDE is asked once, without an audit record
 * per channel.
 */
u32 uhp_registry_list(struct uhp_list_entry *out, u32 start, u32 cap, u32 *count)
{
	bool override = ns_capable_noaudit(&init_user_ns, CAP_DAC_OVERRIDE);
	const void *scope = uhp_scope_current();
	struct uhp_channel *ch;
	u32 seen = 0;

	*count = 0;
	mutex_lock(&uhp_registry_lock);
	/* list_add() puts the newest first. */
	list_for_each_entry_reverse(ch, &uhp_all, all_node) {
		if (!ch->named || ch->scope != scope ||
		    !(uid_eq(current_fsuid(), ch->uid) || override ||
		      uhp_mode_allows(ch, 04)))
			continue;
		if (seen++ >= start && *count < cap)
			uhp_list_fill(&out[(*count)++], ch);
	}
	mutex_unlock(&uhp_registry_lock);
	return seen;
}

/* Undo a successful uhp_registry_create() whose fd could not be made. */
void uhp_registry_forget(struct uhp_channel *ch)
{
	bool was_named;

	mutex_lock(&uhp_registry_lock);
	was_named = ch->named;
	if (was_named) {
		hash_del(&ch->name_node);
		WRITE_ONCE(ch->named, false);
	}
	mutex_unlock(&uhp_registry_lock);
	if (was_named) {
		uhp_channel_hup_wake(ch);
		uhp_channel_put(ch);	/* the name's reference */
	}
}

/* Called by the channel's final put. */
void uhp_registry_release(struct uhp_channel *ch)
{
	mutex_lock(&uhp_registry_lock);
	if (!list_empty(&ch->all_node))
		list_del_init(&ch->all_node);
	mutex_unlock(&uhp_registry_lock);
}

/*
 * Module exit: no fd or mapping can exist any more (each pins the module), so
 * dropping the names' references frees every channel.
 */
void uhp_registry_drain(void)
{
	struct uhp_channel *ch;
	struct hlist_node *tmp;
	LIST_HEAD(doomed);
	int bkt;

	mutex_lock(&uhp_registry_lock);
	hash_for_each_safe(uhp_names, bkt, tmp, ch, name_node) {
		hash_del(&ch->name_node);
		WRITE_ONCE(ch->named, false);
		list_move(&ch->all_node, &doomed);
	}
	mutex_unlock(&uhp_registry_lock);

	while (!list_empty(&doomed)) {
		ch = list_first_entry(&doomed, struct uhp_channel, all_node);
		list_del_init(&ch->all_node);
		uhp_channel_put(ch);
	}
}
