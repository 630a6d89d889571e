/* The site store and the generic entity operations: migrations, the JSON
 * round trip, cascading deletes with tombstones, audit and journal of local
 * edits, apartment reset, listing, nested transactions. */
#include <stdarg.h>

#include "bulk.h"
#include "testutil.h"

/* ---- helpers ---- */

/* a failed assertion skips the end of a test: remove its temp dir anyway */
static void suite_fini(void) { tu_rmdir(); }
TestSuite(store, .fini = suite_fini);

/* JSON with ' for " so the literals stay readable. */
static const char *q(const char *s)
{
	static char buf[8][4096];
	static unsigned k;
	char *b = buf[k++ % 8];
	size_t i;
	cr_assert_lt(strlen(s), sizeof buf[0], "fixture too long");
	for (i = 0; s[i]; i++)
		b[i] = s[i] == '\'' ? '"' : s[i];
	b[i] = '\0';
	return b;
}

static json_t *get(store_t *st, ent_t e, const char *id)
{
	json_t *o = NULL;
	gh_err_t err = { 0 };
	cr_assert_eq(ent_get(st, e, id, &o, &err), 0, "get %s %s: %s", ent_name(e), id, err.message);
	return o;
}

static int exists(store_t *st, ent_t e, const char *id)
{
	json_t *o = NULL;
	gh_err_t err = { 0 };
	if (ent_get(st, e, id, &o, &err) == 0) {
		json_decref(o);
		return 1;
	}
	cr_assert_eq(err.status, 404, "get %s %s: %d %s", ent_name(e), id, err.status, err.message);
	return 0;
}

static void del(store_t *st, ent_t e, const char *id, const ent_ctx_t *ctx)
{
	gh_err_t err = { 0 };
	cr_assert_eq(ent_delete(st, e, id, ctx, &err), 0, "delete %s %s: %s", ent_name(e), id, err.message);
}

static void put_ctx(store_t *st, ent_t e, const char *text, const ent_ctx_t *ctx)
{
	gh_err_t err = { 0 };
	json_t *j = tu_json(text);
	cr_assert_eq(ent_put(st, e, NULL, j, ctx, NULL, &err), 0, "put %s %s: %s (%s)", ent_name(e), text,
		     err.message, err.field);
	json_decref(j);
}

static const char *js(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "(not a string)";
}

/* First column of the first row of SQL (one optional text parameter per
 * extra argument, NULL-terminated). */
static int64_t sql_int(store_t *st, const char *sql, ...)
{
	sqlite3_stmt *s = NULL;
	cr_assert_eq(sqlite3_prepare_v2(store_db(st), sql, -1, &s, NULL), SQLITE_OK, "%s: %s", sql,
		     sqlite3_errmsg(store_db(st)));
	va_list ap;
	va_start(ap, sql);
	const char *arg;
	for (int i = 1; (arg = va_arg(ap, const char *)) != NULL; i++)
		sqlite3_bind_text(s, i, arg, -1, SQLITE_TRANSIENT);
	va_end(ap);
	cr_assert_eq(sqlite3_step(s), SQLITE_ROW, "%s: no row", sql);
	int64_t v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return v;
}

static void sql_exec(store_t *st, const char *sql)
{
	char *msg = NULL;
	cr_assert_eq(sqlite3_exec(store_db(st), sql, NULL, NULL, &msg), SQLITE_OK, "%s: %s", sql,
		     msg ? msg : "?");
}

static int64_t tomb(store_t *st, const char *entity, const char *id)
{
	return sql_int(st, "SELECT count(*) FROM tombstones WHERE entity = ? AND id = ?", entity, id,
		       (const char *)NULL);
}

/* A path for a new database in its own temp dir, without opening it. */
static const char *fresh_path(void)
{
	gh_log_set_level(GH_LOG_ERR);
	return tu_db_path();
}

/* Community fixture: b1 (a101 apt 101, a102 apt 102), b2 (a201 apt 101),
 * residents p101 / p102 with a PIN and an RF card each. */
static store_t *site(void)
{
	store_t *st = tu_store();
	tu_put(st, ENT_BUILDING, q("{'id':'b1','name':'Tower A'}"));
	tu_put(st, ENT_BUILDING, q("{'id':'b2','name':'Tower B'}"));
	tu_put(st, ENT_APARTMENT, q("{'id':'a101','building':'b1','apt':'101','floor':'1'}"));
	tu_put(st, ENT_APARTMENT, q("{'id':'a102','building':'b1','apt':'102','floor':'1'}"));
	tu_put(st, ENT_APARTMENT, q("{'id':'a201','building':'b2','apt':'101','floor':'1'}"));
	tu_put(st, ENT_PERSON, q("{'id':'p101','kind':'resident','apartment':'a101','first_name':'Anna',"
				 "'last_name':'Berger'}"));
	tu_put(st, ENT_PERSON, q("{'id':'p102','kind':'resident','apartment':'a102','first_name':'Ben',"
				 "'last_name':'Huber'}"));
	tu_put(st, ENT_CREDENTIAL, q("{'id':'c101pin','person':'p101','type':'pin','code':'1111'}"));
	tu_put(st, ENT_CREDENTIAL, q("{'id':'c101rf','person':'p101','type':'rf','code':'RF101'}"));
	tu_put(st, ENT_CREDENTIAL, q("{'id':'c102pin','person':'p102','type':'pin','code':'2222'}"));
	tu_put(st, ENT_CREDENTIAL, q("{'id':'c102rf','person':'p102','type':'rf','code':'RF102'}"));
	tu_put(st, ENT_MAC, q("{'id':'0C11050B9814'}"));
	tu_put(st, ENT_DEVICE, q("{'id':'0C11050B9814','type':0,'name':'Lobby door','relays':[{'n':1}]}"));
	return st;
}

/* ---- (a) a new database ---- */

Test(store, migrate_from_empty)
{
	gh_err_t err = { 0 };
	const char *path = fresh_path();
	store_t *st = store_open(path, &err);
	cr_assert_not_null(st, "%s", err.message);
	cr_assert_gt(store_schema_latest(), 0);
	cr_assert_eq(store_schema_version(st), store_schema_latest());
	sqlite3_stmt *s = NULL;
	cr_assert_eq(sqlite3_prepare_v2(store_db(st), "PRAGMA journal_mode", -1, &s, NULL), SQLITE_OK);
	cr_assert_eq(sqlite3_step(s), SQLITE_ROW);
	cr_assert_str_eq((const char *)sqlite3_column_text(s, 0), "wal");
	sqlite3_finalize(s);
	cr_assert_eq(sql_int(st, "PRAGMA foreign_keys", (const char *)NULL), 1);
	/* every table of the schema is there */
	const char *tables[] = { "settings", "macs", "buildings", "apartments", "persons", "devices",
				 "device_relays", "relay_boards", "board_channels", "access_groups",
				 "group_relays", "group_members", "temp_keys", "temp_key_relays",
				 "temp_key_devices", "credentials", "parking_lots", "tombstones",
				 "door_logs", "call_logs", "alarm_logs", "detection_logs", "audit_logs",
				 "messages", "device_events", "outbox", "local_changes", "conflicts",
				 "commands", "sync_state", "users" };
	for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++)
		cr_assert_eq(sql_int(st, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?",
				     tables[i], (const char *)NULL),
			     1, "table %s missing", tables[i]);
	store_close(st);
	/* reopening a current database changes nothing */
	st = store_open(path, &err);
	cr_assert_not_null(st, "%s", err.message);
	cr_assert_eq(store_schema_version(st), store_schema_latest());
	cr_assert_eq(sql_int(st, "PRAGMA foreign_keys", (const char *)NULL), 1);
	store_close(st);
	tu_rmdir();
}

/* ---- (b) from every earlier version ---- */

