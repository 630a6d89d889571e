/* Entity -> SQLite rows: the main row (columns the engine queries plus the
 * whole JSON) and the derived rows (relays, channels, group members...).
 * Upserts never use REPLACE: that would fire ON DELETE CASCADE. */
#include <stdlib.h>
#include <string.h>

#include "entity_int.h"
#include "jutil.h"
#include "log.h"
#include "schedule.h"
#include "settings.h"
#include "timeutil.h"

/* A local edit keeps the cloud revision it was made on: that is the
 * base_rev of its journaled change, and of the next edit's. */
#define COMMON_COLS "data, rev, lrev, origin, updated_at"
#define COMMON_SET                                                                             \
	"data = excluded.data, rev = CASE WHEN excluded.origin = 'local' THEN rev ELSE excluded.rev END, " \
	"lrev = excluded.lrev, "                                                               \
	"origin = excluded.origin, updated_at = excluded.updated_at"

typedef struct row {
	sqlite3_stmt *s;
	int i; /* next bind index */
} row_t;

/* SQL's INSERT without its ON CONFLICT clause, interned (the statement
 * cache is keyed by the SQL's address); SQL itself when it has none or the
 * table is full. The store's thread only, as the store itself. A row that does not exist yet goes in by a plain INSERT:
 * an upsert costs SQLite a conflict probe and, on a parent table, a scan of
 * the children's foreign keys (measured: 1.7 us a credential, 4 us a
 * person, a quarter of a first snapshot's writes). */
static const char *insert_only(const char *sql)
{
	static struct {
		const char *upsert;
		char *plain;
	} map[24];
	for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
		if (map[i].upsert == sql)
			return map[i].plain;
		if (!map[i].upsert) {
			const char *oc = strstr(sql, " ON CONFLICT");
			char *plain = oc ? strndup(sql, (size_t)(oc - sql)) : NULL;
			if (!plain)
				return sql;
			map[i].upsert = sql;
			map[i].plain = plain;
			return plain;
		}
	}
	return sql;
}

/* The main row's statement: the upsert SQL, or its plain INSERT when the
 * entity is new (v->before is the stored version, read in the same
 * transaction). */
static int row_start(vctx_t *v, row_t *r, const char *sql)
{
	r->s = store_stmt(v->st, v->before ? sql : insert_only(sql));
	r->i = 1;
	if (!r->s)
		return -1;
	sqlite3_bind_text(r->s, r->i++, v->id, -1, SQLITE_STATIC);
	return 0;
}

/* Texts are bound without a copy: every one (the id, the entity's JSON
 * strings, the writers' locals) outlives the statement's step, and the
 * bindings are cleared after it (row_finish, run). */
static void b_text(row_t *r, const char *t) { sqlite3_bind_text(r->s, r->i++, t, -1, SQLITE_STATIC); }
static void b_int(row_t *r, int64_t n) { sqlite3_bind_int64(r->s, r->i++, n); }
static void b_null(row_t *r) { sqlite3_bind_null(r->s, r->i++); }

static void b_jstr(row_t *r, json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	if (s)
		b_text(r, s);
	else
		b_null(r);
}

static void b_jint(row_t *r, json_t *o, const char *k)
{
	json_t *x = json_object_get(o, k);
	if (json_is_integer(x))
		b_int(r, json_integer_value(x));
	else if (json_is_boolean(x))
		b_int(r, json_is_true(x));
	else
		b_null(r);
}

static int row_finish(vctx_t *v, row_t *r, const ent_ctx_t *ctx, int64_t lrev)
{
	/* the entity's JSON: on the stack when it fits (most do; a cloud
	 * snapshot writes a million of them), else on the heap */
	char small[2048];
	size_t n;
	if (v->json) { /* made by ent_prepare */
		sqlite3_bind_text(r->s, r->i++, v->json, (int)v->json_len, SQLITE_STATIC);
	} else if ((n = json_dumpb(v->d, small, sizeof small, JSON_COMPACT | JSON_ENCODE_ANY)) > 0 &&
		   n < sizeof small) {
		sqlite3_bind_text(r->s, r->i++, small, (int)n, SQLITE_STATIC);
	} else {
		char *data = jdump(v->d);
		sqlite3_bind_text(r->s, r->i++, data, -1, free);
	}
	b_int(r, ctx->rev);
	b_int(r, lrev);
	b_text(r, ctx->local ? "local" : "cloud");
	b_int(r, gh_now());
	int rc = sqlite3_step(r->s);
	sqlite3_reset(r->s);
	sqlite3_clear_bindings(r->s); /* SMALL goes out of scope */
	if (rc != SQLITE_DONE) {
		log_err("store", "writing %s %s: %s", ent_name(v->e), v->id, sqlite3_errmsg(store_db(v->st)));
		return -1;
	}
	return 0;
}

