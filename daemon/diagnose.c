/* What is wrong with the box, in words an installer acts on: read from the
 * status document (ctl "status"), so the CLI, the API and the UI say the
 * same. Each problem names what fails, what it means for the site (doors,
 * events) and what to check first. */
#include "diagnose.h"

#include <stdio.h>
#include <string.h>

static void add(json_t *out, const char *level, const char *what, const char *fix)
{
	json_array_append_new(out, json_pack("{s:s,s:s,s:s}", "level", level, "what", what, "fix", fix));
}

static json_int_t num(const json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

static const char *str(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* what to check for a board's last error: the likely causes by symptom */
static const char *board_fix(const char *err)
{
	if (!err)
		return "check its power and its bus settings (relay_boards: bus, unit, profile)";
	if (strstr(err, "ermission"))
		return "the daemon's user cannot open the serial port: add it to the dialout group "
		       "(the package does) and check the DeviceAllow= of the systemd unit";
	if (strstr(err, "No such file") || strstr(err, "No such device"))
		return "the serial adapter is missing: check the USB/RS485 adapter is plugged in and its "
		       "device name (ls /dev/serial/by-id/) matches the board's bus";
	if (strstr(err, "refused") || strstr(err, "unreachable") || strstr(err, "No route"))
		return "nothing answers at that address: check the board's IP address and port, its power and "
		       "the network cable";
	if (strstr(err, "timed out") || strstr(err, "timeout") || strstr(err, "Timeout"))
		return "the board does not answer: check its power, the RS485 wiring (A to A, B to B, common "
		       "ground, 120 ohm termination at both ends), its unit id (DIP switches) and the baud rate "
		       "of its profile";
	if (strstr(err, "CRC") || strstr(err, "Invalid") || strstr(err, "exception"))
		return "garbled or refused answers: check the baud rate and parity of its profile, the wiring "
		       "and that two boards do not share its unit id";
	return "check its power, wiring and bus settings (relay_boards: bus, unit, profile)";
}

json_t *status_problems(const json_t *s)
{
	json_t *out = json_array();
	char what[512];
	const char *daemon = str(s, "daemon");
	if (daemon && !strcmp(daemon, "stopped")) {
		add(out, "error",
		    "gatehoused is not running: devices get no decisions from the box and boards are not driven",
		    "start it (systemctl start gatehoused) and read why it stopped (journalctl -u gatehoused -e)");
		return out; /* the rest is what a running daemon reports */
	}
	json_t *disk = json_object_get(s, "disk");
	const char *ds = str(disk, "state");
	if (ds && strcmp(ds, "ok")) {
		snprintf(what, sizeof what,
			 "the disk is %s (%lld MB free): doors keep opening, the oldest logs are being deleted to "
			 "make room", ds, (long long)(num(disk, "free_bytes") >> 20));
		add(out, !strcmp(ds, "full") ? "error" : "warning", what,
		    "free space on the state folder (/var/lib/gatehouse): export and remove old backups, "
		    "lower [storage] log_retention_days, or use a larger card");
	}
	json_t *mqtt = json_object_get(s, "mqtt");
	if (json_is_object(mqtt) && json_is_false(json_object_get(mqtt, "connected")))
		add(out, "error",
		    "not connected to the MQTT broker: door phones and monitors get no decisions, calls are not "
		    "routed, their events wait on the devices",
		    "check mosquitto runs (systemctl status mosquitto), [mqtt] host and port, and the gateway's "
		    "account ([mqtt] username, password_file)");
	size_t i;
	json_t *b;
	json_array_foreach(json_object_get(s, "boards"), i, b) {
		if (json_is_true(json_object_get(b, "online")))
			continue;
		const char *err = str(b, "last_error");
		snprintf(what, sizeof what, "board %s on %s is offline%s%s: the doors, lifts or barriers it drives "
					    "do not open",
			 str(b, "id") ? str(b, "id") : "?", str(b, "bus") ? str(b, "bus") : "?", err ? ": " : "",
			 err ? err : "");
		add(out, "error", what, board_fix(err));
	}
	json_t *dev = json_object_get(s, "devices");
	json_int_t total = num(dev, "total"), online = num(dev, "online");
	if (json_is_object(mqtt) && json_is_true(json_object_get(mqtt, "connected")) && total > online) {
		snprintf(what, sizeof what, "%lld of %lld devices are offline: calls skip them, their events wait "
					    "until they are back",
			 (long long)(total - online), (long long)total);
		add(out, "warning", what,
		    "check their power and network; the web UI's Devices page (or GET /api/v1/devices) shows "
		    "which, and when each was last seen");
	}
	const char *wan = str(s, "wan");
	json_t *cl = json_object_get(s, "cloud");
	json_int_t pending = json_object_get(cl, "outbox_pending") ? num(cl, "outbox_pending") : num(s, "outbox");
	if (wan && !strcmp(wan, "down")) {
		const char *err = str(cl, "last_error");
		snprintf(what, sizeof what, "the cloud is unreachable%s%s: doors work from local state; %lld events "
					    "wait in the outbox and are sent once it is back",
			 err ? ": " : "", err ? err : "", (long long)pending);
		add(out, "warning", what,
		    "check the WAN link and DNS, [cloud] url, ca_file and token_file; after fixing, "
		    "'gatehouse cloud retry' tries at once");
	}
	if (num(cl, "outbox_rejected") > 0) {
		snprintf(what, sizeof what, "%lld events were rejected by the cloud (kept on the box)",
			 (long long)num(cl, "outbox_rejected"));
		add(out, "warning", what, "see why with 'gatehouse cloud rejected'");
	}
	if (num(cl, "outbox_dropped") > 0) {
		snprintf(what, sizeof what, "%lld events were evicted from the full outbox during a long outage "
					    "(alarms are kept)",
			 (long long)num(cl, "outbox_dropped"));
		add(out, "warning", what, "the door logs on the box still hold them: export them with the logs API");
	}
	if (num(cl, "conflicts") > 0) {
		snprintf(what, sizeof what, "%lld local edits were overruled by the cloud (cloud wins)",
			 (long long)num(cl, "conflicts"));
		add(out, "warning", what,
		    "review them with 'gatehouse cloud conflicts' or the web UI's Conflicts page and redo what "
		    "still matters in the cloud");
	}
	if (json_is_true(json_object_get(s, "emergency")))
		add(out, "warning", "emergency: the emergency doors are held open",
		    "end it with 'gatehouse emergency off' (or the dashboard's emergency button) once it is over");
	return out;
}

static const char *pad(const char *level)
{
	return !strcmp(level, "error") ? "ERROR  " : !strcmp(level, "warning") ? "WARNING" : "NOTE   ";
}

void status_print(FILE *f, const json_t *s)
{
	const char *daemon = str(s, "daemon");
	json_int_t up = num(s, "uptime");
	fprintf(f, "gatehouse %s, daemon %s", str(s, "version") ? str(s, "version") : "?", daemon ? daemon : "?");
	if (daemon && !strcmp(daemon, "running"))
		fprintf(f, " for %lldd %02lldh %02lldm", (long long)(up / 86400), (long long)(up / 3600 % 24),
			(long long)(up / 60 % 60));
	fprintf(f, ", schema %lld\n", (long long)num(s, "schema"));
	json_t *mqtt = json_object_get(s, "mqtt");
	if (json_is_object(mqtt))
		fprintf(f, "  broker     %s\n", json_is_true(json_object_get(mqtt, "connected")) ? "connected" : "NOT CONNECTED");
	json_t *dev = json_object_get(s, "devices");
	fprintf(f, "  devices    %lld of %lld online\n", (long long)num(dev, "online"), (long long)num(dev, "total"));
	json_t *boards = json_object_get(s, "boards");
	size_t i, on = 0;
	json_t *b;
	json_array_foreach(boards, i, b) on += json_is_true(json_object_get(b, "online"));
	fprintf(f, "  boards     %zu of %zu online\n", on, json_array_size(boards));
	json_t *cl = json_object_get(s, "cloud");
	fprintf(f, "  cloud      %s, rev %lld, %lld events waiting\n", str(s, "wan") ? str(s, "wan") : "?",
		(long long)num(s, "rev"),
		(long long)(json_object_get(cl, "outbox_pending") ? num(cl, "outbox_pending") : num(s, "outbox")));
	fprintf(f, "  emergency  %s\n", json_is_true(json_object_get(s, "emergency")) ? "ON" : "off");
	json_t *d = json_object_get(s, "disk");
	if (json_is_object(d))
		fprintf(f, "  disk       %s, %lld MB free\n", str(d, "state") ? str(d, "state") : "?",
			(long long)(num(d, "free_bytes") >> 20));
	json_t *pr = json_object_get(s, "problems");
	if (!json_array_size(pr)) {
		fprintf(f, "no problems found\n");
		return;
	}
	fprintf(f, "%zu problem%s:\n", json_array_size(pr), json_array_size(pr) == 1 ? "" : "s");
	json_t *p;
	json_array_foreach(pr, i, p) {
		fprintf(f, "  %s %s\n", pad(str(p, "level") ? str(p, "level") : ""), str(p, "what"));
		fprintf(f, "          -> %s\n", str(p, "fix"));
	}
}
