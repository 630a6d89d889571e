/* The one validator: the manuals' rules for every entity (docs/RULES.md).
 * Each check names the field and the rule; defaults are written back so the
 * stored representation is canonical. */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "entity_int.h"
#include "jutil.h"
#include "profile.h"
#include "schedule.h"
#include "settings.h"
#include "timeutil.h"

#define NAME_MAX_BYTES 64
#define REMARK_MAX 255
#define MAX_FLOORS 10
#define MAX_LANDLINES 3
#define MAX_RELAYS 16

const char *const gh_methods[] = { "pin", "rf", "face", "fingerprint", "uhf", "plate", "qr",
				   "tempkey", "app", "bluetooth", "nfc", "id_access", "dtmf",
				   "app_home", "app_talk", NULL };

int method_index(const char *name)
{
	for (int i = 0; gh_methods[i]; i++)
		if (!strcmp(gh_methods[i], name))
			return i;
	return -1;
}

/* ---- field rules shared with the CSV import and the engine ---- */

int apt_ok(const char *apt)
{
	size_t n = strlen(apt);
	if (n < 1 || n > 6 || apt[0] == '#')
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)apt[i]) && apt[i] != '#')
			return 0;
	return 1;
}

int pin_ok(const char *pin)
{
	size_t n = strlen(pin);
	if (n < 2 || n > 8 || pin[0] == '9')
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)pin[i]))
			return 0;
	return 1;
}

int mac_normalize(const char *in, char out[13])
{
	size_t n = 0;
	for (const char *p = in; *p; p++) {
		if ((*p == ':' || *p == '-') && p != in)
			continue;
		if (!isxdigit((unsigned char)*p) || n >= 12)
			return -1;
		out[n++] = (char)toupper((unsigned char)*p);
	}
	out[n] = '\0';
	return n == 12 ? 0 : -1;
}

int floor_label_ok(const json_t *v, char out[8])
{
	long n;
	if (json_is_integer(v)) {
		n = (long)json_integer_value(v);
	} else if (json_is_string(v)) {
		const char *s = json_string_value(v);
		if (!strcmp(s, "G0") || !strcmp(s, "G1") || !strcmp(s, "G2")) {
			snprintf(out, 8, "%s", s);
			return 1;
		}
		char *end;
		if (!*s || strlen(s) > 4 || !(s[0] == '-' || isdigit((unsigned char)s[0])))
			return 0;
		n = strtol(s, &end, 10);
		if (*end || (s[0] == '0' && s[1]) || (s[0] == '-' && s[1] == '0'))
			return 0;
	} else {
		return 0;
	}
	if (n < -10 || n > 128)
		return 0;
	snprintf(out, 8, "%ld", n);
	return 1;
}

/* ---- helpers ---- */

#define E422(v, field, ...) gh_err((v)->err, 422, "invalid", field, __VA_ARGS__)

/* The entity ID of kind E that KEY names exists (none named: fine). */
static int ref_exists(vctx_t *v, ent_t e, const char *key, const char *path, const char *id)
{
	if (!id)
		return 0;
	int x = ent_exists(v->st, e, id);
	if (x < 0)
		return store_db_err(v->st, v->err, "checking reference");
	if (!x)
		return gh_err(v->err, 422, "not_found", path ? path : key, "%s: no %s with id \"%s\"",
			      path ? path : key, ent_name(e), id);
	return 0;
}

/* KEY of O: an id of kind E (checked to exist, but in VPHASE_FIELDS). */
static int ref(vctx_t *v, ent_t e, json_t *o, const char *key, const char *path, int required,
	       const char **out)
{
	if (jf_str(o, key, path, required, 64, NULL, out, v->err))
		return -1;
	if (v->phase == VPHASE_FIELDS)
		return 0;
	return ref_exists(v, e, key, path, *out);
}

/* KEY of the normalized entity: a string or NULL. */
static const char *field(vctx_t *v, const char *key)
{
	return json_string_value(json_object_get(v->d, key));
}

static int name_field(vctx_t *v, const char *key, int required, size_t max)
{
	const char *s;
	return jf_str(v->d, key, NULL, required, max, required ? NULL : "", &s, v->err);
}

static int opt_str(vctx_t *v, json_t *o, const char *key, size_t max)
{
	const char *s;
	return jf_str(o, key, NULL, 0, max, NULL, &s, v->err);
}

static int floors_list(vctx_t *v, json_t *o, const char *key)
{
	json_t *a = json_object_get(o, key);
	if (!a || json_is_null(a)) {
		json_object_set_new(o, key, json_array());
		return 0;
	}
	if (!json_is_array(a))
		return E422(v, key, "%s must be a list of floor labels, or [\"all\"]", key);
	if (json_array_size(a) == 1 && json_is_string(json_array_get(a, 0)) &&
	    !strcmp(json_string_value(json_array_get(a, 0)), "all"))
		return 0;
	if (json_array_size(a) > MAX_FLOORS)
		return gh_err(v->err, 422, "too_many", key, "%s: at most %d floors (or [\"all\"])", key,
			      MAX_FLOORS);
	json_t *canon = json_array();
	size_t i;
	json_t *f;
	json_array_foreach(a, i, f) {
		char lab[8], p[64];
		if (!floor_label_ok(f, lab)) {
			json_decref(canon);
			return E422(v, jpath(p, sizeof p, key, (long)i, NULL),
				    "%s must be a floor -10..128, G0, G1 or G2", p);
		}
		json_array_append_new(canon, json_string(lab));
	}
	json_object_set_new(o, key, canon);
	return 0;
}

static int floor_field(vctx_t *v, json_t *o, const char *key, const char *path)
{
	json_t *f = json_object_get(o, key);
	char lab[8];
	if (!f || json_is_null(f)) {
		json_object_set_new(o, key, json_null());
		return 0;
	}
	if (!floor_label_ok(f, lab))
		return E422(v, path ? path : key, "%s must be a floor -10..128, G0, G1 or G2",
			    path ? path : key);
	json_object_set_new(o, key, json_string(lab));
	return 0;
}

