"""Sweeps on Ray Tune: tasks x seeds x settings, one Tune trial and one run directory each.

  python -m mbmpo.sweep SWEEP.toml [--root DIR] [--address HOST:PORT]

A sweep file holds the ``[train]`` keys of a run's config.toml, and a ``[sweep]`` section with the
sweep's options (scalars) and its axes (any training key given a list of values)::

    [train]
    iterations = 20               # every key of config.toml; model-hidden or model_hidden
    [sweep]
    preset = "cpu"                # options: preset, seeds_per_trial, gpus_per_trial, max_failures, name,
                                  # table_steps (the table's columns, default [10000, 25000, 50000, 100000])
    seeds_per_trial = 3           # seeds trained together in one trial (mbmpo train --seeds)
    env = ["half_cheetah", "hopper"]
    seed = "0-2"                  # the seed axis: a list, or a list like --seeds' ("0-2", "0,3,7")
    inner_lr = [0.001, 0.01]

Every trial is a run directory ``ROOT/NAME`` named after its settings (``env=hopper,seed=0``, or
``env=hopper,seeds=0,1,2`` for a group of seeds, whose seeds are ``seed-S`` inside), trained by
``mbmpo.train``. Each iteration's progress row goes to Tune (``tune.report``) with a checkpoint
that names the run directory, and a trial that Tune restores (``max_failures`` retries after a
dead worker or node) resumes that directory from its last complete checkpoint: the run directory
is the only state. A trial asks Ray for ``cpu_threads`` + ``threads`` CPUs (``cpu_threads`` is 1
unless set) and, with ``device = "cuda"``, ``gpus_per_trial`` of a GPU. ``--address`` joins a
running Ray cluster, whose nodes must all see ROOT (a shared file system) and have mbmpo
installed; without it Ray starts on this machine.

At the end the sweep writes ``ROOT/learning.md`` (mbmpo.learning's table: the pre-update return
at 10k, 25k, 50k and 100k real steps per seed and as mean ± std per setting, next to the published
results) and ``ROOT/curves.png`` (mbmpo.plot, seeds of a setting as mean ± std). Tune's own files,
its TensorBoard logs among them, are in ``ROOT/.tune``. Running the same sweep again continues
every trial where its run directory stopped.

A bad sweep file is refused before any trial starts (SweepError, a ValueError; exit 2), naming the
key. Exit 1 when a trial failed beyond its retries.
"""
import argparse
import dataclasses
import itertools
import json
import math
import numbers
import os
import shutil
import sys
import tempfile
import time
import tomllib

from . import _core
from .training import train

# The sweep's own options in [sweep], with their defaults; every other key there is an axis.
OPTIONS = {"preset": "", "seeds_per_trial": 1, "gpus_per_trial": 0.0, "max_failures": 2, "name": "",
           "table_steps": [10_000, 25_000, 50_000, 100_000]}
SECTIONS = ("train", "sweep")
POINTER = "run_dir.json"  # the file of a Tune checkpoint: which run directory, how far


class SweepError(ValueError):
    """A sweep file or sweep call that cannot run, named by its key."""


@dataclasses.dataclass
class Trial:
    name: str              # also its run directory's name under the sweep's root
    run_dir: str
    preset: str
    settings: dict         # training settings by key, the seed among them for a one-seed trial
    seeds: list            # a group's seeds (mbmpo.train's seeds=), or [] for one seed
    cpus: int
    gpus: float


@dataclasses.dataclass
class SweepResult:
    trials: list
    table: str             # the learning table (Markdown), also in ROOT/learning.md
    table_path: str
    plot_path: str         # ROOT/curves.png, or "" without matplotlib
    failed: list           # names of trials that failed beyond their retries
    results: object        # Tune's ResultGrid


def _fields():
    return {f["key"]: f for f in _core.config_fields()}


def _key(name):
    return str(name).replace("-", "_")


