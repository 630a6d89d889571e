#!/usr/bin/env python3
"""Checks systemd/gatehoused.service's SystemCallFilter= and
RestrictAddressFamilies= against what gatehoused really does: runs the
daemon under strace through a small live site (the real broker with dynamic
security, door phones over MQTT, a Modbus TCP board and an RTU board on a
socat pty, the cloud simulator over HTTPS by host name, a web UI login,
SIGHUP, SIGTERM) and fails if it made a system call or opened a socket family
the unit would refuse (the unit answers those with EPERM: a silently broken
feature in the field).

  tests/package/syscalls.py [BUILD_DIR]     (needs strace, socat, python3-paho-mqtt)

Prints "N passed, N failed"; exits non-zero on any failure.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import ssl
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "sim"))
from testlib import ok, counts, wait, free_port, stop_proc  # noqa: E402
from broker import Broker  # noqa: E402
from devsim import Device  # noqa: E402

BUILD = os.path.abspath(os.path.join(ROOT, sys.argv[1] if len(sys.argv) > 1 else "build"))
UNIT = os.path.join(ROOT, "systemd", "gatehoused.service")
SITE, TOKEN, DP1 = "pkg-site", "pkg-token-1f2e", "0C11050B9814"


def unit_values(key):
    vals = []
    for line in open(UNIT):
        m = re.match(r"^%s=(.*)$" % key, line.strip())
        if m:
            vals.append(m.group(1).strip())
    return vals


def expand(group, seen=None):
    """The system calls of a systemd group (@name), recursively."""
    seen = seen if seen is not None else set()
    if group in seen:
        return set()
    seen.add(group)
    out = subprocess.run(["systemd-analyze", "syscall-filter", group], capture_output=True, text=True,
                         check=True).stdout
    calls = set()
    for line in out.splitlines()[1:]:
        w = line.strip()
        if not w or w.startswith("#"):
            continue
        calls |= expand(w, seen) if w.startswith("@") else {w}
    return calls


def allowed_syscalls():
    allow, deny = set(), set()
    for v in unit_values("SystemCallFilter"):
        neg = v.startswith("~")
        for w in v.lstrip("~").split():
            s = expand(w) if w.startswith("@") else {w}
            (deny if neg else allow).update(s)
    return allow - deny


if os.getuid() != 0:
    print("syscalls: needs root (runs the daemon as an unprivileged user, the broker drops to mosquitto)")
    sys.exit(2)
T = tempfile.mkdtemp(prefix="gh-sc-", dir="/tmp")
os.chmod(T, 0o755)  # the broker drops to the mosquitto user
procs = []
broker = None
cloud_dir = os.path.join(T, "cloud")
# the daemon and the CLI run unprivileged, as under the unit (as root, SQLite
# would also fchown() its journal files, which the filter refuses)
USER = "nobody"
AS_USER = ["setpriv", "--reuid=" + USER, "--regid=nogroup", "--clear-groups", "--"]


def gh(*args, stdin=None):
    return subprocess.run(AS_USER + [os.path.join(BUILD, "gatehouse"), "--config", os.path.join(T, "gh.conf")]
                          + list(args), input=stdin, capture_output=True, text=True, timeout=60)


def cleanup():
    for p in procs:
        stop_proc(p)
    if broker:
        broker.stop()
    if os.path.exists(os.path.join(cloud_dir, "cloudsim.pid")):
        subprocess.run([sys.executable, os.path.join(ROOT, "tests/sim/cloudsim.py"), "stop", cloud_dir],
                       capture_output=True)
    if os.environ.get("KEEP"):
        print("kept " + T)
        return
    shutil.rmtree(T, ignore_errors=True)


try:
    if not shutil.which("strace"):
        print("syscalls: strace is not installed (apt-get install strace)")
        sys.exit(1)
    broker = Broker(os.path.join(T, "broker")).start()
    with open(os.path.join(T, "mqtt.password"), "w") as f:
        f.write(broker.password + "\n")
    shutil.chown(T, USER)
    shutil.chown(os.path.join(T, "mqtt.password"), USER)
    out = subprocess.run([sys.executable, os.path.join(ROOT, "tests/sim/cloudsim.py"), "start", cloud_dir,
                          "--site", SITE, "--token", TOKEN], capture_output=True, text=True, check=True).stdout
    cport = int(out.split()[0])
    with open(os.path.join(T, "cloud.token"), "w") as f:
        f.write(TOKEN + "\n")
    os.chmod(os.path.join(T, "cloud.token"), 0o600)
    shutil.chown(os.path.join(T, "cloud.token"), USER)
    tcp_port, web_port = free_port(), free_port()
    procs.append(subprocess.Popen([os.path.join(BUILD, "sim", "modbus_sim"), "--profile",
                                   os.path.join(ROOT, "drivers/profiles/HF-8000.ini"), "--tcp", str(tcp_port)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    procs.append(subprocess.Popen(["socat", "pty,raw,echo=0,user=%s,link=%s/ttyGW" % (USER, T),
                                   "pty,raw,echo=0,link=%s/ttyBD" % T],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    wait(lambda: os.path.exists(T + "/ttyBD"))
    procs.append(subprocess.Popen([os.path.join(BUILD, "sim", "modbus_sim"), "--profile",
                                   os.path.join(ROOT, "drivers/profiles/MK485-G2R-8J8C.ini"), "--rtu", T + "/ttyBD"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    with open(os.path.join(T, "gh.conf"), "w") as f:
        f.write("[site]\nid = %s\n[storage]\ndb = site.db\n"
                "[mqtt]\nhost = 127.0.0.1\nport = %d\nusername = %s\npassword_file = mqtt.password\n"
                "manage_accounts = true\n"
                "[web]\nlisten = 127.0.0.1:%d\n"
                "[cloud]\nurl = https://localhost:%d\ntoken_file = cloud.token\nca_file = %s/ca.pem\n"
                "backoff_min_ms = 100\nbackoff_max_ms = 2000\n"
                "[drivers]\nprofiles_dir = %s/drivers/profiles\n"
                "[daemon]\ncontrol_socket = ctl.sock\nlog_level = debug\n"
                % (SITE, broker.port, broker.user, web_port, cport, cloud_dir, ROOT))

    gh("put", "settings", "-", stdin='{"timezone": "Europe/Vienna"}')
    gh("put", "building", "-", stdin='{"id":"b1","name":"Block A"}')
    gh("put", "apartment", "-", stdin='{"id":"a101","building":"b1","apt":"101","floor":"3"}')
    r = gh("device", "add", DP1, "--type", "0", "--name", "Entrance")
    ok("device add creates the broker account", r.returncode == 0, r.stderr)
    devpw = json.loads(r.stdout).get("mqtt_password", "") if r.returncode == 0 else ""
    gh("put", "device", "-", stdin=json.dumps({"id": DP1, "type": 0, "name": "Entrance", "area": "building",
                                                "building": "b1", "relays": [{"n": 1, "name": "Door"}]}))
    gh("put", "person", "-", stdin='{"id":"p1","kind":"resident","apartment":"a101","first_name":"Anna",'
                                   '"last_name":"Berger"}')
    gh("put", "credential", "-", stdin='{"id":"c1","person":"p1","type":"pin","code":"1234"}')
    gh("put", "access_group", "-", stdin=json.dumps({"id": "g1", "name": "Block A", "building": "b1",
                                                      "relays": [{"device": DP1, "relay": 1}]}))
    gh("put", "relay_board", "-", stdin=json.dumps({"id": "hf", "profile": "HF-8000", "mode": "ethernet",
                                                     "bus": "127.0.0.1:%d" % tcp_port,
                                                     "channels": [{"channel": 1, "name": "Gate", "function": "door"}]}))
    gh("put", "relay_board", "-", stdin=json.dumps({"id": "mk", "profile": "MK485-G2R-8J8C", "mode": "rs485",
                                                     "bus": T + "/ttyGW",
                                                     "channels": [{"channel": 1, "name": "Door", "function": "door"}]}))
    gh("user", "add", "admin", "--role", "admin", stdin="pkg-admin-pw-1\n")

    trace = os.path.join(T, "trace")
    os.mkdir(trace)
    st = subprocess.Popen(["strace", "-u", USER, "-f", "-ff", "-qq", "-s", "256", "-o", trace + "/t",
                           os.path.join(BUILD, "gatehoused"), "--config", os.path.join(T, "gh.conf")],
                          stdout=subprocess.DEVNULL, stderr=open(os.path.join(T, "daemon.log"), "w"))
    procs.append(st)

    def daemon_pid():
        # strace -ff names a file per traced process; the daemon is the first (lowest) one
        pids = sorted(int(n.split(".")[-1]) for n in os.listdir(trace))
        return pids[0] if pids else None

    ok("gatehoused runs under strace",
       wait(lambda: '"daemon": "running"' in gh("status").stdout, 30), open(os.path.join(T, "daemon.log")).read())
    d1 = Device(DP1, devpw, broker.port).start()
    ok("a door phone decides over MQTT", (d1.request("access.check", method="pin", code="1234", relay=1,
                                                       timeout=10) or {}).get("granted") is True)
    d1.event("door", door="open")
    r = gh("access", "check", "--device", DP1, "--method", "pin", "--code", "1234", "--relay", "1")
    ok("the control socket decides", '"via": "daemon"' in r.stdout, r.stdout + r.stderr)
    ok("the Modbus boards answer", wait(lambda: json.loads(gh("status").stdout).get("boards") and all(
        b.get("online") for b in json.loads(gh("status").stdout)["boards"]), 20), gh("status").stdout)
    gh("relay", "open", "hf", "1")
    gh("relay", "open", "mk", "1")
    ok("the cloud link is up", wait(lambda: json.loads(gh("status").stdout).get("wan") == "up", 20),
       gh("status").stdout)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        req = urllib.request.Request("https://127.0.0.1:%d/api/v1/login" % web_port, method="POST",
                                     data=json.dumps({"user": "admin", "password": "pkg-admin-pw-1"}).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
            login = resp.status == 200
    except Exception as e:  # noqa: BLE001
        login = False
        print("        web login: %s" % e)
    ok("a web UI login", login)
    pid = daemon_pid()
    os.kill(pid, signal.SIGHUP)
    time.sleep(0.5)
    gh("emergency", "on")
    gh("emergency", "off")
    d1.stop()
    os.kill(pid, signal.SIGTERM)
    ok("gatehoused stops on SIGTERM", wait(lambda: st.poll() is not None, 20))

    used, families, wx = {}, set(), []
    for n in os.listdir(trace):
        for line in open(os.path.join(trace, n), errors="replace"):
            m = re.match(r"^([a-z0-9_]+)\(", line)
            if m:
                used[m.group(1)] = used.get(m.group(1), 0) + 1
            m = re.match(r"^socket\((AF_[A-Z0-9]+)", line)
            if m:
                families.add(m.group(1))
            # MemoryDenyWriteExecute= refuses W+X mappings and any mprotect() adding PROT_EXEC
            if (line.startswith("mmap(") and "PROT_WRITE" in line and "PROT_EXEC" in line) or \
                    (re.match(r"^(pkey_)?mprotect\(", line) and "PROT_EXEC" in line):
                wx.append(line.strip())
            m = re.match(r"^<\.\.\. ([a-z0-9_]+) resumed>", line)
            if m:
                used.setdefault(m.group(1), 1)
    allowed = allowed_syscalls()
    refused = sorted(c for c in used if c not in allowed)
    ok("every system call is allowed by SystemCallFilter= (%d distinct calls)" % len(used), not refused,
       "refused: " + ", ".join(refused))
    fams = set(" ".join(unit_values("RestrictAddressFamilies")).split())
    ok("every socket family is allowed by RestrictAddressFamilies= (%s)" % " ".join(sorted(families)),
       families <= fams, "used: %s, allowed: %s" % (sorted(families), sorted(fams)))
    ok("no writable and executable memory (MemoryDenyWriteExecute=)", not wx, "\n".join(wx[:5]))
    print("        system calls: " + " ".join(sorted(used)))
finally:
    cleanup()

print("%d passed, %d failed" % (counts["passed"], counts["failed"]))
sys.exit(1 if counts["failed"] else 0)
