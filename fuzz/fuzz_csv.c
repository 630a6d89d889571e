/* Residents CSV import (daemon/csv.c, daemon/import.c; docs/IMPORT.md): the
 * file an installer uploads in the web UI or hands to `gatehouse import
 * residents`, on a seeded site (the group "g1" and the buildings exist).
 *
 * Input: the CSV bytes as they are. An odd-sized input is imported with
 * --partial (good rows kept), an even-sized one all or nothing. Checks:
 * the CSV reader alone never returns more than CSV_MAX_COLS cells nor a
 * cell over its limit; every import answers with a report (or an error
 * naming why there is none); all-or-nothing keeps nothing when it fails. */
#include <stdio.h>

#include "csv.h"
#include "fuzz_common.h"
#include "import.h"

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

static void broken(const char *what)
{
	fprintf(stderr, "INVARIANT BROKEN: %s\n", what);
	abort();
}

static void reader_only(const uint8_t *data, size_t size)
{
	FILE *f = fmemopen((void *)data, size, "r");
	if (!f)
		abort();
	csv_reader_t *r = csv_open(f);
	char **fields;
	int n, rc;
	gh_err_t err = { 0 };
	long line = 0;
	while ((rc = csv_next(r, &fields, &n, &err)) == 1) {
		if (n < 1 || n > CSV_MAX_COLS)
			broken("a record with a cell count out of 1..CSV_MAX_COLS");
		for (int i = 0; i < n; i++)
			if (strlen(fields[i]) > CSV_MAX_FIELD)
				broken("a cell over CSV_MAX_FIELD");
		if (csv_line(r) <= line)
			broken("line numbers do not move on");
		line = csv_line(r);
	}
	if (rc < 0 && (err.status != 400 || !strstr(err.message, "line ")))
		broken("a CSV error that is not a 400 naming the line");
	if (rc < 0 && csv_next(r, &fields, &n, &err) != -1)
		broken("the reader goes on after an error");
	csv_close(r);
	fclose(f);
}

static int64_t persons(void) { return ent_count(st, ENT_PERSON) + ent_count(st, ENT_CREDENTIAL); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0 || size > CSV_MAX_LINE * 4)
		return 0;
	reader_only(data, size);
	fz_restore(st);
	int partial = (int)(size & 1);
	FILE *f = fmemopen((void *)data, size, "r");
	if (!f)
		abort();
	const ent_ctx_t ctx = { .local = 1, .actor = "import" };
	json_t *report = NULL;
	gh_err_t err = { 0 };
	int64_t before = persons();
	int rc = import_residents(st, f, &ctx, partial, &report, &err);
	fclose(f);
	if (!report)
		broken("no report");
	if (rc && !err.message[0])
		broken("a failed import without a message");
	if (rc && persons() != before)
		broken("a failed import kept rows");
	if (!json_is_integer(json_object_get(report, "rows")) || !json_is_array(json_object_get(report, "errors")))
		broken("a report without rows or errors");
	if (!rc && !partial && json_array_size(json_object_get(report, "errors")))
		broken("an all-or-nothing import succeeded with errors");
	json_decref(report);
	return 0;
}
