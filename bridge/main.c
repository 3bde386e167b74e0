/* SPDX-License-Identifier: MIT */
/*
 * uhp-bridge: carries uhp channels across hosts on a NATS cluster.
 *
 * The design is written down in bridge/DESIGN.md; in brief:
 *
 *  - One daemon per host, configured by a small file (bridge/uhp-bridge.conf.5.md).
 *  - Outbound ("route"): a local outbox channel, consumed by the bridge, is
 *    forwarded to the subject of a remote channel:
 *        <prefix>.core.<host>.<channel>    core NATS
 *        <prefix>.js.<host>.<channel>      JetStream (stream UHP_<host>_<chan>)
 *  - Inbound ("export"): messages on the subject of an exported channel are
 *    committed into it by the bridge as a local producer.
 *  - Every message carries the record's meta and its sealed CRC32C in NATS
 *    headers (Uhp-Src, Uhp-Dst, Uhp-Type, Uhp-Seq, Uhp-Crc, Uhp-Flags) and
 *    its identity in Uhp-Link: <host>/<outbox>/<instance>/<lseq>, lseq
 *    counting 1, 2, 3... per outbox instance (gaps are detectable). The
 *    receiving bridge recomputes the CRC over the payload it copied into the
 *    ring and refuses a mismatch.
 *  - Records waiting together in an outbox go as one NATS message
 *    (Uhp-Batch: N, framed payload): natural batching, never waiting.
 *  - JetStream mode: the outbox's records are moved into a spool file
 *    (state_dir/out.<outbox>.spool) before they are released from the ring,
 *    published with Nats-Msg-Id = Uhp-Link and dropped from the spool only
 *    after the PubAck; the receiver pulls from a durable consumer only when
 *    its ring has room, commits, records the per-source high-water mark in
 *    state_dir/in.<channel>.state, then acks. Duplicates (redeliveries,
 *    republished records) are recognised by the mark; records that arrive
 *    ahead of a missing one are held (state_dir/hold.<channel>/) and acked,
 *    and committed once it arrives, so the order per producer holds.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <nats/nats.h>

#include "cpu_relax.h"
#include "uhp.h"

/* the bridge is versioned with the project (./VERSION, via uhp_version.h) */
#define BRIDGE_STR_(x) #x
#define BRIDGE_STR(x) BRIDGE_STR_(x)
#define BRIDGE_VERSION BRIDGE_STR(UHP_VERSION_MAJOR) "." BRIDGE_STR(UHP_VERSION_MINOR) "." \
	BRIDGE_STR(UHP_VERSION_PATCH)

/* ------------------------------------------------------------------ */
/* small helpers                                                       */
/* ------------------------------------------------------------------ */

static volatile sig_atomic_t g_stop;
static volatile sig_atomic_t g_failed;	/* stopping because of an error: exit 1 */
static atomic_bool g_connected;		/* both NATS connections were up */
static int g_verbose;
static const char *g_host = "?";

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

#ifdef UHP_BRIDGE_LATTRACE
/*
 * Latency trace, for bench/bridge only (make -C bridge LATTRACE=1): the
 * first 8 payload bytes of a record are taken as its sender's
 * CLOCK_MONOTONIC stamp (bench_bridge puts it there), and each stage a
 * record passes is noted with that stamp and the time, then written to
 * $UHP_BRIDGE_LATTRACE ("stage sent_ns at_ns" lines) at exit.
 */
enum { LT_A_PEEK = 1, LT_A_PUB, LT_B_IN, LT_B_COMMIT, LT_A_PREPUB };
struct lt_ent {
	int64_t sent, at;
	int stage;
};
#define LT_CAP (1u << 21)
static struct lt_ent *g_lt;
static _Atomic uint64_t g_lt_n;

static void lt_mark(int stage, const void *payload, uint32_t len)
{
	int64_t sent, at = now_ns();
	uint64_t i;

	if (!g_lt || len < 8)
		return;
	memcpy(&sent, payload, 8);
	if (sent <= 0 || sent > at || at - sent > 10000000000LL)
		return;		/* not a stamp */
	i = atomic_fetch_add(&g_lt_n, 1);
	if (i < LT_CAP)
		g_lt[i] = (struct lt_ent){ sent, at, stage };
}

static void lt_open(void)
{
	if (getenv("UHP_BRIDGE_LATTRACE"))
		g_lt = calloc(LT_CAP, sizeof(*g_lt));
}

static void lt_dump(void)
{
	const char *path = getenv("UHP_BRIDGE_LATTRACE");
	uint64_t n = atomic_load(&g_lt_n);
	FILE *f;

	if (!g_lt || !path || !(f = fopen(path, "w")))
		return;
	for (uint64_t i = 0; i < n && i < LT_CAP; i++)
		fprintf(f, "%d %" PRId64 " %" PRId64 "\n", g_lt[i].stage, g_lt[i].sent, g_lt[i].at);
	fclose(f);
	free(g_lt);
	g_lt = NULL;
}
#else
#define lt_mark(stage, payload, len) ((void)0)
#define lt_open() ((void)0)
#define lt_dump() ((void)0)
#endif

static void logmsg(const char *lvl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void logmsg(const char *lvl, const char *fmt, ...)
{
	char buf[1024];
	struct timespec ts;
	struct tm tm;
	va_list ap;
	int n;

	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	n = snprintf(buf, sizeof(buf), "%02d:%02d:%02d.%03ld uhp-bridge[%s] %s: ",
		     tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
		     g_host, lvl);
	va_start(ap, fmt);
	vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	strcat(buf, "\n");
	fputs(buf, stderr);
}

#define LOG_ERR(...)	logmsg("error", __VA_ARGS__)
#define LOG_WARN(...)	logmsg("warning", __VA_ARGS__)
#define LOG_INFO(...)	logmsg("info", __VA_ARGS__)
#define LOG_DBG(...)	do { if (g_verbose) logmsg("debug", __VA_ARGS__); } while (0)

/* A log line at most every second per call site (counts stay exact). */
#define LOG_RATE(lvl, ...) do {						\
	static _Atomic int64_t last_;					\
	int64_t t_ = now_ns(), l_ = atomic_load(&last_);		\
	if (t_ - l_ > 1000000000LL &&					\
	    atomic_compare_exchange_strong(&last_, &l_, t_))		\
		logmsg(lvl, __VA_ARGS__);				\
} while (0)

#define CNT_ADD(c, n)	atomic_fetch_add_explicit(&(c), (n), memory_order_relaxed)
#define CNT_INC(c)	CNT_ADD(c, 1)
#define CNT_GET(c)	atomic_load_explicit(&(c), memory_order_relaxed)

static uint64_t rand64(void)
{
	uint64_t v = 0;

	while (getrandom(&v, sizeof(v), 0) != sizeof(v))
		;
	return v ? v : 1;
}

static void sleep_us(long us)
{
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };

	nanosleep(&ts, NULL);
}

static bool valid_host(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 32)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-')
			return false;
	return true;
}

static bool valid_chan(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= UHP_NAME_MAX || s[0] == '.' || s[n - 1] == '.')
		return false;
	for (const char *p = s; *p; p++) {
		if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-' &&
		    *p != '.')
			return false;
		if (p[0] == '.' && p[1] == '.')	/* empty NATS token */
			return false;
	}
	return true;
}

static void put_le16(unsigned char *p, uint16_t v) { p[0] = v; p[1] = v >> 8; }
static void put_le32(unsigned char *p, uint32_t v)
{
	put_le16(p, (uint16_t)v);
	put_le16(p + 2, (uint16_t)(v >> 16));
}
static void put_le64(unsigned char *p, uint64_t v)
{
	put_le32(p, (uint32_t)v);
	put_le32(p + 4, (uint32_t)(v >> 32));
}

/*
 * The record's CRC exactly as uhp_rx.crc documents it: CRC32C of the header
 * bytes [UHP_REC_CRC_HDR_OFF, +UHP_REC_CRC_HDR_LEN) (len, type, flags, src,
 * dst, seq, little-endian) followed by the payload.
 */
static uint32_t rec_crc(uint32_t len, uint16_t type, uint16_t flags,
			uint32_t src, uint32_t dst, uint64_t seq,
			const void *payload)
{
	unsigned char h[UHP_REC_CRC_HDR_LEN];
	uint32_t c;

	put_le32(h, len);
	put_le16(h + 4, type);
	put_le16(h + 6, flags);
	put_le32(h + 8, src);
	put_le32(h + 12, dst);
	put_le64(h + 16, seq);
	c = uhp_crc32c(~0U, h, sizeof(h));
	c = uhp_crc32c(c, payload, len);
	return ~c;
}

static bool parse_u64(const char *s, int base, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!s || !*s || *s == '-' || isspace((unsigned char)*s))
		return false;
	errno = 0;
	v = strtoull(s, &end, base);
	if (errno || *end)
		return false;
	*out = v;
	return true;
}

/* Numbers with K/M/G suffixes (powers of 1024); "-1" for unlimited. */
static bool parse_size(const char *s, int64_t *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s)
		return false;
	switch (*end) {
	case 'k': case 'K': v <<= 10; end++; break;
	case 'm': case 'M': v <<= 20; end++; break;
	case 'g': case 'G': v <<= 30; end++; break;
	default: break;
	}
	if (*end)
		return false;
	*out = v;
	return true;
}

/* ------------------------------------------------------------------ */
/* configuration                                                       */
/* ------------------------------------------------------------------ */

enum mode { MODE_CORE, MODE_JS };

static const char *mode_name(enum mode m)
{
	return m == MODE_JS ? "jetstream" : "core";
}

/* The files the authentication and TLS settings name (see connect_nats()). */
enum { F_CREDS, F_NKEY_SEED, F_PASSWORD, F_TOKEN, F_TLS_CA, F_TLS_CERT, F_TLS_KEY, F_NUM };

static const struct {
	const char *key;
	bool secret;		/* only its owner may read or write it */
} cfg_files[F_NUM] = {
	[F_CREDS]	= { "creds", true },
	[F_NKEY_SEED]	= { "nkey_seed", true },
	[F_PASSWORD]	= { "password_file", true },
	[F_TOKEN]	= { "token_file", true },
	[F_TLS_CA]	= { "tls_ca", false },
	[F_TLS_CERT]	= { "tls_cert", false },
	[F_TLS_KEY]	= { "tls_key", true },
};

#define SECRET_MAX	4096	/* a password or a token */

#define MAX_EXPORTS	64
#define MAX_ROUTES	64

struct export;
struct route;

struct config {
	char host[40];
	char nats[1024];
	char state_dir[PATH_MAX];
	bool state_dir_set;	/* by the file (not the default) */
	char prefix[64];
	enum mode mode;
	int replicas;
	bool memory_storage;
	int64_t ack_wait_ms;
	int64_t max_ack_pending;
	int64_t fetch_batch;
	int64_t fetch_expires_ms;
	int64_t max_inflight;
	int64_t spool_bytes;
	int64_t retry_ms;
	int64_t gap_timeout_ms;
	int64_t nak_delay_ms;
	int64_t stream_max_msgs;
	int64_t stream_max_bytes;
	int64_t dup_window_ms;
	int64_t ring_size;
	int64_t spin;
	int64_t spin_us;
	int64_t stats_ms;
	int64_t core_pending_msgs;
	int64_t reconnect_buf;
	int64_t max_hold;
	int64_t stall_ms;
	int64_t batch, batch_bytes;
	bool send_asap;
	/* authentication and TLS: the files named and the line that named each
	 * (0: not set); tls: any tls_* setting or a tls:// URL */
	char file[F_NUM][PATH_MAX];
	int file_ln[F_NUM];
	char user[128], nkey[64], tls_hostname[256];
	int user_ln, nkey_ln, tls_hostname_ln;
	bool tls;
	/* what password_file and token_file hold: wiped and freed once
	 * connected (nats.c keeps its own copy for reconnects) */
	char *password, *token;
	int nexports, nroutes;
	struct export *exports[MAX_EXPORTS];
	struct route *routes[MAX_ROUTES];
};

static struct config C = {
	.prefix = "uhp",
	.mode = MODE_CORE,
	.replicas = 3,
	.ack_wait_ms = 10000,
	.max_ack_pending = 65536,
	.fetch_batch = 512,
	.fetch_expires_ms = 2000,
	.max_inflight = 4096,
	.spool_bytes = 64 << 20,
	.retry_ms = 2000,
	.gap_timeout_ms = 60000,
	.nak_delay_ms = 20,
	.stream_max_msgs = -1,
	.stream_max_bytes = 1LL << 30,
	.dup_window_ms = 120000,
	.ring_size = 1 << 20,
	.spin = 0,
	.spin_us = 0,
	.stats_ms = 1000,
	.core_pending_msgs = 1 << 20,
	.reconnect_buf = 64 << 20,
	.max_hold = 65536,
	.stall_ms = 5000,
	.batch = 128,
	.batch_bytes = 64 << 10,
	.send_asap = true,
};

/* ---- inbound state (per exported channel) ---- */

#define IN_MAGIC	"UHPBIN01"
#define MAX_SRC		1024
#define SRC_KEY_MAX	112

struct src_ent {
	char key[SRC_KEY_MAX];	/* "<host>/<outbox>/<instance hex>" */
	uint64_t next;		/* next link sequence expected */
	int64_t seen_ns;	/* CLOCK_MONOTONIC of the last message (memory) */
	int64_t wait_since_ns;	/* waiting for 'next' since (0: not waiting) */
	uint32_t used;
	uint32_t pad_;
};

/* The one record between "verified" and "mark advanced" (see DESIGN.md). */
struct in_pending {
	uint32_t valid;
	uint32_t src;		/* index in src[] */
	uint64_t seq;		/* its link sequence */
	uint64_t pos;		/* its reservation: ring position */
	uint64_t salt;		/* the ring's salt, derived from the tag */
	uint32_t ring;
	uint32_t len;
};

struct in_state {
	char magic[8];
	uint32_t version;
	uint32_t nsrc;
	struct in_pending pend;
	struct src_ent src[MAX_SRC];
};

#define MSG_HIST	16

struct export {
	char chan[UHP_NAME_MAX];
	enum mode mode;
	char stream[128];
	char subject[256];
	int64_t max_msgs, max_bytes;
	int replicas;
	int64_t ring_size;

	struct uhp_channel *ch;
	uint64_t ring_bytes;	/* data bytes of the ring we produce into */
	struct in_state *st;
	size_t st_len;
	natsSubscription *sub;	/* core */
	pthread_t thr;		/* jetstream puller */
	bool thr_started;
	/* ring and wire bytes the last MSG_HIST messages took (pull_room(),
	 * pull_max_bytes()) */
	uint32_t msg_hist[MSG_HIST], wire_hist[MSG_HIST];
	unsigned msg_hist_n;
	uint64_t msg_bytes;	/* ring bytes the current message took */
	int64_t need_wire;	/* the next message is larger than this */

	_Atomic uint64_t received, committed, crc_refused, malformed, dups,
		gaps, late, naks, full_waits, unsequenced, too_big,
		gap_timeouts, probe_committed, probe_uncommitted,
		probe_unknown, evictions, acks, pulls, held, unheld, stepdowns,
		credit_replies;
	_Atomic int64_t held_now;

	/* jetstream: credit for the senders (see credit_cb()) */
	natsSubscription *credit_sub;
	pthread_mutex_t src_mu;		/* src[] entries appearing, going */
	int64_t credit_ns[MAX_SRC];	/* a source's last credit request */
};

/*
 * Credit (jetstream): a sending bridge takes a new record from its outbox
 * only while the receiving bridge's grant allows it, so that the stream
 * never reaches its limits. (An R3 work-queue stream that refuses messages
 * at a limit lets its replicas diverge: each replica checks the limit when
 * it applies a message, against acked messages it removed at its own pace,
 * so replicas refuse different messages; seen with nats-server 2.9.10,
 * records PubAck'd to the sender then never reach the consumer.)
 *
 * The sender asks on <prefix>.credit.<host>.<channel> with its link key;
 * the receiver answers "<mark> <msgs> <bytes>": it committed the link's
 * records up to mark, and the sender may have msgs records, costing bytes
 * (payload + CREDIT_REC_COST each), beyond it: 1/CREDIT_SHARE of the
 * stream's limits, split among the sources that asked lately. A record
 * stored twice (in a batch and alone, after a lost PubAck) and the
 * messages' headers stay well inside the limits that way.
 */
#define CREDIT_REC_COST		512
#define CREDIT_SHARE		4
#define CREDIT_ACTIVE_NS	5000000000LL
#define CREDIT_RING		(1u << 16)	/* records a sender tracks */

/* ---- outbound spool (jetstream routes) ---- */

#define SPOOL_MAGIC	"UHPSPL01"
#define SPOOL_HDR	4096
#define ENT_REC		1
#define ENT_PAD		2

struct spool_state {
	uint64_t head_off, head_seq;	/* oldest entry not yet acked */
	uint64_t tail_off, next_seq;	/* where the next one goes */
	/* the outbox record appended last (released right after) */
	uint64_t last_pos;
	uint32_t last_ring, last_crc, last_len, last_valid;
};

struct spool_hdr {
	char magic[8];
	uint32_t version, hdr_size;
	uint64_t size;			/* data bytes after the header */
	uint64_t instance;		/* this link instance's id */
	_Atomic uint64_t gen;		/* st[gen & 1] is the state */
	struct spool_state st[2];
};

struct spool_ent {
	uint32_t total;			/* bytes incl. this header, 8-aligned */
	uint32_t kind;			/* ENT_REC or ENT_PAD */
	uint64_t seq;
	uint32_t len, crc;
	uint32_t src, dst;
	uint64_t useq;
	uint16_t type, flags;
	uint32_t src_ring;
	uint64_t src_pos;
};

#define ENT_TOTAL(len) \
	(((uint64_t)(len) + sizeof(struct spool_ent) + 7) & ~(uint64_t)7)

enum slot_state { S_FREE, S_SENT, S_ACKED, S_FAILED, S_RESEND };

struct slot {
	_Atomic uint64_t seq;
	_Atomic uint32_t state;
	uint32_t tries;
	int64_t sent_ns;
	uint64_t off;
};

