/* SPDX-License-Identifier: MIT */
/*
 * bench_bridge: uhp channels bridged over NATS against NATS itself, through
 * the same cluster, same sizes, interleaved rounds (bench/bridge/run.sh starts
 * the cluster and the two bridges).
 *
 * Peers (each one way, host A to host B):
 *   nats_core    nats.c publisher (server 0) -> nats.c subscriber (server 1)
 *   bridge_core  agent -> outbox -> uhp-bridge A -> core NATS -> uhp-bridge B
 *                -> channel -> agent
 *   nats_js      nats.c async JetStream publisher -> stream (R3, file, work
 *                queue, like the bridge's) -> push consumer, explicit acks
 *   bridge_js    agent -> outbox -> uhp-bridge A -> JetStream -> uhp-bridge B
 *                -> channel -> agent
 *
 * Placement: a JetStream peer's hops depend on where its stream's and its
 * consumer's leaders sit (a stream led by the third server adds a route hop
 * each way). With --leaders S/C (run.sh: the publishers' server / the
 * subscribers' server) both peers' stream and consumer leaders are moved
 * there (leader stepdowns until they land) before each JetStream
 * measurement; the JSON lines say where they were.
 *
 * Throughput: N messages as fast as the sender goes; msgs/s from the first
 * send to the last receipt. Latency: M messages at a fixed rate, each
 * carrying its send time (CLOCK_MONOTONIC); one-way p50/p90/p99 in us.
 * One JSON line per measurement, then a table of medians over rounds and
 * the bridge/NATS ratios.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nats/nats.h>

#include "uhp.h"

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void spin_until(int64_t t)
{
	while (now_ns() < t) {
		int64_t d = t - now_ns();
		if (d > 200000) {
			struct timespec ts = { 0, d - 100000 };
			nanosleep(&ts, NULL);
		}
	}
}

static const char *url0, *url1, *run_id, *ob_core, *ib_core, *ob_js, *ib_js;
static FILE *jsonl, *latdump;

/* ---- what a receiver collects ---- */
struct rx {
	_Atomic uint64_t n;
	_Atomic int64_t last_ns;
	uint64_t want;
	int64_t *lat;		/* latency mode: one-way ns per message */
	int64_t *sent;		/* and its send stamp (BENCH_LATDUMP) */
	uint64_t lat_cap;
};

static void rx_one(struct rx *r, const void *data, int len)
{
	uint64_t i = atomic_fetch_add(&r->n, 1);
	int64_t now = now_ns();

	if (r->lat && i < r->lat_cap && len >= 8) {
		int64_t t;
		memcpy(&t, data, 8);
		r->lat[i] = now - t;
		if (r->sent)
			r->sent[i] = t;
	}
	atomic_store(&r->last_ns, now);
}

static bool rx_wait(struct rx *r, int64_t timeout_ms)
{
	int64_t dl = now_ns() + timeout_ms * 1000000LL;

	while (atomic_load(&r->n) < r->want) {
		if (now_ns() > dl)
			return false;
		usleep(200);
	}
	return true;
}

/* ---- NATS peers ---- */

static natsConnection *connect_to(const char *url, bool asap)
{
	natsOptions *o = NULL;
	natsConnection *nc = NULL;

	natsOptions_Create(&o);
	natsOptions_SetURL(o, url);
	natsOptions_SetSendAsap(o, asap);
	natsOptions_SetMaxPendingMsgs(o, 1 << 20);	/* nats.c: bytes = msgs * 1024 must fit an int */
	natsOptions_SetIOBufSize(o, 256 * 1024);
	if (natsConnection_Connect(&nc, o) != NATS_OK) {
		fprintf(stderr, "connect %s: %s\n", url, nats_GetLastError(NULL));
		exit(1);
	}
	natsOptions_Destroy(o);
	return nc;
}

static void on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *cl)
{
	(void)nc;
	(void)sub;
	rx_one(cl, natsMsg_GetData(m), natsMsg_GetDataLength(m));
	natsMsg_Destroy(m);
}

static void on_js_msg(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *cl)
{
	(void)nc;
	(void)sub;
	rx_one(cl, natsMsg_GetData(m), natsMsg_GetDataLength(m));
	natsMsg_Ack(m, NULL);
	natsMsg_Destroy(m);
}

