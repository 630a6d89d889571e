/* Access schedules (access groups, relay schedules, temp keys), evaluated
 * in the site time zone on the wall clock: a daily 02:00-03:00 window does
 * not open on a spring-forward day and opens twice on a fall-back day. */
#ifndef GH_SCHED_H
#define GH_SCHED_H

#include <jansson.h>
#include <stdint.h>

#include "err.h"

enum { SCHED_NEVER = 0, SCHED_DAILY = 1, SCHED_WEEKLY = 2 };

typedef struct sched {
	int repeat;          /* SCHED_* */
	int has_start, has_end;
	int64_t start, end;  /* validity bounds (never: the range itself) */
	unsigned days;       /* weekly: bit d (1 = Monday .. 7 = Sunday) */
	int from_min, to_min; /* window; -1 = whole day; to < from spans midnight */
} sched_t;

/* Parses and normalizes a schedule object (CLOUD.md) at FIELD; rewrites
 * times in canonical form (Unix seconds). A NULL or missing schedule means
 * "always" (never-repeat, no bounds). Returns 0 or -1 with *err. */
int sched_from_json(json_t *obj, const char *field, sched_t *out, gh_err_t *err);

enum { SCHED_OPEN = 0, SCHED_CLOSED = 1, SCHED_ENDED = 2, SCHED_NOT_STARTED = 3 };
/* SCHED_OPEN if NOW falls in the schedule; otherwise why not. */
int sched_eval(const sched_t *s, int64_t now);

#endif
