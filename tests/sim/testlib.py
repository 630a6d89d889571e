"""Helpers shared by the end-to-end suites (tests/mqtt, tests/bus): checks
that count and print, polling waits (never fixed sleeps for readiness), free
loopback ports, and reading the site database as another process would."""
import glob
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import time

counts = {"passed": 0, "failed": 0}

# GH_VALGRIND=1 (make check-valgrind): the daemon runs under valgrind's
# memcheck, 10-50 times slower; every timeout of the suites is scaled by SLOW.
VALGRIND = os.environ.get("GH_VALGRIND") == "1"
SLOW = 10 if VALGRIND else 1
SUPP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "valgrind.supp")


def daemon_cmd(binary, logdir):
    """The command line that starts BINARY (gatehoused): itself, or under
    memcheck with GH_VALGRIND=1, one log a process in LOGDIR/valgrind.PID.log.
    Errors make it exit 99; leaks count when definitely lost."""
    if not VALGRIND:
        return [binary]
    return ["valgrind", "--tool=memcheck", "--error-exitcode=99", "--leak-check=full",
            "--errors-for-leak-kinds=definite", "--track-fds=no", "--num-callers=30",
            "--suppressions=" + os.path.normpath(SUPP),
            "--log-file=" + os.path.join(logdir, "valgrind.%p.log"), binary]


VG_ERROR = re.compile(r"^==\d+== (Invalid (read|write|free)|Conditional jump|Use of uninitialised|Syscall param|"
                      r"Mismatched free|Source and destination overlap|Argument .* of function|"
                      r".* definitely lost in |Invalid or mismatched|Fishy value|Process terminating)")


def valgrind_report(logdir):
    """Every valgrind.*.log in LOGDIR: [(file, first lines of each error)]
    for the logs with errors (a process killed with -9 has no summary: its
    error records count)."""
    bad = []
    for path in sorted(glob.glob(os.path.join(logdir, "**", "valgrind.*.log"), recursive=True)):
        with open(path, errors="replace") as f:
            lines = f.read().splitlines()
        summary = [l for l in lines if "ERROR SUMMARY:" in l]
        n = int(re.search(r"ERROR SUMMARY: (\d+)", summary[-1]).group(1)) if summary else None
        errs = [i for i, l in enumerate(lines) if VG_ERROR.match(l)]
        if (n or 0) > 0 or errs:
            first = [" | ".join(l.split("== ", 1)[-1] for l in lines[i:i + 6]) for i in errs[:3]]
            bad.append((os.path.basename(path), "%s errors: %s" % (n if n is not None else len(errs),
                                                                  " || ".join(first))))
    return bad


def valgrind_check(logdir, suite):
    """With GH_VALGRIND=1: one check that the daemon's memcheck logs are clean."""
    if not VALGRIND:
        return
    logs = glob.glob(os.path.join(logdir, "**", "valgrind.*.log"), recursive=True)
    bad = valgrind_report(logdir)
    ok("%s: valgrind memcheck clean (%d daemon runs)" % (suite, len(logs)), logs and not bad,
       bad or "no valgrind log in %s" % logdir)


def ok(name, cond, detail=""):
    if cond:
        counts["passed"] += 1
        print("  ok    " + name)
    else:
        counts["failed"] += 1
        print("  FAIL  " + name + (("\n        " + str(detail)) if detail else ""))


def wait(cond, timeout=5.0):
    end = time.time() + timeout * SLOW
    while time.time() < end:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def query(path, sql, *params):
    con = sqlite3.connect(path, timeout=10)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def stop_proc(proc, sig=signal.SIGTERM, timeout=5.0):
    """Ends a simulator started by a test: SIG, then kill -9 after TIMEOUT."""
    if proc and proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout * SLOW)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class WSClient:
    """A minimal websocket client (RFC 6455, text frames from the server)."""

    def __init__(self, host, port, ctx, cookie=None, origin=None, path="/api/v1/ws"):
        import base64
        import os
        raw = socket.create_connection((host, port), timeout=5 * SLOW)
        self.sock = ctx.wrap_socket(raw)
        key = base64.b64encode(os.urandom(16)).decode()
        h = ["GET %s HTTP/1.1" % path, "Host: %s:%d" % (host, port), "Upgrade: websocket", "Connection: Upgrade",
             "Sec-WebSocket-Key: " + key, "Sec-WebSocket-Version: 13"]
        if cookie:
            h.append("Cookie: " + cookie)
        if origin:
            h.append("Origin: " + origin)
        self.sock.sendall(("\r\n".join(h) + "\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            if not chunk:
                break
            head += chunk
        self.status = int(head.split(b" ")[1]) if head.startswith(b"HTTP/1.1 ") else 0
        self.buf = b""

    def _frame(self):
        """The first whole frame in the buffer, taken out of it: (b0, payload);
        None while it is incomplete (so a timeout never splits a frame)."""
        b = self.buf
        if len(b) < 2:
            return None
        n, off = b[1] & 0x7F, 2
        if n == 126:
            if len(b) < 4:
                return None
            n, off = int.from_bytes(b[2:4], "big"), 4
        elif n == 127:
            if len(b) < 10:
                return None
            n, off = int.from_bytes(b[2:10], "big"), 10
        if len(b) < off + n:
            return None
        self.buf = b[off + n:]
        return b[0], b[off:off + n]

    def recv(self, timeout=5):
        self.sock.settimeout(timeout * SLOW)
        f = self._frame()
        while f is None:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError
            self.buf += chunk
            f = self._frame()
        b0, data = f
        if (b0 & 0x0F) == 9:
            # a ping: pong as a browser does, or the server hangs up (lws
            # pings an idle-looking connection after 5 minutes)
            self.send_frame(10, data)
            return None
        return json.loads(data) if (b0 & 0x0F) == 1 else None

    def send_frame(self, opcode, payload=b""):
        """One masked frame from the client (RFC 6455: clients mask)."""
        import os
        mask = os.urandom(4)
        n = len(payload)
        head = bytes([0x80 | opcode]) + (bytes([0x80 | n]) if n < 126 else
                                          bytes([0x80 | 126]) + n.to_bytes(2, "big") if n < 65536 else
                                          bytes([0x80 | 127]) + n.to_bytes(8, "big"))
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def messages(self, timeout=5):
        """The next frame's messages (a frame holds one message, or a JSON
        array of them)."""
        m = self.recv(timeout)
        return m if isinstance(m, list) else [m] if m else []

    def until(self, cond, timeout=5):
        end = time.time() + timeout * SLOW
        while time.time() < end:
            try:
                ms = self.messages(max(0.1, end - time.time()) / SLOW)  # recv scales it back
            except (OSError, EOFError):
                return None
            for m in ms:
                if m and cond(m):
                    return m
        return None

    def close(self):
        self.sock.close()
