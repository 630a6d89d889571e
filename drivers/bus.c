/* Bus workers and relay state. The loop thread owns all state (boards,
 * channels, timers); a worker thread owns one libmodbus context and only
 * executes requests from its queue, handing results back through a
 * uv_async. The driver knows access styles (coil or register writes), never
 * board models: those are profiles (drivers/profiles/). */
#include "bus.h"

#include <errno.h>
#include <modbus.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "profile.h"
#include "settings.h"
#include "timeutil.h"

#define MAX_CHANNELS PROF_MAX_CHANNELS
#define TICK_MS 10
#define PROBE_MIN_MS 1000
#define PROBE_MAX_MS 60000
/* an online board nobody talked to for this long is asked whether it is
 * still there, so a dead board shows before a door fails on it */
#define HEALTH_MS 10000

typedef struct req {
	struct req *next;
	struct board *board;
	int channel;    /* 0 for a probe */
	int on;
	int is_probe;
	int is_poll;    /* reader block read */
	int is_inputs;  /* discrete inputs read */
	int clear_input; /* latched input to clear (1..n), by its clear coil */
	uint16_t regs[19];
	uint8_t bits[PROF_MAX_CHANNELS];
	uint64_t gen;   /* channel generation when queued */
	int ok;
	char err[128];
} req_t;

typedef struct bus {
	struct bus *next;
	struct busmgr *mgr;
	char key[300];
	int tcp;
	char host[256];
	int port;
	int baud, data, stop;
	char parity;
	int gap_ms, timeout_ms, retries;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	req_t *todo, *todo_tail, *done;
	int stopping;
	uv_async_t async;
} bus_t;

typedef struct chan {
	char floor[8];     /* lift boards: the floor this button serves */
	int on;            /* last state written successfully */
	int want;          /* state asked for */
	int hold;          /* emergency: stays on */
	uint64_t off_at;   /* monotonic ms; 0 = no pulse */
	int hold_ms;
} chan_t;

typedef struct board {
	struct board *next;
	char id[64];
	const profile_t *p;
	bus_t *bus;
	int unit;
	char building[64]; /* lift boards: the building they serve */
	char lot[64];      /* readers: their parking lot */
	int is_reader, poll_pending, have_seq;
	int input_mode;    /* 0 none, 1 levels, 2 latched edges */
	int have_levels;
	uint8_t levels[PROF_MAX_CHANNELS], clearing[PROF_MAX_CHANNELS];
	uint16_t last_seq;
	uint64_t next_poll_ms;
	int online;       /* -1 unknown, 0 offline, 1 online */
	char last_error[128];
	uint64_t requests, errors; /* answered and failed requests since start (loop thread) */
	uint64_t next_probe_ms;
	uint64_t next_health_ms; /* monotonic ms; pushed back by every answer */
	unsigned probe_ms;
	chan_t ch[MAX_CHANNELS + 1];
} board_t;

struct busmgr {
	uv_loop_t *loop;
	store_t *st;
	board_t *boards;
	bus_t *buses;
	uv_timer_t tick;
	unsigned gen;
	char signature[64]; /* of the relay boards' rows: reload only when they change */
	int default_hold_ms;
	bus_read_fn on_read;
	void *read_ctx;
	bus_input_fn on_input;
	void *input_ctx;
};

void busmgr_set_input_cb(busmgr_t *m, bus_input_fn fn, void *ctx)
{
	if (m) {
		m->on_input = fn;
		m->input_ctx = ctx;
	}
}

void busmgr_set_reader_cb(busmgr_t *m, bus_read_fn fn, void *ctx)
{
	if (m) {
		m->on_read = fn;
		m->read_ctx = ctx;
	}
}