Test(store, migrate_from_every_version)
{
	gh_err_t err = { 0 };
	const char *first = fresh_path();
	char dir[300];
	snprintf(dir, sizeof dir, "%s", first);
	*strrchr(dir, '/') = '\0';
	int latest = store_schema_latest();
	for (int v = 0; v < latest; v++) {
		char path[340];
		snprintf(path, sizeof path, "%s/v%d.db", dir, v);
		store_t *st = store_open_version(path, v, &err);
		cr_assert_not_null(st, "open at v%d: %s", v, err.message);
		cr_assert_eq(store_schema_version(st), v);
		if (v >= 1) /* data written by an older version survives */
			sql_exec(st, "INSERT INTO buildings(id, name, data, updated_at) VALUES "
				     "('old', 'Old tower', '{\"name\":\"Old tower\",\"x_legacy\":1}', 1)");
		store_close(st);

		st = store_open(path, &err);
		cr_assert_not_null(st, "migrate from v%d: %s", v, err.message);
		cr_assert_eq(store_schema_version(st), latest, "from v%d", v);
		cr_assert_eq(sql_int(st, "PRAGMA foreign_keys", (const char *)NULL), 1);
		tu_put(st, ENT_BUILDING, q("{'id':'b1','name':'Tower A'}"));
		tu_put(st, ENT_APARTMENT, q("{'id':'a101','building':'b1','apt':'101'}"));
		json_t *a = get(st, ENT_APARTMENT, "a101");
		cr_assert_str_eq(js(a, "apt"), "101");
		json_decref(a);
		if (v >= 1) {
			json_t *b = get(st, ENT_BUILDING, "old");
			cr_assert_str_eq(js(b, "name"), "Old tower");
			json_decref(b);
			tu_put(st, ENT_APARTMENT, q("{'id':'o1','building':'old','apt':'1'}"));
		}
		/* the sync tables of the newest migration work too */
		cr_assert_eq(store_kv_set(st, "rev", "12"), 0);
		store_close(st);

		/* and a further open is a no-op */
		st = store_open(path, &err);
		cr_assert_not_null(st, "%s", err.message);
		cr_assert_eq(ent_count(st, ENT_APARTMENT), v >= 1 ? 2 : 1);
		char buf[16];
		cr_assert_eq(store_kv_get(st, "rev", buf, sizeof buf), 0);
		cr_assert_str_eq(buf, "12");
		store_close(st);
	}
	tu_rmdir();
}

/* ---- (c) a database from a newer gatehoused ---- */

Test(store, newer_schema_refused)
{
	gh_err_t err = { 0 };
	const char *path = fresh_path();
	store_t *st = store_open(path, &err);
	cr_assert_not_null(st, "%s", err.message);
	tu_put(st, ENT_BUILDING, q("{'id':'b1','name':'Tower A'}"));
	char pragma[64];
	snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", store_schema_latest() + 1);
	sql_exec(st, pragma);
	store_close(st);

	gh_err_clear(&err);
	st = store_open(path, &err);
	cr_assert_null(st, "a newer schema was opened");
	cr_assert_eq(err.status, 500);
	cr_assert_not_null(strstr(err.message, "newer"), "message: %s", err.message);
	char want[16];
	snprintf(want, sizeof want, "%d", store_schema_latest() + 1);
	cr_assert_not_null(strstr(err.message, want), "message names the version: %s", err.message);
	gh_err_clear(&err);
	cr_assert_null(store_open_version(path, 1, &err));
	cr_assert_not_null(strstr(err.message, "newer"), "message: %s", err.message);

	/* the file is left as it was */
	sqlite3 *db = NULL;
	cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_stmt *s = NULL;
	cr_assert_eq(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL), SQLITE_OK);
	cr_assert_eq(sqlite3_step(s), SQLITE_ROW);
	cr_assert_eq(sqlite3_column_int(s, 0), store_schema_latest() + 1);
	sqlite3_finalize(s);
	cr_assert_eq(sqlite3_prepare_v2(db, "SELECT count(*) FROM buildings", -1, &s, NULL), SQLITE_OK);
	cr_assert_eq(sqlite3_step(s), SQLITE_ROW);
	cr_assert_eq(sqlite3_column_int(s, 0), 1);
	sqlite3_finalize(s);
	sqlite3_close(db);
	tu_rmdir();
}

/* ---- (d) JSON round trip ---- */

Test(store, json_round_trip)
{
	store_t *st = site();
	const char *text = q("{'id':'p103','kind':'resident','apartment':'a101','first_name':'J\\u00fcrgen',"
			     "'last_name':'M\\u00fcller','email':'jm@example.com','mobile':'+43 660 1234567',"
			     "'country_code':'+43','landlines':['+43 1 5550100'],'floors':['3','G0'],"
			     "'remark':'tenant','active':false,'expires_at':'2026-03-29T02:30:00Z',"
			     "'app_account':'sip:p103@example.com',"
			     "'x_vendor':{'badge':'B-7','tags':['night',2,null,true]},'x_score':3.5}");
	json_t *in = tu_json(text), *out = NULL;
	gh_err_t err = { 0 };
	cr_assert_eq(ent_put(st, ENT_PERSON, NULL, in, NULL, &out, &err), 0, "%s", err.message);
	json_t *got = get(st, ENT_PERSON, "p103");
	cr_assert(json_equal(out, got), "put's result and get differ:\n%s\n%s",
		  json_dumps(out, JSON_SORT_KEYS), json_dumps(got, JSON_SORT_KEYS));
	/* every field given comes back as given, except the time */
	const char *key;
	json_t *v;
	json_object_foreach(in, key, v) {
		if (!strcmp(key, "expires_at"))
			continue;
		cr_assert(json_equal(v, json_object_get(got, key)), "field %s changed", key);
	}
	cr_assert(json_is_integer(json_object_get(got, "expires_at")));
	cr_assert_eq(json_integer_value(json_object_get(got, "expires_at")), 1774751400);
	json_decref(in);
	json_decref(out);
	json_decref(got);

	/* offsets and plain Unix seconds */
	tu_put(st, ENT_APARTMENT, q("{'id':'a103','building':'b1','apt':'103','valid_from':"
				    "'2026-03-29T04:30:00+02:00','valid_until':1800000000}"));
	json_t *a = get(st, ENT_APARTMENT, "a103");
	cr_assert_eq(json_integer_value(json_object_get(a, "valid_from")), 1774751400);
	cr_assert_eq(json_integer_value(json_object_get(a, "valid_until")), 1800000000);
	json_decref(a);
	tu_put(st, ENT_TEMP_KEY, q("{'id':'k1','code':'3456','devices':['0C11050B9814'],'schedule':"
				   "{'start':'2026-03-29T02:30:00Z','end':'2026-03-30T02:30:00Z'}}"));
	json_t *k = get(st, ENT_TEMP_KEY, "k1");
	json_t *sc = json_object_get(k, "schedule");
	cr_assert_eq(json_integer_value(json_object_get(sc, "start")), 1774751400);
	cr_assert_eq(json_integer_value(json_object_get(sc, "end")), 1774751400 + 86400);
	cr_assert_str_eq(js(sc, "repeat"), "never");
	json_decref(k);
	/* an update replaces the representation: dropped unknown fields go */
	tu_put(st, ENT_PERSON, q("{'id':'p103','kind':'resident','apartment':'a101','first_name':'J'}"));
	got = get(st, ENT_PERSON, "p103");
	cr_assert_null(json_object_get(got, "x_vendor"));
	cr_assert(json_is_null(json_object_get(got, "expires_at")));
	json_decref(got);
	store_close(st);
	tu_rmdir();
}

Test(store, unknown_fields_in_list_and_nested)
{
	store_t *st = site();
	tu_put(st, ENT_DEVICE, q("{'id':'0C11050B9814','type':0,'name':'Lobby door','x_fw':'1.2.3',"
				 "'relays':[{'n':1,'x_wiring':'NO'}]}"));
	json_t *list = NULL;
	gh_err_t err = { 0 };
	cr_assert_eq(ent_list(st, ENT_DEVICE, NULL, 10, &list, &err), 0, "%s", err.message);
	cr_assert_eq(json_array_size(list), 1);
	json_t *d = json_array_get(list, 0);
	cr_assert_str_eq(js(d, "id"), "0C11050B9814");
	cr_assert_str_eq(js(d, "x_fw"), "1.2.3");
	cr_assert_str_eq(js(json_array_get(json_object_get(d, "relays"), 0), "x_wiring"), "NO");
	json_decref(list);
	store_close(st);
	tu_rmdir();
}

/* ---- (e) cascading deletes and tombstones ---- */

