#!/usr/bin/env python3
"""Starts a real mosquitto broker for tests and the demo, on a free loopback
port, with a generated config: anonymous access off, the dynamic-security
plugin on (the gateway's account is its admin, allowed to publish under
gatehouse/#), persistence in the run folder, TCP_NODELAY.

  broker.py start DIR [USER PASSWORD]   -> prints "PORT PID", leaves it running
  broker.py stop DIR                    -> ends the broker started in DIR (by its pid)

As a module: Broker(dir).start() / .stop() / .restart().
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from testlib import stop_proc

PLUGIN_DIRS = ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib/arm-linux-gnueabihf",
               "/usr/lib"]


def plugin_path():
    for d in PLUGIN_DIRS:
        p = os.path.join(d, "mosquitto_dynamic_security.so")
        if os.path.exists(p):
            return p
    raise RuntimeError("mosquitto_dynamic_security.so not found (apt-get install mosquitto)")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Broker:
    def __init__(self, folder, user="gatehoused", password="gatehoused-test-pw", port=None):
        self.dir = os.path.abspath(folder)
        self.user, self.password = user, password
        self.port = port or free_port()
        self.proc = None

    def _prepare(self):
        os.makedirs(os.path.join(self.dir, "data"), exist_ok=True)
        ds = os.path.join(self.dir, "dynsec.json")
        if not os.path.exists(ds):
            subprocess.run(["mosquitto_ctrl", "dynsec", "init", ds, self.user, self.password],
                           check=True, stdout=subprocess.DEVNULL)
            with open(ds) as f:
                conf = json.load(f)
            for role in conf["roles"]:
                if role["rolename"] == "admin":
                    # the gateway may publish its status, acks, responses, commands
                    role["acls"].append({"acltype": "publishClientSend", "topic": "gatehouse/#",
                                         "allow": True})
            with open(ds, "w") as f:
                json.dump(conf, f, indent=1)
        with open(os.path.join(self.dir, "mosquitto.conf"), "w") as f:
            f.write("per_listener_settings false\n"
                    "allow_anonymous false\n"
                    "listener %d 127.0.0.1\n"
                    "set_tcp_nodelay true\n"
                    "max_packet_size 1048576\n"
                    # the gateway takes every device's traffic: a deep queue and
                    # a wide in-flight window, or QoS 1 events are dropped by
                    # the broker (default 1000 queued) or trickle (20 in flight)
                    "max_queued_messages 200000\n"
                    "max_inflight_messages 1000\n"
                    "persistence true\n"
                    "persistence_location %s/data/\n"
                    "autosave_interval 1\n"
                    "plugin %s\n"
                    "plugin_opt_config_file %s\n"
                    "log_dest file %s/mosquitto.log\n"
                    "log_type error\nlog_type warning\nlog_type notice\n"
                    % (self.port, self.dir, plugin_path(), ds, self.dir))
        if os.getuid() == 0:
            # mosquitto started as root drops to the mosquitto user: it must
            # read its config and write the plugin file, data and log (and
            # reach the folder: its parents need o+x, mkdtemp's 0700 won't do)
            parent = os.path.dirname(self.dir)
            if not os.stat(parent).st_mode & 0o001:
                raise RuntimeError("%s must be o+x for the mosquitto user" % parent)
            for root, dirs, files in os.walk(self.dir):
                for n in dirs + files:
                    shutil.chown(os.path.join(root, n), "mosquitto", "mosquitto")
            shutil.chown(self.dir, "mosquitto", "mosquitto")

    def start(self, timeout=10.0):
        self._prepare()
        self.proc = subprocess.Popen(["mosquitto", "-c", os.path.join(self.dir, "mosquitto.conf")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with open(os.path.join(self.dir, "pid"), "w") as f:
            f.write(str(self.proc.pid))
        end = time.time() + timeout
        while time.time() < end:
            if self.proc.poll() is not None:
                raise RuntimeError("mosquitto exited: see %s/mosquitto.log" % self.dir)
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not listen on %d" % self.port)

    def stop(self, sig=signal.SIGTERM):
        stop_proc(self.proc, sig)
        self.proc = None

    def restart(self):
        self.stop()
        return self.start()


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "start":
        b = Broker(sys.argv[2], *sys.argv[3:5])
        b.start()
        # detach: the caller ends it with "stop" (by pid, never by name)
        print(b.port, b.proc.pid)
        return
    if len(sys.argv) == 3 and sys.argv[1] == "stop":
        try:
            pid = int(open(os.path.join(sys.argv[2], "pid")).read())
            os.kill(pid, signal.SIGTERM)
        except (OSError, ValueError):
            pass
        return
    print(__doc__, file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
    main()
