/* Residents CSV import: the manuals' property-manager (002) and installer
 * (003) templates -> buildings, apartments, persons, credentials and access
 * group members, all through ent_put (docs/IMPORT.md). */
#include "import.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "csv.h"

/* entries listed in the report; the counts stay exact beyond */
#define MAX_LISTED 1000

enum col {
	C_BUILDING, C_FLOORS, C_APT, C_APTNAME, C_FLOOR, C_ACCTYPE, C_FIRST, C_LAST, C_EMAIL,
	C_MOBILE, C_CC, C_PHONE1, C_PHONE2, C_PHONE3, C_RF, C_PIN, C_PLATE, C_UHF, C_GROUP,
	C_REMARK, C_DEVICE, C_CALLTYPE, C_WEBRELAY, C_HANDSET, C__COUNT
};

/* names used in messages when the column is not in the file */
static const char *const col_display[C__COUNT] = {
	"Building", "Accessible Floors", "Apt", "Apt Name", "Floor", "Account Type", "First Name",
	"Last Name", "Email", "Mobile Number", "Telephone Calling Code", "Phone1", "Phone2",
	"Phone3", "RF Card", "PIN", "License Plate", "UHF Card", "Access Group ID", "Remark",
	"Device", "CallType", "Web Relay ID", "Analog Handset",
};

/* header names, lower case without spaces, underscores and "(...)" */
static const struct {
	const char *key;
	int col;
} col_keys[] = {
	{ "building", C_BUILDING },
	{ "accessiblefloors", C_FLOORS },
	{ "apt", C_APT },
	{ "aptname", C_APTNAME },
	{ "floor", C_FLOOR },
	{ "accounttype", C_ACCTYPE },
	{ "firstname", C_FIRST },
	{ "lastname", C_LAST },
	{ "email", C_EMAIL },
	{ "mobilenumber", C_MOBILE },
	{ "telephonecallingcode", C_CC },
	{ "phone1", C_PHONE1 },
	{ "1stphone", C_PHONE1 },
	{ "phone2", C_PHONE2 },
	{ "2ndphone", C_PHONE2 },
	{ "phone3", C_PHONE3 },
	{ "3rdphone", C_PHONE3 },
	{ "rfcard", C_RF },
	{ "pin", C_PIN },
	{ "licenseplate", C_PLATE },
	{ "licenceplate", C_PLATE },
	{ "uhfcard", C_UHF },
	{ "accessgroupid", C_GROUP },
	{ "remark", C_REMARK },
	{ "device", C_DEVICE },
	{ "calltype", C_CALLTYPE },
	{ "webrelayid", C_WEBRELAY },
	{ "analoghandset", C_HANDSET },
};

static const int required_cols[] = { C_BUILDING, C_APT, C_FIRST };

typedef struct imp {
	store_t *st;
	const ent_ctx_t *ctx;
	int col[C__COUNT];          /* CSV column of each known column, or -1 */
	char *hdr[CSV_MAX_COLS];    /* header cells as written (trimmed) */
	int ncols;
	char *cell[CSV_MAX_COLS];   /* current row, trimmed */
	int ncells;
	long line;                  /* current row's line */
	json_t *errors, *warnings;
	int failed, nwarn;
	/* the current row's failure */
	int rcol;                   /* enum col, or -1 */
	int rraw;                   /* header column, or -1 */
	gh_err_t rerr;
} imp_t;

/* ---- small helpers ---- */

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strlen(s);
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		s[--n] = '\0';
	return s;
}

/* Length of the valid UTF-8 sequence at S, 0 if invalid. */
static size_t utf8_seq(const unsigned char *s)
{
	unsigned c = s[0], cp, min;
	size_t n;
	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF) {
		n = 2;
		min = 0x80;
	} else if ((c & 0xF0) == 0xE0) {
		n = 3;
		min = 0x800;
	} else if (c >= 0xF0 && c <= 0xF4) {
		n = 4;
		min = 0x10000;
	} else {
		return 0;
	}
	cp = c & (0xFFu >> (n + 1));
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3Fu);
	}
	if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return n;
}

static int utf8_ok(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	while (*p) {
		size_t n = utf8_seq(p);
		if (!n)
			return 0;
		p += n;
	}
	return 1;
}

