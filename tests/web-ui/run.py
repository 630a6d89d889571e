#!/usr/bin/env python3
"""The web UI in a real browser: Debian's headless Chromium driven by npm
playwright-core (tests/web-ui/ui.mjs) against a real stack started here: the
real mosquitto broker, gatehoused serving web-ui/ over HTTPS, a simulated
door phone (devsim) and a Modbus TCP relay board (modbus_sim, HF-8000).

The browser script asks this driver for the simulators' side of the story
over a small plain-HTTP control port on loopback (below: the door phone's
access checks and events, the commands it received, the board's relay
writes). Screenshots go to BUILD/artifacts/web-ui/.

Prints "ok"/"FAIL" lines and "web-ui: N passed, N failed"; exits 1 on any
failure. Everything started here is ended by its pid, on failure too.

usage: tests/web-ui/run.py [BUILD_DIR] [SCENARIO...]   (from the repository root)
       scenarios: login live devices boards import logs alarms emergency viewer pages logout
       (default: all, in that order; each also runs alone)
env:   GH_WEBUI_TIMES=1, GH_WEBUI_WS=1, GH_WEBUI_KEEP=1, GH_WEBUI_HEADED=1 (tests/web-ui/README.md)
"""
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT = os.getcwd()
HERE = os.path.join(ROOT, "tests", "web-ui")
sys.path.insert(0, os.path.join(ROOT, "tests", "sim"))
import broker as brokermod  # noqa: E402
from devsim import Device  # noqa: E402
from testlib import counts, free_port, ok, stop_proc, wait  # noqa: E402

args = sys.argv[1:]
BUILD = args.pop(0) if args and os.path.isdir(os.path.join(ROOT, args[0])) else os.environ.get("GH_BUILD", "build")
SCENARIOS = args
ART = os.path.join(ROOT, BUILD, "artifacts", "web-ui")
NODE_TIMEOUT = 600  # the whole browser script; it never gets near this unless something hangs
DP = "0C1105E00001"          # the simulated door phone
BOARD_PROFILE = "HF-8000"    # the simulated relay board (Modbus TCP, register writes)
USERS = {"ada": ("admin", "pw-of-ada-123"), "max": ("manager", "pw-of-max-123"), "vic": ("viewer", "pw-of-vic-123")}


def log(msg):
    print(msg, flush=True)


# ---- playwright-core: installed from package-lock.json on first use ----

def pinned_version():
    with open(os.path.join(HERE, "package-lock.json")) as f:
        return json.load(f)["packages"]["node_modules/playwright-core"]["version"]


def installed_version():
    try:
        with open(os.path.join(HERE, "node_modules", "playwright-core", "package.json")) as f:
            return json.load(f)["version"]
    except (OSError, ValueError, KeyError):
        return None


def ensure_node_modules():
    """npm ci when node_modules is missing or holds another version than the
    lock file pins (a fresh clone, or a bumped pin). Under a lock file, so two
    runs at once do not install over each other."""
    want = pinned_version()
    if installed_version() == want:
        return True
    with open(os.path.join(HERE, ".npm-ci.lock"), "w") as lk:
        fcntl.flock(lk, fcntl.LOCK_EX)
        if installed_version() == want:
            return True
        log("== web-ui: npm ci (playwright-core %s)" % want)
        env = dict(os.environ, PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD="1")
        r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=HERE, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)
        if r.returncode:
            log(r.stdout)
    return installed_version() == want


# ---- the relay board simulator ----

def read_profile(name):
    prof, sect = {}, None
    with open(os.path.join(ROOT, "drivers", "profiles", name + ".ini")) as f:
        for line in f:
            line = line.split(";")[0].strip()
            if line.startswith("["):
                sect = line.strip("[]")
            elif "=" in line:
                k, v = (x.strip() for x in line.split("=", 1))
                prof[sect + "." + k] = v
    return prof


