/* Generic entity operations: put (validate + upsert + derived rows + audit
 * + journal), get, delete with dependants, list. The per-entity rules live
 * in validate.c, the per-entity rows in rows.c. */
#include "entity.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "entity_int.h"
#include "jutil.h"
#include "log.h"
#include "settings.h"
#include "timeutil.h"

const struct ent_info ent_info[ENT__COUNT] = {
	[ENT_SETTINGS] = { "settings", "settings", "settings" },
	[ENT_MAC] = { "mac", "macs", "macs" },
	[ENT_BUILDING] = { "building", "buildings", "buildings" },
	[ENT_APARTMENT] = { "apartment", "apartments", "apartments" },
	[ENT_PERSON] = { "person", "persons", "persons" },
	[ENT_DEVICE] = { "device", "devices", "devices" },
	[ENT_RELAY_BOARD] = { "relay_board", "relay_boards", "relay_boards" },
	[ENT_ACCESS_GROUP] = { "access_group", "access_groups", "access_groups" },
	[ENT_TEMP_KEY] = { "temp_key", "temp_keys", "temp_keys" },
	[ENT_CREDENTIAL] = { "credential", "credentials", "credentials" },
	[ENT_PARKING_LOT] = { "parking_lot", "parking_lots", "parking_lots" },
};

/* SQL per table, as static strings so the statement cache keys on them. */
#define PER_TABLE(prefix, suffix)                                                              \
	{ prefix "settings" suffix, prefix "macs" suffix, prefix "buildings" suffix,           \
	  prefix "apartments" suffix, prefix "persons" suffix, prefix "devices" suffix,        \
	  prefix "relay_boards" suffix, prefix "access_groups" suffix, prefix "temp_keys" suffix, \
	  prefix "credentials" suffix, prefix "parking_lots" suffix }

static const char *const sql_get[ENT__COUNT] =
    PER_TABLE("SELECT data, rev, origin FROM ", " WHERE id = ?");
static const char *const sql_exists[ENT__COUNT] = PER_TABLE("SELECT 1 FROM ", " WHERE id = ?");
static const char *const sql_delete[ENT__COUNT] = PER_TABLE("DELETE FROM ", " WHERE id = ?");
static const char *const sql_count[ENT__COUNT] = PER_TABLE("SELECT count(*) FROM ", "");
static const char *const sql_any[ENT__COUNT] = PER_TABLE("SELECT 1 FROM ", " LIMIT 1");
static const char *const sql_list[ENT__COUNT] =
    PER_TABLE("SELECT id, data FROM ", " WHERE id > ? ORDER BY id LIMIT ?");
static const char *const sql_synced[ENT__COUNT] =
    PER_TABLE("UPDATE ", " SET rev = max(rev, ?2), origin = CASE WHEN ?3 THEN origin ELSE 'cloud' END "
	      "WHERE id = ?1");
static const char *const sql_stale[ENT__COUNT] =
    PER_TABLE("SELECT id FROM ", " WHERE origin = 'cloud' AND lrev <= ?");

int ent_synced(store_t *st, ent_t e, const char *id, int64_t rev, int still_local)
{
	sqlite3_stmt *s = store_stmt(st, sql_synced[e]);
	if (!s)
		return -1;
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, rev);
	sqlite3_bind_int(s, 3, still_local);
	int rc = sqlite3_step(s);
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

json_t *ent_cloud_stale(store_t *st, ent_t e, int64_t lrev0)
{
	sqlite3_stmt *s = store_stmt(st, sql_stale[e]);
	if (!s)
		return NULL;
	sqlite3_bind_int64(s, 1, lrev0);
	json_t *ids = json_array();
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		json_array_append_new(ids, json_string((const char *)sqlite3_column_text(s, 0)));
	sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		json_decref(ids);
		return NULL;
	}
	return ids;
}

const char *ent_name(ent_t e) { return e < ENT__COUNT ? ent_info[e].name : "?"; }
const char *ent_plural(ent_t e) { return e < ENT__COUNT ? ent_info[e].plural : "?"; }

int ent_parse(const char *name)
{
	for (int i = 0; i < ENT__COUNT; i++)
		if (!strcmp(name, ent_info[i].name) || !strcmp(name, ent_info[i].plural))
			return i;
	return -1;
}

