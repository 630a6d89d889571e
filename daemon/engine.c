/* Access decisions from local state. Order of checks (the most specific
 * reason wins when refused): device and relay, method allowed on the relay,
 * credential, credential validity, holder enabled and not expired,
 * apartment valid time, relay schedule, access groups / temp key scope,
 * temp key uses (consumed last, atomically). */
#include "engine.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "counters.h"
#include "entity_int.h"
#include "jutil.h"
#include "log.h"
#include "schedule.h"
#include "settings.h"
#include "timeutil.h"

/* ---- door logs (written at once, or queued and flushed once per loop pass) ---- */

typedef struct door_log {
	int64_t ts;
	int is_board, relay;
	char tid[64], building[64], apartment[64], person[64], initiator[136];
	char method[16], code[136], credential[64], reason[24], relays[128], floors[160];
	char event_id[72];
	int granted;
} door_log_t;

/* ---- device cache: devices and their relays change rarely and are read
 * on every decision; the cache is dropped whenever the store's
 * configuration generation moves (settings, devices, boards, groups, or any
 * commit by another process) ---- */

typedef struct cand {
	int n;           /* device relay number or board channel */
	int64_t methods; /* 0 = all */
	char schedule[64];
	char board[64];  /* device relay wired to a board channel */
	int channel;
	int ok;          /* granted so far */
	int why;         /* reason when not */
	int idx;         /* index in the device entry's relays */
} cand_t;

/* an access group holding a relay, with its schedule */
typedef struct rgroup {
	char id[64];
	char building[64]; /* set for a building's default group */
	sched_t sc;
} rgroup_t;

typedef struct dev_entry {
	char mac[13];
	int known;
	int type;
	char area[16], building[64], apartment[64];
	int nrel;
	cand_t rel[ENGINE_MAX_RELAYS];
	int ngroups[ENGINE_MAX_RELAYS];
	rgroup_t *groups[ENGINE_MAX_RELAYS];
} dev_entry_t;

static void dev_entry_free_groups(dev_entry_t *e)
{
	for (int i = 0; i < ENGINE_MAX_RELAYS; i++) {
		free(e->groups[i]);
		e->groups[i] = NULL;
		e->ngroups[i] = 0;
	}
}

#define DEV_SLOTS 2048
#define LOG_QUEUE_MAX 4096

struct engine {
	store_t *st;
	const settings_t *set; /* settings_get(): valid until the next store write */
	unsigned dev_gen;
	int dev_count;
	dev_entry_t *dev[DEV_SLOTS];
	int batching;
	int tx_open;    /* the pass's transaction, begun by the first decision */
	int defer_tx;   /* decisions begin no transaction (engine_defer_tx) */
	door_log_t *queue;
	int queued;
	int64_t logs_dropped; /* door logs given up (the queue full while nothing commits) */
	uint64_t drop_logged;
	void (*pass_failed)(void *ctx);
	void *pass_failed_ctx;
	engine_effects_fn effects;
	void *effects_ctx;
	engine_emergency_fn emergency;
	void *emergency_ctx;
};

void engine_set_effects(engine_t *en, engine_effects_fn fn, void *ctx)
{
	en->effects = fn;
	en->effects_ctx = ctx;
}

void engine_set_emergency_hook(engine_t *en, engine_emergency_fn fn, void *ctx)
{
	en->emergency = fn;
	en->emergency_ctx = ctx;
}

static const char *const reason_names[R__COUNT] = {
	"", "unknown_credential", "outside_schedule", "expired", "relay_not_allowed",
	"apartment_expired", "uses_exhausted", "disabled", "unknown_device",
};

const char *engine_reason_name(int r) { return r >= 0 && r < R__COUNT ? reason_names[r] : "?"; }

engine_t *engine_new(store_t *st)
{
	engine_t *en = calloc(1, sizeof *en);
	if (en)
		en->st = st;
	return en;
}

static void dev_cache_clear(engine_t *en)
{
	for (int i = 0; i < DEV_SLOTS; i++) {
		if (en->dev[i])
			dev_entry_free_groups(en->dev[i]);
		free(en->dev[i]);
		en->dev[i] = NULL;
	}
	en->dev_count = 0;
}

void engine_free(engine_t *en)
{
	if (!en)
		return;
	if (en->queued || en->tx_open)
		engine_flush(en, NULL);
	dev_cache_clear(en);
	free(en->queue);
	free(en);
}

static int refresh_settings(engine_t *en)
{
	/* inside the pass's write transaction no other connection can have
	 * committed: only our own edits can move the generation */
	if (en->tx_open && en->set && en->dev_gen == store_settings_gen_local(en->st))
		return 0;
	en->set = settings_get(en->st);
	unsigned gen = store_settings_gen_local(en->st);
	if (en->dev_gen != gen) {
		dev_cache_clear(en);
		en->dev_gen = gen;
	}
	return en->set ? 0 : -1;
}

/* ---- candidate relays ---- */

typedef struct dctx {
	engine_t *en;
	const access_req_t *q;
	int64_t now;
	int is_board;
	const char *tid;  /* device MAC or board id */
	int dev_type;
	char dev_area[16], dev_building[64], dev_apartment[64];
	const dev_entry_t *dev; /* cached device (NULL for boards) */
	cand_t c[ENGINE_MAX_RELAYS];
	int nc;
} dctx_t;

static void copy_col(char *dst, size_t len, sqlite3_stmt *s, int col)
{
	const unsigned char *t = sqlite3_column_text(s, col);
	snprintf(dst, len, "%s", t ? (const char *)t : "");
}

/* Does relay mask M allow METHOD? Aliases: a temp key is typed as a PIN or
 * shown as a QR code; "app" covers the app's home and talking pages. */
static int method_allowed(int64_t m, const char *method)
{
	if (m == 0)
		return 1;
	int k = method_index(method);
	if (k >= 0 && (m >> k) & 1)
		return 1;
	if (!strcmp(method, "tempkey"))
		return method_allowed(m, "pin") || method_allowed(m, "qr");
	if (!strcmp(method, "app"))
		return ((m >> method_index("app_home")) & 1) || ((m >> method_index("app_talk")) & 1);
	if (!strcmp(method, "app_home") || !strcmp(method, "app_talk"))
		return (m >> method_index("app")) & 1;
	return 0;
}

static void sched_from_row(sqlite3_stmt *s, int col, sched_t *o);