struct route {
	char dst_host[40];
	char dst_chan[UHP_NAME_MAX];
	char outbox[UHP_NAME_MAX];
	enum mode mode;
	char subject[256];
	int64_t ring_size;
	int64_t batch, batch_bytes;

	struct uhp_channel *ch;
	pthread_t thr;
	bool thr_started;
	uint64_t instance;
	char link_pfx[160];	/* "<host>/<outbox>/<instance hex>/" */

	/* outbox_wait(): when records were last taken, and the mean gap */
	int64_t last_take_ns, gap_ns;

	/* core */
	uint64_t core_seq;

	/* jetstream */
	struct spool_hdr *sp;
	unsigned char *sp_data;
	size_t sp_len;
	struct spool_state cur;	/* working copy of the committed state */
	struct slot *slots;
	uint64_t cap;		/* power of two */
	char ack_pfx[128];
	natsSubscription *acksub;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	_Atomic int waiting;
	_Atomic int resend_all;
	_Atomic int64_t failed_any;

	char *batch_buf;
	size_t batch_cap;

	/* credit: the receiver's last grant, and what we took since */
	char credit_subj[256];
	char credit_inbox[128];
	natsSubscription *credit_sub;
	_Atomic uint64_t credit_mark, credit_msgs, credit_bytes;
	_Atomic int credit_asked;	/* a request is out */
	_Atomic int64_t credit_ivl_ns;	/* between requests while we wait */
	int64_t credit_ask_ns;
	uint64_t *cost_cum;		/* [lseq % CREDIT_RING]: cost_total through lseq */
	uint64_t cost_base;		/* the first lseq taken by this process */
	uint64_t cost_total;

	_Atomic uint64_t forwarded, published, acked, dup_acks, retransmits,
		pub_errors, pub_failed, too_big, corrupted_by_hook, recovered,
		credit_waits, dropped_by_hook;
	_Atomic bool first_dropped;	/* UHP_BRIDGE_DROP_JS_FIRST done */
};

/* Bit-flip hook: every Nth outbound record gets a payload bit flipped on the
 * wire (never in the spool). UHP_BRIDGE_CORRUPT_EVERY=N; tests only. */
static uint64_t g_corrupt_every;
static _Atomic uint64_t g_corrupt_count;

/* Loss hook: every jetstream publish (and resend) is lost on the way, so
 * records stay in the spool unacknowledged. UHP_BRIDGE_DROP_JS=1; tests
 * only (the resend from the spool after a restart). With
 * UHP_BRIDGE_DROP_JS_FIRST=1 only each route's first publish is lost: the
 * receiver holds everything after it until the resend (the hold drain). */
static uint64_t g_drop_js, g_drop_js_first;

static natsConnection *g_nc_out, *g_nc_in;
static jsCtx *g_js;

/* ------------------------------------------------------------------ */
/* config file                                                         */
/* ------------------------------------------------------------------ */

static int cfg_err(const char *file, int line, const char *what)
{
	fprintf(stderr, "uhp-bridge: %s:%d: %s\n", file, line, what);
	return -1;
}

static int cfg_errf(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int cfg_errf(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "uhp-bridge: %s:%d: ", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return -1;
}

static void free_secrets(void)
{
	if (C.password) {
		explicit_bzero(C.password, strlen(C.password));
		free(C.password);
		C.password = NULL;
	}
	if (C.token) {
		explicit_bzero(C.token, strlen(C.token));
		free(C.token);
		C.token = NULL;
	}
}

/* nats.c puts user, password and token into its CONNECT JSON unescaped */
static bool connect_safe(const char *v)
{
	for (const unsigned char *p = (const unsigned char *)v; *p; p++)
		if (*p < 0x20 || *p == 0x7f || *p == '"' || *p == '\\')
			return false;
	return true;
}

/*
 * The first line of a password or token file, without its line end, into
 * *out (malloc'ed). NULL or the reason it is refused. Never says what the
 * file holds.
 */
static const char *read_secret(int fd, char **out)
{
	char buf[SECRET_MAX + 2];
	const char *why = NULL;
	size_t len = 0;
	ssize_t n;

	while (len < sizeof(buf) - 1) {
		n = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			why = strerror(errno);
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = 0;
	len = strcspn(buf, "\n");
	if (len > SECRET_MAX) {
		why = "its first line is longer than 4096 bytes";
		goto out;
	}
	buf[len] = 0;
	if (len && buf[len - 1] == '\r')
		buf[--len] = 0;
	if (!len)
		why = "its first line is empty";
	else if (!connect_safe(buf))
		why = "it holds a quote, a backslash or a control character, which nats.c would send unescaped";
	else if (!(*out = strdup(buf)))
		why = "out of memory";
out:
	explicit_bzero(buf, sizeof(buf));
	return why;
}

/*
 * Checks a file an authentication or TLS setting names: it must open, be a
 * regular file, and a secret must be readable and writable by its owner
 * only, and that owner this user or root (as ssh wants of a private key).
 * A password or token file is read (C.password, C.token). 0 or -1, the
 * reason printed as FILE:LINE: KEY PATH: why.
 */
static int cfg_file_check(const char *file, int ln, int i)
{
	const char *key = cfg_files[i].key, *path = C.file[i], *why = NULL;
	struct stat st;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return cfg_errf(file, ln, "%s %s: %s", key, path, strerror(errno));
	if (fstat(fd, &st)) {
		why = strerror(errno);
	} else if (!S_ISREG(st.st_mode)) {
		why = "not a regular file";
	} else if (cfg_files[i].secret && (st.st_mode & (S_IRWXG | S_IRWXO))) {
		close(fd);
		return cfg_errf(file, ln, "%s %s: permissions %04o are too open: a secret must not be "
				"accessible by group or others (chmod 600 it)", key, path,
				(unsigned)(st.st_mode & 07777));
	} else if (cfg_files[i].secret && st.st_uid != geteuid() && st.st_uid != 0) {
		close(fd);
		return cfg_errf(file, ln, "%s %s: owned by uid %u: a secret must belong to the user "
				"the bridge runs as (uid %u) or to root", key, path,
				(unsigned)st.st_uid, (unsigned)geteuid());
	} else if (i == F_PASSWORD) {
		why = read_secret(fd, &C.password);
	} else if (i == F_TOKEN) {
		why = read_secret(fd, &C.token);
	}
	close(fd);
	if (why)
		return cfg_errf(file, ln, "%s %s: %s", key, path, why);
	return 0;
}

/*
 * The authentication and TLS settings: 1 handled, 0 not one of them, -1
 * refused (the reason printed).
 */
static int parse_auth(const char *file, int ln, const char *k, const char *v)
{
	struct { const char *key; char *buf; size_t cap; int *ln; } strs[] = {
		{ "user", C.user, sizeof(C.user), &C.user_ln },
		{ "nkey", C.nkey, sizeof(C.nkey), &C.nkey_ln },
		{ "tls_hostname", C.tls_hostname, sizeof(C.tls_hostname), &C.tls_hostname_ln },
	};

	if (!strcmp(k, "password") || !strcmp(k, "token"))
		return cfg_errf(file, ln, "%s: never inline: put it in a file only its owner can read "
				"and name that with %s_file", k, k);
	for (int i = 0; i < F_NUM; i++) {
		if (strcmp(k, cfg_files[i].key))
			continue;
		if (C.file_ln[i])
			return cfg_errf(file, ln, "%s: already set on line %d", k, C.file_ln[i]);
		if (strlen(v) >= sizeof(C.file[i]))
			return cfg_errf(file, ln, "%s: the path is too long", k);
		snprintf(C.file[i], sizeof(C.file[i]), "%s", v);
		C.file_ln[i] = ln;
		return cfg_file_check(file, ln, i) ? -1 : 1;
	}
	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
		if (strcmp(k, strs[i].key))
			continue;
		if (*strs[i].ln)
			return cfg_errf(file, ln, "%s: already set on line %d", k, *strs[i].ln);
		if (strlen(v) >= strs[i].cap)
			return cfg_errf(file, ln, "%s: too long", k);
		snprintf(strs[i].buf, strs[i].cap, "%s", v);
		*strs[i].ln = ln;
		if (strs[i].buf == C.user && !connect_safe(v))
			return cfg_err(file, ln, "user: no quotes, backslashes or control characters");
		if (strs[i].buf == C.nkey &&
		    (strlen(v) != 56 || v[0] != 'U' || strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") != 56))
			return cfg_err(file, ln, "nkey: a user's public nkey (U and 55 more of A-Z, 2-7)");
		if (strs[i].buf == C.tls_hostname &&
		    strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-:") != strlen(v))
			return cfg_err(file, ln, "tls_hostname: a host name or address");
		return 1;
	}
	return 0;
}

/*
 * After the whole file: one way to authenticate, the settings that go in
 * pairs, TLS implied by any tls_* setting or a tls:// URL.
 */
static int check_auth(const char *file)
{
	struct { const char *what; int ln; } way[] = {
		{ "creds", C.file_ln[F_CREDS] },
		{ "nkey/nkey_seed", C.nkey_ln ? C.nkey_ln : C.file_ln[F_NKEY_SEED] },
		{ "user/password_file", C.user_ln ? C.user_ln : C.file_ln[F_PASSWORD] },
		{ "token_file", C.file_ln[F_TOKEN] },
	};
	char urls[sizeof(C.nats)];
	int a = -1, b = -1;

	if (C.nkey_ln && C.file_ln[F_NKEY_SEED] && C.file_ln[F_NKEY_SEED] < C.nkey_ln)
		way[1].ln = C.file_ln[F_NKEY_SEED];
	if (C.user_ln && C.file_ln[F_PASSWORD] && C.file_ln[F_PASSWORD] < C.user_ln)
		way[2].ln = C.file_ln[F_PASSWORD];
	/* the first two ways in the file */
	for (int i = 0; i < 4; i++) {
		if (!way[i].ln)
			continue;
		if (a < 0 || way[i].ln < way[a].ln) {
			b = a;
			a = i;
		} else if (b < 0 || way[i].ln < way[b].ln) {
			b = i;
		}
	}
	if (b >= 0)
		return cfg_errf(file, way[b].ln, "%s clashes with %s (line %d): authenticate one way only",
				way[b].what, way[a].what, way[a].ln);
	if (C.user_ln && !C.file_ln[F_PASSWORD])
		return cfg_err(file, C.user_ln, "user needs password_file (a password is never inline)");
	if (C.file_ln[F_PASSWORD] && !C.user_ln)
		return cfg_err(file, C.file_ln[F_PASSWORD], "password_file needs user");
	if (C.nkey_ln && !C.file_ln[F_NKEY_SEED])
		return cfg_err(file, C.nkey_ln, "nkey needs nkey_seed, the file holding its seed");
	if (C.file_ln[F_NKEY_SEED] && !C.nkey_ln)
		return cfg_err(file, C.file_ln[F_NKEY_SEED], "nkey_seed needs nkey, the public key of its seed");
	if (C.file_ln[F_TLS_CERT] && !C.file_ln[F_TLS_KEY])
		return cfg_err(file, C.file_ln[F_TLS_CERT], "tls_cert needs tls_key, its private key");
	if (C.file_ln[F_TLS_KEY] && !C.file_ln[F_TLS_CERT])
		return cfg_err(file, C.file_ln[F_TLS_KEY], "tls_key needs tls_cert, its certificate");
	C.tls = C.file_ln[F_TLS_CA] || C.file_ln[F_TLS_CERT] || C.tls_hostname_ln;
	snprintf(urls, sizeof(urls), "%s", C.nats);
	for (char *save = NULL, *u = strtok_r(urls, ", ", &save); u; u = strtok_r(NULL, ", ", &save))
		if (!strncasecmp(u, "tls://", 6))
			C.tls = true;
	return 0;
}

static bool kv_mode(const char *v, enum mode *m)
{
	if (!strcmp(v, "core"))
		*m = MODE_CORE;
	else if (!strcmp(v, "jetstream") || !strcmp(v, "js"))
		*m = MODE_JS;
	else
		return false;
	return true;
}

/*
 * The keys export and route lines share: 1 handled, 0 not one of them,
 * -1 a bad value (*why says which).
 */
static int kv_channel(const char *k, const char *v, enum mode *m, int64_t *ring_size,
		      const char **why)
{
	if (!strcmp(k, "mode")) {
		*why = "mode: core or jetstream";
		return kv_mode(v, m) ? 1 : -1;
	}
	if (!strcmp(k, "ring_size")) {
		*why = "ring_size";
		return parse_size(v, ring_size) ? 1 : -1;
	}
	return 0;
}

static int parse_global(const char *k, const char *v)
{
	struct { const char *name; int64_t *p; } nums[] = {
		{ "ack_wait_ms", &C.ack_wait_ms },
		{ "max_ack_pending", &C.max_ack_pending },
		{ "fetch_batch", &C.fetch_batch },
		{ "fetch_expires_ms", &C.fetch_expires_ms },
		{ "max_inflight", &C.max_inflight },
		{ "spool_bytes", &C.spool_bytes },
		{ "retry_ms", &C.retry_ms },
		{ "gap_timeout_ms", &C.gap_timeout_ms },
		{ "nak_delay_ms", &C.nak_delay_ms },
		{ "stream_max_msgs", &C.stream_max_msgs },
		{ "stream_max_bytes", &C.stream_max_bytes },
		{ "dup_window_ms", &C.dup_window_ms },
		{ "ring_size", &C.ring_size },
		{ "spin", &C.spin },
		{ "spin_us", &C.spin_us },
		{ "stats_ms", &C.stats_ms },
		{ "core_pending_msgs", &C.core_pending_msgs },
		{ "reconnect_buf", &C.reconnect_buf },
		{ "max_hold", &C.max_hold },
		{ "stall_ms", &C.stall_ms },
		{ "batch", &C.batch },
		{ "batch_bytes", &C.batch_bytes },
	};

	for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++)
		if (!strcmp(k, nums[i].name))
			return parse_size(v, nums[i].p) ? 0 : -1;
	if (!strcmp(k, "host")) {
		if (!valid_host(v))
			return -1;
		snprintf(C.host, sizeof(C.host), "%s", v);
	} else if (!strcmp(k, "nats")) {
		snprintf(C.nats, sizeof(C.nats), "%s", v);
	} else if (!strcmp(k, "state_dir")) {
		snprintf(C.state_dir, sizeof(C.state_dir), "%s", v);
	} else if (!strcmp(k, "subject_prefix")) {
		if (!valid_host(v))
			return -1;
		snprintf(C.prefix, sizeof(C.prefix), "%s", v);
	} else if (!strcmp(k, "mode")) {
		return kv_mode(v, &C.mode) ? 0 : -1;
	} else if (!strcmp(k, "replicas")) {
		int64_t r;
		if (!parse_size(v, &r) || r < 1 || r > 5)
			return -1;
		C.replicas = (int)r;
	} else if (!strcmp(k, "storage")) {
		if (!strcmp(v, "memory"))
			C.memory_storage = true;
		else if (!strcmp(v, "file"))
			C.memory_storage = false;
		else
			return -1;
	} else if (!strcmp(k, "send_asap")) {
		C.send_asap = !strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "1");
	} else {
		return -2;
	}
	return 0;
}

static char *tok(char **s)
{
	char *p = *s, *start;

	while (*p && isspace((unsigned char)*p))
		p++;
	if (!*p)
		return NULL;
	start = p;
	while (*p && !isspace((unsigned char)*p))
		p++;
	if (*p)
		*p++ = 0;
	*s = p;
	return start;
}

static int parse_config(const char *file, FILE *f)
{
	char line[2048];
	int ln = 0;

	/* Globals first (mode may be set after export lines: two passes). */
	for (int pass = 0; pass < 2; pass++) {
		rewind(f);
		ln = 0;
		while (fgets(line, sizeof(line), f)) {
			char *s = line, *k, *hash = strchr(line, '#');

			ln++;
			if (hash)
				*hash = 0;
			k = tok(&s);
			if (!k)
				continue;
			if (!strcmp(k, "export") || !strcmp(k, "route")) {
				if (pass == 0)
					continue;
				if (!strcmp(k, "export")) {
					struct export *e;
					char *ch = tok(&s), *kv;

					if (!ch || !valid_chan(ch))
						return cfg_err(file, ln, "export: a channel name");
					if (C.nexports == MAX_EXPORTS)
						return cfg_err(file, ln, "too many exports");
					e = calloc(1, sizeof(*e));
					if (!e)
						return cfg_err(file, ln, "out of memory");
					snprintf(e->chan, sizeof(e->chan), "%s", ch);
					e->mode = C.mode;
					e->max_msgs = C.stream_max_msgs;
					e->max_bytes = C.stream_max_bytes;
					e->replicas = C.replicas;
					e->ring_size = C.ring_size;
					while ((kv = tok(&s))) {
						char *eq = strchr(kv, '=');
						const char *why;
						int k;

						if (!eq)
							return cfg_err(file, ln, "export: key=value expected");
						*eq++ = 0;
						k = kv_channel(kv, eq, &e->mode, &e->ring_size, &why);
						if (k < 0)
							return cfg_err(file, ln, why);
						if (k > 0)
							continue;
						if (!strcmp(kv, "stream")) {
							if (!valid_host(eq))
								return cfg_err(file, ln, "stream: [A-Za-z0-9_-]");
							snprintf(e->stream, sizeof(e->stream), "%s", eq);
						} else if (!strcmp(kv, "max_msgs")) {
							if (!parse_size(eq, &e->max_msgs))
								return cfg_err(file, ln, "max_msgs");
						} else if (!strcmp(kv, "max_bytes")) {
							if (!parse_size(eq, &e->max_bytes))
								return cfg_err(file, ln, "max_bytes");
						} else if (!strcmp(kv, "replicas")) {
							int64_t r;
							if (!parse_size(eq, &r) || r < 1 || r > 5)
								return cfg_err(file, ln, "replicas: 1..5");
							e->replicas = (int)r;
						} else {
							return cfg_err(file, ln, "export: unknown key");
						}
					}
					C.exports[C.nexports++] = e;
				} else {
					struct route *r;
					char *dst = tok(&s), *ob = tok(&s), *kv, *slash;

					if (!dst || !ob)
						return cfg_err(file, ln, "route HOST/CHANNEL OUTBOX [mode=...]");
					slash = strchr(dst, '/');
					if (!slash)
						return cfg_err(file, ln, "route: HOST/CHANNEL");
					*slash = 0;
					if (!valid_host(dst) || !valid_chan(slash + 1) ||
					    !valid_chan(ob))
						return cfg_err(file, ln, "route: bad host or channel name");
					if (C.nroutes == MAX_ROUTES)
						return cfg_err(file, ln, "too many routes");
					r = calloc(1, sizeof(*r));
					if (!r)
						return cfg_err(file, ln, "out of memory");
					snprintf(r->dst_host, sizeof(r->dst_host), "%s", dst);
					snprintf(r->dst_chan, sizeof(r->dst_chan), "%s", slash + 1);
					snprintf(r->outbox, sizeof(r->outbox), "%s", ob);
					r->mode = C.mode;
					r->ring_size = C.ring_size;
					r->batch = C.batch;
					r->batch_bytes = C.batch_bytes;
					while ((kv = tok(&s))) {
						char *eq = strchr(kv, '=');
						const char *why;
						int k;

						if (!eq)
							return cfg_err(file, ln, "route: key=value expected");
						*eq++ = 0;
						k = kv_channel(kv, eq, &r->mode, &r->ring_size, &why);
						if (k < 0)
							return cfg_err(file, ln, why);
						if (k > 0)
							continue;
						if (!strcmp(kv, "batch")) {
							if (!parse_size(eq, &r->batch) || r->batch < 1 || r->batch > 4096)
								return cfg_err(file, ln, "batch: 1..4096");
						} else if (!strcmp(kv, "batch_bytes")) {
							if (!parse_size(eq, &r->batch_bytes) || r->batch_bytes < 1024)
								return cfg_err(file, ln, "batch_bytes: >= 1K");
						} else {
							return cfg_err(file, ln, "route: unknown key");
						}
					}
					C.routes[C.nroutes++] = r;
				}
				continue;
			}
			if (pass == 1)
				continue;
			{
				char *v = tok(&s), *extra;
				int rc;

				if (!v)
					return cfg_err(file, ln, "a value expected");
				/* nats may list URLs separated by spaces too */
				if (!strcmp(k, "nats")) {
					char all[1024];
					snprintf(all, sizeof(all), "%s", v);
					while ((extra = tok(&s))) {
						strncat(all, ",", sizeof(all) - strlen(all) - 1);
						strncat(all, extra, sizeof(all) - strlen(all) - 1);
					}
					/* the URLs are printed and logged */
					if (strchr(all, '@'))
						return cfg_err(file, ln, "nats: no credentials in URLs: use user and "
							       "password_file, token_file, nkey or creds");
					v = all;
					rc = parse_global(k, v);
				} else {
					if (tok(&s))
						return cfg_err(file, ln, "one value expected");
					rc = parse_auth(file, ln, k, v);
					if (rc < 0)
						return -1;
					if (rc > 0)
						continue;
					rc = parse_global(k, v);
				}
				if (rc == -2)
					return cfg_err(file, ln, "unknown key");
				if (rc)
					return cfg_err(file, ln, "bad value");
			}
		}
	}

	if (!C.host[0])
		return cfg_err(file, 0, "'host' is required");
	if (!C.nats[0])
		return cfg_err(file, 0, "'nats' is required");
	C.state_dir_set = C.state_dir[0];
	if (!C.state_dir[0])
		snprintf(C.state_dir, sizeof(C.state_dir), "/var/lib/uhp-bridge/%s", C.host);
	if (C.max_inflight < 1 || C.fetch_batch < 1 || C.spool_bytes < 65536 ||
	    (C.spool_bytes & (C.spool_bytes - 1)))
		return cfg_err(file, 0, "max_inflight, fetch_batch >= 1; spool_bytes a power of two >= 64K");
	if (C.spin_us < 0 || C.spin_us > 1000000)
		return cfg_err(file, 0, "spin_us: 0 to 1000000 (1 s)");
	if (check_auth(file))
		return -1;

	/* derived names and clash checks */
	for (int i = 0; i < C.nexports; i++) {
		struct export *e = C.exports[i];

		snprintf(e->subject, sizeof(e->subject), "%s.%s.%s.%s", C.prefix,
			 e->mode == MODE_JS ? "js" : "core", C.host, e->chan);
		if (!e->stream[0]) {
			snprintf(e->stream, sizeof(e->stream), "UHP_%s_%s", C.host, e->chan);
			for (char *p = e->stream; *p; p++)
				if (*p == '.')
					*p = '_';
		}
		for (int j = 0; j < i; j++) {
			if (!strcmp(C.exports[j]->chan, e->chan))
				return cfg_err(file, 0, "a channel is exported twice");
			if (e->mode == MODE_JS && C.exports[j]->mode == MODE_JS &&
			    !strcmp(C.exports[j]->stream, e->stream))
				return cfg_err(file, 0, "two exports map to one stream name: set stream=");
		}
	}
	for (int i = 0; i < C.nroutes; i++) {
		struct route *r = C.routes[i];

		snprintf(r->subject, sizeof(r->subject), "%s.%s.%s.%s", C.prefix,
			 r->mode == MODE_JS ? "js" : "core", r->dst_host, r->dst_chan);
		for (int j = 0; j < i; j++)
			if (!strcmp(C.routes[j]->outbox, r->outbox))
				return cfg_err(file, 0, "an outbox is used by two routes");
		for (int j = 0; j < C.nexports; j++)
			if (!strcmp(C.exports[j]->chan, r->outbox))
				return cfg_err(file, 0, "a channel is both exported and an outbox");
	}
	return 0;
}

static int load_config(const char *file)
{
	FILE *f = fopen(file, "r");
	int rc;

	if (!f) {
		fprintf(stderr, "uhp-bridge: %s: %s\n", file, strerror(errno));
		return -1;
	}
	rc = parse_config(file, f);
	fclose(f);
	if (rc)
		free_secrets();
	return rc;
}

/* ------------------------------------------------------------------ */
/* files                                                               */
/* ------------------------------------------------------------------ */

static int mkdir_p(const char *path)
{
	char tmp[PATH_MAX];

	snprintf(tmp, sizeof(tmp), "%s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p == '/') {
			*p = 0;
			if (mkdir(tmp, 0700) && errno != EEXIST)
				return -errno;
			*p = '/';
		}
	}
	if (mkdir(tmp, 0700) && errno != EEXIST)
		return -errno;
	return 0;
}

/* Map state_dir/name of len bytes; *fresh says it was created (zeroed). */
static void *map_file(const char *name, size_t len, bool *fresh, size_t *len_out)
{
	char path[PATH_MAX + 128];
	struct stat stb;
	void *p;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", C.state_dir, name);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		LOG_ERR("%s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &stb)) {
		close(fd);
		return NULL;
	}
	*fresh = stb.st_size == 0;
	if ((size_t)stb.st_size > len && !*fresh)
		len = (size_t)stb.st_size;
	if ((size_t)stb.st_size < len && ftruncate(fd, (off_t)len)) {
		LOG_ERR("%s: ftruncate: %s", path, strerror(errno));
		close(fd);
		return NULL;
	}
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED) {
		LOG_ERR("%s: mmap: %s", path, strerror(errno));
		return NULL;
	}
	*len_out = len;
	return p;
}

