// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit: uhp_ioctl (kmod/ioctl.c) -- the table-driven dispatch, with a fake
 * op table: unknown commands, the size-first struct rules of
 * copy_struct_from_user() and what is copied back.
 *
 * The dispatcher reads and writes user memory. A KUnit case runs in a
 * kernel thread, which has none, so the cases that need it give the thread
 * a fresh mm and map an anonymous page there (as later kernels' KUnit does
 * with kunit_vm_mmap()). That needs mm_alloc(), which modules cannot call:
 * with uhp built as a module those cases are skipped.
 */
#include <kunit/test.h>
#include <linux/kthread.h>
#include <linux/mman.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/uaccess.h>

#include "uhp_kunit.h"

/* ---- a fake command set ---------------------------------------------------- */

/* v1 ended at 'in'; v2 added 'out' and 'extra'. */
struct fake_arg {
	__u32 size;
	__u32 in;
	__aligned_u64 out;
	__aligned_u64 extra;
};

#define FAKE_BASE	0x40
#define FAKE_IOC_A	_IO(UHP_IOC_MAGIC, FAKE_BASE + 0)	/* copies out */
#define FAKE_IOC_B	_IO(UHP_IOC_MAGIC, FAKE_BASE + 1)	/* no copy out */
#define FAKE_IOC_HOLE	_IO(UHP_IOC_MAGIC, FAKE_BASE + 2)	/* no entry */
#define FAKE_IOC_C	_IO(UHP_IOC_MAGIC, FAKE_BASE + 3)	/* fails */

/* What the last handler call saw (the cases run one at a time). */
static struct {
	unsigned int calls;
	struct fake_arg arg;
	u32 user_size;
	struct file *file;
} fake_seen;

static int fake_record(struct uhp_ucmd *ucmd)
{
	fake_seen.calls++;
	fake_seen.arg = *(struct fake_arg *)ucmd->cmd;
	fake_seen.user_size = ucmd->user_size;
	fake_seen.file = ucmd->file;
	return 0;
}

/* Answers in every v2 field; returns 5 (like a handler returning an fd). */
static int fake_answer(struct uhp_ucmd *ucmd)
{
	struct fake_arg *a = ucmd->cmd;

	fake_record(ucmd);
	a->in = ~a->in;
	a->out = 0x1122334455667788ULL;
	a->extra = 0x99;
	return 5;
}

static int fake_fail(struct uhp_ucmd *ucmd)
{
	struct fake_arg *a = ucmd->cmd;

	fake_record(ucmd);
	a->out = 0xdead;
	return -EIO;
}

static const struct uhp_ioctl_op fake_ops[] = {
	UHP_IOCTL_OP(FAKE_BASE, FAKE_IOC_A, fake_answer, struct fake_arg, in, true),
	UHP_IOCTL_OP(FAKE_BASE, FAKE_IOC_B, fake_answer, struct fake_arg, in, false),
	UHP_IOCTL_OP(FAKE_BASE, FAKE_IOC_C, fake_fail, struct fake_arg, in, true),
};

/* Not a real file: the dispatcher only hands it to the handler. */
static struct file *const fake_file = (struct file *)0x1000;

static long fake_dispatch(unsigned int cmd, unsigned long arg)
{
	return uhp_ioctl_dispatch(fake_ops, ARRAY_SIZE(fake_ops), FAKE_BASE,
				  fake_file, cmd, arg);
}

static int uhp_ioctl_test_init(struct kunit *test)
{
	memset(&fake_seen, 0, sizeof(fake_seen));
	return 0;
}

/* ---- unknown commands: no user memory touched ---------------------------- */

struct uhp_cmd_case {
	const char *what;
	unsigned int cmd;
};

