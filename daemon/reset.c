/* Apartment reset, as the property manager guide lists it ("Reset
 * apartments"): removed — family member accounts; emails, mobile numbers,
 * country/region and landlines; logs (audit logs excluded) and histories;
 * messages and alarms; access settings (PIN, face data, NFC, Bluetooth, QR
 * codes). Kept — the master account and its status (active, expiry), audit
 * logs, the apartment's call settings. The app must re-register: the
 * master's app account is cleared. Cards, UHF tags and plates are not in
 * the manual's list and are kept. */
#include <stdlib.h>

#include "entity_int.h"
#include "jutil.h"
#include "log.h"
#include "timeutil.h"

static int exec_id(store_t *st, const char *sql, const char *id)
{
	sqlite3_stmt *s = store_stmt(st, sql);
	if (!s)
		return -1;
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	int rc = sqlite3_step(s);
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

int ent_apartment_reset(store_t *st, const char *apt, const ent_ctx_t *ctx, gh_err_t *err)
{
	static const ent_ctx_t def_ctx = { .actor = "system" };
	if (!ctx)
		ctx = &def_ctx;
	int ex = ent_exists(st, ENT_APARTMENT, apt);
	if (ex < 0)
		return store_db_err(st, err, "reading apartment");
	if (!ex)
		return gh_err(err, 404, "not_found", "id", "no apartment with id \"%s\"", apt);
	if (store_begin(st))
		return store_db_err(st, err, "begin");

	/* through the one delete path (tombstones, groups, audit, journal):
	 * family members with their credentials; PIN, face and QR credentials of
	 * the remaining residents; the visitors' temp keys (QR codes and PINs) */
	static const struct {
		ent_t e;
		const char *sql;
	} gone[] = {
		{ ENT_PERSON, "SELECT id FROM persons WHERE apartment = ? AND kind = 'family'" },
		{ ENT_CREDENTIAL, "SELECT c.id FROM credentials c JOIN persons p ON p.id = c.person "
				  "WHERE p.apartment = ? AND c.type IN ('pin', 'face', 'qr')" },
		{ ENT_TEMP_KEY, "SELECT id FROM temp_keys WHERE apartment = ?" },
	};
	json_t *ids = json_array();
	sqlite3_stmt *s;
	size_t i;
	json_t *x;
	for (size_t k = 0; k < sizeof gone / sizeof gone[0]; k++) {
		if (!(s = store_stmt(st, gone[k].sql)))
			goto dbfail;
		sqlite3_bind_text(s, 1, apt, -1, SQLITE_STATIC);
		while (sqlite3_step(s) == SQLITE_ROW)
			json_array_append_new(ids, json_string((const char *)sqlite3_column_text(s, 0)));
		sqlite3_reset(s);
		json_array_foreach(ids, i, x) if (ent_delete(st, gone[k].e, json_string_value(x), ctx, err)) goto fail;
		json_array_clear(ids);
	}

	/* contact data of the master account(s) */
	s = store_stmt(st, "SELECT id, data FROM persons WHERE apartment = ?");
	if (!s)
		goto dbfail;
	sqlite3_bind_text(s, 1, apt, -1, SQLITE_STATIC);
	while (sqlite3_step(s) == SQLITE_ROW) {
		json_t *d = json_loads((const char *)sqlite3_column_text(s, 1), 0, NULL);
		if (d) {
			json_object_set_new(d, "id", json_string((const char *)sqlite3_column_text(s, 0)));
			json_array_append_new(ids, d);
		}
	}
	sqlite3_reset(s);
	json_array_foreach(ids, i, x) {
		json_t *d = json_deep_copy(x);
		json_object_set_new(d, "email", json_null());
		json_object_set_new(d, "mobile", json_null());
		json_object_set_new(d, "country_code", json_null());
		json_object_set_new(d, "landlines", json_array());
		json_object_set_new(d, "app_account", json_null());
		int rc = ent_put(st, ENT_PERSON, NULL, d, ctx, NULL, err);
		json_decref(d);
		if (rc)
			goto fail;
	}

	/* logs and histories (audit logs stay), messages and alarms */
	if (exec_id(st, "DELETE FROM door_logs WHERE apartment = ?", apt) ||
	    exec_id(st, "DELETE FROM call_logs WHERE apartment = ?", apt) ||
	    exec_id(st, "DELETE FROM alarm_logs WHERE apartment = ?", apt) ||
	    exec_id(st, "DELETE FROM detection_logs WHERE apartment = ?", apt) ||
	    exec_id(st, "DELETE FROM messages WHERE apartment = ?", apt))
		goto dbfail;
	if (audit_write(st, ctx->actor, "reset", ENT_APARTMENT, apt, NULL, NULL))
		goto dbfail;
	json_decref(ids);
	if (store_commit(st))
		return store_db_err(st, err, "commit");
	log_info("store", "apartment %s reset by %s", apt, ctx->actor ? ctx->actor : "?");
	return 0;
dbfail:
	store_db_err(st, err, "resetting apartment");
fail:
	json_decref(ids);
	store_rollback(st);
	return -1;
}
