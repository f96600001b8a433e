"""Learning curves of mbmpo run directories, drawn with matplotlib.

  python -m mbmpo.plot RUN_DIR [RUN_DIR ...] -o curves.png [--ref "RLlib 100k=517" ...]

Four panels against real steps (phases against iterations): the real return of the pre-update
policy (solid) and of the adapted policies (dashed); the imagined returns before and after the
inner step; the models' mean validation loss; the seconds per phase. Runs whose settings differ
only in their seed are one group, drawn as mean ± std over its seeds (interpolated onto the real
steps all of them reached); a directory of `mbmpo train --seeds` stands for its seeds. --ref marks a published point, "LABEL STEPS=RETURN" (STEPS may end
in k).
"""
import argparse
import csv
import math
import os
import re
import sys
import tomllib

# Settings that do not make runs different experiments.
_NOT_SETTINGS = {"seed", "iterations", "device", "threads", "cpu-threads"}


def load_run(run_dir):
    """(settings without the seed, progress rows as dicts of floats) of one run directory."""
    progress = os.path.join(run_dir, "progress.csv")
    if not os.path.exists(progress):
        raise ValueError(f"{run_dir}: no progress.csv (not an mbmpo run directory?)")
    settings = {}
    config = os.path.join(run_dir, "config.toml")
    if os.path.exists(config):
        with open(config, "rb") as f:
            settings = {k: v for k, v in tomllib.load(f).get("train", {}).items() if k not in _NOT_SETTINGS}
    with open(progress) as f:
        rows = [{k: _float(v) for k, v in row.items()} for row in csv.DictReader(f)]
    if not rows:
        raise ValueError(f"{run_dir}: progress.csv has no rows yet")
    return settings, rows


def _float(text):
    try:
        return float(text)
    except ValueError:
        return math.nan


def expand_seed_groups(run_dirs):
    """A directory of `mbmpo train --seeds` (RUN_DIR/seed-S/...) stands for its seeds' run directories."""
    out = []
    for run_dir in run_dirs:
        seeds = sorted(d for d in (os.listdir(run_dir) if os.path.isdir(run_dir) else [])
                       if d.startswith("seed-") and os.path.isdir(os.path.join(run_dir, d)))
        if seeds and not os.path.exists(os.path.join(run_dir, "progress.csv")):
            out += [os.path.join(run_dir, d) for d in seeds]
        else:
            out.append(run_dir)
    return out


def setting_label(settings, all_settings):
    """A group's name: its env and the settings that tell it apart from the other groups (the
    table of mbmpo.learning and the pictures name groups alike)."""
    differing = sorted({k for s in all_settings for k in s
                        if k != "env" and len({str(t.get(k)) for t in all_settings}) > 1})
    return ", ".join([settings.get("env", "?")] + [f"{k}={settings.get(k)}" for k in differing])


def group_runs(run_dirs):
    """[(label, [rows of each seed])], runs grouped by their settings."""
    groups = {}
    for run_dir in expand_seed_groups(run_dirs):
        settings, rows = load_run(run_dir)
        key = tuple(sorted((k, str(v)) for k, v in settings.items()))
        groups.setdefault(key, (settings, []))[1].append(rows)
    all_settings = [settings for settings, _ in groups.values()]
    return [(f"{setting_label(settings, all_settings)} ({len(runs)} seed{'s' if len(runs) > 1 else ''})", runs)
            for settings, runs in groups.values()]


def mean_std(runs, column, x="real_steps", points=60):
    """The column's mean and std over runs on a common x grid (the range every run reached)."""
    import numpy as np

    series = []
    for rows in runs:
        xs = np.array([r[x] for r in rows])
        ys = np.array([r.get(column, math.nan) for r in rows])
        keep = np.isfinite(ys)
        if keep.sum() >= 1:
            series.append((xs[keep], ys[keep]))
    if not series:
        return None
    low, high = max(s[0][0] for s in series), min(s[0][-1] for s in series)
    if len(series) == 1 or high <= low:
        xs, ys = series[0]
        return xs, ys, np.zeros_like(ys)
    grid = np.linspace(low, high, points)
    values = np.array([np.interp(grid, xs, ys) for xs, ys in series])
    return grid, values.mean(axis=0), values.std(axis=0)


def parse_ref(text):
    """'RLlib 100k=517' -> ('RLlib', 100000.0, 517.0)."""
    match = re.fullmatch(r"\s*(.*?)\s*([0-9.]+)(k?)\s*=\s*(-?[0-9.]+)\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"--ref: expected 'LABEL STEPS=RETURN' like 'RLlib 100k=517', got '{text}'")
    label, steps, kilo, value = match.groups()
    return label or "reference", float(steps) * (1000 if kilo else 1), float(value)


def plot(run_dirs, out, refs=()):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    groups = group_runs(run_dirs)
    fig, axes = plt.subplots(2, 2, figsize=(13, 9))
    real, imagined, loss, phases = axes.ravel()
    for i, (label, runs) in enumerate(groups):
        color = f"C{i}"
        for ax, column, style, name in [(real, "return_pre_mean", "-", "pre-update"),
                                        (real, "return_post_mean", "--", "adapted"),
                                        (imagined, "imagined_return_pre", "-", "pre"),
                                        (imagined, "imagined_return_post", "--", "post")]:
            curve = mean_std(runs, column)
            if curve is None:
                continue
            xs, mean, std = curve
            ax.plot(xs, mean, style, color=color, label=f"{label}, {name}")
            ax.fill_between(xs, mean - std, mean + std, color=color, alpha=0.2)
        for rows in runs:  # the models' mean validation loss per run
            for row in rows:
                values = [v for k, v in row.items() if k.startswith("model_val_loss_")]
                row["_model_val_loss"] = sum(values) / len(values) if values else math.nan
        curve = mean_std(runs, "_model_val_loss")
        if curve is not None:
            loss.plot(curve[0], curve[1], color=color, label=label)
        phase_names = [k[len("seconds_"):] for k in runs[0][0] if k.startswith("seconds_") and k != "seconds_iteration"]
        n = min(len(rows) for rows in runs)
        bottom = np.zeros(n)
        for j, phase in enumerate(phase_names):
            seconds = np.array([np.mean([rows[t].get("seconds_" + phase, 0.0) for rows in runs]) for t in range(n)])
            phases.bar(np.arange(n) + 0.8 * i / len(groups), seconds, width=0.8 / len(groups), bottom=bottom,
                       color=f"C{j}", label=phase if i == 0 else None)
            bottom += seconds
    for label, steps, value in refs:
        real.plot([steps], [value], "k*", markersize=11)
        real.annotate(label, (steps, value), textcoords="offset points", xytext=(6, 4))
    real.set(title="Real return", xlabel="real steps", ylabel="return")
    imagined.set(title="Imagined return (the models)", xlabel="real steps", ylabel="return")
    loss.set(title="Models' validation loss (mean over the ensemble)", xlabel="real steps", ylabel="loss")
    loss.set_yscale("log")
    phases.set(title="Seconds per phase", xlabel="iteration", ylabel="seconds")
    for ax in axes.ravel():
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m mbmpo.plot", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    parser.add_argument("-o", "--out", required=True, help="the picture to write (.png, .pdf, .svg)")
    parser.add_argument("--ref", type=parse_ref, action="append", default=[], help="a published point, 'LABEL STEPS=RETURN'")
    args = parser.parse_args(argv)
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("mbmpo.plot: needs matplotlib (pip install matplotlib)", file=sys.stderr)
        return 3
    try:
        plot(args.run_dirs, args.out, args.ref)
    except ValueError as error:
        print(f"mbmpo.plot: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