/* A JSON string of S with invalid UTF-8 bytes (e.g. a message cut in the
 * middle of a character) replaced by '?'. */
static json_t *jsafe(const char *s)
{
	if (utf8_ok(s))
		return json_string(s);
	size_t len = strlen(s);
	char *b = malloc(len + 1);
	if (!b)
		return json_string("?");
	size_t o = 0;
	const unsigned char *p = (const unsigned char *)s;
	while (*p) {
		size_t n = utf8_seq(p);
		if (!n) {
			b[o++] = '?';
			p++;
		} else {
			memcpy(b + o, p, n);
			o += n;
			p += n;
		}
	}
	b[o] = '\0';
	json_t *j = json_string(b);
	free(b);
	return j;
}

static void norm_header(const char *in, char *out, size_t len)
{
	size_t n = 0;
	int depth = 0;
	for (const char *p = in; *p && n + 1 < len; p++) {
		if (*p == '(') {
			depth++;
			continue;
		}
		if (*p == ')') {
			if (depth)
				depth--;
			continue;
		}
		if (depth || *p == ' ' || *p == '_' || *p == '\t')
			continue;
		out[n++] = (char)tolower((unsigned char)*p);
	}
	out[n] = '\0';
}

/* Next item of S separated by any of SEPS, trimmed, empty items skipped,
 * copied into BUF; returns where to continue, NULL when done. */
static const char *next_item(const char *s, const char *seps, char *buf, size_t len)
{
	for (;;) {
		while (*s && strchr(seps, *s))
			s++;
		if (!*s)
			return NULL;
		size_t n = strcspn(s, seps);
		size_t c = n < len - 1 ? n : len - 1;
		memcpy(buf, s, c);
		buf[c] = '\0';
		s += n;
		char *t = trim(buf);
		if (*t) {
			memmove(buf, t, strlen(t) + 1);
			return s;
		}
	}
}

/* Whole number of 1-9 digits. */
static int parse_num(const char *s, long *out)
{
	size_t n = strlen(s);
	if (n < 1 || n > 9 || strspn(s, "0123456789") != n)
		return -1;
	*out = strtol(s, NULL, 10);
	return 0;
}

static const char *cell(const imp_t *im, int c)
{
	int i = im->col[c];
	return i >= 0 && i < im->ncells ? im->cell[i] : "";
}

static const char *col_name(const imp_t *im, int c)
{
	return im->col[c] >= 0 ? im->hdr[im->col[c]] : col_display[c];
}

static void add_entry(json_t *list, long line, const char *field, const char *code,
		      const char *msg)
{
	json_t *e = json_object();
	json_object_set_new(e, "line", json_integer(line));
	json_object_set_new(e, "field", jsafe(field));
	json_object_set_new(e, "code", jsafe(code));
	json_object_set_new(e, "message", jsafe(msg));
	json_array_append_new(list, e);
}

static void warn(imp_t *im, const char *field, const char *msg)
{
	if (im->nwarn++ < MAX_LISTED)
		add_entry(im->warnings, im->line, field, "ignored", msg);
}

/* The current row fails on column COL with E. */
static int row_fail(imp_t *im, int col, const gh_err_t *e)
{
	im->rcol = col;
	im->rraw = -1;
	im->rerr = *e;
	if (!e->status) /* a failure that did not say why: take it for the database's */
		gh_err(&im->rerr, 500, "database", "",
		       "line %ld: writing the row failed (database error, see the log)", im->line);
	return -1;
}

static int row_failf(imp_t *im, int col, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int row_failf(imp_t *im, int col, const char *code, const char *fmt, ...)
{
	gh_err_t e = { .status = 422 };
	snprintf(e.code, sizeof e.code, "%s", code);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e.message, sizeof e.message, fmt, ap);
	va_end(ap);
	return row_fail(im, col, &e);
}

/* ---- lookups (reads only; every write goes through ent_put) ---- */

