"""The thin layer between run.py and pyperf, shared by the bench_*.py scripts.

A bench script lists its benchmarks as `Bench` records and calls `main()`.
run.py drives it in two ways:

    python bench_x.py --list
        prints the benchmarks as JSON, one object per line, and exits;
    python bench_x.py --bench NAME <pyperf worker options>
        is one pyperf worker process (run.py passes --worker, --loops, ...)
        timing that one benchmark.

run.py spawns the workers itself, instead of letting pyperf's own manager
do it, so that the two implementations' workers can alternate.
"""

import json
import sys


class Bench:
    """One timed benchmark.

    `func(loops, *args)` returns the seconds that `loops` iterations took;
    an iteration does `inner_loops` units of `per` (a "switch", a "call").
    `metadata()` is called in the worker and recorded in pyperf's JSON.
    `loops` fixes the loop count for a benchmark whose one iteration is
    long enough alone (run.py then skips calibrating it).
    """

    def __init__(self, name, func, args=(), inner_loops=1, per="call",
                 about="", metadata=None, depth=None, loops=None):
        self.name = name
        self.func = func
        self.args = args
        self.inner_loops = inner_loops
        self.per = per
        self.about = about
        self.metadata = metadata or dict
        self.depth = depth
        self.loops = loops

    def describe(self):
        return {"name": self.name, "per": self.per, "about": self.about,
                "depth": self.depth, "loops": self.loops}


def main(benches):
    by_name = {b.name: b for b in benches}
    if sys.argv[1:] == ["--list"]:
        for b in benches:
            print(json.dumps(b.describe()))
        return

    import pyperf

    from probes import greenlet_identity

    runner = pyperf.Runner()
    runner.argparser.add_argument("--bench", required=True,
                                  choices=sorted(by_name))
    args = runner.parse_args()
    bench = by_name[args.bench]
    metadata = dict(greenlet_identity())
    metadata["per"] = bench.per
    metadata.update(bench.metadata())
    runner.bench_time_func(bench.name, bench.func, *bench.args,
                           inner_loops=bench.inner_loops, metadata=metadata)
