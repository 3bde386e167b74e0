/* SPDX-License-Identifier: MIT */
/*
 * uhp-bridge's internal header: what its files share. The design is in
 * main.c's top comment and in bridge/DESIGN.md.
 *
 * The files, one concern each:
 *
 *   main.c     main(): options, signals, the test hooks from the
 *              environment, the order of start and stop
 *   config.c   the configuration file: the defaults (C), the parser and
 *              its checks
 *   auth.c     the authentication and TLS settings: the files they name,
 *              the secrets read from them, what --check says of them
 *   conn.c     the two NATS connections ("in", "out"): their options,
 *              callbacks, connecting
 *   log.c      logging; the latency trace (make LATTRACE=1)
 *   util.c     small helpers: sleeping, random ids, numbers, the files in
 *              state_dir
 *   wire.c     the wire format: the Uhp-* headers, the link, the record's
 *              CRC (a batch's frames: struct frame below)
 *
 *   Inbound, per exported channel:
 *   export.c   a message in: verify, deduplicate, commit; the in-state
 *              file; the core subscription; start_export()
 *   hold.c     jetstream: the holdback store (records ahead of a missing one)
 *   pull.c     jetstream: the stream, the pull thread and pull sizing
 *   early.c    jetstream: early delivery (the core copy of each message),
 *              what was committed early and not yet delivered by the stream
 *
 *   Outbound, per route:
 *   route.c    the outbox and the route threads (core, jetstream);
 *              start_route()
 *   publish.c  publishing a record or a batch, PubAcks, the test hooks
 *              that corrupt or lose what goes out
 *   spool.c    jetstream: the spool file
 *
 *   credit.c   jetstream credit, both sides: the receiver's grants, the
 *              sender's use of them
 *   stats.c    state_dir/stats.json
 *
 * Start (main()): the configuration, state_dir, the "in" then the "out"
 * connection and the JetStream context; then each export (its channel and
 * in-state file; jetstream: the record in flight at the last stop, the
 * held records, what was committed early before it, the credit
 * subscription, the pull thread, which subscribes for early delivery once
 * the stream is there; core: the subscription), then each route (its
 * outbox; jetstream: the spool; its thread). main() then writes stats.json
 * every stats_ms until a signal. Stop: the route threads, then the export
 * threads, each export closed to callbacks (under in_mu), its
 * subscriptions, the connections flushed, the last stats.json, the routes'
 * subscriptions, the connections, the channels.
 *
 * This header, in order: the clock, logging and counters, the
 * configuration, the inbound and outbound types, the wire types, the
 * shared globals, then each file's functions in the order above.
 */
#ifndef UHP_BRIDGE_H
#define UHP_BRIDGE_H

#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <nats/nats.h>

#include "uhp.h"

/* ------------------------------------------------------------------ */
/* time, logging, counters                                             */
/* ------------------------------------------------------------------ */

/* Inline: the spin of outbox_wait() reads it, and every LOG_RATE. */
static inline int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* The latency trace (make LATTRACE=1; log.c): its stages; without it, no
 * calls at all. */
#ifdef UHP_BRIDGE_LATTRACE
enum { LT_A_PEEK = 1, LT_A_PUB, LT_B_IN, LT_B_COMMIT, LT_A_PREPUB };
#else
#define lt_mark(stage, payload, len) ((void)0)
#define lt_open() ((void)0)
#define lt_dump() ((void)0)
#endif

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

/* ------------------------------------------------------------------ */
/* configuration                                                       */
/* ------------------------------------------------------------------ */

enum mode { MODE_CORE, MODE_JS };

/* The files the authentication and TLS settings name (see nats_options()). */
enum { F_CREDS, F_NKEY_SEED, F_PASSWORD, F_TOKEN, F_TLS_CA, F_TLS_CERT, F_TLS_KEY, F_NUM };

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
	bool early;		/* jetstream exports take the core copy too */
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

/* ------------------------------------------------------------------ */
/* inbound: per exported channel                                       */
/* ------------------------------------------------------------------ */

/* the in-state file, state_dir/in.<channel>.state (export.c) */
#define MAX_SRC		1024
#define SRC_KEY_MAX	112