def load(path):
    """The sweep file as a dict of its sections ({"train": {...}, "sweep": {...}})."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as error:
        raise SweepError(f"{path}: cannot read the sweep file: {error.strerror or error}") from None
    except tomllib.TOMLDecodeError as error:
        raise SweepError(f"{path}: not TOML: {error}") from None


def _option(options, key, kind, check, expected):
    value = options.get(key, OPTIONS[key])
    if kind is float and isinstance(value, numbers.Real) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or isinstance(value, bool) or not check(value):
        raise SweepError(f"[sweep] {key}: must be {expected}, got {value!r}")
    return value


def _seed_axis(value):
    if isinstance(value, str):
        try:
            seeds = _core.parse_seeds(value)
        except ValueError as error:
            raise SweepError(f"[sweep] seed = {value!r}: {str(error).replace('--seeds: ', '')}") from None
    elif isinstance(value, list):
        for seed in value:
            if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**64:
                raise SweepError(f"[sweep] seed: seeds must be integers in [0, 2**64), got {seed!r}")
        if len(set(value)) != len(value):
            raise SweepError(f"[sweep] seed: each seed once, got {value}")
        seeds = list(value)
    else:
        raise SweepError(f"[sweep] seed: a list of seeds or a range like \"0-2\", got {value!r}")
    if not seeds:
        raise SweepError("[sweep] seed: an axis needs at least one value")
    return seeds


def _text(value):
    """A value as it appears in a trial's name."""
    if isinstance(value, list):
        return "x".join(_text(v) for v in value)
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _seeds_text(seeds):
    return ",".join(str(s) for s in seeds)


