#!/usr/bin/python3
"""The soak (issue 8): gatehoused for N minutes at a realistic site's load,
sampled every 10 s; flat memory and file descriptors mean no leak.

The site (seeded through the CLI, `gatehouse put KIND FILE.json`): 10
buildings of 46 apartments, 500 devices (4 door phones and 46 indoor monitors
per building), ~900 residents with PINs and RF cards, one default access group
per building plus caretakers on a weekly schedule, and 20 boards over Modbus
TCP (per building an HF-8000 whose 4 channels are the door phones' second
relays, and a LIFT-16 for the floors), each served by its own modbus_sim.
Around it, all on loopback: the real mosquitto broker (device accounts made
in one dynamic-security control message, with one shared role: the ACLs are
tested in tests/mqtt), the cloud simulator over HTTPS whose `refuse` fault
is toggled every 2 minutes (WAN flapping; up for the last 2.5 minutes), and
the web server with one dashboard websocket attached and GET /api/v1/status
every 30 s.

Load: 5 access events/s (access.check requests from random door phones with
valid, invalid and foreign PINs and RF cards; device `access` and `door`
events), 1 call a minute per building (call.route plus the call's start,
answered and end events), an alarm every 45 s (triggered, cleared later), a
sync.pull every 30 s.

Every 10 s: the daemon's VmRSS, VmHWM, RssAnon, fds, threads, CPU % since the
last sample, site.db and -wal size, outbox depth, requests answered/failed,
events acked/unacked. Written to BUILD/soak/report.csv and report.md with a
verdict (see VERDICT below); exit 1 when it fails.

usage: tests/soak/run.py [--build DIR] [--minutes N] [--keep]
       (run from the repository root; make soak SOAK_MINUTES=N)
"""
import argparse
import heapq
import http.client
import json
import os
import random
import re
import shutil
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid

ROOT = os.getcwd()
sys.path.insert(0, os.path.join(ROOT, "tests", "sim"))
import broker as brokermod  # noqa: E402
from cloudsim import CloudSim  # noqa: E402
from devsim import Device  # noqa: E402
from testlib import WSClient, free_port, stop_proc, wait  # noqa: E402

import paho.mqtt.client as mqtt  # noqa: E402

SITE, TOKEN = "soak-site", "soak-cloud-token"
BUILDINGS, PHONES, APTS = 10, 4, 46          # 10 x (4 + 46) = 500 devices
SAMPLE_S = 10.0
ACCESS_PER_S = 5.0
CALL_EVERY_S = 60.0                          # per building
ALARM_EVERY_S = 45.0
SYNC_EVERY_S = 30.0
STATUS_EVERY_S = 30.0
WAN_FLIP_S = 120.0
WAN_UP_AT_END_S = 150.0                      # the last outage ends this long before the end
REQ_TIMEOUT_S = 10.0
SETTLE_S = 180.0                             # after the load: acks, answers, outbox drain
WARMUP = 0.2
# The verdict's bounds. RSS: the least-squares slope of VmRSS after the
# warm-up, extrapolated to a day, under 10 MB/day. The smallest leak an
# access event can make, one unfreed malloc chunk (32 bytes with glibc's
# header), is 13.8 MB/day at 5 events/s (432,000 a day): any per-event leak
# fails. A tighter bound would fail on noise: RSS moves when a code path
# first touches more heap (the first WAN outage's backlog took 60 KB in a
# 5-minute run), and one 60 KB step in the middle of a 24-minute window
# reads as 5.4 MB/day (least squares: 1.5 x step / window). fds: within
# +-5 of their median (a few sockets come and go with the cloud link).
RSS_MB_PER_DAY = 10.0
# SQLite's page cache (12 MB by default) is larger than this site's 4-9 MB
# database: it would grow with every new page of the logs for the whole run
# (bounded, not a leak: +0.4 MB in 24 min read as 18.7 MB/day). 1 MB fills
# during the warm-up, so what still grows after it is the daemon's own.
SOAK_CACHE_KB = 1024
FD_BAND = 5
# The WAL: the checkpointer copies it into site.db every second and the next
# commit restarts it, so it stays about as large as a second's commits.
# 32 MB is about 3 minutes of this load's WAL traffic with no checkpoint.
WAL_MAX_MB = 32

stopping = threading.Event()


