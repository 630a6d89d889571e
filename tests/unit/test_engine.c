/* The access decision engine against a real SQLite site: one case per
 * reason, schedules across midnight and Vienna's DST changes, temp key
 * uses from two door phones, APT+PIN, private areas, boards, door logs. */
#include <time.h>

#include "bulk.h"
#include "engine.h"
#include "settings.h"
#include "testutil.h"

static store_t *st;
static engine_t *en;

#define D1 "0C1105000001" /* door phone, building b1, relays 1 (all), 2 (rf), 3 (night schedule), 4 (board) */
#define D2 "0C1105000002" /* door phone, site public area, relay 1 */
#define D3 "0C1105000003" /* door phone, building b2, relay 1 */
#define P1 "0C1105000004" /* single-tenant door phone inside apartment a101 */
#define IM "0C1105000005" /* indoor monitor of a101 */

/* Unix time of a UTC date-time */
static int64_t utc(int y, int mo, int d, int h, int mi)
{
	struct tm tm = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi };
	return (int64_t)timegm(&tm);
}

/* 2026-06-01 is a Monday; Vienna is UTC+2 in June */
#define MON_0900 utc(2026, 6, 1, 7, 0)

static void site(void)
{
	st = tu_store();
	tu_put(st, ENT_SETTINGS, "{\"kind\":\"community\",\"name\":\"Parkview\",\"timezone\":\"Europe/Vienna\"}");
	const char *macs[] = { D1, D2, D3, P1, IM };
	for (int i = 0; i < 5; i++) {
		char j[64];
		snprintf(j, sizeof j, "{\"id\":\"%s\"}", macs[i]);
		tu_put(st, ENT_MAC, j);
	}
	tu_put(st, ENT_BUILDING, "{\"id\":\"b1\",\"name\":\"Block A\",\"ground_floor\":\"G0\"}");
	tu_put(st, ENT_BUILDING, "{\"id\":\"b2\",\"name\":\"Block B\"}");
	tu_put(st, ENT_APARTMENT, "{\"id\":\"a101\",\"building\":\"b1\",\"apt\":\"101\",\"floor\":\"1\"}");
	tu_put(st, ENT_APARTMENT, "{\"id\":\"a102\",\"building\":\"b1\",\"apt\":\"102\",\"floor\":\"1\","
				  "\"valid_until\":\"2026-01-01T00:00:00Z\"}");
	tu_put(st, ENT_APARTMENT, "{\"id\":\"a201\",\"building\":\"b2\",\"apt\":\"101\",\"floor\":\"5\"}");
	tu_put(st, ENT_RELAY_BOARD, "{\"id\":\"hf1\",\"profile\":\"HF-8000\",\"mode\":\"ethernet\","
				    "\"bus\":\"127.0.0.1:1502\",\"channels\":[{\"channel\":1,\"name\":\"Gate\","
				    "\"function\":\"barrier\"},{\"channel\":2,\"name\":\"Side door\"}]}");
	tu_put(st, ENT_ACCESS_GROUP, "{\"id\":\"g_night\",\"name\":\"Night\",\"schedule\":{\"repeat\":\"daily\","
				     "\"from\":\"22:00\",\"to\":\"06:00\"}}");
	tu_put(st, ENT_DEVICE, "{\"id\":\"" D1 "\",\"type\":0,\"name\":\"Main entrance\",\"area\":\"building\","
			       "\"building\":\"b1\",\"relays\":[{\"n\":1,\"name\":\"Door\"},{\"n\":2,\"name\":\"Bike room\","
			       "\"methods\":[\"rf\"]},{\"n\":3,\"name\":\"Night door\",\"schedule\":\"g_night\"},"
			       "{\"n\":4,\"name\":\"Side\",\"board\":{\"board\":\"hf1\",\"channel\":2}}]}");
	tu_put(st, ENT_DEVICE, "{\"id\":\"" D2 "\",\"type\":0,\"name\":\"Garden gate\",\"relays\":[{\"n\":1}]}");
	tu_put(st, ENT_DEVICE, "{\"id\":\"" D3 "\",\"type\":0,\"name\":\"Block B entrance\",\"area\":\"building\","
			       "\"building\":\"b2\",\"relays\":[{\"n\":1}]}");
	tu_put(st, ENT_DEVICE, "{\"id\":\"" P1 "\",\"type\":1,\"name\":\"Villa door\",\"area\":\"apartment\","
			       "\"apartment\":\"a101\",\"relays\":[{\"n\":1}]}");
	tu_put(st, ENT_DEVICE, "{\"id\":\"" IM "\",\"type\":2,\"name\":\"Monitor 101\",\"area\":\"apartment\","
			       "\"apartment\":\"a101\",\"works_offline\":true}");

	tu_put(st, ENT_PERSON, "{\"id\":\"p1\",\"kind\":\"resident\",\"apartment\":\"a101\",\"first_name\":\"Anna\","
			       "\"last_name\":\"Berger\",\"floors\":[\"3\",\"G0\"]}");
	tu_put(st, ENT_PERSON, "{\"id\":\"p2\",\"kind\":\"resident\",\"apartment\":\"a102\",\"first_name\":\"Tom\"}");
	tu_put(st, ENT_PERSON, "{\"id\":\"p3\",\"kind\":\"staff\",\"first_name\":\"Off\",\"active\":false}");
	tu_put(st, ENT_PERSON, "{\"id\":\"p4\",\"kind\":\"staff\",\"first_name\":\"Gone\",\"expires_at\":\"2026-01-01T00:00:00Z\"}");
	tu_put(st, ENT_PERSON, "{\"id\":\"p5\",\"kind\":\"delivery\",\"first_name\":\"Parcel\",\"floors\":[\"1\"]}");
	tu_put(st, ENT_PERSON, "{\"id\":\"p6\",\"kind\":\"staff\",\"first_name\":\"Cleaner\"}");
	tu_put(st, ENT_PERSON, "{\"id\":\"p7\",\"kind\":\"resident\",\"apartment\":\"a201\",\"first_name\":\"Bea\"}");
	tu_put(st, ENT_PERSON, "{\"id\":\"p8\",\"kind\":\"staff\",\"first_name\":\"Night\"}");

	tu_put(st, ENT_CREDENTIAL, "{\"id\":\"c1\",\"person\":\"p1\",\"type\":\"pin\",\"code\":\"1234\"}");
	tu_put(st, ENT_CREDENTIAL, "{\"id\":\"c2\",\"person\":\"p1\",\"type\":\"rf\",\"code\":\"a1b2c3d4\"}");
	tu_put(st, ENT_CREDENTIAL, "{\"id\":\"c3\",\"person\":\"p2\",\"type\":\"pin\",\"code\":\"2222\"}");
	tu_put(st, ENT_CREDENTIAL, "{\"id\":\"c4\",\"person\":\"p3\",\"type\":\"pin\",\"code\":\"3333\"}");
	tu_put(st, ENT_CREDENTIAL, "{\"id\":\"c5\",\"person\":\"p4\",\"type\":\"pin\",\"code\":\"4444\"}");
	tu_put(st, ENT_CREDENTIAL, "{\"id\":\"c6\",\"person\":\"p5\",\"type\":\"pin\",\"code\":\"5555\"}");
	tu_put(st, ENT_CREDENTIAL, "{\"id\":\"c7\",\"person\":\"p6\",\"type\":\"rf\",\"code\":\"CAFE01\"}");
	tu_put(st, ENT_CREDENTIAL, "{\"id\":\"c8\",\"person\":\"p1\",\"type\":\"rf\",\"code\":\"OLD1\","
				   "\"valid_until\":\"2026-01-01T00:00:00Z\"}");
	tu_put(st, ENT_CREDENTIAL, "{\"id\":\"c9\",\"person\":\"p1\",\"type\":\"rf\",\"code\":\"NEW1\","
				   "\"valid_from\":\"2027-01-01T00:00:00Z\"}");
	tu_put(st, ENT_CREDENTIAL, "{\"id\":\"c10\",\"person\":\"p7\",\"type\":\"pin\",\"code\":\"7777\"}");
	tu_put(st, ENT_CREDENTIAL, "{\"id\":\"c11\",\"person\":\"p8\",\"type\":\"rf\",\"code\":\"N1\"}");

	/* building b1's default group: all residents of b1 on the entrance */
	tu_put(st, ENT_ACCESS_GROUP, "{\"id\":\"g_b1\",\"name\":\"Block A default\",\"building\":\"b1\","
				     "\"relays\":[{\"device\":\"" D1 "\",\"relay\":1},{\"device\":\"" D1 "\",\"relay\":2},"
				     "{\"device\":\"" D1 "\",\"relay\":3},{\"device\":\"" D1 "\",\"relay\":4}]}");
	tu_put(st, ENT_ACCESS_GROUP, "{\"id\":\"g_b2\",\"name\":\"Block B default\",\"building\":\"b2\","
				     "\"relays\":[{\"device\":\"" D3 "\",\"relay\":1}]}");
	/* staff: office hours on the garden gate, Mon-Fri 08:00-18:00 */
	tu_put(st, ENT_ACCESS_GROUP, "{\"id\":\"g_staff\",\"name\":\"Cleaning\",\"schedule\":{\"repeat\":\"weekly\","
				     "\"days\":[1,2,3,4,5],\"from\":\"08:00\",\"to\":\"18:00\"},\"relays\":[{\"device\":\""
				     D2 "\",\"relay\":1},{\"board\":\"hf1\",\"channel\":1}],\"members\":{\"persons\":[\"p6\",\"p3\",\"p4\"]}}");
	tu_put(st, ENT_ACCESS_GROUP, "{\"id\":\"g_deliv\",\"name\":\"Delivery\",\"relays\":[{\"device\":\"" D1
				     "\",\"relay\":1}],\"members\":{\"persons\":[\"p5\"]}}");
	/* the weekend night shift: Friday 22:00 to Saturday 06:00 */
	tu_put(st, ENT_ACCESS_GROUP, "{\"id\":\"g_fri\",\"name\":\"Friday night\",\"schedule\":{\"repeat\":\"weekly\","
				     "\"days\":[5],\"from\":\"22:00\",\"to\":\"06:00\"},\"relays\":[{\"device\":\"" D2
				     "\",\"relay\":1}],\"members\":{\"persons\":[\"p8\"]}}");
	en = engine_new(st);
}

