"""mbmpo.sweep on a Ray cluster of this machine: trials equal the CLI's runs byte for byte, a trial
whose worker or node is killed is retried by Tune and ends with an uninterrupted run's files, and
bad sweep files are refused before anything starts.

One cluster for the module (Ray's start takes 10-30 s on 2 cores): a head without CPUs and two
nodes of 2 logical CPUs, so that every trial runs on a node that can be killed.
"""
import csv
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

if os.environ.get("MBMPO_TEST_SECOND_PATH") == "1":
    pytest.skip("the sweep runs the Python package, tested on the first instruction-set path", allow_module_level=True)
ray = pytest.importorskip("ray", reason="Ray is not installed (scripts/setup.sh puts ray[tune] into .venv)")
psutil = pytest.importorskip("psutil")
from ray.cluster_utils import Cluster  # noqa: E402

import mbmpo  # noqa: E402
from mbmpo import learning, references, sweep  # noqa: E402

BINARY = os.environ.get("MBMPO_BINARY", "build/apps/mbmpo")
# A CI-sized run: inverted_pendulum at the smoke preset with one sampler thread (a trial asks for
# cpu_threads + threads = 2 CPUs, one node's worth).
TRAIN = {"env": "inverted_pendulum", "threads": 1}
CLI_FLAGS = ["--preset", "smoke", "--env", "inverted_pendulum", "--threads", "1", "--cpu-threads", "1", "--quiet"]
# What an uninterrupted run and its retried twin must share, byte for byte.
FINAL_FILES = ("policy.safetensors", "progress.jsonl")


@pytest.fixture(scope="module")
def cluster():
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    nodes = [c.add_node(num_cpus=2), c.add_node(num_cpus=2)]
    c.wait_for_nodes()
    ray.init(address=c.address, log_to_driver=False)
    yield c, nodes
    ray.shutdown()
    c.shutdown()


@pytest.fixture(scope="module")
def cli_runs(tmp_path_factory):
    """The CLI's run of a seed for some iterations, made once."""
    made = {}
    root = tmp_path_factory.mktemp("cli")

    def run(seed, iterations):
        if (seed, iterations) not in made:
            run_dir = root / f"s{seed}-i{iterations}"
            subprocess.run([BINARY, "train", *CLI_FLAGS, "--seed", str(seed), "--iterations", str(iterations),
                            "--run-dir", str(run_dir)], check=True)
            made[(seed, iterations)] = run_dir
        return made[(seed, iterations)]
    return run


def spec(iterations, seed, **options):
    return {"train": {**TRAIN, "iterations": iterations},
            "sweep": {"preset": "smoke", "seed": seed, **options}}


def rows_of(run_dir):
    """progress.jsonl without the timings (seconds_*), which differ from run to run."""
    import json
    with open(Path(run_dir) / "progress.jsonl") as f:
        return [{k: v for k, v in json.loads(line).items() if not k.startswith("seconds_")} for line in f if line.strip()]


def assert_same_run(ours, theirs):
    assert (Path(ours) / "policy.safetensors").read_bytes() == (Path(theirs) / "policy.safetensors").read_bytes()
    assert rows_of(ours) == rows_of(theirs)
    latest = (Path(theirs) / "checkpoints" / "latest").read_text().strip()
    assert (Path(ours) / "checkpoints" / "latest").read_text().strip() == latest
    for name in ("policy.safetensors", "models.safetensors", "dataset.bin"):
        assert (Path(ours) / "checkpoints" / latest / name).read_bytes() == \
            (Path(theirs) / "checkpoints" / latest / name).read_bytes(), name