def log(msg):
    print("soak %s  %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


# ---------------------------------------------------------------- the site

def make_site(seed_dir, board_ports, rnd):
    """One JSON file per entity kind; returns the facts the load needs."""
    ents = {k: [] for k in ("settings", "mac", "building", "apartment", "relay_board", "device", "person",
                            "credential", "access_group")}
    ents["settings"] = {"kind": "community", "name": "Soak Gardens", "address": "Testweg 1, 1010 Wien",
                        "timezone": "Europe/Vienna", "pin_mode": "pin", "access_permission": "public_private",
                        "emergency": {"auto_unlock": True, "doors": "all", "notify": True}}
    site = {"phones": [], "monitors": [], "apts": {}, "pins": {}, "rfs": {}, "staff_pins": [],
            "building_of": {}}
    used = set()

    def code(digits):
        while True:
            c = str(rnd.randint(10 ** (digits - 1), 9 * 10 ** (digits - 1) - 1))  # a PIN never starts with 9
            if c not in used:
                used.add(c)
                return c
    np = 0
    for b in range(1, BUILDINGS + 1):
        bid = "bldg-%02d" % b
        ents["building"].append({"id": bid, "name": "House %d" % b, "ground_floor": "G0", "floor_start": 1})
        door_board, lift_board = "doors-%02d" % b, "lift-%02d" % b
        ents["relay_board"].append({"id": door_board, "name": "House %d doors" % b, "profile": "HF-8000",
                                    "mode": "ethernet", "bus": "127.0.0.1:%d" % board_ports[door_board],
                                    "channels": [{"channel": c, "name": "Side door %d" % c, "function": "door"}
                                                 for c in range(1, 5)]})
        floors = sorted({1 + i // 4 for i in range(APTS)})
        ents["relay_board"].append({"id": lift_board, "name": "House %d lift" % b, "profile": "LIFT-16",
                                    "mode": "ethernet", "bus": "127.0.0.1:%d" % board_ports[lift_board],
                                    "building": bid,
                                    "channels": [{"channel": 1, "floor": "G0", "function": "lift_floor"}] +
                                                [{"channel": f + 1, "floor": str(f), "function": "lift_floor"}
                                                 for f in floors]})
        phones = []
        for k in range(1, PHONES + 1):
            mac = "0C11%02X%06X" % (0x50 + b, k)
            phones.append(mac)
            ents["mac"].append({"id": mac})
            ents["device"].append({"id": mac, "type": 0, "name": "House %d door %d" % (b, k), "area": "building",
                                   "building": bid, "ip": "10.%d.0.%d" % (b, k),
                                   "relays": [{"n": 1, "name": "Door"},
                                              {"n": 2, "name": "Side door",
                                               "board": {"board": door_board, "channel": k}}]})
            site["phones"].append(mac)
            site["building_of"][mac] = bid
        ents["access_group"].append({"id": "default-%02d" % b, "name": "House %d residents" % b, "building": bid,
                                     "relays": [{"device": m, "relay": r} for m in phones for r in (1, 2)]})
        site["apts"][bid] = []
        for i in range(APTS):
            floor = 1 + i // 4
            apt = "%d%02d" % (floor, i % 4 + 1)
            aid = "apt-%02d-%s" % (b, apt)
            ents["apartment"].append({"id": aid, "building": bid, "apt": apt, "floor": str(floor),
                                      "name": "Apartment %s" % apt, "call_type": 3})
            mon = "0C11%02X%06X" % (0x70 + b, 0x100 + i)
            ents["mac"].append({"id": mon})
            ents["device"].append({"id": mon, "type": 2, "name": "Monitor %d/%s" % (b, apt), "area": "apartment",
                                   "apartment": aid, "works_offline": True, "ip": "10.%d.1.%d" % (b, i + 1)})
            site["monitors"].append(mon)
            site["building_of"][mon] = bid
            site["apts"][bid].append((apt, mon))
            for k in range(rnd.choice((1, 2, 2, 3))):
                np += 1
                pid = "person-%04d" % np
                ents["person"].append({"id": pid, "kind": "resident" if k == 0 else "family", "apartment": aid,
                                       "first_name": "Resident%d" % np, "last_name": "House%d" % b,
                                       "floors": [str(floor), "G0"]})
                pin, rf = code(6), "%08X" % rnd.getrandbits(32)
                ents["credential"].append({"id": "pin-%04d" % np, "person": pid, "type": "pin", "code": pin})
                ents["credential"].append({"id": "rf-%04d" % np, "person": pid, "type": "rf", "code": rf})
                site["pins"][pin] = bid
                site["rfs"][rf] = bid
    for s in range(1, 6):
        ents["person"].append({"id": "staff-%d" % s, "kind": "pm_staff", "first_name": "Caretaker%d" % s,
                               "last_name": "Soak", "floors": ["all"]})
        pin = code(5)
        ents["credential"].append({"id": "pin-staff-%d" % s, "person": "staff-%d" % s, "type": "pin", "code": pin})
        site["staff_pins"].append(pin)
    ents["access_group"].append({"id": "caretakers", "name": "Caretakers (weekdays 07-17)",
                                 "schedule": {"repeat": "weekly", "days": [1, 2, 3, 4, 5], "from": "07:00",
                                              "to": "17:00"},
                                 "relays": [{"device": m, "relay": 1} for m in site["phones"]],
                                 "members": {"persons": ["staff-%d" % s for s in range(1, 6)]}})
    site["invalid"] = []
    while len(site["invalid"]) < 200:
        c = str(rnd.randint(100000, 899999))
        if c not in used:
            site["invalid"].append(c)
    for kind, items in ents.items():
        with open(os.path.join(seed_dir, kind + ".json"), "w") as f:
            json.dump(items, f)
    site["counts"] = {k: (len(v) if isinstance(v, list) else 1) for k, v in ents.items()}
    return site


def create_accounts(port, user, password, macs, dev_password):
    """Every device's broker account in one dynamic-security control
    message, all with one shared role (its own subtree would need a role per
    device; the ACLs are tested in tests/mqtt)."""
    cmds = [{"command": "createRole", "rolename": "soak-device"}]
    for acltype, topic in (("publishClientSend", "gatehouse/v1/dev/#"), ("publishClientReceive", "gatehouse/v1/dev/#"),
                           ("subscribePattern", "gatehouse/v1/dev/#"), ("unsubscribePattern", "gatehouse/v1/dev/#"),
                           ("subscribePattern", "gatehouse/v1/gw/status"),
                           ("publishClientReceive", "gatehouse/v1/gw/status")):
        cmds.append({"command": "addRoleACL", "rolename": "soak-device", "acltype": acltype, "topic": topic,
                     "allow": True})
    for mac in macs:
        cmds.append({"command": "createClient", "username": mac, "password": dev_password,
                     "roles": [{"rolename": "soak-device"}]})
    done = threading.Event()
    answer = {}

    def on_connect(c, u, f, rc):
        c.subscribe("$CONTROL/dynamic-security/v1/response", 1)

    def on_subscribe(c, u, mid, granted):
        c.publish("$CONTROL/dynamic-security/v1", json.dumps({"commands": cmds}), qos=1)

    def on_message(c, u, msg):
        answer["r"] = json.loads(msg.payload)
        done.set()
    c = mqtt.Client(client_id="soak-admin", clean_session=True)
    c.username_pw_set(user, password)
    c.on_connect, c.on_subscribe, c.on_message = on_connect, on_subscribe, on_message
    c.connect("127.0.0.1", port, 30)
    c.loop_start()
    ok = done.wait(60)
    c.disconnect()
    c.loop_stop()
    if not ok:
        raise RuntimeError("the broker did not answer the dynamic-security commands")
    errors = [r for r in answer["r"].get("responses", []) if r.get("error")]
    if errors:
        raise RuntimeError("dynamic security: %s" % errors[:3])
    return len(macs)


# ---------------------------------------------------------------- the daemon

def proc_sample(pid):
    with open("/proc/%d/status" % pid) as f:
        st = dict(line.split(":", 1) for line in f if ":" in line)

    def kb(k):
        return int(st.get(k, "0 kB").split()[0])
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])   # utime + stime (fields 14, 15)
    return {"rss_kb": kb("VmRSS"), "hwm_kb": kb("VmHWM"), "anon_kb": kb("RssAnon"),
            "threads": int(st["Threads"].strip()), "fds": len(os.listdir("/proc/%d/fd" % pid)), "ticks": ticks}


class Web:
    """The web API as the dashboard uses it: a session, GET /api/v1/status,
    /metrics, and the live feed on a websocket in a thread of its own."""

    def __init__(self, port, certfile):
        self.port = port
        self.ctx = ssl.create_default_context(cafile=certfile)
        self.ctx.check_hostname = False
        self.cookie = None
        self.ws = None
        self.ws_msgs = self.ws_reconnects = 0
        self.ws_types = {}
        self.status_ok = self.status_failed = 0

    def req(self, method, path, body=None):
        con = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ctx, timeout=15)
        try:
            h = {"Content-Type": "application/json"}
            if self.cookie:
                h["Cookie"] = self.cookie
            con.request(method, path, json.dumps(body).encode() if body is not None else None, h)
            r = con.getresponse()
            data = r.read()
            sc = r.getheader("Set-Cookie")
            if sc and sc.startswith("gh_session="):
                self.cookie = sc.split(";")[0]
            return r.status, data
        finally:
            con.close()

    def login(self, user, password):
        try:
            st, _ = self.req("POST", "/api/v1/login", {"user": user, "password": password})
        except (OSError, http.client.HTTPException):
            return False
        return st == 200

    def status(self):
        """The status document (None when the call failed, counted)."""
        try:
            st, data = self.req("GET", "/api/v1/status")
            doc = json.loads(data) if st == 200 else None
        except (OSError, ValueError, http.client.HTTPException):
            doc = None
        if doc and "wan" in doc:
            self.status_ok += 1
            return doc
        self.status_failed += 1
        return None

    def metrics(self):
        st, data = self.req("GET", "/metrics")
        out = {}
        for line in data.decode().splitlines():
            if line and not line.startswith("#"):
                k, _, v = line.rpartition(" ")
                try:
                    out[k] = float(v)
                except ValueError:
                    pass
        return out

    def feed(self):
        """The dashboard: reads the live feed until the soak stops; a dropped
        connection is counted and opened again."""
        while not stopping.is_set():
            try:
                self.ws = WSClient("127.0.0.1", self.port, self.ctx, self.cookie,
                                   "https://127.0.0.1:%d" % self.port)
                if self.ws.status != 101:
                    raise OSError("upgrade refused: %d" % self.ws.status)
                while not stopping.is_set():
                    try:
                        ms = self.ws.messages(1.0)
                    except (TimeoutError, ssl.SSLError) as e:
                        if "timed out" in str(e):
                            continue
                        raise
                    for m in ms:
                        self.ws_msgs += 1
                        t = m.get("type", "?") if isinstance(m, dict) else "?"
                        self.ws_types[t] = self.ws_types.get(t, 0) + 1
            except (OSError, EOFError, ValueError) as e:
                if stopping.is_set():
                    break
                self.ws_reconnects += 1
                log("dashboard feed dropped (%s): reconnecting" % e)
                time.sleep(1)
            finally:
                if self.ws:
                    try:
                        self.ws.close()
                    except OSError:
                        pass


