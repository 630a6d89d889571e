#!/usr/bin/env python3
"""Cloud platform simulator: the HTTPS API of docs CLOUD.md ("Connection",
"Endpoints") over a real store (an SQLite file), plus a plain-HTTP control
port through which tests set the cloud's entities, queue commands, read what
the gateway sent, and make the cloud fail on demand. Standard library only.

  cloudsim.py start DIR --site SITE --token TOKEN [--port N] [--ctl-port N] [--verbose]
        -> prints "PORT CTLPORT PID" once both ports listen, leaves it running
           (first use makes a test CA and server certificates in DIR with openssl)
  cloudsim.py stop DIR        -> SIGTERM the simulator of DIR (by its pid), kill -9 after 5 s
  cloudsim.py serve DIR ...   -> the server in the foreground (what start runs)
  cloudsim.py pin DIR [--wrong] -> "sha256//BASE64", the server key's pin (CURLOPT_PINNEDPUBLICKEY)

DIR holds ca.pem (trust this), server.pem/.key, wrong-ca.pem, wrong.pem/.key
(the "badcert" mode), cloud.db (the store, kept across restarts), cloudsim.log,
cloudsim.pid and ports ("PORT CTLPORT"). Give --port/--ctl-port to keep the
ports across a restart.

API: https://127.0.0.1:PORT/v1/sites/SITE/{state,events,changes,commands,
commands/ID/result,heartbeat}, bearer TOKEN. Control: http://127.0.0.1:CTLPORT/_sim/...
(see tests/sim/README.md). As a module: CloudSim(dir).start() / .stop() /
.restart(), .ctl(), .fail(), .upsert(), .command(), .events().
"""
import argparse
import base64
import email.utils
import hmac
import http.client
import itertools
import json
import os
import signal
import socket
import socketserver
import sqlite3
import ssl
import struct
import subprocess
import sys
import threading
import time
import traceback
import uuid
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, unquote, urlsplit
from testlib import stop_proc

# snapshot order: referenced entities first (CLOUD.md "Entities")
ENTITIES = ["settings", "mac", "building", "apartment", "person", "device", "relay_board",
            "access_group", "temp_key", "credential", "parking_lot"]
ORDER_SQL = "CASE entity %s ELSE %d END" % (
    " ".join("WHEN '%s' THEN %d" % (e, i) for i, e in enumerate(ENTITIES)), len(ENTITIES))
MODES = ("refuse", "500", "429", "hang", "drop", "badcert", "410", "garbage")
STATE_LIMIT, STATE_LIMIT_MAX = 1000, 5000
EVENTS_MAX = 500            # per POST /events
CHANGES_MAX = 5000          # per POST /changes
MAX_BODY = 32 << 20
POLL_MAX_S = 30             # GET /commands wait cap
HANG_S = 120                # a hanging request is let go after this at most
IDLE_S = 60                 # keep-alive connections idle longer are closed
HANDSHAKE_S = 10
SNAPSHOT_TTL_S = 600        # paged snapshots kept for their cursor this long
SNAPSHOTS_KEPT = 16


def dumps(v):
    return json.dumps(v, separators=(",", ":"))


def log(msg):
    sys.stderr.write("%s cloudsim[%d] %s\n" % (time.strftime("%H:%M:%S"), os.getpid(), msg))
    sys.stderr.flush()


def good_str(v):
    """A non-empty string SQLite can store (no lone surrogates)."""
    if not isinstance(v, str) or not v:
        return False
    try:
        v.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


class HttpError(Exception):
    def __init__(self, code, message, close=False, headers=(), extra=None):
        super().__init__(message)
        self.code, self.message, self.close, self.headers = code, message, close, list(headers)
        self.extra = extra or {}


def _no_constant(name):
    raise ValueError("%s is not JSON" % name)


def parse_json(body, want=dict):
    if not body:
        raise HttpError(400, "empty body: a JSON object is expected")
    try:
        v = json.loads(body, parse_constant=_no_constant)
    except (ValueError, RecursionError) as e:
        raise HttpError(400, "malformed JSON: %s" % e)
    if want is not None and not isinstance(v, want):
        raise HttpError(400, "the body must be a JSON object")
    return v


# ---------------------------------------------------------------- certificates

OPENSSL_CNF = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = cloudsim
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[v3_srv]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""
CERT_FILES = ["ca.pem", "ca.key", "server.pem", "server.key",
              "wrong-ca.pem", "wrong-ca.key", "wrong.pem", "wrong.key"]


def _openssl(*args, data=None):
    r = subprocess.run(["openssl"] + list(args), input=data, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    if r.returncode != 0:
        raise RuntimeError("openssl %s: %s" % (args[0], r.stderr.decode(errors="replace").strip()))
    return r.stdout


def make_certs(folder):
    """First use: a test CA and its server certificate for 127.0.0.1 and
    localhost, and a second, unrelated pair for the "badcert" mode (EC P-256)."""
    p = lambda n: os.path.join(folder, n)
    if all(os.path.exists(p(n)) for n in CERT_FILES):
        return
    cnf = p("openssl.cnf")
    with open(cnf, "w") as f:
        f.write(OPENSSL_CNF)
    serial = lambda: "0x" + os.urandom(8).hex()
    for ca, leaf, cn in (("ca", "server", "cloudsim test CA"), ("wrong-ca", "wrong", "cloudsim WRONG CA")):
        for k in (ca, leaf):
            _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                     "-out", p(k + ".key"))
        _openssl("req", "-x509", "-new", "-config", cnf, "-extensions", "v3_ca", "-key", p(ca + ".key"),
                 "-subj", "/CN=" + cn, "-set_serial", serial(), "-days", "3650", "-sha256",
                 "-out", p(ca + ".pem"))
        _openssl("req", "-new", "-config", cnf, "-key", p(leaf + ".key"), "-subj", "/CN=localhost",
                 "-out", p(leaf + ".csr"))
        _openssl("x509", "-req", "-in", p(leaf + ".csr"), "-CA", p(ca + ".pem"), "-CAkey", p(ca + ".key"),
                 "-set_serial", serial(), "-days", "3650", "-sha256", "-extfile", cnf,
                 "-extensions", "v3_srv", "-out", p(leaf + ".pem"))
        os.remove(p(leaf + ".csr"))


def pin(folder, wrong=False):
    """sha256//BASE64 of the server certificate's SubjectPublicKeyInfo (DER)."""
    pub = _openssl("x509", "-in", os.path.join(folder, "wrong.pem" if wrong else "server.pem"),
                   "-pubkey", "-noout")
    der = _openssl("pkey", "-pubin", "-outform", "der", data=pub)
    return "sha256//" + base64.b64encode(_openssl("dgst", "-sha256", "-binary", data=der)).decode()


# ---------------------------------------------------------------- store

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v TEXT);
-- current state; deleted rows are tombstones until compacted
CREATE TABLE IF NOT EXISTS entities(entity TEXT NOT NULL, id TEXT NOT NULL, seq INTEGER NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0, data TEXT, PRIMARY KEY(entity, id));
-- every upsert and delete, by global seq ("origin": sim = control API, gateway = POST /changes)
CREATE TABLE IF NOT EXISTS changelog(seq INTEGER PRIMARY KEY, entity TEXT NOT NULL, id TEXT NOT NULL,
    op TEXT NOT NULL, data TEXT, origin TEXT);
