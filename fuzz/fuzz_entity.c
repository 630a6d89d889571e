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
 * can be put again unchanged; ent_check and ent_put agree; a cloud record
 * put in two halves (ent_prepare, then ent_put with ctx.prepared, as a
 * cloud page's thread and the loop do) is taken or refused as the whole put
 * and stored the same. */
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

/* J put in two halves, in a transaction rolled back: 0 stored (*OUT its
 * canonical JSON text), -1 refused. */
static int put_in_halves(ent_t e, const char *pid, const json_t *j, const ent_ctx_t *ctx, char **out)
{
	/* a cloud change names its id (ent_prepare takes "id" out of the data) */
	char idbuf[256];
	*out = NULL;
	if (!pid && !json_is_string(json_object_get(j, "id")))
		return -2;
	snprintf(idbuf, sizeof idbuf, "%s", pid ? pid : json_string_value(json_object_get(j, "id")));
	pid = idbuf;
	json_t *h = json_deep_copy(j);
	char *text = NULL;
	gh_err_t err = { 0 };
	int rc = -1, prc = ent_prepare(e, pid, h, &err);
	if (prc < 0 && err.message[0] == '\0')
		fail("ent_prepare refused without a message", e, "", &err);
	if (prc >= 0 && store_begin(st) == 0) {
		ent_ctx_t hc = *ctx;
		hc.consume = 1;
		if (prc > 0 && (text = json_dumps(h, JSON_COMPACT))) {
			hc.prepared = text;
			hc.prepared_len = strlen(text);
		}
		json_t *stored = NULL, *got = NULL;
		rc = ent_put(st, e, pid, h, &hc, &stored, &err);
		const char *id = json_string_value(json_object_get(stored, "id"));
		if (rc == 0 && ent_get(st, e, e == ENT_SETTINGS ? "site" : id, &got, &err) == 0)
			*out = json_dumps(got, JSON_SORT_KEYS | JSON_COMPACT); /* as stored */
		json_decref(got);
		json_decref(stored);
		store_rollback(st);
	}
	free(text);
	json_decref(h);
	return rc;
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
	char *halves = NULL;
	int hrc = ctx.lenient_refs && json_is_object(j) ? put_in_halves(e, pid, j, &ctx, &halves) : -2;
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
	if (hrc != -2 && (hrc == 0) != (prc == 0))
		fail(hrc ? "in two halves refused what the whole put stored" : "in two halves stored what the whole put refused",
		     e, "", &perr);
	if (prc == 0) {
		const char *id = json_string_value(json_object_get(stored, "id"));
		char *txt = jdump(stored);
		if (!id)
			fail("stored entity without an id", e, txt, NULL);
		json_t *got = NULL, *again = NULL;
		gh_err_t err = { 0 };
		if (ent_get(st, e, e == ENT_SETTINGS ? "site" : id, &got, &err))
			fail("stored entity does not read back", e, txt, &err);
		if (hrc == 0) {
			char *whole = json_dumps(got, JSON_SORT_KEYS | JSON_COMPACT);
			if (!halves || !whole || strcmp(whole, halves))
				fail("stored differently in two halves", e, halves ? halves : "(not read back)", NULL);
			free(whole);
		}
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
	free(halves);
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
