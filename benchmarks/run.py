#!/usr/bin/env python3
"""Benchmark this greenlet against upstream's, side by side, in one run.

    python3 benchmarks/run.py            # full run, about 10 minutes
    python3 benchmarks/run.py --quick    # smoke run, under a minute
    python3 benchmarks/run.py --help
    python3 benchmarks/per_version.py    # depth 0/1000 on CPython 3.10-3.15

Makes two venvs from one interpreter (envs.py): "ours" with this repository
installed, "upstream" with the pinned upstream release. Every timed
benchmark (bench_switch.py, bench_lifecycle.py) then runs as pyperf worker
processes that alternate between the two, ABBA, so that drift on a noisy
machine hits both alike. Memory (bench_memory.py) is measured once per
configuration, each in a fresh process, watched from here so that the
million-greenlet run cannot take the machine down.

Prints a table and writes, into the output directory: results.json (all
values and the environment), pyperf-ours.json and pyperf-upstream.json
(pyperf's format: `python -m pyperf compare_to` reads them), table.md, and
switch-depth.png (switch time against C stack depth). docs/benchmarks.md
says how to read them. Standard library only: pyperf and matplotlib live in
the venvs.
"""

import argparse
import fnmatch
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import envs

HERE = Path(__file__).resolve().parent
TIMED_SCRIPTS = ("bench_switch.py", "bench_lifecycle.py")
SIDES = ("ours", "upstream")
DOCS = envs.REPO / "docs" / "benchmarks.md"
DOCS_BEGIN = "<!-- latest-results: begin (written by benchmarks/run.py --update-docs) -->"
DOCS_END = "<!-- latest-results: end -->"

# How much of everything a run does. values/warmups are per worker process;
# rounds is how many worker processes each side gets per benchmark.
FULL = {
    "quick": False, "rounds": 10, "values": 3, "warmups": 1, "min_time": 0.1,
    "depths": None,                               # all of bench_switch.DEPTHS
    "memory": [(10000, 0), (10000, 20), (100000, 0), (100000, 20)],
    "many": 1000000, "memory_timeout": 300, "many_timeout": 900,
}
QUICK = {
    "quick": True, "rounds": 2, "values": 2, "warmups": 1, "min_time": 0.01,
    "depths": {0, 50, 1000},
    "memory": [(10000, 0), (10000, 20)],
    "many": 100000, "memory_timeout": 60, "many_timeout": 120,
}
WORKER_TIMEOUT = 600


def say(*args):
    print(*args, flush=True)


# Running workers ----------------------------------------------------------------

class WorkerFailed(Exception):
    pass


