#include "store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>

#include "log.h"
#include "schema_gen.h"

#define STMT_SLOTS 256

struct store {
	sqlite3 *db;
	int depth;        /* transaction nesting */
	int nested_done;  /* a nested unit of work was committed into the open transaction */
	int bulk;         /* a bulk load is open: credentials_lookup is dropped (bulk.c) */
	uint64_t wal_syncs; /* commits synced (store_wal_syncs) */
	int wal_frames;     /* the WAL's length after our last commit (store_watch_wal) */
	int64_t lrev;
	int lrev_dirty;
	unsigned settings_gen;
	unsigned serial;
	int64_t data_version;
	unsigned full_errors; /* SQLITE_FULL / ENOSPC seen (disk.c watches it) */
	uint64_t full_logged;  /* commit failures for lack of space, logged sparsely */
	struct {
		const char *sql;
		sqlite3_stmt *stmt;
	} cache[STMT_SLOTS];
};

sqlite3 *store_db(store_t *st) { return st->db; }
int store_schema_latest(void) { return gh_schema_count; }

int64_t store_purge_logs(store_t *st, int days, int audit_days, int64_t now, int limit)
{
	static const char *const sql[] = {
		"DELETE FROM door_logs WHERE id IN (SELECT id FROM door_logs WHERE ts < ?1 ORDER BY id LIMIT ?2)",
		"DELETE FROM call_logs WHERE id IN (SELECT id FROM call_logs WHERE ts < ?1 ORDER BY id LIMIT ?2)",
		"DELETE FROM alarm_logs WHERE id IN (SELECT id FROM alarm_logs WHERE ts < ?1 AND solved = 1 "
		"ORDER BY id LIMIT ?2)",
		"DELETE FROM detection_logs WHERE id IN (SELECT id FROM detection_logs WHERE ts < ?1 ORDER BY id LIMIT ?2)",
		"DELETE FROM parking_logs WHERE id IN (SELECT id FROM parking_logs WHERE exited_at < ?1 ORDER BY id LIMIT ?2)",
		"DELETE FROM device_events WHERE (device, eid) IN (SELECT device, eid FROM device_events "
		"WHERE ts < ?1 LIMIT ?2)",
		"DELETE FROM audit_logs WHERE id IN (SELECT id FROM audit_logs WHERE ts < ?1 ORDER BY id LIMIT ?2)",
	};
	int64_t total = 0;
	if (store_begin(st))
		return -1;
	for (size_t i = 0; i < sizeof sql / sizeof sql[0]; i++) {
		sqlite3_stmt *s = store_stmt(st, sql[i]);
		if (!s) {
			store_rollback(st);
			return -1;
		}
		int d = i == 6 ? audit_days : days;
		sqlite3_bind_int64(s, 1, now - (int64_t)d * 86400);
		sqlite3_bind_int(s, 2, limit);
		int rc = sqlite3_step(s);
		sqlite3_reset(s);
		if (rc != SQLITE_DONE) {
			store_rollback(st);
			return -1;
		}
		total += sqlite3_changes(st->db);
	}
	if (store_commit(st))
		return -1;
	return total;
}

int store_note_error(store_t *st, int rc)
{
	if ((rc & 0xff) == SQLITE_FULL || ((rc & 0xff) == SQLITE_IOERR && sqlite3_system_errno(st->db) == ENOSPC)) {
		st->full_errors++;
		return 1;
	}
	return 0;
}

unsigned store_full_errors(const store_t *st) { return st->full_errors; }

int store_tx_lost(store_t *st) { return st->depth > 0 && sqlite3_get_autocommit(st->db); }

int store_db_err(store_t *st, gh_err_t *err, const char *what)
{
	log_err("store", "%s: %s", what, sqlite3_errmsg(st->db));
	return gh_err(err, 500, "database", "", "%s: %s", what, sqlite3_errmsg(st->db));
}

