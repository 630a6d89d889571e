#!/usr/bin/env python3
"""A whole site across the issues, end to end, with the WAN down: the cloud
(simulator, HTTPS) pairs the box and gives it the site; then the cloud goes
away and a door phone's PIN over MQTT (the real mosquitto) opens a door whose
lock hangs on an MK485 relay board over Modbus RTU (modbus_sim on a socat
pseudo-terminal pair); a wrong PIN does not; an indoor monitor's emergency
holds the board's door open; a call is routed to the apartment's monitor and
not to the resident's app (no WAN); the daemon is killed -9 in the middle.
When the WAN returns every decision and device event reaches the cloud, once.
Last, 500 requests a second for 8 s (bench/loadgen): the WAL stays small.
Prints "site: N passed, N failed"; exits 1 on any failure.

usage: tests/site/run.py [BUILD_DIR]   (run from the repository root)
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.getcwd()
sys.path.insert(0, os.path.join(ROOT, "tests", "sim"))
import broker as brokermod  # noqa: E402
from cloudsim import CloudSim  # noqa: E402
from devsim import Device  # noqa: E402
from testlib import SLOW, counts, daemon_cmd, ok, query, stop_proc, valgrind_check, wait  # noqa: E402

BUILD = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("GH_BUILD", "build")
T = tempfile.mkdtemp(prefix="gh-site-")
os.chmod(T, 0o755)
SITE, TOKEN = "site-e2e", "site-e2e-token"
DP, IM = "0C11050E0001", "0C11050E0002"
PIN, WRONG = "2468", "1111"
COIL = 2  # MK485 channel 3: coil base 0


class Board:
    """modbus_sim serving an MK485 on the far end of a pty pair; its coil
    writes as (coil, value), in order."""

    def __init__(self, tty):
        self.writes = []
        self.ready = threading.Event()
        self.proc = subprocess.Popen([os.path.join(ROOT, BUILD, "sim", "modbus_sim"), "--profile",
                                      os.path.join(ROOT, "drivers", "profiles", "MK485-G2R-8J8C.ini"), "--rtu", tty],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        threading.Thread(target=self._read, daemon=True).start()
        self.ready.wait(5)

    def _read(self):
        for line in self.proc.stdout:
            f = line.split()
            if len(f) >= 2 and f[1] == "ready":
                self.ready.set()
            elif len(f) == 4 and f[1] == "coil":
                self.writes.append((int(f[2]), int(f[3])))

    def coil(self, since=0):
        return [v for (a, v) in self.writes[since:] if a == COIL]


def gh(*args, stdin=None):
    return subprocess.run([os.path.join(ROOT, BUILD, "gatehouse"), "--config", CONF] + list(args),
                          input=stdin, capture_output=True, text=True)


def status():
    try:
        return json.loads(gh("status", "--json").stdout)
    except ValueError:
        return {}


def db(sql, *params):
    return query(os.path.join(T, "site.db"), sql, *params)


class Daemon:
    def __init__(self):
        self.proc = None

    def start(self):
        sock = os.path.join(T, "ctl.sock")
        if os.path.exists(sock):
            os.unlink(sock)
        log = open(os.path.join(T, "daemon.log"), "a")
        self.proc = subprocess.Popen(daemon_cmd(os.path.join(ROOT, BUILD, "gatehoused"), T) + ["--config", CONF],
                                     stdout=log, stderr=log)
        return wait(lambda: os.path.exists(sock), 10)

    def stop(self, sig=signal.SIGTERM):
        stop_proc(self.proc, sig, 15)
        self.proc = None


broker = brokermod.Broker(os.path.join(T, "broker")).start()
cloud = CloudSim(os.path.join(T, "cloud"), SITE, TOKEN)
CONF = os.path.join(T, "gh.conf")
daemon = Daemon()
devices, procs = [], []
board = None
rc = 1
try:
    print("== site: paired with the cloud, a board on RS485, door phone and monitor on MQTT")
    cloud.start()
    socat = subprocess.Popen(["socat", "pty,raw,echo=0,link=%s/ttyGW" % T, "pty,raw,echo=0,link=%s/ttyBOARD" % T],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs.append(socat)
    wait(lambda: os.path.exists(T + "/ttyGW") and os.path.exists(T + "/ttyBOARD"))
    board = Board(T + "/ttyBOARD")
    ok("the MK485 simulator is ready on the pty", board.ready.is_set())

    cloud.upsert("settings", "site", {"timezone": "Europe/Vienna", "relay_hold_ms": 500,
                                      "emergency": {"auto_unlock": True, "doors": "all", "notify": True}})
    cloud.upsert("building", "b1", {"name": "Block A"})
    cloud.upsert("apartment", "a101", {"building": "b1", "apt": "101", "floor": "1"})
    cloud.upsert("mac", DP, {})
    cloud.upsert("mac", IM, {})
    cloud.upsert("relay_board", "mk1", {"profile": "MK485-G2R-8J8C", "mode": "rs485", "bus": T + "/ttyGW",
                                        "channels": [{"channel": 3, "name": "Main door", "function": "door"}]})
    cloud.upsert("device", DP, {"type": 0, "name": "Entrance", "area": "building", "building": "b1",
                                "relays": [{"n": 1, "name": "Main door", "board": {"board": "mk1", "channel": 3}}]})
    cloud.upsert("device", IM, {"type": 2, "name": "Monitor 101", "area": "apartment", "apartment": "a101"})
    cloud.upsert("person", "p1", {"kind": "resident", "apartment": "a101", "first_name": "Anna",
                                  "app_account": "anna@app"})
    cloud.upsert("credential", "c1", {"person": "p1", "type": "pin", "code": PIN})
    rev = cloud.upsert("access_group", "g1", {"name": "Block A", "building": "b1",
                                               "relays": [{"device": DP, "relay": 1}]})

    with open(T + "/mqtt.password", "w") as f:
        f.write(broker.password + "\n")
    with open(T + "/cloud.token", "w") as f:
        f.write(TOKEN + "\n")
    os.chmod(T + "/mqtt.password", 0o600)
    os.chmod(T + "/cloud.token", 0o600)
    with open(CONF, "w") as f:
        f.write("[site]\nid = %s\n[storage]\ndb = site.db\n[drivers]\nprofiles_dir = %s/drivers/profiles\n"
                "[daemon]\ncontrol_socket = ctl.sock\nlog_level = debug\n[mqtt]\nhost = 127.0.0.1\nport = %d\n"
                "username = %s\npassword_file = %s/mqtt.password\nmanage_accounts = true\n"
                "[cloud]\nurl = %s\ntoken_file = %s/cloud.token\nca_file = %s\nbackoff_min_ms = 100\n"
                "backoff_max_ms = 1000\n" % (SITE, ROOT, broker.port, broker.user, T, cloud.url, T, cloud.ca))
    ok("the daemon starts", daemon.start())
    ok("it pulls the site from the cloud over HTTPS",
       wait(lambda: (status().get("cloud") or {}).get("rev") == rev, 20), status().get("cloud"))
    ok("the board comes online over RTU",
       wait(lambda: any(b.get("id") == "mk1" and b.get("online") for b in status().get("boards", [])), 15),
       status().get("boards"))
    pw = {}
    for mac in (DP, IM):
        r = gh("device", "passwd", mac)
        pw[mac] = r.stdout.split()[-1] if r.returncode == 0 and r.stdout.split() else ""
    dp = Device(DP, pw[DP], broker.port).start()
    im = Device(IM, pw[IM], broker.port).start()
    devices += [dp, im]
    ok("the door phone and the monitor connect with their own accounts", dp.connected and im.connected)
    ok("both are online", wait(lambda: db("SELECT count(*) FROM presence WHERE online = 1")[0][0] == 2, 10))

    r = dp.request("call.route", to="101") or {}
    ok("with the WAN up a call to 101 rings the monitor and the resident's app",
       sorted(t.get("kind") for t in r.get("targets", [])) == ["app", "indoor_monitor"], r)

    print("== site: the WAN goes down")
    cloud.fail("refuse")
    ok("the box says so", wait(lambda: status().get("wan") == "down", 15), status().get("wan"))
    ok("and tells the devices", dp.wait_for(lambda: (dp.gw_status or {}).get("wan") == "down", 10), dp.gw_status)

    n0 = len(board.writes)
    r = dp.request("access.check", method="pin", code=PIN, relay=1) or {}
    ok("the resident's PIN at the door phone: granted from local state",
       r.get("ok") is True and r.get("granted") is True, r)
    ok("the MK485 relay of the door goes on over RS485", wait(lambda: 1 in board.coil(n0), 5), board.writes[n0:])
    ok("and off again after the hold time", wait(lambda: board.coil(n0)[-1:] == [0] and 1 in board.coil(n0), 5),
       board.writes[n0:])
    dp.event("door", relay=1, state="open")
    ok("the door phone's door event is acked", dp.wait_for(lambda: not dp.unacked, 10), dp.unacked)

    n1 = len(board.writes)
    r = dp.request("access.check", method="pin", code=WRONG, relay=1) or {}
    ok("a wrong PIN: refused with its reason", r.get("ok") is True and r.get("granted") is False
       and r.get("reason") == "unknown_credential", r)
    time.sleep(1.0 * SLOW)  # a relay that would switch does so within a bus poll
    ok("and the relay stays off", board.coil(n1) == [], board.writes[n1:])

    r = dp.request("call.route", to="101")
    kinds = [t.get("kind") for t in (r or {}).get("targets", [])]
    ok("a call to 101 rings the monitor, not the resident's app (no WAN)",
       r and r.get("ok") is True and kinds == ["indoor_monitor"] and r["targets"][0].get("mac") == IM, r)

    print("== site: kill -9 while the WAN is down")
    dp.event("call", call_id="c-1", phase="start", to="101")
    ok("an event acked before the kill", dp.wait_for(lambda: not dp.unacked, 10), dp.unacked)
    daemon.stop(signal.SIGKILL)
    ok("the daemon starts again", daemon.start())
    ok("the board is back online", wait(lambda: any(b.get("id") == "mk1" and b.get("online")
                                                     for b in status().get("boards", [])), 15))
    n3 = len(board.writes)
    r = {}
    for _ in range(20):  # the door phone's request waits for the daemon's subscription
        r = dp.request("access.check", method="pin", code=PIN, relay=1, timeout=1.0) or {}
        if r:
            break
    ok("the door phone's PIN opens the door again", r.get("granted") is True and
       wait(lambda: 1 in board.coil(n3), 5) and wait(lambda: board.coil(n3)[-1:] == [0], 5), (r, board.writes[n3:]))

    n2 = len(board.writes)
    im.event("alarm", kind="emergency", state="triggered")
    ok("the monitor's emergency alarm holds the board's door open",
       wait(lambda: 1 in board.coil(n2), 5) and status().get("emergency") is True, board.writes[n2:])
    ok("the door phone is told to open its doors", dp.wait_for(
        lambda: any(c.get("op") == "emergency" and c.get("state") == "on" for c in dp.commands), 10), dp.commands)
    time.sleep(1.5 * SLOW)  # longer than the 0.5 s hold: a pulse would have ended
    ok("the door stays open (held, not pulsed)", board.coil(n2)[-1:] == [1], board.writes[n2:])
    gh("emergency", "off")
    ok("the emergency ends: the door closes", wait(lambda: board.coil(n2)[-1:] == [0], 5), board.writes[n2:])

    print("== site: the WAN comes back")
    cloud.clear()
    ok("the box says so", wait(lambda: status().get("wan") == "up", 20), status().get("wan"))

    def cloud_ids():
        return [e["id"] for e in cloud.events()]
    ok("the outbox drains", wait(lambda: db("SELECT count(*) FROM outbox")[0][0] == 0, 20),
       db("SELECT id, state FROM outbox"))
    ids = cloud_ids()
    dev = [i for i in ids if i.startswith(DP + ":") or i.startswith(IM + ":")]
    gw = [e for e in cloud.events() if e["id"].startswith("gw:door:")]
    ok("the door phone's and the monitor's events arrive, each once",
       len(dev) == len(set(dev)) and len(dev) >= 3, dev)
    ok("so do the box's own decisions: the granted and the refused PIN, once each",
       any(e["data"].get("result") == "success" for e in gw) and
       any(e["data"].get("result") != "success" for e in gw) and
       len(gw) == len(set(e["id"] for e in gw)), [(e["id"], e["data"].get("result")) for e in gw])
    ok("and the daemon never crashed", daemon.proc.poll() is None)

    print("== site: sustained load (500 requests/s for 8 s): the WAL stays small")
    # every checkpoint overlaps a commit at this rate; without the loop's
    # hold the WAL never restarts and grows ~6 MB/s
    dp.stop()
    with open(T + "/devices.txt", "w") as f:
        f.write("%s %s\n" % (DP, pw[DP]))
    with open(T + "/plan.txt", "w") as f:
        f.write("".join("%s %s\n" % (DP, WRONG) for _ in range(4000)))
    wal, stop_sampling = [0], threading.Event()

    def sample():
        while not stop_sampling.is_set():
            try:
                wal[0] = max(wal[0], os.path.getsize(T + "/site.db-wal"))
            except OSError:
                pass
            time.sleep(0.1)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    r = subprocess.run([os.path.join(ROOT, BUILD, "bench", "loadgen"), "--port", str(broker.port), "--devices",
                        T + "/devices.txt", "--plan", T + "/plan.txt", "--rate", "500", "--warmup", "0",
                        "--out", T + "/loadgen.out", "--settle-ms", "0"],
                       capture_output=True, text=True, timeout=120 * SLOW)
    stop_sampling.set()
    sampler.join()
    lg = {}
    for line in r.stdout.splitlines():
        if line.startswith("LOADGEN_JSON "):
            lg = json.loads(line[len("LOADGEN_JSON "):])
    ok("the load is answered", lg.get("answered", 0) > 0, r.stdout[-300:] + r.stderr[-300:])
    ok("the WAL stayed under 16 MB (max %.1f MB)" % (wal[0] / 1048576.0), 0 < wal[0] < 16 << 20, wal[0])
    ok("every answered request is a door log (unknown_credential)", wait(
        lambda: db("SELECT count(*) FROM door_logs WHERE reason = 'unknown_credential'")[0][0] >= lg.get("answered", 1),
        10), (lg, db("SELECT count(*) FROM door_logs WHERE reason = 'unknown_credential'")))
    rc = 0 if counts["failed"] == 0 else 1
finally:
    for d in devices:
        try:
            d.stop()
        except Exception:  # noqa: BLE001
            pass
    daemon.stop()
    valgrind_check(T, "site")
    if board:
        stop_proc(board.proc)
    for p in procs:
        stop_proc(p)
    try:
        cloud.stop()
    except Exception:  # noqa: BLE001
        pass
    broker.stop()
    if counts["failed"] == 0 and rc == 0:
        shutil.rmtree(T, ignore_errors=True)
    else:
        rc = 1
        print("logs kept in %s" % T)
    print("site: %d passed, %d failed" % (counts["passed"], counts["failed"]))
sys.exit(rc)
