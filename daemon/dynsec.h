/* Broker accounts of devices (MQTT.md: username = MAC, a password issued by
 * the gateway, an ACL role confining the device to its own topics), managed
 * through mosquitto's dynamic-security plugin while the broker runs. */
#ifndef GH_DYNSEC_H
#define GH_DYNSEC_H

#include <jansson.h>

#include "err.h"

typedef struct dynsec_conn {
	const char *host;
	int port;
	const char *username; /* the gateway's account (dynamic-security admin) */
	const char *password;
	const char *tls_ca;
} dynsec_conn_t;

/* Creates (or replaces) the account of MAC with PASSWORD and its role
 * dev-MAC; with PASSWORD NULL removes both. Errors: 503 broker unreachable
 * or refusing the gateway, 502 the plugin refused a command. */
int dynsec_account(const dynsec_conn_t *c, const char *mac, const char *password, gh_err_t *err);

#endif
