#!/usr/bin/env python3
"""Two trainings side by side on the same cores, against one alone: the CPU backend under contention.

  python3 bench/side_by_side.py --binary build/apps/mbmpo [--preset smoke] [--env half_cheetah]
      [--iterations N] [--repeats 2] [--json out.json] [-- extra train flags]

Runs `mbmpo train` alone (the best of --repeats runs), then two identical runs at once, and
prints each one's wall-clock and the slowdown: the slower concurrent run over the alone run. Two
runs sharing the cores can at best take twice as long as one that has them all; the target is at
most 2.5x on 2 cores. The two concurrent runs must also write the same progress rows as the alone
run (timings aside): a thread count that follows the load must not change results.
"""
import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time


def train_command(args, run_dir):
    command = [args.binary, "train", "--env", args.env, "--preset", args.preset, "--device", "cpu",
               "--run-dir", run_dir, "--quiet"]
    if args.iterations:
        command += ["--iterations", str(args.iterations)]
    return command + args.extra


def rows_without_timings(run_dir):
    with open(os.path.join(run_dir, "progress.csv")) as f:
        return [{k: v for k, v in row.items() if not k.startswith("seconds_")} for row in csv.DictReader(f)]


def run_together(commands):
    start = time.monotonic()
    processes = [subprocess.Popen(c) for c in commands]
    seconds = []
    for p in processes:
        if p.wait() != 0:
            sys.exit(f"side_by_side: {' '.join(p.args)} failed with exit code {p.returncode}")
        seconds.append(time.monotonic() - start)
    return seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default="build/apps/mbmpo")
    parser.add_argument("--env", default="half_cheetah")
    parser.add_argument("--preset", default="smoke", choices=["smoke", "cpu"])
    parser.add_argument("--iterations", type=int, default=0, help="override the preset's iterations")
    parser.add_argument("--repeats", type=int, default=2, help="alone runs; the fastest counts")
    parser.add_argument("--json", default=None, help="also write the result row here")
    parser.add_argument("extra", nargs="*", help="more `mbmpo train` flags (after --)")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    if not os.access(args.binary, os.X_OK):
        parser.error(f"--binary {args.binary} is not an executable (build first)")

    work = tempfile.mkdtemp(prefix="mbmpo-side-by-side-")
    alone = []
    for i in range(args.repeats):
        alone += run_together([train_command(args, os.path.join(work, f"alone{i}"))])
    pair = run_together([train_command(args, os.path.join(work, name)) for name in ("a", "b")])
    expected = rows_without_timings(os.path.join(work, "alone0"))
    same = all(rows_without_timings(os.path.join(work, name)) == expected for name in ("a", "b"))

    row = {"case": f"side_by_side_{args.env}_{args.preset}", "cores": len(os.sched_getaffinity(0)),
           "alone_s": round(min(alone), 2), "together_s": [round(s, 2) for s in pair],
           "slowdown": round(max(pair) / min(alone), 2), "target": 2.5, "same_results": same,
           "flags": " ".join(args.extra)}
    print(f"{row['case']} on {row['cores']} cores: alone {row['alone_s']} s, two at once "
          f"{row['together_s'][0]} s and {row['together_s'][1]} s: slowdown {row['slowdown']}x "
          f"(target <= 2.5x); results {'identical' if same else 'DIFFER'}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(row, f, indent=1)
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
