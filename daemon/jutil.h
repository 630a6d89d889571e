/* Typed, bounded access to JSON fields of outside input. Each getter checks
 * the type and the limits, fills the default when the field is absent (and
 * writes it back, so the stored entity is canonical), and on error names the
 * field ("relays[2].n") and the rule. All return 0 or -1 with *err. */
#ifndef GH_JUTIL_H
#define GH_JUTIL_H

#include <jansson.h>
#include <stdint.h>

#include "err.h"

/* String of at most MAXBYTES bytes (UTF-8 checked by jansson). Absent or
 * null: error if REQUIRED, else *out = NULL (or DEF written if not NULL). */
int jf_str(json_t *o, const char *key, const char *path, int required, size_t maxbytes,
	   const char *def, const char **out, gh_err_t *err);
int jf_bool(json_t *o, const char *key, const char *path, int def, int *out, gh_err_t *err);
/* Integer in [MIN, MAX]; absent/null: DEF unless HAS_DEF == 0 and
 * REQUIRED, in which case an error; with no default and not required,
 * *present = 0. */
int jf_int(json_t *o, const char *key, const char *path, int required, int64_t min, int64_t max,
	   int has_def, int64_t def, int64_t *out, int *present, gh_err_t *err);
/* One of VALS (NULL-terminated); absent: VALS[DEF] (or error if DEF < 0). */
int jf_enum(json_t *o, const char *key, const char *path, const char *const *vals, int def,
	    int *out, gh_err_t *err);
/* Time (Unix seconds or ISO-8601, see gh_ts_parse), null allowed; the
 * stored form is Unix seconds. */
int jf_ts(json_t *o, const char *key, const char *path, int64_t *out, int *present, gh_err_t *err);

/* Builds "PREFIX.KEY" or "PREFIX[i].KEY" into BUF. */
const char *jpath(char *buf, size_t len, const char *prefix, long idx, const char *key);

/* Compact dump (caller frees). */
char *jdump(const json_t *v);
/* "local-" + 16 random hex digits. */
void gh_local_id(char out[32]);
/* 32 random hex digits (change ids, command ids). */
void gh_random_hex(char *out, size_t bytes);

#endif
