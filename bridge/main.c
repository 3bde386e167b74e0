/* SPDX-License-Identifier: MIT */
/*
 * uhp-bridge: carries uhp channels across hosts on a NATS cluster.
 *
 * The design is written down in bridge/DESIGN.md; in brief:
 *
 *  - One daemon per host, configured by a small file (uhp-bridge.conf(5)).
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
/*
 * This file: main(): the options, the signals, the test hooks from the
 * environment, then start and stop in the order bridge.h's top comment
 * gives (the files and what each holds: there too).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge.h"

/* the bridge is versioned with the project (./VERSION, via uhp_version.h) */
#define BRIDGE_STR_(x) #x
#define BRIDGE_STR(x) BRIDGE_STR_(x)
#define BRIDGE_VERSION BRIDGE_STR(UHP_VERSION_MAJOR) "." BRIDGE_STR(UHP_VERSION_MINOR) "." \
	BRIDGE_STR(UHP_VERSION_PATCH)

/* Set by signal handlers and by any thread, read by all: atomics (a
 * lock-free store is async-signal-safe; sig_atomic_t is not for threads). */
_Atomic int g_stop;
_Atomic int g_failed;	/* stopping because of an error: exit 1 */

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

static _Atomic int g_dump;
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
	if ((ev = getenv("UHP_BRIDGE_PULL_DELAY_MS")) && *ev) {
		parse_u64(ev, 10, &g_pull_delay_ms);
		if (g_pull_delay_ms)
			LOG_WARN("test hook: jetstream exports pull %" PRIu64 " ms after they start",
				 g_pull_delay_ms);
	}
	if ((ev = getenv("UHP_BRIDGE_EARLY_DROP_EVERY")) && *ev) {
		parse_u64(ev, 10, &g_early_drop_every);
		if (g_early_drop_every)
			LOG_WARN("test hook: every %" PRIu64 "th early copy is ignored",
				 g_early_drop_every);
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
		/* a callback nats.c still runs after this finds it closed */
		pthread_mutex_lock(&e->in_mu);
		e->closed = true;
		pthread_mutex_unlock(&e->in_mu);
		write_stats_drops(e);	/* before the subscriptions go */
		if (e->sub)
			natsSubscription_Unsubscribe(e->sub);
		if (e->early_sub)
			natsSubscription_Unsubscribe(e->early_sub);
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
		if (C.exports[i]->early_sub)
			natsSubscription_Destroy(C.exports[i]->early_sub);
		free(C.exports[i]->early_bits);
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
