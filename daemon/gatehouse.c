/* gatehouse: the admin CLI (ADMIN.md) on the daemon's database. Edits made
 * here are local edits: validated by the one validator, audited, and
 * journaled for the cloud. Decisions go to the running daemon through its
 * control socket when it is up, else are made in-process. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "config.h"
#include "ctl.h"
#include "disk.h"
#include "diagnose.h"
#include "dynsec.h"
#include "logcsv.h"
#include "engine.h"
#include "jutil.h"
#include "entity.h"
#include "import.h"
#include "log.h"
#include "profile.h"
#include "reqs.h"
#include "status.h"
#include "store.h"
#include "timeutil.h"
#include "users.h"

static gh_config_t g_cfg;
static const ent_ctx_t g_ctx = { .local = 1, .actor = "cli" };

static int device_account(const char *mac, const char *password, gh_err_t *err);

static void usage(FILE *f)
{
	fprintf(f,
		"usage: gatehouse --config FILE COMMAND ...\n"
		"  status [--json|--text]   (exit 4 when something is broken)\n"
		"  user add NAME --role admin|manager|viewer   (password on stdin)\n"
		"  user passwd NAME | user del NAME\n"
		"  import residents FILE.csv [--partial]\n"
		"  access check --device MAC --method M --code C [--apt APT] [--relay N] [--local]\n"
		"  emergency on|off\n"
		"  get ENTITY ID | list ENTITY [--limit N] [--cursor ID]\n"
		"  put ENTITY [FILE.json|-]  (an object, or an array of objects)\n"
		"  delete ENTITY ID | apartment reset ID\n"
		"  device add MAC --type N --name NAME   (prints its MQTT password once)\n"
		"  device passwd MAC\n"
		"  device command MAC[,MAC...]|all reboot|reset|autop|message|relay.open [ARGS-JSON]\n"
		"  logs door [--limit N]\n"
		"  export logs [--log door|calls|alarms|audit|detections] [--from T] [--to T] FILE.csv|-\n"
		"  cloud conflicts|rejected [--limit N] | cloud retry\n"
		"  relay open DEVICE_OR_BOARD N        (remote door open, through the daemon)\n"
		"  backup FILE | restore FILE (daemon stopped)\n");
}

static void print_json(const json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_ENCODE_ANY);
	if (s)
		puts(s);
	free(s);
}

static int fail(const gh_err_t *e)
{
	/* messages name their field already */
	fprintf(stderr, "gatehouse: %s\n", e->message);
	return e->status == 404 ? 3 : 1;
}

static store_t *open_store(void)
{
	gh_err_t err = { 0 };
	if (profiles_load(g_cfg.profiles_dir, &err))
		fprintf(stderr, "gatehouse: warning: %s\n", err.message);
	store_t *st = store_open(g_cfg.db, &err);
	if (!st)
		fprintf(stderr, "gatehouse: %s\n", err.message);
	return st;
}

/* Sends one request line to the daemon; NULL if it is not running. */
static json_t *daemon_request(const json_t *req)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return NULL;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(g_cfg.control_socket) >= sizeof sa.sun_path) {
		close(fd);
		return NULL;
	}
	memcpy(sa.sun_path, g_cfg.control_socket, strlen(g_cfg.control_socket) + 1);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa)) {
		close(fd);
		return NULL;
	}
	char *line = json_dumps(req, JSON_COMPACT);
	size_t n = strlen(line);
	int ok = write(fd, line, n) == (ssize_t)n && write(fd, "\n", 1) == 1;
	free(line);
	char buf[65536];
	size_t got = 0;
	while (ok && got < sizeof buf - 1) {
		ssize_t r = read(fd, buf + got, sizeof buf - 1 - got);
		if (r <= 0)
			break;
		got += (size_t)r;
		if (memchr(buf, '\n', got))
			break;
	}
	close(fd);
	buf[got] = '\0';
	return got ? json_loads(buf, 0, NULL) : NULL;
}

static int read_password(char *buf, size_t len)
{
	struct termios old, quiet;
	int tty = isatty(STDIN_FILENO);
	if (tty) {
		fprintf(stderr, "password: ");
		tcgetattr(STDIN_FILENO, &old);
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
	}
	char *r = fgets(buf, (int)len, stdin);
	if (tty) {
		tcsetattr(STDIN_FILENO, TCSANOW, &old);
		fputc('\n', stderr);
	}
	if (!r)
		return -1;
	buf[strcspn(buf, "\r\n")] = '\0';
	return 0;
}