struct src_ent {
	char key[SRC_KEY_MAX];	/* "<host>/<outbox>/<instance hex>" */
	uint64_t next;		/* next link sequence expected */
	int64_t seen_ns;	/* CLOCK_MONOTONIC of the last message (memory) */
	int64_t wait_since_ns;	/* waiting for 'next' since (0: not waiting) */
	uint32_t used;
	/* records below next committed early and perhaps still in the stream:
	 * next - early_lo (0: none; early.c), for credit after a restart */
	uint32_t early_back;
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

/* Early delivery (early.c): how far a source's early commits may run
 * ahead of the oldest one the stream has not delivered yet (bits kept per
 * source) */
#define EARLY_WINDOW	4096

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
	/* messages taken from the pull's queue while a commit waited for
	 * room, kept in progress (+WPI) and handled next (pull_in_progress()) */
	natsSubscription *pull_sub;
	natsMsg **backlog;
	unsigned bl_head, bl_n, bl_cap;

	_Atomic uint64_t received, committed, crc_refused, malformed, dups,
		gaps, late, naks, full_waits, unsequenced, too_big,
		gap_timeouts, probe_committed, probe_uncommitted,
		probe_unknown, evictions, acks, pulls, held, unheld, stepdowns,
		credit_replies, in_progress, early, early_confirmed,
		early_skipped, early_expired;
	_Atomic int64_t held_now;
	int64_t sub_dropped, early_dropped;	/* last read (write_stats()) */

	/*
	 * in_mu: one committer at a time, and nothing after the stop
	 * (closed): the puller holds it around each message, core and early
	 * callbacks take it (early ones only trylock: the puller may be
	 * waiting for room), main() closes the export under it. Order: in_mu,
	 * then src_mu. src[] entries appear and go only under both (the
	 * puller's src_lookup()), so holders of in_mu see them stay.
	 */
	pthread_mutex_t in_mu;
	bool closed;
	/*
	 * jetstream, early delivery (early.c): the core copy of each message
	 * (early_sub, set once by the puller) is committed at once when it is
	 * the next of its source and the ring has room. Per source, under
	 * in_mu: early_lo, the oldest record committed early whose copy the
	 * stream has not delivered yet (0: none; credit_cb() loads it),
	 * since when (early_lo_ns), the bits of what is pending in
	 * [early_lo, next) (early_bits, EARLY_WINDOW a source), and blind:
	 * after a restart, the range is known (early_back) but not the bits.
	 */
	_Atomic(natsSubscription *) early_sub;
	_Atomic uint64_t early_lo[MAX_SRC];
	int64_t early_lo_ns[MAX_SRC];
	bool early_blind[MAX_SRC];
	uint64_t *early_bits;

	/* jetstream: credit for the senders (see credit_cb()) */
	natsSubscription *credit_sub;
	pthread_mutex_t src_mu;		/* src[] entries appearing, going */
	int64_t credit_ns[MAX_SRC];	/* a source's last credit request */
};

/* credit (see credit.c) */
#define CREDIT_RING		(1u << 16)	/* records a sender tracks */

/* ------------------------------------------------------------------ */
/* outbound: per route                                                 */
/* ------------------------------------------------------------------ */

/* the spool, state_dir/out.<outbox>.spool (jetstream routes; spool.c) */
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

enum slot_state { S_FREE, S_SENT, S_ACKED, S_FAILED };

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
	_Atomic uint64_t inflight_now;	/* cur.next_seq - cur.head_seq */
	_Atomic bool first_dropped;	/* UHP_BRIDGE_DROP_JS_FIRST done */
};

/* ------------------------------------------------------------------ */
/* the wire                                                            */
/* ------------------------------------------------------------------ */

struct wire {
	uint32_t src, dst, crc;
	uint16_t type, flags;
	uint64_t useq;
};

/* A batch frame: struct frame then len payload bytes (little-endian). */
struct frame {
	uint32_t len;
	uint16_t type, flags;
	uint32_t src, dst;
	uint64_t seq;
	uint32_t crc;
} __attribute__((packed));

/* What a record asks of its JetStream message (in_handle()) */
enum act { A_NONE, A_ACK, A_NAK, A_TERM };

/* ------------------------------------------------------------------ */
/* globals                                                             */
/* ------------------------------------------------------------------ */

/* main.c */
extern _Atomic int g_stop;
extern _Atomic int g_failed;	/* stopping because of an error: exit 1 */

/* config.c: the configuration */
extern struct config C;

/* log.c */
extern int g_verbose;
extern const char *g_host;

/* conn.c */
extern atomic_bool g_connected;		/* both NATS connections were up */
extern natsConnection *g_nc_out, *g_nc_in;
extern jsCtx *g_js;

