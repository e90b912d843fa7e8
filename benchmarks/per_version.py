#!/usr/bin/env python3
"""The quick switch benchmark on every CPython at hand, as one table.

    python3 benchmarks/per_version.py                 # all versions found
    python3 benchmarks/per_version.py --only 3.12,3.15
    python3 benchmarks/per_version.py --list          # what it would run
    python3 benchmarks/per_version.py --update-docs   # and into performance.md

For each interpreter it runs `run.py --quick` limited to switch-depth-0 and
switch-depth-1000 (both sides, ours against upstream in the same run), then
prints one table: per version, the median switch time of ours and upstream
at depth 0 and at depth 1000, and their ratio.

Interpreters, found at start:
  host     the Python running this script;
  pyenv    $PYENV_ROOT/versions/3.10 to 3.15 (other than the host's);
  pychroot the CPythons in the Debian chroot of the pychroot tool (no
           network inside): for them wheelhouse.py first fills a wheelhouse
           from this machine, and run.py installs from it with --find-links.

Everything (venvs, wheelhouse, results) lives under --cache-dir, by default
.bench/per-version/ in the repository: the pychroot sees the repository at
its own path, and its /tmp does not outlive a run. Each run's output:
<cache-dir>/results/<UTC date-time>/, one run.py output directory per
version, its log, and table.md / table.json with the table.
"""

import argparse
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import envs
from run import fmt_bytes, fmt_time

HERE = Path(__file__).resolve().parent
DEPTHS = (0, 1000)
VERSIONS = tuple("3.%d" % m for m in range(10, 16))
PYCHROOT_DEFAULT = "/work/shared/tools/pychroot"
TIMEOUT = 900       # one version, venv builds included
DOCS = envs.REPO / "docs" / "performance.md"
DOCS_BEGIN = ("<!-- per-version: begin (written by benchmarks/per_version.py "
              "--update-docs) -->")
DOCS_END = "<!-- per-version: end -->"


def say(*args):
    print(*args, flush=True)


# Finding interpreters --------------------------------------------------------

class Target:
    def __init__(self, where, version, python):
        self.where = where          # host, pyenv, pychroot
        self.version = version      # full version, e.g. 3.14.10
        self.python = python        # as seen where run.py runs
        self.minor = ".".join(version.split(".")[:2])
        self.label = "%s-%s" % (where, version)


def version_of(python):
    try:
        return envs.interpreter_info(python)["version"]
    except (OSError, subprocess.CalledProcessError, ValueError):
        return None


def find_pyenv(host_version):
    root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    found = []
    for d in sorted(glob.glob(os.path.join(root, "versions", "3.*"))):
        python = os.path.join(d, "bin", "python3")
        if not os.access(python, os.X_OK):
            continue
        version = version_of(python)
        if version and version != host_version and \
                ".".join(version.split(".")[:2]) in VERSIONS:
            found.append(Target("pyenv", version, python))
    return found