def test_two_trials_equal_the_cli_runs_and_the_table_equals_progress(cluster, cli_runs, tmp_path):
    c, _ = cluster
    result = sweep.run(spec(2, "0-1", table_steps=[2000, 2500]), tmp_path / "sweep", address=c.address, verbose=0)
    assert not result.failed
    assert [t.name for t in result.trials] == ["seed=0", "seed=1"]
    for trial, seed in zip(result.trials, (0, 1)):
        assert_same_run(trial.run_dir, cli_runs(seed, 2))
    # Each reported row reached Tune, with the run directory as its checkpoint.
    for r in result.results:
        assert r.metrics["training_iteration"] == 2 and r.checkpoint is not None
    # The table's cells are the runs' progress.csv values.
    table = (tmp_path / "sweep" / "learning.md").read_text()
    assert table == result.table
    for trial in result.trials:
        with open(Path(trial.run_dir) / "progress.csv") as f:
            points = [(float(r["real_steps"]), float(r["return_pre_mean"]), 0.0) for r in csv.DictReader(f)]
        line = next(line for line in table.splitlines() if f"| {trial.name} |" in line)
        cells = [c.strip() for c in line.split("|")[3:5]]
        expected = [references.value_at(points, m) for m in (2000, 2500)]
        assert cells == ["" if v is None else str(round(v)) for v in expected], (line, points)
        assert any(v is not None for v in expected), "the marks are meant to fall inside the runs"
    assert "**mean ± std**" in table
    assert Path(result.plot_path).stat().st_size > 10_000
    # Run again: every trial is already done, nothing is trained, the files stay.
    before = (Path(result.trials[0].run_dir) / "policy.safetensors").read_bytes()
    again = sweep.run(spec(2, "0-1"), tmp_path / "sweep", address=c.address, verbose=0)
    assert not again.failed
    assert (Path(result.trials[0].run_dir) / "policy.safetensors").read_bytes() == before
    assert rows_of(result.trials[0].run_dir) == rows_of(cli_runs(0, 2))


def raylet_pids(node):
    return [p.process.pid for p in node.all_processes[ray._private.ray_constants.PROCESS_TYPE_RAYLET]]


def trial_workers(c):
    """The processes running trials (Tune's function trainables) on this test's cluster, not on
    any other Ray of the machine."""
    raylets = {pid for node in c.worker_nodes for pid in raylet_pids(node)}
    return [p for p in psutil.process_iter(["cmdline", "ppid"])
            if p.info["cmdline"] and "ImplicitFunc" in " ".join(p.info["cmdline"]) and p.info["ppid"] in raylets]


def kill_after_first_checkpoint(c, run_dir, kill, seen):
    """In the background: once run_dir has its first checkpoint, kill(worker process) once."""
    def watch():
        deadline = time.time() + 240
        while time.time() < deadline:
            if (Path(run_dir) / "checkpoints" / "latest").exists():
                workers = trial_workers(c)
                if workers:
                    seen.append(kill(workers[0]))
                    return
            time.sleep(0.05)
    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_a_killed_worker_is_retried_and_ends_as_an_uninterrupted_run(cluster, cli_runs, tmp_path):
    c, _ = cluster
    root = tmp_path / "sweep"
    seen = []
    watcher = kill_after_first_checkpoint(c, root / "seed=0", lambda p: (p.send_signal(signal.SIGKILL), p.pid)[1], seen)
    result = sweep.run(spec(3, [0]), root, address=c.address, verbose=0)
    watcher.join(timeout=5)
    assert seen, "the worker was not killed (the trial ended before its first checkpoint was seen)"
    assert not psutil.pid_exists(seen[0]) or psutil.Process(seen[0]).status() == psutil.STATUS_ZOMBIE
    assert not result.failed
    (r,) = list(result.results)
    assert r.metrics["iteration"] == 2  # the last of 3 iterations, reported after the retry
    assert_same_run(result.trials[0].run_dir, cli_runs(0, 3))


def test_a_killed_node_is_retried_on_the_other_and_ends_as_an_uninterrupted_run(cluster, cli_runs, tmp_path):
    c, nodes = cluster
    root = tmp_path / "sweep"
    seen = []

    def kill_node(worker):
        raylet = worker.ppid()
        for node in list(c.worker_nodes):
            if raylet in raylet_pids(node):
                c.remove_node(node, allow_graceful=False)
                return raylet
        raise AssertionError(f"no node of the cluster runs raylet {raylet}")

    watcher = kill_after_first_checkpoint(c, root / "seed=1", kill_node, seen)
    result = sweep.run(spec(3, [1]), root, address=c.address, verbose=0)
    watcher.join(timeout=5)
    assert seen, "the node was not killed"
    assert len(c.worker_nodes) == 1
    assert not result.failed
    assert_same_run(result.trials[0].run_dir, cli_runs(1, 3))
    c.add_node(num_cpus=2)