static int run(store_t *st, sqlite3_stmt *s)
{
	if (!s)
		return -1;
	int rc = sqlite3_step(s);
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if (rc != SQLITE_DONE) {
		log_err("store", "derived rows: %s", sqlite3_errmsg(store_db(st)));
		return -1;
	}
	return 0;
}

static int del_by_id(vctx_t *v, const char *sql)
{
	sqlite3_stmt *s = store_stmt(v->st, sql);
	if (!s)
		return -1;
	sqlite3_bind_text(s, 1, v->id, -1, SQLITE_STATIC);
	return run(v->st, s);
}

static void bind_sched(row_t *r, json_t *o)
{
	sched_t s;
	sched_from_json(json_object_get(o, "schedule"), "schedule", &s, NULL);
	b_int(r, s.repeat);
	if (s.has_start) b_int(r, s.start); else b_null(r);
	if (s.has_end) b_int(r, s.end); else b_null(r);
	b_int(r, s.days);
	if (s.from_min >= 0) b_int(r, s.from_min); else b_null(r);
	if (s.to_min >= 0) b_int(r, s.to_min); else b_null(r);
}

/* relay refs -> rows (owner, tkind, tid, tn) */
static int write_refs(vctx_t *v, json_t *list, const char *sql)
{
	size_t i;
	json_t *x;
	json_array_foreach(list, i, x) {
		sqlite3_stmt *s = store_stmt(v->st, sql);
		if (!s)
			return -1;
		json_t *dev = json_object_get(x, "device");
		sqlite3_bind_text(s, 1, v->id, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 2, dev ? "d" : "b", -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 3, json_string_value(dev ? dev : json_object_get(x, "board")), -1,
				  SQLITE_TRANSIENT);
		sqlite3_bind_int64(s, 4, json_integer_value(json_object_get(x, dev ? "relay" : "channel")));
		if (run(v->st, s))
			return -1;
	}
	return 0;
}

static int w_settings(vctx_t *v, const ent_ctx_t *ctx, int64_t lrev)
{
	row_t r;
	if (row_start(v, &r, "INSERT INTO settings(id, " COMMON_COLS ") VALUES (?, ?, ?, ?, ?, ?) "
			     "ON CONFLICT(id) DO UPDATE SET " COMMON_SET) ||
	    row_finish(v, &r, ctx, lrev))
		return -1;
	/* PIN lookup scope follows the PIN mode */
	sqlite3_stmt *s = store_stmt(v->st,
		"UPDATE credentials SET scope = CASE WHEN ?1 THEN COALESCE("
		"(SELECT apartment FROM persons p WHERE p.id = credentials.person), "
		"(SELECT apartment FROM temp_keys t WHERE t.id = credentials.temp_key), '') ELSE '' END "
		"WHERE type = 'pin'");
	if (!s)
		return -1;
	sqlite3_bind_int(s, 1, !strcmp(json_string_value(json_object_get(v->d, "pin_mode")), "apt_pin"));
	return run(v->st, s);
}

static int w_simple(vctx_t *v, const ent_ctx_t *ctx, int64_t lrev, const char *sql)
{
	row_t r;
	return row_start(v, &r, sql) || row_finish(v, &r, ctx, lrev);
}

