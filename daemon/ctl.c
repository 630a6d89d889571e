#include "ctl.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bus.h"
#include "cloudlink.h"
#include "diagnose.h"
#include "disk.h"
#include "entity.h"
#include "log.h"
#include "mqttlink.h"
#include "timeutil.h"
#include "reqs.h"
#include "status.h"
#include "timeutil.h"

#define LINE_MAX_BYTES 65536

struct ctl {
	uv_pipe_t server;
	ctl_env_t env;
	char path[256];
	struct client *clients;
};

typedef struct client {
	uv_pipe_t pipe;
	ctl_t *ctl;
	struct client *next, **pprev;
	char buf[LINE_MAX_BYTES];
	size_t len;
} client_t;

#define MAX_BATCH 500

/* Commands to devices (MQTT.md): at most 500 devices per batch; AutoP
 * command lists lose their duplicates (the first of each stays). */
static json_t *ctl_command(const ctl_env_t *env, const char *rid, const json_t *req)
{
	static const char *ops[] = { "reboot", "reset", "autop", "message", "relay.open", "relay.close",
				     "emergency", "firmware", NULL };
	const char *op = json_string_value(json_object_get(req, "command"));
	int known = 0;
	for (int i = 0; op && ops[i]; i++)
		known |= !strcmp(op, ops[i]);
	if (!known)
		return reqs_error(rid, "bad_request", "command must be reboot, reset, autop, message, "
						      "relay.open, relay.close, emergency or firmware");
	if (!env->mqtt)
		return reqs_error(rid, "unavailable", "the device link is not running");
	json_t *args = json_object_get(req, "args");
	if (args && !json_is_object(args))
		return reqs_error(rid, "bad_request", "args must be an object");
	args = args ? json_deep_copy(args) : json_object();
	if (!strcmp(op, "autop")) {
		json_t *cmds = json_object_get(args, "commands"), *seen = json_object(), *uniq = json_array();
		size_t i;
		json_t *c;
		int bad = !json_is_array(cmds) || !json_array_size(cmds);
		json_array_foreach(cmds, i, c) {
			if (!json_is_string(c) || json_string_length(c) > 1024) {
				bad = 1;
				break;
			}
			if (!json_object_get(seen, json_string_value(c))) {
				json_object_set_new(seen, json_string_value(c), json_true());
				json_array_append(uniq, c);
			}
		}
		json_decref(seen);
		if (bad) {
			json_decref(uniq);
			json_decref(args);
			return reqs_error(rid, "bad_request", "autop needs commands: a list of strings (<= 1024 bytes each)");
		}
		json_object_set_new(args, "commands", uniq);
		if (!json_is_boolean(json_object_get(args, "once")))
			json_object_set_new(args, "once", json_false());
	}
	/* the devices: a list of MACs, or "all" */
	json_t *devs = json_object_get(req, "devices"), *list = json_array();
	if (json_is_string(devs) && !strcmp(json_string_value(devs), "all")) {
		json_t *page = NULL;
		ent_list(env->st, ENT_DEVICE, NULL, MAX_BATCH + 1, &page, NULL);
		size_t i;
		json_t *d;
		json_array_foreach(page, i, d) json_array_append(list, json_object_get(d, "id"));
		json_decref(page);
	} else if (json_is_array(devs)) {
		size_t i;
		json_t *d;
		json_array_foreach(devs, i, d) {
			char mac[13];
			if (!json_is_string(d) || mac_normalize(json_string_value(d), mac) ||
			    ent_exists_pub(env->st, ENT_DEVICE, mac) != 1) {
				json_decref(list);
				json_decref(args);
				return reqs_error(rid, "bad_request", "devices must list registered device MACs");
			}
			json_array_append_new(list, json_string(mac));
		}
	}
	if (!json_array_size(list) || json_array_size(list) > MAX_BATCH) {
		json_decref(list);
		json_decref(args);
		return reqs_error(rid, "bad_request", "a command goes to 1 to 500 devices");
	}
	json_t *cids = json_object();
	size_t i;
	json_t *d;
	json_array_foreach(list, i, d) {
		char cid[40];
		mqttlink_command(env->mqtt, json_string_value(d), op, json_deep_copy(args), cid);
		json_object_set_new(cids, json_string_value(d), json_string(cid));
	}
	json_decref(list);
	json_decref(args);
	json_t *r = json_pack("{s:b,s:o}", "ok", 1, "commands", cids);
	if (rid)
		json_object_set_new(r, "rid", json_string(rid));
	return r;
}