Test(store, delete_person_cascades_credentials)
{
	store_t *st = site();
	int64_t creds = ent_count(st, ENT_CREDENTIAL);
	del(st, ENT_PERSON, "p101", NULL);
	cr_assert_not(exists(st, ENT_PERSON, "p101"));
	cr_assert_not(exists(st, ENT_CREDENTIAL, "c101pin"));
	cr_assert_not(exists(st, ENT_CREDENTIAL, "c101rf"));
	cr_assert_eq(ent_count(st, ENT_CREDENTIAL), creds - 2);
	cr_assert(exists(st, ENT_CREDENTIAL, "c102pin"));
	cr_assert_eq(tomb(st, "person", "p101"), 1);
	cr_assert_eq(tomb(st, "credential", "c101pin"), 1);
	cr_assert_eq(tomb(st, "credential", "c101rf"), 1);
	cr_assert_eq(tomb(st, "credential", "c102pin"), 0);
	/* the tombstones carry the delete's local revision */
	cr_assert_eq(sql_int(st, "SELECT lrev FROM tombstones WHERE entity = 'person' AND id = 'p101'",
			     (const char *)NULL),
		     store_lrev(st));
	/* the PIN is free again */
	tu_put(st, ENT_CREDENTIAL, q("{'id':'c102pin2','person':'p102','type':'pin','code':'1111'}"));
	/* a second delete is a 404 */
	gh_err_t err = { 0 };
	cr_assert_eq(ent_delete(st, ENT_PERSON, "p101", NULL, &err), -1);
	cr_assert_eq(err.status, 404);
	store_close(st);
	tu_rmdir();
}

Test(store, delete_apartment_cascades_persons)
{
	store_t *st = site();
	tu_put(st, ENT_PERSON, q("{'id':'f101','kind':'family','apartment':'a101','first_name':'Lea'}"));
	tu_put(st, ENT_CREDENTIAL, q("{'id':'f101qr','person':'f101','type':'qr','code':'QR-F101'}"));
	tu_put(st, ENT_TEMP_KEY, q("{'id':'k101','apartment':'a101','code':'5151','devices':['0C11050B9814'],"
				   "'schedule':{'end':'2099-01-01T00:00:00Z'}}"));
	tu_put(st, ENT_ACCESS_GROUP, q("{'id':'g1','name':'Residents','members':{'persons':['p101','p102'],"
				       "'apartments':['a101','a102']}}"));
	del(st, ENT_APARTMENT, "a101", NULL);
	cr_assert_not(exists(st, ENT_APARTMENT, "a101"));
	cr_assert_not(exists(st, ENT_PERSON, "p101"));
	cr_assert_not(exists(st, ENT_PERSON, "f101"));
	cr_assert_not(exists(st, ENT_CREDENTIAL, "c101pin"));
	cr_assert_not(exists(st, ENT_CREDENTIAL, "c101rf"));
	cr_assert_not(exists(st, ENT_CREDENTIAL, "f101qr"));
	cr_assert_not(exists(st, ENT_TEMP_KEY, "k101"));
	cr_assert(exists(st, ENT_PERSON, "p102"));
	cr_assert(exists(st, ENT_CREDENTIAL, "c102rf"));
	const char *gone[][2] = { { "apartment", "a101" }, { "person", "p101" }, { "person", "f101" },
				  { "credential", "c101pin" }, { "credential", "c101rf" },
				  { "credential", "f101qr" }, { "temp_key", "k101" } };
	for (size_t i = 0; i < sizeof gone / sizeof gone[0]; i++)
		cr_assert_eq(tomb(st, gone[i][0], gone[i][1]), 1, "no tombstone for %s %s", gone[i][0],
			     gone[i][1]);
	cr_assert_eq(tomb(st, "person", "p102"), 0);
	/* the group no longer lists the apartment or its residents */
	cr_assert_eq(sql_int(st, "SELECT count(*) FROM group_members WHERE member IN ('a101', 'p101')",
			     (const char *)NULL),
		     0);
	cr_assert_eq(sql_int(st, "SELECT count(*) FROM group_members WHERE member IN ('a102', 'p102')",
			     (const char *)NULL),
		     2);
	store_close(st);
	tu_rmdir();
}

Test(store, delete_apartment_tombstones_temp_key_credentials)
{
	store_t *st = site();
	tu_put(st, ENT_TEMP_KEY, q("{'id':'k101','apartment':'a101','qr':'QR-K101','devices':['0C11050B9814'],"
				   "'schedule':{'end':'2099-01-01T00:00:00Z'}}"));
	tu_put(st, ENT_CREDENTIAL, q("{'id':'k101rf','temp_key':'k101','type':'rf','code':'VISITOR1'}"));
	del(st, ENT_APARTMENT, "a101", NULL);
	cr_assert_not(exists(st, ENT_CREDENTIAL, "k101rf"));
	cr_assert_eq(tomb(st, "temp_key", "k101"), 1);
	cr_assert_eq(tomb(st, "credential", "k101rf"), 1, "the temp key's card vanished without a tombstone");
	store_close(st);
	tu_rmdir();
}

Test(store, delete_building_cascades_apartments)
{
	store_t *st = site();
	tu_put(st, ENT_ACCESS_GROUP, q("{'id':'g1','name':'Tower A default','building':'b1'}"));
	del(st, ENT_BUILDING, "b1", NULL);
	cr_assert_not(exists(st, ENT_BUILDING, "b1"));
	cr_assert_not(exists(st, ENT_APARTMENT, "a101"));
	cr_assert_not(exists(st, ENT_APARTMENT, "a102"));
	cr_assert_not(exists(st, ENT_PERSON, "p101"));
	cr_assert_not(exists(st, ENT_CREDENTIAL, "c102rf"));
	cr_assert_not(exists(st, ENT_ACCESS_GROUP, "g1"));
	cr_assert(exists(st, ENT_APARTMENT, "a201"));
	cr_assert(exists(st, ENT_BUILDING, "b2"));
	const char *gone[][2] = { { "building", "b1" }, { "apartment", "a101" }, { "apartment", "a102" },
				  { "person", "p101" }, { "person", "p102" }, { "credential", "c101pin" },
				  { "credential", "c102rf" }, { "access_group", "g1" } };
	for (size_t i = 0; i < sizeof gone / sizeof gone[0]; i++)
		cr_assert_eq(tomb(st, gone[i][0], gone[i][1]), 1, "no tombstone for %s %s", gone[i][0],
			     gone[i][1]);
	cr_assert_eq(tomb(st, "apartment", "a201"), 0);
	store_close(st);
	tu_rmdir();
}

/* The temp keys of the building's apartments go with them (FK cascade), so
 * they need tombstones too, as on an apartment delete. */
Test(store, delete_building_tombstones_apartment_temp_keys)
{
	store_t *st = site();
	tu_put(st, ENT_TEMP_KEY, q("{'id':'k101','apartment':'a101','code':'5151','devices':['0C11050B9814'],"
				   "'schedule':{'end':'2099-01-01T00:00:00Z'}}"));
	del(st, ENT_BUILDING, "b1", NULL);
	cr_assert_not(exists(st, ENT_TEMP_KEY, "k101"));
	cr_assert_eq(tomb(st, "temp_key", "k101"), 1, "temp key k101 vanished without a tombstone");
	store_close(st);
	tu_rmdir();
}

/* Access-group membership of the building's apartments and residents is
 * removed with them, as on an apartment delete. */
Test(store, delete_building_cleans_group_members)
{
	store_t *st = site();
	tu_put(st, ENT_ACCESS_GROUP, q("{'id':'g1','name':'Residents','members':{'persons':['p101'],"
				       "'apartments':['a101'],'buildings':['b1','b2']}}"));
	del(st, ENT_BUILDING, "b1", NULL);
	cr_assert_eq(sql_int(st, "SELECT count(*) FROM group_members WHERE member IN ('b1', 'a101', 'p101')",
			     (const char *)NULL),
		     0);
	cr_assert_eq(sql_int(st, "SELECT count(*) FROM group_members WHERE member = 'b2'", (const char *)NULL), 1);
	/* and the group's own representation agrees */
	json_t *g = get(st, ENT_ACCESS_GROUP, "g1");
	json_t *m = json_object_get(g, "members");
	cr_assert_eq(json_array_size(json_object_get(m, "persons")), 0);
	cr_assert_eq(json_array_size(json_object_get(m, "apartments")), 0);
	cr_assert_eq(json_array_size(json_object_get(m, "buildings")), 1);
	cr_assert_str_eq(json_string_value(json_array_get(json_object_get(m, "buildings"), 0)), "b2");
	json_decref(g);
	/* it can be stored again as it is */
	tu_put(st, ENT_ACCESS_GROUP, q("{'id':'g1','name':'Residents','members':{'buildings':['b2']}}"));
	store_close(st);
	tu_rmdir();
}

