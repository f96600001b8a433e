"""The Python package over the build tree (PYTHONPATH=BUILD/python; ctest sets it, and
MBMPO_BINARY to the CLI). CUDA cases skip with the reason without a usable GPU, and fail under
MBMPO_REQUIRE_GPU=1."""
import csv
import json
import os
import struct
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import mbmpo
from random_episodes import random_episodes

BINARY = os.environ.get("MBMPO_BINARY", "build/apps/mbmpo")
# A CI-sized InvertedPendulum run: seconds per iteration on 2 cores (as the C++ tests use).
TINY = dict(env="inverted_pendulum", random_steps=500, horizon=100, eval_episodes=3, models=3, model_hidden=[32, 32],
            model_max_epochs=20, meta_batch=6, rollouts_per_task=10, imagined_horizon=30, meta_steps=4, inner_lr=0.05)


def cli_flags(settings):
    flags = []
    for key, value in settings.items():
        if isinstance(value, list):
            value = ",".join(map(str, value))
        flags += ["--" + key.replace("_", "-"), str(value)]
    return flags


def rows_without_timings(run_dir):
    with open(os.path.join(run_dir, "progress.csv")) as f:
        return [{k: v for k, v in row.items() if not k.startswith("seconds_")} for row in csv.DictReader(f)]


def tensors_of(path):
    """A safetensors file's tensor header and data, without its metadata (the configuration)."""
    data = open(path, "rb").read()
    (size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + size])
    header.pop("__metadata__", None)
    return json.dumps(header, sort_keys=True), data[8 + size:]




def test_info_tasks_and_fields():
    info = mbmpo.info()
    assert info["version"] and "cuda_backend" in info
    # The CPU instruction set in use, as `mbmpo info` prints it.
    assert info["cpu_isa"] and "cpu_arch" in info and "cpu_supports" in info
    assert mbmpo.tasks() == ["half_cheetah", "hopper", "walker2d", "ant", "swimmer", "inverted_pendulum"]
    keys = [f["key"] for f in mbmpo.config_fields()]
    assert "model_hidden" in keys and "max_kl" in keys and "cpu_threads" in keys


def test_type_stubs_ship_next_to_the_extension():
    folder = os.path.dirname(mbmpo._core.__file__)
    stub = open(os.path.join(folder, "_core.pyi")).read()
    assert "class DynamicsEnsemble" in stub and "def train(" in stub
    assert os.path.exists(os.path.join(folder, "py.typed"))


def test_env_is_deterministic_and_answers_to_gymnasium_ids():
    a, b = mbmpo.Env("HalfCheetah-v5", seed=3), mbmpo.Env("half_cheetah", seed=3)
    assert a.task == b.task == "half_cheetah"
    obs_a, _ = a.reset()
    obs_b, _ = b.reset()
    assert obs_a.dtype == np.float32 and obs_a.shape == (17,)
    np.testing.assert_array_equal(obs_a, obs_b)
    action = np.linspace(-1, 1, 6)
    step_a, step_b = a.step(action), b.step(action)
    np.testing.assert_array_equal(step_a[0], step_b[0])
    assert step_a[1:4] == step_b[1:4] and "x_velocity" in step_a[4]
    obs_c, _ = a.reset(seed=3)  # a seed restarts the episode stream
    np.testing.assert_array_equal(obs_c, obs_a)


def test_the_cli_takes_gymnasium_ids_too(tmp_path):
    subprocess.run([BINARY, "train", "--env", "Hopper-v5", "--iterations", "0", "--quiet", "--run-dir",
                    str(tmp_path / "run")], check=True)
    assert 'env="hopper"' in (tmp_path / "run" / "config.toml").read_text()  # stored by its own name


def test_env_truncates_at_its_time_limit():
    env = mbmpo.Env("swimmer", seed=0, max_episode_steps=5)
    env.reset()
    flags = [env.step(np.zeros(2))[3] for _ in range(5)]
    assert flags == [False] * 4 + [True]