static void teardown(void)
{
	engine_free(en);
	store_close(st);
	tu_rmdir();
}

TestSuite(engine, .init = site, .fini = teardown);

static access_result_t decide_at(const char *dev, int relay, const char *method, const char *code,
				 const char *apt, int64_t now)
{
	access_req_t q = { .device = dev, .relay = relay, .method = method, .code = code, .apt = apt, .now = now };
	access_result_t r;
	gh_err_t err = { 0 };
	cr_assert_eq(engine_decide(en, &q, &r, &err), 0, "decide failed: %s", err.message);
	return r;
}

/* each macro evaluates its decision once: deciding has effects (door logs,
 * temp key uses) */
#define assert_reason(x, want)                                                                 \
	do {                                                                                   \
		access_result_t r_ = (x);                                                      \
		cr_assert(!r_.granted && r_.reason == (want), "expected %s, got %s%s",         \
			  engine_reason_name(want), r_.granted ? "granted" : "denied ",        \
			  engine_reason_name(r_.reason));                                      \
	} while (0)
#define assert_granted(x)                                                                      \
	do {                                                                                   \
		access_result_t r_ = (x);                                                      \
		cr_assert(r_.granted, "expected granted, got %s", engine_reason_name(r_.reason)); \
	} while (0)

Test(engine, resident_pin_opens_and_grants_floors)
{
	access_result_t r = decide_at(D1, 1, "pin", "1234", NULL, MON_0900);
	assert_granted(r);
	cr_assert_eq(r.nrelays, 1);
	cr_assert_eq(r.relays[0], 1);
	cr_assert_str_eq(r.person, "p1");
	cr_assert_str_eq(r.person_name, "Anna Berger");
	cr_assert_eq(r.nfloors, 2);
	cr_assert_str_eq(r.floors[0], "3");
	cr_assert_str_eq(r.floors[1], "G0");
	cr_assert_str_eq(r.lift_building, "b1");
}

