/* The local web UI and REST API (ADMIN.md) on libwebsockets, in the
 * daemon's libuv loop (LWS_SERVER_OPTION_LIBUV with our loop as a foreign
 * loop). Requests under /api/v1 are handled by gh_api_callback: the body is
 * collected (capped), the request answered with JSON in one go. Password
 * checks (scrypt, ~50 ms) run on libuv's thread pool so a login never
 * delays a door. */
#include "web.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libwebsockets.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bus.h"
#include "cloudlink.h"
#include "counters.h"
#include "disk.h"
#include "dynsec.h"
#include "engine.h"
#include "entity.h"
#include "import.h"
#include "jutil.h"
#include "logcsv.h"
#include "log.h"
#include "mqttlink.h"
#include "status.h"
#include "timeutil.h"
#include "users.h"

#define BODY_MAX (4u << 20) /* CSV imports; JSON bodies are far smaller */
#define MAX_SESSIONS 256
#define FAIL_WINDOW_MS (5 * 60 * 1000)
#define FAIL_MAX_USER 5   /* failed logins per user name in the window */
#define FAIL_MAX_IP 20    /* and per address (a site's NAT shares one) */

typedef struct session {
	char token[65], csrf[65], user[65], role[16];
	uint64_t created_ms, last_ms;
} session_t;

typedef struct failrec {
	char key[80]; /* "ip:1.2.3.4" or "user:name" */
	uint64_t first_ms;
	int n;
} failrec_t;

struct web {
	uv_loop_t *loop;
	struct lws_context *ctx;
	ctl_env_t env;
	store_t *st;
	session_t sessions[MAX_SESSIONS];
	failrec_t fails[128];
	uint64_t idle_ms, max_ms;
	int metrics_any;
	int jobs, stopping; /* logins, broker accounts on the thread pool; freed after the last */
	const gh_config_t *cfg; /* the daemon's, outlives the server */
	int https_port;
	char *status_cache;
	uint64_t status_ms;
	int failed; /* no listener: only the shutdown is left to do */
	/* the live feed */
	struct wsc *clients;
	uv_timer_t feed;
	int feed_closed;
	int64_t last_door, last_alarm, last_call;
	json_t *presence, *boards;
	char wan[16];
	int emergency;
	char root[4096];
	struct lws_http_mount mount_ui, mount_api, mount_metrics;
};

typedef struct login_job login_job_t;

/* a websocket client of /api/v1/ws: a bounded queue of messages to send */
#define WS_QUEUE 1024
typedef struct wsc {
	struct wsc *next;
	struct lws *wsi;
	web_t *w;
	char *q[WS_QUEUE];
	int head, count;
	long dropped;
	char user[65];
} wsc_t;

typedef struct pss {
	struct lws *wsi;
	web_t *w;
	int method; /* LWSHUMETH_ */
	char path[512];
	char *body;
	size_t len, cap;
	int too_big, handled, headers_sent;
	/* the answer */
	int status;
	char ctype[48];
	char *resp;
	size_t resp_len, resp_sent;
	char cookie[256];
	char disposition[96];
	long retry_after;
	login_job_t *job;
} pss_t;

/* work on the thread pool for a request: a password check, or a device's
 * broker account */
enum { JOB_LOGIN, JOB_ACCT_CREATE, JOB_ACCT_PASSWD, JOB_ACCT_DELETE };
struct login_job {
	uv_work_t work;
	pss_t *pss; /* NULL once the connection closed */
	web_t *w;
	int kind;
	char user[65], password[256], hash[200], role[16], peer[64];
	int found, ok;
	/* broker accounts */
	char mac[16];
	json_t *entity;
	gh_err_t err;
	int rc;
};

static web_t *g_web; /* the callbacks reach the server through the vhost user data too */

/* ---- answers ---- */

static void answer(pss_t *p, int status, const char *ctype, char *body)
{
	p->status = status;
	snprintf(p->ctype, sizeof p->ctype, "%s", ctype);
	free(p->resp);
	p->resp = body;
	p->resp_len = body ? strlen(body) : 0;
	p->resp_sent = 0;
	p->handled = 1;
	lws_callback_on_writable(p->wsi);
}

static void answer_json(pss_t *p, int status, json_t *j)
{
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	answer(p, status, "application/json", s);
}

static void answer_error(pss_t *p, int status, const char *code, const char *field, const char *message)
{
	answer_json(p, status, json_pack("{s:{s:s,s:s?,s:s}}", "error", "code", code, "field",
					 field && *field ? field : NULL, "message", message));
}

static void answer_err(pss_t *p, const gh_err_t *e)
{
	int st = e->status ? e->status : 500;
	answer_error(p, st, e->code[0] ? e->code : "error", e->field, e->message[0] ? e->message : "failed");
}

/* ---- sessions, CSRF, rate limit ---- */

static void random_token(char *out)
{
	unsigned char raw[32];
	if (RAND_bytes(raw, sizeof raw) != 1)
		memset(raw, 0, sizeof raw); /* never happens with a seeded OpenSSL; the login then fails below */
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", raw[i]);
}

static session_t *session_of(web_t *w, struct lws *wsi)
{
	char cookie[1024];
	if (lws_hdr_copy(wsi, cookie, sizeof cookie, WSI_TOKEN_HTTP_COOKIE) <= 0)
		return NULL;
	const char *t = strstr(cookie, "gh_session=");
	if (!t)
		return NULL;
	t += 11;
	char token[65];
	size_t n = strcspn(t, "; ");
	if (n != 64)
		return NULL;
	memcpy(token, t, 64);
	token[64] = '\0';
	uint64_t now = gh_mono_ms();
	for (int i = 0; i < MAX_SESSIONS; i++) {
		session_t *s = &w->sessions[i];
		if (!s->token[0] || CRYPTO_memcmp(s->token, token, 64))
			continue;
		if (now - s->last_ms > w->idle_ms || now - s->created_ms > w->max_ms) {
			memset(s, 0, sizeof *s); /* expired */
			return NULL;
		}
		s->last_ms = now;
		return s;
	}
	return NULL;
}

static session_t *session_new(web_t *w, const char *user, const char *role)
{
	session_t *slot = NULL;
	uint64_t now = gh_mono_ms();
	for (int i = 0; i < MAX_SESSIONS; i++) {
		session_t *s = &w->sessions[i];
		if (s->token[0] && (now - s->last_ms > w->idle_ms || now - s->created_ms > w->max_ms))
			memset(s, 0, sizeof *s);
		if (!s->token[0] && !slot)
			slot = s;
	}
	if (!slot) { /* full: the least recently used goes */
		slot = &w->sessions[0];
		for (int i = 1; i < MAX_SESSIONS; i++)
			if (w->sessions[i].last_ms < slot->last_ms)
				slot = &w->sessions[i];
	}
	memset(slot, 0, sizeof *slot);
	random_token(slot->token);
	random_token(slot->csrf);
	snprintf(slot->user, sizeof slot->user, "%s", user);
	snprintf(slot->role, sizeof slot->role, "%s", role);
	slot->created_ms = slot->last_ms = now;
	return slot;
}

static failrec_t *fail_find(web_t *w, const char *key, int create)
{
	uint64_t now = gh_mono_ms();
	failrec_t *free_slot = NULL, *oldest = &w->fails[0];
	for (size_t i = 0; i < sizeof w->fails / sizeof w->fails[0]; i++) {
		failrec_t *f = &w->fails[i];
		if (f->key[0] && now - f->first_ms > FAIL_WINDOW_MS)
			memset(f, 0, sizeof *f);
		if (f->key[0] && !strcmp(f->key, key))
			return f;
		if (!f->key[0] && !free_slot)
			free_slot = f;
		if (f->first_ms < oldest->first_ms)
			oldest = f;
	}
	if (!create)
		return NULL;
	failrec_t *f = free_slot ? free_slot : oldest;
	memset(f, 0, sizeof *f);
	snprintf(f->key, sizeof f->key, "%s", key);
	f->first_ms = now;
	return f;
}

/* seconds to wait before another login attempt for this address or user */
static long login_blocked(web_t *w, const char *peer, const char *user)
{
	char k[80];
	long wait = 0;
	uint64_t now = gh_mono_ms();
	for (int i = 0; i < 2; i++) {
		snprintf(k, sizeof k, i ? "user:%.60s" : "ip:%.60s", i ? user : peer);
		failrec_t *f = fail_find(w, k, 0);
		if (f && f->n >= (i ? FAIL_MAX_USER : FAIL_MAX_IP)) {
			long left = (long)((f->first_ms + FAIL_WINDOW_MS - now) / 1000) + 1;
			if (left > wait)
				wait = left;
		}
	}
	return wait;
}

static void login_failed(web_t *w, const char *peer, const char *user)
{
	char k[80];
	snprintf(k, sizeof k, "ip:%.60s", peer);
	fail_find(w, k, 1)->n++;
	snprintf(k, sizeof k, "user:%.60s", user);
	fail_find(w, k, 1)->n++;
}

/* ---- roles ---- */

static int role_rank(const char *role)
{
	return !strcmp(role, "admin") ? 3 : !strcmp(role, "manager") ? 2 : !strcmp(role, "viewer") ? 1 : 0;
}

/* what a manager may change: people, credentials, groups, temp keys (ADMIN.md) */
static int manager_may_edit(ent_t e)
{
	return e == ENT_PERSON || e == ENT_CREDENTIAL || e == ENT_ACCESS_GROUP || e == ENT_TEMP_KEY ||
	       e == ENT_APARTMENT;
}

/* ---- the API ---- */

static json_t *body_json(pss_t *p)
{
	if (!p->body || !p->len) {
		answer_error(p, 400, "malformed", NULL, "a JSON body is required");
		return NULL;
	}
	json_error_t je;
	json_t *j = json_loadb(p->body, p->len, 0, &je);
	if (!j) {
		char m[256];
		snprintf(m, sizeof m, "the body is not JSON: %s (line %d)", je.text, je.line);
		answer_error(p, 400, "malformed", NULL, m);
	}
	return j;
}

