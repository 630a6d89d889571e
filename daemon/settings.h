/* Site settings (CLOUD.md `settings`), parsed for the engine and drivers. */
#ifndef GH_SETTINGS_H
#define GH_SETTINGS_H

#include <jansson.h>

#include "store.h"

typedef struct settings {
	char kind[16];         /* community | office | single_family */
	char timezone[64];
	int apt_pin;           /* pin_mode apt_pin */
	int public_only;       /* access_permission public_only */
	int premium;
	int log_calls_without_open;
	int temp_key_max_days; /* 0 or 30 */
	int emergency_auto_unlock;
	int emergency_notify;
	int lift_grant_s;
	int relay_hold_ms;
	json_t *emergency_doors; /* "all" or a list of relay refs (owned) */
} settings_t;

/* The settings of ST, cached until they change (store_settings_gen);
 * also makes the site's time zone the process's. NULL on a database error. */
const settings_t *settings_get(store_t *st);

/* Reads the stored settings (defaults when never set). */
int settings_load(store_t *st, settings_t *out);
void settings_free(settings_t *s);
/* Canonical default settings object (caller owns). */
json_t *settings_defaults(void);

#endif