int store_exec(store_t *st, const char *sql, gh_err_t *err)
{
	char *msg = NULL;
	if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		gh_err(err, 500, "database", "", "%s", msg ? msg : "sqlite error");
		log_err("store", "exec failed: %s", msg ? msg : "?");
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

sqlite3_stmt *store_stmt(store_t *st, const char *sql)
{
	uintptr_t h = ((uintptr_t)sql >> 3) % STMT_SLOTS;
	for (unsigned i = 0; i < STMT_SLOTS; i++) {
		unsigned slot = (unsigned)((h + i) % STMT_SLOTS);
		if (st->cache[slot].sql == sql) {
			sqlite3_stmt *s = st->cache[slot].stmt;
			sqlite3_reset(s);
			sqlite3_clear_bindings(s);
			return s;
		}
		if (!st->cache[slot].sql) {
			sqlite3_stmt *s = NULL;
			if (sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, NULL) !=
			    SQLITE_OK) {
				log_err("store", "prepare failed: %s: %.80s", sqlite3_errmsg(st->db), sql);
				return NULL;
			}
			st->cache[slot].sql = sql;
			st->cache[slot].stmt = s;
			return s;
		}
	}
	log_err("store", "statement cache full");
	return NULL;
}

int store_kv_get(store_t *st, const char *key, char *buf, size_t len)
{
	sqlite3_stmt *s = store_stmt(st, "SELECT value FROM sync_state WHERE key = ?");
	if (!s)
		return -1;
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW && sqlite3_column_text(s, 0)) {
		snprintf(buf, len, "%s", (const char *)sqlite3_column_text(s, 0));
		sqlite3_reset(s);
		return 0;
	}
	if (len)
		buf[0] = '\0';
	sqlite3_reset(s);
	return -1;
}

int store_kv_set(store_t *st, const char *key, const char *value)
{
	sqlite3_stmt *s = store_stmt(st, "INSERT INTO sync_state(key, value) VALUES (?, ?) "
					 "ON CONFLICT(key) DO UPDATE SET value = excluded.value");
	if (!s)
		return -1;
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, value, -1, SQLITE_STATIC);
	int rc = sqlite3_step(s);
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

static int flush_lrev(store_t *st)
{
	if (!st->lrev_dirty)
		return 0;
	char buf[32];
	snprintf(buf, sizeof buf, "%lld", (long long)st->lrev);
	if (store_kv_set(st, "lrev", buf))
		return -1;
	st->lrev_dirty = 0;
	return 0;
}

/* Transaction control through cached statements: sqlite3_exec would parse
 * the SQL on every call, and a decision begins and ends one. */
static int tx_step(store_t *st, const char *sql)
{
	sqlite3_stmt *s = store_stmt(st, sql);
	if (!s)
		return SQLITE_ERROR;
	int rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc != SQLITE_DONE)
		store_note_error(st, rc);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

int store_begin(store_t *st)
{
	int rc;
	/* SQLite rolled the outer transaction back by itself (SQLITE_FULL, an
	 * I/O error): a savepoint now would start a new transaction that the
	 * outer unit's commit then ends half way. Refused until it unwinds. */
	if (store_tx_lost(st)) {
		log_err("store", "begin refused: the enclosing transaction was rolled back by SQLite");
		return -1;
	}
	if (st->depth == 0)
		rc = tx_step(st, "BEGIN IMMEDIATE");
	else
		rc = tx_step(st, "SAVEPOINT gh");
	if (rc != SQLITE_OK) {
		log_err("store", "begin failed: %s", sqlite3_errmsg(st->db));
		return -1;
	}
	st->depth++;
	return 0;
}

static int commit(store_t *st, int lazy);

/* fsync of the WAL (the journal file of a WAL database) */
static int wal_sync(store_t *st)
{
	sqlite3_file *f = NULL;
	if (sqlite3_file_control(st->db, "main", SQLITE_FCNTL_JOURNAL_POINTER, &f) != SQLITE_OK || !f ||
	    !f->pMethods)
		return 0; /* no WAL open (nothing written): nothing to sync */
	st->wal_syncs++;
	return f->pMethods->xSync(f, SQLITE_SYNC_NORMAL) == SQLITE_OK ? 0 : -1;
}

int store_commit(store_t *st) { return commit(st, 0); }