/* JSON for scripts (or with --json), words for a person at a terminal (or
 * with --text): a summary and each problem with what to check. */
static int cmd_status(int argc, char **argv)
{
	int text = isatty(STDOUT_FILENO);
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			text = 0;
		else if (!strcmp(argv[i], "--text"))
			text = 1;
		else {
			fprintf(stderr, "gatehouse: status takes --json or --text, not %s\n", argv[i]);
			return 2;
		}
	}
	json_t *req = json_pack("{s:s}", "op", "status");
	json_t *d = daemon_request(req);
	json_decref(req);
	if (d) {
		json_object_del(d, "ok");
		json_object_set_new(d, "daemon", json_string("running"));
	} else {
		store_t *st = open_store();
		if (!st)
			return 1;
		d = status_json(st, -1, g_cfg.cloud_url[0] ? "down" : "standalone");
		store_close(st);
		json_object_set_new(d, "daemon", json_string("stopped"));
		json_object_set_new(d, "problems", status_problems(d));
	}
	if (text)
		status_print(stdout, d);
	else
		print_json(d);
	int bad = 0;
	size_t i;
	json_t *p;
	json_array_foreach(json_object_get(d, "problems"), i, p) bad |=
	    !strcmp(json_string_value(json_object_get(p, "level")) ? json_string_value(json_object_get(p, "level")) : "",
		    "error");
	json_decref(d);
	return bad ? 4 : 0;
}

static int cmd_user(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	const char *sub = argv[0], *name = argv[1], *role = NULL;
	for (int i = 2; i + 1 < argc; i++)
		if (!strcmp(argv[i], "--role"))
			role = argv[i + 1];
	store_t *st = open_store();
	if (!st)
		return 1;
	gh_err_t err = { 0 };
	char pw[300];
	int rc;
	if (!strcmp(sub, "add") || !strcmp(sub, "passwd")) {
		if (read_password(pw, sizeof pw)) {
			fprintf(stderr, "gatehouse: no password on stdin\n");
			store_close(st);
			return 2;
		}
		rc = !strcmp(sub, "add") ? users_add(st, name, role, pw, "cli", &err)
					 : users_passwd(st, name, pw, "cli", &err);
		memset(pw, 0, sizeof pw);
	} else if (!strcmp(sub, "del")) {
		rc = users_del(st, name, "cli", &err);
	} else {
		store_close(st);
		usage(stderr);
		return 2;
	}
	store_close(st);
	if (rc)
		return fail(&err);
	printf("user %s: %s done\n", name, sub);
	return 0;
}

static int cmd_import(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[0], "residents")) {
		usage(stderr);
		return 2;
	}
	int partial = 0;
	const char *path = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--partial"))
			partial = 1;
		else if (!path)
			path = argv[i];
	}
	if (!path) {
		usage(stderr);
		return 2;
	}
	FILE *f = strcmp(path, "-") ? fopen(path, "r") : stdin;
	if (!f) {
		fprintf(stderr, "gatehouse: %s: %s\n", path, strerror(errno));
		return 1;
	}
	store_t *st = open_store();
	if (!st) {
		if (f != stdin)
			fclose(f);
		return 1;
	}
	const ent_ctx_t ctx = { .local = 1, .actor = "import" };
	json_t *report = NULL;
	gh_err_t err = { 0 };
	int rc = import_residents(st, f, &ctx, partial, &report, &err);
	if (f != stdin)
		fclose(f);
	if (report)
		print_json(report);
	json_int_t failed = json_integer_value(json_object_get(report, "failed"));
	json_decref(report);
	store_close(st);
	if (rc)
		return fail(&err);
	if (failed) {
		fprintf(stderr, "gatehouse: %lld rows failed (listed above); the other rows were imported\n",
			(long long)failed);
		return 1;
	}
	return 0;
}