static int w_building(vctx_t *v, const ent_ctx_t *ctx, int64_t lrev)
{
	row_t r;
	if (row_start(v, &r, "INSERT INTO buildings(id, name, ground_floor, floor_start, " COMMON_COLS
			     ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET "
			     "name = excluded.name, ground_floor = excluded.ground_floor, "
			     "floor_start = excluded.floor_start, " COMMON_SET))
		return -1;
	b_jstr(&r, v->d, "name");
	b_jstr(&r, v->d, "ground_floor");
	b_jint(&r, v->d, "floor_start");
	return row_finish(v, &r, ctx, lrev);
}

static int w_apartment(vctx_t *v, const ent_ctx_t *ctx, int64_t lrev)
{
	row_t r;
	if (row_start(v, &r, "INSERT INTO apartments(id, building, apt, floor, valid_from, valid_until, "
			     COMMON_COLS ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO "
			     "UPDATE SET building = excluded.building, apt = excluded.apt, floor = "
			     "excluded.floor, valid_from = excluded.valid_from, valid_until = "
			     "excluded.valid_until, " COMMON_SET))
		return -1;
	b_jstr(&r, v->d, "building");
	b_jstr(&r, v->d, "apt");
	b_jstr(&r, v->d, "floor");
	b_jint(&r, v->d, "valid_from");
	b_jint(&r, v->d, "valid_until");
	if (row_finish(v, &r, ctx, lrev))
		return -1;
	if (!v->before)
		return 0; /* a new apartment has no residents yet (their foreign key) */
	/* the residents' copies of the building and valid time */
	sqlite3_stmt *s = store_stmt(v->st, "UPDATE persons INDEXED BY persons_apartment SET home_building = a.building, apt_from = "
					    "a.valid_from, apt_until = a.valid_until FROM apartments a "
					    "WHERE a.id = ?1 AND persons.apartment = ?1");
	if (!s)
		return -1;
	sqlite3_bind_text(s, 1, v->id, -1, SQLITE_STATIC);
	return run(v->st, s);
}

