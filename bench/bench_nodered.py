#!/usr/bin/python3
"""bench_nodered: gatehoused side by side with the set-up integrators use
instead, Node-RED with node-red-contrib-modbus, doing the same job on the same
machine under the same load: a door phone's access.check arrives over MQTT
(the real mosquitto, dynamic security on), the credential is looked up, the
answer goes back over MQTT and the door's relay is pulsed (100 ms) on a
Modbus TCP coil of build/sim/modbus_sim.

Both get the identical load from build/bench/loadgen (same devices, same
request plan, same rate): 80% PINs of residents of the door phone's
building, 20% unknown codes. Measured per request at the device: request ->
reply; at the board: request -> coil on (the simulator stamps each write
with CLOCK_MONOTONIC, the clock loadgen stamps its requests with). CPU % of
one core from /proc/PID/stat over the measured window, VmHWM at its end.

Node-RED looks credentials up in SQLite (node-red-node-sqlite, a read-only
file made from the same seed: credentials and door phones, one indexed
join per request); gatehoused uses its own store. Node-RED comes from
bench/nodered/install.sh (NODERED_HOME); without it only gatehoused runs.

usage: bench/bench_nodered.py [BUILD_DIR] [--quick] [--runs N] [--rates 50,500]
       [--seconds S] [--warmup S] [--persons N] [--devices N] [--only gatehoused|nodered]
       [--unbuffered]
Measures and prints; never asserts.
"""
import glob
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.getcwd()
sys.path.insert(0, os.path.join(ROOT, "tests", "sim"))
import broker as brokermod  # noqa: E402
from testlib import free_port  # noqa: E402

ARGS = sys.argv[1:]


def opt(name, default):
    return ARGS[ARGS.index(name) + 1] if name in ARGS else default


BUILD = next((a for i, a in enumerate(ARGS) if not a.startswith("--") and (i == 0 or not ARGS[i - 1].startswith("--"))),
             os.environ.get("GH_BUILD", "build"))
QUICK = "--quick" in ARGS
RUNS = int(opt("--runs", 1 if QUICK else 3))
RATES = [int(r) for r in opt("--rates", "50,500").split(",")]
# samples: 50/s for 20 s = 1000, 500/s for 10 s = 5000 (quick: a third)
SECONDS = {r: float(opt("--seconds", 0)) or ((6 if QUICK else 20) if r <= 100 else (4 if QUICK else 10))
           for r in RATES}
WARMUP = float(opt("--warmup", 2 if QUICK else 5))
PERSONS = int(opt("--persons", 20000))
DEVICES = int(opt("--devices", 200))
ONLY = opt("--only", None)
# --unbuffered: node-red-contrib-modbus without its command queue (bufferCommands
# off; the default queue waits two timers per command), a tuning to try by hand
UNBUFFERED = "--unbuffered" in ARGS
HOLD_MS = 100
BOARDS = 4  # the flow (bench/nodered/flow.json) has one Modbus client per board
PER_BOARD = (DEVICES + BOARDS - 1) // BOARDS  # gatehoused drives at most 64 channels a board
NODERED_HOME = os.environ.get("NODERED_HOME") or os.path.join(
    os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "gatehouse-bench", "nodered")
T = tempfile.mkdtemp(prefix="gh-bench-nodered-")
os.chmod(T, 0o755)  # the broker, dropped to the mosquitto user, must reach its folder


def nodered_installed():
    return subprocess.run(["sh", os.path.join(ROOT, "bench", "nodered", "install.sh"), "--check"],
                          env=dict(os.environ, NODERED_HOME=NODERED_HOME)).returncode == 0


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(p / 100.0 * (len(v) - 1) + 0.5))] if v else float("nan")


def median(v):
    return pct(v, 50)


# ---- the site, from one seed ----

