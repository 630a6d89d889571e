/* The CSV reader and the residents import against a real SQLite site:
 * both manual templates, quoting, BOM and CRLF, bad rows with their line
 * and column, all-or-nothing versus partial, header problems, limits. */
#include "csv.h"
#include "import.h"
#include "jutil.h"
#include "testutil.h"

static store_t *st;

static void setup(void) { st = tu_store(); }

static void teardown(void)
{
	store_close(st);
	st = NULL;
	tu_rmdir();
}

/* ---- helpers ---- */

static const char *dump(const json_t *j)
{
	static char buf[8192];
	char *s = j ? jdump(j) : NULL;
	snprintf(buf, sizeof buf, "%s", s ? s : "(null)");
	free(s);
	return buf;
}

/* Imports FILE (a path or an open stream), asserting the return code. */
static json_t *import_stream(FILE *f, int partial, int expect_rc, gh_err_t *err)
{
	ent_ctx_t ctx = { .local = 1, .actor = "import" };
	json_t *rep = NULL;
	int rc = import_residents(st, f, &ctx, partial, &rep, err);
	cr_assert_not_null(rep, "no report");
	cr_assert_eq(rc, expect_rc, "rc %d (%d %s: %s), report %s", rc, err->status, err->code,
		     err->message, dump(rep));
	cr_assert_eq(store_in_tx(st), 0, "import left a transaction open");
	return rep;
}

static json_t *import_file(const char *path, int partial, int expect_rc, gh_err_t *err)
{
	FILE *f = fopen(path, "rb");
	cr_assert_not_null(f, "cannot open %s", path);
	json_t *rep = import_stream(f, partial, expect_rc, err);
	fclose(f);
	return rep;
}

static json_t *import_text(const char *text, int partial, int expect_rc, gh_err_t *err)
{
	FILE *f = fmemopen((void *)(uintptr_t)text, strlen(text), "rb");
	cr_assert_not_null(f);
	json_t *rep = import_stream(f, partial, expect_rc, err);
	fclose(f);
	return rep;
}

static json_int_t rep_int(const json_t *rep, const char *key)
{
	json_t *v = json_object_get(rep, key);
	cr_assert(json_is_integer(v), "report has no %s: %s", key, dump(rep));
	return json_integer_value(v);
}

/* The report's error about LINE (asserted to exist). */
static json_t *error_at(json_t *rep, json_int_t line)
{
	size_t i;
	json_t *e;
	json_array_foreach(json_object_get(rep, "errors"), i, e) if (json_integer_value(
	    json_object_get(e, "line")) == line) return e;
	cr_assert_fail("no error for line %lld in %s", (long long)line, dump(rep));
	return NULL;
}

static void expect_error(json_t *rep, json_int_t line, const char *field, const char *msg_part)
{
	json_t *e = error_at(rep, line);
	cr_assert_str_eq(json_string_value(json_object_get(e, "field")), field, "line %lld: %s",
			 (long long)line, dump(e));
	const char *m = json_string_value(json_object_get(e, "message"));
	cr_assert(m && strstr(m, msg_part), "line %lld: message \"%s\" lacks \"%s\"",
		  (long long)line, m ? m : "", msg_part);
}

static int64_t sql_int(const char *sql, const char *arg)
{
	sqlite3_stmt *s = NULL;
	cr_assert_eq(sqlite3_prepare_v2(store_db(st), sql, -1, &s, NULL), SQLITE_OK, "%s", sql);
	if (arg)
		sqlite3_bind_text(s, 1, arg, -1, SQLITE_TRANSIENT);
	cr_assert_eq(sqlite3_step(s), SQLITE_ROW, "%s", sql);
	int64_t n = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return n;
}