int ent_exists(store_t *st, ent_t e, const char *id)
{
	sqlite3_stmt *s = store_stmt(st, sql_exists[e]);
	if (!s)
		return -1;
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	int rc = sqlite3_step(s);
	sqlite3_reset(s);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

int ent_exists_pub(store_t *st, ent_t e, const char *id) { return ent_exists(st, e, id); }

int ent_any(store_t *st, ent_t e)
{
	sqlite3_stmt *s = store_stmt(st, sql_any[e]);
	if (!s)
		return -1;
	int rc = sqlite3_step(s);
	sqlite3_reset(s);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

int64_t ent_count(store_t *st, ent_t e)
{
	sqlite3_stmt *s = store_stmt(st, sql_count[e]);
	if (!s || sqlite3_step(s) != SQLITE_ROW)
		return -1;
	int64_t n = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	return n;
}

/* Raw stored row: *data (parsed), *rev. 0 found, 1 absent, -1 error. */
static int get_row(store_t *st, ent_t e, const char *id, json_t **data, int64_t *rev)
{
	sqlite3_stmt *s = store_stmt(st, sql_get[e]);
	if (!s)
		return -1;
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	int rc = sqlite3_step(s);
	if (rc != SQLITE_ROW) {
		sqlite3_reset(s);
		return rc == SQLITE_DONE ? 1 : -1;
	}
	json_error_t je;
	*data = json_loads((const char *)sqlite3_column_text(s, 0), 0, &je);
	if (rev)
		*rev = sqlite3_column_int64(s, 1);
	sqlite3_reset(s);
	return *data ? 0 : -1;
}

/* Box-owned fields that live in columns, merged into the representation. */
static void decorate(store_t *st, ent_t e, const char *id_in, json_t *d)
{
	char id[80]; /* ID_IN may live inside D's own "id" */
	snprintf(id, sizeof id, "%s", id_in);
	json_object_set_new(d, "id", json_string(id));
	if (e == ENT_TEMP_KEY) {
		sqlite3_stmt *s = store_stmt(
		    st, "SELECT uses_total - uses_used FROM temp_keys WHERE id = ? AND uses_total IS NOT NULL");
		if (!s)
			return;
		sqlite3_bind_text(s, 1, id, -1, SQLITE_TRANSIENT);
		if (sqlite3_step(s) == SQLITE_ROW) {
			int64_t left = sqlite3_column_int64(s, 0);
			json_object_set_new(d, "uses_left", json_integer(left < 0 ? 0 : left));
		} else {
			json_object_set_new(d, "uses_left", json_null());
		}
		sqlite3_reset(s);
	}
}

int ent_get(store_t *st, ent_t e, const char *id, json_t **out, gh_err_t *err)
{
	json_t *d = NULL;
	int rc = get_row(st, e, id, &d, NULL);
	if (rc < 0)
		return store_db_err(st, err, "reading entity");
	if (rc == 1) {
		if (e == ENT_SETTINGS && !strcmp(id, "site")) {
			d = settings_defaults();
		} else {
			return gh_err(err, 404, "not_found", "id", "no %s with id \"%s\"", ent_name(e), id);
		}
	}
	decorate(st, e, id, d);
	*out = d;
	return 0;
}

/* Steps S (id, data rows) into *OUT with the box-owned columns added; S is
 * reset (cached) or finalized (FINALIZE) either way. */
static int collect(store_t *st, ent_t e, sqlite3_stmt *s, int finalize, json_t **out, gh_err_t *err)
{
	json_t *arr = json_array();
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		json_t *d = json_loads((const char *)sqlite3_column_text(s, 1), 0, NULL);
		if (!d)
			continue;
		json_object_set_new(d, "id", json_string((const char *)sqlite3_column_text(s, 0)));
		json_array_append_new(arr, d);
	}
	if (finalize)
		sqlite3_finalize(s);
	else
		sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		json_decref(arr);
		return store_db_err(st, err, "listing");
	}
	/* box-owned columns need the statement above finished first */
	size_t i;
	json_t *d;
	json_array_foreach(arr, i, d) decorate(st, e, json_string_value(json_object_get(d, "id")), d);
	*out = arr;
	return 0;
}