/* {"device":MAC,"relay":n} or {"board":ID,"channel":c}; refs checked unless lenient */
static int relay_ref(vctx_t *v, json_t *r, const char *path)
{
	char p[96];
	if (!json_is_object(r))
		return E422(v, path, "%s must be {\"device\",\"relay\"} or {\"board\",\"channel\"}", path);
	json_t *dev = json_object_get(r, "device"), *brd = json_object_get(r, "board");
	int64_t n;
	if (json_is_string(dev)) {
		char mac[13];
		if (mac_normalize(json_string_value(dev), mac))
			return E422(v, jpath(p, sizeof p, path, -1, "device"), "%s must be a MAC", p);
		json_object_set_new(r, "device", json_string(mac));
		if (jf_int(r, "relay", jpath(p, sizeof p, path, -1, "relay"), 1, 1, MAX_RELAYS, 0, 0, &n,
			   NULL, v->err))
			return -1;
		if (v->lenient)
			return 0;
		sqlite3_stmt *s = store_stmt(v->st, "SELECT 1 FROM device_relays WHERE device = ? AND n = ?");
		if (!s)
			return store_db_err(v->st, v->err, "checking relay");
		sqlite3_bind_text(s, 1, mac, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(s, 2, n);
		int rc = sqlite3_step(s);
		sqlite3_reset(s);
		if (rc != SQLITE_ROW)
			return gh_err(v->err, 422, "not_found", path, "%s: device %s has no relay %lld",
				      path, mac, (long long)n);
		return 0;
	}
	if (json_is_string(brd)) {
		if (jf_int(r, "channel", jpath(p, sizeof p, path, -1, "channel"), 1, 1, 256, 0, 0, &n,
			   NULL, v->err))
			return -1;
		if (v->lenient)
			return 0;
		sqlite3_stmt *s = store_stmt(v->st, "SELECT profile FROM relay_boards WHERE id = ?");
		if (!s)
			return store_db_err(v->st, v->err, "checking board");
		sqlite3_bind_text(s, 1, json_string_value(brd), -1, SQLITE_STATIC);
		if (sqlite3_step(s) != SQLITE_ROW) {
			sqlite3_reset(s);
			return gh_err(v->err, 422, "not_found", path, "%s: no relay board \"%s\"", path,
				      json_string_value(brd));
		}
		const profile_t *pr = profile_find((const char *)sqlite3_column_text(s, 0));
		sqlite3_reset(s);
		if (pr && n > pr->channels)
			return E422(v, jpath(p, sizeof p, path, -1, "channel"),
				    "%s: board %s has %d channels", p, json_string_value(brd), pr->channels);
		return 0;
	}
	return E422(v, path, "%s must be {\"device\",\"relay\"} or {\"board\",\"channel\"}", path);
}

static int relay_ref_list(vctx_t *v, json_t *o, const char *key, const char *path)
{
	json_t *a = json_object_get(o, key);
	if (!a || json_is_null(a)) {
		json_object_set_new(o, key, json_array());
		return 0;
	}
	if (!json_is_array(a))
		return E422(v, path, "%s must be a list of relays", path);
	size_t i;
	json_t *r;
	char p[64];
	json_array_foreach(a, i, r) if (relay_ref(v, r, jpath(p, sizeof p, path, (long)i, NULL))) return -1;
	return 0;
}

static int id_list(vctx_t *v, json_t *o, const char *key, ent_t e, int check, const char *path)
{
	json_t *a = json_object_get(o, key);
	if (!a || json_is_null(a)) {
		json_object_set_new(o, key, json_array());
		return 0;
	}
	if (!json_is_array(a))
		return E422(v, path, "%s must be a list of %s ids", path, ent_name(e));
	size_t i;
	json_t *x;
	char p[64];
	json_array_foreach(a, i, x) {
		jpath(p, sizeof p, path, (long)i, NULL);
		if (!json_is_string(x) || !json_string_length(x))
			return E422(v, p, "%s must be a %s id", p, ent_name(e));
		if (e == ENT_DEVICE) {
			char mac[13];
			if (mac_normalize(json_string_value(x), mac))
				return E422(v, p, "%s must be a MAC", p);
			json_array_set_new(a, i, json_string(mac));
			x = json_array_get(a, i);
		}
		if (check && !v->lenient) {
			int ex = ent_exists(v->st, e, json_string_value(x));
			if (ex < 0)
				return store_db_err(v->st, v->err, "checking reference");
			if (!ex)
				return gh_err(v->err, 422, "not_found", p, "%s: no %s with id \"%s\"", p,
					      ent_name(e), json_string_value(x));
		}
	}
	return 0;
}

static int schedule_field(vctx_t *v, json_t *o, const char *key, sched_t *s)
{
	json_t *sc = json_object_get(o, key);
	if (!sc || json_is_null(sc)) {
		json_object_set_new(o, key, json_null());
		sc = NULL;
	}
	return sched_from_json(sc, key, s, v->err);
}

/* ---- entities ---- */

static int v_settings(vctx_t *v)
{
	static const char *kinds[] = { "community", "office", "single_family", NULL };
	static const char *tf[] = { "24h", "12h", NULL };
	static const char *plans[] = { "basic", "premium", NULL };
	static const char *modes[] = { "pin", "apt_pin", NULL };
	static const char *perm[] = { "public_private", "public_only", NULL };
	int x;
	int64_t n;
	const char *tz;
	json_t *d = v->d;
	if (jf_enum(d, "kind", NULL, kinds, 0, &x, v->err) || name_field(v, "name", 0, 128) ||
	    opt_str(v, d, "address", 255) || jf_str(d, "timezone", NULL, 0, 63, "UTC", &tz, v->err) ||
	    jf_str(d, "date_format", NULL, 0, 32, "YYYY-MM-DD", &tz, v->err) ||
	    jf_enum(d, "time_format", NULL, tf, 0, &x, v->err) ||
	    jf_enum(d, "feature_plan", NULL, plans, 1, &x, v->err) ||
	    jf_enum(d, "pin_mode", NULL, modes, 0, &x, v->err) ||
	    jf_enum(d, "access_permission", NULL, perm, 0, &x, v->err) ||
	    jf_bool(d, "log_calls_without_open", NULL, 0, &x, v->err) ||
	    jf_int(d, "temp_key_max_days", NULL, 0, 0, 30, 1, 0, &n, NULL, v->err) ||
	    jf_int(d, "lift_grant_s", NULL, 0, 1, 3600, 1, 10, &n, NULL, v->err) ||
	    jf_int(d, "relay_hold_ms", NULL, 0, 100, 600000, 1, 5000, &n, NULL, v->err))
		return -1;
	tz = json_string_value(json_object_get(d, "timezone"));
	if (!gh_tz_valid(tz))
		return E422(v, "timezone", "timezone must be an IANA time zone name, e.g. Europe/Vienna");
	n = json_integer_value(json_object_get(d, "temp_key_max_days"));
	if (n != 0 && n != 30)
		return E422(v, "temp_key_max_days", "temp_key_max_days must be 0 (unlimited) or 30");

	json_t *em = json_object_get(d, "emergency");
	if (!em || json_is_null(em)) {
		em = json_object();
		json_object_set_new(d, "emergency", em);
	}
	if (!json_is_object(em))
		return E422(v, "emergency", "emergency must be an object");
	if (jf_bool(em, "auto_unlock", "emergency.auto_unlock", 0, &x, v->err) ||
	    jf_bool(em, "notify", "emergency.notify", 1, &x, v->err))
		return -1;
	json_t *doors = json_object_get(em, "doors");
	if (!doors || json_is_null(doors)) {
		json_object_set_new(em, "doors", json_string("all"));
	} else if (!(json_is_string(doors) && !strcmp(json_string_value(doors), "all"))) {
		if (!json_is_array(doors))
			return E422(v, "emergency.doors", "emergency.doors must be \"all\" or a list of relays");
		if (relay_ref_list(v, em, "doors", "emergency.doors"))
			return -1;
	}

	/* switching to site-wide PINs must not make two people's PINs equal */
	if (!strcmp(json_string_value(json_object_get(d, "pin_mode")), "pin")) {
		sqlite3_stmt *s = store_stmt(v->st, "SELECT code FROM (SELECT code FROM credentials WHERE "
						    "type = 'pin' UNION ALL SELECT code FROM temp_keys WHERE code "
						    "IS NOT NULL) GROUP BY code HAVING count(*) > 1 LIMIT 1");
		if (!s)
			return store_db_err(v->st, v->err, "checking PINs");
		if (sqlite3_step(s) == SQLITE_ROW) {
			sqlite3_reset(s);
			return gh_err(v->err, 409, "duplicate", "pin_mode",
				      "pin_mode \"pin\" needs site-unique PINs, but apartments share "
				      "a PIN: change those PINs first");
		}
		sqlite3_reset(s);
	}
	return 0;
}

static int v_mac(vctx_t *v)
{
	return opt_str(v, v->d, "remark", REMARK_MAX);
}

static int v_building(vctx_t *v)
{
	int64_t n;
	int has;
	if (name_field(v, "name", 1, 128) || floor_field(v, v->d, "ground_floor", NULL) ||
	    jf_int(v->d, "floor_start", NULL, 0, -10, 128, 0, 0, &n, &has, v->err))
		return -1;
	if (!has)
		json_object_set_new(v->d, "floor_start", json_null());
	return 0;
}

static int apartment_fields(vctx_t *v)
{
	static const char *cmodes[] = { "group", "sequence", NULL };
	static const char *callm[] = { "ip", "sip", NULL };
	static const char *targets[] = { "apps", "monitors", "landlines", NULL };
	const char *b, *apt;
	int64_t n, from = 0, until = 0;
	int x, hf, hu;
	json_t *d = v->d;
	if (ref(v, ENT_BUILDING, d, "building", NULL, 1, &b) ||
	    jf_str(d, "apt", NULL, 1, 6, NULL, &apt, v->err))
		return -1;
	if (!apt_ok(apt))
		return E422(v, "apt", "apt must be 1-6 digits, letters or '#', not starting with '#' "
				      "(e.g. 2#123A)");
	if (name_field(v, "name", 0, 128) || floor_field(v, d, "floor", NULL) ||
	    jf_int(d, "call_type", NULL, 0, 0, 5, 1, 0, &n, NULL, v->err) ||
	    jf_enum(d, "call_mode", NULL, callm, 0, &x, v->err) ||
	    jf_ts(d, "valid_from", NULL, &from, &hf, v->err) ||
	    jf_ts(d, "valid_until", NULL, &until, &hu, v->err) ||
	    jf_bool(d, "auto_delete_family", NULL, 0, &x, v->err))
		return -1;
	json_t *wr = json_object_get(d, "web_relay_id");
	if (!wr || json_is_null(wr))
		json_object_set_new(d, "web_relay_id", json_integer(0));
	else if (!(json_is_integer(wr) && json_integer_value(wr) >= 0 &&
		   json_integer_value(wr) <= 65535))
		return E422(v, "web_relay_id", "web_relay_id must be an action id 0..65535");
	if (hf && hu && until <= from)
		return E422(v, "valid_until", "valid_until must be after valid_from");
	if (json_is_true(json_object_get(d, "auto_delete_family")) && !hu)
		return E422(v, "auto_delete_family",
			    "auto_delete_family needs the apartment's valid_until (a rental end)");

	json_t *c = json_object_get(d, "contact");
	if (!c || json_is_null(c)) {
		c = json_pack("{s:s,s:[]}", "mode", "group", "sequence");
		json_object_set_new(d, "contact", c);
	}
	if (!json_is_object(c))
		return E422(v, "contact", "contact must be an object");
	if (jf_enum(c, "mode", "contact.mode", cmodes, 0, &x, v->err))
		return -1;
	json_t *seq = json_object_get(c, "sequence");
	if (!seq || json_is_null(seq)) {
		json_object_set_new(c, "sequence", json_array());
		seq = json_object_get(c, "sequence");
	}
	if (!json_is_array(seq) || json_array_size(seq) > 3)
		return E422(v, "contact.sequence", "contact.sequence must be a list of at most 3 target sets");
	if (x == 1 && json_array_size(seq) == 0)
		return E422(v, "contact.sequence", "a sequence call needs at least one target set");
	size_t i, j;
	json_t *set, *t;
	json_array_foreach(seq, i, set) {
		char p[64];
		jpath(p, sizeof p, "contact.sequence", (long)i, NULL);
		if (!json_is_array(set) || json_array_size(set) == 0 || json_array_size(set) > 3)
			return E422(v, p, "%s must be a non-empty list of \"apps\", \"monitors\", \"landlines\"", p);
		unsigned seen = 0;
		json_array_foreach(set, j, t) {
			int k = -1;
			for (int m = 0; targets[m] && json_is_string(t); m++)
				if (!strcmp(targets[m], json_string_value(t)))
					k = m;
			if (k < 0 || (seen & (1u << k)))
				return E422(v, p, "%s must list distinct \"apps\", \"monitors\", \"landlines\"", p);
			seen |= 1u << k;
		}
	}
	return 0;
}

/* An apt number once per building. */
static int apartment_db(vctx_t *v)
{
	const char *b = field(v, "building"), *apt = field(v, "apt");
	if (!b || !apt)
		return 0; /* refused by apartment_fields */
	sqlite3_stmt *s = store_stmt(v->st, "SELECT id FROM apartments WHERE building = ? AND apt = ? AND id <> ?");
	if (!s)
		return store_db_err(v->st, v->err, "checking apt");
	sqlite3_bind_text(s, 1, b, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, apt, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, v->id, -1, SQLITE_STATIC);
	int rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc == SQLITE_ROW)
		return gh_err(v->err, 409, "duplicate", "apt", "apt %s already exists in building %s", apt, b);
	return 0;
}