/* The stored person with that first name (asserted unique). */
static json_t *person(const char *first)
{
	sqlite3_stmt *s = NULL;
	cr_assert_eq(sqlite3_prepare_v2(store_db(st), "SELECT id FROM persons WHERE first_name = ?",
				       -1, &s, NULL),
		     SQLITE_OK);
	sqlite3_bind_text(s, 1, first, -1, SQLITE_TRANSIENT);
	cr_assert_eq(sqlite3_step(s), SQLITE_ROW, "no person %s", first);
	char id[80];
	snprintf(id, sizeof id, "%s", (const char *)sqlite3_column_text(s, 0));
	cr_assert_eq(sqlite3_step(s), SQLITE_DONE, "two persons named %s", first);
	sqlite3_finalize(s);
	json_t *p = NULL;
	gh_err_t err = { 0 };
	cr_assert_eq(ent_get(st, ENT_PERSON, id, &p, &err), 0, "%s", err.message);
	return p;
}

static json_t *apartment_of(const json_t *p)
{
	json_t *a = NULL;
	gh_err_t err = { 0 };
	cr_assert_eq(ent_get(st, ENT_APARTMENT, json_string_value(json_object_get(p, "apartment")),
			     &a, &err),
		     0, "%s", err.message);
	return a;
}

static void expect_str(const json_t *o, const char *key, const char *want)
{
	const char *v = json_string_value(json_object_get(o, key));
	cr_assert(v && !strcmp(v, want), "%s: want \"%s\", have %s", key, want, dump(o));
}

static void expect_json(const json_t *o, const char *key, const char *want_json)
{
	json_t *want = tu_json(want_json);
	cr_assert(json_equal(json_object_get(o, key), want), "%s: want %s, have %s", key, want_json,
		  dump(json_object_get(o, key)));
	json_decref(want);
}

/* Codes of the person's credentials of TYPE, sorted, ';'-joined. */
static const char *codes(const json_t *p, const char *type)
{
	static char buf[512];
	sqlite3_stmt *s = NULL;
	cr_assert_eq(sqlite3_prepare_v2(store_db(st),
				       "SELECT code FROM credentials WHERE person = ? AND type = ? "
				       "ORDER BY code",
				       -1, &s, NULL),
		     SQLITE_OK);
	sqlite3_bind_text(s, 1, json_string_value(json_object_get(p, "id")), -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 2, type, -1, SQLITE_TRANSIENT);
	size_t o = 0;
	buf[0] = '\0';
	while (sqlite3_step(s) == SQLITE_ROW && o < sizeof buf)
		o += (size_t)snprintf(buf + o, sizeof buf - o, "%s%s", o ? ";" : "",
				      (const char *)sqlite3_column_text(s, 0));
	sqlite3_finalize(s);
	return buf;
}

static int group_has(const char *gid, const json_t *p)
{
	json_t *g = NULL;
	gh_err_t err = { 0 };
	cr_assert_eq(ent_get(st, ENT_ACCESS_GROUP, gid, &g, &err), 0, "%s", err.message);
	json_t *ps = json_object_get(json_object_get(g, "members"), "persons");
	size_t i;
	json_t *x;
	int found = 0;
	json_array_foreach(ps, i, x) if (!strcmp(json_string_value(x),
						 json_string_value(json_object_get(p, "id")))) found = 1;
	json_decref(g);
	return found;
}

static void nothing_stored(void)
{
	cr_assert_eq(ent_count(st, ENT_BUILDING), 0);
	cr_assert_eq(ent_count(st, ENT_APARTMENT), 0);
	cr_assert_eq(ent_count(st, ENT_PERSON), 0);
	cr_assert_eq(ent_count(st, ENT_CREDENTIAL), 0);
}

/* All records of TEXT through the CSV reader, as "a|b|c\n" lines. */
static int csv_all(const char *text, size_t len, char *out, size_t outlen, gh_err_t *err)
{
	FILE *f = fmemopen((void *)(uintptr_t)text, len, "rb");
	cr_assert_not_null(f);
	csv_reader_t *r = csv_open(f);
	cr_assert_not_null(r);
	char **fields;
	int n, rc;
	size_t o = 0;
	out[0] = '\0';
	while ((rc = csv_next(r, &fields, &n, err)) == 1) {
		for (int i = 0; i < n && o < outlen; i++)
			o += (size_t)snprintf(out + o, outlen - o, "%s%s", i ? "|" : "", fields[i]);
		if (o < outlen)
			o += (size_t)snprintf(out + o, outlen - o, "@%ld\n", csv_line(r));
	}
	csv_close(r);
	fclose(f);
	return rc;
}