CREATE TABLE IF NOT EXISTS events(arrival INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL, event TEXT NOT NULL, received REAL);
CREATE TABLE IF NOT EXISTS rejected_events(n INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT, type TEXT,
    error TEXT, event TEXT, received REAL);
CREATE TABLE IF NOT EXISTS changes_in(n INTEGER PRIMARY KEY AUTOINCREMENT, change_id TEXT,
    change TEXT NOT NULL, result TEXT NOT NULL, repeat INTEGER NOT NULL, received REAL);
CREATE INDEX IF NOT EXISTS changes_in_cid ON changes_in(change_id);
-- snapshots stream the entities of each kind in seq order
CREATE INDEX IF NOT EXISTS entities_seq ON entities(entity, seq);
CREATE TABLE IF NOT EXISTS commands(cursor INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL,
    op TEXT NOT NULL, target TEXT, args TEXT, queued REAL);
CREATE TABLE IF NOT EXISTS results(n INTEGER PRIMARY KEY AUTOINCREMENT, command_id TEXT, status TEXT,
    body TEXT, received REAL);
CREATE TABLE IF NOT EXISTS heartbeats(n INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT, received REAL);
"""


class Store:
    """One connection shared by every thread behind one lock: SQLite takes
    one writer at a time anyway, and a batch is one transaction."""

    def __init__(self, path):
        self.lock = threading.RLock()
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=OFF")   # a test store: no fsync per batch
        self.db.executescript(SCHEMA)

    @contextmanager
    def tx(self):
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    def q(self, sql, *args):
        with self.lock:
            return self.db.execute(sql, args).fetchall()

    def get(self, key, default=None, c=None):
        row = (c or self.db).execute("SELECT v FROM meta WHERE k=?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def put(self, c, key, value):
        c.execute("INSERT INTO meta(k,v) VALUES(?,?) ON CONFLICT(k) DO UPDATE SET v=excluded.v",
                  (key, dumps(value)))

    def bump(self, c, key, n=1):
        c.execute("INSERT INTO meta(k,v) VALUES(?,?) ON CONFLICT(k) DO UPDATE SET v=CAST(v AS INTEGER)+?",
                  (key, str(n), n))

    def seq(self, c=None):
        return self.get("seq", 0, c)

    def apply(self, c, entity, eid, op, data_text, origin):
        """One entity change: a new global seq in the change log."""
        seq = self.seq(c) + 1
        self.put(c, "seq", seq)
        c.execute("INSERT INTO changelog(seq,entity,id,op,data,origin) VALUES(?,?,?,?,?,?)",
                  (seq, entity, eid, op, data_text, origin))
        c.execute("INSERT INTO entities(entity,id,seq,deleted,data) VALUES(?,?,?,?,?) "
                  "ON CONFLICT(entity,id) DO UPDATE SET seq=excluded.seq, deleted=excluded.deleted, "
                  "data=excluded.data", (entity, eid, seq, int(op == "delete"),
                                         None if op == "delete" else data_text))
        return seq

    def close(self):
        with self.lock:
            try:
                self.db.close()
            except sqlite3.Error:
                pass


# ---------------------------------------------------------------- failure modes

class Faults:
    """Failure rules set through the control API. A rule: mode, path (prefix
    of the request path, or of the path after /v1/sites/SITE), count (the next
    N matching requests, or connections for refuse/badcert; None = until
    cleared), retry_after (429), hang_s (hang), query (a text the query string
    must contain, as "cursor=": a snapshot's later pages)."""

    def __init__(self, changed):
        self.lock = threading.Lock()
        self.rules = []
        self.release = threading.Event()   # set when hanging requests must let go
        self.changed = changed

    def snapshot(self):
        with self.lock:
            return [dict(r) for r in self.rules]

    def set(self, rule, add=False):
        with self.lock:
            old = None
            if not add:
                old, self.release = self.release, threading.Event()
                self.rules = []
            self.rules.append(rule)
        if old:
            old.set()
        self.changed(rule)

    def clear(self):
        with self.lock:
            old, self.release = self.release, threading.Event()
            self.rules = []
        old.set()
        self.changed(None)

    def _take(self, match):
        ended = False
        with self.lock:
            for r in self.rules:
                if match(r):
                    if r["count"] is not None:
                        r["count"] -= 1
                        if r["count"] <= 0:
                            self.rules.remove(r)
                            ended = True
                    hit = dict(r, release=self.release)
                    break
            else:
                return None
        if ended:
            self.changed(None)
        return hit

    def listener_closed(self):
        with self.lock:
            return any(r["mode"] == "refuse" and r["count"] is None for r in self.rules)

    def on_connect(self):
        """refuse with a count (reset the connection) or badcert, per connection."""
        return self._take(lambda r: r["mode"] == "badcert" or (r["mode"] == "refuse" and r["count"] is not None))

    def on_request(self, path, rel, query=""):
        def match(r):
            if r["mode"] in ("badcert", "refuse"):
                return False
            if r["mode"] == "410" and rel != "/state":
                return False
            if r.get("query") and r["query"] not in query:
                return False
            p = r["path"]
            return p is None or path.startswith(p) or (rel is not None and rel.startswith(p))
        return self._take(match)


# ---------------------------------------------------------------- HTTP plumbing

class Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128

    def __init__(self, addr, handler, sim, tls):
        self.sim, self.tls = sim, tls
        super().__init__(addr, handler)

    def server_bind(self):
        # HTTPServer.server_bind does a reverse DNS lookup: not needed here
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def finish_request(self, request, client_address):
        if self.tls:
            self.sim.serve_tls(request, client_address, self)
        else:
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.RequestHandlerClass(request, client_address, self)

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError) or self.sim.stopping:
            return     # a client went away, a connection killed by a failure mode
        log("error on a connection from %s: %s" % (client_address, traceback.format_exc()))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "cloudsim/1"
    timeout = IDLE_S

    def log_request(self, code="-", size="-"):
        pass

    def log_message(self, fmt, *args):
        if self.server.sim.verbose:
            log("%s %s" % (self.address_string(), fmt % args))

    def send_error(self, code, message=None, explain=None):
        # http.server's own errors (bad request line, unknown method): JSON too
        self.close_connection = True
        try:
            self.reply(code, {"error": message or self.responses.get(code, ("error",))[0]})
        except OSError:
            pass

    def reply(self, code, body=None, headers=(), half=False):
        """The whole response in one write (no Nagle stall between head and
        body); half=True sends the head and half the body (the "drop" mode)."""
        if body is None:
            data = b""
        elif isinstance(body, bytes):
            data = body
        elif isinstance(body, str):
            data = body.encode()
        else:
            data = dumps(body).encode()
        head = ["HTTP/1.1 %d %s" % (code, self.responses.get(code, ("Status",))[0]),
                "Date: " + email.utils.formatdate(usegmt=True), "Server: cloudsim/1"]
        if code != 204:
            head += ["Content-Type: application/json", "Content-Length: %d" % len(data)]
        head += ["%s: %s" % h for h in headers]
        if self.close_connection:
            head.append("Connection: close")
        self.status = code
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
                         + (data[:len(data) // 2] if half else data))

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            out = bytearray()
            while True:
                line = self.rfile.readline(1024)
                try:
                    n = int(line.split(b";")[0].strip(), 16)
                except ValueError:
                    raise HttpError(400, "bad chunk size", close=True)
                if n == 0:
                    while self.rfile.readline(8192) not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                if len(out) + n > MAX_BODY:
                    raise HttpError(413, "body larger than %d bytes" % MAX_BODY, close=True)
                out += self.rfile.read(n)
                self.rfile.readline(8)
        cl = self.headers.get("Content-Length")
        if cl is None:
            return b""
        try:
            n = int(cl)
        except ValueError:
            raise HttpError(400, "bad Content-Length", close=True)
        if n < 0:
            raise HttpError(400, "bad Content-Length", close=True)
        if n > MAX_BODY:
            raise HttpError(413, "body larger than %d bytes" % MAX_BODY, close=True)
        data = self.rfile.read(n)
        if len(data) < n:
            raise ConnectionResetError("body cut short")
        return data

    def do_GET(self):
        self.dispatch()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_GET

    def dispatch(self):
        sim = self.server.sim
        self.status, t0 = 0, time.monotonic()
        try:
            self.handle_request(sim)
        except HttpError as e:
            if e.close:
                self.close_connection = True
            self.reply(e.code, dict({"error": e.message}, **e.extra), e.headers)
        except OSError:
            self.close_connection = True
        except Exception:
            if sim.stopping:
                self.close_connection = True
                return
            log("internal error on %s %s: %s" % (self.command, self.path, traceback.format_exc()))
            sim.count("internal_errors")
            self.close_connection = True
            try:
                self.reply(500, {"error": "cloudsim internal error (a simulator bug, see cloudsim.log)"})
            except OSError:
                pass
        finally:
            if sim.verbose:
                log("%s %s %s -> %s %.1f ms" % ("api" if self.server.tls else "ctl", self.command,
                                                 self.path, self.status or "closed",
                                                 (time.monotonic() - t0) * 1000))


class ApiHandler(Handler):
    def handle_request(self, sim):
        split = urlsplit(self.path)
        path = split.path
        rel = None
        if path == sim.prefix or path.startswith(sim.prefix + "/"):
            rel = path[len(sim.prefix):] or "/"
        body = self.read_body()
        if sim.faults.listener_closed():
            # refuse started while this keep-alive connection was open
            self.close_connection = True
            return
        rule = sim.faults.on_request(path, rel, split.query)
        key = sim.route_key(self.command, rel)
        sim.count_request(key)
        if rule:
            sim.count_failure(rule["mode"])
            mode = rule["mode"]
            if mode == "500":
                raise HttpError(500, "internal server error (simulated)")
            if mode == "429":
                raise HttpError(429, "too many requests (simulated)",
                                headers=[("Retry-After", str(rule["retry_after"]))])
            if mode == "410":
                raise HttpError(410, "since too old (simulated)")
            if mode == "garbage":
                # 200 with a body that is not the contract (not processed)
                self.reply(200, rule["body"])
                return
            if mode == "hang":
                # read, never answer: until the mode is cleared, the simulator stops, or hang_s
                end = time.monotonic() + rule["hang_s"]
                while not rule["release"].is_set() and not sim.stopping and time.monotonic() < end:
                    rule["release"].wait(min(1.0, max(0.0, end - time.monotonic())))
                self.close_connection = True
                return
        try:
            code, out, headers = sim.api(self.command, path, rel, parse_qs(split.query, keep_blank_values=True),
                                         self.headers, body)
        except HttpError as e:
            if not (rule and rule["mode"] == "drop"):
                raise
            code, out, headers = e.code, dict({"error": e.message}, **e.extra), e.headers
        if rule and rule["mode"] == "drop":
            # processed, then the answer is cut: head with the full Content-Length, half the body
            if code == 204 or not out:
                code, out = 200, {"ok": True, "dropped": "a 204 made a 200 with a body to cut"}
            self.close_connection = True
            self.reply(code, out, headers, half=True)
            self.wfile.flush()
            return
        self.reply(code, out, headers)


class CtlHandler(Handler):
    def handle_request(self, sim):
        split = urlsplit(self.path)
        body = self.read_body()
        code, out = sim.ctl(self.command, split.path, parse_qs(split.query, keep_blank_values=True), body)
        self.reply(code, out)


# ---------------------------------------------------------------- the simulator

class Sim:
    def __init__(self, folder, site, token, verbose=False):
        self.dir = os.path.abspath(folder)
        self.site, self.token, self.verbose = site, token, verbose
        self.prefix = "/v1/sites/" + quote(site, safe="")
        self.store = Store(os.path.join(self.dir, "cloud.db"))
        self.ctx = self._context("server")
        self.bad_ctx = self._context("wrong")
        self.faults = Faults(self.faults_changed)
        self.stopping = False
        self.api_srv = self.ctl_srv = None
        self.port = self.ctl_port = 0
        self.listen_lock = threading.Lock()
        self.conns, self.conns_lock = set(), threading.Lock()
        self.cmd_cond, self.cmd_version = threading.Condition(), 0
        self.snapshots, self.snap_lock = {}, threading.Lock()
        self.stats_lock = threading.Lock()
        self.reset_stats()
        self.load_rejects()

    def _context(self, name):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(os.path.join(self.dir, name + ".pem"), os.path.join(self.dir, name + ".key"))
        ctx.set_alpn_protocols(["http/1.1"])
        return ctx

    # -- counters
    def reset_stats(self):
        with self.stats_lock:
            self.stats = {"requests": {}, "failures": {}, "connections": 0, "tls_handshakes": 0,
                          "tls_failures": 0, "internal_errors": 0, "started": time.time()}

    def count(self, key, n=1):
        with self.stats_lock:
            self.stats[key] += n

    def count_request(self, key):
        with self.stats_lock:
            self.stats["requests"][key] = self.stats["requests"].get(key, 0) + 1

    def count_failure(self, mode):
        with self.stats_lock:
            self.stats["failures"][mode] = self.stats["failures"].get(mode, 0) + 1

    @staticmethod
    def route_key(method, rel):
        if rel is None:
            return "%s (not under the site)" % method
        if rel.startswith("/commands/") and rel.endswith("/result"):
            return method + " /commands/{id}/result"
        if rel in ("/state", "/events", "/changes", "/commands", "/heartbeat"):
            return method + " " + rel
        return method + " (unknown path)"

    # -- listeners and connections
    def open_api(self, port, retries=1):
        for attempt in range(retries):
            try:
                srv = Server(("127.0.0.1", port), ApiHandler, self, tls=True)
                break
            except OSError:
                if attempt == retries - 1:
                    raise
                time.sleep(0.1)
        self.port = srv.server_address[1]
        threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
        self.api_srv = srv

    def close_api(self):
        srv, self.api_srv = self.api_srv, None
        if srv:
            srv.shutdown()
            srv.server_close()

    def open_ctl(self, port):
        srv = Server(("127.0.0.1", port), CtlHandler, self, tls=False)
        self.ctl_port = srv.server_address[1]
        threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
        self.ctl_srv = srv

    def kill_connections(self):
        with self.conns_lock:
            conns = list(self.conns)
        for s in conns:
            try:
                socket.socket.shutdown(s, socket.SHUT_RDWR)   # the TCP socket under the TLS one
            except OSError:
                pass

    def faults_changed(self, new_rule):
        """Close the HTTPS listener while an unlimited refuse is set, reopen it
        after; refuse and badcert also end the open connections (a crash, a
        swapped certificate: the next request has to connect again)."""
        with self.listen_lock:
            if self.stopping:
                return
            if new_rule and new_rule["mode"] in ("refuse", "badcert"):
                self.kill_connections()
            closed = self.faults.listener_closed()
            if closed and self.api_srv:
                self.close_api()
                self.kill_connections()
                log("refuse: HTTPS port %d closed" % self.port)
            elif not closed and not self.api_srv:
                self.open_api(self.port, retries=50)
                log("HTTPS port %d open again" % self.port)

    def serve_tls(self, raw, addr, server):
        self.count("connections")
        hit = self.faults.on_connect()
        if (hit and hit["mode"] == "refuse") or self.faults.listener_closed():
            if hit:
                self.count_failure("refuse")
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            raw.close()     # RST: the connection is refused after the fact
            return
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        raw.settimeout(HANDSHAKE_S)
        if hit:
            self.count_failure("badcert")
        try:
            s = (self.bad_ctx if hit else self.ctx).wrap_socket(raw, server_side=True)
        except (OSError, ValueError) as e:
            self.count("tls_failures")
            if self.verbose:
                log("TLS handshake with %s failed: %s" % (addr, e))
            raw.close()
            return
        self.count("tls_handshakes")
        with self.conns_lock:
            self.conns.add(s)
        try:
            ApiHandler(s, addr, server)
        finally:
            with self.conns_lock:
                self.conns.discard(s)
            s.close()

    def shutdown(self):
        with self.listen_lock:
            self.stopping = True
        self.faults.release.set()
        with self.cmd_cond:
            self.cmd_cond.notify_all()
        for srv in (self.api_srv, self.ctl_srv):
            if srv:
                srv.shutdown()
                srv.server_close()
        self.kill_connections()
        self.store.close()

    # -- reject lists (kept in the store: they survive a restart)
    def load_rejects(self):
        with self.store.lock:
            self.reject_types = self.store.get("reject_event_types", {})
            self.reject_changes = {(r["entity"], r["id"]): r["error"]
                                   for r in self.store.get("reject_changes", [])}

    # ---------------------------------------------------------------- API
    def api(self, method, path, rel, q, headers, body):
        if not path.startswith("/v1/sites/"):
            raise HttpError(404, "not found: the API is under /v1/sites/{site}")
        auth = headers.get("Authorization", "")
        scheme, _, tok = auth.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(tok.strip().encode(), self.token.encode()):
            raise HttpError(401, "missing or wrong bearer token", headers=[("WWW-Authenticate", "Bearer")])
        if rel is None:
            raise HttpError(404, "unknown site")
        routes = {"/state": ("GET", self.get_state), "/events": ("POST", self.post_events),
                  "/changes": ("POST", self.post_changes), "/commands": ("GET", self.get_commands),
                  "/heartbeat": ("POST", self.post_heartbeat)}
        if rel in routes:
            want, fn = routes[rel]
            arg = q if want == "GET" else body
        else:
            parts = rel.split("/")
            if len(parts) == 4 and parts[1] == "commands" and parts[3] == "result" and parts[2]:
                want, fn, arg = "POST", lambda b: self.post_result(unquote(parts[2]), b), body
            else:
                raise HttpError(404, "no such endpoint: " + rel)
        if method != want:
            raise HttpError(405, "use " + want, headers=[("Allow", want)])
        return fn(arg)

    @staticmethod
    def qint(q, name, default):
        v = q.get(name)
        if not v or v[-1] == "":
            return default
        try:
            return int(v[-1])
        except ValueError:
            raise HttpError(400, "%s must be an integer" % name)

    # GET /state
    def get_state(self, q):
        since = self.qint(q, "since", 0)
        limit = self.qint(q, "limit", STATE_LIMIT)
        if since < 0 or limit < 1:
            raise HttpError(400, "since must be >= 0 and limit >= 1")
        limit = min(limit, STATE_LIMIT_MAX)
        cursor = q.get("cursor", [""])[-1]
        if since == 0:
            return self.snapshot(cursor, limit)
        if cursor:
            raise HttpError(400, "cursor goes with since=0 only")
        with self.store.lock:
            floor, rev = self.store.get("floor", 0), self.store.seq()
            if since < floor:
                raise HttpError(410, "since too old", extra={"floor": floor})
            if since > rev:
                # a rev this cloud never gave (store reset or restored): resync
                raise HttpError(410, "since is ahead of the cloud", extra={"rev": rev})
            rows = self.store.db.execute(
                "SELECT seq,entity,id,op,data FROM changelog WHERE seq>? ORDER BY seq LIMIT ?",
                (since, limit + 1)).fetchall()
        more = len(rows) > limit
        rows = rows[:limit]
        items = ['{"seq":%d,"entity":%s,"op":"%s","id":%s,"data":%s}'
                 % (s, dumps(e), op, dumps(i), d if d is not None else "null") for s, e, i, op, d in rows]
        out = '{"rev":%d,"more":%s,"full":false,"changes":[%s]}' % (
            rows[-1][0] if rows else since, "true" if more else "false", ",".join(items))
        return 200, out, []

    def snapshot(self, cursor, limit):
        """since=0: every live entity, referenced ones first. Larger than one
        page: taken once, then paged with snapshot_cursor (rev 0 until the
        last page, whose rev is the seq the snapshot was taken at). As a real
        cloud would, it streams: a read transaction of its own connection
        holds the snapshot and each page is read from it when asked for (the
        first page does not wait for the whole site). The page after the
        last one served, or that one again (a retry), can be asked for; any
        other offset is 410."""
        now = time.monotonic()
        if cursor:
            sid, _, off = cursor.partition(".")
            with self.snap_lock:
                snap = self.snapshots.get(sid)
            try:
                off = int(off)
            except ValueError:
                snap = None
            if not snap:
                raise HttpError(410, "snapshot cursor unknown or expired: start again from since=0")
        else:
            sid, off = uuid.uuid4().hex[:16], 0
            con = sqlite3.connect(os.path.join(self.dir, "cloud.db"), check_same_thread=False,
                                  isolation_level=None, timeout=30)
            con.execute("BEGIN")
            rev = self.store.seq(con)      # the read transaction starts here

            # each change's JSON made by SQLite (in C: the simulator shares
            # the box's cores in the benches, a real cloud would not)
            item = ("'{\"seq\":' || seq || ',\"entity\":' || json_quote(entity) || "
                    "',\"op\":\"upsert\",\"id\":' || json_quote(id) || ',\"data\":' || data || '}'")

            def rows():
                for e in ENTITIES:
                    yield from con.execute("SELECT %s FROM entities INDEXED BY entities_seq "
                                           "WHERE entity=? AND deleted=0 ORDER BY seq" % item, (e,))
                yield from con.execute("SELECT %s FROM entities WHERE deleted=0 AND entity "
                                       "NOT IN (%s) ORDER BY entity, seq" % (item, ",".join("?" * len(ENTITIES))),
                                       ENTITIES)
            snap = {"con": con, "rows": rows(), "rev": rev, "t": now, "pos": 0, "last": None,
                    "lock": threading.RLock()}
            with self.snap_lock:
                for k in [k for k, v in self.snapshots.items() if now - v["t"] > SNAPSHOT_TTL_S]:
                    self.snap_close(self.snapshots.pop(k))
                while len(self.snapshots) >= SNAPSHOTS_KEPT:
                    self.snap_close(self.snapshots.pop(min(self.snapshots, key=lambda k: self.snapshots[k]["t"])))
                self.snapshots[sid] = snap
        with snap["lock"]:
            snap["t"] = now
            if snap["last"] and off == snap["last"][0]:
                return snap["last"][1]
            ah = snap.get("ahead")
        if ah and ah["off"] == off and ah["limit"] == limit:
            ah["done"].wait(120)
        with snap["lock"]:
            ah = snap.pop("ahead", None)
            if ah and ah["off"] == off and ah["limit"] == limit and ah.get("res"):
                res, more = ah["res"], ah["more"]
            else:
                if off != snap["pos"] or snap["rows"] is None:
                    raise HttpError(410, "snapshot cursor unknown or expired: start again from since=0")
                res, more = self.build_page(snap, sid, off, limit)
            snap["last"] = (off, res)
            if not more:
                self.snap_close(snap)
            else:
                # as a streaming cloud would: the next page is made while
                # this one travels and is applied
                nxt = {"off": snap["pos"], "limit": limit, "done": threading.Event()}
                snap["ahead"] = nxt

                def work():
                    try:
                        with snap["lock"]:
                            if snap["rows"] is not None and snap.get("ahead") is nxt:
                                nxt["res"], nxt["more"] = self.build_page(snap, sid, nxt["off"], limit)
                    finally:
                        nxt["done"].set()
                threading.Thread(target=work, daemon=True).start()
        return res

    @staticmethod
    def build_page(snap, sid, off, limit):
        """The snapshot's page at OFF (its position), with snap["lock"] held:
        (answer, more)."""
        page = snap.pop("peek", [])
        page += itertools.islice(snap["rows"], limit + 1 - len(page))
        more = len(page) > limit
        if more:
            # the one read ahead starts the next page (not chained back in
            # front of the rows: a chain a page deep makes each row cost
            # as many steps as pages went before)
            snap["peek"] = page[limit:]
            page = page[:limit]
        snap["pos"] = off + len(page)
        items = [r[0] for r in page]
        tail = ',"snapshot_cursor":"%s.%d"' % (sid, snap["pos"]) if more else ""
        out = '{"rev":%d,"more":%s,"full":true,"changes":[%s]%s}' % (
            0 if more else snap["rev"], "true" if more else "false", ",".join(items), tail)
        return (200, out, []), more

    @staticmethod
    def snap_close(snap):
        """Ends a snapshot's read transaction (its last page stays for a retry)."""
        with snap["lock"]:
            if not snap.get("con"):
                return
            snap["rows"] = None
            try:
                snap["con"].close()
            except sqlite3.Error:
                pass
            snap["con"] = None

    # POST /events
    def post_events(self, body):
        evs = parse_json(body).get("events")
        if not isinstance(evs, list):
            raise HttpError(400, '"events" must be a list')
        if len(evs) > EVENTS_MAX:
            raise HttpError(413, "at most %d events per request, got %d" % (EVENTS_MAX, len(evs)))
        accepted, rejected, rows, rej_rows = [], [], [], []
        types, now = self.reject_types, time.time()
        for e in evs:
            if not isinstance(e, dict):
                rejected.append({"id": None, "error": "an event must be an object"})
                continue
            eid, typ = e.get("id"), e.get("type")
            echo = eid if isinstance(eid, (str, int, float)) or eid is None else None
            if not good_str(eid):
                rejected.append({"id": echo, "error": "id must be a non-empty string"})
            elif not good_str(typ):
                rejected.append({"id": eid, "error": "type must be a non-empty string"})
            elif typ in types:
                rejected.append({"id": eid, "error": types[typ]})
                rej_rows.append((eid, typ, types[typ], dumps(e), now))
            else:
                accepted.append(eid)
                rows.append((eid, typ, dumps({"id": eid, "device": e.get("device"), "type": typ,
                                              "ts": e.get("ts"), "data": e.get("data")}), now))
        with self.store.tx() as c:
            stored = c.executemany("INSERT OR IGNORE INTO events(id,type,event,received) VALUES(?,?,?,?)",
                                   rows).rowcount if rows else 0
            if rej_rows:
                c.executemany("INSERT INTO rejected_events(id,type,error,event,received) VALUES(?,?,?,?,?)",
                              rej_rows)
            self.store.bump(c, "events_requests")
            if len(rows) - stored:
                self.store.bump(c, "events_duplicates", len(rows) - stored)
        return 200, {"accepted": accepted, "rejected": rejected}, []

    # POST /changes
    def post_changes(self, body):
        chs = parse_json(body).get("changes")
        if not isinstance(chs, list):
            raise HttpError(400, '"changes" must be a list')
        if len(chs) > CHANGES_MAX:
            raise HttpError(413, "at most %d changes per request" % CHANGES_MAX)
        now = time.time()
        with self.store.tx() as c:
            results = [self.one_change(c, ch, now) for ch in chs]
        return 200, {"results": results}, []

    def one_change(self, c, ch, now):
        def result(status, rev=0, current=None, error=None):
            return {"change_id": cid, "status": status, "rev": rev, "current": current, "error": error}
        cid, key = None, None
        if not isinstance(ch, dict):
            res = result("rejected", error="a change must be an object")
        else:
            cid = ch.get("change_id")
            if good_str(cid) or is_int(cid):
                key = dumps(cid)
                prev = c.execute("SELECT result FROM changes_in WHERE change_id=? AND repeat=0",
                                 (key,)).fetchone()
                if prev:   # idempotent: the first answer again
                    c.execute("INSERT INTO changes_in(change_id,change,result,repeat,received) VALUES(?,?,?,1,?)",
                              (key, dumps(ch), prev[0], now))
                    return json.loads(prev[0])
            else:
                cid = cid if isinstance(cid, (int, float)) or cid is None else None
            ent, op, eid, data = ch.get("entity"), ch.get("op"), ch.get("id"), ch.get("data")
            base = ch.get("base_rev", 0)
            base = 0 if base is None else base
            if key is None:
                res = result("rejected", error="change_id must be a string or an integer")
            elif ent not in ENTITIES:
                res = result("rejected", error="unknown entity %s" % dumps(ent))
            elif op not in ("upsert", "delete"):
                res = result("rejected", error="unknown op %s (upsert or delete)" % dumps(op))
            elif not good_str(eid):
                res = result("rejected", error="id must be a non-empty string")
            elif not is_int(base) or base < 0:
                res = result("rejected", error="base_rev must be an integer >= 0")
            elif op == "upsert" and not isinstance(data, dict):
                res = result("rejected", error="data must be an object")
            elif (ent, eid) in self.reject_changes or (ent, None) in self.reject_changes:
                res = result("rejected", error=self.reject_changes.get((ent, eid),
                                                                       self.reject_changes.get((ent, None))))
            else:
                row = c.execute("SELECT seq,deleted,data FROM entities WHERE entity=? AND id=?",
                                (ent, eid)).fetchone()
                if row and row[0] > base:
                    res = result("conflict", rev=row[0], current=None if row[1] else json.loads(row[2]))
                else:
                    seq = self.store.apply(c, ent, eid, op, dumps(data) if op == "upsert" else None, "gateway")
                    res = result("applied", rev=seq)
        c.execute("INSERT INTO changes_in(change_id,change,result,repeat,received) VALUES(?,?,?,0,?)",
                  (key, dumps(ch), dumps(res), now))
        return res

    # GET /commands (long poll)
    def get_commands(self, q):
        after = self.qint(q, "after", 0)
        try:
            wait = min(max(float(q.get("wait", ["0"])[-1] or 0), 0.0), POLL_MAX_S)
        except ValueError:
            raise HttpError(400, "wait must be a number of seconds")
        end = time.monotonic() + wait
        while True:
            with self.cmd_cond:
                version = self.cmd_version
            rows = self.store.q("SELECT cursor,id,op,target,args FROM commands WHERE cursor>? "
                                "ORDER BY cursor LIMIT 1000", after)
            left = end - time.monotonic()
            if rows or left <= 0 or self.stopping:
                break
            with self.cmd_cond:
                if self.cmd_version == version:
                    self.cmd_cond.wait(left)
        cmds = [{"id": i, "op": op, "target": t, "args": json.loads(a)} for _, i, op, t, a in rows]
        return 200, {"cursor": rows[-1][0] if rows else after, "commands": cmds}, []

    # POST /commands/{id}/result
    def post_result(self, cid, body):
        obj = parse_json(body)
        if obj.get("status") not in ("done", "failed"):
            raise HttpError(400, 'status must be "done" or "failed"')
        with self.store.tx() as c:
            c.execute("INSERT INTO results(command_id,status,body,received) VALUES(?,?,?,?)",
                      (cid, obj["status"], dumps(obj), time.time()))
        return 204, None, []

    # POST /heartbeat
    def post_heartbeat(self, body):
        obj = parse_json(body)
        with self.store.tx() as c:
            c.execute("INSERT INTO heartbeats(body,received) VALUES(?,?)", (dumps(obj), time.time()))
        return 204, None, []

    # ---------------------------------------------------------------- control API
    def ctl(self, method, path, q, body):
        routes = {
            ("GET", "/_sim/ping"): lambda: {"pid": os.getpid(), "port": self.port, "ctl_port": self.ctl_port,
                                            "site": self.site, "listening": self.api_srv is not None},
            ("GET", "/_sim/entities"): lambda: self.ctl_get_entities(q),
            ("POST", "/_sim/entities"): lambda: self.ctl_entities(parse_json(body)),
            ("GET", "/_sim/fail"): lambda: {"rules": self.rules_json()},
            ("POST", "/_sim/fail"): lambda: self.ctl_fail(parse_json(body)),
            ("POST", "/_sim/compact"): lambda: self.ctl_compact(parse_json(body or b"{}")),
            ("GET", "/_sim/reject"): self.rejects_json,
            ("POST", "/_sim/reject"): lambda: self.ctl_reject(parse_json(body)),
            ("GET", "/_sim/commands"): self.ctl_get_commands,
            ("POST", "/_sim/commands"): lambda: self.ctl_command(parse_json(body)),
            ("GET", "/_sim/results"): self.ctl_results,
            ("GET", "/_sim/events"): lambda: self.ctl_events(q),
            ("GET", "/_sim/rejected_events"): self.ctl_rejected_events,
            ("GET", "/_sim/changes"): lambda: self.ctl_changes(q),
            ("GET", "/_sim/heartbeats"): self.ctl_heartbeats,
            ("GET", "/_sim/stats"): self.ctl_stats,
            ("POST", "/_sim/reset"): self.ctl_reset,
        }
        fn = routes.get((method, path))
        if fn is None:
            allowed = [m for m, p in routes if p == path]
            if allowed:
                raise HttpError(405, "use " + " or ".join(allowed), headers=[("Allow", ", ".join(allowed))])
            raise HttpError(404, "no such control endpoint: %s %s" % (method, path))
        out = fn()
        return 200, out

    def ctl_get_entities(self, q):
        ent = q.get("entity", [""])[-1]
        rows = self.store.q("SELECT entity,id,data FROM entities WHERE deleted=0 AND (?='' OR entity=?) "
                            "ORDER BY %s, entity, seq" % ORDER_SQL, ent, ent)
        if ent:
            return "{%s}" % ",".join("%s:%s" % (dumps(i), d) for _, i, d in rows)
        out = {}
        for e, i, d in rows:
            out.setdefault(e, {})[i] = json.loads(d)
        return out

    def ctl_entities(self, obj):
        chs = obj.get("changes")
        if not isinstance(chs, list):
            raise HttpError(400, '"changes" must be a list')
        todo = []
        for n, ch in enumerate(chs):
            # any entity name is allowed here: tests may send the gateway one it does not know
            if not isinstance(ch, dict) or not good_str(ch.get("entity")) or not good_str(ch.get("id")):
                raise HttpError(400, "change %d: entity and id must be non-empty strings" % n)
            op = ch.get("op", "upsert")
            if op not in ("upsert", "delete"):
                raise HttpError(400, "change %d: op must be upsert or delete" % n)
            if op == "upsert" and not isinstance(ch.get("data"), dict):
                raise HttpError(400, "change %d: data must be an object" % n)
            todo.append((ch["entity"], ch["id"], op, dumps(ch["data"]) if op == "upsert" else None))
        with self.store.tx() as c:
            for ent, eid, op, data in todo:
                self.store.apply(c, ent, eid, op, data, "sim")
            return {"rev": self.store.seq(c)}

    def rules_json(self):
        return self.faults.snapshot()

    def ctl_fail(self, obj):
        mode = obj.get("mode")
        if mode is None:
            self.faults.clear()
            log("failure modes cleared")
            return {"rules": []}
        mode = str(mode)
        count, path = obj.get("count"), obj.get("path")
        retry, hang_s = obj.get("retry_after", 1), obj.get("hang_s", HANG_S)
        if mode not in MODES:
            raise HttpError(400, "mode must be one of %s or null" % ", ".join(MODES))
        if count is not None and (not is_int(count) or count < 1):
            raise HttpError(400, "count must be an integer >= 1 or null")
        if path is not None and not good_str(path):
            raise HttpError(400, "path must be a string prefix or null")
        if not is_int(retry) or retry < 0:
            raise HttpError(400, "retry_after must be an integer >= 0")
        if not isinstance(hang_s, (int, float)) or isinstance(hang_s, bool) or not 0 <= hang_s <= HANG_S:
            raise HttpError(400, "hang_s must be a number of seconds, 0..%d" % HANG_S)
        query = obj.get("query")
        if query is not None and not good_str(query):
            raise HttpError(400, "query must be a string or null")
        body = obj.get("body", "<html>not the contract</html>")
        if not isinstance(body, str):
            body = dumps(body)  # a JSON value of the wrong shape
        rule = {"mode": mode, "path": path, "count": count, "retry_after": retry, "hang_s": hang_s,
                "body": body, "query": query}
        self.faults.set(rule, add=bool(obj.get("add")))
        log("failure mode %s" % dumps(rule))
        return {"rules": self.rules_json()}

    def ctl_compact(self, obj):
        """The floor never passes the latest seq: a cloud cannot forget
        history past its head, and a snapshot's rev (the latest seq) must stay
        usable as the next since, or a resync would get 410 forever."""
        with self.store.tx() as c:
            before = obj.get("before", self.store.seq(c))
            if not is_int(before) or before < 0:
                raise HttpError(400, "before must be an integer >= 0")
            before = min(before, self.store.seq(c))
            self.store.put(c, "floor", before)
            c.execute("DELETE FROM changelog WHERE seq<?", (before,))
            gone = c.execute("DELETE FROM entities WHERE deleted=1 AND seq<?", (before,)).rowcount
            return {"floor": before, "rev": self.store.seq(c), "tombstones_forgotten": gone}

    def rejects_json(self):
        return {"event_types": dict(self.reject_types),
                "changes": [{"entity": e, "id": i, "error": err} for (e, i), err in self.reject_changes.items()]}

    def ctl_reject(self, obj):
        """Each list given replaces that list; event_types is a list of types
        (error "event type T is rejected") or an object {type: error}."""
        types, changes = obj.get("event_types"), obj.get("changes")
        if types is not None:
            if isinstance(types, list) and all(good_str(t) for t in types):
                types = {t: "event type %s is rejected" % t for t in types}
            elif not (isinstance(types, dict) and all(isinstance(v, str) for v in types.values())):
                raise HttpError(400, "event_types must be a list of strings or an object {type: error}")
        if changes is not None:
            if not isinstance(changes, list) or not all(
                    isinstance(r, dict) and good_str(r.get("entity")) and (r.get("id") is None or good_str(r["id"]))
                    for r in changes):
                raise HttpError(400, 'changes must be a list of {"entity","id","error"} (id null = any)')
            changes = [{"entity": r["entity"], "id": r.get("id"),
                        "error": str(r.get("error") or "rejected by the cloud")} for r in changes]
        with self.store.tx() as c:
            if types is not None:
                self.store.put(c, "reject_event_types", types)
            if changes is not None:
                self.store.put(c, "reject_changes", changes)
        self.load_rejects()
        return self.rejects_json()

    def ctl_command(self, obj):
        op, target, args, cid = obj.get("op"), obj.get("target"), obj.get("args", {}), obj.get("id")
        if not good_str(op):
            raise HttpError(400, "op must be a non-empty string")
        if target is not None and not good_str(target):
            raise HttpError(400, "target must be a string or null")
        if cid is not None and not good_str(cid):
            raise HttpError(400, "id must be a string")
        with self.store.tx() as c:
            cur = c.execute("INSERT INTO commands(id,op,target,args,queued) VALUES(?,?,?,?,?)",
                            (cid or "", op, target, dumps(args if args is not None else {}), time.time())).lastrowid
            if not cid:
                cid = "cmd-%d" % cur
                c.execute("UPDATE commands SET id=? WHERE cursor=?", (cid, cur))
        with self.cmd_cond:
            self.cmd_version += 1
            self.cmd_cond.notify_all()
        return {"id": cid, "cursor": cur}

    def ctl_get_commands(self):
        rows = self.store.q("SELECT cursor,id,op,target,args,queued FROM commands ORDER BY cursor")
        return {"commands": [{"cursor": k, "id": i, "op": op, "target": t, "args": json.loads(a), "queued": at}
                             for k, i, op, t, a, at in rows]}

    def ctl_results(self):
        rows = self.store.q("SELECT n,command_id,status,body,received FROM results ORDER BY n")
        res = []
        for n, cid, st, b, at in rows:
            b = json.loads(b)
            res.append({"n": n, "id": cid, "status": st, "error": b.get("error"), "body": b, "at": at})
        return res

    def ctl_events(self, q):
        after = self.qint(q, "after", 0)
        limit = self.qint(q, "limit", 0)      # 0 = all
        with self.store.lock:
            rows = self.store.db.execute(
                "SELECT arrival,event FROM events WHERE arrival>? ORDER BY arrival" +
                (" LIMIT %d" % (limit + 1) if limit > 0 else ""), (after,)).fetchall()
            total = self.store.db.execute("SELECT count(*) FROM events").fetchone()[0]
            rej = self.store.db.execute("SELECT count(*) FROM rejected_events").fetchone()[0]
            dups, reqs = self.store.get("events_duplicates", 0), self.store.get("events_requests", 0)
        more = limit > 0 and len(rows) > limit
        rows = rows[:limit] if limit > 0 else rows
        evs = ",".join('{"arrival":%d,%s' % (a, ev[1:]) for a, ev in rows)
        return ('{"events":[%s],"more":%s,"last":%d,"total":%d,"duplicates":%d,"requests":%d,"rejected":%d}'
                % (evs, "true" if more else "false", rows[-1][0] if rows else after, total, dups, reqs, rej))

    def ctl_rejected_events(self):
        rows = self.store.q("SELECT n,id,type,error,event,received FROM rejected_events ORDER BY n")
        return {"events": [{"n": n, "id": i, "type": t, "error": e, "event": json.loads(ev), "at": at}
                           for n, i, t, e, ev, at in rows]}

    def ctl_changes(self, q):
        after = self.qint(q, "after", 0)
        rows = self.store.q("SELECT n,change,result,repeat,received FROM changes_in WHERE n>? ORDER BY n", after)
        return {"changes": [{"n": n, "change": json.loads(ch), "result": json.loads(r), "repeat": bool(rp),
                             "at": at} for n, ch, r, rp, at in rows]}

    def ctl_heartbeats(self):
        with self.store.lock:
            n = self.store.db.execute("SELECT count(*) FROM heartbeats").fetchone()[0]
            last = self.store.db.execute("SELECT body,received FROM heartbeats ORDER BY n DESC LIMIT 1").fetchone()
        return {"count": n, "last": json.loads(last[0]) if last else None, "at": last[1] if last else None}

    def ctl_stats(self):
        with self.stats_lock:
            out = json.loads(dumps(self.stats))
        with self.store.lock:
            db = self.store.db
            out.update({
                "rev": self.store.seq(), "floor": self.store.get("floor", 0),
                "entities": db.execute("SELECT count(*) FROM entities WHERE deleted=0").fetchone()[0],
                "events_stored": db.execute("SELECT count(*) FROM events").fetchone()[0],
                "events_duplicates": self.store.get("events_duplicates", 0),
                "events_requests": self.store.get("events_requests", 0),
                "changes_received": db.execute("SELECT count(*) FROM changes_in").fetchone()[0],
                "commands_queued": db.execute("SELECT count(*) FROM commands").fetchone()[0],
                "results": db.execute("SELECT count(*) FROM results").fetchone()[0],
                "heartbeats": db.execute("SELECT count(*) FROM heartbeats").fetchone()[0]})
        with self.conns_lock:
            out["open_connections"] = len(self.conns)
        out["listening"] = self.api_srv is not None
        out["rules"] = self.rules_json()
        return out

    def ctl_reset(self):
        """Everything emptied. seq and the command cursor keep counting up, and
        the floor moves past the old revs: a gateway that still holds one gets
        410 and resyncs from an empty cloud instead of keeping stale entities."""
        self.faults.clear()
        with self.store.tx() as c:
            seq = self.store.seq(c) + 1
            for t in ("entities", "changelog", "events", "rejected_events", "changes_in", "commands",
                      "results", "heartbeats", "meta"):
                c.execute("DELETE FROM " + t)
            c.execute("DELETE FROM sqlite_sequence WHERE name NOT IN ('commands')")
            self.store.put(c, "seq", seq)
            self.store.put(c, "floor", seq)
        self.load_rejects()
        with self.snap_lock:
            for snap in self.snapshots.values():
                self.snap_close(snap)
            self.snapshots.clear()
        self.reset_stats()
        log("reset (rev %d)" % seq)
        return {"rev": seq}


def serve(args):
    folder = os.path.abspath(args.dir)
    os.makedirs(folder, exist_ok=True)
    make_certs(folder)
    sim = Sim(folder, args.site, args.token, args.verbose)
    sim.open_api(args.port)
    sim.open_ctl(args.ctl_port)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    for name, text in (("cloudsim.pid", "%d\n" % os.getpid()), ("ports", "%d %d\n" % (sim.port, sim.ctl_port))):
        with open(os.path.join(folder, name + ".tmp"), "w") as f:
            f.write(text)
        os.replace(os.path.join(folder, name + ".tmp"), os.path.join(folder, name))
    log("site %s: HTTPS on 127.0.0.1:%d, control on 127.0.0.1:%d" % (args.site, sim.port, sim.ctl_port))
    while not stop.wait(1.0):
        pass
    sim.shutdown()
    try:
        if int(open(os.path.join(folder, "cloudsim.pid")).read()) == os.getpid():
            os.remove(os.path.join(folder, "cloudsim.pid"))
    except (OSError, ValueError):
        pass
    log("stopped")


# ---------------------------------------------------------------- as a module (tests)

def _running(pid):
    """pid is alive (not a zombie) and is a cloudsim."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                return False
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return b"cloudsim" in f.read()
    except (OSError, IndexError):
        return False


class CloudSim:
    """The simulator in a child process, and a small client of its control
    API. Ports are kept across restart()."""

    def __init__(self, folder, site="site-test", token="cloudsim-token", port=None, ctl_port=None,
                 verbose=False):
        self.dir = os.path.abspath(folder)
        self.site, self.token, self.verbose = site, token, verbose
        self.port, self.ctl_port = port or 0, ctl_port or 0
        self.proc = None

    @property
    def ca(self):
        return os.path.join(self.dir, "ca.pem")

    @property
    def url(self):
        return "https://127.0.0.1:%d" % self.port

    def start(self, timeout=10.0, detach=False):
        os.makedirs(self.dir, exist_ok=True)
        make_certs(self.dir)
        for n in ("ports", "cloudsim.pid"):
            try:
                os.remove(os.path.join(self.dir, n))
            except OSError:
                pass
        cmd = [sys.executable, os.path.abspath(__file__), "serve", self.dir, "--site", self.site,
               "--token", self.token, "--port", str(self.port), "--ctl-port", str(self.ctl_port)]
        if self.verbose:
            cmd.append("--verbose")
        with open(os.path.join(self.dir, "cloudsim.log"), "ab") as logf:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                                         start_new_session=detach)
        end = time.time() + timeout
        while time.time() < end:
            if self.proc.poll() is not None:
                raise RuntimeError("cloudsim exited (%d): see %s/cloudsim.log" % (self.proc.returncode, self.dir))
            try:
                with open(os.path.join(self.dir, "ports")) as f:
                    self.port, self.ctl_port = map(int, f.read().split())
                self.ctl("GET", "/_sim/ping")
                return self
            except (OSError, ValueError, RuntimeError):
                time.sleep(0.05)
        raise RuntimeError("cloudsim did not start: see %s/cloudsim.log" % self.dir)

    def stop(self, sig=signal.SIGTERM):
        stop_proc(self.proc, sig)
        self.proc = None

    def restart(self):
        self.stop()
        return self.start()

    def ctl(self, method, path, body=None, timeout=30):
        """A control API call: the decoded JSON answer; RuntimeError if not 2xx."""
        con = http.client.HTTPConnection("127.0.0.1", self.ctl_port, timeout=timeout)
        try:
            con.request(method, path, None if body is None else dumps(body),
                        {"Content-Type": "application/json"})
            r = con.getresponse()
            data = r.read()
        finally:
            con.close()
        if r.status // 100 != 2:
            raise RuntimeError("%s %s -> %d %s" % (method, path, r.status, data.decode(errors="replace")))
        return json.loads(data) if data else None

    def upsert(self, entity, eid, data):
        return self.ctl("POST", "/_sim/entities", {"changes": [{"entity": entity, "op": "upsert", "id": eid,
                                                                 "data": data}]})["rev"]

    def delete(self, entity, eid):
        return self.ctl("POST", "/_sim/entities", {"changes": [{"entity": entity, "op": "delete",
                                                                 "id": eid}]})["rev"]

    def fail(self, mode, path=None, count=None, retry_after=1, add=False, **kw):
        return self.ctl("POST", "/_sim/fail", dict(kw, mode=mode, path=path, count=count,
                                                    retry_after=retry_after, add=add))

    def clear(self):
        return self.ctl("POST", "/_sim/fail", {"mode": None})

    def command(self, op, target=None, args=None, cid=None):
        body = {"op": op, "target": target, "args": args or {}}
        if cid:
            body["id"] = cid
        return self.ctl("POST", "/_sim/commands", body)

    def events(self, page=50000):
        """Every event stored, in arrival order."""
        out, after = [], 0
        while True:
            r = self.ctl("GET", "/_sim/events?after=%d&limit=%d" % (after, page))
            out += r["events"]
            after = r["last"]
            if not r["more"]:
                return out

    def stats(self):
        return self.ctl("GET", "/_sim/stats")

    def pin(self, wrong=False):
        return pin(self.dir, wrong)

    def ssl_context(self):
        return ssl.create_default_context(cafile=self.ca)


def stop_dir(folder):
    """stop DIR: SIGTERM the pid in DIR/cloudsim.pid, kill -9 after 5 s."""
    try:
        pid = int(open(os.path.join(folder, "cloudsim.pid")).read())
    except (OSError, ValueError):
        return
    if not _running(pid):
        return
    os.kill(pid, signal.SIGTERM)
    end = time.time() + 5
    while time.time() < end and _running(pid):
        time.sleep(0.05)
    if _running(pid):
        os.kill(pid, signal.SIGKILL)
        while _running(pid):
            time.sleep(0.05)
    try:
        os.remove(os.path.join(folder, "cloudsim.pid"))
    except OSError:
        pass


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("start", "serve"):
        p = sub.add_parser(name)
        p.add_argument("dir")
        p.add_argument("--site", required=True)
        p.add_argument("--token", required=True)
        p.add_argument("--port", type=int, default=0)
        p.add_argument("--ctl-port", type=int, default=0)
        p.add_argument("--verbose", action="store_true", help="log every request")
    sub.add_parser("stop").add_argument("dir")
    p = sub.add_parser("pin")
    p.add_argument("dir")
    p.add_argument("--wrong", action="store_true", help="the pin of the badcert certificate")
    args = ap.parse_args()
    if args.cmd == "serve":
        serve(args)
    elif args.cmd == "start":
        try:
            pid = int(open(os.path.join(args.dir, "cloudsim.pid")).read())
            if _running(pid):
                sys.exit("cloudsim already running in %s (pid %d)" % (args.dir, pid))
        except (OSError, ValueError):
            pass
        sim = CloudSim(args.dir, args.site, args.token, args.port, args.ctl_port, args.verbose)
        try:
            sim.start(detach=True)     # the caller ends it with "stop" (by pid, never by name)
        except RuntimeError as e:
            sim.stop()
            sys.exit(str(e))
        print(sim.port, sim.ctl_port, sim.proc.pid)
    elif args.cmd == "stop":
        stop_dir(args.dir)
    else:
        print(pin(args.dir, args.wrong))


if __name__ == "__main__":
    main()
