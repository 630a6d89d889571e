/* MQTT device link. libmosquitto without its threads: the socket is a
 * uv_poll in the daemon's loop (read when readable, write while
 * mosquitto_want_write), a uv_timer runs mosquitto_loop_misc and the
 * reconnects. The broker runs on the box, so the (blocking) connect to it
 * is a loopback connect. */
#include "mqttlink.h"

#include <ctype.h>
#include <sys/ioctl.h>
#include <mosquitto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "counters.h"
#include "entity.h"
#include "entity_int.h"
#include "jutil.h"
#include "log.h"
#include "reqs.h"
#include "settings.h"
#include "timeutil.h"

#define PREFIX "gatehouse/v1/dev/"
#define GW_STATUS "gatehouse/v1/gw/status"
#define MAX_PAYLOAD 65536
#define TICK_MS 250
#define BACKOFF_MIN_MS 500
#define BACKOFF_MAX_MS 30000
#define CMD_TIMEOUT_S 10

typedef struct ack {
	char mac[13];
	char id[72];
} ack_t;

struct mqttlink {
	uv_loop_t *loop;
	store_t *st;
	engine_t *en;
	struct mosquitto *m;
	uv_poll_t *poll;
	int poll_events; /* what the poll watches now: epoll_ctl only on change */
	uv_timer_t timer;
	int connected, ever_connected;
	unsigned backoff_ms;
	uint64_t next_try_ms;
	char host[256], wan[16];
	int port;
	ack_t *acks;
	int nacks, capacks;
	uint64_t last_sweep_ms;
	int64_t notified_lrev; /* site revision devices were last told about */
};

int mqttlink_connected(const mqttlink_t *l) { return l && l->connected; }
int mqttlink_pending_acks(const mqttlink_t *l) { return l ? l->nacks : 0; }

/* ---- socket in the loop ---- */

static void on_poll(uv_poll_t *p, int status, int events);

static void poll_closed(uv_handle_t *h) { free(h); }

static void drop_poll(mqttlink_t *l)
{
	if (l->poll) {
		uv_poll_stop(l->poll);
		uv_close((uv_handle_t *)l->poll, poll_closed);
		l->poll = NULL;
	}
}

static void update_poll(mqttlink_t *l)
{
	if (!l->poll)
		return;
	int ev = UV_READABLE | (mosquitto_want_write(l->m) ? UV_WRITABLE : 0);
	if (ev != l->poll_events) {
		uv_poll_start(l->poll, ev, on_poll);
		l->poll_events = ev;
	}
}

static void schedule_retry(mqttlink_t *l)
{
	/* exponential backoff with jitter, so a fleet of boxes does not
	 * reconnect in step after a broker restart */
	unsigned jitter = l->backoff_ms / 4 ? (unsigned)(gh_mono_ms() % (l->backoff_ms / 4 + 1)) : 0;
	l->next_try_ms = gh_mono_ms() + l->backoff_ms + jitter;
	l->backoff_ms = l->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : l->backoff_ms * 2;
}

static void conn_lost(mqttlink_t *l, const char *why)
{
	if (l->connected)
		log_warn("mqtt", "connection to %s:%d lost: %s", l->host, l->port, why);
	l->connected = 0;
	drop_poll(l);
	schedule_retry(l);
}

static void on_poll(uv_poll_t *p, int status, int events)
{
	mqttlink_t *l = p->data;
	int rc = MOSQ_ERR_SUCCESS;
	if (status < 0) {
		conn_lost(l, uv_strerror(status));
		return;
	}
	if (events & UV_READABLE) {
		/* drain what the socket holds before going back to the loop:
		 * one wakeup then serves a burst of messages (one commit) */
		int avail = 0;
		for (int i = 0; i < 256 && rc == MOSQ_ERR_SUCCESS; i++) {
			rc = mosquitto_loop_read(l->m, 1);
			if (ioctl(mosquitto_socket(l->m), FIONREAD, &avail) || avail <= 0)
				break;
		}
	}
	/* replies and PUBACKs queued while reading go out now: the socket is
	 * nearly always writable, and waiting for the loop to say so costs an
	 * epoll round trip and two epoll_ctl calls per request */
	if (rc == MOSQ_ERR_SUCCESS && ((events & UV_WRITABLE) || mosquitto_want_write(l->m)))
		rc = mosquitto_loop_write(l->m, 1);
	if (rc != MOSQ_ERR_SUCCESS) {
		conn_lost(l, mosquitto_strerror(rc));
		return;
	}
	update_poll(l);
}