/* 1 found (id into OUT), 0 not, -1 database error. */
static int find_id(store_t *st, const char *sql, const char *const *args, int nargs, char *out,
		   size_t len)
{
	sqlite3_stmt *s = store_stmt(st, sql);
	if (!s)
		return -1;
	for (int i = 0; i < nargs; i++)
		sqlite3_bind_text(s, i + 1, args[i], -1, SQLITE_TRANSIENT);
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		snprintf(out, len, "%s", (const char *)sqlite3_column_text(s, 0));
	sqlite3_reset(s);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

static int db_fail(imp_t *im, const char *what)
{
	gh_err_t e;
	store_db_err(im->st, &e, what);
	return row_fail(im, -1, &e);
}

/* ---- the entities of one row ---- */

static int building_row(imp_t *im, char *bid, size_t len)
{
	const char *name = cell(im, C_BUILDING);
	const char *args[] = { name };
	char count[24];
	int rc = find_id(im->st, "SELECT count(*) FROM buildings WHERE name = ?", args, 1, count,
			 sizeof count);
	if (rc < 0)
		return db_fail(im, "finding building");
	if (strcmp(count, "0") && strcmp(count, "1"))
		return row_failf(im, C_BUILDING, "ambiguous",
				 "%s buildings are named \"%s\": rename one of them first", count,
				 name);
	rc = find_id(im->st, "SELECT id FROM buildings WHERE name = ?", args, 1, bid, len);
	if (rc < 0)
		return db_fail(im, "finding building");
	if (rc)
		return 0;
	json_t *b = json_pack("{s:s}", "name", name), *out = NULL;
	gh_err_t e = { 0 };
	rc = ent_put(im->st, ENT_BUILDING, NULL, b, im->ctx, &out, &e);
	json_decref(b);
	if (rc)
		return row_fail(im, C_BUILDING, &e);
	snprintf(bid, len, "%s", json_string_value(json_object_get(out, "id")));
	json_decref(out);
	return 0;
}

static int apartment_col(const char *field)
{
	static const struct {
		const char *f;
		int col;
	} m[] = { { "apt", C_APT }, { "name", C_APTNAME }, { "floor", C_FLOOR },
		  { "call_type", C_CALLTYPE }, { "web_relay_id", C_WEBRELAY },
		  { "building", C_BUILDING } };
	for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
		if (!strcmp(field, m[i].f))
			return m[i].col;
	return -1;
}

/* Sets the apartment fields the row gives (blank = keep) on A; *changed
 * tells whether any differs from what A had. */
static int apartment_fields(imp_t *im, json_t *a, int *changed)
{
	static const struct {
		int col;
		const char *key;
		int num;
		const char *rule;
	} f[] = {
		{ C_APTNAME, "name", 0, NULL },
		{ C_FLOOR, "floor", 0, NULL },
		{ C_CALLTYPE, "call_type", 1, "a call type code 0-5" },
		{ C_WEBRELAY, "web_relay_id", 1, "a web relay action id 0-65535" },
	};
	*changed = 0;
	for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
		const char *v = cell(im, f[i].col);
		json_t *cur = json_object_get(a, f[i].key), *nv;
		if (!*v)
			continue;
		if (f[i].num) {
			long n;
			if (parse_num(v, &n))
				return row_failf(im, f[i].col, "invalid", "%s must be %s",
						 col_name(im, f[i].col), f[i].rule);
			if (json_is_integer(cur) && json_integer_value(cur) == n)
				continue;
			nv = json_integer(n);
		} else {
			char up[3];
			if (f[i].col == C_FLOOR && v[0] == 'g' && v[1] && !v[2]) { /* g1 = G1 */
				up[0] = 'G';
				up[1] = v[1];
				up[2] = '\0';
				v = up;
			}
			if (json_is_string(cur) && !strcmp(json_string_value(cur), v))
				continue;
			nv = json_string(v);
		}
		json_object_set_new(a, f[i].key, nv);
		*changed = 1;
	}
	return 0;
}

static int apartment_row(imp_t *im, const char *bid, char *aid, size_t len)
{
	const char *apt = cell(im, C_APT);
	const char *args[] = { bid, apt };
	int rc = find_id(im->st, "SELECT id FROM apartments WHERE building = ? AND apt = ?", args, 2,
			 aid, len);
	if (rc < 0)
		return db_fail(im, "finding apartment");
	json_t *a = NULL, *out = NULL;
	gh_err_t e = { 0 };
	int changed;
	if (rc) {
		if (ent_get(im->st, ENT_APARTMENT, aid, &a, &e))
			return row_fail(im, C_APT, &e);
	} else {
		a = json_pack("{s:s,s:s}", "building", bid, "apt", apt);
	}
	if (apartment_fields(im, a, &changed)) {
		json_decref(a);
		return -1;
	}
	if (rc && !changed) {
		json_decref(a);
		return 0;
	}
	rc = ent_put(im->st, ENT_APARTMENT, rc ? aid : NULL, a, im->ctx, &out, &e);
	json_decref(a);
	if (rc)
		return row_fail(im, apartment_col(e.field), &e);
	snprintf(aid, len, "%s", json_string_value(json_object_get(out, "id")));
	json_decref(out);
	return 0;
}

