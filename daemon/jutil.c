#include "jutil.h"

#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

#include "timeutil.h"

const char *jpath(char *buf, size_t len, const char *prefix, long idx, const char *key)
{
	if (idx >= 0)
		snprintf(buf, len, "%s[%ld]%s%s", prefix, idx, key ? "." : "", key ? key : "");
	else if (prefix && *prefix)
		snprintf(buf, len, "%s.%s", prefix, key);
	else
		snprintf(buf, len, "%s", key);
	return buf;
}

#define FIELD(path, key) ((path) ? (path) : (key))

int jf_str(json_t *o, const char *key, const char *path, int required, size_t maxbytes,
	   const char *def, const char **out, gh_err_t *err)
{
	json_t *v = json_object_get(o, key);
	if (!v || json_is_null(v)) {
		if (required)
			return gh_err(err, 422, "required", FIELD(path, key), "%s is required",
				      FIELD(path, key));
		if (def) {
			json_object_set_new(o, key, json_string(def));
			v = json_object_get(o, key);
		} else {
			*out = NULL;
			return 0;
		}
	}
	if (!json_is_string(v))
		return gh_err(err, 422, "type", FIELD(path, key), "%s must be a string", FIELD(path, key));
	if (json_string_length(v) > maxbytes)
		return gh_err(err, 422, "too_long", FIELD(path, key), "%s must be at most %zu bytes",
			      FIELD(path, key), maxbytes);
	if (required && json_string_length(v) == 0)
		return gh_err(err, 422, "required", FIELD(path, key), "%s must not be empty",
			      FIELD(path, key));
	if (strlen(json_string_value(v)) != json_string_length(v))
		return gh_err(err, 422, "invalid", FIELD(path, key), "%s must not contain NUL",
			      FIELD(path, key));
	*out = json_string_value(v);
	return 0;
}

int jf_bool(json_t *o, const char *key, const char *path, int def, int *out, gh_err_t *err)
{
	json_t *v = json_object_get(o, key);
	if (!v || json_is_null(v)) {
		json_object_set_new(o, key, json_boolean(def));
		*out = def;
		return 0;
	}
	if (!json_is_boolean(v))
		return gh_err(err, 422, "type", FIELD(path, key), "%s must be true or false",
			      FIELD(path, key));
	*out = json_is_true(v);
	return 0;
}

int jf_int(json_t *o, const char *key, const char *path, int required, int64_t min, int64_t max,
	   int has_def, int64_t def, int64_t *out, int *present, gh_err_t *err)
{
	json_t *v = json_object_get(o, key);
	if (present)
		*present = 1;
	if (!v || json_is_null(v)) {
		if (has_def) {
			json_object_set_new(o, key, json_integer(def));
			*out = def;
			return 0;
		}
		if (required)
			return gh_err(err, 422, "required", FIELD(path, key), "%s is required",
				      FIELD(path, key));
		if (present)
			*present = 0;
		*out = 0;
		return 0;
	}
	if (!json_is_integer(v))
		return gh_err(err, 422, "type", FIELD(path, key), "%s must be an integer",
			      FIELD(path, key));
	int64_t n = json_integer_value(v);
	if (n < min || n > max)
		return gh_err(err, 422, "range", FIELD(path, key), "%s must be %lld..%lld",
			      FIELD(path, key), (long long)min, (long long)max);
	*out = n;
	return 0;
}

int jf_enum(json_t *o, const char *key, const char *path, const char *const *vals, int def,
	    int *out, gh_err_t *err)
{
	json_t *v = json_object_get(o, key);
	if (!v || json_is_null(v)) {
		if (def < 0)
			return gh_err(err, 422, "required", FIELD(path, key), "%s is required",
				      FIELD(path, key));
		json_object_set_new(o, key, json_string(vals[def]));
		*out = def;
		return 0;
	}
	if (json_is_string(v))
		for (int i = 0; vals[i]; i++)
			if (strcmp(vals[i], json_string_value(v)) == 0) {
				*out = i;
				return 0;
			}
	char list[256] = "";
	size_t n = 0;
	for (int i = 0; vals[i] && n < sizeof list; i++)
		n += (size_t)snprintf(list + n, sizeof list - n, "%s\"%s\"", i ? ", " : "", vals[i]);
	return gh_err(err, 422, "invalid", FIELD(path, key), "%s must be one of %s", FIELD(path, key),
		      list);
}

int jf_ts(json_t *o, const char *key, const char *path, int64_t *out, int *present, gh_err_t *err)
{
	json_t *v = json_object_get(o, key);
	*present = 0;
	*out = 0;
	if (!v || json_is_null(v)) {
		json_object_set_new(o, key, json_null());
		return 0;
	}
	if (gh_ts_parse(v, out))
		return gh_err(err, 422, "invalid", FIELD(path, key),
			      "%s must be Unix seconds or an ISO-8601 date-time (years 0000-9999)",
			      FIELD(path, key));
	json_object_set_new(o, key, json_integer(*out));
	*present = 1;
	return 0;
}

char *jdump(const json_t *v) { return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY); }

void gh_random_hex(char *out, size_t bytes)
{
	unsigned char raw[32];
	if (bytes > sizeof raw)
		bytes = sizeof raw;
	if (RAND_bytes(raw, (int)bytes) != 1) {
		/* OpenSSL's CSPRNG failing is fatal for ids too: fall back to time */
		uint64_t t = gh_mono_ms() ^ (uint64_t)gh_now();
		for (size_t i = 0; i < bytes; i++)
			raw[i] = (unsigned char)(t >> ((i % 8) * 8));
	}
	for (size_t i = 0; i < bytes; i++)
		snprintf(out + 2 * i, 3, "%02x", raw[i]);
}

void gh_local_id(char out[32])
{
	memcpy(out, "local-", 6);
	gh_random_hex(out + 6, 8);
}