def run_worker(python, script, name, opts, output, append=None):
    """One pyperf worker process; returns its JSON (a one-run suite)."""
    output.unlink(missing_ok=True)      # pyperf refuses to overwrite
    cmd = [str(python), "-E", "-s", str(HERE / script), "--bench", name,
           "--worker", "--output", str(output)] + opts
    if append:
        cmd += ["--append", str(append)]
    try:
        r = subprocess.run(cmd, text=True, capture_output=True,
                           env=envs.clean_env(), cwd=str(output.parent),
                           timeout=WORKER_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise WorkerFailed("timed out after %d s" % WORKER_TIMEOUT) from None
    if r.returncode:
        why = ("killed by %s" % signal.Signals(-r.returncode).name
               if r.returncode < 0 else "exit %d" % r.returncode)
        raise WorkerFailed("%s: %s" % (why, last_line(r.stderr or r.stdout)))
    with open(output) as f:
        data = json.load(f)
    os.unlink(output)
    return data


def last_line(text):
    """The last line of a traceback: the exception, which says the most."""
    lines = [line.strip() for line in (text or "").splitlines()
             if line.strip()]
    return lines[-1] if lines else "(no output)"


def flatten(suite):
    """(metadata, values) of the single run in a worker's JSON."""
    (bench,) = suite["benchmarks"]
    run = bench["runs"][-1]
    meta = dict(suite.get("metadata", {}))
    meta.update(bench.get("metadata", {}))
    meta.update(run.get("metadata", {}))
    return meta, run.get("values", [])


def list_benchmarks(python, settings, patterns):
    benches = []
    for script in TIMED_SCRIPTS:
        r = subprocess.run([str(python), "-E", "-s", str(HERE / script),
                            "--list"], text=True, capture_output=True,
                           env=envs.clean_env(), check=True)
        for line in r.stdout.splitlines():
            b = json.loads(line)
            b["script"] = script
            if settings["depths"] is not None and b["depth"] is not None \
                    and b["depth"] not in settings["depths"]:
                continue
            if patterns and not any(fnmatch.fnmatch(b["name"], p)
                                    for p in patterns):
                continue
            benches.append(b)
    return benches


def time_benchmark(bench, pythons, settings, out, tmp):
    """Calibrate each side, then alternate their workers; return the record."""
    name = bench["name"]
    rec = {"name": name, "per": bench["per"], "about": bench["about"],
           "depth": bench["depth"], "sides": {}}
    loops = {}
    for side in SIDES:
        rec["sides"][side] = {"values": [], "error": None, "meta": {}}
        if bench["loops"]:
            loops[side] = bench["loops"]
            continue
        try:
            data = run_worker(pythons[side], bench["script"], name,
                              ["--calibrate-loops", "--warmups", "0",
                               "--values", "1",
                               "--min-time", str(settings["min_time"])],
                              tmp / ("cal-%s.json" % side))
            loops[side] = flatten(data)[0]["calibrate_loops"]
        except WorkerFailed as exc:
            rec["sides"][side]["error"] = "calibration: %s" % exc

    if bench["loops"]:
        # One iteration is long (chain-100000: about a second): fewer values.
        warmups, values = (0, 1) if settings["quick"] else (1, 2)
    else:
        warmups, values = settings["warmups"], settings["values"]
    for rnd in range(settings["rounds"]):
        order = SIDES if rnd % 2 == 0 else SIDES[::-1]
        for side in order:
            srec = rec["sides"][side]
            if srec["error"]:
                continue
            opts = ["--loops", str(loops[side]), "--warmups", str(warmups),
                    "--values", str(values)]
            try:
                data = run_worker(pythons[side], bench["script"], name, opts,
                                  tmp / ("w-%s.json" % side),
                                  append=out / ("pyperf-%s.json" % side))
            except WorkerFailed as exc:
                srec["error"] = str(exc)
                continue
            meta, vals = flatten(data)
            srec["values"].extend(vals)
            if not srec["meta"]:
                srec["meta"] = {k: meta[k] for k in
                                ("loops", "inner_loops", "c_levels",
                                 "c_stack_bytes", "greenlet_version")
                                if k in meta}
    for srec in rec["sides"].values():
        srec["stats"] = summarize(srec["values"])
    return rec


def summarize(values):
    if not values:
        return None
    vs = sorted(values)
    if len(vs) >= 2:
        q1, _, q3 = statistics.quantiles(vs, n=4, method="inclusive")
    else:
        q1 = q3 = vs[0]
    return {"n": len(vs), "median": statistics.median(vs), "q1": q1, "q3": q3,
            "min": vs[0], "max": vs[-1],
            "stdev": statistics.stdev(vs) if len(vs) > 1 else 0.0}


# Memory ---------------------------------------------------------------------------

def watch(cmd, timeout, rss_limit, mem_floor):
    """Run bench_memory.py; kill it if it outgrows rss_limit, leaves less than
    mem_floor available, or outlives timeout. Returns its JSON or an error."""
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=envs.clean_env(), cwd=str(HERE))
    killed = None
    peak = 0
    while proc.poll() is None:
        time.sleep(0.2)
        try:
            rss = rss_of(proc.pid)
        except OSError:
            continue
        peak = max(peak, rss)
        if rss > rss_limit:
            killed = "killed: RSS %s over the limit" % fmt_bytes(rss)
        elif envs.meminfo("MemAvailable") < mem_floor:
            killed = "killed: machine down to %s available" % \
                fmt_bytes(envs.meminfo("MemAvailable"))
        elif time.monotonic() - t0 > timeout:
            killed = "killed: still running after %d s" % timeout
        if killed:
            proc.kill()
            break
    out, err = proc.communicate()
    wall = time.monotonic() - t0
    if killed:
        return {"error": killed, "wall": wall, "peak_rss": peak}
    if proc.returncode:
        why = ("crashed: %s" % signal.Signals(-proc.returncode).name
               if proc.returncode < 0 else "exit %d" % proc.returncode)
        return {"error": "%s: %s" % (why, last_line(err)), "wall": wall,
                "peak_rss": peak}
    res = json.loads(out.strip().splitlines()[-1])
    res["wall"] = wall
    res["peak_rss"] = peak
    return res


