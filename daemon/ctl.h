/* The local control socket (a Unix stream socket, mode 0660): one JSON
 * request per line, one JSON response per line. Ops: "status",
 * "access.check" (with "device"), "emergency" ({"state":"on"|"off"}),
 * "command" ({"devices":[MAC...]|"all","command":OP,"args":{...}}).
 * Served from the daemon's event loop. */
#ifndef GH_CTL_H
#define GH_CTL_H

#include <uv.h>

#include "engine.h"
#include "store.h"

typedef struct ctl ctl_t;

typedef struct ctl_env {
	store_t *st;
	engine_t *en;
	uint64_t started_ms; /* monotonic */
	const char *wan;
	struct mqttlink *mqtt; /* NULL: no device link (the CLI's in-process mode) */
	struct busmgr *bus;    /* NULL: no field bus */
	struct cloudlink *cloud; /* NULL: no cloud link (status shows it when set) */
	struct disk *disk;     /* NULL: no disk watch (status shows it when set) */
} ctl_env_t;

/* Listens on PATH (an old socket file is replaced). NULL on failure (logged). */
ctl_t *ctl_start(uv_loop_t *loop, const char *path, const ctl_env_t *env);
/* The device link that "command" requests go to (may be NULL). */
void ctl_set_mqtt(ctl_t *c, struct mqttlink *m);
void ctl_set_bus(ctl_t *c, struct busmgr *b);
void ctl_set_cloud(ctl_t *c, struct cloudlink *cl);
/* Stops listening and closes clients; the handles finish closing in the loop. */
void ctl_stop(ctl_t *c);

/* Handles one request (also used by tests and the CLI's local mode). */
json_t *ctl_handle(const ctl_env_t *env, const json_t *req);

#endif