def find_pychroot(tool):
    """The chroot's CPythons, from `pychroot list` (default builds only:
    no free-threaded or debug one)."""
    if not tool:
        return []
    try:
        r = subprocess.run([tool, "list"], text=True, capture_output=True,
                           timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return []
    found = []
    for line in r.stdout.splitlines():
        m = re.match(r"\s+(3\.\d+)\s+(3\.\d+\.\d+\S*)", line)
        if m and m.group(1) in VERSIONS:
            found.append(Target("pychroot", m.group(2),
                                "/usr/bin/python%s" % m.group(1)))
    if not found:
        said = (r.stdout + r.stderr).strip().splitlines() or ["no output"]
        say("note: `%s list` shows no CPython 3.10-3.15 (%s); pychroot "
            "versions skipped" % (tool, said[-1]))
    return found


def pychroot_tool(arg):
    for cand in (arg, os.environ.get("PYCHROOT"), shutil.which("pychroot"),
                 PYCHROOT_DEFAULT):
        if cand and os.access(cand, os.X_OK):
            return cand
    return None


def select(targets, only):
    """--only: a list of X.Y, full versions or labels (pyenv-3.13.0)."""
    if not only:
        return targets
    keys = {k.strip() for k in only.split(",") if k.strip()}
    return [t for t in targets if keys & {t.minor, t.version, t.label,
                                          t.where}]


# Running one version ---------------------------------------------------------

def run_one(target, args, out, commit, wheelhouse):
    """run.py for one interpreter; returns (results.json path or None, log)."""
    dest = out / target.label
    log_path = out / ("%s.log" % target.label)
    run_args = ["--quick", "--no-memory", "--no-many", "--no-plot",
                "--python", target.python, "--cache-dir", str(args.cache_dir),
                "--out", str(dest), "--commit", commit]
    for d in DEPTHS:
        run_args += ["--bench", "switch-depth-%d" % d]
    if args.rounds:
        run_args += ["--rounds", str(args.rounds)]
    if args.rebuild:
        run_args.append("--rebuild")
    if target.where == "pychroot":
        # Inside, `python` is the chroot's python of that version; the
        # repository is mounted at its own path, and is the cwd.
        cmd = [args.pychroot, "run", target.minor, "--", "python",
               str(HERE / "run.py")] + run_args + ["--find-links",
                                                    str(wheelhouse)]
    else:
        cmd = [sys.executable, str(HERE / "run.py")] + run_args
    with open(log_path, "w") as logf:
        logf.write("$ %s\n" % " ".join(cmd))
        logf.flush()
        proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT,
                                cwd=str(envs.REPO), env=envs.clean_env(),
                                start_new_session=True)
        try:
            proc.wait(timeout=args.timeout)
        except subprocess.TimeoutExpired:
            stop(proc)
            logf.write("\nper_version.py: killed after %d s\n" % args.timeout)
        except BaseException:   # Ctrl-C: its own session did not get it
            stop(proc)
            raise
    results = dest / "results.json"
    return (results if results.exists() else None), log_path