/* ------------------------------------------------------------------ */
/* header helpers                                                      */
/* ------------------------------------------------------------------ */

struct wire {
	uint32_t src, dst, crc;
	uint16_t type, flags;
	uint64_t useq;
};

/* A single record's meta; its link is publish_link()'s. */
static natsStatus set_headers(natsMsg *m, const struct wire *w)
{
	char b[32];
	natsStatus s;

	snprintf(b, sizeof(b), "%" PRIu32, w->src);
	s = natsMsgHeader_Set(m, "Uhp-Src", b);
	snprintf(b, sizeof(b), "%" PRIu32, w->dst);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(m, "Uhp-Dst", b);
	snprintf(b, sizeof(b), "%u", (unsigned)w->type);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(m, "Uhp-Type", b);
	snprintf(b, sizeof(b), "%" PRIu64, w->useq);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(m, "Uhp-Seq", b);
	snprintf(b, sizeof(b), "%08" PRIx32, w->crc);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(m, "Uhp-Crc", b);
	if (w->flags && s == NATS_OK) {
		snprintf(b, sizeof(b), "%u", (unsigned)w->flags);
		s = natsMsgHeader_Set(m, "Uhp-Flags", b);
	}
	return s;
}

static bool hdr_u64(natsMsg *m, const char *key, int base, uint64_t max,
		    uint64_t *out, bool required, uint64_t dflt)
{
	const char *v = NULL;

	if (natsMsgHeader_Get(m, key, &v) != NATS_OK || !v) {
		*out = dflt;
		return !required;
	}
	return parse_u64(v, base, out) && *out <= max;
}

static bool parse_wire(natsMsg *m, struct wire *w)
{
	uint64_t v;

	if (!hdr_u64(m, "Uhp-Crc", 16, UINT32_MAX, &v, true, 0))
		return false;
	w->crc = (uint32_t)v;
	if (!hdr_u64(m, "Uhp-Src", 10, UINT32_MAX, &v, false, 0))
		return false;
	w->src = (uint32_t)v;
	if (!hdr_u64(m, "Uhp-Dst", 10, UINT32_MAX, &v, false, 0))
		return false;
	w->dst = (uint32_t)v;
	if (!hdr_u64(m, "Uhp-Type", 10, UINT16_MAX, &v, false, 0))
		return false;
	w->type = (uint16_t)v;
	if (!hdr_u64(m, "Uhp-Flags", 10, UINT16_MAX, &v, false, 0))
		return false;
	w->flags = (uint16_t)v;
	if (!hdr_u64(m, "Uhp-Seq", 10, UINT64_MAX, &v, false, 0))
		return false;
	w->useq = v;
	return true;
}

/* "<host>/<outbox>/<instance>/<lseq>": key = all but the last part. */
static bool parse_link(const char *link, char *key, size_t keycap, uint64_t *lseq)
{
	const char *last = strrchr(link, '/');
	size_t klen;
	int slashes = 0;

	if (!last)
		return false;
	for (const char *p = link; p < last; p++)
		slashes += *p == '/';
	klen = (size_t)(last - link);
	if (slashes != 2 || klen == 0 || klen >= keycap)
		return false;
	if (!parse_u64(last + 1, 10, lseq) || *lseq == 0)
		return false;
	memcpy(key, link, klen);
	key[klen] = 0;
	return true;
}

/* ------------------------------------------------------------------ */
/* inbound                                                             */
/* ------------------------------------------------------------------ */

enum act { A_NONE, A_ACK, A_NAK, A_TERM };

static void hold_purge(struct export *e, int idx);

static int src_lookup(struct export *e, const char *key, bool *created)
{
	struct in_state *st = e->st;
	int free_i = -1, lru = -1;
	int64_t lru_t = INT64_MAX;

	*created = false;
	for (int i = 0; i < MAX_SRC; i++) {
		struct src_ent *s = &st->src[i];

		if (!s->used) {
			if (free_i < 0)
				free_i = i;
			continue;
		}
		if (!strcmp(s->key, key))
			return i;
		if (s->seen_ns < lru_t) {
			lru_t = s->seen_ns;
			lru = i;
		}
	}
	if (free_i < 0) {
		free_i = lru;
		CNT_INC(e->evictions);
		LOG_WARN("%s: source table full, forgetting %s", e->chan,
			 st->src[lru].key);
		st->src[lru].used = 0;
		hold_purge(e, lru);
	}
	{
		struct src_ent *s = &st->src[free_i];

		memset(s, 0, sizeof(*s));
		e->credit_ns[free_i] = 0;
		snprintf(s->key, sizeof(s->key), "%s", key);
		s->next = 1;	/* every link instance starts at 1 */
		atomic_thread_fence(memory_order_release);
		s->used = 1;
		st->nsrc++;
	}
	*created = true;
	return free_i;
}

/*
 * The ring memory around a reservation: the record layout is ABI
 * (<linux/uhp.h>): a record's 40-byte header precedes its payload, the data
 * area holds position pos at offset pos & (size - 1), and tag is
 * pos ^ salt (committed) or pos ^ salt ^ UHP_TAG_BUSY (reserved).
 */
static uint64_t txn_salt(const struct uhp_txn *t)
{
	const struct uhp_rec_hdr *h =
		(const struct uhp_rec_hdr *)((const char *)t->payload - UHP_REC_HDR_SIZE);

	return __atomic_load_n(&h->tag, __ATOMIC_ACQUIRE) ^ t->pos ^ UHP_TAG_BUSY;
}

/* Wait for room for len bytes; false if stopping. */
static bool reserve_wait(struct export *e, uint32_t len, struct uhp_txn *t,
			 natsMsg *m)
{
	long back = 20;
	int64_t t0 = 0, last_wpi = 0;
	int r;

	while ((r = uhp_reserve(e->ch, len, t)) == -EAGAIN) {
		int64_t now = now_ns();

		if (!t0) {
			t0 = last_wpi = now;
			CNT_INC(e->full_waits);
		}
		if (g_stop)
			return false;
		/* JetStream: tell the server we are working on it, so a full
		 * ring does not turn into redeliveries. */
		if (m && natsMsg_GetReply(m) &&
		    now - last_wpi > C.ack_wait_ms * 1000000LL / 3) {
			natsConnection_Publish(g_nc_in, natsMsg_GetReply(m), "+WPI", 4);
			last_wpi = now;
		}
		sleep_us(back);
		if (back < 1000)
			back *= 2;
	}
	if (r) {
		LOG_RATE("error", "%s: uhp_reserve: %s", e->chan, strerror(-r));
		return false;
	}
	return true;
}

/* ---- holdback: records that arrived ahead of a missing one ---- */

/*
 * A JetStream record whose link sequence is ahead of the next one expected
 * (the stream took it before an earlier one that is being resent) is kept
 * here, state_dir/hold.<channel>/<source index>.<lseq>, and acknowledged, so
 * it leaves the stream and makes room for the missing one (with a stream
 * limit, NAKing it instead could fill the stream with records that wait for
 * one that cannot get in). Committed in order once the gap is filled;
 * files below the source's mark are stale and removed at start.
 */
struct hold_hdr {
	char magic[8];		/* "UHPHOLD1" */
	uint32_t len, crc;
	uint32_t src, dst;
	uint64_t useq;
	uint16_t type, flags;
	uint32_t pad_;
};

static void hold_path(const struct export *e, char *buf, size_t cap, int idx,
		      uint64_t lseq)
{
	snprintf(buf, cap, "%s/hold.%s/%d.%" PRIu64, C.state_dir, e->chan, idx, lseq);
}

static bool hold_exists(const struct export *e, int idx, uint64_t lseq)
{
	char path[PATH_MAX + 128];

	hold_path(e, path, sizeof(path), idx, lseq);
	return access(path, F_OK) == 0;
}

static int hold_put(struct export *e, int idx, uint64_t lseq, const struct wire *w,
		    const void *data, uint32_t len)
{
	char path[PATH_MAX + 128], tmp[PATH_MAX + 160];
	struct hold_hdr h = { .magic = "UHPHOLD", .len = len, .crc = w->crc,
			      .src = w->src, .dst = w->dst, .useq = w->useq,
			      .type = w->type, .flags = w->flags };
	FILE *f;
	bool ok;

	hold_path(e, path, sizeof(path), idx, lseq);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f)
		return -errno;
	ok = fwrite(&h, sizeof(h), 1, f) == 1 &&
	     (len == 0 || fwrite(data, len, 1, f) == 1);
	if (fclose(f) || !ok || rename(tmp, path)) {
		unlink(tmp);
		return -EIO;
	}
	atomic_fetch_add(&e->held_now, 1);
	return 0;
}

/* Load a held record into malloc'd *data; 0, or -ENOENT. */
static int hold_get(const struct export *e, int idx, uint64_t lseq, struct wire *w,
		    void **data, uint32_t *len)
{
	char path[PATH_MAX + 128];
	struct hold_hdr h;
	FILE *f;
	int rc = 0;

	hold_path(e, path, sizeof(path), idx, lseq);
	f = fopen(path, "r");
	if (!f)
		return -ENOENT;
	if (fread(&h, sizeof(h), 1, f) != 1 || memcmp(h.magic, "UHPHOLD", 8)) {
		rc = -EIO;
	} else {
		*data = malloc(h.len ? h.len : 1);
		if (!*data) {
			rc = -ENOMEM;
		} else if (h.len && fread(*data, h.len, 1, f) != 1) {
			free(*data);
			rc = -EIO;
		}
	}
	fclose(f);
	if (rc == -ENOMEM) {	/* the record stays held: tried again later */
		LOG_ERR("%s: %s: out of memory", e->chan, path);
		return rc;
	}
	if (rc) {
		LOG_ERR("%s: %s is damaged: removed (counted lost)", e->chan, path);
		unlink(path);
		return rc;
	}
	*w = (struct wire){ .src = h.src, .dst = h.dst, .crc = h.crc, .type = h.type,
			    .flags = h.flags, .useq = h.useq };
	*len = h.len;
	return 0;
}

static void hold_del(struct export *e, int idx, uint64_t lseq)
{
	char path[PATH_MAX + 128];

	hold_path(e, path, sizeof(path), idx, lseq);
	if (unlink(path) == 0)
		atomic_fetch_sub(&e->held_now, 1);
}

/* Forget what is held for a source index (it is being reused). */
static void hold_purge(struct export *e, int idx)
{
	char dir[PATH_MAX + 128], path[PATH_MAX + 512], pfx[32];
	DIR *d;
	struct dirent *de;

	snprintf(dir, sizeof(dir), "%s/hold.%s", C.state_dir, e->chan);
	snprintf(pfx, sizeof(pfx), "%d.", idx);
	d = opendir(dir);
	if (!d)
		return;
	while ((de = readdir(d))) {
		if (strncmp(de->d_name, pfx, strlen(pfx)))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (unlink(path) == 0) {
			atomic_fetch_sub(&e->held_now, 1);
			CNT_INC(e->gaps);
		}
	}
	closedir(d);
}