/* Lift buttons (channels) with no floor label of their own are numbered
 * from the building (PRODUCT.md: "ground floor and floor-start (for lift
 * mapping)"). Channel 1 serves the floor start (none: the ground floor) and
 * each next channel the floor above. A ground floor of G0, G1 or G2 means
 * ground levels G0 up to it between -1 and 1; a numbered ground floor (or
 * none, which counts as 1) means plain numbers, with 0 only when the ground
 * floor is 0. Labels run -10..128; channels beyond that serve nothing. */
int lift_floor_label(const char *ground, int has_start, int start, int channel, char out[8])
{
	enum { G = 1000 }; /* G + k stands for the ground level Gk */
	int glevels = ground && ground[0] == 'G' ? ground[1] - '0' + 1 : 0;
	int gnum = ground && *ground && !glevels ? atoi(ground) : 1;
	int f = has_start ? (glevels && start == 0 ? G : start) : glevels ? G : gnum;
	out[0] = '\0';
	if (channel < 1)
		return -1;
	for (int k = 1; k < channel; k++) {
		if (f >= G)
			f = f - G + 1 < glevels ? f + 1 : 1;
		else if (++f == 0 && glevels)
			f = G;
		else if (f == 0 && gnum != 0)
			f = 1; /* no floor 0 unless the ground floor is 0 */
	}
	if (f >= G)
		snprintf(out, 8, "G%d", (f - G) % 10);
	else if (f >= -10 && f <= 128)
		snprintf(out, 8, "%d", f);
	else
		return -1;
	return 0;
}

static void lift_floors(busmgr_t *m)
{
	sqlite3_stmt *s = store_stmt(m->st, "SELECT ground_floor, floor_start FROM buildings WHERE id = ?");
	for (board_t *bd = m->boards; bd; bd = bd->next) {
		if (bd->p->kind != PROF_LIFT)
			continue;
		char ground[8] = "";
		int has_start = 0, start = 0;
		if (s && *bd->building) {
			sqlite3_bind_text(s, 1, bd->building, -1, SQLITE_STATIC);
			if (sqlite3_step(s) == SQLITE_ROW) {
				if (sqlite3_column_text(s, 0))
					snprintf(ground, sizeof ground, "%s", (const char *)sqlite3_column_text(s, 0));
				has_start = sqlite3_column_type(s, 1) != SQLITE_NULL;
				start = sqlite3_column_int(s, 1);
			}
			sqlite3_reset(s);
		}
		for (int c = 1; c <= bd->p->channels && c <= MAX_CHANNELS; c++)
			if (!bd->ch[c].floor[0])
				lift_floor_label(ground, has_start, start, c, bd->ch[c].floor);
	}
}

static void boards_signature(store_t *st, char *out, size_t len)
{
	/* a building's ground floor and floor start number its lifts' buttons */
	sqlite3_stmt *s = store_stmt(st, "SELECT (SELECT count(*) || ':' || COALESCE(max(lrev), 0) FROM relay_boards) "
					 "|| ':' || (SELECT COALESCE(max(lrev), 0) FROM tombstones WHERE entity = 'relay_board') "
					 "|| ':' || (SELECT COALESCE(max(b.lrev), 0) FROM buildings b "
					 "JOIN relay_boards r ON r.building = b.id)");
	out[0] = '\0';
	if (s && sqlite3_step(s) == SQLITE_ROW)
		snprintf(out, len, "%s", (const char *)sqlite3_column_text(s, 0));
	if (s)
		sqlite3_reset(s);
}

/* ---- worker side ---- */