def rss_of(pid):
    with open("/proc/%d/statm" % pid) as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def measure_memory(pythons, configs, timeout, rss_limit, mem_floor, kind):
    rows = []
    for count, depth in configs:
        for side in SIDES:
            cmd = [str(pythons[side]), "-E", "-s", str(HERE / "bench_memory.py"),
                   "--count", str(count), "--depth", str(depth),
                   "--rss-limit", str(rss_limit)]
            res = watch(cmd, timeout, int(rss_limit * 1.1),
                        mem_floor)
            res.update({"side": side, "count": count, "depth": depth,
                        "kind": kind})
            rows.append(res)
            say("  %-8s %7d greenlets, %2d C levels: %s" % (
                side, count, depth, memory_line(res)))
    return rows


def memory_line(r):
    if "created" not in r:
        return r["error"]
    s = "%s per greenlet, +%d mappings, %.1f s" % (
        fmt_bytes(per_greenlet(r, "rss")), r["maps_suspended"] - r["maps_before"],
        r["seconds_create"])
    if r.get("error"):
        s += " (%s after %d)" % (r["error"], r["created"])
    return s


def per_greenlet(r, what):
    if not r.get("created"):
        return None
    return (r[what + "_suspended"] - r[what + "_before"]) / r["created"]


# Formatting -----------------------------------------------------------------------

def fmt_time(seconds):
    if seconds is None:
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9)):
        if seconds >= scale:
            return "%.3g %s" % (seconds / scale, unit)
    return "%.3g ns" % (seconds / 1e-9)


def fmt_bytes(n):
    if n is None:
        return "-"
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(n) >= scale:
            return "%.3g %s" % (n / scale, unit)
    return "%d B" % n


def timed_table(records):
    lines = ["| benchmark | per | C stack under switch | ours | ± | upstream "
             "| ± | ours / upstream | values |",
             "|---|---|---|---|---|---|---|---|---|"]
    for rec in records:
        cells = []
        for side in SIDES:
            s = rec["sides"][side]
            st = s["stats"]
            if st:
                cells += [fmt_time(st["median"]),
                          "%.1f%%" % (100 * (st["q3"] - st["q1"]) / st["median"])]
            else:
                cells += ["failed", "-"]
        stack = "-"
        sizes = {s["meta"].get("c_stack_bytes") for s in rec["sides"].values()
                 if s["meta"].get("c_stack_bytes") is not None}
        if sizes:
            stack = " / ".join(fmt_bytes(n) for n in sorted(sizes))
        o, u = (rec["sides"][s]["stats"] for s in SIDES)
        ratio = "%.3f" % (o["median"] / u["median"]) if o and u else "-"
        counts = "/".join(str(st["n"]) if st else "0" for st in (o, u))
        lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            rec["name"], rec["per"], stack, cells[0], cells[1], cells[2],
            cells[3], ratio, counts))
    notes = ["%s %s: %s" % (rec["name"], side, rec["sides"][side]["error"])
             for rec in records for side in SIDES if rec["sides"][side]["error"]]
    return lines, notes