/* At start: count what is held, drop what is below its source's mark. */
static void hold_scan(struct export *e)
{
	char dir[PATH_MAX + 128], path[PATH_MAX + 512];
	DIR *d;
	struct dirent *de;

	snprintf(dir, sizeof(dir), "%s/hold.%s", C.state_dir, e->chan);
	mkdir(dir, 0700);
	d = opendir(dir);
	if (!d)
		return;
	while ((de = readdir(d))) {
		int idx;
		uint64_t lseq;
		char c;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (sscanf(de->d_name, "%d.%" SCNu64 "%c", &idx, &lseq, &c) != 2 ||
		    idx < 0 || idx >= MAX_SRC || !e->st->src[idx].used ||
		    lseq < e->st->src[idx].next) {
			unlink(path);
			continue;
		}
		atomic_fetch_add(&e->held_now, 1);
	}
	closedir(d);
	if (atomic_load(&e->held_now))
		LOG_INFO("%s: %" PRIu64 " record(s) held back from before the last stop",
			 e->chan, (uint64_t)atomic_load(&e->held_now));
}

/*
 * Commit one verified-on-arrival record as the next of source idx (idx < 0:
 * unsequenced). The CRC is checked again over the copy in the ring.
 * Returns 0, -ECANCELED (stopping), -EBADMSG (CRC mismatch in the ring copy).
 */
static int commit_rec(struct export *e, int idx, uint64_t lseq, const struct wire *w,
		      const void *data, uint32_t len, natsMsg *m, bool js)
{
	struct in_state *st = e->st;
	struct uhp_txn t;
	struct uhp_meta meta;
	uint32_t crc;

	if (!reserve_wait(e, len, &t, js ? m : NULL))
		return -ECANCELED;
	if (len)
		memcpy(t.payload, data, len);
	crc = rec_crc(len, w->type, w->flags, w->src, w->dst, w->useq, t.payload);
	if (crc != w->crc) {
		uhp_discard(e->ch, &t);
		return -EBADMSG;
	}
	meta = (struct uhp_meta){ .seq = w->useq, .src = w->src, .dst = w->dst,
				  .type = w->type };
	if (idx >= 0 && js) {
		/* Crash between commit and mark: see recover_pending(). */
		st->pend.src = (uint32_t)idx;
		st->pend.seq = lseq;
		st->pend.pos = t.pos;
		st->pend.ring = t.ring;
		st->pend.len = len;
		st->pend.salt = txn_salt(&t);
		atomic_store_explicit((_Atomic uint32_t *)&st->pend.valid, 1,
				      memory_order_release);
	}
	uhp_commit(e->ch, &t, &meta);
	lt_mark(LT_B_COMMIT, data, len);
	if (idx >= 0) {
		atomic_store_explicit((_Atomic uint64_t *)&st->src[idx].next, lseq + 1,
				      memory_order_release);
		if (js)
			atomic_store_explicit((_Atomic uint32_t *)&st->pend.valid, 0,
					      memory_order_release);
	}
	CNT_INC(e->committed);
	e->msg_bytes += UHP_REC_TOTAL(len);
	return 0;
}

static void hold_drain_run(struct export *e, int idx, natsMsg *m);

/*
 * After source idx advanced: commit what was held for it, in order. The
 * ring bytes that takes are not the current message's (msg_bytes sizes
 * the next pull: counting thousands of held records as one message made
 * every later pull ask for none, and the export stopped).
 */
static void hold_drain(struct export *e, int idx, natsMsg *m)
{
	uint64_t own = e->msg_bytes;

	hold_drain_run(e, idx, m);
	e->msg_bytes = own;
}

static void hold_drain_run(struct export *e, int idx, natsMsg *m)
{
	struct src_ent *s = &e->st->src[idx];

	while (atomic_load(&e->held_now) > 0 && !g_stop) {
		uint64_t q = s->next;
		struct wire w;
		void *data = NULL;
		uint32_t len;
		int rc;

		if (hold_get(e, idx, q, &w, &data, &len))
			return;
		rc = commit_rec(e, idx, q, &w, data, len, m, true);
		free(data);
		if (rc == -ECANCELED)
			return;
		if (rc == -EBADMSG) {	/* damaged on our disk */
			CNT_INC(e->crc_refused);
			CNT_INC(e->gaps);
			LOG_ERR("%s: held record %s/%" PRIu64 " failed its CRC: counted lost",
				e->chan, s->key, q);
			s->next = q + 1;
		}
		CNT_INC(e->unheld);
		hold_del(e, idx, q);
	}
}

/*
 * One record for an exported channel: verify, deduplicate, commit. key/lseq
 * are its link identity (key NULL: unsequenced). Returns what the record
 * asks of its JetStream message.
 */
static enum act in_record(struct export *e, const struct wire *wp, const char *data,
			  uint32_t len, const char *key, uint64_t lseq, natsMsg *m, bool js)
{
	struct in_state *st = e->st;
	struct wire w = *wp;
	int idx = -1, rc;
	struct src_ent *s = NULL;

	if (UHP_REC_TOTAL(len) > e->ring_bytes) {
		CNT_INC(e->too_big);
		LOG_RATE("warning", "%s: refused a %u-byte record: larger than the ring",
			 e->chan, len);
		return A_TERM;
	}
	if (key) {
		bool created;

		pthread_mutex_lock(&e->src_mu);	/* credit_cb() reads src[] */
		idx = src_lookup(e, key, &created);
		pthread_mutex_unlock(&e->src_mu);
		s = &st->src[idx];
		s->seen_ns = now_ns();
		if (created)
			LOG_INFO("%s: new source %s", e->chan, key);
		if (lseq != s->next &&
		    rec_crc(len, w.type, w.flags, w.src, w.dst, w.useq, data) != w.crc)
			goto bad_crc;
		if (lseq < s->next) {
			if (js) {
				CNT_INC(e->dups);
				return A_ACK;
			}
			CNT_INC(e->late);
			LOG_RATE("warning", "%s: dropped a late record %s/%" PRIu64 " (expected %" PRIu64 ")",
				 e->chan, key, lseq, s->next);
			return A_NONE;
		}
		if (lseq > s->next && js) {
			int64_t now = s->seen_ns;

			if (!s->wait_since_ns)
				s->wait_since_ns = now;
			if (C.gap_timeout_ms <= 0 ||
			    now - s->wait_since_ns < C.gap_timeout_ms * 1000000LL) {
				if (hold_exists(e, idx, lseq)) {
					CNT_INC(e->dups);
					return A_ACK;
				}
				if (atomic_load(&e->held_now) < C.max_hold &&
				    hold_put(e, idx, lseq, &w, data, len) == 0) {
					CNT_INC(e->held);
					return A_ACK;
				}
				CNT_INC(e->naks);
				return A_NAK;
			}
			/* Give up on the missing ones, keeping what was held. */
			CNT_INC(e->gap_timeouts);
			LOG_ERR("%s: gave up waiting %" PRId64 " ms for %s/%" PRIu64
				": records up to %" PRIu64 " that never came are counted lost",
				e->chan, C.gap_timeout_ms, key, s->next, lseq - 1);
			while (s->next < lseq && !g_stop) {
				if (hold_exists(e, idx, s->next))
					hold_drain(e, idx, m);
				else {
					CNT_INC(e->gaps);
					s->next++;
				}
			}
		} else if (lseq > s->next) {
			LOG_RATE("warning", "%s: gap from %s: %" PRIu64 " record(s) missing before %" PRIu64,
				 e->chan, key, lseq - s->next, lseq);
			CNT_ADD(e->gaps, lseq - s->next);
		}
		s->wait_since_ns = 0;
	}

	rc = commit_rec(e, idx, lseq, &w, data, len, m, js);
	if (rc == -ECANCELED)
		return A_NONE;
	if (rc == -EBADMSG)
		goto bad_crc;
	if (idx < 0)
		CNT_INC(e->unsequenced);
	if (s && js)
		hold_drain(e, idx, m);
	return A_ACK;

bad_crc:
	CNT_INC(e->crc_refused);
	LOG_RATE("warning", "%s: refused a record with a bad CRC (wire %08x, computed %08x, link %s/%" PRIu64 ")",
		 e->chan, w.crc, rec_crc(len, w.type, w.flags, w.src, w.dst, w.useq, data),
		 key ? key : "-", lseq);
	return A_TERM;
}

/* A batch frame: struct frame then len payload bytes (little-endian). */
struct frame {
	uint32_t len;
	uint16_t type, flags;
	uint32_t src, dst;
	uint64_t seq;
	uint32_t crc;
} __attribute__((packed));

/*
 * One NATS message for an exported channel: a single record (its meta in
 * the Uhp-* headers) or, with Uhp-Batch: N, N records framed in the payload
 * whose link sequences follow the one in Uhp-Link.
 */
static enum act in_handle(struct export *e, natsMsg *m, bool js)
{
	const char *link = NULL, *bv = NULL, *data = natsMsg_GetData(m);
	char key[SRC_KEY_MAX];
	uint64_t lseq = 0, n;
	uint32_t len = (uint32_t)natsMsg_GetDataLength(m);
	bool has_key = false;
	struct wire w;
	enum act a = A_ACK;

#ifdef UHP_BRIDGE_LATTRACE
	if (natsMsgHeader_Get(m, "Uhp-Batch", &bv) == NATS_OK && bv)
		lt_mark(LT_B_IN, data + sizeof(struct frame),
			len > sizeof(struct frame) ? len - (uint32_t)sizeof(struct frame) : 0);
	else
		lt_mark(LT_B_IN, data, len);
	bv = NULL;
#endif
	CNT_INC(e->received);
	if (natsMsgHeader_Get(m, "Uhp-Link", &link) != NATS_OK || !link)
		link = NULL;
	if (link) {
		has_key = parse_link(link, key, sizeof(key), &lseq);
		if (!has_key)
			CNT_INC(e->malformed);	/* a link we cannot read: unsequenced */
	}
	if (natsMsgHeader_Get(m, "Uhp-Batch", &bv) == NATS_OK && bv) {
		uint64_t off = 0;

		if (!parse_u64(bv, 10, &n) || n == 0 || !has_key) {
			CNT_INC(e->malformed);
			LOG_RATE("warning", "%s: refused a batch without a valid Uhp-Batch/Uhp-Link", e->chan);
			return A_TERM;
		}
		for (uint64_t i = 0; i < n; i++) {
			struct frame f;
			enum act r;

			if (off + sizeof(f) > len) {
				CNT_INC(e->malformed);
				LOG_RATE("warning", "%s: a batch from %s is truncated at record %" PRIu64,
					 e->chan, key, i);
				return a == A_NAK ? A_NAK : A_ACK;
			}
			memcpy(&f, data + off, sizeof(f));
			off += sizeof(f);
			if (f.len > len - off) {
				CNT_INC(e->malformed);
				LOG_RATE("warning", "%s: a batch from %s is truncated at record %" PRIu64,
					 e->chan, key, i);
				return a == A_NAK ? A_NAK : A_ACK;
			}
			w = (struct wire){ .src = f.src, .dst = f.dst, .crc = f.crc, .type = f.type,
					   .flags = f.flags, .useq = f.seq };
			if (i)
				CNT_INC(e->received);
			r = in_record(e, &w, data + off, f.len, key, lseq + i, m, js);
			off += f.len;
			if (r == A_NONE && g_stop)
				return A_NONE;
			if (r == A_NAK)
				a = A_NAK;
		}
		return a;
	}
	if (!parse_wire(m, &w)) {
		CNT_INC(e->malformed);
		LOG_RATE("warning", "%s: refused a message without valid Uhp-* headers (subject %s)",
			 e->chan, natsMsg_GetSubject(m));
		return A_TERM;
	}
	return in_record(e, &w, data, len, has_key ? key : NULL, lseq, m, js);
}

/*
 * After a crash, the one record that may have been committed without its
 * mark: look at its tag through a fresh reservation on the same ring.
 */
static void recover_pending(struct export *e)
{
	struct in_state *st = e->st;
	struct in_pending *p = &st->pend;
	struct src_ent *s;
	struct uhp_txn t;
	uint64_t used, size, salt, tag;
	const char *verdict;
	unsigned old_ring;
	int r;

	if (!p->valid)
		return;
	if (p->src >= MAX_SRC || !st->src[p->src].used) {
		p->valid = 0;
		return;
	}
	s = &st->src[p->src];
	if (s->next > p->seq) {		/* the mark made it */
		p->valid = 0;
		return;
	}
	old_ring = uhp_producer_ring(e->ch);
	if (p->ring >= uhp_nr_rings(e->ch) ||
	    uhp_ring_fill(e->ch, p->ring, &used, &size) ||
	    uhp_set_producer_ring(e->ch, p->ring)) {
		verdict = "unknown (ring gone)";
		CNT_INC(e->probe_unknown);
		s->next = p->seq + 1;
		goto out;
	}
	while ((r = uhp_reserve(e->ch, 0, &t)) == -EAGAIN && !g_stop)
		sleep_us(1000);
	if (r) {
		verdict = "unknown (no reservation)";
		CNT_INC(e->probe_unknown);
		s->next = p->seq + 1;
		goto out_ring;
	}
	salt = txn_salt(&t);
	if (salt != p->salt) {
		verdict = "unknown (the channel was re-created)";
		CNT_INC(e->probe_unknown);
		s->next = p->seq + 1;
	} else if (t.pos - p->pos >= size) {
		verdict = "unknown (the ring went round since)";
		CNT_INC(e->probe_unknown);
		s->next = p->seq + 1;
	} else {
		const char *base = (const char *)t.payload - UHP_REC_HDR_SIZE -
				   (t.pos & (size - 1));
		const struct uhp_rec_hdr *h =
			(const struct uhp_rec_hdr *)(base + (p->pos & (size - 1)));

		tag = __atomic_load_n(&h->tag, __ATOMIC_ACQUIRE);
		if (tag == (p->pos ^ salt)) {
			verdict = "committed";
			CNT_INC(e->probe_committed);
			s->next = p->seq + 1;
		} else if (tag == (p->pos ^ salt ^ UHP_TAG_BUSY)) {
			verdict = "not committed (will be redelivered)";
			CNT_INC(e->probe_uncommitted);
		} else {
			verdict = "unknown (overwritten)";
			CNT_INC(e->probe_unknown);
			s->next = p->seq + 1;
		}
	}
	uhp_discard(e->ch, &t);
out_ring:
	uhp_set_producer_ring(e->ch, old_ring);
out:
	LOG_INFO("%s: record %s/%" PRIu64 " in flight at the last stop: %s",
		 e->chan, s->key, p->seq, verdict);
	p->valid = 0;
}

static void core_msg_cb(natsConnection *nc, natsSubscription *sub, natsMsg *m,
			void *closure)
{
	(void)nc;
	(void)sub;
	in_handle(closure, m, false);
	natsMsg_Destroy(m);
}

/* Limit / CREDIT_SHARE / sources; a limit of 0 or less is none. */
static uint64_t credit_share(int64_t limit, int sources)
{
	if (limit <= 0)
		return UINT64_MAX;
	return (uint64_t)limit / CREDIT_SHARE / (uint64_t)sources;
}

/*
 * A sending bridge asks for credit (see CREDIT_REC_COST): the payload is
 * its link key, the answer "<mark> <msgs> <bytes>". Runs on nats.c's
 * thread, beside the puller: src[] entries are looked at under src_mu, a
 * mark is read as the puller stores it (release).
 */
static void credit_cb(natsConnection *nc, natsSubscription *sub, natsMsg *m,
		      void *closure)
{
	struct export *e = closure;
	const char *reply = natsMsg_GetReply(m);
	int len = natsMsg_GetDataLength(m), found = -1, sources = 0, n;
	char key[SRC_KEY_MAX], out[96];
	uint64_t mark = 0;
	int64_t now = now_ns();

	(void)sub;
	if (!reply || !*reply || len <= 0 || len >= SRC_KEY_MAX)
		goto out;
	memcpy(key, natsMsg_GetData(m), (size_t)len);
	key[len] = 0;
	pthread_mutex_lock(&e->src_mu);
	for (int i = 0; i < MAX_SRC; i++) {
		struct src_ent *s = &e->st->src[i];

		if (!s->used)
			continue;
		if (found < 0 && !strcmp(s->key, key)) {
			found = i;
			mark = atomic_load_explicit((_Atomic uint64_t *)&s->next,
						    memory_order_acquire) - 1;
			e->credit_ns[i] = now;
		}
		if (now - e->credit_ns[i] < CREDIT_ACTIVE_NS)
			sources++;
	}
	pthread_mutex_unlock(&e->src_mu);
	if (found < 0)		/* a link we have not heard of yet starts at 1 */
		sources++;
	n = snprintf(out, sizeof(out), "%" PRIu64 " %" PRIu64 " %" PRIu64, mark,
		     credit_share(e->max_msgs, sources), credit_share(e->max_bytes, sources));
	natsConnection_Publish(nc, reply, out, n);
	CNT_INC(e->credit_replies);
out:
	natsMsg_Destroy(m);
}

static int open_export_channel(struct export *e)
{
	struct uhp_open_opts o = UHP_OPEN_OPTS_INIT;
	uint64_t used;
	int r;

	o.flags = UHP_OPEN_CREATE;
	o.ring_size = (uint64_t)e->ring_size;
	r = uhp_open_channel(e->chan, &o, &e->ch);
	if (r < 0) {
		LOG_ERR("export %s: uhp_open_channel: %s", e->chan, strerror(-r));
		return r;
	}
	if (uhp_ring_fill(e->ch, uhp_producer_ring(e->ch), &used, &e->ring_bytes))
		e->ring_bytes = (uint64_t)e->ring_size;
	LOG_INFO("export %s (%s, %s): %s, subject %s%s%s", e->chan,
		 uhp_channel_kind(e->ch), r ? "created" : "attached",
		 mode_name(e->mode), e->subject,
		 e->mode == MODE_JS ? ", stream " : "",
		 e->mode == MODE_JS ? e->stream : "");
	return 0;
}

static int open_in_state(struct export *e)
{
	char name[UHP_NAME_MAX + 32];
	bool fresh;

	snprintf(name, sizeof(name), "in.%s.state", e->chan);
	e->st = map_file(name, sizeof(struct in_state), &fresh, &e->st_len);
	if (!e->st)
		return -EIO;
	if (fresh || memcmp(e->st->magic, IN_MAGIC, 8)) {
		if (!fresh)
			LOG_WARN("%s: %s is not a state file: starting afresh", e->chan, name);
		memset(e->st, 0, sizeof(*e->st));
		memcpy(e->st->magic, IN_MAGIC, 8);
		e->st->version = 1;
	}
	for (int i = 0; i < MAX_SRC; i++)
		e->st->src[i].wait_since_ns = 0;
	return 0;
}