static int w_person(vctx_t *v, const ent_ctx_t *ctx, int64_t lrev)
{
	row_t r;
	if (row_start(v, &r, "INSERT INTO persons(id, kind, apartment, building, first_name, last_name, "
			     "active, expires_at, floors, home_building, apt_from, apt_until, " COMMON_COLS
			     ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, COALESCE((SELECT building FROM "
			     "apartments WHERE id = ?3), ?4), (SELECT valid_from FROM apartments WHERE id = "
			     "?3), (SELECT valid_until FROM apartments WHERE id = ?3), ?10, ?11, ?12, ?13, "
			     "?14) ON CONFLICT(id) DO UPDATE SET kind = excluded.kind, "
			     "apartment = excluded.apartment, building = excluded.building, first_name = "
			     "excluded.first_name, last_name = excluded.last_name, active = "
			     "excluded.active, expires_at = excluded.expires_at, floors = "
			     "excluded.floors, home_building = excluded.home_building, apt_from = "
			     "excluded.apt_from, apt_until = excluded.apt_until, " COMMON_SET))
		return -1;
	b_jstr(&r, v->d, "kind");
	b_jstr(&r, v->d, "apartment");
	b_jstr(&r, v->d, "building");
	b_jstr(&r, v->d, "first_name");
	b_jstr(&r, v->d, "last_name");
	b_jint(&r, v->d, "active");
	b_jint(&r, v->d, "expires_at");
	json_t *fl = json_object_get(v->d, "floors");
	if (json_array_size(fl)) {
		char *txt = jdump(fl);
		sqlite3_bind_text(r.s, r.i++, txt, -1, free);
	} else {
		b_null(&r);
	}
	if (row_finish(v, &r, ctx, lrev))
		return -1;
	if (!v->before)
		return 0; /* a new person has no credentials yet (their foreign key) */
	/* a resident who moves takes their PINs' APT+PIN scope along */
	sqlite3_stmt *s = store_stmt(v->st, "UPDATE credentials INDEXED BY credentials_person SET scope = COALESCE(?2, '') "
					    "WHERE person = ?1 AND type = 'pin' AND scope <> '' "
					    "AND scope IS NOT COALESCE(?2, '')");
	if (!s)
		return -1;
	sqlite3_bind_text(s, 1, v->id, -1, SQLITE_STATIC);
	const char *apt = json_string_value(json_object_get(v->d, "apartment"));
	if (apt)
		sqlite3_bind_text(s, 2, apt, -1, SQLITE_STATIC);
	return run(v->st, s);
}

/* relay "methods" -> bit mask (0 = every method) */
static int64_t methods_mask(json_t *m)
{
	if (!json_is_array(m))
		return 0;
	int64_t mask = 0;
	size_t i;
	json_t *x;
	json_array_foreach(m, i, x) {
		int k = method_index(json_string_value(x));
		if (k >= 0)
			mask |= (int64_t)1 << k;
	}
	return mask ? mask : ((int64_t)1 << 62); /* an empty list allows nothing */
}

static int forget_in_groups(store_t *st, char kind, const char *id, int64_t lrev, int relay);

static int w_device(vctx_t *v, const ent_ctx_t *ctx, int64_t lrev)
{
	row_t r;
	if (row_start(v, &r, "INSERT INTO devices(id, type, name, area, building, apartment, internet, "
			     "works_offline, " COMMON_COLS ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
			     "?, ?) ON CONFLICT(id) DO UPDATE SET type = excluded.type, name = "
			     "excluded.name, area = excluded.area, building = excluded.building, "
			     "apartment = excluded.apartment, internet = excluded.internet, "
			     "works_offline = excluded.works_offline, " COMMON_SET))
		return -1;
	b_jint(&r, v->d, "type");
	b_jstr(&r, v->d, "name");
	b_jstr(&r, v->d, "area");
	b_jstr(&r, v->d, "building");
	b_jstr(&r, v->d, "apartment");
	b_jint(&r, v->d, "internet");
	b_jint(&r, v->d, "works_offline");
	if (row_finish(v, &r, ctx, lrev) || del_by_id(v, "DELETE FROM device_relays WHERE device = ?"))
		return -1;
	size_t i;
	json_t *x;
	json_array_foreach(json_object_get(v->d, "relays"), i, x) {
		sqlite3_stmt *s = store_stmt(v->st, "INSERT INTO device_relays(device, n, methods, "
						    "schedule, board, channel) VALUES (?, ?, ?, ?, ?, ?)");
		if (!s)
			return -1;
		row_t rr = { s, 1 };
		b_text(&rr, v->id);
		b_jint(&rr, x, "n");
		b_int(&rr, methods_mask(json_object_get(x, "methods")));
		b_jstr(&rr, x, "schedule");
		json_t *bd = json_object_get(x, "board");
		b_jstr(&rr, bd, "board");
		b_jint(&rr, bd, "channel");
		if (run(v->st, s))
			return -1;
	}
	/* access groups let go of relays the device no longer has */
	sqlite3_stmt *g = store_stmt(v->st, "SELECT DISTINCT tn FROM group_relays WHERE tkind = 'd' AND tid = ?1 "
					    "AND tn NOT IN (SELECT n FROM device_relays WHERE device = ?1)");
	if (!g)
		return -1;
	sqlite3_bind_text(g, 1, v->id, -1, SQLITE_STATIC);
	int gone[64], ngone = 0;
	while (sqlite3_step(g) == SQLITE_ROW && ngone < 64)
		gone[ngone++] = sqlite3_column_int(g, 0);
	sqlite3_reset(g);
	for (int k = 0; k < ngone; k++)
		if (forget_in_groups(v->st, 'D', v->id, lrev, gone[k]))
			return -1;
	return 0;
}

static int w_relay_board(vctx_t *v, const ent_ctx_t *ctx, int64_t lrev)
{
	row_t r;
	if (row_start(v, &r, "INSERT INTO relay_boards(id, profile, mode, bus, unit, building, lot, "
			     COMMON_COLS ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) "
			     "DO UPDATE SET profile = excluded.profile, mode = excluded.mode, bus = "
			     "excluded.bus, unit = excluded.unit, building = excluded.building, lot = "
			     "excluded.lot, " COMMON_SET))
		return -1;
	b_jstr(&r, v->d, "profile");
	b_jstr(&r, v->d, "mode");
	b_jstr(&r, v->d, "bus");
	b_jint(&r, v->d, "unit");
	b_jstr(&r, v->d, "building");
	b_jstr(&r, v->d, "lot");
	if (row_finish(v, &r, ctx, lrev) || del_by_id(v, "DELETE FROM board_channels WHERE board = ?"))
		return -1;
	size_t i;
	json_t *x;
	json_array_foreach(json_object_get(v->d, "channels"), i, x) {
		sqlite3_stmt *s = store_stmt(v->st, "INSERT INTO board_channels(board, channel, function, "
						    "floor, hold_ms) VALUES (?, ?, ?, ?, ?)");
		if (!s)
			return -1;
		row_t rr = { s, 1 };
		b_text(&rr, v->id);
		b_jint(&rr, x, "channel");
		b_jstr(&rr, x, "function");
		b_jstr(&rr, x, "floor");
		b_jint(&rr, x, "hold_ms");
		if (run(v->st, s))
			return -1;
	}
	return 0;
}

static int w_access_group(vctx_t *v, const ent_ctx_t *ctx, int64_t lrev)
{
	row_t r;
	if (row_start(v, &r, "INSERT INTO access_groups(id, name, building, repeat, start_ts, end_ts, "
			     "days, from_min, to_min, " COMMON_COLS ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, "
			     "?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET name = excluded.name, "
			     "building = excluded.building, repeat = excluded.repeat, start_ts = "
			     "excluded.start_ts, end_ts = excluded.end_ts, days = excluded.days, "
			     "from_min = excluded.from_min, to_min = excluded.to_min, " COMMON_SET))
		return -1;
	b_jstr(&r, v->d, "name");
	b_jstr(&r, v->d, "building");
	bind_sched(&r, v->d);
	if (row_finish(v, &r, ctx, lrev) || del_by_id(v, "DELETE FROM group_relays WHERE grp = ?") ||
	    del_by_id(v, "DELETE FROM group_members WHERE grp = ?") ||
	    write_refs(v, json_object_get(v->d, "relays"),
		       "INSERT OR IGNORE INTO group_relays(grp, tkind, tid, tn) VALUES (?, ?, ?, ?)"))
		return -1;
	static const struct { const char *key, *kind; } mk[] = {
		{ "persons", "p" }, { "apartments", "a" }, { "buildings", "b" } };
	json_t *m = json_object_get(v->d, "members");
	for (int k = 0; k < 3; k++) {
		size_t i;
		json_t *x;
		json_array_foreach(json_object_get(m, mk[k].key), i, x) {
			sqlite3_stmt *s = store_stmt(v->st, "INSERT OR IGNORE INTO group_members(grp, "
							    "mkind, member) VALUES (?, ?, ?)");
			if (!s)
				return -1;
			sqlite3_bind_text(s, 1, v->id, -1, SQLITE_STATIC);
			sqlite3_bind_text(s, 2, mk[k].kind, -1, SQLITE_STATIC);
			sqlite3_bind_text(s, 3, json_string_value(x), -1, SQLITE_STATIC);
			if (run(v->st, s))
				return -1;
		}
	}
	return 0;
}

static int write_key_devices(vctx_t *v)
{
	size_t i;
	json_t *x;
	json_array_foreach(json_object_get(v->d, "devices"), i, x) {
		sqlite3_stmt *s = store_stmt(v->st, "INSERT OR IGNORE INTO temp_key_devices(key, device) "
						    "VALUES (?, ?)");
		if (!s)
			return -1;
		sqlite3_bind_text(s, 1, v->id, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 2, json_string_value(x), -1, SQLITE_STATIC);
		if (run(v->st, s))
			return -1;
	}
	return 0;
}

static int w_temp_key(vctx_t *v, const ent_ctx_t *ctx, int64_t lrev)
{
	/* uses_left is the box's: a new total keeps the uses already consumed */
	json_t *upd = json_object_get(v->d, "uses_per_device");
	size_t ndev = json_array_size(json_object_get(v->d, "devices"));
	row_t r;
	if (row_start(v, &r, "INSERT INTO temp_keys(id, building, apartment, code, qr, repeat, start_ts, "
			     "end_ts, days, from_min, to_min, uses_per_device, uses_total, " COMMON_COLS
			     ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON "
			     "CONFLICT(id) DO UPDATE SET building = excluded.building, apartment = "
			     "excluded.apartment, code = excluded.code, qr = excluded.qr, repeat = "
			     "excluded.repeat, start_ts = excluded.start_ts, end_ts = excluded.end_ts, "
			     "days = excluded.days, from_min = excluded.from_min, to_min = "
			     "excluded.to_min, uses_per_device = excluded.uses_per_device, uses_total = "
			     "excluded.uses_total, " COMMON_SET))
		return -1;
	b_jstr(&r, v->d, "building");
	b_jstr(&r, v->d, "apartment");
	b_jstr(&r, v->d, "code");
	b_jstr(&r, v->d, "qr");
	bind_sched(&r, v->d);
	b_jint(&r, v->d, "uses_per_device");
	if (json_is_integer(upd))
		b_int(&r, json_integer_value(upd) * (int64_t)ndev);
	else
		b_null(&r);
	return row_finish(v, &r, ctx, lrev) ||
	       del_by_id(v, "DELETE FROM temp_key_relays WHERE key = ?") ||
	       del_by_id(v, "DELETE FROM temp_key_devices WHERE key = ?") ||
	       write_refs(v, json_object_get(v->d, "relays"),
			  "INSERT OR IGNORE INTO temp_key_relays(key, tkind, tid, tn) VALUES (?, ?, ?, ?)") ||
	       write_key_devices(v);
}

static int w_credential(vctx_t *v, const ent_ctx_t *ctx, int64_t lrev)
{
	const char *type = json_string_value(json_object_get(v->d, "type"));
	const char *person = json_string_value(json_object_get(v->d, "person"));
	const char *key = json_string_value(json_object_get(v->d, "temp_key"));
	char scope[80] = "";
	if (!strcmp(type, "pin")) {
		const settings_t *set = settings_get(v->st);
		if (!set)
			return -1;
		if (set->apt_pin) {
			sqlite3_stmt *s = store_stmt(v->st, person ? "SELECT apartment FROM persons WHERE id = ?"
								   : "SELECT apartment FROM temp_keys WHERE id = ?");
			if (!s)
				return -1;
			sqlite3_bind_text(s, 1, person ? person : key, -1, SQLITE_STATIC);
			if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0))
				snprintf(scope, sizeof scope, "%s", (const char *)sqlite3_column_text(s, 0));
			sqlite3_reset(s);
		}
	}
	row_t r;
	if (row_start(v, &r, "INSERT INTO credentials(id, person, temp_key, type, code, scope, "
			     "valid_from, valid_until, long_term, " COMMON_COLS ") VALUES (?, ?, ?, ?, "
			     "?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET person = "
			     "excluded.person, temp_key = excluded.temp_key, type = excluded.type, "
			     "code = excluded.code, scope = excluded.scope, valid_from = "
			     "excluded.valid_from, valid_until = excluded.valid_until, long_term = "
			     "excluded.long_term, " COMMON_SET))
		return -1;
	b_jstr(&r, v->d, "person");
	b_jstr(&r, v->d, "temp_key");
	b_text(&r, type);
	b_jstr(&r, v->d, "code");
	b_text(&r, scope);
	b_jint(&r, v->d, "valid_from");
	b_jint(&r, v->d, "valid_until");
	json_t *lt = json_object_get(v->d, "long_term");
	b_int(&r, lt ? json_is_true(lt) : 1);
	return row_finish(v, &r, ctx, lrev);
}

