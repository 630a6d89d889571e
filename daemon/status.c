#include "status.h"

#include <stdlib.h>

#include "entity.h"

static int64_t count(store_t *st, const char *sql)
{
	sqlite3_stmt *s = store_stmt(st, sql);
	if (!s || sqlite3_step(s) != SQLITE_ROW)
		return -1;
	int64_t n = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	return n;
}

json_t *status_json(store_t *st, int64_t uptime, const char *wan)
{
	char rev[32];
	if (store_kv_get(st, "rev", rev, sizeof rev))
		rev[0] = '0', rev[1] = '\0';
	json_t *o = json_pack("{s:s,s:s,s:I,s:{s:I,s:I},s:[],s:I,s:i}", "version", GH_VERSION, "wan",
			      wan, "rev", (json_int_t)strtoll(rev, NULL, 10), "devices", "online",
			      (json_int_t)count(st, "SELECT count(*) FROM presence p JOIN devices d ON "
						    "d.id = p.device WHERE p.online = 1"),
			      "total", (json_int_t)ent_count(st, ENT_DEVICE), "boards", "outbox",
			      (json_int_t)count(st, "SELECT count(*) FROM outbox WHERE state = 'pending'"),
			      "schema", store_schema_version(st));
	json_object_set_new(o, "emergency",
			    json_boolean(count(st, "SELECT json_extract(value, '$.on') FROM sync_state "
						   "WHERE key = 'emergency'") == 1));
	if (uptime >= 0)
		json_object_set_new(o, "uptime", json_integer(uptime));
	json_t *c = json_object();
	for (int e = 0; e < ENT__COUNT; e++)
		if (e != ENT_SETTINGS)
			json_object_set_new(c, ent_plural((ent_t)e), json_integer(ent_count(st, (ent_t)e)));
	json_object_set_new(o, "counts", c);
	return o;
}
