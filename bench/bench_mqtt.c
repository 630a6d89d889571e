/* bench_mqtt: the device link under load, end to end through the real
 * mosquitto broker: access.check round trips at a fixed request rate from
 * many simulated door phones against a site with 1M credentials, durable
 * event ingest rate, and the daemon's CPU and RSS (busy and idle).
 * Measures and prints; never asserts timings.
 *
 *   bench_mqtt [--quick] [--persons N] [--devices N] [--rate R] [--seconds S] [--events N]
 *
 * Run from the repository root (tests/sim/broker.py, drivers/profiles). */
#include <errno.h>
#include <getopt.h>
#include <mosquitto.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dynsec.h"
#include "entity.h"
#include "log.h"
#include "profile.h"
#include "store.h"
#include "timeutil.h"

static struct {
	long persons, devices, rate, seconds, events, idle_s;
	int quick, floor;
} o = { .persons = 200000, .devices = 200, .rate = 500, .seconds = 20, .events = 50000, .idle_s = 10 };

static char dir[256], build[64] = "build";
static int broker_port;
static const char *bpass = "bench-gateway-pw";

static void die(const char *what)
{
	fprintf(stderr, "bench_mqtt: %s\n", what);
	exit(1);
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- site ---- */

static store_t *st;

static void put(ent_t e, json_t *j)
{
	gh_err_t err = { 0 };
	if (ent_put(st, e, NULL, j, NULL, NULL, &err)) {
		fprintf(stderr, "put %s: %s\n", ent_name(e), err.message);
		exit(1);
	}
	json_decref(j);
}

static void mac_of(long i, char out[13]) { snprintf(out, 13, "0C11B0%06lX", (unsigned long)i & 0xFFFFFFul); }

static long nbuild(void) { return o.devices / 2 > 0 ? o.devices / 2 : 1; }

static void build_site(const char *path)
{
	gh_err_t err = { 0 };
	st = store_open(path, &err);
	if (!st)
		die(err.message);
	uint64_t t0 = now_ns();
	store_begin(st);
	put(ENT_SETTINGS, json_pack("{s:s}", "timezone", "Europe/Vienna"));
	for (long b = 0; b < nbuild(); b++) {
		char bid[32];
		snprintf(bid, sizeof bid, "b%ld", b);
		put(ENT_BUILDING, json_pack("{s:s,s:s}", "id", bid, "name", bid));
		json_t *relays = json_array();
		for (long k = 0; k < 2; k++) {
			char mac[13];
			mac_of(b * 2 + k, mac);
			put(ENT_MAC, json_pack("{s:s}", "id", mac));
			put(ENT_DEVICE, json_pack("{s:s,s:i,s:s,s:s,s:s,s:[{s:i}]}", "id", mac, "type", 0, "name",
						  mac, "area", "building", "building", bid, "relays", "n", 1));
			json_array_append_new(relays, json_pack("{s:s,s:i}", "device", mac, "relay", 1));
		}
		char gid[32];
		snprintf(gid, sizeof gid, "g%ld", b);
		put(ENT_ACCESS_GROUP, json_pack("{s:s,s:s,s:s,s:o}", "id", gid, "name", gid, "building", bid,
						"relays", relays));
	}
	store_commit(st);
	store_begin(st);
	for (long p = 0; p < o.persons; p++) {
		char apt[32], aid[32], pid[32], code[32], bid[32];
		long a = p * 2 / 5, b = a % nbuild();
		snprintf(bid, sizeof bid, "b%ld", b);
		snprintf(aid, sizeof aid, "a%ld", a);
		snprintf(apt, sizeof apt, "%ld", 100000 + a / nbuild());
		if (p == 0 || (p - 1) * 2 / 5 != a)
			put(ENT_APARTMENT, json_pack("{s:s,s:s,s:s}", "id", aid, "building", bid, "apt", apt));
		snprintf(pid, sizeof pid, "p%ld", p);
		put(ENT_PERSON, json_pack("{s:s,s:s,s:s,s:s}", "id", pid, "kind", "resident", "apartment", aid,
					  "first_name", pid));
		snprintf(code, sizeof code, "%08ld", 10000000 + p);
		put(ENT_CREDENTIAL, json_pack("{s:s,s:s,s:s,s:s}", "id", code, "person", pid, "type", "pin", "code", code));
		for (int k = 0; k < 4; k++) {
			char cid[48], rf[48];
			snprintf(cid, sizeof cid, "rf%ld-%d", p, k);
			snprintf(rf, sizeof rf, "%08lX%d", p, k);
			put(ENT_CREDENTIAL, json_pack("{s:s,s:s,s:s,s:s}", "id", cid, "person", pid, "type", "rf",
						      "code", rf));
		}
		if (p % 5000 == 4999) {
			store_commit(st);
			if (getenv("BENCH_TRACE"))
				fprintf(stderr, "  %ld persons at %.1f s\n", p + 1, (double)(now_ns() - t0) / 1e9);
			store_begin(st);
		}
	}
	store_commit(st);
	printf("site: %ld persons, %ld credentials, %ld door phones in %ld buildings, loaded in %.1f s\n",
	       o.persons, o.persons * 5, o.devices, nbuild(), (double)(now_ns() - t0) / 1e9);
	store_close(st);
}

/* ---- processes ---- */

static pid_t daemon_pid;
static void echo_main(void);

static void start_broker(void)
{
	char cmd[512];
	snprintf(cmd, sizeof cmd, "/usr/bin/python3 tests/sim/broker.py start %s/broker gatehoused %s", dir, bpass);
	FILE *p = popen(cmd, "r");
	int pid = 0;
	if (!p || fscanf(p, "%d %d", &broker_port, &pid) != 2)
		die("cannot start the broker (tests/sim/broker.py)");
	pclose(p);
}

static void stop_broker(void)
{
	char cmd[512];
	snprintf(cmd, sizeof cmd, "/usr/bin/python3 tests/sim/broker.py stop %s/broker", dir);
	if (system(cmd)) {
	}
}

static void start_daemon(void)
{
	char conf[300], pw[300], exe[300];
	snprintf(conf, sizeof conf, "%s/gh.conf", dir);
	snprintf(pw, sizeof pw, "%s/mqtt.password", dir);
	FILE *f = fopen(pw, "w");
	fprintf(f, "%s\n", bpass);
	fclose(f);
	f = fopen(conf, "w");
	char cwd[200];
	if (!getcwd(cwd, sizeof cwd))
		die("getcwd");
	fprintf(f, "[site]\nid = bench\n[storage]\ndb = site.db\n[drivers]\nprofiles_dir = %s/drivers/profiles\n"
		   "[daemon]\ncontrol_socket = ctl.sock\nlog_level = warn\n[mqtt]\nport = %d\nusername = gatehoused\n"
		   "password_file = mqtt.password\n", cwd, broker_port);
	fclose(f);
	snprintf(exe, sizeof exe, "%s/%s/gatehoused", cwd, build);
	daemon_pid = fork();
	if (daemon_pid == 0 && o.floor)
		echo_main();
	if (daemon_pid == 0) {
		char logp[300];
		snprintf(logp, sizeof logp, "%s/daemon.log", dir);
		if (!freopen(logp, "w", stderr))
			_exit(127);
		execl(exe, "gatehoused", "--config", conf, (char *)NULL);
		_exit(127);
	}
}

/* --floor: the same round trip answered by a minimal libmosquitto client that
 * does no work at all (no JSON, no lookup, no store). What it measures is the
 * broker and the loopback network on this machine: the floor under gatehoused. */
static void echo_msg(struct mosquitto *m, void *obj, const struct mosquitto_message *msg)
{
	(void)obj;
	char topic[128], reply[128];
	const char *mac = msg->topic + strlen("gatehouse/v1/dev/");
	const char *slash = strchr(mac, '/');
	const char *rid = msg->payloadlen ? strstr(msg->payload, "\"rid\":\"") : NULL;
	if (!slash || !rid)
		return;
	rid += 7;
	const char *q = strchr(rid, '"');
	if (!q)
		return;
	snprintf(topic, sizeof topic, "gatehouse/v1/dev/%.*s/resp", (int)(slash - mac), mac);
	int n = snprintf(reply, sizeof reply, "{\"rid\":\"%.*s\",\"ok\":true}", (int)(q - rid), rid);
	mosquitto_publish(m, NULL, topic, n, reply, 1, false);
}

static void echo_connected(struct mosquitto *m, void *obj, int rc)
{
	(void)obj;
	if (rc)
		return;
	mosquitto_subscribe(m, NULL, "gatehouse/v1/dev/+/req", 1);
	mosquitto_publish(m, NULL, "gatehouse/v1/gw/status", 15, "{\"online\":true}", 1, true);
}

static void echo_main(void)
{
	mosquitto_lib_init();
	struct mosquitto *m = mosquitto_new("bench-echo", true, NULL);
	mosquitto_int_option(m, MOSQ_OPT_TCP_NODELAY, 1);
	mosquitto_username_pw_set(m, "gatehoused", bpass);
	mosquitto_connect_callback_set(m, echo_connected);
	mosquitto_message_callback_set(m, echo_msg);
	if (mosquitto_connect(m, "127.0.0.1", broker_port, 30))
		_exit(1);
	mosquitto_loop_forever(m, -1, 1);
	_exit(0);
}

static double proc_cpu_s(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	unsigned long ut = 0, stime = 0;
	if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &stime) == 2)
		return (double)(ut + stime) / (double)sysconf(_SC_CLK_TCK);
	return 0;
}