static int w_parking_lot(vctx_t *v, const ent_ctx_t *ctx, int64_t lrev)
{
	row_t r;
	if (row_start(v, &r, "INSERT INTO parking_lots(id, name, capacity, " COMMON_COLS ") VALUES (?, "
			     "?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET name = excluded.name, "
			     "capacity = excluded.capacity, " COMMON_SET))
		return -1;
	b_jstr(&r, v->d, "name");
	b_jint(&r, v->d, "capacity");
	return row_finish(v, &r, ctx, lrev);
}

int rows_write(vctx_t *v, const ent_ctx_t *ctx, int64_t lrev)
{
	switch (v->e) {
	case ENT_SETTINGS: return w_settings(v, ctx, lrev);
	case ENT_MAC:
		return w_simple(v, ctx, lrev, "INSERT INTO macs(id, " COMMON_COLS ") VALUES (?, ?, ?, ?, "
					      "?, ?) ON CONFLICT(id) DO UPDATE SET " COMMON_SET);
	case ENT_BUILDING: return w_building(v, ctx, lrev);
	case ENT_APARTMENT: return w_apartment(v, ctx, lrev);
	case ENT_PERSON: return w_person(v, ctx, lrev);
	case ENT_DEVICE: return w_device(v, ctx, lrev);
	case ENT_RELAY_BOARD: return w_relay_board(v, ctx, lrev);
	case ENT_ACCESS_GROUP: return w_access_group(v, ctx, lrev);
	case ENT_TEMP_KEY: return w_temp_key(v, ctx, lrev);
	case ENT_CREDENTIAL: return w_credential(v, ctx, lrev);
	case ENT_PARKING_LOT: return w_parking_lot(v, ctx, lrev);
	default: return -1;
	}
}

