/* loadgen: access.check load from many simulated door phones through the
 * real broker, for bench_nodered.py (gatehoused and Node-RED get the very
 * same load). One thread polls every device's libmosquitto socket
 * (TCP_NODELAY), sends the plan at a fixed rate, and writes each request's
 * send and reply times (CLOCK_MONOTONIC in us: the clock modbus_sim stamps
 * its coil writes with) to --out. With --pid it also reads the answering
 * process's CPU time (/proc/PID/stat) over the measured window and its
 * VmHWM/VmRSS at the end. Measures and prints; never asserts.
 *
 *   loadgen --port P --devices FILE --plan FILE --rate R --warmup N --out FILE
 *           [--pid PID] [--broker-pid PID] [--drain-ms MS] [--settle-ms MS]
 *
 * --devices: "MAC PASSWORD" lines. --plan: "MAC CODE" lines, request i is
 * sent at start + i / rate; the first N are the warm-up (sent the same way,
 * not measured), --settle-ms after the first answer (a gateway answers before
 * its Modbus connections are up). --out: "i sent_us reply_us granted warm" lines (reply_us
 * 0: no answer). The last stdout line is `LOADGEN_JSON {...}`. */
#include <getopt.h>
#include <mosquitto.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct {
	struct mosquitto *m;
	char mac[13], pw[64];
	int connected, subscribed;
} dev_t_;

static dev_t_ *devs;
static long ndev;
static uint64_t *sent_at, *reply_at;
static signed char *granted;
static long nplan, probe_answered;

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void die(const char *what)
{
	fprintf(stderr, "loadgen: %s\n", what);
	exit(1);
}

static void on_connect(struct mosquitto *m, void *obj, int rc)
{
	dev_t_ *d = obj;
	if (rc)
		return;
	d->connected = 1;
	char t[96];
	snprintf(t, sizeof t, "gatehouse/v1/dev/%s/resp", d->mac);
	mosquitto_subscribe(m, NULL, t, 1);
}

static void on_subscribe(struct mosquitto *m, void *obj, int mid, int n, const int *qos)
{
	(void)m, (void)mid, (void)n, (void)qos;
	((dev_t_ *)obj)->subscribed = 1;
}

static void on_message(struct mosquitto *m, void *obj, const struct mosquitto_message *msg)
{
	(void)m, (void)obj;
	uint64_t t = now_us();
	const char *p = msg->payload;
	if (!p || !msg->payloadlen)
		return;
	if (strstr(p, "\"rid\":\"probe")) {
		probe_answered = 1;
		return;
	}
	const char *r = strstr(p, "\"rid\":\"r");
	long i = r ? strtol(r + 8, NULL, 10) : -1;
	if (i >= 0 && i < nplan && !reply_at[i]) {
		reply_at[i] = t;
		granted[i] = strstr(p, "\"granted\":true") != NULL;
	}
}

static void pump(int timeout_ms)
{
	static struct pollfd *pf;
	if (!pf)
		pf = calloc((size_t)ndev, sizeof *pf);
	for (long i = 0; i < ndev; i++) {
		pf[i].fd = mosquitto_socket(devs[i].m);
		pf[i].events = POLLIN | (mosquitto_want_write(devs[i].m) ? POLLOUT : 0);
		pf[i].revents = 0;
	}
	if (poll(pf, (nfds_t)ndev, timeout_ms) > 0)
		for (long i = 0; i < ndev; i++) {
			if (pf[i].revents & POLLIN)
				mosquitto_loop_read(devs[i].m, 1);
			if (pf[i].revents & POLLOUT)
				mosquitto_loop_write(devs[i].m, 1);
		}
}

static void misc_all(void)
{
	for (long i = 0; i < ndev; i++)
		mosquitto_loop_misc(devs[i].m);
}

static double cpu_s(long pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%ld/stat", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	unsigned long ut = 0, st = 0;
	if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) == 2)
		return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
	return 0;
}

static double mem_mb(long pid, const char *key)
{
	char path[64], line[256];
	snprintf(path, sizeof path, "/proc/%ld/status", pid);
	FILE *f = fopen(path, "r");
	double v = 0;
	while (f && fgets(line, sizeof line, f))
		if (!strncmp(line, key, strlen(key)))
			v = strtod(line + strlen(key) + 1, NULL) / 1024.0;
	if (f)
		fclose(f);
	return v;
}

