/* The checkpointer thread (checkpoint.c): with the writer's own
 * autocheckpoint off, it alone copies WAL frames into the database file
 * while the writer's connection stays open. (It used to do nothing: its
 * connection never read the database, so its pager never opened the WAL,
 * and the WAL grew without bound.) */
#include <sys/stat.h>
#include <time.h>

#include "checkpoint.h"
#include "testutil.h"

static long long file_size(const char *path)
{
	struct stat s;
	return stat(path, &s) ? -1 : (long long)s.st_size;
}

/* A store whose own connection never checkpoints, with a table to fill;
 * DB gets the database file's path. */
static store_t *writer(char *db, size_t len)
{
	store_t *st = tu_store();
	snprintf(db, len, "%s/site.db", tu_dir);
	gh_err_t err = { 0 };
	cr_assert_eq(store_exec(st, "PRAGMA wal_autocheckpoint = 0", &err), 0, "%s", err.message);
	cr_assert_eq(store_exec(st, "CREATE TABLE soak(x BLOB)", &err), 0, "%s", err.message);
	return st;
}

Test(checkpoint, copies_the_wal_into_the_database_while_the_writer_runs)
{
	char db[300];
	store_t *st = writer(db, sizeof db);
	gh_err_t err = { 0 };
	long long before = file_size(db);
	ckpt_t *c = ckpt_start(db, 20);
	cr_assert_not_null(c);
	/* 2 MB of commits, then up to 20 s for them to reach the database
	 * file: only the checkpointer writes it while this connection is open */
	cr_assert_eq(store_exec(st, "BEGIN", &err), 0, "%s", err.message);
	for (int i = 0; i < 1000; i++)
		cr_assert_eq(store_exec(st, "INSERT INTO soak VALUES (randomblob(2000))", &err), 0, "%s", err.message);
	cr_assert_eq(store_exec(st, "COMMIT", &err), 0, "%s", err.message);
	struct timespec pause = { 0, 20 * 1000000L };
	for (int k = 0; k < 1000 && file_size(db) < before + (2LL << 20); k++)
		nanosleep(&pause, NULL);
	long long after = file_size(db);
	ckpt_stop(c);
	cr_expect_geq(after, before + (2LL << 20), "the database file grew from %lld to %lld bytes only", before,
		      after);
	store_close(st);
	tu_rmdir();
}

/* The loop's side of a long WAL (gatehoused.c on_commit_later): past ~4 MB
 * the checkpointer says it lags; a kick runs a checkpoint at once (its
 * interval here is a minute) and reports when every frame is copied; the
 * next write transaction then restarts the WAL, and the checkpointer sees
 * it short again. */
Test(checkpoint, long_wal_kick_catch_up_restart)
{
	char db[300];
	store_t *st = writer(db, sizeof db);
	gh_err_t err = { 0 };
	ckpt_t *c = ckpt_start(db, 60000);
	cr_assert_not_null(c);
	cr_assert_eq(store_exec(st, "BEGIN", &err), 0, "%s", err.message);
	for (int i = 0; i < 1500; i++) /* ~1500 pages of 4 KB */
		cr_assert_eq(store_exec(st, "INSERT INTO soak VALUES (randomblob(3000))", &err), 0, "%s", err.message);
	cr_assert_eq(store_exec(st, "COMMIT", &err), 0, "%s", err.message);

	struct timespec pause = { 0, 10 * 1000000L };
	unsigned gen = ckpt_kick(c);
	for (int k = 0; k < 2000 && !ckpt_caught_up(c, gen); k++)
		nanosleep(&pause, NULL);
	cr_assert(ckpt_caught_up(c, gen), "a kicked checkpoint copies every frame");
	cr_assert(ckpt_lagging(c), "a WAL of %d frames is long", ckpt_wal_frames(c));
	cr_assert_geq(ckpt_wal_frames(c), 1000);

	/* begun with every frame copied: this transaction restarts the WAL */
	cr_assert_eq(store_exec(st, "INSERT INTO soak VALUES (randomblob(10))", &err), 0, "%s", err.message);
	gen = ckpt_kick(c);
	for (int k = 0; k < 2000 && !ckpt_caught_up(c, gen); k++)
		nanosleep(&pause, NULL);
	cr_assert(ckpt_caught_up(c, gen));
	cr_expect_lt(ckpt_wal_frames(c), 10, "the WAL restarted: %d frames", ckpt_wal_frames(c));
	cr_expect_not(ckpt_lagging(c));
	ckpt_stop(c);
	store_close(st);
	tu_rmdir();
}
