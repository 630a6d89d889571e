/* Site time: the site's IANA time zone is the process's TZ (one site per
 * process), so localtime_r/mktime evaluate schedules across DST changes. */
#ifndef GH_TIMEUTIL_H
#define GH_TIMEUTIL_H

#include <jansson.h>
#include <stdint.h>
#include <time.h>

/* 1 if NAME is a safe IANA zone name present in the system zoneinfo. */
int gh_tz_valid(const char *name);
/* Makes NAME the zone of all local-time evaluation; -1 if invalid. */
int gh_tz_set(const char *name);
/* Name set by gh_tz_set ("UTC" before). */
const char *gh_tz_name(void);

/* A time from JSON: Unix seconds (integer, GH_TS_MIN..GH_TS_MAX: the years
 * 0000..9999), or an ISO-8601 string "YYYY-MM-DD[THH:MM[:SS]][Z|+HH:MM]"
 * (no offset = site local time). Returns 0, or -1 when V is neither. */
#define GH_TS_MIN (-62167219200LL) /* 0000-01-01T00:00:00Z */
#define GH_TS_MAX 253402300799LL   /* 9999-12-31T23:59:59Z */
int gh_ts_parse(const json_t *v, int64_t *out);
/* "HH:MM" (00:00..24:00) -> minutes after midnight; -1 if malformed. */
int gh_hhmm_parse(const char *s);
/* Local broken-down time of TS in the site zone. */
void gh_localtime(int64_t ts, struct tm *tm);
/* Current time in Unix seconds. */
int64_t gh_now(void);
/* Monotonic milliseconds. */
uint64_t gh_mono_ms(void);

#endif
