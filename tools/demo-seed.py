#!/usr/bin/env python3
"""Writes the demo community as one JSON file per entity kind into DIR:
2 buildings, 20 apartments, residents with PINs, RF and UHF cards and plates,
door phones, indoor monitors, a relay board, access groups, a temp key.
Deterministic (fixed seed), so the demo prints the same people every time."""
import json
import os
import random
import sys

out = sys.argv[1]
# the simulated field bus: HF-8000 and lift over Modbus TCP, UHF reader over
# TCP, MK485 over RTU on a pty (ports and path from tools/demo.sh)
HF_PORT, LIFT_PORT, UHF_PORT = (int(os.environ.get(k, d)) for k, d in
                                (("HF_PORT", "15020"), ("LIFT_PORT", "15021"), ("UHF_PORT", "15022")))
RTU = os.environ.get("RTU_TTY", "/tmp/gatehouse-demo/ttyGW")
rnd = random.Random(2026)
os.makedirs(out, exist_ok=True)

FIRST = ["Anna", "Ben", "Clara", "David", "Eva", "Felix", "Greta", "Hugo", "Ida", "Jonas",
         "Klara", "Lukas", "Mia", "Noah", "Olivia", "Paul", "Rosa", "Simon", "Tina", "Umut"]
LAST = ["Berger", "Huber", "Wagner", "Gruber", "Pichler", "Steiner", "Moser", "Mayer", "Hofer",
        "Bauer", "Leitner", "Fuchs", "Eder", "Fischer", "Schwarz", "Weber", "Koller", "Lang"]

ents = {k: [] for k in ["settings", "mac", "building", "apartment", "device", "relay_board",
                        "access_group", "person", "credential", "temp_key"]}
ents["settings"].append({"kind": "community", "name": "Parkview Residences",
                         "address": "Parkring 12, 1010 Wien", "timezone": "Europe/Vienna",
                         "pin_mode": "pin", "access_permission": "public_private",
                         "emergency": {"auto_unlock": True, "doors": "all", "notify": True}})

doorphones = []
for b in (1, 2):
    bid = "bldg-%d" % b
    ents["building"].append({"id": bid, "name": "Block %s" % "AB"[b - 1], "ground_floor": "G0",
                             "floor_start": 1})
    mac = "0C1105B%05d" % b
    doorphones.append(mac)
    ents["mac"].append({"id": mac})
    ents["device"].append({"id": mac, "type": 0, "name": "Block %s entrance" % "AB"[b - 1],
                           "area": "building", "building": bid, "ip": "192.0.2.%d" % (10 + b),
                           "relays": [{"n": 1, "name": "Entrance door"},
                                      {"n": 2, "name": "Bike room", "methods": ["rf", "uhf"],
                                       "board": {"board": "bikes", "channel": 1}}]})
gate = "0C1105C00001"
ents["mac"].append({"id": gate})
ents["device"].append({"id": gate, "type": 0, "name": "Garden gate", "area": "site",
                       "relays": [{"n": 1, "name": "Gate"}]})
ents["relay_board"].append({"id": "bikes", "name": "Bike room board", "profile": "MK485-G2R-8J8C",
                            "mode": "rs485", "bus": RTU,
                            "channels": [{"channel": 1, "name": "Bike room door", "function": "door"}]})
ents["relay_board"].append({"id": "lift-a", "name": "Block A lift", "profile": "LIFT-16", "mode": "ethernet",
                            "bus": "127.0.0.1:%d" % LIFT_PORT, "building": "bldg-1",
                            "channels": [{"channel": 1, "floor": "G0", "function": "lift_floor"}] +
                                        [{"channel": f + 1, "floor": str(f), "function": "lift_floor"} for f in range(1, 6)]})
ents["relay_board"].append({"id": "uhf-garage", "name": "Garage UHF reader", "profile": "UHF-READER",
                            "mode": "ethernet", "bus": "127.0.0.1:%d" % UHF_PORT, "lot": "garage-lot"})
ents["parking_lot"] = [{"id": "garage-lot", "name": "Garage", "capacity": 12,
                        "entry": {"board": "garage", "channel": 1}, "exit": {"board": "garage", "channel": 2},
                        "readers": [{"board": "uhf-garage", "direction": "entry"}]}]