static natsStatus ensure_stream(struct export *e)
{
	jsStreamConfig sc;
	jsStreamInfo *si = NULL;
	jsConsumerConfig cc;
	jsConsumerInfo *ci = NULL;
	jsErrCode jerr = 0;
	const char *subjects[1] = { e->subject };
	natsStatus s;

	jsStreamConfig_Init(&sc);
	sc.Name = e->stream;
	sc.Subjects = subjects;
	sc.SubjectsLen = 1;
	sc.Retention = js_WorkQueuePolicy;
	sc.Discard = js_DiscardNew;
	sc.Storage = C.memory_storage ? js_MemoryStorage : js_FileStorage;
	sc.Replicas = e->replicas;
	sc.MaxMsgs = e->max_msgs;
	sc.MaxBytes = e->max_bytes;
	sc.Duplicates = C.dup_window_ms * 1000000LL;
	s = js_AddStream(&si, g_js, &sc, NULL, &jerr);
	if (s != NATS_OK && jerr == JSStreamNameExistErr) {
		(void)0;
		s = js_UpdateStream(&si, g_js, &sc, NULL, &jerr);
	}
	if (s != NATS_OK) {
		LOG_RATE("warning", "%s: stream %s: %s (%d)", e->chan, e->stream,
			 nats_GetLastError(NULL), (int)jerr);
		return s;
	}
	jsStreamInfo_Destroy(si);

	jsConsumerConfig_Init(&cc);
	cc.Durable = "uhp-bridge";
	cc.AckPolicy = js_AckExplicit;
	cc.AckWait = C.ack_wait_ms * 1000000LL;
	cc.MaxAckPending = C.max_ack_pending;
	cc.MaxDeliver = -1;
	cc.DeliverPolicy = js_DeliverAll;
	cc.MaxWaiting = 512;
	s = js_AddConsumer(&ci, g_js, e->stream, &cc, NULL, &jerr);
	if (s != NATS_OK) {
		(void)0;
		s = js_UpdateConsumer(&ci, g_js, e->stream, &cc, NULL, &jerr);
	}
	if (s != NATS_OK) {
		LOG_RATE("warning", "%s: consumer on %s: %s (%d)", e->chan, e->stream,
			 nats_GetLastError(NULL), (int)jerr);
		return s;
	}
	jsConsumerInfo_Destroy(ci);
	LOG_INFO("%s: stream %s (R%d, %s, work queue) and its durable consumer are ready",
		 e->chan, e->stream, e->replicas, C.memory_storage ? "memory" : "file");
	return NATS_OK;
}

/* An outstanding pull request: its own reply subject, so we count exactly. */
/*
 * How many messages a pull may ask for with free bytes in the ring: as many
 * as fit if each takes as much as the largest of the last MSG_HIST ones
 * (a batch of 128 small records takes ~17 KB, a lone record ~100 B; an
 * average that adapts slowly asked for far more batches than fit, the
 * commit then waited for room while the rest sat unacknowledged in the
 * client's queue until the server redelivered them). Before the first
 * message, one: its size tells the next pull.
 */
static int64_t pull_room(const struct export *e, uint64_t free_bytes,
			 uint64_t ring_bytes)
{
	uint64_t per = 0;
	unsigned n = e->msg_hist_n < MSG_HIST ? e->msg_hist_n : MSG_HIST;

	for (unsigned i = 0; i < n; i++)
		if (e->msg_hist[i] > per)
			per = e->msg_hist[i];
	/* An empty ring always has room for one message, however big. */
	if (per > ring_bytes)
		per = ring_bytes;
	if (!per)
		return free_bytes ? 1 : 0;
	return (int64_t)(free_bytes / per);
}

/*
 * The bytes a pull may ask for (its max_bytes, as the server counts them:
 * headers and payload) with free bytes in the ring: as many as the recent
 * messages took on the wire per ring byte they took. A pull sized only by
 * count asked for hundreds of lone records' worth and got 17 KB batches:
 * the client's queue held far more than the ring, and what waited there
 * past ack_wait_ms was redelivered. Before the first message, one wire
 * byte per ring byte.
 */
static int64_t pull_max_bytes(const struct export *e, uint64_t free_bytes)
{
	uint64_t ring = 0, wire = 0;
	unsigned n = e->msg_hist_n < MSG_HIST ? e->msg_hist_n : MSG_HIST;

	for (unsigned i = 0; i < n; i++) {
		ring += e->msg_hist[i];
		wire += e->wire_hist[i];
	}
	if (!ring || !wire)
		return (int64_t)free_bytes;
	return (int64_t)(free_bytes * wire / ring);	/* < 2^30 * 2^31 */
}

/* A message's size as a pull's max_bytes counts it: the header block
 * ("NATS/1.0\r\n", "Key: value\r\n" each, "\r\n") and the payload. */
static int64_t wire_size(natsMsg *m)
{
	const char **keys = NULL;
	int nk = 0;
	int64_t sz = natsMsg_GetDataLength(m);

	if (natsMsgHeader_Keys(m, &keys, &nk) != NATS_OK)
		return sz;
	sz += 12;
	for (int i = 0; i < nk; i++) {
		const char **vals = NULL;
		int nv = 0;

		if (natsMsgHeader_Values(m, keys[i], &vals, &nv) != NATS_OK)
			continue;
		for (int j = 0; j < nv; j++)
			sz += (int64_t)(strlen(keys[i]) + strlen(vals[j]) + 4);
		free((void *)vals);
	}
	free((void *)keys);
	return sz;
}

/* No pull asks for fewer bytes than this: smaller than any record's
 * message, and a request with less left is counted as over. */
#define MIN_PULL_BYTES	256

struct pull_req {
	uint64_t id;
	int64_t batch, got;
	int64_t max_bytes, got_bytes;	/* max_bytes 0: no limit */
	int64_t deadline_ns;
	bool live;
};

#define MAX_REQS 4

static void *js_pull_thread(void *arg)
{
	struct export *e = arg;
	struct pull_req reqs[MAX_REQS] = { 0 };
	natsSubscription *sub = NULL;
	natsInbox *inbox = NULL;
	char subj[256], rsubj[192], next_subj[256], body[128];
	uint64_t req_id = 0;
	int64_t last_rx = now_ns(), last_probe = 0;
	bool room_waited = false;	/* no request out: the channel was full */
	size_t ilen;

	while (!g_stop && ensure_stream(e) != NATS_OK)
		for (int i = 0; i < 10 && !g_stop; i++)
			sleep_us(100000);
	if (g_stop)
		return NULL;
	natsInbox_Create(&inbox);
	snprintf(subj, sizeof(subj), "%s.*", inbox);
	ilen = strlen(inbox);
	if (natsConnection_SubscribeSync(&sub, g_nc_in, subj) != NATS_OK) {
		LOG_ERR("%s: subscribe %s: %s", e->chan, subj, nats_GetLastError(NULL));
		natsInbox_Destroy(inbox);
		return NULL;
	}
	natsSubscription_SetPendingLimits(sub, -1, -1);
	snprintf(next_subj, sizeof(next_subj), "$JS.API.CONSUMER.MSG.NEXT.%s.uhp-bridge",
		 e->stream);

	while (!g_stop) {
		int64_t now = now_ns(), outstanding = 0, out_bytes = 0;
		natsMsg *m = NULL;
		natsStatus s;
		int free_r = -1;

		for (int i = 0; i < MAX_REQS; i++) {
			struct pull_req *q = &reqs[i];

			if (q->live && now > q->deadline_ns)
				q->live = false;	/* lost (server gone): re-ask */
			/* bytes used up without the server's 409 (exactly
			 * exhausted): it delivers nothing more to it */
			if (q->live && q->max_bytes && q->max_bytes - q->got_bytes < MIN_PULL_BYTES)
				q->live = false;
			if (q->live) {
				outstanding += q->batch - q->got;
				if (q->max_bytes)
					out_bytes += q->max_bytes - q->got_bytes;
			} else if (free_r < 0) {
				free_r = i;
			}
		}
		/* Ask for more only while the ring has room for it. */
		if (free_r >= 0 && outstanding <= C.fetch_batch / 2) {
			uint64_t used = 0, size = 0, avail;
			int64_t room, want, mb;

			int fr = uhp_ring_fill(e->ch, uhp_producer_ring(e->ch), &used, &size);

			if (fr)
				LOG_RATE("warning", "%s: uhp_ring_fill: %s", e->chan, strerror(-fr));
			avail = size > used ? size - used : 0;
			room = pull_room(e, avail, size);
			want = room - outstanding;
			if (want > C.fetch_batch - outstanding)
				want = C.fetch_batch - outstanding;
			mb = pull_max_bytes(e, avail) - out_bytes;
			if (e->need_wire && mb < e->need_wire) {
				/* The next message is larger than what the
				 * ring took so far: an empty ring takes it,
				 * alone, whatever its size (and a record
				 * larger than the ring is refused then). */
				if (used || outstanding)
					want = 0;
				else
					want = 1, mb = 0;
			} else if (mb < MIN_PULL_BYTES) {
				want = 0;
			}
			if (room < 1 && outstanding == 0)
				room_waited = true;
			if (want >= 1 && (want * 4 >= (room < C.fetch_batch ? room : C.fetch_batch) ||
					  outstanding == 0)) {
				struct pull_req *r = &reqs[free_r];

				/* the stall clock runs from the first request
				 * after the channel had no room for any: that
				 * wait is ours, not the consumer's (requests
				 * that expire and are asked again are not) */
				if (room_waited && now > last_rx)
					last_rx = now;
				room_waited = false;
				r->id = ++req_id;
				r->batch = want;
				r->got = 0;
				r->max_bytes = mb;
				r->got_bytes = 0;
				r->deadline_ns = now + (C.fetch_expires_ms + 1000) * 1000000LL;
				r->live = true;
				snprintf(rsubj, sizeof(rsubj), "%s.%" PRIu64, inbox, r->id);
				if (mb)
					snprintf(body, sizeof(body),
						 "{\"batch\":%" PRId64 ",\"expires\":%" PRId64 ",\"max_bytes\":%" PRId64 "}",
						 want, (int64_t)(C.fetch_expires_ms * 1000000LL), mb);
				else
					snprintf(body, sizeof(body), "{\"batch\":%" PRId64 ",\"expires\":%" PRId64 "}",
						 want, (int64_t)(C.fetch_expires_ms * 1000000LL));
				if (natsConnection_PublishRequest(g_nc_in, next_subj, rsubj, body,
								  (int)strlen(body)) != NATS_OK) {
					r->live = false;
					sleep_us(10000);
				} else {
					CNT_INC(e->pulls);
					LOG_DBG("%s: pull %" PRIu64 " for %" PRId64 " / %" PRId64 " bytes (room %" PRId64
						", outstanding %" PRId64 ")", e->chan, r->id, want, mb, room, outstanding);
				}
				continue;
			}
		}
		/*
		 * A consumer whose leader sits on a replica that is behind (seen
		 * with nats-server 2.9 after a server was killed) takes our
		 * requests and delivers nothing. If we asked, got nothing for
		 * stall_ms and the stream (its leader's view) holds messages,
		 * have the consumer elect another leader.
		 */
		if (outstanding && C.stall_ms > 0 && now - last_rx > C.stall_ms * 1000000LL &&
		    now - last_probe > C.stall_ms * 1000000LL) {
			jsStreamInfo *si = NULL;
			jsErrCode jerr = 0;

			last_probe = now;
			if (js_GetStreamInfo(&si, g_js, e->stream, NULL, &jerr) == NATS_OK && si) {
				if (si->State.Msgs > 0) {
					char sd[256];
					natsMsg *resp = NULL;

					snprintf(sd, sizeof(sd), "$JS.API.CONSUMER.LEADER.STEPDOWN.%s.uhp-bridge",
						 e->stream);
					LOG_WARN("%s: nothing delivered for %" PRId64 " ms while the stream holds %" PRIu64
						 " message(s): asking the consumer to elect another leader",
						 e->chan, C.stall_ms, si->State.Msgs);
					if (natsConnection_RequestString(&resp, g_nc_in, sd, "", 2000) == NATS_OK)
						natsMsg_Destroy(resp);
					CNT_INC(e->stepdowns);
					for (int i = 0; i < MAX_REQS; i++)
						reqs[i].live = false;	/* ask the new leader */
				}
				jsStreamInfo_Destroy(si);
			}
			continue;
		}
		s = natsSubscription_NextMsg(&m, sub, outstanding ? 50 : 5);
		if (s != NATS_OK || !m) {
			if (s != NATS_TIMEOUT)
				(void)0;
			continue;
		}
		{
			const char *ms = natsMsg_GetSubject(m), *st = NULL;
			uint64_t id = 0;
			struct pull_req *r = NULL;

			if (strlen(ms) > ilen + 1)
				parse_u64(ms + ilen + 1, 10, &id);
			for (int i = 0; i < MAX_REQS; i++)
				if (reqs[i].live && reqs[i].id == id)
					r = &reqs[i];
			if (natsMsg_GetDataLength(m) == 0 &&
			    natsMsgHeader_Get(m, "Status", &st) == NATS_OK && st) {
				const char *desc = NULL;

				/* 100: heartbeat; 404/408/409: request over */
				if (strncmp(st, "100", 3) && r)
					r->live = false;
				/* 409 with nothing delivered: the next message
				 * is larger than the request's max_bytes */
				if (r && r->got == 0 && r->max_bytes && !strncmp(st, "409", 3) &&
				    natsMsgHeader_Get(m, "Description", &desc) == NATS_OK && desc &&
				    strstr(desc, "MaxBytes") && e->need_wire <= r->max_bytes) {
					e->need_wire = r->max_bytes + 1;
					LOG_DBG("%s: the next message is larger than %" PRId64 " bytes",
						e->chan, r->max_bytes);
				}
				natsMsg_Destroy(m);
				continue;
			}
			/* Deliveries carry the stream's subject, not the
			 * request's: the server fills waiting requests in order,
			 * so a message belongs to the oldest live one. */
			r = NULL;
			for (int i = 0; i < MAX_REQS; i++)
				if (reqs[i].live && (!r || reqs[i].id < r->id))
					r = &reqs[i];
			{
				enum act a;
				const char *reply = natsMsg_GetReply(m);
				int64_t wsz = wire_size(m);

				if (r) {
					r->got_bytes += wsz;
					if (++r->got >= r->batch)
						r->live = false;
				}
				e->need_wire = 0;
				e->msg_bytes = 0;
				a = in_handle(e, m, true);
				/* in_handle() may have waited long for room in the
				 * channel: that time is ours, not the consumer's */
				last_rx = now_ns();
				if (e->msg_bytes) {
					unsigned h = e->msg_hist_n++ % MSG_HIST;

					e->msg_hist[h] = e->msg_bytes > UINT32_MAX ? UINT32_MAX
										   : (uint32_t)e->msg_bytes;
					e->wire_hist[h] = wsz > UINT32_MAX ? UINT32_MAX : (uint32_t)wsz;
				}

				if (reply && *reply) {
					if (a == A_ACK) {
						natsConnection_Publish(g_nc_in, reply, "+ACK", 4);
						CNT_INC(e->acks);
					} else if (a == A_TERM) {
						natsConnection_Publish(g_nc_in, reply, "+TERM", 5);
					} else if (a == A_NAK) {
						char nak[64];
						int n = snprintf(nak, sizeof(nak), "-NAK {\"delay\":%" PRId64 "}",
								 (int64_t)(C.nak_delay_ms * 1000000LL));
						natsConnection_Publish(g_nc_in, reply, nak, n);
					}
				}
			}
			natsMsg_Destroy(m);
		}
	}
	natsSubscription_Unsubscribe(sub);
	natsSubscription_Destroy(sub);
	natsInbox_Destroy(inbox);
	return NULL;
}

static int start_export(struct export *e)
{
	int r;

	pthread_mutex_init(&e->src_mu, NULL);
	if ((r = open_export_channel(e)) || (r = open_in_state(e)))
		return r;
	if (e->mode == MODE_JS) {
		char subj[256];

		recover_pending(e);
		hold_scan(e);
		snprintf(subj, sizeof(subj), "%s.credit.%s.%s", C.prefix, C.host, e->chan);
		if (natsConnection_Subscribe(&e->credit_sub, g_nc_in, subj, credit_cb, e) != NATS_OK) {
			LOG_ERR("%s: subscribe %s: %s", e->chan, subj, nats_GetLastError(NULL));
			return -EIO;
		}
		if (pthread_create(&e->thr, NULL, js_pull_thread, e))
			return -errno;
		e->thr_started = true;
		return 0;
	}
	if (natsConnection_Subscribe(&e->sub, g_nc_in, e->subject, core_msg_cb, e) != NATS_OK) {
		LOG_ERR("%s: subscribe: %s", e->chan, nats_GetLastError(NULL));
		return -EIO;
	}
	natsSubscription_SetPendingLimits(e->sub, (int)C.core_pending_msgs,
					  (int)(C.core_pending_msgs > 8388607 ? INT_MAX
						: C.core_pending_msgs * 256));
	return 0;
}

/* ------------------------------------------------------------------ */
/* outbound                                                            */
/* ------------------------------------------------------------------ */

static int open_outbox(struct route *r)
{
	struct uhp_open_opts o = UHP_OPEN_OPTS_INIT;
	int rc;

	o.flags = UHP_OPEN_CREATE | UHP_OPEN_CONSUMER;
	o.ring_size = (uint64_t)r->ring_size;
	o.spin = (uint32_t)C.spin;
	rc = uhp_open_channel(r->outbox, &o, &r->ch);
	if (rc < 0) {
		LOG_ERR("outbox %s: uhp_open_channel: %s", r->outbox, strerror(-rc));
		return rc;
	}
	if (C.spin)
		uhp_set_spin(r->ch, (unsigned)C.spin);
	LOG_INFO("route %s -> %s/%s (%s, %s): %s, subject %s", r->outbox,
		 r->dst_host, r->dst_chan, uhp_channel_kind(r->ch),
		 rc ? "created" : "attached", mode_name(r->mode), r->subject);
	return 0;
}

