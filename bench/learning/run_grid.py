#!/usr/bin/env python3
"""Runs a grid of tasks x seeds through `mbmpo train` until each run has the real steps asked for.

  python3 bench/learning/run_grid.py --root runs/learning --tasks half_cheetah,hopper --seeds 0-2 \
      --steps 100000 [--jobs 2] [--binary build/apps/mbmpo] [-- extra train flags, e.g. --device cuda]

Each run lives in ROOT/TASK-sSEED, an ordinary run directory. A run is extended one iteration at
a time with `mbmpo train --resume` until its progress.csv reaches --steps real steps, so the grid
can be stopped and restarted at any point and picks up where it was. --jobs runs that many
trainings at once; on a CPU they share the cores (each one's team shrinks while the others hold
them: two runs on two cores take about 1.9x as long as one alone, bench/RESULTS.md).
"""
import argparse
import concurrent.futures
import csv
import os
import subprocess
import sys


def seeds_from(text):
    """'0-2' -> [0, 1, 2]; '0,3,7' -> [0, 3, 7]."""
    seeds = []
    for part in text.split(","):
        if "-" in part:
            low, high = part.split("-")
            seeds += list(range(int(low), int(high) + 1))
        else:
            seeds.append(int(part))
    if not seeds or len(set(seeds)) != len(seeds):
        raise SystemExit(f"run_grid: --seeds {text!r} must name distinct seeds, e.g. 0-2 or 0,3,7")
    return seeds


def real_steps(run_dir):
    """(iterations done, real steps) from the run's progress.csv; (0, 0) before the first row."""
    path = os.path.join(run_dir, "progress.csv")
    if not os.path.exists(path):
        return 0, 0
    with open(path) as f:
        rows = list(csv.DictReader(f))
    return (len(rows), int(float(rows[-1]["real_steps"]))) if rows else (0, 0)


def run_one(binary, root, task, seed, steps, extra):
    run_dir = os.path.join(root, f"{task}-s{seed}")
    log = open(os.path.join(root, f"{task}-s{seed}.log"), "a")
    while True:
        done, have = real_steps(run_dir)
        if have >= steps:
            return f"{task} seed {seed}: {have} real steps in {done} iterations"
        if done == 0 and not os.path.exists(os.path.join(run_dir, "checkpoints", "latest")):
            # A directory left by a run killed before its first checkpoint holds nothing to keep.
            subprocess.run(["rm", "-rf", run_dir], check=True)
            command = [binary, "train", "--env", task, "--seed", str(seed), "--run-dir", run_dir,
                       "--iterations", "1", "--quiet"] + extra
        else:
            command = [binary, "train", "--resume", "--run-dir", run_dir, "--iterations", str(done + 1), "--quiet"]
        result = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT)
        if result.returncode != 0:
            return f"{task} seed {seed}: mbmpo train failed (exit {result.returncode}), see {log.name}"


def main():
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", required=True)
    parser.add_argument("--tasks", default="half_cheetah,hopper")
    parser.add_argument("--seeds", default="0-2")
    parser.add_argument("--steps", type=int, default=100_000, help="real steps each run reaches")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--binary", default="build/apps/mbmpo")
    args = parser.parse_args(argv)
    if args.steps <= 0 or args.jobs <= 0:
        raise SystemExit("run_grid: --steps and --jobs must be positive")
    if not os.access(args.binary, os.X_OK):
        raise SystemExit(f"run_grid: no mbmpo binary at {args.binary} (build it, or pass --binary)")
    os.makedirs(args.root, exist_ok=True)
    grid = [(task, seed) for task in args.tasks.split(",") for seed in seeds_from(args.seeds)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for line in pool.map(lambda ts: run_one(args.binary, args.root, ts[0], ts[1], args.steps, extra), grid):
            print(line, flush=True)


if __name__ == "__main__":
    main()