static int person_fields(vctx_t *v)
{
	static const char *kinds[] = { "resident", "family", "staff", "personnel", "pm_staff",
				       "delivery", NULL };
	json_t *d = v->d;
	int kind, x, has;
	int64_t exp;
	const char *apt, *b, *s;
	if (jf_enum(d, "kind", NULL, kinds, 0, &kind, v->err))
		return -1;
	if (ref(v, ENT_APARTMENT, d, "apartment", NULL, kind <= 1, &apt) ||
	    ref(v, ENT_BUILDING, d, "building", NULL, 0, &b) ||
	    name_field(v, "first_name", 1, NAME_MAX_BYTES) ||
	    name_field(v, "last_name", 0, NAME_MAX_BYTES) || opt_str(v, d, "email", 128) ||
	    opt_str(v, d, "mobile", 32) || opt_str(v, d, "country_code", 8) ||
	    jf_str(d, "remark", NULL, 0, REMARK_MAX, "", &s, v->err) ||
	    jf_bool(d, "active", NULL, 1, &x, v->err) ||
	    jf_ts(d, "expires_at", NULL, &exp, &has, v->err) || opt_str(v, d, "app_account", 128) ||
	    opt_str(v, d, "id_number", 64) || floors_list(v, d, "floors"))
		return -1;
	s = json_string_value(json_object_get(d, "email"));
	if (s && *s && (!strchr(s, '@') || strchr(s, ' ')))
		return E422(v, "email", "email must be an address like name@example.com");
	s = json_string_value(json_object_get(d, "mobile"));
	for (const char *p = s; p && *p; p++)
		if (!isdigit((unsigned char)*p) && !strchr("+-() ", *p))
			return E422(v, "mobile", "mobile must be a phone number (digits, + - ( ) and spaces)");
	if (kind > 1 && apt)
		return E422(v, "apartment", "only residents and family members belong to an apartment");

	json_t *ll = json_object_get(d, "landlines");
	if (!ll || json_is_null(ll)) {
		json_object_set_new(d, "landlines", json_array());
	} else {
		if (!json_is_array(ll) || json_array_size(ll) > MAX_LANDLINES)
			return gh_err(v->err, 422, "too_many", "landlines",
				      "landlines must be a list of at most %d numbers", MAX_LANDLINES);
		size_t i;
		json_t *n;
		json_array_foreach(ll, i, n) if (!json_is_string(n) || json_string_length(n) > 32) {
			char p[32];
			return E422(v, jpath(p, sizeof p, "landlines", (long)i, NULL),
				    "%s must be a phone number of at most 32 characters", p);
		}
	}
	if (!has)
		json_object_set_new(d, "expires_at", json_null());
	return 0;
}