# ---------------------------------------------------------------- the devices

DEVS_PER_WORKER = 125   # paho uses select(): 3 fds a client, under 1024 a process


class Fleet:
    """The 500 simulated devices (tests/sim/devsim.py), 125 to a worker
    process (this file with --devices), driven over its stdin and reporting
    answers and counts on its stdout, one JSON object a line."""

    def __init__(self, build_py, port, password, macs, monitors):
        self.workers = []
        self.where = {}
        self.lock = threading.Lock()
        self.answers = {}        # rid -> (response, latency s)
        self.stats_in = {}
        self.stats_ev = threading.Condition(self.lock)
        self.ready = {}
        for i in range(0, len(macs), DEVS_PER_WORKER):
            part = macs[i:i + DEVS_PER_WORKER]
            p = subprocess.Popen([build_py, os.path.abspath(__file__), "--devices"], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, text=True, bufsize=1)
            k = len(self.workers)
            self.workers.append(p)
            for m in part:
                self.where[m] = k
            p.stdin.write(json.dumps({"port": port, "password": password, "macs": part,
                                      "monitors": [m for m in part if m in monitors]}) + "\n")
            p.stdin.flush()
            threading.Thread(target=self._read, args=(k, p), daemon=True).start()

    def _read(self, k, p):
        for line in p.stdout:
            try:
                m = json.loads(line)
            except ValueError:
                continue
            with self.lock:
                if m["t"] == "resp":
                    self.answers[m["rid"]] = (m["resp"], m.get("lat"))
                elif m["t"] == "stats":
                    self.stats_in[k] = m
                    self.stats_ev.notify_all()
                elif m["t"] == "ready":
                    self.ready[k] = m
                    self.stats_ev.notify_all()

    def wait_ready(self, timeout):
        end = time.time() + timeout
        with self.lock:
            while len(self.ready) < len(self.workers) and time.time() < end:
                if any(p.poll() is not None for p in self.workers):
                    break
                self.stats_ev.wait(0.5)
            return sum(r["connected"] for r in self.ready.values()), [m for r in self.ready.values()
                                                                     for m in r["down"]]

    def alive(self):
        return all(p.poll() is None for p in self.workers)

    def _send(self, mac, obj):
        p = self.workers[self.where[mac]]
        p.stdin.write(json.dumps(obj) + "\n")
        p.stdin.flush()

    def request(self, mac, body):
        self._send(mac, {"op": "req", "mac": mac, "body": body})

    def event(self, mac, etype, fields):
        self._send(mac, {"op": "event", "mac": mac, "type": etype, "fields": fields})

    def answer(self, rid):
        with self.lock:
            return self.answers.pop(rid, None)

    def stats(self, timeout=5.0):
        """Events acked and unacked, devices connected, summed over the workers."""
        with self.lock:
            self.stats_in = {}
        for p in self.workers:
            p.stdin.write('{"op":"stats"}\n')
            p.stdin.flush()
        end = time.time() + timeout
        with self.lock:
            while len(self.stats_in) < len(self.workers) and time.time() < end:
                self.stats_ev.wait(0.2)
            got = list(self.stats_in.values())
        if len(got) < len(self.workers):
            return None
        return {k: sum(g[k] for g in got) for k in ("acked", "unacked", "connected")}

    def stop(self):
        for p in self.workers:
            try:
                p.stdin.write('{"op":"stop"}\n')
                p.stdin.flush()
            except OSError:
                pass
        for p in self.workers:
            stop_proc(p, signal.SIGTERM, 10)