def memory_table(rows):
    lines = ["| suspended greenlets | C levels (bytes) | side | RSS per greenlet "
             "| page tables per greenlet | mappings added | create + suspend "
             "| finish | RSS total | RSS kept after finish | note |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "created" not in r:
            lines.append("| %d | %d | %s | - | - | - | - | - | peak %s | - | %s |"
                         % (r["count"], r["depth"], r["side"],
                            fmt_bytes(r.get("peak_rss")), r["error"]))
            continue
        n = r["created"] or 1
        depth = "%d (%s)" % (r["depth"], fmt_bytes(r["c_stack_bytes"])) \
            if r.get("c_stack_bytes") is not None else str(r["depth"])
        note = r["error"] or ""
        if r["created"] != r["count"]:
            note = ("only %d created; " % r["created"]) + note
        lines.append("| %d | %s | %s | %s | %s | %d | %s | %s | %s | %s | %s |" % (
            r["count"], depth, r["side"], fmt_bytes(per_greenlet(r, "rss")),
            fmt_bytes(per_greenlet(r, "pte")),
            r["maps_suspended"] - r["maps_before"],
            fmt_time(r["seconds_create"] / n) + "/greenlet",
            fmt_time(r["seconds_finish"] / n) + "/greenlet",
            fmt_bytes(r["rss_suspended"]),
            fmt_bytes(r["rss_after"] - r["rss_before"]), note))
    return lines


def depth_check(records):
    """A line proving the depths: C stack per level, and that it grows."""
    lines = []
    for side in SIDES:
        pts = sorted((r["depth"], r["sides"][side]["meta"]["c_stack_bytes"])
                     for r in records if r["depth"] is not None
                     and "c_stack_bytes" in r["sides"][side]["meta"])
        if len(pts) < 2:
            continue
        (d0, b0), (d1, b1) = pts[0], pts[-1]
        grows = all(b < b2 for (_, b), (_, b2) in zip(pts, pts[1:]))
        lines.append("C stack under the switch point, %s: %s at %d levels to "
                     "%s at %d, %.0f bytes per level%s." % (
                         side, fmt_bytes(b0), d0, fmt_bytes(b1), d1,
                         (b1 - b0) / (d1 - d0),
                         "" if grows else " (WARNING: does not grow with depth)"))
    return lines + [""] if lines else []


def header(env):
    return ["Date: %s; commit: %s; machine: %s; Python: %s (%s); ours: %s "
            "(%s); upstream: greenlet %s; mode: %s; load average at start: %s."
            % (env["date"], env["commit"], env["machine"], env["python"],
               env["python_implementation"], env["ours"]["version"],
               env["ours"]["spec"], env["upstream"]["version"], env["mode"],
               env["loadavg"])]


def render(env, records, memory, many):
    out = header(env) + [""]
    if records:
        lines, notes = timed_table(records)
        out += ["### Time", ""] + lines + [""]
        out += ["Medians over %d worker processes per side, alternating; ± is "
                "the interquartile range as a share of the median; values: "
                "how many, ours/upstream." % env["rounds"], ""]
        out += depth_check(records)
        if notes:
            out += ["Failures:", ""] + ["- " + n for n in notes] + [""]
    if memory:
        out += ["### Memory", ""] + memory_table(memory) + [""]
    if many:
        out += ["### %s suspended greenlets in one process" %
                format(many[0]["count"], ","), ""] + memory_table(many) + [""]
    return "\n".join(out)


def update_docs(text):
    doc = DOCS.read_text()
    try:
        begin = doc.index(DOCS_BEGIN) + len(DOCS_BEGIN)
        end = doc.index(DOCS_END)
    except ValueError:
        say("docs/benchmarks.md has no latest-results markers; not updated")
        return
    DOCS.write_text(doc[:begin] + "\n" + text.rstrip() + "\n" + doc[end:])
    say("updated %s" % DOCS)


# Main -------------------------------------------------------------------------------

def parse_args():
    p = argparse.ArgumentParser(
        description="Benchmark this greenlet against upstream's (see "
                    "docs/benchmarks.md).")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: few values, fewer depths, small memory "
                        "runs (under a minute once the venvs exist)")
    p.add_argument("--python", default=sys.executable,
                   help="interpreter for both venvs (default: this one, %s)"
                        % sys.executable)
    p.add_argument("--ours-spec", default=str(envs.REPO),
                   help="what to pip install as 'ours' (default: this "
                        "repository); e.g. greenlet==3.5.6 to check the "
                        "pipeline with upstream on both sides")
    p.add_argument("--upstream-spec", default=envs.UPSTREAM_SPEC,
                   help="what to pip install as 'upstream' (default: %s)"
                        % envs.UPSTREAM_SPEC)
    p.add_argument("--cache-dir", default=str(envs.REPO / ".bench"),
                   help="venvs, logs and results (default: .bench/ in the repo)")
    p.add_argument("--out", help="output directory (default: "
                                 "<cache-dir>/results/<UTC date-time>)")
    p.add_argument("--bench", action="append", metavar="PATTERN",
                   help="only timed benchmarks matching this glob "
                        "(repeatable), e.g. 'switch-*'")
    p.add_argument("--rounds", type=int,
                   help="worker processes per side per benchmark")
    p.add_argument("--no-timed", action="store_true",
                   help="skip the timed benchmarks")
    p.add_argument("--no-memory", action="store_true",
                   help="skip the per-greenlet memory section")
    p.add_argument("--no-many", action="store_true",
                   help="skip the million-greenlet run")
    p.add_argument("--many", type=int,
                   help="greenlets in the 'many' run (default 1,000,000; "
                        "100,000 with --quick)")
    p.add_argument("--rss-limit", type=float, default=0.5,
                   help="memory runs stop at this share of RAM (default 0.5)")
    p.add_argument("--find-links", metavar="DIR",
                   help="offline: install everything (pyperf, upstream, our "
                        "build requirements) from this wheelhouse with pip "
                        "--no-index; benchmarks/wheelhouse.py fills it")
    p.add_argument("--no-plot", action="store_true",
                   help="no switch-depth.png, and no matplotlib in the venvs "
                        "(it may have no wheel for a new Python)")
    p.add_argument("--commit",
                   help="record this as the commit (where git is absent, "
                        "e.g. inside the pychroot)")
    p.add_argument("--rebuild", action="store_true",
                   help="reinstall both venvs' greenlet even if unchanged")
    p.add_argument("--update-docs", action="store_true",
                   help="write the tables into docs/benchmarks.md's Latest "
                        "results section")
    return p.parse_args()