Test(store, delete_device_and_board_clean_derived_rows)
{
	store_t *st = site();
	tu_put(st, ENT_RELAY_BOARD, q("{'id':'rb1','profile':'MK485-G2R-8J8C','bus':'/dev/ttyUSB0',"
				      "'channels':[{'channel':1},{'channel':2}]}"));
	tu_put(st, ENT_ACCESS_GROUP, q("{'id':'g1','name':'Doors','relays':[{'device':'0C11050B9814','relay':1},"
				       "{'board':'rb1','channel':2}]}"));
	cr_assert_eq(sql_int(st, "SELECT count(*) FROM group_relays WHERE grp = 'g1'", (const char *)NULL), 2);
	del(st, ENT_DEVICE, "0C11050B9814", NULL);
	cr_assert_eq(sql_int(st, "SELECT count(*) FROM device_relays", (const char *)NULL), 0);
	cr_assert_eq(sql_int(st, "SELECT count(*) FROM group_relays WHERE grp = 'g1'", (const char *)NULL), 1);
	cr_assert_eq(tomb(st, "device", "0C11050B9814"), 1);
	del(st, ENT_RELAY_BOARD, "rb1", NULL);
	cr_assert_eq(sql_int(st, "SELECT count(*) FROM board_channels", (const char *)NULL), 0);
	cr_assert_eq(sql_int(st, "SELECT count(*) FROM group_relays", (const char *)NULL), 0);
	/* the MAC is free to go now */
	del(st, ENT_MAC, "0C11050B9814", NULL);
	gh_err_t err = { 0 };
	cr_assert_eq(ent_delete(st, ENT_SETTINGS, "site", NULL, &err), -1);
	cr_assert_eq(err.status, 422);
	store_close(st);
	tu_rmdir();
}

/* ---- (f) audit and journal of local edits ---- */

Test(store, local_edits_audited_and_journaled)
{
	store_t *st = site();
	ent_ctx_t local = { .local = 1, .actor = "tester" };
	int64_t audits = sql_int(st, "SELECT count(*) FROM audit_logs", (const char *)NULL);
	int64_t changes = sql_int(st, "SELECT count(*) FROM local_changes", (const char *)NULL);
	cr_assert_eq(audits, 0, "fixture puts are not local");
	cr_assert_eq(changes, 0);

	put_ctx(st, ENT_BUILDING, q("{'id':'b3','name':'Tower C'}"), &local);
	put_ctx(st, ENT_BUILDING, q("{'id':'b3','name':'Tower C (north)'}"), &local);
	del(st, ENT_BUILDING, "b3", &local);
	/* a failed local edit leaves no trace */
	gh_err_t err = { 0 };
	json_t *bad = tu_json(q("{'id':'b4'}"));
	cr_assert_eq(ent_put(st, ENT_BUILDING, NULL, bad, &local, NULL, &err), -1);
	json_decref(bad);

	sqlite3_stmt *s = NULL;
	cr_assert_eq(sqlite3_prepare_v2(store_db(st), "SELECT actor, action, entity, eid, before, after "
						      "FROM audit_logs ORDER BY id",
					-1, &s, NULL),
		     SQLITE_OK);
	const char *actions[] = { "create", "update", "delete" };
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(sqlite3_step(s), SQLITE_ROW, "audit row %d missing", i);
		cr_assert_str_eq((const char *)sqlite3_column_text(s, 0), "tester");
		cr_assert_str_eq((const char *)sqlite3_column_text(s, 1), actions[i]);
		cr_assert_str_eq((const char *)sqlite3_column_text(s, 2), "building");
		cr_assert_str_eq((const char *)sqlite3_column_text(s, 3), "b3");
		const char *before = (const char *)sqlite3_column_text(s, 4);
		const char *after = (const char *)sqlite3_column_text(s, 5);
		if (i == 0) {
			cr_assert_null(before);
		} else {
			cr_assert_not_null(before);
			json_t *b = tu_json(before);
			cr_assert_str_eq(js(b, "name"), i == 1 ? "Tower C" : "Tower C (north)");
			json_decref(b);
		}
		if (i == 2) {
			cr_assert_null(after);
		} else {
			cr_assert_not_null(after);
			json_t *a = tu_json(after);
			cr_assert_str_eq(js(a, "name"), i == 0 ? "Tower C" : "Tower C (north)");
			json_decref(a);
		}
	}
	cr_assert_eq(sqlite3_step(s), SQLITE_DONE, "more audit rows than edits");
	sqlite3_finalize(s);

	cr_assert_eq(sqlite3_prepare_v2(store_db(st), "SELECT op, entity, eid, data, actor, change_id, state "
						      "FROM local_changes ORDER BY seq",
					-1, &s, NULL),
		     SQLITE_OK);
	const char *ops[] = { "upsert", "upsert", "delete" };
	char ids[3][64];
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(sqlite3_step(s), SQLITE_ROW, "journal row %d missing", i);
		cr_assert_str_eq((const char *)sqlite3_column_text(s, 0), ops[i]);
		cr_assert_str_eq((const char *)sqlite3_column_text(s, 1), "building");
		cr_assert_str_eq((const char *)sqlite3_column_text(s, 2), "b3");
		if (i < 2) {
			json_t *d = tu_json((const char *)sqlite3_column_text(s, 3));
			cr_assert_str_eq(js(d, "name"), i == 0 ? "Tower C" : "Tower C (north)");
			json_decref(d);
		} else {
			cr_assert_eq(sqlite3_column_type(s, 3), SQLITE_NULL);
		}
		cr_assert_str_eq((const char *)sqlite3_column_text(s, 4), "tester");
		snprintf(ids[i], sizeof ids[i], "%s", (const char *)sqlite3_column_text(s, 5));
		cr_assert_neq(ids[i][0], '\0');
		cr_assert_str_eq((const char *)sqlite3_column_text(s, 6), "pending");
	}
	cr_assert_eq(sqlite3_step(s), SQLITE_DONE, "more journal rows than edits");
	sqlite3_finalize(s);
	cr_assert_str_neq(ids[0], ids[1]);
	cr_assert_str_neq(ids[1], ids[2]);
	/* local rows are marked as such */
	put_ctx(st, ENT_BUILDING, q("{'id':'b5','name':'Tower E'}"), &local);
	cr_assert_eq(sql_int(st, "SELECT origin = 'local' FROM buildings WHERE id = 'b5'", (const char *)NULL), 1);
	store_close(st);
	tu_rmdir();
}

Test(store, cloud_edits_not_journaled)
{
	store_t *st = site();
	ent_ctx_t cloud = { .local = 0, .actor = "cloud", .rev = 42 };
	put_ctx(st, ENT_BUILDING, q("{'id':'b3','name':'Tower C'}"), &cloud);
	put_ctx(st, ENT_APARTMENT, q("{'id':'a301','building':'b3','apt':'301'}"), &cloud);
	del(st, ENT_APARTMENT, "a301", &cloud);
	cr_assert_eq(sql_int(st, "SELECT count(*) FROM audit_logs", (const char *)NULL), 0);
	cr_assert_eq(sql_int(st, "SELECT count(*) FROM local_changes", (const char *)NULL), 0);
	cr_assert_eq(sql_int(st, "SELECT rev FROM buildings WHERE id = 'b3'", (const char *)NULL), 42);
	cr_assert_eq(sql_int(st, "SELECT origin = 'cloud' FROM buildings WHERE id = 'b3'", (const char *)NULL), 1);
	/* a local edit of a cloud row is journaled against the cloud revision */
	ent_ctx_t local = { .local = 1, .actor = "tester" };
	put_ctx(st, ENT_BUILDING, q("{'id':'b3','name':'Tower C2'}"), &local);
	cr_assert_eq(sql_int(st, "SELECT base_rev FROM local_changes WHERE eid = 'b3'", (const char *)NULL), 42);
	cr_assert_eq(sql_int(st, "SELECT count(*) FROM audit_logs WHERE eid = 'b3' AND action = 'update'",
			     (const char *)NULL),
		     1);
	store_close(st);
	tu_rmdir();
}