/* The loss hook (UHP_BRIDGE_DROP_JS): true when n records are lost. */
static bool drop_by_hook(struct route *r, unsigned n)
{
	if (r->mode != MODE_JS)
		return false;
	if (!g_drop_js && (!g_drop_js_first || atomic_exchange(&r->first_dropped, true)))
		return false;
	CNT_ADD(r->dropped_by_hook, n);
	return true;
}

/* The corruption hook (UHP_BRIDGE_CORRUPT_EVERY): flip one bit of the copy
 * on the wire of every Nth record that has a payload. */
static void corrupt_by_hook(struct route *r, char *payload, uint32_t len)
{
	if (g_corrupt_every && len &&
	    atomic_fetch_add(&g_corrupt_count, 1) % g_corrupt_every == g_corrupt_every - 1) {
		payload[len / 2] ^= 0x10;
		CNT_INC(r->corrupted_by_hook);
	}
}

/* Add the link of the (first) record, lseq, publish m (whatever s says
 * of its headers so far) and destroy it. */
static natsStatus publish_link(struct route *r, natsMsg *m, uint64_t lseq, natsStatus s)
{
	char link[200];

	snprintf(link, sizeof(link), "%s%" PRIu64, r->link_pfx, lseq);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(m, "Uhp-Link", link);
	if (s == NATS_OK && r->mode == MODE_JS)
		s = natsMsgHeader_Set(m, "Nats-Msg-Id", link);
	if (s == NATS_OK)
		s = natsConnection_PublishMsg(g_nc_out, m);
	natsMsg_Destroy(m);
	return s;
}

/* Build and publish one record; the payload is copied by nats.c. */
static natsStatus publish_rec(struct route *r, const void *payload, uint32_t len,
			      const struct wire *w, uint64_t lseq, const char *reply)
{
	natsMsg *m = NULL;
	natsStatus s;

	if (drop_by_hook(r, 1))
		return NATS_OK;
	s = natsMsg_Create(&m, r->subject, reply, payload, (int)len);
	if (s != NATS_OK)
		return s;
	corrupt_by_hook(r, (char *)natsMsg_GetData(m), len);
	lt_mark(LT_A_PREPUB, payload, len);
	s = publish_link(r, m, lseq, set_headers(m, w));
	lt_mark(LT_A_PUB, payload, len);
	return s;
}

/* Publish frames [buf, buf+bytes) holding n records, the first lseq first. */
static natsStatus publish_batch(struct route *r, const char *buf, size_t bytes,
				unsigned n, uint64_t lseq, const char *reply)
{
	char nb[16];
	natsMsg *m = NULL;
	natsStatus s;

	if (drop_by_hook(r, n))
		return NATS_OK;
	snprintf(nb, sizeof(nb), "%u", n);
	s = natsMsg_Create(&m, r->subject, reply, buf, (int)bytes);
	if (s != NATS_OK)
		return s;
	if (g_corrupt_every) {
		/* per record inside the batch */
		char *d = (char *)natsMsg_GetData(m);
		size_t off = 0;

		for (unsigned i = 0; i < n; i++) {
			struct frame f;

			memcpy(&f, d + off, sizeof(f));
			corrupt_by_hook(r, d + off + sizeof(f), f.len);
			off += sizeof(f) + f.len;
		}
	}
	if (bytes > sizeof(struct frame))
		lt_mark(LT_A_PREPUB, buf + sizeof(struct frame), (uint32_t)(bytes - sizeof(struct frame)));
	s = publish_link(r, m, lseq, natsMsgHeader_Set(m, "Uhp-Batch", nb));
	if (bytes > sizeof(struct frame))
		lt_mark(LT_A_PUB, buf + sizeof(struct frame), (uint32_t)(bytes - sizeof(struct frame)));
	return s;
}

/* One record (w: its meta) or a batch of n (w NULL: frames in buf). */
static natsStatus publish_out(struct route *r, const char *buf, size_t bytes, unsigned n,
			      const struct wire *w, uint64_t lseq, const char *reply)
{
	if (w)
		return publish_rec(r, buf, (uint32_t)bytes, w, lseq, reply);
	return publish_batch(r, buf, bytes, n, lseq, reply);
}

static size_t frame_put(char *dst, const void *payload, uint32_t len, const struct wire *w)
{
	struct frame f = { .len = len, .type = w->type, .flags = w->flags, .src = w->src,
			   .dst = w->dst, .seq = w->useq, .crc = w->crc };

	memcpy(dst, &f, sizeof(f));
	memcpy(dst + sizeof(f), payload, len);
	return sizeof(f) + len;
}

/*
 * Core mode: publish until the client takes it (closed connection,
 * reconnect buffer full: the records are held, not dropped), the server
 * could never take it (NATS_MAX_PAYLOAD) or we stop. last_err NULL: no
 * warning.
 */
static natsStatus core_publish_held(struct route *r, const char *buf, size_t bytes,
				    unsigned n, const struct wire *w, int64_t *last_err)
{
	natsStatus s;

	while ((s = publish_out(r, buf, bytes, n, w, r->core_seq + 1, NULL)) != NATS_OK &&
	       s != NATS_MAX_PAYLOAD && !g_stop) {
		CNT_INC(r->pub_errors);
		if (last_err && now_ns() - *last_err > 1000000000LL) {
			LOG_WARN("%s: publish failed (%s): holding records",
				 r->outbox, natsStatus_GetText(s));
			*last_err = now_ns();
		}
		sleep_us(10000);
	}
	return s;
}

/*
 * Records were taken from the outbox: note when, and the mean gap between
 * such moments (a burst counts once), for outbox_wait().
 */
static void outbox_took(struct route *r)
{
	int64_t now = now_ns(), gap = now - r->last_take_ns;

	if (gap > 1000000000LL)
		gap = 1000000000LL;
	r->gap_ns = r->last_take_ns ? (r->gap_ns * 7 + gap) / 8 : gap;
	r->last_take_ns = now;
}

/*
 * Wait for records in the outbox. A thread that sleeps costs every record
 * that finds it asleep a wakeup (the futex, the scheduler, on a VM an idle
 * vCPU's exit): tens to hundreds of us on the path that is measured. So
 * while records came often lately (their mean gap within spin_us), poll
 * the outbox until spin_us after the last one, yielding the CPU every 32
 * checks, and only then sleep. Records that come less often than that
 * never make it spin: an idle or slow route costs no CPU.
 */
static int outbox_wait(struct route *r, int timeout_ms)
{
	if (C.spin_us > 0 && r->last_take_ns && r->gap_ns <= C.spin_us * 1000) {
		int64_t end = r->last_take_ns + C.spin_us * 1000;

		for (unsigned i = 1; !g_stop && now_ns() < end; i++) {
			if (uhp_wait(r->ch, 0) == 1)
				return 1;
			if (i % 32)
				cpu_relax();
			else
				sched_yield();
		}
	}
	return uhp_wait(r->ch, timeout_ms);
}

static void *core_route_thread(void *arg)
{
	struct route *r = arg;
	int64_t last_err = 0;
	size_t cap = (size_t)r->batch_bytes + sizeof(struct frame);
	char *buf = malloc(cap);

	if (!buf) {	/* a route that cannot run stops the bridge, loudly */
		LOG_ERR("%s: out of memory for the batch buffer: stopping", r->outbox);
		g_stop = 1;
		return NULL;
	}
	while (!g_stop) {
		struct uhp_rx rx;
		unsigned n = 0;
		size_t bytes = 0;
		natsStatus s = NATS_OK;
		int rc;

		/* Natural batching: as many records as are there, no waiting. */
		if (uhp_wait(r->ch, 0) == 1)
			outbox_took(r);
		while (n < (unsigned)r->batch && (rc = uhp_peek(r->ch, &rx)) == 0) {
			struct wire w = { .src = rx.meta.src, .dst = rx.meta.dst,
					  .crc = rx.crc, .type = rx.meta.type,
					  .flags = rx.meta.flags, .useq = rx.meta.seq };

			lt_mark(LT_A_PEEK, rx.payload, rx.len);
			if (r->batch > 1 && sizeof(struct frame) + rx.len <= cap) {
				if (n && bytes + sizeof(struct frame) + rx.len > cap)
					break;		/* next batch */
				bytes += frame_put(buf + bytes, rx.payload, rx.len, &w);
				uhp_release(r->ch, &rx);
				n++;
				CNT_INC(r->forwarded);
				continue;
			}
			if (n)
				break;			/* a big one: after this batch */
			/* one record, its meta in headers */
			s = core_publish_held(r, rx.payload, rx.len, 1, &w, &last_err);
			if (s == NATS_MAX_PAYLOAD) {
				CNT_INC(r->too_big);
				LOG_RATE("error", "%s: a %u-byte record exceeds the server's max_payload: dropped",
					 r->outbox, rx.len);
			} else if (s == NATS_OK) {
				r->core_seq++;
				CNT_INC(r->published);
			}
			uhp_release(r->ch, &rx);
			CNT_INC(r->forwarded);
			n = 0;
			bytes = 0;
			goto next;
		}
		/* A lone record too goes framed (only with batch > 1: the
		 * subscriber is a bridge): two headers to write and parse
		 * instead of seven, on the path of every record that finds
		 * the route idle. */
		if (n)
			s = core_publish_held(r, buf, bytes, n, NULL, &last_err);
		if (n) {
			if (s == NATS_MAX_PAYLOAD) {
				CNT_ADD(r->too_big, n);
				LOG_RATE("error", "%s: a batch exceeds the server's max_payload: lower batch_bytes",
					 r->outbox);
			}
			r->core_seq += n;	/* lost ones show as a gap */
			CNT_ADD(r->published, n);
			continue;
		}
		outbox_wait(r, 100);
next:		;
	}
	free(buf);
	return NULL;
}

/* ---- spool ---- */

static void spool_commit(struct route *r)
{
	uint64_t g = atomic_load_explicit(&r->sp->gen, memory_order_relaxed);

	r->sp->st[(g + 1) & 1] = r->cur;
	atomic_store_explicit(&r->sp->gen, g + 1, memory_order_release);
}

static struct spool_ent *spool_at(struct route *r, uint64_t off)
{
	return (struct spool_ent *)(r->sp_data + (off & (r->sp->size - 1)));
}

static int open_spool(struct route *r)
{
	char name[UHP_NAME_MAX + 32];
	bool fresh;
	size_t want = SPOOL_HDR + (size_t)C.spool_bytes;
	struct spool_hdr *h;

	snprintf(name, sizeof(name), "out.%s.spool", r->outbox);
	h = map_file(name, want, &fresh, &r->sp_len);
	if (!h)
		return -EIO;
	if (fresh || memcmp(h->magic, SPOOL_MAGIC, 8) || h->hdr_size != SPOOL_HDR ||
	    h->size + SPOOL_HDR > r->sp_len || (h->size & (h->size - 1))) {
		if (!fresh)
			LOG_WARN("%s: %s is not a spool: starting a new link instance",
				 r->outbox, name);
		memset(h, 0, SPOOL_HDR);
		memcpy(h->magic, SPOOL_MAGIC, 8);
		h->version = 1;
		h->hdr_size = SPOOL_HDR;
		h->size = (uint64_t)C.spool_bytes;
		h->instance = rand64();
		h->st[0].head_seq = h->st[0].next_seq = 1;
		h->st[1] = h->st[0];
	}
	r->sp = h;
	r->sp_data = (unsigned char *)h + SPOOL_HDR;
	r->cur = h->st[atomic_load(&h->gen) & 1];
	r->instance = h->instance;
	return 0;
}

/* A new ack or credit: wake the route thread if it sleeps for one. */
static void route_wake(struct route *r)
{
	if (atomic_load(&r->waiting)) {
		pthread_mutex_lock(&r->mu);
		pthread_cond_signal(&r->cv);
		pthread_mutex_unlock(&r->mu);
	}
}

static void on_puback(natsConnection *nc, natsSubscription *sub, natsMsg *m,
		      void *closure)
{
	struct route *r = closure;
	const char *subj = natsMsg_GetSubject(m), *dot = strrchr(subj, '.');
	const char *data = natsMsg_GetData(m), *st = NULL;
	int dlen = natsMsg_GetDataLength(m);
	uint64_t seq, cnt;
	char first[32];
	const char *dot1;
	uint32_t to = S_ACKED;
	bool any = false;

	(void)nc;
	(void)sub;
	/* <ack_pfx>.<first lseq>.<count> */
	if (!dot || !parse_u64(dot + 1, 10, &cnt) || cnt == 0 || cnt > r->cap)
		goto out;
	for (dot1 = dot - 1; dot1 > subj && *dot1 != '.'; dot1--)
		;
	if (*dot1 != '.' || (size_t)(dot - dot1 - 1) >= sizeof(first))
		goto out;
	memcpy(first, dot1 + 1, (size_t)(dot - dot1 - 1));
	first[dot - dot1 - 1] = 0;
	if (!parse_u64(first, 10, &seq))
		goto out;
	if (dlen == 0 && natsMsgHeader_Get(m, "Status", &st) == NATS_OK && st) {
		to = S_FAILED;		/* 503: no stream (yet) */
		LOG_RATE("warning", "%s: publish to %s: status %s (no stream yet?)",
			 r->outbox, r->subject, st);
	} else if (dlen > 0 && data && memmem(data, (size_t)dlen, "\"error\"", 7)) {
		to = S_FAILED;
		LOG_RATE("warning", "%s: publish to %s refused: %.*s", r->outbox,
			 r->subject, dlen > 200 ? 200 : dlen, data);
	} else if (dlen > 0 && data && memmem(data, (size_t)dlen, "\"duplicate\":true", 16)) {
		CNT_INC(r->dup_acks);
	}
	for (uint64_t q = seq; q < seq + cnt; q++) {
		struct slot *sl = &r->slots[q & (r->cap - 1)];
		uint32_t want = S_SENT;

		if (atomic_load(&sl->seq) != q ||
		    !atomic_compare_exchange_strong(&sl->state, &want, to))
			continue;
		any = true;
		if (to == S_FAILED) {
			CNT_INC(r->pub_failed);
			atomic_store(&r->failed_any, 1);
		} else {
			CNT_INC(r->acked);
		}
	}
	if (any)
		route_wake(r);
out:
	natsMsg_Destroy(m);
}

/*
 * Jetstream: publish the spooled records first .. first + n - 1 (one
 * record, its meta in w, or a batch of n frames in buf) with the PubAck to
 * <ack_pfx>.<first>.<n>; their slots are sent, or failed (to be resent)
 * if the client refused the publish.
 */
static bool js_publish(struct route *r, uint64_t first, unsigned n, const char *buf,
		       size_t bytes, const struct wire *w)
{
	char reply[160];
	int64_t t = now_ns();
	natsStatus s;

	for (uint64_t q = first; q < first + n; q++) {
		struct slot *sl = &r->slots[q & (r->cap - 1)];

		sl->sent_ns = t;
		atomic_store(&sl->state, S_SENT);
	}
	snprintf(reply, sizeof(reply), "%s.%" PRIu64 ".%u", r->ack_pfx, first, n);
	s = publish_out(r, buf, bytes, n, w, first, reply);
	if (s != NATS_OK) {
		CNT_INC(r->pub_errors);
		for (uint64_t q = first; q < first + n; q++)
			atomic_store(&r->slots[q & (r->cap - 1)].state, S_FAILED);
		atomic_store(&r->failed_any, 1);
		return false;
	}
	CNT_ADD(r->published, n);
	return true;
}

/* One spooled record, alone (the first of a batch of one, a resend). */
static bool js_publish_slot(struct route *r, uint64_t seq)
{
	struct spool_ent *en = spool_at(r, r->slots[seq & (r->cap - 1)].off);
	struct wire w = { .src = en->src, .dst = en->dst, .crc = en->crc,
			  .type = en->type, .flags = en->flags, .useq = en->useq };

	return js_publish(r, seq, 1, (const char *)(en + 1), en->len, &w);
}

/* The receiver's grant (see CREDIT_REC_COST); a stale one is ignored. */
static void on_credit(natsConnection *nc, natsSubscription *sub, natsMsg *m,
		      void *closure)
{
	struct route *r = closure;
	char buf[96];
	int len = natsMsg_GetDataLength(m);
	uint64_t mark, msgs, bytes;

	(void)nc;
	(void)sub;
	if (len <= 0 || len >= (int)sizeof(buf))
		goto out;
	memcpy(buf, natsMsg_GetData(m), (size_t)len);
	buf[len] = 0;
	if (sscanf(buf, "%" SCNu64 " %" SCNu64 " %" SCNu64, &mark, &msgs, &bytes) != 3) {
		LOG_RATE("warning", "%s: a credit answer we cannot read: %s", r->outbox, buf);
		goto out;
	}
	/* the receiver moved on: ask again soon; it did not: less often */
	if (mark > atomic_load(&r->credit_mark))
		atomic_store(&r->credit_ivl_ns, 1000000LL);
	else if (atomic_load(&r->credit_ivl_ns) < 100000000LL)
		atomic_store(&r->credit_ivl_ns, atomic_load(&r->credit_ivl_ns) * 2);
	if (mark >= atomic_load(&r->credit_mark)) {
		atomic_store(&r->credit_msgs, msgs);
		atomic_store(&r->credit_bytes, bytes);
		atomic_store(&r->credit_mark, mark);
	}
	atomic_store(&r->credit_asked, 0);
	route_wake(r);
out:
	natsMsg_Destroy(m);
}

/* Does the grant let us take a record of len payload bytes as the next? */
static bool credit_allows(struct route *r, uint32_t len)
{
	uint64_t mark = atomic_load(&r->credit_mark), last = r->cur.next_seq - 1;
	uint64_t msgs, bytes;

	if (mark >= last)
		return true;	/* nothing of ours waits: one record always goes */
	msgs = last - mark;
	/* sizes from before our start, or too many back: wait for the mark */
	if (mark + 1 < r->cost_base || msgs >= CREDIT_RING)
		return false;
	bytes = r->cost_total - (mark + 1 == r->cost_base ? 0 :
				 r->cost_cum[mark % CREDIT_RING]);
	return msgs < atomic_load(&r->credit_msgs) &&
	       bytes + len + CREDIT_REC_COST <= atomic_load(&r->credit_bytes);
}

