/* Cloud responses (daemon/cloudlink.c, CLOUD.md): the JSON the cloud sends
 * back for a state page, a change push, an outbox drain, the commands long
 * poll and a command result, handled by cloud_handle_answer exactly as
 * when the transfer completes (the answer is parsed, applied through the
 * validator, the commands run through ctl_handle; a device link that never
 * connects takes the device commands).
 *
 * The site has local edits waiting to be pushed (change ids fz-c1..3 are
 * not known to the cloud: the fuzzer learns them from the seeds), events in
 * the outbox (ids "0C11050B9814:e1", "0C11050B9814:e2", "gw:x1") and a
 * finished cloud command "cmd1" waiting for its result to be reported.
 *
 * Input: "KIND STATUS\n" then the body, KIND one of state, changes,
 * events, heartbeat, commands, result; a first line of a single digit 0-5
 * stands for that kind with status 200. Up to 8 answers separated by an
 * empty line are handled in order by the same link. */
#include <uv.h>

#include "cloudlink.h"
#include "ctl.h"
#include "engine.h"
#include "fuzz_common.h"
#include "mqttlink.h"

static store_t *st;
static engine_t *en;
static uv_loop_t loop;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void exec_sql(const char *sql)
{
	gh_err_t err = { 0 };
	if (store_exec(st, sql, &err))
		fz_die(sql, &err);
}

static void local_put(ent_t e, const char *text)
{
	gh_err_t err = { 0 };
	json_t *j = json_loads(text, 0, NULL);
	ent_ctx_t ctx = { .local = 1, .actor = "admin" };
	if (!j || ent_put(st, e, NULL, j, &ctx, NULL, &err))
		fz_die(text, &err);
	json_decref(j);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fz_quiet();
	fz_profiles();
	st = fz_open_store();
	fz_seed_site(st);
	/* the cloud owns what it sent (rev 5) */
	exec_sql("INSERT INTO sync_state(key, value) VALUES ('rev', '5') "
		 "ON CONFLICT(key) DO UPDATE SET value = excluded.value");
	/* local edits waiting for the push */
	local_put(ENT_BUILDING, "{\"id\":\"b1\",\"name\":\"Tower A (renamed)\",\"ground_floor\":\"G0\"}");
	local_put(ENT_PERSON, "{\"id\":\"p9\",\"kind\":\"resident\",\"apartment\":\"a102\",\"first_name\":\"Eve\"}");
	local_put(ENT_CREDENTIAL, "{\"id\":\"c9\",\"person\":\"p9\",\"type\":\"rf\",\"code\":\"RF909\"}");
	exec_sql("UPDATE local_changes SET change_id = 'fz-c' || seq");
	/* events to drain, one an alarm */
	exec_sql("INSERT INTO outbox(id, device, type, ts, data, is_alarm) VALUES "
		 "('0C11050B9814:e1', '0C11050B9814', 'access', 1700000000, '{\"method\":\"rf\"}', 0), "
		 "('0C11050B9814:e2', '0C11050B9814', 'alarm', 1700000001, '{\"kind\":\"tamper\"}', 1), "
		 "('gw:x1', NULL, 'door', 1700000002, '{}', 0)");
	exec_sql("INSERT INTO cloud_commands(id, op, target, args, state, received_at, updated_at) VALUES "
		 "('cmd1', 'reboot', '0C11050B9814', '{}', 'done', 1700000000, 1700000000)");
	fz_snapshot(st);
	en = engine_new(st);
	uv_loop_init(&loop);
	return 0;
}

/* One answer: "KIND STATUS\nBODY" */
static void one(cloudlink_t *c, const uint8_t *data, size_t size)
{
	static const char *const kinds[] = { "state", "changes", "events", "heartbeat", "commands", "result" };
	const uint8_t *nl = memchr(data, '\n', size);
	if (!nl || nl - data > 40)
		return;
	char head[48], kind[16] = "";
	memcpy(head, data, (size_t)(nl - data));
	head[nl - data] = '\0';
	long status = 200;
	if (strlen(head) == 1 && head[0] >= '0' && head[0] <= '5')
		snprintf(kind, sizeof kind, "%s", kinds[head[0] - '0']);
	else if (sscanf(head, "%15s %ld", kind, &status) < 1)
		return;
	cloud_handle_answer(c, kind, status, (const char *)nl + 1, size - (size_t)(nl - data) - 1);
	/* the store is usable afterwards: no transaction left open */
	if (store_in_tx(st)) {
		fprintf(stderr, "INVARIANT BROKEN: a transaction left open by the answer to %s\n", kind);
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fz_restore(st);
	/* a device link that never connects: device commands queue in its client */
	mqttlink_cfg_t mc = { .host = "127.0.0.1", .port = 1, .username = "gw", .client_id = "fuzz", .wan = "up" };
	mqttlink_t *ml = mqttlink_start(&loop, &mc, st, en);
	ctl_env_t env = { .st = st, .en = en, .started_ms = gh_mono_ms(), .wan = "up", .mqtt = ml };
	cloud_cfg_t cfg = { .url = "", .site = "site1", .token = "t" };
	/* standalone: no libcurl multi, so a page fetched ahead is never sent */
	cloudlink_t *c = cloud_start(&loop, &cfg, st, &env);
	if (!c)
		abort();
	/* answers separated by an empty line, handled in order by one link */
	for (int n = 0; size && n < 8; n++) {
		const uint8_t *sep = memmem(data, size, "\n\n", 2);
		size_t len = sep ? (size_t)(sep - data) : size;
		one(c, data, len);
		if (!sep)
			break;
		size -= len + 2;
		data = sep + 2;
	}
	cloud_stop(c);
	mqttlink_stop(ml);
	uv_run(&loop, UV_RUN_NOWAIT); /* the links' timers close */
	return 0;
}