static modbus_t *open_ctx(bus_t *b, char *err, size_t len)
{
	modbus_t *ctx = b->tcp ? modbus_new_tcp(b->host, b->port)
			       : modbus_new_rtu(b->key, b->baud, b->parity, b->data, b->stop);
	if (!ctx) {
		snprintf(err, len, "cannot create a Modbus context for %.60s", b->key);
		return NULL;
	}
	modbus_set_response_timeout(ctx, (uint32_t)(b->timeout_ms / 1000), (uint32_t)(b->timeout_ms % 1000) * 1000u);
	if (modbus_connect(ctx) == -1) {
		snprintf(err, len, "cannot connect to %.60s: %s", b->key, modbus_strerror(errno));
		modbus_free(ctx);
		return NULL;
	}
	return ctx;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static void execute(bus_t *b, modbus_t **ctx, req_t *r)
{
	const profile_t *p = r->board->p;
	r->ok = 0;
	for (int attempt = 0; attempt <= b->retries && !r->ok; attempt++) {
		if (attempt)
			sleep_ms(b->gap_ms);
		if (!*ctx && !(*ctx = open_ctx(b, r->err, sizeof r->err)))
			continue;
		modbus_set_slave(*ctx, r->board->unit);
		int rc;
		if (r->is_inputs) {
			rc = modbus_read_input_bits(*ctx, p->input_base, p->inputs, r->bits);
		} else if (r->clear_input) {
			rc = modbus_write_bit(*ctx, p->clear_base + r->clear_input - 1, TRUE);
		} else if (r->is_poll) {
			rc = modbus_read_input_registers(*ctx, p->block_base, 19, r->regs);
		} else if (r->is_probe) {
			uint8_t bit;
			uint16_t reg;
			rc = p->read == PROF_W_REGISTER ? modbus_read_registers(*ctx, p->reg_base, 1, &reg)
							: modbus_read_bits(*ctx, p->coil_base, 1, &bit);
		} else if (p->write == PROF_W_REGISTER) {
			rc = modbus_write_register(*ctx, p->reg_base + r->channel - 1,
						   r->on ? p->on_value : p->off_value);
		} else {
			rc = modbus_write_bit(*ctx, p->coil_base + r->channel - 1, r->on ? TRUE : FALSE);
		}
		if (rc != -1) {
			r->ok = 1;
			break;
		}
		snprintf(r->err, sizeof r->err, "%s", modbus_strerror(errno));
		if (b->tcp && errno != EMBXILFUN && errno != EMBXILADD && errno != EMBXILVAL) {
			/* a broken TCP stream is not reused */
			modbus_close(*ctx);
			modbus_free(*ctx);
			*ctx = NULL;
		}
	}
}

static uint64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void *worker(void *arg)
{
	bus_t *b = arg;
	modbus_t *ctx = NULL;
	uint64_t last_done = 0;
	pthread_setname_np(pthread_self(), b->tcp ? "gh-bus-tcp" : "gh-bus-rtu"); /* top -H */
	pthread_mutex_lock(&b->mu);
	for (;;) {
		while (!b->todo && !b->stopping)
			pthread_cond_wait(&b->cv, &b->mu);
		if (b->stopping)
			break;
		req_t *r = b->todo;
		b->todo = r->next;
		if (!b->todo)
			b->todo_tail = NULL;
		pthread_mutex_unlock(&b->mu);
		/* the gap some transceivers need between two requests: waited only
		 * when the next one comes sooner, so an idle bus answers at once */
		uint64_t since = mono_us() - last_done;
		if (last_done && since < (uint64_t)b->gap_ms * 1000u)
			sleep_ms((int)(((uint64_t)b->gap_ms * 1000u - since + 999u) / 1000u));
		execute(b, &ctx, r);
		last_done = mono_us();
		pthread_mutex_lock(&b->mu);
		r->next = b->done;
		b->done = r;
		uv_async_send(&b->async);
	}
	pthread_mutex_unlock(&b->mu);
	if (ctx) {
		modbus_close(ctx);
		modbus_free(ctx);
	}
	return NULL;
}

/* ---- loop side ---- */

static void enqueue(board_t *bd, int channel, int on, int probe)
{
	req_t *r = calloc(1, sizeof *r);
	if (!r)
		return;
	r->board = bd;
	r->channel = channel;
	r->on = on;
	r->is_probe = probe == 1;
	r->is_poll = probe == 2;
	r->is_inputs = probe == 3;
	if (probe == 4) {
		r->clear_input = channel; /* the input to clear, not a relay */
		r->channel = 0;
	}
	bus_t *b = bd->bus;
	pthread_mutex_lock(&b->mu);
	if (b->todo_tail)
		b->todo_tail->next = r;
	else
		b->todo = r;
	b->todo_tail = r;
	pthread_cond_signal(&b->cv);
	pthread_mutex_unlock(&b->mu);
}

static void write_fail_log(busmgr_t *m, board_t *bd, int channel, const char *result, const char *err)
{
	sqlite3_stmt *s = store_stmt(m->st, "INSERT INTO door_logs(ts, type, board, channel, result, reason) "
					    "VALUES (?, 'door_release', ?, ?, ?, ?)");
	if (!s || store_begin(m->st))
		return;
	sqlite3_bind_int64(s, 1, gh_now());
	sqlite3_bind_text(s, 2, bd->id, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 3, channel);
	sqlite3_bind_text(s, 4, result, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 5, err, -1, SQLITE_STATIC);
	int rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc == SQLITE_DONE)
		store_commit(m->st);
	else
		store_rollback(m->st);
}