def main():
    args = parse_args()
    if args.update_docs and (args.quick or args.bench or args.no_timed or
                             args.ours_spec != str(envs.REPO)):
        # The docs show a full run of this repository, nothing less.
        say("--update-docs needs a full run of this repository: no --quick, "
            "--bench, --no-timed or --ours-spec")
        return 2
    settings = dict(QUICK if args.quick else FULL)
    if args.rounds:
        settings["rounds"] = args.rounds
    if args.many:
        settings["many"] = args.many
    t_start = time.monotonic()

    cache = Path(args.cache_dir).resolve()
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%SZ")
    out = Path(args.out).resolve() if args.out else cache / "results" / stamp
    out.mkdir(parents=True, exist_ok=True)
    for side in SIDES:     # workers append to these
        (out / ("pyperf-%s.json" % side)).unlink(missing_ok=True)

    say("== venvs (%s)" % args.python)
    pythons, found = {}, {}
    try:
        for side, spec in (("upstream", args.upstream_spec),
                           ("ours", args.ours_spec)):
            pythons[side] = envs.ensure_venv(
                cache, side, args.python, spec, rebuild=args.rebuild, log=say,
                helpers=envs.HELPERS_NO_PLOT if args.no_plot else envs.HELPERS,
                find_links=args.find_links)
            found[side] = envs.greenlet_in(pythons[side])
            found[side]["spec"] = spec
            say("  %-8s greenlet %s from %s" % (side, found[side]["version"],
                                               found[side]["file"]))
    except envs.SetupError as exc:
        say("ERROR: %s" % exc)
        if side == "ours":
            say("(our package does not build or install; to check the rest "
                "of the pipeline meanwhile: --ours-spec %s)" % envs.UPSTREAM_SPEC)
        return 2
    if found["ours"]["file"] == found["upstream"]["file"]:
        say("ERROR: both venvs import the same greenlet file")
        return 2

    info = envs.interpreter_info(args.python)
    with open("/proc/loadavg") as f:
        loadavg = " ".join(f.read().split()[:3])
    env = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
           "commit": args.commit or envs.git_commit(),
           "machine": envs.machine(),
           "python": info["version"],
           "python_implementation": info["implementation"],
           "ours": found["ours"], "upstream": found["upstream"],
           "mode": "quick" if args.quick else "full", "loadavg": loadavg,
           "rounds": settings["rounds"], "settings": settings}

    records, memory, many = [], [], []
    results_path = out / "results.json"

    def save():
        with open(results_path, "w") as f:
            json.dump({"environment": env, "timed": records, "memory": memory,
                       "many": many}, f, indent=1, default=sorted)

    if not args.no_timed:
        benches = list_benchmarks(pythons["upstream"], settings, args.bench)
        say("== timed: %d benchmarks × %d rounds × 2 sides"
            % (len(benches), settings["rounds"]))
        with tempfile.TemporaryDirectory(prefix="bench-") as tmpdir:
            tmp = Path(tmpdir)
            for bench in benches:
                t0 = time.monotonic()
                rec = time_benchmark(bench, pythons, settings, out, tmp)
                records.append(rec)
                save()
                o, u = (rec["sides"][s]["stats"] for s in SIDES)
                errs = ["%s failed: %s" % (s, rec["sides"][s]["error"])
                        for s in SIDES if rec["sides"][s]["error"]]
                say("  %-18s ours %-9s upstream %-9s %s(%.0f s)%s" % (
                    rec["name"], fmt_time(o and o["median"]),
                    fmt_time(u and u["median"]),
                    "ratio %.3f " % (o["median"] / u["median"]) if o and u else "",
                    time.monotonic() - t0,
                    "".join("\n    " + e for e in errs)))

    ram = envs.meminfo("MemTotal")
    rss_limit = int(ram * args.rss_limit)
    mem_floor = min(2 * 2**30, ram // 8)
    if not args.no_memory:
        say("== memory (one fresh process per configuration)")
        memory = measure_memory(pythons, settings["memory"],
                                settings["memory_timeout"], rss_limit,
                                mem_floor, "memory")
        save()
    if not args.no_many:
        say("== %s suspended greenlets (stops at RSS %s, %d s)"
            % (format(settings["many"], ","), fmt_bytes(rss_limit),
               settings["many_timeout"]))
        many = measure_memory(pythons, [(settings["many"], 0)],
                              settings["many_timeout"], rss_limit, mem_floor,
                              "many")
        save()

    text = render(env, records, memory, many)
    (out / "table.md").write_text(text + "\n")
    say("")
    say(text)

    plot = out / "switch-depth.png"
    if not args.no_plot and any(r["depth"] is not None for r in records):
        r = subprocess.run([str(pythons["upstream"]), "-E", "-s",
                            str(HERE / "plot.py"), str(results_path), str(plot)],
                           text=True, capture_output=True, env=envs.clean_env())
        if r.returncode:
            say("plot failed: %s" % r.stderr.strip().splitlines()[-1:])
            plot = None
    else:
        plot = None

    latest = cache / "results" / "latest"
    if out.parent == latest.parent:
        if latest.is_symlink() or latest.exists():
            latest.unlink()
        latest.symlink_to(out.name)
    if args.update_docs:
        update_docs(text)

    say("")
    say("wrote %s" % out)
    for path in (results_path, out / "pyperf-ours.json",
                 out / "pyperf-upstream.json", out / "table.md", plot):
        if path and path.exists():
            say("  %s" % path.name)
    if records:
        say("compare with pyperf: python -m pyperf compare_to %s %s"
            % (out / "pyperf-upstream.json", out / "pyperf-ours.json"))
    say("total %.0f s" % (time.monotonic() - t_start))
    failed = any(s["error"] for r in records for s in r["sides"].values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
