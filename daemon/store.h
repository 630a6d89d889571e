/* The site store: one SQLite file (WAL, foreign keys on), migrated from the
 * numbered files of schema/ (compiled in), with a prepared-statement cache.
 * Only the thread that opened a store may use it. */
#ifndef GH_STORE_H
#define GH_STORE_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef struct store store_t;

/* Opens (creating if needed) and migrates the database at PATH to the latest
 * schema version. Returns NULL with *err filled (status 500) on failure. */
store_t *store_open(const char *path, gh_err_t *err);
/* Opens without migrating beyond MAX_VERSION (tests of migrations). */
store_t *store_open_version(const char *path, int max_version, gh_err_t *err);
void store_close(store_t *st);

sqlite3 *store_db(store_t *st);
/* Schema version (PRAGMA user_version) and the newest one compiled in. */
int store_schema_version(store_t *st);
int store_schema_latest(void);

/* Cached prepared statement for a static SQL string (keyed by pointer);
 * reset and bindings cleared. NULL on a prepare error (logged). */
sqlite3_stmt *store_stmt(store_t *st, const char *sql);
/* Runs SQL without results; -1 with *err on failure. */
int store_exec(store_t *st, const char *sql, gh_err_t *err);

/* Nested transactions: the outermost begin/commit are real (BEGIN
 * IMMEDIATE / COMMIT); inner ones are savepoints, so a failed inner
 * unit (store_rollback) leaves the outer transaction intact. */
int store_begin(store_t *st);
int store_commit(store_t *st);
/* 1 while a bulk load (bulk.h) has the credentials' lookup index dropped:
 * queries must not name it. */
int store_bulk(const store_t *st);
void store_set_bulk(store_t *st, int on);
/* The outermost commit without waiting for the disk (synchronous NORMAL):
 * durable at the next synced commit or checkpoint (within a second), lost,
 * never corrupted, by a power cut before. For rows nobody was told are
 * stored (door logs of answered decisions, presence); a transaction into
 * which a nested unit (an edit, a cloud page) was committed is synced. */
int store_commit_lazy(store_t *st);
/* How many commits synced the WAL (tests). */
uint64_t store_wal_syncs(const store_t *st);
/* Follows the WAL's length after each commit of this connection (the WAL
 * hook: replaces wal_autocheckpoint, for a connection whose checkpoints run
 * elsewhere); store_wal_frames answers it. */
void store_watch_wal(store_t *st);
int store_wal_frames(const store_t *st);
void store_rollback(store_t *st);
int store_in_tx(store_t *st);
/* A RESTART checkpoint on this connection (none of its transactions open):
 * the frames the checkpointer has not copied yet are copied here and the
 * next write starts the WAL from its beginning. Blocks for that copy; -1
 * when another process reads (tried again later). */
int store_wal_restart(store_t *st);
/* 1 when a transaction is open here but SQLite has already rolled it back
 * by itself (SQLITE_FULL or an I/O error during a statement or the COMMIT):
 * store_begin refuses, store_commit fails, store_rollback just unwinds. */
int store_tx_lost(store_t *st);

/* Disk full: RC (a failed step) is SQLITE_FULL or an I/O error for lack of
 * space; counted (store_full_errors) and 1 returned. Transaction control
 * counts its own failures; callers stepping statements may report theirs. */
int store_note_error(store_t *st, int rc);
unsigned store_full_errors(const store_t *st);

/* Local revision counter (device sync deltas): next value, persisted with
 * the enclosing transaction. */
int64_t store_next_lrev(store_t *st);
int64_t store_lrev(store_t *st);

/* sync_state key/value. get copies into BUF (""/-1 if absent). */
int store_kv_get(store_t *st, const char *key, char *buf, size_t len);
int store_kv_set(store_t *st, const char *key, const char *value);

/* Configuration generation: bumped by changes of settings, devices and
 * boards made here, by rollbacks, and by any commit of another connection
 * (PRAGMA data_version); the settings and device caches reload when it moves. */
unsigned store_settings_gen(store_t *st);
void store_settings_touch(store_t *st);
/* The generation as last seen, without asking SQLite about other
 * connections (valid inside our own write transaction). */
unsigned store_settings_gen_local(store_t *st);
/* Unique per opened store in this process (caches key on it). */
unsigned store_serial(store_t *st);

/* Retention (PRODUCT.md: logs 30 days, audit logs longer): deletes door,
 * call, alarm (solved only), detection and parking logs older than DAYS and
 * audit logs older than AUDIT_DAYS, at most LIMIT rows per table per call
 * (the daemon calls it often, so no call holds the database long). Returns
 * the rows deleted, -1 on error. */
int64_t store_purge_logs(store_t *st, int days, int audit_days, int64_t now, int limit);

/* Maps a SQLite error to *err (status 500) naming WHAT failed. */
int store_db_err(store_t *st, gh_err_t *err, const char *what);

#endif