Test(engine, any_relay_opens_only_those_allowing_the_method)
{
	/* relay 0 = "whatever the PIN may open": 1 and 4, not the RF-only 2 nor night-only 3 */
	access_result_t r = decide_at(D1, 0, "pin", "1234", NULL, MON_0900);
	assert_granted(r);
	cr_assert_eq(r.nrelays, 2);
	cr_assert_eq(r.relays[0], 1);
	cr_assert_eq(r.relays[1], 4);
	cr_assert_eq(r.nboards, 1, "relay 4 is wired to board hf1");
	cr_assert_str_eq(r.boards[0].board, "hf1");
	cr_assert_eq(r.boards[0].channel, 2);
}

Test(engine, unknown_credential)
{
	assert_reason(decide_at(D1, 1, "pin", "8888", NULL, MON_0900), R_UNKNOWN_CREDENTIAL);
	assert_reason(decide_at(D1, 1, "rf", "FFFF", NULL, MON_0900), R_UNKNOWN_CREDENTIAL);
}

/* While a first snapshot loads in bulk the lookup index is dropped: the
 * decisions find the credentials all the same (a scan), and again once it
 * is built. */
Test(engine, decides_without_the_lookup_index_during_a_bulk_load)
{
	gh_err_t err = { 0 };
	cr_assert_eq(store_begin(st), 0);
	cr_assert_eq(bulk_begin(st, &err), 0, "%s", err.message);
	cr_assert_eq(store_commit(st), 0);
	cr_assert(store_bulk(st));
	assert_granted(decide_at(D1, 2, "rf", "A1B2C3D4", NULL, MON_0900));
	assert_granted(decide_at(D1, 1, "pin", "1234", NULL, MON_0900));
	assert_reason(decide_at(D1, 1, "pin", "8888", NULL, MON_0900), R_UNKNOWN_CREDENTIAL);
	cr_assert_eq(store_begin(st), 0);
	cr_assert_eq(bulk_end(st, NULL, NULL, &err), 0, "%s", err.message);
	cr_assert_eq(store_commit(st), 0);
	cr_assert_not(store_bulk(st));
	assert_granted(decide_at(D1, 2, "rf", "a1b2c3d4", NULL, MON_0900));
}

Test(engine, rf_code_is_case_insensitive)
{
	assert_granted(decide_at(D1, 2, "rf", "A1B2C3D4", NULL, MON_0900));
}

Test(engine, pin_on_rf_only_relay_is_not_allowed)
{
	assert_reason(decide_at(D1, 2, "pin", "1234", NULL, MON_0900), R_RELAY_NOT_ALLOWED);
	assert_granted(decide_at(D1, 2, "rf", "a1b2c3d4", NULL, MON_0900));
}

Test(engine, relay_outside_every_group_is_not_allowed)
{
	/* p1 has no group holding the garden gate */
	assert_reason(decide_at(D2, 1, "pin", "1234", NULL, MON_0900), R_RELAY_NOT_ALLOWED);
	/* nor another building's entrance (default groups are per building) */
	assert_reason(decide_at(D3, 1, "pin", "1234", NULL, MON_0900), R_RELAY_NOT_ALLOWED);
	assert_granted(decide_at(D3, 1, "pin", "7777", NULL, MON_0900));
}

Test(engine, disabled_person)
{
	assert_reason(decide_at(D2, 1, "pin", "3333", NULL, MON_0900), R_DISABLED);
}

Test(engine, expired_person)
{
	assert_reason(decide_at(D2, 1, "pin", "4444", NULL, MON_0900), R_EXPIRED);
}

Test(engine, expired_and_not_yet_valid_credential)
{
	assert_reason(decide_at(D1, 2, "rf", "OLD1", NULL, MON_0900), R_EXPIRED);
	assert_reason(decide_at(D1, 2, "rf", "NEW1", NULL, MON_0900), R_OUTSIDE_SCHEDULE);
	assert_granted(decide_at(D1, 2, "rf", "NEW1", NULL, utc(2027, 1, 4, 9, 0)));
}

Test(engine, apartment_valid_time_over)
{
	assert_reason(decide_at(D1, 1, "pin", "2222", NULL, MON_0900), R_APARTMENT_EXPIRED);
	assert_granted(decide_at(D1, 1, "pin", "2222", NULL, utc(2025, 12, 1, 9, 0)));
}

Test(engine, unknown_device_and_bad_requests)
{
	assert_reason(decide_at("0C11050000FF", 1, "pin", "1234", NULL, MON_0900), R_UNKNOWN_DEVICE);
	access_req_t q = { .device = D1, .relay = 1, .method = "telepathy", .code = "1", .now = MON_0900 };
	access_result_t r;
	gh_err_t err = { 0 };
	cr_assert_eq(engine_decide(en, &q, &r, &err), -1);
	cr_assert_eq(err.status, 400);
	cr_assert_str_eq(err.field, "method");
	q.method = "pin";
	q.code = "";
	cr_assert_eq(engine_decide(en, &q, &r, &err), -1);
	cr_assert_str_eq(err.field, "code");
	q.code = "1234";
	q.device = "not-a-mac";
	cr_assert_eq(engine_decide(en, &q, &r, &err), -1);
	cr_assert_str_eq(err.field, "device");
}