/* A family member is added under an existing master account. */
static int person_db(vctx_t *v)
{
	const char *kind = field(v, "kind"), *apt = field(v, "apartment");
	if (kind && !strcmp(kind, "family") && apt && !v->lenient) {
		sqlite3_stmt *q = store_stmt(v->st, "SELECT 1 FROM persons WHERE apartment = ? AND "
						    "kind = 'resident' AND id <> ?");
		if (!q)
			return store_db_err(v->st, v->err, "checking master account");
		sqlite3_bind_text(q, 1, apt, -1, SQLITE_STATIC);
		sqlite3_bind_text(q, 2, v->id, -1, SQLITE_STATIC);
		int rc = sqlite3_step(q);
		sqlite3_reset(q);
		if (rc != SQLITE_ROW)
			return E422(v, "apartment",
				    "a family member needs the apartment's master account (a resident) first");
	}
	return 0;
}

static int ip_ok(const char *s)
{
	unsigned char buf[16];
	return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

static int v_device_relays(vctx_t *v, int type)
{
	json_t *a = json_object_get(v->d, "relays");
	if (!a || json_is_null(a)) {
		json_object_set_new(v->d, "relays", json_array());
		return 0;
	}
	if (!json_is_array(a) || json_array_size(a) > MAX_RELAYS)
		return E422(v, "relays", "relays must be a list of at most %d relays", MAX_RELAYS);
	unsigned seen = 0;
	size_t i;
	json_t *r;
	(void)type;
	json_array_foreach(a, i, r) {
		char p[64], f[80];
		int64_t n;
		const char *s;
		jpath(p, sizeof p, "relays", (long)i, NULL);
		if (!json_is_object(r))
			return E422(v, p, "%s must be an object", p);
		if (jf_int(r, "n", jpath(f, sizeof f, "relays", (long)i, "n"), 1, 1, MAX_RELAYS, 0, 0, &n,
			   NULL, v->err))
			return -1;
		if (seen & (1u << n))
			return gh_err(v->err, 409, "duplicate", f, "%s: relay %lld is listed twice", f, (long long)n);
		seen |= 1u << n;
		char defname[16];
		snprintf(defname, sizeof defname, "Relay %lld", (long long)n);
		if (jf_str(r, "name", jpath(f, sizeof f, "relays", (long)i, "name"), 0, NAME_MAX_BYTES,
			   defname, &s, v->err) ||
		    jf_str(r, "dtmf", jpath(f, sizeof f, "relays", (long)i, "dtmf"), 0, 8, "#", &s, v->err))
			return -1;
		if (!*json_string_value(json_object_get(r, "name")))
			return E422(v, jpath(p, sizeof p, "relays", (long)i, "name"), "%s must not be empty", p);
		if (!*s || strspn(s, "0123456789*#") != strlen(s))
			return E422(v, f, "%s must be 1-8 of 0-9, * and #", f);
		json_t *m = json_object_get(r, "methods");
		jpath(f, sizeof f, "relays", (long)i, "methods");
		if (!m || json_is_null(m)) {
			json_object_set_new(r, "methods", json_null()); /* all methods */
		} else {
			if (!json_is_array(m))
				return E422(v, f, "%s must be a list of access methods (null = all)", f);
			size_t j;
			json_t *x;
			json_array_foreach(m, j, x) if (!json_is_string(x) ||
							method_index(json_string_value(x)) < 0) return
			    E422(v, f, "%s[%zu] is not an access method (pin, rf, face, bluetooth, nfc, "
				       "app_home, app_talk, ...)", f, j);
		}
		json_t *sc = json_object_get(r, "schedule");
		if (!sc || json_is_null(sc)) {
			json_object_set_new(r, "schedule", json_null());
		} else if (v->lenient) {
			if (!json_is_string(sc))
				return E422(v, f, "relays[%zu].schedule must be an access group id", i);
		} else if (ref(v, ENT_ACCESS_GROUP, r, "schedule",
			       jpath(f, sizeof f, "relays", (long)i, "schedule"), 0, &s)) {
			return -1;
		}
		json_t *b = json_object_get(r, "board");
		if (!b || json_is_null(b))
			json_object_set_new(r, "board", json_null());
		else if (relay_ref(v, b, jpath(f, sizeof f, "relays", (long)i, "board")))
			return -1;
		else if (!json_object_get(b, "board"))
			return E422(v, f, "%s must be {\"board\":ID,\"channel\":c}", f);
	}
	return 0;
}

static int v_device(vctx_t *v)
{
	static const char *areas[] = { "site", "building", "apartment", NULL };
	json_t *d = v->d;
	int64_t type;
	int area, x, internet, offline;
	const char *b, *apt, *ip, *s;
	if (!v->lenient) {
		int in_lib = ent_exists(v->st, ENT_MAC, v->id);
		if (in_lib < 0)
			return store_db_err(v->st, v->err, "checking MAC library");
		if (!in_lib)
			return gh_err(v->err, 422, "not_in_mac_library", "id",
				      "MAC %s is not in the site's MAC library: add it there first", v->id);
	}
	if (jf_int(d, "type", NULL, 1, 0, 50, 0, 0, &type, NULL, v->err))
		return -1;
	if (type != 0 && type != 1 && type != 2 && type != 3 && type != 50)
		return E422(v, "type", "type must be 0 (multi-tenant door phone), 1 (single-tenant door "
				       "phone), 2 (indoor monitor), 3 (guard phone) or 50 (access terminal)");
	if (name_field(v, "name", 1, NAME_MAX_BYTES) || jf_enum(d, "area", NULL, areas, 0, &area, v->err) ||
	    ref(v, ENT_BUILDING, d, "building", NULL, area == 1, &b) ||
	    ref(v, ENT_APARTMENT, d, "apartment", NULL, area == 2, &apt) ||
	    opt_str(v, d, "network_group", 64) || jf_bool(d, "internet", NULL, 1, &internet, v->err) ||
	    jf_str(d, "ip", NULL, 0, 45, NULL, &ip, v->err) ||
	    jf_bool(d, "works_offline", NULL, 0, &offline, v->err) ||
	    jf_bool(d, "monitor_allowed", NULL, 0, &x, v->err))
		return -1;
	if (ip && *ip && !ip_ok(ip))
		return E422(v, "ip", "ip must be an IPv4 or IPv6 address");
	if (!internet && (type == 0 || type == 1 || type == 50) && !(ip && *ip))
		return E422(v, "ip", "a door phone without internet access needs a static ip");
	if (area != 2 && apt)
		return E422(v, "apartment", "apartment is set only when area is \"apartment\"");
	if (offline && (type != 2 || !apt))
		return E422(v, "works_offline", "works_offline is for an indoor monitor in an apartment");
	if (offline) {
		sqlite3_stmt *q = store_stmt(v->st, "SELECT id FROM devices WHERE apartment = ? AND works_offline = 1 AND id <> ?");
		if (!q)
			return store_db_err(v->st, v->err, "checking works_offline");
		sqlite3_bind_text(q, 1, apt, -1, SQLITE_STATIC);
		sqlite3_bind_text(q, 2, v->id, -1, SQLITE_STATIC);
		if (sqlite3_step(q) == SQLITE_ROW) {
			char other[16];
			snprintf(other, sizeof other, "%s", (const char *)sqlite3_column_text(q, 0));
			sqlite3_reset(q);
			return gh_err(v->err, 409, "duplicate", "works_offline",
				      "apartment %s already has a works-offline indoor monitor (%s): at "
				      "most one per apartment", apt, other);
		}
		sqlite3_reset(q);
	}
	json_t *sv = json_object_get(d, "serves");
	if (!sv || json_is_null(sv))
		json_object_set_new(d, "serves", json_string("all"));
	else if (!(json_is_string(sv) && !strcmp(json_string_value(sv), "all"))) {
		if (area != 0)
			return E422(v, "serves", "serves applies to devices of the site's public area");
		if (!json_is_array(sv) || !json_array_size(sv))
			return E422(v, "serves", "serves must be \"all\" or a non-empty list of building ids");
		if (id_list(v, d, "serves", ENT_BUILDING, 1, "serves"))
			return -1;
	}
	(void)s;
	return v_device_relays(v, (int)type);
}

static int v_relay_board(vctx_t *v)
{
	static const char *modes[] = { "rs485", "rs485_input_nonlatching", "rs485_input_latching",
				       "ethernet", NULL };
	static const char *funcs[] = { "door", "light", "barrier", "lift_floor", "other", NULL };
	json_t *d = v->d;
	const char *prof, *bus, *b, *s;
	int mode, x;
	int64_t n;
	if (jf_str(d, "profile", NULL, 1, 63, NULL, &prof, v->err))
		return -1;
	const profile_t *p = profile_find(prof);
	if (!p)
		return gh_err(v->err, 422, "unknown_profile", "profile",
			      "profile \"%s\" is not loaded (add a file to profiles_dir)", prof);
	if (jf_enum(d, "mode", NULL, modes, (p->transports & PROF_T_RTU) ? 0 : 3, &mode, v->err))
		return -1;
	if (!profile_mode_ok(p, modes[mode]))
		return E422(v, "mode", "profile %s does not support mode %s", p->name, modes[mode]);
	if (jf_str(d, "bus", NULL, 1, 255, NULL, &bus, v->err))
		return -1;
	if (mode == 3) {
		const char *colon = strrchr(bus, ':');
		char *end;
		long port = colon ? strtol(colon + 1, &end, 10) : 0;
		if (!colon || colon == bus || *end || port < 1 || port > 65535)
			return E422(v, "bus", "bus must be host:port for an ethernet board");
	} else if (bus[0] != '/') {
		return E422(v, "bus", "bus must be a serial device path (e.g. /dev/ttyUSB0) for RS485");
	}
	if (jf_int(d, "unit", NULL, 0, 0, 247, 1, p->unit, &n, NULL, v->err) ||
	    ref(v, ENT_BUILDING, d, "building", NULL, 0, &b) || opt_str(v, d, "lot", 64) ||
	    name_field(v, "name", 0, NAME_MAX_BYTES))
		return -1;
	json_t *ser = json_object_get(d, "serial");
	if (ser && !json_is_null(ser)) {
		static const char *par[] = { "N", "E", "O", NULL };
		if (!json_is_object(ser))
			return E422(v, "serial", "serial must be {\"baud\",\"parity\",\"data\",\"stop\"}");
		if (jf_int(ser, "baud", "serial.baud", 0, 1200, 921600, 1, p->baud, &n, NULL, v->err) ||
		    jf_enum(ser, "parity", "serial.parity", par, 0, &x, v->err) ||
		    jf_int(ser, "data", "serial.data", 0, 7, 8, 1, 8, &n, NULL, v->err) ||
		    jf_int(ser, "stop", "serial.stop", 0, 1, 2, 1, 1, &n, NULL, v->err))
			return -1;
	} else {
		json_object_set_new(d, "serial", json_null());
	}
	json_t *ch = json_object_get(d, "channels");
	if (!ch || json_is_null(ch)) {
		json_object_set_new(d, "channels", json_array());
		return 0;
	}
	if (!json_is_array(ch) || json_array_size(ch) > (size_t)p->channels)
		return gh_err(v->err, 422, "too_many", "channels",
			      "channels: %s has %d channels", p->name, p->channels);
	size_t i;
	json_t *c;
	char seen[257] = { 0 };
	json_array_foreach(ch, i, c) {
		char f[64];
		int fn;
		if (!json_is_object(c))
			return E422(v, jpath(f, sizeof f, "channels", (long)i, NULL), "%s must be an object", f);
		if (jf_int(c, "channel", jpath(f, sizeof f, "channels", (long)i, "channel"), 1, 1,
			   p->channels, 0, 0, &n, NULL, v->err))
			return -1;
		if (seen[n])
			return gh_err(v->err, 409, "duplicate", f, "%s: channel %lld is listed twice", f, (long long)n);
		seen[n] = 1;
		if (jf_str(c, "name", jpath(f, sizeof f, "channels", (long)i, "name"), 0, NAME_MAX_BYTES,
			   "", &s, v->err) ||
		    jf_enum(c, "function", jpath(f, sizeof f, "channels", (long)i, "function"), funcs,
			    p->kind == PROF_LIFT ? 3 : 0, &fn, v->err) ||
		    floor_field(v, c, "floor", jpath(f, sizeof f, "channels", (long)i, "floor")))
			return -1;
		int has;
		if (jf_int(c, "hold_ms", jpath(f, sizeof f, "channels", (long)i, "hold_ms"), 0, 100,
			   3600000, 0, 0, &n, &has, v->err))
			return -1;
		if (!has)
			json_object_set_new(c, "hold_ms", json_null());
	}
	return 0;
}

static int members(vctx_t *v)
{
	json_t *m = json_object_get(v->d, "members");
	if (!m || json_is_null(m)) {
		m = json_object();
		json_object_set_new(v->d, "members", m);
	}
	if (!json_is_object(m))
		return E422(v, "members", "members must be {\"persons\",\"apartments\",\"buildings\"}");
	return id_list(v, m, "persons", ENT_PERSON, 1, "members.persons") ||
	       id_list(v, m, "apartments", ENT_APARTMENT, 1, "members.apartments") ||
	       id_list(v, m, "buildings", ENT_BUILDING, 1, "members.buildings");
}

static int v_access_group(vctx_t *v)
{
	const char *b;
	sched_t s;
	if (name_field(v, "name", 1, 128) || ref(v, ENT_BUILDING, v->d, "building", NULL, 0, &b) ||
	    schedule_field(v, v->d, "schedule", &s) || relay_ref_list(v, v->d, "relays", "relays") || members(v))
		return -1;
	if (!b)
		json_object_set_new(v->d, "building", json_null());
	return 0;
}

/* A PIN must be unique per site (pin_mode pin) or per apartment (apt_pin),
 * among person credentials and temp keys alike. */
static int pin_unique(vctx_t *v, const char *code, const char *scope, const char *self_cred,
		      const char *self_key, const char *field)
{
	sqlite3_stmt *s = store_stmt(v->st, "SELECT id FROM credentials WHERE type = 'pin' AND code = ? "
					    "AND scope = ? AND id <> ? LIMIT 1");
	if (!s)
		return store_db_err(v->st, v->err, "checking PIN");
	sqlite3_bind_text(s, 1, code, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, scope, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, self_cred ? self_cred : "", -1, SQLITE_STATIC);
	int rc = v->bulk ? SQLITE_DONE : sqlite3_step(s); /* bulk: checked at its end */
	sqlite3_reset(s);
	if (rc == SQLITE_ROW)
		goto dup;
	s = store_stmt(v->st, "SELECT id FROM temp_keys WHERE code = ? AND (?2 = '' OR apartment = ?2) "
			      "AND id <> ?3 LIMIT 1");
	if (!s)
		return store_db_err(v->st, v->err, "checking PIN");
	sqlite3_bind_text(s, 1, code, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, scope, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, self_key ? self_key : "", -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc != SQLITE_ROW)
		return 0;
dup:
	return gh_err(v->err, 409, "duplicate", field, "%s: this PIN is already in use %s", field,
		      *scope ? "in this apartment" : "on this site");
}

static int v_temp_key(vctx_t *v)
{
	json_t *d = v->d;
	const char *b, *apt, *code, *qr, *s;
	sched_t sc;
	int64_t upd;
	int has;
	if (ref(v, ENT_BUILDING, d, "building", NULL, 0, &b) ||
	    ref(v, ENT_APARTMENT, d, "apartment", NULL, 0, &apt) ||
	    jf_str(d, "visitor", NULL, 0, NAME_MAX_BYTES, "", &s, v->err) ||
	    opt_str(v, d, "id_number", 64) || jf_str(d, "code", NULL, 0, 8, NULL, &code, v->err) ||
	    jf_str(d, "qr", NULL, 0, 256, NULL, &qr, v->err) ||
	    schedule_field(v, d, "schedule", &sc) || relay_ref_list(v, d, "relays", "relays") ||
	    id_list(v, d, "devices", ENT_DEVICE, 1, "devices") ||
	    jf_int(d, "uses_per_device", NULL, 0, 1, 100000, 0, 0, &upd, &has, v->err))
		return -1;
	if (!has)
		json_object_set_new(d, "uses_per_device", json_null());
	if (qr && !*qr)
		return E422(v, "qr", "qr must not be empty");
	if (!code && !qr)
		return E422(v, "code", "a temp key needs a code (PIN) and/or a qr");
	if (has && sc.repeat != SCHED_NEVER)
		return E422(v, "uses_per_device", "uses_per_device applies to keys that do not repeat");
	if (code && !pin_ok(code))
		return E422(v, "code", "code must be a PIN of 2-8 digits not starting with 9");
	if (!json_array_size(json_object_get(d, "relays")) && !json_array_size(json_object_get(d, "devices")))
		return E422(v, "relays", "a temp key needs relays or door phones to open");
	if (has && !json_array_size(json_object_get(d, "devices")))
		return E422(v, "devices", "uses_per_device needs the door phones (devices) it counts on");
	if (sc.repeat == SCHED_NEVER && !sc.has_end)
		return E422(v, "schedule.end", "a temp key that does not repeat needs an expiry (schedule.end)");
	const settings_t *set = settings_get(v->st);
	if (!set)
		return store_db_err(v->st, v->err, "reading settings");
	int maxd = set->temp_key_max_days, aptpin = set->apt_pin;
	if (maxd > 0 && sc.has_end) {
		int64_t start = sc.has_start ? sc.start : gh_now();
		if (sc.end - start > (int64_t)maxd * 86400)
			return E422(v, "schedule.end", "temp keys are valid for at most %d days on this site", maxd);
	}
	if (code && pin_unique(v, code, aptpin && apt ? apt : "", NULL, v->id, "code"))
		return -1;
	return 0;
}

static const char *const cred_types[] = { "pin", "rf", "uhf", "plate", "face", "fingerprint",
					  "id_access", "qr", NULL };

static int credential_fields(vctx_t *v)
{
	const char *const *types = cred_types;
	json_t *d = v->d;
	const char *person, *key, *code;
	int type, hf, hu, lt;
	int64_t from, until;
	if (ref(v, ENT_PERSON, d, "person", NULL, 0, &person) ||
	    ref(v, ENT_TEMP_KEY, d, "temp_key", NULL, 0, &key) ||
	    jf_enum(d, "type", NULL, types, -1, &type, v->err) ||
	    jf_str(d, "code", NULL, 1, 128, NULL, &code, v->err) ||
	    jf_ts(d, "valid_from", NULL, &from, &hf, v->err) ||
	    jf_ts(d, "valid_until", NULL, &until, &hu, v->err) ||
	    jf_bool(d, "long_term", NULL, 1, &lt, v->err))
		return -1;
	if (!person == !key)
		return E422(v, "person", "a credential belongs to exactly one person or temp_key");
	if (hf && hu && until <= from)
		return E422(v, "valid_until", "valid_until must be after valid_from");

	char canon[129];
	size_t n = 0;
	switch (type) {
	case 0:
		if (!pin_ok(code))
			return E422(v, "code", "a PIN is 2-8 digits and must not start with 9");
		snprintf(canon, sizeof canon, "%s", code);
		break;
	case 1: case 2: /* RF and UHF card numbers: letters and digits, case-insensitive */
		for (const char *p = code; *p; p++) {
			if (!isalnum((unsigned char)*p) || n >= 32)
				return E422(v, "code", "a %s card number is 1-32 letters or digits",
					    types[type]);
			canon[n++] = (char)toupper((unsigned char)*p);
		}
		canon[n] = '\0';
		break;
	case 3: /* plates as the camera reads them: no spaces or dashes, upper case */
		for (const char *p = code; *p; p++) {
			if (*p == ' ' || *p == '-' || *p == '.')
				continue;
			if ((unsigned char)*p < 0x20 || n >= 32)
				return E422(v, "code", "a licence plate is at most 32 characters");
			canon[n++] = (char)toupper((unsigned char)*p);
		}
		canon[n] = '\0';
		if (!n)
			return E422(v, "code", "a licence plate needs letters or digits");
		if (!lt && (!hf || !hu))
			return E422(v, "valid_until", "a plate that is not long-term needs valid_from "
						      "and valid_until (its entry window)");
		break;
	default:
		for (const char *p = code; *p; p++)
			if ((unsigned char)*p < 0x20)
				return E422(v, "code", "code must be printable");
		snprintf(canon, sizeof canon, "%s", code);
	}
	json_object_set_new(d, "code", json_string(canon));
	if (type != 3)
		json_object_del(d, "long_term");
	return 0;
}

/* What the database decides of a credential with normalized fields: the
 * limits per person, the code's uniqueness. */
static int credential_db(vctx_t *v)
{
	const char *const *types = cred_types;
	const char *person = field(v, "person"), *key = field(v, "temp_key"), *canon = field(v, "code");
	const char *tname = field(v, "type");
	int type = -1;
	for (int i = 0; tname && types[i]; i++)
		if (!strcmp(tname, types[i]))
			type = i;
	if (type < 0 || !canon)
		return 0; /* refused by credential_fields */
	/* per-person limits of the manuals (bulk: counted at its end) */
	if (person && (type == 2 || type == 3) && !v->bulk) {
		sqlite3_stmt *s = store_stmt(v->st, "SELECT count(*) FROM credentials INDEXED BY credentials_person "
						    "WHERE person = ? AND type = ? AND id <> ?");
		if (!s)
			return store_db_err(v->st, v->err, "counting credentials");
		sqlite3_bind_text(s, 1, person, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 2, types[type], -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 3, v->id, -1, SQLITE_STATIC);
		if (sqlite3_step(s) != SQLITE_ROW) {
			sqlite3_reset(s);
			return store_db_err(v->st, v->err, "counting credentials");
		}
		int64_t cnt = sqlite3_column_int64(s, 0);
		sqlite3_reset(s);
		if (cnt >= (type == 2 ? ENT_MAX_UHF : ENT_MAX_PLATES))
			return gh_err(v->err, 422, "too_many", "code", "a person has at most %d %s",
				      type == 2 ? ENT_MAX_UHF : ENT_MAX_PLATES,
				      type == 2 ? "UHF cards" : "licence plates");
	}
	char scopebuf[80] = "";
	if (type == 0) {
		const settings_t *set = settings_get(v->st);
		if (!set)
			return store_db_err(v->st, v->err, "reading settings");
		int aptpin = set->apt_pin;
		const char *scope = "";
		if (aptpin) {
			sqlite3_stmt *s = store_stmt(v->st, person ? "SELECT apartment FROM persons WHERE id = ?"
								   : "SELECT apartment FROM temp_keys WHERE id = ?");
			if (!s)
				return store_db_err(v->st, v->err, "reading owner");
			sqlite3_bind_text(s, 1, person ? person : key, -1, SQLITE_STATIC);
			if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0))
				snprintf(scopebuf, sizeof scopebuf, "%s",
					 (const char *)sqlite3_column_text(s, 0));
			sqlite3_reset(s);
			scope = scopebuf;
		}
		if (pin_unique(v, canon, scope, v->id, NULL, "code"))
			return -1;
	} else {
		/* a card or plate opens for one holder only */
		sqlite3_stmt *s = store_stmt(v->st, "SELECT 1 FROM credentials WHERE type = ? AND code = ? AND id <> ? LIMIT 1");
		if (!s)
			return store_db_err(v->st, v->err, "checking code");
		sqlite3_bind_text(s, 1, types[type], -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 2, canon, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 3, v->id, -1, SQLITE_STATIC);
		int rc = v->bulk ? SQLITE_DONE : sqlite3_step(s); /* bulk: checked at its end */
		sqlite3_reset(s);
		if (rc == SQLITE_ROW)
			return gh_err(v->err, 409, "duplicate", "code", "this %s is already registered",
				      types[type]);
	}
	return 0;
}

