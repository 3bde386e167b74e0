// SPDX-License-Identifier: MIT
/*
 * CRC32C on x86-64: the three hardware paths of uhp_crc32c() (crc32c.c
 * picks one at run time; each path here handles every length itself).
 *
 *   sse42   the SSE4.2 'crc32' instruction, one serial chain, 32 bytes per
 *           loop turn. crc32 r64 has a 3-cycle latency and a throughput of
 *           one per cycle, so a single chain runs at a third of the unit's
 *           speed; for short records nothing else pays.
 *   pclmul  three crc32 chains over three equal blocks (the classic Intel
 *           "crc_pcl"): 3 x 8 KiB per turn while that much is left, then
 *           3 x 1 KiB, then the remainder split in three. (With 1 KiB
 *           blocks only, 64 MiB ran at 0.76x ISA-L's crc32_iscsi_00, the
 *           three streams 1 KiB apart defeating the prefetchers; with
 *           8 KiB blocks 1.19-1.25x, bench_crc32c.) The chains are joined with two carry-less multiplies:
 *           crc(A) and crc(B) are advanced over the bytes that follow them
 *           by multiplying with x^(8n-33) mod P (uhp__crc32c_shift_k[]) and
 *           the 64-bit products are XORed into the last qword of block C,
 *           whose crc32 step reduces them. Below PCL_MIN bytes: sse42.
 *   vpclmul VPCLMULQDQ folding on ymm (AVX2, no AVX-512 needed: Zen 3,
 *           Alder Lake), 4 accumulators = 128 bytes per turn, then one
 *           ymm -> 128 bits -> two crc32 steps, as avx512 below does. The
 *           len % 32 leading bytes go through crc32 first. Below
 *           VPCL256_MIN bytes: sse42.
 *   avx512  VPCLMULQDQ folding, 4 zmm accumulators = 256 bytes per turn
 *           (uhp__crc32c_fold_k[]), then 4 zmm -> 1 zmm -> 128 bits, and the
 *           128-bit remainder is fed to two crc32 steps (no Barrett step:
 *           the crc32 instruction does the reduction). Below AVX512_MIN
 *           bytes: sse42.
 *   avx512mix  avx512's folding mixed with crc32 chains. From IL_MIN to
 *           IL_MAX bytes (1..8 KiB) folded 64-byte blocks alternate with
 *           blocks run through crc32 chains, whose crcs are XORed into the
 *           next folded block (crc_inject_run); from IL_MAX (HYBRID_MIN
 *           if that is larger) to HYBRID_MAX the folds run side by side
 *           with six crc32 chains (crc_hybrid_run). Below AVX512_MIN
 *           bytes: sse42.
 *
 * Thresholds (uhp_internal.h) from bench/ and per-kernel runs on a Zen 5,
 * back-to-back independent calls (what bench_crc32c reports) and chained
 * calls (each seeded with the last result) both considered:
 *   - one chain beats folding below ~192 bytes in the first mode (folding
 *     has a fixed ~25-cycle reduction), folding wins from 192 in both;
 *   - three chains beat one from ~320 bytes back to back (from ~96 when
 *     chained: the combine is cheap next to a long serial chain); 256 is
 *     the compromise for CPUs without VPCLMULQDQ;
 *   - folds + chains beat folds alone from ~3 KiB when the core's other
 *     hyperthread is idle (1.2x at 4 KiB, 1.8x from 64 KiB), less when it
 *     is busy (they share the crc32 and load units).
 * On an Intel Xeon with AVX-512 (bench_crc32c, 2026-12-03) it is the other
 * way round: folds alone run at 1.07-1.11x ISA-L from 4 KiB to 1 MiB and
 * folds + chains at 0.58-0.81x; at 1 KiB 0.75x against 0.32x. So crc32c.c
 * prefers avx512mix on AMD CPUs and avx512 elsewhere.
 *
 * Representation (reflected, like the data): a 64-bit lane with bit i
 * standing for x^(63-i); a 32-bit constant v with bit i standing for
 * x^(31-i) sits in the low half of a 64-bit lane and so stands for
 * V(x) * x^32 there. A carry-less multiply of two lanes A and B yields
 * A*B*x in the 128-bit frame (bit k for x^(127-k)). Hence:
 *   - folding a 128-bit chunk X = L*x^64 + H forward by D bits (L = low
 *     qword = the earlier bytes): L * x^(D+31) and H * x^(D-33);
 *   - advancing a 32-bit crc c over n bytes and reducing with crc32q:
 *     crc32q(0, clmul(c, x^(8n-33)) low 64 bits) = c * x^(8n) mod P.
 * The crc seed enters by XOR into the first 4 message bytes (the raw CRC
 * is linear: crc(c, M) = crc(0, M ^ c||0...)), so the folds start from 0.
 *
 * Every constant is x^e mod P for a stated exponent e; tests/host/
 * crc32c_test.c derives each one bit by bit and compares (run
 * build/tests/host/crc32c_test gen to print the tables again).
 */
#define _GNU_SOURCE
#include <string.h>

#include "uhp_internal.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define T_SSE42		__attribute__((target("sse4.2")))
#define T_PCLMUL	__attribute__((target("sse4.2,pclmul")))
#define T_AVX512	__attribute__((target("sse4.2,pclmul,avx2,avx512f,avx512vl,vpclmulqdq")))
#define T_VPCL256	__attribute__((target("sse4.2,pclmul,avx2,vpclmulqdq")))