/* Remote door open (ADMIN.md `relay open DEVICE_OR_BOARD N`): a board
 * channel through the bus, a device relay by command; written to the door
 * and audit logs. */
static json_t *ctl_relay_open(const ctl_env_t *env, const char *rid, const json_t *req)
{
	const char *target = json_string_value(json_object_get(req, "target"));
	json_t *n = json_object_get(req, "relay");
	const char *actor = json_string_value(json_object_get(req, "actor"));
	if (!target || !json_is_integer(n) || json_integer_value(n) < 1 || json_integer_value(n) > 256)
		return reqs_error(rid, "bad_request", "relay.open needs target (a device MAC or a board id) and relay");
	int relay = (int)json_integer_value(n);
	char mac[13];
	int is_dev = mac_normalize(target, mac) == 0 && ent_exists_pub(env->st, ENT_DEVICE, mac) == 1;
	int rc;
	char cid[48] = "";
	if (is_dev) {
		if (!env->mqtt)
			return reqs_error(rid, "unavailable", "the device link is not running");
		mqttlink_command(env->mqtt, mac, "relay.open", json_pack("{s:i}", "relay", relay), cid);
		rc = BUS_OK;
	} else {
		rc = busmgr_pulse(env->bus, target, relay, 0);
		if (rc == BUS_UNKNOWN)
			return reqs_error(rid, "not_found", "no such device, or board channel");
	}
	sqlite3_stmt *s = store_stmt(env->st, "INSERT INTO door_logs(ts, type, device, relay, board, channel, "
					      "initiator, method, result) VALUES (?, 'door_release', ?, ?, ?, ?, ?, "
					      "'remote', ?)");
	if (s && store_begin(env->st) == 0) {
		sqlite3_bind_int64(s, 1, gh_now());
		if (is_dev) {
			sqlite3_bind_text(s, 2, mac, -1, SQLITE_STATIC);
			sqlite3_bind_int(s, 3, relay);
		} else {
			sqlite3_bind_text(s, 4, target, -1, SQLITE_STATIC);
			sqlite3_bind_int(s, 5, relay);
		}
		sqlite3_bind_text(s, 6, actor ? actor : "control", -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 7, rc == BUS_OFFLINE ? "offline" : "success", -1, SQLITE_STATIC);
		int ok = sqlite3_step(s) == SQLITE_DONE;
		sqlite3_reset(s);
		json_t *what = json_pack("{s:s,s:i}", "target", is_dev ? mac : target, "relay", relay);
		s = store_stmt(env->st, "INSERT INTO audit_logs(ts, actor, action, entity, eid, after) "
					"VALUES (?, ?, 'open', ?, ?, ?)");
		if (ok && s) {
			char *w = json_dumps(what, JSON_COMPACT);
			sqlite3_bind_int64(s, 1, gh_now());
			sqlite3_bind_text(s, 2, actor ? actor : "control", -1, SQLITE_STATIC);
			sqlite3_bind_text(s, 3, is_dev ? "device" : "relay_board", -1, SQLITE_STATIC);
			sqlite3_bind_text(s, 4, is_dev ? mac : target, -1, SQLITE_STATIC);
			sqlite3_bind_text(s, 5, w, -1, SQLITE_TRANSIENT);
			ok = sqlite3_step(s) == SQLITE_DONE;
			sqlite3_reset(s);
			free(w);
		}
		json_decref(what);
		if (ok)
			store_commit(env->st);
		else
			store_rollback(env->st);
	}
	log_info("ctl", "remote open of %s relay %d by %s", is_dev ? mac : target, relay, actor ? actor : "control");
	json_t *r = json_pack("{s:b,s:s}", "ok", 1, "state", rc == BUS_OFFLINE ? "offline" : "sent");
	if (cid[0])
		json_object_set_new(r, "command", json_string(cid));
	if (rid)
		json_object_set_new(r, "rid", json_string(rid));
	return r;
}