BAD_SWEEPS = [
    ({"train": {"bogus": 1}}, "bogus"),
    ({"sweep": {"bogus": [1, 2]}}, "bogus"),
    ({"extra": {}}, "extra"),
    ({"sweep": {"inner_lr": []}}, "inner_lr"),
    ({"sweep": {"inner_lr": 0.01}}, "inner_lr"),
    ({"sweep": {"seed": "2-x"}}, "seed"),
    ({"sweep": {"seed": []}}, "seed"),
    ({"sweep": {"seed": [0, 0]}}, "seed"),
    ({"sweep": {"inner_lr": [0.01, 1e30]}}, "inner"),
    ({"sweep": {"models": [3, 0]}}, "models"),
    ({"sweep": {"model_hidden": [64, 64]}}, "model_hidden"),
    ({"train": {"env": "nope"}}, "nope"),
    ({"sweep": {"threads": [1, 0]}}, "threads"),
    ({"sweep": {"seeds_per_trial": 0}}, "seeds_per_trial"),
    ({"sweep": {"gpus_per_trial": 1.5}}, "gpus_per_trial"),
    ({"sweep": {"max_failures": "2"}}, "max_failures"),
    ({"sweep": {"table_steps": []}}, "table_steps"),
    ({"train": {"iterations": 2}, "sweep": {"iterations": [1, 2]}}, "iterations"),
    ({"train": {"model-hidden": [8], "model_hidden": [8]}}, "model_hidden"),
    ({"sweep": {"gpus_per_trial": float("nan")}}, "gpus_per_trial"),
    ({"train": {"seed": 3}, "sweep": {"seed": "0-1"}}, "seed"),
    ({"sweep": {"name": ".."}}, "name"),
    ({"sweep": 3}, "sweep"),
]


@pytest.mark.parametrize("bad, needle", BAD_SWEEPS, ids=[n for _, n in BAD_SWEEPS])
def test_a_bad_sweep_is_refused_before_anything_starts(bad, needle, tmp_path):
    bad = {"train": {**TRAIN, **bad.get("train", {})}, **{k: v for k, v in bad.items() if k != "train"}}
    bad["sweep"] = bad.get("sweep", {}) if isinstance(bad.get("sweep", {}), dict) else bad["sweep"]
    with pytest.raises(sweep.SweepError, match=needle):
        sweep.run(bad, tmp_path / "sweep")
    assert not (tmp_path / "sweep").exists()


def test_the_command_line_refuses_a_bad_file_with_exit_2(tmp_path):
    for text, needle in [('[train]\nenv = "hopper"\n[sweep]\nseed = "3-1,x"\n', "seed"),
                         ('[train]\nenv = "hopper"\nmodels = = 3\n', "not TOML"),
                         ('[train]\nenv = "hopper"\n[sweep]\nmodel_hidden = [[64], [0]]\n', "model_hidden")]:
        path = tmp_path / "bad.toml"
        path.write_text(text)
        result = subprocess.run([sys.executable, "-m", "mbmpo.sweep", str(path), "--root", str(tmp_path / "r")],
                                capture_output=True, text=True)
        assert result.returncode == 2, result.stderr
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and needle in lines[0], result.stderr
        assert not (tmp_path / "r").exists()
    path.write_text('[train]\nenv = "hopper"\n[sweep]\nseed = "0-3"\nseeds_per_trial = 2\n')
    result = subprocess.run([sys.executable, "-m", "mbmpo.sweep", str(path), "--dry-run"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert [line.split(":")[0] for line in result.stdout.splitlines()] == ["seeds=0,1", "seeds=2,3"]