static void try_connect(mqttlink_t *l)
{
	int rc = l->ever_connected ? mosquitto_reconnect(l->m)
				   : mosquitto_connect(l->m, l->host, l->port, 30);
	if (rc != MOSQ_ERR_SUCCESS) {
		if (l->backoff_ms <= BACKOFF_MIN_MS || l->backoff_ms >= BACKOFF_MAX_MS)
			log_warn("mqtt", "cannot connect to %s:%d: %s (retrying)", l->host, l->port,
				 mosquitto_strerror(rc));
		schedule_retry(l);
		return;
	}
	l->ever_connected = 1;
	l->poll = malloc(sizeof *l->poll);
	if (!l->poll || uv_poll_init_socket(l->loop, l->poll, mosquitto_socket(l->m))) {
		free(l->poll);
		l->poll = NULL;
		schedule_retry(l);
		return;
	}
	l->poll->data = l;
	l->poll_events = 0;
	update_poll(l); /* CONNECT goes out; CONNACK arrives in on_connect */
}

static void sweep_commands(mqttlink_t *l);
static void notify_changes(mqttlink_t *l);

static void on_tick(uv_timer_t *t)
{
	mqttlink_t *l = t->data;
	if (l->poll) {
		int rc = mosquitto_loop_misc(l->m); /* keepalive pings */
		if (rc != MOSQ_ERR_SUCCESS && rc != MOSQ_ERR_NO_CONN)
			conn_lost(l, mosquitto_strerror(rc));
		else
			update_poll(l);
	} else if (gh_mono_ms() >= l->next_try_ms) {
		try_connect(l);
	}
	if (gh_mono_ms() - l->last_sweep_ms >= 1000) {
		l->last_sweep_ms = gh_mono_ms();
		sweep_commands(l);
		notify_changes(l);
	}
}

static const char *jstr(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* ---- publishing ---- */

static void publish_json(mqttlink_t *l, const char *topic, json_t *msg, int retain)
{
	char *txt = json_dumps(msg, JSON_COMPACT);
	json_decref(msg);
	if (!txt)
		return;
	int rc = mosquitto_publish(l->m, NULL, topic, (int)strlen(txt), txt, 1, retain);
	if (rc != MOSQ_ERR_SUCCESS && l->connected)
		log_warn("mqtt", "publish to %s failed: %s", topic, mosquitto_strerror(rc));
	free(txt);
	update_poll(l);
}

static void dev_topic(char *buf, size_t len, const char *mac, const char *leaf)
{
	snprintf(buf, len, PREFIX "%s/%s", mac, leaf);
}

static void publish_gw_status(mqttlink_t *l)
{
	char rev[32];
	if (store_kv_get(l->st, "rev", rev, sizeof rev))
		snprintf(rev, sizeof rev, "0");
	publish_json(l, GW_STATUS,
		     json_pack("{s:b,s:s,s:I,s:s}", "online", 1, "wan", l->wan, "rev",
			       (json_int_t)strtoll(rev, NULL, 10), "version", GH_VERSION),
		     1);
}

void mqttlink_set_wan(mqttlink_t *l, const char *wan)
{
	if (!l || !strcmp(l->wan, wan))
		return;
	snprintf(l->wan, sizeof l->wan, "%s", wan);
	if (l->connected)
		publish_gw_status(l);
}

static void on_connect(struct mosquitto *m, void *obj, int rc)
{
	mqttlink_t *l = obj;
	(void)m;
	if (rc) {
		log_err("mqtt", "broker %s:%d refused the connection: %s", l->host, l->port,
			mosquitto_connack_string(rc));
		l->backoff_ms = BACKOFF_MAX_MS / 2;
		conn_lost(l, "refused");
		return;
	}
	l->connected = 1;
	l->backoff_ms = BACKOFF_MIN_MS;
	/* requests at QoS 0: the broker keeps none for the gateway while it is
	 * away, so a restarted gateway never opens a door for a request a
	 * person made minutes ago (the device times out and asks again);
	 * events, status and acks at QoS 1 (kept, nothing lost) */
	static const struct {
		const char *topic;
		int qos;
	} subs[] = { { PREFIX "+/status", 1 }, { PREFIX "+/event", 1 }, { PREFIX "+/req", 0 },
		     { PREFIX "+/cmd/ack", 1 } };
	for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++)
		mosquitto_subscribe(l->m, NULL, subs[i].topic, subs[i].qos);
	publish_gw_status(l);
	log_info("mqtt", "connected to %s:%d", l->host, l->port);
}

static void on_disconnect(struct mosquitto *m, void *obj, int rc)
{
	(void)m;
	mqttlink_t *l = obj;
	if (rc)
		conn_lost(l, "disconnected by the broker");
}

