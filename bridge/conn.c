/* SPDX-License-Identifier: MIT */
/*
 * uhp-bridge: the NATS connections, "in" (exports) and "out" (routes):
 * their callbacks, the options both share (servers, authentication, TLS),
 * and connecting.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "bridge.h"

atomic_bool g_connected;		/* both NATS connections were up */
natsConnection *g_nc_out, *g_nc_in;
jsCtx *g_js;

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
	/* early delivery's copies may drop: the stream has them (stats:
	 * early_dropped) */
	for (int i = 0; sub && err == NATS_SLOW_CONSUMER && i < C.nexports; i++)
		if (atomic_load(&C.exports[i]->early_sub) == sub)
			return;
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
 * nats.c retries a lost connection for ever (MaxReconnect -1) and says
 * nothing of the attempts that fail short of the server refusing us (which
 * closes the connection: on_closed()): a credentials file that became
 * unreadable or malformed, a certificate that went away, servers that do
 * not answer. After each round over the servers it asks how long to wait:
 * say why the last attempt failed after 50 rounds (5 s when attempts fail
 * at once, longer when they time out) and then every 300, and wait 100 ms
 * plus up to 50 ms (clients apart).
 */
#define RECONNECT_WAIT_MS	100
static int64_t on_reconnect_delay(natsConnection *nc, int attempts, void *closure)
{
	const char *text = NULL;
	natsStatus s;

	if (attempts == 5000 / RECONNECT_WAIT_MS ||
	    (attempts > 5000 / RECONNECT_WAIT_MS && attempts % (30000 / RECONNECT_WAIT_MS) == 0)) {
		/* the attempt's own error is this (the reconnect) thread's;
		 * the connection's is often only "Error" */
		text = nats_GetLastError(&s);
		if (!text || !*text)
			s = natsConnection_GetLastError(nc, &text);
		LOG_WARN("%s connection: still reconnecting after %d rounds over the servers: %s%s%s",
			 (const char *)closure, attempts, natsStatus_GetText(s),
			 text && *text ? ": " : "", text ? text : "");
	}
	return RECONNECT_WAIT_MS + rand() % 50;
}

/*
 * The options both connections share: servers, callbacks, authentication
 * and TLS. NATS_OK, or the setting that failed in *what (nats.c's reason
 * in nats_GetLastError()).
 */
natsStatus nats_options(natsOptions **op, const char *name, const char **what)
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
	if (s == NATS_OK) s = natsOptions_SetCustomReconnectDelay(o, on_reconnect_delay, (void *)name);
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
int connect_nats(natsConnection **nc, const char *name)
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
