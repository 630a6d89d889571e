/* The access decision engine: "may this credential open this relay now?"
 * from local state alone (never the WAN). Every decision writes a door log.
 * Single-threaded: call from the thread that owns the store. */
#ifndef GH_ENGINE_H
#define GH_ENGINE_H

#include <jansson.h>
#include <stdint.h>

#include "err.h"
#include "store.h"

typedef struct engine engine_t;

enum engine_reason {
	R_NONE = 0,
	R_UNKNOWN_CREDENTIAL,
	R_OUTSIDE_SCHEDULE,
	R_EXPIRED,
	R_RELAY_NOT_ALLOWED,
	R_APARTMENT_EXPIRED,
	R_USES_EXHAUSTED,
	R_DISABLED,
	R_UNKNOWN_DEVICE, /* extension: the device or board is not registered */
	R__COUNT
};

#define ENGINE_MAX_RELAYS 16
#define ENGINE_MAX_FLOORS 16

typedef struct access_req {
	const char *device; /* door phone / terminal MAC, or NULL with board */
	const char *board;  /* relay board id (barriers, readers), or NULL */
	int relay;          /* device relay / board channel; 0 = every relay allowing the method */
	const char *method; /* pin, rf, uhf, plate, face, fingerprint, qr, tempkey, app, ... */
	const char *code;
	const char *apt;    /* APT number in APT+PIN mode */
	int64_t now;        /* Unix seconds; 0 = current time */
	const char *event_id; /* device event id, kept in the door log */
} access_req_t;

typedef struct access_target {
	char board[64];
	int channel;
} access_target_t;

typedef struct access_result {
	int granted;
	int reason;                       /* enum engine_reason when refused */
	int relays[ENGINE_MAX_RELAYS];    /* device relays (numbers) to open */
	int nrelays;
	access_target_t boards[ENGINE_MAX_RELAYS]; /* board channels the gateway switches */
	int nboards;
	char floors[ENGINE_MAX_FLOORS][8]; /* lift floors to grant (labels) */
	int nfloors;
	int all_floors;
	char lift_building[64];
	char person[64];                  /* person id (empty for temp keys) */
	char person_name[136];            /* display name, or the visitor's name */
	char apartment[64];
	char credential[64];
	char temp_key[64];
	int64_t door_log;                 /* id of the door log written (0 while queued) */
} access_result_t;

engine_t *engine_new(store_t *st);
void engine_free(engine_t *en);

/* Decides REQ and writes the door log (result success / failed).
 * Returns 0 with *res filled (granted or a reason), or -1 with *err for a
 * malformed request (400) or a database failure (500). Consumes one use of
 * a temp key atomically when granted by one. */
int engine_decide(engine_t *en, const access_req_t *req, access_result_t *res, gh_err_t *err);

/* Batching (the daemon): with ON, the first decision of a loop pass opens
 * the pass's transaction; decisions only read (and spend a temp key use)
 * and their door logs wait in memory until engine_flush() writes them and
 * commits, once per loop pass. Off (default): each decision commits its own
 * door log. Turning it off flushes. */
void engine_batch(engine_t *en, int on);
/* Opens the loop pass's transaction if none is open (batch mode), so other
 * writers of the pass (device events) commit with engine_flush(). */
int engine_pass_begin(engine_t *en, gh_err_t *err);
/* Writes the queued door logs and commits the pass's transaction; on
 * failure the logs stay queued. */
int engine_flush(engine_t *en, gh_err_t *err);
/* The same, the commit not waiting for the disk (store_commit_lazy): when
 * no device waits for an ack of what the pass stored. */
int engine_flush_lazy(engine_t *en, gh_err_t *err);
/* ON: decisions begin no transaction (they read without one, their logs
 * wait in memory for engine_flush), so none is open while the WAL
 * checkpointer catches up (checkpoint.h ckpt_lagging). */
void engine_defer_tx(engine_t *en, int on);
/* 1 while the pass's transaction is open (work waits for engine_flush). */
int engine_pass_open(engine_t *en);
/* Door logs waiting for engine_flush(). */
int engine_pending(engine_t *en);
/* Door logs given up because nothing could be committed for long (a full
 * disk): decisions never wait for, or fail on, their log. */
int64_t engine_logs_dropped(const engine_t *en);
/* Called whenever engine_flush fails: the pass's transaction (and any
 * device event stored in it) is gone, so acks waiting for it are dropped. */
void engine_set_pass_failed_hook(engine_t *en, void (*fn)(void *ctx), void *ctx);

/* Effects of a granted decision (the daemon switches board relays and lift
 * floors); called after the decision, in the loop thread. */
typedef void (*engine_effects_fn)(void *ctx, const access_result_t *r);
void engine_set_effects(engine_t *en, engine_effects_fn fn, void *ctx);
/* Called when the emergency state changes, with the relays concerned. */
typedef void (*engine_emergency_fn)(void *ctx, int on, const json_t *targets);
void engine_set_emergency_hook(engine_t *en, engine_emergency_fn fn, void *ctx);

/* "unknown_credential", ... ("" for R_NONE). */
const char *engine_reason_name(int reason);

/* Emergency: ON opens (holds) the emergency door group of the settings (or
 * DOORS when not NULL: "all" or a list of relay refs); OFF ends it. Stored,
 * audited; *targets gets the relays concerned as a JSON list of relay refs. */
int engine_emergency_set(engine_t *en, int on, const json_t *doors, const char *actor,
			 json_t **targets, gh_err_t *err);
/* 1 while an emergency is active; *targets (optional) the relays held open. */
int engine_emergency_state(engine_t *en, json_t **targets);

#endif