static int cmd_access(int argc, char **argv)
{
	if (argc < 1 || strcmp(argv[0], "check")) {
		usage(stderr);
		return 2;
	}
	static const struct option opts[] = { { "device", required_argument, NULL, 'd' },
					      { "board", required_argument, NULL, 'b' },
					      { "method", required_argument, NULL, 'm' },
					      { "code", required_argument, NULL, 'c' },
					      { "apt", required_argument, NULL, 'a' },
					      { "relay", required_argument, NULL, 'r' },
					      { "local", no_argument, NULL, 'l' },
					      { NULL, 0, NULL, 0 } };
	json_t *req = json_pack("{s:s}", "op", "access.check");
	int local = 0, o;
	optind = 1;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'd': json_object_set_new(req, "device", json_string(optarg)); break;
		case 'b': json_object_set_new(req, "board", json_string(optarg)); break;
		case 'm': json_object_set_new(req, "method", json_string(optarg)); break;
		case 'c': json_object_set_new(req, "code", json_string(optarg)); break;
		case 'a': json_object_set_new(req, "apt", json_string(optarg)); break;
		case 'r': {
			char *end;
			long n = strtol(optarg, &end, 10);
			if (*end || n < 1 || n > 256) {
				fprintf(stderr, "gatehouse: --relay must be 1..256\n");
				json_decref(req);
				return 2;
			}
			json_object_set_new(req, "relay", json_integer(n));
			break;
		}
		case 'l': local = 1; break;
		default: json_decref(req); usage(stderr); return 2;
		}
	}
	json_t *resp = local ? NULL : daemon_request(req);
	const char *via = "daemon";
	if (!resp) {
		store_t *st = open_store();
		if (!st) {
			json_decref(req);
			return 1;
		}
		engine_t *en = engine_new(st);
		ctl_env_t env = { .st = st, .en = en, .started_ms = gh_mono_ms() };
		resp = ctl_handle(&env, req);
		engine_free(en);
		store_close(st);
		via = "local";
	}
	json_decref(req);
	json_object_set_new(resp, "via", json_string(via));
	print_json(resp);
	int rc = json_is_true(json_object_get(resp, "ok")) ? (json_is_true(json_object_get(resp, "granted")) ? 0 : 4) : 1;
	json_decref(resp);
	return rc;
}

static int cmd_emergency(int argc, char **argv)
{
	if (argc < 1 || (strcmp(argv[0], "on") && strcmp(argv[0], "off"))) {
		usage(stderr);
		return 2;
	}
	json_t *req = json_pack("{s:s,s:s}", "op", "emergency", "state", argv[0]);
	json_t *resp = daemon_request(req);
	if (!resp) {
		store_t *st = open_store();
		if (!st) {
			json_decref(req);
			return 1;
		}
		engine_t *en = engine_new(st);
		ctl_env_t env = { .st = st, .en = en };
		resp = ctl_handle(&env, req);
		engine_free(en);
		store_close(st);
	}
	json_decref(req);
	print_json(resp);
	int rc = json_is_true(json_object_get(resp, "ok")) ? 0 : 1;
	json_decref(resp);
	return rc;
}

/* Prints OUT (or the error), frees it and closes the store: the end of
 * every read command. */
static int print_and_close(store_t *st, int rc, json_t *out, const gh_err_t *err)
{
	if (!rc)
		print_json(out);
	json_decref(out);
	store_close(st);
	return rc ? fail(err) : 0;
}

static int entity_arg(const char *name)
{
	int e = ent_parse(name);
	if (e < 0)
		fprintf(stderr, "gatehouse: unknown entity \"%s\"\n", name);
	return e;
}

static int cmd_get(int argc, char **argv)
{
	int e;
	if (argc < 2 || (e = entity_arg(argv[0])) < 0)
		return 2;
	store_t *st = open_store();
	if (!st)
		return 1;
	json_t *out = NULL;
	gh_err_t err = { 0 };
	int rc = ent_get(st, (ent_t)e, argv[1], &out, &err);
	return print_and_close(st, rc, out, &err);
}

