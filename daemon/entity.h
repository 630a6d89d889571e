/* The entities of CLOUD.md: one JSON representation, one validator, one
 * place that maps them to SQLite. Used by the cloud link, the REST API, the
 * CLI, imports and device sync alike. */
#ifndef GH_ENTITY_H
#define GH_ENTITY_H

#include <jansson.h>
#include <stdint.h>

#include "err.h"
#include "store.h"

typedef enum {
	ENT_SETTINGS,
	ENT_MAC,
	ENT_BUILDING,
	ENT_APARTMENT,
	ENT_PERSON,
	ENT_DEVICE,
	ENT_RELAY_BOARD,
	ENT_ACCESS_GROUP,
	ENT_TEMP_KEY,
	ENT_CREDENTIAL,
	ENT_PARKING_LOT,
	ENT__COUNT
} ent_t;

const char *ent_name(ent_t e);   /* "building" */
const char *ent_plural(ent_t e); /* "buildings" (REST path) */
/* Entity from its singular or plural name; -1 if unknown. */
int ent_parse(const char *name);

/* per-person limits of the manuals: at most 5 UHF cards and 5 plates */
#define ENT_MAX_UHF 5
#define ENT_MAX_PLATES 5

typedef struct ent_ctx {
	int local;          /* an edit made on the box: audited and journaled for the cloud */
	const char *actor;  /* audit "who": user name, "cli", "import", "cloud" */
	int64_t rev;        /* cloud revision being applied (0 for local edits) */
	int lenient_refs;   /* cloud snapshots: don't refuse dangling member references */
	int in_caller_tx;   /* no savepoint of its own: the caller's transaction is
			     * rolled back as a whole when ent_put returns -2 */
	int consume;        /* ent_put may change DATA in place (the caller's own
			     * tree, freed after): no copy */
	const char *prepared; /* DATA went through ent_prepare, which made this
			       * JSON (PREPARED_LEN bytes): the database's
			       * rules are what is left to check */
	size_t prepared_len;
	int bulk;           /* a first snapshot into an empty box (bulk.h): the
			     * uniqueness of codes among credentials and the
			     * per-person limits are checked at its end */
} ent_ctx_t;

/* The half of ent_put that needs no database, for a thread that is not the
 * store's (a cloud page's parser): ID checked, the fields of DATA checked
 * and normalized in place (box-owned ones dropped). Then DATA's compact
 * JSON (json_dumpb, JSON_COMPACT) goes to ent_put as ctx.prepared, which
 * checks what the database decides (references, limits, uniqueness) and
 * writes. Only persons, apartments and credentials without local date-times
 * (those need the site's time zone) are taken. 1 prepared; 0 not taken
 * (ent_put does it all); -1 refused (ERR says why, as ent_put would). */
int ent_prepare(ent_t e, const char *id, json_t *data, gh_err_t *err);

/* Validates DATA (not modified, unless CTX->consume) as entity E and creates or replaces it.
 * The id is ID, else DATA's "id", else a new "local-..." id (an id is
 * required for settings ("site"), macs and devices (the MAC)). On success
 * *OUT (if not NULL) receives the stored canonical entity with its "id".
 * Errors: 400 malformed, 409 duplicate (e.g. PIN already used), 422 a rule
 * broken (field named), 500 database. Runs in its own (nested) transaction:
 * a failure changes nothing. With CTX->in_caller_tx it runs in the caller's
 * (a cloud page: a savepoint per entity costs ~1.2 us of 15): -1 still
 * changes nothing (it fails before writing), -2 means a write failed and
 * the caller's transaction must be rolled back. */
int ent_put(store_t *st, ent_t e, const char *id, const json_t *data, const ent_ctx_t *ctx,
	    json_t **out, gh_err_t *err);

/* Validates DATA as entity E without storing it; *out gets the canonical
 * form (defaults filled, times in Unix seconds). */
int ent_check(store_t *st, ent_t e, const char *id, const json_t *data, json_t **out,
	      gh_err_t *err);

/* The stored entity (404 if none; settings: defaults when never set). */
int ent_get(store_t *st, ent_t e, const char *id, json_t **out, gh_err_t *err);

/* Deletes entity E with its dependants (the manuals' cascade: a person's
 * credentials, an apartment's residents, ...). 404 if absent; 409 if still
 * in use where the manuals forbid it (a MAC bound to a device). */
int ent_delete(store_t *st, ent_t e, const char *id, const ent_ctx_t *ctx, gh_err_t *err);

/* A page of entities ordered by id, after CURSOR (NULL = first page).
 * *out: a JSON array. */
int ent_list(store_t *st, ent_t e, const char *cursor, int limit, json_t **out, gh_err_t *err);
/* The same, keeping only entities whose KEYS[i] equals VALS[i] (N filters;
 * the names each kind offers: building, apartment, person, kind, type,
 * temp_key, bus). 400 naming the filter a kind does not offer. */
int ent_list_where(store_t *st, ent_t e, const char *const *keys, const char *const *vals, int n,
		   const char *cursor, int limit, json_t **out, gh_err_t *err);
/* Every filter name of ent_list_where, NULL-terminated. */
extern const char *const ent_list_keys[];
/* 1 if entity E with ID exists, 0 if not, -1 on a database error. */
int ent_exists_pub(store_t *st, ent_t e, const char *id);
/* The cloud applied a local change of entity E: it now carries the cloud's
 * REV and is cloud-owned again, unless STILL_LOCAL (edited again since,
 * with a change still to push). */
int ent_synced(store_t *st, ent_t e, const char *id, int64_t rev, int still_local);
/* Ids of the cloud-owned entities of kind E not written since local
 * revision LREV0 (what a full snapshot did not contain); NULL on error. */
json_t *ent_cloud_stale(store_t *st, ent_t e, int64_t lrev0);
/* Number of stored entities of kind E. */
int64_t ent_count(store_t *st, ent_t e);
/* 1 when the table has a row, 0 when empty, -1 on error (cheap, unlike a count). */
int ent_any(store_t *st, ent_t e);

/* Apartment reset (PRODUCT.md, manual "Reset apartments"): removes family
 * members, the master's contact data (email, mobile, country code,
 * landlines, app account), the apartment's logs except audit logs,
 * messages, alarms, and its access settings (PIN, face, QR credentials and
 * the apartment's temp keys); keeps the master account and its state
 * (active, expiry), RF/UHF/plate credentials, call settings and audit logs.
 * Audited. 404 if no such apartment. */
int ent_apartment_reset(store_t *st, const char *apartment_id, const ent_ctx_t *ctx,
			gh_err_t *err);

/* Floor label "-10".."128" or "G0".."G2" (also accepts an integer JSON
 * value); canonical label into OUT. */
int floor_label_ok(const json_t *v, char out[8]);
/* APT number rule: 1-6 of digits, letters, '#', not starting with '#'. */
int apt_ok(const char *apt);
/* PIN rule: 2-8 digits, not starting with 9. */
int pin_ok(const char *pin);
/* MAC: 12 hex digits (':' and '-' separators accepted), canonical
 * upper-case into OUT. */
int mac_normalize(const char *in, char out[13]);

#endif
