#include "ctl.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "reqs.h"
#include "status.h"
#include "timeutil.h"

#define LINE_MAX_BYTES 65536

struct ctl {
	uv_pipe_t server;
	ctl_env_t env;
	char path[256];
	struct client *clients;
};

typedef struct client {
	uv_pipe_t pipe;
	ctl_t *ctl;
	struct client *next, **pprev;
	char buf[LINE_MAX_BYTES];
	size_t len;
} client_t;

json_t *ctl_handle(const ctl_env_t *env, const json_t *req)
{
	const char *op = json_string_value(json_object_get(req, "op"));
	const char *rid = json_string_value(json_object_get(req, "rid"));
	if (!json_is_object(req))
		return reqs_error(NULL, "bad_request", "a request is a JSON object");
	if (!op)
		return reqs_error(rid, "bad_request", "op is required");
	if (!strcmp(op, "status")) {
		json_t *s = status_json(env->st, (int64_t)((gh_mono_ms() - env->started_ms) / 1000),
					env->wan ? env->wan : "standalone");
		json_object_set_new(s, "ok", json_true());
		if (rid)
			json_object_set_new(s, "rid", json_string(rid));
		return s;
	}
	if (!strcmp(op, "access.check")) {
		const char *dev = json_string_value(json_object_get(req, "device"));
		if (!dev && !json_is_string(json_object_get(req, "board")))
			return reqs_error(rid, "bad_request",
					  "access.check on the control socket needs device or board");
		return reqs_access_check(env->en, dev, req);
	}
	if (!strcmp(op, "emergency")) {
		const char *state = json_string_value(json_object_get(req, "state"));
		if (!state || (strcmp(state, "on") && strcmp(state, "off")))
			return reqs_error(rid, "bad_request", "state must be \"on\" or \"off\"");
		json_t *targets = NULL;
		gh_err_t err = { 0 };
		if (engine_emergency_set(env->en, !strcmp(state, "on"), json_object_get(req, "doors"),
					 "control", &targets, &err))
			return reqs_error(rid, "bad_request", err.message);
		json_t *r = json_pack("{s:b,s:s,s:o}", "ok", 1, "state", state, "doors", targets);
		if (rid)
			json_object_set_new(r, "rid", json_string(rid));
		return r;
	}
	return reqs_error(rid, "unknown_op", "unknown op");
}

static void on_close(uv_handle_t *h)
{
	client_t *c = h->data;
	*c->pprev = c->next;
	if (c->next)
		c->next->pprev = c->pprev;
	free(c);
}

static void on_written(uv_write_t *w, int status)
{
	(void)status;
	free(w->data);
	free(w);
}

static void reply(client_t *c, json_t *resp)
{
	char *txt = json_dumps(resp, JSON_COMPACT);
	json_decref(resp);
	if (!txt)
		return;
	size_t n = strlen(txt);
	char *line = realloc(txt, n + 2);
	if (!line) {
		free(txt);
		return;
	}
	line[n] = '\n';
	line[n + 1] = '\0';
	uv_write_t *w = malloc(sizeof *w);
	if (!w) {
		free(line);
		return;
	}
	w->data = line;
	uv_buf_t b = uv_buf_init(line, (unsigned)(n + 1));
	if (uv_write(w, (uv_stream_t *)&c->pipe, &b, 1, on_written)) {
		free(line);
		free(w);
	}
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	client_t *c = h->data;
	(void)hint;
	*buf = uv_buf_init(c->buf + c->len, (unsigned)(sizeof c->buf - c->len));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	client_t *c = s->data;
	(void)buf;
	if (n < 0) {
		uv_close((uv_handle_t *)s, on_close);
		return;
	}
	c->len += (size_t)n;
	char *nl;
	while ((nl = memchr(c->buf, '\n', c->len))) {
		*nl = '\0';
		json_error_t je;
		json_t *req = json_loads(c->buf, 0, &je);
		json_t *resp;
		if (!req) {
			log_warn("ctl", "malformed request: %s", je.text);
			resp = reqs_error(NULL, "bad_request", "request is not JSON");
		} else {
			resp = ctl_handle(&c->ctl->env, req);
		}
		json_decref(req);
		reply(c, resp);
		size_t used = (size_t)(nl - c->buf) + 1;
		memmove(c->buf, nl + 1, c->len - used);
		c->len -= used;
	}
	if (c->len == sizeof c->buf) {
		log_warn("ctl", "request line over %d bytes: closing client", LINE_MAX_BYTES);
		reply(c, reqs_error(NULL, "too_large", "request line too long"));
		uv_close((uv_handle_t *)s, on_close);
	}
}

static void on_connect(uv_stream_t *server, int status)
{
	ctl_t *ctl = server->data;
	if (status < 0)
		return;
	client_t *c = calloc(1, sizeof *c);
	if (!c)
		return;
	c->ctl = ctl;
	uv_pipe_init(server->loop, &c->pipe, 0);
	c->pipe.data = c;
	c->next = ctl->clients;
	if (c->next)
		c->next->pprev = &c->next;
	c->pprev = &ctl->clients;
	ctl->clients = c;
	if (uv_accept(server, (uv_stream_t *)&c->pipe) ||
	    uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read))
		uv_close((uv_handle_t *)&c->pipe, on_close);
}

ctl_t *ctl_start(uv_loop_t *loop, const char *path, const ctl_env_t *env)
{
	ctl_t *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->env = *env;
	snprintf(c->path, sizeof c->path, "%s", path);
	uv_pipe_init(loop, &c->server, 0);
	c->server.data = c;
	unlink(path);
	mode_t old = umask(0117); /* socket 0660: the daemon's user and group only */
	int rc = uv_pipe_bind(&c->server, path);
	umask(old);
	if (!rc)
		rc = uv_listen((uv_stream_t *)&c->server, 16, on_connect);
	if (rc) {
		log_err("ctl", "cannot listen on %s: %s", path, uv_strerror(rc));
		uv_close((uv_handle_t *)&c->server, NULL);
		uv_run(loop, UV_RUN_NOWAIT);
		free(c);
		return NULL;
	}
	log_info("ctl", "control socket %s", path);
	return c;
}

static void on_server_close(uv_handle_t *h) { free(h->data); }

void ctl_stop(ctl_t *c)
{
	if (!c)
		return;
	unlink(c->path);
	for (client_t *x = c->clients; x; x = x->next)
		if (!uv_is_closing((uv_handle_t *)&x->pipe))
			uv_close((uv_handle_t *)&x->pipe, on_close);
	uv_close((uv_handle_t *)&c->server, on_server_close);
}
