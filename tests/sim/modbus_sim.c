/* Modbus board simulator: a libmodbus server implementing a reference
 * profile (a drivers/profiles file), over TCP or RTU (a socat pty pair),
 * for the tests, the bench and the demo.
 *
 *   modbus_sim --profile FILE (--tcp PORT | --rtu DEVICE) [--unit N]
 *
 * Every write is printed on stdout, one line each, flushed, stamped with
 * CLOCK_MONOTONIC in microseconds:
 *   "<us> coil <addr> <0|1>" or "<us> reg <addr> <value>"
 * Faults, switched by signals: SIGUSR1 toggles "dead" (requests are read
 * and never answered: timeouts), SIGUSR2 toggles "exception" (every
 * request gets a slave-device-failure exception). SIGTERM ends it.
 * SIGHUP toggles "garbage" (random bytes instead of replies).
 * Boards with inputs take input levels on stdin: "input N 0|1"; with
 * --latching a rising edge sets input N until the gateway clears it by
 * writing ON to coil clear_base+N-1.
 * Reader profiles (UHF, LPR) take reads on stdin, one per line:
 *   "read DIRECTION CODE"   (DIRECTION 0 unknown, 1 entry, 2 exit)
 *   "skip N"                (N reads happen that nobody polls: missed) */
#include <errno.h>
#include <getopt.h>
#include <modbus.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

#include "profile.h"

static volatile sig_atomic_t dead, failing, garbage, quit;
static int latching;

static void on_sig(int s)
{
	if (s == SIGUSR1)
		dead = !dead;
	else if (s == SIGUSR2)
		failing = !failing;
	else if (s == SIGHUP)
		garbage = !garbage;
	else
		quit = 1;
}

static long us_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000L + ts.tv_nsec / 1000L;
}

static const profile_t *prof;
static modbus_mapping_t *map;

/* Register-style boards read back a state that differs from what was
 * written (HF-8000: write 0x0100/0x0200, read 0x0001/0x0000). */
static void after_write(const uint8_t *req, int hlen)
{
	int fc = req[hlen];
	int addr = (req[hlen + 1] << 8) | req[hlen + 2];
	int value = (req[hlen + 3] << 8) | req[hlen + 4];
	if (fc == MODBUS_FC_WRITE_SINGLE_COIL) {
		printf("%ld coil %d %d\n", us_now(), addr, value == 0xFF00);
		/* a latched input is cleared by writing ON to its clear coil */
		int n = addr - prof->clear_base;
		if (latching && value == 0xFF00 && n >= 0 && n < prof->inputs) {
			map->tab_input_bits[prof->input_base + n] = 0;
			printf("%ld cleared %d 0\n", us_now(), n + 1);
		}
	} else if (fc == MODBUS_FC_WRITE_SINGLE_REGISTER) {
		printf("%ld reg %d %d\n", us_now(), addr, value);
		if (prof->write == PROF_W_REGISTER && addr < map->nb_registers) {
			if (value == prof->on_value)
				map->tab_registers[addr] = prof->read_on;
			else if (value == prof->off_value)
				map->tab_registers[addr] = prof->read_off;
		}
	}
	fflush(stdout);
}

/* a tag or plate read into the reader block (MODBUS.md), or an input
 * level; 0 at the end of stdin (then it is no longer watched) */
static int reader_input(void)
{
	char line[128], code[64];
	int dir, n;
	if (!fgets(line, sizeof line, stdin))
		return 0;
	uint16_t *r = map->tab_input_registers + prof->block_base;
	int level;
	if (sscanf(line, "input %d %d", &n, &level) == 2 && n >= 1 && n <= prof->inputs) {
		uint8_t *bit = &map->tab_input_bits[prof->input_base + n - 1];
		if (!latching)
			*bit = (uint8_t)(level != 0);
		else if (level)
			*bit = 1; /* a rising edge stays latched until cleared */
		return 1;
	}
	if (sscanf(line, "skip %d", &n) == 1) {
		r[0] = (uint16_t)(r[0] + n);
		return 1;
	}
	if (sscanf(line, "read %d %63s", &dir, code) != 2)
		return 1;
	size_t len = strlen(code);
	memset(r + 1, 0, 18 * sizeof *r);
	r[1] = (uint16_t)dir;
	r[2] = (uint16_t)len;
	for (size_t i = 0; i < len && i < 32; i++)
		r[3 + i / 2] |= (uint16_t)((unsigned char)code[i] << (i % 2 ? 0 : 8));
	r[0] = (uint16_t)(r[0] + 1); /* the sequence moves last */
	printf("%ld tag %d %s\n", us_now(), dir, code);
	fflush(stdout);
	return 1;
}

/* --paced (RTU): a pty moves bytes at memory speed, so the simulator adds the
 * time a real line would take: both frames at the profile's baud rate (8N1,
 * 10 bits a character) and the t3.5 silence that ends each frame (fixed at
 * 1.75 ms above 19200 baud). The reply then leaves when it would have
 * arrived on a real RS485 bus. */
static int paced;

static long frame_us(int bytes, int baud)
{
	long t35 = baud > 19200 ? 1750 : 35000000L / baud;
	return (long)bytes * 10000000L / baud + t35;
}

