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

Test(checkpoint, copies_the_wal_into_the_database_while_the_writer_runs)
{
	store_t *st = tu_store();
	char db[300];
	snprintf(db, sizeof db, "%s/site.db", tu_dir);
	gh_err_t err = { 0 };
	cr_assert_eq(store_exec(st, "PRAGMA wal_autocheckpoint = 0", &err), 0, "%s", err.message);
	cr_assert_eq(store_exec(st, "CREATE TABLE soak(x BLOB)", &err), 0, "%s", err.message);
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
