"""What a run leaves, used from Python: the self-describing policy file read by the `safetensors`
package and run in NumPy as torch.nn.Sequential would run it, mbmpo.Policy, the final models read
back by DynamicsEnsemble.load with each model's prediction and their disagreement, and the
dataset read back as arrays. CUDA cases skip with the reason without a usable GPU."""
import json
import os
import shutil

import numpy as np
import pytest

import mbmpo


def safetensors():
    """The `safetensors` package (python/requirements.txt), as a user reads the files with it."""
    return pytest.importorskip("safetensors.numpy"), pytest.importorskip("safetensors").safe_open

# A CI-sized run: InvertedPendulum (obs 4, act 1), two iterations, seconds on 2 cores.
SETTINGS = dict(env="inverted_pendulum", random_steps=500, horizon=100, eval_episodes=3, models=3,
                model_hidden=[32, 32], model_max_epochs=20, meta_batch=6, rollouts_per_task=10, imagined_horizon=30,
                meta_steps=2, inner_lr=0.05, iterations=2, policy_hidden=[16, 8], device="cpu", quiet=True)




@pytest.fixture(scope="module")
def run(tmp_path_factory):
    path = tmp_path_factory.mktemp("trained") / "run"
    mbmpo.train(str(path), **SETTINGS)
    return path


def numpy_policy_mean(tensors, obs):
    """torch.nn.Sequential(Linear, Tanh, Linear, Tanh, Linear) on the state_dict's names, in NumPy."""
    layers = sorted({int(name.split(".")[0]) for name in tensors if name != "log_std"})
    h = obs.astype(np.float64)
    for i, index in enumerate(layers):
        h = h @ tensors[f"{index}.weight"].astype(np.float64).T + tensors[f"{index}.bias"]
        if i + 1 < len(layers):
            h = np.tanh(h)
    return h


def test_the_policy_file_describes_itself_and_runs_as_a_torch_sequential(run):
    safetensors_numpy, safe_open = safetensors()
    tensors = safetensors_numpy.load_file(str(run / "policy.safetensors"))
    shapes = {name: list(t.shape) for name, t in tensors.items()}
    assert shapes == {"0.weight": [16, 4], "0.bias": [16], "2.weight": [8, 16], "2.bias": [8], "4.weight": [1, 8],
                      "4.bias": [1], "log_std": [1]}
    with safe_open(str(run / "policy.safetensors"), "np") as f:
        meta = f.metadata()
    assert meta["format"] == "mbmpo.policy.v2" and meta["env"] == "inverted_pendulum"
    assert meta["architecture"].startswith("torch.nn.Sequential(Linear(4, 16), Tanh(), Linear(16, 8), Tanh(), "
                                           "Linear(8, 1))")
    assert json.loads(meta["config"])["policy_hidden"] in ([16, 8], "16,8")

    policy = mbmpo.Policy.load(run / "policy.safetensors")
    obs = np.random.default_rng(0).uniform(-1, 1, (257, 4)).astype(np.float32)
    expected = np.clip(numpy_policy_mean(tensors, obs), -3, 3)
    np.testing.assert_allclose(policy.predict(obs), expected, rtol=1e-5, atol=1e-5)
    # Policy.parameters are the file's tensors, and theta their flat concatenation in layer order.
    assert set(policy.parameters) == set(tensors)
    for name, value in policy.parameters.items():
        np.testing.assert_array_equal(value, tensors[name])
    flat = np.concatenate([tensors[n].ravel() for n in ("0.weight", "0.bias", "2.weight", "2.bias", "4.weight",
                                                          "4.bias", "log_std")])
    np.testing.assert_array_equal(policy.theta, flat)