static int reply_len(const uint8_t *q)
{
	int qty = q[4] << 8 | q[5];
	switch (q[1]) {
	case 1:
	case 2: return 5 + (qty + 7) / 8;
	case 3:
	case 4: return 5 + 2 * qty;
	default: return 8;
	}
}

static void pace(const uint8_t *q, int n, int baud)
{
	long us = frame_us(n, baud) + frame_us(reply_len(q), baud);
	struct timespec ts = { us / 1000000, us % 1000000 * 1000 };
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = { { "profile", required_argument, NULL, 'p' },
					      { "tcp", required_argument, NULL, 't' },
					      { "rtu", required_argument, NULL, 'r' },
					      { "unit", required_argument, NULL, 'u' },
					      { "latching", no_argument, NULL, 'l' },
					      { "paced", no_argument, NULL, 'w' },
					      { NULL, 0, NULL, 0 } };
	const char *pfile = NULL, *rtu = NULL;
	int port = 0, unit = -1, c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'p': pfile = optarg; break;
		case 't': port = (int)strtol(optarg, NULL, 10); break;
		case 'r': rtu = optarg; break;
		case 'u': unit = (int)strtol(optarg, NULL, 10); break;
		case 'l': latching = 1; break;
		case 'w': paced = 1; break;
		default: return 2;
		}
	}
	static profile_t p;
	gh_err_t err = { 0 };
	if (!pfile || (!port == !rtu) || profile_load_file(pfile, &p, &err)) {
		fprintf(stderr, "usage: modbus_sim --profile FILE (--tcp PORT | --rtu DEVICE) [--unit N] [--latching] [--paced]%s%s\n",
			err.message[0] ? ": " : "", err.message);
		return 2;
	}
	prof = &p;
	if (unit < 0)
		unit = p.unit;
	struct sigaction sa = { .sa_handler = on_sig };
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	int base = p.clear_base + p.inputs + 1;
	if (base < p.coil_base + p.channels)
		base = p.coil_base + p.channels;
	map = modbus_mapping_new(base + 16, p.input_base + p.inputs + 16, p.reg_base + p.channels + 16,
				 p.block_base + 32);
	modbus_t *ctx = port ? modbus_new_tcp("127.0.0.1", port)
			     : modbus_new_rtu(rtu, p.baud, p.parity, p.data, p.stop);
	if (!ctx || !map) {
		fprintf(stderr, "modbus_sim: cannot set up: %s\n", modbus_strerror(errno));
		return 1;
	}
	modbus_set_slave(ctx, unit);
	/* wake up now and then to notice signals and a quit */
	modbus_set_indication_timeout(ctx, 0, 200000);
	int listener = -1;
	if (port) {
		listener = modbus_tcp_listen(ctx, 4);
		if (listener < 0) {
			fprintf(stderr, "modbus_sim: cannot listen on %d: %s\n", port, modbus_strerror(errno));
			return 1;
		}
	} else if (modbus_connect(ctx) == -1) {
		fprintf(stderr, "modbus_sim: cannot open %s: %s\n", rtu, modbus_strerror(errno));
		return 1;
	}
	printf("%ld ready %s\n", us_now(), p.name);
	fflush(stdout);

	uint8_t q[MODBUS_TCP_MAX_ADU_LENGTH];
	int hlen = modbus_get_header_length(ctx);
	int client = -1;
	int reader = p.kind == PROF_UHF || p.kind == PROF_LPR || p.inputs > 0;
	setvbuf(stdin, NULL, _IONBF, 0); /* poll() on fd 0 must see every line */
	while (!quit) {
		struct pollfd in = { .fd = 0, .events = POLLIN };
		/* every line that is there, before the next request */
		while (reader && poll(&in, 1, 0) > 0 && (in.revents & POLLIN))
			if (!reader_input()) {
				reader = 0; /* stdin ended (or was /dev/null) */
				break;
			}
		if (port && client < 0) {
			fd_set r;
			FD_ZERO(&r);
			FD_SET(listener, &r);
			struct timeval tv = { 0, 200000 };
			if (select(listener + 1, &r, NULL, NULL, &tv) <= 0)
				continue;
			client = modbus_tcp_accept(ctx, &listener);
			if (client < 0)
				continue;
		}
		int n = modbus_receive(ctx, q);
		if (n == -1) {
			if (port && errno != ETIMEDOUT && errno != EMBBADCRC && errno != EINTR) {
				/* the gateway closed its connection: wait for the next */
				modbus_close(ctx);
				client = -1;
			}
			continue;
		}
		if (n == 0 || dead)
			continue; /* not for this unit, or playing dead */
		if (garbage) {
			uint8_t junk[9];
			for (size_t i = 0; i < sizeof junk; i++)
				junk[i] = (uint8_t)rand();
			if (write(modbus_get_socket(ctx), junk, sizeof junk) < 0) {
			}
			continue;
		}
		if (failing) {
			modbus_reply_exception(ctx, q, MODBUS_EXCEPTION_SLAVE_OR_SERVER_FAILURE);
			continue;
		}
		if (paced && !port)
			pace(q, n, p.baud);
		if (modbus_reply(ctx, q, n, map) >= 0)
			after_write(q, hlen);
	}
	if (listener >= 0)
		close(listener);
	modbus_close(ctx);
	modbus_free(ctx);
	modbus_mapping_free(map);
	return 0;
}
