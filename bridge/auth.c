/* SPDX-License-Identifier: MIT */
/*
 * uhp-bridge: the authentication and TLS settings of the configuration:
 * the files they name and their checks (a secret only its owner may read),
 * the password or token read from one, the settings that go together, and
 * what --check prints of them (never a secret). conn.c hands them to
 * nats.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bridge.h"

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

void free_secrets(void)
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
int parse_auth(const char *file, int ln, const char *k, const char *v)
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
int check_auth(const char *file)
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

/* --check: how the bridge will authenticate and whether TLS is on; never a secret */
void print_auth(void)
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
