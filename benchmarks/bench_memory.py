"""Memory held by suspended greenlets: RSS and memory mappings per greenlet.

    python bench_memory.py --count N [--depth D] [--rss-limit BYTES]

Starts N greenlets, each of which suspends itself D levels of C recursion
below its run() (0 = shallow), keeps them all suspended, and prints one JSON
object: resident memory, page-table memory and /proc/self/maps lines before
and after, the time taken, then the same after all of them have been
finished. One process per configuration, so that nothing a previous
configuration freed (or pooled) is counted. Not a pyperf benchmark: the
numbers are sizes, read once.

If creating them raises (MemoryError when mappings run out, say) or RSS
passes --rss-limit, it stops there and reports how many it got and why.
run.py also watches the process from outside and kills it if it grows past
the limit or runs too long.
"""

import argparse
import gc
import json
import sys
import time


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--depth", type=int, default=0,
                        help="C recursion levels under each switch point")
    parser.add_argument("--rss-limit", type=int, default=0,
                        help="stop creating once RSS exceeds this many bytes")
    args = parser.parse_args()

    from greenlet import getcurrent, greenlet

    from probes import (allow_depth, c_stack_bytes, descend,
                        greenlet_identity, mapping_count, max_map_count,
                        page_table_bytes, rss_bytes)

    allow_depth(args.depth)
    main_greenlet = getcurrent()
    to_main = main_greenlet.switch

    def park():
        descend(args.depth, to_main)

    # Warm up: let one-time allocations (type caches, the first stack,
    # a pool's first slab) happen before the baseline is read.
    warm = [greenlet(park) for _ in range(100)]
    for g in warm:
        g.switch()
    for g in warm:
        g.switch()
    del warm, g

    result = {"count": args.count, "depth": args.depth,
              "c_stack_bytes": greenlet(c_stack_bytes).switch(args.depth),
              "max_map_count": max_map_count(), "error": None}
    result.update(greenlet_identity())

    held = [None] * args.count
    gc.collect()
    # The collector would walk every held greenlet again and again as they
    # pile up; that is not what this measures, and nothing here makes cycles.
    gc.disable()
    rss0, maps0, pte0 = rss_bytes(), mapping_count(), page_table_bytes()
    created = 0
    t0 = time.perf_counter()
    try:
        for i in range(args.count):
            g = greenlet(park)
            g.switch()
            held[i] = g
            created += 1
            if args.rss_limit and not created & 1023 and \
                    rss_bytes() > args.rss_limit:
                result["error"] = "stopped: RSS over %d bytes" % args.rss_limit
                break
    except BaseException as exc:   # MemoryError above all; report, don't die
        result["error"] = "%s: %s" % (type(exc).__name__, exc)
    g = None
    t1 = time.perf_counter()
    rss1, maps1, pte1 = rss_bytes(), mapping_count(), page_table_bytes()

    # Finish them: each returns from its switch and dies.
    t2 = time.perf_counter()
    for i in range(created):
        held[i].switch()
        held[i] = None
    t3 = time.perf_counter()
    del held
    gc.enable()
    gc.collect()
    rss2, maps2, pte2 = rss_bytes(), mapping_count(), page_table_bytes()

    result.update({
        "created": created,
        "rss_before": rss0, "rss_suspended": rss1, "rss_after": rss2,
        "maps_before": maps0, "maps_suspended": maps1, "maps_after": maps2,
        "pte_before": pte0, "pte_suspended": pte1, "pte_after": pte2,
        "seconds_create": t1 - t0, "seconds_finish": t3 - t2,
    })
    json.dump(result, sys.stdout)
    print()


if __name__ == "__main__":
    main()