/* ---- the CSV reader ---- */

Test(csv, quoting_and_line_breaks)
{
	static const char text[] = "a,\"b,c\",\"say \"\"hi\"\"\"\n"
				   "\"two\nlines\",,x\r\n"
				   "\n"
				   "\"\",last";
	char out[512];
	gh_err_t err = { 0 };
	cr_assert_eq(csv_all(text, sizeof text - 1, out, sizeof out, &err), 0, "%s", err.message);
	cr_assert_str_eq(out, "a|b,c|say \"hi\"@1\n"
			      "two\nlines||x@2\n"
			      "@4\n"
			      "|last@5\n");
}

Test(csv, bom_crlf_and_lone_cr)
{
	static const char text[] = "\xef\xbb\xbfName,Apt\r\nLily,101\rTom,102\r\n";
	char out[256];
	gh_err_t err = { 0 };
	cr_assert_eq(csv_all(text, sizeof text - 1, out, sizeof out, &err), 0, "%s", err.message);
	cr_assert_str_eq(out, "Name|Apt@1\nLily|101@2\nTom|102@3\n");
}

Test(csv, not_a_bom)
{
	static const char text[] = "\xef\xbb" "x,y\n";
	char out[64];
	gh_err_t err = { 0 };
	cr_assert_eq(csv_all(text, sizeof text - 1, out, sizeof out, &err), 0, "%s", err.message);
	cr_assert_str_eq(out, "\xef\xbb" "x|y@1\n");
}

static void expect_csv_error(const char *text, size_t len, const char *msg_part)
{
	char out[256];
	gh_err_t err = { 0 };
	cr_assert_eq(csv_all(text, len, out, sizeof out, &err), -1, "no error for %.40s", text);
	cr_assert_eq(err.status, 400);
	cr_assert(strstr(err.message, msg_part), "message \"%s\" lacks \"%s\"", err.message,
		  msg_part);
}

Test(csv, syntax_errors_name_the_line)
{
#define ECSV(lit, msg) expect_csv_error(lit, sizeof lit - 1, msg)
	ECSV("a,b\nc,\"open\nstill open", "line 2: a quoted field is not closed");
	ECSV("a,b\nc,d\"e\n", "line 2: a \" inside an unquoted field");
	ECSV("a\n\"x\"y,z\n", "line 2: unexpected text after a closing quote");
	ECSV("a,b\nc,d\0e\n", "line 2: the file contains a NUL byte");
	ECSV("h\n\"a\nb\nc\",x\"y\n", "line 4: a \" inside an unquoted field");
#undef ECSV
}

Test(csv, limits)
{
	static char text[80000];
	/* 65 columns */
	size_t o = (size_t)snprintf(text, sizeof text, "ok\n");
	for (int i = 0; i < 65; i++)
		o += (size_t)snprintf(text + o, sizeof text - o, "%sc", i ? "," : "");
	expect_csv_error(text, o, "line 2: more than 64 columns");
	/* 64 columns are fine */
	char out[512];
	gh_err_t err = { 0 };
	o = 0;
	for (int i = 0; i < 64; i++)
		o += (size_t)snprintf(text + o, sizeof text - o, "%sc", i ? "," : "");
	cr_assert_eq(csv_all(text, o, out, sizeof out, &err), 0, "%s", err.message);
	/* a field of 4097 bytes, quoted or not; 4096 is fine */
	o = (size_t)snprintf(text, sizeof text, "a\nb\n\"");
	memset(text + o, 'x', 4097);
	o += 4097;
	text[o++] = '"';
	expect_csv_error(text, o, "line 3: column 1 is longer than 4096 bytes");
	o = (size_t)snprintf(text, sizeof text, "a,");
	memset(text + o, 'x', 4096);
	o += 4096;
	cr_assert_eq(csv_all(text, o, out, sizeof out, &err), 0, "%s", err.message);
	/* a line of more than 64 KiB made of short fields */
	o = (size_t)snprintf(text, sizeof text, "h\n");
	for (int i = 0; i < 56; i++) {
		memset(text + o, 'y', 1200);
		o += 1200;
		text[o++] = ',';
	}
	memset(text + o, 'z', 100);
	o += 100;
	expect_csv_error(text, o, "line 2: the line is longer than 65536 bytes");
}