static natsConnection *nc_pub, *nc_sub, *nc_pub_asap;
static jsCtx *js_pub, *js_sub, *js_pub_asap;
static char js_stream[64], js_subj[128], core_subj[128];
/* where a JetStream peer's hops went: "stream leader/consumer leader" */
static char nats_js_leaders[64];

static void js_leaders(const char *stream, const char *consumer, char *out, size_t n)
{
	jsStreamInfo *si = NULL;
	jsConsumerInfo *ci = NULL;
	const char *sl = "?", *cl = "?";

	if (js_GetStreamInfo(&si, js_sub, stream, NULL, NULL) == NATS_OK && si &&
	    si->Cluster && si->Cluster->Leader)
		sl = si->Cluster->Leader;
	if (js_GetConsumerInfo(&ci, js_sub, stream, consumer, NULL, NULL) == NATS_OK && ci &&
	    ci->Cluster && ci->Cluster->Leader)
		cl = ci->Cluster->Leader;
	snprintf(out, n, "%s/%s", sl, cl);
	if (si)
		jsStreamInfo_Destroy(si);
	if (ci)
		jsConsumerInfo_Destroy(ci);
}

static const char *want_sl, *want_cl;	/* --leaders S/C */
/* --agent-spin N: the receiving uhp agent spins N checks before it sleeps
 * (uhp_set_spin()); 0: libuhp's default */
static unsigned agent_spin;

/* Step the stream's, then the consumer's, leader down until they sit on
 * want_sl and want_cl (a new leader is one of the other replicas). */
static void js_place(const char *stream, const char *consumer)
{
	char cur[64], subj[256];

	if (!want_sl)
		return;
	for (int i = 0; i < 30; i++) {
		char *slash;
		natsMsg *resp = NULL;

		js_leaders(stream, consumer, cur, sizeof(cur));
		slash = strchr(cur, '/');
		if (!slash)
			break;
		*slash = 0;
		if (strcmp(cur, want_sl))
			snprintf(subj, sizeof(subj), "$JS.API.STREAM.LEADER.STEPDOWN.%s", stream);
		else if (strcmp(slash + 1, want_cl))
			snprintf(subj, sizeof(subj), "$JS.API.CONSUMER.LEADER.STEPDOWN.%s.%s",
				 stream, consumer);
		else
			return;
		if (natsConnection_RequestString(&resp, nc_sub, subj, "", 5000) == NATS_OK)
			natsMsg_Destroy(resp);
		usleep(1500000);	/* the election */
	}
	js_leaders(stream, consumer, cur, sizeof(cur));
	fprintf(stderr, "bench_bridge: %s/%s: leaders %s, not %s/%s\n", stream, consumer, cur,
		want_sl, want_cl);
}

static void setup_nats(void)
{
	jsOptions jo;
	jsStreamConfig sc;
	jsErrCode jerr = 0;
	const char *subs[1];

	/* NATS at its best: buffered publishes for throughput, SendAsap (a
	 * write per publish) for latency */
	nc_pub = connect_to(url0, false);
	nc_pub_asap = connect_to(url0, true);
	nc_sub = connect_to(url1, false);
	snprintf(core_subj, sizeof(core_subj), "bench.core.%s", run_id);
	snprintf(js_subj, sizeof(js_subj), "bench.js.%s", run_id);
	snprintf(js_stream, sizeof(js_stream), "BENCH_%s", run_id);
	jsOptions_Init(&jo);
	jo.PublishAsync.MaxPending = 4096;
	if (natsConnection_JetStream(&js_pub, nc_pub, &jo) != NATS_OK ||
	    natsConnection_JetStream(&js_pub_asap, nc_pub_asap, &jo) != NATS_OK ||
	    natsConnection_JetStream(&js_sub, nc_sub, NULL) != NATS_OK) {
		fprintf(stderr, "jetstream: %s\n", nats_GetLastError(NULL));
		exit(1);
	}
	jsStreamConfig_Init(&sc);
	subs[0] = js_subj;
	sc.Name = js_stream;
	sc.Subjects = subs;
	sc.SubjectsLen = 1;
	sc.Retention = js_WorkQueuePolicy;
	sc.Discard = js_DiscardNew;
	sc.Storage = js_FileStorage;
	sc.Replicas = 3;
	sc.MaxBytes = 1LL << 30;
	natsStatus st;
	jsStreamInfo *si = NULL;
	if ((st = js_AddStream(&si, js_pub, &sc, NULL, &jerr)) != NATS_OK) {
		fprintf(stderr, "stream: %s: %s (%d)\n", natsStatus_GetText(st), nats_GetLastError(NULL), (int)jerr);
		exit(1);
	}
}