static unsigned mac_hash(const char *mac)
{
	unsigned h = 2166136261u;
	for (const char *p = mac; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	return h;
}

/* The device MAC (known or not) from the cache, loaded on a miss. */
static dev_entry_t *dev_lookup(engine_t *en, const char *mac, gh_err_t *err)
{
	unsigned h = mac_hash(mac) % DEV_SLOTS;
	for (unsigned k = 0; k < DEV_SLOTS; k++) {
		dev_entry_t *e = en->dev[(h + k) % DEV_SLOTS];
		if (!e)
			break;
		if (!strcmp(e->mac, mac))
			return e;
	}
	static dev_entry_t scratch; /* a full cache still answers, uncached */
	dev_entry_t *e = en->dev_count < DEV_SLOTS / 2 ? calloc(1, sizeof *e) : &scratch;
	if (!e) {
		gh_err(err, 500, "nomem", "", "out of memory");
		return NULL;
	}
	if (e == &scratch)
		dev_entry_free_groups(e);
	memset(e, 0, sizeof *e);
	snprintf(e->mac, sizeof e->mac, "%s", mac);
	store_t *st = en->st;
	sqlite3_stmt *s = store_stmt(st, "SELECT type, area, building, apartment FROM devices WHERE id = ?");
	if (!s)
		goto dberr;
	sqlite3_bind_text(s, 1, mac, -1, SQLITE_STATIC);
	if (sqlite3_step(s) == SQLITE_ROW) {
		e->known = 1;
		e->type = sqlite3_column_int(s, 0);
		copy_col(e->area, sizeof e->area, s, 1);
		copy_col(e->building, sizeof e->building, s, 2);
		copy_col(e->apartment, sizeof e->apartment, s, 3);
	}
	sqlite3_reset(s);
	if (e->known) {
		s = store_stmt(st, "SELECT n, methods, schedule, board, channel FROM device_relays "
				   "WHERE device = ? ORDER BY n");
		if (!s)
			goto dberr;
		sqlite3_bind_text(s, 1, mac, -1, SQLITE_STATIC);
		while (sqlite3_step(s) == SQLITE_ROW && e->nrel < ENGINE_MAX_RELAYS) {
			cand_t *c = &e->rel[e->nrel++];
			c->n = sqlite3_column_int(s, 0);
			c->methods = sqlite3_column_int64(s, 1);
			copy_col(c->schedule, sizeof c->schedule, s, 2);
			copy_col(c->board, sizeof c->board, s, 3);
			c->channel = sqlite3_column_int(s, 4);
			c->idx = e->nrel - 1;
		}
		sqlite3_reset(s);
		/* the access groups holding each relay */
		s = store_stmt(st, "SELECT r.tn, g.id, COALESCE(g.building, ''), g.repeat, g.start_ts, "
				   "g.end_ts, g.days, g.from_min, g.to_min FROM group_relays r JOIN "
				   "access_groups g ON g.id = r.grp WHERE r.tkind = 'd' AND r.tid = ?");
		if (!s)
			goto dberr;
		sqlite3_bind_text(s, 1, mac, -1, SQLITE_STATIC);
		while (sqlite3_step(s) == SQLITE_ROW) {
			int n = sqlite3_column_int(s, 0), k;
			for (k = 0; k < e->nrel && e->rel[k].n != n; k++)
				;
			if (k == e->nrel)
				continue;
			rgroup_t *g = realloc(e->groups[k], (size_t)(e->ngroups[k] + 1) * sizeof *g);
			if (!g) {
				sqlite3_reset(s);
				goto dberr;
			}
			e->groups[k] = g;
			g += e->ngroups[k]++;
			copy_col(g->id, sizeof g->id, s, 1);
			copy_col(g->building, sizeof g->building, s, 2);
			sched_from_row(s, 3, &g->sc);
		}
		sqlite3_reset(s);
	}
	if (e != &scratch) {
		for (unsigned k = 0; k < DEV_SLOTS; k++)
			if (!en->dev[(h + k) % DEV_SLOTS]) {
				en->dev[(h + k) % DEV_SLOTS] = e;
				break;
			}
		en->dev_count++;
	}
	return e;
dberr:
	dev_entry_free_groups(e);
	if (e != &scratch)
		free(e);
	store_db_err(st, err, "reading device");
	return NULL;
}

static int load_target(dctx_t *d, gh_err_t *err)
{
	store_t *st = d->en->st;
	if (d->is_board) {
		sqlite3_stmt *s = store_stmt(st, "SELECT building FROM relay_boards WHERE id = ?");
		if (!s)
			return store_db_err(st, err, "reading board");
		sqlite3_bind_text(s, 1, d->tid, -1, SQLITE_STATIC);
		if (sqlite3_step(s) != SQLITE_ROW) {
			sqlite3_reset(s);
			return 1;
		}
		copy_col(d->dev_building, sizeof d->dev_building, s, 0);
		sqlite3_reset(s);
		snprintf(d->dev_area, sizeof d->dev_area, "site");
		s = store_stmt(st, "SELECT channel FROM board_channels WHERE board = ?1 AND (?2 = 0 OR channel = ?2) "
				   "AND function IN ('door', 'barrier', 'other') ORDER BY channel");
		if (!s)
			return store_db_err(st, err, "reading channels");
		sqlite3_bind_text(s, 1, d->tid, -1, SQLITE_STATIC);
		sqlite3_bind_int(s, 2, d->q->relay);
		while (sqlite3_step(s) == SQLITE_ROW && d->nc < ENGINE_MAX_RELAYS) {
			cand_t *c = &d->c[d->nc++];
			memset(c, 0, sizeof *c);
			c->n = sqlite3_column_int(s, 0);
		}
		sqlite3_reset(s);
		if (d->nc == 0 && d->q->relay > 0) {
			/* a channel not described in the board's list is still a channel */
			d->c[0] = (cand_t){ .n = d->q->relay };
			d->nc = 1;
		}
		return 0;
	}
	dev_entry_t *e = dev_lookup(d->en, d->tid, err);
	if (!e)
		return -1;
	if (!e->known)
		return 1;
	d->dev = e;
	d->dev_type = e->type;
	memcpy(d->dev_area, e->area, sizeof d->dev_area);
	memcpy(d->dev_building, e->building, sizeof d->dev_building);
	memcpy(d->dev_apartment, e->apartment, sizeof d->dev_apartment);
	for (int i = 0; i < e->nrel && d->nc < ENGINE_MAX_RELAYS; i++)
		if (d->q->relay == 0 || e->rel[i].n == d->q->relay)
			d->c[d->nc++] = e->rel[i];
	return 0;
}

/* ---- schedules ---- */

static void sched_from_row(sqlite3_stmt *s, int col, sched_t *o)
{
	memset(o, 0, sizeof *o);
	o->repeat = sqlite3_column_int(s, col);
	o->has_start = sqlite3_column_type(s, col + 1) != SQLITE_NULL;
	o->start = sqlite3_column_int64(s, col + 1);
	o->has_end = sqlite3_column_type(s, col + 2) != SQLITE_NULL;
	o->end = sqlite3_column_int64(s, col + 2);
	o->days = (unsigned)sqlite3_column_int(s, col + 3);
	o->from_min = sqlite3_column_type(s, col + 4) == SQLITE_NULL ? -1 : sqlite3_column_int(s, col + 4);
	o->to_min = sqlite3_column_type(s, col + 5) == SQLITE_NULL ? -1 : sqlite3_column_int(s, col + 5);
}

/* Relay schedule (an access group's schedule): 1 open, 0 closed. A
 * schedule naming a group that no longer exists keeps the relay closed. */
static int relay_schedule_open(dctx_t *d, const char *grp)
{
	sqlite3_stmt *s = store_stmt(d->en->st, "SELECT repeat, start_ts, end_ts, days, from_min, to_min "
					       "FROM access_groups WHERE id = ?");
	if (!s)
		return 0;
	sqlite3_bind_text(s, 1, grp, -1, SQLITE_STATIC);
	int open = 0;
	if (sqlite3_step(s) == SQLITE_ROW) {
		sched_t sc;
		sched_from_row(s, 0, &sc);
		open = sched_eval(&sc, d->now) == SCHED_OPEN;
	}
	sqlite3_reset(s);
	return open;
}

/* ---- holders ---- */

typedef struct holder {
	int is_key;
	char id[64];        /* person or temp key */
	char cred[64];
	int has_from, has_until;
	int64_t from, until;
	int long_term;
	char type[16];
} holder_t;

#define MAX_HOLDERS 8

static int find_holders(dctx_t *d, holder_t *h, int *nh, gh_err_t *err)
{
	store_t *st = d->en->st;
	const char *m = d->q->method, *code = d->q->code;
	char canon[136];
	*nh = 0;
	int is_pin = !strcmp(m, "pin"), is_key = !strcmp(m, "tempkey"), is_qr = !strcmp(m, "qr");
	int is_app = !strcmp(m, "app") || !strcmp(m, "bluetooth") || !strcmp(m, "nfc") ||
		     !strcmp(m, "app_home") || !strcmp(m, "app_talk");
	size_t n = 0;
	for (const char *p = code; *p && n + 1 < sizeof canon; p++) {
		if (!strcmp(m, "plate") && (*p == ' ' || *p == '-' || *p == '.'))
			continue;
		canon[n++] = (!strcmp(m, "rf") || !strcmp(m, "uhf") || !strcmp(m, "plate"))
				 ? (char)toupper((unsigned char)*p)
				 : *p;
	}
	canon[n] = '\0';

	if (is_app) {
		/* app unlocks arrive with the person id (or their app account) */
		sqlite3_stmt *s = store_stmt(st, "SELECT id FROM persons WHERE id = ?1 OR "
						 "json_extract(data, '$.app_account') = ?1 LIMIT 1");
		if (!s)
			return store_db_err(st, err, "reading person");
		sqlite3_bind_text(s, 1, canon, -1, SQLITE_STATIC);
		if (sqlite3_step(s) == SQLITE_ROW) {
			memset(&h[0], 0, sizeof h[0]);
			copy_col(h[0].id, sizeof h[0].id, s, 0);
			h[0].long_term = 1;
			*nh = 1;
		}
		sqlite3_reset(s);
		return 0;
	}

	/* person credentials (and credentials bound to temp keys) */
	if (!is_key) {
		const char *type = is_pin ? "pin" : m;
		char scopes[4][64];
		int nscopes = 0;
		if (is_pin && d->en->set->apt_pin && d->q->apt && *d->q->apt) {
			/* APT+PIN: the APT names the apartment, within the device's building */
			sqlite3_stmt *s = store_stmt(st, d->dev_building[0]
				? "SELECT id FROM apartments WHERE building = ?2 AND apt = ?1"
				: "SELECT id FROM apartments WHERE apt = ?1 LIMIT 4");
			if (!s)
				return store_db_err(st, err, "reading apartment");
			sqlite3_bind_text(s, 1, d->q->apt, -1, SQLITE_STATIC);
			if (d->dev_building[0])
				sqlite3_bind_text(s, 2, d->dev_building, -1, SQLITE_STATIC);
			while (sqlite3_step(s) == SQLITE_ROW && nscopes < 4)
				copy_col(scopes[nscopes++], 64, s, 0);
			sqlite3_reset(s);
		} else {
			/* site-wide PINs; in APT+PIN mode without an APT: staff and delivery PINs */
			scopes[nscopes++][0] = '\0';
		}
		for (int i = 0; i < nscopes; i++) {
			/* no lookup index while a first snapshot loads (bulk.h): a scan */
#define HOLDERS(index) "SELECT id, person, temp_key, valid_from, valid_until, long_term, type FROM credentials " \
	index "WHERE type = ? AND code = ? AND scope = ? LIMIT 8"
			sqlite3_stmt *s = store_stmt(st, store_bulk(st) ? HOLDERS("")
								 : HOLDERS("INDEXED BY credentials_lookup "));
#undef HOLDERS
			if (!s)
				return store_db_err(st, err, "reading credential");
			sqlite3_bind_text(s, 1, type, -1, SQLITE_STATIC);
			sqlite3_bind_text(s, 2, canon, -1, SQLITE_STATIC);
			sqlite3_bind_text(s, 3, scopes[i], -1, SQLITE_STATIC);
			while (sqlite3_step(s) == SQLITE_ROW && *nh < MAX_HOLDERS) {
				holder_t *x = &h[(*nh)++];
				memset(x, 0, sizeof *x);
				copy_col(x->cred, sizeof x->cred, s, 0);
				x->is_key = sqlite3_column_type(s, 1) == SQLITE_NULL;
				copy_col(x->id, sizeof x->id, s, x->is_key ? 2 : 1);
				x->has_from = sqlite3_column_type(s, 3) != SQLITE_NULL;
				x->from = sqlite3_column_int64(s, 3);
				x->has_until = sqlite3_column_type(s, 4) != SQLITE_NULL;
				x->until = sqlite3_column_int64(s, 4);
				x->long_term = sqlite3_column_int(s, 5);
				copy_col(x->type, sizeof x->type, s, 6);
			}
			sqlite3_reset(s);
		}
	}
	/* temp keys: their PIN code or QR (a PIN is unique among persons and
	 * keys alike, so a person's PIN needs no second look) */
	if ((is_pin && *nh == 0) || is_key || is_qr) {
		sqlite3_stmt *s = store_stmt(st, "SELECT id, apartment FROM temp_keys WHERE code = ?1 UNION "
						 "SELECT id, apartment FROM temp_keys WHERE qr = ?1 LIMIT 8");
		if (!s)
			return store_db_err(st, err, "reading temp key");
		sqlite3_bind_text(s, 1, canon, -1, SQLITE_STATIC);
		while (sqlite3_step(s) == SQLITE_ROW && *nh < MAX_HOLDERS) {
			char apt_id[64];
			copy_col(apt_id, sizeof apt_id, s, 1);
			if (is_pin && d->en->set->apt_pin && d->q->apt && *d->q->apt && *apt_id) {
				/* APT+PIN: the key must belong to the APT typed */
				sqlite3_stmt *a = store_stmt(st, "SELECT 1 FROM apartments WHERE id = ? AND apt = ?");
				if (!a)
					return store_db_err(st, err, "reading apartment");
				sqlite3_bind_text(a, 1, apt_id, -1, SQLITE_STATIC);
				sqlite3_bind_text(a, 2, d->q->apt, -1, SQLITE_STATIC);
				int match = sqlite3_step(a) == SQLITE_ROW;
				sqlite3_reset(a);
				if (!match)
					continue;
			}
			holder_t *x = &h[(*nh)++];
			memset(x, 0, sizeof *x);
			x->is_key = 1;
			copy_col(x->id, sizeof x->id, s, 0);
			x->long_term = 1;
			snprintf(x->type, sizeof x->type, "tempkey");
		}
		sqlite3_reset(s);
	}
	return 0;
}

/* ---- floors ---- */

/* The persons.floors column: a compact JSON list of labels that the
 * validator wrote (["3","G0"] or ["all"]), read without a JSON parser. */
static void floors_from_json(access_result_t *r, const char *json)
{
	const char *p = json;
	while (p && (p = strchr(p, '"'))) {
		const char *end = strchr(++p, '"');
		if (!end)
			break;
		size_t n = (size_t)(end - p);
		if (n == 3 && !memcmp(p, "all", 3))
			r->all_floors = 1;
		else if (n < 8 && r->nfloors < ENGINE_MAX_FLOORS) {
			memcpy(r->floors[r->nfloors], p, n);
			r->floors[r->nfloors++][n] = '\0';
		}
		p = end + 1;
	}
}

static void apartment_floor(dctx_t *d, const char *apt, access_result_t *r)
{
	sqlite3_stmt *s = store_stmt(d->en->st, "SELECT floor, building FROM apartments WHERE id = ?");
	if (!s)
		return;
	sqlite3_bind_text(s, 1, apt, -1, SQLITE_STATIC);
	if (sqlite3_step(s) == SQLITE_ROW) {
		if (sqlite3_column_type(s, 0) != SQLITE_NULL && r->nfloors < ENGINE_MAX_FLOORS)
			copy_col(r->floors[r->nfloors++], 8, s, 0);
		if (!r->lift_building[0])
			copy_col(r->lift_building, sizeof r->lift_building, s, 1);
	}
	sqlite3_reset(s);
}

/* 0 valid, else R_APARTMENT_EXPIRED; -1 db error */
static int apartment_valid(dctx_t *d, const char *apt)
{
	sqlite3_stmt *s = store_stmt(d->en->st, "SELECT valid_from, valid_until FROM apartments WHERE id = ?");
	if (!s)
		return -1;
	sqlite3_bind_text(s, 1, apt, -1, SQLITE_STATIC);
	int r = 0;
	if (sqlite3_step(s) == SQLITE_ROW) {
		if ((sqlite3_column_type(s, 0) != SQLITE_NULL && d->now < sqlite3_column_int64(s, 0)) ||
		    (sqlite3_column_type(s, 1) != SQLITE_NULL && d->now >= sqlite3_column_int64(s, 1)))
			r = R_APARTMENT_EXPIRED;
	}
	sqlite3_reset(s);
	return r;
}

/* ---- person ---- */

static int eval_groups(dctx_t *d, cand_t *c, const char *person, const char *apt,
		       const char *building)
{
	/* groups that hold this relay and that the person belongs to: directly,
	 * through their apartment or building, or as the building's default group */
	sqlite3_stmt *s = store_stmt(d->en->st,
		"SELECT g.repeat, g.start_ts, g.end_ts, g.days, g.from_min, g.to_min "
		"FROM group_relays r JOIN access_groups g ON g.id = r.grp "
		"WHERE r.tkind = ?1 AND r.tid = ?2 AND r.tn = ?3 AND r.grp IN ("
		" SELECT grp FROM group_members WHERE mkind = 'p' AND member = ?4"
		" UNION ALL SELECT grp FROM group_members WHERE mkind = 'a' AND member = ?5"
		" UNION ALL SELECT grp FROM group_members WHERE mkind = 'b' AND member = ?6"
		" UNION ALL SELECT id FROM access_groups WHERE ?7 AND building = ?6)");
	if (!s)
		return -1;
	sqlite3_bind_text(s, 1, d->is_board ? "b" : "d", -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, d->tid, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 3, c->n);
	sqlite3_bind_text(s, 4, person, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 5, apt, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 6, building, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 7, *apt != '\0'); /* default groups serve the building's residents */
	int found = 0, open = 0;
	while (!open && sqlite3_step(s) == SQLITE_ROW) {
		sched_t sc;
		sched_from_row(s, 0, &sc);
		found = 1;
		open = sched_eval(&sc, d->now) == SCHED_OPEN;
	}
	sqlite3_reset(s);
	if (open)
		return R_NONE;
	return found ? R_OUTSIDE_SCHEDULE : R_RELAY_NOT_ALLOWED;
}

#define MAX_MEMBERSHIPS 256

/* The groups a person belongs to directly, through their apartment or
 * their building (three primary-key range scans). */
static int load_memberships(dctx_t *d, const char *person, const char *apt, const char *building,
			    char (*out)[64], int *n)
{
	sqlite3_stmt *s = store_stmt(d->en->st, "SELECT grp FROM group_members WHERE mkind = 'p' AND "
						"member = ?1 UNION ALL SELECT grp FROM group_members WHERE "
						"mkind = 'a' AND member = ?2 UNION ALL SELECT grp FROM "
						"group_members WHERE mkind = 'b' AND member = ?3");
	if (!s)
		return -1;
	sqlite3_bind_text(s, 1, person, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, apt, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, building, -1, SQLITE_STATIC);
	*n = 0;
	while (sqlite3_step(s) == SQLITE_ROW && *n < MAX_MEMBERSHIPS)
		copy_col(out[(*n)++], 64, s, 0);
	sqlite3_reset(s);
	return 0;
}

/* eval_groups on a cached device: the relay's groups from the cache, the
 * person's memberships from one query per decision */
static int eval_groups_cached(dctx_t *d, const cand_t *c, char (*mem)[64], int nmem,
			      const char *apt, const char *building)
{
	const dev_entry_t *e = d->dev;
	int found = 0;
	for (int i = 0; i < e->ngroups[c->idx]; i++) {
		const rgroup_t *g = &e->groups[c->idx][i];
		int member = *apt && g->building[0] && !strcmp(g->building, building);
		for (int k = 0; !member && k < nmem; k++)
			member = !strcmp(mem[k], g->id);
		if (!member)
			continue;
		found = 1;
		if (sched_eval(&g->sc, d->now) == SCHED_OPEN)
			return R_NONE;
	}
	return found ? R_OUTSIDE_SCHEDULE : R_RELAY_NOT_ALLOWED;
}

static int eval_person(dctx_t *d, const holder_t *h, access_result_t *r, gh_err_t *err)
{
	store_t *st = d->en->st;
	if (h->has_until && d->now >= h->until)
		return R_EXPIRED;
	if (h->has_from && d->now < h->from)
		return R_OUTSIDE_SCHEDULE;
	sqlite3_stmt *s = store_stmt(st, "SELECT kind, apartment, active, expires_at, first_name, "
					 "last_name, floors, home_building, apt_from, apt_until "
					 "FROM persons WHERE id = ?");
	if (!s)
		return store_db_err(st, err, "reading person");
	sqlite3_bind_text(s, 1, h->id, -1, SQLITE_STATIC);
	if (sqlite3_step(s) != SQLITE_ROW) {
		sqlite3_reset(s);
		return R_UNKNOWN_CREDENTIAL;
	}
	char kind[16], apt[64], floors[512], building[64];
	copy_col(kind, sizeof kind, s, 0);
	copy_col(apt, sizeof apt, s, 1);
	int active = sqlite3_column_int(s, 2);
	int has_exp = sqlite3_column_type(s, 3) != SQLITE_NULL;
	int64_t exp = sqlite3_column_int64(s, 3);
	snprintf(r->person_name, sizeof r->person_name, "%s%s%s", sqlite3_column_text(s, 4),
		 sqlite3_column_bytes(s, 5) ? " " : "", sqlite3_column_text(s, 5));
	copy_col(floors, sizeof floors, s, 6);
	copy_col(building, sizeof building, s, 7);
	int apt_closed = (sqlite3_column_type(s, 8) != SQLITE_NULL && d->now < sqlite3_column_int64(s, 8)) ||
			 (sqlite3_column_type(s, 9) != SQLITE_NULL && d->now >= sqlite3_column_int64(s, 9));
	sqlite3_reset(s);
	snprintf(r->person, sizeof r->person, "%s", h->id);
	snprintf(r->apartment, sizeof r->apartment, "%s", apt);

	if (!active)
		return R_DISABLED;
	if (has_exp && d->now >= exp)
		return R_EXPIRED;
	if (apt_closed)
		return R_APARTMENT_EXPIRED;
	/* a plate is not issued to door phones when the holder has a UHF card */
	if (!d->is_board && !strcmp(h->type, "plate")) {
		sqlite3_stmt *u = store_stmt(st, "SELECT 1 FROM credentials INDEXED BY credentials_person "
						 "WHERE person = ? AND type = 'uhf' LIMIT 1");
		if (!u)
			return store_db_err(st, err, "reading credentials");
		sqlite3_bind_text(u, 1, h->id, -1, SQLITE_STATIC);
		int has_uhf = sqlite3_step(u) == SQLITE_ROW;
		sqlite3_reset(u);
		if (has_uhf)
			return R_UNKNOWN_CREDENTIAL;
	}

	int any = 0, best = R_RELAY_NOT_ALLOWED, nmem = -1;
	char mem[MAX_MEMBERSHIPS][64];
	for (int i = 0; i < d->nc; i++) {
		cand_t *c = &d->c[i];
		if (c->why)
			continue;
		int why;
		if (!d->is_board && !strcmp(d->dev_area, "apartment") && !d->en->set->public_only &&
		    *apt && !strcmp(apt, d->dev_apartment)) {
			/* private area: the apartment's own devices, unless the site
			 * manages public areas only */
			why = R_NONE;
		} else if (d->dev) {
			if (nmem < 0 && load_memberships(d, h->id, apt, building, mem, &nmem))
				return store_db_err(st, err, "reading group members");
			why = eval_groups_cached(d, c, mem, nmem, apt, building);
		} else {
			why = eval_groups(d, c, h->id, apt, building);
		}
		if (why < 0)
			return store_db_err(st, err, "reading access groups");
		if (why == R_NONE) {
			c->ok = 1;
			any = 1;
		} else if (why == R_OUTSIDE_SCHEDULE) {
			best = R_OUTSIDE_SCHEDULE;
		}
	}
	if (!any)
		return best;
	floors_from_json(r, floors);
	if (!r->nfloors && !r->all_floors && *apt)
		apartment_floor(d, apt, r);
	snprintf(r->lift_building, sizeof r->lift_building, "%s", *building ? building : d->dev_building);
	return R_NONE;
}

/* ---- temp key ---- */

static int eval_temp_key(dctx_t *d, const holder_t *h, access_result_t *r, gh_err_t *err)
{
	store_t *st = d->en->st;
	sqlite3_stmt *s = store_stmt(st, "SELECT repeat, start_ts, end_ts, days, from_min, to_min, "
					 "apartment, json_extract(data, '$.visitor'), uses_total, uses_used "
					 "FROM temp_keys WHERE id = ?");
	if (!s)
		return store_db_err(st, err, "reading temp key");
	sqlite3_bind_text(s, 1, h->id, -1, SQLITE_STATIC);
	if (sqlite3_step(s) != SQLITE_ROW) {
		sqlite3_reset(s);
		return R_UNKNOWN_CREDENTIAL;
	}
	sched_t sc;
	sched_from_row(s, 0, &sc);
	char apt[64];
	copy_col(apt, sizeof apt, s, 6);
	copy_col(r->person_name, sizeof r->person_name, s, 7);
	int limited = sqlite3_column_type(s, 8) != SQLITE_NULL;
	int64_t left = sqlite3_column_int64(s, 8) - sqlite3_column_int64(s, 9);
	sqlite3_reset(s);
	snprintf(r->temp_key, sizeof r->temp_key, "%s", h->id);
	snprintf(r->apartment, sizeof r->apartment, "%s", apt);

	if (h->has_until && d->now >= h->until)
		return R_EXPIRED;
	int ev = sched_eval(&sc, d->now);
	if (ev == SCHED_ENDED)
		return R_EXPIRED;
	if (ev != SCHED_OPEN)
		return R_OUTSIDE_SCHEDULE;
	if (*apt) {
		int a = apartment_valid(d, apt);
		if (a)
			return a < 0 ? store_db_err(st, err, "reading apartment") : a;
	}

	/* scope: the key's door phones, and its relays when it lists any */
	s = store_stmt(st, "SELECT (SELECT count(*) FROM temp_key_devices WHERE key = ?1), "
			   "(SELECT count(*) FROM temp_key_devices WHERE key = ?1 AND device = ?2), "
			   "(SELECT count(*) FROM temp_key_relays WHERE key = ?1)");
	if (!s)
		return store_db_err(st, err, "reading temp key");
	sqlite3_bind_text(s, 1, h->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, d->tid, -1, SQLITE_STATIC);
	sqlite3_step(s);
	int ndev = sqlite3_column_int(s, 0), ondev = sqlite3_column_int(s, 1);
	int nrel = sqlite3_column_int(s, 2);
	sqlite3_reset(s);
	if (ndev && !ondev && !nrel)
		return R_RELAY_NOT_ALLOWED;
	int any = 0;
	for (int i = 0; i < d->nc; i++) {
		cand_t *c = &d->c[i];
		if (c->why)
			continue;
		int ok = 0;
		if (nrel) {
			sqlite3_stmt *q = store_stmt(st, "SELECT 1 FROM temp_key_relays WHERE key = ? AND "
							 "tkind = ? AND tid = ? AND tn = ?");
			if (!q)
				return store_db_err(st, err, "reading temp key");
			sqlite3_bind_text(q, 1, h->id, -1, SQLITE_STATIC);
			sqlite3_bind_text(q, 2, d->is_board ? "b" : "d", -1, SQLITE_STATIC);
			sqlite3_bind_text(q, 3, d->tid, -1, SQLITE_STATIC);
			sqlite3_bind_int(q, 4, c->n);
			ok = sqlite3_step(q) == SQLITE_ROW;
			sqlite3_reset(q);
		} else {
			ok = ondev;
		}
		if (ok) {
			c->ok = 1;
			any = 1;
		}
	}
	if (!any)
		return R_RELAY_NOT_ALLOWED;
	if (limited) {
		if (left <= 0)
			return R_USES_EXHAUSTED;
		/* consumed in the same statement that checks it: two door phones
		 * can never both spend the last use */
		s = store_stmt(st, "UPDATE temp_keys SET uses_used = uses_used + 1 WHERE id = ? AND "
				   "uses_used < uses_total");
		if (!s)
			return store_db_err(st, err, "consuming temp key use");
		sqlite3_bind_text(s, 1, h->id, -1, SQLITE_STATIC);
		int rc = sqlite3_step(s);
		sqlite3_reset(s);
		if (rc != SQLITE_DONE)
			return store_db_err(st, err, "consuming temp key use");
		if (sqlite3_changes(store_db(st)) == 0)
			return R_USES_EXHAUSTED;
	}
	if (*apt)
		apartment_floor(d, apt, r);
	if (!r->lift_building[0])
		snprintf(r->lift_building, sizeof r->lift_building, "%s", d->dev_building);
	return R_NONE;
}

/* ---- door log ---- */

static void mask_code(const char *method, const char *code, char *out, size_t len)
{
	/* PINs and temp key codes are secrets: the log keeps their length only */
	if (!strcmp(method, "pin") || !strcmp(method, "tempkey")) {
		size_t n = strlen(code);
		if (n >= len)
			n = len - 1;
		memset(out, '*', n);
		out[n] = '\0';
		return;
	}
	snprintf(out, len, "%s", code);
}

static void fill_log(dctx_t *d, const access_result_t *r, door_log_t *l)
{
	memset(l, 0, sizeof *l);
	l->ts = d->now;
	l->is_board = d->is_board;
	l->relay = d->q->relay;
	snprintf(l->tid, sizeof l->tid, "%s", d->tid);
	memcpy(l->building, d->dev_building, sizeof l->building);
	memcpy(l->apartment, r->apartment, sizeof l->apartment);
	memcpy(l->person, r->person, sizeof l->person);
	memcpy(l->initiator, r->person_name, sizeof l->initiator);
	snprintf(l->method, sizeof l->method, "%s", d->q->method);
	mask_code(d->q->method, d->q->code, l->code, sizeof l->code);
	snprintf(l->credential, sizeof l->credential, "%s", r->credential[0] ? r->credential : r->temp_key);
	l->granted = r->granted;
	snprintf(l->reason, sizeof l->reason, "%s", engine_reason_name(r->reason));
	size_t n = (size_t)snprintf(l->relays, sizeof l->relays, "[");
	for (int i = 0; i < r->nrelays && n < sizeof l->relays; i++)
		n += (size_t)snprintf(l->relays + n, sizeof l->relays - n, "%s%d", i ? "," : "", r->relays[i]);
	if (n < sizeof l->relays)
		snprintf(l->relays + n, sizeof l->relays - n, "]");
	n = (size_t)snprintf(l->floors, sizeof l->floors, "[");
	if (r->all_floors)
		n += (size_t)snprintf(l->floors + n, sizeof l->floors - n, "\"all\"");
	for (int i = 0; i < r->nfloors && n < sizeof l->floors; i++)
		n += (size_t)snprintf(l->floors + n, sizeof l->floors - n, "%s\"%s\"",
				      (i || r->all_floors) ? "," : "", r->floors[i]);
	if (n < sizeof l->floors)
		snprintf(l->floors + n, sizeof l->floors - n, "]");
	if (d->q->event_id)
		snprintf(l->event_id, sizeof l->event_id, "%s", d->q->event_id);
}

static int insert_log(store_t *st, const door_log_t *l, int64_t *id, gh_err_t *err)
{
	sqlite3_stmt *s = store_stmt(st,
		"INSERT INTO door_logs(ts, type, device, relay, board, channel, building, apartment, apt, "
		"person, initiator, method, code, credential, result, reason, relays, floors, event_id) "
		"VALUES (?1, 'door_release', ?2, ?3, ?4, ?5, NULLIF(?6, ''), NULLIF(?7, ''), "
		"(SELECT apt FROM apartments WHERE id = ?7), NULLIF(?8, ''), NULLIF(?9, ''), ?10, ?11, "
		"NULLIF(?12, ''), ?13, NULLIF(?14, ''), ?15, ?16, NULLIF(?17, ''))");
	if (!s)
		return store_db_err(st, err, "writing door log");
	sqlite3_bind_int64(s, 1, l->ts);
	if (l->is_board) {
		sqlite3_bind_text(s, 4, l->tid, -1, SQLITE_STATIC);
		sqlite3_bind_int(s, 5, l->relay);
	} else {
		sqlite3_bind_text(s, 2, l->tid, -1, SQLITE_STATIC);
		if (l->relay > 0)
			sqlite3_bind_int(s, 3, l->relay);
	}
	sqlite3_bind_text(s, 6, l->building, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 7, l->apartment, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 8, l->person, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 9, l->initiator, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 10, l->method, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 11, l->code, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 12, l->credential, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 13, l->granted ? "success" : "failed", -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 14, l->reason, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 15, l->relays, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 16, l->floors, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 17, l->event_id, -1, SQLITE_STATIC);
	int rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc != SQLITE_DONE)
		return store_db_err(st, err, "writing door log");
	if (id)
		*id = sqlite3_last_insert_rowid(store_db(st));
	return 0;
}

