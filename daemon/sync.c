/* sync.pull (MQTT.md): what a device must hold to decide on its own —
 * the credentials of the people allowed on its relays (only of the types
 * its relays accept; a plate is left out when its holder has a UHF card),
 * the temp keys valid on it, and the directory (contacts) of the apartments
 * it serves — sent as deltas against what it was sent before. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "entity_int.h"
#include "jutil.h"
#include "log.h"
#include "reqs.h"
#include "timeutil.h"

#define PAGE 500

static uint64_t fnv(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static const char *col(sqlite3_stmt *s, int i)
{
	const unsigned char *t = sqlite3_column_text(s, i);
	return t ? (const char *)t : NULL;
}

/* credential types the device's relays accept (bit = index in gh_methods) */
static int64_t accepted_methods(store_t *st, const char *mac)
{
	sqlite3_stmt *s = store_stmt(st, "SELECT methods FROM device_relays WHERE device = ?");
	if (!s)
		return 0;
	sqlite3_bind_text(s, 1, mac, -1, SQLITE_STATIC);
	int64_t mask = 0;
	int any = 0;
	while (sqlite3_step(s) == SQLITE_ROW) {
		int64_t m = sqlite3_column_int64(s, 0);
		mask |= m ? m : ~(int64_t)0;
		any = 1;
	}
	sqlite3_reset(s);
	return any ? mask : 0;
}

static int accepts(int64_t mask, const char *type)
{
	int k = method_index(type);
	return k >= 0 && ((mask >> k) & 1);
}