static void set_online(board_t *bd, int online, const char *err)
{
	if (online) {
		if (bd->online != 1)
			log_info("bus", "board %s online on %s", bd->id, bd->bus->key);
		bd->online = 1;
		bd->last_error[0] = '\0';
		bd->probe_ms = PROBE_MIN_MS;
		return;
	}
	if (bd->online != 0)
		log_warn("bus", "board %s offline on %s: %s", bd->id, bd->bus->key, err);
	bd->online = 0;
	snprintf(bd->last_error, sizeof bd->last_error, "%s", err);
	bd->next_probe_ms = gh_mono_ms() + bd->probe_ms;
	bd->probe_ms = bd->probe_ms * 2 > PROBE_MAX_MS ? PROBE_MAX_MS : bd->probe_ms * 2;
}

int bus_reader_decode(const char *board, const uint16_t *regs, int code_max, int *have_seq, uint16_t *last_seq,
		      int *dir, char code[33])
{
	uint16_t seq = regs[0];
	if (!*have_seq) {
		/* what the reader held before we looked is history, not a read */
		*have_seq = 1;
		*last_seq = seq;
		return 0;
	}
	if (seq == *last_seq)
		return 0;
	uint16_t moved = (uint16_t)(seq - *last_seq);
	if (moved > 1)
		log_warn("bus", "reader %s: %u reads missed between two polls", board, (unsigned)(moved - 1));
	*last_seq = seq;
	if (code_max < 1 || code_max > 32)
		code_max = 32;
	size_t len = regs[2];
	if (len > (size_t)code_max) {
		/* a prefix of the code could be another credential's code */
		log_warn("bus", "reader %s: a read of %zu bytes (at most %d) dropped", board, len, code_max);
		return -1;
	}
	for (size_t i = 0; i < len; i++)
		code[i] = (char)(i % 2 ? regs[3 + i / 2] & 0xff : regs[3 + i / 2] >> 8);
	code[len] = '\0';
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)code[i] < 0x20 || (unsigned char)code[i] > 0x7e) {
			log_warn("bus", "reader %s: a read with unprintable bytes dropped", board);
			return -1;
		}
	if (!len) {
		log_warn("bus", "reader %s: an empty read dropped", board);
		return -1;
	}
	*dir = regs[1] <= 2 ? regs[1] : 0;
	return 1;
}

/* A polled reader block: a moved sequence number is a new read. */
static void reader_block(busmgr_t *m, board_t *bd, const uint16_t *regs)
{
	char code[33];
	int dir = 0;
	if (bus_reader_decode(bd->id, regs, bd->p->code_max, &bd->have_seq, &bd->last_seq, &dir, code) != 1)
		return;
	log_info("bus", "reader %s: %s %s (%s)", bd->id, bd->p->kind == PROF_UHF ? "tag" : "plate", code,
		 dir == 1 ? "entry" : dir == 2 ? "exit" : "direction unknown");
	if (m->on_read)
		m->on_read(m->read_ctx, bd->id, bd->lot, dir, bd->p->kind == PROF_UHF ? "uhf" : "plate", code);
}