/* "Accessible Floors": labels separated by ';' or ',', or "All". */
static int floors_row(imp_t *im, json_t *p)
{
	const char *s = cell(im, C_FLOORS);
	char item[CSV_MAX_FIELD + 1];
	json_t *a = json_array();
	int all = 0;
	for (const char *q = s; (q = next_item(q, ";,", item, sizeof item));) {
		if (!strcasecmp(item, "all") || !strcasecmp(item, "all floors")) {
			all = 1;
			continue;
		}
		if (item[0] == 'g')
			item[0] = 'G'; /* g1 = G1 */
		json_array_append_new(a, json_string(item));
	}
	if (all && json_array_size(a)) {
		json_decref(a);
		return row_failf(im, C_FLOORS, "invalid",
				 "%s: \"All\" cannot be combined with other floors",
				 col_name(im, C_FLOORS));
	}
	if (all)
		json_array_append_new(a, json_string("all"));
	json_object_set_new(p, "floors", a);
	return 0;
}

static int person_col(const char *field, int kind, const int *lcol, int nl)
{
	static const struct {
		const char *f;
		int col;
	} m[] = { { "first_name", C_FIRST },   { "last_name", C_LAST }, { "email", C_EMAIL },
		  { "mobile", C_MOBILE },      { "country_code", C_CC }, { "remark", C_REMARK },
		  { "kind", C_ACCTYPE } };
	for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
		if (!strcmp(field, m[i].f))
			return m[i].col;
	if (!strncmp(field, "floors", 6))
		return C_FLOORS;
	if (!strncmp(field, "landlines[", 10)) {
		long i = strtol(field + 10, NULL, 10);
		return i >= 0 && i < nl ? lcol[i] : C_PHONE1;
	}
	if (!strcmp(field, "landlines"))
		return C_PHONE1;
	if (!strcmp(field, "apartment"))
		return kind == 1 ? C_ACCTYPE : C_APT; /* a family member needs its master */
	return -1;
}

static int person_row(imp_t *im, const char *aid, int kind, char *pid, size_t len)
{
	static const char *const kinds[] = { "resident", "family" };
	const char *first = cell(im, C_FIRST), *last = cell(im, C_LAST);
	const char *args[] = { aid, kinds[kind], first, last };
	char other[80];
	int rc = find_id(im->st,
			 "SELECT id FROM persons WHERE apartment = ?1 AND kind = ?2 AND first_name = ?3 "
			 "AND COALESCE(last_name, '') = ?4 ORDER BY id LIMIT 1",
			 args, 4, other, sizeof other);
	if (rc < 0)
		return db_fail(im, "finding person");
	if (rc)
		return row_failf(im, C_FIRST, "duplicate",
				 "%s %s is already a %s of apartment %s (person %s): the import adds "
				 "residents, it does not update them",
				 first, last, kinds[kind], cell(im, C_APT), other);

	json_t *p = json_pack("{s:s,s:s,s:s}", "kind", kinds[kind], "apartment", aid, "first_name",
			      first);
	static const struct {
		int col;
		const char *key;
	} strs[] = { { C_LAST, "last_name" }, { C_EMAIL, "email" }, { C_MOBILE, "mobile" },
		     { C_CC, "country_code" },   { C_REMARK, "remark" } };
	for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
		if (*cell(im, strs[i].col))
			json_object_set_new(p, strs[i].key, json_string(cell(im, strs[i].col)));
	int lcol[3], nl = 0;
	json_t *ll = json_array();
	for (int c = C_PHONE1; c <= C_PHONE3; c++)
		if (*cell(im, c)) {
			lcol[nl++] = c;
			json_array_append_new(ll, json_string(cell(im, c)));
		}
	json_object_set_new(p, "landlines", ll);
	if (floors_row(im, p)) {
		json_decref(p);
		return -1;
	}
	json_t *out = NULL;
	gh_err_t e = { 0 };
	rc = ent_put(im->st, ENT_PERSON, NULL, p, im->ctx, &out, &e);
	json_decref(p);
	if (rc)
		return row_fail(im, person_col(e.field, kind, lcol, nl), &e);
	snprintf(pid, len, "%s", json_string_value(json_object_get(out, "id")));
	json_decref(out);
	return 0;
}

