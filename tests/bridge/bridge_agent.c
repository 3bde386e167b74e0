/* SPDX-License-Identifier: MIT */
/*
 * bridge_agent: the uhp agents of the bridge tests, and a rogue publisher.
 *
 *   bridge_agent send CHAN --src ID --count N [--size S | --size-min A --size-max B]
 *                [--start SEQ] [--rate MSGS_PER_S] [--progress FILE] [--max-ms T]
 *       Produce N records into CHAN (created if missing), seq START.., src ID,
 *       type 7. Payload: seq (8 bytes), src (4), len (4), then bytes derived
 *       from (seq, i). Waits while the channel is full (and counts it), but
 *       gives up and exits 1 once T ms (default 300000) have passed: a bridge
 *       that stopped taking records fails the test instead of hanging it.
 *
 *   bridge_agent recv CHAN --expect N [--sources K] [--idle-ms T] [--max-ms T]
 *                [--pause-ms P] [--linger-ms L] [--start SEQ] [--progress FILE]
 *       Consume CHAN (created if missing) until N distinct records arrived
 *       (then L ms more, to see duplicates), T ms passed without a record, or
 *       the deadline. Checks every payload against its header fields, order
 *       per src (seq strictly +1), duplicates, and counts what libuhp refused
 *       for a bad CRC. Prints one JSON line; exit 0 only when exactly N
 *       distinct records of K sources arrived, in order, none damaged, none
 *       twice. --holes H: exactly H records missing inside the sequence
 *       (and N the ones that arrived); --lossy: only what arrived is checked.
 *
 *   bridge_agent rogue URL SUBJECT --count N [--kind badcrc|nocrc|good]
 *       Publish N messages with Uhp-* headers straight to NATS (nats.c): a
 *       payload whose Uhp-Crc does not match (badcrc), no Uhp-Crc (nocrc),
 *       or correct ones (good) with src 999 and seq 1..N.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nats/nats.h>

#include "uhp.h"

#define MAX_SRCS 64

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static uint64_t num(const char *s)
{
	char *end;
	double v = strtod(s, &end);

	if (*end == 'k' || *end == 'K')
		v *= 1e3;
	else if (*end == 'M')
		v *= 1e6;
	return (uint64_t)v;
}

static uint8_t pat(uint64_t seq, uint32_t src, uint32_t i)
{
	uint64_t x = seq * 0x9E3779B97F4A7C15ULL + src * 0x85EBCA6BULL + i;

	x ^= x >> 29;
	return (uint8_t)(x * 0xBF58476D1CE4E5B9ULL >> 56);
}

static uint32_t size_for(uint64_t seq, uint32_t lo, uint32_t hi)
{
	if (hi <= lo)
		return lo;
	return lo + (uint32_t)((seq * 2654435761ULL) % (hi - lo + 1));
}

static void fill(unsigned char *p, uint64_t seq, uint32_t src, uint32_t len)
{
	memcpy(p, &seq, 8);
	memcpy(p + 8, &src, 4);
	memcpy(p + 12, &len, 4);
	for (uint32_t i = 16; i < len; i++)
		p[i] = pat(seq, src, i);
}

static bool check(const unsigned char *p, uint32_t len, const struct uhp_meta *m)
{
	uint64_t seq;
	uint32_t src, l;

	if (len < 16)
		return false;
	memcpy(&seq, p, 8);
	memcpy(&src, p + 8, 4);
	memcpy(&l, p + 12, 4);
	if (seq != m->seq || src != m->src || l != len || m->type != 7)
		return false;
	for (uint32_t i = 16; i < len; i++)
		if (p[i] != pat(seq, src, i))
			return false;
	return true;
}

static volatile sig_atomic_t stop;
static void on_sig(int s) { (void)s; stop = 1; }

static void progress(const char *file, uint64_t n)
{
	FILE *f;
	char tmp[4096];

	if (!file)
		return;
	snprintf(tmp, sizeof(tmp), "%s.tmp", file);
	f = fopen(tmp, "w");
	if (!f)
		return;
	fprintf(f, "%" PRIu64 "\n", n);
	fclose(f);
	rename(tmp, file);
}

static int do_send(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "src", 1, 0, 's' }, { "count", 1, 0, 'n' }, { "size", 1, 0, 'z' },
		{ "size-min", 1, 0, 'a' }, { "size-max", 1, 0, 'b' },
		{ "start", 1, 0, 'S' }, { "rate", 1, 0, 'r' }, { "progress", 1, 0, 'p' },
		{ "max-ms", 1, 0, 'm' }, { 0 }
	};
	struct uhp_open_opts o = UHP_OPEN_OPTS_INIT;
	struct uhp_channel *ch;
	uint32_t src = 1, lo_sz = 64, hi_sz = 64;
	uint64_t count = 1000, start = 1, rate = 0, full = 0, maxms = 300000;
	const char *prog = NULL;
	unsigned char *buf;
	int64_t t0, deadline;
	int c, r;

	optind = 2;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 's': src = (uint32_t)num(optarg); break;
		case 'n': count = num(optarg); break;
		case 'z': lo_sz = hi_sz = (uint32_t)num(optarg); break;
		case 'a': lo_sz = (uint32_t)num(optarg); break;
		case 'b': hi_sz = (uint32_t)num(optarg); break;
		case 'S': start = num(optarg); break;
		case 'r': rate = num(optarg); break;
		case 'p': prog = optarg; break;
		case 'm': maxms = num(optarg); break;
		default: return 2;
		}
	}
	if (optind >= argc || lo_sz < 16)
		return 2;
	o.flags = UHP_OPEN_CREATE;
	r = uhp_open_channel(argv[optind], &o, &ch);
	if (r < 0) {
		fprintf(stderr, "send: %s: %s\n", argv[optind], strerror(-r));
		return 1;
	}
	buf = malloc(hi_sz > lo_sz ? hi_sz : lo_sz);
	if (!buf) {
		uhp_close(ch);
		return 1;
	}
	t0 = now_ns();
	deadline = t0 + (int64_t)maxms * 1000000;
	for (uint64_t i = 0; i < count && !stop; i++) {
		uint64_t seq = start + i;
		uint32_t len = size_for(seq, lo_sz, hi_sz);
		struct uhp_meta m = { .seq = seq, .src = src, .dst = 0, .type = 7 };

		fill(buf, seq, src, len);
		while ((r = uhp_send(ch, buf, len, &m)) == -EAGAIN && !stop) {
			full++;
			r = uhp_send_wait(ch, buf, len, &m, 100);
			if (r != -ETIMEDOUT)
				break;
			if (now_ns() > deadline)
				break;
		}
		if (r) {
			if (stop)
				break;
			if (r == -ETIMEDOUT)
				fprintf(stderr, "send: gave up after %" PRIu64 " ms with %" PRIu64
					" of %" PRIu64 " records sent: nobody takes them\n",
					maxms, i, count);
			else
				fprintf(stderr, "send: %s\n", strerror(-r));
			free(buf);
			uhp_close(ch);
			return 1;
		}
		/* slow rates pace every record (each goes alone), fast ones
		 * every 64 */
		if (rate && (rate < 1000 || i % 64 == 63)) {
			int64_t due = t0 + (int64_t)((i + 1) * 1e9 / (double)rate);
			while (now_ns() < due)
				usleep(50);
		}
		if (prog && i % 10000 == 9999)
			progress(prog, i + 1);
	}
	progress(prog, count);
	printf("{\"sent\":%" PRIu64 ",\"src\":%u,\"full_waits\":%" PRIu64 ",\"secs\":%.3f}\n",
	       count, src, full, (now_ns() - t0) / 1e9);
	free(buf);
	uhp_close(ch);
	return 0;
}