/* Thresholds, from bench/bench_crc32c on an AMD Zen 5 (see bench/). */
#define PCL_MIN		UHP_CRC32C_PCL_MIN
#define AVX512_MIN	UHP_CRC32C_AVX512_MIN
#define VPCL256_MIN	UHP_CRC32C_VPCL256_MIN
_Static_assert(UHP_CRC32C_AVX512_MIN <= UHP_CRC32C_PCL_MIN,
	       "avx512 goes from one chain straight to folding");
#define HYBRID_MIN	UHP_CRC32C_HYBRID_MIN
#define HYBRID_MAX	UHP_CRC32C_HYBRID_MAX

/* x^(D+31) and x^(D-33) mod P: folding a 128-bit chunk forward by D bits. */
const struct uhp_crc32c_fold_k uhp__crc32c_fold_k[UHP_CRC32C_NR_FOLD_K] = {
	{  128, 0xf20c0dfe, 0x493c7d27 },
	{  256, 0x3da6d0cb, 0xba4fc28e },
	{  384, 0x1c291d04, 0xddc0152b },
	{  512, 0x740eef02, 0x9e4addf8 },
	{ 1024, 0x6992cea2, 0x0d3b6092 },
	{ 1536, 0xa87ab8a8, 0xab7aff2a },
	{ 2048, 0xdcb17aa4, 0xb9e02b86 },
};
enum { FK128, FK256, FK384, FK512, FK1024, FK1536, FK2048 };

/* [i - 1] = x^(64*i - 33) mod P: advancing a crc over 8*i bytes. */
const uint32_t uhp__crc32c_shift_k[UHP_CRC32C_NR_SHIFT_K] = {
	0x00000001, 0x493c7d27, 0xf20c0dfe, 0xba4fc28e, 0x3da6d0cb, 0xddc0152b,
	0x1c291d04, 0x9e4addf8, 0x740eef02, 0x39d3b296, 0x083a6eec, 0x0715ce53,
	0xc49f4f67, 0x47db8317, 0x2ad91c30, 0x0d3b6092, 0x6992cea2, 0xc96cfdc0,
	0x7e908048, 0x878a92a7, 0x1b3d8f29, 0xdaece73e, 0xf1d0f55e, 0xab7aff2a,
	0xa87ab8a8, 0x2162d385, 0x8462d800, 0x83348832, 0x71d111a8, 0x299847d5,
	0xffd852c6, 0xb9e02b86, 0xdcb17aa4, 0x18b33a4e, 0xf37c5aee, 0xb6dd949b,
	0x6051d5a2, 0x78d9ccb7, 0x18b0d4ff, 0xbac2fd7b, 0x21f3d99c, 0xa60ce07b,
	0x8f158014, 0xce7f39f4, 0xa00457f7, 0x61d82e56, 0x8d6d2c43, 0xd270f1a2,
	0x00ac29cf, 0xc619809d, 0xe9adf796, 0x2b3cac5d, 0x96638b34, 0x65863b64,
	0xe0e9f351, 0x1b03397f, 0x9af01f2d, 0xebb883bd, 0x2cff42cf, 0xb3e32c28,
	0x88f25a3a, 0x064f7f26, 0x4e36f0b0, 0xdd7e3b0c, 0xbd6f81f8, 0xf285651c,
	0x91c9bd4b, 0x10746f3c, 0x885f087b, 0xc7a68855, 0x4c144932, 0x271d9844,
	0x52148f02, 0x8e766a0c, 0xa3c6f37a, 0x93a5f730, 0xd7c0557f, 0x6cb08e5c,
	0x63ded06a, 0x6b749fb2, 0x4d56973c, 0x1393e203, 0x9669c9df, 0xcec3662e,
	0xe417f38a, 0x96c515bb, 0x4b9e0f71, 0xe6fc4e6a, 0xd104b8fc, 0x8227bb8a,
	0x5b397730, 0xb0cd4768, 0xe78eb416, 0x39c7ff35, 0x61ff0e01, 0xd7a4825c,
	0x8d96551c, 0x0ab3844b, 0x0bf80dd2, 0x0167d312, 0x8821abed, 0xf6076544,
	0x6a45d2b2, 0x26f6a60a, 0xd8d26619, 0xa741c1bf, 0xde87806c, 0x98d8d9cb,
	0x14338754, 0x49c3cc9c, 0x5bd2011f, 0x68bce87a, 0xdd07448e, 0x57a3d037,
	0xdde8f5b9, 0x6956fc3b, 0xa3e3e02c, 0x42d98888, 0xd73c7bea, 0x3771e98f,
	0x80ff0093, 0xb42ae3d9, 0x8fe4c34d, 0x2178513a, 0xdf99fc11, 0xe0ac139e,
	0x6c23e841, 0x170076fa, 0xfe314258, 0x444dd413, 0x0d8373a0, 0x6f345e45,
	0x19e3635e, 0x41d17b64, 0x29f268b4, 0xff0dba97, 0x1dc0632a, 0xa2b73df1,
	0x1614f396, 0xf872e54c, 0x9e2993d3, 0x1e41e9fc, 0x6bebd73c, 0x86d8e4d2,
	0x63ae91e6, 0x651bd98b, 0xf8c9da7a, 0x5bb8f1bc, 0x945a19c1, 0xa90fd27a,
	0xee8213b7, 0xb3af077a, 0x93781dc7, 0x4984d782, 0xccc4a1b9, 0xca6ef3ac,
	0xa2c2d971, 0x234e0b26, 0x1cad4452, 0xdd66cbbb, 0x74922601, 0x4597456a,
	0xc55f7eab, 0xe9e28eb4, 0xa1962329, 0x7b3ff57a, 0x2d370749, 0xc9c8b782,
	0x397d84a1, 0x3f70cc6f, 0x79113270, 0x93e106a4, 0xbc817803, 0x62ec6c6d,
	0x88eb3c07, 0xd813b325, 0x6e4cb630, 0x0df04680, 0x71971d5c, 0x2342001e,
	0xf33b8bc6, 0x0a2a8d7e, 0x9fb3bbc0, 0x6d9a4957, 0x6ef22b23, 0xe8b6368b,
	0xce2df768, 0xd2c3ed1a, 0xe53a4fc7, 0x995a5724, 0xbe60a91a, 0x9ef68d35,
	0x1dfa0a15, 0x0c139b31, 0x8ec52396, 0xf2271e60, 0x0e766b11, 0x0b0bf8ca,
	0x475846a4, 0x2664fd8b, 0xb2a3dfa6, 0xed64812d, 0xdc1a160c, 0x02ee03b2,
	0x79afdf1c, 0x8604ae0f, 0x07ac6e46, 0x363bd6b3, 0x15f85253, 0x135c83fd,
	0x1bec24dd, 0x5fabe670, 0x4c36cd5b, 0x35ec3279, 0xe0a22e29, 0x00bcf5f6,
	0x7c2b6ed9, 0x8ae00689, 0x06ff88fd, 0x17f27698, 0xf7317cf0, 0x58ca5f00,
	0x61b6e40b, 0xaa7c7ad5, 0xde8a97f8, 0xb5cfca28, 0x88f61445, 0xded288f8,
	0xd4520e9e, 0x59f229bc, 0x0c592bd5, 0x6d390dec, 0x38edfaf3, 0x37170390,
	0x72cbfcdb, 0x6353c1cc, 0x348331a5, 0xc4584f5c, 0xc3977c19, 0xf48642e9,
	0xdafaea7c, 0x531377e2, 0x73db4c04, 0xdd35bc8d, 0x72675ce8, 0xb25b29f2,
	0x3ec2ff83, 0x9a5ede41, 0xe8c7a017, 0xa563905d, 0xcf4bfaef, 0x45cddf4e,
	0x6bde1ac7, 0xacfa3103, 0xae1175c2, 0xa51b6135,
};
#define SHIFT_K(qwords)	((uint64_t)uhp__crc32c_shift_k[(qwords) - 1])

