#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int g_level = GH_LOG_INFO;
static int g_journal = -1;

void gh_log_set_level(int level) { g_level = level; }

int gh_log_level_from_name(const char *name)
{
	static const struct { const char *n; int l; } map[] = {
		{ "error", GH_LOG_ERR }, { "warn", GH_LOG_WARN }, { "warning", GH_LOG_WARN },
		{ "notice", GH_LOG_NOTICE }, { "info", GH_LOG_INFO }, { "debug", GH_LOG_DEBUG },
	};
	for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
		if (strcmp(map[i].n, name) == 0)
			return map[i].l;
	return -1;
}

static const char *level_name(int level)
{
	switch (level) {
	case GH_LOG_ERR: return "error";
	case GH_LOG_WARN: return "warn";
	case GH_LOG_NOTICE: return "notice";
	case GH_LOG_INFO: return "info";
	default: return "debug";
	}
}

void gh_log(int level, const char *sub, const char *fmt, ...)
{
	if (level > g_level)
		return;
	if (g_journal < 0)
		g_journal = getenv("JOURNAL_STREAM") != NULL;

	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	/* one line per record: a newline in a message would forge a record */
	for (char *p = msg; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';

	if (g_journal) {
		fprintf(stderr, "<%d>%s %s: %s\n", level, level_name(level), sub, msg);
		return;
	}
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	fprintf(stderr, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s: %s\n", tm.tm_year + 1900,
		tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000L,
		level_name(level), sub, msg);
}