static void on_message(struct mosquitto *m, void *obj, const struct mosquitto_message *msg)
{
	(void)m;
	mqttlink_handle(obj, msg->topic, msg->payload, msg->payloadlen);
}

/* ---- commands ---- */

int mqttlink_command(mqttlink_t *l, const char *mac, const char *op, json_t *args, char *cid)
{
	char id[40], topic[96];
	gh_random_hex(id, 16);
	if (cid)
		memcpy(cid, id, 33);
	json_t *msg = args ? args : json_object(); /* taken over */
	json_object_set_new(msg, "cid", json_string(id));
	json_object_set_new(msg, "op", json_string(op));
	sqlite3_stmt *s = store_stmt(l->st, "INSERT INTO commands(cid, device, op, args, state, created_at, "
					    "deadline, updated_at) VALUES (?, ?, ?, ?, 'pending', ?6, ?7, ?6)");
	if (s) {
		char *a = jdump(msg);
		int64_t now = gh_now();
		sqlite3_bind_text(s, 1, id, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(s, 2, mac, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 3, op, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 4, a, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(s, 6, now);
		sqlite3_bind_int64(s, 7, now + CMD_TIMEOUT_S);
		if (sqlite3_step(s) != SQLITE_DONE)
			log_err("mqtt", "recording command %s for %s: %s", op, mac, sqlite3_errmsg(store_db(l->st)));
		sqlite3_reset(s);
		free(a);
	}
	dev_topic(topic, sizeof topic, mac, "cmd");
	publish_json(l, topic, msg, 0);
	return 0;
}

/* pending commands past their deadline expire */
static void sweep_commands(mqttlink_t *l)
{
	/* a command "created" well after now was made before the clock went
	 * back: its deadline would hold it pending for as long as the jump */
	sqlite3_stmt *s = store_stmt(l->st, "UPDATE commands SET state = 'expired', updated_at = ?1 "
					    "WHERE state = 'pending' AND (deadline < ?1 OR created_at > ?1 + 60)");
	if (!s)
		return;
	sqlite3_bind_int64(s, 1, gh_now());
	sqlite3_step(s);
	sqlite3_reset(s);
	int n = sqlite3_changes(store_db(l->st));
	if (n > 0)
		log_warn("mqtt", "%d commands expired without an ack", n);
}

/* When the site's state moved on (an edit here, by the CLI or from the
 * cloud), the online door phones, terminals and guard phones are told to
 * sync.pull; each gets only its own delta. Once a second at most. */
static void notify_changes(mqttlink_t *l)
{
	if (!l->connected)
		return;
	char buf[32];
	int64_t lrev = store_kv_get(l->st, "lrev", buf, sizeof buf) == 0 ? strtoll(buf, NULL, 10) : 0;
	if (l->notified_lrev == 0 || lrev <= l->notified_lrev) {
		if (l->notified_lrev == 0)
			l->notified_lrev = lrev; /* devices pull on connect; nothing to tell yet */
		return;
	}
	l->notified_lrev = lrev;
	sqlite3_stmt *s = store_stmt(l->st, "SELECT d.id FROM devices d JOIN presence p ON p.device = d.id "
					    "AND p.online = 1 WHERE d.type IN (0, 1, 3, 50)");
	if (!s)
		return;
	json_t *macs = json_array();
	while (sqlite3_step(s) == SQLITE_ROW)
		json_array_append_new(macs, json_string((const char *)sqlite3_column_text(s, 0)));
	sqlite3_reset(s);
	if (json_array_size(macs) && engine_pass_begin(l->en, NULL) == 0) {
		size_t i;
		json_t *m;
		json_array_foreach(macs, i, m)
			mqttlink_command(l, json_string_value(m), "sync.notify",
					 json_pack("{s:I}", "rev", (json_int_t)lrev), NULL);
	}
	json_decref(macs);
}

void mqttlink_emergency_devices(mqttlink_t *l, int on, const json_t *targets)
{
	json_t *done = json_object();
	size_t i;
	json_t *t;
	json_array_foreach(targets, i, t) {
		const char *dev = jstr(t, "device");
		if (dev && !json_object_get(done, dev)) {
			json_object_set_new(done, dev, json_true());
			mqttlink_command(l, dev, "emergency", json_pack("{s:s}", "state", on ? "on" : "off"), NULL);
		}
	}
	json_decref(done);
}

/* a device back online gets the commands still pending for it */
static void resend_pending(mqttlink_t *l, const char *mac)
{
	sqlite3_stmt *s = store_stmt(l->st, "SELECT args FROM commands WHERE device = ? AND state = 'pending' "
					    "ORDER BY created_at");
	if (!s)
		return;
	sqlite3_bind_text(s, 1, mac, -1, SQLITE_STATIC);
	json_t *list = json_array();
	while (sqlite3_step(s) == SQLITE_ROW) {
		json_t *a = json_loads((const char *)sqlite3_column_text(s, 0), 0, NULL);
		if (a)
			json_array_append_new(list, a);
	}
	sqlite3_reset(s);
	char topic[96];
	dev_topic(topic, sizeof topic, mac, "cmd");
	size_t i;
	json_t *a;
	json_array_foreach(list, i, a) publish_json(l, topic, json_incref(a), 0);
	json_decref(list);
}

/* ---- incoming ---- */

static int run_stmt(store_t *st, sqlite3_stmt *s)
{
	int rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		store_note_error(st, rc);
		log_err("mqtt", "store: %s", sqlite3_errmsg(store_db(st)));
		return -1;
	}
	return 0;
}


static void handle_status(mqttlink_t *l, const char *mac, json_t *msg)
{
	json_t *on = json_object_get(msg, "online");
	if (!json_is_boolean(on)) {
		log_warn("mqtt", "%s/status dropped: online must be true or false", mac);
		return;
	}
	if (engine_pass_begin(l->en, NULL))
		return;
	int online = json_is_true(on);
	sqlite3_stmt *s = store_stmt(l->st, "SELECT online FROM presence WHERE device = ?");
	int was = -1;
	if (s) {
		sqlite3_bind_text(s, 1, mac, -1, SQLITE_STATIC);
		if (sqlite3_step(s) == SQLITE_ROW)
			was = sqlite3_column_int(s, 0);
		sqlite3_reset(s);
	}
	s = store_stmt(l->st, "INSERT INTO presence(device, online, model, fw, ip, last_seen, since) "
			      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6) ON CONFLICT(device) DO UPDATE SET "
			      "online = ?2, model = COALESCE(?3, model), fw = COALESCE(?4, fw), ip = "
			      "COALESCE(?5, ip), last_seen = ?6, since = CASE WHEN online = ?2 THEN since "
			      "ELSE ?6 END");
	if (!s)
		return;
	sqlite3_bind_text(s, 1, mac, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 2, online);
	const char *f[] = { "model", "fw", "ip" };
	for (int i = 0; i < 3; i++) {
		const char *v = jstr(msg, f[i]);
		if (v && strlen(v) <= 64)
			sqlite3_bind_text(s, 3 + i, v, -1, SQLITE_STATIC);
	}
	sqlite3_bind_int64(s, 6, gh_now());
	if (run_stmt(l->st, s))
		return;
	if (was != online) {
		log_info("mqtt", "device %s %s%s%s", mac, online ? "online" : "offline",
			 jstr(msg, "model") ? " model " : "", jstr(msg, "model") ? jstr(msg, "model") : "");
		if (online)
			resend_pending(l, mac);
	}
}