static double proc_mem_mb(pid_t pid, const char *key)
{
	char path[64], line[256];
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	double v = 0;
	while (f && fgets(line, sizeof line, f))
		if (!strncmp(line, key, strlen(key)))
			v = strtod(line + strlen(key) + 1, NULL) / 1024.0;
	if (f)
		fclose(f);
	return v;
}

/* One headline figure for bench/report.py (bench/README.md, "make bench"):
 * RESULT {"bench","figure","target","measured","unit","met"}; met is
 * null without a target. Printed besides the human output, never asserted. */
static void result(const char *figure, const char *target, double measured, const char *unit, int met)
{
	json_t *j = json_pack("{s:s,s:s,s:o,s:f,s:s,s:o}", "bench", "bench_mqtt", "figure", figure, "target",
			      target ? json_string(target) : json_null(), "measured", measured, "unit", unit, "met",
			      met < 0 ? json_null() : json_boolean(met));
	char *t = j ? json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(6)) : NULL;
	if (t)
		printf("RESULT %s\n", t);
	free(t);
	json_decref(j);
}

/* ---- simulated devices (one thread, poll over every socket) ---- */

typedef struct dev {
	struct mosquitto *m;
	char mac[13];
	int connected, gw_online;
	long acks, inflight;
} simdev_t;

