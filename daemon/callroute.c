/* call.route (MQTT.md): where a door phone's call to an apartment (or to
 * the guard) goes when the box decides, e.g. for doorphone-offline call
 * transfer. The order comes from the apartment's contact preference: a
 * sequence of target sets, or else the call type of the import template
 * (0 app + monitors, 1 landline + monitors, 2 app + monitors then landline,
 * 3 monitors then app, 4 monitors then landline, 5 monitors, app, landline).
 * Offline monitors and guard phones are left out, apps too while the WAN is
 * not up. */
#include <stdio.h>
#include <string.h>

#include "reqs.h"
#include "store.h"

enum { T_APPS, T_MONITORS, T_LANDLINES };

static const int call_type_stages[6][3][3] = {
	/* -1 ends a stage's list */
	{ { T_APPS, T_MONITORS, -1 }, { -1 }, { -1 } },
	{ { T_LANDLINES, T_MONITORS, -1 }, { -1 }, { -1 } },
	{ { T_APPS, T_MONITORS, -1 }, { T_LANDLINES, -1 }, { -1 } },
	{ { T_MONITORS, -1 }, { T_APPS, -1 }, { -1 } },
	{ { T_MONITORS, -1 }, { T_LANDLINES, -1 }, { -1 } },
	{ { T_MONITORS, -1 }, { T_APPS, -1 }, { T_LANDLINES, -1 } },
};

static const char *col(sqlite3_stmt *s, int i)
{
	const unsigned char *t = sqlite3_column_text(s, i);
	return t ? (const char *)t : NULL;
}

/* Monitors (type 2 in the apartment) or guard phones (type 3), online only. */
static void add_devices(store_t *st, json_t *out, int type, const char *apt, int stage)
{
	sqlite3_stmt *s = store_stmt(st, "SELECT d.id, COALESCE(p.ip, json_extract(d.data, '$.ip')) FROM devices d "
					 "JOIN presence p ON p.device = d.id AND p.online = 1 "
					 "WHERE d.type = ?1 AND (?2 IS NULL OR d.apartment = ?2) ORDER BY d.id");
	if (!s)
		return;
	sqlite3_bind_int(s, 1, type);
	if (apt)
		sqlite3_bind_text(s, 2, apt, -1, SQLITE_STATIC);
	while (sqlite3_step(s) == SQLITE_ROW) {
		json_t *t = json_pack("{s:s,s:s,s:b,s:i}", "kind", type == 2 ? "indoor_monitor" : "guard_phone",
				      "mac", col(s, 0), "online", 1, "stage", stage);
		if (col(s, 1))
			json_object_set_new(t, "ip", json_string(col(s, 1)));
		json_array_append_new(out, t);
	}
	sqlite3_reset(s);
}

/* The apartment's app accounts (master first) or landlines. */
static void add_people(store_t *st, json_t *out, int what, const char *apt, int stage)
{
	sqlite3_stmt *s = store_stmt(st, "SELECT json_extract(data, '$.app_account'), json_extract(data, '$.landlines') "
					 "FROM persons WHERE apartment = ? AND active = 1 "
					 "ORDER BY kind = 'family', id");
	if (!s)
		return;
	sqlite3_bind_text(s, 1, apt, -1, SQLITE_STATIC);
	while (sqlite3_step(s) == SQLITE_ROW) {
		if (what == T_APPS && col(s, 0) && *col(s, 0)) {
			json_array_append_new(out, json_pack("{s:s,s:s,s:b,s:i}", "kind", "app", "account",
							     col(s, 0), "online", 1, "stage", stage));
		} else if (what == T_LANDLINES && col(s, 1)) {
			json_t *ll = json_loads(col(s, 1), 0, NULL);
			size_t i;
			json_t *n;
			json_array_foreach(ll, i, n) if (json_string_length(n))
				json_array_append_new(out, json_pack("{s:s,s:O,s:b,s:i}", "kind", "landline", "number",
								     n, "online", 1, "stage", stage));
			json_decref(ll);
		}
	}
	sqlite3_reset(s);
}

