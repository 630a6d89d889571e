#!/usr/bin/python3
"""bench_cloud: the cloud link against the cloud simulator over real HTTPS
(tests/sim/cloudsim.py): a first snapshot of a community-sized site applied
by a fresh gatehoused (time and the daemon's peak RSS), the drain rate of an
event backlog, and the latency of a delta of 1,000 changes (from the sync
command to the last change applied). Measures and prints; never asserts.

usage: bench/bench_cloud.py [BUILD_DIR] [--quick] [--persons N] [--backlog N] [--sequential-codes]
  full size: 200k persons, 80k apartments, 1M credentials; 200k backlog events
  --quick:   20k persons, 100k credentials; 50k backlog events
  card numbers and PINs in no order, as real ones are (as bench_engine's);
  --sequential-codes: in the order of their persons (runs before 2026-12-06)
"""
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

ROOT = os.getcwd()
sys.path.insert(0, os.path.join(ROOT, "tests", "sim"))
from cloudsim import CloudSim  # noqa: E402

args = sys.argv[1:]
BUILD = next((a for a in args if not a.startswith("--") and not a.isdigit()), os.environ.get("GH_BUILD", "build"))
QUICK = "--quick" in args
SEQUENTIAL = "--sequential-codes" in args
PERSONS = int(args[args.index("--persons") + 1]) if "--persons" in args else (20000 if QUICK else 200000)
BACKLOG = int(args[args.index("--backlog") + 1]) if "--backlog" in args else (50000 if QUICK else 200000)
T = tempfile.mkdtemp(prefix="gh-bench-cloud-")
SITE, TOKEN = "bench", "bench-token"


def result(figure, measured, unit, target=None, met=None):
    """One headline figure for bench/report.py ("make bench"), besides the
    human output; met stays None without a target. Never asserted."""
    print("RESULT " + json.dumps({"bench": 'bench_cloud', "figure": figure, "target": target,
                                  "measured": round(measured, 4), "unit": unit, "met": met}))


def status():
    r = subprocess.run([os.path.join(ROOT, BUILD, "gatehouse"), "--config", T + "/gh.conf", "status"],
                       capture_output=True, text=True)
    try:
        return json.loads(r.stdout)
    except ValueError:
        return {}


def db_rev():
    """The revision the box has applied, read from its database (a reader of
    its own, as the checkpointer is): `gatehouse status` counts every
    entity table, 30 ms of the event loop's time on this site, which polling
    it every 0.1 s would add to the figure."""
    try:
        db = sqlite3.connect("file:%s/site.db?mode=ro" % T, uri=True, timeout=1)
        try:
            row = db.execute("SELECT value FROM sync_state WHERE key = 'rev'").fetchone()
        finally:
            db.close()
        return int(row[0]) if row else None
    except (sqlite3.Error, ValueError):
        return None


def rss(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) / 1024.0
    return 0.0


