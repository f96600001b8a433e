#!/usr/bin/env python3
"""Learning curves of run directories: the pre-update return against real steps, seeds of one
task grouped as mean ± std, with the published curve and points (references.py). Needs matplotlib.

  python3 bench/learning/plot_curves.py RUN_DIR [RUN_DIR ...] -o curves.png
"""
import argparse
import math
import sys

from learning_table import progress, task_of
from references import POINTS, curve


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dirs", nargs="+")
    parser.add_argument("-o", "--out", required=True)
    args = parser.parse_args()
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("plot_curves: needs matplotlib (pip install matplotlib)", file=sys.stderr)
        return 3
    by_task = {}
    for run_dir in args.run_dirs:
        by_task.setdefault(task_of(run_dir), []).append(progress(run_dir))
    fig, axes = plt.subplots(1, len(by_task), figsize=(6 * len(by_task), 4), squeeze=False)
    for ax, (task, runs) in zip(axes[0], sorted(by_task.items())):
        # Seeds are grouped on the iterations they share (same schedule: same real steps).
        n = min(len(r) for r in runs)
        steps = [runs[0][i][0] for i in range(n)]
        mean = [sum(r[i][1] for r in runs) / len(runs) for i in range(n)]
        std = [math.sqrt(sum((r[i][1] - mean[i]) ** 2 for r in runs) / len(runs)) for i in range(n)]
        ax.plot(steps, mean, label=f"mbmpo, {len(runs)} seed(s)")
        ax.fill_between(steps, [m - s for m, s in zip(mean, std)], [m + s for m, s in zip(mean, std)], alpha=0.25)
        right = max(max(r[-1][0] for r in runs), 100_000) * 1.05  # our range, and the 100k references
        published = curve(task)
        if published:
            label, rows = published
            rows = [r for r in rows if r[0] <= right]
            ax.plot([r[0] for r in rows], [r[1] for r in rows], "--", label=label)
        for (t, m), points in POINTS.items():
            if t == task:
                for source, value in points:
                    ax.plot([m], [value], "o", label=f"{source}, {m // 1000}k")
        ax.set_xlim(0, right)
        ax.set_title(task)
        ax.set_xlabel("real steps")
        ax.set_ylabel("pre-update return (horizon 200)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"plot_curves: wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