/* ---- (g) apartment reset ---- */

static store_t *reset_site(void)
{
	store_t *st = site();
	ent_ctx_t local = { .local = 1, .actor = "pm" };
	tu_put(st, ENT_APARTMENT, q("{'id':'a101','building':'b1','apt':'101','floor':'1','call_type':3,"
				    "'call_mode':'sip'}"));
	put_ctx(st, ENT_PERSON, q("{'id':'p101','kind':'resident','apartment':'a101','first_name':'Anna',"
				  "'last_name':'Berger','email':'anna@example.com','mobile':'+43 660 1111111',"
				  "'country_code':'+43','landlines':['+43 1 5550101','+43 1 5550102'],"
				  "'app_account':'sip:anna@example.com','active':false,'expires_at':1900000000,"
				  "'remark':'since 2019'}"),
		&local);
	tu_put(st, ENT_PERSON, q("{'id':'f101','kind':'family','apartment':'a101','first_name':'Lea'}"));
	tu_put(st, ENT_CREDENTIAL, q("{'id':'f101pin','person':'f101','type':'pin','code':'1112'}"));
	tu_put(st, ENT_CREDENTIAL, q("{'id':'f101rf','person':'f101','type':'rf','code':'RF103'}"));
	tu_put(st, ENT_CREDENTIAL, q("{'id':'c101face','person':'p101','type':'face','code':'face/p101.jpg'}"));
	tu_put(st, ENT_CREDENTIAL, q("{'id':'c101qr','person':'p101','type':'qr','code':'QR-P101'}"));
	tu_put(st, ENT_CREDENTIAL, q("{'id':'c101uhf','person':'p101','type':'uhf','code':'E2000101'}"));
	tu_put(st, ENT_CREDENTIAL, q("{'id':'c101plate','person':'p101','type':'plate','code':'W-101 A'}"));
	tu_put(st, ENT_TEMP_KEY, q("{'id':'k101','apartment':'a101','code':'3333','devices':['0C11050B9814'],"
				   "'schedule':{'end':'2099-01-01T00:00:00Z'}}"));
	tu_put(st, ENT_TEMP_KEY, q("{'id':'k102','apartment':'a102','code':'4444','devices':['0C11050B9814'],"
				   "'schedule':{'end':'2099-01-01T00:00:00Z'}}"));
	const char *apts[] = { "a101", "a102" };
	for (int i = 0; i < 2; i++) {
		char sql[1024];
		snprintf(sql, sizeof sql,
			 "INSERT INTO door_logs(ts, apartment, result, method) VALUES (1, '%1$s', 'success', 'pin');"
			 "INSERT INTO call_logs(ts, apartment, caller) VALUES (2, '%1$s', '0C11050B9814');"
			 "INSERT INTO alarm_logs(ts, apartment, kind, state) VALUES (3, '%1$s', 'tamper', 'triggered');"
			 "INSERT INTO detection_logs(ts, apartment, kind) VALUES (4, '%1$s', 'motion');"
			 "INSERT INTO messages(ts, apartment, title, body) VALUES (5, '%1$s', 'Water', 'Off at 9');",
			 apts[i]);
		sql_exec(st, sql);
	}
	return st;
}

static int64_t logs_of(store_t *st, const char *table, const char *apt)
{
	char sql[128];
	snprintf(sql, sizeof sql, "SELECT count(*) FROM %s WHERE apartment = ?", table);
	sqlite3_stmt *s = NULL;
	cr_assert_eq(sqlite3_prepare_v2(store_db(st), sql, -1, &s, NULL), SQLITE_OK);
	sqlite3_bind_text(s, 1, apt, -1, SQLITE_TRANSIENT);
	cr_assert_eq(sqlite3_step(s), SQLITE_ROW);
	int64_t n = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return n;
}

/* absent, null or "" */
static int cleared(const json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	return !v || json_is_null(v) || (json_is_string(v) && !json_string_length(v)) ||
	       (json_is_array(v) && !json_array_size(v));
}

Test(store, apartment_reset)
{
	store_t *st = reset_site();
	int64_t audits = sql_int(st, "SELECT count(*) FROM audit_logs", (const char *)NULL);
	cr_assert_gt(audits, 0);
	ent_ctx_t pm = { .local = 1, .actor = "pm" };
	gh_err_t err = { 0 };
	cr_assert_eq(ent_apartment_reset(st, "a101", &pm, &err), 0, "%s", err.message);

	/* family members go, with their credentials */
	cr_assert_not(exists(st, ENT_PERSON, "f101"));
	cr_assert_not(exists(st, ENT_CREDENTIAL, "f101pin"));
	cr_assert_not(exists(st, ENT_CREDENTIAL, "f101rf"));
	cr_assert_eq(tomb(st, "person", "f101"), 1);
	cr_assert_eq(tomb(st, "credential", "f101pin"), 1);

	/* the master stays with its state, without its contact data */
	json_t *p = get(st, ENT_PERSON, "p101");
	cr_assert_str_eq(js(p, "first_name"), "Anna");
	cr_assert_str_eq(js(p, "kind"), "resident");
	cr_assert(json_is_false(json_object_get(p, "active")), "active must be kept");
	cr_assert_eq(json_integer_value(json_object_get(p, "expires_at")), 1900000000);
	const char *wiped[] = { "email", "mobile", "country_code", "landlines", "app_account" };
	for (size_t i = 0; i < sizeof wiped / sizeof wiped[0]; i++)
		cr_assert(cleared(p, wiped[i]), "%s not cleared", wiped[i]);
	json_decref(p);

	/* access settings go; cards, tags and plates stay */
	cr_assert_not(exists(st, ENT_CREDENTIAL, "c101pin"));
	cr_assert_not(exists(st, ENT_CREDENTIAL, "c101face"));
	cr_assert_not(exists(st, ENT_CREDENTIAL, "c101qr"));
	cr_assert(exists(st, ENT_CREDENTIAL, "c101rf"));
	cr_assert(exists(st, ENT_CREDENTIAL, "c101uhf"));
	cr_assert(exists(st, ENT_CREDENTIAL, "c101plate"));
	cr_assert_eq(tomb(st, "credential", "c101pin"), 1);
	cr_assert_eq(tomb(st, "credential", "c101face"), 1);

	/* the apartment's visitor keys go, other apartments' stay */
	cr_assert_not(exists(st, ENT_TEMP_KEY, "k101"));
	cr_assert_eq(tomb(st, "temp_key", "k101"), 1);
	cr_assert(exists(st, ENT_TEMP_KEY, "k102"));

	/* logs, alarms and messages of the apartment go */
	const char *tables[] = { "door_logs", "call_logs", "alarm_logs", "detection_logs", "messages" };
	for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++) {
		cr_assert_eq(logs_of(st, tables[i], "a101"), 0, "%s of a101 kept", tables[i]);
		cr_assert_eq(logs_of(st, tables[i], "a102"), 1, "%s of a102 touched", tables[i]);
	}

	/* audit logs stay, and the reset is audited */
	cr_assert_geq(sql_int(st, "SELECT count(*) FROM audit_logs", (const char *)NULL), audits + 1);
	cr_assert_eq(sql_int(st, "SELECT count(*) FROM audit_logs WHERE action = 'update' AND eid = 'p101' "
				 "AND actor = 'pm' AND after LIKE '%anna@example.com%'",
			     (const char *)NULL),
		     1, "the audit row of the edit before the reset is kept");
	cr_assert_eq(sql_int(st, "SELECT count(*) FROM audit_logs WHERE action = 'reset' AND entity = "
				 "'apartment' AND eid = 'a101' AND actor = 'pm'",
			     (const char *)NULL),
		     1);

	/* the apartment and its call settings stay; other apartments untouched */
	json_t *a = get(st, ENT_APARTMENT, "a101");
	cr_assert_eq(json_integer_value(json_object_get(a, "call_type")), 3);
	cr_assert_str_eq(js(a, "call_mode"), "sip");
	json_decref(a);
	cr_assert(exists(st, ENT_PERSON, "p102"));
	cr_assert(exists(st, ENT_CREDENTIAL, "c102pin"));
	/* the freed PIN can be given again */
	tu_put(st, ENT_CREDENTIAL, q("{'id':'c101pin2','person':'p101','type':'pin','code':'1111'}"));
	store_close(st);
	tu_rmdir();
}