json_t *ctl_handle(const ctl_env_t *env, const json_t *req)
{
	const char *op = json_string_value(json_object_get(req, "op"));
	const char *rid = json_string_value(json_object_get(req, "rid"));
	if (!json_is_object(req))
		return reqs_error(NULL, "bad_request", "a request is a JSON object");
	if (!op)
		return reqs_error(rid, "bad_request", "op is required");
	if (!strcmp(op, "status")) {
		json_t *s = status_json(env->st, (int64_t)((gh_mono_ms() - env->started_ms) / 1000),
					env->wan ? env->wan : "standalone");
		if (env->bus)
			json_object_set_new(s, "boards", busmgr_status(env->bus));
		if (env->cloud)
			json_object_set_new(s, "cloud", cloud_status(env->cloud));
		if (env->disk) {
			json_t *d = disk_status_json(env->disk);
			json_object_set_new(d, "logs_dropped", json_integer(engine_logs_dropped(env->en)));
			json_object_set_new(s, "disk", d);
		}
		if (env->mqtt)
			json_object_set_new(s, "mqtt", json_pack("{s:b}", "connected", mqttlink_connected(env->mqtt)));
		json_object_set_new(s, "daemon", json_string("running"));
		json_object_set_new(s, "problems", status_problems(s));
		json_object_set_new(s, "ok", json_true());
		if (rid)
			json_object_set_new(s, "rid", json_string(rid));
		return s;
	}
	if (!strcmp(op, "access.check")) {
		const char *dev = json_string_value(json_object_get(req, "device"));
		if (!dev && !json_is_string(json_object_get(req, "board")))
			return reqs_error(rid, "bad_request",
					  "access.check on the control socket needs device or board");
		return reqs_access_check(env->en, dev, req);
	}
	if (!strcmp(op, "emergency")) {
		const char *state = json_string_value(json_object_get(req, "state"));
		if (!state || (strcmp(state, "on") && strcmp(state, "off")))
			return reqs_error(rid, "bad_request", "state must be \"on\" or \"off\"");
		json_t *targets = NULL;
		gh_err_t err = { 0 };
		if (engine_emergency_set(env->en, !strcmp(state, "on"), json_object_get(req, "doors"),
					 "control", &targets, &err))
			return reqs_error(rid, "bad_request", err.message);
		json_t *r = json_pack("{s:b,s:s,s:o}", "ok", 1, "state", state, "doors", targets);
		if (rid)
			json_object_set_new(r, "rid", json_string(rid));
		return r;
	}
	if (!strcmp(op, "command"))
		return ctl_command(env, rid, req);
	if (!strcmp(op, "relay.open"))
		return ctl_relay_open(env, rid, req);
	return reqs_error(rid, "unknown_op", "unknown op");
}

static void on_close(uv_handle_t *h)
{
	client_t *c = h->data;
	*c->pprev = c->next;
	if (c->next)
		c->next->pprev = c->pprev;
	free(c);
}

static void on_written(uv_write_t *w, int status)
{
	(void)status;
	free(w->data);
	free(w);
}