def plan(spec, root):
    """The trials of a sweep (a dict as load() gives, or a sweep file's path), every one checked
    as mbmpo.train would check it; nothing is started or written. SweepError names what is wrong."""
    if not isinstance(spec, dict):
        spec = load(os.fspath(spec))
    for section in spec:
        if section not in SECTIONS:
            raise SweepError(f"[{section}]: unknown section (a sweep file has [train] and [sweep])")
        if not isinstance(spec[section], dict):
            raise SweepError(f"{section}: must be a section ([{section}]), got {spec[section]!r}")
    fields = _fields()
    base = {}
    for key, value in spec.get("train", {}).items():
        if _key(key) not in fields:
            raise SweepError(f"[train] {key}: unknown training setting (mbmpo.config_fields() lists them)")
        if _key(key) in base:
            raise SweepError(f"[train] {key}: given twice (as {key} and its other spelling)")
        base[_key(key)] = value
    options, axes = {}, {}
    for key, value in spec.get("sweep", {}).items():
        if key in OPTIONS:
            options[key] = value
        elif _key(key) in fields:
            if _key(key) in axes:
                raise SweepError(f"[sweep] {key}: given twice (as {key} and its other spelling)")
            axes[_key(key)] = value
        else:
            raise SweepError(f"[sweep] {key}: neither a sweep option ({', '.join(OPTIONS)}) nor a training setting")
    preset = _option(options, "preset", str, lambda v: v in ("", "smoke", "cpu"), "'smoke', 'cpu' or ''")
    per_trial = _option(options, "seeds_per_trial", int, lambda v: 1 <= v <= 64, "an integer in [1, 64]")
    gpus = _option(options, "gpus_per_trial", float,
                   lambda v: math.isfinite(v) and (0 <= v <= 1 or v == int(v) and v <= 64),
                   "a GPU fraction in [0, 1] or a whole number of GPUs")
    _option(options, "max_failures", int, lambda v: v >= -1, "an integer >= 0 (-1: retry forever)")
    _option(options, "name", str, lambda v: "/" not in v and v not in (".", ".."), "a folder name (no '/')")
    _option(options, "table_steps", list,
            lambda v: v and all(isinstance(m, int) and not isinstance(m, bool) and m > 0 for m in v),
            "a list of positive real-step counts, e.g. [10000, 25000]")

    if "seed" in axes and "seed" in base:
        raise SweepError("[sweep] seed: is an axis and also set in [train]; give it in one place")
    seeds = _seed_axis(axes.pop("seed")) if "seed" in axes else [base.get("seed", 0)]
    for key, values in axes.items():
        sizes = isinstance(fields[key]["default"], list)
        if not isinstance(values, list) or (sizes and values and not all(isinstance(v, list) for v in values)):
            hint = "a list of size lists, e.g. [[64, 64], [256, 256]]" if sizes else "a list of values"
            raise SweepError(f"[sweep] {key}: an axis is {hint}; a single value belongs in [train], got {values!r}")
        if not values:
            raise SweepError(f"[sweep] {key}: an axis needs at least one value")
        if key in base:
            raise SweepError(f"[sweep] {key}: is an axis and also set in [train]; give it in one place")

    trials = []
    names = set()
    groups = [seeds[i:i + per_trial] for i in range(0, len(seeds), per_trial)]
    for combo in itertools.product(*axes.values()):
        chosen = dict(zip(axes, combo))
        for group in groups:
            settings = {**base, **chosen}
            parts = [f"{k}={_text(v)}" for k, v in chosen.items()]
            if per_trial == 1:
                settings["seed"] = group[0]
                parts.append(f"seed={group[0]}")
            else:
                settings.pop("seed", None)
                parts.append(f"seeds={_seeds_text(group)}")
            name = ",".join(parts)
            if name in names:
                raise SweepError(f"[sweep]: two trials would both be named {name!r}; give each value once")
            names.add(name)
            try:
                config = json.loads(_core.check_settings(preset, {k: v for k, v in settings.items()}))
            except ValueError as error:
                raise SweepError(f"trial {name}: {error}") from None
            if config["cpu_threads"] == 0:  # a trial holds the CPUs it asked Ray for, not every core
                settings["cpu_threads"] = config["cpu_threads"] = 1
            cpus = config["cpu_threads"] + config["threads"]
            # "auto" trains on CUDA where a GPU is usable: such a trial holds a GPU (or its share).
            cuda = config["device"] == "cuda" or (config["device"] == "auto" and _core.info()["cuda_usable"])
            trial_gpus = (gpus or 1.0) if cuda else 0.0
            trials.append(Trial(name=name, run_dir=os.path.join(os.path.abspath(root), name), preset=preset,
                                settings=settings, seeds=group if per_trial > 1 else [], cpus=cpus,
                                gpus=trial_gpus))
    return trials


def _seed_dirs(run_dir, seeds):
    """The run directories of a trial: its seeds' (RUN_DIR/seed-S) for a group, else its own."""
    return [os.path.join(run_dir, f"seed-{s}") for s in seeds] or [run_dir]


def _holds_checkpoint(trial):
    return any(os.path.isfile(os.path.join(d, "checkpoints", "latest"))
               for d in _seed_dirs(trial["run_dir"], trial["seeds"]))


def _last_row(trial):
    """The newest progress row of a trial that has nothing left to train (its mean over seeds)."""
    rows = []
    for d in _seed_dirs(trial["run_dir"], trial["seeds"]):
        path = os.path.join(d, "progress.jsonl")
        if os.path.exists(path):
            with open(path) as f:
                lines = [line for line in f if line.strip()]
            if lines:
                rows.append(json.loads(lines[-1]))
    return rows


