/* The validator (daemon/validate.c, docs/RULES.md "Validator checklist"):
 * for every rule one entity that breaks it (status, field, message, and
 * nothing stored) and one that keeps it (stored, canonical, defaults). */
#include <stdarg.h>

#include "testutil.h"

/* ---- fixtures and helpers ---- */

/* a failed assertion skips the end of a test: remove its temp dir anyway */
static void suite_fini(void) { tu_rmdir(); }
TestSuite(validate, .fini = suite_fini);

#define MAC_DP "0C11050B9814"  /* multi-tenant door phone, site area, relays 1 and 2 */
#define MAC_IM "0C11050B9815"  /* indoor monitor in a101 */
#define MAC_FREE "0C11050B9816" /* in the MAC library, no device yet */
#define MAC_FREE2 "0C11050B9817"
#define MAC_UNKNOWN "0C11050B9899" /* not in the MAC library */

/* JSON with ' for " so the literals stay readable. */
static const char *q(const char *s)
{
	static char buf[8][4096];
	static unsigned k;
	char *b = buf[k++ % 8];
	size_t i;
	cr_assert_lt(strlen(s), sizeof buf[0], "fixture too long");
	for (i = 0; s[i]; i++)
		b[i] = s[i] == '\'' ? '"' : s[i];
	b[i] = '\0';
	return b;
}

/* A community: buildings b1, b2; apartments a101/a102 (b1) and a201 (b2,
 * also apt "101"); residents p101 (a101), p102 (a102); the MAC library; a
 * door phone with relays 1, 2; an indoor monitor in a101; an MK485 board. */
static store_t *site(void)
{
	store_t *st = tu_store();
	tu_put(st, ENT_BUILDING, q("{'id':'b1','name':'Tower A','ground_floor':'G0'}"));
	tu_put(st, ENT_BUILDING, q("{'id':'b2','name':'Tower B'}"));
	tu_put(st, ENT_APARTMENT, q("{'id':'a101','building':'b1','apt':'101','floor':'1'}"));
	tu_put(st, ENT_APARTMENT, q("{'id':'a102','building':'b1','apt':'102','floor':'1'}"));
	tu_put(st, ENT_APARTMENT, q("{'id':'a201','building':'b2','apt':'101','floor':'1'}"));
	tu_put(st, ENT_PERSON, q("{'id':'p101','kind':'resident','apartment':'a101',"
				 "'first_name':'Anna','last_name':'Berger'}"));
	tu_put(st, ENT_PERSON, q("{'id':'p102','kind':'resident','apartment':'a102',"
				 "'first_name':'Ben','last_name':'Huber'}"));
	tu_put(st, ENT_MAC, q("{'id':'" MAC_DP "','remark':'lobby'}"));
	tu_put(st, ENT_MAC, q("{'id':'" MAC_IM "'}"));
	tu_put(st, ENT_MAC, q("{'id':'" MAC_FREE "'}"));
	tu_put(st, ENT_MAC, q("{'id':'" MAC_FREE2 "'}"));
	tu_put(st, ENT_DEVICE, q("{'id':'" MAC_DP "','type':0,'name':'Lobby door','area':'site',"
				 "'relays':[{'n':1,'name':'Main door'},{'n':2,'name':'Side gate'}]}"));
	tu_put(st, ENT_DEVICE, q("{'id':'" MAC_IM "','type':2,'name':'Monitor 101','area':'apartment',"
				 "'apartment':'a101'}"));
	tu_put(st, ENT_RELAY_BOARD, q("{'id':'rb1','profile':'MK485-G2R-8J8C','bus':'/dev/ttyUSB0'}"));
	return st;
}

/* Puts TEXT as E expecting failure with STATUS on FIELD and a message; and
 * that the failed put stored nothing. */
#define PUT_FAILS(st, e, text, status_, field_)                                                 \
	do {                                                                                    \
		const char *t_ = (text);                                                        \
		int64_t n_ = ent_count((st), (e));                                              \
		gh_err_t r_ = tu_put_fail((st), (e), t_);                                       \
		cr_assert_eq(r_.status, (status_), "%s: status %d, want %d (%s: %s)", t_,        \
			     r_.status, (status_), r_.field, r_.message);                       \
		cr_assert_str_eq(r_.field, (field_), "%s: field \"%s\", want \"%s\" (%s)", t_,   \
				 r_.field, (field_), r_.message);                               \
		cr_assert_neq(r_.message[0], '\0', "%s: empty message", t_);                    \
		cr_assert_eq(ent_count((st), (e)), n_, "%s: a failed put changed the %s count", \
			     t_, ent_name(e));                                                  \
	} while (0)

static json_t *get(store_t *st, ent_t e, const char *id)
{
	json_t *o = NULL;
	gh_err_t err = { 0 };
	cr_assert_eq(ent_get(st, e, id, &o, &err), 0, "get %s %s: %s", ent_name(e), id, err.message);
	return o;
}

static const char *js(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "(not a string)";
}

static int64_t ji(const json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	cr_assert(json_is_integer(v), "%s is not an integer", key);
	return (int64_t)json_integer_value(v);
}

/* "xxx...": N copies of C */
static const char *rep(char c, size_t n)
{
	static char buf[4][1024];
	static unsigned k;
	char *b = buf[k++ % 4];
	cr_assert_lt(n, sizeof buf[0]);
	memset(b, c, n);
	b[n] = '\0';
	return b;
}

static const char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static const char *fmt(const char *f, ...)
{
	static char buf[8][4096];
	static unsigned k;
	char *b = buf[k++ % 8];
	va_list ap;
	va_start(ap, f);
	vsnprintf(b, sizeof buf[0], f, ap);
	va_end(ap);
	for (char *p = b; *p; p++)
		if (*p == '\'')
			*p = '"';
	return b;
}

static void set_pin_mode(store_t *st, const char *mode)
{
	tu_put(st, ENT_SETTINGS, fmt("{'pin_mode':'%s'}", mode));
}

/* ---- malformed input ---- */

Test(validate, non_object_json_is_400)
{
	store_t *st = site();
	json_t *bad[] = { json_array(), json_string("b1"), json_integer(7), json_null(), json_true() };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		for (int e = 0; e < ENT__COUNT; e++) {
			gh_err_t err = { 0 };
			int64_t n = ent_count(st, (ent_t)e);
			cr_assert_eq(ent_put(st, (ent_t)e, "x1", bad[i], NULL, NULL, &err), -1);
			cr_assert_eq(err.status, 400, "%s: status %d", ent_name((ent_t)e), err.status);
			cr_assert_str_eq(err.field, "");
			cr_assert_neq(err.message[0], '\0');
			cr_assert_eq(ent_count(st, (ent_t)e), n);
			json_t *out = NULL;
			gh_err_clear(&err);
			cr_assert_eq(ent_check(st, (ent_t)e, "x1", bad[i], &out, &err), -1);
			cr_assert_eq(err.status, 400);
		}
		json_decref(bad[i]);
	}
	/* an object is fine */
	tu_put(st, ENT_BUILDING, q("{'id':'b3','name':'Tower C'}"));
	store_close(st);
	tu_rmdir();
}

Test(validate, id_rules)
{
	store_t *st = site();
	PUT_FAILS(st, ENT_BUILDING, q("{'id':7,'name':'X'}"), 422, "id");
	PUT_FAILS(st, ENT_BUILDING, q("{'id':'a/b','name':'X'}"), 422, "id");
	PUT_FAILS(st, ENT_BUILDING, fmt("{'id':'%s','name':'X'}", rep('i', 65)), 422, "id");
	PUT_FAILS(st, ENT_SETTINGS, q("{'id':'other','kind':'office'}"), 422, "id");
	tu_put(st, ENT_BUILDING, fmt("{'id':'%s','name':'X'}", rep('i', 64)));
	/* no id: a local one is made */
	gh_err_t err = { 0 };
	json_t *in = tu_json(q("{'name':'Tower D'}")), *out = NULL;
	cr_assert_eq(ent_put(st, ENT_BUILDING, NULL, in, NULL, &out, &err), 0, "%s", err.message);
	cr_assert_eq(strncmp(js(out, "id"), "local-", 6), 0, "id %s", js(out, "id"));
	json_decref(in);
	json_decref(out);
	store_close(st);
	tu_rmdir();
}

Test(validate, check_does_not_store)
{
	store_t *st = site();
	json_t *in = tu_json(q("{'id':'b9','name':'Tower Z'}")), *out = NULL;
	gh_err_t err = { 0 };
	int64_t n = ent_count(st, ENT_BUILDING);
	cr_assert_eq(ent_check(st, ENT_BUILDING, NULL, in, &out, &err), 0, "%s", err.message);
	cr_assert_str_eq(js(out, "id"), "b9");
	cr_assert(json_is_null(json_object_get(out, "ground_floor")));
	cr_assert_eq(ent_count(st, ENT_BUILDING), n);
	json_decref(in);
	json_decref(out);
	store_close(st);
	tu_rmdir();
}

Test(validate, failed_update_keeps_old_version)
{
	store_t *st = site();
	PUT_FAILS(st, ENT_BUILDING, fmt("{'id':'b1','name':'%s'}", rep('N', 129)), 422, "name");
	json_t *b = get(st, ENT_BUILDING, "b1");
	cr_assert_str_eq(js(b, "name"), "Tower A");
	json_decref(b);
	PUT_FAILS(st, ENT_PERSON, q("{'id':'p101','kind':'resident','apartment':'a101',"
				    "'first_name':'Anna','landlines':['1','2','3','4']}"),
		  422, "landlines");
	json_t *p = get(st, ENT_PERSON, "p101");
	cr_assert_str_eq(js(p, "last_name"), "Berger");
	cr_assert_eq(json_array_size(json_object_get(p, "landlines")), 0);
	json_decref(p);
	store_close(st);
	tu_rmdir();
}

/* ---- building ---- */

Test(validate, building_name)
{
	store_t *st = site();
	tu_put(st, ENT_BUILDING, fmt("{'id':'b3','name':'%s'}", rep('B', 128)));
	PUT_FAILS(st, ENT_BUILDING, fmt("{'id':'b4','name':'%s'}", rep('B', 129)), 422, "name");
	PUT_FAILS(st, ENT_BUILDING, q("{'id':'b4'}"), 422, "name");
	PUT_FAILS(st, ENT_BUILDING, q("{'id':'b4','name':''}"), 422, "name");
	PUT_FAILS(st, ENT_BUILDING, q("{'id':'b4','name':12}"), 422, "name");
	store_close(st);
	tu_rmdir();
}

Test(validate, building_floors)
{
	store_t *st = site();
	tu_put(st, ENT_BUILDING, q("{'id':'b3','name':'C','ground_floor':'G2','floor_start':-2}"));
	tu_put(st, ENT_BUILDING, q("{'id':'b4','name':'D','ground_floor':null}"));
	json_t *b = get(st, ENT_BUILDING, "b3");
	cr_assert_str_eq(js(b, "ground_floor"), "G2");
	cr_assert_eq(ji(b, "floor_start"), -2);
	json_decref(b);
	b = get(st, ENT_BUILDING, "b4");
	cr_assert(json_is_null(json_object_get(b, "ground_floor")));
	cr_assert(json_is_null(json_object_get(b, "floor_start")));
	json_decref(b);
	PUT_FAILS(st, ENT_BUILDING, q("{'id':'b5','name':'E','ground_floor':'G3'}"), 422, "ground_floor");
	PUT_FAILS(st, ENT_BUILDING, q("{'id':'b5','name':'E','floor_start':129}"), 422, "floor_start");
	store_close(st);
	tu_rmdir();
}

/* ---- apartment ---- */

Test(validate, apt_format_ok)
{
	store_t *st = site();
	const char *ok[] = { "2#123A", "1", "ABCDEF", "12#", "a1b2" };
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		tu_put(st, ENT_APARTMENT, fmt("{'id':'x%zu','building':'b1','apt':'%s'}", i, ok[i]));
		json_t *a = get(st, ENT_APARTMENT, fmt("x%zu", i));
		cr_assert_str_eq(js(a, "apt"), ok[i]);
		json_decref(a);
	}
	cr_assert(apt_ok("2#123A"));
	store_close(st);
	tu_rmdir();
}

Test(validate, apt_format_bad)
{
	store_t *st = site();
	const char *bad[] = { "#12", "1234567", "12-3", "", "1 2", "12.3", "#" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		PUT_FAILS(st, ENT_APARTMENT, fmt("{'id':'x1','building':'b1','apt':'%s'}", bad[i]), 422,
			  "apt");
		cr_assert_not(apt_ok(bad[i]), "apt_ok(\"%s\")", bad[i]);
	}
	PUT_FAILS(st, ENT_APARTMENT, q("{'id':'x1','building':'b1'}"), 422, "apt");
	PUT_FAILS(st, ENT_APARTMENT, q("{'id':'x1','building':'b1','apt':101}"), 422, "apt");
	/* multi-byte letters are not "letters" of the APT rule */
	PUT_FAILS(st, ENT_APARTMENT, q("{'id':'x1','building':'b1','apt':'1\\u00e9'}"), 422, "apt");
	store_close(st);
	tu_rmdir();
}

Test(validate, apt_unique_per_building)
{
	store_t *st = site();
	PUT_FAILS(st, ENT_APARTMENT, q("{'id':'a101b','building':'b1','apt':'101'}"), 409, "apt");
	/* a201 already has apt 101 in b2; another building is fine */
	tu_put(st, ENT_BUILDING, q("{'id':'b3','name':'Tower C'}"));
	tu_put(st, ENT_APARTMENT, q("{'id':'a301','building':'b3','apt':'101'}"));
	/* re-putting the same apartment is not a duplicate of itself */
	tu_put(st, ENT_APARTMENT, q("{'id':'a101','building':'b1','apt':'101','name':'Corner flat'}"));
	/* moving a102 onto apt 101 of b1 is */
	PUT_FAILS(st, ENT_APARTMENT, q("{'id':'a102','building':'b1','apt':'101'}"), 409, "apt");
	store_close(st);
	tu_rmdir();
}

Test(validate, apartment_building_must_exist)
{
	store_t *st = site();
	PUT_FAILS(st, ENT_APARTMENT, q("{'id':'x1','building':'nope','apt':'1'}"), 422, "building");
	PUT_FAILS(st, ENT_APARTMENT, q("{'id':'x1','apt':'1'}"), 422, "building");
	store_close(st);
	tu_rmdir();
}