/* rate 0: as fast as possible; lat: stamp the send time */
static void fill_stamp(char *buf, int len)
{
	int64_t t = now_ns();

	memcpy(buf, &t, len >= 8 ? 8 : (size_t)len);
}

static double run_nats_core(int size, uint64_t n, int rate, struct rx *r)
{
	natsSubscription *sub = NULL;
	char *buf = calloc(1, (size_t)size);
	int64_t t0, gap = rate ? 1000000000LL / rate : 0, next;

	natsConnection_Subscribe(&sub, nc_sub, core_subj, on_msg, r);
	natsSubscription_SetPendingLimits(sub, -1, -1);
	natsConnection_Flush(nc_sub);
	usleep(100000);	/* let the interest reach the other server */
	t0 = next = now_ns();
	for (uint64_t i = 0; i < n; i++) {
		if (gap) {
			spin_until(next);
			next += gap;
		}
		fill_stamp(buf, size);
		while (natsConnection_Publish(gap ? nc_pub_asap : nc_pub, core_subj, buf, size) != NATS_OK)
			usleep(100);
	}
	natsConnection_Flush(gap ? nc_pub_asap : nc_pub);
	if (!rx_wait(r, 60000))
		fprintf(stderr, "nats_core: %" PRIu64 " of %" PRIu64 " arrived\n",
			atomic_load(&r->n), n);
	natsSubscription_Unsubscribe(sub);
	natsSubscription_Destroy(sub);
	free(buf);
	return (atomic_load(&r->last_ns) - t0) / 1e9;
}

static double run_nats_js(int size, uint64_t n, int rate, struct rx *r)
{
	natsSubscription *sub = NULL;
	jsSubOptions so;
	jsErrCode jerr = 0;
	char *buf = calloc(1, (size_t)size), dur[64];
	int64_t t0, gap = rate ? 1000000000LL / rate : 0, next;
	static int k;

	js_PurgeStream(js_sub, js_stream, NULL, NULL);	/* leftovers of the last run */
	jsSubOptions_Init(&so);
	snprintf(dur, sizeof(dur), "b%d", ++k);
	so.Stream = js_stream;
	so.Config.Durable = dur;
	so.Config.AckPolicy = js_AckExplicit;
	so.Config.MaxAckPending = 65536;
	so.ManualAck = true;
	if (js_Subscribe(&sub, js_sub, js_subj, on_js_msg, r, NULL, &so, &jerr) != NATS_OK) {
		fprintf(stderr, "js_Subscribe: %s (%d)\n", nats_GetLastError(NULL), (int)jerr);
		exit(1);
	}
	natsSubscription_SetPendingLimits(sub, -1, -1);
	js_place(js_stream, dur);
	js_leaders(js_stream, dur, nats_js_leaders, sizeof(nats_js_leaders));
	usleep(100000);
	t0 = next = now_ns();
	for (uint64_t i = 0; i < n; i++) {
		if (gap) {
			spin_until(next);
			next += gap;
		}
		fill_stamp(buf, size);
		while (js_PublishAsync(gap ? js_pub_asap : js_pub, js_subj, buf, size, NULL) != NATS_OK)
			usleep(100);
	}
	js_PublishAsyncComplete(gap ? js_pub_asap : js_pub, NULL);
	if (!rx_wait(r, 120000))
		fprintf(stderr, "nats_js: %" PRIu64 " of %" PRIu64 " arrived\n",
			atomic_load(&r->n), n);
	natsSubscription_Unsubscribe(sub);
	natsSubscription_Destroy(sub);
	js_DeleteConsumer(js_sub, js_stream, dur, NULL, NULL);
	free(buf);
	return (atomic_load(&r->last_ns) - t0) / 1e9;
}

/* ---- bridged peers ---- */

struct brx {
	struct uhp_channel *ch;
	struct rx *r;
};

