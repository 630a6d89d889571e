/* Device accounts on the broker through mosquitto's dynamic-security
 * plugin ($CONTROL/dynamic-security/v1): no broker restart. A short,
 * synchronous session with the gateway's own account, used by the CLI. */
#include "dynsec.h"

#include <mosquitto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "timeutil.h"

#define CONTROL "$CONTROL/dynamic-security/v1"

struct session {
	int connected, refused, answered;
	json_t *response;
};

static void on_connect(struct mosquitto *m, void *obj, int rc)
{
	struct session *s = obj;
	(void)m;
	if (rc)
		s->refused = rc;
	else
		s->connected = 1;
}

static void on_message(struct mosquitto *m, void *obj, const struct mosquitto_message *msg)
{
	struct session *s = obj;
	(void)m;
	if (strcmp(msg->topic, CONTROL "/response"))
		return;
	json_decref(s->response);
	s->response = json_loadb(msg->payload, (size_t)msg->payloadlen, 0, NULL);
	s->answered = 1;
}

/* One role per device: its own topics and the gateway's status, nothing else. */
static json_t *account_commands(const char *mac, const char *password)
{
	char role[32], own[64];
	snprintf(role, sizeof role, "dev-%s", mac);
	snprintf(own, sizeof own, "gatehouse/v1/dev/%s/#", mac);
	json_t *cmds = json_array();
	json_array_append_new(cmds, json_pack("{s:s,s:s}", "command", "deleteClient", "username", mac));
	json_array_append_new(cmds, json_pack("{s:s,s:s}", "command", "deleteRole", "rolename", role));
	json_array_append_new(cmds, json_pack("{s:s,s:s}", "command", "createRole", "rolename", role));
	static const char *acl[][2] = {
		{ "publishClientSend", NULL }, { "publishClientReceive", NULL }, { "subscribePattern", NULL },
		{ "unsubscribePattern", NULL }, { "subscribePattern", "gatehouse/v1/gw/status" },
		{ "publishClientReceive", "gatehouse/v1/gw/status" },
	};
	for (size_t i = 0; i < sizeof acl / sizeof acl[0]; i++)
		json_array_append_new(cmds, json_pack("{s:s,s:s,s:s,s:s,s:b}", "command", "addRoleACL",
						      "rolename", role, "acltype", acl[i][0], "topic",
						      acl[i][1] ? acl[i][1] : own, "allow", 1));
	json_array_append_new(cmds, json_pack("{s:s,s:s,s:s,s:[{s:s}]}", "command", "createClient",
					      "username", mac, "password", password, "roles",
					      "rolename", role));
	return cmds;
}

int dynsec_account(const dynsec_conn_t *c, const char *mac, const char *password, gh_err_t *err)
{
	static int inited;
	if (!inited) {
		mosquitto_lib_init();
		inited = 1;
	}
	struct session s = { 0 };
	struct mosquitto *m = mosquitto_new(NULL, true, &s);
	if (!m)
		return gh_err(err, 500, "mqtt", "", "cannot create an MQTT client");
	int rc = -1;
	json_t *cmds = NULL;
	mosquitto_username_pw_set(m, c->username, c->password);
	if (c->tls_ca && *c->tls_ca)
		mosquitto_tls_set(m, c->tls_ca, NULL, NULL, NULL, NULL);
	mosquitto_connect_callback_set(m, on_connect);
	mosquitto_message_callback_set(m, on_message);
	if (mosquitto_connect(m, c->host, c->port, 10) != MOSQ_ERR_SUCCESS) {
		gh_err(err, 503, "broker", "", "cannot reach the MQTT broker at %s:%d", c->host, c->port);
		goto out;
	}
	uint64_t end = gh_mono_ms() + 5000;
	while (!s.connected && !s.refused && gh_mono_ms() < end)
		if (mosquitto_loop(m, 100, 1) != MOSQ_ERR_SUCCESS)
			break;
	if (!s.connected) {
		gh_err(err, 503, "broker", "", "the MQTT broker refused the gateway's account: %s",
		       s.refused ? mosquitto_connack_string(s.refused) : "no answer");
		goto out;
	}
	mosquitto_subscribe(m, NULL, CONTROL "/response", 1);
	cmds = password ? account_commands(mac, password)
			: json_pack("[{s:s,s:s},{s:s,s:s+}]", "command", "deleteClient", "username", mac,
				    "command", "deleteRole", "rolename", "dev-", mac);
	json_t *doc = json_pack("{s:O}", "commands", cmds);
	char *txt = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	/* give the subscription a moment to be in place before the answer */
	for (int i = 0; i < 3; i++)
		mosquitto_loop(m, 20, 1);
	mosquitto_publish(m, NULL, CONTROL, (int)strlen(txt), txt, 1, false);
	free(txt);
	while (!s.answered && gh_mono_ms() < end)
		if (mosquitto_loop(m, 100, 1) != MOSQ_ERR_SUCCESS)
			break;
	if (!s.answered) {
		gh_err(err, 503, "broker", "", "no answer from the broker's dynamic-security plugin");
		goto out;
	}
	/* deleteClient/deleteRole of what does not exist yet may fail; the
	 * commands that create must not */
	size_t i;
	json_t *r;
	rc = 0;
	json_array_foreach(json_object_get(s.response, "responses"), i, r) {
		const char *cmd = json_string_value(json_object_get(r, "command"));
		const char *e = json_string_value(json_object_get(r, "error"));
		if (e && cmd && strncmp(cmd, "delete", 6)) {
			rc = gh_err(err, 502, "broker", "", "dynamic-security %s failed: %s", cmd, e);
			break;
		}
	}
out:
	json_decref(cmds);
	json_decref(s.response);
	mosquitto_disconnect(m);
	mosquitto_destroy(m);
	return rc;
}
