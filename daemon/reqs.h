/* Request handlers of the device contract (MQTT.md "Requests"), shared by
 * every transport (the MQTT link and the local control socket): JSON
 * request in, JSON response out, never NULL. */
#ifndef GH_REQS_H
#define GH_REQS_H

#include <jansson.h>

#include "engine.h"
#include "store.h"

/* {"rid","ok":false,"error":{"code","message"}} (rid omitted when NULL). */
json_t *reqs_error(const char *rid, const char *code, const char *message);

/* access.check for DEVICE (the requesting device's MAC; the control socket
 * passes the request's "device"). Request: method, code, apt, relay.
 * Response: granted, relays, reason, person, floors (+ door_log id). */
json_t *reqs_access_check(engine_t *en, const char *device, const json_t *req);

/* call.route for CALLER (MQTT.md): request {to}; response mode, ordered
 * targets (offline ones left out; apps only while WAN is "up"; each with
 * its "stage"), transfer_via when the caller has no internet, apartment. */
json_t *reqs_call_route(store_t *st, const char *caller, const json_t *req, const char *wan);

/* sync.pull for MAC (MQTT.md): request {rev}; response rev, full, upserts
 * (items: credential, temp_key, contact), deletes (ids), more. Writes what
 * was sent (call inside the pass's transaction). */
json_t *reqs_sync_pull(store_t *st, const char *mac, const json_t *req);

/* The JSON form of a decision (without rid/ok). */
json_t *reqs_result_json(const access_result_t *r);

#endif