static int credential(imp_t *im, const char *pid, const char *type, const char *code, int col,
		      int echo)
{
	json_t *c = json_pack("{s:s,s:s,s:s}", "person", pid, "type", type, "code", code);
	gh_err_t e = { 0 };
	int rc = ent_put(im->st, ENT_CREDENTIAL, NULL, c, im->ctx, NULL, &e);
	json_decref(c);
	if (!rc)
		return 0;
	if (echo && e.status != 500) { /* which of the codes of the cell */
		char msg[sizeof e.message];
		snprintf(msg, sizeof msg, "%s", e.message);
		snprintf(e.message, sizeof e.message, "%.64s: %.180s", code, msg);
	}
	return row_fail(im, col, &e);
}

static int credentials_row(imp_t *im, const char *pid)
{
	static const struct {
		int col;
		const char *type;
		int multi;
	} f[] = { { C_RF, "rf", 1 }, { C_PIN, "pin", 0 }, { C_PLATE, "plate", 1 },
		  { C_UHF, "uhf", 1 } };
	char item[CSV_MAX_FIELD + 1];
	for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
		const char *s = cell(im, f[i].col);
		if (!f[i].multi) {
			if (*s && credential(im, pid, f[i].type, s, f[i].col, 0))
				return -1;
			continue;
		}
		for (const char *q = s; (q = next_item(q, ";", item, sizeof item));)
			if (credential(im, pid, f[i].type, item, f[i].col, 1))
				return -1;
	}
	return 0;
}

/* "Access Group ID": group ids separated by ';'; the person joins each. */
static int groups_row(imp_t *im, const char *pid)
{
	char gid[CSV_MAX_FIELD + 1];
	for (const char *q = cell(im, C_GROUP); (q = next_item(q, ";", gid, sizeof gid));) {
		json_t *g = NULL;
		gh_err_t e = { 0 };
		if (ent_get(im->st, ENT_ACCESS_GROUP, gid, &g, &e))
			return row_fail(im, C_GROUP, &e);
		json_t *m = json_object_get(g, "members");
		if (!json_is_object(m)) {
			m = json_object();
			json_object_set_new(g, "members", m);
		}
		json_t *ps = json_object_get(m, "persons");
		if (!json_is_array(ps)) {
			ps = json_array();
			json_object_set_new(m, "persons", ps);
		}
		json_array_append_new(ps, json_string(pid));
		int rc = ent_put(im->st, ENT_ACCESS_GROUP, gid, g, im->ctx, NULL, &e);
		json_decref(g);
		if (rc)
			return row_fail(im, C_GROUP, &e);
	}
	return 0;
}

static int do_row(imp_t *im)
{
	im->rcol = im->rraw = -1;
	gh_err_clear(&im->rerr);
	for (int i = 0; i < im->ncells; i++) {
		if (!utf8_ok(im->cell[i])) {
			row_failf(im, -1, "invalid",
				  "not valid UTF-8 text (save the file as \"CSV UTF-8\")");
			im->rraw = i < im->ncols ? i : -1;
			return -1;
		}
		if (i >= im->ncols && *im->cell[i])
			return row_failf(im, -1, "malformed",
					 "this line has %d cells but the header has %d columns",
					 im->ncells, im->ncols);
		if (i < im->ncols && !*im->hdr[i] && *im->cell[i])
			warn(im, "", "a value in a column without a header was ignored");
	}
	for (size_t i = 0; i < sizeof required_cols / sizeof required_cols[0]; i++)
		if (!*cell(im, required_cols[i]))
			return row_failf(im, required_cols[i], "required", "%s is required",
					 col_name(im, required_cols[i]));
	const char *at = cell(im, C_ACCTYPE);
	int kind;
	if (!*at || !strcmp(at, "0"))
		kind = 0;
	else if (!strcmp(at, "1"))
		kind = 1;
	else
		return row_failf(im, C_ACCTYPE, "invalid",
				 "%s must be 0 (family master account) or 1 (family member)",
				 col_name(im, C_ACCTYPE));
	if (*cell(im, C_DEVICE))
		warn(im, col_name(im, C_DEVICE),
		     "devices are not imported from this file (they need the site's MAC library): "
		     "add them with `gatehouse device add`");
	if (*cell(im, C_HANDSET))
		warn(im, col_name(im, C_HANDSET), "analog handsets are not supported: ignored");

	char bid[80], aid[80], pid[80];
	return building_row(im, bid, sizeof bid) || apartment_row(im, bid, aid, sizeof aid) ||
			   person_row(im, aid, kind, pid, sizeof pid) ||
			   credentials_row(im, pid) || groups_row(im, pid)
		   ? -1
		   : 0;
}