int ent_list(store_t *st, ent_t e, const char *cursor, int limit, json_t **out, gh_err_t *err)
{
	sqlite3_stmt *s = store_stmt(st, sql_list[e]);
	if (!s)
		return store_db_err(st, err, "listing");
	sqlite3_bind_text(s, 1, cursor ? cursor : "", -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(s, 2, limit > 0 ? limit : 100);
	return collect(st, e, s, 0, out, err);
}

/* The list filters each kind offers: query name -> SQL test on one bound
 * value (?1). Only these fixed texts reach the SQL; values are bound. */
typedef struct listfilter {
	ent_t e;
	const char *key, *test;
} listfilter_t;

static const listfilter_t listfilters[] = {
	{ ENT_APARTMENT, "building", "building = ?1" },
	{ ENT_PERSON, "apartment", "apartment = ?1" },
	{ ENT_PERSON, "building", "(building = ?1 OR home_building = ?1)" },
	{ ENT_PERSON, "kind", "kind = ?1" },
	{ ENT_DEVICE, "building", "building = ?1" },
	{ ENT_DEVICE, "apartment", "apartment = ?1" },
	{ ENT_DEVICE, "type", "type = CAST(?1 AS INTEGER)" },
	{ ENT_RELAY_BOARD, "building", "building = ?1" },
	{ ENT_RELAY_BOARD, "bus", "bus = ?1" },
	{ ENT_ACCESS_GROUP, "building", "building = ?1" },
	{ ENT_TEMP_KEY, "building", "building = ?1" },
	{ ENT_TEMP_KEY, "apartment", "apartment = ?1" },
	{ ENT_CREDENTIAL, "person", "person = ?1" },
	{ ENT_CREDENTIAL, "temp_key", "temp_key = ?1" },
	{ ENT_CREDENTIAL, "type", "type = ?1" },
};

const char *const ent_list_keys[] = { "building", "apartment", "person", "kind", "type", "temp_key", "bus", NULL };

int ent_list_where(store_t *st, ent_t e, const char *const *keys, const char *const *vals, int n,
		   const char *cursor, int limit, json_t **out, gh_err_t *err)
{
	if (n <= 0)
		return ent_list(st, e, cursor, limit, out, err);
	if (n > 8)
		return gh_err(err, 400, "invalid", "", "at most 8 filters");
	char sql[1024];
	int len = snprintf(sql, sizeof sql, "SELECT id, data FROM %s WHERE id > ?1", ent_info[e].table);
	for (int i = 0; i < n; i++) {
		const listfilter_t *f = NULL;
		for (size_t k = 0; k < sizeof listfilters / sizeof listfilters[0]; k++)
			if (listfilters[k].e == e && !strcmp(listfilters[k].key, keys[i]))
				f = &listfilters[k];
		if (!f)
			return gh_err(err, 400, "invalid", keys[i], "%s cannot be filtered by %s", ent_info[e].table,
				      keys[i]);
		/* the filter's ?1 becomes this value's own parameter */
		char num[8];
		snprintf(num, sizeof num, "?%d", i + 3);
		len += snprintf(sql + len, sizeof sql - (size_t)len, " AND ");
		for (const char *c = f->test; *c && (size_t)len < sizeof sql - 8; c++) {
			if (c[0] == '?' && c[1] == '1') {
				len += snprintf(sql + len, sizeof sql - (size_t)len, "%s", num);
				c++;
			} else {
				sql[len++] = *c;
				sql[len] = 0;
			}
		}
	}
	snprintf(sql + len, sizeof sql - (size_t)len, " ORDER BY id LIMIT ?2");
	sqlite3_stmt *s = NULL;
	if (sqlite3_prepare_v2(store_db(st), sql, -1, &s, NULL) != SQLITE_OK)
		return store_db_err(st, err, "listing");
	sqlite3_bind_text(s, 1, cursor ? cursor : "", -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(s, 2, limit > 0 ? limit : 100);
	for (int i = 0; i < n; i++)
		sqlite3_bind_text(s, i + 3, vals[i], -1, SQLITE_TRANSIENT);
	return collect(st, e, s, 1, out, err);
}

int audit_write(store_t *st, const char *actor, const char *action, ent_t e, const char *id,
		const json_t *before, const json_t *after)
{
	sqlite3_stmt *s = store_stmt(st, "INSERT INTO audit_logs(ts, actor, action, entity, eid, "
					 "before, after) VALUES (?, ?, ?, ?, ?, ?, ?)");
	if (!s)
		return -1;
	char *b = before ? jdump(before) : NULL, *a = after ? jdump(after) : NULL;
	sqlite3_bind_int64(s, 1, gh_now());
	sqlite3_bind_text(s, 2, actor ? actor : "system", -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, action, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 4, ent_name(e), -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 5, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 6, b, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 7, a, -1, SQLITE_TRANSIENT);
	int rc = sqlite3_step(s);
	sqlite3_reset(s);
	free(b);
	free(a);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* Local edits are journaled in order, to be replayed to the cloud. */
static int journal_write(store_t *st, const ent_ctx_t *ctx, ent_t e, const char *id,
			 const char *op, int64_t base_rev, const json_t *data)
{
	sqlite3_stmt *s = store_stmt(st, "INSERT INTO local_changes(change_id, entity, op, eid, "
					 "base_rev, data, actor, ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
	if (!s)
		return -1;
	char cid[40];
	gh_random_hex(cid, 16);
	char *d = data ? jdump(data) : NULL;
	sqlite3_bind_text(s, 1, cid, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 2, ent_name(e), -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, op, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 4, id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 5, base_rev);
	sqlite3_bind_text(s, 6, d, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 7, ctx->actor ? ctx->actor : "local", -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 8, gh_now());
	int rc = sqlite3_step(s);
	sqlite3_reset(s);
	free(d);
	return rc == SQLITE_DONE ? 0 : -1;
}

static int resolve_id(ent_t e, const char *id, const json_t *data, char *buf, size_t len,
		      gh_err_t *err)
{
	if (!id) {
		json_t *v = json_object_get(data, "id");
		if (v && !json_is_string(v))
			return gh_err(err, 422, "type", "id", "id must be a string");
		id = json_string_value(v);
	}
	if (e == ENT_SETTINGS) {
		if (id && strcmp(id, "site"))
			return gh_err(err, 422, "invalid", "id", "the settings id is \"site\"");
		id = "site";
	}
	if (e == ENT_MAC || e == ENT_DEVICE) {
		char mac[13];
		if (!id)
			return gh_err(err, 422, "required", "id", "id (the MAC) is required");
		if (mac_normalize(id, mac))
			return gh_err(err, 422, "invalid", "id",
				      "id must be a MAC of 12 hexadecimal digits, e.g. 0C11050B9814");
		snprintf(buf, len, "%s", mac);
		return 0;
	}
	if (!id) {
		char lid[32];
		gh_local_id(lid);
		snprintf(buf, len, "%s", lid);
		return 0;
	}
	if (!*id || strlen(id) > 64)
		return gh_err(err, 422, "invalid", "id", "id must be 1..64 bytes");
	for (const char *p = id; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == '/' || *p == '\\')
			return gh_err(err, 422, "invalid", "id",
				      "id must not contain control characters or slashes");
	snprintf(buf, len, "%s", id);
	return 0;
}

int ent_check(store_t *st, ent_t e, const char *id, const json_t *data, json_t **out,
	      gh_err_t *err)
{
	if (!json_is_object(data))
		return gh_err(err, 400, "malformed", "", "a %s must be a JSON object", ent_name(e));
	char idbuf[80];
	if (resolve_id(e, id, data, idbuf, sizeof idbuf, err))
		return -1;
	json_t *d = json_deep_copy(data);
	json_object_del(d, "id");
	vctx_t v = { .st = st, .e = e, .id = idbuf, .d = d, .err = err };
	if (validate_entity(&v)) {
		json_decref(d);
		return -1;
	}
	json_object_set_new(d, "id", json_string(idbuf));
	*out = d;
	return 0;
}

int ent_prepare(ent_t e, const char *id, json_t *data, gh_err_t *err)
{
	static const char *const ts_keys[] = { "valid_from", "valid_until", "expires_at" };
	if ((e != ENT_CREDENTIAL && e != ENT_PERSON && e != ENT_APARTMENT) || !json_is_object(data))
		return 0;
	for (size_t i = 0; i < sizeof ts_keys / sizeof ts_keys[0]; i++)
		if (json_is_string(json_object_get(data, ts_keys[i])))
			return 0; /* a local date-time: the site's time zone is the loop's */
	char idbuf[80];
	if (resolve_id(e, id, data, idbuf, sizeof idbuf, err))
		return -1;
	json_object_del(data, "id");
	json_object_del(data, "uses_left");
	vctx_t v = { .e = e, .id = idbuf, .d = data, .err = err, .phase = VPHASE_FIELDS };
	return validate_entity(&v) ? -1 : 1;
}

int ent_put(store_t *st, ent_t e, const char *id, const json_t *data, const ent_ctx_t *ctx,
	    json_t **out, gh_err_t *err)
{
	static const ent_ctx_t def_ctx = { .actor = "system" };
	if (!ctx)
		ctx = &def_ctx;
	if (!json_is_object(data))
		return gh_err(err, 400, "malformed", "", "a %s must be a JSON object", ent_name(e));
	char idbuf[80];
	if (resolve_id(e, id, data, idbuf, sizeof idbuf, err))
		return -1;
	int own = !ctx->in_caller_tx, wrote = 0;
	if (own && store_begin(st))
		return store_db_err(st, err, "begin");

	json_t *d = ctx->consume ? json_incref((json_t *)data) : json_deep_copy(data), *before = NULL;
	json_object_del(d, "id");
	json_object_del(d, "uses_left"); /* box-owned, never taken from outside */
	if (e == ENT_DEVICE) { /* what the web API shows of the device link */
		json_object_del(d, "online");
		json_object_del(d, "presence");
	}
	int64_t base_rev = 0;
	int rc = get_row(st, e, idbuf, &before, &base_rev);
	if (rc < 0) {
		store_db_err(st, err, "reading entity");
		goto fail;
	}
	vctx_t v = { .st = st, .e = e, .id = idbuf, .d = d, .err = err,
		     .lenient = ctx->lenient_refs, .bulk = ctx->bulk && store_bulk(st), .before = before,
		     .phase = ctx->prepared ? VPHASE_DB : VPHASE_ALL,
		     .json = ctx->prepared, .json_len = ctx->prepared_len };
	if (validate_entity(&v))
		goto fail;
	int64_t lrev = store_next_lrev(st);
	wrote = 1;
	if (rows_write(&v, ctx, lrev)) {
		store_db_err(st, err, "writing entity");
		goto fail;
	}
	if (ctx->local) {
		if (audit_write(st, ctx->actor, before ? "update" : "create", e, idbuf, before, d) ||
		    journal_write(st, ctx, e, idbuf, "upsert", base_rev, d)) {
			store_db_err(st, err, "writing audit log");
			goto fail;
		}
	}
	if (own && store_commit(st)) {
		store_db_err(st, err, "commit");
		goto fail_nobegin;
	}
	if (e == ENT_SETTINGS || e == ENT_DEVICE || e == ENT_RELAY_BOARD || e == ENT_ACCESS_GROUP)
		store_settings_touch(st); /* caches of settings, devices and groups reload */
	json_decref(before);
	if (out) {
		decorate(st, e, idbuf, d);
		*out = d;
	} else {
		json_decref(d);
	}
	return 0;
fail:
	if (own)
		store_rollback(st);
fail_nobegin:
	json_decref(before);
	json_decref(d);
	return !own && wrote ? -2 : -1;
}

static int tombstone(store_t *st, ent_t e, const char *id, int64_t lrev)
{
	sqlite3_stmt *s = store_stmt(st, "INSERT INTO tombstones(entity, id, lrev) VALUES (?, ?, ?) "
					 "ON CONFLICT(entity, id) DO UPDATE SET lrev = excluded.lrev");
	if (!s)
		return -1;
	sqlite3_bind_text(s, 1, ent_name(e), -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, lrev);
	int rc = sqlite3_step(s);
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* Tombstones for the rows a foreign-key cascade is about to remove, so
 * devices and the cloud link learn about them too. */
static int tombstone_dependants(store_t *st, ent_t e, const char *id, int64_t lrev)
{
	static const char *const q[] = {
		/* persons of an apartment, their credentials, the apartment's temp keys */
		"INSERT OR REPLACE INTO tombstones SELECT 'credential', c.id, ?2 FROM credentials c "
		"JOIN persons p ON p.id = c.person WHERE p.apartment = ?1",
		"INSERT OR REPLACE INTO tombstones SELECT 'person', id, ?2 FROM persons WHERE apartment = ?1",
		"INSERT OR REPLACE INTO tombstones SELECT 'temp_key', id, ?2 FROM temp_keys WHERE apartment = ?1",
		"INSERT OR REPLACE INTO tombstones SELECT 'credential', c.id, ?2 FROM credentials c "
		"JOIN temp_keys k ON k.id = c.temp_key WHERE k.apartment = ?1",
		/* a person's credentials */
		"INSERT OR REPLACE INTO tombstones SELECT 'credential', id, ?2 FROM credentials WHERE person = ?1",
		/* a temp key's credentials */
		"INSERT OR REPLACE INTO tombstones SELECT 'credential', id, ?2 FROM credentials WHERE temp_key = ?1",
		/* a building's apartments (then as apartments above) */
		"INSERT OR REPLACE INTO tombstones SELECT 'credential', c.id, ?2 FROM credentials c "
		"JOIN persons p ON p.id = c.person JOIN apartments a ON a.id = p.apartment WHERE a.building = ?1",
		"INSERT OR REPLACE INTO tombstones SELECT 'person', p.id, ?2 FROM persons p "
		"JOIN apartments a ON a.id = p.apartment WHERE a.building = ?1",
		"INSERT OR REPLACE INTO tombstones SELECT 'apartment', id, ?2 FROM apartments WHERE building = ?1",
		"INSERT OR REPLACE INTO tombstones SELECT 'temp_key', id, ?2 FROM temp_keys WHERE building = ?1 "
		"OR apartment IN (SELECT id FROM apartments WHERE building = ?1)",
		"INSERT OR REPLACE INTO tombstones SELECT 'credential', c.id, ?2 FROM credentials c "
		"JOIN temp_keys k ON k.id = c.temp_key WHERE k.building = ?1 OR k.apartment IN "
		"(SELECT id FROM apartments WHERE building = ?1)",
		"INSERT OR REPLACE INTO tombstones SELECT 'access_group', id, ?2 FROM access_groups WHERE building = ?1",
	};
	int from = 0, to = 0;
	switch (e) {
	case ENT_APARTMENT: from = 0; to = 4; break;
	case ENT_PERSON: from = 4; to = 5; break;
	case ENT_TEMP_KEY: from = 5; to = 6; break;
	case ENT_BUILDING: from = 6; to = 12; break;
	default: return 0;
	}
	for (int i = from; i < to; i++) {
		sqlite3_stmt *s = store_stmt(st, q[i]);
		if (!s)
			return -1;
		sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 2, lrev);
		int rc = sqlite3_step(s);
		sqlite3_reset(s);
		if (rc != SQLITE_DONE)
			return -1;
	}
	return 0;
}

int ent_delete(store_t *st, ent_t e, const char *id, const ent_ctx_t *ctx, gh_err_t *err)
{
	static const ent_ctx_t def_ctx = { .actor = "system" };
	if (!ctx)
		ctx = &def_ctx;
	char idbuf[80];
	if (e == ENT_SETTINGS)
		return gh_err(err, 422, "invalid", "id", "settings cannot be deleted");
	if (resolve_id(e, id, NULL, idbuf, sizeof idbuf, err))
		return -1;
	if (store_begin(st))
		return store_db_err(st, err, "begin");
	json_t *before = NULL;
	int64_t base_rev = 0;
	int rc = get_row(st, e, idbuf, &before, &base_rev);
	if (rc) {
		store_rollback(st);
		if (rc < 0)
			return store_db_err(st, err, "reading entity");
		return gh_err(err, 404, "not_found", "id", "no %s with id \"%s\"", ent_name(e), idbuf);
	}
	if (e == ENT_MAC) {
		int used = ent_exists(st, ENT_DEVICE, idbuf);
		if (used) {
			store_rollback(st);
			json_decref(before);
			return used < 0 ? store_db_err(st, err, "checking MAC")
					: gh_err(err, 409, "in_use", "id",
						 "MAC %s is bound to a device: remove the device first",
						 idbuf);
		}
	}
	int64_t lrev = store_next_lrev(st);
	if (tombstone_dependants(st, e, idbuf, lrev) || rows_delete_extra(st, e, idbuf, lrev)) {
		store_db_err(st, err, "deleting dependants");
		goto fail;
	}
	sqlite3_stmt *s = store_stmt(st, sql_delete[e]);
	if (!s)
		goto dbfail;
	sqlite3_bind_text(s, 1, idbuf, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc != SQLITE_DONE || tombstone(st, e, idbuf, lrev))
		goto dbfail;
	if (ctx->local &&
	    (audit_write(st, ctx->actor, "delete", e, idbuf, before, NULL) ||
	     journal_write(st, ctx, e, idbuf, "delete", base_rev, NULL)))
		goto dbfail;
	json_decref(before);
	if (store_commit(st))
		return store_db_err(st, err, "commit");
	if (e == ENT_DEVICE || e == ENT_RELAY_BOARD || e == ENT_ACCESS_GROUP)
		store_settings_touch(st); /* device relays changed */
	return 0;
dbfail:
	store_db_err(st, err, "deleting");
fail:
	json_decref(before);
	store_rollback(st);
	return -1;
}
