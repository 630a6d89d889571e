/* gatehouse status explains what is wrong (daemon/diagnose.c): each broken
 * part of a status document becomes one problem with what to check. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <string.h>

#include "diagnose.h"

static json_t *problems(const char *status)
{
	json_error_t e;
	json_t *s = json_loads(status, 0, &e);
	cr_assert_not_null(s, "test status JSON: %s", e.text);
	json_t *p = status_problems(s);
	json_decref(s);
	return p;
}

static const char *field(json_t *p, size_t i, const char *k)
{
	return json_string_value(json_object_get(json_array_get(p, i), k));
}

Test(diagnose, a_healthy_box_has_no_problem)
{
	json_t *p = problems("{\"daemon\":\"running\",\"wan\":\"up\",\"mqtt\":{\"connected\":true},"
			     "\"devices\":{\"online\":3,\"total\":3},\"boards\":[{\"id\":\"b1\",\"online\":true}],"
			     "\"cloud\":{\"outbox_pending\":0,\"conflicts\":0},\"emergency\":false}");
	cr_assert_eq(json_array_size(p), 0);
	json_decref(p);
}

Test(diagnose, a_stopped_daemon_is_the_one_problem)
{
	json_t *p = problems("{\"daemon\":\"stopped\",\"wan\":\"down\",\"devices\":{\"online\":0,\"total\":5}}");
	cr_assert_eq(json_array_size(p), 1);
	cr_assert_str_eq(field(p, 0, "level"), "error");
	cr_assert(strstr(field(p, 0, "what"), "not running"));
	cr_assert(strstr(field(p, 0, "fix"), "journalctl"));
	json_decref(p);
}

Test(diagnose, offline_boards_name_the_likely_cause)
{
	json_t *p = problems("{\"daemon\":\"running\",\"boards\":["
			     "{\"id\":\"lobby\",\"bus\":\"/dev/ttyUSB0\",\"online\":false,\"last_error\":\"Connection timed out\"},"
			     "{\"id\":\"gate\",\"bus\":\"10.0.0.9:502\",\"online\":false,\"last_error\":\"Connection refused\"},"
			     "{\"id\":\"lift\",\"bus\":\"/dev/ttyUSB1\",\"online\":false,\"last_error\":\"Permission denied\"},"
			     "{\"id\":\"ok\",\"bus\":\"/dev/ttyUSB0\",\"online\":true}]}");
	cr_assert_eq(json_array_size(p), 3);
	cr_assert(strstr(field(p, 0, "what"), "board lobby on /dev/ttyUSB0 is offline: Connection timed out"));
	cr_assert(strstr(field(p, 0, "fix"), "termination"), "a timeout points at the RS485 wiring");
	cr_assert(strstr(field(p, 1, "fix"), "IP address"), "a refused connection points at the address");
	cr_assert(strstr(field(p, 2, "fix"), "dialout"), "a permission error points at the group");
	json_decref(p);
}

Test(diagnose, wan_down_counts_waiting_events_and_other_warnings)
{
	json_t *p = problems("{\"daemon\":\"running\",\"wan\":\"down\",\"mqtt\":{\"connected\":true},"
			     "\"devices\":{\"online\":1,\"total\":4},\"emergency\":true,"
			     "\"cloud\":{\"outbox_pending\":1234,\"last_error\":\"Could not resolve host\","
			     "\"outbox_rejected\":2,\"conflicts\":1,\"outbox_dropped\":0}}");
	cr_assert_eq(json_array_size(p), 5, "devices, WAN, rejected, conflicts, emergency");
	size_t i;
	json_t *x;
	int wan = 0, dev = 0;
	json_array_foreach(p, i, x) {
		const char *w = json_string_value(json_object_get(x, "what"));
		cr_assert_str_eq(json_string_value(json_object_get(x, "level")), "warning", "%s", w);
		wan |= strstr(w, "1234 events wait") && strstr(w, "Could not resolve host");
		dev |= strstr(w, "3 of 4 devices are offline") != NULL;
	}
	cr_assert(wan && dev);
	json_decref(p);
}

Test(diagnose, no_broker_is_an_error_and_hides_device_counts)
{
	json_t *p = problems("{\"daemon\":\"running\",\"mqtt\":{\"connected\":false},"
			     "\"devices\":{\"online\":0,\"total\":9},\"disk\":{\"state\":\"full\",\"free_bytes\":0}}");
	cr_assert_eq(json_array_size(p), 2, "disk and broker; devices are offline because of the broker");
	cr_assert(strstr(field(p, 0, "what"), "disk is full"));
	cr_assert(strstr(field(p, 1, "what"), "MQTT broker"));
	json_decref(p);
}