static void reply(client_t *c, json_t *resp)
{
	char *txt = json_dumps(resp, JSON_COMPACT);
	json_decref(resp);
	if (!txt)
		return;
	size_t n = strlen(txt);
	char *line = realloc(txt, n + 2);
	if (!line) {
		free(txt);
		return;
	}
	line[n] = '\n';
	line[n + 1] = '\0';
	uv_write_t *w = malloc(sizeof *w);
	if (!w) {
		free(line);
		return;
	}
	w->data = line;
	uv_buf_t b = uv_buf_init(line, (unsigned)(n + 1));
	if (uv_write(w, (uv_stream_t *)&c->pipe, &b, 1, on_written)) {
		free(line);
		free(w);
	}
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	client_t *c = h->data;
	(void)hint;
	*buf = uv_buf_init(c->buf + c->len, (unsigned)(sizeof c->buf - c->len));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	client_t *c = s->data;
	(void)buf;
	if (n < 0) {
		uv_close((uv_handle_t *)s, on_close);
		return;
	}
	c->len += (size_t)n;
	char *nl;
	while ((nl = memchr(c->buf, '\n', c->len))) {
		*nl = '\0';
		json_error_t je;
		json_t *req = json_loads(c->buf, 0, &je);
		json_t *resp;
		if (!req) {
			log_warn("ctl", "malformed request: %s", je.text);
			resp = reqs_error(NULL, "bad_request", "request is not JSON");
		} else {
			resp = ctl_handle(&c->ctl->env, req);
		}
		json_decref(req);
		reply(c, resp);
		size_t used = (size_t)(nl - c->buf) + 1;
		memmove(c->buf, nl + 1, c->len - used);
		c->len -= used;
	}
	if (c->len == sizeof c->buf) {
		log_warn("ctl", "request line over %d bytes: closing client", LINE_MAX_BYTES);
		reply(c, reqs_error(NULL, "too_large", "request line too long"));
		uv_close((uv_handle_t *)s, on_close);
	}
}

static void on_connect(uv_stream_t *server, int status)
{
	ctl_t *ctl = server->data;
	if (status < 0)
		return;
	client_t *c = calloc(1, sizeof *c);
	if (!c)
		return;
	c->ctl = ctl;
	uv_pipe_init(server->loop, &c->pipe, 0);
	c->pipe.data = c;
	c->next = ctl->clients;
	if (c->next)
		c->next->pprev = &c->next;
	c->pprev = &ctl->clients;
	ctl->clients = c;
	if (uv_accept(server, (uv_stream_t *)&c->pipe) ||
	    uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read))
		uv_close((uv_handle_t *)&c->pipe, on_close);
}

ctl_t *ctl_start(uv_loop_t *loop, const char *path, const ctl_env_t *env)
{
	ctl_t *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->env = *env;
	snprintf(c->path, sizeof c->path, "%s", path);
	uv_pipe_init(loop, &c->server, 0);
	c->server.data = c;
	unlink(path);
	mode_t old = umask(0117); /* socket 0660: the daemon's user and group only */
	int rc = uv_pipe_bind(&c->server, path);
	umask(old);
	if (!rc)
		rc = uv_listen((uv_stream_t *)&c->server, 16, on_connect);
	if (rc) {
		log_err("ctl", "cannot listen on %s: %s", path, uv_strerror(rc));
		uv_close((uv_handle_t *)&c->server, NULL);
		uv_run(loop, UV_RUN_NOWAIT);
		free(c);
		return NULL;
	}
	log_info("ctl", "control socket %s", path);
	return c;
}

void ctl_set_mqtt(ctl_t *c, struct mqttlink *m)
{
	if (c)
		c->env.mqtt = m;
}

void ctl_set_bus(ctl_t *c, struct busmgr *b)
{
	if (c)
		c->env.bus = b;
}

void ctl_set_cloud(ctl_t *c, struct cloudlink *cl)
{
	if (c)
		c->env.cloud = cl;
}

static void on_server_close(uv_handle_t *h) { free(h->data); }

void ctl_stop(ctl_t *c)
{
	if (!c)
		return;
	unlink(c->path);
	/* the clients leave the list now: the server's close callback (which
	 * frees c) may run before theirs, whose unlink would write into c */
	for (client_t *x = c->clients, *next; x; x = next) {
		next = x->next;
		x->next = NULL;
		x->pprev = &x->next;
		if (!uv_is_closing((uv_handle_t *)&x->pipe))
			uv_close((uv_handle_t *)&x->pipe, on_close);
	}
	c->clients = NULL;
	uv_close((uv_handle_t *)&c->server, on_server_close);
}
