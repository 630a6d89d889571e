/* State pages held in one transaction (cloudlink.c, store_hold_begin) whose
 * commit fails: the pages in it are gone, so the pull must not go on past
 * them. The answers go through cloud_handle_answer as a transfer's would;
 * the commit is made to fail by a foreign key violation deferred to it. */
#include <uv.h>

#include "cloudlink.h"
#include "ctl.h"
#include "engine.h"
#include "testutil.h"

static store_t *st;
static engine_t *en;
static uv_loop_t loop;
static cloudlink_t *c;

static void setup(void)
{
	st = tu_store();
	en = engine_new(st);
	uv_loop_init(&loop);
	ctl_env_t env = { .st = st, .en = en, .started_ms = gh_mono_ms(), .wan = "up" };
	cloud_cfg_t cfg = { .url = "", .site = "site1", .token = "t" };
	c = cloud_start(&loop, &cfg, st, &env);
	cr_assert_not_null(c);
}

static void teardown(void)
{
	cloud_stop(c);
	uv_run(&loop, UV_RUN_NOWAIT);
	uv_loop_close(&loop);
	engine_free(en);
	store_close(st);
	tu_rmdir();
}

TestSuite(cloudlink, .init = setup, .fini = teardown);

static int answer(const char *body)
{
	return cloud_handle_answer(c, "state", 200, body, strlen(body));
}

static int64_t count(const char *sql)
{
	sqlite3_stmt *s = NULL;
	cr_assert_eq(sqlite3_prepare_v2(store_db(st), sql, -1, &s, NULL), SQLITE_OK);
	cr_assert_eq(sqlite3_step(s), SQLITE_ROW);
	int64_t n = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return n;
}

static int64_t rev(void)
{
	char buf[32];
	return store_kv_get(st, "rev", buf, sizeof buf) == 0 ? strtoll(buf, NULL, 10) : 0;
}

/* the held transaction's commit fails: a row violating a foreign key,
 * checked only at the commit */
static void poison_held(void)
{
	cr_assert(store_held(st));
	gh_err_t err = { 0 };
	cr_assert_eq(store_exec(st, "PRAGMA defer_foreign_keys = ON", &err), 0, "%s", err.message);
	cr_assert_eq(store_exec(st, "INSERT INTO apartments(id, building, apt, data, updated_at) "
				    "VALUES ('orphan', 'nowhere', '1', '{}', 0)", &err), 0, "%s", err.message);
}

#define PAGE1 "{\"rev\":1,\"more\":true,\"full\":false,\"changes\":[{\"seq\":1,\"entity\":\"building\",\"op\":\"upsert\"," \
	      "\"id\":\"b1\",\"data\":{\"name\":\"Tower A\"}}]}"
#define PAGE2 "{\"rev\":2,\"more\":true,\"full\":false,\"changes\":[{\"seq\":2,\"entity\":\"building\",\"op\":\"upsert\"," \
	      "\"id\":\"b2\",\"data\":{\"name\":\"Tower B\"}}]}"
#define LAST "{\"rev\":3,\"more\":false,\"full\":false,\"changes\":[{\"seq\":3,\"entity\":\"building\",\"op\":\"upsert\"," \
	     "\"id\":\"b3\",\"data\":{\"name\":\"Tower C\"}}]}"

/* pages held, then committed by the last one */
Test(cloudlink, held_pages_committed_by_the_last_page)
{
	cr_assert_eq(answer(PAGE1), 0);
	cr_assert(store_held(st), "a page with more to come stays held");
	cr_assert_eq(answer(PAGE2), 0);
	cr_assert_eq(answer(LAST), 0);
	cr_assert_not(store_in_tx(st), "the last page commits them all");
	cr_assert_eq(count("SELECT count(*) FROM buildings"), 3);
	cr_assert_eq(rev(), 3);
}

/* the last page's commit fails: neither it nor the held pages are kept,
 * and the revision stays where the committed state is */
Test(cloudlink, a_failed_commit_at_the_last_page_keeps_no_revision)
{
	cr_assert_eq(answer(PAGE1), 0);
	cr_assert_eq(answer(PAGE2), 0);
	poison_held();
	answer(LAST);
	cr_assert_not(store_in_tx(st));
	cr_assert_eq(count("SELECT count(*) FROM buildings"), 0, "the held pages are gone with it");
	cr_assert_eq(rev(), 0, "the next pull starts from the committed revision");
	cr_assert_eq(store_holds_lost(st), 1);
}

/* another unit of work commits the held pages first; when that fails the
 * next page is not applied on top of the hole */
Test(cloudlink, pages_after_a_lost_hold_are_not_applied)
{
	cr_assert_eq(answer(PAGE1), 0);
	poison_held();
	/* an edit made on the box meanwhile: its own transaction */
	tu_put(st, ENT_BUILDING, "{\"id\":\"local1\",\"name\":\"Annex\"}");
	cr_assert_eq(store_holds_lost(st), 1);
	cr_assert_eq(count("SELECT count(*) FROM buildings WHERE id = 'local1'"), 1, "the edit is stored");
	answer(PAGE2);
	cr_assert_eq(count("SELECT count(*) FROM buildings WHERE id IN ('b1', 'b2')"), 0,
		     "the page after the lost one is not applied");
	cr_assert_eq(rev(), 0);
	cr_assert_not(store_in_tx(st));
	/* the pull, started again from rev 0, applies its pages */
	cr_assert_eq(answer(PAGE1), 0);
	cr_assert_eq(answer(LAST), 0);
	cr_assert_eq(count("SELECT count(*) FROM buildings WHERE id IN ('b1', 'b3')"), 2);
	cr_assert_eq(rev(), 3);
}