def test_policy_loads_from_a_run_a_checkpoint_or_a_file_and_saves(run, tmp_path):
    from_run = mbmpo.Policy.load(str(run))
    latest = (run / "checkpoints" / "latest").read_text().strip()
    from_checkpoint = mbmpo.Policy.load(run / "checkpoints" / latest)
    from_file = mbmpo.Policy.load(run / "policy.safetensors", device="cpu")
    np.testing.assert_array_equal(from_run.theta, from_file.theta)
    np.testing.assert_array_equal(from_checkpoint.theta, from_file.theta)
    # checkpoints/latest, the pointer file, is the run's newest checkpoint.
    np.testing.assert_array_equal(mbmpo.Policy.load(run / "checkpoints" / "latest").theta, from_file.theta)
    assert (from_file.task, from_file.obs_dim, from_file.act_dim, from_file.hidden, from_file.device) == \
        ("inverted_pendulum", 4, 1, [16, 8], "cpu")
    assert from_file.layout.parameter_count == from_file.theta.size
    assert "inverted_pendulum" in repr(from_file)
    from_file.save(tmp_path / "copy.safetensors")
    assert (tmp_path / "copy.safetensors").read_bytes() == (run / "policy.safetensors").read_bytes()
    assert not [p for p in os.listdir(tmp_path) if p != "copy.safetensors"]  # no temporary left
    # The saved policy evaluates as the run's does.
    assert mbmpo.eval(tmp_path / "copy.safetensors", episodes=2)["returns"] == \
        mbmpo.eval(run / "policy.safetensors", episodes=2)["returns"]


def test_policy_predicts_batches_single_observations_and_seeded_samples(run):
    policy = mbmpo.Policy.load(run)
    obs = np.random.default_rng(1).uniform(-0.5, 0.5, (64, 4)).astype(np.float32)
    mean = policy.predict(obs)
    assert mean.shape == (64, 1) and mean.dtype == np.float32
    single = policy.predict(obs[5])
    assert single.shape == (1,)
    np.testing.assert_allclose(single, mean[5], rtol=1e-6, atol=1e-6)
    out = np.full((64, 1), np.nan, np.float32)
    assert policy.predict(obs, out=out) is out
    np.testing.assert_array_equal(out, mean)
    a = policy.predict(obs, deterministic=False, seed=3)
    np.testing.assert_array_equal(a, policy.predict(obs, deterministic=False, seed=3))
    assert not np.array_equal(a, policy.predict(obs, deterministic=False, seed=4))
    # The noise is the policy's std times standard normals (the same rows of one seed, many seeds).
    std = float(np.exp(policy.parameters["log_std"][0]))
    draws = np.stack([policy.predict(obs[:1], deterministic=False, seed=s)[0, 0] for s in range(400)])
    unclipped = draws[np.abs(draws) < 3]
    assert abs(unclipped.std() - std) < 0.2 * std + 1e-6
    assert policy.predict(np.zeros((0, 4), np.float32)).shape == (0, 1)


def test_a_policy_file_of_the_first_format_still_loads(run, tmp_path):
    """Files written before the named tensors held one flat theta; they load, with the same actions."""
    safetensors_numpy, safe_open = safetensors()
    policy = mbmpo.Policy.load(run / "policy.safetensors")
    with safe_open(str(run / "policy.safetensors"), "np") as f:
        meta = {k: v for k, v in f.metadata().items() if k in ("env", "config")}
    safetensors_numpy.save_file({"theta": policy.theta}, str(tmp_path / "old.safetensors"), metadata=meta)
    old = mbmpo.Policy.load(tmp_path / "old.safetensors")
    np.testing.assert_array_equal(old.theta, policy.theta)
    obs = np.zeros((3, 4), np.float32)
    np.testing.assert_array_equal(old.predict(obs), policy.predict(obs))


def test_the_final_models_load_with_their_architecture_and_disagree(run):
    assert (run / "models.safetensors").exists()
    ensemble = mbmpo.DynamicsEnsemble.load(run / "models.safetensors")
    assert (ensemble.models, ensemble.obs_dim, ensemble.act_dim, ensemble.device) == (3, 4, 1, "cpu")
    from_run = mbmpo.DynamicsEnsemble.load(str(run), device="cpu")  # the latest checkpoint's models
    np.testing.assert_array_equal(from_run.parameters(), ensemble.parameters())
    data = mbmpo.Dataset.load(run)
    obs, act = data.obs[:50], data.act[:50]
    every = ensemble.predict_all(obs, act)
    assert every.shape == (3, 50, 4)
    for k in range(3):
        np.testing.assert_array_equal(every[k], ensemble.predict(obs, act, model_of_row=[k] * 50))
    spread = ensemble.disagreement(obs, act)
    np.testing.assert_allclose(spread, every.astype(np.float64).std(axis=0), rtol=1e-5, atol=1e-7)
    assert spread.shape == (50, 4) and np.all(spread > 0)
    out = np.full((50, 4), np.nan, np.float32)
    assert ensemble.disagreement(obs, act, out=out) is out
    np.testing.assert_array_equal(out, spread)
    # The models were fitted on this data: they disagree more far from it.
    far = ensemble.disagreement(obs * 0 + 50, act)
    assert far.mean() > spread.mean()


