#!/usr/bin/python3
"""report: builds bench/RESULTS.md from the output of `make bench` (one
NAME.log per benchmark in the results folder, bench/run.sh) and prints its
tables. Each benchmark prints, besides its human output,

  RESULT  {"bench", "figure", "target", "measured", "unit", "met"}   a headline figure
  COMPARE {"rate", "figure", "unit", "gatehoused", "nodered", "ratio"}  bench_nodered

Python standard library only; reads, never runs anything but version queries.

usage: bench/report.py RESULTS_DIR [OUT.md] [quick]
"""
import datetime
import glob
import json
import os
import platform
import subprocess
import sys

ORDER = ["bench_engine", "bench_mqtt", "bench_mqtt_floor", "bench_bus", "bench_cloud", "bench_web", "bench_nodered"]
WHAT = {
    "bench_engine": "access decisions on a community-sized site (bench_engine.c)",
    "bench_mqtt": "the device link end to end through mosquitto (bench_mqtt.c)",
    "bench_mqtt_floor": "the broker floor: a do-nothing client answers (bench_mqtt --floor)",
    "bench_bus": "door open -> coil on over Modbus (bench_bus.py)",
    "bench_cloud": "the cloud link against the cloud simulator (bench_cloud.py)",
    "bench_web": "the REST API and the live feed (bench_web.py)",
    "bench_nodered": "gatehoused side by side with Node-RED (bench_nodered.py)",
}


def run(cmd):
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        return (r.stdout or r.stderr).strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def first_line(text):
    return text.splitlines()[0] if text else "?"


def when(results_dir):
    """when the logs were written (make bench-nodered re-runs one of them)"""
    t = sorted(os.path.getmtime(p) for p in glob.glob(os.path.join(results_dir, "*.log")))
    if not t:
        return ""
    f = lambda x: datetime.datetime.fromtimestamp(x, datetime.timezone.utc).strftime("%H:%M")  # noqa: E731
    return " (benchmark logs written %s-%s UTC)" % (f(t[0]), f(t[-1]))


