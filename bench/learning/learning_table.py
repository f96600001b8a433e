#!/usr/bin/env python3
"""The pre-update return of run directories at 10k, 25k, 50k and 100k real steps, per seed and as
mean ± std over seeds, next to the published values (references.py).

  python3 bench/learning/learning_table.py RUN_DIR [RUN_DIR ...] [--steps 10000,25000,50000,100000]

Run directories of one task are grouped (their config.toml names the task); a run's value at N
steps is that of its last iteration at or before N real steps (blank when it has not got there).
Give the run directories themselves, e.g. ROOT/*/ for a grid made by run_grid.py.
Prints a Markdown table.
"""
import argparse
import csv
import math
import os
import re
import sys

from references import POINTS, curve, value_at


def task_of(run_dir):
    if not os.path.isfile(os.path.join(run_dir, "config.toml")):
        raise SystemExit(f"learning_table: {run_dir} is not a run directory (no config.toml)")
    with open(os.path.join(run_dir, "config.toml")) as f:
        match = re.search(r'^env\s*=\s*"([^"]+)"', f.read(), re.M)
    if not match:
        raise SystemExit(f"learning_table: {run_dir}/config.toml names no env")
    return match.group(1)


def progress(run_dir):
    path = os.path.join(run_dir, "progress.csv")
    if not os.path.exists(path):
        raise SystemExit(f"learning_table: {run_dir} is not a run directory (no progress.csv)")
    with open(path) as f:
        return [(float(r["real_steps"]), float(r["return_pre_mean"]) if r["return_pre_mean"] else math.nan,
                 float(r.get("seconds_iteration") or 0)) for r in csv.DictReader(f)]


def fmt(x):
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.0f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dirs", nargs="+")
    parser.add_argument("--steps", default="10000,25000,50000,100000")
    args = parser.parse_args()
    marks = [int(s) for s in args.steps.split(",")]
    by_task = {}
    for run_dir in args.run_dirs:
        by_task.setdefault(task_of(run_dir), []).append(run_dir)
    print("| task | run | " + " | ".join(f"{m // 1000}k" for m in marks) + " | wall-clock |")
    print("|---|---|" + "---|" * len(marks) + "---|")
    for task, runs in sorted(by_task.items()):
        values = {m: [] for m in marks}
        for run_dir in sorted(runs):
            rows = progress(run_dir)
            cells = []
            for m in marks:
                v = value_at(rows, m)
                cells.append(fmt(v))
                if v is not None and not math.isnan(v):
                    values[m].append(v)
            seconds = sum(r[2] for r in rows)
            print(f"| {task} | {os.path.basename(os.path.normpath(run_dir))} | " + " | ".join(cells) +
                  f" | {seconds / 60:.1f} min to {rows[-1][0]:.0f} steps |")
        stats = []
        for m in marks:
            v = values[m]
            if not v:
                stats.append("")
                continue
            mean = sum(v) / len(v)
            std = math.sqrt(sum((x - mean) ** 2 for x in v) / len(v))
            stats.append(f"{mean:.0f} ± {std:.0f} (n={len(v)})")
        print(f"| {task} | **mean ± std** | " + " | ".join(stats) + " | |")
        published = curve(task)
        if published:
            label, rows = published
            print(f"| {task} | {label} (curve) | " + " | ".join(fmt(value_at(rows, m)) for m in marks) + " | |")
        for m in marks:
            for source, value in POINTS.get((task, m), []):
                cells = [str(value) if mm == m else "" for mm in marks]
                print(f"| {task} | {source} | " + " | ".join(cells) + " | |")


if __name__ == "__main__":
    sys.exit(main())