/* [b] = x^(64 * 2^b - 33) mod P: advancing a crc over 8 * 2^b bytes. */
const uint32_t uhp__crc32c_pow2_k[UHP_CRC32C_NR_POW2_K] = {
	0x00000001, 0x493c7d27, 0xba4fc28e, 0x9e4addf8, 0x0d3b6092, 0xb9e02b86,
	0xdd7e3b0c, 0x170076fa, 0xa51b6135, 0x82f89c77, 0x54a86326, 0x1dc403cc,
	0x5ae703ab, 0xc5013a36, 0xac2ac6dd, 0x9b4615a9, 0x688d1c61, 0xf6af14e6,
	0xb6ffe386, 0xb717425b, 0x478b0d30, 0x54cc62e5, 0x7b2102ee, 0x8a99adef,
	0xa7568c8f, 0xd610d67e, 0x6b086b3f, 0xd94f3c0b, 0xbf818109, 0x780d5a4d,
	0x05ec76f1, 0x00000001, 0x493c7d27, 0xba4fc28e, 0x9e4addf8, 0x0d3b6092,
	0xb9e02b86, 0xdd7e3b0c, 0x170076fa, 0xa51b6135, 0x82f89c77, 0x54a86326,
	0x1dc403cc, 0x5ae703ab, 0xc5013a36, 0xac2ac6dd, 0x9b4615a9, 0x688d1c61,
	0xf6af14e6, 0xb6ffe386, 0xb717425b, 0x478b0d30, 0x54cc62e5, 0x7b2102ee,
	0x8a99adef, 0xa7568c8f, 0xd610d67e, 0x6b086b3f, 0xd94f3c0b, 0xbf818109,
	0x780d5a4d, 0x05ec76f1, 0x00000001, 0x493c7d27,
};