@pytest.mark.parametrize("call, message", [
    (lambda: mbmpo.Env("cheetah"), "unknown task 'cheetah'"),
    (lambda: mbmpo.Env("hopper").step(np.zeros(3)), "step before reset"),
    (lambda: mbmpo.Env("hopper", max_episode_steps=0), "max_episode_steps"),
])
def test_bad_env_input_is_a_value_error_naming_it(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_bad_actions_are_value_errors():
    env = mbmpo.Env("hopper")
    env.reset()
    with pytest.raises(ValueError, match=r"action: expected shape \(3,\), got \(4,\)"):
        env.step(np.zeros(4))
    with pytest.raises(ValueError, match="action"):
        env.step(np.array([0.0, np.nan, 0.0]))


# Its warnings (an unbounded observation box, actions not in [-1, 1]) are the ones Gymnasium's own
# MuJoCo tasks give too.
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_check_env_passes_on_every_task():
    gym_env_checker = pytest.importorskip("gymnasium.utils.env_checker")
    from mbmpo.gym import MbmpoEnv

    for task in mbmpo.tasks():
        gym_env_checker.check_env(MbmpoEnv(task), skip_render_check=True)


@pytest.mark.parametrize("settings, message", [
    (dict(bogus=1), "unknown training setting 'bogus'"),
    (dict(models="five"), "training setting 'models'"),
    (dict(model_validation=1.5), "model-validation must be in"),
    (dict(model_activation="gelu"), "model-activation must be one of"),
    (dict(env="nowhere"), "unknown task 'nowhere'"),
    (dict(meta_steps=True), "training setting 'meta_steps'"),
    (dict(first_order=1), "training setting 'first_order'"),
])
def test_bad_settings_are_value_errors_and_write_nothing(tmp_path, settings, message):
    run_dir = tmp_path / "run"
    with pytest.raises(ValueError, match=message):
        mbmpo.train(run_dir, **{**TINY, "iterations": 1, **settings})
    assert not run_dir.exists()


def test_train_from_python_equals_the_cli_and_resumes(tmp_path):
    ours, cli, resumed = tmp_path / "py", tmp_path / "cli", tmp_path / "resumed"
    seen = []
    rows = mbmpo.train(ours, iterations=2, device="cpu", on_iteration=seen.append, **TINY)
    assert len(rows) == 2 and seen == rows
    subprocess.run([BINARY, "train", "--iterations", "2", "--device", "cpu", "--quiet", "--run-dir", str(cli)]
                   + cli_flags(TINY), check=True)
    assert rows_without_timings(ours) == rows_without_timings(cli)
    assert tensors_of(ours / "policy.safetensors") == tensors_of(cli / "policy.safetensors")
    # One iteration, then resume to two: the same as two at once.
    mbmpo.train(resumed, iterations=1, device="cpu", quiet=True, **TINY)
    mbmpo.train(resumed, iterations=2, quiet=True, resume=True)  # the run's own settings, as the CLI's --resume
    assert rows_without_timings(resumed) == rows_without_timings(ours)
    # eval from Python equals the CLI's, with and without adaptation.
    for adapt in (False, True):
        ours_eval = mbmpo.eval(str(ours), episodes=3, adapt=adapt)
        flags = ["--adapt"] if adapt else []
        cli_eval = json.loads(subprocess.run([BINARY, "eval", "--run-dir", str(cli), "--episodes", "3", "--json"] + flags,
                                             check=True, capture_output=True, text=True).stdout)
        assert ours_eval["returns"] == cli_eval["returns"] and ours_eval["adapted"] == adapt
    with pytest.raises(ValueError, match=r"episodes must be in \[1, 1000000\], got 0"):
        mbmpo.eval(str(ours), episodes=0)
    # The config.toml written from Python is one the CLI reads.
    subprocess.run([BINARY, "train", "--config", str(ours / "config.toml"), "--iterations", "0", "--quiet",
                    "--run-dir", str(tmp_path / "from_toml")], check=True)


def test_ctrl_c_stops_training_and_keeps_the_checkpoints(tmp_path):
    run_dir = tmp_path / "run"
    script = (f"import mbmpo; mbmpo.train({str(run_dir)!r}, iterations=50, device='cpu', quiet=True, "
              f"**{TINY!r})")
    child = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (run_dir / "progress.csv").exists() or len(rows_without_timings(run_dir)) < 1:
        assert child.poll() is None and time.monotonic() < deadline, "training ended or stalled before a row"
        time.sleep(0.05)
    child.send_signal(signal.SIGINT)
    _, stderr = child.communicate(timeout=120)
    assert child.returncode != 0 and "KeyboardInterrupt" in stderr
    done = len(rows_without_timings(run_dir))
    assert 1 <= done < 50
    rows = mbmpo.train(run_dir, iterations=done + 1, device="cpu", quiet=True, resume=True, **TINY)
    assert [row["iteration"] for row in rows] == [done]


def read_safetensors(path):
    data = open(path, "rb").read()
    (size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + size])
    header.pop("__metadata__", None)
    body = data[8 + size:]
    return {name: np.frombuffer(body[e["data_offsets"][0]:e["data_offsets"][1]],
                                dtype=np.float32 if e["dtype"] == "F32" else np.int64).reshape(e["shape"])
            for name, e in header.items()}


