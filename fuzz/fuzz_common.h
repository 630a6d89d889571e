/* Shared by the libFuzzer harnesses (fuzz/README.md): a real site store in
 * SQLite's memory (the product's schema, migrations and statement cache),
 * seeded once with a small community, and put back to that seed before
 * every input by an online backup from a pristine copy (cheap: a few dozen
 * pages), so one input never sees what another wrote. */
#ifndef GH_FUZZ_COMMON_H
#define GH_FUZZ_COMMON_H

#include <jansson.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "entity.h"
#include "err.h"
#include "log.h"
#include "profile.h"
#include "store.h"
#include "timeutil.h"

#ifndef GH_SRCDIR
#define GH_SRCDIR "."
#endif

/* the harnesses' own fixtures are trusted: a failure is a broken harness */
static inline void fz_die(const char *what, const gh_err_t *err)
{
	fprintf(stderr, "fuzz harness setup: %s: %s %s (%s)\n", what, err ? err->code : "",
		err ? err->message : "", err ? err->field : "");
	abort();
}

/* logs of rejected input are the normal case: only errors, and those are
 * noise too unless GH_FUZZ_LOG=1 */
static inline void fz_quiet(void)
{
	const char *v = getenv("GH_FUZZ_LOG");
	gh_log_set_level(v && *v == '1' ? GH_LOG_DEBUG : 1);
	gh_tz_set("UTC");
}

static inline void fz_profiles(void)
{
	gh_err_t err = { 0 };
	if (profile_count() == 0 && profiles_load(GH_SRCDIR "/drivers/profiles", &err))
		fz_die("profiles", &err);
}

static inline store_t *fz_open_store(void)
{
	gh_err_t err = { 0 };
	store_t *st = store_open(":memory:", &err);
	if (!st)
		fz_die("store_open", &err);
	return st;
}

static inline void fz_put(store_t *st, ent_t e, const char *text)
{
	gh_err_t err = { 0 };
	json_error_t je;
	json_t *j = json_loads(text, 0, &je);
	if (!j) {
		fprintf(stderr, "fuzz harness setup: bad fixture %s: %s\n", text, je.text);
		abort();
	}
	if (ent_put(st, e, NULL, j, NULL, NULL, &err))
		fz_die(text, &err);
	json_decref(j);
}

#define FZ_DP "0C11050B9814"   /* door phone, relays 1 and 2 */
#define FZ_IM "0C11050B9815"   /* indoor monitor in a101 */
#define FZ_GP "0C11050B9816"   /* guard phone */
#define FZ_FREE "0C11050B9817" /* in the MAC library, no device */

/* A small community with one entity of every kind (the unit tests'
 * fixtures): buildings, apartments, residents with credentials, devices,
 * relay boards (relay, lift, UHF reader), a group, a temp key, a lot. */