/* Rewrites the stored JSON of the access groups that name a deleted entity,
 * dropping it from members.KEY (persons, apartments, buildings) or from
 * relays (a device's relays, a board's channels), so the groups stay valid
 * and their derived rows agree with their JSON. */
static int forget_in_groups(store_t *st, char kind, const char *id, int64_t lrev, int relay)
{
	int is_member = kind == 'p' || kind == 'a' || kind == 'b';
	const char *key = kind == 'p' ? "persons" : kind == 'a' ? "apartments" : "buildings";
	char k[2] = { kind == 'D' ? 'd' : kind == 'B' ? 'b' : kind, 0 };
	sqlite3_stmt *s = store_stmt(st, is_member ? "SELECT DISTINCT grp FROM group_members WHERE mkind = ?1 AND member = ?2"
						   : "SELECT DISTINCT grp FROM group_relays WHERE tkind = ?1 AND tid = ?2 "
						     "AND (?3 = 0 OR tn = ?3)");
	if (!s)
		return -1;
	sqlite3_bind_text(s, 1, k, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 2, id, -1, SQLITE_STATIC);
	if (!is_member)
		sqlite3_bind_int(s, 3, relay);
	json_t *groups = json_array();
	while (sqlite3_step(s) == SQLITE_ROW)
		json_array_append_new(groups, json_string((const char *)sqlite3_column_text(s, 0)));
	sqlite3_reset(s);
	size_t i;
	json_t *g;
	int rc = 0;
	json_array_foreach(groups, i, g) {
		sqlite3_stmt *r = store_stmt(st, "SELECT data FROM access_groups WHERE id = ?");
		if (!r) {
			rc = -1;
			break;
		}
		sqlite3_bind_text(r, 1, json_string_value(g), -1, SQLITE_STATIC);
		json_t *d = sqlite3_step(r) == SQLITE_ROW
				    ? json_loads((const char *)sqlite3_column_text(r, 0), 0, NULL)
				    : NULL;
		sqlite3_reset(r);
		if (!d)
			continue;
		json_t *list = is_member ? json_object_get(json_object_get(d, "members"), key)
					 : json_object_get(d, "relays");
		for (size_t j = json_array_size(list); j-- > 0;) {
			json_t *x = json_array_get(list, j);
			const char *v = is_member ? json_string_value(x)
				      : json_string_value(json_object_get(x, kind == 'D' ? "device" : "board"));
			json_int_t n = json_integer_value(json_object_get(x, kind == 'D' ? "relay" : "channel"));
			if (v && !strcmp(v, id) && (is_member || relay == 0 || n == relay))
				json_array_remove(list, j);
		}
		char *txt = jdump(d);
		json_decref(d);
		sqlite3_stmt *u = store_stmt(st, "UPDATE access_groups SET data = ?, lrev = ? WHERE id = ?");
		if (!u) {
			free(txt);
			rc = -1;
			break;
		}
		sqlite3_bind_text(u, 1, txt, -1, free);
		sqlite3_bind_int64(u, 2, lrev);
		sqlite3_bind_text(u, 3, json_string_value(g), -1, SQLITE_STATIC);
		if ((rc = run(st, u)))
			break;
	}
	json_decref(groups);
	if (rc)
		return -1;
	s = store_stmt(st, is_member ? "DELETE FROM group_members WHERE mkind = ?1 AND member = ?2"
				     : "DELETE FROM group_relays WHERE tkind = ?1 AND tid = ?2 AND (?3 = 0 OR tn = ?3)");
	if (!s)
		return -1;
	sqlite3_bind_text(s, 1, k, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 2, id, -1, SQLITE_STATIC);
	if (!is_member)
		sqlite3_bind_int(s, 3, relay);
	return run(st, s);
}

