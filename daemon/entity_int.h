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
	const json_t *before; /* stored version, NULL on create */
} vctx_t;

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
