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

/* The lookup index's SQL (*SQL, to free), NULL when it does not exist. */
static int index_sql(store_t *st, char **sql, gh_err_t *err)
{
	sqlite3_stmt *s = store_stmt(st, "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = '" INDEX "'");
	if (!s)
		return store_db_err(st, err, "reading the lookup index");
	*sql = sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0)
		       ? strdup((const char *)sqlite3_column_text(s, 0)) : NULL;
	sqlite3_reset(s);
	return 0;
}

int bulk_begin(store_t *st, gh_err_t *err)
{
	char *sql;
	if (index_sql(st, &sql, err))
		return -1;
	if (!sql)
		return 0; /* dropped already: a bulk load is open */
	if (store_begin(st)) {
		free(sql);
		return store_db_err(st, err, "begin");
	}
	/* both or neither: the SQL kept and the index dropped */
	int rc = store_kv_set(st, "bulk_index_sql", sql) ? store_db_err(st, err, "keeping the lookup index")
							  : store_exec(st, "DROP INDEX " INDEX, err);
	free(sql);
	if (rc) {
		store_rollback(st); /* store_bulk read back: 0 */
		return -1;
	}
	if (store_commit(st))
		return store_db_err(st, err, "dropping the lookup index");
	store_set_bulk(st, 1);
	log_info("bulk", "first snapshot into an empty box: the credentials' lookup index is built at its end");
	return 0;
}

/* The entities whose fate, applied in order, depends on one another's:
 * credentials sharing a code, a person's UHF cards or plates past the limit,
 * temp keys whose PIN an earlier credential holds, and those keys'
 * credentials; each [kind, id, rev, data], in the order applied (lrev). */
static json_t *entangled(store_t *st, int apt_pin)
{
	char arg[48];
	snprintf(arg, sizeof arg, "[%d,%d,%d]", ENT_MAX_UHF, ENT_MAX_PLATES, apt_pin);
	sqlite3_stmt *s = store_stmt(st,
		"WITH dup AS (SELECT type, code, scope FROM credentials GROUP BY type, code, scope HAVING count(*) > 1), "
		"over AS (SELECT person, type FROM credentials WHERE type IN ('uhf', 'plate') AND person IS NOT NULL "
		"  GROUP BY person, type HAVING count(*) > CASE type WHEN 'uhf' THEN ?1 ->> 0 ELSE ?1 ->> 1 END), "
		"keys AS (SELECT t.id FROM temp_keys t WHERE t.code IS NOT NULL AND EXISTS (SELECT 1 FROM credentials c "
		"  WHERE c.type = 'pin' AND c.code = t.code AND c.lrev < t.lrev AND c.scope = CASE WHEN ?1 ->> 2 "
		"  AND t.apartment IS NOT NULL THEN t.apartment ELSE '' END)) "
		"SELECT 'credential', c.id, c.rev, c.data, c.lrev FROM dup JOIN credentials c USING (type, code, scope) "
		"UNION SELECT 'credential', c.id, c.rev, c.data, c.lrev FROM over JOIN credentials c USING (person, type) "
		"UNION SELECT 'credential', c.id, c.rev, c.data, c.lrev FROM keys JOIN credentials c ON c.temp_key = keys.id "
		"UNION SELECT 'temp_key', t.id, t.rev, t.data, t.lrev FROM keys JOIN temp_keys t USING (id) ORDER BY 5");
	json_t *a = s ? json_array() : NULL;
	if (!a)
		return NULL;
	sqlite3_bind_text(s, 1, arg, -1, SQLITE_TRANSIENT);
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		json_array_append_new(a, json_pack("[s,s,I,s]", (const char *)sqlite3_column_text(s, 0),
						   (const char *)sqlite3_column_text(s, 1), sqlite3_column_int64(s, 2),
						   (const char *)sqlite3_column_text(s, 3)));
	sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		json_decref(a);
		return NULL;
	}
	return a;
}

/* ENTITIES deleted, then put again one by one in the order they were
 * applied, the index there: the validator refuses what it would have
 * refused in order, with the same message. The number refused, or -1. */
static int replay(store_t *st, json_t *entities, bulk_refused_fn refused, void *ctx, gh_err_t *err)
{
	size_t i;
	json_t *e;
	json_array_foreach(entities, i, e) {
		ent_ctx_t c = { .actor = "cloud", .rev = json_integer_value(json_array_get(e, 2)), .lenient_refs = 1 };
		int kind = ent_parse(json_string_value(json_array_get(e, 0)));
		gh_err_t why = { 0 };
		/* a temp key's credentials go with it: 404 */
		if (ent_delete(st, (ent_t)kind, json_string_value(json_array_get(e, 1)), &c, &why) && why.status != 404) {
			*err = why;
			return -1;
		}
	}
	int n = 0;
	json_array_foreach(entities, i, e) {
		ent_ctx_t c = { .actor = "cloud", .rev = json_integer_value(json_array_get(e, 2)), .lenient_refs = 1 };
		ent_t kind = (ent_t)ent_parse(json_string_value(json_array_get(e, 0)));
		const char *id = json_string_value(json_array_get(e, 1)), *data = json_string_value(json_array_get(e, 3));
		json_t *d = json_loads(data, 0, NULL);
		gh_err_t why = { 0 };
		int rc = d ? ent_put(st, kind, id, d, &c, NULL, &why) : -1;
		json_decref(d);
		if (rc && (!d || why.status >= 500)) {
			if (d)
				*err = why;
			else
				gh_err(err, 500, "database", "", "%s %s: its stored JSON is unreadable", ent_name(kind), id);
			return -1;
		}
		if (rc) {
			if (refused)
				refused(ctx, kind, id, c.rev, data, &why);
			n++;
		}
	}
	return n;
}

int bulk_end(store_t *st, bulk_refused_fn refused, void *ctx, gh_err_t *err)
{
	char sql[1024], *have;
	if (store_kv_get(st, "bulk_index_sql", sql, sizeof sql) || !sql[0]) {
		store_set_bulk(st, 0);
		return 0;
	}
	const settings_t *set = settings_get(st);
	if (!set)
		return store_db_err(st, err, "reading settings");
	if (index_sql(st, &have, err))
		return -1;
	uint64_t t0 = gh_mono_ms();
	/* the sort: with temporary files in memory SQLite sorts it all in
	 * memory (1M credentials: ~80 MB); on the disk it keeps a page cache.
	 * An index that exists (never dropped) only has its SQL forgotten. */
	int rc = 0;
	if (!have) {
		store_exec(st, "PRAGMA temp_store = FILE", NULL);
		rc = store_exec(st, sql, err);
		store_exec(st, "PRAGMA temp_store = MEMORY", NULL);
	}
	free(have);
	if (rc || store_kv_set(st, "bulk_index_sql", ""))
		return rc ? -1 : store_db_err(st, err, "keeping the lookup index");
	/* from here a rollback makes it 1 again (store_rollback reads it back) */
	store_set_bulk(st, 0);
	uint64_t t1 = gh_mono_ms();
	json_t *ents = entangled(st, set->apt_pin);
	int n = ents ? replay(st, ents, refused, ctx, err) : store_db_err(st, err, "finding codes held twice");
	if (n >= 0)
		log_info("bulk", "lookup index built in %llu ms; %zu entities put again in order, %d refused (%llu ms)",
			 (unsigned long long)(t1 - t0), json_array_size(ents), n,
			 (unsigned long long)(gh_mono_ms() - t1));
	json_decref(ents);
	return n < 0 ? -1 : 0;
}