static void *bridge_rx_thread(void *arg)
{
	struct brx *b = arg;
	static char buf[1 << 20];

	while (atomic_load(&b->r->n) < b->r->want) {
		ssize_t n = uhp_recv_wait(b->ch, buf, sizeof(buf), NULL, 100);

		if (n >= 0)
			rx_one(b->r, buf, (int)n);
		else if (n != -ETIMEDOUT && n != -EAGAIN && n != -EBADMSG)
			break;
	}
	return NULL;
}

static struct uhp_channel *open_ch(const char *name, bool consumer)
{
	struct uhp_open_opts o = UHP_OPEN_OPTS_INIT;
	struct uhp_channel *ch;
	int r;

	o.flags = UHP_OPEN_CREATE | (consumer ? UHP_OPEN_CONSUMER : 0);
	r = uhp_open_channel(name, &o, &ch);
	if (r < 0) {
		fprintf(stderr, "%s: %s\n", name, strerror(-r));
		exit(1);
	}
	return ch;
}

static double run_bridge(const char *ob, const char *ib, int size, uint64_t n,
			 int rate, struct rx *r)
{
	struct uhp_channel *out = open_ch(ob, false), *in = open_ch(ib, true);
	struct brx b = { in, r };

	if (agent_spin)
		uhp_set_spin(in, agent_spin);
	pthread_t th;
	char *buf = calloc(1, (size_t)size);
	int64_t t0, gap = rate ? 1000000000LL / rate : 0, next;

	/* drain leftovers of an earlier, interrupted round */
	while (uhp_recv(in, buf, 0, NULL) != -EAGAIN) {
		static char big[1 << 20];
		if (uhp_recv(in, big, sizeof(big), NULL) == -EAGAIN)
			break;
	}
	pthread_create(&th, NULL, bridge_rx_thread, &b);
	t0 = next = now_ns();
	for (uint64_t i = 0; i < n; i++) {
		struct uhp_meta m = { .seq = i + 1, .src = 1, .type = 1 };

		if (gap) {
			spin_until(next);
			next += gap;
		}
		fill_stamp(buf, size);
		if (uhp_send(out, buf, (uint32_t)size, &m) == -EAGAIN)
			while (uhp_send_wait(out, buf, (uint32_t)size, &m, 100) == -ETIMEDOUT)
				;
	}
	if (!rx_wait(r, 180000))
		fprintf(stderr, "%s: %" PRIu64 " of %" PRIu64 " arrived\n", ob,
			atomic_load(&r->n), n);
	r->want = 0;
	pthread_join(th, NULL);
	uhp_close(out);
	uhp_close(in);
	free(buf);
	return (atomic_load(&r->last_ns) - t0) / 1e9;
}

/* ---- driver ---- */

enum peer { P_NATS_CORE, P_BRIDGE_CORE, P_NATS_JS, P_BRIDGE_JS, NPEERS };
static const char *pname[NPEERS] = { "nats_core", "bridge_core", "nats_js", "bridge_js" };

#define MAXR 32
#define MAXS 4
static double thr[NPEERS][MAXS][MAXR], p50[NPEERS][MAXS][MAXR], p90[NPEERS][MAXS][MAXR],
	p99[NPEERS][MAXS][MAXR];

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double median(const double *v, int n)
{
	double t[MAXR];

	memcpy(t, v, sizeof(double) * (size_t)n);
	qsort(t, (size_t)n, sizeof(double), cmp_d);
	return n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
}

/* The receiving bridge's stream: UHP_<host>_<channel>, dots as _. */
static const char *bridge_stream(void)
{
	static char bs[128];

	snprintf(bs, sizeof(bs), "UHP_B_%s", ib_js);
	for (char *c = bs; *c; c++)
		if (*c == '.')
			*c = '_';
	return bs;
}