/* publish.c: the test hooks, set by main() from the environment */
extern uint64_t g_corrupt_every;
extern uint64_t g_drop_js, g_drop_js_first;

/* ------------------------------------------------------------------ */
/* functions, by file                                                  */
/* ------------------------------------------------------------------ */

/* config.c */
const char *mode_name(enum mode m);
int cfg_err(const char *file, int line, const char *what);
int cfg_errf(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int load_config(const char *file);

/* auth.c */
void free_secrets(void);
int parse_auth(const char *file, int ln, const char *k, const char *v);
int check_auth(const char *file);
void print_auth(void);

/* conn.c */
natsStatus nats_options(natsOptions **op, const char *name, const char **what);
int connect_nats(natsConnection **nc, const char *name);

/* log.c */
void logmsg(const char *lvl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
#ifdef UHP_BRIDGE_LATTRACE
void lt_mark(int stage, const void *payload, uint32_t len);
void lt_open(void);
void lt_dump(void);
#endif

/* util.c */
uint64_t rand64(void);
void sleep_us(long us);
bool parse_u64(const char *s, int base, uint64_t *out);
int mkdir_p(const char *path);
void *map_file(const char *name, size_t len, bool *fresh, size_t *len_out);

/* wire.c */
uint32_t rec_crc(uint32_t len, uint16_t type, uint16_t flags,
		 uint32_t src, uint32_t dst, uint64_t seq,
		 const void *payload);
natsStatus set_headers(natsMsg *m, const struct wire *w);
bool parse_wire(natsMsg *m, struct wire *w);
bool parse_link(const char *link, char *key, size_t keycap, uint64_t *lseq);

/* export.c */
enum act in_handle(struct export *e, natsMsg *m, bool js);
int src_find(struct export *e, const char *key);
int commit_rec(struct export *e, int idx, uint64_t lseq, const struct wire *w,
	       const void *data, uint32_t len, natsMsg *m, bool js, bool early);
int start_export(struct export *e);

/* hold.c */
bool hold_exists(const struct export *e, int idx, uint64_t lseq);
int hold_put(struct export *e, int idx, uint64_t lseq, const struct wire *w,
	     const void *data, uint32_t len);
int hold_get(struct export *e, int idx, uint64_t lseq, struct wire *w,
	     void **data, uint32_t *len);
void hold_del(struct export *e, int idx, uint64_t lseq);
void hold_purge(struct export *e, int idx);
void hold_scan(struct export *e);

/* pull.c */
void pull_in_progress(struct export *e);

/* early.c */
extern uint64_t g_early_drop_every, g_pull_delay_ms;
void early_forget(struct export *e, int idx);
void early_restore(struct export *e);
int early_subscribe(struct export *e);
bool early_seen(struct export *e, int idx, uint64_t lseq);
void early_note(struct export *e, int idx, uint64_t next);
void early_expire(struct export *e, int64_t now);
int early_commit(struct export *e, int idx, uint64_t lseq, const struct wire *w,
		 const void *data, uint32_t len);
void *js_pull_thread(void *arg);

/* route.c */
void route_wake(struct route *r);
int start_route(struct route *r);

/* publish.c */
natsStatus core_publish_held(struct route *r, const char *buf, size_t bytes,
			     unsigned n, const struct wire *w, int64_t *last_err);
void on_puback(natsConnection *nc, natsSubscription *sub, natsMsg *m,
	       void *closure);
bool js_publish(struct route *r, uint64_t first, unsigned n, const char *buf,
		size_t bytes, const struct wire *w);
bool js_publish_slot(struct route *r, uint64_t seq);

/* spool.c */
void spool_commit(struct route *r);
struct spool_ent *spool_at(struct route *r, uint64_t off);
int open_spool(struct route *r);
bool spool_room(struct route *r, uint64_t total, uint64_t *pad);

/* credit.c: the receiver's side, then the sender's */
void credit_cb(natsConnection *nc, natsSubscription *sub, natsMsg *m,
	       void *closure);
void on_credit(natsConnection *nc, natsSubscription *sub, natsMsg *m,
	       void *closure);
bool credit_allows(struct route *r, uint32_t len);
void credit_took(struct route *r, uint64_t seq, uint32_t len);
void credit_ask(struct route *r, bool blocked);

/* stats.c */
void write_stats(bool final);
void write_stats_drops(struct export *e);

#endif /* UHP_BRIDGE_H */
