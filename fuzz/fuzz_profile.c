/* The Modbus profile loader (drivers/profile.c, MODBUS.md): an ini file
 * of drivers/profiles/, as profiles_load reads every *.ini of the
 * profiles_dir at start.
 *
 * Input: the ini text, written to a file in a private temp dir (tmpfs when
 * /dev/shm exists) and loaded with profile_load_file, then with
 * profiles_load (the whole directory: the registry) and queried as the
 * validator does. Checks: a loaded profile keeps the documented limits
 * (what the bus code indexes with), a refused one names the file. */
#include <unistd.h>

#include "fuzz_common.h"

static char dir[64], path[96];

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void rm_dir(void)
{
	unlink(path);
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fz_quiet();
	snprintf(dir, sizeof dir, "%s", access("/dev/shm", W_OK) == 0 ? "/dev/shm/gh-fuzz-XXXXXX" : "/tmp/gh-fuzz-XXXXXX");
	if (!mkdtemp(dir))
		abort();
	snprintf(path, sizeof path, "%s/fuzz.ini", dir);
	atexit(rm_dir);
	return 0;
}

static void broken(const char *what)
{
	fprintf(stderr, "INVARIANT BROKEN: %s\n", what);
	abort();
}

static void check(const profile_t *p)
{
	if (!p->name[0] || strnlen(p->name, sizeof p->name) == sizeof p->name)
		broken("profile name empty or not terminated");
	if (p->kind < PROF_RELAY || p->kind > PROF_LPR)
		broken("kind out of range");
	if (p->channels < 0 || p->channels > 256 || p->inputs < 0 || p->inputs > 256)
		broken("channels or inputs out of 0..256");
	if (!(p->transports & (PROF_T_RTU | PROF_T_TCP)))
		broken("no transport");
	if ((p->kind == PROF_RELAY || p->kind == PROF_LIFT) && (p->channels < 1 || !p->write))
		broken("a relay profile without channels or write style");
	if (p->code_max < 1 || p->code_max > 32)
		broken("code_max out of 1..32");
	if (p->retries < 0 || p->retries > 10 || p->gap_ms < 0 || p->gap_ms > 1000 ||
	    p->response_timeout_ms < 10 || p->poll_ms < 10)
		broken("timing out of its limits");
	if (!strchr("NEO", p->parity) || !p->parity)
		broken("parity not N, E or O");
	static const char *const modes[] = { "rs485", "rs485_input_nonlatching", "rs485_input_latching", "ethernet",
					     "" };
	for (int i = 0; i < 5; i++)
		(void)profile_mode_ok(p, modes[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		abort();
	if (size && fwrite(data, 1, size, f) != size)
		abort();
	fclose(f);
	profile_t p;
	gh_err_t err = { 0 };
	if (profile_load_file(path, &p, &err) == 0)
		check(&p);
	else if (!strstr(err.message, path))
		broken("a refused profile whose error does not name the file");
	gh_err_t err2 = { 0 };
	int rc = profiles_load(dir, &err2);
	if (rc == 0) {
		if (profile_count() != 1)
			broken("registry size is not 1");
		check(profile_at(0));
		if (profile_find(profile_at(0)->name) != profile_at(0))
			broken("profile_find misses a loaded profile");
	}
	profiles_free();
	return 0;
}