/* ---- header ---- */

static int header_error(imp_t *im, gh_err_t *err, const char *field, const char *code,
			const char *msg)
{
	add_entry(im->errors, im->line, field, code, msg);
	return gh_err(err, 422, code, field, "%s", msg);
}

static int parse_header(imp_t *im, char **fields, int n, gh_err_t *err)
{
	char key[CSV_MAX_FIELD + 1], msg[256];
	char *unknown[CSV_MAX_COLS];
	int nunknown = 0;
	for (int c = 0; c < C__COUNT; c++)
		im->col[c] = -1;
	im->ncols = n;
	for (int i = 0; i < n; i++) {
		im->hdr[i] = strdup(trim(fields[i]));
		if (!im->hdr[i])
			return gh_err(err, 500, "nomem", "", "out of memory");
	}
	if (n == 1 && strchr(im->hdr[0], ';'))
		return header_error(im, err, "", "malformed",
				    "the header has a single column: the file seems to use ';' "
				    "between columns; save it as CSV with commas");
	for (int i = 0; i < n; i++) {
		if (!*im->hdr[i])
			continue; /* an empty column (spreadsheets add them) */
		norm_header(im->hdr[i], key, sizeof key);
		int c = -1;
		for (size_t k = 0; k < sizeof col_keys / sizeof col_keys[0]; k++)
			if (!strcmp(key, col_keys[k].key))
				c = col_keys[k].col;
		if (c < 0) {
			unknown[nunknown++] = im->hdr[i];
			continue;
		}
		if (im->col[c] >= 0) {
			snprintf(msg, sizeof msg, "columns \"%.64s\" and \"%.64s\" are the same column",
				 im->hdr[im->col[c]], im->hdr[i]);
			return header_error(im, err, im->hdr[i], "duplicate_column", msg);
		}
		im->col[c] = i;
	}
	if (nunknown) {
		size_t o = (size_t)snprintf(msg, sizeof msg, "unknown column%s", nunknown > 1 ? "s" : "");
		for (int i = 0; i < nunknown && o < sizeof msg; i++) {
			char one[128];
			snprintf(one, sizeof one, "unknown column \"%.64s\"", unknown[i]);
			add_entry(im->errors, im->line, unknown[i], "unknown_column", one);
			o += (size_t)snprintf(msg + o, sizeof msg - o, "%s \"%.64s\"", i ? "," : "",
					      unknown[i]);
		}
		if (o < sizeof msg)
			snprintf(msg + o, sizeof msg - o, " (docs/IMPORT.md lists the accepted columns)");
		return gh_err(err, 422, "unknown_column", unknown[0], "%s", msg);
	}
	size_t o = 0;
	const char *first = NULL;
	for (size_t i = 0; i < sizeof required_cols / sizeof required_cols[0]; i++) {
		int c = required_cols[i];
		if (im->col[c] >= 0)
			continue;
		char one[96];
		snprintf(one, sizeof one, "the required column \"%s\" is missing", col_display[c]);
		add_entry(im->errors, im->line, col_display[c], "missing_column", one);
		if (!first)
			first = col_display[c];
		o += (size_t)snprintf(msg + o, sizeof msg - o, "%s%s", o ? ", " : "", col_display[c]);
	}
	if (first)
		return gh_err(err, 422, "missing_column", first, "missing required column(s): %s",
			      msg);
	return 0;
}

/* ---- the file ---- */

static int blank_row(char **fields, int n)
{
	for (int i = 0; i < n; i++)
		if (*trim(fields[i]))
			return 0;
	return 1;
}

