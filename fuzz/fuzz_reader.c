/* The Modbus reader block (drivers/bus.c, MODBUS.md "Reader block"): what a
 * UHF reader or LPR camera hands back to a poll, decoded by
 * bus_reader_decode exactly as the bus layer does for every poll result.
 *
 * Input: byte 0 is the profile's code_max (mod 33; 0 = the default 32),
 * then one or more 38-byte blocks of 19 registers, big-endian as on the
 * wire; a trailing partial block is ignored. The first block sets the
 * sequence baseline like the first poll of a reader. Checks: a read that
 * is passed on has exactly the length the block announced, at most
 * code_max printable ASCII bytes, a direction 0..2; a read is passed on
 * only when the sequence moved. */
#include "bus.h"
#include "fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fz_quiet();
	return 0;
}

static void broken(const char *what, int i)
{
	fprintf(stderr, "INVARIANT BROKEN: block %d: %s\n", i, what);
	abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	int code_max = data[0] % 33;
	int eff_max = code_max ? code_max : 32;
	int have = 0;
	uint16_t last = 0;
	for (size_t off = 1, i = 0; off + 38 <= size; off += 38, i++) {
		uint16_t regs[19];
		for (int r = 0; r < 19; r++)
			regs[r] = (uint16_t)(data[off + 2 * (size_t)r] << 8 | data[off + 2 * (size_t)r + 1]);
		int had = have;
		uint16_t before = last;
		char code[33];
		memset(code, 'X', sizeof code);
		int dir = -1;
		int rc = bus_reader_decode("rfuzz", regs, code_max ? code_max : 32, &have, &last, &dir, code);
		if (!have || last != regs[0])
			broken("the sequence is not tracked", (int)i);
		if (rc != 0 && (!had || before == regs[0]))
			broken("a read without a moved sequence", (int)i);
		if (rc == 0 && had && before != regs[0])
			broken("a moved sequence ignored", (int)i);
		if (rc == 1) {
			size_t len = strnlen(code, sizeof code);
			if (len == sizeof code)
				broken("code not terminated", (int)i);
			if (len != regs[2] || len < 1 || len > (size_t)eff_max)
				broken("code length differs from the block's", (int)i);
			for (size_t k = 0; k < len; k++)
				if (code[k] < 0x20 || code[k] > 0x7e)
					broken("unprintable byte passed on", (int)i);
			if (dir < 0 || dir > 2)
				broken("direction out of 0..2", (int)i);
		}
	}
	return 0;
}
