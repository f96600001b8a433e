"""The Python package over the build tree (PYTHONPATH=BUILD/python; ctest sets it, and
MBMPO_BINARY to the CLI). CUDA cases skip with the reason without a usable GPU, and fail under
MBMPO_REQUIRE_GPU=1."""
import csv
import json
import os
import struct
import subprocess

import numpy as np
import pytest

import mbmpo

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


def require_cuda():
    info = mbmpo.info()
    if not info["cuda_usable"]:
        if os.environ.get("MBMPO_REQUIRE_GPU") == "1":
            pytest.fail("MBMPO_REQUIRE_GPU=1 but no CUDA device is usable: " + info["cuda_reason"])
        pytest.skip("CUDA case skipped, no usable device: " + info["cuda_reason"])


def test_info_tasks_and_fields():
    info = mbmpo.info()
    assert info["version"] and "cuda_backend" in info
    assert mbmpo.tasks() == ["half_cheetah", "hopper", "walker2d", "ant", "swimmer", "inverted_pendulum"]
    keys = [f["key"] for f in mbmpo.config_fields()]
    assert "model_hidden" in keys and "max_kl" in keys and "cpu_threads" in keys


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
    mbmpo.train(resumed, iterations=2, device="cpu", quiet=True, resume=True, **TINY)
    assert rows_without_timings(resumed) == rows_without_timings(ours)
    # The config.toml written from Python is one the CLI reads.
    subprocess.run([BINARY, "train", "--config", str(ours / "config.toml"), "--iterations", "0", "--quiet",
                    "--run-dir", str(tmp_path / "from_toml")], check=True)


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
    assert plot.parse_ref("RLlib 100k=517") == ("RLlib", 100000.0, 517.0)


def test_train_on_cuda(tmp_path):
    require_cuda()
    rows = mbmpo.train(tmp_path / "run", iterations=1, device="cuda", quiet=True, **TINY)
    assert len(rows) == 1 and np.isfinite(rows[0]["imagined_return_pre"])
