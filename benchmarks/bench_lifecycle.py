"""Lifecycle benchmarks: creating, starting, finishing and freeing greenlets.

Ours takes a stack from a pool when a greenlet first runs and gives it back
when it dies; upstream allocates nothing until a switch saves stack bytes.
These measure that difference from "never started" to "100,000 at once".

Run by run.py; see harness.py for the command line.
"""

import time

from greenlet import getcurrent, greenlet

import harness


def _run():
    pass


def create(loops):
    """greenlet(run) that is never started, freed at once; ten per iteration."""
    g = greenlet
    run = _run
    it = range(loops)
    t0 = time.perf_counter()
    for _ in it:    # unrolled, so the loop itself weighs little
        g(run); g(run); g(run); g(run); g(run)  # noqa: E702
        g(run); g(run); g(run); g(run); g(run)  # noqa: E702
    return time.perf_counter() - t0


def spawn(loops):
    """Create, switch in, run a function that returns, die, free."""
    g = greenlet
    run = _run
    it = range(loops)
    t0 = time.perf_counter()
    for _ in it:
        g(run).switch()
    return time.perf_counter() - t0


def many_alive(loops, n):
    """`n` greenlets started and suspended at once, then all finished."""
    main = getcurrent()
    to_main = main.switch

    def park():
        to_main()

    total = 0.0
    for _ in range(loops):
        t0 = time.perf_counter()
        gs = [greenlet(park) for _ in range(n)]
        for g in gs:
            g.switch()      # starts, parks in to_main()
        for g in gs:
            g.switch()      # returns from to_main(), run() ends
        del gs, g
        total += time.perf_counter() - t0
    return total


def chain(loops, n):
    """`n` suspended greenlets hand a value along, each to the next.

    All are started first and park (n suspended at once); then the first is
    sent 0 and each link switches to the next with the value plus one, the
    last one to the main greenlet. Then each is resumed once to finish.
    """
    main = getcurrent()
    to_main = main.switch

    def link(next_link):
        value = to_main()               # parked until the value arrives
        next_link.switch(value + 1)     # pass it on; resumed once to finish

    total = 0.0
    for _ in range(loops):
        t0 = time.perf_counter()
        links = [greenlet(link) for _ in range(n)]
        for i in range(n - 1):
            links[i].switch(links[i + 1])
        links[-1].switch(main)
        result = links[0].switch(0)
        for g in links:
            g.switch()
        del links, g
        total += time.perf_counter() - t0
        assert result == n, result
    return total


BENCHES = [
    harness.Bench("create", create, inner_loops=10, per="greenlet",
                  about="greenlet(run), never started, freed"),
    harness.Bench("spawn", spawn, per="greenlet",
                  about="create, switch in, trivial run(), die, free"),
    harness.Bench("alive-1000", many_alive, (1000,), inner_loops=1000,
                  per="greenlet",
                  about="1,000 started and suspended, then all finished"),
    harness.Bench("chain-100000", chain, (100000,), per="chain", loops=1,
                  about="100,000 suspended greenlets pass a value along"),
]

if __name__ == "__main__":
    harness.main(BENCHES)