Test(engine, weekly_office_hours_in_site_time)
{
	/* Monday 09:00 Vienna = 07:00 UTC in summer */
	assert_granted(decide_at(D2, 1, "rf", "CAFE01", NULL, MON_0900));
	/* Monday 07:59 local: before the window */
	assert_reason(decide_at(D2, 1, "rf", "CAFE01", NULL, utc(2026, 6, 1, 5, 59)), R_OUTSIDE_SCHEDULE);
	/* Monday 18:00 local: the window's end is exclusive */
	assert_reason(decide_at(D2, 1, "rf", "CAFE01", NULL, utc(2026, 6, 1, 16, 0)), R_OUTSIDE_SCHEDULE);
	/* Saturday 09:00 local */
	assert_reason(decide_at(D2, 1, "rf", "CAFE01", NULL, utc(2026, 6, 6, 7, 0)), R_OUTSIDE_SCHEDULE);
	/* in winter 08:00 local is 07:00 UTC: 07:30 UTC Monday 7 Dec is inside */
	assert_granted(decide_at(D2, 1, "rf", "CAFE01", NULL, utc(2026, 12, 7, 7, 30)));
	assert_reason(decide_at(D2, 1, "rf", "CAFE01", NULL, utc(2026, 12, 7, 6, 30)), R_OUTSIDE_SCHEDULE);
}

Test(engine, relay_schedule_spanning_midnight)
{
	/* relay 3 only opens 22:00-06:00 local, whoever asks */
	assert_reason(decide_at(D1, 3, "pin", "1234", NULL, MON_0900), R_OUTSIDE_SCHEDULE);
	assert_granted(decide_at(D1, 3, "pin", "1234", NULL, utc(2026, 6, 1, 21, 30))); /* 23:30 */
	assert_granted(decide_at(D1, 3, "pin", "1234", NULL, utc(2026, 6, 2, 1, 0)));  /* 03:00 */
	assert_reason(decide_at(D1, 3, "pin", "1234", NULL, utc(2026, 6, 2, 4, 0)), R_OUTSIDE_SCHEDULE); /* 06:00 */
	assert_granted(decide_at(D1, 3, "pin", "1234", NULL, utc(2026, 6, 1, 20, 0))); /* 22:00 */
	assert_reason(decide_at(D1, 3, "pin", "1234", NULL, utc(2026, 6, 1, 19, 59)), R_OUTSIDE_SCHEDULE);
}

Test(engine, weekly_window_after_midnight_belongs_to_its_start_day)
{
	/* Friday 2026-06-05 23:00 local and Saturday 03:00 local: open */
	assert_granted(decide_at(D2, 1, "rf", "N1", NULL, utc(2026, 6, 5, 21, 0)));
	assert_granted(decide_at(D2, 1, "rf", "N1", NULL, utc(2026, 6, 6, 1, 0)));
	/* Friday 03:00 local belongs to Thursday night: closed */
	assert_reason(decide_at(D2, 1, "rf", "N1", NULL, utc(2026, 6, 5, 1, 0)), R_OUTSIDE_SCHEDULE);
	/* Saturday 23:00: closed */
	assert_reason(decide_at(D2, 1, "rf", "N1", NULL, utc(2026, 6, 6, 21, 0)), R_OUTSIDE_SCHEDULE);
}

static void put_window_group(const char *from, const char *to)
{
	char j[512];
	snprintf(j, sizeof j, "{\"id\":\"g_dst\",\"name\":\"DST\",\"schedule\":{\"repeat\":\"daily\",\"from\":\"%s\","
		 "\"to\":\"%s\"},\"relays\":[{\"device\":\"" D2 "\",\"relay\":1}],\"members\":{\"persons\":[\"p5\"]}}",
		 from, to);
	tu_put(st, ENT_ACCESS_GROUP, j);
}

Test(engine, dst_spring_forward_vienna)
{
	/* 2026-03-29: 02:00 CET jumps to 03:00 CEST; 02:00-03:00 does not exist */
	put_window_group("02:00", "03:00");
	assert_reason(decide_at(D2, 1, "pin", "5555", NULL, utc(2026, 3, 29, 0, 59)), R_OUTSIDE_SCHEDULE); /* 01:59 CET */
	assert_reason(decide_at(D2, 1, "pin", "5555", NULL, utc(2026, 3, 29, 1, 0)), R_OUTSIDE_SCHEDULE);  /* 03:00 CEST */
	/* the day before, 02:30 CET = 01:30 UTC, and the day after, 02:30 CEST = 00:30 UTC */
	assert_granted(decide_at(D2, 1, "pin", "5555", NULL, utc(2026, 3, 28, 1, 30)));
	assert_granted(decide_at(D2, 1, "pin", "5555", NULL, utc(2026, 3, 30, 0, 30)));
	/* a window across the jump ends on the wall clock: 01:00-03:30 */
	put_window_group("01:00", "03:30");
	assert_granted(decide_at(D2, 1, "pin", "5555", NULL, utc(2026, 3, 29, 1, 29)));                    /* 03:29 CEST */
	assert_reason(decide_at(D2, 1, "pin", "5555", NULL, utc(2026, 3, 29, 1, 30)), R_OUTSIDE_SCHEDULE); /* 03:30 CEST */
}

Test(engine, dst_fall_back_vienna)
{
	/* 2026-10-25: 03:00 CEST falls back to 02:00 CET; 02:00-03:00 happens twice */
	put_window_group("02:00", "03:00");
	assert_granted(decide_at(D2, 1, "pin", "5555", NULL, utc(2026, 10, 25, 0, 30)));                    /* 02:30 CEST */
	assert_granted(decide_at(D2, 1, "pin", "5555", NULL, utc(2026, 10, 25, 1, 30)));                    /* 02:30 CET */
	assert_reason(decide_at(D2, 1, "pin", "5555", NULL, utc(2026, 10, 25, 2, 0)), R_OUTSIDE_SCHEDULE);  /* 03:00 CET */
	assert_reason(decide_at(D2, 1, "pin", "5555", NULL, utc(2026, 10, 24, 23, 59)), R_OUTSIDE_SCHEDULE); /* 01:59 CEST */
}