def cpu_s(pid, tid=None):
    with open("/proc/%d/task/%d/stat" % (pid, tid) if tid else "/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_cpu(pid):
    """[(thread name, CPU s)] of a process, the busiest first (gatehoused
    names its threads: gh-cloud-pull, gh-checkpoint, gh-bus-*)."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                name = f.read().strip()
            name = "event loop" if int(tid) == pid else name
            out[name] = out.get(name, 0.0) + cpu_s(pid, int(tid))
        except (OSError, ValueError):
            pass
    return sorted(out.items(), key=lambda kv: -kv[1])


def mix(x):
    """splitmix64's finalizer: a bijection, so distinct inputs give distinct
    random-looking codes (card numbers and PINs are not issued in order)."""
    x = (x + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return x ^ (x >> 31)


def seed(sim):
    """The site in the cloud: the shape of bench_engine's, sent in batches."""
    nb = max(1, PERSONS // 2000)
    batch = []

    def flush():
        if batch:
            sim.ctl("POST", "/_sim/entities", {"changes": batch}, timeout=300)
            batch.clear()

    def put(entity, eid, data):
        batch.append({"entity": entity, "op": "upsert", "id": eid, "data": data})
        if len(batch) >= 5000:
            flush()

    put("settings", "site", {"timezone": "Europe/Vienna"})
    for b in range(nb):
        put("building", "b%d" % b, {"name": "Building %d" % b})
    for p in range(PERSONS):
        a = p * 2 // 5
        if p == 0 or (p - 1) * 2 // 5 != a:
            put("apartment", "a%d" % a, {"building": "b%d" % (a % nb), "apt": str(100000 + a // nb)})
        put("person", "p%d" % p, {"kind": "resident", "apartment": "a%d" % a, "first_name": "P%d" % p})
    for p in range(PERSONS):
        if SEQUENTIAL:
            pin, rfs = "%08d" % (10000000 + p), ["%08X%d" % (p, k) for k in range(4)]
        else:  # as cards and PINs are: in no order (a stride for PINs keeps them unique)
            pin, rfs = "%08d" % (10000000 + (p * 7919 + 12345) % 80000000), ["%016X" % mix(p * 4 + k) for k in range(4)]
        put("credential", "pin%d" % p, {"person": "p%d" % p, "type": "pin", "code": pin})
        for k in range(4):
            put("credential", "rf%d-%d" % (p, k), {"person": "p%d" % p, "type": "rf", "code": rfs[k]})
    flush()
    return sim.ctl("GET", "/_sim/stats").get("seq") or sim.upsert("building", "b0", {"name": "Building 0"})


def main():
    sim = CloudSim(T + "/cloud", SITE, TOKEN).start()
    print("gatehouse bench_cloud%s: %d persons, %d credentials (codes %s) in the cloud simulator" % (
        " (quick)" if QUICK else "", PERSONS, PERSONS * 5, "in order" if SEQUENTIAL else "in no order"))
    t0 = time.time()
    rev = seed(sim)
    rev = sim.upsert("building", "b0", {"name": "Building 0"})
    print("  seeded in %.1f s (rev %d)" % (time.time() - t0, rev))
    with open(T + "/token", "w") as f:
        f.write(TOKEN)
    os.chmod(T + "/token", 0o600)
    with open(T + "/gh.conf", "w") as f:
        f.write("[site]\nid = %s\n[storage]\ndb = site.db\n[drivers]\nprofiles_dir = %s/drivers/profiles\n"
                "[daemon]\ncontrol_socket = ctl.sock\nlog_level = warn\n[mqtt]\nport = 1\n"
                "[cloud]\nurl = %s\ntoken_file = token\nca_file = %s\nbackoff_min_ms = 100\n"
                % (SITE, ROOT, sim.url, sim.ca))

    # 1. snapshot apply by a fresh box
    t0 = time.time()
    sim_cpu0 = cpu_s(sim.proc.pid)
    d = subprocess.Popen([os.path.join(ROOT, BUILD, "gatehoused"), "--config", T + "/gh.conf"],
                         stdout=subprocess.DEVNULL, stderr=open(T + "/daemon.log", "w"))
    peak = 0.0
    while time.time() - t0 < 600:
        peak = max(peak, rss(d.pid, "VmHWM:"))
        if db_rev() == rev:
            break
        time.sleep(0.1)
    snap_s = time.time() - t0
    snap_cpu = cpu_s(d.pid)
    loop_cpu = cpu_s(d.pid, d.pid)  # the main thread runs the event loop
    sim_cpu = cpu_s(sim.proc.pid) - sim_cpu0
    peak = max(peak, rss(d.pid, "VmHWM:"))
    n = status()
    print("\n[snapshot] %d entities applied by a fresh gatehoused in %.1f s (%.0f/s), peak RSS %.1f MB" % (
        PERSONS * 5 + PERSONS + PERSONS * 2 // 5 + 1, snap_s, (PERSONS * 6.4) / snap_s, peak))
    threads = thread_cpu(d.pid)
    print("  gatehoused busy %.1f s of it (%.0f%%), its event loop %.1f s (%.0f%%): the rest of the loop's time "
          "is waiting for the simulator's pages, or for a core (the loop is runnable, another thread runs)"
          % (snap_cpu, 100 * snap_cpu / snap_s, loop_cpu, 100 * loop_cpu / snap_s))
    print("  its threads' CPU: " + ", ".join("%s %.1f s" % kv for kv in threads if kv[1] >= 0.05))
    print("  the cloud simulator (Python, same 2 cores) used %.1f s of CPU meanwhile" % sim_cpu)
    print("  (status rev %s, wan %s)" % ((n.get("cloud") or {}).get("rev"), n.get("wan")))

    # 2. delta of 1000 changes: sync command -> last change applied
    changes = [{"entity": "person", "op": "upsert", "id": "p%d" % i,
                "data": {"kind": "resident", "apartment": "a%d" % (i * 2 // 5), "first_name": "Changed%d" % i}}
               for i in range(1000)]
    rev2 = sim.ctl("POST", "/_sim/entities", {"changes": changes})["rev"]
    t0 = time.time()
    sim.command("sync")
    while time.time() - t0 < 60 and (status().get("cloud") or {}).get("rev") != rev2:
        time.sleep(0.01)
    delta_ms = (time.time() - t0) * 1000
    print("\n[delta] 1000 changes: sync command -> all applied in %.0f ms (incl. the long poll's answer)" % delta_ms)

    # 3. backlog drain
    d.terminate()
    d.wait(30)
    con = sqlite3.connect(T + "/site.db")
    now = int(time.time())
    con.executemany("INSERT INTO outbox(id, device, type, ts, data) VALUES (?, '0C1105D00001', 'door', ?, ?)",
                    [("bk:%07d" % i, now, '{"relay":1,"state":"open"}') for i in range(BACKLOG)])
    con.commit()
    con.close()
    d = subprocess.Popen([os.path.join(ROOT, BUILD, "gatehoused"), "--config", T + "/gh.conf"],
                         stdout=subprocess.DEVNULL, stderr=open(T + "/daemon.log", "a"))
    t0 = time.time()
    first = None
    while time.time() - t0 < 300:
        left = sqlite3.connect(T + "/site.db").execute("SELECT count(*) FROM outbox").fetchone()[0]
        if first is None and left < BACKLOG:
            first = time.time()
        if left == 0:
            break
        time.sleep(0.05)
    end = time.time()
    got = sim.ctl("GET", "/_sim/events?after=0&limit=1")
    print("\n[drain] %d backlog events to the cloud in %.2f s: %.0f events/s (from the first batch: %.0f/s)" % (
        BACKLOG, end - t0, BACKLOG / (end - t0), BACKLOG / max(0.001, end - (first or t0))))
    print("  cloud total events: %s" % got.get("total"))
    full = PERSONS >= 200000
    n_ent = PERSONS * 5 + PERSONS + PERSONS * 2 // 5 + 1
    result("first snapshot, %d entities through the validator (codes %s)" % (n_ent, "in order" if SEQUENTIAL else "in no order"), snap_s, "s",
           "<= 15 s" if full else None, snap_s <= 15 if full else None)
    result("first snapshot, daemon peak RSS (VmHWM)", peak, "MB", "<= 64 MB", peak <= 64)
    result("delta of 1000 changes, sync command -> all applied", delta_ms, "ms")
    drain = BACKLOG / (end - t0)
    result("backlog drain to the cloud (%d events)" % BACKLOG, drain, "events/s", ">= 50000 events/s",
           drain >= 50000)
    print("BENCH_JSON " + json.dumps({"persons": PERSONS, "snapshot_s": round(snap_s, 2), "peak_rss_mb": round(peak, 1),
                                      "backlog": BACKLOG, "drain_per_s": round(BACKLOG / (end - t0))}))
    d.terminate()
    d.wait(30)
    sim.stop()


try:
    main()
finally:
    if not os.environ.get("BENCH_KEEP"):
        shutil.rmtree(T, ignore_errors=True)