Test(validate, apartment_floor)
{
	store_t *st = site();
	tu_put(st, ENT_APARTMENT, q("{'id':'x1','building':'b1','apt':'201','floor':'G1'}"));
	tu_put(st, ENT_APARTMENT, q("{'id':'x2','building':'b1','apt':'301','floor':3}"));
	tu_put(st, ENT_APARTMENT, q("{'id':'x3','building':'b1','apt':'B1','floor':'-10'}"));
	tu_put(st, ENT_APARTMENT, q("{'id':'x4','building':'b1','apt':'P1','floor':'128'}"));
	json_t *a = get(st, ENT_APARTMENT, "x2");
	cr_assert_str_eq(js(a, "floor"), "3");
	json_decref(a);
	a = get(st, ENT_APARTMENT, "x1");
	cr_assert_str_eq(js(a, "floor"), "G1");
	json_decref(a);
	const char *bad[] = { "'129'", "'-11'", "'G3'", "'03'", "'-0'", "''", "129", "true", "'1a'" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		PUT_FAILS(st, ENT_APARTMENT, fmt("{'id':'x9','building':'b1','apt':'901','floor':%s}", bad[i]),
			  422, "floor");
	store_close(st);
	tu_rmdir();
}

Test(validate, apartment_valid_window)
{
	store_t *st = site();
	PUT_FAILS(st, ENT_APARTMENT, q("{'id':'x1','building':'b1','apt':'201','valid_from':"
				       "'2026-06-01T00:00:00Z','valid_until':'2026-05-01T00:00:00Z'}"),
		  422, "valid_until");
	PUT_FAILS(st, ENT_APARTMENT, q("{'id':'x1','building':'b1','apt':'201','valid_from':1780000000,"
				       "'valid_until':1780000000}"),
		  422, "valid_until");
	PUT_FAILS(st, ENT_APARTMENT, q("{'id':'x1','building':'b1','apt':'201','valid_from':'soon'}"),
		  422, "valid_from");
	tu_put(st, ENT_APARTMENT, q("{'id':'x1','building':'b1','apt':'201','valid_from':"
				    "'2026-05-01T00:00:00Z','valid_until':'2026-06-01T00:00:00Z'}"));
	json_t *a = get(st, ENT_APARTMENT, "x1");
	cr_assert_eq(ji(a, "valid_from"), 1777593600);
	cr_assert_eq(ji(a, "valid_until"), 1780272000);
	json_decref(a);
	store_close(st);
	tu_rmdir();
}

/* Times: Unix seconds or ISO-8601; a date that does not exist is refused,
 * not rolled over into the next month. */
Test(validate, iso_times)
{
	store_t *st = site();
	const char *bad[] = { "'2026-02-30T00:00:00Z'", "'2026-04-31T08:00:00Z'", "'2025-02-29'",
			      "'2026-13-01T00:00:00Z'", "'2026-03-29T24:00:00Z'", "'2026-03-29T02:30:00+15:00'",
			      "'29.03.2026'", "'2026-03-29T02:30Z '", "1.5", "true" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		PUT_FAILS(st, ENT_APARTMENT, fmt("{'id':'x1','building':'b1','apt':'201','valid_from':%s}", bad[i]),
			  422, "valid_from");
	tu_put(st, ENT_APARTMENT, q("{'id':'x1','building':'b1','apt':'201','valid_from':'2028-02-29',"
				    "'valid_until':'2028-03-01T12:00'}"));
	json_t *a = get(st, ENT_APARTMENT, "x1");
	cr_assert_eq(ji(a, "valid_from"), 1835395200); /* site time zone UTC */
	cr_assert_eq(ji(a, "valid_until"), 1835524800);
	json_decref(a);
	store_close(st);
	tu_rmdir();
}

Test(validate, apartment_call_type)
{
	store_t *st = site();
	for (int t = 0; t <= 5; t++)
		tu_put(st, ENT_APARTMENT, fmt("{'id':'a101','building':'b1','apt':'101','call_type':%d}", t));
	PUT_FAILS(st, ENT_APARTMENT, q("{'id':'x1','building':'b1','apt':'201','call_type':6}"), 422,
		  "call_type");
	PUT_FAILS(st, ENT_APARTMENT, q("{'id':'x1','building':'b1','apt':'201','call_type':-1}"), 422,
		  "call_type");
	PUT_FAILS(st, ENT_APARTMENT, q("{'id':'x1','building':'b1','apt':'201','call_type':'2'}"), 422,
		  "call_type");
	json_t *a = get(st, ENT_APARTMENT, "a101");
	cr_assert_eq(ji(a, "call_type"), 5);
	json_decref(a);
	store_close(st);
	tu_rmdir();
}

Test(validate, apartment_call_mode_and_web_relay)
{
	store_t *st = site();
	tu_put(st, ENT_APARTMENT, q("{'id':'x1','building':'b1','apt':'201','call_mode':'sip',"
				    "'web_relay_id':65535}"));
	PUT_FAILS(st, ENT_APARTMENT, q("{'id':'x2','building':'b1','apt':'202','call_mode':'pstn'}"),
		  422, "call_mode");
	PUT_FAILS(st, ENT_APARTMENT, q("{'id':'x2','building':'b1','apt':'202','web_relay_id':-1}"),
		  422, "web_relay_id");
	PUT_FAILS(st, ENT_APARTMENT, q("{'id':'x2','building':'b1','apt':'202','web_relay_id':65536}"),
		  422, "web_relay_id");
	PUT_FAILS(st, ENT_APARTMENT, q("{'id':'x2','building':'b1','apt':'202','web_relay_id':'3'}"),
		  422, "web_relay_id");
	store_close(st);
	tu_rmdir();
}

Test(validate, apartment_contact_sequence)
{
	store_t *st = site();
	tu_put(st, ENT_APARTMENT, q("{'id':'x1','building':'b1','apt':'201','contact':{'mode':'sequence',"
				    "'sequence':[['apps'],['monitors','landlines'],['apps','monitors','landlines']]}}"));
	json_t *a = get(st, ENT_APARTMENT, "x1");
	json_t *c = json_object_get(a, "contact");
	cr_assert_str_eq(js(c, "mode"), "sequence");
	cr_assert_eq(json_array_size(json_object_get(c, "sequence")), 3);
	json_decref(a);
	PUT_FAILS(st, ENT_APARTMENT, q("{'id':'x2','building':'b1','apt':'202','contact':{'mode':'sequence',"
				       "'sequence':[['apps'],['monitors'],['landlines'],['apps']]}}"),
		  422, "contact.sequence");
	PUT_FAILS(st, ENT_APARTMENT, q("{'id':'x2','building':'b1','apt':'202','contact':{'mode':'sequence',"
				       "'sequence':[]}}"),
		  422, "contact.sequence");
	PUT_FAILS(st, ENT_APARTMENT, q("{'id':'x2','building':'b1','apt':'202','contact':{'mode':'sequence',"
				       "'sequence':[['apps','apps']]}}"),
		  422, "contact.sequence[0]");
	PUT_FAILS(st, ENT_APARTMENT, q("{'id':'x2','building':'b1','apt':'202','contact':{'mode':'sequence',"
				       "'sequence':[['apps'],['pager']]}}"),
		  422, "contact.sequence[1]");
	PUT_FAILS(st, ENT_APARTMENT, q("{'id':'x2','building':'b1','apt':'202','contact':{'mode':'sequence',"
				       "'sequence':[[]]}}"),
		  422, "contact.sequence[0]");
	PUT_FAILS(st, ENT_APARTMENT, q("{'id':'x2','building':'b1','apt':'202','contact':{'mode':'random'}}"),
		  422, "contact.mode");
	PUT_FAILS(st, ENT_APARTMENT, q("{'id':'x2','building':'b1','apt':'202','contact':'group'}"), 422,
		  "contact");
	store_close(st);
	tu_rmdir();
}

Test(validate, apartment_defaults)
{
	store_t *st = site();
	json_t *a = get(st, ENT_APARTMENT, "a102");
	cr_assert_str_eq(js(a, "id"), "a102");
	cr_assert_eq(ji(a, "call_type"), 0);
	cr_assert_str_eq(js(a, "call_mode"), "ip");
	cr_assert_eq(ji(a, "web_relay_id"), 0);
	cr_assert(json_is_false(json_object_get(a, "auto_delete_family")));
	cr_assert(json_is_null(json_object_get(a, "valid_from")));
	cr_assert(json_is_null(json_object_get(a, "valid_until")));
	cr_assert_str_eq(js(a, "name"), "");
	json_t *c = json_object_get(a, "contact");
	cr_assert_str_eq(js(c, "mode"), "group");
	cr_assert(json_is_array(json_object_get(c, "sequence")));
	cr_assert_eq(json_array_size(json_object_get(c, "sequence")), 0);
	json_decref(a);
	store_close(st);
	tu_rmdir();
}

/* Checklist: "apartment.auto_delete_family: true only if valid_until set" */
Test(validate, apartment_auto_delete_family_needs_valid_until)
{
	store_t *st = site();
	PUT_FAILS(st, ENT_APARTMENT, q("{'id':'x1','building':'b1','apt':'201','auto_delete_family':true}"),
		  422, "auto_delete_family");
	tu_put(st, ENT_APARTMENT, q("{'id':'x1','building':'b1','apt':'201','auto_delete_family':true,"
				    "'valid_until':'2027-01-01T00:00:00Z'}"));
	store_close(st);
	tu_rmdir();
}

/* ---- person ---- */

Test(validate, person_kind)
{
	store_t *st = site();
	PUT_FAILS(st, ENT_PERSON, q("{'id':'x1','kind':'alien','first_name':'Zed'}"), 422, "kind");
	PUT_FAILS(st, ENT_PERSON, q("{'id':'x1','kind':7,'first_name':'Zed'}"), 422, "kind");
	tu_put(st, ENT_PERSON, q("{'id':'s1','kind':'staff','first_name':'Sam','building':'b1'}"));
	tu_put(st, ENT_PERSON, q("{'id':'s2','kind':'personnel','first_name':'Pia'}"));
	tu_put(st, ENT_PERSON, q("{'id':'s3','kind':'pm_staff','first_name':'Max'}"));
	tu_put(st, ENT_PERSON, q("{'id':'s4','kind':'delivery','first_name':'Parcel Co'}"));
	tu_put(st, ENT_PERSON, q("{'id':'f1','kind':'family','apartment':'a101','first_name':'Lea'}"));
	/* kind defaults to resident, which needs an apartment */
	PUT_FAILS(st, ENT_PERSON, q("{'id':'x1','first_name':'Zed'}"), 422, "apartment");
	tu_put(st, ENT_PERSON, q("{'id':'x1','first_name':'Zed','apartment':'a102'}"));
	json_t *p = get(st, ENT_PERSON, "x1");
	cr_assert_str_eq(js(p, "kind"), "resident");
	json_decref(p);
	store_close(st);
	tu_rmdir();
}

Test(validate, person_apartment_rules)
{
	store_t *st = site();
	PUT_FAILS(st, ENT_PERSON, q("{'id':'x1','kind':'resident','first_name':'Zed'}"), 422, "apartment");
	PUT_FAILS(st, ENT_PERSON, q("{'id':'x1','kind':'resident','apartment':'nope','first_name':'Zed'}"),
		  422, "apartment");
	PUT_FAILS(st, ENT_PERSON, q("{'id':'x1','kind':'staff','apartment':'a101','first_name':'Zed'}"),
		  422, "apartment");
	PUT_FAILS(st, ENT_PERSON, q("{'id':'x1','kind':'staff','building':'nope','first_name':'Zed'}"),
		  422, "building");
	store_close(st);
	tu_rmdir();
}

Test(validate, family_needs_master)
{
	store_t *st = site();
	tu_put(st, ENT_APARTMENT, q("{'id':'a103','building':'b1','apt':'103'}"));
	PUT_FAILS(st, ENT_PERSON, q("{'id':'f1','kind':'family','apartment':'a103','first_name':'Lea'}"),
		  422, "apartment");
	PUT_FAILS(st, ENT_PERSON, q("{'id':'f1','kind':'family','first_name':'Lea'}"), 422, "apartment");
	tu_put(st, ENT_PERSON, q("{'id':'m1','kind':'resident','apartment':'a103','first_name':'Mia'}"));
	tu_put(st, ENT_PERSON, q("{'id':'f1','kind':'family','apartment':'a103','first_name':'Lea'}"));
	/* a family member is not a master for the next one elsewhere */
	tu_put(st, ENT_APARTMENT, q("{'id':'a104','building':'b1','apt':'104'}"));
	PUT_FAILS(st, ENT_PERSON, q("{'id':'f2','kind':'family','apartment':'a104','first_name':'Leo'}"),
		  422, "apartment");
	store_close(st);
	tu_rmdir();
}

/* Re-putting the only resident as a family member would leave the
 * apartment without its master account: the resident found by the master
 * check must not be the person being changed. */
Test(validate, family_needs_master_other_than_self)
{
	store_t *st = site();
	PUT_FAILS(st, ENT_PERSON, q("{'id':'p101','kind':'family','apartment':'a101','first_name':'Anna'}"),
		  422, "apartment");
	json_t *p = get(st, ENT_PERSON, "p101");
	cr_assert_str_eq(js(p, "kind"), "resident");
	json_decref(p);
	/* with a second resident the change is fine */
	tu_put(st, ENT_PERSON, q("{'id':'p101b','kind':'resident','apartment':'a101','first_name':'Karl'}"));
	tu_put(st, ENT_PERSON, q("{'id':'p101','kind':'family','apartment':'a101','first_name':'Anna'}"));
	store_close(st);
	tu_rmdir();
}

Test(validate, person_names)
{
	store_t *st = site();
	tu_put(st, ENT_PERSON, fmt("{'id':'x1','kind':'staff','first_name':'%s','last_name':'%s'}",
				   rep('F', 64), rep('L', 64)));
	PUT_FAILS(st, ENT_PERSON, fmt("{'id':'x2','kind':'staff','first_name':'%s'}", rep('F', 65)), 422,
		  "first_name");
	PUT_FAILS(st, ENT_PERSON, fmt("{'id':'x2','kind':'staff','first_name':'Al','last_name':'%s'}",
				      rep('L', 65)),
		  422, "last_name");
	/* 33 characters, 66 bytes of UTF-8: too long (the limit is in bytes) */
	char name[400] = "";
	for (int i = 0; i < 33; i++)
		strcat(name, "\\u00e9");
	PUT_FAILS(st, ENT_PERSON, fmt("{'id':'x2','kind':'staff','first_name':'%s'}", name), 422,
		  "first_name");
	PUT_FAILS(st, ENT_PERSON, fmt("{'id':'x2','kind':'staff','first_name':'Al','last_name':'%s'}", name),
		  422, "last_name");
	/* 32 of them are 64 bytes: fine, and stored as UTF-8 */
	name[32 * 6] = '\0';
	tu_put(st, ENT_PERSON, fmt("{'id':'x3','kind':'staff','first_name':'%s'}", name));
	json_t *p = get(st, ENT_PERSON, "x3");
	cr_assert_eq(strlen(js(p, "first_name")), 64);
	cr_assert_eq((unsigned char)js(p, "first_name")[0], 0xC3);
	json_decref(p);
	/* 4-byte characters: 16 of them are 64 bytes, 17 are too many */
	char emoji[400] = "";
	for (int i = 0; i < 16; i++)
		strcat(emoji, "\\ud83d\\ude00");
	tu_put(st, ENT_PERSON, fmt("{'id':'x4','kind':'staff','first_name':'%s'}", emoji));
	strcat(emoji, "\\ud83d\\ude00");
	PUT_FAILS(st, ENT_PERSON, fmt("{'id':'x5','kind':'staff','first_name':'%s'}", emoji), 422,
		  "first_name");
	PUT_FAILS(st, ENT_PERSON, q("{'id':'x2','kind':'staff'}"), 422, "first_name");
	PUT_FAILS(st, ENT_PERSON, q("{'id':'x2','kind':'staff','first_name':''}"), 422, "first_name");
	PUT_FAILS(st, ENT_PERSON, q("{'id':'x2','kind':'staff','first_name':['A']}"), 422, "first_name");
	store_close(st);
	tu_rmdir();
}

Test(validate, person_remark)
{
	store_t *st = site();
	tu_put(st, ENT_PERSON, fmt("{'id':'x1','kind':'staff','first_name':'Al','remark':'%s'}", rep('r', 255)));
	PUT_FAILS(st, ENT_PERSON, fmt("{'id':'x2','kind':'staff','first_name':'Al','remark':'%s'}", rep('r', 256)),
		  422, "remark");
	store_close(st);
	tu_rmdir();
}

Test(validate, person_landlines)
{
	store_t *st = site();
	tu_put(st, ENT_PERSON, q("{'id':'x1','kind':'staff','first_name':'Al','landlines':"
				 "['+43 1 234567','+43 1 234568','+43 1 234569']}"));
	json_t *p = get(st, ENT_PERSON, "x1");
	cr_assert_eq(json_array_size(json_object_get(p, "landlines")), 3);
	json_decref(p);
	PUT_FAILS(st, ENT_PERSON, q("{'id':'x2','kind':'staff','first_name':'Al','landlines':['1','2','3','4']}"),
		  422, "landlines");
	PUT_FAILS(st, ENT_PERSON, q("{'id':'x2','kind':'staff','first_name':'Al','landlines':'12345'}"),
		  422, "landlines");
	PUT_FAILS(st, ENT_PERSON, q("{'id':'x2','kind':'staff','first_name':'Al','landlines':['1',2]}"),
		  422, "landlines[1]");
	PUT_FAILS(st, ENT_PERSON, fmt("{'id':'x2','kind':'staff','first_name':'Al','landlines':['%s']}",
				      rep('1', 33)),
		  422, "landlines[0]");
	store_close(st);
	tu_rmdir();
}

Test(validate, person_floors)
{
	store_t *st = site();
	tu_put(st, ENT_PERSON, q("{'id':'x1','kind':'staff','first_name':'Al','floors':"
				 "[1,2,3,4,5,6,7,8,'G0','-10']}"));
	json_t *p = get(st, ENT_PERSON, "x1");
	json_t *f = json_object_get(p, "floors");
	cr_assert_eq(json_array_size(f), 10);
	cr_assert_str_eq(json_string_value(json_array_get(f, 2)), "3");
	cr_assert_str_eq(json_string_value(json_array_get(f, 8)), "G0");
	cr_assert_str_eq(json_string_value(json_array_get(f, 9)), "-10");
	json_decref(p);
	tu_put(st, ENT_PERSON, q("{'id':'x2','kind':'staff','first_name':'Al','floors':['all']}"));
	p = get(st, ENT_PERSON, "x2");
	cr_assert_str_eq(json_string_value(json_array_get(json_object_get(p, "floors"), 0)), "all");
	json_decref(p);
	tu_put(st, ENT_PERSON, q("{'id':'x3','kind':'staff','first_name':'Al','floors':['128','G1','G2','-1']}"));
	PUT_FAILS(st, ENT_PERSON, q("{'id':'x9','kind':'staff','first_name':'Al','floors':"
				    "[1,2,3,4,5,6,7,8,9,10,11]}"),
		  422, "floors");
	const char *bad[] = { "'129'", "'-11'", "'G3'", "'03'", "129", "-11", "'all'", "null", "1.5" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		PUT_FAILS(st, ENT_PERSON,
			  fmt("{'id':'x9','kind':'staff','first_name':'Al','floors':['1',%s]}", bad[i]), 422,
			  "floors[1]");
	PUT_FAILS(st, ENT_PERSON, q("{'id':'x9','kind':'staff','first_name':'Al','floors':'all'}"), 422,
		  "floors");
	store_close(st);
	tu_rmdir();
}

Test(validate, floor_label_function)
{
	char out[8];
	json_t *v = json_integer(3);
	cr_assert(floor_label_ok(v, out));
	cr_assert_str_eq(out, "3");
	json_decref(v);
	const char *ok[] = { "-10", "0", "128", "G0", "G1", "G2", "7" };
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		v = json_string(ok[i]);
		cr_assert(floor_label_ok(v, out), "%s", ok[i]);
		cr_assert_str_eq(out, ok[i]);
		json_decref(v);
	}
	const char *bad[] = { "129", "-11", "G3", "03", "", "g1", "1 ", " 1", "+3", "-0", "abc", "1e2" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		v = json_string(bad[i]);
		cr_assert_not(floor_label_ok(v, out), "\"%s\" accepted", bad[i]);
		json_decref(v);
	}
}

Test(validate, person_contact_fields)
{
	store_t *st = site();
	tu_put(st, ENT_PERSON, q("{'id':'x1','kind':'staff','first_name':'Al','email':'al@example.com',"
				 "'mobile':'+43 (660) 123-4567','country_code':'+43'}"));
	PUT_FAILS(st, ENT_PERSON, q("{'id':'x2','kind':'staff','first_name':'Al','email':'al.example.com'}"),
		  422, "email");
	PUT_FAILS(st, ENT_PERSON, q("{'id':'x2','kind':'staff','first_name':'Al','mobile':'call me'}"),
		  422, "mobile");
	PUT_FAILS(st, ENT_PERSON, q("{'id':'x2','kind':'staff','first_name':'Al','active':'yes'}"), 422,
		  "active");
	PUT_FAILS(st, ENT_PERSON, q("{'id':'x2','kind':'staff','first_name':'Al','expires_at':'tomorrow'}"),
		  422, "expires_at");
	store_close(st);
	tu_rmdir();
}

Test(validate, person_defaults)
{
	store_t *st = site();
	json_t *p = get(st, ENT_PERSON, "p101");
	cr_assert(json_is_true(json_object_get(p, "active")));
	cr_assert(json_is_null(json_object_get(p, "expires_at")));
	cr_assert_str_eq(js(p, "kind"), "resident");
	cr_assert_str_eq(js(p, "remark"), "");
	cr_assert(json_is_array(json_object_get(p, "landlines")));
	cr_assert_eq(json_array_size(json_object_get(p, "landlines")), 0);
	cr_assert(json_is_array(json_object_get(p, "floors")));
	cr_assert_eq(json_array_size(json_object_get(p, "floors")), 0);
	json_decref(p);
	tu_put(st, ENT_PERSON, q("{'id':'s1','kind':'staff','first_name':'Sam'}"));
	p = get(st, ENT_PERSON, "s1");
	cr_assert_str_eq(js(p, "last_name"), "");
	json_decref(p);
	store_close(st);
	tu_rmdir();
}

/* ---- credentials: PINs ---- */

Test(validate, pin_format)
{
	store_t *st = site();
	const char *ok[] = { "1234", "01", "12345678", "80" };
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		tu_put(st, ENT_CREDENTIAL, fmt("{'id':'c%zu','person':'p101','type':'pin','code':'%s'}", i, ok[i]));
		cr_assert(pin_ok(ok[i]));
	}
	const char *bad[] = { "9123", "1", "123456789", "12a4", "12 34", "-123", "99" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		PUT_FAILS(st, ENT_CREDENTIAL, fmt("{'id':'cx','person':'p102','type':'pin','code':'%s'}", bad[i]),
			  422, "code");
		cr_assert_not(pin_ok(bad[i]), "%s", bad[i]);
	}
	PUT_FAILS(st, ENT_CREDENTIAL, q("{'id':'cx','person':'p102','type':'pin','code':''}"), 422, "code");
	PUT_FAILS(st, ENT_CREDENTIAL, q("{'id':'cx','person':'p102','type':'pin'}"), 422, "code");
	PUT_FAILS(st, ENT_CREDENTIAL, q("{'id':'cx','person':'p102','type':'pin','code':1234}"), 422, "code");
	store_close(st);
	tu_rmdir();
}

Test(validate, pin_unique_per_site)
{
	store_t *st = site();
	tu_put(st, ENT_CREDENTIAL, q("{'id':'c1','person':'p101','type':'pin','code':'1234'}"));
	PUT_FAILS(st, ENT_CREDENTIAL, q("{'id':'c2','person':'p102','type':'pin','code':'1234'}"), 409, "code");
	/* a staff member without an apartment too */
	tu_put(st, ENT_PERSON, q("{'id':'s1','kind':'staff','first_name':'Sam'}"));
	PUT_FAILS(st, ENT_CREDENTIAL, q("{'id':'c3','person':'s1','type':'pin','code':'1234'}"), 409, "code");
	/* the same person twice is a duplicate as well */
	PUT_FAILS(st, ENT_CREDENTIAL, q("{'id':'c4','person':'p101','type':'pin','code':'1234'}"), 409, "code");
	tu_put(st, ENT_CREDENTIAL, q("{'id':'c2','person':'p102','type':'pin','code':'1235'}"));
	/* updating a credential keeps its own PIN */
	tu_put(st, ENT_CREDENTIAL, q("{'id':'c1','person':'p101','type':'pin','code':'1234','x_note':'v2'}"));
	/* a PIN and a card may share digits */
	tu_put(st, ENT_CREDENTIAL, q("{'id':'c5','person':'p102','type':'rf','code':'1234'}"));
	store_close(st);
	tu_rmdir();
}

Test(validate, pin_unique_per_apartment_in_apt_pin_mode)
{
	store_t *st = site();
	set_pin_mode(st, "apt_pin");
	tu_put(st, ENT_CREDENTIAL, q("{'id':'c1','person':'p101','type':'pin','code':'1234'}"));
	tu_put(st, ENT_CREDENTIAL, q("{'id':'c2','person':'p102','type':'pin','code':'1234'}"));
	tu_put(st, ENT_PERSON, q("{'id':'f101','kind':'family','apartment':'a101','first_name':'Lea'}"));
	PUT_FAILS(st, ENT_CREDENTIAL, q("{'id':'c3','person':'f101','type':'pin','code':'1234'}"), 409, "code");
	tu_put(st, ENT_CREDENTIAL, q("{'id':'c3','person':'f101','type':'pin','code':'4321'}"));
	store_close(st);
	tu_rmdir();
}

Test(validate, pin_mode_switch_refused_while_pins_shared)
{
	store_t *st = site();
	set_pin_mode(st, "apt_pin");
	tu_put(st, ENT_CREDENTIAL, q("{'id':'c1','person':'p101','type':'pin','code':'1234'}"));
	tu_put(st, ENT_CREDENTIAL, q("{'id':'c2','person':'p102','type':'pin','code':'1234'}"));
	PUT_FAILS(st, ENT_SETTINGS, q("{'pin_mode':'pin'}"), 409, "pin_mode");
	json_t *s = get(st, ENT_SETTINGS, "site");
	cr_assert_str_eq(js(s, "pin_mode"), "apt_pin");
	json_decref(s);
	/* once the PINs differ the switch is allowed, and PINs are site-unique again */
	tu_put(st, ENT_CREDENTIAL, q("{'id':'c2','person':'p102','type':'pin','code':'5678'}"));
	set_pin_mode(st, "pin");
	s = get(st, ENT_SETTINGS, "site");
	cr_assert_str_eq(js(s, "pin_mode"), "pin");
	json_decref(s);
	PUT_FAILS(st, ENT_CREDENTIAL, q("{'id':'c3','person':'p102','type':'pin','code':'1234'}"), 409, "code");
	store_close(st);
	tu_rmdir();
}

/* A PIN must be unique "among person credentials and temp keys alike"
 * (validate.c): a resident's PIN shared with another apartment's visitor key
 * blocks the switch to site-wide PINs just as two residents' PINs do. */
Test(validate, pin_mode_switch_refused_while_temp_key_shares_pin)
{
	store_t *st = site();
	set_pin_mode(st, "apt_pin");
	tu_put(st, ENT_CREDENTIAL, q("{'id':'c1','person':'p101','type':'pin','code':'1234'}"));
	tu_put(st, ENT_TEMP_KEY, q("{'id':'k1','apartment':'a102','code':'1234','devices':['" MAC_DP "'],"
				   "'schedule':{'repeat':'daily','from':'08:00','to':'18:00'}}"));
	PUT_FAILS(st, ENT_SETTINGS, q("{'pin_mode':'pin'}"), 409, "pin_mode");
	store_close(st);
	tu_rmdir();
}

Test(validate, pin_unique_against_temp_keys)
{
	store_t *st = site();
	tu_put(st, ENT_TEMP_KEY, q("{'id':'k1','apartment':'a101','code':'4321','devices':['" MAC_DP "'],"
				   "'schedule':{'repeat':'daily','from':'08:00','to':'18:00'}}"));
	PUT_FAILS(st, ENT_CREDENTIAL, q("{'id':'c1','person':'p102','type':'pin','code':'4321'}"), 409, "code");
	tu_put(st, ENT_CREDENTIAL, q("{'id':'c1','person':'p102','type':'pin','code':'5555'}"));
	PUT_FAILS(st, ENT_TEMP_KEY, q("{'id':'k2','code':'5555','devices':['" MAC_DP "'],"
				      "'schedule':{'end':'2099-01-01T00:00:00Z'}}"),
		  409, "code");
	PUT_FAILS(st, ENT_TEMP_KEY, q("{'id':'k2','code':'4321','devices':['" MAC_DP "'],"
				      "'schedule':{'end':'2099-01-01T00:00:00Z'}}"),
		  409, "code");
	/* re-putting k1 is not a duplicate of itself */
	tu_put(st, ENT_TEMP_KEY, q("{'id':'k1','apartment':'a101','code':'4321','devices':['" MAC_DP "'],"
				   "'visitor':'Cleaner','schedule':{'repeat':'daily','from':'08:00','to':'18:00'}}"));
	/* in APT+PIN mode only the same apartment counts */
	set_pin_mode(st, "apt_pin");
	tu_put(st, ENT_CREDENTIAL, q("{'id':'c2','person':'p102','type':'pin','code':'4321'}"));
	PUT_FAILS(st, ENT_CREDENTIAL, q("{'id':'c3','person':'p101','type':'pin','code':'4321'}"), 409, "code");
	PUT_FAILS(st, ENT_TEMP_KEY, q("{'id':'k3','apartment':'a102','code':'4321','devices':['" MAC_DP "'],"
				      "'schedule':{'end':'2099-01-01T00:00:00Z'}}"),
		  409, "code");
	tu_put(st, ENT_TEMP_KEY, q("{'id':'k3','apartment':'a201','code':'4321','devices':['" MAC_DP "'],"
				   "'schedule':{'end':'2099-01-01T00:00:00Z'}}"));
	store_close(st);
	tu_rmdir();
}

/* ---- credentials: owner, type, cards, plates ---- */

Test(validate, credential_owner_and_type)
{
	store_t *st = site();
	tu_put(st, ENT_TEMP_KEY, q("{'id':'k1','qr':'QR-1','devices':['" MAC_DP "'],"
				   "'schedule':{'end':'2099-01-01T00:00:00Z'}}"));
	PUT_FAILS(st, ENT_CREDENTIAL, q("{'id':'c1','type':'rf','code':'AB12'}"), 422, "person");
	PUT_FAILS(st, ENT_CREDENTIAL, q("{'id':'c1','person':'p101','temp_key':'k1','type':'rf','code':'AB12'}"),
		  422, "person");
	PUT_FAILS(st, ENT_CREDENTIAL, q("{'id':'c1','person':'nobody','type':'rf','code':'AB12'}"), 422,
		  "person");
	PUT_FAILS(st, ENT_CREDENTIAL, q("{'id':'c1','temp_key':'nokey','type':'rf','code':'AB12'}"), 422,
		  "temp_key");
	PUT_FAILS(st, ENT_CREDENTIAL, q("{'id':'c1','person':'p101','type':'retina','code':'AB12'}"), 422,
		  "type");
	PUT_FAILS(st, ENT_CREDENTIAL, q("{'id':'c1','person':'p101','code':'AB12'}"), 422, "type");
	tu_put(st, ENT_CREDENTIAL, q("{'id':'c1','temp_key':'k1','type':'rf','code':'AB12'}"));
	tu_put(st, ENT_CREDENTIAL, q("{'id':'c2','person':'p101','type':'face','code':'face/p101.jpg'}"));
	tu_put(st, ENT_CREDENTIAL, q("{'id':'c3','person':'p101','type':'fingerprint','code':'fp-0001'}"));
	tu_put(st, ENT_CREDENTIAL, q("{'id':'c4','person':'p101','type':'id_access','code':'RUN 12.345.678-5'}"));
	tu_put(st, ENT_CREDENTIAL, q("{'id':'c5','person':'p101','type':'qr','code':'QR-p101'}"));
	PUT_FAILS(st, ENT_CREDENTIAL, q("{'id':'c6','person':'p101','type':'face','code':'a\\u0001b'}"), 422,
		  "code");
	/* long_term is a plate field only */
	json_t *c = get(st, ENT_CREDENTIAL, "c1");
	cr_assert_null(json_object_get(c, "long_term"));
	json_decref(c);
	store_close(st);
	tu_rmdir();
}

Test(validate, credential_valid_window)
{
	store_t *st = site();
	PUT_FAILS(st, ENT_CREDENTIAL, q("{'id':'c1','person':'p101','type':'rf','code':'AB12',"
					"'valid_from':'2026-05-01T00:00:00Z','valid_until':'2026-04-01T00:00:00Z'}"),
		  422, "valid_until");
	PUT_FAILS(st, ENT_CREDENTIAL, q("{'id':'c1','person':'p101','type':'rf','code':'AB12',"
					"'valid_from':1780000000,'valid_until':1780000000}"),
		  422, "valid_until");
	tu_put(st, ENT_CREDENTIAL, q("{'id':'c1','person':'p101','type':'rf','code':'AB12',"
				     "'valid_from':'2026-04-01T00:00:00Z','valid_until':'2026-05-01T00:00:00Z'}"));
	json_t *c = get(st, ENT_CREDENTIAL, "c1");
	cr_assert_eq(ji(c, "valid_from"), 1775001600);
	cr_assert_eq(ji(c, "valid_until"), 1777593600);
	json_decref(c);
	store_close(st);
	tu_rmdir();
}

Test(validate, rf_card_code_and_duplicates)
{
	store_t *st = site();
	tu_put(st, ENT_CREDENTIAL, q("{'id':'c1','person':'p101','type':'rf','code':'abc123'}"));
	json_t *c = get(st, ENT_CREDENTIAL, "c1");
	cr_assert_str_eq(js(c, "code"), "ABC123");
	json_decref(c);
	PUT_FAILS(st, ENT_CREDENTIAL, q("{'id':'c2','person':'p102','type':'rf','code':'ABC123'}"), 409, "code");
	PUT_FAILS(st, ENT_CREDENTIAL, q("{'id':'c2','person':'p102','type':'rf','code':'abc123'}"), 409, "code");
	PUT_FAILS(st, ENT_CREDENTIAL, q("{'id':'c2','person':'p101','type':'rf','code':'ABC123'}"), 409, "code");
	/* the same number as a UHF tag is another credential */
	tu_put(st, ENT_CREDENTIAL, q("{'id':'c3','person':'p102','type':'uhf','code':'ABC123'}"));
	PUT_FAILS(st, ENT_CREDENTIAL, q("{'id':'c4','person':'p101','type':'uhf','code':'abc123'}"), 409, "code");
	PUT_FAILS(st, ENT_CREDENTIAL, q("{'id':'c4','person':'p102','type':'rf','code':'AB-12'}"), 422, "code");
	PUT_FAILS(st, ENT_CREDENTIAL, fmt("{'id':'c4','person':'p102','type':'rf','code':'%s'}", rep('A', 33)),
		  422, "code");
	tu_put(st, ENT_CREDENTIAL, fmt("{'id':'c4','person':'p102','type':'rf','code':'%s'}", rep('A', 32)));
	/* updating c1 keeps its number */
	tu_put(st, ENT_CREDENTIAL, q("{'id':'c1','person':'p101','type':'rf','code':'ABC123','label':'blue fob'}"));
	store_close(st);
	tu_rmdir();
}

Test(validate, uhf_at_most_five_per_person)
{
	store_t *st = site();
	for (int i = 1; i <= 5; i++)
		tu_put(st, ENT_CREDENTIAL, fmt("{'id':'u%d','person':'p101','type':'uhf','code':'E2000017%04d'}", i, i));
	PUT_FAILS(st, ENT_CREDENTIAL, q("{'id':'u6','person':'p101','type':'uhf','code':'E20000170006'}"), 422,
		  "code");
	/* updating one of the five is fine; another person has their own five */
	tu_put(st, ENT_CREDENTIAL, q("{'id':'u5','person':'p101','type':'uhf','code':'E20000170055'}"));
	tu_put(st, ENT_CREDENTIAL, q("{'id':'u6','person':'p102','type':'uhf','code':'E20000170006'}"));
	/* RF cards are not limited to five */
	for (int i = 1; i <= 6; i++)
		tu_put(st, ENT_CREDENTIAL, fmt("{'id':'r%d','person':'p101','type':'rf','code':'RF%d'}", i, i));
	store_close(st);
	tu_rmdir();
}

Test(validate, plates_at_most_five_per_person)
{
	store_t *st = site();
	for (int i = 1; i <= 5; i++)
		tu_put(st, ENT_CREDENTIAL, fmt("{'id':'l%d','person':'p101','type':'plate','code':'W 1234%d'}", i, i));
	PUT_FAILS(st, ENT_CREDENTIAL, q("{'id':'l6','person':'p101','type':'plate','code':'W 12346'}"), 422,
		  "code");
	tu_put(st, ENT_CREDENTIAL, q("{'id':'l6','person':'p102','type':'plate','code':'W 12346'}"));
	store_close(st);
	tu_rmdir();
}

Test(validate, plate_normalised_and_unique)
{
	store_t *st = site();
	tu_put(st, ENT_CREDENTIAL, q("{'id':'l1','person':'p101','type':'plate','code':'w 123-ab'}"));
	json_t *c = get(st, ENT_CREDENTIAL, "l1");
	cr_assert_str_eq(js(c, "code"), "W123AB");
	cr_assert(json_is_true(json_object_get(c, "long_term")));
	json_decref(c);
	PUT_FAILS(st, ENT_CREDENTIAL, q("{'id':'l2','person':'p102','type':'plate','code':'W123AB'}"), 409, "code");
	PUT_FAILS(st, ENT_CREDENTIAL, q("{'id':'l2','person':'p102','type':'plate','code':'W.123 AB'}"), 409, "code");
	PUT_FAILS(st, ENT_CREDENTIAL, q("{'id':'l2','person':'p102','type':'plate','code':' - '}"), 422, "code");
	store_close(st);
	tu_rmdir();
}

Test(validate, plate_not_long_term_needs_window)
{
	store_t *st = site();
	PUT_FAILS(st, ENT_CREDENTIAL, q("{'id':'l1','person':'p101','type':'plate','code':'W1','long_term':false}"),
		  422, "valid_until");
	PUT_FAILS(st, ENT_CREDENTIAL, q("{'id':'l1','person':'p101','type':'plate','code':'W1','long_term':false,"
					"'valid_from':'2026-04-01T08:00:00Z'}"),
		  422, "valid_until");
	PUT_FAILS(st, ENT_CREDENTIAL, q("{'id':'l1','person':'p101','type':'plate','code':'W1','long_term':false,"
					"'valid_until':'2026-04-01T08:00:00Z'}"),
		  422, "valid_until");
	PUT_FAILS(st, ENT_CREDENTIAL, q("{'id':'l1','person':'p101','type':'plate','code':'W1','long_term':'no'}"),
		  422, "long_term");
	tu_put(st, ENT_CREDENTIAL, q("{'id':'l1','person':'p101','type':'plate','code':'W1','long_term':false,"
				     "'valid_from':'2026-04-01T08:00:00Z','valid_until':'2026-04-03T18:00:00Z'}"));
	json_t *c = get(st, ENT_CREDENTIAL, "l1");
	cr_assert(json_is_false(json_object_get(c, "long_term")));
	json_decref(c);
	store_close(st);
	tu_rmdir();
}

/* ---- MACs and devices ---- */

Test(validate, mac_normalised)
{
	store_t *st = site();
	tu_put(st, ENT_MAC, q("{'id':'0c:11:05:0b:98:20'}"));
	tu_put(st, ENT_MAC, q("{'id':'0c-11-05-0b-98-21'}"));
	tu_put(st, ENT_MAC, q("{'id':'0c11050b9822'}"));
	json_t *m = get(st, ENT_MAC, "0C11050B9820");
	cr_assert_str_eq(js(m, "id"), "0C11050B9820");
	json_decref(m);
	m = get(st, ENT_MAC, "0C11050B9821");
	json_decref(m);
	m = get(st, ENT_MAC, "0C11050B9822");
	json_decref(m);
	/* a device put by its lower-case colon form lands on the canonical MAC */
	gh_err_t err = { 0 };
	json_t *in = tu_json(q("{'id':'0c:11:05:0b:98:16','type':3,'name':'Guard'}")), *out = NULL;
	cr_assert_eq(ent_put(st, ENT_DEVICE, NULL, in, NULL, &out, &err), 0, "%s", err.message);
	cr_assert_str_eq(js(out, "id"), MAC_FREE);
	json_decref(in);
	json_decref(out);
	json_t *d = get(st, ENT_DEVICE, MAC_FREE);
	json_decref(d);
	char mac[13];
	cr_assert_eq(mac_normalize("0c:11:05:0b:98:14", mac), 0);
	cr_assert_str_eq(mac, "0C11050B9814");
	store_close(st);
	tu_rmdir();
}

Test(validate, mac_bad)
{
	store_t *st = site();
	const char *bad[] = { "0C11050B981", "0C11050B98140", "0C11050B98ZZ", "", ":0C11050B9814",
			      "0C 11 05 0B 98 14", "0C11050B981G" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		PUT_FAILS(st, ENT_MAC, fmt("{'id':'%s'}", bad[i]), 422, "id");
		PUT_FAILS(st, ENT_DEVICE, fmt("{'id':'%s','type':0,'name':'X','ip':'10.0.0.9'}", bad[i]), 422, "id");
		char mac[13];
		cr_assert_neq(mac_normalize(bad[i], mac), 0, "\"%s\" accepted", bad[i]);
	}
	PUT_FAILS(st, ENT_MAC, q("{'remark':'no id'}"), 422, "id");
	PUT_FAILS(st, ENT_MAC, fmt("{'id':'0C11050B9830','remark':'%s'}", rep('r', 256)), 422, "remark");
	tu_put(st, ENT_MAC, fmt("{'id':'0C11050B9830','remark':'%s'}", rep('r', 255)));
	store_close(st);
	tu_rmdir();
}

Test(validate, device_needs_mac_in_library)
{
	store_t *st = site();
	int64_t n = ent_count(st, ENT_DEVICE);
	gh_err_t e = tu_put_fail(st, ENT_DEVICE, q("{'id':'" MAC_UNKNOWN "','type':0,'name':'Gate','ip':'10.0.0.9'}"));
	cr_assert_eq(e.status, 422);
	cr_assert_str_eq(e.code, "not_in_mac_library");
	cr_assert_str_eq(e.field, "id");
	cr_assert_neq(e.message[0], '\0');
	cr_assert_eq(ent_count(st, ENT_DEVICE), n);
	tu_put(st, ENT_MAC, q("{'id':'" MAC_UNKNOWN "'}"));
	tu_put(st, ENT_DEVICE, q("{'id':'" MAC_UNKNOWN "','type':0,'name':'Gate','ip':'10.0.0.9'}"));
	store_close(st);
	tu_rmdir();
}

Test(validate, mac_bound_to_device_not_deletable)
{
	store_t *st = site();
	gh_err_t err = { 0 };
	cr_assert_eq(ent_delete(st, ENT_MAC, MAC_DP, NULL, &err), -1);
	cr_assert_eq(err.status, 409);
	cr_assert_str_eq(err.field, "id");
	cr_assert_neq(err.message[0], '\0');
	json_t *m = get(st, ENT_MAC, MAC_DP);
	json_decref(m);
	/* lower-case form of the same MAC: same answer */
	gh_err_clear(&err);
	cr_assert_eq(ent_delete(st, ENT_MAC, "0c:11:05:0b:98:14", NULL, &err), -1);
	cr_assert_eq(err.status, 409);
	/* unbound MACs go; then a bound one once its device is gone */
	cr_assert_eq(ent_delete(st, ENT_MAC, MAC_FREE, NULL, &err), 0, "%s", err.message);
	cr_assert_eq(ent_delete(st, ENT_DEVICE, MAC_DP, NULL, &err), 0, "%s", err.message);
	cr_assert_eq(ent_delete(st, ENT_MAC, MAC_DP, NULL, &err), 0, "%s", err.message);
	store_close(st);
	tu_rmdir();
}

Test(validate, device_type)
{
	store_t *st = site();
	const int ok[] = { 0, 1, 2, 3, 50 };
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
		tu_put(st, ENT_DEVICE, fmt("{'id':'" MAC_FREE "','type':%d,'name':'Dev','ip':'10.0.0.9'}", ok[i]));
	const char *bad[] = { "4", "49", "51", "-1", "100", "'0'", "null" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		PUT_FAILS(st, ENT_DEVICE, fmt("{'id':'" MAC_FREE2 "','type':%s,'name':'Dev'}", bad[i]), 422, "type");
	PUT_FAILS(st, ENT_DEVICE, q("{'id':'" MAC_FREE2 "','name':'Dev'}"), 422, "type");
	store_close(st);
	tu_rmdir();
}

Test(validate, device_name_and_area)
{
	store_t *st = site();
	PUT_FAILS(st, ENT_DEVICE, q("{'id':'" MAC_FREE "','type':3}"), 422, "name");
	PUT_FAILS(st, ENT_DEVICE, q("{'id':'" MAC_FREE "','type':3,'name':''}"), 422, "name");
	PUT_FAILS(st, ENT_DEVICE, fmt("{'id':'" MAC_FREE "','type':3,'name':'%s'}", rep('n', 65)), 422, "name");
	PUT_FAILS(st, ENT_DEVICE, q("{'id':'" MAC_FREE "','type':3,'name':'G','area':'roof'}"), 422, "area");
	PUT_FAILS(st, ENT_DEVICE, q("{'id':'" MAC_FREE "','type':3,'name':'G','area':'building'}"), 422, "building");
	PUT_FAILS(st, ENT_DEVICE, q("{'id':'" MAC_FREE "','type':2,'name':'M','area':'apartment'}"), 422, "apartment");
	PUT_FAILS(st, ENT_DEVICE, q("{'id':'" MAC_FREE "','type':2,'name':'M','area':'site','apartment':'a102'}"),
		  422, "apartment");
	PUT_FAILS(st, ENT_DEVICE, q("{'id':'" MAC_FREE "','type':2,'name':'M','area':'apartment','apartment':'nope'}"),
		  422, "apartment");
	tu_put(st, ENT_DEVICE, q("{'id':'" MAC_FREE "','type':0,'name':'Tower A door','area':'building','building':'b1'}"));
	tu_put(st, ENT_DEVICE, q("{'id':'" MAC_FREE2 "','type':2,'name':'Monitor 102','area':'apartment','apartment':'a102'}"));
	store_close(st);
	tu_rmdir();
}

Test(validate, device_defaults)
{
	store_t *st = site();
	json_t *d = get(st, ENT_DEVICE, MAC_DP);
	cr_assert_eq(ji(d, "type"), 0);
	cr_assert_str_eq(js(d, "area"), "site");
	cr_assert(json_is_true(json_object_get(d, "internet")));
	cr_assert(json_is_false(json_object_get(d, "works_offline")));
	cr_assert(json_is_false(json_object_get(d, "monitor_allowed")));
	cr_assert_str_eq(js(d, "serves"), "all");
	json_t *r = json_array_get(json_object_get(d, "relays"), 0);
	cr_assert_eq(ji(r, "n"), 1);
	cr_assert_str_eq(js(r, "name"), "Main door");
	cr_assert_str_eq(js(r, "dtmf"), "#");
	cr_assert(json_is_null(json_object_get(r, "methods")));
	cr_assert(json_is_null(json_object_get(r, "schedule")));
	cr_assert(json_is_null(json_object_get(r, "board")));
	json_decref(d);
	tu_put(st, ENT_DEVICE, q("{'id':'" MAC_FREE "','type':50,'name':'Terminal','relays':[{'n':3}]}"));
	d = get(st, ENT_DEVICE, MAC_FREE);
	cr_assert_str_eq(js(json_array_get(json_object_get(d, "relays"), 0), "name"), "Relay 3");
	json_decref(d);
	store_close(st);
	tu_rmdir();
}

Test(validate, door_phone_without_internet_needs_ip)
{
	store_t *st = site();
	PUT_FAILS(st, ENT_DEVICE, q("{'id':'" MAC_FREE "','type':0,'name':'Gate','internet':false}"), 422, "ip");
	PUT_FAILS(st, ENT_DEVICE, q("{'id':'" MAC_FREE "','type':1,'name':'Gate','internet':false,'ip':''}"), 422, "ip");
	PUT_FAILS(st, ENT_DEVICE, q("{'id':'" MAC_FREE "','type':50,'name':'Gate','internet':false}"), 422, "ip");
	PUT_FAILS(st, ENT_DEVICE, q("{'id':'" MAC_FREE "','type':0,'name':'Gate','internet':false,'ip':'300.1.2.3'}"),
		  422, "ip");
	PUT_FAILS(st, ENT_DEVICE, q("{'id':'" MAC_FREE "','type':0,'name':'Gate','ip':'gate.local'}"), 422, "ip");
	PUT_FAILS(st, ENT_DEVICE, q("{'id':'" MAC_FREE "','type':0,'name':'Gate','internet':'no'}"), 422, "internet");
	tu_put(st, ENT_DEVICE, q("{'id':'" MAC_FREE "','type':0,'name':'Gate','internet':false,'ip':'192.168.1.20'}"));
	tu_put(st, ENT_DEVICE, q("{'id':'" MAC_FREE "','type':1,'name':'Gate','internet':false,'ip':'fd00::20'}"));
	/* an indoor monitor or guard phone has no such rule */
	tu_put(st, ENT_DEVICE, q("{'id':'" MAC_FREE2 "','type':3,'name':'Guard','internet':false}"));
	store_close(st);
	tu_rmdir();
}

Test(validate, works_offline_one_monitor_per_apartment)
{
	store_t *st = site();
	PUT_FAILS(st, ENT_DEVICE, q("{'id':'" MAC_FREE "','type':0,'name':'Gate','works_offline':true}"), 422,
		  "works_offline");
	PUT_FAILS(st, ENT_DEVICE, q("{'id':'" MAC_FREE "','type':3,'name':'Guard','works_offline':true}"), 422,
		  "works_offline");
	PUT_FAILS(st, ENT_DEVICE, q("{'id':'" MAC_FREE "','type':2,'name':'Lobby monitor','works_offline':true}"), 422,
		  "works_offline");
	tu_put(st, ENT_DEVICE, q("{'id':'" MAC_IM "','type':2,'name':'Monitor 101','area':'apartment',"
				 "'apartment':'a101','works_offline':true}"));
	/* re-putting the same monitor is fine */
	tu_put(st, ENT_DEVICE, q("{'id':'" MAC_IM "','type':2,'name':'Monitor 101 hall','area':'apartment',"
				 "'apartment':'a101','works_offline':true}"));
	PUT_FAILS(st, ENT_DEVICE, q("{'id':'" MAC_FREE "','type':2,'name':'Monitor 101 bed','area':'apartment',"
				    "'apartment':'a101','works_offline':true}"),
		  409, "works_offline");
	tu_put(st, ENT_DEVICE, q("{'id':'" MAC_FREE "','type':2,'name':'Monitor 101 bed','area':'apartment',"
				 "'apartment':'a101'}"));
	tu_put(st, ENT_DEVICE, q("{'id':'" MAC_FREE2 "','type':2,'name':'Monitor 102','area':'apartment',"
				 "'apartment':'a102','works_offline':true}"));
	store_close(st);
	tu_rmdir();
}

Test(validate, device_relays)
{
	store_t *st = site();
	const char *pre = "{'id':'" MAC_FREE "','type':0,'name':'Gate','relays':";
	PUT_FAILS(st, ENT_DEVICE, fmt("%s[{'n':1},{'n':1}]}", pre), 409, "relays[1].n");
	PUT_FAILS(st, ENT_DEVICE, fmt("%s[{'n':0}]}", pre), 422, "relays[0].n");
	PUT_FAILS(st, ENT_DEVICE, fmt("%s[{'n':17}]}", pre), 422, "relays[0].n");
	PUT_FAILS(st, ENT_DEVICE, fmt("%s[{'name':'Door'}]}", pre), 422, "relays[0].n");
	PUT_FAILS(st, ENT_DEVICE, fmt("%s[{'n':1,'dtmf':'12A'}]}", pre), 422, "relays[0].dtmf");
	PUT_FAILS(st, ENT_DEVICE, fmt("%s[{'n':1,'dtmf':''}]}", pre), 422, "relays[0].dtmf");
	PUT_FAILS(st, ENT_DEVICE, fmt("%s[{'n':1,'dtmf':'123456789'}]}", pre), 422, "relays[0].dtmf");
	PUT_FAILS(st, ENT_DEVICE, fmt("%s[{'n':1,'methods':['pin','warp']}]}", pre), 422, "relays[0].methods");
	PUT_FAILS(st, ENT_DEVICE, fmt("%s[{'n':1,'methods':'pin'}]}", pre), 422, "relays[0].methods");
	PUT_FAILS(st, ENT_DEVICE, fmt("%s[{'n':1,'schedule':'nogroup'}]}", pre), 422, "relays[0].schedule");
	PUT_FAILS(st, ENT_DEVICE, fmt("%s[{'n':1,'name':'%s'}]}", pre, rep('n', 65)), 422, "relays[0].name");
	PUT_FAILS(st, ENT_DEVICE, fmt("%s'all'}", pre), 422, "relays");
	PUT_FAILS(st, ENT_DEVICE, fmt("%s[1]}", pre), 422, "relays[0]");
	tu_put(st, ENT_ACCESS_GROUP, q("{'id':'g1','name':'Office hours','schedule':{'repeat':'weekly',"
				       "'days':[1,2,3,4,5],'from':'08:00','to':'18:00'}}"));
	tu_put(st, ENT_DEVICE, fmt("%s[{'n':1,'name':'Gate','dtmf':'*#12','schedule':'g1','methods':"
				   "['pin','rf','face','bluetooth','nfc','app_home','app_talk']},{'n':16,'methods':[]}]}",
				   pre));
	json_t *d = get(st, ENT_DEVICE, MAC_FREE);
	json_t *r = json_array_get(json_object_get(d, "relays"), 0);
	cr_assert_str_eq(js(r, "dtmf"), "*#12");
	cr_assert_str_eq(js(r, "schedule"), "g1");
	cr_assert_eq(json_array_size(json_object_get(r, "methods")), 7);
	json_decref(d);
	store_close(st);
	tu_rmdir();
}

/* Checklist: "device.relays[].name: required, non-empty" (absent takes
 * the default "Relay n"; an explicit empty name is refused). */
Test(validate, device_relay_name_not_empty)
{
	store_t *st = site();
	PUT_FAILS(st, ENT_DEVICE, q("{'id':'" MAC_FREE "','type':0,'name':'Gate','relays':[{'n':1,'name':''}]}"),
		  422, "relays[0].name");
	store_close(st);
	tu_rmdir();
}

Test(validate, device_relay_on_board_channel)
{
	store_t *st = site();
	const char *pre = "{'id':'" MAC_IM "','type':2,'name':'Monitor 101','area':'apartment','apartment':'a101',"
			  "'relays':[{'n':1,'board':";
	tu_put(st, ENT_DEVICE, fmt("%s{'board':'rb1','channel':8}}]}", pre));
	PUT_FAILS(st, ENT_DEVICE, fmt("%s{'board':'rb1','channel':9}}]}", pre), 422, "relays[0].board.channel");
	PUT_FAILS(st, ENT_DEVICE, fmt("%s{'board':'nope','channel':1}}]}", pre), 422, "relays[0].board");
	PUT_FAILS(st, ENT_DEVICE, fmt("%s{'device':'" MAC_DP "','relay':1}}]}", pre), 422, "relays[0].board");
	store_close(st);
	tu_rmdir();
}

Test(validate, device_serves)
{
	store_t *st = site();
	tu_put(st, ENT_DEVICE, q("{'id':'" MAC_FREE "','type':0,'name':'Main gate','serves':['b1','b2']}"));
	PUT_FAILS(st, ENT_DEVICE, q("{'id':'" MAC_FREE2 "','type':0,'name':'Gate','serves':['nope']}"), 422,
		  "serves[0]");
	PUT_FAILS(st, ENT_DEVICE, q("{'id':'" MAC_FREE2 "','type':0,'name':'Gate','serves':[]}"), 422, "serves");
	PUT_FAILS(st, ENT_DEVICE, q("{'id':'" MAC_FREE2 "','type':0,'name':'Gate','serves':'some'}"), 422, "serves");
	PUT_FAILS(st, ENT_DEVICE, q("{'id':'" MAC_FREE2 "','type':0,'name':'Gate','area':'building',"
				    "'building':'b1','serves':['b1']}"),
		  422, "serves");
	store_close(st);
	tu_rmdir();
}

/* ---- relay boards ---- */

Test(validate, relay_board_profile)
{
	store_t *st = site();
	PUT_FAILS(st, ENT_RELAY_BOARD, q("{'id':'rb9','profile':'XYZ-1000','bus':'/dev/ttyUSB0'}"), 422, "profile");
	PUT_FAILS(st, ENT_RELAY_BOARD, q("{'id':'rb9','bus':'/dev/ttyUSB0'}"), 422, "profile");
	gh_err_t e = tu_put_fail(st, ENT_RELAY_BOARD, q("{'id':'rb9','profile':'XYZ-1000','bus':'/dev/ttyUSB0'}"));
	cr_assert_str_eq(e.code, "unknown_profile");
	tu_put(st, ENT_RELAY_BOARD, q("{'id':'rb2','profile':'HF-8000','bus':'/dev/ttyUSB1'}"));
	tu_put(st, ENT_RELAY_BOARD, q("{'id':'rb3','profile':'RSAC-C1-R8','bus':'/dev/ttyUSB2','unit':2}"));
	json_t *b = get(st, ENT_RELAY_BOARD, "rb1");
	cr_assert_str_eq(js(b, "mode"), "rs485");
	cr_assert_eq(ji(b, "unit"), 1);
	cr_assert(json_is_array(json_object_get(b, "channels")));
	json_decref(b);
	PUT_FAILS(st, ENT_RELAY_BOARD, q("{'id':'rb9','profile':'HF-8000','bus':'/dev/ttyUSB1','unit':248}"), 422,
		  "unit");
	PUT_FAILS(st, ENT_RELAY_BOARD, q("{'id':'rb9','profile':'HF-8000','bus':'/dev/ttyUSB1','building':'nope'}"),
		  422, "building");
	PUT_FAILS(st, ENT_RELAY_BOARD, q("{'id':'rb9','profile':'HF-8000','bus':'/dev/ttyUSB1',"
					 "'serial':{'baud':300}}"),
		  422, "serial.baud");
	PUT_FAILS(st, ENT_RELAY_BOARD, q("{'id':'rb9','profile':'HF-8000','bus':'/dev/ttyUSB1',"
					 "'serial':{'parity':'X'}}"),
		  422, "serial.parity");
	tu_put(st, ENT_RELAY_BOARD, q("{'id':'rb9','profile':'HF-8000','bus':'/dev/ttyUSB1',"
				      "'serial':{'baud':19200,'parity':'E'}}"));
	store_close(st);
	tu_rmdir();
}

Test(validate, relay_board_channel_counts)
{
	store_t *st = site();
	PUT_FAILS(st, ENT_RELAY_BOARD, q("{'id':'rb1','profile':'MK485-G2R-8J8C','bus':'/dev/ttyUSB0',"
					 "'channels':[{'channel':9}]}"),
		  422, "channels[0].channel");
	tu_put(st, ENT_RELAY_BOARD, q("{'id':'rb1','profile':'MK485-G2R-8J8C','bus':'/dev/ttyUSB0',"
				      "'channels':[{'channel':1,'name':'Garage','function':'door'},{'channel':8,"
				      "'function':'light','hold_ms':2000}]}"));
	PUT_FAILS(st, ENT_RELAY_BOARD, q("{'id':'rb2','profile':'HF-8000','bus':'/dev/ttyUSB1',"
					 "'channels':[{'channel':5}]}"),
		  422, "channels[0].channel");
	PUT_FAILS(st, ENT_RELAY_BOARD, q("{'id':'rb2','profile':'HF-8000','bus':'/dev/ttyUSB1',"
					 "'channels':[{'channel':1},{'channel':2},{'channel':3},{'channel':4},{'channel':1}]}"),
		  422, "channels");
	tu_put(st, ENT_RELAY_BOARD, q("{'id':'rb2','profile':'HF-8000','bus':'/dev/ttyUSB1',"
				      "'channels':[{'channel':4}]}"));
	tu_put(st, ENT_RELAY_BOARD, q("{'id':'rb3','profile':'RSAC-C1-R8','bus':'/dev/ttyUSB2',"
				      "'channels':[{'channel':16,'name':'Barrier','function':'barrier'}]}"));
	PUT_FAILS(st, ENT_RELAY_BOARD, q("{'id':'rb4','profile':'RSAC-C1-R8','bus':'/dev/ttyUSB2',"
					 "'channels':[{'channel':17}]}"),
		  422, "channels[0].channel");
	PUT_FAILS(st, ENT_RELAY_BOARD, q("{'id':'rb4','profile':'RSAC-C1-R8','bus':'/dev/ttyUSB2',"
					 "'channels':[{'channel':0}]}"),
		  422, "channels[0].channel");
	PUT_FAILS(st, ENT_RELAY_BOARD, q("{'id':'rb4','profile':'RSAC-C1-R8','bus':'/dev/ttyUSB2',"
					 "'channels':[{'channel':3},{'channel':3}]}"),
		  409, "channels[1].channel");
	PUT_FAILS(st, ENT_RELAY_BOARD, q("{'id':'rb4','profile':'RSAC-C1-R8','bus':'/dev/ttyUSB2',"
					 "'channels':[{'channel':3,'function':'fan'}]}"),
		  422, "channels[0].function");
	PUT_FAILS(st, ENT_RELAY_BOARD, q("{'id':'rb4','profile':'RSAC-C1-R8','bus':'/dev/ttyUSB2',"
					 "'channels':[{'channel':3,'hold_ms':50}]}"),
		  422, "channels[0].hold_ms");
	PUT_FAILS(st, ENT_RELAY_BOARD, q("{'id':'rb4','profile':'RSAC-C1-R8','bus':'/dev/ttyUSB2',"
					 "'channels':[3]}"),
		  422, "channels[0]");
	store_close(st);
	tu_rmdir();
}

Test(validate, relay_board_modes)
{
	store_t *st = site();
	tu_put(st, ENT_RELAY_BOARD, q("{'id':'m1','profile':'MK485-G2R-8J8C','mode':'rs485_input_latching',"
				      "'bus':'/dev/ttyUSB0'}"));
	tu_put(st, ENT_RELAY_BOARD, q("{'id':'m2','profile':'MK485-G2R-8J8C','mode':'rs485_input_nonlatching',"
				      "'bus':'/dev/ttyUSB0','unit':2}"));
	PUT_FAILS(st, ENT_RELAY_BOARD, q("{'id':'m3','profile':'MK485-G2R-8J8C','mode':'ethernet',"
					 "'bus':'10.0.0.5:502'}"),
		  422, "mode");
	tu_put(st, ENT_RELAY_BOARD, q("{'id':'h1','profile':'HF-8000','mode':'ethernet','bus':'192.168.1.50:502'}"));
	PUT_FAILS(st, ENT_RELAY_BOARD, q("{'id':'h2','profile':'HF-8000','mode':'ethernet','bus':'192.168.1.50'}"),
		  422, "bus");
	PUT_FAILS(st, ENT_RELAY_BOARD, q("{'id':'h2','profile':'HF-8000','mode':'ethernet','bus':'/dev/ttyUSB1'}"),
		  422, "bus");
	PUT_FAILS(st, ENT_RELAY_BOARD, q("{'id':'h2','profile':'HF-8000','mode':'ethernet','bus':':502'}"),
		  422, "bus");
	PUT_FAILS(st, ENT_RELAY_BOARD, q("{'id':'h2','profile':'HF-8000','mode':'ethernet','bus':'host:70000'}"),
		  422, "bus");
	PUT_FAILS(st, ENT_RELAY_BOARD, q("{'id':'h2','profile':'HF-8000','mode':'ethernet'}"), 422, "bus");
	PUT_FAILS(st, ENT_RELAY_BOARD, q("{'id':'h2','profile':'HF-8000','mode':'rs485_input_latching',"
					 "'bus':'/dev/ttyUSB1'}"),
		  422, "mode");
	PUT_FAILS(st, ENT_RELAY_BOARD, q("{'id':'h2','profile':'HF-8000','mode':'rs485','bus':'10.0.0.5:502'}"),
		  422, "bus");
	PUT_FAILS(st, ENT_RELAY_BOARD, q("{'id':'r1','profile':'RSAC-C1-R8','mode':'ethernet','bus':'10.0.0.5:502'}"),
		  422, "mode");
	PUT_FAILS(st, ENT_RELAY_BOARD, q("{'id':'r1','profile':'RSAC-C1-R8','mode':'wifi','bus':'/dev/ttyUSB2'}"),
		  422, "mode");
	tu_put(st, ENT_RELAY_BOARD, q("{'id':'r1','profile':'RSAC-C1-R8','mode':'rs485','bus':'/dev/ttyUSB2'}"));
	store_close(st);
	tu_rmdir();
}

/* A lift button may carry its floor label, or leave it to the building's
 * ground floor and floor start (drivers/bus.c lift_floor_label). */
Test(validate, lift_floor_channels)
{
	store_t *st = site();
	tu_put(st, ENT_RELAY_BOARD, q("{'id':'l0','profile':'LIFT-16','bus':'/dev/ttyUSB4','building':'b1',"
				      "'channels':[{'channel':1}]}"));
	PUT_FAILS(st, ENT_RELAY_BOARD, q("{'id':'l1','profile':'LIFT-16','bus':'/dev/ttyUSB3',"
					 "'channels':[{'channel':1,'floor':'G3'}]}"),
		  422, "channels[0].floor");
	PUT_FAILS(st, ENT_RELAY_BOARD, q("{'id':'l1','profile':'LIFT-16','bus':'/dev/ttyUSB3',"
					 "'channels':[{'channel':1,'floor':'129'}]}"),
		  422, "channels[0].floor");
	tu_put(st, ENT_RELAY_BOARD, q("{'id':'l1','profile':'LIFT-16','bus':'/dev/ttyUSB3','building':'b1',"
				      "'channels':[{'channel':1,'floor':'G0'},{'channel':2,'floor':1},"
				      "{'channel':3,'floor':'-2','function':'lift_floor'}]}"));
	json_t *b = get(st, ENT_RELAY_BOARD, "l1");
	json_t *c = json_array_get(json_object_get(b, "channels"), 1);
	cr_assert_str_eq(js(c, "function"), "lift_floor");
	cr_assert_str_eq(js(c, "floor"), "1");
	json_decref(b);
	store_close(st);
	tu_rmdir();
}

/* ---- access groups ---- */

Test(validate, access_group_name)
{
	store_t *st = site();
	PUT_FAILS(st, ENT_ACCESS_GROUP, q("{'id':'g1'}"), 422, "name");
	PUT_FAILS(st, ENT_ACCESS_GROUP, q("{'id':'g1','name':''}"), 422, "name");
	PUT_FAILS(st, ENT_ACCESS_GROUP, fmt("{'id':'g1','name':'%s'}", rep('g', 129)), 422, "name");
	PUT_FAILS(st, ENT_ACCESS_GROUP, q("{'id':'g1','name':'Default','building':'nope'}"), 422, "building");
	tu_put(st, ENT_ACCESS_GROUP, q("{'id':'g1','name':'Tower A default','building':'b1'}"));
	json_t *g = get(st, ENT_ACCESS_GROUP, "g1");
	cr_assert(json_is_null(json_object_get(g, "schedule")));
	cr_assert(json_is_array(json_object_get(g, "relays")));
	cr_assert(json_is_object(json_object_get(g, "members")));
	json_decref(g);
	store_close(st);
	tu_rmdir();
}

Test(validate, access_group_schedule)
{
	store_t *st = site();
#define SCHED_FAILS(sched, field) \
	PUT_FAILS(st, ENT_ACCESS_GROUP, fmt("{'id':'g9','name':'G','schedule':%s}", sched), 422, field)
	SCHED_FAILS("{'repeat':'monthly'}", "schedule.repeat");
	SCHED_FAILS("{'repeat':1}", "schedule.repeat");
	SCHED_FAILS("{'repeat':'weekly','from':'08:00','to':'18:00'}", "schedule.days");
	SCHED_FAILS("{'repeat':'weekly','days':[],'from':'08:00','to':'18:00'}", "schedule.days");
	SCHED_FAILS("{'repeat':'weekly','days':[0]}", "schedule.days");
	SCHED_FAILS("{'repeat':'weekly','days':[1,8]}", "schedule.days");
	SCHED_FAILS("{'repeat':'weekly','days':['mon']}", "schedule.days");
	SCHED_FAILS("{'repeat':'daily','from':'8:00','to':'18:00'}", "schedule.from");
	SCHED_FAILS("{'repeat':'daily','from':'08:00','to':'24:30'}", "schedule.to");
	SCHED_FAILS("{'repeat':'daily','from':'08:60','to':'18:00'}", "schedule.from");
	SCHED_FAILS("{'repeat':'daily','from':800,'to':'18:00'}", "schedule.from");
	SCHED_FAILS("{'repeat':'daily','from':'08:00'}", "schedule.to");
	SCHED_FAILS("{'repeat':'daily','to':'08:00'}", "schedule.from");
	SCHED_FAILS("{'repeat':'daily','from':'08:00','to':'08:00'}", "schedule.to");
	SCHED_FAILS("{'repeat':'never','start':'2026-05-01T00:00:00Z','end':'2026-04-01T00:00:00Z'}",
		    "schedule.end");
	SCHED_FAILS("{'repeat':'never','start':1780000000,'end':1780000000}", "schedule.end");
	SCHED_FAILS("{'repeat':'never','start':'yesterday'}", "schedule.start");
	SCHED_FAILS("{'repeat':'never','from':'08:00','to':'18:00'}", "schedule.repeat");
	SCHED_FAILS("'always'", "schedule");
#undef SCHED_FAILS
	tu_put(st, ENT_ACCESS_GROUP, q("{'id':'g1','name':'Weekdays','schedule':{'repeat':'weekly',"
				       "'days':[1,2,3,4,5],'from':'08:00','to':'18:00'}}"));
	tu_put(st, ENT_ACCESS_GROUP, q("{'id':'g2','name':'Night shift','schedule':{'repeat':'daily',"
				       "'from':'22:00','to':'06:00'}}"));
	tu_put(st, ENT_ACCESS_GROUP, q("{'id':'g3','name':'Fair','schedule':{'repeat':'never',"
				       "'start':'2026-03-29T02:30:00Z','end':'2026-04-02T18:00:00Z'}}"));
	tu_put(st, ENT_ACCESS_GROUP, q("{'id':'g4','name':'All week','schedule':{'repeat':'weekly',"
				       "'days':[1,2,3,4,5,6,7]}}"));
	tu_put(st, ENT_ACCESS_GROUP, q("{'id':'g5','name':'Until midnight','schedule':{'repeat':'daily',"
				       "'from':'18:00','to':'24:00'}}"));
	json_t *g = get(st, ENT_ACCESS_GROUP, "g3");
	json_t *s = json_object_get(g, "schedule");
	cr_assert_eq(ji(s, "start"), 1774751400);
	cr_assert_eq(ji(s, "end"), 1775152800);
	json_decref(g);
	store_close(st);
	tu_rmdir();
}

Test(validate, access_group_relays_must_exist)
{
	store_t *st = site();
	tu_put(st, ENT_ACCESS_GROUP, q("{'id':'g1','name':'Doors','relays':[{'device':'" MAC_DP "','relay':1},"
				       "{'device':'0c:11:05:0b:98:14','relay':2},{'board':'rb1','channel':8}]}"));
	json_t *g = get(st, ENT_ACCESS_GROUP, "g1");
	cr_assert_str_eq(js(json_array_get(json_object_get(g, "relays"), 1), "device"), MAC_DP);
	json_decref(g);
	PUT_FAILS(st, ENT_ACCESS_GROUP, q("{'id':'g2','name':'G','relays':[{'device':'" MAC_DP "','relay':3}]}"),
		  422, "relays[0]");
	PUT_FAILS(st, ENT_ACCESS_GROUP, q("{'id':'g2','name':'G','relays':[{'device':'" MAC_FREE "','relay':1}]}"),
		  422, "relays[0]");
	PUT_FAILS(st, ENT_ACCESS_GROUP, q("{'id':'g2','name':'G','relays':[{'device':'door-1','relay':1}]}"),
		  422, "relays[0].device");
	PUT_FAILS(st, ENT_ACCESS_GROUP, q("{'id':'g2','name':'G','relays':[{'device':'" MAC_DP "'}]}"),
		  422, "relays[0].relay");
	PUT_FAILS(st, ENT_ACCESS_GROUP, q("{'id':'g2','name':'G','relays':[{'board':'rb9','channel':1}]}"),
		  422, "relays[0]");
	PUT_FAILS(st, ENT_ACCESS_GROUP, q("{'id':'g2','name':'G','relays':[{'board':'rb1','channel':9}]}"),
		  422, "relays[0].channel");
	PUT_FAILS(st, ENT_ACCESS_GROUP, q("{'id':'g2','name':'G','relays':[{'relay':1}]}"), 422, "relays[0]");
	PUT_FAILS(st, ENT_ACCESS_GROUP, q("{'id':'g2','name':'G','relays':['" MAC_DP "']}"), 422, "relays[0]");
	PUT_FAILS(st, ENT_ACCESS_GROUP, q("{'id':'g2','name':'G','relays':{}}"), 422, "relays");
	store_close(st);
	tu_rmdir();
}

Test(validate, access_group_members_must_exist)
{
	store_t *st = site();
	tu_put(st, ENT_ACCESS_GROUP, q("{'id':'g1','name':'Residents','members':{'persons':['p101','p102'],"
				       "'apartments':['a101'],'buildings':['b1','b2']}}"));
	PUT_FAILS(st, ENT_ACCESS_GROUP, q("{'id':'g2','name':'G','members':{'persons':['p101','nobody']}}"),
		  422, "members.persons[1]");
	PUT_FAILS(st, ENT_ACCESS_GROUP, q("{'id':'g2','name':'G','members':{'apartments':['a999']}}"),
		  422, "members.apartments[0]");
	PUT_FAILS(st, ENT_ACCESS_GROUP, q("{'id':'g2','name':'G','members':{'buildings':['b9']}}"),
		  422, "members.buildings[0]");
	PUT_FAILS(st, ENT_ACCESS_GROUP, q("{'id':'g2','name':'G','members':{'persons':[7]}}"),
		  422, "members.persons[0]");
	PUT_FAILS(st, ENT_ACCESS_GROUP, q("{'id':'g2','name':'G','members':{'persons':'p101'}}"),
		  422, "members.persons");
	PUT_FAILS(st, ENT_ACCESS_GROUP, q("{'id':'g2','name':'G','members':['p101']}"), 422, "members");
	/* a cloud snapshot may reference members it has not sent yet */
	gh_err_t err = { 0 };
	ent_ctx_t cloud = { .local = 0, .actor = "cloud", .rev = 3, .lenient_refs = 1 };
	json_t *in = tu_json(q("{'id':'g2','name':'G','members':{'persons':['later']}}"));
	cr_assert_eq(ent_put(st, ENT_ACCESS_GROUP, NULL, in, &cloud, NULL, &err), 0, "%s", err.message);
	json_decref(in);
	store_close(st);
	tu_rmdir();
}

/* ---- temp keys ---- */

Test(validate, temp_key_code_or_qr)
{
	store_t *st = site();
	const char *tail = "'devices':['" MAC_DP "'],'schedule':{'end':'2099-01-01T00:00:00Z'}}";
	PUT_FAILS(st, ENT_TEMP_KEY, fmt("{'id':'k1','visitor':'Tom',%s", tail), 422, "code");
	tu_put(st, ENT_TEMP_KEY, fmt("{'id':'k1','visitor':'Tom','qr':'QR-TOM-1',%s", tail));
	tu_put(st, ENT_TEMP_KEY, fmt("{'id':'k2','visitor':'Tim','code':'2580',%s", tail));
	tu_put(st, ENT_TEMP_KEY, fmt("{'id':'k3','visitor':'Tia','code':'2581','qr':'QR-TIA',%s", tail));
	PUT_FAILS(st, ENT_TEMP_KEY, fmt("{'id':'k4','code':'9123',%s", tail), 422, "code");
	PUT_FAILS(st, ENT_TEMP_KEY, fmt("{'id':'k4','code':'1',%s", tail), 422, "code");
	PUT_FAILS(st, ENT_TEMP_KEY, fmt("{'id':'k4','code':'12a4',%s", tail), 422, "code");
	PUT_FAILS(st, ENT_TEMP_KEY, fmt("{'id':'k4','code':'123456789',%s", tail), 422, "code");
	PUT_FAILS(st, ENT_TEMP_KEY, fmt("{'id':'k4','code':1234,%s", tail), 422, "code");
	PUT_FAILS(st, ENT_TEMP_KEY, fmt("{'id':'k4','code':'2582','visitor':'%s',%s", rep('v', 65), tail), 422,
		  "visitor");
	store_close(st);
	tu_rmdir();
}

/* An empty qr is no QR code: a key with neither a PIN nor a real QR. */
Test(validate, temp_key_empty_qr_refused)
{
	store_t *st = site();
	int64_t n = ent_count(st, ENT_TEMP_KEY);
	gh_err_t e = tu_put_fail(st, ENT_TEMP_KEY, q("{'id':'k1','qr':'','devices':['" MAC_DP "'],"
						     "'schedule':{'end':'2099-01-01T00:00:00Z'}}"));
	cr_assert_eq(e.status, 422);
	cr_assert(!strcmp(e.field, "qr") || !strcmp(e.field, "code"), "field %s", e.field);
	cr_assert_neq(e.message[0], '\0');
	cr_assert_eq(ent_count(st, ENT_TEMP_KEY), n);
	store_close(st);
	tu_rmdir();
}

Test(validate, temp_key_needs_doors)
{
	store_t *st = site();
	PUT_FAILS(st, ENT_TEMP_KEY, q("{'id':'k1','code':'2580','schedule':{'end':'2099-01-01T00:00:00Z'}}"), 422,
		  "relays");
	tu_put(st, ENT_TEMP_KEY, q("{'id':'k1','code':'2580','relays':[{'device':'" MAC_DP "','relay':2}],"
				   "'schedule':{'end':'2099-01-01T00:00:00Z'}}"));
	PUT_FAILS(st, ENT_TEMP_KEY, q("{'id':'k2','code':'2581','relays':[{'device':'" MAC_DP "','relay':5}],"
				      "'schedule':{'end':'2099-01-01T00:00:00Z'}}"),
		  422, "relays[0]");
	PUT_FAILS(st, ENT_TEMP_KEY, q("{'id':'k2','code':'2581','devices':['" MAC_FREE "'],"
				      "'schedule':{'end':'2099-01-01T00:00:00Z'}}"),
		  422, "devices[0]");
	PUT_FAILS(st, ENT_TEMP_KEY, q("{'id':'k2','code':'2581','devices':['gate'],"
				      "'schedule':{'end':'2099-01-01T00:00:00Z'}}"),
		  422, "devices[0]");
	PUT_FAILS(st, ENT_TEMP_KEY, q("{'id':'k2','code':'2581','apartment':'a999','devices':['" MAC_DP "'],"
				      "'schedule':{'end':'2099-01-01T00:00:00Z'}}"),
		  422, "apartment");
	PUT_FAILS(st, ENT_TEMP_KEY, q("{'id':'k2','code':'2581','building':'b9','devices':['" MAC_DP "'],"
				      "'schedule':{'end':'2099-01-01T00:00:00Z'}}"),
		  422, "building");
	store_close(st);
	tu_rmdir();
}

Test(validate, temp_key_non_repeating_needs_end)
{
	store_t *st = site();
	PUT_FAILS(st, ENT_TEMP_KEY, q("{'id':'k1','code':'2580','devices':['" MAC_DP "']}"), 422, "schedule.end");
	PUT_FAILS(st, ENT_TEMP_KEY, q("{'id':'k1','code':'2580','devices':['" MAC_DP "'],"
				      "'schedule':{'repeat':'never','start':'2026-04-01T00:00:00Z'}}"),
		  422, "schedule.end");
	PUT_FAILS(st, ENT_TEMP_KEY, q("{'id':'k1','code':'2580','devices':['" MAC_DP "'],"
				      "'schedule':{'repeat':'daily','from':'09:00','to':'09:00'}}"),
		  422, "schedule.to");
	tu_put(st, ENT_TEMP_KEY, q("{'id':'k1','code':'2580','devices':['" MAC_DP "'],"
				   "'schedule':{'repeat':'weekly','days':[6,7],'from':'09:00','to':'17:00'}}"));
	tu_put(st, ENT_TEMP_KEY, q("{'id':'k2','code':'2581','devices':['" MAC_DP "'],"
				   "'schedule':{'repeat':'never','start':'2026-04-01T00:00:00Z','end':'2026-04-02T00:00:00Z'}}"));
	json_t *k = get(st, ENT_TEMP_KEY, "k2");
	cr_assert_eq(ji(json_object_get(k, "schedule"), "end"), 1775088000);
	cr_assert(json_is_null(json_object_get(k, "uses_left")));
	cr_assert(json_is_null(json_object_get(k, "uses_per_device")));
	json_decref(k);
	store_close(st);
	tu_rmdir();
}

Test(validate, temp_key_max_days)
{
	store_t *st = site();
	int64_t now = gh_now();
	const int64_t day = 86400;
	/* unlimited by default */
	tu_put(st, ENT_TEMP_KEY, fmt("{'id':'k1','code':'2580','devices':['" MAC_DP "'],"
				     "'schedule':{'start':%lld,'end':%lld}}",
				     (long long)now, (long long)(now + 60 * day)));
	tu_put(st, ENT_SETTINGS, q("{'temp_key_max_days':30}"));
	PUT_FAILS(st, ENT_TEMP_KEY, fmt("{'id':'k2','code':'2581','devices':['" MAC_DP "'],"
					"'schedule':{'start':%lld,'end':%lld}}",
					(long long)now, (long long)(now + 31 * day)),
		  422, "schedule.end");
	/* without a start the 30 days count from now */
	PUT_FAILS(st, ENT_TEMP_KEY, fmt("{'id':'k2','code':'2581','devices':['" MAC_DP "'],"
					"'schedule':{'end':%lld}}", (long long)(now + 40 * day)),
		  422, "schedule.end");
	tu_put(st, ENT_TEMP_KEY, fmt("{'id':'k2','code':'2581','devices':['" MAC_DP "'],"
				     "'schedule':{'start':%lld,'end':%lld}}",
				     (long long)now, (long long)(now + 30 * day)));
	tu_put(st, ENT_TEMP_KEY, fmt("{'id':'k3','code':'2582','devices':['" MAC_DP "'],"
				     "'schedule':{'start':%lld,'end':%lld}}",
				     (long long)(now + 100 * day), (long long)(now + 120 * day)));
	store_close(st);
	tu_rmdir();
}

Test(validate, temp_key_uses_per_device)
{
	store_t *st = site();
	tu_put(st, ENT_MAC, q("{'id':'0C11050B9840'}"));
	tu_put(st, ENT_DEVICE, q("{'id':'0C11050B9840','type':1,'name':'Back door','relays':[{'n':1}]}"));
	PUT_FAILS(st, ENT_TEMP_KEY, q("{'id':'k1','code':'2580','relays':[{'device':'" MAC_DP "','relay':1}],"
				      "'uses_per_device':2,'schedule':{'end':'2099-01-01T00:00:00Z'}}"),
		  422, "devices");
	PUT_FAILS(st, ENT_TEMP_KEY, q("{'id':'k1','code':'2580','devices':['" MAC_DP "'],'uses_per_device':0,"
				      "'schedule':{'end':'2099-01-01T00:00:00Z'}}"),
		  422, "uses_per_device");
	PUT_FAILS(st, ENT_TEMP_KEY, q("{'id':'k1','code':'2580','devices':['" MAC_DP "'],'uses_per_device':'1',"
				      "'schedule':{'end':'2099-01-01T00:00:00Z'}}"),
		  422, "uses_per_device");
	tu_put(st, ENT_TEMP_KEY, q("{'id':'k1','code':'2580','devices':['0c:11:05:0b:98:14','0C11050B9840'],"
				   "'uses_per_device':2,'uses_left':99,'schedule':{'end':'2099-01-01T00:00:00Z'}}"));
	json_t *k = get(st, ENT_TEMP_KEY, "k1");
	cr_assert_eq(ji(k, "uses_per_device"), 2);
	cr_assert_eq(ji(k, "uses_left"), 4, "uses_left is box-owned: 2 x 2 devices");
	cr_assert_str_eq(json_string_value(json_array_get(json_object_get(k, "devices"), 0)), MAC_DP);
	json_decref(k);
	store_close(st);
	tu_rmdir();
}

/* Checklist and RULES.md §3: uses per device apply to "Never" keys only. */
Test(validate, temp_key_uses_only_for_never)
{
	store_t *st = site();
	PUT_FAILS(st, ENT_TEMP_KEY, q("{'id':'k1','code':'2580','devices':['" MAC_DP "'],'uses_per_device':2,"
				      "'schedule':{'repeat':'daily','from':'08:00','to':'18:00'}}"),
		  422, "uses_per_device");
	store_close(st);
	tu_rmdir();
}

/* ---- settings ---- */

Test(validate, settings_defaults)
{
	store_t *st = site();
	json_t *s = get(st, ENT_SETTINGS, "site");
	cr_assert_str_eq(js(s, "id"), "site");
	cr_assert_str_eq(js(s, "timezone"), "UTC");
	cr_assert_str_eq(js(s, "pin_mode"), "pin");
	cr_assert_eq(ji(s, "temp_key_max_days"), 0);
	cr_assert_eq(ji(s, "relay_hold_ms"), 5000);
	json_decref(s);
	tu_put(st, ENT_SETTINGS, q("{'name':'Parkside'}"));
	s = get(st, ENT_SETTINGS, "site");
	cr_assert_str_eq(js(s, "name"), "Parkside");
	cr_assert_str_eq(js(s, "kind"), "community");
	cr_assert_str_eq(js(s, "feature_plan"), "premium");
	cr_assert_str_eq(js(s, "access_permission"), "public_private");
	cr_assert_eq(ji(s, "lift_grant_s"), 10);
	cr_assert_eq(ji(s, "relay_hold_ms"), 5000);
	json_t *em = json_object_get(s, "emergency");
	cr_assert_str_eq(js(em, "doors"), "all");
	cr_assert(json_is_false(json_object_get(em, "auto_unlock")));
	cr_assert(json_is_true(json_object_get(em, "notify")));
	json_decref(s);
	store_close(st);
	tu_rmdir();
}

Test(validate, settings_enums_and_ranges)
{
	store_t *st = site();
	PUT_FAILS(st, ENT_SETTINGS, q("{'kind':'hotel'}"), 422, "kind");
	PUT_FAILS(st, ENT_SETTINGS, q("{'pin_mode':'apt'}"), 422, "pin_mode");
	PUT_FAILS(st, ENT_SETTINGS, q("{'feature_plan':'gold'}"), 422, "feature_plan");
	PUT_FAILS(st, ENT_SETTINGS, q("{'access_permission':'none'}"), 422, "access_permission");
	PUT_FAILS(st, ENT_SETTINGS, q("{'time_format':'24'}"), 422, "time_format");
	PUT_FAILS(st, ENT_SETTINGS, q("{'lift_grant_s':0}"), 422, "lift_grant_s");
	PUT_FAILS(st, ENT_SETTINGS, q("{'relay_hold_ms':50}"), 422, "relay_hold_ms");
	PUT_FAILS(st, ENT_SETTINGS, fmt("{'name':'%s'}", rep('s', 129)), 422, "name");
	tu_put(st, ENT_SETTINGS, q("{'kind':'office','pin_mode':'apt_pin','feature_plan':'basic',"
				   "'access_permission':'public_only','time_format':'12h','lift_grant_s':30}"));
	store_close(st);
	tu_rmdir();
}

Test(validate, settings_timezone)
{
	store_t *st = site();
	tu_put(st, ENT_SETTINGS, q("{'timezone':'Europe/Vienna'}"));
	tu_put(st, ENT_SETTINGS, q("{'timezone':'America/Argentina/Buenos_Aires'}"));
	tu_put(st, ENT_SETTINGS, q("{'timezone':'UTC'}"));
	PUT_FAILS(st, ENT_SETTINGS, q("{'timezone':'Mars/Olympus_Mons'}"), 422, "timezone");
	PUT_FAILS(st, ENT_SETTINGS, q("{'timezone':'../../etc/passwd'}"), 422, "timezone");
	PUT_FAILS(st, ENT_SETTINGS, q("{'timezone':'/usr/share/zoneinfo/UTC'}"), 422, "timezone");
	PUT_FAILS(st, ENT_SETTINGS, q("{'timezone':''}"), 422, "timezone");
	PUT_FAILS(st, ENT_SETTINGS, q("{'timezone':'Europe/Vienna '}"), 422, "timezone");
	PUT_FAILS(st, ENT_SETTINGS, q("{'timezone':3}"), 422, "timezone");
	json_t *s = get(st, ENT_SETTINGS, "site");
	cr_assert_str_eq(js(s, "timezone"), "UTC");
	json_decref(s);
	store_close(st);
	tu_rmdir();
}

/* A zoneinfo directory ("Europe") is not a time zone. */
Test(validate, settings_timezone_directory_refused)
{
	store_t *st = site();
	PUT_FAILS(st, ENT_SETTINGS, q("{'timezone':'Europe'}"), 422, "timezone");
	PUT_FAILS(st, ENT_SETTINGS, q("{'timezone':'America'}"), 422, "timezone");
	store_close(st);
	tu_rmdir();
}

Test(validate, settings_temp_key_max_days)
{
	store_t *st = site();
	tu_put(st, ENT_SETTINGS, q("{'temp_key_max_days':30}"));
	tu_put(st, ENT_SETTINGS, q("{'temp_key_max_days':0}"));
	const char *bad[] = { "15", "1", "29", "31", "-1", "365", "'30'" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		PUT_FAILS(st, ENT_SETTINGS, fmt("{'temp_key_max_days':%s}", bad[i]), 422, "temp_key_max_days");
	store_close(st);
	tu_rmdir();
}

Test(validate, settings_emergency_doors)
{
	store_t *st = site();
	tu_put(st, ENT_SETTINGS, q("{'emergency':{'auto_unlock':true,'doors':'all'}}"));
	tu_put(st, ENT_SETTINGS, q("{'emergency':{'auto_unlock':true,'doors':[{'device':'" MAC_DP "','relay':1},"
				   "{'board':'rb1','channel':2}]}}"));
	json_t *s = get(st, ENT_SETTINGS, "site");
	json_t *em = json_object_get(s, "emergency");
	cr_assert_eq(json_array_size(json_object_get(em, "doors")), 2);
	cr_assert(json_is_true(json_object_get(em, "notify")));
	json_decref(s);
	PUT_FAILS(st, ENT_SETTINGS, q("{'emergency':{'doors':'some'}}"), 422, "emergency.doors");
	PUT_FAILS(st, ENT_SETTINGS, q("{'emergency':{'doors':{'device':'" MAC_DP "','relay':1}}}"), 422,
		  "emergency.doors");
	PUT_FAILS(st, ENT_SETTINGS, q("{'emergency':'all'}"), 422, "emergency");
	PUT_FAILS(st, ENT_SETTINGS, q("{'emergency':{'auto_unlock':'yes'}}"), 422, "emergency.auto_unlock");
	store_close(st);
	tu_rmdir();
}

/* Errors name the field by its full path (jutil.h: "relays[2].n"). */
Test(validate, settings_emergency_door_error_path)
{
	store_t *st = site();
	PUT_FAILS(st, ENT_SETTINGS, q("{'emergency':{'doors':[{'device':'" MAC_DP "','relay':9}]}}"), 422,
		  "emergency.doors[0]");
	store_close(st);
	tu_rmdir();
}

/* ---- parking lots ---- */

Test(validate, parking_lot)
{
	store_t *st = site();
	tu_put(st, ENT_RELAY_BOARD, q("{'id':'rb3','profile':'RSAC-C1-R8','bus':'/dev/ttyUSB2',"
				      "'channels':[{'channel':1,'function':'barrier'},{'channel':2,'function':'barrier'}]}"));
	tu_put(st, ENT_PARKING_LOT, q("{'id':'lot1','name':'Garage','capacity':40,'entry':{'board':'rb3','channel':1},"
				      "'exit':{'board':'rb3','channel':2}}"));
	PUT_FAILS(st, ENT_PARKING_LOT, q("{'id':'lot2','capacity':4}"), 422, "name");
	PUT_FAILS(st, ENT_PARKING_LOT, q("{'id':'lot2','name':'P2','capacity':-1}"), 422, "capacity");
	PUT_FAILS(st, ENT_PARKING_LOT, q("{'id':'lot2','name':'P2','entry':{'device':'" MAC_DP "','relay':1}}"),
		  422, "entry");
	PUT_FAILS(st, ENT_PARKING_LOT, q("{'id':'lot2','name':'P2','entry':{'board':'nope','channel':1}}"), 422,
		  "entry");
	PUT_FAILS(st, ENT_PARKING_LOT, q("{'id':'lot2','name':'P2','readers':'rb3'}"), 422, "readers");
	store_close(st);
	tu_rmdir();
}

/* Times are bounded to the years 0000..9999 (found by fuzz/fuzz_entity: a
 * temp key window spanning the whole int64 range overflowed the max-days
 * check). */
Test(validate, times_bounded)
{
	store_t *st = site();
	tu_put(st, ENT_SETTINGS, q("{'temp_key_max_days':30}"));
	PUT_FAILS(st, ENT_TEMP_KEY,
		  q("{'id':'k9','code':'4242','devices':['" MAC_DP "'],"
		    "'schedule':{'start':-9223372036854775807,'end':9223372036854775807}}"),
		  422, "schedule.start");
	PUT_FAILS(st, ENT_CREDENTIAL,
		  q("{'id':'c9','person':'p101','type':'rf','code':'AB1','valid_until':253402300800}"), 422,
		  "valid_until");
	tu_put(st, ENT_CREDENTIAL, q("{'id':'c9','person':'p101','type':'rf','code':'AB1','valid_until':253402300799}"));
	store_close(st);
	tu_rmdir();
}

/* ---- two halves (ent_prepare on a cloud page's thread, then ent_put) ---- */

/* ENTITY put whole, and put in two halves (ent_prepare: fields without the
 * database; ent_put with ctx.prepared: the database's rules): the same
 * answer (status, field, message), the same stored JSON. PREPARED: whether
 * ent_prepare is expected to take it (1), refuse it (-1) or leave it (0). */
static void same_in_halves(store_t *st, ent_t e, const char *text, int prepared)
{
	const char *id = json_string_value(json_object_get(tu_json(text), "id"));
	char idc[80];
	snprintf(idc, sizeof idc, "%s", id);
	gh_err_t whole = { 0 }, half = { 0 };
	json_t *a = tu_json(text), *b = tu_json(text), *got_a = NULL, *got_b = NULL;
	int rc_a = ent_put(st, e, NULL, a, NULL, NULL, &whole);
	if (rc_a == 0) {
		got_a = get(st, e, idc);
		gh_err_t err = { 0 };
		cr_assert_eq(ent_delete(st, e, idc, NULL, &err), 0, "%s", err.message);
	}
	char t[4096];
	int rc_p = ent_prepare(e, idc, b, &half);
	cr_assert_eq(rc_p, prepared, "%s: ent_prepare %d, want %d (%s)", text, rc_p, prepared, half.message);
	int rc_b = -1;
	if (rc_p >= 0) {
		ent_ctx_t ctx = { .actor = "cloud", .consume = 1 };
		if (rc_p > 0) {
			ctx.prepared = t;
			ctx.prepared_len = json_dumpb(b, t, sizeof t, JSON_COMPACT);
			cr_assert(ctx.prepared_len > 0 && ctx.prepared_len < sizeof t);
		}
		rc_b = ent_put(st, e, idc, b, &ctx, NULL, &half);
	}
	cr_assert_eq(rc_b, rc_a, "%s: whole %d (%s), in halves %d (%s)", text, rc_a, whole.message, rc_b,
		     half.message);
	if (rc_a == 0) {
		got_b = get(st, e, idc);
		char *ja = json_dumps(got_a, JSON_SORT_KEYS), *jb = json_dumps(got_b, JSON_SORT_KEYS);
		cr_assert_str_eq(jb, ja, "%s: stored differently in halves", text);
		free(ja);
		free(jb);
		gh_err_t err = { 0 };
		cr_assert_eq(ent_delete(st, e, idc, NULL, &err), 0, "%s", err.message);
	} else {
		cr_assert_eq(half.status, whole.status, "%s: status %d in halves, %d whole", text, half.status,
			     whole.status);
		cr_assert_str_eq(half.field, whole.field, "%s", text);
		cr_assert_str_eq(half.message, whole.message, "%s", text);
	}
	json_decref(got_a);
	json_decref(got_b);
	json_decref(a);
	json_decref(b);
}

Test(validate, cloud_page_checked_in_two_halves)
{
	store_t *st = site();
	tu_put(st, ENT_CREDENTIAL, q("{'id':'c0','person':'p102','type':'pin','code':'5678'}"));
	tu_put(st, ENT_CREDENTIAL, q("{'id':'c00','person':'p102','type':'rf','code':'ABC1'}"));
	/* stored the same */
	same_in_halves(st, ENT_CREDENTIAL, q("{'id':'c1','person':'p101','type':'pin','code':'1234'}"), 1);
	same_in_halves(st, ENT_CREDENTIAL, q("{'id':'c2','person':'p101','type':'rf','code':'ab-12'}"), -1);
	same_in_halves(st, ENT_CREDENTIAL, q("{'id':'c2','person':'p101','type':'rf','code':'ab12',"
					     "'valid_from':1700000000,'valid_until':1800000000,'x':[1]}"), 1);
	same_in_halves(st, ENT_CREDENTIAL, q("{'id':'c3','person':'p101','type':'plate','code':'w 123-ab',"
					     "'long_term':true}"), 1);
	same_in_halves(st, ENT_PERSON, q("{'id':'p9','kind':'resident','apartment':'a102','first_name':'Eva',"
					 "'floors':['3','G0'],'expires_at':1900000000}"), 1);
	same_in_halves(st, ENT_PERSON, q("{'id':'p9','kind':'family','apartment':'a101','first_name':'Kid'}"), 1);
	same_in_halves(st, ENT_APARTMENT, q("{'id':'a9','building':'b2','apt':'9A','valid_until':1900000000}"), 1);
	/* refused by the database's half, as whole */
	same_in_halves(st, ENT_CREDENTIAL, q("{'id':'c4','person':'p101','type':'pin','code':'5678'}"), 1);
	same_in_halves(st, ENT_CREDENTIAL, q("{'id':'c4','person':'p101','type':'rf','code':'abc1'}"), 1);
	same_in_halves(st, ENT_CREDENTIAL, q("{'id':'c4','person':'nobody','type':'rf','code':'77'}"), 1);
	same_in_halves(st, ENT_PERSON, q("{'id':'p9','kind':'family','apartment':'a201','first_name':'Kid'}"), 1);
	same_in_halves(st, ENT_PERSON, q("{'id':'p9','kind':'resident','apartment':'a999','first_name':'X'}"), 1);
	same_in_halves(st, ENT_APARTMENT, q("{'id':'a9','building':'b1','apt':'101'}"), 1);
	same_in_halves(st, ENT_APARTMENT, q("{'id':'a9','building':'b9','apt':'7'}"), 1);
	/* refused by the fields' half, as whole */
	same_in_halves(st, ENT_CREDENTIAL, q("{'id':'c5','person':'p101','type':'pin','code':'9123'}"), -1);
	same_in_halves(st, ENT_CREDENTIAL, q("{'id':'c5','person':'p101','type':'iris','code':'1'}"), -1);
	same_in_halves(st, ENT_CREDENTIAL, q("{'id':'c5/x','person':'p101','type':'rf','code':'1'}"), -1);
	same_in_halves(st, ENT_PERSON, q("{'id':'p9','kind':'resident','apartment':'a101'}"), -1);
	same_in_halves(st, ENT_PERSON, q("{'id':'p9','kind':'staff','apartment':'a101','first_name':'S'}"), -1);
	same_in_halves(st, ENT_APARTMENT, q("{'id':'a9','building':'b1','apt':'#12'}"), -1);
	/* left whole to the loop: local date-times (the site's time zone),
	 * other kinds of entity */
	same_in_halves(st, ENT_CREDENTIAL, q("{'id':'c6','person':'p101','type':'rf','code':'C6',"
					     "'valid_until':'2030-01-01T00:00'}"), 0);
	same_in_halves(st, ENT_BUILDING, q("{'id':'b9','name':'Tower C'}"), 0);
	store_close(st);
	tu_rmdir();
}