int engine_pass_begin(engine_t *en, gh_err_t *err)
{
	if (en->tx_open || store_in_tx(en->st))
		return 0;
	if (store_begin(en->st))
		return store_db_err(en->st, err, "begin");
	en->tx_open = 1;
	return 0;
}

void engine_batch(engine_t *en, int on)
{
	if (!on && en->batching)
		engine_flush(en, NULL);
	en->batching = on;
}

void engine_defer_tx(engine_t *en, int on) { en->defer_tx = on; }

int engine_pending(engine_t *en) { return en->queued; }
int engine_pass_open(engine_t *en) { return en->tx_open; }

static int flush_failed(engine_t *en)
{
	/* whatever else the pass held (device events) is gone: their acks
	 * must not go out (the device link drops them through this hook) */
	if (en->pass_failed)
		en->pass_failed(en->pass_failed_ctx);
	return -1;
}

static int flush(engine_t *en, int lazy, gh_err_t *err);

int engine_flush(engine_t *en, gh_err_t *err) { return flush(en, 0, err); }

int engine_flush_lazy(engine_t *en, gh_err_t *err) { return flush(en, 1, err); }

static int flush(engine_t *en, int lazy, gh_err_t *err)
{
	if (!en->queued && !en->tx_open)
		return 0;
	int lost = 0;
	if (en->tx_open && store_tx_lost(en->st)) {
		/* SQLite rolled the pass back by itself (SQLITE_FULL, an I/O
		 * error): the pass's other work is gone; the door logs, still
		 * in memory, are written in a transaction of their own */
		store_rollback(en->st);
		en->tx_open = 0;
		lost = 1;
		gh_err(err, 500, "database", "", "the loop pass's transaction was rolled back by SQLite");
		if (!en->queued)
			return flush_failed(en);
	}
	if (!en->tx_open && store_begin(en->st)) {
		store_db_err(en->st, err, "begin");
		return flush_failed(en);
	}
	en->tx_open = 0;
	for (int i = 0; i < en->queued; i++)
		if (insert_log(en->st, &en->queue[i], NULL, err)) {
			store_rollback(en->st);
			/* kept queued: the next pass retries */
			if (en->drop_logged++ % 100 == 0)
				log_err("engine", "door logs not written, %d kept queued", en->queued);
			return flush_failed(en);
		}
	if (lazy ? store_commit_lazy(en->st) : store_commit(en->st)) {
		if (en->drop_logged++ % 100 == 0)
			log_err("engine", "door logs not committed, %d kept queued", en->queued);
		/* the store logged SQLite's reason; the rollback has reset it */
		gh_err(err, 500, "database", "", "commit failed");
		return flush_failed(en);
	}
	en->queued = 0;
	return lost ? flush_failed(en) : 0;
}

