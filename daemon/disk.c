#include "disk.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "log.h"
#include "timeutil.h"

#define FREELIST_TARGET (1 << 20) /* while short of space: free pages kept for new rows */
#define PRUNE_BATCH 1000          /* rows per prune transaction */
#define PRUNE_CHUNK 250           /* rows per statement (oldest table first) */
#define PRUNE_MAX_BATCHES 8       /* per tick, per failure */
#define FULL_HOLD_MS 5000         /* "full" stays shown this long after the last SQLITE_FULL */
#define NEARLY_FULL_BYTES (256 << 10)

struct disk {
	store_t *st;
	char dir[PATH_MAX];     /* the database's folder (statvfs) */
	char reserve[PATH_MAX]; /* the reserve file, released on SQLITE_FULL */
	int64_t min_free;
	int64_t free_bytes;
	int state;
	int reserve_held;
	unsigned full_seen;      /* store_full_errors() last looked at */
	uint64_t last_full_ms;   /* monotonic time of the last SQLITE_FULL (0: none) */
	uint64_t last_relief_ms; /* last attempt to make room after a failure */
	int64_t pruned;          /* rows deleted for space since start */
	int64_t full_errors;     /* failures for lack of space seen */
	int exhausted_logged;
};

const char *disk_state_name(int state)
{
	return state == DISK_FULL ? "full" : state == DISK_LOW ? "low" : "ok";
}

static int64_t free_in(const char *dir)
{
	struct statvfs v;
	if (statvfs(dir, &v))
		return -1;
	return (int64_t)v.f_bavail * (int64_t)v.f_frsize;
}

static void dir_of(const char *path, char *out, size_t len)
{
	snprintf(out, len, "%s", path);
	char *slash = strrchr(out, '/');
	if (slash == out)
		out[1] = '\0';
	else if (slash)
		*slash = '\0';
	else
		snprintf(out, len, ".");
}

/* ---- pruning ---- */

static int64_t one_int(store_t *st, const char *sql, int64_t bind, int *has)
{
	sqlite3_stmt *s = store_stmt(st, sql);
	*has = 0;
	if (!s)
		return 0;
	if (bind)
		sqlite3_bind_int64(s, 1, bind);
	int64_t v = 0;
	if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL) {
		v = sqlite3_column_int64(s, 0);
		*has = 1;
	}
	sqlite3_reset(s);
	return v;
}

static int del(store_t *st, const char *sql, int64_t a, int limit, int64_t *n)
{
	sqlite3_stmt *s = store_stmt(st, sql);
	if (!s)
		return -1;
	if (a)
		sqlite3_bind_int64(s, 1, a);
	sqlite3_bind_int(s, 2, limit);
	int rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		store_note_error(st, rc);
		log_err("disk", "pruning: %s", sqlite3_errmsg(store_db(st)));
		return -1;
	}
	*n += sqlite3_changes(store_db(st));
	return 0;
}

/* tier 1: the log tables whose rows are history only, oldest head first */
static const struct {
	const char *head, *del;
} tier1[] = {
	{ "SELECT min(ts) FROM door_logs",
	  "DELETE FROM door_logs WHERE id IN (SELECT id FROM door_logs ORDER BY ts, id LIMIT ?2)" },
	{ "SELECT min(ts) FROM call_logs",
	  "DELETE FROM call_logs WHERE id IN (SELECT id FROM call_logs ORDER BY ts, id LIMIT ?2)" },
	{ "SELECT min(ts) FROM detection_logs",
	  "DELETE FROM detection_logs WHERE id IN (SELECT id FROM detection_logs ORDER BY ts, id LIMIT ?2)" },
	{ "SELECT COALESCE(exited_at, entered_at, 0) FROM parking_logs ORDER BY id LIMIT 1",
	  "DELETE FROM parking_logs WHERE id IN (SELECT id FROM parking_logs ORDER BY id LIMIT ?2)" },
};

int64_t disk_prune(store_t *st, int64_t now, int want, int *tier)
{
	int64_t n = 0;
	int used = 0;
	if (store_begin(st))
		return -1;
	while (n < want) {
		int best = -1, has;
		int64_t best_ts = 0;
		for (int i = 0; i < (int)(sizeof tier1 / sizeof tier1[0]); i++) {
			int64_t ts = one_int(st, tier1[i].head, 0, &has);
			if (has && (best < 0 || ts < best_ts)) {
				best = i;
				best_ts = ts;
			}
		}
		if (best < 0)
			break;
		int64_t before = n;
		int chunk = want - (int)n < PRUNE_CHUNK ? want - (int)n : PRUNE_CHUNK;
		if (del(st, tier1[best].del, 0, chunk, &n))
			goto fail;
		used = 1;
		if (n == before)
			break;
	}
	if (!n) {
		if (del(st, "DELETE FROM alarm_logs WHERE id IN (SELECT id FROM alarm_logs WHERE solved = 1 "
			    "ORDER BY ts, id LIMIT ?2)", 0, want, &n))
			goto fail;
		used = n ? 2 : 0;
	}
	if (!n) {
		if (del(st, "DELETE FROM audit_logs WHERE id IN (SELECT id FROM audit_logs WHERE ts < ?1 "
			    "ORDER BY ts, id LIMIT ?2)", now - (int64_t)DISK_AUDIT_KEEP_DAYS * 86400, want, &n))
			goto fail;
		used = n ? 3 : 0;
	}
	if (store_commit(st))
		return -1;
	if (tier)
		*tier = used;
	return n;
fail:
	store_rollback(st);
	return -1;
}

