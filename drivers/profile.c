#include "profile.h"

#include <dirent.h>
#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static profile_t *g_profiles;
static int g_count;

struct pctx {
	profile_t *p;
	char msg[160];
	int seen_name;
};

static int parse_long(const char *v, long min, long max, long *out)
{
	char *end;
	errno = 0;
	long n = strtol(v, &end, 0);
	if (errno || end == v || *end || n < min || n > max)
		return -1;
	*out = n;
	return 0;
}

static int parse_bool(const char *v)
{
	if (!strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "1"))
		return 1;
	if (!strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "0"))
		return 0;
	return -1;
}

static int on_kv(void *user, const char *sec, const char *key, const char *val)
{
	struct pctx *c = user;
	profile_t *p = c->p;
	long n = 0;
#define KEY(s, k) (!strcmp(sec, s) && !strcmp(key, k))
#define NUM(lo, hi, dst)                                                                       \
	do {                                                                                   \
		if (parse_long(val, lo, hi, &n)) {                                             \
			snprintf(c->msg, sizeof c->msg, "[%s] %s must be a number %ld..%ld", sec, key, \
				 (long)(lo), (long)(hi));                                      \
			return 0;                                                              \
		}                                                                              \
		dst = (int)n;                                                                  \
	} while (0)

	if (KEY("profile", "name")) {
		if (!*val || strlen(val) >= sizeof p->name) {
			snprintf(c->msg, sizeof c->msg, "name must be 1..63 characters");
			return 0;
		}
		snprintf(p->name, sizeof p->name, "%s", val);
		c->seen_name = 1;
	} else if (KEY("profile", "kind")) {
		static const char *k[] = { "relay", "lift", "uhf", "lpr" };
		p->kind = -1;
		for (int i = 0; i < 4; i++)
			if (!strcmp(val, k[i]))
				p->kind = i;
		if (p->kind < 0) {
			snprintf(c->msg, sizeof c->msg, "kind must be relay, lift, uhf or lpr");
			return 0;
		}
	} else if (KEY("profile", "channels")) {
		NUM(0, PROF_MAX_CHANNELS, p->channels);
	} else if (KEY("profile", "transports")) {
		p->transports = 0;
		if (strstr(val, "rtu"))
			p->transports |= PROF_T_RTU;
		if (strstr(val, "tcp"))
			p->transports |= PROF_T_TCP;
		if (!p->transports) {
			snprintf(c->msg, sizeof c->msg, "transports must name rtu and/or tcp");
			return 0;
		}
	} else if (KEY("serial", "baud")) {
		NUM(1200, 921600, p->baud);
	} else if (KEY("serial", "parity")) {
		if (strlen(val) != 1 || !strchr("NEO", val[0])) {
			snprintf(c->msg, sizeof c->msg, "parity must be N, E or O");
			return 0;
		}
		p->parity = val[0];
	} else if (KEY("serial", "data")) {
		NUM(5, 8, p->data);
	} else if (KEY("serial", "stop")) {
		NUM(1, 2, p->stop);
	} else if (KEY("serial", "unit")) {
		NUM(0, 247, p->unit);
	} else if (KEY("relay", "write") || KEY("relay", "read")) {
		int w = !strcmp(val, "coil") ? PROF_W_COIL : !strcmp(val, "register") ? PROF_W_REGISTER : -1;
		if (w < 0) {
			snprintf(c->msg, sizeof c->msg, "[relay] %s must be coil or register", key);
			return 0;
		}
		if (!strcmp(key, "write"))
			p->write = w;
		else
			p->read = w;
	} else if (KEY("relay", "coil_base")) {
		NUM(0, 65535, p->coil_base);
	} else if (KEY("relay", "reg_base")) {
		NUM(0, 65535, p->reg_base);
	} else if (KEY("relay", "on_value") || KEY("relay", "off_value") ||
		   KEY("relay", "read_on") || KEY("relay", "read_off")) {
		int v = 0;
		NUM(0, 65535, v);
		uint16_t *dst = !strcmp(key, "on_value")  ? &p->on_value
				: !strcmp(key, "off_value") ? &p->off_value
				: !strcmp(key, "read_on")   ? &p->read_on
							    : &p->read_off;
		*dst = (uint16_t)v;
	} else if (KEY("inputs", "count")) {
		NUM(0, PROF_MAX_CHANNELS, p->inputs);
	} else if (KEY("inputs", "read")) {
		if (strcmp(val, "discrete")) {
			snprintf(c->msg, sizeof c->msg, "[inputs] read must be discrete");
			return 0;
		}
	} else if (KEY("inputs", "input_base")) {
		NUM(0, 65535, p->input_base);
	} else if (KEY("inputs", "latching")) {
		p->latching = parse_bool(val);
		if (p->latching < 0) {
			snprintf(c->msg, sizeof c->msg, "[inputs] latching must be true or false");
			return 0;
		}
	} else if (KEY("inputs", "clear")) {
		if (strcmp(val, "coil")) {
			snprintf(c->msg, sizeof c->msg, "[inputs] clear must be coil");
			return 0;
		}
	} else if (KEY("inputs", "clear_base")) {
		NUM(0, 65535, p->clear_base);
	} else if (KEY("reader", "block_base")) {
		NUM(0, 65535, p->block_base);
	} else if (KEY("reader", "code_max")) {
		NUM(1, 32, p->code_max);
	} else if (KEY("timing", "response_timeout_ms")) {
		NUM(10, 10000, p->response_timeout_ms);
	} else if (KEY("timing", "gap_ms")) {
		NUM(0, 1000, p->gap_ms);
	} else if (KEY("timing", "poll_ms")) {
		NUM(10, 60000, p->poll_ms);
	} else if (KEY("timing", "retries")) {
		NUM(0, 10, p->retries);
	} else {
		snprintf(c->msg, sizeof c->msg, "unknown key [%s] %s", sec, key);
		return 0;
	}
	return 1;
#undef KEY
#undef NUM
}