/* the ids a cascade will remove along with (E, ID), as (kind, id) pairs */
static int forget_cascade(store_t *st, ent_t e, const char *id, int64_t lrev)
{
	static const char *const q_apt_persons = "SELECT id FROM persons WHERE apartment = ?";
	static const char *const q_bld_apts = "SELECT id FROM apartments WHERE building = ?";
	static const char *const q_bld_persons =
	    "SELECT p.id FROM persons p JOIN apartments a ON a.id = p.apartment WHERE a.building = ?";
	struct step {
		const char *sql;
		char kind;
	} steps[2];
	int n = 0;
	if (e == ENT_APARTMENT)
		steps[n++] = (struct step){ q_apt_persons, 'p' };
	if (e == ENT_BUILDING) {
		steps[n++] = (struct step){ q_bld_apts, 'a' };
		steps[n++] = (struct step){ q_bld_persons, 'p' };
	}
	for (int k = 0; k < n; k++) {
		sqlite3_stmt *s = store_stmt(st, steps[k].sql);
		if (!s)
			return -1;
		sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
		json_t *ids = json_array();
		while (sqlite3_step(s) == SQLITE_ROW)
			json_array_append_new(ids, json_string((const char *)sqlite3_column_text(s, 0)));
		sqlite3_reset(s);
		size_t i;
		json_t *x;
		int rc = 0;
		json_array_foreach(ids, i, x) if ((rc = forget_in_groups(st, steps[k].kind, json_string_value(x), lrev, 0))) break;
		json_decref(ids);
		if (rc)
			return -1;
	}
	return 0;
}

