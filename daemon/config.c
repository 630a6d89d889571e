#include "config.h"

#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

struct cctx {
	gh_config_t *c;
	char dir[PATH_MAX];
	char msg[256];
};

static int set_str(char *dst, size_t len, const char *v, struct cctx *x, const char *key)
{
	if (strlen(v) >= len) {
		snprintf(x->msg, sizeof x->msg, "%s is too long (max %zu bytes)", key, len - 1);
		return 0;
	}
	snprintf(dst, len, "%s", v);
	return 1;
}

static int set_path(char *dst, size_t len, const char *v, struct cctx *x, const char *key)
{
	if (!*v || v[0] == '/' || strchr(v, ':'))
		return set_str(dst, len, v, x, key);
	char buf[PATH_MAX * 2];
	snprintf(buf, sizeof buf, "%s/%s", x->dir, v);
	return set_str(dst, len, buf, x, key);
}

static int set_bool(int *dst, const char *v, struct cctx *x, const char *key)
{
	if (!strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "on") || !strcmp(v, "1"))
		*dst = 1;
	else if (!strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "off") || !strcmp(v, "0"))
		*dst = 0;
	else {
		snprintf(x->msg, sizeof x->msg, "%s must be true or false, not \"%s\"", key, v);
		return 0;
	}
	return 1;
}

static int set_int(int64_t *dst, const char *v, int64_t min, int64_t max, struct cctx *x,
		   const char *key)
{
	char *end;
	errno = 0;
	long long n = strtoll(v, &end, 10);
	if (errno || end == v || *end || n < min || n > max) {
		snprintf(x->msg, sizeof x->msg, "%s must be a number %lld..%lld, not \"%s\"", key,
			 (long long)min, (long long)max, v);
		return 0;
	}
	*dst = n;
	return 1;
}

#define IS(s, k) (!strcmp(sec, s) && !strcmp(key, k))

static int on_kv(void *user, const char *sec, const char *key, const char *v)
{
	struct cctx *x = user;
	gh_config_t *c = x->c;
	int64_t n;
	if (IS("site", "id"))
		return set_str(c->site_id, sizeof c->site_id, v, x, "[site] id");
	if (IS("storage", "db"))
		return set_path(c->db, sizeof c->db, v, x, "[storage] db");
	if (IS("storage", "outbox_max_events"))
		return set_int(&c->outbox_max_events, v, 1000, 100000000, x, "[storage] outbox_max_events");
	if (IS("storage", "min_free_mb"))
		return set_int(&c->min_free_mb, v, 0, 1048576, x, "[storage] min_free_mb");
	if (IS("storage", "log_retention_days")) {
		if (!set_int(&n, v, 1, 3650, x, "[storage] log_retention_days"))
			return 0;
		c->log_retention_days = (int)n;
		return 1;
	}
	if (IS("mqtt", "host"))
		return set_str(c->mqtt_host, sizeof c->mqtt_host, v, x, "[mqtt] host");
	if (IS("mqtt", "port")) {
		if (!set_int(&n, v, 1, 65535, x, "[mqtt] port"))
			return 0;
		c->mqtt_port = (int)n;
		return 1;
	}
	if (IS("mqtt", "username"))
		return set_str(c->mqtt_username, sizeof c->mqtt_username, v, x, "[mqtt] username");
	if (IS("mqtt", "password_file"))
		return set_path(c->mqtt_password_file, sizeof c->mqtt_password_file, v, x, "[mqtt] password_file");
	if (IS("mqtt", "tls_ca"))
		return set_path(c->mqtt_tls_ca, sizeof c->mqtt_tls_ca, v, x, "[mqtt] tls_ca");
	if (IS("mqtt", "manage_accounts"))
		return set_bool(&c->manage_accounts, v, x, "[mqtt] manage_accounts");
	if (IS("web", "listen"))
		return set_str(c->web_listen, sizeof c->web_listen, v, x, "[web] listen");
	if (IS("web", "cert"))
		return set_path(c->web_cert, sizeof c->web_cert, v, x, "[web] cert");
	if (IS("web", "key"))
		return set_path(c->web_key, sizeof c->web_key, v, x, "[web] key");
	if (IS("web", "http_listen"))
		return set_str(c->web_http_listen, sizeof c->web_http_listen, v, x, "[web] http_listen");
	if (IS("web", "root"))
		return set_path(c->web_root, sizeof c->web_root, v, x, "[web] root");
	if (IS("web", "session_idle_s"))
		return set_int(&c->web_session_idle_s, v, 60, 86400, x, "[web] session_idle_s");
	if (IS("web", "session_max_s"))
		return set_int(&c->web_session_max_s, v, 300, 604800, x, "[web] session_max_s");
	if (IS("web", "metrics_from"))
		return set_str(c->web_metrics_from, sizeof c->web_metrics_from, v, x, "[web] metrics_from");
	if (IS("cloud", "url")) {
		if (*v && strncmp(v, "https://", 8) && strncmp(v, "http://", 7)) {
			snprintf(x->msg, sizeof x->msg, "[cloud] url must start with https://");
			return 0;
		}
		return set_str(c->cloud_url, sizeof c->cloud_url, v, x, "[cloud] url");
	}
	if (IS("cloud", "token_file"))
		return set_path(c->cloud_token_file, sizeof c->cloud_token_file, v, x, "[cloud] token_file");
	if (IS("cloud", "ca_file"))
		return set_path(c->cloud_ca_file, sizeof c->cloud_ca_file, v, x, "[cloud] ca_file");
	if (IS("cloud", "pin_sha256"))
		return set_str(c->cloud_pin_sha256, sizeof c->cloud_pin_sha256, v, x, "[cloud] pin_sha256");
	if (IS("cloud", "insecure"))
		return set_bool(&c->cloud_insecure, v, x, "[cloud] insecure");
	if (IS("cloud", "backoff_min_ms"))
		return set_int(&c->cloud_backoff_min_ms, v, 10, 60000, x, "[cloud] backoff_min_ms");
	if (IS("cloud", "backoff_max_ms"))
		return set_int(&c->cloud_backoff_max_ms, v, 100, 3600000, x, "[cloud] backoff_max_ms");
	if (IS("drivers", "profiles_dir"))
		return set_path(c->profiles_dir, sizeof c->profiles_dir, v, x, "[drivers] profiles_dir");
	if (IS("daemon", "log_level")) {
		if (gh_log_level_from_name(v) < 0) {
			snprintf(x->msg, sizeof x->msg, "[daemon] log_level must be error, warn, info or debug");
			return 0;
		}
		return set_str(c->log_level, sizeof c->log_level, v, x, "[daemon] log_level");
	}
	if (IS("daemon", "control_socket"))
		return set_path(c->control_socket, sizeof c->control_socket, v, x, "[daemon] control_socket");
	snprintf(x->msg, sizeof x->msg, "unknown key \"%s\" in section [%s]", key, sec);
	return 0;
}