void engine_set_pass_failed_hook(engine_t *en, void (*fn)(void *ctx), void *ctx)
{
	en->pass_failed = fn;
	en->pass_failed_ctx = ctx;
}

int64_t engine_logs_dropped(const engine_t *en) { return en ? en->logs_dropped : 0; }

static int write_door_log(dctx_t *d, access_result_t *r, gh_err_t *err)
{
	engine_t *en = d->en;
	if (r->granted)
		GH_COUNT(decisions_granted);
	else
		GH_COUNT(decisions_denied);
	if (!en->batching) {
		door_log_t l;
		fill_log(d, r, &l);
		return insert_log(en->st, &l, &r->door_log, err);
	}
	if (!en->queue && !(en->queue = malloc(LOG_QUEUE_MAX * sizeof *en->queue))) {
		en->logs_dropped++;
		return 0; /* the decision stands without its log */
	}
	if (en->queued == LOG_QUEUE_MAX && engine_flush(en, err)) {
		/* nothing commits (a full disk that pruning cannot help): the
		 * door keeps opening, the older half of the queued logs goes */
		int half = LOG_QUEUE_MAX / 2;
		memmove(en->queue, en->queue + half, (size_t)(LOG_QUEUE_MAX - half) * sizeof *en->queue);
		en->queued -= half;
		en->logs_dropped += half;
		log_err("engine", "door logs cannot be stored: %d queued ones dropped (%lld in all); "
				  "decisions go on", half, (long long)en->logs_dropped);
	}
	fill_log(d, r, &en->queue[en->queued++]);
	return 0;
}

