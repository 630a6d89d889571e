/* A first snapshot into an empty box: the credentials' lookup index built
 * once at its end (bulk.h). */
#include "bulk.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "log.h"
#include "settings.h"
#include "timeutil.h"

#define INDEX "credentials_lookup"

int bulk_begin(store_t *st, gh_err_t *err)
{
	sqlite3_stmt *s = store_stmt(st, "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = '" INDEX "'");
	if (!s)
		return store_db_err(st, err, "reading the lookup index");
	char *sql = NULL;
	if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0))
		sql = strdup((const char *)sqlite3_column_text(s, 0));
	sqlite3_reset(s);
	if (!sql)
		return 0; /* dropped already: a bulk load is open */
	int rc = store_kv_set(st, "bulk_index_sql", sql) ? store_db_err(st, err, "keeping the lookup index")
							: store_exec(st, "DROP INDEX " INDEX, err);
	free(sql);
	if (rc)
		return -1;
	store_set_bulk(st, 1);
	log_info("bulk", "first snapshot into an empty box: the credentials' lookup index is built at its end");
	return 0;
}

/* The rows of SQL (one text column, ?1 bound to ARG when given), as an
 * array: what is changed next must not be read while it changes. */
static json_t *column(store_t *st, const char *sql, const char *arg)
{
	sqlite3_stmt *s = store_stmt(st, sql);
	json_t *a = s ? json_array() : NULL;
	if (!a)
		return NULL;
	if (arg)
		sqlite3_bind_text(s, 1, arg, -1, SQLITE_STATIC);
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		json_array_append_new(a, json_string((const char *)sqlite3_column_text(s, 0)));
	sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		json_decref(a);
		return NULL;
	}
	return a;
}

/* Entity ID deleted and put again, as the cloud gave it: the validator
 * refuses it now if it is a duplicate (or one too many). 1 refused. A temp
 * key refused takes its credentials with it (a cascade): they are put
 * again after it, and refused as they would have been, for want of it. */
static int put_again(store_t *st, ent_t e, const char *id, bulk_refused_fn refused, void *ctx, gh_err_t *err)
{
	sqlite3_stmt *s = store_stmt(st, e == ENT_TEMP_KEY ? "SELECT data, rev FROM temp_keys WHERE id = ?"
							   : "SELECT data, rev FROM credentials WHERE id = ?");
	if (!s)
		return store_db_err(st, err, "reading a duplicate");
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	if (sqlite3_step(s) != SQLITE_ROW) {
		sqlite3_reset(s);
		return 0;
	}
	char *data = strdup((const char *)sqlite3_column_text(s, 0));
	int64_t rev = sqlite3_column_int64(s, 1);
	sqlite3_reset(s);
	json_t *owned = e == ENT_TEMP_KEY ? column(st, "SELECT id FROM credentials WHERE temp_key = ?1 ORDER BY lrev", id)
					  : json_array();
	json_t *d = data ? json_loads(data, 0, NULL) : NULL;
	ent_ctx_t c = { .actor = "cloud", .rev = rev, .lenient_refs = 1 };
	gh_err_t why = { 0 };
	int rc = 0;
	if (!d || !owned) {
		rc = gh_err(err, 500, "database", "", "a duplicate's stored JSON is unreadable");
	} else {
		/* the credentials first (read before the cascade takes them) */
		json_t *creds = json_array();
		size_t i;
		json_t *cid;
		json_array_foreach(owned, i, cid) {
			sqlite3_stmt *q = store_stmt(st, "SELECT json_array(id, rev, data) FROM credentials WHERE id = ?");
			if (!q)
				break;
			sqlite3_bind_text(q, 1, json_string_value(cid), -1, SQLITE_STATIC);
			if (sqlite3_step(q) == SQLITE_ROW)
				json_array_append_new(creds, json_loads((const char *)sqlite3_column_text(q, 0), 0, NULL));
			sqlite3_reset(q);
		}
		if (ent_delete(st, e, id, &c, err)) {
			rc = -1;
		} else if (ent_put(st, e, id, d, &c, NULL, &why)) {
			if (refused)
				refused(ctx, e, id, rev, data, &why);
			rc = 1;
			json_t *cr;
			json_array_foreach(creds, i, cr) {
				const char *crid = json_string_value(json_array_get(cr, 0));
				json_t *cd = json_loads(json_string_value(json_array_get(cr, 2)), 0, NULL);
				ent_ctx_t cc = c;
				cc.rev = json_integer_value(json_array_get(cr, 1));
				gh_err_t cwhy = { 0 };
				if (crid && cd && ent_put(st, ENT_CREDENTIAL, crid, cd, &cc, NULL, &cwhy) && refused) {
					char *ct = json_dumps(cd, JSON_COMPACT);
					refused(ctx, ENT_CREDENTIAL, crid, cc.rev, ct ? ct : "{}", &cwhy);
					free(ct);
				}
				json_decref(cd);
			}
		}
		json_decref(creds);
	}
	json_decref(owned);
	json_decref(d);
	free(data);
	return rc;
}

/* Of each group (JSON text [..., KEEP]) the credentials IDS_SQL lists (?1:
 * the group) in the order they were applied (lrev): all but the first KEEP
 * are put again. The number refused, or -1. */