Test(csv, empty_input)
{
	char out[16];
	gh_err_t err = { 0 };
	cr_assert_eq(csv_all("", 0, out, sizeof out, &err), 0);
	cr_assert_str_eq(out, "");
	cr_assert_eq(csv_all("\xef\xbb\xbf", 3, out, sizeof out, &err), 0);
	cr_assert_str_eq(out, "");
}

/* ---- the import ---- */

TestSuite(import, .init = setup, .fini = teardown);

static void groups(void)
{
	tu_put(st, ENT_ACCESS_GROUP, "{\"id\":\"grp-res\",\"name\":\"Residents\"}");
	tu_put(st, ENT_ACCESS_GROUP, "{\"id\":\"grp-pool\",\"name\":\"Pool\"}");
}

Test(import, property_manager_template)
{
	groups();
	tu_put(st, ENT_BUILDING, "{\"id\":\"b-tower-b\",\"name\":\"Tower B\"}");
	gh_err_t err = { 0 };
	json_t *rep = import_file("tests/data/residents_pm.csv", 0, 0, &err);
	cr_assert_eq(rep_int(rep, "rows"), 8, "%s", dump(rep));
	cr_assert_eq(rep_int(rep, "imported"), 8);
	cr_assert_eq(rep_int(rep, "failed"), 0);
	cr_assert_eq(json_array_size(json_object_get(rep, "errors")), 0);
	json_decref(rep);

	cr_assert_eq(ent_count(st, ENT_BUILDING), 2); /* Tower B reused, Tower A created */
	cr_assert_eq(ent_count(st, ENT_APARTMENT), 5);
	cr_assert_eq(ent_count(st, ENT_PERSON), 8);
	cr_assert_eq(ent_count(st, ENT_CREDENTIAL), 13);
	cr_assert_eq(sql_int("SELECT count(*) FROM persons WHERE kind = 'family'", NULL), 3);
	cr_assert_eq(sql_int("SELECT count(*) FROM buildings WHERE id LIKE 'local-%' AND name = ?",
			     "Tower A"),
		     1);

	json_t *lily = person("Lily"), *apt = apartment_of(lily);
	expect_str(lily, "kind", "resident");
	expect_str(lily, "last_name", "Green");
	expect_str(lily, "email", "lily@example.com");
	expect_str(lily, "mobile", "14587444");
	expect_str(lily, "country_code", "1");
	expect_str(lily, "remark", "tenant");
	expect_json(lily, "floors", "[\"3\",\"G0\"]");
	expect_json(lily, "landlines", "[\"555-0101\"]");
	cr_assert_str_eq(codes(lily, "rf"), "00FF11;A1B2C3D4");
	cr_assert_str_eq(codes(lily, "pin"), "1234");
	cr_assert_str_eq(codes(lily, "plate"), "W123AB;W456CD");
	cr_assert_str_eq(codes(lily, "uhf"), "E2000017221101441890A1");
	cr_assert(group_has("grp-res", lily));
	cr_assert(!group_has("grp-pool", lily));
	expect_str(apt, "apt", "101");
	expect_str(apt, "name", "Green Home");

	json_t *tom = person("Tom");
	expect_str(tom, "kind", "family");
	expect_str(tom, "apartment", json_string_value(json_object_get(lily, "apartment")));
	expect_json(tom, "floors", "[\"G1\",\"12\"]");
	expect_str(tom, "remark", "family");

	json_t *ann = person("Ann");
	expect_json(ann, "floors", "[\"all\"]");
	expect_json(ann, "landlines", "[\"0101\",\"0102\",\"0103\"]");
	expect_str(ann, "mobile", "+43 660 1234567");

	json_t *john = person("Smith, Jr."), *japt = apartment_of(john);
	expect_str(john, "remark", "says \"hi\", often");
	expect_str(japt, "name", "The \"Corner\" Flat, 2nd floor");

	json_t *maria = person("Maria"), *mapt = apartment_of(maria);
	expect_str(mapt, "building", "b-tower-b");
	expect_str(mapt, "apt", "1#01");
	expect_json(maria, "floors", "[\"-2\"]");
	cr_assert_str_eq(codes(maria, "uhf"), "UHF001;UHF002");
	cr_assert(group_has("grp-res", maria));
	cr_assert(group_has("grp-pool", maria));

	json_t *pablo = person("Pablo");
	expect_json(pablo, "floors", "[]");
	expect_str(pablo, "apartment", json_string_value(json_object_get(maria, "apartment")));
	json_t *rose = person("Rose");
	cr_assert_str_eq(codes(rose, "pin"), "5678");
	expect_json(rose, "floors", "[\"3\"]");

	/* local edits: audited and journaled as the import */
	cr_assert_gt(sql_int("SELECT count(*) FROM audit_logs WHERE actor = ?", "import"), 20);
	cr_assert_gt(sql_int("SELECT count(*) FROM local_changes WHERE actor = ?", "import"), 20);
	json_t *all[] = { lily, apt, tom, ann, john, japt, maria, mapt, pablo, rose };
	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
		json_decref(all[i]);
}

