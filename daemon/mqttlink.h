/* The device link (MQTT.md): libmosquitto driven from the daemon's libuv
 * loop (its socket is a uv_poll, keepalive and reconnects a uv_timer).
 * Events are stored in the loop pass's transaction and acknowledged only
 * after it commits (mqttlink_after_commit). */
#ifndef GH_MQTTLINK_H
#define GH_MQTTLINK_H

#include <uv.h>

#include "engine.h"
#include "store.h"

typedef struct mqttlink mqttlink_t;

typedef struct mqttlink_cfg {
	const char *host;
	int port;
	const char *username;
	const char *password; /* NULL: none */
	const char *tls_ca;   /* NULL or "": plain TCP (the broker is on the box) */
	const char *client_id;
	const char *wan;      /* "up" | "down" | "standalone" for gw/status */
} mqttlink_cfg_t;

/* Starts connecting (and keeps reconnecting with backoff). NULL only when
 * libmosquitto cannot be set up (logged). */
mqttlink_t *mqttlink_start(uv_loop_t *loop, const mqttlink_cfg_t *cfg, store_t *st, engine_t *en);
/* Publishes what waited for the pass's commit (event acks). */
void mqttlink_after_commit(mqttlink_t *l);
/* Event acks waiting for the pass's commit. */
int mqttlink_pending_acks(const mqttlink_t *l);
/* The pass's commit failed: acks are dropped, the devices will resend. */
void mqttlink_commit_failed(mqttlink_t *l);
/* Publishes the retained offline status, disconnects, frees. */
void mqttlink_stop(mqttlink_t *l);
int mqttlink_connected(const mqttlink_t *l);
/* The WAN state changed: the retained gw/status says so. */
void mqttlink_set_wan(mqttlink_t *l, const char *wan);

/* Publishes a command to a device (MQTT.md "Commands") and records it as
 * pending in the commands table; takes over ARGS (an object, or NULL);
 * *cid (>= 33 bytes, or NULL) gets its id. */
int mqttlink_command(mqttlink_t *l, const char *mac, const char *op, json_t *args, char *cid);

/* Tells the devices among TARGETS (relay refs) to hold their relays open
 * (ON) or to release them: the emergency door group. */
void mqttlink_emergency_devices(mqttlink_t *l, int on, const json_t *targets);

/* Handles one message as if it arrived on TOPIC (tests drive the parser
 * with this too). */
void mqttlink_handle(mqttlink_t *l, const char *topic, const void *payload, int len);

#endif