static inline void fz_seed_site(store_t *st)
{
	fz_put(st, ENT_SETTINGS, "{\"pin_mode\":\"apt_pin\",\"emergency\":{\"auto_unlock\":true,"
				 "\"doors\":\"all\",\"notify\":true}}");
	fz_put(st, ENT_BUILDING, "{\"id\":\"b1\",\"name\":\"Tower A\",\"ground_floor\":\"G0\"}");
	fz_put(st, ENT_BUILDING, "{\"id\":\"b2\",\"name\":\"Tower B\"}");
	fz_put(st, ENT_APARTMENT, "{\"id\":\"a101\",\"building\":\"b1\",\"apt\":\"101\",\"floor\":\"1\"}");
	fz_put(st, ENT_APARTMENT, "{\"id\":\"a102\",\"building\":\"b1\",\"apt\":\"102\",\"floor\":\"1\"}");
	fz_put(st, ENT_APARTMENT, "{\"id\":\"a201\",\"building\":\"b2\",\"apt\":\"101\",\"floor\":\"1\"}");
	fz_put(st, ENT_PERSON, "{\"id\":\"p101\",\"kind\":\"resident\",\"apartment\":\"a101\","
			       "\"first_name\":\"Anna\",\"last_name\":\"Berger\"}");
	fz_put(st, ENT_PERSON, "{\"id\":\"p102\",\"kind\":\"resident\",\"apartment\":\"a102\","
			       "\"first_name\":\"Ben\",\"last_name\":\"Huber\"}");
	fz_put(st, ENT_CREDENTIAL, "{\"id\":\"c101pin\",\"person\":\"p101\",\"type\":\"pin\",\"code\":\"1111\"}");
	fz_put(st, ENT_CREDENTIAL, "{\"id\":\"c101rf\",\"person\":\"p101\",\"type\":\"rf\",\"code\":\"RF101\"}");
	fz_put(st, ENT_CREDENTIAL, "{\"id\":\"c101uhf\",\"person\":\"p101\",\"type\":\"uhf\",\"code\":\"E2000101\"}");
	fz_put(st, ENT_CREDENTIAL, "{\"id\":\"c101plate\",\"person\":\"p101\",\"type\":\"plate\",\"code\":\"W-101 A\"}");
	fz_put(st, ENT_CREDENTIAL, "{\"id\":\"c102pin\",\"person\":\"p102\",\"type\":\"pin\",\"code\":\"2222\"}");
	fz_put(st, ENT_MAC, "{\"id\":\"" FZ_DP "\",\"remark\":\"lobby\"}");
	fz_put(st, ENT_MAC, "{\"id\":\"" FZ_IM "\"}");
	fz_put(st, ENT_MAC, "{\"id\":\"" FZ_GP "\"}");
	fz_put(st, ENT_MAC, "{\"id\":\"" FZ_FREE "\"}");
	fz_put(st, ENT_DEVICE, "{\"id\":\"" FZ_DP "\",\"type\":0,\"name\":\"Lobby door\",\"area\":\"site\","
			       "\"relays\":[{\"n\":1,\"name\":\"Main door\"},{\"n\":2,\"name\":\"Side gate\"}]}");
	fz_put(st, ENT_DEVICE, "{\"id\":\"" FZ_IM "\",\"type\":2,\"name\":\"Monitor 101\",\"area\":\"apartment\","
			       "\"apartment\":\"a101\"}");
	fz_put(st, ENT_DEVICE, "{\"id\":\"" FZ_GP "\",\"type\":3,\"name\":\"Guard\"}");
	fz_put(st, ENT_RELAY_BOARD, "{\"id\":\"rb1\",\"profile\":\"MK485-G2R-8J8C\",\"bus\":\"/dev/ttyUSB0\","
				    "\"channels\":[{\"channel\":1},{\"channel\":2}]}");
	fz_put(st, ENT_RELAY_BOARD, "{\"id\":\"rb3\",\"profile\":\"RSAC-C1-R8\",\"bus\":\"/dev/ttyUSB2\","
				    "\"channels\":[{\"channel\":1,\"function\":\"barrier\"},"
				    "{\"channel\":2,\"function\":\"barrier\"}]}");
	fz_put(st, ENT_ACCESS_GROUP, "{\"id\":\"g1\",\"name\":\"Residents\",\"members\":{\"persons\":[\"p101\",\"p102\"],"
				     "\"apartments\":[\"a101\"]},\"relays\":[{\"device\":\"" FZ_DP "\",\"relay\":1},"
				     "{\"board\":\"rb1\",\"channel\":2}]}");
	fz_put(st, ENT_TEMP_KEY, "{\"id\":\"k101\",\"apartment\":\"a101\",\"code\":\"5151\",\"devices\":[\"" FZ_DP "\"],"
				 "\"schedule\":{\"end\":\"2099-01-01T00:00:00Z\"}}");
	fz_put(st, ENT_PARKING_LOT, "{\"id\":\"lot1\",\"name\":\"Garage\",\"capacity\":40,"
				    "\"entry\":{\"board\":\"rb3\",\"channel\":1},\"exit\":{\"board\":\"rb3\",\"channel\":2}}");
}

/* ---- reset between inputs ---- */

static sqlite3 *fz_pristine;

static inline void fz_copy(sqlite3 *to, sqlite3 *from)
{
	sqlite3_backup *b = sqlite3_backup_init(to, "main", from, "main");
	if (!b || sqlite3_backup_step(b, -1) != SQLITE_DONE) {
		fprintf(stderr, "fuzz harness: backup failed: %s\n", sqlite3_errmsg(to));
		abort();
	}
	sqlite3_backup_finish(b);
}

/* Keeps the store's current content as the state every input starts from. */
static inline void fz_snapshot(store_t *st)
{
	if (!fz_pristine && sqlite3_open(":memory:", &fz_pristine) != SQLITE_OK)
		abort();
	fz_copy(fz_pristine, store_db(st));
}

/* Puts the store back to the snapshot (a transaction an input left open
 * is rolled back first); the settings and device caches reload. */
static inline void fz_restore(store_t *st)
{
	while (store_in_tx(st))
		store_rollback(st);
	fz_copy(store_db(st), fz_pristine);
	store_settings_touch(st);
}

/* NUL-terminated copy of a fuzz input (caller frees). */
static inline char *fz_strndup(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (!s)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

#endif
