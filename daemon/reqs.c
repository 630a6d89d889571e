#include "reqs.h"

#include <string.h>

#include "log.h"

json_t *reqs_error(const char *rid, const char *code, const char *message)
{
	json_t *r = json_pack("{s:b,s:{s:s,s:s}}", "ok", 0, "error", "code", code, "message", message);
	if (rid)
		json_object_set_new(r, "rid", json_string(rid));
	return r;
}

json_t *reqs_result_json(const access_result_t *r)
{
	json_t *o = json_pack("{s:b}", "granted", r->granted);
	json_t *rel = json_array();
	for (int i = 0; i < r->nrelays; i++)
		json_array_append_new(rel, json_integer(r->relays[i]));
	json_object_set_new(o, "relays", rel);
	if (r->nboards) {
		json_t *b = json_array();
		for (int i = 0; i < r->nboards; i++)
			json_array_append_new(b, json_pack("{s:s,s:i}", "board", r->boards[i].board,
							   "channel", r->boards[i].channel));
		json_object_set_new(o, "boards", b);
	}
	if (!r->granted)
		json_object_set_new(o, "reason", json_string(engine_reason_name(r->reason)));
	if (r->person_name[0])
		json_object_set_new(o, "person", json_string(r->person_name));
	json_t *fl = json_array();
	if (r->granted) {
		if (r->all_floors)
			json_array_append_new(fl, json_string("all"));
		for (int i = 0; i < r->nfloors; i++)
			json_array_append_new(fl, json_string(r->floors[i]));
	}
	json_object_set_new(o, "floors", fl);
	json_object_set_new(o, "door_log", json_integer(r->door_log));
	return o;
}

static const char *opt_str(const json_t *req, const char *k, int *bad)
{
	json_t *v = json_object_get(req, k);
	if (!v || json_is_null(v))
		return NULL;
	if (!json_is_string(v)) {
		*bad = 1;
		return NULL;
	}
	return json_string_value(v);
}

json_t *reqs_access_check(engine_t *en, const char *device, const json_t *req)
{
	int bad = 0;
	const char *rid = opt_str(req, "rid", &bad);
	bad = 0;
	access_req_t q = { 0 };
	q.device = device;
	if (!device)
		q.board = opt_str(req, "board", &bad);
	q.method = opt_str(req, "method", &bad);
	q.code = opt_str(req, "code", &bad);
	q.apt = opt_str(req, "apt", &bad);
	q.event_id = opt_str(req, "event_id", &bad);
	json_t *rel = json_object_get(req, "relay");
	if (rel && !json_is_null(rel)) {
		if (!json_is_integer(rel) || json_integer_value(rel) < 1 || json_integer_value(rel) > 256)
			return reqs_error(rid, "bad_request", "relay must be an integer 1..256");
		q.relay = (int)json_integer_value(rel);
	}
	if (bad)
		return reqs_error(rid, "bad_request", "method, code and apt must be strings");
	if (!q.method || !q.code)
		return reqs_error(rid, "bad_request", "access.check needs method and code");

	access_result_t r;
	gh_err_t err = { 0 };
	if (engine_decide(en, &q, &r, &err)) {
		log_warn("engine", "access.check from %s refused: %s", device ? device : "?", err.message);
		return reqs_error(rid, err.status >= 500 ? "internal" : "bad_request", err.message);
	}
	log_info("engine", "access.check device=%s method=%s relay=%d -> %s%s%s", device, q.method,
		 q.relay, r.granted ? "granted" : "denied", r.granted ? "" : " ",
		 r.granted ? "" : engine_reason_name(r.reason));
	json_t *o = reqs_result_json(&r);
	json_object_set_new(o, "ok", json_true());
	if (rid)
		json_object_set_new(o, "rid", json_string(rid));
	return o;
}