int config_read_secret(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	int ok = fgets(buf, (int)len, f) != NULL;
	fclose(f);
	if (!ok)
		return -1;
	buf[strcspn(buf, "\r\n")] = '\0';
	return buf[0] ? 0 : -1;
}

int config_load(const char *path, gh_config_t *c, char *msg, size_t len)
{
	memset(c, 0, sizeof *c);
	snprintf(c->path, sizeof c->path, "%s", path);
	snprintf(c->db, sizeof c->db, "/var/lib/gatehouse/site.db");
	c->outbox_max_events = 5000000;
	c->cloud_backoff_min_ms = 1000;
	c->cloud_backoff_max_ms = 300000;
	c->log_retention_days = 30;
	c->min_free_mb = 64;
	snprintf(c->mqtt_host, sizeof c->mqtt_host, "127.0.0.1");
	c->mqtt_port = 1883;
	snprintf(c->mqtt_username, sizeof c->mqtt_username, "gatehoused");
	snprintf(c->web_root, sizeof c->web_root, "/usr/share/gatehouse/web-ui");
	c->web_session_idle_s = 1800;
	c->web_session_max_s = 43200;
	snprintf(c->profiles_dir, sizeof c->profiles_dir, "/usr/share/gatehouse/profiles");
	snprintf(c->log_level, sizeof c->log_level, "info");
	snprintf(c->control_socket, sizeof c->control_socket, "/run/gatehouse/control.sock");

	struct cctx x = { .c = c };
	snprintf(x.dir, sizeof x.dir, "%s", path);
	char *slash = strrchr(x.dir, '/');
	if (slash)
		*slash = '\0';
	else
		snprintf(x.dir, sizeof x.dir, ".");

	FILE *f = fopen(path, "r");
	if (!f) {
		snprintf(msg, len, "%s:0: cannot read config file: %s", path, strerror(errno));
		return -1;
	}
	int rc = ini_parse_file(f, on_kv, &x);
	fclose(f);
	if (rc) {
		snprintf(msg, len, "%s:%d: %s", path, rc, x.msg[0] ? x.msg : "syntax error");
		return -1;
	}
	if (!c->site_id[0]) {
		snprintf(msg, len, "%s:0: [site] id is required", path);
		return -1;
	}
	if (c->cloud_url[0] && !strncmp(c->cloud_url, "http://", 7) && !c->cloud_insecure) {
		snprintf(msg, len, "%s:0: [cloud] url is http:// but insecure is not true (tests only)", path);
		return -1;
	}
	if (c->cloud_url[0] && !c->cloud_token_file[0]) {
		snprintf(msg, len, "%s:0: [cloud] url needs token_file", path);
		return -1;
	}
	return 0;
}