static int refuse_beyond(store_t *st, json_t *groups, const char *ids_sql, bulk_refused_fn refused, void *ctx,
			 gh_err_t *err)
{
	int n = 0;
	size_t i, k;
	json_t *g, *id;
	json_array_foreach(groups, i, g) {
		json_t *gj = json_loads(json_string_value(g), 0, NULL);
		size_t keep = (size_t)json_integer_value(json_array_get(gj, json_array_size(gj) - 1));
		json_decref(gj);
		json_t *ids = column(st, ids_sql, json_string_value(g));
		if (!ids)
			return store_db_err(st, err, "reading the credentials of a code held twice");
		json_array_foreach(ids, k, id) {
			int r = k >= keep ? put_again(st, ENT_CREDENTIAL, json_string_value(id), refused, ctx, err) : 0;
			if (r < 0) {
				json_decref(ids);
				return -1;
			}
			n += r;
		}
		json_decref(ids);
	}
	return n;
}

int bulk_end(store_t *st, bulk_refused_fn refused, void *ctx, gh_err_t *err)
{
	char *sql = NULL;
	sqlite3_stmt *s = store_stmt(st, "SELECT value FROM sync_state WHERE key = 'bulk_index_sql'");
	if (!s)
		return store_db_err(st, err, "reading the lookup index");
	if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0) && sqlite3_column_bytes(s, 0))
		sql = strdup((const char *)sqlite3_column_text(s, 0));
	sqlite3_reset(s);
	if (!sql) {
		store_set_bulk(st, 0);
		return 0;
	}
	uint64_t t0 = gh_mono_ms();
	/* the sort: with temporary files in memory SQLite sorts it all in
	 * memory (1M credentials: ~80 MB); on the disk it keeps a page cache */
	store_exec(st, "PRAGMA temp_store = FILE", NULL);
	int rc = store_exec(st, sql, err);
	store_exec(st, "PRAGMA temp_store = MEMORY", NULL);
	free(sql);
	if (rc || store_kv_set(st, "bulk_index_sql", ""))
		return rc ? -1 : store_db_err(st, err, "keeping the lookup index");
	/* from here a rollback makes it 1 again (store_rollback reads it back) */
	store_set_bulk(st, 0);
	uint64_t t1 = gh_mono_ms();
	/* codes held twice: all but the first applied are put again */
	json_t *groups = column(st, "SELECT json_array(type, code, scope, 1) FROM credentials "
				    "GROUP BY type, code, scope HAVING count(*) > 1", NULL);
	int n = groups ? refuse_beyond(st, groups, "SELECT id FROM credentials WHERE type = ?1 ->> 0 AND "
						    "code = ?1 ->> 1 AND scope = ?1 ->> 2 ORDER BY lrev",
					refused, ctx, err)
		       : store_db_err(st, err, "finding codes held twice");
	json_decref(groups);
	/* a person's UHF cards and plates past the manuals' limits, once the
	 * duplicates are gone (in order those would not have counted) */
	char limits[32];
	snprintf(limits, sizeof limits, "[%d,%d]", ENT_MAX_UHF, ENT_MAX_PLATES);
	groups = n < 0 ? NULL : column(st, "SELECT json_array(person, type, CASE type WHEN 'uhf' THEN ?1 ->> 0 "
					   "ELSE ?1 ->> 1 END) FROM credentials WHERE type IN ('uhf', 'plate') AND "
					   "person IS NOT NULL GROUP BY person, type HAVING count(*) > CASE type "
					   "WHEN 'uhf' THEN ?1 ->> 0 ELSE ?1 ->> 1 END", limits);
	int m = n < 0 ? -1 : groups ? refuse_beyond(st, groups, "SELECT id FROM credentials WHERE person = ?1 ->> 0 "
								"AND type = ?1 ->> 1 ORDER BY lrev",
						       refused, ctx, err)
				    : store_db_err(st, err, "counting UHF cards and plates");
	json_decref(groups);
	/* temp keys whose PIN an earlier credential holds (site-wide, or in
	 * the temp key's apartment in APT+PIN mode) */
	const settings_t *set = settings_get(st);
	json_t *keys = m < 0 ? NULL : column(st, "SELECT t.id FROM temp_keys t WHERE t.code IS NOT NULL AND EXISTS ("
						 "SELECT 1 FROM credentials c WHERE c.type = 'pin' AND c.code = t.code "
						 "AND c.lrev < t.lrev AND c.scope = CASE WHEN ?1 = '1' AND t.apartment "
						 "IS NOT NULL THEN t.apartment ELSE '' END) ORDER BY t.lrev",
					     set && set->apt_pin ? "1" : "0");
	if (m < 0 || !keys) {
		json_decref(keys);
		return m < 0 ? -1 : store_db_err(st, err, "finding temp keys");
	}
	size_t i;
	json_t *id;
	json_array_foreach(keys, i, id) {
		int r = put_again(st, ENT_TEMP_KEY, json_string_value(id), refused, ctx, err);
		if (r < 0) {
			json_decref(keys);
			return -1;
		}
		n += r;
	}
	json_decref(keys);
	log_info("bulk", "lookup index built in %llu ms; %d duplicate codes and %d credentials past a person's "
			 "limit refused (%llu ms)",
		 (unsigned long long)(t1 - t0), n, m, (unsigned long long)(gh_mono_ms() - t1));
	return 0;
}