int rows_delete_extra(store_t *st, ent_t e, const char *id, int64_t lrev)
{
	static const char *const q[] = {
		"DELETE FROM temp_key_devices WHERE device = ?",
		"DELETE FROM temp_key_relays WHERE tkind = 'd' AND tid = ?",
		"DELETE FROM temp_key_relays WHERE tkind = 'b' AND tid = ?",
		"UPDATE device_relays SET schedule = NULL WHERE schedule = ?",
		"UPDATE device_relays SET board = NULL, channel = NULL WHERE board = ?",
	};
	int list[3] = { -1, -1, -1 };
	int rc = 0;
	switch (e) {
	case ENT_PERSON: rc = forget_in_groups(st, 'p', id, lrev, 0); break;
	case ENT_APARTMENT: rc = forget_cascade(st, e, id, lrev) || forget_in_groups(st, 'a', id, lrev, 0); break;
	case ENT_BUILDING: rc = forget_cascade(st, e, id, lrev) || forget_in_groups(st, 'b', id, lrev, 0); break;
	case ENT_DEVICE: rc = forget_in_groups(st, 'D', id, lrev, 0); list[0] = 0; list[1] = 1; break;
	case ENT_RELAY_BOARD: rc = forget_in_groups(st, 'B', id, lrev, 0); list[0] = 2; list[1] = 4; break;
	case ENT_ACCESS_GROUP: list[0] = 3; break;
	default: return 0;
	}
	if (rc)
		return -1;
	for (int i = 0; i < 3 && list[i] >= 0; i++) {
		sqlite3_stmt *s = store_stmt(st, q[list[i]]);
		if (!s)
			return -1;
		sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
		if (run(st, s))
			return -1;
	}
	return 0;
}