static void record_failure(imp_t *im)
{
	const char *field = im->rraw >= 0	? im->hdr[im->rraw]
			    : im->rcol >= 0 ? col_name(im, im->rcol)
					    : im->rerr.field;
	if (im->failed++ < MAX_LISTED)
		add_entry(im->errors, im->line, field, im->rerr.code[0] ? im->rerr.code : "invalid",
			  im->rerr.message);
}

static json_t *make_report(imp_t *im, int rows, int imported)
{
	json_t *r = json_object();
	json_object_set_new(r, "rows", json_integer(rows));
	json_object_set_new(r, "imported", json_integer(imported));
	json_object_set_new(r, "failed", json_integer(im->failed));
	json_object_set_new(r, "errors", json_incref(im->errors));
	json_object_set_new(r, "warnings", json_incref(im->warnings));
	if (im->failed > MAX_LISTED || im->nwarn > MAX_LISTED)
		json_object_set_new(r, "truncated", json_true());
	return r;
}

int import_residents(store_t *st, FILE *f, const ent_ctx_t *ctx, int partial, json_t **report,
		     gh_err_t *err_out)
{
	gh_err_t ebuf = { 0 }, *err = &ebuf; /* ERR_OUT may be NULL */
	imp_t im = { .st = st, .ctx = ctx, .line = 1 };
	im.errors = json_array();
	im.warnings = json_array();
	int rows = 0, imported = 0, began = 0, rc = -1;
	char **fields;
	int n;
	if (report)
		*report = NULL;
	csv_reader_t *r = csv_open(f);
	if (!r) {
		gh_err(err, 500, "nomem", "", "out of memory");
		goto out;
	}

	/* the header: the first line that is not blank */
	int got;
	while ((got = csv_next(r, &fields, &n, err)) == 1 && blank_row(fields, n))
		;
	if (got < 0) {
		add_entry(im.errors, csv_line(r), "", err->code, err->message);
		goto out;
	}
	im.line = csv_line(r);
	if (got == 0) {
		header_error(&im, err, "", "empty",
			     "the file is empty: the first line must be the header row (Building, "
			     "Apt, First Name, ...)");
		goto out;
	}
	if (parse_header(&im, fields, n, err))
		goto out;

	if (store_begin(st)) {
		store_db_err(st, err, "begin");
		goto out;
	}
	began = 1;
	while ((got = csv_next(r, &fields, &n, err)) == 1) {
		if (blank_row(fields, n))
			continue; /* trims the cells in place */
		rows++;
		im.line = csv_line(r);
		im.ncells = n;
		for (int i = 0; i < n; i++)
			im.cell[i] = trim(fields[i]);
		if (store_begin(st)) {
			store_db_err(st, err, "begin");
			goto out;
		}
		if (do_row(&im)) {
			store_rollback(st);
			if (im.rerr.status == 500) { /* the database, not the row */
				*err = im.rerr;
				add_entry(im.errors, im.line, "", err->code, err->message);
				goto out;
			}
			record_failure(&im);
			continue;
		}
		if (store_commit(st)) {
			store_db_err(st, err, "commit");
			goto out;
		}
		imported++;
	}
	if (got < 0) {
		add_entry(im.errors, csv_line(r), "", err->code, err->message);
		goto out;
	}
	if (im.failed && !partial) {
		if (im.failed == rows)
			gh_err(err, 422, "rows_failed", "",
			       "%d of %d rows failed: nothing was imported (fix the rows listed)",
			       im.failed, rows);
		else
			gh_err(err, 422, "rows_failed", "",
			       "%d of %d rows failed: nothing was imported (fix the rows listed, or "
			       "import with --partial to keep the %d good rows)",
			       im.failed, rows, rows - im.failed);
		goto out;
	}
	began = 0;
	if (store_commit(st)) {
		store_db_err(st, err, "commit");
		goto out;
	}
	rc = 0;
out:
	if (began)
		store_rollback(st);
	if (rc)
		imported = 0;
	if (report)
		*report = make_report(&im, rows, imported);
	if (err_out)
		*err_out = ebuf; /* cleared on success */
	for (int i = 0; i < im.ncols; i++)
		free(im.hdr[i]);
	json_decref(im.errors);
	json_decref(im.warnings);
	csv_close(r);
	return rc;
}