static void credit_took(struct route *r, uint64_t seq, uint32_t len)
{
	r->cost_total += len + CREDIT_REC_COST;
	r->cost_cum[seq % CREDIT_RING] = r->cost_total;
}

/* Ask for a fresh grant: often while we wait for one, now and then while
 * records of ours wait at the receiver (its mark moves on). */
static void credit_ask(struct route *r, bool blocked)
{
	int64_t now = now_ns(), since = now - r->credit_ask_ns;

	if (!blocked && atomic_load(&r->credit_mark) + 1 >= r->cur.next_seq &&
	    r->credit_ask_ns)
		return;
	if (atomic_load(&r->credit_asked) && since < 500000000LL)
		return;
	if (since < (blocked ? atomic_load(&r->credit_ivl_ns) : 50000000LL))
		return;
	r->credit_ask_ns = now;
	atomic_store(&r->credit_asked, 1);
	/* link_pfx without its trailing '/': the key */
	natsConnection_PublishRequest(g_nc_out, r->credit_subj, r->credit_inbox, r->link_pfx,
				      (int)strlen(r->link_pfx) - 1);
}

/* Room for an entry of total bytes at the tail (with a pad to wrap)? */
static bool spool_room(struct route *r, uint64_t total, uint64_t *pad)
{
	uint64_t size = r->sp->size, off = r->cur.tail_off & (size - 1);
	uint64_t used = r->cur.tail_off - r->cur.head_off;

	*pad = off + total > size ? size - off : 0;
	return total <= size / 2 && used + *pad + total <= size;
}

static void *js_route_thread(void *arg)
{
	struct route *r = arg;
	int64_t last_scan = 0, backoff_ms = 50;
	bool deferred = false, credit_blocked = false;
	natsInbox *inbox = NULL;
	char subj[200];

	/* PubAcks come back on <inbox>.<lseq>. */
	natsInbox_Create(&inbox);
	snprintf(r->ack_pfx, sizeof(r->ack_pfx), "%s", inbox);
	natsInbox_Destroy(inbox);
	snprintf(subj, sizeof(subj), "%s.*.*", r->ack_pfx);
	if (natsConnection_Subscribe(&r->acksub, g_nc_out, subj, on_puback, r) != NATS_OK) {
		LOG_ERR("%s: subscribe %s: %s", r->outbox, subj, nats_GetLastError(NULL));
		return NULL;
	}
	natsSubscription_SetPendingLimits(r->acksub, -1, -1);
	natsInbox_Create(&inbox);
	snprintf(r->credit_inbox, sizeof(r->credit_inbox), "%s", inbox);
	natsInbox_Destroy(inbox);
	if (natsConnection_Subscribe(&r->credit_sub, g_nc_out, r->credit_inbox, on_credit, r) != NATS_OK) {
		LOG_ERR("%s: subscribe %s: %s", r->outbox, r->credit_inbox, nats_GetLastError(NULL));
		return NULL;
	}

	/* Whatever the spool holds was not acked: send it again first. */
	{
		uint64_t off = r->cur.head_off, seq = r->cur.head_seq;

		while (off != r->cur.tail_off) {
			struct spool_ent *en = spool_at(r, off);

			if (en->kind == ENT_REC) {
				struct slot *sl = &r->slots[seq & (r->cap - 1)];

				atomic_store(&sl->seq, seq);
				sl->off = off;
				sl->tries = 0;
				js_publish_slot(r, seq);
				CNT_INC(r->recovered);
				seq++;
			}
			off += en->total;
		}
		if (seq != r->cur.next_seq)
			LOG_ERR("%s: spool holds seqs up to %" PRIu64 ", state says %" PRIu64,
				r->outbox, seq, r->cur.next_seq);
		if (CNT_GET(r->recovered))
			LOG_INFO("%s: resending %" PRIu64 " record(s) from the spool (%" PRIu64 "..%" PRIu64 ")",
				 r->outbox, CNT_GET(r->recovered), r->cur.head_seq, seq - 1);
	}

	while (!g_stop) {
		bool progress = false, popped = false;
		int64_t now;

		credit_ask(r, credit_blocked);
		credit_blocked = false;

		/* 1. drop what the stream acknowledged, in order */
		while (r->cur.head_seq < r->cur.next_seq) {
			struct slot *sl = &r->slots[r->cur.head_seq & (r->cap - 1)];
			struct spool_ent *en;

			if (atomic_load(&sl->state) != S_ACKED)
				break;
			en = spool_at(r, r->cur.head_off);
			if (en->kind == ENT_PAD) {
				r->cur.head_off += en->total;
				continue;
			}
			atomic_store(&sl->state, S_FREE);
			r->cur.head_off += en->total;
			r->cur.head_seq++;
			popped = true;
		}
		/* pads left at the head once the records are gone */
		while (r->cur.head_off != r->cur.tail_off &&
		       spool_at(r, r->cur.head_off)->kind == ENT_PAD)
			r->cur.head_off += spool_at(r, r->cur.head_off)->total, popped = true;
		if (popped) {
			spool_commit(r);
			progress = true;
		}

		/* 2. resend failures and records acked by nobody in time, oldest
		 * first and a bounded number per round; while some wait for
		 * their back-off, take nothing new (it would overtake them) */
		now = now_ns();
		if (atomic_load(&r->resend_all) || atomic_load(&r->failed_any) ||
		    now - last_scan > 100000000LL) {
			bool all = atomic_exchange(&r->resend_all, 0);
			bool any_failed = false;
			int budget = 512;

			atomic_store(&r->failed_any, 0);
			last_scan = now;
			deferred = false;
			for (uint64_t q = r->cur.head_seq; q < r->cur.next_seq && !g_stop; q++) {
				struct slot *sl = &r->slots[q & (r->cap - 1)];
				uint32_t stt = atomic_load(&sl->state);

				if (stt == S_FAILED) {
					any_failed = true;
					if (now - sl->sent_ns < backoff_ms * 1000000LL || budget <= 0) {
						deferred = true;
						continue;
					}
				} else if (!(stt == S_SENT &&
					     (all || now - sl->sent_ns > C.retry_ms * 1000000LL))) {
					continue;
				}
				if (budget-- <= 0) {
					deferred = true;
					continue;
				}
				CNT_INC(r->retransmits);
				sl->tries++;
				js_publish_slot(r, q);
				progress = true;
			}
			if (any_failed) {
				if (backoff_ms < 1000)
					backoff_ms *= 2;
			} else {
				backoff_ms = 50;
			}
		}

		/* 3. take new records from the outbox while the window has room,
		 * and publish what was there as one batch (natural batching) */
		{
			uint64_t first = r->cur.next_seq;
			unsigned nb = 0;
			bool took = false;
			size_t bytes = 0;

			for (int n = 0; n < 256 && !g_stop && !deferred && !atomic_load(&r->failed_any) &&
			     r->cur.next_seq - r->cur.head_seq < (uint64_t)C.max_inflight; n++) {
				struct uhp_rx rx;
				struct spool_ent *en;
				struct slot *sl;
				uint64_t total, pad, seq;
				struct wire w;

				if (nb >= (unsigned)r->batch)
					break;
				if (uhp_peek(r->ch, &rx))
					break;
				lt_mark(LT_A_PEEK, rx.payload, rx.len);
				if (r->cur.last_valid && rx.meta.ring == r->cur.last_ring &&
				    rx.pos == r->cur.last_pos && rx.crc == r->cur.last_crc &&
				    rx.len == r->cur.last_len) {
					/* spooled before the crash, never released */
					uhp_release(r->ch, &rx);
					r->cur.last_valid = 0;
					continue;
				}
				if (!credit_allows(r, rx.len)) {
					if (!credit_blocked)
						CNT_INC(r->credit_waits);
					credit_blocked = true;
					break;
				}
				total = ENT_TOTAL(rx.len);
				if (total > r->sp->size / 2) {
					CNT_INC(r->too_big);
					LOG_RATE("error", "%s: a %u-byte record does not fit the spool: dropped",
						 r->outbox, rx.len);
					uhp_release(r->ch, &rx);
					continue;
				}
				if (nb && bytes + sizeof(struct frame) + rx.len > r->batch_cap)
					break;	/* the next batch */
				if (!spool_room(r, total, &pad))
					break;
				if (pad) {
					en = spool_at(r, r->cur.tail_off);
					en->total = (uint32_t)pad;
					en->kind = ENT_PAD;
					r->cur.tail_off += pad;
				}
				seq = r->cur.next_seq;
				en = spool_at(r, r->cur.tail_off);
				en->total = (uint32_t)total;
				en->kind = ENT_REC;
				en->seq = seq;
				en->len = rx.len;
				en->crc = rx.crc;
				en->src = rx.meta.src;
				en->dst = rx.meta.dst;
				en->useq = rx.meta.seq;
				en->type = rx.meta.type;
				en->flags = rx.meta.flags;
				en->src_ring = rx.meta.ring;
				en->src_pos = rx.pos;
				memcpy(en + 1, rx.payload, rx.len);
				sl = &r->slots[seq & (r->cap - 1)];
				atomic_store(&sl->seq, seq);
				sl->off = r->cur.tail_off;
				sl->tries = 0;
				r->cur.tail_off += total;
				r->cur.next_seq = seq + 1;
				r->cur.last_ring = rx.meta.ring;
				r->cur.last_pos = rx.pos;
				r->cur.last_crc = rx.crc;
				r->cur.last_len = rx.len;
				r->cur.last_valid = 1;
				credit_took(r, seq, rx.len);
				spool_commit(r);		/* now it is ours ... */
				uhp_release(r->ch, &rx);	/* ... and no longer the ring's */
				CNT_INC(r->forwarded);
				if (!took)
					outbox_took(r);
				took = true;
				progress = true;
				if (sizeof(struct frame) + en->len > r->batch_cap) {
					/* too big to batch: alone, after the batch */
					if (nb)
						break;
					js_publish_slot(r, seq);
					first = r->cur.next_seq;
					continue;
				}
				w = (struct wire){ .src = en->src, .dst = en->dst, .crc = en->crc,
						   .type = en->type, .flags = en->flags, .useq = en->useq };
				bytes += frame_put(r->batch_buf + bytes, en + 1, en->len, &w);
				nb++;
			}
			/* framed even alone unless batch=1 (see core_route_thread()) */
			if (nb == 1 && r->batch == 1)
				js_publish_slot(r, first);
			else if (nb)
				js_publish(r, first, nb, r->batch_buf, bytes, NULL);
		}
		if (progress)
			continue;

		/* 4. nothing to do: wait for records, acks, credit or a timer */
		if (credit_blocked ||
		    r->cur.next_seq - r->cur.head_seq >= (uint64_t)C.max_inflight ||
		    uhp_wait(r->ch, 0) != 1) {
			bool full = credit_blocked ||
				    r->cur.next_seq - r->cur.head_seq >= (uint64_t)C.max_inflight;

			if (!full && r->cur.next_seq == r->cur.head_seq) {
				outbox_wait(r, 50);
			} else if (!full) {
				outbox_wait(r, 2);
			} else {
				struct timespec ts;

				clock_gettime(CLOCK_REALTIME, &ts);
				ts.tv_nsec += 2000000;
				if (ts.tv_nsec >= 1000000000L) {
					ts.tv_sec++;
					ts.tv_nsec -= 1000000000L;
				}
				pthread_mutex_lock(&r->mu);
				atomic_store(&r->waiting, 1);
				{
					struct slot *sl = &r->slots[r->cur.head_seq & (r->cap - 1)];
					if (credit_blocked || atomic_load(&sl->state) != S_ACKED)
						pthread_cond_timedwait(&r->cv, &r->mu, &ts);
				}
				atomic_store(&r->waiting, 0);
				pthread_mutex_unlock(&r->mu);
			}
		}
	}
	return NULL;
}

static int start_route(struct route *r)
{
	int rc;

	if ((rc = open_outbox(r)))
		return rc;
	if (r->mode == MODE_CORE) {
		r->instance = rand64();
		snprintf(r->link_pfx, sizeof(r->link_pfx), "%s/%s/%016" PRIx64 "/",
			 C.host, r->outbox, r->instance);
		if (pthread_create(&r->thr, NULL, core_route_thread, r))
			return -errno;
		r->thr_started = true;
		return 0;
	}
	if ((rc = open_spool(r)))
		return rc;
	snprintf(r->link_pfx, sizeof(r->link_pfx), "%s/%s/%016" PRIx64 "/",
		 C.host, r->outbox, r->instance);
	{
		uint64_t n = r->cur.next_seq - r->cur.head_seq, want = (uint64_t)C.max_inflight;

		if (n > want)
			want = n;
		r->cap = 1;
		while (r->cap < want)
			r->cap <<= 1;
	}
	r->slots = calloc(r->cap, sizeof(*r->slots));
	r->batch_cap = (size_t)r->batch_bytes;
	r->batch_buf = malloc(r->batch_cap + sizeof(struct frame));
	r->cost_cum = calloc(CREDIT_RING, sizeof(*r->cost_cum));
	if (!r->slots || !r->batch_buf || !r->cost_cum)
		return -ENOMEM;
	r->cost_base = r->cur.next_seq;
	r->credit_ivl_ns = 1000000LL;
	snprintf(r->credit_subj, sizeof(r->credit_subj), "%s.credit.%s.%s", C.prefix,
		 r->dst_host, r->dst_chan);
	pthread_mutex_init(&r->mu, NULL);
	{
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_cond_init(&r->cv, &ca);
	}
	LOG_INFO("%s: spool instance %016" PRIx64 ", next seq %" PRIu64 ", %" PRIu64 " unacked",
		 r->outbox, r->instance, r->cur.next_seq, r->cur.next_seq - r->cur.head_seq);
	if (pthread_create(&r->thr, NULL, js_route_thread, r))
		return -errno;
	r->thr_started = true;
	return 0;
}

/* ------------------------------------------------------------------ */
/* stats                                                               */
/* ------------------------------------------------------------------ */

static void write_stats(bool final)
{
	char path[PATH_MAX + 64], tmp[PATH_MAX + 64];
	FILE *f;

	snprintf(path, sizeof(path), "%s/stats.json", C.state_dir);
	snprintf(tmp, sizeof(tmp), "%s/.stats.json.tmp", C.state_dir);
	f = fopen(tmp, "w");
	if (!f)
		return;
	fprintf(f, "{\"host\":\"%s\",\"pid\":%d,\"final\":%s,\"exports\":[", C.host,
		(int)getpid(), final ? "true" : "false");
	for (int i = 0; i < C.nexports; i++) {
		struct export *e = C.exports[i];
		int64_t dropped = 0;

		if (e->sub)
			natsSubscription_GetDropped(e->sub, &dropped);
		fprintf(f, "%s{\"channel\":\"%s\",\"mode\":\"%s\",\"subject\":\"%s\","
			"\"received\":%" PRIu64 ",\"committed\":%" PRIu64 ",\"crc_refused\":%" PRIu64
			",\"malformed\":%" PRIu64 ",\"dups\":%" PRIu64 ",\"gaps\":%" PRIu64
			",\"late\":%" PRIu64 ",\"naks\":%" PRIu64 ",\"full_waits\":%" PRIu64
			",\"unsequenced\":%" PRIu64 ",\"too_big\":%" PRIu64
			",\"gap_timeouts\":%" PRIu64 ",\"probe_committed\":%" PRIu64
			",\"probe_uncommitted\":%" PRIu64 ",\"probe_unknown\":%" PRIu64
			",\"evictions\":%" PRIu64 ",\"pulls\":%" PRIu64 ",\"held\":%" PRIu64
			",\"unheld\":%" PRIu64 ",\"held_now\":%" PRId64 ",\"stepdowns\":%" PRIu64
			",\"credit_replies\":%" PRIu64 ",\"slow_consumer_drops\":%" PRId64 "}",
			i ? "," : "", e->chan, mode_name(e->mode), e->subject,
			CNT_GET(e->received), CNT_GET(e->committed), CNT_GET(e->crc_refused),
			CNT_GET(e->malformed), CNT_GET(e->dups), CNT_GET(e->gaps),
			CNT_GET(e->late), CNT_GET(e->naks), CNT_GET(e->full_waits),
			CNT_GET(e->unsequenced), CNT_GET(e->too_big), CNT_GET(e->gap_timeouts),
			CNT_GET(e->probe_committed), CNT_GET(e->probe_uncommitted),
			CNT_GET(e->probe_unknown), CNT_GET(e->evictions), CNT_GET(e->pulls),
			CNT_GET(e->held), CNT_GET(e->unheld), (int64_t)atomic_load(&e->held_now),
			CNT_GET(e->stepdowns), CNT_GET(e->credit_replies), dropped);
	}
	fprintf(f, "],\"routes\":[");
	for (int i = 0; i < C.nroutes; i++) {
		struct route *r = C.routes[i];
		uint64_t inflight = r->sp ? r->cur.next_seq - r->cur.head_seq : 0;

		fprintf(f, "%s{\"outbox\":\"%s\",\"dest\":\"%s/%s\",\"mode\":\"%s\",\"subject\":\"%s\","
			"\"instance\":\"%016" PRIx64 "\",\"forwarded\":%" PRIu64 ",\"published\":%" PRIu64
			",\"acked\":%" PRIu64 ",\"dup_acks\":%" PRIu64 ",\"retransmits\":%" PRIu64
			",\"pub_errors\":%" PRIu64 ",\"pub_failed\":%" PRIu64 ",\"too_big\":%" PRIu64
			",\"corrupted_by_hook\":%" PRIu64 ",\"recovered\":%" PRIu64 ",\"inflight\":%" PRIu64
			",\"credit_waits\":%" PRIu64 ",\"credit_mark\":%" PRIu64
			",\"dropped_by_hook\":%" PRIu64 "}",
			i ? "," : "", r->outbox, r->dst_host, r->dst_chan, mode_name(r->mode),
			r->subject, r->instance, CNT_GET(r->forwarded), CNT_GET(r->published),
			CNT_GET(r->acked), CNT_GET(r->dup_acks), CNT_GET(r->retransmits),
			CNT_GET(r->pub_errors), CNT_GET(r->pub_failed), CNT_GET(r->too_big),
			CNT_GET(r->corrupted_by_hook), CNT_GET(r->recovered), inflight,
			CNT_GET(r->credit_waits), (uint64_t)atomic_load(&r->credit_mark),
			CNT_GET(r->dropped_by_hook));
	}
	fprintf(f, "]}\n");
	fclose(f);
	rename(tmp, path);
}