def machine(results_dir):
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "?")
    except OSError:
        pass
    mem = "?"
    try:
        with open("/proc/meminfo") as f:
            kb = int(next(l for l in f if l.startswith("MemTotal")).split()[1])
            mem = "%.1f GiB" % (kb / 1048576.0)
    except (OSError, StopIteration, ValueError):
        pass
    try:
        debian = open("/etc/debian_version").read().strip()
    except OSError:
        debian = "?"

    def pc(name):
        return run(["pkg-config", "--modversion", name]).rstrip("-") or "?"

    nr_home = os.environ.get("NODERED_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "gatehouse-bench", "nodered")
    nr = []
    for mod in ("node-red", "node-red-contrib-modbus", "node-red-node-sqlite"):
        try:
            with open(os.path.join(nr_home, "node_modules", mod, "package.json")) as f:
                nr.append("%s %s" % (mod, json.load(f)["version"]))
        except (OSError, ValueError, KeyError):
            pass
    load = []
    for k in ("start", "end"):
        try:
            load.append(open(os.path.join(results_dir, "loadavg-" + k)).read().split()[0])
        except (OSError, IndexError):
            load.append("?")
    rows = [
        ("CPU", "%s, %d cores online" % (cpu, os.cpu_count() or 0)),
        ("RAM", mem),
        ("kernel", platform.release()),
        ("Debian", debian),
        ("gcc", run(["gcc", "-dumpfullversion"]) or "?"),
        ("SQLite", pc("sqlite3")),
        ("mosquitto", first_line(run(["mosquitto", "-h"])).replace("mosquitto version ", "")),
        ("libmodbus", pc("libmodbus")),
        ("libmosquitto / libwebsockets / libcurl / jansson",
         " / ".join(pc(x) for x in ("libmosquitto", "libwebsockets", "libcurl", "jansson"))),
        ("Node.js", run(["node", "--version"]) or "not installed"),
        ("Node-RED", ", ".join(nr) if nr else "not installed (`make bench-nodered`)"),
        ("load average (1 min) before / after", "%s / %s" % tuple(load)),
        ("date", datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC") + when(results_dir)),
    ]
    return rows, load


def parse(results_dir):
    results, compare, logs = {}, [], {}
    for path in glob.glob(os.path.join(results_dir, "*.log")):
        name = os.path.basename(path)[:-4]
        logs[name] = path
        with open(path, errors="replace") as f:
            for line in f:
                try:
                    if line.startswith("RESULT "):
                        r = json.loads(line[7:])
                        results.setdefault(name, []).append(r)
                    elif line.startswith("COMPARE "):
                        compare.append(json.loads(line[8:]))
                except ValueError:
                    pass
    return results, compare, logs


def fmt(v, unit=""):
    if v is None:
        return "—"
    if isinstance(v, float) and v != v:
        return "n/a"
    a = abs(v)
    if a >= 1000:
        s = "{:,.0f}".format(v)
    elif a >= 100:
        s = "%.0f" % v
    elif a >= 10:
        s = "%.1f" % v
    elif a >= 1:
        s = "%.2f" % v
    else:
        s = "%.3f" % v
    if unit == "x":
        return s + "x"
    return s + (" " + unit if unit else "")


def met_cell(m):
    return {True: "yes", False: "**no**", None: ""}[m]


def table(rows, header):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    out += ["| " + " | ".join(str(c).replace("|", "\\|") for c in r) + " |" for r in rows]
    return out


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    results_dir = sys.argv[1]
    out_md = sys.argv[2] if len(sys.argv) > 2 else os.path.join("bench", "RESULTS.md")
    quick = len(sys.argv) > 3 and sys.argv[3] not in ("", "0")
    results, compare, logs = parse(results_dir)
    mrows, load = machine(results_dir)

    md = ["# Benchmark results", "",
          "Written by `make bench%s` (bench/run.sh, then bench/report.py): every benchmark's headline figures, "
          "measured on the machine below. Benchmarks measure and print; nothing here is asserted. "
          "bench/README.md explains each figure and how it is measured." % (" QUICK=1" if quick else ""), ""]
    if quick:
        md += ["**Quick mode**: each benchmark's smaller site and shorter runs; the targets are for the "
               "full-size runs (`make bench`).", ""]
    try:
        busy = float(load[0])
    except ValueError:
        busy = 0.0
    if busy >= 0.5:
        md += ["**The machine was not idle** when this run started (1-minute load average %.2f on %d cores: "
               "other work on this shared machine, or a benchmark run just before): tails (p99) and CPU figures "
               "are noisier than on an idle machine." % (busy, os.cpu_count() or 0), ""]

    md += ["## Figures", ""]
    rows = []
    for name in sorted(set(results) | set(logs), key=lambda n: (ORDER.index(n) if n in ORDER else 99, n)):
        if name == "bench_nodered":
            continue  # its figures are the comparison below
        rs = results.get(name)
        if not rs:
            rows.append((name, "no figures: the benchmark did not finish (see %s)" % logs.get(name, "its log"),
                         "", "", ""))
            continue
        for r in rs:
            rows.append((name, r.get("figure", "?"), r.get("target") or "", fmt(r.get("measured"), r.get("unit", "")),
                         met_cell(r.get("met"))))
    md += table(rows, ["bench", "figure", "target", "measured", "met?"]) if rows else ["(no results found)"]
    missing = [n for n in ORDER if n not in logs and n != "bench_nodered"]
    if missing:
        md += ["", "Not run: " + ", ".join(missing) + "."]
    md += ["", "What each bench measures: " + "; ".join("**%s** %s" % (n, WHAT[n]) for n in ORDER if n in logs) + ".", ""]

    md += ["## gatehoused vs Node-RED", ""]
    nr_json = {}
    if "bench_nodered" in logs:
        with open(logs["bench_nodered"], errors="replace") as f:
            for line in f:
                if line.startswith("BENCH_JSON "):
                    try:
                        nr_json = json.loads(line[11:])
                    except ValueError:
                        pass
    have_nr = any(c.get("nodered") is not None for c in compare)
    if compare:
        md += ["The same job, the same machine, the same load: a door phone's `access.check` over MQTT (the same "
               "mosquitto, same config), credential lookup, reply over MQTT, a 100 ms relay pulse on a Modbus TCP "
               "coil of `modbus_sim` (%s door phones wired to 4 boards, %s credentials, 80%% known PINs, 20%% "
               "unknown codes; %s run(s) per system and rate, warm-up %s s, then %s s at each rate). "
               "Node-RED %s looks credentials up in SQLite through node-red-node-sqlite (one indexed join per "
               "request); gatehoused decides from its own store (it also writes a door log per decision and checks "
               "groups and schedules). Latencies are pooled over every run; CPU is the median of the runs (%% of "
               "one core, /proc/PID/stat over the measured window), RSS the highest VmHWM. Ratio = Node-RED / "
               "gatehoused. Settings and fairness: bench/README.md, \"bench_nodered\"." % (
                   nr_json.get("devices", "?"), "{:,}".format(nr_json["credentials"]) if "credentials" in nr_json
                   else "?", nr_json.get("runs", "?"), nr_json.get("warmup_s", "?"),
                   " / ".join("%s (%s req/s)" % (v, k) for k, v in (nr_json.get("seconds") or {}).items()) or "?",
                   "(Node.js %s)" % nr_json.get("node", "?")), ""]
        for rate in sorted({c["rate"] for c in compare}):
            md += ["### %s requests/s" % rate, ""]
            crow = [(c["figure"], fmt(c.get("gatehoused"), c["unit"]), fmt(c.get("nodered"), c["unit"]),
                     ("%.1fx" % c["ratio"]) if c.get("ratio") is not None else "—")
                    for c in compare if c["rate"] == rate]
            md += table(crow, ["figure", "gatehoused", "Node-RED", "Node-RED / gatehoused"]) + [""]
    if not have_nr:
        md += ["Node-RED was not measured in this run: it is not installed. `make bench-nodered` installs the "
               "pinned versions (bench/nodered/package-lock.json, `npm ci` into ~/.cache/gatehouse-bench/nodered, "
               "outside the repository) and runs the comparison.", ""]

    md += ["## Machine", ""] + table(mrows, ["", ""]) + [""]
    md += ["Everything (broker, simulators, load generators and the system measured) shares these cores. "
           "Raw output of this run: `%s/*.log` (not committed)." % results_dir, ""]
    text = "\n".join(md)
    with open(out_md, "w") as f:
        f.write(text)
    print(text)
    print("(written to %s)" % out_md)


if __name__ == "__main__":
    main()