static void login_work(uv_work_t *req)
{
	login_job_t *j = req->data;
	j->ok = users_hash_check(j->password, j->hash) == 0 && j->found;
}

static void login_done(uv_work_t *req, int status)
{
	login_job_t *j = req->data;
	(void)status;
	OPENSSL_cleanse(j->password, sizeof j->password);
	if (--j->w->jobs == 0 && !g_web) {
		free(j->w); /* web_free ran while this login was on the thread pool */
		free(j);
		return;
	}
	if (j->w->stopping)
		j->pss = NULL;
	pss_t *p = j->pss;
	if (!j->ok) {
		login_failed(j->w, j->peer, j->user);
		log_warn("web", "failed login for \"%.64s\" from %s", j->user, j->peer);
	}
	if (p) {
		p->job = NULL;
		if (!j->ok) {
			answer_error(p, 401, "unauthorized", NULL, "wrong user name or password");
		} else {
			session_t *s = session_new(j->w, j->user, j->role);
			snprintf(p->cookie, sizeof p->cookie, "gh_session=%s; Path=/; HttpOnly; Secure; SameSite=Strict",
				 s->token);
			log_info("web", "%s logged in from %s (%s)", j->user, j->peer, j->role);
			answer_json(p, 200, json_pack("{s:s,s:s,s:s}", "csrf", s->csrf, "role", s->role, "user", s->user));
		}
	}
	free(j);
}

static void api_login(pss_t *p, const char *peer)
{
	json_t *b = body_json(p);
	if (!b)
		return;
	const char *user = json_string_value(json_object_get(b, "user"));
	const char *pw = json_string_value(json_object_get(b, "password"));
	if (!user || !pw || strlen(user) > 64 || strlen(pw) > 255) {
		json_decref(b);
		answer_error(p, 400, "malformed", !user ? "user" : "password", "user and password are required strings");
		return;
	}
	long wait = login_blocked(p->w, peer, user);
	if (wait > 0) {
		p->retry_after = wait;
		log_warn("web", "login for \"%.64s\" from %s refused: too many failures", user, peer);
		json_decref(b);
		answer_error(p, 429, "rate_limited", NULL, "too many failed logins: try again later");
		return;
	}
	login_job_t *j = calloc(1, sizeof *j);
	if (!j) {
		json_decref(b);
		answer_error(p, 500, "nomem", NULL, "out of memory");
		return;
	}
	j->w = p->w;
	j->pss = p;
	snprintf(j->user, sizeof j->user, "%s", user);
	snprintf(j->password, sizeof j->password, "%s", pw);
	snprintf(j->peer, sizeof j->peer, "%s", peer);
	j->found = users_lookup(p->w->st, user, j->hash, sizeof j->hash, j->role, sizeof j->role) == 0;
	json_object_set_new(b, "password", json_string("")); /* not kept around */
	json_decref(b);
	j->work.data = j;
	p->job = j;
	p->w->jobs++;
	if (uv_queue_work(p->w->loop, &j->work, login_work, login_done)) {
		p->w->jobs--;
		p->job = NULL;
		free(j);
		answer_error(p, 500, "busy", NULL, "cannot check the password now");
	}
}

/* The status document counts tables (the outbox can hold millions of
 * events during an outage): dashboards that poll share one answer for
 * half a second. */
static void api_status(pss_t *p)
{
	web_t *w = p->w;
	uint64_t now = gh_mono_ms();
	if (!w->status_cache || now - w->status_ms > 500) {
		json_t *req = json_pack("{s:s}", "op", "status");
		json_t *s = ctl_handle(&w->env, req);
		json_decref(req);
		json_object_del(s, "ok");
		free(w->status_cache);
		w->status_cache = json_dumps(s, JSON_COMPACT);
		json_decref(s);
		w->status_ms = now;
	}
	answer(p, 200, "application/json", w->status_cache ? strdup(w->status_cache) : NULL);
}

/* ?NAME=value into OUT ("" when absent) */
static void urlarg(struct lws *wsi, const char *name, char *out, int len)
{
	char buf[512], key[64];
	snprintf(key, sizeof key, "%s=", name);
	const char *v = lws_get_urlarg_by_name(wsi, key, buf, (int)sizeof buf);
	snprintf(out, (size_t)len, "%s", v ? v : "");
}

/* A device's broker account ([mqtt] manage_accounts, MQTT.md: username =
 * MAC, a password issued here, a role confining it to its own topics): a
 * short dynamic-security session on the thread pool, off the loop. */
static void acct_work(uv_work_t *req)
{
	login_job_t *j = req->data;
	const gh_config_t *c = j->w->cfg;
	char gwpw[256] = "";
	if (c->mqtt_password_file[0] && config_read_secret(c->mqtt_password_file, gwpw, sizeof gwpw)) {
		j->rc = gh_err(&j->err, 500, "config", "", "cannot read [mqtt] password_file");
		return;
	}
	dynsec_conn_t dc = { .host = c->mqtt_host, .port = c->mqtt_port, .username = c->mqtt_username,
			     .password = gwpw[0] ? gwpw : NULL, .tls_ca = c->mqtt_tls_ca[0] ? c->mqtt_tls_ca : NULL };
	j->rc = dynsec_account(&dc, j->mac, j->kind == JOB_ACCT_DELETE ? NULL : j->password, &j->err);
	OPENSSL_cleanse(gwpw, sizeof gwpw);
}

static void acct_done(uv_work_t *req, int status)
{
	login_job_t *j = req->data;
	(void)status;
	web_t *w = j->w;
	if (--w->jobs == 0 && !g_web) {
		OPENSSL_cleanse(j->password, sizeof j->password);
		json_decref(j->entity);
		free(w);
		free(j);
		return;
	}
	if (w->stopping)
		j->pss = NULL;
	if (j->rc)
		log_err("web", "broker account of device %s: %s", j->mac, j->err.message);
	else
		log_info("web", "broker account of device %s %s by %s", j->mac,
			 j->kind == JOB_ACCT_DELETE ? "removed" : j->kind == JOB_ACCT_CREATE ? "created" : "given a new password",
			 j->user);
	if (j->rc && j->kind == JOB_ACCT_CREATE) {
		/* a device is registered with its account or not at all */
		ent_ctx_t ctx = { .local = 1, .actor = j->user };
		gh_err_t e2 = { 0 };
		if (ent_delete(w->st, ENT_DEVICE, j->mac, &ctx, &e2))
			log_err("web", "device %s stays registered without a broker account: %s", j->mac, e2.message);
	}
	pss_t *p = j->pss;
	if (p) {
		p->job = NULL;
		if (j->kind == JOB_ACCT_DELETE) {
			answer(p, 204, "application/json", NULL); /* the device is gone; a stale account is logged */
		} else if (j->rc) {
			answer_err(p, &j->err);
		} else {
			json_t *out = j->entity ? json_incref(j->entity) : json_pack("{s:s}", "id", j->mac);
			json_object_set_new(out, "mqtt_password", json_string(j->password));
			answer_json(p, j->kind == JOB_ACCT_CREATE ? 201 : 200, out);
		}
	}
	OPENSSL_cleanse(j->password, sizeof j->password);
	json_decref(j->entity);
	free(j);
}

/* Queues the account work for device MAC; the answer comes from acct_done.
 * ENTITY (taken) is the created device, answered with its password. */
static void acct_queue(pss_t *p, session_t *s, int kind, const char *mac, json_t *entity)
{
	login_job_t *j = calloc(1, sizeof *j);
	if (!j) {
		json_decref(entity);
		answer_error(p, 500, "nomem", NULL, "out of memory");
		return;
	}
	j->w = p->w;
	j->pss = p;
	j->kind = kind;
	j->entity = entity;
	snprintf(j->mac, sizeof j->mac, "%s", mac);
	snprintf(j->user, sizeof j->user, "%s", s->user);
	if (kind != JOB_ACCT_DELETE)
		gh_random_hex(j->password, 16);
	j->work.data = j;
	p->job = j;
	p->w->jobs++;
	if (uv_queue_work(p->w->loop, &j->work, acct_work, acct_done)) {
		p->w->jobs--;
		p->job = NULL;
		json_decref(j->entity);
		free(j);
		answer_error(p, 500, "busy", NULL, "cannot reach the broker now");
	}
}

/* Device items carry what the box knows of them (read-only, never stored
 * in the entity): "online" and "presence" {online, last_seen, model, fw, ip}
 * from the MQTT link (the entity's own "ip" is the configured one). */
static void add_presence(web_t *w, json_t *items)
{
	sqlite3_stmt *q = store_stmt(w->st, "SELECT online, last_seen, model, fw, ip FROM presence WHERE device = ?");
	size_t i;
	json_t *d;
	json_array_foreach(items, i, d) {
		json_t *pr = json_object();
		if (q) {
			sqlite3_bind_text(q, 1, json_string_value(json_object_get(d, "id")), -1, SQLITE_TRANSIENT);
			if (sqlite3_step(q) == SQLITE_ROW) {
				json_object_set_new(pr, "online", json_boolean(sqlite3_column_int(q, 0)));
				json_object_set_new(pr, "last_seen", json_integer(sqlite3_column_int64(q, 1)));
				static const char *const f[] = { "model", "fw", "ip" };
				for (int c = 0; c < 3; c++)
					if (sqlite3_column_type(q, c + 2) == SQLITE_TEXT)
						json_object_set_new(pr, f[c],
								    json_string((const char *)sqlite3_column_text(q, c + 2)));
			}
			sqlite3_reset(q);
		}
		if (!json_object_get(pr, "online")) {
			json_object_set_new(pr, "online", json_false());
			json_object_set_new(pr, "last_seen", json_null());
		}
		json_object_set(d, "online", json_object_get(pr, "online"));
		json_object_set_new(d, "presence", pr);
	}
}

