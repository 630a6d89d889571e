/* gatehoused: the site gateway daemon. One libuv loop; everything is a file
 * descriptor or a timer. Signals arrive through uv_signal (a self-pipe), so
 * no work happens in signal context. */
#include <curl/curl.h>
#include <getopt.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <uv.h>

#include "bus.h"
#include "checkpoint.h"
#include "cloudlink.h"
#include "config.h"
#include "ctl.h"
#include "disk.h"
#include "engine.h"
#include "jarena.h"
#include "entity.h"
#include "log.h"
#include "mqttlink.h"
#include "profile.h"
#include "settings.h"
#include "store.h"
#include "timeutil.h"
#include "web.h"

typedef struct app {
	uv_loop_t *loop;
	gh_config_t cfg;
	store_t *st;
	engine_t *en;
	ctl_t *ctl;
	mqttlink_t *mqtt;
	ckpt_t *ckpt;
	busmgr_t *bus;
	cloudlink_t *cloud;
	web_t *web;
	disk_t *disk;
	uv_signal_t sig_term, sig_int, sig_hup;
	uv_timer_t watchdog;
	uv_prepare_t flush; /* before the loop sleeps: commit the pass's work */
	uv_timer_t commit_later; /* door logs alone may wait a few ms for company */
	uint64_t held_since;      /* monotonic ms: commits held for the checkpointer */
	unsigned hold_gen;        /* its kick */
	uint64_t page_held_since; /* monotonic ms: a cloud state page held for the checkpointer */
	unsigned page_hold_gen;
	int page_hold_frames;     /* PAGE_HOLD_FRAMES, or GH_PAGE_HOLD_FRAMES (tests) */
	uv_timer_t housekeeping; /* once a second: boards follow configuration edits */
	uint64_t started_ms;
} app_t;

static void usage(FILE *f)
{
	fprintf(f, "usage: gatehoused --config FILE [--check-config] [--version]\n"
		   "  runs the gatehouse site gateway in the foreground (systemd Type=notify)\n");
}

static void stop(app_t *a, const char *why)
{
	log_info("main", "stopping (%s)", why);
	sd_notify(0, "STOPPING=1");
	ctl_stop(a->ctl);
	a->ctl = NULL;
	uv_close((uv_handle_t *)&a->sig_term, NULL);
	uv_close((uv_handle_t *)&a->sig_int, NULL);
	uv_close((uv_handle_t *)&a->sig_hup, NULL);
	uv_close((uv_handle_t *)&a->watchdog, NULL);
	uv_prepare_stop(&a->flush);
	uv_close((uv_handle_t *)&a->flush, NULL);
	uv_timer_stop(&a->commit_later);
	uv_close((uv_handle_t *)&a->commit_later, NULL);
	uv_timer_stop(&a->housekeeping);
	uv_close((uv_handle_t *)&a->housekeeping, NULL);
	cloud_stop(a->cloud); /* transfers in flight are dropped: nothing was deleted for them */
	a->cloud = NULL;
	web_stop(a->web); /* freed after the loop ends (web_free) */
	if (engine_flush(a->en, NULL) == 0)
		mqttlink_after_commit(a->mqtt);
	ctl_set_mqtt(a->ctl, NULL);
	mqttlink_stop(a->mqtt);
	a->mqtt = NULL;
	engine_set_effects(a->en, NULL, NULL);
	engine_set_emergency_hook(a->en, NULL, NULL);
	ctl_set_bus(a->ctl, NULL);
	busmgr_stop(a->bus);
	a->bus = NULL;
}