class Board:
    """A modbus_sim process; its write log (stdout) is collected. A channel is
    on when the last write to its coil or register was the profile's ON."""

    def __init__(self, profile, port):
        p = read_profile(profile)
        self.coil = p.get("relay.write") == "coil"
        self.base = int(p.get("relay.coil_base" if self.coil else "relay.reg_base", "0"), 0)
        self.on = 1 if self.coil else int(p["relay.on_value"], 0)
        self.writes = []  # (seq, kind, addr, value)
        self.lock = threading.Lock()
        self.ready = threading.Event()
        self.proc = subprocess.Popen([os.path.join(ROOT, BUILD, "sim", "modbus_sim"), "--profile",
                                      os.path.join(ROOT, "drivers", "profiles", profile + ".ini"),
                                      "--tcp", str(port)],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            f = line.split()
            if len(f) >= 2 and f[1] == "ready":
                self.ready.set()
            elif len(f) == 4 and f[1] in ("coil", "reg"):
                with self.lock:
                    self.writes.append((len(self.writes) + 1, f[1], int(f[2]), int(f[3])))

    def state(self):
        with self.lock:
            writes = list(self.writes)
        chans = {}
        for _, kind, addr, value in writes:
            if (kind == "coil") == self.coil and addr >= self.base:
                chans[str(addr - self.base + 1)] = value == self.on
        # per channel: every write in order, as true (on) / false (off)
        hist = {}
        for seq, kind, addr, value in writes:
            if (kind == "coil") == self.coil and addr >= self.base:
                hist.setdefault(str(addr - self.base + 1), []).append([seq, value == self.on])
        return {"on": chans, "history": hist, "writes": len(writes)}


# ---- the control port the browser script asks ----

class Ctl(BaseHTTPRequestHandler):
    dev = None      # the door phone now (a Device; a new one after /device/start)
    devices = []    # every Device made, for the cleanup
    login = None    # (MAC, password, broker port)
    board = None

    def log_message(self, *a):
        pass

    def _answer(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/device":
            d = Ctl.dev
            with d.lock:
                self._answer(200, {"connected": d.connected, "commands": list(d.commands),
                                   "acked": list(d.acked), "unacked": list(d.unacked)})
        elif self.path == "/board":
            self._answer(200, Ctl.board.state())
        else:
            self._answer(404, {"error": "no such path"})

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(n) or b"{}")
        except ValueError:
            return self._answer(400, {"error": "not JSON"})
        if self.path == "/device/request":
            op = body.pop("op", "access.check")
            r = Ctl.dev.request(op, timeout=15, **body)
            self._answer(200 if r else 504, r or {"error": "no response from the gateway"})
        elif self.path == "/device/event":
            etype = body.pop("type")
            self._answer(200, {"id": Ctl.dev.event(etype, **body)})
        elif self.path == "/device/stop":  # switched off: a clean disconnect with its offline status
            Ctl.dev.stop()
            self._answer(200, {"ok": True})
        elif self.path == "/device/start":  # switched on again (a new session, no commands seen yet)
            d = Device(*Ctl.login[:2], Ctl.login[2], model="R29")
            Ctl.devices.append(d)
            Ctl.dev = d.start(15)
            self._answer(200, {"ok": d.connected})
        else:
            self._answer(404, {"error": "no such path"})


def on_term(signum, frame):
    raise SystemExit(1)  # unwinds through main's finally: everything started is ended


def main():
    signal.signal(signal.SIGTERM, on_term)
    T = tempfile.mkdtemp(prefix="gh-webui-")
    os.chmod(T, 0o755)  # the broker, dropped to the mosquitto user, must reach its folder
    conf = os.path.join(T, "gh.conf")
    procs = []  # (name, Popen) ended in reverse order
    broker = dev = ctl = None
    rc = 1

    def gh(*a, stdin=None):
        return subprocess.run([os.path.join(ROOT, BUILD, "gatehouse"), "--config", conf] + list(a),
                              input=stdin, capture_output=True, text=True)

    def put(kind, obj):
        r = gh("put", kind, "-", stdin=json.dumps(obj))
        if r.returncode:
            log("  setup: put %s failed: %s" % (kind, r.stderr.strip()))
        return r.returncode == 0

    try:
        log("== web-ui: the stack (mosquitto, gatehoused, door phone, relay board)")
        ok("playwright-core is installed as package-lock.json pins it", ensure_node_modules(),
           "npm ci failed in tests/web-ui")
        ok("Chromium is installed (/usr/bin/chromium)", os.access("/usr/bin/chromium", os.X_OK),
           "apt-get install chromium (make deps)")
        broker = brokermod.Broker(os.path.join(T, "broker")).start()
        with open(os.path.join(T, "mqtt.password"), "w") as f:
            f.write(broker.password + "\n")
        os.chmod(os.path.join(T, "mqtt.password"), 0o600)
        web_port, board_port = free_port(), free_port()
        with open(conf, "w") as f:
            f.write("[site]\nid = webui-test\n[storage]\ndb = site.db\n[drivers]\nprofiles_dir = %s/drivers/profiles\n"
                    "[daemon]\ncontrol_socket = ctl.sock\nlog_level = debug\n"
                    "[mqtt]\nhost = 127.0.0.1\nport = %d\nusername = %s\npassword_file = mqtt.password\n"
                    "manage_accounts = true\n"
                    "[web]\nlisten = 127.0.0.1:%d\nroot = %s/web-ui\n"
                    % (ROOT, broker.port, broker.user, web_port, ROOT))
        board = Board(BOARD_PROFILE, board_port)
        procs.append(("modbus_sim", board.proc))
        ok("the relay board simulator listens", board.ready.wait(10))

        # the site, seeded through the CLI as an installer would
        seeded = all([
            put("settings", {"name": "Browser test site", "timezone": "Europe/Vienna", "relay_hold_ms": 500,
                             "emergency": {"auto_unlock": True, "doors": "all", "notify": True}}),
            put("building", {"id": "b1", "name": "Block A"}),
            put("apartment", {"id": "a101", "building": "b1", "apt": "101", "floor": "3"}),
        ])
        r = gh("device", "add", DP, "--type", "0", "--name", "Entrance")
        pw = json.loads(r.stdout).get("mqtt_password", "") if r.returncode == 0 else ""
        seeded = seeded and bool(pw) and all([
            put("device", {"id": DP, "type": 0, "name": "Entrance", "area": "building", "building": "b1",
                           "relays": [{"n": 1, "name": "Main door"}]}),
            put("relay_board", {"id": "hf", "name": "Gate board", "profile": BOARD_PROFILE, "mode": "ethernet",
                                "bus": "127.0.0.1:%d" % board_port,
                                "channels": [{"channel": 1, "name": "Barrier", "function": "barrier"},
                                             {"channel": 2, "name": "Side gate", "function": "door"}]}),
            put("person", {"id": "p1", "kind": "resident", "apartment": "a101", "first_name": "Anna",
                           "last_name": "Berger"}),
            put("credential", {"id": "c1", "person": "p1", "type": "pin", "code": "2468"}),
            put("access_group", {"id": "g1", "name": "Block A residents", "building": "b1",
                                 "relays": [{"device": DP, "relay": 1}, {"board": "hf", "channel": 2}]}),
            # the groups tests/data/residents_pm.csv puts people in
            put("access_group", {"id": "grp-res", "name": "Residents", "relays": [{"device": DP, "relay": 1}]}),
            put("access_group", {"id": "grp-pool", "name": "Pool", "relays": [{"board": "hf", "channel": 1}]}),
        ])
        for name, (role, password) in USERS.items():
            seeded = seeded and gh("user", "add", name, "--role", role, stdin=password + "\n").returncode == 0
        ok("the site is seeded through the CLI (building, door phone, board, resident, PIN, group, users)", seeded)

        dlog = open(os.path.join(T, "daemon.log"), "w")
        daemon = subprocess.Popen([os.path.join(ROOT, BUILD, "gatehoused"), "--config", conf], stdout=dlog,
                                  stderr=dlog)
        procs.append(("gatehoused", daemon))
        ok("gatehoused serves HTTPS", wait(lambda: os.path.exists(os.path.join(T, "web.crt")) and
                                           os.path.exists(os.path.join(T, "ctl.sock")), 20))
        dev = Device(DP, pw, broker.port, model="R29").start(15)
        ok("the door phone logs in to the broker", dev.connected)
        ok("and sees the gateway online", dev.wait_for(lambda: (dev.gw_status or {}).get("online") is True, 15))

        def board_online():
            st = gh("status")
            try:
                return any(b.get("id") == "hf" and b.get("online") for b in json.loads(st.stdout).get("boards", []))
            except ValueError:
                return False
        ok("the gateway reaches the relay board", wait(board_online, 15))

        Ctl.dev, Ctl.devices, Ctl.login, Ctl.board = dev, [dev], (DP, pw, broker.port), board
        ctl = ThreadingHTTPServer(("127.0.0.1", 0), Ctl)
        threading.Thread(target=ctl.serve_forever, daemon=True).start()

        # ---- the browser ----
        shutil.rmtree(ART, ignore_errors=True)
        os.makedirs(ART, exist_ok=True)
        results = os.path.join(T, "results.json")
        ntmp = os.path.join(T, "node-tmp")  # Chromium's fresh --user-data-dir and downloads live here
        os.makedirs(ntmp)
        env = dict(os.environ, TMPDIR=ntmp, GH_URL="https://127.0.0.1:%d" % web_port,
                   GH_CTL="http://127.0.0.1:%d" % ctl.server_address[1], GH_ARTIFACTS=ART, GH_RESULTS=results,
                   GH_USERS=json.dumps(USERS), GH_DEVICE=DP, GH_BOARD="hf", GH_SITE_NAME="Browser test site",
                   GH_CSV=os.path.join(ROOT, "tests", "data", "residents_pm.csv"))
        log("== web-ui: Chromium (screenshots in %s)" % os.path.relpath(ART, ROOT))
        node = subprocess.Popen(["node", os.path.join(HERE, "ui.mjs")] + SCENARIOS, env=env, cwd=HERE,
                                start_new_session=True)
        procs.append(("node", node))
        try:
            node_rc = node.wait(NODE_TIMEOUT)
        except subprocess.TimeoutExpired:
            node_rc = None
            node.terminate()  # playwright closes its browser on SIGTERM
            try:
                node.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(node.pid, signal.SIGKILL)  # its own group (Chromium ends when its pipe closes)
                node.wait()
        try:
            with open(results) as f:
                res = json.load(f)
        except (OSError, ValueError):
            res = {"passed": 0, "failed": 0, "finished": False}
        counts["passed"] += res.get("passed", 0)
        counts["failed"] += res.get("failed", 0)
        ok("the browser script ran to its end", node_rc is not None and res.get("finished") is True,
           "node exited with %s (None: killed after %d s)" % (node_rc, NODE_TIMEOUT))
        with open(os.path.join(T, "daemon.log"), errors="replace") as f:
            dl = f.read()
        ok("no password nor session secret in the daemon log",
           not any(p in dl for _, p in USERS.values()) and "AddressSanitizer" not in dl)
        daemon.send_signal(signal.SIGTERM)
        try:
            drc = daemon.wait(15)
        except subprocess.TimeoutExpired:
            drc = None
        ok("gatehoused stops cleanly afterwards", drc == 0, drc)
        rc = 0
    except Exception as e:  # a setup step broke: report it, then clean up
        ok("the stack runs (%s)" % type(e).__name__, False, e)
    finally:
        if ctl:
            ctl.shutdown()
        for d in Ctl.devices or ([dev] if dev else []):
            try:
                d.stop()
            except Exception:
                pass
        for name, p in reversed(procs):
            if name == "node" and p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
            else:
                stop_proc(p)
        if broker:
            broker.stop()
        if counts["failed"] or rc or os.environ.get("GH_WEBUI_KEEP"):
            log("logs kept in %s" % T)
        else:
            shutil.rmtree(T, ignore_errors=True)
    print("web-ui: %d passed, %d failed" % (counts["passed"], counts["failed"]))
    return 1 if counts["failed"] or rc else 0


if __name__ == "__main__":
    sys.exit(main())