static simdev_t *devs;
static uint64_t *sent_at;
static double *lat_us;
static long nlat, max_req;

static void on_connect(struct mosquitto *m, void *obj, int rc)
{
	simdev_t *d = obj;
	if (rc)
		return;
	d->connected = 1;
	char t[96];
	snprintf(t, sizeof t, "gatehouse/v1/dev/%s/resp", d->mac);
	mosquitto_subscribe(m, NULL, t, 1);
	snprintf(t, sizeof t, "gatehouse/v1/dev/%s/event/ack", d->mac);
	mosquitto_subscribe(m, NULL, t, 1);
	mosquitto_subscribe(m, NULL, "gatehouse/v1/gw/status", 1);
}

static void on_message(struct mosquitto *m, void *obj, const struct mosquitto_message *msg)
{
	simdev_t *d = obj;
	(void)m;
	const char *p = msg->payload;
	if (strstr(msg->topic, "/resp")) {
		const char *r = strstr(p, "\"rid\":\"r");
		long i = r ? strtol(r + 8, NULL, 10) : -1;
		if (i >= 0 && i < max_req && sent_at[i]) {
			lat_us[nlat++] = (double)(now_ns() - sent_at[i]) / 1000.0;
			sent_at[i] = 0;
		}
	} else if (strstr(msg->topic, "/event/ack")) {
		d->acks++;
		d->inflight--;
	} else if (strstr(msg->topic, "gw/status")) {
		d->gw_online = msg->payloadlen && strstr(p, "\"online\":true") != NULL;
	}
}

static void pump(int timeout_ms)
{
	struct pollfd *pf = calloc((size_t)o.devices, sizeof *pf);
	for (long i = 0; i < o.devices; i++) {
		pf[i].fd = mosquitto_socket(devs[i].m);
		pf[i].events = POLLIN | (mosquitto_want_write(devs[i].m) ? POLLOUT : 0);
	}
	if (poll(pf, (nfds_t)o.devices, timeout_ms) > 0)
		for (long i = 0; i < o.devices; i++) {
			if (pf[i].revents & POLLIN)
				mosquitto_loop_read(devs[i].m, 1);
			if (pf[i].revents & POLLOUT)
				mosquitto_loop_write(devs[i].m, 1);
		}
	free(pf);
}

