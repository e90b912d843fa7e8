"""Plot switch time against the C stack under the switch point.

    python plot.py results.json switch-depth.png

Run by run.py with a venv's python (matplotlib is installed there). Reads the
switch-depth-* records of results.json; x is the C stack bytes measured in
each worker (c_stack_bytes), y the median time per switch with the
interquartile range as error bars. Left: linear axes, where a cost that grows
with depth is a slope; right: the same on log axes, where both sides and the
small depths stay readable.
"""

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

STYLE = {"ours": ("tab:blue", "o"), "upstream": ("tab:orange", "s")}


def series(records, side):
    points = []
    for rec in records:
        s = rec["sides"][side]
        st, nbytes = s["stats"], s["meta"].get("c_stack_bytes")
        if rec["depth"] is None or st is None or nbytes is None:
            continue
        points.append((nbytes / 1024, st["median"] * 1e6,
                       (st["median"] - st["q1"]) * 1e6,
                       (st["q3"] - st["median"]) * 1e6, rec["depth"]))
    return sorted(points)


def main(results, png):
    with open(results) as f:
        data = json.load(f)
    env = data["environment"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    for ax, log in zip(axes, (False, True)):
        for side in ("ours", "upstream"):
            pts = series(data["timed"], side)
            if not pts:
                continue
            x, y, lo, hi, depth = zip(*pts)
            color, marker = STYLE[side]
            label = "%s (greenlet %s)" % (side, env[side]["version"])
            ax.errorbar(x, y, yerr=[lo, hi], color=color, marker=marker,
                        capsize=3, label=label)
            if not log:
                for xi, yi, d in zip(x, y, depth):
                    ax.annotate("D=%d" % d, (xi, yi), textcoords="offset points",
                                xytext=(4, 4), fontsize=7, color=color)
        ax.set_xlabel("C stack under each side's switch point (KiB)")
        ax.set_ylabel("time per switch (µs)")
        if log:
            # Log time, and a log-like x that still admits 0 bytes (3.12+
            # puts no C stack under a depth-0 switch).
            ax.set_yscale("log")
            ax.set_xscale("symlog", linthresh=1.0)
            ax.set_xlim(left=0)     # no negative stack sizes on the axis
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("Switch time against C stack depth: Python %s, %s, commit %s, %s"
                 % (env["python"], env["date"], env["commit"], env["mode"]),
                 fontsize=9)
    fig.text(0.5, 0.005, env["machine"], ha="center", fontsize=7)
    fig.tight_layout(rect=(0, 0.03, 1, 0.95))
    fig.savefig(png, dpi=110)


if __name__ == "__main__":
    main(*sys.argv[1:3])