static void queue_ack(mqttlink_t *l, const char *mac, const char *id)
{
	if (l->nacks == l->capacks) {
		int cap = l->capacks ? l->capacks * 2 : 64;
		ack_t *n = realloc(l->acks, (size_t)cap * sizeof *n);
		if (!n)
			return; /* not acked: the device resends, stored once */
		l->acks = n;
		l->capacks = cap;
	}
	snprintf(l->acks[l->nacks].mac, sizeof l->acks[0].mac, "%s", mac);
	snprintf(l->acks[l->nacks].id, sizeof l->acks[0].id, "%s", id);
	l->nacks++;
}

static const char *const event_types[] = { "access", "call", "door", "alarm", NULL };
static const char *const alarm_kinds[] = { "emergency", "tamper", "arming", "motion", "package_in",
					   "package_out", NULL };

static int one_of(const char *v, const char *const *list)
{
	for (int i = 0; v && list[i]; i++)
		if (!strcmp(v, list[i]))
			return i;
	return -1;
}

static void emergency_from_alarm(mqttlink_t *l, const char *mac)
{
	const settings_t *set = settings_get(l->st);
	if (!set)
		return;
	if (set->emergency_auto_unlock) {
		/* the engine's emergency hook (the daemon) opens the group: device
		 * relays by command, board relays through the bus layer */
		char who[40];
		snprintf(who, sizeof who, "alarm:%s", mac);
		engine_emergency_set(l->en, 1, NULL, who, NULL, NULL);
	}
	if (set->emergency_notify) {
		sqlite3_stmt *s = store_stmt(l->st, "SELECT id FROM devices WHERE type = 2");
		json_t *mons = json_array();
		while (s && sqlite3_step(s) == SQLITE_ROW)
			json_array_append_new(mons, json_string((const char *)sqlite3_column_text(s, 0)));
		if (s)
			sqlite3_reset(s);
		size_t i;
		json_t *x;
		json_array_foreach(mons, i, x)
			mqttlink_command(l, json_string_value(x), "emergency", json_pack("{s:s}", "state", "on"), NULL);
		json_decref(mons);
	}
}

