/* The local web UI and REST API (ADMIN.md): libwebsockets on the daemon's
 * libuv loop, HTTPS only. Static files of the UI from [web] root, the JSON
 * API under /api/v1, /metrics. Sessions live in memory (cookie gh_session,
 * HttpOnly, Secure, SameSite=Strict; CSRF token on every mutation); roles
 * admin, manager, viewer. */
#ifndef GH_WEB_H
#define GH_WEB_H

#include <uv.h>

#include "config.h"
#include "ctl.h"

typedef struct web web_t;

/* Starts serving on [web] listen (NULL and logged when it cannot; NULL
 * without a log when listen is empty). A self-signed pair is generated on
 * first start when [web] cert/key do not exist yet. */
web_t *web_start(uv_loop_t *loop, const gh_config_t *cfg, const ctl_env_t *env);
void web_set_env(web_t *w, const ctl_env_t *env);
/* Closes the listener and every connection (handles close in the loop). */
void web_stop(web_t *w);
/* After the loop has finished: completes the shutdown and frees. */
void web_free(web_t *w);

/* Makes a self-signed EC P-256 certificate for the box (CN = the host
 * name) at CERT and KEY (0600) when either is missing. */
int web_make_cert(const char *cert, const char *key);

/* For the fuzz harness (fuzz/fuzz_http.c): the API router on one request
 * without a connection. A session of USER with ROLE; its cookie token and
 * CSRF token into TOKEN and CSRF. */
int web_session_open(web_t *w, const char *user, const char *role, char token[65], char csrf[65]);
/* Routes METHOD (LWSHUMETH_*) URI (path and query) with BODY as the API
 * callback does once a request's body is in (a login waits for its password
 * check); the headers, URL arguments and peer are what the libwebsockets
 * accessors say for WSI. Returns the answer's status, *RESP its body
 * (caller frees; may be NULL). */
struct lws;
int web_route_request(web_t *w, struct lws *wsi, int method, const char *uri, const char *body, size_t len,
		      char **resp);

#endif