static int cmd_list(int argc, char **argv)
{
	int e;
	if (argc < 1 || (e = entity_arg(argv[0])) < 0)
		return 2;
	int limit = 100;
	const char *cursor = NULL;
	for (int i = 1; i + 1 < argc; i++) {
		if (!strcmp(argv[i], "--limit"))
			limit = (int)strtol(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--cursor"))
			cursor = argv[i + 1];
	}
	store_t *st = open_store();
	if (!st)
		return 1;
	json_t *out = NULL;
	gh_err_t err = { 0 };
	int rc = ent_list(st, (ent_t)e, cursor, limit, &out, &err);
	return print_and_close(st, rc, out, &err);
}

static int cmd_put(int argc, char **argv)
{
	int e;
	if (argc < 1 || (e = entity_arg(argv[0])) < 0)
		return 2;
	json_error_t je;
	json_t *in = (argc < 2 || !strcmp(argv[1], "-")) ? json_loadf(stdin, 0, &je)
							 : json_load_file(argv[1], 0, &je);
	if (!in) {
		fprintf(stderr, "gatehouse: %s:%d: not JSON: %s\n", argc < 2 ? "stdin" : argv[1], je.line, je.text);
		return 1;
	}
	store_t *st = open_store();
	if (!st) {
		json_decref(in);
		return 1;
	}
	json_t *list = json_is_array(in) ? json_incref(in) : json_pack("[O]", in);
	size_t i;
	json_t *x;
	int rc = 0;
	gh_err_t err = { 0 };
	store_begin(st);
	json_array_foreach(list, i, x) {
		json_t *out = NULL;
		if (ent_put(st, (ent_t)e, NULL, x, &g_ctx, &out, &err)) {
			fprintf(stderr, "gatehouse: %s item %zu (id %s): %s\n", ent_name((ent_t)e), i,
				json_is_string(json_object_get(x, "id")) ? json_string_value(json_object_get(x, "id")) : "new",
				err.message);
			rc = err.status == 404 ? 3 : 1;
			break;
		}
		if (json_array_size(list) == 1)
			print_json(out);
		json_decref(out);
	}
	if (rc)
		store_rollback(st);
	else if (store_commit(st))
		rc = 1;
	if (!rc && json_array_size(list) > 1)
		printf("%zu %s stored\n", json_array_size(list), ent_plural((ent_t)e));
	json_decref(list);
	json_decref(in);
	store_close(st);
	return rc;
}

static int cmd_delete(int argc, char **argv)
{
	int e;
	if (argc < 2 || (e = entity_arg(argv[0])) < 0)
		return 2;
	store_t *st = open_store();
	if (!st)
		return 1;
	gh_err_t err = { 0 };
	int rc = ent_delete(st, (ent_t)e, argv[1], &g_ctx, &err);
	store_close(st);
	if (rc)
		return fail(&err);
	char mac[13];
	if (e == ENT_DEVICE && g_cfg.manage_accounts && mac_normalize(argv[1], mac) == 0 &&
	    device_account(mac, NULL, &err))
		fprintf(stderr, "gatehouse: warning: device deleted, but its broker account was not "
				"removed: %s\n", err.message);
	printf("%s %s deleted\n", ent_name((ent_t)e), argv[1]);
	return 0;
}

static int cmd_apartment(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[0], "reset")) {
		usage(stderr);
		return 2;
	}
	store_t *st = open_store();
	if (!st)
		return 1;
	gh_err_t err = { 0 };
	int rc = ent_apartment_reset(st, argv[1], &g_ctx, &err);
	store_close(st);
	if (rc)
		return fail(&err);
	printf("apartment %s reset\n", argv[1]);
	return 0;
}

/* The broker account of a device (with [mqtt] manage_accounts): PASSWORD
 * NULL removes it. 0 when accounts are not managed here. */
static int device_account(const char *mac, const char *password, gh_err_t *err)
{
	if (!g_cfg.manage_accounts)
		return 0;
	char gwpw[256] = "";
	if (g_cfg.mqtt_password_file[0] &&
	    config_read_secret(g_cfg.mqtt_password_file, gwpw, sizeof gwpw))
		return gh_err(err, 500, "config", "", "cannot read [mqtt] password_file %s",
			      g_cfg.mqtt_password_file);
	dynsec_conn_t c = { .host = g_cfg.mqtt_host, .port = g_cfg.mqtt_port,
			    .username = g_cfg.mqtt_username, .password = gwpw[0] ? gwpw : NULL,
			    .tls_ca = g_cfg.mqtt_tls_ca };
	int rc = dynsec_account(&c, mac, password, err);
	memset(gwpw, 0, sizeof gwpw);
	return rc;
}