/* ---- decide ---- */

static int decide(dctx_t *d, access_result_t *r, gh_err_t *err)
{
	int rc = load_target(d, err);
	if (rc < 0)
		return -1;
	if (rc == 1) {
		r->reason = R_UNKNOWN_DEVICE;
		return 0;
	}
	/* the method must be allowed on the relay (a PIN only triggers the
	 * relays that allow PIN); a relay schedule closes the relay itself */
	int allowed = 0, sched_closed = 0;
	for (int i = 0; i < d->nc; i++) {
		cand_t *c = &d->c[i];
		if (!method_allowed(c->methods, d->q->method)) {
			c->why = R_RELAY_NOT_ALLOWED;
			continue;
		}
		if (c->schedule[0] && !relay_schedule_open(d, c->schedule)) {
			c->why = R_OUTSIDE_SCHEDULE;
			sched_closed = 1;
			continue;
		}
		allowed = 1;
	}

	holder_t h[MAX_HOLDERS];
	int nh;
	if (find_holders(d, h, &nh, err))
		return -1;
	if (nh == 0) {
		r->reason = R_UNKNOWN_CREDENTIAL;
		return 0;
	}
	if (!allowed) {
		r->reason = sched_closed ? R_OUTSIDE_SCHEDULE : R_RELAY_NOT_ALLOWED;
		return 0;
	}
	int first_reason = -1;
	for (int k = 0; k < nh; k++) {
		access_result_t tr;
		memset(&tr, 0, sizeof tr);
		for (int i = 0; i < d->nc; i++)
			d->c[i].ok = 0;
		int why;
		if (!h[k].is_key)
			why = eval_person(d, &h[k], &tr, err);
		else if (h[k].has_until && d->now >= h[k].until)
			why = R_EXPIRED; /* a credential of the key with its own expiry */
		else
			why = eval_temp_key(d, &h[k], &tr, err);
		if (why < 0)
			return -1;
		snprintf(tr.credential, sizeof tr.credential, "%s", h[k].cred);
		tr.reason = why;
		if (why == R_NONE) {
			*r = tr;
			break;
		}
		if (first_reason < 0) {
			*r = tr;
			first_reason = why;
		}
	}
	if (r->reason != R_NONE)
		return 0;
	r->granted = 1;
	for (int i = 0; i < d->nc; i++) {
		cand_t *c = &d->c[i];
		if (!c->ok)
			continue;
		if (d->is_board) {
			snprintf(r->boards[r->nboards].board, sizeof r->boards[0].board, "%s", d->tid);
			r->boards[r->nboards++].channel = c->n;
		} else if (c->board[0]) {
			snprintf(r->boards[r->nboards].board, sizeof r->boards[0].board, "%s", c->board);
			r->boards[r->nboards++].channel = c->channel;
			r->relays[r->nrelays++] = c->n;
		} else {
			r->relays[r->nrelays++] = c->n;
		}
	}
	return 0;
}