def stop(proc):
    """End a run.py (or pychroot) and its workers: they share its session.
    pychroot ends its whole run on SIGTERM."""
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def setup_error(path):
    """Why a run left no results: pip's or run.py's last ERROR line, or
    else the log's last line."""
    lines = [line.strip() for line in path.read_text().splitlines()
             if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR:")]
    return (errors or lines or ["(empty log)"])[-1]


# The table -------------------------------------------------------------------

def short_reason(error):
    """'calibration: exit 1: RecursionError: max...' -> 'RecursionError'."""
    m = re.search(r"\b([A-Z]\w*(?:Error|Exception|Exit))\b", error or "")
    if m:
        return m.group(1)
    m = re.search(r"killed by (\w+)|timed out", error or "")
    return m.group(0) if m else "failed"


def row_for(target, results, log_path):
    """One table row, and the notes that explain its n/a cells."""
    row = {"python": target.version, "where": target.where, "cells": {},
           "notes": []}
    if results is None:
        reason = setup_error(log_path)
        row["error"] = reason
        row["notes"].append("%s (%s): no results: %s (log: %s)"
                            % (target.version, target.where, reason, log_path))
        return row
    data = json.loads(results.read_text())
    env = data["environment"]
    row["ours_version"] = env["ours"]["version"]
    row["upstream_version"] = env["upstream"]["version"]
    row["loadavg"] = env["loadavg"]
    row["workers"] = "%d worker processes per side, %d values each" % (
        env["rounds"], env["settings"]["values"])
    by_name = {rec["name"]: rec for rec in data["timed"]}
    for d in DEPTHS:
        rec = by_name.get("switch-depth-%d" % d)
        cell = {}
        for side in ("ours", "upstream"):
            srec = rec["sides"][side] if rec else None
            st = srec and srec["stats"]
            if st:
                cell[side] = {"median": st["median"], "q1": st["q1"],
                              "q3": st["q3"], "n": st["n"],
                              "c_stack_bytes":
                                  srec["meta"].get("c_stack_bytes")}
            else:
                error = (srec and srec["error"]) or "not run"
                cell[side] = {"error": error}
                row["notes"].append("%s (%s), depth %d, %s: %s" % (
                    target.version, target.where, d, side, error))
        row["cells"][d] = cell
    return row


RECURSION_NOTE = (
    "RecursionError: the interpreter's own cap on nested C calls stops the "
    "benchmark's descent before any greenlet switches, so it fails alike on "
    "both sides. CPython 3.12.0 and 3.12.1 cap C recursion at 1,500 calls "
    "whatever sys.setrecursionlimit() says, and each level of the benchmark "
    "takes two: about 750 levels is as deep as they go (raised in a later "
    "3.12 release, CPython gh-112215).")


def fmt_cell(side_cell):
    if "median" in side_cell:
        return fmt_time(side_cell["median"])
    return "n/a (%s)" % short_reason(side_cell["error"])


def fmt_ratio(cell):
    o, u = cell.get("ours", {}), cell.get("upstream", {})
    if "median" in o and "median" in u:
        return "%.3g" % (o["median"] / u["median"])   # 0.000454, not 0.000
    return "n/a"


def fmt_stack(cell):
    sizes = sorted({c["c_stack_bytes"] for c in cell.values()
                    if c.get("c_stack_bytes") is not None})
    return " / ".join(fmt_bytes(n) for n in sizes) or "-"


def render(rows, header):
    lines = [header, "",
             "| Python | where | ours, depth 0 | upstream, depth 0 | ratio "
             "| ours, depth 1000 | upstream, depth 1000 | ratio "
             "| C stack at depth 1000 |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        if "error" in row:
            lines.append("| %s | %s | %s |" % (
                row["python"], row["where"],
                " | ".join(["n/a (no results)"] * 6 + ["-"])))
            continue
        cells = []
        for d in DEPTHS:
            c = row["cells"][d]
            cells += [fmt_cell(c["ours"]), fmt_cell(c["upstream"]),
                      fmt_ratio(c)]
        cells.append(fmt_stack(row["cells"][DEPTHS[-1]]))
        lines.append("| %s | %s | %s |" % (row["python"], row["where"],
                                           " | ".join(cells)))
    workers = sorted({r["workers"] for r in rows if "workers" in r})
    lines += ["", "Time per switch, median of each side's values in "
              "run.py's quick mode (%s); ratio = ours / upstream, below 1 "
              "means ours is faster. C stack at depth 1000: the bytes "
              "measured between a greenlet's start and its switch point "
              "(one number when both sides agree), which upstream copies on "
              "every switch. Quick-mode numbers are few: judge them "
              "against an A/A run (docs/benchmarks.md)."
              % ("; ".join(workers) or "no runs")]
    notes = [n for row in rows for n in row["notes"]]
    if notes:
        lines += ["", "n/a:", ""] + ["- " + n for n in notes]
    if any("RecursionError" in n for n in notes):
        lines += ["", RECURSION_NOTE]
    return "\n".join(lines)


# Main ------------------------------------------------------------------------

def parse_args():
    p = argparse.ArgumentParser(
        description="Quick switch benchmark (depth 0 and 1000, ours against "
                    "upstream) on every CPython 3.10-3.15 at hand, as one "
                    "table.")
    p.add_argument("--only", metavar="LIST",
                   help="comma-separated X.Y, full versions, labels "
                        "(pychroot-3.15.2) or host/pyenv/pychroot")
    p.add_argument("--list", action="store_true",
                   help="print the interpreters found and exit")
    p.add_argument("--cache-dir", type=Path,
                   default=envs.REPO / ".bench" / "per-version",
                   help="venvs, wheelhouse, results (default: "
                        ".bench/per-version/ in the repository; must be in "
                        "the repository for the pychroot to see it)")
    p.add_argument("--pychroot", help="the pychroot tool (default: $PYCHROOT, "
                                      "PATH, %s)" % PYCHROOT_DEFAULT)
    p.add_argument("--no-pychroot", action="store_true",
                   help="host and pyenv interpreters only")
    p.add_argument("--no-fill", action="store_true",
                   help="use the wheelhouse as it is (no network here either)")
    p.add_argument("--rounds", type=int,
                   help="worker processes per side (quick mode: 2)")
    p.add_argument("--rebuild", action="store_true",
                   help="reinstall both greenlets in every venv")
    p.add_argument("--update-docs", action="store_true",
                   help="write the table into docs/performance.md's "
                        "per-version section (every version found, so no "
                        "--only or --no-pychroot)")
    p.add_argument("--timeout", type=int, default=TIMEOUT,
                   help="seconds per version, venvs included (default %d)"
                        % TIMEOUT)
    return p.parse_args()


def update_docs(text):
    doc = DOCS.read_text()
    try:
        begin = doc.index(DOCS_BEGIN) + len(DOCS_BEGIN)
        end = doc.index(DOCS_END)
    except ValueError:
        say("%s has no per-version markers; not updated" % DOCS)
        return
    DOCS.write_text(doc[:begin] + "\n" + text.rstrip() + "\n" + doc[end:])
    say("updated %s" % DOCS)


def on_term(signum, frame):
    # As for Ctrl-C: run_one() stops the current run.py, which sits in a
    # session of its own, before this process goes.
    raise KeyboardInterrupt("signal %d" % signum)


def main():
    args = parse_args()
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)
    if args.update_docs and (args.only or args.no_pychroot):
        # The docs show every version at hand, nothing less.
        say("--update-docs takes every version found: no --only or "
            "--no-pychroot")
        return 2
    args.cache_dir = args.cache_dir.resolve()
    t_start = time.monotonic()
    with open("/proc/loadavg") as f:
        loadavg = " ".join(f.read().split()[:3])
    host_version = version_of(sys.executable)
    targets = [Target("host", host_version, sys.executable)]
    targets += find_pyenv(host_version)
    args.pychroot = None if args.no_pychroot else pychroot_tool(args.pychroot)
    targets += find_pychroot(args.pychroot)
    targets = select(targets, args.only)
    targets.sort(key=lambda t: (tuple(int(x) for x in
                                      re.findall(r"\d+", t.version)[:3]),
                                t.where))
    for t in targets:
        say("%-20s %s" % (t.label, t.python))
    if args.list or not targets:
        return 0 if targets else 2

    chroot_versions = sorted({t.minor for t in targets
                              if t.where == "pychroot"})
    wheelhouse = args.cache_dir / "wheelhouse"
    if chroot_versions:
        try:
            args.cache_dir.relative_to(envs.REPO)
        except ValueError:
            say("ERROR: --cache-dir must be inside %s: the pychroot sees "
                "nothing else" % envs.REPO)
            return 2
        if not args.no_fill:
            import wheelhouse as wh
            try:
                wh.fill(wheelhouse, targets=chroot_versions, log=say)
            except SystemExit as exc:
                # Offline here too: a wheelhouse filled before still serves.
                if not wheelhouse.is_dir() or not os.listdir(wheelhouse):
                    raise
                say("warning: %s\nusing the wheelhouse as it is" % exc)

    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%SZ")
    out = args.cache_dir / "results" / stamp
    out.mkdir(parents=True, exist_ok=True)
    commit = envs.git_commit() or "no commit"
    rows = []
    for t in targets:
        t0 = time.monotonic()
        say("== %s (%s)" % (t.label, t.python))
        results, log_path = run_one(t, args, out, commit, wheelhouse)
        if results is None and t.where == "pychroot" and \
                "can't cd to %s" % envs.REPO in log_path.read_text():
            # Another pychroot run from this directory, ending, removed the
            # mount point under ours: once more.
            say("   the repository vanished from the chroot at start "
                "(a concurrent pychroot run ended?): once more")
            log_path.rename(log_path.with_suffix(".first.log"))
            results, log_path = run_one(t, args, out, commit, wheelhouse)
        row = row_for(t, results, log_path)
        row["seconds"] = round(time.monotonic() - t0)
        rows.append(row)
        if "error" in row:
            say("   no results (%d s): %s" % (row["seconds"], row["error"]))
        else:
            say("   %s (%d s)" % ("; ".join(
                "depth %d: ours %s, upstream %s, ratio %s" % (
                    d, fmt_cell(row["cells"][d]["ours"]),
                    fmt_cell(row["cells"][d]["upstream"]),
                    fmt_ratio(row["cells"][d])) for d in DEPTHS),
                row["seconds"]))

    def versions(key):
        return ", ".join(sorted({r[key] for r in rows if key in r})) or "?"
    header = ("Date: %s; commit: %s; machine: %s; ours: %s; upstream: "
              "greenlet %s; mode: quick, switch-depth-0 and -1000 only; "
              "load average at start: %s; total %.0f s." % (
                  datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                  commit, envs.machine(), versions("ours_version"),
                  versions("upstream_version"), loadavg,
                  time.monotonic() - t_start))
    text = render(rows, header)
    (out / "table.md").write_text(text + "\n")
    if args.update_docs:
        update_docs(text)
    (out / "table.json").write_text(json.dumps(
        {"header": header, "rows": rows}, indent=1) + "\n")
    say("")
    say(text)
    say("")
    say("wrote %s (table.md, table.json, one directory and log per version)"
        % out)
    return 0 if all("error" not in r for r in rows) else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt as exc:
        say("\nper_version.py: interrupted (%s); the run in progress was "
            "stopped" % (exc or "Ctrl-C"))
        sys.exit(130)
