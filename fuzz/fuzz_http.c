/* HTTP request handling (daemon/web.c): the REST API router and its
 * handlers (entities, logs with their query filters and CSV export,
 * imports, users, emergency, alarms, login, metrics) on a seeded site,
 * through web_route_request: the path the API callback takes once a
 * request's body is in. The server is started for real (web_start, a
 * self-signed certificate in a temp dir, loopback only) but no connection
 * is made: the request's headers, URL arguments and peer come from this
 * file's versions of the libwebsockets accessors, which answer for the
 * fake connection only and hand every other one to the library.
 *
 * Input, like an HTTP/1.1 request:
 *   METHOD URI[ HTTP/1.1]\n  (URI with its query, %XX decoded as lws does)
 *   Name: value\n ...        (Cookie, Accept, X-CSRF-Token, X-Peer)
 *   \n
 *   body
 * Without a Cookie header the request carries an admin session; a Cookie
 * value may name the sessions as $ADMIN, $MANAGER, $VIEWER. Without an
 * X-CSRF-Token the session's own token is sent. X-Peer is the client
 * address (default 127.0.0.1). */
#include <dlfcn.h>
#include <strings.h>
#include <libwebsockets.h>
#include <unistd.h>
#include <uv.h>

#include "config.h"
#include "ctl.h"
#include "engine.h"
#include "fuzz_common.h"
#include "mqttlink.h"
#include "users.h"
#include "web.h"

/* ---- the fake connection ---- */

#define MAX_ARGS 32
static struct fake {
	char peer[64];
	char cookie[1024];
	int has_cookie;
	char accept[256];
	int has_accept;
	char csrf[256];
	int has_csrf;
	char args[MAX_ARGS][1024];
	int nargs;
} rq;
#define FAKE ((struct lws *)(void *)&rq)

