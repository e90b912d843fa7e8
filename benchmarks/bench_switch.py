"""Switch benchmarks: what one greenlet.switch() (or throw) costs.

Upstream copies the C stack between a greenlet's switch point and where it
started out to the heap and back on every switch, so its cost grows with
that distance; ours swaps stack pointers, so it should not. The
switch-depth-D benchmarks put D levels of C recursion under both sides of a
ping-pong and record how many bytes of C stack that is (c_stack_bytes).

Run by run.py; see harness.py for the command line.
"""

import time

from greenlet import getcurrent, greenlet

import harness
from probes import allow_depth, c_stack_bytes, descend

DEPTHS = (0, 10, 50, 200, 1000)


def ping_pong(loops, depth):
    """Two greenlets, each `depth` C levels down, switch back and forth."""
    allow_depth(depth)
    main = getcurrent()

    def a_bottom():
        to_b = b.switch
        it = range(loops)
        t0 = time.perf_counter()
        for _ in it:
            to_b()          # a -> b, and b's loop brings us back: 2 switches
        return time.perf_counter() - t0

    def b_bottom():
        to_a = a.switch
        main.switch()       # park until a's first switch
        while True:
            to_a()

    a = greenlet(descend, parent=main)
    b = greenlet(descend, parent=main)
    b.switch(depth, b_bottom)           # b descends and parks
    elapsed = a.switch(depth, a_bottom)  # a descends, runs the loop, dies
    b.throw()                           # GreenletExit unwinds b
    assert a.dead and b.dead
    return elapsed


def depth_metadata(depth):
    def metadata():
        allow_depth(depth)
        # Measured inside a greenlet, as in the benchmark: bytes between the
        # greenlet's entry and its switch point.
        nbytes = greenlet(c_stack_bytes).switch(depth)
        return {"c_levels": depth} if nbytes is None else \
            {"c_levels": depth, "c_stack_bytes": nbytes}
    return metadata


def main_child(loops):
    """The main greenlet and one child switch back and forth."""
    main = getcurrent()

    def child():
        to_main = main.switch
        while True:
            to_main()

    g = greenlet(child)
    to_g = g.switch
    to_g()
    it = range(loops)
    t0 = time.perf_counter()
    for _ in it:
        to_g()
    elapsed = time.perf_counter() - t0
    g.throw()
    return elapsed


class Ping(Exception):
    pass


def throw_catch(loops):
    """Throw into a suspended greenlet; it catches and switches back."""
    main = getcurrent()

    def catcher():
        to_main = main.switch
        while True:
            try:
                to_main()
            except Ping:
                pass

    g = greenlet(catcher)
    g.switch()
    throw = g.throw
    it = range(loops)
    t0 = time.perf_counter()
    for _ in it:
        throw(Ping)
    elapsed = time.perf_counter() - t0
    g.throw()
    return elapsed


def get_current(loops):
    """greenlet.getcurrent(), ten calls per iteration."""
    gc = getcurrent
    it = range(loops)
    t0 = time.perf_counter()
    for _ in it:    # unrolled, so the loop itself weighs little
        gc(); gc(); gc(); gc(); gc()  # noqa: E702
        gc(); gc(); gc(); gc(); gc()  # noqa: E702
    return time.perf_counter() - t0


BENCHES = [
    harness.Bench("switch-depth-%d" % d, ping_pong, (d,), inner_loops=2,
                  per="switch", depth=d, metadata=depth_metadata(d),
                  about="two greenlets ping-pong, each %d C levels deep" % d)
    for d in DEPTHS
] + [
    harness.Bench("switch-main-child", main_child, inner_loops=2,
                  per="switch", about="main <-> child, both shallow"),
    harness.Bench("throw-catch", throw_catch, per="throw",
                  about="throw into a suspended greenlet, it catches and "
                        "switches back"),
    harness.Bench("getcurrent", get_current, inner_loops=10, per="call",
                  about="greenlet.getcurrent()"),
]

if __name__ == "__main__":
    harness.main(BENCHES)