static int v_parking_lot(vctx_t *v)
{
	int64_t n;
	json_t *d = v->d;
	if (name_field(v, "name", 1, NAME_MAX_BYTES) ||
	    jf_int(d, "capacity", NULL, 0, 0, 1000000, 1, 0, &n, NULL, v->err))
		return -1;
	static const char *ends[] = { "entry", "exit" };
	for (int i = 0; i < 2; i++) {
		json_t *r = json_object_get(d, ends[i]);
		if (!r || json_is_null(r)) {
			json_object_set_new(d, ends[i], json_null());
			continue;
		}
		if (relay_ref(v, r, ends[i]))
			return -1;
		if (!json_object_get(r, "board"))
			return E422(v, ends[i], "%s must be a board channel {\"board\",\"channel\"}", ends[i]);
	}
	json_t *rd = json_object_get(d, "readers");
	if (!rd || json_is_null(rd))
		json_object_set_new(d, "readers", json_array());
	else if (!json_is_array(rd))
		return E422(v, "readers", "readers must be a list of {\"board\",\"direction\"}");
	return 0;
}

/* The entities checked in two halves (vctx_t.phase): their fields
 * (references checked to exist, but without the database), then the
 * database's rules; in VPHASE_DB the normalized fields' references (REF,
 * REF2) are checked first. */
