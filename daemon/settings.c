#include "settings.h"

#include <stdio.h>
#include <string.h>

#include "entity.h"
#include "log.h"
#include "timeutil.h"

json_t *settings_defaults(void)
{
	return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:b,s:i,s:{s:b,s:s,s:b},s:i,s:i}",
			 "kind", "community", "name", "", "address", "", "timezone", "UTC",
			 "date_format", "YYYY-MM-DD", "time_format", "24h", "feature_plan",
			 "premium", "pin_mode", "pin", "access_permission", "public_private",
			 "log_calls_without_open", 0, "temp_key_max_days", 0, "emergency",
			 "auto_unlock", 0, "doors", "all", "notify", 1, "lift_grant_s", 10,
			 "relay_hold_ms", 5000);
}

static int jbool(json_t *o, const char *k) { return json_is_true(json_object_get(o, k)); }

static int jint(json_t *o, const char *k, int def)
{
	json_t *v = json_object_get(o, k);
	return json_is_integer(v) ? (int)json_integer_value(v) : def;
}

static const char *jstr(json_t *o, const char *k, const char *def)
{
	json_t *v = json_object_get(o, k);
	return json_is_string(v) ? json_string_value(v) : def;
}

int settings_load(store_t *st, settings_t *s)
{
	memset(s, 0, sizeof *s);
	json_t *d = NULL;
	if (ent_get(st, ENT_SETTINGS, "site", &d, NULL))
		return -1;
	snprintf(s->kind, sizeof s->kind, "%s", jstr(d, "kind", "community"));
	snprintf(s->timezone, sizeof s->timezone, "%s", jstr(d, "timezone", "UTC"));
	s->apt_pin = strcmp(jstr(d, "pin_mode", "pin"), "apt_pin") == 0;
	s->public_only = strcmp(jstr(d, "access_permission", ""), "public_only") == 0;
	s->premium = strcmp(jstr(d, "feature_plan", "premium"), "premium") == 0;
	s->log_calls_without_open = jbool(d, "log_calls_without_open");
	s->temp_key_max_days = jint(d, "temp_key_max_days", 0);
	json_t *em = json_object_get(d, "emergency");
	s->emergency_auto_unlock = jbool(em, "auto_unlock");
	s->emergency_notify = jbool(em, "notify");
	s->emergency_doors = json_incref(json_object_get(em, "doors"));
	s->lift_grant_s = jint(d, "lift_grant_s", 10);
	s->relay_hold_ms = jint(d, "relay_hold_ms", 5000);
	json_decref(d);
	return 0;
}

void settings_free(settings_t *s)
{
	json_decref(s->emergency_doors);
	s->emergency_doors = NULL;
}

/* One cache per process: the daemon and the CLI each open one store. */
static struct {
	unsigned serial, gen;
	int valid;
	settings_t s;
} g_cache;

const settings_t *settings_get(store_t *st)
{
	if (g_cache.valid && g_cache.serial == store_serial(st) && g_cache.gen == store_settings_gen(st))
		return &g_cache.s;
	settings_free(&g_cache.s);
	g_cache.valid = 0;
	if (settings_load(st, &g_cache.s))
		return NULL;
	if (strcmp(gh_tz_name(), g_cache.s.timezone) && gh_tz_set(g_cache.s.timezone))
		log_warn("store", "site time zone %s unknown, keeping %s", g_cache.s.timezone, gh_tz_name());
	g_cache.serial = store_serial(st);
	g_cache.gen = store_settings_gen(st);
	g_cache.valid = 1;
	return &g_cache.s;
}