Test(store, apartment_reset_unknown_is_404)
{
	store_t *st = reset_site();
	gh_err_t err = { 0 };
	int64_t audits = sql_int(st, "SELECT count(*) FROM audit_logs", (const char *)NULL);
	cr_assert_eq(ent_apartment_reset(st, "a999", NULL, &err), -1);
	cr_assert_eq(err.status, 404);
	cr_assert_neq(err.message[0], '\0');
	cr_assert_eq(sql_int(st, "SELECT count(*) FROM audit_logs", (const char *)NULL), audits);
	cr_assert(exists(st, ENT_PERSON, "f101"));
	cr_assert_not(store_in_tx(st));
	store_close(st);
	tu_rmdir();
}

/* ---- (h) listing ---- */

Test(store, list_pages_by_cursor)
{
	store_t *st = tu_store();
	const char *ids[] = { "b05", "b01", "b07", "b03", "b02", "b06", "b04" };
	for (size_t i = 0; i < 7; i++) {
		char text[128];
		snprintf(text, sizeof text, "{\"id\":\"%s\",\"name\":\"Tower %s\"}", ids[i], ids[i]);
		tu_put(st, ENT_BUILDING, text);
	}
	char cursor[64] = "";
	int seen = 0, pages = 0;
	for (;;) {
		json_t *page = NULL;
		gh_err_t err = { 0 };
		cr_assert_eq(ent_list(st, ENT_BUILDING, pages ? cursor : NULL, 3, &page, &err), 0, "%s",
			     err.message);
		size_t n = json_array_size(page);
		pages++;
		if (!n) {
			json_decref(page);
			break;
		}
		cr_assert_leq(n, 3);
		for (size_t i = 0; i < n; i++) {
			json_t *b = json_array_get(page, i);
			char want[16];
			snprintf(want, sizeof want, "b%02d", ++seen);
			cr_assert_str_eq(js(b, "id"), want, "page %d item %zu", pages, i);
			char name[32];
			snprintf(name, sizeof name, "Tower %s", want);
			cr_assert_str_eq(js(b, "name"), name);
		}
		snprintf(cursor, sizeof cursor, "%s", js(json_array_get(page, n - 1), "id"));
		json_decref(page);
		cr_assert_lt(pages, 10, "paging does not end");
	}
	cr_assert_eq(seen, 7);
	cr_assert_eq(pages, 4, "3 + 3 + 1 + an empty page");
	/* no limit: the default page holds them all */
	json_t *all = NULL;
	gh_err_t err = { 0 };
	cr_assert_eq(ent_list(st, ENT_BUILDING, NULL, 0, &all, &err), 0);
	cr_assert_eq(json_array_size(all), 7);
	json_decref(all);
	cr_assert_eq(ent_count(st, ENT_BUILDING), 7);
	/* an empty kind */
	cr_assert_eq(ent_list(st, ENT_PARKING_LOT, NULL, 5, &all, &err), 0);
	cr_assert_eq(json_array_size(all), 0);
	json_decref(all);
	store_close(st);
	tu_rmdir();
}

Test(store, list_decorates_temp_keys)
{
	store_t *st = site();
	tu_put(st, ENT_TEMP_KEY, q("{'id':'k1','code':'3456','devices':['0C11050B9814'],'uses_per_device':3,"
				   "'schedule':{'end':'2099-01-01T00:00:00Z'}}"));
	json_t *page = NULL;
	gh_err_t err = { 0 };
	cr_assert_eq(ent_list(st, ENT_TEMP_KEY, NULL, 10, &page, &err), 0);
	cr_assert_eq(json_array_size(page), 1);
	cr_assert_eq(json_integer_value(json_object_get(json_array_get(page, 0), "uses_left")), 3);
	json_decref(page);
	store_close(st);
	tu_rmdir();
}

/* ---- (i) nested transactions ---- */

Test(store, inner_rollback_keeps_outer_work)
{
	store_t *st = tu_store();
	cr_assert_not(store_in_tx(st));
	cr_assert_eq(store_begin(st), 0);
	cr_assert(store_in_tx(st));
	tu_put(st, ENT_BUILDING, q("{'id':'b1','name':'Tower A'}"));

	cr_assert_eq(store_begin(st), 0);
	tu_put(st, ENT_BUILDING, q("{'id':'b2','name':'Tower B'}"));
	cr_assert_eq(ent_count(st, ENT_BUILDING), 2);
	store_rollback(st);
	cr_assert(store_in_tx(st), "an inner rollback ends only the inner unit");
	cr_assert_eq(ent_count(st, ENT_BUILDING), 1);

	/* a failing put (its own nested unit) does not disturb the outer one */
	gh_err_t e = tu_put_fail(st, ENT_APARTMENT, q("{'id':'a1','building':'b1','apt':'#1'}"));
	cr_assert_eq(e.status, 422);
	cr_assert(store_in_tx(st));

	/* an inner commit is kept with the outer one */
	cr_assert_eq(store_begin(st), 0);
	tu_put(st, ENT_BUILDING, q("{'id':'b3','name':'Tower C'}"));
	cr_assert_eq(store_commit(st), 0);
	cr_assert(store_in_tx(st));

	cr_assert_eq(store_commit(st), 0);
	cr_assert_not(store_in_tx(st));
	cr_assert(exists(st, ENT_BUILDING, "b1"));
	cr_assert_not(exists(st, ENT_BUILDING, "b2"));
	cr_assert(exists(st, ENT_BUILDING, "b3"));
	cr_assert_eq(store_commit(st), -1, "commit without a transaction");
	store_close(st);
	tu_rmdir();
}

/* A commit syncs the WAL before it returns (what it holds may then be
 * acknowledged); a lazy commit (door logs nobody waits for) does not, yet
 * is a real commit: another connection reads it, it survives closing. A
 * lazy commit of a transaction a nested unit (an edit) committed into is
 * synced all the same. */
Test(store, lazy_commit_skips_only_the_sync)
{
	store_t *st = tu_store();
	tu_put(st, ENT_BUILDING, q("{'id':'b0','name':'Tower 0'}"));
	uint64_t n = store_wal_syncs(st);
	cr_assert_eq(store_begin(st), 0);
	tu_put(st, ENT_BUILDING, q("{'id':'b1','name':'Tower A'}"));
	cr_assert_eq(store_commit(st), 0);
	cr_assert_eq(store_wal_syncs(st), n + 1, "a commit syncs the WAL");

	/* the pass's own rows only (no nested unit): lazy */
	cr_assert_eq(store_begin(st), 0);
	sqlite3_stmt *s = NULL;
	cr_assert_eq(sqlite3_prepare_v2(store_db(st), "INSERT INTO sync_state(key, value) VALUES ('t', '1')", -1, &s,
					NULL), SQLITE_OK);
	cr_assert_eq(sqlite3_step(s), SQLITE_DONE);
	sqlite3_finalize(s);
	cr_assert_eq(store_commit_lazy(st), 0);
	cr_assert_not(store_in_tx(st));
	cr_assert_eq(store_wal_syncs(st), n + 1, "a lazy commit does not");

	char path[300];
	snprintf(path, sizeof path, "%s/site.db", tu_dir);
	sqlite3 *other = NULL;
	cr_assert_eq(sqlite3_open(path, &other), SQLITE_OK);
	cr_assert_eq(sqlite3_prepare_v2(other, "SELECT count(*) FROM sync_state WHERE key = 't'", -1, &s, NULL),
		     SQLITE_OK);
	cr_assert_eq(sqlite3_step(s), SQLITE_ROW);
	cr_assert_eq(sqlite3_column_int(s, 0), 1, "another connection reads the lazily committed row");
	sqlite3_finalize(s);
	sqlite3_close(other);

	/* a nested unit committed into it: synced */
	cr_assert_eq(store_begin(st), 0);
	tu_put(st, ENT_BUILDING, q("{'id':'b2','name':'Tower B'}"));
	cr_assert_eq(store_commit_lazy(st), 0);
	cr_assert_eq(store_wal_syncs(st), n + 2, "an edit inside: synced");
	store_close(st);

	gh_err_t err = { 0 };
	st = store_open(path, &err);
	cr_assert_not_null(st, "%s", err.message);
	cr_assert(exists(st, ENT_BUILDING, "b1"));
	cr_assert(exists(st, ENT_BUILDING, "b2"));
	store_close(st);
	tu_rmdir();
}