static void api_entities(pss_t *p, session_t *s, ent_t e, const char *id, const char *rest)
{
	web_t *w = p->w;
	gh_err_t err = { 0 };
	ent_ctx_t ctx = { .local = 1, .actor = s->user };
	if (rest && *rest) {
		/* sub-resources */
		if (e == ENT_APARTMENT && id && !strcmp(rest, "reset") && p->method == LWSHUMETH_POST) {
			if (ent_apartment_reset(w->st, id, &ctx, &err))
				answer_err(p, &err);
			else
				answer_json(p, 200, json_pack("{s:b}", "ok", 1));
			return;
		}
		int n = 0;
		if (p->method == LWSHUMETH_POST &&
		    ((e == ENT_DEVICE && sscanf(rest, "relays/%d/open", &n) == 1) ||
		     (e == ENT_RELAY_BOARD && sscanf(rest, "channels/%d/open", &n) == 1))) {
			json_t *req = json_pack("{s:s,s:s,s:i,s:s}", "op", "relay.open", "target", id, "relay", n, "actor",
						s->user);
			json_t *r = ctl_handle(&w->env, req);
			json_decref(req);
			int ok = json_is_true(json_object_get(r, "ok"));
			const char *code = json_string_value(json_object_get(json_object_get(r, "error"), "code"));
			if (ok)
				answer_json(p, 200, r);
			else {
				answer_error(p, code && !strcmp(code, "not_found") ? 404 : 409, code ? code : "failed", NULL,
					     json_string_value(json_object_get(json_object_get(r, "error"), "message")));
				json_decref(r);
			}
			return;
		}
		if (e == ENT_DEVICE && !strcmp(rest, "password") && p->method == LWSHUMETH_POST) {
			/* a new MQTT password for a registered device, shown once */
			if (role_rank(s->role) < 3) {
				answer_error(p, 403, "forbidden", NULL, "only an admin issues device passwords");
			} else if (!w->cfg->manage_accounts) {
				answer_error(p, 409, "not_managed", NULL,
					     "[mqtt] manage_accounts is off: device accounts are managed elsewhere");
			} else if (ent_exists_pub(w->st, ENT_DEVICE, id) != 1) {
				answer_error(p, 404, "not_found", "id", "no such device");
			} else {
				acct_queue(p, s, JOB_ACCT_PASSWD, id, NULL);
			}
			return;
		}
		if (e == ENT_DEVICE && !strcmp(rest, "commands") && p->method == LWSHUMETH_POST) {
			json_t *b = body_json(p);
			if (!b)
				return;
			json_t *req = json_pack("{s:s,s:[s],s:O}", "op", "command", "devices", id, "command",
						json_object_get(b, "command") ? json_object_get(b, "command") : json_null());
			if (json_object_get(b, "args"))
				json_object_set(req, "args", json_object_get(b, "args"));
			json_decref(b);
			json_t *r = ctl_handle(&w->env, req);
			json_decref(req);
			if (json_is_true(json_object_get(r, "ok")))
				answer_json(p, 200, r);
			else {
				answer_error(p, 422, "invalid", "command",
					     json_string_value(json_object_get(json_object_get(r, "error"), "message")));
				json_decref(r);
			}
			return;
		}
		answer_error(p, 404, "not_found", NULL, "no such resource");
		return;
	}
	if (p->method == LWSHUMETH_GET) {
		json_t *out = NULL;
		if (id || e == ENT_SETTINGS) {
			if (ent_get(w->st, e, e == ENT_SETTINGS ? "site" : id, &out, &err)) {
				answer_err(p, &err);
				return;
			}
			if (e == ENT_DEVICE) {
				json_t *one = json_pack("[o]", out);
				add_presence(w, one);
				out = json_incref(json_array_get(one, 0));
				json_decref(one);
			}
			answer_json(p, 200, out);
			return;
		}
		char cursor[128] = "", lim[16] = "";
		urlarg(p->wsi, "cursor", cursor, sizeof cursor);
		urlarg(p->wsi, "limit", lim, sizeof lim);
		int limit = lim[0] ? atoi(lim) : 100;
		if (limit < 1 || limit > 1000) {
			answer_error(p, 400, "invalid", "limit", "limit must be 1..1000");
			return;
		}
		const char *keys[8], *vals[8];
		char fv[8][128];
		int nf = 0;
		for (int k = 0; ent_list_keys[k] && nf < 8; k++) {
			urlarg(p->wsi, ent_list_keys[k], fv[nf], sizeof fv[nf]);
			if (fv[nf][0]) {
				keys[nf] = ent_list_keys[k];
				vals[nf] = fv[nf];
				nf++;
			}
		}
		if (ent_list_where(w->st, e, keys, vals, nf, cursor[0] ? cursor : NULL, limit + 1, &out, &err)) {
			answer_err(p, &err);
			return;
		}
		if (e == ENT_DEVICE)
			add_presence(w, out);
		json_t *next = json_null();
		if (json_array_size(out) > (size_t)limit) {
			json_array_remove(out, (size_t)limit);
			next = json_incref(json_object_get(json_array_get(out, (size_t)limit - 1), "id"));
		}
		answer_json(p, 200, json_pack("{s:o,s:o}", "items", out, "next", next));
		return;
	}
	/* changes: the role decides */
	int rank = role_rank(s->role);
	if (rank < 2 || (rank == 2 && !manager_may_edit(e))) {
		answer_error(p, 403, "forbidden", NULL, "your role may not change this");
		return;
	}
	if (p->method == LWSHUMETH_DELETE) {
		if (!id) {
			answer_error(p, 405, "method", NULL, "DELETE needs an id");
			return;
		}
		if (ent_delete(w->st, e, id, &ctx, &err))
			answer_err(p, &err);
		else if (e == ENT_DEVICE && w->cfg->manage_accounts)
			acct_queue(p, s, JOB_ACCT_DELETE, id, NULL); /* removing a device removes its account */
		else
			answer(p, 204, "application/json", NULL);
		return;
	}
	if (p->method == LWSHUMETH_POST || p->method == LWSHUMETH_PUT) {
		if ((p->method == LWSHUMETH_POST) == (id != NULL) && e != ENT_SETTINGS) {
			answer_error(p, 405, "method", NULL, "POST creates (no id in the path), PUT updates /{id}");
			return;
		}
		json_t *b = body_json(p);
		if (!b)
			return;
		json_t *out = NULL;
		int existed = id ? ent_exists_pub(w->st, e, id) == 1 : 0;
		if (p->method == LWSHUMETH_POST && json_is_string(json_object_get(b, "id")) &&
		    ent_exists_pub(w->st, e, json_string_value(json_object_get(b, "id"))) == 1) {
			json_decref(b);
			answer_error(p, 409, "exists", "id", "an entity with this id exists: PUT to update it");
			return;
		}
		if (ent_put(w->st, e, e == ENT_SETTINGS ? "site" : id, b, &ctx, &out, &err))
			answer_err(p, &err);
		else if (e == ENT_DEVICE && !existed && w->cfg->manage_accounts)
			acct_queue(p, s, JOB_ACCT_CREATE, json_string_value(json_object_get(out, "id")), out);
		else
			answer_json(p, p->method == LWSHUMETH_POST || !existed ? 201 : 200, out);
		json_decref(b);
		return;
	}
	answer_error(p, 405, "method", NULL, "method not allowed");
}

static void api_users(pss_t *p, session_t *s, const char *name)
{
	gh_err_t err = { 0 };
	if (role_rank(s->role) < 3) {
		answer_error(p, 403, "forbidden", NULL, "only an admin manages users");
		return;
	}
	if (p->method == LWSHUMETH_GET && !name) {
		sqlite3_stmt *q = store_stmt(p->w->st, "SELECT name, role, created_at, updated_at FROM users ORDER BY name");
		json_t *a = json_array();
		while (q && sqlite3_step(q) == SQLITE_ROW)
			json_array_append_new(a, json_pack("{s:s,s:s,s:I,s:I}", "name", sqlite3_column_text(q, 0), "role",
							   sqlite3_column_text(q, 1), "created_at",
							   (json_int_t)sqlite3_column_int64(q, 2), "updated_at",
							   (json_int_t)sqlite3_column_int64(q, 3)));
		if (q)
			sqlite3_reset(q);
		answer_json(p, 200, json_pack("{s:o,s:n}", "items", a, "next"));
		return;
	}
	if (p->method == LWSHUMETH_POST && !name) {
		json_t *b = body_json(p);
		if (!b)
			return;
		const char *n = json_string_value(json_object_get(b, "name"));
		const char *r = json_string_value(json_object_get(b, "role"));
		const char *pw = json_string_value(json_object_get(b, "password"));
		if (!n || !r || !pw)
			answer_error(p, 400, "malformed", !n ? "name" : !r ? "role" : "password",
				     "name, role and password are required");
		else if (users_add(p->w->st, n, r, pw, s->user, &err))
			answer_err(p, &err);
		else
			answer_json(p, 201, json_pack("{s:s,s:s}", "name", n, "role", r));
		json_decref(b);
		return;
	}
	if (p->method == LWSHUMETH_DELETE && name) {
		if (!strcmp(name, s->user))
			answer_error(p, 409, "self", "name", "you cannot delete yourself");
		else if (users_del(p->w->st, name, s->user, &err))
			answer_err(p, &err);
		else
			answer(p, 204, "application/json", NULL);
		return;
	}
	answer_error(p, 405, "method", NULL, "method not allowed");
}

static void api_conflicts(pss_t *p)
{
	sqlite3_stmt *q = store_stmt(p->w->st, "SELECT id, ts, change_id, entity, eid, local, cloud, error FROM conflicts "
					       "ORDER BY id DESC LIMIT 500");
	json_t *a = json_array();
	while (q && sqlite3_step(q) == SQLITE_ROW) {
		const char *l = (const char *)sqlite3_column_text(q, 5), *c = (const char *)sqlite3_column_text(q, 6);
		json_array_append_new(
		    a, json_pack("{s:I,s:I,s:s,s:s,s:s,s:o,s:o,s:s?}", "id", (json_int_t)sqlite3_column_int64(q, 0), "ts",
				 (json_int_t)sqlite3_column_int64(q, 1), "change_id", sqlite3_column_text(q, 2), "entity",
				 sqlite3_column_text(q, 3), "entity_id", sqlite3_column_text(q, 4), "local",
				 l ? json_loads(l, 0, NULL) : json_null(), "cloud", c ? json_loads(c, 0, NULL) : json_null(),
				 "error", sqlite3_column_text(q, 7)));
	}
	if (q)
		sqlite3_reset(q);
	answer_json(p, 200, json_pack("{s:o,s:n}", "items", a, "next"));
}

