/* The checkpointer thread (checkpoint.c): with the writer's own
 * autocheckpoint off, it alone copies WAL frames into the database, and the
 * WAL restarts from its beginning instead of growing. */
#include <sys/stat.h>
#include <time.h>

#include "checkpoint.h"
#include "testutil.h"

static long long file_size(const char *path)
{
	struct stat s;
	return stat(path, &s) ? -1 : (long long)s.st_size;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

Test(checkpoint, the_thread_checkpoints_and_the_wal_stays_bounded)
{
	store_t *st = tu_store();
	char db[300], wal[310];
	snprintf(db, sizeof db, "%s/site.db", tu_dir);
	snprintf(wal, sizeof wal, "%s-wal", db);
	gh_err_t err = { 0 };
	cr_assert_eq(store_exec(st, "PRAGMA wal_autocheckpoint = 0", &err), 0, "%s", err.message);
	cr_assert_eq(store_exec(st, "CREATE TABLE soak(x BLOB)", &err), 0, "%s", err.message);
	ckpt_t *c = ckpt_start(db, 50);
	cr_assert_not_null(c);
	/* ~40 rounds of 50 commits of 2 KB: 4 MB written; a checkpointer that
	 * never checkpoints leaves a WAL at least that large */
	long long max_wal = 0;
	for (int round = 0; round < 40; round++) {
		for (int i = 0; i < 50; i++)
			cr_assert_eq(store_exec(st, "INSERT INTO soak VALUES (randomblob(2000))", &err), 0, "%s",
				     err.message);
		sleep_ms(60);
		long long w = file_size(wal);
		if (w > max_wal)
			max_wal = w;
	}
	long long d = file_size(db);
	ckpt_stop(c);
	cr_expect_gt(d, 2LL << 20, "the rows reached the database file (%lld bytes) while the daemon ran", d);
	cr_expect_lt(max_wal, 2LL << 20, "the WAL restarted from its beginning (it reached %lld bytes)", max_wal);
	store_close(st);
	tu_rmdir();
}