Test(import, installer_template)
{
	gh_err_t err = { 0 };
	json_t *rep = import_file("tests/data/residents_installer.csv", 0, 0, &err);
	cr_assert_eq(rep_int(rep, "imported"), 3, "%s", dump(rep));
	/* devices and analog handsets are reported, not imported */
	json_t *w = json_object_get(rep, "warnings");
	cr_assert_eq(json_array_size(w), 2, "%s", dump(rep));
	cr_assert_eq(json_integer_value(json_object_get(json_array_get(w, 0), "line")), 2);
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(w, 0), "field")), "Device");
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(w, 1), "field")),
			 "Analog Handset");
	json_decref(rep);
	cr_assert_eq(ent_count(st, ENT_DEVICE), 0);
	cr_assert_eq(ent_count(st, ENT_BUILDING), 1);
	cr_assert_eq(ent_count(st, ENT_APARTMENT), 3);

	json_t *lily = person("Lily"), *apt = apartment_of(lily);
	expect_str(apt, "name", "The Green");
	cr_assert_eq(json_integer_value(json_object_get(apt, "call_type")), 5);
	cr_assert_eq(json_integer_value(json_object_get(apt, "web_relay_id")), 1);
	expect_json(lily, "landlines", "[\"14587444\",\"1458333\"]");
	expect_json(lily, "floors", "[\"5\"]");
	expect_str(lily, "email", "Lily@aabbccc.com");
	json_t *sara = person("Sara"), *sapt = apartment_of(sara);
	expect_json(sara, "floors", "[\"-1\",\"G2\"]");
	cr_assert_eq(json_integer_value(json_object_get(sapt, "call_type")), 3);
	cr_assert_eq(json_integer_value(json_object_get(sapt, "web_relay_id")), 0);
	json_t *mark = person("Mark");
	expect_json(mark, "floors", "[\"all\"]");
	json_decref(lily);
	json_decref(apt);
	json_decref(sara);
	json_decref(sapt);
	json_decref(mark);
}

Test(import, bom_crlf_and_multiline_field)
{
	gh_err_t err = { 0 };
	json_t *rep = import_file("tests/data/residents_bom_crlf.csv", 1, 0, &err);
	cr_assert_eq(rep_int(rep, "rows"), 3, "%s", dump(rep));
	cr_assert_eq(rep_int(rep, "imported"), 2);
	/* the quoted remark spans lines 2-3: the bad PIN is on line 4 */
	expect_error(rep, 4, "PIN", "a PIN is 2-8 digits");
	json_decref(rep);
	json_t *lily = person("Lily");
	expect_str(lily, "remark", "first line\r\nsecond line");
	json_t *ann = person("Ann");
	expect_str(ann, "remark", "last");
	json_decref(lily);
	json_decref(ann);
}