static inline uint64_t ld64(const unsigned char *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static inline uint32_t ld32(const unsigned char *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static inline uint16_t ld16(const unsigned char *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

/* ---- sse42: one chain ---- */

/* The last len & 7 bytes: at most three steps. */
T_SSE42 static inline uint64_t crc_tail7(uint64_t c, const unsigned char *p,
					 size_t len)
{
	if (len & 4) {
		c = _mm_crc32_u32((uint32_t)c, ld32(p));
		p += 4;
	}
	if (len & 2) {
		c = _mm_crc32_u16((uint32_t)c, ld16(p));
		p += 2;
	}
	if (len & 1)
		c = _mm_crc32_u8((uint32_t)c, *p);
	return c;
}

T_SSE42 static inline uint64_t crc_serial(uint64_t c, const unsigned char *p,
					  size_t len)
{
	while (len >= 32) {
		c = _mm_crc32_u64(c, ld64(p));
		c = _mm_crc32_u64(c, ld64(p + 8));
		c = _mm_crc32_u64(c, ld64(p + 16));
		c = _mm_crc32_u64(c, ld64(p + 24));
		p += 32;
		len -= 32;
	}
	while (len >= 8) {
		c = _mm_crc32_u64(c, ld64(p));
		p += 8;
		len -= 8;
	}
	return crc_tail7(c, p, len);
}

T_SSE42 uint32_t uhp__crc32c_sse42(uint32_t crc, const void *buf, size_t len)
{
	return (uint32_t)crc_serial(crc, buf, len);
}

/* ---- pclmul: three chains joined by carry-less multiplies ---- */

/*
 * crc over 3 * b bytes (b a multiple of 8, >= 8) with three chains.
 * ka = x^(8*2b - 33), kb = x^(8*b - 33): advance chain A over B and C,
 * chain B over C, both reduced by the last crc32 step of chain C.
 */
T_PCLMUL static inline uint64_t crc_3way(uint64_t c0, const unsigned char *p,
					 size_t b, uint64_t ka, uint64_t kb)
{
	const unsigned char *end = p + b - 8;
	uint64_t c1 = 0, c2 = 0;
	__m128i a, m;

	for (; p < end; p += 8) {
		c0 = _mm_crc32_u64(c0, ld64(p));
		c1 = _mm_crc32_u64(c1, ld64(p + b));
		c2 = _mm_crc32_u64(c2, ld64(p + 2 * b));
	}
	c0 = _mm_crc32_u64(c0, ld64(p));
	c1 = _mm_crc32_u64(c1, ld64(p + b));
	a = _mm_clmulepi64_si128(_mm_cvtsi64_si128((long long)c0),
				 _mm_cvtsi64_si128((long long)ka), 0x00);
	m = _mm_clmulepi64_si128(_mm_cvtsi64_si128((long long)c1),
				 _mm_cvtsi64_si128((long long)kb), 0x00);
	a = _mm_xor_si128(a, m);
	return _mm_crc32_u64(c2, ld64(p + 2 * b) ^
				 (uint64_t)_mm_cvtsi128_si64(a));
}

#define PCL_BLOCK	1024	/* bytes per chain and turn; SHIFT_K(256) = 2 blocks */
/* 8 KiB per chain on long buffers: 2^10 qwords, constants from pow2_k[]. */
#define PCL_BIG_LOG2	10
#define PCL_BIG_BLOCK	(8 << PCL_BIG_LOG2)

T_PCLMUL static inline uint64_t crc_pcl_run(uint64_t c, const unsigned char *p,
					    size_t len)
{
	size_t q;

	while (len >= 3 * PCL_BIG_BLOCK) {
		c = crc_3way(c, p, PCL_BIG_BLOCK, uhp__crc32c_pow2_k[PCL_BIG_LOG2 + 1],
			     uhp__crc32c_pow2_k[PCL_BIG_LOG2]);
		p += 3 * PCL_BIG_BLOCK;
		len -= 3 * PCL_BIG_BLOCK;
	}
	while (len >= 3 * PCL_BLOCK) {
		c = crc_3way(c, p, PCL_BLOCK, SHIFT_K(2 * PCL_BLOCK / 8),
			     SHIFT_K(PCL_BLOCK / 8));
		p += 3 * PCL_BLOCK;
		len -= 3 * PCL_BLOCK;
	}
	q = len / 24;		/* qwords per chain for the rest */
	if (q) {
		c = crc_3way(c, p, 8 * q, SHIFT_K(2 * q), SHIFT_K(q));
		p += 24 * q;
		len -= 24 * q;
	}
	return crc_serial(c, p, len);
}

T_PCLMUL uint32_t uhp__crc32c_pclmul(uint32_t crc, const void *buf, size_t len)
{
	if (len < PCL_MIN)
		return (uint32_t)crc_serial(crc, buf, len);
	return (uint32_t)crc_pcl_run(crc, buf, len);
}

/* ---- vpclmul: VPCLMULQDQ folding on 256-bit registers ---- */

T_VPCL256 static inline __m256i fold256_k(unsigned i)
{
	const struct uhp_crc32c_fold_k *k = &uhp__crc32c_fold_k[i];

	return _mm256_broadcastsi128_si256(_mm_set_epi64x(k->k_hi, k->k_lo));
}

/* Each 128-bit lane of x folded forward by the distance of k, XOR d. */
T_VPCL256 static inline __m256i fold256(__m256i x, __m256i k, __m256i d)
{
	return _mm256_xor_si256(_mm256_xor_si256(_mm256_clmulepi64_epi128(x, k, 0x00),
						 _mm256_clmulepi64_epi128(x, k, 0x11)),
				d);
}

/*
 * len >= 128. The len % 32 leading bytes go through crc32 first; the crc
 * so far is XORed into the first 4 bytes of the first ymm chunk (the same
 * CRC with state 0), four accumulators then take 128 bytes a turn (each
 * moves 1024 bits), are folded into one, its two lanes into one, and the
 * remaining 128 bits go through two crc32 steps from state 0.
 */
T_VPCL256 __attribute__((noinline))
static uint32_t crc_fold256_run(uint32_t crc, const unsigned char *p, size_t len)
{
	__m256i x0, x1, x2, x3, k;
	__m128i z, k128;
	uint64_t c;

	c = crc_serial(crc, p, len & 31);
	p += len & 31;
	len &= ~(size_t)31;

	x0 = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)p),
			      _mm256_zextsi128_si256(_mm_cvtsi32_si128((int)c)));
	p += 32;
	len -= 32;
	if (len >= 96) {
		x1 = _mm256_loadu_si256((const __m256i *)p);
		x2 = _mm256_loadu_si256((const __m256i *)(p + 32));
		x3 = _mm256_loadu_si256((const __m256i *)(p + 64));
		p += 96;
		len -= 96;
		k = fold256_k(FK1024);
		while (len >= 128) {
			x0 = fold256(x0, k, _mm256_loadu_si256((const __m256i *)p));
			x1 = fold256(x1, k, _mm256_loadu_si256((const __m256i *)(p + 32)));
			x2 = fold256(x2, k, _mm256_loadu_si256((const __m256i *)(p + 64)));
			x3 = fold256(x3, k, _mm256_loadu_si256((const __m256i *)(p + 96)));
			p += 128;
			len -= 128;
		}
		k = fold256_k(FK256);
		x1 = fold256(x0, k, x1);
		x2 = fold256(x1, k, x2);
		x0 = fold256(x2, k, x3);
	}
	if (len) {
		k = fold256_k(FK256);
		do {
			x0 = fold256(x0, k, _mm256_loadu_si256((const __m256i *)p));
			p += 32;
			len -= 32;
		} while (len);
	}

	/* lane 0 folded by 128 bits onto lane 1 */
	k128 = _mm256_castsi256_si128(fold256_k(FK128));
	z = _mm256_castsi256_si128(x0);
	z = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(z, k128, 0x00),
					_mm_clmulepi64_si128(z, k128, 0x11)),
			  _mm256_extracti128_si256(x0, 1));
	c = _mm_crc32_u64(0, (uint64_t)_mm_cvtsi128_si64(z));
	c = _mm_crc32_u64(c, (uint64_t)_mm_extract_epi64(z, 1));
	return (uint32_t)c;
}