def numpy_predict(tensors, obs, act, model_of_row, layers):
    """The ensemble's prediction written out in NumPy from its saved file: an independent check."""
    n = tensors
    x = (np.concatenate([obs, act], axis=1) - n["normalization.input_mean"]) / (n["normalization.input_std"] + 1e-10)
    out = np.empty_like(obs)
    for r, k in enumerate(model_of_row):
        h = x[r].astype(np.float64)
        for l in range(layers):
            v, g, b = n[f"layer{l}.v"][k], n[f"layer{l}.g"][k], n[f"layer{l}.b"][k]
            h = (g / np.linalg.norm(v, axis=1))[:, None] * v @ h + b
            if l + 1 < layers:
                h = np.maximum(h, 0)
        out[r] = obs[r] + h * (n["normalization.delta_std"] + 1e-10) + n["normalization.delta_mean"]
    return out


def test_ensemble_fits_predicts_in_place_and_matches_numpy(tmp_path):
    data = mbmpo.Dataset(11, 3, capacity=5000)
    for episode in random_episodes("hopper", 6, 100):
        data.add(*episode)
    assert len(data) > 50
    data.save(str(tmp_path / "data.bin"))
    assert len(mbmpo.Dataset.load(str(tmp_path / "data.bin"))) == len(data)
    ensemble = mbmpo.DynamicsEnsemble(11, 3, models=3, hidden=[32, 24], seed=1, device="cpu")
    report = ensemble.fit(data, max_epochs=5, batch_size=64)
    assert len(report["validation_loss"]) == 3 and all(np.isfinite(report["validation_loss"]))

    obs, act, _, _, _ = random_episodes("hopper", 1, 40, seed=7)[0]
    model_of_row = [r % 3 for r in range(len(obs))]
    out = np.full_like(obs, np.nan)
    result = ensemble.predict(obs, act, out=out, model_of_row=model_of_row)
    assert result is out and np.all(np.isfinite(out))  # written in place: no copy on the way out
    allocated = ensemble.predict(obs, act)
    np.testing.assert_array_equal(allocated, out)
    ensemble.save(str(tmp_path / "models.safetensors"))
    expected = numpy_predict(read_safetensors(tmp_path / "models.safetensors"), obs, act, model_of_row, 3)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)
    again = mbmpo.DynamicsEnsemble(11, 3, models=3, hidden=[32, 24], device="cpu")
    again.load_weights(str(tmp_path / "models.safetensors"))
    np.testing.assert_array_equal(again.predict(obs, act), out)