static int cmd_device(int argc, char **argv)
{
	if (argc >= 3 && !strcmp(argv[0], "command")) {
		/* device command MAC[,MAC...]|all OP [ARGS-JSON]: through the daemon */
		json_t *req = json_pack("{s:s,s:s}", "op", "command", "command", argv[2]);
		if (!strcmp(argv[1], "all")) {
			json_object_set_new(req, "devices", json_string("all"));
		} else {
			json_t *list = json_array();
			char buf[8192];
			snprintf(buf, sizeof buf, "%s", argv[1]);
			for (char *p = buf, *comma; p && *p; p = comma ? comma + 1 : NULL) {
				comma = strchr(p, ',');
				if (comma)
					*comma = '\0';
				json_array_append_new(list, json_string(p));
			}
			json_object_set_new(req, "devices", list);
		}
		if (argc >= 4) {
			json_error_t je;
			json_t *args = json_loads(argv[3], 0, &je);
			if (!json_is_object(args)) {
				fprintf(stderr, "gatehouse: command arguments must be a JSON object: %s\n", je.text);
				json_decref(args);
				json_decref(req);
				return 2;
			}
			json_object_set_new(req, "args", args);
		}
		json_t *resp = daemon_request(req);
		json_decref(req);
		if (!resp) {
			fprintf(stderr, "gatehouse: commands go through the running daemon, which is not running\n");
			return 1;
		}
		print_json(resp);
		int rc = json_is_true(json_object_get(resp, "ok")) ? 0 : 1;
		json_decref(resp);
		return rc;
	}
	if (argc >= 2 && !strcmp(argv[0], "passwd")) {
		/* a new MQTT password for a registered device, shown once */
		char mac[13], pw[40];
		gh_err_t err = { 0 };
		store_t *st = open_store();
		if (!st)
			return 1;
		int known = mac_normalize(argv[1], mac) == 0 && ent_exists_pub(st, ENT_DEVICE, mac) == 1;
		store_close(st);
		if (!known) {
			fprintf(stderr, "gatehouse: no device %s\n", argv[1]);
			return 3;
		}
		if (!g_cfg.manage_accounts) {
			fprintf(stderr, "gatehouse: [mqtt] manage_accounts is off: accounts are managed elsewhere\n");
			return 1;
		}
		gh_random_hex(pw, 16);
		if (device_account(mac, pw, &err))
			return fail(&err);
		printf("device %s: new MQTT password (shown once): %s\n", mac, pw);
		return 0;
	}
	if (argc < 2 || strcmp(argv[0], "add")) {
		usage(stderr);
		return 2;
	}
	long type = -1;
	const char *name = NULL;
	for (int i = 2; i + 1 < argc; i++) {
		if (!strcmp(argv[i], "--type"))
			type = strtol(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--name"))
			name = argv[i + 1];
	}
	if (type < 0 || !name) {
		fprintf(stderr, "gatehouse: device add needs --type N and --name NAME\n");
		return 2;
	}
	store_t *st = open_store();
	if (!st)
		return 1;
	gh_err_t err = { 0 };
	json_t *mac = json_pack("{s:s}", "id", argv[1]);
	json_t *dev = json_pack("{s:s,s:i,s:s}", "id", argv[1], "type", (int)type, "name", name);
	json_t *out = NULL;
	int rc = store_begin(st);
	/* the installer registering a device adds its MAC to the library too */
	json_t *have = NULL;
	if (!rc && ent_get(st, ENT_MAC, argv[1], &have, NULL))
		rc = ent_put(st, ENT_MAC, NULL, mac, &g_ctx, NULL, &err);
	json_decref(have);
	if (!rc)
		rc = ent_put(st, ENT_DEVICE, NULL, dev, &g_ctx, &out, &err);
	/* the broker account is made before the commit: a device is registered
	 * with its account or not at all */
	char pw[40] = "";
	if (!rc && g_cfg.manage_accounts) {
		gh_random_hex(pw, 16);
		rc = device_account(json_string_value(json_object_get(out, "id")), pw, &err);
	}
	if (rc)
		store_rollback(st);
	else
		rc = store_commit(st);
	json_decref(mac);
	json_decref(dev);
	store_close(st);
	if (rc) {
		json_decref(out);
		return fail(&err);
	}
	if (pw[0])
		json_object_set_new(out, "mqtt_password", json_string(pw));
	print_json(out);
	json_decref(out);
	if (pw[0])
		fprintf(stderr, "note: the MQTT password is shown this once; "
				"'gatehouse device passwd MAC' issues a new one\n");
	return 0;
}

static int cmd_relay(int argc, char **argv)
{
	if (argc < 3 || strcmp(argv[0], "open")) {
		usage(stderr);
		return 2;
	}
	char *end;
	long n = strtol(argv[2], &end, 10);
	if (*end || n < 1 || n > 256) {
		fprintf(stderr, "gatehouse: the relay number must be 1..256\n");
		return 2;
	}
	json_t *req = json_pack("{s:s,s:s,s:i,s:s}", "op", "relay.open", "target", argv[1], "relay", (int)n,
				"actor", "cli");
	json_t *resp = daemon_request(req);
	json_decref(req);
	if (!resp) {
		fprintf(stderr, "gatehouse: opening a door goes through the running daemon, which is not running\n");
		return 1;
	}
	print_json(resp);
	int rc = json_is_true(json_object_get(resp, "ok")) ? 0 : 1;
	json_decref(resp);
	return rc;
}

static int cmd_logs(int argc, char **argv)
{
	if (argc < 1 || strcmp(argv[0], "door")) {
		usage(stderr);
		return 2;
	}
	int limit = 20;
	for (int i = 1; i + 1 < argc; i++)
		if (!strcmp(argv[i], "--limit"))
			limit = (int)strtol(argv[i + 1], NULL, 10);
	store_t *st = open_store();
	if (!st)
		return 1;
	sqlite3_stmt *s = NULL;
	sqlite3_prepare_v2(store_db(st), "SELECT id, ts, device, relay, board, channel, apt, initiator, "
					 "COALESCE(method, type), COALESCE(code, ''), result, reason FROM door_logs ORDER BY id DESC LIMIT ?",
			   -1, &s, NULL);
	sqlite3_bind_int(s, 1, limit);
	while (sqlite3_step(s) == SQLITE_ROW) {
		char when[32];
		struct tm tm;
		gh_localtime(sqlite3_column_int64(s, 1), &tm);
		strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
		printf("%6lld %s %-12s relay %-2d apt %-6s %-20s %-8s %-10s %-7s %s\n",
		       (long long)sqlite3_column_int64(s, 0), when,
		       sqlite3_column_text(s, 2) ? (const char *)sqlite3_column_text(s, 2)
						 : (const char *)sqlite3_column_text(s, 4),
		       sqlite3_column_int(s, sqlite3_column_type(s, 2) == SQLITE_NULL ? 5 : 3),
		       sqlite3_column_text(s, 6) ? (const char *)sqlite3_column_text(s, 6) : "-",
		       sqlite3_column_text(s, 7) ? (const char *)sqlite3_column_text(s, 7) : "-",
		       sqlite3_column_text(s, 8), sqlite3_column_text(s, 9), sqlite3_column_text(s, 10),
		       sqlite3_column_text(s, 11) ? (const char *)sqlite3_column_text(s, 11) : "");
	}
	sqlite3_finalize(s);
	store_close(st);
	return 0;
}

/* --from/--to: Unix seconds or ISO-8601; a bare date as --to means the
 * end of that day (the whole day is exported). */
static int parse_when(const char *opt, const char *v, int end_of_day, int64_t *out)
{
	if (*v && strspn(v, "0123456789") == strlen(v)) {
		*out = strtoll(v, NULL, 10);
		return 0;
	}
	json_t *j = json_string(v);
	int rc = gh_ts_parse(j, out);
	json_decref(j);
	if (rc) {
		fprintf(stderr, "gatehouse: %s %s: expected Unix seconds or a date/time like 2026-11-01 or "
				"2026-11-01T08:00:00Z\n", opt, v);
		return -1;
	}
	if (end_of_day && strlen(v) == 10)
		*out += 86399;
	return 0;
}

/* export logs [--log door|calls|alarms|audit|detections] [--from T] [--to T] FILE.csv|-
 * the same CSV as the API's export, oldest first; safe while the daemon runs
 * (a read transaction of its own). */
static int cmd_export(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[0], "logs")) {
		usage(stderr);
		return 2;
	}
	const char *log = "door", *file = NULL;
	int64_t from = 0, to = INT64_MAX;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--log") && i + 1 < argc)
			log = argv[++i];
		else if (!strcmp(argv[i], "--from") && i + 1 < argc) {
			if (parse_when("--from", argv[++i], 0, &from))
				return 2;
		} else if (!strcmp(argv[i], "--to") && i + 1 < argc) {
			if (parse_when("--to", argv[++i], 1, &to))
				return 2;
		} else if (!file && (argv[i][0] != '-' || !strcmp(argv[i], "-")))
			file = argv[i];
		else {
			fprintf(stderr, "gatehouse: export logs: unexpected %s\n", argv[i]);
			return 2;
		}
	}
	const char *table = log_table(log);
	if (!table) {
		fprintf(stderr, "gatehouse: --log %s: logs are door, calls, alarms, audit or detections\n", log);
		return 2;
	}
	if (!file) {
		fprintf(stderr, "gatehouse: export logs needs a file to write (or - for standard output)\n");
		return 2;
	}
	if (from > to) {
		fprintf(stderr, "gatehouse: --from is after --to: nothing to export\n");
		return 2;
	}
	store_t *st = open_store();
	if (!st)
		return 1;
	char sql[160];
	snprintf(sql, sizeof sql, "SELECT * FROM %s WHERE ts >= ? AND ts <= ? ORDER BY id", table);
	sqlite3_stmt *q = NULL;
	if (sqlite3_prepare_v2(store_db(st), sql, -1, &q, NULL) != SQLITE_OK) {
		fprintf(stderr, "gatehouse: %s\n", sqlite3_errmsg(store_db(st)));
		store_close(st);
		return 1;
	}
	sqlite3_bind_int64(q, 1, from);
	sqlite3_bind_int64(q, 2, to);
	/* written next to the target and renamed: a failed export leaves no half file */
	char tmp[4200];
	FILE *f = stdout;
	if (strcmp(file, "-")) {
		snprintf(tmp, sizeof tmp, "%s.part", file);
		f = fopen(tmp, "w");
		if (!f) {
			fprintf(stderr, "gatehouse: cannot write %s: %s\n", tmp, strerror(errno));
			sqlite3_finalize(q);
			store_close(st);
			return 1;
		}
	}
	long rows = csv_rows(q, f);
	sqlite3_finalize(q);
	store_close(st);
	int bad = rows < 0 || ferror(f);
	if (f != stdout) {
		bad |= fclose(f) != 0;
		if (bad || rename(tmp, file)) {
			fprintf(stderr, "gatehouse: export to %s failed%s%s\n", file, bad ? "" : ": ",
				bad ? "" : strerror(errno));
			unlink(tmp);
			return 1;
		}
		fprintf(stderr, "%ld %s logs written to %s\n", rows, log, file);
	} else if (bad) {
		fprintf(stderr, "gatehouse: export failed part way\n");
		return 1;
	}
	return 0;
}

