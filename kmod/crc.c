// SPDX-License-Identifier: GPL-2.0
/*
 * uhp record CRC32C: the kernel's crc32c(), or a slicing-by-8 table where
 * that is faster.
 *
 * crc32c() runs the crc32 and pclmulqdq instructions. On an emulated CPU
 * (QEMU TCG, where each such instruction is a call into a helper) a table
 * lookup per byte is 2-4x faster, and libuhp's consumers already take the
 * table there (userlib/simd/crc32c.c times both). So the module times both at
 * load, once, and keeps crc32c() unless the table wins by UHP_CRC_MARGIN4/4:
 * on real hardware crc32c() is 4-20x faster and always stays. Module
 * parameter crc=auto|kernel|table forces a choice.
 *
 * The table is the standard reflected CRC-32C one (polynomial 0x82F63B78)
 * extended to 8 slices, built at load; KUnit (uhp_crc) checks it against
 * crc32c() for every length up to 300 and every alignment.
 */
#include <linux/jump_label.h>
#include <linux/kernel.h>
#include <linux/ktime.h>
#include <linux/module.h>
#include <linux/preempt.h>
#include <linux/string.h>

#include "compat.h"
#include "uhp.h"

static char *crc = "auto";
module_param(crc, charp, 0444);
MODULE_PARM_DESC(crc, "Record CRC32C: auto (default: the faster here), kernel (crc32c()) or table");

/* The table must be this much faster (x 4) to replace crc32c(). */
#define UHP_CRC_MARGIN4		6	/* 1.5x */
#define UHP_CRC_CAL_LEN		256
#define UHP_CRC_CAL_CALLS	8
#define UHP_CRC_CAL_TRIALS	5

static u32 uhp_crc_tab[8][256] __ro_after_init;
static DEFINE_STATIC_KEY_FALSE(uhp_crc_use_table);

u32 uhp_crc32c_table(u32 c, const void *buf, size_t len)
{
	const u8 *p = buf;

	while (len && ((unsigned long)p & 7)) {
		c = uhp_crc_tab[0][(c ^ *p++) & 0xff] ^ (c >> 8);
		len--;
	}
	while (len >= 8) {
		__le32 w[2];
		u32 lo, hi;

		memcpy(w, p, 8);
		lo = le32_to_cpu(w[0]) ^ c;
		hi = le32_to_cpu(w[1]);

		c = uhp_crc_tab[7][lo & 0xff] ^ uhp_crc_tab[6][(lo >> 8) & 0xff] ^
		    uhp_crc_tab[5][(lo >> 16) & 0xff] ^ uhp_crc_tab[4][lo >> 24] ^
		    uhp_crc_tab[3][hi & 0xff] ^ uhp_crc_tab[2][(hi >> 8) & 0xff] ^
		    uhp_crc_tab[1][(hi >> 16) & 0xff] ^ uhp_crc_tab[0][hi >> 24];
		p += 8;
		len -= 8;
	}
	while (len--)
		c = uhp_crc_tab[0][(c ^ *p++) & 0xff] ^ (c >> 8);
	return c;
}

/* crc32c()'s convention: no inversion inside. */
u32 uhp_crc32c(u32 c, const void *buf, size_t len)
{
	if (static_branch_unlikely(&uhp_crc_use_table))
		return uhp_crc32c_table(c, buf, len);
	return crc32c(c, buf, len);
}

bool uhp_crc_is_table(void)
{
	return static_branch_unlikely(&uhp_crc_use_table);
}

/* The table wins only by the margin: noise never switches real hardware. */
bool uhp_crc_prefer_table(u64 kernel_ns, u64 table_ns)
{
	return table_ns * UHP_CRC_MARGIN4 < kernel_ns * 4;
}

static u64 uhp_crc_time(bool table, const u8 *buf)
{
	u64 best = U64_MAX;
	int t, i;

	for (t = 0; t < UHP_CRC_CAL_TRIALS; t++) {
		u32 sum = 0;
		u64 ns;

		preempt_disable();
		ns = ktime_get_ns();
		for (i = 0; i < UHP_CRC_CAL_CALLS; i++)
			sum += table ? uhp_crc32c_table(~0U, buf, UHP_CRC_CAL_LEN) :
				       crc32c(~0U, buf, UHP_CRC_CAL_LEN);
		ns = ktime_get_ns() - ns;
		preempt_enable();
		/* keep the calls: their result is used */
		if (sum == 0x5eed)
			ns++;
		best = min(best, ns);
	}
	return best;
}

int uhp_crc_init(void)
{
	u8 buf[UHP_CRC_CAL_LEN];
	u64 kns, tns;
	int i, j;

	for (i = 0; i < 256; i++) {
		u32 c = i;

		for (j = 0; j < 8; j++)
			c = (c >> 1) ^ (c & 1 ? 0x82F63B78 : 0);
		uhp_crc_tab[0][i] = c;
	}
	for (i = 0; i < 256; i++)
		for (j = 1; j < 8; j++)
			uhp_crc_tab[j][i] = (uhp_crc_tab[j - 1][i] >> 8) ^
					    uhp_crc_tab[0][uhp_crc_tab[j - 1][i] & 0xff];

	if (!strcmp(crc, "kernel"))
		return 0;
	if (!strcmp(crc, "table")) {
		static_branch_enable(&uhp_crc_use_table);
		return 0;
	}
	if (strcmp(crc, "auto")) {
		pr_err("uhp: crc=%s: unknown (auto, kernel, table)\n", crc);
		return -EINVAL;
	}
	for (i = 0; i < sizeof(buf); i++)
		buf[i] = i * 131 + 7;
	kns = uhp_crc_time(false, buf);
	tns = uhp_crc_time(true, buf);
	if (uhp_crc_prefer_table(kns, tns)) {
		static_branch_enable(&uhp_crc_use_table);
		pr_info("uhp: crc32c(): %llu ns, table %llu ns for %d x %d bytes: the table here (an emulated CPU?)\n",
			kns, tns, UHP_CRC_CAL_CALLS, UHP_CRC_CAL_LEN);
	}
	return 0;
}