Test(engine, never_schedule_is_a_date_range)
{
	tu_put(st, ENT_ACCESS_GROUP, "{\"id\":\"g_event\",\"name\":\"Event\",\"schedule\":{\"repeat\":\"never\","
				     "\"start\":\"2026-07-01T10:00\",\"end\":\"2026-07-01T14:00\"},\"relays\":[{\"device\":\""
				     D2 "\",\"relay\":1}],\"members\":{\"persons\":[\"p5\"]}}");
	/* local times: 10:00 CEST = 08:00 UTC */
	assert_reason(decide_at(D2, 1, "pin", "5555", NULL, utc(2026, 7, 1, 7, 59)), R_OUTSIDE_SCHEDULE);
	assert_granted(decide_at(D2, 1, "pin", "5555", NULL, utc(2026, 7, 1, 8, 0)));
	assert_reason(decide_at(D2, 1, "pin", "5555", NULL, utc(2026, 7, 1, 12, 0)), R_OUTSIDE_SCHEDULE);
}

Test(engine, delivery_pin_and_floors)
{
	access_result_t r = decide_at(D1, 1, "pin", "5555", NULL, MON_0900);
	assert_granted(r);
	cr_assert_eq(r.nfloors, 1);
	cr_assert_str_eq(r.floors[0], "1");
}

Test(engine, resident_without_floors_gets_own_apartment_floor)
{
	access_result_t r = decide_at(D3, 1, "pin", "7777", NULL, MON_0900);
	assert_granted(r);
	cr_assert_eq(r.nfloors, 1);
	cr_assert_str_eq(r.floors[0], "5");
}

Test(engine, private_area_device_and_public_only)
{
	/* the villa's own door opens for its residents without any group */
	assert_granted(decide_at(P1, 1, "pin", "1234", NULL, MON_0900));
	assert_reason(decide_at(P1, 1, "pin", "7777", NULL, MON_0900), R_RELAY_NOT_ALLOWED);
	tu_put(st, ENT_SETTINGS, "{\"timezone\":\"Europe/Vienna\",\"access_permission\":\"public_only\"}");
	assert_reason(decide_at(P1, 1, "pin", "1234", NULL, MON_0900), R_RELAY_NOT_ALLOWED);
	/* public devices are unaffected */
	assert_granted(decide_at(D1, 1, "pin", "1234", NULL, MON_0900));
}

Test(engine, apt_pin_mode_scopes_pins_by_apartment)
{
	tu_put(st, ENT_SETTINGS, "{\"timezone\":\"Europe/Vienna\",\"pin_mode\":\"apt_pin\"}");
	/* the same PIN in apartment 101 of both buildings */
	tu_put(st, ENT_CREDENTIAL, "{\"id\":\"c12\",\"person\":\"p7\",\"type\":\"pin\",\"code\":\"1234\"}");
	access_result_t r = decide_at(D1, 1, "pin", "1234", "101", MON_0900);
	assert_granted(r);
	cr_assert_str_eq(r.person, "p1");
	r = decide_at(D3, 1, "pin", "1234", "101", MON_0900);
	assert_granted(r);
	cr_assert_str_eq(r.person, "p7");
	assert_reason(decide_at(D1, 1, "pin", "1234", "102", MON_0900), R_UNKNOWN_CREDENTIAL);
	/* staff and delivery PINs need no APT */
	assert_granted(decide_at(D1, 1, "pin", "5555", NULL, MON_0900));
}

Test(engine, uhf_wins_over_plate_on_door_phones)
{
	tu_put(st, ENT_CREDENTIAL, "{\"id\":\"c20\",\"person\":\"p6\",\"type\":\"plate\",\"code\":\"W-123 AB\"}");
	/* plate alone: the barrier opens, and the door phone would too */
	access_req_t q = { .board = "hf1", .relay = 1, .method = "plate", .code = "W123AB", .now = MON_0900 };
	access_result_t r;
	gh_err_t err = { 0 };
	cr_assert_eq(engine_decide(en, &q, &r, &err), 0, "%s", err.message);
	assert_granted(r);
	cr_assert_eq(r.nrelays, 0);
	cr_assert_eq(r.nboards, 1);
	cr_assert_str_eq(r.boards[0].board, "hf1");
	cr_assert_eq(r.boards[0].channel, 1);
	assert_granted(decide_at(D2, 1, "plate", "w123ab", NULL, MON_0900));
	/* with a UHF card too, door phones get the card, not the plate */
	tu_put(st, ENT_CREDENTIAL, "{\"id\":\"c21\",\"person\":\"p6\",\"type\":\"uhf\",\"code\":\"E2000017\"}");
	assert_reason(decide_at(D2, 1, "plate", "W123AB", NULL, MON_0900), R_UNKNOWN_CREDENTIAL);
	assert_granted(decide_at(D2, 1, "uhf", "e2000017", NULL, MON_0900));
	cr_assert_eq(engine_decide(en, &q, &r, &err), 0);
	assert_granted(r);
}

Test(engine, plate_entry_window)
{
	tu_put(st, ENT_CREDENTIAL, "{\"id\":\"c22\",\"person\":\"p6\",\"type\":\"plate\",\"code\":\"G55\","
				   "\"long_term\":false,\"valid_from\":\"2026-06-01T08:30\",\"valid_until\":\"2026-06-01T10:00\"}");
	access_req_t q = { .board = "hf1", .relay = 1, .method = "plate", .code = "G55", .now = MON_0900 };
	access_result_t r;
	cr_assert_eq(engine_decide(en, &q, &r, NULL), 0);
	assert_granted(r);
	q.now = utc(2026, 6, 1, 8, 0); /* 10:00 local */
	cr_assert_eq(engine_decide(en, &q, &r, NULL), 0);
	assert_reason(r, R_EXPIRED);
}