/* The cloud link's lists an admin looks at: local edits the cloud refused
 * (with both versions), events it rejected; "retry" queues those again. */
static int cmd_cloud(int argc, char **argv)
{
	const char *what = argc >= 1 ? argv[0] : "";
	int limit = 100;
	for (int i = 1; i + 1 < argc; i++)
		if (!strcmp(argv[i], "--limit"))
			limit = (int)strtol(argv[i + 1], NULL, 10);
	const char *sql = !strcmp(what, "conflicts")
				  ? "SELECT json_group_array(json_object('id', id, 'ts', ts, 'change_id', change_id, "
				    "'entity', entity, 'entity_id', eid, 'local', json(local), 'cloud', json(cloud), "
				    "'error', error)) FROM (SELECT * FROM conflicts ORDER BY id DESC LIMIT ?)"
			  : !strcmp(what, "rejected")
				  ? "SELECT json_group_array(json_object('id', id, 'device', device, 'type', type, 'ts', ts, "
				    "'error', error, 'data', json(data))) FROM (SELECT * FROM outbox WHERE state = 'rejected' "
				    "ORDER BY seq LIMIT ?)"
			  : !strcmp(what, "retry") ? "UPDATE outbox SET state = 'pending', error = NULL WHERE state = 'rejected' "
						     "AND ?1 = ?1"
						   : NULL;
	if (!sql) {
		usage(stderr);
		return 2;
	}
	store_t *st = open_store();
	if (!st)
		return 1;
	sqlite3_stmt *s = NULL;
	int rc = 1;
	if (sqlite3_prepare_v2(store_db(st), sql, -1, &s, NULL) == SQLITE_OK) {
		sqlite3_bind_int(s, 1, limit);
		int step = sqlite3_step(s);
		if (step == SQLITE_ROW) {
			json_t *j = json_loads((const char *)sqlite3_column_text(s, 0), 0, NULL);
			print_json(j);
			json_decref(j);
			rc = 0;
		} else if (step == SQLITE_DONE) {
			printf("%d rejected events queued again\n", sqlite3_changes(store_db(st)));
			rc = 0;
		}
	}
	if (rc)
		fprintf(stderr, "gatehouse: %s\n", sqlite3_errmsg(store_db(st)));
	sqlite3_finalize(s);
	store_close(st);
	return rc;
}

