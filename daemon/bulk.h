#ifndef GH_BULK_H
#define GH_BULK_H

/* A first snapshot into an empty box (bulk load).
 *
 * Card numbers and PINs come in no order: each credential's insert into
 * credentials_lookup (type, code, ...) lands on a random leaf of an index
 * five times the page cache, and every commit writes those leaves again
 * (1M credentials: 31 s, ~4 GB of WAL). So while such a snapshot runs the
 * index is dropped (its SQL kept in sync_state, so that a crash cannot lose
 * it), the uniqueness of codes among credentials is not checked entity by
 * entity (ent_ctx.bulk), and at its end the index is built once, by a sort.
 * What would have been refused in order is refused then: the credentials
 * sharing a code, a person's UHF cards or plates past the limit, temp keys
 * whose PIN an earlier credential holds (and their credentials) are deleted
 * and put again one by one in the order they were applied (lrev), the index
 * there, so the validator decides and words each as it would have. */

#include "entity.h"
#include "err.h"
#include "store.h"

/* Drops the lookup index (inside the caller's transaction); store_bulk is
 * 1 from then until bulk_end. Nothing done if the index is already gone. */
int bulk_begin(store_t *st, gh_err_t *err);

/* An entity put again at the end and refused (a duplicate): ERR says why,
 * DATA is its stored JSON, REV the cloud revision it came with. */
typedef void (*bulk_refused_fn)(void *ctx, ent_t e, const char *id, int64_t rev, const char *data,
				const gh_err_t *err);

/* Builds the index and refuses the duplicates (inside the caller's
 * transaction); nothing done when no bulk load is open. */
int bulk_end(store_t *st, bulk_refused_fn refused, void *ctx, gh_err_t *err);

#endif