def devices_worker():
    """--devices: one worker of the fleet. First stdin line: port, password,
    MACs; then one command a line (req, event, stats, stop)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl-C is the parent's; it ends us by pid
    first = json.loads(sys.stdin.readline())
    out = threading.Lock()

    def emit(obj):
        with out:
            sys.stdout.write(json.dumps(obj) + "\n")
            sys.stdout.flush()

    class Dev(Device):
        """A devsim device whose answers go straight to the parent."""

        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            self.sent = {}

        def _on_message(self, client, userdata, msg):
            if msg.topic.endswith("/resp"):
                try:
                    body = json.loads(msg.payload)
                except ValueError:
                    return
                t = self.sent.pop(body.get("rid"), None)
                emit({"t": "resp", "rid": body.get("rid"), "resp": body,
                      "lat": time.time() - t if t else None})
                return
            super()._on_message(client, userdata, msg)
    mons = set(first["monitors"])
    devs = {}
    for mac in first["macs"]:
        devs[mac] = Dev(mac, first["password"], first["port"], model="C319" if mac in mons else "R29").start(10)
    emit({"t": "ready", "connected": sum(d.connected for d in devs.values()),
          "down": [m for m, d in devs.items() if not d.connected]})
    for line in sys.stdin:
        c = json.loads(line)
        if c["op"] == "req":
            d = devs[c["mac"]]
            d.sent[c["body"]["rid"]] = time.time()
            d.client.publish(d.base + "/req", json.dumps(c["body"]), qos=1)
        elif c["op"] == "event":
            devs[c["mac"]].event(c["type"], **c["fields"])
        elif c["op"] == "stats":
            acked = unacked = 0
            for d in devs.values():
                with d.lock:
                    acked += len(d.acked)
                    unacked += len(d.unacked)
            emit({"t": "stats", "acked": acked, "unacked": unacked,
                  "connected": sum(d.connected for d in devs.values())})
        elif c["op"] == "stop":
            break
    os._exit(0)   # the devices' connections end with the process (their wills tell the gateway)


# ---------------------------------------------------------------- the load

class Load:
    def __init__(self, site, fleet, rnd):
        self.site, self.fleet, self.rnd = site, fleet, rnd
        self.pending = {}          # rid -> (device, sent, expect, op)
        self.req = {"sent": 0, "answered": 0, "failed": 0, "wrong": 0}
        self.by_op = {}
        self.lat = []
        self.wrong = []
        self.ev_sent = 0
        self.ev_types = {}
        self.calls = 0
        self.alarms = 0
        self.pins = list(site["pins"])
        self.pins_by_b = {}
        for pin, b in site["pins"].items():
            self.pins_by_b.setdefault(b, []).append(pin)
        self.rfs_by_b = {}
        for rf, b in site["rfs"].items():
            self.rfs_by_b.setdefault(b, []).append(rf)

    def request(self, mac, op, expect=None, **fields):
        rid = uuid.uuid4().hex[:12]
        body = {"rid": rid, "op": op}
        body.update(fields)
        self.pending[rid] = (mac, time.time(), expect, op)
        self.req["sent"] += 1
        self.by_op[op] = self.by_op.get(op, 0) + 1
        self.fleet.request(mac, body)

    def event(self, mac, etype, **fields):
        self.ev_sent += 1
        self.ev_types[etype] = self.ev_types.get(etype, 0) + 1
        self.fleet.event(mac, etype, fields)

    def collect(self, now, final=False):
        """Answers that came back; requests without one after REQ_TIMEOUT_S fail."""
        for rid in list(self.pending):
            mac, sent, expect, op = self.pending[rid]
            got = self.fleet.answer(rid)
            r, lat = got if got else (None, None)
            if r is None:
                if now - sent > REQ_TIMEOUT_S or final:
                    del self.pending[rid]
                    self.req["failed"] += 1
                    if len(self.wrong) < 20:
                        self.wrong.append("%s from %s: no answer in %.0f s" % (op, mac, REQ_TIMEOUT_S))
                continue
            del self.pending[rid]
            self.lat.append(lat if lat is not None else now - sent)
            if not r.get("ok"):
                self.req["failed"] += 1
                if len(self.wrong) < 20:
                    self.wrong.append("%s from %s: %s" % (op, mac, r.get("error")))
                continue
            self.req["answered"] += 1
            if expect is not None and not expect(r):
                self.req["wrong"] += 1
                if len(self.wrong) < 20:
                    self.wrong.append("%s from %s: unexpected %s" % (op, mac, json.dumps(r)[:200]))

    def access(self):
        rnd, s = self.rnd, self.site
        mac = rnd.choice(s["phones"])
        b = s["building_of"][mac]
        roll = rnd.random()
        if roll < 0.55:
            kind = rnd.random()
            relay = rnd.choice((None, 1, 2))
            extra = {} if relay is None else {"relay": relay}
            if kind < 0.62:
                self.request(mac, "access.check", lambda r: r.get("granted") is True, method="pin",
                             code=rnd.choice(self.pins_by_b[b]), **extra)
            elif kind < 0.72:
                self.request(mac, "access.check", lambda r: r.get("granted") is True, method="rf",
                             code=rnd.choice(self.rfs_by_b[b]), **extra)
            elif kind < 0.87:
                self.request(mac, "access.check", lambda r: r.get("granted") is False and
                             r.get("reason") == "unknown_credential", method="pin",
                             code=rnd.choice(s["invalid"]), **extra)
            elif kind < 0.97:
                other = rnd.choice([x for x in self.pins_by_b if x != b])
                self.request(mac, "access.check", lambda r: r.get("granted") is False, method="pin",
                             code=rnd.choice(self.pins_by_b[other]), **extra)
            else:   # a caretaker: granted on weekdays 07-17 only (no expectation)
                self.request(mac, "access.check", None, method="pin", code=rnd.choice(s["staff_pins"]), **extra)
        elif roll < 0.85:
            ok = rnd.random() < 0.8
            method = rnd.choice(("rf", "pin", "face"))
            code = rnd.choice(self.rfs_by_b[b]) if method == "rf" else \
                rnd.choice(self.pins_by_b[b]) if method == "pin" else "face-%d" % rnd.randint(1, 999)
            ev = {"method": method, "code": code, "relay": 1, "result": "granted" if ok else "denied"}
            if not ok:
                ev["reason"] = "unknown_credential"
            self.event(mac, "access", **ev)
        else:
            self.event(mac, "door", relay=rnd.choice((1, 2)), state=rnd.choice(("open", "closed")))

    def call(self, b, sched):
        """A call from a door phone of building B to one of its apartments:
        call.route, then start, answered (by the apartment's monitor), end."""
        rnd = self.rnd
        bid = "bldg-%02d" % b
        mac = rnd.choice([m for m in self.site["phones"] if self.site["building_of"][m] == bid])
        apt, mon = rnd.choice(self.site["apts"][bid])
        self.calls += 1
        self.request(mac, "call.route", lambda r: any(t.get("mac") == mon for t in r.get("targets", [])), to=apt)
        cid = uuid.uuid4().hex[:12]
        now = time.time()
        self.event(mac, "call", call_id=cid, phase="start", to=apt)
        answered = rnd.random() < 0.8
        if answered:
            sched(now + rnd.uniform(2, 6), lambda: self.event(mac, "call", call_id=cid, phase="answered", to=apt,
                                                              target=mon))
        opened = answered and rnd.random() < 0.6
        dur = rnd.randint(8, 30)
        sched(now + dur, lambda: self.event(mac, "call", call_id=cid, phase="end", to=apt, target=mon,
                                            duration=dur, opened=opened))

    def alarm(self, sched):
        rnd = self.rnd
        mon = rnd.choice(self.site["monitors"])
        kind = rnd.choice(("tamper", "motion", "package_in", "arming"))
        zone = rnd.randint(1, 8)
        self.alarms += 1
        self.event(mon, "alarm", kind=kind, state="triggered", zone=zone)
        sched(time.time() + rnd.uniform(10, 40), lambda: self.event(mon, "alarm", kind=kind, state="cleared",
                                                                    zone=zone))

    def sync(self):
        mac = self.rnd.choice(self.site["phones"] + self.site["monitors"][:20])
        self.request(mac, "sync.pull", lambda r: "rev" in r and "upserts" in r, rev=0)


# ---------------------------------------------------------------- the report

def slope_per_day(points):
    """Least-squares slope of (t seconds, value) extrapolated to a day."""
    if len(points) < 3:
        return 0.0
    n = len(points)
    mt = sum(t for t, _ in points) / n
    mv = sum(v for _, v in points) / n
    den = sum((t - mt) ** 2 for t, _ in points)
    return 0.0 if den == 0 else sum((t - mt) * (v - mv) for t, v in points) / den * 86400.0


COLS = ["t_s", "phase", "wan_sim", "wan_daemon", "rss_kb", "hwm_kb", "anon_kb", "fds", "threads", "cpu_pct",
        "db_kb", "wal_kb", "outbox", "req_sent", "req_answered", "req_failed", "req_wrong", "ev_sent", "ev_acked",
        "ev_unacked", "ws_msgs", "status_ok", "devices_online", "boards_online", "loadavg"]


def write_report(out_dir, samples, facts, checks, verdict):
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "report.csv"), "w") as f:
        f.write(",".join(COLS) + "\n")
        for s in samples:
            f.write(",".join(str(s.get(c, "")) for c in COLS) + "\n")
    L = []
    L.append("# gatehouse soak report\n")
    L.append("%s. %s\n" % (facts["when"], facts["machine"]))
    L.append("Site: %s. Load: %s. Duration %d min of load (warm-up: the first %d %%), then up to %d s for the "
             "last answers, acks and the outbox drain. Samples every %d s; all of them in `report.csv`, one a "
             "minute below. SQLite's page cache is %d KB (GH_SQL_CACHE_KB; the default 12 MB is larger than this "
             "database and would grow with it through the run).\n" % (
                 facts["site"], facts["load"], facts["minutes"], int(WARMUP * 100), SETTLE_S, SAMPLE_S,
                 SOAK_CACHE_KB))
    L.append("## Verdict: %s\n" % ("PASS" if verdict else "FAIL"))
    L.append("| check | bound | measured | |\n| --- | --- | --- | --- |")
    for name, bound, measured, good in checks:
        L.append("| %s | %s | %s | %s |" % (name, bound, measured, "ok" if good else "**FAIL**"))
    L.append("")
    L.append("## Figures\n")
    for line in facts["figures"]:
        L.append("- " + line)
    L.append("")
    L.append("## Over time\n")
    L.append("| t (min) | WAN | RSS MB | HWM MB | anon MB | fds | thr | CPU % | DB MB | WAL MB | outbox | "
             "requests sent / answered / failed | events sent / acked / unacked | feed msgs |")
    L.append("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | ---: |")
    last_min = None
    for i, s in enumerate(samples):
        m = int(s["t_s"] // 60)
        if m == last_min and i != len(samples) - 1:
            continue
        last_min = m
        L.append("| %.1f%s | %s%s | %.1f | %.1f | %.1f | %d | %d | %.1f | %.1f | %.1f | %d | %d / %d / %d | "
                 "%d / %d / %d | %d |" % (
                     s["t_s"] / 60.0, "" if s["phase"] != "settle" else " (settle)", s["wan_sim"],
                     "" if s["wan_daemon"] == s["wan_sim"] else " (daemon: %s)" % s["wan_daemon"],
                     s["rss_kb"] / 1024.0, s["hwm_kb"] / 1024.0, s["anon_kb"] / 1024.0, s["fds"], s["threads"],
                     s["cpu_pct"], s["db_kb"] / 1024.0, s["wal_kb"] / 1024.0, s["outbox"], s["req_sent"],
                     s["req_answered"], s["req_failed"], s["ev_sent"], s["ev_acked"], s["ev_unacked"],
                     s["ws_msgs"]))
    L.append("")
    L.append("Columns: RSS = VmRSS, HWM = VmHWM (peak), anon = RssAnon (heap and stacks: what a leak grows); "
             "CPU % of one core since the previous sample (utime + stime); DB = site.db, WAL = site.db-wal; "
             "outbox = events waiting for the cloud; requests and events as the simulated devices saw them "
             "(an event is acked when the gateway confirmed it stored).")
    with open(os.path.join(out_dir, "report.md"), "w") as f:
        f.write("\n".join(L) + "\n")


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.environ.get("GH_BUILD", "build"))
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--keep", action="store_true", help="keep the run folder (always kept on failure)")
    args = ap.parse_args()
    build = args.build
    duration = args.minutes * 60.0
    out_dir = os.path.join(ROOT, build, "soak")
    rnd = random.Random(args.seed)
    for b in ("gatehoused", "gatehouse", "sim/modbus_sim"):
        if not os.access(os.path.join(ROOT, build, b), os.X_OK):
            sys.exit("soak: %s/%s is missing (make all %s/sim/modbus_sim)" % (build, b, build))

    def on_term(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)

    T = tempfile.mkdtemp(prefix="gh-soak-")
    os.chmod(T, 0o755)   # the broker, dropped to the mosquitto user, must reach its folder
    seed_dir = os.path.join(T, "seed")
    os.makedirs(seed_dir)
    broker = cloud = daemon = None
    sims, fleet, web = [], None, None
    feed_thread = None
    verdict = False
    daemon_rc = None
    try:
        log("run folder %s; %g min of load" % (T, args.minutes))
        broker = brokermod.Broker(os.path.join(T, "broker")).start()
        cloud = CloudSim(os.path.join(T, "cloud"), SITE, TOKEN).start()
        log("broker on %d, cloud simulator on %d (control %d)" % (broker.port, cloud.port, cloud.ctl_port))

        # 20 boards, each its own modbus_sim over Modbus TCP
        ports = {}
        for b in range(1, BUILDINGS + 1):
            for kind, profile in (("doors", "HF-8000"), ("lift", "LIFT-16")):
                bid = "%s-%02d" % (kind, b)
                ports[bid] = free_port()
                logf = open(os.path.join(T, "sim-%s.log" % bid), "w")
                p = subprocess.Popen([os.path.join(ROOT, build, "sim", "modbus_sim"), "--profile",
                                      os.path.join(ROOT, "drivers", "profiles", profile + ".ini"),
                                      "--tcp", str(ports[bid])], stdin=subprocess.DEVNULL, stdout=logf,
                                     stderr=subprocess.STDOUT)
                logf.close()
                sims.append((bid, p))

        def sims_ready():
            for bid, p in sims:
                with open(os.path.join(T, "sim-%s.log" % bid)) as f:
                    if "ready" not in f.read():
                        return False
            return True
        if not wait(sims_ready, 15):
            raise RuntimeError("board simulators not ready")
        log("%d board simulators listening" % len(sims))

        site = make_site(seed_dir, ports, rnd)
        with open(os.path.join(T, "mqtt.password"), "w") as f:
            f.write(broker.password + "\n")
        with open(os.path.join(T, "cloud.token"), "w") as f:
            f.write(TOKEN + "\n")
        for n in ("mqtt.password", "cloud.token"):
            os.chmod(os.path.join(T, n), 0o600)
        web_port = free_port()
        conf = os.path.join(T, "gatehouse.conf")
        with open(conf, "w") as f:
            f.write("[site]\nid = %s\n[storage]\ndb = site.db\n[drivers]\nprofiles_dir = %s/drivers/profiles\n"
                    "[daemon]\ncontrol_socket = ctl.sock\nlog_level = info\n"
                    "[mqtt]\nhost = 127.0.0.1\nport = %d\nusername = %s\npassword_file = mqtt.password\n"
                    "manage_accounts = false\n"
                    "[cloud]\nurl = %s\ntoken_file = cloud.token\nca_file = %s\n"
                    "[web]\nlisten = 127.0.0.1:%d\nroot = %s/web-ui\n"
                    % (SITE, ROOT, broker.port, broker.user, cloud.url, cloud.ca, web_port, ROOT))

        def gh(*a, stdin=None):
            return subprocess.run([os.path.join(ROOT, build, "gatehouse"), "--config", conf] + list(a),
                                  input=stdin, capture_output=True, text=True)
        t_seed = time.time()
        for kind in ("settings", "mac", "building", "apartment", "relay_board", "device", "person", "credential",
                     "access_group"):
            r = gh("put", kind, os.path.join(seed_dir, kind + ".json"))
            if r.returncode:
                raise RuntimeError("put %s: %s" % (kind, r.stderr.strip()[:500]))
        r = gh("user", "add", "dash", "--role", "viewer", stdin="soak-dashboard-pw\n")
        if r.returncode:
            raise RuntimeError("user add: %s" % r.stderr)
        c = site["counts"]
        site_desc = ("%d buildings, %d apartments, %d devices (%d door phones, %d indoor monitors), %d persons, "
                     "%d credentials, %d access groups, %d boards (%d HF-8000 door boards, %d LIFT-16) over "
                     "Modbus TCP" % (c["building"], c["apartment"], c["device"], len(site["phones"]),
                                     len(site["monitors"]), c["person"], c["credential"], c["access_group"],
                                     c["relay_board"], BUILDINGS, BUILDINGS))
        log("seeded through the CLI in %.1f s: %s" % (time.time() - t_seed, site_desc))
        dev_pw = "soak-device-pw"
        macs = site["phones"] + site["monitors"]
        t_acc = time.time()
        create_accounts(broker.port, broker.user, broker.password, macs, dev_pw)
        log("%d broker accounts in one control message (%.1f s)" % (len(macs), time.time() - t_acc))

        dlog = open(os.path.join(T, "gatehoused.log"), "w")
        daemon = subprocess.Popen([os.path.join(ROOT, build, "gatehoused"), "--config", conf],
                                  stdout=dlog, stderr=dlog, env=dict(os.environ, GH_SQL_CACHE_KB=str(SOAK_CACHE_KB)))
        if not wait(lambda: os.path.exists(os.path.join(T, "ctl.sock")) and
                    os.path.exists(os.path.join(T, "web.crt")), 30):
            raise RuntimeError("gatehoused did not start: see %s/gatehoused.log" % T)
        web = Web(web_port, os.path.join(T, "web.crt"))
        if not wait(lambda: web.login("dash", "soak-dashboard-pw"), 20):
            raise RuntimeError("dashboard login failed")

        t_dev = time.time()
        fleet = Fleet(sys.executable, broker.port, dev_pw, macs, set(site["monitors"]))
        connected, down = fleet.wait_ready(120)
        if connected != len(macs):
            raise RuntimeError("%d of %d devices logged in (%s...)" % (connected, len(macs), down[:3]))
        log("%d devices connected, %d a worker process (%.1f s)" % (connected, DEVS_PER_WORKER,
                                                                     time.time() - t_dev))

        def ready():
            try:
                m = web.metrics()
            except (OSError, http.client.HTTPException):
                return False
            return (m.get("gatehouse_devices_online") == len(macs) and m.get("gatehouse_wan_up") == 1 and
                    m.get("gatehouse_changes_pending") == 0 and
                    sum(v for k, v in m.items() if k.startswith("gatehouse_board_online{")) == len(sims))
        t_ready = time.time()
        if not wait(ready, 300):
            raise RuntimeError("the site did not settle (devices online, WAN up, local changes pushed, boards "
                               "online): %s" % {k: v for k, v in web.metrics().items()
                                                if "online" in k or "wan" in k or "pending" in k})
        log("site settled in %.1f s: devices online, boards online, WAN up, pairing pushed" % (time.time() - t_ready))
        counts = (web.status() or {}).get("counts", {})
        for kind, plural in (("person", "persons"), ("credential", "credentials"), ("device", "devices"),
                             ("apartment", "apartments"), ("relay_board", "relay_boards")):
            if counts.get(plural) != c[kind]:
                raise RuntimeError("the daemon counts %s %s, the seed has %d" % (counts.get(plural), plural, c[kind]))

        feed_thread = threading.Thread(target=web.feed, daemon=True)
        feed_thread.start()
        load = Load(site, fleet, rnd)
        pid = daemon.pid
        clk = os.sysconf("SC_CLK_TCK")
        db = os.path.join(T, "site.db")
        samples = []
        heap = []
        seq = [0]

        def sched(at, fn):
            seq[0] += 1
            heapq.heappush(heap, (at, seq[0], fn))
        t0 = time.time()
        for b in range(1, BUILDINGS + 1):   # each building's calls, spread over the minute
            sched(t0 + (b - 1) * CALL_EVERY_S / BUILDINGS + 1, ("call", b))
        wan_down = False
        wan_flips = []
        last = {"t": t0, "ticks": proc_sample(pid)["ticks"]}
        next_sample = t0
        next_access = t0
        next_alarm = t0 + 20
        next_sync = t0 + 5
        next_status = t0
        sample_m = {}
        last_fleet = {"acked": 0, "unacked": -1, "connected": 0}

        def sample(now, phase):
            p = proc_sample(pid)
            dt = now - last["t"]
            cpu = (p["ticks"] - last["ticks"]) / clk / dt * 100.0 if dt >= 1.0 else 0.0
            last["t"], last["ticks"] = now, p["ticks"]
            try:
                m = web.metrics()
                sample_m.update(m)
            except (OSError, http.client.HTTPException) as e:
                log("metrics failed: %s" % e)
                m = sample_m
            wan_d = "up" if m.get("gatehouse_wan_up") == 1 else "down"

            def size(path):
                try:
                    return os.path.getsize(path) // 1024
                except OSError:
                    return 0
            try:
                la = os.getloadavg()[0]
            except OSError:
                la = 0.0
            fs = fleet.stats() or last_fleet
            last_fleet.update(fs)
            acked = fs["acked"]
            s = {"t_s": round(now - t0, 1), "phase": phase, "wan_sim": "down" if wan_down else "up",
                 "wan_daemon": wan_d, "rss_kb": p["rss_kb"], "hwm_kb": p["hwm_kb"], "anon_kb": p["anon_kb"],
                 "fds": p["fds"], "threads": p["threads"], "cpu_pct": round(cpu, 1), "db_kb": size(db),
                 "wal_kb": size(db + "-wal"), "outbox": int(m.get("gatehouse_outbox_pending", -1)),
                 "req_sent": load.req["sent"], "req_answered": load.req["answered"],
                 "req_failed": load.req["failed"], "req_wrong": load.req["wrong"], "ev_sent": load.ev_sent,
                 "ev_acked": acked, "ev_unacked": fs["unacked"], "ws_msgs": web.ws_msgs,
                 "status_ok": web.status_ok, "devices_online": int(m.get("gatehouse_devices_online", -1)),
                 "boards_online": int(sum(v for k, v in m.items() if k.startswith("gatehouse_board_online{"))),
                 "loadavg": round(la, 2)}
            samples.append(s)
            if len(samples) % 6 == 1 or phase == "settle":
                log("t=%5.0fs %-6s WAN %-4s rss %6.1f MB anon %6.1f MB fds %3d cpu %5.1f%% db %5.1f MB outbox "
                    "%5d req %d/%d/%d ev %d/%d" % (s["t_s"], phase, s["wan_sim"], s["rss_kb"] / 1024.0,
                                                   s["anon_kb"] / 1024.0, s["fds"], s["cpu_pct"],
                                                   (s["db_kb"] + s["wal_kb"]) / 1024.0, s["outbox"],
                                                   s["req_answered"], s["req_failed"], s["req_sent"], acked,
                                                   load.ev_sent))
            return s

        def set_wan(down, now):
            if down:
                cloud.fail("refuse")
            else:
                cloud.clear()
            wan_flips.append((round(now - t0, 1), "down" if down else "up"))
            log("WAN %s" % ("DOWN (cloud refuses connections)" if down else "UP"))

        log("load: %.0f access events/s, a call a minute per building, WAN flapping every %.0f s" %
            (ACCESS_PER_S, WAN_FLIP_S))
        while True:
            now = time.time()
            el = now - t0
            if el >= duration:
                break
            if daemon.poll() is not None:
                raise RuntimeError("gatehoused exited (%s) during the soak" % daemon.returncode)
            if not fleet.alive():
                raise RuntimeError("a device worker process ended")
            want_down = int(el // WAN_FLIP_S) % 2 == 1 and el < duration - WAN_UP_AT_END_S
            if want_down != wan_down:
                wan_down = want_down
                set_wan(wan_down, now)
            while next_access <= now:
                load.access()
                next_access += 1.0 / ACCESS_PER_S
            while heap and heap[0][0] <= now:
                at, _, fn = heapq.heappop(heap)
                if isinstance(fn, tuple):   # a building's call, again in a minute
                    load.call(fn[1], sched)
                    seq[0] += 1
                    heapq.heappush(heap, (at + CALL_EVERY_S, seq[0], fn))
                else:
                    fn()
            if now >= next_alarm:
                load.alarm(sched)
                next_alarm += ALARM_EVERY_S
            if now >= next_sync:
                load.sync()
                next_sync += SYNC_EVERY_S
            if now >= next_status:
                web.status()
                next_status += STATUS_EVERY_S
            load.collect(now)
            if now >= next_sample:
                sample(now, "warmup" if el < WARMUP * duration else "load")
                next_sample += SAMPLE_S
            time.sleep(0.02)

        # the load stops; calls and alarms still open are ended
        log("load stopped; ending open calls and alarms, waiting for answers, acks and the drain")
        while heap:
            at, _, fn = heapq.heappop(heap)
            if not isinstance(fn, tuple):
                fn()
        if wan_down:
            set_wan(False, time.time())
            wan_down = False
        t_end = time.time()
        sample(t_end, "load")

        def drained():
            load.collect(time.time())
            try:
                m = web.metrics()
            except (OSError, http.client.HTTPException):
                return False
            fs = fleet.stats()
            return not load.pending and fs and fs["unacked"] == 0 and m.get("gatehouse_outbox_pending") == 0
        settle_deadline = t_end + SETTLE_S
        while time.time() < settle_deadline and not drained():
            time.sleep(1)
            if time.time() >= next_sample:
                sample(time.time(), "settle")
                next_sample += SAMPLE_S
        settled_in = time.time() - t_end
        load.collect(time.time(), final=True)
        final = sample(time.time(), "settle")
        stopping.set()

        # the cloud's side of it
        st = cloud.stats()
        cev = cloud.ctl("GET", "/_sim/events?after=0&limit=1")
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon_rc = daemon.wait(30)
        except subprocess.TimeoutExpired:
            daemon_rc = None
        with open(os.path.join(T, "gatehoused.log")) as f:
            dl = f.read().splitlines()
        levels = {}
        for line in dl:
            mm = re.match(r"^(?:<\d>)?\S+ (debug|info|warn|error) ", line)
            if mm:
                levels[mm.group(1)] = levels.get(mm.group(1), 0) + 1
        errs = [line for line in dl if re.match(r"^\S+ error ", line)]

        # ---- the verdict
        steady = [s for s in samples if s["phase"] == "load" and s["t_s"] >= WARMUP * duration]
        rss_slope = slope_per_day([(s["t_s"], s["rss_kb"] / 1024.0) for s in steady])
        anon_slope = slope_per_day([(s["t_s"], s["anon_kb"] / 1024.0) for s in steady])
        fds = [s["fds"] for s in steady]
        fd_med = statistics.median(fds) if fds else 0
        fd_dev = max((abs(x - fd_med) for x in fds), default=0)
        thr = [s["threads"] for s in steady]
        wal_max = max((s["wal_kb"] for s in samples), default=0) / 1024.0
        checks = [
            ("RSS slope after the warm-up, extrapolated to 24 h", "< %.0f MB/day" % RSS_MB_PER_DAY,
             "%+.2f MB/day (RssAnon %+.2f MB/day)" % (rss_slope, anon_slope), rss_slope < RSS_MB_PER_DAY),
            ("open fds after the warm-up", "within ±%d of the median" % FD_BAND,
             "median %g, %d..%d" % (fd_med, min(fds, default=0), max(fds, default=0)), fd_dev <= FD_BAND),
            ("site.db-wal throughout (checkpoints keep up)", "< %d MB" % WAL_MAX_MB, "max %.1f MB" % wal_max,
             wal_max < WAL_MAX_MB),
            ("threads after the warm-up", "constant", "%d..%d" % (min(thr, default=0), max(thr, default=0)),
             len(set(thr)) <= 1),
            ("every request answered (ok, within %.0f s)" % REQ_TIMEOUT_S, "0 failed",
             "%d sent, %d answered, %d failed" % (load.req["sent"], load.req["answered"], load.req["failed"]),
             load.req["failed"] == 0 and load.req["answered"] == load.req["sent"]),
            ("every answer as the site's data says", "0 wrong", "%d wrong" % load.req["wrong"],
             load.req["wrong"] == 0),
            ("every event acked", "0 unacked at the end", "%d sent, %d unacked" % (load.ev_sent, final["ev_unacked"]),
             final["ev_unacked"] == 0),
            ("outbox drained by the end (WAN up for the last %.1f min)" % (WAN_UP_AT_END_S / 60), "0 pending",
             "%d pending, %.0f s after the load" % (final["outbox"], settled_in), final["outbox"] == 0),
            ("dashboard feed and status polls", "no drop, no failure", "%d messages, %d reconnects, status %d ok / "
             "%d failed" % (web.ws_msgs, web.ws_reconnects, web.status_ok, web.status_failed),
             web.ws_reconnects == 0 and web.status_failed == 0 and web.ws_msgs > 0),
            ("devices and boards online throughout", "%d / %d" % (len(macs), len(sims)),
             "min %d / %d" % (min(s["devices_online"] for s in samples), min(s["boards_online"] for s in samples)),
             all(s["devices_online"] == len(macs) and s["boards_online"] == len(sims) for s in samples)),
            ("SIGTERM at the end", "exit 0", str(daemon_rc), daemon_rc == 0),
            ("error lines in the daemon's log", "0", "%d%s" % (len(errs), (": " + errs[0][:160]) if errs else ""),
             not errs),
        ]
        verdict = all(c[3] for c in checks)
        lat = sorted(load.lat)

        def pct(q):
            return lat[min(len(lat) - 1, int(q * len(lat)))] * 1000 if lat else 0
        cpus = [s["cpu_pct"] for s in samples if s["phase"] != "settle"][1:]
        first = steady[0] if steady else samples[0]
        figures = [
            "RSS %.1f MB after the warm-up, %.1f MB at the end of the load (%+d KB; min %.1f, max %.1f after the "
            "warm-up); peak VmHWM %.1f MB" % (first["rss_kb"] / 1024.0, steady[-1]["rss_kb"] / 1024.0 if steady else 0,
                                            steady[-1]["rss_kb"] - first["rss_kb"] if steady else 0,
                                     min(s["rss_kb"] for s in steady) / 1024.0 if steady else 0,
                                     max(s["rss_kb"] for s in steady) / 1024.0 if steady else 0,
                                     final["hwm_kb"] / 1024.0),
            "CPU: mean %.1f %%, max %.1f %% of one core (10 s samples)" % (
                statistics.mean(cpus) if cpus else 0, max(cpus, default=0)),
            "database: %.1f MB + %.1f MB WAL at the start of the load, %.1f MB + %.1f MB WAL at the end (door, "
            "call and alarm logs grow with the load)" % (
                samples[0]["db_kb"] / 1024.0, samples[0]["wal_kb"] / 1024.0, final["db_kb"] / 1024.0,
                final["wal_kb"] / 1024.0),
            "outbox: max %d pending during the outages" % max(s["outbox"] for s in samples),
            "requests by kind: %s; answer latency p50 %.1f ms, p99 %.1f ms, max %.1f ms (devices' view, "
            "through the broker)" % (", ".join("%s %d" % kv for kv in sorted(load.by_op.items())), pct(0.5),
                                    pct(0.99), lat[-1] * 1000 if lat else 0),
            "events by kind: %s; %d calls, %d alarms" % (", ".join("%s %d" % kv for kv in sorted(
                load.ev_types.items())), load.calls, load.alarms),
            "the cloud: %d events stored (%d duplicates), %d failures injected, %d internal errors" % (
                cev.get("total", 0), cev.get("duplicates", 0), sum((st.get("failures") or {}).values()),
                st.get("internal_errors", 0)),
            "WAN flips (s since the start: state): %s" % ", ".join("%.0f: %s" % f for f in wan_flips),
            "dashboard feed messages by type: %s" % ", ".join("%s %d" % kv for kv in sorted(web.ws_types.items())),
            "daemon log lines by level: %s" % ", ".join("%s %d" % kv for kv in sorted(levels.items())),
        ]
        if load.wrong:
            figures.append("first problems: " + "; ".join(load.wrong[:10]))
        if errs:
            figures.append("first error lines of the daemon: " + "; ".join(e[:160] for e in errs[:5]))
        facts = {"when": time.strftime("%Y-%m-%d %H:%M %Z", time.localtime(t0)),
                 "machine": "Machine: %d cores, %s, load average %.2f at the end (shared with other work)" % (
                     os.cpu_count(), "%.0f GiB" % (os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") /
                                                   2 ** 30), os.getloadavg()[0]),
                 "site": site_desc,
                 "load": "%.0f access events/s (access.check with valid, unknown and other buildings' PINs and RF "
                         "cards; device access and door events), a call a minute per building (call.route + "
                         "start/answered/end events), an alarm every %.0f s (triggered, then cleared), a sync.pull "
                         "every %.0f s; the cloud refusing connections every other %.0f s (WAN flapping); one "
                         "dashboard websocket and GET /api/v1/status every %.0f s" % (
                             ACCESS_PER_S, ALARM_EVERY_S, SYNC_EVERY_S, WAN_FLIP_S, STATUS_EVERY_S),
                 "minutes": args.minutes, "figures": figures}
        write_report(out_dir, samples, facts, checks, verdict)
        print(open(os.path.join(out_dir, "report.md")).read())
        log("report: %s/report.md, %s/report.csv" % (out_dir, out_dir))
    except KeyboardInterrupt:
        log("interrupted")
    except Exception as e:   # noqa: BLE001 - report, then clean up
        log("FAILED: %s" % e)
    finally:
        stopping.set()
        if fleet:
            fleet.stop()
        if web and web.ws:
            try:
                web.ws.close()
            except OSError:
                pass
        if daemon is not None and daemon.poll() is None:
            stop_proc(daemon, signal.SIGTERM, 30)
        for _, p in sims:
            stop_proc(p)
        if cloud:
            cloud.stop()
        if broker:
            broker.stop()
        if verdict and not args.keep:
            shutil.rmtree(T, ignore_errors=True)
        else:
            log("run folder kept: %s" % T)
    log("verdict: %s" % ("PASS" if verdict else "FAIL"))
    sys.exit(0 if verdict else 1)


if __name__ == "__main__":
    if sys.argv[1:] == ["--devices"]:
        devices_worker()
    else:
        main()
