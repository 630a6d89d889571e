#!/usr/bin/python3
"""bench_web: the REST API and the live websocket of gatehoused over real
HTTPS. wrk measures GET /api/v1/status and a 1000-row page of a 100k-row door
log (latency percentiles, requests/s); one request exports all 100k rows as
CSV; 50 websocket clients receive door events written at 1,000/s (delivered
share and latency from the row's write to its arrival). Measures and
prints; never asserts.

usage: bench/bench_web.py [BUILD_DIR] [--quick]
"""
import json
import os
import re
import shutil
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import http.client

ROOT = os.getcwd()
sys.path.insert(0, os.path.join(ROOT, "tests", "sim"))
from testlib import WSClient, free_port  # noqa: E402

BUILD = next((a for a in sys.argv[1:] if not a.startswith("--")), os.environ.get("GH_BUILD", "build"))
QUICK = "--quick" in sys.argv
T = tempfile.mkdtemp(prefix="gh-bench-web-")
PORT = free_port()
ROWS = 20000 if QUICK else 100000
SECS = 3 if QUICK else 10
CLIENTS, RATE, WS_SECS = (10, 500, 3) if QUICK else (50, 1000, 5)


def result(figure, measured, unit, target=None, met=None):
    """One headline figure for bench/report.py ("make bench"), besides the
    human output; met stays None without a target. Never asserted."""
    print("RESULT " + json.dumps({"bench": 'bench_web', "figure": figure, "target": target,
                                  "measured": round(measured, 4), "unit": unit, "met": met}))


def to_ms(text):
    """wrk's latency ("390.00us", "0.94ms", "1.20s") in ms"""
    m = re.match(r"([\d.]+)(us|ms|s)$", text or "")
    return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)] if m else float("nan")


def wrk(path, cookie):
    out = subprocess.run(["wrk", "-t2", "-c16", "-d%ds" % SECS, "--latency", "-H", "Cookie: " + cookie,
                          "https://127.0.0.1:%d%s" % (PORT, path)], capture_output=True, text=True).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    lat = dict(re.findall(r"^\s+(50|90|99)%\s+([\d.]+\w+)", out, re.M))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return float(rps.group(1)) if rps else 0.0, lat, int(non2xx.group(1)) if non2xx else 0