static const struct uhp_cmd_case enotty_cases[] = {
	{ "other magic", _IO(UHP_IOC_MAGIC + 1, FAKE_BASE) },
	{ "below the table", _IO(UHP_IOC_MAGIC, FAKE_BASE - 1) },
	{ "number 0", _IO(UHP_IOC_MAGIC, 0) },
	{ "hole in the table", FAKE_IOC_HOLE },
	{ "past the table", _IO(UHP_IOC_MAGIC, FAKE_BASE + ARRAY_SIZE(fake_ops) + 1) },
	{ "number 0xff", _IO(UHP_IOC_MAGIC, 0xff) },
	{ "with a direction", _IOW(UHP_IOC_MAGIC, FAKE_BASE, struct fake_arg) },
	{ "with a size", _IOC(_IOC_NONE, UHP_IOC_MAGIC, FAKE_BASE, 8) },
	{ "a tty ioctl", 0x5401 /* TCGETS */ },
};

static void cmd_case_desc(const struct uhp_cmd_case *c, char *desc)
{
	snprintf(desc, KUNIT_PARAM_DESC_SIZE, "%s", c->what);
}

KUNIT_ARRAY_PARAM(enotty, enotty_cases, cmd_case_desc);

/* Anything but a command of the table: -ENOTTY before reading the argument. */
static void uhp_ioctl_unknown(struct kunit *test)
{
	const struct uhp_cmd_case *c = test->param_value;

	/* The argument is a pointer nothing can read: not looked at. */
	KUNIT_EXPECT_EQ(test, fake_dispatch(c->cmd, 0), -ENOTTY);
	KUNIT_EXPECT_EQ(test, fake_seen.calls, 0U);
}

/* ---- user memory for the thread running the case ------------------------- */

/*
 * Give this kernel thread an mm of its own and map one anonymous page there;
 * skip the case if that cannot be done. The case must call user_page_free()
 * itself (no ASSERT in between): the mm belongs to this thread.
 */
static void __user *user_page(struct kunit *test, struct mm_struct **mmp)
{
#if IS_BUILTIN(CONFIG_UHP)
	struct mm_struct *mm;
	unsigned long addr;

	if (current->mm)
		kunit_skip(test, "the case's thread already has an mm");
	mm = mm_alloc();
	if (!mm)
		kunit_skip(test, "mm_alloc() failed");
	mm->task_size = TASK_SIZE;
	arch_pick_mmap_layout(mm, &current->signal->rlim[RLIMIT_STACK]);
	kthread_use_mm(mm);
	addr = vm_mmap(NULL, 0, PAGE_SIZE, PROT_READ | PROT_WRITE,
		       MAP_ANONYMOUS | MAP_PRIVATE, 0);
	if (IS_ERR_VALUE(addr)) {
		kthread_unuse_mm(mm);
		mmput(mm);
		kunit_skip(test, "vm_mmap() failed: %ld", (long)addr);
	}
	*mmp = mm;
	return (void __user *)addr;
#else
	kunit_skip(test, "user memory for a kernel thread needs uhp built in (mm_alloc)");
	return NULL;
#endif
}

static void user_page_free(struct mm_struct *mm)
{
#if IS_BUILTIN(CONFIG_UHP)
	kthread_unuse_mm(mm);
	mmput(mm);	/* unmaps the page */
#endif
}

struct fake_user {
	struct fake_arg arg;
	u8 beyond[64];		/* bytes after the struct userspace passed */
};

/* Copy 'v' to the user page, run the command, copy the page back to 'v'. */
static long fake_call(struct kunit *test, void __user *u, unsigned int cmd,
		      struct fake_user *v)
{
	long ret;

	if (copy_to_user(u, v, sizeof(*v))) {
		KUNIT_FAIL(test, "copy_to_user to the test's own page failed");
		return -EFAULT;
	}
	ret = fake_dispatch(cmd, (unsigned long)u);
	if (copy_from_user(v, u, sizeof(*v)))
		KUNIT_FAIL(test, "copy_from_user from the test's own page failed");
	return ret;
}

/* size below the v1 struct: -EINVAL, handler not called. */
static void uhp_ioctl_size_short(struct kunit *test)
{
	struct fake_user v = { .arg = { .size = 7, .in = 1 } };
	struct mm_struct *mm;
	void __user *u;

	u = user_page(test, &mm);
	KUNIT_EXPECT_EQ(test, fake_call(test, u, FAKE_IOC_A, &v), -EINVAL);
	v.arg.size = 0;
	KUNIT_EXPECT_EQ(test, fake_call(test, u, FAKE_IOC_A, &v), -EINVAL);
	KUNIT_EXPECT_EQ(test, fake_seen.calls, 0U);
	user_page_free(mm);
}