/* current items as an object: item key -> JSON */
static json_t *current_items(store_t *st, const char *mac)
{
	json_t *items = json_object();
	int64_t mask = accepted_methods(st, mac);
	int64_t now = gh_now();
	if (mask) {
		sqlite3_stmt *s = store_stmt(st,
			"WITH grps(grp) AS (SELECT DISTINCT grp FROM group_relays WHERE tkind = 'd' AND tid = ?1), "
			"people(pid) AS ("
			" SELECT member FROM group_members WHERE mkind = 'p' AND grp IN grps"
			" UNION SELECT p.id FROM persons p JOIN group_members m ON m.mkind = 'a' AND "
			"   m.member = p.apartment WHERE m.grp IN grps"
			" UNION SELECT p.id FROM persons p WHERE p.home_building IN (SELECT member FROM "
			"   group_members WHERE mkind = 'b' AND grp IN grps)"
			" UNION SELECT p.id FROM persons p WHERE p.apartment IS NOT NULL AND p.home_building IN "
			"   (SELECT building FROM access_groups WHERE id IN grps AND building IS NOT NULL)"
			" UNION SELECT p.id FROM persons p JOIN devices d ON d.id = ?1 AND d.area = 'apartment' "
			"   AND p.apartment = d.apartment) "
			"SELECT c.id, c.type, c.code, c.person, c.valid_from, c.valid_until, p.first_name, "
			"p.last_name, a.apt, EXISTS (SELECT 1 FROM credentials u WHERE u.person = c.person "
			"AND u.type = 'uhf') FROM people JOIN persons p ON p.id = people.pid AND p.active = 1 "
			"AND (p.expires_at IS NULL OR p.expires_at > ?2) JOIN credentials c ON c.person = p.id "
			"LEFT JOIN apartments a ON a.id = p.apartment "
			"WHERE c.valid_until IS NULL OR c.valid_until > ?2");
		if (s) {
			sqlite3_bind_text(s, 1, mac, -1, SQLITE_STATIC);
			sqlite3_bind_int64(s, 2, now);
			while (sqlite3_step(s) == SQLITE_ROW) {
				const char *type = col(s, 1);
				if (!accepts(mask, type) || (!strcmp(type, "plate") && sqlite3_column_int(s, 9)))
					continue;
				json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s}", "kind", "credential", "id", col(s, 0),
						      "type", type, "code", col(s, 2), "person", col(s, 3));
				char name[160];
				snprintf(name, sizeof name, "%s%s%s", col(s, 6) ? col(s, 6) : "",
					 col(s, 7) && *col(s, 7) ? " " : "", col(s, 7) ? col(s, 7) : "");
				json_object_set_new(o, "name", json_string(name));
				if (col(s, 8))
					json_object_set_new(o, "apt", json_string(col(s, 8)));
				if (sqlite3_column_type(s, 4) != SQLITE_NULL)
					json_object_set_new(o, "valid_from", json_integer(sqlite3_column_int64(s, 4)));
				if (sqlite3_column_type(s, 5) != SQLITE_NULL)
					json_object_set_new(o, "valid_until", json_integer(sqlite3_column_int64(s, 5)));
				char key[96];
				snprintf(key, sizeof key, "credential:%s", col(s, 0));
				json_object_set_new(items, key, o);
			}
			sqlite3_reset(s);
		}
		/* temp keys valid on this device */
		s = store_stmt(st, "SELECT k.id, k.code, k.qr, json_extract(k.data, '$.schedule'), "
				   "json_extract(k.data, '$.visitor'), k.uses_total - k.uses_used FROM temp_keys k "
				   "WHERE (k.end_ts IS NULL OR k.end_ts > ?2) AND (EXISTS (SELECT 1 FROM "
				   "temp_key_devices t WHERE t.key = k.id AND t.device = ?1) OR EXISTS (SELECT 1 "
				   "FROM temp_key_relays r WHERE r.key = k.id AND r.tkind = 'd' AND r.tid = ?1))");
		if (s) {
			sqlite3_bind_text(s, 1, mac, -1, SQLITE_STATIC);
			sqlite3_bind_int64(s, 2, now);
			while (sqlite3_step(s) == SQLITE_ROW) {
				json_t *o = json_pack("{s:s,s:s}", "kind", "temp_key", "id", col(s, 0));
				if (col(s, 1) && accepts(mask, "pin"))
					json_object_set_new(o, "code", json_string(col(s, 1)));
				if (col(s, 2))
					json_object_set_new(o, "qr", json_string(col(s, 2)));
				if (col(s, 3))
					json_object_set_new(o, "schedule", json_loads(col(s, 3), 0, NULL));
				if (col(s, 4))
					json_object_set_new(o, "visitor", json_string(col(s, 4)));
				if (sqlite3_column_type(s, 5) != SQLITE_NULL)
					json_object_set_new(o, "uses_left", json_integer(sqlite3_column_int64(s, 5)));
				char key[96];
				snprintf(key, sizeof key, "temp_key:%s", col(s, 0));
				json_object_set_new(items, key, o);
			}
			sqlite3_reset(s);
		}
	}
	/* the directory: apartments of the buildings it serves */
	sqlite3_stmt *s = store_stmt(st,
		"SELECT a.id, a.apt, json_extract(a.data, '$.name'), a.building FROM devices d "
		"JOIN apartments a ON (d.building IS NOT NULL AND a.building = d.building) OR "
		"(d.building IS NULL AND d.area = 'site' AND (json_extract(d.data, '$.serves') = 'all' OR "
		"EXISTS (SELECT 1 FROM json_each(d.data, '$.serves') j WHERE j.value = a.building))) "
		"WHERE d.id = ? AND d.type IN (0, 1, 3, 50)");
	if (s) {
		sqlite3_bind_text(s, 1, mac, -1, SQLITE_STATIC);
		while (sqlite3_step(s) == SQLITE_ROW) {
			json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s}", "kind", "contact", "id", col(s, 0), "apt",
					      col(s, 1), "name", col(s, 2) ? col(s, 2) : "", "building", col(s, 3));
			char key[96];
			snprintf(key, sizeof key, "contact:%s", col(s, 0));
			json_object_set_new(items, key, o);
		}
		sqlite3_reset(s);
	}
	return items;
}