#define REAL(name, ...)                                                                 \
	do {                                                                            \
		static __typeof__(name) *real;                                          \
		if (!real)                                                              \
			*(void **)&real = dlsym(RTLD_NEXT, #name);                      \
		return real(__VA_ARGS__);                                               \
	} while (0)

int lws_callback_on_writable(struct lws *wsi)
{
	if (wsi == FAKE)
		return 1;
	REAL(lws_callback_on_writable, wsi);
}

const char *lws_get_peer_simple(struct lws *wsi, char *name, size_t namelen)
{
	if (wsi == FAKE) {
		snprintf(name, namelen, "%s", rq.peer);
		return name;
	}
	REAL(lws_get_peer_simple, wsi, name, namelen);
}

static int copy_hdr(const char *v, int has, char *dest, int len)
{
	if (!has)
		return -1;
	int n = (int)strlen(v);
	if (n >= len)
		return -1;
	memcpy(dest, v, (size_t)n + 1);
	return n;
}

int lws_hdr_copy(struct lws *wsi, char *dest, int len, enum lws_token_indexes h)
{
	if (wsi != FAKE)
		REAL(lws_hdr_copy, wsi, dest, len, h);
	if (len > 0)
		dest[0] = '\0';
	if (h == WSI_TOKEN_HTTP_COOKIE)
		return copy_hdr(rq.cookie, rq.has_cookie, dest, len);
	if (h == WSI_TOKEN_HTTP_ACCEPT)
		return copy_hdr(rq.accept, rq.has_accept, dest, len);
	return -1;
}

int lws_hdr_custom_copy(struct lws *wsi, char *dst, int len, const char *name, int nlen)
{
	if (wsi != FAKE)
		REAL(lws_hdr_custom_copy, wsi, dst, len, name, nlen);
	if (len > 0)
		dst[0] = '\0';
	if (nlen == 13 && !strncasecmp(name, "x-csrf-token:", 13))
		return copy_hdr(rq.csrf, rq.has_csrf, dst, len);
	return -1;
}

int lws_hdr_copy_fragment(struct lws *wsi, char *dest, int len, enum lws_token_indexes h, int frag_idx)
{
	if (wsi != FAKE)
		REAL(lws_hdr_copy_fragment, wsi, dest, len, h, frag_idx);
	if (h != WSI_TOKEN_HTTP_URI_ARGS || frag_idx < 0 || frag_idx >= rq.nargs)
		return -1;
	return copy_hdr(rq.args[frag_idx], 1, dest, len);
}

/* as libwebsockets 4.1 does it: the first fragment that starts with NAME */
const char *lws_get_urlarg_by_name(struct lws *wsi, const char *name, char *buf, int len)
{
	if (wsi != FAKE)
		REAL(lws_get_urlarg_by_name, wsi, name, buf, len);
	int sl = (int)strlen(name);
	for (int n = 0; lws_hdr_copy_fragment(wsi, buf, len, WSI_TOKEN_HTTP_URI_ARGS, n) >= 0; n++)
		if (!strncmp(buf, name, (size_t)sl))
			return buf + sl;
	return NULL;
}

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* %XX decoding (and '+' as a space in arguments), stopping at a NUL */
static void urldecode(char *s, int plus)
{
	char *o = s;
	for (char *i = s; *i; i++) {
		if (*i == '%' && hexval(i[1]) >= 0 && hexval(i[2]) >= 0) {
			*o = (char)(hexval(i[1]) << 4 | hexval(i[2]));
			i += 2;
			if (!*o)
				break;
			o++;
		} else {
			*o++ = plus && *i == '+' ? ' ' : *i;
		}
	}
	*o = '\0';
}

/* ---- the server ---- */

static store_t *st;
static engine_t *en;
static uv_loop_t loop;
static web_t *web;
static gh_config_t cfg;
static char tmpdir[64];

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void cleanup(void)
{
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	if (system(cmd)) {
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fz_quiet();
	lws_set_log_level(0, NULL);
	fz_profiles();
	st = fz_open_store();
	fz_seed_site(st);
	gh_err_t err = { 0 };
	if (users_add(st, "mara", "manager", "correct horse", "fuzz", &err))
		fz_die("users_add", &err);
	/* a few log rows for the log queries and exports */
	if (store_exec(st, "INSERT INTO door_logs(ts, type, device, relay, apt, method, code, result) VALUES "
			   "(1700000000, 'door_release', '" FZ_DP "', 1, '101', 'pin', '****', 'success'), "
			   "(1700000100, 'door_release', '" FZ_DP "', 2, NULL, 'rf', '=cmd|x', 'failed');"
			   "INSERT INTO alarm_logs(ts, device, kind, state, zone) VALUES "
			   "(1700000200, '" FZ_IM "', 'tamper', 'triggered', 'z1');",
		       &err))
		fz_die("log rows", &err);
	fz_snapshot(st);
	en = engine_new(st);
	uv_loop_init(&loop);

	snprintf(tmpdir, sizeof tmpdir, "%s", access("/dev/shm", W_OK) == 0 ? "/dev/shm/gh-fuzz-XXXXXX" : "/tmp/gh-fuzz-XXXXXX");
	if (!mkdtemp(tmpdir))
		abort();
	atexit(cleanup);
	char conf[128], msg[512];
	snprintf(conf, sizeof conf, "%s/fuzz.conf", tmpdir);
	FILE *f = fopen(conf, "w");
	if (!f)
		abort();
	/* loopback, a port of its own; were it taken, the router still works */
	fprintf(f, "[site]\nid = fuzz\n[storage]\ndb = %s/site.db\n[mqtt]\nmanage_accounts = false\n"
		   "[web]\nlisten = 127.0.0.1:%d\nroot = %s\n",
		tmpdir, 20000 + (int)(getpid() % 20000), tmpdir);
	fclose(f);
	if (config_load(conf, &cfg, msg, sizeof msg)) {
		fprintf(stderr, "fuzz harness setup: %s\n", msg);
		abort();
	}
	ctl_env_t env = { .st = st, .en = en, .started_ms = gh_mono_ms(), .wan = "standalone" };
	web = web_start(&loop, &cfg, &env);
	if (!web)
		abort();
	return 0;
}

static int method_of(const char *m)
{
	static const struct {
		const char *name;
		int m;
	} ms[] = { { "GET", LWSHUMETH_GET },	 { "POST", LWSHUMETH_POST },	 { "PUT", LWSHUMETH_PUT },
		   { "DELETE", LWSHUMETH_DELETE }, { "PATCH", LWSHUMETH_PATCH }, { "OPTIONS", LWSHUMETH_OPTIONS },
		   { "HEAD", LWSHUMETH_HEAD } };
	for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++)
		if (!strcmp(m, ms[i].name))
			return ms[i].m;
	return -1;
}

/* $ADMIN/$MANAGER/$VIEWER in a cookie value -> the session tokens */
static void subst(const char *in, char *out, size_t len, char tok[3][65])
{
	static const char *const names[] = { "$ADMIN", "$MANAGER", "$VIEWER" };
	size_t o = 0;
	while (*in && o + 1 < len) {
		int hit = -1;
		for (int i = 0; i < 3; i++)
			if (!strncmp(in, names[i], strlen(names[i])))
				hit = i;
		if (hit >= 0 && o + 65 < len) {
			memcpy(out + o, tok[hit], 64);
			o += 64;
			in += strlen(names[hit]);
		} else {
			out[o++] = *in++;
		}
	}
	out[o] = '\0';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > (1u << 20))
		return 0;
	char *req = fz_strndup(data, size);
	/* the body starts after the first empty line (NULs count as bytes) */
	const char *body = NULL;
	size_t blen = 0;
	for (size_t i = 0; i + 1 < size; i++)
		if (req[i] == '\n' && (req[i + 1] == '\n' || (req[i + 1] == '\r' && i + 2 < size && req[i + 2] == '\n'))) {
			size_t b = i + (req[i + 1] == '\n' ? 2 : 3);
			req[i] = '\0';
			body = req + b;
			blen = size - b;
			break;
		}
	char *save = NULL;
	char *line = strtok_r(req, "\n", &save);
	if (!line) {
		free(req);
		return 0;
	}
	line[strcspn(line, "\r")] = '\0';
	char mname[16] = "", uri[2048] = "";
	if (sscanf(line, "%15s %2047s", mname, uri) != 2 || uri[0] != '/') {
		free(req);
		return 0;
	}
	int method = method_of(mname);
	if (method < 0) {
		free(req);
		return 0;
	}
	memset(&rq, 0, sizeof rq);
	snprintf(rq.peer, sizeof rq.peer, "127.0.0.1");
	/* fresh sessions: an input that logs out must not change the next one */
	char tok[3][65], csrf[3][65];
	static const char *const roles[] = { "admin", "manager", "viewer" };
	for (int i = 0; i < 3; i++)
		web_session_open(web, roles[i], roles[i], tok[i], csrf[i]);
	int sess = 0;
	for (char *h; (h = strtok_r(NULL, "\n", &save));) {
		h[strcspn(h, "\r")] = '\0';
		char *colon = strchr(h, ':');
		if (!colon)
			continue;
		*colon = '\0';
		const char *v = colon + 1;
		while (*v == ' ')
			v++;
		if (!strcasecmp(h, "cookie")) {
			rq.has_cookie = 1;
			subst(v, rq.cookie, sizeof rq.cookie, tok);
			sess = strstr(v, "$MANAGER") ? 1 : strstr(v, "$VIEWER") ? 2 : 0;
		} else if (!strcasecmp(h, "accept")) {
			rq.has_accept = 1;
			snprintf(rq.accept, sizeof rq.accept, "%s", v);
		} else if (!strcasecmp(h, "x-csrf-token")) {
			rq.has_csrf = 1;
			snprintf(rq.csrf, sizeof rq.csrf, "%s", v);
		} else if (!strcasecmp(h, "x-peer")) {
			snprintf(rq.peer, sizeof rq.peer, "%s", v);
		}
	}
	if (!rq.has_cookie) {
		rq.has_cookie = 1;
		snprintf(rq.cookie, sizeof rq.cookie, "gh_session=%s", tok[0]);
	}
	if (!rq.has_csrf) {
		rq.has_csrf = 1;
		snprintf(rq.csrf, sizeof rq.csrf, "%s", csrf[sess]);
	}
	/* the query: fragments split at '&', each decoded */
	char *q = strchr(uri, '?');
	if (q) {
		*q++ = '\0';
		for (char *a, *s2 = NULL; rq.nargs < MAX_ARGS && (a = strtok_r(q, "&", &s2)); q = NULL) {
			snprintf(rq.args[rq.nargs], sizeof rq.args[0], "%s", a);
			urldecode(rq.args[rq.nargs], 1);
			rq.nargs++;
		}
	}
	urldecode(uri, 0);

	fz_restore(st);
	/* a device link that never connects: commands queue in its client */
	mqttlink_cfg_t mc = { .host = "127.0.0.1", .port = 1, .username = "gw", .client_id = "fuzz", .wan = "up" };
	mqttlink_t *ml = mqttlink_start(&loop, &mc, st, en);
	ctl_env_t env = { .st = st, .en = en, .started_ms = gh_mono_ms(), .wan = "standalone", .mqtt = ml };
	web_set_env(web, &env);
	char *resp = NULL;
	int status = web_route_request(web, FAKE, method, uri, body, blen, &resp);
	env.mqtt = NULL;
	web_set_env(web, &env);
	mqttlink_stop(ml);
	uv_run(&loop, UV_RUN_NOWAIT);
	if (status < 100 || status > 599) {
		fprintf(stderr, "INVARIANT BROKEN: no answer (status %d) for %s %s\n", status, mname, uri);
		abort();
	}
	if (getenv("GH_FUZZ_VERBOSE"))
		fprintf(stderr, "%s %s -> %d %.300s\n", mname, uri, status, resp ? resp : "");
	/* JSON answers are JSON */
	if (resp && resp[0] == '{') {
		json_t *j = json_loads(resp, 0, NULL);
		if (!j) {
			fprintf(stderr, "INVARIANT BROKEN: an answer that is not JSON: %.200s\n", resp);
			abort();
		}
		json_decref(j);
	}
	free(resp);
	free(req);
	return 0;
}