def _mean_row(rows):
    """The numeric columns of the rows (one per seed), averaged; NaN where none has a value."""
    out = {}
    for key in rows[0]:
        values = [r.get(key) for r in rows]
        numbers_ = [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if key == "seed" or not any(isinstance(v, (int, float)) or v is None for v in values):
            continue
        out[key] = sum(numbers_) / len(numbers_) if numbers_ else float("nan")
    out["seeds"] = len(rows)
    return out


def _run_trial(config):
    """Tune's function trainable: one trial, trained by mbmpo.train into its run directory."""
    from ray import tune

    trial = config["trial"]
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:  # a restored trial: the run directory its last report named
        with checkpoint.as_directory() as folder, open(os.path.join(folder, POINTER)) as f:
            trial = {**trial, "run_dir": json.load(f)["run_dir"]}
    resume = _holds_checkpoint(trial)
    if not resume and os.path.exists(trial["run_dir"]):
        shutil.rmtree(trial["run_dir"])  # stopped before its first checkpoint: nothing in it to keep

    def report(rows):
        metrics = _mean_row(rows)
        with tempfile.TemporaryDirectory() as folder:
            with open(os.path.join(folder, POINTER), "w") as f:
                json.dump({"run_dir": trial["run_dir"], "iterations_done": int(metrics["iteration"]) + 1}, f)
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))

    # A group's rows come seed by seed: an iteration is reported once all its seeds' rows are in.
    pending = []
    expected = max(1, len(trial["seeds"]))

    def on_row(row):
        if pending and pending[0]["iteration"] != row["iteration"]:
            report(pending)
            pending.clear()
        pending.append(row)
        if len(pending) == expected:
            report(pending)
            pending.clear()

    rows = train(trial["run_dir"], preset=trial["preset"], resume=resume, on_iteration=on_row, quiet=True,
                 seeds=_seeds_text(trial["seeds"]) if trial["seeds"] else None, **trial["settings"])
    if pending:
        report(pending)
    if not rows:  # already trained as far as asked: its newest row, so that Tune has one
        last = _last_row(trial)
        if last:
            report(last)


def _has_rows(run_dir):
    path = os.path.join(run_dir, "progress.csv")
    if not os.path.exists(path):
        return False
    with open(path) as f:
        return sum(1 for line in f if line.strip()) > 1


def _write_atomically(path, text):
    folder = os.path.dirname(path)
    with tempfile.NamedTemporaryFile("w", dir=folder, prefix=".tmp-", delete=False) as f:
        f.write(text)
    os.replace(f.name, path)


def _spec_and_root(spec, root):
    """The sweep's sections, checked to be sections, and its root folder (default sweeps/NAME)."""
    stem = "sweep"
    if not isinstance(spec, dict):
        stem = os.path.splitext(os.path.basename(os.fspath(spec)))[0]
        spec = load(os.fspath(spec))
    for section, value in spec.items():
        if not isinstance(value, dict):
            raise SweepError(f"{section}: must be a section ([{section}]), got {value!r}")
    name = spec.get("sweep", {}).get("name") or stem
    if not isinstance(name, str):
        raise SweepError(f"[sweep] name: must be a folder name, got {name!r}")
    return spec, os.path.abspath(os.fspath(root) if root is not None else os.path.join("sweeps", name))