static int64_t freelist_bytes(store_t *st)
{
	int has;
	int64_t pages = one_int(st, "PRAGMA freelist_count", 0, &has);
	int64_t size = one_int(st, "PRAGMA page_size", 0, &has);
	return pages * size;
}

static void checkpoint(disk_t *d)
{
	/* PASSIVE, on the loop's connection: never waits for readers; once
	 * every frame is back in the database the next write restarts the WAL
	 * from its start (reusing its space instead of growing it) */
	int frames = 0, done = 0;
	int rc = sqlite3_wal_checkpoint_v2(store_db(d->st), NULL, SQLITE_CHECKPOINT_PASSIVE, &frames, &done);
	if (rc != SQLITE_OK && rc != SQLITE_BUSY)
		store_note_error(d->st, rc);
}

/* Deletes old logs until the database holds FREELIST_TARGET of free pages
 * (new rows then reuse them and the file does not grow), at most
 * PRUNE_MAX_BATCHES batches. Returns the rows deleted, -1 if it failed. */
static int64_t make_room(disk_t *d, int force)
{
	int64_t total = 0;
	for (int i = 0; i < PRUNE_MAX_BATCHES; i++) {
		if (!force && freelist_bytes(d->st) >= FREELIST_TARGET)
			break;
		force = 0;
		int tier = 0;
		int64_t n = disk_prune(d->st, gh_now(), PRUNE_BATCH, &tier);
		if (n < 0)
			return total ? total : -1;
		if (n == 0) {
			if (!d->exhausted_logged++)
				log_err("disk", "no space and no log left that may be deleted: new door logs wait "
						"in memory (then are dropped), device events stay on the devices until "
						"stored; free space in %s", d->dir);
			break;
		}
		d->exhausted_logged = 0;
		total += n;
		d->pruned += n;
		log_warn("disk", "deleted the %lld oldest %s to make room", (long long)n,
			 tier == 1 ? "door/call/detection/parking log rows" : tier == 2 ? "solved alarms"
									    : "old audit log rows");
		checkpoint(d);
	}
	return total;
}

/* ---- reserve file ---- */