/* The rows of one event (dedupe, its log, the outbox); 0 stored or
 * duplicate, -1 failed (store_event rolls the event's savepoint back). */
static int event_rows(mqttlink_t *l, const char *mac, json_t *ev, const char *id, int type,
		      int64_t ts)
{
	store_t *st = l->st;
	sqlite3_stmt *s = store_stmt(st, "INSERT OR IGNORE INTO device_events(device, eid, ts) VALUES (?, ?, ?)");
	if (!s)
		return -1;
	sqlite3_bind_text(s, 1, mac, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, ts);
	if (run_stmt(st, s))
		return -1;
	if (sqlite3_changes(store_db(st)) == 0) {
		GH_COUNT(events_dup);
		return 0; /* seen before: acknowledged again, stored once */
	}
	GH_COUNT(events_in);

	int rc = 0;
	if (type == 0) { /* access decided by the device */
		const char *method = jstr(ev, "method"), *code = jstr(ev, "code"), *result = jstr(ev, "result");
		char masked[136] = "";
		if (code) {
			if (method && (!strcmp(method, "pin") || !strcmp(method, "tempkey"))) {
				size_t n = strlen(code) < sizeof masked ? strlen(code) : sizeof masked - 1;
				memset(masked, '*', n);
				masked[n] = '\0';
			} else {
				snprintf(masked, sizeof masked, "%s", code);
			}
		}
		s = store_stmt(st, "INSERT INTO door_logs(ts, type, device, relay, apt, method, code, result, "
				   "reason, event_id) VALUES (?, 'door_release', ?, ?, ?, ?, ?, ?, ?, ?)");
		if (!s)
			return -1;
		sqlite3_bind_int64(s, 1, ts);
		sqlite3_bind_text(s, 2, mac, -1, SQLITE_STATIC);
		if (json_is_integer(json_object_get(ev, "relay")))
			sqlite3_bind_int64(s, 3, json_integer_value(json_object_get(ev, "relay")));
		sqlite3_bind_text(s, 4, jstr(ev, "apt"), -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 5, method, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 6, masked, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 7, result && !strcmp(result, "granted") ? "success" : "failed", -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 8, jstr(ev, "reason"), -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 9, id, -1, SQLITE_STATIC);
		rc = run_stmt(st, s);
	} else if (type == 1) { /* call */
		s = store_stmt(st, "INSERT INTO call_logs(ts, device, call_id, caller, receiver, phase, "
				   "duration, opened) VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
		if (!s)
			return -1;
		sqlite3_bind_int64(s, 1, ts);
		sqlite3_bind_text(s, 2, mac, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 3, jstr(ev, "call_id"), -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 4, mac, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 5, jstr(ev, "target") ? jstr(ev, "target") : jstr(ev, "to"), -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 6, jstr(ev, "phase"), -1, SQLITE_STATIC);
		if (json_is_integer(json_object_get(ev, "duration")))
			sqlite3_bind_int64(s, 7, json_integer_value(json_object_get(ev, "duration")));
		if (json_is_boolean(json_object_get(ev, "opened")))
			sqlite3_bind_int(s, 8, json_is_true(json_object_get(ev, "opened")));
		rc = run_stmt(st, s);
	} else if (type == 2) { /* door sensor */
		const char *state = jstr(ev, "state");
		s = store_stmt(st, "INSERT INTO door_logs(ts, type, device, relay, result, event_id) "
				   "VALUES (?, ?, ?, ?, 'success', ?)");
		if (!s)
			return -1;
		sqlite3_bind_int64(s, 1, ts);
		sqlite3_bind_text(s, 2, state && !strcmp(state, "closed") ? "door_close" : "door_open", -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 3, mac, -1, SQLITE_STATIC);
		if (json_is_integer(json_object_get(ev, "relay")))
			sqlite3_bind_int64(s, 4, json_integer_value(json_object_get(ev, "relay")));
		sqlite3_bind_text(s, 5, id, -1, SQLITE_STATIC);
		rc = run_stmt(st, s);
	} else { /* alarm */
		int kind = one_of(jstr(ev, "kind"), alarm_kinds);
		if (kind >= 3) {
			s = store_stmt(st, "INSERT INTO detection_logs(ts, device, apartment, kind, data) VALUES "
					   "(?, ?, (SELECT apartment FROM devices WHERE id = ?2), ?, ?)");
			if (!s)
				return -1;
			char *d = jdump(ev);
			sqlite3_bind_int64(s, 1, ts);
			sqlite3_bind_text(s, 2, mac, -1, SQLITE_STATIC);
			sqlite3_bind_text(s, 3, alarm_kinds[kind], -1, SQLITE_STATIC);
			sqlite3_bind_text(s, 4, d, -1, SQLITE_TRANSIENT);
			rc = run_stmt(st, s);
			free(d);
		} else {
			s = store_stmt(st, "INSERT INTO alarm_logs(ts, device, apartment, kind, state, zone) VALUES "
					   "(?, ?, (SELECT apartment FROM devices WHERE id = ?2), ?, ?, ?)");
			if (!s)
				return -1;
			sqlite3_bind_int64(s, 1, ts);
			sqlite3_bind_text(s, 2, mac, -1, SQLITE_STATIC);
			sqlite3_bind_text(s, 3, alarm_kinds[kind], -1, SQLITE_STATIC);
			sqlite3_bind_text(s, 4, jstr(ev, "state"), -1, SQLITE_STATIC);
			sqlite3_bind_text(s, 5, jstr(ev, "zone"), -1, SQLITE_STATIC);
			rc = run_stmt(st, s);
		}
	}
	if (rc)
		return -1;

	/* the cloud's copy: idempotent id device:event */
	s = store_stmt(st, "INSERT INTO outbox(id, device, type, ts, data, is_alarm) VALUES "
			   "(?, ?, ?, ?, ?, ?)");
	if (!s)
		return -1;
	char oid[96];
	snprintf(oid, sizeof oid, "%s:%s", mac, id);
	char *d = jdump(ev);
	sqlite3_bind_text(s, 1, oid, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 2, mac, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, event_types[type], -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, ts);
	sqlite3_bind_text(s, 5, d, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(s, 6, type == 3);
	rc = run_stmt(st, s);
	free(d);
	if (rc)
		return -1;
	if (type == 3 && !strcmp(jstr(ev, "kind"), "emergency") && jstr(ev, "state") &&
	    !strcmp(jstr(ev, "state"), "triggered")) {
		log_warn("mqtt", "emergency alarm from %s", mac);
		emergency_from_alarm(l, mac);
	}
	return 0;
}

/* Stores one event, all of its rows or none (a savepoint in the pass's
 * transaction): a dedupe row without its log or outbox row would make the
 * device's resend look like a duplicate and lose the event. 0 stored or
 * duplicate (ack it), -1 dropped (no ack: the device resends). */
static int store_event(mqttlink_t *l, const char *mac, json_t *ev, const char *id, int type,
		       int64_t ts)
{
	if (store_begin(l->st))
		return -1;
	if (event_rows(l, mac, ev, id, type, ts)) {
		store_rollback(l->st);
		return -1;
	}
	return store_commit(l->st);
}

static void handle_event(mqttlink_t *l, const char *mac, json_t *ev)
{
	const char *id = jstr(ev, "id");
	int type = one_of(jstr(ev, "type"), event_types);
	if (!id || !*id || strlen(id) > 64) {
		log_warn("mqtt", "%s/event dropped: id must be a string of 1..64 bytes", mac);
		return;
	}
	if (type < 0) {
		log_warn("mqtt", "%s/event %s dropped: type must be access, call, door or alarm", mac, id);
		return;
	}
	/* the fields each type needs, with their types */
	const char *bad = NULL;
	if (type == 0 && (!jstr(ev, "method") || !jstr(ev, "result")))
		bad = "access needs method and result";
	else if (type == 1 && (!jstr(ev, "call_id") || !jstr(ev, "phase")))
		bad = "call needs call_id and phase";
	else if (type == 2 && !jstr(ev, "state"))
		bad = "door needs state";
	else if (type == 3 && (one_of(jstr(ev, "kind"), alarm_kinds) < 0 || !jstr(ev, "state")))
		bad = "alarm needs a known kind and a state";
	if (bad) {
		log_warn("mqtt", "%s/event %s dropped: %s", mac, id, bad);
		return;
	}
	/* device time, unless missing or implausible: the original is kept */
	int64_t now = gh_now(), ts = now;
	json_t *t = json_object_get(ev, "ts");
	if (json_is_number(t)) {
		/* compared as a double: a real far outside int64 (1e300) must
		 * not be converted (undefined behaviour) */
		double dts = json_number_value(t);
		if (dts > (double)(now - 86400) && dts < (double)(now + 86400))
			ts = (int64_t)dts;
		else
			json_object_set(ev, "device_ts", t);
	}
	gh_err_t err = { 0 };
	if (engine_pass_begin(l->en, &err)) {
		log_err("mqtt", "%s/event %s not stored: %s", mac, id, err.message);
		return;
	}
	if (store_event(l, mac, ev, id, type, ts) == 0)
		queue_ack(l, mac, id);
}

static void respond(mqttlink_t *l, const char *mac, json_t *resp)
{
	char topic[96];
	dev_topic(topic, sizeof topic, mac, "resp");
	publish_json(l, topic, resp, 0);
	GH_COUNT(mqtt_requests);
}

static void handle_req(mqttlink_t *l, const char *mac, json_t *req)
{
	json_t *rv = json_object_get(req, "rid");
	const char *rid = json_string_value(rv);
	if (!rid || !*rid || strlen(rid) > 64) {
		log_warn("mqtt", "%s/req dropped: rid must be a string of 1..64 bytes", mac);
		return;
	}
	const char *op = jstr(req, "op");
	if (!op) {
		respond(l, mac, reqs_error(rid, "bad_request", "op is required"));
		return;
	}
	if (!strcmp(op, "access.check")) {
		respond(l, mac, reqs_access_check(l->en, mac, req));
		return;
	}
	if (!strcmp(op, "sync.pull")) {
		gh_err_t err = { 0 };
		if (engine_pass_begin(l->en, &err)) {
			respond(l, mac, reqs_error(rid, "internal", err.message));
			return;
		}
		respond(l, mac, reqs_sync_pull(l->st, mac, req));
		return;
	}
	if (!strcmp(op, "call.route")) {
		respond(l, mac, reqs_call_route(l->st, mac, req, l->wan));
		return;
	}
	log_warn("mqtt", "%s/req %s: unknown op %.32s", mac, rid, op);
	respond(l, mac, reqs_error(rid, "unknown_op", "unknown op"));
}

static void handle_cmd_ack(mqttlink_t *l, const char *mac, json_t *ack)
{
	const char *cid = jstr(ack, "cid");
	json_t *ok = json_object_get(ack, "ok");
	if (!cid || !json_is_boolean(ok)) {
		log_warn("mqtt", "%s/cmd/ack dropped: needs cid and ok", mac);
		return;
	}
	if (engine_pass_begin(l->en, NULL))
		return;
	sqlite3_stmt *s = store_stmt(l->st, "UPDATE commands SET state = ?, error = ?, updated_at = ? "
					    "WHERE cid = ? AND device = ? AND state IN ('pending', 'expired')");
	if (!s)
		return;
	sqlite3_bind_text(s, 1, json_is_true(ok) ? "acked" : "failed", -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, jstr(ack, "error"), -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, gh_now());
	sqlite3_bind_text(s, 4, cid, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 5, mac, -1, SQLITE_STATIC);
	run_stmt(l->st, s);
}

void mqttlink_handle(mqttlink_t *l, const char *topic, const void *payload, int len)
{
	size_t plen = strlen(PREFIX);
	if (strncmp(topic, PREFIX, plen) || strlen(topic) < plen + 13 || topic[plen + 12] != '/') {
		log_warn("mqtt", "message on %.80s dropped: not a device topic", topic);
		return;
	}
	char mac[13];
	memcpy(mac, topic + plen, 12);
	mac[12] = '\0';
	for (int i = 0; i < 12; i++)
		if (!isxdigit((unsigned char)mac[i]) || islower((unsigned char)mac[i])) {
			log_warn("mqtt", "message on %.80s dropped: MAC must be 12 upper-case hex digits", topic);
			return;
		}
	const char *leaf = topic + plen + 13;
	int kind = !strcmp(leaf, "status") ? 0 : !strcmp(leaf, "event") ? 1 : !strcmp(leaf, "req") ? 2
		   : !strcmp(leaf, "cmd/ack") ? 3 : -1;
	if (kind < 0) {
		log_warn("mqtt", "message on %.80s dropped: unknown topic", topic);
		return;
	}
	if (len > MAX_PAYLOAD) {
		log_warn("mqtt", "message on %s dropped: payload of %d bytes is over 64 KiB", topic, len);
		return;
	}
	json_error_t je;
	json_t *msg = json_loadb(payload, (size_t)len, 0, &je);
	if (!json_is_object(msg)) {
		log_warn("mqtt", "message on %s dropped: %s", topic, msg ? "not a JSON object" : "not JSON");
		json_decref(msg);
		return;
	}
	int known = ent_exists(l->st, ENT_DEVICE, mac);
	if (known != 1) {
		log_warn("mqtt", "message on %s dropped: unknown device %s", topic, mac);
		if (kind == 2 && json_is_string(json_object_get(msg, "rid")))
			respond(l, mac, reqs_error(jstr(msg, "rid"), "unknown_device", "device not registered"));
		json_decref(msg);
		return;
	}
	switch (kind) {
	case 0: handle_status(l, mac, msg); break;
	case 1: handle_event(l, mac, msg); break;
	case 2: handle_req(l, mac, msg); break;
	default: handle_cmd_ack(l, mac, msg); break;
	}
	json_decref(msg);
}

/* ---- after the pass's commit ---- */

void mqttlink_after_commit(mqttlink_t *l)
{
	if (!l || !l->nacks)
		return;
	char topic[96], body[512];
	for (int i = 0; i < l->nacks; i++) {
		dev_topic(topic, sizeof topic, l->acks[i].mac, "event/ack");
		/* the id was checked to be a JSON string of <= 64 bytes; re-encode
		 * it so quotes and escapes stay valid */
		json_t *id = json_string(l->acks[i].id);
		char *enc = json_dumps(id, JSON_ENCODE_ANY);
		json_decref(id);
		int n = snprintf(body, sizeof body, "{\"id\":%s}", enc ? enc : "\"\"");
		free(enc);
		mosquitto_publish(l->m, NULL, topic, n, body, 1, false);
	}
	l->nacks = 0;
	update_poll(l);
}

void mqttlink_commit_failed(mqttlink_t *l)
{
	if (l && l->nacks) {
		log_err("mqtt", "%d events not committed: not acknowledged, devices will resend", l->nacks);
		l->nacks = 0;
	}
}

static void on_pass_failed(void *ctx) { mqttlink_commit_failed(ctx); }

/* ---- life cycle ---- */

mqttlink_t *mqttlink_start(uv_loop_t *loop, const mqttlink_cfg_t *cfg, store_t *st, engine_t *en)
{
	static int inited;
	if (!inited) {
		mosquitto_lib_init();
		inited = 1;
	}
	mqttlink_t *l = calloc(1, sizeof *l);
	if (!l)
		return NULL;
	l->loop = loop;
	l->st = st;
	l->en = en;
	l->port = cfg->port;
	l->backoff_ms = BACKOFF_MIN_MS;
	snprintf(l->host, sizeof l->host, "%s", cfg->host);
	snprintf(l->wan, sizeof l->wan, "%s", cfg->wan ? cfg->wan : "standalone");
	/* a persistent session: QoS 1 messages for the gateway wait in the
	 * broker while it restarts */
	l->m = mosquitto_new(cfg->client_id, false, l);
	if (!l->m) {
		log_err("mqtt", "cannot create the MQTT client");
		free(l);
		return NULL;
	}
	mosquitto_int_option(l->m, MOSQ_OPT_TCP_NODELAY, 1);
	mosquitto_username_pw_set(l->m, cfg->username, cfg->password);
	if (cfg->tls_ca && *cfg->tls_ca && mosquitto_tls_set(l->m, cfg->tls_ca, NULL, NULL, NULL, NULL))
		log_err("mqtt", "cannot use TLS CA file %s", cfg->tls_ca);
	static const char offline[] = "{\"online\":false}";
	mosquitto_will_set(l->m, GW_STATUS, (int)strlen(offline), offline, 1, true);
	mosquitto_connect_callback_set(l->m, on_connect);
	mosquitto_disconnect_callback_set(l->m, on_disconnect);
	mosquitto_message_callback_set(l->m, on_message);
	uv_timer_init(loop, &l->timer);
	l->timer.data = l;
	uv_timer_start(&l->timer, on_tick, 0, TICK_MS);
	/* a pass that cannot commit takes its events' acks with it */
	engine_set_pass_failed_hook(en, on_pass_failed, l);
	return l;
}

static void timer_closed(uv_handle_t *h)
{
	mqttlink_t *l = h->data;
	free(l->acks);
	free(l);
}

void mqttlink_stop(mqttlink_t *l)
{
	if (!l)
		return;
	engine_set_pass_failed_hook(l->en, NULL, NULL);
	if (l->connected) {
		static const char offline[] = "{\"online\":false}";
		mosquitto_publish(l->m, NULL, GW_STATUS, (int)strlen(offline), offline, 1, true);
		for (int i = 0; i < 20 && mosquitto_want_write(l->m); i++)
			mosquitto_loop_write(l->m, 1);
		mosquitto_disconnect(l->m);
	}
	drop_poll(l);
	mosquitto_destroy(l->m);
	l->m = NULL;
	uv_timer_stop(&l->timer);
	uv_close((uv_handle_t *)&l->timer, timer_closed);
}