static void expect_bad_rows(json_t *rep)
{
	cr_assert_eq(rep_int(rep, "rows"), 7, "%s", dump(rep));
	cr_assert_eq(rep_int(rep, "failed"), 5);
	cr_assert_eq(json_array_size(json_object_get(rep, "errors")), 5);
	expect_error(rep, 3, "Apt", "apt must be 1-6 digits, letters or '#', not starting with '#'");
	expect_error(rep, 4, "PIN", "must not start with 9");
	expect_error(rep, 5, "License Plate", "P6: a person has at most 5 licence plates");
	expect_error(rep, 6, "First Name", "first_name must be at most 64 bytes");
	expect_error(rep, 7, "PIN", "already in use");
	cr_assert_str_eq(json_string_value(json_object_get(error_at(rep, 7), "code")), "duplicate");
}

Test(import, bad_rows_roll_everything_back)
{
	gh_err_t err = { 0 };
	json_t *rep = import_file("tests/data/residents_bad.csv", 0, -1, &err);
	cr_assert_eq(err.status, 422);
	cr_assert_str_eq(err.code, "rows_failed");
	cr_assert(strstr(err.message, "5 of 7 rows failed"), "%s", err.message);
	cr_assert_eq(rep_int(rep, "imported"), 0);
	expect_bad_rows(rep);
	json_decref(rep);
	nothing_stored();
	cr_assert_eq(sql_int("SELECT count(*) FROM audit_logs", NULL), 0);
	cr_assert_eq(sql_int("SELECT count(*) FROM local_changes", NULL), 0);
}

Test(import, bad_rows_partial_keeps_good_rows)
{
	gh_err_t err = { 0 };
	json_t *rep = import_file("tests/data/residents_bad.csv", 1, 0, &err);
	cr_assert_eq(rep_int(rep, "imported"), 2);
	expect_bad_rows(rep);
	json_decref(rep);
	cr_assert_eq(ent_count(st, ENT_BUILDING), 1);
	cr_assert_eq(ent_count(st, ENT_APARTMENT), 2); /* 101 and 106: failed rows leave nothing */
	cr_assert_eq(ent_count(st, ENT_PERSON), 2);
	cr_assert_eq(ent_count(st, ENT_CREDENTIAL), 2);
	json_t *gina = person("Gina"), *gary = person("Gary");
	cr_assert_str_eq(codes(gina, "pin"), "1234");
	cr_assert_str_eq(codes(gary, "pin"), "2345");
	json_decref(gina);
	json_decref(gary);
}

Test(import, family_member_before_master)
{
	gh_err_t err = { 0 };
	json_t *rep = import_file("tests/data/residents_family_first.csv", 0, -1, &err);
	expect_error(rep, 2, "Account Type", "needs the apartment's master account");
	json_decref(rep);
	nothing_stored();
	rep = import_file("tests/data/residents_family_first.csv", 1, 0, &err);
	cr_assert_eq(rep_int(rep, "imported"), 1);
	json_decref(rep);
	json_t *lily = person("Lily");
	expect_str(lily, "kind", "resident");
	json_decref(lily);
	/* now the master is stored: the family member imports */
	rep = import_text("Building,Apt,Account Type,First Name\nTower A,101,1,Tom\n", 0, 0, &err);
	json_decref(rep);
	json_t *tom = person("Tom");
	expect_str(tom, "kind", "family");
	json_decref(tom);
}

Test(import, missing_required_column)
{
	gh_err_t err = { 0 };
	json_t *rep = import_file("tests/data/residents_missing_col.csv", 1, -1, &err);
	cr_assert_eq(err.status, 422);
	cr_assert_str_eq(err.code, "missing_column");
	cr_assert_str_eq(err.field, "Apt");
	cr_assert(strstr(err.message, "Apt"), "%s", err.message);
	expect_error(rep, 1, "Apt", "missing");
	json_decref(rep);
	nothing_stored();
}

Test(import, unknown_column)
{
	gh_err_t err = { 0 };
	json_t *rep = import_file("tests/data/residents_unknown_col.csv", 1, -1, &err);
	cr_assert_str_eq(err.code, "unknown_column");
	cr_assert(strstr(err.message, "\"Shoe Size\""), "%s", err.message);
	expect_error(rep, 1, "Shoe Size", "unknown column");
	json_decref(rep);
	nothing_stored();
}