static void put_temp_key(const char *extra)
{
	char j[768];
	snprintf(j, sizeof j, "{\"id\":\"k1\",\"building\":\"b1\",\"apartment\":\"a101\",\"visitor\":\"Grandma\","
		 "\"code\":\"6789\",\"qr\":\"QR-K1\",\"devices\":[\"" D1 "\",\"" D2 "\"],%s}", extra);
	tu_put(st, ENT_TEMP_KEY, j);
}

Test(engine, temp_key_uses_shared_by_two_door_phones)
{
	/* 2 uses per device x 2 door phones = 4 uses, spent on either */
	put_temp_key("\"uses_per_device\":2,\"schedule\":{\"repeat\":\"never\",\"end\":\"2026-06-30T00:00\"}");
	const char *order[] = { D1, D2, D2, D1 };
	for (int i = 0; i < 4; i++) {
		access_result_t r = decide_at(order[i], 1, "pin", "6789", NULL, MON_0900);
		assert_granted(r);
		cr_assert_str_eq(r.temp_key, "k1");
		cr_assert_str_eq(r.person_name, "Grandma");
		cr_assert_eq(r.nfloors, 1, "a visitor gets the visited apartment's floor");
		cr_assert_str_eq(r.floors[0], "1");
	}
	assert_reason(decide_at(D1, 1, "pin", "6789", NULL, MON_0900), R_USES_EXHAUSTED);
	assert_reason(decide_at(D2, 1, "qr", "QR-K1", NULL, MON_0900), R_USES_EXHAUSTED);
	json_t *k = NULL;
	cr_assert_eq(ent_get(st, ENT_TEMP_KEY, "k1", &k, NULL), 0);
	cr_assert_eq(json_integer_value(json_object_get(k, "uses_left")), 0);
	json_decref(k);
}

Test(engine, temp_key_uses_atomic_across_connections)
{
	/* two processes' worth of connections to the same file spend one pool */
	put_temp_key("\"uses_per_device\":1,\"schedule\":{\"repeat\":\"never\",\"end\":\"2026-06-30T00:00\"}");
	char path[300];
	snprintf(path, sizeof path, "%s/site.db", tu_dir);
	gh_err_t err = { 0 };
	store_t *st2 = store_open(path, &err);
	cr_assert_not_null(st2, "%s", err.message);
	engine_t *en2 = engine_new(st2);
	int granted = 0;
	for (int i = 0; i < 6; i++) {
		access_req_t q = { .device = i % 2 ? D2 : D1, .relay = 1, .method = "tempkey", .code = "6789", .now = MON_0900 };
		access_result_t r;
		cr_assert_eq(engine_decide(i % 2 ? en2 : en, &q, &r, &err), 0, "%s", err.message);
		granted += r.granted;
		if (!r.granted)
			assert_reason(r, R_USES_EXHAUSTED);
	}
	cr_assert_eq(granted, 2, "exactly 1 use x 2 door phones, got %d", granted);
	engine_free(en2);
	store_close(st2);
}

Test(engine, temp_key_scope_expiry_and_window)
{
	put_temp_key("\"schedule\":{\"repeat\":\"never\",\"end\":\"2026-06-30T00:00\"}");
	assert_granted(decide_at(D1, 1, "qr", "QR-K1", NULL, MON_0900));
	/* not one of its door phones */
	assert_reason(decide_at(D3, 1, "pin", "6789", NULL, MON_0900), R_RELAY_NOT_ALLOWED);
	/* past its expiry */
	assert_reason(decide_at(D1, 1, "pin", "6789", NULL, utc(2026, 7, 1, 9, 0)), R_EXPIRED);
	/* a daily key only in its hours */
	put_temp_key("\"schedule\":{\"repeat\":\"daily\",\"from\":\"14:00\",\"to\":\"16:00\"}");
	assert_reason(decide_at(D1, 1, "pin", "6789", NULL, MON_0900), R_OUTSIDE_SCHEDULE);
	assert_granted(decide_at(D1, 1, "pin", "6789", NULL, utc(2026, 6, 1, 12, 30)));
	/* a key limited to relay 4 does not open relay 1 */
	tu_put(st, ENT_TEMP_KEY, "{\"id\":\"k2\",\"apartment\":\"a101\",\"visitor\":\"Plumber\",\"code\":\"4321\","
				 "\"relays\":[{\"device\":\"" D1 "\",\"relay\":4}],\"schedule\":{\"repeat\":\"never\","
				 "\"end\":\"2026-06-30T00:00\"}}");
	assert_reason(decide_at(D1, 1, "pin", "4321", NULL, MON_0900), R_RELAY_NOT_ALLOWED);
	access_result_t r = decide_at(D1, 0, "pin", "4321", NULL, MON_0900);
	assert_granted(r);
	cr_assert_eq(r.nrelays, 1);
	cr_assert_eq(r.relays[0], 4);
}

Test(engine, temp_key_of_expired_apartment)
{
	tu_put(st, ENT_TEMP_KEY, "{\"id\":\"k3\",\"apartment\":\"a102\",\"code\":\"1357\",\"devices\":[\"" D1 "\"],"
				 "\"schedule\":{\"repeat\":\"never\",\"end\":\"2026-06-30T00:00\"}}");
	assert_reason(decide_at(D1, 1, "pin", "1357", NULL, MON_0900), R_APARTMENT_EXPIRED);
}

Test(engine, app_unlock_by_person)
{
	assert_granted(decide_at(D1, 1, "app", "p1", NULL, MON_0900));
	assert_reason(decide_at(D1, 1, "app", "nobody", NULL, MON_0900), R_UNKNOWN_CREDENTIAL);
}

