#!/usr/bin/env python3
"""Demo traffic: people at the door phones of the seeded site, asking the
running gatehoused (through its control socket) whether to open. Prints one
line per decision. Stops after DEMO_SECONDS (0 = until Ctrl-C)."""
import json
import os
import random
import socket
import sys
import time

sock_path, seed_dir = sys.argv[1], sys.argv[2]
limit = float(os.environ.get("DEMO_SECONDS", "0"))
rnd = random.Random()

def load(kind):
    with open(os.path.join(seed_dir, kind + ".json")) as f:
        return json.load(f)

devices = [d for d in load("device") if d["type"] in (0, 1, 50)]
creds = load("credential")
names = {p["id"]: "%s %s" % (p["first_name"], p.get("last_name", "")) for p in load("person")}
s = socket.socket(socket.AF_UNIX)
s.connect(sock_path)
f = s.makefile("rwb")

def ask(req):
    f.write(json.dumps(req).encode() + b"\n")
    f.flush()
    return json.loads(f.readline())

start = time.time()
n = 0
try:
    while not limit or time.time() - start < limit:
        dev = rnd.choice(devices)
        roll = rnd.random()
        if roll < 0.6:
            c = rnd.choice([c for c in creds if c["type"] in ("pin", "rf", "uhf")])
            method, code, who = c["type"], c["code"], names.get(c.get("person"), "?")
        elif roll < 0.75:
            method, code, who = "pin", "13579", "visitor key"
        elif roll < 0.9:
            method, code, who = "pin", str(rnd.randint(10000, 99999)), "stranger"
        else:
            method, code, who = "rf", "%08X" % rnd.getrandbits(32), "unknown card"
        fits = [r["n"] for r in dev["relays"] if r.get("methods") is None or method in r["methods"]]
        relay = rnd.choice(fits if fits and rnd.random() < 0.9 else [r["n"] for r in dev["relays"]])
        t0 = time.perf_counter()
        r = ask({"op": "access.check", "device": dev["id"], "relay": relay, "method": method, "code": code})
        ms = (time.perf_counter() - t0) * 1000
        shown = "*" * len(code) if method == "pin" else code
        if r.get("ok") and r.get("granted"):
            verdict = "OPEN   %s%s" % (r.get("person", ""), (" floors " + ",".join(r["floors"])) if r.get("floors") else "")
        elif r.get("ok"):
            verdict = "DENIED %s" % r.get("reason")
        else:
            verdict = "ERROR  %s" % r.get("error")
        print("%s  %-22s relay %d  %-4s %-14s (%-13s) -> %s  [%.2f ms]" % (
            time.strftime("%H:%M:%S"), dev["name"], relay, method, shown, who[:13], verdict, ms), flush=True)
        n += 1
        time.sleep(rnd.uniform(0.3, 1.2))
except KeyboardInterrupt:
    pass
status = ask({"op": "status"})
print("\n%d decisions; the daemon reports %s" % (n, json.dumps(status.get("counts"))))