static void reload(app_t *a)
{
	gh_config_t nc;
	char msg[512];
	if (config_load(a->cfg.path, &nc, msg, sizeof msg)) {
		log_err("main", "reload refused, keeping the running config: %s", msg);
		return;
	}
	gh_log_set_level(gh_log_level_from_name(nc.log_level));
	gh_err_t err = { 0 };
	if (profiles_load(nc.profiles_dir, &err))
		log_err("main", "reload: profiles kept: %s", err.message);
	/* the database path, sockets and site id need a restart */
	if (strcmp(nc.db, a->cfg.db) || strcmp(nc.control_socket, a->cfg.control_socket))
		log_warn("main", "reload: db and control_socket changes take effect after a restart");
	snprintf(a->cfg.log_level, sizeof a->cfg.log_level, "%s", nc.log_level);
	snprintf(a->cfg.profiles_dir, sizeof a->cfg.profiles_dir, "%s", nc.profiles_dir);
	log_info("main", "configuration reloaded");
}

static void on_signal(uv_signal_t *h, int signum)
{
	app_t *a = h->data;
	if (signum == SIGHUP) {
		reload(a);
		return;
	}
	stop(a, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

#define COMMIT_DELAY_MS 10
#define CKPT_FORCE_FRAMES 16384 /* WAL frames (64 MB) that make the loop restart the WAL itself */
#define COMMIT_DELAY_FULL_MS 250 /* a full disk: door logs retried 4 times a second, not 100 */

static void commit_now(app_t *a)
{
	gh_err_t err = { 0 };
	uv_timer_stop(&a->commit_later);
	/* events are acknowledged to their devices only once committed, and
	 * synced: a pass without acks waiting (door logs of answered decisions,
	 * presence) commits without an fsync (the next synced commit or the
	 * checkpoint within a second syncs it) */
	int lazy = !a->mqtt || mqttlink_pending_acks(a->mqtt) == 0;
	if (lazy ? engine_flush_lazy(a->en, &err) : engine_flush(a->en, &err)) {
		if (disk_state(a->disk) != DISK_FULL)
			log_err("main", "committing the loop pass: %s", err.message);
		mqttlink_commit_failed(a->mqtt); /* the devices resend */
		/* for lack of space: room is made (reserve file, oldest logs) and
		 * the door logs, still queued, are written again */
		if (disk_after_failure(a->disk) && engine_flush(a->en, NULL) == 0)
			log_info("main", "door logs stored after making room");
	} else {
		mqttlink_after_commit(a->mqtt);
		cloud_kick(a->cloud);
		/* device acks flooding in keep the loop committing (commits that
		 * cannot be held): past 64 MB of WAL the loop copies the rest of
		 * it itself, once, and restarts it */
		if (ckpt_wal_frames(a->ckpt) >= CKPT_FORCE_FRAMES && !store_in_tx(a->st) &&
		    store_wal_restart(a->st) == 0)
			ckpt_wal_restarted(a->ckpt);
	}
}

#define CKPT_HOLD_MS 250 /* door logs held at most this long for a lagging checkpointer */

static void on_commit_later(uv_timer_t *t)
{
	app_t *a = t->data;
	/* the checkpointer cannot keep up with our commits (the WAL would grow
	 * for as long as they come): hold the commits nobody waits for until
	 * it has copied every frame, so the next transaction restarts the WAL */
	if (ckpt_lagging(a->ckpt) && mqttlink_pending_acks(a->mqtt) == 0 && disk_state(a->disk) != DISK_FULL) {
		uint64_t now = gh_mono_ms();
		if (!a->held_since) {
			/* the open pass commits; decisions then begin no transaction
			 * and queue their logs until the checkpointer has copied
			 * every frame: the transaction that stores them restarts
			 * the WAL (it must begin while the WAL is all copied) */
			a->held_since = now;
			engine_defer_tx(a->en, 1);
			commit_now(a);
			a->hold_gen = ckpt_kick(a->ckpt);
		}
		if (now - a->held_since < CKPT_HOLD_MS && !ckpt_caught_up(a->ckpt, a->hold_gen)) {
			uv_timer_start(&a->commit_later, on_commit_later, 5, 0);
			return;
		}
	}
	if (a->held_since) {
		a->held_since = 0;
		engine_defer_tx(a->en, 0);
	}
	commit_now(a);
}

#define PAGE_HOLD_FRAMES 16384 /* WAL frames (64 MB) past which cloud state pages wait for the checkpointer */
#define PAGE_HOLD_MS 1000

/* Before each cloud state page: a first snapshot writes pages back to back
 * (700 MB of WAL for 1.28M entities, never restarted, every frame a new
 * block of the file): once our last commit left 64 MB of WAL, the next page
 * waits until the checkpointer has copied every frame (at most a second),
 * and its transaction restarts the WAL. */
static int cloud_gate(void *ctx)
{
	app_t *a = ctx;
	if (!a->ckpt)
		return 0;
	uint64_t now = gh_mono_ms();
	if (!a->page_held_since) {
		int frames = store_wal_frames(a->st);
		if (frames < a->page_hold_frames) {
			if (frames >= a->page_hold_frames / 2)
				ckpt_kick(a->ckpt); /* keeps it close behind: short holds */
			return 0;
		}
		a->page_held_since = now;
		a->page_hold_gen = ckpt_kick(a->ckpt);
		return 1;
	}
	if (!ckpt_caught_up(a->ckpt, a->page_hold_gen) && now - a->page_held_since < PAGE_HOLD_MS)
		return 1;
	a->page_held_since = 0;
	return 0;
}

/* Runs once per loop pass, just before the loop waits for I/O (redis's
 * "before sleep" hook): the pass's work is committed in one transaction.
 * Device events commit at once (their acks wait for it); work without an
 * ack waiting (door logs of decisions already answered, presence) may wait
 * COMMIT_DELAY_MS to share a commit with the next passes. */
static void on_before_sleep(uv_prepare_t *p)
{
	app_t *a = p->data;
	if (mqttlink_pending_acks(a->mqtt) > 0)
		commit_now(a);
	else if ((engine_pending(a->en) > 0 || engine_pass_open(a->en)) && !uv_is_active((uv_handle_t *)&a->commit_later))
		uv_timer_start(&a->commit_later, on_commit_later,
			       disk_state(a->disk) == DISK_FULL ? COMMIT_DELAY_FULL_MS : COMMIT_DELAY_MS, 0);
}

/* a granted decision: board relays pulse (door phones open their own) */
static void on_effects(void *ctx, const access_result_t *r)
{
	app_t *a = ctx;
	for (int i = 0; i < r->nboards; i++)
		if (busmgr_pulse(a->bus, r->boards[i].board, r->boards[i].channel, 0) == BUS_UNKNOWN)
			log_warn("main", "granted relay on board %s channel %d: no such board channel",
				 r->boards[i].board, r->boards[i].channel);
	/* the person's floors (a visitor's: the apartment's) on the lift */
	if (r->nfloors || r->all_floors) {
		const settings_t *set = settings_get(a->st);
		busmgr_lift(a->bus, r->lift_building, (char (*)[8])r->floors, r->nfloors, r->all_floors,
			    set ? set->lift_grant_s : 10);
	}
}

/* the emergency door group: board relays held, device relays by command */
static void on_emergency(void *ctx, int on, const json_t *targets)
{
	app_t *a = ctx;
	size_t i;
	json_t *t;
	json_array_foreach(targets, i, t) {
		const char *b = json_string_value(json_object_get(t, "board"));
		if (b)
			busmgr_hold(a->bus, b, (int)json_integer_value(json_object_get(t, "channel")), on);
	}
	if (a->mqtt)
		mqttlink_emergency_devices(a->mqtt, on, targets);
}

static int col_int(sqlite3_stmt *s, int i) { return sqlite3_column_int(s, i); }

static const char *col_txt(sqlite3_stmt *s, int i)
{
	const unsigned char *t = sqlite3_column_text(s, i);
	return t ? (const char *)t : "";
}

/* Parking (MODBUS.md readers): a UHF tag or plate read at a lot's reader
 * is decided at the lot's entry or exit barrier; a full lot refuses entry;
 * vehicles inside and every stay are kept. */
static void on_reader(void *ctx, const char *board, const char *lot, int dir, const char *method,
		      const char *code)
{
	app_t *a = ctx;
	gh_err_t err = { 0 };
	if (!*lot) {
		log_warn("main", "read %s on reader %s: the reader belongs to no parking lot", code, board);
		return;
	}
	sqlite3_stmt *s = store_stmt(a->st,
		"SELECT capacity, json_extract(data, '$.entry.board'), json_extract(data, '$.entry.channel'), "
		"json_extract(data, '$.exit.board'), json_extract(data, '$.exit.channel'), "
		"(SELECT json_extract(r.value, '$.direction') FROM json_each(data, '$.readers') r "
		" WHERE json_extract(r.value, '$.board') = ?2), "
		"(SELECT count(*) FROM lot_vehicles v WHERE v.lot = ?1) FROM parking_lots WHERE id = ?1");
	if (!s || engine_pass_begin(a->en, &err))
		return;
	sqlite3_bind_text(s, 1, lot, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, board, -1, SQLITE_STATIC);
	if (sqlite3_step(s) != SQLITE_ROW) {
		sqlite3_reset(s);
		log_warn("main", "read %s on reader %s: no parking lot %s", code, board, lot);
		return;
	}
	int capacity = col_int(s, 0), inside = col_int(s, 6);
	if (dir == 0) /* the reader does not know: the lot's configuration does */
		dir = !strcmp(col_txt(s, 5), "exit") ? 2 : 1;
	char barrier[64];
	snprintf(barrier, sizeof barrier, "%s", col_txt(s, dir == 2 ? 3 : 1));
	int channel = col_int(s, dir == 2 ? 4 : 2);
	sqlite3_reset(s);
	if (!*barrier) {
		log_warn("main", "lot %s has no %s barrier", lot, dir == 2 ? "exit" : "entry");
		return;
	}
	if (dir == 1 && capacity > 0 && inside >= capacity) {
		log_warn("main", "lot %s full (%d/%d): entry refused to %s", lot, inside, capacity, code);
		s = store_stmt(a->st, "INSERT INTO door_logs(ts, type, board, channel, method, code, result, reason) "
				      "VALUES (?, 'door_release', ?, ?, ?, ?, 'failed', 'lot_full')");
		if (s) {
			sqlite3_bind_int64(s, 1, gh_now());
			sqlite3_bind_text(s, 2, barrier, -1, SQLITE_STATIC);
			sqlite3_bind_int(s, 3, channel);
			sqlite3_bind_text(s, 4, method, -1, SQLITE_STATIC);
			sqlite3_bind_text(s, 5, code, -1, SQLITE_STATIC);
			sqlite3_step(s);
			sqlite3_reset(s);
		}
		return;
	}
	access_req_t q = { .board = barrier, .relay = channel, .method = method, .code = code };
	access_result_t r;
	if (engine_decide(a->en, &q, &r, &err)) {
		log_warn("main", "read %s at lot %s: %s", code, lot, err.message);
		return;
	}
	log_info("main", "lot %s %s %s: %s%s", lot, dir == 2 ? "exit" : "entry", code,
		 r.granted ? "open" : "refused ", r.granted ? "" : engine_reason_name(r.reason));
	if (!r.granted)
		return;
	if (dir == 1) {
		s = store_stmt(a->st, "INSERT INTO lot_vehicles(lot, code, person, entered_at) VALUES (?, ?, "
				      "NULLIF(?, ''), ?) ON CONFLICT(lot, code) DO UPDATE SET entered_at = excluded.entered_at");
		if (s) {
			sqlite3_bind_text(s, 1, lot, -1, SQLITE_STATIC);
			sqlite3_bind_text(s, 2, code, -1, SQLITE_STATIC);
			sqlite3_bind_text(s, 3, r.person, -1, SQLITE_STATIC);
			sqlite3_bind_int64(s, 4, gh_now());
			sqlite3_step(s);
			sqlite3_reset(s);
		}
		return;
	}
	/* exit: the stay, with its duration */
	s = store_stmt(a->st, "INSERT INTO parking_logs(lot, code, person, entered_at, exited_at, duration) "
			      "SELECT ?1, ?2, NULLIF(?3, ''), (SELECT entered_at FROM lot_vehicles WHERE lot = ?1 AND code = ?2), "
			      "?4, ?4 - (SELECT entered_at FROM lot_vehicles WHERE lot = ?1 AND code = ?2)");
	if (s) {
		sqlite3_bind_text(s, 1, lot, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 2, code, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 3, r.person, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 4, gh_now());
		sqlite3_step(s);
		sqlite3_reset(s);
	}
	s = store_stmt(a->st, "DELETE FROM lot_vehicles WHERE lot = ? AND code = ?");
	if (s) {
		sqlite3_bind_text(s, 1, lot, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 2, code, -1, SQLITE_STATIC);
		sqlite3_step(s);
		sqlite3_reset(s);
	}
}

/* A door contact on a board input: a door log (open / close). */
static void on_input(void *ctx, const char *board, int input, int level, int latched)
{
	app_t *a = ctx;
	if (engine_pass_begin(a->en, NULL))
		return;
	sqlite3_stmt *s = store_stmt(a->st, "INSERT INTO door_logs(ts, type, board, channel, result, reason) "
					    "VALUES (?, ?, ?, ?, 'success', ?)");
	if (!s)
		return;
	sqlite3_bind_int64(s, 1, gh_now());
	sqlite3_bind_text(s, 2, level ? "door_open" : "door_close", -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, board, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 4, input);
	sqlite3_bind_text(s, 5, latched ? "input edge (latched)" : "input level", -1, SQLITE_STATIC);
	sqlite3_step(s);
	sqlite3_reset(s);
	log_info("main", "board %s input %d: %s%s", board, input, level ? "open" : "closed",
		 latched ? " (latched edge)" : "");
}

static void on_housekeeping(uv_timer_t *t)
{
	app_t *a = t->data;
	/* disk space first, every second even under load: pruning needs a
	 * transaction of its own, so the pass's work is committed before */
	if (engine_pass_open(a->en) || engine_pending(a->en))
		commit_now(a);
	if (!engine_pass_open(a->en))
		disk_tick(a->disk);
	if (engine_pass_open(a->en))
		return;
	busmgr_refresh(a->bus);
	cloud_tick(a->cloud);
	static unsigned ticks;
	/* what a burst (a flood of events, a snapshot) left free in malloc's
	 * arenas goes back to the system every 10 s: RSS follows the load */
	if (ticks % 10 == 7) {
		malloc_trim(0);
		jarena_trim(); /* and the cloud pages' parse arenas */
	}
	/* retention, once a minute and a little at a time, so no pass waits on
	 * a big delete; audit logs are kept a year */
	if (ticks++ % 60 != 5)
		return;
	int64_t n = store_purge_logs(a->st, a->cfg.log_retention_days, 365, gh_now(), 2000);
	if (n > 0)
		log_info("main", "retention: %lld log rows older than %d days removed", (long long)n,
			 a->cfg.log_retention_days);
}

/* WAN up/down: the devices learn it from the retained gw/status (call
 * routing skips app targets while it is down) */
static void on_wan(void *ctx, const char *wan)
{
	app_t *a = ctx;
	mqttlink_set_wan(a->mqtt, wan);
}

static void on_watchdog(uv_timer_t *t)
{
	(void)t;
	/* sent from the loop itself: a stuck loop stops the pings */
	sd_notify(0, "WATCHDOG=1");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = { { "config", required_argument, NULL, 'c' },
					      { "check-config", no_argument, NULL, 'k' },
					      { "version", no_argument, NULL, 'V' },
					      { "help", no_argument, NULL, 'h' },
					      { NULL, 0, NULL, 0 } };
	const char *cfgpath = NULL;
	int check_only = 0, o;
	while ((o = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (o) {
		case 'c': cfgpath = optarg; break;
		case 'k': check_only = 1; break;
		case 'V': printf("gatehoused %s\n", GH_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!cfgpath || optind < argc) {
		usage(stderr);
		return 2;
	}

	app_t a = { 0 };
	char msg[600];
	if (config_load(cfgpath, &a.cfg, msg, sizeof msg)) {
		fprintf(stderr, "gatehoused: %s\n", msg);
		return 2;
	}
	gh_log_set_level(gh_log_level_from_name(a.cfg.log_level));
	gh_err_t err = { 0 };
	if (profiles_load(a.cfg.profiles_dir, &err)) {
		fprintf(stderr, "gatehoused: %s:0: [drivers] profiles_dir: %s\n", cfgpath, err.message);
		return 2;
	}
	if (check_only) {
		printf("%s: ok\n", cfgpath);
		profiles_free();
		return 0;
	}
	umask(0027); /* database, logs and sockets: no access for others */
	log_info("main", "gatehoused %s starting, site %s, database %s", GH_VERSION, a.cfg.site_id, a.cfg.db);
	a.st = store_open(a.cfg.db, &err);
	if (!a.st) {
		log_err("main", "cannot open the site database: %s", err.message);
		profiles_free();
		return 1;
	}
	a.en = engine_new(a.st);
	engine_batch(a.en, 1);
	a.disk = disk_new(a.st, a.cfg.db, a.cfg.min_free_mb << 20);
	disk_tick(a.disk); /* the reserve file, the state before the first status */
	/* checkpoints (and their fsync) happen in their own thread */
	if (store_exec(a.st, "PRAGMA wal_autocheckpoint = 0", &err) == 0)
		a.ckpt = ckpt_start(a.cfg.db, 1000);
	if (!a.ckpt)
		store_exec(a.st, "PRAGMA wal_autocheckpoint = 1000", NULL);
	else
		store_watch_wal(a.st); /* the WAL's length after each commit: cloud_gate */
	settings_t set;
	if (settings_load(a.st, &set) == 0) {
		if (gh_tz_set(set.timezone))
			log_warn("main", "site time zone %s unknown: using UTC", set.timezone);
		settings_free(&set);
	}

	curl_global_init(CURL_GLOBAL_DEFAULT); /* before any other thread starts */
	a.loop = uv_default_loop();
	a.started_ms = gh_mono_ms();
	ctl_env_t env = { .st = a.st, .en = a.en, .started_ms = a.started_ms, .disk = a.disk };
	/* the cloud link: standalone without [cloud] url */
	char token[1024] = "";
	if (a.cfg.cloud_url[0]) {
		struct stat ts;
		if (config_read_secret(a.cfg.cloud_token_file, token, sizeof token))
			log_err("main", "cannot read [cloud] token_file %s: the cloud will refuse us",
				a.cfg.cloud_token_file);
		else if (stat(a.cfg.cloud_token_file, &ts) == 0 && (ts.st_mode & 077))
			log_warn("main", "[cloud] token_file %s is readable by others: chmod 600 it",
				 a.cfg.cloud_token_file);
	}
	cloud_cfg_t cc = { .url = a.cfg.cloud_url, .site = a.cfg.site_id, .token = token,
			   .ca_file = a.cfg.cloud_ca_file, .pin = a.cfg.cloud_pin_sha256,
			   .insecure = a.cfg.cloud_insecure, .outbox_max = a.cfg.outbox_max_events,
			   .backoff_min_ms = (int)a.cfg.cloud_backoff_min_ms, .backoff_max_ms = (int)a.cfg.cloud_backoff_max_ms };
	a.cloud = cloud_start(uv_default_loop(), &cc, a.st, &env);
	memset(token, 0, sizeof token);
	env.wan = cloud_wan(a.cloud); /* follows the state */
	env.cloud = a.cloud;
	a.ctl = ctl_start(a.loop, a.cfg.control_socket, &env);
	if (!a.ctl) {
		cloud_stop(a.cloud);
		uv_run(a.loop, UV_RUN_NOWAIT);
		engine_free(a.en);
		disk_free(a.disk);
		store_close(a.st);
		profiles_free();
		return 1;
	}
	char password[256] = "";
	if (a.cfg.mqtt_password_file[0] &&
	    config_read_secret(a.cfg.mqtt_password_file, password, sizeof password))
		log_err("main", "cannot read [mqtt] password_file %s", a.cfg.mqtt_password_file);
	char client_id[96];
	snprintf(client_id, sizeof client_id, "gatehoused-%s", a.cfg.site_id);
	mqttlink_cfg_t mc = { .host = a.cfg.mqtt_host, .port = a.cfg.mqtt_port,
			      .username = a.cfg.mqtt_username, .password = password[0] ? password : NULL,
			      .tls_ca = a.cfg.mqtt_tls_ca, .client_id = client_id, .wan = env.wan };
	a.mqtt = mqttlink_start(a.loop, &mc, a.st, a.en);
	a.bus = busmgr_start(a.loop, a.st);
	ctl_set_bus(a.ctl, a.bus);
	busmgr_set_reader_cb(a.bus, on_reader, &a);
	busmgr_set_input_cb(a.bus, on_input, &a);
	engine_set_effects(a.en, on_effects, &a);
	engine_set_emergency_hook(a.en, on_emergency, &a);
	ctl_set_mqtt(a.ctl, a.mqtt);
	env.mqtt = a.mqtt;
	env.bus = a.bus;
	cloud_set_env(a.cloud, &env);
	cloud_set_wan_cb(a.cloud, on_wan, &a);
	a.page_hold_frames = PAGE_HOLD_FRAMES;
	const char *hold = getenv("GH_PAGE_HOLD_FRAMES"); /* tests: a small site's WAL */
	if (hold && atoi(hold) > 0)
		a.page_hold_frames = atoi(hold);
	cloud_set_gate(a.cloud, cloud_gate, &a);
	a.web = web_start(a.loop, &a.cfg, &env);
	memset(password, 0, sizeof password);
	uv_signal_t *sigs[] = { &a.sig_term, &a.sig_int, &a.sig_hup };
	int signums[] = { SIGTERM, SIGINT, SIGHUP };
	for (int i = 0; i < 3; i++) {
		uv_signal_init(a.loop, sigs[i]);
		sigs[i]->data = &a;
		uv_signal_start(sigs[i], on_signal, signums[i]);
	}
	uv_timer_init(a.loop, &a.housekeeping);
	a.housekeeping.data = &a;
	uv_timer_start(&a.housekeeping, on_housekeeping, 1000, 1000);
	uv_timer_init(a.loop, &a.commit_later);
	a.commit_later.data = &a;
	uv_prepare_init(a.loop, &a.flush);
	a.flush.data = &a;
	uv_prepare_start(&a.flush, on_before_sleep);
	uv_timer_init(a.loop, &a.watchdog);
	uint64_t wd_usec = 0;
	if (sd_watchdog_enabled(0, &wd_usec) > 0 && wd_usec > 0)
		uv_timer_start(&a.watchdog, on_watchdog, 0, wd_usec / 2000);
	signal(SIGPIPE, SIG_IGN);

	/* doors can be served from local state from here on */
	sd_notify(0, "READY=1\nSTATUS=serving from local state");
	log_info("main", "ready: %lld persons, %lld credentials, %lld devices",
		 (long long)ent_count(a.st, ENT_PERSON), (long long)ent_count(a.st, ENT_CREDENTIAL),
		 (long long)ent_count(a.st, ENT_DEVICE));
	uv_run(a.loop, UV_RUN_DEFAULT);

	web_free(a.web);
	uv_loop_close(a.loop);
	curl_global_cleanup();
	ckpt_stop(a.ckpt);
	engine_free(a.en);
	disk_free(a.disk);
	store_close(a.st);
	profiles_free();
	log_info("main", "stopped");
	return 0;
}
