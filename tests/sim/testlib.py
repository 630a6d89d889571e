"""Helpers shared by the end-to-end suites (tests/mqtt, tests/bus): checks
that count and print, polling waits (never fixed sleeps for readiness), free
loopback ports, and reading the site database as another process would."""
import signal
import socket
import sqlite3
import subprocess
import time

counts = {"passed": 0, "failed": 0}


def ok(name, cond, detail=""):
    if cond:
        counts["passed"] += 1
        print("  ok    " + name)
    else:
        counts["failed"] += 1
        print("  FAIL  " + name + (("\n        " + str(detail)) if detail else ""))


def wait(cond, timeout=5.0):
    end = time.time() + timeout
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
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
