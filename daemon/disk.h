/* Disk space where the database lives (docs/OPERATIONS.md "Disk full").
 * Doors never depend on it: decisions are made and answered whether or not
 * their logs can be stored. What this module does about space:
 * - watches free space (statvfs) once a second: below [storage] min_free_mb
 *   the state is "low" and the oldest logs are deleted so that the database
 *   reuses their pages instead of growing (early warning, before SQLite
 *   fails);
 * - on SQLITE_FULL (a commit failed for lack of space) the state is "full":
 *   a reserve file kept beside the database is released (room for the
 *   delete and for a checkpoint), the oldest logs are deleted in batches and
 *   the caller retries what failed;
 * - what may go, oldest first: door, call, detection and parking logs; then
 *   solved alarms; then audit logs older than DISK_AUDIT_KEEP_DAYS. Never:
 *   unsolved alarms, the cloud outbox (events not yet accepted by the
 *   cloud), local changes, device event dedupe rows, recent audit logs;
 * - one log line per change of state (journald-friendly), and the state in
 *   status ("disk") and /metrics.
 * Loop thread only; call it while no transaction is open on the store. */
#ifndef GH_DISK_H
#define GH_DISK_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

#include "store.h"

#define DISK_AUDIT_KEEP_DAYS 90
#define DISK_RESERVE_BYTES (4 << 20)

enum { DISK_OK = 0, DISK_LOW, DISK_FULL };

typedef struct disk disk_t;

/* Watches the folder of DB_PATH; MIN_FREE_BYTES 0: no early warning. */
disk_t *disk_new(store_t *st, const char *db_path, int64_t min_free_bytes);
void disk_free(disk_t *d);
/* Once a second: free space, state, reserve file, pruning while short. */
void disk_tick(disk_t *d);
/* A commit failed: when it was for lack of space (SQLITE_FULL), makes room
 * (reserve, oldest logs) and returns 1 if retrying is worth it; else 0. */
int disk_after_failure(disk_t *d);
int disk_state(const disk_t *d);
const char *disk_state_name(int state);
/* {"state":"ok"|"low"|"full","free_bytes","min_free_bytes","reserve",
 *  "pruned_rows","full_errors"} */
json_t *disk_status_json(const disk_t *d);
/* Prometheus lines (gatehouse_disk_*). */
void disk_metrics(const disk_t *d, FILE *f);
/* For the CLI while the daemon is stopped: {"state":"ok"|"low","free_bytes"}. */
json_t *disk_probe_json(const char *db_path, int64_t min_free_bytes);

/* One prune batch: deletes up to WANT rows, oldest first, from the first
 * tier that has any (1: door, call, detection, parking logs; 2: solved
 * alarms; 3: audit logs older than DISK_AUDIT_KEEP_DAYS before NOW), in one
 * transaction. Returns the rows deleted (0: nothing may go), -1 on error;
 * *tier (optional) the tier used. */
int64_t disk_prune(store_t *st, int64_t now, int want, int *tier);

#endif