def test_bad_arrays_are_value_errors_naming_the_argument():
    ensemble = mbmpo.DynamicsEnsemble(11, 3, models=2, hidden=[8], device="cpu")
    obs, act = np.zeros((4, 11), np.float32), np.zeros((4, 3), np.float32)
    cases = [
        (dict(obs=obs.astype(np.float64), act=act), "obs: expected dtype float32"),
        (dict(obs=obs, act=np.zeros((5, 3), np.float32)), r"act: expected shape \(4, 3\), got \(5, 3\)"),
        (dict(obs=np.zeros((4, 22), np.float32)[:, ::2], act=act), "obs: expected a C-contiguous array"),
        (dict(obs=obs, act=act, out=np.zeros((4, 10), np.float32)), "out: expected shape"),
        (dict(obs=obs, act=act, model_of_row=[0, 1, 2, 0]), r"model_of_row\[2\] is 2, not one of the 2 models"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            ensemble.predict(**kwargs)
    data = mbmpo.Dataset(11, 3)
    nan_obs = np.zeros((2, 11), np.float32)
    nan_obs[1, 4] = np.nan
    with pytest.raises(ValueError, match="obs: contains NaN"):
        data.add(nan_obs, np.zeros((2, 3), np.float32), np.zeros((2, 11), np.float32), np.zeros(2, np.float32),
                 np.zeros(2, bool))
    with pytest.raises(ValueError, match="done: expected a contiguous bool array"):
        data.add(np.zeros((2, 11), np.float32), np.zeros((2, 3), np.float32), np.zeros((2, 11), np.float32),
                 np.zeros(2, np.float32), np.zeros(2, np.int32))
    with pytest.raises(ValueError, match="activation must be"):
        mbmpo.DynamicsEnsemble(11, 3, activation="gelu")


def test_read_only_zero_size_and_threaded_calls():
    ensemble = mbmpo.DynamicsEnsemble(11, 3, models=2, hidden=[16], device="cpu")
    rng = np.random.default_rng(0)
    obs, act = rng.standard_normal((300, 11), np.float32), rng.standard_normal((300, 3), np.float32)
    obs.flags.writeable = False  # inputs are only read: read-only arrays are fine
    expected = ensemble.predict(obs, act)
    out = np.zeros((300, 11), np.float32)
    out.flags.writeable = False
    with pytest.raises(ValueError, match="out: the array is read-only"):
        ensemble.predict(obs, act, out=out)
    assert ensemble.predict(obs[:0], act[:0]).shape == (0, 11)
    # Two threads on one ensemble take turns (a lock per device), and get the same results.
    import threading

    results, errors = [], []

    def work():
        try:
            for n in (300, 7, 150, 300):
                results.append((n, ensemble.predict(np.ascontiguousarray(obs[:n]), np.ascontiguousarray(act[:n]))))
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 8
    serial = {n: ensemble.predict(np.ascontiguousarray(obs[:n]), np.ascontiguousarray(act[:n])) for n in (7, 150, 300)}
    for n, result in results:  # (a row's bits may depend on how many rows share its products, not on threads)
        np.testing.assert_array_equal(result, serial[n])


def test_mismatched_policy_calls_are_value_errors():
    ensemble = mbmpo.DynamicsEnsemble(11, 3, models=2, hidden=[8], device="cpu")
    policy = mbmpo.GaussianPolicy(11, 3, hidden=[4])
    theta = policy.initial_parameters()
    params, start = np.tile(theta, (2, 1)), np.zeros((2, 3, 11), np.float32)
    a = mbmpo.imagined_rollout(ensemble, "hopper", policy, params, start, 5)
    b = mbmpo.imagined_rollout(ensemble, "hopper", policy, params, start, 5, draw=1)
    adv_a, adv_b = mbmpo.compute_advantages(a), mbmpo.compute_advantages(b)
    with pytest.raises(ValueError, match="advantages: these advantages were computed from other trajectories"):
        mbmpo.inner_step(policy, theta, a, adv_b, 0.1)
    with pytest.raises(ValueError, match="policy: it has obs/act sizes 17/6"):
        mbmpo.inner_step(mbmpo.GaussianPolicy(17, 6), np.zeros(mbmpo.GaussianPolicy(17, 6).parameter_count,
                                                                 np.float32), a, adv_a, 0.1)
    with pytest.raises(ValueError, match="params: expected one row per task"):
        mbmpo.imagined_rollout(ensemble, "hopper", policy, params[:0], start[:0], 5)
    adapted = mbmpo.inner_step(policy, theta, a, adv_a, 0.1)
    read_only = theta.copy()
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match="theta: the array is read-only"):
        mbmpo.meta_update(policy, read_only, adapted, a, adv_a, b, adv_b, inner_lr=0.1)
    with pytest.raises(ValueError, match="post_advantages"):
        mbmpo.meta_update(policy, theta, adapted, a, adv_a, b, adv_a, inner_lr=0.1)


def test_ensemble_predicts_torch_cuda_tensors_in_place(cuda):
    torch = pytest.importorskip("torch")
    ensemble = mbmpo.DynamicsEnsemble(11, 3, models=2, hidden=[16], device="cuda")
    cpu = mbmpo.DynamicsEnsemble(11, 3, models=2, hidden=[16], device="cpu")
    obs = torch.randn(37, 11, device="cuda")
    act = torch.randn(37, 3, device="cuda")
    out = torch.full_like(obs, float("nan"))
    assert ensemble.predict(obs, act, out=out) is out
    expected = cpu.predict(obs.cpu().numpy(), act.cpu().numpy())
    np.testing.assert_allclose(out.cpu().numpy(), expected, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="expected an array on the device in use"):
        ensemble.predict(obs.cpu().numpy(), act.cpu().numpy())


def meta_step(seed=0):
    """One MB-MPO meta-step, call by call, on the CPU: the fitted ensemble, the rollouts before and
    after the inner step, advantages and the meta-update. Returns (theta before, theta after, report)."""
    data = mbmpo.Dataset(11, 3, capacity=5000)
    for episode in random_episodes("hopper", 6, 100):
        data.add(*episode)
    ensemble = mbmpo.DynamicsEnsemble(11, 3, models=3, hidden=[32, 32], seed=1, device="cpu")
    ensemble.fit(data, max_epochs=10, batch_size=64)
    policy = mbmpo.GaussianPolicy(11, 3, hidden=[16, 16])
    theta = policy.initial_parameters(seed=seed)
    tasks, rollouts, horizon, alpha = 3, 8, 20, 0.05
    params = np.tile(theta, (tasks, 1))
    start = np.ascontiguousarray(np.stack([random_episodes("hopper", 1, 1, seed=s)[0][0][0] for s in range(tasks * rollouts)])
                                 .reshape(tasks, rollouts, 11))
    pre = mbmpo.imagined_rollout(ensemble, "Hopper-v5", policy, params, start, horizon, seed=seed, draw=0)
    pre_adv = mbmpo.compute_advantages(pre)
    adapted = mbmpo.inner_step(policy, theta, pre, pre_adv, alpha)
    post = mbmpo.imagined_rollout(ensemble, "hopper", policy, adapted, start, horizon, seed=seed, draw=1)
    post_adv = mbmpo.compute_advantages(post)
    before = theta.copy()
    report = mbmpo.meta_update(policy, theta, adapted, pre, pre_adv, post, post_adv, inner_lr=alpha, max_kl=0.01)
    return pre, before, theta, report


def test_one_meta_step_call_by_call():
    pre, before, after, report = meta_step()
    assert pre.obs.shape == (3, 8, 20, 11) and pre.act.shape == (3, 8, 20, 3) and pre.valid.shape == (3, 8, 20)
    assert np.all(pre.valid[:, :, 0] == 1)
    assert report["accepted"] and 0 < report["kl"] <= 0.01 * 1.5
    assert report["surrogate_after"] > report["surrogate_before"]
    assert not np.array_equal(before, after)  # theta was updated in place
    _, _, again, _ = meta_step()
    np.testing.assert_array_equal(after, again)  # the same bits from the same seeds


def test_bad_policy_arrays_are_value_errors():
    ensemble = mbmpo.DynamicsEnsemble(11, 3, models=2, hidden=[8], device="cpu")
    policy = mbmpo.GaussianPolicy(11, 3, hidden=[4])
    theta = policy.initial_parameters()
    start = np.zeros((2, 3, 11), np.float32)
    with pytest.raises(ValueError, match="params: expected shape"):
        mbmpo.imagined_rollout(ensemble, "hopper", policy, theta, start, 5)
    with pytest.raises(ValueError, match="start_obs: expected shape"):
        mbmpo.imagined_rollout(ensemble, "hopper", policy, np.tile(theta, (3, 1)), start, 5)
    with pytest.raises(ValueError, match="task half_cheetah has obs/act sizes 17/6"):
        mbmpo.imagined_rollout(ensemble, "half_cheetah", policy, np.tile(theta, (2, 1)), start, 5)


def test_the_readme_example_runs():
    example = os.path.join(os.path.dirname(__file__), "..", "examples", "meta_step.py")
    run = subprocess.run([sys.executable, example], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[-1].startswith("True ")  # the meta-step was accepted


def test_plot_writes_a_png_from_a_real_run(tmp_path):
    pytest.importorskip("matplotlib")
    from mbmpo import plot

    runs = []
    for seed in (0, 1):
        run_dir = tmp_path / f"s{seed}"
        mbmpo.train(run_dir, iterations=2, device="cpu", seed=seed, quiet=True, **TINY)
        runs.append(str(run_dir))
    out = tmp_path / "curves.png"
    assert plot.main(runs + ["-o", str(out), "--ref", "RLlib 1k=50"]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plot.main([str(tmp_path), "-o", str(out)]) == 2  # not a run directory
    group = tmp_path / "group"
    subprocess.run([BINARY, "train", "--seeds", "0,1", "--iterations", "1", "--device", "cpu", "--quiet", "--run-dir",
                    str(group)] + cli_flags(TINY), check=True)
    assert [label for label, _ in plot.group_runs([str(group)])] == ["inverted_pendulum (2 seeds)"]
    assert plot.parse_ref("RLlib 100k=517") == ("RLlib", 100000.0, 517.0)


def test_train_several_seeds_in_one_process_equals_separate_runs(tmp_path):
    group, killed = tmp_path / "group", tmp_path / "killed"
    rows = mbmpo.train(group, iterations=2, device="cpu", quiet=True, seeds="3,5", **TINY)
    assert sorted((r["seed"], r["iteration"]) for r in rows) == [(3, 0), (3, 1), (5, 0), (5, 1)]
    for seed in (3, 5):
        alone = tmp_path / f"alone-{seed}"
        mbmpo.train(alone, iterations=2, device="cpu", quiet=True, seed=seed, **TINY)
        assert rows_without_timings(group / f"seed-{seed}") == rows_without_timings(alone)
        assert tensors_of(group / f"seed-{seed}" / "policy.safetensors") == tensors_of(alone / "policy.safetensors")
    # Resumed as a group from one iteration (a list of seeds this time): the same files.
    mbmpo.train(killed, iterations=1, device="cpu", quiet=True, seeds=[3, 5], **TINY)
    mbmpo.train(killed, iterations=2, device="cpu", quiet=True, seeds=[3, 5], resume=True)
    for seed in (3, 5):
        assert rows_without_timings(killed / f"seed-{seed}") == rows_without_timings(group / f"seed-{seed}")
    for bad, error in [("", ValueError), ([], ValueError), ("1-0", ValueError), ([1, "2"], TypeError), (7, TypeError)]:
        with pytest.raises(error, match="seeds"):
            mbmpo.train(tmp_path / "bad", iterations=1, device="cpu", quiet=True, seeds=bad, **TINY)
    assert not (tmp_path / "bad").exists()


def test_train_on_cuda(tmp_path, cuda):
    rows = mbmpo.train(tmp_path / "run", iterations=1, device="cuda", quiet=True, **TINY)
    assert len(rows) == 1 and np.isfinite(rows[0]["imagined_return_pre"])


def test_posture_reports_a_planar_policy_and_refuses_others(tmp_path, capsys):
    from mbmpo import posture
    run = tmp_path / "cheetah"
    mbmpo.train(run, env="half_cheetah", iterations=0, quiet=True, device="cpu")
    task, rows = posture.posture(str(run / "policy.safetensors"), episodes=2, steps=20)
    assert task == "half_cheetah" and [row[0] for row in rows] == [0, 1]
    for _, total, on_back, low, high, velocity in rows:
        assert 0.0 <= on_back <= 1.0 and low <= high and np.isfinite(total) and np.isfinite(velocity)
    assert posture.main([str(run / "policy.safetensors"), "--steps", "5"]) == 0
    assert "on its back" in capsys.readouterr().out
    pendulum = tmp_path / "pendulum"
    mbmpo.train(pendulum, env="inverted_pendulum", iterations=0, quiet=True, device="cpu")
    assert posture.main([str(pendulum / "policy.safetensors")]) == 2
    assert "not a planar runner" in capsys.readouterr().err
