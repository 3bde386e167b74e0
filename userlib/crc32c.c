// SPDX-License-Identifier: MIT
/*
 * CRC32C (Castagnoli, polynomial 0x1EDC6F41, reflected as 0x82F63B78).
 *
 * Convention: like the kernel's crc32c(seed, buf, len), no inversion inside;
 * the standard CRC is uhp_crc32c(~0U, buf, len) ^ ~0U.
 *
 * Two implementations, chosen once (pthread_once) on first use:
 *   hw     SSE4.2 'crc32' instruction, 8 bytes per step after aligning the
 *          pointer; compiled with a target attribute so the rest of the
 *          library needs no -msse4.2, used only if the CPU reports sse4.2.
 *   table  portable slicing-by-8: eight 256-entry tables built at init;
 *          table[0] is the byte-at-a-time table, table[k][i] advances
 *          table[k-1][i] by one more zero byte.
 * UHP_CRC=table in the environment forces the table path (tests, debugging).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "uhp_internal.h"

#define CRC32C_POLY_REFLECTED	0x82F63B78U

static uint32_t crc_table[8][256];
static uint32_t (*crc_impl)(uint32_t, const void *, size_t);
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static uint32_t load_le32(const unsigned char *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	v = __builtin_bswap32(v);
#endif
	return v;
}

static void crc_tables_build(void)
{
	for (unsigned i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int b = 0; b < 8; b++)
			c = (c >> 1) ^ ((c & 1) ? CRC32C_POLY_REFLECTED : 0);
		crc_table[0][i] = c;
	}
	for (unsigned i = 0; i < 256; i++)
		for (int k = 1; k < 8; k++)
			crc_table[k][i] = (crc_table[k - 1][i] >> 8) ^
					  crc_table[0][crc_table[k - 1][i] & 0xff];
}

static uint32_t crc_table_run(uint32_t crc, const void *buf, size_t len)
{
	const unsigned char *p = buf;

	while (len && ((uintptr_t)p & 7)) {
		crc = (crc >> 8) ^ crc_table[0][(crc ^ *p++) & 0xff];
		len--;
	}
	while (len >= 8) {
		uint32_t lo = crc ^ load_le32(p);
		uint32_t hi = load_le32(p + 4);

		crc = crc_table[7][lo & 0xff] ^
		      crc_table[6][(lo >> 8) & 0xff] ^
		      crc_table[5][(lo >> 16) & 0xff] ^
		      crc_table[4][lo >> 24] ^
		      crc_table[3][hi & 0xff] ^
		      crc_table[2][(hi >> 8) & 0xff] ^
		      crc_table[1][(hi >> 16) & 0xff] ^
		      crc_table[0][hi >> 24];
		p += 8;
		len -= 8;
	}
	while (len--)
		crc = (crc >> 8) ^ crc_table[0][(crc ^ *p++) & 0xff];
	return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2")))
static uint32_t crc_hw_run(uint32_t crc, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	uint64_t c = crc;

	while (len && ((uintptr_t)p & 7)) {
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
		len--;
	}
	while (len >= 8) {
		uint64_t v;

		memcpy(&v, p, sizeof(v));	/* aligned: one load */
		c = __builtin_ia32_crc32di(c, v);
		p += 8;
		len -= 8;
	}
	while (len--)
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
	return (uint32_t)c;
}
#endif

bool uhp__crc32c_hw_supported(void)
{
#if defined(__x86_64__)
	__builtin_cpu_init();
	return __builtin_cpu_supports("sse4.2");
#else
	return false;
#endif
}

static void crc_init(void)
{
	const char *force = getenv("UHP_CRC");

	crc_tables_build();
	crc_impl = crc_table_run;
#if defined(__x86_64__)
	if (!(force && strcmp(force, "table") == 0) && uhp__crc32c_hw_supported())
		crc_impl = crc_hw_run;
#else
	(void)force;
#endif
}

uint32_t uhp__crc32c_table(uint32_t crc, const void *buf, size_t len)
{
	pthread_once(&crc_once, crc_init);
	return crc_table_run(crc, buf, len);
}

/* Callers check uhp__crc32c_hw_supported() first; falls back otherwise. */
uint32_t uhp__crc32c_hw(uint32_t crc, const void *buf, size_t len)
{
#if defined(__x86_64__)
	if (uhp__crc32c_hw_supported())
		return crc_hw_run(crc, buf, len);
#endif
	return uhp__crc32c_table(crc, buf, len);
}

const char *uhp__crc32c_impl(void)
{
	pthread_once(&crc_once, crc_init);
#if defined(__x86_64__)
	if (crc_impl == crc_hw_run)
		return "sse4.2";
#endif
	return "table";
}

UHP_API uint32_t uhp_crc32c(uint32_t crc, const void *buf, size_t len)
{
	/* pthread_once makes crc_impl (written in crc_init) visible here. */
	pthread_once(&crc_once, crc_init);
	return crc_impl(crc, buf, len);
}
