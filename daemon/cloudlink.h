/* The cloud link (CLOUD.md): libcurl's multi interface driven from the
 * daemon's libuv loop (sockets are uv_polls, curl's timer a uv_timer), so a
 * slow or dead cloud never delays a door. One sync channel runs, in order:
 * state pull (pages applied in one transaction each, with their rev; 410 ->
 * full resync with mark-and-sweep), local-change push, event outbox drain,
 * heartbeat. A second channel keeps the commands long poll open and
 * reports command results. */
#ifndef GH_CLOUDLINK_H
#define GH_CLOUDLINK_H

#include <jansson.h>
#include <uv.h>

#include "ctl.h"
#include "store.h"

typedef struct cloudlink cloudlink_t;

typedef struct cloud_cfg {
	const char *url;     /* base URL; "" or NULL: standalone */
	const char *site;    /* site id */
	const char *token;   /* bearer token (read from the token file) */
	const char *ca_file; /* "" or NULL: the system's CA bundle */
	const char *pin;     /* "sha256//BASE64" public-key pin, or "" */
	int insecure;        /* http:// allowed (tests only) */
	long outbox_max;     /* outbox size limit, in events */
	int backoff_min_ms;  /* first retry after a failure (default 1 s) ... */
	int backoff_max_ms;  /* ... doubling up to this (default 5 min) */
} cloud_cfg_t;

typedef void (*cloud_wan_fn)(void *ctx, const char *wan);

/* Starts the link (standalone when CFG has no url: nothing is sent and the
 * WAN state stays "standalone"). ENV runs the cloud's commands (copied). */
cloudlink_t *cloud_start(uv_loop_t *loop, const cloud_cfg_t *cfg, store_t *st, const ctl_env_t *env);
void cloud_set_wan_cb(cloudlink_t *c, cloud_wan_fn fn, void *ctx);
/* Asked before each state page is applied: non-zero holds the page (asked
 * again 5 ms later) — the daemon lets the checkpointer copy a long WAL so
 * the page's transaction restarts it (a snapshot wrote 700 MB of WAL). */
typedef int (*cloud_gate_fn)(void *ctx);
void cloud_set_gate(cloudlink_t *c, cloud_gate_fn fn, void *ctx);
/* The device link and the bus, once they run (for commands). */
void cloud_set_env(cloudlink_t *c, const ctl_env_t *env);
/* "up", "down" or "standalone": a stable pointer whose text follows the state. */
const char *cloud_wan(const cloudlink_t *c);
/* Once a second: look for new outbox events and local changes, report
 * command results, keep the outbox under its size limit. */
void cloud_tick(cloudlink_t *c);
/* New events or door logs were committed: drain soon. While a batch is in
 * flight the next one gathers, so live traffic batches by itself. */
void cloud_kick(cloudlink_t *c);
/* Status figures: {"wan","rev","outbox":{...},"changes":{...},"last_error"}. */
json_t *cloud_status(cloudlink_t *c);
/* Stops every transfer and frees the link (handles close in the loop). */
void cloud_stop(cloudlink_t *c);

/* Handles BODY (LEN bytes, NULL: none) as the cloud's answer with HTTP
 * STATUS to a request of KIND ("state", "changes", "events", "heartbeat",
 * "commands", "result") as if its transfer had just completed: what the
 * request carried (the pending changes, the outbox batch, the command
 * result) is taken from the store as for a real request. No request goes
 * out for it; pages fetched ahead ("more") are started as usual. For the
 * fuzz harness and tests. -1 for an unknown KIND. */
int cloud_handle_answer(cloudlink_t *c, const char *kind, long status, const char *body, size_t len);

#endif