static void api_import(pss_t *p, session_t *s)
{
	if (role_rank(s->role) < 2) {
		answer_error(p, 403, "forbidden", NULL, "your role may not import");
		return;
	}
	FILE *f = fmemopen(p->body ? p->body : (char *)"", p->len, "r");
	if (!f) {
		answer_error(p, 500, "nomem", NULL, "cannot read the upload");
		return;
	}
	const ent_ctx_t ctx = { .local = 1, .actor = s->user };
	json_t *report = NULL;
	gh_err_t err = { 0 };
	char partial[8] = "";
	urlarg(p->wsi, "partial", partial, sizeof partial);
	int rc = import_residents(p->w->st, f, &ctx, partial[0] == '1' || partial[0] == 't', &report, &err);
	fclose(f);
	if (!report)
		answer_err(p, &err);
	else
		answer_json(p, rc ? 422 : 200, report);
}

static void api_emergency(pss_t *p, session_t *s)
{
	json_t *b = body_json(p);
	if (!b)
		return;
	json_t *req = json_pack("{s:s,s:O}", "op", "emergency", "state",
				json_object_get(b, "state") ? json_object_get(b, "state") : json_null());
	if (json_object_get(b, "doors"))
		json_object_set(req, "doors", json_object_get(b, "doors"));
	json_decref(b);
	json_t *r = ctl_handle(&p->w->env, req);
	json_decref(req);
	if (json_is_true(json_object_get(r, "ok"))) {
		log_warn("web", "emergency %s by %s", json_string_value(json_object_get(r, "state")), s->user);
		answer_json(p, 200, r);
	} else {
		answer_error(p, 422, "invalid", "state",
			     json_string_value(json_object_get(json_object_get(r, "error"), "message")));
		json_decref(r);
	}
}

/* ---- the live feed (/api/v1/ws) ---- */

static void ws_send(wsc_t *c, const char *msg)
{
	if (c->count == WS_QUEUE) { /* a client that does not read loses its oldest */
		free(c->q[c->head]);
		c->head = (c->head + 1) % WS_QUEUE;
		c->count--;
		c->dropped++;
	}
	c->q[(c->head + c->count) % WS_QUEUE] = strdup(msg);
	c->count++;
	lws_callback_on_writable(c->wsi);
}

static void broadcast(web_t *w, json_t *msg)
{
	char *s = json_dumps(msg, JSON_COMPACT);
	json_decref(msg);
	if (!s)
		return;
	for (wsc_t *c = w->clients; c; c = c->next)
		ws_send(c, s);
	free(s);
}

static int64_t max_id(store_t *st, const char *sql)
{
	sqlite3_stmt *q = store_stmt(st, sql);
	int64_t v = 0;
	if (q && sqlite3_step(q) == SQLITE_ROW)
		v = sqlite3_column_int64(q, 0);
	if (q)
		sqlite3_reset(q);
	return v;
}

/* new rows of a log since *LAST, each as {"type":"event","log":LOG,...} */
/* a log row as a feed message: {"type":"event","log":LOG, its columns;
 * the row's own "type" as "log_type"} */
static json_t *row_event(sqlite3_stmt *q, const char *log)
{
	json_t *o = json_pack("{s:s,s:s}", "type", "event", "log", log);
	for (int c = 0; c < sqlite3_column_count(q); c++) {
		const char *cn = sqlite3_column_name(q, c);
		if (!strcmp(cn, "type"))
			cn = "log_type"; /* "type" is the message's */
		int t = sqlite3_column_type(q, c);
		json_object_set_new(o, cn, t == SQLITE_INTEGER ? json_integer(sqlite3_column_int64(q, c))
					   : t == SQLITE_NULL  ? json_null()
							       : json_string((const char *)sqlite3_column_text(q, c)));
	}
	return o;
}

static void feed_rows(web_t *w, const char *sql, const char *log, int64_t *last)
{
	sqlite3_stmt *q = store_stmt(w->st, sql);
	if (!q)
		return;
	sqlite3_bind_int64(q, 1, *last);
	while (sqlite3_step(q) == SQLITE_ROW) {
		json_t *o = row_event(q, log);
		*last = json_integer_value(json_object_get(o, "id"));
		broadcast(w, o);
	}
	sqlite3_reset(q);
}

/* A client back after a gap (?door=ID&alarm=ID&call=ID: the last ids it
 * saw) gets the rows it missed, up to what the feed has sent everyone, at
 * most 300 per log (the client's queue holds 1024; the logs page has
 * the rest). */
static void catch_up(web_t *w, wsc_t *c, struct lws *wsi)
{
	static const struct {
		const char *arg, *log, *sql;
	} logs[] = {
		{ "door", "door", "SELECT * FROM door_logs WHERE id > ? AND id <= ? ORDER BY id LIMIT 300" },
		{ "alarm", "alarm", "SELECT * FROM alarm_logs WHERE id > ? AND id <= ? ORDER BY id LIMIT 300" },
		{ "call", "call", "SELECT * FROM call_logs WHERE id > ? AND id <= ? ORDER BY id LIMIT 300" },
	};
	const int64_t upto[] = { w->last_door, w->last_alarm, w->last_call };
	for (int i = 0; i < 3; i++) {
		char v[32];
		urlarg(wsi, logs[i].arg, v, sizeof v);
		if (!v[0] || strspn(v, "0123456789") != strlen(v))
			continue;
		int64_t since = strtoll(v, NULL, 10);
		if (since < upto[i] - 100000000LL || since >= upto[i])
			continue;
		sqlite3_stmt *q = store_stmt(w->st, logs[i].sql);
		if (!q)
			continue;
		sqlite3_bind_int64(q, 1, since);
		sqlite3_bind_int64(q, 2, upto[i]);
		while (sqlite3_step(q) == SQLITE_ROW) {
			json_t *o = row_event(q, logs[i].log);
			json_object_set_new(o, "missed", json_true());
			char *m = json_dumps(o, JSON_COMPACT);
			json_decref(o);
			if (m)
				ws_send(c, m);
			free(m);
		}
		sqlite3_reset(q);
	}
}

static void on_feed(uv_timer_t *t)
{
	web_t *w = t->data;
	if (!w->clients)
		return;
	feed_rows(w, "SELECT * FROM door_logs WHERE id > ? ORDER BY id LIMIT 2000", "door", &w->last_door);
	feed_rows(w, "SELECT * FROM alarm_logs WHERE id > ? ORDER BY id LIMIT 500", "alarm", &w->last_alarm);
	feed_rows(w, "SELECT * FROM call_logs WHERE id > ? ORDER BY id LIMIT 500", "call", &w->last_call);
	/* devices online/offline */
	sqlite3_stmt *q = store_stmt(w->st, "SELECT device, online FROM presence");
	while (q && sqlite3_step(q) == SQLITE_ROW) {
		const char *mac = (const char *)sqlite3_column_text(q, 0);
		int on = sqlite3_column_int(q, 1);
		json_t *was = json_object_get(w->presence, mac);
		if (!was || json_is_true(was) != on) {
			json_object_set_new(w->presence, mac, json_boolean(on));
			broadcast(w, json_pack("{s:s,s:s,s:b}", "type", "device", "mac", mac, "online", on));
		}
	}
	if (q)
		sqlite3_reset(q);
	/* boards */
	json_t *boards = w->env.bus ? busmgr_status(w->env.bus) : json_array();
	size_t i;
	json_t *b;
	json_array_foreach(boards, i, b) {
		const char *id = json_string_value(json_object_get(b, "id"));
		json_t *was = json_object_get(w->boards, id);
		/* a change of state, not of the request counters */
		json_t *now = json_pack("{s:O,s:O}", "online", json_object_get(b, "online"), "last_error",
					json_object_get(b, "last_error") ? json_object_get(b, "last_error") : json_null());
		if (!was || !json_equal(was, now)) {
			json_object_set(w->boards, id, now);
			broadcast(w, json_pack("{s:s,s:s,s:O,s:O}", "type", "board", "id", id, "online",
					       json_object_get(b, "online"), "last_error", json_object_get(b, "last_error")));
		}
		json_decref(now);
	}
	json_decref(boards);
	const char *wan = w->env.wan ? w->env.wan : "standalone";
	if (strcmp(wan, w->wan)) {
		snprintf(w->wan, sizeof w->wan, "%s", wan);
		broadcast(w, json_pack("{s:s,s:s}", "type", "wan", "state", wan));
	}
	int em = w->env.en ? engine_emergency_state(w->env.en, NULL) : 0;
	if (em != w->emergency) {
		w->emergency = em;
		broadcast(w, json_pack("{s:s,s:b}", "type", "emergency", "on", em));
	}
}

static int same_origin(struct lws *wsi)
{
	char origin[256] = "", host[256] = "";
	if (lws_hdr_copy(wsi, origin, sizeof origin, WSI_TOKEN_ORIGIN) <= 0)
		return 1; /* not a browser */
	lws_hdr_copy(wsi, host, sizeof host, WSI_TOKEN_HOST);
	const char *o = strstr(origin, "://");
	return o && host[0] && !strcmp(o + 3, host);
}