static int64_t count_logs(const char *where)
{
	char sql[256];
	snprintf(sql, sizeof sql, "SELECT count(*) FROM door_logs WHERE %s", where);
	sqlite3_stmt *s = NULL;
	cr_assert_eq(sqlite3_prepare_v2(store_db(st), sql, -1, &s, NULL), SQLITE_OK);
	sqlite3_step(s);
	int64_t n = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return n;
}

Test(engine, every_decision_writes_a_door_log_without_the_pin)
{
	decide_at(D1, 1, "pin", "1234", NULL, MON_0900);
	decide_at(D1, 1, "pin", "8888", NULL, MON_0900);
	decide_at(D2, 1, "rf", "CAFE01", NULL, MON_0900);
	cr_assert_eq(count_logs("1"), 3);
	cr_assert_eq(count_logs("result = 'success' AND person = 'p1' AND apt = '101' AND method = 'pin' AND code = '****'"), 1);
	cr_assert_eq(count_logs("result = 'failed' AND reason = 'unknown_credential' AND code = '****'"), 1);
	cr_assert_eq(count_logs("code LIKE '%1234%' OR code LIKE '%8888%'"), 0, "PINs must not be logged");
	cr_assert_eq(count_logs("result = 'success' AND code = 'CAFE01' AND initiator = 'Cleaner'"), 1);
}

Test(engine, batched_door_logs_commit_once_per_pass)
{
	engine_batch(en, 1);
	assert_granted(decide_at(D1, 1, "pin", "1234", NULL, MON_0900));
	assert_reason(decide_at(D1, 1, "pin", "8888", NULL, MON_0900), R_UNKNOWN_CREDENTIAL);
	assert_granted(decide_at(D2, 1, "rf", "CAFE01", NULL, MON_0900));
	cr_assert_eq(engine_pending(en), 3, "pending %d", engine_pending(en));
	cr_assert_eq(count_logs("1"), 0, "queued until the pass ends");
	/* another connection (the CLI) sees nothing uncommitted */
	char path[300];
	snprintf(path, sizeof path, "%s/site.db", tu_dir);
	sqlite3 *other = NULL;
	cr_assert_eq(sqlite3_open(path, &other), SQLITE_OK);
	gh_err_t err = { 0 };
	cr_assert_eq(engine_flush(en, &err), 0, "%s", err.message);
	cr_assert_eq(engine_pending(en), 0);
	cr_assert_eq(count_logs("1"), 3);
	cr_assert_eq(count_logs("result = 'success'"), 2);
	sqlite3_stmt *q = NULL;
	cr_assert_eq(sqlite3_prepare_v2(other, "SELECT count(*) FROM door_logs", -1, &q, NULL), SQLITE_OK);
	cr_assert_eq(sqlite3_step(q), SQLITE_ROW);
	cr_assert_eq(sqlite3_column_int(q, 0), 3, "committed for other connections too");
	sqlite3_finalize(q);
	sqlite3_close(other);
	/* a temp key use is spent at once even in batch mode */
	put_temp_key("\"uses_per_device\":1,\"schedule\":{\"repeat\":\"never\",\"end\":\"2026-06-30T00:00\"}");
	assert_granted(decide_at(D1, 1, "pin", "6789", NULL, MON_0900));
	assert_granted(decide_at(D2, 1, "pin", "6789", NULL, MON_0900));
	assert_reason(decide_at(D1, 1, "pin", "6789", NULL, MON_0900), R_USES_EXHAUSTED);
	engine_batch(en, 0); /* flushes */
	cr_assert_eq(count_logs("1"), 6);
}

Test(engine, device_cache_follows_edits)
{
	assert_reason(decide_at(D2, 1, "pin", "1234", NULL, MON_0900), R_RELAY_NOT_ALLOWED);
	/* a new group on the garden gate applies to the very next decision */
	tu_put(st, ENT_ACCESS_GROUP, "{\"id\":\"g_new\",\"name\":\"Garden\",\"relays\":[{\"device\":\"" D2
				     "\",\"relay\":1}],\"members\":{\"apartments\":[\"a101\"]}}");
	assert_granted(decide_at(D2, 1, "pin", "1234", NULL, MON_0900));
	/* a relay restricted to RF from now on */
	tu_put(st, ENT_DEVICE, "{\"id\":\"" D2 "\",\"type\":0,\"name\":\"Garden gate\",\"relays\":[{\"n\":1,"
			       "\"methods\":[\"rf\"]}]}");
	assert_reason(decide_at(D2, 1, "pin", "1234", NULL, MON_0900), R_RELAY_NOT_ALLOWED);
	/* an edit by another connection (the CLI) is seen too */
	char path[300];
	snprintf(path, sizeof path, "%s/site.db", tu_dir);
	gh_err_t err = { 0 };
	store_t *cli = store_open(path, &err);
	cr_assert_not_null(cli, "%s", err.message);
	json_t *d = tu_json("{\"id\":\"" D2 "\",\"type\":0,\"name\":\"Garden gate\",\"relays\":[{\"n\":1}]}");
	cr_assert_eq(ent_put(cli, ENT_DEVICE, NULL, d, NULL, NULL, &err), 0, "%s", err.message);
	json_decref(d);
	store_close(cli);
	assert_granted(decide_at(D2, 1, "pin", "1234", NULL, MON_0900));
}