json_t *reqs_call_route(store_t *st, const char *caller, const json_t *req, const char *wan)
{
	const char *rid = json_string_value(json_object_get(req, "rid"));
	const char *to = json_string_value(json_object_get(req, "to"));
	if (!to || !*to || strlen(to) > 16)
		return reqs_error(rid, "bad_request", "call.route needs to (an APT number or \"guard\")");
	json_t *targets = json_array();
	json_t *resp = json_pack("{s:b}", "ok", 1);
	if (rid)
		json_object_set_new(resp, "rid", json_string(rid));
	if (!strcmp(to, "guard")) {
		add_devices(st, targets, 3, NULL, 0);
		json_object_set_new(resp, "mode", json_string("group"));
		json_object_set_new(resp, "targets", targets);
		return resp;
	}

	/* the APT in the caller's building, or in the buildings it serves */
	sqlite3_stmt *s = store_stmt(st,
		"SELECT a.id, json_extract(a.data, '$.contact'), json_extract(a.data, '$.call_type'), "
		"d.internet FROM devices d JOIN apartments a ON a.apt = ?2 AND "
		"(a.building = d.building OR (d.building IS NULL AND (json_extract(d.data, '$.serves') = 'all' "
		"OR EXISTS (SELECT 1 FROM json_each(d.data, '$.serves') j WHERE j.value = a.building)))) "
		"WHERE d.id = ?1 LIMIT 2");
	if (!s) {
		json_decref(targets);
		json_decref(resp);
		return reqs_error(rid, "internal", "database error");
	}
	sqlite3_bind_text(s, 1, caller, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, to, -1, SQLITE_STATIC);
	char apt[80] = "";
	json_t *contact = NULL;
	int call_type = 0, internet = 1, found = 0;
	while (sqlite3_step(s) == SQLITE_ROW) {
		if (++found > 1)
			break;
		snprintf(apt, sizeof apt, "%s", col(s, 0));
		contact = col(s, 1) ? json_loads(col(s, 1), 0, NULL) : NULL;
		call_type = sqlite3_column_int(s, 2);
		internet = sqlite3_column_int(s, 3);
	}
	sqlite3_reset(s);
	if (found != 1) {
		json_decref(contact);
		json_decref(targets);
		json_decref(resp);
		return reqs_error(rid, found ? "ambiguous_apt" : "unknown_apartment",
				  found ? "this APT exists in several buildings this device serves"
					: "no such APT for this device");
	}
	if (call_type < 0 || call_type > 5)
		call_type = 0;

	/* stages: the contact sequence, else the call type's order */
	int stages[3][3], nstages = 0;
	json_t *seq = json_object_get(contact, "sequence");
	const char *cmode = json_string_value(json_object_get(contact, "mode"));
	if (cmode && !strcmp(cmode, "sequence") && json_array_size(seq)) {
		size_t i, j;
		json_t *set, *k;
		json_array_foreach(seq, i, set) {
			if (nstages == 3)
				break;
			int n = 0;
			json_array_foreach(set, j, k) {
				const char *v = json_string_value(k);
				if (n < 2 && v)
					stages[nstages][n++] = !strcmp(v, "apps") ? T_APPS : !strcmp(v, "monitors") ? T_MONITORS
													  : T_LANDLINES;
			}
			stages[nstages++][n] = -1;
		}
	} else {
		for (int i = 0; i < 3 && call_type_stages[call_type][i][0] >= 0; i++, nstages++)
			memcpy(stages[i], call_type_stages[call_type][i], sizeof stages[i]);
	}
	int apps_reachable = wan && !strcmp(wan, "up");
	for (int i = 0; i < nstages; i++)
		for (int j = 0; j < 3 && stages[i][j] >= 0; j++) {
			if (stages[i][j] == T_MONITORS)
				add_devices(st, targets, 2, apt, i);
			else if (stages[i][j] == T_APPS && apps_reachable)
				add_people(st, targets, T_APPS, apt, i);
			else if (stages[i][j] == T_LANDLINES)
				add_people(st, targets, T_LANDLINES, apt, i);
		}
	json_object_set_new(resp, "mode", json_string(nstages > 1 ? "sequence" : "group"));
	json_object_set_new(resp, "targets", targets);
	json_object_set_new(resp, "apartment", json_string(apt));

	/* a door phone without internet reaches the app through the apartment's
	 * works-offline indoor monitor */
	if (!internet) {
		s = store_stmt(st, "SELECT d.id, COALESCE(p.ip, json_extract(d.data, '$.ip')) FROM devices d "
				   "JOIN presence p ON p.device = d.id AND p.online = 1 "
				   "WHERE d.apartment = ? AND d.works_offline = 1");
		if (s) {
			sqlite3_bind_text(s, 1, apt, -1, SQLITE_STATIC);
			if (sqlite3_step(s) == SQLITE_ROW) {
				json_t *via = json_pack("{s:s}", "mac", col(s, 0));
				if (col(s, 1))
					json_object_set_new(via, "ip", json_string(col(s, 1)));
				json_object_set_new(resp, "transfer_via", via);
			}
			sqlite3_reset(s);
		}
	}
	json_decref(contact);
	return resp;
}
