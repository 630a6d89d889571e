/* MQTT payload handling (daemon/mqttlink.c, reqs.c, sync.c, callroute.c):
 * mqttlink_handle, what libmosquitto's on_message calls for every message
 * on gatehouse/v1/dev/+/{status,event,req,cmd/ack}, driven with a real
 * store (a seeded site) and engine. The link is started but its loop never
 * runs, so nothing connects: publishes (responses, commands) queue in the
 * unconnected client and go with it when the link is stopped.
 *
 * Input: the topic, a newline, the payload (MQTT.md); several messages are
 * separated by an empty line and handled in order. A topic of a single
 * character 0-3 stands for status, event, req, cmd/ack of the seeded door
 * phone, 4-7 for the indoor monitor, 8/9 for event/req of the guard phone.
 * After each message the engine's pass is committed and the acks published,
 * as the daemon does at the end of a loop pass. The device link's WAN state
 * is "up" for odd-sized inputs, else "down". */
#include <uv.h>

#include "engine.h"
#include "fuzz_common.h"
#include "mqttlink.h"

static store_t *st;
static engine_t *en;
static uv_loop_t loop;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fz_quiet();
	fz_profiles();
	st = fz_open_store();
	fz_seed_site(st);
	/* the monitor and the guard phone are online (call routes reach them) */
	gh_err_t err = { 0 };
	if (store_exec(st, "INSERT INTO presence(device, online, model, fw, ip, last_seen, since) VALUES "
			   "('" FZ_IM "', 1, 'M', '1.0', '192.168.1.21', 1700000000, 1700000000), "
			   "('" FZ_GP "', 1, 'G', '1.0', '192.168.1.22', 1700000000, 1700000000)",
		       &err))
		fz_die("presence", &err);
	fz_snapshot(st);
	en = engine_new(st);
	engine_batch(en, 1); /* as the daemon runs it */
	uv_loop_init(&loop);
	return 0;
}

static const char *short_topic(char c)
{
	static const char *const t[] = {
		"gatehouse/v1/dev/" FZ_DP "/status", "gatehouse/v1/dev/" FZ_DP "/event",
		"gatehouse/v1/dev/" FZ_DP "/req",    "gatehouse/v1/dev/" FZ_DP "/cmd/ack",
		"gatehouse/v1/dev/" FZ_IM "/status", "gatehouse/v1/dev/" FZ_IM "/event",
		"gatehouse/v1/dev/" FZ_IM "/req",    "gatehouse/v1/dev/" FZ_IM "/cmd/ack",
		"gatehouse/v1/dev/" FZ_GP "/event",  "gatehouse/v1/dev/" FZ_GP "/req",
	};
	return c >= '0' && c <= '9' ? t[c - '0'] : NULL;
}

/* One message: "TOPIC\nPAYLOAD", then the pass's commit */
static void one(mqttlink_t *l, const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	if (!nl || nl - data > 256)
		return;
	char *topic = fz_strndup(data, (size_t)(nl - data));
	/* libmosquitto hands out topics as C strings: one with a NUL inside
	 * arrives cut there */
	const char *t = strlen(topic) == 1 && short_topic(topic[0]) ? short_topic(topic[0]) : topic;
	size_t plen = size - (size_t)(nl - data) - 1;
	/* the payload in a buffer of its own size, as libmosquitto has it */
	void *payload = malloc(plen ? plen : 1);
	memcpy(payload, nl + 1, plen);
	mqttlink_handle(l, t, payload, (int)plen);
	free(payload);
	gh_err_t err = { 0 };
	if (engine_flush(en, &err) == 0)
		mqttlink_after_commit(l);
	else
		mqttlink_commit_failed(l);
	free(topic);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fz_restore(st);
	mqttlink_cfg_t cfg = { .host = "127.0.0.1", .port = 1, .username = "gw", .client_id = "fuzz",
			       .wan = (size & 1) ? "up" : "down" };
	mqttlink_t *l = mqttlink_start(&loop, &cfg, st, en);
	if (!l)
		abort();
	/* messages separated by an empty line, handled in order */
	for (int n = 0; size && n < 8; n++) {
		const uint8_t *sep = memmem(data, size, "\n\n", 2);
		size_t len = sep ? (size_t)(sep - data) : size;
		one(l, data, len);
		if (!sep)
			break;
		size -= len + 2;
		data = sep + 2;
	}
	mqttlink_stop(l);
	uv_run(&loop, UV_RUN_NOWAIT); /* the link's timer closes */
	return 0;
}