def main():
    conf = os.path.join(T, "gh.conf")
    with open(conf, "w") as f:
        f.write("[site]\nid = bench\n[storage]\ndb = site.db\n[drivers]\nprofiles_dir = %s/drivers/profiles\n"
                "[daemon]\ncontrol_socket = ctl.sock\nlog_level = warn\n[mqtt]\nport = %d\n"
                "[web]\nlisten = 127.0.0.1:%d\nroot = %s/web-ui\n" % (ROOT, free_port(), PORT, ROOT))
    subprocess.run([os.path.join(ROOT, BUILD, "gatehouse"), "--config", conf, "user", "add", "bench", "--role",
                    "viewer"], input="bench-password-1\n", text=True, capture_output=True, check=True)
    con = sqlite3.connect(os.path.join(T, "site.db"))
    now = int(time.time())
    con.executemany("INSERT INTO door_logs(ts, type, device, relay, apt, initiator, method, code, result) "
                    "VALUES (?, 'door_release', '0C1105F00001', 1, '101', 'Resident', 'pin', '****', 'success')",
                    [(now - ROWS + i,) for i in range(ROWS)])
    con.commit()
    con.close()
    d = subprocess.Popen([os.path.join(ROOT, BUILD, "gatehoused"), "--config", conf], stdout=subprocess.DEVNULL,
                         stderr=open(os.path.join(T, "daemon.log"), "w"))
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    cookie = None
    for _ in range(100):
        try:
            c = http.client.HTTPSConnection("127.0.0.1", PORT, context=ctx, timeout=10)
            c.request("POST", "/api/v1/login", json.dumps({"user": "bench", "password": "bench-password-1"}),
                      {"Content-Type": "application/json"})
            r = c.getresponse()
            r.read()
            cookie = (r.getheader("Set-Cookie") or "").split(";")[0]
            break
        except OSError:
            time.sleep(0.1)
    print("gatehouse bench_web%s: wrk 2 threads, 16 connections, %d s each; %d door logs" % (
        " (quick)" if QUICK else "", SECS, ROWS))
    for name, path in (("GET /api/v1/status", "/api/v1/status"),
                       ("GET /api/v1/logs/door?limit=1000 (of %d rows)" % ROWS, "/api/v1/logs/door?limit=1000")):
        rps, lat, bad = wrk(path, cookie)
        print("  %-46s %8.0f req/s   p50 %s  p90 %s  p99 %s%s" % (name, rps, lat.get("50"), lat.get("90"),
                                                                 lat.get("99"), "  (%d non-2xx!)" % bad if bad else ""))
        result("%s, wrk 2 threads x 16 connections" % name, rps, "req/s")
        result("%s, p50" % name, to_ms(lat.get("50")), "ms")
    t0 = time.time()
    c = http.client.HTTPSConnection("127.0.0.1", PORT, context=ctx, timeout=60)
    c.request("GET", "/api/v1/logs/door?format=csv", headers={"Cookie": cookie})
    body = c.getresponse().read()
    print("  CSV export of all %d rows: %.2f s, %.1f MB" % (ROWS, time.time() - t0, len(body) / 1e6))
    result("CSV export of %d door logs" % ROWS, time.time() - t0, "s")

    # websocket fan-out
    got = [[] for _ in range(CLIENTS)]
    wss = [WSClient("127.0.0.1", PORT, ctx, cookie) for _ in range(CLIENTS)]
    stop = threading.Event()

    def reader(k):
        while not stop.is_set():
            try:
                ms = wss[k].messages(0.5)
            except Exception:
                continue
            for m in ms:
                if m and m.get("type") == "event" and str(m.get("initiator", "")).startswith("t="):
                    got[k].append(time.time() - float(m["initiator"][2:]))

    threads = [threading.Thread(target=reader, args=(k,), daemon=True) for k in range(CLIENTS)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    con = sqlite3.connect(os.path.join(T, "site.db"), timeout=10)
    sent = 0
    start = time.time()
    while time.time() - start < WS_SECS:
        batch = []
        due = int((time.time() - start) * RATE) - sent
        for _ in range(max(0, due)):
            batch.append(("t=%.6f" % time.time(),))
        if batch:
            con.executemany("INSERT INTO door_logs(ts, device, relay, method, result, initiator) "
                            "VALUES (strftime('%s','now'), '0C1105F00001', 1, 'rf', 'success', ?)", batch)
            con.commit()
            sent += len(batch)
        time.sleep(0.01)
    con.close()
    time.sleep(1.5)
    stop.set()
    lat = sorted(x for g in got for x in g)
    delivered = sum(len(g) for g in got)
    pct = lambda p: lat[min(len(lat) - 1, int(p / 100 * (len(lat) - 1)))] * 1000 if lat else float("nan")  # noqa
    print("  websocket: %d clients, %d door events at %d/s: %d of %d deliveries (%.1f%%), "
          "latency p50 %.0f  p99 %.0f ms (the feed polls every 100 ms)" % (
              CLIENTS, sent, RATE, delivered, sent * CLIENTS, 100.0 * delivered / max(1, sent * CLIENTS),
              pct(50), pct(99)))
    with open("/proc/%d/status" % d.pid) as f:
        rss = [l for l in f if l.startswith("VmHWM")][0].split()[1]
    print("  daemon peak RSS %.1f MB" % (int(rss) / 1024))
    result("websocket fan-out, %d clients x %d events/s: delivered" % (CLIENTS, RATE),
           100.0 * delivered / max(1, sent * CLIENTS), "%")
    result("websocket fan-out, %d clients x %d events/s: latency p50" % (CLIENTS, RATE), pct(50), "ms")
    result("websocket fan-out, %d clients x %d events/s: latency p99" % (CLIENTS, RATE), pct(99), "ms")
    result("web run, daemon peak RSS (VmHWM)", int(rss) / 1024, "MB")
    for w in wss:
        w.close()
    d.terminate()
    d.wait(10)


try:
    main()
finally:
    shutil.rmtree(T, ignore_errors=True)
