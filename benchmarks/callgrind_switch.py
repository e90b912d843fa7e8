#!/usr/bin/env python3
"""Instructions per switch, counted by callgrind, for both implementations.

    python3 benchmarks/callgrind_switch.py [--depths 0,50,200] [--switches 20000]

Timings on a shared 2-core machine wobble; instruction counts do not (the
same binary, input and environment give the same count, whatever else the
machine is doing), and this machine has no hardware counters for perf.

For each side and depth it runs bench_switch.ping_pong under
`valgrind --tool=callgrind` twice, once with BASE round trips and once with
BASE + N, and reports (Ir[BASE+N] - Ir[BASE]) / (2 N): the instructions one
switch costs, start-up and teardown cancelled out. That includes one turn
of the Python loop around each switch, the same on both sides. Uses the
same venvs as run.py (envs.py).

Repeatability: with PYTHONHASHSEED fixed, bytecode caching off and address
randomisation off, a whole run still varies by some 10^4 instructions
(interpreter start-up does). N is therefore large, and shrinks with depth
only as far as each switch gets dearer: the figure is good to about
10^4 / (2 N) instructions per switch.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import envs

HERE = Path(__file__).resolve().parent
BASE = 100
# Address-space randomisation moves objects, and with them id()-ordered
# dict and set walks: a few ten thousand instructions between identical runs.
SETARCH = ["setarch", os.uname().machine, "-R"] if shutil.which("setarch") else []
WORKLOAD = ("import sys; sys.path.insert(0, %r); import bench_switch; "
            "bench_switch.ping_pong(int(sys.argv[1]), int(sys.argv[2]))")


def instructions(valgrind, python, loops, depth, tmp):
    out = Path(tmp) / ("cg-%d-%d.out" % (loops, depth))
    cmd = SETARCH + [valgrind, "--tool=callgrind", "--callgrind-out-file=%s" % out,
           "--dump-instr=no", "--compress-strings=no",
           str(python), "-E", "-s", "-B", "-c", WORKLOAD % str(HERE),
           str(loops), str(depth)]
    env = envs.clean_env()
    env["PYTHONHASHSEED"] = "0"
    r = subprocess.run(cmd, text=True, capture_output=True, env=env)
    if r.returncode:
        raise RuntimeError("callgrind run failed (%d):\n%s"
                           % (r.returncode, r.stderr[-2000:]))
    text = out.read_text()
    m = re.search(r"^(?:summary|totals):\s+(\d+)", text, re.M)
    if not m:
        raise RuntimeError("no totals in %s" % out)
    out.unlink()
    return int(m.group(1))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--python", default=sys.executable)
    p.add_argument("--ours-spec", default=str(envs.REPO))
    p.add_argument("--upstream-spec", default=envs.UPSTREAM_SPEC)
    p.add_argument("--cache-dir", default=str(envs.REPO / ".bench"))
    p.add_argument("--depths", default="0,50,200",
                   help="comma-separated C recursion depths (default 0,50,200)")
    p.add_argument("--switches", type=int, default=20000,
                   help="round trips added between the two runs at depth 0 "
                        "(default 20000); depth D uses switches / (1 + D/10)")
    p.add_argument("--valgrind", default=shutil.which("valgrind") or "valgrind")
    args = p.parse_args()

    if not shutil.which(args.valgrind):
        print("valgrind not found (apt-get install valgrind)")
        return 2
    depths = [int(d) for d in args.depths.split(",")]
    pythons = {}
    try:
        for side, spec in (("upstream", args.upstream_spec),
                           ("ours", args.ours_spec)):
            pythons[side] = envs.ensure_venv(args.cache_dir, side, args.python,
                                             spec, log=print)
    except envs.SetupError as exc:
        print("ERROR: %s" % exc)
        return 2

    for side in ("ours", "upstream"):
        found = envs.greenlet_in(pythons[side])
        print("%-8s greenlet %s from %s" % (side, found["version"], found["file"]))
    print("instructions per switch (callgrind Ir), Python %s, commit %s"
          % (envs.interpreter_info(args.python)["version"], envs.git_commit()))
    print()
    print("| C levels | round trips | ours | upstream | ours / upstream |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="callgrind-") as tmp:
        for depth in depths:
            n = max(200, args.switches * 10 // (10 + depth))
            per = {}
            for side in ("ours", "upstream"):
                lo = instructions(args.valgrind, pythons[side], BASE, depth, tmp)
                hi = instructions(args.valgrind, pythons[side], BASE + n,
                                  depth, tmp)
                per[side] = (hi - lo) / (2 * n)
            print("| %d | %d | %.0f | %.0f | %.3f |" % (
                depth, n, per["ours"], per["upstream"],
                per["ours"] / per["upstream"]), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
