#!/usr/bin/env python3
"""Device link end to end, against the real mosquitto broker (dynamic
security on, anonymous off), the real gatehoused and simulated devices.
Prints "N passed, N failed"; exits 1 on any failure.

usage: tests/mqtt/run.py [BUILD_DIR]   (run from the repository root)
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.getcwd()
sys.path.insert(0, os.path.join(ROOT, "tests", "sim"))
import broker as brokermod  # noqa: E402
from devsim import Device  # noqa: E402
from testlib import SLOW, counts, daemon_cmd, ok, query, valgrind_check, wait  # noqa: E402

BUILD = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("GH_BUILD", "build")
T = tempfile.mkdtemp(prefix="gh-mqtt-")
os.chmod(T, 0o755)  # the broker, dropped to the mosquitto user, must reach its folder
DP1, DP2, IM1, GHOST = "0C1105A00001", "0C1105A00002", "0C1105A00003", "0C1105A000FF"




def gh(*args, stdin=None):
    r = subprocess.run([os.path.join(ROOT, BUILD, "gatehouse"), "--config", CONF] + list(args),
                       input=stdin, capture_output=True, text=True)
    return r


def db(sql, *params):
    return query(os.path.join(T, "site.db"), sql, *params)




class Daemon:
    def __init__(self):
        self.proc = None

    def start(self):
        self.log = open(os.path.join(T, "daemon.log"), "a")
        self.proc = subprocess.Popen(daemon_cmd(os.path.join(ROOT, BUILD, "gatehoused"), T) + ["--config", CONF],
                                     stdout=self.log, stderr=self.log)
        return wait(lambda: os.path.exists(os.path.join(T, "ctl.sock")), 10)

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(10 * SLOW)
        rc = self.proc.returncode if self.proc else None
        self.proc = None
        return rc


def log_has(text):
    with open(os.path.join(T, "daemon.log")) as f:
        return text in f.read()


broker = brokermod.Broker(os.path.join(T, "broker")).start()
with open(os.path.join(T, "mqtt.password"), "w") as f:
    f.write(broker.password + "\n")
os.chmod(os.path.join(T, "mqtt.password"), 0o600)
CONF = os.path.join(T, "gh.conf")
with open(CONF, "w") as f:
    f.write("[site]\nid = mqtt-test\n[storage]\ndb = site.db\n[drivers]\nprofiles_dir = %s/drivers/profiles\n"
            "[daemon]\ncontrol_socket = ctl.sock\nlog_level = debug\n[mqtt]\nhost = 127.0.0.1\nport = %d\n"
            "username = %s\npassword_file = mqtt.password\nmanage_accounts = true\n"
            % (ROOT, broker.port, broker.user))
daemon = Daemon()
devices = []
try:
    print("== mqtt: accounts through the dynamic-security plugin")
    gh("put", "settings", "-", stdin=json.dumps({"timezone": "Europe/Vienna",
                                                  "emergency": {"auto_unlock": True, "doors": "all", "notify": True}}))
    gh("put", "building", "-", stdin='{"id":"b1","name":"Block A"}')
    gh("put", "apartment", "-", stdin='{"id":"a101","building":"b1","apt":"101","floor":"3"}')
    pw = {}
    for mac, typ, name in ((DP1, 0, "Entrance"), (DP2, 0, "Garden gate"), (IM1, 2, "Monitor 101")):
        r = gh("device", "add", mac, "--type", str(typ), "--name", name)
        ok("device add %s issues an MQTT password" % mac, r.returncode == 0 and "mqtt_password" in r.stdout,
           r.stderr)
        pw[mac] = json.loads(r.stdout).get("mqtt_password", "") if r.returncode == 0 else ""
    gh("put", "device", "-", stdin=json.dumps({"id": DP1, "type": 0, "name": "Entrance", "area": "building",
                                                "building": "b1", "relays": [{"n": 1, "name": "Door"}]}))
    gh("put", "device", "-", stdin=json.dumps({"id": IM1, "type": 2, "name": "Monitor 101", "area": "apartment",
                                                "apartment": "a101", "works_offline": True}))
    gh("put", "person", "-", stdin='{"id":"p1","kind":"resident","apartment":"a101","first_name":"Anna",'
                                   '"last_name":"Berger","floors":["3","G0"]}')
    gh("put", "credential", "-", stdin='{"id":"c1","person":"p1","type":"pin","code":"1234"}')
    gh("put", "access_group", "-", stdin=json.dumps({"id": "g1", "name": "Block A", "building": "b1",
                                                      "relays": [{"device": DP1, "relay": 1}]}))
    ok("no password is stored in the database", not any(
        p and p in open(os.path.join(T, "site.db"), "rb").read().decode("latin-1") for p in pw.values()))

    print("== mqtt: the gateway on the broker")
    ok("gatehoused starts", daemon.start())
    d1 = Device(DP1, pw[DP1], broker.port).start()
    devices.append(d1)
    ok("a device logs in with its MAC and password", d1.connected)
    ok("the gateway's retained status reaches devices",
       d1.wait_for(lambda: d1.gw_status is not None and d1.gw_status.get("online") is True) and
       d1.gw_status.get("wan") == "standalone" and "version" in d1.gw_status, d1.gw_status)
    bad = Device(DP2, "wrong-password", broker.port).start(2)
    ok("a wrong password is refused", not bad.connected and bad.connect_rc not in (None, 0))
    bad.crash()

    print("== mqtt: presence")
    ok("device online from its retained status",
       wait(lambda: db("SELECT online, model, fw, ip FROM presence WHERE device=?", DP1) == [(1, "R29", "29.30.10.205", "192.0.2.20")]))
    st = json.loads(gh("status").stdout)
    ok("status counts online devices", st["devices"]["online"] == 1 and st["devices"]["total"] == 3, st["devices"])
    d2 = Device(DP2, pw[DP2], broker.port).start()
    wait(lambda: db("SELECT online FROM presence WHERE device=?", DP2) == [(1,)])
    d2.crash()
    ok("an unclean disconnect marks the device offline (last will)",
       wait(lambda: db("SELECT online FROM presence WHERE device=?", DP2) == [(0,)], 20))
    ok("online/offline changes are logged", log_has("device %s online" % DP2) and log_has("device %s offline" % DP2))

    print("== mqtt: access.check")
    r = d1.request("access.check", method="pin", code="1234", relay=1)
    ok("a resident's PIN is granted with relays, person and floors",
       r and r.get("ok") is True and r.get("granted") is True and r.get("relays") == [1]
       and r.get("person") == "Anna Berger" and r.get("floors") == ["3", "G0"], r)
    r = d1.request("access.check", method="pin", code="9999")
    ok("an unknown PIN is refused with its reason", r and r.get("ok") is True and r.get("granted") is False
       and r.get("reason") == "unknown_credential", r)
    ok("both decisions are in the door log",
       wait(lambda: db("SELECT count(*) FROM door_logs WHERE device=? AND method='pin'", DP1) == [(2,)]))
    r = d1.request("nonsense.op")
    ok("an unknown op gets an error response", r and r.get("ok") is False and r["error"]["code"] == "unknown_op", r)
    r = d1.request("access.check", method=5, code="1234")
    ok("wrong types get a bad_request error", r and r.get("ok") is False and r["error"]["code"] == "bad_request", r)
    d1.publish_raw("req", "this is not json")
    d1.publish_raw("req", json.dumps({"op": "access.check", "method": "pin", "code": "1234"}))
    d1.publish_raw("req", json.dumps({"rid": "big", "op": "access.check", "pad": "x" * (100 * 1024)}))
    d1.publish_raw("req", json.dumps([1, 2, 3]))
    d1.publish_raw("event", json.dumps({"id": "huge", "type": "door", "state": "open", "pad": "x" * 1000000}))
    ok("not JSON, no rid, over 64 KiB and non-objects are dropped with a log line",
       wait(lambda: log_has("dropped: not JSON") and log_has("dropped: rid must be") and log_has("over 64 KiB")
            and log_has("dropped: not a JSON object")))
    ok("a 1 MB event is dropped, not stored, not acked",
       wait(lambda: log_has("payload of 1000") and db("SELECT count(*) FROM device_events WHERE eid='huge'") == [(0,)])
       and "huge" not in d1.acked)
    d1.unacked.pop("huge", None)
    r = d1.request("access.check", method="pin", code="1234")
    ok("the gateway still answers after hostile input", r and r.get("granted") is True, r)

    print("== mqtt: events")
    ids = [d1.event("access", method="rf", code="A1B2", relay=1, result="granted"),
           d1.event("door", relay=1, state="open"),
           d1.event("call", call_id="c-1", phase="end", to="101", duration=12, opened=True),
           d1.event("alarm", kind="tamper", state="triggered"),
           d1.event("alarm", kind="motion", state="triggered")]
    ok("every event is acknowledged", d1.wait_for(lambda: not d1.unacked and all(i in d1.acked for i in ids)), d1.unacked)
    ok("events land in their logs",
       db("SELECT count(*) FROM door_logs WHERE event_id IN (?,?)", ids[0], ids[1]) == [(2,)]
       and db("SELECT count(*) FROM call_logs WHERE call_id='c-1'") == [(1,)]
       and db("SELECT count(*) FROM alarm_logs WHERE kind='tamper'") == [(1,)]
       and db("SELECT count(*) FROM detection_logs WHERE kind='motion'") == [(1,)])
    ok("and in the cloud outbox with idempotent ids",
       db("SELECT count(*) FROM outbox WHERE id LIKE ?", DP1 + ":%") == [(5,)])
    before = len(d1.acked)
    d1.event("door", id=ids[1], relay=1, state="open")
    ok("a repeated event id is acknowledged again", d1.wait_for(lambda: len(d1.acked) > before))
    ok("and stored once", db("SELECT count(*) FROM outbox WHERE id=?", DP1 + ":" + ids[1]) == [(1,)]
       and db("SELECT count(*) FROM door_logs WHERE event_id=?", ids[1]) == [(1,)])
    old = int(time.time()) - 5 * 86400
    eid = d1.event("door", relay=1, state="closed", ts=old)
    d1.wait_for(lambda: eid in d1.acked)
    row = db("SELECT ts, data FROM outbox WHERE id=?", DP1 + ":" + eid)
    ok("an implausible device time is replaced, the original kept",
       row and abs(row[0][0] - time.time()) < 60 and json.loads(row[0][1]).get("device_ts") == old, row)
    n = len(d1.acked)
    d1.publish_raw("event", json.dumps({"type": "door", "state": "open"}))
    d1.publish_raw("event", json.dumps({"id": "x1", "type": "teleport"}))
    d1.publish_raw("event", json.dumps({"id": "x2", "type": "access"}))
    time.sleep(0.3 * SLOW)
    ok("malformed events are dropped unacknowledged", len(d1.acked) == n and log_has("type must be access"))
    ghost = Device(GHOST, "nope", broker.port)
    ok("an unknown MAC cannot even log in", not ghost.start(2).connected)
    ghost.crash()

    print("== mqtt: ACLs")
    d2 = Device(DP2, pw[DP2], broker.port).start()
    devices.append(d2)
    wait(lambda: db("SELECT online FROM presence WHERE device=?", DP2) == [(1,)])
    d2.client.publish("gatehouse/v1/dev/%s/event" % DP1, json.dumps(
        {"id": "forged", "type": "door", "state": "open"}), qos=1)
    time.sleep(0.5 * SLOW)
    ok("a device cannot publish under another MAC", db("SELECT count(*) FROM device_events WHERE eid='forged'") == [(0,)])
    d2.suback = None
    d2.client.subscribe("gatehouse/v1/dev/%s/resp" % DP1, 1)
    d2.wait_for(lambda: d2.suback is not None)
    ok("nor subscribe to another device's topics", d2.suback and d2.suback[0] == 128, d2.suback)

    print("== mqtt: emergency and commands")
    im = Device(IM1, pw[IM1], broker.port).start()
    devices.append(im)
    wait(lambda: db("SELECT online FROM presence WHERE device=?", IM1) == [(1,)])
    d1.event("alarm", kind="emergency", state="triggered")
    ok("an emergency alarm holds the door phones open",
       d1.wait_for(lambda: any(c.get("op") == "emergency" and c.get("state") == "on" for c in d1.commands)))
    ok("and notifies the indoor monitors",
       im.wait_for(lambda: any(c.get("op") == "emergency" for c in im.commands)))
    ok("the emergency shows in the status", json.loads(gh("status").stdout).get("emergency") is True)
    ok("commands are acknowledged", wait(lambda: db("SELECT count(*) FROM commands WHERE state='acked'")[0][0] >= 2))

    r = gh("device", "command", DP1, "autop", '{"commands":["a=1","b=2","a=1"],"once":true}')
    ok("an AutoP command reaches the device without duplicates", r.returncode == 0 and d1.wait_for(
        lambda: any(c.get("op") == "autop" and c.get("commands") == ["a=1", "b=2"] and c.get("once") is True
                    for c in d1.commands)), r.stdout + r.stderr)
    r = gh("device", "command", "all", "reboot")
    ok("a batch command to every device", r.returncode == 0 and d1.wait_for(
        lambda: any(c.get("op") == "reboot" for c in d1.commands)) and len(json.loads(r.stdout)["commands"]) == 3, r.stdout)
    r = gh("relay", "open", DP1, "1")
    ok("a remote open of a door phone relay is a relay.open command",
       r.returncode == 0 and d1.wait_for(lambda: any(c.get("op") == "relay.open" and c.get("relay") == 1
                                                     for c in d1.commands)), r.stdout + r.stderr)
    r = gh("device", "command", GHOST, "reboot")
    ok("commands to unknown devices are refused", r.returncode != 0 and "registered" in r.stdout, r.stdout)
    r = gh("device", "command", DP1, "selfdestruct")
    ok("unknown commands are refused", r.returncode != 0, r.stdout)

    print("== mqtt: call.route")
    gh("put", "person", "-", stdin='{"id":"p1","kind":"resident","apartment":"a101","first_name":"Anna",'
                                   '"last_name":"Berger","floors":["3","G0"],"landlines":["+43 1 555 0101"],'
                                   '"app_account":"anna@app"}')
    r = d1.request("call.route", to="101")
    ok("call type 0: the online monitor, apps left out while standalone",
       r and r.get("ok") and r.get("mode") == "group" and
       [t["kind"] for t in r["targets"]] == ["indoor_monitor"] and r["targets"][0]["mac"] == IM1
       and r["targets"][0]["ip"] == "192.0.2.20" and "transfer_via" not in r, r)
    gh("put", "apartment", "-", stdin='{"id":"a101","building":"b1","apt":"101","floor":"3","call_type":5}')
    r = d1.request("call.route", to="101")
    ok("call type 5: monitors, then the landline (in order)",
       r and r.get("mode") == "sequence" and [t["kind"] for t in r["targets"]] == ["indoor_monitor", "landline"]
       and r["targets"][1]["number"] == "+43 1 555 0101", r)
    gh("put", "device", "-", stdin=json.dumps({"id": DP2, "type": 0, "name": "Garden gate", "internet": False,
                                                "ip": "192.0.2.30", "relays": [{"n": 1}]}))
    r = d2.request("call.route", to="101")
    ok("a door phone without internet transfers through the works-offline monitor",
       r and r.get("transfer_via", {}).get("mac") == IM1, r)
    r = d1.request("call.route", to="999")
    ok("an unknown APT is an error", r and r.get("ok") is False and r["error"]["code"] == "unknown_apartment", r)
    r = d1.request("call.route", to="guard")
    ok("no guard phone online: no targets", r and r.get("ok") is True and r.get("targets") == [], r)
    im.crash()
    wait(lambda: db("SELECT online FROM presence WHERE device=?", IM1) == [(0,)], 20)
    r = d1.request("call.route", to="101")
    ok("an offline monitor is skipped", r and [t["kind"] for t in r["targets"]] == ["landline"], r)
    gh("device", "command", IM1, "message", '{"title":"Water","body":"Off 9-11"}')
    ok("a command to an offline device stays pending",
       wait(lambda: db("SELECT state FROM commands WHERE device=? AND op='message'", IM1) == [("pending",)]))

    print("== mqtt: sync.pull")
    ok("devices are told to sync.pull when the site changed",
       d1.wait_for(lambda: any(c.get("op") == "sync.notify" and isinstance(c.get("rev"), int) for c in d1.commands), 5))
    r = d1.request("sync.pull", rev=0)
    kinds = sorted((u["kind"], u["id"]) for u in (r or {}).get("upserts", []))
    ok("a first pull is full: the PINs of people allowed on its relays and its directory",
       r and r.get("ok") and r.get("full") is True and r.get("more") is False
       and ("credential", "c1") in kinds and ("contact", "a101") in kinds, r)
    ok("credentials carry what a device needs",
       any(u.get("code") == "1234" and u.get("name") == "Anna Berger" and u.get("apt") == "101"
           for u in r["upserts"]), r)
    rev = r["rev"]
    r = d1.request("sync.pull", rev=rev)
    ok("nothing changed: an empty delta", r and r["full"] is False and r["upserts"] == [] and r["deletes"] == [], r)
    gh("put", "credential", "-", stdin='{"id":"c2","person":"p1","type":"rf","code":"AB12CD"}')
    r = d1.request("sync.pull", rev=r["rev"])
    ok("a new card arrives as one upsert", r and [u["id"] for u in r["upserts"]] == ["c2"], r)
    gh("put", "credential", "-", stdin='[{"id":"c3","person":"p1","type":"uhf","code":"E200AA"},'
                                       '{"id":"c4","person":"p1","type":"plate","code":"W-1 AB"}]')
    r = d1.request("sync.pull", rev=r["rev"])
    ok("UHF instead of plate", r and [u["id"] for u in r["upserts"]] == ["c3"], r)
    gh("put", "device", "-", stdin=json.dumps({"id": DP1, "type": 0, "name": "Entrance", "area": "building",
                                                "building": "b1", "relays": [{"n": 1, "name": "Door", "methods": ["pin"]}]}))
    r = d1.request("sync.pull", rev=r["rev"])
    ok("a PIN-only relay: the RF and UHF cards are taken back", r and sorted(r["deletes"]) == ["c2", "c3"], r)
    gh("delete", "credential", "c1")
    r = d1.request("sync.pull", rev=r["rev"])
    ok("a deleted PIN is deleted on the device", r and r["deletes"] == ["c1"], r)
    r2 = d1.request("sync.pull", rev=9999)
    ok("an unknown rev starts over (full)", r2 and r2["full"] is True and not r2["deletes"], r2)
    gh("put", "device", "-", stdin=json.dumps({"id": DP1, "type": 0, "name": "Entrance", "area": "building",
                                                "building": "b1", "relays": [{"n": 1, "name": "Door"}]}))
    gh("put", "credential", "-", stdin=json.dumps([{"id": "rf%03d" % i, "person": "p1", "type": "rf",
                                                     "code": "F%05d" % i} for i in range(600)]))
    r = d1.request("sync.pull", rev=r2["rev"])
    r3 = d1.request("sync.pull", rev=r["rev"]) if r else None
    ok("large deltas come in pages", r and r["more"] is True and len(r["upserts"]) == 500 and r3 and
       r3["more"] is False and len(r3["upserts"]) >= 100, (r and len(r["upserts"]), r3 and len(r3["upserts"])))
    gh("put", "credential", "-", stdin='{"id":"c1","person":"p1","type":"pin","code":"1234"}')
    r = d1.request("sync.pull", rev=5, timeout=5)
    ok("sync.pull rejects a bad rev type", (d1.request("sync.pull", rev="x") or {}).get("ok") is False)

    print("== mqtt: crash and restart")
    d1.stop()
    wait(lambda: db("SELECT online FROM presence WHERE device=?", DP1) == [(0,)])
    rc = daemon.stop(signal.SIGKILL)
    ok("kill -9 the daemon", rc == -9)
    sent = [d2.event("access", method="rf", code="K%d" % i, relay=1, result="denied") for i in range(50)]
    time.sleep(0.5 * SLOW)
    ok("no ack while the daemon is down", not any(i in d2.acked for i in sent))
    stale = d2.request("access.check", timeout=0.5, method="pin", code="1234", relay=1)
    ok("an access.check while the daemon is down gets no answer", stale is None, stale)
    logs_before = db("SELECT count(*) FROM door_logs WHERE device=? AND method='pin'", DP2)[0][0]
    ok("the daemon restarts", daemon.start())
    ok("every event sent while it was down arrives (broker session, device resend)",
       d2.wait_for(lambda: not d2.unacked, 15), len(d2.unacked))
    ok("each stored exactly once", db("SELECT count(*) FROM device_events WHERE device=?", DP2)[0][0] == 50 and
       db("SELECT count(*) FROM outbox WHERE device=?", DP2)[0][0] == 50)
    ok("and the request made while it was down is not decided late: no door opens for it",
       db("SELECT count(*) FROM door_logs WHERE device=? AND method='pin'", DP2)[0][0] == logs_before,
       db("SELECT count(*) FROM door_logs WHERE device=? AND method='pin'", DP2)[0][0] - logs_before)
    burst = [d2.event("door", relay=1, state="open") for _ in range(300)]
    time.sleep(0.05)
    daemon.stop(signal.SIGKILL)
    daemon.start()
    ok("kill -9 mid-stream: every event acked in the end", d2.wait_for(lambda: not d2.unacked, 20), len(d2.unacked))
    stored = db("SELECT count(*) FROM device_events WHERE device=?", DP2)[0][0]
    ok("none lost, none duplicated", stored == 350 and
       db("SELECT count(*) FROM outbox WHERE device=?", DP2)[0][0] == 350, stored)

    broker.restart()
    ok("the broker restart is survived: the gateway reconnects and answers",
       wait(lambda: (d2.request("access.check", timeout=1, method="pin", code="1234") or {}).get("ok") is True, 20))
    ok("the reconnect is logged", log_has("connected to 127.0.0.1:%d" % broker.port))

    ok("and expires without an ack",
       wait(lambda: db("SELECT state FROM commands WHERE device=? AND op='message'", IM1) == [("expired",)], 15),
       db("SELECT state FROM commands WHERE device=? AND op='message'", IM1))

    print("== mqtt: removing a device removes its account")
    d2.stop()
    r = gh("delete", "device", DP2)
    again = Device(DP2, pw[DP2], broker.port).start(2)
    ok("the deleted device can no longer log in", r.returncode == 0 and not again.connected, r.stderr)
    again.crash()
    rc = daemon.stop()
    ok("SIGTERM stops the daemon cleanly", rc == 0)
    late = Device(IM1, pw[IM1], broker.port).start()
    devices.append(late)
    ok("and its retained status says offline",
       late.wait_for(lambda: late.gw_status is not None) and late.gw_status.get("online") is False, late.gw_status)
finally:
    for d in devices:
        try:
            d.crash()
        except Exception:
            pass
    daemon.stop(signal.SIGKILL)
    broker.stop()
    valgrind_check(T, "mqtt")
    if counts["failed"]:
        print("  (logs kept in %s)" % T)
    else:
        shutil.rmtree(T, ignore_errors=True)

print("mqtt: %d passed, %d failed" % (counts["passed"], counts["failed"]))
sys.exit(1 if counts["failed"] else 0)