Test(store, outer_rollback_discards_everything)
{
	store_t *st = tu_store();
	tu_put(st, ENT_BUILDING, q("{'id':'b1','name':'Tower A'}"));
	int64_t lrev = store_lrev(st);
	cr_assert_eq(store_begin(st), 0);
	tu_put(st, ENT_BUILDING, q("{'id':'b2','name':'Tower B'}"));
	cr_assert_eq(store_begin(st), 0);
	tu_put(st, ENT_BUILDING, q("{'id':'b3','name':'Tower C'}"));
	cr_assert_eq(store_commit(st), 0);
	cr_assert_gt(store_lrev(st), lrev);
	store_rollback(st);
	cr_assert_not(store_in_tx(st));
	cr_assert(exists(st, ENT_BUILDING, "b1"));
	cr_assert_not(exists(st, ENT_BUILDING, "b2"));
	cr_assert_not(exists(st, ENT_BUILDING, "b3"));
	cr_assert_eq(store_lrev(st), lrev, "revisions of a rolled-back transaction are reused");
	store_close(st);
	tu_rmdir();
}

/* A settings change rolled back with its transaction must not linger in
 * the settings the validator uses (here: APT+PIN mode would let a PIN be
 * shared across apartments although the site is in site-wide PIN mode). */
Test(store, rolled_back_settings_not_used)
{
	store_t *st = site();
	cr_assert_eq(store_begin(st), 0);
	tu_put(st, ENT_SETTINGS, q("{'pin_mode':'apt_pin'}"));
	/* in APT+PIN mode another apartment may use 1111 */
	tu_put(st, ENT_CREDENTIAL, q("{'id':'c3','person':'p102','type':'pin','code':'1111'}"));
	store_rollback(st);
	json_t *s = get(st, ENT_SETTINGS, "site");
	cr_assert_str_eq(js(s, "pin_mode"), "pin");
	json_decref(s);
	cr_assert_not(exists(st, ENT_CREDENTIAL, "c3"));
	/* back in site-wide mode: 1111 is p101's */
	gh_err_t e = tu_put_fail(st, ENT_CREDENTIAL, q("{'id':'c3','person':'p102','type':'pin','code':'1111'}"));
	cr_assert_eq(e.status, 409);
	cr_assert_str_eq(e.field, "code");
	store_close(st);
	tu_rmdir();
}

Test(store, lrev_and_kv_persist)
{
	gh_err_t err = { 0 };
	const char *path = fresh_path();
	char saved[300];
	snprintf(saved, sizeof saved, "%s", path);
	store_t *st = store_open(saved, &err);
	cr_assert_not_null(st, "%s", err.message);
	cr_assert_eq(store_lrev(st), 0);
	tu_put(st, ENT_BUILDING, q("{'id':'b1','name':'Tower A'}"));
	tu_put(st, ENT_BUILDING, q("{'id':'b2','name':'Tower B'}"));
	int64_t lrev = store_lrev(st);
	cr_assert_eq(lrev, 2);
	cr_assert_eq(sql_int(st, "SELECT lrev FROM buildings WHERE id = 'b2'", (const char *)NULL), 2);
	cr_assert_eq(store_kv_set(st, "cursor", "c-77"), 0);
	store_close(st);
	st = store_open(saved, &err);
	cr_assert_not_null(st, "%s", err.message);
	cr_assert_eq(store_lrev(st), lrev);
	char buf[16];
	cr_assert_eq(store_kv_get(st, "cursor", buf, sizeof buf), 0);
	cr_assert_str_eq(buf, "c-77");
	cr_assert_eq(store_kv_get(st, "missing", buf, sizeof buf), -1);
	cr_assert_str_eq(buf, "");
	tu_put(st, ENT_BUILDING, q("{'id':'b3','name':'Tower C'}"));
	cr_assert_eq(store_lrev(st), lrev + 1);
	store_close(st);
	tu_rmdir();
}

Test(store, settings_generation_bumps)
{
	store_t *st = tu_store();
	unsigned gen = store_settings_gen(st);
	tu_put(st, ENT_SETTINGS, q("{'name':'Parkside'}"));
	cr_assert_neq(store_settings_gen(st), gen);
	gen = store_settings_gen(st);
	tu_put(st, ENT_BUILDING, q("{'id':'b1','name':'Tower A'}"));
	cr_assert_eq(store_settings_gen(st), gen);
	store_close(st);
	tu_rmdir();
}

/* ---- bulk load: the lookup index built at the end ---- */

typedef struct {
	int n;
	char id[12][32];
	char msg[12][400];
	int64_t rev[12];
} refusals_t;

static void on_refused(void *ctx, ent_t e, const char *id, int64_t rev, const char *data, const gh_err_t *err)
{
	refusals_t *r = ctx;
	cr_assert_not_null(strstr(data, "\"code\""), "%s: its stored JSON: %s", ent_name(e), data);
	cr_assert_lt(r->n, 12);
	snprintf(r->id[r->n], sizeof r->id[0], "%s", id);
	snprintf(r->msg[r->n], sizeof r->msg[0], "%s|%s", err->field, err->message);
	r->rev[r->n++] = rev;
}

static int refused_has(const refusals_t *r, const char *id)
{
	for (int i = 0; i < r->n; i++)
		if (!strcmp(r->id[i], id))
			return i;
	return -1;
}

static int64_t index_count(store_t *st)
{
	return sql_int(st, "SELECT count(*) FROM sqlite_master WHERE name = 'credentials_lookup'", (const char *)NULL);
}

/* Credentials sharing a code while the index is dropped: at the end the
 * first applied stays and each later one is refused with what the validator
 * says of a duplicate (the same message as a put made one by one); so is a
 * temp key whose PIN an earlier credential holds. A duplicate of a temp
 * key's PIN is still refused at once (the temp keys keep their index). */
