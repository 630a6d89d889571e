/* Internals shared by entity.c, validate.c and rows.c. */
#ifndef GH_ENTITY_INT_H
#define GH_ENTITY_INT_H

#include "entity.h"

struct ent_info {
	const char *name, *plural, *table;
};
extern const struct ent_info ent_info[ENT__COUNT];

typedef struct vctx {
	store_t *st;
	ent_t e;
	const char *id;
	json_t *d;        /* entity being validated; normalized in place */
	gh_err_t *err;
	int lenient;      /* don't refuse dangling references (cloud snapshots) */
	int bulk;         /* codes' uniqueness among credentials and per-person limits left to bulk_end */
	const json_t *before; /* stored version, NULL on create */
	int phase;        /* VPHASE_*: what validate_entity checks */
	const char *json; /* the entity's JSON made already (ent_prepare), or NULL */
	size_t json_len;
} vctx_t;

/* VPHASE_ALL: every rule. The entities ent_prepare takes (persons,
 * apartments, credentials) are also checked in two halves: VPHASE_FIELDS,
 * without the database (ST is NULL: another thread may run it), then
 * VPHASE_DB, the references, limits and uniqueness on the normalized
 * fields. */
enum { VPHASE_ALL, VPHASE_FIELDS, VPHASE_DB };

/* 1 exists, 0 not, -1 error. */
int ent_exists(store_t *st, ent_t e, const char *id);
/* validate.c: the rules of the manuals; normalizes v->d. */
int validate_entity(vctx_t *v);
/* rows.c: main row + derived rows of a validated entity. */
int rows_write(vctx_t *v, const ent_ctx_t *ctx, int64_t lrev);
/* rows.c: derived rows that no foreign key cascades (group members...). */
int rows_delete_extra(store_t *st, ent_t e, const char *id, int64_t lrev);
int audit_write(store_t *st, const char *actor, const char *action, ent_t e, const char *id,
		const json_t *before, const json_t *after);

/* Access methods (relay "methods", MQTT access.check "method"). */
extern const char *const gh_methods[];
/* Index into gh_methods, or -1. */
int method_index(const char *name);

#endif