T_VPCL256 uint32_t uhp__crc32c_vpclmul(uint32_t crc, const void *buf, size_t len)
{
	if (len < VPCL256_MIN)
		return (uint32_t)crc_serial(crc, buf, len);
	return crc_fold256_run(crc, buf, len);
}

/* ---- avx512: VPCLMULQDQ folding ---- */

T_AVX512 static inline __m512i fold_k(unsigned i)
{
	const struct uhp_crc32c_fold_k *k = &uhp__crc32c_fold_k[i];

	return _mm512_broadcast_i32x4(_mm_set_epi64x(k->k_hi, k->k_lo));
}

/* x folded forward by the distance of k, XORed with d. */
T_AVX512 static inline __m512i fold(__m512i x, __m512i k, __m512i d)
{
	return _mm512_ternarylogic_epi64(_mm512_clmulepi64_epi128(x, k, 0x00),
					 _mm512_clmulepi64_epi128(x, k, 0x11),
					 d, 0x96);
}

/*
 * len >= 64. The len % 16 leading bytes go through crc32 first; the first
 * zmm chunk takes the next len % 64 bytes (if any) as though the message
 * were padded in front with zeros to a whole chunk (leading zeros do not
 * change a CRC whose state is 0, and the seed is already in the data), so
 * every later chunk is a whole 64 bytes and the last one ends the message.
 */
T_AVX512 __attribute__((noinline))
static uint32_t crc_fold_run(uint32_t crc, const unsigned char *p, size_t len)
{
	__m512i x0, x1, x2, x3, k, t;
	__m256i y;
	__m128i z;
	uint64_t c;
	size_t r;

	c = crc_tail7(crc, p, len & 7);
	p += len & 7;
	if (len & 8) {
		c = _mm_crc32_u64(c, ld64(p));
		p += 8;
	}
	len &= ~(size_t)15;

	r = len & 63;
	t = _mm512_zextsi128_si512(_mm_cvtsi32_si128((int)c));
	if (r) {
		/* r / 16 lanes, loaded low, moved to the top lanes */
		x0 = _mm512_maskz_loadu_epi64((__mmask8)((1U << (r / 8)) - 1), p);
		x0 = _mm512_xor_si512(x0, t);
		t = _mm512_setzero_si512();
		if (r == 16)
			x0 = _mm512_alignr_epi64(x0, t, 2);
		else if (r == 32)
			x0 = _mm512_alignr_epi64(x0, t, 4);
		else
			x0 = _mm512_alignr_epi64(x0, t, 6);
		p += r;
		len -= r;
	} else {
		x0 = _mm512_xor_si512(_mm512_loadu_si512(p), t);
		p += 64;
		len -= 64;
	}

	if (len >= 192) {
		x1 = _mm512_loadu_si512(p);
		x2 = _mm512_loadu_si512(p + 64);
		x3 = _mm512_loadu_si512(p + 128);
		p += 192;
		len -= 192;
		k = fold_k(FK2048);
		while (len >= 256) {
			x0 = fold(x0, k, _mm512_loadu_si512(p));
			x1 = fold(x1, k, _mm512_loadu_si512(p + 64));
			x2 = fold(x2, k, _mm512_loadu_si512(p + 128));
			x3 = fold(x3, k, _mm512_loadu_si512(p + 192));
			p += 256;
			len -= 256;
		}
		x0 = fold(x0, fold_k(FK1536), x3);
		x1 = fold(x1, fold_k(FK1024), x0);
		x0 = fold(x2, fold_k(FK512), x1);
	}
	if (len) {
		k = fold_k(FK512);
		do {
			x0 = fold(x0, k, _mm512_loadu_si512(p));
			p += 64;
			len -= 64;
		} while (len);
	}

	/* 4 lanes -> 128 bits: lanes 0..2 folded by 384/256/128 bits */
	k = _mm512_set_epi64(0, 0,
			     uhp__crc32c_fold_k[FK128].k_hi, uhp__crc32c_fold_k[FK128].k_lo,
			     uhp__crc32c_fold_k[FK256].k_hi, uhp__crc32c_fold_k[FK256].k_lo,
			     uhp__crc32c_fold_k[FK384].k_hi, uhp__crc32c_fold_k[FK384].k_lo);
	x0 = fold(x0, k, _mm512_maskz_mov_epi64(0xC0, x0));
	y = _mm256_xor_si256(_mm512_castsi512_si256(x0),
			     _mm512_extracti64x4_epi64(x0, 1));
	z = _mm_xor_si128(_mm256_castsi256_si128(y), _mm256_extracti128_si256(y, 1));

	c = _mm_crc32_u64(0, (uint64_t)_mm_cvtsi128_si64(z));
	c = _mm_crc32_u64(c, (uint64_t)_mm_extract_epi64(z, 1));
	return (uint32_t)c;
}