int store_commit_lazy(store_t *st) { return commit(st, 1); }

static int commit(store_t *st, int lazy)
{
	if (st->depth <= 0)
		return -1;
	if (store_tx_lost(st)) {
		/* already rolled back by SQLite: nothing of it is on disk */
		store_rollback(st);
		return -1;
	}
	if (st->depth == 1 && flush_lrev(st)) {
		store_rollback(st);
		return -1;
	}
	/* The connection runs synchronous NORMAL (a COMMIT does not fsync the
	 * WAL; SQLite refuses to change that inside a transaction), and an
	 * outermost commit syncs the WAL itself before it returns: what it
	 * holds survives a power cut before anything in it is acknowledged
	 * (PRODUCT.md) — the same as FULL. Lazy: no sync (the next synced
	 * commit or the checkpointer's checkpoint, within a second, makes it
	 * durable; a power cut before loses it, never corrupts), never for a
	 * transaction a nested unit (an edit, a cloud page) committed into. */
	int sync = st->depth == 1 && !(lazy && !st->nested_done);
	int rc = tx_step(st, st->depth == 1 ? "COMMIT" : "RELEASE gh");
	if (rc == SQLITE_OK)
		st->nested_done = st->depth > 1; /* the outermost commit starts afresh */
	if (rc == SQLITE_OK && sync && wal_sync(st)) {
		/* committed (others read it) but maybe not on the disk: the
		 * caller acknowledges nothing (devices resend, deduplicated) */
		log_err("store", "commit: syncing the WAL failed: %s", strerror(errno));
		st->depth--;
		return -1;
	}
	if (rc != SQLITE_OK) {
		/* a full disk fails every commit until room is made (disk.c):
		 * one line per 100 failures, not one per loop pass */
		int full = (rc & 0xff) == SQLITE_FULL || sqlite3_system_errno(st->db) == ENOSPC;
		if (!full || st->full_logged++ % 100 == 0)
			log_err("store", "commit failed: %s%s", sqlite3_errmsg(st->db),
				full ? " (no space left; logged once per 100 failures)" : "");
		store_rollback(st);
		return -1;
	}
	st->depth--;
	return 0;
}

/* what a rolled-back unit may have changed of the store's own state, read
 * back from what the database now holds */
static void reread(store_t *st)
{
	char buf[32];
	if (st->depth == 0) {
		/* counters handed out in the rolled-back transaction are reused */
		st->lrev = store_kv_get(st, "lrev", buf, sizeof buf) == 0 ? strtoll(buf, NULL, 10) : 0;
		st->lrev_dirty = 0;
	}
	/* a bulk load begun or ended in it (bulk.c): as the database says */
	st->bulk = store_kv_get(st, "bulk_index_sql", buf, sizeof buf) == 0 && buf[0];
}

void store_rollback(store_t *st)
{
	if (st->depth <= 0)
		return;
	st->settings_gen++; /* a rolled-back settings change must not stay cached */
	if (sqlite3_get_autocommit(st->db)) {
		/* SQLite already rolled the whole transaction back (SQLITE_FULL,
		 * an I/O error, a failed COMMIT): nothing left to undo at any
		 * level; each level still unwinds through here or store_commit */
		if (--st->depth == 0)
			st->nested_done = 0;
		reread(st);
		return;
	}
	if (st->depth == 1) {
		st->nested_done = 0;
		tx_step(st, "ROLLBACK");
	} else {
		tx_step(st, "ROLLBACK TO gh");
		tx_step(st, "RELEASE gh");
	}
	st->depth--;
	reread(st);
}

int store_in_tx(store_t *st) { return st->depth > 0; }

int store_bulk(const store_t *st) { return st->bulk; }

void store_set_bulk(store_t *st, int on) { st->bulk = on; }

uint64_t store_wal_syncs(const store_t *st) { return st->wal_syncs; }

static int on_wal(void *ctx, sqlite3 *db, const char *name, int frames)
{
	(void)db, (void)name;
	((store_t *)ctx)->wal_frames = frames;
	return SQLITE_OK;
}