/* Inputs read: level changes, or latched edges (then cleared on the board;
 * an edge that arrives after the read stays latched for the next poll, so
 * none is missed). */
static void inputs_read(busmgr_t *m, board_t *bd, const uint8_t *bits)
{
	int n = bd->p->inputs;
	for (int i = 0; i < n; i++) {
		if (bd->input_mode == 1) {
			if (bd->have_levels && bits[i] != bd->levels[i] && m->on_input)
				m->on_input(m->input_ctx, bd->id, i + 1, bits[i], 0);
			bd->levels[i] = bits[i];
		} else if (bits[i] && !bd->clearing[i]) {
			bd->clearing[i] = 1;
			if (m->on_input)
				m->on_input(m->input_ctx, bd->id, i + 1, 1, 1);
			enqueue(bd, i + 1, 1, 4);
		}
	}
	bd->have_levels = 1;
}

static void on_results(uv_async_t *a)
{
	bus_t *b = a->data;
	pthread_mutex_lock(&b->mu);
	req_t *r = b->done;
	b->done = NULL;
	pthread_mutex_unlock(&b->mu);
	/* results come newest first: handle them in order */
	req_t *rev = NULL;
	while (r) {
		req_t *n = r->next;
		r->next = rev;
		rev = r;
		r = n;
	}
	for (r = rev; r; r = rev) {
		rev = r->next;
		board_t *bd = r->board;
		if (r->is_poll || r->is_inputs)
			bd->poll_pending = 0;
		if (r->clear_input)
			bd->clearing[r->clear_input - 1] = 0; /* cleared, or to be seen again */
		bd->requests++;
		if (!r->ok)
			bd->errors++;
		else
			bd->next_health_ms = gh_mono_ms() + HEALTH_MS;
		if (r->ok) {
			set_online(bd, 1, NULL);
			if (r->channel)
				bd->ch[r->channel].on = r->on;
			if (r->is_poll)
				reader_block(b->mgr, bd, r->regs);
			if (r->is_inputs)
				inputs_read(b->mgr, bd, r->bits);
		} else {
			int was_online = bd->online != 0;
			set_online(bd, 0, r->err);
			if (r->channel && r->on) {
				log_err("bus", "opening %s channel %d failed: %s", bd->id, r->channel, r->err);
				write_fail_log(b->mgr, bd, r->channel, was_online ? "failed" : "offline", r->err);
			}
		}
		free(r);
	}
}

static void on_tick(uv_timer_t *t)
{
	busmgr_t *m = t->data;
	uint64_t now = gh_mono_ms();
	for (board_t *bd = m->boards; bd; bd = bd->next) {
		if (bd->is_reader || bd->input_mode) {
			/* one poll in flight at a time; offline boards at the probe pace */
			if (!bd->poll_pending && now >= bd->next_poll_ms) {
				bd->poll_pending = 1;
				bd->next_poll_ms = now + (bd->online == 0 ? bd->probe_ms : (unsigned)bd->p->poll_ms);
				enqueue(bd, 0, 0, bd->is_reader ? 2 : 3);
			}
			if (bd->is_reader)
				continue;
		}
		for (int c = 1; c <= bd->p->channels && c <= MAX_CHANNELS; c++) {
			chan_t *ch = &bd->ch[c];
			if (ch->want && !ch->hold && ch->off_at && now >= ch->off_at) {
				ch->want = 0;
				ch->off_at = 0;
				enqueue(bd, c, 0, 0);
			}
		}
		if (bd->online == 0 && now >= bd->next_probe_ms) {
			bd->next_probe_ms = now + bd->probe_ms; /* until the probe answers */
			enqueue(bd, 0, 0, 1);
		} else if (bd->online == 1 && !bd->input_mode && now >= bd->next_health_ms) {
			bd->next_health_ms = now + HEALTH_MS;
			enqueue(bd, 0, 0, 1);
		}
	}
}

