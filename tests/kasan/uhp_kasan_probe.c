// SPDX-License-Identifier: GPL-2.0
/*
 * uhp_kasan_probe: a test-only module that proves KASAN works in the debug
 * guest kernel (scripts/lanes/debug.sh).  A lane that silently lost KASAN
 * would pass every test, so the lane checks that a known bug is reported.
 *
 * Its init frees a kmalloc()ed object and then reads it: KASAN must log
 * "BUG: KASAN: slab-use-after-free in uhp_kasan_probe_init".
 *
 * - KFENCE samples one allocation every 100 ms; had it taken ours, KFENCE
 *   would report "BUG: KFENCE: use-after-free" instead.  So an object from
 *   the KFENCE pool is set aside and another one allocated (KFENCE takes at
 *   most one per interval).  A cache of our own with SLAB_SKIP_KFENCE is no
 *   way out: kmem_cache_create() rejects that flag with -EINVAL.
 * - The pointer is laundered with OPTIMIZER_HIDE_VAR() after kfree() and
 *   read with READ_ONCE(), so the compiler can neither drop the read nor
 *   warn about it (-Wuse-after-free).
 * - Init returns 0 and the module has an (empty) exit, so
 *   tests/kasan/kasan-probe.sh removes it with rmmod.  Returning -EAGAIN
 *   would unload it at once, but busybox insmod retries a failed
 *   finit_module() with init_module(), which would run the init twice.
 *
 * Without the boot option kasan_multi_shot, KASAN reports only its first
 * bug per boot, and every report turns lockdep off (taint BAD_PAGE): run
 * the probe in a boot of its own, or last.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/compiler.h>
#include <linux/errno.h>
#include <linux/init.h>
#include <linux/kfence.h>
#include <linux/module.h>
#include <linux/printk.h>
#include <linux/slab.h>

#define PROBE_SIZE	128
#define PROBE_TRIES	4

static int __init uhp_kasan_probe_init(void)
{
	void *kfenced[PROBE_TRIES];
	int n = 0;
	char *p;
	char v;

	for (;;) {
		p = kmalloc(PROBE_SIZE, GFP_KERNEL);
		if (!p || !is_kfence_address(p) || n == PROBE_TRIES)
			break;
		kfenced[n++] = p;
	}
	while (n > 0)
		kfree(kfenced[--n]);
	if (!p)
		return -ENOMEM;
	if (is_kfence_address(p)) {
		kfree(p);
		pr_err("every allocation came from KFENCE; no probe\n");
		return -EAGAIN;
	}

	memset(p, 0x5a, PROBE_SIZE);
	kfree(p);

	/* Deliberate use after free: KASAN must report this read. */
	OPTIMIZER_HIDE_VAR(p);
	v = READ_ONCE(p[PROBE_SIZE / 2]);
	pr_info("read 0x%02x from a freed object (KASAN must have reported it)\n",
		(unsigned char)v);
	return 0;
}
module_init(uhp_kasan_probe_init);

static void __exit uhp_kasan_probe_exit(void)
{
}
module_exit(uhp_kasan_probe_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Test only: a deliberate slab use-after-free for KASAN to report");