Test(import, header_names_are_forgiving)
{
	gh_err_t err = { 0 };
	json_t *rep = import_text("BUILDING,apt,first_name,  Last Name ,Email (Optional),"
				  "Mobile Number(Optional),account type (0 master / 1 family),,\n"
				  "Tower A,101,Lily,Green,lily@example.com,123,0,,\n",
				  0, 0, &err);
	cr_assert_eq(rep_int(rep, "imported"), 1, "%s", dump(rep));
	json_decref(rep);
	json_t *lily = person("Lily");
	expect_str(lily, "email", "lily@example.com");
	expect_str(lily, "mobile", "123");
	json_decref(lily);
}

Test(import, duplicate_or_semicolon_header)
{
	gh_err_t err = { 0 };
	json_t *rep = import_text("Building,Apt,First Name,Phone1,1stPhone\n", 0, -1, &err);
	cr_assert_str_eq(err.code, "duplicate_column");
	json_decref(rep);
	rep = import_text("Building;Apt;First Name\nTower A;101;Lily\n", 0, -1, &err);
	cr_assert(strstr(err.message, "';'"), "%s", err.message);
	json_decref(rep);
}

Test(import, over_long_line)
{
	static char text[80000];
	size_t o = (size_t)snprintf(text, sizeof text,
				    "Building,Apt,First Name,Remark\nTower A,101,Lily,ok\nTower A,102,Ann,");
	memset(text + o, 'x', 70000);
	text[o + 70000] = '\0';
	gh_err_t err = { 0 };
	json_t *rep = import_text(text, 1, -1, &err);
	cr_assert_eq(err.status, 400);
	cr_assert(strstr(err.message, "line 3"), "%s", err.message);
	expect_error(rep, 3, "", "longer than");
	json_decref(rep);
	nothing_stored(); /* a file that cannot be read is not imported, even with partial */
}

Test(import, empty_file)
{
	gh_err_t err = { 0 };
	json_t *rep = import_file("tests/data/residents_empty.csv", 0, -1, &err);
	cr_assert_str_eq(err.code, "empty");
	cr_assert_eq(rep_int(rep, "rows"), 0);
	json_decref(rep);
}

Test(import, header_only_file)
{
	gh_err_t err = { 0 };
	json_t *rep = import_file("tests/data/residents_header_only.csv", 0, 0, &err);
	cr_assert_eq(rep_int(rep, "rows"), 0);
	cr_assert_eq(rep_int(rep, "imported"), 0);
	cr_assert_eq(rep_int(rep, "failed"), 0);
	json_decref(rep);
	nothing_stored();
}

Test(import, blank_rows_are_skipped)
{
	gh_err_t err = { 0 };
	json_t *rep = import_text("Building,Apt,First Name\n,,\n\nTower A,101,Lily\n , ,\n", 0, 0,
				  &err);
	cr_assert_eq(rep_int(rep, "rows"), 1, "%s", dump(rep));
	cr_assert_eq(rep_int(rep, "imported"), 1);
	json_decref(rep);
}