static int copy_db(sqlite3 *from, sqlite3 *to)
{
	sqlite3_backup *b = sqlite3_backup_init(to, "main", from, "main");
	if (!b)
		return -1;
	int rc;
	/* in steps, so a running daemon is never blocked for long */
	while ((rc = sqlite3_backup_step(b, 256)) == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
		sqlite3_sleep(5);
	sqlite3_backup_finish(b);
	return rc == SQLITE_DONE ? 0 : -1;
}

static int cmd_backup(const char *file, int restore)
{
	if (restore) {
		json_t *req = json_pack("{s:s}", "op", "status");
		json_t *d = daemon_request(req);
		json_decref(req);
		if (d) {
			json_decref(d);
			fprintf(stderr, "gatehouse: restore needs the daemon stopped (systemctl stop gatehoused)\n");
			return 1;
		}
	}
	sqlite3 *src = NULL, *dst = NULL;
	const char *from = restore ? file : g_cfg.db, *to = restore ? g_cfg.db : file;
	int rc = sqlite3_open_v2(from, &src, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
		 sqlite3_open_v2(to, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK ||
		 copy_db(src, dst);
	if (rc)
		fprintf(stderr, "gatehouse: %s %s -> %s failed: %s\n", restore ? "restore" : "backup", from,
			to, sqlite3_errmsg(dst ? dst : src));
	sqlite3_close(src);
	sqlite3_close(dst);
	if (!rc)
		printf("%s %s -> %s done\n", restore ? "restore" : "backup", from, to);
	return rc;
}

int main(int argc, char **argv)
{
	const char *cfgpath = getenv("GATEHOUSE_CONFIG");
	int i = 1;
	if (i < argc && !strcmp(argv[i], "--version")) {
		printf("gatehouse %s\n", GH_VERSION);
		return 0;
	}
	if (i + 1 < argc && !strcmp(argv[i], "--config")) {
		cfgpath = argv[i + 1];
		i += 2;
	}
	if (!cfgpath) {
		cfgpath = "/etc/gatehouse/gatehouse.conf";
	}
	if (i >= argc || !strcmp(argv[i], "--help") || !strcmp(argv[i], "help")) {
		usage(i >= argc ? stderr : stdout);
		return i >= argc ? 2 : 0;
	}
	char msg[600];
	if (config_load(cfgpath, &g_cfg, msg, sizeof msg)) {
		fprintf(stderr, "gatehouse: %s\n", msg);
		return 2;
	}
	gh_log_set_level(GH_LOG_WARN);
	const char *cmd = argv[i];
	int n = argc - i - 1;
	char **rest = argv + i + 1;
	int rc;
	if (!strcmp(cmd, "status")) rc = cmd_status(n, rest);
	else if (!strcmp(cmd, "user")) rc = cmd_user(n, rest);
	else if (!strcmp(cmd, "import")) rc = cmd_import(n, rest);
	else if (!strcmp(cmd, "access")) rc = cmd_access(n, rest);
	else if (!strcmp(cmd, "emergency")) rc = cmd_emergency(n, rest);
	else if (!strcmp(cmd, "get")) rc = cmd_get(n, rest);
	else if (!strcmp(cmd, "list")) rc = cmd_list(n, rest);
	else if (!strcmp(cmd, "put")) rc = cmd_put(n, rest);
	else if (!strcmp(cmd, "delete")) rc = cmd_delete(n, rest);
	else if (!strcmp(cmd, "apartment")) rc = cmd_apartment(n, rest);
	else if (!strcmp(cmd, "device")) rc = cmd_device(n, rest);
	else if (!strcmp(cmd, "logs")) rc = cmd_logs(n, rest);
	else if (!strcmp(cmd, "export")) rc = cmd_export(n, rest);
	else if (!strcmp(cmd, "cloud")) rc = cmd_cloud(n, rest);
	else if (!strcmp(cmd, "relay")) rc = cmd_relay(n, rest);
	else if (!strcmp(cmd, "backup") && n == 1) rc = cmd_backup(rest[0], 0);
	else if (!strcmp(cmd, "restore") && n == 1) rc = cmd_backup(rest[0], 1);
	else {
		usage(stderr);
		rc = 2;
	}
	profiles_free();
	return rc;
}