static long find_dev(const char *mac)
{
	for (long i = 0; i < ndev; i++)
		if (!strcmp(devs[i].mac, mac))
			return i;
	return -1;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = { { "port", required_argument, NULL, 'p' },
					      { "devices", required_argument, NULL, 'd' },
					      { "plan", required_argument, NULL, 'l' },
					      { "rate", required_argument, NULL, 'r' },
					      { "warmup", required_argument, NULL, 'w' },
					      { "out", required_argument, NULL, 'o' },
					      { "pid", required_argument, NULL, 'i' },
					      { "broker-pid", required_argument, NULL, 'b' },
					      { "drain-ms", required_argument, NULL, 'm' },
					      { "settle-ms", required_argument, NULL, 's' },
					      { NULL, 0, NULL, 0 } };
	const char *devfile = NULL, *planfile = NULL, *outfile = NULL;
	long port = 0, rate = 50, warm = 0, pid = 0, bpid = 0, drain_ms = 5000, settle_ms = 0;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'p': port = strtol(optarg, NULL, 10); break;
		case 'd': devfile = optarg; break;
		case 'l': planfile = optarg; break;
		case 'r': rate = strtol(optarg, NULL, 10); break;
		case 'w': warm = strtol(optarg, NULL, 10); break;
		case 'o': outfile = optarg; break;
		case 'i': pid = strtol(optarg, NULL, 10); break;
		case 'b': bpid = strtol(optarg, NULL, 10); break;
		case 'm': drain_ms = strtol(optarg, NULL, 10); break;
		case 's': settle_ms = strtol(optarg, NULL, 10); break;
		default: return 2;
		}
	}
	if (!port || !devfile || !planfile || !outfile || rate < 1)
		die("usage: loadgen --port P --devices FILE --plan FILE --rate R --warmup N --out FILE [--pid PID]");
	signal(SIGPIPE, SIG_IGN);

	/* devices */
	FILE *f = fopen(devfile, "r");
	if (!f)
		die("cannot read --devices");
	char a[64], b[64];
	long cap = 16;
	devs = calloc((size_t)cap, sizeof *devs);
	while (fscanf(f, "%12s %63s", a, b) == 2) {
		if (ndev == cap)
			devs = realloc(devs, (size_t)(cap *= 2) * sizeof *devs);
		memset(&devs[ndev], 0, sizeof devs[ndev]);
		memcpy(devs[ndev].mac, a, strlen(a) + 1);
		memcpy(devs[ndev].pw, b, strlen(b) + 1);
		ndev++;
	}
	fclose(f);
	if (!ndev)
		die("no devices");

	/* plan */
	f = fopen(planfile, "r");
	if (!f)
		die("cannot read --plan");
	long pcap = 1024;
	long *pdev = malloc((size_t)pcap * sizeof *pdev);
	char (*pcode)[24] = malloc((size_t)pcap * sizeof *pcode);
	while (fscanf(f, "%12s %23s", a, b) == 2) {
		if (nplan == pcap) {
			pcap *= 2;
			pdev = realloc(pdev, (size_t)pcap * sizeof *pdev);
			pcode = realloc(pcode, (size_t)pcap * sizeof *pcode);
		}
		pdev[nplan] = find_dev(a);
		if (pdev[nplan] < 0)
			die("plan names an unknown device");
		memcpy(pcode[nplan], b, strlen(b) + 1);
		nplan++;
	}
	fclose(f);
	sent_at = calloc((size_t)nplan, sizeof *sent_at);
	reply_at = calloc((size_t)nplan, sizeof *reply_at);
	granted = calloc((size_t)nplan, 1);
	for (long i = 0; i < nplan; i++)
		granted[i] = -1;

	/* connect */
	mosquitto_lib_init();
	for (long i = 0; i < ndev; i++) {
		dev_t_ *d = &devs[i];
		d->m = mosquitto_new(NULL, true, d);
		mosquitto_int_option(d->m, MOSQ_OPT_TCP_NODELAY, 1);
		mosquitto_username_pw_set(d->m, d->mac, d->pw);
		mosquitto_connect_callback_set(d->m, on_connect);
		mosquitto_subscribe_callback_set(d->m, on_subscribe);
		mosquitto_message_callback_set(d->m, on_message);
		if (mosquitto_connect(d->m, "127.0.0.1", (int)port, 30))
			die("device connect");
	}
	uint64_t end = now_us() + 20000000u;
	long ready = 0;
	while (now_us() < end && ready < ndev) {
		pump(10);
		ready = 0;
		for (long i = 0; i < ndev; i++)
			ready += devs[i].subscribed;
	}
	if (ready < ndev)
		die("devices not connected and subscribed within 20 s");
	/* the answering side is up when it answers a probe */
	end = now_us() + 60000000u;
	uint64_t next = 0;
	int k = 0;
	while (!probe_answered && now_us() < end) {
		if (now_us() >= next) {
			char req[160], topic[96];
			snprintf(req, sizeof req,
				 "{\"rid\":\"probe%d\",\"op\":\"access.check\",\"method\":\"pin\",\"code\":\"00000000\",\"relay\":1}",
				 k++);
			snprintf(topic, sizeof topic, "gatehouse/v1/dev/%s/req", devs[0].mac);
			mosquitto_publish(devs[0].m, NULL, topic, (int)strlen(req), req, 1, false);
			next = now_us() + 250000u;
		}
		pump(10);
	}
	if (!probe_answered)
		die("no answer to access.check within 60 s");
	for (uint64_t settle = now_us() + (uint64_t)settle_ms * 1000u; now_us() < settle;)
		pump(10);
	printf("loadgen: %ld devices connected, answered; %ld requests at %ld/s (%ld warm-up)\n", ndev, nplan, rate,
	       warm);
	fflush(stdout);

	/* the plan at a fixed rate */
	double cpu0 = 0, bcpu0 = 0;
	uint64_t m0 = 0;
	uint64_t start = now_us(), last_misc = start;
	double step = 1e6 / (double)rate;
	for (long i = 0; i < nplan;) {
		uint64_t due = start + (uint64_t)((double)i * step), t = now_us();
		if (t >= due) {
			if (i == warm) {
				m0 = now_us();
				cpu0 = pid ? cpu_s(pid) : 0;
				bcpu0 = bpid ? cpu_s(bpid) : 0;
			}
			dev_t_ *d = &devs[pdev[i]];
			char req[160], topic[96];
			snprintf(req, sizeof req,
				 "{\"rid\":\"r%ld\",\"op\":\"access.check\",\"method\":\"pin\",\"code\":\"%s\",\"relay\":1}",
				 i, pcode[i]);
			snprintf(topic, sizeof topic, "gatehouse/v1/dev/%s/req", d->mac);
			sent_at[i] = now_us();
			mosquitto_publish(d->m, NULL, topic, (int)strlen(req), req, 1, false);
			i++;
			continue;
		}
		long wait_ms = (long)((due - t) / 1000u);
		pump(wait_ms > 0 ? (int)wait_ms : 0);
		if (t - last_misc > 1000000u) {
			misc_all();
			last_misc = t;
		}
	}
	uint64_t sent_end = now_us();
	/* the last answers */
	/* CPU counts until every answer is in, or 1 s after the last request
	 * (stragglers are still waited for, up to --drain-ms, uncounted) */
	uint64_t drain = sent_end + (uint64_t)drain_ms * 1000u, m1 = 0;
	double cpu = 0, bcpu = 0;
	long answered = 0;
	for (;;) {
		answered = 0;
		for (long i = warm; i < nplan; i++)
			answered += reply_at[i] != 0;
		uint64_t t = now_us();
		if (!m1 && (answered == nplan - warm || t >= sent_end + 1000000u || t >= drain)) {
			m1 = t;
			cpu = pid ? cpu_s(pid) - cpu0 : 0;
			bcpu = bpid ? cpu_s(bpid) - bcpu0 : 0;
		}
		if (answered == nplan - warm || t >= drain)
			break;
		pump(5);
	}
	double wall = (double)(m1 - m0) / 1e6;
	double hwm = pid ? mem_mb(pid, "VmHWM:") : 0, rss = pid ? mem_mb(pid, "VmRSS:") : 0;

	f = fopen(outfile, "w");
	if (!f)
		die("cannot write --out");
	for (long i = 0; i < nplan; i++)
		fprintf(f, "%ld %llu %llu %d %d\n", i, (unsigned long long)sent_at[i], (unsigned long long)reply_at[i],
			granted[i], i < warm);
	fclose(f);
	printf("LOADGEN_JSON {\"requests\":%ld,\"answered\":%ld,\"rate\":%ld,\"send_s\":%.3f,\"window_s\":%.3f,"
	       "\"cpu_pct\":%.2f,\"broker_cpu_pct\":%.2f,\"vm_hwm_mb\":%.1f,\"vm_rss_mb\":%.1f}\n",
	       nplan - warm, answered, rate, (double)(sent_end - m0) / 1e6, wall, 100.0 * cpu / wall,
	       100.0 * bcpu / wall, hwm, rss);
	fflush(stdout); /* before anything (LeakSanitizer) can end the process */
	for (long i = 0; i < ndev; i++) {
		mosquitto_disconnect(devs[i].m);
		mosquitto_destroy(devs[i].m);
	}
	mosquitto_lib_cleanup();
	free(pdev);
	free(pcode);
	free(sent_at);
	free(reply_at);
	free(granted);
	free(devs);
	return 0;
}