static int ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	wsc_t *c = user;
	web_t *w = g_web;
	switch (reason) {
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: {
		char uri[64] = "";
		lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI);
		if (!w || strcmp(uri, "/api/v1/ws") || !same_origin(wsi))
			return 1;
		session_t *s = session_of(w, wsi);
		if (!s) {
			log_info("web", "websocket without a session refused");
			return 1;
		}
		snprintf(c->user, sizeof c->user, "%s", s->user);
		return 0;
	}
	case LWS_CALLBACK_ESTABLISHED:
		c->wsi = wsi;
		c->w = w;
		c->next = w->clients;
		w->clients = c;
		if (!w->presence) { /* the first client: the feed starts from now */
			w->presence = json_object();
			w->boards = json_object();
			w->last_door = max_id(w->st, "SELECT COALESCE(max(id), 0) FROM door_logs");
			w->last_alarm = max_id(w->st, "SELECT COALESCE(max(id), 0) FROM alarm_logs");
			w->last_call = max_id(w->st, "SELECT COALESCE(max(id), 0) FROM call_logs");
			w->emergency = w->env.en ? engine_emergency_state(w->env.en, NULL) : 0;
			snprintf(w->wan, sizeof w->wan, "%s", w->env.wan ? w->env.wan : "standalone");
		}
		{
			json_t *hello = json_pack("{s:s,s:s,s:s,s:b,s:{s:I,s:I,s:I}}", "type", "hello", "user", c->user,
						  "wan", w->wan, "emergency", w->emergency, "last", "door",
						  (json_int_t)w->last_door, "alarm", (json_int_t)w->last_alarm, "call",
						  (json_int_t)w->last_call);
			char *m = json_dumps(hello, JSON_COMPACT);
			json_decref(hello);
			if (m)
				ws_send(c, m);
			free(m);
			catch_up(w, c, wsi);
		}
		return 0;
	case LWS_CALLBACK_SERVER_WRITEABLE: {
		if (!c->count)
			return 0;
		/* everything queued goes in one frame: one message alone, several
		 * as a JSON array of messages (one TLS record instead of many) */
		int k = c->count < 256 ? c->count : 256;
		size_t n = 2;
		for (int i = 0; i < k; i++)
			n += strlen(c->q[(c->head + i) % WS_QUEUE]) + 1;
		unsigned char *buf = malloc(LWS_PRE + n);
		if (!buf)
			return -1;
		unsigned char *o = buf + LWS_PRE, *start = o;
		if (k > 1)
			*o++ = '[';
		for (int i = 0; i < k; i++) {
			char *m = c->q[c->head];
			size_t ml = strlen(m);
			if (i)
				*o++ = ',';
			memcpy(o, m, ml);
			o += ml;
			free(m);
			c->q[c->head] = NULL;
			c->head = (c->head + 1) % WS_QUEUE;
			c->count--;
		}
		if (k > 1)
			*o++ = ']';
		size_t flen = (size_t)(o - start);
		int wr = lws_write(wsi, start, flen, LWS_WRITE_TEXT);
		free(buf);
		if (wr < (int)flen)
			return -1;
		if (c->count)
			lws_callback_on_writable(wsi);
		return 0;
	}
	case LWS_CALLBACK_RECEIVE:
		return 0; /* the feed is one-way; pings are answered by lws */
	case LWS_CALLBACK_CLOSED:
		if (w)
			for (wsc_t **pp = &w->clients; *pp; pp = &(*pp)->next)
				if (*pp == c) {
					*pp = c->next;
					break;
				}
		while (c->count) {
			free(c->q[c->head]);
			c->head = (c->head + 1) % WS_QUEUE;
			c->count--;
		}
		return 0;
	default:
		break;
	}
	(void)in;
	(void)len;
	return 0;
}

/* ---- logs ---- */

typedef struct logspec {
	const char *name, *table;
	/* query filter -> column (NULL: not offered) */
	const char *type, *device, *apartment, *apt, *building, *result;
} logspec_t;

static const logspec_t logspecs[] = {
	{ "door", "door_logs", "type", "device", "apartment", "apt", "building", "result" },
	{ "calls", "call_logs", "phase", "device", "apartment", NULL, NULL, NULL },
	{ "alarms", "alarm_logs", "kind", "device", "apartment", NULL, NULL, "state" },
	{ "audit", "audit_logs", "action", NULL, NULL, NULL, NULL, NULL },
	{ "detections", "detection_logs", "kind", "device", "apartment", NULL, NULL, NULL },
};

static void api_logs(pss_t *p, const char *which)
{
	const logspec_t *ls = NULL;
	for (size_t i = 0; i < sizeof logspecs / sizeof logspecs[0]; i++)
		if (!strcmp(which, logspecs[i].name))
			ls = &logspecs[i];
	if (!ls) {
		answer_error(p, 404, "not_found", NULL, "logs are door, calls, alarms, audit or detections");
		return;
	}
	char fmt[16], accept[128] = "", lim[16], cur[32];
	urlarg(p->wsi, "format", fmt, sizeof fmt);
	lws_hdr_copy(p->wsi, accept, sizeof accept, WSI_TOKEN_HTTP_ACCEPT);
	int csv = !strcmp(fmt, "csv") || strstr(accept, "text/csv") != NULL;
	urlarg(p->wsi, "limit", lim, sizeof lim);
	urlarg(p->wsi, "cursor", cur, sizeof cur);
	long limit = lim[0] ? atol(lim) : csv ? 1000000 : 100;
	if (limit < 1 || limit > (csv ? 1000000 : 1000)) {
		answer_error(p, 400, "invalid", "limit", csv ? "limit must be 1..1000000" : "limit must be 1..1000");
		return;
	}
	/* the SQL is built from the fixed names above only; values are bound */
	char sql[1024];
	int n = snprintf(sql, sizeof sql, "SELECT * FROM %s WHERE 1", ls->table);
	const char *binds[10];
	int nb = 0;
	int64_t from = 0, to = 0, cursor = cur[0] ? atoll(cur) : 0;
	char v[8][128];
	const char *keys[] = { "from", "to", "type", "device", "apartment", "apt", "building", "result" };
	const char *cols[] = { NULL, NULL, ls->type, ls->device, ls->apartment, ls->apt, ls->building, ls->result };
	for (int k = 0; k < 8; k++) {
		urlarg(p->wsi, keys[k], v[k], sizeof v[k]);
		if (!v[k][0])
			continue;
		if (k < 2) {
			json_t *j = json_string(v[k]);
			int64_t t = 0;
			if (strspn(v[k], "0123456789") == strlen(v[k]))
				t = atoll(v[k]);
			else if (gh_ts_parse(j, &t)) {
				json_decref(j);
				answer_error(p, 400, "invalid", keys[k], "from/to are Unix seconds or ISO-8601 times");
				return;
			}
			json_decref(j);
			if (k == 0)
				from = t;
			else
				to = t;
			n += snprintf(sql + n, sizeof sql - (size_t)n, " AND ts %s ?%d", k ? "<=" : ">=", k + 1);
			continue;
		}
		if (!cols[k]) {
			answer_error(p, 400, "invalid", keys[k], "this log cannot be filtered by that");
			return;
		}
		n += snprintf(sql + n, sizeof sql - (size_t)n, " AND %s = ?%d", cols[k], 10 + nb);
		binds[nb++] = v[k];
	}
	char solved[8];
	urlarg(p->wsi, "solved", solved, sizeof solved);
	if (solved[0]) {
		int yes = !strcmp(solved, "1") || !strcmp(solved, "true");
		if (strcmp(ls->name, "alarms") || (!yes && strcmp(solved, "0") && strcmp(solved, "false"))) {
			answer_error(p, 400, "invalid", "solved",
				     strcmp(ls->name, "alarms") ? "only the alarm log has a solved filter"
								: "solved is 1 or 0 (true or false)");
			return;
		}
		n += snprintf(sql + n, sizeof sql - (size_t)n, " AND solved = %d", yes);
	}
	if (cursor > 0)
		n += snprintf(sql + n, sizeof sql - (size_t)n, " AND id < ?3");
	snprintf(sql + n, sizeof sql - (size_t)n, " ORDER BY id DESC LIMIT ?4");
	sqlite3_stmt *q = NULL;
	if (sqlite3_prepare_v2(store_db(p->w->st), sql, -1, &q, NULL) != SQLITE_OK) {
		answer_error(p, 500, "database", NULL, sqlite3_errmsg(store_db(p->w->st)));
		return;
	}
	if (v[0][0])
		sqlite3_bind_int64(q, 1, from);
	if (v[1][0])
		sqlite3_bind_int64(q, 2, to);
	if (cursor > 0)
		sqlite3_bind_int64(q, 3, cursor);
	sqlite3_bind_int64(q, 4, csv ? limit : limit + 1);
	for (int i = 0; i < nb; i++)
		sqlite3_bind_text(q, 10 + i, binds[i], -1, SQLITE_STATIC);
	int ncol = sqlite3_column_count(q);
	if (csv) {
		char *buf = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&buf, &len);
		long rows = f ? csv_rows(q, f) : -1;
		sqlite3_finalize(q);
		if (f)
			fclose(f);
		if (rows < 0) {
			free(buf);
			answer_error(p, 500, "database", NULL, "the export failed part way: try again");
			return;
		}
		snprintf(p->disposition, sizeof p->disposition, "attachment; filename=\"%s-logs.csv\"", ls->name);
		answer(p, 200, "text/csv; charset=utf-8", buf);
		return;
	}
	json_t *items = json_array();
	int64_t last = 0;
	long rows = 0;
	while (sqlite3_step(q) == SQLITE_ROW) {
		if (++rows > limit)
			break;
		json_t *o = json_object();
		for (int c = 0; c < ncol; c++) {
			const char *cn = sqlite3_column_name(q, c);
			switch (sqlite3_column_type(q, c)) {
			case SQLITE_INTEGER:
				json_object_set_new(o, cn, json_integer(sqlite3_column_int64(q, c)));
				break;
			case SQLITE_NULL:
				json_object_set_new(o, cn, json_null());
				break;
			default:
				json_object_set_new(o, cn, json_string((const char *)sqlite3_column_text(q, c)));
			}
		}
		last = json_integer_value(json_object_get(o, "id"));
		json_array_append_new(items, o);
	}
	sqlite3_finalize(q);
	answer_json(p, 200, json_pack("{s:o,s:o}", "items", items, "next",
				      rows > limit ? json_integer(last) : json_null()));
}