Test(engine, emergency_opens_the_door_group)
{
	json_t *t = NULL;
	cr_assert_eq(engine_emergency_state(en, NULL), 0);
	cr_assert_eq(engine_emergency_set(en, 1, NULL, "tester", &t, NULL), 0);
	/* "all": every door phone relay plus the board's door channel */
	cr_assert_eq(json_array_size(t), 4 + 1 + 1 + 1 + 1, "got %zu", json_array_size(t));
	json_decref(t);
	cr_assert_eq(engine_emergency_state(en, &t), 1);
	json_decref(t);
	cr_assert_eq(engine_emergency_set(en, 0, NULL, "tester", NULL, NULL), 0);
	cr_assert_eq(engine_emergency_state(en, NULL), 0);
	/* a configured group */
	tu_put(st, ENT_SETTINGS, "{\"timezone\":\"Europe/Vienna\",\"emergency\":{\"auto_unlock\":true,"
				 "\"doors\":[{\"device\":\"" D1 "\",\"relay\":1},{\"board\":\"hf1\",\"channel\":2}]}}");
	cr_assert_eq(engine_emergency_set(en, 1, NULL, "tester", &t, NULL), 0);
	cr_assert_eq(json_array_size(t), 2);
	json_decref(t);
}

Test(engine, deleting_a_member_or_device_keeps_groups_valid)
{
	gh_err_t err = { 0 };
	cr_assert_eq(ent_delete(st, ENT_PERSON, "p6", NULL, &err), 0, "%s", err.message);
	cr_assert_eq(ent_delete(st, ENT_DEVICE, D2, NULL, &err), 0, "%s", err.message);
	json_t *g = NULL;
	cr_assert_eq(ent_get(st, ENT_ACCESS_GROUP, "g_staff", &g, &err), 0);
	cr_assert_eq(json_array_size(json_object_get(json_object_get(g, "members"), "persons")), 2);
	cr_assert_eq(json_array_size(json_object_get(g, "relays")), 1, "only the board channel is left");
	/* the group as stored saves again (no dangling reference) */
	cr_assert_eq(ent_put(st, ENT_ACCESS_GROUP, NULL, g, NULL, NULL, &err), 0, "%s", err.message);
	json_decref(g);
	/* and a whole building's residents leave their groups with it */
	tu_put(st, ENT_ACCESS_GROUP, "{\"id\":\"g_x\",\"name\":\"X\",\"members\":{\"persons\":[\"p7\",\"p5\"],"
				     "\"apartments\":[\"a201\"],\"buildings\":[\"b2\"]}}");
	cr_assert_eq(ent_delete(st, ENT_BUILDING, "b2", NULL, &err), 0, "%s", err.message);
	cr_assert_eq(ent_get(st, ENT_ACCESS_GROUP, "g_x", &g, &err), 0);
	json_t *m = json_object_get(g, "members");
	cr_assert_eq(json_array_size(json_object_get(m, "persons")), 1);
	cr_assert_eq(json_array_size(json_object_get(m, "apartments")), 0);
	cr_assert_eq(json_array_size(json_object_get(m, "buildings")), 0);
	cr_assert_eq(ent_put(st, ENT_ACCESS_GROUP, NULL, g, NULL, NULL, &err), 0, "%s", err.message);
	json_decref(g);
}

Test(engine, dropping_a_device_relay_keeps_groups_valid)
{
	/* relay 4 goes; the default group held it */
	tu_put(st, ENT_DEVICE, "{\"id\":\"" D1 "\",\"type\":0,\"name\":\"Main entrance\",\"area\":\"building\","
			       "\"building\":\"b1\",\"relays\":[{\"n\":1},{\"n\":2,\"methods\":[\"rf\"]},{\"n\":3}]}");
	json_t *g = NULL;
	gh_err_t err = { 0 };
	cr_assert_eq(ent_get(st, ENT_ACCESS_GROUP, "g_b1", &g, &err), 0);
	cr_assert_eq(json_array_size(json_object_get(g, "relays")), 3, "relay 4 left the group");
	cr_assert_eq(ent_put(st, ENT_ACCESS_GROUP, NULL, g, NULL, NULL, &err), 0, "%s", err.message);
	json_decref(g);
	assert_granted(decide_at(D1, 1, "pin", "1234", NULL, MON_0900));
	assert_reason(decide_at(D1, 4, "pin", "1234", NULL, MON_0900), R_RELAY_NOT_ALLOWED);
}

Test(engine, retention_purges_old_logs_and_keeps_audit_logs)
{
	decide_at(D1, 1, "pin", "1234", NULL, MON_0900);                  /* 2026-06-01 */
	decide_at(D1, 1, "pin", "1234", NULL, utc(2026, 7, 15, 9, 0));   /* 45 days later */
	sqlite3_exec(store_db(st), "INSERT INTO audit_logs(ts, actor, action) VALUES (1780000000, 't', 'x')",
		     NULL, NULL, NULL);
	int64_t n = store_purge_logs(st, 30, 365, utc(2026, 7, 16, 0, 0), 100);
	cr_assert_eq(n, 1, "one door log older than 30 days, got %lld", (long long)n);
	cr_assert_eq(count_logs("1"), 1);
	sqlite3_stmt *s = NULL;
	sqlite3_prepare_v2(store_db(st), "SELECT count(*) FROM audit_logs WHERE actor = 't'", -1, &s, NULL);
	sqlite3_step(s);
	cr_assert_eq(sqlite3_column_int(s, 0), 1, "audit logs are kept longer");
	sqlite3_finalize(s);
}

Test(engine, reason_names_match_the_contract)
{
	cr_assert_str_eq(engine_reason_name(R_UNKNOWN_CREDENTIAL), "unknown_credential");
	cr_assert_str_eq(engine_reason_name(R_OUTSIDE_SCHEDULE), "outside_schedule");
	cr_assert_str_eq(engine_reason_name(R_EXPIRED), "expired");
	cr_assert_str_eq(engine_reason_name(R_RELAY_NOT_ALLOWED), "relay_not_allowed");
	cr_assert_str_eq(engine_reason_name(R_APARTMENT_EXPIRED), "apartment_expired");
	cr_assert_str_eq(engine_reason_name(R_USES_EXHAUSTED), "uses_exhausted");
	cr_assert_str_eq(engine_reason_name(R_DISABLED), "disabled");
}