static const struct half {
	int (*fields)(vctx_t *);
	ent_t ref_e, ref2_e;
	const char *ref, *ref2;
	int (*db)(vctx_t *);
} halves_of[ENT__COUNT] = {
	[ENT_APARTMENT] = { apartment_fields, ENT_BUILDING, ENT_BUILDING, "building", NULL, apartment_db },
	[ENT_PERSON] = { person_fields, ENT_APARTMENT, ENT_BUILDING, "apartment", "building", person_db },
	[ENT_CREDENTIAL] = { credential_fields, ENT_PERSON, ENT_TEMP_KEY, "person", "temp_key", credential_db },
};

static int halves(vctx_t *v, const struct half *h)
{
	if (v->phase == VPHASE_DB) {
		if (ref_exists(v, h->ref_e, h->ref, NULL, field(v, h->ref)) ||
		    (h->ref2 && ref_exists(v, h->ref2_e, h->ref2, NULL, field(v, h->ref2))))
			return -1;
	} else if (h->fields(v)) {
		return -1;
	}
	return v->phase == VPHASE_FIELDS ? 0 : h->db(v);
}

int validate_entity(vctx_t *v)
{
	if (v->phase == VPHASE_FIELDS) /* no database here (ent_prepare) */
		return v->e < ENT__COUNT && halves_of[v->e].fields
			       ? halves(v, &halves_of[v->e])
			       : gh_err(v->err, 500, "internal", "", "%s: no field check of its own", ent_name(v->e));
	/* local date-times in the input are the site's (settings_get sets TZ) */
	if (v->e != ENT_SETTINGS && !settings_get(v->st))
		return store_db_err(v->st, v->err, "reading settings");
	switch (v->e) {
	case ENT_SETTINGS: return v_settings(v);
	case ENT_MAC: return v_mac(v);
	case ENT_BUILDING: return v_building(v);
	case ENT_APARTMENT:
	case ENT_PERSON:
	case ENT_CREDENTIAL: return halves(v, &halves_of[v->e]);
	case ENT_DEVICE: return v_device(v);
	case ENT_RELAY_BOARD: return v_relay_board(v);
	case ENT_ACCESS_GROUP: return v_access_group(v);
	case ENT_TEMP_KEY: return v_temp_key(v);
	case ENT_PARKING_LOT: return v_parking_lot(v);
	default: return gh_err(v->err, 400, "invalid", "", "unknown entity");
	}
}