/*
 * A v1 caller (size 8): the handler sees the new fields zeroed, and only the
 * 8 bytes it passed are written back.
 */
static void uhp_ioctl_size_old(struct kunit *test)
{
	struct fake_user v = { .arg = { .size = 8, .in = 3, .out = 0xaaaa } };
	struct mm_struct *mm;
	void __user *u;

	memset(v.beyond, 0xee, sizeof(v.beyond));
	u = user_page(test, &mm);
	KUNIT_EXPECT_EQ(test, fake_call(test, u, FAKE_IOC_A, &v), 5L);
	KUNIT_EXPECT_EQ(test, fake_seen.calls, 1U);
	KUNIT_EXPECT_EQ(test, fake_seen.user_size, 8U);
	KUNIT_EXPECT_EQ(test, fake_seen.arg.in, 3U);
	KUNIT_EXPECT_EQ(test, fake_seen.arg.out, 0ULL);
	KUNIT_EXPECT_EQ(test, fake_seen.arg.extra, 0ULL);
	KUNIT_EXPECT_PTR_EQ(test, fake_seen.file, fake_file);
	/* Copied back: size and in; out is the caller's own bytes. */
	KUNIT_EXPECT_EQ(test, v.arg.size, 8U);
	KUNIT_EXPECT_EQ(test, v.arg.in, ~3U);
	KUNIT_EXPECT_EQ(test, v.arg.out, 0xaaaaULL);
	user_page_free(mm);
}

/* The current size: everything in, everything out. */
static void uhp_ioctl_size_exact(struct kunit *test)
{
	struct fake_user v = { .arg = { .size = sizeof(struct fake_arg), .in = 4,
					.out = 6, .extra = 7 } };
	struct mm_struct *mm;
	void __user *u;

	memset(v.beyond, 0xee, sizeof(v.beyond));
	u = user_page(test, &mm);
	KUNIT_EXPECT_EQ(test, fake_call(test, u, FAKE_IOC_A, &v), 5L);
	KUNIT_EXPECT_EQ(test, fake_seen.arg.out, 6ULL);
	KUNIT_EXPECT_EQ(test, fake_seen.arg.extra, 7ULL);
	KUNIT_EXPECT_EQ(test, v.arg.in, ~4U);
	KUNIT_EXPECT_EQ(test, v.arg.out, 0x1122334455667788ULL);
	KUNIT_EXPECT_EQ(test, v.arg.extra, 0x99ULL);
	KUNIT_EXPECT_EQ(test, v.beyond[0], 0xee);
	user_page_free(mm);
}

/*
 * A newer caller (struct longer than ours): accepted if the extra bytes are
 * zero, and nothing past our struct is written; a non-zero byte there is
 * -E2BIG and the handler is not called.
 */
static void uhp_ioctl_size_newer(struct kunit *test)
{
	struct fake_user v = { .arg = { .size = sizeof(struct fake_arg) + 16,
					.in = 9 } };
	struct mm_struct *mm;
	void __user *u;

	u = user_page(test, &mm);
	KUNIT_EXPECT_EQ(test, fake_call(test, u, FAKE_IOC_A, &v), 5L);
	KUNIT_EXPECT_EQ(test, fake_seen.calls, 1U);
	KUNIT_EXPECT_EQ(test, v.arg.size, (u32)sizeof(struct fake_arg) + 16);
	KUNIT_EXPECT_EQ(test, v.arg.in, ~9U);
	KUNIT_EXPECT_NULL(test, memchr_inv(v.beyond, 0, 16));

	v.arg.in = 9;
	v.beyond[15] = 1;
	KUNIT_EXPECT_EQ(test, fake_call(test, u, FAKE_IOC_A, &v), -E2BIG);
	KUNIT_EXPECT_EQ(test, fake_seen.calls, 1U);
	KUNIT_EXPECT_EQ(test, v.arg.in, 9U);

	/* A non-zero byte past the size userspace gave is not looked at. */
	v.beyond[15] = 0;
	v.beyond[16] = 1;
	KUNIT_EXPECT_EQ(test, fake_call(test, u, FAKE_IOC_A, &v), 5L);
	user_page_free(mm);
}