static int do_recv(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "expect", 1, 0, 'n' }, { "sources", 1, 0, 'k' },
		{ "idle-ms", 1, 0, 'i' }, { "max-ms", 1, 0, 'm' },
		{ "pause-ms", 1, 0, 'P' }, { "linger-ms", 1, 0, 'l' },
		{ "start", 1, 0, 'S' }, { "progress", 1, 0, 'p' },
		{ "holes", 1, 0, 'H' }, { "lossy", 0, 0, 'L' },
		{ 0 }
	};
	struct uhp_open_opts o = UHP_OPEN_OPTS_INIT;
	struct uhp_channel *ch;
	int64_t want_holes = 0;
	bool lossy = false;
	struct { uint32_t src; uint64_t next, n; } srcs[MAX_SRCS];
	int nsrc = 0;
	uint64_t expect = 1000, ksrc = 1, idle = 10000, maxms = 600000, pause = 0,
		 linger = 500, start = 1;
	uint64_t got = 0, uniq = 0, dups = 0, gaps = 0, reorder = 0, bad = 0,
		 eagain_errs = 0;
	const char *prog = NULL;
	int64_t t0, last, done_at = 0, first = 0;
	static unsigned char buf[1 << 21];
	struct uhp_stats stt;
	int c, r;

	optind = 2;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'n': expect = num(optarg); break;
		case 'k': ksrc = num(optarg); break;
		case 'i': idle = num(optarg); break;
		case 'm': maxms = num(optarg); break;
		case 'P': pause = num(optarg); break;
		case 'l': linger = num(optarg); break;
		case 'S': start = num(optarg); break;
		case 'p': prog = optarg; break;
		case 'H': want_holes = (int64_t)num(optarg); break;
		case 'L': lossy = true; break;
		default: return 2;
		}
	}
	if (optind >= argc)
		return 2;
	o.flags = UHP_OPEN_CREATE | UHP_OPEN_CONSUMER;
	r = uhp_open_channel(argv[optind], &o, &ch);
	if (r < 0) {
		fprintf(stderr, "recv: %s: %s\n", argv[optind], strerror(-r));
		return 1;
	}
	if (pause)
		usleep((useconds_t)pause * 1000);
	t0 = last = now_ns();
	while (!stop) {
		struct uhp_meta m;
		ssize_t n = uhp_recv_wait(ch, buf, sizeof(buf), &m, 50);
		int64_t now = now_ns();
		int k;

		if (n == -ETIMEDOUT || n == -EAGAIN) {
			if (done_at && now - done_at > (int64_t)linger * 1000000)
				break;
			if (now - last > (int64_t)idle * 1000000)
				break;
			if (now - t0 > (int64_t)maxms * 1000000)
				break;
			continue;
		}
		if (n == -EBADMSG) {
			bad++;
			continue;
		}
		if (n < 0) {
			eagain_errs++;
			fprintf(stderr, "recv: %s\n", strerror((int)-n));
			break;
		}
		last = now;
		if (!first)
			first = now;
		got++;
		if (!check(buf, (uint32_t)n, &m)) {
			bad++;
			continue;
		}
		for (k = 0; k < nsrc && srcs[k].src != m.src; k++)
			;
		if (k == nsrc) {
			if (nsrc == MAX_SRCS) {
				bad++;
				continue;
			}
			srcs[nsrc].src = m.src;
			srcs[nsrc].next = start;
			srcs[nsrc].n = 0;
			nsrc++;
		}
		if (m.seq == srcs[k].next) {
			srcs[k].next++;
			srcs[k].n++;
			uniq++;
		} else if (m.seq < srcs[k].next) {
			dups++;
		} else {
			/* a hole: counted; order is broken only if it fills later */
			gaps += m.seq - srcs[k].next;
			srcs[k].next = m.seq + 1;
			srcs[k].n++;
			uniq++;
			reorder++;
		}
		if (prog && got % 10000 == 0)
			progress(prog, uniq);
		if (uniq == expect && !done_at)
			done_at = now;
	}
	progress(prog, uniq);
	uhp_stats(ch, &stt);
	printf("{\"received\":%" PRIu64 ",\"unique\":%" PRIu64 ",\"expected\":%" PRIu64
	       ",\"sources\":%d,\"dups\":%" PRIu64 ",\"missing\":%" PRIu64
	       ",\"holes\":%" PRIu64 ",\"bad_payload\":%" PRIu64 ",\"crc_errors\":%" PRIu64
	       ",\"secs\":%.3f,\"rate\":%.0f}\n",
	       got, uniq, expect, nsrc, dups, expect > uniq ? expect - uniq : 0, gaps,
	       bad, stt.crc_errors, first ? (last - first) / 1e9 : 0.0,
	       first && last > first ? uniq / ((last - first) / 1e9) : 0.0);
	uhp_close(ch);
	if (lossy)	/* only what arrived must be right */
		return (dups == 0 && bad == 0 && stt.crc_errors == 0 && !eagain_errs) ? 0 : 1;
	return (uniq == expect && dups == 0 && (int64_t)gaps == want_holes && bad == 0 &&
		stt.crc_errors == 0 && (uint64_t)nsrc == ksrc && !eagain_errs) ? 0 : 1;
}