/* ---- avx512, large buffers: folding and crc32 chains side by side ---- */

/*
 * a * b * x^33 mod P, for 32-bit a, b as above: the product lands in the
 * low qword, which one crc32 step multiplies by x^32 and reduces. With
 * k(n) = x^(8n - 33) mod P (advance over n bytes): mul(k(a), k(b)) =
 * k(a + b).
 */
T_AVX512 static inline uint32_t xmul33(uint32_t a, uint32_t b)
{
	__m128i t = _mm_clmulepi64_si128(_mm_cvtsi32_si128((int)a),
					 _mm_cvtsi32_si128((int)b), 0x00);

	return (uint32_t)_mm_crc32_u64(0, (uint64_t)_mm_cvtsi128_si64(t));
}

/* x^(64 * qwords - 33) mod P, qwords >= 1: one multiply per set bit. */
T_AVX512 static inline uint32_t shift_k_any(size_t qwords)
{
	unsigned b = (unsigned)__builtin_ctzll(qwords);
	uint32_t k = uhp__crc32c_pow2_k[b];

	for (qwords >>= b + 1, b++; qwords; qwords >>= 1, b++)
		if (qwords & 1)
			k = xmul33(k, uhp__crc32c_pow2_k[b]);
	return k;
}

/* c * x^(8n) mod P, as a 64-bit value for one closing crc32 step. */
T_AVX512 static inline __m128i advance(uint64_t c, uint32_t k)
{
	return _mm_clmulepi64_si128(_mm_cvtsi64_si128((long long)c),
				    _mm_cvtsi32_si128((int)k), 0x00);
}

/*
 * The zmm folds are bound by VPCLMULQDQ throughput (one zmm multiply per
 * 2 cycles on Zen 5: 16 cycles per 256 bytes) and leave the crc32 units
 * idle, so the buffer is cut in regions processed side by side:
 *   H   the first (len % HYB_STEP) % 48 bytes, with the seed: one short
 *       crc32 chain, independent of the rest so it overlaps with it;
 *   V   256 bytes per turn, folded on zmm (seed 0);
 *   S_j 6 regions of 8 * HYB_Q bytes per turn, one crc32 chain each, plus
 *       up to 11 qwords each after the last turn (the rest of a turn that
 *       does not fill one: cheaper there than in a separate fold).
 * At the end every partial crc is advanced over the bytes after its region
 * (x^(8n) mod P for any n, from uhp__crc32c_pow2_k[]; computed before the
 * loop, off the critical path) and all are XORed. Only for buffers up to
 * HYBRID_MAX: from memory (past the caches) the seven streams read slower
 * than one, and one fold stream already keeps up with DRAM.
 */
#define HYB_W	6		/* crc32 chains: latency 3, up to 2 per cycle */
#define HYB_Q	6		/* qwords per chain per turn */
#define HYB_STEP (256 + 8 * HYB_W * HYB_Q)

_Static_assert(UHP_CRC32C_HYBRID_MIN >= HYB_STEP, "at least one turn");

/* noinline: its zmm stack frame must not tax the short path of the caller */
T_AVX512 __attribute__((noinline))
static uint32_t crc_hybrid_run(uint32_t crc, const unsigned char *p, size_t len)
{
	size_t n = len / HYB_STEP;		/* turns, >= 1 */
	size_t e = (len % HYB_STEP) / (8 * HYB_W);	/* extra qwords per chain */
	size_t h = len % HYB_STEP - 8 * HYB_W * e;	/* head bytes, < 48 */
	size_t m = 8 * (HYB_Q * n + e);		/* bytes per chain */
	const unsigned char *v = p + h, *s = v + 256 * n, *end = s;
	const unsigned char *s3 = s + 3 * m;
	uint64_t c0 = 0, c1 = 0, c2 = 0, c3 = 0, c4 = 0, c5 = 0, ch, cv;
	uint32_t k1, k2, k3, k4, k5, k6, kh;
	__m512i x0, x1, x2, x3, k;
	__m256i y;
	__m128i z, t;

	/* H, then the constants: both independent of the loop */
	ch = crc_serial(crc, p, h);
	k1 = shift_k_any(HYB_Q * n + e);	/* over one chain region */
	k2 = xmul33(k1, k1);
	k3 = xmul33(k2, k1);
	k4 = xmul33(k2, k2);
	k5 = xmul33(k3, k2);
	k6 = xmul33(k3, k3);			/* over all chain regions */
	kh = xmul33(shift_k_any(32 * n), k6);	/* over V and them */

	/* two bases and one stride: every address is base + m * {0,1,2} + off */
#define HYB_CHAINS(off) do {						\
		c0 = _mm_crc32_u64(c0, ld64(s + (off)));		\
		c1 = _mm_crc32_u64(c1, ld64(s + m + (off)));		\
		c2 = _mm_crc32_u64(c2, ld64(s + 2 * m + (off)));	\
		c3 = _mm_crc32_u64(c3, ld64(s3 + (off)));		\
		c4 = _mm_crc32_u64(c4, ld64(s3 + m + (off)));		\
		c5 = _mm_crc32_u64(c5, ld64(s3 + 2 * m + (off)));	\
	} while (0)