/*
 * A size above a page is -E2BIG at once, as for clone3() and openat2():
 * the tail is not scanned (0xffffffff used to mean 4 GiB of it).
 */
static void uhp_ioctl_size_over_a_page(struct kunit *test)
{
	static const u32 sizes[] = { PAGE_SIZE + 1, 0x10000, 0xffffffff };
	struct fake_user v = { .arg = { .in = 9 } };
	struct mm_struct *mm;
	void __user *u;
	unsigned int i;

	u = user_page(test, &mm);
	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		v.arg.size = sizes[i];
		KUNIT_EXPECT_EQ(test, fake_call(test, u, FAKE_IOC_A, &v), -E2BIG);
	}
	KUNIT_EXPECT_EQ(test, fake_seen.calls, 0U);
	user_page_free(mm);
}

/* copy_out false, or a failing handler: the caller's struct is untouched. */
static void uhp_ioctl_no_copy_out(struct kunit *test)
{
	struct fake_user v = { .arg = { .size = sizeof(struct fake_arg), .in = 1 } };
	struct mm_struct *mm;
	void __user *u;

	u = user_page(test, &mm);
	KUNIT_EXPECT_EQ(test, fake_call(test, u, FAKE_IOC_B, &v), 5L);
	KUNIT_EXPECT_EQ(test, fake_seen.calls, 1U);
	KUNIT_EXPECT_EQ(test, v.arg.in, 1U);
	KUNIT_EXPECT_EQ(test, v.arg.out, 0ULL);

	KUNIT_EXPECT_EQ(test, fake_call(test, u, FAKE_IOC_C, &v), -EIO);
	KUNIT_EXPECT_EQ(test, fake_seen.calls, 2U);
	KUNIT_EXPECT_EQ(test, v.arg.out, 0ULL);
	user_page_free(mm);
}

/*
 * Argument memory that cannot be read: -EFAULT and the handler is not
 * called. Nothing else is mapped in the fresh mm, so the page after ours is
 * a hole.
 */
static void uhp_ioctl_bad_pointer(struct kunit *test)
{
	struct fake_arg __user *tail;
	struct mm_struct *mm;
	void __user *u;

	u = user_page(test, &mm);
	KUNIT_EXPECT_EQ(test, fake_dispatch(FAKE_IOC_A, 0), -EFAULT);
	KUNIT_EXPECT_EQ(test, fake_dispatch(FAKE_IOC_A, (unsigned long)u + PAGE_SIZE),
			-EFAULT);
	KUNIT_EXPECT_EQ(test, fake_dispatch(FAKE_IOC_A, -4096UL), -EFAULT);

	/* The size is readable, the rest of the struct is not. */
	tail = u + PAGE_SIZE - sizeof(u32);
	KUNIT_EXPECT_EQ(test, put_user((u32)sizeof(struct fake_arg), &tail->size), 0);
	KUNIT_EXPECT_EQ(test, fake_dispatch(FAKE_IOC_A, (unsigned long)tail), -EFAULT);
	KUNIT_EXPECT_EQ(test, fake_seen.calls, 0U);
	user_page_free(mm);
}

static struct kunit_case uhp_ioctl_cases[] = {
	KUNIT_CASE_PARAM(uhp_ioctl_unknown, enotty_gen_params),
	KUNIT_CASE(uhp_ioctl_size_short),
	KUNIT_CASE(uhp_ioctl_size_old),
	KUNIT_CASE(uhp_ioctl_size_exact),
	KUNIT_CASE(uhp_ioctl_size_newer),
	KUNIT_CASE(uhp_ioctl_size_over_a_page),
	KUNIT_CASE(uhp_ioctl_no_copy_out),
	KUNIT_CASE(uhp_ioctl_bad_pointer),
	{}
};

static struct kunit_suite uhp_ioctl_suite = {
	.name = "uhp_ioctl",
	.init = uhp_ioctl_test_init,
	.test_cases = uhp_ioctl_cases,
};

kunit_test_suite(uhp_ioctl_suite);
