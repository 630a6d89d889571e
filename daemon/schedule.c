#include "schedule.h"

#include <string.h>
#include <time.h>

#include "timeutil.h"

static const char *repeat_names[] = { "never", "daily", "weekly" };

int sched_from_json(json_t *obj, const char *field, sched_t *out, gh_err_t *err)
{
	memset(out, 0, sizeof *out);
	out->from_min = out->to_min = -1;
	if (!obj || json_is_null(obj))
		return 0;
	if (!json_is_object(obj))
		return gh_err(err, 422, "invalid", field, "%s must be an object", field);

	char f[64];
	json_t *v = json_object_get(obj, "repeat");
	out->repeat = -1;
	if (!v) {
		out->repeat = SCHED_NEVER;
		json_object_set_new(obj, "repeat", json_string("never"));
	} else if (json_is_string(v)) {
		for (int i = 0; i < 3; i++)
			if (strcmp(json_string_value(v), repeat_names[i]) == 0)
				out->repeat = i;
	}
	if (out->repeat < 0) {
		snprintf(f, sizeof f, "%s.repeat", field);
		return gh_err(err, 422, "invalid", f, "%s must be \"never\", \"daily\" or \"weekly\"", f);
	}

	static const char *bounds[] = { "start", "end" };
	for (int i = 0; i < 2; i++) {
		v = json_object_get(obj, bounds[i]);
		if (!v || json_is_null(v))
			continue;
		int64_t t;
		snprintf(f, sizeof f, "%s.%s", field, bounds[i]);
		if (gh_ts_parse(v, &t))
			return gh_err(err, 422, "invalid", f,
				      "%s must be Unix seconds or an ISO-8601 date-time (years 0000-9999)", f);
		json_object_set_new(obj, bounds[i], json_integer(t));
		if (i == 0) {
			out->has_start = 1;
			out->start = t;
		} else {
			out->has_end = 1;
			out->end = t;
		}
	}
	if (out->has_start && out->has_end && out->end <= out->start) {
		snprintf(f, sizeof f, "%s.end", field);
		return gh_err(err, 422, "invalid", f, "%s must be after %s.start", f, field);
	}

	static const char *win[] = { "from", "to" };
	int mins[2] = { -1, -1 };
	for (int i = 0; i < 2; i++) {
		v = json_object_get(obj, win[i]);
		if (!v || json_is_null(v))
			continue;
		snprintf(f, sizeof f, "%s.%s", field, win[i]);
		mins[i] = json_is_string(v) ? gh_hhmm_parse(json_string_value(v)) : -1;
		if (mins[i] < 0)
			return gh_err(err, 422, "invalid", f, "%s must be a time \"HH:MM\"", f);
	}
	if ((mins[0] < 0) != (mins[1] < 0)) {
		snprintf(f, sizeof f, "%s.%s", field, mins[0] < 0 ? "from" : "to");
		return gh_err(err, 422, "invalid", f, "%s.from and %s.to must be given together",
			      field, field);
	}
	if (out->repeat != SCHED_NEVER && mins[0] >= 0 && mins[0] == mins[1]) {
		snprintf(f, sizeof f, "%s.to", field);
		return gh_err(err, 422, "invalid", f, "%s must differ from %s.from", f, field);
	}
	out->from_min = mins[0];
	out->to_min = mins[1];
	if (out->repeat == SCHED_NEVER && !out->has_start && !out->has_end && mins[0] >= 0) {
		/* a one-off window needs its dates; a bare time window is a daily one */
		snprintf(f, sizeof f, "%s.repeat", field);
		return gh_err(err, 422, "invalid", f,
			      "a time window without start/end needs repeat \"daily\" or \"weekly\"");
	}

	v = json_object_get(obj, "days");
	if (out->repeat == SCHED_WEEKLY) {
		snprintf(f, sizeof f, "%s.days", field);
		if (!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) > 7)
			return gh_err(err, 422, "invalid", f,
				      "%s must list 1 to 7 ISO weekdays (1 = Monday)", f);
		size_t i;
		json_t *d;
		json_array_foreach(v, i, d) {
			json_int_t n = json_is_integer(d) ? json_integer_value(d) : 0;
			if (n < 1 || n > 7)
				return gh_err(err, 422, "invalid", f, "%s[%zu] must be 1..7", f, i);
			out->days |= 1u << n;
		}
	} else if (v && !json_is_null(v) && !json_is_array(v)) {
		snprintf(f, sizeof f, "%s.days", field);
		return gh_err(err, 422, "invalid", f, "%s must be a list of weekdays", f);
	}
	return 0;
}

static int day_allowed(const sched_t *s, int wday /* 0 = Sunday */)
{
	if (s->repeat != SCHED_WEEKLY)
		return 1;
	int iso = wday == 0 ? 7 : wday;
	return (s->days >> iso) & 1u;
}

int sched_eval(const sched_t *s, int64_t now)
{
	if (s->has_start && now < s->start)
		return SCHED_NOT_STARTED;
	if (s->has_end && now >= s->end)
		return SCHED_ENDED;
	if (s->repeat == SCHED_NEVER)
		return SCHED_OPEN;

	struct tm tm;
	gh_localtime(now, &tm);
	int m = tm.tm_hour * 60 + tm.tm_min;
	if (s->from_min < 0)
		return day_allowed(s, tm.tm_wday) ? SCHED_OPEN : SCHED_CLOSED;
	if (s->from_min < s->to_min)
		return (m >= s->from_min && m < s->to_min && day_allowed(s, tm.tm_wday)) ? SCHED_OPEN
											 : SCHED_CLOSED;
	/* spans midnight: the part after midnight belongs to the day it started */
	if (m >= s->from_min)
		return day_allowed(s, tm.tm_wday) ? SCHED_OPEN : SCHED_CLOSED;
	if (m < s->to_min)
		return day_allowed(s, (tm.tm_wday + 6) % 7) ? SCHED_OPEN : SCHED_CLOSED;
	return SCHED_CLOSED;
}
