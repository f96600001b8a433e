"""The learning table: the pre-update return of run directories at 10k, 25k, 50k and 100k real
steps, per seed and as mean ± std per setting, next to the published results (mbmpo.references).

  python -m mbmpo.learning RUN_DIR [RUN_DIR ...] [--steps 10000,25000,50000,100000]

Runs whose settings differ only in their seed are one setting (as mbmpo.plot groups them); a
directory of `mbmpo train --seeds` stands for its seeds. A run's value at N steps is that of its
last iteration at or before N real steps, blank when the run has not got there. Prints Markdown.
"""
import argparse
import math
import os
import sys

from . import references
from .plot import expand_seed_groups, load_run, setting_label

MARKS = (10_000, 25_000, 50_000, 100_000)


def run_name(run_dir):
    """The run's name in the table: its directory's name (with its group's for a seed of --seeds)."""
    path = os.path.normpath(run_dir)
    name = os.path.basename(path)
    return f"{os.path.basename(os.path.dirname(path))}/{name}" if name.startswith("seed-") else name


def settings_groups(run_dirs):
    """[(label, env, [(run name, [(real steps, return, seconds)])])]: runs grouped by their settings
    without the seed, labelled by the env and the settings that tell the groups apart."""
    groups = {}
    for run_dir in expand_seed_groups(run_dirs):
        settings, rows = load_run(run_dir)
        key = tuple(sorted((k, str(v)) for k, v in settings.items()))
        points = [(r["real_steps"], r.get("return_pre_mean", math.nan), r.get("seconds_iteration", 0.0) or 0.0)
                  for r in rows]
        groups.setdefault(key, (settings, []))[1].append((run_name(run_dir), points))
    all_settings = [settings for settings, _ in groups.values()]
    out = [(setting_label(settings, all_settings), settings.get("env", "?"), sorted(runs))
           for settings, runs in groups.values()]
    return sorted(out, key=lambda g: g[0])


def _cell(value):
    return "" if value is None or math.isnan(value) else str(round(value))  # round: -0.4 is "0", not "-0"


def mean_std(values):
    """(mean, population std) of the values, or None when there are none."""
    values = [v for v in values if v is not None and not math.isnan(v)]
    if not values:
        return None
    mean = sum(values) / len(values)
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / len(values)), len(values)


def table(run_dirs, marks=MARKS):
    """The Markdown table of the runs (see the module's text)."""
    marks = list(marks)
    lines = ["| setting | run | " + " | ".join(f"{m / 1000:g}k" for m in marks) + " | wall-clock |",
             "|---|---|" + "---|" * len(marks) + "---|"]
    for label, env, runs in settings_groups(run_dirs):
        per_mark = {m: [] for m in marks}
        for name, points in runs:
            cells = []
            for m in marks:
                value = references.value_at(points, m)
                per_mark[m].append(value)
                cells.append(_cell(value))
            minutes = sum(p[2] for p in points) / 60
            lines.append(f"| {label} | {name} | " + " | ".join(cells) +
                         f" | {minutes:.1f} min to {points[-1][0]:.0f} steps |")
        stats = []
        for m in marks:
            s = mean_std(per_mark[m])
            stats.append("" if s is None else f"{round(s[0])} ± {round(s[1])} (n={s[2]})")
        lines.append(f"| {label} | **mean ± std** | " + " | ".join(stats) + " | |")
        published = references.curve(env)
        if published:
            source, rows = published
            lines.append(f"| {env} | {source} (curve) | " +
                         " | ".join(_cell(references.value_at(rows, m)) for m in marks) + " | |")
        for m in marks:
            for source, value in references.POINTS.get((env, m), []):
                lines.append(f"| {env} | {source} | " + " | ".join(str(value) if mm == m else "" for mm in marks) +
                             " | |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m mbmpo.learning", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    parser.add_argument("--steps", default=",".join(str(m) for m in MARKS),
                        help="the real steps of the columns, comma-separated")
    args = parser.parse_args(argv)
    try:
        marks = [int(s) for s in args.steps.split(",")]
        if not marks or min(marks) <= 0:
            raise ValueError
    except ValueError:
        parser.exit(2, f"mbmpo.learning: error: --steps must be positive integers like 10000,25000, got "
                       f"'{args.steps}'\n")
    try:
        sys.stdout.write(table(args.run_dirs, marks))
    except ValueError as error:
        parser.exit(2, f"mbmpo.learning: error: {error}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
