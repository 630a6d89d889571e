#!/usr/bin/env python3
"""Device simulator: door phones and indoor monitors speaking the MQTT
contract (MQTT.md) as real ones would.

- logs in as its MAC with its own password;
- publishes its retained status and sets its last will {"online":false};
- keeps every event until the gateway acknowledges it and resends the
  unacknowledged ones after each reconnect, whenever the gateway's status
  comes back online (a gateway killed after taking a message but before
  storing it), and after RESEND_S without an ack (nothing lost, duplicates
  are the gateway's to drop);
- answers commands on .../cmd with .../cmd/ack;
- sends requests and waits for the matching response.

Many devices run in one process (one paho network thread each).
Uses Debian's python3-paho-mqtt.
"""
import json
import threading
import time
import uuid

import paho.mqtt.client as mqtt
from testlib import SLOW

ROOT = "gatehouse/v1"
RESEND_S = 5.0


class Device:
    def __init__(self, mac, password, port, host="127.0.0.1", model="R29", fw="29.30.10.205",
                 ip="192.0.2.20", cmd_ok=True):
        self.mac, self.password, self.host, self.port = mac, password, host, port
        self.model, self.fw, self.ip = model, fw, ip
        self.cmd_ok = cmd_ok
        self.base = "%s/dev/%s" % (ROOT, mac)
        self.lock = threading.Condition()
        self.unacked = {}      # id -> event, in send order
        self.sent_at = {}      # id -> time of the last send
        self.acked = []        # ids, in ack order
        self.responses = {}    # rid -> response
        self.commands = []     # commands received
        self.gw_status = None
        self.connected = False
        self.connect_rc = None
        self.suback = None
        self.client = mqtt.Client(client_id="dev-" + mac, clean_session=True)
        self.client.username_pw_set(mac, password)
        self.client.will_set(self.base + "/status", json.dumps({"online": False}), qos=1, retain=True)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.client.reconnect_delay_set(0.1, 1)

    # -- life cycle --
    def start(self, wait=5.0):
        self._stop = False
        self.client.connect_async(self.host, self.port, keepalive=10)
        self.client.loop_start()
        threading.Thread(target=self._resender, daemon=True).start()
        self.wait_for(lambda: self.connected or self.connect_rc not in (None, 0), wait)
        return self

    def stop(self, graceful=True):
        self._stop = True
        if graceful:
            self.client.publish(self.base + "/status", json.dumps({"online": False}), qos=1, retain=True)
            self.client.disconnect()
        self.client.loop_stop()

    def crash(self):
        """Drops the TCP connection without DISCONNECT: the broker sends the will."""
        self._stop = True
        self.client.loop_stop()
        try:
            self.client.socket().close()
        except Exception:
            pass

    def wait_for(self, cond, timeout=5.0):
        """Waits for COND up to TIMEOUT s (scaled under valgrind: testlib.SLOW)."""
        end = time.time() + timeout * SLOW
        with self.lock:
            while not cond():
                left = end - time.time()
                if left <= 0:
                    return False
                self.lock.wait(left)
        return True

    # -- callbacks --
    def _on_connect(self, client, userdata, flags, rc):
        with self.lock:
            self.connect_rc = rc
            if rc != 0:
                self.lock.notify_all()
                return
            self.connected = True
            self.lock.notify_all()
        client.subscribe([(self.base + "/event/ack", 1), (self.base + "/resp", 1),
                          (self.base + "/cmd", 1), (ROOT + "/gw/status", 1)])
        client.publish(self.base + "/status", json.dumps(
            {"online": True, "model": self.model, "fw": self.fw, "ip": self.ip}), qos=1, retain=True)
        self.resend()

    def _on_disconnect(self, client, userdata, rc):
        with self.lock:
            self.connected = False
            self.lock.notify_all()

    def _on_subscribe(self, client, userdata, mid, granted):
        with self.lock:
            self.suback = granted
            self.lock.notify_all()

    def _on_message(self, client, userdata, msg):
        try:
            body = json.loads(msg.payload)
        except ValueError:
            return
        with self.lock:
            if msg.topic.endswith("/event/ack"):
                if body.get("id") in self.unacked:
                    del self.unacked[body["id"]]
                self.acked.append(body.get("id"))
            elif msg.topic.endswith("/resp"):
                self.responses[body.get("rid")] = body
            elif msg.topic.endswith("/cmd"):
                self.commands.append(body)
            elif msg.topic.endswith("/gw/status"):
                came_back = body.get("online") is True and (self.gw_status or {}).get("online") is False
                self.gw_status = body
                if came_back:
                    threading.Thread(target=self.resend, daemon=True).start()
            self.lock.notify_all()
        if msg.topic.endswith("/cmd"):
            ack = {"cid": body.get("cid"), "ok": self.cmd_ok}
            if not self.cmd_ok:
                ack["error"] = "refused by the simulator"
            client.publish(self.base + "/cmd/ack", json.dumps(ack), qos=1)

    def resend(self, older_than=0.0):
        """Publishes again every event not acknowledged (sent more than
        OLDER_THAN seconds ago)."""
        now = time.time()
        with self.lock:
            pending = [ev for i, ev in self.unacked.items() if now - self.sent_at.get(i, 0) >= older_than]
            for ev in pending:
                self.sent_at[ev["id"]] = now
        for ev in pending:
            self.client.publish(self.base + "/event", json.dumps(ev), qos=1)

    def _resender(self):
        while not self._stop:
            time.sleep(1.0)
            if self.connected:
                self.resend(RESEND_S)

    # -- traffic --
    def event(self, etype, **fields):
        ev = {"id": fields.pop("id", uuid.uuid4().hex[:16]), "type": etype, "ts": int(time.time())}
        ev.update(fields)
        with self.lock:
            self.unacked[ev["id"]] = ev
            self.sent_at[ev["id"]] = time.time()
        self.client.publish(self.base + "/event", json.dumps(ev), qos=1)
        return ev["id"]

    def request(self, op, timeout=5.0, **fields):
        rid = uuid.uuid4().hex[:12]
        req = {"rid": rid, "op": op}
        req.update(fields)
        self.client.publish(self.base + "/req", json.dumps(req), qos=1)
        if not self.wait_for(lambda: rid in self.responses, timeout):
            return None
        with self.lock:
            return self.responses.pop(rid)

    def publish_raw(self, leaf, payload, qos=1):
        return self.client.publish(self.base + "/" + leaf if leaf else leaf, payload, qos=qos)