int profile_load_file(const char *path, profile_t *p, gh_err_t *err)
{
	memset(p, 0, sizeof *p);
	p->kind = PROF_RELAY;
	p->baud = 9600;
	p->parity = 'N';
	p->data = 8;
	p->stop = 1;
	p->unit = 1;
	p->response_timeout_ms = 200;
	p->gap_ms = 5;
	p->poll_ms = 100;
	p->retries = 2;
	p->code_max = 32;
	struct pctx c = { .p = p };
	int rc = ini_parse(path, on_kv, &c);
	if (rc < 0)
		return gh_err(err, 400, "profile", path, "%s: cannot read profile file", path);
	if (rc > 0)
		return gh_err(err, 400, "profile", path, "%s:%d: %s", path, rc,
			      c.msg[0] ? c.msg : "syntax error");
	if (!c.seen_name)
		return gh_err(err, 400, "profile", path, "%s: [profile] name is missing", path);
	if (!p->transports)
		return gh_err(err, 400, "profile", path, "%s: [profile] transports is missing", path);
	if ((p->kind == PROF_RELAY || p->kind == PROF_LIFT) && (p->channels < 1 || !p->write))
		return gh_err(err, 400, "profile", path,
			      "%s: relay and lift profiles need channels >= 1 and [relay] write", path);
	if (p->write == PROF_W_REGISTER && p->on_value == p->off_value)
		return gh_err(err, 400, "profile", path,
			      "%s: [relay] on_value and off_value must differ", path);
	if (!p->read)
		p->read = p->write;
	return 0;
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(((const profile_t *)a)->name, ((const profile_t *)b)->name);
}

int profiles_load(const char *dir, gh_err_t *err)
{
	DIR *d = opendir(dir);
	if (!d)
		return gh_err(err, 400, "profile", dir, "profiles_dir %s: %s", dir, strerror(errno));
	profile_t *list = NULL;
	int n = 0, cap = 0, rc = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);
		if (len < 5 || strcmp(de->d_name + len - 4, ".ini"))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 8;
			profile_t *nl = realloc(list, (size_t)cap * sizeof *list);
			if (!nl) {
				rc = gh_err(err, 500, "nomem", "", "out of memory");
				break;
			}
			list = nl;
		}
		char path[4096];
		snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		if ((rc = profile_load_file(path, &list[n], err)))
			break;
		for (int i = 0; i < n; i++)
			if (!strcmp(list[i].name, list[n].name)) {
				rc = gh_err(err, 400, "profile", path, "%s: profile %s defined twice",
					    path, list[n].name);
				break;
			}
		if (rc)
			break;
		n++;
	}
	closedir(d);
	if (rc) {
		free(list);
		return -1;
	}
	qsort(list, (size_t)n, sizeof *list, cmp_name);
	free(g_profiles);
	g_profiles = list;
	g_count = n;
	log_info("drivers", "loaded %d profiles from %s", n, dir);
	return 0;
}

const profile_t *profile_find(const char *name)
{
	for (int i = 0; i < g_count; i++)
		if (!strcmp(g_profiles[i].name, name))
			return &g_profiles[i];
	return NULL;
}

int profile_count(void) { return g_count; }
const profile_t *profile_at(int i) { return i >= 0 && i < g_count ? &g_profiles[i] : NULL; }

void profiles_free(void)
{
	free(g_profiles);
	g_profiles = NULL;
	g_count = 0;
}

int profile_mode_ok(const profile_t *p, const char *mode)
{
	if (!strcmp(mode, "ethernet"))
		return (p->transports & PROF_T_TCP) != 0;
	if (!(p->transports & PROF_T_RTU))
		return 0;
	if (!strcmp(mode, "rs485"))
		return 1;
	if (!strcmp(mode, "rs485_input_nonlatching"))
		return p->inputs > 0;
	if (!strcmp(mode, "rs485_input_latching"))
		return p->inputs > 0 && p->latching;
	return 0;
}