json_t *reqs_sync_pull(store_t *st, const char *mac, const json_t *req)
{
	const char *rid = json_string_value(json_object_get(req, "rid"));
	json_t *rv = json_object_get(req, "rev");
	if (rv && !json_is_null(rv) && (!json_is_integer(rv) || json_integer_value(rv) < 0))
		return reqs_error(rid, "bad_request", "rev must be a non-negative integer");
	int64_t have = rv ? json_integer_value(rv) : 0;
	int64_t cur = 0;
	sqlite3_stmt *s = store_stmt(st, "SELECT rev FROM device_sync_rev WHERE device = ?");
	if (!s)
		return reqs_error(rid, "internal", "database error");
	sqlite3_bind_text(s, 1, mac, -1, SQLITE_STATIC);
	if (sqlite3_step(s) == SQLITE_ROW)
		cur = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	/* a device that holds nothing, or not what we last sent (a lost
	 * response), starts over */
	int full = have == 0 || have != cur;
	if (full) {
		s = store_stmt(st, "DELETE FROM device_sync WHERE device = ?");
		if (!s)
			return reqs_error(rid, "internal", "database error");
		sqlite3_bind_text(s, 1, mac, -1, SQLITE_STATIC);
		sqlite3_step(s);
		sqlite3_reset(s);
	}
	json_t *items = current_items(st, mac);
	json_t *upserts = json_array(), *deletes = json_array();
	int64_t next = cur + 1;
	int more = 0, n = 0;

	/* what went away */
	json_t *sent = json_object();
	s = store_stmt(st, "SELECT item, hash FROM device_sync WHERE device = ?");
	if (s) {
		sqlite3_bind_text(s, 1, mac, -1, SQLITE_STATIC);
		while (sqlite3_step(s) == SQLITE_ROW)
			json_object_set_new(sent, col(s, 0), json_integer(sqlite3_column_int64(s, 1)));
		sqlite3_reset(s);
	}
	const char *key;
	json_t *v;
	json_object_foreach(sent, key, v) {
		if (json_object_get(items, key))
			continue;
		if (n == PAGE) {
			more = 1;
			break;
		}
		json_array_append_new(deletes, json_string(strchr(key, ':') + 1));
		s = store_stmt(st, "DELETE FROM device_sync WHERE device = ? AND item = ?");
		if (s) {
			sqlite3_bind_text(s, 1, mac, -1, SQLITE_STATIC);
			sqlite3_bind_text(s, 2, key, -1, SQLITE_STATIC);
			sqlite3_step(s);
			sqlite3_reset(s);
		}
		n++;
	}
	/* what is new or changed */
	json_object_foreach(items, key, v) {
		char *txt = jdump(v);
		int64_t h = (int64_t)(fnv(txt) >> 1);
		free(txt);
		json_t *old = json_object_get(sent, key);
		if (old && json_integer_value(old) == h)
			continue;
		if (n == PAGE) {
			more = 1;
			break;
		}
		json_array_append(upserts, v);
		s = store_stmt(st, "INSERT INTO device_sync(device, item, hash, rev) VALUES (?1, ?2, ?3, ?4) "
				   "ON CONFLICT(device, item) DO UPDATE SET hash = ?3, rev = ?4");
		if (s) {
			sqlite3_bind_text(s, 1, mac, -1, SQLITE_STATIC);
			sqlite3_bind_text(s, 2, key, -1, SQLITE_STATIC);
			sqlite3_bind_int64(s, 3, h);
			sqlite3_bind_int64(s, 4, next);
			sqlite3_step(s);
			sqlite3_reset(s);
		}
		n++;
	}
	json_decref(sent);
	json_decref(items);
	s = store_stmt(st, "INSERT INTO device_sync_rev(device, rev) VALUES (?1, ?2) "
			   "ON CONFLICT(device) DO UPDATE SET rev = ?2");
	if (s) {
		sqlite3_bind_text(s, 1, mac, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 2, next);
		sqlite3_step(s);
		sqlite3_reset(s);
	}
	json_t *resp = json_pack("{s:b,s:I,s:b,s:o,s:o,s:b}", "ok", 1, "rev", (json_int_t)next, "full", full,
				 "upserts", upserts, "deletes", deletes, "more", more);
	if (rid)
		json_object_set_new(resp, "rid", json_string(rid));
	return resp;
}