static void api_alarm_solve(pss_t *p, session_t *s, const char *id)
{
	sqlite3_stmt *q = store_stmt(p->w->st, "UPDATE alarm_logs SET solved = 1, solved_by = ?, solved_at = ? "
					       "WHERE id = ? AND solved = 0");
	sqlite3_stmt *a = store_stmt(p->w->st, "INSERT INTO audit_logs(ts, actor, action, entity, eid) "
					       "VALUES (?, ?, 'solve', 'alarm', ?)");
	if (!q || !a || store_begin(p->w->st)) {
		answer_error(p, 500, "database", NULL, "cannot solve the alarm now");
		return;
	}
	sqlite3_bind_text(q, 1, s->user, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 2, gh_now());
	sqlite3_bind_int64(q, 3, atoll(id));
	sqlite3_step(q);
	sqlite3_reset(q);
	int changed = sqlite3_changes(store_db(p->w->st));
	if (changed) {
		sqlite3_bind_int64(a, 1, gh_now());
		sqlite3_bind_text(a, 2, s->user, -1, SQLITE_STATIC);
		sqlite3_bind_text(a, 3, id, -1, SQLITE_STATIC);
		sqlite3_step(a);
		sqlite3_reset(a);
	}
	if (store_commit(p->w->st)) {
		answer_error(p, 500, "database", NULL, "cannot solve the alarm now");
		return;
	}
	if (!changed)
		answer_error(p, 404, "not_found", "id", "no unsolved alarm with this id");
	else
		answer_json(p, 200, json_pack("{s:b}", "ok", 1));
}

/* one metric: HELP, TYPE and a value */
static void metric(FILE *f, const char *name, const char *type, const char *help, long long v)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n%s %lld\n", name, help, name, type, name, v);
}

/* Prometheus text: what an operator graphs (OPERATIONS.md lists them). */
static void metrics(pss_t *p)
{
	web_t *w = p->w;
	store_t *st = w->st;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f) {
		answer_error(p, 500, "nomem", NULL, "out of memory");
		return;
	}
	fprintf(f, "# HELP gatehouse_info the running version\n# TYPE gatehouse_info gauge\n"
		   "gatehouse_info{version=\"%s\"} 1\n", GH_VERSION);
	metric(f, "gatehouse_uptime_seconds", "gauge", "seconds since the daemon started",
	       (long long)((gh_mono_ms() - w->env.started_ms) / 1000));
	fprintf(f, "# HELP gatehouse_decisions_total door decisions since start, by result\n"
		   "# TYPE gatehouse_decisions_total counter\n"
		   "gatehouse_decisions_total{result=\"granted\"} %llu\n"
		   "gatehouse_decisions_total{result=\"denied\"} %llu\n",
		GH_COUNTER(decisions_granted), GH_COUNTER(decisions_denied));
	metric(f, "gatehouse_device_requests_total", "counter", "device requests answered over MQTT since start",
	       (long long)GH_COUNTER(mqtt_requests));
	metric(f, "gatehouse_events_in_total", "counter", "device events stored since start",
	       (long long)GH_COUNTER(events_in));
	metric(f, "gatehouse_events_duplicate_total", "counter", "device events received again (acked, stored once)",
	       (long long)GH_COUNTER(events_dup));
	json_t *cl = w->env.cloud ? cloud_status(w->env.cloud) : NULL;
	metric(f, "gatehouse_events_out_total", "counter", "events the cloud accepted since start",
	       cl ? (long long)json_integer_value(json_object_get(cl, "events_sent")) : 0);
	metric(f, "gatehouse_events_rejected_total", "counter", "events the cloud rejected since start",
	       cl ? (long long)json_integer_value(json_object_get(cl, "events_rejected")) : 0);
	json_decref(cl);
	struct {
		const char *name, *help, *sql;
	} m[] = {
		{ "gatehouse_door_logs_last_id", "id of the newest door log", "SELECT COALESCE(max(id), 0) FROM door_logs" },
		{ "gatehouse_outbox_pending", "events waiting for the cloud", "SELECT count(*) FROM outbox WHERE state = 'pending'" },
		{ "gatehouse_outbox_rejected", "events the cloud rejected, kept", "SELECT count(*) FROM outbox WHERE state = 'rejected'" },
		{ "gatehouse_outbox_dropped", "events evicted from a full outbox", "SELECT COALESCE((SELECT CAST(value AS INTEGER) FROM sync_state WHERE key = 'outbox_dropped'), 0)" },
		{ "gatehouse_changes_pending", "local edits waiting for the cloud", "SELECT count(*) FROM local_changes WHERE state = 'pending'" },
		{ "gatehouse_conflicts", "local edits the cloud refused", "SELECT count(*) FROM conflicts" },
		{ "gatehouse_devices_total", "registered devices", "SELECT count(*) FROM devices" },
		{ "gatehouse_devices_online", "devices online", "SELECT count(*) FROM presence p JOIN devices d ON d.id = p.device WHERE p.online = 1" },
		{ "gatehouse_alarms_unsolved", "alarms not solved yet", "SELECT count(*) FROM alarm_logs WHERE solved = 0 AND state = 'triggered'" },
	};
	for (size_t i = 0; i < sizeof m / sizeof m[0]; i++) {
		sqlite3_stmt *q = store_stmt(st, m[i].sql);
		long long v = 0;
		if (q && sqlite3_step(q) == SQLITE_ROW)
			v = sqlite3_column_int64(q, 0);
		if (q)
			sqlite3_reset(q);
		metric(f, m[i].name, "gauge", m[i].help, v);
	}
	const char *wan = w->env.wan ? w->env.wan : "standalone";
	metric(f, "gatehouse_wan_up", "gauge", "1 when the cloud answers", !strcmp(wan, "up"));
	fprintf(f, "# HELP gatehouse_wan_state the cloud link's state (1 for the current one)\n"
		   "# TYPE gatehouse_wan_state gauge\n");
	static const char *const wans[] = { "up", "down", "standalone" };
	for (int i = 0; i < 3; i++)
		fprintf(f, "gatehouse_wan_state{state=\"%s\"} %d\n", wans[i], !strcmp(wan, wans[i]));
	metric(f, "gatehouse_mqtt_connected", "gauge", "1 when the gateway is connected to the broker",
	       w->env.mqtt ? mqttlink_connected(w->env.mqtt) : 0);
	metric(f, "gatehouse_emergency", "gauge", "1 while the emergency doors are held open",
	       w->env.en ? engine_emergency_state(w->env.en, NULL) : 0);
	json_t *boards = w->env.bus ? busmgr_status(w->env.bus) : json_array();
	size_t i;
	json_t *b;
	static const char *const bm[][3] = {
		{ "gatehouse_board_online", "gauge", "1 when the board answers" },
		{ "gatehouse_bus_requests_total", "counter", "Modbus requests to the board since start" },
		{ "gatehouse_bus_errors_total", "counter", "Modbus requests to the board that failed since start" },
	};
	for (int k = 0; k < 3; k++) {
		fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", bm[k][0], bm[k][2], bm[k][0], bm[k][1]);
		json_array_foreach(boards, i, b) {
			const char *id = json_string_value(json_object_get(b, "id"));
			long long v = k == 0 ? json_is_true(json_object_get(b, "online"))
					     : (long long)json_integer_value(json_object_get(b, k == 1 ? "requests" : "errors"));
			fprintf(f, "%s{board=\"", bm[k][0]);
			for (const char *c = id ? id : ""; *c; c++) /* label escaping */
				fprintf(f, "%s%c", (*c == '"' || *c == '\\') ? "\\" : "", *c == '\n' ? ' ' : *c);
			fprintf(f, "\"} %lld\n", v);
		}
	}
	json_decref(boards);
	disk_metrics(w->env.disk, f);
	fclose(f);
	answer(p, 200, "text/plain; version=0.0.4", buf);
}

static int is_loopback(const char *peer)
{
	return !strcmp(peer, "127.0.0.1") || !strcmp(peer, "::1") || !strncmp(peer, "::ffff:127.", 10) ||
	       !strncmp(peer, "127.", 4);
}