#define HYB_TURN() do {							\
		_Pragma("GCC unroll 8")					\
		for (unsigned q_ = 0; q_ < HYB_Q; q_++)			\
			HYB_CHAINS(8 * q_);				\
		s += 8 * HYB_Q;						\
		s3 += 8 * HYB_Q;					\
	} while (0)
	_Static_assert(HYB_W == 6, "HYB_CHAINS spells the chains out");

	x0 = _mm512_loadu_si512(v);
	x1 = _mm512_loadu_si512(v + 64);
	x2 = _mm512_loadu_si512(v + 128);
	x3 = _mm512_loadu_si512(v + 192);
	HYB_TURN();
	k = fold_k(FK2048);
	for (v += 256; v < end; v += 256) {
		x0 = fold(x0, k, _mm512_loadu_si512(v));
		x1 = fold(x1, k, _mm512_loadu_si512(v + 64));
		x2 = fold(x2, k, _mm512_loadu_si512(v + 128));
		x3 = fold(x3, k, _mm512_loadu_si512(v + 192));
		HYB_TURN();
	}
	for (; e; e--, s += 8, s3 += 8)
		HYB_CHAINS(0);
#undef HYB_TURN
#undef HYB_CHAINS

	x0 = fold(x0, fold_k(FK1536), x3);
	x1 = fold(x1, fold_k(FK1024), x0);
	x0 = fold(x2, fold_k(FK512), x1);
	k = _mm512_set_epi64(0, 0,
			     uhp__crc32c_fold_k[FK128].k_hi, uhp__crc32c_fold_k[FK128].k_lo,
			     uhp__crc32c_fold_k[FK256].k_hi, uhp__crc32c_fold_k[FK256].k_lo,
			     uhp__crc32c_fold_k[FK384].k_hi, uhp__crc32c_fold_k[FK384].k_lo);
	x0 = fold(x0, k, _mm512_maskz_mov_epi64(0xC0, x0));
	y = _mm256_xor_si256(_mm512_castsi512_si256(x0),
			     _mm512_extracti64x4_epi64(x0, 1));
	z = _mm_xor_si128(_mm256_castsi256_si128(y), _mm256_extracti128_si256(y, 1));
	cv = _mm_crc32_u64(0, (uint64_t)_mm_cvtsi128_si64(z));
	cv = _mm_crc32_u64(cv, (uint64_t)_mm_extract_epi64(z, 1));

	t = _mm_ternarylogic_epi64(advance(ch, kh), advance(cv, k6),
				   advance(c0, k5), 0x96);
	t = _mm_ternarylogic_epi64(t, advance(c1, k4), advance(c2, k3), 0x96);
	t = _mm_ternarylogic_epi64(t, advance(c3, k2), advance(c4, k1), 0x96);
	return (uint32_t)(_mm_crc32_u64(0, (uint64_t)_mm_cvtsi128_si64(t)) ^ c5);
}

/* ---- avx512, 1..8 KiB: folds and crc32 chains, chain crcs injected ---- */

/*
 * The buffer after a head of len % 512 bytes is cut in 512-byte turns of
 * eight 64-byte blocks, even blocks folded on zmm (4 accumulators, one
 * per even block, 512 bytes apart), odd blocks run through one crc32
 * chain each (8 steps, from 0). No multiply joins a chain to the rest:
 * a raw CRC is linear, crc(R || S) = crc(0, S ^ (crc(0, R) || 0...)) for
 * a region R that starts from state 0, so each chain's crc is XORed into
 * the first 4 bytes of the block that follows it before that block is
 * folded in (the head's crc, with the seed, into the first block). The
 * last odd block is run serially after the reduction, from its result.
 * Per turn: 8 zmm multiplies (16 cycles on Zen 5) beside 32 crc32 (2 per
 * cycle): twice the bytes per multiply of crc_fold_run, without the
 * constants and joins that make crc_hybrid_run slow to start.
 * bench_crc32c on Zen 5 (BENCH_SAMPLE_US=100 BENCH_REPS=101), uhp_crc32c
 * vs ISA-L, quiet machine: 1 KiB 1.09 -> 1.43x, 2 KiB 1.05 -> 1.58x,
 * 4 KiB 1.34 -> 1.64x (the hybrid's), 8 KiB 1.44 vs 1.42x; with the other
 * vCPU busy the gain shrinks (1 KiB 1.08 -> 1.11x, 4 KiB 0.99 -> 1.10x)
 * and from 8 KiB on the hybrid is ahead (16 KiB 1.26 vs 1.09x), hence
 * IL_MIN..IL_MAX. Below 1 KiB (one turn and a head) folding is faster.
 */
#define IL_MIN		1024
#define IL_MAX		8192	/* from here crc_hybrid_run */
#define IL_TURN		512

_Static_assert(IL_MIN >= 2 * IL_TURN && IL_MAX > IL_MIN, "IL bounds");

/* { lo, hi } = { x^(D+31), x^(D-33) } of one 128-bit lane, in all four */
T_AVX512 static inline __m512i fold_k_pair(uint32_t k_lo, uint32_t k_hi)
{
	return _mm512_broadcast_i32x4(_mm_set_epi64x(k_hi, k_lo));
}

