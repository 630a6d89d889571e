/* Entity JSON -> the one validator and the store (daemon/validate.c,
 * daemon/entity.c, daemon/jutil.c): what the REST API, the cloud, the CLI
 * and imports all hand to ent_put.
 *
 * Input: byte 0 picks the entity kind (low 4 bits, mod ENT__COUNT) and the context
 * (bit 4: a local edit, audited and journaled; bit 5: a cloud snapshot,
 * lenient references; bit 6: the id comes from the path, "x1"; bit 7: the
 * site's other settings, PIN mode and temp keys of at most 30 days); the rest
 * is the JSON text. Several records, one a line, are applied in order (the
 * settings bit of the first counts; a record stays stored for the next).
 * Checks, on top of the sanitizers: a put that succeeds
 * stores a canonical form that reads back, validates again (ent_check) and
 * can be put again unchanged; ent_check and ent_put agree. */
#include "fuzz_common.h"
#include "jutil.h"

static store_t *st;

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
	fz_snapshot(st);
	return 0;
}

static void fail(const char *what, ent_t e, const char *text, const gh_err_t *err)
{
	fprintf(stderr, "INVARIANT BROKEN: %s (%s): %d %s %s: %s\n", what, ent_name(e), err ? err->status : 0,
		err ? err->field : "", err ? err->message : "", text);
	abort();
}

/* One record: byte 0 and the JSON text. LAST: delete what was stored. */
static void one(const uint8_t *data, size_t size, int last)
{
	if (size < 1)
		return;
	ent_t e = (ent_t)((data[0] & 0x0f) % ENT__COUNT);
	ent_ctx_t ctx = { .local = (data[0] >> 4) & 1, .actor = "fuzz", .lenient_refs = (data[0] >> 5) & 1 };
	if (ctx.lenient_refs) {
		ctx.actor = "cloud";
		ctx.local = 0;
		ctx.rev = 7;
	}
	const char *pid = (data[0] >> 6) & 1 ? "x1" : NULL;
	json_error_t je;
	json_t *j = json_loadb((const char *)data + 1, size - 1, JSON_DECODE_ANY, &je);
	if (!j)
		return;

	gh_err_t cerr = { 0 }, perr = { 0 };
	json_t *checked = NULL, *stored = NULL;
	int crc = ent_check(st, e, pid, j, &checked, &cerr);
	int prc = ent_put(st, e, pid, j, &ctx, &stored, &perr);
	if (getenv("GH_FUZZ_VERBOSE"))
		fprintf(stderr, "%s: check %d (%d %s: %s), put %d (%d %s: %s)\n", ent_name(e), crc, cerr.status, cerr.field,
			cerr.message, prc, perr.status, perr.field, perr.message);
	if (crc && cerr.message[0] == '\0')
		fail("ent_check failed without a message", e, "", &cerr);
	if (prc && perr.message[0] == '\0')
		fail("ent_put failed without a message", e, "", &perr);
	if (prc && (perr.status < 400 || perr.status > 500))
		fail("ent_put failed with a status out of 400..500", e, "", &perr);
	/* the validator alone accepts what the store accepts (the store may
	 * still refuse a valid entity, e.g. a duplicate PIN: 409) */
	if (prc == 0 && crc && !ctx.lenient_refs)
		fail("ent_put stored what ent_check refused", e, "", &cerr);
	if (prc == 0) {
		const char *id = json_string_value(json_object_get(stored, "id"));
		char *txt = jdump(stored);
		if (!id)
			fail("stored entity without an id", e, txt, NULL);
		json_t *got = NULL, *again = NULL;
		gh_err_t err = { 0 };
		if (ent_get(st, e, e == ENT_SETTINGS ? "site" : id, &got, &err))
			fail("stored entity does not read back", e, txt, &err);
		/* the canonical form is valid input and a fixed point */
		if (!ctx.lenient_refs && ent_check(st, e, id, got, &again, &err))
			fail("stored canonical form does not validate", e, txt, &err);
		json_decref(again);
		again = NULL;
		if (ent_put(st, e, id, got, &ctx, &again, &err))
			fail("stored canonical form cannot be put again", e, txt, &err);
		json_decref(again);
		if (last && e != ENT_SETTINGS && ent_delete(st, e, id, &ctx, &err) && err.status != 409)
			fail("stored entity cannot be deleted", e, txt, &err);
		json_decref(got);
		free(txt);
	}
	json_decref(checked);
	json_decref(stored);
	json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 65536)
		return 0;
	fz_restore(st);
	if (data[0] & 0x80)
		fz_put(st, ENT_SETTINGS, "{\"pin_mode\":\"pin\",\"temp_key_max_days\":30,\"kind\":\"office\"}");
	/* records on lines of their own: later ones see what earlier ones stored */
	for (int n = 0; size && n < 8; n++) {
		const uint8_t *nl = memchr(data, '\n', size);
		size_t len = nl ? (size_t)(nl - data) : size;
		one(data, len, !nl || n == 7);
		if (!nl)
			break;
		size -= len + 1;
		data = nl + 1;
	}
	return 0;
}