static int reserve_create(disk_t *d)
{
	int fd = open(d->reserve, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	/* written, not fallocated: the blocks must really be ours */
	static const char zero[65536];
	for (int64_t done = 0; done < DISK_RESERVE_BYTES; done += (int64_t)sizeof zero)
		if (write(fd, zero, sizeof zero) != (ssize_t)sizeof zero) {
			close(fd);
			unlink(d->reserve);
			return -1;
		}
	if (close(fd)) {
		unlink(d->reserve);
		return -1;
	}
	return 0;
}

static void reserve_release(disk_t *d)
{
	if (!d->reserve_held)
		return;
	d->reserve_held = 0;
	if (unlink(d->reserve) && errno != ENOENT)
		log_err("disk", "cannot remove the reserve file %s: %s", d->reserve, strerror(errno));
	else
		log_warn("disk", "released the %d MiB reserve file %s to make room", DISK_RESERVE_BYTES >> 20,
			 d->reserve);
}

/* ---- state ---- */

static int notice_full(disk_t *d, uint64_t now)
{
	unsigned f = store_full_errors(d->st);
	if (f == d->full_seen)
		return 0;
	d->full_errors += f - d->full_seen;
	d->full_seen = f;
	d->last_full_ms = now ? now : 1;
	return 1;
}

static void set_state(disk_t *d, int state)
{
	if (state == d->state)
		return;
	int was = d->state;
	d->state = state;
	long long mib = d->free_bytes >= 0 ? (long long)(d->free_bytes >> 20) : -1;
	if (state == DISK_FULL)
		log_err("disk", "DISK FULL: SQLite cannot write in %s (%lld MiB free): doors keep opening; the "
				"oldest logs are deleted to make room; device events are acknowledged only once "
				"stored", d->dir, mib);
	else if (state == DISK_LOW)
		log_warn("disk", "disk space low in %s: %lld MiB free (below [storage] min_free_mb %lld or "
				 "the reserve file missing): the oldest logs make room for new ones", d->dir, mib,
			 (long long)(d->min_free >> 20));
	else
		gh_log(GH_LOG_NOTICE, "disk", "disk space ok again in %s: %lld MiB free (was %s; %lld log rows "
					      "deleted for space so far)", d->dir, mib, disk_state_name(was),
		       (long long)d->pruned);
	if (state == DISK_OK)
		d->exhausted_logged = 0;
}

static int compute_state(disk_t *d, uint64_t now)
{
	if ((d->last_full_ms && now - d->last_full_ms < FULL_HOLD_MS) ||
	    (d->free_bytes >= 0 && d->free_bytes < NEARLY_FULL_BYTES))
		return DISK_FULL;
	if (d->free_bytes >= 0 &&
	    (d->free_bytes < d->min_free || (!d->reserve_held && d->free_bytes < d->min_free + DISK_RESERVE_BYTES)))
		return DISK_LOW;
	return DISK_OK;
}

disk_t *disk_new(store_t *st, const char *db_path, int64_t min_free_bytes)
{
	disk_t *d = calloc(1, sizeof *d);
	if (!d)
		return NULL;
	d->st = st;
	d->min_free = min_free_bytes > 0 ? min_free_bytes : 0;
	dir_of(db_path, d->dir, sizeof d->dir);
	snprintf(d->reserve, sizeof d->reserve, "%.*s.reserve", (int)sizeof d->reserve - 9, db_path);
	int fd = open(d->reserve, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		off_t size = lseek(fd, 0, SEEK_END);
		close(fd);
		d->reserve_held = size >= DISK_RESERVE_BYTES;
	}
	d->full_seen = store_full_errors(st);
	d->free_bytes = free_in(d->dir);
	return d;
}

void disk_free(disk_t *d) { free(d); }

int disk_state(const disk_t *d) { return d ? d->state : DISK_OK; }

void disk_tick(disk_t *d)
{
	if (!d)
		return;
	uint64_t now = gh_mono_ms();
	notice_full(d, now);
	d->free_bytes = free_in(d->dir);
	/* the reserve comes back once there is room for it above the minimum */
	if (!d->reserve_held && d->free_bytes >= d->min_free + 2 * (int64_t)DISK_RESERVE_BYTES &&
	    (!d->last_full_ms || now - d->last_full_ms >= FULL_HOLD_MS)) {
		if (reserve_create(d) == 0) {
			d->reserve_held = 1;
			d->free_bytes = free_in(d->dir);
		}
	}
	set_state(d, compute_state(d, now));
	if (d->state != DISK_OK && !store_in_tx(d->st)) {
		make_room(d, 0);
		checkpoint(d);
		notice_full(d, now);
	}
}

int disk_after_failure(disk_t *d)
{
	if (!d)
		return 0;
	uint64_t now = gh_mono_ms();
	if (!notice_full(d, now))
		return 0; /* not for lack of space */
	d->free_bytes = free_in(d->dir);
	set_state(d, DISK_FULL);
	if (store_in_tx(d->st))
		return 0;
	/* every loop pass may fail the same way: make room once a second */
	if (!d->reserve_held && d->last_relief_ms && now - d->last_relief_ms < 1000)
		return 0;
	d->last_relief_ms = now;
	int made = d->reserve_held;
	checkpoint(d);
	reserve_release(d);
	checkpoint(d); /* the frames waiting for room go back into the database */
	int64_t n = make_room(d, 1);
	checkpoint(d);
	d->free_bytes = free_in(d->dir);
	return made || n > 0;
}

json_t *disk_status_json(const disk_t *d)
{
	if (!d)
		return json_null();
	return json_pack("{s:s,s:I,s:I,s:b,s:I,s:I}", "state", disk_state_name(d->state), "free_bytes",
			 (json_int_t)d->free_bytes, "min_free_bytes", (json_int_t)d->min_free, "reserve",
			 d->reserve_held, "pruned_rows", (json_int_t)d->pruned, "full_errors",
			 (json_int_t)d->full_errors);
}

void disk_metrics(const disk_t *d, FILE *f)
{
	if (!d)
		return;
	fprintf(f, "# HELP gatehouse_disk_full 1 while SQLite cannot write for lack of space (doors keep opening)\n"
		   "# TYPE gatehouse_disk_full gauge\ngatehouse_disk_full %d\n"
		   "# HELP gatehouse_disk_low 1 while free space is below [storage] min_free_mb\n"
		   "# TYPE gatehouse_disk_low gauge\ngatehouse_disk_low %d\n"
		   "# HELP gatehouse_disk_free_bytes free space where the database lives\n"
		   "# TYPE gatehouse_disk_free_bytes gauge\ngatehouse_disk_free_bytes %lld\n"
		   "# HELP gatehouse_disk_pruned_rows_total log rows deleted to make room\n"
		   "# TYPE gatehouse_disk_pruned_rows_total counter\ngatehouse_disk_pruned_rows_total %lld\n",
		d->state == DISK_FULL, d->state == DISK_LOW, (long long)d->free_bytes, (long long)d->pruned);
}

json_t *disk_probe_json(const char *db_path, int64_t min_free_bytes)
{
	char dir[PATH_MAX];
	dir_of(db_path, dir, sizeof dir);
	int64_t fb = free_in(dir);
	int low = fb >= 0 && (fb < NEARLY_FULL_BYTES || fb < min_free_bytes);
	return json_pack("{s:s,s:I,s:I}", "state", low ? "low" : "ok", "free_bytes", (json_int_t)fb,
			 "min_free_bytes", (json_int_t)min_free_bytes);
}