def run(spec, root=None, *, address=None, verbose=1):
    """Runs a sweep (a sweep file's path, or a dict of its sections) as Ray Tune trials.

    ``root``: the sweep's folder (default: sweeps/NAME, NAME the [sweep] name or the file's stem).
    ``address``: a running Ray cluster to join ("HOST:PORT", or "auto"); None starts Ray here,
    unless Ray is already running in this process. Returns a SweepResult.
    """
    spec, root = _spec_and_root(spec, root)
    name = spec.get("sweep", {}).get("name") or os.path.basename(root)
    trials = plan(spec, root)
    max_failures = spec.get("sweep", {}).get("max_failures", OPTIONS["max_failures"])
    if os.path.exists(root) and not os.path.isdir(root):
        raise SweepError(f"root {root}: is a file, not a folder")
    try:
        import ray
        from ray import tune
    except ImportError:
        raise ImportError("mbmpo.sweep needs Ray Tune: pip install 'mbmpo[ray]' (or 'ray[tune]')") from None

    os.makedirs(root, exist_ok=True)
    if not ray.is_initialized():
        ray.init(address=address, log_to_driver=verbose > 1)
    if address is None:  # on a cluster of fixed nodes, a trial bigger than all of them would wait forever
        have = ray.cluster_resources()
        for trial in trials:
            if trial.cpus > have.get("CPU", 0) or trial.gpus > have.get("GPU", 0):
                raise SweepError(f"trial {trial.name} asks for {trial.cpus} CPUs (cpu_threads + threads) and "
                                 f"{trial.gpus:g} GPUs, but Ray here has {have.get('CPU', 0):g} CPUs and "
                                 f"{have.get('GPU', 0):g} GPUs: lower threads or cpu_threads")
    by_name = {t.name: t for t in trials}
    trainable = tune.with_resources(
        _run_trial, lambda config: {"cpu": by_name[config["trial"]["name"]].cpus,
                                    "gpu": by_name[config["trial"]["name"]].gpus})
    tuner = tune.Tuner(
        trainable,
        param_space={"trial": tune.grid_search([dataclasses.asdict(t) for t in trials])},
        tune_config=tune.TuneConfig(trial_name_creator=lambda t: t.config["trial"]["name"],
                                    trial_dirname_creator=lambda t: t.config["trial"]["name"]),
        run_config=tune.RunConfig(
            name=f"{name}-{time.strftime('%Y%m%d-%H%M%S')}", storage_path=os.path.join(root, ".tune"),
            failure_config=tune.FailureConfig(max_failures=max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1), verbose=verbose))
    results = tuner.fit()
    failed = sorted(r.config["trial"]["name"] for r in results if r.error is not None)

    from . import learning

    # The runs that have a row (a trial that failed early may have none).
    run_dirs = [d for t in trials for d in _seed_dirs(t.run_dir, t.seeds) if _has_rows(d)]
    table = learning.table(run_dirs, spec.get("sweep", {}).get("table_steps", OPTIONS["table_steps"])) if run_dirs else ""
    table_path = os.path.join(root, "learning.md")
    _write_atomically(table_path, table)
    plot_path = ""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        pass
    else:
        if run_dirs:
            from . import plot, references

            envs = {json.loads(_core.check_settings(t.preset, t.settings))["env"] for t in trials}
            refs = [(source, steps, value) for (env, steps), points in references.POINTS.items() if env in envs
                    for source, value in points]
            plot_path = os.path.join(root, "curves.png")
            plot.plot(run_dirs, plot_path, refs)
    return SweepResult(trials=trials, table=table, table_path=table_path, plot_path=plot_path, failed=failed,
                       results=results)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m mbmpo.sweep", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sweep_file", metavar="SWEEP.toml")
    parser.add_argument("--root", help="the sweep's folder (default sweeps/NAME)")
    parser.add_argument("--address", help="a running Ray cluster to join (HOST:PORT or auto)")
    parser.add_argument("--dry-run", action="store_true", help="check the file and list the trials; start nothing")
    args = parser.parse_args(argv)
    try:
        if args.dry_run:
            spec, root = _spec_and_root(args.sweep_file, args.root)
            for trial in plan(spec, root):
                print(f"{trial.name}: {trial.cpus} CPUs, {trial.gpus:g} GPU -> {trial.run_dir}")
            return 0
        result = run(args.sweep_file, args.root, address=args.address)
    except (SweepError, ValueError) as error:
        print(f"mbmpo.sweep: error: {error}", file=sys.stderr)
        return 2
    except ImportError as error:
        print(f"mbmpo.sweep: {error}", file=sys.stderr)
        return 3
    print(result.table, end="")
    print(f"mbmpo.sweep: {len(result.trials)} trials; table {result.table_path}"
          + (f", curves {result.plot_path}" if result.plot_path else ""))
    if result.failed:
        print(f"mbmpo.sweep: error: {len(result.failed)} trial(s) failed beyond their retries: "
              + ", ".join(result.failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