static void misc_all(void)
{
	for (long i = 0; i < o.devices; i++)
		mosquitto_loop_misc(devs[i].m);
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double pct(double *v, long n, double p)
{
	if (!n)
		return 0;
	long i = (long)(p / 100.0 * (double)(n - 1) + 0.5);
	return v[i];
}

int main(int argc, char **argv)
{
	static const struct option opts[] = { { "quick", no_argument, NULL, 'q' },
					      { "persons", required_argument, NULL, 'p' },
					      { "devices", required_argument, NULL, 'd' },
					      { "rate", required_argument, NULL, 'r' },
					      { "seconds", required_argument, NULL, 's' },
					      { "events", required_argument, NULL, 'e' },
					      { "floor", no_argument, NULL, 'f' },
					      { NULL, 0, NULL, 0 } };
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'q': o.quick = 1; o.persons = 20000; o.devices = 50; o.seconds = 5; o.events = 5000; o.idle_s = 3; break;
		case 'p': o.persons = strtol(optarg, NULL, 10); break;
		case 'd': o.devices = strtol(optarg, NULL, 10); break;
		case 'r': o.rate = strtol(optarg, NULL, 10); break;
		case 's': o.seconds = strtol(optarg, NULL, 10); break;
		case 'e': o.events = strtol(optarg, NULL, 10); break;
		case 'f': o.floor = 1; o.persons = 1000; o.events = 0; o.idle_s = 0; break;
		default: return 2;
		}
	}
	if (getenv("GH_BUILD"))
		snprintf(build, sizeof build, "%s", getenv("GH_BUILD"));
	gh_log_set_level(GH_LOG_ERR);
	signal(SIGPIPE, SIG_IGN);
	snprintf(dir, sizeof dir, "/tmp/gh-bench-mqtt-XXXXXX");
	if (!mkdtemp(dir))
		die("mkdtemp");
	chmod(dir, 0755);
	gh_err_t err = { 0 };
	if (profiles_load("drivers/profiles", &err))
		die(err.message);
	char path[300];
	snprintf(path, sizeof path, "%s/site.db", dir);
	printf("gatehouse bench_mqtt%s: %ld persons (%ld credentials), %ld door phones, %ld req/s for %ld s\n",
	       o.quick ? " (quick)" : "", o.persons, o.persons * 5, o.devices, o.rate, o.seconds);
	build_site(path);
	start_broker();

	/* device accounts through the dynamic-security plugin */
	uint64_t t0 = now_ns();
	char (*pws)[40] = calloc((size_t)o.devices, sizeof *pws);
	dynsec_conn_t dc = { .host = "127.0.0.1", .port = broker_port, .username = "gatehoused", .password = bpass };
	for (long i = 0; i < o.devices; i++) {
		char mac[13];
		mac_of(i, mac);
		snprintf(pws[i], sizeof pws[i], "pw-%s", mac);
		if (dynsec_account(&dc, mac, pws[i], &err))
			die(err.message);
	}
	printf("accounts: %ld device accounts in %.1f s\n", o.devices, (double)(now_ns() - t0) / 1e9);
	start_daemon();

	mosquitto_lib_init();
	devs = calloc((size_t)o.devices, sizeof *devs);
	for (long i = 0; i < o.devices; i++) {
		simdev_t *d = &devs[i];
		mac_of(i, d->mac);
		d->m = mosquitto_new(NULL, true, d);
		mosquitto_int_option(d->m, MOSQ_OPT_TCP_NODELAY, 1);
		mosquitto_username_pw_set(d->m, d->mac, pws[i]);
		mosquitto_connect_callback_set(d->m, on_connect);
		mosquitto_message_callback_set(d->m, on_message);
		if (mosquitto_connect(d->m, "127.0.0.1", broker_port, 30))
			die("device connect");
	}
	uint64_t end = now_ns() + 20000000000ull;
	long ready = 0;
	while (now_ns() < end && ready < o.devices) {
		pump(10);
		ready = 0;
		for (long i = 0; i < o.devices; i++)
			ready += devs[i].connected && devs[i].gw_online;
	}
	if (ready < o.devices)
		die("devices or gateway not ready within 20 s (see daemon.log)");
	/* warm up the path (daemon caches, broker sessions) */
	for (int w = 0; w < 200; w++) {
		pump(1);
	}

	/* access.check at a fixed rate */
	max_req = o.rate * o.seconds;
	sent_at = calloc((size_t)max_req, sizeof *sent_at);
	lat_us = calloc((size_t)max_req, sizeof *lat_us);
	double cpu0 = proc_cpu_s(daemon_pid);
	uint64_t start = now_ns(), step = 1000000000ull / (uint64_t)o.rate, last_misc = start;
	for (long i = 0; i < max_req;) {
		uint64_t due = start + (uint64_t)i * step, t = now_ns();
		if (t >= due) {
			simdev_t *d = &devs[i % o.devices];
			long person = (long)((unsigned long)(i * 2654435761u) % (unsigned long)o.persons);
			char req[160], topic[96];
			/* 80% a resident's PIN, 20% unknown codes */
			snprintf(req, sizeof req,
				 "{\"rid\":\"r%ld\",\"op\":\"access.check\",\"method\":\"pin\",\"code\":\"%08ld\",\"relay\":1}",
				 i, i % 5 ? 10000000 + person : 9000000 + i % 1000000);
			snprintf(topic, sizeof topic, "gatehouse/v1/dev/%s/req", d->mac);
			sent_at[i] = now_ns();
			mosquitto_publish(d->m, NULL, topic, (int)strlen(req), req, 1, false);
			i++;
			continue;
		}
		long wait_ms = (long)((due - t) / 1000000u);
		pump(wait_ms > 0 ? (int)wait_ms : 0);
		if (t - last_misc > 1000000000ull) {
			misc_all();
			last_misc = t;
		}
	}
	uint64_t drain = now_ns() + 3000000000ull;
	while (nlat < max_req && now_ns() < drain)
		pump(5);
	double busy_s = (double)(now_ns() - start) / 1e9;
	double cpu1 = proc_cpu_s(daemon_pid);
	double rss_busy = proc_mem_mb(daemon_pid, "VmRSS:"), hwm = proc_mem_mb(daemon_pid, "VmHWM:");
	qsort(lat_us, (size_t)nlat, sizeof *lat_us, cmp_d);
	if (o.floor)
		printf("\n[floor] a do-nothing MQTT client answers instead of gatehoused");
	printf("\n[access.check] %ld requests at %ld/s from %ld devices, %ld answered\n", max_req, o.rate,
	       o.devices, nlat);
	printf("  round trip device -> broker -> gatehoused -> broker -> device: p50 %.3f  p90 %.3f  p99 %.3f  "
	       "p99.9 %.3f  max %.3f ms\n",
	       pct(lat_us, nlat, 50) / 1000, pct(lat_us, nlat, 90) / 1000, pct(lat_us, nlat, 99) / 1000,
	       pct(lat_us, nlat, 99.9) / 1000, nlat ? lat_us[nlat - 1] / 1000 : 0);
	printf("  daemon CPU %.1f%% of one core, RSS %.1f MB (peak %.1f MB)\n", 100 * (cpu1 - cpu0) / busy_s,
	       rss_busy, hwm);

	/* durable event ingest: every device keeps up to 50 events in flight */
	long sent = 0, acked = 0, per = o.events / o.devices + 1;
	uint64_t e0 = now_ns(), edeadline = e0 + 60000000000ull;
	double ecpu0 = proc_cpu_s(daemon_pid);
	for (long i = 0; i < o.devices; i++)
		devs[i].acks = devs[i].inflight = 0;
	while (acked < o.events && now_ns() < edeadline) {
		for (long i = 0; i < o.devices && sent < o.events; i++) {
			simdev_t *d = &devs[i];
			while (d->inflight < 50 && d->acks + d->inflight < per && sent < o.events) {
				char ev[200], topic[96];
				snprintf(ev, sizeof ev, "{\"id\":\"e%ld\",\"type\":\"door\",\"relay\":1,\"state\":\"open\"}", sent);
				snprintf(topic, sizeof topic, "gatehouse/v1/dev/%s/event", d->mac);
				mosquitto_publish(d->m, NULL, topic, (int)strlen(ev), ev, 1, false);
				d->inflight++;
				sent++;
			}
		}
		pump(2);
		acked = 0;
		for (long i = 0; i < o.devices; i++)
			acked += devs[i].acks;
	}
	double es = (double)(now_ns() - e0) / 1e9;
	double ecpu = proc_cpu_s(daemon_pid) - ecpu0;
	printf("\n[events] %ld of %ld events stored and acked in %.2f s: %.0f events/s (daemon CPU %.0f%%)\n", acked,
	       o.events, es, (double)acked / es, 100 * ecpu / es);

	/* idle: every device connected, nothing happening */
	double icpu0 = proc_cpu_s(daemon_pid);
	uint64_t i0 = now_ns(), iend = i0 + (uint64_t)o.idle_s * 1000000000ull, lm = i0;
	while (now_ns() < iend) {
		pump(100);
		if (now_ns() - lm > 1000000000ull) {
			misc_all();
			lm = now_ns();
		}
	}
	double idle_cpu = 100 * (proc_cpu_s(daemon_pid) - icpu0) / ((double)(now_ns() - i0) / 1e9);
	double rss_idle = proc_mem_mb(daemon_pid, "VmRSS:");
	printf("\n[idle] %ld devices connected: daemon CPU %.2f%% of one core, RSS %.1f MB\n", o.devices, idle_cpu,
	       rss_idle);
	printf("\nBENCH_JSON {\"persons\":%ld,\"credentials\":%ld,\"devices\":%ld,\"rate\":%ld,\"answered\":%ld,"
	       "\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"p999_ms\":%.3f,\"busy_cpu_pct\":%.1f,\"rss_mb\":%.1f,"
	       "\"rss_peak_mb\":%.1f,\"events_per_s\":%.0f,\"idle_cpu_pct\":%.2f,\"idle_rss_mb\":%.1f}\n",
	       o.persons, o.persons * 5, o.devices, o.rate, nlat, pct(lat_us, nlat, 50) / 1000,
	       pct(lat_us, nlat, 99) / 1000, pct(lat_us, nlat, 99.9) / 1000, 100 * (cpu1 - cpu0) / busy_s,
	       rss_busy, hwm, (double)acked / es, idle_cpu, rss_idle);

	double p50 = pct(lat_us, nlat, 50) / 1000, p99 = pct(lat_us, nlat, 99) / 1000;
	double busy_cpu = 100 * (cpu1 - cpu0) / busy_s;
	char fig[200], site[64];
	snprintf(site, sizeof site, "%ld devices, %ld credentials", o.devices, o.persons * 5);
	if (o.floor) {
		snprintf(fig, sizeof fig, "access.check round trip at %ld req/s answered by a do-nothing client "
					  "(the broker floor) p50", o.rate);
		result(fig, NULL, p50, "ms", -1);
		snprintf(fig, sizeof fig, "access.check round trip at %ld req/s answered by a do-nothing client "
					  "(the broker floor) p99", o.rate);
		result(fig, NULL, p99, "ms", -1);
		result("do-nothing client CPU (the floor)", NULL, busy_cpu, "%", -1);
	} else {
		snprintf(fig, sizeof fig, "access.check round trip at %ld req/s p50 (%s)", o.rate, site);
		result(fig, NULL, p50, "ms", -1);
		snprintf(fig, sizeof fig, "access.check round trip at %ld req/s p99 (%s)", o.rate, site);
		result(fig, "<= 0.5 ms", p99, "ms", p99 <= 0.5);
		snprintf(fig, sizeof fig, "access.check round trip at %ld req/s p99.9 (%s)", o.rate, site);
		result(fig, NULL, pct(lat_us, nlat, 99.9) / 1000, "ms", -1);
		snprintf(fig, sizeof fig, "daemon CPU at %ld req/s", o.rate);
		result(fig, "<= 5 %", busy_cpu, "%", busy_cpu <= 5.0);
		snprintf(fig, sizeof fig, "daemon RSS, busy (%s)", site);
		result(fig, "<= 30 MB", rss_busy, "MB", rss_busy <= 30.0);
		snprintf(fig, sizeof fig, "daemon RSS, idle (%s)", site);
		result(fig, "<= 30 MB", rss_idle, "MB", rss_idle <= 30.0);
		result("durable event ingest (stored, committed, acked)", ">= 20000 events/s", (double)acked / es,
		       "events/s", (double)acked / es >= 20000.0);
		snprintf(fig, sizeof fig, "daemon CPU with %ld idle connected devices", o.devices);
		result(fig, "< 1 %", idle_cpu, "%", idle_cpu < 1.0);
	}

	for (long i = 0; i < o.devices; i++) {
		mosquitto_disconnect(devs[i].m);
		mosquitto_destroy(devs[i].m);
	}
	kill(daemon_pid, SIGTERM);
	waitpid(daemon_pid, NULL, 0);
	stop_broker();
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (getenv("BENCH_KEEP"))
		printf("kept %s\n", dir);
	else if (system(cmd)) {
	}
	free(devs);
	free(pws);
	free(sent_at);
	free(lat_us);
	profiles_free();
	mosquitto_lib_cleanup();
	return 0;
}