int engine_decide(engine_t *en, const access_req_t *q, access_result_t *r, gh_err_t *err)
{
	memset(r, 0, sizeof *r);
	if (!q->method || method_index(q->method) < 0)
		return gh_err(err, 400, "invalid", "method", "method must be an access method (pin, rf, "
							     "uhf, plate, face, qr, tempkey, app, ...)");
	if (!q->code || !*q->code || strlen(q->code) > 128)
		return gh_err(err, 400, "invalid", "code", "code must be 1..128 bytes");
	if (!q->device == !q->board)
		return gh_err(err, 400, "invalid", "device", "name exactly one device or board");
	if (q->relay < 0 || q->relay > 256)
		return gh_err(err, 400, "invalid", "relay", "relay must be 1..256 (0 = any)");
	if (refresh_settings(en))
		return store_db_err(en->st, err, "reading settings");

	dctx_t d = { .en = en, .q = q, .now = q->now ? q->now : gh_now() };
	char mac[13];
	if (q->device) {
		if (mac_normalize(q->device, mac))
			return gh_err(err, 400, "invalid", "device", "device must be a MAC");
		d.tid = mac;
	} else {
		d.tid = q->board;
		d.is_board = 1;
	}

	if (en->batching) {
		/* one transaction per loop pass, begun by its first decision and
		 * committed by engine_flush with the pass's door logs: decisions
		 * take no lock of their own and only read (plus a temp key use).
		 * A decision never waits on storage: when no transaction can be
		 * begun it reads without one, and its log waits in memory. */
		gh_err_t berr = { 0 };
		if (!en->defer_tx && engine_pass_begin(en, &berr))
			log_err("engine", "deciding without the pass's transaction: %s", berr.message);
		if (decide(&d, r, err))
			return -1;
		write_door_log(&d, r, err);
		if (r->granted && en->effects)
			en->effects(en->effects_ctx, r);
		return 0;
	}
	/* the decision and its door log (and a temp key use) commit together;
	 * when the log cannot be stored (a full disk) the decision stands */
	int tx = store_begin(en->st) == 0;
	if (!tx)
		log_err("engine", "deciding without a transaction: %s", sqlite3_errmsg(store_db(en->st)));
	if (decide(&d, r, err)) {
		if (tx)
			store_rollback(en->st);
		return -1;
	}
	gh_err_t lerr = { 0 };
	int lost = write_door_log(&d, r, &lerr);
	if (lost && tx)
		store_rollback(en->st);
	else if (tx)
		lost = store_commit(en->st); /* rolls back itself when it fails */
	if (lost) {
		r->door_log = 0;
		en->logs_dropped++;
		log_err("engine", "door log not stored (%s); the decision stands",
			lerr.message[0] ? lerr.message : sqlite3_errmsg(store_db(en->st)));
	}
	if (r->granted && en->effects)
		en->effects(en->effects_ctx, r);
	return 0;
}