NB = max(1, DEVICES // 2)


def mac(i):
    return "0C11C0%06X" % i


def person_building(p):
    return (p * 2 // 5) % NB


def pin(p):
    return "%08d" % (10000000 + p)


def wiring(d):
    """door phone d's relay: (board 1..BOARDS, coil address 0..)"""
    return d // PER_BOARD + 1, d % PER_BOARD


def gh(conf, *args, stdin=None, check=True):
    r = subprocess.run([os.path.join(ROOT, BUILD, "gatehouse"), "--config", conf] + list(args), input=stdin,
                       capture_output=True, text=True)
    if check and r.returncode:
        raise RuntimeError("gatehouse %s: %s" % (" ".join(args), r.stderr.strip()))
    return r


def build_sites(broker):
    """gatehoused's store (through the CLI and the validator) and Node-RED's
    SQLite file, from the same generator; device accounts on the broker."""
    conf = os.path.join(T, "gh.conf")
    with open(os.path.join(T, "mqtt.password"), "w") as f:
        f.write(broker.password + "\n")
    os.chmod(os.path.join(T, "mqtt.password"), 0o600)
    os.makedirs(os.path.join(T, "profiles"))
    with open(os.path.join(T, "profiles", "BENCH-COILS.ini"), "w") as f:
        # a coil per door phone; Modbus TCP needs no gap between requests
        # (that is RS485 turnaround); the default health poll (100 ms)
        f.write("[profile]\nname = BENCH-COILS\nkind = relay\nchannels = %d\ntransports = tcp\n"
                "[relay]\nwrite = coil\n[timing]\ngap_ms = 0\n" % PER_BOARD)
    mb_ports = [free_port() for _ in range(BOARDS)]
    with open(conf, "w") as f:
        f.write("[site]\nid = bench\n[storage]\ndb = site.db\n[drivers]\nprofiles_dir = profiles\n"
                "[daemon]\ncontrol_socket = ctl.sock\nlog_level = warn\n[mqtt]\nhost = 127.0.0.1\nport = %d\n"
                "username = %s\npassword_file = mqtt.password\nmanage_accounts = true\n"
                % (broker.port, broker.user))
    t0 = time.time()
    gh(conf, "put", "settings", "-", stdin=json.dumps({"timezone": "Europe/Vienna", "relay_hold_ms": HOLD_MS}))
    gh(conf, "put", "relay_board", "-", stdin=json.dumps(
        [{"id": "rb%d" % (b + 1), "profile": "BENCH-COILS", "mode": "ethernet", "bus": "127.0.0.1:%d" % mb_ports[b]}
         for b in range(BOARDS)]))
    gh(conf, "put", "building", "-", stdin=json.dumps([{"id": "b%d" % b, "name": "B%d" % b} for b in range(NB)]))
    apts, persons, creds = [], [], []
    for p in range(PERSONS):
        a = p * 2 // 5
        if p == 0 or (p - 1) * 2 // 5 != a:
            apts.append({"id": "a%d" % a, "building": "b%d" % (a % NB), "apt": str(100000 + a // NB)})
        persons.append({"id": "p%d" % p, "kind": "resident", "apartment": "a%d" % a, "first_name": "P%d" % p})
        creds.append({"id": "pin%d" % p, "person": "p%d" % p, "type": "pin", "code": pin(p)})
        for k in range(4):
            creds.append({"id": "rf%d-%d" % (p, k), "person": "p%d" % p, "type": "rf", "code": "%08X%d" % (p, k)})
    for kind, items in (("apartment", apts), ("person", persons), ("credential", creds)):
        for i in range(0, len(items), 50000):
            gh(conf, "put", kind, "-", stdin=json.dumps(items[i:i + 50000]))
    pws = {}
    for i in range(DEVICES):
        r = gh(conf, "device", "add", mac(i), "--type", "0", "--name", "Door %d" % i)
        pws[mac(i)] = json.loads(r.stdout)["mqtt_password"]
    gh(conf, "put", "device", "-", stdin=json.dumps(
        [{"id": mac(i), "type": 0, "name": "Door %d" % i, "area": "building", "building": "b%d" % (i // 2),
          "relays": [{"n": 1, "name": "Door", "board": {"board": "rb%d" % wiring(i)[0], "channel": wiring(i)[1] + 1}}]}
         for i in range(DEVICES)]))
    gh(conf, "put", "access_group", "-", stdin=json.dumps(
        [{"id": "g%d" % b, "name": "B%d" % b, "building": "b%d" % b,
          "relays": [{"device": mac(i), "relay": 1} for i in (2 * b, 2 * b + 1) if i < DEVICES]}
         for b in range(NB)]))
    print("  site: %d persons, %d credentials, %d door phones wired to %d Modbus TCP boards of %d coils (%.1f s)" % (
        PERSONS, len(creds), DEVICES, BOARDS, PER_BOARD, time.time() - t0))
    # Node-RED's store: the same credentials and door phones
    db = os.path.join(T, "nodered.db")
    con = sqlite3.connect(db)
    con.executescript("CREATE TABLE credentials(code TEXT, type TEXT, name TEXT, building TEXT,"
                      " PRIMARY KEY(code, type)) WITHOUT ROWID;"
                      "CREATE TABLE devices(mac TEXT PRIMARY KEY, building TEXT, board INTEGER, coil INTEGER)"
                      " WITHOUT ROWID;")
    con.executemany("INSERT INTO credentials VALUES (?, ?, ?, ?)",
                    [(c["code"], c["type"], "P%s" % c["person"][1:], "b%d" % person_building(int(c["person"][1:])))
                     for c in creds])
    con.executemany("INSERT INTO devices VALUES (?, ?, ?, ?)",
                    [(mac(i), "b%d" % (i // 2)) + wiring(i) for i in range(DEVICES)])
    con.commit()
    con.close()
    with open(os.path.join(T, "devices.txt"), "w") as f:
        for m, pw in pws.items():
            f.write("%s %s\n" % (m, pw))
    return conf, mb_ports, db


def write_plan(rate, seconds, seed):
    """The same requests for both: device i % DEVICES (so one device sends
    every DEVICES / rate s, longer than a relay pulse), 80% PINs of its
    building's residents, 20% unknown codes."""
    by_b = {}
    for p in range(PERSONS):
        by_b.setdefault(person_building(p), []).append(p)
    rnd = random.Random(seed)
    n = int(rate * (WARMUP + seconds))
    path = os.path.join(T, "plan-%d-%d.txt" % (rate, seed))
    with open(path, "w") as f:
        for i in range(n):
            d = i % DEVICES
            code = pin(rnd.choice(by_b[(d // 2) % NB])) if rnd.random() < 0.8 else "9%07d" % rnd.randrange(10 ** 7)
            f.write("%s %s\n" % (mac(d), code))
    return path, int(rate * WARMUP)


# ---- the board ----

class Board:
    def __init__(self, port):
        self.on = {}
        self.lock = threading.Lock()
        self.ready = threading.Event()
        self.proc = subprocess.Popen([os.path.join(ROOT, BUILD, "sim", "modbus_sim"), "--profile",
                                      os.path.join(T, "profiles", "BENCH-COILS.ini"), "--tcp", str(port)],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
        threading.Thread(target=self.read, daemon=True).start()
        self.ready.wait(5)

    def read(self):
        for line in self.proc.stdout:
            f = line.split()
            if len(f) >= 2 and f[1] == "ready":
                self.ready.set()
            elif len(f) == 4 and f[1] == "coil" and f[3] == "1":
                with self.lock:
                    self.on.setdefault(int(f[2]), []).append(int(f[0]))

    def stamps(self):
        with self.lock:
            return {k: list(v) for k, v in self.on.items()}

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


# ---- the two gateways ----

class Gatehoused:
    name = "gatehoused"

    def __init__(self, conf):
        self.conf = conf

    def start(self):
        self.proc = subprocess.Popen([os.path.join(ROOT, BUILD, "gatehoused"), "--config", self.conf],
                                     stdout=subprocess.DEVNULL, stderr=open(os.path.join(T, "daemon.log"), "a"))
        return self.proc.pid

    def stop(self):
        self.proc.terminate()
        self.proc.wait(20)


class NodeRed:
    name = "Node-RED"

    def __init__(self, broker, mb_ports, db):
        self.broker, self.mb_ports, self.db = broker, mb_ports, db

    def start(self):
        ud = os.path.join(T, "nodered")
        shutil.rmtree(ud, ignore_errors=True)
        os.makedirs(ud)
        with open(os.path.join(ROOT, "bench", "nodered", "flow.json")) as f:
            flow = json.load(f)
        for n in flow:
            if n["type"] == "modbus-client" and UNBUFFERED:
                n["bufferCommands"] = False
        with open(os.path.join(ud, "flows.json"), "w") as f:
            json.dump(flow, f)
        with open(os.path.join(ud, "flows_cred.json"), "w") as f:
            json.dump({"f0a1c0de00000010": {"user": self.broker.user, "password": self.broker.password}}, f)
        env = dict(os.environ, GH_MQTT_PORT=str(self.broker.port), GH_NODERED_DB=self.db,
                   GH_NODERED_UI_PORT=str(free_port()), NODE_PATH=os.path.join(NODERED_HOME, "node_modules"))
        for b, port in enumerate(self.mb_ports):
            env["GH_MODBUS_PORT_%d" % (b + 1)] = str(port)
        self.proc = subprocess.Popen(["node", os.path.join(NODERED_HOME, "node_modules", "node-red", "red.js"),
                                      "--userDir", ud, "--settings",
                                      os.path.join(ROOT, "bench", "nodered", "settings.js")],
                                     env=env, cwd=NODERED_HOME, stdout=open(os.path.join(T, "nodered.log"), "a"),
                                     stderr=subprocess.STDOUT)
        return self.proc.pid

    def stop(self):
        self.proc.terminate()
        self.proc.wait(20)


def node_version():
    try:
        return subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "?"


def measure(gw, broker, mb_ports, rate, run):
    """One system at one rate: a fresh board simulator, the system started,
    loadgen's warm-up and measured window, the system stopped."""
    # the broker forgets the last run: gatehoused keeps a persistent session,
    # so the requests sent to Node-RED while it was stopped would otherwise be
    # queued for it and answered (and pulsed) when it starts
    broker.stop()
    for f in glob.glob(os.path.join(broker.dir, "data", "*.db")):
        os.unlink(f)
    broker.start()
    boards = [Board(port) for port in mb_ports]
    pid = gw.start()
    plan, warm = write_plan(rate, SECONDS[rate], seed=1000 * run + rate)
    out = os.path.join(T, "out.txt")
    r = subprocess.run([os.path.join(ROOT, BUILD, "bench", "loadgen"), "--port", str(broker.port), "--devices",
                        os.path.join(T, "devices.txt"), "--plan", plan, "--rate", str(rate), "--warmup",
                        str(warm), "--settle-ms", "2000", "--out", out, "--pid", str(pid), "--broker-pid", str(broker.proc.pid)],
                       capture_output=True, text=True)
    time.sleep(HOLD_MS / 1000.0 + 0.3)  # the last pulses' writes
    gw.stop()
    for b in boards:
        b.stop()
    if r.returncode:
        print("  %s at %d/s: loadgen failed: %s" % (gw.name, rate, r.stderr.strip()))
        return None
    summary = json.loads([x for x in r.stdout.splitlines() if x.startswith("LOADGEN_JSON ")][-1][13:])
    stamps = [b.stamps() for b in boards]
    reply, coil, missing, granted = [], [], 0, 0
    used = {}
    rows = [tuple(int(x) for x in line.split()) for line in open(out)]
    for i, sent, rep, g, w in rows:
        ch = wiring(i % DEVICES)  # the plan sends request i from door phone i % DEVICES
        t1 = None
        if g == 1:
            s = stamps[ch[0] - 1].get(ch[1], [])
            k = used.get(ch, 0)
            while k < len(s) and s[k] < sent:
                k += 1
            if k < len(s):
                t1 = s[k]
                k += 1
            used[ch] = k
        if w:
            continue
        if rep:
            reply.append((rep - sent) / 1000.0)
        if g == 1:
            granted += 1
            if t1 is None:
                missing += 1
            else:
                coil.append((t1 - sent) / 1000.0)
    res = {"system": gw.name, "rate": rate, "run": run, "requests": summary["requests"],
           "answered": summary["answered"], "granted": granted, "coil_missing": missing,
           "reply_ms": reply, "coil_ms": coil, "cpu_pct": summary["cpu_pct"],
           "broker_cpu_pct": summary["broker_cpu_pct"], "vm_hwm_mb": summary["vm_hwm_mb"],
           "vm_rss_mb": summary["vm_rss_mb"]}
    print("  %-10s %4d/s run %d: reply p50 %6.2f p99 %7.2f ms | coil p50 %6.2f p99 %7.2f ms | CPU %5.1f%% "
          "(broker %4.1f%%) | VmHWM %6.1f MB | %d/%d answered, %d granted, %d coils missing" % (
              gw.name, rate, run, pct(reply, 50), pct(reply, 99), pct(coil, 50), pct(coil, 99), res["cpu_pct"],
              res["broker_cpu_pct"], res["vm_hwm_mb"], res["answered"], res["requests"], granted, missing))
    sys.stdout.flush()
    return res


def main():
    have_nr = nodered_installed()
    systems = ["gatehoused", "nodered"] if have_nr else ["gatehoused"]
    if ONLY:
        systems = [s for s in systems if s == ONLY]
    print("gatehouse bench_nodered%s: gatehoused vs Node-RED%s, %d door phones, %d credentials, rates %s, "
          "%d run(s), warm-up %g s" % (" (quick)" if QUICK else "", " (Modbus queue off)" if UNBUFFERED else "",
                                       DEVICES, PERSONS * 5, "/".join(str(r) for r in RATES), RUNS, WARMUP))
    if not have_nr:
        print("  Node-RED is not installed: `make bench-nodered` installs it (npm ci of bench/nodered/, into %s) "
              "and runs this comparison" % NODERED_HOME)
    broker = brokermod.Broker(os.path.join(T, "broker")).start()
    try:
        conf, mb_ports, db = build_sites(broker)
        gws = {"gatehoused": Gatehoused(conf), "nodered": NodeRed(broker, mb_ports, db)}
        results = []
        for run in range(1, RUNS + 1):
            for rate in RATES:
                # alternate which one goes first, so neither always gets the quieter moment
                order = systems if (run + RATES.index(rate)) % 2 else list(reversed(systems))
                for s in order:
                    r = measure(gws[s], broker, mb_ports, rate, run)
                    if r:
                        results.append(r)
        report(results)
    finally:
        broker.stop()


def agg(results, system, rate):
    rs = [r for r in results if r["system"] == system and r["rate"] == rate]
    if not rs:
        return None
    reply = [x for r in rs for x in r["reply_ms"]]
    coil = [x for r in rs for x in r["coil_ms"]]
    return {"runs": len(rs), "samples": len(reply), "reply_p50": pct(reply, 50), "reply_p99": pct(reply, 99),
            "coil_p50": pct(coil, 50), "coil_p99": pct(coil, 99),
            "reply_p99_runs": [round(pct(r["reply_ms"], 99), 3) for r in rs],
            "coil_p99_runs": [round(pct(r["coil_ms"], 99), 3) for r in rs],
            "cpu_pct": median([r["cpu_pct"] for r in rs]), "cpu_runs": [r["cpu_pct"] for r in rs],
            "broker_cpu_pct": median([r["broker_cpu_pct"] for r in rs]),
            "vm_hwm_mb": max(r["vm_hwm_mb"] for r in rs), "answered": sum(r["answered"] for r in rs),
            "requests": sum(r["requests"] for r in rs), "coil_missing": sum(r["coil_missing"] for r in rs)}


def report(results):
    print("\n[summary] all runs pooled (p50/p99 over every sample; CPU: median of runs; VmHWM: the highest)")
    out = {"unbuffered": UNBUFFERED, "devices": DEVICES, "credentials": PERSONS * 5, "runs": RUNS, "warmup_s": WARMUP,
           "seconds": {str(k): v for k, v in SECONDS.items()}, "node": node_version(), "rates": {}}
    for rate in RATES:
        g, n = agg(results, "gatehoused", rate), agg(results, "Node-RED", rate)
        out["rates"][str(rate)] = {"gatehoused": g, "nodered": n}
        for name, a in (("gatehoused", g), ("Node-RED", n)):
            if a:
                print("  %-10s %4d/s: reply p50 %.2f p99 %.2f ms, coil p50 %.2f p99 %.2f ms, CPU %.1f%%, "
                      "VmHWM %.1f MB (%d/%d answered, %d coils missing)" % (
                          name, rate, a["reply_p50"], a["reply_p99"], a["coil_p50"], a["coil_p99"], a["cpu_pct"],
                          a["vm_hwm_mb"], a["answered"], a["requests"], a["coil_missing"]))
        for fig, key, unit in (("request -> reply p50", "reply_p50", "ms"), ("request -> reply p99", "reply_p99", "ms"),
                               ("request -> coil on p50", "coil_p50", "ms"), ("request -> coil on p99", "coil_p99", "ms"),
                               ("CPU, % of one core", "cpu_pct", "%"), ("RSS (VmHWM)", "vm_hwm_mb", "MB")):
            # for bench/report.py: one row of the comparison (Node-RED null when it did not run)
            if g or n:
                print("COMPARE " + json.dumps({"rate": rate, "figure": fig, "unit": unit,
                                               "gatehoused": round(g[key], 3) if g else None,
                                               "nodered": round(n[key], 3) if n else None,
                                               "ratio": round(n[key] / g[key], 1) if g and n and g[key] else None}))
    print("BENCH_JSON " + json.dumps(out))


try:
    main()
finally:
    if not os.environ.get("BENCH_KEEP"):
        shutil.rmtree(T, ignore_errors=True)
