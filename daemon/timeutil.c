#include "timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char g_tz[64] = "UTC";

int gh_tz_valid(const char *name)
{
	if (!name || !*name || strlen(name) >= sizeof g_tz || name[0] == '/' || strstr(name, ".."))
		return 0;
	for (const char *p = name; *p; p++)
		if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		      *p == '/' || *p == '_' || *p == '-' || *p == '+'))
			return 0;
	if (strcmp(name, "UTC") == 0)
		return 1;
	char path[128];
	snprintf(path, sizeof path, "/usr/share/zoneinfo/%s", name);
	struct stat sb;
	return stat(path, &sb) == 0 && S_ISREG(sb.st_mode) && access(path, R_OK) == 0;
}

int gh_tz_set(const char *name)
{
	if (!gh_tz_valid(name))
		return -1;
	snprintf(g_tz, sizeof g_tz, "%s", name);
	setenv("TZ", name, 1);
	tzset();
	return 0;
}

const char *gh_tz_name(void) { return g_tz; }

static int digits(const char *s, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

int gh_ts_parse(const json_t *v, int64_t *out)
{
	if (json_is_integer(v)) {
		/* the years 0000..9999 of the ISO form: arithmetic on times
		 * (durations, windows) can then never overflow */
		json_int_t t = json_integer_value(v);
		if (t < GH_TS_MIN || t > GH_TS_MAX)
			return -1;
		*out = t;
		return 0;
	}
	if (!json_is_string(v))
		return -1;
	const char *s = json_string_value(v);
	size_t len = strlen(s);
	struct tm tm = { 0 };
	int y, mo, d, h = 0, mi = 0, sec = 0;
	if (len < 10 || digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) || s[7] != '-' ||
	    digits(s + 8, 2, &d))
		return -1;
	const char *p = s + 10;
	if (*p == 'T' || *p == ' ') {
		if (digits(p + 1, 2, &h) || p[3] != ':' || digits(p + 4, 2, &mi))
			return -1;
		p += 6;
		if (*p == ':') {
			if (digits(p + 1, 2, &sec))
				return -1;
			p += 3;
		}
	}
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
		return -1;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	{
		/* 2026-02-30 does not exist: refuse instead of rolling over */
		struct tm chk = tm;
		time_t t0 = timegm(&chk);
		struct tm back;
		gmtime_r(&t0, &back);
		if (back.tm_mday != d || back.tm_mon != mo - 1)
			return -1;
	}
	if (*p == '\0') {
		tm.tm_isdst = -1;
		time_t t = mktime(&tm);
		if (t == (time_t)-1)
			return -1;
		*out = (int64_t)t;
		return 0;
	}
	int off = 0;
	if (*p == 'Z' && p[1] == '\0') {
		off = 0;
	} else if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':') {
		int oh, om;
		if (digits(p + 1, 2, &oh) || digits(p + 4, 2, &om) || oh > 14 || om > 59)
			return -1;
		off = (oh * 60 + om) * 60 * (*p == '-' ? -1 : 1);
	} else {
		return -1;
	}
	*out = (int64_t)timegm(&tm) - off;
	return 0;
}

int gh_hhmm_parse(const char *s)
{
	int h, m;
	if (!s || strlen(s) != 5 || digits(s, 2, &h) || s[2] != ':' || digits(s + 3, 2, &m))
		return -1;
	if (h > 24 || m > 59 || (h == 24 && m != 0))
		return -1;
	return h * 60 + m;
}

void gh_localtime(int64_t ts, struct tm *tm)
{
	time_t t = (time_t)ts;
	localtime_r(&t, tm);
}

int64_t gh_now(void) { return (int64_t)time(NULL); }

uint64_t gh_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}