def test_the_dataset_reads_back_as_arrays():
    rng = np.random.default_rng(2)
    data = mbmpo.Dataset(3, 2, capacity=10)
    episodes = []
    for length in (4, 9):
        obs = rng.standard_normal((length, 3)).astype(np.float32)
        act = rng.standard_normal((length, 2)).astype(np.float32)
        nxt = rng.standard_normal((length, 3)).astype(np.float32)
        reward = rng.standard_normal(length).astype(np.float32)
        done = np.zeros(length, bool)
        done[-1] = True
        data.add(obs, act, nxt, reward, done)
        episodes.append((obs, act, nxt, reward, done))
    # A ring of 10: the oldest 3 transitions are gone, the rest read oldest first.
    assert len(data) == 10
    for field, index in (("obs", 0), ("act", 1), ("next_obs", 2), ("reward", 3), ("done", 4)):
        expected = np.concatenate([e[index] for e in episodes])[3:]
        np.testing.assert_array_equal(getattr(data, field), expected, err_msg=field)
    assert data.done.dtype == np.bool_ and data.obs.dtype == np.float32
    assert mbmpo.Dataset(3, 2).obs.shape == (0, 3)


def test_the_dataset_of_a_run_is_its_latest_checkpoints(run, tmp_path):
    latest = (run / "checkpoints" / "latest").read_text().strip()
    data = mbmpo.Dataset.load(run)
    state = json.loads((run / "checkpoints" / latest / "state.json").read_text())
    assert len(data) == state["real_steps"] == len(mbmpo.Dataset.load(run / "checkpoints" / latest / "dataset.bin"))
    assert np.all(np.isfinite(data.obs)) and data.done.any()
    # Real transitions: each next observation is the following step's observation unless it ended.
    continuing = ~data.done[:-1]
    same_episode = np.all(np.isclose(data.next_obs[:-1], data.obs[1:]), axis=1)
    assert same_episode[continuing].mean() > 0.9
    shutil.copytree(run, tmp_path / "copy")
    assert len(mbmpo.Dataset.load(tmp_path / "copy")) == len(data)


def test_policy_and_models_on_cuda_match_the_cpu(run, cuda):
    torch = pytest.importorskip("torch")
    cpu_policy = mbmpo.Policy.load(run, device="cpu")
    gpu_policy = mbmpo.Policy.load(run, device="cuda")
    obs = torch.rand(1031, 4, device="cuda") - 0.5
    act = torch.full((1031, 1), float("nan"), device="cuda")
    for deterministic in (True, False):
        assert gpu_policy.predict(obs, deterministic=deterministic, seed=5, out=act) is act
        expected = cpu_policy.predict(obs.cpu().numpy(), deterministic=deterministic, seed=5)
        np.testing.assert_allclose(act.cpu().numpy(), expected, rtol=1e-4, atol=1e-4)
    ensemble = mbmpo.DynamicsEnsemble.load(run, device="cuda")
    cpu_ensemble = mbmpo.DynamicsEnsemble.load(run, device="cpu")
    data = mbmpo.Dataset.load(run)
    o, a = torch.from_numpy(data.obs[:333]).cuda(), torch.from_numpy(data.act[:333]).cuda()
    every = torch.full((3, 333, 4), float("nan"), device="cuda")
    spread = torch.full((333, 4), float("nan"), device="cuda")
    ensemble.predict_all(o, a, out=every)
    ensemble.disagreement(o, a, out=spread)
    np.testing.assert_allclose(every.cpu().numpy(), cpu_ensemble.predict_all(data.obs[:333], data.act[:333]),
                               rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(spread.cpu().numpy(), cpu_ensemble.disagreement(data.obs[:333], data.act[:333]),
                               rtol=1e-3, atol=1e-5)