void store_watch_wal(store_t *st) { sqlite3_wal_hook(st->db, on_wal, st); }

int store_wal_frames(const store_t *st) { return st->wal_frames; }

int store_wal_restart(store_t *st)
{
	if (st->depth > 0)
		return -1;
	int frames = 0, done = 0;
	sqlite3_busy_timeout(st->db, 0); /* another process reading: next time */
	int rc = sqlite3_wal_checkpoint_v2(st->db, NULL, SQLITE_CHECKPOINT_RESTART, &frames, &done);
	sqlite3_busy_timeout(st->db, 5000);
	if (rc != SQLITE_OK) {
		log_debug("store", "WAL restart: %s", sqlite3_errmsg(st->db));
		return -1;
	}
	log_info("store", "WAL restarted by the loop after %d frames", frames);
	return 0;
}

int64_t store_next_lrev(store_t *st)
{
	st->lrev_dirty = 1;
	return ++st->lrev;
}

int64_t store_lrev(store_t *st) { return st->lrev; }

unsigned store_settings_gen(store_t *st)
{
	/* another process (the CLI, a restore) may have changed the settings:
	 * PRAGMA data_version moves only for other connections' commits. Inside
	 * our own BEGIN IMMEDIATE transaction nobody else can commit. */
	if (st->depth > 0)
		return st->settings_gen;
	sqlite3_stmt *s = store_stmt(st, "PRAGMA data_version");
	if (s && sqlite3_step(s) == SQLITE_ROW) {
		int64_t dv = sqlite3_column_int64(s, 0);
		if (dv != st->data_version) {
			st->data_version = dv;
			st->settings_gen++;
		}
	}
	if (s)
		sqlite3_reset(s);
	return st->settings_gen;
}
unsigned store_serial(store_t *st) { return st->serial; }
unsigned store_settings_gen_local(store_t *st) { return st->settings_gen; }
void store_settings_touch(store_t *st) { st->settings_gen++; }