/* ------------------------------------------------------------------ */
/* NATS connections                                                    */
/* ------------------------------------------------------------------ */

static void on_disconnected(natsConnection *nc, void *closure)
{
	(void)nc;
	LOG_WARN("%s connection: disconnected", (const char *)closure);
}

static void on_reconnected(natsConnection *nc, void *closure)
{
	char url[256] = "";

	natsConnection_GetConnectedUrl(nc, url, sizeof(url));
	LOG_INFO("%s connection: reconnected to %s", (const char *)closure, url);
	if (!strcmp(closure, "out"))
		for (int i = 0; i < C.nroutes; i++)
			atomic_store(&C.routes[i]->resend_all, 1);
}

static void on_async_err(natsConnection *nc, natsSubscription *sub, natsStatus err,
			 void *closure)
{
	(void)nc;
	(void)sub;
	LOG_RATE("warning", "%s connection: %s", (const char *)closure,
		 natsStatus_GetText(err));
}

/*
 * nats.c closes a connection only when it gives up on it: after it was up,
 * that is the servers refusing it again and again (credentials revoked, an
 * expired certificate). Stop, saying why, rather than run on unconnected.
 */
static void on_closed(natsConnection *nc, void *closure)
{
	const char *text = NULL;
	natsStatus s;

	if (!atomic_load(&g_connected) || g_stop)
		return;		/* the first connect (it says why) or our own stop */
	s = natsConnection_GetLastError(nc, &text);
	LOG_ERR("%s connection: closed by nats.c (%s%s%s): stopping", (const char *)closure,
		natsStatus_GetText(s), text && *text ? ": " : "", text ? text : "");
	g_failed = 1;
	g_stop = 1;
}

/*
 * The options both connections share: servers, callbacks, authentication
 * and TLS. NATS_OK, or the setting that failed in *what (nats.c's reason
 * in nats_GetLastError()).
 */
static natsStatus nats_options(natsOptions **op, const char *name, const char **what)
{
	natsOptions *o = NULL;
	const char *servers[32];
	char urls[1024], cname[96];
	int n = 0;
	natsStatus s;

	snprintf(urls, sizeof(urls), "%s", C.nats);
	for (char *save = NULL, *p = strtok_r(urls, ", ", &save); p && n < 32;
	     p = strtok_r(NULL, ", ", &save))
		servers[n++] = p;
	snprintf(cname, sizeof(cname), "uhp-bridge %s %s", C.host, name);
	*what = "options";
	s = natsOptions_Create(&o);
	if (s == NATS_OK) s = natsOptions_SetServers(o, servers, n);
	if (s == NATS_OK) s = natsOptions_SetName(o, cname);
	if (s == NATS_OK) s = natsOptions_SetMaxReconnect(o, -1);
	if (s == NATS_OK) s = natsOptions_SetReconnectWait(o, 100);
	if (s == NATS_OK) s = natsOptions_SetReconnectBufSize(o, (int)C.reconnect_buf);
	if (s == NATS_OK) s = natsOptions_SetDisconnectedCB(o, on_disconnected, (void *)name);
	if (s == NATS_OK) s = natsOptions_SetReconnectedCB(o, on_reconnected, (void *)name);
	if (s == NATS_OK) s = natsOptions_SetClosedCB(o, on_closed, (void *)name);
	if (s == NATS_OK) s = natsOptions_SetErrorHandler(o, on_async_err, (void *)name);
	/* nats.c derives a byte limit of msgs * 1024 (an int): keep it small here;
	 * subscriptions set their own limits */
	if (s == NATS_OK) s = natsOptions_SetMaxPendingMsgs(o, 1 << 20);
	if (s == NATS_OK) s = natsOptions_SetIOBufSize(o, 256 * 1024);
	if (s == NATS_OK && C.send_asap) s = natsOptions_SetSendAsap(o, true);
	if (s != NATS_OK)
		goto out;

	/* TLS: nats.c loads the CA and the client certificate now, into the
	 * options it copies for each connection (reconnects use them too) */
	if (C.tls && (s = natsOptions_SetSecure(o, true)) != NATS_OK) {
		*what = "TLS";
		goto out;
	}
	if (C.file_ln[F_TLS_CA] &&
	    (s = natsOptions_LoadCATrustedCertificates(o, C.file[F_TLS_CA])) != NATS_OK) {
		*what = "tls_ca";
		goto out;
	}
	if (C.file_ln[F_TLS_CERT] &&
	    (s = natsOptions_LoadCertificatesChain(o, C.file[F_TLS_CERT], C.file[F_TLS_KEY])) != NATS_OK) {
		*what = "tls_cert/tls_key";
		goto out;
	}
	if (C.tls_hostname_ln &&
	    (s = natsOptions_SetExpectedHostname(o, C.tls_hostname)) != NATS_OK) {
		*what = "tls_hostname";
		goto out;
	}

	/* authentication: nats.c reads creds and nkey_seed at each connect */
	*what = "authentication";
	if (C.file_ln[F_CREDS])
		s = natsOptions_SetUserCredentialsFromFiles(o, C.file[F_CREDS], NULL);
	else if (C.nkey_ln)
		s = natsOptions_SetNKeyFromSeed(o, C.nkey, C.file[F_NKEY_SEED]);
	else if (C.user_ln)
		s = natsOptions_SetUserInfo(o, C.user, C.password);
	else if (C.file_ln[F_TOKEN])
		s = natsOptions_SetToken(o, C.token);
out:
	if (s != NATS_OK) {
		natsOptions_Destroy(o);
		o = NULL;
	}
	*op = o;
	return s;
}

/* What a failed connect means: no server answered (yet), or it answered no. */
static const char *connect_refusal(natsStatus s)
{
	switch (s) {
	case NATS_NO_SERVER:
	case NATS_TIMEOUT:
	case NATS_IO_ERROR:
	case NATS_STALE_CONNECTION:
	case NATS_CONNECTION_CLOSED:
	case NATS_CONNECTION_DISCONNECTED:
		return NULL;
	case NATS_CONNECTION_AUTH_FAILED:
	case NATS_NOT_PERMITTED:
		return "authentication failed";
	case NATS_SSL_ERROR:
		return "TLS failed";
	case NATS_SECURE_CONNECTION_WANTED:
		return "TLS failed: the server does not offer TLS";
	case NATS_SECURE_CONNECTION_REQUIRED:
		return "TLS failed: the server requires TLS";
	default:
		return "connect failed";
	}
}

/*
 * Connects, waiting as long as it takes for a server to answer (the bridge
 * may start before NATS). A server that answers but refuses us (wrong
 * credentials, a certificate that does not verify, TLS on one side only)
 * is an error: logged with nats.c's reason, -1. 1: a signal stopped the
 * wait. Once connected, nats.c reconnects by itself with the same options.
 */
static int connect_nats(natsConnection **nc, const char *name)
{
	natsOptions *o = NULL;
	const char *what, *refusal = NULL;
	int64_t first = 0, last_log = 0;
	natsStatus s;
	int rc = -1;

	*nc = NULL;
	s = nats_options(&o, name, &what);
	if (s != NATS_OK) {
		LOG_ERR("%s connection: %s: %s", name, what, nats_GetLastError(NULL));
		return -1;
	}
	while (!g_stop) {
		int64_t now;

		s = natsConnection_Connect(nc, o);
		if (s == NATS_OK) {
			if (first)
				LOG_INFO("%s connection: connected", name);
			rc = 0;
			break;
		}
		*nc = NULL;
		refusal = connect_refusal(s);
		if (refusal) {
			LOG_ERR("%s connection: %s: %s", name, refusal, nats_GetLastError(NULL));
			break;
		}
		now = now_ns();
		if (!first || now - last_log >= 30 * 1000000000LL) {
			if (!first)
				LOG_WARN("%s connection: no server answers yet (%s): retrying every 100 ms",
					 name, nats_GetLastError(NULL));
			else
				LOG_WARN("%s connection: still no server after %" PRId64 " s (%s)", name,
					 (now - first) / 1000000000, nats_GetLastError(NULL));
			if (!first)
				first = now;
			last_log = now;
		}
		for (int i = 0; i < 5 && !g_stop; i++)
			sleep_us(20000);
	}
	if (rc && g_stop && !refusal)
		rc = 1;
	natsOptions_Destroy(o);
	return rc;
}

/* ------------------------------------------------------------------ */
/* main                                                                */
/* ------------------------------------------------------------------ */

static void on_signal(int sig)
{
	(void)sig;
	g_stop = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: uhp-bridge -c CONFIG [-s DIR] [-v] [--check]\n"
		"  -c, --config FILE    the configuration (see uhp-bridge.conf(5))\n"
		"  -s, --state-dir DIR  the state directory, whatever the configuration says\n"
		"  -n, --check          parse the configuration, print what it means (files\n"
		"                       of the authentication and TLS, never secrets), exit\n"
		"  -v, --verbose        debug logging\n"
		"  -V, --version\n"
		"Signals: SIGTERM/SIGINT stop cleanly; SIGUSR1 writes state_dir/stats.json now.\n");
}

/* --check: how the bridge will authenticate and whether TLS is on; never a secret */
static void print_auth(void)
{
	if (C.file_ln[F_CREDS])
		printf("auth: creds %s\n", C.file[F_CREDS]);
	else if (C.nkey_ln)
		printf("auth: nkey %s, seed in %s\n", C.nkey, C.file[F_NKEY_SEED]);
	else if (C.user_ln)
		printf("auth: user %s, password in %s\n", C.user, C.file[F_PASSWORD]);
	else if (C.file_ln[F_TOKEN])
		printf("auth: token in %s\n", C.file[F_TOKEN]);
	else
		printf("auth: none\n");
	if (!C.tls) {
		printf("tls: off (on if the server requires it, verified against the system's CAs)\n");
		return;
	}
	printf("tls: on, server verified against %s%s, server name %s",
	       C.file_ln[F_TLS_CA] ? "the CAs in " : "the system's CAs",
	       C.file_ln[F_TLS_CA] ? C.file[F_TLS_CA] : "",
	       C.tls_hostname_ln ? C.tls_hostname : "from the URL");
	if (C.file_ln[F_TLS_CERT])
		printf(", client certificate %s (key %s)", C.file[F_TLS_CERT], C.file[F_TLS_KEY]);
	printf("\n");
}

static volatile sig_atomic_t g_dump;
static void on_usr1(int sig) { (void)sig; g_dump = 1; }

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "state-dir", required_argument, NULL, 's' },
		{ "check", no_argument, NULL, 'n' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	const char *cfg = NULL, *state_dir = NULL, *ev;
	bool check = false;
	struct sigaction sa = { 0 };
	int c, rc = 0;
	int64_t last_stats = 0;

	/* Handlers first: a SIGUSR1 (stats, please) that arrives while we
	 * start must not take its default action and kill us. */
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	while ((c = getopt_long(argc, argv, "c:s:nvVh", lo, NULL)) != -1) {
		switch (c) {
		case 'c': cfg = optarg; break;
		case 's': state_dir = optarg; break;
		case 'n': check = true; break;
		case 'v': g_verbose = 1; break;
		case 'V': printf("uhp-bridge %s (libuhp %u.%u.%u, nats.c %s)\n", BRIDGE_VERSION,
				 uhp_version() >> 16, (uhp_version() >> 8) & 0xff,
				 uhp_version() & 0xff, nats_GetVersion());
			return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!cfg) {
		usage(stderr);
		return 2;
	}
	if (load_config(cfg))
		return 2;
	g_host = C.host;
	/*
	 * The state directory of a service manager (uhp-bridge@.service:
	 * StateDirectory=, the only place it lets us write) wins over the
	 * file, which may have been written for a run by hand.
	 */
	if (state_dir) {
		if (!*state_dir || strlen(state_dir) >= sizeof(C.state_dir)) {
			fprintf(stderr, "uhp-bridge: --state-dir: an empty or too long path\n");
			return 2;
		}
		if (C.state_dir_set && strcmp(C.state_dir, state_dir))
			LOG_WARN("state_dir %s of %s ignored: --state-dir %s", C.state_dir, cfg,
				 state_dir);
		snprintf(C.state_dir, sizeof(C.state_dir), "%s", state_dir);
	}
	if (check) {
		printf("host %s, nats %s, state_dir %s\n", C.host, C.nats, C.state_dir);
		for (int i = 0; i < C.nexports; i++)
			printf("export %s: %s, subject %s%s%s\n", C.exports[i]->chan,
			       mode_name(C.exports[i]->mode), C.exports[i]->subject,
			       C.exports[i]->mode == MODE_JS ? ", stream " : "",
			       C.exports[i]->mode == MODE_JS ? C.exports[i]->stream : "");
		for (int i = 0; i < C.nroutes; i++)
			printf("route %s -> %s/%s: %s, subject %s\n", C.routes[i]->outbox,
			       C.routes[i]->dst_host, C.routes[i]->dst_chan,
			       mode_name(C.routes[i]->mode), C.routes[i]->subject);
		print_auth();
		if (C.tls) {
			/* nats.c loads the CA and the client certificate and key
			 * into the options: a file it cannot use fails here too */
			natsOptions *o = NULL;
			const char *what;

			nats_Open(-1);
			if (nats_options(&o, "check", &what) != NATS_OK) {
				fprintf(stderr, "uhp-bridge: %s: %s: %s\n", cfg, what,
					nats_GetLastError(NULL));
				rc = 2;
			}
			natsOptions_Destroy(o);
			nats_Close();
		}
		free_secrets();
		return rc;
	}
	if ((ev = getenv("UHP_BRIDGE_CORRUPT_EVERY")) && *ev) {
		parse_u64(ev, 10, &g_corrupt_every);
		if (g_corrupt_every)
			LOG_WARN("test hook: flipping a payload bit of every %" PRIu64 "th record on the wire",
				 g_corrupt_every);
	}
	if ((ev = getenv("UHP_BRIDGE_DROP_JS")) && *ev) {
		parse_u64(ev, 10, &g_drop_js);
		if (g_drop_js)
			LOG_WARN("test hook: every jetstream publish is lost on the way");
	}
	if ((ev = getenv("UHP_BRIDGE_DROP_JS_FIRST")) && *ev) {
		parse_u64(ev, 10, &g_drop_js_first);
		if (g_drop_js_first)
			LOG_WARN("test hook: the first jetstream publish of each route is lost on the way");
	}
	if (mkdir_p(C.state_dir)) {
		LOG_ERR("state_dir %s: %s", C.state_dir, strerror(errno));
		free_secrets();
		return 1;
	}

	lt_open();
	nats_Open(-1);
	if ((c = connect_nats(&g_nc_in, "in")) != 0 ||
	    (c = connect_nats(&g_nc_out, "out")) != 0) {
		/* connect_nats() said why, or a signal stopped the wait */
		natsConnection_Destroy(g_nc_in);
		g_nc_in = NULL;
		free_secrets();
		nats_Close();
		if (c > 0)
			LOG_INFO("stopped before NATS answered");
		return c > 0 ? 0 : 1;
	}
	/* nats.c keeps its own copies for reconnects */
	free_secrets();
	atomic_store(&g_connected, true);
	if (natsConnection_JetStream(&g_js, g_nc_in, NULL) != NATS_OK) {
		LOG_ERR("JetStream context: %s", nats_GetLastError(NULL));
		g_stop = 1;
		natsConnection_Destroy(g_nc_in);
		natsConnection_Destroy(g_nc_out);
		nats_Close();
		return 1;
	}
	for (int i = 0; i < C.nexports && !rc; i++)
		rc = start_export(C.exports[i]);
	for (int i = 0; i < C.nroutes && !rc; i++)
		rc = start_route(C.routes[i]);
	if (rc) {
		g_stop = 1;
		rc = 1;
	} else {
		LOG_INFO("running: %d export(s), %d route(s), state in %s", C.nexports,
			 C.nroutes, C.state_dir);
	}

	while (!g_stop) {
		int64_t now = now_ns();

		if (g_dump || now - last_stats >= C.stats_ms * 1000000LL) {
			g_dump = 0;
			last_stats = now;
			write_stats(false);
		}
		sleep_us(20000);
	}
	LOG_INFO("stopping");
	for (int i = 0; i < C.nroutes; i++)
		if (C.routes[i]->thr_started)
			pthread_join(C.routes[i]->thr, NULL);
	for (int i = 0; i < C.nexports; i++) {
		struct export *e = C.exports[i];

		if (e->thr_started)
			pthread_join(e->thr, NULL);
		if (e->sub)
			natsSubscription_Unsubscribe(e->sub);
		if (e->credit_sub)
			natsSubscription_Unsubscribe(e->credit_sub);
	}
	natsConnection_FlushTimeout(g_nc_in, 2000);
	natsConnection_FlushTimeout(g_nc_out, 2000);
	write_stats(true);
	for (int i = 0; i < C.nroutes; i++)
		if (C.routes[i]->acksub)
			natsSubscription_Unsubscribe(C.routes[i]->acksub);
	for (int i = 0; i < C.nroutes; i++)
		if (C.routes[i]->credit_sub)
			natsSubscription_Unsubscribe(C.routes[i]->credit_sub);
	jsCtx_Destroy(g_js);
	natsConnection_Destroy(g_nc_in);
	natsConnection_Destroy(g_nc_out);
	for (int i = 0; i < C.nexports; i++) {
		if (C.exports[i]->sub)
			natsSubscription_Destroy(C.exports[i]->sub);
		if (C.exports[i]->credit_sub)
			natsSubscription_Destroy(C.exports[i]->credit_sub);
	}
	for (int i = 0; i < C.nroutes; i++) {
		if (C.routes[i]->acksub)
			natsSubscription_Destroy(C.routes[i]->acksub);
		if (C.routes[i]->credit_sub)
			natsSubscription_Destroy(C.routes[i]->credit_sub);
		uhp_close(C.routes[i]->ch);
	}
	for (int i = 0; i < C.nexports; i++)
		uhp_close(C.exports[i]->ch);
	nats_Close();
	lt_dump();
	return rc || g_failed ? 1 : 0;
}
