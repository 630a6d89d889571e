/* Residents CSV import (`gatehouse import residents CSV`, the web UI's
 * import): the manuals' property-manager and installer templates, see
 * docs/IMPORT.md. Every write goes through ent_put with the caller's
 * context, so the one validator applies and local edits are audited and
 * journaled. */
#ifndef GH_IMPORT_H
#define GH_IMPORT_H

#include <jansson.h>
#include <stdio.h>

#include "entity.h"
#include "err.h"
#include "store.h"

/* Imports the residents CSV read from F (header row required; columns
 * matched by name, case, spaces and underscores ignored). Each data row
 * creates (or reuses) its building and apartment, then creates the person
 * with floors, landlines, credentials (RF, PIN, plates, UHF) and access
 * group membership, in a nested transaction of its own.
 *
 * All or nothing unless PARTIAL: if a row fails, everything is rolled back
 * and -1 is returned with *err (422, "rows_failed"); with PARTIAL the good
 * rows are kept and 0 is returned. A file that cannot be used at all
 * (empty, unreadable CSV, unknown or missing columns) or a database error
 * rolls everything back and returns -1 (400/422/500) in either mode.
 *
 * *REPORT (if not NULL) always receives
 * {"rows":N,"imported":K,"failed":F,"errors":[{"line":L,"field":COLUMN,
 * "code":...,"message":...}],"warnings":[...]}: LINE is the CSV line the
 * row starts on (header = 1), FIELD the column as written in the header
 * ("" when not about one column); K is 0 when everything was rolled back. */
int import_residents(store_t *st, FILE *f, const ent_ctx_t *ctx, int partial, json_t **report,
		     gh_err_t *err);

#endif