/* ---- emergency ---- */

static json_t *emergency_targets(engine_t *en, const json_t *doors)
{
	if (json_is_array(doors))
		return json_deep_copy(doors);
	/* "all": every relay of door phones and access terminals, and every
	 * board channel wired to a door */
	json_t *out = json_array();
	sqlite3_stmt *s = store_stmt(en->st, "SELECT r.device, r.n FROM device_relays r JOIN devices d "
					     "ON d.id = r.device WHERE d.type IN (0, 1, 50) ORDER BY 1, 2");
	while (s && sqlite3_step(s) == SQLITE_ROW)
		json_array_append_new(out, json_pack("{s:s,s:i}", "device", sqlite3_column_text(s, 0),
						     "relay", sqlite3_column_int(s, 1)));
	if (s)
		sqlite3_reset(s);
	s = store_stmt(en->st, "SELECT board, channel FROM board_channels WHERE function = 'door' ORDER BY 1, 2");
	while (s && sqlite3_step(s) == SQLITE_ROW)
		json_array_append_new(out, json_pack("{s:s,s:i}", "board", sqlite3_column_text(s, 0),
						     "channel", sqlite3_column_int(s, 1)));
	if (s)
		sqlite3_reset(s);
	return out;
}

int engine_emergency_set(engine_t *en, int on, const json_t *doors, const char *actor,
			 json_t **targets, gh_err_t *err)
{
	if (refresh_settings(en))
		return store_db_err(en->st, err, "reading settings");
	if (doors && !json_is_array(doors) &&
	    !(json_is_string(doors) && !strcmp(json_string_value(doors), "all")))
		return gh_err(err, 400, "invalid", "doors", "doors must be \"all\" or a list of relays");
	json_t *prev = NULL;
	int was_on = engine_emergency_state(en, &prev);
	json_t *t = on ? emergency_targets(en, doors ? doors : en->set->emergency_doors)
		       : (prev ? json_incref(prev) : json_array());
	json_t *state = json_pack("{s:b,s:O,s:I}", "on", on, "doors", t, "since", (json_int_t)gh_now());
	char *txt = jdump(state);
	int rc = store_begin(en->st);
	if (!rc)
		rc = store_kv_set(en->st, "emergency", txt);
	if (!rc)
		rc = audit_write(en->st, actor, on ? "emergency_on" : "emergency_off", ENT_SETTINGS,
				 "emergency", was_on ? prev : NULL, state);
	if (!rc)
		rc = store_commit(en->st);
	else
		store_rollback(en->st);
	free(txt);
	json_decref(state);
	json_decref(prev);
	if (rc) {
		json_decref(t);
		return store_db_err(en->st, err, "storing emergency state");
	}
	log_warn("engine", "emergency %s by %s (%zu relays)", on ? "ON" : "off", actor ? actor : "?",
		 json_array_size(t));
	if (en->emergency)
		en->emergency(en->emergency_ctx, on, t);
	if (targets)
		*targets = t;
	else
		json_decref(t);
	return 0;
}

int engine_emergency_state(engine_t *en, json_t **targets)
{
	char buf[65536];
	if (targets)
		*targets = NULL;
	if (store_kv_get(en->st, "emergency", buf, sizeof buf))
		return 0;
	json_t *st = json_loads(buf, 0, NULL);
	int on = json_is_true(json_object_get(st, "on"));
	if (targets && on)
		*targets = json_incref(json_object_get(st, "doors"));
	json_decref(st);
	return on;
}
