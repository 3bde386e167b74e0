/* SPDX-License-Identifier: MIT */
/*
 * uhp-bridge: the configuration file (uhp-bridge.conf(5)). The defaults
 * (C) first, then the checks of names and numbers, and the parser from its
 * parts up to load_config(). The authentication and TLS settings are
 * auth.c's (parse_auth(), check_auth()).
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge.h"

struct config C = {
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
	.early = true,
};

const char *mode_name(enum mode m)
{
	return m == MODE_JS ? "jetstream" : "core";
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

int cfg_err(const char *file, int line, const char *what)
{
	fprintf(stderr, "uhp-bridge: %s:%d: %s\n", file, line, what);
	return -1;
}

int cfg_errf(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "uhp-bridge: %s:%d: ", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return -1;
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

/*
 * The next key=value of an export or route line whose key is the line's
 * own (*k, *v): 1; the shared keys are taken on the way (kv_channel()).
 * 0 at the end of the line, -1 on an error (*why says which).
 */
static int next_kv(char **s, char **k, char **v, enum mode *m, int64_t *ring_size,
		   const char **why)
{
	char *kv;
	int r;

	while ((kv = tok(s))) {
		char *eq = strchr(kv, '=');

		if (!eq) {
			*why = "key=value expected";
			return -1;
		}
		*eq++ = 0;
		r = kv_channel(kv, eq, m, ring_size, why);
		if (r < 0)
			return -1;
		if (r == 0) {
			*k = kv;
			*v = eq;
			return 1;
		}
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
	} else if (!strcmp(k, "early")) {
		if (!strcmp(v, "yes"))
			C.early = true;
		else if (!strcmp(v, "no"))
			C.early = false;
		else
			return -1;
	} else if (!strcmp(k, "send_asap")) {
		C.send_asap = !strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "1");
	} else {
		return -2;
	}
	return 0;
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
				char *kv, *eq;
				const char *why = NULL;
				int more;

				if (pass == 0)
					continue;
				if (!strcmp(k, "export")) {
					struct export *e;
					char *ch = tok(&s);

					if (!ch || !valid_chan(ch))
						return cfg_err(file, ln, "export: a channel name");
					if (C.nexports == MAX_EXPORTS)
						return cfg_err(file, ln, "too many exports");
					e = calloc(1, sizeof(*e));
					if (!e)
						return cfg_err(file, ln, "out of memory");
					/* in the table at once: a refused line leaks nothing */
					C.exports[C.nexports++] = e;
					snprintf(e->chan, sizeof(e->chan), "%s", ch);
					e->mode = C.mode;
					e->max_msgs = C.stream_max_msgs;
					e->max_bytes = C.stream_max_bytes;
					e->replicas = C.replicas;
					e->ring_size = C.ring_size;
					while ((more = next_kv(&s, &kv, &eq, &e->mode,
							       &e->ring_size, &why)) > 0) {
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
					if (more < 0)
						return cfg_err(file, ln, why);
				} else {
					struct route *r;
					char *dst = tok(&s), *ob = tok(&s), *slash;

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
					C.routes[C.nroutes++] = r;	/* as exports */
					snprintf(r->dst_host, sizeof(r->dst_host), "%s", dst);
					snprintf(r->dst_chan, sizeof(r->dst_chan), "%s", slash + 1);
					snprintf(r->outbox, sizeof(r->outbox), "%s", ob);
					r->mode = C.mode;
					r->ring_size = C.ring_size;
					r->batch = C.batch;
					r->batch_bytes = C.batch_bytes;
					while ((more = next_kv(&s, &kv, &eq, &r->mode,
							       &r->ring_size, &why)) > 0) {
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
					if (more < 0)
						return cfg_err(file, ln, why);
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

int load_config(const char *file)
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
