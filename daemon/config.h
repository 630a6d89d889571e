/* The config file (ADMIN.md), INI parsed with inih. Unknown sections and
 * keys are errors, so a typo never silently falls back to a default.
 * Relative paths are taken relative to the config file's folder. */
#ifndef GH_CONFIG_H
#define GH_CONFIG_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

typedef struct gh_config {
	char path[PATH_MAX];
	char site_id[64];
	/* [storage] */
	char db[PATH_MAX];
	int64_t outbox_max_events;
	int log_retention_days;
	int64_t min_free_mb; /* below it the oldest logs make room (0: only when SQLite is full) */
	/* [mqtt] */
	char mqtt_host[256];
	int mqtt_port;
	char mqtt_username[64];
	char mqtt_password_file[PATH_MAX];
	char mqtt_tls_ca[PATH_MAX];
	int manage_accounts;
	/* [web] */
	char web_listen[128];
	char web_http_listen[128]; /* optional plain-HTTP port that redirects to HTTPS */
	char web_cert[PATH_MAX];
	char web_key[PATH_MAX];
	char web_root[PATH_MAX];        /* the web UI's static files */
	int64_t web_session_idle_s, web_session_max_s;
	char web_metrics_from[128];     /* "any": /metrics from everywhere (default loopback only) */
	/* [cloud] */
	char cloud_url[512];
	char cloud_token_file[PATH_MAX];
	char cloud_ca_file[PATH_MAX];
	char cloud_pin_sha256[128];
	int cloud_insecure;
	int64_t cloud_backoff_min_ms, cloud_backoff_max_ms; /* retry after failures: min doubling to max */
	/* [drivers] */
	char profiles_dir[PATH_MAX];
	/* [daemon] (extension) */
	char log_level[16];
	char control_socket[PATH_MAX];
} gh_config_t;

/* Loads PATH into *c (defaults first). On error returns -1 and writes one
 * line "FILE:LINE: what is wrong" (LINE 0 when not about a line) to MSG. */
int config_load(const char *path, gh_config_t *c, char *msg, size_t len);

/* The first line of a secret file (password_file, token_file) into BUF,
 * without its line end. -1 if unreadable or empty. Never logs the secret. */
int config_read_secret(const char *path, char *buf, size_t len);

#endif
