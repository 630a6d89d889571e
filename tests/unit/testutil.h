/* Shared helpers of the Criterion suites: a fresh real SQLite store in a
 * temp dir (with the reference Modbus profiles loaded), JSON literals, and
 * entity puts that assert. Tests run from the repository root. */
#ifndef GH_TESTUTIL_H
#define GH_TESTUTIL_H

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "entity.h"
#include "err.h"
#include "log.h"
#include "profile.h"
#include "store.h"
#include "timeutil.h"

static char tu_dir[256];

/* A new empty database file in its own temp dir. */
static inline const char *tu_db_path(void)
{
	static char path[300];
	snprintf(tu_dir, sizeof tu_dir, "/tmp/gh-test-XXXXXX");
	cr_assert_not_null(mkdtemp(tu_dir));
	snprintf(path, sizeof path, "%s/site.db", tu_dir);
	return path;
}

static inline store_t *tu_store(void)
{
	gh_log_set_level(GH_LOG_ERR);
	gh_err_t err = { 0 };
	if (profile_count() == 0)
		cr_assert_eq(profiles_load("drivers/profiles", &err), 0, "%s", err.message);
	store_t *st = store_open(tu_db_path(), &err);
	cr_assert_not_null(st, "%s", err.message);
	gh_tz_set("UTC");
	return st;
}

static inline void tu_rmdir(void)
{
	char cmd[320];
	if (tu_dir[0]) {
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", tu_dir);
		if (system(cmd)) {
		}
	}
}

static inline json_t *tu_json(const char *text)
{
	json_error_t je;
	json_t *j = json_loads(text, 0, &je);
	cr_assert_not_null(j, "bad JSON literal in test: %s: %s", je.text, text);
	return j;
}

/* Puts ENTITY (JSON text with its "id") and asserts success. */
static inline void tu_put(store_t *st, ent_t e, const char *text)
{
	gh_err_t err = { 0 };
	json_t *j = tu_json(text);
	int rc = ent_put(st, e, NULL, j, NULL, NULL, &err);
	cr_assert_eq(rc, 0, "put %s %s failed: %d %s (%s)", ent_name(e), text, err.status,
		     err.message, err.field);
	json_decref(j);
}

/* Puts ENTITY expecting failure; returns the error. */
static inline gh_err_t tu_put_fail(store_t *st, ent_t e, const char *text)
{
	gh_err_t err = { 0 };
	json_t *j = tu_json(text);
	int rc = ent_put(st, e, NULL, j, NULL, NULL, &err);
	cr_assert_eq(rc, -1, "put %s %s should have failed", ent_name(e), text);
	json_decref(j);
	return err;
}

#endif
