#!/usr/bin/python3
"""Demo traffic: simulated door phones and indoor monitors of the seeded
site, logged in to the real broker with their own accounts, asking the
running gatehoused over MQTT (MQTT.md) whether to open, routing calls and
reporting events. One line per exchange. Stops after DEMO_SECONDS (0 = until
Ctrl-C)."""
import json
import os
import random
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "sim"))
from devsim import Device  # noqa: E402

port, seed_dir, pw_file = int(sys.argv[1]), sys.argv[2], sys.argv[3]
limit = float(os.environ.get("DEMO_SECONDS", "0"))
rnd = random.Random()


def load(kind):
    with open(os.path.join(seed_dir, kind + ".json")) as f:
        return json.load(f)


passwords = json.load(open(pw_file))
devices = load("device")
phones = [d for d in devices if d["type"] in (0, 1, 50)]
monitors = [d for d in devices if d["type"] == 2]
creds = load("credential")
apts = load("apartment")
names = {p["id"]: "%s %s" % (p["first_name"], p.get("last_name", "")) for p in load("person")}

sims = {}
for d in phones + monitors[:6]:
    sims[d["id"]] = Device(d["id"], passwords[d["id"]], port, ip=d.get("ip", "192.0.2.50"),
                           model="R29" if d["type"] != 2 else "C319").start()
print("%d devices logged in to the broker with their own accounts" % sum(s.connected for s in sims.values()))

def wan(down):
    """The scripted WAN outage: the cloud simulator refuses connections."""
    ctl = os.environ.get("CLOUD_CTL")
    if not ctl:
        return
    import urllib.request
    req = urllib.request.Request("http://127.0.0.1:%s/_sim/fail" % ctl, method="POST",
                                 data=json.dumps({"mode": "refuse" if down else None}).encode(),
                                 headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=5).read()
    print("%s  ---- WAN %s ----" % (time.strftime("%H:%M:%S"), "OUTAGE: the cloud is unreachable; doors, calls and "
          "events go on locally" if down else "BACK: the backlog drains to the cloud, oldest first"), flush=True)


WAN_FILE = os.environ.get("DEMO_WAN_FILE")
start = time.time()
n = 0
wan_down = False
try:
    while not limit or time.time() - start < limit:
        phase = (time.time() - start) % 60  # every minute: 20 s without WAN, from 30 s to 50 s
        want = 30 <= phase < 50
        mode = "auto"
        if WAN_FILE:  # the toggle (tools/demo-wan.sh): auto, down or up
            try:
                with open(WAN_FILE) as f:
                    mode = f.read().strip() or "auto"
            except OSError:
                pass
        if mode in ("down", "up"):
            want = mode == "down"
        if want != wan_down:
            wan_down = not wan_down
            wan(wan_down)
        dev = rnd.choice(phones)
        sim = sims[dev["id"]]
        roll = rnd.random()
        t0 = time.perf_counter()
        if roll < 0.08 and os.environ.get("UHF_FIFO"):
            tags = [c for c in creds if c["type"] == "uhf"]
            c = rnd.choice(tags)
            direction = rnd.choice([1, 2])
            with open(os.environ["UHF_FIFO"], "w") as fifo:
                fifo.write("read %d %s\n" % (direction, c["code"]))
            print("%s  %-22s UHF tag %s (%s) at the garage %s -> decided by the gateway at the barrier" % (
                time.strftime("%H:%M:%S"), "Garage UHF reader", c["code"], names.get(c.get("person"), "?")[:13],
                "entry" if direction == 1 else "exit"), flush=True)
            time.sleep(rnd.uniform(0.3, 1.0))
            n += 1
            continue
        if roll < 0.12:
            apt = rnd.choice([a for a in apts if a["building"] == dev.get("building", a["building"])])
            r = sim.request("call.route", to=apt["apt"]) or {}
            ms = (time.perf_counter() - t0) * 1000
            tg = ", ".join(t["kind"] + ("" if "mac" not in t else " " + t["mac"][-4:]) for t in r.get("targets", []))
            print("%s  %-22s call %-5s -> %s: %s  [%.2f ms]" % (time.strftime("%H:%M:%S"), dev["name"], apt["apt"],
                  r.get("mode", r.get("error", {}).get("code")), tg or "no target online", ms), flush=True)
        elif roll < 0.2:
            eid = sim.event("door", relay=1, state=rnd.choice(["open", "closed"]))
            sim.wait_for(lambda: eid in sim.acked, 2)
            ms = (time.perf_counter() - t0) * 1000
            print("%s  %-22s event door sensor -> %s  [%.2f ms]" % (time.strftime("%H:%M:%S"), dev["name"],
                  "stored and acked" if eid in sim.acked else "not acked yet", ms), flush=True)
        else:
            if roll < 0.65:
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
            r = sim.request("access.check", method=method, code=code, relay=relay) or {}
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
        time.sleep(rnd.uniform(0.3, 1.0))
except KeyboardInterrupt:
    pass
if wan_down:
    wan(False)
for s in sims.values():
    s.stop()
print("\n%d exchanges over MQTT" % n)
