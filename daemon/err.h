/* One error convention: functions return 0 or -1 and fill a gh_err_t that
 * names the field and the rule broken, with an HTTP-like status:
 * 400 malformed, 404 not found, 409 conflict (duplicate), 422 a rule of the
 * manuals broken, 500 internal (database). */
#ifndef GH_ERR_H
#define GH_ERR_H

typedef struct gh_err {
	int status;
	char code[32];     /* machine-readable: "invalid", "duplicate", "not_found", ... */
	char field[64];    /* JSON field path, "" when not about a field */
	char message[256]; /* a sentence a person can act on */
} gh_err_t;

/* Fills *e (if not NULL) and returns -1. */
int gh_err(gh_err_t *e, int status, const char *code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
void gh_err_clear(gh_err_t *e);

#endif