static bus_t *bus_for(busmgr_t *m, const char *key, const profile_t *p, json_t *serial)
{
	for (bus_t *b = m->buses; b; b = b->next)
		if (!strcmp(b->key, key))
			return b;
	bus_t *b = calloc(1, sizeof *b);
	if (!b)
		return NULL;
	b->mgr = m;
	snprintf(b->key, sizeof b->key, "%s", key);
	const char *colon = strrchr(key, ':');
	b->tcp = key[0] != '/' && colon;
	if (b->tcp) {
		snprintf(b->host, sizeof b->host, "%.*s", (int)(colon - key), key);
		b->port = (int)strtol(colon + 1, NULL, 10);
	}
	json_t *v;
	b->baud = (v = json_object_get(serial, "baud")) ? (int)json_integer_value(v) : p->baud;
	b->data = (v = json_object_get(serial, "data")) ? (int)json_integer_value(v) : p->data;
	b->stop = (v = json_object_get(serial, "stop")) ? (int)json_integer_value(v) : p->stop;
	b->parity = (v = json_object_get(serial, "parity")) && json_string_value(v) ? json_string_value(v)[0] : p->parity;
	b->gap_ms = p->gap_ms;
	b->timeout_ms = p->response_timeout_ms;
	b->retries = p->retries;
	pthread_mutex_init(&b->mu, NULL);
	pthread_cond_init(&b->cv, NULL);
	uv_async_init(m->loop, &b->async, on_results);
	b->async.data = b;
	if (pthread_create(&b->thread, NULL, worker, b)) {
		log_err("bus", "cannot start the worker of %s", key);
		uv_close((uv_handle_t *)&b->async, NULL);
		free(b);
		return NULL;
	}
	b->next = m->buses;
	m->buses = b;
	log_info("bus", "bus %s (%s)", key, b->tcp ? "Modbus TCP" : "Modbus RTU");
	return b;
}