int store_schema_version(store_t *st)
{
	sqlite3_stmt *s = NULL;
	int v = -1;
	if (sqlite3_prepare_v2(st->db, "PRAGMA user_version", -1, &s, NULL) == SQLITE_OK &&
	    sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	return v;
}

/* Each migration runs in one transaction together with its user_version,
 * so a crash leaves the database at the previous version, never between. */
static int migrate(store_t *st, int max_version, gh_err_t *err)
{
	int cur = store_schema_version(st);
	if (cur < 0)
		return store_db_err(st, err, "reading schema version");
	if (cur > gh_schema_count)
		return gh_err(err, 500, "schema", "",
			      "database schema version %d is newer than this gatehoused (%d)", cur,
			      gh_schema_count);
	for (int v = cur + 1; v <= max_version && v <= gh_schema_count; v++) {
		char pragma[64];
		snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", v);
		if (store_exec(st, "BEGIN IMMEDIATE", err))
			return -1;
		/* another process (the daemon and the CLI on a new file) may have
		 * migrated while we waited for the write lock */
		if (store_schema_version(st) >= v) {
			if (store_exec(st, "COMMIT", err))
				return -1;
			continue;
		}
		if (store_exec(st, gh_schema[v - 1].sql, err) || store_exec(st, pragma, err)) {
			sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
			log_err("store", "migration %s failed", gh_schema[v - 1].name);
			return -1;
		}
		if (store_exec(st, "COMMIT", err))
			return -1;
		log_info("store", "applied migration %s", gh_schema[v - 1].name);
	}
	return 0;
}

/* GH_SQL_SLOW_US=N logs every statement slower than N microseconds (a
 * diagnostic for query plans; off by default). */
static int on_profile(unsigned type, void *ctx, void *p, void *x)
{
	(void)type;
	long limit = (long)(intptr_t)ctx;
	sqlite3_int64 ns = *(sqlite3_int64 *)x;
	if (ns / 1000 >= limit) {
		char *sql = sqlite3_expanded_sql((sqlite3_stmt *)p);
		log_err("store", "slow statement %lld us: %.300s", (long long)(ns / 1000), sql ? sql : "?");
		sqlite3_free(sql);
	}
	return 0;
}

store_t *store_open_version(const char *path, int max_version, gh_err_t *err)
{
	store_t *st = calloc(1, sizeof *st);
	if (!st) {
		gh_err(err, 500, "nomem", "", "out of memory");
		return NULL;
	}
	/* no global lock around every SQLite allocation for memory statistics
	 * nobody reads (must precede SQLite's initialisation: the first open) */
	static int configured;
	if (!configured++)
		sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
	/* a store_t belongs to one thread (the daemon's loop thread; threads
	 * that need the database open their own): no connection mutex */
	if (sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK) {
		gh_err(err, 500, "database", "", "cannot open database %s: %s", path,
		       st->db ? sqlite3_errmsg(st->db) : "out of memory");
		goto fail;
	}
	static unsigned serials;
	st->serial = ++serials;
	sqlite3_busy_timeout(st->db, 5000);
	const char *slow = getenv("GH_SQL_SLOW_US");
	long slow_us = slow ? strtol(slow, NULL, 10) : 0;
	if (slow_us > 0)
		sqlite3_trace_v2(st->db, SQLITE_TRACE_PROFILE, on_profile, (void *)(intptr_t)slow_us);
	sqlite3_extended_result_codes(st->db, 1);
	/* WAL: readers (CLI, backup) never block the daemon; NORMAL sync is
	 * durable across process crashes, and across power loss up to the last
	 * checkpointed commit. */
	/* switching a new file to WAL needs an exclusive lock, which a second
	 * process opening it at the same moment makes busy: retry a while */
	for (int i = 0; store_exec(st, "PRAGMA journal_mode = WAL", err); i++) {
		if (i == 100 || (sqlite3_errcode(st->db) & 0xff) != SQLITE_BUSY)
			goto fail;
		struct timespec ts = { 0, 50000000 };
		nanosleep(&ts, NULL);
	}
	/* NORMAL, and store_commit syncs the WAL itself: every commit's WAL
	 * frames are on the disk (fsync) before the commit returns, so an
	 * event acked after its commit survives a power cut (PRODUCT.md:
	 * stored durably before it is acknowledged); store_commit_lazy skips
	 * the sync. One fsync per loop pass, batched. */
	if (store_exec(st, "PRAGMA synchronous = NORMAL", err) ||
	    store_exec(st, "PRAGMA foreign_keys = ON", err) ||
	    store_exec(st, "PRAGMA temp_store = MEMORY", err) ||
	    /* 12 MiB of page cache: the hot index pages of a 1M-credential site
	     * stay in memory while the daemon stays under 30 MiB RSS (16 MiB
	     * measured the same decision latency at 4 MB more) */
	    store_exec(st, "PRAGMA cache_size = -12288", err))
		goto fail;
	/* benchmarks only: another page cache size (KiB) */
	const char *cache_kb = getenv("GH_SQL_CACHE_KB");
	if (cache_kb && strtol(cache_kb, NULL, 10) >= 1024) {
		char pragma[64];
		snprintf(pragma, sizeof pragma, "PRAGMA cache_size = -%ld", strtol(cache_kb, NULL, 10));
		if (store_exec(st, pragma, err))
			goto fail;
	}
	if (migrate(st, max_version, err))
		goto fail;
	/* the revision counter; a bulk load cut short (a crash): the index is
	 * still to be built */
	if (store_schema_version(st) >= 3)
		reread(st);
	return st;
fail:
	store_close(st);
	return NULL;
}

store_t *store_open(const char *path, gh_err_t *err)
{
	return store_open_version(path, gh_schema_count, err);
}

void store_close(store_t *st)
{
	if (!st)
		return;
	for (unsigned i = 0; i < STMT_SLOTS; i++)
		if (st->cache[i].stmt)
			sqlite3_finalize(st->cache[i].stmt);
	/* keeps the planner's statistics current for the next open */
	if (st->db && st->depth == 0)
		sqlite3_exec(st->db, "PRAGMA optimize", NULL, NULL, NULL);
	if (st->db)
		sqlite3_close(st->db);
	free(st);
}