Test(import, row_problems_name_the_column)
{
	tu_put(st, ENT_ACCESS_GROUP, "{\"id\":\"grp-res\",\"name\":\"Residents\"}");
	gh_err_t err = { 0 };
	json_t *rep = import_text(
	    "Building,Apt,Account Type,First Name,Accessible Floors,CallType,Access Group ID,Email\n"
	    ",101,0,Lily,,,,\n"                     /* 2: no building */
	    "Tower A,101,2,Lily,,,,\n"              /* 3: account type */
	    "Tower A,101,0,Lily,All;3,,,\n"         /* 4: all + floors */
	    "Tower A,101,0,Lily,129,,,\n"           /* 5: floor range */
	    "Tower A,101,0,Lily,,x,,\n"             /* 6: call type not a number */
	    "Tower A,101,0,Lily,,9,,\n"             /* 7: call type range */
	    "Tower A,101,0,Lily,,,nope,\n"          /* 8: no such group */
	    "Tower A,101,0,Lily,,,,no-at-sign\n"    /* 9: email */
	    "Tower A,101,0,Lily,1;2;3;4;5;6;7;8;9;10;11,,,\n" /* 10: 11 floors */
	    "Tower A,101,0,Lily,,,grp-res,\n"       /* 11: fine */
	    "Tower A,101,0,Lily,,,,\n"              /* 12: the same person again */
	    "Tower A,101,0,Lily,\xff,,,\n"          /* 13: not UTF-8 */
	    "Tower A,101,0,Lily,,,,,extra\n",       /* 14: more cells than columns */
	    1, 0, &err);
	cr_assert_eq(rep_int(rep, "imported"), 1, "%s", dump(rep));
	cr_assert_eq(rep_int(rep, "failed"), 12);
	expect_error(rep, 2, "Building", "Building is required");
	expect_error(rep, 3, "Account Type", "must be 0");
	expect_error(rep, 4, "Accessible Floors", "\"All\" cannot be combined");
	expect_error(rep, 5, "Accessible Floors", "floors[0] must be a floor -10..128");
	expect_error(rep, 6, "CallType", "CallType must be a call type code 0-5");
	expect_error(rep, 7, "CallType", "call_type must be 0..5");
	expect_error(rep, 8, "Access Group ID", "no access_group with id \"nope\"");
	expect_error(rep, 9, "Email", "email must be an address");
	expect_error(rep, 10, "Accessible Floors", "at most 10 floors");
	expect_error(rep, 12, "First Name", "already a resident of apartment 101");
	expect_error(rep, 13, "Accessible Floors", "not valid UTF-8");
	expect_error(rep, 14, "", "the header has 8 columns");
	json_decref(rep);
	json_t *lily = person("Lily");
	cr_assert(group_has("grp-res", lily));
	json_decref(lily);
	cr_assert_eq(ent_count(st, ENT_APARTMENT), 1);
}

Test(import, existing_apartment_is_updated_not_duplicated)
{
	tu_put(st, ENT_BUILDING, "{\"id\":\"b1\",\"name\":\"Tower A\"}");
	tu_put(st, ENT_APARTMENT, "{\"id\":\"a1\",\"building\":\"b1\",\"apt\":\"101\",\"name\":\"Old\"}");
	gh_err_t err = { 0 };
	json_t *rep = import_text("Building,Apt,Apt Name,Floor,First Name,CallType\n"
				  "Tower A,101,New,g1,Lily,2\nTower A,101,,,Tom,\n",
				  0, 0, &err);
	json_decref(rep);
	cr_assert_eq(ent_count(st, ENT_APARTMENT), 1);
	json_t *a = NULL;
	cr_assert_eq(ent_get(st, ENT_APARTMENT, "a1", &a, &err), 0);
	expect_str(a, "name", "New"); /* a blank cell keeps the value */
	expect_str(a, "floor", "G1");
	cr_assert_eq(json_integer_value(json_object_get(a, "call_type")), 2);
	json_decref(a);
	json_t *tom = person("Tom");
	expect_str(tom, "apartment", "a1");
	json_decref(tom);
}

Test(import, without_report)
{
	static const char text[] = "Building,Apt,First Name\nTower A,101,Lily\n";
	FILE *f = fmemopen((void *)(uintptr_t)text, sizeof text - 1, "rb");
	gh_err_t err = { 0 };
	cr_assert_eq(import_residents(st, f, NULL, 0, NULL, &err), 0, "%s", err.message);
	fclose(f);
	cr_assert_eq(ent_count(st, ENT_PERSON), 1);
}

Test(import, ambiguous_building_name)
{
	tu_put(st, ENT_BUILDING, "{\"id\":\"b1\",\"name\":\"Tower A\"}");
	tu_put(st, ENT_BUILDING, "{\"id\":\"b2\",\"name\":\"Tower A\"}");
	gh_err_t err = { 0 };
	json_t *rep = import_text("Building,Apt,First Name\nTower A,101,Lily\n", 0, -1, &err);
	expect_error(rep, 2, "Building", "2 buildings are named \"Tower A\"");
	json_decref(rep);
	cr_assert_eq(ent_count(st, ENT_PERSON), 0);
}