static void route(pss_t *p)
{
	web_t *w = p->w;
	char peer[64] = "";
	lws_get_peer_simple(p->wsi, peer, sizeof peer);
	if (p->too_big) {
		answer_error(p, 413, "too_large", NULL, "the request body is too large");
		return;
	}
	if (!strcmp(p->path, "/metrics")) {
		if (!w->metrics_any && !is_loopback(peer))
			answer_error(p, 403, "forbidden", NULL, "/metrics answers on loopback only ([web] metrics_from)");
		else
			metrics(p);
		return;
	}
	const char *path = p->path;
	if (strncmp(path, "/api/v1/", 8)) {
		answer_error(p, 404, "not_found", NULL, "no such resource");
		return;
	}
	path += 8;
	if (!strcmp(path, "login")) {
		if (p->method != LWSHUMETH_POST)
			answer_error(p, 405, "method", NULL, "POST your user and password");
		else
			api_login(p, peer);
		return;
	}
	session_t *s = session_of(w, p->wsi);
	if (!s) {
		answer_error(p, 401, "unauthorized", NULL, "log in first");
		return;
	}
	if (p->method != LWSHUMETH_GET) {
		w->status_ms = 0; /* a change: the next status is fresh */
		char tok[80] = "";
		if (lws_hdr_custom_copy(p->wsi, tok, sizeof tok, "x-csrf-token:", 13) != 64 ||
		    CRYPTO_memcmp(tok, s->csrf, 64)) {
			answer_error(p, 403, "csrf", NULL, "missing or wrong X-CSRF-Token");
			return;
		}
		if (role_rank(s->role) < 2 && strcmp(path, "logout")) {
			answer_error(p, 403, "forbidden", NULL, "a viewer cannot change anything");
			return;
		}
	}
	if (!strcmp(path, "logout")) {
		log_info("web", "%s logged out", s->user);
		memset(s, 0, sizeof *s);
		snprintf(p->cookie, sizeof p->cookie, "gh_session=; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=0");
		answer_json(p, 200, json_pack("{s:b}", "ok", 1));
		return;
	}
	if (!strcmp(path, "me")) {
		answer_json(p, 200, json_pack("{s:s,s:s,s:s}", "user", s->user, "role", s->role, "csrf", s->csrf));
		return;
	}
	if (!strcmp(path, "status") && p->method == LWSHUMETH_GET) {
		api_status(p);
		return;
	}
	if (!strcmp(path, "emergency") && p->method == LWSHUMETH_POST) {
		api_emergency(p, s);
		return;
	}
	if (!strcmp(path, "conflicts") && p->method == LWSHUMETH_GET) {
		api_conflicts(p);
		return;
	}
	if (!strncmp(path, "logs/", 5) && p->method == LWSHUMETH_GET) {
		api_logs(p, path + 5);
		return;
	}
	int alarm = 0;
	char tail[16] = "";
	if (sscanf(path, "alarms/%d/%15s", &alarm, tail) == 2 && !strcmp(tail, "solve") && p->method == LWSHUMETH_POST) {
		char id[24];
		snprintf(id, sizeof id, "%d", alarm);
		api_alarm_solve(p, s, id);
		return;
	}
	if (!strcmp(path, "import/residents") && p->method == LWSHUMETH_POST) {
		api_import(p, s);
		return;
	}
	if (!strcmp(path, "users") || !strncmp(path, "users/", 6)) {
		api_users(p, s, path[5] == '/' && path[6] ? path + 6 : NULL);
		return;
	}
	/* {entities}[/{id}[/rest]] */
	char kind[64], id[128] = "";
	const char *slash = strchr(path, '/');
	size_t kl = slash ? (size_t)(slash - path) : strlen(path);
	if (kl >= sizeof kind) {
		answer_error(p, 404, "not_found", NULL, "no such resource");
		return;
	}
	memcpy(kind, path, kl);
	kind[kl] = '\0';
	const char *rest = NULL;
	if (slash) {
		const char *s2 = strchr(slash + 1, '/');
		size_t il = s2 ? (size_t)(s2 - slash - 1) : strlen(slash + 1);
		if (il >= sizeof id) {
			answer_error(p, 404, "not_found", NULL, "no such resource");
			return;
		}
		memcpy(id, slash + 1, il);
		id[il] = '\0';
		rest = s2 ? s2 + 1 : NULL;
	}
	int e = ent_parse(kind);
	if (e < 0) {
		answer_error(p, 404, "not_found", NULL, "no such resource");
		return;
	}
	api_entities(p, s, (ent_t)e, id[0] ? id : NULL, rest);
}

/* ---- libwebsockets glue ---- */

static int write_answer(pss_t *p)
{
	static unsigned char buf[LWS_PRE + 65536]; /* the loop thread only */
	unsigned char *start = buf + LWS_PRE, *ptr = start, *end = start + 4096;
	if (!p->headers_sent) {
		if (lws_add_http_common_headers(p->wsi, (unsigned)p->status, p->ctype,
						p->status == 204 ? LWS_ILLEGAL_HTTP_CONTENT_LEN : p->resp_len, &ptr, end))
			return 1;
		if (lws_add_http_header_by_name(p->wsi, (const unsigned char *)"cache-control:",
						(const unsigned char *)"no-store", 8, &ptr, end))
			return 1;
		if (p->cookie[0] &&
		    lws_add_http_header_by_name(p->wsi, (const unsigned char *)"set-cookie:",
						(const unsigned char *)p->cookie, (int)strlen(p->cookie), &ptr, end))
			return 1;
		if (p->disposition[0] &&
		    lws_add_http_header_by_name(p->wsi, (const unsigned char *)"content-disposition:",
						(const unsigned char *)p->disposition, (int)strlen(p->disposition), &ptr,
						end))
			return 1;
		if (p->retry_after > 0) {
			char ra[24];
			snprintf(ra, sizeof ra, "%ld", p->retry_after);
			if (lws_add_http_header_by_name(p->wsi, (const unsigned char *)"retry-after:",
							(const unsigned char *)ra, (int)strlen(ra), &ptr, end))
				return 1;
		}
		if (lws_finalize_write_http_header(p->wsi, start, &ptr, end))
			return 1;
		p->headers_sent = 1;
		if (p->resp_len) {
			lws_callback_on_writable(p->wsi);
			return 0;
		}
		return lws_http_transaction_completed(p->wsi) ? -1 : 0;
	}
	size_t n = p->resp_len - p->resp_sent;
	if (n > sizeof buf - LWS_PRE - 1)
		n = sizeof buf - LWS_PRE - 1;
	memcpy(start, p->resp + p->resp_sent, n);
	p->resp_sent += n;
	int last = p->resp_sent >= p->resp_len;
	if (lws_write(p->wsi, start, n, last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) != (int)n)
		return 1;
	if (!last) {
		lws_callback_on_writable(p->wsi);
		return 0;
	}
	return lws_http_transaction_completed(p->wsi) ? -1 : 0;
}

static void reset_pss(pss_t *p)
{
	free(p->body);
	free(p->resp);
	login_job_t *j = p->job;
	struct lws *wsi = p->wsi;
	web_t *w = p->w;
	memset(p, 0, sizeof *p);
	p->wsi = wsi;
	p->w = w;
	if (j)
		j->pss = NULL;
}

static int api_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	pss_t *p = user;
	switch (reason) {
	case LWS_CALLBACK_HTTP: {
		reset_pss(p);
		p->wsi = wsi;
		p->w = g_web;
		char *uri = NULL;
		int ulen = 0;
		p->method = lws_http_get_uri_and_method(wsi, &uri, &ulen);
		/* the path as requested (the mount strips its prefix from IN) */
		snprintf(p->path, sizeof p->path, "%.*s", ulen, uri ? uri : "");
		char *q = strchr(p->path, '?');
		if (q)
			*q = '\0';
		(void)in;
		(void)len;
		char cl[32] = "";
		long clen = lws_hdr_copy(wsi, cl, sizeof cl, WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0 ? atol(cl) : 0;
		if ((p->method == LWSHUMETH_POST || p->method == LWSHUMETH_PUT) && clen > 0) {
			if ((unsigned long)clen > BODY_MAX) {
				p->too_big = 1;
				route(p);
			}
			return 0; /* the body follows */
		}
		route(p);
		return 0;
	}
	case LWS_CALLBACK_HTTP_BODY:
		if (p->too_big || p->handled)
			return 0;
		if (p->len + len > BODY_MAX) {
			p->too_big = 1;
			route(p);
			return 0;
		}
		if (p->len + len + 1 > p->cap) {
			size_t cap = p->cap ? p->cap : 4096;
			while (cap < p->len + len + 1)
				cap *= 2;
			char *b = realloc(p->body, cap);
			if (!b)
				return -1;
			p->body = b;
			p->cap = cap;
		}
		memcpy(p->body + p->len, in, len);
		p->len += len;
		p->body[p->len] = '\0';
		return 0;
	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
		if (!p->handled)
			route(p);
		return 0;
	case LWS_CALLBACK_HTTP_WRITEABLE:
		if (!p->handled)
			return 0;
		return write_answer(p);
	case LWS_CALLBACK_HTTP_DROP_PROTOCOL: /* the transaction is over: lws frees the pss next */
	case LWS_CALLBACK_CLOSED_HTTP:
		if (p)
			reset_pss(p);
		return 0;
	default:
		break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static int http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	/* protocol 0 is also the one a websocket upgrade without a subprotocol
	 * gets: the live feed */
	switch (reason) {
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
	case LWS_CALLBACK_ESTABLISHED:
	case LWS_CALLBACK_SERVER_WRITEABLE:
	case LWS_CALLBACK_RECEIVE:
	case LWS_CALLBACK_CLOSED:
		return ws_callback(wsi, reason, user, in, len);
	default:
		return lws_callback_http_dummy(wsi, reason, user, in, len);
	}
}

static const struct lws_protocols protocols[] = {
	{ "gh-live", http_callback, sizeof(wsc_t), 4096, 0, NULL, 0 },
	{ "gh-api", api_callback, sizeof(pss_t), 0, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 },
};

/* the plain-HTTP port, if configured: everything moves to HTTPS */
static int redirect_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	if (reason != LWS_CALLBACK_HTTP)
		return lws_callback_http_dummy(wsi, reason, user, in, len);
	char host[256] = "", loc[700];
	lws_hdr_copy(wsi, host, sizeof host, WSI_TOKEN_HOST);
	char *colon = strrchr(host, ':');
	if (colon && !strchr(colon, ']'))
		*colon = '\0'; /* the HTTPS port replaces the HTTP one */
	char *uri = NULL;
	int ulen = 0;
	if (lws_http_get_uri_and_method(wsi, &uri, &ulen) < 0)
		ulen = 0;
	char args[256] = "";
	if (lws_hdr_copy(wsi, args, sizeof args, WSI_TOKEN_HTTP_URI_ARGS) < 0)
		args[0] = '\0';
	int n = snprintf(loc, sizeof loc, "https://%s:%d%.*s%s%s", host[0] ? host : "localhost",
			 g_web ? g_web->https_port : 443, ulen > 400 ? 0 : ulen, uri ? uri : "", args[0] ? "?" : "",
			 args);
	unsigned char buf[LWS_PRE + 1024], *start = buf + LWS_PRE, *p = start, *end = buf + sizeof buf - 1;
	if (lws_http_redirect(wsi, 301, (const unsigned char *)loc, n, &p, end) < 0)
		return -1;
	return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static const struct lws_protocols redirect_protocols[] = {
	{ "http", redirect_callback, 0, 0, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 },
};

/* ---- the certificate ---- */

int web_make_cert(const char *cert, const char *key)
{
	if (access(cert, R_OK) == 0 && access(key, R_OK) == 0)
		return 0;
	EVP_PKEY *pk = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	int rc = -1;
	if (!pk || !x)
		goto out;
	char host[256] = "gatehouse";
	gethostname(host, sizeof host - 1);
	ASN1_INTEGER_set(X509_get_serialNumber(x), (long)(gh_now() & 0x7fffffff));
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 10L * 365 * 24 * 3600);
	X509_set_pubkey(x, pk);
	X509_NAME *name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"gatehouse", -1, -1, 0);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)host, -1, -1, 0);
	X509_set_issuer_name(x, name);
	if (!X509_sign(x, pk, EVP_sha256()))
		goto out;
	mode_t old = umask(077);
	FILE *kf = fopen(key, "w");
	umask(old);
	if (!kf)
		goto out;
	int okk = PEM_write_PrivateKey(kf, pk, NULL, NULL, 0, NULL, NULL);
	fclose(kf);
	FILE *cf = fopen(cert, "w");
	if (!cf || !okk) {
		if (cf)
			fclose(cf);
		goto out;
	}
	int okc = PEM_write_X509(cf, x);
	fclose(cf);
	chmod(cert, 0644);
	rc = okc ? 0 : -1;
	if (!rc)
		log_info("web", "generated a self-signed certificate for %s: %s", host, cert);