/* crc32 of 64 bytes from state 0: one chain, 8 steps */
T_AVX512 static inline uint64_t crc_block64(const unsigned char *p)
{
	uint64_t c = _mm_crc32_u64(0, ld64(p));

	c = _mm_crc32_u64(c, ld64(p + 8));
	c = _mm_crc32_u64(c, ld64(p + 16));
	c = _mm_crc32_u64(c, ld64(p + 24));
	c = _mm_crc32_u64(c, ld64(p + 32));
	c = _mm_crc32_u64(c, ld64(p + 40));
	c = _mm_crc32_u64(c, ld64(p + 48));
	return _mm_crc32_u64(c, ld64(p + 56));
}

/* block d with a crc XORed into its first 4 bytes */
T_AVX512 static inline __m512i inject(__m512i d, uint64_t c)
{
	return _mm512_xor_si512(d, _mm512_zextsi128_si512(_mm_cvtsi32_si128((int)c)));
}

/* IL_MIN <= len: see above */
T_AVX512 __attribute__((noinline))
static uint32_t crc_inject_run(uint32_t crc, const unsigned char *p, size_t len)
{
	size_t h = len % IL_TURN, turns = len / IL_TURN;
	uint64_t c = crc, d0, d1, d2, d3;
	__m512i a0, a1, a2, a3, k;
	__m256i y;
	__m128i z;

	if (h >= AVX512_MIN)
		c = crc_fold_run(crc, p, h);
	else
		c = crc_serial(crc, p, h);
	p += h;

	/* first turn: even blocks loaded, each after the crc before it */
	a0 = inject(_mm512_loadu_si512(p), c);
	d0 = crc_block64(p + 64);
	a1 = inject(_mm512_loadu_si512(p + 128), d0);
	d1 = crc_block64(p + 192);
	a2 = inject(_mm512_loadu_si512(p + 256), d1);
	d2 = crc_block64(p + 320);
	a3 = inject(_mm512_loadu_si512(p + 384), d2);
	p += IL_TURN;

	/* the others: accumulators move 512 bytes = x^(4096+31), x^(4096-33) */
	k = fold_k_pair((uint32_t)SHIFT_K(65), (uint32_t)SHIFT_K(64));
	for (turns--; turns; turns--, p += IL_TURN) {
		d3 = crc_block64(p - 64);	/* last odd block of the turn before */
		a0 = fold(a0, k, inject(_mm512_loadu_si512(p), d3));
		d0 = crc_block64(p + 64);
		a1 = fold(a1, k, inject(_mm512_loadu_si512(p + 128), d0));
		d1 = crc_block64(p + 192);
		a2 = fold(a2, k, inject(_mm512_loadu_si512(p + 256), d1));
		d2 = crc_block64(p + 320);
		a3 = fold(a3, k, inject(_mm512_loadu_si512(p + 384), d2));
	}

	/* a2, a1, a0 moved onto a3: 128, 256, 384 bytes (3072 bits) */
	a2 = fold(a2, fold_k(FK1024), a3);
	a1 = fold(a1, fold_k(FK2048), a2);
	a0 = fold(a0, fold_k_pair((uint32_t)SHIFT_K(49), (uint32_t)SHIFT_K(48)), a1);

	/* 4 lanes -> 128 bits, as in crc_fold_run */
	k = _mm512_set_epi64(0, 0,
			     uhp__crc32c_fold_k[FK128].k_hi, uhp__crc32c_fold_k[FK128].k_lo,
			     uhp__crc32c_fold_k[FK256].k_hi, uhp__crc32c_fold_k[FK256].k_lo,
			     uhp__crc32c_fold_k[FK384].k_hi, uhp__crc32c_fold_k[FK384].k_lo);
	a0 = fold(a0, k, _mm512_maskz_mov_epi64(0xC0, a0));
	y = _mm256_xor_si256(_mm512_castsi512_si256(a0),
			     _mm512_extracti64x4_epi64(a0, 1));
	z = _mm_xor_si128(_mm256_castsi256_si128(y), _mm256_extracti128_si256(y, 1));
	c = _mm_crc32_u64(0, (uint64_t)_mm_cvtsi128_si64(z));
	c = _mm_crc32_u64(c, (uint64_t)_mm_extract_epi64(z, 1));

	/* the last odd block, on from there */
	return (uint32_t)crc_serial(c, p - 64, 64);
}

/*
 * Short records fall straight through to the one chain; longer buffers
 * are a compare and a tail jump away. The entry is cache-line aligned so
 * the short loop does not move with unrelated code (one layout put the
 * 32-byte loop across a line: 64-byte calls ~10% slower).
 */
T_AVX512 __attribute__((aligned(64), optimize("align-loops=32")))
uint32_t uhp__crc32c_avx512mix(uint32_t crc, const void *buf, size_t len)
{
	if (uhp_unlikely(len >= AVX512_MIN)) {
		if (uhp_likely(len < IL_MIN))
			return crc_fold_run(crc, buf, len);
		if (len < IL_MAX)
			return crc_inject_run(crc, buf, len);
		if (len < HYBRID_MIN || len > HYBRID_MAX)
			return crc_fold_run(crc, buf, len);
		return crc_hybrid_run(crc, buf, len);
	}
	return (uint32_t)crc_serial(crc, buf, len);
}

/* Folding alone from AVX512_MIN bytes: see "avx512" at the top. */
T_AVX512 __attribute__((aligned(64), optimize("align-loops=32")))
uint32_t uhp__crc32c_avx512(uint32_t crc, const void *buf, size_t len)
{
	if (uhp_unlikely(len >= AVX512_MIN))
		return crc_fold_run(crc, buf, len);
	return (uint32_t)crc_serial(crc, buf, len);
}

#endif /* __x86_64__ */