static void load(busmgr_t *m)
{
	const settings_t *set = settings_get(m->st);
	m->default_hold_ms = set ? set->relay_hold_ms : 5000;
	sqlite3_stmt *s = store_stmt(m->st, "SELECT id, profile, bus, unit, json_extract(data, '$.serial'), "
					    "COALESCE(building, ''), COALESCE(lot, ''), mode FROM relay_boards ORDER BY id");
	while (s && sqlite3_step(s) == SQLITE_ROW) {
		const profile_t *p = profile_find((const char *)sqlite3_column_text(s, 1));
		if (!p)
			continue;
		board_t *bd = calloc(1, sizeof *bd);
		if (!bd)
			break;
		snprintf(bd->id, sizeof bd->id, "%s", (const char *)sqlite3_column_text(s, 0));
		bd->p = p;
		bd->unit = sqlite3_column_int(s, 3);
		snprintf(bd->building, sizeof bd->building, "%s", (const char *)sqlite3_column_text(s, 5));
		snprintf(bd->lot, sizeof bd->lot, "%s", (const char *)sqlite3_column_text(s, 6));
		bd->is_reader = p->kind == PROF_UHF || p->kind == PROF_LPR;
		const char *mode = (const char *)sqlite3_column_text(s, 7);
		if (p->inputs > 0 && mode && !strcmp(mode, "rs485_input_nonlatching"))
			bd->input_mode = 1;
		else if (p->inputs > 0 && mode && !strcmp(mode, "rs485_input_latching"))
			bd->input_mode = 2;
		bd->online = -1;
		bd->probe_ms = PROBE_MIN_MS;
		json_t *serial = sqlite3_column_text(s, 4) ? json_loads((const char *)sqlite3_column_text(s, 4), 0, NULL) : NULL;
		bd->bus = bus_for(m, (const char *)sqlite3_column_text(s, 2), p, serial);
		json_decref(serial);
		if (!bd->bus) {
			free(bd);
			continue;
		}
		bd->next = m->boards;
		m->boards = bd;
	}
	if (s)
		sqlite3_reset(s);
	/* per-channel hold times and lift floors */
	s = store_stmt(m->st, "SELECT board, channel, hold_ms, floor FROM board_channels");
	while (s && sqlite3_step(s) == SQLITE_ROW)
		for (board_t *bd = m->boards; bd; bd = bd->next)
			if (!strcmp(bd->id, (const char *)sqlite3_column_text(s, 0))) {
				int c = sqlite3_column_int(s, 1);
				if (c < 1 || c > MAX_CHANNELS)
					continue;
				bd->ch[c].hold_ms = sqlite3_column_int(s, 2);
				if (sqlite3_column_text(s, 3))
					snprintf(bd->ch[c].floor, sizeof bd->ch[c].floor, "%s",
						 (const char *)sqlite3_column_text(s, 3));
			}
	if (s)
		sqlite3_reset(s);
	lift_floors(m);
	/* idle state first: every relay off, or held on for an active emergency */
	json_t *em = NULL;
	char buf[65536];
	if (store_kv_get(m->st, "emergency", buf, sizeof buf) == 0) {
		json_t *state = json_loads(buf, 0, NULL);
		if (json_is_true(json_object_get(state, "on")))
			em = json_incref(json_object_get(state, "doors"));
		json_decref(state);
	}
	for (board_t *bd = m->boards; bd; bd = bd->next)
		for (int c = 1; c <= bd->p->channels && c <= MAX_CHANNELS; c++) {
			int on = 0;
			size_t i;
			json_t *t;
			json_array_foreach(em, i, t) {
				const char *b = json_string_value(json_object_get(t, "board"));
				if (b && !strcmp(b, bd->id) && json_integer_value(json_object_get(t, "channel")) == c)
					on = 1;
			}
			bd->ch[c].want = bd->ch[c].hold = on;
			enqueue(bd, c, on, 0);
		}
	json_decref(em);
	m->gen = store_settings_gen(m->st);
	boards_signature(m->st, m->signature, sizeof m->signature);
}

busmgr_t *busmgr_start(uv_loop_t *loop, store_t *st)
{
	busmgr_t *m = calloc(1, sizeof *m);
	if (!m)
		return NULL;
	m->loop = loop;
	m->st = st;
	load(m);
	uv_timer_init(loop, &m->tick);
	m->tick.data = m;
	uv_timer_start(&m->tick, on_tick, TICK_MS, TICK_MS);
	return m;
}

static void free_bus(uv_handle_t *h) { free(h->data); }

static void stop_buses(busmgr_t *m)
{
	for (bus_t *b = m->buses, *n; b; b = n) {
		n = b->next;
		pthread_mutex_lock(&b->mu);
		b->stopping = 1;
		pthread_cond_signal(&b->cv);
		pthread_mutex_unlock(&b->mu);
		pthread_join(b->thread, NULL);
		for (req_t *r = b->todo, *rn; r; r = rn) {
			rn = r->next;
			free(r);
		}
		for (req_t *r = b->done, *rn; r; r = rn) {
			rn = r->next;
			free(r);
		}
		pthread_mutex_destroy(&b->mu);
		pthread_cond_destroy(&b->cv);
		b->async.data = b;
		uv_close((uv_handle_t *)&b->async, free_bus);
	}
	m->buses = NULL;
	for (board_t *bd = m->boards, *n; bd; bd = n) {
		n = bd->next;
		free(bd);
	}
	m->boards = NULL;
}

