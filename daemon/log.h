/* Structured logging to stderr: every line has a level and a subsystem.
 * Under journald (JOURNAL_STREAM set) lines carry a <N> syslog prefix and no
 * timestamp; otherwise an ISO-8601 UTC timestamp. Never pass secrets. */
#ifndef GH_LOG_H
#define GH_LOG_H

enum { GH_LOG_ERR = 3, GH_LOG_WARN = 4, GH_LOG_NOTICE = 5, GH_LOG_INFO = 6, GH_LOG_DEBUG = 7 };

/* Lines above this level are dropped (default GH_LOG_INFO). */
void gh_log_set_level(int level);
/* Parses "error", "warn", "info", "debug"; returns -1 if unknown. */
int gh_log_level_from_name(const char *name);
void gh_log(int level, const char *sub, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_err(sub, ...) gh_log(GH_LOG_ERR, sub, __VA_ARGS__)
#define log_warn(sub, ...) gh_log(GH_LOG_WARN, sub, __VA_ARGS__)
#define log_info(sub, ...) gh_log(GH_LOG_INFO, sub, __VA_ARGS__)
#define log_debug(sub, ...) gh_log(GH_LOG_DEBUG, sub, __VA_ARGS__)

#endif
