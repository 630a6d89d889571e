/* bench_engine: the access decision engine on a community-sized site.
 *
 * Builds a site through the real write path (ent_put, validator included,
 * batched in store_begin/store_commit), then measures engine_decide():
 * latency percentiles and throughput, batched the way the daemon commits
 * (one transaction per loop pass) and in autocommit (one transaction per
 * decision), plus APT+PIN decisions after switching the PIN mode. Prints
 * the bulk-load times, the database size and the process RSS.
 *
 * Figures are measured and printed, never asserted. The last line is
 * `BENCH_JSON {...}` with every figure (for the README tables).
 *
 *   bench_engine [--persons N] [--credentials N] [--groups N] [--decisions N]
 *                [--autocommit N] [--aptpin N] [--db PATH] [--keep] [--quick]
 *                [--local] [--no-bulk] [--cache-mb N] [--mmap-mb N] [--batch N] [--profiles DIR]
 *
 * Run from the repository root (profiles are read from drivers/profiles). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bulk.h"
#include "engine.h"
#include "entity.h"
#include "log.h"
#include "profile.h"
#include "store.h"
#include "timeutil.h"

/* ---- options ---- */

typedef struct opts {
	long persons, credentials, groups, decisions, autocommit, aptpin;
	long batch;       /* entities per load transaction */
	long cache_mb;    /* -1: the store's own page cache setting (as the daemon runs) */
	long mmap_mb;     /* -1: the store's own mmap_size */
	const char *db;
	const char *profiles;
	int keep, quick, local, no_bulk;
} opts_t;

static opts_t o = {
	.persons = 200000, .credentials = 1000000, .groups = 2000, .decisions = 200000,
	.autocommit = 20000, .aptpin = 20000, .batch = 10000, .cache_mb = -1, .mmap_mb = -1,
	.profiles = "drivers/profiles",
};

/* fixed site shape */
#define DOORS_PER_BUILDING 2    /* main entrance (relays 1, 2) and side door (relay 1) */
#define PERSONS_PER_BUILDING 2000
#define GROUP_RELAYS 3          /* door phones per non-default group */
#define GROUP_APTS 10           /* apartment members per non-default group */
#define GROUP_PERSONS 10        /* person members per non-default group */
#define DECISION_BATCH 100      /* decisions per transaction (daemon loop pass) */
#define SEED 0x9E3779B97F4A7C15ULL

/* ---- small helpers ---- */

static uint64_t rng_state = SEED;