static double measure(enum peer p, int size, uint64_t n, int rate, struct rx *r)
{
	switch (p) {
	case P_NATS_CORE: return run_nats_core(size, n, rate, r);
	case P_BRIDGE_CORE: return run_bridge(ob_core, ib_core, size, n, rate, r);
	case P_NATS_JS: return run_nats_js(size, n, rate, r);
	default: return run_bridge(ob_js, ib_js, size, n, rate, r);
	}
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "nats0", 1, 0, 'a' }, { "nats1", 1, 0, 'b' }, { "run", 1, 0, 'R' },
		{ "outbox-core", 1, 0, 'o' }, { "inbox-core", 1, 0, 'i' },
		{ "outbox-js", 1, 0, 'O' }, { "inbox-js", 1, 0, 'I' },
		{ "rounds", 1, 0, 'r' }, { "count-core", 1, 0, 'c' },
		{ "count-js", 1, 0, 'j' }, { "lat-count", 1, 0, 'l' },
		{ "lat-rate", 1, 0, 'L' }, { "json", 1, 0, 'J' }, { "leaders", 1, 0, 'P' },
		{ "agent-spin", 1, 0, 'S' }, { 0 }
	};
	int rounds = 3, sizes[] = { 64, 1024 }, nsz = 2, lat_rate = 1000, c;
	uint64_t n_core = 200000, n_js = 50000, n_lat = 2000;

	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'a': url0 = optarg; break;
		case 'b': url1 = optarg; break;
		case 'R': run_id = optarg; break;
		case 'o': ob_core = optarg; break;
		case 'i': ib_core = optarg; break;
		case 'O': ob_js = optarg; break;
		case 'I': ib_js = optarg; break;
		case 'r': rounds = atoi(optarg); break;
		case 'c': n_core = strtoull(optarg, NULL, 0); break;
		case 'j': n_js = strtoull(optarg, NULL, 0); break;
		case 'l': n_lat = strtoull(optarg, NULL, 0); break;
		case 'L': lat_rate = atoi(optarg); break;
		case 'J': jsonl = fopen(optarg, "a"); break;
		case 'S': agent_spin = (unsigned)strtoul(optarg, NULL, 0); break;
		case 'P': {
			char *slash = strchr(optarg, '/');

			if (!slash)
				return 2;
			*slash = 0;
			want_sl = optarg;
			want_cl = slash + 1;
			break;
		}
		default: return 2;
		}
	}
	if (!url0 || !url1 || !run_id || !ob_core || !ib_core || !ob_js || !ib_js ||
	    rounds < 1 || rounds > MAXR) {
		fprintf(stderr, "bench_bridge: see bench/bridge/run.sh for the arguments\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	/* every latency sample, "peer size sent_ns one_way_ns" (with the
	 * bridge's LATTRACE build: where the time goes) */
	if (getenv("BENCH_LATDUMP"))
		latdump = fopen(getenv("BENCH_LATDUMP"), "w");
	setup_nats();

	for (int rd = 0; rd < rounds; rd++) {
		for (int si = 0; si < nsz; si++) {
			for (int k = 0; k < NPEERS; k++) {
				/* interleave: rotate the order every round */
				enum peer p = (enum peer)((k + rd) % NPEERS);
				bool jsm = p == P_NATS_JS || p == P_BRIDGE_JS;
				uint64_t n = jsm ? n_js : n_core;
				struct rx r = { .want = n };
				struct rx l = { .want = n_lat };
				double secs;
				int64_t *lat = calloc(n_lat, sizeof(int64_t));
				int64_t *sent = latdump ? calloc(n_lat, sizeof(int64_t)) : NULL;
				char line[640], leaders[80] = "";

				if (p == P_BRIDGE_JS)
					js_place(bridge_stream(), "uhp-bridge");
				secs = measure(p, sizes[si], n, 0, &r);
				thr[p][si][rd] = atomic_load(&r.n) == n ? n / secs : 0;
				l.lat = lat;
				l.lat_cap = n_lat;
				l.sent = sent;
				usleep(300000);
				measure(p, sizes[si], n_lat, lat_rate, &l);
				{
					uint64_t got = atomic_load(&l.n) < n_lat ? atomic_load(&l.n) : n_lat;

					for (uint64_t i = 0; latdump && i < got; i++)
						fprintf(latdump, "%s %d %" PRId64 " %" PRId64 "\n", pname[p],
							sizes[si], sent[i], lat[i]);
					qsort(lat, got, sizeof(int64_t), cmp_i64);
					p50[p][si][rd] = got ? lat[got / 2] / 1e3 : 0;
					p90[p][si][rd] = got ? lat[got * 9 / 10] / 1e3 : 0;
					p99[p][si][rd] = got ? lat[got * 99 / 100] / 1e3 : 0;
					if (p == P_NATS_JS) {
						snprintf(leaders, sizeof(leaders), ",\"leaders\":\"%s\"",
							 nats_js_leaders);
					} else if (p == P_BRIDGE_JS) {
						char l2[64];

						js_leaders(bridge_stream(), "uhp-bridge", l2, sizeof(l2));
						snprintf(leaders, sizeof(leaders), ",\"leaders\":\"%s\"", l2);
					}
					snprintf(line, sizeof(line),
						 "{\"bench\":\"bridge\",\"peer\":\"%s\",\"round\":%d,\"size\":%d,"
						 "\"msgs\":%" PRIu64 ",\"received\":%" PRIu64 ",\"secs\":%.4f,"
						 "\"msgs_per_s\":%.0f,\"lat_msgs\":%" PRIu64 ",\"lat_rate\":%d,"
						 "\"lat_p50_us\":%.1f,\"lat_p90_us\":%.1f,\"lat_p99_us\":%.1f%s}\n",
						 pname[p], rd, sizes[si], n, atomic_load(&r.n), secs,
						 thr[p][si][rd], got, lat_rate, p50[p][si][rd],
						 p90[p][si][rd], p99[p][si][rd], leaders);
				}
				fputs(line, stdout);
				if (jsonl) {
					fputs(line, jsonl);
					fflush(jsonl);
				}
				free(lat);
				free(sent);
				usleep(300000);
			}
		}
	}

	printf("\nmedians over %d interleaved rounds (throughput: %" PRIu64 " core / %" PRIu64
	       " jetstream msgs; latency: %" PRIu64 " msgs at %d/s, one way)\n\n",
	       rounds, n_core, n_js, n_lat, lat_rate);
	printf("| size | mode | NATS msgs/s | bridged msgs/s | ratio | NATS p50 us | bridged p50 us | ratio "
	       "| NATS p90 us | bridged p90 us | ratio | NATS p99 us | bridged p99 us | ratio |\n");
	printf("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
	for (int si = 0; si < nsz; si++) {
		for (int m = 0; m < 2; m++) {
			enum peer np = m ? P_NATS_JS : P_NATS_CORE, bp = m ? P_BRIDGE_JS : P_BRIDGE_CORE;
			double tn = median(thr[np][si], rounds), tb = median(thr[bp][si], rounds);
			double ln = median(p50[np][si], rounds), lb = median(p50[bp][si], rounds);
			double n90 = median(p90[np][si], rounds), b90 = median(p90[bp][si], rounds);
			double n99 = median(p99[np][si], rounds), b99 = median(p99[bp][si], rounds);
			char line[640];

			printf("| %d | %s | %.0f | %.0f | %.2f | %.0f | %.0f | %.2f | %.0f | %.0f | %.2f "
			       "| %.0f | %.0f | %.2f |\n",
			       sizes[si], m ? "jetstream" : "core", tn, tb, tn ? tb / tn : 0, ln, lb,
			       ln ? lb / ln : 0, n90, b90, n90 ? b90 / n90 : 0, n99, b99,
			       n99 ? b99 / n99 : 0);
			snprintf(line, sizeof(line),
				 "{\"bench\":\"bridge\",\"summary\":true,\"mode\":\"%s\",\"size\":%d,"
				 "\"rounds\":%d,\"nats_msgs_per_s\":%.0f,\"bridge_msgs_per_s\":%.0f,"
				 "\"throughput_ratio\":%.3f,\"nats_p50_us\":%.1f,\"bridge_p50_us\":%.1f,"
				 "\"p50_ratio\":%.3f,\"nats_p90_us\":%.1f,\"bridge_p90_us\":%.1f,"
				 "\"nats_p99_us\":%.1f,\"bridge_p99_us\":%.1f}\n",
				 m ? "jetstream" : "core", sizes[si], rounds,
				 tn, tb, tn ? tb / tn : 0, ln, lb, ln ? lb / ln : 0, n90, b90, n99, b99);
			if (jsonl)
				fputs(line, jsonl);
		}
	}
	if (jsonl)
		fclose(jsonl);
	if (latdump)
		fclose(latdump);
	js_DeleteStream(js_pub, js_stream, NULL, NULL);
	jsCtx_Destroy(js_pub);
	jsCtx_Destroy(js_pub_asap);
	jsCtx_Destroy(js_sub);
	natsConnection_Destroy(nc_pub_asap);
	natsConnection_Destroy(nc_pub);
	natsConnection_Destroy(nc_sub);
	return 0;
}
