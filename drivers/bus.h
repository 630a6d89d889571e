/* The field bus (MODBUS.md): one worker thread per physical bus (a serial
 * port or a Modbus TCP endpoint) serialises libmodbus requests with the
 * profile's gap, timeout and retries; the loop thread never blocks on a
 * bus. Door relays are pulses (on, off after the hold time; a new open
 * extends it), emergency holds them on; boards go offline after failed
 * retries and are probed back with backoff. */
#ifndef GH_BUS_H
#define GH_BUS_H

#include <jansson.h>
#include <stdint.h>
#include <uv.h>

#include "store.h"

typedef struct busmgr busmgr_t;

/* Loads the relay boards of the store and starts one worker per bus; every
 * relay is driven to its idle state (off, or on for the emergency group
 * while an emergency is active) before any other command. */
busmgr_t *busmgr_start(uv_loop_t *loop, store_t *st);
/* Stops the workers (after their current request) and frees everything. */
void busmgr_stop(busmgr_t *m);
/* Reloads the boards if the store's configuration changed. */
void busmgr_refresh(busmgr_t *m);

enum { BUS_OK = 0, BUS_UNKNOWN = -1, BUS_OFFLINE = -2 };
/* Pulses BOARD's CHANNEL for HOLD_MS (0: the channel's or the site's hold
 * time); extends a pulse in progress. BUS_OFFLINE when the board is known
 * to be offline (the pulse is still tried). */
int busmgr_pulse(busmgr_t *m, const char *board, int channel, int hold_ms);
/* Holds a channel on (emergency) or releases it (off). */
int busmgr_hold(busmgr_t *m, const char *board, int channel, int on);
/* Lift grant (MODBUS.md): switches on, for SECONDS, the floor buttons of
 * the lift boards of BUILDING whose channels serve FLOORS (labels), or all
 * of them with ALL; overlapping grants merge (each button stays on until
 * the latest grant of it ends). Returns the number of buttons switched. */
int busmgr_lift(busmgr_t *m, const char *building, char (*floors)[8], int nfloors, int all, int seconds);
/* The floor a lift button serves when its channel has no floor label:
 * counted from the building's floor start (HAS_START) and ground floor
 * (a label, "" or NULL for none). Writes the label to OUT; -1 when
 * CHANNEL serves no floor in -10..128. */
int lift_floor_label(const char *ground, int has_start, int start, int channel, char out[8]);
/* A UHF tag or licence plate read by a reader board (MODBUS.md reader
 * block): METHOD "uhf" or "plate", DIRECTION 0 unknown / 1 entry / 2 exit,
 * LOT the reader board's parking lot ("" if none). */
typedef void (*bus_read_fn)(void *ctx, const char *board, const char *lot, int direction,
			    const char *method, const char *code);
void busmgr_set_reader_cb(busmgr_t *m, bus_read_fn fn, void *ctx);
/* Decodes one polled reader block (MODBUS.md: regs[0] sequence, [1]
 * direction, [2] code length in bytes, [3..18] the code, high byte first)
 * of BOARD against the last sequence seen (*HAVE_SEQ, *LAST_SEQ, updated).
 * Returns 1 for a new read (*DIR 0/1/2, CODE NUL-terminated), 0 when the
 * sequence did not move (or was seen for the first time), -1 for a new read
 * that is dropped (logged): empty, unprintable bytes, or longer than
 * CODE_MAX (the profile's, 1..32). */
int bus_reader_decode(const char *board, const uint16_t *regs, int code_max, int *have_seq, uint16_t *last_seq,
		      int *dir, char code[33]);

/* An input of a board with inputs (MK485 modes rs485_input_*): LEVEL for a
 * non-latching board's change, or 1 for an edge a latching board latched
 * (LATCHED 1; cleared on the board once read). */
typedef void (*bus_input_fn)(void *ctx, const char *board, int input, int level, int latched);
void busmgr_set_input_cb(busmgr_t *m, bus_input_fn fn, void *ctx);

/* [{"id","online","last_error","bus"}] for the status document. */
json_t *busmgr_status(busmgr_t *m);

#endif