static uint64_t rng(void)
{
	/* splitmix64: fixed seed, repeatable runs */
	uint64_t z = (rng_state += 0x9E3779B97F4A7C15ULL);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

static long rnd(long n) { return n > 0 ? (long)(rng() % (uint64_t)n) : 0; }

static uint64_t mix64(uint64_t z)
{
	/* a bijection on 64 bits (splitmix finalizer): unique codes from indexes */
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double secs(uint64_t ns) { return (double)ns / 1e9; }

static void die(const char *what, const char *detail)
{
	fprintf(stderr, "bench_engine: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
	exit(1);
}

static long opt_long(const char *name, const char *v, long min)
{
	char *end;
	errno = 0;
	long n = strtol(v, &end, 10);
	if (errno || *end || n < min) {
		fprintf(stderr, "bench_engine: --%s needs an integer >= %ld\n", name, min);
		exit(2);
	}
	return n;
}

/* ---- site shape: ids and codes as functions of indexes ---- */

static long n_buildings, n_apartments, n_devices, n_boards, n_default_groups;

static void id_building(long b, char *buf, size_t n) { snprintf(buf, n, "b%03ld", b); }
static void id_apartment(long a, char *buf, size_t n) { snprintf(buf, n, "a%06ld", a); }
static void id_person(long p, char *buf, size_t n) { snprintf(buf, n, "p%07ld", p); }
static void id_device(long d, char *buf, size_t n) { snprintf(buf, n, "0C1105%06X", (unsigned)(d & 0xFFFFFF)); }
static void id_board(long k, char *buf, size_t n) { snprintf(buf, n, "hf%03ld", k); }

static long apt_building(long a) { return a * n_buildings / n_apartments; }
static long building_first_apt(long b)
{
	/* smallest a with apt_building(a) == b */
	long a = (b * n_apartments + n_buildings - 1) / n_buildings;
	while (a > 0 && apt_building(a - 1) == b)
		a--;
	while (apt_building(a) < b)
		a++;
	return a;
}

/* persons [first, end) live in apartment a: 2 or 3 each for 2.5 per apartment */
static long apt_first_person(long a) { return a * o.persons / n_apartments; }
static long person_apt(long p)
{
	long a = p * n_apartments / o.persons;
	while (a + 1 < n_apartments && apt_first_person(a + 1) <= p)
		a++;
	while (a > 0 && apt_first_person(a) > p)
		a--;
	return a;
}

/* APT number: floor * 100 + unit (floor * 1000 + unit for wide floors) */
static void apt_number(long a, char *buf, size_t n, int *floor)
{
	long b = apt_building(a), idx = a - building_first_apt(b);
	long per = building_first_apt(b + 1) - building_first_apt(b);
	if (b + 1 >= n_buildings)
		per = n_apartments - building_first_apt(b);
	long upf = per / 100 + 1 > 20 ? per / 100 + 1 : 20;
	long fl = idx / upf + 1, unit = idx % upf + 1;
	if (upf > 99)
		snprintf(buf, n, "%d%03d", (int)(fl % 1000), (int)(unit % 1000));
	else
		snprintf(buf, n, "%d%02d", (int)(fl % 1000), (int)(unit % 100));
	*floor = (int)fl;
}

enum { T_PIN, T_RF, T_UHF, T_PLATE };
static const char *const type_names[] = { "pin", "rf", "uhf", "plate" };

/* credential j belongs to person j % P; round j / P picks its type: each
 * person gets 1 PIN, 2 RF cards, 1 UHF tag and 1 plate per 5 rounds, and
 * RF cards only after that (at most 5 UHF / 5 plates per person) */
static int cred_type(long j)
{
	static const int rounds[5] = { T_PIN, T_RF, T_UHF, T_PLATE, T_RF };
	long r = j / o.persons;
	return r < 5 ? rounds[r] : T_RF;
}

static void cred_code(long j, int type, char *buf, size_t n)
{
	uint64_t u = (uint64_t)j;
	switch (type) {
	case T_PIN: /* 8 digits, not starting with 9, unique: a bijection on [0, 8e7) */
		snprintf(buf, n, "%" PRIu64, 10000000u + (u * 48271u) % 80000000u);
		break;
	case T_RF: /* 32-bit card number, 8 hex digits (odd multiplier: a bijection) */
		snprintf(buf, n, "%08" PRIX32, (uint32_t)(u * 2654435761u));
		break;
	case T_UHF: /* 96-bit EPC, 24 hex digits */
		snprintf(buf, n, "E2801160%016" PRIX64, mix64(u));
		break;
	default: { /* plate "W 1234 AB": district, number, two letters */
		static const char *const dist[8] = { "W", "G", "L", "S", "K", "B", "WU", "GU" };
		uint64_t r = u / 8;
		snprintf(buf, n, "%s %" PRIu64 " %c%c", dist[u % 8], r / 676 + 1, (char)('A' + (r % 676) / 26),
			 (char)('A' + r % 26));
	}
	}
}

/* codes of the same method that no credential has */
static void unknown_code(int type, char *buf, size_t n)
{
	switch (type) {
	case T_PIN: /* 7 digits: every stored PIN has 8 */
		snprintf(buf, n, "%ld", 1000000 + rnd(8000000));
		break;
	case T_RF: /* 10 hex digits: stored RF numbers have 8 */
		snprintf(buf, n, "%010" PRIX64, (uint64_t)(rng() & 0xFFFFFFFFFFULL));
		break;
	default: /* another EPC prefix */
		snprintf(buf, n, "E2801170%016" PRIX64, rng());
	}
}

/* ---- the load: every entity through ent_put, in batches ---- */

static store_t *st;
static ent_ctx_t ctx;
static long in_batch, n_puts;

static void tx_open(void)
{
	if (store_begin(st))
		die("store_begin failed", sqlite3_errmsg(store_db(st)));
	in_batch = 0;
}

static void tx_close(void)
{
	if (store_commit(st))
		die("store_commit failed", sqlite3_errmsg(store_db(st)));
}

static void on_bulk_refused(void *c, ent_t e, const char *id, int64_t rev, const char *data, const gh_err_t *err)
{
	(void)c, (void)rev, (void)data;
	fprintf(stderr, "bench_engine: %s %s refused at the bulk load's end: %s\n", ent_name(e), id, err->message);
	exit(1);
}

static void put(ent_t e, json_t *j)
{
	gh_err_t err = { 0 };
	if (!j)
		die("building JSON failed", ent_name(e));
	if (ent_put(st, e, NULL, j, &ctx, NULL, &err)) {
		char *txt = json_dumps(j, JSON_COMPACT);
		fprintf(stderr, "bench_engine: put %s failed: %d %s (%s): %s\n", ent_name(e), err.status,
			err.message, err.field, txt ? txt : "?");
		free(txt);
		exit(1);
	}
	json_decref(j);
	n_puts++;
	if (++in_batch >= o.batch) {
		tx_close();
		tx_open();
	}
}

static const char *const first_names[] = { "Anna", "Lukas", "Sophie", "Jonas", "Marie", "Felix",
					    "Lena", "David", "Emma", "Paul", "Laura", "Tobias",
					    "Sarah", "Elias", "Julia", "Noah" };
static const char *const last_names[] = { "Gruber", "Huber", "Bauer", "Wagner", "Mueller",
					   "Pichler", "Steiner", "Moser", "Mayer", "Hofer",
					   "Leitner", "Berger", "Fuchs", "Eder", "Fischer", "Schmid" };

static json_t *settings_json(const char *pin_mode)
{
	return json_pack("{s:s,s:s,s:s,s:s,s:s}", "kind", "community", "name", "Bench Park",
			 "address", "Parkring 1, 1010 Wien", "timezone", "Europe/Vienna", "pin_mode",
			 pin_mode);
}

static void load_site(void)
{
	char id[32], b[32], mac[32];
	put(ENT_SETTINGS, settings_json("pin"));
	for (long k = 0; k < n_buildings; k++) {
		char name[32];
		id_building(k, id, sizeof id);
		snprintf(name, sizeof name, "Block %ld", k + 1);
		put(ENT_BUILDING, json_pack("{s:s,s:s,s:s}", "id", id, "name", name, "ground_floor", "G0"));
	}
	for (long d = 0; d < n_devices; d++) {
		id_device(d, mac, sizeof mac);
		put(ENT_MAC, json_pack("{s:s,s:s}", "id", mac, "remark", "bench door phone"));
	}
	for (long d = 0; d < n_devices; d++) {
		char name[64];
		long bl = d / DOORS_PER_BUILDING;
		int main_door = d % DOORS_PER_BUILDING == 0;
		id_device(d, mac, sizeof mac);
		id_building(bl, b, sizeof b);
		snprintf(name, sizeof name, "Block %ld %s", bl + 1, main_door ? "main entrance" : "side door");
		json_t *relays = main_door
			? json_pack("[{s:i,s:s},{s:i,s:s,s:[s,s]}]", "n", 1, "name", "Door", "n", 2, "name",
				    "Bike room", "methods", "rf", "uhf")
			: json_pack("[{s:i,s:s}]", "n", 1, "name", "Side door");
		put(ENT_DEVICE, json_pack("{s:s,s:i,s:s,s:s,s:s,s:o}", "id", mac, "type", 0, "name", name,
					  "area", "building", "building", b, "relays", relays));
	}
	for (long k = 0; k < n_boards; k++) {
		char bus[32];
		id_board(k, id, sizeof id);
		id_building(k * 10 < n_buildings ? k * 10 : 0, b, sizeof b);
		snprintf(bus, sizeof bus, "10.0.%ld.10:502", k % 250);
		put(ENT_RELAY_BOARD, json_pack("{s:s,s:s,s:s,s:s,s:s,s:[{s:i,s:s,s:s}]}", "id", id, "profile",
					       "HF-8000", "mode", "ethernet", "bus", bus, "building", b,
					       "channels", "channel", 1, "name", "Garage barrier", "function",
					       "barrier"));
	}
}

static void load_people(void)
{
	char aid[32], bid[32], pid[32], apt[32], fl[8], email[64], mobile[32];
	for (long a = 0; a < n_apartments; a++) {
		int floor;
		id_apartment(a, aid, sizeof aid);
		id_building(apt_building(a), bid, sizeof bid);
		apt_number(a, apt, sizeof apt, &floor);
		snprintf(fl, sizeof fl, "%d", floor);
		put(ENT_APARTMENT, json_pack("{s:s,s:s,s:s,s:s}", "id", aid, "building", bid, "apt", apt,
					     "floor", fl));
		long first = apt_first_person(a), end = apt_first_person(a + 1);
		for (long p = first; p < end; p++) {
			const char *fn = first_names[mix64((uint64_t)p) % 16];
			const char *ln = last_names[mix64((uint64_t)a + 7) % 16];
			id_person(p, pid, sizeof pid);
			snprintf(email, sizeof email, "%s.%s%ld@example.com", fn, ln, p);
			snprintf(mobile, sizeof mobile, "+43 660 %07ld", p % 10000000);
			put(ENT_PERSON, json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "id", pid, "kind",
						  p == first ? "resident" : "family", "apartment", aid,
						  "first_name", fn, "last_name", ln, "email", email, "mobile",
						  mobile));
		}
	}
}

/* non-default groups, kept for the outside-schedule requests */
typedef struct grp {
	long dev[GROUP_RELAYS];
	long person; /* first person member */
} grp_t;
static grp_t *grps;
static long n_grps;

static json_t *schedule_json(long i)
{
	switch (i % 3) {
	case 0: return json_pack("{s:s,s:[i,i,i,i,i],s:s,s:s}", "repeat", "weekly", "days", 1, 2, 3, 4,
				 5, "from", "07:00", "to", "19:00");
	case 1: return json_pack("{s:s,s:s,s:s}", "repeat", "daily", "from", "06:00", "to", "22:00");
	default: return json_pack("{s:s,s:[i,i],s:s,s:s}", "repeat", "weekly", "days", 6, 7, "from",
				  "09:00", "to", "17:00");
	}
}

static void load_groups(void)
{
	char gid[32], bid[32], mac[32], name[64];
	/* each building's default group: its residents on its door phones */
	for (long k = 0; k < n_default_groups; k++) {
		snprintf(gid, sizeof gid, "gdef%03ld", k);
		id_building(k, bid, sizeof bid);
		snprintf(name, sizeof name, "Block %ld residents", k + 1);
		json_t *relays = json_array();
		for (long d = k * DOORS_PER_BUILDING; d < (k + 1) * DOORS_PER_BUILDING; d++) {
			id_device(d, mac, sizeof mac);
			json_array_append_new(relays, json_pack("{s:s,s:i}", "device", mac, "relay", 1));
			if (d % DOORS_PER_BUILDING == 0)
				json_array_append_new(relays, json_pack("{s:s,s:i}", "device", mac, "relay", 2));
		}
		if (n_boards) {
			char board[32];
			id_board(k / 10 < n_boards ? k / 10 : 0, board, sizeof board);
			json_array_append_new(relays, json_pack("{s:s,s:i}", "board", board, "channel", 1));
		}
		put(ENT_ACCESS_GROUP, json_pack("{s:s,s:s,s:s,s:o}", "id", gid, "name", name, "building",
						bid, "relays", relays));
	}
	/* shared facilities, staff-like schedules: a few door phones each, apartments and persons */
	for (long i = 0; i < n_grps; i++) {
		grp_t *g = &grps[i];
		snprintf(gid, sizeof gid, "g%05ld", i);
		snprintf(name, sizeof name, "Facility group %ld", i + 1);
		json_t *relays = json_array(), *apts = json_array(), *pers = json_array();
		for (int k = 0; k < GROUP_RELAYS; k++) {
			long d;
			int dup;
			do { /* distinct door phones */
				d = rnd(n_devices);
				dup = 0;
				for (int m = 0; m < k; m++)
					dup |= g->dev[m] == d;
			} while (dup && n_devices > GROUP_RELAYS);
			g->dev[k] = d;
			id_device(d, mac, sizeof mac);
			json_array_append_new(relays, json_pack("{s:s,s:i}", "device", mac, "relay", 1));
		}
		for (int k = 0; k < GROUP_APTS; k++) {
			id_apartment(rnd(n_apartments), bid, sizeof bid);
			json_array_append_new(apts, json_string(bid));
		}
		for (int k = 0; k < GROUP_PERSONS; k++) {
			long p = rnd(o.persons);
			if (k == 0)
				g->person = p;
			id_person(p, bid, sizeof bid);
			json_array_append_new(pers, json_string(bid));
		}
		put(ENT_ACCESS_GROUP, json_pack("{s:s,s:s,s:o,s:o,s:{s:o,s:o}}", "id", gid, "name", name,
						"schedule", schedule_json(i), "relays", relays, "members",
						"apartments", apts, "persons", pers));
	}
}

static long n_by_type[4];
static double cred_decile_rate[10]; /* credentials/s for each tenth of the load */

static void load_credentials(void)
{
	char cid[32], pid[32], code[64];
	long tenth = o.credentials / 10 > 0 ? o.credentials / 10 : 1, dec = 0;
	uint64_t t_dec = now_ns();
	for (long j = 0; j < o.credentials; j++) {
		int t = cred_type(j);
		snprintf(cid, sizeof cid, "c%08ld", j);
		id_person(j % o.persons, pid, sizeof pid);
		cred_code(j, t, code, sizeof code);
		json_t *c = json_pack("{s:s,s:s,s:s,s:s}", "id", cid, "person", pid, "type", type_names[t],
				      "code", code);
		if (t == T_RF && j % 20 == 7) /* some cards with an end date */
			json_object_set_new(c, "valid_until", json_integer(1924992000)); /* 2031-01-01 */
		put(ENT_CREDENTIAL, c);
		n_by_type[t]++;
		if ((j + 1) % tenth == 0 && dec < 10) {
			uint64_t t1 = now_ns();
			cred_decile_rate[dec++] = (double)tenth / secs(t1 - t_dec);
			t_dec = t1;
		}
	}
}

/* ---- decisions ---- */

enum { K_KNOWN, K_UNKNOWN, K_OUTSIDE, K_APTPIN, K__COUNT };
static const char *const kind_names[] = { "known", "unknown", "outside_schedule", "apt_pin" };

typedef struct req {
	access_req_t q;
	char mac[32], code[64], apt[32], ev[32];
	int kind;
} req_t;

static int64_t t_weekday; /* Monday 2026-06-01 09:00 Vienna */
static int64_t t_night;   /* Sunday 2026-06-07 03:00 Vienna: outside every group schedule */

static long known_cred(int pin_only)
{
	for (;;) {
		long j = pin_only ? rnd(o.persons < o.credentials ? o.persons : o.credentials)
				  : rnd(o.credentials);
		int t = cred_type(j);
		if (t == T_PIN || t == T_RF || t == T_UHF)
			return j;
	}
}

static void make_req(req_t *r, long i, int aptpin_phase)
{
	memset(r, 0, sizeof *r);
	r->q.relay = 0; /* door phones ask "every relay allowing this method" */
	r->q.now = t_weekday + (int64_t)(i % 36000);
	snprintf(r->ev, sizeof r->ev, "ev-%ld", i);
	r->q.event_id = r->ev;
	long roll = rnd(100);
	long j, dev;
	int t;
	if (aptpin_phase) {
		r->kind = K_APTPIN;
		j = known_cred(1);
		t = T_PIN;
		int floor;
		apt_number(person_apt(j % o.persons), r->apt, sizeof r->apt, &floor);
		r->q.apt = r->apt;
		dev = apt_building(person_apt(j % o.persons)) * DOORS_PER_BUILDING + rnd(DOORS_PER_BUILDING);
		cred_code(j, t, r->code, sizeof r->code);
	} else if (roll < 70 || (roll >= 90 && (n_grps == 0 || o.credentials < o.persons))) {
		r->kind = K_KNOWN;
		j = known_cred(0);
		t = cred_type(j);
		dev = apt_building(person_apt(j % o.persons)) * DOORS_PER_BUILDING + rnd(DOORS_PER_BUILDING);
		cred_code(j, t, r->code, sizeof r->code);
	} else if (roll < 90) {
		r->kind = K_UNKNOWN;
		t = (int)rnd(3);
		dev = rnd(n_devices);
		unknown_code(t, r->code, sizeof r->code);
	} else {
		/* a facility group's member, on one of its door phones in another
		 * building, on Sunday night: only that (closed) group holds the relay */
		r->kind = K_OUTSIDE;
		const grp_t *g = &grps[rnd(n_grps)];
		long own = apt_building(person_apt(g->person));
		dev = g->dev[0];
		for (int k = 0; k < GROUP_RELAYS; k++)
			if (g->dev[k] / DOORS_PER_BUILDING != own) {
				dev = g->dev[k];
				break;
			}
		/* the member's PIN, RF card or UHF tag (rounds 0, 1, 2 of cred_type) */
		j = g->person + rnd(3) * o.persons;
		if (j >= o.credentials)
			j = g->person;
		t = cred_type(j);
		cred_code(j, t, r->code, sizeof r->code);
		r->q.now = t_night + (int64_t)(i % 1800);
	}
	id_device(dev, r->mac, sizeof r->mac);
	r->q.device = r->mac;
	r->q.method = type_names[t];
	r->q.code = r->code;
}

typedef struct lat {
	double mean, p50, p90, p99, p999, max; /* microseconds */
} lat_t;

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static double pct(const uint64_t *v, long n, double p)
{
	long k = (long)((double)n * p + 0.999999) - 1;
	if (k < 0)
		k = 0;
	if (k >= n)
		k = n - 1;
	return (double)v[k] / 1000.0;
}

static lat_t lat_stats(uint64_t *v, long n)
{
	lat_t l = { 0 };
	if (n <= 0)
		return l;
	double sum = 0;
	for (long i = 0; i < n; i++)
		sum += (double)v[i];
	qsort(v, (size_t)n, sizeof *v, cmp_u64);
	l.mean = sum / (double)n / 1000.0;
	l.p50 = pct(v, n, 0.50);
	l.p90 = pct(v, n, 0.90);
	l.p99 = pct(v, n, 0.99);
	l.p999 = pct(v, n, 0.999);
	l.max = (double)v[n - 1] / 1000.0;
	return l;
}

typedef struct phase {
	const char *name;
	long n;
	lat_t lat;              /* engine_decide() call */
	lat_t kind_lat[K__COUNT];
	long kind_n[K__COUNT];
	double wall_s;          /* whole phase incl. commits */
	double per_s;           /* decisions per second, wall */
	double commit_mean_ms, commit_max_ms;
	long granted, reasons[R__COUNT];
} phase_t;

static engine_t *en;

/* N decisions; BATCH > 0: the daemon's mode (engine_batch): decisions
 * read, their door logs queue and engine_flush() commits them every BATCH
 * decisions (one loop pass); 0: each decision commits its own door log. */
static void run_phase(phase_t *ph, const char *name, long n, int batch, int aptpin_phase)
{
	memset(ph, 0, sizeof *ph);
	ph->name = name;
	ph->n = n;
	if (n <= 0)
		return;
	uint64_t *all = malloc((size_t)n * sizeof *all), *tmp = malloc((size_t)n * sizeof *tmp);
	unsigned char *kind = malloc((size_t)n);
	if (!all || !tmp || !kind)
		die("out of memory", NULL);
	uint64_t commit_sum = 0, commit_max = 0;
	long ncommits = 0;
	req_t r;
	access_result_t res;
	gh_err_t err;
	uint64_t t0 = now_ns();
	engine_batch(en, batch > 0);
	for (long i = 0; i < n; i++) {
		make_req(&r, i, aptpin_phase);
		memset(&err, 0, sizeof err);
		uint64_t a = now_ns();
		int rc = engine_decide(en, &r.q, &res, &err);
		uint64_t dt = now_ns() - a;
		if (rc)
			die("engine_decide failed", err.message);
		all[i] = dt;
		kind[i] = (unsigned char)r.kind;
		ph->kind_n[r.kind]++;
		if (res.granted)
			ph->granted++;
		else if (res.reason >= 0 && res.reason < R__COUNT)
			ph->reasons[res.reason]++;
		if (batch && (i % batch == batch - 1 || i == n - 1)) {
			uint64_t c = now_ns();
			if (engine_flush(en, &err))
				die("engine_flush failed", err.message);
			c = now_ns() - c;
			commit_sum += c;
			commit_max = c > commit_max ? c : commit_max;
			ncommits++;
		}
	}
	uint64_t wall = now_ns() - t0;
	ph->wall_s = secs(wall);
	ph->per_s = (double)n / ph->wall_s;
	for (int k = 0; k < K__COUNT; k++) {
		long m = 0;
		for (long i = 0; i < n; i++)
			if (kind[i] == k)
				tmp[m++] = all[i];
		ph->kind_lat[k] = lat_stats(tmp, m);
	}
	ph->lat = lat_stats(all, n);
	if (ncommits) {
		ph->commit_mean_ms = (double)commit_sum / (double)ncommits / 1e6;
		ph->commit_max_ms = (double)commit_max / 1e6;
	}
	free(all);
	free(tmp);
	free(kind);
}

/* ---- process and file figures ---- */

static long status_kb(const char *key)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long v = -1;
	size_t kl = strlen(key);
	while (f && fgets(line, sizeof line, f))
		if (!strncmp(line, key, kl) && line[kl] == ':')
			v = strtol(line + kl + 1, NULL, 10);
	if (f)
		fclose(f);
	return v;
}

static long maxrss_kb(void)
{
	struct rusage ru;
	return getrusage(RUSAGE_SELF, &ru) ? -1 : ru.ru_maxrss;
}

static double file_mb(const char *path, const char *suffix)
{
	char p[4200];
	struct stat sb;
	snprintf(p, sizeof p, "%s%s", path, suffix);
	return stat(p, &sb) ? 0.0 : (double)sb.st_size / (1024.0 * 1024.0);
}

static int64_t pragma_int(const char *sql)
{
	sqlite3_stmt *s = NULL;
	int64_t v = 0;
	if (sqlite3_prepare_v2(store_db(st), sql, -1, &s, NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return v;
}

static void jset_d(json_t *o_, const char *k, double v) { json_object_set_new(o_, k, json_real((double)(long long)(v * 1000.0 + 0.5) / 1000.0)); }
static void jset_i(json_t *o_, const char *k, long long v) { json_object_set_new(o_, k, json_integer(v)); }

/* One headline figure for bench/report.py (bench/README.md, "make bench"):
 * RESULT {"bench","figure","target","measured","unit","met"}; met is
 * null without a target. Printed besides the human output, never asserted. */
static void result(const char *figure, const char *target, double measured, const char *unit, int met)
{
	json_t *j = json_pack("{s:s,s:s,s:o,s:f,s:s,s:o}", "bench", "bench_engine", "figure", figure, "target",
			      target ? json_string(target) : json_null(), "measured", measured, "unit", unit, "met",
			      met < 0 ? json_null() : json_boolean(met));
	char *t = j ? json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(6)) : NULL;
	if (t)
		printf("RESULT %s\n", t);
	free(t);
	json_decref(j);
}

static const char *count_str(long n, char *buf, size_t len)
{
	if (n >= 1000000 && n % 1000000 == 0)
		snprintf(buf, len, "%ldM", n / 1000000);
	else if (n >= 1000 && n % 1000 == 0)
		snprintf(buf, len, "%ldk", n / 1000);
	else
		snprintf(buf, len, "%ld", n);
	return buf;
}

static json_t *lat_json(const lat_t *l)
{
	json_t *j = json_object();
	jset_d(j, "mean_us", l->mean);
	jset_d(j, "p50_us", l->p50);
	jset_d(j, "p90_us", l->p90);
	jset_d(j, "p99_us", l->p99);
	jset_d(j, "p999_us", l->p999);
	jset_d(j, "max_us", l->max);
	return j;
}

static void print_lat(const char *label, const lat_t *l, long n)
{
	printf("  %-18s n=%-7ld p50 %7.1f  p90 %7.1f  p99 %7.1f  p99.9 %8.1f  max %9.1f  mean %7.1f us\n",
	       label, n, l->p50, l->p90, l->p99, l->p999, l->max, l->mean);
}

static json_t *phase_report(const phase_t *ph)
{
	printf("\n[%s] %ld decisions in %.2f s: %.0f decisions/s (wall)", ph->name, ph->n, ph->wall_s,
	       ph->per_s);
	if (ph->commit_mean_ms > 0)
		printf(", commit of %d: mean %.2f ms, max %.2f ms", DECISION_BATCH, ph->commit_mean_ms,
		       ph->commit_max_ms);
	printf("\n");
	print_lat("engine_decide", &ph->lat, ph->n);
	for (int k = 0; k < K__COUNT; k++)
		if (ph->kind_n[k] && ph->kind_n[k] != ph->n)
			print_lat(kind_names[k], &ph->kind_lat[k], ph->kind_n[k]);
	printf("  results: granted %ld", ph->granted);
	for (int r = 1; r < R__COUNT; r++)
		if (ph->reasons[r])
			printf(", %s %ld", engine_reason_name(r), ph->reasons[r]);
	printf("\n");

	json_t *j = lat_json(&ph->lat);
	jset_i(j, "n", ph->n);
	jset_d(j, "wall_s", ph->wall_s);
	jset_d(j, "decisions_per_s", ph->per_s);
	if (ph->commit_mean_ms > 0) {
		jset_d(j, "commit_mean_ms", ph->commit_mean_ms);
		jset_d(j, "commit_max_ms", ph->commit_max_ms);
	}
	jset_i(j, "granted", ph->granted);
	json_t *rs = json_object();
	for (int r = 1; r < R__COUNT; r++)
		if (ph->reasons[r])
			jset_i(rs, engine_reason_name(r), ph->reasons[r]);
	json_object_set_new(j, "refused", rs);
	json_t *ks = json_object();
	for (int k = 0; k < K__COUNT; k++)
		if (ph->kind_n[k]) {
			json_t *kj = lat_json(&ph->kind_lat[k]);
			jset_i(kj, "n", ph->kind_n[k]);
			json_object_set_new(ks, kind_names[k], kj);
		}
	json_object_set_new(j, "by_request", ks);
	return j;
}

/* ---- main ---- */

static void usage(void)
{
	fprintf(stderr,
		"usage: bench_engine [--persons N] [--credentials N] [--groups N] [--decisions N]\n"
		"                    [--autocommit N] [--aptpin N] [--db PATH] [--keep] [--quick]\n"
		"                    [--local] [--no-bulk] [--cache-mb N] [--mmap-mb N] [--batch N] [--profiles DIR]\n"
		"  --quick       CI smoke: 20k persons, 100k credentials, 200 groups, 20k decisions\n"
		"  --autocommit  decisions measured one transaction each (default 20000)\n"
		"  --aptpin      APT+PIN decisions after switching pin_mode (default 20000)\n"
		"  --local       load as local edits (audited + journaled) instead of cloud applies\n"
		"  --no-bulk     cloud applies without the bulk load of a first snapshot (the\n"
		"                credentials' lookup index kept up to date entity by entity)\n"
		"  --cache-mb    set the SQLite page cache (default: the store's own setting)\n"
		"  --mmap-mb     set PRAGMA mmap_size (default: the store's own setting)\n"
		"  --batch       entities per load transaction (default 10000)\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "persons", required_argument, NULL, 'p' },
		{ "credentials", required_argument, NULL, 'c' },
		{ "groups", required_argument, NULL, 'g' },
		{ "decisions", required_argument, NULL, 'd' },
		{ "autocommit", required_argument, NULL, 'a' },
		{ "aptpin", required_argument, NULL, 'A' },
		{ "db", required_argument, NULL, 'f' },
		{ "keep", no_argument, NULL, 'k' },
		{ "quick", no_argument, NULL, 'q' },
		{ "local", no_argument, NULL, 'l' },
		{ "no-bulk", no_argument, NULL, 'B' },
		{ "cache-mb", required_argument, NULL, 'm' },
		{ "mmap-mb", required_argument, NULL, 'M' },
		{ "batch", required_argument, NULL, 'b' },
		{ "profiles", required_argument, NULL, 'P' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	/* --quick sets the defaults; explicit sizes given anywhere still win */
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--quick")) {
			o.quick = 1;
			o.persons = 20000;
			o.credentials = 100000;
			o.groups = 200;
			o.decisions = 20000;
			o.autocommit = 5000;
			o.aptpin = 5000;
		}
	int c;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'p': o.persons = opt_long("persons", optarg, 1); break;
		case 'c': o.credentials = opt_long("credentials", optarg, 1); break;
		case 'g': o.groups = opt_long("groups", optarg, 0); break;
		case 'd': o.decisions = opt_long("decisions", optarg, 0); break;
		case 'a': o.autocommit = opt_long("autocommit", optarg, 0); break;
		case 'A': o.aptpin = opt_long("aptpin", optarg, 0); break;
		case 'f': o.db = optarg; break;
		case 'k': o.keep = 1; break;
		case 'q': break;
		case 'l': o.local = 1; break;
		case 'B': o.no_bulk = 1; break;
		case 'm': o.cache_mb = opt_long("cache-mb", optarg, 0); break;
		case 'M': o.mmap_mb = opt_long("mmap-mb", optarg, 0); break;
		case 'b': o.batch = opt_long("batch", optarg, 1); break;
		case 'P': o.profiles = optarg; break;
		default: usage();
		}
	}
	if (optind < argc)
		usage();
	if (o.credentials > 80000000 || o.persons > 9999999)
		die("at most 80M credentials and 10M persons", NULL);

	gh_log_set_level(GH_LOG_ERR);
	ctx = o.local ? (ent_ctx_t){ .local = 1, .actor = "import" }
		      : (ent_ctx_t){ .local = 0, .actor = "cloud", .rev = 1 };

	n_buildings = o.persons / PERSONS_PER_BUILDING > 0 ? o.persons / PERSONS_PER_BUILDING : 1;
	n_apartments = (o.persons * 2 + 4) / 5; /* 2.5 persons per apartment */
	if (n_apartments < n_buildings)
		n_buildings = n_apartments;
	n_devices = n_buildings * DOORS_PER_BUILDING;
	n_boards = (n_buildings + 9) / 10;
	n_default_groups = o.groups < n_buildings ? o.groups : n_buildings;
	n_grps = o.groups - n_default_groups;
	grps = calloc((size_t)(n_grps > 0 ? n_grps : 1), sizeof *grps);
	if (!grps)
		die("out of memory", NULL);

	struct tm tm = { .tm_year = 126, .tm_mon = 5, .tm_mday = 1, .tm_hour = 7 }; /* UTC */
	t_weekday = (int64_t)timegm(&tm);
	tm = (struct tm){ .tm_year = 126, .tm_mon = 5, .tm_mday = 7, .tm_hour = 1 };
	t_night = (int64_t)timegm(&tm);

	/* the database: a fresh file */
	char dir[64] = "", path[4096];
	if (o.db) {
		struct stat sb;
		if (stat(o.db, &sb) == 0)
			die("--db must name a file that does not exist yet", o.db);
		snprintf(path, sizeof path, "%s", o.db);
	} else {
		snprintf(dir, sizeof dir, "/tmp/gh-bench-XXXXXX");
		if (!mkdtemp(dir))
			die("mkdtemp failed", strerror(errno));
		snprintf(path, sizeof path, "%s/site.db", dir);
	}

	gh_err_t err = { 0 };
	int have_profiles = profiles_load(o.profiles, &err) == 0;
	if (!have_profiles) {
		fprintf(stderr, "bench_engine: no profiles (%s): relay boards skipped\n", err.message);
		n_boards = 0;
	}
	st = store_open(path, &err);
	if (!st)
		die("store_open failed", err.message);
	if (o.cache_mb >= 0) {
		char sql[64];
		snprintf(sql, sizeof sql, "PRAGMA cache_size = -%ld", o.cache_mb * 1024);
		if (store_exec(st, sql, &err))
			die("setting cache_size failed", err.message);
	}
	if (o.mmap_mb >= 0) {
		char sql[64];
		snprintf(sql, sizeof sql, "PRAGMA mmap_size = %lld", (long long)o.mmap_mb * 1048576);
		if (store_exec(st, sql, &err))
			die("setting mmap_size failed", err.message);
	}
	int64_t cache_size = pragma_int("PRAGMA cache_size");
	int64_t page_size = pragma_int("PRAGMA page_size");
	int64_t mmap_size = pragma_int("PRAGMA mmap_size");
	double cache_mb = cache_size < 0 ? (double)-cache_size / 1024.0
					 : (double)(cache_size * page_size) / (1024.0 * 1024.0);
	long rss_start = status_kb("VmRSS");

	printf("gatehouse bench_engine%s: %ld persons, %ld credentials, %ld access groups, %ld decisions\n",
	       o.quick ? " (quick)" : "", o.persons, o.credentials, o.groups, o.decisions);
	printf("site: %ld buildings, %ld apartments, %ld door phones, %ld relay boards, "
	       "%ld default + %ld facility groups; load as %s edits, %ld entities per transaction\n",
	       n_buildings, n_apartments, n_devices, n_boards, n_default_groups, n_grps,
	       o.local ? "local (audited, journaled)" : o.no_bulk ? "cloud" : "cloud (credentials in bulk, bulk.h)",
	       o.batch);
	printf("db %s; SQLite %s, page cache %.1f MB (cache_size %" PRId64 ", page_size %" PRId64
	       ", mmap_size %" PRId64 ")%s\n",
	       path, sqlite3_libversion(), cache_mb, cache_size, page_size, mmap_size,
	       o.cache_mb >= 0 || o.mmap_mb >= 0 ? " set by --cache-mb/--mmap-mb" : " (store default)");
	fflush(stdout);

	/* ---- load ---- */
	uint64_t t0 = now_ns();
	tx_open();
	load_site();
	tx_close();
	uint64_t t_site = now_ns() - t0;
	long site_puts = n_puts;

	t0 = now_ns();
	tx_open();
	load_people();
	tx_close();
	uint64_t t_people = now_ns() - t0;
	long people_puts = n_puts - site_puts;

	t0 = now_ns();
	tx_open();
	load_groups();
	tx_close();
	uint64_t t_groups = now_ns() - t0;

	/* cloud applies load the credentials as the daemon's first snapshot
	 * into an empty box does (bulk.h): the lookup index built at the end,
	 * codes held twice refused then (none here: every put must succeed) */
	t0 = now_ns();
	int bulk = !o.local && !o.no_bulk;
	gh_err_t be = { 0 };
	tx_open();
	if (bulk && bulk_begin(st, &be))
		die("bulk_begin failed", be.message);
	ctx.bulk = bulk;
	load_credentials();
	if (bulk && bulk_end(st, on_bulk_refused, NULL, &be))
		die("bulk_end failed", be.message);
	ctx.bulk = 0;
	tx_close();
	uint64_t t_creds = now_ns() - t0;
	uint64_t t_load = t_site + t_people + t_groups + t_creds;

	int64_t n_members = pragma_int("SELECT count(*) FROM group_members");
	int64_t n_grelays = pragma_int("SELECT count(*) FROM group_relays");
	double db_load = file_mb(path, ""), wal_load = file_mb(path, "-wal");
	long rss_load = status_kb("VmRSS");

	printf("\n[load] through ent_put (validator, rows, %s)\n", o.local ? "audit, journal" : "no audit");
	printf("  site (settings, %ld buildings, %ld MACs, %ld door phones, %ld boards): %.2f s\n",
	       n_buildings, n_devices, n_devices, n_boards, secs(t_site));
	printf("  apartments + persons: %ld + %ld in %.2f s (%.0f entities/s)\n", n_apartments, o.persons,
	       secs(t_people), (double)people_puts / secs(t_people));
	printf("  access groups: %ld (%" PRId64 " relay rows, %" PRId64 " member rows) in %.2f s (%.0f groups/s)\n",
	       o.groups, n_grelays, n_members, secs(t_groups), (double)o.groups / secs(t_groups));
	printf("  credentials: %ld (pin %ld, rf %ld, uhf %ld, plate %ld) in %.2f s (%.0f credentials/s)\n",
	       o.credentials, n_by_type[T_PIN], n_by_type[T_RF], n_by_type[T_UHF], n_by_type[T_PLATE],
	       secs(t_creds), (double)o.credentials / secs(t_creds));
	printf("    credentials/s per tenth of the load:");
	for (int i = 0; i < 10; i++)
		printf(" %.0f", cred_decile_rate[i]);
	printf("\n  total: %ld entities in %.2f s (%.0f entities/s)\n", n_puts, secs(t_load),
	       (double)n_puts / secs(t_load));
	printf("  db after load: %.1f MB + wal %.1f MB; RSS %.1f MB\n", db_load, wal_load,
	       (double)rss_load / 1024.0);
	fflush(stdout);

	/* ---- decisions ---- */
	en = engine_new(st);
	if (!en)
		die("engine_new failed", NULL);
	phase_t warm, batched, autoc, aptp;
	long nwarm = o.decisions / 20 < 1000 ? o.decisions / 20 : 1000;
	run_phase(&warm, "warm-up", nwarm, DECISION_BATCH, 0); /* not reported */
	rng_state = SEED ^ 0x5A5A5A5AULL; /* same requests whatever the load sizes of warm-up */
	run_phase(&batched, "batched", o.decisions, DECISION_BATCH, 0);
	json_t *jb = o.decisions ? phase_report(&batched) : json_null();
	fflush(stdout);
	run_phase(&autoc, "autocommit", o.autocommit, 0, 0);
	json_t *ja = o.autocommit ? phase_report(&autoc) : json_null();
	fflush(stdout);

	long hwm_decisions = status_kb("VmHWM"); /* peak before the PIN-mode switch */
	json_t *jp = json_null();
	double t_switch = 0;
	if (o.aptpin) {
		uint64_t s0 = now_ns();
		gh_err_t e2 = { 0 };
		json_t *sj = settings_json("apt_pin");
		if (ent_put(st, ENT_SETTINGS, NULL, sj, &ctx, NULL, &e2))
			die("switching to apt_pin failed", e2.message);
		json_decref(sj);
		t_switch = secs(now_ns() - s0);
		printf("\n[apt_pin] pin_mode switched to apt_pin in %.2f s (rescopes %ld PINs)", t_switch,
		       n_by_type[T_PIN]);
		run_phase(&aptp, "apt_pin batched", o.aptpin, DECISION_BATCH, 1);
		jp = phase_report(&aptp);
		json_object_set_new(jp, "switch_s", json_real(t_switch));
	}

	/* ---- sizes and memory ---- */
	double db_end = file_mb(path, ""), wal_end = file_mb(path, "-wal");
	long hwm = status_kb("VmHWM"), rss_end = status_kb("VmRSS"), maxrss = maxrss_kb();
	int64_t sq_used = sqlite3_memory_used(), sq_hw = sqlite3_memory_highwater(0);
	int64_t n_logs = pragma_int("SELECT count(*) FROM door_logs");
	engine_free(en);
	store_close(st);
	double db_closed = file_mb(path, "") + file_mb(path, "-wal");

	printf("\n[db] after load %.1f MB (+ wal %.1f MB); after decisions %.1f MB (+ wal %.1f MB, %" PRId64
	       " door logs); checkpointed at close %.1f MB\n",
	       db_load, wal_load, db_end, wal_end, n_logs, db_closed);
	printf("[memory] RSS: start %.1f MB, after load %.1f MB, end %.1f MB; peak VmHWM %.1f MB "
	       "(%.1f MB before the PIN-mode switch), ru_maxrss %.1f MB; SQLite heap %.1f MB (high "
	       "water %.1f MB); page cache %.1f MB\n",
	       (double)rss_start / 1024.0, (double)rss_load / 1024.0, (double)rss_end / 1024.0,
	       (double)hwm / 1024.0, (double)hwm_decisions / 1024.0, (double)maxrss / 1024.0,
	       (double)sq_used / 1048576.0,
	       (double)sq_hw / 1048576.0, cache_mb);
	printf("[targets] p99 <= 10 us per decision: batched p99 %.1f us, autocommit p99 %.1f us; "
	       "bulk load of %ld credentials <= 15 s: %.1f s (measured, not asserted)\n",
	       batched.lat.p99, autoc.lat.p99, o.credentials, secs(t_creds));

	json_t *j = json_object();
	json_object_set_new(j, "quick", json_boolean(o.quick));
	jset_i(j, "cpus", sysconf(_SC_NPROCESSORS_ONLN));
	jset_i(j, "persons", o.persons);
	jset_i(j, "apartments", n_apartments);
	jset_i(j, "buildings", n_buildings);
	jset_i(j, "door_phones", n_devices);
	jset_i(j, "credentials", o.credentials);
	jset_i(j, "groups", o.groups);
	jset_i(j, "group_members", n_members);
	json_object_set_new(j, "load_ctx", json_string(o.local ? "local" : "cloud"));
	jset_i(j, "load_batch", o.batch);
	jset_d(j, "load_site_s", secs(t_site));
	jset_d(j, "load_people_s", secs(t_people));
	jset_d(j, "load_people_per_s", (double)people_puts / secs(t_people));
	jset_d(j, "load_groups_s", secs(t_groups));
	jset_d(j, "load_credentials_s", secs(t_creds));
	jset_d(j, "load_credentials_per_s", (double)o.credentials / secs(t_creds));
	jset_d(j, "load_credentials_first10_per_s", cred_decile_rate[0]);
	jset_d(j, "load_credentials_last10_per_s", cred_decile_rate[9]);
	jset_d(j, "load_total_s", secs(t_load));
	jset_d(j, "load_entities_per_s", (double)n_puts / secs(t_load));
	jset_i(j, "entities", n_puts);
	json_object_set_new(j, "batched", jb);
	json_object_set_new(j, "autocommit", ja);
	json_object_set_new(j, "apt_pin", jp);
	jset_d(j, "db_load_mb", db_load);
	jset_d(j, "wal_load_mb", wal_load);
	jset_d(j, "db_end_mb", db_end);
	jset_d(j, "wal_end_mb", wal_end);
	jset_d(j, "db_closed_mb", db_closed);
	jset_i(j, "door_logs", n_logs);
	jset_d(j, "rss_start_mb", (double)rss_start / 1024.0);
	jset_d(j, "rss_load_mb", (double)rss_load / 1024.0);
	jset_d(j, "rss_end_mb", (double)rss_end / 1024.0);
	jset_d(j, "vm_hwm_mb", (double)hwm / 1024.0);
	jset_d(j, "vm_hwm_before_switch_mb", (double)hwm_decisions / 1024.0);
	jset_d(j, "ru_maxrss_mb", (double)maxrss / 1024.0);
	jset_d(j, "sqlite_heap_mb", (double)sq_used / 1048576.0);
	jset_d(j, "sqlite_heap_hw_mb", (double)sq_hw / 1048576.0);
	jset_d(j, "page_cache_mb", cache_mb);
	jset_i(j, "cache_size", cache_size);
	jset_i(j, "page_size", page_size);
	jset_i(j, "mmap_size", mmap_size);
	json_object_set_new(j, "sqlite", json_string(sqlite3_libversion()));
	char nc[32], fig[160];
	count_str(o.credentials, nc, sizeof nc);
	snprintf(fig, sizeof fig, "bulk load of %s credentials (ent_put, validator on%s)", nc,
		 o.local || o.no_bulk ? ", entity by entity" : "; codes' uniqueness and the lookup index at the end");
	result(fig, o.credentials >= 1000000 ? "<= 15 s" : NULL, secs(t_creds), "s",
	       o.credentials >= 1000000 ? secs(t_creds) <= 15.0 : -1);
	snprintf(fig, sizeof fig, "whole site load (%ld entities)", n_puts);
	result(fig, NULL, secs(t_load), "s", -1);
	if (o.decisions) {
		snprintf(fig, sizeof fig, "decision latency p50, daemon mode (%s credentials)", nc);
		result(fig, NULL, batched.lat.p50, "us", -1);
		snprintf(fig, sizeof fig, "decision latency p99, daemon mode (%s credentials)", nc);
		result(fig, "<= 10 us", batched.lat.p99, "us", batched.lat.p99 <= 10.0);
		snprintf(fig, sizeof fig, "decision latency p99.9, daemon mode (%s credentials)", nc);
		result(fig, NULL, batched.lat.p999, "us", -1);
		result("decision throughput, one core, incl. door log commits", NULL, batched.per_s, "decisions/s", -1);
	}
	if (o.autocommit)
		result("decision with its own commit (CLI path) p99", NULL, autoc.lat.p99, "us", -1);
	if (o.aptpin)
		result("APT+PIN decision p99", NULL, aptp.lat.p99, "us", -1);
	result("database size after the load", NULL, db_load, "MB", -1);
	result("process RSS peak (VmHWM; the bench is the daemon stand-in)", NULL, (double)hwm / 1024.0, "MB", -1);

	char *txt = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(10));
	printf("BENCH_JSON %s\n", txt ? txt : "{}");
	free(txt);
	json_decref(j);

	if (!o.keep) {
		char p2[4200];
		unlink(path);
		snprintf(p2, sizeof p2, "%s-wal", path);
		unlink(p2);
		snprintf(p2, sizeof p2, "%s-shm", path);
		unlink(p2);
		if (dir[0])
			rmdir(dir);
	} else {
		printf("kept %s\n", path);
	}
	free(grps);
	profiles_free();
	return 0;
}