static uint32_t rec_crc(uint32_t len, uint16_t type, uint16_t flags, uint32_t src,
			uint32_t dst, uint64_t seq, const void *p)
{
	unsigned char h[24];

	memcpy(h, &len, 4);
	memcpy(h + 4, &type, 2);
	memcpy(h + 6, &flags, 2);
	memcpy(h + 8, &src, 4);
	memcpy(h + 12, &dst, 4);
	memcpy(h + 16, &seq, 8);
	return ~uhp_crc32c(uhp_crc32c(~0U, h, 24), p, len);
}

static int do_rogue(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "count", 1, 0, 'n' }, { "kind", 1, 0, 'k' }, { 0 }
	};
	const char *kind = "badcrc";
	uint64_t count = 1;
	natsConnection *nc = NULL;
	unsigned char buf[64];
	int c;

	optind = 2;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'n': count = num(optarg); break;
		case 'k': kind = optarg; break;
		default: return 2;
		}
	}
	if (optind + 2 > argc)
		return 2;
	if (natsConnection_ConnectTo(&nc, argv[optind]) != NATS_OK) {
		fprintf(stderr, "rogue: connect: %s\n", nats_GetLastError(NULL));
		return 1;
	}
	for (uint64_t i = 1; i <= count; i++) {
		natsMsg *m = NULL;
		char v[32];
		uint32_t crc;

		fill(buf, i, 999, sizeof(buf));
		crc = rec_crc(sizeof(buf), 7, 0, 999, 0, i, buf);
		if (!strcmp(kind, "badcrc"))
			crc ^= 0x00010000;
		natsMsg_Create(&m, argv[optind + 1], NULL, (const char *)buf, sizeof(buf));
		natsMsgHeader_Set(m, "Uhp-Src", "999");
		natsMsgHeader_Set(m, "Uhp-Type", "7");
		snprintf(v, sizeof(v), "%" PRIu64, i);
		natsMsgHeader_Set(m, "Uhp-Seq", v);
		if (strcmp(kind, "nocrc")) {
			snprintf(v, sizeof(v), "%08x", crc);
			natsMsgHeader_Set(m, "Uhp-Crc", v);
		}
		natsConnection_PublishMsg(nc, m);
		natsMsg_Destroy(m);
	}
	natsConnection_FlushTimeout(nc, 5000);
	natsConnection_Destroy(nc);
	printf("{\"rogue\":\"%s\",\"published\":%" PRIu64 "}\n", kind, count);
	return 0;
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_sig };

	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 2)
		goto usage;
	if (!strcmp(argv[1], "send"))
		return do_send(argc, argv);
	if (!strcmp(argv[1], "recv"))
		return do_recv(argc, argv);
	if (!strcmp(argv[1], "rogue"))
		return do_rogue(argc, argv);
usage:
	fprintf(stderr, "usage: bridge_agent send|recv|rogue ... (see the source)\n");
	return 2;
}
