#!/usr/bin/env python3
"""Field bus end to end: gatehoused driving simulated relay boards over
Modbus TCP (HF-8000, register writes) and Modbus RTU on a socat pseudo-
terminal pair (MK485-G2R-8J8C, coil writes), through the engine's grants,
board-channel decisions, pulses with extension, emergency holds, a dead
board and its recovery. Asserts order and state, never wall-clock timings.
Prints "N passed, N failed".

usage: tests/bus/run.py [BUILD_DIR]   (from the repository root)
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
from testlib import SLOW, counts, daemon_cmd, free_port, ok, query, valgrind_check, wait  # noqa: E402
BUILD = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("GH_BUILD", "build")
T = tempfile.mkdtemp(prefix="gh-bus-")
DP = "0C1105E00001"








class Sim:
    """A modbus_sim process; its write log is collected as (ms, kind, addr, value)."""

    def __init__(self, profile, *where):
        self.writes = []
        path = profile if profile.startswith("../") else os.path.join(ROOT, "drivers", "profiles", profile + ".ini")
        if profile.startswith("../"):
            path = profile[len("../../"):] + ".ini"
        self.proc = subprocess.Popen([os.path.join(ROOT, BUILD, "sim", "modbus_sim"), "--profile", path] + list(where),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True)
        self.ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        self.ready.wait(5)

    def _read(self):
        for line in self.proc.stdout:  # noqa
            f = line.split()
            if len(f) >= 2 and f[1] == "ready":
                self.ready.set()
            elif len(f) == 4 and f[1] in ("coil", "reg", "cleared"):
                self.writes.append((int(f[0]), f[1], int(f[2]), int(f[3])))

    def send(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(5)

    def values(self, addr):
        return [v for (_, k, a, v) in self.writes if a == addr]


def gh(*args):
    return subprocess.run([os.path.join(ROOT, BUILD, "gatehouse"), "--config", CONF] + list(args),
                          capture_output=True, text=True)


def put(kind, obj):
    r = subprocess.run([os.path.join(ROOT, BUILD, "gatehouse"), "--config", CONF, "put", kind, "-"],
                       input=json.dumps(obj), capture_output=True, text=True)
    if r.returncode:
        print("  setup: put %s failed: %s" % (kind, r.stderr))
    return r


def db(sql, *params):
    return query(os.path.join(T, "site.db"), sql, *params)


def status():
    return json.loads(gh("status").stdout)


sims, socat, daemon = [], None, None
try:
    # an RTU line: a pseudo-terminal pair, the board on one end, the gateway on the other
    socat = subprocess.Popen(["socat", "pty,raw,echo=0,link=%s/ttyGW" % T, "pty,raw,echo=0,link=%s/ttyBOARD" % T],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    socats = [subprocess.Popen(["socat", "pty,raw,echo=0,link=%s/ttyGW%d" % (T, i), "pty,raw,echo=0,link=%s/ttyB%d" % (T, i)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for i in (2, 3, 4, 5)]
    wait(lambda: all(os.path.exists(p) for p in [T + "/ttyGW", T + "/ttyBOARD"] +
                     ["%s/ttyB%d" % (T, i) for i in (2, 3, 4, 5)]))
    # the shipped profiles plus one more: a new board model is a new file
    shutil.copytree(os.path.join(ROOT, "drivers", "profiles"), T + "/profiles")
    with open(T + "/profiles/ACME-2R.ini", "w") as f:
        f.write("[profile]\nname = ACME-2R\nkind = relay\nchannels = 2\ntransports = tcp\n"
                "[relay]\nwrite = coil\ncoil_base = 10\n")
    hf_port, lift_port, acme_port, uhf_port, lpr_port = free_port(), free_port(), free_port(), free_port(), free_port()
    lift2_port = free_port()
    rsac = Sim("RSAC-C1-R8", "--rtu", T + "/ttyB4")
    hfr = Sim("HF-8000", "--rtu", T + "/ttyB5")
    lpr = Sim("LPR-CAMERA", "--tcp", str(lpr_port))
    sims += [rsac, hfr, lpr]
    uhf = Sim("UHF-READER", "--tcp", str(uhf_port))
    level = Sim("MK485-G2R-8J8C", "--rtu", T + "/ttyB2")
    latch = Sim("MK485-G2R-8J8C", "--rtu", T + "/ttyB3", "--latching")
    sims += [uhf, level, latch]
    hf = Sim("HF-8000", "--tcp", str(hf_port))
    mk = Sim("MK485-G2R-8J8C", "--rtu", T + "/ttyBOARD")
    lift = Sim("LIFT-16", "--tcp", str(lift_port))
    acme = Sim("../../" + T + "/profiles/ACME-2R", "--tcp", str(acme_port))
    lift2 = Sim("LIFT-16", "--tcp", str(lift2_port))
    sims += [hf, mk, lift, acme, lift2]
    print("== bus: simulators up")
    ok("HF-8000 over Modbus TCP and MK485 over RTU (socat pty) are ready", hf.ready.is_set() and mk.ready.is_set())
    ok("a lift controller and a board from an added profile file are ready", lift.ready.is_set() and acme.ready.is_set())

    # a profile beyond what the bus keeps (64 channels, 64 inputs) is refused
    # at start, naming the file, the line and the bound
    os.makedirs(T + "/badprofiles")
    with open(T + "/badprofiles/BIG-80.ini", "w") as f:
        f.write("[profile]\nname = BIG-80\nkind = lift\nchannels = 80\ntransports = tcp\n"
                "[relay]\nwrite = coil\n")
    with open(T + "/bad.conf", "w") as f:
        f.write("[site]\nid = bus-test\n[storage]\ndb = bad.db\n[drivers]\nprofiles_dir = %s/badprofiles\n" % T)
    r = subprocess.run([os.path.join(ROOT, BUILD, "gatehoused"), "--config", T + "/bad.conf", "--check-config"],
                       capture_output=True, text=True, timeout=30)
    ok("a profile with 80 channels is refused (at most 64), naming the file and line",
       r.returncode != 0 and "BIG-80.ini:4" in r.stderr and "0..64" in r.stderr, r.stderr)

    CONF = os.path.join(T, "gh.conf")
    with open(CONF, "w") as f:
        f.write("[site]\nid = bus-test\n[storage]\ndb = site.db\n[drivers]\nprofiles_dir = %s/profiles\n"
                "[daemon]\ncontrol_socket = ctl.sock\nlog_level = debug\n[mqtt]\nport = %d\n"
                % (T, free_port()))
    put("settings", {"timezone": "Europe/Vienna", "relay_hold_ms": 600, "lift_grant_s": 1,
                     "emergency": {"auto_unlock": True, "doors": "all", "notify": True}})
    put("building", {"id": "b1", "name": "Block A"})
    put("apartment", {"id": "a1", "building": "b1", "apt": "101"})
    put("relay_board", {"id": "hf", "profile": "HF-8000", "mode": "ethernet", "bus": "127.0.0.1:%d" % hf_port,
                        "channels": [{"channel": 1, "name": "Barrier", "function": "barrier"},
                                     {"channel": 2, "name": "Side door", "function": "door"}]})
    put("relay_board", {"id": "mk", "profile": "MK485-G2R-8J8C", "mode": "rs485", "bus": T + "/ttyGW",
                        "channels": [{"channel": 3, "name": "Bike room", "function": "door", "hold_ms": 400}]})
    put("relay_board", {"id": "lift", "profile": "LIFT-16", "mode": "ethernet", "bus": "127.0.0.1:%d" % lift_port,
                        "building": "b1", "channels": [{"channel": c, "floor": f} for c, f in
                                                       ((1, "G0"), (2, "1"), (3, "2"), (4, "3"), (5, "-1"))]})
    # a second building whose lift buttons carry no labels: numbered from its
    # floor start (-2) through its ground levels (G0, G1)
    put("building", {"id": "b2", "name": "Block B", "ground_floor": "G1", "floor_start": -2})
    put("apartment", {"id": "a2", "building": "b2", "apt": "201"})
    put("relay_board", {"id": "lift2", "profile": "LIFT-16", "mode": "ethernet", "bus": "127.0.0.1:%d" % lift2_port,
                        "building": "b2"})
    put("person", {"id": "p3", "kind": "resident", "apartment": "a2", "first_name": "Cleo",
                   "floors": ["G1", "2", "-2"]})
    put("credential", {"id": "c7", "person": "p3", "type": "pin", "code": "3456"})
    put("access_group", {"id": "g2", "name": "Block B", "building": "b2", "relays": [{"board": "hf", "channel": 4}]})
    r = put("relay_board", {"id": "acme", "profile": "ACME-2R", "mode": "ethernet", "bus": "127.0.0.1:%d" % acme_port,
                            "channels": [{"channel": 2, "name": "Cellar", "function": "door"}]})
    ok("the validator knows the added profile", r.returncode == 0, r.stderr)
    r = put("relay_board", {"id": "acme3", "profile": "ACME-2R", "mode": "ethernet", "bus": "127.0.0.1:1",
                            "channels": [{"channel": 3}]})
    ok("and its channel count", r.returncode != 0 and "channel" in r.stderr, r.stderr)
    put("relay_board", {"id": "mkl", "profile": "MK485-G2R-8J8C", "mode": "rs485_input_nonlatching",
                        "bus": T + "/ttyGW2"})
    put("relay_board", {"id": "mke", "profile": "MK485-G2R-8J8C", "mode": "rs485_input_latching",
                        "bus": T + "/ttyGW3"})
    put("relay_board", {"id": "rsac", "profile": "RSAC-C1-R8", "mode": "rs485", "bus": T + "/ttyGW4"})
    put("relay_board", {"id": "hfr", "profile": "HF-8000", "mode": "rs485", "bus": T + "/ttyGW5"})
    put("relay_board", {"id": "lpr1", "profile": "LPR-CAMERA", "mode": "ethernet", "bus": "127.0.0.1:%d" % lpr_port,
                        "lot": "lot2"})
    put("parking_lot", {"id": "lot2", "name": "Visitors", "capacity": 0, "entry": {"board": "acme", "channel": 2}})
    put("relay_board", {"id": "uhf1", "profile": "UHF-READER", "mode": "ethernet", "bus": "127.0.0.1:%d" % uhf_port,
                        "lot": "lot1"})
    put("parking_lot", {"id": "lot1", "name": "Garage", "capacity": 1, "entry": {"board": "hf", "channel": 1},
                        "exit": {"board": "hf", "channel": 3}, "readers": [{"board": "uhf1", "direction": "entry"}]})
    put("mac", {"id": DP})
    put("device", {"id": DP, "type": 0, "name": "Entrance", "area": "building", "building": "b1",
                   "relays": [{"n": 1, "name": "Side door", "board": {"board": "hf", "channel": 2}}]})
    put("person", {"id": "p1", "kind": "resident", "apartment": "a1", "first_name": "Anna", "floors": ["3", "G0"]})
    put("person", {"id": "p2", "kind": "resident", "apartment": "a1", "first_name": "Ben", "floors": ["2", "3"]})
    put("credential", {"id": "c3", "person": "p2", "type": "pin", "code": "2345"})
    put("credential", {"id": "c4", "person": "p1", "type": "uhf", "code": "E200AA11"})
    put("credential", {"id": "c5", "person": "p2", "type": "uhf", "code": "E200BB22"})
    put("credential", {"id": "c6", "person": "p2", "type": "plate", "code": "W-123 AB"})
    put("credential", {"id": "c1", "person": "p1", "type": "pin", "code": "1234"})
    put("credential", {"id": "c2", "person": "p1", "type": "rf", "code": "CAFE"})
    put("access_group", {"id": "g1", "name": "Block A", "building": "b1",
                         "relays": [{"device": DP, "relay": 1}, {"board": "mk", "channel": 3},
                                    {"board": "acme", "channel": 2}, {"board": "hf", "channel": 1},
                                    {"board": "hf", "channel": 3}]})

    print("== bus: start and idle state")
    daemon = subprocess.Popen(daemon_cmd(os.path.join(ROOT, BUILD, "gatehoused"), T) + ["--config", CONF],
                              stdout=subprocess.DEVNULL, stderr=open(T + "/daemon.log", "w"))
    wait(lambda: os.path.exists(T + "/ctl.sock"), 10)
    ok("every HF-8000 relay is driven off at start (register off value)",
       wait(lambda: all(512 in hf.values(a) for a in range(4))), hf.writes)
    ok("every MK485 relay is driven off at start (coils)", wait(lambda: all(0 in mk.values(a) for a in range(8))), mk.writes)
    ok("every board shows online", wait(lambda: all(b["online"] for b in status().get("boards", [])) and
                                       len(status()["boards"]) == 11), status().get("boards"))

    print("== bus: a granted PIN opens the board relay wired to the door phone")
    n0 = len(hf.writes)
    r = gh("access", "check", "--device", DP, "--method", "pin", "--code", "1234", "--relay", "1")
    ok("granted", '"granted": true' in r.stdout, r.stdout)
    ok("the relay goes on (0x0100 on register 1)", wait(lambda: 256 in hf.values(1)[n0 and 0:]), hf.writes[n0:])
    ok("and off again after the hold time", wait(lambda: hf.values(1)[-1:] == [512] and 256 in hf.values(1), 5), hf.writes[n0:])
    seq = [v for (_, k, a, v) in hf.writes[n0:] if a == 1]
    ok("on before off, once each", seq == [256, 512], seq)

    print("== bus: a new open during a pulse extends it")
    n0 = len(hf.writes)
    gh("access", "check", "--device", DP, "--method", "pin", "--code", "1234")
    wait(lambda: 256 in [v for (_, k, a, v) in hf.writes[n0:] if a == 1])
    time.sleep(0.3)
    gh("access", "check", "--device", DP, "--method", "pin", "--code", "1234")
    t_second = time.monotonic()
    wait(lambda: 512 in [v for (_, k, a, v) in hf.writes[n0:] if a == 1], 5)
    t_off = time.monotonic()
    seq = [v for (_, k, a, v) in hf.writes[n0:] if a == 1]
    ok("one on, one off for two opens", seq == [256, 512], seq)
    ok("the off follows the second open, not the first", t_off > t_second)

    print("== bus: a board channel in a group, over RTU")
    m0 = len(mk.writes)
    r = gh("access", "check", "--board", "mk", "--relay", "3", "--method", "rf", "--code", "cafe")
    ok("an RF card at the bike room board is granted", '"granted": true' in r.stdout, r.stdout)
    ok("coil 2 on then off (MK485, 9600 8N1 on the pty)",
       wait(lambda: [v for (_, k, a, v) in mk.writes[m0:] if a == 2] == [1, 0], 5), mk.writes[m0:])
    r = gh("access", "check", "--board", "mk", "--relay", "3", "--method", "rf", "--code", "NOPE")
    ok("an unknown card switches nothing", '"granted": false' in r.stdout and
       [v for (_, k, a, v) in mk.writes[m0:] if a == 2] == [1, 0], r.stdout)

    print("== bus: lifts")
    time.sleep(1.3)  # the grants above switched floors too: let them end
    l0 = len(lift.writes)
    gh("access", "check", "--device", DP, "--method", "pin", "--code", "1234")
    ok("a granted resident's floors are switched on (3 and G0 -> buttons 4 and 1)",
       wait(lambda: sorted(a for (_, k, a, v) in lift.writes[l0:] if v == 1) == [0, 3], 5), lift.writes[l0:])
    ok("and off after the lift grant time",
       wait(lambda: sorted(a for (_, k, a, v) in lift.writes[l0:] if v == 0) == [0, 3], 5), lift.writes[l0:])
    l0 = len(lift.writes)
    gh("access", "check", "--device", DP, "--method", "pin", "--code", "1234")
    wait(lambda: len([1 for (_, k, a, v) in lift.writes[l0:] if v == 1]) == 2)
    time.sleep(0.5)
    gh("access", "check", "--device", DP, "--method", "pin", "--code", "2345")
    ok("overlapping grants merge: floor 3 is switched on once and off once",
       wait(lambda: [v for (_, k, a, v) in lift.writes[l0:] if a == 3] == [1, 0], 5)
       and [v for (_, k, a, v) in lift.writes[l0:] if a == 2] == [1, 0], lift.writes[l0:])

    l0, la0 = len(lift2.writes), len(lift.writes)
    r = gh("access", "check", "--board", "hf", "--relay", "4", "--method", "pin", "--code", "3456")
    ok("a Block B resident is granted at its door", '"granted": true' in r.stdout, r.stdout)
    ok("unlabelled buttons follow the building: -2, G1 and 2 -> buttons 1, 4 and 6",
       wait(lambda: sorted(a for (_, k, a, v) in lift2.writes[l0:] if v == 1) == [0, 3, 5], 5), lift2.writes[l0:])
    ok("Block A's lift is not switched for a Block B resident",
       not [1 for (_, k, a, v) in lift.writes[la0:] if v == 1], lift.writes[la0:])
    put("building", {"id": "b2", "name": "Block B", "ground_floor": "0", "floor_start": -1})
    time.sleep(1.5)  # the grant ended; housekeeping reloaded the boards
    l0 = len(lift2.writes)
    gh("access", "check", "--board", "hf", "--relay", "4", "--method", "pin", "--code", "3456")
    ok("after the building's numbering changes (ground 0, start -1): 2 and -2 -> button 4 only (G1 is gone)",
       wait(lambda: sorted(a for (_, k, a, v) in lift2.writes[l0:] if v == 1) == [3], 5)
       and not wait(lambda: len([1 for (_, k, a, v) in lift2.writes[l0:] if v == 1]) > 1, 0.5), lift2.writes[l0:])

    print("== bus: remote open")
    a0 = len(acme.writes)
    r = gh("relay", "open", "acme", "1")
    ok("gatehouse relay open BOARD N pulses the channel",
       r.returncode == 0 and wait(lambda: [v for (_, k, a, v) in acme.writes[a0:] if a == 10] == [1, 0], 5), r.stdout)
    ok("written to the door and audit logs",
       db("SELECT initiator, method FROM door_logs WHERE board='acme' AND channel=1") == [("cli", "remote")] and
       db("SELECT count(*) FROM audit_logs WHERE action='open' AND eid='acme'") == [(1,)])
    r = gh("relay", "open", "nosuch", "1")
    ok("an unknown target is refused", r.returncode != 0 and "no such" in r.stdout, r.stdout)

    print("== bus: every reference profile over its transports")
    r0, h0 = len(rsac.writes), len(hfr.writes)
    gh("relay", "open", "rsac", "16")
    gh("relay", "open", "hfr", "4")
    ok("RSAC-C1-R8 over RTU: channel 16 is coil 15",
       wait(lambda: [v for (_, k, a, v) in rsac.writes[r0:] if a == 15] == [1, 0], 5), rsac.writes[r0:])
    ok("HF-8000 over RTU: channel 4 is register 3",
       wait(lambda: [v for (_, k, a, v) in hfr.writes[h0:] if a == 3] == [256, 512], 5), hfr.writes[h0:])
    time.sleep(0.3)
    a0 = len(acme.writes)
    lpr.send("read 1 W123AB")
    ok("LPR-CAMERA over TCP: a known plate opens the lot's entry barrier",
       wait(lambda: [v for (_, k, a, v) in acme.writes[a0:] if a == 11] == [1, 0], 5), acme.writes[a0:])
    ok("an unlimited lot keeps the vehicle inside", wait(lambda: db("SELECT person FROM lot_vehicles WHERE lot='lot2'") == [("p2",)]))

    print("== bus: a board from an added profile file")
    a0 = len(acme.writes)
    r = gh("access", "check", "--board", "acme", "--relay", "2", "--method", "pin", "--code", "1234")
    ok("it opens with the access style its file names (coil at base 10)",
       wait(lambda: [v for (_, k, a, v) in acme.writes[a0:] if a == 11] == [1, 0], 5), acme.writes[a0:])

    print("== bus: inputs")
    level.send("input 1 1")
    ok("a non-latching input's level change is a door event (open)",
       wait(lambda: db("SELECT type FROM door_logs WHERE board='mkl' AND channel=1") == [("door_open",)], 5))
    level.send("input 1 0")
    ok("and back (closed)", wait(lambda: db("SELECT type FROM door_logs WHERE board='mkl' AND channel=1 ORDER BY id")
                                 == [("door_open",), ("door_close",)], 5))
    latch.send("input 2 1")
    latch.send("input 2 0")  # a pulse far shorter than the poll interval
    ok("a latching board keeps a short edge until it is read: one event",
       wait(lambda: db("SELECT count(*) FROM door_logs WHERE board='mke' AND channel=2") == [(1,)], 5))
    ok("the gateway clears the latched input (ON to coil 100+n-1)",
       wait(lambda: (101, 1) in [(a, v) for (_, k, a, v) in latch.writes], 5), latch.writes[-5:])
    time.sleep(0.4)
    ok("and does not report it twice", db("SELECT count(*) FROM door_logs WHERE board='mke' AND channel=2") == [(1,)])
    latch.send("input 2 1")
    ok("the next edge is a new event", wait(lambda: db("SELECT count(*) FROM door_logs WHERE board='mke' AND "
                                                      "channel=2") == [(2,)], 5))

    print("== bus: parking: a UHF reader, barriers, capacity")
    time.sleep(0.5)  # the reader's first poll sets the baseline
    n0 = len(hf.writes)
    uhf.send("read 1 E200AA11")
    ok("a known tag at the entry opens the entry barrier",
       wait(lambda: [v for (_, k, a, v) in hf.writes[n0:] if a == 0] == [256, 512], 5), hf.writes[n0:])
    ok("the vehicle is inside", wait(lambda: db("SELECT code, person FROM lot_vehicles WHERE lot='lot1'") == [("E200AA11", "p1")]))
    n0 = len(hf.writes)
    uhf.send("read 1 E200BB22")
    ok("a full lot refuses entry, logged",
       wait(lambda: db("SELECT count(*) FROM door_logs WHERE reason='lot_full' AND code='E200BB22'") == [(1,)], 5)
       and [v for (_, k, a, v) in hf.writes[n0:] if a == 0] == [], hf.writes[n0:])
    uhf.send("read 2 E200AA11")
    ok("the exit barrier opens on the way out",
       wait(lambda: [v for (_, k, a, v) in hf.writes[n0:] if a == 2] == [256, 512], 5), hf.writes[n0:])
    ok("and the stay is kept with its duration",
       wait(lambda: db("SELECT code, duration >= 0 FROM parking_logs") == [("E200AA11", 1)]) and
       db("SELECT count(*) FROM lot_vehicles WHERE lot='lot1'") == [(0,)])
    uhf.send("read 1 DEADBEEF")
    ok("an unknown tag opens nothing and is logged",
       wait(lambda: db("SELECT count(*) FROM door_logs WHERE code='DEADBEEF' AND result='failed' AND "
                       "reason='unknown_credential'") == [(1,)], 5))
    uhf.send("skip 3")
    uhf.send("read 1 E200BB22")
    ok("reads missed between two polls are logged",
       wait(lambda: "3 reads missed" in open(T + "/daemon.log").read(), 5))
    ok("and the read after them still counts",
       wait(lambda: db("SELECT code FROM lot_vehicles WHERE lot='lot1'") == [("E200BB22",)], 5))

    print("== bus: a dead board, the other bus unaffected, recovery")
    hf.signal(signal.SIGUSR1)  # stops answering
    m0, n0 = len(mk.writes), len(hf.writes)
    last_log = db("SELECT COALESCE(max(id), 0) FROM door_logs")[0][0]
    gh("access", "check", "--device", DP, "--method", "pin", "--code", "1234")
    gh("access", "check", "--board", "mk", "--relay", "3", "--method", "rf", "--code", "CAFE")
    ok("the RTU board opens while the TCP board times out",
       wait(lambda: 1 in [v for (_, k, a, v) in mk.writes[m0:] if a == 2], 3)
       and db("SELECT count(*) FROM door_logs WHERE board = 'hf' AND result IN ('failed','offline') AND id > ?",
              last_log)[0][0] == 0,
       mk.writes[m0:])
    ok("the failed open is in the door log with its error",
       wait(lambda: db("SELECT count(*) FROM door_logs WHERE board = 'hf' AND channel = 2 AND result IN "
                       "('failed','offline') AND reason IS NOT NULL")[0][0] >= 1, 10))
    ok("the board shows offline with its last error",
       wait(lambda: any(b["id"] == "hf" and not b["online"] and b["last_error"] for b in status()["boards"])),
       status()["boards"])
    gh("access", "check", "--device", DP, "--method", "pin", "--code", "1234")
    ok("opening an offline board is logged 'offline'",
       wait(lambda: db("SELECT count(*) FROM door_logs WHERE board = 'hf' AND result = 'offline'")[0][0] >= 1, 10))
    hf.signal(signal.SIGUSR1)  # answers again
    ok("the board comes back online through the backoff probe",
       wait(lambda: any(b["id"] == "hf" and b["online"] for b in status()["boards"]), 15), status()["boards"])
    hf.signal(signal.SIGUSR2)  # exceptions
    n0 = len(hf.writes)
    gh("access", "check", "--device", DP, "--method", "pin", "--code", "1234")
    ok("a Modbus exception is a failure too",
       wait(lambda: any(b["id"] == "hf" and not b["online"] and "failure" in (b["last_error"] or "").lower()
                        for b in status()["boards"]), 10), status()["boards"])
    hf.signal(signal.SIGUSR2)
    wait(lambda: any(b["id"] == "hf" and b["online"] for b in status()["boards"]), 15)
    hf.signal(signal.SIGHUP)  # garbage instead of replies
    gh("access", "check", "--device", DP, "--method", "pin", "--code", "1234")
    ok("garbage replies are a failure, the daemon carries on",
       wait(lambda: any(b["id"] == "hf" and not b["online"] for b in status()["boards"]), 10)
       and daemon.poll() is None, status()["boards"])
    hf.signal(signal.SIGHUP)
    ok("and the board recovers", wait(lambda: any(b["id"] == "hf" and b["online"] for b in status()["boards"]), 15))

    print("== bus: emergency holds the door channels open")
    n0, m0 = len(hf.writes), len(mk.writes)
    r = gh("emergency", "on")
    ok("emergency on", '"state": "on"' in r.stdout, r.stdout)
    ok("door channels of both boards go on",
       wait(lambda: 256 in [v for (_, k, a, v) in hf.writes[n0:] if a == 1] and
            1 in [v for (_, k, a, v) in mk.writes[m0:] if a == 2], 5), (hf.writes[n0:], mk.writes[m0:]))
    time.sleep(1.2)  # longer than any hold time
    ok("and stay on past the hold time", [v for (_, k, a, v) in hf.writes[n0:] if a == 1] == [256] and
       [v for (_, k, a, v) in mk.writes[m0:] if a == 2] == [1])
    ok("the barrier channel is not a door and stays off", 256 not in [v for (_, k, a, v) in hf.writes[n0:] if a == 0])
    gh("emergency", "off")
    ok("emergency off releases them",
       wait(lambda: [v for (_, k, a, v) in hf.writes[n0:] if a == 1] == [256, 512] and
            [v for (_, k, a, v) in mk.writes[m0:] if a == 2] == [1, 0], 5), (hf.writes[n0:], mk.writes[m0:]))
    gh("emergency", "on")
    wait(lambda: 256 in [v for (_, k, a, v) in hf.writes[-4:] if a == 1])
    daemon.terminate()
    daemon.wait(10 * SLOW)
    n0 = len(hf.writes)
    daemon = subprocess.Popen(daemon_cmd(os.path.join(ROOT, BUILD, "gatehoused"), T) + ["--config", CONF],
                              stdout=subprocess.DEVNULL, stderr=open(T + "/daemon2.log", "w"))
    ok("after a restart during an emergency the door channels are driven on, the rest off",
       wait(lambda: 256 in hf.values(1)[-1:] and all(512 in [v for (_, k, a, v) in hf.writes[n0:] if a == x]
                                                   for x in (0, 2, 3)), 10), hf.writes[n0:])
    gh("emergency", "off")
finally:
    if daemon and daemon.poll() is None:
        daemon.terminate()
        daemon.wait(10 * SLOW)
    for s in sims:
        s.stop()
    for sp in [socat] + (socats if "socats" in dir() else []):
        if sp:
            sp.terminate()
            sp.wait(5)
    valgrind_check(T, "bus")
    if counts["failed"]:
        print("  (logs kept in %s)" % T)
    else:
        shutil.rmtree(T, ignore_errors=True)

print("bus: %d passed, %d failed" % (counts["passed"], counts["failed"]))
sys.exit(1 if counts["failed"] else 0)