Test(store, bulk_load_refuses_duplicates_as_in_order)
{
	store_t *st = site(); /* p101 (a101), p102 (a102) and their codes */
	tu_put(st, ENT_PERSON, q("{'id':'p103','kind':'staff','first_name':'Cleo'}"));
	gh_err_t err = { 0 };
	/* what a put one by one says of the duplicates */
	gh_err_t want_rf = tu_put_fail(st, ENT_CREDENTIAL, q("{'id':'x1','person':'p102','type':'rf','code':'RF101'}"));
	gh_err_t want_pin = tu_put_fail(st, ENT_CREDENTIAL, q("{'id':'x2','person':'p102','type':'pin','code':'1111'}"));

	cr_assert_eq(store_begin(st), 0);
	cr_assert_eq(bulk_begin(st, &err), 0, "%s", err.message);
	cr_assert_eq(store_commit(st), 0);
	cr_assert_eq(index_count(st), 0, "the index is dropped while it loads");
	cr_assert(store_bulk(st));

	ent_ctx_t c = { .actor = "cloud", .lenient_refs = 1, .bulk = 1 };
	c.rev = 100;
	put_ctx(st, ENT_CREDENTIAL, q("{'id':'d1','person':'p103','type':'rf','code':'RFDUP'}"), &c);
	c.rev = 101;
	put_ctx(st, ENT_CREDENTIAL, q("{'id':'d2','person':'p102','type':'rf','code':'RFDUP'}"), &c);
	c.rev = 102; /* the same code as c101rf, stored before the load */
	put_ctx(st, ENT_CREDENTIAL, q("{'id':'d3','person':'p103','type':'rf','code':'RF101'}"), &c);
	c.rev = 103;
	put_ctx(st, ENT_CREDENTIAL, q("{'id':'d4','person':'p103','type':'pin','code':'2222'}"), &c);
	c.rev = 104;
	put_ctx(st, ENT_CREDENTIAL, q("{'id':'d5','person':'p103','type':'rf','code':'RFONE'}"), &c);
	c.rev = 105; /* a temp key with the PIN of an earlier credential */
	put_ctx(st, ENT_TEMP_KEY, q("{'id':'k1','code':'1111','devices':['0C11050B9814'],'schedule':"
				    "{'start':'2026-03-29T02:30:00Z','end':'2026-03-30T02:30:00Z'}}"), &c);
	c.rev = 106;
	put_ctx(st, ENT_TEMP_KEY, q("{'id':'k2','code':'6666','devices':['0C11050B9814'],'schedule':"
				    "{'start':'2026-03-29T02:30:00Z','end':'2026-03-30T02:30:00Z'}}"), &c);
	/* a temp key refused at the end, with a card of its own */
	c.rev = 108;
	put_ctx(st, ENT_CREDENTIAL, q("{'id':'kc1','temp_key':'k1','type':'rf','code':'KEYCARD'}"), &c);
	/* six UHF cards for p103, the third a code p102 held first: in order
	 * that one is refused and the other five are kept */
	c.rev = 109;
	put_ctx(st, ENT_CREDENTIAL, q("{'id':'u0','person':'p102','type':'uhf','code':'U0'}"), &c);
	for (int i = 1; i <= 6; i++) {
		char t[120];
		snprintf(t, sizeof t, "{\"id\":\"u%d\",\"person\":\"p103\",\"type\":\"uhf\",\"code\":\"U%d\"}", i,
			 i == 3 ? 0 : i);
		c.rev = 110 + i;
		put_ctx(st, ENT_CREDENTIAL, t, &c);
	}
	/* six plates for p101: the sixth is one too many */
	for (int i = 1; i <= 6; i++) {
		char t[120];
		snprintf(t, sizeof t, "{\"id\":\"v%d\",\"person\":\"p101\",\"type\":\"plate\",\"code\":\"W%dAB\"}",
			 i, i);
		c.rev = 120 + i;
		put_ctx(st, ENT_CREDENTIAL, t, &c);
	}
	/* p102's plate with the code of p101's sixth: in order the sixth is
	 * refused for p101's limit, so the code is free for p102 */
	c.rev = 130;
	put_ctx(st, ENT_CREDENTIAL, q("{'id':'w2','person':'p102','type':'plate','code':'W6AB'}"), &c);
	c.rev = 107; /* a temp key's PIN: refused at once */
	json_t *j = tu_json(q("{'id':'d6','person':'p103','type':'pin','code':'6666'}"));
	cr_assert_eq(ent_put(st, ENT_CREDENTIAL, NULL, j, &c, NULL, &err), -1);
	cr_assert_eq(err.status, 409, "%s", err.message);
	json_decref(j);

	/* a crash here: the next open knows the index is still to be built */
	store_close(st);
	char path[300];
	snprintf(path, sizeof path, "%s/site.db", tu_dir);
	st = store_open(path, &err);
	cr_assert_not_null(st, "%s", err.message);
	cr_assert(store_bulk(st), "a bulk load cut short is still open after a restart");

	refusals_t r = { 0 };
	cr_assert_eq(store_begin(st), 0);
	cr_assert_eq(bulk_end(st, on_refused, &r, &err), 0, "%s", err.message);
	cr_assert_eq(store_commit(st), 0);
	cr_assert_not(store_bulk(st));
	cr_assert_eq(index_count(st), 1, "the index is built");
	char v[32] = "x";
	store_kv_get(st, "bulk_index_sql", v, sizeof v);
	cr_assert_str_eq(v, "");

	cr_assert_eq(r.n, 7, "d2, d3, d4, u3 (codes held twice), v6 (one plate too many), k1 and its card; got %d",
		     r.n);
	int i = refused_has(&r, "u3");
	cr_assert_geq(i, 0);
	cr_assert_not_null(strstr(r.msg[i], "already registered"), "refused as a duplicate, as in order: %s", r.msg[i]);
	cr_assert_eq(refused_has(&r, "u6"), -1, "the duplicate did not count towards p103's five UHF cards");
	int vi = refused_has(&r, "v6");
	cr_assert_geq(vi, 0);
	cr_assert_not_null(strstr(r.msg[vi], "at most 5"), "%s", r.msg[vi]);
	i = refused_has(&r, "kc1");
	cr_assert_geq(i, 0, "a refused temp key's card is refused with it, as in order");
	cr_assert_not_null(strstr(r.msg[i], "temp_key"), "%s", r.msg[i]);
	i = refused_has(&r, "k1");
	cr_assert_not_null(strstr(r.msg[i], "PIN is already in use"), "%s", r.msg[i]);
	cr_assert_eq(sql_int(st, "SELECT count(*) FROM credentials WHERE person = 'p103' AND type = 'uhf'",
			     (const char *)NULL), 5);
	cr_assert_eq(sql_int(st, "SELECT count(*) FROM credentials WHERE person = 'p101' AND type = 'plate'",
			     (const char *)NULL), 5);
	cr_assert(exists(st, ENT_CREDENTIAL, "v5"));
	cr_assert(exists(st, ENT_CREDENTIAL, "w2"), "a plate whose first holder was one too many is kept");
	i = refused_has(&r, "d2");
	cr_assert_geq(i, 0);
	cr_assert_eq(r.rev[i], 101);
	char want[400];
	snprintf(want, sizeof want, "%s|%s", want_rf.field, want_rf.message);
	cr_assert_str_eq(r.msg[i], want, "the message of a put one by one");
	cr_assert_geq(refused_has(&r, "d3"), 0, "the code was stored before the load: the later one goes");
	i = refused_has(&r, "d4");
	cr_assert_geq(i, 0);
	snprintf(want, sizeof want, "%s|%s", want_pin.field, want_pin.message);
	cr_assert_str_eq(r.msg[i], want);
	cr_assert_geq(refused_has(&r, "k1"), 0);

	cr_assert(exists(st, ENT_CREDENTIAL, "d1"), "the first applied stays");
	cr_assert_not(exists(st, ENT_CREDENTIAL, "d2"));
	cr_assert(exists(st, ENT_CREDENTIAL, "c101rf"));
	cr_assert_not(exists(st, ENT_CREDENTIAL, "d3"));
	cr_assert(exists(st, ENT_CREDENTIAL, "c102pin"));
	cr_assert_not(exists(st, ENT_CREDENTIAL, "d4"));
	cr_assert(exists(st, ENT_CREDENTIAL, "d5"));
	cr_assert_not(exists(st, ENT_TEMP_KEY, "k1"));
	cr_assert(exists(st, ENT_TEMP_KEY, "k2"));
	cr_assert_eq(sql_int(st, "SELECT count(*) FROM (SELECT 1 FROM credentials GROUP BY type, code, scope "
				 "HAVING count(*) > 1)", (const char *)NULL), 0, "no code is held twice");

	/* nothing open: nothing done */
	cr_assert_eq(store_begin(st), 0);
	cr_assert_eq(bulk_end(st, on_refused, &r, &err), 0);
	cr_assert_eq(store_commit(st), 0);
	cr_assert_eq(r.n, 7);
	store_close(st);
	tu_rmdir();
}

/* A bulk load begun or ended in a transaction that is rolled back is as the
 * database says after it: the flag the engine picks its statement by never
 * disagrees with the index being there. */
Test(store, bulk_flag_follows_a_rollback)
{
	store_t *st = tu_store();
	gh_err_t err = { 0 };
	cr_assert_eq(store_begin(st), 0);
	cr_assert_eq(bulk_begin(st, &err), 0, "%s", err.message);
	cr_assert(store_bulk(st));
	store_rollback(st);
	cr_assert_not(store_bulk(st), "the drop was rolled back");
	cr_assert_eq(index_count(st), 1);

	cr_assert_eq(store_begin(st), 0);
	cr_assert_eq(bulk_begin(st, &err), 0, "%s", err.message);
	cr_assert_eq(store_commit(st), 0);
	cr_assert_eq(store_begin(st), 0);
	cr_assert_eq(store_begin(st), 0); /* a unit inside, as a page in the loop pass */
	cr_assert_eq(bulk_end(st, NULL, NULL, &err), 0, "%s", err.message);
	cr_assert_not(store_bulk(st));
	store_rollback(st);
	cr_assert(store_bulk(st), "the build was rolled back with its unit");
	store_rollback(st);
	cr_assert(store_bulk(st));
	cr_assert_eq(index_count(st), 0);
	store_close(st);
	tu_rmdir();
}
