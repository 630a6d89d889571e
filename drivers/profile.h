/* Modbus device profiles (MODBUS.md): a board model is data, loaded from
 * profiles_dir at start. Code knows access styles, never model names. */
#ifndef GH_PROFILE_H
#define GH_PROFILE_H

#include <stdint.h>

#include "err.h"

enum { PROF_RELAY, PROF_LIFT, PROF_UHF, PROF_LPR };
/* Relays / floor buttons and inputs a board may have (the bus keeps a
 * state per channel and reads inputs in one request). */
#define PROF_MAX_CHANNELS 64
enum { PROF_T_RTU = 1, PROF_T_TCP = 2 };
enum { PROF_W_NONE, PROF_W_COIL, PROF_W_REGISTER };

typedef struct profile {
	char name[64];
	int kind;               /* PROF_* */
	int channels;
	unsigned transports;    /* PROF_T_* bits */
	int baud, data, stop, unit;
	char parity;            /* 'N', 'E', 'O' */
	int write;              /* PROF_W_* */
	int coil_base, reg_base;
	uint16_t on_value, off_value;
	int read;               /* PROF_W_COIL (FC01) or PROF_W_REGISTER (FC03) */
	uint16_t read_on, read_off;
	int inputs, input_base, latching, clear_base;
	int block_base, code_max;
	int response_timeout_ms, gap_ms, poll_ms;
	int retries;
} profile_t;

/* Loads every *.ini of DIR, replacing the registry; -1 with *err naming the
 * file, the line and the problem (nothing replaced then). */
int profiles_load(const char *dir, gh_err_t *err);
/* Parses one profile file. */
int profile_load_file(const char *path, profile_t *out, gh_err_t *err);
/* Registered profile by name, or NULL. */
const profile_t *profile_find(const char *name);
int profile_count(void);
const profile_t *profile_at(int i);
void profiles_free(void);

/* Board modes (relay_board.mode) a profile supports. */
int profile_mode_ok(const profile_t *p, const char *mode);

#endif