ents["relay_board"].append({"id": "garage", "name": "Garage barrier board", "profile": "HF-8000",
                            "mode": "ethernet", "bus": "127.0.0.1:%d" % HF_PORT,
                            "channels": [{"channel": 1, "name": "Barrier in", "function": "barrier"},
                                         {"channel": 2, "name": "Barrier out", "function": "barrier"}]})

pin = 1000
n = 0
for b in (1, 2):
    bid = "bldg-%d" % b
    for floor in range(1, 6):
        for unit in (1, 2):
            apt = "%d%02d" % (floor, unit)
            aid = "apt-%d-%s" % (b, apt)
            ents["apartment"].append({"id": aid, "building": bid, "apt": apt, "floor": str(floor),
                                      "name": "Apartment %s" % apt, "call_type": 3})
            mon = "0C1105D%02d%03d" % (b, int(apt))
            ents["mac"].append({"id": mon})
            ents["device"].append({"id": mon, "type": 2, "name": "Monitor %s" % apt,
                                   "area": "apartment", "apartment": aid, "works_offline": True})
            for k in range(rnd.choice((1, 2))):
                n += 1
                pid = "person-%03d" % n
                ents["person"].append({"id": pid, "kind": "resident" if k == 0 else "family",
                                       "apartment": aid, "first_name": FIRST[n % len(FIRST)],
                                       "last_name": LAST[(n * 7) % len(LAST)],
                                       "floors": [str(floor), "G0"]})
                pin += rnd.randint(7, 97)
                ents["credential"].append({"id": "pin-%03d" % n, "person": pid, "type": "pin",
                                           "code": str(pin)})
                ents["credential"].append({"id": "rf-%03d" % n, "person": pid, "type": "rf",
                                           "code": "%08X" % rnd.getrandbits(32)})
                if n % 3 == 0:
                    ents["credential"].append({"id": "uhf-%03d" % n, "person": pid, "type": "uhf",
                                               "code": "E200%08X" % rnd.getrandbits(32)})
                    ents["credential"].append({"id": "plate-%03d" % n, "person": pid,
                                               "type": "plate", "code": "W-%05d%s" %
                                               (rnd.randint(10000, 99999), "ABCDEF"[n % 6])})

# default groups of each building, plus the garden gate for everyone, plus staff hours
for b in (1, 2):
    ents["access_group"].append({"id": "default-%d" % b, "name": "Block %s residents" % "AB"[b - 1],
                                 "building": "bldg-%d" % b,
                                 "relays": [{"device": doorphones[b - 1], "relay": 1},
                                            {"device": doorphones[b - 1], "relay": 2}]})
ents["access_group"].append({"id": "garden", "name": "Garden gate", "relays":
                             [{"device": gate, "relay": 1}, {"board": "garage", "channel": 1},
                              {"board": "garage", "channel": 2}],
                             "members": {"buildings": ["bldg-1", "bldg-2"]}})
ents["person"].append({"id": "staff-1", "kind": "pm_staff", "first_name": "Walter",
                       "last_name": "Hausmeister", "floors": ["all"]})
ents["credential"].append({"id": "pin-staff-1", "person": "staff-1", "type": "pin", "code": "24680"})
ents["access_group"].append({"id": "caretaker", "name": "Caretaker (weekdays 07-17)",
                             "schedule": {"repeat": "weekly", "days": [1, 2, 3, 4, 5],
                                          "from": "07:00", "to": "17:00"},
                             "relays": [{"device": d, "relay": 1} for d in doorphones + [gate]],
                             "members": {"persons": ["staff-1"]}})
ents["temp_key"].append({"id": "visitor-1", "building": "bldg-1", "apartment": "apt-1-101",
                         "visitor": "Grandma Rosi", "code": "13579", "devices": doorphones[:1] + [gate],
                         "uses_per_device": 2,
                         "schedule": {"repeat": "never", "end": 4102444800}})

for kind, items in ents.items():
    with open(os.path.join(out, kind + ".json"), "w") as f:
        json.dump(items if kind != "settings" else items[0], f, indent=1)
print("demo site: %d persons, %d credentials, %d devices" %
      (len(ents["person"]), len(ents["credential"]), len(ents["device"])))