void busmgr_refresh(busmgr_t *m)
{
	if (!m || m->gen == store_settings_gen(m->st))
		return;
	m->gen = store_settings_gen(m->st);
	const settings_t *set = settings_get(m->st);
	if (set)
		m->default_hold_ms = set->relay_hold_ms;
	char sig[64];
	boards_signature(m->st, sig, sizeof sig);
	if (!strcmp(sig, m->signature))
		return; /* other edits: pulses in progress go on */
	log_info("bus", "relay boards changed: reloading");
	stop_buses(m);
	load(m);
}

static void free_mgr(uv_handle_t *h) { free(h->data); }

void busmgr_stop(busmgr_t *m)
{
	if (!m)
		return;
	uv_timer_stop(&m->tick);
	stop_buses(m);
	uv_close((uv_handle_t *)&m->tick, free_mgr);
}

static board_t *find(busmgr_t *m, const char *id, int channel)
{
	for (board_t *bd = m->boards; bd; bd = bd->next)
		if (!strcmp(bd->id, id))
			return channel >= 1 && channel <= bd->p->channels && channel <= MAX_CHANNELS ? bd : NULL;
	return NULL;
}

int busmgr_pulse(busmgr_t *m, const char *board, int channel, int hold_ms)
{
	board_t *bd = m ? find(m, board, channel) : NULL;
	if (!bd)
		return BUS_UNKNOWN;
	chan_t *ch = &bd->ch[channel];
	int ms = hold_ms > 0 ? hold_ms : ch->hold_ms > 0 ? ch->hold_ms : m->default_hold_ms;
	uint64_t until = gh_mono_ms() + (uint64_t)ms;
	if (!ch->want) {
		ch->want = 1;
		enqueue(bd, channel, 1, 0);
	}
	/* a new open during a pulse extends it */
	if (until > ch->off_at)
		ch->off_at = until;
	return bd->online == 0 ? BUS_OFFLINE : BUS_OK;
}

int busmgr_hold(busmgr_t *m, const char *board, int channel, int on)
{
	board_t *bd = m ? find(m, board, channel) : NULL;
	if (!bd)
		return BUS_UNKNOWN;
	chan_t *ch = &bd->ch[channel];
	ch->hold = on;
	if (on != ch->want) {
		ch->want = on;
		ch->off_at = 0;
		enqueue(bd, channel, on, 0);
	}
	return bd->online == 0 ? BUS_OFFLINE : BUS_OK;
}

int busmgr_lift(busmgr_t *m, const char *building, char (*floors)[8], int nfloors, int all, int seconds)
{
	int n = 0;
	for (board_t *bd = m ? m->boards : NULL; bd; bd = bd->next) {
		if (bd->p->kind != PROF_LIFT || (building && *building && *bd->building &&
						  strcmp(building, bd->building)))
			continue;
		for (int c = 1; c <= bd->p->channels && c <= MAX_CHANNELS; c++) {
			int hit = all && bd->ch[c].floor[0];
			for (int i = 0; !hit && i < nfloors; i++)
				hit = bd->ch[c].floor[0] && !strcmp(bd->ch[c].floor, floors[i]);
			if (hit && busmgr_pulse(m, bd->id, c, seconds * 1000) != BUS_UNKNOWN)
				n++;
		}
	}
	return n;
}

json_t *busmgr_status(busmgr_t *m)
{
	json_t *a = json_array();
	for (board_t *bd = m ? m->boards : NULL; bd; bd = bd->next) {
		json_t *o = json_pack("{s:s,s:b,s:s,s:I,s:I}", "id", bd->id, "online", bd->online == 1, "bus",
				      bd->bus->key, "requests", (json_int_t)bd->requests, "errors", (json_int_t)bd->errors);
		json_object_set_new(o, "last_error", bd->last_error[0] ? json_string(bd->last_error) : json_null());
		json_array_append_new(a, o);
	}
	return a;
}