out:
	X509_free(x);
	EVP_PKEY_free(pk);
	return rc;
}

/* ---- life cycle ---- */

static void lws_log(int level, const char *line)
{
	char l[512];
	snprintf(l, sizeof l, "%s", line);
	size_t n = strlen(l);
	while (n && (l[n - 1] == '\n' || l[n - 1] == '\r'))
		l[--n] = '\0';
	if (level & LLL_ERR)
		log_err("lws", "%s", l);
	else
		log_debug("lws", "%s", l);
}

web_t *web_start(uv_loop_t *loop, const gh_config_t *cfg, const ctl_env_t *env)
{
	if (!cfg->web_listen[0])
		return NULL;
	char iface[128] = "";
	int port = 0;
	const char *colon = strrchr(cfg->web_listen, ':');
	if (!colon || (port = atoi(colon + 1)) <= 0 || port > 65535) {
		log_err("web", "[web] listen must be ADDR:PORT, e.g. 0.0.0.0:8443");
		return NULL;
	}
	snprintf(iface, sizeof iface, "%.*s", (int)(colon - cfg->web_listen), cfg->web_listen);
	char cert[4200], key[4200], dir[4096];
	snprintf(dir, sizeof dir, "%s", cfg->db);
	char *sl = strrchr(dir, '/');
	if (sl)
		*sl = '\0';
	else
		snprintf(dir, sizeof dir, ".");
	snprintf(cert, sizeof cert, "%s", cfg->web_cert[0] ? cfg->web_cert : "");
	snprintf(key, sizeof key, "%s", cfg->web_key[0] ? cfg->web_key : "");
	if (!cert[0])
		snprintf(cert, sizeof cert, "%s/web.crt", dir);
	if (!key[0])
		snprintf(key, sizeof key, "%s/web.key", dir);
	if (web_make_cert(cert, key)) {
		log_err("web", "no TLS certificate (%s, %s) and none could be made: the web UI is off", cert, key);
		return NULL;
	}
	web_t *w = calloc(1, sizeof *w);
	if (!w)
		return NULL;
	g_web = w;
	w->loop = loop;
	w->env = *env;
	w->st = env->st;
	w->idle_ms = (uint64_t)cfg->web_session_idle_s * 1000;
	w->max_ms = (uint64_t)cfg->web_session_max_s * 1000;
	w->metrics_any = !strcmp(cfg->web_metrics_from, "any");
	w->cfg = cfg;
	snprintf(w->root, sizeof w->root, "%s", cfg->web_root);

	w->mount_metrics.mountpoint = "/metrics";
	w->mount_metrics.mountpoint_len = 8;
	w->mount_metrics.origin = "gh-api";
	w->mount_metrics.origin_protocol = LWSMPRO_CALLBACK;
	w->mount_api.mount_next = &w->mount_metrics;
	w->mount_api.mountpoint = "/api";
	w->mount_api.mountpoint_len = 4;
	w->mount_api.origin = "gh-api";
	w->mount_api.origin_protocol = LWSMPRO_CALLBACK;
	w->mount_ui.mount_next = &w->mount_api;
	w->mount_ui.mountpoint = "/";
	w->mount_ui.mountpoint_len = 1;
	w->mount_ui.origin = w->root;
	w->mount_ui.def = "index.html";
	w->mount_ui.origin_protocol = LWSMPRO_FILE;
	w->mount_ui.cache_max_age = 300;
	w->mount_ui.cache_reusable = 1;
	w->mount_ui.cache_revalidate = 1;

	lws_set_log_level(LLL_ERR | LLL_WARN, lws_log);
	w->https_port = port;
	struct lws_context_creation_info cinfo;
	memset(&cinfo, 0, sizeof cinfo);
	void *loops[1] = { loop };
	cinfo.foreign_loops = loops;
	cinfo.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT | LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
	cinfo.port = CONTEXT_PORT_NO_LISTEN;
	w->ctx = lws_create_context(&cinfo);
	if (!w->ctx) {
		log_err("web", "cannot set up libwebsockets");
		free(w);
		g_web = NULL;
		return NULL;
	}
	uv_timer_init(loop, &w->feed);
	w->feed.data = w;
	struct lws_context_creation_info info;
	memset(&info, 0, sizeof info);
	info.vhost_name = "https";
	info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT | LWS_SERVER_OPTION_HTTP_HEADERS_SECURITY_BEST_PRACTICES_ENFORCE;
	info.port = port;
	info.iface = iface[0] && strcmp(iface, "0.0.0.0") ? iface : NULL;
	/* an IPv4 address: lws must bind it with an IPv4 socket (with IPv6 on
	 * it would listen on every address) */
	struct in_addr a4;
	if (info.iface && inet_pton(AF_INET, info.iface, &a4) == 1)
		info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
	info.protocols = protocols;
	info.mounts = &w->mount_ui;
	info.ssl_cert_filepath = cert;
	info.ssl_private_key_filepath = key;
	info.alpn = "http/1.1";
	info.timeout_secs = 30;
	info.keepalive_timeout = 30;
	info.max_http_header_data = 4096;
	if (!lws_create_vhost(w->ctx, &info)) {
		log_err("web", "cannot serve HTTPS on %s (port in use, or a bad certificate?): the web UI is off",
			cfg->web_listen);
		w->failed = 1;
		return w; /* the context still has to be taken down with the loop */
	}
	if (cfg->web_http_listen[0]) {
		const char *hc = strrchr(cfg->web_http_listen, ':');
		int hport = hc ? atoi(hc + 1) : 0;
		char hiface[128];
		snprintf(hiface, sizeof hiface, "%.*s", hc ? (int)(hc - cfg->web_http_listen) : 0, cfg->web_http_listen);
		struct lws_context_creation_info h;
		memset(&h, 0, sizeof h);
		h.vhost_name = "http";
		h.port = hport;
		h.iface = hiface[0] && strcmp(hiface, "0.0.0.0") ? hiface : NULL;
		if (h.iface && inet_pton(AF_INET, h.iface, &a4) == 1)
			h.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
		h.protocols = redirect_protocols;
		if (hport <= 0 || !lws_create_vhost(w->ctx, &h))
			log_err("web", "cannot listen for plain HTTP on %s (it only redirects): skipped",
				cfg->web_http_listen);
		else
			log_info("web", "http://%s redirects to HTTPS", cfg->web_http_listen);
	}
	uv_timer_start(&w->feed, on_feed, 100, 100);
	log_info("web", "web UI and API on https://%s (UI files in %s)", cfg->web_listen, w->root);
	return w;
}

void web_set_env(web_t *w, const ctl_env_t *env)
{
	if (w)
		w->env = *env;
}

void web_stop(web_t *w)
{
	if (!w || w->stopping)
		return;
	/* with libuv, lws closes its handles asynchronously: this starts it,
	 * web_free finishes once the loop has run them to completion */
	w->stopping = 1;
	uv_timer_stop(&w->feed);
	uv_close((uv_handle_t *)&w->feed, NULL);
	lws_context_destroy(w->ctx);
}

void web_free(web_t *w)
{
	if (!w)
		return;
	lws_context_destroy(w->ctx);
	g_web = NULL;
	json_decref(w->presence);
	json_decref(w->boards);
	free(w->status_cache);
	if (!w->jobs)
		free(w);
}

/* ---- the router without a socket (fuzz/fuzz_http.c) ---- */

int web_session_open(web_t *w, const char *user, const char *role, char token[65], char csrf[65])
{
	if (!w)
		return -1;
	session_t *s = session_new(w, user, role);
	memcpy(token, s->token, 65);
	memcpy(csrf, s->csrf, 65);
	return 0;
}

int web_route_request(web_t *w, struct lws *wsi, int method, const char *uri, const char *body, size_t len,
		      char **resp)
{
	pss_t *p = calloc(1, sizeof *p);
	if (!p)
		return -1;
	p->wsi = wsi;
	p->w = w;
	p->method = method;
	snprintf(p->path, sizeof p->path, "%s", uri);
	char *q = strchr(p->path, '?');
	if (q)
		*q = '\0';
	if (len > BODY_MAX) {
		p->too_big = 1;
	} else if (body && len) {
		p->body = malloc(len + 1);
		if (!p->body) {
			free(p);
			return -1;
		}
		memcpy(p->body, body, len);
		p->body[len] = '\0';
		p->len = len;
		p->cap = len + 1;
	}
	route(p);
	while (p->job) /* a login on the thread pool */
		uv_run(w->loop, UV_RUN_ONCE);
	int status = p->handled ? p->status : 0;
	if (resp) {
		*resp = p->resp;
		p->resp = NULL;
	}
	reset_pss(p);
	free(p);
	return status;
}
