#!/usr/bin/python3
"""bench_bus: time from access.check to the relay being switched at a Modbus
board, over Modbus TCP (loopback) and Modbus RTU at 115200 baud on a socat
pseudo-terminal pair, and a bus's request rate. The board simulator stamps
each write with CLOCK_MONOTONIC (the clock Python's time.monotonic_ns reads),
so the figure is request sent -> coil written, end to end through the
daemon's control socket, the engine, the bus worker and the Modbus round
trip. Measures and prints; never asserts.

A pty moves bytes at memory speed, so the plain RTU figure shows the
gateway's own share only. The third board ("RTU, paced") runs the simulator
with --paced: it waits the wire time of both frames at 115200 8N1 plus the two
t3.5 silences before it answers, as a real RS485 board would, and stamps the
write when its reply leaves. That figure is comparable with the physical floor
of a write-single-coil round trip (MODBUS.md: 16 bytes at 86.8 us plus
2 x 1.75 ms = 4.89 ms).

usage: bench/bench_bus.py [BUILD_DIR] [--samples N]
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.getcwd()
BUILD = next((a for a in sys.argv[1:] if not a.startswith("--")), os.environ.get("GH_BUILD", "build"))
N = int(sys.argv[sys.argv.index("--samples") + 1]) if "--samples" in sys.argv else 400
T = tempfile.mkdtemp(prefix="gh-bench-bus-")
CH = 16


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Sim:
    def __init__(self, profile, *where):
        self.writes = {}
        self.offs = {}
        self.proc = subprocess.Popen([os.path.join(ROOT, BUILD, "sim", "modbus_sim"), "--profile", profile] + list(where),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.ready = threading.Event()
        self.lock = threading.Condition()
        threading.Thread(target=self.read, daemon=True).start()
        self.ready.wait(5)

    def read(self):
        for line in self.proc.stdout:
            f = line.split()
            if len(f) >= 2 and f[1] == "ready":
                self.ready.set()
            elif len(f) == 4 and f[1] == "coil":
                with self.lock:
                    (self.writes if f[3] == "1" else self.offs).setdefault(int(f[2]), []).append(int(f[0]))
                    self.lock.notify_all()

    def wait_on(self, addr, after_us, timeout=2.0, off=False):
        end = time.time() + timeout
        with self.lock:
            while True:
                hits = [t for t in (self.offs if off else self.writes).get(addr, []) if t >= after_us]
                if hits:
                    return hits[0]
                if time.time() > end:
                    return None
                self.lock.wait(0.05)


def result(figure, measured, unit, target=None, met=None):
    """One headline figure for bench/report.py ("make bench"), besides the
    human output; met stays None without a target. Never asserted."""
    print("RESULT " + json.dumps({"bench": 'bench_bus', "figure": figure, "target": target,
                                  "measured": round(measured, 4), "unit": unit, "met": met}))


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(p / 100.0 * (len(v) - 1) + 0.5))] if v else float("nan")


def ctl(sock_path):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock_path)
    return s, s.makefile("rwb")


def run():
    profile = os.path.join(T, "BENCH-16.ini")
    with open(profile, "w") as f:
        f.write("[profile]\nname = BENCH-16\nkind = relay\nchannels = 16\ntransports = rtu,tcp\n"
                "[serial]\nbaud = 115200\n[relay]\nwrite = coil\n[timing]\ngap_ms = 2\n")
    os.makedirs(T + "/profiles")
    shutil.copy(profile, T + "/profiles/")
    socat = subprocess.Popen(["socat", "pty,raw,echo=0,link=%s/gw" % T, "pty,raw,echo=0,link=%s/board" % T],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    socat2 = subprocess.Popen(["socat", "pty,raw,echo=0,link=%s/gw2" % T, "pty,raw,echo=0,link=%s/board2" % T],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not all(os.path.exists(T + "/" + x) for x in ("gw", "board", "gw2", "board2")):
        time.sleep(0.02)
    port = free_port()
    tcp = Sim(profile, "--tcp", str(port))
    rtu = Sim(profile, "--rtu", T + "/board")
    rtup = Sim(profile, "--rtu", T + "/board2", "--paced")
    conf = T + "/gh.conf"
    with open(conf, "w") as f:
        f.write("[site]\nid = bench\n[storage]\ndb = site.db\n[drivers]\nprofiles_dir = profiles\n"
                "[daemon]\ncontrol_socket = ctl.sock\nlog_level = warn\n[mqtt]\nport = %d\n" % free_port())

    def put(kind, obj):
        subprocess.run([os.path.join(ROOT, BUILD, "gatehouse"), "--config", conf, "put", kind, "-"],
                       input=json.dumps(obj), capture_output=True, text=True, check=True)

    put("settings", {"relay_hold_ms": 100})
    put("relay_board", {"id": "tcp", "profile": "BENCH-16", "mode": "ethernet", "bus": "127.0.0.1:%d" % port})
    put("relay_board", {"id": "rtu", "profile": "BENCH-16", "mode": "rs485", "bus": T + "/gw",
                        "serial": {"baud": 115200}})
    put("relay_board", {"id": "rtup", "profile": "BENCH-16", "mode": "rs485", "bus": T + "/gw2",
                        "serial": {"baud": 115200}})
    put("building", {"id": "b", "name": "B"})
    put("apartment", {"id": "a", "building": "b", "apt": "1"})
    put("person", {"id": "p", "kind": "resident", "apartment": "a", "first_name": "Bench"})
    put("credential", {"id": "c", "person": "p", "type": "pin", "code": "1234"})
    put("access_group", {"id": "g", "name": "all", "relays": [{"board": b, "channel": c} for b in ("tcp", "rtu", "rtup")
                                                             for c in range(1, CH + 1)],
                         "members": {"persons": ["p"]}})
    daemon = subprocess.Popen([os.path.join(ROOT, BUILD, "gatehoused"), "--config", conf],
                              stdout=subprocess.DEVNULL, stderr=open(T + "/daemon.log", "w"))
    while not os.path.exists(T + "/ctl.sock"):
        time.sleep(0.02)
    time.sleep(1.0)  # idle state written, boards online
    s, f = ctl(T + "/ctl.sock")
    print("gatehouse bench_bus: access.check -> coil on, %d samples per transport" % N)
    results = {}
    labels = {"tcp": "Modbus TCP, loopback       ", "rtu": "Modbus RTU, 115200, pty   ",
              "rtup": "Modbus RTU, 115200, paced "}
    floor_ms = (16 * 10 / 115200.0 + 2 * 0.00175) * 1000
    for name, sim in (("tcp", tcp), ("rtu", rtu), ("rtup", rtup)):
        lat = []
        for i in range(N if name != "rtup" else N // 2):
            ch = i % CH + 1
            if i and ch == 1 and name != "rtup":
                time.sleep(0.12)  # every pulse of the round has ended (hold 100 ms)
            t0 = time.monotonic_ns() // 1000
            f.write(json.dumps({"op": "access.check", "board": name, "relay": ch, "method": "pin",
                                "code": "1234"}).encode() + b"\n")
            f.flush()
            f.readline()
            t1 = sim.wait_on(ch - 1, t0)
            if t1:
                lat.append((t1 - t0) / 1000.0)
            if name == "rtup" and t1:
                # one write at a time on the slow line: the pulse's "off"
                # (after the 100 ms hold) would otherwise queue the next open
                sim.wait_on(ch - 1, t1, off=True)
            # requests arrive one at a time, as doors are opened (the paced
            # line needs ~5 ms a write: a faster rate would measure queueing)
            time.sleep(0.004 if name != "rtup" else 0.010)
        results[name] = lat
        print("  %s: p50 %.3f  p90 %.3f  p99 %.3f  max %.3f ms  (%d switched)" % (
            labels[name], pct(lat, 50), pct(lat, 90), pct(lat, 99), max(lat) if lat else float("nan"), len(lat)))
        if name == "rtup" and lat:
            print("    physical floor %.2f ms: p50 %.2fx, p99 %.2fx the floor" % (
                floor_ms, pct(lat, 50) / floor_ms, pct(lat, 99) / floor_ms))
    # bus rate: a burst of opens on distinct channels, time to the last write
    time.sleep(0.3)
    rates = {}
    for name, sim in (("tcp", tcp), ("rtu", rtu), ("rtup", rtup)):
        t0 = time.monotonic_ns() // 1000
        for ch in range(1, CH + 1):
            f.write(json.dumps({"op": "access.check", "board": name, "relay": ch, "method": "pin",
                                "code": "1234"}).encode() + b"\n")
        f.flush()
        for _ in range(CH):
            f.readline()
        ends = [sim.wait_on(ch - 1, t0) for ch in range(1, CH + 1)]
        first, last = min(e for e in ends if e), max(e for e in ends if e)
        rates[name] = (CH - 1) / ((last - first) / 1e6) if last > first else float("nan")
        print("  %s bus rate: %.0f requests/s (gap_ms 2)" % (name, rates[name]))
        time.sleep(0.3)
    names = {"tcp": "Modbus TCP, loopback", "rtu": "Modbus RTU 115200 on a pty (the gateway's share)",
             "rtup": "Modbus RTU 115200, paced like a real line"}
    for name, lat in results.items():
        if not lat:
            continue
        result("door open -> coil on, %s, p50" % names[name], pct(lat, 50), "ms")
        if name == "tcp":
            result("door open -> coil on, %s, p99" % names[name], pct(lat, 99), "ms", "<= 1 ms", pct(lat, 99) <= 1.0)
        else:
            result("door open -> coil on, %s, p99" % names[name], pct(lat, 99), "ms")
        if name == "rtup":
            r = pct(lat, 99) / floor_ms
            result("paced RTU p99 / the %.2f ms physical floor" % floor_ms, r, "x", "<= 1.5x", r <= 1.5)
    for name, rate in rates.items():
        result("bus request rate (gap_ms 2), %s" % names[name], rate, "requests/s")
    print("BENCH_JSON " + json.dumps({k: {"p50_ms": pct(v, 50), "p99_ms": pct(v, 99), "n": len(v)}
                                      for k, v in results.items()} | {"rate": rates}))
    s.close()
    daemon.terminate()
    daemon.wait(10)
    for x in (tcp, rtu, rtup):
        x.proc.terminate()
    socat.terminate()
    socat2.terminate()


try:
    run()
finally:
    shutil.rmtree(T, ignore_errors=True)
