/* What is wrong, in words: problems read from the status document. */
#ifndef GH_DIAGNOSE_H
#define GH_DIAGNOSE_H

#include <jansson.h>
#include <stdio.h>

/* [{"level":"error"|"warning","what":...,"fix":...}] for status S (the
 * ctl "status" answer, plus "daemon": "running"|"stopped"); [] when fine. */
json_t *status_problems(const json_t *s);

/* The status as a person reads it: a summary, then each problem and what to
 * check ("problems" of S, as status_problems made them). */
void status_print(FILE *f, const json_t *s);

#endif
